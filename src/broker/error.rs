//! The embedding API's errors.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use crate::config::ConfigError;
use crate::topic::TopicError;

/// Why the broker could not start, stop or answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum BrokerError {
    /// The configuration is not valid (a config file, or a builder setting
    /// such as a malformed listen address).
    Config(ConfigError),
    /// A listener could not be bound: address in use, permission denied,
    /// address not available.
    Bind {
        /// The address that could not be bound.
        addr: SocketAddr,
        /// What the system said.
        source: io::Error,
    },
    /// The event loop could not be set up, or failed while running.
    Io(io::Error),
    /// The persistence directory cannot be used: it cannot be created or
    /// read, or another broker holds it. The message names the directory.
    Persistence(String),
    /// [`Broker::start`](super::Broker::start) or [`Broker::run`](super::Broker::run)
    /// on a broker that is running already.
    AlreadyRunning,
    /// The broker is not running (never started, stopped, or failed).
    NotRunning,
    /// The broker thread did not answer within the request timeout, or did
    /// not end within the stop timeout.
    Timeout,
    /// A client id the in-process client cannot use (too long, or holding
    /// U+0000).
    InvalidClientId(String),
    /// The broker refused the in-process client's CONNECT with this CONNACK
    /// reason code (the in-process client speaks MQTT 5.0: e.g. 0x97, quota
    /// exceeded, when `max_sessions` is reached, or 0x85 for a client id it
    /// cannot take; in-process clients need no credentials).
    Refused {
        /// The MQTT 5.0 CONNACK reason code.
        code: u8,
    },
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerError::Config(e) => write!(f, "invalid configuration: {e}"),
            BrokerError::Bind { addr, source } => {
                write!(f, "cannot listen on {addr}: {source}")?;
                match crate::platform::bind::hint(source) {
                    Some(hint) => write!(f, " ({hint})"),
                    None => Ok(()),
                }
            }
            BrokerError::Io(e) => write!(f, "event loop: {e}"),
            BrokerError::Persistence(why) => f.write_str(why),
            BrokerError::AlreadyRunning => f.write_str("the broker is running already"),
            BrokerError::NotRunning => f.write_str("the broker is not running"),
            BrokerError::Timeout => f.write_str("the broker did not answer in time"),
            BrokerError::InvalidClientId(why) => write!(f, "invalid client id: {why}"),
            BrokerError::Refused { code } => {
                write!(
                    f,
                    "the broker refused the client (CONNACK 0x{code:02x}: {})",
                    connack_text(*code)
                )
            }
        }
    }
}

impl std::error::Error for BrokerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BrokerError::Config(e) => Some(e),
            BrokerError::Bind { source, .. } => Some(source),
            BrokerError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ConfigError> for BrokerError {
    fn from(e: ConfigError) -> Self {
        BrokerError::Config(e)
    }
}

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
    /// return code (see [`BrokerError::Refused`]).
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

fn connack_text(code: u8) -> &'static str {
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

/// Why [`Subscription::try_recv`](super::Subscription::try_recv) returned no message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// No message waiting right now.
    Empty,
    /// The subscription has ended (see [`Subscription::recv`](super::Subscription::recv))
    /// and every message has been taken.
    Closed,
}

/// Why [`Subscription::recv_timeout`](super::Subscription::recv_timeout) returned no message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// No message arrived in time.
    Timeout,
    /// The subscription has ended and every message has been taken.
    Closed,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "no message waiting",
            TryRecvError::Closed => "the subscription has ended",
        })
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecvTimeoutError::Timeout => "no message in time",
            RecvTimeoutError::Closed => "the subscription has ended",
        })
    }
}

impl std::error::Error for TryRecvError {}
impl std::error::Error for RecvTimeoutError {}
