//! Hostile clients over loopback. Each test starts its own boxmq child
//! (small limits from a config file), abuses it one way, checks the
//! documented reaction (src/limits.rs), and checks that a well-behaved
//! client connected alongside still gets its messages. Each is bounded in
//! time (a few seconds) and in count.

mod abuse_support;

use std::io::Write;
use std::time::{Duration, Instant};

use abuse_support::{Broker, Client, Good, publish_bytes, subscribe_bytes, wait_closed};
use boxmq::codec::QoS;

const SEC: Duration = Duration::from_secs(1);

/// A client that never sends CONNECT is closed after connect_timeout.
#[test]
fn silent_client_closed_after_connect_timeout() {
    let broker = Broker::start("connect_timeout 1");
    let mut good = Good::new(&broker);
    let mut silent = broker.raw();
    let start = Instant::now();
    assert!(wait_closed(&mut silent, 4 * SEC), "not closed");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "closed too early: {took:?}"
    );
    good.round_trip();
}

/// Slowloris: one byte of a CONNECT a second. The connect timeout counts
/// from the accept, not from the last byte, so it still closes in time.
#[test]
fn slowloris_connect_closed_by_connect_timeout() {
    let broker = Broker::start("connect_timeout 2");
    let mut good = Good::new(&broker);
    let mut slow = broker.raw();
    let connect = abuse_support::connect_bytes("slowloris", 0, None);
    let start = Instant::now();
    let mut closed = false;
    for b in connect.iter().take(connect.len() - 1) {
        if slow.write_all(&[*b]).is_err() || wait_closed(&mut slow, SEC) {
            closed = true;
            break;
        }
    }
    let took = start.elapsed();
    assert!(closed, "slowloris still open after {took:?}");
    assert!(
        took >= Duration::from_millis(1900) && took < 4 * SEC,
        "closed after {took:?}, connect_timeout is 2 s"
    );
    good.round_trip();
}

/// A remaining length announcing 256 MB is refused from the fixed header:
/// closed at once, nothing buffered, before and after CONNECT.
#[test]
fn huge_remaining_length_closed_at_once() {
    let broker = Broker::start("");
    let mut good = Good::new(&broker);
    let rss_before = broker.rss_kib();
    // Before CONNECT: a CONNECT announcing 268,435,455 bytes.
    let mut raw = broker.raw();
    raw.write_all(&[0x10, 0xFF, 0xFF, 0xFF, 0x7F])
        .expect("write");
    let _ = raw.write_all(&[0u8; 4096]);
    let start = Instant::now();
    assert!(wait_closed(&mut raw, 2 * SEC), "not closed");
    assert!(start.elapsed() < SEC, "took {:?}", start.elapsed());
    // After CONNECT: a PUBLISH announcing the same, with a will.
    let mut c = Client::connect(&broker, "huge", 0, Some(("good/will", b"huge gone")));
    c.send(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x01, b'x']);
    let _ = c.stream.write_all(&[0u8; 64 * 1024]);
    assert!(c.closed_within(2 * SEC), "not closed");
    // A protocol error, not a clean DISCONNECT: the will goes out.
    let will = good.client.recv_publish("good/will", 2 * SEC);
    assert_eq!(will.as_deref(), Some(&b"huge gone"[..]));
    let grown = broker.rss_kib().saturating_sub(rss_before);
    assert!(grown < 1024, "RSS grew by {grown} KiB");
    good.round_trip();
}

/// A packet over max_packet_size closes the connection; the good
/// subscriber never sees it.
#[test]
fn packet_over_max_packet_size_closed() {
    let broker = Broker::start("max_packet_size 1024");
    let mut good = Good::new(&broker);
    let mut c = broker.client("big");
    c.send(&publish_bytes(
        "good/big",
        &[b'x'; 2000],
        QoS::AtMostOnce,
        0,
    ));
    assert!(c.closed_within(2 * SEC), "not closed");
    // Just under the limit passes.
    let mut ok = broker.client("fits");
    ok.publish("good/fits", &[b'y'; 1000], QoS::AtMostOnce);
    assert_eq!(
        good.client
            .recv_publish("good/fits", 2 * SEC)
            .map(|p| p.len()),
        Some(1000),
        "the 1000-byte message (after no 2000-byte one)"
    );
    good.round_trip();
}

