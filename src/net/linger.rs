//! Closing a connection so that the client reads why.
//!
//! When the core closes a client with a 5.0 DISCONNECT that names the rule
//! it broke (see [`Core::linger`](crate::core::Core::linger)), the client
//! may still be writing: acknowledgements of what it received, the rest of
//! a burst. Closing the socket at once makes the kernel answer that data
//! with a reset, and a client whose write fails first (`EPIPE`) reports a
//! broken pipe without ever reading the DISCONNECT that arrived before it.
//!
//! So such a socket is closed in two steps: its write side is shut (the
//! DISCONNECT is followed by a FIN), and for at most [`LINGER`] whatever the
//! client still sends is read and discarded, until it closes its side too.
//! At most [`MAX_LINGERING`] sockets linger at once; beyond that, and for
//! every other close, the socket is closed at once as before.

use std::io::{self, Read};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use slab::Slab;

/// How long a closed client's late data is read and discarded.
pub(super) const LINGER: Duration = Duration::from_secs(2);
/// Sockets lingering at once (each holds a descriptor, nothing else).
pub(super) const MAX_LINGERING: usize = 64;
/// Lingering socket `i` has token `BASE + i`: far above any slab key of a
/// connection and below the HTTP status listener's tokens.
const BASE: usize = usize::MAX / 4;
/// Reads per event: a client that floods a lingering socket is dropped.
const READS: usize = 4;

/// The sockets closed on their write side, waiting for the client to close.
#[derive(Default)]
pub(super) struct Lingering {
    socks: Slab<(TcpStream, Instant)>,
}

impl Lingering {
    /// Whether `token` is a lingering socket's.
    pub(super) fn owns(token: Token) -> bool {
        (BASE..BASE + MAX_LINGERING).contains(&token.0)
    }

    /// Takes over `stream`, already deregistered: shuts its write side and
    /// waits for the client's end. Drops it at once when full, or when the
    /// socket is gone already.
    pub(super) fn add(&mut self, registry: &Registry, mut stream: TcpStream, now: Instant) {
        if self.socks.len() >= MAX_LINGERING || stream.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let entry = self.socks.vacant_entry();
        let token = Token(BASE + entry.key());
        if registry
            .register(&mut stream, token, Interest::READABLE)
            .is_ok()
        {
            entry.insert((stream, now + LINGER));
        }
    }

    /// A lingering socket is readable: discards what came; closes it on
    /// the client's end, an error, or too much data.
    pub(super) fn event(&mut self, registry: &Registry, token: Token, buf: &mut [u8]) {
        let key = token.0 - BASE;
        let Some((stream, _)) = self.socks.get_mut(key) else {
            return;
        };
        for _ in 0..READS {
            match stream.read(buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.drop_one(registry, key);
    }

    /// The earliest instant a lingering socket is to be closed.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.socks.iter().map(|(_, (_, until))| *until).min()
    }

    /// Closes the sockets whose time is up.
    pub(super) fn tick(&mut self, registry: &Registry, now: Instant) {
        if self.socks.is_empty() {
            return;
        }
        let expired: Vec<usize> = self
            .socks
            .iter()
            .filter(|(_, (_, until))| *until <= now)
            .map(|(key, _)| key)
            .collect();
        for key in expired {
            self.drop_one(registry, key);
        }
    }

    fn drop_one(&mut self, registry: &Registry, key: usize) {
        if let Some((mut stream, _)) = self.socks.try_remove(key) {
            let _ = registry.deregister(&mut stream);
        }
    }
}
