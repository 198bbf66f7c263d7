//! Waking the event loop from another thread: a `mio::Waker` of its own.
//!
//! On Windows a waker posts a completion packet carrying its token to the
//! poller's I/O completion port, so several wakers with different tokens
//! can share one poller (mio documents one waker per poller because other
//! platforms cannot). A packet carries no state: there is nothing to drain.

use std::io;

use mio::{Registry, Token, Waker};

/// The other thread's end: [`Notifier::notify`] wakes the loop.
#[derive(Debug)]
pub struct Notifier(Waker);

/// The loop's end (nothing to hold: the event carries the token).
#[derive(Debug)]
pub struct WakeSource;

/// A notifier for another thread that wakes the loop of `registry` with
/// `token`.
///
/// # Errors
/// When the waker cannot be created.
pub fn pair(registry: &Registry, token: Token) -> io::Result<(Notifier, WakeSource)> {
    Ok((Notifier(Waker::new(registry, token)?), WakeSource))
}

impl Notifier {
    /// Wakes the loop (never blocks).
    pub fn notify(&mut self) {
        // Posting fails only when the port is gone, that is, the loop too.
        let _ = self.0.wake();
    }
}

impl WakeSource {
    /// Clears the wake-ups seen so far (nothing to do on Windows).
    pub fn drain(&mut self) {}
}
