//! PUBLISH in both directions and the QoS 1/2 acknowledgements
//! (MQTT 3.1.1 §3.3 to §3.7, §4.3 to §4.6; 5.0 §3.3 to §3.7, §4.3, §4.6).
//!
//! Matching a topic against subscriptions (`Trie::for_each_match`) is kept
//! apart from delivering to the sessions found: matches are collected, one
//! entry per session with the highest QoS among its matching subscriptions
//! and all their subscription identifiers (the one documented way boxmq
//! handles overlapping subscriptions, allowed by [MQTT-3.3.5-1]), then
//! delivered.

use std::borrow::Cow;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::alias::{AliasUse, OutAliases};
use super::charge::Meter;
use super::listener::{mount_of, outgoing_qos, unmounted};
use super::matching::{Match, may_receive};
use super::message::Incoming;
use super::retain::RetainOutcome;
use super::session::{Inflight, Message, OutState, Pending, QueuePolicy, SessionId};
use super::verdict::{Gate, HookQuestion, Kind};
use super::{Close, ConnId, Core, Delivery, Input};
use crate::codec::{
    self, PacketId, Properties, PropertiesBuf, Property, ProtocolVersion, PubResp, PubRespKind,
    Publish, QoS,
};
use crate::topic;

/// 5.0 reason codes used on the publish path.
const RC_NO_MATCHING_SUBSCRIBERS: u8 = 0x10;
const RC_NOT_AUTHORIZED: u8 = 0x87;
const RC_RECEIVE_MAXIMUM_EXCEEDED: u8 = 0x93;
const RC_TOPIC_ALIAS_INVALID: u8 = 0x94;
const RC_PAYLOAD_FORMAT_INVALID: u8 = 0x99;

/// What routing one message did (see [`Core::route`]).
#[must_use]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Routed {
    /// Sessions it matched, counting those a No Local subscription
    /// skipped (the 5.0 PUBACK says 0x10 only when this is 0).
    pub matched: usize,
    /// A connected subscriber whose queue passed half its bound while
    /// keeping up with acknowledgements: the publisher is to be paused
    /// until it drains (see `flow.rs`). The first one found.
    pub pressure: Option<SessionId>,
}

/// What one outgoing PUBLISH carries, borrowed.
struct Outgoing<'a> {
    topic: &'a str,
    payload: &'a [u8],
    props: &'a [u8],
    expiry: Option<u32>,
    qos: QoS,
    retain: bool,
    dup: bool,
    packet_id: Option<PacketId>,
    sub_ids: &'a [u32],
}

impl<'a> Outgoing<'a> {
    /// A held message as it goes out now (its expiry reduced by the wait).
    fn of(p: &'a Pending, packet_id: Option<PacketId>, dup: bool, now: Instant) -> Self {
        Outgoing {
            topic: &p.msg.topic,
            payload: &p.msg.payload,
            props: &p.msg.props,
            expiry: p.msg.remaining_expiry(now),
            qos: p.qos,
            retain: p.retain,
            dup,
            packet_id,
            sub_ids: &p.sub_ids,
        }
    }
}

/// Encodes `d` for a connection speaking `version` into `out`, unless the
/// packet would be larger than `max_packet` (the client's Maximum Packet
/// Size): then nothing is written and `false` returned, and the message is
/// to be dropped for that client [MQTT-3.1.2-25]. With `aliases` (a 5.0
/// client that takes topic aliases) the topic goes out as `alias.rs` says.
fn encode_delivery(
    out: &mut Vec<u8>,
    props_buf: &mut PropertiesBuf,
    version: ProtocolVersion,
    d: &Outgoing<'_>,
    max_packet: u32,
    aliases: Option<&mut OutAliases>,
) -> bool {
    props_buf.clear();
    let mut topic = d.topic;
    let mut assign = None;
    if version.is_v5() {
        if let Some(secs) = d.expiry {
            props_buf.push(&Property::MessageExpiryInterval(secs));
        }
        if let Some(p) = Properties::try_from_raw(d.props) {
            props_buf.extend_from(p);
        }
        for &id in d.sub_ids {
            props_buf.push(&Property::SubscriptionIdentifier(id));
        }
    }
    let mut aliases = aliases.filter(|_| version.is_v5());
    if let Some(a) = aliases.as_deref_mut() {
        match a.choose(d.topic) {
            AliasUse::Name => {}
            AliasUse::Known(alias) => {
                props_buf.push(&Property::TopicAlias(alias));
                topic = "";
            }
            AliasUse::Assign(alias) => {
                props_buf.push(&Property::TopicAlias(alias));
                assign = Some(alias);
            }
        }
    }
    let publish = Publish {
        dup: d.dup,
        qos: d.qos,
        retain: d.retain,
        topic,
        packet_id: d.packet_id,
        properties: props_buf.as_properties(),
        payload: d.payload,
    };
    if publish.encoded_len(version) > max_packet as usize {
        return false;
    }
    publish.encode(version, out);
    if let (Some(a), Some(alias)) = (aliases, assign) {
        // Known to the client once it is on the wire (see `alias.rs`).
        a.assign(d.topic, alias);
    }
    true
}

