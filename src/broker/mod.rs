//! The embedding API: run the broker inside an application.
//!
//! ```
//! use boxmq::{Broker, BrokerState, QoS};
//! use std::time::Duration;
//!
//! let mut broker = Broker::builder().port(0).build();
//! assert_eq!(broker.state(), BrokerState::Init);
//! let handle = broker.start()?;            // listeners bound, loop thread running
//! assert_eq!(handle.state(), BrokerState::Running);
//! println!("sensors connect to {:?}", handle.local_addrs());
//!
//! let app = handle.client("dashboard")?;   // in-process, no socket
//! let presses = app.subscribe("buttons/+/press", QoS::AtLeastOnce)?;
//! app.publish("buttons/door/press", b"S", QoS::AtLeastOnce, false)?;
//! let m = presses.recv_timeout(Duration::from_secs(5))?;
//! assert_eq!(m.topic, "buttons/door/press");
//!
//! handle.stop()?;                          // clients are disconnected cleanly
//! assert_eq!(broker.state(), BrokerState::Stopped);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Threading: the broker is single-threaded. [`Broker::start`] binds the
//! listeners on the calling thread and runs the event loop on a thread of
//! its own; [`Broker::run`] runs it on the calling thread. Everything else
//! talks to the loop through a channel and a wake-up, never by sharing the
//! broker's state. See `docs/EMBEDDING.md`.

mod client;
mod error;
mod events;
mod http;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use mio::Waker;

pub use crate::core::{Event, EventKind};
pub use crate::net::hooks::{
    AppHooks, ConnectHook, ConnectRequest, Decision, PublishHook, PublishRequest, SubscribeHook,
    SubscribeRequest,
};
pub use crate::net::local::{ClientError, Message};
pub use client::{CallbackSubscription, Client, Subscription};
pub use error::{BrokerError, RecvTimeoutError, TryRecvError};
pub use events::Events;

use crate::Limits;
use crate::auth::Auth;
use crate::config::{Config, ConfigError, ListenerConfig};
use crate::net::Server;
use crate::net::hooks::EventSink;
use crate::net::local::Request;
use crate::stats::BrokerStats;
use client::{REQUEST_TIMEOUT, SUB_SUFFIX_ROOM, Shared};
use events::EventsInner;
use std::sync::atomic::AtomicU64;

/// How long [`Handle::stop`] waits for the loop thread to end.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the broker is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrokerState {
    /// Built, not started.
    Init,
    /// Listeners bound; the event loop is running.
    Running,
    /// Stopped (by [`Handle::stop`], by dropping the [`Broker`], or by a
    /// signal with [`Broker::stop_on_signals`]).
    Stopped,
    /// Could not start, or the event loop failed; the reason, such as
    /// `cannot listen on 127.0.0.1:1883: Address already in use`.
    Failed(String),
}

impl fmt::Display for BrokerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerState::Init => f.write_str("Init"),
            BrokerState::Running => f.write_str("Running"),
            BrokerState::Stopped => f.write_str("Stopped"),
            BrokerState::Failed(why) => write!(f, "Failed: {why}"),
        }
    }
}

/// The state, shared by the broker, its handles and the loop thread.
#[derive(Clone)]
struct SharedState(Arc<Mutex<BrokerState>>);

impl SharedState {
    fn lock(&self) -> MutexGuard<'_, BrokerState> {
        // Only whole values are stored: a poisoned lock holds a valid state.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
    fn get(&self) -> BrokerState {
        self.lock().clone()
    }
    fn set(&self, s: BrokerState) {
        *self.lock() = s;
    }
}

/// Settings for [`Broker::builder`]: the common ones, with the defaults of
/// the `boxmq` binary. For everything else build a [`Config`] and use
/// [`Broker::new`].
#[derive(Clone, Debug)]
pub struct BrokerBuilder {
    config: Config,
    error: Option<String>,
    hooks: AppHooks,
}

