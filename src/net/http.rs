//! The event loop's side of the HTTP status listener (cargo feature
//! `http`; the protocol is in [`crate::http`]). The listener and its
//! connections are registered in the loop's own poll with tokens of their
//! own, so a scrape is served between MQTT reads and never blocks them.
//!
//! Bounds ([`HttpConfig`]): at most `max_connections` at once (one more
//! is accepted and closed), a request head of at most `max_request_bytes`
//! (431 past it), and `timeout` for the request to arrive and again for
//! the response to be taken (a slower client is closed). A connection
//! holds its request head and one response, nothing else.
//!
//! Each connection goes Reading, Writing, Lingering: after the response
//! its write side is shut and what the client still sends is read and
//! dropped until it closes (at most [`LINGER`]), so unread bytes do not
//! make the kernel reset the connection before the client read the answer.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Token};

use super::{Server, interrupted, would_block};
use crate::auth::{Auth, PasswordFile};
use crate::config::HttpConfig;
use crate::http::{self, Context, RequestError, Status};

/// Token of the HTTP listener.
const LISTENER: Token = Token(usize::MAX - 5);
/// HTTP connection `i` has token `CONN_BASE + i`: far above any slab key
/// (those count up from 0) and below the fixed tokens at the top.
const CONN_BASE: usize = usize::MAX / 2;
/// Most HTTP connections [`HttpConfig::max_connections`] may ask for.
const MAX_SLOTS: usize = 1024;
/// How long a connection whose response is written may wait for the
/// client to close.
const LINGER: Duration = Duration::from_secs(1);
/// Bytes read per `read` call.
const CHUNK: usize = 2048;
/// The state `/health` names while the loop serves.
const RUNNING: &str = "Running";

/// Whether `token` is the HTTP listener's or one of its connections'.
pub(super) fn owns(token: Token) -> bool {
    token == LISTENER || (CONN_BASE..CONN_BASE + MAX_SLOTS).contains(&token.0)
}

enum Phase {
    /// Waiting for the end of the request head.
    Reading,
    /// Writing `out` from `sent` on.
    Writing,
    /// Response written, write side shut: dropping input until EOF.
    Lingering,
}

struct HttpConn {
    stream: TcpStream,
    /// The request head so far (at most `max_request_bytes`).
    head: Vec<u8>,
    /// The whole response.
    out: Vec<u8>,
    sent: usize,
    phase: Phase,
    /// When the current phase must be over.
    deadline: Instant,
}

/// The HTTP listener and its connections.
pub(super) struct HttpServer {
    listener: TcpListener,
    /// Fixed slots: `conns.len()` is `max_connections`.
    conns: Vec<Option<HttpConn>>,
    config: HttpConfig,
    /// The password file's users, when basic auth is required.
    users: Option<PasswordFile>,
    /// The loop's registry (a handle of its own, so the server can be
    /// taken out of [`Server`] while it serves a request).
    registry: mio::Registry,
}

impl Server {
    /// Serves `/health`, `/metrics`, `/status.json` and the status page on
    /// `listener` (bound already, by the caller), with the bounds and the
    /// basic-auth setting of `config`; users and passwords come from
    /// `auth`'s password file (and follow it on SIGHUP).
    ///
    /// # Errors
    /// When the listener cannot be registered, or `config.require_auth`
    /// is set and `auth` has no password file.
    pub fn attach_http(
        &mut self,
        listener: std::net::TcpListener,
        config: &HttpConfig,
        auth: &Auth,
    ) -> io::Result<()> {
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        let users = if config.require_auth {
            let Some(users) = auth.passwords() else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "http_require_auth needs a password_file",
                ));
            };
            Some(users.clone())
        } else {
            None
        };
        self.poll
            .registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let slots = config.max_connections.clamp(1, MAX_SLOTS);
        self.http = Some(HttpServer {
            listener,
            conns: (0..slots).map(|_| None).collect(),
            config: config.clone(),
            users,
            registry: self.poll.registry().try_clone()?,
        });
        Ok(())
    }

    /// The address the HTTP listener is bound to, if there is one.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref()?.listener.local_addr().ok()
    }

    /// An event for the HTTP listener or one of its connections.
    pub(super) fn http_event(&mut self, token: Token, now: Instant) {
        let Some(mut h) = self.http.take() else {
            return;
        };
        if token == LISTENER {
            h.accept(now);
        } else {
            let slot = token.0 - CONN_BASE;
            h.progress(slot, now, &|| self.stats(now));
        }
        self.http = Some(h);
    }

    /// The earliest deadline of an HTTP connection.
    pub(super) fn http_deadline(&self) -> Option<Instant> {
        let h = self.http.as_ref()?;
        h.conns.iter().flatten().map(|c| c.deadline).min()
    }

    /// Closes the HTTP connections past their deadline.
    pub(super) fn http_tick(&mut self, now: Instant) {
        let Some(h) = self.http.as_mut() else {
            return;
        };
        for slot in 0..h.conns.len() {
            if h.conns[slot].as_ref().is_some_and(|c| c.deadline <= now) {
                log::debug!("http: slot {slot} timed out");
                h.close(slot);
            }
        }
    }

    /// SIGHUP: basic auth follows the reloaded password file.
    pub(super) fn http_reload(&mut self, auth: &Auth) {
        if let Some(h) = self.http.as_mut() {
            if h.users.is_some() {
                h.users = Some(auth.passwords().cloned().unwrap_or_default());
            }
        }
    }

    /// Closes the HTTP listener's connections (at shutdown).
    pub(super) fn http_close_all(&mut self) {
        if let Some(h) = self.http.as_mut() {
            for slot in 0..h.conns.len() {
                h.close(slot);
            }
        }
    }
}

