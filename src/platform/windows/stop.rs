//! Stop requests from Windows: Ctrl-C, Ctrl-Break, closing the console,
//! logoff and shutdown (console control events), and the service's Stop
//! control (`request`, called by the service's control handler).
//!
//! Windows calls the console handler on a thread of its own; it records
//! the request and wakes the loop through a `mio::Waker`. After a close,
//! logoff or shutdown event Windows ends the process as soon as the handler
//! returns, so the handler then waits (at most `CLOSE_GRACE`) for the loop
//! to finish its graceful stop. There is no SIGHUP: reloading the password
//! and ACL files needs a restart on Windows.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Condvar, Mutex, Once};
use std::time::Duration;

use mio::{Registry, Token, Waker};
use windows_sys::Win32::System::Console::{
    CTRL_BREAK_EVENT, CTRL_C_EVENT, CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT,
    SetConsoleCtrlHandler,
};
use windows_sys::core::BOOL;

/// What asked the broker to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// A console control event (`CTRL_C_EVENT`, ...).
    Console(u32),
    /// The service control manager's Stop or Shutdown control.
    Service,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Cause::Console(CTRL_C_EVENT) => f.write_str("Ctrl-C"),
            Cause::Console(CTRL_BREAK_EVENT) => f.write_str("Ctrl-Break"),
            Cause::Console(CTRL_CLOSE_EVENT) => f.write_str("console close"),
            Cause::Console(CTRL_LOGOFF_EVENT) => f.write_str("logoff"),
            Cause::Console(CTRL_SHUTDOWN_EVENT) => f.write_str("system shutdown"),
            Cause::Console(n) => write!(f, "console event {n}"),
            Cause::Service => f.write_str("service stop"),
        }
    }
}

/// One request, in the order they arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Stop gracefully.
    Stop(Cause),
    /// Re-read the password and ACL files (never sent on Windows).
    Reload,
}

/// No request pending (`PENDING`); otherwise the cause's code.
const NONE: u32 = u32::MAX;
/// `PENDING`'s code for [`Cause::Service`].
const SERVICE: u32 = u32::MAX - 1;
/// How long a close, logoff or shutdown event waits for the graceful stop
/// (Windows allows 5 s before it ends the process anyway).
const CLOSE_GRACE: Duration = Duration::from_millis(4500);

static PENDING: AtomicU32 = AtomicU32::new(NONE);
static WAKER: Mutex<Option<Waker>> = Mutex::new(None);
static STOPPED: Mutex<bool> = Mutex::new(true);
static STOPPED_CHANGED: Condvar = Condvar::new();
static HANDLER: Once = Once::new();
static AS_SERVICE: AtomicBool = AtomicBool::new(false);

/// The requests' source; dropping it (the loop has stopped) releases a
/// console handler waiting for the stop.
#[derive(Debug)]
pub struct StopSource(());

/// Says the process runs as a service: logoff events (sent to services when
/// any user logs off) are then ignored.
pub fn set_service() {
    AS_SERVICE.store(true, Ordering::SeqCst);
}

/// Asks the loop to stop, from any thread (the service's control handler).
pub fn request(cause: Cause) {
    let code = match cause {
        Cause::Console(n) => n,
        Cause::Service => SERVICE,
    };
    PENDING.store(code, Ordering::SeqCst);
    if let Ok(w) = WAKER.lock() {
        if let Some(w) = w.as_ref() {
            let _ = w.wake();
        }
    }
}

/// Called by Windows on a thread of its own for every console event.
extern "system" fn console_handler(ctrl: u32) -> BOOL {
    if ctrl == CTRL_LOGOFF_EVENT && AS_SERVICE.load(Ordering::SeqCst) {
        return 0;
    }
    request(Cause::Console(ctrl));
    if matches!(
        ctrl,
        CTRL_CLOSE_EVENT | CTRL_LOGOFF_EVENT | CTRL_SHUTDOWN_EVENT
    ) {
        if let Ok(stopped) = STOPPED.lock() {
            let _ = STOPPED_CHANGED.wait_timeout_while(stopped, CLOSE_GRACE, |s| !*s);
        }
    }
    // Handled: the default handler (which ends the process) is not called.
    1
}

/// Installs the console handler; the loop of `registry` wakes with `token`
/// when a request arrives. One loop per process receives the requests (the
/// last one installed).
///
/// # Errors
/// When the waker cannot be created or the handler installed.
pub fn install(registry: &Registry, token: Token) -> io::Result<StopSource> {
    let waker = Waker::new(registry, token)?;
    let mut failed = None;
    HANDLER.call_once(|| {
        // SAFETY: SetConsoleCtrlHandler only stores the function pointer;
        // `console_handler` is a plain `extern "system"` function with the
        // signature PHANDLER_ROUTINE asks for and touches only statics.
        #[allow(unsafe_code)]
        let ok = unsafe { SetConsoleCtrlHandler(Some(console_handler), 1) };
        if ok == 0 {
            failed = Some(io::Error::last_os_error());
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    if let Ok(mut s) = STOPPED.lock() {
        *s = false;
    }
    if PENDING.load(Ordering::SeqCst) != NONE {
        // Asked before the loop existed.
        let _ = waker.wake();
    }
    if let Ok(mut w) = WAKER.lock() {
        *w = Some(waker);
    }
    Ok(StopSource(()))
}

impl StopSource {
    /// The requests that arrived since the last call.
    pub fn pending(&mut self) -> Vec<Request> {
        match PENDING.swap(NONE, Ordering::SeqCst) {
            NONE => Vec::new(),
            SERVICE => vec![Request::Stop(Cause::Service)],
            n => vec![Request::Stop(Cause::Console(n))],
        }
    }
}

impl Drop for StopSource {
    fn drop(&mut self) {
        if let Ok(mut w) = WAKER.lock() {
            *w = None;
        }
        if let Ok(mut s) = STOPPED.lock() {
            *s = true;
        }
        STOPPED_CHANGED.notify_all();
    }
}
