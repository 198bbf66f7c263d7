//! Mosquitto's less common bridge lines end to end: `start_type lazy` and
//! `once`, `bridge_outgoing_retain`, `bridge_max_packet_size`,
//! `bridge_bind_address`; boxmq bridged to Debian's `mosquitto`, started
//! by the test on a free port of 127.0.0.1 (`e2e_bridge.rs` has the
//! common cases).

mod common;

use std::time::{Duration, Instant};

use common::bridge::{Remote, nothing_more, receive, state, wait_retained};
use common::{RawClient, TestBroker};

/// boxmq with one bridge named `up` to the remote on `port`, plus `lines`.
fn boxmq_bridged(port: u16, lines: &[&str]) -> TestBroker {
    let mut conf = vec![
        "connection up".to_owned(),
        format!("address 127.0.0.1:{port}"),
        "restart_timeout 1 2".to_owned(),
        "keepalive_interval 5".to_owned(),
    ];
    conf.extend(lines.iter().map(|l| (*l).to_owned()));
    let refs: Vec<&str> = conf.iter().map(String::as_str).collect();
    TestBroker::start_with_config(&refs)
}

/// A Shelly on the box presses `payloads` at QoS 1, each acknowledged.
fn presses(box_port: u16, payloads: &[&str]) {
    let mut shelly = RawClient::connect(box_port, &common::unique("shelly"));
    for p in payloads {
        shelly.publish("shellies/s1/input_event/0", p.as_bytes(), 1, false);
    }
    shelly.disconnect();
}

#[test]
fn lazy_bridge_connects_at_its_threshold_and_leaves_when_idle() {
    if common::skip_unless_boxmq("lazy", "starts the boxmq binary with bridge lines") {
        return;
    }
    let remote = Remote::start();
    let mut cloud = RawClient::connect(remote.port, "cloud-lazy");
    cloud.subscribe_ok(&[("shellies/#", 1)]);
    let mut states = RawClient::connect(remote.port, "states-lazy");
    states.subscribe_ok(&[(&state("up"), 0)]);
    let boxmq = boxmq_bridged(
        remote.port,
        &[
            "topic shellies/# out 1",
            "start_type lazy",
            "threshold 3",
            "idle_timeout 2",
        ],
    );
    // Below the threshold the presses are kept on the box, not sent.
    presses(boxmq.port, &["p0", "p1"]);
    nothing_more(&mut cloud, Duration::from_millis(1000));
    nothing_more(&mut states, Duration::from_millis(10));
    // The third starts the bridge: all three arrive, in order.
    presses(boxmq.port, &["p2"]);
    assert_eq!(
        receive(&mut cloud, 3, Duration::from_secs(10)),
        ["p0", "p1", "p2"]
    );
    // Two seconds without a message: it disconnects, and says so on
    // both sides (a clean DISCONNECT fires no will, so the bridge
    // publishes the "0" itself).
    let last = Instant::now();
    wait_retained(remote.port, &state("up"), "0", Duration::from_secs(10));
    let idle = last.elapsed();
    assert!(idle >= Duration::from_millis(1500), "left after {idle:?}");
    wait_retained(boxmq.port, &state("up"), "0", Duration::from_secs(5));
    // Again below the threshold: kept; at it: sent.
    presses(boxmq.port, &["p3", "p4"]);
    nothing_more(&mut cloud, Duration::from_millis(1000));
    presses(boxmq.port, &["p5"]);
    assert_eq!(
        receive(&mut cloud, 3, Duration::from_secs(10)),
        ["p3", "p4", "p5"]
    );
    let log = boxmq.log();
    assert!(log.contains("(idle_timeout); disconnecting"), "{log}");
}

