//! Application hooks, the core's side: a CONNECT, PUBLISH or SUBSCRIBE
//! that waits for the application's verdict, and the events it hears.
//!
//! The core never waits. When a hook is installed (see
//! [`Core::set_hooks`]), the packet it covers is *parked*: the core puts a
//! [`HookCall`] in its output ([`Core::poll_hook_call`]), leaves the
//! packet's bytes unconsumed (as it does for a publisher paused by flow
//! control, `flow.rs`) and pauses the connection, so its later packets stay
//! behind it in order. Every other connection goes on. The verdict comes
//! back as an input ([`Core::handle_verdict`]); the connection is resumed,
//! the caller hands the same bytes in again and the packet is handled with
//! the verdict. A verdict that does not come before the deadline refuses.
//!
//! The application's own connections (in-process clients, bridges) are
//! never parked. Events ([`Core::poll_event`]) are produced only while
//! hooks are set, so a core without them pays one `None` check on the
//! paths that would produce them and nothing per message.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::session::Session;
use super::{ConnId, Core, SessionId};
use crate::codec::ProtocolVersion;

/// Which hooks the application installed, and how long a verdict may take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookSet {
    /// Ask about every CONNECT (after the password and ACL files).
    pub connect: bool,
    /// Ask about every PUBLISH (after the ACL).
    pub publish: bool,
    /// Ask about every SUBSCRIBE, one answer per filter.
    pub subscribe: bool,
    /// The application decides who connects instead of the password file
    /// (the ACL still applies to what they do).
    pub connect_replaces_files: bool,
    /// A verdict not given within this time refuses.
    pub timeout: Duration,
    /// Produce events ([`Core::poll_event`]).
    pub events: bool,
}

impl HookSet {
    /// No hook and no events: the same as no hooks at all.
    fn is_off(&self) -> bool {
        !(self.connect || self.publish || self.subscribe || self.events)
    }
}

impl Default for HookSet {
    /// No hook, events on, verdicts within 5 seconds.
    fn default() -> HookSet {
        HookSet {
            connect: false,
            publish: false,
            subscribe: false,
            connect_replaces_files: false,
            timeout: Duration::from_secs(5),
            events: true,
        }
    }
}

/// What the application is asked (see [`HookCall`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookQuestion {
    /// May this client connect?
    Connect {
        /// The client identifier as sent (empty: one will be assigned).
        client_id: String,
        /// The user name, if any (a TLS identity replaces it).
        username: Option<String>,
        /// The password, if any.
        password: Option<Vec<u8>>,
        /// The peer as the caller named it at open (an address).
        address: String,
        /// The protocol level: 3 (3.1), 4 (3.1.1) or 5 (5.0).
        protocol: u8,
        /// 5.0: the CONNECT's User Properties, in order.
        user_properties: Vec<(String, String)>,
    },
    /// May this message be routed?
    Publish {
        /// The publisher's client identifier.
        client_id: String,
        /// The topic (a 5.0 topic alias resolved).
        topic: String,
        /// The payload.
        payload: Vec<u8>,
        /// 0, 1 or 2.
        qos: u8,
        /// The retain flag.
        retain: bool,
    },
    /// May this client subscribe to these filters? One answer per filter.
    Subscribe {
        /// The subscriber's client identifier.
        client_id: String,
        /// Each filter with the QoS asked for, in the packet's order.
        filters: Vec<(String, u8)>,
    },
}

/// A question for the application about the packet parked on `conn`; the
/// answer goes back with [`Core::handle_verdict`] and the same `ticket`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookCall {
    /// The connection waiting.
    pub conn: ConnId,
    /// Matches the verdict to this question (a later question on the same
    /// connection, or a reused id, has another).
    pub ticket: u64,
    /// What is asked.
    pub question: HookQuestion,
}

/// The application's answer to a [`HookCall`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead (for a SUBSCRIBE: every filter).
    Accept,
    /// CONNECT: not authorized (CONNACK 0x05 / 0x87); PUBLISH: not routed
    /// (5.0 PUBACK/PUBREC 0x87, 3.1.1 acknowledged as usual); SUBSCRIBE:
    /// every filter refused (0x80 / 0x87).
    Refuse,
    /// CONNECT only: bad user name or password (0x04 / 0x86); elsewhere as
    /// `Refuse`.
    BadCredentials,
    /// SUBSCRIBE: one answer per filter, in the packet's order (a missing
    /// one refuses); elsewhere `Accept` if the first is `true`.
    Filters(Vec<bool>),
}

/// What happened to a client, for the application (see [`Core::poll_event`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The client it happened to.
    pub client_id: String,
    /// The filter, for `Subscribed` and `Unsubscribed`.
    pub topic: Option<String>,
    /// Why, for `Disconnected`: `"clean"` (DISCONNECT), `"keepalive"`,
    /// `"taken over"`, `"protocol error"`, `"connection lost"`,
    /// `"shutdown"`; for `Dropped`, `"queue full"`.
    pub reason: Option<String>,
}

