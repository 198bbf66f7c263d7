//! The event loop: one `mio::Poll`, the listeners, a slab of connections
//! whose keys are their tokens, and a `Waker` for other threads. It moves
//! bytes between sockets and the sans-IO [`Core`] and owns no MQTT logic.
//!
//! Reading: each readable socket is read into one shared 64 KiB buffer and
//! the core parses frames straight out of it; only the tail of a frame cut by
//! the read is copied into the connection's own buffer, so an idle connection
//! holds no buffer. Writing: after every turn, each connection the core
//! marked dirty gets one write of all its pending output (frames coalesced);
//! what the kernel does not take waits for the WRITABLE event.
//!
//! In-process clients (see [`crate::broker`]) are connections too: the slab
//! holds either a socket or a local endpoint whose bytes never leave memory.
//! Other threads reach the loop through a request channel and the waker
//! (`Server::attach_control`); a local endpoint whose subscriber is slow
//! leaves its output in the core and is retried when the subscriber wakes
//! the loop.

mod bridge;
mod bridge_tls;
pub mod hooks;
#[cfg(feature = "http")]
mod http;
#[cfg(not(feature = "http"))]
#[path = "http_off.rs"]
mod http;
mod linger;
pub(crate) mod local;
pub mod log_topic;
mod resolve;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::auth::Auth;
use crate::config::Config;
use crate::core::adapter::{self, Inbox};
use crate::core::{ConnId, Core};
use crate::platform::readiness::SHORT_READ_DRAINS;
use crate::stats::BrokerStats;
use local::{Drain, LocalConn, LocalRef, Request};

#[doc(hidden)]
pub mod fuzzing;
pub mod persist;
#[cfg(feature = "tls")]
mod tls;
mod transport;
#[cfg(feature = "websockets")]
mod ws;

/// Token of the waker (other threads asking the loop to look at its mailbox).
const WAKER: Token = Token(usize::MAX - 1);
/// Token of the signal pipe.
const SIGNALS: Token = Token(usize::MAX - 2);
/// Token of the persistence writer's wake-ups.
const PERSIST: Token = Token(usize::MAX - 3);
/// Token of the bridges' host name resolver (see `resolve`).
const RESOLVER: Token = Token(usize::MAX - 4);
/// Listeners take the tokens below `LISTENER_BASE`, counting down.
const LISTENER_BASE: usize = usize::MAX - 16;
/// Size of the shared read buffer.
const READ_CHUNK: usize = 64 * 1024;
/// Reads per connection per turn before others get a go.
const READS_PER_TURN: usize = 8;
/// Requests from other threads served per turn before sockets get a go.
const REQUESTS_PER_TURN: usize = 64;

fn listener_token(i: usize) -> Token {
    Token(LISTENER_BASE - i)
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

fn interrupted(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
}

struct NetConn {
    stream: TcpStream,
    /// The start of a frame that the last read cut off, or (while paused)
    /// bytes read and not yet taken by the core.
    inbox: Inbox,
    /// The core takes no input until the client reads its answers (see
    /// `Core::wants_input`); the socket is not read meanwhile.
    paused: bool,
    /// TLS and/or WebSockets (see `transport`); `None`: plain MQTT.
    layer: Option<Box<transport::Layer>>,
}

/// One slab entry: a socket, or an in-process client's endpoint.
enum Endpoint {
    Tcp(NetConn),
    /// Boxed, as few connections are in-process ones: the slab's slot
    /// stays the size of a socket's (see the test below).
    Local(Box<LocalConn>),
    /// A bridge: its local side in the core and its socket to the remote.
    Bridge(Box<bridge::BridgeConn>),
}

/// Requests from other threads (see [`Server::attach_control`]).
struct Control {
    rx: Receiver<Request>,
    next_serial: u64,
}

/// Binds a std listener for every listener of `config`, non-blocking.
///
/// # Errors
/// The first address that cannot be bound, with the system's error.
pub fn bind_listeners(
    config: &Config,
) -> Result<Vec<std::net::TcpListener>, (SocketAddr, io::Error)> {
    let mut listeners = Vec::new();
    for addr in config.effective_listeners() {
        let l = std::net::TcpListener::bind(addr).map_err(|e| (addr, e))?;
        l.set_nonblocking(true).map_err(|e| (addr, e))?;
        listeners.push(l);
    }
    Ok(listeners)
}

/// Reads and checks the TLS files of `config`'s listeners and bridges (a missing,
/// unreadable or non-PEM file, a key that does not fit its certificate).
///
/// # Errors
/// The first bad file, named in the error.
pub fn check_transports(config: &Config) -> Result<(), crate::config::ConfigError> {
    transport::Acceptor::load_all(config)?;
    bridge_tls::load_all(&config.bridges).map(drop)
}

/// Why the loop stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The operating system asked (SIGINT, SIGTERM; Ctrl-C, service stop).
    Signal(crate::platform::stop::Cause),
    /// Asked through the waker.
    Requested,
}