impl BrokerBuilder {
    /// Also listen on `addr`, an `IP:PORT` such as `"127.0.0.1:1883"` or
    /// `"[::1]:1883"` (port 0: the system picks one; see
    /// [`Handle::local_addrs`]). Without `listen` or `port` the broker
    /// listens on 127.0.0.1:1883. A malformed address makes
    /// [`Broker::start`] fail with [`BrokerError::Config`].
    pub fn listen(mut self, addr: impl AsRef<str>) -> Self {
        let text = addr.as_ref();
        match text.trim().parse::<SocketAddr>() {
            Ok(addr) => self.config.listeners.push(ListenerConfig::new(addr)),
            Err(_) => {
                self.error.get_or_insert(format!(
                    "listen address {text:?}: expected IP:PORT such as 127.0.0.1:1883"
                ));
            }
        }
        self
    }

    /// Also listen on 127.0.0.1 at `port` (0: the system picks one).
    pub fn port(mut self, port: u16) -> Self {
        self.config
            .listeners
            .push(ListenerConfig::new(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                port,
            )));
        self
    }

    /// Every bound of the broker (see [`Limits`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// Whether network clients without a user name may connect (default
    /// `true`). In-process clients are the application's own and need no
    /// credentials. Password and ACL files come from [`Config`]
    /// (`password_file`, `acl_file`) through [`Broker::new`].
    pub fn allow_anonymous(mut self, allow: bool) -> Self {
        self.config.allow_anonymous = allow;
        self
    }

    /// Seconds between updates of the `$SYS/broker/...` topics (default
    /// 10); 0 turns them off.
    pub fn sys_interval(mut self, secs: u32) -> Self {
        self.config.sys_interval = secs;
        self
    }

    /// Adds a bridge to another broker (the embedding form of a
    /// `connection` section; see docs/BRIDGING.md). Checked by
    /// [`BrokerBuilder::try_build`].
    pub fn bridge(mut self, bridge: crate::bridge::BridgeConfig) -> Self {
        if let Err(e) = bridge.check() {
            self.error.get_or_insert(e);
        }
        self.config.bridges.push(bridge);
        self
    }

    /// Keeps the broker's state in directory `dir` (full mode, durable
    /// acknowledgements; see docs/PERSISTENCE.md), restored at the next
    /// start. Off by default for an embedded broker.
    pub fn persistence(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.config.persistence.enabled = Some(true);
        self.config.persistence.location = Some(dir.into());
        self
    }

    /// What [`BrokerBuilder::persistence`] keeps: everything (default) or
    /// retained messages only.
    pub fn persistence_mode(mut self, mode: crate::core::PersistMode) -> Self {
        self.config.persistence.mode = mode;
        self
    }

    /// Whether acknowledgements wait for `fdatasync` (default `true`).
    /// With `false` the state is written every loop turn and the OS syncs
    /// it later: faster, but a power cut loses the last seconds.
    pub fn persistence_sync(mut self, sync: bool) -> Self {
        self.config.persistence.sync = sync;
        self
    }

    /// Also serves the HTTP status listener on `addr`, an `IP:PORT` such
    /// as `"127.0.0.1:8080"` (port 0: the system picks one; see
    /// [`Handle::http_addr`]): `/health`, `/metrics`, `/status.json` and
    /// a status page, from the same event loop (cargo feature `http`; see
    /// [`crate::config::HttpConfig`] for its bounds and basic auth). A
    /// malformed address makes [`Broker::start`] fail with
    /// [`BrokerError::Config`].
    #[cfg(feature = "http")]
    pub fn http_listener(mut self, addr: impl AsRef<str>) -> Self {
        let text = addr.as_ref();
        match text.trim().parse::<SocketAddr>() {
            Ok(addr) => self.config.http.listener = Some(addr),
            Err(_) => {
                self.error.get_or_insert(format!(
                    "HTTP listen address {text:?}: expected IP:PORT such as 127.0.0.1:8080"
                ));
            }
        }
        self
    }

    /// The application decides who connects: `f` is asked about every
    /// CONNECT from the network (after the password file, or instead of it
    /// with [`BrokerBuilder::on_connect_replaces_files`]) and returns
    /// `true` / [`Decision::Accept`] to let the client in, `false` /
    /// [`Decision::Refuse`] for CONNACK 0x05 (3.1.1) / 0x87 (5.0), or
    /// [`Decision::BadCredentials`] for 0x04 / 0x86. It runs on a hook
    /// worker thread (`boxmq-hook`), never on the loop: the client waits,
    /// every other client goes on (see docs/EMBEDDING.md, "Application
    /// hooks"). A panic refuses. In-process clients and bridges are not
    /// asked.
    pub fn on_connect<F, D>(mut self, f: F) -> Self
    where
        F: Fn(&ConnectRequest) -> D + Send + Sync + 'static,
        D: Into<Decision>,
    {
        self.hooks.on_connect = Some(Arc::new(move |r: &ConnectRequest| f(r).into()));
        self
    }

    /// The application decides what is routed: `f` is asked about every
    /// PUBLISH from the network (after the ACL). Refused, the message is
    /// not routed; QoS 1/2 are acknowledged all the same (5.0 with reason
    /// 0x87, as for an ACL denial). The publisher's later packets wait
    /// behind it, in order. Runs as [`BrokerBuilder::on_connect`].
    pub fn on_publish<F, D>(mut self, f: F) -> Self
    where
        F: Fn(&PublishRequest) -> D + Send + Sync + 'static,
        D: Into<Decision>,
    {
        self.hooks.on_publish = Some(Arc::new(move |r: &PublishRequest| f(r).into()));
        self
    }

    /// The application decides what may be subscribed: `f` is asked about
    /// each filter of every SUBSCRIBE from the network; a refused filter
    /// gets SUBACK 0x80 (3.1.1) / 0x87 (5.0). Runs as
    /// [`BrokerBuilder::on_connect`].
    pub fn on_subscribe<F, D>(mut self, f: F) -> Self
    where
        F: Fn(&SubscribeRequest) -> D + Send + Sync + 'static,
        D: Into<Decision>,
    {
        self.hooks.on_subscribe = Some(Arc::new(move |r: &SubscribeRequest| f(r).into()));
        self
    }

    /// With `true`, [`BrokerBuilder::on_connect`] decides who connects
    /// instead of the password file and `allow_anonymous` (the ACL file
    /// still applies to what clients do). Default `false`: the file first,
    /// then the hook.
    pub fn on_connect_replaces_files(mut self, replaces: bool) -> Self {
        self.hooks.connect_replaces_files = replaces;
        self
    }

    /// How long a hook may take (default 5 s): a verdict that does not come
    /// in time refuses.
    pub fn hook_timeout(mut self, timeout: Duration) -> Self {
        self.hooks.timeout = timeout;
        self
    }

    /// Room in the events channel (default 1024, at least 1; see
    /// [`Handle::events`]).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.hooks.event_capacity = capacity.max(1);
        self
    }

    /// The broker. Errors in the settings surface in [`Broker::start`] or
    /// [`Broker::run`]; use [`BrokerBuilder::try_build`] to see them now.
    pub fn build(self) -> Broker {
        let mut broker = Broker::new(self.config);
        broker.builder_error = self.error;
        broker.hooks = self.hooks;
        broker
    }

    /// The broker, or the first error in the settings.
    ///
    /// # Errors
    /// [`BrokerError::Config`] for a malformed listen address.
    pub fn try_build(self) -> Result<Broker, BrokerError> {
        match self.error {
            Some(message) => Err(BrokerError::Config(builder_error(message))),
            None => {
                let mut broker = Broker::new(self.config);
                broker.hooks = self.hooks;
                Ok(broker)
            }
        }
    }
}

