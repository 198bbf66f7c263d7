//! Per-connection state: where the connection is in its life, its keepalive,
//! its will, and the bytes waiting to be written to it.

use std::time::{Duration, Instant};

use crate::codec::ProtocolVersion;

use super::alias::OutAliases;
use super::ids::SessionId;
use super::message::WillMsg;

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

/// The output of a connection while it has some: the frames waiting to be
/// written and the holds on them. Boxed and dropped once written, so an
/// idle connection pays one pointer for it.
#[derive(Debug, Default)]
struct Output {
    /// Encoded frames waiting to be written, from `pos` on.
    buf: Vec<u8>,
    pos: usize,
    /// Bytes written since this output was made. Positions (marks,
    /// [`Conn::output_end`]) count from there: they only live while some
    /// output is unwritten or held, so a new `Output` may start again at 0.
    consumed: u64,
    /// Output held until records are durable (persistence with sync): each
    /// mark is a stream offset (counted like `consumed`) and the
    /// number of records that must be on disk before the bytes from there
    /// on leave.
    marks: std::collections::VecDeque<(u64, u64)>,
    /// Unwritten bytes the memory budget counts (at most the unwritten
    /// bytes; see [`Conn::charge_output`]).
    charged: usize,
}

/// What few connections have (5.0 topic aliases, a transport identity),
/// or have only for a while (the peer label until CONNECT).
#[derive(Debug, Default)]
struct Rare {
    aliases: Vec<Option<Box<str>>>,
    /// Aliases the broker gives the client (see `alias.rs`).
    out_aliases: Option<OutAliases>,
    identity: Option<Box<str>>,
    /// Text for log lines until CONNECT names the client: the peer address
    /// given at open. Afterwards the core names the client by its id.
    label: Option<Box<str>>,
    /// The listener it came in on, when that listener has options of its
    /// own (see `Core::set_listener`).
    listener: Option<u16>,
}

/// One connection as the core sees it. Kept small (88 bytes on 64-bit
/// targets, checked by a test): the core holds one per connected client,
/// and what most connections never use is boxed (docs/LIMITS.md,
/// "Per-connection accounting").
#[derive(Debug)]
pub(crate) struct Conn {
    pub phase: Phase,
    /// When the connection was opened while CONNECT is awaited, then when
    /// its last packet arrived.
    pub last_rx: Instant,
    /// Input paused until then because a connected subscriber of what it
    /// publishes is falling behind (see `Core::throttle`).
    pub throttled_until: Option<Instant>,
    /// `None` while nothing waits to be written.
    out: Option<Box<Output>>,
    pub will: Option<WillMsg>,
    rare: Option<Box<Rare>>,
    /// Keepalive in seconds as the client asked; zero turns it off
    /// [MQTT-3.1.2-10].
    pub keep_alive: u16,
    pub protocol: ProtocolVersion,
    /// The application's own connection (see `Core::trust`).
    pub trusted: bool,
    /// 5.0: whether error replies carry a Reason String: the client asked
    /// for them (Request Problem Information 1), or `reason_strings` is on
    /// and it did not refuse them (0) [MQTT-3.1.2-29].
    pub problem_info: bool,
    /// Already in the core's dirty list.
    pub dirty: bool,
    /// Already in the core's urgent list (output past `FLUSH_MARK`).
    pub urgent: bool,
    /// A 5.0 DISCONNECT told the client why it is being closed (see
    /// `Core::linger`).
    pub told: bool,
}

impl Conn {
    pub fn new(now: Instant, label: Box<str>) -> Conn {
        Conn {
            phase: Phase::AwaitConnect,
            last_rx: now,
            throttled_until: None,
            out: None,
            will: None,
            rare: Some(Box::new(Rare {
                label: Some(label),
                ..Rare::default()
            })),
            keep_alive: 0,
            protocol: ProtocolVersion::V311,
            trusted: false,
            problem_info: true,
            dirty: false,
            urgent: false,
            told: false,
        }
    }

    /// The peer label given at open, until CONNECT (see `Rare::label`).
    pub fn label(&self) -> Option<&str> {
        self.rare.as_ref().and_then(|r| r.label.as_deref())
    }

    /// Takes the label away; the rare part goes too when nothing else is
    /// in it.
    pub fn take_label(&mut self) -> Option<Box<str>> {
        let rare = self.rare.as_mut()?;
        let label = rare.label.take();
        if rare.aliases.is_empty()
            && rare.identity.is_none()
            && rare.listener.is_none()
            && rare.out_aliases.is_none()
        {
            self.rare = None;
        }
        label
    }

    /// The listener it came in on, if it has options of its own.
    pub fn listener(&self) -> Option<u16> {
        self.rare.as_ref().and_then(|r| r.listener)
    }

