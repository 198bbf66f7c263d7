//! MQTT 5.0 behaviour of the sans-IO core, on a fake clock.

use std::time::Duration;

use super::ConnId;
use super::CoreOptions;
use super::tests::Harness;
use crate::codec::{
    self, Connect, Packet, PacketId, Properties, PropertiesBuf, Property, ProtocolVersion, PubResp,
    PubRespKind, Publish, QoS, SubOptions, Will,
};

const V5: ProtocolVersion = ProtocolVersion::V5;

fn props(list: &[Property<'_>]) -> PropertiesBuf {
    let mut b = PropertiesBuf::new();
    for p in list {
        b.push(p);
    }
    b
}

fn pid(v: u16) -> PacketId {
    PacketId::new(v).expect("non-zero")
}

/// What a test looks at in one frame the broker sent.
#[derive(Debug, Default, Clone, PartialEq)]
struct Seen {
    kind: &'static str,
    code: u8,
    present: bool,
    topic: String,
    payload: Vec<u8>,
    qos: u8,
    retain: bool,
    pid: u16,
    props: Vec<String>,
}

fn seen(h: &mut Harness, id: ConnId) -> Vec<Seen> {
    let frames = h.frames(id);
    frames
        .iter()
        .map(|f| {
            let p = h.decode(id, f);
            let list = |pr: Properties<'_>| pr.iter().map(|x| format!("{x:?}")).collect();
            match p {
                Packet::Connack(c) => Seen {
                    kind: "CONNACK",
                    code: c.code,
                    present: c.session_present,
                    props: list(c.properties),
                    ..Seen::default()
                },
                Packet::Publish(p) => Seen {
                    kind: "PUBLISH",
                    topic: p.topic.into(),
                    payload: p.payload.into(),
                    qos: p.qos as u8,
                    retain: p.retain,
                    pid: p.packet_id.map_or(0, PacketId::get),
                    props: list(p.properties),
                    ..Seen::default()
                },
                Packet::PubResp(r) => Seen {
                    kind: match r.kind {
                        PubRespKind::PubAck => "PUBACK",
                        PubRespKind::PubRec => "PUBREC",
                        PubRespKind::PubRel => "PUBREL",
                        PubRespKind::PubComp => "PUBCOMP",
                    },
                    code: r.reason,
                    pid: r.packet_id.get(),
                    ..Seen::default()
                },
                Packet::Suback(s) => Seen {
                    kind: "SUBACK",
                    payload: s.codes.into(),
                    ..Seen::default()
                },
                Packet::Disconnect(d) => Seen {
                    kind: "DISCONNECT",
                    code: d.reason,
                    props: list(d.properties),
                    ..Seen::default()
                },
                other => Seen {
                    kind: "OTHER",
                    topic: format!("{other:?}"),
                    ..Seen::default()
                },
            }
        })
        .collect()
}

/// Connects; returns the CONNACK.
fn connect5(
    h: &mut Harness,
    client_id: &str,
    clean: bool,
    list: &[Property<'_>],
    will: Option<Will<'_>>,
) -> (ConnId, Seen) {
    let (id, all) = connect5_all(h, client_id, clean, list, will);
    (id, all.into_iter().next().unwrap_or_default())
}

/// Connects; returns everything sent right away (CONNACK, then any resent
/// or queued messages).
fn connect5_all(
    h: &mut Harness,
    client_id: &str,
    clean: bool,
    list: &[Property<'_>],
    will: Option<Will<'_>>,
) -> (ConnId, Vec<Seen>) {
    let id = h.open();
    let p = props(list);
    h.send(
        id,
        Packet::Connect(Connect {
            protocol: V5,
            clean_start: clean,
            keep_alive: 0,
            properties: p.as_properties(),
            client_id,
            will,
            username: None,
            password: None,
        }),
    );
    let all = seen(h, id);
    (id, all)
}

fn up(h: &mut Harness, client_id: &str) -> ConnId {
    let (id, ack) = connect5(h, client_id, true, &[], None);
    assert_eq!((ack.kind, ack.code), ("CONNACK", 0), "{ack:?}");
    id
}

fn sub5(
    h: &mut Harness,
    id: ConnId,
    filter: &str,
    o: SubOptions,
    sub_id: Option<u32>,
) -> Vec<Seen> {
    let p = props(
        &sub_id
            .map(Property::SubscriptionIdentifier)
            .into_iter()
            .collect::<Vec<_>>(),
    );
    let mut buf = Vec::new();
    codec::encode_subscribe(pid(1), p.as_properties(), &[(filter, o)], V5, &mut buf);
    h.bytes(id, &buf);
    seen(h, id)
}

fn opts(qos: QoS) -> SubOptions {
    SubOptions::qos_only(qos)
}

fn pub5(
    h: &mut Harness,
    id: ConnId,
    topic: &str,
    payload: &[u8],
    qos: QoS,
    retain: bool,
    list: &[Property<'_>],
) {
    let p = props(list);
    h.send(
        id,
        Packet::Publish(Publish {
            dup: false,
            qos,
            retain,
            topic,
            packet_id: (qos != QoS::AtMostOnce).then(|| pid(11)),
            properties: p.as_properties(),
            payload,
        }),
    );
}

fn disconnect5(h: &mut Harness, id: ConnId, reason: u8, list: &[Property<'_>]) {
    let p = props(list);
    h.send(
        id,
        Packet::Disconnect(codec::Disconnect {
            reason,
            properties: p.as_properties(),
        }),
    );
    h.core.handle_close(id, h.now);
}

fn publishes(h: &mut Harness, id: ConnId) -> Vec<Seen> {
    seen(h, id)
        .into_iter()
        .filter(|s| s.kind == "PUBLISH")
        .collect()
}

#[test]
fn connack_advertises_limits_and_assigned_id() {
    // [MQTT-3.2.2-16] assigned client identifier; receive maximum and
    // topic alias maximum announced; no maximum packet size by default
    // (none but MQTT's, as Mosquitto) [MQTT-3.2.2-15].
    let mut h = Harness::new();
    let (_, ack) = connect5(&mut h, "", true, &[], None);
    assert_eq!(ack.code, 0);
    let joined = ack.props.join(" ");
    assert!(
        joined.contains("AssignedClientIdentifier(\"auto-"),
        "{joined}"
    );
    assert!(joined.contains("ReceiveMaximum(100)"), "{joined}");
    assert!(!joined.contains("MaximumPacketSize"), "{joined}");
    assert!(joined.contains("TopicAliasMaximum(10)"), "{joined}");
}

#[test]
fn session_expiry_keeps_the_session_then_drops_it() {
    // [MQTT-3.1.2-23]
    let mut h = Harness::new();
    let expiry = [Property::SessionExpiryInterval(10)];
    let (s, _) = connect5(&mut h, "p", false, &expiry, None);
    sub5(&mut h, s, "t", opts(QoS::AtLeastOnce), None);
    disconnect5(&mut h, s, 0, &[]);
    let p = up(&mut h, "pub");
    pub5(&mut h, p, "t", b"kept", QoS::AtLeastOnce, false, &[]);
    h.advance(Duration::from_secs(5));
    let (s2, all) = connect5_all(&mut h, "p", false, &expiry, None);
    assert!(all[0].present, "{all:?}");
    assert_eq!(all[1].payload, b"kept");
    // Gone again; after the interval the session is dropped.
    disconnect5(&mut h, s2, 0, &[]);
    h.advance(Duration::from_secs(11));
    let (_, ack) = connect5(&mut h, "p", false, &expiry, None);
    assert!(!ack.present, "{ack:?}");
    // Session expiry 0 (the default): the session ends with the connection.
    let (z, _) = connect5(&mut h, "z", false, &[], None);
    disconnect5(&mut h, z, 0, &[]);
    let (_, ack) = connect5(&mut h, "z", false, &[], None);
    assert!(!ack.present);
}

fn will<'a>(topic: &'a str, p: &'a PropertiesBuf) -> Will<'a> {
    Will {
        topic,
        payload: b"gone",
        qos: QoS::AtMostOnce,
        retain: false,
        properties: p.as_properties(),
    }
}

#[test]
fn will_delay_publishes_late_and_reconnect_cancels() {
    // [MQTT-3.1.3-9]
    let mut h = Harness::new();
    let w = up(&mut h, "watcher");
    sub5(&mut h, w, "will/#", opts(QoS::AtMostOnce), None);
    let delay = props(&[Property::WillDelayInterval(5)]);
    let expiry = [Property::SessionExpiryInterval(60)];
    let (a, _) = connect5(&mut h, "a", false, &expiry, Some(will("will/a", &delay)));
    h.core.handle_close(a, h.now);
    h.advance(Duration::from_secs(4));
    assert!(publishes(&mut h, w).is_empty(), "not before the delay");
    h.advance(Duration::from_secs(2));
    assert_eq!(publishes(&mut h, w).len(), 1, "after the delay");

    let (b, _) = connect5(&mut h, "b", false, &expiry, Some(will("will/b", &delay)));
    h.core.handle_close(b, h.now);
    h.advance(Duration::from_secs(2));
    connect5(&mut h, "b", false, &expiry, None);
    h.advance(Duration::from_secs(10));
    assert!(publishes(&mut h, w).is_empty(), "reconnecting cancelled it");
}

#[test]
fn will_delay_is_cut_short_by_session_end() {
    // The will goes when the session ends, if that is before the delay.
    let mut h = Harness::new();
    let w = up(&mut h, "watcher");
    sub5(&mut h, w, "will/#", opts(QoS::AtMostOnce), None);
    let delay = props(&[Property::WillDelayInterval(100)]);
    let expiry = [Property::SessionExpiryInterval(3)];
    let (a, _) = connect5(&mut h, "a", false, &expiry, Some(will("will/a", &delay)));
    h.core.handle_close(a, h.now);
    h.advance(Duration::from_secs(4));
    assert_eq!(publishes(&mut h, w).len(), 1);
}

#[test]
fn disconnect_with_will_message_reason() {
    // DISCONNECT 0x04 publishes the will; 0x00 does not [MQTT-3.14.4-3].
    let mut h = Harness::new();
    let w = up(&mut h, "watcher");
    sub5(&mut h, w, "will/#", opts(QoS::AtMostOnce), None);
    let none = PropertiesBuf::new();
    let (a, _) = connect5(&mut h, "a", true, &[], Some(will("will/a", &none)));
    disconnect5(&mut h, a, 0x04, &[]);
    let (b, _) = connect5(&mut h, "b", true, &[], Some(will("will/b", &none)));
    disconnect5(&mut h, b, 0x00, &[]);
    let got = publishes(&mut h, w);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].topic, "will/a");
}

#[test]
fn message_expiry_is_reduced_and_enforced() {
    // [MQTT-3.3.2-5] [MQTT-3.3.2-6]
    let mut h = Harness::new();
    let expiry = [Property::SessionExpiryInterval(100)];
    let (s, _) = connect5(&mut h, "s", false, &expiry, None);
    sub5(&mut h, s, "t/#", opts(QoS::AtLeastOnce), None);
    disconnect5(&mut h, s, 0, &[]);
    let p = up(&mut h, "p");
    pub5(
        &mut h,
        p,
        "t/long",
        b"60",
        QoS::AtLeastOnce,
        false,
        &[Property::MessageExpiryInterval(60)],
    );
    pub5(
        &mut h,
        p,
        "t/short",
        b"2",
        QoS::AtLeastOnce,
        false,
        &[Property::MessageExpiryInterval(2)],
    );
    pub5(
        &mut h,
        p,
        "t/ret",
        b"r",
        QoS::AtMostOnce,
        true,
        &[Property::MessageExpiryInterval(1)],
    );
    h.advance(Duration::from_secs(10));
    let (_, all) = connect5_all(&mut h, "s", false, &expiry, None);
    let got: Vec<Seen> = all.into_iter().filter(|s| s.kind == "PUBLISH").collect();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].payload, b"60");
    assert!(
        got[0]
            .props
            .contains(&"MessageExpiryInterval(50)".to_string()),
        "{got:?}"
    );
    // The expired retained message is not sent to a new subscription.
    let late = up(&mut h, "late");
    let out = sub5(&mut h, late, "t/ret", opts(QoS::AtMostOnce), None);
    assert_eq!(out.len(), 1, "{out:?}");
}

#[test]
fn topic_aliases_set_used_and_refused() {
    // [MQTT-3.3.2-12] use; [MQTT-3.3.2-10] out of range -> 0x94
    let mut h = Harness::new();
    let s = up(&mut h, "s");
    sub5(&mut h, s, "alias/#", opts(QoS::AtMostOnce), None);
    let p = up(&mut h, "p");
    pub5(
        &mut h,
        p,
        "alias/x",
        b"1",
        QoS::AtMostOnce,
        false,
        &[Property::TopicAlias(3)],
    );
    pub5(
        &mut h,
        p,
        "",
        b"2",
        QoS::AtMostOnce,
        false,
        &[Property::TopicAlias(3)],
    );
    let got = publishes(&mut h, s);
    assert_eq!(
        got.iter().map(|g| g.topic.as_str()).collect::<Vec<_>>(),
        ["alias/x", "alias/x"]
    );
    // The alias is not forwarded (it is per hop).
    assert!(got.iter().all(|g| g.props.is_empty()), "{got:?}");

    pub5(
        &mut h,
        p,
        "alias/y",
        b"3",
        QoS::AtMostOnce,
        false,
        &[Property::TopicAlias(17)],
    );
    let out = seen(&mut h, p);
    assert_eq!((out[0].kind, out[0].code), ("DISCONNECT", 0x94));
    assert!(h.core.is_closing(p));

    let q = up(&mut h, "q");
    pub5(
        &mut h,
        q,
        "",
        b"4",
        QoS::AtMostOnce,
        false,
        &[Property::TopicAlias(2)],
    );
    let out = seen(&mut h, q);
    assert_eq!((out[0].kind, out[0].code), ("DISCONNECT", 0x82));
}

#[test]
fn invalid_utf8_payload_with_format_indicator_is_refused() {
    // [MQTT-3.3.2-4]
    let mut h = Harness::new();
    let s = up(&mut h, "s");
    sub5(&mut h, s, "t", opts(QoS::AtLeastOnce), None);
    let p = up(&mut h, "p");
    pub5(
        &mut h,
        p,
        "t",
        &[0xff, 0xfe],
        QoS::AtLeastOnce,
        false,
        &[Property::PayloadFormatIndicator(1)],
    );
    let out = seen(&mut h, p);
    assert_eq!((out[0].kind, out[0].code), ("PUBACK", 0x99));
    assert!(publishes(&mut h, s).is_empty());
    pub5(
        &mut h,
        p,
        "t",
        &[0xff],
        QoS::AtMostOnce,
        false,
        &[Property::PayloadFormatIndicator(1)],
    );
    let out = seen(&mut h, p);
    assert_eq!((out[0].kind, out[0].code), ("DISCONNECT", 0x99));
}

#[test]
fn application_properties_pass_through_in_order() {
    // [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18]
    let mut h = Harness::new();
    let s = up(&mut h, "s");
    sub5(&mut h, s, "req", opts(QoS::AtLeastOnce), None);
    let old = h.open();
    h.send(
        old,
        Packet::Connect(Connect {
            protocol: ProtocolVersion::V311,
            clean_start: true,
            keep_alive: 0,
            properties: Properties::EMPTY,
            client_id: "old",
            will: None,
            username: None,
            password: None,
        }),
    );
    let mut buf = Vec::new();
    codec::encode_subscribe(
        pid(2),
        Properties::EMPTY,
        &[("req", opts(QoS::AtLeastOnce))],
        ProtocolVersion::V311,
        &mut buf,
    );
    h.bytes(old, &buf);
    seen(&mut h, old);

    let p = up(&mut h, "p");
    let list = [
        Property::PayloadFormatIndicator(1),
        Property::ContentType("application/json"),
        Property::ResponseTopic("resp/1"),
        Property::CorrelationData(b"\x01\x02"),
        Property::UserProperty("k", "1"),
        Property::UserProperty("a", "2"),
        Property::UserProperty("k", "3"),
    ];
    pub5(&mut h, p, "req", b"{}", QoS::AtLeastOnce, false, &list);
    assert_eq!(seen(&mut h, p)[0].code, 0, "PUBACK success");
    let got = publishes(&mut h, s);
    let expected: Vec<String> = list.iter().map(|x| format!("{x:?}")).collect();
    assert_eq!(got[0].props, expected);
    // The 3.1.1 subscriber gets the message without properties.
    let got = publishes(&mut h, old);
    assert_eq!(got[0].payload, b"{}");
}

#[test]
fn puback_says_when_nobody_subscribed() {
    let mut h = Harness::new();
    let p = up(&mut h, "p");
    pub5(&mut h, p, "nobody", b"x", QoS::AtLeastOnce, false, &[]);
    let out = seen(&mut h, p);
    assert_eq!((out[0].kind, out[0].code), ("PUBACK", 0x10));
}

#[test]
fn no_local_and_retain_as_published() {
    // [MQTT-3.8.3-3] No Local; [MQTT-3.3.1-12] [MQTT-3.3.1-13] Retain As Published
    let mut h = Harness::new();
    let a = up(&mut h, "a");
    let nl = SubOptions {
        no_local: true,
        ..opts(QoS::AtMostOnce)
    };
    sub5(&mut h, a, "t", nl, None);
    let rap = SubOptions {
        retain_as_published: true,
        ..opts(QoS::AtMostOnce)
    };
    let b = up(&mut h, "b");
    sub5(&mut h, b, "t", rap, None);
    pub5(&mut h, a, "t", b"self", QoS::AtMostOnce, true, &[]);
    assert!(publishes(&mut h, a).is_empty());
    let got = publishes(&mut h, b);
    assert!(got[0].retain, "{got:?}");
}

#[test]
fn retain_handling_0_1_2() {
    // [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11]
    let mut h = Harness::new();
    let p = up(&mut h, "p");
    pub5(&mut h, p, "r", b"kept", QoS::AtMostOnce, true, &[]);
    let s = up(&mut h, "s");
    let rh = |n| SubOptions {
        retain_handling: n,
        ..opts(QoS::AtMostOnce)
    };
    assert_eq!(
        sub5(&mut h, s, "r", rh(1), None).len(),
        2,
        "new subscription: sent"
    );
    assert_eq!(
        sub5(&mut h, s, "r", rh(1), None).len(),
        1,
        "existing: not sent"
    );
    assert_eq!(sub5(&mut h, s, "r", rh(0), None).len(), 2, "0: always sent");
    assert_eq!(sub5(&mut h, s, "r", rh(2), None).len(), 1, "2: never");
}

#[test]
fn subscription_identifiers_of_all_matches() {
    // [MQTT-3.3.4-3] [MQTT-3.3.4-5]
    let mut h = Harness::new();
    let s = up(&mut h, "s");
    sub5(&mut h, s, "a/+", opts(QoS::AtMostOnce), Some(1));
    sub5(&mut h, s, "a/#", opts(QoS::AtLeastOnce), Some(2));
    let p = up(&mut h, "p");
    pub5(&mut h, p, "a/b", b"x", QoS::AtLeastOnce, false, &[]);
    let got = publishes(&mut h, s);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].qos, 1);
    let mut ids = got[0].props.clone();
    ids.sort();
    assert_eq!(
        ids,
        ["SubscriptionIdentifier(1)", "SubscriptionIdentifier(2)"]
    );
}

