//! MQTT 5.0 corners of the sans-IO core, on a fake clock: topic aliases
//! from the broker to a client, the broker's Receive Maximum, and a QoS 0
//! PUBLISH with DUP set.

use super::ConnId;
use super::CoreOptions;
use super::tests::Harness;
use crate::codec::{
    self, Connect, Packet, PacketId, PropertiesBuf, Property, ProtocolVersion, PubResp,
    PubRespKind, Publish, QoS, SubOptions,
};

const V5: ProtocolVersion = ProtocolVersion::V5;

fn pid(v: u16) -> PacketId {
    PacketId::new(v).expect("non-zero")
}

/// One PUBLISH as the broker sent it: topic, alias, payload, packet id.
#[derive(Debug, PartialEq)]
struct Got {
    topic: String,
    alias: Option<u16>,
    payload: Vec<u8>,
    pid: u16,
}

/// Every frame the broker sent to `id`: PUBLISHes as [`Got`], the rest as
/// short text ("DISCONNECT 0x93", "PubAck 1").
fn sent(h: &mut Harness, id: ConnId) -> (Vec<Got>, Vec<String>) {
    let mut publishes = Vec::new();
    let mut other = Vec::new();
    for f in h.frames(id) {
        match h.decode(id, &f) {
            Packet::Publish(p) => publishes.push(Got {
                topic: p.topic.into(),
                alias: p.properties.topic_alias(),
                payload: p.payload.into(),
                pid: p.packet_id.map_or(0, PacketId::get),
            }),
            Packet::Disconnect(d) => other.push(format!("DISCONNECT {:#04x}", d.reason)),
            Packet::PubResp(r) => other.push(format!("{:?} {}", r.kind, r.packet_id.get())),
            p => other.push(format!("{p:?}")),
        }
    }
    (publishes, other)
}

