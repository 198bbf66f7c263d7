//! Persistence in the core: held output, records, restore and snapshots.

use super::*;
use crate::core::PersistMode;

/// Unix time the tests pretend it is at `Harness::now`.
const UNIX: u64 = 1_800_000_000;

/// A harness whose core persists (full mode, output held for the disk).
fn persisted() -> Harness {
    let mut h = Harness::new();
    h.core
        .enable_persistence(PersistMode::Full, true, h.now, UNIX);
    h
}

/// The records the core emitted so far, as a disk would keep them.
fn drain(h: &mut Harness, log: &mut Vec<(u8, Vec<u8>)>) {
    h.core.drain_records(|k, b| log.push((k, b.to_vec())));
}

/// Writes the pending records to `log` and tells the core they are durable.
fn sync(h: &mut Harness, log: &mut Vec<(u8, Vec<u8>)>) {
    drain(h, log);
    let n = h.core.records_emitted();
    h.core.handle_durable(n);
}

/// Connects with output released, and checks the CONNACK.
fn connect_synced(
    h: &mut Harness,
    log: &mut Vec<(u8, Vec<u8>)>,
    client_id: &str,
    clean: bool,
) -> ConnId {
    let id = h.connect_with(client_id, clean, 0, None);
    sync(h, log);
    let out = h.recv(id);
    assert!(matches!(out[0], Out::Connack { code: 0, .. }), "{out:?}");
    id
}

/// Subscribes with output released; what came back.
fn subscribe_synced(
    h: &mut Harness,
    log: &mut Vec<(u8, Vec<u8>)>,
    id: ConnId,
    filter: &str,
    qos: QoS,
) -> Vec<Out> {
    let mut out = h.subscribe(id, filter, qos);
    sync(h, log);
    out.extend(h.recv(id));
    out
}

/// A fresh core restored from `log`, as after a restart.
fn restart(log: &[(u8, Vec<u8>)]) -> (Harness, crate::core::RestoreReport) {
    let mut h = persisted();
    let report = h
        .core
        .restore(log.iter().map(|(k, b)| (*k, b.as_slice())), h.now);
    (h, report)
}

/// The durable state of a core, comparable across restarts.
fn digest(core: &Core) -> String {
    let mut out = Vec::new();
    let mut retained = Vec::new();
    core.router.retained.for_each(|m| {
        retained.push(format!(
            "R {} {:?} {:?}",
            m.topic,
            String::from_utf8_lossy(&m.payload),
            m.qos
        ))
    });
    retained.sort();
    out.extend(retained);
    let mut sessions = Vec::new();
    for (_, s) in core.sessions.iter() {
        if s.persist_id == 0 {
            continue;
        }
        let mut subs: Vec<String> = s
            .subscriptions
            .iter()
            .map(|x| format!("{}:{}", x.filter, x.entry.options.to_byte()))
            .collect();
        subs.sort();
        // QoS 1 messages in flight come back queued (their packet ids
        // need not survive); QoS 2 ones keep theirs.
        let inflight: Vec<String> = s
            .inflight
            .iter()
            .filter(|f| f.pending.qos == QoS::ExactlyOnce)
            .map(|f| {
                format!(
                    "{}/{:?}/{}",
                    f.pid.get(),
                    f.state,
                    String::from_utf8_lossy(&f.pending.msg.payload)
                )
            })
            .collect();
        let queue: Vec<String> = s
            .inflight
            .iter()
            .filter(|f| f.pending.qos == QoS::AtLeastOnce)
            .map(|f| &f.pending)
            .chain(s.queue.iter())
            .filter(|q| q.qos != QoS::AtMostOnce)
            .map(|q| format!("{:?}/{}", q.qos, String::from_utf8_lossy(&q.msg.payload)))
            .collect();
        let mut inbound = s.incoming_qos2.clone();
        inbound.sort();
        sessions.push(format!(
            "S {} exp={} subs={subs:?} inflight={inflight:?} queue={queue:?} in={inbound:?} will={}",
            s.client_id,
            s.expiry_interval,
            s.pending_will.is_some()
        ));
    }
    sessions.sort();
    out.extend(sessions);
    out.join("\n")
}

