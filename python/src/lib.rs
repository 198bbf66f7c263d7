//! `boxmq._boxmq`: the Python bindings of the boxmq embedding API (PyO3).
//!
//! The package `boxmq` (python/boxmq/) re-exports these; its stub file
//! `_boxmq.pyi` documents them for type checkers. Every call that waits
//! for the broker thread (start, stop, publish, subscribe, receive) releases
//! the GIL while it waits, and a blocking receive wakes every 100 ms to let
//! Python handle signals (Ctrl-C raises `KeyboardInterrupt` as usual).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use broker::{BrokerError, BrokerState, Config, Handle, ListenerConfig, QoS, RecvTimeoutError};
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

mod hooks;

pyo3::create_exception!(
    boxmq,
    BoxmqError,
    PyException,
    "Any error boxmq reports: configuration, bind, broker not running, invalid topic, ..."
);

/// How long a blocking receive waits between checks for signals.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

fn err(e: impl std::fmt::Display) -> PyErr {
    BoxmqError::new_err(e.to_string())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn qos(q: u8) -> PyResult<QoS> {
    match q {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        2 => Ok(QoS::ExactlyOnce),
        _ => Err(PyValueError::new_err(format!(
            "qos {q}: expected 0, 1 or 2"
        ))),
    }
}

/// An MQTT broker running inside this process.
#[pyclass(module = "boxmq", frozen)]
struct Broker {
    inner: Mutex<broker::Broker>,
}

impl Broker {
    fn running(&self) -> PyResult<Handle> {
        match lock(&self.inner).handle() {
            Some(h) if h.state() == BrokerState::Running => Ok(h),
            _ => Err(BoxmqError::new_err("the broker is not running")),
        }
    }
}

#[pymethods]
impl Broker {
    /// A broker listening on `host:port` (port 0: a free port, see `port`)
    /// and/or on the listeners of `config`: the lines of a boxmq config
    /// file, as one string or a list of lines. With neither:
    /// 127.0.0.1:1883. Not started yet.
    ///
    /// `on_connect(req)`, `on_publish(msg)` and `on_subscribe(sub)` let the
    /// application decide (True accepts; a hook that raises refuses and
    /// logs the traceback on the `boxmq` logger); they run on the broker's
    /// hook threads, with the GIL, and may block without holding up other
    /// clients. `hook_timeout` (seconds, default 5): an answer later than
    /// that refuses.
    #[new]
    #[pyo3(signature = (port=None, config=None, host="127.0.0.1", on_connect=None, on_publish=None, on_subscribe=None, hook_timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        port: Option<u16>,
        config: Option<&Bound<'_, PyAny>>,
        host: &str,
        on_connect: Option<Py<PyAny>>,
        on_publish: Option<Py<PyAny>>,
        on_subscribe: Option<Py<PyAny>>,
        hook_timeout: Option<f64>,
    ) -> PyResult<Broker> {
        let text = match config {
            None => String::new(),
            Some(c) => match c.extract::<String>() {
                Ok(text) => text,
                Err(_) => c
                    .extract::<Vec<String>>()
                    .map_err(|_| PyTypeError::new_err("config: expected a str or a list of str"))?
                    .join("\n"),
            },
        };
        let mut cfg = Config::parse(&text, "config")
            .map_err(|e| err(format!("invalid configuration: {e}")))?;
        if let Some(port) = port {
            let ip: IpAddr = if host == "localhost" {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse()
                    .map_err(|_| err(format!("host {host:?}: expected an IP address")))?
            };
            cfg.listeners
                .push(ListenerConfig::new(SocketAddr::new(ip, port)));
        }
        let mut b = broker::Broker::new(cfg);
        hooks::install(b.hooks_mut(), on_connect, on_publish, on_subscribe);
        if let Some(t) = hook_timeout {
            if !(t.is_finite() && t > 0.0) {
                return Err(PyValueError::new_err(format!("hook_timeout {t}")));
            }
            b.hooks_mut().timeout = Duration::from_secs_f64(t.min(1e6));
        }
        Ok(Broker {
            inner: Mutex::new(b),
        })
    }

    /// The events of the running broker: `recv(timeout)` gives the next
    /// one (`.kind`, `.client_id`, `.topic`, `.reason`) or None.
    fn events(&self) -> PyResult<hooks::Events> {
        Ok(hooks::Events {
            inner: self.running()?.events(),
        })
    }

    /// Binds the listeners and runs the broker on a thread of its own.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| lock(&self.inner).start().map(drop))
            .map_err(err)
    }

    /// Stops the broker gracefully (at most 10 s); harmless when stopped.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let handle = lock(&self.inner).handle();
        match handle {
            Some(h) => py.detach(|| h.stop()).map_err(err),
            None => Ok(()),
        }
    }

    /// "Init", "Running", "Stopped" or "Failed".
    #[getter]
    fn state(&self) -> &'static str {
        match lock(&self.inner).state() {
            BrokerState::Init => "Init",
            BrokerState::Running => "Running",
            BrokerState::Stopped => "Stopped",
            BrokerState::Failed(_) => "Failed",
        }
    }

    /// Why the broker failed, or None.
    #[getter]
    fn failure(&self) -> Option<String> {
        match lock(&self.inner).state() {
            BrokerState::Failed(why) => Some(why),
            _ => None,
        }
    }

    /// The bound (host, port) of every listener of the running broker.
    #[getter]
    fn addresses(&self) -> PyResult<Vec<(String, u16)>> {
        Ok(self
            .running()?
            .local_addrs()
            .iter()
            .map(|a| (a.ip().to_string(), a.port()))
            .collect())
    }

    /// The bound port of the first listener (the real one when 0 was
    /// asked for).
    #[getter]
    fn port(&self) -> PyResult<u16> {
        self.running()?
            .local_addrs()
            .first()
            .map(SocketAddr::port)
            .ok_or_else(|| BoxmqError::new_err("the broker has no listener"))
    }

    /// The broker's counters now, as a dict of ints.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let handle = self.running()?;
        let s = py.detach(|| handle.stats()).map_err(err)?;
        let d = PyDict::new(py);
        d.set_item("clients_connected", s.clients_connected)?;
        d.set_item("clients_maximum", s.clients_maximum)?;
        d.set_item("sessions", s.sessions)?;
        d.set_item("messages_received", s.messages_received)?;
        d.set_item("messages_sent", s.messages_sent)?;
        d.set_item("bytes_received", s.bytes_received)?;
        d.set_item("bytes_sent", s.bytes_sent)?;
        d.set_item("publish_dropped", s.publish_dropped)?;
        d.set_item("retained_refused", s.retained_refused)?;
        d.set_item("retained_messages", s.retained_messages)?;
        d.set_item("retained_bytes", s.retained_bytes)?;
        d.set_item("subscriptions", s.subscriptions)?;
        Ok(d)
    }

    /// An in-process client with this client id ("": one is assigned).
    #[pyo3(signature = (client_id=""))]
    fn client(&self, py: Python<'_>, client_id: &str) -> PyResult<Client> {
        let handle = self.running()?;
        let client = py.detach(|| handle.client(client_id)).map_err(err)?;
        Ok(Client {
            inner: Arc::new(client),
        })
    }

    /// Starts the broker unless it runs already.
    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let this: &Broker = slf.get();
        let started = slf.py().detach(|| lock(&this.inner).start().map(drop));
        match started {
            Ok(()) | Err(BrokerError::AlreadyRunning) => Ok(slf),
            Err(e) => Err(err(e)),
        }
    }

    /// Stops the broker.
    fn __exit__(
        &self,
        py: Python<'_>,
        _ty: Option<Bound<'_, PyAny>>,
        _value: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.stop(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("<boxmq.Broker {}>", lock(&self.inner).state())
    }
}

