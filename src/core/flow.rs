//! Flow control between publishers and the subscribers they feed.
//!
//! A QoS 1/2 message is acknowledged to its publisher once it is routed, so
//! a subscriber's queue is the only place where an acknowledged message can
//! be lost. The policy (README "QoS 1/2 under load", docs/LIMITS.md):
//!
//! * A connected subscriber that keeps making progress
//!   ([`Session::last_progress`]: it acknowledges, or it only just began to
//!   owe) never loses a message to its queue bound. When its queue passes
//!   half the bound, the publisher whose message went there is paused (the
//!   core takes no more of its input, [`Core::wants_input`], and the event
//!   loop stops reading its socket) until the queue drains to a quarter.
//!   A PUBLISH that would find the queue full is not taken at all:
//!   [`Core::handle_data`] leaves it unconsumed, and the caller hands it in
//!   again once the publisher is resumed.
//! * A subscriber that owes acknowledgements and made no progress for
//!   `stuck_timeout` is stuck. Publishers paused for it go on, and its queue
//!   bound drops what does not fit: counted per session
//!   ([`super::Stats::dropped_per_client`], `$SYS/broker/client/ID/dropped`),
//!   logged once when the episode starts and once when it ends.
//! * An offline session, a bridge's session (`QueuePolicy::never_throttle`)
//!   and a publisher's own subscriptions pause nobody.
//! * Connections the caller feeds whole packets (the in-process client, a
//!   bridge's local side: the trusted ones) are never refused a packet;
//!   they can only be paused through `wants_input` (a bridge reads its
//!   remote no further; the in-process client is not paused, and what it
//!   publishes past a full queue is dropped and counted).
//!
//! A paused connection is not read at all, its acknowledgements included,
//! so a paused publisher that also subscribes makes no progress meanwhile.
//! Two clients publishing to each other's full queues pause each other,
//! read no acknowledgements, and are both stuck after `stuck_timeout`: then
//! drops resolve it. Counting a paused subscriber as alive instead would
//! turn that into a deadlock.

use std::time::Instant;

use slab::Slab;

use super::session::{QueuePolicy, Session, SessionId};
use super::verdict::EventKind;
use super::{ConnId, Core, Delivery};
use crate::codec::QoS;

/// Whether `s` owes acknowledgements and has made no progress for
/// `timeout`.
fn stuck(s: &Session, timeout: std::time::Duration, now: Instant) -> bool {
    let owes = !s.inflight.is_empty() || !s.queue.is_empty();
    owes && s
        .last_progress
        .is_none_or(|t| now.saturating_duration_since(t) >= timeout)
}

/// Queue bounds of `s`: its own policy's or the broker-wide ones.
fn bounds(s: &Session, limits: &crate::Limits) -> QueuePolicy {
    s.policy.unwrap_or_else(|| QueuePolicy::from_limits(limits))
}

/// Whether session `sid` holds up the publishers that feed it: it is
/// connected, may slow others down and is not stuck. `Some` gives the
/// instant it would become stuck without further progress.
fn holds_until(
    sessions: &Slab<Session>,
    limits: &crate::Limits,
    sid: SessionId,
    now: Instant,
) -> Option<Instant> {
    let s = sessions.get(sid.0)?;
    let timeout = limits.stuck_timeout;
    if s.conn.is_none() || bounds(s, limits).never_throttle || stuck(s, timeout, now) {
        return None;
    }
    Some(s.last_progress.map_or(now, |t| t + timeout))
}

