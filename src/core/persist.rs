//! Persistence, the core's side: the state changes that must survive a
//! restart become records (an effect the caller writes to disk), and output
//! that depends on them waits until the caller says they are durable (an
//! input). The core stays sans-IO: no file is touched here.
//!
//! * [`Core::enable_persistence`] turns it on (mode, whether output waits);
//! * [`Core::restore`] rebuilds the state from the records of a previous run;
//! * [`Core::drain_records`] hands out the records emitted since the last call;
//! * [`Core::handle_durable`] says how many records (counted since
//!   `enable_persistence`) are on disk: output held for them is released;
//! * [`Core::snapshot_records`] gives the whole durable state as records,
//!   for compaction.
//!
//! Holding output: while records are emitted but not durable, output that
//! depends on them is marked with the number of records that must be
//! durable first (`Conn::hold`): every answer to a client (CONNACK, SUBACK,
//! UNSUBACK, PUBACK, PUBREC, PUBREL, PUBCOMP) and QoS 2 copies forwarded to
//! subscribers (a crash before the sync cannot make a QoS 2 message arrive
//! twice). QoS 0 and QoS 1 copies to subscribers are not held: lost state
//! makes them at worst arrive twice, which QoS 1 allows. Output is never
//! reordered: everything behind a mark waits with it.

mod record;

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::conn::Conn;
use super::message::{WillMsg, WillParts};
use super::retain::RetainOutcome;
use super::session::{Inflight, Message, OutState, Pending, Session, SessionId, offline_lifetime};
use super::{ConnId, Core};
use crate::codec::{PacketId, ProtocolVersion, QoS, SubOptions};
use crate::topic;
use crate::topic::is_sys_topic;

use record::{MsgBody, Recipient, Record, WillBody, Writer};

/// What is persisted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersistMode {
    /// Retained messages only.
    Retained,
    /// Retained messages, persistent sessions (subscriptions, queued and
    /// in-flight QoS 1/2 messages, inbound QoS 2 packet ids, delayed wills).
    Full,
}

/// What [`Core::restore`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Records applied.
    pub applied: u64,
    /// Records skipped: unknown kind, damaged body, or referring to
    /// something that is not there.
    pub skipped: u64,
    /// Retained messages held afterwards.
    pub retained: usize,
    /// Persistent sessions held afterwards.
    pub sessions: usize,
    /// QoS 1/2 messages queued or in flight afterwards, over all sessions.
    pub messages: usize,
    /// Lines for the log about what was skipped (at most `MAX_NOTES`).
    pub notes: Vec<String>,
}

/// Notes kept by a restore; the rest are only counted.
const MAX_NOTES: usize = 20;

/// Persistence figures for `$SYS` (see [`Core::set_persist_figures`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PersistFigures {
    /// Duration of the last commit (write and sync).
    pub last_sync: Duration,
    /// Longest commit since start.
    pub max_sync: Duration,
    /// Bytes in the record log now.
    pub log_bytes: u64,
    /// Bytes written to the store since start.
    pub bytes_written: u64,
}

/// The core's persistence state (see the module documentation).
#[derive(Debug)]
pub(crate) struct Persist {
    full: bool,
    /// Output waits for durability (sync on); false: records only.
    hold: bool,
    /// Encoded records not yet drained: kind, u32 length, body.
    buf: Vec<u8>,
    /// Records emitted since enabled.
    emitted: u64,
    /// Records the caller said are durable.
    durable: u64,
    next_msg_id: u64,
    next_sid: u64,
    /// Connections with held output.
    held: Vec<ConnId>,
    /// An instant and the unix time (seconds) it corresponds to.
    wall: (Instant, u64),
    /// A routing is being collected into one `ROUTED` record.
    collecting: bool,
    recipients: Vec<u8>,
    recipient_count: u32,
    /// Records emitted while collecting, written after the `ROUTED` one.
    deferred: Vec<u8>,
    /// The inbound QoS 2 packet id the routing in progress came with.
    inbound: Option<(u64, u16)>,
    pub figures: Option<PersistFigures>,
}

