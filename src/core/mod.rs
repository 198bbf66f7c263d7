//! The sans-IO broker core.
//!
//! The core never touches a socket and never reads the clock. The event loop
//! (or a test, a fuzzer, the in-process client) drives it with inputs and
//! collects its outputs:
//!
//! * inputs, each with the current time: [`Core::handle_open`] when a
//!   connection is accepted, [`Core::handle_data`] with the bytes read from
//!   it, [`Core::handle_written`] when some of its output went out,
//!   [`Core::handle_close`] when the peer or the network closed it, and
//!   [`Core::handle_timeout`] once [`Core::next_deadline`] has passed;
//! * outputs: [`Core::poll_dirty`] names each connection that has new bytes
//!   to send or must be closed, [`Core::pending_output`] gives its bytes and
//!   [`Core::is_closing`] says whether to close it once they are written (or
//!   right away if they cannot be).
//!
//! A connection id is the caller's to choose (the event loop uses its slab
//! key); the caller promises not to reuse an id before it has called
//! `handle_close` for it.

pub(crate) mod adapter;
mod alias;
mod bridge;
mod budget;
mod charge;
mod client_index;
mod conn;
mod connect;
mod flow;
mod ids;
mod listener;
mod log_topic;
mod matching;
mod message;
mod persist;
mod publish;
mod retain;
mod session;
mod subscribe;
mod sys;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_corners;
#[cfg(test)]
mod tests_v5;
mod verdict;

use std::collections::HashMap;
use std::time::Instant;

use slab::Slab;

use crate::Limits;
use crate::auth::Auth;
use crate::codec::{self, DecodeError, Packet, PropertiesBuf};

pub use bridge::SessionFigures;
use conn::{Conn, Phase};
pub use ids::ConnId;
pub use listener::ListenerOptions;
use matching::Router;
pub use session::QueuePolicy;
use session::{Session, SessionId};
use sys::SysState;
pub use verdict::{Event, EventKind, HookCall, HookQuestion, HookSet, Verdict};

pub use persist::{PersistFigures, PersistMode, RestoreReport, for_each_record};

/// Pending output past which a connection is worth writing at once (see
/// [`Core::poll_urgent`]).
const FLUSH_MARK: usize = 64 * 1024;

/// The log target of the lines about clients connecting and disconnecting,
/// what Mosquitto's `connection_messages false` leaves out of the log.
/// Under `boxmq::core`, so a `boxmq::core=...` log filter still covers it.
pub const CONNECTION_LOG: &str = "boxmq::core::connection";

/// What the core is made with: the few settings of the configuration it
/// reads (the configuration layer builds one, see
/// `Config::core_options`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreOptions {
    /// Every memory and resource bound.
    pub limits: Limits,
    /// Whether clients without a user name may connect (until
    /// [`Core::set_auth`] installs the rules read from files).
    pub allow_anonymous: bool,
    /// Seconds between updates of the `$SYS/broker/...` topics; 0 turns
    /// them off.
    pub sys_interval: u32,
    /// Reason Strings in 5.0 error replies for every client that does not
    /// refuse them.
    pub reason_strings: bool,
    /// `allow_zero_length_clientid`: a client that sends an empty client
    /// id gets one assigned; `false` refuses it (3.1.1: CONNACK 0x02,
    /// 5.0: 0x85).
    pub allow_zero_length_clientid: bool,
    /// `auto_id_prefix`: what assigned client ids start with.
    pub auto_id_prefix: String,
    /// `retain_available`: `false` turns retained messages off; a client
    /// that sends one is disconnected (5.0: DISCONNECT 0x9A).
    pub retain_available: bool,
    /// `upgrade_outgoing_qos`: messages go to each subscriber at the QoS
    /// of its subscription, even above the published QoS (non-standard).
    pub upgrade_outgoing_qos: bool,
    /// `queue_qos0_messages`: QoS 0 messages are queued for offline
    /// persistent sessions too, within `max_queued_messages` and
    /// `max_queued_bytes` (non-standard for 3.1.1; 5.0 allows it).
    pub queue_qos0_messages: bool,
    /// `persistent_client_expiration`, in seconds: a session that never
    /// expires by the protocol (3.1.1 clean session 0, 5.0 expiry
    /// 0xFFFFFFFF) is dropped when its client stays away this long.
    /// `None` (the default): kept for ever.
    pub persistent_client_expiration: Option<u32>,
    /// `max_inflight_bytes`: a client gets another QoS 1/2 message while
    /// the payload bytes it has not acknowledged are below this; 0 (the
    /// default): no byte bound, `max_inflight_messages` alone.
    pub max_inflight_bytes: usize,
    /// The options of each listener, by its index (see
    /// [`Core::set_listener`]).
    pub listeners: Vec<ListenerOptions>,
}

impl Default for CoreOptions {
    /// The defaults of the configuration: anonymous clients allowed,
    /// `$SYS` every 10 seconds, no Reason Strings.
    fn default() -> CoreOptions {
        CoreOptions {
            limits: Limits::default(),
            allow_anonymous: true,
            sys_interval: 10,
            reason_strings: false,
            allow_zero_length_clientid: true,
            auto_id_prefix: "auto-".to_owned(),
            retain_available: true,
            upgrade_outgoing_qos: false,
            queue_qos0_messages: false,
            persistent_client_expiration: None,
            max_inflight_bytes: 0,
            listeners: Vec::new(),
        }
    }
}

