//! Tests of the sans-IO core: bytes in, bytes out, a fake clock, no sockets.

use std::time::{Duration, Instant};

use super::CoreOptions;
use super::{ConnId, Core};
use crate::codec::{
    self, Connect, Packet, PacketId, Properties, ProtocolVersion, PubResp, PubRespKind, Publish,
    QoS, SubOptions, Will,
};

const V4: ProtocolVersion = ProtocolVersion::V311;

/// A decoded frame the core sent, owned so tests can keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Connack {
        present: bool,
        code: u8,
    },
    Publish {
        topic: String,
        payload: Vec<u8>,
        qos: QoS,
        retain: bool,
        dup: bool,
        pid: Option<u16>,
    },
    Resp {
        kind: PubRespKind,
        pid: u16,
    },
    Suback {
        pid: u16,
        codes: Vec<u8>,
    },
    Unsuback {
        pid: u16,
    },
    PingResp,
    Disconnect {
        reason: u8,
    },
}

pub(super) struct Harness {
    pub core: Core,
    pub now: Instant,
    next: usize,
    /// Protocol each connection's CONNECT asked for.
    versions: std::collections::HashMap<ConnId, ProtocolVersion>,
}

fn pid(v: u16) -> PacketId {
    PacketId::new(v).expect("non-zero test packet id")
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with(CoreOptions::default())
    }

    pub fn with(config: CoreOptions) -> Harness {
        Harness {
            core: Core::new(config),
            now: Instant::now(),
            next: 0,
            versions: std::collections::HashMap::new(),
        }
    }

    fn version(&self, id: ConnId) -> ProtocolVersion {
        self.versions.get(&id).copied().unwrap_or(V4)
    }

    pub fn open(&mut self) -> ConnId {
        let id = ConnId(self.next);
        self.next += 1;
        self.core.handle_open(id, "test", self.now);
        id
    }

    pub fn bytes(&mut self, id: ConnId, data: &[u8]) {
        let used = self.core.handle_data(id, data, self.now);
        assert_eq!(used, data.len(), "test frames are complete");
    }

    pub fn send(&mut self, id: ConnId, packet: Packet<'_>) {
        if let Packet::Connect(c) = &packet {
            self.versions.insert(id, c.protocol);
        }
        let mut buf = Vec::new();
        packet.encode(self.version(id), &mut buf);
        self.bytes(id, &buf);
    }

    /// Every frame the core wants written to `id`, as if the socket took it
    /// all; decode each with [`decode_frame`].
    pub fn frames(&mut self, id: ConnId) -> Vec<Vec<u8>> {
        while self.core.poll_dirty().is_some() {}
        let bytes = self.core.pending_output(id).to_vec();
        self.core.handle_written(id, bytes.len(), self.now);
        let mut out = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = codec::frame_len(rest, usize::MAX)
                .expect("core sends well-formed frames")
                .expect("core sends whole frames");
            out.push(rest[..n].to_vec());
            rest = &rest[n..];
        }
        out
    }

    /// Decodes a frame sent to `id`.
    pub fn decode<'a>(&self, id: ConnId, frame: &'a [u8]) -> Packet<'a> {
        codec::decode(frame, self.version(id), usize::MAX)
            .expect("well-formed")
            .expect("whole")
            .0
    }

    fn connect_with(
        &mut self,
        client_id: &str,
        clean: bool,
        keep_alive: u16,
        will: Option<Will<'_>>,
    ) -> ConnId {
        let id = self.open();
        self.send(
            id,
            Packet::Connect(Connect {
                protocol: V4,
                clean_start: clean,
                keep_alive,
                properties: Properties::EMPTY,
                client_id,
                will,
                username: None,
                password: None,
            }),
        );
        id
    }

    /// Connects and checks the CONNACK.
    fn connect(&mut self, client_id: &str, clean: bool) -> ConnId {
        let id = self.connect_with(client_id, clean, 0, None);
        let out = self.recv(id);
        assert!(matches!(out[0], Out::Connack { code: 0, .. }), "{out:?}");
        id
    }

    fn subscribe(&mut self, id: ConnId, filter: &str, qos: QoS) -> Vec<Out> {
        let mut buf = Vec::new();
        codec::encode_subscribe(
            pid(1),
            Properties::EMPTY,
            &[(filter, SubOptions::qos_only(qos))],
            V4,
            &mut buf,
        );
        self.bytes(id, &buf);
        self.recv(id)
    }

    fn publish(
        &mut self,
        id: ConnId,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
        packet_id: u16,
    ) {
        self.send(
            id,
            Packet::Publish(Publish {
                dup: false,
                qos,
                retain,
                topic,
                packet_id: if qos == QoS::AtMostOnce {
                    None
                } else {
                    Some(pid(packet_id))
                },
                properties: Properties::EMPTY,
                payload,
            }),
        );
    }

    fn resp(&mut self, id: ConnId, kind: PubRespKind, packet_id: u16) {
        self.send(
            id,
            Packet::PubResp(PubResp {
                kind,
                packet_id: pid(packet_id),
                reason: 0,
                properties: Properties::EMPTY,
            }),
        );
    }

    /// Everything the core wants written to `id`, decoded, as if the socket
    /// took it all.
    fn recv(&mut self, id: ConnId) -> Vec<Out> {
        let mut out = Vec::new();
        for frame in self.frames(id) {
            let p = self.decode(id, &frame);
            out.push(match p {
                Packet::Connack(c) => Out::Connack {
                    present: c.session_present,
                    code: c.code,
                },
                Packet::Publish(p) => Out::Publish {
                    topic: p.topic.to_string(),
                    payload: p.payload.to_vec(),
                    qos: p.qos,
                    retain: p.retain,
                    dup: p.dup,
                    pid: p.packet_id.map(PacketId::get),
                },
                Packet::PubResp(r) => Out::Resp {
                    kind: r.kind,
                    pid: r.packet_id.get(),
                },
                Packet::Suback(s) => Out::Suback {
                    pid: s.packet_id.get(),
                    codes: s.codes.to_vec(),
                },
                Packet::Unsuback(u) => Out::Unsuback {
                    pid: u.packet_id.get(),
                },
                Packet::PingResp => Out::PingResp,
                Packet::Disconnect(d) => Out::Disconnect { reason: d.reason },
                other => panic!("unexpected packet from the broker: {other:?}"),
            });
        }
        out
    }

    fn publishes(&mut self, id: ConnId) -> Vec<(String, Vec<u8>, QoS)> {
        publishes_in(self.recv(id))
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        if self.core.next_deadline().is_some_and(|t| t <= self.now) {
            self.core.handle_timeout(self.now);
        }
    }
}

