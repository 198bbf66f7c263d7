//! The application's end of the events channel (see [`Handle::events`]).
//!
//! [`Handle::events`]: super::Handle::events

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::core::Event;

/// What the loop and the application share of the events channel.
pub(crate) struct EventsInner {
    pub rx: Mutex<Receiver<Event>>,
    pub lost: Arc<AtomicU64>,
}

/// What happened to the broker's clients: connected, disconnected (with
/// the reason), subscribed, unsubscribed (with the filter), dropped (a
/// client's queue bound was reached). Events come in the order they
/// happened, so in order per client. The channel is bounded
/// (`BrokerBuilder::event_capacity`, default 1024): when the application
/// does not read fast enough, the events that do not fit are lost and
/// counted ([`Events::lost`]); messages are never affected.
///
/// Clones share one channel: each event goes to one reader.
#[derive(Clone)]
pub struct Events {
    pub(crate) inner: Arc<EventsInner>,
}

impl Events {
    /// The next event, waiting at most `timeout`; `None` if none came (or
    /// the broker stopped and every event was read).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        let rx = self.inner.rx.lock().unwrap_or_else(PoisonError::into_inner);
        rx.recv_timeout(timeout).ok()
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<Event> {
        let rx = self.inner.rx.lock().unwrap_or_else(PoisonError::into_inner);
        rx.try_recv().ok()
    }

    /// Events lost so far because the channel was full.
    pub fn lost(&self) -> u64 {
        self.inner.lost.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("lost", &self.lost())
            .finish_non_exhaustive()
    }
}
