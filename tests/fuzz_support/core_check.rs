//! The `core` property: a small op-code program drives several virtual
//! connections of one [`Core`] (open, feed bytes in chunks, consume output
//! partially, close, advance the clock). After every step:
//!
//! * nothing panicked;
//! * everything the core wrote to a connection, in the order written, is a
//!   sequence of well-formed MQTT packets for that connection's protocol
//!   version (the version of the CONNECT it sent), a server may send them,
//!   and the first is CONNACK;
//! * memory stays bounded: pending output per connection (see
//!   [`output_bound`]), sessions, retained messages and bytes,
//!   subscriptions;
//! * deadlines are neither lost nor missed: `next_deadline` is never later
//!   than any connection's connect or keepalive deadline, and once time
//!   passes one, `handle_timeout` closes that connection;
//! * the counters agree with what the connections saw;
//! * application hooks (op 7): a connection has at most one question
//!   pending, and it is parked (not read) until answered; a verdict or the
//!   deadline lets it go on; events name a client and, for subscribed /
//!   unsubscribed, a filter.
//!
//! # Program format
//!
//! Each op is one byte: the low nibble (mod 8) is the op, the high nibble
//! (mod [`CONNS`]) the connection slot. Operands follow.
//!
//! | op | operands | effect |
//! |----|----------|--------|
//! | 0  | -        | open the slot (if closed) |
//! | 1  | len, chunk, bytes | feed `len` raw bytes (len 255: a u16 LE length follows), in chunks of `chunk` (0: at once) |
//! | 2  | kind, a, b | feed a ready-made packet (see [`canned`]) |
//! | 3  | n        | the network writes `8n + 1` bytes of pending output |
//! | 4  | -        | the network writes all pending output |
//! | 5  | -        | the peer closes the connection |
//! | 6  | d        | the clock advances `250 ms * d`, then `handle_timeout` |
//! | 7  | v        | the first time: install hooks (`v` bit 0 connect, bit 1 publish, bit 2 subscribe; verdicts within 1 s); then answer the oldest pending question with verdict `v % 4` (accept, refuse, bad credentials, per filter from the bits of `v`) |

use std::time::{Duration, Instant};

use boxmq::codec::{
    self, Connect, Disconnect, Packet, PacketId, Properties, PropertiesBuf, Property,
    ProtocolVersion, PubResp, PubRespKind, Publish, QoS, SubOptions, Will,
};
use std::collections::VecDeque;

use boxmq::core::{ConnId, Core, EventKind, HookCall, HookSet, Verdict};
use boxmq::{Config, Limits};

use super::Input;

/// Connection slots a program can use.
pub const CONNS: usize = 4;

/// Small limits, so that every bound is reachable by a short program.
pub fn limits() -> Limits {
    Limits {
        max_connections: CONNS,
        max_packet_size: 1024,
        max_inflight: 2,
        max_queued_messages: 4,
        max_queued_bytes: 512,
        max_subscriptions_per_session: 4,
        max_sessions: 3,
        max_topic_len: 48,
        max_topic_levels: 5,
        max_client_id_len: 32,
        max_retained_messages: 3,
        max_retained_bytes: 256,
        max_output_buffer: 256,
        connect_timeout: Duration::from_secs(5),
        max_topic_aliases: 2,
        stuck_timeout: Duration::from_secs(2),
        max_keepalive: 30,
        // Reached by a few messages, so the budget's reactions are fuzzed.
        memory_limit: 8192,
        message_size_limit: 600,
    }
}

/// Re-encoding a message for another protocol version can grow a frame by
/// a few bytes (5.0's property length, a packet id when a message is
/// re-sent): the largest frame the core may write is `max_packet_size` plus
/// this.
pub const FRAME_SLACK: usize = 8;