#[test]
fn no_puback_before_the_record_is_durable() {
    let mut h = persisted();
    let mut log = Vec::new();
    let s = h.connect_with("sub", false, 0, None);
    // CONNACK of a persistent session waits for its record.
    assert!(h.recv(s).is_empty());
    sync(&mut h, &mut log);
    assert!(matches!(h.recv(s)[0], Out::Connack { code: 0, .. }));
    h.subscribe(s, "t", QoS::AtLeastOnce);
    sync(&mut h, &mut log);
    assert!(matches!(&h.recv(s)[..], [Out::Suback { .. }]));

    let p = h.connect("pub", true);
    h.publish(p, "t", b"m1", QoS::AtLeastOnce, false, 1);
    assert!(h.recv(p).is_empty(), "PUBACK before the record is durable");
    // QoS 1 to the subscriber need not wait: a copy whose record is lost
    // in a crash at worst arrives twice.
    assert_eq!(h.publishes(s).len(), 1);
    assert!(h.core.records_emitted() > log.len() as u64);
    sync(&mut h, &mut log);
    assert_eq!(
        h.recv(p),
        vec![Out::Resp {
            kind: PubRespKind::PubAck,
            pid: 1
        }]
    );
    // QoS 2 copies wait for their record.
    let s2 = connect_synced(&mut h, &mut log, "sub2", false);
    subscribe_synced(&mut h, &mut log, s2, "t2", QoS::ExactlyOnce);
    h.publish(p, "t2", b"m2", QoS::ExactlyOnce, false, 2);
    assert!(h.recv(s2).is_empty(), "QoS 2 forwarded before durable");
    assert!(h.recv(p).is_empty(), "PUBREC before durable");
    sync(&mut h, &mut log);
    assert_eq!(h.publishes(s2).len(), 1);
    assert_eq!(h.recv(p).len(), 1);
}

#[test]
fn pubrec_comes_before_the_publishers_own_copy() {
    // Mosquitto's 02-subpub-qos2: a QoS 2 publisher subscribed to its own
    // topic gets PUBREC first, then the copy; with a persistent session
    // both wait for the record.
    for persistent in [false, true] {
        let mut h = persisted();
        let mut log = Vec::new();
        let s = connect_synced(&mut h, &mut log, "self", !persistent);
        subscribe_synced(&mut h, &mut log, s, "me", QoS::ExactlyOnce);
        h.publish(s, "me", b"m", QoS::ExactlyOnce, false, 7);
        let mut out = h.recv(s);
        if persistent {
            assert!(out.is_empty(), "output before the record is durable");
            sync(&mut h, &mut log);
            out = h.recv(s);
        }
        assert!(
            matches!(
                out.first(),
                Some(Out::Resp {
                    kind: PubRespKind::PubRec,
                    pid: 7
                })
            ),
            "{out:?}"
        );
        assert!(matches!(out.get(1), Some(Out::Publish { .. })), "{out:?}");
    }
}

#[test]
fn without_hold_nothing_waits() {
    let mut h = Harness::new();
    h.core
        .enable_persistence(PersistMode::Full, false, h.now, UNIX);
    let s = h.connect("sub", false);
    h.subscribe(s, "t", QoS::AtLeastOnce);
    let p = h.connect("pub", true);
    h.publish(p, "t", b"m1", QoS::AtLeastOnce, false, 1);
    assert_eq!(h.recv(p).len(), 1);
    assert_eq!(h.publishes(s).len(), 1);
    assert!(h.core.records_emitted() > 0);
}

#[test]
fn output_order_is_kept_behind_a_hold() {
    // A QoS 0 message after a held PUBACK waits with it: nothing overtakes.
    let mut h = persisted();
    let mut log = Vec::new();
    let p = h.connect_with("pub", false, 0, None);
    sync(&mut h, &mut log);
    h.recv(p);
    h.subscribe(p, "z", QoS::AtMostOnce);
    sync(&mut h, &mut log);
    h.recv(p);
    h.publish(p, "r", b"keep", QoS::AtLeastOnce, true, 3);
    h.publish(p, "z", b"zero", QoS::AtMostOnce, false, 0);
    assert!(h.recv(p).is_empty());
    sync(&mut h, &mut log);
    let out = h.recv(p);
    assert!(matches!(out[0], Out::Resp { pid: 3, .. }), "{out:?}");
    assert!(
        matches!(out.get(1), Some(Out::Publish { payload, .. }) if payload == b"zero"),
        "{out:?}"
    );
}

