//! CONNECT, DISCONNECT and the end of a connection: client identifiers,
//! CONNACK return codes, session takeover, clean and persistent sessions,
//! wills (MQTT 3.1.1 §3.1, §3.2, §3.14; 5.0 §3.1, §3.2, §3.14).

use std::time::{Duration, Instant};

use super::conn::{Phase, WillMsg};
use super::session::{OutState, Session, SessionId};
use super::{ConnId, Core};
use crate::codec::{self, Connect, Disconnect, Packet, ProtocolVersion, PubResp, PubRespKind};
use crate::topic;

/// CONNACK return codes of 3.1.1 [MQTT 3.1.1 §3.2.2.3] and the 5.0 reason
/// codes the broker uses in their place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    IdentifierRejected,
    ServerUnavailable,
    NotAuthorized,
}

impl Refusal {
    fn code(self, version: ProtocolVersion) -> u8 {
        match (self, version.is_v5()) {
            (Refusal::IdentifierRejected, false) => 0x02,
            (Refusal::ServerUnavailable, false) => 0x03,
            (Refusal::NotAuthorized, false) => 0x05,
            (Refusal::IdentifierRejected, true) => 0x85,
            (Refusal::ServerUnavailable, true) => 0x97, // quota exceeded
            (Refusal::NotAuthorized, true) => 0x87,
        }
    }
}

/// Longest client id MQTT 3.1 allows [MQTT 3.1 §3.1, "Client Identifier"].
const V31_MAX_CLIENT_ID: usize = 23;

impl Core {
    pub(super) fn handle_connect(&mut self, id: ConnId, c: Connect<'_>, now: Instant) {
        if let Some(conn) = self.conn_mut(id) {
            conn.protocol = c.protocol;
        }
        if let Some(reason) = self.check_connect(&c) {
            log::info!(
                "client {} refused ({reason:?}), client id '{}'",
                self.label(id),
                c.client_id
            );
            self.refuse(id, reason, now);
            return;
        }
        if let Some(w) = &c.will {
            if let Err(e) = topic::validate_topic_name(
                w.topic,
                self.limits.max_topic_len,
                self.limits.max_topic_levels,
            ) {
                return self.protocol_violation(id, &format!("will topic: {e}"), now);
            }
        }

        // [MQTT-3.1.3-6] [MQTT-3.1.3-7]: an empty id gets one assigned when
        // the session is clean; check_connect refused the other case.
        let client_id: Box<str> = if c.client_id.is_empty() {
            self.assign_client_id().into()
        } else {
            c.client_id.into()
        };

        // [MQTT-3.1.4-2]: a client id already connected takes over; the old
        // connection is closed, with its will (it did not say DISCONNECT).
        let existing = self.by_client_id.get(&client_id).copied();
        if let Some(sid) = existing {
            if let Some(old) = self.sessions.get(sid.0).and_then(|s| s.conn) {
                log::info!("client '{client_id}' connected again; closing its old connection");
                self.disconnect_v5(old, 0x8E);
                self.detach(old, true, true);
            }
        }
        let existing = self.by_client_id.get(&client_id).copied();
        // [MQTT-3.1.2-6]: clean session discards any previous session.
        if let (Some(sid), true) = (existing, c.clean_start) {
            self.end_session(sid);
        }
        let resumed = if c.clean_start { None } else { existing };
        if resumed.is_none() && self.sessions.len() >= self.limits.max_sessions {
            log::warn!(
                "client '{client_id}' refused: max_sessions ({}) reached",
                self.limits.max_sessions
            );
            self.refuse(id, Refusal::ServerUnavailable, now);
            return;
        }
        let sid = match resumed {
            Some(sid) => sid,
            None => {
                let session = Session::new(client_id.clone(), c.protocol, c.clean_start);
                let sid = SessionId(self.sessions.insert(session));
                self.by_client_id.insert(client_id.clone(), sid);
                sid
            }
        };
        if let Some(s) = self.sessions.get_mut(sid.0) {
            s.conn = Some(id);
            s.protocol = c.protocol;
            s.clean = c.clean_start;
        }

        let will = c.will.as_ref().map(|w| WillMsg {
            topic: w.topic.into(),
            payload: w.payload.into(),
            qos: w.qos,
            retain: w.retain,
        });
        let keep_alive = Duration::from_secs(u64::from(c.keep_alive));
        let peer = self.label(id).to_string();
        let label: Box<str> = format!("'{client_id}' ({peer})").into();
        let connect_timeout = self.limits.connect_timeout;
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        conn.phase = Phase::Connected(sid);
        conn.keep_alive = keep_alive;
        conn.will = will;
        conn.label = label;
        let deadline = conn.deadline(connect_timeout);
        self.note_deadline(deadline);
        self.stats.clients_connected += 1;
        self.stats.clients_maximum = self.stats.clients_maximum.max(self.stats.clients_connected);
        log::info!(
            "client '{client_id}' connected from {peer} (protocol {:?}, clean {}, keepalive {}s)",
            c.protocol,
            c.clean_start,
            c.keep_alive
        );

        // [MQTT-3.2.2-1] [MQTT-3.2.2-2]: session present tells whether state
        // was kept from before.
        let connack = Packet::Connack(codec::Connack {
            session_present: resumed.is_some(),
            code: 0x00,
            properties: codec::Properties::EMPTY,
        });
        self.send(id, &connack);
        if resumed.is_some() {
            self.resend_inflight(id, sid);
        }
        self.pump(sid);
    }