/// Messages a lazy bridge keeps below its threshold are in its session,
/// which persistence keeps across a restart (killed, not stopped): the
/// count goes on from there.
#[test]
fn lazy_bridge_keeps_its_count_across_a_restart() {
    if common::skip_unless_boxmq("lazy restart", "starts the boxmq binary with bridge lines") {
        return;
    }
    let remote = Remote::start();
    let mut cloud = RawClient::connect(remote.port, "cloud-lazy-restart");
    cloud.subscribe_ok(&[("shellies/#", 1)]);
    let data = common::TempDir::new("lazy-data");
    let location = format!("persistence_location {}", data.path().display());
    let lines = [
        "topic shellies/# out 1",
        "start_type lazy",
        "threshold 3",
        "persistence true",
        &location,
    ];
    let boxmq = boxmq_bridged(remote.port, &lines);
    presses(boxmq.port, &["p0", "p1"]);
    drop(boxmq);
    let boxmq = boxmq_bridged(remote.port, &lines);
    nothing_more(&mut cloud, Duration::from_millis(500));
    presses(boxmq.port, &["p2"]);
    assert_eq!(
        receive(&mut cloud, 3, Duration::from_secs(10)),
        ["p0", "p1", "p2"]
    );
}

#[test]
fn once_bridge_does_not_reconnect() {
    if common::skip_unless_boxmq("once", "starts the boxmq binary with bridge lines") {
        return;
    }
    let mut remote = Remote::start();
    let boxmq = boxmq_bridged(remote.port, &["topic shellies/# out 1", "start_type once"]);
    wait_retained(remote.port, &state("up"), "1", Duration::from_secs(10));
    remote.down();
    wait_retained(boxmq.port, &state("up"), "0", Duration::from_secs(10));
    remote.up();
    let mut cloud = RawClient::connect(remote.port, "cloud-once");
    cloud.subscribe_ok(&[("shellies/#", 1)]);
    presses(boxmq.port, &["p0"]);
    // `restart_timeout 1 2` would have brought an automatic bridge back
    // within two seconds.
    nothing_more(&mut cloud, Duration::from_secs(4));
    wait_retained(boxmq.port, &state("up"), "0", Duration::from_secs(1));
    let log = boxmq.log();
    assert!(
        log.contains("start_type once: no new connection attempt"),
        "{log}"
    );
}

#[test]
fn outgoing_retain_false_clears_the_retain_flag() {
    if common::skip_unless_boxmq(
        "outgoing retain",
        "starts the boxmq binary with bridge lines",
    ) {
        return;
    }
    let remote = Remote::start();
    let mut cloud = RawClient::connect(remote.port, "cloud-retain");
    cloud.subscribe_ok(&[("shellies/#", 1)]);
    let boxmq = boxmq_bridged(
        remote.port,
        &["topic shellies/# out 1", "bridge_outgoing_retain false"],
    );
    let mut shelly = RawClient::connect(boxmq.port, "shelly-retain");
    // Retained on the box, forwarded without the flag: it arrives, but
    // the remote keeps nothing for a later subscriber.
    shelly.publish("shellies/s1/relay/0", b"on", 1, true);
    assert_eq!(receive(&mut cloud, 1, Duration::from_secs(10)), ["on"]);
    let mut late = RawClient::connect(remote.port, "late-retain");
    late.subscribe_ok(&[("shellies/#", 1), ("$SYS/broker/connection/#", 0)]);
    nothing_more(&mut late, Duration::from_millis(1000));
    // The box itself keeps it, as for any retained message.
    wait_retained(
        boxmq.port,
        "shellies/s1/relay/0",
        "on",
        Duration::from_secs(1),
    );
}

