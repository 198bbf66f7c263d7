//! Persistence with the real binary (docs/PERSISTENCE.md): state survives a
//! restart and a SIGKILL; every PUBACKed message reaches a persistent
//! subscriber after the broker comes back; a damaged data directory does
//! not keep it from starting; two brokers cannot share a directory.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{ConnectOpts, RawClient, ReadEnd, TempDir, TestBroker, frame, ptype};

/// A broker persisting into `dir`.
fn start(dir: &TempDir, extra: &[&str]) -> TestBroker {
    let location = format!("persistence_location {}", dir.path().display());
    let mut lines = vec!["persistence true", location.as_str()];
    lines.extend_from_slice(extra);
    TestBroker::start_with_config(&lines)
}

fn skip() -> bool {
    common::skip_unless_boxmq("e2e_persist", "boxmq's own persistence")
}

/// Connects a persistent (clean session 0) client.
fn persistent(port: u16, id: &str) -> (RawClient, bool) {
    RawClient::connect_opts(port, &ConnectOpts::new(id).clean(false))
}

#[test]
fn retained_messages_survive_a_restart_and_a_clear_too() {
    if skip() {
        return;
    }
    let dir = TempDir::new("persist-retained");
    let broker = start(&dir, &[]);
    let mut p = RawClient::connect(broker.port, "pub");
    p.send(&frame::publish("keep/a", b"one", 1, true, false, 1));
    p.expect(ptype::PUBACK);
    p.send(&frame::publish("keep/b", b"two", 1, true, false, 2));
    p.expect(ptype::PUBACK);
    p.send(&frame::publish("keep/b", b"", 1, true, false, 3));
    p.expect(ptype::PUBACK);
    // Acknowledged, so on disk: SIGKILL (the Drop) loses nothing.
    drop(p);
    drop(broker);

    let broker = start(&dir, &[]);
    assert!(
        broker.log().contains("1 retained messages"),
        "{}",
        broker.log()
    );
    let mut s = RawClient::connect(broker.port, "sub");
    s.send(&frame::subscribe(1, &[("keep/#", 1)]));
    s.expect(ptype::SUBACK);
    let m = s.expect(ptype::PUBLISH).publish();
    assert_eq!(
        (m.topic.as_str(), m.payload_str().as_str()),
        ("keep/a", "one")
    );
    assert!(m.retain);
    assert!(matches!(
        s.try_recv(Duration::from_millis(300)),
        Err(ReadEnd::Timeout)
    ));
}

#[test]
fn a_persistent_session_and_its_queue_survive_a_restart() {
    if skip() {
        return;
    }
    let dir = TempDir::new("persist-session");
    let broker = start(&dir, &[]);
    let (mut s, present) = persistent(broker.port, "sink");
    assert!(!present);
    s.send(&frame::subscribe(1, &[("q/#", 2)]));
    s.expect(ptype::SUBACK);
    s.send(&frame::disconnect());
    drop(s);
    let mut p = RawClient::connect(broker.port, "pub");
    p.send(&frame::publish("q/1", b"at least once", 1, false, false, 1));
    p.expect(ptype::PUBACK);
    p.send(&frame::publish("q/2", b"exactly once", 2, false, false, 2));
    p.expect(ptype::PUBREC);
    drop(broker);

    let broker = start(&dir, &[]);
    let (mut s, present) = persistent(broker.port, "sink");
    assert!(present, "session present after the restart [MQTT-3.2.2-2]");
    let a = s.expect(ptype::PUBLISH);
    let b = s.expect(ptype::PUBLISH);
    assert_eq!(a.publish().payload_str(), "at least once");
    assert_eq!(b.publish().payload_str(), "exactly once");
    assert_eq!(b.qos(), 2);
}