#[test]
fn shared_subscriptions_balance_and_skip_retained() {
    let mut h = Harness::new();
    let p = up(&mut h, "p");
    pub5(&mut h, p, "jobs/1", b"old", QoS::AtMostOnce, true, &[]);
    let a = up(&mut h, "a");
    let b = up(&mut h, "b");
    let out = sub5(
        &mut h,
        a,
        "$share/workers/jobs/#",
        opts(QoS::AtMostOnce),
        None,
    );
    assert_eq!(
        out.len(),
        1,
        "no retained message on a shared subscription: {out:?}"
    );
    sub5(
        &mut h,
        b,
        "$share/workers/jobs/#",
        opts(QoS::AtMostOnce),
        None,
    );
    for i in 0..10u8 {
        pub5(&mut h, p, "jobs/1", &[i], QoS::AtMostOnce, false, &[]);
    }
    let ga = publishes(&mut h, a).len();
    let gb = publishes(&mut h, b).len();
    assert_eq!((ga, gb), (5, 5));
    // A member that leaves no longer gets any.
    let mut buf = Vec::new();
    codec::encode_unsubscribe(
        pid(3),
        Properties::EMPTY,
        &["$share/workers/jobs/#"],
        V5,
        &mut buf,
    );
    h.bytes(a, &buf);
    seen(&mut h, a);
    pub5(&mut h, p, "jobs/1", b"x", QoS::AtMostOnce, false, &[]);
    assert_eq!(publishes(&mut h, a).len(), 0);
    assert_eq!(publishes(&mut h, b).len(), 1);
    // No Local on a shared subscription is a protocol error [MQTT-3.8.3-4].
    let nl = SubOptions {
        no_local: true,
        ..opts(QoS::AtMostOnce)
    };
    let out = sub5(&mut h, b, "$share/g/x", nl, None);
    assert_eq!((out[0].kind, out[0].code), ("DISCONNECT", 0x82));
}

