//! SUBSCRIBE and UNSUBSCRIBE (MQTT 3.1.1 §3.8 to §3.11, 5.0 §3.8 to §3.11),
//! and the retained messages a new subscription receives.

use std::time::Instant;

use super::session::{Pending, SessionId, SubEntry, Subscription};
use super::verdict::{EventKind, Gate, HookQuestion, Kind};
use super::{Close, ConnId, Core, Input};
use crate::auth::SubscribeDecision;
use crate::codec::{self, Packet, ProtocolVersion, QoS, Subscribe, Unsubscribe};
use crate::topic::{self, TopicError};

/// SUBACK failure code of 3.1.1 [MQTT 3.1.1 §3.9.3].
const SUBACK_FAILURE: u8 = 0x80;
/// 5.0 reason codes used in SUBACK and UNSUBACK.
const RC_TOPIC_FILTER_INVALID: u8 = 0x8F;
const RC_QUOTA_EXCEEDED: u8 = 0x97;
const RC_NO_SUBSCRIPTION_EXISTED: u8 = 0x11;
const RC_NOT_AUTHORIZED: u8 = 0x87;

/// What became of one filter of a SUBSCRIBE.
enum Outcome {
    /// Granted at this QoS; `new` when no subscription on the filter existed.
    Granted { qos: QoS, new: bool, shared: bool },
    /// Refused with this code.
    Refused(u8),
}

impl Core {
    /// A SUBSCRIBE: checked, put to the application's on_subscribe, each
    /// filter granted or refused and answered with SUBACK, then the
    /// retained messages of the granted filters. Taken, or parked for the
    /// application's verdict (see [`Input`]); an error ends the connection
    /// (see [`Close`]).
    pub(super) fn handle_subscribe(
        &mut self,
        id: ConnId,
        sid: SessionId,
        s: Subscribe<'_>,
        now: Instant,
    ) -> Result<Input, Close> {
        self.check_subscribe(&s)?;
        let hook = match self.gate(
            id,
            Kind::Subscribe,
            |core| subscribe_question(core, sid, &s),
            now,
        ) {
            // Parked: `handle_data` gives the bytes back (see `verdict.rs`).
            Gate::Wait => return Ok(Input::Parked),
            Gate::Go => None,
            Gate::Refuse(_) => Some(Vec::new()),
            Gate::Filters(v) => Some(v),
        };
        let outcomes = self.grant_filters(id, sid, &s, hook.as_deref());
        self.send_granted_retained(id, sid, &s, outcomes, now);
        Ok(Input::Taken)
    }

    /// The checks of a SUBSCRIBE's filters before any is decided.
    fn check_subscribe(&self, s: &Subscribe<'_>) -> Result<(), Close> {
        // [MQTT-3.8.3-4]: No Local on a shared subscription is a protocol error.
        if s.filters()
            .any(|(f, o)| o.no_local && f.starts_with("$share/"))
        {
            return Err(Close::protocol("No Local on a shared subscription"));
        }
        let (len, levels) = (self.limits.max_topic_len, self.limits.max_topic_levels);
        if let Some((code, why)) = s
            .filters()
            .find_map(|(f, _)| malformed_filter(f, len, levels))
        {
            return Err(Close::new(code, why));
        }
        Ok(())
    }