impl Delivery<'_> {
    /// Whether session `sid`'s queue passed half its bound (the mark at
    /// which publishers feeding it are paused).
    pub(super) fn queue_pressed(&self, sid: SessionId, now: Instant) -> bool {
        let Some(s) = self.sessions.get(sid.0) else {
            return false;
        };
        let b = bounds(s, self.limits);
        (s.queue.len() * 2 >= b.max_messages || s.queued_bytes * 2 >= b.max_bytes)
            && holds_until(self.sessions, self.limits, sid, now).is_some()
    }

    /// The connection side of `Core::release`: `id` is no longer in the
    /// list.
    #[inline(always)]
    pub(super) fn unpause(&mut self, id: ConnId, now: Instant) {
        let timeout = self.limits.connect_timeout;
        if let Some(c) = self.conns.get_mut(id.0).and_then(Option::as_mut) {
            if c.throttled_until.take().is_some() {
                c.last_rx = c.last_rx.max(now);
                let d = c.deadline(timeout);
                self.resumed.push_back(id);
                self.note_deadline(d);
            }
        }
    }

    /// Lifts every pause made for subscriber `sid`, in the order they were
    /// made (one pass: hundreds of publishers may wait for one subscriber).
    // Inlined into `Core`'s wrapper too, so that it builds no view.
    #[inline(always)]
    pub(super) fn release_for(&mut self, sid: SessionId, now: Instant) {
        if !self.throttled.iter().any(|&(_, by)| by == sid) {
            return;
        }
        let mut waiting = Vec::new();
        self.throttled.retain(|&(id, by)| {
            if by == sid {
                waiting.push(id);
            }
            by != sid
        });
        for id in waiting {
            self.unpause(id, now);
        }
    }

    /// A message for session `sid` was dropped at its queue bound: counted,
    /// and logged once per episode.
    pub(super) fn note_dropped(&mut self, sid: SessionId, now: Instant) {
        self.stats.publish_dropped += 1;
        let timeout = self.limits.stuck_timeout;
        let Some(s) = self.sessions.get_mut(sid.0) else {
            return;
        };
        s.dropped += 1;
        if !s.dropping {
            s.dropping = true;
            if self.hooks.is_some() {
                self.emit(EventKind::Dropped, sid, None, Some("queue full"));
            }
            let Some(s) = self.sessions.get_mut(sid.0) else {
                return;
            };
            let why = if s.conn.is_none() {
                "offline".to_owned()
            } else if stuck(s, timeout, now) {
                format!("no acknowledgement for {} s", timeout.as_secs())
            } else {
                "not slowing its publishers".to_owned()
            };
            log::warn!(
                "client '{}': queue full ({} messages, {} bytes; {why}): dropping QoS 1/2 messages for it until it acknowledges again",
                s.client_id,
                s.queue.len(),
                s.queued_bytes
            );
        }
    }
}

impl Core {
    /// See the free function: whether session `sid` holds up its
    /// publishers, and until when.
    fn holds_until(&self, sid: SessionId, now: Instant) -> Option<Instant> {
        holds_until(&self.sessions, &self.limits, sid, now)
    }

    /// Whether session `sid`'s queue drained to a quarter of its bound
    /// (where publishers paused for it go on).
    pub(super) fn queue_drained(&self, sid: SessionId) -> bool {
        self.sessions.get(sid.0).is_none_or(|s| {
            let b = bounds(s, &self.limits);
            s.queue.len() * 4 <= b.max_messages && s.queued_bytes * 4 <= b.max_bytes
        })
    }

    /// Pauses publisher `id` for subscriber `by` (see the module
    /// documentation), until `by` drains its queue, goes offline or is
    /// stuck. Nothing happens when `by` holds nobody up.
    pub(super) fn throttle(&mut self, id: ConnId, by: SessionId, now: Instant) {
        let Some(until) = self.holds_until(by, now) else {
            return;
        };
        let Some(c) = self.conn_mut(id) else { return };
        if c.throttled_until.is_none() {
            c.throttled_until = Some(until);
            self.throttled.push((id, by));
            self.note_deadline(Some(until));
        }
    }

    /// Lifts the pause of `id`. It was not read meanwhile (its keepalive
    /// is not checked while paused, see `sweep`): its keepalive counts
    /// from now.
    pub(super) fn release(&mut self, id: ConnId, now: Instant) {
        self.unpause(id, now);
        self.throttled.retain(|&(t, _)| t != id);
    }