#[test]
fn client_maximum_packet_size_drops_big_messages() {
    // [MQTT-3.1.2-24] [MQTT-3.1.2-25]
    let mut h = Harness::new();
    let (small, _) = connect5(
        &mut h,
        "small",
        true,
        &[Property::MaximumPacketSize(100)],
        None,
    );
    sub5(&mut h, small, "t", opts(QoS::AtLeastOnce), None);
    let big = up(&mut h, "big");
    sub5(&mut h, big, "t", opts(QoS::AtLeastOnce), None);
    let p = up(&mut h, "p");
    pub5(&mut h, p, "t", &[7u8; 500], QoS::AtLeastOnce, false, &[]);
    pub5(&mut h, p, "t", b"small", QoS::AtMostOnce, false, &[]);
    let got = publishes(&mut h, small);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, b"small");
    assert_eq!(publishes(&mut h, big).len(), 2);
    assert!(h.core.stats().publish_dropped >= 1);
}

#[test]
fn client_receive_maximum_caps_inflight() {
    // [MQTT-3.3.4-7]
    let mut h = Harness::new();
    let (s, _) = connect5(&mut h, "s", true, &[Property::ReceiveMaximum(2)], None);
    sub5(&mut h, s, "t", opts(QoS::AtLeastOnce), None);
    let p = up(&mut h, "p");
    for i in 0..5u8 {
        pub5(&mut h, p, "t", &[i], QoS::AtLeastOnce, false, &[]);
    }
    let got = publishes(&mut h, s);
    assert_eq!(got.len(), 2);
    h.send(
        s,
        Packet::PubResp(PubResp {
            kind: PubRespKind::PubAck,
            packet_id: pid(got[0].pid),
            reason: 0,
            properties: Properties::EMPTY,
        }),
    );
    assert_eq!(publishes(&mut h, s).len(), 1);
}