#[test]
fn connect_gets_connack_accepted() {
    // [MQTT-3.2.0-1]: the first packet from the server is CONNACK.
    let mut h = Harness::new();
    let id = h.connect_with("c1", true, 60, None);
    assert_eq!(
        h.recv(id),
        vec![Out::Connack {
            present: false,
            code: 0
        }]
    );
    assert!(!h.core.is_closing(id));
    assert_eq!(h.core.stats().clients_connected, 1);
}

/// docs/LIMITS.md, "Per-connection accounting": a connected idle client
/// holds no output buffer, no peer label and a session that shares the
/// empty state, clean or persistent, 3.1.1 or 5.0, after a keepalive.
#[test]
fn idle_client_holds_only_what_is_accounted() {
    let mut h = Harness::new();
    let a = h.connect_with("shellybutton1-A4CF12F45A10", true, 60, None);
    let b = h.connect("persistent", false);
    h.recv(a);
    h.recv(b);
    h.send(a, Packet::PingReq);
    assert_eq!(h.recv(a), vec![Out::PingResp]);
    for id in [a, b] {
        let c = h.core.conn(id).expect("open");
        assert!(c.label().is_none() && c.output_len() == 0, "{c:?}");
        let super::conn::Phase::Connected(sid) = c.phase else {
            panic!("not connected: {c:?}");
        };
        let s = h.core.sessions.get(sid.0).expect("session");
        assert!(s.shares_empty_state(), "{s:?}");
    }
}

#[test]
fn first_packet_must_be_connect() {
    // [MQTT-3.1.0-1]
    let mut h = Harness::new();
    let id = h.open();
    h.send(id, Packet::PingReq);
    assert!(h.core.is_closing(id));
    assert!(h.recv(id).is_empty());
}

#[test]
fn second_connect_is_a_protocol_violation() {
    // [MQTT-3.1.0-2]
    let mut h = Harness::new();
    let id = h.connect("c1", true);
    let mut buf = Vec::new();
    Packet::Connect(Connect {
        protocol: V4,
        clean_start: true,
        keep_alive: 0,
        properties: Properties::EMPTY,
        client_id: "c1",
        will: None,
        username: None,
        password: None,
    })
    .encode(V4, &mut buf);
    h.bytes(id, &buf);
    assert!(h.core.is_closing(id));
}

#[test]
fn unsupported_protocol_level_gets_connack_1() {
    // [MQTT-3.1.2-2]: CONNECT with level 6.
    let mut h = Harness::new();
    let id = h.open();
    let frame = [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 6, 0x02, 0, 60, 0, 0];
    h.bytes(id, &frame);
    assert_eq!(
        h.recv(id),
        vec![Out::Connack {
            present: false,
            code: 1
        }]
    );
    assert!(h.core.is_closing(id));
}

#[test]
fn empty_client_id_rules() {
    // [MQTT-3.1.3-6] assigned when clean; [MQTT-3.1.3-8] refused with 0x02 otherwise.
    let mut h = Harness::new();
    let a = h.connect_with("", true, 0, None);
    assert_eq!(
        h.recv(a),
        vec![Out::Connack {
            present: false,
            code: 0
        }]
    );
    let b = h.connect_with("", false, 0, None);
    assert_eq!(
        h.recv(b),
        vec![Out::Connack {
            present: false,
            code: 2
        }]
    );
    assert!(h.core.is_closing(b));
}