    pub fn set_listener(&mut self, index: u16) {
        self.rare.get_or_insert_default().listener = Some(index);
    }

    pub fn set_label(&mut self, label: Box<str>) {
        self.rare.get_or_insert_default().label = Some(label);
    }

    /// User name proved by the transport (see `Core::set_identity`).
    pub fn identity(&self) -> Option<&str> {
        self.rare.as_ref().and_then(|r| r.identity.as_deref())
    }

    pub fn set_identity(&mut self, name: Box<str>) {
        self.rare.get_or_insert_default().identity = Some(name);
    }

    /// 5.0 topic aliases the client has set, indexed by alias - 1. Never
    /// longer than the Topic Alias Maximum the broker announced.
    pub fn aliases(&self) -> &[Option<Box<str>>] {
        self.rare.as_ref().map_or(&[], |r| &r.aliases)
    }

    pub fn aliases_mut(&mut self) -> &mut Vec<Option<Box<str>>> {
        &mut self.rare.get_or_insert_default().aliases
    }

    /// Sets the aliases the broker may give the client (at CONNECT). A
    /// connection without them keeps no rare part for them.
    pub fn set_out_aliases(&mut self, aliases: Option<OutAliases>) {
        if aliases.is_some() || self.rare.is_some() {
            self.rare.get_or_insert_default().out_aliases = aliases;
        }
    }

    /// The buffer to append encoded frames to, and the aliases the broker
    /// gives the client, if it takes any.
    pub fn out_buf_and_aliases(&mut self) -> (&mut Vec<u8>, Option<&mut OutAliases>) {
        let aliases = self.rare.as_mut().and_then(|r| r.out_aliases.as_mut());
        (&mut self.out.get_or_insert_default().buf, aliases)
    }

    /// The instant after which the connection is to be closed for silence:
    /// 1.5 times the keepalive after the last packet [MQTT-3.1.2-24], or the
    /// connect timeout while CONNECT is awaited.
    pub fn deadline(&self, connect_timeout: Duration) -> Option<Instant> {
        match self.phase {
            Phase::AwaitConnect => Some(self.last_rx + connect_timeout),
            Phase::Connected(_) if self.keep_alive != 0 => {
                let keep_alive = Duration::from_secs(u64::from(self.keep_alive));
                Some(self.last_rx + keep_alive + keep_alive / 2)
            }
            _ => None,
        }
    }

    /// Bytes that may be written now: those waiting, up to the first one
    /// held for records not yet durable.
    pub fn pending_output(&self) -> &[u8] {
        let Some(out) = &self.out else {
            return &[];
        };
        let all = out.buf.get(out.pos..).unwrap_or(&[]);
        match out.marks.front() {
            Some(&(pos, _)) => {
                let free = usize::try_from(pos.saturating_sub(out.consumed)).unwrap_or(usize::MAX);
                all.get(..free).unwrap_or(all)
            }
            None => all,
        }
    }

    fn output(&mut self) -> &mut Output {
        self.out.get_or_insert_default()
    }

    /// What is appended from now on waits until `records` records are
    /// durable. `true` when the connection had no hold before.
    pub fn hold(&mut self, records: u64) -> bool {
        let pos = self.output_end();
        let marks = &mut self.output().marks;
        let first = marks.is_empty();
        match marks.back_mut() {
            Some(last) if last.0 == pos => last.1 = last.1.max(records),
            Some(last) if last.1 >= records => {}
            _ => marks.push_back((pos, records)),
        }
        first
    }

    /// Where output appended from now on starts, counted over the
    /// connection's life (for [`Conn::hold_from`]).
    pub fn output_end(&self) -> u64 {
        self.out
            .as_ref()
            .map_or(0, |o| o.consumed + (o.buf.len() - o.pos) as u64)
    }

    /// Like [`Conn::hold`], for the output from `pos` (an earlier
    /// [`Conn::output_end`] whose bytes are not written yet) on: an answer
    /// queued before the work whose records it must wait for.
    pub fn hold_from(&mut self, pos: u64, records: u64) -> bool {
        let marks = &mut self.output().marks;
        let first = marks.is_empty();
        let at = marks.iter().position(|m| m.0 > pos).unwrap_or(marks.len());
        let covered = at > 0 && marks.get(at - 1).is_some_and(|m| m.1 >= records);
        if !covered {
            match marks.get_mut(at) {
                Some(m) if m.0 == pos => m.1 = m.1.max(records),
                _ => marks.insert(at, (pos, records)),
            }
        }
        first && !covered
    }

    /// Some output waits for records to be durable.
    pub fn has_held_output(&self) -> bool {
        self.out.as_ref().is_some_and(|o| !o.marks.is_empty())
    }