/// Connections past max_connections are accepted and closed at once; the
/// ones within the limit and the good client are not affected.
#[test]
fn connection_flood_past_max_connections() {
    let broker = Broker::start("max_connections 8\nconnect_timeout 10");
    let mut good = Good::new(&broker);
    let mut flood: Vec<_> = (0..40).map(|_| broker.raw()).collect();
    let mut open = 0;
    let mut closed = 0;
    for s in &mut flood {
        if wait_closed(s, Duration::from_millis(150)) {
            closed += 1;
        } else {
            open += 1;
        }
    }
    assert_eq!(open, 7, "8 allowed, the good client holds one");
    assert_eq!(closed, 33);
    good.round_trip();
    // Room again once the flood goes away.
    drop(flood);
    std::thread::sleep(Duration::from_millis(200));
    let mut again = broker.client("after-flood");
    assert_eq!(again.subscribe(&["x"], QoS::AtMostOnce), [0]);
    good.round_trip();
}

/// A subscriber that never reads while publishers flood it: its queue is
/// capped (max_queued_messages, max_output_buffer), the broker's RSS stays
/// bounded, and a subscriber that reads gets every message.
#[test]
fn slow_consumer_is_capped() {
    const MESSAGES: usize = 12_000;
    const PAYLOAD: usize = 1024;
    let broker = Broker::start("max_queued_messages 100\nmax_output_buffer 65536");
    let mut good = Good::new(&broker);
    // The slow one: QoS 1 subscription, never reads.
    let mut slow = broker.client("slow");
    assert_eq!(slow.subscribe(&["flood/#"], QoS::AtLeastOnce), [1]);
    let rss_before = broker.rss_kib();
    let mut reader = broker.client("reader");
    assert_eq!(reader.subscribe(&["flood/#"], QoS::AtMostOnce), [0]);
    let mut publisher = broker.client("publisher");
    let payload = vec![b'p'; PAYLOAD];
    let mut got = 0;
    let mut peak = rss_before;
    // Batches of 32 KiB, each read by `reader` before the next: the
    // reader is never the slow one.
    for batch in 0..MESSAGES / 32 {
        let mut bytes = Vec::new();
        for i in 0..32 {
            let qos = if i % 2 == 0 {
                QoS::AtMostOnce
            } else {
                QoS::AtLeastOnce
            };
            bytes.extend(publish_bytes("flood/x", &payload, qos, (i + 1) as u16));
        }
        publisher.send(&bytes);
        for _ in 0..32 {
            assert!(
                reader.recv_publish("flood/x", 5 * SEC).is_some(),
                "reader lost a message after {got}"
            );
            got += 1;
        }
        if batch % 64 == 0 {
            peak = peak.max(broker.rss_kib());
            // PUBACKs for the publisher: read and drop them.
            let _ = publisher.recv(Duration::from_millis(1));
        }
    }
    peak = peak.max(broker.rss_kib());
    assert_eq!(got, MESSAGES - MESSAGES % 32);
    let grown = peak.saturating_sub(rss_before);
    eprintln!(
        "slow consumer: {} MiB published, broker RSS {rss_before} -> peak {peak} KiB (+{grown})",
        MESSAGES * PAYLOAD / (1024 * 1024)
    );
    assert!(grown < 8 * 1024, "broker RSS grew by {grown} KiB");
    good.round_trip();
    drop(slow);
}

