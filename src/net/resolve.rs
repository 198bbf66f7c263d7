//! Host name lookups for bridges, off the loop thread.
//!
//! The system resolver (`getaddrinfo`) blocks, for seconds when the network
//! that carries DNS is down: exactly when a bridge retries its uplink. So a
//! bridge whose `address` is a host name asks this resolver, which looks it
//! up on a thread of its own and wakes the loop with the answer; local
//! clients are served meanwhile. Literal addresses never come here.
//!
//! The thread is started on the first lookup and ends when the resolver is
//! dropped (after the lookup it may be in; it is not waited for).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, Sender};

use mio::{Registry, Token};

use crate::platform::wake::{self, Notifier, WakeSource};

/// A lookup to make: `addr` is `host:port`; `key` and `serial` say which
/// connection attempt wants it, so a late answer for an attempt given up
/// since is recognised and ignored.
pub(super) struct Lookup {
    pub key: usize,
    pub serial: u64,
    pub addr: String,
}

/// The answer to a [`Lookup`].
pub(super) struct Answer {
    pub key: usize,
    pub serial: u64,
    pub addr: String,
    pub result: io::Result<SocketAddr>,
}

/// The loop's handle on the lookup thread.
pub(super) struct Resolver {
    requests: Option<Sender<Lookup>>,
    answers: Option<Receiver<Answer>>,
    /// Wakes the loop when answers are waiting; registered with the
    /// poller once the thread exists (see [`Resolver::ask`]).
    wake: Option<WakeSource>,
}

/// `addr` as a socket address without any lookup, if it is a literal one.
pub(super) fn literal(addr: &str) -> Option<SocketAddr> {
    addr.parse().ok()
}

/// The first socket address of `addr`, by the system resolver (blocking).
fn lookup(addr: &str) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
}

fn worker(requests: Receiver<Lookup>, answers: Sender<Answer>, mut wake: Notifier) {
    while let Ok(l) = requests.recv() {
        let result = lookup(&l.addr);
        let answer = Answer {
            key: l.key,
            serial: l.serial,
            addr: l.addr,
            result,
        };
        if answers.send(answer).is_err() {
            return;
        }
        wake.notify();
    }
}

impl Resolver {
    /// A resolver whose thread is not started yet.
    pub fn new() -> Resolver {
        Resolver {
            requests: None,
            answers: None,
            wake: None,
        }
    }

    /// Queues a lookup. The first call starts the thread, whose answers
    /// wake the loop of `registry` with `token`.
    ///
    /// # Errors
    /// When the thread or its wake-up cannot be created.
    pub fn ask(&mut self, registry: &Registry, token: Token, l: Lookup) -> io::Result<()> {
        if self.requests.is_none() {
            let (theirs, ours) = wake::pair(registry, token)?;
            let (req_tx, req_rx) = mpsc::channel();
            let (ans_tx, ans_rx) = mpsc::channel();
            std::thread::Builder::new()
                .name("boxmq-resolve".into())
                .spawn(move || worker(req_rx, ans_tx, theirs))?;
            self.requests = Some(req_tx);
            self.answers = Some(ans_rx);
            self.wake = Some(ours);
        }
        let sent = self.requests.as_ref().is_some_and(|r| r.send(l).is_ok());
        if !sent {
            return Err(io::Error::other("the lookup thread has stopped"));
        }
        Ok(())
    }

    /// The answers that arrived since the last call.
    pub fn answers(&mut self) -> Vec<Answer> {
        if let Some(w) = self.wake.as_mut() {
            w.drain();
        }
        let mut out = Vec::new();
        if let Some(a) = self.answers.as_ref() {
            while let Ok(answer) = a.try_recv() {
                out.push(answer);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn literal_addresses_need_no_lookup() {
        assert_eq!(
            literal("127.0.0.1:1883"),
            Some(SocketAddr::from(([127, 0, 0, 1], 1883)))
        );
        assert!(literal("[::1]:1883").is_some());
        assert_eq!(literal("localhost:1883"), None);
    }

    #[test]
    fn lookups_are_answered_on_the_thread_with_their_serial() {
        let mut r = Resolver::new();
        let poll = mio::Poll::new().unwrap();
        let mut ask = |serial: u64, addr: &str| {
            let l = Lookup {
                key: 7,
                serial,
                addr: addr.into(),
            };
            r.ask(poll.registry(), Token(0), l).is_ok()
        };
        assert!(ask(1, "localhost:1883"));
        assert!(ask(2, "localhost:99999"));
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut got = Vec::new();
        while got.len() < 2 && Instant::now() < deadline {
            got.extend(r.answers());
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(got.len(), 2, "both answered");
        let first = got.iter().find(|a| a.serial == 1).expect("serial 1");
        assert_eq!(first.key, 7);
        let addr = first.result.as_ref().expect("localhost resolves");
        assert!(addr.ip().is_loopback() && addr.port() == 1883, "{addr}");
        let second = got.iter().find(|a| a.serial == 2).expect("serial 2");
        assert!(second.result.is_err(), "port 99999 does not exist");
    }
}
