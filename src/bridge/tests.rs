//! Bridge tests without a network: topic mapping, the private protocol
//! level, and a [`Link`] driven against a real [`Core`] with a simulated
//! remote (QoS capping, loop-prevention flags, replay order across an
//! outage, the queue budget).

use std::time::{Duration, Instant};

use super::link::{Action, mark_private_for_tests};
use super::*;
use crate::codec::{
    self, Connack, Connect, Packet, PacketId, Properties, PropertiesBuf, Property, ProtocolVersion,
    PubResp, PubRespKind, Publish, SubOptions,
};
use crate::core::{ConnId, Core, CoreOptions};

#[test]
fn topic_rules_map_with_prefixes() {
    let r = TopicRule::new("sensors/#", Direction::Out, QoS::AtLeastOnce)
        .with_prefixes("hall/", "site/box7/");
    assert_eq!(r.local_filter(), "hall/sensors/#");
    assert_eq!(r.remote_filter(), "site/box7/sensors/#");
    assert_eq!(
        r.to_remote("hall/sensors/t1").as_deref(),
        Some("site/box7/sensors/t1")
    );
    assert_eq!(r.to_remote("other/sensors/t1"), None);
    // An `out` rule forwards nothing in.
    assert_eq!(r.to_local("site/box7/sensors/t1"), None);

    let both = TopicRule::new("", Direction::Both, QoS::AtMostOnce).with_prefixes("a/b", "x/y");
    assert_eq!(both.to_local("x/y").as_deref(), Some("a/b"));
    assert_eq!(both.to_remote("a/b").as_deref(), Some("x/y"));
    assert_eq!(both.to_remote("a/b/c"), None);

    let plain = TopicRule::new("shellies/+/input_event/0", Direction::In, QoS::AtLeastOnce);
    assert_eq!(
        plain.to_local("shellies/s1/input_event/0").as_deref(),
        Some("shellies/s1/input_event/0")
    );
    assert_eq!(plain.to_remote("shellies/s1/input_event/0"), None);
}

#[test]
fn config_check_refuses_what_cannot_work() {
    assert!(BridgeConfig::new("a").check().is_err(), "no address");
    let ok = BridgeConfig::new("a")
        .address("127.0.0.1:1883")
        .topic(TopicRule::new("#", Direction::Out, QoS::AtMostOnce));
    assert!(ok.check().is_ok());
    let bad = ok
        .clone()
        .topic(TopicRule::new("a/#/b", Direction::Out, QoS::AtMostOnce));
    assert!(bad.check().is_err());
    let mut slash = ok;
    slash.name = "a/b".into();
    assert!(slash.check().is_err());
}

#[test]
fn try_private_sets_protocol_level_0x84() {
    let mut out = Vec::new();
    Packet::Connect(Connect {
        protocol: ProtocolVersion::V311,
        clean_start: false,
        keep_alive: 60,
        properties: Properties::EMPTY,
        client_id: "box",
        will: None,
        username: None,
        password: None,
    })
    .encode(ProtocolVersion::V311, &mut out);
    mark_private_for_tests(&mut out);
    // Fixed header (2 bytes here), "MQTT" (6 bytes), then the level.
    assert_eq!(&out[2..8], b"\x00\x04MQTT");
    assert_eq!(out[8], 0x84);
}

// ----- a Link against a real Core, with a simulated remote -----

/// One packet the bridge sent to the remote, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Sent {
    Connect {
        level: ProtocolVersion,
        will: bool,
    },
    Subscribe(Vec<(String, SubOptions)>, u16),
    Publish {
        topic: String,
        payload: String,
        qos: QoS,
        pid: Option<u16>,
        retain: bool,
    },
    Ack(PubRespKind, u16),
    Other,
}

struct Harness {
    core: Core,
    link: Link,
    now: Instant,
    version: ProtocolVersion,
    next_pub_pid: u16,
}

const BRIDGE: ConnId = ConnId(1);
const SENSOR: ConnId = ConnId(2);

