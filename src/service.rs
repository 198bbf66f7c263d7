//! `boxmq service ...`: the binary as a Windows service (see
//! `service/windows.rs` and docs/WINDOWS.md). On Unix, systemd runs the
//! binary as it is (`pkg/boxmq.service`), so the command only says so.

#[cfg(unix)]
#[path = "service/unix.rs"]
mod os;
#[cfg(windows)]
#[path = "service/windows.rs"]
mod os;

pub use os::command;

/// How the service runs the broker: the binary's own `run` with the
/// arguments after `service run`.
pub type Run = fn(Vec<String>) -> std::process::ExitCode;