#[test]
fn retained_set_and_clear_survive_a_restart() {
    let mut h = persisted();
    let mut log = Vec::new();
    let p = connect_synced(&mut h, &mut log, "pub", true);
    h.publish(p, "a", b"1", QoS::AtMostOnce, true, 0);
    h.publish(p, "b", b"2", QoS::AtLeastOnce, true, 1);
    h.publish(p, "c", b"3", QoS::AtMostOnce, true, 0);
    h.publish(p, "a", b"", QoS::AtMostOnce, true, 0);
    h.publish(p, "c", b"33", QoS::AtMostOnce, true, 0);
    sync(&mut h, &mut log);
    let (mut r, report) = restart(&log);
    assert_eq!(report.skipped, 0);
    assert_eq!(report.retained, 2);
    let s = r.connect("s", true);
    let mut got = publishes_in(r.subscribe(s, "#", QoS::AtLeastOnce));
    got.sort();
    assert_eq!(
        got,
        vec![
            ("b".into(), b"2".to_vec(), QoS::AtLeastOnce),
            ("c".into(), b"33".to_vec(), QoS::AtMostOnce)
        ]
    );
}

#[test]
fn retained_mode_records_no_sessions() {
    let mut h = Harness::new();
    h.core
        .enable_persistence(PersistMode::Retained, true, h.now, UNIX);
    let mut log = Vec::new();
    let s = h.connect_with("sub", false, 0, None);
    assert_eq!(h.recv(s).len(), 1, "no record, no hold");
    h.subscribe(s, "t", QoS::AtLeastOnce);
    let p = h.connect("p", true);
    h.publish(p, "t", b"x", QoS::AtLeastOnce, true, 1);
    assert!(h.recv(p).is_empty(), "the retained record holds the PUBACK");
    sync(&mut h, &mut log);
    assert_eq!(h.recv(p).len(), 1);
    assert_eq!(log.len(), 1, "{log:?}");
}

