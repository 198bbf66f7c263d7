//! Topic names, topic filters and the subscription trie.
//!
//! Read: MQTT 3.1.1 §4.7 (topic names and filters) and MQTT 5.0 §4.7 and
//! §4.8.2 (shared subscriptions).
//!
//! A topic is split into *levels* by `/`. Empty levels are real levels:
//! `"a//b"` has three levels and `"/a"` has the first level `""`. In a filter,
//! `+` matches exactly one level (an empty one too) and `#`, alone in the last
//! level, matches any number of levels including none, so `"a/#"` matches
//! `"a"`. Filters that begin with a wildcard do not match names that begin with
//! `$` [MQTT-4.7.2-1].
//!
//! [`matches()`] is the plain reference matcher. [`Trie`] is what the broker
//! routes with: it finds every subscription matching a topic name in time
//! proportional to the matching part of the tree, not to the number of
//! subscriptions.

use core::fmt;
use core::mem;

/// Why a topic name or filter is not acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicError {
    /// Zero length [MQTT-4.7.3-1].
    Empty,
    /// More bytes than the configured maximum.
    TooLong,
    /// More levels than the configured maximum.
    TooManyLevels,
    /// `+` or `#` in a topic name [MQTT-4.7.1-1].
    WildcardInName,
    /// In a filter, `+` or `#` not alone in its level, or `#` not in the last
    /// level [MQTT-4.7.1-2], [MQTT-4.7.1-3].
    InvalidWildcard,
    /// Contains U+0000 [MQTT-4.7.3-2].
    NullChar,
    /// Contains a control character (U+0001-U+001F, U+007F-U+009F), which
    /// the broker's decoder refuses in any string (see the codec). Only the
    /// in-process client reports it; the validators here do not check it.
    ControlCharacter,
    /// A `$share/` filter without a valid share name or inner filter
    /// [MQTT-4.8.2-1], [MQTT-4.8.2-2].
    InvalidSharedSubscription,
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TopicError::Empty => "empty topic",
            TopicError::TooLong => "topic too long",
            TopicError::TooManyLevels => "topic has too many levels",
            TopicError::WildcardInName => "wildcard in topic name",
            TopicError::InvalidWildcard => "wildcard not alone in its level, or '#' not last",
            TopicError::NullChar => "U+0000 in topic",
            TopicError::ControlCharacter => "control character in topic",
            TopicError::InvalidSharedSubscription => "malformed shared subscription",
        })
    }
}

impl std::error::Error for TopicError {}

/// Checks shared by names and filters: non-empty, bounded length, no U+0000.
fn check_common(s: &str, max_len: usize) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > max_len {
        return Err(TopicError::TooLong);
    }
    if s.as_bytes().contains(&0) {
        return Err(TopicError::NullChar);
    }
    Ok(())
}

/// Check a PUBLISH topic name [MQTT-4.7.1-1], [MQTT-4.7.3-1]: non-empty, no
/// `+` or `#`, no U+0000, at most `max_len` bytes and at most `max_levels`
/// levels.
///
/// Errors are reported in this order: [`TopicError::Empty`],
/// [`TopicError::TooLong`], [`TopicError::NullChar`],
/// [`TopicError::WildcardInName`], [`TopicError::TooManyLevels`].
pub fn validate_topic_name(
    name: &str,
    max_len: usize,
    max_levels: usize,
) -> Result<(), TopicError> {
    check_common(name, max_len)?;
    let mut levels: usize = 1;
    for &b in name.as_bytes() {
        match b {
            b'+' | b'#' => return Err(TopicError::WildcardInName),
            b'/' => levels += 1,
            _ => {}
        }
    }
    if levels > max_levels {
        return Err(TopicError::TooManyLevels);
    }
    Ok(())
}

