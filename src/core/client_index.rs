//! Sessions by client id, without a second copy of every id: the table
//! holds a keyed 32-bit hash of the id and the session number, and a
//! lookup checks the id in the session itself. Two ids with the same hash
//! (the key is random per broker, so a client cannot aim for it; among
//! 10,000 ids about one broker in a hundred sees a pair) are rare enough
//! that the second one goes to a small map keyed by the id.
//!
//! Per session that is 8 bytes of table instead of the 24 bytes of a
//! `HashMap<Box<str>, _>` entry plus the copied id (a 48-byte heap block
//! for a Shelly id): docs/LIMITS.md, "Per-connection accounting".

use std::collections::HashMap;
use std::hash::BuildHasher;

use slab::Slab;

use super::session::{Session, SessionId};

#[derive(Debug, Default)]
pub(crate) struct ClientIndex {
    keys: std::collections::hash_map::RandomState,
    by_hash: HashMap<u32, u32>,
    /// Ids whose hash was taken by another id when they were inserted.
    collided: HashMap<Box<str>, SessionId>,
}

impl ClientIndex {
    fn hash(&self, id: &str) -> u32 {
        // The low half of a keyed SipHash: as random as the whole.
        self.keys.hash_one(id) as u32
    }

    pub fn get(&self, id: &str, sessions: &Slab<Session>) -> Option<SessionId> {
        if let Some(&n) = self.by_hash.get(&self.hash(id)) {
            let sid = SessionId(n as usize);
            if sessions.get(sid.0).is_some_and(|s| &*s.client_id == id) {
                return Some(sid);
            }
        }
        self.collided.get(id).copied()
    }

    pub fn contains(&self, id: &str, sessions: &Slab<Session>) -> bool {
        self.get(id, sessions).is_some()
    }

    /// Session `sid`, already in `sessions`, is the one of client `id` now.
    pub fn insert(&mut self, id: &str, sid: SessionId, sessions: &Slab<Session>) {
        let h = self.hash(id);
        let Ok(n) = u32::try_from(sid.0) else {
            self.collided.insert(id.into(), sid);
            return;
        };
        match self.by_hash.get(&h).copied() {
            Some(other)
                if other != n
                    && sessions
                        .get(other as usize)
                        .is_some_and(|s| &*s.client_id != id) =>
            {
                self.collided.insert(id.into(), sid);
            }
            _ => {
                self.by_hash.insert(h, n);
                self.collided.remove(id);
            }
        }
    }

    /// Client `id`'s session `sid` is gone.
    pub fn remove(&mut self, id: &str, sid: SessionId) {
        let h = self.hash(id);
        if self.by_hash.get(&h).is_some_and(|&n| n as usize == sid.0) {
            self.by_hash.remove(&h);
        }
        if self.collided.get(id) == Some(&sid) {
            self.collided.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::ProtocolVersion;

    fn add(sessions: &mut Slab<Session>, ix: &mut ClientIndex, id: &str) -> SessionId {
        let sid = SessionId(sessions.insert(Session::new(id, ProtocolVersion::V311, 0)));
        ix.insert(id, sid, sessions);
        sid
    }

    #[test]
    fn insert_get_remove() {
        let mut sessions = Slab::new();
        let mut ix = ClientIndex::default();
        let a = add(&mut sessions, &mut ix, "a");
        let b = add(&mut sessions, &mut ix, "b");
        assert_eq!(ix.get("a", &sessions), Some(a));
        assert_eq!(ix.get("b", &sessions), Some(b));
        assert_eq!(ix.get("c", &sessions), None);
        ix.remove("a", a);
        sessions.remove(a.0);
        assert!(!ix.contains("a", &sessions));
        assert_eq!(ix.get("b", &sessions), Some(b));
    }

    /// Two ids with one hash: forced here by planting the second id's hash
    /// in the table for the first one's session.
    #[test]
    fn colliding_ids_both_found() {
        let mut sessions = Slab::new();
        let mut ix = ClientIndex::default();
        let a = add(&mut sessions, &mut ix, "a");
        let h = ix.hash("b");
        ix.by_hash.insert(h, a.0 as u32);
        let b = add(&mut sessions, &mut ix, "b");
        assert_eq!(ix.collided.len(), 1);
        assert_eq!(ix.get("b", &sessions), Some(b));
        ix.remove("b", b);
        sessions.remove(b.0);
        assert_eq!(ix.get("b", &sessions), None);
        assert!(ix.collided.is_empty());
    }
}
