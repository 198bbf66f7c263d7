//! How the poller reports readiness on Windows (mio over AFD polls).

/// Whether a read that returned less than asked emptied the socket, so that
/// new data brings a new event without reading on to `WouldBlock`: false on
/// Windows, where mio arms its next poll of a socket only after an
/// operation on it returned `WouldBlock` (mio's documented caveat).
pub const SHORT_READ_DRAINS: bool = false;
