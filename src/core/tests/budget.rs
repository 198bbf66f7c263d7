//! The memory budget (`core/budget.rs`, docs/LIMITS.md "The memory
//! budget"): frames being received, kept messages and output buffers are
//! counted by one accountant, and each reaction at the budget is the one
//! documented.

use super::*;

/// `memory_limit` of these tests: the smallest accepted, 1 MiB.
const BUDGET: usize = 1024 * 1024;

fn harness() -> Harness {
    let mut config = CoreOptions::default();
    config.limits.memory_limit = BUDGET;
    config.limits.max_output_buffer = BUDGET;
    // No $SYS: its retained messages would count too.
    config.sys_interval = 0;
    Harness::with(config)
}

/// A QoS `qos` PUBLISH frame on `topic` with `payload` (3.1.1).
fn publish_frame(topic: &str, payload: &[u8], qos: QoS, packet_id: u16) -> Vec<u8> {
    let mut buf = Vec::new();
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic,
        packet_id: (qos != QoS::AtMostOnce).then(|| pid(packet_id)),
        properties: Properties::EMPTY,
        payload,
    })
    .encode(V4, &mut buf);
    buf
}

/// A 5.0 client, connected.
fn connect_v5(h: &mut Harness, client_id: &str) -> ConnId {
    let id = h.open();
    h.send(
        id,
        Packet::Connect(Connect {
            protocol: ProtocolVersion::V5,
            clean_start: true,
            keep_alive: 0,
            properties: Properties::EMPTY,
            client_id,
            will: None,
            username: None,
            password: None,
        }),
    );
    let frames = h.frames(id);
    assert!(matches!(h.decode(id, &frames[0]), Packet::Connack(c) if c.code == 0));
    id
}

#[test]
fn a_large_frame_that_does_not_fit_is_refused_from_its_fixed_header() {
    let mut h = harness();
    let a = connect_v5(&mut h, "a");
    let b = h.connect("b", true);
    // A PUBLISH announcing 2 MiB: its first bytes are enough to refuse it.
    let frame = publish_frame("cam/snapshot", &vec![0; 2 * BUDGET], QoS::AtLeastOnce, 1);
    let first = &frame[..100];
    let used = h.core.handle_data(a, first, h.now);
    assert_eq!(used, first.len(), "a closed connection uses all");
    assert!(h.core.is_closing(a));
    let out = h.frames(a);
    let Packet::Disconnect(d) = h.decode(a, &out[0]) else {
        panic!("expected DISCONNECT");
    };
    assert_eq!(d.reason, 0x97, "quota exceeded");
    assert_eq!(h.core.stats().budget_refused, 1);
    // The others are not affected.
    h.send(b, Packet::PingReq);
    assert_eq!(h.recv(b), [Out::PingResp]);
}

#[test]
fn a_frame_being_received_is_counted_until_it_is_decoded() {
    let mut h = harness();
    let a = h.connect("a", true);
    let b = h.connect("b", true);
    let c = h.connect("c", true);
    let big = publish_frame("t", &vec![1; 600 * 1024], QoS::AtMostOnce, 0);
    // A's frame arrives in pieces: reserved whole from its first piece on.
    let cut = 64 * 1024;
    assert_eq!(h.core.handle_data(a, &big[..cut], h.now), 0);
    assert!(h.core.stats().memory_used >= big.len());
    // B's 600 KiB do not fit beside it: refused, A goes on.
    assert_eq!(h.core.handle_data(b, &big[..cut], h.now), cut);
    assert!(h.core.is_closing(b));
    assert!(!h.core.is_closing(a));
    // Small frames always pass, even now.
    h.send(c, Packet::PingReq);
    assert_eq!(h.recv(c), [Out::PingResp]);
    // The whole frame: decoded, routed to nobody, nothing counted any more.
    assert_eq!(h.core.handle_data(a, &big, h.now), big.len());
    assert!(!h.core.is_closing(a));
    h.core.handle_close(b, h.now);
    assert_eq!(h.core.stats().memory_used, 0);
    // A connection that closes with a reservation gives it back.
    assert_eq!(h.core.handle_data(a, &big[..cut], h.now), 0);
    assert!(h.core.stats().memory_used >= big.len());
    h.core.handle_close(a, h.now);
    assert_eq!(h.core.stats().memory_used, 0);
}

