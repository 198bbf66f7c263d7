//! PUBLISH in both directions and the QoS 1/2 acknowledgements
//! (MQTT 3.1.1 §3.3 to §3.7, §4.3 to §4.6).
//!
//! Matching a topic against subscriptions (`Trie::for_each_match`) is kept
//! apart from delivering to the sessions found: matches are collected, one
//! entry per session with the highest QoS among its matching subscriptions
//! (the one documented way boxmq handles overlapping subscriptions, allowed
//! by [MQTT-3.3.5-1]), then delivered.

use std::rc::Rc;
use std::time::Instant;

use super::retain::RetainOutcome;
use super::session::{Inflight, Message, OutState, Pending, SessionId};
use super::{ConnId, Core};
use crate::codec::{self, PacketId, ProtocolVersion, PubResp, PubRespKind, Publish, QoS};
use crate::topic;

impl Core {
    pub(super) fn handle_publish(
        &mut self,
        id: ConnId,
        sid: SessionId,
        p: Publish<'_>,
        now: Instant,
    ) {
        if let Err(e) = topic::validate_topic_name(
            p.topic,
            self.limits.max_topic_len,
            self.limits.max_topic_levels,
        ) {
            return self.protocol_violation(id, &format!("PUBLISH topic: {e}"), now);
        }
        self.stats.messages_received += 1;
        match (p.qos, p.packet_id) {
            (QoS::AtMostOnce, _) => {
                self.route(p.topic, p.payload, p.qos, p.retain, Some(sid));
            }
            (QoS::AtLeastOnce, Some(pid)) => {
                self.route(p.topic, p.payload, p.qos, p.retain, Some(sid));
                // [MQTT-4.3.2-2]: PUBACK with the same packet id.
                self.send_pubresp(id, PubRespKind::PubAck, pid, 0);
            }
            (QoS::ExactlyOnce, Some(pid)) => {
                // [MQTT-4.3.3-2]: a QoS 2 message is routed once; a resend
                // with the same packet id before PUBREL only gets PUBREC.
                let seen = self
                    .sessions
                    .get(sid.0)
                    .is_some_and(|s| s.incoming_qos2.contains(&pid.get()));
                if !seen {
                    self.route(p.topic, p.payload, p.qos, p.retain, Some(sid));
                    if let Some(s) = self.sessions.get_mut(sid.0) {
                        s.incoming_qos2.push(pid.get());
                    }
                }
                self.send_pubresp(id, PubRespKind::PubRec, pid, 0);
            }
            // The codec guarantees a packet id for QoS > 0.
            (_, None) => self.protocol_violation(id, "PUBLISH without packet id", now),
        }
    }

    fn send_pubresp(&mut self, id: ConnId, kind: PubRespKind, pid: PacketId, reason: u8) {
        let packet = codec::Packet::PubResp(PubResp {
            kind,
            packet_id: pid,
            reason,
            properties: codec::Properties::EMPTY,
        });
        self.send(id, &packet);
    }

    pub(super) fn handle_pubresp(
        &mut self,
        id: ConnId,
        sid: SessionId,
        r: PubResp<'_>,
        _now: Instant,
    ) {
        let Some(session) = self.sessions.get_mut(sid.0) else {
            return;
        };
        match r.kind {
            PubRespKind::PubAck => {
                // [MQTT-4.3.2-1]: the message is acknowledged; forget it.
                if let Some(i) = session.inflight_position(r.packet_id) {
                    if session.inflight[i].pending.qos == QoS::AtLeastOnce {
                        session.inflight.remove(i);
                    }
                }
                self.pump(sid);
            }
            PubRespKind::PubRec => {
                let pos = session.inflight_position(r.packet_id);
                match pos {
                    Some(i) if r.reason >= 0x80 => {
                        // 5.0: a failing PUBREC ends the flow [MQTT-4.3.3-4].
                        session.inflight.remove(i);
                        self.pump(sid);
                    }
                    Some(i) => {
                        // [MQTT-4.3.3-1]: after PUBREC, PUBREL; the message
                        // itself is no longer needed, only its id.
                        session.inflight[i].state = OutState::AwaitComp;
                        self.send_pubresp(id, PubRespKind::PubRel, r.packet_id, 0);
                    }
                    None => {
                        // Unknown id: answer PUBREL so the client can finish
                        // (5.0 says why: packet identifier not found).
                        self.send_pubresp(id, PubRespKind::PubRel, r.packet_id, 0x92);
                    }
                }
            }
            PubRespKind::PubComp => {
                if let Some(i) = session.inflight_position(r.packet_id) {
                    if session.inflight[i].state == OutState::AwaitComp {
                        session.inflight.remove(i);
                    }
                }
                self.pump(sid);
            }
            PubRespKind::PubRel => {
                // [MQTT-4.3.3-2]: release the packet id and answer PUBCOMP,
                // also when the id is unknown (a resent PUBREL).
                let pid = r.packet_id.get();
                let known = match session.incoming_qos2.iter().position(|&p| p == pid) {
                    Some(i) => {
                        session.incoming_qos2.swap_remove(i);
                        true
                    }
                    None => false,
                };
                let reason = if known { 0 } else { 0x92 };
                self.send_pubresp(id, PubRespKind::PubComp, r.packet_id, reason);
            }
        }
    }