/// The core's running counters, for `$SYS`; the event loop adds its own
/// figures (bridges, uptime, the store) to make the embedding handle's
/// [`crate::Stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections that completed CONNECT and are still attached.
    pub clients_connected: usize,
    /// Most clients connected at once since start.
    pub clients_maximum: usize,
    /// Sessions held (connected ones and persistent offline ones).
    pub sessions: usize,
    /// PUBLISH packets received from clients (and in-process publishes).
    pub messages_received: u64,
    /// PUBLISH packets sent to clients.
    pub messages_sent: u64,
    /// Bytes received from all connections.
    pub bytes_received: u64,
    /// Bytes handed to the network for all connections.
    pub bytes_sent: u64,
    /// Messages not delivered to a subscriber because a limit was reached
    /// (output buffer full for QoS 0, session queue full for QoS 1/2).
    pub publish_dropped: u64,
    /// Retained messages not stored because the retained limits were reached.
    pub retained_refused: u64,
    /// Connections closed because what they sent did not fit in the memory
    /// budget (`memory_limit`; 5.0: DISCONNECT 0x97).
    pub budget_refused: u64,
    /// Bytes the memory budget counts now: frames being received, kept
    /// messages, output buffers (docs/LIMITS.md, "The memory budget").
    pub memory_used: usize,
    /// Retained messages held.
    pub retained_messages: usize,
    /// Topic and payload bytes of the retained messages held.
    pub retained_bytes: usize,
    /// Subscriptions held, over all sessions.
    pub subscriptions: usize,
    /// QoS 1/2 messages each session lost to its queue bound (while
    /// offline, stuck, or not slowing its publishers: see
    /// README "QoS 1/2 under load"), for the sessions held now that lost
    /// any, in no particular order.
    pub dropped_per_client: Vec<ClientDropped>,
}

/// Messages one session lost to its queue bound (see
/// [`Stats::dropped_per_client`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientDropped {
    /// The session's client identifier.
    pub client_id: String,
    /// Messages it lost since the session began.
    pub dropped: u64,
}

/// The broker's whole protocol state. See the module documentation.
pub struct Core {
    limits: Limits,
    /// `CoreOptions::reason_strings`: Reason Strings in 5.0 error replies for
    /// every client that does not refuse them.
    reason_strings: bool,
    /// Who may connect and what they may touch.
    auth: Auth,
    /// Indexed by `ConnId`.
    conns: Vec<Option<Conn>>,
    sessions: Slab<Session>,
    by_client_id: client_index::ClientIndex,
    /// Subscriptions, shared groups, retained messages (see `matching.rs`).
    router: Router,
    dirty: Vec<ConnId>,
    /// Dirty connections whose output passed `FLUSH_MARK`: worth writing
    /// before the end of the turn.
    urgent: Vec<ConnId>,
    /// No connection's deadline is before this instant (see `sweep`).
    next_sweep: Option<Instant>,
    stats: Stats,
    sys: SysState,
    next_auto_id: u64,
    /// Keys for [`Core::assign_client_id`]'s random ids.
    id_keys: std::collections::hash_map::RandomState,
    /// Reused buffers for the hot path, so handling allocates nothing.
    /// Publishers paused, each with the subscriber it waits for (see
    /// `flow.rs`), and those released since the caller last asked.
    throttled: Vec<(ConnId, SessionId)>,
    resumed: std::collections::VecDeque<ConnId>,
    scratch_frame: Vec<u8>,
    scratch_codes: Vec<u8>,
    scratch_props: PropertiesBuf,
    scratch_fwd: PropertiesBuf,
    /// Queue bounds of particular sessions (bridges), by client id.
    policies: HashMap<Box<str>, QueuePolicy>,
    /// Persistence's hooks and state, when on (see `persist.rs`); boxed
    /// inside, as most of it is cold and the core without it pays one
    /// pointer.
    journal: persist::Journal,
    /// The application's hooks and events, when set (see `verdict.rs`).
    hooks: Option<Box<verdict::Hooks>>,
    /// `CoreOptions::allow_zero_length_clientid`.
    allow_zero_length_clientid: bool,
    /// `CoreOptions::auto_id_prefix`.
    auto_id_prefix: Box<str>,
    /// `CoreOptions::retain_available`.
    retain_available: bool,
    /// `CoreOptions::upgrade_outgoing_qos`.
    upgrade_outgoing_qos: bool,
    /// `CoreOptions::queue_qos0_messages`.
    queue_qos0_messages: bool,
    /// `CoreOptions::persistent_client_expiration`.
    persistent_client_expiration: Option<u32>,
    /// `CoreOptions::max_inflight_bytes`.
    max_inflight_bytes: usize,
    /// `CoreOptions::listeners`.
    listeners: Vec<ListenerOptions>,
    /// The memory budget's accountant (`memory_limit`, see `budget.rs`).
    budget: budget::Budget,
}

