//! Application hooks and events for Python: `Broker(on_connect=f,
//! on_publish=g, on_subscribe=h)` and `Broker.events()`.
//!
//! A hook runs on one of the broker's hook threads ("boxmq-hook"), which
//! takes the GIL for the call; several clients' hooks may be waiting for
//! the GIL at once. The hook returns a truthy value to accept; a hook that
//! raises refuses, and the traceback goes to the `boxmq` logger.

use std::sync::Arc;
use std::time::{Duration, Instant};

use broker::{ConnectRequest, Decision, EventKind, PublishRequest, QoS, SubscribeRequest};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// What `on_connect` gets.
#[pyclass(module = "boxmq", frozen)]
pub struct ConnectInfo {
    /// The client id as sent ("" when the broker assigns one).
    #[pyo3(get)]
    client_id: String,
    /// The user name, or None.
    #[pyo3(get)]
    username: Option<String>,
    /// The password, or None.
    #[pyo3(get)]
    password: Option<Py<PyBytes>>,
    /// The peer, "IP:port".
    #[pyo3(get)]
    address: String,
    /// The protocol level: 3 (MQTT 3.1), 4 (3.1.1) or 5 (5.0).
    #[pyo3(get)]
    protocol: u8,
    /// MQTT 5.0 User Properties of the CONNECT, (name, value) in order.
    #[pyo3(get)]
    user_properties: Vec<(String, String)>,
}

/// What `on_publish` gets.
#[pyclass(module = "boxmq", frozen)]
pub struct PublishInfo {
    /// The publisher's client id.
    #[pyo3(get)]
    client_id: String,
    /// The topic.
    #[pyo3(get)]
    topic: String,
    /// The payload.
    #[pyo3(get)]
    payload: Py<PyBytes>,
    /// 0, 1 or 2.
    #[pyo3(get)]
    qos: u8,
    /// The retain flag.
    #[pyo3(get)]
    retain: bool,
}

/// What `on_subscribe` gets, once per filter.
#[pyclass(module = "boxmq", frozen)]
pub struct SubscribeInfo {
    /// The subscriber's client id.
    #[pyo3(get)]
    client_id: String,
    /// The topic filter.
    #[pyo3(get)]
    topic: String,
    /// The QoS asked for.
    #[pyo3(get)]
    qos: u8,
}

fn qos_number(q: QoS) -> u8 {
    match q {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce => 1,
        QoS::ExactlyOnce => 2,
    }
}