/// An in-process MQTT client: no socket, same semantics as a network one.
#[pyclass(module = "boxmq", frozen)]
struct Client {
    inner: Arc<broker::Client>,
}

#[pymethods]
impl Client {
    /// Publishes `payload` (bytes, or str as UTF-8) on `topic`; returns once
    /// the broker has routed it (and stored it, with `retain`). The MQTT 5.0
    /// User Properties, (name, value) pairs, reach 5.0 subscribers.
    #[pyo3(signature = (topic, payload, qos=0, retain=false, user_properties=None))]
    fn publish(
        &self,
        py: Python<'_>,
        topic: &str,
        payload: &Bound<'_, PyAny>,
        qos: u8,
        retain: bool,
        user_properties: Option<Vec<(String, String)>>,
    ) -> PyResult<()> {
        let bytes: Vec<u8> = if let Ok(s) = payload.extract::<String>() {
            s.into_bytes()
        } else {
            payload
                .extract::<Vec<u8>>()
                .map_err(|_| PyTypeError::new_err("payload: expected bytes or str"))?
        };
        let q = self::qos(qos)?;
        let mut message = broker::Message::new(topic, bytes)
            .with_qos(q)
            .with_retain(retain);
        message.user_properties = user_properties.unwrap_or_default();
        let client = self.inner.clone();
        py.detach(|| client.publish_message(message)).map_err(err)
    }

    /// Subscribes to `filter` with maximum QoS `qos`; iterate over the
    /// result for the messages.
    #[pyo3(signature = (filter, qos=1))]
    fn subscribe(&self, py: Python<'_>, filter: &str, qos: u8) -> PyResult<Subscription> {
        let q = self::qos(qos)?;
        let client = self.inner.clone();
        let sub = py.detach(|| client.subscribe(filter, q)).map_err(err)?;
        Ok(Subscription {
            filter: filter.to_owned(),
            inner: Mutex::new(Some(Arc::new(sub))),
        })
    }