fn builder_error(message: String) -> ConfigError {
    ConfigError {
        origin: "Broker::builder".to_owned(),
        line: 0,
        message,
    }
}

/// An MQTT broker to run inside an application. See the [module
/// documentation](self).
///
/// Dropping the `Broker` stops it (as [`Handle::stop`]); [`Handle`]s
/// outlive it only to report [`BrokerError::NotRunning`].
pub struct Broker {
    config: Config,
    state: SharedState,
    builder_error: Option<String>,
    stop_on_signals: bool,
    handle: Option<Handle>,
    hooks: AppHooks,
}

impl Broker {
    /// A broker with the settings of `config` (listeners, limits, access),
    /// the same the `boxmq` binary reads from its config file.
    pub fn new(config: Config) -> Broker {
        Broker {
            config,
            state: SharedState(Arc::new(Mutex::new(BrokerState::Init))),
            builder_error: None,
            stop_on_signals: false,
            handle: None,
            hooks: AppHooks::default(),
        }
    }

    /// A broker configured by a mosquitto.conf-style file (see
    /// [`Config::from_file`]).
    ///
    /// # Errors
    /// [`BrokerError::Config`] with the file, line and problem.
    pub fn from_config_file(path: impl AsRef<Path>) -> Result<Broker, BrokerError> {
        Ok(Broker::new(Config::from_file(path.as_ref())?))
    }

