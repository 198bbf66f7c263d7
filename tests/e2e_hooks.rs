//! Application hooks end to end (docs/EMBEDDING.md, "Application hooks"):
//! the embedding API's `on_connect`, `on_publish`, `on_subscribe` and
//! `Handle::events()` with real clients (Debian's mosquitto clients and a
//! raw socket client). Everything on 127.0.0.1 with port 0, every wait
//! bounded.

mod embed_util;

use std::collections::{BTreeSet, HashMap};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use boxmq::codec::{self, Connect, Packet, Properties, ProtocolVersion};
use boxmq::{Broker, Decision, EventKind, QoS};
use embed_util::{Got, Raw, WAIT, addr};

fn mosquitto_available() -> bool {
    let ok = Command::new("mosquitto_pub")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        eprintln!("mosquitto clients not installed; skipping");
    }
    ok
}

/// `mosquitto_pub` as button `user`; whether it succeeded.
fn press(port: u16, user: &str, pass: &str, topic: &str, payload: &str) -> bool {
    Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args([
            "-i", user, "-u", user, "-P", pass, "-t", topic, "-m", payload,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A CONNECT from a raw socket; the CONNACK code, or `None` if the broker
/// closed without one.
fn connack_code(at: SocketAddr, client_id: &str, username: Option<&str>) -> Option<u8> {
    let mut s = TcpStream::connect(at).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut out = Vec::new();
    Packet::Connect(Connect {
        protocol: ProtocolVersion::V311,
        clean_start: true,
        keep_alive: 0,
        properties: Properties::EMPTY,
        client_id,
        will: None,
        username,
        password: None,
    })
    .encode(ProtocolVersion::V311, &mut out);
    std::io::Write::write_all(&mut s, &out).expect("write");
    let mut buf = [0u8; 4];
    std::io::Read::read_exact(&mut s, &mut buf).ok()?;
    match codec::decode(&buf, ProtocolVersion::V311, 1024) {
        Ok(Some((Packet::Connack(c), _))) => Some(c.code),
        _ => None,
    }
}

/// The payload a dashboard takes on `shellies/#`: a JSON object or array
/// (enough of a check for this application; it has no JSON parser).
fn looks_like_json(payload: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(payload) else {
        return false;
    };
    let t = text.trim();
    (t.starts_with('{') && t.ends_with('}')) || (t.starts_with('[') && t.ends_with(']'))
}

#[test]
fn dashboard_lets_known_buttons_in_refuses_non_json_and_shows_who_is_connected() {
    if !mosquitto_available() {
        return;
    }
    // The dashboard's own user table, not a password file.
    let users: Arc<HashMap<&str, &str>> = Arc::new(
        [("button-kitchen", "k1tchen"), ("button-door", "d00r")]
            .into_iter()
            .collect(),
    );
    let table = users.clone();
    let mut broker = Broker::builder()
        .port(0)
        .on_connect(move |req: &boxmq::ConnectRequest| {
            let known = req
                .username
                .as_deref()
                .and_then(|u| table.get(u).map(|p| (u, p)));
            match (known, req.password.as_deref()) {
                (Some((_, pass)), Some(given)) if pass.as_bytes() == given => Decision::Accept,
                (Some(_), _) => Decision::BadCredentials,
                (None, _) => Decision::Refuse,
            }
        })
        .on_publish(|msg: &boxmq::PublishRequest| {
            !msg.topic.starts_with("shellies/") || looks_like_json(&msg.payload)
        })
        .build();
    let handle = broker.start().expect("start");
    let port = addr(&handle).port();
    let events = handle.events();
    let app = handle.client("dashboard").expect("in-process client");
    let presses = app.subscribe("shellies/#", QoS::AtLeastOnce).expect("sub");

    // A known button's press reaches the dashboard.
    let json = r#"{"event":"S","event_cnt":1}"#;
    assert!(press(
        port,
        "button-kitchen",
        "k1tchen",
        "shellies/kitchen/input_event/0",
        json
    ));
    let m = presses.recv_timeout(WAIT).expect("the press");
    assert_eq!(m.payload, json.as_bytes());
    // An unknown one and a wrong password are refused (CONNACK 0x05 and
    // 0x04: mosquitto_pub fails).
    assert!(!press(
        port,
        "button-garage",
        "x",
        "shellies/garage/input_event/0",
        json
    ));
    assert!(!press(
        port,
        "button-door",
        "wrong",
        "shellies/door/input_event/0",
        json
    ));
    // A known button's non-JSON payload is acknowledged (QoS 1, so
    // mosquitto_pub succeeds) and not routed.
    assert!(press(
        port,
        "button-door",
        "d00r",
        "shellies/door/input_event/0",
        "S"
    ));
    assert!(press(
        port,
        "button-door",
        "d00r",
        "shellies/door/input_event/0",
        json
    ));
    let m = presses.recv_timeout(WAIT).expect("the JSON press");
    assert_eq!(
        m.payload,
        json.as_bytes(),
        "the non-JSON one was not routed"
    );

    // Connected buttons from the events: one that stays connected...
    let mut door = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args(["-i", "button-door", "-u", "button-door", "-P", "d00r"])
        .args(["-t", "shellies/door/command"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto_sub");
    let mut connected: BTreeSet<String> = BTreeSet::new();
    let mut seen = Vec::new();
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let Some(e) = events.recv_timeout(Duration::from_millis(100)) else {
            if connected.contains("button-door") {
                break;
            }
            continue;
        };
        seen.push((e.kind, e.client_id.clone(), e.topic.clone()));
        match e.kind {
            EventKind::Connected => {
                connected.insert(e.client_id);
            }
            EventKind::Disconnected => {
                connected.remove(&e.client_id);
            }
            _ => {}
        }
    }
    let _ = door.kill();
    let _ = door.wait();
    assert_eq!(
        connected.iter().collect::<Vec<_>>(),
        vec!["button-door"],
        "{seen:?}"
    );
    assert!(
        seen.contains(&(
            EventKind::Subscribed,
            "button-door".into(),
            Some("shellies/door/command".into())
        )),
        "{seen:?}"
    );
    // The refused clients never connected.
    assert!(
        !seen.iter().any(|(_, c, _)| c == "button-garage"),
        "{seen:?}"
    );
    // ...and is gone once its process is.
    let mut gone = None;
    while let Some(e) = events.recv_timeout(WAIT) {
        if e.kind == EventKind::Disconnected && e.client_id == "button-door" {
            gone = e.reason;
            break;
        }
    }
    assert_eq!(gone.as_deref(), Some("connection lost"));
    assert_eq!(events.lost(), 0);
    handle.stop().expect("stop");
}

#[test]
fn a_two_second_hook_does_not_delay_other_clients() {
    // Four slow connects at once (more than the pool's idle workers) while
    // 100 messages/s flow between two connected clients, each PUBLISH
    // through an accept-all on_publish.
    let slow_calls = Arc::new(AtomicUsize::new(0));
    let counter = slow_calls.clone();
    let mut broker = Broker::builder()
        .port(0)
        .on_connect(move |req: &boxmq::ConnectRequest| {
            if req.client_id.starts_with("slow") {
                counter.fetch_add(1, Ordering::SeqCst);
                thread::sleep(Duration::from_secs(2));
            }
            true
        })
        .on_publish(|_: &boxmq::PublishRequest| true)
        .build();
    let handle = broker.start().expect("start");
    let at = addr(&handle);
    let mut sub = Raw::connect(at, "fast-sub");
    assert_eq!(sub.subscribe("lat", QoS::AtMostOnce), vec![0]);
    let mut publisher = Raw::connect(at, "fast-pub");

    let slow: Vec<_> = (0..4)
        .map(|i| {
            thread::spawn(move || {
                let t = Instant::now();
                let code = connack_code(at, &format!("slow-{i}"), None);
                (code, t.elapsed())
            })
        })
        .collect();
    assert!(
        embed_util::wait_until(|| slow_calls.load(Ordering::SeqCst) == 4),
        "the slow hooks run"
    );
    let started = Instant::now();
    let reader = thread::spawn(move || {
        let mut latencies = Vec::new();
        while latencies.len() < 300 {
            match sub.recv() {
                Some(Got::Publish { payload, .. }) => {
                    let sent = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
                    let now = u64::try_from(started.elapsed().as_micros()).expect("fits");
                    latencies.push(now.saturating_sub(sent));
                }
                Some(_) => {}
                None => break,
            }
        }
        latencies
    });
    // 300 messages, one every 10 ms: 3 s, past the slow hooks' 2 s.
    for i in 0..300u64 {
        let due = Duration::from_millis(i * 10);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            thread::sleep(wait);
        }
        let sent = u64::try_from(started.elapsed().as_micros()).expect("fits");
        publisher.publish("lat", &sent.to_le_bytes(), QoS::AtMostOnce, false);
    }
    let mut latencies = reader.join().expect("reader");
    assert_eq!(latencies.len(), 300, "every message arrived");
    latencies.sort_unstable();
    let p50 = latencies[latencies.len() / 2];
    let p99 = latencies[latencies.len() * 99 / 100];
    let max = latencies[latencies.len() - 1];
    eprintln!(
        "latency with four 2 s on_connect hooks running: p50 {p50} us, p99 {p99} us, max {max} us"
    );
    assert!(p99 < 200_000, "p99 {p99} us");
    for s in slow {
        let (code, took) = s.join().expect("slow client");
        assert_eq!(code, Some(0), "accepted after its hook");
        assert!(took >= Duration::from_secs(2), "{took:?}");
        assert!(took < Duration::from_secs(4), "run concurrently: {took:?}");
    }
    handle.stop().expect("stop");
}

#[test]
fn a_hook_that_panics_refuses_and_the_broker_goes_on() {
    let mut broker = Broker::builder()
        .port(0)
        .on_connect(|req: &boxmq::ConnectRequest| {
            assert!(req.client_id != "evil", "the application's bug");
            true
        })
        .on_publish(|msg: &boxmq::PublishRequest| {
            if msg.topic == "boom" {
                panic!("on_publish failed");
            }
            true
        })
        .on_subscribe(|s: &boxmq::SubscribeRequest| !s.filter.starts_with("secret/"))
        .build();
    let handle = broker.start().expect("start");
    let at = addr(&handle);
    // [MQTT-3.2.2-5] refused CONNECT: CONNACK 0x05, then closed.
    assert_eq!(connack_code(at, "evil", None), Some(0x05));
    let mut sub = Raw::connect(at, "sub");
    // [MQTT-3.9.3-1] one return code per filter; 0x80 for the refused one.
    assert_eq!(sub.subscribe("secret/#", QoS::AtLeastOnce), vec![0x80]);
    assert_eq!(sub.subscribe("#", QoS::AtLeastOnce), vec![1]);
    let mut publisher = Raw::connect(at, "pub");
    // Acknowledged (3.1.1), not routed.
    publisher.publish("boom", b"x", QoS::AtLeastOnce, false);
    publisher.publish("fine", b"y", QoS::AtLeastOnce, false);
    let (topic, payload, _, _) = sub.recv_publish();
    assert_eq!((topic.as_str(), payload.as_slice()), ("fine", &b"y"[..]));
    handle.stop().expect("stop");
}

#[test]
fn a_verdict_that_does_not_come_in_time_refuses() {
    let mut broker = Broker::builder()
        .port(0)
        .hook_timeout(Duration::from_millis(300))
        .on_connect(|_: &boxmq::ConnectRequest| {
            thread::sleep(Duration::from_secs(1));
            true
        })
        .build();
    let handle = broker.start().expect("start");
    let t = Instant::now();
    assert_eq!(connack_code(addr(&handle), "late", None), Some(0x05));
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    handle.stop().expect("stop");
}

#[test]
fn on_connect_may_replace_the_password_file() {
    // allow_anonymous false would refuse a client without a user name; the
    // hook decides instead.
    let mut broker = Broker::builder()
        .port(0)
        .allow_anonymous(false)
        .on_connect_replaces_files(true)
        .on_connect(|req: &boxmq::ConnectRequest| req.client_id.starts_with("ok"))
        .build();
    let handle = broker.start().expect("start");
    assert_eq!(connack_code(addr(&handle), "ok-1", None), Some(0));
    assert_eq!(connack_code(addr(&handle), "nope", None), Some(0x05));
    handle.stop().expect("stop");
}
