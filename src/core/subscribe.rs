//! SUBSCRIBE and UNSUBSCRIBE (MQTT 3.1.1 §3.8 to §3.11), and the retained
//! messages a new subscription receives.

use std::time::Instant;

use super::session::{Pending, SessionId, Subscription};
use super::{ConnId, Core};
use crate::codec::{self, Packet, ProtocolVersion, QoS, Subscribe, Unsubscribe};
use crate::topic;

/// SUBACK failure code of 3.1.1 [MQTT 3.1.1 §3.9.3].
const SUBACK_FAILURE: u8 = 0x80;
/// 5.0 reason codes used in SUBACK and UNSUBACK.
const RC_TOPIC_FILTER_INVALID: u8 = 0x8F;
const RC_QUOTA_EXCEEDED: u8 = 0x97;
const RC_SHARED_NOT_SUPPORTED: u8 = 0x9E;
const RC_NO_SUBSCRIPTION_EXISTED: u8 = 0x11;

impl Core {
    pub(super) fn handle_subscribe(
        &mut self,
        id: ConnId,
        sid: SessionId,
        s: Subscribe<'_>,
        _now: Instant,
    ) {
        let version = self
            .conn(id)
            .map(|c| c.protocol)
            .unwrap_or(ProtocolVersion::V311);
        let fail = |v5_code: u8| {
            if version.is_v5() {
                v5_code
            } else {
                SUBACK_FAILURE
            }
        };
        let mut codes = std::mem::take(&mut self.scratch_codes);
        codes.clear();
        for (filter, options) in s.filters() {
            let code = if let Err(e) = topic::validate_topic_filter(
                filter,
                self.limits.max_topic_len,
                self.limits.max_topic_levels,
            ) {
                // boxmq answers a bad filter with a failure code and keeps
                // the connection, so one bad filter does not cost the others.
                log::info!(
                    "client {}: subscription '{filter}' refused: {e}",
                    self.label(id)
                );
                fail(RC_TOPIC_FILTER_INVALID)
            } else if filter.starts_with("$share/") {
                log::info!(
                    "client {}: shared subscription '{filter}' refused: not supported yet",
                    self.label(id)
                );
                fail(RC_SHARED_NOT_SUPPORTED)
            } else {
                match self.add_subscription(sid, filter, options) {
                    true => options.qos as u8,
                    false => {
                        log::warn!(
                            "client {}: subscription '{filter}' refused: max_subscriptions_per_session ({}) reached",
                            self.label(id),
                            self.limits.max_subscriptions_per_session
                        );
                        fail(RC_QUOTA_EXCEEDED)
                    }
                }
            };
            codes.push(code);
        }
        // [MQTT-3.8.4-1] [MQTT-3.8.4-2] [MQTT-3.8.4-5]: one SUBACK with the
        // same packet id and one code per filter, in order.
        let suback = Packet::Suback(codec::Suback {
            packet_id: s.packet_id,
            properties: codec::Properties::EMPTY,
            codes: &codes,
        });
        self.send(id, &suback);

        // [MQTT-3.3.1-6] [MQTT-3.8.4-3]: retained messages matching each
        // accepted filter follow, with the retain flag set [MQTT-3.3.1-8].
        for ((filter, _), &code) in s.filters().zip(codes.iter()) {
            let Some(granted) = QoS::from_u8(code) else {
                continue;
            };
            self.send_retained(sid, filter, granted);
        }
        self.scratch_codes = codes;
    }

    /// Adds or replaces a subscription. `false` when the session holds its
    /// maximum of subscriptions already and this filter is new.
    fn add_subscription(
        &mut self,
        sid: SessionId,
        filter: &str,
        options: codec::SubOptions,
    ) -> bool {
        let max = self.limits.max_subscriptions_per_session;
        let Some(session) = self.sessions.get_mut(sid.0) else {
            return false;
        };
        match session.subscription_index(filter) {
            // [MQTT-3.8.4-3]: a subscription to the same filter replaces the old one.
            Some(i) => session.subscriptions[i].options = options,
            None if session.subscriptions.len() >= max => return false,
            None => session.subscriptions.push(Subscription {
                filter: filter.into(),
                options,
            }),
        }
        self.trie.insert(filter, sid, options);
        true
    }

    fn send_retained(&mut self, sid: SessionId, filter: &str, granted: QoS) {
        let mut found = Vec::new();
        self.retained
            .for_each_match(filter, |m| found.push(m.clone()));
        for msg in found {
            let qos = msg.qos.min(granted);
            self.deliver(
                sid,
                Pending {
                    msg,
                    qos,
                    retain: true,
                },
            );
        }
    }

    pub(super) fn handle_unsubscribe(&mut self, id: ConnId, sid: SessionId, u: Unsubscribe<'_>) {
        let mut codes = std::mem::take(&mut self.scratch_codes);
        codes.clear();
        if let Some(session) = self.sessions.get_mut(sid.0) {
            for filter in u.filters() {
                // [MQTT-3.10.4-1] [MQTT-3.10.4-2]: the subscription goes and no
                // new messages are added for it.
                let existed = match session.subscription_index(filter) {
                    Some(i) => {
                        session.subscriptions.swap_remove(i);
                        self.trie.remove(filter, sid);
                        true
                    }
                    None => false,
                };
                codes.push(if existed {
                    0
                } else {
                    RC_NO_SUBSCRIPTION_EXISTED
                });
            }
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
    }
}
