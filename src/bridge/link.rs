//! The bridge state machine (sans-IO): one remote connection's life and the
//! two flows across it. See the module documentation of [`super`].

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::{BridgeConfig, BridgeStats, QueueFull, RemoteProtocol, StartType};
use crate::codec::{
    self, Connect, Packet, PacketId, Properties, PropertiesBuf, Property, ProtocolVersion, PubResp,
    PubRespKind, Publish, QoS, SubOptions, Will,
};
use crate::core::adapter::{self, Frame, ack, feed_frame};
use crate::core::{ConnId, Core, QueuePolicy};

/// Longest wait for the TCP connection and then for CONNACK.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failover, how long the bridge stays on a secondary address
/// before trying the primary again (doubled after each failed return, up
/// to `PRIMARY_HOLD_DOWN_MAX`).
pub(crate) const PRIMARY_HOLD_DOWN: Duration = Duration::from_secs(60);
const PRIMARY_HOLD_DOWN_MAX: Duration = Duration::from_secs(3600);
/// Bytes for the remote past which the core's output is left in the core
/// (QoS 1/2 stay queued there) until the socket takes them.
pub(crate) const OUT_HIGH_WATER: usize = 256 * 1024;
/// How often the figures under `$SYS/broker/connection/<name>/` are
/// published (when they changed).
const FIGURES_EVERY: Duration = Duration::from_secs(5);
/// Protocol level of a 3.1.1 CONNECT announcing a bridge (Mosquitto's
/// `try_private`).
const PRIVATE_LEVEL: u8 = 0x80 | 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No connection; the next attempt is due at `retry_at`.
    Idle { retry_at: Instant },
    /// TCP connection under way.
    Connecting { deadline: Instant },
    /// CONNECT sent.
    AwaitConnack { deadline: Instant },
    /// CONNACK received.
    Up,
    /// A lazy bridge without a connection: it starts one when `threshold`
    /// messages wait for the remote.
    Dormant,
    /// A `start_type once` bridge whose connection ended or failed: no
    /// new attempt.
    Stopped,
}

impl State {
    /// Whether a remote connection exists or is being made.
    fn has_socket(self) -> bool {
        matches!(
            self,
            State::Connecting { .. } | State::AwaitConnack { .. } | State::Up
        )
    }
}

/// A message forwarded to the remote and not yet acknowledged by it.
#[derive(Clone, Copy, Debug)]
struct Outbound {
    /// The core's packet id, or `None` for the bridge's own notification.
    local: Option<PacketId>,
    /// QoS the core sent it with.
    local_qos: QoS,
    /// QoS it went to the remote with.
    remote_qos: QoS,
}

/// What the event loop is to do for a bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Open a TCP connection to this address.
    Connect(String),
}

/// One bridge: its configuration, its local (core) connection and its
/// remote connection's protocol state.
pub(crate) struct Link {
    cfg: BridgeConfig,
    local: ConnId,
    local_client_id: String,
    local_open: bool,
    state: State,
    /// Bytes for the remote socket.
    pub out: Vec<u8>,
    /// The event loop is to drop the remote socket (after writing `out`).
    drop_socket: bool,
    /// Index in `cfg.addresses` of the address in use or next tried.
    addr: usize,
    /// Failed attempts since the last CONNACK.
    attempts: u32,
    /// A plain 3.1.1 CONNECT succeeded after a private one was closed
    /// before CONNACK: plain 3.1.1 from now on.
    private_refused: bool,
    /// The last private CONNECT was closed before CONNACK: the next
    /// attempt is plain. (An outage looks the same, so one failure alone
    /// does not settle it.)
    private_suspect: bool,
    /// This attempt's CONNECT used the private level.
    private_attempt: bool,
    /// A lazy bridge's local session has been made (on the first tick,
    /// once the store is restored).
    primed: bool,
    /// When a bridge on a secondary address tries the primary again.
    primary_retry: Option<Instant>,
    primary_hold: Duration,
    last_rx: Instant,
    last_tx: Instant,
    /// The last message to or from the remote, or acknowledgement of
    /// one (lazy bridges' idle timeout).
    last_msg: Instant,
    keepalive: Duration,
    next_remote_pid: u16,
    suback_pid: Option<u16>,
    remote_inflight: HashMap<u16, Outbound>,
    /// Remote QoS 2 messages published here whose PUBREL has not come.
    inbound_qos2: HashSet<u16>,
    /// From the remote's CONNACK (5.0).
    remote_max_qos: QoS,
    remote_receive_max: u16,
    remote_max_packet: u32,
    qos_lowered_logged: bool,
    next_local_pid: u16,
    next_figures: Option<Instant>,
    figures_sent: HashMap<&'static str, String>,
    stats: BridgeStats,
    buf: Vec<u8>,
    props: PropertiesBuf,
}

fn version(p: RemoteProtocol) -> ProtocolVersion {
    match p {
        RemoteProtocol::V311 => ProtocolVersion::V311,
        RemoteProtocol::V5 => ProtocolVersion::V5,
    }
}

/// A random fraction in [0, 1), for jitter.
fn jitter() -> f64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