#[test]
fn shelly_button_press_reaches_dashboard() {
    let mut h = Harness::new();
    let dash = h.connect("dashboard", true);
    let sub = h.subscribe(dash, "shellies/+/input_event/0", QoS::AtMostOnce);
    assert_eq!(
        sub,
        vec![Out::Suback {
            pid: 1,
            codes: vec![0]
        }]
    );
    let will = Will {
        topic: "shellies/shellybutton1-A4CF12F45A10/online",
        payload: b"false",
        qos: QoS::AtMostOnce,
        retain: true,
        properties: Properties::EMPTY,
    };
    let button = h.connect_with("shellybutton1-A4CF12F45A10", true, 60, Some(will));
    h.recv(button);
    let payload = br#"{"event":"S","event_cnt":3}"#;
    h.publish(
        button,
        "shellies/shellybutton1-A4CF12F45A10/input_event/0",
        payload,
        QoS::AtMostOnce,
        false,
        0,
    );
    h.send(
        button,
        Packet::Disconnect(codec::Disconnect {
            reason: 0,
            properties: Properties::EMPTY,
        }),
    );
    assert!(h.core.is_closing(button));
    h.core.handle_close(button, h.now);
    // Only the press: the will was discarded by DISCONNECT [MQTT-3.1.2-10].
    assert_eq!(
        h.publishes(dash),
        vec![(
            "shellies/shellybutton1-A4CF12F45A10/input_event/0".to_string(),
            payload.to_vec(),
            QoS::AtMostOnce
        )]
    );
}

#[test]
fn qos_is_downgraded_to_the_subscription() {
    // [MQTT-3.8.4-6]
    let mut h = Harness::new();
    let sub = h.connect("sub", true);
    h.subscribe(sub, "t", QoS::AtLeastOnce);
    let publisher = h.connect("pub", true);
    h.publish(publisher, "t", b"x", QoS::ExactlyOnce, false, 5);
    assert_eq!(
        h.recv(publisher),
        vec![Out::Resp {
            kind: PubRespKind::PubRec,
            pid: 5
        }]
    );
    let got = h.publishes(sub);
    assert_eq!(
        got,
        vec![("t".to_string(), b"x".to_vec(), QoS::AtLeastOnce)]
    );
}

#[test]
fn qos2_resent_before_pubrel_is_delivered_once() {
    // [MQTT-4.3.3-2]
    let mut h = Harness::new();
    let sub = h.connect("sub", true);
    h.subscribe(sub, "t", QoS::ExactlyOnce);
    let p = h.connect("pub", true);
    h.publish(p, "t", b"once", QoS::ExactlyOnce, false, 7);
    assert_eq!(
        h.recv(p),
        vec![Out::Resp {
            kind: PubRespKind::PubRec,
            pid: 7
        }]
    );
    // Resent with DUP before PUBREL: PUBREC again, no second delivery.
    h.send(
        p,
        Packet::Publish(Publish {
            dup: true,
            qos: QoS::ExactlyOnce,
            retain: false,
            topic: "t",
            packet_id: Some(pid(7)),
            properties: Properties::EMPTY,
            payload: b"once",
        }),
    );
    assert_eq!(
        h.recv(p),
        vec![Out::Resp {
            kind: PubRespKind::PubRec,
            pid: 7
        }]
    );
    h.resp(p, PubRespKind::PubRel, 7);
    assert_eq!(
        h.recv(p),
        vec![Out::Resp {
            kind: PubRespKind::PubComp,
            pid: 7
        }]
    );
    let got = h.recv(sub);
    assert_eq!(got.len(), 1, "{got:?}");
    let Out::Publish {
        pid: Some(out_pid),
        qos: QoS::ExactlyOnce,
        ..
    } = got[0]
    else {
        panic!("{got:?}")
    };
    // Outgoing QoS 2 flow towards the subscriber.
    h.resp(sub, PubRespKind::PubRec, out_pid);
    assert_eq!(
        h.recv(sub),
        vec![Out::Resp {
            kind: PubRespKind::PubRel,
            pid: out_pid
        }]
    );
    h.resp(sub, PubRespKind::PubComp, out_pid);
    assert!(h.recv(sub).is_empty());
}