/// Check a topic filter [MQTT-4.7.1-2], [MQTT-4.7.1-3]: non-empty; `#` alone
/// in the last level; `+` alone in its level; no U+0000; at most `max_len`
/// bytes and at most `max_levels` levels.
///
/// `$share/` filters are not special here: pass the inner filter from
/// [`parse_shared`]. Errors are reported in this order: [`TopicError::Empty`],
/// [`TopicError::TooLong`], [`TopicError::NullChar`],
/// [`TopicError::InvalidWildcard`], [`TopicError::TooManyLevels`].
pub fn validate_topic_filter(
    filter: &str,
    max_len: usize,
    max_levels: usize,
) -> Result<(), TopicError> {
    check_common(filter, max_len)?;
    let mut levels: usize = 0;
    let mut rest = filter.split('/').peekable();
    while let Some(level) = rest.next() {
        levels += 1;
        let has_plus = level.contains('+');
        let has_hash = level.contains('#');
        if (has_plus || has_hash) && level.len() != 1 {
            return Err(TopicError::InvalidWildcard);
        }
        if has_hash && rest.peek().is_some() {
            return Err(TopicError::InvalidWildcard);
        }
    }
    if levels > max_levels {
        return Err(TopicError::TooManyLevels);
    }
    Ok(())
}

/// The prefix of an MQTT 5.0 shared subscription filter.
const SHARE_PREFIX: &str = "$share/";

/// Split a shared subscription `$share/<group>/<filter>` [MQTT-4.8.2-1],
/// [MQTT-4.8.2-2].
///
/// Returns `Ok(Some((group, filter)))` for a well-formed one (group
/// non-empty without `+`, `#` or `/`; filter non-empty), `Ok(None)` for a
/// filter not starting with `"$share/"`, and
/// `Err(TopicError::InvalidSharedSubscription)` for a malformed one such as
/// `"$share/g"`, `"$share//a"`, `"$share/g/"` or `"$share/g+/a"`. The inner
/// filter's wildcards are not checked: call [`validate_topic_filter`] on it.
pub fn parse_shared(filter: &str) -> Result<Option<(&str, &str)>, TopicError> {
    let Some(rest) = filter.strip_prefix(SHARE_PREFIX) else {
        return Ok(None);
    };
    let Some((group, inner)) = rest.split_once('/') else {
        return Err(TopicError::InvalidSharedSubscription);
    };
    if group.is_empty() || group.contains(['+', '#']) || inner.is_empty() {
        return Err(TopicError::InvalidSharedSubscription);
    }
    Ok(Some((group, inner)))
}

/// The plain reference matcher: does `filter` match `name`? Both are assumed
/// valid.
///
/// `+` matches one level, `#` matches the rest including the parent level
/// (`"a/#"` matches `"a"`) [MQTT-4.7.1-2], and a filter beginning with a
/// wildcard does not match a name beginning with `$` [MQTT-4.7.2-1].
pub fn matches(filter: &str, name: &str) -> bool {
    if name.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut n = name.split('/');
    loop {
        match (f.next(), n.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) => {
                if a != b {
                    return false;
                }
            }
            (None, None) => return true,
            (None, Some(_)) | (Some(_), None) => return false,
        }
    }
}

/// True for topic names under `$SYS`, which only the broker publishes.
pub(crate) fn is_sys_topic(topic: &str) -> bool {
    topic == "$SYS" || topic.starts_with("$SYS/")
}