/// Only a close that told the client what rule it broke asks the loop to
/// linger (see `Core::linger`): not a takeover, not a shutdown, not a
/// client that left by itself.
#[test]
fn only_a_disconnect_for_a_broken_rule_lingers() {
    let mut h = Harness::new();
    let m = up(&mut h, "m");
    h.bytes(m, &[0x30, 0x03, 0x00, 0x05, b'a']);
    assert!(h.core.is_closing(m) && h.core.linger(m));
    let old = up(&mut h, "same");
    up(&mut h, "same");
    assert!(h.core.is_closing(old) && !h.core.linger(old));
    let gone = up(&mut h, "gone");
    disconnect5(&mut h, gone, 0, &[]);
    assert!(!h.core.linger(gone));
    let stays = up(&mut h, "stays");
    h.core.shutdown(h.now);
    assert!(h.core.is_closing(stays) && !h.core.linger(stays));
}

#[test]
fn server_disconnect_reason_codes() {
    let mut h = Harness::new();
    // Takeover: 0x8E to the old connection.
    let old = up(&mut h, "same");
    up(&mut h, "same");
    let out = seen(&mut h, old);
    assert_eq!((out[0].kind, out[0].code), ("DISCONNECT", 0x8E));
    // Keepalive: 0x8D.
    let id = h.open();
    h.send(
        id,
        Packet::Connect(Connect {
            protocol: V5,
            clean_start: true,
            keep_alive: 2,
            properties: Properties::EMPTY,
            client_id: "k",
            will: None,
            username: None,
            password: None,
        }),
    );
    seen(&mut h, id);
    h.advance(Duration::from_secs(4));
    let out = seen(&mut h, id);
    assert_eq!((out[0].kind, out[0].code), ("DISCONNECT", 0x8D));
    // Malformed packet: 0x81, the bare code by default (Mosquitto's bytes).
    let m = up(&mut h, "m");
    h.bytes(m, &[0x30, 0x03, 0x00, 0x05, b'a']);
    let out = seen(&mut h, m);
    assert_eq!((out[0].kind, out[0].code), ("DISCONNECT", 0x81));
    assert!(out[0].props.is_empty(), "{out:?}");
    // A client asking for problem information gets the Reason String.
    let (r, ack) = connect5(
        &mut h,
        "r",
        true,
        &[Property::RequestProblemInformation(1)],
        None,
    );
    assert_eq!(ack.code, 0, "{ack:?}");
    h.bytes(r, &[0x30, 0x03, 0x00, 0x05, b'a']);
    let out = seen(&mut h, r);
    assert_eq!((out[0].kind, out[0].code), ("DISCONNECT", 0x81));
    assert!(out[0].props[0].starts_with("ReasonString"), "{out:?}");
    // So does every client when the config turns them on.
    let config = CoreOptions {
        reason_strings: true,
        ..CoreOptions::default()
    };
    let mut hr = Harness::with(config);
    let d = up(&mut hr, "d");
    hr.bytes(d, &[0x30, 0x03, 0x00, 0x05, b'a']);
    let out = seen(&mut hr, d);
    assert!(out[0].props[0].starts_with("ReasonString"), "{out:?}");
    // Request Problem Information 0 wins over the config line.
    let (z, _) = connect5(
        &mut hr,
        "z",
        true,
        &[Property::RequestProblemInformation(0)],
        None,
    );
    hr.bytes(z, &[0x30, 0x03, 0x00, 0x05, b'a']);
    let out = seen(&mut hr, z);
    assert!(out[0].props.is_empty(), "{out:?}");
    // Packet too large: 0x95.
    let mut config = CoreOptions::default();
    config.limits.max_packet_size = 1000;
    let mut h = Harness::with(config);
    let (t, ack) = connect5(&mut h, "t", true, &[], None);
    assert!(ack.props.join(" ").contains("MaximumPacketSize(1000)"));
    h.bytes(t, &[0x30, 0xd0, 0x0f]);
    let out = seen(&mut h, t);
    assert_eq!((out[0].kind, out[0].code), ("DISCONNECT", 0x95));
}

