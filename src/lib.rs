//! boxmq: a small, single-threaded MQTT broker for the box.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod config;
pub mod limits;

pub use config::{Config, ConfigError, ListenerConfig};
pub use limits::Limits;
