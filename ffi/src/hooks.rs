//! Application hooks and events through the C ABI (see boxmq.h,
//! "Application hooks").

use std::ffi::{CString, c_char, c_int, c_void};
use std::sync::Arc;
use std::time::Duration;

use broker::{ConnectRequest, Decision, Event, EventKind, PublishRequest, QoS, SubscribeRequest};

use crate::error::{BOXMQ_ERR_ALREADY_RUNNING, BOXMQ_OK, BOXMQ_TIMEOUT, Fail, guard};
use crate::{boxmq_broker, object};

/// A hook's answer: accept.
pub const BOXMQ_ACCEPT: c_int = 0;
/// A hook's answer: refuse (CONNACK 0x05 / 0x87; PUBLISH not routed;
/// SUBACK 0x80 / 0x87). Any value other than the three answers refuses too.
pub const BOXMQ_REFUSE: c_int = 1;
/// An on_connect answer: bad user name or password (CONNACK 0x04 / 0x86).
pub const BOXMQ_BAD_CREDENTIALS: c_int = 2;

/// Event kind: a client connected.
pub const BOXMQ_EVENT_CONNECTED: c_int = 1;
/// Event kind: a client's connection ended (`reason` says why).
pub const BOXMQ_EVENT_DISCONNECTED: c_int = 2;
/// Event kind: a filter was granted (`topic`).
pub const BOXMQ_EVENT_SUBSCRIBED: c_int = 3;
/// Event kind: a filter was removed (`topic`).
pub const BOXMQ_EVENT_UNSUBSCRIBED: c_int = 4;
/// Event kind: a client's queue bound was reached; messages for it are
/// dropped.
pub const BOXMQ_EVENT_DROPPED: c_int = 5;

/// What on_connect sees; lent for the call.
#[repr(C)]
#[derive(Debug)]
pub struct boxmq_connect_request {
    /// The client id as sent (may be empty), NUL-terminated.
    pub client_id: *const c_char,
    /// The user name, or NULL.
    pub username: *const c_char,
    /// The password bytes, or NULL.
    pub password: *const u8,
    /// The password's length.
    pub password_len: usize,
    /// The peer's address, "IP:port".
    pub address: *const c_char,
    /// 3 (MQTT 3.1), 4 (3.1.1) or 5 (5.0).
    pub protocol: c_int,
}

/// What on_publish sees; lent for the call.
#[repr(C)]
#[derive(Debug)]
pub struct boxmq_publish_request {
    /// The publisher's client id.
    pub client_id: *const c_char,
    /// The topic, NUL-terminated.
    pub topic: *const c_char,
    /// The payload, followed by a NUL not counted in `payload_len`.
    pub payload: *const u8,
    /// The payload's length.
    pub payload_len: usize,
    /// 0, 1 or 2.
    pub qos: c_int,
    /// The retain flag.
    pub retain: bool,
}

/// What on_subscribe sees of one filter; lent for the call.
#[repr(C)]
#[derive(Debug)]
pub struct boxmq_subscribe_request {
    /// The subscriber's client id.
    pub client_id: *const c_char,
    /// The filter, NUL-terminated.
    pub filter: *const c_char,
    /// The QoS asked for.
    pub qos: c_int,
}

/// An event from [`boxmq_broker_next_event`]; its strings belong to the
/// caller until [`boxmq_event_free`].
#[repr(C)]
#[derive(Debug)]
pub struct boxmq_event {
    /// A `BOXMQ_EVENT_*` value.
    pub kind: c_int,
    /// The client id.
    pub client_id: *mut c_char,
    /// The filter (subscribed, unsubscribed), or NULL.
    pub topic: *mut c_char,
    /// Why (disconnected, dropped), or NULL.
    pub reason: *mut c_char,
}

/// The on_connect callback.
pub type boxmq_connect_cb = Option<
    unsafe extern "C" fn(user_data: *mut c_void, request: *const boxmq_connect_request) -> c_int,
>;
/// The on_publish callback.
pub type boxmq_publish_cb = Option<
    unsafe extern "C" fn(user_data: *mut c_void, request: *const boxmq_publish_request) -> c_int,
>;
/// The on_subscribe callback.
pub type boxmq_subscribe_cb = Option<
    unsafe extern "C" fn(user_data: *mut c_void, request: *const boxmq_subscribe_request) -> c_int,
>;

