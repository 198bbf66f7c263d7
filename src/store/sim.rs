//! A simulated disk that can lose power.
//!
//! Each file keeps its durable content apart from the operations (writes,
//! truncations) done since its last good sync; each directory keeps its
//! durable entries apart from the creations, renames and removals since its
//! last sync. A crash keeps the durable state plus a seeded choice of the
//! pending operations: none, all, the first few with the next one torn
//! after a seeded number of bytes, or a seeded subset of whole writes (the
//! holes read as zeros, as a file system that wrote later blocks first
//! leaves them). Directory operations survive in order: a seeded prefix of
//! them.
//!
//! Faults: [`SimDisk::fail_after`] cuts the power after a number of
//! mutating operations (every later one fails, so the store sees an error
//! at that point, as it would if the machine died there), and
//! [`SimDisk::fail_sync`] makes one future `sync` fail with `EIO`, after
//! which the data it should have synced is lost for good (later syncs of
//! that file succeed without saving it, as on Linux).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::disk::Disk;

/// A cloneable handle to one simulated disk (all clones see the same
/// files). Keep one in the test, give another to the store, crash it, then
/// open a new store on it.
#[derive(Clone, Debug, Default)]
pub struct SimDisk {
    inner: Rc<RefCell<Sim>>,
}

/// An open file of a [`SimDisk`].
#[derive(Debug)]
pub struct SimFile {
    ino: usize,
}

#[derive(Debug, Default)]
struct Sim {
    inodes: Vec<Inode>,
    dirs: BTreeMap<PathBuf, Dir>,
    locks: BTreeSet<PathBuf>,
    /// Mutating operations so far.
    ops: u64,
    /// Power is cut when `ops` reaches this.
    fail_at: Option<u64>,
    /// File syncs so far, and the one that fails.
    syncs: u64,
    fail_sync_at: Option<u64>,
    /// Writes fail with ENOSPC.
    full: bool,
    bytes_written: u64,
}

#[derive(Debug, Default)]
struct Inode {
    durable: Vec<u8>,
    current: Vec<u8>,
    pending: Vec<FileOp>,
}

#[derive(Clone, Debug)]
enum FileOp {
    Write { at: usize, data: Vec<u8> },
    Truncate(usize),
}

#[derive(Debug, Default)]
struct Dir {
    current: BTreeMap<String, usize>,
    durable: BTreeMap<String, usize>,
    pending: Vec<DirOp>,
}

#[derive(Clone, Debug)]
enum DirOp {
    Link(String, usize),
    Unlink(String),
    Rename(String, String),
}

fn apply_file_op(data: &mut Vec<u8>, op: &FileOp) {
    match op {
        FileOp::Write { at, data: bytes } => {
            let end = at + bytes.len();
            if data.len() < end {
                data.resize(end, 0);
            }
            data[*at..end].copy_from_slice(bytes);
        }
        FileOp::Truncate(len) => data.resize(*len, 0),
    }
}

fn apply_dir_op(entries: &mut BTreeMap<String, usize>, op: &DirOp) {
    match op {
        DirOp::Link(name, ino) => {
            entries.insert(name.clone(), *ino);
        }
        DirOp::Unlink(name) => {
            entries.remove(name);
        }
        DirOp::Rename(from, to) => {
            if let Some(ino) = entries.remove(from) {
                entries.insert(to.clone(), ino);
            }
        }
    }
}

/// splitmix64: small, seeded, good enough to pick crash outcomes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..=n`.
    fn upto(&mut self, n: usize) -> usize {
        (self.next() % (n as u64 + 1)) as usize
    }
}

/// How a crash treats pending file data.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Each file: any of the outcomes below, seeded.
    Mixed,
    /// Each file: a seeded prefix of its pending writes, the next one torn.
    Torn,
    /// Nothing that was not synced survives.
    LoseAll,
}

fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "simulated disk: bad path"))?;
    let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    Ok((dir, name.to_string()))
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("simulated disk: {} not found", path.display()),
    )
}

impl Sim {
    /// Counts one mutating operation; fails once the power is cut.
    fn step(&mut self) -> io::Result<()> {
        if let Some(at) = self.fail_at
            && self.ops >= at
        {
            return Err(io::Error::other("simulated power cut"));
        }
        self.ops += 1;
        Ok(())
    }

    fn lookup(&self, path: &Path) -> io::Result<usize> {
        let (dir, name) = split(path)?;
        self.dirs
            .get(&dir)
            .and_then(|d| d.current.get(&name))
            .copied()
            .ok_or_else(|| not_found(path))
    }

    fn dir_mut(&mut self, dir: &Path) -> io::Result<&mut Dir> {
        self.dirs.get_mut(dir).ok_or_else(|| not_found(dir))
    }

