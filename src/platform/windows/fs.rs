//! The data directory's lock, and making a directory's entries durable,
//! on Windows.
//!
//! The lock is `std::fs::File::try_lock` (`LockFileEx`; Rust 1.89, which
//! the Windows build needs).
//!
//! A directory opens only with `FILE_FLAG_BACKUP_SEMANTICS`; NTFS then
//! flushes its metadata with `FlushFileBuffers` (what `sync_all` calls).
//! File systems that cannot flush a directory (FAT on a USB stick, some
//! network shares) refuse with "access denied" or "invalid function":
//! there the file's own flush (`sync_data`, done before) is all there is,
//! as with Mosquitto on the same box, so that is not an error.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::windows::fs::OpenOptionsExt;
use std::path::Path;

/// `FILE_FLAG_BACKUP_SEMANTICS` (winbase.h): needed to open a directory.
const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
/// `ERROR_INVALID_FUNCTION`: the file system does not flush directories.
const ERROR_INVALID_FUNCTION: i32 = 1;

/// Flushes directory `dir`'s metadata, so the entries created, renamed or
/// removed in it survive a power cut where the file system allows it.
///
/// # Errors
/// When the directory cannot be opened at all.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let handle = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
        .open(dir)?;
    match handle.sync_all() {
        Ok(()) => Ok(()),
        Err(e)
            if e.kind() == io::ErrorKind::PermissionDenied
                || e.raw_os_error() == Some(ERROR_INVALID_FUNCTION) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Takes an exclusive lock on `file` without waiting: `Ok(false)` when
/// another process holds it. Released when the file is closed, also when
/// the process is killed.
///
/// # Errors
/// When locking fails for another reason.
// The crate's rust-version (1.85) is for Linux; this file is built for
// Windows only, with 1.89 or later.
#[allow(clippy::incompatible_msrv)]
pub fn try_lock(file: &File) -> io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(e),
    }
}
