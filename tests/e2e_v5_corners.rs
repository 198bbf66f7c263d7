//! MQTT 5.0 corners end to end, on real sockets: topic aliases from the
//! broker to a client (raw frames and paho-mqtt 5.0), the broker's Receive
//! Maximum, and a QoS 0 PUBLISH with DUP set. docs/CONFORMANCE.md says what
//! boxmq chose where the specification leaves a choice, and why.

mod common;
#[path = "common/v5.rs"]
mod v5;

use boxmq::codec::{Property, PubRespKind};
use common::*;
use std::time::Duration;
use v5::*;

const CLOSE_WITHIN: Duration = Duration::from_secs(5);
const SHORT: Duration = Duration::from_millis(300);

const BUTTON: &str = "corners/shellies/shellybutton1-A4CF12F45A10/input_event/0";
const PLUG: &str = "corners/shellies/shellyplug-s-C45BBE/relay/0/power";
const DOOR: &str = "corners/shellies/shellydw2-483FDA/sensor/state";

/// Topic aliases from the broker (§3.3.2.3.4): a client announcing Topic
/// Alias Maximum 2 gets a topic's name with an alias once, then an empty
/// name with that alias, at every QoS; never an alias above 2
/// [MQTT-3.1.2-26] [MQTT-3.3.2-11]; with both taken, a new topic takes the
/// alias used least recently, named again. A client announcing none gets
/// names only [MQTT-3.1.2-27]. boxmq-only: Mosquitto 2.0.11 sends no
/// aliases.
#[test]
fn broker_names_a_topic_once_then_sends_its_alias() {
    if skip_unless_boxmq(
        "broker_names_a_topic_once_then_sends_its_alias",
        "Mosquitto 2.0.11 sends no topic aliases to clients",
    ) {
        return;
    }
    let b = TestBroker::start();
    let opts = V5Opts::new("corners-alias").prop(Property::TopicAliasMaximum(2));
    let (mut s, _) = V5Client::connect_opts(b.port, &opts);
    s.sub("corners/shellies/#", 2);
    let mut plain = V5Client::connect(b.port, "corners-plain");
    plain.sub("corners/shellies/#", 2);
    let mut p = V5Client::connect(b.port, "corners-pub");

    let sends = [
        (BUTTON, 0),
        (BUTTON, 1),
        (BUTTON, 2),
        (PLUG, 1),
        (BUTTON, 0),
        (DOOR, 1),
        (PLUG, 2),
    ];
    for (i, &(topic, q)) in sends.iter().enumerate() {
        p.publish_simple(topic, format!("{i}").as_bytes(), q, false);
    }
    let got: Vec<(String, Option<u16>, String, u8)> = (0..sends.len())
        .map(|_| {
            let m = s.recv_msg();
            (
                m.topic.clone(),
                m.props.topic_alias(),
                m.payload_str(),
                m.qos,
            )
        })
        .collect();
    let want = [
        (BUTTON, Some(1), "0", 0),
        ("", Some(1), "1", 1),
        ("", Some(1), "2", 2),
        (PLUG, Some(2), "3", 1),
        ("", Some(1), "4", 0),
        // Both taken; PLUG's alias is the one used least recently.
        (DOOR, Some(2), "5", 1),
        // PLUG lost its alias: named again, with BUTTON's (now the oldest).
        (PLUG, Some(1), "6", 2),
    ];
    let want: Vec<(String, Option<u16>, String, u8)> = want
        .iter()
        .map(|&(t, a, m, q)| (t.to_owned(), a, m.to_owned(), q))
        .collect();
    assert_eq!(got, want);
    for (i, &(topic, _)) in sends.iter().enumerate() {
        let m = plain.recv_msg();
        assert_eq!(
            (m.topic.as_str(), m.props.topic_alias(), m.payload_str()),
            (topic, None, format!("{i}")),
            "no Topic Alias Maximum, no alias"
        );
    }
}