/// Splits a received PUBLISH's (or will's) properties into what is
/// forwarded and the message expiry interval.
pub(crate) fn forwardable(props: Properties<'_>, into: &mut PropertiesBuf) -> Option<u32> {
    into.clear();
    let mut expiry = None;
    for p in props.iter() {
        match p {
            Property::MessageExpiryInterval(secs) => expiry = Some(secs),
            Property::TopicAlias(_)
            | Property::SubscriptionIdentifier(_)
            | Property::WillDelayInterval(_) => {}
            other => into.push(&other),
        }
    }
    expiry
}

/// What the checks of a PUBLISH found (see [`Core::check_publish`]).
enum Checked<'a> {
    /// To be routed, under this topic (alias applied).
    Route(Cow<'a, str>),
    /// Not to be routed, and already dealt with: taken (not allowed:
    /// dropped and acknowledged) or parked for the application's verdict.
    Done(Input),
}

impl Core {
    /// A PUBLISH from connection `id` of session `sid`: checked, admitted
    /// past the flow control, acknowledged and routed. Says whether it was
    /// taken, refused for now (a subscriber's full queue) or parked for
    /// the application's verdict (see [`Input`]); an error ends the
    /// connection (see [`Close`]).
    pub(super) fn handle_publish(
        &mut self,
        id: ConnId,
        sid: SessionId,
        p: Publish<'_>,
        now: Instant,
    ) -> Result<Input, Close> {
        let topic = match self.check_publish(id, sid, &p, now)? {
            Checked::Route(topic) => topic,
            Checked::Done(input) => return Ok(input),
        };
        let topic: &str = &topic;
        // message_size_limit and the memory budget (`budget.rs`), before
        // anything is acknowledged.
        if let Some(input) = self.publish_budget(id, &p, topic)? {
            return Ok(input);
        }
        // 5.0: a payload announced as UTF-8 must be UTF-8 [MQTT-3.3.2-4];
        // boxmq refuses it (reason 0x99) rather than forwarding it.
        let bad_payload = p.properties.payload_format_indicator() == Some(1)
            && std::str::from_utf8(p.payload).is_err();
        if bad_payload && p.qos == QoS::AtMostOnce {
            return Err(Close::new(
                RC_PAYLOAD_FORMAT_INVALID,
                "payload is not UTF-8",
            ));
        }
        if !self.admit_publish(id, sid, &p, topic, bad_payload, now) {
            return Ok(Input::Refused);
        }
        let mut fwd = std::mem::take(&mut self.scratch_fwd);
        let expiry = forwardable(p.properties, &mut fwd);
        let incoming = Incoming {
            topic,
            payload: p.payload,
            qos: p.qos,
            retain: p.retain,
            props: fwd.as_properties().raw(),
            expiry,
        };
        let routed = self.ack_and_route(id, sid, &p, &incoming, bad_payload, now);
        self.scratch_fwd = fwd;
        if let Some(by) = routed? {
            self.throttle(id, by, now);
        }
        Ok(Input::Taken)
    }