/// Largest pending output the core may hold for one connection:
///
/// * `max_output_buffer`: the core appends while below it;
/// * one frame: the append that crosses it (`max_packet_size + FRAME_SLACK`);
/// * `max_inflight` frames: the in-flight messages re-sent on a session
///   resume, written without looking at the buffer;
/// * `credit`: the input bytes the connection sent since its output was
///   last fully written, plus 16. Direct answers (CONNACK, PUBACK, PUBREC,
///   PUBREL, PUBCOMP, SUBACK, UNSUBACK, PINGRESP, a final DISCONNECT) are
///   each no bigger than the packet that caused them, plus a few bytes for
///   the one CONNACK or DISCONNECT; they are appended whatever the buffer
///   holds. That this is unbounded for a client that writes without reading
///   is finding 2 in fuzz/README.md; the bound keeps it explicit.
pub fn output_bound(l: &Limits, credit: usize) -> usize {
    let frame = l.max_packet_size as usize + FRAME_SLACK;
    l.max_output_buffer + frame + usize::from(l.max_inflight) * frame + credit + 16
}

#[derive(Default)]
struct Slot {
    open: bool,
    /// Fed but not yet used by the core (an incomplete packet).
    inbuf: Vec<u8>,
    /// Written to the "network" but not yet a whole frame.
    received: Vec<u8>,
    /// Version of the CONNECT this connection sent (3.1.1 until then).
    version: Option<ProtocolVersion>,
    /// The first packet has been decoded (CONNECT or not).
    first_seen: bool,
    keep_alive: u16,
    /// CONNACK seen; accepted when its code was 0.
    connack: Option<u8>,
    credit: usize,
    opened: Option<Instant>,
    last_rx: Option<Instant>,
    /// The core paused its input for a subscriber that falls behind
    /// (`wants_input` false with room in the output): it does not hold a
    /// connection it does not read to its keepalive, and counts it afresh
    /// from the release, so neither does the harness until it is used
    /// again.
    paused: bool,
}

impl Slot {
    fn version(&self) -> ProtocolVersion {
        self.version.unwrap_or(ProtocolVersion::V311)
    }
    fn accepted(&self) -> bool {
        self.connack == Some(0)
    }
}

pub struct Harness {
    core: Core,
    limits: Limits,
    now: Instant,
    slots: Vec<Slot>,
    /// Packets the connections received, for tests that look at them.
    pub received_packets: usize,
    /// Hooks installed (op 7).
    hooks: bool,
    /// Questions the application has not answered yet, oldest first.
    calls: VecDeque<HookCall>,
    /// Verdicts given, for tests that look at them.
    pub verdicts: usize,
}

/// Runs the program in `data`, checking every property on the way.
pub fn check(data: &[u8]) {
    let mut h = Harness::new();
    h.run(data);
}

impl Harness {
    pub fn new() -> Harness {
        let config = Config {
            limits: limits(),
            ..Config::default()
        };
        Harness {
            core: Core::new(config.core_options()),
            limits: limits(),
            now: Instant::now(),
            slots: (0..CONNS).map(|_| Slot::default()).collect(),
            received_packets: 0,
            hooks: false,
            calls: VecDeque::new(),
            verdicts: 0,
        }
    }

    pub fn run(&mut self, data: &[u8]) {
        let mut input = Input::new(data);
        while !input.is_empty() {
            let op = input.byte();
            let i = usize::from(op >> 4) % CONNS;
            match op & 0x07 {
                0 => self.open(i),
                1 => {
                    let mut len = usize::from(input.byte());
                    if len == 255 {
                        len = usize::from(input.u16());
                    }
                    let chunk = usize::from(input.byte());
                    let bytes = input.take(len);
                    self.feed(i, bytes, chunk);
                }
                2 => {
                    let (kind, a, b) = (input.byte(), input.byte(), input.byte());
                    let version = self.slots[i].version();
                    let bytes = canned(kind, a, b, version);
                    self.feed(i, &bytes, 0);
                }
                3 => {
                    let n = usize::from(input.byte()) * 8 + 1;
                    self.write(i, n);
                }
                4 => self.write(i, usize::MAX),
                5 => self.peer_close(i),
                6 => {
                    let d = u64::from(input.byte());
                    self.advance(Duration::from_millis(250 * d));
                }
                7 => {
                    let v = input.byte();
                    self.hook_op(v);
                }
                _ => {}
            }
            self.settle();
        }
        self.finish();
    }

