//! The data directory's lock, and making a directory's entries durable,
//! on Unix.

use std::fs::File;
use std::io;
use std::path::Path;

/// Syncs directory `dir`, so the entries created, renamed or removed in it
/// survive a power cut (`fsync` on the directory).
///
/// # Errors
/// When the directory cannot be opened or synced.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Takes an exclusive `flock` on `file` without waiting: `Ok(false)` when
/// another process holds it. Released when the file is closed, also when
/// the process is killed.
///
/// # Errors
/// When locking fails for another reason.
pub fn try_lock(file: &File) -> io::Result<bool> {
    match rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}
