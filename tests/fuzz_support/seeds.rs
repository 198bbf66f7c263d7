//! Seed inputs for the three fuzz targets, built with boxmq's own encoder:
//! real packets of 3.1.1 and 5.0, Shelly Button1 traffic and a dashboard
//! subscriber. `tests/fuzz_corpus.rs` writes them to `fuzz/corpus/<target>/`
//! on request (`BOXMQ_WRITE_SEEDS=1`).

use boxmq::codec::{
    self, Auth, Connack, Connect, Disconnect, Packet, PacketId, Properties, PropertiesBuf,
    Property, ProtocolVersion, PubResp, PubRespKind, Publish, QoS, SubOptions, Suback, Unsuback,
    Will,
};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

pub const SHELLY_ID: &str = "shellybutton1-A4CF12F45A10";
pub const SHELLY_ONLINE: &str = "shellies/shellybutton1-A4CF12F45A10/online";
pub const SHELLY_EVENT: &str = "shellies/shellybutton1-A4CF12F45A10/input_event/0";
pub const SHELLY_PAYLOAD: &[u8] = br#"{"event":"S","event_cnt":3}"#;
pub const DASHBOARD_FILTER: &str = "shellies/+/input_event/0";

fn pid(v: u16) -> PacketId {
    PacketId::new(v).expect("non-zero")
}

fn enc(p: &Packet<'_>, v: ProtocolVersion) -> Vec<u8> {
    let mut out = Vec::new();
    p.encode(v, &mut out);
    out
}

/// The Shelly Button1's CONNECT: keepalive 60, will "false" on its online
/// topic (retained, QoS 0), clean session.
pub fn shelly_connect(v: ProtocolVersion, keep_alive: u16) -> Vec<u8> {
    enc(
        &Packet::Connect(Connect {
            protocol: v,
            clean_start: true,
            keep_alive,
            properties: Properties::EMPTY,
            client_id: SHELLY_ID,
            will: Some(Will {
                topic: SHELLY_ONLINE,
                payload: b"false",
                qos: QoS::AtMostOnce,
                retain: true,
                properties: Properties::EMPTY,
            }),
            username: None,
            password: None,
        }),
        v,
    )
}

pub fn shelly_event(v: ProtocolVersion, qos: QoS) -> Vec<u8> {
    enc(
        &Packet::Publish(Publish {
            dup: false,
            qos,
            retain: false,
            topic: SHELLY_EVENT,
            packet_id: (qos != QoS::AtMostOnce).then(|| pid(1)),
            properties: Properties::EMPTY,
            payload: SHELLY_PAYLOAD,
        }),
        v,
    )
}

pub fn connect(v: ProtocolVersion, client_id: &str, clean: bool, keep_alive: u16) -> Vec<u8> {
    enc(
        &Packet::Connect(Connect {
            protocol: v,
            clean_start: clean,
            keep_alive,
            properties: Properties::EMPTY,
            client_id,
            will: None,
            username: None,
            password: None,
        }),
        v,
    )
}

pub fn subscribe(v: ProtocolVersion, filter: &str, qos: QoS) -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode_subscribe(
        pid(1),
        Properties::EMPTY,
        &[(filter, SubOptions::qos_only(qos))],
        v,
        &mut out,
    );
    out
}

pub fn disconnect(v: ProtocolVersion) -> Vec<u8> {
    enc(
        &Packet::Disconnect(Disconnect {
            reason: 0,
            properties: Properties::EMPTY,
        }),
        v,
    )
}