/// The kinds of [`Event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// CONNECT accepted.
    Connected,
    /// The connection ended.
    Disconnected,
    /// A filter was granted.
    Subscribed,
    /// A filter was removed by UNSUBSCRIBE.
    Unsubscribed,
    /// A QoS 1/2 message for the client was dropped at its queue bound (one
    /// event when dropping starts, not one per message).
    Dropped,
}

impl EventKind {
    /// The lower-case name (`"connected"`, ...), as the Python and C
    /// surfaces spell it.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Connected => "connected",
            EventKind::Disconnected => "disconnected",
            EventKind::Subscribed => "subscribed",
            EventKind::Unsubscribed => "unsubscribed",
            EventKind::Dropped => "dropped",
        }
    }
}

/// The kinds of packet a hook covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Connect,
    Publish,
    Subscribe,
}

/// What the handler of a parked-able packet does next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Gate {
    /// No hook, or the application accepted: handle it as usual.
    Go,
    /// Refused (with the connect refusal to use, for CONNECT).
    Refuse(Verdict),
    /// Answered per filter (SUBSCRIBE).
    Filters(Vec<bool>),
    /// Parked: leave the packet unconsumed and return [`Input::Parked`].
    Wait,
}

/// One parked connection.
#[derive(Debug)]
struct Park {
    ticket: u64,
    until: Instant,
    answer: Option<Verdict>,
}

/// The hooks' state in the core (boxed: a core without hooks pays one
/// pointer).
#[derive(Debug)]
pub(super) struct Hooks {
    set: HookSet,
    next_ticket: u64,
    calls: VecDeque<HookCall>,
    events: VecDeque<Event>,
    parked: HashMap<ConnId, Park>,
    /// Why the connection being closed ends, for its `Disconnected` event.
    close_reason: Option<&'static str>,
}

impl Hooks {
    /// Records an event about session `s`, when events are on; the
    /// application's own sessions make none (see `Core::emit`).
    pub(super) fn push_event(
        &mut self,
        kind: EventKind,
        s: &Session,
        topic: Option<&str>,
        reason: Option<&str>,
    ) {
        if !self.set.events || s.trusted {
            return;
        }
        self.events.push_back(Event {
            kind,
            client_id: s.client_id.to_string(),
            topic: topic.map(str::to_owned),
            reason: reason.map(str::to_owned),
        });
    }

    fn wants(&self, kind: Kind) -> bool {
        match kind {
            Kind::Connect => self.set.connect,
            Kind::Publish => self.set.publish,
            Kind::Subscribe => self.set.subscribe,
        }
    }
}

/// The protocol level byte of `v`.
pub(super) fn level(v: ProtocolVersion) -> u8 {
    match v {
        ProtocolVersion::V31 => 3,
        ProtocolVersion::V311 => 4,
        ProtocolVersion::V5 => 5,
    }
}

impl Core {
    /// Installs (or, with every flag off and events off, removes) the
    /// application's hooks. Connections parked under the previous set keep
    /// waiting for their verdict.
    pub fn set_hooks(&mut self, set: HookSet) {
        let off = set.is_off();
        match (&mut self.hooks, off) {
            (Some(h), false) => h.set = set,
            (Some(h), true) if h.parked.is_empty() => self.hooks = None,
            (Some(h), true) => h.set = set,
            (None, true) => {}
            (None, false) => {
                self.hooks = Some(Box::new(Hooks {
                    set,
                    next_ticket: 0,
                    calls: VecDeque::new(),
                    events: VecDeque::new(),
                    parked: HashMap::new(),
                    close_reason: None,
                }));
            }
        }
    }

    /// The next question for the application, if any; call until `None`
    /// after each turn and answer each with [`Core::handle_verdict`].
    pub fn poll_hook_call(&mut self) -> Option<HookCall> {
        self.hooks.as_mut().and_then(|h| h.calls.pop_front())
    }