/// A 5.0 client that connects with `props` (and Session Expiry 60 when
/// not `clean`) and, with `filter`, subscribes at QoS 1.
fn client(
    h: &mut Harness,
    client_id: &str,
    clean: bool,
    props: &[Property<'_>],
    filter: Option<&str>,
) -> ConnId {
    let id = h.open();
    let mut p = PropertiesBuf::new();
    for x in props {
        p.push(x);
    }
    if !clean {
        p.push(&Property::SessionExpiryInterval(60));
    }
    h.send(
        id,
        Packet::Connect(Connect {
            protocol: V5,
            clean_start: clean,
            keep_alive: 0,
            properties: p.as_properties(),
            client_id,
            will: None,
            username: None,
            password: None,
        }),
    );
    if let Some(filter) = filter {
        let mut buf = Vec::new();
        let o = SubOptions::qos_only(QoS::AtLeastOnce);
        codec::encode_subscribe(
            pid(1),
            PropertiesBuf::new().as_properties(),
            &[(filter, o)],
            V5,
            &mut buf,
        );
        h.bytes(id, &buf);
    }
    let _ = h.frames(id);
    id
}

fn publish(h: &mut Harness, id: ConnId, topic: &str, payload: &[u8], qos: QoS, packet_id: u16) {
    h.send(
        id,
        Packet::Publish(Publish {
            dup: false,
            qos,
            retain: false,
            topic,
            packet_id: (qos != QoS::AtMostOnce).then(|| pid(packet_id)),
            properties: PropertiesBuf::new().as_properties(),
            payload,
        }),
    );
}

const BUTTON: &str = "shellies/shellybutton1-A4CF12F45A10/input_event/0";
const PLUG: &str = "shellies/shellyplug-s-C45BBE/relay/0/power";
const DOOR: &str = "shellies/shellydw2-483FDA/sensor/state";

#[test]
fn aliases_name_a_topic_once_then_replace_it() {
    // [MQTT-3.1.2-26] [MQTT-3.3.2-11]: at most the client's maximum (2);
    // §3.3.2.3.4: name and alias first, then an empty name and the alias.
    let mut h = Harness::new();
    let s = client(
        &mut h,
        "s",
        true,
        &[Property::TopicAliasMaximum(2)],
        Some("shellies/#"),
    );
    let p = client(&mut h, "p", true, &[], None);
    for (topic, payload) in [
        (BUTTON, "1"),
        (BUTTON, "2"),
        (PLUG, "3"),
        (BUTTON, "4"),
        (DOOR, "5"),
        (PLUG, "6"),
        (BUTTON, "7"),
    ] {
        publish(&mut h, p, topic, payload.as_bytes(), QoS::AtMostOnce, 0);
    }
    let (got, _) = sent(&mut h, s);
    let wire: Vec<(&str, Option<u16>, &[u8])> = got
        .iter()
        .map(|g| (g.topic.as_str(), g.alias, &g.payload[..]))
        .collect();
    assert_eq!(
        wire,
        [
            (BUTTON, Some(1), &b"1"[..]),
            ("", Some(1), b"2"),
            (PLUG, Some(2), b"3"),
            ("", Some(1), b"4"),
            // Both taken: the one used least recently (PLUG's) is given to
            // DOOR, named with it; PLUG must be named again.
            (DOOR, Some(2), b"5"),
            (PLUG, Some(1), b"6"),
            (BUTTON, Some(2), b"7"),
        ]
    );
}

#[test]
fn no_aliases_for_clients_that_take_none() {
    // [MQTT-3.1.2-27]: absent or 0, no alias; `max_topic_aliases 0` turns
    // them off from the broker too.
    let mut h = Harness::new();
    let none = client(&mut h, "none", true, &[], Some("shellies/#"));
    let zero = client(
        &mut h,
        "zero",
        true,
        &[Property::TopicAliasMaximum(0)],
        Some("shellies/#"),
    );
    let p = client(&mut h, "p", true, &[], None);
    publish(&mut h, p, BUTTON, b"1", QoS::AtLeastOnce, 1);
    publish(&mut h, p, BUTTON, b"2", QoS::AtMostOnce, 0);
    for id in [none, zero] {
        let (got, _) = sent(&mut h, id);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got.iter().all(|g| g.topic == BUTTON && g.alias.is_none()),
            "{got:?}"
        );
    }

    let mut options = CoreOptions::default();
    options.limits.max_topic_aliases = 0;
    let mut h = Harness::with(options);
    let s = client(
        &mut h,
        "s",
        true,
        &[Property::TopicAliasMaximum(5)],
        Some("shellies/#"),
    );
    let p = client(&mut h, "p", true, &[], None);
    publish(&mut h, p, BUTTON, b"1", QoS::AtMostOnce, 0);
    publish(&mut h, p, BUTTON, b"2", QoS::AtMostOnce, 0);
    let (got, _) = sent(&mut h, s);
    assert!(got.iter().all(|g| g.alias.is_none()), "{got:?}");
}

#[test]
fn aliases_start_again_on_a_new_connection() {
    // [MQTT-3.3.2-7]: no mapping carried from one network connection to the
    // next: the unacknowledged message is sent again with its name.
    let mut h = Harness::new();
    let s = client(
        &mut h,
        "s",
        false,
        &[Property::TopicAliasMaximum(4)],
        Some("shellies/#"),
    );
    let p = client(&mut h, "p", true, &[], None);
    publish(&mut h, p, BUTTON, b"1", QoS::AtLeastOnce, 1);
    publish(&mut h, p, BUTTON, b"2", QoS::AtLeastOnce, 2);
    let (got, _) = sent(&mut h, s);
    assert_eq!(
        got.iter()
            .map(|g| (g.topic.as_str(), g.alias))
            .collect::<Vec<_>>(),
        [(BUTTON, Some(1)), ("", Some(1))]
    );
    h.core.handle_close(s, h.now);

    let again = h.open();
    let mut props = PropertiesBuf::new();
    props.push(&Property::TopicAliasMaximum(4));
    props.push(&Property::SessionExpiryInterval(60));
    h.send(
        again,
        Packet::Connect(Connect {
            protocol: V5,
            clean_start: false,
            keep_alive: 0,
            properties: props.as_properties(),
            client_id: "s",
            will: None,
            username: None,
            password: None,
        }),
    );
    let (got, _) = sent(&mut h, again);
    assert_eq!(
        got.iter()
            .map(|g| (g.topic.as_str(), g.alias))
            .collect::<Vec<_>>(),
        [(BUTTON, Some(1)), ("", Some(1))]
    );
}

