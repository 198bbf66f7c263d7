//! Explaining a listener that cannot be bound, on Unix.

use std::io;

/// A hint to add to a bind error, when the error's text is not enough.
/// On Unix the system's own text ("Address already in use", "Permission
/// denied") says it.
pub fn hint(_e: &io::Error) -> Option<&'static str> {
    None
}

/// Whether `e`, from `connect` on a non-blocking socket, only says the
/// connection is under way (`EINPROGRESS`); readiness tells the outcome.
pub fn connect_in_progress(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error())
        || e.kind() == io::ErrorKind::WouldBlock
}
