//! Waking the event loop from another thread: a Unix socket pair whose loop
//! end is registered with the poller (readable when there is news).

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;

use mio::{Interest, Registry, Token};

/// The other thread's end: [`Notifier::notify`] wakes the loop.
#[derive(Debug)]
pub struct Notifier(UnixStream);

/// The loop's end, registered with the poller under the token given to
/// [`pair`]; [`WakeSource::drain`] clears it.
#[derive(Debug)]
pub struct WakeSource(mio::net::UnixStream);

/// A notifier for another thread and its source, registered with
/// `registry` as `token`.
///
/// # Errors
/// When the socket pair cannot be created or registered.
pub fn pair(registry: &Registry, token: Token) -> io::Result<(Notifier, WakeSource)> {
    let (theirs, ours) = UnixStream::pair()?;
    ours.set_nonblocking(true)?;
    theirs.set_nonblocking(true)?;
    let mut ours = mio::net::UnixStream::from_std(ours);
    registry.register(&mut ours, token, Interest::READABLE)?;
    Ok((Notifier(theirs), WakeSource(ours)))
}

impl Notifier {
    /// Wakes the loop (never blocks).
    pub fn notify(&mut self) {
        // A full socket buffer means a wake-up is pending anyway.
        let _ = self.0.write(&[1]);
    }
}

impl WakeSource {
    /// Clears the wake-ups seen so far.
    pub fn drain(&mut self) {
        let mut buf = [0u8; 64];
        while matches!(self.0.read(&mut buf), Ok(n) if n > 0) {}
    }
}
