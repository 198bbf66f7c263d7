//! The open file limit (`RLIMIT_NOFILE`) that `max_connections` needs (Unix).
//!
//! Every connection is one file descriptor. With the usual soft limit of
//! 1024 a broker configured for more connections would refuse them with
//! "accept failed: Too many open files" long after start-up; instead boxmq
//! raises the soft limit at start-up (up to the hard limit, which needs no
//! privilege) or refuses to start with a message that says what to change.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

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
pub fn ensure(needed: u64) -> Result<u64, String> {
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

/// Raises the soft limit as far as the hard limit allows, up to `cap`;
/// returns the soft limit in force afterwards (at most `cap`).
///
/// # Errors
/// When the limit cannot be changed.
pub fn raise_up_to(cap: u64) -> Result<u64, String> {
    let current = getrlimit(Resource::Nofile);
    let target = current.maximum.unwrap_or(u64::MAX).min(cap);
    match current.current {
        Some(soft) if soft < target => {
            let new = Rlimit {
                current: Some(target),
                maximum: current.maximum,
            };
            setrlimit(Resource::Nofile, new).map_err(|e| {
                format!("cannot raise the open file limit (RLIMIT_NOFILE) to {target}: {e}")
            })?;
            Ok(target)
        }
        Some(soft) => Ok(soft.min(target)),
        None => Ok(target),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(ensure(soft.min(16)), Ok(soft));
        // Up to the hard limit: raised (harmless for the test process).
        if let Some(hard) = before.maximum {
            assert_eq!(ensure(hard), Ok(hard.max(soft)));
            assert!(
                getrlimit(Resource::Nofile)
                    .current
                    .is_none_or(|s| s >= hard)
            );
            if hard < u64::MAX {
                assert!(ensure(hard + 1).is_err());
            }
        }
    }
}