#[test]
fn retained_messages_stored_replaced_cleared() {
    let mut h = Harness::new();
    let p = h.connect("pub", true);
    h.publish(p, "r/1", b"one", QoS::AtMostOnce, true, 0);
    h.publish(p, "r/1", b"two", QoS::AtMostOnce, true, 0);
    h.publish(p, "r/2", b"x", QoS::AtMostOnce, true, 0);
    h.publish(p, "r/2", b"", QoS::AtMostOnce, true, 0); // [MQTT-3.3.1-10]
    let s = h.connect("sub", true);
    let out = h.subscribe(s, "r/#", QoS::AtLeastOnce);
    // SUBACK, then the one retained message with RETAIN set [MQTT-3.3.1-6] [MQTT-3.3.1-8].
    assert_eq!(
        out[0],
        Out::Suback {
            pid: 1,
            codes: vec![1]
        }
    );
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(
        matches!(&out[1], Out::Publish { topic, payload, retain: true, qos: QoS::AtMostOnce, .. } if topic == "r/1" && payload == b"two")
    );
    // To an existing subscriber a retained PUBLISH goes with RETAIN 0 [MQTT-3.3.1-9].
    h.publish(p, "r/3", b"live", QoS::AtMostOnce, true, 0);
    let out = h.recv(s);
    assert!(
        matches!(&out[0], Out::Publish { retain: false, .. }),
        "{out:?}"
    );
    assert_eq!(h.core.stats().retained_messages, 2);
}

#[test]
fn will_on_network_loss_not_on_disconnect() {
    // [MQTT-3.1.2-8] [MQTT-3.1.2-10]
    let mut h = Harness::new();
    let s = h.connect("sub", true);
    h.subscribe(s, "will/#", QoS::AtMostOnce);
    let will = |t| Will {
        topic: t,
        payload: b"gone",
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::EMPTY,
    };
    let a = h.connect_with("a", true, 0, Some(will("will/a")));
    h.core.handle_close(a, h.now);
    let b = h.connect_with("b", true, 0, Some(will("will/b")));
    h.send(
        b,
        Packet::Disconnect(codec::Disconnect {
            reason: 0,
            properties: Properties::EMPTY,
        }),
    );
    h.core.handle_close(b, h.now);
    let got = h.publishes(s);
    assert_eq!(
        got,
        vec![("will/a".to_string(), b"gone".to_vec(), QoS::AtMostOnce)]
    );
}

#[test]
fn will_on_protocol_error_and_retained() {
    // [MQTT-3.1.2-8] protocol error counts as an unclean end; [MQTT-3.1.2-17] retain honoured.
    let mut h = Harness::new();
    let will = Will {
        topic: "will/x",
        payload: b"dead",
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: Properties::EMPTY,
    };
    let a = h.connect_with("a", true, 0, Some(will));
    h.bytes(a, &[0xF0, 0x00]); // AUTH is not 3.1.1: malformed
    assert!(h.core.is_closing(a));
    let s = h.connect("late", true);
    let out = h.subscribe(s, "will/x", QoS::AtLeastOnce);
    assert!(
        matches!(&out[1], Out::Publish { retain: true, payload, .. } if payload == b"dead"),
        "{out:?}"
    );
}

#[test]
fn keepalive_expires_at_one_and_a_half_times() {
    // [MQTT-3.1.2-24]
    let mut h = Harness::new();
    let s = h.connect("sub", true);
    h.subscribe(s, "will/#", QoS::AtMostOnce);
    let will = Will {
        topic: "will/k",
        payload: b"timeout",
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::EMPTY,
    };
    let k = h.connect_with("k", true, 10, Some(will));
    h.recv(k);
    h.advance(Duration::from_secs(14));
    assert!(!h.core.is_closing(k), "still within 1.5 x keepalive");
    h.send(k, Packet::PingReq);
    assert_eq!(h.recv(k), vec![Out::PingResp]);
    h.advance(Duration::from_secs(14));
    assert!(!h.core.is_closing(k), "PINGREQ restarted the clock");
    h.advance(Duration::from_millis(1100));
    assert!(h.core.is_closing(k));
    assert_eq!(h.publishes(s).len(), 1);
}

#[test]
fn connect_timeout_closes_silent_connections() {
    let mut h = Harness::new();
    let id = h.open();
    h.advance(Duration::from_secs(9));
    assert!(!h.core.is_closing(id));
    h.advance(Duration::from_secs(2));
    assert!(h.core.is_closing(id));
}

#[test]
fn takeover_closes_the_old_connection() {
    // [MQTT-3.1.4-2]
    let mut h = Harness::new();
    let old = h.connect("same", false);
    h.subscribe(old, "t", QoS::AtLeastOnce);
    let new = h.connect_with("same", false, 0, None);
    assert!(h.core.is_closing(old));
    assert_eq!(
        h.recv(new),
        vec![Out::Connack {
            present: true,
            code: 0
        }]
    );
    h.core.handle_close(old, h.now);
    assert_eq!(h.core.stats().clients_connected, 1);
    let p = h.connect("p", true);
    h.publish(p, "t", b"m", QoS::AtLeastOnce, false, 1);
    assert_eq!(h.publishes(new).len(), 1);
}

