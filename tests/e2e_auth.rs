//! Password files, ACL files and their reload on SIGHUP, end to end with
//! Debian's `mosquitto_passwd`, `mosquitto_pub` and `mosquitto_sub`.

mod common;

use common::*;
use std::fs;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

/// A password file made by Debian's `mosquitto_passwd`: alice ($7$,
/// PBKDF2-SHA512), bob ($7$), carol ($6$, salted SHA512).
fn password_file(dir: &TempDir) -> String {
    let path = dir.path().join("passwd");
    let p = path.to_string_lossy().into_owned();
    let run = |args: &[&str]| {
        let out = run_with_timeout(Command::new("mosquitto_passwd").args(args), WAIT);
        out.assert_success();
    };
    run(&["-c", "-b", &p, "alice", "a-secret"]);
    run(&["-b", &p, "bob", "b-secret"]);
    run(&["-H", "sha512", "-b", &p, "carol", "c-secret"]);
    p
}

fn publish(port: u16, user: Option<(&str, &str)>, extra: &[&str]) -> CmdOutput {
    let mut args: Vec<&str> = Vec::new();
    if let Some((u, pw)) = user {
        args.extend(["-u", u, "-P", pw]);
    }
    args.extend(extra);
    try_mosquitto_pub(port, &args)
}

#[test]
fn password_file_from_mosquitto_passwd() {
    let dir = TempDir::new("auth");
    let pw = password_file(&dir);
    let b =
        TestBroker::start_with_config(&["allow_anonymous false", &format!("password_file {pw}")]);
    let msg = ["-t", "t", "-m", "x"];
    assert!(publish(b.port, Some(("alice", "a-secret")), &msg).success());
    assert!(
        publish(b.port, Some(("carol", "c-secret")), &msg).success(),
        "$6$ entry"
    );
    // CONNACK 0x04, bad user name or password (3.1.1 §3.2.2.3, table 3.1).
    // Mosquitto answers 0x05 for every refusal; boxmq says which it is.
    let wrong = publish(b.port, Some(("alice", "nope")), &msg);
    assert!(!wrong.success());
    let expected = if is_mosquitto() {
        "not author"
    } else {
        "bad user name or password"
    };
    assert!(wrong.stderr.contains(expected), "{}", wrong.stderr);
    let unknown = publish(b.port, Some(("mallory", "x")), &msg);
    assert!(!unknown.success());
    // No user name with allow_anonymous false: 0x05 not authorised.
    let anon = publish(b.port, None, &msg);
    assert!(!anon.success());
    assert!(
        anon.stderr.to_lowercase().contains("not author"),
        "{}",
        anon.stderr
    );
}

const ACL: &str = "\
# bob sees everything
user bob
topic readwrite #

user alice
topic readwrite shellies/#
topic read dashboard/#
pattern write devices/%c/#
";

#[test]
fn acl_limits_writes_reads_and_retained_messages() {
    let dir = TempDir::new("acl");
    let pw = password_file(&dir);
    let acl = dir.path().join("acl");
    fs::write(&acl, ACL).expect("write acl");
    let b = TestBroker::start_with_config(&[
        "allow_anonymous false",
        &format!("password_file {pw}"),
        &format!("acl_file {}", acl.display()),
    ]);
    // Retained on a topic alice may not read.
    let bob = Some(("bob", "b-secret"));
    let alice = Some(("alice", "a-secret"));
    assert!(publish(b.port, bob, &["-t", "secret/r", "-m", "hidden", "-r"]).success());
    assert!(publish(b.port, bob, &["-t", "dashboard/r", "-m", "shown", "-r"]).success());

    let watcher = MosqSub::start(b.port, &["-u", "bob", "-P", "b-secret", "-t", "#", "-v"]);
    let alice_sub = MosqSub::start(b.port, &["-u", "alice", "-P", "a-secret", "-t", "#", "-v"]);
    // Denied write: dropped (acknowledged as 3.1.1 says), others pass.
    assert!(
        publish(
            b.port,
            alice,
            &["-t", "dashboard/x", "-m", "denied", "-q", "1"]
        )
        .success()
    );
    assert!(publish(b.port, alice, &["-t", "shellies/a", "-m", "ok"]).success());
    assert!(
        publish(
            b.port,
            alice,
            &["-i", "alice-1", "-t", "devices/alice-1/t", "-m", "mine"]
        )
        .success()
    );
    assert!(
        publish(
            b.port,
            alice,
            &["-i", "alice-1", "-t", "devices/other/t", "-m", "not mine"]
        )
        .success()
    );
    assert!(publish(b.port, bob, &["-t", "secret/live", "-m", "hidden too"]).success());
    assert!(publish(b.port, bob, &["-t", "zz/end", "-m", "end"]).success());

    let seen = watcher.finish(Duration::from_secs(2)).messages;
    assert!(seen.contains(&"shellies/a ok".to_string()), "{seen:?}");
    assert!(
        seen.contains(&"devices/alice-1/t mine".to_string()),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|m| m.contains("denied") || m.contains("not mine")),
        "{seen:?}"
    );
    // alice's "#" is granted, but only what she may read reaches her: the
    // retained dashboard message, her shellies message; never secret/*.
    let got = alice_sub.finish(Duration::from_secs(2)).messages;
    assert!(got.contains(&"dashboard/r shown".to_string()), "{got:?}");
    assert!(got.contains(&"shellies/a ok".to_string()), "{got:?}");
    assert!(
        !got.iter()
            .any(|m| m.starts_with("secret/") || m.starts_with("zz/")),
        "{got:?}"
    );
}

#[test]
fn sighup_reloads_and_a_broken_file_keeps_the_old_rules() {
    if skip_unless_boxmq("sighup_reloads", "the log lines checked are boxmq's") {
        return;
    }
    let dir = TempDir::new("hup");
    let acl = dir.path().join("acl");
    fs::write(&acl, "topic read #\n").expect("write acl");
    let b = TestBroker::start_with_config(&[&format!("acl_file {}", acl.display())]);
    let hup = || {
        let pid = b.pid().expect("pid").to_string();
        run_with_timeout(Command::new("kill").args(["-HUP", &pid]), WAIT).assert_success();
        std::thread::sleep(Duration::from_millis(300));
    };
    let sub = MosqSub::start(b.port, &["-t", "t/#", "-v"]);
    assert!(try_mosquitto_pub(b.port, &["-t", "t/1", "-m", "before"]).success());
    // Anonymous clients may now write t/#.
    fs::write(&acl, "topic readwrite t/#\n").expect("rewrite acl");
    hup();
    assert!(try_mosquitto_pub(b.port, &["-t", "t/2", "-m", "after"]).success());
    // A broken file: the log names it, the rules in force stay.
    fs::write(&acl, "topic readwrite t/#\nbogus line here\n").expect("break acl");
    hup();
    assert!(try_mosquitto_pub(b.port, &["-t", "t/3", "-m", "still"]).success());
    let got = sub.finish(Duration::from_secs(2)).messages;
    assert_eq!(got, vec!["t/2 after".to_string(), "t/3 still".to_string()]);
    let log = b.log();
    assert!(log.contains("reloaded"), "{log}");
    assert!(log.contains(":2:"), "the broken line is named: {log}");
}