#[test]
fn max_packet_size_drops_larger_messages_and_goes_on() {
    if common::skip_unless_boxmq(
        "max packet size",
        "starts the boxmq binary with bridge lines",
    ) {
        return;
    }
    let remote = Remote::start();
    let mut cloud = RawClient::connect(remote.port, "cloud-size");
    cloud.subscribe_ok(&[("shellies/#", 1)]);
    let boxmq = boxmq_bridged(
        remote.port,
        &[
            "topic shellies/# out 1",
            "bridge_max_packet_size 200",
            "sys_interval 1",
        ],
    );
    wait_retained(remote.port, &state("up"), "1", Duration::from_secs(10));
    let mut cam = RawClient::connect(boxmq.port, "cam-size");
    // A 3.1.1 PUBLISH here: 2 + 2 + 23 (topic) + 2 (id) + payload bytes.
    let topic = "shellies/cam1/snapshot/0";
    cam.publish(topic, &[b'a'; 150], 1, false);
    cam.publish(topic, &[b'b'; 400], 1, false);
    cam.publish(topic, &[b'c'; 160], 1, false);
    let got = receive(&mut cloud, 3, Duration::from_secs(3));
    assert_eq!(got, ["a".repeat(150), "c".repeat(160)]);
    // Counted as dropped on the box (the bridge's local side announces
    // the size, so the core drops it as for any client with a Maximum
    // Packet Size).
    wait_retained(
        boxmq.port,
        "$SYS/broker/publish/messages/dropped",
        "1",
        Duration::from_secs(5),
    );
}

#[test]
fn bind_address_is_bound_and_a_foreign_one_fails_here() {
    if common::skip_unless_boxmq("bind address", "starts the boxmq binary with bridge lines") {
        return;
    }
    let remote = Remote::start();
    let boxmq = boxmq_bridged(
        remote.port,
        &["topic shellies/# out 1", "bridge_bind_address 127.0.0.1"],
    );
    wait_retained(remote.port, &state("up"), "1", Duration::from_secs(10));
    drop(boxmq);
    // An address that is not this machine's (TEST-NET-1): the bind fails
    // here, before any packet leaves, and the bridge says why.
    let boxmq = boxmq_bridged(
        remote.port,
        &["topic shellies/# out 1", "bridge_bind_address 192.0.2.1"],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !boxmq.log().contains("cannot bind to 192.0.2.1") {
        assert!(Instant::now() < deadline, "{}", boxmq.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_retained(boxmq.port, &state("up"), "0", Duration::from_secs(1));
}

/// A frame from the remote counts in the memory budget from its fixed
/// header on, as a client's does (docs/LIMITS.md, "The memory budget"):
/// with `memory_limit 1048576`, a 2 MiB message from the remote ends the
/// bridge's connection with a log line instead of being buffered, the box
/// stays up, and the bridge, connected again, relays what comes next.
#[test]
fn a_remote_frame_past_the_budget_drops_the_bridge_connection_only() {
    if common::skip_unless_boxmq("remote budget", "starts the boxmq binary with bridge lines") {
        return;
    }
    let remote = Remote::start();
    let boxmq = boxmq_bridged(remote.port, &["topic cams/# in 0", "memory_limit 1048576"]);
    wait_retained(boxmq.port, &state("up"), "1", Duration::from_secs(10));
    let mut viewer = RawClient::connect(boxmq.port, "viewer-budget");
    viewer.subscribe_ok(&[("cams/#", 0)]);
    let mut cam = RawClient::connect(remote.port, "cam-budget");
    cam.publish("cams/big", &vec![b'x'; 2 * 1024 * 1024], 0, false);
    let log = boxmq.log_when(Duration::from_secs(10), |l| {
        l.contains("from the remote does not fit in the memory budget")
    });
    // 2 MiB of payload plus the topic (and 5.0 properties).
    assert!(
        log.contains("a 20971") && log.contains("-byte packet from the remote does not fit"),
        "{log}"
    );
    // Connected again (restart_timeout 1 2), the bridge relays small ones.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < deadline,
            "no small message after the big one"
        );
        cam.publish("cams/small", b"ok", 0, false);
        let got = receive(&mut viewer, 1, Duration::from_millis(700));
        if !got.is_empty() {
            assert_eq!(got, ["ok"], "the big message got through");
            break;
        }
    }
}
