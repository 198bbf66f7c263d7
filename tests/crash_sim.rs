//! Crash simulation: the sans-IO core and the store on a simulated disk,
//! driven by simulated clients, crashed at a seeded point (before a
//! commit, in the middle of one, after one but before the acknowledgements
//! went out, in the middle of a compaction), with unsynced data dropped or
//! a write torn. After recovery:
//!
//! * every message acknowledged to its publisher (PUBACK, PUBREC) before
//!   the crash reaches the persistent subscriber;
//! * no QoS 2 message reaches the subscriber's application twice
//!   [MQTT-4.3.3-2] (the subscriber keeps its QoS 2 state across the
//!   broker's crash, as a real client does).
//!
//! Up to 20,000 seeds, bounded in time (see `BUDGET`): about 1,000 in a
//! debug build, all of them in a release build (`cargo test --release`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use boxmq::codec::{
    self, Connect, Packet, PacketId, Properties, ProtocolVersion, PubResp, PubRespKind, Publish,
    QoS, SubOptions,
};
use boxmq::config::Config;
use boxmq::core::{ConnId, Core, PersistMode};
use boxmq::store::{SimDisk, Store, StoreOptions};

const V4: ProtocolVersion = ProtocolVersion::V311;
const UNIX: u64 = 1_800_000_000;
/// Seeds run (at most) and the time they may take.
const SEEDS: u64 = 20_000;
const BUDGET: Duration = Duration::from_secs(10);

/// xorshift64*: small, deterministic, good enough to pick crash points.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn pid(v: u16) -> PacketId {
    PacketId::new(v).expect("non-zero")
}

fn encode(p: &Packet<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    p.encode(V4, &mut out);
    out
}

fn resp(kind: PubRespKind, id: u16) -> Vec<u8> {
    encode(&Packet::PubResp(PubResp {
        kind,
        packet_id: pid(id),
        reason: 0,
        properties: Properties::EMPTY,
    }))
}

fn publish(topic: &str, payload: &str, qos: QoS, id: u16, dup: bool) -> Vec<u8> {
    encode(&Packet::Publish(Publish {
        dup,
        qos,
        retain: false,
        topic,
        packet_id: Some(pid(id)),
        properties: Properties::EMPTY,
        payload: payload.as_bytes(),
    }))
}

fn connect(client_id: &str, clean: bool) -> Vec<u8> {
    encode(&Packet::Connect(Connect {
        protocol: V4,
        clean_start: clean,
        keep_alive: 0,
        properties: Properties::EMPTY,
        client_id,
        will: None,
        username: None,
        password: None,
    }))
}

/// What a client got from the broker, owned.
#[derive(Debug)]
enum Got {
    Connack(bool),
    Suback,
    Publish {
        payload: String,
        qos: QoS,
        id: Option<u16>,
    },
    Resp(PubRespKind, u16),
    Other,
}

fn decode_all(mut bytes: &[u8]) -> Vec<Got> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (p, n) = match codec::decode(bytes, V4, usize::MAX) {
            Ok(Some(x)) => x,
            other => panic!("broker sent a bad frame: {other:?}"),
        };
        out.push(match p {
            Packet::Connack(c) => {
                assert_eq!(c.code, 0, "CONNACK refused");
                Got::Connack(c.session_present)
            }
            Packet::Suback(_) => Got::Suback,
            Packet::Publish(p) => Got::Publish {
                payload: String::from_utf8_lossy(p.payload).into_owned(),
                qos: p.qos,
                id: p.packet_id.map(PacketId::get),
            },
            Packet::PubResp(r) => Got::Resp(r.kind, r.packet_id.get()),
            _ => Got::Other,
        });
        bytes = &bytes[n..];
    }
    out
}

/// The broker side: core and store, as the event loop runs them.
struct Broker {
    disk: SimDisk,
    store: Store<SimDisk>,
    core: Core,
    now: Instant,
    next_conn: usize,
}

fn options() -> StoreOptions {
    StoreOptions {
        dir: "/data".into(),
        sync: true,
        // Small, so compaction happens within a run.
        compact_at: 4096,
    }
}

