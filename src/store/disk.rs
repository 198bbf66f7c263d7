//! The file-system operations the store needs, and the real file system.
//!
//! The store only ever appends to files, truncates a torn log tail, renames
//! a finished snapshot into place, removes old files and syncs. [`Disk`]
//! names exactly those operations so that [`super::SimDisk`] can model what
//! survives a power cut between any two of them.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// File-system operations of the store. Paths are always a file directly
/// inside the store directory, or the directory itself.
///
/// Durability model (what the store assumes and [`super::SimDisk`]
/// simulates): data written to a file is durable after [`Disk::sync`] of
/// that file returns `Ok`; a file's creation, a rename and a removal are
/// durable after [`Disk::sync_dir`] returns `Ok`. After a failed `sync` the
/// data written since the previous good sync may be lost even if a later
/// `sync` succeeds, so the store never syncs that file again.
pub trait Disk {
    /// An open file, written at its end.
    type File;

    /// Creates the directory and its parents if missing.
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()>;
    /// Takes the exclusive lock of `dir`; `Ok(false)` when someone else
    /// holds it.
    fn lock(&mut self, dir: &Path) -> io::Result<bool>;
    /// Releases the lock taken by [`Disk::lock`].
    fn unlock(&mut self, dir: &Path);
    /// Names of the entries of `dir`.
    fn list(&mut self, dir: &Path) -> io::Result<Vec<String>>;
    /// The whole content of a file.
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>>;
    /// Creates an empty file (truncating one of that name) for writing.
    fn create(&mut self, path: &Path) -> io::Result<Self::File>;
    /// Opens an existing file for writing after its first `len` bytes;
    /// anything after them is cut off.
    fn open_at(&mut self, path: &Path, len: u64) -> io::Result<Self::File>;
    /// Writes all of `buf` at the end of the file.
    fn write(&mut self, file: &mut Self::File, buf: &[u8]) -> io::Result<()>;
    /// Makes the file's data durable (`fdatasync`).
    fn sync(&mut self, file: &mut Self::File) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to`.
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&mut self, path: &Path) -> io::Result<()>;
    /// Makes creations, renames and removals in `dir` durable (`fsync` of
    /// the directory).
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()>;
}

/// Name of the lock file inside the store directory.
pub const LOCK_FILE: &str = "lock";

/// How often, and how far apart, a held lock is tried before the store is
/// said to be in use (about one second in all; see `Disk::lock`).
const LOCK_TRIES: u32 = 50;
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(20);

/// The real file system: `fdatasync` for files, `fsync` of the directory,
/// and an exclusive lock (`flock`, `LockFileEx`) on `DIR/lock` held while the store is open.
#[derive(Debug, Default)]
pub struct FsDisk {
    locks: Vec<(PathBuf, File)>,
}

impl FsDisk {
    /// A handle holding no lock yet.
    pub fn new() -> Self {
        FsDisk::default()
    }
}

impl Disk for FsDisk {
    type File = File;

    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        // The directories this call creates, outermost first.
        let mut missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
        missing.reverse();
        std::fs::create_dir_all(dir)?;
        // A new directory's entry is durable only once its parent is
        // synced; without this a power cut could take the whole store.
        for created in missing {
            if let Some(parent) = created.parent().filter(|p| !p.as_os_str().is_empty()) {
                crate::platform::fs::sync_dir(parent)?;
            }
        }
        Ok(())
    }

    fn lock(&mut self, dir: &Path) -> io::Result<bool> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))?;
        // A lock just released can look held for a moment: a process
        // started by this one (or a thread of the host application) between
        // fork and exec shares the open file, and with it the lock, until
        // its exec closes it. So a held lock is tried again for a while
        // before another process is said to own the store.
        let mut tries = 0;
        while !crate::platform::fs::try_lock(&file)? {
            tries += 1;
            if tries >= LOCK_TRIES {
                return Ok(false);
            }
            std::thread::sleep(LOCK_RETRY);
        }
        // The pid is for people only; the lock is the file lock.
        let mut f = &file;
        f.set_len(0)?;
        writeln!(f, "{}", std::process::id())?;
        self.locks.push((dir.to_path_buf(), file));
        Ok(true)
    }

    fn unlock(&mut self, dir: &Path) {
        // Closing the file releases the lock.
        self.locks.retain(|(d, _)| d != dir);
    }

    fn list(&mut self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            // A name that is not UTF-8 is not ours.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn create(&mut self, path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }

    fn open_at(&mut self, path: &Path, len: u64) -> io::Result<File> {
        let mut file = OpenOptions::new().write(true).open(path)?;
        if file.metadata()?.len() != len {
            file.set_len(len)?;
            // A full fsync: the new size is metadata, and this happens
            // only when recovery cuts a torn tail.
            file.sync_all()?;
        }
        file.seek(SeekFrom::Start(len))?;
        Ok(file)
    }

    fn write(&mut self, file: &mut File, buf: &[u8]) -> io::Result<()> {
        file.write_all(buf)
    }

    fn sync(&mut self, file: &mut File) -> io::Result<()> {
        file.sync_data()
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&mut self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        crate::platform::fs::sync_dir(dir)
    }
}