    /// Decides each filter of SUBSCRIBE `s` (the application's answer
    /// `hook` per filter, if it gave one, then the ACL), subscribes the
    /// granted ones and answers SUBACK; what became of each filter.
    fn grant_filters(
        &mut self,
        id: ConnId,
        sid: SessionId,
        s: &Subscribe<'_>,
        hook: Option<&[bool]>,
    ) -> Vec<Outcome> {
        let version = self
            .conn(id)
            .map(|c| c.protocol)
            .unwrap_or(ProtocolVersion::V311);
        let sub_id = s.properties.subscription_identifier();
        let mut codes = std::mem::take(&mut self.scratch_codes);
        codes.clear();
        let mut outcomes = Vec::new();
        for (i, (filter, options)) in s.filters().enumerate() {
            // `mount_point`: the filter goes behind it.
            let filter = &*self.mounted(id, filter);
            let refused_by_hook = hook.is_some_and(|v| !v.get(i).copied().unwrap_or(false));
            let decision = if refused_by_hook {
                log::info!(
                    "client {}: subscription '{filter}' refused by the application",
                    self.label(id)
                );
                SubscribeDecision::Denied
            } else {
                self.acl_decision(sid, filter)
            };
            let outcome = if decision == SubscribeDecision::Denied {
                // [MQTT-3.9.3] 0x80 / 5.0 0x87: nothing under this filter may
                // ever be delivered to this client.
                log::info!(
                    "client {}: subscription '{filter}' denied by the ACL",
                    self.label(id)
                );
                Outcome::Refused(if version.is_v5() {
                    RC_NOT_AUTHORIZED
                } else {
                    SUBACK_FAILURE
                })
            } else {
                let acl_full = decision == SubscribeDecision::Full;
                // The listener's `max_qos` caps what is granted (Mosquitto).
                let mut options = options;
                options.qos = options.qos.min(self.listener_of(id).max_qos);
                let entry = SubEntry {
                    options,
                    sub_id,
                    acl_full,
                };
                self.subscribe_one(id, sid, filter, entry, version)
            };
            codes.push(match outcome {
                Outcome::Granted { qos, .. } => qos as u8,
                Outcome::Refused(code) => code,
            });
            outcomes.push(outcome);
        }
        // [MQTT-3.8.4-1] [MQTT-3.8.4-2] [MQTT-3.8.4-5]: one SUBACK with the
        // same packet id and one code per filter, in order.
        let suback = Packet::Suback(codec::Suback {
            packet_id: s.packet_id,
            properties: codec::Properties::EMPTY,
            codes: &codes,
        });
        self.send(id, &suback);
        self.scratch_codes = codes;
        outcomes
    }

    /// The retained messages for the filters of `s` that were granted
    /// (`outcomes`, in the order of the filters), and their events.
    fn send_granted_retained(
        &mut self,
        id: ConnId,
        sid: SessionId,
        s: &Subscribe<'_>,
        outcomes: Vec<Outcome>,
        now: Instant,
    ) {
        let sub_id = s.properties.subscription_identifier();
        // [MQTT-3.3.1-6] [MQTT-3.8.4-3]: retained messages matching each
        // granted filter follow, with the retain flag set [MQTT-3.3.1-8];
        // 5.0 Retain Handling 1 sends them only for a new subscription, 2
        // never [MQTT-3.3.1-9] [MQTT-3.3.1-10]; shared subscriptions never
        // get them (5.0 §4.8.2).
        for ((filter, options), outcome) in s.filters().zip(outcomes) {
            let Outcome::Granted { qos, new, shared } = outcome else {
                continue;
            };
            let filter = &*self.mounted(id, filter);
            self.emit(EventKind::Subscribed, sid, Some(filter), None);
            let wanted = match options.retain_handling {
                0 => true,
                1 => new,
                _ => false,
            };
            if wanted && !shared {
                self.send_retained(sid, filter, qos, sub_id, now);
            }
        }
    }

    /// After the rules changed (SIGHUP): decides again, for every
    /// subscription held, whether the ACL allows all it can match. One that
    /// no longer does has each delivery checked from now on, so a revoked
    /// read right stops the very next message; one that now does skips the
    /// check again. Subscriptions are kept either way (a denied one simply
    /// delivers nothing), as the client was told they were granted.
    pub(super) fn recheck_subscriptions(&mut self) {
        let mut changed = Vec::new();
        for (key, session) in &self.sessions {
            let sid = SessionId(key);
            for (i, sub) in session.subscriptions.iter().enumerate() {
                let full = self.acl_decision(sid, &sub.filter) == SubscribeDecision::Full;
                if full != sub.entry.acl_full {
                    changed.push((sid, i, full));
                }
            }
        }
        for (sid, i, full) in changed {
            let Some(sub) = self
                .sessions
                .get_mut(sid.0)
                .and_then(|s| s.subscriptions.get_mut(i))
            else {
                continue;
            };
            sub.entry.acl_full = full;
            let entry = sub.entry;
            let filter = sub.filter.clone();
            match topic::parse_shared(&filter) {
                Ok(Some((group, inner))) => self.router.shared.join(group, inner, sid, entry),
                _ => {
                    self.router.trie.insert(&filter, sid, entry);
                }
            }
        }
    }

