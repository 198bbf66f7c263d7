//! Basic end-to-end behaviour: the Shelly Button1 device pattern, PING,
//! UNSUBSCRIBE, `$` topics, MQTT 3.1 clients, `max_connections`, and frames
//! split across or packed into TCP writes.

mod common;

use common::*;
use std::thread;
use std::time::{Duration, Instant};

/// Shelly Button1 firmware: connect with client id `shellybutton1-<MAC>`,
/// keepalive 60 and a will on `shellies/<id>/online`, publish one
/// `{"event":"S","event_cnt":N}` to `shellies/<id>/input_event/0`, disconnect.
/// All presses must reach a `shellies/+/input_event/0` subscriber
/// ([MQTT-4.7.1-3]: `+` matches exactly one level) and no will may fire,
/// since every button disconnects cleanly ([MQTT-3.14.4-3]).
#[test]
fn shelly_button1_presses_reach_wildcard_subscriber() {
    let b = TestBroker::start();
    let sub = MosqSub::start(
        b.port,
        &[
            "-v",
            "-t",
            "shellies/+/input_event/0",
            "-C",
            "10",
            "-W",
            "10",
        ],
    );
    let mut online = RawClient::connect(b.port, "online-watcher");
    online.subscribe_ok(&[("shellies/+/online", 1)]);

    let events = ["S", "L", "SS", "SSS", "S"];
    let mut expected = Vec::new();
    // Five buttons through mosquitto_pub.
    for (i, ev) in events.iter().enumerate() {
        let id = format!("shellybutton1-{:012X}", 0xE8DB_84A1_0000u64 + i as u64);
        let topic = format!("shellies/{id}/input_event/0");
        let will = format!("shellies/{id}/online");
        let payload = format!(r#"{{"event":"{ev}","event_cnt":{}}}"#, i + 1);
        mosquitto_pub(
            b.port,
            &[
                "-i",
                &id,
                "-k",
                "60",
                "--will-topic",
                &will,
                "--will-payload",
                "false",
                "--will-retain",
                "--will-qos",
                "1",
                "-t",
                &topic,
                "-m",
                &payload,
            ],
        );
        expected.push(format!("{topic} {payload}"));
    }
    // Five more, hand-built.
    for (i, ev) in events.iter().enumerate() {
        let id = format!("shellybutton1-{:012X}", 0x4C75_25B3_0000u64 + i as u64);
        let topic = format!("shellies/{id}/input_event/0");
        let opts = ConnectOpts::new(&id).keepalive(60).will(
            &format!("shellies/{id}/online"),
            b"false",
            1,
            true,
        );
        let (mut c, _) = RawClient::connect_opts(b.port, &opts);
        let payload = format!(r#"{{"event":"{ev}","event_cnt":{}}}"#, 10 + i);
        c.publish(&topic, payload.as_bytes(), 0, false);
        c.disconnect();
        expected.push(format!("{topic} {payload}"));
    }

    let out = sub.finish(Duration::from_secs(10));
    let mut got = out.messages.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "subscriber output:\n{}", out.raw);
    assert!(out.status.is_some_and(|s| s.success()), "{}", out.raw);
    // No will was published (and none retained).
    online.expect_nothing(Duration::from_millis(200));
}

/// [MQTT-3.12.4-1] The Server MUST send a PINGRESP in response to a PINGREQ.
#[test]
fn pingreq_gets_pingresp() {
    let b = TestBroker::start();
    let mut c = RawClient::connect(b.port, "pinger");
    for _ in 0..3 {
        c.ping();
    }
    c.disconnect();
}

/// [MQTT-3.10.4-4] UNSUBACK carries the UNSUBSCRIBE's packet id;
/// [MQTT-3.10.4-2] after it the Server stops delivering for that filter.
#[test]
fn unsubscribe_acks_with_same_id_and_stops_delivery() {
    let b = TestBroker::start();
    let mut sub = RawClient::connect(b.port, "unsub-sub");
    sub.subscribe_ok(&[("u/t", 0), ("u/marker", 0)]);
    let mut publ = RawClient::connect(b.port, "unsub-pub");

    publ.publish("u/t", b"before", 1, false);
    assert_eq!(sub.recv_publish().payload_str(), "before");

    sub.unsubscribe(0x1234, &["u/t"]);

    publ.publish("u/t", b"after", 1, false);
    publ.publish("u/marker", b"marker", 1, false);
    let p = sub.recv_publish();
    assert_eq!(
        (p.topic.as_str(), p.payload_str().as_str()),
        ("u/marker", "marker"),
        "a message for the removed subscription was delivered"
    );
    sub.expect_nothing(Duration::from_millis(100));
}

/// [MQTT-4.7.2-1] Filters starting with a wildcard must not match topic
/// names beginning with `$`; an explicit `$foo/#` does.
#[test]
fn dollar_topics_not_matched_by_leading_wildcards() {
    let b = TestBroker::start();
    let mut hash = RawClient::connect(b.port, "dollar-hash");
    hash.subscribe_ok(&[("#", 0)]);
    let mut plus = RawClient::connect(b.port, "dollar-plus");
    plus.subscribe_ok(&[("+/bar", 0)]);
    let mut explicit = RawClient::connect(b.port, "dollar-explicit");
    explicit.subscribe_ok(&[("$foo/#", 0)]);

    let mut publ = RawClient::connect(b.port, "dollar-pub");
    publ.publish("$foo/bar", b"dollar", 1, false);
    publ.publish("m/bar", b"marker", 1, false);

    let p = explicit.recv_publish();
    assert_eq!(
        (p.topic.as_str(), p.payload_str().as_str()),
        ("$foo/bar", "dollar")
    );
    for c in [&mut hash, &mut plus] {
        // `#` and `+/bar` match no $-topic (not even the broker's $SYS), so
        // the first message these see is the marker.
        let p = c.recv_publish();
        assert_eq!(
            (p.topic.as_str(), p.payload_str().as_str()),
            ("m/bar", "marker"),
            "[{}] a $-topic matched a leading wildcard",
            c.name
        );
    }
}

/// MQTT 3.1 (`MQIsdp`, level 3) publisher to an MQTT 3.1.1 subscriber.
/// A 3.1.1 server may keep serving 3.1 ([MQTT-3.1.2-1] lets it process
/// other protocol names "in accordance with some other specification");
/// boxmq supports 3.1 explicitly.
#[test]
fn mqtt31_publisher_reaches_mqtt311_subscriber() {
    let b = TestBroker::start();
    let sub = MosqSub::start(
        b.port,
        &[
            "-V", "mqttv311", "-v", "-t", "v31/#", "-q", "1", "-C", "2", "-W", "10",
        ],
    );
    mosquitto_pub(
        b.port,
        &[
            "-V",
            "mqttv31",
            "-q",
            "1",
            "-t",
            "v31/tool",
            "-m",
            "hello from 3.1",
        ],
    );
    // Same with a hand-built MQIsdp CONNECT.
    let (mut c, sp) = RawClient::connect_opts(b.port, &ConnectOpts::new("raw31").v31());
    assert!(!sp);
    c.publish("v31/raw", b"raw 3.1", 1, false);
    c.disconnect();

    let out = sub.finish(Duration::from_secs(10));
    assert_eq!(
        out.messages,
        vec![
            "v31/tool hello from 3.1".to_string(),
            "v31/raw raw 3.1".to_string()
        ],
        "{}",
        out.raw
    );
}

/// The connection bound (boxmq `max_connections`, Mosquitto's listener
/// `max_connections`): with 3 allowed, a 4th connection gets no successful
/// CONNACK and is closed; the 3 keep working; once one leaves, a new client
/// is accepted.
#[test]
fn max_connections_refuses_the_extra_client() {
    let b = TestBroker::start_with_config(&["max_connections 3"]);
    let mut clients: Vec<RawClient> = (0..3)
        .map(|i| RawClient::connect(b.port, &format!("mc-{i}")))
        .collect();
    clients[0].subscribe_ok(&[("mc/t", 1)]);

    let mut extra = RawClient::tcp(b.port);
    extra.name = "mc-extra".into();
    let _ = extra.try_send(&frame::connect(&ConnectOpts::new("mc-extra")));
    let got = extra.expect_closed(Duration::from_secs(5));
    assert!(
        !got.iter()
            .any(|p| p.ptype() == ptype::CONNACK && p.body.get(1) == Some(&0)),
        "the 4th connection was accepted: {got:?}"
    );

    for c in clients.iter_mut() {
        c.ping();
    }
    clients[2].publish("mc/t", b"still here", 1, false);
    assert_eq!(clients[0].recv_publish().payload_str(), "still here");

    clients.pop().unwrap().disconnect();
    // The slot is free once the broker has seen the close; allow it a moment.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut newcomer = loop {
        let mut c = RawClient::tcp(b.port);
        let _ = c.try_send(&frame::connect(&ConnectOpts::new("mc-new")));
        match c.try_recv(Duration::from_secs(2)) {
            Ok(p) if p.ptype() == ptype::CONNACK && p.body.get(1) == Some(&0) => break c,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "no new client accepted after one left: {other:?}"
                );
                thread::sleep(Duration::from_millis(50));
            }
        }
    };
    newcomer.ping();
    clients[0].ping();
}