    fn dir_op(&mut self, dir: &Path, op: DirOp) -> io::Result<()> {
        let d = self.dir_mut(dir)?;
        apply_dir_op(&mut d.current, &op);
        d.pending.push(op);
        Ok(())
    }

    fn file_op(&mut self, ino: usize, op: FileOp) -> io::Result<()> {
        let inode = self
            .inodes
            .get_mut(ino)
            .ok_or_else(|| io::Error::other("simulated disk: stale file"))?;
        apply_file_op(&mut inode.current, &op);
        inode.pending.push(op);
        Ok(())
    }

    fn crash(&mut self, seed: u64, mode: Mode) {
        let mut rng = Rng(seed);
        for inode in &mut self.inodes {
            let pending = std::mem::take(&mut inode.pending);
            let mut data = std::mem::take(&mut inode.durable);
            let mode = match mode {
                Mode::Mixed => rng.upto(3),
                Mode::Torn => 1,
                Mode::LoseAll => 0,
            };
            match mode {
                // Lose everything pending.
                0 => {}
                // A prefix, the next write torn.
                1 => {
                    let keep = rng.upto(pending.len());
                    for op in &pending[..keep] {
                        apply_file_op(&mut data, op);
                    }
                    if let Some(FileOp::Write { at, data: bytes }) = pending.get(keep) {
                        let cut = rng.upto(bytes.len());
                        let torn = FileOp::Write {
                            at: *at,
                            data: bytes[..cut].to_vec(),
                        };
                        apply_file_op(&mut data, &torn);
                    }
                }
                // A subset of whole operations.
                2 => {
                    for op in &pending {
                        if rng.next() & 1 == 1 {
                            apply_file_op(&mut data, op);
                        }
                    }
                }
                // Everything reached the platter after all.
                _ => {
                    for op in &pending {
                        apply_file_op(&mut data, op);
                    }
                }
            }
            inode.current = data.clone();
            inode.durable = data;
        }
        for dir in self.dirs.values_mut() {
            let pending = std::mem::take(&mut dir.pending);
            let keep = if mode == Mode::LoseAll {
                0
            } else {
                rng.upto(pending.len())
            };
            for op in &pending[..keep] {
                apply_dir_op(&mut dir.durable, op);
            }
            dir.current = dir.durable.clone();
        }
        self.locks.clear();
        self.fail_at = None;
        self.fail_sync_at = None;
    }
}

impl SimDisk {
    /// An empty disk.
    pub fn new() -> Self {
        SimDisk::default()
    }

    /// Power cut: keeps what was synced plus a seeded choice of what was
    /// not (per file: nothing, all, a prefix with a torn write, or a subset
    /// of whole writes; per directory: a prefix of its pending changes).
    /// Releases all locks and clears injected faults.
    pub fn crash(&self, seed: u64) {
        self.inner.borrow_mut().crash(seed, Mode::Mixed);
    }

    /// Power cut that keeps, in each file, a seeded prefix of the pending
    /// writes with the next one torn after a seeded number of bytes.
    pub fn crash_torn(&self, seed: u64) {
        self.inner.borrow_mut().crash(seed, Mode::Torn);
    }

    /// Power cut that keeps exactly what was synced.
    pub fn crash_lose_unsynced(&self) {
        self.inner.borrow_mut().crash(0, Mode::LoseAll);
    }

    /// Cuts the power after `n` more mutating operations (write, sync,
    /// create, rename, remove, truncate, directory sync): those fail with
    /// an error and change nothing. `None` restores power.
    pub fn fail_after(&self, n: Option<u64>) {
        let mut s = self.inner.borrow_mut();
        s.fail_at = n.map(|n| s.ops + n);
    }

    /// Makes the `n`-th file sync from now (1 = the next one) fail with
    /// `EIO`; the data it should have made durable is lost.
    pub fn fail_sync(&self, n: u64) {
        let mut s = self.inner.borrow_mut();
        s.fail_sync_at = Some(s.syncs + n);
    }

    /// Makes every write fail with ENOSPC (`true`) until called with
    /// `false`; nothing is written meanwhile.
    pub fn set_full(&self, full: bool) {
        self.inner.borrow_mut().full = full;
    }

    /// Mutating operations done so far (to enumerate crash points).
    pub fn ops(&self) -> u64 {
        self.inner.borrow().ops
    }

    /// Bytes written to files so far.
    pub fn bytes_written(&self) -> u64 {
        self.inner.borrow().bytes_written
    }

