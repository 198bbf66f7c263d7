//! MQTT 5.0 end to end: CONNACK properties, session and message expiry, will
//! delay, topic aliases, payload format, property pass-through, reason codes,
//! subscription options and identifiers, shared subscriptions, client limits
//! (maximum packet size, receive maximum), server DISCONNECT reason codes,
//! mixed 3.1 / 3.1.1 / 5.0 traffic and paho-mqtt in 5.0 mode.
//!
//! Raw 5.0 frames come from `common/v5.rs` (built with the crate's codec).
//! Every statement tag cited is from the MQTT 5.0 specification (OASIS
//! Standard, 7 March 2019); where a behaviour is only a MAY/SHOULD the
//! section is cited instead and the test says what it accepts.

mod common;
#[path = "common/v5.rs"]
mod v5;

use boxmq::codec::{Property, PubRespKind};
use common::*;
use std::time::{Duration, Instant};
use v5::*;

const SHORT: Duration = Duration::from_millis(500);
const CLOSE_WITHIN: Duration = Duration::from_secs(5);

fn user_props(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------
// CONNACK
// ---------------------------------------------------------------------------

/// CONNACK properties announce the server's limits: Receive Maximum
/// (§3.2.2.3.3), Maximum Packet Size (§3.2.2.3.6), Topic Alias Maximum
/// (§3.2.2.3.8). boxmq's defaults are 100 / none / 10: like Mosquitto, no
/// Maximum Packet Size unless configured (MQTT's own maximum, issue 28);
/// exact values are checked for boxmq only.
/// A client connecting with an empty client id gets an Assigned Client
/// Identifier [MQTT-3.2.2-16], unique per client [MQTT-3.1.3-6].
#[test]
fn connack_properties_and_assigned_client_id() {
    let b = TestBroker::start();
    let (c, ack) = V5Client::connect_opts(b.port, &V5Opts::new("v5-props"));
    assert!(!ack.session_present, "{ack:?}");
    let p = &ack.props;
    assert_eq!(
        p.assigned_client_id(),
        None,
        "no assigned id when the client chose one: {p:?}"
    );
    if is_mosquitto() {
        println!("NOTE: Mosquitto CONNACK properties {p:?}");
        assert!(p.topic_alias_maximum().unwrap_or(0) > 0, "{p:?}");
    } else {
        assert_eq!(p.receive_maximum(), Some(100), "{p:?}");
        assert_eq!(p.maximum_packet_size(), None, "{p:?}");
        assert_eq!(p.topic_alias_maximum(), Some(10), "{p:?}");
    }
    c.disconnect();

    let (mut a, ack_a) = V5Client::connect_opts(b.port, &V5Opts::new(""));
    let (mut z, ack_z) = V5Client::connect_opts(b.port, &V5Opts::new(""));
    let id_a = ack_a
        .props
        .assigned_client_id()
        .expect("Assigned Client Identifier");
    let id_z = ack_z
        .props
        .assigned_client_id()
        .expect("Assigned Client Identifier");
    assert!(!id_a.is_empty() && !id_z.is_empty());
    assert_ne!(id_a, id_z, "assigned ids must be unique");
    // Both stay connected (no takeover between them).
    a.ping();
    z.ping();
}

/// Configured limits show in CONNACK: `max_inflight_messages` as Receive
/// Maximum, `max_packet_size` as Maximum Packet Size (§3.2.2.3.3,
/// §3.2.2.3.6). Both brokers take these two option names.
#[test]
fn connack_reflects_configured_limits() {
    let b = TestBroker::start_with_config(&["max_inflight_messages 5", "max_packet_size 1000"]);
    let (c, ack) = V5Client::connect_opts(b.port, &V5Opts::new("v5-limits"));
    assert_eq!(ack.props.receive_maximum(), Some(5), "{ack:?}");
    assert_eq!(ack.props.maximum_packet_size(), Some(1000), "{ack:?}");
    c.disconnect();
}

// ---------------------------------------------------------------------------
// Session expiry
// ---------------------------------------------------------------------------

/// Session Expiry Interval > 0: the session outlives the connection
/// [MQTT-3.1.2-23]; QoS 1 messages published meanwhile are queued and
/// delivered on reconnect with Session Present 1 [MQTT-3.2.2-2].
#[test]
fn session_expiry_keeps_session_and_queues_messages() {
    let b = TestBroker::start();
    let opts = V5Opts::new("v5-sess").clean(false).session_expiry(60);
    let (mut c, ack) = V5Client::connect_opts(b.port, &opts);
    assert!(
        !ack.session_present,
        "fresh id: no session yet [MQTT-3.2.2-3]"
    );
    c.sub("sess5/t", 1);
    c.disconnect();

    let mut publ = V5Client::connect(b.port, "v5-sess-pub");
    for i in 0..3 {
        publ.publish_simple("sess5/t", format!("away {i}").as_bytes(), 1, false);
    }

    let (mut c, ack) = V5Client::connect_opts(b.port, &opts);
    assert!(ack.session_present, "session present must be 1: {ack:?}");
    for i in 0..3 {
        let m = c.recv_msg();
        assert_eq!((m.topic.as_str(), m.qos), ("sess5/t", 1), "{m:?}");
        assert_eq!(m.payload_str(), format!("away {i}"));
    }
    c.disconnect();
}

/// Session Expiry Interval absent (= 0): the session ends when the network
/// connection closes (§3.1.2.11.2), so even with Clean Start 0 the next
/// connection finds none: Session Present 0 [MQTT-3.2.2-3], no queued
/// messages, no subscription.
#[test]
fn session_expiry_zero_ends_session_at_disconnect() {
    let b = TestBroker::start();
    let opts = V5Opts::new("v5-sess0").clean(false);
    let (mut c, _) = V5Client::connect_opts(b.port, &opts);
    c.sub("sess0/t", 1);
    c.disconnect();

    let mut publ = V5Client::connect(b.port, "v5-sess0-pub");
    publ.publish_simple("sess0/t", b"lost", 1, false);

    let (mut c, ack) = V5Client::connect_opts(b.port, &opts);
    assert!(!ack.session_present, "session must have ended: {ack:?}");
    c.expect_nothing(SHORT);
    publ.publish_simple("sess0/t", b"not subscribed", 1, false);
    c.expect_nothing(SHORT);
}

/// The session ends Session Expiry Interval seconds after the connection
/// closes (§3.1.2.11.2, [MQTT-4.1.0-2] the state may be discarded then):
/// expiry 1 s, reconnect after ~3 s: Session Present 0.
#[test]
fn session_expires_after_interval() {
    let b = TestBroker::start();
    let opts = V5Opts::new("v5-sess-exp").clean(false).session_expiry(1);
    let (mut c, _) = V5Client::connect_opts(b.port, &opts);
    c.sub("sessexp/t", 1);
    c.disconnect();
    std::thread::sleep(Duration::from_millis(2800));
    let (mut c, ack) = V5Client::connect_opts(b.port, &opts);
    assert!(!ack.session_present, "session should have expired: {ack:?}");
    let mut publ = V5Client::connect(b.port, "v5-sess-exp-pub");
    publ.publish_simple("sessexp/t", b"x", 1, false);
    c.expect_nothing(SHORT);
}

// ---------------------------------------------------------------------------
// Will
// ---------------------------------------------------------------------------

fn will_watcher(port: u16, topic: &str) -> V5Client {
    let mut w = V5Client::connect(port, &unique("watch"));
    w.sub(topic, 1);
    w
}

/// Will Delay Interval 2 s, Session Expiry 10 s, socket closed without
/// DISCONNECT: the will is published when the delay has passed, not before
/// (§3.1.3.2.2, [MQTT-3.1.2-8]).
#[test]
fn will_delay_publishes_after_the_delay() {
    let b = TestBroker::start();
    let mut w = will_watcher(b.port, "wd/+");
    let will_props = Props::new().with(Property::WillDelayInterval(2));
    let opts = V5Opts::new("v5-wd")
        .clean(false)
        .session_expiry(10)
        .will("wd/v5-wd", b"gone", 1, false, will_props);
    let (c, _) = V5Client::connect_opts(b.port, &opts);
    let t0 = Instant::now();
    c.drop_connection();
    w.expect_nothing(Duration::from_millis(1500));
    let m = w
        .try_recv_msg(Duration::from_secs(4))
        .expect("the will after its delay");
    let waited = t0.elapsed();
    assert_eq!(
        (m.topic.as_str(), m.payload_str().as_str()),
        ("wd/v5-wd", "gone")
    );
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_millis(4500),
        "will arrived {waited:?} after the close; delay was 2 s"
    );
}