    /// What the ACL says of a session subscribing to `filter`.
    pub(super) fn acl_decision(&self, sid: SessionId, filter: &str) -> SubscribeDecision {
        match self.sessions.get(sid.0) {
            Some(s) if s.trusted => SubscribeDecision::Full,
            Some(s) => self.auth.for_listener(s.listener()).subscribe_decision(
                s.username.as_deref(),
                &s.client_id,
                filter,
            ),
            None => SubscribeDecision::Denied,
        }
    }

    fn subscribe_one(
        &mut self,
        id: ConnId,
        sid: SessionId,
        filter: &str,
        entry: SubEntry,
        version: ProtocolVersion,
    ) -> Outcome {
        let fail = |v5_code: u8| {
            Outcome::Refused(if version.is_v5() {
                v5_code
            } else {
                SUBACK_FAILURE
            })
        };
        let (shared, inner) = match topic::parse_shared(filter) {
            Ok(Some((group, inner))) => (Some(group), inner),
            Ok(None) => (None, filter),
            Err(e) => {
                log::info!(
                    "client {}: subscription '{filter}' refused: {e}",
                    self.label(id)
                );
                return fail(RC_TOPIC_FILTER_INVALID);
            }
        };
        let max = self.limits.max_subscriptions_per_session;
        let Some(session) = self.sessions.get_mut(sid.0) else {
            return fail(RC_QUOTA_EXCEEDED);
        };
        let new = match session.subscription_index(filter) {
            // [MQTT-3.8.4-3]: a subscription to the same filter replaces the old one.
            Some(i) => {
                session.subscriptions[i].entry = entry;
                false
            }
            None if session.subscriptions.len() >= max => {
                log::warn!(
                    "client '{}': subscription '{filter}' refused: max_subscriptions_per_session ({max}) reached",
                    session.client_id
                );
                return fail(RC_QUOTA_EXCEEDED);
            }
            None => {
                session.subscriptions.push(Subscription {
                    filter: filter.into(),
                    entry,
                });
                true
            }
        };
        self.journal
            .subscribed(self.psid(sid), filter, entry.options, entry.sub_id);
        match shared {
            Some(group) => self.router.shared.join(group, inner, sid, entry),
            None => {
                self.router.trie.insert(filter, sid, entry);
            }
        }
        Outcome::Granted {
            qos: entry.options.qos,
            new,
            shared: shared.is_some(),
        }
    }

    fn send_retained(
        &mut self,
        sid: SessionId,
        filter: &str,
        granted: QoS,
        sub_id: Option<u32>,
        now: Instant,
    ) {
        let mut found = Vec::new();
        self.router.retained.for_each_match(filter, |m| {
            if !m.expired(now) {
                found.push(m.clone());
            }
        });
        // Retained messages the client may not read are not sent.
        if self.acl_decision(sid, filter) != SubscribeDecision::Full {
            found.retain(|m| self.may_receive(sid, &m.topic));
        }
        for msg in found {
            let qos = self.outgoing_qos(msg.qos, granted);
            let pending = Pending {
                msg,
                qos,
                retain: true,
                sub_ids: sub_id.into_iter().collect(),
            };
            // Its own subscription: never a reason to pause it.
            let _queued = self.deliver(sid, pending, now);
        }
    }

