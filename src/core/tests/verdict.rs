//! Application hooks (`core/verdict.rs`): packets parked until the
//! application's verdict, the deadline that refuses, the order of a parked
//! client's later packets, and the events. Fake clock, no threads.

use std::collections::HashMap;

use super::*;
use crate::core::{EventKind, HookCall, HookQuestion, HookSet, Verdict};

const TIMEOUT: Duration = Duration::from_secs(2);

fn hooked(connect: bool, publish: bool, subscribe: bool) -> Harness {
    let mut h = Harness::new();
    h.core.set_hooks(HookSet {
        connect,
        publish,
        subscribe,
        timeout: TIMEOUT,
        ..HookSet::default()
    });
    h
}

/// What the event loop's inbox does: keeps the bytes the core did not take
/// and hands them in again when the core resumes the connection.
#[derive(Default)]
struct Inbox {
    kept: HashMap<ConnId, Vec<u8>>,
}

impl Inbox {
    fn feed(&mut self, h: &mut Harness, id: ConnId, data: &[u8]) {
        let buf = self.kept.entry(id).or_default();
        buf.extend_from_slice(data);
        if buf.is_empty() || !h.core.wants_input(id) {
            return;
        }
        let used = h.core.handle_data(id, buf, h.now);
        buf.drain(..used);
    }

    /// Feeds every connection the core resumed.
    fn resume(&mut self, h: &mut Harness) {
        while let Some(id) = h.core.poll_resumed() {
            self.feed(h, id, &[]);
        }
    }

    fn send(&mut self, h: &mut Harness, id: ConnId, packet: Packet<'_>) {
        let mut buf = Vec::new();
        packet.encode(V4, &mut buf);
        self.feed(h, id, &buf);
    }
}

fn connect_packet<'a>(client_id: &'a str, protocol: ProtocolVersion) -> Packet<'a> {
    Packet::Connect(Connect {
        protocol,
        clean_start: true,
        keep_alive: 0,
        properties: Properties::EMPTY,
        client_id,
        will: None,
        username: Some("button"),
        password: Some(b"secret"),
    })
}

fn publish_frame(topic: &str, payload: &[u8], qos: QoS, id: u16) -> Vec<u8> {
    let mut buf = Vec::new();
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic,
        packet_id: (qos != QoS::AtMostOnce).then(|| pid(id)),
        properties: Properties::EMPTY,
        payload,
    })
    .encode(V4, &mut buf);
    buf
}

fn calls(h: &mut Harness) -> Vec<HookCall> {
    std::iter::from_fn(|| h.core.poll_hook_call()).collect()
}

fn events(h: &mut Harness) -> Vec<(EventKind, String, Option<String>, Option<String>)> {
    std::iter::from_fn(|| h.core.poll_event())
        .map(|e| (e.kind, e.client_id, e.topic, e.reason))
        .collect()
}

#[test]
fn connect_waits_for_the_verdict_then_connack() {
    let mut h = hooked(true, false, false);
    let mut inbox = Inbox::default();
    let a = h.open();
    inbox.send(&mut h, a, connect_packet("btn1", V4));
    // Parked: no CONNACK yet, the connection is not read.
    assert!(h.recv(a).is_empty());
    assert!(!h.core.wants_input(a));
    let c = calls(&mut h);
    assert_eq!(c.len(), 1);
    assert_eq!(
        c[0].question,
        HookQuestion::Connect {
            client_id: "btn1".into(),
            username: Some("button".into()),
            password: Some(b"secret".to_vec()),
            address: "test".into(),
            protocol: 4,
            user_properties: Vec::new(),
        }
    );
    h.core
        .handle_verdict(a, c[0].ticket, Verdict::Accept, h.now);
    inbox.resume(&mut h);
    // [MQTT-3.2.0-1]: CONNACK is the first packet the server sends.
    assert_eq!(
        h.recv(a),
        vec![Out::Connack {
            present: false,
            code: 0
        }]
    );
    assert!(calls(&mut h).is_empty(), "asked once");
    assert_eq!(
        events(&mut h),
        vec![(EventKind::Connected, "btn1".into(), None, None)]
    );
}