/// Where the power goes.
#[derive(Clone, Copy, Debug)]
enum Crash {
    /// Records appended, no commit.
    BeforeCommit,
    /// The commit's `n`-th disk operation fails, then the crash.
    InCommit(u64),
    /// Committed, but the acknowledgements never went out.
    AfterCommit,
    /// A compaction's `n`-th disk operation fails, then the crash.
    InCompaction(u64),
}

impl Broker {
    fn open(disk: SimDisk, now: Instant) -> Broker {
        let (store, recovery) = Store::open_on(disk.clone(), options()).expect("open store");
        let config = Config::default();
        let mut core = Core::new(config.core_options());
        core.enable_persistence(PersistMode::Full, true, now, UNIX);
        let report = core.restore(
            recovery.records.iter().map(|r| (r.kind, r.body.as_slice())),
            now,
        );
        assert_eq!(report.skipped, 0, "records skipped: {:?}", report.notes);
        Broker {
            disk,
            store,
            core,
            now,
            next_conn: 0,
        }
    }

    fn open_conn(&mut self) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.core.handle_open(id, "sim", self.now);
        id
    }

    /// End of a loop turn. `Err(())` when the power went.
    fn end_turn(&mut self, crash: Option<(Crash, u64, bool)>) -> Result<(), ()> {
        self.core.handle_timeout(self.now);
        let store = &mut self.store;
        self.core.drain_records(|k, b| {
            store.append(k, b);
        });
        let power_cut = |disk: &SimDisk, seed: u64, torn: bool| {
            if torn {
                disk.crash_torn(seed);
            } else {
                disk.crash(seed);
            }
        };
        match crash {
            None => {}
            Some((Crash::BeforeCommit, seed, torn)) => {
                power_cut(&self.disk, seed, torn);
                return Err(());
            }
            Some((Crash::InCommit(n), seed, torn)) => {
                self.disk.fail_after(Some(n));
                let _ = self.store.commit();
                power_cut(&self.disk, seed, torn);
                return Err(());
            }
            Some((Crash::AfterCommit, seed, torn)) => {
                self.store.commit().expect("commit");
                power_cut(&self.disk, seed, torn);
                return Err(());
            }
            Some((Crash::InCompaction(n), seed, torn)) => {
                self.disk.fail_after(Some(n));
                let mut records = self.core.snapshot_records().into_iter();
                let _ = self.store.compact(&mut records);
                power_cut(&self.disk, seed, torn);
                return Err(());
            }
        }
        self.store.commit().expect("commit");
        self.core.handle_durable(self.core.records_emitted());
        if self.store.needs_compaction() {
            let mut records = self.core.snapshot_records().into_iter();
            self.store.compact(&mut records).expect("compact");
            self.core.handle_durable(self.core.records_emitted());
        }
        while self.core.poll_dirty().is_some() {}
        Ok(())
    }

    /// What connection `id` may read now.
    fn take_output(&mut self, id: ConnId) -> Vec<Got> {
        let out = self.core.pending_output(id).to_vec();
        self.core.handle_written(id, out.len(), self.now);
        decode_all(&out)
    }
}

/// A simulated client's connection and the bytes it still has to send.
struct Link {
    conn: ConnId,
    outbox: Vec<u8>,
    connected: bool,
}

impl Link {
    fn send(&mut self, bytes: &[u8]) {
        self.outbox.extend_from_slice(bytes);
    }
    fn flush(&mut self, b: &mut Broker) {
        if self.outbox.is_empty() {
            return;
        }
        let used = b.core.handle_data(self.conn, &self.outbox, b.now);
        self.outbox.drain(..used.min(self.outbox.len()));
    }
}

/// Everything the clients know; it outlives the broker's crash.
#[derive(Default)]
struct World {
    /// QoS 1 messages PUBACKed to their publisher.
    acked1: BTreeSet<u32>,
    /// QoS 2 messages PUBRECed to their publisher.
    acked2: BTreeSet<u32>,
    /// How often each payload reached the subscriber's application.
    delivered: HashMap<String, u32>,
    /// QoS 1 publisher: packet id -> message number.
    p1_inflight: HashMap<u16, u32>,
    /// QoS 2 publisher: packet id -> (number, PUBREC seen).
    p2_inflight: BTreeMap<u16, (u32, bool)>,
    /// Subscriber: QoS 2 packet ids received, awaiting PUBREL.
    s_qos2: BTreeSet<u16>,
    subscribed: bool,
    next1: u32,
    next2: u32,
}

