//! The memory budget (`memory_limit`, docs/LIMITS.md "The memory budget"):
//! one accountant for what peers can make the broker hold.
//!
//! Three things are counted, each where it is made and where it goes:
//!
//! * frames being received: once a frame's fixed header is in, its whole
//!   announced size is reserved for the connection until the frame is
//!   decoded or the connection closes (the event loop's inbox holds at
//!   most that frame);
//! * kept messages: a [`Message`](super::message::Message) holds a
//!   [`Charge`](super::charge::Charge) from its creation to its drop, so
//!   a message shared by many queues, in-flight windows and the retained
//!   store counts once;
//! * output buffers: what a connection has to write, synced when the
//!   connection is marked for writing and released as it is written.
//!
//! What happens at the budget. Anything larger than [`SMALL_FRAME`] must
//! fit in the budget less its last eighth (the reserve); small things may
//! use the reserve too. So large packets are refused first, and
//! acknowledgements, pings and a sensor's small messages keep flowing
//! while the budget is nearly full of large ones, until the reserve is
//! used up too.
//!
//! * A frame whose announced size does not fit closes its connection with
//!   DISCONNECT 0x97 quota exceeded (5.0), decided from the fixed header,
//!   before the body is buffered. Frames up to [`SMALL_FRAME`] are never
//!   refused (only counted): what holds the budget must be released by
//!   acknowledgements.
//! * A QoS 1/2 PUBLISH (or a retained one) whose message does not fit
//!   closes its connection the same way, before PUBACK/PUBREC: nothing
//!   acknowledged is lost, the client sends it again.
//! * A QoS 0 delivery that does not fit is dropped and counted.
//! * A queued message waits in its queue until the budget has room again
//!   (or until no output at all is pending: one frame always may go, so
//!   the messages that fill the budget can still be delivered and freed).
//!
//! Connections the caller feeds whole frames (in-process clients, a
//! bridge's local side) are not refused: their frames are their own
//! memory, and their queues have bounds of their own.

use std::collections::HashMap;
use std::time::Instant;

use super::charge::{MESSAGE_OVERHEAD, Meter};
use super::ids::{ConnId, SessionId};
use super::{Core, Input};
use crate::codec::{self, PubRespKind, Publish, QoS};

/// Frames up to this size are never refused for the budget (only counted):
/// acknowledgements, pings and the small PUBLISH of a sensor keep flowing
/// when the budget is full, so that what holds it can be released.
pub(crate) const SMALL_FRAME: usize = 4096;

/// MQTT 5.0 reason code 0x97, quota exceeded.
const RC_QUOTA_EXCEEDED: u8 = 0x97;

/// MQTT 5.0 reason code 0x83, implementation specific error: the PUBACK or
/// PUBREC of a payload over `message_size_limit`, as mosquitto.conf(5)
/// documents it. (Mosquitto 2.0's code sends 0x95 packet too large, which
/// MQTT 5.0 does not allow in PUBACK or PUBREC [MQTT-3.4.2.1]; clients
/// that check reason codes refuse it.)
const RC_IMPLEMENTATION_SPECIFIC: u8 = 0x83;

/// The accountant (see the module documentation).
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    /// Kept messages.
    pub meter: Meter,
    /// Output buffers, as last synced.
    output: usize,
    /// Frames being received, by connection.
    partial: HashMap<ConnId, usize>,
    partial_bytes: usize,
    /// Sessions whose queued messages wait for room.
    waiting: Vec<SessionId>,
}

impl Budget {
    /// A budget of `limit` bytes, nothing used.
    pub fn new(limit: usize) -> Budget {
        Budget {
            limit,
            meter: Meter::default(),
            output: 0,
            partial: HashMap::new(),
            partial_bytes: 0,
            waiting: Vec::new(),
        }
    }

    /// Bytes counted now.
    pub fn used(&self) -> usize {
        self.meter
            .get()
            .saturating_add(self.output)
            .saturating_add(self.partial_bytes)
    }

    /// Whether `n` more bytes fit: in the whole budget for up to
    /// [`SMALL_FRAME`] bytes, in the budget less its reserve (an eighth)
    /// for more.
    pub fn fits(&self, n: usize) -> bool {
        self.used().saturating_add(n) <= self.cap(n)
    }

    /// What the budget holds for a request of `n` bytes (see `fits`).
    fn cap(&self, n: usize) -> usize {
        if n > SMALL_FRAME {
            self.limit - self.limit / 8
        } else {
            self.limit
        }
    }

    /// Whether frame `size` of connection `id` may be received: always when
    /// it is reserved already or small, else when it fits (its own earlier
    /// reservation set aside). Reserves it when it may.
    pub fn admit_frame(&mut self, id: ConnId, size: usize) -> bool {
        let own = self.partial.get(&id).copied().unwrap_or(0);
        if own == size {
            return true;
        }
        let others = self.used().saturating_sub(own);
        if size > SMALL_FRAME && others.saturating_add(size) > self.cap(size) {
            return false;
        }
        self.hold_frame(id, size);
        true
    }

