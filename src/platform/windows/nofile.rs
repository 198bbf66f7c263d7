//! File handles for `max_connections` on Windows.
//!
//! Windows has no per-process descriptor limit to raise: a socket is a
//! kernel handle, and a process may hold about 16 million of them
//! (`2^24`, the documented handle table limit). mio's poller holds one
//! small state per registered socket and no fixed table. So the only check
//! is that the configured figure is below that ceiling.

/// Handles a Windows process can hold.
const MAX_HANDLES: u64 = 1 << 24;

/// Checks that `needed` handles fit in a process; returns the ceiling.
///
/// # Errors
/// When `needed` is above it (a `max_connections` no Windows box can serve).
pub fn ensure(needed: u64) -> Result<u64, String> {
    if needed > MAX_HANDLES {
        return Err(format!(
            "max_connections needs {needed} handles but a Windows process can hold at most \
             {MAX_HANDLES}: lower max_connections"
        ));
    }
    Ok(MAX_HANDLES)
}

/// For `max_connections -1`: the handles a process can hold, up to `cap`
/// (nothing to raise on Windows).
///
/// # Errors
/// Never on Windows; the signature is the Unix one.
pub fn raise_up_to(cap: u64) -> Result<u64, String> {
    Ok(cap.min(MAX_HANDLES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handle_ceiling_is_checked() {
        assert_eq!(ensure(1024), Ok(MAX_HANDLES));
        assert!(ensure(MAX_HANDLES + 1).is_err());
    }
}
