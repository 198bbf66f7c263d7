//! The open file limit (`RLIMIT_NOFILE`) that `max_connections` needs.
//!
//! Every connection is one file descriptor. With the usual soft limit of
//! 1024 a broker configured for more connections would refuse them with
//! "accept failed: Too many open files" long after start-up; instead boxmq
//! raises the soft limit at start-up (up to the hard limit, which needs no
//! privilege) or refuses to start with a message that says what to change.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

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

/// What to do given the soft and hard limits (`None` is unlimited): nothing
/// (`Ok(None)`), raise the soft limit to the value (`Ok(Some(v))`), or fail.
fn plan(soft: Option<u64>, hard: Option<u64>, needed: u64) -> Result<Option<u64>, String> {
    if soft.is_none_or(|s| s >= needed) {
        return Ok(None);
    }
    match hard {
        Some(hard) if hard < needed => Err(format!(
            "max_connections needs {needed} open files but the hard limit (RLIMIT_NOFILE) is \
             {hard}: raise it (systemd: LimitNOFILE={needed} in the unit; shell: ulimit -n \
             {needed} as root) or lower max_connections"
        )),
        _ => Ok(Some(needed)),
    }
}

/// Makes sure the soft `RLIMIT_NOFILE` is at least `needed`, raising it
/// (never above the hard limit) when it is lower. Returns the soft limit in
/// force afterwards (`u64::MAX` for unlimited).
///
/// # Errors
/// When the hard limit is below `needed`, or the limit cannot be changed;
/// the message says what to change.
pub fn ensure_nofile(needed: u64) -> Result<u64, String> {
    let current = getrlimit(Resource::Nofile);
    match plan(current.current, current.maximum, needed)? {
        None => Ok(current.current.unwrap_or(u64::MAX)),
        Some(soft) => {
            let new = Rlimit {
                current: Some(soft),
                maximum: current.maximum,
            };
            setrlimit(Resource::Nofile, new).map_err(|e| {
                format!("cannot raise the open file limit (RLIMIT_NOFILE) to {soft}: {e}")
            })?;
            Ok(soft)
        }
    }
}

/// For Mosquitto's `max_connections -1`: raises the soft limit as far as
/// the hard limit allows, up to `cap` descriptors, and returns how many
/// connections that leaves room for on `listeners` listeners.
///
/// # Errors
/// When the limit cannot be changed.
pub fn connections_allowed(cap: u64, listeners: usize) -> Result<usize, String> {
    let current = getrlimit(Resource::Nofile);
    let target = current.maximum.unwrap_or(u64::MAX).min(cap);
    let soft = match current.current {
        Some(soft) if soft < target => {
            let new = Rlimit {
                current: Some(target),
                maximum: current.maximum,
            };
            setrlimit(Resource::Nofile, new).map_err(|e| {
                format!("cannot raise the open file limit (RLIMIT_NOFILE) to {target}: {e}")
            })?;
            target
        }
        Some(soft) => soft.min(target),
        None => target,
    };
    let reserved = nofile_needed(0, listeners);
    Ok(usize::try_from(soft.saturating_sub(reserved)).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needed_counts_connections_listeners_and_spare() {
        assert_eq!(nofile_needed(1024, 1), 1024 + 1 + EXTRA_FDS);
        assert_eq!(nofile_needed(usize::MAX, 2), u64::MAX);
    }

    #[test]
    fn plan_keeps_a_sufficient_limit() {
        assert_eq!(plan(Some(1024), Some(4096), 1000), Ok(None));
        assert_eq!(plan(Some(1024), Some(4096), 1024), Ok(None));
        assert_eq!(plan(None, None, u64::MAX), Ok(None));
    }

    #[test]
    fn plan_raises_the_soft_limit_up_to_the_hard_one() {
        assert_eq!(plan(Some(1024), Some(4096), 2000), Ok(Some(2000)));
        assert_eq!(plan(Some(1024), Some(4096), 4096), Ok(Some(4096)));
        assert_eq!(plan(Some(1024), None, 100_000), Ok(Some(100_000)));
    }

    #[test]
    fn plan_refuses_above_the_hard_limit_and_says_what_to_do() {
        let e = plan(Some(1024), Some(4096), 5000).unwrap_err();
        assert!(e.contains("5000") && e.contains("4096"), "{e}");
        assert!(e.contains("LimitNOFILE=5000"), "{e}");
        assert!(e.contains("max_connections"), "{e}");
    }

    #[test]
    fn ensure_nofile_on_this_process() {
        let before = getrlimit(Resource::Nofile);
        let soft = before.current.unwrap_or(u64::MAX);
        // Already enough: nothing changes.
        assert_eq!(ensure_nofile(soft.min(16)), Ok(soft));
        // Up to the hard limit: raised (harmless for the test process).
        if let Some(hard) = before.maximum {
            assert_eq!(ensure_nofile(hard), Ok(hard.max(soft)));
            assert!(
                getrlimit(Resource::Nofile)
                    .current
                    .is_none_or(|s| s >= hard)
            );
            if hard < u64::MAX {
                assert!(ensure_nofile(hard + 1).is_err());
            }
        }
    }
}