#[test]
fn a_qos1_message_that_does_not_fit_is_refused_before_its_puback() {
    let mut h = harness();
    // An offline persistent subscriber keeps what is published for it.
    let s = h.connect("s", false);
    h.subscribe(s, "t", QoS::AtLeastOnce);
    h.bytes(s, &[0xE0, 0]);
    h.core.handle_close(s, h.now);
    let p = h.connect("p", true);
    // Large messages may use the budget less its reserve (896 KiB here).
    let payload = vec![7; 250 * 1024];
    for i in 1..=3 {
        h.publish(p, "t", &payload, QoS::AtLeastOnce, false, i);
    }
    let acks: Vec<Out> = h.recv(p);
    assert_eq!(acks.len(), 3, "{acks:?}");
    assert!(h.core.stats().memory_used > 750 * 1024);
    // The fourth does not fit: no PUBACK, the connection is closed, and
    // the client will send it again; nothing acknowledged is lost.
    h.publish(p, "t", &payload, QoS::AtLeastOnce, false, 4);
    assert!(h.core.is_closing(p));
    assert!(h.recv(p).is_empty(), "no PUBACK for a refused message");
    assert_eq!(h.core.stats().budget_refused, 1);
    h.core.handle_close(p, h.now);
    // The subscriber comes back and gets the three, one at a time as
    // the budget allows; acknowledged, they are freed.
    let s = h.connect_with("s", false, 0, None);
    let mut got = Vec::new();
    for _ in 0..10 {
        for o in h.recv(s) {
            if let Out::Publish { pid: Some(id), .. } = o {
                got.push(id);
                h.resp(s, PubRespKind::PubAck, id);
            }
        }
        h.core.handle_timeout(h.now);
    }
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(h.core.stats().memory_used, 0);
}

#[test]
fn a_copy_that_does_not_fit_waits_in_the_queue_and_is_not_lost() {
    let mut h = harness();
    let subs: Vec<ConnId> = ["s1", "s2", "s3"]
        .iter()
        .map(|name| {
            let s = h.connect(name, true);
            h.subscribe(s, "t", QoS::AtLeastOnce);
            s
        })
        .collect();
    let p = h.connect("p", true);
    // One kept message (250 KiB) and a copy in each output buffer: the
    // third copy does not fit (in the 896 KiB large requests may use)
    // until another is written.
    h.publish(p, "t", &vec![3; 250 * 1024], QoS::AtLeastOnce, false, 1);
    while h.core.poll_dirty().is_some() {}
    let pending: Vec<usize> = subs
        .iter()
        .map(|&s| h.core.pending_output(s).len())
        .collect();
    assert!(
        pending[0] > 250 * 1024 && pending[1] > 250 * 1024,
        "{pending:?}"
    );
    assert_eq!(pending[2], 0, "the third copy waits: {pending:?}");
    assert!(h.core.stats().memory_used <= BUDGET, "{pending:?}");
    // s1's copy is written: s3's goes out.
    assert_eq!(h.publishes(subs[0]).len(), 1);
    assert_eq!(h.publishes(subs[2]).len(), 1);
    assert_eq!(h.publishes(subs[1]).len(), 1);
    for &s in &subs {
        h.resp(s, PubRespKind::PubAck, 1);
    }
    // The publisher's PUBACK is output too, until it is read.
    assert_eq!(h.core.stats().memory_used, 4);
    assert_eq!(h.recv(p).len(), 1);
    assert_eq!(h.core.stats().publish_dropped, 0);
    assert_eq!(h.core.stats().memory_used, 0);
}