/// The application's pointer, handed back to its callback.
#[derive(Clone, Copy)]
struct UserData(*mut c_void);
// SAFETY: only handed back to the application's callback, which the header
// documents as called from the hook threads, concurrently.
unsafe impl Send for UserData {}
// SAFETY: as above.
unsafe impl Sync for UserData {}

fn decision(answer: c_int) -> Decision {
    match answer {
        BOXMQ_ACCEPT => Decision::Accept,
        BOXMQ_BAD_CREDENTIALS => Decision::BadCredentials,
        _ => Decision::Refuse,
    }
}

fn qos_number(q: QoS) -> c_int {
    match q {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce => 1,
        QoS::ExactlyOnce => 2,
    }
}

/// `s` as a C string (an interior NUL, which MQTT strings cannot hold,
/// cuts it).
fn c_string(s: &str) -> CString {
    let end = s.find('\0').unwrap_or(s.len());
    CString::new(&s[..end]).unwrap_or_default()
}

/// Sets a hook on a broker not running.
fn set_hook(broker: *const boxmq_broker, set: impl FnOnce(&mut broker::AppHooks)) -> c_int {
    guard(|| {
        // SAFETY: the caller promised NULL or a live broker.
        let b = unsafe { object(broker, "broker") }?;
        let mut locked = b.lock();
        if locked.state() == broker::BrokerState::Running {
            return Err(Fail::new(
                BOXMQ_ERR_ALREADY_RUNNING,
                "hooks are set before boxmq_broker_start",
            ));
        }
        set(locked.hooks_mut());
        Ok(BOXMQ_OK)
    })
}

/// Sets (or, with a NULL callback, removes) the on_connect hook.
///
/// # Safety
/// `broker` is NULL or live; `callback` may be called from several hook
/// threads at once with `user_data`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_broker_on_connect(
    broker: *const boxmq_broker,
    callback: boxmq_connect_cb,
    user_data: *mut c_void,
) -> c_int {
    let user_data = UserData(user_data);
    set_hook(broker, |h| {
        h.on_connect = callback.map(|cb| {
            Arc::new(move |r: &ConnectRequest| {
                let client_id = c_string(&r.client_id);
                let username = r.username.as_deref().map(c_string);
                let address = c_string(&r.address);
                let req = boxmq_connect_request {
                    client_id: client_id.as_ptr(),
                    username: username.as_ref().map_or(std::ptr::null(), |u| u.as_ptr()),
                    password: r.password.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
                    password_len: r.password.as_ref().map_or(0, Vec::len),
                    address: address.as_ptr(),
                    protocol: c_int::from(r.protocol),
                };
                let ud = user_data;
                // SAFETY: the application's callback with its pointer; the
                // request and its strings live across the call.
                decision(unsafe { cb(ud.0, &req) })
            }) as broker::ConnectHook
        });
    })
}

/// Sets (or removes) the on_publish hook.
///
/// # Safety
/// As [`boxmq_broker_on_connect`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_broker_on_publish(
    broker: *const boxmq_broker,
    callback: boxmq_publish_cb,
    user_data: *mut c_void,
) -> c_int {
    let user_data = UserData(user_data);
    set_hook(broker, |h| {
        h.on_publish = callback.map(|cb| {
            Arc::new(move |r: &PublishRequest| {
                let client_id = c_string(&r.client_id);
                let topic = c_string(&r.topic);
                let mut payload = Vec::with_capacity(r.payload.len() + 1);
                payload.extend_from_slice(&r.payload);
                payload.push(0);
                let req = boxmq_publish_request {
                    client_id: client_id.as_ptr(),
                    topic: topic.as_ptr(),
                    payload: payload.as_ptr(),
                    payload_len: r.payload.len(),
                    qos: qos_number(r.qos),
                    retain: r.retain,
                };
                let ud = user_data;
                // SAFETY: as in `boxmq_broker_on_connect`.
                decision(unsafe { cb(ud.0, &req) })
            }) as broker::PublishHook
        });
    })
}