    /// Op 7: installs the hooks, or answers the oldest question.
    fn hook_op(&mut self, v: u8) {
        if !self.hooks {
            self.hooks = true;
            self.core.set_hooks(HookSet {
                connect: v & 1 != 0,
                publish: v & 2 != 0,
                subscribe: v & 4 != 0,
                timeout: Duration::from_secs(1),
                ..HookSet::default()
            });
            return;
        }
        let Some(call) = self.calls.pop_front() else {
            return;
        };
        let verdict = match v % 4 {
            0 => Verdict::Accept,
            1 => Verdict::Refuse,
            2 => Verdict::BadCredentials,
            _ => Verdict::Filters((0..8).map(|b| v & (0x10 << (b % 4)) != 0).collect()),
        };
        self.verdicts += 1;
        self.core
            .handle_verdict(call.conn, call.ticket, verdict, self.now);
        self.resume();
    }

    /// Hands the inbox of every connection the core resumed in again, as
    /// the event loop does; and of a parked connection that takes input
    /// again once its output was written (the loop reads it then).
    fn resume(&mut self) {
        let mut again: Vec<usize> = std::iter::from_fn(|| self.core.poll_resumed())
            .map(|id| id.0)
            .collect();
        assert!(again.iter().all(|&i| i < CONNS), "poll_resumed: {again:?}");
        again.extend((0..CONNS).filter(|&i| {
            self.core.pending_ticket(Self::id(i)).is_some() && self.core.wants_input(Self::id(i))
        }));
        for i in again {
            if !self.slots[i].open || self.slots[i].inbuf.is_empty() {
                continue;
            }
            let inbuf = std::mem::take(&mut self.slots[i].inbuf);
            self.slots[i].paused = false;
            self.feed(i, &inbuf, 0);
        }
    }

    /// Collects the core's questions and events and checks them.
    fn collect_hooks(&mut self) {
        while let Some(call) = self.core.poll_hook_call() {
            let i = call.conn.0;
            assert!(
                i < CONNS && self.slots[i].open,
                "question about {:?}, which is not open",
                call.conn
            );
            assert!(self.hooks, "a question without hooks");
            self.calls.push_back(call);
        }
        // Questions the core no longer waits for (the connection is gone,
        // or the deadline refused) are answered by nobody.
        let core = &self.core;
        self.calls
            .retain(|c| core.pending_ticket(c.conn) == Some(c.ticket));
        for (n, c) in self.calls.iter().enumerate() {
            assert!(
                !self.calls.iter().skip(n + 1).any(|d| d.conn == c.conn),
                "two questions pending for connection {}",
                c.conn.0
            );
        }
        for c in &self.calls {
            assert!(
                !self.core.wants_input(c.conn),
                "connection {} has a question pending but is read",
                c.conn.0
            );
        }
        // No question is lost: every parked connection has its question.
        for i in 0..CONNS {
            if let Some(t) = self.core.pending_ticket(Self::id(i)) {
                assert!(
                    self.calls.iter().any(|c| c.conn.0 == i && c.ticket == t),
                    "connection {i} waits for question {t}, never asked"
                );
            }
        }
        while let Some(e) = self.core.poll_event() {
            assert!(self.hooks, "an event without hooks");
            let filter = matches!(e.kind, EventKind::Subscribed | EventKind::Unsubscribed);
            assert_eq!(e.topic.is_some(), filter, "{e:?}");
            let reason = matches!(e.kind, EventKind::Disconnected | EventKind::Dropped);
            assert_eq!(e.reason.is_some(), reason, "{e:?}");
            assert!(!e.client_id.is_empty(), "{e:?}");
        }
    }

    fn id(i: usize) -> ConnId {
        ConnId(i)
    }

    fn open(&mut self, i: usize) {
        if self.slots[i].open {
            return;
        }
        self.slots[i] = Slot {
            open: true,
            opened: Some(self.now),
            last_rx: Some(self.now),
            ..Slot::default()
        };
        self.core.handle_open(Self::id(i), "fuzz", self.now);
    }