    /// The connection side of `release`: `id` is no longer in the list.
    pub(super) fn unpause(&mut self, id: ConnId, now: Instant) {
        self.delivery().unpause(id, now);
    }

    /// Lifts every pause made for subscriber `sid` (see
    /// [`Delivery::release_for`]).
    pub(super) fn release_for(&mut self, sid: SessionId, now: Instant) {
        self.delivery().release_for(sid, now);
    }

    /// Connection `id` is gone: it waits for nobody any more.
    pub(super) fn forget_throttle(&mut self, id: ConnId) {
        self.throttled.retain(|&(t, _)| t != id);
    }

    /// The pause of `id` reached its deadline (the instant its subscriber
    /// would be stuck): extended if the subscriber made progress since and
    /// its queue is still not drained, lifted otherwise.
    pub(super) fn recheck_throttle(&mut self, id: ConnId, now: Instant) {
        let by = self
            .throttled
            .iter()
            .find(|&&(t, _)| t == id)
            .map(|&(_, by)| by);
        let until = by
            .filter(|&sid| !self.queue_drained(sid))
            .and_then(|sid| self.holds_until(sid, now))
            .filter(|&t| t > now);
        match (until, self.conn_mut(id)) {
            (Some(t), Some(c)) => {
                c.throttled_until = Some(t);
                self.note_deadline(Some(t));
            }
            _ => self.release(id, now),
        }
    }

    /// The subscriber, if any, whose full queue keeps a QoS `qos` message on
    /// `topic` costing `cost` bytes, from session `origin` on connection
    /// `id`, from being taken now. Only connections that can be handed the
    /// packet again are refused (not the trusted ones), and only while some
    /// publisher is paused already: a queue reaches its bound only past the
    /// half-way mark, where its publishers are paused.
    pub(super) fn publish_blocked(
        &self,
        id: ConnId,
        origin: SessionId,
        topic: &str,
        qos: QoS,
        cost: usize,
        now: Instant,
    ) -> Option<SessionId> {
        if qos == QoS::AtMostOnce || self.throttled.is_empty() {
            return None;
        }
        if self.conn(id).is_none_or(|c| c.trusted) {
            return None;
        }
        let full = |sid: SessionId| {
            sid != origin
                && self.sessions.get(sid.0).is_some_and(|s| {
                    let b = bounds(s, &self.limits);
                    // A message larger than the byte bound never fits:
                    // waiting would stall the publisher for good.
                    cost <= b.max_bytes
                        && b.max_messages > 0
                        && (s.queue.len() >= b.max_messages || s.queued_bytes + cost > b.max_bytes)
                })
                && self.holds_until(sid, now).is_some()
        };
        let mut blocked = None;
        self.router.trie.for_each_match(topic, |sid, entry| {
            if blocked.is_none() && entry.options.qos != QoS::AtMostOnce && full(sid) {
                blocked = Some(sid);
            }
        });
        if blocked.is_none() {
            self.router
                .shared
                .for_each_next_member(topic, &self.sessions, |sid, entry| {
                    if blocked.is_none() && entry.options.qos != QoS::AtMostOnce && full(sid) {
                        blocked = Some(sid);
                    }
                });
        }
        blocked
    }

    /// Session `sid` acknowledged something: it is making progress. Ends a
    /// drop episode, with a log line.
    pub(super) fn note_progress(&mut self, sid: SessionId, now: Instant) {
        let Some(s) = self.sessions.get_mut(sid.0) else {
            return;
        };
        s.last_progress = Some(now);
        if std::mem::take(&mut s.dropping) {
            log::warn!(
                "client '{}' acknowledges again; {} QoS 1/2 messages dropped for it in all",
                s.client_id,
                s.dropped
            );
        }
    }
}
