//! Mosquitto's defaults on the real binary, bounded by the memory budget
//! (docs/LIMITS.md, "The memory budget"; issue 28): on the default config a
//! 1 MiB and a 16 MiB QoS 1 PUBLISH reach a subscriber, a 16 MiB retained
//! message is kept, and 1,100 clients connect; with a small `memory_limit` a publisher past it is refused
//! while the other clients go on, and the broker's RSS stays within the
//! documented bound.

mod abuse_support;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use abuse_support::{Broker, Good, Msg, publish_bytes};
use boxmq::codec::QoS;

const SEC: Duration = Duration::from_secs(1);
const MIB: usize = 1024 * 1024;

/// PUBACK's packet type.
const PUBACK: u8 = 4;

/// Publishes `payload` at QoS 1 from a thread (the broker reads it while
/// the subscriber reads its copy) and returns whether the PUBACK came.
fn publish_acked(broker: &Broker, client_id: &str, topic: &str, payload: Vec<u8>) -> bool {
    let mut p = broker.client(client_id);
    let frame = publish_bytes(topic, &payload, QoS::AtLeastOnce, 1);
    let writer = thread::spawn(move || {
        p.send(&frame);
        let deadline = Instant::now() + 60 * SEC;
        while Instant::now() < deadline {
            match p.recv(SEC) {
                Some(Msg::Other(PUBACK)) => return true,
                Some(_) => {}
                None if !p.closed_within(Duration::from_millis(1)) => {}
                None => return false,
            }
        }
        false
    });
    writer.join().expect("publisher thread")
}

#[test]
fn default_config_relays_1_mib_and_16_mib_qos1_publishes() {
    let broker = Broker::start("");
    let mut sub = broker.client("frigate-viewer");
    assert_eq!(sub.subscribe(&["frigate/#"], QoS::AtLeastOnce), [1]);
    for (size, topic) in [
        (MIB, "frigate/front/snapshot"),
        (16 * MIB, "frigate/back/recording"),
    ] {
        let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let reader = thread::spawn({
            let topic = topic.to_owned();
            move || {
                let got = sub.recv_publish(&topic, 60 * SEC);
                (sub, got)
            }
        });
        assert!(
            publish_acked(&broker, "camera", topic, payload.clone()),
            "no PUBACK for the {size}-byte message"
        );
        let (s, got) = reader.join().expect("subscriber thread");
        sub = s;
        assert!(got.as_deref() == Some(&payload[..]), "{size} bytes lost");
    }
}

/// A 16 MiB retained message on the default config is kept, not only
/// delivered: a subscriber arriving later gets it [MQTT-3.3.1-6].
#[test]
fn default_config_keeps_a_16_mib_retained_message() {
    let broker = Broker::start("");
    let payload: Vec<u8> = (0..16 * MIB).map(|i| (i % 253) as u8).collect();
    let mut p = broker.client("camera-retained");
    let mut frame = publish_bytes("frigate/door/snapshot", &payload, QoS::AtLeastOnce, 1);
    frame[0] |= 0x01; // RETAIN
    p.send(&frame);
    let deadline = Instant::now() + 60 * SEC;
    loop {
        assert!(
            Instant::now() < deadline,
            "no PUBACK for the retained message"
        );
        match p.recv(SEC) {
            Some(Msg::Other(PUBACK)) => break,
            Some(_) => {}
            None => assert!(
                !p.closed_within(Duration::from_millis(1)),
                "publisher closed"
            ),
        }
    }
    let mut late = broker.client("late-viewer");
    assert_eq!(late.subscribe(&["frigate/door/#"], QoS::AtLeastOnce), [1]);
    let got = late.recv_publish("frigate/door/snapshot", 60 * SEC);
    assert!(
        got.as_deref() == Some(&payload[..]),
        "retained 16 MiB not kept"
    );
}

#[test]
fn default_config_takes_1100_clients() {
    // This process holds a socket per client: raise its own open file
    // limit (the broker raises its own at start, as Mosquitto's -1 asks).
    let clients = 1100;
    boxmq::rlimit::ensure_nofile(clients as u64 + 200)
        .unwrap_or_else(|e| panic!("this test needs {clients} sockets: {e}"));
    let broker = Broker::start("");
    let mut good = Good::new(&broker);
    let mut held = Vec::with_capacity(clients);
    for i in 0..clients {
        // Client::connect checks CONNACK 0.
        held.push(broker.client(&format!("shelly-{i:04}")));
    }
    good.round_trip();
    // The first and the last are both still served.
    for c in [0, clients - 1] {
        held[c].send(&[0xC0, 0]);
        assert_eq!(held[c].recv(5 * SEC), Some(Msg::Other(13)), "PINGRESP");
    }
}

#[test]
fn a_publisher_past_a_small_budget_is_refused_and_memory_stays_bounded() {
    let budget = 8 * MIB;
    let mut broker = Broker::start(&format!("memory_limit {budget}"));
    let mut good = Good::new(&broker);
    // A subscriber that never reads: what is published for it stays.
    let mut slow = broker.client("slow");
    assert_eq!(slow.subscribe(&["big/#"], QoS::AtLeastOnce), [1]);
    let base = broker.rss_kib();
    // 1 MiB QoS 1 messages until the budget refuses one: the publisher is
    // closed (before that message's PUBACK), not the broker.
    let mut p = broker.client("camera");
    let frame = publish_bytes("big/x", &vec![b'b'; MIB], QoS::AtLeastOnce, 1);
    let mut sent = 0;
    while sent < 64 && p.try_send(&frame) {
        sent += 1;
        while p.recv(Duration::from_millis(20)).is_some() {}
    }
    assert!(p.closed_within(5 * SEC), "publisher not refused");
    assert!(sent < 64, "{sent} MiB taken with a budget of 8 MiB");
    // A PUBLISH announcing 16 MiB is refused from its fixed header.
    let mut q = broker.client("camera2");
    let big = publish_bytes("big/y", &vec![b'c'; 16 * MIB], QoS::AtLeastOnce, 1);
    let _ = q.stream.write_all(&big[..64 * 1024]);
    assert!(q.closed_within(2 * SEC), "16 MiB announce not refused");
    // Everyone else goes on, small QoS 1 messages included.
    good.round_trip();
    assert!(broker.alive());
    let grown_kib = broker.hwm_kib().saturating_sub(base);
    // docs/LIMITS.md: the budget, plus one frame being handled and one
    // sent past it, plus allocator slack (4 MiB).
    let bound_kib = (budget + 2 * MIB + 4 * MIB) as u64 / 1024;
    println!("8 MiB budget: {sent} MiB sent, VmHWM grew by {grown_kib} KiB (bound {bound_kib})");
    assert!(
        grown_kib <= bound_kib,
        "VmHWM grew by {grown_kib} KiB, over {bound_kib} KiB"
    );
    drop(slow);
}