impl Harness {
    fn new(cfg: BridgeConfig) -> Harness {
        let mut core = Core::new(CoreOptions::default());
        let now = Instant::now();
        let version = match cfg.protocol {
            RemoteProtocol::V311 => ProtocolVersion::V311,
            RemoteProtocol::V5 => ProtocolVersion::V5,
        };
        let link = Link::new(cfg, BRIDGE, &mut core, now);
        // A local publisher.
        core.handle_open(SENSOR, "sensor", now);
        let mut buf = Vec::new();
        Packet::Connect(Connect {
            protocol: ProtocolVersion::V311,
            clean_start: true,
            keep_alive: 0,
            properties: Properties::EMPTY,
            client_id: "sensor",
            will: None,
            username: None,
            password: None,
        })
        .encode(ProtocolVersion::V311, &mut buf);
        core.handle_data(SENSOR, &buf, now);
        let mut h = Harness {
            core,
            link,
            now,
            version,
            next_pub_pid: 0,
        };
        h.drain_sensor();
        h
    }

    fn drain_sensor(&mut self) {
        let n = self.core.pending_output(SENSOR).len();
        self.core.handle_written(SENSOR, n, self.now);
    }

    /// The sensor publishes `payload` on `topic`.
    fn publish(&mut self, topic: &str, payload: &str, qos: QoS) {
        self.next_pub_pid += 1;
        let mut buf = Vec::new();
        Publish {
            dup: false,
            qos,
            retain: false,
            topic,
            packet_id: (qos != QoS::AtMostOnce)
                .then(|| PacketId::new(self.next_pub_pid))
                .flatten(),
            properties: Properties::EMPTY,
            payload: payload.as_bytes(),
        }
        .encode(ProtocolVersion::V311, &mut buf);
        self.core.handle_data(SENSOR, &buf, self.now);
        self.drain_sensor();
        self.link.local_output(&mut self.core, self.now);
    }

