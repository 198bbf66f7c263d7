//! Mosquitto's `user NAME`: a broker started as root becomes NAME (its
//! user id, primary group and supplementary groups) once its listeners
//! are bound and its store is open, so that ports below 1024, root-owned
//! password, ACL and TLS key files and the data directory lock are taken
//! first, as Mosquitto does. Started as
//! another user, nothing changes (as in Mosquitto).
//!
//! Users and groups are read from `/etc/passwd` and `/etc/group` (no NSS:
//! LDAP or systemd-homed users are not found). The ids are set with raw
//! system calls, which change the calling thread only: the caller must
//! run this while the process has one thread (`Broker::run` does, before
//! the store's writer thread starts). Linux only; elsewhere `user` has no
//! effect, as Mosquitto's on Windows.

/// Who the process became.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Became {
    /// The user name (Mosquitto's fallback `nobody` when `mosquitto` does not exist).
    pub name: String,
    /// Its user id.
    pub uid: u32,
    /// Its primary group id.
    pub gid: u32,
}

/// One `/etc/passwd` entry: (uid, gid) of `name`.
fn passwd_entry(passwd: &str, name: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        if f.next()? != name {
            return None;
        }
        let _password = f.next()?;
        let uid = f.next()?.parse().ok()?;
        let gid = f.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

/// Groups of `/etc/group` that list `name` as a member, plus `primary`.
fn groups_of(group: &str, name: &str, primary: u32) -> Vec<u32> {
    let mut out = vec![primary];
    for line in group.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if let [_, _, gid, members] = f[..] {
            if members.split(',').any(|m| m == name) {
                if let Ok(gid) = gid.parse::<u32>() {
                    if !out.contains(&gid) {
                        out.push(gid);
                    }
                }
            }
        }
    }
    out
}

/// Which account `user` means: itself, or for Mosquitto's default name
/// `mosquitto` when it does not exist, `nobody`.
fn resolve(passwd: &str, user: &str) -> Result<(String, u32, u32), String> {
    if let Some((uid, gid)) = passwd_entry(passwd, user) {
        return Ok((user.to_owned(), uid, gid));
    }
    if user == "mosquitto" {
        if let Some((uid, gid)) = passwd_entry(passwd, "nobody") {
            return Ok(("nobody".to_owned(), uid, gid));
        }
    }
    Err(format!("user {user}: no such user in /etc/passwd"))
}

/// Becomes `user` if the process runs as root; `Ok(None)` when it does
/// not (nothing to do).
///
/// # Errors
/// An unknown user, or a system call that failed; the broker must not
/// go on as root then.
pub fn become_user(user: &str) -> Result<Option<Became>, String> {
    platform::become_user(user)
}

#[cfg(target_os = "linux")]
mod platform {
    use super::{Became, groups_of, resolve};
    use rustix::process::{Gid, Uid, geteuid, getuid};
    use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};

    pub fn become_user(user: &str) -> Result<Option<Became>, String> {
        if !geteuid().is_root() {
            return Ok(None);
        }
        let read = |path: &str| {
            std::fs::read_to_string(path).map_err(|e| format!("user {user}: {path}: {e}"))
        };
        let (name, uid, gid) = resolve(&read("/etc/passwd")?, user)?;
        let groups: Vec<Gid> = groups_of(&read("/etc/group").unwrap_or_default(), &name, gid)
            .into_iter()
            .map(Gid::from_raw)
            .collect();
        let fail = |what: &str, e: rustix::io::Errno| format!("user {user}: {what}: {e}");
        // Groups first: once the user id is not root they cannot change.
        set_thread_groups(&groups).map_err(|e| fail("setgroups", e))?;
        let g = Gid::from_raw(gid);
        set_thread_res_gid(g, g, g).map_err(|e| fail("setresgid", e))?;
        let u = Uid::from_raw(uid);
        set_thread_res_uid(u, u, u).map_err(|e| fail("setresuid", e))?;
        if getuid().as_raw() != uid || geteuid().as_raw() != uid {
            return Err(format!("user {user}: the user id did not change"));
        }
        Ok(Some(Became { name, uid, gid }))
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    use super::Became;

    pub fn become_user(_user: &str) -> Result<Option<Became>, String> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
        mqtt:x:998:997::/var/lib/mqtt:/usr/sbin/nologin\n";
    const GROUP: &str = "root:x:0:\ndialout:x:20:mqtt,pi\nmqtt:x:997:\nvideo:x:44:pi\n";

    #[test]
    fn users_and_groups_are_read_from_the_files() {
        assert_eq!(resolve(PASSWD, "mqtt"), Ok(("mqtt".to_owned(), 998, 997)));
        // Mosquitto's default user falls back to nobody.
        assert_eq!(
            resolve(PASSWD, "mosquitto"),
            Ok(("nobody".to_owned(), 65534, 65534))
        );
        let err = resolve(PASSWD, "ghost").unwrap_err();
        assert!(err.contains("no such user"), "{err}");
        assert_eq!(groups_of(GROUP, "mqtt", 997), vec![997, 20]);
        assert_eq!(groups_of(GROUP, "nobody", 65534), vec![65534]);
        // A name that is a prefix of a member is not a member.
        assert_eq!(groups_of(GROUP, "p", 1), vec![1]);
    }
}