    /// Settings for the common cases; see [`BrokerBuilder`].
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder {
            config: Config::default(),
            error: None,
            hooks: AppHooks::default(),
        }
    }

    /// The application's hooks (see [`BrokerBuilder::on_connect`]), to set
    /// or change before [`Broker::start`]: each start takes them as they
    /// are then. For bindings that make the broker from a [`Config`] (the
    /// C ABI, Python).
    pub fn hooks_mut(&mut self) -> &mut AppHooks {
        &mut self.hooks
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Makes SIGINT and SIGTERM stop the broker gracefully (off by default:
    /// signals belong to the application). Takes effect at the next
    /// [`Broker::start`] or [`Broker::run`].
    pub fn stop_on_signals(&mut self, on: bool) -> &mut Self {
        self.stop_on_signals = on;
        self
    }

    /// The state now.
    pub fn state(&self) -> BrokerState {
        self.state.get()
    }

    /// The handle of the running broker, if started.
    pub fn handle(&self) -> Option<Handle> {
        self.handle.clone()
    }

    fn fail(&self, e: BrokerError) -> BrokerError {
        self.state.set(BrokerState::Failed(e.to_string()));
        e
    }

    /// Checks the state and binds the listeners: everything that can go
    /// wrong before the loop runs, on the calling thread.
    fn prepare(&mut self) -> Result<Prepared, BrokerError> {
        if self.state.get() == BrokerState::Running {
            return Err(BrokerError::AlreadyRunning);
        }
        if let Some(message) = self.builder_error.clone() {
            return Err(self.fail(BrokerError::Config(builder_error(message))));
        }
        let auth = self
            .config
            .load_auth()
            .map_err(|e| self.fail(BrokerError::Config(e)))?;
        // TLS certificate and key files: refused here, as a config error.
        crate::net::check_transports(&self.config)
            .map_err(|e| self.fail(BrokerError::Config(e)))?;
        // Off unless the config turns it on (the binary turns it on by
        // default before it gets here). Opened before binding: a second
        // broker on the same directory stops here.
        let store = crate::net::persist::open(&self.config, false)
            .map_err(|e| self.fail(BrokerError::Persistence(e)))?;
        let listeners = crate::net::bind_listeners(&self.config)
            .map_err(|(addr, source)| self.fail(BrokerError::Bind { addr, source }))?;
        let http = http::bind(&self.config).map_err(|e| self.fail(e))?;
        Ok((listeners, auth, store, http))
    }

    /// Binds the listeners on the calling thread and runs the broker on a
    /// thread of its own. The state is `Running` when this returns `Ok`.
    ///
    /// # Errors
    /// [`BrokerError::Bind`] (port in use, permission denied) and
    /// [`BrokerError::Config`] come back here, and the state becomes
    /// `Failed` with the reason; [`BrokerError::AlreadyRunning`] if it runs.
    ///
    /// ```
    /// use boxmq::{Broker, BrokerError, BrokerState};
    /// let mut first = Broker::builder().port(0).build();
    /// let handle = first.start()?;
    /// let taken = handle.local_addrs()[0];
    ///
    /// let mut second = Broker::builder().listen(taken.to_string()).build();
    /// assert!(matches!(second.start(), Err(BrokerError::Bind { .. })));
    /// assert!(matches!(second.state(), BrokerState::Failed(_)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(&mut self) -> Result<Handle, BrokerError> {
        let (listeners, auth, store, http) = self.prepare()?;
        let http_addr = http.as_ref().and_then(|l| l.local_addr().ok());
        let (tx, rx) = mpsc::channel();
        let (events_tx, events_rx) = mpsc::sync_channel(self.hooks.event_capacity);
        let lost = Arc::new(AtomicU64::new(0));
        let hooks = (
            self.hooks.clone(),
            tx.clone(),
            EventSink {
                tx: events_tx,
                lost: lost.clone(),
            },
        );
        let (setup_tx, setup_rx) = mpsc::sync_channel(1);
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        let config = self.config.clone();
        let state = self.state.clone();
        let signals = self.stop_on_signals;
        let thread = thread::Builder::new()
            .name("boxmq".to_owned())
            .spawn(move || {
                loop_thread(
                    config,
                    (listeners, auth, store, http),
                    signals,
                    rx,
                    hooks,
                    setup_tx,
                    state,
                );
                // Listeners are closed and the state final: stop may return.
                let _ = done_tx.send(());
            })
            .map_err(|e| self.fail(BrokerError::Io(e)))?;
        let (waker, addrs) = match setup_rx.recv() {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(self.fail(BrokerError::Io(e)));
            }
            Err(_) => {
                let _ = thread.join();
                return Err(self.fail(BrokerError::Io(std::io::Error::other(
                    "the broker thread ended during setup",
                ))));
            }
        };
        let handle = Handle {
            inner: Arc::new(HandleInner {
                shared: Arc::new(Shared {
                    tx,
                    waker,
                    limits: self.config.limits.clone(),
                }),
                state: self.state.clone(),
                addrs,
                http_addr,
                thread: Mutex::new(Some((done_rx, thread))),
                events: Events {
                    inner: Arc::new(EventsInner {
                        rx: Mutex::new(events_rx),
                        lost,
                    }),
                },
            }),
        };
        self.handle = Some(handle.clone());
        Ok(handle)
    }

    /// Runs the broker on the calling thread until it stops: by a signal
    /// when [`Broker::stop_on_signals`] is on, or when the loop fails. For
    /// programs that give the broker their main thread, like the `boxmq`
    /// binary; no [`Handle`] exists in this mode. With `user` set in the
    /// config and run as root, the process becomes that user once the
    /// listeners are bound, their TLS files read and the store open
    /// (`crate::privileges`).
    ///
    /// # Errors
    /// As [`Broker::start`], and [`BrokerError::Io`] when the loop fails;
    /// the state tells the same.
    pub fn run(mut self) -> Result<(), BrokerError> {
        let (listeners, auth, store, http) = self.prepare()?;
        // The password file for basic auth, copied only with a listener.
        let http = http.map(|l| (l, auth.clone()));
        let mut server = Server::from_listeners(&self.config, listeners, auth)
            .map_err(|e| self.fail(BrokerError::Io(e)))?;
        http::attach(&mut server, http, &self.config).map_err(|e| self.fail(BrokerError::Io(e)))?;
        // `user`: listeners bound, TLS files read, the store open, and
        // still one thread (the store's writer starts below).
        if let Some(user) = self.config.user.clone() {
            match crate::privileges::become_user(&user) {
                Ok(Some(b)) => log::info!("running as user {} ({}:{})", b.name, b.uid, b.gid),
                Ok(None) => {}
                Err(message) => {
                    let e = crate::config::ConfigError {
                        origin: "boxmq".to_owned(),
                        line: 0,
                        message,
                    };
                    return Err(self.fail(BrokerError::Config(e)));
                }
            }
        }
        if let Some(store) = store {
            server
                .attach_persistence(store)
                .map_err(|e| self.fail(BrokerError::Io(e)))?;
        }
        if self.stop_on_signals {
            server
                .handle_signals()
                .map_err(|e| self.fail(BrokerError::Io(e)))?;
        }
        if self.hooks.any() {
            // Verdicts come back through a control channel; with no
            // handle, nobody reads events (they are counted as lost).
            let (tx, rx) = mpsc::channel();
            let waker = server
                .attach_control(rx)
                .map_err(|e| self.fail(BrokerError::Io(e)))?;
            let (events, _) = mpsc::sync_channel(1);
            let sink = EventSink {
                tx: events,
                lost: Arc::new(AtomicU64::new(0)),
            };
            server.attach_hooks(self.hooks.clone(), tx, waker, sink);
        }
        log_listening(&server.local_addrs(), &self.config);
        self.state.set(BrokerState::Running);
        let result = server.run(|_, _| false);
        drop(server);
        match result {
            Ok(reason) => {
                log::info!("stopped ({reason:?})");
                self.state.set(BrokerState::Stopped);
                Ok(())
            }
            Err(e) => Err(self.fail(BrokerError::Io(e))),
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            if let Err(e) = h.stop() {
                log::warn!("stopping the broker on drop: {e}");
            }
        }
    }
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("state", &self.state())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