#[test]
fn authentication_method_is_refused() {
    // No enhanced authentication method is supported: 0x8C.
    let mut h = Harness::new();
    let (id, ack) = connect5(
        &mut h,
        "a",
        true,
        &[Property::AuthenticationMethod("SCRAM-SHA-1")],
        None,
    );
    assert_eq!((ack.kind, ack.code), ("CONNACK", 0x8C));
    assert!(h.core.is_closing(id));
    // AUTH without a method: protocol error.
    let b = up(&mut h, "b");
    h.send(
        b,
        Packet::Auth(codec::Auth {
            reason: 0x18,
            properties: Properties::EMPTY,
        }),
    );
    let out = seen(&mut h, b);
    assert_eq!((out[0].kind, out[0].code), ("DISCONNECT", 0x82));
}

#[test]
fn session_expiry_cannot_be_set_on_disconnect_after_zero() {
    // [MQTT-3.14.2-2]
    let mut h = Harness::new();
    let a = up(&mut h, "a");
    h.send(
        a,
        Packet::Disconnect(codec::Disconnect {
            reason: 0,
            properties: props(&[Property::SessionExpiryInterval(30)]).as_properties(),
        }),
    );
    let out = seen(&mut h, a);
    assert_eq!((out[0].kind, out[0].code), ("DISCONNECT", 0x82));
}

