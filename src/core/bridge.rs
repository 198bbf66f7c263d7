//! What the core offers bridges (see [`crate::bridge`]): a queue bound and
//! drop policy for one session, the figures of that session, and the
//! notification topics under `$SYS/broker/connection/`, which clients may
//! not publish on.

use std::time::Instant;

use super::Core;
use super::message::Incoming;
use super::session::QueuePolicy;
use crate::codec::QoS;

/// Where bridge notifications live; nothing else may be published through
/// [`Core::publish_connection_state`].
const CONNECTION_TOPICS: &str = "$SYS/broker/connection/";

/// The store-and-forward figures of one session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionFigures {
    /// A connection is attached.
    pub connected: bool,
    /// Messages waiting in the queue.
    pub queued: usize,
    /// Topic, payload and property bytes waiting in the queue.
    pub queued_bytes: usize,
    /// QoS 1/2 messages sent and not yet acknowledged.
    pub inflight: usize,
    /// Messages lost to the queue bound since the session began.
    pub dropped: u64,
}

impl Core {
    /// Gives the session of `client_id` (now, or when it is created) its
    /// own queue bound and drop policy instead of the broker-wide
    /// `max_queued_messages` / `max_queued_bytes`.
    pub fn set_queue_policy(&mut self, client_id: &str, policy: QueuePolicy) {
        self.policies.insert(client_id.into(), policy);
        if let Some(sid) = self.by_client_id.get(client_id, &self.sessions) {
            if let Some(s) = self.sessions.get_mut(sid.0) {
                s.policy = Some(policy);
            }
        }
    }

    /// The queue figures of the session of `client_id`, if it exists.
    pub fn session_figures(&self, client_id: &str) -> Option<SessionFigures> {
        let sid = self.by_client_id.get(client_id, &self.sessions)?;
        let s = self.sessions.get(sid.0)?;
        Some(SessionFigures {
            connected: s.conn.is_some(),
            queued: s.queue.len(),
            queued_bytes: s.queued_bytes,
            inflight: s.inflight.len(),
            dropped: s.dropped,
        })
    }

    /// Publishes `payload` retained at QoS 1 on `topic`, which must be under
    /// `$SYS/broker/connection/` (bridge state and figures, published by the
    /// broker itself). Returns `false`, publishing nothing, for any other
    /// topic.
    pub fn publish_connection_state(&mut self, topic: &str, payload: &[u8], now: Instant) -> bool {
        let msg = Incoming {
            topic,
            payload,
            qos: QoS::AtLeastOnce,
            retain: true,
            props: &[],
            expiry: None,
        };
        self.publish_own(CONNECTION_TOPICS, &msg, now)
    }

    /// Routes `msg`, a message of the broker's own, when its topic is a
    /// topic below `prefix` without wildcards; returns `false`, routing
    /// nothing, otherwise.
    pub(super) fn publish_own(&mut self, prefix: &str, msg: &Incoming<'_>, now: Instant) -> bool {
        let Some(rest) = msg.topic.strip_prefix(prefix) else {
            return false;
        };
        if rest.is_empty() || rest.contains(['+', '#']) {
            return false;
        }
        // From no client connection: nobody to pause.
        let _routed = self.route(msg, None, now);
        true
    }
}