    /// Removes one subscription from the trie or its shared group.
    pub(super) fn forget_subscription(&mut self, sid: SessionId, filter: &str) {
        match topic::parse_shared(filter) {
            Ok(Some((group, inner))) => {
                self.router.shared.leave(group, inner, sid);
            }
            _ => {
                self.router.trie.remove(filter, sid);
            }
        }
    }

    /// An UNSUBSCRIBE: each filter's subscription removed, then UNSUBACK;
    /// a malformed filter ends the connection (see [`Close`]).
    pub(super) fn handle_unsubscribe(
        &mut self,
        id: ConnId,
        sid: SessionId,
        u: Unsubscribe<'_>,
    ) -> Result<(), Close> {
        let (len, levels) = (self.limits.max_topic_len, self.limits.max_topic_levels);
        if let Some((code, why)) = u.filters().find_map(|f| malformed_filter(f, len, levels)) {
            return Err(Close::new(code, why));
        }
        let mut codes = std::mem::take(&mut self.scratch_codes);
        codes.clear();
        for filter in u.filters() {
            let filter = &*self.mounted(id, filter);
            // [MQTT-3.10.4-1] [MQTT-3.10.4-2]: the subscription goes and no
            // new messages are added for it.
            let existed = match self.sessions.get_mut(sid.0) {
                Some(session) => match session.subscription_index(filter) {
                    Some(i) => {
                        session.subscriptions.swap_remove(i);
                        true
                    }
                    None => false,
                },
                None => false,
            };
            if existed {
                self.journal.unsubscribed(self.psid(sid), filter);
                self.forget_subscription(sid, filter);
                self.emit(EventKind::Unsubscribed, sid, Some(filter), None);
            }
            codes.push(if existed {
                0
            } else {
                RC_NO_SUBSCRIPTION_EXISTED
            });
        }
        let v5 = self.conn(id).is_some_and(|c| c.protocol.is_v5());
        // [MQTT-3.10.4-4] [MQTT-3.10.4-5]: UNSUBACK with the same packet id,
        // even when nothing was removed.
        let unsuback = Packet::Unsuback(codec::Unsuback {
            packet_id: u.packet_id,
            properties: codec::Properties::EMPTY,
            codes: if v5 { &codes } else { &[] },
        });
        self.send(id, &unsuback);
        self.scratch_codes = codes;
        Ok(())
    }
}

/// A SUBSCRIBE or UNSUBSCRIBE filter that is no filter at all (empty, a
/// wildcard not alone in its level, `#` not last, a `$share/` without a
/// share name or filter) or is past `max_len` bytes or `max_levels` levels,
/// with the DISCONNECT code and a reason. Mosquitto closes the connection
/// for these rather than answer a failure code (its level limit is boxmq's
/// default), and boxmq does the same.
fn malformed_filter(filter: &str, max_len: usize, max_levels: usize) -> Option<(u8, &'static str)> {
    let inner = match topic::parse_shared(filter) {
        Ok(Some((_, inner))) => inner,
        Ok(None) => filter,
        // [MQTT-4.8.2-1] [MQTT-4.8.2-2]
        Err(_) => return Some((0x82, "malformed shared subscription filter")),
    };
    match topic::validate_topic_filter(inner, max_len, max_levels) {
        Ok(()) => None,
        Err(TopicError::TooLong) => Some((0x81, "topic filter past max_topic_length")),
        Err(TopicError::TooManyLevels) => Some((0x81, "topic filter past max_topic_levels")),
        // [MQTT-4.7.3-1] [MQTT-4.7.1-2] [MQTT-4.7.1-3]
        Err(_) => Some((0x81, "malformed topic filter")),
    }
}

/// The on_subscribe question for SUBSCRIBE `s` of session `sid`.
fn subscribe_question(core: &Core, sid: SessionId, s: &Subscribe<'_>) -> HookQuestion {
    HookQuestion::Subscribe {
        client_id: core
            .sessions
            .get(sid.0)
            .map(|ss| ss.client_id.to_string())
            .unwrap_or_default(),
        filters: s
            .filters()
            .map(|(f, o)| (f.to_owned(), o.qos as u8))
            .collect(),
    }
}