/// Aliases belong to one network connection [MQTT-3.3.2-7]: an
/// unacknowledged QoS 1 message sent with an alias is sent again on the
/// next connection with its topic name (and DUP), and the client's new
/// aliases start from there. boxmq-only, as above.
#[test]
fn aliases_start_again_on_the_next_connection() {
    if skip_unless_boxmq(
        "aliases_start_again_on_the_next_connection",
        "Mosquitto 2.0.11 sends no topic aliases to clients",
    ) {
        return;
    }
    let b = TestBroker::start();
    let opts = V5Opts::new("corners-alias-again")
        .clean(false)
        .session_expiry(60)
        .prop(Property::TopicAliasMaximum(4));
    let (mut s, _) = V5Client::connect_opts(b.port, &opts);
    s.sub("corners/shellies/#", 1);
    let mut p = V5Client::connect(b.port, "corners-pub-again");
    p.publish_simple(BUTTON, b"first", 1, false);
    p.publish_simple(BUTTON, b"second", 1, false);
    let first = s.recv_msg();
    assert_eq!(
        (first.topic.as_str(), first.props.topic_alias()),
        (BUTTON, Some(1))
    );
    // Not acknowledged: in flight when the connection goes.
    let second = s.recv_msg_noack();
    assert_eq!(
        (second.topic.as_str(), second.props.topic_alias()),
        ("", Some(1))
    );
    s.drop_connection();

    let (mut s, ack) = V5Client::connect_opts(b.port, &opts);
    assert!(ack.session_present, "{ack:?}");
    let again = s.recv_msg();
    assert_eq!(
        (
            again.topic.as_str(),
            again.props.topic_alias(),
            again.dup,
            again.payload_str().as_str()
        ),
        (BUTTON, Some(1), true, "second")
    );
    p.publish_simple(BUTTON, b"third", 1, false);
    let third = s.recv_msg();
    assert_eq!(
        (third.topic.as_str(), third.props.topic_alias()),
        ("", Some(1))
    );
    s.disconnect();
}

/// paho-mqtt 2.x as a 5.0 client with Topic Alias Maximum 1 sees the
/// aliases: the topic named once, then an empty topic with alias 1 at QoS
/// 0, 1 and 2 (tests/paho/v5_topic_alias.py). boxmq-only, as above.
#[test]
fn paho_v5_sees_broker_topic_aliases() {
    if skip_unless_boxmq(
        "paho_v5_sees_broker_topic_aliases",
        "Mosquitto 2.0.11 sends no topic aliases to clients",
    ) {
        return;
    }
    let b = TestBroker::start();
    run_paho("v5_topic_alias", b.port, &[]);
}

/// For the Receive Maximum tests (boxmq-only: Mosquitto 2.0.11 answers
/// the one too many with PUBREC 0x97 and stays connected): a broker with
/// `max_inflight_messages window` and a 5.0 client told that window in
/// CONNACK. `None` when the tests run against Mosquitto.
fn window_client(test: &str, window: u16, client_id: &str) -> Option<(TestBroker, V5Client)> {
    if skip_unless_boxmq(
        test,
        "Mosquitto 2.0.11 answers PUBREC 0x97 (Quota exceeded) and stays connected",
    ) {
        return None;
    }
    let line = format!("max_inflight_messages {window}");
    let b = TestBroker::start_with_config(&[&line]);
    let (c, ack) = V5Client::connect_opts(b.port, &V5Opts::new(client_id));
    assert_eq!(ack.props.receive_maximum(), Some(window), "{ack:?}");
    Some((b, c))
}

/// QoS 2 PUBLISHes with packet ids 1 to `n`, in one buffer.
fn qos2_burst(n: u16) -> Vec<u8> {
    (1..=n)
        .flat_map(|id| frame5::publish(PLUG, b"q2", 2, false, id, &Props::new()))
        .collect()
}

/// More unreleased QoS 2 PUBLISHes than the Receive Maximum the broker
/// announced [MQTT-3.3.4-7]: DISCONNECT 0x93 (§3.3.4), sent after the
/// PUBRECs of the ones within the window, as Paho's client_test5
/// (`test_flow_control2`) sends them: all at once, no PUBREL yet. QoS 1
/// PUBLISHes are acknowledged as they come and never count.
/// boxmq-only: Mosquitto 2.0.11 answers PUBREC 0x97 and stays connected.
#[test]
fn qos2_past_receive_maximum_at_once_is_0x93() {
    let Some((_b, mut c)) = window_client(
        "qos2_past_receive_maximum_at_once_is_0x93",
        5,
        "corners-rmax",
    ) else {
        return;
    };
    for _ in 0..8 {
        assert_eq!(c.publish_simple(PLUG, b"q1", 1, false), 0x10);
    }
    let _ = c.try_send(&qos2_burst(6));
    let before = c.expect_closed(CLOSE_WITHIN);
    let recs = before
        .iter()
        .filter(|p| {
            matches!(
                p,
                Rx::PubResp {
                    kind: PubRespKind::PubRec,
                    reason: 0,
                    ..
                }
            )
        })
        .count();
    assert_eq!(recs, 5, "{before:?}");
    assert!(
        matches!(before.last(), Some(Rx::Disconnect { reason: 0x93, .. })),
        "{before:?}"
    );
}

