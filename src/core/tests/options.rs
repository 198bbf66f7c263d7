//! Mosquitto's directives the core decides on: client ids
//! (`allow_zero_length_clientid`, `auto_id_prefix`,
//! `use_username_as_clientid`) and the other options of `CoreOptions`
//! and `ListenerOptions`.

use std::time::Duration;

use super::{Harness, Out, V4};
use crate::codec::{
    Connect, Packet, PacketId, Properties, Property, ProtocolVersion, Publish, QoS, Will,
};
use crate::core::{ConnId, CoreOptions, ListenerOptions};

const V5: ProtocolVersion = ProtocolVersion::V5;

/// Sends CONNECT on a new connection (of listener `listener`, if any).
fn connect(
    h: &mut Harness,
    listener: Option<usize>,
    protocol: ProtocolVersion,
    client_id: &str,
    clean: bool,
    username: Option<&str>,
) -> ConnId {
    let id = h.open();
    if let Some(l) = listener {
        h.core.set_listener(id, l);
    }
    h.send(
        id,
        Packet::Connect(Connect {
            protocol,
            clean_start: clean,
            keep_alive: 0,
            properties: Properties::EMPTY,
            client_id,
            will: None,
            username,
            password: None,
        }),
    );
    id
}

/// The CONNACK code and, for 5.0, its Assigned Client Identifier.
fn connack(h: &mut Harness, id: ConnId) -> (u8, Option<String>) {
    let frames = h.frames(id);
    let first = frames.first().expect("a CONNACK");
    match h.decode(id, first) {
        Packet::Connack(c) => {
            let assigned = c.properties.iter().find_map(|p| match p {
                Property::AssignedClientIdentifier(s) => Some(s.to_owned()),
                _ => None,
            });
            (c.code, assigned)
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

#[test]
fn zero_length_client_id_refused_when_not_allowed() {
    let mut h = Harness::with(CoreOptions {
        allow_zero_length_clientid: false,
        ..CoreOptions::default()
    });
    // [MQTT-3.1.3-9] (3.1.1): CONNACK 0x02, then close.
    let a = connect(&mut h, None, V4, "", true, None);
    assert_eq!(connack(&mut h, a).0, 0x02);
    assert!(h.core.is_closing(a));
    // [MQTT-3.1.3-8] (5.0): 0x85 Client Identifier not valid.
    let b = connect(&mut h, None, V5, "", true, None);
    assert_eq!(connack(&mut h, b).0, 0x85);
    assert!(h.core.is_closing(b));
    // A client id of its own is welcome.
    let c = connect(&mut h, None, V4, "shelly", true, None);
    assert_eq!(connack(&mut h, c).0, 0x00);
}

#[test]
fn assigned_client_ids_start_with_auto_id_prefix() {
    let mut h = Harness::with(CoreOptions {
        auto_id_prefix: "panel-".to_owned(),
        ..CoreOptions::default()
    });
    let a = connect(&mut h, None, V5, "", true, None);
    let (code, assigned) = connack(&mut h, a);
    assert_eq!(code, 0x00);
    let assigned = assigned.expect("[MQTT-3.2.2-16] the assigned id is told");
    // The prefix, then 36 characters shaped like a UUID.
    assert!(assigned.starts_with("panel-"), "{assigned}");
    assert_eq!(assigned.len(), "panel-".len() + 36, "{assigned}");
    // The default stays Mosquitto's.
    let mut h = Harness::new();
    let b = connect(&mut h, None, V5, "", true, None);
    let assigned = connack(&mut h, b).1.expect("assigned");
    assert!(assigned.starts_with("auto-"), "{assigned}");
}

#[test]
fn username_replaces_client_id_on_its_listener_only() {
    let mut h = Harness::with(CoreOptions {
        listeners: vec![
            ListenerOptions::default(),
            ListenerOptions {
                use_username_as_clientid: true,
                ..ListenerOptions::default()
            },
        ],
        ..CoreOptions::default()
    });
    // On listener 1 the user name is the client id: a second client with
    // the same user name takes the first one's session over, whatever
    // client id it sends.
    let a = connect(&mut h, Some(1), V4, "one", false, Some("panel"));
    assert_eq!(connack(&mut h, a).0, 0x00);
    let b = connect(&mut h, Some(1), V4, "two", false, Some("panel"));
    let out = h.recv(b);
    // Session present: the session of "panel", not of "two".
    assert_eq!(
        out.first(),
        Some(&Out::Connack {
            present: true,
            code: 0
        })
    );
    assert!(h.core.is_closing(a), "taken over");
    // Without a user name: not authorised (3.1.1 0x05, 5.0 0x87).
    let c = connect(&mut h, Some(1), V4, "three", true, None);
    assert_eq!(connack(&mut h, c).0, 0x05);
    let d = connect(&mut h, Some(1), V5, "four", true, None);
    assert_eq!(connack(&mut h, d).0, 0x87);
    // Listener 0 (and connections of no listener) keep the client's id.
    let e = connect(&mut h, Some(0), V4, "one", false, Some("panel"));
    let out = h.recv(e);
    assert_eq!(
        out.first(),
        Some(&Out::Connack {
            present: false,
            code: 0
        })
    );
    assert!(!h.core.is_closing(b), "another client id");
    // An index the core was not given is no listener.
    let f = connect(&mut h, Some(7), V4, "five", true, None);
    assert_eq!(connack(&mut h, f).0, 0x00);
}

/// Sends CONNECT with a will on a new connection of `listener`.
fn connect_will(
    h: &mut Harness,
    listener: Option<usize>,
    protocol: ProtocolVersion,
    client_id: &str,
    qos: QoS,
    retain: bool,
) -> ConnId {
    let id = h.open();
    if let Some(l) = listener {
        h.core.set_listener(id, l);
    }
    h.send(
        id,
        Packet::Connect(Connect {
            protocol,
            clean_start: true,
            keep_alive: 0,
            properties: Properties::EMPTY,
            client_id,
            will: Some(Will {
                topic: "shellies/button/online",
                payload: b"false",
                qos,
                retain,
                properties: Properties::EMPTY,
            }),
            username: None,
            password: None,
        }),
    );
    id
}

/// Sends PUBLISH (packet id 1 unless QoS 0).
fn publish(h: &mut Harness, id: ConnId, qos: QoS, retain: bool) {
    h.send(
        id,
        Packet::Publish(Publish {
            dup: false,
            qos,
            retain,
            topic: "shellies/button/input_event/0",
            packet_id: (qos != QoS::AtMostOnce).then(|| PacketId::new(1).expect("non-zero")),
            properties: Properties::EMPTY,
            payload: br#"{"event":"S","event_cnt":7}"#,
        }),
    );
}

/// The properties of the CONNACK sent to `id`.
fn connack_props(h: &mut Harness, id: ConnId) -> Vec<String> {
    let frames = h.frames(id);
    let first = frames.first().expect("a CONNACK");
    match h.decode(id, first) {
        Packet::Connack(c) => c.properties.iter().map(|p| format!("{p:?}")).collect(),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

/// What the broker sent to `id`: the reason code of a DISCONNECT, if any.
fn disconnect_reason(h: &mut Harness, id: ConnId) -> Option<u8> {
    h.frames(id).iter().find_map(|f| match h.decode(id, f) {
        Packet::Disconnect(d) => Some(d.reason),
        _ => None,
    })
}

fn max_qos_1() -> Harness {
    Harness::with(CoreOptions {
        listeners: vec![ListenerOptions {
            max_qos: QoS::AtLeastOnce,
            ..ListenerOptions::default()
        }],
        ..CoreOptions::default()
    })
}

#[test]
fn max_qos_is_announced_and_caps_subscriptions() {
    let mut h = max_qos_1();
    // [MQTT-3.2.2-9]: Maximum QoS in CONNACK when below 2.
    let a = connect(&mut h, Some(0), V5, "panel", true, None);
    let props = connack_props(&mut h, a);
    assert!(props.contains(&"MaximumQoS(1)".to_owned()), "{props:?}");
    // A subscription asking for QoS 2 is granted QoS 1 (Mosquitto).
    let b = connect(&mut h, Some(0), V4, "dash", true, None);
    assert_eq!(connack(&mut h, b).0, 0);
    let out = h.subscribe(b, "shellies/#", QoS::ExactlyOnce);
    assert!(
        matches!(&out[..], [Out::Suback { codes, .. }] if codes == &[1]),
        "{out:?}"
    );
    // Connections of no listener keep QoS 2, and no property says so.
    let c = connect(&mut h, None, V5, "app", true, None);
    let props = connack_props(&mut h, c);
    assert!(
        !props.iter().any(|p| p.starts_with("MaximumQoS")),
        "{props:?}"
    );
}

#[test]
fn publish_above_max_qos_disconnects() {
    let mut h = max_qos_1();
    // 5.0: DISCONNECT 0x9B QoS not supported [MQTT-3.2.2-11].
    let a = connect(&mut h, Some(0), V5, "button-v5", true, None);
    h.frames(a);
    publish(&mut h, a, QoS::AtLeastOnce, false);
    assert!(!h.core.is_closing(a), "QoS 1 is allowed");
    publish(&mut h, a, QoS::ExactlyOnce, false);
    assert_eq!(disconnect_reason(&mut h, a), Some(0x9B));
    assert!(h.core.is_closing(a));
    // 3.1.1 has no reason code: the connection just closes.
    let b = connect(&mut h, Some(0), V4, "button", true, None);
    h.frames(b);
    publish(&mut h, b, QoS::ExactlyOnce, false);
    assert_eq!(disconnect_reason(&mut h, b), None);
    assert!(h.core.is_closing(b));
}

#[test]
fn will_above_max_qos_is_refused() {
    let mut h = max_qos_1();
    // 5.0: CONNACK 0x9B [MQTT-3.2.2-12].
    let a = connect_will(&mut h, Some(0), V5, "a", QoS::ExactlyOnce, false);
    assert_eq!(connack(&mut h, a).0, 0x9B);
    assert!(h.core.is_closing(a));
    // 3.1.1: closed without CONNACK, as Mosquitto does.
    let b = connect_will(&mut h, Some(0), V4, "b", QoS::ExactlyOnce, false);
    assert!(h.frames(b).is_empty());
    assert!(h.core.is_closing(b));
    let c = connect_will(&mut h, Some(0), V4, "c", QoS::AtLeastOnce, false);
    assert_eq!(connack(&mut h, c).0, 0);
}

#[test]
fn retain_unavailable_is_announced_and_enforced() {
    let mut h = Harness::with(CoreOptions {
        retain_available: false,
        ..CoreOptions::default()
    });
    // [MQTT-3.2.2-13]: Retain Available 0 in CONNACK.
    let a = connect(&mut h, None, V5, "button-v5", true, None);
    let props = connack_props(&mut h, a);
    assert!(
        props.contains(&"RetainAvailable(0)".to_owned()),
        "{props:?}"
    );
    publish(&mut h, a, QoS::AtLeastOnce, false);
    assert!(!h.core.is_closing(a), "not retained: routed as usual");
    // [MQTT-3.2.2-14]: a retained PUBLISH gets DISCONNECT 0x9A.
    publish(&mut h, a, QoS::AtLeastOnce, true);
    assert_eq!(disconnect_reason(&mut h, a), Some(0x9A));
    assert!(h.core.is_closing(a));
    // 3.1.1: closed.
    let b = connect(&mut h, None, V4, "button", true, None);
    h.frames(b);
    publish(&mut h, b, QoS::AtMostOnce, true);
    assert!(h.core.is_closing(b));
    // A retained will: 5.0 CONNACK 0x9A, 3.1.1 closed without CONNACK.
    let c = connect_will(&mut h, None, V5, "c", QoS::AtMostOnce, true);
    assert_eq!(connack(&mut h, c).0, 0x9A);
    let d = connect_will(&mut h, None, V4, "d", QoS::AtMostOnce, true);
    assert!(h.frames(d).is_empty());
    assert!(h.core.is_closing(d));
    // Nothing retained was kept.
    assert_eq!(h.core.stats().retained_messages, 0);
}

#[test]
fn upgrade_outgoing_qos_delivers_at_the_subscription_qos() {
    for upgrade in [false, true] {
        let mut h = Harness::with(CoreOptions {
            upgrade_outgoing_qos: upgrade,
            ..CoreOptions::default()
        });
        let button = connect(&mut h, None, V4, "button", true, None);
        h.frames(button);
        // A retained QoS 0 message, then a subscriber at QoS 1 (Mosquitto's
        // 04-retain-upgrade-outgoing-qos), then a live QoS 0 message.
        publish(&mut h, button, QoS::AtMostOnce, true);
        let dash = connect(&mut h, None, V4, "dash", true, None);
        h.frames(dash);
        let out = h.subscribe(dash, "shellies/#", QoS::AtLeastOnce);
        publish(&mut h, button, QoS::AtMostOnce, false);
        let mut out = out;
        out.extend(h.recv(dash));
        let qos: Vec<(QoS, bool)> = out
            .iter()
            .filter_map(|o| match o {
                Out::Publish { qos, retain, .. } => Some((*qos, *retain)),
                _ => None,
            })
            .collect();
        let want = if upgrade {
            QoS::AtLeastOnce
        } else {
            // [MQTT-3.8.4-6]: never above the published QoS.
            QoS::AtMostOnce
        };
        assert_eq!(qos, vec![(want, true), (want, false)], "upgrade {upgrade}");
    }
}

#[test]
fn queue_qos0_messages_keeps_them_for_offline_sessions() {
    for queue in [false, true] {
        let mut h = Harness::with(CoreOptions {
            queue_qos0_messages: queue,
            limits: crate::Limits {
                max_queued_messages: 2,
                ..crate::Limits::default()
            },
            ..CoreOptions::default()
        });
        let dash = connect(&mut h, None, V4, "dash", false, None);
        h.frames(dash);
        h.subscribe(dash, "shellies/#", QoS::AtLeastOnce);
        h.core.handle_close(dash, h.now);
        let button = connect(&mut h, None, V4, "button", true, None);
        h.frames(button);
        for _ in 0..3 {
            publish(&mut h, button, QoS::AtMostOnce, false);
        }
        let dash = connect(&mut h, None, V4, "dash", false, None);
        let got: Vec<QoS> = h
            .recv(dash)
            .iter()
            .filter_map(|o| match o {
                Out::Publish { qos, .. } => Some(*qos),
                _ => None,
            })
            .collect();
        // Kept only when asked, and then within max_queued_messages, at
        // the QoS they were published with.
        let want = if queue {
            vec![QoS::AtMostOnce; 2]
        } else {
            vec![]
        };
        assert_eq!(got, want, "queue_qos0_messages {queue}");
    }
}

#[test]
fn persistent_client_expiration_drops_sessions_that_never_expire() {
    for expiration in [None, Some(3600)] {
        let mut h = Harness::with(CoreOptions {
            persistent_client_expiration: expiration,
            ..CoreOptions::default()
        });
        // 3.1.1 clean session 0: by the protocol, kept for ever.
        let dash = connect(&mut h, None, V4, "dash", false, None);
        h.frames(dash);
        h.core.handle_close(dash, h.now);
        h.advance(Duration::from_secs(3599));
        assert_eq!(h.core.stats().sessions, 1);
        h.advance(Duration::from_secs(2));
        let left = if expiration.is_some() { 0 } else { 1 };
        assert_eq!(h.core.stats().sessions, left, "{expiration:?}");
        // Back within the hour: resumed, and the clock starts again when
        // it leaves next.
        let dash = connect(&mut h, None, V4, "dash", false, None);
        h.frames(dash);
        h.core.handle_close(dash, h.now);
        h.advance(Duration::from_secs(1800));
        let dash = connect(&mut h, None, V4, "dash", false, None);
        let out = h.recv(dash);
        assert_eq!(
            out.first(),
            Some(&Out::Connack {
                present: true,
                code: 0
            })
        );
    }
}

/// The topics of the PUBLISH packets sent to `id`.
fn topics(h: &mut Harness, id: ConnId) -> Vec<String> {
    h.recv(id)
        .into_iter()
        .filter_map(|o| match o {
            Out::Publish { topic, .. } => Some(topic),
            _ => None,
        })
        .collect()
}

#[test]
fn mount_point_isolates_a_listeners_clients() {
    let mut h = Harness::with(CoreOptions {
        listeners: vec![
            ListenerOptions::default(),
            ListenerOptions {
                mount_point: Some("site1/".into()),
                ..ListenerOptions::default()
            },
        ],
        ..CoreOptions::default()
    });
    // Mosquitto's 10-listener-mount-point: "#" behind the mount point
    // sees only its tree, without the prefix; outside, the whole topic.
    let inside = connect(&mut h, Some(1), V4, "inside", true, None);
    let outside = connect(&mut h, Some(0), V4, "outside", true, None);
    h.frames(inside);
    h.frames(outside);
    h.subscribe(inside, "#", QoS::AtLeastOnce);
    h.subscribe(outside, "#", QoS::AtMostOnce);
    let button = connect(&mut h, Some(1), V4, "button", true, None);
    h.frames(button);
    h.publish(button, "test", b"x", QoS::AtMostOnce, false, 0);
    assert_eq!(topics(&mut h, inside), ["test"]);
    assert_eq!(topics(&mut h, outside), ["site1/test"]);
    // From outside: only what is under the mount point gets in, QoS 1
    // (queued, then sent) as well as QoS 0.
    h.publish(outside, "site1/a/b", b"x", QoS::AtLeastOnce, false, 1);
    h.publish(outside, "other", b"x", QoS::AtMostOnce, false, 0);
    assert_eq!(topics(&mut h, inside), ["a/b"]);
    // Retained messages and wills are mounted too.
    h.publish(button, "state", b"on", QoS::AtMostOnce, true, 0);
    let late = connect(&mut h, Some(1), V4, "late", true, None);
    h.frames(late);
    let got: Vec<String> = h
        .subscribe(late, "state", QoS::AtMostOnce)
        .into_iter()
        .filter_map(|o| match o {
            Out::Publish { topic, .. } => Some(topic),
            _ => None,
        })
        .collect();
    assert_eq!(got, ["state"]);
    let willed = connect_will(&mut h, Some(1), V4, "willed", QoS::AtMostOnce, false);
    h.frames(willed);
    h.frames(outside);
    h.core.handle_close(willed, h.now);
    assert_eq!(topics(&mut h, outside), ["site1/shellies/button/online"]);
    // Shared subscriptions: the filter after $share/GROUP/ is mounted.
    h.subscribe(late, "$share/g/x", QoS::AtMostOnce);
    h.publish(outside, "site1/x", b"x", QoS::AtMostOnce, false, 0);
    assert_eq!(topics(&mut h, late), ["x"]);
    // $SYS is left alone: the broker's figures reach a mounted client.
    h.frames(inside);
    h.subscribe(inside, "$SYS/broker/uptime", QoS::AtMostOnce);
    h.advance(Duration::from_secs(11));
    let got = topics(&mut h, inside);
    assert!(got.iter().any(|t| t == "$SYS/broker/uptime"), "{got:?}");
    // Unsubscribing takes the mounted filter away.
    h.frames(inside);
    let mut buf = Vec::new();
    crate::codec::encode_unsubscribe(
        PacketId::new(9).expect("non-zero"),
        Properties::EMPTY,
        &["#"],
        V4,
        &mut buf,
    );
    h.bytes(inside, &buf);
    h.frames(inside);
    h.publish(button, "test", b"x", QoS::AtMostOnce, false, 0);
    assert!(topics(&mut h, inside).is_empty());
}
