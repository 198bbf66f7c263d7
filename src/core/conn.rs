//! Per-connection state: where the connection is in its life, its keepalive,
//! its will, and the bytes waiting to be written to it.

use std::time::{Duration, Instant};

use crate::codec::{ProtocolVersion, QoS};

use super::session::SessionId;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Opened; the first packet must be CONNECT [MQTT-3.1.0-1].
    AwaitConnect,
    /// CONNECT accepted; attached to a session.
    Connected(SessionId),
    /// The broker has decided to close it; output is flushed best-effort,
    /// input is ignored.
    Closing,
}

/// A will message held until the connection ends (MQTT 3.1.1 §3.1.2.5,
/// 5.0 §3.1.3.2).
#[derive(Clone, Debug)]
pub(crate) struct WillMsg {
    pub topic: Box<str>,
    pub payload: Box<[u8]>,
    pub qos: QoS,
    pub retain: bool,
    /// Will properties to forward (see `Message::props`).
    pub props: Box<[u8]>,
    /// 5.0 message expiry interval of the will, in seconds.
    pub expiry: Option<u32>,
    /// 5.0 will delay interval, in seconds.
    pub delay: u32,
}

/// Output buffers larger than this are given back once drained, so an idle
/// connection holds no big allocation.
const IDLE_BUFFER_KEEP: usize = 4 * 1024;

/// One connection as the core sees it.
#[derive(Debug)]
pub(crate) struct Conn {
    pub phase: Phase,
    pub protocol: ProtocolVersion,
    pub opened: Instant,
    pub last_rx: Instant,
    /// Keepalive as the client asked; zero turns it off [MQTT-3.1.2-10].
    pub keep_alive: Duration,
    /// Boxed: most connections have none, and a will is large.
    pub will: Option<Box<WillMsg>>,
    /// 5.0 topic aliases the client has set, indexed by alias - 1. Never
    /// longer than the Topic Alias Maximum the broker announced.
    pub aliases: Vec<Option<Box<str>>>,
    /// The application's own connection (see `Core::trust`).
    pub trusted: bool,
    /// User name proved by the transport (see `Core::set_identity`).
    pub identity: Option<Box<str>>,
    /// 5.0: whether error replies carry a Reason String: the client asked
    /// for them (Request Problem Information 1), or `reason_strings` is on
    /// and it did not refuse them (0) [MQTT-3.1.2-29].
    pub problem_info: bool,
    /// Encoded frames waiting to be written, from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    /// Bytes of output written since the connection opened.
    consumed: u64,
    /// Output held until records are durable (persistence with sync): each
    /// mark is a stream offset (counted like `consumed`) and the number of
    /// records that must be on disk before the bytes from there on leave.
    marks: std::collections::VecDeque<(u64, u64)>,
    /// Already in the core's dirty list.
    pub dirty: bool,
    /// Already in the core's urgent list (output past `FLUSH_MARK`).
    pub urgent: bool,
    /// Input paused until then because a connected subscriber of what it
    /// publishes is falling behind (see `Core::throttle`).
    pub throttled_until: Option<Instant>,
    /// Text for log lines: the peer address given at open, then the client
    /// id and the peer address.
    pub label: Box<str>,
}

impl Conn {
    pub fn new(now: Instant, label: Box<str>) -> Conn {
        Conn {
            phase: Phase::AwaitConnect,
            protocol: ProtocolVersion::V311,
            opened: now,
            last_rx: now,
            keep_alive: Duration::ZERO,
            will: None,
            aliases: Vec::new(),
            problem_info: true,
            trusted: false,
            identity: None,
            out: Vec::new(),
            out_pos: 0,
            consumed: 0,
            marks: std::collections::VecDeque::new(),
            dirty: false,
            urgent: false,
            throttled_until: None,
            label,
        }
    }

    /// The instant after which the connection is to be closed for silence:
    /// 1.5 times the keepalive after the last packet [MQTT-3.1.2-24], or the
    /// connect timeout while CONNECT is awaited.
    pub fn deadline(&self, connect_timeout: Duration) -> Option<Instant> {
        match self.phase {
            Phase::AwaitConnect => Some(self.opened + connect_timeout),
            Phase::Connected(_) if !self.keep_alive.is_zero() => {
                Some(self.last_rx + self.keep_alive + self.keep_alive / 2)
            }
            _ => None,
        }
    }

    /// Bytes that may be written now: those waiting, up to the first one
    /// held for records not yet durable.
    pub fn pending_output(&self) -> &[u8] {
        let all = self.out.get(self.out_pos..).unwrap_or(&[]);
        match self.marks.front() {
            Some(&(pos, _)) => {
                let free = usize::try_from(pos.saturating_sub(self.consumed)).unwrap_or(usize::MAX);
                all.get(..free).unwrap_or(all)
            }
            None => all,
        }
    }

    /// What is appended from now on waits until `records` records are
    /// durable. `true` when the connection had no hold before.
    pub fn hold(&mut self, records: u64) -> bool {
        let pos = self.consumed + self.output_len() as u64;
        let first = self.marks.is_empty();
        match self.marks.back_mut() {
            Some(last) if last.0 == pos => last.1 = last.1.max(records),
            Some(last) if last.1 >= records => {}
            _ => self.marks.push_back((pos, records)),
        }
        first
    }

    /// Where output appended from now on starts, counted over the
    /// connection's life (for [`Conn::hold_from`]).
    pub fn output_end(&self) -> u64 {
        self.consumed + self.output_len() as u64
    }

    /// Like [`Conn::hold`], for the output from `pos` (an earlier
    /// [`Conn::output_end`] whose bytes are not written yet) on: an answer
    /// queued before the work whose records it must wait for.
    pub fn hold_from(&mut self, pos: u64, records: u64) -> bool {
        let first = self.marks.is_empty();
        let at = self
            .marks
            .iter()
            .position(|m| m.0 > pos)
            .unwrap_or(self.marks.len());
        let covered = at > 0 && self.marks.get(at - 1).is_some_and(|m| m.1 >= records);
        if !covered {
            match self.marks.get_mut(at) {
                Some(m) if m.0 == pos => m.1 = m.1.max(records),
                _ => self.marks.insert(at, (pos, records)),
            }
        }
        first && !covered
    }

    /// Some output waits for records to be durable.
    pub fn has_held_output(&self) -> bool {
        !self.marks.is_empty()
    }

    /// Records up to `durable` are on disk: lifts the holds they covered.
    /// `true` when some output was released; `still` tells whether holds
    /// remain.
    pub fn release_held(&mut self, durable: u64) -> (bool, bool) {
        let mut released = false;
        while self.marks.front().is_some_and(|m| m.1 <= durable) {
            self.marks.pop_front();
            released = true;
        }
        (released, !self.marks.is_empty())
    }

    /// Number of bytes waiting to be written.
    pub fn output_len(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// The buffer to append encoded frames to.
    pub fn out_buf(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// `n` bytes of the pending output were written.
    pub fn consume_output(&mut self, n: usize) {
        let before = self.out_pos;
        self.out_pos = (self.out_pos + n).min(self.out.len());
        self.consumed += (self.out_pos - before) as u64;
        if self.out_pos == self.out.len() {
            self.out_pos = 0;
            if self.out.capacity() > IDLE_BUFFER_KEEP {
                self.out = Vec::new();
            } else {
                self.out.clear();
            }
        } else if self.out_pos > self.out.len() / 2 {
            // Keep appends cheap: move the unwritten tail to the front once
            // it is the smaller part.
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.phase, Phase::Connected(_))
    }
}
