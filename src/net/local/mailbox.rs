//! The bounded queue between the broker thread and one [`Subscription`].
//!
//! The broker thread only ever asks "is there room?" and then pushes; it
//! never waits. When there is no room it leaves the message in the core and
//! the mailbox remembers that the loop is waiting; the first message the
//! application takes then wakes the loop, which tries again.
//!
//! [`Subscription`]: super::Subscription

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use mio::Waker;

use super::Message;

/// Why nothing was taken from a mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Empty {
    /// Nothing there yet (or not before the deadline).
    NotYet,
    /// Nothing there and nothing will come: the connection has ended.
    Closed,
}

struct State {
    queue: VecDeque<Message>,
    capacity: usize,
    /// The broker side has finished: no more messages will be pushed.
    closed: bool,
    /// The application side gave up (a callback subscription was cancelled).
    cancelled: bool,
    /// The loop found the queue full and waits to be woken when it is not.
    loop_waiting: bool,
}

/// See the module documentation.
pub(crate) struct Mailbox {
    state: Mutex<State>,
    ready: Condvar,
    waker: Arc<Waker>,
}

impl Mailbox {
    /// A mailbox holding at most `capacity` messages (at least one).
    pub(crate) fn new(capacity: usize, waker: Arc<Waker>) -> Mailbox {
        Mailbox {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                capacity: capacity.max(1),
                closed: false,
                cancelled: false,
                loop_waiting: false,
            }),
            ready: Condvar::new(),
            waker,
        }
    }

    /// The lock; a panic in another thread while holding it cannot leave the
    /// queue half-updated (every critical section is a plain field update),
    /// so a poisoned lock is simply taken over.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Broker side: whether one more message fits. When it does not, the
    /// next [`Mailbox::take`] wakes the loop.
    pub(crate) fn has_room(&self) -> bool {
        let mut s = self.lock();
        if s.cancelled || s.queue.len() < s.capacity {
            true
        } else {
            s.loop_waiting = true;
            false
        }
    }

    /// Broker side: adds a message (after [`Mailbox::has_room`] said yes).
    /// Dropped when the application side has cancelled.
    pub(crate) fn push(&self, message: Message) {
        let mut s = self.lock();
        if !s.cancelled {
            s.queue.push_back(message);
            drop(s);
            self.ready.notify_one();
        }
    }

    /// Broker side: no more messages will come.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Application side: stop now, dropping what is queued. Takers return
    /// [`Empty::Closed`] at once.
    pub(crate) fn cancel(&self) {
        let mut s = self.lock();
        s.cancelled = true;
        s.queue.clear();
        drop(s);
        self.ready.notify_all();
    }

    /// Application side: takes the oldest message, waiting until `deadline`
    /// (`None`: forever) when `wait` is set.
    pub(crate) fn take(&self, wait: bool, deadline: Option<Instant>) -> Result<Message, Empty> {
        let mut s = self.lock();
        loop {
            if s.cancelled {
                return Err(Empty::Closed);
            }
            if let Some(m) = s.queue.pop_front() {
                let wake = std::mem::take(&mut s.loop_waiting);
                drop(s);
                if wake {
                    // Room again: let the loop hand over what it held back.
                    // A failed wake means the loop is gone; nothing to do.
                    let _ = self.waker.wake();
                }
                return Ok(m);
            }
            if s.closed {
                return Err(Empty::Closed);
            }
            if !wait {
                return Err(Empty::NotYet);
            }
            s = match deadline {
                None => self.ready.wait(s).unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(Empty::NotYet);
                    }
                    self.ready
                        .wait_timeout(s, d.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    /// Messages waiting to be taken.
    pub(crate) fn len(&self) -> usize {
        self.lock().queue.len()
    }
}