type Setup = std::io::Result<(Arc<Waker>, Vec<SocketAddr>)>;

/// What `Broker::prepare` readies on the calling thread: bound listeners,
/// access rules, the opened store (persistence on) and the bound HTTP
/// listener (`http_listener`).
type Prepared = (
    Vec<TcpListener>,
    Auth,
    Option<crate::net::persist::Opened>,
    Option<TcpListener>,
);

/// The broker thread: builds the loop (the core is not `Send`, so it is
/// made here), reports setup, runs, and records how it ended.
fn loop_thread(
    config: Config,
    (listeners, auth, store, http): Prepared,
    signals: bool,
    rx: Receiver<Request>,
    (app, verdicts, events): (AppHooks, mpsc::Sender<Request>, EventSink),
    setup: SyncSender<Setup>,
    state: SharedState,
) {
    let http = http.map(|l| (l, auth.clone()));
    let built = Server::from_listeners(&config, listeners, auth).and_then(|mut server| {
        http::attach(&mut server, http, &config)?;
        if let Some(store) = store {
            server.attach_persistence(store)?;
        }
        if signals {
            server.handle_signals()?;
        }
        let waker = server.attach_control(rx)?;
        server.attach_hooks(app, verdicts, waker.clone(), events);
        Ok((server, waker))
    });
    let mut server = match built {
        Ok((server, waker)) => {
            let addrs = server.local_addrs();
            log_listening(&addrs, &config);
            state.set(BrokerState::Running);
            if setup.send(Ok((waker, addrs))).is_err() {
                return;
            }
            server
        }
        Err(e) => {
            let _ = setup.send(Err(e));
            return;
        }
    };
    let result = server.run(|_, _| false);
    drop(server);
    match result {
        Ok(reason) => {
            log::info!("stopped ({reason:?})");
            state.set(BrokerState::Stopped);
        }
        Err(e) => {
            log::error!("event loop failed: {e}");
            state.set(BrokerState::Failed(format!("event loop failed: {e}")));
        }
    }
}

