//! The loop side of application hooks: runs the application's `on_connect`,
//! `on_publish` and `on_subscribe` off the loop thread and feeds the
//! verdicts back; hands events to a bounded channel.
//!
//! The core parks a packet and names a [`HookCall`] (`core/verdict.rs`).
//! At the end of each turn the loop hands every call to a `HookPool`
//! and every event to the events channel, without waiting for either:
//!
//! * **Calls run concurrently, one worker per call in progress.** A call
//!   goes to an idle worker; when none is idle a new one is started (up to
//!   [`MAX_WORKERS`]); a worker idle for [`IDLE_EXIT`] ends, down to
//!   [`MIN_WORKERS`]. An `on_connect` that waits two seconds on a user
//!   database occupies one worker for two seconds; the `on_publish` calls of
//!   the clients already connected go to other workers meanwhile. Each
//!   connection has at most one call in progress (it is parked until its
//!   verdict), so a client's calls run one after the other, in its packets'
//!   order.
//! * **Verdicts come back as requests** on the loop's control channel, with
//!   a wake-up of the loop's waker; the loop gives them to
//!   [`Core::handle_verdict`]. A call whose deadline passed before a worker
//!   took it is not run (the core refused already).
//! * **A hook that panics refuses**: the panic is caught on the worker and
//!   logged, and the verdict is a refusal.
//! * **Events** go through a bounded channel; when the application does not
//!   read fast enough, the events that do not fit are counted as lost. The
//!   loop never blocks on it and messages are never affected.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Sender, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use mio::Waker;

use super::local::Request;
use crate::codec::QoS;
use crate::core::{Core, Event, HookCall, HookQuestion, HookSet, Verdict};

/// Workers kept even when idle.
pub const MIN_WORKERS: usize = 2;
/// Most calls in progress at once; more wait for a worker.
pub const MAX_WORKERS: usize = 64;
/// An idle worker beyond [`MIN_WORKERS`] ends after this long.
pub const IDLE_EXIT: Duration = Duration::from_secs(10);

/// The application's answer about a CONNECT, a PUBLISH or one filter of a
/// SUBSCRIBE. A hook may return a `bool` (`true`: accept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Accept,
    /// Refused: CONNACK 0x05 (3.1.1) / 0x87 (5.0); a PUBLISH not routed
    /// (5.0 PUBACK/PUBREC 0x87; 3.1.1 acknowledged as usual, as Mosquitto
    /// does for an ACL denial); a filter refused (SUBACK 0x80 / 0x87).
    Refuse,
    /// CONNECT only: bad user name or password, CONNACK 0x04 (3.1.1) /
    /// 0x86 (5.0). Elsewhere as `Refuse`.
    BadCredentials,
}

impl From<bool> for Decision {
    fn from(accept: bool) -> Decision {
        if accept {
            Decision::Accept
        } else {
            Decision::Refuse
        }
    }
}

impl From<Decision> for Verdict {
    fn from(d: Decision) -> Verdict {
        match d {
            Decision::Accept => Verdict::Accept,
            Decision::Refuse => Verdict::Refuse,
            Decision::BadCredentials => Verdict::BadCredentials,
        }
    }
}

/// What `on_connect` sees of a CONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectRequest {
    /// The client identifier as sent (empty: the broker assigns one).
    pub client_id: String,
    /// The user name, if any (a TLS identity replaces it).
    pub username: Option<String>,
    /// The password, if any.
    pub password: Option<Vec<u8>>,
    /// The peer's address (`IP:port`).
    pub address: String,
    /// Protocol level: 3 (MQTT 3.1), 4 (3.1.1) or 5 (5.0).
    pub protocol: u8,
    /// 5.0: the CONNECT's User Properties (name, value), in order.
    pub user_properties: Vec<(String, String)>,
}

/// What `on_publish` sees of a PUBLISH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishRequest {
    /// The publisher's client identifier.
    pub client_id: String,
    /// The topic (a 5.0 topic alias resolved).
    pub topic: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// The QoS.
    pub qos: QoS,
    /// The retain flag.
    pub retain: bool,
}

/// What `on_subscribe` sees of one filter of a SUBSCRIBE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribeRequest {
    /// The subscriber's client identifier.
    pub client_id: String,
    /// The topic filter.
    pub filter: String,
    /// The QoS asked for.
    pub qos: QoS,
}