    /// Feeds `bytes` as the network would: appended to what the core left
    /// over, in reads of `chunk` bytes.
    fn feed(&mut self, i: usize, bytes: &[u8], chunk: usize) {
        if !self.slots[i].open || bytes.is_empty() {
            return;
        }
        let chunk = if chunk == 0 { bytes.len() } else { chunk };
        for piece in bytes.chunks(chunk) {
            if !self.slots[i].open || self.core.is_closing(Self::id(i)) {
                return;
            }
            let max = self.limits.max_packet_size as usize;
            let slot = &mut self.slots[i];
            slot.inbuf.extend_from_slice(piece);
            // Mirror the core: the first packet decides the version.
            if !slot.first_seen {
                if let Ok(Some((p, _))) = codec::decode(&slot.inbuf, ProtocolVersion::V311, max) {
                    slot.first_seen = true;
                    if let Packet::Connect(c) = p {
                        slot.version = Some(c.protocol);
                        slot.keep_alive = c.keep_alive;
                    }
                }
            }
            let id = Self::id(i);
            if self.core.pending_ticket(id).is_some() && !self.core.wants_input(id) {
                // Parked: the event loop does not read the socket until
                // the verdict; the bytes wait there, in order.
                continue;
            }
            let inbuf = std::mem::take(&mut slot.inbuf);
            let used = self.core.handle_data(Self::id(i), &inbuf, self.now);
            assert!(
                used <= inbuf.len(),
                "handle_data used {used} of {}",
                inbuf.len()
            );
            let throttled = !self.core.wants_input(Self::id(i))
                && self.core.pending_output(Self::id(i)).len() <= self.limits.max_output_buffer;
            let slot = &mut self.slots[i];
            if used > 0 {
                slot.last_rx = Some(self.now);
                slot.paused = false;
            }
            slot.paused |= throttled;
            slot.credit += used;
            slot.inbuf = inbuf[used..].to_vec();
            let parked = self.core.pending_ticket(Self::id(i)).is_some();
            let slot = &mut self.slots[i];
            assert!(
                parked || slot.inbuf.len() <= max,
                "core left {} bytes unused, more than max_packet_size",
                slot.inbuf.len()
            );
            self.check_bounds();
        }
    }

    /// The network takes up to `n` bytes of connection `i`'s output.
    fn write(&mut self, i: usize, n: usize) {
        if !self.slots[i].open {
            return;
        }
        let id = Self::id(i);
        let pending = self.core.pending_output(id);
        let n = n.min(pending.len());
        if n == 0 {
            return;
        }
        self.slots[i].received.extend_from_slice(&pending[..n]);
        self.core.handle_written(id, n, self.now);
        self.decode_received(i);
        if self.core.pending_output(id).is_empty() {
            let slot = &mut self.slots[i];
            assert!(
                slot.received.is_empty(),
                "all output written but a partial frame is left: {:02x?}",
                slot.received
            );
            slot.credit = 0;
        }
    }

    fn decode_received(&mut self, i: usize) {
        loop {
            let slot = &mut self.slots[i];
            let version = slot.version();
            let frame = match codec::decode(&slot.received, version, usize::MAX) {
                Ok(None) => return,
                Ok(Some((p, n))) => Some((own(&p), n)),
                Err(e) => panic!(
                    "connection {i} ({version:?}) got a frame that does not decode ({e:?}): {:02x?}",
                    &slot.received[..slot.received.len().min(64)]
                ),
            };
            let Some((p, n)) = frame else { return };
            self.slots[i].received.drain(..n);
            self.check_packet(i, p, n);
        }
    }

