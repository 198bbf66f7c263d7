//! Default paths on Unix.

use std::path::PathBuf;

/// The data directory when neither `persistence_location` nor systemd's
/// `STATE_DIRECTORY` says: `boxmq-data`, relative to the working directory.
pub fn default_data_dir() -> PathBuf {
    PathBuf::from("boxmq-data")
}

/// The config file read when none is given: none on Unix (the systemd unit
/// passes `--config /etc/boxmq/boxmq.conf`).
pub fn default_config() -> Option<PathBuf> {
    None
}
