//! Making a directory's entries durable on Unix.

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