impl Persist {
    /// Appends one record (kind, body written by `f`).
    fn emit(&mut self, kind: u8, f: impl FnOnce(&mut Writer<'_>)) {
        let buf = if self.collecting {
            &mut self.deferred
        } else {
            &mut self.buf
        };
        buf.push(kind);
        let at = buf.len();
        buf.extend_from_slice(&[0; 4]);
        f(&mut Writer(buf));
        let len = u32::try_from(buf.len() - at - 4).unwrap_or(u32::MAX);
        if let Some(slot) = buf.get_mut(at..at + 4) {
            slot.copy_from_slice(&len.to_le_bytes());
        }
        self.emitted += 1;
    }

    /// Appends `r`.
    fn push(&mut self, r: &Record<'_>) {
        self.emit(r.kind(), |w| r.emit(w));
    }

    /// The record count output appended now must wait for, if any.
    /// Inside a routing that will end with a `ROUTED` record, that record
    /// counts already. (Records deferred meanwhile are counted before it
    /// though written after it; the caller only ever reports whole drained
    /// batches durable, see [`Core::handle_durable`], so the order inside
    /// one does not matter.)
    fn hold_at(&self) -> Option<u64> {
        let routed = self.collecting && (self.recipient_count > 0 || self.inbound.is_some());
        let upto = self.emitted + u64::from(routed);
        (self.hold && upto > self.durable).then_some(upto)
    }

    fn unix(&self, t: Instant) -> u64 {
        let (base, unix) = self.wall;
        if t >= base {
            unix + t.duration_since(base).as_secs()
        } else {
            unix.saturating_sub(base.duration_since(t).as_secs())
        }
    }

    /// The instant of unix time `unix`; `now` when it has passed.
    fn instant(&self, unix: u64, now: Instant) -> Instant {
        let now_unix = self.unix(now);
        let ahead = unix.saturating_sub(now_unix).min(u64::from(u32::MAX));
        now + Duration::from_secs(ahead)
    }
}

/// Persistence's hooks, one calling convention: each change that must
/// survive a restart is told as `self.journal.<change>(..)`, with the
/// session's persistent number (`psid`, 0: not recorded) or the session
/// itself. With persistence off every hook does nothing. A field of its
/// own, so a hook can be called while other parts of the core are
/// borrowed.
#[derive(Default)]
pub(super) struct Journal(pub(super) Option<Box<Persist>>);

impl Journal {
    /// Holds connection `id`'s output from now on if records are pending.
    pub(super) fn hold_output(&mut self, conn: &mut Conn, id: ConnId) {
        if let Some(p) = self.0.as_deref_mut() {
            if let Some(upto) = p.hold_at() {
                if conn.hold(upto) {
                    p.held.push(id);
                }
            }
        }
    }

    /// Like [`Journal::hold_output`], for connection `id`'s output from `pos` (an
    /// earlier `Conn::output_end`) on, once the records it depends on are
    /// emitted.
    pub(super) fn hold_output_from(&mut self, conn: &mut Conn, id: ConnId, pos: u64) {
        if let Some(p) = self.0.as_deref_mut() {
            if let Some(upto) = p.hold_at() {
                if conn.hold_from(pos, upto) {
                    p.held.push(id);
                }
            }
        }
    }

    /// The full-mode state, when sessions are recorded.
    fn full(&mut self) -> Option<&mut Persist> {
        self.0.as_deref_mut().filter(|p| p.full)
    }

    /// A retained message was stored or cleared.
    pub(super) fn retain(&mut self, msg: &Message, outcome: RetainOutcome) {
        if is_sys_topic(&msg.topic) {
            return;
        }
        let Some(p) = self.0.as_deref_mut() else {
            return;
        };
        match outcome {
            RetainOutcome::Stored => p.push(&Record::RetainSet(msg_body(msg, p))),
            RetainOutcome::Cleared => p.push(&Record::RetainClear { topic: &msg.topic }),
            RetainOutcome::Refused => {}
        }
    }

    /// Session `s` was just attached to a connection (CONNECT accepted).
    pub(super) fn connected(&mut self, s: &mut Session, had_will: bool) {
        let Some(p) = self.full() else {
            return;
        };
        if s.expiry_interval == 0 {
            if s.persist_id != 0 {
                let old = std::mem::replace(&mut s.persist_id, 0);
                p.push(&Record::SessionEnd { sid: old });
            }
            return;
        }
        if s.persist_id == 0 {
            s.persist_id = p.next_sid;
            p.next_sid += 1;
        }
        p.push(&session_record(s));
        if had_will {
            p.push(&Record::WillClear { sid: s.persist_id });
        }
    }

    /// Session `s` lost its connection and lives on.
    pub(super) fn offline(&mut self, s: &Session, now: Instant) {
        let Some(p) = self.full().filter(|_| s.persist_id != 0) else {
            return;
        };
        let at = p.unix(now);
        p.push(&Record::SessionOffline {
            sid: s.persist_id,
            at,
            expiry: s.expiry_interval,
        });
        if let Some(b) = &s.pending_will {
            let (will, due) = &**b;
            let due = p.unix(*due);
            p.push(&Record::WillSet {
                sid: s.persist_id,
                due,
                will: will_body(will),
            });
        }
    }

    /// A delayed will of session `psid` was published (or dropped).
    pub(super) fn will_cleared(&mut self, psid: u64) {
        if psid == 0 {
            return;
        }
        if let Some(p) = self.full() {
            p.push(&Record::WillClear { sid: psid });
        }
    }

    /// Session with persistent number `psid` ended.
    pub(super) fn session_end(&mut self, psid: u64) {
        if psid == 0 {
            return;
        }
        if let Some(p) = self.full() {
            p.push(&Record::SessionEnd { sid: psid });
        }
    }

    /// A subscription was granted (new or replacing one on the same filter).
    pub(super) fn subscribed(
        &mut self,
        psid: u64,
        filter: &str,
        options: SubOptions,
        sub_id: Option<u32>,
    ) {
        if psid == 0 {
            return;
        }
        if let Some(p) = self.full() {
            p.push(&Record::Subscribe {
                sid: psid,
                filter,
                options: options.to_byte(),
                sub_id: sub_id.unwrap_or(0),
            });
        }
    }

    /// A subscription was removed.
    pub(super) fn unsubscribed(&mut self, psid: u64, filter: &str) {
        if psid == 0 {
            return;
        }
        if let Some(p) = self.full() {
            p.push(&Record::Unsubscribe { sid: psid, filter });
        }
    }