struct Clients {
    p1: Link,
    p2: Link,
    s: Link,
}

impl World {
    /// Connects the three clients to a (fresh or restored) broker.
    fn attach(&mut self, b: &mut Broker) -> Clients {
        let mut c = Clients {
            p1: Link {
                conn: b.open_conn(),
                outbox: connect("p1", true),
                connected: false,
            },
            p2: Link {
                conn: b.open_conn(),
                outbox: connect("p2", false),
                connected: false,
            },
            s: Link {
                conn: b.open_conn(),
                outbox: connect("sink", false),
                connected: false,
            },
        };
        // The QoS 2 publisher resends what it has in flight [MQTT-4.4.0-1].
        for (&id, &(n, rec)) in &self.p2_inflight {
            if rec {
                c.p2.send(&resp(PubRespKind::PubRel, id));
            } else {
                c.p2.send(&publish(
                    "t/2",
                    &format!("q2-{n}"),
                    QoS::ExactlyOnce,
                    id,
                    true,
                ));
            }
        }
        c
    }

    /// The clients act (new messages only while `load`).
    fn act(&mut self, c: &mut Clients, b: &mut Broker, rng: &mut Rng, load: bool) {
        if load && self.subscribed && c.p1.connected {
            for _ in 0..rng.below(4) {
                if self.p1_inflight.len() >= 10 {
                    break;
                }
                self.next1 += 1;
                let id = (self.next1 % 60_000 + 1) as u16;
                self.p1_inflight.insert(id, self.next1);
                c.p1.send(&publish(
                    "t/1",
                    &format!("q1-{}", self.next1),
                    QoS::AtLeastOnce,
                    id,
                    false,
                ));
            }
        }
        if load && self.subscribed && c.p2.connected {
            for _ in 0..rng.below(3) {
                if self.p2_inflight.len() >= 10 {
                    break;
                }
                self.next2 += 1;
                let id = (self.next2 % 60_000 + 1) as u16;
                self.p2_inflight.insert(id, (self.next2, false));
                c.p2.send(&publish(
                    "t/2",
                    &format!("q2-{}", self.next2),
                    QoS::ExactlyOnce,
                    id,
                    false,
                ));
            }
        }
        c.p1.flush(b);
        c.p2.flush(b);
        c.s.flush(b);
    }

    /// The clients read what the broker let out and answer.
    fn read(&mut self, c: &mut Clients, b: &mut Broker, rng: &mut Rng, ack_all: bool) -> bool {
        let mut any = false;
        for g in b.take_output(c.p1.conn) {
            any = true;
            match g {
                Got::Connack(_) => c.p1.connected = true,
                Got::Resp(PubRespKind::PubAck, id) => {
                    if let Some(n) = self.p1_inflight.remove(&id) {
                        self.acked1.insert(n);
                    }
                }
                other => panic!("p1 got {other:?}"),
            }
        }
        for g in b.take_output(c.p2.conn) {
            any = true;
            match g {
                Got::Connack(_) => c.p2.connected = true,
                Got::Resp(PubRespKind::PubRec, id) => {
                    if let Some((n, rec)) = self.p2_inflight.get_mut(&id) {
                        *rec = true;
                        self.acked2.insert(*n);
                        c.p2.send(&resp(PubRespKind::PubRel, id));
                    }
                }
                Got::Resp(PubRespKind::PubComp, id) => {
                    self.p2_inflight.remove(&id);
                }
                other => panic!("p2 got {other:?}"),
            }
        }
        for g in b.take_output(c.s.conn) {
            any = true;
            match g {
                Got::Connack(present) => {
                    c.s.connected = true;
                    if !present {
                        // First connection, or the session was never
                        // durable: (re)subscribe.
                        let mut buf = Vec::new();
                        codec::encode_subscribe(
                            pid(1),
                            Properties::EMPTY,
                            &[("t/#", SubOptions::qos_only(QoS::ExactlyOnce))],
                            V4,
                            &mut buf,
                        );
                        c.s.send(&buf);
                    }
                }
                Got::Suback => self.subscribed = true,
                Got::Publish { payload, qos, id } => {
                    let id = id.expect("QoS > 0");
                    match qos {
                        QoS::AtLeastOnce => {
                            *self.delivered.entry(payload).or_default() += 1;
                            if ack_all || rng.chance(80) {
                                c.s.send(&resp(PubRespKind::PubAck, id));
                            }
                        }
                        QoS::ExactlyOnce => {
                            // QoS 2 receiver: a packet id seen and not yet
                            // released is a duplicate, not a new message.
                            if self.s_qos2.insert(id) {
                                *self.delivered.entry(payload).or_default() += 1;
                            }
                            if ack_all || rng.chance(80) {
                                c.s.send(&resp(PubRespKind::PubRec, id));
                            }
                        }
                        QoS::AtMostOnce => panic!("QoS 0 not expected"),
                    }
                }
                Got::Resp(PubRespKind::PubRel, id) => {
                    self.s_qos2.remove(&id);
                    c.s.send(&resp(PubRespKind::PubComp, id));
                }
                other => panic!("sink got {other:?}"),
            }
        }
        any
    }
}

