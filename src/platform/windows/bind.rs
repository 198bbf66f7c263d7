//! Explaining a listener that cannot be bound, on Windows.

use std::io;

/// `WSAEACCES`: the port is reserved (Hyper-V, WSL, Docker reserve ranges)
/// or another program holds it exclusively.
const WSAEACCES: i32 = 10013;
/// `WSAEADDRINUSE`: another program listens on the address.
const WSAEADDRINUSE: i32 = 10048;
/// `WSAEADDRNOTAVAIL`: the address is not one of this machine's.
const WSAEADDRNOTAVAIL: i32 = 10049;

/// A hint to add to a bind error: Windows' text for these codes does not
/// say what to check.
pub fn hint(e: &io::Error) -> Option<&'static str> {
    match e.raw_os_error()? {
        WSAEACCES => Some(
            "the port is reserved by Windows or held exclusively by another program; \
             reserved ranges: netsh int ipv4 show excludedportrange protocol=tcp",
        ),
        WSAEADDRINUSE => Some(
            "another program listens on this port (another broker?); \
             netstat -ano -p tcp shows which",
        ),
        WSAEADDRNOTAVAIL => Some("this address is not one of this machine's"),
        _ => None,
    }
}

/// Whether `e`, from `connect` on a non-blocking socket, only says the
/// connection is under way (`WSAEWOULDBLOCK`); readiness tells the
/// outcome.
pub fn connect_in_progress(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}