/// Calls `f(arg)`: truthy accepts; an exception refuses, logged with its
/// traceback on the `boxmq` logger.
fn call(
    f: &Py<PyAny>,
    name: &str,
    make: impl FnOnce(Python<'_>) -> PyResult<Py<PyAny>>,
) -> Decision {
    Python::attach(|py| {
        let result = make(py)
            .and_then(|arg| f.call1(py, (arg,)))
            .and_then(|r| r.bind(py).is_truthy());
        match result {
            Ok(true) => Decision::Accept,
            Ok(false) => Decision::Refuse,
            Err(e) => {
                let logged = py.import("logging").and_then(|logging| {
                    let logger = logging.call_method1("getLogger", ("boxmq",))?;
                    let info = (e.get_type(py), e.value(py), e.traceback(py));
                    let kwargs = pyo3::types::PyDict::new(py);
                    kwargs.set_item("exc_info", info)?;
                    logger.call_method(
                        "error",
                        (format!("{name} raised; refusing"),),
                        Some(&kwargs),
                    )?;
                    Ok(())
                });
                if logged.is_err() {
                    e.print(py);
                }
                Decision::Refuse
            }
        }
    })
}

/// Installs the Python hooks on `hooks`.
pub fn install(
    hooks: &mut broker::AppHooks,
    on_connect: Option<Py<PyAny>>,
    on_publish: Option<Py<PyAny>>,
    on_subscribe: Option<Py<PyAny>>,
) {
    if let Some(f) = on_connect {
        let f = Arc::new(f);
        hooks.on_connect = Some(Arc::new(move |r: &ConnectRequest| {
            call(&f, "on_connect", |py| {
                Ok(Py::new(
                    py,
                    ConnectInfo {
                        client_id: r.client_id.clone(),
                        username: r.username.clone(),
                        password: r.password.as_ref().map(|p| PyBytes::new(py, p).unbind()),
                        address: r.address.clone(),
                        protocol: r.protocol,
                        user_properties: r.user_properties.clone(),
                    },
                )?
                .into_any())
            })
        }));
    }
    if let Some(f) = on_publish {
        let f = Arc::new(f);
        hooks.on_publish = Some(Arc::new(move |r: &PublishRequest| {
            call(&f, "on_publish", |py| {
                Ok(Py::new(
                    py,
                    PublishInfo {
                        client_id: r.client_id.clone(),
                        topic: r.topic.clone(),
                        payload: PyBytes::new(py, &r.payload).unbind(),
                        qos: qos_number(r.qos),
                        retain: r.retain,
                    },
                )?
                .into_any())
            })
        }));
    }
    if let Some(f) = on_subscribe {
        let f = Arc::new(f);
        hooks.on_subscribe = Some(Arc::new(move |r: &SubscribeRequest| {
            call(&f, "on_subscribe", |py| {
                Ok(Py::new(
                    py,
                    SubscribeInfo {
                        client_id: r.client_id.clone(),
                        topic: r.filter.clone(),
                        qos: qos_number(r.qos),
                    },
                )?
                .into_any())
            })
        }));
    }
}

/// What happened to a network client: `kind` is "connected",
/// "disconnected", "subscribed", "unsubscribed" or "dropped".
#[pyclass(module = "boxmq", frozen)]
pub struct Event {
    /// "connected", "disconnected", "subscribed", "unsubscribed", "dropped".
    #[pyo3(get)]
    kind: &'static str,
    /// The client id.
    #[pyo3(get)]
    client_id: String,
    /// The filter, for "subscribed" and "unsubscribed"; else None.
    #[pyo3(get)]
    topic: Option<String>,
    /// Why, for "disconnected" ("clean", "keepalive", "taken over",
    /// "protocol error", "connection lost", "shutdown") and "dropped".
    #[pyo3(get)]
    reason: Option<String>,
}

#[pymethods]
impl Event {
    fn __repr__(&self) -> String {
        format!(
            "Event(kind={:?}, client_id={:?}, topic={:?}, reason={:?})",
            self.kind, self.client_id, self.topic, self.reason
        )
    }
}

/// The broker's events, from `Broker.events()`.
#[pyclass(module = "boxmq", frozen)]
pub struct Events {
    pub(crate) inner: broker::Events,
}

#[pymethods]
impl Events {
    /// The next event, waiting at most `timeout` seconds (None: until one
    /// comes); None on timeout.
    #[pyo3(signature = (timeout=None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Event>> {
        let deadline = match timeout {
            None => None,
            Some(t) if t.is_finite() && t >= 0.0 => {
                Instant::now().checked_add(Duration::from_secs_f64(t.min(1e9)))
            }
            Some(t) => return Err(PyValueError::new_err(format!("timeout {t}"))),
        };
        loop {
            let slice = match deadline {
                None => crate::SIGNAL_POLL,
                Some(d) => d
                    .saturating_duration_since(Instant::now())
                    .min(crate::SIGNAL_POLL),
            };
            let events = &self.inner;
            if let Some(e) = py.detach(|| events.recv_timeout(slice)) {
                let kind = match e.kind {
                    EventKind::Connected => "connected",
                    EventKind::Disconnected => "disconnected",
                    EventKind::Subscribed => "subscribed",
                    EventKind::Unsubscribed => "unsubscribed",
                    EventKind::Dropped => "dropped",
                };
                return Ok(Some(Event {
                    kind,
                    client_id: e.client_id,
                    topic: e.topic,
                    reason: e.reason,
                }));
            }
            py.check_signals()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
        }
    }

    /// Events lost because they were not taken in time (the channel holds
    /// 1024).
    #[getter]
    fn lost(&self) -> u64 {
        self.inner.lost()
    }
}