#[test]
fn mosquitto_answers_to_broken_clients() {
    // What Mosquitto's msg_sequence corpus expects, where the spec leaves
    // the reaction open.
    let cases: &[(&[u8], Option<u8>)] = &[
        // A packet only a server sends: 0x82, judged by type first.
        (&[0x20, 0x03, 0x00, 0x00, 0x00], Some(0x82)),
        // ... but a CONNACK with reserved flags, or a second CONNECT, is
        // closed at once (Mosquitto 2.0.11).
        (&[0x21, 0x00], None),
        (&[0x10, 0x00], None),
        (&[0x90, 0x00], Some(0x82)),
        (&[0xD0, 0x00], Some(0x82)),
        (&[0xF0, 0x01, 0x00], Some(0x82)),
        // SUBACK with bad flags is malformed first.
        (&[0x91, 0x03, 0x00, 0x01, 0x00], Some(0x81)),
        // PINGREQ or PINGRESP with a body: closed without DISCONNECT.
        (&[0xC0, 0x01, 0x00], None),
        (&[0xD0, 0x01, 0x00], None),
        // DISCONNECT with an undefined reason code: closed, no answer.
        (&[0xE0, 0x01, 0x05], None),
        // PUBCOMP with a reason PUBCOMP cannot carry: 0x82.
        (&[0x70, 0x03, 0x00, 0x01, 0x20], Some(0x82)),
        // A control character in a topic: malformed.
        (
            &[0x30, 0x06, 0x00, 0x02, b'a', 0x01, 0x00, b'x'],
            Some(0x81),
        ),
        // An empty filter in UNSUBSCRIBE: malformed.
        (
            &[0xA2, 0x08, 0x12, 0x34, 0x00, 0x00, 0x00, 0x00, 0x01, b'q'],
            Some(0x81),
        ),
        // A shared subscription without a filter: protocol error.
        (
            &[
                0x82, 0x0E, 0x12, 0x34, 0x00, 0x00, 0x08, b'$', b's', b'h', b'a', b'r', b'e', b'/',
                b'p', 0x00,
            ],
            Some(0x82),
        ),
    ];
    for (bytes, want) in cases {
        let mut h = Harness::new();
        let c = up(&mut h, "c");
        h.bytes(c, bytes);
        let out = seen(&mut h, c);
        match want {
            Some(code) => assert_eq!(
                out.first().map(|o| (o.kind, o.code)),
                Some(("DISCONNECT", *code)),
                "{bytes:02X?}: {out:?}"
            ),
            None => assert!(out.is_empty(), "{bytes:02X?}: {out:?}"),
        }
        assert!(h.core.is_closing(c), "{bytes:02X?}");
    }
}

