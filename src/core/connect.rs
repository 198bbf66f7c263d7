//! CONNECT, DISCONNECT and the end of a connection: client identifiers,
//! CONNACK codes, session takeover, clean and persistent sessions, session
//! expiry, wills and will delay (MQTT 3.1.1 §3.1, §3.2, §3.14; 5.0 §3.1,
//! §3.2, §3.14).

use std::time::{Duration, Instant};

use super::alias::OutAliases;
use super::conn::{Conn, Phase};
use super::message::{Incoming, WillMsg, WillParts};
use super::publish::forwardable;
use super::session::{NEVER_EXPIRES, Session, SessionId, offline_lifetime};
use super::verdict::{EventKind, Gate, HookQuestion, Kind, Verdict, level};
use super::{CONNECTION_LOG, Close, ConnId, Core, Input};
use crate::auth::AuthResult;
use crate::codec::{
    self, Connect, Disconnect, Packet, PropertiesBuf, Property, ProtocolVersion, QoS,
};
use crate::topic;

/// Why a CONNECT is refused; [`Refusal::code`] maps it to the CONNACK
/// return code of 3.1.1 [MQTT 3.1.1 §3.2.2.3] or reason code of 5.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    IdentifierRejected,
    ServerUnavailable,
    NotAuthorized,
    BadCredentials,
    BadAuthenticationMethod,
    /// A will above the listener's `max_qos`.
    QosNotSupported,
    /// A retained will with `retain_available false`.
    RetainNotSupported,
    /// A will payload over `message_size_limit` (Mosquitto's answer).
    WillTooLarge,
}

impl Refusal {
    /// The CONNACK code, or `None` where 3.1.1 has none for the refusal
    /// (the connection is closed without CONNACK, as Mosquitto does).
    fn code(self, version: ProtocolVersion) -> Option<u8> {
        Some(match (self, version.is_v5()) {
            (Refusal::QosNotSupported | Refusal::RetainNotSupported, false) => return None,
            (Refusal::QosNotSupported, true) => 0x9B,
            (Refusal::RetainNotSupported, true) => 0x9A,
            (Refusal::IdentifierRejected, false) => 0x02,
            (Refusal::ServerUnavailable, false) => 0x03,
            (
                Refusal::NotAuthorized | Refusal::BadAuthenticationMethod | Refusal::WillTooLarge,
                false,
            ) => 0x05,
            (Refusal::BadCredentials, false) => 0x04,
            (Refusal::BadCredentials, true) => 0x86,
            (Refusal::IdentifierRejected, true) => 0x85,
            (Refusal::ServerUnavailable, true) => 0x97, // quota exceeded
            (Refusal::NotAuthorized, true) => 0x87,
            (Refusal::BadAuthenticationMethod, true) => 0x8C,
            (Refusal::WillTooLarge, true) => 0x95, // packet too large
        })
    }
}

/// 5.0 DISCONNECT reason: session taken over.
const RC_SESSION_TAKEN_OVER: u8 = 0x8E;
/// 5.0 DISCONNECT reason: disconnect with will message.
const RC_DISCONNECT_WITH_WILL: u8 = 0x04;

/// How a CONNECT stops short of CONNACK 0: the parts of
/// [`Core::handle_connect`] return it, and `handle_connect` acts on it in
/// one place.
enum Stop {
    /// A refusing CONNACK, then close.
    Refuse(Refusal),
    /// A protocol violation found after decoding (see [`Close`]).
    Close(Close),
    /// Parked for the application's verdict: `handle_data` gives the bytes
    /// back (see `verdict.rs`).
    Parked,
}

impl From<Close> for Stop {
    fn from(close: Close) -> Stop {
        Stop::Close(close)
    }
}

/// The session a CONNECT was attached to (see [`Core::attach_session`]).
struct Attached {
    sid: SessionId,
    client_id: Box<str>,
    /// The broker chose the client id (the client sent an empty one).
    assigned: bool,
    /// A previous session was resumed (CONNACK's session present).
    resumed: bool,
}

