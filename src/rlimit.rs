//! File handles for `max_connections`: how many are needed, and making
//! sure the process may hold them (`RLIMIT_NOFILE` on Unix; see
//! `platform::nofile`).

/// File descriptors boxmq uses besides connections and listeners: the poll
/// instance, the signal pipe, the waker, stdio, and room to spare.
pub const EXTRA_FDS: u64 = 32;

/// Descriptors needed for `max_connections` connections on `listeners`
/// listeners.
pub fn nofile_needed(max_connections: usize, listeners: usize) -> u64 {
    let conns = u64::try_from(max_connections).unwrap_or(u64::MAX);
    let listeners = u64::try_from(listeners).unwrap_or(u64::MAX);
    conns.saturating_add(listeners).saturating_add(EXTRA_FDS)
}

/// Makes sure the process may hold `needed` file handles, raising its
/// limit when it can. Returns the limit in force afterwards (`u64::MAX`
/// for unlimited).
///
/// # Errors
/// When the limit is too low and cannot be raised; the message says what
/// to change.
pub fn ensure_nofile(needed: u64) -> Result<u64, String> {
    crate::platform::nofile::ensure(needed)
}

/// For Mosquitto's `max_connections -1`: raises the soft limit as far as
/// the hard limit allows, up to `cap` descriptors, and returns how many
/// connections that leaves room for on `listeners` listeners.
///
/// # Errors
/// When the limit cannot be changed.
pub fn connections_allowed(cap: u64, listeners: usize) -> Result<usize, String> {
    let soft = crate::platform::nofile::raise_up_to(cap)?;
    let reserved = nofile_needed(0, listeners);
    Ok(usize::try_from(soft.saturating_sub(reserved)).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needed_counts_connections_listeners_and_spare() {
        assert_eq!(nofile_needed(1024, 1), 1024 + 1 + EXTRA_FDS);
        // Saturates on 64-bit targets; exact on 32-bit ones.
        let most = u64::try_from(usize::MAX).unwrap_or(u64::MAX);
        assert_eq!(
            nofile_needed(usize::MAX, 2),
            most.saturating_add(2 + EXTRA_FDS)
        );
    }
}