    /// The next event, in order per client (and over all clients, in the
    /// order they happened), if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.hooks.as_mut().and_then(|h| h.events.pop_front())
    }

    /// The number of connections waiting for a verdict.
    pub fn parked_count(&self) -> usize {
        self.hooks.as_ref().map_or(0, |h| h.parked.len())
    }

    /// The ticket of the question connection `id` waits for: `None` when
    /// it is not parked, or its verdict came (or its deadline passed) and
    /// it is about to go on.
    pub fn pending_ticket(&self, id: ConnId) -> Option<u64> {
        let p = self.hooks.as_ref()?.parked.get(&id)?;
        p.answer.is_none().then_some(p.ticket)
    }

    /// The application's verdict on the question `ticket` about `conn`.
    /// The connection is resumed ([`Core::poll_resumed`] names it): the
    /// caller hands its unconsumed bytes in again and the parked packet is
    /// handled with this verdict. A verdict for a connection gone, or that
    /// came after its deadline, is ignored.
    pub fn handle_verdict(&mut self, conn: ConnId, ticket: u64, verdict: Verdict, now: Instant) {
        let Some(h) = self.hooks.as_mut() else { return };
        match h.parked.get_mut(&conn) {
            Some(p) if p.ticket == ticket && p.answer.is_none() => p.answer = Some(verdict),
            _ => return,
        }
        // Parked as flow control pauses a connection: resumed the same way.
        self.unpause(conn, now);
    }

    /// Asks the application about a packet of `kind` on connection `id`
    /// (not for trusted connections), or applies the verdict it gave. The
    /// question is built only when one is asked.
    pub(super) fn gate(
        &mut self,
        id: ConnId,
        kind: Kind,
        question: impl FnOnce(&Core) -> HookQuestion,
        now: Instant,
    ) -> Gate {
        let Some(h) = self.hooks.as_ref() else {
            return Gate::Go;
        };
        if !h.wants(kind) {
            // Parked under hooks since removed: handled as without them.
            self.forget_park(id);
            return Gate::Go;
        }
        let parked = h.parked.contains_key(&id);
        if !parked && self.conn(id).is_none_or(|c| c.trusted) {
            return Gate::Go;
        }
        let timeout = h.set.timeout;
        let question = if parked { None } else { Some(question(self)) };
        let Some(h) = self.hooks.as_mut() else {
            return Gate::Go;
        };
        let until = match (h.parked.get(&id), question) {
            (Some(p), _) if p.answer.is_some() || p.until <= now => {
                let answer = h.parked.remove(&id).and_then(|p| p.answer);
                return match answer {
                    Some(Verdict::Accept) => Gate::Go,
                    Some(Verdict::Filters(v)) if kind == Kind::Subscribe => Gate::Filters(v),
                    Some(Verdict::Filters(v)) if v.first() == Some(&true) => Gate::Go,
                    Some(Verdict::Filters(_)) => Gate::Refuse(Verdict::Refuse),
                    Some(v) => Gate::Refuse(v),
                    None => {
                        log::warn!(
                            "client {}: no verdict from the application within {} ms; refusing",
                            self.label(id),
                            timeout.as_millis()
                        );
                        Gate::Refuse(Verdict::Refuse)
                    }
                };
            }
            // Resumed by something else while waiting: wait on.
            (Some(p), _) => p.until,
            (None, Some(question)) => {
                h.next_ticket += 1;
                let ticket = h.next_ticket;
                let until = now + timeout;
                h.parked.insert(
                    id,
                    Park {
                        ticket,
                        until,
                        answer: None,
                    },
                );
                h.calls.push_back(HookCall {
                    conn: id,
                    ticket,
                    question,
                });
                until
            }
            (None, None) => return Gate::Go,
        };
        if let Some(c) = self.conn_mut(id) {
            c.throttled_until = Some(until);
        }
        self.note_deadline(Some(until));
        Gate::Wait
    }

    /// Whether the application decides who connects instead of the
    /// password file.
    pub(super) fn hooks_replace_files(&self) -> bool {
        self.hooks
            .as_ref()
            .is_some_and(|h| h.set.connect && h.set.connect_replaces_files)
    }

    /// Records an event about session `sid`, when events are on. The
    /// application's own connections (in-process clients, bridges) make
    /// none: it knows them.
    pub(super) fn emit(
        &mut self,
        kind: EventKind,
        sid: SessionId,
        topic: Option<&str>,
        reason: Option<&str>,
    ) {
        let Some(h) = self.hooks.as_deref_mut() else {
            return;
        };
        if let Some(s) = self.sessions.get(sid.0) {
            h.push_event(kind, s, topic, reason);
        }
    }

    /// Says why the connection about to be closed ends (for its
    /// `Disconnected` event); nothing without hooks.
    pub(super) fn note_close_reason(&mut self, why: &'static str) {
        if let Some(h) = self.hooks.as_mut() {
            h.close_reason = Some(why);
        }
    }

    /// The reason noted for the connection being closed, or `"connection
    /// lost"`.
    pub(super) fn take_close_reason(&mut self) -> &'static str {
        self.hooks
            .as_mut()
            .and_then(|h| h.close_reason.take())
            .unwrap_or("connection lost")
    }

    /// The reason noted so far, taken (see `disconnect_with`).
    pub(super) fn take_close_reason_noted(&mut self) -> Option<&'static str> {
        self.hooks.as_mut().and_then(|h| h.close_reason.take())
    }

    /// Connection `id` is gone, or its hook was removed: a verdict for it
    /// is no longer awaited. Hooks removed while connections were parked
    /// go once the last of them is let go.
    pub(super) fn forget_park(&mut self, id: ConnId) {
        let Some(h) = self.hooks.as_mut() else {
            return;
        };
        if h.parked.remove(&id).is_some() && h.parked.is_empty() && h.set.is_off() {
            self.hooks = None;
        }
    }
}