/// Sets (or removes) the on_subscribe hook.
///
/// # Safety
/// As [`boxmq_broker_on_connect`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_broker_on_subscribe(
    broker: *const boxmq_broker,
    callback: boxmq_subscribe_cb,
    user_data: *mut c_void,
) -> c_int {
    let user_data = UserData(user_data);
    set_hook(broker, |h| {
        h.on_subscribe = callback.map(|cb| {
            Arc::new(move |r: &SubscribeRequest| {
                let client_id = c_string(&r.client_id);
                let filter = c_string(&r.filter);
                let req = boxmq_subscribe_request {
                    client_id: client_id.as_ptr(),
                    filter: filter.as_ptr(),
                    qos: qos_number(r.qos),
                };
                let ud = user_data;
                // SAFETY: as in `boxmq_broker_on_connect`.
                decision(unsafe { cb(ud.0, &req) })
            }) as broker::SubscribeHook
        });
    })
}

/// How long a hook may take (milliseconds, default 5000) before its packet
/// is refused.
///
/// # Safety
/// `broker` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_broker_hook_timeout(
    broker: *const boxmq_broker,
    timeout_ms: u32,
) -> c_int {
    set_hook(broker, |h| {
        h.timeout = Duration::from_millis(u64::from(timeout_ms));
    })
}

fn kind_number(k: EventKind) -> c_int {
    match k {
        EventKind::Connected => BOXMQ_EVENT_CONNECTED,
        EventKind::Disconnected => BOXMQ_EVENT_DISCONNECTED,
        EventKind::Subscribed => BOXMQ_EVENT_SUBSCRIBED,
        EventKind::Unsubscribed => BOXMQ_EVENT_UNSUBSCRIBED,
        EventKind::Dropped => BOXMQ_EVENT_DROPPED,
    }
}

fn owned(s: Option<&str>) -> *mut c_char {
    s.map_or(std::ptr::null_mut(), |s| c_string(s).into_raw())
}

/// Waits at most `timeout_ms` (negative: for ever, 0: not at all) for the
/// next event of the running broker.
///
/// # Safety
/// `broker` is NULL or live; `out` is NULL or valid (overwritten, not
/// freed).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_broker_next_event(
    broker: *const boxmq_broker,
    timeout_ms: i32,
    out: *mut boxmq_event,
) -> c_int {
    guard(|| {
        // SAFETY: as promised.
        let b = unsafe { object(broker, "broker") }?;
        if out.is_null() {
            return Err(Fail::null("out"));
        }
        let events = b.running()?.events();
        let got: Option<Event> = match u64::try_from(timeout_ms) {
            Ok(0) => events.try_recv(),
            Ok(ms) => events.recv_timeout(Duration::from_millis(ms)),
            // "For ever": in slices, so a stopped broker is noticed.
            Err(_) => loop {
                if let Some(e) = events.recv_timeout(Duration::from_millis(500)) {
                    break Some(e);
                }
                if b.running().is_err() {
                    break None;
                }
            },
        };
        let Some(e) = got else {
            return Ok(BOXMQ_TIMEOUT);
        };
        let event = boxmq_event {
            kind: kind_number(e.kind),
            client_id: owned(Some(&e.client_id)),
            topic: owned(e.topic.as_deref()),
            reason: owned(e.reason.as_deref()),
        };
        // SAFETY: non-NULL and valid, as promised.
        unsafe { out.write(event) };
        Ok(BOXMQ_OK)
    })
}

/// Events lost because the application did not take them in time (the
/// channel holds 1024), or a negative error.
///
/// # Safety
/// `broker` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_broker_events_lost(broker: *const boxmq_broker) -> i64 {
    let mut lost = 0u64;
    let code = guard(|| {
        // SAFETY: as promised.
        let b = unsafe { object(broker, "broker") }?;
        lost = b.running()?.events().lost();
        Ok(BOXMQ_OK)
    });
    if code < 0 {
        i64::from(code)
    } else {
        i64::try_from(lost).unwrap_or(i64::MAX)
    }
}

/// Frees the strings of an event from [`boxmq_broker_next_event`] and
/// zeroes it; NULL and a zeroed event are ignored.
///
/// # Safety
/// `event` is NULL or filled by [`boxmq_broker_next_event`] and not freed
/// since.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_event_free(event: *mut boxmq_event) {
    // SAFETY: as promised.
    let Some(e) = (unsafe { event.as_mut() }) else {
        return;
    };
    for p in [&mut e.client_id, &mut e.topic, &mut e.reason] {
        if !p.is_null() {
            // SAFETY: made by `CString::into_raw` in `owned`, freed once.
            drop(unsafe { CString::from_raw(*p) });
            *p = std::ptr::null_mut();
        }
    }
    e.kind = 0;
}