/// `$SYS/broker/connection/NAME/state`: where a remote broker's bridge
/// announces itself (1 up, 0 down). Clients may publish there, as they may
/// on Mosquitto, so a Mosquitto bridge into boxmq keeps its notifications.
pub(crate) fn is_bridge_state_topic(topic: &str) -> bool {
    topic
        .strip_prefix("$SYS/broker/connection/")
        .and_then(|rest| rest.strip_suffix("/state"))
        .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

/// Index of a node in the trie's node array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeId(u32);

impl NodeId {
    /// The node's position in the node array.
    fn ix(self) -> usize {
        self.0 as usize
    }
}

/// The root node; it always exists and is never freed.
const ROOT: NodeId = NodeId(0);

/// Node ids are `u32`; the node array never grows past this many slots.
const MAX_NODES: usize = u32::MAX as usize;

/// One level of the trie: the node reached by following a filter's levels.
///
/// 64 bytes on 64-bit targets: two vectors, a count and two ids.
struct Node<K, V> {
    /// Children for literal levels, sorted by level bytes.
    children: Vec<(Box<str>, NodeId)>,
    /// Entries of this node: the first `hash_len` are those whose filter is
    /// this node's path followed by `#` (`<path>/#`, or `#` at the root), the
    /// rest those whose filter ends exactly here. Keys are unique within
    /// each part.
    entries: Vec<(K, V)>,
    /// How many of `entries` are `#` entries.
    hash_len: usize,
    /// Child for the `+` level; [`ROOT`] (never anyone's child) for none.
    plus: NodeId,
    /// The parent (the root's parent is the root).
    parent: NodeId,
}

impl<K: Copy + Eq, V> Node<K, V> {
    fn new(parent: NodeId) -> Self {
        Node {
            children: Vec::new(),
            entries: Vec::new(),
            hash_len: 0,
            plus: ROOT,
            parent,
        }
    }

    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.plus == ROOT && self.entries.is_empty()
    }

    /// Heap bytes of this node's vectors (not counting level strings).
    fn vec_bytes(&self) -> usize {
        self.children.capacity() * mem::size_of::<(Box<str>, NodeId)>()
            + self.entries.capacity() * mem::size_of::<(K, V)>()
    }

    fn plus(&self) -> Option<NodeId> {
        (self.plus != ROOT).then_some(self.plus)
    }

    fn child_index(&self, level: &str) -> Result<usize, usize> {
        self.children.binary_search_by(|(l, _)| (**l).cmp(level))
    }

    fn child(&self, level: &str) -> Option<NodeId> {
        let i = self.child_index(level).ok()?;
        self.children.get(i).map(|&(_, id)| id)
    }

    /// The entries subscribed with `#` at this node.
    fn hashes(&self) -> &[(K, V)] {
        self.entries.get(..self.hash_len).unwrap_or(&[])
    }

    /// The entries whose filter ends at this node.
    fn exacts(&self) -> &[(K, V)] {
        self.entries.get(self.hash_len..).unwrap_or(&[])
    }

    /// Index in `entries` of `key`'s `#` entry (`hash`) or exact entry.
    fn position(&self, hash: bool, key: K) -> Option<usize> {
        if hash {
            self.hashes().iter().position(|(k, _)| *k == key)
        } else {
            let i = self.exacts().iter().position(|(k, _)| *k == key)?;
            Some(self.hash_len + i)
        }
    }

    fn get(&self, hash: bool, key: K) -> Option<&V> {
        let i = self.position(hash, key)?;
        self.entries.get(i).map(|(_, v)| v)
    }

    /// Insert or replace; returns the replaced value.
    fn upsert(&mut self, hash: bool, key: K, value: V) -> Option<V> {
        if let Some(i) = self.position(hash, key) {
            return self.entries.get_mut(i).map(|(_, v)| mem::replace(v, value));
        }
        grow_for_one(&mut self.entries);
        self.entries.push((key, value));
        if hash {
            // Move the new entry to the end of the `#` part.
            let last = self.entries.len() - 1;
            self.entries.swap(self.hash_len.min(last), last);
            self.hash_len += 1;
        }
        None
    }

    /// Remove and return `key`'s entry.
    fn take(&mut self, hash: bool, key: K) -> Option<V> {
        let i = self.position(hash, key)?;
        let last = self.entries.len() - 1;
        if hash {
            // Swap it to the end of the `#` part, then that slot to the end.
            let h = self.hash_len - 1;
            self.entries.swap(i, h);
            self.entries.swap(h, last);
            self.hash_len = h;
        } else {
            self.entries.swap(i, last);
        }
        let (_, v) = self.entries.pop()?;
        shrink(&mut self.entries);
        Some(v)
    }
}

/// Make room for one more element: exactly one below four elements (most
/// nodes have one child or one entry), doubling from then on.
fn grow_for_one<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        v.reserve_exact(if v.len() < 4 { 1 } else { v.len() });
    }
}

/// Give back memory of a vector that shrank to a quarter of its capacity.
fn shrink<T>(v: &mut Vec<T>) {
    if v.is_empty() {
        *v = Vec::new();
    } else if v.capacity() >= 8 && v.len() * 4 <= v.capacity() {
        v.shrink_to(v.len() * 2);
    }
}

/// Split a filter into the path of trie levels and whether it ends in `#`.
///
/// The path is `None` for the root itself (filter `"#"`). A `#` that is not
/// the whole last level (an invalid filter) is treated as a literal level, so
/// invalid input is stored and found consistently, never matching a name.
fn split_filter(filter: &str) -> (Option<&str>, bool) {
    if filter == "#" {
        (None, true)
    } else if let Some(path) = filter.strip_suffix("/#") {
        (Some(path), true)
    } else {
        (Some(filter), false)
    }
}