/// The delivery side of the core, borrowed apart from its [`Router`] (see
/// [`Core::split_route`]): what handing a message to a session, its queue
/// and its connection touches. Routing walks the router's matches while
/// delivering through this view, so neither needs to take the other's
/// buffers out and put them back.
struct Delivery<'a> {
    limits: &'a Limits,
    auth: &'a Auth,
    listeners: &'a [ListenerOptions],
    /// `CoreOptions::upgrade_outgoing_qos`.
    upgrade_outgoing_qos: bool,
    /// `CoreOptions::queue_qos0_messages`.
    queue_qos0_messages: bool,
    /// `CoreOptions::max_inflight_bytes`.
    max_inflight_bytes: usize,
    sessions: &'a mut Slab<Session>,
    conns: &'a mut Vec<Option<Conn>>,
    budget: &'a mut budget::Budget,
    stats: &'a mut Stats,
    journal: &'a mut persist::Journal,
    hooks: &'a mut Option<Box<verdict::Hooks>>,
    throttled: &'a mut Vec<(ConnId, SessionId)>,
    resumed: &'a mut std::collections::VecDeque<ConnId>,
    dirty: &'a mut Vec<ConnId>,
    urgent: &'a mut Vec<ConnId>,
    next_sweep: &'a mut Option<Instant>,
    /// A QoS 0 frame encoded once per routing for every 3.1/3.1.1
    /// subscriber (`Core::scratch_frame`).
    frame: &'a mut Vec<u8>,
    /// Properties of the PUBLISH being encoded (`Core::scratch_props`).
    props: &'a mut PropertiesBuf,
}

/// Queues connection `id` for the caller's attention (`dirty`, and
/// `urgent` past `FLUSH_MARK`); what was appended to its output is charged
/// to the budget. Shared by `Core` and its `Delivery` view.
fn mark_dirty(
    conns: &mut [Option<Conn>],
    budget: &mut budget::Budget,
    dirty: &mut Vec<ConnId>,
    urgent: &mut Vec<ConnId>,
    id: ConnId,
) {
    if let Some(c) = conns.get_mut(id.0).and_then(Option::as_mut) {
        // Every append to an output buffer ends here: the budget counts it.
        budget.charge_output(c.charge_output());
        if !c.dirty {
            c.dirty = true;
            dirty.push(id);
        }
        if !c.urgent && c.output_len() >= FLUSH_MARK {
            c.urgent = true;
            urgent.push(id);
        }
    }
}

/// Moves `next_sweep` back to `deadline` if that is earlier.
fn note_deadline(next_sweep: &mut Option<Instant>, deadline: Option<Instant>) {
    if let Some(d) = deadline {
        if next_sweep.is_none_or(|t| d < t) {
            *next_sweep = Some(d);
        }
    }
}

impl Delivery<'_> {
    /// Queues `id` for the caller's attention.
    #[inline(always)]
    fn mark_dirty(&mut self, id: ConnId) {
        mark_dirty(self.conns, self.budget, self.dirty, self.urgent, id);
    }

    /// Moves the next sweep back to `deadline` if that is earlier.
    #[inline(always)]
    fn note_deadline(&mut self, deadline: Option<Instant>) {
        note_deadline(self.next_sweep, deadline);
    }

    /// Records an event about session `sid`, when events are on (as
    /// `Core::emit` does).
    fn emit(&mut self, kind: EventKind, sid: SessionId, topic: Option<&str>, reason: Option<&str>) {
        let Some(h) = self.hooks.as_deref_mut() else {
            return;
        };
        if let Some(s) = self.sessions.get(sid.0) {
            h.push_event(kind, s, topic, reason);
        }
    }
}

/// What became of one packet of input (see [`Core::handle_data`]).
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Input {
    /// Handled (answered, routed, or the connection closed).
    Taken,
    /// Not taken now: a subscriber's queue is full and the publisher is
    /// paused (see `flow.rs`); its bytes are handed in again on resuming.
    Refused,
    /// Not taken now: parked for the application's verdict (see
    /// `verdict.rs`); its bytes are handed in again once the verdict came.
    Parked,
}

/// Why a handler ends its connection: the handler returns it, and
/// [`Core::apply_close`] acts on it in one place (a 5.0 client gets
/// DISCONNECT with `code`, the will is published, the connection closes).
#[must_use]
#[derive(Debug)]
struct Close {
    /// 5.0 reason code of the DISCONNECT; `None`: closed without one (see
    /// [`Close::quiet`]).
    code: Option<u8>,
    /// What went wrong, for the log and the 5.0 Reason String.
    why: std::borrow::Cow<'static, str>,
}

impl Close {
    /// A protocol violation found after decoding (0x82).
    fn protocol(what: impl std::fmt::Display) -> Close {
        Close {
            code: Some(0x82),
            why: format!("protocol error: {what}").into(),
        }
    }

    /// A DISCONNECT with reason `code`.
    fn new(code: u8, why: &'static str) -> Close {
        Close {
            code: Some(code),
            why: why.into(),
        }
    }

    /// A protocol violation closed without a DISCONNECT (5.0 §4.13 leaves
    /// it optional), where Mosquitto closes that way.
    fn quiet(what: &'static str) -> Close {
        Close {
            code: None,
            why: what.into(),
        }
    }
}

/// How a log line names a connection (see `Core::label`).
enum Label<'a> {
    Text(&'a str),
    Client(&'a str),
}

impl std::fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Label::Text(t) => f.write_str(t),
            Label::Client(c) => write!(f, "'{c}'"),
        }
    }
}