/// An `on_connect` hook.
pub type ConnectHook = Arc<dyn Fn(&ConnectRequest) -> Decision + Send + Sync>;
/// An `on_publish` hook.
pub type PublishHook = Arc<dyn Fn(&PublishRequest) -> Decision + Send + Sync>;
/// An `on_subscribe` hook.
pub type SubscribeHook = Arc<dyn Fn(&SubscribeRequest) -> Decision + Send + Sync>;

/// The hooks an application installs, and the verdict deadline.
#[derive(Clone)]
pub struct AppHooks {
    /// Asked about every CONNECT from the network.
    pub on_connect: Option<ConnectHook>,
    /// Asked about every PUBLISH from the network.
    pub on_publish: Option<PublishHook>,
    /// Asked about every filter of a SUBSCRIBE from the network.
    pub on_subscribe: Option<SubscribeHook>,
    /// `on_connect` decides instead of the password file.
    pub connect_replaces_files: bool,
    /// A verdict not given within this time refuses.
    pub timeout: Duration,
    /// Room in the events channel.
    pub event_capacity: usize,
}

impl Default for AppHooks {
    /// No hooks, a 5 s deadline, room for 1024 events.
    fn default() -> AppHooks {
        AppHooks {
            on_connect: None,
            on_publish: None,
            on_subscribe: None,
            connect_replaces_files: false,
            timeout: Duration::from_secs(5),
            event_capacity: 1024,
        }
    }
}

impl fmt::Debug for AppHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppHooks")
            .field("on_connect", &self.on_connect.is_some())
            .field("on_publish", &self.on_publish.is_some())
            .field("on_subscribe", &self.on_subscribe.is_some())
            .field("connect_replaces_files", &self.connect_replaces_files)
            .field("timeout", &self.timeout)
            .field("event_capacity", &self.event_capacity)
            .finish()
    }
}

impl AppHooks {
    /// What the core is told.
    pub fn hook_set(&self) -> HookSet {
        HookSet {
            connect: self.on_connect.is_some(),
            publish: self.on_publish.is_some(),
            subscribe: self.on_subscribe.is_some(),
            connect_replaces_files: self.connect_replaces_files,
            timeout: self.timeout,
            events: true,
        }
    }

    /// Whether any hook is set.
    pub fn any(&self) -> bool {
        self.on_connect.is_some() || self.on_publish.is_some() || self.on_subscribe.is_some()
    }

    /// Runs the hook `question` is for, catching a panic (a refusal).
    fn answer(&self, question: &HookQuestion) -> Verdict {
        let run = || match question {
            HookQuestion::Connect {
                client_id,
                username,
                password,
                address,
                protocol,
                user_properties,
            } => match &self.on_connect {
                Some(f) => f(&ConnectRequest {
                    client_id: client_id.clone(),
                    username: username.clone(),
                    password: password.clone(),
                    address: address.clone(),
                    protocol: *protocol,
                    user_properties: user_properties.clone(),
                })
                .into(),
                None => Verdict::Accept,
            },
            HookQuestion::Publish {
                client_id,
                topic,
                payload,
                qos,
                retain,
            } => match &self.on_publish {
                Some(f) => f(&PublishRequest {
                    client_id: client_id.clone(),
                    topic: topic.clone(),
                    payload: payload.clone(),
                    qos: qos_of(*qos),
                    retain: *retain,
                })
                .into(),
                None => Verdict::Accept,
            },
            HookQuestion::Subscribe { client_id, filters } => match &self.on_subscribe {
                Some(f) => Verdict::Filters(
                    filters
                        .iter()
                        .map(|(filter, qos)| {
                            f(&SubscribeRequest {
                                client_id: client_id.clone(),
                                filter: filter.clone(),
                                qos: qos_of(*qos),
                            }) == Decision::Accept
                        })
                        .collect(),
                ),
                None => Verdict::Accept,
            },
        };
        match catch_unwind(AssertUnwindSafe(run)) {
            Ok(v) => v,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                log::error!("application hook panicked ({what}); refusing");
                Verdict::Refuse
            }
        }
    }
}

