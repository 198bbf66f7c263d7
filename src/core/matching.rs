//! Which sessions a message goes to: the subscription trie, and shared
//! subscriptions (`$share/<group>/<filter>`, MQTT 5.0 §4.8.2), whose groups
//! get each message once, round robin among their members. Shared
//! subscriptions work for 3.1.1 clients too, as in Mosquitto.

use std::collections::HashMap;
use std::ops::Range;

use slab::Slab;

use super::Core;
use super::retain::RetainStore;
use super::session::{Session, SessionId, SubEntry};
use crate::auth::Auth;
use crate::codec::QoS;
use crate::topic::Trie;

/// Index of a shared subscription group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct GroupId(usize);

/// One session's share of a message: the highest QoS and the subscription
/// identifiers of all its matching subscriptions (`ids` indexes
/// `Router::ids`).
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
impl Group {
    /// Index of the member the next message goes to: round robin,
    /// preferring members that are connected; with none connected, the
    /// next member's session queues it.
    fn pick(&self, sessions: &Slab<Session>) -> usize {
        let n = self.members.len();
        let online = |i: usize| {
            self.members
                .get(i)
                .is_some_and(|m| sessions.get(m.0.0).is_some_and(|s| s.conn.is_some()))
        };
        (0..n)
            .map(|k| (self.next + k) % n)
            .find(|&i| online(i))
            .unwrap_or(self.next % n.max(1))
    }
}

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
    /// Calls `f` with the member each group matching `topic` would give
    /// its next message to, as `collect_matches` picks it, without moving
    /// the round robin on.
    pub fn for_each_next_member(
        &self,
        topic: &str,
        sessions: &Slab<Session>,
        mut f: impl FnMut(SessionId, &SubEntry),
    ) {
        if self.groups.is_empty() {
            return;
        }
        self.trie.for_each_match(topic, |gid, ()| {
            let Some(group) = self.groups.get(gid.0) else {
                return;
            };
            if let Some(&(sid, ref entry)) = group.members.get(group.pick(sessions)) {
                f(sid, entry);
            }
        });
    }

    pub fn len(&self) -> usize {
        self.groups.iter().map(|(_, g)| g.members.len()).sum()
    }
}

/// Adds `entry`'s subscription of session `sid` to the matches of the
/// routing numbered `round`, merging with the session's entry if it has one.
fn add_match(
    sessions: &mut Slab<Session>,
    round: u64,
    sid: SessionId,
    entry: &SubEntry,
    out: &mut Vec<Match>,
    ids: &mut Vec<(usize, u32)>,
) {
    let Some(s) = sessions.get_mut(sid.0) else {
        return;
    };
    if s.route_stamp != round {
        s.route_stamp = round;
        s.route_slot = out.len();
        out.push(Match {
            session: sid,
            qos: entry.options.qos,
            retain_as_published: false,
            ids: 0..0,
            acl_check: false,
        });
    }
    let slot = s.route_slot;
    if let Some(m) = out.get_mut(slot) {
        m.qos = m.qos.max(entry.options.qos);
        m.retain_as_published |= entry.options.retain_as_published;
        m.acl_check |= !entry.acl_full;
    }
    if let Some(id) = entry.sub_id {
        ids.push((slot, id));
    }
}

/// May session `sid` receive a message on `topic`, by the ACL `auth`?
pub(crate) fn may_receive(
    auth: &Auth,
    sessions: &Slab<Session>,
    sid: SessionId,
    topic: &str,
) -> bool {
    sessions
        .get(sid.0)
        .is_some_and(|s| s.trusted || auth.may_receive(s.username.as_deref(), &s.client_id, topic))
}

impl Core {
    /// May session `sid` receive a message on `topic`, by the ACL?
    pub(crate) fn may_receive(&self, sid: SessionId, topic: &str) -> bool {
        may_receive(&self.auth, &self.sessions, sid, topic)
    }
}

/// Where a message goes: the subscription trie, the shared-subscription
/// groups and the retained messages, with the scratch space of one
/// routing (reused, so routing allocates nothing).
#[derive(Default)]
pub(crate) struct Router {
    pub trie: Trie<SessionId, SubEntry>,
    pub shared: SharedGroups,
    pub retained: RetainStore,
    /// Number of the routing in progress (see `collect_matches`).
    route_gen: u64,
    /// The matches of the routing in progress.
    pub matches: Vec<Match>,
    /// (match index, subscription identifier) pairs while collecting.
    slot_ids: Vec<(usize, u32)>,
    /// The subscription identifiers of the matches (`Match::ids` indexes it).
    pub ids: Vec<u32>,
}

impl Router {
    /// Collects into `out` one [`Match`] per session that gets a message on
    /// `topic`. `origin` is the publishing session, for No Local. Returns
    /// how many subscriptions matched but were skipped by No Local: they
    /// still count as matching subscribers for the 5.0 PUBACK reason
    /// (0x10 is for a topic nobody subscribed to, as Mosquitto sends it).
    ///
    /// A session matched by several subscriptions gets one entry: each
    /// session is stamped with the number of the routing in progress and
    /// the index of its entry, so merging costs no sort and no search.
    pub(crate) fn collect_matches(
        &mut self,
        sessions: &mut Slab<Session>,
        topic: &str,
        origin: Option<SessionId>,
    ) -> usize {
        self.route_gen += 1;
        let round = self.route_gen;
        let out = &mut self.matches;
        out.clear();
        let ids = &mut self.slot_ids;
        ids.clear();
        let mut skipped = 0;
        self.trie.for_each_match(topic, |sid, entry| {
            // 5.0 No Local: not back to the session that published it
            // [MQTT-3.8.3-3]; always false before 5.0.
            if entry.options.no_local && Some(sid) == origin {
                skipped += 1;
            } else {
                add_match(sessions, round, sid, entry, out, ids);
            }
        });
        if !self.shared.groups.is_empty() {
            let groups = &mut self.shared.groups;
            self.shared.trie.for_each_match(topic, |gid, ()| {
                let Some(group) = groups.get_mut(gid.0) else {
                    return;
                };
                let pick = group.pick(sessions);
                if let Some(&(sid, entry)) = group.members.get(pick) {
                    group.next = pick + 1;
                    add_match(sessions, round, sid, &entry, out, ids);
                }
            });
        }
        // Subscription identifiers, gathered per entry (rare: 5.0 only).
        self.ids.clear();
        if !ids.is_empty() {
            ids.sort_by_key(|&(slot, _)| slot);
            let mut k = 0;
            for (slot, m) in out.iter_mut().enumerate() {
                let start = self.ids.len();
                while let Some(&(s, id)) = ids.get(k) {
                    if s != slot {
                        break;
                    }
                    self.ids.push(id);
                    k += 1;
                }
                m.ids = start..self.ids.len();
            }
        }
        skipped
    }
}