#[test]
fn acks_of_the_wrong_kind_are_protocol_errors() {
    // PUBREC or PUBCOMP for a QoS 1 message, PUBACK or an early PUBCOMP for
    // a QoS 2 one: closed without DISCONNECT, as Mosquitto 2.0.11 does (its
    // 02-subpub-qos*-bad-* scripts). An unknown packet id is ignored
    // (PUBACK, PUBCOMP) or answered with a success PUBREL (PUBREC).
    for (qos, ack) in [
        (QoS::AtLeastOnce, 0x50u8),
        (QoS::AtLeastOnce, 0x70),
        (QoS::ExactlyOnce, 0x40),
        (QoS::ExactlyOnce, 0x70),
    ] {
        let mut h = Harness::new();
        let s = up(&mut h, "s");
        sub5(&mut h, s, "p", opts(qos), None);
        let p = up(&mut h, "p");
        pub5(&mut h, p, "p", b"m", qos, false, &[]);
        seen(&mut h, p);
        assert_eq!(publishes(&mut h, s).len(), 1);
        h.bytes(s, &[ack, 0x02, 0x00, 0x01]);
        let out = seen(&mut h, s);
        assert!(out.is_empty(), "{qos:?} {ack:02X}: {out:?}");
        assert!(h.core.is_closing(s), "{qos:?} {ack:02X}");
    }
    let mut h = Harness::new();
    let c = up(&mut h, "c");
    h.bytes(c, &[0x40, 0x02, 0x00, 0x09]);
    h.bytes(c, &[0x70, 0x02, 0x00, 0x09]);
    assert!(seen(&mut h, c).is_empty());
    h.bytes(c, &[0x50, 0x02, 0x00, 0x09]);
    let out = seen(&mut h, c);
    assert_eq!((out[0].kind, out[0].code), ("PUBREL", 0), "{out:?}");
    // A failing PUBREC for an unknown id gets nothing.
    h.bytes(c, &[0x50, 0x03, 0x00, 0x0A, 0x80]);
    assert!(seen(&mut h, c).is_empty());
    assert!(!h.core.is_closing(c));
}