fn log_listening(addrs: &[SocketAddr], config: &Config) {
    for (i, addr) in addrs.iter().enumerate() {
        if !addr.ip().is_loopback() && config.anonymous_on(i) {
            log::warn!(
                "listening on {addr} with anonymous access: any device that reaches this address can publish and subscribe"
            );
        }
        log::info!("boxmq {} listening on {addr}", env!("CARGO_PKG_VERSION"));
    }
    let l = &config.limits;
    log::info!(
        "memory budget {} bytes ({:.1} MiB, memory_limit); up to {} connections, packets up to {} bytes",
        l.memory_limit,
        l.memory_limit as f64 / (1024.0 * 1024.0),
        l.max_connections,
        l.max_packet_size
    );
}

struct HandleInner {
    shared: Arc<Shared>,
    state: SharedState,
    addrs: Vec<SocketAddr>,
    /// The HTTP listener's address (`None` without one).
    http_addr: Option<SocketAddr>,
    /// Ends when the loop thread has: `Some` until the first stop.
    thread: Mutex<Option<(Receiver<()>, JoinHandle<()>)>>,
    events: Events,
}

/// Talks to a running broker from any thread: in-process clients, counters,
/// state, stop. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Handle {
    inner: Arc<HandleInner>,
}

impl Handle {
    /// The state now.
    pub fn state(&self) -> BrokerState {
        self.inner.state.get()
    }