    /// The next routing comes with inbound QoS 2 packet id `pid` of session
    /// `psid`: it is recorded in the same record as the routing.
    pub(super) fn inbound(&mut self, psid: u64, pid: u16) {
        if let Some(p) = self.full().filter(|_| psid != 0) {
            p.inbound = Some((psid, pid));
        }
    }

    /// An inbound QoS 2 packet id was released by PUBREL.
    pub(super) fn inbound_released(&mut self, psid: u64, pid: u16) {
        if psid == 0 {
            return;
        }
        if let Some(p) = self.full() {
            p.push(&Record::InboundDel { sid: psid, pid });
        }
    }

    /// A routing starts: deliveries to persistent sessions are collected.
    pub(super) fn route_begin(&mut self) {
        if let Some(p) = self.full() {
            p.collecting = true;
            p.recipients.clear();
            p.recipient_count = 0;
        }
    }

    /// The routing ends: one `ROUTED` record for all its persistent
    /// recipients (and the inbound packet id), then what was deferred.
    pub(super) fn route_end(&mut self, msg: Option<&Rc<Message>>) {
        let Some(p) = self.full() else { return };
        if !p.collecting {
            return;
        }
        p.collecting = false;
        let inbound = p.inbound.take();
        if p.recipient_count > 0 || inbound.is_some() {
            let msg_id = match msg {
                Some(m) if m.persist_id.get() != 0 => m.persist_id.get(),
                Some(m) => {
                    m.persist_id.set(p.next_msg_id);
                    p.next_msg_id += 1;
                    m.persist_id.get()
                }
                None => 0,
            };
            let recipients = std::mem::take(&mut p.recipients);
            let count = p.recipient_count;
            let body = msg.filter(|_| count > 0).map(|m| msg_body(m, p));
            p.emit(record::ROUTED, |w| {
                record::emit_routed(w, msg_id, body.as_ref(), inbound, count, &recipients);
            });
            p.recipients = recipients;
            p.recipients.clear();
            p.recipient_count = 0;
        }
        let deferred = std::mem::take(&mut p.deferred);
        p.buf.extend_from_slice(&deferred);
        p.deferred = deferred;
        p.deferred.clear();
    }

    /// A QoS 1/2 message was queued for session `psid`.
    pub(super) fn queued(&mut self, psid: u64, pending: &Pending) {
        if pending.qos == QoS::AtMostOnce {
            return;
        }
        if psid == 0 {
            return;
        }
        let Some(p) = self.full() else {
            return;
        };
        if p.collecting {
            // Numbered now: a QoS 2 send recorded before the routing's
            // record ends refers to it.
            if pending.msg.persist_id.get() == 0 {
                pending.msg.persist_id.set(p.next_msg_id);
                p.next_msg_id += 1;
            }
            Recipient::write(
                &mut Writer(&mut p.recipients),
                psid,
                pending.qos as u8,
                pending.retain,
                &pending.sub_ids,
            );
            p.recipient_count += 1;
            return;
        }
        // Outside a routing (retained messages for a new subscription):
        // a record of its own.
        let m = &pending.msg;
        if m.persist_id.get() == 0 {
            m.persist_id.set(p.next_msg_id);
            p.next_msg_id += 1;
        }
        p.push(&Record::Routed {
            msg_id: m.persist_id.get(),
            body: Some(msg_body(m, p)),
            inbound: None,
            recipients: vec![recipient(psid, pending)],
        });
    }

    /// A QoS 1/2 message left session `psid`.
    pub(super) fn removed(&mut self, psid: u64, msg: &Message) {
        if psid == 0 || msg.qos == QoS::AtMostOnce {
            return;
        }
        if let Some(p) = self.full() {
            p.push(&Record::Removed {
                sid: psid,
                msg_id: msg.persist_id.get(),
            });
        }
    }

    /// Forgets in-flight message `i` of `session` (acknowledged, or its flow
    /// ended) and records that it is gone.
    pub(super) fn remove_inflight(&mut self, session: &mut Session, i: usize) {
        if let Some(f) = session.inflight.remove(i) {
            self.removed(session.persist_id, &f.pending.msg);
        }
    }

    /// Records that a queued message left `psid`'s queue without being sent
    /// (expired, too large for the client, or dropped by a full queue). A
    /// QoS 0 entry (a bridge keeps those, see `QueuePolicy::keep_qos0`) was
    /// never recorded, whatever QoS the message was published with.
    pub(super) fn unqueued(&mut self, psid: u64, pending: &Pending) {
        if pending.qos != QoS::AtMostOnce {
            self.removed(psid, &pending.msg);
        }
    }

    /// Records a QoS 2 message sent with packet id `pid`.
    pub(super) fn sent(&mut self, psid: u64, msg: &Message, pid: u16) {
        if psid == 0 {
            return;
        }
        if let Some(p) = self.full() {
            p.push(&Record::Sent {
                sid: psid,
                msg_id: msg.persist_id.get(),
                pid,
            });
        }
    }

    /// Records a QoS 2 message whose PUBREC arrived (PUBREL sent).
    pub(super) fn released(&mut self, psid: u64, msg: &Message) {
        if psid == 0 {
            return;
        }
        if let Some(p) = self.full() {
            p.push(&Record::Released {
                sid: psid,
                msg_id: msg.persist_id.get(),
            });
        }
    }
}

/// How message `m` is written in a record.
fn msg_body<'m>(m: &'m Message, p: &Persist) -> MsgBody<'m> {
    MsgBody {
        topic: &m.topic,
        payload: &m.payload,
        qos: m.qos as u8,
        props: &m.props,
        expires: m.expires_at.map_or(0, |t| p.unix(t).max(1)),
    }
}