    /// The checks of a PUBLISH before it is routed, and its topic (alias
    /// applied), or what became of it (see [`Checked`]).
    fn check_publish<'a>(
        &mut self,
        id: ConnId,
        sid: SessionId,
        p: &Publish<'a>,
        now: Instant,
    ) -> Result<Checked<'a>, Close> {
        self.check_publish_caps(id, p)?;
        if p.properties.subscription_identifier().is_some() {
            // [MQTT-3.3.4-6]: only the server sends subscription identifiers.
            return Err(Close::protocol("subscription identifier in PUBLISH"));
        }
        let Some(topic) = self.resolve_topic(id, p)? else {
            return Ok(Checked::Done(Input::Taken));
        };
        // `mount_point`: the listener's prefix goes before it.
        let topic = match self.mounted(id, &topic) {
            Cow::Owned(t) => Cow::Owned(t),
            Cow::Borrowed(_) => topic,
        };
        let limits = &self.limits;
        if let Err(e) =
            topic::validate_topic_name(&topic, limits.max_topic_len, limits.max_topic_levels)
        {
            return Err(Close::protocol(format_args!("PUBLISH topic: {e}")));
        }
        self.stats.messages_received += 1;
        let reserved = (topic::is_sys_topic(&topic) && !topic::is_bridge_state_topic(&topic))
            || topic.starts_with("$share/");
        let mut allowed = !reserved && self.may_publish(sid, &topic);
        if allowed && self.hooks.is_some() {
            let ask = |core: &Core| publish_question(core, sid, &topic, p);
            match self.gate(id, Kind::Publish, ask, now) {
                Gate::Go | Gate::Filters(_) => {}
                Gate::Refuse(_) => allowed = false,
                Gate::Wait => {
                    // Parked: `handle_data` gives the bytes back (see
                    // `verdict.rs`); counted when it is handed in again.
                    self.stats.messages_received -= 1;
                    return Ok(Checked::Done(Input::Parked));
                }
            }
        }
        if allowed {
            return Ok(Checked::Route(topic));
        }
        // Only the broker publishes under $SYS (but for the state of a
        // remote broker's bridge), a shared-subscription prefix is no
        // topic to publish to, and the ACL may deny the topic: dropped,
        // and for QoS 1/2 acknowledged as the spec says (5.0: with 0x87
        // not authorized).
        log::debug!(
            "client {}: PUBLISH to '{topic}' not allowed",
            self.label(id)
        );
        let v5 = self.conn(id).is_some_and(|c| c.protocol.is_v5());
        let reason = if v5 { RC_NOT_AUTHORIZED } else { 0 };
        match (p.qos, p.packet_id) {
            (QoS::AtLeastOnce, Some(pid)) => {
                self.send_pubresp(id, PubRespKind::PubAck, pid, reason)
            }
            (QoS::ExactlyOnce, Some(pid)) => {
                self.send_pubresp(id, PubRespKind::PubRec, pid, reason)
            }
            _ => {}
        }
        Ok(Checked::Done(Input::Taken))
    }

    /// Whether a checked PUBLISH is taken now. A subscriber that keeps
    /// acknowledging has a full queue: the publisher is paused and the
    /// PUBLISH handed in again when it is resumed (see `flow.rs`). A QoS 2
    /// resend before PUBREL and a refused payload are not routed, so they
    /// never wait.
    fn admit_publish(
        &mut self,
        id: ConnId,
        sid: SessionId,
        p: &Publish<'_>,
        topic: &str,
        bad_payload: bool,
        now: Instant,
    ) -> bool {
        let resend = p.qos == QoS::ExactlyOnce
            && p.packet_id.is_some_and(|pid| {
                self.sessions
                    .get(sid.0)
                    .is_some_and(|s| s.incoming_qos2.contains(&pid.get()))
            });
        let cost = topic.len() + p.payload.len() + p.properties.raw().len();
        if let (false, Some(by)) = (
            resend || bad_payload,
            self.publish_blocked(id, sid, topic, p.qos, cost, now),
        ) {
            self.throttle(id, by, now);
            if self.conn(id).is_some_and(|c| c.throttled_until.is_some()) {
                // Counted when it is handed in again.
                self.stats.messages_received -= 1;
                return false;
            }
        }
        true
    }

    /// Acknowledges an admitted PUBLISH and routes it (QoS 2: once per
    /// packet id). Returns the subscriber that is to pause the publisher,
    /// if any (see [`Routed::pressure`]).
    fn ack_and_route(
        &mut self,
        id: ConnId,
        sid: SessionId,
        p: &Publish<'_>,
        incoming: &Incoming<'_>,
        bad_payload: bool,
        now: Instant,
    ) -> Result<Option<SessionId>, Close> {
        match (p.qos, p.packet_id) {
            (QoS::AtMostOnce, _) => Ok(self.route(incoming, Some(sid), now).pressure),
            (QoS::AtLeastOnce, Some(pid)) => {
                let (reason, pressure) = if bad_payload {
                    (RC_PAYLOAD_FORMAT_INVALID, None)
                } else {
                    let routed = self.route(incoming, Some(sid), now);
                    let none = routed.matched == 0;
                    let reason = if none { RC_NO_MATCHING_SUBSCRIBERS } else { 0 };
                    (reason, routed.pressure)
                };
                // [MQTT-4.3.2-2]: PUBACK with the same packet id.
                self.send_pubresp(id, PubRespKind::PubAck, pid, reason);
                Ok(pressure)
            }
            (QoS::ExactlyOnce, Some(pid)) => {
                self.receive_qos2(id, sid, pid, incoming, bad_payload, now)
            }
            // The codec guarantees a packet id for QoS > 0.
            (_, None) => Err(Close::protocol("PUBLISH without packet id")),
        }
    }

    /// A QoS 2 PUBLISH with packet id `pid`: routed once; a resend with
    /// the same packet id before PUBREL only gets PUBREC [MQTT-4.3.3-2].
    fn receive_qos2(
        &mut self,
        id: ConnId,
        sid: SessionId,
        pid: PacketId,
        incoming: &Incoming<'_>,
        bad_payload: bool,
        now: Instant,
    ) -> Result<Option<SessionId>, Close> {
        let (seen, held) = self.sessions.get(sid.0).map_or((false, 0), |s| {
            (s.incoming_qos2.contains(&pid.get()), s.incoming_qos2.len())
        });
        let v5 = self.conn(id).is_some_and(|c| c.protocol.is_v5());
        if !seen && v5 && held >= usize::from(self.limits.max_inflight) {
            // More unacknowledged QoS 2 than the Receive Maximum the broker
            // announced [MQTT-3.3.4-7]: DISCONNECT 0x93 (§3.3.4). QoS 1 is
            // acknowledged as it is taken, so only QoS 2 can pile up.
            return Err(Close::new(
                RC_RECEIVE_MAXIMUM_EXCEEDED,
                "receive maximum exceeded",
            ));
        }
        if bad_payload {
            self.send_pubresp(id, PubRespKind::PubRec, pid, RC_PAYLOAD_FORMAT_INVALID);
            return Ok(None);
        }
        if seen {
            self.send_pubresp(id, PubRespKind::PubRec, pid, 0);
            return Ok(None);
        }
        // Recorded with the routing, in one record: durable together or
        // not at all. The PUBREC is queued before any copy (a publisher
        // subscribed to its own topic sees PUBREC first, as with
        // Mosquitto) and then held, from where it starts, for the
        // routing's records. It says success even with no subscriber:
        // only PUBACK carries 0x10 (Mosquitto's bytes).
        self.journal.inbound(self.psid(sid), pid.get());
        let start = self.conn(id).map(|c| c.output_end());
        self.send_pubresp(id, PubRespKind::PubRec, pid, 0);
        let pressure = self.route(incoming, Some(sid), now).pressure;
        if let (Some(pos), Some(conn)) = (start, self.conns.get_mut(id.0).and_then(Option::as_mut))
        {
            self.journal.hold_output_from(conn, id, pos);
        }
        if let Some(s) = self.sessions.get_mut(sid.0) {
            s.incoming_qos2.push(pid.get());
        }
        Ok(pressure)
    }

    /// The topic of a PUBLISH, applying and recording 5.0 topic aliases
    /// [MQTT-3.3.2-12]; an alias error ends the connection. `Ok(None)` only
    /// when the connection is gone.
    fn resolve_topic<'a>(
        &mut self,
        id: ConnId,
        p: &Publish<'a>,
    ) -> Result<Option<Cow<'a, str>>, Close> {
        let Some(alias) = p.properties.topic_alias() else {
            if p.topic.is_empty() {
                return Err(Close::protocol("empty topic without a topic alias"));
            }
            return Ok(Some(Cow::Borrowed(p.topic)));
        };
        let max = self.limits.max_topic_aliases;
        if alias == 0 || alias > max {
            // [MQTT-3.3.2-9] [MQTT-3.3.2-10]
            return Err(Close::new(
                RC_TOPIC_ALIAS_INVALID,
                "topic alias out of range",
            ));
        }
        let slot = usize::from(alias - 1);
        let Some(conn) = self.conn_mut(id) else {
            return Ok(None);
        };
        if p.topic.is_empty() {
            match conn.aliases().get(slot).and_then(Option::as_deref) {
                Some(t) => Ok(Some(Cow::Owned(t.to_string()))),
                None => Err(Close::protocol("unknown topic alias")),
            }
        } else {
            let aliases = conn.aliases_mut();
            if aliases.len() <= slot {
                aliases.resize(slot + 1, None);
            }
            if let Some(s) = aliases.get_mut(slot) {
                *s = Some(p.topic.into());
            }
            Ok(Some(Cow::Borrowed(p.topic)))
        }
    }

    /// May session `sid` publish on `topic`, by the ACL?
    fn may_publish(&self, sid: SessionId, topic: &str) -> bool {
        self.sessions.get(sid.0).is_some_and(|s| {
            s.trusted
                || self
                    .auth
                    .may_publish(s.username.as_deref(), &s.client_id, topic)
        })
    }

    pub(super) fn send_pubresp(
        &mut self,
        id: ConnId,
        kind: PubRespKind,
        pid: PacketId,
        reason: u8,
    ) {
        let packet = codec::Packet::PubResp(PubResp {
            kind,
            packet_id: pid,
            reason,
            properties: codec::Properties::EMPTY,
        });
        self.send(id, &packet);
    }

    /// PUBACK, PUBREC, PUBREL or PUBCOMP: the QoS 1 and 2 flows move on;
    /// a response that does not fit its flow ends the connection (see
    /// [`Close`]).
    pub(super) fn handle_pubresp(
        &mut self,
        id: ConnId,
        sid: SessionId,
        r: PubResp<'_>,
        now: Instant,
    ) -> Result<(), Close> {
        if r.kind != PubRespKind::PubRel {
            self.note_progress(sid, now);
        }
        let Some(session) = self.sessions.get_mut(sid.0) else {
            return Ok(());
        };
        match r.kind {
            PubRespKind::PubAck => {
                // [MQTT-4.3.2-1]: the message is acknowledged; forget it.
                // An unknown id is ignored; PUBACK for a QoS 2 message is
                // a protocol error, and Mosquitto 2.0.11 closes without a
                // DISCONNECT for it (its 02-subpub-qos2-bad-puback-*).
                if let Some(i) = session.inflight_position(r.packet_id) {
                    if session.inflight[i].pending.qos != QoS::AtLeastOnce {
                        return Err(Close::quiet("PUBACK for a QoS 2 message"));
                    }
                    self.journal.remove_inflight(session, i);
                }
                self.pump(sid, now);
            }
            PubRespKind::PubRec => return self.handle_pubrec(id, sid, &r, now),
            PubRespKind::PubComp => {
                // Only a released QoS 2 message completes; PUBCOMP before
                // PUBREL, or for a QoS 1 message, is a protocol error
                // (closed quietly, as for PUBACK). An unknown id is ignored.
                if let Some(i) = session.inflight_position(r.packet_id) {
                    if session.inflight[i].state != OutState::AwaitComp {
                        return Err(Close::quiet("PUBCOMP before PUBREL"));
                    }
                    self.journal.remove_inflight(session, i);
                }
                self.pump(sid, now);
            }
            PubRespKind::PubRel => self.handle_pubrel(id, sid, &r),
        }
        Ok(())
    }

    /// PUBREC: the QoS 2 message is released with PUBREL, or its flow ends
    /// on a failing PUBREC; for a QoS 1 message it ends the connection.
    fn handle_pubrec(
        &mut self,
        id: ConnId,
        sid: SessionId,
        r: &PubResp<'_>,
        now: Instant,
    ) -> Result<(), Close> {
        let Some(session) = self.sessions.get_mut(sid.0) else {
            return Ok(());
        };
        match session.inflight_position(r.packet_id) {
            Some(i) if session.inflight[i].pending.qos == QoS::AtLeastOnce => {
                return Err(Close::quiet("PUBREC for a QoS 1 message"));
            }
            Some(i) if r.reason >= 0x80 => {
                // 5.0: a failing PUBREC ends the flow [MQTT-4.3.3-4].
                self.journal.remove_inflight(session, i);
                self.pump(sid, now);
            }
            Some(i) => {
                // [MQTT-4.3.3-1]: after PUBREC, PUBREL.
                if session.inflight[i].state == OutState::AwaitAck {
                    session.inflight[i].state = OutState::AwaitComp;
                    self.journal
                        .released(session.persist_id, &session.inflight[i].pending.msg);
                }
                self.send_pubresp(id, PubRespKind::PubRel, r.packet_id, 0);
            }
            None if r.reason >= 0x80 => {
                // A failing PUBREC for an unknown id ends nothing.
            }
            None => {
                // Unknown id: answer PUBREL so the client can finish.
                // 5.0 allows 0x92 (packet identifier not found) here;
                // Mosquitto sends success, and so do we.
                self.send_pubresp(id, PubRespKind::PubRel, r.packet_id, 0);
            }
        }
        Ok(())
    }

    /// PUBREL: the inbound QoS 2 packet id is released and PUBCOMP
    /// answers.
    fn handle_pubrel(&mut self, id: ConnId, sid: SessionId, r: &PubResp<'_>) {
        let Some(session) = self.sessions.get_mut(sid.0) else {
            return;
        };
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
        // An unknown id is answered with success, not 0x92: after a
        // reconnect the PUBREL may be a resend (Mosquitto's bytes).
        if known {
            self.journal.inbound_released(self.psid(sid), pid);
        }
        self.send_pubresp(id, PubRespKind::PubComp, r.packet_id, 0);
    }

    /// Delivers a message to every session with a matching subscription,
    /// and stores or clears it as retained when `retain` is set. Says how
    /// many sessions it matched and which subscriber, if any, is to pause
    /// the publisher. The router's matches are walked while the delivery
    /// side of the core (see [`Delivery`]) hands the message out.
    pub(crate) fn route(
        &mut self,
        m: &Incoming<'_>,
        origin: Option<SessionId>,
        now: Instant,
    ) -> Routed {
        // Built at most once, and only when some session must keep it.
        let mut shared = m.retain.then(|| self.store_retained(m, now));
        let (router, mut out) = self.split_route();
        let skipped = router.collect_matches(out.sessions, m.topic, origin);
        out.journal.route_begin();
        // A QoS 0 frame is the same bytes for every 3.1/3.1.1 subscriber:
        // encode it once and copy it.
        out.frame.clear();
        let mut pressure = None;
        for mt in &router.matches {
            let ids = router.ids.get(mt.ids.clone()).unwrap_or(&[]);
            let queued = out.deliver_match(m, mt, ids, &mut shared, now);
            // A connected subscriber falling behind but still
            // acknowledging: slow the publisher down (see `flow.rs`)
            // instead of dropping soon. Not for its own messages:
            // pausing it would stop its acknowledgements too.
            if queued
                && pressure.is_none()
                && origin != Some(mt.session)
                && out.queue_pressed(mt.session, now)
            {
                pressure = Some(mt.session);
            }
        }
        out.journal.route_end(shared.as_ref());
        Routed {
            matched: router.matches.len() + skipped,
            pressure,
        }
    }

    /// Stores or clears `m` as retained (within the retained limits), and
    /// returns it as the message the routing shares.
    fn store_retained(&mut self, m: &Incoming<'_>, now: Instant) -> Rc<Message> {
        let msg = new_message(m, now, &self.budget.meter);
        match self.router.retained.set(
            &msg,
            self.limits.max_retained_messages,
            self.limits.max_retained_bytes,
        ) {
            outcome @ (RetainOutcome::Stored | RetainOutcome::Cleared) => {
                self.journal.retain(&msg, outcome);
            }
            RetainOutcome::Refused => {
                self.stats.retained_refused += 1;
                log::warn!(
                    "retained message on '{}' not stored: retained limits reached",
                    m.topic
                );
            }
        }
        msg
    }

    /// Gives a message to a session's queue (see [`Delivery::deliver`]).
    pub(super) fn deliver(&mut self, sid: SessionId, pending: Pending, now: Instant) -> bool {
        self.delivery().deliver(sid, pending, now)
    }

    /// Sends what a session's queue and window allow (see
    /// [`Delivery::pump`]).
    pub(super) fn pump(&mut self, sid: SessionId, now: Instant) {
        self.delivery().pump(sid, now);
    }

    /// Resends what was in flight when the client went away: PUBLISH with
    /// DUP for unacknowledged messages, PUBREL for released ones
    /// [MQTT-4.4.0-1]. On the new connection a topic goes by name first
    /// [MQTT-3.3.2-7]; a message now larger than the client's Maximum
    /// Packet Size (its name instead of an alias, or a smaller maximum) is
    /// dropped as if it had been delivered [MQTT-3.1.2-25].
    pub(super) fn resend_inflight(&mut self, id: ConnId, sid: SessionId, now: Instant) {
        let Some(session) = self.sessions.get_mut(sid.0) else {
            return;
        };
        let Some(conn) = self.conns.get_mut(id.0).and_then(Option::as_mut) else {
            return;
        };
        self.journal.hold_output(conn, id);
        let version = conn.protocol;
        let mut sent = 0u64;
        let mut too_large = Vec::new();
        for (i, f) in session.inflight.iter().enumerate() {
            match f.state {
                OutState::AwaitAck => {
                    let mut d = Outgoing::of(&f.pending, Some(f.pid), true, now);
                    d.topic = unmounted(mount_of(&self.listeners, conn), d.topic);
                    let (out, aliases) = conn.out_buf_and_aliases();
                    let max_packet = session.client_max_packet;
                    let props = &mut self.scratch_props;
                    if encode_delivery(out, props, version, &d, max_packet, aliases) {
                        sent += 1;
                    } else {
                        too_large.push(i);
                    }
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
        for &i in too_large.iter().rev() {
            self.journal.remove_inflight(session, i);
        }
        self.stats.publish_dropped += too_large.len() as u64;
        self.stats.messages_sent += sent;
        self.mark_dirty(id);
    }
}

impl Delivery<'_> {
    /// Hands `m` to the session of match `mt` (`ids`: its subscription
    /// identifiers): QoS 0 straight to its connection, QoS 1/2 through its
    /// queue as `shared`, built at most once per routing. Says whether it
    /// was queued.
    fn deliver_match(
        &mut self,
        m: &Incoming<'_>,
        mt: &Match,
        ids: &[u32],
        shared: &mut Option<Rc<Message>>,
        now: Instant,
    ) -> bool {
        if mt.acl_check && !may_receive(self.auth, self.sessions, mt.session, m.topic) {
            return false;
        }
        // [MQTT-3.8.4-6]: delivered at the lower of published and granted QoS
        // (`upgrade_outgoing_qos`: at the granted one).
        let q = outgoing_qos(self.upgrade_outgoing_qos, m.qos, mt.qos);
        // [MQTT-3.3.1-9]: retain is 0 towards existing subscribers,
        // unless 5.0 Retain As Published asks otherwise [MQTT-3.3.1-13].
        let retain = m.retain && mt.retain_as_published;
        if q == QoS::AtMostOnce && !self.queues_qos0(mt.session) {
            let d = Outgoing {
                topic: m.topic,
                payload: m.payload,
                props: m.props,
                expiry: m.expiry,
                qos: QoS::AtMostOnce,
                retain,
                dup: false,
                packet_id: None,
                sub_ids: ids,
            };
            self.deliver_qos0(mt.session, &d);
            return false;
        }
        let msg = shared
            .get_or_insert_with(|| new_message(m, now, &self.budget.meter))
            .clone();
        let pending = Pending {
            msg,
            qos: q,
            retain,
            sub_ids: ids.into(),
        };
        self.deliver(mt.session, pending, now)
    }

    /// Whether QoS 0 messages for `sid` go through its queue: its policy
    /// asks to keep them (a bridge) and it is offline or has older messages
    /// waiting, which they must not overtake.
    /// `queue_qos0_messages` asks it of every session.
    fn queues_qos0(&self, sid: SessionId) -> bool {
        self.sessions.get(sid.0).is_some_and(|s| {
            (self.queue_qos0_messages || s.policy.is_some_and(|p| p.keep_qos0))
                && (s.conn.is_none() || !s.queue.is_empty())
        })
    }

    /// Writes a QoS 0 message to a session's connection, or drops it
    /// (counted) when the session is offline, its output buffer is full or
    /// the message is larger than the client accepts. `self.frame` caches
    /// the encoding shared by every 3.1/3.1.1 subscriber with the same
    /// flags.
    fn deliver_qos0(&mut self, sid: SessionId, d: &Outgoing<'_>) {
        let max_out = self.limits.max_output_buffer;
        let Some(session) = self.sessions.get(sid.0) else {
            return;
        };
        // QoS 0 is not kept for offline sessions.
        let Some(conn_id) = session.conn else {
            return;
        };
        let max_packet = session.client_max_packet;
        let Some(conn) = self.conns.get_mut(conn_id.0).and_then(Option::as_mut) else {
            return;
        };
        let size = d.topic.len() + d.payload.len() + d.props.len();
        if conn.output_len() >= max_out
            || !self
                .budget
                .fits(size.saturating_add(conn.uncharged_output()))
        {
            self.stats.publish_dropped += 1;
            return;
        }
        // QoS 0 depends on nothing durable: not held (only queued behind
        // what is held already).
        let version = conn.protocol;
        let mount = mount_of(self.listeners, conn);
        let written = if let Some(m) = mount {
            // Behind a mount point: its own topic, not the shared frame.
            let d = Outgoing {
                topic: unmounted(Some(m), d.topic),
                ..*d
            };
            let (out, aliases) = conn.out_buf_and_aliases();
            encode_delivery(out, self.props, version, &d, max_packet, aliases)
        } else if version.is_v5() {
            let (out, aliases) = conn.out_buf_and_aliases();
            encode_delivery(out, self.props, version, d, max_packet, aliases)
        } else {
            // The cached frame has RETAIN 0; Retain As Published is 5.0 only.
            let frame = &mut *self.frame;
            if frame.is_empty() {
                encode_delivery(frame, self.props, ProtocolVersion::V311, d, u32::MAX, None);
            }
            conn.out_buf().extend_from_slice(frame);
            true
        };
        if written {
            self.stats.messages_sent += 1;
            self.mark_dirty(conn_id);
        } else {
            self.stats.publish_dropped += 1;
        }
    }

    /// Gives a message to a session's queue, from which `pump` sends as
    /// the inflight window and the output buffer allow. Dropped and counted
    /// when the queue is full. Says whether it was queued.
    fn deliver(&mut self, sid: SessionId, pending: Pending, now: Instant) -> bool {
        let limits = self.limits;
        let Some(session) = self.sessions.get_mut(sid.0) else {
            return false;
        };
        let QueuePolicy {
            max_messages,
            max_bytes,
            drop_oldest,
            ..
        } = session
            .policy
            .unwrap_or_else(|| QueuePolicy::from_limits(limits));
        let cost = pending.msg.cost();
        let full = |s: &super::session::Session| {
            s.queue.len() >= max_messages || s.queued_bytes + cost > max_bytes
        };
        if drop_oldest && cost <= max_bytes && max_messages > 0 {
            // Make room by forgetting the oldest queued messages, each
            // counted.
            while full(session) {
                let Some(old) = session.pop_queued() else {
                    break;
                };
                session.dropped += 1;
                self.stats.publish_dropped += 1;
                self.journal.unqueued(session.persist_id, &old);
                log::debug!(
                    "queue of '{}' full; oldest message on '{}' dropped",
                    session.client_id,
                    old.msg.topic
                );
            }
        }
        if full(session) {
            log::debug!(
                "queue of '{}' full; message on '{}' dropped",
                session.client_id,
                pending.msg.topic
            );
            self.note_dropped(sid, now);
            return false;
        }
        self.journal.queued(session.persist_id, &pending);
        if session.queue.is_empty() && session.inflight.is_empty() {
            // It owed nothing: the clock of `stuck` starts now.
            session.last_progress = Some(now);
        }
        session.queued_bytes += cost;
        session.queue.push_back(pending);
        self.pump(sid, now);
        true
    }

    /// Moves queued messages of a connected session to its connection while
    /// the inflight window and the output buffer have room. Order is kept:
    /// the queue is first in, first out [MQTT-4.6.0-6]. Expired messages are
    /// dropped here [MQTT-3.3.2-5].
    // Inlined into `Core`'s wrapper too, so that it builds no view.
    #[inline(always)]
    fn pump(&mut self, sid: SessionId, now: Instant) {
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
        // [MQTT-3.3.4-9]: never more in flight than the client's Receive Maximum.
        let window = usize::from(self.limits.max_inflight.min(session.client_receive_max));
        let version = conn.protocol;
        let mut sent = 0u64;
        let mut dropped = 0u64;
        // `max_inflight_bytes` (Mosquitto's): another QoS 1/2 message goes
        // out while the payloads in flight are below it.
        let max_bytes = self.max_inflight_bytes;
        let mut in_flight_bytes = if max_bytes > 0 {
            session
                .inflight
                .iter()
                .map(|f| f.pending.msg.payload.len())
                .sum()
        } else {
            0
        };
        while conn.output_len() < max_out {
            let Some(front) = session.queue.front() else {
                break;
            };
            if front.qos != QoS::AtMostOnce
                && (session.inflight.len() >= window
                    || (max_bytes > 0 && in_flight_bytes >= max_bytes))
            {
                break;
            }
            // The memory budget: the message waits in the queue for room
            // (`budget.rs`; `pump_waiting` tries again).
            if !self
                .budget
                .may_send(front.msg.cost(), conn.uncharged_output())
            {
                self.budget.wait(sid);
                break;
            }
            let Some(p) = session.pop_queued() else {
                break;
            };
            if p.msg.expired(now) {
                self.journal.unqueued(session.persist_id, &p);
                if p.qos != QoS::AtMostOnce {
                    // Mosquitto numbers a message when it is queued, so an
                    // expired one has used its packet id: skip one too, and
                    // the next message carries the id Mosquitto would send.
                    session.next_packet_id();
                }
                continue;
            }
            let packet_id = (p.qos != QoS::AtMostOnce).then(|| session.next_packet_id());
            if let (Some(pid), QoS::ExactlyOnce) = (packet_id, p.qos) {
                // The packet id must survive a restart: a QoS 2 receiver
                // knows the message by it. And the message must be durable
                // before it leaves: were it lost in a crash, its publisher
                // (never acknowledged) would send it again, and it would
                // arrive twice under another packet id. QoS 1 needs no
                // hold: at worst it arrives twice, which QoS 1 allows.
                self.journal.sent(session.persist_id, &p.msg, pid.get());
                self.journal.hold_output(conn, conn_id);
            }
            let mut d = Outgoing::of(&p, packet_id, false, now);
            d.topic = unmounted(mount_of(self.listeners, conn), d.topic);
            let (out, aliases) = conn.out_buf_and_aliases();
            let ok = encode_delivery(
                out,
                self.props,
                version,
                &d,
                session.client_max_packet,
                aliases,
            );
            if !ok {
                dropped += 1;
                self.journal.unqueued(session.persist_id, &p);
                continue;
            }
            sent += 1;
            if let Some(pid) = packet_id {
                in_flight_bytes += p.msg.payload.len();
                session.inflight.push_back(Inflight {
                    pid,
                    state: OutState::AwaitAck,
                    pending: p,
                });
            }
        }
        self.stats.publish_dropped += dropped;
        // Its own bounds (a bridge's are larger), as `deliver` applied them.
        let bounds = session
            .policy
            .unwrap_or_else(|| QueuePolicy::from_limits(self.limits));
        let drained = session.queue.len() * 4 <= bounds.max_messages
            && session.queued_bytes * 4 <= bounds.max_bytes;
        if drained && !self.throttled.is_empty() {
            self.release_for(sid, now);
        }
        if sent > 0 {
            self.stats.messages_sent += sent;
            self.mark_dirty(conn_id);
        }
    }
}

fn new_message(m: &Incoming<'_>, now: Instant, meter: &Meter) -> Rc<Message> {
    Rc::new(Message::new(
        m.topic.into(),
        m.payload.into(),
        m.qos,
        m.props.into(),
        m.expiry
            .map(|secs| now + Duration::from_secs(u64::from(secs))),
        meter,
    ))
}

/// The on_publish question for PUBLISH `p` to `topic` from session `sid`.
fn publish_question(core: &Core, sid: SessionId, topic: &str, p: &Publish<'_>) -> HookQuestion {
    HookQuestion::Publish {
        client_id: core
            .sessions
            .get(sid.0)
            .map(|s| s.client_id.to_string())
            .unwrap_or_default(),
        topic: topic.to_owned(),
        payload: p.payload.to_vec(),
        qos: p.qos as u8,
        retain: p.retain,
    }
}