#[test]
fn a_dropped_publish_assigns_no_alias() {
    // [MQTT-3.1.2-25]: larger than the client's Maximum Packet Size, it is
    // not sent, so the client learns no alias from it.
    let mut h = Harness::new();
    let s = client(
        &mut h,
        "s",
        true,
        &[
            Property::TopicAliasMaximum(1),
            Property::MaximumPacketSize(80),
        ],
        Some("shellies/#"),
    );
    let p = client(&mut h, "p", true, &[], None);
    publish(&mut h, p, BUTTON, &[b'x'; 60], QoS::AtMostOnce, 0);
    publish(&mut h, p, BUTTON, b"small", QoS::AtMostOnce, 0);
    let (got, _) = sent(&mut h, s);
    assert_eq!(
        got.iter()
            .map(|g| (g.topic.as_str(), g.alias))
            .collect::<Vec<_>>(),
        [(BUTTON, Some(1))]
    );
}

#[test]
fn unreleased_qos2_past_receive_maximum_is_0x93() {
    // [MQTT-3.3.4-7]: a client must not have more than the Receive Maximum
    // the broker announced (here 2) unacknowledged; the broker answers the
    // one too many with DISCONNECT 0x93 (§3.3.4). QoS 1 is acknowledged at
    // once and never piles up.
    let mut options = CoreOptions::default();
    options.limits.max_inflight = 2;
    let mut h = Harness::with(options);
    let p = client(&mut h, "p", true, &[], None);
    for id in 1..=5 {
        publish(&mut h, p, PLUG, b"1", QoS::AtLeastOnce, id);
    }
    let (_, acks) = sent(&mut h, p);
    assert_eq!(acks.len(), 5, "{acks:?}");
    for id in 1..=2 {
        publish(&mut h, p, PLUG, b"2", QoS::ExactlyOnce, id);
    }
    // A resend of an unreleased one is no new message.
    publish(&mut h, p, PLUG, b"2", QoS::ExactlyOnce, 2);
    let (_, recs) = sent(&mut h, p);
    assert_eq!(recs.len(), 3, "{recs:?}");
    assert!(!h.core.is_closing(p));
    publish(&mut h, p, PLUG, b"3", QoS::ExactlyOnce, 3);
    let (_, out) = sent(&mut h, p);
    assert_eq!(out, ["DISCONNECT 0x93"]);
    assert!(h.core.is_closing(p));

    // Released in time, the window moves on.
    let q = client(&mut h, "q", true, &[], None);
    for id in 1..=4u16 {
        publish(&mut h, q, PLUG, b"4", QoS::ExactlyOnce, id);
        h.send(
            q,
            Packet::PubResp(PubResp {
                kind: PubRespKind::PubRel,
                packet_id: pid(id),
                reason: 0,
                properties: codec::Properties::EMPTY,
            }),
        );
    }
    assert!(!h.core.is_closing(q));
}

#[test]
fn dup_on_qos0_is_malformed() {
    // [MQTT-3.3.1-2]: DUP must be 0 on QoS 0. boxmq answers 0x81, as
    // Mosquitto 2.0.20's msg_sequence corpus expects (docs/CONFORMANCE.md).
    let mut h = Harness::new();
    let p = client(&mut h, "p", true, &[], None);
    // PUBLISH, DUP 1, QoS 0; topic "topic", no properties, payload "payload".
    h.bytes(
        p,
        &[
            0x38, 0x0F, 0x00, 0x05, b't', b'o', b'p', b'i', b'c', 0x00, b'p', b'a', b'y', b'l',
            b'o', b'a', b'd',
        ],
    );
    let (_, out) = sent(&mut h, p);
    assert_eq!(out, ["DISCONNECT 0x81"]);
    assert!(h.core.is_closing(p));
}