/// Subscription trie: maps topic filters to sets of `(K, V)` entries (`K` a
/// subscriber key such as a session id, `V` per-subscription data such as
/// QoS and options).
///
/// Layout: all nodes live in one `Vec`, addressed by [`NodeId`] (a `u32`);
/// freed nodes are recycled through a free list (their vectors are dropped,
/// the slot is kept). A node is 64 bytes on 64-bit targets and holds:
///
/// - its literal children as a `Vec<(Box<str>, NodeId)>` sorted by level for
///   binary search (24 bytes plus the level's bytes per child);
/// - a dedicated slot for its `+` child;
/// - its parent's id, for pruning;
/// - one `Vec<(K, V)>` of entries split in two parts: those subscribed with
///   `#` at this node (`<path>/#`) and those whose filter ends here. A `#`
///   level therefore never takes a node of its own.
///
/// Small vectors grow one element at a time up to four, then double, and
/// shrink again when a quarter full, so the typical node (one child or one
/// entry) carries no slack.
///
/// Filters are stored as given: `$share/...` is not special here (strip it
/// with [`parse_shared`] first).
pub struct Trie<K, V> {
    nodes: Vec<Node<K, V>>,
    free: Vec<NodeId>,
    len: usize,
    /// Heap bytes of all live nodes' vectors and level strings, kept up to
    /// date on every change so that [`Trie::heap_bytes`] is O(1).
    node_heap: usize,
}

impl<K: Copy + Eq, V> Default for Trie<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy + Eq, V> Trie<K, V> {
    /// An empty trie: just the root node.
    pub fn new() -> Self {
        Trie {
            nodes: vec![Node::new(ROOT)],
            free: Vec::new(),
            len: 0,
            node_heap: 0,
        }
    }

    /// Run `f` on node `id`, keeping the heap byte count in step with any
    /// change of its vectors' capacities.
    fn edit<R>(&mut self, id: NodeId, f: impl FnOnce(&mut Node<K, V>) -> R) -> R {
        let node = &mut self.nodes[id.ix()];
        let before = node.vec_bytes();
        let r = f(node);
        let after = node.vec_bytes();
        self.node_heap = self.node_heap.wrapping_add(after).wrapping_sub(before);
        r
    }

    /// A fresh node under `parent`, from the free list if possible.
    fn alloc(&mut self, parent: NodeId) -> NodeId {
        if let Some(id) = self.free.pop() {
            self.nodes[id.ix()] = Node::new(parent);
            id
        } else {
            // `insert` checked beforehand that the array has room.
            let id = NodeId(u32::try_from(self.nodes.len()).unwrap_or(u32::MAX));
            self.nodes.push(Node::new(parent));
            id
        }
    }

    /// Return an empty node to the free list, dropping its vectors.
    fn release(&mut self, id: NodeId) {
        let old = mem::replace(&mut self.nodes[id.ix()], Node::new(ROOT));
        self.node_heap = self.node_heap.wrapping_sub(old.vec_bytes());
        self.free.push(id);
    }

    /// The child of `id` for `level`, created if missing.
    fn child_or_create(&mut self, id: NodeId, level: &str) -> NodeId {
        let node = &self.nodes[id.ix()];
        if level == "+" {
            if let Some(c) = node.plus() {
                return c;
            }
            let c = self.alloc(id);
            self.nodes[id.ix()].plus = c;
            return c;
        }
        match node.child_index(level) {
            Ok(i) => node.children.get(i).map_or(ROOT, |&(_, c)| c),
            Err(i) => {
                let c = self.alloc(id);
                self.edit(id, |n| {
                    grow_for_one(&mut n.children);
                    n.children.insert(i, (level.into(), c));
                });
                self.node_heap = self.node_heap.wrapping_add(level.len());
                c
            }
        }
    }

    /// The node at the end of `path`, if it exists.
    fn find(&self, path: Option<&str>) -> Option<NodeId> {
        let mut id = ROOT;
        if let Some(path) = path {
            for level in path.split('/') {
                let node = &self.nodes[id.ix()];
                id = if level == "+" {
                    node.plus()?
                } else {
                    node.child(level)?
                };
            }
        }
        Some(id)
    }

