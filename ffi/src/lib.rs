//! The C ABI of boxmq: run the broker inside a C, C++ or C# program.
//!
//! The header is `ffi/include/boxmq.h`; it is written by hand and is the
//! reference for callers (error codes, ownership, threads). This crate only
//! translates: every function checks its pointers, turns C strings into
//! Rust ones, calls the embedding API of the `boxmq` crate and turns its
//! errors into integer codes plus a message for [`boxmq_last_error`].
//!
//! Nothing unwinds into C: every entry point runs inside `catch_unwind`
//! and a panic (a bug) becomes [`BOXMQ_ERR_PANIC`]. Build with the
//! `release-lib` profile (unwinding) rather than `release` (which aborts on
//! panic) to keep that guarantee in optimized builds.

#![allow(non_camel_case_types)]

mod client;
mod error;
mod hooks;

use std::ffi::{CStr, c_char, c_int};
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};

use broker::{Broker, BrokerState, Config, Handle};

pub use client::{
    boxmq_client, boxmq_client_free, boxmq_client_new, boxmq_client_publish,
    boxmq_client_subscribe, boxmq_client_subscribe_callback, boxmq_message, boxmq_message_cb,
    boxmq_message_free, boxmq_subscription, boxmq_subscription_free, boxmq_subscription_next,
};
pub use error::*;
pub use hooks::*;

use error::{Fail, guard};

/// The broker state `Init`: built, not started.
pub const BOXMQ_STATE_INIT: c_int = 0;
/// The broker state `Running`: listeners bound, event loop running.
pub const BOXMQ_STATE_RUNNING: c_int = 1;
/// The broker state `Stopped`.
pub const BOXMQ_STATE_STOPPED: c_int = 2;
/// The broker state `Failed`: could not start, or the loop failed.
pub const BOXMQ_STATE_FAILED: c_int = 3;

/// A broker, from [`boxmq_broker_new`]; opaque to C.
pub struct boxmq_broker {
    broker: Mutex<Broker>,
}

impl boxmq_broker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Broker> {
        // The broker's own state stays valid whatever panicked meanwhile.
        self.broker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The handle of the running broker.
    fn running(&self) -> Result<Handle, Fail> {
        match self.lock().handle() {
            Some(h) if h.state() == BrokerState::Running => Ok(h),
            _ => Err(Fail::new(
                BOXMQ_ERR_NOT_RUNNING,
                "the broker is not running",
            )),
        }
    }
}

/// The broker's counters, as `boxmq_broker_stats` fills them in.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct boxmq_stats {
    /// Connections that completed CONNECT and are still attached.
    pub clients_connected: u64,
    /// Most clients connected at once since start.
    pub clients_maximum: u64,
    /// Sessions held (connected and persistent offline ones).
    pub sessions: u64,
    /// PUBLISH packets received (network and in-process).
    pub messages_received: u64,
    /// PUBLISH packets sent to clients.
    pub messages_sent: u64,
    /// Bytes received from all connections.
    pub bytes_received: u64,
    /// Bytes handed to the network for all connections.
    pub bytes_sent: u64,
    /// Messages not delivered because a limit was reached.
    pub publish_dropped: u64,
    /// Retained messages not stored because the retained limits were reached.
    pub retained_refused: u64,
    /// Retained messages held.
    pub retained_messages: u64,
    /// Topic and payload bytes of the retained messages held.
    pub retained_bytes: u64,
    /// Subscriptions held, over all sessions.
    pub subscriptions: u64,
}

/// A C string argument as `&str`; `what` names it in the error.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
unsafe fn text<'a>(p: *const c_char, what: &str) -> Result<&'a str, Fail> {
    if p.is_null() {
        return Err(Fail::null(what));
    }
    // SAFETY: non-NULL and NUL-terminated, as the caller promised.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map_err(|_| Fail::new(BOXMQ_ERR_INVALID_ARGUMENT, format!("{what} is not UTF-8")))
}

/// An object argument as a reference.
///
/// # Safety
/// `p` is NULL or points to a live object of type `T`.
unsafe fn object<'a, T>(p: *const T, what: &str) -> Result<&'a T, Fail> {
    // SAFETY: the caller promised a live object or NULL.
    unsafe { p.as_ref() }.ok_or_else(|| Fail::null(what))
}

/// Copies `s` into `buf` (`len` bytes), truncated and NUL-terminated as
/// `snprintf` does; returns the length of the whole of `s`.
///
/// # Safety
/// `buf` is NULL or has room for `len` bytes.
unsafe fn copy_out(s: &str, buf: *mut c_char, len: usize) -> c_int {
    if !buf.is_null() && len > 0 {
        let n = s.len().min(len - 1);
        // SAFETY: `n + 1 <= len` bytes fit in `buf`; `s` does not overlap it.
        unsafe {
            std::ptr::copy_nonoverlapping(s.as_ptr().cast::<c_char>(), buf, n);
            *buf.add(n) = 0;
        }
    }
    c_int::try_from(s.len()).unwrap_or(c_int::MAX)
}