/// One seeded run; `Err` describes a violation.
fn run(seed: u64) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let disk = SimDisk::new();
    let start = Instant::now();
    let mut b = Broker::open(disk.clone(), start);
    let mut w = World::default();
    let mut c = w.attach(&mut b);
    let turns = 5 + rng.below(40);
    let crash = match rng.below(4) {
        0 => Crash::BeforeCommit,
        1 => Crash::InCommit(1 + rng.below(3)),
        2 => Crash::AfterCommit,
        _ => Crash::InCompaction(1 + rng.below(8)),
    };
    let torn = rng.chance(50);
    for turn in 0..=turns {
        b.now += Duration::from_millis(10);
        w.act(&mut c, &mut b, &mut rng, true);
        // The event loop writes before the turn ends too (output past its
        // urgent mark, in-process clients): what the core lets out then
        // must not depend on what is not durable yet.
        if rng.chance(50) {
            w.read(&mut c, &mut b, &mut rng, false);
        }
        let cut = (turn == turns).then_some((crash, rng.next(), torn));
        if b.end_turn(cut).is_err() {
            break;
        }
        w.read(&mut c, &mut b, &mut rng, false);
        // Now and then the subscriber's network drops; it comes back.
        if rng.chance(5) && c.s.connected {
            b.core.handle_close(c.s.conn, b.now);
            c.s = Link {
                conn: b.open_conn(),
                outbox: connect("sink", false),
                connected: false,
            };
        }
    }
    // Restart on what the disk kept.
    drop(b);
    let mut b = Broker::open(disk, start + Duration::from_secs(60));
    let mut c = w.attach(&mut b);
    let mut quiet = 0;
    for _ in 0..500 {
        b.now += Duration::from_millis(10);
        w.act(&mut c, &mut b, &mut rng, false);
        b.end_turn(None)
            .map_err(|()| "no crash expected".to_string())?;
        if w.read(&mut c, &mut b, &mut rng, true) {
            quiet = 0;
        } else {
            quiet += 1;
            if quiet > 3 {
                break;
            }
        }
    }
    for n in &w.acked1 {
        if !w.delivered.contains_key(&format!("q1-{n}")) {
            return Err(format!(
                "{crash:?} torn={torn}: PUBACKed q1-{n} never delivered"
            ));
        }
    }
    for n in &w.acked2 {
        if !w.delivered.contains_key(&format!("q2-{n}")) {
            return Err(format!(
                "{crash:?} torn={torn}: PUBRECed q2-{n} never delivered"
            ));
        }
    }
    for (payload, count) in &w.delivered {
        if payload.starts_with("q2-") && *count > 1 {
            return Err(format!(
                "{crash:?} torn={torn}: QoS 2 {payload} delivered {count} times"
            ));
        }
    }
    Ok(())
}

#[test]
fn acknowledged_messages_survive_crashes_at_every_point() {
    let started = Instant::now();
    let mut ran = 0;
    let mut failures = Vec::new();
    for seed in 0..SEEDS {
        if started.elapsed() > BUDGET {
            break;
        }
        if let Err(e) = run(seed) {
            failures.push(format!("seed {seed}: {e}"));
            if failures.len() >= 5 {
                break;
            }
        }
        ran += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ran >= 100, "only {ran} seeds in {BUDGET:?}");
    eprintln!("{ran} seeded crashes, none lost or duplicated anything");
}