/// Most connections and sessions whose tables are reserved at start.
const PREALLOCATE_MAX: usize = 1 << 16;

impl Core {
    /// A core with no connections and no sessions, enforcing the limits
    /// and access rules of `options`.
    pub fn new(options: CoreOptions) -> Core {
        let budget = budget::Budget::new(options.limits.memory_limit);
        Core {
            // The files are the caller's to read (see `Core::set_auth`).
            auth: Auth::new(None, None, options.allow_anonymous),
            // Reserved up front (address space; pages are touched only as
            // connections use them), so growing never copies the tables
            // and leaves the old copies as touched holes in the heap.
            conns: Vec::with_capacity(options.limits.max_connections.min(PREALLOCATE_MAX)),
            sessions: Slab::with_capacity(options.limits.max_sessions.min(PREALLOCATE_MAX)),
            // Not reserved: entries land at random places, so a large empty
            // table would have most of its pages touched by a few clients.
            by_client_id: client_index::ClientIndex::default(),
            router: Router::default(),
            dirty: Vec::new(),
            urgent: Vec::new(),
            next_sweep: None,
            stats: Stats::default(),
            sys: SysState::new(options.sys_interval),
            reason_strings: options.reason_strings,
            limits: options.limits,
            next_auto_id: 0,
            id_keys: std::collections::hash_map::RandomState::new(),
            throttled: Vec::new(),
            resumed: std::collections::VecDeque::new(),
            scratch_frame: Vec::new(),
            scratch_codes: Vec::new(),
            scratch_props: PropertiesBuf::new(),
            scratch_fwd: PropertiesBuf::new(),
            policies: HashMap::new(),
            journal: persist::Journal::default(),
            hooks: None,
            allow_zero_length_clientid: options.allow_zero_length_clientid,
            auto_id_prefix: options.auto_id_prefix.into(),
            retain_available: options.retain_available,
            upgrade_outgoing_qos: options.upgrade_outgoing_qos,
            queue_qos0_messages: options.queue_qos0_messages,
            persistent_client_expiration: options.persistent_client_expiration,
            max_inflight_bytes: options.max_inflight_bytes,
            listeners: options.listeners,
            budget,
        }
    }

    /// Replaces the authentication and ACL rules, for example after the
    /// files were read at start-up or re-read on SIGHUP. Connected clients
    /// keep their connection; their next packets and deliveries follow the
    /// new rules.
    pub fn set_auth(&mut self, auth: Auth) {
        self.auth = auth;
        self.recheck_subscriptions();
    }

    /// Marks connection `id`, just opened, as the application's own (the
    /// in-process client): it needs no credentials and no ACL applies to it.
    pub fn trust(&mut self, id: ConnId) {
        if let Some(c) = self.conn_mut(id) {
            c.trusted = true;
        }
    }