#[test]
fn connect_refused_by_the_application_gets_the_refusal_code() {
    // [MQTT-3.2.2-5] the server closes after a refusing CONNACK; 3.1.1
    // 0x05 / 0x04, 5.0 0x87 / 0x86 (MQTT 3.1.1 §3.2.2.3, 5.0 §3.2.2.2).
    for (version, verdict, code) in [
        (V4, Verdict::Refuse, 0x05),
        (V4, Verdict::BadCredentials, 0x04),
        (ProtocolVersion::V5, Verdict::Refuse, 0x87),
        (ProtocolVersion::V5, Verdict::BadCredentials, 0x86),
    ] {
        let mut h = hooked(true, false, false);
        let mut inbox = Inbox::default();
        let a = h.open();
        let mut buf = Vec::new();
        connect_packet("btn", version).encode(version, &mut buf);
        inbox.feed(&mut h, a, &buf);
        let c = calls(&mut h);
        h.core.handle_verdict(a, c[0].ticket, verdict, h.now);
        inbox.resume(&mut h);
        let out = h.core.pending_output(a).to_vec();
        // CONNACK: type, length, flags, code.
        assert_eq!(out.get(3), Some(&code), "{version:?}");
        assert!(h.core.is_closing(a));
        assert!(events(&mut h).is_empty(), "never connected");
    }
}

#[test]
fn no_verdict_within_the_deadline_refuses() {
    let mut h = hooked(true, false, false);
    let mut inbox = Inbox::default();
    let a = h.open();
    inbox.send(&mut h, a, connect_packet("slow", V4));
    let c = calls(&mut h);
    h.advance(TIMEOUT - Duration::from_millis(1));
    inbox.resume(&mut h);
    assert!(h.recv(a).is_empty(), "still waiting");
    h.advance(Duration::from_millis(1));
    inbox.resume(&mut h);
    assert_eq!(
        h.recv(a),
        vec![Out::Connack {
            present: false,
            code: 0x05
        }]
    );
    // The verdict that comes late changes nothing.
    h.core
        .handle_verdict(a, c[0].ticket, Verdict::Accept, h.now);
    assert!(h.core.poll_resumed().is_none());
    assert!(h.core.is_closing(a));
    assert_eq!(h.core.parked_count(), 0);
}

#[test]
fn a_connect_parked_before_the_hooks_went_is_handled_once() {
    let mut h = hooked(true, false, false);
    let mut inbox = Inbox::default();
    let a = h.open();
    inbox.send(&mut h, a, connect_packet("late", V4));
    assert_eq!(calls(&mut h).len(), 1);
    // The application removes its hooks; the parked CONNECT is not asked
    // about again when its deadline resumes it, but handled as usual.
    h.core.set_hooks(HookSet {
        events: false,
        ..HookSet::default()
    });
    h.advance(TIMEOUT);
    inbox.resume(&mut h);
    assert_eq!(
        h.recv(a),
        vec![Out::Connack {
            present: false,
            code: 0
        }]
    );
    // Taken once: the next packet is answered, not a second CONNECT
    // [MQTT-3.1.0-2].
    inbox.send(&mut h, a, Packet::PingReq);
    assert_eq!(h.recv(a), vec![Out::PingResp]);
    assert!(!h.core.is_closing(a));
    // Nothing is left of the removed hooks.
    assert_eq!(h.core.parked_count(), 0);
    assert!(h.core.hooks.is_none());
}

#[test]
fn a_parked_publisher_keeps_its_order_and_others_go_on() {
    let mut h = hooked(false, true, false);
    let mut inbox = Inbox::default();
    let sub = h.connect("sub", true);
    h.subscribe(sub, "t", QoS::AtLeastOnce);
    let a = h.connect("a", true);
    let b = h.connect("b", true);
    // Three QoS 1 messages in one read: the first is parked, the others
    // stay behind it.
    let mut burst = publish_frame("t", b"1", QoS::AtLeastOnce, 1);
    burst.extend(publish_frame("t", b"2", QoS::AtLeastOnce, 2));
    burst.extend(publish_frame("t", b"3", QoS::AtLeastOnce, 3));
    inbox.feed(&mut h, a, &burst);
    let first = calls(&mut h);
    assert_eq!(first.len(), 1, "one question at a time per client");
    assert!(matches!(&first[0].question,
        HookQuestion::Publish { client_id, topic, payload, qos: 1, retain: false }
            if client_id == "a" && topic == "t" && payload == b"1"));
    assert!(h.recv(a).is_empty());
    // Another client is served meanwhile, its packets not held.
    inbox.send(&mut h, b, Packet::PingReq);
    assert_eq!(h.recv(b), vec![Out::PingResp]);
    // Verdicts: 1 routed, 2 refused, 3 routed.
    h.core
        .handle_verdict(a, first[0].ticket, Verdict::Accept, h.now);
    inbox.resume(&mut h);
    let second = calls(&mut h);
    assert!(
        matches!(&second[0].question, HookQuestion::Publish { payload, .. } if payload == b"2")
    );
    h.core
        .handle_verdict(a, second[0].ticket, Verdict::Refuse, h.now);
    inbox.resume(&mut h);
    let third = calls(&mut h);
    assert!(matches!(&third[0].question, HookQuestion::Publish { payload, .. } if payload == b"3"));
    h.core
        .handle_verdict(a, third[0].ticket, Verdict::Accept, h.now);
    inbox.resume(&mut h);
    // [MQTT-4.6.0-2] PUBACKs in the order of the PUBLISHes; a refused
    // QoS 1 message is acknowledged in 3.1.1 and not routed.
    assert_eq!(
        h.recv(a),
        vec![
            Out::Resp {
                kind: PubRespKind::PubAck,
                pid: 1
            },
            Out::Resp {
                kind: PubRespKind::PubAck,
                pid: 2
            },
            Out::Resp {
                kind: PubRespKind::PubAck,
                pid: 3
            },
        ]
    );
    let got: Vec<Vec<u8>> = h.publishes(sub).into_iter().map(|(_, p, _)| p).collect();
    assert_eq!(got, vec![b"1".to_vec(), b"3".to_vec()]);
    assert_eq!(h.core.stats().messages_received, 3);
}

