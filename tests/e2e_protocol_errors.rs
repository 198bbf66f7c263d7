//! Protocol violations close the offending connection and nothing else: after
//! each one a well-behaved client on the same broker still works.

mod common;

use common::*;
use std::time::Duration;

const CLOSE_WITHIN: Duration = Duration::from_secs(5);

/// Asserts that no successful CONNACK was among the packets seen.
fn assert_no_accepting_connack(got: &[Packet]) {
    assert!(
        !got.iter()
            .any(|p| p.ptype() == ptype::CONNACK && p.body.get(1) == Some(&0)),
        "the connection was accepted: {got:?}"
    );
}

/// [MQTT-3.1.0-1] the first packet from the client MUST be CONNECT; the
/// server closes the connection otherwise.
#[test]
fn first_packet_not_connect_closes() {
    let b = TestBroker::start();
    for (what, bytes) in [
        ("PINGREQ", frame::pingreq()),
        ("PUBLISH", frame::publish("x/y", b"z", 0, false, false, 0)),
        ("SUBSCRIBE", frame::subscribe(1, &[("x/#", 0)])),
    ] {
        let mut c = RawClient::tcp(b.port);
        c.name = format!("first-{what}");
        let _ = c.try_send(&bytes);
        let got = c.expect_closed(CLOSE_WITHIN);
        assert!(
            got.is_empty(),
            "{what} before CONNECT was answered: {got:?}"
        );
    }
    assert_broker_works(b.port);
}

/// [MQTT-3.1.0-2] a second CONNECT is a protocol violation: disconnect.
#[test]
fn second_connect_closes() {
    let b = TestBroker::start();
    let mut c = RawClient::connect(b.port, "twice");
    let _ = c.try_send(&frame::connect(&ConnectOpts::new("twice")));
    let got = c.expect_closed(CLOSE_WITHIN);
    assert_no_accepting_connack(&got);
    assert_broker_works(b.port);
}

/// [MQTT-3.1.2-2] an unsupported protocol level gets CONNACK 0x01
/// (unacceptable protocol level) and then the connection is closed.
#[test]
fn unsupported_protocol_level_gets_connack_1_and_close() {
    let b = TestBroker::start();
    let (mut c, ack) = RawClient::connect_with(b.port, &ConnectOpts::new("level6").level(6));
    assert_eq!(ack.return_code, 0x01, "{ack:?}");
    assert!(!ack.session_present, "[MQTT-3.2.2-4]");
    c.expect_closed(CLOSE_WITHIN);
    assert_broker_works(b.port);
}

/// [MQTT-3.1.2-3] the reserved connect flag MUST be 0, otherwise the server
/// disconnects the client.
#[test]
fn reserved_connect_flag_closes() {
    let b = TestBroker::start();
    let mut opts = ConnectOpts::new("reserved");
    opts.reserved_flag = true;
    let mut c = RawClient::tcp(b.port);
    let _ = c.try_send(&frame::connect(&opts));
    let got = c.expect_closed(CLOSE_WITHIN);
    assert_no_accepting_connack(&got);
    assert_broker_works(b.port);
}

/// [MQTT-3.3.2-2] the topic name in a PUBLISH MUST NOT contain wildcards.
#[test]
fn publish_to_wildcard_topic_closes() {
    let b = TestBroker::start();
    let mut watcher = RawClient::connect(b.port, "wild-watch");
    watcher.subscribe_ok(&[("#", 0)]);
    for (i, topic) in ["a/+/c", "a/#", "+", "#"].iter().enumerate() {
        let mut c = RawClient::connect(b.port, &format!("wild-{i}"));
        let _ = c.try_send(&frame::publish(topic, b"bad", 0, false, false, 0));
        c.expect_closed(CLOSE_WITHIN);
    }
    // Nothing was routed.
    let mut m = RawClient::connect(b.port, "wild-marker");
    m.publish("wild/marker", b"m", 1, false);
    assert_eq!(watcher.recv_publish().topic, "wild/marker");
    assert_broker_works(b.port);
}

/// [MQTT-3.8.1-1] SUBSCRIBE fixed-header flags MUST be 0010; any other
/// value is malformed and the server closes the connection.
#[test]
fn subscribe_with_wrong_header_flags_closes() {
    let b = TestBroker::start();
    for first in [0x80u8, 0x83, 0x8A] {
        let mut c = RawClient::connect(b.port, &format!("subflags-{first:02x}"));
        let _ = c.try_send(&frame::subscribe_with_header(first, 1, &[("ok/t", 0)]));
        let got = c.expect_closed(CLOSE_WITHIN);
        assert!(
            !got.iter().any(|p| p.ptype() == ptype::SUBACK),
            "SUBSCRIBE with header {first:#04x} was accepted: {got:?}"
        );
    }
    assert_broker_works(b.port);
}

/// [MQTT-1.5.3-1] ill-formed UTF-8 in a string closes the connection;
/// [MQTT-1.5.3-2] so does U+0000.
#[test]
fn invalid_utf8_topic_closes() {
    let b = TestBroker::start();
    let bad_topics: [&[u8]; 4] = [
        b"a/\xC3\x28",     // invalid continuation byte
        b"a/\xFF",         // never valid in UTF-8
        b"a/\xED\xA0\x80", // encoded surrogate U+D800
        b"a/\x00/b",       // U+0000
    ];
    for (i, t) in bad_topics.iter().enumerate() {
        let mut c = RawClient::connect(b.port, &format!("utf8-{i}"));
        let _ = c.try_send(&frame::publish_raw(0x00, t, 0, b"x"));
        c.expect_closed(CLOSE_WITHIN);
    }
    assert_broker_works(b.port);
}

/// [MQTT-3.3.1-4] a PUBLISH with both QoS bits set closes the connection.
#[test]
fn publish_qos3_closes() {
    let b = TestBroker::start();
    let mut c = RawClient::connect(b.port, "qos3");
    let _ = c.try_send(&frame::publish_raw(0x06, b"q/t", 1, b"x"));
    let got = c.expect_closed(CLOSE_WITHIN);
    assert!(got.is_empty(), "QoS 3 PUBLISH answered: {got:?}");
    assert_broker_works(b.port);
}

/// An invalid filter ([MQTT-4.7.1-2], [MQTT-4.7.1-3]) is never granted:
/// the connection is closed without SUBACK, as Mosquitto treats it (a
/// malformed packet), and the broker keeps serving others.
#[test]
fn invalid_filter_closes_the_connection() {
    let b = TestBroker::start();
    for (i, bad) in ["a/#/b", "sp+ort", ""].into_iter().enumerate() {
        let mut c = RawClient::connect(b.port, &format!("badfilter-{i}"));
        c.send(&frame::subscribe(9, &[("ok/t", 1), (bad, 0)]));
        match c.try_recv(CLOSE_WITHIN) {
            Ok(p) => panic!("{bad:?}: unexpected {p:?}"),
            Err(ReadEnd::Closed(_)) => {}
            Err(ReadEnd::Timeout) => panic!("{bad:?}: no close"),
        }
    }
    assert_broker_works(b.port);
}
