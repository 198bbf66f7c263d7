//! The event loop's side of bridges (see [`crate::bridge`]): each bridge is
//! one slab entry whose key is both the core connection id of its local
//! side and the poll token of its outgoing TCP connection to the remote.
//! The protocol lives in the sans-IO [`Link`]; this file connects, reads
//! and writes, through TLS when the bridge has `bridge_cafile`
//! (`bridge_tls.rs`).

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Token};

use super::bridge_tls::{BridgeTls, ClientTls};
use super::resolve::{self, Lookup};
use super::{Endpoint, READ_CHUNK, READS_PER_TURN, RESOLVER, Server, interrupted, would_block};
use crate::bridge::link::{Action, OUT_HIGH_WATER};
use crate::bridge::{BridgeConfig, BridgeStats, Link};
use crate::core::ConnId;
use crate::platform::bind::connect_in_progress;
use crate::platform::readiness::SHORT_READ_DRAINS;

/// A bridge as the loop keeps it.
pub(super) struct BridgeConn {
    link: Link,
    stream: Option<TcpStream>,
    /// The TCP connection is established (a non-blocking connect has
    /// completed).
    established: bool,
    /// Bytes read from the remote and not yet taken by the link.
    partial: Vec<u8>,
    /// Reading the remote is paused (see `Link::wants_remote_input`).
    paused: bool,
    /// The bridge's TLS set-up (`bridge_cafile`); `None`: plain TCP.
    tls_setup: Option<BridgeTls>,
    /// The TLS session of the current connection.
    tls: Option<ClientTls>,
    /// Serial of the host name lookup this bridge waits for (see
    /// `resolve`); cleared when the attempt is given up.
    lookup: Option<u64>,
    /// Lookups asked so far (their serials).
    lookups: u64,
}