/// [MQTT-3.1.3-9] if a new network connection to the session is made
/// before the Will Delay Interval has passed, the will is not sent.
#[test]
fn will_delay_cancelled_by_reconnect() {
    let b = TestBroker::start();
    let mut w = will_watcher(b.port, "wdc/+");
    let will_props = Props::new().with(Property::WillDelayInterval(2));
    let opts = V5Opts::new("v5-wdc").clean(false).session_expiry(10).will(
        "wdc/v5-wdc",
        b"gone",
        1,
        false,
        will_props,
    );
    let (c, _) = V5Client::connect_opts(b.port, &opts);
    c.drop_connection();
    std::thread::sleep(Duration::from_millis(500));
    let back = V5Opts::new("v5-wdc").clean(false).session_expiry(10);
    let (c, ack) = V5Client::connect_opts(b.port, &back);
    assert!(ack.session_present, "{ack:?}");
    w.expect_nothing(Duration::from_millis(2800));
    c.disconnect();
    w.expect_nothing(SHORT);
}

/// DISCONNECT reason 0x00 discards the will [MQTT-3.14.4-3]; reason 0x04
/// (Disconnect with Will Message, §3.14.2.1) publishes it.
#[test]
fn disconnect_reason_4_publishes_will_reason_0_does_not() {
    let b = TestBroker::start();
    let mut w = will_watcher(b.port, "wr/+");
    let (c, _) = V5Client::connect_opts(
        b.port,
        &V5Opts::new("v5-w0").will("wr/zero", b"w0", 1, false, Props::new()),
    );
    c.disconnect_with(0x00);
    let (c, _) = V5Client::connect_opts(
        b.port,
        &V5Opts::new("v5-w4").will("wr/four", b"w4", 1, false, Props::new()),
    );
    c.disconnect_with(0x04);
    // Had the 0x00 will been sent it would arrive first.
    let m = w.recv_msg();
    assert_eq!(
        (m.topic.as_str(), m.payload_str().as_str()),
        ("wr/four", "w4")
    );
    w.expect_nothing(SHORT);
}

// ---------------------------------------------------------------------------
// Message expiry
// ---------------------------------------------------------------------------

/// A retained message whose Message Expiry Interval has passed is not sent
/// to a new subscriber [MQTT-3.3.2-5]; one still alive is, with its expiry
/// reduced by the time it waited [MQTT-3.3.2-6]; one without expiry is
/// sent without the property.
#[test]
fn retained_message_expiry() {
    let b = TestBroker::start();
    let mut publ = V5Client::connect(b.port, "v5-rexp-pub");
    let exp = |s| Props::new().with(Property::MessageExpiryInterval(s));
    publ.publish("rexp/short", b"short", 1, true, &exp(1));
    publ.publish("rexp/long", b"long", 1, true, &exp(60));
    publ.publish_simple("rexp/none", b"none", 1, true);
    std::thread::sleep(Duration::from_millis(2200));

    let mut sub = V5Client::connect(b.port, "v5-rexp-sub");
    sub.sub("rexp/#", 1);
    let mut got = Vec::new();
    while let Some(m) = sub.try_recv_msg(SHORT) {
        assert!(m.retain, "{m:?}");
        got.push(m);
    }
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    let topics: Vec<&str> = got.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(topics, vec!["rexp/long", "rexp/none"], "{got:?}");
    let left = got[0].props.message_expiry().expect("expiry forwarded");
    assert!((50..=58).contains(&left), "expiry 60 after ~2 s: {left}");
    assert_eq!(got[1].props.message_expiry(), None, "{:?}", got[1]);
}

/// Messages queued for an offline session: expired ones are dropped
/// [MQTT-3.3.2-5]; the others carry the expiry minus the time waited
/// [MQTT-3.3.2-6] (expiry 60, reconnect after ~2 s: at most 58).
#[test]
fn queued_message_expiry_for_offline_session() {
    let b = TestBroker::start();
    let opts = V5Opts::new("v5-qexp").clean(false).session_expiry(60);
    let (mut c, _) = V5Client::connect_opts(b.port, &opts);
    c.sub("qexp/#", 1);
    c.disconnect();

    let mut publ = V5Client::connect(b.port, "v5-qexp-pub");
    let exp = |s| Props::new().with(Property::MessageExpiryInterval(s));
    publ.publish("qexp/short", b"short", 1, false, &exp(1));
    publ.publish("qexp/long", b"long", 1, false, &exp(60));
    publ.publish_simple("qexp/none", b"none", 1, false);
    std::thread::sleep(Duration::from_millis(2200));

    let (mut c, ack) = V5Client::connect_opts(b.port, &opts);
    assert!(ack.session_present);
    let m = c.recv_msg();
    assert_eq!(
        m.topic, "qexp/long",
        "the expired message must be dropped: {m:?}"
    );
    let left = m.props.message_expiry().expect("expiry forwarded");
    assert!((50..=58).contains(&left), "expiry 60 after ~2 s: {left}");
    let m = c.recv_msg();
    assert_eq!(m.topic, "qexp/none", "{m:?}");
    assert_eq!(m.props.message_expiry(), None);
    c.expect_nothing(SHORT);
}

// ---------------------------------------------------------------------------
// Topic aliases
// ---------------------------------------------------------------------------

/// Topic alias from the client (§3.3.2.3.4): topic + alias sets the
/// mapping, an empty topic + alias uses it, a new topic with the same
/// alias replaces it. Subscribers (3.1.1 and 5.0) get the full topic name,
/// and no alias since they announced no Topic Alias Maximum [MQTT-3.3.2-11].
#[test]
fn topic_alias_from_client() {
    let b = TestBroker::start();
    let mut s5 = V5Client::connect(b.port, "v5-ta-sub");
    s5.sub("ta/#", 1);
    let mut s3 = RawClient::connect(b.port, "v311-ta-sub");
    s3.subscribe_ok(&[("ta/#", 1)]);

    let mut publ = V5Client::connect(b.port, "v5-ta-pub");
    let alias = Props::new().with(Property::TopicAlias(1));
    let sends = [
        ("ta/x", "one"),
        ("", "two"),
        ("ta/y", "three"),
        ("", "four"),
    ];
    for (topic, payload) in sends {
        assert_eq!(publ.publish(topic, payload.as_bytes(), 1, false, &alias), 0);
    }
    publ.publish("", b"five", 0, false, &alias);
    let want = [
        ("ta/x", "one"),
        ("ta/x", "two"),
        ("ta/y", "three"),
        ("ta/y", "four"),
        ("ta/y", "five"),
    ];
    for (topic, payload) in want {
        let m = s5.recv_msg();
        assert_eq!(
            (m.topic.as_str(), m.payload_str().as_str()),
            (topic, payload)
        );
        assert_eq!(m.props.topic_alias(), None, "{m:?}");
        let p = s3.recv_publish();
        assert_eq!(
            (p.topic.as_str(), p.payload_str().as_str()),
            (topic, payload)
        );
    }
}

