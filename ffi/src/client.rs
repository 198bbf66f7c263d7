//! In-process clients, subscriptions and messages.

use std::ffi::{c_char, c_int, c_void};
use std::time::Duration;

use broker::{CallbackSubscription, Client, Message, QoS, RecvTimeoutError, Subscription};

use crate::error::{
    BOXMQ_CLOSED, BOXMQ_ERR_INVALID_ARGUMENT, BOXMQ_OK, BOXMQ_TIMEOUT, Fail, guard,
};
use crate::{boxmq_broker, object, text};

/// An in-process client, from [`boxmq_client_new`]; opaque to C.
pub struct boxmq_client {
    client: Client,
}

/// A subscription, from [`boxmq_client_subscribe`] (polled) or
/// [`boxmq_client_subscribe_callback`]; opaque to C.
pub struct boxmq_subscription {
    kind: Kind,
}

enum Kind {
    Poll(Subscription),
    // Only held: dropping it ends the callbacks.
    Callback(#[allow(dead_code)] CallbackSubscription),
}

/// A message as C sees it. From [`boxmq_subscription_next`] the buffers
/// belong to the caller until [`boxmq_message_free`]; in a callback they
/// are lent for the call.
#[repr(C)]
#[derive(Debug)]
pub struct boxmq_message {
    /// The topic, UTF-8, NUL-terminated.
    pub topic: *const c_char,
    /// The topic's length in bytes, without the NUL.
    pub topic_len: usize,
    /// The payload, followed by a NUL byte not counted in `payload_len`.
    pub payload: *const u8,
    /// The payload's length in bytes.
    pub payload_len: usize,
    /// The QoS it was delivered with (0, 1 or 2).
    pub qos: c_int,
    /// Set on retained messages sent because of a new subscription.
    pub retain: bool,
}

/// The callback of [`boxmq_client_subscribe_callback`].
pub type boxmq_message_cb =
    Option<unsafe extern "C" fn(user_data: *mut c_void, message: *const boxmq_message)>;

/// `user_data` is the application's to make thread-safe; the header says
/// on which thread the callback runs.
struct UserData(*mut c_void);
// SAFETY: the pointer is only handed back to the application's callback,
// which the header documents as running on the subscription's own thread.
unsafe impl Send for UserData {}

fn qos(q: c_int) -> Result<QoS, Fail> {
    match q {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        2 => Ok(QoS::ExactlyOnce),
        _ => Err(Fail::new(
            BOXMQ_ERR_INVALID_ARGUMENT,
            format!("qos {q}: expected 0, 1 or 2"),
        )),
    }
}

fn qos_number(q: QoS) -> c_int {
    match q {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce => 1,
        QoS::ExactlyOnce => 2,
    }
}

/// `bytes` and a NUL after them, in a boxed slice.
fn with_nul(bytes: &[u8]) -> Box<[u8]> {
    let mut v = Vec::with_capacity(bytes.len() + 1);
    v.extend_from_slice(bytes);
    v.push(0);
    v.into_boxed_slice()
}

/// Connects an in-process client with this client id (NULL or "": the
/// broker assigns one).
///
/// # Safety
/// `broker` is NULL or a live broker; `client_id` is NULL or a
/// NUL-terminated string; `out` is NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_client_new(
    broker: *const boxmq_broker,
    client_id: *const c_char,
    out: *mut *mut boxmq_client,
) -> c_int {
    guard(|| {
        // SAFETY: as promised.
        let b = unsafe { object(broker, "broker") }?;
        if out.is_null() {
            return Err(Fail::null("out"));
        }
        let id = if client_id.is_null() {
            ""
        } else {
            // SAFETY: as promised.
            unsafe { text(client_id, "client_id") }?
        };
        let client = b.running()?.client(id).map_err(Fail::from)?;
        // SAFETY: valid, as promised.
        unsafe { *out = Box::into_raw(Box::new(boxmq_client { client })) };
        Ok(BOXMQ_OK)
    })
}