    /// What a server may send, in the order it may send it.
    fn check_packet(&mut self, i: usize, p: OwnedOut, size: usize) {
        self.received_packets += 1;
        let l = &self.limits;
        assert!(
            size <= l.max_packet_size as usize + FRAME_SLACK,
            "connection {i}: {size}-byte frame, max_packet_size {}",
            l.max_packet_size
        );
        let slot = &mut self.slots[i];
        let v5 = slot.version().is_v5();
        match (slot.connack, &p) {
            (None, OwnedOut::Connack(code)) => slot.connack = Some(*code),
            (None, _) => panic!("connection {i}: first packet is {p:?}, not CONNACK"),
            (Some(_), OwnedOut::Connack(_)) => panic!("connection {i}: second CONNACK"),
            (Some(c), _) if c != 0 => panic!("connection {i}: {p:?} after a refusing CONNACK"),
            _ => {}
        }
        match p {
            OwnedOut::Connack(_) | OwnedOut::Ack | OwnedOut::PingResp => {}
            OwnedOut::Publish { topic } => {
                assert!(
                    boxmq::topic::validate_topic_name(&topic, l.max_topic_len, l.max_topic_levels)
                        .is_ok(),
                    "connection {i}: PUBLISH on invalid topic {topic:?}"
                );
            }
            OwnedOut::Disconnect => assert!(
                v5,
                "connection {i}: DISCONNECT sent to a {:?} client",
                slot.version()
            ),
            OwnedOut::Auth => assert!(v5),
            OwnedOut::ClientOnly(what) => panic!("connection {i}: server sent {what}"),
        }
    }

    fn peer_close(&mut self, i: usize) {
        if !self.slots[i].open {
            return;
        }
        self.core.handle_close(Self::id(i), self.now);
        self.slots[i] = Slot::default();
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        if self.core.next_deadline().is_some_and(|t| t <= self.now) {
            self.core.handle_timeout(self.now);
        }
        if let Some(t) = self.core.next_deadline() {
            assert!(
                t > self.now,
                "next_deadline {t:?} not after now after handle_timeout"
            );
        }
        let timeout = self.limits.connect_timeout;
        for i in 0..CONNS {
            let Some(deadline) = self.deadline(i, timeout) else {
                continue;
            };
            if deadline <= self.now {
                assert!(
                    self.core.is_closing(Self::id(i)),
                    "connection {i} is past its deadline but not closed"
                );
            }
        }
    }

    /// The harness's own idea of a connection's deadline.
    fn deadline(&self, i: usize, connect_timeout: Duration) -> Option<Instant> {
        let s = &self.slots[i];
        if !s.open || s.paused || self.core.is_closing(Self::id(i)) {
            return None;
        }
        match self.connack_code(i) {
            Some(0) => {
                let ka = Duration::from_secs(u64::from(s.keep_alive));
                (!ka.is_zero()).then(|| s.last_rx.unwrap_or(self.now) + ka + ka / 2)
            }
            // Refused: closing already.
            Some(_) => None,
            None => s.opened.map(|t| t + connect_timeout),
        }
    }

    /// The CONNACK code connection `i` got or is about to get (it may still
    /// be in the pending output).
    fn connack_code(&self, i: usize) -> Option<u8> {
        let s = &self.slots[i];
        if s.connack.is_some() {
            return s.connack;
        }
        let mut bytes = s.received.clone();
        bytes.extend_from_slice(self.core.pending_output(Self::id(i)));
        match codec::decode(&bytes, s.version(), usize::MAX) {
            Ok(Some((Packet::Connack(c), _))) => Some(c.code),
            _ => None,
        }
    }

    /// Closes what the core wants closed (after the network wrote all of
    /// it), and checks the invariants.
    fn settle(&mut self) {
        self.resume();
        self.collect_hooks();
        while let Some(id) = self.core.poll_dirty() {
            assert!(
                id.0 < CONNS && self.slots[id.0].open,
                "poll_dirty named {id:?}, which is not open"
            );
        }
        self.check_bounds();
        for i in 0..CONNS {
            if self.slots[i].open && self.core.is_closing(Self::id(i)) {
                self.write(i, usize::MAX);
                self.core.handle_close(Self::id(i), self.now);
                self.slots[i] = Slot::default();
            }
        }
        self.check_counters();
    }

