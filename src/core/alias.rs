//! Topic aliases from the broker to one client (MQTT 5.0 §3.3.2.3.4).
//!
//! A client that announces a Topic Alias Maximum above 0 in its CONNECT
//! lets the broker replace a topic name it has already sent on this
//! connection by a two-byte alias. The policy, per network connection:
//!
//! * at most `min(client's Topic Alias Maximum, max_topic_aliases)`
//!   aliases [MQTT-3.1.2-26] [MQTT-3.3.2-11]; none when the client
//!   announced none [MQTT-3.1.2-27] or `max_topic_aliases` is 0;
//! * the first PUBLISH on a topic carries its name and a new alias; later
//!   ones an empty name and the alias;
//! * when every alias is taken, a new topic takes over the alias used
//!   least recently (sent again with its name, which redefines the alias
//!   for the client, §3.3.2.3.4): a busy topic keeps its alias, a topic
//!   not sent for a while gives it up;
//! * topics of 3 bytes or less get no alias: the property (3 bytes) would
//!   cost as much as the name saves;
//! * the table lives with the connection: a reconnecting client starts with
//!   none, and whatever is sent again (queued or unacknowledged messages)
//!   carries its name first [MQTT-3.3.2-7].
//!
//! Memory: one table per connection whose client asked for aliases,
//! holding at most `max_topic_aliases` topic names.

use std::collections::HashMap;

/// Topics this short are sent by name: an alias would save nothing.
const MIN_ALIASED_LEN: usize = 4;

/// One alias in use: its value and when it was last sent.
#[derive(Debug, Clone, Copy)]
struct Slot {
    alias: u16,
    used: u64,
}

/// The aliases the broker has given one client on one connection.
#[derive(Debug)]
pub(crate) struct OutAliases {
    max: u16,
    /// Counts sends, to find the alias used least recently.
    clock: u64,
    by_topic: HashMap<Box<str>, Slot>,
}

/// How a topic goes out (see [`OutAliases::choose`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AliasUse {
    /// By name, no alias.
    Name,
    /// Empty name and this alias, which the client knows.
    Known(u16),
    /// Name and this alias, which the client learns (or learns anew) from
    /// it. Recorded by [`OutAliases::assign`] once the PUBLISH is written.
    Assign(u16),
}

impl OutAliases {
    /// A table of at most `max` aliases; `None` when `max` is 0.
    pub fn new(max: u16) -> Option<OutAliases> {
        (max > 0).then(|| OutAliases {
            max,
            clock: 0,
            by_topic: HashMap::new(),
        })
    }

    /// How `topic` is to go out now. A known alias counts as used.
    pub fn choose(&mut self, topic: &str) -> AliasUse {
        if topic.len() < MIN_ALIASED_LEN {
            return AliasUse::Name;
        }
        self.clock += 1;
        if let Some(slot) = self.by_topic.get_mut(topic) {
            slot.used = self.clock;
            return AliasUse::Known(slot.alias);
        }
        // The map holds at most `max` entries, so this fits in a u16.
        let taken = u16::try_from(self.by_topic.len()).unwrap_or(u16::MAX);
        if taken < self.max {
            return AliasUse::Assign(taken + 1);
        }
        self.by_topic
            .values()
            .min_by_key(|s| s.used)
            .map_or(AliasUse::Name, |s| AliasUse::Assign(s.alias))
    }

    /// `topic` went out with `alias` and its name: the client maps `alias`
    /// to it from now on, and to nothing else.
    pub fn assign(&mut self, topic: &str, alias: u16) {
        self.by_topic.retain(|_, s| s.alias != alias);
        self.by_topic.insert(
            topic.into(),
            Slot {
                alias,
                used: self.clock,
            },
        );
    }

    /// Number of aliases in use.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_topic.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_without_a_maximum() {
        // [MQTT-3.1.2-27]: absent or 0, no aliases at all.
        assert!(OutAliases::new(0).is_none());
    }

    #[test]
    fn first_send_names_later_sends_use_the_alias() {
        let mut a = OutAliases::new(2).unwrap();
        let t = "shellies/shellybutton1-A4CF12F45A10/input_event/0";
        assert_eq!(a.choose(t), AliasUse::Assign(1));
        a.assign(t, 1);
        assert_eq!(a.choose(t), AliasUse::Known(1));
        assert_eq!(a.choose(t), AliasUse::Known(1));
        let u = "shellies/shellyplug-s-C45BBE/relay/0/power";
        assert_eq!(a.choose(u), AliasUse::Assign(2));
        a.assign(u, 2);
        assert_eq!(
            (a.choose(u), a.choose(t)),
            (AliasUse::Known(2), AliasUse::Known(1))
        );
        // Short topics go by name.
        assert_eq!(a.choose("a/b"), AliasUse::Name);
    }

    #[test]
    fn an_unwritten_assignment_is_not_kept() {
        // A PUBLISH dropped before it went out (larger than the client's
        // Maximum Packet Size) taught the client nothing.
        let mut a = OutAliases::new(1).unwrap();
        assert_eq!(a.choose("plant/line1/temp"), AliasUse::Assign(1));
        assert_eq!(a.choose("plant/line1/temp"), AliasUse::Assign(1));
        assert_eq!(a.len(), 0);
    }

    #[test]
    fn full_table_gives_the_least_recently_used_alias_away() {
        // [MQTT-3.3.2-11]: never more than the maximum; the busy topic
        // keeps its alias.
        let mut a = OutAliases::new(2).unwrap();
        for (t, alias) in [("busy/topic", 1), ("rare/topic", 2)] {
            assert_eq!(a.choose(t), AliasUse::Assign(alias));
            a.assign(t, alias);
        }
        assert_eq!(a.choose("busy/topic"), AliasUse::Known(1));
        assert_eq!(a.choose("new/topic"), AliasUse::Assign(2));
        a.assign("new/topic", 2);
        assert_eq!(a.len(), 2);
        assert_eq!(a.choose("busy/topic"), AliasUse::Known(1));
        assert_eq!(a.choose("new/topic"), AliasUse::Known(2));
        // The replaced topic must be named again, with a new alias.
        assert_eq!(a.choose("rare/topic"), AliasUse::Assign(1));
    }
}