    /// Reserves `size` bytes for connection `id`'s next frame, whatever the
    /// room (a whole frame the core left in the caller's inbox).
    pub fn hold_frame(&mut self, id: ConnId, size: usize) {
        let old = self.partial.insert(id, size).unwrap_or(0);
        self.partial_bytes = self.partial_bytes.saturating_sub(old).saturating_add(size);
    }

    /// Connection `id`'s frame is decoded, or the connection is gone.
    pub fn release_frame(&mut self, id: ConnId) {
        if self.partial.is_empty() {
            return;
        }
        if let Some(n) = self.partial.remove(&id) {
            self.partial_bytes = self.partial_bytes.saturating_sub(n);
        }
    }

    /// `n` more bytes wait in some output buffer.
    pub fn charge_output(&mut self, n: usize) {
        self.output = self.output.saturating_add(n);
    }

    /// `n` bytes of output were written or thrown away.
    pub fn release_output(&mut self, n: usize) {
        self.output = self.output.saturating_sub(n);
    }

    /// Whether a queued message of `cost` bytes may be encoded into an
    /// output buffer that holds `uncharged` bytes not counted yet: when it
    /// fits, or when no output is pending anywhere (one frame may always
    /// go, so a full budget still drains).
    pub fn may_send(&self, cost: usize, uncharged: usize) -> bool {
        self.fits(cost.saturating_add(uncharged)) || (self.output == 0 && uncharged == 0)
    }

    /// Session `sid` has queued messages that wait for room.
    pub fn wait(&mut self, sid: SessionId) {
        if !self.waiting.contains(&sid) {
            self.waiting.push(sid);
        }
    }

    /// The waiting sessions, when there is room for them to try again.
    fn take_waiting(&mut self) -> Vec<SessionId> {
        if self.waiting.is_empty() || (self.used() >= self.limit && self.output > 0) {
            return Vec::new();
        }
        std::mem::take(&mut self.waiting)
    }
}

/// The budget's key for frames from the remote of the bridge whose local
/// connection is `local`: connection ids are slab keys, small numbers, so
/// counting down from the top never meets one.
fn remote_key(local: ConnId) -> ConnId {
    ConnId(usize::MAX - local.0)
}

impl Core {
    /// Frame `rest` of connection `id` is incomplete: reserves its size
    /// once its fixed header is in. `Err`: it does not fit, and the
    /// connection is to be closed (5.0: DISCONNECT 0x97).
    pub(super) fn receive_partial(&mut self, id: ConnId, rest: &[u8]) -> Result<(), super::Close> {
        // The decoder checked the size against max_packet_size already.
        let Ok(Some(size)) = codec::frame_len(rest, usize::MAX) else {
            return Ok(());
        };
        if self.budget.admit_frame(id, size) {
            return Ok(());
        }
        self.stats.budget_refused += 1;
        let why = format!(
            "a {size}-byte packet does not fit in the memory budget ({} of memory_limit {} bytes in use)",
            self.budget.used(),
            self.limits.memory_limit
        );
        Err(super::Close {
            code: Some(RC_QUOTA_EXCEEDED),
            why: why.into(),
        })
    }

    /// A bridge's remote has sent the fixed header of a `size`-byte frame
    /// that is not complete yet: reserves it like a client's partial frame
    /// (see [`Core::receive_partial`]). `false`: it does not fit in the
    /// budget, and the bridge is to drop the remote connection. `local` is
    /// the bridge's connection in the core; the reservation is kept apart
    /// from that connection's own.
    pub(crate) fn admit_remote_frame(&mut self, local: ConnId, size: usize) -> bool {
        if self.budget.admit_frame(remote_key(local), size) {
            return true;
        }
        self.stats.budget_refused += 1;
        false
    }

    /// The remote's frame is complete, or the remote connection is gone.
    pub(crate) fn release_remote_frame(&mut self, local: ConnId) {
        self.budget.release_frame(remote_key(local));
    }