/// One publisher sending QoS 1 messages numbered from `first` as fast as
/// the broker acknowledges them (32 in flight), until the connection
/// breaks. Returns the numbers PUBACKed; `acks` counts them as they come.
fn publish_until_killed(
    port: u16,
    first: u32,
    stop: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
) -> BTreeSet<u32> {
    let mut acked = BTreeSet::new();
    let mut c = RawClient::connect(port, &format!("load-{first}"));
    let mut next = first;
    let mut inflight: std::collections::HashMap<u16, u32> = std::collections::HashMap::new();
    'outer: while !stop.load(Ordering::Relaxed) {
        while inflight.len() < 32 {
            let pid = u16::try_from(next % 60_000 + 1).unwrap();
            let payload = next.to_string();
            if c.try_send(&frame::publish(
                "load/n",
                payload.as_bytes(),
                1,
                false,
                false,
                pid,
            ))
            .is_err()
            {
                break 'outer;
            }
            inflight.insert(pid, next);
            next += 1;
        }
        match c.try_recv(Duration::from_secs(2)) {
            Ok(p) if p.ptype() == ptype::PUBACK => {
                if let Some(n) = inflight.remove(&p.packet_id()) {
                    acked.insert(n);
                    acks.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    acked
}

#[test]
fn every_puback_survives_sigkill_under_qos1_load() {
    if skip() {
        return;
    }
    let dir = TempDir::new("persist-kill");
    let limits = ["max_queued_messages 1000000", "max_queued_bytes 268435456"];
    let broker = start(&dir, &limits);
    let (mut s, _) = persistent(broker.port, "sink");
    s.send(&frame::subscribe(1, &[("load/#", 1)]));
    s.expect(ptype::SUBACK);
    s.send(&frame::disconnect());
    drop(s);
    drop(broker);

    let mut acked = BTreeSet::new();
    let started = Instant::now();
    for cycle in 0..5u32 {
        let broker = start(&dir, &limits);
        let stop = Arc::new(AtomicBool::new(false));
        let port = broker.port;
        let stop2 = stop.clone();
        let acks = Arc::new(AtomicUsize::new(0));
        let acks2 = acks.clone();
        let first = cycle * 1_000_000;
        let publisher = thread::spawn(move || publish_until_killed(port, first, stop2, acks2));
        // Kill at a point that moves from cycle to cycle, once the load has
        // begun (a busy machine may take longer than that to connect).
        thread::sleep(Duration::from_millis(150 + 70 * u64::from(cycle)));
        let deadline = Instant::now() + Duration::from_secs(10);
        while acks.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        drop(broker); // SIGKILL
        stop.store(true, Ordering::Relaxed);
        let got = publisher.join().expect("publisher thread");
        assert!(!got.is_empty(), "cycle {cycle}: nothing acknowledged");
        acked.extend(got);
        if started.elapsed() > Duration::from_secs(30) {
            break;
        }
    }

    // Back once more: the persistent subscriber collects its queue.
    let broker = start(&dir, &limits);
    let (mut s, present) = persistent(broker.port, "sink");
    assert!(present);
    let mut received = BTreeSet::new();
    loop {
        match s.try_recv(Duration::from_secs(2)) {
            Ok(p) if p.ptype() == ptype::PUBLISH => {
                let m = p.publish();
                let n: u32 = m.payload_str().parse().expect("number");
                received.insert(n);
                s.send(&frame::puback(m.packet_id.expect("QoS 1")));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let lost: Vec<&u32> = acked.difference(&received).take(10).collect();
    assert!(
        lost.is_empty(),
        "{} of {} PUBACKed messages lost, e.g. {lost:?}",
        acked.difference(&received).count(),
        acked.len()
    );
    eprintln!(
        "{} messages PUBACKed over the kills, all delivered ({} received)",
        acked.len(),
        received.len()
    );
}

#[test]
fn a_damaged_data_directory_is_set_aside_and_the_broker_starts() {
    if skip() {
        return;
    }
    let dir = TempDir::new("persist-damaged");
    let broker = start(&dir, &[]);
    let mut p = RawClient::connect(broker.port, "pub");
    for i in 0..20u16 {
        let topic = format!("keep/{i}");
        p.send(&frame::publish(&topic, b"value", 1, true, false, i + 1));
        p.expect(ptype::PUBACK);
    }
    drop(p);
    drop(broker);
    // Flip bytes in the middle of every file and add a torn tail.
    let mut damaged = 0;
    for entry in fs::read_dir(dir.path()).expect("read dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "lock" {
            continue;
        }
        let mut bytes = fs::read(&path).expect("read");
        if bytes.len() > 64 {
            let mid = bytes.len() / 2;
            for b in &mut bytes[mid..mid + 8] {
                *b ^= 0x5a;
            }
            bytes.extend_from_slice(&[0x17; 13]);
            fs::write(&path, bytes).expect("write");
            damaged += 1;
        }
    }
    assert!(
        damaged > 0,
        "no data file found in {}",
        dir.path().display()
    );
    let broker = start(&dir, &[]);
    let log = broker.log();
    assert!(log.contains("persistence: "), "{log}");
    assert!(
        log.contains("corrupt") || log.contains("torn") || log.contains("skipped"),
        "the log says what was set aside:\n{log}"
    );
    // Serving.
    let mut s = RawClient::connect(broker.port, "sub");
    s.send(&frame::subscribe(1, &[("keep/#", 0)]));
    s.expect(ptype::SUBACK);
}

#[test]
fn a_second_broker_on_the_same_directory_exits_with_status_2() {
    if skip() {
        return;
    }
    let dir = TempDir::new("persist-lock");
    let _first = start(&dir, &[]);
    let conf = dir.path().join("second.conf");
    fs::write(
        &conf,
        format!(
            "listener 0 127.0.0.1\npersistence true\npersistence_location {}\n",
            dir.path().display()
        ),
    )
    .expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_boxmq"))
        .arg("--config")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the second broker did not exit");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read");
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("locked"), "{err}");
}

/// The store's committed fixtures (tests/fixtures/store/README.md), one per
/// kind of damage: the broker starts on each, says what it set aside, and
/// serves.
#[test]
fn the_broker_starts_on_every_damaged_fixture() {
    if skip() {
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store");
    let mut cases: Vec<_> = fs::read_dir(&root)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 5, "fixtures missing in {}", root.display());
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let dir = TempDir::new("persist-fixture");
        for f in fs::read_dir(&case).expect("case") {
            let f = f.expect("file").path();
            fs::copy(&f, dir.path().join(f.file_name().unwrap())).expect("copy");
        }
        let broker = start(&dir, &[]);
        // The port accepts connections once bound, which is before the
        // store is read: wait for the line that says it was.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut log = broker.log();
        while !log.contains("records read in") && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
            log = broker.log();
        }
        assert!(log.contains("records read in"), "{name}:\n{log}");
        if name != "clean" {
            assert!(
                log.contains("WARN") && log.contains("persistence: "),
                "{name}: nothing said about the damage:\n{log}"
            );
        }
        let mut c = RawClient::connect(broker.port, "after-damage");
        c.send(&frame::publish("x", b"y", 1, true, false, 1));
        c.expect(ptype::PUBACK);
    }
}

/// The embedding API: off unless asked; `BrokerBuilder::persistence(dir)`
/// keeps retained messages across a stop and a start.
#[test]
fn an_embedded_broker_persists_only_when_asked() {
    use boxmq::{Broker, QoS};
    let dir = TempDir::new("persist-embed");
    let data = dir.path().join("data");
    {
        let mut broker = Broker::builder().port(0).persistence(&data).build();
        let handle = broker.start().expect("start");
        let c = handle.client("app").expect("client");
        c.publish("display/brightness", b"80", QoS::AtLeastOnce, true)
            .expect("publish");
        handle.stop().expect("stop");
    }
    {
        let mut broker = Broker::builder().port(0).persistence(&data).build();
        let handle = broker.start().expect("start again");
        let c = handle.client("reader").expect("client");
        let sub = c
            .subscribe("display/#", QoS::AtLeastOnce)
            .expect("subscribe");
        let m = sub.recv_timeout(Duration::from_secs(5)).expect("retained");
        assert_eq!(
            (m.topic.as_str(), m.payload.as_slice()),
            ("display/brightness", &b"80"[..])
        );
        assert!(m.retain);
        handle.stop().expect("stop");
    }
    // Without `persistence` an embedded broker keeps nothing.
    let broker = Broker::builder().port(0).build();
    assert!(!broker.config().persistence.is_on(false));
}

#[test]
fn retained_mode_keeps_retained_messages_only() {
    if skip() {
        return;
    }
    let dir = TempDir::new("persist-retained-mode");
    let broker = start(&dir, &["persistence_mode retained"]);
    let (mut s, _) = persistent(broker.port, "sink");
    s.send(&frame::subscribe(1, &[("m/#", 1)]));
    s.expect(ptype::SUBACK);
    drop(s);
    let mut p = RawClient::connect(broker.port, "pub");
    p.send(&frame::publish("m/kept", b"retained", 1, true, false, 1));
    p.expect(ptype::PUBACK);
    drop(p);
    drop(broker);

    let broker = start(&dir, &["persistence_mode retained"]);
    let (mut s, present) = persistent(broker.port, "sink");
    assert!(!present, "sessions are not kept in retained mode");
    s.send(&frame::subscribe(1, &[("m/#", 1)]));
    s.expect(ptype::SUBACK);
    let m = s.expect(ptype::PUBLISH).publish();
    assert_eq!(m.payload_str(), "retained");
    assert!(m.retain);
}