    /// The client id given (empty when the broker assigned one).
    #[getter]
    fn client_id(&self) -> String {
        self.inner.client_id().to_owned()
    }
}

/// The messages of one subscription. Iterating blocks until the next
/// message and ends when the broker stops or the subscription is closed.
#[pyclass(module = "boxmq", frozen)]
struct Subscription {
    filter: String,
    inner: Mutex<Option<Arc<broker::Subscription>>>,
}

/// What a wait for the next message ended with.
enum Next {
    Message(Message),
    Timeout,
    Closed,
}

impl Subscription {
    /// Waits until `deadline` (None: for ever) for the next message.
    fn wait(&self, py: Python<'_>, deadline: Option<Instant>) -> PyResult<Next> {
        let Some(sub) = lock(&self.inner).clone() else {
            return Ok(Next::Closed);
        };
        loop {
            // `close` from another thread: stop waiting (and let go of our
            // reference, so the subscription really ends).
            if lock(&self.inner).is_none() {
                return Ok(Next::Closed);
            }
            let slice = match deadline {
                None => SIGNAL_POLL,
                Some(d) => d.saturating_duration_since(Instant::now()).min(SIGNAL_POLL),
            };
            match py.detach(|| sub.recv_timeout(slice)) {
                Ok(m) => {
                    return Ok(Next::Message(Message {
                        topic: m.topic,
                        payload: PyBytes::new(py, &m.payload).unbind(),
                        qos: match m.qos {
                            QoS::AtMostOnce => 0,
                            QoS::AtLeastOnce => 1,
                            QoS::ExactlyOnce => 2,
                        },
                        retain: m.retain,
                        user_properties: m.user_properties,
                    }));
                }
                Err(RecvTimeoutError::Closed) => return Ok(Next::Closed),
                Err(RecvTimeoutError::Timeout) => {}
            }
            py.check_signals()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(Next::Timeout);
            }
        }
    }
}

#[pymethods]
impl Subscription {
    /// The topic filter subscribed to.
    #[getter]
    fn filter(&self) -> String {
        self.filter.clone()
    }

    /// The next message, waiting at most `timeout` seconds (None: for
    /// ever); None on timeout. Raises BoxmqError once the subscription has
    /// ended and is empty.
    #[pyo3(signature = (timeout=None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Message>> {
        let deadline = match timeout {
            None => None,
            Some(t) if t.is_finite() && t >= 0.0 => {
                Instant::now().checked_add(Duration::from_secs_f64(t.min(1e9)))
            }
            Some(t) => return Err(PyValueError::new_err(format!("timeout {t}"))),
        };
        match self.wait(py, deadline)? {
            Next::Message(m) => Ok(Some(m)),
            Next::Timeout => Ok(None),
            Next::Closed => Err(BoxmqError::new_err("the subscription has ended")),
        }
    }

    /// Unsubscribes; iteration then ends.
    fn close(&self) {
        lock(&self.inner).take();
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Message>> {
        match self.wait(py, None)? {
            Next::Message(m) => Ok(Some(m)),
            Next::Timeout | Next::Closed => Ok(None),
        }
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __exit__(
        &self,
        _ty: Option<Bound<'_, PyAny>>,
        _value: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> bool {
        self.close();
        false
    }
}

/// One message received by a subscription.
#[pyclass(module = "boxmq", frozen)]
struct Message {
    /// The topic it was published to.
    #[pyo3(get)]
    topic: String,
    /// The payload.
    #[pyo3(get)]
    payload: Py<PyBytes>,
    /// The QoS it was delivered with (0, 1, 2).
    #[pyo3(get)]
    qos: u8,
    /// Set on retained messages sent because of the subscription.
    #[pyo3(get)]
    retain: bool,
    /// MQTT 5.0 User Properties, (name, value) in the order published.
    #[pyo3(get)]
    user_properties: Vec<(String, String)>,
}

#[pymethods]
impl Message {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Message(topic={:?}, payload={}, qos={}, retain={})",
            self.topic,
            self.payload
                .bind(py)
                .repr()
                .map(|r| r.to_string())
                .unwrap_or_default(),
            self.qos,
            if self.retain { "True" } else { "False" }
        )
    }
}

/// The native part of the `boxmq` package.
#[pymodule]
fn _boxmq(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Broker>()?;
    m.add_class::<Client>()?;
    m.add_class::<Subscription>()?;
    m.add_class::<Message>()?;
    m.add_class::<hooks::Event>()?;
    m.add_class::<hooks::Events>()?;
    m.add_class::<hooks::ConnectInfo>()?;
    m.add_class::<hooks::PublishInfo>()?;
    m.add_class::<hooks::SubscribeInfo>()?;
    m.add("BoxmqError", m.py().get_type::<BoxmqError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