    /// Delivers a message to every session with a matching subscription,
    /// and stores or clears it as retained when `retain` is set.
    pub(super) fn route(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
        origin: Option<SessionId>,
    ) {
        // Built at most once, and only when some session must keep it.
        let mut shared: Option<Rc<Message>> = None;
        if retain {
            let msg = new_message(topic, payload, qos);
            match self.retained.set(
                &msg,
                self.limits.max_retained_messages,
                self.limits.max_retained_bytes,
            ) {
                RetainOutcome::Refused => {
                    self.stats.retained_refused += 1;
                    log::warn!("retained message on '{topic}' not stored: retained limits reached");
                }
                RetainOutcome::Stored | RetainOutcome::Cleared => {}
            }
            shared = Some(msg);
        }

        let mut matches = std::mem::take(&mut self.scratch_matches);
        matches.clear();
        self.trie.for_each_match(topic, |sid, opts| {
            // 5.0 No Local: not back to the session that published it
            // [MQTT-3.8.3-3]; always false before 5.0.
            if !(opts.no_local && Some(sid) == origin) {
                matches.push((sid, opts.qos));
            }
        });
        // One delivery per session, at the highest QoS granted among the
        // subscriptions that match [MQTT-3.3.5-1].
        matches.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        matches.dedup_by_key(|m| m.0);

        // A QoS 0 frame is the same bytes for every 3.1/3.1.1 subscriber:
        // encode it once and copy it.
        let mut frame = std::mem::take(&mut self.scratch_frame);
        frame.clear();
        for &(sid, granted) in &matches {
            // [MQTT-3.8.4-6]: delivered at the lower of published and granted QoS.
            let q = qos.min(granted);
            if q == QoS::AtMostOnce {
                if frame.is_empty() {
                    let p = Publish {
                        dup: false,
                        qos: QoS::AtMostOnce,
                        // [MQTT-3.3.1-9]: retain is 0 towards existing subscribers.
                        retain: false,
                        topic,
                        packet_id: None,
                        properties: codec::Properties::EMPTY,
                        payload,
                    };
                    p.encode(ProtocolVersion::V311, &mut frame);
                }
                self.deliver_frame(sid, &frame);
            } else {
                let msg = shared
                    .get_or_insert_with(|| new_message(topic, payload, qos))
                    .clone();
                self.deliver(
                    sid,
                    Pending {
                        msg,
                        qos: q,
                        retain: false,
                    },
                );
            }
        }
        self.scratch_frame = frame;
        self.scratch_matches = matches;
    }

    /// Appends a ready QoS 0 frame to a session's connection, or drops it
    /// (counted) when the session is offline or its output buffer is full.
    fn deliver_frame(&mut self, sid: SessionId, frame: &[u8]) {
        let max_out = self.limits.max_output_buffer;
        let conn_id = match self.sessions.get(sid.0).and_then(|s| s.conn) {
            Some(c) => c,
            None => return, // QoS 0 is not kept for offline sessions.
        };
        let Some(conn) = self.conns.get_mut(conn_id.0).and_then(Option::as_mut) else {
            return;
        };
        if conn.output_len() >= max_out {
            self.stats.publish_dropped += 1;
            return;
        }
        conn.out_buf().extend_from_slice(frame);
        self.stats.messages_sent += 1;
        self.mark_dirty(conn_id);
    }

    /// Gives a QoS 1/2 message (or a retained message of any QoS) to a
    /// session: into its queue, from which `pump` sends as the inflight
    /// window and the output buffer allow. Dropped and counted when the
    /// queue is full.
    pub(super) fn deliver(&mut self, sid: SessionId, pending: Pending) {
        let limits = &self.limits;
        let Some(session) = self.sessions.get_mut(sid.0) else {
            return;
        };
        if session.queue.len() >= limits.max_queued_messages
            || session.queued_bytes + pending.msg.cost() > limits.max_queued_bytes
        {
            self.stats.publish_dropped += 1;
            log::debug!(
                "queue of '{}' full; message on '{}' dropped",
                session.client_id,
                pending.msg.topic
            );
            return;
        }
        session.queued_bytes += pending.msg.cost();
        session.queue.push_back(pending);
        self.pump(sid);
    }

    /// Moves queued messages of a connected session to its connection while
    /// the inflight window and the output buffer have room. Order is kept:
    /// the queue is first in, first out [MQTT-4.6.0-6].
    pub(super) fn pump(&mut self, sid: SessionId) {
        let max_inflight = usize::from(self.limits.max_inflight);
        let max_out = self.limits.max_output_buffer;
        let Some(session) = self.sessions.get_mut(sid.0) else {
            return;
        };
        let Some(conn_id) = session.conn else {
            return;
        };
        let Some(conn) = self.conns.get_mut(conn_id.0).and_then(Option::as_mut) else {
            return;
        };
        if !conn.is_connected() {
            return;
        }
        let version = conn.protocol;
        let mut sent = 0u64;
        while conn.output_len() < max_out {
            let Some(front) = session.queue.front() else {
                break;
            };
            if front.qos != QoS::AtMostOnce && session.inflight.len() >= max_inflight {
                break;
            }
            let Some(p) = session.pop_queued() else {
                break;
            };
            let packet_id = if p.qos == QoS::AtMostOnce {
                None
            } else {
                Some(session.next_packet_id())
            };
            let publish = Publish {
                dup: false,
                qos: p.qos,
                retain: p.retain,
                topic: &p.msg.topic,
                packet_id,
                properties: codec::Properties::EMPTY,
                payload: &p.msg.payload,
            };
            publish.encode(version, conn.out_buf());
            sent += 1;
            if let Some(pid) = packet_id {
                session.inflight.push_back(Inflight {
                    pid,
                    state: OutState::AwaitAck,
                    pending: p,
                });
            }
        }
        if sent > 0 {
            self.stats.messages_sent += sent;
            self.mark_dirty(conn_id);
        }
    }
}

fn new_message(topic: &str, payload: &[u8], qos: QoS) -> Rc<Message> {
    Rc::new(Message {
        topic: topic.into(),
        payload: payload.into(),
        qos,
    })
}