/// Creates a broker from config text (the lines of a boxmq config file,
/// such as `"listener 1883 127.0.0.1\npersistence false"`; NULL or empty:
/// the defaults, 127.0.0.1:1883). The broker is in state Init.
///
/// # Safety
/// `config` is NULL or a NUL-terminated string; `out` is a valid pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_broker_new(
    config: *const c_char,
    out: *mut *mut boxmq_broker,
) -> c_int {
    guard(|| {
        if out.is_null() {
            return Err(Fail::null("out"));
        }
        let text = if config.is_null() {
            ""
        } else {
            // SAFETY: non-NULL, NUL-terminated as promised.
            unsafe { text(config, "config") }?
        };
        let config = Config::parse(text, "config")
            .map_err(|e| Fail::new(BOXMQ_ERR_CONFIG, format!("invalid configuration: {e}")))?;
        let b = Box::new(boxmq_broker {
            broker: Mutex::new(Broker::new(config)),
        });
        // SAFETY: `out` is valid, as promised.
        unsafe { *out = Box::into_raw(b) };
        Ok(BOXMQ_OK)
    })
}

/// Binds the listeners on the calling thread and runs the broker on a
/// thread of its own.
///
/// # Safety
/// `broker` is NULL or a live broker.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_broker_start(broker: *const boxmq_broker) -> c_int {
    guard(|| {
        // SAFETY: as promised.
        let b = unsafe { object(broker, "broker") }?;
        b.lock().start().map_err(Fail::from)?;
        Ok(BOXMQ_OK)
    })
}

/// Stops the broker gracefully and waits (at most 10 s) for its thread.
///
/// # Safety
/// `broker` is NULL or a live broker.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_broker_stop(broker: *const boxmq_broker) -> c_int {
    guard(|| {
        // SAFETY: as promised.
        let b = unsafe { object(broker, "broker") }?;
        // Not under the lock: stopping waits for the loop thread.
        let handle = b.lock().handle();
        if let Some(h) = handle {
            h.stop().map_err(Fail::from)?;
        }
        Ok(BOXMQ_OK)
    })
}

/// The state (a `BOXMQ_STATE_*` value) or a negative error code; copies
/// the failure reason (empty unless Failed) into `reason`.
///
/// # Safety
/// `broker` is NULL or a live broker; `reason` is NULL or has `reason_len`
/// bytes of room.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_broker_state(
    broker: *const boxmq_broker,
    reason: *mut c_char,
    reason_len: usize,
) -> c_int {
    guard(|| {
        // SAFETY: as promised.
        let b = unsafe { object(broker, "broker") }?;
        let state = b.lock().state();
        let (code, why) = match &state {
            BrokerState::Init => (BOXMQ_STATE_INIT, ""),
            BrokerState::Running => (BOXMQ_STATE_RUNNING, ""),
            BrokerState::Stopped => (BOXMQ_STATE_STOPPED, ""),
            BrokerState::Failed(why) => (BOXMQ_STATE_FAILED, why.as_str()),
        };
        // SAFETY: as promised.
        unsafe { copy_out(why, reason, reason_len) };
        Ok(code)
    })
}

/// The name of a `BOXMQ_STATE_*` value: "Init", "Running", "Stopped",
/// "Failed", or "unknown". A static string.
#[unsafe(no_mangle)]
pub extern "C" fn boxmq_state_name(state: c_int) -> *const c_char {
    let name: &'static CStr = match state {
        BOXMQ_STATE_INIT => c"Init",
        BOXMQ_STATE_RUNNING => c"Running",
        BOXMQ_STATE_STOPPED => c"Stopped",
        BOXMQ_STATE_FAILED => c"Failed",
        _ => c"unknown",
    };
    name.as_ptr()
}

/// How many listeners the running broker has bound, or a negative error.
///
/// # Safety
/// `broker` is NULL or a live broker.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_broker_address_count(broker: *const boxmq_broker) -> c_int {
    guard(|| {
        // SAFETY: as promised.
        let b = unsafe { object(broker, "broker") }?;
        let n = b.running()?.local_addrs().len();
        Ok(c_int::try_from(n).unwrap_or(c_int::MAX))
    })
}

fn address(b: &boxmq_broker, index: usize) -> Result<SocketAddr, Fail> {
    let addrs = b.running()?.local_addrs();
    addrs.get(index).copied().ok_or_else(|| {
        Fail::new(
            BOXMQ_ERR_INVALID_ARGUMENT,
            format!(
                "listener index {index}: the broker has {} listener(s)",
                addrs.len()
            ),
        )
    })
}

/// The bound address of listener `index` (as `127.0.0.1:1883` or
/// `[::1]:1883`), copied like `snprintf`; returns its full length or a
/// negative error code.
///
/// # Safety
/// `broker` is NULL or a live broker; `buf` is NULL or has `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_broker_address(
    broker: *const boxmq_broker,
    index: usize,
    buf: *mut c_char,
    len: usize,
) -> c_int {
    guard(|| {
        // SAFETY: as promised.
        let b = unsafe { object(broker, "broker") }?;
        let addr = address(b, index)?.to_string();
        // SAFETY: as promised.
        Ok(unsafe { copy_out(&addr, buf, len) })
    })
}