    /// Insert or replace the entry of `key` under `filter` (assumed
    /// validated). Returns the previous value for that key at that filter.
    ///
    /// Node ids are 32-bit: should the node array ever approach 2^32 slots
    /// (hundreds of GiB, so not in practice), the entry is not stored and
    /// `None` is returned.
    pub fn insert(&mut self, filter: &str, key: K, value: V) -> Option<V> {
        // A filter adds at most one node per level, and it has at most
        // `len + 1` levels.
        if self
            .nodes
            .len()
            .saturating_add(filter.len())
            .saturating_add(1)
            > MAX_NODES
        {
            return None;
        }
        let (path, hash) = split_filter(filter);
        let mut id = ROOT;
        if let Some(path) = path {
            for level in path.split('/') {
                id = self.child_or_create(id, level);
            }
        }
        let old = self.edit(id, |n| n.upsert(hash, key, value));
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Remove `key`'s entry under `filter`; prunes nodes left empty
    /// (returning them to the free list). Returns the removed value.
    pub fn remove(&mut self, filter: &str, key: K) -> Option<V> {
        let (path, hash) = split_filter(filter);
        let id = self.find(path)?;
        let value = self.edit(id, |n| n.take(hash, key))?;
        self.len -= 1;
        if let Some(path) = path {
            self.prune(id, path);
        }
        Some(value)
    }

    /// Free `id` and its ancestors while they are empty. `path` is the
    /// filter path that leads from the root to `id`.
    fn prune(&mut self, mut id: NodeId, path: &str) {
        let mut levels = path.rsplit('/');
        while id != ROOT && self.nodes[id.ix()].is_empty() {
            let Some(level) = levels.next() else { break };
            let parent = self.nodes[id.ix()].parent;
            let freed = self.edit(parent, |p| {
                if level == "+" {
                    p.plus = ROOT;
                    0
                } else {
                    let freed = match p.child_index(level) {
                        Ok(i) => p.children.remove(i).0.len(),
                        Err(_) => 0,
                    };
                    shrink(&mut p.children);
                    freed
                }
            });
            self.node_heap = self.node_heap.wrapping_sub(freed);
            self.release(id);
            id = parent;
        }
    }

    /// Get `key`'s entry at `filter`.
    pub fn get(&self, filter: &str, key: K) -> Option<&V> {
        let (path, hash) = split_filter(filter);
        let id = self.find(path)?;
        self.nodes[id.ix()].get(hash, key)
    }

    /// Call `f(key, value)` once per entry whose filter matches topic `name`
    /// (a valid topic name), in no particular order; an entry is visited once
    /// per matching filter it is registered under.
    ///
    /// Does not allocate. Recursion goes one level deeper per matched name
    /// level, so its depth is bounded by the deepest stored filter. Applies
    /// [MQTT-4.7.2-1]: at the first level, the `+` child and the `#` entries
    /// are not followed when `name` starts with `$`.
    pub fn for_each_match<F: FnMut(K, &V)>(&self, name: &str, mut f: F) {
        self.walk(ROOT, Some(name), name.starts_with('$'), &mut f);
    }

    /// Visit matches below node `id`. `rest` is what is left of the name
    /// (`None` once every level has been consumed); `no_wild` suppresses the
    /// wildcards at this node (the `$` rule at the root).
    fn walk<F: FnMut(K, &V)>(&self, id: NodeId, rest: Option<&str>, no_wild: bool, f: &mut F) {
        let node = &self.nodes[id.ix()];
        if !no_wild {
            // `<path>/#` matches `<path>` and everything below it.
            for (k, v) in node.hashes() {
                f(*k, v);
            }
        }
        let Some(rest) = rest else {
            for (k, v) in node.exacts() {
                f(*k, v);
            }
            return;
        };
        let (level, next) = match rest.split_once('/') {
            Some((level, next)) => (level, Some(next)),
            None => (rest, None),
        };
        if let Some(c) = node.child(level) {
            self.walk(c, next, false, f);
        }
        match node.plus() {
            Some(c) if !no_wild => self.walk(c, next, false, f),
            _ => {}
        }
    }

    /// Number of `(filter, key)` entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the trie holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of live nodes, the root included (so an empty trie has 1).
    pub fn node_count(&self) -> usize {
        self.nodes.len() - self.free.len()
    }

    /// Approximate heap bytes held: the node array (free slots included),
    /// the free list, children vectors, level strings and entry vectors.
    /// Heap memory owned by `K` or `V` themselves is not counted. O(1).
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * mem::size_of::<Node<K, V>>()
            + self.free.capacity() * mem::size_of::<NodeId>()
            + self.node_heap
    }
}

#[cfg(test)]
mod tests;