/// A Topic Alias above the server's Topic Alias Maximum [MQTT-3.3.2-9]
/// is a Topic Alias invalid error: DISCONNECT 0x94 (§3.3.2.3.4, reason
/// code table §2.4). An empty topic with an alias that has no mapping is a
/// Protocol Error (§3.3.4): DISCONNECT 0x82. Topic Alias 0 is forbidden to
/// the sender [MQTT-3.3.2-8], but the spec names no reason code for it:
/// 0x94 (Topic Alias invalid), 0x82 (Protocol Error, boxmq) and 0x81
/// (Malformed Packet, Mosquitto 2.0.11) are all accepted.
#[test]
fn invalid_topic_aliases_disconnect() {
    let b = TestBroker::start();
    let mut sub = V5Client::connect(b.port, "v5-tabad-sub");
    sub.sub("tabad/#", 0);
    let (c, ack) = V5Client::connect_opts(b.port, &V5Opts::new("v5-tabad-probe"));
    c.disconnect();
    let max = ack.props.topic_alias_maximum().unwrap_or(0);
    assert!(max > 0, "server announced no Topic Alias Maximum: {ack:?}");
    let alias0_ok: &[u8] = &[0x94, 0x82, 0x81];
    let cases: [(&str, &str, u16, &[u8]); 3] = [
        ("alias 0", "tabad/a", 0, alias0_ok),
        ("alias > maximum", "tabad/a", max + 1, &[0x94]),
        ("unknown alias", "", 3, &[0x82]),
    ];
    let mut wrong = Vec::new();
    for (what, topic, alias, want) in cases {
        let (mut c, _) = V5Client::connect_opts(b.port, &V5Opts::new(&unique("ta-bad")));
        c.name = what.into();
        let props = Props::new().with(Property::TopicAlias(alias));
        let id = c.next_packet_id();
        c.send(&frame5::publish(topic, b"bad", 1, false, id, &props));
        let reason = c.closed_with(CLOSE_WITHIN);
        if !reason.is_some_and(|r| want.contains(&r)) {
            wrong.push(format!(
                "{what}: DISCONNECT {reason:02x?}, want one of {want:02x?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    sub.expect_nothing(SHORT);
    assert_broker_works(b.port);
}

// ---------------------------------------------------------------------------
// Payload format, properties, PUBACK reason codes
// ---------------------------------------------------------------------------

/// Payload Format Indicator 1 with a payload that is not UTF-8: the
/// receiver MAY check it and answer reason 0x99 (§3.3.2.3.2). boxmq does:
/// QoS 1 -> PUBACK 0x99 and the message is not forwarded; QoS 0 ->
/// DISCONNECT 0x99. A valid UTF-8 payload passes with the indicator
/// unaltered [MQTT-3.3.2-4].
#[test]
fn payload_format_invalid_utf8_rejected() {
    let b = TestBroker::start();
    let mut sub = V5Client::connect(b.port, "v5-pfi-sub");
    sub.sub("pfi/#", 1);
    let mut publ = V5Client::connect(b.port, "v5-pfi-pub");
    let utf8 = Props::new().with(Property::PayloadFormatIndicator(1));

    assert_eq!(
        publ.publish("pfi/ok", "grüße".as_bytes(), 1, false, &utf8),
        0
    );
    let m = sub.recv_msg();
    assert_eq!(
        (m.topic.as_str(), m.payload_str().as_str()),
        ("pfi/ok", "grüße")
    );
    assert_eq!(m.props.payload_format(), Some(1), "[MQTT-3.3.2-4] {m:?}");

    if skip_unless_boxmq(
        "payload_format_invalid_utf8_rejected (invalid part)",
        "validating the payload is a MAY (§3.3.2.3.2)",
    ) {
        return;
    }
    let rc = publ.publish("pfi/bad", &[0x66, 0xFF, 0xFE], 1, false, &utf8);
    assert_eq!(rc, 0x99, "PUBACK reason for a non-UTF-8 payload");
    sub.expect_nothing(SHORT);
    publ.send(&frame5::publish(
        "pfi/bad0",
        &[0xC3, 0x28],
        0,
        false,
        0,
        &utf8,
    ));
    assert_eq!(publ.closed_with(CLOSE_WITHIN), Some(0x99));
    sub.expect_nothing(SHORT);
}

/// Content Type [MQTT-3.3.2-20], Response Topic [MQTT-3.3.2-15],
/// Correlation Data [MQTT-3.3.2-16], Payload Format Indicator
/// [MQTT-3.3.2-4] and User Properties [MQTT-3.3.2-17] reach the subscriber
/// unaltered, User Properties in order [MQTT-3.3.2-18] (a repeated key
/// included); the Message Expiry Interval is forwarded, reduced by at most
/// the waiting time [MQTT-3.3.2-6]. A 3.1.1 subscriber gets the message
/// without any of them.
#[test]
fn publish_properties_pass_through() {
    let b = TestBroker::start();
    let mut s5 = V5Client::connect(b.port, "v5-pp-sub");
    s5.sub("pp/t", 2);
    let mut s3 = RawClient::connect(b.port, "v311-pp-sub");
    s3.subscribe_ok(&[("pp/t", 1)]);

    let props = Props::new()
        .with(Property::PayloadFormatIndicator(1))
        .with(Property::MessageExpiryInterval(100))
        .with(Property::ContentType("application/json; charset=utf-8"))
        .with(Property::ResponseTopic("pp/reply/42"))
        .with(Property::CorrelationData(&[0, 1, 2, 0xFF, 0xFE]))
        .with(Property::UserProperty("k", "first"))
        .with(Property::UserProperty("other", "x"))
        .with(Property::UserProperty("k", "second"));
    let mut publ = V5Client::connect(b.port, "v5-pp-pub");
    for q in [0u8, 1, 2] {
        let payload = format!("{{\"qos\":{q}}}");
        publ.publish("pp/t", payload.as_bytes(), q, false, &props);
        let m = s5.recv_msg();
        assert_eq!((m.payload_str(), m.qos), (payload.clone(), q), "{m:?}");
        let p = &m.props;
        assert_eq!(p.payload_format(), Some(1), "{p:?}");
        assert_eq!(
            p.content_type().as_deref(),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(p.response_topic().as_deref(), Some("pp/reply/42"));
        assert_eq!(p.correlation_data(), Some(vec![0, 1, 2, 0xFF, 0xFE]));
        assert_eq!(
            p.user_properties(),
            user_props(&[("k", "first"), ("other", "x"), ("k", "second")])
        );
        let left = p.message_expiry().expect("expiry forwarded");
        assert!((98..=100).contains(&left), "expiry {left}");
        let r = s3.recv_publish();
        assert_eq!(r.payload_str(), payload, "3.1.1 subscriber: {r:?}");
    }
}

/// PUBACK reason 0x10 (No matching subscribers, §3.4.2.1) when nobody
/// subscribes, 0x00 once somebody does; PUBREC says 0x00 either way (0x10
/// is a MAY there, §3.5.2.1, and Mosquitto's PUBREC never carries it).
#[test]
fn puback_no_matching_subscribers() {
    let b = TestBroker::start();
    let mut publ = V5Client::connect(b.port, "v5-nms-pub");
    let q1 = publ.publish_simple("nms/t", b"a", 1, false);
    let q2 = publ.publish_simple("nms/t", b"b", 2, false);
    assert_eq!((q1, q2), (0x10, 0x00), "PUBACK, PUBREC");
    let mut sub = V5Client::connect(b.port, "v5-nms-sub");
    sub.sub("nms/#", 1);
    assert_eq!(publ.publish_simple("nms/t", b"c", 1, false), 0x00);
    assert_eq!(publ.publish_simple("nms/t", b"d", 2, false), 0x00);
    assert_eq!(sub.recv_msg().payload_str(), "c");
    assert_eq!(sub.recv_msg().payload_str(), "d");
}

// ---------------------------------------------------------------------------
// Subscription options
// ---------------------------------------------------------------------------

/// No Local: messages are not forwarded to the connection with the
/// publisher's client id [MQTT-3.8.3-3]; other subscribers get them, and
/// the No Local subscriber still gets other clients' messages.
#[test]
fn no_local_subscription_option() {
    let b = TestBroker::start();
    let mut me = V5Client::connect(b.port, "v5-nl-me");
    let codes = me.subscribe_with(&[("nl/t", sub_opts(1, true, false, 0))], &Props::new());
    assert_eq!(codes, vec![1]);
    let mut other = V5Client::connect(b.port, "v5-nl-other");
    other.sub("nl/t", 1);

    me.publish_simple("nl/t", b"mine", 1, false);
    assert_eq!(other.recv_msg().payload_str(), "mine");
    me.expect_nothing(SHORT);

    other.publish_simple("nl/t", b"theirs", 1, false);
    assert_eq!(me.recv_msg().payload_str(), "theirs");
}

/// Retain As Published 1: live delivery keeps the publisher's RETAIN flag
/// [MQTT-3.3.1-12]; with 0 the flag is cleared on live delivery
/// [MQTT-3.3.1-13].
#[test]
fn retain_as_published_subscription_option() {
    let b = TestBroker::start();
    let mut rap = V5Client::connect(b.port, "v5-rap-1");
    rap.subscribe_with(&[("rap/t", sub_opts(1, false, true, 0))], &Props::new());
    let mut plain = V5Client::connect(b.port, "v5-rap-0");
    plain.subscribe_with(&[("rap/t", sub_opts(1, false, false, 0))], &Props::new());

    let mut publ = V5Client::connect(b.port, "v5-rap-pub");
    publ.publish_simple("rap/t", b"kept", 1, true);
    publ.publish_simple("rap/t", b"live", 1, false);
    let (a1, a2) = (rap.recv_msg(), rap.recv_msg());
    assert_eq!(
        (a1.payload_str().as_str(), a1.retain),
        ("kept", true),
        "{a1:?}"
    );
    assert_eq!(
        (a2.payload_str().as_str(), a2.retain),
        ("live", false),
        "{a2:?}"
    );
    let (b1, b2) = (plain.recv_msg(), plain.recv_msg());
    assert_eq!(
        (b1.payload_str().as_str(), b1.retain),
        ("kept", false),
        "{b1:?}"
    );
    assert_eq!(
        (b2.payload_str().as_str(), b2.retain),
        ("live", false),
        "{b2:?}"
    );
}

/// Retain Handling: 0 sends retained messages at every subscribe
/// [MQTT-3.3.1-9]; 1 only when the subscription did not exist
/// [MQTT-3.3.1-10]; 2 never [MQTT-3.3.1-11].
#[test]
fn retain_handling_subscription_option() {
    let b = TestBroker::start();
    let mut publ = V5Client::connect(b.port, "v5-rh-pub");
    publ.publish_simple("rh/t", b"stored", 1, true);

    let subscribe = |c: &mut V5Client, rh: u8| {
        let codes = c.subscribe_with(&[("rh/#", sub_opts(1, false, false, rh))], &Props::new());
        assert_eq!(codes, vec![1]);
    };
    let mut c0 = V5Client::connect(b.port, "v5-rh-0");
    let mut c1 = V5Client::connect(b.port, "v5-rh-1");
    let mut c2 = V5Client::connect(b.port, "v5-rh-2");
    for (c, rh) in [(&mut c0, 0), (&mut c1, 1), (&mut c2, 2)] {
        subscribe(c, rh);
    }
    for c in [&mut c0, &mut c1] {
        let m = c.recv_msg();
        assert_eq!(
            (m.payload_str().as_str(), m.retain),
            ("stored", true),
            "[{}]",
            c.name
        );
    }
    // Subscribe again to the same filter: only RH 0 gets it again.
    for (c, rh) in [(&mut c0, 0), (&mut c1, 1), (&mut c2, 2)] {
        subscribe(c, rh);
    }
    let m = c0.recv_msg();
    assert_eq!((m.payload_str().as_str(), m.retain), ("stored", true));
    for c in [&mut c0, &mut c1, &mut c2] {
        c.expect_nothing(SHORT);
    }
    // All three subscriptions are live.
    publ.publish_simple("rh/t", b"live", 1, false);
    for c in [&mut c0, &mut c1, &mut c2] {
        let m = c.recv_msg();
        assert_eq!(
            (m.payload_str().as_str(), m.retain),
            ("live", false),
            "[{}]",
            c.name
        );
    }
}

// ---------------------------------------------------------------------------
// Subscription identifiers
// ---------------------------------------------------------------------------

/// Subscription Identifiers come back with matching messages
/// [MQTT-3.3.4-3]. Two overlapping subscriptions (ids 1 and 2): a single
/// copy must carry both ids [MQTT-3.3.4-4], several copies each their own
/// [MQTT-3.3.4-5]. boxmq sends one copy per session, at the highest
/// granted QoS, with all ids (checked for boxmq only; Mosquitto 2.0.11
/// sends one copy per subscription). A subscription without id adds none.
#[test]
fn subscription_identifiers() {
    let b = TestBroker::start();
    let mut c = V5Client::connect(b.port, "v5-sid");
    c.sub_id("sid/+", 0, 1);
    c.sub_id("sid/#", 1, 2);
    c.sub("plain/t", 1);
    let mut publ = V5Client::connect(b.port, "v5-sid-pub");

    publ.publish_simple("sid/a", b"both", 1, false);
    let mut copies = vec![c.recv_msg()];
    while let Some(m) = c.try_recv_msg(SHORT) {
        copies.push(m);
    }
    let mut all: Vec<u32> = copies
        .iter()
        .flat_map(|m| m.props.subscription_ids())
        .collect();
    all.sort();
    assert_eq!(all, vec![1, 2], "{copies:?}");
    for m in &copies {
        assert_eq!(m.payload_str(), "both");
        if copies.len() > 1 {
            assert_eq!(m.props.subscription_ids().len(), 1, "{m:?}");
        }
    }
    if !skip_unless_boxmq(
        "subscription_identifiers (one copy)",
        "Mosquitto sends one copy per subscription",
    ) {
        assert_eq!(copies.len(), 1, "one copy per session: {copies:?}");
        assert_eq!(copies[0].qos, 1, "highest granted QoS: {copies:?}");
    }

    publ.publish_simple("sid/a/b", b"deep", 1, false);
    let m = c.recv_msg();
    assert_eq!(
        (m.payload_str().as_str(), m.props.subscription_ids()),
        ("deep", vec![2])
    );
    publ.publish_simple("plain/t", b"no id", 1, false);
    let m = c.recv_msg();
    assert_eq!(m.payload_str(), "no id");
    assert_eq!(m.props.subscription_ids(), Vec::<u32>::new(), "{m:?}");
    c.expect_nothing(SHORT);
}

// ---------------------------------------------------------------------------
// Shared subscriptions
// ---------------------------------------------------------------------------

/// Reads from every client until `total` messages arrived or 5 s passed.
fn collect_spread(clients: &mut [&mut V5Client], total: usize) -> Vec<Vec<String>> {
    let mut got = vec![Vec::new(); clients.len()];
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.iter().map(Vec::len).sum::<usize>() < total && Instant::now() < deadline {
        for (i, c) in clients.iter_mut().enumerate() {
            if let Some(m) = c.try_recv_msg(Duration::from_millis(20)) {
                got[i].push(m.payload_str());
            }
        }
    }
    got
}

fn assert_spread(got: &[Vec<String>], n: usize) {
    let mut all: Vec<&String> = got.iter().flatten().collect();
    assert_eq!(all.len(), n, "each message exactly once: {got:?}");
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "duplicates: {got:?}");
    for (i, g) in got.iter().enumerate() {
        assert!(!g.is_empty(), "member {i} got nothing: {got:?}");
    }
}

/// Shared subscription `$share/g/t` (§4.8.2): each message goes to one
/// member only; two members both get some of 20 messages, 20 in all, no
/// duplicate. A non-shared subscriber to the same topic gets all 20.
/// No retained message is sent when a session subscribes to a shared
/// subscription (§3.8.4 SUBSCRIBE Actions, untagged text); Mosquitto 2.0.11
/// sends it anyway, so that part is checked for boxmq only.
#[test]
fn shared_subscription_balances_between_members() {
    let b = TestBroker::start();
    let mut publ = V5Client::connect(b.port, "v5-sh-pub");
    publ.publish_simple("sh/t", b"retained", 1, true);

    let mut m1 = V5Client::connect(b.port, "v5-sh-1");
    let mut m2 = V5Client::connect(b.port, "v5-sh-2");
    m1.sub("$share/g/sh/t", 1);
    m2.sub("$share/g/sh/t", 1);
    let mut all = V5Client::connect(b.port, "v5-sh-all");
    all.sub("sh/t", 1);
    let r = all.recv_msg();
    assert!(r.retain && r.payload_str() == "retained", "{r:?}");
    if skip_unless_boxmq(
        "shared_subscription_balances_between_members (no retained)",
        "Mosquitto 2.0.11 sends retained messages to shared subscriptions",
    ) {
        for c in [&mut m1, &mut m2] {
            let r = c.recv_msg();
            assert!(r.retain, "{r:?}");
        }
    } else {
        m1.expect_nothing(SHORT);
        m2.expect_nothing(Duration::from_millis(50));
    }

    for i in 0..20 {
        publ.publish_simple("sh/t", format!("m{i}").as_bytes(), 1, false);
    }
    let got = collect_spread(&mut [&mut m1, &mut m2], 20);
    assert_spread(&got, 20);
    println!("shared split: {} / {}", got[0].len(), got[1].len());
    for i in 0..20 {
        assert_eq!(all.recv_msg().payload_str(), format!("m{i}"));
    }
    m1.expect_nothing(Duration::from_millis(200));
    m2.expect_nothing(Duration::from_millis(50));
}

/// 3.1.1 clients can use `$share/g/t` too (boxmq, like Mosquitto): the
/// messages of a 3.1.1 publisher are split between 3.1.1 members.
#[test]
fn shared_subscription_with_v311_clients() {
    let b = TestBroker::start();
    let mut m1 = RawClient::connect(b.port, "v311-sh-1");
    let mut m2 = RawClient::connect(b.port, "v311-sh-2");
    m1.subscribe_ok(&[("$share/grp/sh3/#", 1)]);
    m2.subscribe_ok(&[("$share/grp/sh3/#", 1)]);
    let mut publ = RawClient::connect(b.port, "v311-sh-pub");
    for i in 0..10 {
        publ.publish("sh3/x", format!("m{i}").as_bytes(), 1, false);
    }
    let mut got = vec![Vec::new(), Vec::new()];
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.iter().map(Vec::len).sum::<usize>() < 10 && Instant::now() < deadline {
        for (i, c) in [&mut m1, &mut m2].into_iter().enumerate() {
            if let Ok(p) = c.try_recv(Duration::from_millis(20)) {
                let p = p.publish();
                c.ack(&p);
                assert_eq!(p.topic, "sh3/x");
                got[i].push(p.payload_str());
            }
        }
    }
    assert_spread(&got, 10);
}

// ---------------------------------------------------------------------------
// Limits set by the client
// ---------------------------------------------------------------------------

/// The server does not send a packet larger than the client's Maximum
/// Packet Size [MQTT-3.1.2-24]: it discards it and behaves as if it had
/// been sent [MQTT-3.1.2-25]. Other subscribers get it; the small client
/// still gets later small messages.
#[test]
fn client_maximum_packet_size_drops_large_messages() {
    let b = TestBroker::start();
    let (mut small, _) = V5Client::connect_opts(
        b.port,
        &V5Opts::new("v5-mps-small").prop(Property::MaximumPacketSize(100)),
    );
    small.sub("mps/t", 1);
    let mut big = V5Client::connect(b.port, "v5-mps-big");
    big.sub("mps/t", 1);

    let mut publ = V5Client::connect(b.port, "v5-mps-pub");
    publ.publish_simple("mps/t", &[b'x'; 500], 1, false);
    publ.publish_simple("mps/t", b"small", 1, false);
    let m = big.recv_msg();
    assert_eq!(m.payload.len(), 500);
    assert_eq!(big.recv_msg().payload_str(), "small");
    let m = small.recv_msg();
    assert_eq!(
        m.payload_str(),
        "small",
        "the 500-byte message must be dropped"
    );
    small.expect_nothing(SHORT);
}

/// The server sends at most Receive Maximum unacknowledged QoS 1 PUBLISH
/// packets [MQTT-3.3.4-9]; each PUBACK lets one more through. Mosquitto
/// 2.0.11 keeps the limit until the first PUBACK but then lets a third
/// message out while two are unacknowledged (a Mosquitto deviation); the
/// part after the first PUBACK is checked for boxmq only.
#[test]
fn client_receive_maximum_limits_inflight() {
    let b = TestBroker::start();
    let (mut sub, _) = V5Client::connect_opts(
        b.port,
        &V5Opts::new("v5-rm-sub").prop(Property::ReceiveMaximum(2)),
    );
    sub.sub("rm/t", 1);
    let mut publ = V5Client::connect(b.port, "v5-rm-pub");
    for i in 0..5 {
        publ.publish_simple("rm/t", format!("m{i}").as_bytes(), 1, false);
    }
    let first = sub.recv_msg_noack();
    let second = sub.recv_msg_noack();
    assert_eq!(
        (first.payload_str(), second.payload_str()),
        ("m0".into(), "m1".into())
    );
    sub.expect_nothing(SHORT);

    sub.ack(&first);
    let third = sub.recv_msg_noack();
    assert_eq!(third.payload_str(), "m2");
    if skip_unless_boxmq(
        "client_receive_maximum_limits_inflight (after PUBACK)",
        "Mosquitto 2.0.11 exceeds Receive Maximum after the first PUBACK",
    ) {
        sub.ack(&second);
        sub.ack(&third);
        let rest: Vec<String> = (0..2).map(|_| sub.recv_msg().payload_str()).collect();
        assert_eq!(rest, vec!["m3", "m4"]);
        return;
    }
    sub.expect_nothing(Duration::from_millis(300));
    sub.ack(&second);
    sub.ack(&third);
    assert_eq!(sub.recv_msg().payload_str(), "m3");
    assert_eq!(sub.recv_msg().payload_str(), "m4");
    sub.expect_nothing(Duration::from_millis(200));
}

// ---------------------------------------------------------------------------
// Server DISCONNECT reason codes
// ---------------------------------------------------------------------------

/// Checks the reason code of the DISCONNECT sent before a server-side
/// close. Sending it is optional (§4.13: the server MAY send DISCONNECT
/// before closing): boxmq must send `want`; Mosquitto 2.0.11 often closes
/// without any DISCONNECT, which is accepted (with a note) under it.
fn assert_disconnect_reason(reason: Option<u8>, want: u8, what: &str) {
    if is_mosquitto() && reason.is_none() {
        println!("NOTE: {what}: Mosquitto closed without DISCONNECT (boxmq sends {want:#04x})");
        return;
    }
    assert_eq!(
        reason,
        Some(want),
        "{what}: DISCONNECT reason before the close"
    );
}

/// A second connection with the same client id: the existing client gets
/// DISCONNECT 0x8E (Session taken over) and its connection is closed
/// [MQTT-3.1.4-3]; the new one works. (Mosquitto 2.0.11 only closes.)
#[test]
fn session_takeover_disconnects_with_0x8e() {
    let b = TestBroker::start();
    let mut first = V5Client::connect(b.port, "v5-twin");
    first.ping();
    let mut second = V5Client::connect(b.port, "v5-twin");
    assert_disconnect_reason(first.closed_with(CLOSE_WITHIN), 0x8E, "takeover");
    second.sub("twin5/t", 1);
    second.publish_simple("twin5/t", b"hi", 1, false);
    assert_eq!(second.recv_msg().payload_str(), "hi");
}

/// Keep Alive 1 s and silence: the server closes the connection after
/// 1.5 x Keep Alive [MQTT-3.1.2-22], first sending DISCONNECT 0x8D (Keep
/// Alive timeout; optional, §4.13). boxmq is held to 1.5 s + slack;
/// Mosquitto 2.0.11 sweeps keepalives every few seconds and closes without
/// DISCONNECT, so under it the bound is 8 s (as in e2e_retain_will.rs).
#[test]
fn keepalive_timeout_disconnects_with_0x8d() {
    let b = TestBroker::start();
    let (mut c, _) = V5Client::connect_opts(b.port, &V5Opts::new("v5-ka").keepalive(1));
    let t0 = Instant::now();
    let reason = c.closed_with(Duration::from_secs(10));
    let after = t0.elapsed();
    let limit = if is_mosquitto() {
        Duration::from_secs(8)
    } else {
        Duration::from_millis(2500)
    };
    assert!(
        after >= Duration::from_millis(1000) && after <= limit,
        "closed {after:?} after going silent with keepalive 1 (limit {limit:?})"
    );
    assert_disconnect_reason(reason, 0x8D, "keepalive timeout");
}

/// A second CONNECT is a Protocol Error [MQTT-3.1.0-2]: the connection is
/// closed without a DISCONNECT (optional, §4.13), as Mosquitto 2.0.11 does
/// (its 01-connect-duplicate expects the bare close).
#[test]
fn second_connect_closes() {
    let b = TestBroker::start();
    let mut c = V5Client::connect(b.port, "v5-2connect");
    c.send(&V5Opts::new("v5-2connect").encode());
    assert_eq!(c.closed_with(CLOSE_WITHIN), None, "second CONNECT");
    assert_broker_works(b.port);
}

/// A Malformed Packet (a PUBLISH whose property length runs past the end
/// of the packet, §2.2.2.1) closes the connection [MQTT-4.13.1-1], with
/// DISCONNECT 0x81 (Malformed Packet) first (§4.13.2).
#[test]
fn malformed_packet_disconnects_with_0x81() {
    let b = TestBroker::start();
    let mut sub = V5Client::connect(b.port, "v5-mal-sub");
    sub.sub("mal/#", 0);
    let mut c = V5Client::connect(b.port, "v5-mal");
    // PUBLISH QoS 0, topic "mal/t", property length 10, then 2 bytes.
    let mut body = vec![0x00, 0x05];
    body.extend_from_slice(b"mal/t");
    body.extend_from_slice(&[0x0A, 0x01, 0x01]);
    let mut frame = vec![0x30, body.len() as u8];
    frame.extend_from_slice(&body);
    c.send(&frame);
    assert_eq!(c.closed_with(CLOSE_WITHIN), Some(0x81));
    sub.expect_nothing(Duration::from_millis(200));
    assert_broker_works(b.port);
}

/// A packet larger than the server's Maximum Packet Size (configured 1000,
/// announced in CONNACK §3.2.2.3.6) is refused with DISCONNECT 0x95 (Packet
/// too large) and close (§3.2.2.3.6, §4.13.2); it is not forwarded.
#[test]
fn packet_too_large_disconnects_with_0x95() {
    let b = TestBroker::start_with_config(&["max_packet_size 1000"]);
    let mut sub = V5Client::connect(b.port, "v5-big-sub");
    sub.sub("big/#", 0);
    let (mut c, ack) = V5Client::connect_opts(b.port, &V5Opts::new("v5-big"));
    assert_eq!(ack.props.maximum_packet_size(), Some(1000));
    let _ = c.try_send(&frame5::publish(
        "big/t",
        &[b'x'; 2000],
        0,
        false,
        0,
        &Props::new(),
    ));
    assert_eq!(c.closed_with(CLOSE_WITHIN), Some(0x95));
    sub.expect_nothing(Duration::from_millis(200));
    assert_broker_works(b.port);
}

// ---------------------------------------------------------------------------
// Enhanced authentication (not supported)
// ---------------------------------------------------------------------------

/// An Authentication Method the server does not support: CONNACK 0x8C (Bad
/// authentication method) or 0x87, and close [MQTT-4.12.0-1]. Both brokers
/// answer 0x8C.
#[test]
fn connect_with_authentication_method_refused_0x8c() {
    let b = TestBroker::start();
    let opts = V5Opts::new("v5-scram").prop(Property::AuthenticationMethod("SCRAM-SHA-1"));
    let (mut c, ack) = V5Client::connect_with(b.port, &opts);
    assert_eq!(ack.code, 0x8C, "{ack:?}");
    assert!(!ack.session_present, "[MQTT-3.2.2-6] {ack:?}");
    let got = c.expect_closed(CLOSE_WITHIN);
    assert!(got.is_empty(), "after a refusing CONNACK: {got:?}");
    assert_broker_works(b.port);
}

/// AUTH from a client that sent no Authentication Method in CONNECT is a
/// Protocol Error (§4.12): DISCONNECT 0x82 and close.
#[test]
fn auth_packet_without_method_disconnects_with_0x82() {
    let b = TestBroker::start();
    let mut c = V5Client::connect(b.port, "v5-auth");
    c.send(&frame5::auth(0x19, &Props::new()));
    assert_disconnect_reason(c.closed_with(CLOSE_WITHIN), 0x82, "AUTH without method");
    assert_broker_works(b.port);
}

// ---------------------------------------------------------------------------
// Mixed protocol versions
// ---------------------------------------------------------------------------

/// 3.1, 3.1.1 and 5.0 publishers (mosquitto_pub -V mqttv31 / mqttv311 /
/// mqttv5 with a user property) and 3.1.1 and 5.0 subscribers
/// (mosquitto_sub) on the same topics: everyone gets everything; the 5.0
/// subscriber sees the user property ([MQTT-3.3.2-17]), the 3.1.1 one gets
/// the message without it.
#[test]
fn mixed_protocol_versions_interoperate() {
    let b = TestBroker::start();
    let common = ["-t", "mix/#", "-q", "1", "-C", "3", "-W", "10"];
    let mut a311 = vec!["-V", "mqttv311", "-F", "%t|%p|%P"];
    a311.extend(common);
    let mut a5 = vec!["-V", "mqttv5", "-F", "%t|%p|%P"];
    a5.extend(common);
    let s311 = MosqSub::start(b.port, &a311);
    let s5 = MosqSub::start(b.port, &a5);

    mosquitto_pub(
        b.port,
        &[
            "-V", "mqttv31", "-i", "mix31", "-q", "1", "-t", "mix/31", "-m", "from 3.1",
        ],
    );
    mosquitto_pub(
        b.port,
        &[
            "-V",
            "mqttv311",
            "-q",
            "1",
            "-t",
            "mix/311",
            "-m",
            "from 3.1.1",
        ],
    );
    mosquitto_pub(
        b.port,
        &[
            "-V",
            "mqttv5",
            "-q",
            "1",
            "-t",
            "mix/5",
            "-m",
            "from 5.0",
            "-D",
            "publish",
            "user-property",
            "k",
            "v",
        ],
    );

    let out5 = s5.finish(Duration::from_secs(10));
    let out311 = s311.finish(Duration::from_secs(10));
    assert_eq!(
        out5.messages,
        vec![
            "mix/31|from 3.1|",
            "mix/311|from 3.1.1|",
            "mix/5|from 5.0|k:v"
        ],
        "{}",
        out5.raw
    );
    assert_eq!(
        out311.messages,
        vec!["mix/31|from 3.1|", "mix/311|from 3.1.1|", "mix/5|from 5.0|"],
        "{}",
        out311.raw
    );
}

// ---------------------------------------------------------------------------
// paho-mqtt 2.x in MQTT 5.0 mode (tests/paho/v5_*.py)
// ---------------------------------------------------------------------------

/// 100 messages at each of QoS 0, 1 and 2, delivered in order at that QoS
/// ([MQTT-4.6.0-6]).
#[test]
fn paho_v5_roundtrip_100_messages_per_qos_in_order() {
    let b = TestBroker::start();
    run_paho("v5_roundtrip", b.port, &[]);
}

/// Request/response: Response Topic, Correlation Data, Content Type and
/// User Properties (in order) pass through both ways ([MQTT-3.3.2-15],
/// [MQTT-3.3.2-16], [MQTT-3.3.2-17], [MQTT-3.3.2-18], [MQTT-3.3.2-20]).
#[test]
fn paho_v5_request_response() {
    let b = TestBroker::start();
    run_paho("v5_request_response", b.port, &[]);
}

/// clean_start=False + Session Expiry Interval: queued messages and
/// session present on reconnect ([MQTT-3.1.2-23], [MQTT-3.2.2-2]).
#[test]
fn paho_v5_session_expiry() {
    let b = TestBroker::start();
    run_paho("v5_session", b.port, &[]);
}

/// Two paho clients on one shared subscription split the messages (§4.8.2).
#[test]
fn paho_v5_shared_subscription() {
    let b = TestBroker::start();
    run_paho("v5_shared", b.port, &[]);
}

// ---------------------------------------------------------------------------
// More protocol edges
// ---------------------------------------------------------------------------

/// The Session Expiry Interval can be changed in DISCONNECT (§3.14.2.2.2):
/// 60 in CONNECT, 0 in DISCONNECT ends the session at the close (Session
/// Present 0 next time). With 0 in CONNECT, a non-zero value in DISCONNECT
/// is a Protocol Error [MQTT-3.14.2-2]: the server answers DISCONNECT 0x82
/// (optional, §4.13) and keeps no session.
#[test]
fn session_expiry_changed_by_disconnect() {
    let b = TestBroker::start();
    let opts = V5Opts::new("v5-dse").clean(false).session_expiry(60);
    let (mut c, _) = V5Client::connect_opts(b.port, &opts);
    c.sub("dse/t", 1);
    let got = c.disconnect_props(0, &Props::new().with(Property::SessionExpiryInterval(0)));
    assert!(got.is_empty(), "{got:?}");
    let (c, ack) = V5Client::connect_opts(b.port, &opts);
    assert!(
        !ack.session_present,
        "DISCONNECT set the expiry to 0: {ack:?}"
    );
    c.disconnect();

    let zero = V5Opts::new("v5-dse0").clean(false);
    let (c, _) = V5Client::connect_opts(b.port, &zero);
    let got = c.disconnect_props(0, &Props::new().with(Property::SessionExpiryInterval(30)));
    let reason = got.iter().find_map(|p| match p {
        Rx::Disconnect { reason, .. } => Some(*reason),
        _ => None,
    });
    assert_disconnect_reason(reason, 0x82, "session expiry 0 -> 30 in DISCONNECT");
    let (c, ack) = V5Client::connect_opts(b.port, &zero);
    assert!(!ack.session_present, "{ack:?}");
    c.disconnect();
}

/// Topic alias mappings are not carried from one network connection to
/// the next [MQTT-3.3.2-7]: an empty topic with the alias set on the
/// previous connection is a Protocol Error (DISCONNECT 0x82, §3.3.4).
#[test]
fn topic_alias_not_carried_over_connections() {
    let b = TestBroker::start();
    let mut sub = V5Client::connect(b.port, "v5-tac-sub");
    sub.sub("tac/#", 1);
    let alias = Props::new().with(Property::TopicAlias(2));
    let opts = V5Opts::new("v5-tac").clean(false).session_expiry(30);
    let (mut c, _) = V5Client::connect_opts(b.port, &opts);
    c.publish("tac/t", b"mapped", 1, false, &alias);
    assert_eq!(sub.recv_msg().payload_str(), "mapped");
    c.disconnect();
    let (mut c, ack) = V5Client::connect_opts(b.port, &opts);
    assert!(ack.session_present);
    let id = c.next_packet_id();
    c.send(&frame5::publish("", b"stale", 1, false, id, &alias));
    assert_eq!(c.closed_with(CLOSE_WITHIN), Some(0x82));
    sub.expect_nothing(SHORT);
}

/// A client PUBLISH carrying a Subscription Identifier is a Protocol Error
/// [MQTT-3.3.4-6]: DISCONNECT 0x82, nothing forwarded.
/// boxmq-only: Mosquitto 2.0.11 accepts such a PUBLISH.
#[test]
fn subscription_identifier_from_client_is_protocol_error() {
    if skip_unless_boxmq(
        "subscription_identifier_from_client_is_protocol_error",
        "Mosquitto 2.0.11 accepts it (PUBACK 0x00) and forwards the message",
    ) {
        return;
    }
    let b = TestBroker::start();
    let mut sub = V5Client::connect(b.port, "v5-sidc-sub");
    sub.sub("sidc/#", 1);
    let mut c = V5Client::connect(b.port, "v5-sidc");
    let props = Props::new().with(Property::SubscriptionIdentifier(7));
    c.send(&frame5::publish("sidc/t", b"x", 1, false, 1, &props));
    assert_disconnect_reason(c.closed_with(CLOSE_WITHIN), 0x82, "PUBLISH with sub id");
    sub.expect_nothing(SHORT);
}

/// No Local on a shared subscription is a Protocol Error [MQTT-3.8.3-4]:
/// DISCONNECT 0x82 (optional, §4.13) and close.
/// boxmq-only: Mosquitto 2.0.11 grants the subscription (SUBACK 0x01).
#[test]
fn no_local_on_shared_subscription_is_protocol_error() {
    if skip_unless_boxmq(
        "no_local_on_shared_subscription_is_protocol_error",
        "Mosquitto 2.0.11 grants the subscription",
    ) {
        return;
    }
    let b = TestBroker::start();
    let mut c = V5Client::connect(b.port, "v5-nlsh");
    let filters = [("$share/g/nlsh/t", sub_opts(1, true, false, 0))];
    c.send(&frame5::subscribe(1, &filters, &Props::new()));
    let reason = c.closed_with(CLOSE_WITHIN);
    assert_disconnect_reason(reason, 0x82, "No Local on a shared subscription");
    assert_broker_works(b.port);
}

/// UNSUBACK reason codes (§3.11.3): 0x00 for an existing subscription,
/// 0x11 (No subscription existed) otherwise, one per filter in order
/// [MQTT-3.11.3-1]. Unsubscribing stops delivery [MQTT-3.10.4-2].
#[test]
fn unsuback_reason_codes() {
    let b = TestBroker::start();
    let mut c = V5Client::connect(b.port, "v5-unsub");
    c.sub("uns/a", 1);
    c.sub("$share/g/uns/b", 1);
    assert_eq!(
        c.unsubscribe(&["uns/a", "uns/none", "$share/g/uns/b"]),
        vec![0x00, 0x11, 0x00]
    );
    let mut publ = V5Client::connect(b.port, "v5-unsub-pub");
    publ.publish_simple("uns/a", b"x", 1, false);
    publ.publish_simple("uns/b", b"x", 1, false);
    c.expect_nothing(SHORT);
}

/// Will properties (Content Type, User Properties, Message Expiry,
/// Response Topic, Correlation Data) are sent with the will message
/// (§3.1.3.2, [MQTT-3.3.2-17], [MQTT-3.3.2-18], [MQTT-3.3.2-20]).
#[test]
fn will_properties_forwarded() {
    let b = TestBroker::start();
    let mut w = will_watcher(b.port, "wp/#");
    let will_props = Props::new()
        .with(Property::ContentType("text/plain"))
        .with(Property::MessageExpiryInterval(120))
        .with(Property::ResponseTopic("wp/reply"))
        .with(Property::CorrelationData(b"cd"))
        .with(Property::UserProperty("a", "1"))
        .with(Property::UserProperty("a", "2"));
    let (c, _) = V5Client::connect_opts(
        b.port,
        &V5Opts::new("v5-wp").will("wp/dead", b"bye", 1, false, will_props),
    );
    c.drop_connection();
    let m = w.recv_msg();
    assert_eq!(
        (m.topic.as_str(), m.payload_str().as_str()),
        ("wp/dead", "bye")
    );
    let p = &m.props;
    assert_eq!(p.content_type().as_deref(), Some("text/plain"), "{p:?}");
    assert_eq!(p.response_topic().as_deref(), Some("wp/reply"), "{p:?}");
    assert_eq!(p.correlation_data().as_deref(), Some(&b"cd"[..]), "{p:?}");
    assert_eq!(p.user_properties(), user_props(&[("a", "1"), ("a", "2")]));
    let left = p.message_expiry().expect("will message expiry forwarded");
    assert!((118..=120).contains(&left), "{left}");
}

/// The client must not exceed the server's Receive Maximum (§3.3.4,
/// [MQTT-3.3.4-7]); when it does (QoS 2 PUBLISHes whose PUBREL never
/// comes), the server uses DISCONNECT 0x93 (Receive Maximum exceeded).
/// Configured `max_inflight_messages 3`, the 4th unreleased QoS 2 PUBLISH
/// is one too many.
/// boxmq-only: Mosquitto 2.0.11 answers PUBREC 0x97 and keeps the connection.
#[test]
fn client_exceeding_receive_maximum_disconnected_0x93() {
    if skip_unless_boxmq(
        "client_exceeding_receive_maximum_disconnected_0x93",
        "Mosquitto 2.0.11 answers PUBREC 0x97 (Quota exceeded) and stays connected",
    ) {
        return;
    }
    let b = TestBroker::start_with_config(&["max_inflight_messages 3"]);
    let (mut c, ack) = V5Client::connect_opts(b.port, &V5Opts::new("v5-rmx"));
    assert_eq!(ack.props.receive_maximum(), Some(3), "{ack:?}");
    for id in 1..=3u16 {
        c.send(&frame5::publish("rmx/t", b"x", 2, false, id, &Props::new()));
        let p = c.wait_for(
            "PUBREC",
            |p| matches!(p, Rx::PubResp { kind: PubRespKind::PubRec, id: i, .. } if *i == id),
        );
        assert!(
            matches!(p, Rx::PubResp { reason, .. } if reason < 0x80),
            "{p:?}"
        );
    }
    let _ = c.try_send(&frame5::publish("rmx/t", b"x", 2, false, 4, &Props::new()));
    let reason = c.closed_with(CLOSE_WITHIN);
    assert_disconnect_reason(reason, 0x93, "4th unreleased QoS 2 PUBLISH");
}

/// A Response Topic must not contain wildcards [MQTT-3.3.2-14]; a PUBLISH
/// with one is a Protocol Error: DISCONNECT 0x82 (optional, §4.13) and
/// close [MQTT-4.13.1-1], nothing forwarded. boxmq-only: Mosquitto 2.0.11
/// accepts and forwards it.
#[test]
fn wildcard_response_topic_is_protocol_error() {
    if skip_unless_boxmq(
        "wildcard_response_topic_is_protocol_error",
        "Mosquitto 2.0.11 accepts a wildcard Response Topic (PUBACK 0x00)",
    ) {
        return;
    }
    let b = TestBroker::start();
    let mut sub = V5Client::connect(b.port, "v5-rtw-sub");
    sub.sub("rtw/#", 1);
    let mut c = V5Client::connect(b.port, "v5-rtw");
    let props = Props::new().with(Property::ResponseTopic("rtw/replies/#"));
    c.send(&frame5::publish("rtw/t", b"x", 1, false, 1, &props));
    assert_disconnect_reason(c.closed_with(CLOSE_WITHIN), 0x82, "wildcard Response Topic");
    sub.expect_nothing(SHORT);
}