    /// Connection `id`, just opened, proved who it is at the transport level
    /// (the CN of a verified TLS client certificate with
    /// `use_identity_as_username`): its CONNECT needs no password and its
    /// user name for the ACL is `name`, whatever the CONNECT says.
    pub fn set_identity(&mut self, id: ConnId, name: &str) {
        if let Some(c) = self.conn_mut(id) {
            c.set_identity(name.into());
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Counters as of now.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.sessions = self.sessions.len();
        s.retained_messages = self.router.retained.len();
        s.retained_bytes = self.router.retained.bytes();
        s.memory_used = self.budget_used();
        s.subscriptions = self.router.trie.len() + self.router.shared.len();
        s.dropped_per_client = self
            .sessions
            .iter()
            .filter(|(_, ss)| ss.dropped > 0)
            .map(|(_, ss)| ClientDropped {
                client_id: ss.client_id.to_string(),
                dropped: ss.dropped,
            })
            .collect();
        s
    }

    /// A new connection `id` was opened. `label` (usually the peer address)
    /// names it in log lines until its client id is known.
    pub fn handle_open(&mut self, id: ConnId, label: &str, now: Instant) {
        if self.conns.len() <= id.0 {
            self.conns.resize_with(id.0 + 1, || None);
        }
        let conn = Conn::new(now, label.into());
        self.note_deadline(conn.deadline(self.limits.connect_timeout));
        self.conns[id.0] = Some(conn);
    }

    /// Bytes arrived on connection `id`. Decodes and handles every complete
    /// packet at the start of `data` and returns how many bytes it used; the
    /// caller keeps the rest (an incomplete packet, or packets the core does
    /// not take now: see [`Core::wants_input`]) and passes it again with
    /// what follows. A connection the core closes uses all of `data`.
    pub fn handle_data(&mut self, id: ConnId, data: &[u8], now: Instant) -> usize {
        let max = self.limits.max_packet_size as usize;
        self.stats.bytes_received += data.len() as u64;
        let mut used = 0;
        loop {
            let (version, phase) = match self.conn(id) {
                Some(c) => (c.protocol, c.phase),
                None => return data.len(),
            };
            if phase == Phase::Closing {
                return data.len();
            }
            if used > 0 && !self.wants_input(id) {
                // The client is not reading its answers: take no more of
                // its packets until it does, so that what it makes the
                // broker buffer stays within `max_output_buffer` (plus the
                // answers to one call's first packet; the event loop does
                // not call at all while `wants_input` is false).
                return used;
            }
            let rest = data.get(used..).unwrap_or(&[]);
            if matches!(phase, Phase::Connected(_)) {
                match screen(rest) {
                    Screen::Pass => {}
                    Screen::NeedMore => return used,
                    Screen::Refuse(what) => {
                        self.apply_close(id, Close::protocol(what), now);
                        return data.len();
                    }
                    Screen::Close(what) => {
                        self.apply_close(id, Close::quiet(what), now);
                        return data.len();
                    }
                }
            }
            match codec::decode(rest, version, max) {
                Ok(None) => {
                    if let Err(close) = self.receive_partial(id, rest) {
                        self.apply_close(id, close, now);
                        return data.len();
                    }
                    return used;
                }
                Ok(Some((packet, n))) => {
                    if used == 0 {
                        // A frame reserved while it was incomplete is
                        // always the first of a call (see `budget.rs`).
                        self.budget.release_frame(id);
                    }
                    used += n;
                    if let Some(c) = self.conn_mut(id) {
                        c.last_rx = now;
                    }
                    let input = self.handle_packet(id, packet, now);
                    if input != Input::Taken {
                        // A subscriber's full queue, or a packet parked for the
                        // application's verdict (`verdict.rs`): the packet is
                        // handed in again once the connection is resumed
                        // (see `flow.rs`), and its bytes counted then.
                        let kept = used - n;
                        self.stats.bytes_received -= (data.len() - kept) as u64;
                        // The caller keeps the frame until it is handed in
                        // again: the budget counts it meanwhile.
                        self.budget.hold_frame(id, n);
                        return kept;
                    }
                }
                Err(DecodeError::InvalidReasonCode(code)) if rest.first() == Some(&0xE0) => {
                    // A DISCONNECT with a code the spec does not define:
                    // the client is leaving anyway; close without answering
                    // (Mosquitto's behaviour), the will is published.
                    log::warn!(
                        "client {}: DISCONNECT with undefined reason code {code:#04x}; closing",
                        self.label(id)
                    );
                    self.close(id, true, now);
                    return data.len();
                }
                Err(err) => {
                    self.decode_error(id, err, now);
                    return data.len();
                }
            }
        }
    }

    /// `n` bytes of connection `id`'s pending output were written. Room in
    /// its output buffer may let queued messages go out.
    pub fn handle_written(&mut self, id: ConnId, n: usize, now: Instant) {
        self.stats.bytes_sent += n as u64;
        let Some(c) = self.conns.get_mut(id.0).and_then(Option::as_mut) else {
            return;
        };
        self.budget.release_output(c.consume_output(n));
        let Phase::Connected(session) = c.phase else {
            return;
        };
        self.pump(session, now);
        self.pump_waiting(now);
    }

    /// Connection `id` is gone (closed by the peer, by the network, or by the
    /// caller after [`Core::is_closing`]). A will is published unless the
    /// client said DISCONNECT [MQTT-3.1.2-8]. The id may be reused afterwards.
    pub fn handle_close(&mut self, id: ConnId, now: Instant) {
        if self.conn(id).is_some_and(|c| c.phase != Phase::Closing) {
            log::info!(target: CONNECTION_LOG, "client {} closed the connection", self.label(id));
            self.close(id, true, now);
        }
        if let Some(slot) = self.conns.get_mut(id.0) {
            if let Some(c) = slot.take() {
                self.budget.release_output(c.output_charge());
            }
        }
        self.budget.release_frame(id);
        self.forget_throttle(id);
        self.forget_park(id);
    }

    /// Time has reached `now`: closes connections whose keepalive or connect
    /// timeout has run out, publishes delayed wills that are due and drops
    /// expired sessions.
    ///
    /// The first call also starts the `$SYS` clock: the event loop calls
    /// this once per turn, whether or not a deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|t| t <= now) {
            self.sweep(now);
        }
        self.sys_tick(now);
        self.pump_waiting(now);
    }

    /// When [`Core::handle_timeout`] next has work to do, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.next_sweep, self.sys.next()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next connection with output to write or to close, if any. Each is
    /// named once per change; call until `None`.
    pub fn poll_dirty(&mut self) -> Option<ConnId> {
        while let Some(id) = self.dirty.pop() {
            if let Some(c) = self.conn_mut(id) {
                c.dirty = false;
                return Some(id);
            }
        }
        None
    }

    /// Whether the core takes more packets from connection `id` now. It
    /// does not while the connection's pending output is above
    /// `max_output_buffer` (a client that sends without reading the
    /// answers is paused until it reads), nor while a subscriber it
    /// publishes to falls behind (see `flow.rs`, until
    /// [`Core::poll_resumed`] names it). The caller stops reading its
    /// socket meanwhile. [`Core::handle_data`] stops at that point by
    /// itself, after at least one packet; and it may leave a PUBLISH
    /// unconsumed that would meet a full queue, but never on a trusted
    /// connection, so a caller that feeds one packet at a time, like the
    /// in-process client, is never refused.
    pub fn wants_input(&self, id: ConnId) -> bool {
        self.conn(id).is_some_and(|c| {
            c.output_len() <= self.limits.max_output_buffer && c.throttled_until.is_none()
        })
    }

    /// The next connection that was paused (see [`Core::wants_input`]) and
    /// may be read again although nothing was written to it: the caller
    /// reads it, since no new readiness event may come.
    pub fn poll_resumed(&mut self) -> Option<ConnId> {
        self.resumed.pop_front()
    }

    /// The next connection whose pending output has grown past 64 KiB
    /// since it was last named here. The event loop writes these between
    /// reads, not only at the end of its turn, so that a burst read from
    /// publishers reaches subscribers' sockets before their output buffers
    /// fill up. A connection named here stays in the dirty list as well.
    pub fn poll_urgent(&mut self) -> Option<ConnId> {
        while let Some(id) = self.urgent.pop() {
            if let Some(c) = self.conn_mut(id) {
                c.urgent = false;
                return Some(id);
            }
        }
        None
    }

    /// Bytes waiting to be written to connection `id`.
    pub fn pending_output(&self, id: ConnId) -> &[u8] {
        self.conn(id).map(|c| c.pending_output()).unwrap_or(&[])
    }

    /// The core wants connection `id` closed (after writing what is pending,
    /// as far as the socket takes it). Not while some of its output waits
    /// for records to be durable (persistence): its last answers go out
    /// first, once [`Core::handle_durable`] releases them.
    pub fn is_closing(&self, id: ConnId) -> bool {
        self.conn(id)
            .is_none_or(|c| c.phase == Phase::Closing && !c.has_held_output())
    }

    /// Whether connection `id`, which [`Core::is_closing`], was sent a
    /// DISCONNECT saying what rule it broke. Such a client may still be
    /// writing (acknowledgements, a burst of PUBLISHes): closed at once, its
    /// next write meets a reset, and many clients then report the broken
    /// pipe rather than read the DISCONNECT waiting for them. The loop
    /// closes these in two steps: the write side first, then the rest after
    /// discarding what the client still sends for a moment.
    pub fn linger(&self, id: ConnId) -> bool {
        self.conn(id).is_some_and(|c| c.told)
    }

    /// Graceful stop: tells every connected client (5.0: DISCONNECT 0x8B,
    /// server shutting down) and marks every connection for closing. Wills
    /// are not published: the clients did nothing wrong.
    pub fn shutdown(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            let id = ConnId(i);
            if self.conn(id).is_some_and(|c| c.phase != Phase::Closing) {
                let _ = self.disconnect_v5(id, 0x8B, "server shutting down");
                self.note_close_reason("shutdown");
                self.close(id, false, now);
            }
        }
    }

    /// Number of connections the core knows (opened and not yet closed).
    pub fn connection_count(&self) -> usize {
        self.conns.iter().filter(|c| c.is_some()).count()
    }

    // ----- internals shared by the handlers -----

    fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns.get(id.0).and_then(Option::as_ref)
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns.get_mut(id.0).and_then(Option::as_mut)
    }

    /// Names connection `id` in log lines: the peer address until CONNECT,
    /// then the client id (nothing is formatted unless a line is written).
    fn label(&self, id: ConnId) -> Label<'_> {
        let Some(c) = self.conn(id) else {
            return Label::Text("?");
        };
        if let Some(l) = c.label() {
            return Label::Text(l);
        }
        match c.phase {
            Phase::Connected(sid) => match self.sessions.get(sid.0) {
                Some(s) => Label::Client(&s.client_id),
                None => Label::Text("?"),
            },
            _ => Label::Text("?"),
        }
    }

    /// The core split in two: its router, and the rest as the delivery
    /// side (see [`Delivery`]), borrowed apart.
    #[inline]
    fn split_route(&mut self) -> (&mut Router, Delivery<'_>) {
        let delivery = Delivery {
            limits: &self.limits,
            auth: &self.auth,
            listeners: &self.listeners,
            upgrade_outgoing_qos: self.upgrade_outgoing_qos,
            queue_qos0_messages: self.queue_qos0_messages,
            max_inflight_bytes: self.max_inflight_bytes,
            sessions: &mut self.sessions,
            conns: &mut self.conns,
            budget: &mut self.budget,
            stats: &mut self.stats,
            journal: &mut self.journal,
            hooks: &mut self.hooks,
            throttled: &mut self.throttled,
            resumed: &mut self.resumed,
            dirty: &mut self.dirty,
            urgent: &mut self.urgent,
            next_sweep: &mut self.next_sweep,
            frame: &mut self.scratch_frame,
            props: &mut self.scratch_props,
        };
        (&mut self.router, delivery)
    }

    /// The delivery side of the core (see [`Delivery`]).
    #[inline]
    fn delivery(&mut self) -> Delivery<'_> {
        self.split_route().1
    }

    /// Queues `id` for the caller's attention.
    fn mark_dirty(&mut self, id: ConnId) {
        mark_dirty(
            &mut self.conns,
            &mut self.budget,
            &mut self.dirty,
            &mut self.urgent,
            id,
        );
    }

    /// Encodes `packet` for connection `id` and queues it for writing.
    fn send(&mut self, id: ConnId, packet: &Packet<'_>) {
        let Some(c) = self.conns.get_mut(id.0).and_then(Option::as_mut) else {
            return;
        };
        self.journal.hold_output(c, id);
        let version = c.protocol;
        packet.encode(version, c.out_buf());
        self.mark_dirty(id);
    }

    fn note_deadline(&mut self, deadline: Option<Instant>) {
        note_deadline(&mut self.next_sweep, deadline);
    }

    /// Closes every connection past its deadline, handles sessions whose
    /// delayed will or expiry is due, and works out the earliest deadline
    /// left. Deadlines only move later as packets arrive, so the minimum
    /// computed here is never later than the true next one: waking then is
    /// never late, at worst a little early.
    fn sweep(&mut self, now: Instant) {
        let timeout = self.limits.connect_timeout;
        let mut expired: Vec<(ConnId, bool)> = Vec::new();
        let mut next: Option<Instant> = None;
        let consider = |d: Instant, next: &mut Option<Instant>| {
            if next.is_none_or(|t| d < t) {
                *next = Some(d);
            }
        };
        let mut unthrottle = Vec::new();
        for (i, slot) in self.conns.iter().enumerate() {
            let Some(c) = slot else { continue };
            if let Some(t) = c.throttled_until {
                if t <= now {
                    unthrottle.push(ConnId(i));
                } else {
                    consider(t, &mut next);
                }
                // Not read while paused: its keepalive counts again from
                // the release.
                continue;
            }
            let Some(d) = c.deadline(timeout) else {
                continue;
            };
            if d <= now {
                expired.push((ConnId(i), c.phase == Phase::AwaitConnect));
            } else {
                consider(d, &mut next);
            }
        }
        let mut wills = Vec::new();
        let mut ended = Vec::new();
        for (key, s) in self.sessions.iter_mut() {
            if let Some(pending) = &s.pending_will {
                let (_, due) = &**pending;
                let due = *due;
                if due <= now {
                    if let Some((w, _)) = s.pending_will.take().map(|b| *b) {
                        wills.push((w, SessionId(key)));
                    }
                } else {
                    consider(due, &mut next);
                }
            }
            if let Some(at) = s.expires_at {
                if at <= now {
                    ended.push(SessionId(key));
                } else {
                    consider(at, &mut next);
                }
            }
        }
        self.next_sweep = next;
        for id in unthrottle {
            self.recheck_throttle(id, now);
        }
        for (id, awaiting_connect) in expired {
            if awaiting_connect {
                log::info!(
                    target: CONNECTION_LOG,
                    "client {} sent no CONNECT in time; closing",
                    self.label(id)
                );
                self.close(id, false, now);
            } else {
                // [MQTT-3.1.2-24]: no packet within 1.5 x keepalive.
                self.note_close_reason("keepalive");
                self.disconnect_with(id, 0x8D, "keep alive timeout", now);
            }
        }
        for (w, sid) in wills {
            self.journal.will_cleared(self.psid(sid));
            self.publish_will(&w, Some(sid), now);
        }
        for sid in ended {
            // 5.0 session expiry [MQTT-3.1.2-23].
            log::info!("session {sid:?} expired");
            self.end_session(sid, now);
        }
    }

    /// A frame could not be decoded: the connection is closed (after a
    /// 5.0 DISCONNECT with the matching reason code) and its will published
    /// [MQTT-4.8.0-1].
    fn decode_error(&mut self, id: ConnId, err: DecodeError, now: Instant) {
        let awaiting_connect = self
            .conn(id)
            .is_some_and(|c| c.phase == Phase::AwaitConnect);
        if let (DecodeError::UnsupportedProtocolVersion(level), true) = (err, awaiting_connect) {
            // [MQTT-3.1.2-2]: CONNACK 0x01 and close.
            log::info!(
                "client {} asked for protocol level {level}; refusing",
                self.label(id)
            );
            let connack = Packet::Connack(codec::Connack {
                session_present: false,
                code: 0x01,
                properties: codec::Properties::EMPTY,
            });
            self.send(id, &connack);
            self.close(id, false, now);
            return;
        }
        // A second CONNECT is a protocol error whatever its level; 0x84 is
        // a CONNACK code, not a DISCONNECT one.
        let reason = match err {
            DecodeError::UnsupportedProtocolVersion(_) => 0x82,
            other => other.reason_code(),
        };
        let close = Close {
            code: Some(reason),
            why: format!("bad packet ({err})").into(),
        };
        self.apply_close(id, close, now);
    }

    /// Closes for a protocol violation found after decoding.
    fn protocol_violation(&mut self, id: ConnId, what: &str, now: Instant) {
        self.apply_close(id, Close::protocol(what), now);
    }

    /// Ends connection `id` as a handler asked (see [`Close`]).
    fn apply_close(&mut self, id: ConnId, close: Close, now: Instant) {
        match close.code {
            Some(code) => self.disconnect_with(id, code, &close.why, now),
            None => self.close_quietly(id, &close.why, now),
        }
    }

    /// One decoded packet of connection `id`: handled, and the connection
    /// closed here if its handler says so.
    fn handle_packet(&mut self, id: ConnId, packet: Packet<'_>, now: Instant) -> Input {
        match self.dispatch(id, packet, now) {
            Ok(input) => input,
            Err(close) => {
                self.apply_close(id, close, now);
                Input::Taken
            }
        }
    }

    /// Hands one decoded packet of connection `id` to its handler, if the
    /// connection's phase allows it.
    fn dispatch(&mut self, id: ConnId, packet: Packet<'_>, now: Instant) -> Result<Input, Close> {
        let Some(phase) = self.conn(id).map(|c| c.phase) else {
            return Ok(Input::Taken);
        };
        let sid = match (phase, &packet) {
            (Phase::AwaitConnect, Packet::Connect(_)) => None,
            // [MQTT-3.1.0-1]: the first packet must be CONNECT.
            (Phase::AwaitConnect, _) => return Err(Close::protocol("first packet is not CONNECT")),
            // [MQTT-3.1.0-2]: a second CONNECT is a protocol violation.
            (Phase::Connected(_), Packet::Connect(_)) => {
                return Err(Close::protocol("second CONNECT"));
            }
            (Phase::Connected(sid), _) => Some(sid),
            (Phase::Closing, _) => return Ok(Input::Taken),
        };
        match (packet, sid) {
            (Packet::Publish(p), Some(sid)) => return self.handle_publish(id, sid, p, now),
            (Packet::Subscribe(s), Some(sid)) => return self.handle_subscribe(id, sid, s, now),
            (Packet::Connect(c), _) => return Ok(self.handle_connect(id, c, now)),
            (Packet::PubResp(r), Some(sid)) => self.handle_pubresp(id, sid, r, now)?,
            (Packet::Unsubscribe(u), Some(sid)) => self.handle_unsubscribe(id, sid, u)?,
            (Packet::PingReq, Some(_)) => self.send(id, &Packet::PingResp),
            (Packet::Disconnect(d), Some(_)) => self.handle_disconnect(id, d, now),
            (Packet::Auth(_), Some(_)) => self.handle_auth(id, now),
            (_, _) => return Err(Close::protocol("a packet only a server may send")),
        }
        Ok(Input::Taken)
    }

    /// Client ids the broker assigns to clients that sent an empty one.
    /// A client id for a client that sent none: `auto_id_prefix` (`auto-`
    /// by default) and a random
    /// UUID-shaped string, as Mosquitto assigns them. Random (from the
    /// process's randomly keyed hasher), so another client cannot guess it
    /// and take the session over.
    fn assign_client_id(&mut self, prefix: &str) -> String {
        use std::hash::{BuildHasher, Hasher};
        loop {
            self.next_auto_id += 1;
            let word = |salt: u64| {
                let mut h = self.id_keys.build_hasher();
                h.write_u64(self.next_auto_id);
                h.write_u64(salt);
                h.finish()
            };
            let (a, b) = (word(1), word(2));
            let id = format!(
                "{}{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                prefix,
                a >> 32,
                (a >> 16) & 0xFFFF,
                a & 0xFFFF,
                b >> 48,
                b & 0xFFFF_FFFF_FFFF
            );
            if !self.by_client_id.contains(id.as_str(), &self.sessions) {
                return id;
            }
        }
    }
}

