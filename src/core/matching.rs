//! Which sessions a message goes to: the subscription trie, and shared
//! subscriptions (`$share/<group>/<filter>`, MQTT 5.0 §4.8.2), whose groups
//! get each message once, round robin among their members. Shared
//! subscriptions work for 3.1.1 clients too, as in Mosquitto.

use std::collections::HashMap;
use std::ops::Range;

use slab::Slab;

use super::Core;
use super::session::{SessionId, SubEntry};
use crate::codec::QoS;
use crate::topic::Trie;

/// Index of a shared subscription group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct GroupId(usize);

/// One session's share of a message: the highest QoS and the subscription
/// identifiers of all its matching subscriptions (`ids` indexes
/// `Core::scratch_ids`).
#[derive(Clone, Debug)]
pub(crate) struct Match {
    pub session: SessionId,
    pub qos: QoS,
    pub retain_as_published: bool,
    pub ids: Range<usize>,
    /// Some matching subscription is not wholly allowed by the ACL: check
    /// the topic before delivering.
    pub acl_check: bool,
}

#[derive(Debug)]
struct Group {
    name: Box<str>,
    filter: Box<str>,
    members: Vec<(SessionId, SubEntry)>,
    next: usize,
}

/// All shared subscription groups.
#[derive(Default)]
pub(crate) struct SharedGroups {
    trie: Trie<GroupId, ()>,
    groups: Slab<Group>,
    by_name: HashMap<(Box<str>, Box<str>), GroupId>,
}

impl SharedGroups {
    /// Adds or updates `sid`'s membership of group `name` on `filter`.
    pub fn join(&mut self, name: &str, filter: &str, sid: SessionId, entry: SubEntry) {
        let key = (Box::<str>::from(name), Box::<str>::from(filter));
        let gid = match self.by_name.get(&key) {
            Some(&g) => g,
            None => {
                let g = GroupId(self.groups.insert(Group {
                    name: key.0.clone(),
                    filter: key.1.clone(),
                    members: Vec::new(),
                    next: 0,
                }));
                self.trie.insert(filter, g, ());
                self.by_name.insert(key, g);
                g
            }
        };
        if let Some(group) = self.groups.get_mut(gid.0) {
            match group.members.iter_mut().find(|m| m.0 == sid) {
                Some(m) => m.1 = entry,
                None => group.members.push((sid, entry)),
            }
        }
    }

    /// Removes `sid` from group `name` on `filter`; the group goes with its
    /// last member. Returns whether it was a member.
    pub fn leave(&mut self, name: &str, filter: &str, sid: SessionId) -> bool {
        let key = (Box::<str>::from(name), Box::<str>::from(filter));
        let Some(&gid) = self.by_name.get(&key) else {
            return false;
        };
        let Some(group) = self.groups.get_mut(gid.0) else {
            return false;
        };
        let before = group.members.len();
        group.members.retain(|m| m.0 != sid);
        let removed = group.members.len() != before;
        if group.members.is_empty() {
            let g = self.groups.remove(gid.0);
            self.trie.remove(&g.filter, gid);
            self.by_name.remove(&(g.name, g.filter));
        }
        removed
    }

    /// Number of group memberships.
    pub fn len(&self) -> usize {
        self.groups.iter().map(|(_, g)| g.members.len()).sum()
    }
}

impl Core {
    /// May session `sid` receive a message on `topic`, by the ACL?
    pub(crate) fn may_receive(&self, sid: SessionId, topic: &str) -> bool {
        self.sessions.get(sid.0).is_some_and(|s| {
            s.trusted
                || self
                    .auth
                    .may_receive(s.username.as_deref(), &s.client_id, topic)
        })
    }

    /// Collects into `out` one [`Match`] per session that gets a message on
    /// `topic`. `origin` is the publishing session, for No Local.
    pub(crate) fn collect_matches(
        &mut self,
        topic: &str,
        origin: Option<SessionId>,
        out: &mut Vec<Match>,
    ) {
        let mut raw = std::mem::take(&mut self.scratch_raw);
        raw.clear();
        self.trie.for_each_match(topic, |sid, entry| {
            // 5.0 No Local: not back to the session that published it
            // [MQTT-3.8.3-3]; always false before 5.0.
            if !(entry.options.no_local && Some(sid) == origin) {
                raw.push((sid, *entry));
            }
        });
        if !self.shared.groups.is_empty() {
            let sessions = &self.sessions;
            let groups = &mut self.shared.groups;
            self.shared.trie.for_each_match(topic, |gid, ()| {
                let Some(group) = groups.get_mut(gid.0) else {
                    return;
                };
                // Round robin, preferring members that are connected; with
                // none connected, the next member's session queues it.
                let n = group.members.len();
                let online = |i: usize| {
                    group
                        .members
                        .get(i)
                        .is_some_and(|m| sessions.get(m.0.0).is_some_and(|s| s.conn.is_some()))
                };
                let pick = (0..n)
                    .map(|k| (group.next + k) % n)
                    .find(|&i| online(i))
                    .unwrap_or(group.next % n.max(1));
                if let Some(&m) = group.members.get(pick) {
                    group.next = pick + 1;
                    raw.push(m);
                }
            });
        }
        raw.sort_unstable_by_key(|r| r.0);
        self.scratch_ids.clear();
        out.clear();
        let mut i = 0;
        while let Some(&(sid, first)) = raw.get(i) {
            let start = self.scratch_ids.len();
            let mut qos = first.options.qos;
            let mut rap = first.options.retain_as_published;
            let mut acl_check = false;
            while let Some(&(s, e)) = raw.get(i) {
                if s != sid {
                    break;
                }
                qos = qos.max(e.options.qos);
                rap |= e.options.retain_as_published;
                acl_check |= !e.acl_full;
                if let Some(id) = e.sub_id {
                    self.scratch_ids.push(id);
                }
                i += 1;
            }
            out.push(Match {
                session: sid,
                qos,
                retain_as_published: rap,
                ids: start..self.scratch_ids.len(),
                acl_check,
            });
        }
        self.scratch_raw = raw;
    }
}