/// How a will is written in `WILL_SET`.
fn will_body(will: &WillMsg) -> WillBody<'_> {
    WillBody {
        topic: will.topic(),
        payload: will.payload(),
        qos: will.qos() as u8,
        retain: will.retain(),
        props: will.props(),
        expiry: will.expiry().map_or(u64::MAX, u64::from),
        delay: will.delay(),
    }
}

/// How session `s` is written in `SESSION`.
fn session_record(s: &Session) -> Record<'_> {
    Record::Session {
        sid: s.persist_id,
        client_id: &s.client_id,
        protocol: s.protocol as u8,
        expiry: s.expiry_interval,
        trusted: s.trusted,
        username: s.username.as_deref(),
    }
}

fn protocol_of(level: u8) -> Option<ProtocolVersion> {
    match level {
        3 => Some(ProtocolVersion::V31),
        4 => Some(ProtocolVersion::V311),
        5 => Some(ProtocolVersion::V5),
        _ => None,
    }
}

impl Core {
    /// Turns persistence on: from now on the core emits records (see
    /// [`Core::drain_records`]). With `hold_output`, output that depends on
    /// records waits for [`Core::handle_durable`]. `unix_now` is the wall
    /// clock (seconds since 1970) at `now`, to write times that mean
    /// something after a restart. Call before any connection is opened.
    pub fn enable_persistence(
        &mut self,
        mode: PersistMode,
        hold_output: bool,
        now: Instant,
        unix_now: u64,
    ) {
        self.journal.0 = Some(Box::new(Persist {
            full: mode == PersistMode::Full,
            hold: hold_output,
            buf: Vec::new(),
            emitted: 0,
            durable: 0,
            next_msg_id: 1,
            next_sid: 1,
            held: Vec::new(),
            wall: (now, unix_now),
            collecting: false,
            recipients: Vec::new(),
            recipient_count: 0,
            deferred: Vec::new(),
            inbound: None,
            figures: None,
        }));
    }

    /// Records emitted since persistence was enabled.
    pub fn records_emitted(&self) -> u64 {
        self.journal.0.as_ref().map_or(0, |p| p.emitted)
    }

    /// Hands the records emitted since the last call to `f`, in order, and
    /// forgets them.
    pub fn drain_records(&mut self, f: impl FnMut(u8, &[u8])) {
        for_each_record(&self.take_records(), f);
    }

    /// Takes the records emitted since the last call as one buffer, in the
    /// form [`for_each_record`] reads: for each, its kind, its body's length
    /// (u32, little endian) and the body. For a caller that passes them on
    /// whole (the writer thread), with no copy.
    pub fn take_records(&mut self) -> Vec<u8> {
        self.journal
            .0
            .as_mut()
            .map(|p| std::mem::take(&mut p.buf))
            .unwrap_or_default()
    }

    /// The first `upto` records (counted since persistence was enabled)
    /// are on disk: output waiting for them may leave (see
    /// [`Core::poll_dirty`]). `upto` is a value [`Core::records_emitted`]
    /// returned right after a [`Core::drain_records`] whose records were
    /// all written: batches become durable whole.
    pub fn handle_durable(&mut self, upto: u64) {
        let Some(p) = self.journal.0.as_mut() else {
            return;
        };
        if upto <= p.durable {
            return;
        }
        p.durable = upto.min(p.emitted);
        let durable = p.durable;
        let held = std::mem::take(&mut p.held);
        let mut still = Vec::new();
        for id in held {
            let Some(c) = self.conns.get_mut(id.0).and_then(Option::as_mut) else {
                continue;
            };
            let (released, remains) = c.release_held(durable);
            if remains {
                still.push(id);
            }
            if released {
                self.mark_dirty(id);
            }
        }
        if let Some(p) = self.journal.0.as_mut() {
            p.held = still;
        }
    }

    /// Gives the persistence figures shown under `$SYS/broker/persistence/`.
    pub fn set_persist_figures(&mut self, figures: PersistFigures) {
        if let Some(p) = self.journal.0.as_mut() {
            p.figures = Some(figures);
        }
    }

    /// The persistent number of session `sid` (0: not recorded).
    pub(super) fn psid(&self, sid: SessionId) -> u64 {
        self.sessions.get(sid.0).map_or(0, |s| s.persist_id)
    }

    /// The persistence figures last given, if persistence is on.
    pub(super) fn persist_figures(&self) -> Option<PersistFigures> {
        self.journal.0.as_ref().and_then(|p| p.figures)
    }
}

/// Calls `f` with each record of `buf` (as [`Core::take_records`] gives
/// them), in order; stops at a cut record, which it cannot hold.
pub fn for_each_record(buf: &[u8], mut f: impl FnMut(u8, &[u8])) {
    let mut rest = buf;
    while let Some((&kind, tail)) = rest.split_first() {
        let Some((len, tail)) = tail.split_first_chunk::<4>() else {
            return;
        };
        let len = u32::from_le_bytes(*len) as usize;
        let Some((body, tail)) = tail.split_at_checked(len) else {
            return;
        };
        f(kind, body);
        rest = tail;
    }
}