    fn check_bounds(&self) {
        let l = &self.limits;
        for i in 0..CONNS {
            if !self.slots[i].open {
                continue;
            }
            let pending = self.core.pending_output(Self::id(i)).len();
            let bound = output_bound(l, self.slots[i].credit);
            assert!(
                pending <= bound,
                "connection {i}: {pending} bytes of pending output, bound {bound}"
            );
        }
        let s = self.core.stats();
        assert!(s.sessions <= l.max_sessions, "{} sessions", s.sessions);
        assert!(s.retained_messages <= l.max_retained_messages, "{s:?}");
        assert!(s.retained_bytes <= l.max_retained_bytes, "{s:?}");
        assert!(
            s.subscriptions <= s.sessions * l.max_subscriptions_per_session,
            "{s:?}"
        );
    }

    fn check_counters(&self) {
        let open = self.slots.iter().filter(|s| s.open).count();
        assert_eq!(self.core.connection_count(), open);
        let s = self.core.stats();
        assert!(s.clients_connected <= open, "{s:?}, {open} open");
        // Connections the harness saw accepted are connected (the core may
        // know of more: accepted, CONNACK not yet written out).
        let accepted = self.slots.iter().filter(|s| s.open && s.accepted()).count();
        assert!(
            s.clients_connected >= accepted,
            "{s:?}, {accepted} accepted"
        );
        assert!(s.clients_maximum >= s.clients_connected);
        // No deadline is lost.
        let timeout = self.limits.connect_timeout;
        for i in 0..CONNS {
            if let Some(d) = self.deadline(i, timeout) {
                let next = self.core.next_deadline();
                assert!(
                    next.is_some_and(|t| t <= d),
                    "connection {i}: deadline {d:?} but next_deadline {next:?}"
                );
            }
        }
    }

    /// End of program: everything written, then an hour passes, then every
    /// peer goes away; the core must be empty of connections.
    fn finish(&mut self) {
        for i in 0..CONNS {
            self.write(i, usize::MAX);
        }
        self.settle();
        self.advance(Duration::from_secs(3600));
        self.settle();
        for i in 0..CONNS {
            self.peer_close(i);
        }
        self.settle();
        let s = self.core.stats();
        assert_eq!(s.clients_connected, 0, "{s:?}");
        assert_eq!(self.core.connection_count(), 0);
    }
}