    /// Names of the files in `dir` as the store sees them now.
    pub fn list_files(&self, dir: &Path) -> Vec<String> {
        let s = self.inner.borrow();
        s.dirs
            .get(dir)
            .map(|d| d.current.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Content of a file as reads see it now, if it exists.
    pub fn file(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.inner.borrow();
        let ino = s.lookup(path).ok()?;
        s.inodes.get(ino).map(|i| i.current.clone())
    }

    /// Replaces a file's content, durably (to plant damage in a test).
    pub fn put_file(&self, path: &Path, data: &[u8]) {
        let mut s = self.inner.borrow_mut();
        let Ok((dir, name)) = split(path) else { return };
        let ino = match s.lookup(path) {
            Ok(ino) => ino,
            Err(_) => {
                s.inodes.push(Inode::default());
                let ino = s.inodes.len() - 1;
                let d = s.dirs.entry(dir).or_default();
                d.current.insert(name.clone(), ino);
                d.durable.insert(name, ino);
                ino
            }
        };
        if let Some(inode) = s.inodes.get_mut(ino) {
            inode.current = data.to_vec();
            inode.durable = data.to_vec();
            inode.pending.clear();
        }
    }
}

impl Disk for SimDisk {
    type File = SimFile;

    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        // Directories themselves are always durable in this model.
        self.inner
            .borrow_mut()
            .dirs
            .entry(dir.to_path_buf())
            .or_default();
        Ok(())
    }

    fn lock(&mut self, dir: &Path) -> io::Result<bool> {
        Ok(self.inner.borrow_mut().locks.insert(dir.to_path_buf()))
    }

    fn unlock(&mut self, dir: &Path) {
        self.inner.borrow_mut().locks.remove(dir);
    }

    fn list(&mut self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.inner.borrow();
        let d = s.dirs.get(dir).ok_or_else(|| not_found(dir))?;
        Ok(d.current.keys().cloned().collect())
    }

    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        let s = self.inner.borrow();
        let ino = s.lookup(path)?;
        Ok(s.inodes
            .get(ino)
            .map(|i| i.current.clone())
            .unwrap_or_default())
    }

    fn create(&mut self, path: &Path) -> io::Result<SimFile> {
        let mut s = self.inner.borrow_mut();
        s.step()?;
        let (dir, name) = split(path)?;
        if let Ok(ino) = s.lookup(path) {
            s.file_op(ino, FileOp::Truncate(0))?;
            return Ok(SimFile { ino });
        }
        s.inodes.push(Inode::default());
        let ino = s.inodes.len() - 1;
        s.dir_op(&dir, DirOp::Link(name, ino))?;
        Ok(SimFile { ino })
    }

    fn open_at(&mut self, path: &Path, len: u64) -> io::Result<SimFile> {
        let mut s = self.inner.borrow_mut();
        let ino = s.lookup(path)?;
        let cur = s.inodes.get(ino).map_or(0, |i| i.current.len());
        let len = usize::try_from(len).map_err(io::Error::other)?;
        if cur != len {
            s.step()?;
            s.file_op(ino, FileOp::Truncate(len))?;
        }
        Ok(SimFile { ino })
    }

    fn write(&mut self, file: &mut SimFile, buf: &[u8]) -> io::Result<()> {
        let mut s = self.inner.borrow_mut();
        if s.full {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "simulated ENOSPC (no space left on device)",
            ));
        }
        s.step()?;
        let at = s.inodes.get(file.ino).map_or(0, |i| i.current.len());
        s.file_op(
            file.ino,
            FileOp::Write {
                at,
                data: buf.to_vec(),
            },
        )?;
        s.bytes_written += buf.len() as u64;
        Ok(())
    }

    fn sync(&mut self, file: &mut SimFile) -> io::Result<()> {
        let mut s = self.inner.borrow_mut();
        s.step()?;
        s.syncs += 1;
        let fail = s.fail_sync_at == Some(s.syncs);
        let inode = s
            .inodes
            .get_mut(file.ino)
            .ok_or_else(|| io::Error::other("simulated disk: stale file"))?;
        let pending = std::mem::take(&mut inode.pending);
        if fail {
            // The pages are marked clean and never written: lost for good,
            // though reads still see them until the crash.
            return Err(io::Error::other("simulated EIO on fdatasync"));
        }
        for op in &pending {
            apply_file_op(&mut inode.durable, op);
        }
        Ok(())
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.inner.borrow_mut();
        s.step()?;
        s.lookup(from)?;
        let (dir, from_name) = split(from)?;
        let (_, to_name) = split(to)?;
        s.dir_op(&dir, DirOp::Rename(from_name, to_name))
    }

    fn remove(&mut self, path: &Path) -> io::Result<()> {
        let mut s = self.inner.borrow_mut();
        s.step()?;
        s.lookup(path)?;
        let (dir, name) = split(path)?;
        s.dir_op(&dir, DirOp::Unlink(name))
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        let mut s = self.inner.borrow_mut();
        s.step()?;
        let d = s.dir_mut(dir)?;
        d.durable = d.current.clone();
        d.pending.clear();
        Ok(())
    }
}