#[test]
fn persistent_session_queues_and_resends_with_dup() {
    // [MQTT-3.1.2-4] [MQTT-3.2.2-2] [MQTT-4.4.0-1]
    let mut h = Harness::new();
    let s = h.connect("persist", false);
    h.subscribe(s, "q/#", QoS::AtLeastOnce);
    let p = h.connect("p", true);
    h.publish(p, "q/1", b"first", QoS::AtLeastOnce, false, 1);
    let first = h.recv(s);
    assert!(matches!(&first[0], Out::Publish { dup: false, .. }));
    // Not acknowledged; the client vanishes.
    h.core.handle_close(s, h.now);
    h.publish(p, "q/2", b"second", QoS::AtLeastOnce, false, 2);
    h.publish(p, "q/3", b"zero", QoS::AtMostOnce, false, 0);
    let s2 = h.connect_with("persist", false, 0, None);
    let out = h.recv(s2);
    assert_eq!(
        out[0],
        Out::Connack {
            present: true,
            code: 0
        }
    );
    assert!(
        matches!(&out[1], Out::Publish { dup: true, payload, .. } if payload == b"first"),
        "{out:?}"
    );
    assert!(
        matches!(&out[2], Out::Publish { dup: false, payload, .. } if payload == b"second"),
        "{out:?}"
    );
    assert_eq!(
        out.len(),
        3,
        "QoS 0 is not queued for offline sessions: {out:?}"
    );
}

#[test]
fn clean_session_forgets_everything() {
    // [MQTT-3.1.2-6] [MQTT-3.2.2-1]
    let mut h = Harness::new();
    let s = h.connect("c", false);
    h.subscribe(s, "t", QoS::AtLeastOnce);
    h.core.handle_close(s, h.now);
    let s2 = h.connect_with("c", true, 0, None);
    assert_eq!(
        h.recv(s2),
        vec![Out::Connack {
            present: false,
            code: 0
        }]
    );
    let p = h.connect("p", true);
    h.publish(p, "t", b"m", QoS::AtLeastOnce, false, 1);
    assert!(h.publishes(s2).is_empty());
}

#[test]
fn offline_queue_is_capped_and_drops_are_counted() {
    let mut config = CoreOptions::default();
    config.limits.max_queued_messages = 3;
    let mut h = Harness::with(config);
    let s = h.connect("slow", false);
    h.subscribe(s, "t", QoS::AtLeastOnce);
    h.core.handle_close(s, h.now);
    let p = h.connect("p", true);
    for i in 1..=5 {
        h.publish(p, "t", &[i], QoS::AtLeastOnce, false, u16::from(i));
    }
    assert_eq!(h.core.stats().publish_dropped, 2);
    let s2 = h.connect_with("slow", false, 0, None);
    let got: Vec<Vec<u8>> = h.publishes(s2).into_iter().map(|p| p.1).collect();
    assert_eq!(got, vec![vec![1], vec![2], vec![3]]);
}

#[test]
fn inflight_window_holds_back_until_acked() {
    let mut config = CoreOptions::default();
    config.limits.max_inflight = 2;
    let mut h = Harness::with(config);
    let s = h.connect("s", true);
    h.subscribe(s, "t", QoS::AtLeastOnce);
    let p = h.connect("p", true);
    for i in 1..=5u8 {
        h.publish(p, "t", &[i], QoS::AtLeastOnce, false, u16::from(i));
    }
    let out = h.recv(s);
    assert_eq!(out.len(), 2);
    let Out::Publish {
        pid: Some(first), ..
    } = out[0]
    else {
        panic!()
    };
    h.resp(s, PubRespKind::PubAck, first);
    let out = h.recv(s);
    assert!(
        matches!(&out[..], [Out::Publish { payload, .. }] if payload == &[3]),
        "{out:?}"
    );
}

#[test]
fn slow_consumer_drops_qos0_past_the_output_bound() {
    let mut config = CoreOptions::default();
    config.limits.max_output_buffer = 1024;
    let mut h = Harness::with(config);
    let s = h.connect("s", true);
    h.subscribe(s, "t", QoS::AtMostOnce);
    let p = h.connect("p", true);
    for _ in 0..100 {
        h.publish(p, "t", &[0u8; 100], QoS::AtMostOnce, false, 0);
    }
    // Nothing was written to `s`: its buffer stopped at the bound.
    assert!(h.core.pending_output(s).len() < 1024 + 200);
    assert!(h.core.stats().publish_dropped >= 90);
}

#[test]
fn malformed_filter_closes_the_connection() {
    // [MQTT-4.7.1-2] [MQTT-4.7.3-1]: a filter that is no filter closes the
    // connection, as Mosquitto does, whatever the other filters are.
    for bad in ["a/#/b", "", "a+", "#x"] {
        let mut h = Harness::new();
        let s = h.connect("s", true);
        let mut buf = Vec::new();
        let filters = [
            ("ok/+", SubOptions::qos_only(QoS::ExactlyOnce)),
            (bad, SubOptions::qos_only(QoS::AtMostOnce)),
        ];
        codec::encode_subscribe(pid(9), Properties::EMPTY, &filters, V4, &mut buf);
        h.bytes(s, &buf);
        assert!(h.recv(s).is_empty(), "{bad:?}");
        assert!(h.core.is_closing(s), "{bad:?}");
    }
}

