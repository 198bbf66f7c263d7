//! Stop requests from the operating system: SIGINT and SIGTERM stop the
//! broker, SIGHUP asks it to reload its password and ACL files.

use std::fmt;
use std::io;

use mio::{Interest, Registry, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

/// What asked the broker to stop: a signal number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cause(pub i32);

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "signal {}", self.0)
    }
}

/// One request, in the order they arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Stop gracefully.
    Stop(Cause),
    /// Re-read the password and ACL files.
    Reload,
}

/// The requests' source, registered with the poller.
pub struct StopSource(Signals);

impl fmt::Debug for StopSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StopSource")
    }
}

/// Installs the handlers; the loop of `registry` wakes with `token` when a
/// request arrives.
///
/// # Errors
/// When the handlers cannot be installed or registered.
pub fn install(registry: &Registry, token: Token) -> io::Result<StopSource> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    registry.register(&mut signals, token, Interest::READABLE)?;
    Ok(StopSource(signals))
}

impl StopSource {
    /// The requests that arrived since the last call.
    pub fn pending(&mut self) -> Vec<Request> {
        self.0
            .pending()
            .map(|sig| {
                if sig == SIGHUP {
                    Request::Reload
                } else {
                    Request::Stop(Cause(sig))
                }
            })
            .collect()
    }
}