/// The bound port of listener `index` (the real one when 0 was asked
/// for), or a negative error code.
///
/// # Safety
/// `broker` is NULL or a live broker.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_broker_port(broker: *const boxmq_broker, index: usize) -> c_int {
    guard(|| {
        // SAFETY: as promised.
        let b = unsafe { object(broker, "broker") }?;
        Ok(c_int::from(address(b, index)?.port()))
    })
}

/// Fills `out` with the broker's counters now.
///
/// # Safety
/// `broker` is NULL or a live broker; `out` is NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_broker_stats(
    broker: *const boxmq_broker,
    out: *mut boxmq_stats,
) -> c_int {
    guard(|| {
        // SAFETY: as promised.
        let b = unsafe { object(broker, "broker") }?;
        if out.is_null() {
            return Err(Fail::null("out"));
        }
        let s = b.running()?.stats().map_err(Fail::from)?;
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        let stats = boxmq_stats {
            clients_connected: n(s.clients_connected),
            clients_maximum: n(s.clients_maximum),
            sessions: n(s.sessions),
            messages_received: s.messages_received,
            messages_sent: s.messages_sent,
            bytes_received: s.bytes_received,
            bytes_sent: s.bytes_sent,
            publish_dropped: s.publish_dropped,
            retained_refused: s.retained_refused,
            retained_messages: n(s.retained_messages),
            retained_bytes: n(s.retained_bytes),
            subscriptions: n(s.subscriptions),
        };
        // SAFETY: non-NULL and valid, as promised.
        unsafe { out.write(stats) };
        Ok(BOXMQ_OK)
    })
}

/// Stops the broker (as [`boxmq_broker_stop`]) and frees it. NULL is
/// ignored.
///
/// # Safety
/// `broker` is NULL or a broker from [`boxmq_broker_new`] not freed yet,
/// and no other thread uses it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boxmq_broker_free(broker: *mut boxmq_broker) {
    if broker.is_null() {
        return;
    }
    guard(|| {
        // SAFETY: ours, from `Box::into_raw`, freed once, as promised.
        drop(unsafe { Box::from_raw(broker) });
        Ok(BOXMQ_OK)
    });
}

/// The library's version, such as "0.1.0". A static string.
#[unsafe(no_mangle)]
pub extern "C" fn boxmq_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    /// The same numbers are asserted in ffi/tests/abi.c against the header.
    #[test]
    fn layouts_match_the_header() {
        assert_eq!(size_of::<boxmq_stats>(), 96);
        assert_eq!(offset_of!(boxmq_stats, messages_received), 24);
        assert_eq!(offset_of!(boxmq_stats, subscriptions), 88);
        #[cfg(target_pointer_width = "64")]
        {
            assert_eq!(size_of::<boxmq_message>(), 40);
            assert_eq!(offset_of!(boxmq_message, payload), 16);
            assert_eq!(offset_of!(boxmq_message, qos), 32);
            assert_eq!(offset_of!(boxmq_message, retain), 36);
        }
    }

    #[test]
    fn copy_out_truncates_like_snprintf() {
        let mut buf = [1 as c_char; 4];
        // SAFETY: 4 bytes of room.
        let n = unsafe { copy_out("abcdef", buf.as_mut_ptr(), buf.len()) };
        assert_eq!(n, 6);
        // SAFETY: NUL-terminated by copy_out.
        let s = unsafe { CStr::from_ptr(buf.as_ptr()) };
        assert_eq!(s.to_str(), Ok("abc"));
        // SAFETY: NULL buffer: only the length.
        assert_eq!(unsafe { copy_out("xy", std::ptr::null_mut(), 0) }, 2);
    }

    #[test]
    fn null_arguments_are_errors_not_crashes() {
        // SAFETY: NULL is allowed everywhere and reported.
        unsafe {
            assert_eq!(
                boxmq_broker_start(std::ptr::null()),
                BOXMQ_ERR_INVALID_ARGUMENT
            );
            assert_eq!(
                boxmq_broker_new(std::ptr::null(), std::ptr::null_mut()),
                BOXMQ_ERR_INVALID_ARGUMENT
            );
            boxmq_broker_free(std::ptr::null_mut());
        }
        // SAFETY: a NUL-terminated static string.
        let msg = unsafe { CStr::from_ptr(boxmq_last_error()) };
        assert_eq!(msg.to_str(), Ok("out is NULL"));
    }

    #[test]
    fn a_config_error_names_the_line() {
        let mut b = std::ptr::null_mut();
        // SAFETY: valid strings and out pointer.
        let rc = unsafe { boxmq_broker_new(c"persistence false\nbogus 1".as_ptr(), &mut b) };
        assert_eq!(rc, BOXMQ_ERR_CONFIG);
        assert!(b.is_null());
        // SAFETY: NUL-terminated.
        let msg = unsafe { CStr::from_ptr(boxmq_last_error()) };
        let msg = msg.to_string_lossy();
        assert!(msg.contains("config:2:"), "{msg}");
    }
}