/// Publishes `payload_len` bytes at `payload` on `topic`; returns once the
/// broker has routed (and, with `retain`, stored) the message.
///
/// # Safety
/// `client` is NULL or live; `topic` is NULL or NUL-terminated; `payload`
/// has `payload_len` bytes (it may be NULL when `payload_len` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_client_publish(
    client: *const boxmq_client,
    topic: *const c_char,
    payload: *const u8,
    payload_len: usize,
    qos: c_int,
    retain: bool,
) -> c_int {
    guard(|| {
        // SAFETY: as promised.
        let c = unsafe { object(client, "client") }?;
        // SAFETY: as promised.
        let topic = unsafe { text(topic, "topic") }?;
        let payload: &[u8] = if payload_len == 0 {
            &[]
        } else if payload.is_null() {
            return Err(Fail::null("payload"));
        } else {
            // SAFETY: `payload_len` readable bytes, as promised.
            unsafe { std::slice::from_raw_parts(payload, payload_len) }
        };
        c.client
            .publish(topic, payload, self::qos(qos)?, retain)
            .map_err(Fail::from)?;
        Ok(BOXMQ_OK)
    })
}

fn store(out: *mut *mut boxmq_subscription, kind: Kind) {
    let sub = Box::into_raw(Box::new(boxmq_subscription { kind }));
    // SAFETY: the callers checked `out` for NULL; valid as promised.
    unsafe { *out = sub };
}

/// Subscribes to `filter` with maximum QoS `qos`; read the messages with
/// [`boxmq_subscription_next`].
///
/// # Safety
/// `client` is NULL or live; `filter` is NULL or NUL-terminated; `out` is
/// NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_client_subscribe(
    client: *const boxmq_client,
    filter: *const c_char,
    qos: c_int,
    out: *mut *mut boxmq_subscription,
) -> c_int {
    guard(|| {
        // SAFETY: as promised.
        let c = unsafe { object(client, "client") }?;
        // SAFETY: as promised.
        let filter = unsafe { text(filter, "filter") }?;
        if out.is_null() {
            return Err(Fail::null("out"));
        }
        let sub = c
            .client
            .subscribe(filter, self::qos(qos)?)
            .map_err(Fail::from)?;
        store(out, Kind::Poll(sub));
        Ok(BOXMQ_OK)
    })
}

/// Subscribes to `filter` and calls `callback(user_data, message)` for every
/// message, on a thread of the subscription's own.
///
/// # Safety
/// As [`boxmq_client_subscribe`]; `callback` is NULL or a function that
/// may be called from another thread with `user_data`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_client_subscribe_callback(
    client: *const boxmq_client,
    filter: *const c_char,
    qos: c_int,
    callback: boxmq_message_cb,
    user_data: *mut c_void,
    out: *mut *mut boxmq_subscription,
) -> c_int {
    guard(|| {
        // SAFETY: as promised.
        let c = unsafe { object(client, "client") }?;
        // SAFETY: as promised.
        let filter = unsafe { text(filter, "filter") }?;
        let Some(callback) = callback else {
            return Err(Fail::null("callback"));
        };
        if out.is_null() {
            return Err(Fail::null("out"));
        }
        let user_data = UserData(user_data);
        let sub = c
            .client
            .subscribe_with(filter, self::qos(qos)?, move |m: Message| {
                let user_data = &user_data;
                let topic = with_nul(m.topic.as_bytes());
                let payload = with_nul(&m.payload);
                let message = boxmq_message {
                    topic: topic.as_ptr().cast(),
                    topic_len: m.topic.len(),
                    payload: payload.as_ptr(),
                    payload_len: m.payload.len(),
                    qos: qos_number(m.qos),
                    retain: m.retain,
                };
                // SAFETY: the application's callback with its own pointer;
                // `message` and its buffers live across the call.
                unsafe { callback(user_data.0, &message) };
            })
            .map_err(Fail::from)?;
        store(out, Kind::Callback(sub));
        Ok(BOXMQ_OK)
    })
}

