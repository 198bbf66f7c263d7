//! How the poller reports readiness on Unix (epoll, edge-triggered).

/// Whether a read that returned less than asked emptied the socket, so that
/// new data brings a new event without reading on to `WouldBlock`: true
/// with epoll, which saves one `read(2)` per packet.
pub const SHORT_READ_DRAINS: bool = true;
