//! What differs between Unix and Windows, one module per concern, each with
//! the same small interface on both (`unix/` and `windows/`); nothing else
//! in the crate names an operating system.
//!
//! * `wake`: another thread (the store's writer, the bridges' resolver)
//!   wakes the event loop: a Unix socket pair registered with the poller,
//!   or a `mio::Waker` posting to the completion port on Windows.
//! * `stop`: the operating system asks the broker to stop: SIGINT/SIGTERM
//!   (SIGHUP reloads the password and ACL files) on Unix; Ctrl-C,
//!   Ctrl-Break, closing the console and the service's Stop control on
//!   Windows.
//! * `nofile`: enough file handles for `max_connections` (`RLIMIT_NOFILE`
//!   on Unix; Windows has no such per-process limit to raise).
//! * `fs`: the data directory lock (`flock`; `LockFileEx`), and making a
//!   directory entry durable (`fsync` of the directory on
//!   Unix; `FlushFileBuffers` on a directory handle on Windows).
//! * `bind`: what to check when a listener cannot be bound (Windows'
//!   reserved port ranges, WSAEACCES 10013), and the "connection under
//!   way" error of a non-blocking connect (`bridge_bind_address`).
//! * `paths`: the default data directory and config file.
//! * `readiness`: whether a short read means the socket is empty (epoll)
//!   or the loop must read on to `WouldBlock` (Windows).
//!
//! This module is a leaf: it names no other module of the crate.

#[cfg(unix)]
#[path = "unix/mod.rs"]
mod os;
#[cfg(windows)]
#[path = "windows/mod.rs"]
mod os;

pub use os::{bind, fs, nofile, paths, readiness, stop, wake};