/// Bound listeners and the loop state, ready to run.
pub struct Server {
    poll: Poll,
    listeners: Vec<TcpListener>,
    /// TLS / WebSockets set-up of each listener (see `transport`).
    acceptors: Vec<transport::Acceptor>,
    conns: Slab<Endpoint>,
    /// Socket connections in `conns` (what `max_connections` bounds).
    tcp_count: usize,
    core: Core,
    read_buf: Vec<u8>,
    /// Connections that had more to read when their turn ended.
    backlog: Vec<usize>,
    /// Stop requests from the operating system (see `platform::stop`).
    signals: Option<crate::platform::stop::StopSource>,
    /// Where the password and ACL files are, for SIGHUP.
    auth_files: Config,
    control: Option<Control>,
    /// The application's hooks and events (see `hooks.rs`), when embedded.
    hooks: Option<hooks::LoopHooks>,
    /// Local endpoints whose subscriber had no room; retried on wake-up.
    blocked: Vec<usize>,
    /// Requests may be waiting beyond the last turn's budget.
    more_requests: bool,
    /// Slab keys of the bridges.
    bridges: Vec<usize>,
    /// Host name lookups for the bridges, off the loop thread.
    resolver: resolve::Resolver,
    /// The store, when persistence is on (see `persist.rs`).
    persist: Option<persist::Persistence>,
    /// When the server was made (uptime in [`BrokerStats`]).
    started: Instant,
    /// The HTTP status listener (see `http.rs`; feature `http`).
    http: Option<http::HttpServer>,
    /// Sockets closed after a DISCONNECT, waiting for the client's end.
    lingering: linger::Lingering,
}

