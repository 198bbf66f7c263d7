//! What can go wrong for an in-process client.

use std::fmt;

use crate::topic::TopicError;

/// Why an in-process client's operation failed. None of these closes the
/// client: after an invalid topic or filter it keeps working.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// The topic name cannot be published to (empty, wildcard, too long...).
    InvalidTopic {
        /// The topic given.
        topic: String,
        /// What is wrong with it.
        reason: TopicError,
    },
    /// The topic filter cannot be subscribed to (misplaced wildcard, too
    /// long...).
    InvalidFilter {
        /// The filter given.
        filter: String,
        /// What is wrong with it.
        reason: TopicError,
    },
    /// A property of the message cannot be sent: the broker would refuse
    /// the packet (a string with U+0000 or a control character, a value
    /// longer than 65,535 bytes, a Response Topic that is not a topic name).
    InvalidProperty {
        /// Which property.
        property: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The message would make a PUBLISH packet larger than `max_packet_size`.
    TooLarge {
        /// The packet's size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The broker refused the subscription with this SUBACK return code
    /// (0x80: e.g. `max_subscriptions_per_session` reached).
    SubscriptionRefused {
        /// The SUBACK return code.
        code: u8,
    },
    /// The broker refused the subscription's connection with this CONNACK
    /// return code (see [`BrokerError::Refused`](crate::BrokerError::Refused)).
    Refused {
        /// The CONNACK return code.
        code: u8,
    },
    /// Too many QoS 2 messages of this client wait for the broker to
    /// complete them (its answers wait behind messages this process does
    /// not take); try again after taking messages.
    Busy,
    /// The broker closed this client's connection: another client connected
    /// with the same client id, or the broker is stopping.
    Disconnected,
    /// The broker is not running.
    NotRunning,
    /// The broker thread did not answer within the request timeout.
    Timeout,
    /// The thread for a callback could not be started.
    Thread(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::InvalidTopic { topic, reason } => {
                write!(f, "invalid topic name {topic:?}: {reason}")
            }
            ClientError::InvalidFilter { filter, reason } => {
                write!(f, "invalid topic filter {filter:?}: {reason}")
            }
            ClientError::InvalidProperty { property, reason } => {
                write!(f, "invalid {property}: {reason}")
            }
            ClientError::TooLarge { size, max } => write!(
                f,
                "message too large: a {size}-byte packet, max_packet_size is {max}"
            ),
            ClientError::SubscriptionRefused { code } => {
                write!(
                    f,
                    "the broker refused the subscription (SUBACK 0x{code:02x})"
                )
            }
            ClientError::Refused { code } => write!(
                f,
                "the broker refused the connection (CONNACK 0x{code:02x}: {})",
                connack_text(*code)
            ),
            ClientError::Busy => {
                f.write_str("too many QoS 2 messages awaiting completion; take messages first")
            }
            ClientError::Disconnected => f.write_str(
                "the broker closed this client's connection (client id taken over, or stopping)",
            ),
            ClientError::NotRunning => f.write_str("the broker is not running"),
            ClientError::Timeout => f.write_str("the broker did not answer in time"),
            ClientError::Thread(e) => write!(f, "cannot start the callback thread: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// A CONNACK return code in words.
pub(crate) fn connack_text(code: u8) -> &'static str {
    match code {
        0x84 => "unsupported protocol version",
        0x85 => "client identifier not valid",
        0x86 => "bad user name or password",
        0x87 => "not authorized",
        0x88 => "server unavailable",
        0x89 => "server busy",
        0x8C => "bad authentication method",
        0x97 => "quota exceeded",
        _ => "unknown",
    }
}