/// Session `psid` as a recipient of `pending`, in a `ROUTED` record.
fn recipient(psid: u64, pending: &Pending) -> Recipient {
    Recipient {
        sid: psid,
        qos: pending.qos as u8,
        retain: pending.retain,
        sub_ids: pending.sub_ids.to_vec(),
    }
}

/// A SENT record: the queued message `msg_id` went out as `pid` and is in
/// flight.
fn restore_sent(s: &mut Session, msg_id: u64, pid: u16) -> Result<(), &'static str> {
    let pid = PacketId::new(pid).ok_or("packet id 0")?;
    let i = s
        .queue
        .iter()
        .position(|q| q.msg.persist_id.get() == msg_id)
        .ok_or("message not queued")?;
    let pending = s.queue.remove(i).ok_or("message not queued")?;
    s.queued_bytes = s.queued_bytes.saturating_sub(pending.msg.cost());
    if let Some(j) = s.inflight_position(pid) {
        // A packet id reused: the older flow is finished.
        s.inflight.remove(j);
    }
    s.inflight.push_back(Inflight {
        pid,
        state: OutState::AwaitAck,
        pending,
    });
    Ok(())
}

/// A RELEASED record: the message `msg_id` in flight waits for PUBCOMP.
fn restore_released(s: &mut Session, msg_id: u64) -> Result<(), &'static str> {
    let f = s
        .inflight
        .iter_mut()
        .find(|f| f.pending.msg.persist_id.get() == msg_id)
        .ok_or("message not in flight")?;
    f.state = OutState::AwaitComp;
    Ok(())
}

/// An inbound QoS 2 packet id the session holds until PUBREL (once).
fn hold_inbound(s: &mut Session, pid: u16) -> Result<(), &'static str> {
    if pid == 0 {
        return Err("packet id 0");
    }
    if !s.incoming_qos2.contains(&pid) {
        s.incoming_qos2.push(pid);
    }
    Ok(())
}

/// An INBOUND_DEL record: the PUBREL for `pid` came.
fn release_inbound(s: &mut Session, pid: u16) -> Result<(), &'static str> {
    let i = s
        .incoming_qos2
        .iter()
        .position(|p| *p == pid)
        .ok_or("packet id not held")?;
    s.incoming_qos2.swap_remove(i);
    Ok(())
}

/// A REMOVED record: the message `msg_id` leaves the session, in flight
/// or still queued.
fn restore_removed(s: &mut Session, msg_id: u64) -> Result<(), &'static str> {
    if let Some(i) = s
        .inflight
        .iter()
        .position(|f| f.pending.msg.persist_id.get() == msg_id)
    {
        s.inflight.remove(i);
    } else {
        let i = s
            .queue
            .iter()
            .position(|q| q.msg.persist_id.get() == msg_id)
            .ok_or("message not queued")?;
        if let Some(p) = s.queue.remove(i) {
            s.queued_bytes = s.queued_bytes.saturating_sub(p.msg.cost());
        }
    }
    Ok(())
}

/// State built up while restoring.
#[derive(Default)]
struct Restoring {
    sids: HashMap<u64, SessionId>,
    msgs: HashMap<u64, Rc<Message>>,
    /// Unix time each session went offline; `None` while it was connected.
    offline: HashMap<u64, Option<u64>>,
    max_sid: u64,
    max_msg: u64,
}

impl Core {
    /// Rebuilds retained messages, sessions, subscriptions, queues,
    /// in-flight messages (resent with DUP when the client is back),
    /// inbound QoS 2 packet ids and delayed wills from the records of a
    /// previous run, in the order they were written. Call after
    /// [`Core::enable_persistence`] and before any connection is opened.
    /// Unknown and damaged records are skipped and counted.
    pub fn restore<'a>(
        &mut self,
        records: impl IntoIterator<Item = (u8, &'a [u8])>,
        now: Instant,
    ) -> RestoreReport {
        let mut report = RestoreReport::default();
        let mut st = Restoring::default();
        for (i, (kind, body)) in records.into_iter().enumerate() {
            let outcome = match record::decode(kind, body) {
                Some(rec) => self.apply(&rec, &mut st, now),
                None => Err("damaged or of an unknown kind"),
            };
            match outcome {
                Ok(()) => report.applied += 1,
                Err(why) => {
                    report.skipped += 1;
                    if report.notes.len() < MAX_NOTES {
                        report.notes.push(format!(
                            "record {i} (kind {kind}, {} bytes) skipped: {why}",
                            body.len()
                        ));
                    }
                }
            }
        }
        if report.skipped > MAX_NOTES as u64 {
            report.notes.push(format!(
                "{} more records skipped",
                report.skipped - MAX_NOTES as u64
            ));
        }
        // Times: a session connected when the broker stopped went offline
        // now; expiry and delayed wills count from then.
        let unix_now = self.journal.0.as_ref().map_or(0, |p| p.unix(now));
        let mut deadlines = Vec::new();
        let mut gone = Vec::new();
        let expiration = self.persistent_client_expiration;
        for (&psid, &sid) in &st.sids {
            let Some(s) = self.sessions.get_mut(sid.0) else {
                continue;
            };
            if s.expiry_interval == 0 {
                gone.push(sid);
                continue;
            }
            if let Some(secs) = offline_lifetime(s.expiry_interval, expiration) {
                // 0: not known (a session that never expired when it was
                // recorded); it counts from now.
                let off = st.offline.get(&psid).copied().flatten();
                let off = off.filter(|&t| t != 0).unwrap_or(unix_now);
                let at = off.saturating_add(u64::from(secs));
                let at = match &self.journal.0 {
                    Some(p) => p.instant(at, now),
                    None => now,
                };
                s.expires_at = Some(at);
                deadlines.push(at);
            }
            if let Some(b) = &s.pending_will {
                deadlines.push(b.1);
            }
            report.messages += s.queue.len() + s.inflight.len();
        }
        for sid in gone {
            self.drop_restored(sid);
        }
        for d in deadlines {
            self.note_deadline(Some(d));
        }
        if let Some(p) = self.journal.0.as_mut() {
            p.next_sid = p.next_sid.max(st.max_sid + 1);
            p.next_msg_id = p.next_msg_id.max(st.max_msg + 1);
        }
        report.retained = self.router.retained.len();
        report.sessions = self.sessions.len();
        report
    }