/// What [`screen`] says about the next packet of a connected client.
#[derive(Debug, PartialEq, Eq)]
enum Screen {
    /// Decode it.
    Pass,
    /// Its second byte is needed first.
    NeedMore,
    /// A packet only a server sends (or AUTH, which boxmq never asks for):
    /// a protocol error whatever its flags and length, as Mosquitto
    /// judges it by type first.
    Refuse(&'static str),
    /// Closed without a DISCONNECT, as Mosquitto does: PINGREQ or PINGRESP
    /// with a body, a second CONNECT, a CONNACK with reserved flags.
    Close(&'static str),
}

/// Judges the next packet of a connected client by its first bytes, before
/// it is decoded, so the answer is the one Mosquitto gives.
fn screen(rest: &[u8]) -> Screen {
    use codec::packet_type as t;
    let Some(&first) = rest.first() else {
        return Screen::Pass;
    };
    if first == 0xC0 || first == 0xD0 {
        return match rest.get(1) {
            None => Screen::NeedMore,
            Some(0) if first == 0xC0 => Screen::Pass,
            Some(0) => Screen::Refuse("PINGRESP from a client"),
            Some(_) => Screen::Close("PINGREQ or PINGRESP with a body"),
        };
    }
    match first >> 4 {
        0 => Screen::Refuse("reserved packet type 0"),
        // [MQTT-3.1.0-2]: a second CONNECT is a protocol error; Mosquitto
        // 2.0.11 closes without a DISCONNECT (its 01-connect-duplicate).
        t::CONNECT => Screen::Close("second CONNECT"),
        // Mosquitto 2.0.11 closes at once for a CONNACK with reserved flags
        // (its 01-connect-connack-2163; 2.0.20 answers 0x82 instead).
        t::CONNACK if first & 0x0F != 0 => Screen::Close("CONNACK from a client"),
        t::CONNACK => Screen::Refuse("CONNACK from a client"),
        // SUBACK and UNSUBACK with bad flags are malformed first: the
        // decoder says so (Mosquitto's order).
        t::SUBACK if first & 0x0F == 0 => Screen::Refuse("SUBACK from a client"),
        t::UNSUBACK if first & 0x0F == 0 => Screen::Refuse("UNSUBACK from a client"),
        t::PINGRESP => Screen::Refuse("PINGRESP from a client"),
        t::AUTH => Screen::Refuse("AUTH without an authentication method"),
        _ => Screen::Pass,
    }
}
