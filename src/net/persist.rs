//! The event loop's side of persistence: opens the store, restores the core
//! from it before serving, and at the end of every loop turn hands what the
//! turn recorded to a writer thread. The writer appends everything that
//! arrived since its last commit and commits it with one write and one
//! `fdatasync` (group commit: while one sync runs, the next batch
//! gathers), then says how far the records are durable; the loop tells the
//! core, and the held acknowledgements go out. The loop itself never waits
//! for the disk, so subscribers keep being served during a sync.
//!
//! A failed commit is not retried on the same file (after a failed
//! `fdatasync` the kernel may have dropped the dirty pages and report
//! success next time): the store is poisoned, the acknowledgements stay
//! held, and a fresh snapshot of the in-memory state is tried at most once
//! a second until one succeeds.

use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::core::{Core, PersistFigures, PersistMode, for_each_record};
use crate::platform::wake::{Notifier, WakeSource};
use crate::store::{Disk, Recovery, Store, StoreError, StoreOptions, StoreStats, StoreStatus};

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
    /// Time the store took to open and read its files.
    read_in: Duration,
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
    let started = Instant::now();
    match Store::open(opts) {
        Ok((store, recovery)) => Ok(Some(Opened {
            store,
            recovery,
            mode: p.mode,
            sync: p.sync,
            read_in: started.elapsed(),
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

/// Work for the writer thread, in the order the loop produced it.
enum Job {
    /// Records (kind, u32 length, body, ...) ending at core record `upto`.
    Batch { records: Vec<u8>, upto: u64 },
    /// A snapshot of the whole state, taken when `upto` records had been emitted.
    Compact {
        records: Vec<(u8, Vec<u8>)>,
        upto: u64,
    },
}

/// What the writer reports.
enum Done {
    /// Records up to `upto` are durable.
    Durable {
        upto: u64,
        stats: StoreStats,
        compact: bool,
    },
    /// A commit or a compaction failed (`disk_full`: with ENOSPC or
    /// EDQUOT); records are not durable until a compaction succeeds.
    Failed { why: String, disk_full: bool },
    /// A compaction (of `count` records, taken at record `upto`) succeeded
    /// after a failure.
    Recovered { count: usize, upto: u64 },
}

/// The writer thread: owns the store.
fn writer<D: Disk>(
    mut store: Store<D>,
    jobs: Receiver<Job>,
    done: Sender<Done>,
    mut wake: Notifier,
) {
    let mut poisoned = false;
    let notify = |wake: &mut Notifier| wake.notify();
    while let Ok(first) = jobs.recv() {
        let mut next = Some(first);
        let mut upto = None;
        let mut appended = false;
        while let Some(job) = next.take() {
            match job {
                Job::Batch { records, upto: n } => {
                    // While poisoned, batches are dropped: the next
                    // snapshot (always sent after them, see
                    // `Persistence::compact`) holds their effect, and
                    // memory stays bounded however long the disk fails.
                    if !poisoned {
                        append_encoded(&mut store, &records);
                        appended = true;
                        upto = Some(n);
                    }
                }
                Job::Compact { records, upto: n } => {
                    // Earlier batches first: the snapshot supersedes them.
                    if appended && !poisoned {
                        commit(&mut store, &mut poisoned, &done, upto);
                    }
                    appended = false;
                    upto = None;
                    let count = records.len();
                    match store.compact(&mut records.into_iter()) {
                        Ok(_) => {
                            if poisoned {
                                let _ = done.send(Done::Recovered { count, upto: n });
                            }
                            poisoned = false;
                            let _ = done.send(Done::Durable {
                                upto: n,
                                stats: store.stats(),
                                compact: false,
                            });
                        }
                        Err(e) => {
                            poisoned = true;
                            let _ = done.send(Done::Failed {
                                why: format!("writing a snapshot failed: {e}"),
                                disk_full: store.is_disk_full(),
                            });
                        }
                    }
                    notify(&mut wake);
                }
            }
            // Group commit: take whatever else is waiting into this commit.
            next = jobs.try_recv().ok();
        }
        if appended && !poisoned {
            commit(&mut store, &mut poisoned, &done, upto);
            notify(&mut wake);
        }
    }
    // The loop is gone: a last commit of what it sent.
    let _ = store.commit();
}

fn commit<D: Disk>(
    store: &mut Store<D>,
    poisoned: &mut bool,
    done: &Sender<Done>,
    upto: Option<u64>,
) {
    match store.commit() {
        Ok(_) => {
            if let Some(upto) = upto {
                let _ = done.send(Done::Durable {
                    upto,
                    stats: store.stats(),
                    compact: store.needs_compaction(),
                });
            }
        }
        Err(e) => {
            *poisoned = true;
            let _ = done.send(Done::Failed {
                why: format!("commit failed: {e}"),
                disk_full: store.is_disk_full(),
            });
        }
    }
}

/// Appends records as [`Core::take_records`] gives them.
fn append_encoded<D: Disk>(store: &mut Store<D>, records: &[u8]) {
    for_each_record(records, |kind, body| {
        store.append(kind, body);
    });
}

/// The store attached to a running loop, behind its writer thread.
pub(crate) struct Persistence {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
    /// The writer's wake-ups (registered with the poll by the loop).
    wake: WakeSource,
    /// Highest record count sent to the writer, and confirmed durable.
    sent: u64,
    durable: u64,
    /// A commit failed and no compaction has succeeded since.
    failing: bool,
    last_attempt: Option<Instant>,
    compacting: bool,
    /// What [`Persistence::status`] reports.
    status: StoreStatus,
}

impl Persistence {
    /// Turns persistence on in `core`, restores it from what the store
    /// recovered (logging what was set aside) and starts the writer.
    ///
    /// # Errors
    /// When the thread cannot be created.
    pub fn attach(
        opened: Opened,
        core: &mut Core,
        now: Instant,
        (theirs, ours): (Notifier, WakeSource),
    ) -> std::io::Result<Persistence> {
        let Opened {
            mut store,
            recovery,
            mode,
            sync,
            read_in,
        } = opened;
        core.enable_persistence(mode, sync, now, unix_now());
        // Absolute, so the log says where the state is whatever the
        // working directory was.
        let dir = std::path::absolute(store.dir())
            .unwrap_or_else(|_| store.dir().to_path_buf())
            .display()
            .to_string();
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
            "persistence ({} mode, sync {}) in {dir}: {} records read in {} ms and restored \
             in {} ms: {} retained messages, {} sessions, {} queued messages{}",
            match mode {
                PersistMode::Full => "full",
                PersistMode::Retained => "retained",
            },
            if sync { "on" } else { "off" },
            report.applied,
            read_in.as_millis(),
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
        drop(recovery);
        // Start from a snapshot of exactly what was restored: records
        // skipped now would otherwise be skipped again at every start.
        if report.skipped > 0 || store.needs_compaction() {
            let mut records = core.snapshot_records().into_iter();
            match store.compact(&mut records) {
                Ok(_) => log::info!("persistence: state rewritten as a fresh snapshot"),
                Err(e) => log::error!("persistence: writing a snapshot failed: {e}"),
            }
        }
        let (jobs_tx, jobs_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("boxmq-store".into())
            .spawn(move || writer(store, jobs_rx, done_tx, theirs))?;
        Ok(Persistence {
            jobs: Some(jobs_tx),
            done: done_rx,
            thread: Some(thread),
            wake: ours,
            sent: 0,
            durable: 0,
            failing: false,
            last_attempt: None,
            compacting: false,
            status: StoreStatus::default(),
        })
    }

    /// End of a loop turn: hands the records the turn produced to the
    /// writer, and takes in what the writer made durable.
    pub fn end_of_turn(&mut self, core: &mut Core, now: Instant) {
        self.poll(core, now);
        self.send_pending(core);
        if self.failing
            && self
                .last_attempt
                .is_none_or(|t| now.duration_since(t) >= RETRY_EVERY)
        {
            self.compact(core, now);
        }
    }

    /// Takes in the writer's reports.
    pub fn poll(&mut self, core: &mut Core, now: Instant) {
        self.wake.drain();
        while let Ok(d) = self.done.try_recv() {
            self.take(d, core, now);
        }
    }

    fn take(&mut self, d: Done, core: &mut Core, now: Instant) {
        match d {
            Done::Durable {
                upto,
                stats,
                compact,
            } => {
                self.durable = self.durable.max(upto);
                core.handle_durable(upto);
                self.status.stats = stats.clone();
                core.set_persist_figures(PersistFigures {
                    last_sync: stats.last_sync,
                    max_sync: stats.max_sync,
                    log_bytes: stats.log_bytes,
                    bytes_written: stats.bytes_written,
                });
                if compact && !self.compacting && !self.failing {
                    self.compact(core, now);
                } else if !compact {
                    self.compacting = false;
                }
            }
            Done::Failed { why, disk_full } => {
                self.status.disk_full = disk_full;
                self.status.failing = Some(why.clone());
                if self.failing {
                    log::error!("persistence: {why}; retrying in 1 s");
                } else {
                    log::error!(
                        "persistence: {why}; acknowledgements are held until a fresh \
                         snapshot is written (tried at most once a second)"
                    );
                }
                self.failing = true;
                self.compacting = false;
            }
            Done::Recovered { count, upto } => {
                log::warn!(
                    "persistence: recovered; snapshot of {count} records (up to record {upto}) \
                     written"
                );
                self.failing = false;
                self.status.failing = None;
                self.status.disk_full = false;
            }
        }
    }

    /// The store's health and its writer's last figures.
    pub fn status(&self) -> StoreStatus {
        self.status.clone()
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

    /// Graceful stop: the last records written and waited for (at most
    /// 5 s), and what they held released.
    pub fn finish(&mut self, core: &mut Core, now: Instant) {
        self.end_of_turn(core, now);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.durable < self.sent && !self.failing {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.done.recv_timeout(left) {
                Ok(d) => self.take(d, core, now),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    log::warn!("persistence: the last records were not confirmed within 5 s");
                    break;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    /// Sends the records the core emitted since the last call.
    fn send_pending(&mut self, core: &mut Core) {
        let records = core.take_records();
        if !records.is_empty() {
            let upto = core.records_emitted();
            self.sent = upto;
            self.send(Job::Batch { records, upto });
        }
    }

    fn send(&mut self, job: Job) {
        if let Some(tx) = &self.jobs {
            if tx.send(job).is_err() {
                log::error!("persistence: the writer thread is gone; nothing more is written");
                self.jobs = None;
                self.failing = true;
                self.status.failing = Some("the writer thread is gone".into());
            }
        }
    }

    /// Asks the writer for a snapshot of the whole state and a new log.
    fn compact(&mut self, core: &mut Core, now: Instant) {
        self.last_attempt = Some(now);
        self.compacting = true;
        // Records emitted before the snapshot go first: sent after it they
        // would be applied twice on recovery (the snapshot has them).
        self.send_pending(core);
        let records = core.snapshot_records();
        let upto = core.records_emitted();
        self.sent = self.sent.max(upto);
        self.send(Job::Compact { records, upto });
    }
}

impl Drop for Persistence {
    fn drop(&mut self) {
        // Closing the channel ends the writer after its last commit.
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::wake;
    use crate::store::SimDisk;

    fn batch(kinds: &[u8], upto: u64) -> Job {
        let mut records = Vec::new();
        for &k in kinds {
            records.push(k);
            records.extend_from_slice(&1u32.to_le_bytes());
            records.push(k);
        }
        Job::Batch { records, upto }
    }

    /// A failed sync poisons the store; batches are dropped until a
    /// snapshot succeeds; then commits go on, and a restart finds the
    /// snapshot and what followed.
    #[test]
    fn a_sync_error_holds_everything_until_a_snapshot_succeeds() {
        let disk = SimDisk::new();
        let (store, _) = Store::open_on(disk.clone(), StoreOptions::new("/d")).unwrap();
        let (jobs_tx, jobs_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let poll = mio::Poll::new().unwrap();
        let (theirs, _ours) = wake::pair(poll.registry(), mio::Token(0)).unwrap();
        disk.fail_sync(1);
        jobs_tx.send(batch(&[1, 2], 2)).unwrap();
        jobs_tx.send(batch(&[3], 3)).unwrap();
        jobs_tx
            .send(Job::Compact {
                records: vec![(9, vec![9]), (8, vec![8])],
                upto: 3,
            })
            .unwrap();
        jobs_tx.send(batch(&[4], 4)).unwrap();
        drop(jobs_tx);
        writer(store, jobs_rx, done_tx, theirs);
        let got: Vec<String> = done_rx
            .try_iter()
            .map(|d| match d {
                Done::Durable { upto, .. } => format!("durable {upto}"),
                Done::Failed { .. } => "failed".into(),
                Done::Recovered { count, upto } => format!("recovered {count} {upto}"),
            })
            .collect();
        assert_eq!(got, ["failed", "recovered 2 3", "durable 3", "durable 4"]);
        disk.crash_lose_unsynced();
        let (_, rec) = Store::open_on(disk, StoreOptions::new("/d")).unwrap();
        let kinds: Vec<u8> = rec.records.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [9, 8, 4]);
    }

    /// A write failing with ENOSPC is reported as a full disk.
    #[test]
    fn a_full_disk_is_reported_as_such() {
        let disk = SimDisk::new();
        let (store, _) = Store::open_on(disk.clone(), StoreOptions::new("/d")).unwrap();
        let (jobs_tx, jobs_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let poll = mio::Poll::new().unwrap();
        let (theirs, _ours) = wake::pair(poll.registry(), mio::Token(0)).unwrap();
        disk.set_full(true);
        jobs_tx.send(batch(&[1], 1)).unwrap();
        drop(jobs_tx);
        writer(store, jobs_rx, done_tx, theirs);
        let failed: Vec<bool> = done_rx
            .try_iter()
            .filter_map(|d| match d {
                Done::Failed { disk_full, .. } => Some(disk_full),
                _ => None,
            })
            .collect();
        assert_eq!(failed, [true]);
    }
}