#[test]
fn session_subscriptions_and_queues_survive_a_restart() {
    let mut h = persisted();
    let mut log = Vec::new();
    let s = h.connect_with("sub", false, 0, None);
    h.subscribe(s, "q/#", QoS::ExactlyOnce);
    h.subscribe(s, "one/+", QoS::AtLeastOnce);
    sync(&mut h, &mut log);
    h.recv(s);
    let p = connect_synced(&mut h, &mut log, "pub", true);
    h.publish(p, "q/1", b"a", QoS::AtLeastOnce, false, 1);
    h.publish(p, "q/2", b"b", QoS::ExactlyOnce, false, 2);
    h.publish(p, "one/x", b"c", QoS::AtLeastOnce, false, 3);
    sync(&mut h, &mut log);
    // The subscriber got all three; it acknowledges the first only and
    // answers PUBREC for the QoS 2 one.
    let got = h.recv(s);
    assert_eq!(got.len(), 3, "{got:?}");
    let pids: Vec<u16> = got
        .iter()
        .filter_map(|o| match o {
            Out::Publish { pid, .. } => *pid,
            _ => None,
        })
        .collect();
    h.resp(s, PubRespKind::PubAck, pids[0]);
    h.resp(s, PubRespKind::PubRec, pids[1]);
    h.core.handle_close(s, h.now);
    h.publish(p, "q/3", b"d", QoS::AtLeastOnce, false, 4);
    sync(&mut h, &mut log);
    let before = digest(&h.core);

    // Replaying the log gives the same state.
    let (mut r, report) = restart(&log);
    assert_eq!(report.skipped, 0, "{:?}", report.notes);
    assert_eq!(digest(&r.core), before);
    // So does replaying a snapshot.
    let snap = h.core.snapshot_records();
    let (r2, report2) = restart(&snap);
    assert_eq!(report2.skipped, 0, "{:?}", report2.notes);
    assert_eq!(digest(&r2.core), before);

    // The client comes back: PUBREL for the released QoS 2 message, the
    // unacknowledged QoS 1 one, then what was queued.
    let s2 = r.connect_with("sub", false, 0, None);
    let mut log2 = Vec::new();
    sync(&mut r, &mut log2);
    let out = r.recv(s2);
    assert_eq!(
        out[0],
        Out::Connack {
            present: true,
            code: 0
        }
    );
    assert!(
        out.contains(&Out::Resp {
            kind: PubRespKind::PubRel,
            pid: pids[1]
        }),
        "{out:?}"
    );
    let payloads: Vec<Vec<u8>> = out
        .iter()
        .filter_map(|o| match o {
            Out::Publish { payload, .. } => Some(payload.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(payloads, vec![b"c".to_vec(), b"d".to_vec()], "{out:?}");
}

#[test]
fn qos2_resent_after_a_restart_is_not_delivered_twice() {
    // [MQTT-4.3.3-2] across a restart: the inbound packet id is durable
    // with the routing, so the DUP re-send only gets PUBREC.
    let mut h = persisted();
    let mut log = Vec::new();
    let s = h.connect_with("sub", false, 0, None);
    h.subscribe(s, "t", QoS::ExactlyOnce);
    let p = h.connect_with("pub", false, 0, None);
    sync(&mut h, &mut log);
    h.recv(s);
    h.recv(p);
    h.publish(p, "t", b"once", QoS::ExactlyOnce, false, 7);
    sync(&mut h, &mut log);
    assert_eq!(
        h.recv(p),
        vec![Out::Resp {
            kind: PubRespKind::PubRec,
            pid: 7
        }]
    );
    // Crash: the subscriber never acknowledged; the publisher never sent PUBREL.
    let (mut r, _) = restart(&log);
    let mut log2 = Vec::new();
    let s2 = r.connect_with("sub", false, 0, None);
    let p2 = r.connect_with("pub", false, 0, None);
    sync(&mut r, &mut log2);
    let first = r.publishes(s2);
    assert_eq!(first.len(), 1, "{first:?}");
    r.recv(p2);
    r.send(
        p2,
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
    sync(&mut r, &mut log2);
    assert_eq!(
        r.recv(p2),
        vec![Out::Resp {
            kind: PubRespKind::PubRec,
            pid: 7
        }]
    );
    assert!(r.publishes(s2).is_empty(), "delivered twice");
    r.resp(p2, PubRespKind::PubRel, 7);
    sync(&mut r, &mut log2);
    assert_eq!(
        r.recv(p2),
        vec![Out::Resp {
            kind: PubRespKind::PubComp,
            pid: 7
        }]
    );
}

#[test]
fn outgoing_qos2_keeps_its_packet_id_across_a_restart() {
    let mut h = persisted();
    let mut log = Vec::new();
    let s = h.connect_with("sub", false, 0, None);
    h.subscribe(s, "t", QoS::ExactlyOnce);
    let p = connect_synced(&mut h, &mut log, "pub", true);
    h.publish(p, "t", b"x", QoS::ExactlyOnce, false, 1);
    sync(&mut h, &mut log);
    let got = h.recv(s);
    let Some(Out::Publish {
        pid: Some(sent), ..
    }) = got.last().cloned()
    else {
        panic!("{got:?}")
    };
    let (mut r, _) = restart(&log);
    let s2 = r.connect_with("sub", false, 0, None);
    sync(&mut r, &mut Vec::new());
    let out = r.recv(s2);
    assert!(
        out.iter()
            .any(|o| matches!(o, Out::Publish { dup: true, pid: Some(x), .. } if *x == sent)),
        "{out:?}"
    );
}

#[test]
fn ended_sessions_and_unsubscribes_are_replayed() {
    let mut h = persisted();
    let mut log = Vec::new();
    let a = h.connect_with("a", false, 0, None);
    h.subscribe(a, "x", QoS::AtLeastOnce);
    h.subscribe(a, "y", QoS::AtLeastOnce);
    let mut buf = Vec::new();
    codec::encode_unsubscribe(pid(2), Properties::EMPTY, &["x"], V4, &mut buf);
    h.bytes(a, &buf);
    let b = h.connect_with("b", false, 0, None);
    h.subscribe(b, "x", QoS::AtLeastOnce);
    h.core.handle_close(b, h.now);
    // A clean session ends the persistent one.
    let b2 = connect_synced(&mut h, &mut log, "b", true);
    h.core.handle_close(b2, h.now);
    sync(&mut h, &mut log);
    let (r, report) = restart(&log);
    assert_eq!(report.skipped, 0, "{:?}", report.notes);
    assert_eq!(digest(&r.core), digest(&h.core));
    assert_eq!(report.sessions, 1);
}

#[test]
fn damaged_and_unknown_records_are_skipped() {
    let mut h = persisted();
    let mut log = Vec::new();
    let p = h.connect("pub", true);
    h.publish(p, "a", b"1", QoS::AtMostOnce, true, 0);
    h.publish(p, "b", b"2", QoS::AtMostOnce, true, 0);
    sync(&mut h, &mut log);
    // Cut the first record short, add an unknown kind and garbage.
    log[0].1.truncate(3);
    log.push((200, vec![1, 2, 3]));
    log.push((1, vec![0xff; 40]));
    let (r, report) = restart(&log);
    assert_eq!(report.skipped, 3, "{:?}", report.notes);
    assert_eq!(report.retained, 1);
    assert_eq!(report.notes.len(), 3);
    assert!(digest(&r.core).contains("R b"));
}

#[test]
fn delayed_will_survives_a_restart() {
    let mut h = persisted();
    let mut log = Vec::new();
    let id = h.open();
    let mut props = crate::codec::PropertiesBuf::new();
    props.push(&crate::codec::Property::SessionExpiryInterval(3600));
    let mut will_props = crate::codec::PropertiesBuf::new();
    will_props.push(&crate::codec::Property::WillDelayInterval(60));
    h.send(
        id,
        Packet::Connect(Connect {
            protocol: ProtocolVersion::V5,
            clean_start: true,
            keep_alive: 0,
            properties: props.as_properties(),
            client_id: "w",
            will: Some(Will {
                topic: "gone",
                payload: b"bye",
                qos: QoS::AtLeastOnce,
                retain: true,
                properties: will_props.as_properties(),
            }),
            username: None,
            password: None,
        }),
    );
    h.core.handle_close(id, h.now);
    sync(&mut h, &mut log);
    let (mut r, report) = restart(&log);
    assert_eq!(report.skipped, 0, "{:?}", report.notes);
    assert!(digest(&r.core).contains("will=true"));
    // Due 60 s later: published (retained) then.
    r.advance(Duration::from_secs(61));
    let mut log2 = Vec::new();
    let s = connect_synced(&mut r, &mut log2, "s", true);
    let got = subscribe_synced(&mut r, &mut log2, s, "gone", QoS::AtLeastOnce);
    assert!(
        got.iter()
            .any(|o| matches!(o, Out::Publish { payload, .. } if payload == b"bye")),
        "{got:?}"
    );
}

#[test]
fn sys_topics_are_never_recorded() {
    let config = CoreOptions {
        sys_interval: 1,
        ..CoreOptions::default()
    };
    let mut h = Harness::with(config);
    h.core
        .enable_persistence(PersistMode::Full, true, h.now, UNIX);
    h.core.handle_timeout(h.now);
    h.advance(Duration::from_secs(2));
    assert_eq!(h.core.records_emitted(), 0);
    assert!(h.core.snapshot_records().is_empty());
}

#[test]
fn a_long_restored_queue_drains_as_the_client_acknowledges() {
    let mut h = persisted();
    let mut log = Vec::new();
    let s = connect_synced(&mut h, &mut log, "sink", false);
    subscribe_synced(&mut h, &mut log, s, "t", QoS::AtLeastOnce);
    h.core.handle_close(s, h.now);
    let p = connect_synced(&mut h, &mut log, "pub", true);
    for i in 1..=100u16 {
        h.publish(p, "t", i.to_string().as_bytes(), QoS::AtLeastOnce, false, i);
    }
    sync(&mut h, &mut log);
    let (mut r, report) = restart(&log);
    assert_eq!(report.messages, 100);
    let mut log2 = Vec::new();
    let s2 = r.connect_with("sink", false, 0, None);
    sync(&mut r, &mut log2);
    let mut got = 0;
    for _ in 0..200 {
        let out = r.recv(s2);
        let pids: Vec<u16> = out
            .iter()
            .filter_map(|o| match o {
                Out::Publish { pid, .. } => *pid,
                _ => None,
            })
            .collect();
        if pids.is_empty() && got > 0 {
            break;
        }
        for pid in pids {
            got += 1;
            r.resp(s2, PubRespKind::PubAck, pid);
        }
        sync(&mut r, &mut log2);
    }
    assert_eq!(got, 100);
}

#[test]
fn persistence_figures_are_published_under_sys() {
    let config = CoreOptions {
        sys_interval: 1,
        ..CoreOptions::default()
    };
    let mut h = Harness::with(config);
    h.core
        .enable_persistence(PersistMode::Full, true, h.now, UNIX);
    h.core.set_persist_figures(crate::core::PersistFigures {
        last_sync: Duration::from_micros(1500),
        max_sync: Duration::from_micros(9000),
        log_bytes: 4096,
        bytes_written: 123_456,
    });
    let s = h.connect("dash", true);
    h.subscribe(s, "$SYS/broker/persistence/#", QoS::AtMostOnce);
    h.core.handle_timeout(h.now);
    let mut got = h.publishes(s);
    got.sort();
    let got: Vec<(String, String)> = got
        .into_iter()
        .map(|(t, p, _)| (t, String::from_utf8(p).unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "$SYS/broker/persistence/bytes/written".into(),
                "123456".into()
            ),
            ("$SYS/broker/persistence/log/bytes".into(), "4096".into()),
            ("$SYS/broker/persistence/sync/last_us".into(), "1500".into()),
            ("$SYS/broker/persistence/sync/max_us".into(), "9000".into()),
        ]
    );
}

#[test]
fn a_closing_connection_waits_for_its_held_answers() {
    let mut h = persisted();
    let mut log = Vec::new();
    let p = connect_synced(&mut h, &mut log, "pub", false);
    h.publish(p, "r", b"keep", QoS::AtLeastOnce, true, 1);
    // Then a protocol error: the PUBACK is held, so the connection is not
    // to be closed before it went out.
    h.send(
        p,
        Packet::Connect(Connect {
            protocol: V4,
            clean_start: true,
            keep_alive: 0,
            properties: Properties::EMPTY,
            client_id: "pub",
            will: None,
            username: None,
            password: None,
        }),
    );
    assert!(!h.core.is_closing(p));
    assert!(h.recv(p).is_empty());
    sync(&mut h, &mut log);
    assert!(h.core.is_closing(p));
    assert_eq!(
        h.recv(p),
        vec![Out::Resp {
            kind: PubRespKind::PubAck,
            pid: 1
        }]
    );
}

#[test]
fn truncated_and_flipped_records_of_every_kind_never_panic() {
    // A log with every record kind: sessions, subscriptions, routings
    // (QoS 1 and 2, inbound QoS 2), sends, releases, removals, delayed
    // wills, retained set and clear.
    let mut h = persisted();
    let mut log = Vec::new();
    let s = connect_synced(&mut h, &mut log, "sub", false);
    subscribe_synced(&mut h, &mut log, s, "t/#", QoS::ExactlyOnce);
    let p = connect_synced(&mut h, &mut log, "pub", false);
    h.publish(p, "t/1", b"one", QoS::AtLeastOnce, true, 1);
    h.publish(p, "t/2", b"two", QoS::ExactlyOnce, false, 2);
    h.resp(p, PubRespKind::PubRel, 2);
    sync(&mut h, &mut log);
    for o in h.recv(s) {
        if let Out::Publish {
            pid: Some(id), qos, ..
        } = o
        {
            let kind = if qos == QoS::ExactlyOnce {
                PubRespKind::PubRec
            } else {
                PubRespKind::PubAck
            };
            h.resp(s, kind, id);
        }
    }
    h.publish(p, "t/1", b"", QoS::AtMostOnce, true, 0);
    let mut buf = Vec::new();
    codec::encode_unsubscribe(pid(3), Properties::EMPTY, &["t/#"], V4, &mut buf);
    h.bytes(s, &buf);
    h.core.handle_close(s, h.now);
    sync(&mut h, &mut log);
    let kinds: std::collections::BTreeSet<u8> = log.iter().map(|(k, _)| *k).collect();
    assert!(kinds.len() >= 10, "kinds covered: {kinds:?}");
    let (whole, report) = restart(&log);
    assert_eq!(report.skipped, 0, "{:?}", report.notes);
    let intact = digest(&whole.core);
    for i in 0..log.len() {
        let body_len = log[i].1.len();
        for cut in 0..body_len {
            let mut damaged = log.clone();
            damaged[i].1.truncate(cut);
            let (_, report) = restart(&damaged);
            assert!(report.applied + report.skipped == log.len() as u64);
        }
        for bit in 0..body_len * 8 {
            let mut damaged = log.clone();
            damaged[i].1[bit / 8] ^= 1 << (bit % 8);
            let _ = restart(&damaged);
        }
    }
    // Undamaged, the log still restores the same state.
    assert_eq!(digest(&restart(&log).0.core), intact);
}

#[test]
fn a_trusted_in_process_session_is_recorded_like_any_other() {
    // The bridge and in-process clients are trusted core connections; their
    // persistent sessions (a bridge's store-and-forward queue) are kept.
    let mut h = persisted();
    let mut log = Vec::new();
    let b = h.open();
    h.core.trust(b);
    h.send(
        b,
        Packet::Connect(Connect {
            protocol: V4,
            clean_start: false,
            keep_alive: 0,
            properties: Properties::EMPTY,
            client_id: "bridge-uplink",
            will: None,
            username: None,
            password: None,
        }),
    );
    sync(&mut h, &mut log);
    h.recv(b);
    subscribe_synced(&mut h, &mut log, b, "#", QoS::AtLeastOnce);
    h.core.handle_close(b, h.now);
    let p = connect_synced(&mut h, &mut log, "sensor", true);
    h.publish(p, "site/temp", b"21.5", QoS::AtLeastOnce, false, 1);
    sync(&mut h, &mut log);
    let (r, report) = restart(&log);
    assert_eq!(report.skipped, 0, "{:?}", report.notes);
    let d = digest(&r.core);
    assert!(d.contains("S bridge-uplink"), "{d}");
    assert!(d.contains("21.5"), "{d}");
    let s = r
        .core
        .sessions
        .iter()
        .find(|(_, s)| &*s.client_id == "bridge-uplink");
    assert!(s.is_some_and(|(_, s)| s.trusted));
}

/// `persistent_client_expiration 1h`: a 3.1.1 persistent session offline
/// for an hour is dropped, counted from when it went offline, through a
/// restart from the journal and from a snapshot alike.
#[test]
fn persistent_client_expiration_survives_a_restart() {
    let options = || CoreOptions {
        persistent_client_expiration: Some(3600),
        ..CoreOptions::default()
    };
    let start = |log: &[(u8, Vec<u8>)]| {
        let mut h = Harness::with(options());
        h.core
            .enable_persistence(PersistMode::Full, true, h.now, UNIX);
        let _report = h
            .core
            .restore(log.iter().map(|(k, b)| (*k, b.as_slice())), h.now);
        h
    };
    let mut h = start(&[]);
    let mut log = Vec::new();
    let dash = connect_synced(&mut h, &mut log, "dash", false);
    subscribe_synced(&mut h, &mut log, dash, "shellies/#", QoS::AtLeastOnce);
    h.core.handle_close(dash, h.now);
    sync(&mut h, &mut log);
    // Restored from the journal: still there, and dropped an hour after
    // it went offline.
    let mut r = start(&log);
    assert_eq!(r.core.stats().sessions, 1);
    // A snapshot of the restored core keeps when it went offline.
    let snapshot = r.core.snapshot_records();
    r.advance(Duration::from_secs(3599));
    assert_eq!(r.core.stats().sessions, 1);
    r.advance(Duration::from_secs(2));
    assert_eq!(r.core.stats().sessions, 0, "expired");
    let mut s = start(&snapshot);
    assert_eq!(s.core.stats().sessions, 1);
    s.advance(Duration::from_secs(3601));
    assert_eq!(s.core.stats().sessions, 0, "expired after the snapshot too");
}
