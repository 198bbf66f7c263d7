//! The durable record store: an append-only log plus snapshots, with group
//! commit and recovery that never refuses to start because of damage.
//!
//! The store knows nothing about MQTT. It keeps opaque records
//! `(kind: u8, body: bytes)`, numbers them with a sequence number that only
//! grows (also across restarts) and gives them back in order on
//! [`Store::open`]. What the kinds and bodies mean is the caller's business.
//!
//! Use, once per event-loop turn: [`Store::append`] every record the turn
//! produced, then one [`Store::commit`] (one write, one `fdatasync`), then
//! release the acknowledgements up to the returned sequence number. When
//! [`Store::needs_compaction`] says so, or after an error, hand the whole
//! current state to [`Store::compact`].
//!
//! Files in the directory (format and recovery rules: docs/PERSISTENCE.md,
//! "On disk"): `lock`, `snap.N` (the state at compaction N), `log.N` (the
//! records appended after it), and damaged files set aside as
//! `NAME.corrupt-K`.
//!
//! [`Disk`] is the file system as the store uses it: [`FsDisk`] is the real
//! one, [`SimDisk`] a simulated one that tests crash at any point.

mod disk;
mod format;
mod recover;
mod sim;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use disk::{Disk, FsDisk, LOCK_FILE};
pub use sim::{SimDisk, SimFile};

use format::FileType;

/// Where and how the store keeps its files.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// The store's directory (created if missing).
    pub dir: PathBuf,
    /// true: [`Store::commit`] ends with `fdatasync` (durable acks).
    /// false: write only, the OS syncs later. Compaction and recovery
    /// repairs sync either way (a snapshot must be complete before it
    /// replaces the previous one).
    pub sync: bool,
    /// Log size in bytes past which [`Store::needs_compaction`] turns true.
    pub compact_at: u64,
}

impl StoreOptions {
    /// Options for `dir` with sync on and compaction at 64 MiB of log.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StoreOptions {
            dir: dir.into(),
            sync: true,
            compact_at: 64 << 20,
        }
    }
}

/// One recovered record, in the order it was appended (snapshot records
/// first, then the log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// Its sequence number.
    pub seq: u64,
    /// The caller's record kind.
    pub kind: u8,
    /// The caller's bytes.
    pub body: Vec<u8>,
}

/// What [`Store::open`] found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Every intact record, in order.
    pub records: Vec<Recovered>,
    /// Human-readable lines for the log: each damaged part set aside (file
    /// renamed, with reason), each torn tail truncated (bytes), each file
    /// missing. Empty after a clean shutdown or a crash that tore nothing.
    pub notes: Vec<String>,
}

/// Counters of the store since it was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Bytes in the current log file.
    pub log_bytes: u64,
    /// Bytes in the current snapshot file.
    pub snapshot_bytes: u64,
    /// Commits that wrote something.
    pub commits: u64,
    /// Duration of the last `fdatasync` of a commit.
    pub last_sync: Duration,
    /// Longest `fdatasync` of a commit.
    pub max_sync: Duration,
    /// Bytes written to files (logs and snapshots).
    pub bytes_written: u64,
    /// Failed syncs (each one poisoned the store).
    pub sync_errors: u64,
    /// How long each commit's `fdatasync` took (commits with sync on).
    pub sync_histogram: SyncHistogram,
}

/// The store's health and figures as the event loop last heard them from
/// the writer thread (in [`crate::Stats::store`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStatus {
    /// Why the store is not writing (a failed commit or snapshot; the
    /// acknowledgements that wait for it are held); `None` when healthy.
    pub failing: Option<String>,
    /// The failure is a full disk (ENOSPC, EDQUOT).
    pub disk_full: bool,
    /// The writer's counters at its last successful commit.
    pub stats: StoreStats,
}

/// Upper bounds of the [`SyncHistogram`] buckets, in microseconds (a last,
/// unbounded bucket follows): 100 µs to 2.5 s, as a flash card or a
/// loaded SD card may take.
pub const SYNC_BUCKETS_US: [u64; 14] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000,
];

/// A fixed-bucket histogram of `fdatasync` durations: constant memory,
/// one increment per commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncHistogram {
    /// Syncs per bucket, not cumulative: `counts[i]` took at most
    /// `SYNC_BUCKETS_US[i]` and more than the bound before; the last one
    /// took longer than every bound.
    pub counts: [u64; SYNC_BUCKETS_US.len() + 1],
    /// Total time of all the syncs counted.
    pub sum: Duration,
}

impl SyncHistogram {
    /// Counts one sync that took `took`.
    pub fn record(&mut self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let i = SYNC_BUCKETS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(SYNC_BUCKETS_US.len());
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum = self.sum.saturating_add(took);
    }