    /// The budget and `message_size_limit` for a checked PUBLISH on `topic`
    /// from connection `id`, before it is acknowledged. `Ok(None)`: go on.
    /// `Ok(Some(_))`: dealt with (a payload over `message_size_limit` is
    /// dropped, its QoS flow completed, as Mosquitto does). `Err`: close
    /// (a QoS 1/2 message the budget cannot hold; not acknowledged, so
    /// not lost: the client sends it again).
    pub(super) fn publish_budget(
        &mut self,
        id: ConnId,
        p: &Publish<'_>,
        topic: &str,
    ) -> Result<Option<Input>, super::Close> {
        let trusted = self.conn(id).is_none_or(|c| c.trusted);
        if p.payload.len() > self.limits.message_size_limit {
            log::debug!(
                "client {}: PUBLISH to '{topic}' dropped: {}-byte payload over message_size_limit",
                self.label(id),
                p.payload.len()
            );
            self.stats.publish_dropped += 1;
            let v5 = self.conn(id).is_some_and(|c| c.protocol.is_v5());
            let reason = if v5 { RC_IMPLEMENTATION_SPECIFIC } else { 0 };
            match (p.qos, p.packet_id) {
                (QoS::AtLeastOnce, Some(pid)) => {
                    self.send_pubresp(id, PubRespKind::PubAck, pid, reason);
                }
                (QoS::ExactlyOnce, Some(pid)) => {
                    self.send_pubresp(id, PubRespKind::PubRec, pid, reason);
                }
                _ => {}
            }
            return Ok(Some(Input::Taken));
        }
        let kept = p.qos != QoS::AtMostOnce || p.retain;
        let cost = topic.len() + p.payload.len() + p.properties.raw().len() + MESSAGE_OVERHEAD;
        if trusted || !kept || self.budget.fits(cost) || self.qos2_resend(id, p) {
            return Ok(None);
        }
        self.stats.budget_refused += 1;
        log::warn!(
            "client {}: a {cost}-byte message to '{topic}' does not fit in the memory budget \
             ({} of memory_limit {} bytes in use)",
            self.label(id),
            self.budget.used(),
            self.limits.memory_limit
        );
        Err(super::Close::new(RC_QUOTA_EXCEEDED, "memory budget"))
    }

    /// Whether `p` is a QoS 2 PUBLISH received before and not released
    /// yet: only PUBREC answers it, nothing is kept.
    fn qos2_resend(&self, id: ConnId, p: &Publish<'_>) -> bool {
        let (QoS::ExactlyOnce, Some(pid)) = (p.qos, p.packet_id) else {
            return false;
        };
        let Some(super::conn::Phase::Connected(sid)) = self.conn(id).map(|c| c.phase) else {
            return false;
        };
        self.sessions
            .get(sid.0)
            .is_some_and(|s| s.incoming_qos2.contains(&pid.get()))
    }

    /// Gives sessions whose messages waited for the budget another try,
    /// when it has room.
    pub(super) fn pump_waiting(&mut self, now: Instant) {
        for sid in self.budget.take_waiting() {
            self.pump(sid, now);
        }
    }

    /// Bytes the budget counts now (for `Stats` and tests).
    pub(super) fn budget_used(&self) -> usize {
        self.budget.used()
    }
}

#[cfg(test)]
mod tests {
    use super::super::charge::Charge;
    use super::*;

    #[test]
    fn a_charge_counts_until_it_is_dropped() {
        let b = Budget::new(1000);
        let a = Charge::new(&b.meter, 300);
        let c = Charge::new(&b.meter, 200);
        assert_eq!(b.used(), 500);
        drop(a);
        assert_eq!(b.used(), 200);
        drop(c);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn large_frames_are_admitted_only_while_they_fit() {
        let mut b = Budget::new(100_000);
        assert!(b.admit_frame(ConnId(1), 60_000));
        // Its own reservation is not counted twice as more bytes arrive.
        assert!(b.admit_frame(ConnId(1), 60_000));
        assert_eq!(b.used(), 60_000);
        // Large requests end at 87,500 (an eighth is kept in reserve).
        assert!(!b.admit_frame(ConnId(2), 30_000));
        assert!(b.admit_frame(ConnId(2), 27_500));
        // Small frames always pass, counted, even past the budget.
        for i in 3..10 {
            assert!(b.admit_frame(ConnId(i), SMALL_FRAME));
        }
        assert_eq!(b.used(), 87_500 + 7 * SMALL_FRAME);
        for i in 1..10 {
            b.release_frame(ConnId(i));
        }
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn large_requests_leave_a_reserve_for_small_ones() {
        let b = Budget::new(80_000);
        let m = Charge::new(&b.meter, 60_000);
        // Large requests end at 70,000 ...
        assert!(!b.fits(10_001));
        assert!(b.fits(10_000));
        // ... small ones may use the reserve, up to the whole budget.
        let s = Charge::new(&b.meter, 20_000 - SMALL_FRAME);
        assert!(!b.fits(SMALL_FRAME + 1));
        assert!(b.fits(SMALL_FRAME));
        drop((m, s));
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn output_and_messages_share_the_budget() {
        let mut b = Budget::new(80_000);
        let m = Charge::new(&b.meter, 40_000);
        b.charge_output(20_000);
        assert!(b.fits(10_000), "60,000 + 10,000 <= 70,000");
        assert!(!b.fits(10_001));
        assert!(!b.admit_frame(ConnId(0), 10_001));
        // A queued message waits while output is pending ...
        assert!(!b.may_send(40_000, 0));
        b.wait(SessionId(4));
        b.wait(SessionId(4));
        assert_eq!(b.take_waiting(), [SessionId(4)], "listed once");
        b.wait(SessionId(4));
        b.release_output(20_000);
        // ... and may go once no output is pending, even over the budget.
        assert!(b.may_send(40_000, 0));
        assert_eq!(b.take_waiting(), [SessionId(4)]);
        drop(m);
        assert_eq!(b.used(), 0);
    }
}