/// Single frames for the `codec` target.
pub fn codec_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let mut user = PropertiesBuf::new();
    user.push(&Property::UserProperty("k", "v"));
    user.push(&Property::ReasonString("why"));
    let mut connect_props = PropertiesBuf::new();
    connect_props.push(&Property::SessionExpiryInterval(3600));
    connect_props.push(&Property::ReceiveMaximum(10));
    connect_props.push(&Property::MaximumPacketSize(4096));
    let mut pub_props = PropertiesBuf::new();
    pub_props.push(&Property::PayloadFormatIndicator(1));
    pub_props.push(&Property::MessageExpiryInterval(30));
    pub_props.push(&Property::TopicAlias(1));
    pub_props.push(&Property::ContentType("application/json"));
    pub_props.push(&Property::ResponseTopic("reply/to"));
    pub_props.push(&Property::CorrelationData(b"\x00\x01"));
    let mut sub_props = PropertiesBuf::new();
    sub_props.push(&Property::SubscriptionIdentifier(12345));
    let mut auth_props = PropertiesBuf::new();
    auth_props.push(&Property::AuthenticationMethod("SCRAM-SHA-1"));
    auth_props.push(&Property::AuthenticationData(b"data"));

    for (tag, v) in [("v311", V311), ("v5", V5)] {
        let mut add = |name: &str, bytes: Vec<u8>| seeds.push((format!("{tag}-{name}"), bytes));
        add("shelly-connect", shelly_connect(v, 60));
        add("shelly-publish", shelly_event(v, QoS::AtMostOnce));
        add("shelly-publish-qos1", shelly_event(v, QoS::AtLeastOnce));
        add("shelly-disconnect", disconnect(v));
        add(
            "dashboard-subscribe",
            subscribe(v, DASHBOARD_FILTER, QoS::AtLeastOnce),
        );
        add(
            "connack",
            enc(
                &Packet::Connack(Connack {
                    session_present: false,
                    code: 0,
                    properties: Properties::EMPTY,
                }),
                v,
            ),
        );
        add(
            "suback",
            enc(
                &Packet::Suback(Suback {
                    packet_id: pid(1),
                    properties: Properties::EMPTY,
                    codes: &[0x01, 0x80],
                }),
                v,
            ),
        );
        let mut unsub = Vec::new();
        codec::encode_unsubscribe(
            pid(2),
            Properties::EMPTY,
            &[DASHBOARD_FILTER],
            v,
            &mut unsub,
        );
        add("unsubscribe", unsub);
        add(
            "unsuback",
            enc(
                &Packet::Unsuback(Unsuback {
                    packet_id: pid(2),
                    properties: Properties::EMPTY,
                    codes: if v.is_v5() { &[0x00] } else { &[] },
                }),
                v,
            ),
        );
        add(
            "pubrel",
            enc(
                &Packet::PubResp(PubResp {
                    kind: PubRespKind::PubRel,
                    packet_id: pid(7),
                    reason: 0,
                    properties: Properties::EMPTY,
                }),
                v,
            ),
        );
        add("pingreq", enc(&Packet::PingReq, v));
    }
    // 5.0 only: properties everywhere.
    seeds.push((
        "v5-connect-props".into(),
        enc(
            &Packet::Connect(Connect {
                protocol: V5,
                clean_start: false,
                keep_alive: 30,
                properties: connect_props.as_properties(),
                client_id: "dashboard",
                will: None,
                username: Some("user"),
                password: Some(b"secret"),
            }),
            V5,
        ),
    ));
    seeds.push((
        "v5-publish-props".into(),
        enc(
            &Packet::Publish(Publish {
                dup: true,
                qos: QoS::ExactlyOnce,
                retain: true,
                topic: SHELLY_EVENT,
                packet_id: Some(pid(9)),
                properties: pub_props.as_properties(),
                payload: SHELLY_PAYLOAD,
            }),
            V5,
        ),
    ));
    let mut sub = Vec::new();
    codec::encode_subscribe(
        pid(3),
        sub_props.as_properties(),
        &[(
            DASHBOARD_FILTER,
            SubOptions {
                qos: QoS::ExactlyOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: 2,
            },
        )],
        V5,
        &mut sub,
    );
    seeds.push(("v5-subscribe-options".into(), sub));
    seeds.push((
        "v5-puback-reason".into(),
        enc(
            &Packet::PubResp(PubResp {
                kind: PubRespKind::PubAck,
                packet_id: pid(4),
                reason: 0x10,
                properties: user.as_properties(),
            }),
            V5,
        ),
    ));
    seeds.push((
        "v5-disconnect-will".into(),
        enc(
            &Packet::Disconnect(Disconnect {
                reason: 0x04,
                properties: user.as_properties(),
            }),
            V5,
        ),
    ));
    seeds.push((
        "v5-auth".into(),
        enc(
            &Packet::Auth(Auth {
                reason: 0x18,
                properties: auth_props.as_properties(),
            }),
            V5,
        ),
    ));
    seeds.push((
        "v31-connect".into(),
        connect(ProtocolVersion::V31, "mosq-sub", true, 60),
    ));
    // A remaining length announcing 256 MB, and a five-byte one.
    seeds.push((
        "huge-remaining-length".into(),
        vec![0x30, 0xFF, 0xFF, 0xFF, 0x7F],
    ));
    seeds.push((
        "five-byte-length".into(),
        vec![0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
    ));
    seeds
}