    /// Records up to `durable` are on disk: lifts the holds they covered.
    /// `true` when some output was released; `still` tells whether holds
    /// remain.
    pub fn release_held(&mut self, durable: u64) -> (bool, bool) {
        let Some(out) = &mut self.out else {
            return (false, false);
        };
        let mut released = false;
        while out.marks.front().is_some_and(|m| m.1 <= durable) {
            out.marks.pop_front();
            released = true;
        }
        let still = !out.marks.is_empty();
        if !still && out.pos == out.buf.len() {
            self.out = None;
        }
        (released, still)
    }

    /// Number of bytes waiting to be written.
    pub fn output_len(&self) -> usize {
        self.out.as_ref().map_or(0, |o| o.buf.len() - o.pos)
    }

    /// The buffer to append encoded frames to.
    pub fn out_buf(&mut self) -> &mut Vec<u8> {
        &mut self.output().buf
    }

    /// Counts the unwritten bytes not counted yet for the memory budget;
    /// returns how many that is.
    pub fn charge_output(&mut self) -> usize {
        let Some(out) = &mut self.out else {
            return 0;
        };
        let pending = out.buf.len() - out.pos;
        let new = pending.saturating_sub(out.charged);
        out.charged = out.charged.max(pending);
        new
    }

    /// Unwritten bytes not counted for the memory budget yet.
    pub fn uncharged_output(&self) -> usize {
        self.out
            .as_ref()
            .map_or(0, |o| (o.buf.len() - o.pos).saturating_sub(o.charged))
    }

    /// Bytes the memory budget counts for this connection's output.
    pub fn output_charge(&self) -> usize {
        self.out.as_ref().map_or(0, |o| o.charged)
    }

    /// `n` bytes of the pending output were written. Written out and with
    /// no holds, the output is given back: an idle connection keeps no
    /// buffer. Returns the bytes the memory budget no longer counts.
    pub fn consume_output(&mut self, n: usize) -> usize {
        let Some(out) = &mut self.out else {
            return 0;
        };
        let before = out.pos;
        out.pos = (out.pos + n).min(out.buf.len());
        let written = out.pos - before;
        out.consumed += written as u64;
        let mut released = written.min(out.charged);
        out.charged -= released;
        if out.pos == out.buf.len() {
            // Nothing unwritten: nothing counted either.
            released += std::mem::take(&mut out.charged);
            if out.marks.is_empty() {
                self.out = None;
            } else {
                out.pos = 0;
                out.buf = Vec::new();
            }
        } else if out.pos > out.buf.len() / 2 {
            // Keep appends cheap: move the unwritten tail to the front once
            // it is the smaller part.
            out.buf.drain(..out.pos);
            out.pos = 0;
        }
        released
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.phase, Phase::Connected(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::QoS;
    use crate::core::message::WillParts;

    /// The per-connection accounting of docs/LIMITS.md counts on it.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn conn_stays_small() {
        assert!(std::mem::size_of::<Option<Conn>>() <= 88);
    }

    #[test]
    fn will_parts_round_trip() {
        for (expiry, props) in [(None, &b""[..]), (Some(7), &[0x01, 0x01][..])] {
            let w = WillMsg::new(&WillParts {
                topic: "shellies/shellybutton1-A4CF12F45A10/online",
                payload: b"false",
                qos: QoS::AtLeastOnce,
                retain: true,
                props,
                expiry,
                delay: 30,
            });
            assert_eq!(w.topic(), "shellies/shellybutton1-A4CF12F45A10/online");
            assert_eq!(w.payload(), b"false");
            assert_eq!(w.props(), props);
            assert_eq!(
                (w.qos(), w.retain(), w.expiry(), w.delay()),
                (QoS::AtLeastOnce, true, expiry, 30)
            );
        }
    }

    #[test]
    fn drained_output_is_given_back() {
        let mut c = Conn::new(Instant::now(), "peer".into());
        c.out_buf().extend_from_slice(&[0x20, 2, 0, 0]);
        assert_eq!(c.pending_output(), &[0x20, 2, 0, 0]);
        c.consume_output(1);
        assert_eq!(c.output_len(), 3);
        c.consume_output(3);
        assert!(c.out.is_none());
        // Nothing is unwritten or held: positions start again.
        assert_eq!(c.output_end(), 0);
        // Held output stays until the records are durable.
        c.hold(7);
        c.out_buf().push(0xD0);
        c.out_buf().push(0);
        assert!(c.pending_output().is_empty());
        assert_eq!(c.release_held(7), (true, false));
        assert_eq!(c.pending_output(), &[0xD0, 0]);
        assert_eq!(c.output_end(), 2);
        c.consume_output(2);
        assert!(c.out.is_none());
    }
}