impl Core {
    /// A CONNECT on connection `id`: admitted (or refused with a CONNACK
    /// code), attached to its session, its will kept, and answered; or
    /// parked while the application decides ([`Input::Parked`]).
    pub(super) fn handle_connect(&mut self, id: ConnId, c: Connect<'_>, now: Instant) -> Input {
        match self.connect(id, c, now) {
            Ok(()) => {}
            Err(Stop::Parked) => return Input::Parked,
            Err(Stop::Refuse(why)) => self.refuse(id, why, now),
            Err(Stop::Close(close)) => self.apply_close(id, close, now),
        }
        Input::Taken
    }

    /// The steps of [`Core::handle_connect`], in order.
    fn connect(&mut self, id: ConnId, c: Connect<'_>, now: Instant) -> Result<(), Stop> {
        // [MQTT-3.1.2-28] [MQTT-3.1.2-29] Reason Strings go to a client
        // that asked for them, or to every client but one that refused them
        // when the config says so.
        let problem_info = match c.properties.request_problem_information() {
            Some(0) => false,
            Some(_) => true,
            None => self.reason_strings,
        };
        if let Some(conn) = self.conn_mut(id) {
            conn.protocol = c.protocol;
            conn.problem_info = problem_info;
        }
        let trusted = self.conn(id).is_some_and(|c| c.trusted);
        // A user name the transport proved (TLS client certificate)
        // replaces the CONNECT's and needs no password.
        let identity: Option<Box<str>> = self.conn(id).and_then(|c| c.identity().map(Into::into));
        let mut c = c;
        if let Some(name) = identity.as_deref() {
            c.username = Some(name);
        }
        self.admit(id, &mut c, trusted, identity.is_some(), now)?;
        let attached = self.attach_session(id, &c, trusted, now)?;
        let server_keep_alive = self.go_online(id, &c, &attached);
        self.send_connack(id, &c, &attached, server_keep_alive, now);
        Ok(())
    }

