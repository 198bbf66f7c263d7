//! Where and how the `boxmq` binary logs: Mosquitto's `log_dest`,
//! `log_facility`, `log_timestamp`, `log_timestamp_format` and
//! `connection_messages` (`log_type` sets [`super::Config::log_level`]).
//! The lines are read in `directives.rs`; the binary's logger
//! (`src/logger.rs`) follows them.

use std::path::PathBuf;

/// One `log_dest` destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogDest {
    /// `log_dest stdout`.
    Stdout,
    /// `log_dest stderr` (the default).
    Stderr,
    /// `log_dest file PATH`: appended to; created if missing.
    File(PathBuf),
    /// `log_dest syslog`: the local syslog socket (`/dev/log`).
    Syslog,
    /// `log_dest topic`: published on `$SYS/broker/log/E`, `W` and `N`
    /// (see `net/log_topic.rs`).
    Topic,
}

/// The binary's logging settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `log_dest` lines: `None` when there are none (stderr, as
    /// Mosquitto), `Some(empty)` after `log_dest none`.
    pub dests: Option<Vec<LogDest>>,
    /// `log_timestamp` (default true): each line starts with the time.
    pub timestamp: bool,
    /// `log_timestamp_format`: a strftime format for that time (UTC); by
    /// default boxmq's `2026-12-04T20:49:13Z`.
    pub timestamp_format: Option<String>,
    /// `log_facility N`: syslog facility local0..local7; `None`: daemon.
    pub facility: Option<u8>,
    /// `connection_messages` (default true): a line for each client that
    /// connects and disconnects.
    pub connection_messages: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            dests: None,
            timestamp: true,
            timestamp_format: None,
            facility: None,
            connection_messages: true,
        }
    }
}

impl LogConfig {
    /// The destinations in force: the `log_dest` lines, or stderr.
    pub fn destinations(&self) -> Vec<LogDest> {
        self.dests.clone().unwrap_or_else(|| vec![LogDest::Stderr])
    }
}