    /// Syncs counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Whether an I/O error says the disk (or the user's quota) is full.
fn is_full(e: &io::Error) -> bool {
    // ENOSPC is StorageFull; EDQUOT (122 on Linux) by number, its kind
    // being newer than this crate's minimum Rust.
    e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(122)
}

/// Errors of the store. Every message names the path involved.
#[derive(Debug)]
pub enum StoreError {
    /// An I/O error (the message names the file and the operation).
    Io(io::Error),
    /// Another process (or another store in this one) holds the lock of
    /// the directory; the path is the lock file.
    Locked(PathBuf),
    /// An earlier write or sync failed, so what is on disk is unknown;
    /// [`Store::compact`] writes the whole state afresh and clears this.
    /// The string says what failed.
    Poisoned(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io(e) => write!(f, "store: {e}"),
            StoreError::Locked(p) => write!(
                f,
                "store: {} is locked by another process (is another broker using this directory?)",
                p.display()
            ),
            StoreError::Poisoned(why) => {
                write!(
                    f,
                    "store: not writing after an earlier failure ({why}); needs compaction"
                )
            }
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Wraps an I/O error with the operation and the path.
fn io_err(op: &str, path: &Path, e: io::Error) -> StoreError {
    StoreError::Io(io::Error::new(
        e.kind(),
        format!("{op} {}: {e}", path.display()),
    ))
}

/// Name of the snapshot of generation `generation`.
fn snap_name(generation: u64) -> String {
    format!("snap.{generation:08}")
}

/// Name of the log of generation `generation`.
fn log_name(generation: u64) -> String {
    format!("log.{generation:08}")
}

/// Snapshots are written in pieces of about this size.
const SNAP_CHUNK: usize = 1 << 20;
/// Capacity of the commit buffer kept between commits.
const PENDING_KEEP: usize = 1 << 20;

/// The store. See the module documentation for the calling pattern.
pub struct Store<D: Disk = FsDisk> {
    disk: D,
    opts: StoreOptions,
    /// Generation of the current snapshot and log.
    generation: u64,
    /// Highest generation ever tried (a failed compaction never reuses its
    /// file names).
    tried_generation: u64,
    /// The open log; `None` while poisoned.
    log: Option<D::File>,
    /// Salt of the open log's frames.
    salt: u32,
    /// Frames appended since the last commit.
    pending: Vec<u8>,
    last_seq: u64,
    durable_seq: u64,
    poisoned: Option<String>,
    /// The error that poisoned the store said the disk is full.
    disk_full: bool,
    stats: StoreStats,
}

impl<D: Disk> fmt::Debug for Store<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.opts.dir)
            .field("generation", &self.generation)
            .field("last_seq", &self.last_seq)
            .field("durable_seq", &self.durable_seq)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Store<FsDisk> {
    /// Opens (or creates) the store in `opts.dir` on the real file system
    /// and recovers its records.
    ///
    /// # Errors
    ///
    /// [`StoreError::Locked`] if another process holds the directory,
    /// [`StoreError::Io`] if it cannot be created, listed, read or written.
    /// Damaged files are not an error: they are set aside and reported in
    /// [`Recovery::notes`].
    pub fn open(opts: StoreOptions) -> Result<(Store, Recovery), StoreError> {
        Store::open_on(FsDisk::new(), opts)
    }
}

impl<D: Disk> Store<D> {
    /// Opens (or creates) the store in `opts.dir` on `disk` and recovers its
    /// records: the newest snapshot, then its log. A torn log tail is
    /// truncated; a damaged snapshot or log is renamed aside, what is intact
    /// in it is kept, and a fresh snapshot of the recovered records is
    /// written.
    ///
    /// # Errors
    ///
    /// As [`Store::open`].
    pub fn open_on(mut disk: D, opts: StoreOptions) -> Result<(Self, Recovery), StoreError> {
        disk.create_dir_all(&opts.dir)
            .map_err(|e| io_err("create directory", &opts.dir, e))?;
        let lock_path = opts.dir.join(LOCK_FILE);
        if !disk
            .lock(&opts.dir)
            .map_err(|e| io_err("lock", &lock_path, e))?
        {
            return Err(StoreError::Locked(lock_path));
        }
        let mut store = Store {
            disk,
            opts,
            generation: 0,
            tried_generation: 0,
            log: None,
            salt: 0,
            pending: Vec::new(),
            last_seq: 0,
            durable_seq: 0,
            poisoned: None,
            disk_full: false,
            stats: StoreStats::default(),
        };
        // On error the store is dropped here, which releases the lock.
        let recovery = store.recover()?;
        Ok((store, recovery))
    }

