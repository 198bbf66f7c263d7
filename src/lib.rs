//! boxmq: a small, single-threaded MQTT broker for the box.
//!
//! Layers, from the wire up:
//!
//! * [`codec`]: the MQTT 3.1/3.1.1/5.0 wire format; borrowed views over
//!   frames, and encoders.
//! * [`topic`]: topic name and filter validation, and the array-based
//!   subscription trie.
//! * [`core`]: the sans-IO broker. Events in (connection opened, bytes,
//!   closed, time), effects out (bytes to write, connections to close, the
//!   next deadline). No sockets, no clock, no threads.
//! * [`net`]: the `mio` event loop that feeds the core from sockets.
//! * [`auth`]: password file, ACL file and `boxmq passwd`, compatible with
//!   Mosquitto's files.
//! * [`store`]: the durable record store (log, snapshots, recovery) that
//!   persistence writes through; knows nothing about MQTT.
//! * [`config`]: the config file and command line; [`Limits`] holds every
//!   bound.
//! * [`broker`]: the embedding API. [`Broker`] runs the broker inside an
//!   application, [`Handle`] talks to it from any thread, and [`Client`] is
//!   an in-process MQTT client whose bytes never leave memory.
//! * `http` (cargo feature `http`): `/health`, `/metrics` and the status
//!   page of the optional HTTP listener, without sockets; the loop serves
//!   them (`net/http.rs`).
//! * [`stats`]: the figures the loop gives out ([`Stats`]): the core's
//!   counters, the bridges', uptime and the store's health.
//!
//! Each module names only the ones below it (core names none of config,
//! net, broker, bridge, http or store; net never names broker):
//! docs/ARCHITECTURE.md has the rules and `tests/layers.rs` checks them.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod bridge;
pub mod broker;
pub mod codec;
pub mod config;
pub mod core;
#[cfg(feature = "http")]
pub mod http;
pub mod limits;
pub mod net;
pub mod privileges;
pub mod rlimit;
pub mod stats;
pub mod store;
pub mod topic;

pub use crate::codec::QoS;
pub use crate::core::ClientDropped;
pub use crate::stats::BrokerStats as Stats;
pub use broker::{
    Broker, BrokerBuilder, BrokerError, BrokerState, CallbackSubscription, Client, ClientError,
    Handle, Message, RecvTimeoutError, Subscription, TryRecvError,
};
pub use config::{Config, ConfigError, ListenerConfig};
pub use limits::Limits;
