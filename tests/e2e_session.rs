//! Sessions: persistence with clean session 0, the session-present flag,
//! client id takeover, zero-length client ids and redelivery.

mod common;

use common::*;
use std::time::Duration;

/// [MQTT-3.1.2-4] a clean-session-0 session is resumed on reconnect;
/// [MQTT-3.1.2-5] QoS 1/2 messages matching its subscriptions are stored
/// while it is disconnected and delivered on reconnect, in order
/// ([MQTT-4.6.0-6]); CONNACK Session Present = 1 ([MQTT-3.2.2-2]).
#[test]
fn persistent_session_gets_messages_published_while_away() {
    let b = TestBroker::start();
    let opts = ConnectOpts::new("persist").clean(false);
    let (mut c, sp) = RawClient::connect_opts(b.port, &opts);
    assert!(!sp, "no session existed yet [MQTT-3.2.2-3]");
    c.subscribe_ok(&[("sess/t", 1)]);
    c.disconnect();

    let mut publ = RawClient::connect(b.port, "persist-pub");
    for i in 0..3 {
        publ.publish("sess/t", format!("away {i}").as_bytes(), 1, false);
    }
    publ.publish("sess/t", b"qos0 may be dropped", 0, false);
    publ.publish("sess/t", b"away 3", 1, false);

    let (mut c, sp) = RawClient::connect_opts(b.port, &opts);
    assert!(sp, "CONNACK session present must be 1 [MQTT-3.2.2-2]");
    let mut got = Vec::new();
    loop {
        let p = c.recv_publish();
        if p.qos == 0 {
            continue; // QoS 0 while offline: MAY be stored (§3.1.2.4)
        }
        got.push(p.payload_str());
        if got.len() == 4 {
            break;
        }
    }
    assert_eq!(got, vec!["away 0", "away 1", "away 2", "away 3"]);
    c.disconnect();
}

/// [MQTT-3.2.2-1] accepted with clean session 1 → Session Present 0, even
/// when a stored session for that client id existed (it is discarded,
/// [MQTT-3.1.2-6]), and the next clean-session-0 connect finds none.
#[test]
fn clean_session_1_reports_no_session_and_discards_it() {
    let b = TestBroker::start();
    let persistent = ConnectOpts::new("sp-flags").clean(false);
    let (mut c, _) = RawClient::connect_opts(b.port, &persistent);
    c.subscribe_ok(&[("sp/t", 1)]);
    c.disconnect();

    let (c, sp) = RawClient::connect_opts(b.port, &ConnectOpts::new("sp-flags").clean(true));
    assert!(!sp, "clean session 1 must give Session Present 0");
    c.disconnect();

    let (c, sp) = RawClient::connect_opts(b.port, &persistent);
    assert!(!sp, "the clean session discarded the stored session");
    c.disconnect();
}

/// [MQTT-3.1.4-2] a second connection with the same client id makes the
/// server disconnect the existing one; the new one works.
#[test]
fn same_client_id_takes_over_and_closes_the_first() {
    let b = TestBroker::start();
    let mut first = RawClient::connect(b.port, "twin");
    first.ping();
    let mut second = RawClient::connect(b.port, "twin");
    first.expect_closed(Duration::from_secs(5));
    second.subscribe_ok(&[("twin/t", 1)]);
    second.publish("twin/t", b"hi", 1, false);
    assert_eq!(second.recv_publish().payload_str(), "hi");
    second.disconnect();
}

/// [MQTT-3.1.3-6] a zero-byte client id with clean session 1 may be
/// accepted (the server assigns an id); Mosquitto and boxmq both do.
#[test]
fn empty_client_id_with_clean_session_accepted() {
    let b = TestBroker::start();
    let (mut a, sp) = RawClient::connect_opts(b.port, &ConnectOpts::new("").clean(true));
    assert!(!sp);
    // A second anonymous client gets its own id: no takeover.
    let (mut z, _) = RawClient::connect_opts(b.port, &ConnectOpts::new("").clean(true));
    a.subscribe_ok(&[("anon/t", 1)]);
    z.publish("anon/t", b"from z", 1, false);
    assert_eq!(a.recv_publish().payload_str(), "from z");
    a.ping();
    z.ping();
}

/// [MQTT-3.1.3-8] a zero-byte client id with clean session 0 MUST get
/// CONNACK 0x02 (identifier rejected) and the connection closed.
#[test]
fn empty_client_id_without_clean_session_rejected() {
    let b = TestBroker::start();
    let (mut c, ack) = RawClient::connect_with(b.port, &ConnectOpts::new("").clean(false));
    assert_eq!(ack.return_code, 0x02, "{ack:?}");
    assert!(
        !ack.session_present,
        "[MQTT-3.2.2-4] SP is 0 with a non-zero code"
    );
    c.expect_closed(Duration::from_secs(5));
    assert_broker_works(b.port);
}

/// [MQTT-4.4.0-1] on reconnect with clean session 0 the server MUST resend
/// unacknowledged QoS 1 PUBLISHes with their original packet ids, and
/// [MQTT-3.3.1-1] with DUP=1.
#[test]
fn unacked_qos1_resent_with_dup_on_reconnect() {
    let b = TestBroker::start();
    let opts = ConnectOpts::new("redeliver").clean(false);
    let (mut c, _) = RawClient::connect_opts(b.port, &opts);
    c.subscribe_ok(&[("redo/t", 1)]);

    let mut publ = RawClient::connect(b.port, "redo-pub");
    publ.publish("redo/t", b"ack me", 1, false);

    let first = c.recv_publish_noack();
    assert_eq!(
        (first.payload_str().as_str(), first.qos, first.dup),
        ("ack me", 1, false)
    );
    let id = first.packet_id.unwrap();
    c.disconnect(); // without PUBACK

    let (mut c, sp) = RawClient::connect_opts(b.port, &opts);
    assert!(sp);
    let again = c.recv_publish_noack();
    assert_eq!(again.payload_str(), "ack me");
    assert_eq!(again.qos, 1);
    assert!(again.dup, "redelivery must set DUP=1: {again:?}");
    assert_eq!(again.packet_id, Some(id), "original packet id");
    c.ack(&again);
    // Acknowledged now: not sent a third time.
    c.disconnect();
    let (mut c, _) = RawClient::connect_opts(b.port, &opts);
    c.expect_nothing(Duration::from_millis(200));
    c.disconnect();
}