/// The parts of an output packet the checks look at, owned.
#[derive(Debug)]
enum OwnedOut {
    Connack(u8),
    Publish { topic: String },
    Ack,
    PingResp,
    Disconnect,
    Auth,
    ClientOnly(&'static str),
}

fn own(p: &Packet<'_>) -> OwnedOut {
    match p {
        Packet::Connack(c) => OwnedOut::Connack(c.code),
        Packet::Publish(p) => OwnedOut::Publish {
            topic: p.topic.to_string(),
        },
        Packet::PubResp(_) | Packet::Suback(_) | Packet::Unsuback(_) => OwnedOut::Ack,
        Packet::PingResp => OwnedOut::PingResp,
        Packet::Disconnect(_) => OwnedOut::Disconnect,
        Packet::Auth(_) => OwnedOut::Auth,
        Packet::Connect(_) => OwnedOut::ClientOnly("CONNECT"),
        Packet::Subscribe(_) => OwnedOut::ClientOnly("SUBSCRIBE"),
        Packet::Unsubscribe(_) => OwnedOut::ClientOnly("UNSUBSCRIBE"),
        Packet::PingReq => OwnedOut::ClientOnly("PINGREQ"),
    }
}

/// Client ids the canned CONNECTs use; few, so sessions collide.
pub const CLIENT_IDS: [&str; 5] = ["a", "b", "shellybutton1-A4CF12F45A10", "", "dashboard"];
/// Topic names the canned PUBLISHes use.
pub const TOPICS: [&str; 5] = [
    "shellies/shellybutton1-A4CF12F45A10/input_event/0",
    "shellies/shellybutton1-A4CF12F45A10/online",
    "a/b",
    "$SYS/x",
    "a/b/c/d/e/f",
];
/// Topic filters the canned SUBSCRIBEs use.
pub const FILTERS: [&str; 8] = [
    "shellies/+/input_event/0",
    "shellies/#",
    "#",
    "a/+",
    "a/b",
    "+/+/+/+/+/+",
    "$share/g/a/b",
    "a/#/b",
];

fn pid(v: u8) -> PacketId {
    PacketId::new(u16::from(v % 4) + 1).unwrap_or(PacketId(std::num::NonZeroU16::MIN))
}

fn qos(v: u8) -> QoS {
    QoS::from_u8(v % 3).unwrap_or(QoS::AtMostOnce)
}

/// A ready-made, well-formed client packet (most of the time: some are
/// wrong on purpose), encoded for `version`. `kind` picks the packet,
/// `a` and `b` its fields.
pub fn canned(kind: u8, a: u8, b: u8, version: ProtocolVersion) -> Vec<u8> {
    let mut out = Vec::new();
    let mut props = PropertiesBuf::new();
    let packet = match kind % 12 {
        0 => {
            let protocol = [
                ProtocolVersion::V311,
                ProtocolVersion::V5,
                ProtocolVersion::V31,
            ][usize::from(a % 3)];
            if protocol.is_v5() && b & 0x20 != 0 {
                props.push(&Property::SessionExpiryInterval(60));
            }
            let client_id = CLIENT_IDS[usize::from(a / 3) % CLIENT_IDS.len()];
            let will = (b & 0x80 != 0).then_some(Will {
                topic: "shellies/shellybutton1-A4CF12F45A10/online",
                payload: b"false",
                qos: qos(b >> 3),
                retain: b & 0x10 != 0,
                properties: Properties::EMPTY,
            });
            Packet::Connect(Connect {
                protocol,
                clean_start: b & 0x40 == 0,
                keep_alive: [0, 1, 2, 60][usize::from(b % 4)],
                properties: props.as_properties(),
                client_id,
                will,
                username: None,
                password: None,
            })
        }
        1 => {
            let f = FILTERS[usize::from(a) % FILTERS.len()];
            let opts = SubOptions::qos_only(qos(b));
            codec::encode_subscribe(
                pid(b >> 2),
                Properties::EMPTY,
                &[(f, opts)],
                version,
                &mut out,
            );
            return out;
        }
        2 | 11 => {
            let topic = TOPICS[usize::from(a) % TOPICS.len()];
            let q = qos(b);
            let len = if kind % 12 == 11 {
                1000 - topic.len()
            } else {
                [0, 27, 100, 300][usize::from(b >> 2) % 4]
            };
            let payload: Vec<u8> =
                br#"{"event":"S","event_cnt":3}"#.iter().copied().cycle().take(len).collect();
            let p = Publish {
                dup: false,
                qos: q,
                retain: b & 0x80 != 0,
                topic,
                packet_id: (q != QoS::AtMostOnce).then(|| pid(b >> 4)),
                properties: Properties::EMPTY,
                payload: &payload,
            };
            p.encode(version, &mut out);
            return out;
        }
        k @ 3..=6 => Packet::PubResp(PubResp {
            kind: [
                PubRespKind::PubAck,
                PubRespKind::PubRec,
                PubRespKind::PubRel,
                PubRespKind::PubComp,
            ][usize::from(k - 3)],
            packet_id: pid(a),
            reason: 0,
            properties: Properties::EMPTY,
        }),
        7 => {
            let f = FILTERS[usize::from(a) % FILTERS.len()];
            codec::encode_unsubscribe(pid(b), Properties::EMPTY, &[f], version, &mut out);
            return out;
        }
        8 => Packet::PingReq,
        9 => Packet::Disconnect(Disconnect {
            reason: if a & 1 == 0 { 0x00 } else { 0x04 },
            properties: Properties::EMPTY,
        }),
        _ => {
            let all: Vec<(&str, SubOptions)> = FILTERS
                .iter()
                .map(|f| (*f, SubOptions::qos_only(qos(a))))
                .collect();
            codec::encode_subscribe(pid(b), Properties::EMPTY, &all, version, &mut out);
            return out;
        }
    };
    packet.encode(version, &mut out);
    out
}