/// Programs for the `topic` target (see `topic_check`).
pub fn topic_seeds() -> Vec<(String, Vec<u8>)> {
    // Level indexes: a=0 b=1 +=2 #=3 ""=4 $SYS=5 c=6.
    let insert = |key: u8, levels: &[u8]| {
        let mut v = vec![key << 2, (levels.len() as u8).wrapping_sub(1)];
        v.extend_from_slice(levels);
        v
    };
    let remove = |key: u8, levels: &[u8]| {
        let mut v = vec![(key << 2) | 2, (levels.len() as u8).wrapping_sub(1)];
        v.extend_from_slice(levels);
        v
    };
    let query = |levels: &[u8]| {
        let mut v = vec![3, (levels.len() as u8).wrapping_sub(1)];
        v.extend_from_slice(levels);
        v
    };
    let mut program = vec![64, 8];
    program.extend(insert(0, &[0, 2, 1])); // a/+/b
    program.extend(insert(1, &[0, 3])); // a/#
    program.extend(insert(2, &[3])); // #
    program.extend(insert(3, &[2, 2])); // +/+
    program.extend(insert(0, &[5, 3])); // $SYS/#
    program.extend(query(&[0, 6, 1])); // a/c/b
    program.extend(query(&[0])); // a
    program.extend(query(&[5, 0])); // $SYS/a
    program.extend(query(&[4, 0])); // /a
    program.extend(remove(1, &[0, 3]));
    program.extend(query(&[0, 6]));
    program.extend(remove(2, &[3]));
    program.extend(query(&[0, 6]));
    vec![
        ("wildcards-program".into(), program),
        (
            "shelly-filter-text".into(),
            b"\x40\x08shellies/+/input_event/0".to_vec(),
        ),
        ("share-text".into(), b"\x40\x08$share/group/a/#".to_vec()),
    ]
}

/// Builds `core` programs (see `core_check`).
#[derive(Default)]
pub struct Prog(pub Vec<u8>);

impl Prog {
    fn op(&mut self, op: u8, conn: u8) -> &mut Self {
        self.0.push((conn << 4) | op);
        self
    }
    pub fn open(&mut self, c: u8) -> &mut Self {
        self.op(0, c)
    }
    pub fn raw(&mut self, c: u8, bytes: &[u8], chunk: u8) -> &mut Self {
        self.op(1, c);
        if bytes.len() < 255 {
            self.0.push(bytes.len() as u8);
        } else {
            self.0.push(255);
            let n = u16::try_from(bytes.len()).expect("short enough");
            self.0.extend_from_slice(&n.to_le_bytes());
        }
        self.0.push(chunk);
        self.0.extend_from_slice(bytes);
        self
    }
    pub fn canned(&mut self, c: u8, kind: u8, a: u8, b: u8) -> &mut Self {
        self.op(2, c);
        self.0.extend_from_slice(&[kind, a, b]);
        self
    }
    pub fn write(&mut self, c: u8, n8: u8) -> &mut Self {
        self.op(3, c);
        self.0.push(n8);
        self
    }
    pub fn drain(&mut self, c: u8) -> &mut Self {
        self.op(4, c)
    }
    pub fn close(&mut self, c: u8) -> &mut Self {
        self.op(5, c)
    }
    /// Op 7: installs hooks the first time, answers a question afterwards.
    pub fn hook(&mut self, v: u8) -> &mut Self {
        self.op(7, 0);
        self.0.push(v);
        self
    }
    pub fn tick(&mut self, quarter_seconds: u8) -> &mut Self {
        self.op(6, 0);
        self.0.push(quarter_seconds);
        self
    }
}