    fn restored_message(&self, m: &MsgBody<'_>, id: u64, now: Instant) -> Option<Rc<Message>> {
        let qos = QoS::from_u8(m.qos)?;
        let expires_at = match (m.expires, &self.journal.0) {
            (0, _) => None,
            (t, Some(p)) => Some(p.instant(t, now)),
            (_, None) => None,
        };
        let msg = Message::new(
            m.topic.into(),
            m.payload.into(),
            qos,
            m.props.into(),
            expires_at,
            &self.budget.meter,
        );
        msg.persist_id.set(id);
        Some(Rc::new(msg))
    }

    fn session_of(&mut self, st: &Restoring, psid: u64) -> Result<&mut Session, &'static str> {
        let sid = st.sids.get(&psid).ok_or("unknown session")?;
        self.sessions.get_mut(sid.0).ok_or("unknown session")
    }

    /// Removes a restored session without publishing anything.
    fn drop_restored(&mut self, sid: SessionId) {
        if !self.sessions.contains(sid.0) {
            return;
        }
        let session = self.sessions.remove(sid.0);
        for sub in &session.subscriptions {
            self.forget_subscription(sid, &sub.filter);
        }
        self.by_client_id.remove(&session.client_id, sid);
    }

    fn apply(
        &mut self,
        rec: &Record<'_>,
        st: &mut Restoring,
        now: Instant,
    ) -> Result<(), &'static str> {
        match rec {
            Record::RetainSet(m) => self.restore_retained(m, now)?,
            Record::RetainClear { topic } => self.clear_retained(topic),
            Record::Session {
                sid,
                client_id,
                protocol,
                expiry,
                trusted,
                username,
            } => {
                let s = self.restore_session(st, *sid, client_id, *protocol, *expiry)?;
                s.trusted = *trusted;
                s.username = username.map(Into::into);
            }
            Record::SessionEnd { sid } => {
                let key = st.sids.remove(sid).ok_or("unknown session")?;
                st.offline.remove(sid);
                self.drop_restored(key);
            }
            Record::SessionOffline { sid, at, expiry } => {
                let s = self.session_of(st, *sid)?;
                s.expiry_interval = *expiry;
                st.offline.insert(*sid, Some(*at));
            }
            Record::Subscribe {
                sid,
                filter,
                options,
                sub_id,
            } => {
                let key = *st.sids.get(sid).ok_or("unknown session")?;
                let options = SubOptions::from_byte(*options, ProtocolVersion::V5)
                    .map_err(|_| "bad subscription options")?;
                let sub_id = (*sub_id != 0).then_some(*sub_id);
                self.restore_subscription(key, filter, options, sub_id)?;
            }
            Record::Unsubscribe { sid, filter } => {
                let key = *st.sids.get(sid).ok_or("unknown session")?;
                self.restore_unsubscribe(key, filter)?;
            }
            Record::Routed {
                msg_id,
                body,
                inbound,
                recipients,
            } => self.restore_routed(st, *msg_id, body.as_ref(), *inbound, recipients, now)?,
            Record::Sent { sid, msg_id, pid } => {
                restore_sent(self.session_of(st, *sid)?, *msg_id, *pid)?
            }
            Record::Released { sid, msg_id } => {
                restore_released(self.session_of(st, *sid)?, *msg_id)?
            }
            Record::Removed { sid, msg_id } => {
                restore_removed(self.session_of(st, *sid)?, *msg_id)?
            }
            Record::InboundAdd { sid, pid } => hold_inbound(self.session_of(st, *sid)?, *pid)?,
            Record::InboundDel { sid, pid } => release_inbound(self.session_of(st, *sid)?, *pid)?,
            Record::WillSet { sid, due, will } => {
                let will = self.restored_will(will, *due, now)?;
                let s = self.session_of(st, *sid)?;
                s.pending_will = Some(Box::new(will));
            }
            Record::WillClear { sid } => {
                let s = self.session_of(st, *sid)?;
                s.pending_will = None;
            }
        }
        Ok(())
    }

    /// An UNSUBSCRIBE record: the subscription leaves the session and the
    /// routing.
    fn restore_unsubscribe(&mut self, key: SessionId, filter: &str) -> Result<(), &'static str> {
        let s = self.sessions.get_mut(key.0).ok_or("unknown session")?;
        let i = s.subscription_index(filter).ok_or("no such subscription")?;
        s.subscriptions.swap_remove(i);
        self.forget_subscription(key, filter);
        Ok(())
    }

    /// A RETAIN_SET record: the retained message back under its topic.
    fn restore_retained(&mut self, m: &MsgBody<'_>, now: Instant) -> Result<(), &'static str> {
        if is_sys_topic(m.topic) || m.payload.is_empty() {
            return Err("not a retained message");
        }
        let msg = self.restored_message(m, 0, now).ok_or("bad QoS")?;
        let (max_count, max_bytes) = (
            self.limits.max_retained_messages,
            self.limits.max_retained_bytes,
        );
        if self.router.retained.set(&msg, max_count, max_bytes) == RetainOutcome::Refused {
            return Err("retained limits reached");
        }
        Ok(())
    }

    /// A RETAIN_CLEAR record: an empty message clears the topic.
    fn clear_retained(&mut self, topic: &str) {
        let msg = Message::new(
            topic.into(),
            Box::new([]),
            QoS::AtMostOnce,
            Box::new([]),
            None,
            &self.budget.meter,
        );
        let (max_count, max_bytes) = (
            self.limits.max_retained_messages,
            self.limits.max_retained_bytes,
        );
        self.router
            .retained
            .set(&Rc::new(msg), max_count, max_bytes);
    }

    /// A SESSION record: the session `psid` (a new one, or one restored
    /// before whose state changed) with its protocol and expiry interval.
    fn restore_session(
        &mut self,
        st: &mut Restoring,
        psid: u64,
        client_id: &str,
        protocol: u8,
        expiry: u32,
    ) -> Result<&mut Session, &'static str> {
        let protocol = protocol_of(protocol).ok_or("bad protocol level")?;
        st.max_sid = st.max_sid.max(psid);
        st.offline.insert(psid, None);
        let key = match st.sids.get(&psid) {
            Some(&key) => key,
            None => self.new_restored_session(st, psid, client_id, protocol, expiry)?,
        };
        let s = self.sessions.get_mut(key.0).ok_or("unknown session")?;
        s.protocol = protocol;
        s.expiry_interval = expiry;
        Ok(s)
    }

    /// A SESSION record for a session not restored yet: a new session
    /// under `client_id` (replacing an older one restored under it), known
    /// as `psid` in the records that follow.
    fn new_restored_session(
        &mut self,
        st: &mut Restoring,
        psid: u64,
        client_id: &str,
        protocol: ProtocolVersion,
        expiry: u32,
    ) -> Result<SessionId, &'static str> {
        if client_id.is_empty() || client_id.len() > self.limits.max_client_id_len.max(23) {
            return Err("bad client id");
        }
        if let Some(old) = self.by_client_id.get(client_id, &self.sessions) {
            self.drop_restored(old);
            st.sids.retain(|_, v| *v != old);
        }
        if self.sessions.len() >= self.limits.max_sessions {
            return Err("max_sessions reached");
        }
        let mut s = Session::new(client_id, protocol, expiry);
        s.persist_id = psid;
        // A bridge's session: its own queue bound, set before the
        // restore (see `Core::set_queue_policy`).
        s.policy = self.policies.get(client_id).copied();
        let key = SessionId(self.sessions.insert(s));
        self.by_client_id.insert(client_id, key, &self.sessions);
        st.sids.insert(psid, key);
        Ok(key)
    }

    /// A ROUTED record: the inbound QoS 2 packet id it answers, if any, is
    /// held, and the message is queued for its recipients.
    fn restore_routed(
        &mut self,
        st: &mut Restoring,
        msg_id: u64,
        body: Option<&MsgBody<'_>>,
        inbound: Option<(u64, u16)>,
        recipients: &[Recipient],
        now: Instant,
    ) -> Result<(), &'static str> {
        st.max_msg = st.max_msg.max(msg_id);
        if let Some((psid, pid)) = inbound {
            let s = self.session_of(st, psid)?;
            if pid != 0 {
                hold_inbound(s, pid)?;
            }
        }
        if !recipients.is_empty() {
            let msg = self.routed_message(st, msg_id, body, now)?;
            self.queue_restored(st, &msg, recipients);
        }
        Ok(())
    }

    /// The message of a ROUTED record: the one an earlier record of the
    /// same id brought, or the record's own body.
    fn routed_message(
        &self,
        st: &mut Restoring,
        msg_id: u64,
        body: Option<&MsgBody<'_>>,
        now: Instant,
    ) -> Result<Rc<Message>, &'static str> {
        match (st.msgs.get(&msg_id), body) {
            (Some(m), _) => Ok(m.clone()),
            (None, Some(b)) => {
                let m = self.restored_message(b, msg_id, now).ok_or("bad QoS")?;
                if msg_id != 0 {
                    st.msgs.insert(msg_id, m.clone());
                }
                Ok(m)
            }
            (None, None) => Err("message body missing"),
        }
    }

    /// Queues a routed message for the recipients still restored.
    fn queue_restored(&mut self, st: &Restoring, msg: &Rc<Message>, recipients: &[Recipient]) {
        for r in recipients {
            let Ok(s) = self.session_of(st, r.sid) else {
                continue;
            };
            let qos = QoS::from_u8(r.qos).unwrap_or(QoS::AtLeastOnce);
            s.queued_bytes += msg.cost();
            s.queue.push_back(Pending {
                msg: msg.clone(),
                qos,
                retain: r.retain,
                sub_ids: r.sub_ids.clone().into(),
            });
        }
    }

    /// The will of a WILL_SET record and when it is due.
    fn restored_will(
        &self,
        will: &WillBody<'_>,
        due: u64,
        now: Instant,
    ) -> Result<(WillMsg, Instant), &'static str> {
        let qos = QoS::from_u8(will.qos).ok_or("bad QoS")?;
        if topic::validate_topic_name(
            will.topic,
            self.limits.max_topic_len,
            self.limits.max_topic_levels,
        )
        .is_err()
        {
            return Err("bad will topic");
        }
        let due = match &self.journal.0 {
            Some(p) => p.instant(due, now),
            None => now,
        };
        let w = WillMsg::new(&WillParts {
            topic: will.topic,
            payload: will.payload,
            qos,
            retain: will.retain,
            props: will.props,
            expiry: u32::try_from(will.expiry).ok(),
            delay: will.delay,
        });
        Ok((w, due))
    }

    fn restore_subscription(
        &mut self,
        sid: SessionId,
        filter: &str,
        options: SubOptions,
        sub_id: Option<u32>,
    ) -> Result<(), &'static str> {
        let (shared, inner) = match topic::parse_shared(filter) {
            Ok(Some((group, inner))) => (Some(group), inner),
            Ok(None) => (None, filter),
            Err(_) => return Err("bad filter"),
        };
        topic::validate_topic_filter(
            inner,
            self.limits.max_topic_len,
            self.limits.max_topic_levels,
        )
        .map_err(|_| "bad filter")?;
        let acl_full = self.acl_decision(sid, filter) == crate::auth::SubscribeDecision::Full;
        let entry = super::session::SubEntry {
            options,
            sub_id,
            acl_full,
        };
        let s = self.sessions.get_mut(sid.0).ok_or("unknown session")?;
        match s.subscription_index(filter) {
            Some(i) => s.subscriptions[i].entry = entry,
            None => {
                if s.subscriptions.len() >= self.limits.max_subscriptions_per_session {
                    return Err("max_subscriptions_per_session reached");
                }
                s.subscriptions.push(super::session::Subscription {
                    filter: filter.into(),
                    entry,
                });
            }
        }
        match shared {
            Some(group) => self.router.shared.join(group, inner, sid, entry),
            None => {
                self.router.trie.insert(filter, sid, entry);
            }
        }
        Ok(())
    }

    /// The whole durable state as records, for compaction: retained
    /// messages (not `$SYS`) and, in full mode, every persistent session
    /// with its subscriptions, messages, packet ids and delayed will.
    pub fn snapshot_records(&self) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        let Some(p) = self.journal.0.as_deref() else {
            return out;
        };
        let mut rec = |r: Record<'_>| {
            let mut b = Vec::new();
            r.emit(&mut Writer(&mut b));
            out.push((r.kind(), b));
        };
        self.router.retained.for_each(|m| {
            if !is_sys_topic(&m.topic) {
                rec(Record::RetainSet(msg_body(m, p)));
            }
        });
        if !p.full {
            return out;
        }
        let mut written: std::collections::HashSet<u64> = std::collections::HashSet::new();
        for (_, s) in self.sessions.iter() {
            if s.persist_id == 0 || s.expiry_interval == 0 {
                continue;
            }
            let psid = s.persist_id;
            rec(session_record(s));
            if s.conn.is_none() {
                // Offline since (expires_at - expiry).
                let lifetime =
                    offline_lifetime(s.expiry_interval, self.persistent_client_expiration);
                let at = match (s.expires_at, lifetime) {
                    (Some(at), Some(secs)) => p.unix(at).saturating_sub(u64::from(secs)),
                    // Never expires: the time does not matter (0: unknown).
                    _ => 0,
                };
                rec(Record::SessionOffline {
                    sid: psid,
                    at,
                    expiry: s.expiry_interval,
                });
            }
            for sub in &s.subscriptions {
                rec(Record::Subscribe {
                    sid: psid,
                    filter: &sub.filter,
                    options: sub.entry.options.to_byte(),
                    sub_id: sub.entry.sub_id.unwrap_or(0),
                });
            }
            let held = s
                .inflight
                .iter()
                .map(|f| (&f.pending, Some(f)))
                .chain(s.queue.iter().map(|q| (q, None)));
            for (pending, inflight) in held {
                if pending.qos == QoS::AtMostOnce {
                    continue;
                }
                let m = &pending.msg;
                let id = m.persist_id.get();
                let with_body = id == 0 || written.insert(id);
                rec(Record::Routed {
                    msg_id: id,
                    body: with_body.then(|| msg_body(m, p)),
                    inbound: None,
                    recipients: vec![recipient(psid, pending)],
                });
                let Some(f) = inflight else { continue };
                if pending.qos != QoS::ExactlyOnce || id == 0 {
                    continue;
                }
                rec(Record::Sent {
                    sid: psid,
                    msg_id: id,
                    pid: f.pid.get(),
                });
                if f.state == OutState::AwaitComp {
                    rec(Record::Released {
                        sid: psid,
                        msg_id: id,
                    });
                }
            }
            for &pid in &s.incoming_qos2 {
                rec(Record::InboundAdd { sid: psid, pid });
            }
            if let Some(b) = &s.pending_will {
                let (will, due) = &**b;
                rec(Record::WillSet {
                    sid: psid,
                    due: p.unix(*due),
                    will: will_body(will),
                });
            }
        }
        out
    }
}