impl HttpServer {
    fn accept(&mut self, now: Instant) {
        loop {
            let (mut stream, peer) = match self.listener.accept() {
                Ok(x) => x,
                Err(e) if would_block(&e) => return,
                Err(e) if interrupted(&e) => continue,
                Err(e) => {
                    log::error!("http: accept failed: {e}");
                    return;
                }
            };
            let Some(slot) = self.conns.iter().position(Option::is_none) else {
                log::debug!(
                    "http: connection from {peer} refused: {} connections open",
                    self.conns.len()
                );
                continue;
            };
            let token = Token(CONN_BASE + slot);
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(e) = self.registry.register(&mut stream, token, interest) {
                log::error!("http: cannot register connection from {peer}: {e}");
                continue;
            }
            log::debug!("http: connection from {peer} (slot {slot})");
            self.conns[slot] = Some(HttpConn {
                stream,
                head: Vec::new(),
                out: Vec::new(),
                sent: 0,
                phase: Phase::Reading,
                deadline: now + self.config.timeout,
            });
        }
    }

    /// Moves connection `slot` on as far as its socket lets it.
    fn progress(
        &mut self,
        slot: usize,
        now: Instant,
        stats: &dyn Fn() -> crate::stats::BrokerStats,
    ) {
        let Some(Some(conn)) = self.conns.get_mut(slot) else {
            return;
        };
        let keep = match conn.phase {
            Phase::Reading => {
                let max = self.config.max_request_bytes;
                match read_head(conn, max) {
                    Ok(true) => {
                        let ctx = Context {
                            state: RUNNING,
                            users: self.users.as_ref(),
                            bridge_down_grace: self.config.bridge_down_grace,
                            now,
                        };
                        conn.out = match http::request::parse(&conn.head, max) {
                            Ok(Some(request)) => http::respond(&request, &ctx, stats),
                            Ok(None) => http::error_response(Status::BadRequest),
                            Err(RequestError::Malformed) => {
                                http::error_response(Status::BadRequest)
                            }
                            Err(RequestError::TooLarge) => http::error_response(Status::TooLarge),
                        };
                        conn.head = Vec::new();
                        conn.phase = Phase::Writing;
                        conn.deadline = now + self.config.timeout;
                        write_out(conn, now)
                    }
                    Ok(false) => true,
                    Err(()) => false,
                }
            }
            Phase::Writing => write_out(conn, now),
            Phase::Lingering => drain(&mut conn.stream),
        };
        if !keep {
            self.close(slot);
        }
    }

    fn close(&mut self, slot: usize) {
        if let Some(Some(mut conn)) = self.conns.get_mut(slot).map(Option::take) {
            let _ = self.registry.deregister(&mut conn.stream);
        }
    }
}

/// Reads what the client sent of its head. `Ok(true)`: the head is
/// complete, or cannot be (malformed, too large, or the client closed
/// early); `Ok(false)`: more to come; `Err`: the connection failed.
fn read_head(conn: &mut HttpConn, max: usize) -> Result<bool, ()> {
    let mut chunk = [0u8; CHUNK];
    loop {
        let room = max.saturating_sub(conn.head.len()).min(CHUNK);
        if room == 0 {
            return Ok(true);
        }
        let n = match conn.stream.read(&mut chunk[..room]) {
            Ok(0) => {
                // Closed before the end of its head: nothing to answer
                // unless it sent something.
                return if conn.head.is_empty() {
                    Err(())
                } else {
                    Ok(true)
                };
            }
            Ok(n) => n,
            Err(e) if would_block(&e) => return Ok(false),
            Err(e) if interrupted(&e) => continue,
            Err(_) => return Err(()),
        };
        conn.head.extend_from_slice(&chunk[..n]);
        if !matches!(http::request::parse(&conn.head, max), Ok(None)) {
            return Ok(true);
        }
    }
}

/// Writes the rest of the response; once all is out, shuts the write side
/// and lingers. `false`: close now.
fn write_out(conn: &mut HttpConn, now: Instant) -> bool {
    while conn.sent < conn.out.len() {
        match conn.stream.write(&conn.out[conn.sent..]) {
            Ok(0) => return false,
            Ok(n) => conn.sent += n,
            Err(e) if would_block(&e) => return true,
            Err(e) if interrupted(&e) => {}
            Err(_) => return false,
        }
    }
    conn.out = Vec::new();
    let _ = conn.stream.shutdown(std::net::Shutdown::Write);
    conn.phase = Phase::Lingering;
    conn.deadline = conn.deadline.min(now + LINGER);
    drain(&mut conn.stream)
}

/// Reads and drops input. `false` at EOF or on an error.
fn drain(stream: &mut TcpStream) -> bool {
    let mut sink = [0u8; CHUNK];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) if would_block(&e) => return true,
            Err(e) if interrupted(&e) => {}
            Err(_) => return false,
        }
    }
}