#[test]
fn dollar_topics_not_matched_by_leading_wildcards() {
    // [MQTT-4.7.2-1]
    let mut h = Harness::new();
    let all = h.connect("all", true);
    h.subscribe(all, "#", QoS::AtMostOnce);
    let plus = h.connect("plus", true);
    h.subscribe(plus, "+/x", QoS::AtMostOnce);
    let sys = h.connect("sys", true);
    h.subscribe(sys, "$foo/#", QoS::AtMostOnce);
    let p = h.connect("p", true);
    h.publish(p, "$foo/x", b"1", QoS::AtMostOnce, false, 0);
    assert!(h.publishes(all).is_empty());
    assert!(h.publishes(plus).is_empty());
    assert_eq!(h.publishes(sys).len(), 1);
}

#[test]
fn overlapping_subscriptions_deliver_once_at_highest_qos() {
    // [MQTT-3.3.5-1]
    let mut h = Harness::new();
    let s = h.connect("s", true);
    h.subscribe(s, "a/+", QoS::AtMostOnce);
    h.subscribe(s, "a/#", QoS::AtLeastOnce);
    let p = h.connect("p", true);
    h.publish(p, "a/b", b"m", QoS::ExactlyOnce, false, 3);
    let got = h.publishes(s);
    assert_eq!(
        got,
        vec![("a/b".to_string(), b"m".to_vec(), QoS::AtLeastOnce)]
    );
}

#[test]
fn unsubscribe_stops_delivery() {
    // [MQTT-3.10.4-1] [MQTT-3.10.4-4]
    let mut h = Harness::new();
    let s = h.connect("s", true);
    h.subscribe(s, "t", QoS::AtMostOnce);
    let mut buf = Vec::new();
    codec::encode_unsubscribe(pid(4), Properties::EMPTY, &["t"], V4, &mut buf);
    h.bytes(s, &buf);
    assert_eq!(h.recv(s), vec![Out::Unsuback { pid: 4 }]);
    let p = h.connect("p", true);
    h.publish(p, "t", b"m", QoS::AtMostOnce, false, 0);
    assert!(h.publishes(s).is_empty());
    assert_eq!(h.core.stats().subscriptions, 0);
}

#[test]
fn frames_split_anywhere_and_batched() {
    let mut h = Harness::new();
    let s = h.connect("s", true);
    h.subscribe(s, "t", QoS::AtMostOnce);
    let p = h.connect("p", true);
    let mut buf = Vec::new();
    for payload in [b"one", b"two"] {
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "t",
            packet_id: None,
            properties: Properties::EMPTY,
            payload,
        })
        .encode(V4, &mut buf);
    }
    // Byte by byte, as a net layer keeping the unparsed tail would feed it.
    let mut pending = Vec::new();
    for &b in &buf {
        pending.push(b);
        let used = h.core.handle_data(p, &pending, h.now);
        pending.drain(..used);
    }
    assert!(pending.is_empty());
    // And both frames in one read.
    let used = h.core.handle_data(p, &buf, h.now);
    assert_eq!(used, buf.len());
    assert_eq!(h.publishes(s).len(), 4);
}

#[test]
fn session_limit_refuses_with_server_unavailable() {
    let mut config = CoreOptions::default();
    config.limits.max_sessions = 1;
    let mut h = Harness::with(config);
    h.connect("one", true);
    let two = h.connect_with("two", true, 0, None);
    assert_eq!(
        h.recv(two),
        vec![Out::Connack {
            present: false,
            code: 3
        }]
    );
}

#[test]
fn sys_topics_are_published_retained_and_only_on_change() {
    let mut h = Harness::new();
    h.core.handle_timeout(h.now); // starts the $SYS clock
    let all = h.connect("all", true);
    h.subscribe(all, "#", QoS::AtMostOnce);
    let s = h.connect("sys", true);
    let out = h.subscribe(s, "$SYS/broker/#", QoS::AtMostOnce);
    let topics: Vec<String> = out
        .iter()
        .filter_map(|o| match o {
            Out::Publish {
                topic,
                retain: true,
                ..
            } => Some(topic.clone()),
            _ => None,
        })
        .collect();
    for t in [
        "$SYS/broker/version",
        "$SYS/broker/uptime",
        "$SYS/broker/clients/connected",
        "$SYS/broker/load/messages/received/1min",
    ] {
        assert!(topics.iter().any(|x| x == t), "{t} missing from {topics:?}");
    }
    h.advance(Duration::from_secs(10));
    let update: Vec<(String, Vec<u8>, QoS)> = h.publishes(s);
    let names: Vec<&str> = update.iter().map(|u| u.0.as_str()).collect();
    // Uptime and the connected count changed; the version did not.
    assert!(names.contains(&"$SYS/broker/uptime"), "{names:?}");
    assert!(
        names.contains(&"$SYS/broker/clients/connected"),
        "{names:?}"
    );
    assert!(!names.contains(&"$SYS/broker/version"), "{names:?}");
    let connected = update
        .iter()
        .find(|u| u.0 == "$SYS/broker/clients/connected")
        .map(|u| u.1.clone());
    assert_eq!(connected, Some(b"2".to_vec()));
    // [MQTT-4.7.2-1]: "#" does not see $SYS.
    assert!(h.publishes(all).is_empty());
    // Clients cannot publish under $SYS.
    let p = h.connect("p", true);
    h.publish(
        p,
        "$SYS/broker/uptime",
        b"forged",
        QoS::AtLeastOnce,
        false,
        1,
    );
    assert_eq!(
        h.recv(p),
        vec![Out::Resp {
            kind: PubRespKind::PubAck,
            pid: 1
        }]
    );
    assert!(h.publishes(s).is_empty());
}