/// A 5.0 CONNECT with this keep alive; returns the connection and CONNACK.
fn connect_keep_alive(h: &mut Harness, client_id: &str, keep_alive: u16) -> (ConnId, Seen) {
    let id = h.open();
    h.send(
        id,
        Packet::Connect(Connect {
            protocol: V5,
            clean_start: true,
            keep_alive,
            properties: Properties::EMPTY,
            client_id,
            will: None,
            username: None,
            password: None,
        }),
    );
    let ack = seen(h, id).into_iter().next().unwrap_or_default();
    (id, ack)
}

#[test]
fn max_keepalive_is_announced_as_server_keep_alive_and_enforced() {
    let mut options = CoreOptions::default();
    options.limits.max_keepalive = 10;
    let mut h = Harness::with(options);
    // [MQTT-3.2.2-21]: a longer keep alive, or none, is replaced by the
    // Server Keep Alive, which the client must use.
    for (client, asked) in [("long", 600), ("none", 0)] {
        let (id, ack) = connect_keep_alive(&mut h, client, asked);
        assert_eq!((ack.kind, ack.code), ("CONNACK", 0), "{ack:?}");
        let joined = ack.props.join(" ");
        assert!(joined.contains("ServerKeepAlive(10)"), "{client}: {joined}");
        // Held to it: 1.5 x 10 s without a packet closes with 0x8D.
        h.advance(Duration::from_secs(16));
        let out = seen(&mut h, id);
        assert_eq!(
            out.first().map(|s| (s.kind, s.code)),
            Some(("DISCONNECT", 0x8D)),
            "{client}: {out:?}"
        );
    }
    // Within the limit: no Server Keep Alive, the client's own applies.
    let (_, ack) = connect_keep_alive(&mut h, "short", 5);
    assert!(!ack.props.join(" ").contains("ServerKeepAlive"), "{ack:?}");
    // Without max_keepalive (65,535): never announced.
    let mut h = Harness::new();
    let (_, ack) = connect_keep_alive(&mut h, "free", 0);
    assert!(!ack.props.join(" ").contains("ServerKeepAlive"), "{ack:?}");
}