    /// Connects the remote side: TCP, CONNECT, then `connack`.
    fn connect(&mut self, connack_props: &[Property<'_>]) -> Vec<Sent> {
        let action = self.link.tick(&mut self.core, self.now);
        assert!(matches!(action, Some(Action::Connect(_))), "{action:?}");
        self.link.tcp_connected(self.now);
        let mut props = PropertiesBuf::new();
        for p in connack_props {
            props.push(p);
        }
        let mut buf = Vec::new();
        Packet::Connack(Connack {
            session_present: false,
            code: 0,
            properties: props.as_properties(),
        })
        .encode(self.version, &mut buf);
        self.remote_send(&buf);
        self.sent()
    }

    fn remote_send(&mut self, bytes: &[u8]) {
        let used = self.link.remote_data(&mut self.core, bytes, self.now);
        assert_eq!(used, bytes.len());
    }

    fn remote_ack(&mut self, kind: PubRespKind, pid: u16) {
        let mut buf = Vec::new();
        Packet::PubResp(PubResp {
            kind,
            packet_id: PacketId::new(pid).expect("pid"),
            reason: 0,
            properties: Properties::EMPTY,
        })
        .encode(self.version, &mut buf);
        self.remote_send(&buf);
    }

    /// What the bridge sent the remote since the last call.
    fn sent(&mut self) -> Vec<Sent> {
        let bytes = std::mem::take(&mut self.link.out);
        let mut rest = &bytes[..];
        let mut v = Vec::new();
        while !rest.is_empty() {
            // A private CONNECT does not decode as 3.1.1: look at it first.
            if rest.first() == Some(&0x10) {
                let level = if rest.get(8) == Some(&0x84) {
                    ProtocolVersion::V311
                } else {
                    self.version
                };
                let mut copy = rest.to_vec();
                if let Some(b) = copy.get_mut(8) {
                    if *b == 0x84 {
                        *b = 4;
                    }
                }
                let (p, n) = codec::decode(&copy, level, usize::MAX)
                    .expect("decodes")
                    .expect("complete");
                if let Packet::Connect(c) = p {
                    let private = rest.get(8) == Some(&0x84);
                    v.push(Sent::Connect {
                        level: if private {
                            ProtocolVersion::V31
                        } else {
                            c.protocol
                        },
                        will: c.will.is_some(),
                    });
                }
                rest = &rest[n..];
                continue;
            }
            let (p, n) = codec::decode(rest, self.version, usize::MAX)
                .expect("decodes")
                .expect("complete");
            v.push(match p {
                Packet::Subscribe(s) => Sent::Subscribe(
                    s.filters().map(|(f, o)| (f.to_owned(), o)).collect(),
                    s.packet_id.get(),
                ),
                Packet::Publish(p) => Sent::Publish {
                    topic: p.topic.to_owned(),
                    payload: String::from_utf8_lossy(p.payload).into_owned(),
                    qos: p.qos,
                    pid: p.packet_id.map(PacketId::get),
                    retain: p.retain,
                },
                Packet::PubResp(r) => Sent::Ack(r.kind, r.packet_id.get()),
                _ => Sent::Other,
            });
            rest = &rest[n..];
        }
        v
    }

    fn publishes(sent: &[Sent]) -> Vec<(String, Option<u16>)> {
        sent.iter()
            .filter_map(|s| match s {
                Sent::Publish {
                    topic,
                    payload,
                    pid,
                    ..
                } if !topic.starts_with("$SYS") => Some((payload.clone(), *pid)),
                _ => None,
            })
            .collect()
    }
}

fn cfg(protocol: RemoteProtocol) -> BridgeConfig {
    let mut c = BridgeConfig::new("up")
        .address("127.0.0.1:1")
        .topic(TopicRule::new("load/#", Direction::Out, QoS::ExactlyOnce))
        .topic(TopicRule::new("cmd/#", Direction::In, QoS::AtLeastOnce));
    c.protocol = protocol;
    c.restart_timeout = RestartTimeout {
        base: Duration::from_secs(1),
        cap: Some(Duration::from_secs(4)),
    };
    c
}

#[test]
fn connect_announces_a_bridge_and_subscribes_with_loop_flags() {
    // 3.1.1: private level, will, plain options.
    let mut h = Harness::new(cfg(RemoteProtocol::V311));
    let sent = h.connect(&[]);
    assert!(
        matches!(
            sent.first(),
            Some(Sent::Connect {
                level: ProtocolVersion::V31,
                will: true
            })
        ),
        "{sent:?}"
    );
    let subs: Vec<_> = sent
        .iter()
        .filter_map(|s| match s {
            Sent::Subscribe(f, _) => Some(f.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        subs,
        vec![vec![(
            "cmd/#".to_owned(),
            SubOptions::qos_only(QoS::AtLeastOnce)
        )]]
    );
    assert!(sent.iter().any(|s| matches!(
        s,
        Sent::Publish { topic, payload, retain: true, .. }
            if topic == "$SYS/broker/connection/up/state" && payload == "1"
    )));

    // 5.0: No Local and Retain As Published on the remote subscription.
    let mut h = Harness::new(cfg(RemoteProtocol::V5));
    let sent = h.connect(&[]);
    let opts = sent.iter().find_map(|s| match s {
        Sent::Subscribe(f, _) => f.first().map(|(_, o)| *o),
        _ => None,
    });
    let opts = opts.expect("a SUBSCRIBE");
    assert!(opts.no_local && opts.retain_as_published, "{opts:?}");
}

#[test]
fn notifications_local_only_sends_the_remote_no_state_and_no_will() {
    let mut c = cfg(RemoteProtocol::V311);
    c.notifications_local_only = true;
    let mut h = Harness::new(c);
    let sent = h.connect(&[]);
    assert!(
        matches!(sent.first(), Some(Sent::Connect { will: false, .. })),
        "{sent:?}"
    );
    assert!(
        !sent
            .iter()
            .any(|s| matches!(s, Sent::Publish { topic, .. } if topic.starts_with("$SYS"))),
        "{sent:?}"
    );
    // Still a bridge that subscribes and forwards.
    assert!(
        sent.iter().any(|s| matches!(s, Sent::Subscribe(..))),
        "{sent:?}"
    );
    h.publish("load/1", "x", QoS::AtLeastOnce);
    assert_eq!(Harness::publishes(&h.sent()).len(), 1);
}

#[test]
fn transport_failure_before_connack_keeps_try_private_and_backs_off() {
    let mut h = Harness::new(cfg(RemoteProtocol::V311));
    assert!(h.link.tick(&mut h.core, h.now).is_some());
    h.link.tcp_connected(h.now);
    let _ = h.sent();
    h.link
        .transport_failed(&mut h.core, h.now, "TLS record refused: alert");
    // No immediate retry: the usual backoff.
    assert!(h.link.tick(&mut h.core, h.now).is_none());
    let later = h.now + std::time::Duration::from_secs(120);
    assert!(h.link.tick(&mut h.core, later).is_some());
    h.link.tcp_connected(later);
    let again = h.sent();
    assert!(
        matches!(
            again.first(),
            Some(Sent::Connect {
                level: ProtocolVersion::V31,
                ..
            })
        ),
        "still private: {again:?}"
    );
}

#[test]
fn remote_closing_before_connack_drops_try_private() {
    let mut h = Harness::new(cfg(RemoteProtocol::V311));
    assert!(h.link.tick(&mut h.core, h.now).is_some());
    h.link.tcp_connected(h.now);
    let first = h.sent();
    assert!(matches!(
        first.first(),
        Some(Sent::Connect {
            level: ProtocolVersion::V31,
            ..
        })
    ));
    h.link
        .remote_closed(&mut h.core, h.now, "closed before CONNACK");
    // Retried at once, as plain 3.1.1.
    assert!(h.link.tick(&mut h.core, h.now).is_some());
    h.link.tcp_connected(h.now);
    let second = h.sent();
    assert!(
        matches!(
            second.first(),
            Some(Sent::Connect {
                level: ProtocolVersion::V311,
                ..
            })
        ),
        "{second:?}"
    );
}

#[test]
fn qos_is_capped_at_the_remote_maximum() {
    let mut h = Harness::new(cfg(RemoteProtocol::V5));
    h.connect(&[Property::MaximumQoS(1)]);
    h.publish("load/a", "x", QoS::ExactlyOnce);
    let sent = h.sent();
    let qos: Vec<QoS> = sent
        .iter()
        .filter_map(|s| match s {
            Sent::Publish { topic, qos, .. } if topic == "load/a" => Some(*qos),
            _ => None,
        })
        .collect();
    assert_eq!(qos, vec![QoS::AtLeastOnce]);
}

#[test]
fn inbound_is_published_here_then_acknowledged() {
    let mut h = Harness::new(cfg(RemoteProtocol::V311));
    h.connect(&[]);
    let mut buf = Vec::new();
    Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "cmd/relay",
        packet_id: PacketId::new(7),
        properties: Properties::EMPTY,
        payload: b"on",
    }
    .encode(ProtocolVersion::V311, &mut buf);
    h.remote_send(&buf);
    assert!(h.sent().contains(&Sent::Ack(PubRespKind::PubAck, 7)));
    assert_eq!(h.link.stats(&h.core).received, 1);
}

#[test]
fn unacknowledged_messages_are_replayed_in_order_after_an_outage() {
    let mut h = Harness::new(cfg(RemoteProtocol::V311));
    h.connect(&[]);
    for i in 0..5 {
        h.publish("load/x", &format!("m{i}"), QoS::AtLeastOnce);
    }
    let sent = Harness::publishes(&h.sent());
    let names: Vec<&str> = sent.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(names, ["m0", "m1", "m2", "m3", "m4"]);
    // The remote acknowledges the first two only, then the uplink fails.
    for (_, pid) in &sent[..2] {
        h.remote_ack(PubRespKind::PubAck, pid.expect("QoS 1"));
    }
    h.link.remote_closed(&mut h.core, h.now, "uplink lost");
    assert!(h.link.tick(&mut h.core, h.now).is_none(), "backoff first");
    // Meanwhile the sensor goes on.
    for i in 5..10 {
        h.publish("load/x", &format!("m{i}"), QoS::AtLeastOnce);
    }
    let held = h.link.stats(&h.core);
    assert_eq!(held.inflight + held.queued, 8, "{held:?}");
    assert!(!held.connected);

    h.now += Duration::from_secs(5);
    let sent = h.connect(&[]);
    let mut replay = Harness::publishes(&sent);
    // Whatever the inflight window lets out first, then the rest as acks come.
    loop {
        let pids: Vec<u16> = replay.iter().filter_map(|(_, p)| *p).collect();
        let before = replay.len();
        for pid in pids.iter().skip(before.saturating_sub(pids.len())) {
            h.remote_ack(PubRespKind::PubAck, *pid);
        }
        replay.extend(Harness::publishes(&h.sent()));
        if replay.len() == before {
            break;
        }
    }
    let names: Vec<&str> = replay.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(names, ["m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"]);
    let after = h.link.stats(&h.core);
    assert_eq!((after.inflight, after.queued, after.dropped), (0, 0, 0));
}

#[test]
fn qos0_is_kept_through_an_outage_unless_turned_off() {
    // A Shelly button publishes at QoS 0: with `bridge_queue_qos0 true`
    // its presses wait for the uplink like QoS 1 messages, in order.
    for (keep, want) in [(true, &["a0", "q1", "a2"][..]), (false, &["q1"][..])] {
        let mut c = cfg(RemoteProtocol::V311);
        c.queue_qos0 = keep;
        let mut h = Harness::new(c);
        h.connect(&[]);
        h.link.remote_closed(&mut h.core, h.now, "uplink lost");
        h.publish("load/x", "a0", QoS::AtMostOnce);
        h.publish("load/x", "q1", QoS::AtLeastOnce);
        h.publish("load/x", "a2", QoS::AtMostOnce);
        h.now += Duration::from_secs(5);
        let sent = Harness::publishes(&h.connect(&[]));
        let names: Vec<&str> = sent.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, want, "queue_qos0 {keep}");
        // QoS 0 goes without a packet id, QoS 1 with one.
        for (payload, pid) in &sent {
            assert_eq!(pid.is_some(), payload.starts_with('q'), "{payload}");
        }
        let s = h.link.stats(&h.core);
        assert_eq!((s.queued, s.dropped), (0, 0), "queue_qos0 {keep}");
    }
}

#[test]
fn full_budget_policy_drops_oldest_or_refuses_new_and_counts() {
    for (policy, kept) in [
        (QueueFull::DropOldest, ["m7", "m8", "m9"]),
        (QueueFull::RefuseNew, ["m0", "m1", "m2"]),
    ] {
        let mut c = cfg(RemoteProtocol::V311);
        c.max_queued_messages = 3;
        c.queue_full = policy;
        let mut h = Harness::new(c);
        h.connect(&[]);
        h.link.remote_closed(&mut h.core, h.now, "uplink lost");
        for i in 0..10 {
            h.publish("load/x", &format!("m{i}"), QoS::AtLeastOnce);
        }
        let s = h.link.stats(&h.core);
        assert_eq!((s.queued, s.dropped), (3, 7), "{policy:?}");
        h.now += Duration::from_secs(5);
        let sent = h.connect(&[]);
        let names: Vec<String> = Harness::publishes(&sent)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(names, kept, "{policy:?}");
    }
}

#[test]
fn backoff_grows_to_the_cap_and_failover_moves_on() {
    let mut c = cfg(RemoteProtocol::V311).address("127.0.0.1:2");
    c.restart_timeout = RestartTimeout {
        base: Duration::from_secs(1),
        cap: Some(Duration::from_secs(8)),
    };
    let mut h = Harness::new(c);
    let mut addrs = Vec::new();
    let mut waits = Vec::new();
    for _ in 0..6 {
        let mut t = h.now;
        let action = loop {
            if let Some(a) = h.link.tick(&mut h.core, t) {
                break a;
            }
            t += Duration::from_millis(50);
            assert!(t < h.now + Duration::from_secs(20), "no attempt");
        };
        waits.push(t - h.now);
        let Action::Connect(addr) = action;
        addrs.push(addr);
        h.now = t;
        h.link.remote_closed(&mut h.core, h.now, "refused");
    }
    assert_eq!(addrs[0], "127.0.0.1:1");
    assert_eq!(addrs[1], "127.0.0.1:2");
    assert_eq!(addrs[2], "127.0.0.1:1");
    assert!(
        waits.iter().all(|w| *w <= Duration::from_millis(8050)),
        "{waits:?}"
    );
    assert!(
        waits
            .iter()
            .skip(1)
            .all(|w| *w >= Duration::from_millis(950)),
        "{waits:?}"
    );
}

#[test]
fn no_network_client_may_take_the_bridge_session() {
    let mut h = Harness::new(cfg(RemoteProtocol::V311));
    // A plain client, and one whose TLS client certificate proved a user
    // name (that spares the password, not the reserved id).
    for (n, proved) in [(3, false), (4, true)] {
        let intruder = ConnId(n);
        h.core.handle_open(intruder, "intruder", h.now);
        if proved {
            h.core.set_identity(intruder, "alice");
        }
        refused_bridge_id(&mut h, intruder);
    }
}

fn refused_bridge_id(h: &mut Harness, intruder: ConnId) {
    let mut buf = Vec::new();
    Packet::Connect(Connect {
        protocol: ProtocolVersion::V311,
        clean_start: false,
        keep_alive: 0,
        properties: Properties::EMPTY,
        client_id: "$bridge/up",
        will: None,
        username: None,
        password: None,
    })
    .encode(ProtocolVersion::V311, &mut buf);
    h.core.handle_data(intruder, &buf, h.now);
    let out = h.core.pending_output(intruder).to_vec();
    // CONNACK 0x02: identifier rejected [MQTT-3.2.2-5].
    assert_eq!(out, [0x20, 0x02, 0x00, 0x02]);
}

#[test]
fn after_a_failover_the_primary_is_tried_again_after_the_hold_down() {
    let mut h = Harness::new(cfg(RemoteProtocol::V5).address("127.0.0.1:2"));
    // The primary fails; the second address takes over.
    assert_eq!(
        h.link.tick(&mut h.core, h.now),
        Some(Action::Connect("127.0.0.1:1".into()))
    );
    h.link.remote_closed(&mut h.core, h.now, "refused");
    h.now += Duration::from_secs(5);
    h.connect(&[]);
    assert!(h.link.stats(&h.core).connected);
    assert_eq!(
        h.link.stats(&h.core).address.as_deref(),
        Some("127.0.0.1:2")
    );
    // Not before the hold-down...
    h.now += super::link::PRIMARY_HOLD_DOWN - Duration::from_secs(1);
    h.link.tick(&mut h.core, h.now);
    assert!(!h.link.take_drop_request());
    // ...then the secondary is left cleanly and the primary tried at once.
    h.now += Duration::from_secs(2);
    h.link.tick(&mut h.core, h.now);
    assert!(h.link.take_drop_request());
    assert!(!h.link.stats(&h.core).connected);
    assert_eq!(
        h.link.tick(&mut h.core, h.now),
        Some(Action::Connect("127.0.0.1:1".into()))
    );
}

#[test]
fn lazy_bridge_connects_at_its_threshold_and_leaves_when_idle() {
    let mut c = cfg(RemoteProtocol::V311);
    c.start_type = StartType::Lazy;
    c.threshold = 3;
    c.idle_timeout = Duration::from_secs(30);
    let mut h = Harness::new(c);
    // Not at start: nothing waits.
    assert!(h.link.tick(&mut h.core, h.now).is_none());
    assert_eq!(h.link.next_deadline(), Some(h.now + Duration::from_secs(5)));
    assert_eq!(h.link.stats(&h.core).down_since, None, "down by choice");
    // Two messages are kept (the session exists from the start), under
    // the threshold.
    h.publish("load/x", "m0", QoS::AtLeastOnce);
    h.publish("load/x", "m1", QoS::AtMostOnce);
    assert!(h.link.tick(&mut h.core, h.now).is_none());
    assert_eq!(h.link.stats(&h.core).queued, 2);
    // The third reaches it: the bridge connects and sends all three.
    h.publish("load/x", "m2", QoS::AtLeastOnce);
    let sent = h.connect(&[]);
    let names: Vec<String> = Harness::publishes(&sent).into_iter().map(|p| p.0).collect();
    assert_eq!(names, ["m0", "m1", "m2"]);
    for (_, pid) in Harness::publishes(&sent) {
        if let Some(pid) = pid {
            h.remote_ack(PubRespKind::PubAck, pid);
        }
    }
    // The state notification's PUBACK too.
    for s in &sent {
        if let Sent::Publish {
            topic,
            pid: Some(pid),
            ..
        } = s
        {
            if topic.starts_with("$SYS") {
                h.remote_ack(PubRespKind::PubAck, *pid);
            }
        }
    }
    // Traffic keeps it up; 30 s after the last message it leaves.
    h.now += Duration::from_secs(20);
    h.publish("load/x", "m3", QoS::AtMostOnce);
    assert_eq!(Harness::publishes(&h.sent()).len(), 1);
    h.now += Duration::from_secs(20);
    assert!(h.link.tick(&mut h.core, h.now).is_none());
    assert!(!h.link.take_drop_request(), "not idle yet");
    h.now += Duration::from_secs(10);
    let _ = h.link.tick(&mut h.core, h.now);
    let sent = h.sent();
    // The remote's state says "0" (a clean DISCONNECT fires no will).
    assert!(
        matches!(sent.as_slice(), [Sent::Publish { topic, payload, retain: true, .. }, Sent::Other]
            if topic == "$SYS/broker/connection/up/state" && payload == "0"),
        "{sent:?}"
    );
    assert!(h.link.take_drop_request());
    let s = h.link.stats(&h.core);
    assert!(
        !s.connected && s.down_since.is_none() && s.last_error.is_none(),
        "{s:?}"
    );
    // Dormant: no attempt until three wait again, kept meanwhile.
    h.now += Duration::from_secs(60);
    assert!(h.link.tick(&mut h.core, h.now).is_none());
    h.publish("load/x", "m4", QoS::AtLeastOnce);
    h.publish("load/x", "m5", QoS::AtLeastOnce);
    assert!(h.link.tick(&mut h.core, h.now).is_none());
    h.publish("load/x", "m6", QoS::AtLeastOnce);
    let sent = h.connect(&[]);
    let names: Vec<String> = Harness::publishes(&sent).into_iter().map(|p| p.0).collect();
    assert_eq!(names, ["m4", "m5", "m6"]);
}

#[test]
fn lazy_bridge_retries_with_backoff_only_while_its_threshold_holds() {
    let mut c = cfg(RemoteProtocol::V311);
    c.start_type = StartType::Lazy;
    c.threshold = 1;
    let mut h = Harness::new(c);
    assert!(h.link.tick(&mut h.core, h.now).is_none(), "nothing waits");
    h.publish("load/x", "m0", QoS::AtLeastOnce);
    let action = h.link.tick(&mut h.core, h.now);
    assert!(matches!(action, Some(Action::Connect(_))), "{action:?}");
    h.link.remote_closed(&mut h.core, h.now, "refused");
    assert!(
        h.link.stats(&h.core).down_since.is_some(),
        "it wanted to be up"
    );
    // The backoff holds even though a message waits.
    assert!(h.link.tick(&mut h.core, h.now).is_none());
    h.now += Duration::from_secs(5);
    assert!(matches!(
        h.link.tick(&mut h.core, h.now),
        Some(Action::Connect(_))
    ));
}

#[test]
fn once_bridge_never_tries_again() {
    let mut c = cfg(RemoteProtocol::V311);
    c.start_type = StartType::Once;
    let mut h = Harness::new(c);
    let action = h.link.tick(&mut h.core, h.now);
    assert!(matches!(action, Some(Action::Connect(_))), "{action:?}");
    h.link.remote_closed(&mut h.core, h.now, "refused");
    h.publish("load/x", "m0", QoS::AtLeastOnce);
    for _ in 0..10 {
        h.now += Duration::from_secs(60);
        assert!(h.link.tick(&mut h.core, h.now).is_none());
    }
    assert_eq!(h.link.next_deadline(), Some(h.now + Duration::from_secs(5)));
}