#[test]
fn a_stale_ticket_and_a_closed_connection_are_ignored() {
    let mut h = hooked(false, true, false);
    let mut inbox = Inbox::default();
    let a = h.connect("a", true);
    inbox.feed(&mut h, a, &publish_frame("t", b"x", QoS::AtMostOnce, 0));
    let c = calls(&mut h);
    h.core
        .handle_verdict(a, c[0].ticket + 1, Verdict::Accept, h.now);
    assert!(h.core.poll_resumed().is_none(), "not its ticket");
    h.core.handle_close(a, h.now);
    assert_eq!(h.core.parked_count(), 0);
    // The id is reused by a new connection: the old verdict is not its.
    let again = h.open();
    assert_eq!(again.0, a.0 + 1);
    h.core
        .handle_verdict(a, c[0].ticket, Verdict::Accept, h.now);
    assert!(h.core.poll_resumed().is_none());
}

#[test]
fn subscribe_is_answered_per_filter() {
    let mut h = hooked(false, false, true);
    let mut inbox = Inbox::default();
    let a = h.connect("a", true);
    let mut buf = Vec::new();
    codec::encode_subscribe(
        pid(7),
        Properties::EMPTY,
        &[
            ("shellies/#", SubOptions::qos_only(QoS::AtLeastOnce)),
            ("secret/#", SubOptions::qos_only(QoS::AtMostOnce)),
        ],
        V4,
        &mut buf,
    );
    inbox.feed(&mut h, a, &buf);
    let c = calls(&mut h);
    assert_eq!(
        c[0].question,
        HookQuestion::Subscribe {
            client_id: "a".into(),
            filters: vec![("shellies/#".into(), 1), ("secret/#".into(), 0)],
        }
    );
    let _ = events(&mut h);
    h.core
        .handle_verdict(a, c[0].ticket, Verdict::Filters(vec![true, false]), h.now);
    inbox.resume(&mut h);
    // [MQTT-3.8.4-5] one code per filter, in order; 0x80 for the refused
    // one (MQTT 3.1.1 §3.9.3).
    assert_eq!(
        h.recv(a),
        vec![Out::Suback {
            pid: 7,
            codes: vec![1, 0x80]
        }]
    );
    assert_eq!(
        events(&mut h),
        vec![(
            EventKind::Subscribed,
            "a".into(),
            Some("shellies/#".into()),
            None
        )]
    );
}

#[test]
fn events_say_why_a_client_left() {
    let mut h = hooked(false, false, false);
    let a = h.connect("clean", true);
    h.send(
        a,
        Packet::Disconnect(codec::Disconnect {
            reason: 0,
            properties: Properties::EMPTY,
        }),
    );
    let k = h.connect_with("sleepy", true, 10, None);
    let _ = h.recv(k);
    let first = h.connect("twice", true);
    let _second = h.connect("twice", true);
    let _ = h.recv(first);
    h.core.handle_close(first, h.now);
    let lost = h.connect("lost", true);
    h.core.handle_close(lost, h.now);
    // [MQTT-3.1.2-24]: 1.5 x keepalive of silence closes.
    h.advance(Duration::from_secs(16));
    let left: Vec<(String, Option<String>)> = events(&mut h)
        .into_iter()
        .filter(|e| e.0 == EventKind::Disconnected)
        .map(|e| (e.1, e.3))
        .collect();
    assert_eq!(
        left,
        vec![
            ("clean".into(), Some("clean".into())),
            ("twice".into(), Some("taken over".into())),
            ("lost".into(), Some("connection lost".into())),
            ("sleepy".into(), Some("keepalive".into())),
        ]
    );
}