/// A packet may arrive one byte per TCP segment (MQTT 3.1.1 §4.2: the
/// transport is an ordered byte stream; packet boundaries come only from the
/// remaining length, §2.2.3).
#[test]
fn frames_split_into_single_bytes() {
    let b = TestBroker::start();
    let mut sub = RawClient::connect(b.port, "split-sub");
    sub.subscribe_ok(&[("split/t", 1)]);

    let mut c = RawClient::tcp(b.port);
    let pause = Duration::from_millis(2);
    c.send_bytewise(&frame::connect(&ConnectOpts::new("split-pub")), pause);
    let ack = c.expect(ptype::CONNACK);
    assert_eq!(ack.body, vec![0, 0]);
    let payload = vec![b'x'; 200]; // remaining length needs two bytes
    c.send_bytewise(
        &frame::publish("split/t", &payload, 1, false, false, 42),
        pause,
    );
    assert_eq!(c.expect(ptype::PUBACK).packet_id(), 42);

    let p = sub.recv_publish();
    assert_eq!((p.topic.as_str(), p.payload), ("split/t", payload));
}

/// Several complete packets in one TCP write are all processed, in order.
#[test]
fn several_frames_in_one_write() {
    let b = TestBroker::start();
    let mut c = RawClient::tcp(b.port);
    let mut burst = frame::connect(&ConnectOpts::new("burst"));
    burst.extend(frame::subscribe(1, &[("burst/t", 1)]));
    burst.extend(frame::publish("burst/t", b"one", 1, false, false, 2));
    burst.extend(frame::publish("burst/t", b"two", 1, false, false, 3));
    burst.extend(frame::pingreq());
    c.send(&burst);

    assert_eq!(c.expect(ptype::CONNACK).body, vec![0, 0]);
    assert_eq!(c.expect(ptype::SUBACK).body, vec![0, 1, 1]);
    // PUBACKs, the echoed messages and the PINGRESP may interleave.
    let mut pubacks = Vec::new();
    let mut msgs = Vec::new();
    let mut pingresp = false;
    while pubacks.len() < 2 || msgs.len() < 2 || !pingresp {
        let p = c.recv();
        match p.ptype() {
            ptype::PUBACK => pubacks.push(p.packet_id()),
            ptype::PINGRESP => pingresp = true,
            ptype::PUBLISH => {
                let m = p.publish();
                c.ack(&m);
                msgs.push(m.payload_str());
            }
            _ => panic!("unexpected {p:?}"),
        }
    }
    assert_eq!(pubacks, vec![2, 3]);
    assert_eq!(msgs, vec!["one", "two"]);

    // And two PUBLISHes from another client in one write.
    let mut other = RawClient::connect(b.port, "burst-2");
    let mut two = frame::publish("burst/t", b"three", 0, false, false, 0);
    two.extend(frame::publish("burst/t", b"four", 0, false, false, 0));
    other.send(&two);
    assert_eq!(c.recv_publish().payload_str(), "three");
    assert_eq!(c.recv_publish().payload_str(), "four");
    other.disconnect();
}
