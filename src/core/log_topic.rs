//! `$SYS/broker/log/...`: the broker's own log lines as messages
//! (Mosquitto's `log_dest topic`). The event loop hands them over; see
//! `net/log_topic.rs` for how they get there.

use std::time::Instant;

use super::Core;
use super::message::Incoming;
use crate::codec::QoS;

/// Where log lines go; nothing else may be published through
/// [`Core::publish_log_line`].
const LOG_TOPICS: &str = "$SYS/broker/log/";

/// How long a log line waits for a subscriber that is offline, as in
/// Mosquitto (its Message Expiry Interval).
const LOG_EXPIRY_SECS: u32 = 20;

impl Core {
    /// Publishes the log line `payload` on `topic`, which must be under
    /// `$SYS/broker/log/`, as Mosquitto does: QoS 2, not retained,
    /// expiring after 20 seconds. Returns `false`, publishing nothing, for
    /// any other topic.
    pub fn publish_log_line(&mut self, topic: &str, payload: &[u8], now: Instant) -> bool {
        let msg = Incoming {
            topic,
            payload,
            qos: QoS::ExactlyOnce,
            retain: false,
            props: &[],
            expiry: Some(LOG_EXPIRY_SECS),
        };
        self.publish_own(LOG_TOPICS, &msg, now)
    }
}
