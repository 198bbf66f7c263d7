//! Retained messages (MQTT 3.1.1 §3.3.1.3): at most one per topic name,
//! replaced by the next retained PUBLISH, deleted by a retained PUBLISH with
//! an empty payload, sent to each new matching subscription.

use std::collections::HashMap;
use std::rc::Rc;

use super::session::Message;
use crate::topic;

/// What happened to a retained PUBLISH.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RetainOutcome {
    /// Stored (new topic or replacement).
    Stored,
    /// The topic's retained message was removed (or there was none).
    Cleared,
    /// Not stored: `max_retained_messages` or `max_retained_bytes` reached.
    /// The message is still delivered to current subscribers.
    Refused,
}

/// The retained-message store, bounded in count and bytes.
#[derive(Debug, Default)]
pub(crate) struct RetainStore {
    by_topic: HashMap<Box<str>, Rc<Message>>,
    bytes: usize,
}

impl RetainStore {
    /// Stores, replaces or clears the retained message of `msg.topic`.
    pub fn set(&mut self, msg: &Rc<Message>, max_count: usize, max_bytes: usize) -> RetainOutcome {
        if msg.payload.is_empty() {
            // [MQTT-3.3.1-10] [MQTT-3.3.1-11]: an empty retained payload
            // removes the topic's retained message and is not itself stored.
            if let Some(old) = self.by_topic.remove(&msg.topic) {
                self.bytes -= old.cost();
            }
            return RetainOutcome::Cleared;
        }
        let old_cost = self.by_topic.get(&msg.topic).map(|m| m.cost());
        let count_after = self.by_topic.len() + usize::from(old_cost.is_none());
        let bytes_after = self.bytes - old_cost.unwrap_or(0) + msg.cost();
        if count_after > max_count || bytes_after > max_bytes {
            return RetainOutcome::Refused;
        }
        self.bytes = bytes_after;
        self.by_topic.insert(msg.topic.clone(), Rc::clone(msg));
        RetainOutcome::Stored
    }

    /// Calls `f` with every retained message whose topic `filter` matches.
    pub fn for_each_match(&self, filter: &str, mut f: impl FnMut(&Rc<Message>)) {
        for (name, msg) in &self.by_topic {
            if topic::matches(filter, name) {
                f(msg);
            }
        }
    }

    /// Calls `f` with every retained message.
    pub fn for_each(&self, mut f: impl FnMut(&Rc<Message>)) {
        for msg in self.by_topic.values() {
            f(msg);
        }
    }

    /// Number of retained messages.
    pub fn len(&self) -> usize {
        self.by_topic.len()
    }

    /// Topic and payload bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}