impl Link {
    /// A bridge whose local side will use connection id `local`. Its
    /// session gets the bridge's queue bound and policy; the local state
    /// notification says "0"; the first attempt is due at once.
    pub(crate) fn new(cfg: BridgeConfig, local: ConnId, core: &mut Core, now: Instant) -> Link {
        let local_client_id = cfg.local_client_id();
        core.set_queue_policy(
            &local_client_id,
            QueuePolicy {
                max_messages: cfg.max_queued_messages,
                max_bytes: cfg.max_queued_bytes,
                drop_oldest: cfg.queue_full == QueueFull::DropOldest,
                never_throttle: true,
                keep_qos0: cfg.queue_qos0,
            },
        );
        let lazy = cfg.start_type == StartType::Lazy;
        let stats = BridgeStats {
            name: cfg.name.clone(),
            // A lazy bridge is down by choice until its threshold.
            down_since: (!lazy).then_some(now),
            ..BridgeStats::default()
        };
        let mut link = Link {
            local,
            local_client_id,
            local_open: false,
            state: if lazy {
                State::Dormant
            } else {
                State::Idle { retry_at: now }
            },
            out: Vec::new(),
            drop_socket: false,
            addr: 0,
            attempts: 0,
            private_refused: false,
            private_suspect: false,
            private_attempt: false,
            primed: false,
            primary_retry: None,
            primary_hold: PRIMARY_HOLD_DOWN,
            last_rx: now,
            last_tx: now,
            last_msg: now,
            keepalive: Duration::from_secs(u64::from(cfg.keepalive)),
            next_remote_pid: 0,
            suback_pid: None,
            remote_inflight: HashMap::new(),
            inbound_qos2: HashSet::new(),
            remote_max_qos: QoS::ExactlyOnce,
            remote_receive_max: u16::MAX,
            remote_max_packet: u32::MAX,
            qos_lowered_logged: false,
            next_local_pid: 0,
            next_figures: None,
            figures_sent: HashMap::new(),
            stats,
            buf: Vec::new(),
            props: PropertiesBuf::new(),
            cfg,
        };
        link.local_state(core, false, now);
        link
    }

    /// The bridge's name.
    pub(crate) fn name(&self) -> &str {
        &self.cfg.name
    }

    /// `bridge_bind_address`.
    pub(crate) fn bind_address(&self) -> Option<std::net::IpAddr> {
        self.cfg.bind_address
    }

    /// The core connection id of the local side.
    pub(crate) fn local_id(&self) -> ConnId {
        self.local
    }

    fn remote_version(&self) -> ProtocolVersion {
        version(self.cfg.protocol)
    }

    /// Whether the loop is to drop the remote socket now (after writing
    /// what `out` holds, as far as it goes). Clears the request.
    pub(crate) fn take_drop_request(&mut self) -> bool {
        std::mem::take(&mut self.drop_socket)
    }

    /// Whether the remote may be read now: not while the core does not
    /// take input from the local side or the remote does not read what it
    /// is sent.
    pub(crate) fn wants_remote_input(&self, core: &Core) -> bool {
        self.out.len() < OUT_HIGH_WATER && (!self.local_open || core.wants_input(self.local))
    }