/// Starts a non-blocking connection to `sa`, from the local address
/// `bind` when there is one (`bridge_bind_address`; the system picks the
/// port).
fn open_stream(sa: SocketAddr, bind: Option<IpAddr>) -> io::Result<TcpStream> {
    let Some(ip) = bind else {
        return TcpStream::connect(sa);
    };
    if ip.is_ipv4() != sa.is_ipv4() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bridge_bind_address {ip} is not of the family of {sa}"),
        ));
    }
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(sa),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    socket
        .bind(&SocketAddr::new(ip, 0).into())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind to {ip}: {e}")))?;
    match socket.connect(&sa.into()) {
        Ok(()) => {}
        Err(e) if connect_in_progress(&e) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// Writes `out` to `stream` until done (`Ok(true)`) or `WouldBlock`
/// (`Ok(false)`).
fn write_plain(stream: &mut TcpStream, out: &mut Vec<u8>) -> io::Result<bool> {
    while !out.is_empty() {
        match stream.write(out) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                out.drain(..n);
            }
            Err(e) if would_block(&e) => return Ok(false),
            Err(e) if interrupted(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Encrypts `out` (once the handshake is done) and writes it and what TLS
/// has to say to `stream`, until done (`Ok(true)`) or `WouldBlock`.
fn write_tls(stream: &mut TcpStream, tls: &mut ClientTls, out: &mut Vec<u8>) -> io::Result<bool> {
    loop {
        let mut took = 0;
        if !out.is_empty() && !tls.handshaking() {
            took = tls.send(out);
            out.drain(..took.min(out.len()));
        }
        match tls.write_to(stream) {
            Ok(()) => {}
            Err(e) if would_block(&e) => return Ok(false),
            Err(e) if interrupted(&e) => continue,
            Err(e) => return Err(e),
        }
        if out.is_empty() || tls.handshaking() {
            return Ok(true);
        }
        if took == 0 {
            // TLS took nothing although its buffer was written out.
            return Ok(false);
        }
    }
}

impl Server {
    /// Adds the configured bridges to the loop; their first connection
    /// attempt is made on the first turn.
    /// `tls` holds each bridge's TLS set-up, in order.
    pub(super) fn start_bridges(&mut self, bridges: &[BridgeConfig], tls: Vec<Option<BridgeTls>>) {
        let now = Instant::now();
        let mut tls = tls.into_iter();
        for cfg in bridges {
            let tls_setup = tls.next().flatten();
            if let Err(e) = cfg.check() {
                log::error!("{e}; this bridge is not started");
                continue;
            }
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            let link = Link::new(cfg.clone(), ConnId(key), &mut self.core, now);
            entry.insert(Endpoint::Bridge(Box::new(BridgeConn {
                link,
                stream: None,
                established: false,
                partial: Vec::new(),
                paused: false,
                tls_setup,
                tls: None,
                lookup: None,
                lookups: 0,
            })));
            self.bridges.push(key);
        }
    }

    /// The earliest time a bridge has something to do.
    pub(super) fn bridge_deadline(&self) -> Option<std::time::Instant> {
        self.bridges
            .iter()
            .filter_map(|&k| match self.conns.get(k) {
                Some(Endpoint::Bridge(b)) => b.link.next_deadline(),
                _ => None,
            })
            .min()
    }

    /// Each bridge's figures.
    pub(super) fn bridge_stats(&self) -> Vec<BridgeStats> {
        self.bridges
            .iter()
            .filter_map(|&k| match self.conns.get(k) {
                Some(Endpoint::Bridge(b)) => Some(b.link.stats(&self.core)),
                _ => None,
            })
            .collect()
    }

    /// Timers of every bridge: connection attempts, keepalive, figures.
    pub(super) fn bridge_tick(&mut self, now: Instant) {
        if self.bridges.is_empty() {
            return;
        }
        // Answers whose wake-up this turn's events did not carry yet.
        self.bridge_resolved(now);
        for i in 0..self.bridges.len() {
            let Some(&key) = self.bridges.get(i) else {
                break;
            };
            let Some(Endpoint::Bridge(b)) = self.conns.get_mut(key) else {
                continue;
            };
            if let Some(Action::Connect(addr)) = b.link.tick(&mut self.core, now) {
                self.bridge_connect(key, &addr, now);
            }
            self.bridge_write(key, now);
        }
    }

    /// Starts a non-blocking connection to `addr`.
    fn bridge_connect(&mut self, key: usize, addr: &str, now: Instant) {
        if let Some(sa) = resolve::literal(addr) {
            return self.bridge_open(key, addr, sa, now);
        }
        // A host name: looked up on the resolver's thread, so a resolver
        // that hangs (DNS unreachable with the uplink) never stalls the
        // loop. The answer comes back through `bridge_resolved`.
        let Some(Endpoint::Bridge(b)) = self.conns.get_mut(key) else {
            return;
        };
        b.lookups += 1;
        let serial = b.lookups;
        b.lookup = Some(serial);
        let lookup = Lookup {
            key,
            serial,
            addr: addr.to_owned(),
        };
        match self.resolver.ask(self.poll.registry(), RESOLVER, lookup) {
            Ok(()) => {}
            Err(e) => {
                b.lookup = None;
                let why = format!("cannot look up {addr}: {e}");
                b.link.remote_closed(&mut self.core, now, &why);
            }
        }
    }

    /// Takes the resolver's answers: each one still wanted starts its
    /// connection (or fails the attempt with the resolver's reason).
    pub(super) fn bridge_resolved(&mut self, now: Instant) {
        for a in self.resolver.answers() {
            let Some(Endpoint::Bridge(b)) = self.conns.get_mut(a.key) else {
                continue;
            };
            if b.lookup != Some(a.serial) {
                // The attempt was given up (timed out) meanwhile.
                continue;
            }
            b.lookup = None;
            match a.result {
                Ok(sa) => self.bridge_open(a.key, &a.addr, sa, now),
                Err(e) => {
                    let why = format!("cannot resolve {}: {e}", a.addr);
                    b.link.remote_closed(&mut self.core, now, &why);
                }
            }
        }
    }

    /// Starts a non-blocking connection to `sa`, the address `addr` names.
    fn bridge_open(&mut self, key: usize, addr: &str, sa: SocketAddr, now: Instant) {
        let Some(Endpoint::Bridge(b)) = self.conns.get_mut(key) else {
            return;
        };
        let tls = match b.tls_setup.as_ref().map(|t| t.connect(addr)).transpose() {
            Ok(tls) => tls,
            Err(why) => {
                b.link.remote_closed(&mut self.core, now, &why);
                return;
            }
        };
        let result = open_stream(sa, b.link.bind_address());
        match result {
            Ok(mut stream) => {
                if let Err(e) = self.poll.registry().register(
                    &mut stream,
                    Token(key),
                    Interest::READABLE | Interest::WRITABLE,
                ) {
                    b.link
                        .remote_closed(&mut self.core, now, &format!("cannot register: {e}"));
                    return;
                }
                b.stream = Some(stream);
                b.established = false;
                b.partial.clear();
                b.paused = false;
                b.tls = tls;
            }
            Err(e) => {
                let why = format!("cannot connect to {addr}: {e}");
                b.link.remote_closed(&mut self.core, now, &why);
            }
        }
    }

    /// Drops the remote socket.
    fn bridge_drop_socket(&mut self, key: usize) {
        let Some(Endpoint::Bridge(b)) = self.conns.get_mut(key) else {
            return;
        };
        if let Some(mut s) = b.stream.take() {
            if let Some(tls) = b.tls.as_mut().filter(|_| b.established) {
                tls.goodbye();
                let _ = tls.write_to(&mut s);
            }
            let _ = self.poll.registry().deregister(&mut s);
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        b.tls = None;
        b.lookup = None;
        b.established = false;
        b.partial.clear();
        b.paused = false;
    }

    /// The remote connection failed: tell the link, drop the socket.
    fn bridge_failed(&mut self, key: usize, why: &str, now: Instant) {
        if let Some(Endpoint::Bridge(b)) = self.conns.get_mut(key) {
            b.link.remote_closed(&mut self.core, now, why);
        }
        self.bridge_drop_socket(key);
    }

    /// A readiness event on a bridge's socket.
    pub(super) fn bridge_event(&mut self, key: usize, event: &mio::event::Event, now: Instant) {
        let Some(Endpoint::Bridge(b)) = self.conns.get_mut(key) else {
            return;
        };
        let Some(stream) = b.stream.as_ref() else {
            return;
        };
        if !b.established {
            if let Ok(Some(e)) | Err(e) = stream.take_error() {
                let why = format!("cannot connect: {e}");
                return self.bridge_failed(key, &why, now);
            }
            match stream.peer_addr() {
                Ok(_) => {
                    b.established = true;
                    let _ = stream.set_nodelay(true);
                    // With TLS, CONNECT waits for the handshake (the
                    // ClientHello goes out with the write below).
                    if b.tls.is_none() {
                        b.link.tcp_connected(now);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    if event.is_read_closed() || event.is_error() {
                        return self.bridge_failed(key, "connection refused", now);
                    }
                    return;
                }
                Err(e) => {
                    let why = format!("cannot connect: {e}");
                    return self.bridge_failed(key, &why, now);
                }
            }
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.bridge_read(key, event.is_read_closed() || event.is_error(), now);
        }
        self.bridge_write(key, now);
    }

    /// Reads what the remote sent and gives it to the link. `closed_seen`:
    /// the event said the peer closed its side, so read on to the end.
    pub(super) fn bridge_read(&mut self, key: usize, closed_seen: bool, now: Instant) {
        for _ in 0..READS_PER_TURN {
            let Some(Endpoint::Bridge(b)) = self.conns.get_mut(key) else {
                return;
            };
            if !b.established {
                return;
            }
            // First what was left over, then new bytes.
            if !b.partial.is_empty() {
                let used = b.link.remote_data(&mut self.core, &b.partial, now);
                b.partial.drain(..used.min(b.partial.len()));
            }
            if b.link.take_drop_request() {
                self.bridge_write(key, now);
                self.bridge_drop_socket(key);
                return;
            }
            if !b.link.wants_remote_input(&self.core) {
                log::trace!("bridge {}: remote reading paused", b.link.name());
                b.paused = true;
                return;
            }
            b.paused = false;
            let Some(stream) = b.stream.as_mut() else {
                return;
            };
            let n = match stream.read(&mut self.read_buf) {
                Ok(0) => {
                    let why = if b.tls.as_ref().is_some_and(ClientTls::handshaking) {
                        "the remote closed the connection during the TLS handshake"
                    } else {
                        "the remote closed the connection"
                    };
                    return self.bridge_failed(key, why, now);
                }
                Ok(n) => n,
                Err(e) if would_block(&e) => return,
                Err(e) if interrupted(&e) => continue,
                Err(e) => {
                    let why = format!("read error: {e}");
                    return self.bridge_failed(key, &why, now);
                }
            };
            log::trace!("bridge {}: {n} bytes from the remote", b.link.name());
            let fresh = self.read_buf.get(..n).unwrap_or_default();
            let tls = b.tls.is_some();
            if let Some(t) = b.tls.as_mut() {
                if let Err(why) = t.input(fresh, &mut b.partial) {
                    // The alert, if the socket takes it now.
                    let _ = t.write_to(stream);
                    b.link.transport_failed(&mut self.core, now, &why);
                    return self.bridge_drop_socket(key);
                }
                if t.just_ready() {
                    log::debug!("bridge {}: TLS handshake done", b.link.name());
                    b.link.tcp_connected(now);
                }
            } else {
                b.partial.extend_from_slice(fresh);
            }
            let used = b.link.remote_data(&mut self.core, &b.partial, now);
            b.partial.drain(..used.min(b.partial.len()));
            if b.link.take_drop_request() {
                self.bridge_write(key, now);
                self.bridge_drop_socket(key);
                return;
            }
            if tls {
                // Handshake messages, CONNECT after the handshake.
                self.bridge_write(key, now);
            }
            self.flush_urgent(now);
            if n < READ_CHUNK && !closed_seen && SHORT_READ_DRAINS {
                // A short read emptied (not on Windows: see
                // `platform::readiness`) the socket; new data brings a new
                // (edge-triggered) event.
                return;
            }
        }
        if !self.backlog.contains(&key) {
            self.backlog.push(key);
        }
    }

    /// The core has output for the bridge's local side: the link takes it
    /// (messages for the remote), then the remote socket is written.
    pub(super) fn bridge_flush(&mut self, key: usize, now: Instant) {
        if let Some(Endpoint::Bridge(b)) = self.conns.get_mut(key) {
            b.link.local_output(&mut self.core, now);
        }
        self.bridge_write(key, now);
    }

    /// Writes what the link has for the remote; drops the socket when the
    /// link asks.
    fn bridge_write(&mut self, key: usize, now: Instant) {
        loop {
            let Some(Endpoint::Bridge(b)) = self.conns.get_mut(key) else {
                return;
            };
            let drop_it = b.link.take_drop_request();
            let written = match (b.stream.as_mut(), b.established) {
                (Some(stream), true) => match b.tls.as_mut() {
                    None => write_plain(stream, &mut b.link.out),
                    Some(tls) => write_tls(stream, tls, &mut b.link.out),
                },
                _ => Ok(false),
            };
            let wrote_all = match written {
                Ok(all) => all,
                Err(e) => {
                    log::debug!("bridge {}: write error: {e}", b.link.name());
                    b.link.out.clear();
                    let why = format!("write error: {e}");
                    b.link.remote_closed(&mut self.core, now, &why);
                    self.bridge_drop_socket(key);
                    return;
                }
            };
            if drop_it {
                b.link.out.clear();
                self.bridge_drop_socket(key);
                return;
            }
            if !wrote_all {
                return;
            }
            // The socket took everything: more from the core, if it has any.
            let had_local = !self.core.pending_output(b.link.local_id()).is_empty();
            if b.paused && b.link.wants_remote_input(&self.core) && !self.backlog.contains(&key) {
                self.backlog.push(key);
            }
            if !had_local || b.link.out.len() >= OUT_HIGH_WATER {
                return;
            }
            b.link.local_output(&mut self.core, now);
            if b.link.out.is_empty() {
                return;
            }
        }
    }

    /// Forgets a bridge's socket when the loop stops.
    pub(super) fn bridge_close(&mut self, b: &mut BridgeConn) {
        if let Some(mut s) = b.stream.take() {
            if let Some(tls) = b.tls.as_mut().filter(|_| b.established) {
                tls.goodbye();
                let _ = tls.write_to(&mut s);
            }
            let _ = self.poll.registry().deregister(&mut s);
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}