    /// The addresses the listeners are bound to (with port 0, the port the
    /// system picked).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.inner.addrs.clone()
    }

    /// The address the HTTP status listener is bound to (with port 0, the
    /// port the system picked); `None` without one.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.inner.http_addr
    }

    /// An in-process client with this client id: a clean MQTT session, like
    /// a network client's (a network client connecting with the same id
    /// takes it over, and this client's calls then fail with
    /// [`ClientError::Disconnected`]). An empty id gets one assigned.
    ///
    /// # Errors
    /// [`BrokerError::InvalidClientId`] for an id longer than
    /// `max_client_id_len` minus 14 (room for the subscriptions' ids) or
    /// holding U+0000; [`BrokerError::Refused`] when the broker refuses the
    /// connection; [`BrokerError::NotRunning`] after stop.
    pub fn client(&self, client_id: &str) -> Result<Client, BrokerError> {
        let max = self
            .inner
            .shared
            .limits
            .max_client_id_len
            .saturating_sub(SUB_SUFFIX_ROOM)
            .min(65_535 - SUB_SUFFIX_ROOM);
        if client_id.len() > max {
            return Err(BrokerError::InvalidClientId(format!(
                "{} bytes; in-process client ids may have at most {max}",
                client_id.len()
            )));
        }
        if client_id.contains('\0') {
            return Err(BrokerError::InvalidClientId("contains U+0000".to_owned()));
        }
        Client::connect(self.inner.shared.clone(), client_id).map_err(|e| match e {
            ClientError::Refused { code } => BrokerError::Refused { code },
            ClientError::Timeout => BrokerError::Timeout,
            _ => BrokerError::NotRunning,
        })
    }

    /// What happens to the clients (see [`Events`]): connected,
    /// disconnected with the reason, subscribed and unsubscribed with the
    /// filter, dropped. Every call returns the same channel.
    pub fn events(&self) -> Events {
        self.inner.events.clone()
    }

    /// The broker's counters now.
    ///
    /// # Errors
    /// [`BrokerError::NotRunning`] after stop, [`BrokerError::Timeout`] if
    /// the loop does not answer.
    pub fn stats(&self) -> Result<BrokerStats, BrokerError> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.inner
            .shared
            .send(Request::Stats(reply))
            .map_err(|_| BrokerError::NotRunning)?;
        match rx.recv_timeout(REQUEST_TIMEOUT) {
            Ok(s) => Ok(s),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(BrokerError::Timeout),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(BrokerError::NotRunning),
        }
    }

    /// Stops the broker gracefully and waits (at most 10 s) for its thread
    /// to end: every client is disconnected, in-process subscriptions end,
    /// the listeners are closed (the port can be bound again). Callable from
    /// any thread, any number of times; later calls return at once.
    ///
    /// # Errors
    /// [`BrokerError::Timeout`] if the thread did not end in time (it is
    /// left to finish on its own).
    pub fn stop(&self) -> Result<(), BrokerError> {
        let mut thread = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some((done, join)) = thread.take() else {
            return Ok(());
        };
        // Fails when the loop has ended already; then there is nothing to stop.
        let _ = self.inner.shared.send(Request::Stop);
        match done.recv_timeout(STOP_TIMEOUT) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                if join.join().is_err() {
                    self.inner
                        .state
                        .set(BrokerState::Failed("the broker thread panicked".to_owned()));
                }
                Ok(())
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(BrokerError::Timeout),
        }
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("state", &self.state())
            .field("local_addrs", &self.inner.addrs)
            .finish_non_exhaustive()
    }
}