/// Programs for the `core` target.
pub fn core_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (tag, v) in [("v311", V311), ("v5", V5)] {
        // The dashboard subscribes; the button connects, presses, leaves.
        let mut p = Prog::default();
        p.open(0)
            .raw(0, &connect(v, "dashboard", true, 60), 0)
            .drain(0)
            .raw(0, &subscribe(v, DASHBOARD_FILTER, QoS::AtLeastOnce), 0)
            .drain(0)
            .open(1)
            .raw(1, &shelly_connect(v, 60), 7)
            .drain(1)
            .raw(1, &shelly_event(v, QoS::AtMostOnce), 0)
            .raw(1, &shelly_event(v, QoS::AtLeastOnce), 3)
            .drain(0)
            .drain(1)
            .raw(1, &disconnect(v), 0)
            .drain(0);
        seeds.push((format!("{tag}-shelly-press"), p.0));

        // Half-open button (keepalive 1): closed after 1.5 s, will published.
        let mut p = Prog::default();
        p.open(0)
            .raw(0, &connect(v, "dashboard", true, 0), 0)
            .raw(0, &subscribe(v, "shellies/#", QoS::AtMostOnce), 0)
            .drain(0)
            .open(1)
            .raw(1, &shelly_connect(v, 1), 0)
            .drain(1)
            .tick(4)
            .tick(4)
            .drain(0);
        seeds.push((format!("{tag}-half-open-will"), p.0));

        // A slow consumer: QoS 1 subscriber that never reads, a flood.
        let mut p = Prog::default();
        p.open(0)
            .raw(0, &connect(v, "slow", false, 0), 0)
            .raw(0, &subscribe(v, "#", QoS::AtLeastOnce), 0)
            .open(1)
            .raw(1, &connect(v, "flood", true, 0), 0);
        for i in 0..12u8 {
            p.canned(1, if i % 3 == 0 { 11 } else { 2 }, 2, i % 3);
        }
        p.write(0, 3).canned(0, 3, 0, 0).canned(0, 4, 1, 0).drain(0);
        seeds.push((format!("{tag}-slow-consumer"), p.0));

        // Persistent session: subscribe, go away, miss messages, resume.
        let mut p = Prog::default();
        p.open(0)
            .raw(0, &connect(v, "a", false, 0), 0)
            .raw(0, &subscribe(v, "a/+", QoS::ExactlyOnce), 0)
            .drain(0)
            .open(1)
            .raw(1, &connect(v, "b", true, 0), 0)
            .canned(1, 2, 2, 2)
            .close(0)
            .canned(1, 2, 2, 1)
            .canned(1, 2, 2, 0x82)
            .open(2)
            .raw(2, &connect(v, "a", false, 0), 0)
            .drain(2)
            .canned(2, 4, 0, 0)
            .canned(2, 6, 0, 0)
            .drain(2);
        seeds.push((format!("{tag}-resume"), p.0));

        // Application hooks: every CONNECT, PUBLISH and SUBSCRIBE parked;
        // a burst behind a parked PUBLISH, verdicts accept / refuse /
        // accept; a SUBSCRIBE answered per filter; a CONNECT left to its
        // deadline; a parked client that goes away.
        let mut p = Prog::default();
        p.hook(7)
            .open(0)
            .raw(0, &connect(v, "dashboard", true, 0), 0)
            .hook(0)
            .raw(0, &subscribe(v, "a/+", QoS::AtLeastOnce), 0)
            .hook(0x13)
            .drain(0)
            .open(1)
            .raw(1, &shelly_connect(v, 60), 0)
            .hook(0)
            .drain(1)
            // Three QoS 1 PUBLISHes to "a/b": the first parked, the others
            // wait behind it.
            .canned(1, 2, 2, 1)
            .canned(1, 2, 2, 19)
            .canned(1, 2, 2, 37)
            .hook(0)
            .hook(1)
            .hook(0)
            .drain(0)
            .drain(1)
            .open(2)
            .raw(2, &connect(v, "late", true, 0), 0)
            .tick(5)
            .drain(2)
            .open(3)
            .raw(3, &connect(v, "gone", true, 0), 0)
            .close(3)
            .hook(2)
            .drain(0);
        seeds.push((format!("{tag}-hooks"), p.0));

        // Garbage after a valid CONNECT.
        let mut p = Prog::default();
        let mut bytes = connect(v, "g", true, 0);
        bytes.extend_from_slice(&[0x00, 0xFF, 0x13, 0x37]);
        p.open(0).raw(0, &bytes, 0).drain(0);
        seeds.push((format!("{tag}-garbage"), p.0));
    }
    // Never CONNECT; a slowloris; 256 MB announced.
    let mut p = Prog::default();
    p.open(0).open(1).open(2);
    let c = connect(V311, "slowloris", true, 0);
    for (k, b) in c.iter().take(6).enumerate() {
        p.raw(1, &[*b], 0).tick(4);
        if k == 2 {
            p.raw(2, &[0x30, 0xFF, 0xFF, 0xFF, 0x7F], 0);
        }
    }
    p.tick(40);
    seeds.push(("abuse-timeouts".into(), p.0));
    seeds
}