/// Thousands of subscriptions from one client: the first
/// max_subscriptions_per_session are granted, the rest get 0x80. Filters
/// and names deeper than max_topic_levels: filter refused with 0x80,
/// PUBLISH closes the connection.
#[test]
fn subscription_and_topic_depth_limits() {
    let broker = Broker::start("max_subscriptions_per_session 50\nmax_topic_levels 8");
    let mut good = Good::new(&broker);
    let mut c = broker.client("many");
    let mut granted = 0;
    let mut refused = 0;
    for batch in 0..20 {
        let filters: Vec<String> = (0..100).map(|i| format!("many/{batch}/{i}")).collect();
        let refs: Vec<&str> = filters.iter().map(String::as_str).collect();
        for code in c.subscribe(&refs, QoS::AtMostOnce) {
            match code {
                0 => granted += 1,
                0x80 => refused += 1,
                other => panic!("SUBACK code {other:#x}"),
            }
        }
    }
    assert_eq!((granted, refused), (50, 1950));
    // Re-subscribing to a granted filter replaces it: still granted.
    assert_eq!(c.subscribe(&["many/0/0"], QoS::AtLeastOnce), [1]);

    // At the level limit: granted. Past it, in SUBSCRIBE or in PUBLISH:
    // the connection is closed (Mosquitto's answer at its own limit).
    let mut d = broker.client("deep");
    assert_eq!(d.subscribe(&["a/b/c/d/e/f/g/+"], QoS::AtMostOnce), [0]);
    d.publish("a/b/c/d/e/f/g/h/i", b"too deep", QoS::AtMostOnce);
    assert!(d.closed_within(2 * SEC), "PUBLISH on a 9-level topic");
    let mut e = broker.client("deep2");
    e.send(&subscribe_bytes(1, &["a/b/c/d/e/f/g/h/+"], QoS::AtMostOnce));
    assert!(e.closed_within(2 * SEC), "SUBSCRIBE to a 9-level filter");
    let mut f = broker.client("deep3");
    let long = "a/".repeat(2000) + "a";
    f.send(&subscribe_bytes(1, &[&long], QoS::AtMostOnce));
    assert!(f.closed_within(2 * SEC), "2001-level filter");
    good.round_trip();
}

/// Garbage after a valid CONNECT: closed, and the will is published.
#[test]
fn garbage_after_connect_closes_and_publishes_will() {
    let broker = Broker::start("");
    let mut good = Good::new(&broker);
    let mut c = Client::connect(&broker, "garbage", 0, Some(("good/will", b"garbage gone")));
    c.send(&[0x00, 0xDE, 0xAD, 0xBE, 0xEF, 0x13, 0x37]);
    assert!(c.closed_within(2 * SEC), "not closed");
    assert_eq!(
        good.client.recv_publish("good/will", 2 * SEC).as_deref(),
        Some(&b"garbage gone"[..])
    );
    good.round_trip();
}

/// A half-open client (keepalive 1, then silence without closing): closed
/// after 1.5 x keepalive, and its will is published.
#[test]
fn half_open_client_closed_and_will_published() {
    let broker = Broker::start("");
    let mut good = Good::new(&broker);
    let start = Instant::now();
    let mut c = Client::connect(&broker, "halfopen", 1, Some(("good/will", b"offline")));
    assert_eq!(
        good.client.recv_publish("good/will", 4 * SEC).as_deref(),
        Some(&b"offline"[..])
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1400) && took < 3 * SEC,
        "will after {took:?}, keepalive 1 s"
    );
    assert!(c.closed_within(SEC), "connection not closed");
    good.round_trip();
}

/// Finding 2 over TCP: a client that sends PINGREQs without reading the
/// PINGRESPs is paused once its answers pass max_output_buffer, so the
/// broker's RSS does not grow with what the client sends.
#[test]
fn pingreq_flood_without_reading() {
    let broker = Broker::start("max_output_buffer 65536");
    let mut good = Good::new(&broker);
    let mut c = broker.client("pinger");
    let rss_before = broker.rss_kib();
    let pings = [0xC0u8, 0x00].repeat(1024 * 1024);
    for _ in 0..8 {
        // 16 MiB in all, none of the answers read.
        if !c.try_send(&pings) {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let grown = broker.rss_kib().saturating_sub(rss_before);
    assert!(grown < 4 * 1024, "broker RSS grew by {grown} KiB");
    good.round_trip();
}