    /// Buffers one record in memory; returns its sequence number (strictly
    /// increasing, continues after recovery). Nothing reaches the disk
    /// before [`Store::commit`].
    ///
    /// # Panics
    ///
    /// If `body` is 4 GiB or longer.
    pub fn append(&mut self, kind: u8, body: &[u8]) -> u64 {
        self.last_seq += 1;
        format::put_frame(&mut self.pending, self.salt, self.last_seq, kind, body);
        self.last_seq
    }

    /// Highest sequence number appended so far.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Highest sequence number known durable (or written, without sync).
    pub fn durable_seq(&self) -> u64 {
        self.durable_seq
    }

    /// Whether an error poisoned the store (see [`Store::commit`]).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// Whether the store is poisoned by a full disk (ENOSPC, EDQUOT).
    pub fn is_disk_full(&self) -> bool {
        self.poisoned.is_some() && self.disk_full
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.opts.dir
    }

    /// Writes everything appended since the last commit in ONE write call,
    /// then (if `opts.sync`) one `fdatasync`. Returns the sequence number
    /// now durable. With nothing appended it writes nothing.
    ///
    /// # Errors
    ///
    /// On a write or sync error the store is poisoned: the records of this
    /// commit may or may not be on disk, and after a failed `fdatasync`
    /// Linux may have dropped the data while a retry would report success.
    /// So the store never syncs that file again: every later commit fails
    /// with [`StoreError::Poisoned`] until [`Store::compact`] has written
    /// the caller's whole state to new files.
    pub fn commit(&mut self) -> Result<u64, StoreError> {
        if let Some(why) = &self.poisoned {
            self.pending.clear();
            return Err(StoreError::Poisoned(why.clone()));
        }
        if self.pending.is_empty() {
            return Ok(self.durable_seq);
        }
        let path = self.opts.dir.join(log_name(self.generation));
        let Some(log) = self.log.as_mut() else {
            return Err(self.poison("no open log".into(), false));
        };
        let len = self.pending.len() as u64;
        let wrote = self.disk.write(log, &self.pending);
        self.pending.clear();
        // One huge batch must not pin its buffer for the life of the broker.
        self.pending.shrink_to(PENDING_KEEP);
        if let Err(e) = wrote {
            let full = is_full(&e);
            return Err(self.poison(format!("write {}: {e}", path.display()), full));
        }
        self.stats.bytes_written += len;
        self.stats.log_bytes += len;
        if self.opts.sync {
            let start = Instant::now();
            let synced = self.disk.sync(log);
            let took = start.elapsed();
            if let Err(e) = synced {
                self.stats.sync_errors += 1;
                let full = is_full(&e);
                return Err(self.poison(format!("fdatasync {}: {e}", path.display()), full));
            }
            self.stats.sync_histogram.record(took);
            self.stats.last_sync = took;
            self.stats.max_sync = self.stats.max_sync.max(took);
        }
        self.stats.commits += 1;
        self.durable_seq = self.last_seq;
        Ok(self.durable_seq)
    }

    fn poison(&mut self, why: String, disk_full: bool) -> StoreError {
        // Never touch that log again (no retried fsync on it).
        self.log = None;
        self.pending.clear();
        self.poisoned = Some(why.clone());
        self.disk_full = disk_full;
        StoreError::Poisoned(why)
    }

    /// Whether the log has grown past `opts.compact_at`, or the store is
    /// poisoned and only compaction brings it back.
    pub fn needs_compaction(&self) -> bool {
        self.poisoned.is_some() || self.stats.log_bytes >= self.opts.compact_at
    }

    /// Writes a snapshot holding exactly `records` (the caller's whole
    /// durable state, as records, numbered afresh after [`Store::last_seq`])
    /// to a temp file, syncs it, renames it into place, syncs the
    /// directory, then starts an empty log and removes the previous
    /// generation. Records appended but not committed before the call are
    /// discarded (the snapshot supersedes them). Afterwards the durable
    /// sequence number is [`Store::last_seq`] and the store is no longer
    /// poisoned.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] if a step fails; the store is then poisoned and
    /// the previous generation stays what recovery finds. Calling
    /// `compact` again uses new file names.
    pub fn compact(
        &mut self,
        records: &mut dyn Iterator<Item = (u8, Vec<u8>)>,
    ) -> Result<u64, StoreError> {
        self.pending.clear();
        let base = self.last_seq;
        let mut seq = base;
        let mut numbered = records.map(|(kind, body)| {
            seq += 1;
            (seq, kind, body)
        });
        let result = self.write_generation(base, &mut numbered);
        drop(numbered);
        if result.is_ok() {
            self.remove_older(self.generation);
        }
        // Numbers handed out stay used even if the snapshot failed.
        self.last_seq = seq;
        match result {
            Ok(()) => {
                self.poisoned = None;
                self.disk_full = false;
                self.durable_seq = self.last_seq;
                Ok(self.durable_seq)
            }
            Err(e) => {
                self.log = None;
                if self.poisoned.is_none() {
                    self.poisoned = Some(format!("compaction failed: {e}"));
                }
                self.disk_full = matches!(&e, StoreError::Io(io) if is_full(io));
                Err(e)
            }
        }
    }