#[test]
fn without_hooks_nothing_is_asked_or_told() {
    let mut h = Harness::new();
    let a = h.connect("a", true);
    h.subscribe(a, "t", QoS::AtMostOnce);
    h.publish(a, "t", b"x", QoS::AtMostOnce, false, 0);
    assert_eq!(h.publishes(a).len(), 1);
    assert!(h.core.poll_hook_call().is_none());
    assert!(h.core.poll_event().is_none());
}

#[test]
fn the_applications_own_connections_are_never_parked() {
    let mut h = hooked(true, true, true);
    let app = h.open();
    h.core.trust(app);
    h.send(app, connect_packet("app", V4));
    assert!(matches!(h.recv(app)[0], Out::Connack { code: 0, .. }));
    h.publish(app, "t", b"x", QoS::AtMostOnce, false, 0);
    assert!(calls(&mut h).is_empty());
    // Nor told about: the application knows its own clients.
    assert!(events(&mut h).is_empty());
}

#[test]
fn a_full_queue_is_told_once_as_dropped() {
    let mut config = CoreOptions::default();
    config.limits.max_queued_messages = 2;
    let mut h = Harness::with(config);
    h.core.set_hooks(HookSet::default());
    let sub = h.connect("sleeper", false);
    h.subscribe(sub, "t", QoS::AtLeastOnce);
    h.send(
        sub,
        Packet::Disconnect(codec::Disconnect {
            reason: 0,
            properties: Properties::EMPTY,
        }),
    );
    let p = h.connect("pub", true);
    for i in 1..=5 {
        h.publish(p, "t", b"x", QoS::AtLeastOnce, false, i);
    }
    let dropped: Vec<_> = events(&mut h)
        .into_iter()
        .filter(|e| e.0 == EventKind::Dropped)
        .collect();
    assert_eq!(
        dropped,
        vec![(
            EventKind::Dropped,
            "sleeper".into(),
            None,
            Some("queue full".into())
        )]
    );
    assert_eq!(h.core.stats().publish_dropped, 3);
}

#[test]
fn a_refused_v5_publish_is_acknowledged_with_not_authorized() {
    // MQTT 5.0 §3.4.2.1: PUBACK 0x87 Not authorized; nothing routed.
    let mut h = hooked(false, true, false);
    let mut inbox = Inbox::default();
    let sub = h.connect("sub", true);
    h.subscribe(sub, "t", QoS::AtLeastOnce);
    let a = h.open();
    let mut buf = Vec::new();
    connect_packet("v5", ProtocolVersion::V5).encode(ProtocolVersion::V5, &mut buf);
    h.core.handle_data(a, &buf, h.now);
    while h.core.poll_dirty().is_some() {}
    let n = h.core.pending_output(a).len();
    h.core.handle_written(a, n, h.now);
    let mut frame = Vec::new();
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "t",
        packet_id: Some(pid(9)),
        properties: Properties::EMPTY,
        payload: b"not json",
    })
    .encode(ProtocolVersion::V5, &mut frame);
    inbox.feed(&mut h, a, &frame);
    let c = calls(&mut h);
    h.core
        .handle_verdict(a, c[0].ticket, Verdict::Refuse, h.now);
    inbox.resume(&mut h);
    assert_eq!(
        h.core.pending_output(a),
        &[0x40, 0x03, 0x00, 0x09, 0x87][..]
    );
    assert!(h.publishes(sub).is_empty());
}

#[test]
fn on_connect_sees_the_user_properties_of_a_v5_connect() {
    let mut h = hooked(true, false, false);
    let a = h.open();
    let mut props = codec::PropertiesBuf::new();
    props.push(&codec::Property::UserProperty("site", "kitchen"));
    props.push(&codec::Property::UserProperty("fw", "1.14"));
    let mut buf = Vec::new();
    Packet::Connect(Connect {
        protocol: ProtocolVersion::V5,
        clean_start: true,
        keep_alive: 0,
        properties: props.as_properties(),
        client_id: "btn",
        will: None,
        username: None,
        password: None,
    })
    .encode(ProtocolVersion::V5, &mut buf);
    h.core.handle_data(a, &buf, h.now);
    let c = calls(&mut h);
    assert!(matches!(&c[0].question,
        HookQuestion::Connect { protocol: 5, user_properties, .. }
            if user_properties == &[("site".to_owned(), "kitchen".to_owned()), ("fw".to_owned(), "1.14".to_owned())]));
}
