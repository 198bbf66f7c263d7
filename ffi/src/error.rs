//! Return codes, the thread-local error message, and the panic guard every
//! entry point runs in.

use std::cell::RefCell;
use std::ffi::{CString, c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};

use broker::{BrokerError, ClientError};

/// Success.
pub const BOXMQ_OK: c_int = 0;
/// `boxmq_subscription_next`: no message within the timeout (not an error).
pub const BOXMQ_TIMEOUT: c_int = 1;
/// `boxmq_subscription_next`: the subscription has ended and every message
/// has been taken (not an error; the broker stopped or closed it).
pub const BOXMQ_CLOSED: c_int = 2;
/// A NULL pointer, a string that is not UTF-8, a QoS other than 0, 1, 2,
/// an index out of range, or the wrong kind of subscription.
pub const BOXMQ_ERR_INVALID_ARGUMENT: c_int = -1;
/// The config text is not valid (the message names the line), or a password
/// or ACL file it names cannot be read.
pub const BOXMQ_ERR_CONFIG: c_int = -2;
/// A listener could not be bound (port in use, permission denied).
pub const BOXMQ_ERR_BIND: c_int = -3;
/// The event loop could not be set up or failed.
pub const BOXMQ_ERR_IO: c_int = -4;
/// The persistence directory cannot be used.
pub const BOXMQ_ERR_PERSISTENCE: c_int = -5;
/// `boxmq_broker_start` on a running broker.
pub const BOXMQ_ERR_ALREADY_RUNNING: c_int = -6;
/// The broker is not running (never started, stopped, failed).
pub const BOXMQ_ERR_NOT_RUNNING: c_int = -7;
/// The broker thread did not answer in time.
pub const BOXMQ_ERR_TIMEOUT: c_int = -8;
/// The broker refused the in-process client or the subscription, or the
/// client id cannot be used.
pub const BOXMQ_ERR_REFUSED: c_int = -9;
/// An invalid topic name or topic filter (empty, misplaced wildcard, too
/// long, a malformed `$share/` name, ...); the client keeps working.
pub const BOXMQ_ERR_INVALID_TOPIC: c_int = -10;
/// The message would exceed `max_packet_size`.
pub const BOXMQ_ERR_TOO_LARGE: c_int = -11;
/// The broker closed the client's connection (client id taken over, or
/// the broker is stopping).
pub const BOXMQ_ERR_DISCONNECTED: c_int = -12;
/// Too many QoS 2 messages of this client await completion; take messages
/// from its subscriptions and try again.
pub const BOXMQ_ERR_BUSY: c_int = -13;
/// A thread could not be started.
pub const BOXMQ_ERR_THREAD: c_int = -14;
/// A bug in boxmq: a panic was caught at the C boundary.
pub const BOXMQ_ERR_PANIC: c_int = -15;

/// A failed call: its code and message.
#[derive(Debug)]
pub(crate) struct Fail {
    pub code: c_int,
    pub message: String,
}

impl Fail {
    pub(crate) fn new(code: c_int, message: impl Into<String>) -> Fail {
        Fail {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn null(what: &str) -> Fail {
        Fail::new(BOXMQ_ERR_INVALID_ARGUMENT, format!("{what} is NULL"))
    }
}

impl From<BrokerError> for Fail {
    fn from(e: BrokerError) -> Fail {
        let code = match &e {
            BrokerError::Config(_) => BOXMQ_ERR_CONFIG,
            BrokerError::Bind { .. } => BOXMQ_ERR_BIND,
            BrokerError::Io(_) => BOXMQ_ERR_IO,
            BrokerError::Persistence(_) => BOXMQ_ERR_PERSISTENCE,
            BrokerError::AlreadyRunning => BOXMQ_ERR_ALREADY_RUNNING,
            BrokerError::NotRunning => BOXMQ_ERR_NOT_RUNNING,
            BrokerError::Timeout => BOXMQ_ERR_TIMEOUT,
            BrokerError::InvalidClientId(_) | BrokerError::Refused { .. } => BOXMQ_ERR_REFUSED,
            _ => BOXMQ_ERR_IO,
        };
        Fail::new(code, e.to_string())
    }
}

impl From<ClientError> for Fail {
    fn from(e: ClientError) -> Fail {
        let code = match &e {
            ClientError::InvalidTopic { .. } | ClientError::InvalidFilter { .. } => {
                BOXMQ_ERR_INVALID_TOPIC
            }
            ClientError::InvalidProperty { .. } => BOXMQ_ERR_INVALID_ARGUMENT,
            ClientError::TooLarge { .. } => BOXMQ_ERR_TOO_LARGE,
            ClientError::SubscriptionRefused { .. } | ClientError::Refused { .. } => {
                BOXMQ_ERR_REFUSED
            }
            ClientError::Busy => BOXMQ_ERR_BUSY,
            ClientError::Disconnected => BOXMQ_ERR_DISCONNECTED,
            ClientError::NotRunning => BOXMQ_ERR_NOT_RUNNING,
            ClientError::Timeout => BOXMQ_ERR_TIMEOUT,
            ClientError::Thread(_) => BOXMQ_ERR_THREAD,
            _ => BOXMQ_ERR_IO,
        };
        Fail::new(code, e.to_string())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn set_last_error(message: &str) {
    // A message holding NUL (it cannot, but it costs nothing) is cut there.
    let text = message.split('\0').next().unwrap_or_default();
    let c = CString::new(text).unwrap_or_default();
    // `try_with`: during thread teardown the slot may be gone; then the
    // message is lost, the code still says what happened.
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = Some(c);
        }
    });
}

/// Runs an entry point's body: a `Fail` sets the thread's last error and
/// returns its code; a panic becomes [`BOXMQ_ERR_PANIC`].
pub(crate) fn guard(body: impl FnOnce() -> Result<c_int, Fail>) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(code)) => code,
        Ok(Err(fail)) => {
            set_last_error(&fail.message);
            fail.code
        }
        Err(_) => {
            set_last_error("internal error in boxmq (a panic was caught; please report it)");
            BOXMQ_ERR_PANIC
        }
    }
}

/// The message of the last call on this thread that returned a negative
/// code (empty if none did). Valid until the next failing call on the same
/// thread; owned by the library.
#[unsafe(no_mangle)]
pub extern "C" fn boxmq_last_error() -> *const c_char {
    static EMPTY: &std::ffi::CStr = c"";
    let result = catch_unwind(|| {
        LAST_ERROR
            .try_with(|slot| match slot.try_borrow() {
                // The CString lives in the thread-local until replaced.
                Ok(s) => s.as_ref().map_or(EMPTY.as_ptr(), |c| c.as_ptr()),
                Err(_) => EMPTY.as_ptr(),
            })
            .unwrap_or(EMPTY.as_ptr())
    });
    result.unwrap_or(EMPTY.as_ptr())
}