/// Paho's `test_flow_control2` again, as its client behaves: it answers
/// each PUBREC with a PUBREL at once, so it is still writing when the
/// broker closes it for exceeding the Receive Maximum [MQTT-3.3.4-7].
/// Every one of those writes must succeed until the client has read the
/// DISCONNECT 0x93 (§4.13: the broker may close after sending it; a reset
/// in answer to the PUBRELs would surface as a broken pipe first). The
/// broker shuts its write side after the DISCONNECT and discards what
/// still comes; the client then reads the end of the stream.
#[test]
fn a_client_still_acknowledging_reads_its_0x93() {
    let Some((_b, mut c)) = window_client(
        "a_client_still_acknowledging_reads_its_0x93",
        100,
        "corners-fc2",
    ) else {
        return;
    };
    c.send(&qos2_burst(101));
    let mut released = 0;
    loop {
        match c.try_recv(CLOSE_WITHIN) {
            Ok(Rx::PubResp {
                kind: PubRespKind::PubRec,
                id,
                ..
            }) => {
                let rel = frame5::pub_resp(PubRespKind::PubRel, id, 0);
                if let Err(e) = c.try_send(&rel) {
                    panic!("PUBREL {id} failed before the DISCONNECT was read: {e}");
                }
                released += 1;
                // Time for a reset to come back, if one were sent.
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(Rx::PubResp {
                kind: PubRespKind::PubComp,
                ..
            }) => {}
            Ok(Rx::Disconnect { reason, .. }) => {
                assert_eq!(reason, 0x93);
                break;
            }
            other => panic!("after {released} PUBRELs: {other:?}"),
        }
    }
    assert_eq!(released, 100);
    let after = c.expect_closed(CLOSE_WITHIN);
    assert!(
        after.iter().all(|p| matches!(
            p,
            Rx::PubResp {
                kind: PubRespKind::PubComp,
                ..
            }
        )),
        "{after:?}"
    );
}

/// The discarding after a DISCONNECT is bounded: a client that goes on
/// writing and never closes its side finds the connection gone (its
/// writes fail) within a few seconds.
#[test]
fn a_client_that_keeps_writing_after_its_disconnect_is_cut_off() {
    let Some((_b, mut c)) = window_client(
        "a_client_that_keeps_writing_after_its_disconnect_is_cut_off",
        2,
        "corners-linger",
    ) else {
        return;
    };
    c.send(&qos2_burst(3));
    let before = c.expect_closed(CLOSE_WITHIN);
    assert!(
        matches!(before.last(), Some(Rx::Disconnect { reason: 0x93, .. })),
        "{before:?}"
    );
    let start = std::time::Instant::now();
    let ping = [0xC0, 0x00];
    while c.try_send(&ping).is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "writes still accepted 8 s after the DISCONNECT"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// DUP must be 0 on a QoS 0 PUBLISH [MQTT-3.3.1-2]. boxmq treats it as a
/// malformed packet: DISCONNECT 0x81 and close, nothing forwarded, as the
/// msg_sequence corpus of Mosquitto 2.0.20 expects ("38 QoS 0 Dup 1").
/// boxmq-only: Mosquitto 2.0.11 takes the message (checked with a raw
/// client, docs/CONFORMANCE.md).
#[test]
fn dup_on_qos0_is_malformed_0x81() {
    if skip_unless_boxmq(
        "dup_on_qos0_is_malformed_0x81",
        "Mosquitto 2.0.11 accepts a QoS 0 PUBLISH with DUP set",
    ) {
        return;
    }
    let b = TestBroker::start();
    let mut s = V5Client::connect(b.port, "corners-dup-sub");
    s.sub("topic", 0);
    let mut c = V5Client::connect(b.port, "corners-dup");
    // PUBLISH with DUP 1, QoS 0: topic "topic", no properties, "payload".
    let _ = c.try_send(&[
        0x38, 0x0F, 0x00, 0x05, b't', b'o', b'p', b'i', b'c', 0x00, b'p', b'a', b'y', b'l', b'o',
        b'a', b'd',
    ]);
    assert_eq!(c.closed_with(CLOSE_WITHIN), Some(0x81));
    s.expect_nothing(SHORT);
}
