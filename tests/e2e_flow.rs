//! QoS 1 under load (issue 16), with the mosquitto clients over loopback:
//! a subscriber that keeps acknowledging loses nothing however many
//! publishers feed it, and a stuck one is given up on without stalling a
//! healthy one.

mod common;

use common::*;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `mosquitto_pub -q 1 -l` and writes `lines` to its standard input,
/// then closes it: the client sends one message per line and exits once
/// they are all acknowledged.
fn pub_lines(port: u16, topic: &str, lines: &[String]) -> Child {
    let mut child = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-q", "1", "-t", topic, "-l"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mosquitto_pub");
    let mut stdin = child.stdin.take().expect("stdin");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    // The pipe takes it all or the client is gone: a write error shows as
    // missing messages below.
    let _ = stdin.write_all(text.as_bytes());
    drop(stdin);
    child
}

/// Waits for `child` to exit, killing it after `limit`; `true` when it
/// exited successfully by itself.
fn wait_for(mut child: Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The scenario, at the default config: sixteen `mosquitto_pub -q 1
/// -l` publishers, 2,000 lines each, into one `mosquitto_sub -q 1` that
/// keeps reading and acknowledging. Everything acknowledged arrives.
#[test]
fn sixteen_publishers_into_one_acknowledging_subscriber_lose_nothing() {
    if skip_unless_boxmq(
        "sixteen_publishers_into_one_acknowledging_subscriber_lose_nothing",
        "Mosquitto drops past max_queued_messages (1000 by default)",
    ) {
        return;
    }
    const PUBS: usize = 16;
    const LINES: usize = 2000;
    let b = TestBroker::start();
    let total = (PUBS * LINES).to_string();
    let sub = MosqSub::start(
        b.port,
        &["-q", "1", "-t", "load/#", "-C", &total, "-W", "60"],
    );
    let pubs: Vec<Child> = (0..PUBS)
        .map(|p| {
            let lines: Vec<String> = (0..LINES).map(|i| format!("{p}-{i}")).collect();
            pub_lines(b.port, &format!("load/{p}"), &lines)
        })
        .collect();
    let acked = pubs
        .into_iter()
        .map(|c| wait_for(c, Duration::from_secs(60)))
        .filter(|&ok| ok)
        .count();
    let out = sub.finish(Duration::from_secs(60));
    assert_eq!(
        acked, PUBS,
        "every publisher had all its lines acknowledged"
    );
    let mut got = out.messages.clone();
    got.sort();
    got.dedup();
    assert_eq!(
        got.len(),
        PUBS * LINES,
        "delivered {} of {} (distinct)\n{}",
        got.len(),
        PUBS * LINES,
        b.log()
    );
    assert!(!b.log().contains("dropping QoS 1/2"), "{}", b.log());
}

/// One subscriber that stops reading (a raw socket that subscribed and then
/// reads nothing) and one `mosquitto_sub` that keeps acknowledging, on the
/// same topics. The healthy one gets every message; the publisher is held
/// up at most about `stuck_timeout`; the stuck one's drops are counted on
/// `$SYS` and logged once.
#[test]
fn a_stuck_subscriber_does_not_stall_a_healthy_one() {
    if skip_unless_boxmq(
        "a_stuck_subscriber_does_not_stall_a_healthy_one",
        "stuck_timeout and the per-client $SYS figure are boxmq's",
    ) {
        return;
    }
    const LINES: usize = 3000;
    let b = TestBroker::start_with_config(&[
        "stuck_timeout 1",
        "max_queued_messages 100",
        "sys_interval 1",
    ]);
    let mut stuck = RawClient::connect(b.port, "stuck-dashboard");
    stuck.subscribe_ok(&[("press/#", 1)]);
    let healthy = MosqSub::start(
        b.port,
        &[
            "-q",
            "1",
            "-t",
            "press/#",
            "-C",
            &LINES.to_string(),
            "-W",
            "30",
        ],
    );
    let start = Instant::now();
    let lines: Vec<String> = (0..LINES).map(|i| format!("press-{i}")).collect();
    let publisher = pub_lines(b.port, "press/button", &lines);
    assert!(
        wait_for(publisher, Duration::from_secs(30)),
        "publisher finished"
    );
    let took = start.elapsed();
    let out = healthy.finish(Duration::from_secs(30));
    assert_eq!(out.messages, lines, "healthy subscriber got all, in order");
    // Paused for the stuck one once (1 s), not for ever; generous bound for
    // a loaded machine.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    // 100 in flight to the stuck one and 100 queued; the rest dropped.
    let dropped = (LINES - 200).to_string();
    let sys = MosqSub::start(
        b.port,
        &[
            "-t",
            "$SYS/broker/client/stuck-dashboard/dropped",
            "-C",
            "1",
            "-W",
            "10",
        ],
    )
    .finish(Duration::from_secs(10));
    assert_eq!(sys.messages, vec![dropped], "{}", sys.raw);
    let log = b.log();
    assert_eq!(
        log.matches("'stuck-dashboard': queue full").count(),
        1,
        "one log line per episode:\n{log}"
    );
    drop(stuck);
}