    /// When [`Link::tick`] next has work to do.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let state = match self.state {
            // A dormant bridge looks at its queue on every tick.
            State::Dormant | State::Stopped => None,
            State::Idle { retry_at } => Some(retry_at),
            State::Connecting { deadline } | State::AwaitConnack { deadline } => Some(deadline),
            State::Up => {
                let mut d = self.last_tx + self.keepalive;
                if self.keepalive.is_zero() {
                    d = self.last_rx + PRIMARY_HOLD_DOWN_MAX;
                }
                let dead = self.last_rx + self.keepalive + self.keepalive / 2;
                let mut d = d.min(dead.max(self.last_rx + Duration::from_secs(1)));
                if let Some(idle) = self.idle_deadline() {
                    d = d.min(idle);
                }
                Some(match self.primary_retry {
                    Some(p) => d.min(p),
                    None => d,
                })
            }
        };
        match (state, self.next_figures) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When a lazy bridge that is up becomes idle: `idle_timeout` after
    /// the last message, once nothing waits for an acknowledgement.
    fn idle_deadline(&self) -> Option<Instant> {
        (self.cfg.start_type == StartType::Lazy
            && self.state == State::Up
            && self.remote_inflight.is_empty())
        .then(|| self.last_msg + self.cfg.idle_timeout)
    }

    /// Messages waiting for the remote: queued and in flight in the
    /// bridge's session.
    fn waiting(&self, core: &Core) -> usize {
        core.session_figures(&self.local_client_id)
            .map_or(0, |f| f.queued + f.inflight)
    }

    /// A lazy bridge's threshold is reached.
    fn lazy_due(&self, core: &Core) -> bool {
        self.waiting(core) >= self.cfg.threshold.max(1)
    }

    /// Time has reached `now`: starts a connection attempt when one is due
    /// (returned for the loop to carry out), gives up on one that took too
    /// long, keeps the connection alive and publishes the figures. The
    /// loop calls it on every turn, which is when a dormant lazy bridge
    /// looks at its queue.
    pub(crate) fn tick(&mut self, core: &mut Core, now: Instant) -> Option<Action> {
        if self.next_figures.is_none_or(|t| t <= now) {
            self.next_figures = Some(now + FIGURES_EVERY);
            self.publish_figures(core, now);
        }
        let lazy = self.cfg.start_type == StartType::Lazy;
        if lazy && !self.primed {
            // The local session and its subscriptions exist from the
            // start, so that messages for the remote are kept (and
            // counted against the threshold) before the first
            // connection. Not before the first tick: the store restores
            // the session, if it has one, before the loop runs.
            // The local side stays open until the core's SUBACK (with
            // persistence the core answers once the session is durable).
            self.primed = true;
            self.local_connect(core, now);
        }
        match self.state {
            State::Dormant if self.lazy_due(core) => {
                log::info!(
                    "bridge {}: {} messages wait for the remote (threshold {}); connecting",
                    self.cfg.name,
                    self.waiting(core),
                    self.cfg.threshold
                );
                if self.stats.down_since.is_none() {
                    self.stats.down_since = Some(now);
                }
                self.state = State::Idle { retry_at: now };
                return self.tick(core, now);
            }
            State::Dormant | State::Stopped => {}
            State::Idle { retry_at } if retry_at <= now && lazy && !self.lazy_due(core) => {
                // After a failure, a lazy bridge tries again only while
                // enough messages wait; until then it is down by choice
                // (`last_error` still says what happened).
                self.state = State::Dormant;
                self.stats.down_since = None;
            }
            State::Idle { retry_at } if retry_at <= now => {
                let addr = self.cfg.addresses.get(self.addr).cloned()?;
                self.stats.address = Some(addr.clone());
                self.state = State::Connecting {
                    deadline: now + CONNECT_TIMEOUT,
                };
                log::info!("bridge {}: connecting to {addr}", self.cfg.name);
                return Some(Action::Connect(addr));
            }
            State::Idle { .. } => {}
            State::Connecting { deadline } | State::AwaitConnack { deadline } => {
                if deadline <= now {
                    self.fail(core, now, "connection timed out");
                }
            }
            State::Up => {
                let ka = self.keepalive;
                if !ka.is_zero() && now.saturating_duration_since(self.last_rx) >= ka + ka / 2 {
                    self.fail(core, now, "remote keepalive timeout");
                    return None;
                }
                if self.idle_deadline().is_some_and(|t| t <= now) {
                    log::info!(
                        "bridge {}: no message for {} s (idle_timeout); disconnecting until {} wait",
                        self.cfg.name,
                        self.cfg.idle_timeout.as_secs(),
                        self.cfg.threshold
                    );
                    // A clean DISCONNECT does not fire the will: the
                    // remote's state says "0" by this message instead.
                    self.send_remote_state_down(now);
                    self.send_disconnect(now);
                    self.down(core, now, "idle");
                    self.stats.last_error = None;
                    self.stats.down_since = None;
                    self.state = State::Dormant;
                    self.drop_socket = true;
                    return None;
                }
                if !ka.is_zero() && now.saturating_duration_since(self.last_tx) >= ka {
                    self.send(|out, v| Packet::PingReq.encode(v, out), now);
                }
                if self.primary_retry.is_some_and(|t| t <= now) {
                    log::info!(
                        "bridge {}: trying the primary address {} again",
                        self.cfg.name,
                        self.cfg.addresses.first().map_or("?", String::as_str)
                    );
                    self.primary_retry = None;
                    // A clean DISCONNECT fires no will: "0" says it instead.
                    self.send_remote_state_down(now);
                    self.send_disconnect(now);
                    self.down(core, now, "returning to the primary address");
                    self.addr = 0;
                    self.state = State::Idle { retry_at: now };
                    self.drop_socket = true;
                }
            }
        }
        None
    }

    /// Appends the state notification "0" (retained, QoS 0) for the
    /// remote, where the will would have said it.
    fn send_remote_state_down(&mut self, now: Instant) {
        if !self.cfg.notifications {
            return;
        }
        let topic = self.cfg.state_topic();
        let p = Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: self.cfg.outgoing_retain,
            topic: &topic,
            packet_id: None,
            properties: Properties::EMPTY,
            payload: b"0",
        };
        self.send(|out, v| p.encode(v, out), now);
    }

    /// Appends a DISCONNECT (normal) for the remote.
    fn send_disconnect(&mut self, now: Instant) {
        self.send(
            |out, v| {
                Packet::Disconnect(codec::Disconnect {
                    reason: 0,
                    properties: Properties::EMPTY,
                })
                .encode(v, out)
            },
            now,
        );
    }

    /// The TCP connection to the remote is established: CONNECT goes out.
    pub(crate) fn tcp_connected(&mut self, now: Instant) {
        self.out.clear();
        self.private_attempt = self.cfg.protocol == RemoteProtocol::V311
            && self.cfg.try_private
            && !self.private_refused
            && !self.private_suspect;
        let v = self.remote_version();
        let client_id = self.cfg.remote_client_id();
        let state_topic = self.cfg.state_topic();
        let will = self.cfg.notifications.then(|| Will {
            topic: &state_topic,
            payload: b"0",
            qos: QoS::AtLeastOnce,
            retain: self.cfg.outgoing_retain,
            properties: Properties::EMPTY,
        });
        self.props.clear();
        if v.is_v5() && !self.cfg.cleansession {
            // The remote keeps the session as long as it can.
            self.props.push(&Property::SessionExpiryInterval(u32::MAX));
        }
        let connect = Packet::Connect(Connect {
            protocol: v,
            clean_start: self.cfg.cleansession,
            keep_alive: self.cfg.keepalive,
            properties: self.props.as_properties(),
            client_id: &client_id,
            will,
            username: self.cfg.remote_username.as_deref(),
            password: self.cfg.remote_password.as_deref().map(str::as_bytes),
        });
        let start = self.out.len();
        connect.encode(v, &mut self.out);
        if self.private_attempt {
            mark_private(&mut self.out[start..]);
        }
        self.last_tx = now;
        self.last_rx = now;
        self.state = State::AwaitConnack {
            deadline: now + CONNECT_TIMEOUT,
        };
    }

    /// The remote connection failed or was closed by the peer or the
    /// network.
    pub(crate) fn remote_closed(&mut self, core: &mut Core, now: Instant, why: &str) {
        if self.state.has_socket() {
            self.fail(core, now, why);
        }
        self.drop_socket = false;
    }

    /// The transport under MQTT failed (a TLS alert or error): unlike a
    /// close before CONNACK, this says nothing about the private protocol
    /// level, so the next attempt waits for the usual backoff.
    pub(crate) fn transport_failed(&mut self, core: &mut Core, now: Instant, why: &str) {
        self.private_attempt = false;
        self.remote_closed(core, now, why);
    }

    /// Ends the remote connection for `why` and schedules the next attempt.
    fn fail(&mut self, core: &mut Core, now: Instant, why: &str) {
        if matches!(self.state, State::AwaitConnack { .. }) && self.private_attempt {
            // Some brokers close on the private protocol level: plain
            // 3.1.1 from now on, at once.
            log::warn!(
                "bridge {}: the remote closed before CONNACK ({why}); retrying without try_private",
                self.cfg.name
            );
            self.private_suspect = true;
            self.down(core, now, why);
            self.state = State::Idle { retry_at: now };
            return;
        }
        // The plain attempt failed too: the remote is not reachable, which
        // says nothing about the private level; try it again next time.
        self.private_suspect = false;
        log::warn!("bridge {}: {why}", self.cfg.name);
        self.down(core, now, why);
        if self.cfg.start_type == StartType::Once {
            log::warn!(
                "bridge {}: start_type once: no new connection attempt",
                self.cfg.name
            );
            self.state = State::Stopped;
            return;
        }
        let delay = self.backoff();
        self.attempts = self.attempts.saturating_add(1);
        if self.cfg.addresses.len() > 1 {
            self.addr = (self.addr + 1) % self.cfg.addresses.len();
        }
        self.state = State::Idle {
            retry_at: now + delay,
        };
    }

    /// The delay before the next attempt.
    fn backoff(&self) -> Duration {
        let rt = self.cfg.restart_timeout;
        let Some(cap) = rt.cap else {
            return rt.base;
        };
        let factor = 2u32.saturating_pow(self.attempts.min(16));
        let d = rt.base.saturating_mul(factor).min(cap).max(rt.base);
        // Full jitter over the upper half, never below `base`.
        let lo = (d / 2).max(rt.base.min(d));
        lo + (d - lo).mul_f64(jitter())
    }

    /// Leaves the connected state: the local side goes offline (its
    /// session keeps what the remote did not acknowledge), the state
    /// notification says "0".
    fn down(&mut self, core: &mut Core, now: Instant, why: &str) {
        let was_up = self.state == State::Up;
        self.stats.last_error = Some(why.to_owned());
        self.stats.connected = false;
        if was_up {
            self.stats.down_since = Some(now);
        }
        self.remote_inflight.clear();
        self.suback_pid = None;
        self.drop_socket = true;
        core.release_remote_frame(self.local);
        if !self.cfg.cleansession {
            // The remote resends PUBREL for these; forgetting them could
            // publish a resent PUBLISH twice.
        } else {
            self.inbound_qos2.clear();
        }
        self.local_disconnect(core, now);
        if was_up {
            self.local_state(core, false, now);
            self.publish_figures(core, now);
        }
        self.state = State::Idle { retry_at: now };
    }

    fn local_state(&mut self, core: &mut Core, up: bool, now: Instant) {
        if !self.cfg.notifications {
            return;
        }
        let topic = self.cfg.state_topic();
        let payload: &[u8] = if up { b"1" } else { b"0" };
        if !core.publish_connection_state(&topic, payload, now) {
            log::debug!(
                "bridge {}: notification topic '{topic}' is not under $SYS/broker/connection/; not published here",
                self.cfg.name
            );
        }
    }

    /// Publishes the figures that changed under
    /// `$SYS/broker/connection/<name>/`.
    fn publish_figures(&mut self, core: &mut Core, now: Instant) {
        if !self.cfg.notifications {
            return;
        }
        let s = self.stats(core);
        let figures: [(&'static str, String); 7] = [
            ("connected", u8::from(s.connected).to_string()),
            ("queued/messages", s.queued.to_string()),
            ("queued/bytes", s.queued_bytes.to_string()),
            ("inflight", s.inflight.to_string()),
            ("dropped", s.dropped.to_string()),
            ("forwarded", s.forwarded.to_string()),
            ("received", s.received.to_string()),
        ];
        for (name, value) in figures {
            if self.figures_sent.get(name) == Some(&value) {
                continue;
            }
            let topic = format!("$SYS/broker/connection/{}/{name}", self.cfg.name);
            core.publish_connection_state(&topic, value.as_bytes(), now);
            self.figures_sent.insert(name, value);
        }
    }

    /// The bridge's figures as of now.
    pub(crate) fn stats(&self, core: &Core) -> BridgeStats {
        let mut s = self.stats.clone();
        if let Some(f) = core.session_figures(&self.local_client_id) {
            s.queued = f.queued;
            s.queued_bytes = f.queued_bytes;
            s.inflight = f.inflight;
            s.dropped = f.dropped;
        }
        s
    }

    // ----- remote side -----

    /// Appends a packet for the remote.
    fn send(&mut self, encode: impl FnOnce(&mut Vec<u8>, ProtocolVersion), now: Instant) {
        let v = self.remote_version();
        encode(&mut self.out, v);
        self.last_tx = now;
    }

    fn send_remote_ack(&mut self, kind: PubRespKind, pid: PacketId, now: Instant) {
        self.send(
            |out, v| {
                Packet::PubResp(PubResp {
                    kind,
                    packet_id: pid,
                    reason: 0,
                    properties: Properties::EMPTY,
                })
                .encode(v, out)
            },
            now,
        );
    }

    /// A packet id free on the remote connection.
    fn remote_pid(&mut self) -> Option<PacketId> {
        for _ in 0..=u16::MAX {
            self.next_remote_pid = self.next_remote_pid.wrapping_add(1).max(1);
            let p = self.next_remote_pid;
            if !self.remote_inflight.contains_key(&p) && self.suback_pid != Some(p) {
                return PacketId::new(p);
            }
        }
        None
    }

    /// Bytes from the remote. Returns how many were used (whole frames);
    /// the rest is to be given again with more. After a protocol error the
    /// connection is dropped (see [`Link::take_drop_request`]) and
    /// everything counts as used.
    pub(crate) fn remote_data(&mut self, core: &mut Core, data: &[u8], now: Instant) -> usize {
        let v = self.remote_version();
        let max = core.limits().max_packet_size as usize;
        let mut used = 0;
        loop {
            if !matches!(self.state, State::AwaitConnack { .. } | State::Up) {
                return data.len();
            }
            if !self.wants_remote_input(core) {
                return used;
            }
            let rest = data.get(used..).unwrap_or_default();
            match codec::decode(rest, v, max) {
                Ok(None) => {
                    // Its size counts in the memory budget once the fixed
                    // header is in, as a client's does.
                    let Ok(Some(size)) = codec::frame_len(rest, usize::MAX) else {
                        return used;
                    };
                    if core.admit_remote_frame(self.local, size) {
                        return used;
                    }
                    let why = format!(
                        "a {size}-byte packet from the remote does not fit in the memory budget \
                         (memory_limit)"
                    );
                    self.fail(core, now, &why);
                    return data.len();
                }
                Ok(Some((packet, n))) => {
                    core.release_remote_frame(self.local);
                    used += n;
                    self.last_rx = now;
                    self.remote_packet(core, packet, now);
                }
                Err(e) => {
                    self.fail(core, now, &format!("bad packet from the remote: {e}"));
                    return data.len();
                }
            }
        }
    }

    fn remote_packet(&mut self, core: &mut Core, packet: Packet<'_>, now: Instant) {
        match (self.state, packet) {
            (State::AwaitConnack { .. }, Packet::Connack(c)) => self.connack(core, &c, now),
            (State::AwaitConnack { .. }, _) => {
                self.fail(core, now, "the remote sent something other than CONNACK");
            }
            (State::Up, Packet::Publish(p)) => self.inbound(core, &p, now),
            (State::Up, Packet::PubResp(r)) => self.remote_ack(core, &r, now),
            (State::Up, Packet::Suback(s)) => {
                if self.suback_pid == Some(s.packet_id.get()) {
                    self.suback_pid = None;
                    self.check_grants(s.codes);
                }
            }
            (State::Up, Packet::PingResp | Packet::Unsuback(_)) => {}
            (State::Up, Packet::Disconnect(d)) => {
                let why = format!("the remote disconnected (reason 0x{:02x})", d.reason);
                self.fail(core, now, &why);
            }
            (State::Up, _) => self.fail(core, now, "unexpected packet from the remote"),
            (
                State::Idle { .. } | State::Connecting { .. } | State::Dormant | State::Stopped,
                _,
            ) => {}
        }
    }

    fn connack(&mut self, core: &mut Core, c: &codec::Connack<'_>, now: Instant) {
        if c.code != 0 {
            if self.private_attempt && c.code == 0x01 {
                // "Unacceptable protocol version": the level 0x84.
                self.fail(core, now, "the remote refused the bridge protocol level");
                return;
            }
            let why = format!("the remote refused the connection (code 0x{:02x})", c.code);
            self.fail(core, now, &why);
            return;
        }
        if self.private_suspect {
            log::info!(
                "bridge {}: the remote takes plain 3.1.1 but not the bridge level; try_private is off for this connection",
                self.cfg.name
            );
            self.private_refused = true;
            self.private_suspect = false;
        }
        self.state = State::Up;
        self.last_msg = now;
        self.attempts = 0;
        self.stats.connects += 1;
        self.stats.connected = true;
        self.stats.down_since = None;
        self.stats.last_error = None;
        self.remote_max_qos = QoS::ExactlyOnce;
        self.remote_receive_max = u16::MAX;
        // `bridge_max_packet_size`, or the remote's own if smaller.
        self.remote_max_packet = self.cfg.max_packet_size.unwrap_or(u32::MAX);
        for p in c.properties.iter() {
            match p {
                Property::MaximumQoS(q) => {
                    self.remote_max_qos = QoS::from_u8(q).unwrap_or(QoS::AtMostOnce);
                }
                Property::ReceiveMaximum(r) => self.remote_receive_max = r.max(1),
                Property::MaximumPacketSize(m) => {
                    self.remote_max_packet = self.remote_max_packet.min(m);
                }
                Property::ServerKeepAlive(k) => {
                    self.keepalive = Duration::from_secs(u64::from(k));
                }
                _ => {}
            }
        }
        log::info!(
            "bridge {}: connected to {}{}",
            self.cfg.name,
            self.stats.address.as_deref().unwrap_or("?"),
            if self.private_attempt {
                " (as a bridge)"
            } else {
                ""
            }
        );
        if self.cfg.start_type == StartType::Once {
            // Going back to the primary would end the one connection.
        } else if self.addr != 0 && !self.cfg.round_robin {
            self.primary_retry = Some(now + self.primary_hold);
            self.primary_hold = (self.primary_hold * 2).min(PRIMARY_HOLD_DOWN_MAX);
        } else if self.addr == 0 {
            self.primary_retry = None;
            self.primary_hold = PRIMARY_HOLD_DOWN;
        }
        self.subscribe_remote(now);
        if self.cfg.notifications {
            let topic = self.cfg.state_topic();
            if let Some(pid) = self.remote_pid() {
                self.remote_inflight.insert(
                    pid.get(),
                    Outbound {
                        local: None,
                        local_qos: QoS::AtLeastOnce,
                        remote_qos: QoS::AtLeastOnce,
                    },
                );
                let p = Publish {
                    dup: false,
                    qos: QoS::AtLeastOnce,
                    retain: self.cfg.outgoing_retain,
                    topic: &topic,
                    packet_id: Some(pid),
                    properties: Properties::EMPTY,
                    payload: b"1",
                };
                self.send(|out, v| p.encode(v, out), now);
            }
        }
        self.local_state(core, true, now);
        if self.local_open {
            // Still priming (see `tick`): connect again, so that the core
            // resends what it gave the bridge meanwhile.
            self.local_disconnect(core, now);
        }
        self.local_connect(core, now);
        self.publish_figures(core, now);
    }

    fn subscribe_remote(&mut self, now: Instant) {
        let v5 = self.cfg.protocol == RemoteProtocol::V5;
        let filters: Vec<(String, SubOptions)> = self
            .cfg
            .topics
            .iter()
            .filter(|t| t.direction.incoming())
            .map(|t| {
                let mut o = SubOptions::qos_only(t.qos);
                if v5 {
                    // Loop prevention on a 5.0 remote.
                    o.no_local = true;
                    o.retain_as_published = true;
                }
                (t.remote_filter(), o)
            })
            .collect();
        if filters.is_empty() {
            return;
        }
        let Some(pid) = self.remote_pid() else {
            return;
        };
        self.suback_pid = Some(pid.get());
        let refs: Vec<(&str, SubOptions)> = filters.iter().map(|(f, o)| (f.as_str(), *o)).collect();
        self.send(
            |out, v| codec::encode_subscribe(pid, Properties::EMPTY, &refs, v, out),
            now,
        );
    }

    /// Compares the remote's SUBACK with what was asked.
    fn check_grants(&self, codes: &[u8]) {
        let asked = self.cfg.topics.iter().filter(|t| t.direction.incoming());
        for (t, &code) in asked.zip(codes) {
            let filter = t.remote_filter();
            if code >= 0x80 {
                log::warn!(
                    "bridge {}: the remote refused the subscription to '{filter}' (code 0x{code:02x})",
                    self.cfg.name
                );
            } else if code < t.qos as u8 {
                log::warn!(
                    "bridge {}: the remote lowered '{filter}' from QoS {} to QoS {code}",
                    self.cfg.name,
                    t.qos as u8
                );
            }
        }
    }

    /// A PUBLISH from the remote: published here, then acknowledged.
    fn inbound(&mut self, core: &mut Core, p: &Publish<'_>, now: Instant) {
        self.last_msg = now;
        let rule = self
            .cfg
            .topics
            .iter()
            .find_map(|r| r.to_local(p.topic).map(|t| (t, r.qos)));
        if p.qos == QoS::ExactlyOnce {
            if let Some(pid) = p.packet_id {
                if self.inbound_qos2.contains(&pid.get()) {
                    // A resend of one published already.
                    self.send_remote_ack(PubRespKind::PubRec, pid, now);
                    return;
                }
            }
        }
        match rule {
            Some((topic, rule_qos)) if self.local_open => {
                let qos = p.qos.min(rule_qos);
                let packet_id = if qos == QoS::AtMostOnce {
                    None
                } else {
                    self.next_local_pid = self.next_local_pid.wrapping_add(1).max(1);
                    PacketId::new(self.next_local_pid)
                };
                self.props.clear();
                for prop in p.properties.iter() {
                    match prop {
                        Property::TopicAlias(_) | Property::SubscriptionIdentifier(_) => {}
                        other => self.props.push(&other),
                    }
                }
                let props = std::mem::take(&mut self.props);
                let local = Publish {
                    dup: false,
                    qos,
                    retain: p.retain,
                    topic: &topic,
                    packet_id,
                    properties: props.as_properties(),
                    payload: p.payload,
                };
                self.feed(core, now, |out| local.encode(ProtocolVersion::V5, out));
                self.props = props;
                self.stats.received += 1;
            }
            Some(_) => {
                // Cannot happen: the local side is open while the remote
                // one is up. Not acknowledged, so the remote sends it again.
                log::warn!(
                    "bridge {}: message on '{}' from the remote while the local side is closed",
                    self.cfg.name,
                    p.topic
                );
                return;
            }
            None => {
                log::debug!(
                    "bridge {}: message on '{}' from the remote matches no 'in' topic; dropped",
                    self.cfg.name,
                    p.topic
                );
            }
        }
        match (p.qos, p.packet_id) {
            (QoS::AtLeastOnce, Some(pid)) => self.send_remote_ack(PubRespKind::PubAck, pid, now),
            (QoS::ExactlyOnce, Some(pid)) => {
                self.inbound_qos2.insert(pid.get());
                self.send_remote_ack(PubRespKind::PubRec, pid, now);
            }
            _ => {}
        }
    }

    /// PUBACK, PUBREC, PUBREL or PUBCOMP from the remote.
    fn remote_ack(&mut self, core: &mut Core, r: &PubResp<'_>, now: Instant) {
        self.last_msg = now;
        let pid = r.packet_id.get();
        match r.kind {
            PubRespKind::PubAck | PubRespKind::PubComp => {
                let done = self.remote_inflight.get(&pid).is_some_and(|o| {
                    (r.kind == PubRespKind::PubAck) == (o.remote_qos == QoS::AtLeastOnce)
                });
                if !done {
                    log::debug!(
                        "bridge {}: {:?} for unknown packet id {pid} from the remote",
                        self.cfg.name,
                        r.kind
                    );
                }
                if done {
                    if let Some(o) = self.remote_inflight.remove(&pid) {
                        if r.reason >= 0x80 {
                            log::warn!(
                                "bridge {}: the remote refused a message (reason 0x{:02x})",
                                self.cfg.name,
                                r.reason
                            );
                        }
                        self.ack_local(core, o, now);
                    }
                }
            }
            PubRespKind::PubRec => {
                if r.reason >= 0x80 {
                    // 5.0: the flow ends here; the message is not retried.
                    if let Some(o) = self.remote_inflight.remove(&pid) {
                        log::warn!(
                            "bridge {}: the remote refused a message (reason 0x{:02x})",
                            self.cfg.name,
                            r.reason
                        );
                        self.ack_local(core, o, now);
                    }
                    return;
                }
                self.send_remote_ack(PubRespKind::PubRel, r.packet_id, now);
            }
            PubRespKind::PubRel => {
                self.inbound_qos2.remove(&pid);
                self.send_remote_ack(PubRespKind::PubComp, r.packet_id, now);
            }
        }
    }

    /// The remote has a message: the core may forget it.
    fn ack_local(&mut self, core: &mut Core, o: Outbound, now: Instant) {
        let Some(pid) = o.local else {
            return;
        };
        if !self.local_open {
            return;
        }
        let kind = match o.local_qos {
            QoS::AtLeastOnce => PubRespKind::PubAck,
            QoS::ExactlyOnce => PubRespKind::PubRec,
            QoS::AtMostOnce => return,
        };
        self.feed_local_ack(core, kind, pid, now);
    }

    // ----- local side -----

    /// Encodes with `encode` and hands the bytes to the core, then takes
    /// what the core answers.
    fn feed(&mut self, core: &mut Core, now: Instant, encode: impl FnOnce(&mut Vec<u8>)) {
        feed_frame(core, self.local, &mut self.buf, now, encode);
        self.local_output(core, now);
    }

    fn feed_local_ack(&mut self, core: &mut Core, kind: PubRespKind, pid: PacketId, now: Instant) {
        let packet = ack(kind, pid);
        self.feed(core, now, |out| packet.encode(ProtocolVersion::V5, out));
    }

    /// Opens the local side: a trusted 5.0 connection resuming the bridge's
    /// session, which resends what the remote had not acknowledged.
    fn local_connect(&mut self, core: &mut Core, now: Instant) {
        if self.local_open {
            return;
        }
        core.handle_open(self.local, &format!("bridge {}", self.cfg.name), now);
        core.trust(self.local);
        self.local_open = true;
        let mut props = PropertiesBuf::new();
        props.push(&Property::SessionExpiryInterval(u32::MAX));
        if self.remote_receive_max < u16::MAX {
            props.push(&Property::ReceiveMaximum(self.remote_receive_max));
        }
        if self.remote_max_packet < u32::MAX {
            props.push(&Property::MaximumPacketSize(self.remote_max_packet));
        }
        let id = self.local_client_id.clone();
        let connect = Packet::Connect(Connect {
            protocol: ProtocolVersion::V5,
            clean_start: false,
            keep_alive: 0,
            properties: props.as_properties(),
            client_id: &id,
            will: None,
            username: None,
            password: None,
        });
        self.feed(core, now, |out| connect.encode(ProtocolVersion::V5, out));
    }

    /// Closes the local side with DISCONNECT: its session stays.
    fn local_disconnect(&mut self, core: &mut Core, now: Instant) {
        if !self.local_open {
            return;
        }
        self.local_open = false;
        if !core.is_closing(self.local) {
            let packet = Packet::Disconnect(codec::Disconnect {
                reason: 0,
                properties: Properties::EMPTY,
            });
            feed_frame(core, self.local, &mut self.buf, now, |out| {
                packet.encode(ProtocolVersion::V5, out);
            });
        }
        core.handle_close(self.local, now);
    }

    /// The local side's SUBSCRIBE: No Local, Retain As Published, and
    /// retained messages only when the subscription is new.
    fn subscribe_local(&mut self, core: &mut Core, now: Instant) {
        let filters: Vec<(String, SubOptions)> = self
            .cfg
            .topics
            .iter()
            .filter(|t| t.direction.outgoing())
            .map(|t| {
                (
                    t.local_filter(),
                    SubOptions {
                        qos: t.qos,
                        no_local: true,
                        retain_as_published: true,
                        retain_handling: 1,
                    },
                )
            })
            .collect();
        if filters.is_empty() {
            return;
        }
        let refs: Vec<(&str, SubOptions)> = filters.iter().map(|(f, o)| (f.as_str(), *o)).collect();
        let pid = PacketId::new(1);
        if let Some(pid) = pid {
            self.feed(core, now, |out| {
                codec::encode_subscribe(pid, Properties::EMPTY, &refs, ProtocolVersion::V5, out)
            });
        }
    }

    /// Takes what the core wrote for the local side: messages for the
    /// remote, acknowledgements. Stops while the remote socket is behind
    /// (the rest stays in the core).
    pub(crate) fn local_output(&mut self, core: &mut Core, now: Instant) {
        if !self.local_open {
            return;
        }
        loop {
            if !self.local_open {
                // Closed by what a frame led to (a lazy bridge's SUBACK).
                return;
            }
            if core.is_closing(self.local) {
                // Shut down by the core (the broker stops).
                self.local_open = false;
                core.handle_close(self.local, now);
                if self.state == State::Up {
                    self.fail(core, now, "the local side was closed");
                }
                return;
            }
            if self.out.len() >= OUT_HIGH_WATER {
                return;
            }
            let frame = adapter::next_frame(core, self.local, ProtocolVersion::V5, now, |p| {
                Some(match p {
                    Packet::Connack(c) => LocalEvent::Connack(c.code),
                    Packet::Suback(_) => LocalEvent::Subscribed,
                    Packet::Publish(p) => self
                        .forward(&p, now)
                        .map_or(LocalEvent::Ignore, |ack| LocalEvent::AckNow(ack.0, ack.1)),
                    Packet::PubResp(r) => match r.kind {
                        PubRespKind::PubRec => LocalEvent::AckNow(PubRespKind::PubRel, r.packet_id),
                        PubRespKind::PubRel => {
                            LocalEvent::AckNow(PubRespKind::PubComp, r.packet_id)
                        }
                        PubRespKind::PubAck | PubRespKind::PubComp => LocalEvent::Ignore,
                    },
                    _ => LocalEvent::Ignore,
                })
            });
            let event = match frame {
                Frame::None | Frame::Left => return,
                Frame::Taken(event) => event,
                Frame::Broken(why) => {
                    log::error!("bridge {}: {why} from the core", self.cfg.name);
                    let n = core.pending_output(self.local).len();
                    core.handle_written(self.local, n, now);
                    return;
                }
            };
            match event {
                LocalEvent::Connack(0) => self.subscribe_local(core, now),
                LocalEvent::Connack(code) => {
                    log::error!(
                        "bridge {}: the core refused the local side (code 0x{code:02x})",
                        self.cfg.name
                    );
                }
                LocalEvent::AckNow(kind, pid) => self.feed_local_ack(core, kind, pid, now),
                LocalEvent::Subscribed if self.state != State::Up => {
                    // A lazy bridge's session is made: offline until its
                    // threshold.
                    self.local_disconnect(core, now);
                    return;
                }
                LocalEvent::Subscribed | LocalEvent::Ignore => {}
            }
        }
    }

    /// A message the core gave the bridge: sent to the remote. Returns the
    /// acknowledgement to give the core at once, if any (the message was
    /// not kept for an acknowledgement from the remote).
    fn forward(&mut self, p: &Publish<'_>, now: Instant) -> Option<(PubRespKind, PacketId)> {
        let ack_now = p.packet_id.and_then(|pid| match p.qos {
            QoS::AtLeastOnce => Some((PubRespKind::PubAck, pid)),
            QoS::ExactlyOnce => Some((PubRespKind::PubRec, pid)),
            QoS::AtMostOnce => None,
        });
        if self.state != State::Up {
            // Not acknowledged: the core keeps it and resends it on the
            // next local connection.
            return None;
        }
        let Some(topic) = self.cfg.topics.iter().find_map(|r| r.to_remote(p.topic)) else {
            log::debug!(
                "bridge {}: message on '{}' matches no 'out' topic; dropped",
                self.cfg.name,
                p.topic
            );
            return ack_now;
        };
        let qos = p.qos.min(self.remote_max_qos);
        if qos < p.qos && !self.qos_lowered_logged {
            self.qos_lowered_logged = true;
            log::warn!(
                "bridge {}: the remote accepts at most QoS {}; messages are sent with it",
                self.cfg.name,
                qos as u8
            );
        }
        let v = self.remote_version();
        self.props.clear();
        if v.is_v5() {
            for prop in p.properties.iter() {
                match prop {
                    Property::TopicAlias(_) | Property::SubscriptionIdentifier(_) => {}
                    other => self.props.push(&other),
                }
            }
        }
        let remote_pid = if qos == QoS::AtMostOnce {
            None
        } else {
            self.remote_pid()
        };
        let props = std::mem::take(&mut self.props);
        let out = Publish {
            dup: p.dup,
            qos,
            // `bridge_outgoing_retain false`: for remotes without
            // retained messages.
            retain: p.retain && self.cfg.outgoing_retain,
            topic: &topic,
            packet_id: remote_pid,
            properties: props.as_properties(),
            payload: p.payload,
        };
        if out.encoded_len(v) > self.remote_max_packet as usize {
            self.props = props;
            log::warn!(
                "bridge {}: message on '{topic}' is larger than the remote accepts; dropped",
                self.cfg.name
            );
            return ack_now;
        }
        out.encode(v, &mut self.out);
        self.props = props;
        self.last_tx = now;
        self.stats.forwarded += 1;
        self.last_msg = now;
        match (remote_pid, p.packet_id) {
            (Some(rpid), local) => {
                self.remote_inflight.insert(
                    rpid.get(),
                    Outbound {
                        local,
                        local_qos: p.qos,
                        remote_qos: qos,
                    },
                );
                None
            }
            (None, _) => ack_now,
        }
    }
}

/// What one frame of the core's output asks of the bridge.
enum LocalEvent {
    Connack(u8),
    Subscribed,
    AckNow(PubRespKind, PacketId),
    Ignore,
}

/// Turns an encoded 3.1.1 CONNECT into a bridge's: protocol level 0x84.
fn mark_private(frame: &mut [u8]) {
    // Fixed header: one byte, then the remaining length (1 to 4 bytes,
    // the last without bit 7); then the protocol name "MQTT" (2 + 4 bytes).
    let mut i = 1;
    while frame.get(i).is_some_and(|b| b & 0x80 != 0) {
        i += 1;
    }
    if let Some(level) = frame.get_mut(i + 1 + 6) {
        *level = PRIVATE_LEVEL;
    }
}

#[cfg(test)]
pub(super) fn mark_private_for_tests(frame: &mut [u8]) {
    mark_private(frame);
}