#[test]
fn qos0_copies_that_do_not_fit_are_dropped_and_counted() {
    let mut h = harness();
    let subs: Vec<ConnId> = ["s1", "s2", "s3"]
        .iter()
        .map(|name| {
            let s = h.connect(name, true);
            h.subscribe(s, "t", QoS::AtMostOnce);
            s
        })
        .collect();
    let p = h.connect("p", true);
    h.publish(p, "t", &vec![0; 400 * 1024], QoS::AtMostOnce, false, 0);
    let got: Vec<usize> = subs.iter().map(|&s| h.publishes(s).len()).collect();
    assert_eq!(got, [1, 1, 0]);
    assert_eq!(h.core.stats().publish_dropped, 1);
    assert_eq!(h.core.stats().memory_used, 0);
}

#[test]
fn a_will_over_message_size_limit_is_refused_at_connect() {
    // As Mosquitto: CONNACK 0x05 not authorized (3.1.1), 0x95 (5.0).
    let mut config = CoreOptions::default();
    config.limits.message_size_limit = 10;
    let mut h = Harness::with(config);
    let will = |payload| Will {
        topic: "shellies/x/online",
        payload,
        qos: QoS::AtMostOnce,
        retain: true,
        properties: Properties::EMPTY,
    };
    let ok = h.connect_with("ok", true, 0, Some(will(b"false")));
    assert_eq!(
        h.recv(ok),
        [Out::Connack {
            present: false,
            code: 0
        }]
    );
    let big = h.connect_with("big", true, 0, Some(will(b"0123456789A")));
    assert_eq!(
        h.recv(big),
        [Out::Connack {
            present: false,
            code: 0x05
        }]
    );
    assert!(h.core.is_closing(big));
}

#[test]
fn message_size_limit_drops_the_payload_and_completes_the_flow() {
    // Mosquitto's message_size_limit: not forwarded, QoS flow completed
    // (5.0: reason 0x83 implementation specific error, as mosquitto.conf(5)
    // says; 0x95 is not a PUBACK reason code [MQTT-3.4.2.1]).
    let mut config = CoreOptions::default();
    config.limits.message_size_limit = 10;
    let mut h = Harness::with(config);
    let s = h.connect("s", true);
    h.subscribe(s, "t", QoS::ExactlyOnce);
    let p = h.connect("p", true);
    h.publish(p, "t", b"0123456789", QoS::AtLeastOnce, false, 1);
    h.publish(p, "t", b"0123456789A", QoS::AtLeastOnce, false, 2);
    h.publish(p, "t", b"0123456789A", QoS::ExactlyOnce, false, 3);
    h.publish(p, "t", b"0123456789A", QoS::AtMostOnce, false, 0);
    let acks = h.recv(p);
    assert_eq!(
        acks,
        [
            Out::Resp {
                kind: PubRespKind::PubAck,
                pid: 1
            },
            Out::Resp {
                kind: PubRespKind::PubAck,
                pid: 2
            },
            Out::Resp {
                kind: PubRespKind::PubRec,
                pid: 3
            },
        ]
    );
    // [MQTT-4.3.3-11]: PUBREL is answered with PUBCOMP.
    h.resp(p, PubRespKind::PubRel, 3);
    assert_eq!(
        h.recv(p),
        [Out::Resp {
            kind: PubRespKind::PubComp,
            pid: 3
        }]
    );
    let got = h.publishes(s);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, b"0123456789");
    assert_eq!(h.core.stats().publish_dropped, 3);
    // 5.0: the reason code says why.
    let v = connect_v5(&mut h, "v");
    let mut buf = Vec::new();
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "t",
        packet_id: Some(pid(9)),
        properties: Properties::EMPTY,
        payload: b"0123456789A",
    })
    .encode(ProtocolVersion::V5, &mut buf);
    h.bytes(v, &buf);
    let out = h.frames(v);
    let Packet::PubResp(r) = h.decode(v, &out[0]) else {
        panic!("expected PUBACK");
    };
    assert_eq!(
        (r.kind, r.packet_id.get(), r.reason),
        (PubRespKind::PubAck, 9, 0x83)
    );
}