    /// The CONNACK refusal a CONNECT earns before any session is touched.
    fn check_connect(&self, c: &Connect<'_>) -> Option<Refusal> {
        let id_len = c.client_id.len();
        if c.client_id.is_empty() && !c.clean_start && !c.protocol.is_v5() {
            // [MQTT-3.1.3-8]: empty id with clean session 0.
            return Some(Refusal::IdentifierRejected);
        }
        if id_len > self.limits.max_client_id_len
            || (c.protocol == ProtocolVersion::V31 && id_len > V31_MAX_CLIENT_ID)
            || (c.protocol == ProtocolVersion::V31 && id_len == 0)
        {
            return Some(Refusal::IdentifierRejected);
        }
        if c.username.is_none() && !self.allow_anonymous {
            return Some(Refusal::NotAuthorized);
        }
        if c.username.is_some() && !self.allow_anonymous {
            // No password file support yet: with anonymous access off there is
            // nobody who can be let in (see README, "Security").
            return Some(Refusal::NotAuthorized);
        }
        None
    }

    /// Sends a refusing CONNACK [MQTT-3.2.2-4] (session present 0
    /// [MQTT-3.2.2-4]) and closes [MQTT-3.2.2-5].
    fn refuse(&mut self, id: ConnId, why: Refusal, now: Instant) {
        let version = self
            .conn(id)
            .map(|c| c.protocol)
            .unwrap_or(ProtocolVersion::V311);
        let connack = Packet::Connack(codec::Connack {
            session_present: false,
            code: why.code(version),
            properties: codec::Properties::EMPTY,
        });
        self.send(id, &connack);
        self.close(id, false, now);
    }

    /// Resends what was in flight when the client went away: PUBLISH with
    /// DUP for unacknowledged messages, PUBREL for released ones
    /// [MQTT-4.4.0-1].
    fn resend_inflight(&mut self, id: ConnId, sid: SessionId) {
        let Some(session) = self.sessions.get(sid.0) else {
            return;
        };
        let Some(conn) = self.conns.get_mut(id.0).and_then(Option::as_mut) else {
            return;
        };
        let version = conn.protocol;
        let mut sent = 0u64;
        for f in &session.inflight {
            match f.state {
                OutState::AwaitAck => {
                    let p = codec::Publish {
                        dup: true,
                        qos: f.pending.qos,
                        retain: f.pending.retain,
                        topic: &f.pending.msg.topic,
                        packet_id: Some(f.pid),
                        properties: codec::Properties::EMPTY,
                        payload: &f.pending.msg.payload,
                    };
                    p.encode(version, conn.out_buf());
                    sent += 1;
                }
                OutState::AwaitComp => {
                    let r = PubResp {
                        kind: PubRespKind::PubRel,
                        packet_id: f.pid,
                        reason: 0,
                        properties: codec::Properties::EMPTY,
                    };
                    r.encode(version, conn.out_buf());
                }
            }
        }
        self.stats.messages_sent += sent;
        self.mark_dirty(id);
    }

    pub(super) fn handle_disconnect(&mut self, id: ConnId, d: Disconnect<'_>, now: Instant) {
        // [MQTT-3.14.4-3]: DISCONNECT discards the will. 5.0 reason 0x04
        // asks for it to be published all the same.
        let with_will = d.reason == 0x04;
        log::info!("client {} disconnected", self.label(id));
        self.close(id, with_will, now);
    }

    /// Ends connection `id` from the core's side: publishes its will if
    /// `with_will`, detaches it from its session (ending a clean session) and
    /// marks it for the caller to close.
    pub(super) fn close(&mut self, id: ConnId, with_will: bool, _now: Instant) {
        self.detach(id, with_will, false);
    }

    /// See [`Core::close`]. With `keep_session` (takeover) the session stays
    /// for the new connection to decide about, even a clean one.
    fn detach(&mut self, id: ConnId, with_will: bool, keep_session: bool) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        let phase = conn.phase;
        conn.phase = Phase::Closing;
        let will = conn.will.take();
        self.mark_dirty(id);
        let Phase::Connected(sid) = phase else {
            return;
        };
        self.stats.clients_connected = self.stats.clients_connected.saturating_sub(1);
        if let (true, Some(w)) = (with_will, will) {
            // [MQTT-3.1.2-8]: the will is published when the connection ends
            // without DISCONNECT; its retain flag is honoured [MQTT-3.1.2-17].
            let origin = Some(sid);
            self.route(&w.topic, &w.payload, w.qos, w.retain, origin);
        }
        let clean = match self.sessions.get_mut(sid.0) {
            Some(s) if s.conn == Some(id) => {
                s.conn = None;
                s.clean
            }
            _ => return,
        };
        if clean && !keep_session {
            // [MQTT-3.1.2-6]: a clean session ends with its connection.
            self.end_session(sid);
        }
    }

    /// Forgets a session: its subscriptions, queue and in-flight messages.
    pub(super) fn end_session(&mut self, sid: SessionId) {
        if !self.sessions.contains(sid.0) {
            return;
        }
        let session = self.sessions.remove(sid.0);
        for sub in &session.subscriptions {
            self.trie.remove(&sub.filter, sid);
        }
        self.by_client_id.remove(&session.client_id);
    }
}