    /// The checks of a CONNECT before any session is touched: credentials
    /// and client id ([`Core::check_connect`]), the will's topic, and the
    /// application's on_connect.
    fn admit<'a>(
        &mut self,
        id: ConnId,
        c: &mut Connect<'a>,
        trusted: bool,
        proved: bool,
        now: Instant,
    ) -> Result<(), Stop> {
        let allow_empty = (self.listener_of(id).allow_zero_length_clientid)
            .unwrap_or(self.allow_zero_length_clientid);
        let refused = self.check_connect(c, trusted, proved, allow_empty);
        let refused = refused.or_else(|| self.username_as_client_id(id, c));
        if let Some(reason) = refused {
            log::info!(
                "client {} refused ({reason:?}), client id '{}'",
                self.label(id),
                c.client_id
            );
            return Err(Stop::Refuse(reason));
        }
        if let Some(w) = &c.will {
            if let Err(e) = topic::validate_topic_name(
                w.topic,
                self.limits.max_topic_len,
                self.limits.max_topic_levels,
            ) {
                return Err(Close::protocol(format_args!("will topic: {e}")).into());
            }
            // Mosquitto's checks of a will, in its order: retained messages
            // turned off (`retain_available false`), then the listener's
            // `max_qos` (5.0 CONNACK 0x9A, 0x9B [MQTT-3.2.2-12]).
            let refused = if w.retain && !self.retain_available {
                Some(Refusal::RetainNotSupported)
            } else if w.qos > self.listener_of(id).max_qos {
                Some(Refusal::QosNotSupported)
            } else {
                None
            };
            if let Some(reason) = refused {
                log::info!(
                    "client {} refused: its will asks for {reason:?}",
                    self.label(id)
                );
                return Err(Stop::Refuse(reason));
            }
            // `mount_point`: the will goes behind it, like the client's
            // own messages.
            let topic = self.mounted(id, w.topic);
            if !trusted && !self.auth.may_publish(c.username, c.client_id, &topic) {
                // A will the client could not publish itself is refused
                // at CONNECT, as Mosquitto does.
                log::info!(
                    "client {} refused: the ACL denies its will topic '{}'",
                    self.label(id),
                    w.topic
                );
                return Err(Stop::Refuse(Refusal::NotAuthorized));
            }
        }
        let c = &*c;
        match self.gate(id, Kind::Connect, |core| connect_question(core, id, c), now) {
            Gate::Go | Gate::Filters(_) => Ok(()),
            Gate::Wait => Err(Stop::Parked),
            Gate::Refuse(v) => {
                log::info!(
                    "client {} refused by the application, client id '{}'",
                    self.label(id),
                    c.client_id
                );
                Err(Stop::Refuse(match v {
                    Verdict::BadCredentials => Refusal::BadCredentials,
                    _ => Refusal::NotAuthorized,
                }))
            }
        }
    }

    /// Finds the session of an admitted CONNECT: takes over a connection
    /// with the same client id, resumes or discards (clean start) the
    /// session it had, or makes a new one; then binds it to connection `id`.
    fn attach_session(
        &mut self,
        id: ConnId,
        c: &Connect<'_>,
        trusted: bool,
        now: Instant,
    ) -> Result<Attached, Stop> {
        // [MQTT-3.1.3-6] [MQTT-3.1.3-7]: an empty id gets one assigned (5.0
        // tells the client which [MQTT-3.2.2-16]); check_connect refused the
        // 3.1.1 case with clean session 0.
        let assigned = c.client_id.is_empty();
        let client_id: Box<str> = if assigned {
            let prefix = self.listener_of(id).auto_id_prefix.clone();
            let prefix = prefix.unwrap_or_else(|| self.auto_id_prefix.clone());
            self.assign_client_id(&prefix).into()
        } else {
            c.client_id.into()
        };
        self.take_over(&client_id, c.clean_start, now);
        let existing = self.by_client_id.get(&client_id, &self.sessions);
        // [MQTT-3.1.2-6] (3.1.1) / [MQTT-3.1.2-4] (5.0): clean start
        // discards any previous session.
        if let (Some(sid), true) = (existing, c.clean_start) {
            self.end_session(sid, now);
        }
        let resumed = if c.clean_start { None } else { existing };
        // 3.1.1: clean session 1 ends the session with the connection, 0
        // keeps it until a clean session ends it. 5.0: the session expiry
        // interval says how long it outlives the connection [MQTT-3.1.2-23].
        let expiry_interval = match (c.protocol.is_v5(), c.clean_start) {
            (true, _) => c.properties.session_expiry_interval().unwrap_or(0),
            (false, true) => 0,
            (false, false) => NEVER_EXPIRES,
        };
        let sid = match resumed {
            Some(sid) => sid,
            None if self.sessions.len() >= self.limits.max_sessions => {
                log::warn!(
                    "client '{client_id}' refused: max_sessions ({}) reached",
                    self.limits.max_sessions
                );
                return Err(Stop::Refuse(Refusal::ServerUnavailable));
            }
            None => {
                let mut session = Session::new(&client_id, c.protocol, expiry_interval);
                if let Some(p) = self.policies.get(&client_id) {
                    session.policy = Some(*p);
                }
                let sid = SessionId(self.sessions.insert(session));
                self.by_client_id.insert(&client_id, sid, &self.sessions);
                sid
            }
        };
        self.bind_session(id, sid, c, &client_id, expiry_interval, trusted, now);
        Ok(Attached {
            sid,
            client_id,
            assigned,
            resumed: resumed.is_some(),
        })
    }

    /// [MQTT-3.1.4-2]: a client id already connected takes over; the old
    /// connection is closed. Its will is published unless the session goes
    /// on: one that outlives its connection, taken over without clean
    /// start, is the same client coming back (Mosquitto's rule, its
    /// 07-will-takeover; neither spec lists takeover among the will's
    /// triggers).
    fn take_over(&mut self, client_id: &str, clean_start: bool, now: Instant) {
        let Some(sid) = self.by_client_id.get(client_id, &self.sessions) else {
            return;
        };
        let Some((old, outlives)) = self
            .sessions
            .get(sid.0)
            .and_then(|s| s.conn.map(|old| (old, s.expiry_interval > 0)))
        else {
            return;
        };
        log::info!(
            target: CONNECTION_LOG,
            "client '{client_id}' connected again; closing its old connection"
        );
        let _ = self.disconnect_v5(old, RC_SESSION_TAKEN_OVER, "session taken over");
        self.note_close_reason("taken over");
        // Closed as any connection: a session that ends with its
        // connection ends here; one that outlives it is resumed (or
        // discarded by clean start) by the caller, which also cancels a
        // will still in its delay.
        self.close(old, !outlives || clean_start, now);
    }

    /// Binds session `sid` to connection `id` and takes what the CONNECT
    /// says about it; journalled before CONNACK is queued, so CONNACK
    /// waits for the record.
    #[expect(clippy::too_many_arguments, reason = "the parts of one CONNECT")]
    fn bind_session(
        &mut self,
        id: ConnId,
        sid: SessionId,
        c: &Connect<'_>,
        client_id: &str,
        expiry_interval: u32,
        trusted: bool,
        now: Instant,
    ) {
        let policy = self.policies.get(client_id).copied();
        let Some(s) = self.sessions.get_mut(sid.0) else {
            return;
        };
        let had_will = s.pending_will.is_some();
        s.conn = Some(id);
        if !s.inflight.is_empty() || !s.queue.is_empty() {
            // What it owes from before (resent below) counts from now.
            // Written only then: a session that owes nothing is not
            // touched (its state may be shared, see issue 17).
            s.last_progress = Some(now);
        }
        s.protocol = c.protocol;
        s.expiry_interval = expiry_interval;
        // Written only when set: a session that never had them keeps
        // sharing the empty state (see `Session`).
        if s.expires_at.is_some() {
            s.expires_at = None;
        }
        // [MQTT-3.1.3-9]: a delayed will is cancelled by reconnecting.
        if s.pending_will.is_some() {
            s.pending_will = None;
        }
        s.client_receive_max = c.properties.receive_maximum().unwrap_or(u16::MAX);
        s.client_max_packet = c.properties.maximum_packet_size().unwrap_or(u32::MAX);
        s.username = c.username.map(Into::into);
        s.trusted = trusted;
        if let Some(p) = policy {
            // A bridge's session, possibly restored from disk.
            s.policy = Some(p);
        }
        self.journal.connected(s, had_will);
    }

    /// Marks connection `id` connected to its session with the CONNECT's
    /// will and keep alive, counts it and says so. Returns the Server Keep
    /// Alive to announce, if any.
    fn go_online(&mut self, id: ConnId, c: &Connect<'_>, a: &Attached) -> Option<u16> {
        let mut will_props = PropertiesBuf::new();
        let will = c.will.as_ref().map(|w| {
            let expiry = forwardable(w.properties, &mut will_props);
            WillMsg::new(&WillParts {
                topic: &self.mounted(id, w.topic),
                payload: w.payload,
                qos: w.qos,
                retain: w.retain,
                props: will_props.as_properties().raw(),
                expiry,
                delay: w.properties.will_delay_interval().unwrap_or(0),
            })
        });
        // From here on the session's client id names the connection.
        let peer = self.conn_mut(id).and_then(Conn::take_label);
        let peer = peer.as_deref().unwrap_or("?");
        let connect_timeout = self.limits.connect_timeout;
        // max_keepalive (Mosquitto's): a 5.0 client asking for a longer keep
        // alive, or none, must use the Server Keep Alive instead
        // [MQTT-3.2.2-21]. 65,535 is no limit.
        let max = self.limits.max_keepalive;
        let server_keep_alive =
            (c.protocol.is_v5() && max < u16::MAX && (c.keep_alive == 0 || c.keep_alive > max))
                .then_some(max);
        // 5.0: the topic aliases boxmq may give the client, within its
        // Topic Alias Maximum [MQTT-3.1.2-26] (see `alias.rs`).
        let out_aliases = c
            .properties
            .topic_alias_maximum()
            .filter(|_| c.protocol.is_v5());
        let out_aliases =
            OutAliases::new(out_aliases.map_or(0, |m| m.min(self.limits.max_topic_aliases)));
        let conn = self.conn_mut(id)?;
        conn.phase = Phase::Connected(a.sid);
        conn.keep_alive = server_keep_alive.unwrap_or(c.keep_alive);
        conn.will = will;
        conn.set_out_aliases(out_aliases);
        let deadline = conn.deadline(connect_timeout);
        self.note_deadline(deadline);
        self.stats.clients_connected += 1;
        self.stats.clients_maximum = self.stats.clients_maximum.max(self.stats.clients_connected);
        log::info!(
            target: CONNECTION_LOG,
            "client '{}' connected from {peer} (protocol {:?}, clean {}, keepalive {}s)",
            a.client_id,
            c.protocol,
            c.clean_start,
            c.keep_alive
        );
        // Before anything that may close it again, so that a Disconnected
        // event always follows a Connected one.
        self.emit(EventKind::Connected, a.sid, None, None);
        server_keep_alive
    }

    /// CONNACK 0, then what a resumed session owes. Session present tells
    /// whether state was kept [MQTT-3.2.2-1] [MQTT-3.2.2-2]; 5.0 adds what
    /// the broker supports.
    fn send_connack(
        &mut self,
        id: ConnId,
        c: &Connect<'_>,
        a: &Attached,
        server_keep_alive: Option<u16>,
        now: Instant,
    ) {
        if !self.conn(id).is_some_and(Conn::is_connected) {
            return;
        }
        let mut props = PropertiesBuf::new();
        if c.protocol.is_v5() {
            // In Mosquitto's order; Maximum Packet Size, which Mosquitto
            // leaves out by default (it has no limit), last.
            props.push(&Property::TopicAliasMaximum(self.limits.max_topic_aliases));
            if a.assigned {
                props.push(&Property::AssignedClientIdentifier(&a.client_id));
            }
            props.push(&Property::ReceiveMaximum(self.limits.max_inflight));
            // [MQTT-3.2.2-9] [MQTT-3.2.2-13]: announced only when not the
            // default (QoS 2, retained messages available).
            let max_qos = self.listener_of(id).max_qos;
            if max_qos < QoS::ExactlyOnce {
                props.push(&Property::MaximumQoS(max_qos as u8));
            }
            if !self.retain_available {
                props.push(&Property::RetainAvailable(0));
            }
            if let Some(k) = server_keep_alive {
                props.push(&Property::ServerKeepAlive(k));
            }
            if self.limits.max_packet_size < crate::limits::MAX_MQTT_PACKET {
                props.push(&Property::MaximumPacketSize(self.limits.max_packet_size));
            }
        }
        let connack = Packet::Connack(codec::Connack {
            // MQTT 3.1 has no session present flag: the byte is reserved.
            session_present: a.resumed && c.protocol != ProtocolVersion::V31,
            code: 0x00,
            properties: props.as_properties(),
        });
        if let Some(max) = c.properties.maximum_packet_size() {
            // [MQTT-3.1.2-24]: nothing larger than the client's Maximum
            // Packet Size goes to it, not even the CONNACK: close instead
            // (as Mosquitto does).
            let mut frame = Vec::new();
            connack.encode(c.protocol, &mut frame);
            if frame.len() > usize::try_from(max).unwrap_or(usize::MAX) {
                log::warn!(
                    "client '{}': Maximum Packet Size {max} is below the CONNACK's {} bytes; closing",
                    a.client_id,
                    frame.len()
                );
                self.close(id, false, now);
                return;
            }
        }
        self.send(id, &connack);
        if a.resumed {
            self.resend_inflight(id, a.sid, now);
        }
        self.pump(a.sid, now);
    }

    /// `use_username_as_clientid` on connection `id`'s listener: the user
    /// name replaces the client id of `c`; a client without one is not
    /// authorised (Mosquitto's rule). The id it gets is checked as a
    /// client id.
    fn username_as_client_id<'a>(&self, id: ConnId, c: &mut Connect<'a>) -> Option<Refusal> {
        if !self.listener_of(id).use_username_as_clientid {
            return None;
        }
        let Some(name) = c.username else {
            return Some(Refusal::NotAuthorized);
        };
        if name.is_empty()
            || name.len() > self.limits.max_client_id_len
            || self.policies.contains_key(name)
        {
            return Some(Refusal::IdentifierRejected);
        }
        c.client_id = name;
        None
    }

    /// The CONNACK refusal a CONNECT earns before any session is touched.
    /// `trusted`: the application's own connection (no checks); `proved`:
    /// the transport proved the user name, so no password is needed.
    fn check_connect(
        &self,
        c: &Connect<'_>,
        trusted: bool,
        proved: bool,
        allow_empty: bool,
    ) -> Option<Refusal> {
        let id_len = c.client_id.len();
        if c.client_id.is_empty() && !c.clean_start && !c.protocol.is_v5() {
            // [MQTT-3.1.3-8]: empty id with clean session 0.
            return Some(Refusal::IdentifierRejected);
        }
        if c.client_id.is_empty() && !allow_empty {
            // `allow_zero_length_clientid false`: a server need not take
            // empty ids; it refuses with 0x02 (3.1.1 [MQTT-3.1.3-9]) or
            // 0x85 (5.0 [MQTT-3.1.3-8]).
            return Some(Refusal::IdentifierRejected);
        }
        // MQTT 3.1 asked for 1 to 23 characters; Mosquitto takes longer
        // ones, and so does boxmq (`max_client_id_length` still applies).
        if id_len > self.limits.max_client_id_len
            || (c.protocol == ProtocolVersion::V31 && id_len == 0)
        {
            return Some(Refusal::IdentifierRejected);
        }
        if c.will
            .as_ref()
            .is_some_and(|w| w.payload.len() > self.limits.message_size_limit)
        {
            // message_size_limit applies to wills too, as in Mosquitto.
            return Some(Refusal::WillTooLarge);
        }
        if c.properties.authentication_method().is_some() {
            // 5.0 enhanced authentication: no method is supported yet
            // (see `Core::handle_auth`), so any method is refused with 0x8C.
            return Some(Refusal::BadAuthenticationMethod);
        }
        if trusted {
            return None;
        }
        if self.policies.contains_key(c.client_id) {
            // A bridge's session: only the bridge itself may use it.
            return Some(Refusal::IdentifierRejected);
        }
        if proved {
            // The transport proved the user name (TLS client certificate
            // with `use_identity_as_username`): no password to check.
            return None;
        }
        if self.hooks_replace_files() {
            // The application's on_connect decides instead of the file.
            return None;
        }
        match self.auth.authenticate(c.username, c.password) {
            AuthResult::Allowed => None,
            AuthResult::BadCredentials => Some(Refusal::BadCredentials),
            AuthResult::NotAuthorized => Some(Refusal::NotAuthorized),
        }
    }

    /// Sends a refusing CONNACK (session present 0 [MQTT-3.2.2-4]) and
    /// closes [MQTT-3.2.2-5].
    fn refuse(&mut self, id: ConnId, why: Refusal, now: Instant) {
        let version = self
            .conn(id)
            .map(|c| c.protocol)
            .unwrap_or(ProtocolVersion::V311);
        if let Some(code) = why.code(version) {
            let connack = Packet::Connack(codec::Connack {
                session_present: false,
                code,
                properties: codec::Properties::EMPTY,
            });
            self.send(id, &connack);
        }
        self.close(id, false, now);
    }

    pub(super) fn handle_disconnect(&mut self, id: ConnId, d: Disconnect<'_>, now: Instant) {
        if let Some(new_expiry) = d.properties.session_expiry_interval() {
            let sid = match self.conn(id).map(|c| c.phase) {
                Some(Phase::Connected(sid)) => sid,
                _ => return,
            };
            let Some(session) = self.sessions.get_mut(sid.0) else {
                return;
            };
            if session.expiry_interval == 0 && new_expiry != 0 {
                // [MQTT-3.14.2-2]
                return self.protocol_violation(
                    id,
                    "session expiry set on DISCONNECT after 0",
                    now,
                );
            }
            session.expiry_interval = new_expiry;
        }
        // [MQTT-3.14.4-3]: DISCONNECT discards the will; 5.0 reason 0x04
        // asks for it to be published all the same.
        let with_will = d.reason == RC_DISCONNECT_WITH_WILL;
        log::info!(target: CONNECTION_LOG, "client {} disconnected", self.label(id));
        self.note_close_reason("clean");
        self.close(id, with_will, now);
    }

    /// 5.0 AUTH. No enhanced authentication method is supported yet: CONNECT
    /// with an Authentication Method is refused (0x8C), so an AUTH packet is
    /// always a protocol error [MQTT-4.12.0-1]. A method would hook in here
    /// and in `check_connect`.
    pub(super) fn handle_auth(&mut self, id: ConnId, now: Instant) {
        self.protocol_violation(id, "AUTH without an authentication method", now);
    }

    /// Ends connection `id` from the core's side: publishes its will if
    /// `with_will`, detaches it from its session (ending the session if it
    /// does not outlive the connection) and marks it for the caller to close.
    pub(super) fn close(&mut self, id: ConnId, with_will: bool, now: Instant) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        let phase = conn.phase;
        conn.phase = Phase::Closing;
        let will = conn.will.take();
        self.mark_dirty(id);
        let reason = if self.hooks.is_some() {
            Some(self.take_close_reason())
        } else {
            None
        };
        let Phase::Connected(sid) = phase else {
            return;
        };
        self.stats.clients_connected = self.stats.clients_connected.saturating_sub(1);
        if let Some(reason) = reason {
            self.emit(EventKind::Disconnected, sid, None, Some(reason));
        }
        let Some(session) = self.sessions.get_mut(sid.0) else {
            return;
        };
        // Closing, the connection no longer names its session: it keeps
        // the client id for the log lines of its last moments.
        if let Some(conn) = self.conns.get_mut(id.0).and_then(Option::as_mut) {
            if conn.label().is_none() {
                conn.set_label(format!("'{}'", session.client_id).into());
            }
        }
        if session.conn != Some(id) {
            return;
        }
        session.conn = None;
        let ends = session.expiry_interval == 0;
        // Offline, its queue bound applies: nobody waits for it.
        self.release_for(sid, now);
        let Some(session) = self.sessions.get_mut(sid.0) else {
            return;
        };
        if let (true, Some(w)) = (with_will, will) {
            if w.delay() > 0 && !ends {
                // 5.0 will delay: published when the delay or the session
                // ends, whichever comes first [MQTT-3.1.3-9].
                let delay = w.delay().min(session.expiry_interval);
                let due = now + Duration::from_secs(u64::from(delay));
                session.pending_will = Some(Box::new((w, due)));
                self.note_deadline(Some(due));
            } else {
                // [MQTT-3.1.2-8]: the will is published when the connection
                // ends without DISCONNECT; retain honoured [MQTT-3.1.2-17].
                self.publish_will(&w, Some(sid), now);
            }
        }
        if ends {
            // [MQTT-3.1.2-6]: a clean session ends with its connection.
            self.end_session(sid, now);
        } else if let Some(s) = self.sessions.get_mut(sid.0) {
            let lifetime = offline_lifetime(s.expiry_interval, self.persistent_client_expiration);
            if let Some(secs) = lifetime {
                let at = now + Duration::from_secs(u64::from(secs));
                s.expires_at = Some(at);
                self.note_deadline(Some(at));
            }
            if let Some(s) = self.sessions.get(sid.0) {
                self.journal.offline(s, now);
            }
        }
    }

    pub(super) fn publish_will(&mut self, w: &WillMsg, origin: Option<SessionId>, now: Instant) {
        let incoming = Incoming {
            topic: w.topic(),
            payload: w.payload(),
            qos: w.qos(),
            retain: w.retain(),
            props: w.props(),
            expiry: w.expiry(),
        };
        // Its client is gone: nobody to pause.
        let _routed = self.route(&incoming, origin, now);
    }

    /// Forgets a session: its subscriptions, queue and in-flight messages.
    /// A will still waiting out its delay is published now.
    pub(super) fn end_session(&mut self, sid: SessionId, now: Instant) {
        if !self.sessions.contains(sid.0) {
            return;
        }
        let mut session = self.sessions.remove(sid.0);
        self.journal.session_end(session.persist_id);
        for sub in &session.subscriptions {
            self.forget_subscription(sid, &sub.filter);
        }
        self.by_client_id.remove(&session.client_id, sid);
        let pending_will = if session.pending_will.is_some() {
            session.pending_will.take()
        } else {
            None
        };
        if let Some((w, _)) = pending_will.map(|b| *b) {
            self.publish_will(&w, None, now);
        }
    }

    /// Sends a 5.0 DISCONNECT with `reason` (and, where the client allows,
    /// a reason string) if the connection speaks 5.0.
    pub(super) fn disconnect_v5(&mut self, id: ConnId, reason: u8, why: &str) -> bool {
        let Some(conn) = self.conn(id) else {
            return false;
        };
        if !(conn.protocol.is_v5() && conn.is_connected()) {
            return false;
        }
        let mut props = PropertiesBuf::new();
        if conn.problem_info {
            props.push(&Property::ReasonString(why));
        }
        let packet = Packet::Disconnect(Disconnect {
            reason,
            properties: props.as_properties(),
        });
        self.send(id, &packet);
        true
    }

    /// Closes for a reason found after decoding: a 5.0 DISCONNECT with
    /// `reason`, then close with the will [MQTT-4.13.1-1].
    /// Closes for a protocol violation without a DISCONNECT (5.0 §4.13
    /// leaves it optional), where Mosquitto closes that way.
    pub(super) fn close_quietly(&mut self, id: ConnId, why: &str, now: Instant) {
        log::warn!("client {}: protocol error: {why}; closing", self.label(id));
        self.note_close_reason("protocol error");
        self.close(id, true, now);
    }

    pub(super) fn disconnect_with(&mut self, id: ConnId, reason: u8, why: &str, now: Instant) {
        log::warn!("client {}: {why}; closing", self.label(id));
        if self.disconnect_v5(id, reason, why) {
            // The client broke a rule and may still be sending: the loop
            // closes so that it reads why (see `Core::linger`).
            if let Some(conn) = self.conn_mut(id) {
                conn.told = true;
            }
        }
        if self.hooks.is_some() {
            let kept = self.take_close_reason_noted();
            self.note_close_reason(kept.unwrap_or("protocol error"));
        }
        self.close(id, true, now);
    }
}

/// The on_connect question for CONNECT `c` on connection `id`.
fn connect_question(core: &Core, id: ConnId, c: &Connect<'_>) -> HookQuestion {
    HookQuestion::Connect {
        client_id: c.client_id.to_owned(),
        username: c.username.map(str::to_owned),
        password: c.password.map(<[u8]>::to_vec),
        address: core
            .conn(id)
            .and_then(Conn::label)
            .unwrap_or("?")
            .to_owned(),
        protocol: level(c.protocol),
        user_properties: c
            .properties
            .iter()
            .filter_map(|p| match p {
                Property::UserProperty(k, v) => Some((k.to_owned(), v.to_owned())),
                _ => None,
            })
            .collect(),
    }
}