    /// Writes generation `tried_generation + 1`: snapshot of `records`
    /// (already numbered, after `base`; the footer's last seq is at least
    /// `last_seq`), empty log; makes it current. The caller removes the
    /// older generations.
    fn write_generation(
        &mut self,
        base: u64,
        records: &mut dyn Iterator<Item = (u64, u8, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let generation = self.tried_generation.max(self.generation) + 1;
        self.tried_generation = generation;
        let dir = self.opts.dir.clone();
        let snap_path = dir.join(snap_name(generation));
        let tmp_path = dir.join(format!("{}.tmp", snap_name(generation)));
        let log_path = dir.join(log_name(generation));

        // 1. The snapshot, into a temp file, synced.
        let mut tmp = self
            .disk
            .create(&tmp_path)
            .map_err(|e| io_err("create", &tmp_path, e))?;
        let mut buf = Vec::with_capacity(SNAP_CHUNK + 4096);
        let snap_salt = format::new_salt();
        let header = format::Header {
            salt: snap_salt,
            generation,
            base_seq: base,
        };
        format::put_header(&mut buf, FileType::Snapshot, header);
        let mut count = 0u64;
        let mut last = base.max(self.last_seq);
        let mut snap_bytes = 0u64;
        for (seq, kind, body) in records {
            format::put_frame(&mut buf, snap_salt, seq, kind, &body);
            count += 1;
            last = last.max(seq);
            if buf.len() >= SNAP_CHUNK {
                self.write_to(&mut tmp, &buf, &tmp_path)?;
                snap_bytes += buf.len() as u64;
                buf.clear();
            }
        }
        format::put_footer(&mut buf, snap_salt, count, last);
        self.write_to(&mut tmp, &buf, &tmp_path)?;
        snap_bytes += buf.len() as u64;
        self.disk
            .sync(&mut tmp)
            .map_err(|e| io_err("fdatasync", &tmp_path, e))?;
        drop(tmp);

        // 2. Into place.
        self.disk
            .rename(&tmp_path, &snap_path)
            .map_err(|e| io_err("rename", &tmp_path, e))?;

        // 3. A new empty log, synced, then the directory.
        let mut log = self
            .disk
            .create(&log_path)
            .map_err(|e| io_err("create", &log_path, e))?;
        buf.clear();
        let log_salt = format::new_salt();
        let header = format::Header {
            salt: log_salt,
            generation,
            base_seq: last,
        };
        format::put_header(&mut buf, FileType::Log, header);
        self.write_to(&mut log, &buf, &log_path)?;
        self.disk
            .sync(&mut log)
            .map_err(|e| io_err("fdatasync", &log_path, e))?;
        self.disk
            .sync_dir(&dir)
            .map_err(|e| io_err("fsync directory", &dir, e))?;

        // The new generation is what recovery finds from here on.
        self.generation = generation;
        self.log = Some(log);
        self.salt = log_salt;
        self.stats.log_bytes = buf.len() as u64;
        self.stats.snapshot_bytes = snap_bytes;
        self.durable_seq = self.durable_seq.max(last);
        self.last_seq = self.last_seq.max(last);
        Ok(())
    }

    fn write_to(&mut self, file: &mut D::File, buf: &[u8], path: &Path) -> Result<(), StoreError> {
        self.disk
            .write(file, buf)
            .map_err(|e| io_err("write", path, e))?;
        self.stats.bytes_written += buf.len() as u64;
        Ok(())
    }

    /// Removes snapshots, logs and temp files of generations before
    /// `generation`; best effort (the next recovery removes what is left).
    fn remove_older(&mut self, generation: u64) {
        let Ok(names) = self.disk.list(&self.opts.dir) else {
            return;
        };
        for name in names {
            let old = match recover::parse_name(&name) {
                Some(recover::Name::Snap(g) | recover::Name::Log(g) | recover::Name::Tmp(g)) => {
                    g < generation
                }
                _ => false,
            };
            if old {
                let _ = self.disk.remove(&self.opts.dir.join(&name));
            }
        }
    }

    /// Counters since the store was opened.
    pub fn stats(&self) -> StoreStats {
        self.stats.clone()
    }
}

impl<D: Disk> Drop for Store<D> {
    fn drop(&mut self) {
        self.disk.unlock(&self.opts.dir);
    }
}
