//! Mosquitto's `log_dest topic`: the `boxmq` binary's log lines published
//! on `$SYS/broker/log/E` (errors), `W` (warnings) and `N` (boxmq's
//! information lines, Mosquitto's notices); debug lines never, as in
//! Mosquitto.
//!
//! The binary's logger hands each line over with [`push`], from whatever
//! thread logged it; the event loop publishes what waits at the end of
//! each turn (`Server::publish_log_lines`), so the lines of the loop's own
//! thread go out in the turn that logged them, those of other threads (the
//! store's writer, the resolver) at the loop's next turn.
//!
//! Bounded and never recursive: at most [`MAX_LINES`] lines of at most
//! [`MAX_LINE`] bytes wait (more are counted, and the count is published
//! as one warning), and what is logged while the loop publishes log lines
//! (a subscriber's queue overflowing, say) is not queued again; it still
//! goes to the other destinations.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Most lines waiting for the loop.
pub const MAX_LINES: usize = 1000;
/// Longest line published; longer ones are cut (at a character).
pub const MAX_LINE: usize = 4096;

static ENABLED: AtomicBool = AtomicBool::new(false);
static QUEUE: Mutex<Waiting> = Mutex::new(Waiting {
    lines: VecDeque::new(),
    dropped: 0,
});

thread_local! {
    /// This thread is publishing log lines: what it logs now stays off
    /// the topics.
    static PUBLISHING: Cell<bool> = const { Cell::new(false) };
}

struct Waiting {
    lines: VecDeque<(&'static str, String)>,
    dropped: u64,
}

/// Turns the topics on (`log_dest topic`); the binary's logger calls it.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether `log_dest topic` is on.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The topic of a line of `level`; `None` for debug and trace lines.
pub fn topic_of(level: log::Level) -> Option<&'static str> {
    match level {
        log::Level::Error => Some("$SYS/broker/log/E"),
        log::Level::Warn => Some("$SYS/broker/log/W"),
        log::Level::Info => Some("$SYS/broker/log/N"),
        log::Level::Debug | log::Level::Trace => None,
    }
}

/// Queues `line` (logged at `level`) for its topic, unless the topics are
/// off, the level is debug or trace, or this thread is publishing log
/// lines. A full queue counts the line instead.
pub fn push(level: log::Level, line: &str) {
    if !enabled() || PUBLISHING.with(Cell::get) {
        return;
    }
    let Some(topic) = topic_of(level) else {
        return;
    };
    if let Ok(mut q) = QUEUE.lock() {
        q.push(topic, line);
    }
}

impl Waiting {
    /// Queues `line` (cut to [`MAX_LINE`] bytes) for `topic`, or counts
    /// it when [`MAX_LINES`] wait.
    fn push(&mut self, topic: &'static str, line: &str) {
        if self.lines.len() >= MAX_LINES {
            self.dropped += 1;
            return;
        }
        let mut end = line.len().min(MAX_LINE);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        self.lines.push_back((topic, line[..end].to_owned()));
    }
}

/// Takes what waits: the lines with their topics, and how many were
/// counted instead of queued since the last call.
pub(super) fn take() -> (VecDeque<(&'static str, String)>, u64) {
    let Ok(mut q) = QUEUE.lock() else {
        return (VecDeque::new(), 0);
    };
    let lines = std::mem::take(&mut q.lines);
    (lines, std::mem::take(&mut q.dropped))
}

/// While it lives, this thread's log lines stay off the topics.
pub(super) struct Publishing;

impl Publishing {
    pub(super) fn start() -> Publishing {
        PUBLISHING.with(|p| p.set(true));
        Publishing
    }
}

impl Drop for Publishing {
    fn drop(&mut self) {
        PUBLISHING.with(|p| p.set(false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded_in_number_and_length() {
        let mut w = Waiting {
            lines: VecDeque::new(),
            dropped: 0,
        };
        // A multi-byte character across the cut: cut before it.
        let long = format!("{}é{}", "a".repeat(MAX_LINE - 1), "b".repeat(10));
        w.push("$SYS/broker/log/N", &long);
        assert_eq!(w.lines[0].1, "a".repeat(MAX_LINE - 1));
        for _ in 0..MAX_LINES + 5 {
            w.push("$SYS/broker/log/W", "x");
        }
        assert_eq!((w.lines.len(), w.dropped), (MAX_LINES, 6));
    }

    #[test]
    fn debug_lines_have_no_topic() {
        assert_eq!(topic_of(log::Level::Error), Some("$SYS/broker/log/E"));
        assert_eq!(topic_of(log::Level::Info), Some("$SYS/broker/log/N"));
        assert_eq!(topic_of(log::Level::Debug), None);
        assert_eq!(topic_of(log::Level::Trace), None);
    }
}