/// Waits at most `timeout_ms` (negative: for ever; 0: do not wait) for the
/// next message of a polled subscription and moves it into `*out`.
///
/// # Safety
/// `sub` is NULL or live; `out` is NULL or valid (its old contents are
/// overwritten, not freed).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_subscription_next(
    sub: *const boxmq_subscription,
    timeout_ms: i32,
    out: *mut boxmq_message,
) -> c_int {
    guard(|| {
        // SAFETY: as promised.
        let s = unsafe { object(sub, "sub") }?;
        if out.is_null() {
            return Err(Fail::null("out"));
        }
        let Kind::Poll(sub) = &s.kind else {
            return Err(Fail::new(
                BOXMQ_ERR_INVALID_ARGUMENT,
                "a callback subscription has no messages to poll",
            ));
        };
        let got = match u64::try_from(timeout_ms) {
            Err(_) => sub.recv().ok_or(RecvTimeoutError::Closed),
            Ok(ms) => sub.recv_timeout(Duration::from_millis(ms)),
        };
        let m = match got {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => return Ok(BOXMQ_TIMEOUT),
            Err(RecvTimeoutError::Closed) => return Ok(BOXMQ_CLOSED),
        };
        let topic_len = m.topic.len();
        let payload_len = m.payload.len();
        let topic = Box::into_raw(with_nul(m.topic.as_bytes()));
        let payload = Box::into_raw(with_nul(&m.payload));
        let message = boxmq_message {
            topic: topic.cast::<c_char>().cast_const(),
            topic_len,
            payload: payload.cast::<u8>().cast_const(),
            payload_len,
            qos: qos_number(m.qos),
            retain: m.retain,
        };
        // SAFETY: non-NULL and valid, as promised.
        unsafe { out.write(message) };
        Ok(BOXMQ_OK)
    })
}

/// Frees the buffers of a message from [`boxmq_subscription_next`] and
/// clears it. NULL, and a cleared or zeroed message, are ignored.
///
/// # Safety
/// `message` is NULL or a message filled by [`boxmq_subscription_next`]
/// and not freed since (never one lent to a callback).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_message_free(message: *mut boxmq_message) {
    guard(|| {
        // SAFETY: NULL or valid, as promised.
        let Some(m) = (unsafe { message.as_mut() }) else {
            return Ok(BOXMQ_OK);
        };
        if !m.topic.is_null() {
            let slice = std::ptr::slice_from_raw_parts_mut(
                m.topic.cast_mut().cast::<u8>(),
                m.topic_len + 1,
            );
            // SAFETY: from `Box::into_raw` of a slice this long, freed once.
            drop(unsafe { Box::from_raw(slice) });
        }
        if !m.payload.is_null() {
            let slice = std::ptr::slice_from_raw_parts_mut(m.payload.cast_mut(), m.payload_len + 1);
            // SAFETY: as for the topic.
            drop(unsafe { Box::from_raw(slice) });
        }
        *m = boxmq_message {
            topic: std::ptr::null(),
            topic_len: 0,
            payload: std::ptr::null(),
            payload_len: 0,
            qos: 0,
            retain: false,
        };
        Ok(BOXMQ_OK)
    });
}

/// Unsubscribes and frees a subscription; for a callback subscription,
/// waits for a running callback to return (unless called from it). NULL is
/// ignored.
///
/// # Safety
/// `sub` is NULL or a subscription not freed yet, used by no other thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_subscription_free(sub: *mut boxmq_subscription) {
    if sub.is_null() {
        return;
    }
    guard(|| {
        // SAFETY: ours, from `Box::into_raw`, freed once, as promised.
        drop(unsafe { Box::from_raw(sub) });
        Ok(BOXMQ_OK)
    });
}

/// Disconnects and frees a client; its subscriptions live on. NULL is
/// ignored.
///
/// # Safety
/// `client` is NULL or a client not freed yet, used by no other thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_client_free(client: *mut boxmq_client) {
    if client.is_null() {
        return;
    }
    guard(|| {
        // SAFETY: ours, from `Box::into_raw`, freed once, as promised.
        drop(unsafe { Box::from_raw(client) });
        Ok(BOXMQ_OK)
    });
}