fn qos_of(level: u8) -> QoS {
    match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// One call waiting for a worker.
struct Job {
    call: HookCall,
    deadline: Instant,
}

#[derive(Default)]
struct PoolState {
    jobs: VecDeque<Job>,
    workers: usize,
    idle: usize,
    stopping: bool,
}

struct PoolShared {
    state: Mutex<PoolState>,
    wake: Condvar,
    hooks: AppHooks,
    verdicts: Sender<Request>,
    waker: Arc<Waker>,
}

impl PoolShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        // Only whole values are stored: a poisoned lock holds a valid state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs hook calls on worker threads (see the module documentation).
pub(crate) struct HookPool {
    shared: Arc<PoolShared>,
}

impl HookPool {
    /// A pool calling `hooks`, sending verdicts on `verdicts` and waking the
    /// loop with `waker`. Workers start with the first calls.
    pub fn new(hooks: AppHooks, verdicts: Sender<Request>, waker: Arc<Waker>) -> HookPool {
        HookPool {
            shared: Arc::new(PoolShared {
                state: Mutex::new(PoolState::default()),
                wake: Condvar::new(),
                hooks,
                verdicts,
                waker,
            }),
        }
    }

    /// Queues `call`, starting a worker if none is idle.
    pub fn submit(&self, call: HookCall, now: Instant) {
        let deadline = now + self.shared.hooks.timeout;
        let mut st = self.shared.lock();
        st.jobs.push_back(Job { call, deadline });
        if st.idle >= st.jobs.len() || st.workers >= MAX_WORKERS {
            drop(st);
            self.shared.wake.notify_one();
            return;
        }
        st.workers += 1;
        drop(st);
        let shared = self.shared.clone();
        let spawned = thread::Builder::new()
            .name("boxmq-hook".to_owned())
            .spawn(move || worker(&shared));
        if let Err(e) = spawned {
            log::error!("cannot start a hook worker: {e}");
            let mut st = self.shared.lock();
            st.workers -= 1;
            if st.workers == 0 {
                // Nobody will answer: the deadlines refuse.
                st.jobs.clear();
            }
        }
    }
}

impl Drop for HookPool {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.wake.notify_all();
    }
}

fn worker(shared: &PoolShared) {
    loop {
        let job = {
            let mut st = shared.lock();
            loop {
                if st.stopping {
                    st.workers -= 1;
                    return;
                }
                if let Some(job) = st.jobs.pop_front() {
                    break job;
                }
                st.idle += 1;
                let (next, timed_out) = shared
                    .wake
                    .wait_timeout(st, IDLE_EXIT)
                    .unwrap_or_else(PoisonError::into_inner);
                st = next;
                st.idle -= 1;
                if timed_out.timed_out() && st.jobs.is_empty() && st.workers > MIN_WORKERS {
                    st.workers -= 1;
                    return;
                }
            }
        };
        if Instant::now() >= job.deadline {
            // The core refused it already.
            continue;
        }
        let verdict = shared.hooks.answer(&job.call.question);
        let sent = shared.verdicts.send(Request::Verdict {
            conn: job.call.conn,
            ticket: job.call.ticket,
            verdict,
        });
        if sent.is_err() {
            // The loop has ended.
            return;
        }
        if let Err(e) = shared.waker.wake() {
            log::error!("cannot wake the event loop for a verdict: {e}");
        }
    }
}

/// The loop's end of the events channel: the events that did not fit are
/// counted in `lost`.
pub(crate) struct EventSink {
    pub tx: SyncSender<Event>,
    pub lost: Arc<AtomicU64>,
}

/// The hooks' state in the event loop.
pub(crate) struct LoopHooks {
    pub pool: Option<HookPool>,
    pub events: EventSink,
}

impl LoopHooks {
    /// End of a turn: hands the core's calls to the pool and its events to
    /// the channel.
    pub fn pump(&mut self, core: &mut Core, now: Instant) {
        while let Some(call) = core.poll_hook_call() {
            match &self.pool {
                Some(pool) => pool.submit(call, now),
                // No hook to ask (the core asks only for hooks set).
                None => core.handle_verdict(call.conn, call.ticket, Verdict::Accept, now),
            }
        }
        while let Some(event) = core.poll_event() {
            match self.events.tx.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    self.events.lost.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}
