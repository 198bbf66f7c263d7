//! The event loop's side of persistence: opens the store, restores the core
//! from it before serving, and at the end of every loop turn writes what
//! the turn recorded with one commit (one write, one `fdatasync`: group
//! commit), then tells the core what is durable so held acknowledgements
//! go out.
//!
//! A failed commit is not retried on the same file (after a failed
//! `fdatasync` the kernel may have dropped the dirty pages and report
//! success next time): the store is poisoned, the acknowledgements stay
//! held, and a fresh snapshot of the in-memory state is tried at most once
//! a second until one succeeds.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::core::{Core, PersistFigures, PersistMode};
use crate::store::{Recovery, Store, StoreError, StoreOptions};

/// Log size past which the state is compacted into a snapshot.
const COMPACT_AT: u64 = 64 << 20;
/// Least time between two compaction attempts after a failure.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// An opened store and what it recovered, not yet given to a core.
pub struct Opened {
    store: Store,
    recovery: Recovery,
    mode: PersistMode,
    sync: bool,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("store", &self.store)
            .field("records", &self.recovery.records.len())
            .finish_non_exhaustive()
    }
}

/// Opens the store `config` asks for, if persistence is on (`default`:
/// whether it is when the config does not say).
///
/// # Errors
/// The directory cannot be created or read, or another process holds it;
/// the message names the directory. Damaged files are not errors.
pub fn open(config: &Config, default: bool) -> Result<Option<Opened>, String> {
    let p = &config.persistence;
    if !p.is_on(default) {
        return Ok(None);
    }
    let dir = p.dir();
    let opts = StoreOptions {
        dir: dir.clone(),
        sync: p.sync,
        compact_at: COMPACT_AT,
    };
    match Store::open(opts) {
        Ok((store, recovery)) => Ok(Some(Opened {
            store,
            recovery,
            mode: p.mode,
            sync: p.sync,
        })),
        Err(e @ StoreError::Locked(_)) => {
            Err(format!("persistence directory {}: {e}", dir.display()))
        }
        Err(e) => Err(format!(
            "persistence directory {}: {e} (set persistence_location, or persistence false)",
            dir.display()
        )),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The store attached to a running loop.
pub(crate) struct Persistence {
    store: Store,
    /// A commit failed and no compaction has succeeded since.
    failing: bool,
    last_attempt: Option<Instant>,
}

impl Persistence {
    /// Turns persistence on in `core` and restores it from what the store
    /// recovered, logging what was set aside.
    pub fn attach(opened: Opened, core: &mut Core, now: Instant) -> Persistence {
        let Opened {
            store,
            recovery,
            mode,
            sync,
        } = opened;
        core.enable_persistence(mode, sync, now, unix_now());
        let dir = store.dir().display().to_string();
        for note in &recovery.notes {
            log::warn!("persistence: {note}");
        }
        let started = Instant::now();
        let report = core.restore(
            recovery.records.iter().map(|r| (r.kind, r.body.as_slice())),
            now,
        );
        for note in &report.notes {
            log::warn!("persistence: {note}");
        }
        log::info!(
            "persistence ({} mode, sync {}) in {dir}: {} records restored in {} ms: \
             {} retained messages, {} sessions, {} queued messages{}",
            match mode {
                PersistMode::Full => "full",
                PersistMode::Retained => "retained",
            },
            if sync { "on" } else { "off" },
            report.applied,
            started.elapsed().as_millis(),
            report.retained,
            report.sessions,
            report.messages,
            if report.skipped > 0 {
                format!(", {} records skipped", report.skipped)
            } else {
                String::new()
            }
        );
        let mut me = Persistence {
            store,
            failing: false,
            last_attempt: None,
        };
        // Start from a snapshot of exactly what was restored: records
        // skipped now would otherwise be skipped again at every start.
        if !recovery.notes.is_empty() || report.skipped > 0 {
            me.compact(core, now);
        }
        me
    }

    /// End of a loop turn: writes the records the turn produced with one
    /// commit and releases what they held.
    pub fn end_of_turn(&mut self, core: &mut Core, now: Instant) {
        let store = &mut self.store;
        let mut n = 0u64;
        core.drain_records(|kind, body| {
            store.append(kind, body);
            n += 1;
        });
        if self.failing {
            if self
                .last_attempt
                .is_none_or(|t| now.duration_since(t) >= RETRY_EVERY)
            {
                self.compact(core, now);
            }
            return;
        }
        if n > 0 {
            match self.store.commit() {
                Ok(_) => {
                    core.handle_durable(core.records_emitted());
                    self.figures(core);
                }
                Err(e) => {
                    log::error!(
                        "persistence: commit failed: {e}; acknowledgements are held until a \
                         fresh snapshot is written (tried at most once a second)"
                    );
                    self.failing = true;
                    self.compact(core, now);
                    return;
                }
            }
        }
        if self.store.needs_compaction() {
            self.compact(core, now);
        }
    }

    /// When the loop must wake up to retry, if a failure is pending.
    pub fn retry_deadline(&self) -> Option<Instant> {
        if self.failing {
            Some(
                self.last_attempt
                    .map_or_else(Instant::now, |t| t + RETRY_EVERY),
            )
        } else {
            None
        }
    }

    /// Writes a snapshot of the whole state and starts a new log.
    fn compact(&mut self, core: &mut Core, now: Instant) {
        self.last_attempt = Some(now);
        let records = core.snapshot_records();
        let count = records.len();
        match self.store.compact(&mut records.into_iter()) {
            Ok(_) => {
                core.handle_durable(core.records_emitted());
                if self.failing {
                    log::warn!("persistence: recovered; snapshot of {count} records written");
                } else {
                    log::info!("persistence: compacted into a snapshot of {count} records");
                }
                self.failing = false;
                self.figures(core);
            }
            Err(e) => {
                log::error!("persistence: writing a snapshot failed: {e}; retrying in 1 s");
                self.failing = true;
            }
        }
    }

    fn figures(&self, core: &mut Core) {
        let s = self.store.stats();
        core.set_persist_figures(PersistFigures {
            last_sync: s.last_sync,
            max_sync: s.max_sync,
            log_bytes: s.log_bytes,
            bytes_written: s.bytes_written,
        });
    }
}