#[test]
fn sys_interval_zero_turns_sys_off() {
    let mut h = Harness::with(CoreOptions {
        sys_interval: 0,
        ..CoreOptions::default()
    });
    h.core.handle_timeout(h.now);
    assert_eq!(h.core.next_deadline(), None);
    let s = h.connect("sys", true);
    assert_eq!(h.subscribe(s, "$SYS/#", QoS::AtMostOnce).len(), 1);
}

#[test]
fn takeover_of_a_clean_session_does_not_resume_it() {
    // The old connection's clean session ends with it [MQTT-3.1.2-6], so a
    // new connection with clean session 0 starts afresh.
    let mut h = Harness::new();
    let old = h.connect("same", true);
    h.subscribe(old, "t", QoS::AtLeastOnce);
    let new = h.connect_with("same", false, 0, None);
    assert!(h.core.is_closing(old));
    assert_eq!(
        h.recv(new),
        vec![Out::Connack {
            present: false,
            code: 0
        }]
    );
    assert_eq!(h.core.stats().subscriptions, 0);
}

#[test]
fn a_client_that_does_not_read_its_answers_is_paused() {
    // 1 MiB of PINGREQ with nothing read: the core stops taking packets once
    // the answers pass max_output_buffer, instead of buffering them all.
    let mut h = Harness::new();
    let id = h.connect("flood", true);
    let pings: Vec<u8> = [0xC0u8, 0x00].repeat(512 * 1024);
    let used = h.core.handle_data(id, &pings, h.now);
    assert!(used < pings.len());
    let bound = h.core.limits().max_output_buffer + 2;
    assert!(h.core.pending_output(id).len() <= bound);
    assert!(!h.core.wants_input(id));
    // Once it reads, it is served again.
    let n = h.core.pending_output(id).len();
    h.core.handle_written(id, n, h.now);
    assert!(h.core.wants_input(id));
    assert!(h.core.handle_data(id, &pings[used..], h.now) > 0);
}

#[test]
fn second_connect_with_a_bad_level_is_a_violation_not_a_connack() {
    // [MQTT-3.1.0-2] takes precedence: close, publish the will, no CONNACK.
    let mut h = Harness::new();
    let w = h.connect("w", true);
    h.subscribe(w, "will/t", QoS::AtMostOnce);
    let will = Will {
        topic: "will/t",
        payload: b"gone",
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::EMPTY,
    };
    let c = h.connect_with("c", true, 0, Some(will));
    h.recv(c);
    h.bytes(
        c,
        &[
            0x10, 0x0d, 0, 4, b'M', b'Q', b'T', b'T', 1, 0, 0, 0, 0, 1, b'a',
        ],
    );
    assert!(h.core.is_closing(c));
    assert!(h.recv(c).is_empty());
    assert_eq!(h.publishes(w).len(), 1);
}

/// The (topic, payload, QoS) of each PUBLISH in `out`.
fn publishes_in(out: Vec<Out>) -> Vec<(String, Vec<u8>, QoS)> {
    out.into_iter()
        .filter_map(|o| match o {
            Out::Publish {
                topic,
                payload,
                qos,
                ..
            } => Some((topic, payload, qos)),
            _ => None,
        })
        .collect()
}

fn connect_as(
    h: &mut Harness,
    client_id: &str,
    username: &str,
    will: Option<Will<'_>>,
) -> (ConnId, Vec<Out>) {
    let id = h.open();
    h.send(
        id,
        Packet::Connect(Connect {
            protocol: V4,
            clean_start: true,
            keep_alive: 0,
            properties: Properties::EMPTY,
            client_id,
            will,
            username: Some(username),
            password: Some(b"pw"),
        }),
    );
    let out = h.recv(id);
    (id, out)
}

