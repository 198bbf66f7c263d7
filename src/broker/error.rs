//! The embedding API's errors.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use crate::config::ConfigError;
use crate::net::local::connack_text;

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
            BrokerError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
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
