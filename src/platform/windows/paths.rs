//! Default paths on Windows: everything under `%ProgramData%\boxmq`.

use std::path::PathBuf;

/// `%ProgramData%` (normally `C:\ProgramData`), where a service and every
/// user can find the broker's files.
fn program_data() -> PathBuf {
    match std::env::var_os("ProgramData") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(r"C:\ProgramData"),
    }
}

/// `%ProgramData%\boxmq`: the config, the data and the service's log.
pub fn base_dir() -> PathBuf {
    program_data().join("boxmq")
}

/// The data directory when `persistence_location` does not say:
/// `%ProgramData%\boxmq\data`.
pub fn default_data_dir() -> PathBuf {
    base_dir().join("data")
}

/// The config file read when none is given: `%ProgramData%\boxmq\boxmq.conf`
/// when it exists.
pub fn default_config() -> Option<PathBuf> {
    let path = base_dir().join("boxmq.conf");
    path.is_file().then_some(path)
}

/// Where the service writes its log: `%ProgramData%\boxmq\log`.
pub fn log_dir() -> PathBuf {
    base_dir().join("log")
}