#[test]
fn acl_denies_subscriptions_wills_and_deliveries() {
    use crate::auth::{Acl, Auth};
    let acl = Acl::parse(
        "user u\ntopic read in/#\ntopic write out/#\nuser w\ntopic write #\n",
        "acl",
    )
    .expect("acl");
    let mut h = Harness::new();
    h.core.set_auth(Auth::new(None, Some(acl), true));
    let (u, out) = connect_as(&mut h, "c", "u", None);
    assert_eq!(
        out,
        vec![Out::Connack {
            present: false,
            code: 0
        }]
    );
    // [MQTT-3.9.3]: 0x80 for a filter the client may never read from.
    assert_eq!(
        h.subscribe(u, "secret/#", QoS::AtMostOnce),
        vec![Out::Suback {
            pid: 1,
            codes: vec![0x80]
        }]
    );
    // "#" is granted but only readable topics arrive.
    assert_eq!(
        h.subscribe(u, "#", QoS::AtMostOnce),
        vec![Out::Suback {
            pid: 1,
            codes: vec![0]
        }]
    );
    let (p, _) = connect_as(&mut h, "writer", "w", None);
    h.publish(p, "in/1", b"ok", QoS::AtMostOnce, false, 0);
    h.publish(p, "secret/1", b"no", QoS::AtMostOnce, false, 0);
    let got: Vec<String> = h.publishes(u).into_iter().map(|g| g.0).collect();
    assert_eq!(got, ["in/1"]);
    // A will on a topic the user may not write: CONNACK 0x05.
    let will = Will {
        topic: "in/w",
        payload: b"x",
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::EMPTY,
    };
    let (_, out) = connect_as(&mut h, "c2", "u", Some(will));
    assert_eq!(
        out,
        vec![Out::Connack {
            present: false,
            code: 5
        }]
    );
    // A denied PUBLISH is acknowledged and dropped.
    h.publish(u, "in/x", b"denied", QoS::AtLeastOnce, false, 9);
    assert_eq!(
        h.recv(u),
        vec![Out::Resp {
            kind: PubRespKind::PubAck,
            pid: 9
        }]
    );
}

#[test]
fn a_reload_that_revokes_read_access_stops_deliveries_at_once() {
    // SIGHUP swaps the rules; subscriptions granted under the old ones
    // must not keep delivering what the new ones forbid.
    use crate::auth::{Acl, Auth};
    let rules = |text: &str| Auth::new(None, Some(Acl::parse(text, "acl").expect("acl")), true);
    let mut h = Harness::new();
    h.core
        .set_auth(rules("user u\ntopic read in/#\nuser w\ntopic write #\n"));
    // A filter the ACL fully allows (so no per-message check), on a plain
    // and on a shared subscription.
    let (plain, _) = connect_as(&mut h, "c1", "u", None);
    let (shared, _) = connect_as(&mut h, "c2", "u", None);
    let (p, _) = connect_as(&mut h, "writer", "w", None);
    h.subscribe(plain, "in/#", QoS::AtMostOnce);
    h.subscribe(shared, "$share/g/in/+", QoS::AtMostOnce);
    h.publish(p, "in/1", b"before", QoS::AtMostOnce, false, 0);
    assert_eq!(h.publishes(plain).len(), 1);
    assert_eq!(h.publishes(shared).len(), 1);

    h.core.set_auth(rules(
        "user u\ntopic read in/public\nuser w\ntopic write #\n",
    ));
    h.publish(p, "in/1", b"after", QoS::AtMostOnce, false, 0);
    h.publish(p, "in/public", b"still", QoS::AtMostOnce, false, 0);
    for c in [plain, shared] {
        let got: Vec<String> = h.publishes(c).into_iter().map(|g| g.0).collect();
        assert_eq!(got, ["in/public"], "only what the new rules allow");
    }

    // Access given back: delivered again.
    h.core
        .set_auth(rules("user u\ntopic read in/#\nuser w\ntopic write #\n"));
    h.publish(p, "in/2", b"again", QoS::AtMostOnce, false, 0);
    assert_eq!(h.publishes(plain).len(), 1);
    assert_eq!(h.publishes(shared).len(), 1);
}

#[test]
fn trusted_connections_need_no_credentials() {
    use crate::auth::Auth;
    let mut h = Harness::with(CoreOptions {
        allow_anonymous: false,
        ..CoreOptions::default()
    });
    h.core.set_auth(Auth::new(None, None, false));
    let anon = h.connect_with("anon", true, 0, None);
    assert_eq!(
        h.recv(anon),
        vec![Out::Connack {
            present: false,
            code: 5
        }]
    );
    let app = h.open();
    h.core.trust(app);
    h.send(
        app,
        Packet::Connect(Connect {
            protocol: V4,
            clean_start: true,
            keep_alive: 0,
            properties: Properties::EMPTY,
            client_id: "app",
            will: None,
            username: None,
            password: None,
        }),
    );
    assert_eq!(
        h.recv(app),
        vec![Out::Connack {
            present: false,
            code: 0
        }]
    );
}

mod budget;
mod flow;
mod options;
mod persist;
mod verdict;