impl Server {
    /// Binds every listener of `config`.
    ///
    /// # Errors
    /// The first listener that cannot be bound (address in use, permission
    /// denied, ...), with its address in the message.
    pub fn bind(config: &Config) -> io::Result<Server> {
        let listeners = bind_listeners(config).map_err(|(addr, e)| {
            let hint = crate::platform::bind::hint(&e).map(|h| format!(" ({h})"));
            let hint = hint.unwrap_or_default();
            io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}{hint}"))
        })?;
        let auth = config
            .load_auth()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        Server::from_listeners(config, listeners, auth)
    }

    /// A server on listeners bound already (by [`bind_listeners`], or by
    /// the caller), with `config`'s limits and access rules. This lets the
    /// listeners be bound on one thread and the loop run on another.
    /// Listener `i` gets the TLS / WebSockets settings of
    /// `config.listeners[i]` (none when there is no such entry).
    ///
    /// # Errors
    /// When the poller cannot be created or a listener registered, or a
    /// TLS certificate or key file is bad.
    pub fn from_listeners(
        config: &Config,
        listeners: Vec<std::net::TcpListener>,
        auth: Auth,
    ) -> io::Result<Server> {
        let acceptors = transport::Acceptor::load_all(config)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let bridge_tls = bridge_tls::load_all(&config.bridges)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let poll = Poll::new()?;
        let mut registered = Vec::with_capacity(listeners.len());
        for (i, l) in listeners.into_iter().enumerate() {
            l.set_nonblocking(true)?;
            let mut l = TcpListener::from_std(l);
            poll.registry()
                .register(&mut l, listener_token(i), Interest::READABLE)?;
            registered.push(l);
        }
        let mut server = Server {
            poll,
            listeners: registered,
            acceptors,
            // Reserved up to 65,536 slots (as the core's tables): the
            // default max_connections is the open file limit, up to 2^20,
            // and a reservation that large is commit charge on Windows.
            // The slab grows past it; `tcp_count` holds the limit.
            conns: Slab::with_capacity(config.limits.max_connections.min(1 << 16)),
            tcp_count: 0,
            core: {
                let mut core = Core::new(config.core_options());
                core.set_auth(auth);
                core
            },
            auth_files: config.clone(),
            read_buf: vec![0; READ_CHUNK],
            backlog: Vec::new(),
            signals: None,
            control: None,
            hooks: None,
            blocked: Vec::new(),
            more_requests: false,
            bridges: Vec::new(),
            resolver: resolve::Resolver::new(),
            persist: None,
            started: Instant::now(),
            http: None,
            lingering: linger::Lingering::default(),
        };
        server.start_bridges(&config.bridges, bridge_tls);
        Ok(server)
    }

    /// The addresses actually bound (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Stops the loop on SIGINT and SIGTERM and re-reads the password and
    /// ACL files on SIGHUP; on Windows, stops on Ctrl-C, Ctrl-Break, console
    /// close and the service's Stop (see `platform::stop`).
    ///
    /// # Errors
    /// When the signal handlers cannot be installed.
    pub fn handle_signals(&mut self) -> io::Result<()> {
        let source = crate::platform::stop::install(self.poll.registry(), SIGNALS)?;
        self.signals = Some(source);
        Ok(())
    }

    /// A waker other threads can use to interrupt the loop. A poller has
    /// one waker: call this once, and not on a server run by [`crate::Broker`].
    ///
    /// # Errors
    /// When the waker cannot be registered.
    pub fn waker(&self) -> io::Result<Waker> {
        Waker::new(self.poll.registry(), WAKER)
    }

    /// Serves the requests of the embedding API (in-process clients,
    /// counters, stop) arriving on `rx`; each sender wakes the loop with the
    /// returned waker after sending. Replaces [`Server::waker`].
    ///
    /// # Errors
    /// When the waker cannot be registered.
    pub(crate) fn attach_control(&mut self, rx: Receiver<Request>) -> io::Result<Arc<Waker>> {
        let waker = Arc::new(self.waker()?);
        self.control = Some(Control { rx, next_serial: 0 });
        Ok(waker)
    }

    /// Installs the application's hooks and events (see `net/hooks.rs`):
    /// verdicts come back on `verdicts` (the control channel) with a
    /// wake-up of `waker`; events go to `events`.
    pub(crate) fn attach_hooks(
        &mut self,
        app: hooks::AppHooks,
        verdicts: std::sync::mpsc::Sender<Request>,
        waker: Arc<Waker>,
        events: hooks::EventSink,
    ) {
        self.core.set_hooks(app.hook_set());
        let pool = app
            .any()
            .then(|| hooks::HookPool::new(app, verdicts, waker));
        self.hooks = Some(hooks::LoopHooks { pool, events });
    }

    /// Restores the core from an opened store (see [`persist::open`]) and
    /// starts its writer. Call before [`Server::run`].
    ///
    /// # Errors
    /// When the writer thread or its wake-up cannot be set up.
    pub fn attach_persistence(&mut self, opened: persist::Opened) -> io::Result<()> {
        let wake = crate::platform::wake::pair(self.poll.registry(), PERSIST)?;
        let p = persist::Persistence::attach(opened, &mut self.core, Instant::now(), wake)?;
        self.persist = Some(p);
        Ok(())
    }

    /// Every figure: the core's, the bridges', uptime and the store's health.
    fn stats(&self, now: Instant) -> BrokerStats {
        BrokerStats {
            core: self.core.stats(),
            bridges: self.bridge_stats(),
            uptime: now.saturating_duration_since(self.started),
            store: self.persist.as_ref().map(persist::Persistence::status),
        }
    }

    /// Whether slab entry `key` is a bridge (its token is the bridge's
    /// socket, its connection id the bridge's local side).
    fn is_bridge(&self, key: usize) -> bool {
        matches!(self.conns.get(key), Some(Endpoint::Bridge(_)))
    }

    /// `log_dest topic`: publishes the log lines that wait (see
    /// `log_topic.rs`); what is logged meanwhile stays off the topics.
    fn publish_log_lines(&mut self, now: Instant) {
        if !log_topic::enabled() {
            return;
        }
        let (lines, dropped) = log_topic::take();
        if lines.is_empty() && dropped == 0 {
            return;
        }
        let _publishing = log_topic::Publishing::start();
        for (topic, line) in &lines {
            self.core.publish_log_line(topic, line.as_bytes(), now);
        }
        if dropped > 0 {
            let line = format!(
                "{dropped} log lines were not published on $SYS/broker/log/ (more than {} waited)",
                log_topic::MAX_LINES
            );
            if let Some(topic) = log_topic::topic_of(log::Level::Warn) {
                self.core.publish_log_line(topic, line.as_bytes(), now);
            }
        }
    }

    /// The broker core (counters, limits).
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Runs until a signal arrives (see [`Server::handle_signals`]) or
    /// `on_wake` returns `true` after a wake-up. `on_wake` gets the core to
    /// act on requests from other threads.
    ///
    /// # Errors
    /// Only when polling itself fails.
    pub fn run(
        &mut self,
        mut on_wake: impl FnMut(&mut Core, Instant) -> bool,
    ) -> io::Result<StopReason> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            let timeout = if self.backlog.is_empty() && !self.more_requests {
                let retry = self.persist.as_ref().and_then(|p| p.retry_deadline());
                let next = [
                    self.core.next_deadline(),
                    self.bridge_deadline(),
                    retry,
                    self.http_deadline(),
                    self.lingering.deadline(),
                ]
                .into_iter()
                .flatten()
                .min();
                next.map(|d| d.saturating_duration_since(now) + Duration::from_millis(1))
            } else {
                Some(Duration::ZERO)
            };
            // A logger that batches the loop's lines writes them now, not
            // while the loop sleeps (see the binary's logger.rs).
            log::logger().flush();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if interrupted(&e) {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            let backlog = std::mem::take(&mut self.backlog);
            for key in backlog {
                self.read_conn(key, false, now);
                self.flush_urgent(now);
            }
            if self.more_requests && self.handle_requests(now) {
                self.shutdown(now);
                return Ok(StopReason::Requested);
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {
                        if self.handle_requests(now) || on_wake(&mut self.core, now) {
                            self.shutdown(now);
                            return Ok(StopReason::Requested);
                        }
                    }
                    RESOLVER => self.bridge_resolved(now),
                    PERSIST => {
                        if let Some(p) = self.persist.as_mut() {
                            p.poll(&mut self.core, now);
                        }
                    }
                    SIGNALS => {
                        use crate::platform::stop::Request as Os;
                        let pending = self
                            .signals
                            .as_mut()
                            .map(|s| s.pending())
                            .unwrap_or_default();
                        for request in pending {
                            let cause = match request {
                                Os::Reload => {
                                    self.reload_auth();
                                    continue;
                                }
                                Os::Stop(cause) => cause,
                            };
                            log::info!("{cause} received; stopping");
                            self.shutdown(now);
                            return Ok(StopReason::Signal(cause));
                        }
                    }
                    Token(t) if t > LISTENER_BASE - self.listeners.len() && t <= LISTENER_BASE => {
                        self.accept(LISTENER_BASE - t, now);
                    }
                    token if http::owns(token) => self.http_event(token, now),
                    token if linger::Lingering::owns(token) => {
                        self.lingering
                            .event(self.poll.registry(), token, &mut self.read_buf);
                    }
                    Token(key) if self.is_bridge(key) => {
                        self.bridge_event(key, event, now);
                        self.flush_urgent(now);
                    }
                    Token(key) => {
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.read_conn(key, event.is_read_closed() || event.is_error(), now);
                            self.flush_urgent(now);
                        }
                        if event.is_writable() && self.conns.contains(key) {
                            self.flush(key, now);
                        }
                    }
                }
            }
            self.core.handle_timeout(now);
            self.lingering.tick(self.poll.registry(), now);
            self.bridge_tick(now);
            self.http_tick(now);
            self.publish_log_lines(now);
            // Group commit: what this turn recorded goes to the writer
            // thread; the acknowledgements it holds go out once it is
            // durable (see persist.rs).
            if let Some(p) = self.persist.as_mut() {
                p.end_of_turn(&mut self.core, now);
            }
            if let Some(h) = self.hooks.as_mut() {
                h.pump(&mut self.core, now);
            }
            self.flush_dirty(now);
            // Paused publishers the core lets go: read them next turn.
            while let Some(id) = self.core.poll_resumed() {
                if !self.backlog.contains(&id.0) {
                    self.backlog.push(id.0);
                }
            }
        }
    }

    /// SIGHUP: re-reads the password and ACL files. A broken file keeps
    /// the rules in force and says what is wrong (file, line).
    fn reload_auth(&mut self) {
        let files = &self.auth_files;
        if files.password_file.is_none() && files.acl_file.is_none() {
            log::info!("SIGHUP: no password_file or acl_file to reload");
            return;
        }
        match files.load_auth() {
            Ok(auth) => {
                self.http_reload(&auth);
                self.core.set_auth(auth);
                log::info!("SIGHUP: password and ACL files reloaded");
            }
            Err(e) => log::error!("SIGHUP: {e}; the previous rules stay in force"),
        }
    }

    fn accept(&mut self, index: usize, now: Instant) {
        loop {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            let (mut stream, peer) = match listener.accept() {
                Ok(x) => x,
                Err(e) if would_block(&e) => return,
                Err(e) if interrupted(&e) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: log, keep serving.
                    log::error!("accept failed: {e}");
                    return;
                }
            };
            // Slab::with_capacity is only a hint; the bound is checked here.
            if self.tcp_count >= self.core.limits().max_connections {
                log::warn!(
                    "connection from {peer} refused: max_connections ({}) reached",
                    self.core.limits().max_connections
                );
                drop(stream);
                continue;
            }
            let Ok(layer) = transport::layer_for(&self.acceptors, index) else {
                continue;
            };
            // Button presses are tiny packets: send them at once.
            let _ = stream.set_nodelay(true);
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            if let Err(e) = self.poll.registry().register(
                &mut stream,
                Token(key),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                log::error!("cannot register connection from {peer}: {e}");
                continue;
            }
            entry.insert(Endpoint::Tcp(NetConn {
                stream,
                inbox: Inbox::default(),
                paused: false,
                layer,
            }));
            self.tcp_count += 1;
            log::debug!("new connection from {peer} (slot {key})");
            self.core.handle_open(ConnId(key), &peer.to_string(), now);
            self.core.set_listener(ConnId(key), index);
        }
    }

    /// Reads what connection `key` has for the core. `closed_seen`: the
    /// event said the peer closed its side, so read on to the end.
    fn read_conn(&mut self, key: usize, closed_seen: bool, now: Instant) {
        let id = ConnId(key);
        if self.is_bridge(key) {
            return self.bridge_read(key, closed_seen, now);
        }
        let Some(Endpoint::Tcp(conn)) = self.conns.get_mut(key) else {
            return;
        };
        if conn.paused {
            if !self.core.wants_input(id) {
                return;
            }
            // Resuming: first what was read before the pause.
            conn.paused = false;
            if !conn.inbox.is_empty() {
                conn.inbox.feed(&mut self.core, id, &[], now);
                if self.core.is_closing(id) {
                    return;
                }
            }
        }
        for _ in 0..READS_PER_TURN {
            let Some(Endpoint::Tcp(conn)) = self.conns.get_mut(key) else {
                return;
            };
            if !self.core.wants_input(id) {
                // Its answers are piling up unread: stop reading it until
                // `flush` sees them drain.
                conn.paused = true;
                return;
            }
            let n = match conn.stream.read(&mut self.read_buf) {
                Ok(0) => return self.close(key, now),
                Ok(n) => n,
                Err(e) if would_block(&e) => return,
                Err(e) if interrupted(&e) => continue,
                Err(e) => {
                    log::debug!("read error on slot {key}: {e}");
                    return self.close(key, now);
                }
            };
            let fresh = &self.read_buf[..n];
            if let Some(layer) = conn.layer.as_deref_mut() {
                // TLS / WebSockets: decoded bytes join the inbox.
                let (stream, inbox) = (&mut conn.stream, &mut conn.inbox);
                if !transport::read(layer, stream, fresh, inbox, &mut self.core, id, now) {
                    return self.close(key, now);
                }
            } else {
                conn.inbox.feed(&mut self.core, id, fresh, now);
            }
            if self.core.is_closing(id) {
                return;
            }
            if !self.core.wants_input(id) {
                // Paused in the middle of what was read (see
                // `Core::wants_input`): the rest waits in the inbox and is
                // handed in first on resuming, even if no new data comes.
                conn.paused = true;
            }
            // What this read produced for subscribers goes out before the
            // next read adds more.
            self.flush_urgent(now);
            if n < READ_CHUNK && !closed_seen && SHORT_READ_DRAINS {
                // A short read emptied (not on Windows: see
                // `platform::readiness`) the socket; new data brings a new
                // (edge-triggered) event, so no read just to see WouldBlock.
                return;
            }
        }
        // Still readable: come back next turn, after the others.
        self.backlog.push(key);
    }

    /// Writes the connections whose output passed the core's mark during
    /// this turn (see `Core::poll_urgent`).
    fn flush_urgent(&mut self, now: Instant) {
        while let Some(id) = self.core.poll_urgent() {
            self.flush(id.0, now);
        }
    }

    fn flush_dirty(&mut self, now: Instant) {
        while let Some(id) = self.core.poll_dirty() {
            self.flush(id.0, now);
        }
    }

    /// Writes what the core has for `key`; closes it if the core asks.
    fn flush(&mut self, key: usize, now: Instant) {
        let id = ConnId(key);
        if self.is_bridge(key) {
            return self.bridge_flush(key, now);
        }
        if let Some(Endpoint::Local(local)) = self.conns.get_mut(key) {
            match local.drain(&mut self.core, now) {
                Drain::Done => {}
                Drain::Blocked => {
                    if !self.core.is_closing(id) {
                        if !self.blocked.contains(&key) {
                            self.blocked.push(key);
                        }
                        return;
                    }
                }
                Drain::Broken => return self.close(key, now),
            }
            if self.core.is_closing(id) {
                self.close(key, now);
            }
            return;
        }
        let Some(Endpoint::Tcp(conn)) = self.conns.get_mut(key) else {
            return;
        };
        let written = if let Some(layer) = conn.layer.as_deref_mut() {
            match layer.flush(&mut conn.stream, &mut self.core, id, now) {
                transport::Flushed::Done => true,
                transport::Flushed::Blocked => false,
                transport::Flushed::Broken => return self.close(key, now),
            }
        } else {
            let stream = &mut conn.stream;
            let mut failed = None;
            adapter::drain(&mut self.core, id, now, |out| {
                loop {
                    match stream.write(out) {
                        Ok(0) => {
                            failed = Some(io::Error::from(io::ErrorKind::WriteZero));
                            return 0;
                        }
                        Ok(n) => return n,
                        Err(e) if would_block(&e) => return 0,
                        Err(e) if interrupted(&e) => {}
                        Err(e) => {
                            failed = Some(e);
                            return 0;
                        }
                    }
                }
            });
            if let Some(e) = failed {
                log::debug!("write error on slot {key}: {e}");
                return self.close(key, now);
            }
            self.core.pending_output(id).is_empty()
        };
        if conn.paused && self.core.wants_input(id) && !self.backlog.contains(&key) {
            // Readable data may be waiting with no new event to come: read
            // it next turn.
            self.backlog.push(key);
        }
        if !written && !self.core.is_closing(id) {
            // The socket takes no more: WRITABLE brings us back. (Closing
            // and the peer does not read: do not wait.)
            return;
        }
        if self.core.is_closing(id) {
            self.close(key, now);
        }
    }

    /// Deregisters and forgets a connection. The slab key is freed only
    /// after deregistering, so a reused token never points at a stale socket.
    fn close(&mut self, key: usize, now: Instant) {
        if !self.conns.contains(key) {
            return;
        }
        match self.conns.remove(key) {
            Endpoint::Tcp(mut conn) => {
                if let Some(layer) = conn.layer.as_deref_mut() {
                    layer.finish(&mut conn.stream);
                }
                let _ = self.poll.registry().deregister(&mut conn.stream);
                self.tcp_count = self.tcp_count.saturating_sub(1);
                // No shutdown(2) in general: dropping the stream closes the
                // only descriptor, which sends the FIN itself; the extra
                // call was 20 % of the broker's CPU in the press cycle
                // (perf). Only a client told why by a DISCONNECT lingers.
                if self.core.linger(ConnId(key)) {
                    self.lingering.add(self.poll.registry(), conn.stream, now);
                }
            }
            Endpoint::Local(mut local) => local.closed(),
            Endpoint::Bridge(mut b) => {
                self.bridge_close(&mut b);
                self.bridges.retain(|&k| k != key);
            }
        }
        self.core.handle_close(ConnId(key), now);
    }

    /// Serves what other threads asked for (at most `REQUESTS_PER_TURN`;
    /// `more_requests` says when some were left for the next turn), then
    /// retries the local endpoints whose subscribers had no room. `true`
    /// when asked to stop.
    fn handle_requests(&mut self, now: Instant) -> bool {
        let mut exhausted = true;
        for _ in 0..REQUESTS_PER_TURN {
            let Some(control) = self.control.as_mut() else {
                return false;
            };
            let request = match control.rx.try_recv() {
                Ok(r) => r,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                    exhausted = false;
                    break;
                }
            };
            match request {
                Request::Open(open) => {
                    control.next_serial += 1;
                    let entry = self.conns.vacant_entry();
                    let me = LocalRef {
                        key: entry.key(),
                        serial: control.next_serial,
                    };
                    let conn = LocalConn::open(&mut self.core, me, open, now);
                    entry.insert(Endpoint::Local(Box::new(conn)));
                }
                Request::Publish { to, message, reply } => {
                    let result = match self.conns.get_mut(to.key) {
                        Some(Endpoint::Local(l)) if l.is(to) => {
                            l.publish(&mut self.core, &message, now)
                        }
                        _ => Err(local::ClientError::Disconnected),
                    };
                    // The requester may have timed out; nothing to tell then.
                    let _ = reply.try_send(result);
                }
                Request::Close(to) => {
                    if let Some(Endpoint::Local(l)) = self.conns.get_mut(to.key) {
                        if l.is(to) {
                            l.disconnect(&mut self.core, now);
                        }
                    }
                }
                Request::Stats(reply) => {
                    let _ = reply.try_send(self.stats(now));
                }
                Request::Stop => return true,
                Request::Verdict {
                    conn,
                    ticket,
                    verdict,
                } => self.core.handle_verdict(conn, ticket, verdict, now),
            }
            // Hand each request's effects out before the next one, as a
            // socket's output would drain between its peer's packets.
            self.flush_dirty(now);
        }
        // Left over after the per-turn budget: come back next turn.
        self.more_requests = exhausted;
        for key in std::mem::take(&mut self.blocked) {
            self.flush(key, now);
        }
        false
    }

    /// Graceful stop: every client is told (5.0: DISCONNECT 0x8B) and closed
    /// after its pending output had a last chance to go out.
    fn shutdown(&mut self, now: Instant) {
        self.core.shutdown(now);
        if let Some(p) = self.persist.as_mut() {
            p.finish(&mut self.core, now);
        }
        self.flush_dirty(now);
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.close(key, now);
        }
        self.http_close_all();
    }
}

#[cfg(test)]
mod tests {
    /// The per-connection accounting of docs/LIMITS.md counts on it: a
    /// slab slot is no larger than a socket connection (40 bytes in a
    /// release build; mio adds a selector id under debug assertions).
    #[test]
    fn slab_slot_is_a_socket_connection() {
        use std::mem::size_of;
        assert_eq!(size_of::<super::Endpoint>(), size_of::<super::NetConn>());
    }
}
