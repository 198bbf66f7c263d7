//! boxmq: a small, single-threaded MQTT broker for the box.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod limits;
pub mod topic;

pub use limits::Limits;
