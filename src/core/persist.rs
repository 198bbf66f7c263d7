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

use super::message::{WillMsg, WillParts};
use super::retain::RetainOutcome;
use super::session::{Inflight, Message, NEVER_EXPIRES, OutState, Pending, Session, SessionId};
use super::{ConnId, Core};
use crate::codec::{PacketId, ProtocolVersion, QoS, SubOptions};
use crate::topic;
use crate::topic::is_sys_topic;

use record::{MsgBody, Recipient, Record, Writer};

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

/// Holds connection `id`'s output from now on if records are pending.
/// A free function so callers can borrow other fields of the core.
pub(super) fn hold_output(
    persist: &mut Option<Box<Persist>>,
    conn: &mut super::conn::Conn,
    id: ConnId,
) {
    if let Some(p) = persist {
        if let Some(upto) = p.hold_at() {
            if conn.hold(upto) {
                p.held.push(id);
            }
        }
    }
}

/// Like [`hold_output`], for connection `id`'s output from `pos` (an
/// earlier `Conn::output_end`) on, once the records it depends on are
/// emitted.
pub(super) fn hold_output_from(
    persist: &mut Option<Box<Persist>>,
    conn: &mut super::conn::Conn,
    id: ConnId,
    pos: u64,
) {
    if let Some(p) = persist {
        if let Some(upto) = p.hold_at() {
            if conn.hold_from(pos, upto) {
                p.held.push(id);
            }
        }
    }
}

fn write_msg(w: &mut Writer<'_>, m: &Message, p: &Persist) {
    MsgBody {
        topic: &m.topic,
        payload: &m.payload,
        qos: m.qos as u8,
        props: &m.props,
        expires: m.expires_at.map_or(0, |t| p.unix(t).max(1)),
    }
    .write(w);
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
        self.persist = Some(Box::new(Persist {
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
        self.persist.as_ref().map_or(0, |p| p.emitted)
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
        self.persist
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
        let Some(p) = self.persist.as_mut() else {
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
        if let Some(p) = self.persist.as_mut() {
            p.held = still;
        }
    }

    /// Gives the persistence figures shown under `$SYS/broker/persistence/`.
    pub fn set_persist_figures(&mut self, figures: PersistFigures) {
        if let Some(p) = self.persist.as_mut() {
            p.figures = Some(figures);
        }
    }

    /// The persistence figures last given, if persistence is on.
    pub(super) fn persist_figures(&self) -> Option<PersistFigures> {
        self.persist.as_ref().and_then(|p| p.figures)
    }

    // ----- hooks called by the handlers -----

    /// The full-mode state, when sessions are recorded.
    fn full(&mut self) -> Option<&mut Persist> {
        self.persist.as_deref_mut().filter(|p| p.full)
    }

    /// A retained message was stored or cleared.
    pub(super) fn persist_retain(&mut self, msg: &Message, outcome: RetainOutcome) {
        if is_sys_topic(&msg.topic) {
            return;
        }
        let Some(p) = self.persist.as_deref_mut() else {
            return;
        };
        match outcome {
            RetainOutcome::Stored => {
                let body = {
                    let mut b = Vec::new();
                    write_msg(&mut Writer(&mut b), msg, p);
                    b
                };
                p.emit(record::RETAIN_SET, |w| {
                    w.0.extend_from_slice(&body);
                });
            }
            RetainOutcome::Cleared => p.emit(record::RETAIN_CLEAR, |w| {
                w.str(&msg.topic);
            }),
            RetainOutcome::Refused => {}
        }
    }

    /// Session `sid` was just attached to a connection (CONNECT accepted).
    pub(super) fn persist_connected(&mut self, sid: SessionId, had_will: bool) {
        let Some(p) = self.persist.as_deref_mut().filter(|p| p.full) else {
            return;
        };
        let Some(s) = self.sessions.get_mut(sid.0) else {
            return;
        };
        if s.expiry_interval == 0 {
            if s.persist_id != 0 {
                let old = std::mem::replace(&mut s.persist_id, 0);
                p.emit(record::SESSION_END, |w| {
                    w.u64(old);
                });
            }
            return;
        }
        if s.persist_id == 0 {
            s.persist_id = p.next_sid;
            p.next_sid += 1;
        }
        let sid = s.persist_id;
        p.emit(record::SESSION, |w| {
            w.u64(sid)
                .str(&s.client_id)
                .u8(s.protocol as u8)
                .u32(s.expiry_interval)
                .u8(u8::from(s.trusted));
            match &s.username {
                Some(u) => w.u8(1).str(u),
                None => w.u8(0),
            };
        });
        if had_will {
            p.emit(record::WILL_CLEAR, |w| {
                w.u64(sid);
            });
        }
    }

    /// Session `sid` lost its connection and lives on.
    pub(super) fn persist_offline(&mut self, sid: SessionId, now: Instant) {
        let Some(p) = self.persist.as_deref_mut().filter(|p| p.full) else {
            return;
        };
        let Some(s) = self.sessions.get(sid.0).filter(|s| s.persist_id != 0) else {
            return;
        };
        let at = p.unix(now);
        p.emit(record::SESSION_OFFLINE, |w| {
            w.u64(s.persist_id).u64(at).u32(s.expiry_interval);
        });
        if let Some(b) = &s.pending_will {
            let (will, due) = &**b;
            let due = p.unix(*due);
            p.emit(record::WILL_SET, |w| {
                w.u64(s.persist_id).u64(due);
                write_will(w, will);
            });
        }
    }

    /// A delayed will of session `sid` was published (or dropped).
    pub(super) fn persist_will_cleared(&mut self, sid: SessionId) {
        let psid = self.sessions.get(sid.0).map_or(0, |s| s.persist_id);
        if psid == 0 {
            return;
        }
        if let Some(p) = self.full() {
            p.emit(record::WILL_CLEAR, |w| {
                w.u64(psid);
            });
        }
    }

    /// Session with persistent number `psid` ended.
    pub(super) fn persist_session_end(&mut self, psid: u64) {
        if psid == 0 {
            return;
        }
        if let Some(p) = self.full() {
            p.emit(record::SESSION_END, |w| {
                w.u64(psid);
            });
        }
    }

    /// A subscription was granted (new or replacing one on the same filter).
    pub(super) fn persist_subscribe(
        &mut self,
        sid: SessionId,
        filter: &str,
        options: SubOptions,
        sub_id: Option<u32>,
    ) {
        let psid = self.sessions.get(sid.0).map_or(0, |s| s.persist_id);
        if psid == 0 {
            return;
        }
        if let Some(p) = self.full() {
            p.emit(record::SUBSCRIBE, |w| {
                w.u64(psid)
                    .str(filter)
                    .u8(options.to_byte())
                    .u32(sub_id.unwrap_or(0));
            });
        }
    }

    /// A subscription was removed.
    pub(super) fn persist_unsubscribe(&mut self, sid: SessionId, filter: &str) {
        let psid = self.sessions.get(sid.0).map_or(0, |s| s.persist_id);
        if psid == 0 {
            return;
        }
        if let Some(p) = self.full() {
            p.emit(record::UNSUBSCRIBE, |w| {
                w.u64(psid).str(filter);
            });
        }
    }

    /// The next routing comes with inbound QoS 2 packet id `pid` of session
    /// `sid`: it is recorded in the same record as the routing.
    pub(super) fn persist_inbound(&mut self, sid: SessionId, pid: u16) {
        let psid = self.sessions.get(sid.0).map_or(0, |s| s.persist_id);
        if let Some(p) = self.full().filter(|_| psid != 0) {
            p.inbound = Some((psid, pid));
        }
    }

    /// An inbound QoS 2 packet id was released by PUBREL.
    pub(super) fn persist_inbound_released(&mut self, sid: SessionId, pid: u16) {
        let psid = self.sessions.get(sid.0).map_or(0, |s| s.persist_id);
        if psid == 0 {
            return;
        }
        if let Some(p) = self.full() {
            p.emit(record::INBOUND_DEL, |w| {
                w.u64(psid).u16(pid);
            });
        }
    }

    /// A routing starts: deliveries to persistent sessions are collected.
    pub(super) fn persist_route_begin(&mut self) {
        if let Some(p) = self.full() {
            p.collecting = true;
            p.recipients.clear();
            p.recipient_count = 0;
        }
    }

    /// The routing ends: one `ROUTED` record for all its persistent
    /// recipients (and the inbound packet id), then what was deferred.
    pub(super) fn persist_route_end(&mut self, msg: Option<&Rc<Message>>) {
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
            let mut body = Vec::new();
            if let (Some(m), true) = (msg, count > 0) {
                write_msg(&mut Writer(&mut body), m, p);
            }
            p.emit(record::ROUTED, |w| {
                w.u64(msg_id);
                if body.is_empty() {
                    w.u8(0);
                } else {
                    w.u8(1);
                    w.0.extend_from_slice(&body);
                }
                match inbound {
                    Some((s, pid)) => w.u8(1).u64(s).u16(pid),
                    None => w.u8(0),
                };
                w.u32(count);
                w.0.extend_from_slice(&recipients);
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

    /// A QoS 1/2 message was queued for session `sid`.
    pub(super) fn persist_queued(&mut self, sid: SessionId, pending: &Pending) {
        if pending.qos == QoS::AtMostOnce {
            return;
        }
        let psid = self.sessions.get(sid.0).map_or(0, |s| s.persist_id);
        if psid == 0 {
            return;
        }
        let Some(p) = self.persist.as_deref_mut().filter(|p| p.full) else {
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
        let mut body = Vec::new();
        write_msg(&mut Writer(&mut body), m, p);
        p.emit(record::ROUTED, |w| {
            w.u64(m.persist_id.get()).u8(1);
            w.0.extend_from_slice(&body);
            w.u8(0).u32(1);
            Recipient::write(w, psid, pending.qos as u8, pending.retain, &pending.sub_ids);
        });
    }
}

/// Records a QoS 1/2 message leaving a session (free function: `pump`
/// holds borrows of the session and connection tables).
pub(super) fn note_removed(persist: &mut Option<Box<Persist>>, psid: u64, msg: &Message) {
    if psid == 0 || msg.qos == QoS::AtMostOnce {
        return;
    }
    if let Some(p) = persist.as_deref_mut().filter(|p| p.full) {
        let id = msg.persist_id.get();
        p.emit(record::REMOVED, |w| {
            w.u64(psid).u64(id);
        });
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

/// Forgets in-flight message `i` of `session` (acknowledged, or its flow
/// ended) and records that it is gone.
pub(super) fn remove_inflight(persist: &mut Option<Box<Persist>>, session: &mut Session, i: usize) {
    if let Some(f) = session.inflight.remove(i) {
        note_removed(persist, session.persist_id, &f.pending.msg);
    }
}

/// Records that a queued message left `psid`'s queue without being sent
/// (expired, too large for the client, or dropped by a full queue). A
/// QoS 0 entry (a bridge keeps those, see `QueuePolicy::keep_qos0`) was
/// never recorded, whatever QoS the message was published with.
pub(super) fn note_unqueued(persist: &mut Option<Box<Persist>>, psid: u64, pending: &Pending) {
    if pending.qos != QoS::AtMostOnce {
        note_removed(persist, psid, &pending.msg);
    }
}

/// Records a QoS 2 message sent with packet id `pid`.
pub(super) fn note_sent(persist: &mut Option<Box<Persist>>, psid: u64, msg: &Message, pid: u16) {
    if psid == 0 {
        return;
    }
    if let Some(p) = persist.as_deref_mut().filter(|p| p.full) {
        let id = msg.persist_id.get();
        p.emit(record::SENT, |w| {
            w.u64(psid).u64(id).u16(pid);
        });
    }
}

/// Records a QoS 2 message whose PUBREC arrived (PUBREL sent).
pub(super) fn note_released(persist: &mut Option<Box<Persist>>, psid: u64, msg: &Message) {
    if psid == 0 {
        return;
    }
    if let Some(p) = persist.as_deref_mut().filter(|p| p.full) {
        let id = msg.persist_id.get();
        p.emit(record::RELEASED, |w| {
            w.u64(psid).u64(id);
        });
    }
}

fn write_will(w: &mut Writer<'_>, will: &WillMsg) {
    w.str(will.topic())
        .bytes(will.payload())
        .u8(will.qos() as u8)
        .u8(u8::from(will.retain()))
        .bytes(will.props())
        .u64(will.expiry().map_or(u64::MAX, u64::from))
        .u32(will.delay());
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
        let unix_now = self.persist.as_ref().map_or(0, |p| p.unix(now));
        let mut deadlines = Vec::new();
        let mut gone = Vec::new();
        for (&psid, &sid) in &st.sids {
            let Some(s) = self.sessions.get_mut(sid.0) else {
                continue;
            };
            if s.expiry_interval == 0 {
                gone.push(sid);
                continue;
            }
            if s.expiry_interval != NEVER_EXPIRES {
                let off = st.offline.get(&psid).copied().flatten().unwrap_or(unix_now);
                let at = off.saturating_add(u64::from(s.expiry_interval));
                let at = match &self.persist {
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
        if let Some(p) = self.persist.as_mut() {
            p.next_sid = p.next_sid.max(st.max_sid + 1);
            p.next_msg_id = p.next_msg_id.max(st.max_msg + 1);
        }
        report.retained = self.retained.len();
        report.sessions = self.sessions.len();
        report
    }

    fn restored_message(&self, m: &MsgBody<'_>, id: u64, now: Instant) -> Option<Rc<Message>> {
        let qos = QoS::from_u8(m.qos)?;
        let expires_at = match (m.expires, &self.persist) {
            (0, _) => None,
            (t, Some(p)) => Some(p.instant(t, now)),
            (_, None) => None,
        };
        Some(Rc::new(Message {
            topic: m.topic.into(),
            payload: m.payload.into(),
            qos,
            props: m.props.into(),
            expires_at,
            persist_id: std::cell::Cell::new(id),
        }))
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
        let (max_count, max_bytes) = (
            self.limits.max_retained_messages,
            self.limits.max_retained_bytes,
        );
        match rec {
            Record::RetainSet(m) => {
                if is_sys_topic(m.topic) || m.payload.is_empty() {
                    return Err("not a retained message");
                }
                let msg = self.restored_message(m, 0, now).ok_or("bad QoS")?;
                if self.retained.set(&msg, max_count, max_bytes) == RetainOutcome::Refused {
                    return Err("retained limits reached");
                }
            }
            Record::RetainClear { topic } => {
                let msg = Message {
                    topic: (*topic).into(),
                    payload: Box::new([]),
                    qos: QoS::AtMostOnce,
                    props: Box::new([]),
                    expires_at: None,
                    persist_id: std::cell::Cell::new(0),
                };
                self.retained.set(&Rc::new(msg), max_count, max_bytes);
            }
            Record::Session {
                sid,
                client_id,
                protocol,
                expiry,
                trusted,
                username,
            } => {
                let protocol = protocol_of(*protocol).ok_or("bad protocol level")?;
                st.max_sid = st.max_sid.max(*sid);
                st.offline.insert(*sid, None);
                if let Some(&key) = st.sids.get(sid) {
                    let s = self.sessions.get_mut(key.0).ok_or("unknown session")?;
                    s.protocol = protocol;
                    s.expiry_interval = *expiry;
                    s.trusted = *trusted;
                    s.username = username.map(Into::into);
                    return Ok(());
                }
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
                let mut s = Session::new(client_id, protocol, *expiry);
                s.persist_id = *sid;
                s.trusted = *trusted;
                // A bridge's session: its own queue bound, set before the
                // restore (see `Core::set_queue_policy`).
                s.policy = self.policies.get(*client_id).copied();
                s.username = username.map(Into::into);
                let key = SessionId(self.sessions.insert(s));
                self.by_client_id.insert(client_id, key, &self.sessions);
                st.sids.insert(*sid, key);
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
                let s = self.sessions.get_mut(key.0).ok_or("unknown session")?;
                let i = s.subscription_index(filter).ok_or("no such subscription")?;
                s.subscriptions.swap_remove(i);
                self.forget_subscription(key, filter);
            }
            Record::Routed {
                msg_id,
                body,
                inbound,
                recipients,
            } => {
                st.max_msg = st.max_msg.max(*msg_id);
                if let Some((psid, pid)) = inbound {
                    let s = self.session_of(st, *psid)?;
                    if *pid != 0 && !s.incoming_qos2.contains(pid) {
                        s.incoming_qos2.push(*pid);
                    }
                }
                if recipients.is_empty() {
                    return Ok(());
                }
                let msg = match (st.msgs.get(msg_id), body) {
                    (Some(m), _) => m.clone(),
                    (None, Some(b)) => {
                        let m = self.restored_message(b, *msg_id, now).ok_or("bad QoS")?;
                        if *msg_id != 0 {
                            st.msgs.insert(*msg_id, m.clone());
                        }
                        m
                    }
                    (None, None) => return Err("message body missing"),
                };
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
            Record::Sent { sid, msg_id, pid } => {
                let s = self.session_of(st, *sid)?;
                let pid = PacketId::new(*pid).ok_or("packet id 0")?;
                let i = s
                    .queue
                    .iter()
                    .position(|q| q.msg.persist_id.get() == *msg_id)
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
            }
            Record::Released { sid, msg_id } => {
                let s = self.session_of(st, *sid)?;
                let f = s
                    .inflight
                    .iter_mut()
                    .find(|f| f.pending.msg.persist_id.get() == *msg_id)
                    .ok_or("message not in flight")?;
                f.state = OutState::AwaitComp;
            }
            Record::Removed { sid, msg_id } => {
                let s = self.session_of(st, *sid)?;
                if let Some(i) = s
                    .inflight
                    .iter()
                    .position(|f| f.pending.msg.persist_id.get() == *msg_id)
                {
                    s.inflight.remove(i);
                } else {
                    let i = s
                        .queue
                        .iter()
                        .position(|q| q.msg.persist_id.get() == *msg_id)
                        .ok_or("message not queued")?;
                    if let Some(p) = s.queue.remove(i) {
                        s.queued_bytes = s.queued_bytes.saturating_sub(p.msg.cost());
                    }
                }
            }
            Record::InboundAdd { sid, pid } => {
                let s = self.session_of(st, *sid)?;
                if *pid == 0 {
                    return Err("packet id 0");
                }
                if !s.incoming_qos2.contains(pid) {
                    s.incoming_qos2.push(*pid);
                }
            }
            Record::InboundDel { sid, pid } => {
                let s = self.session_of(st, *sid)?;
                let i = s
                    .incoming_qos2
                    .iter()
                    .position(|p| p == pid)
                    .ok_or("packet id not held")?;
                s.incoming_qos2.swap_remove(i);
            }
            Record::WillSet { sid, due, will } => {
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
                let due = match &self.persist {
                    Some(p) => p.instant(*due, now),
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
                let s = self.session_of(st, *sid)?;
                s.pending_will = Some(Box::new((w, due)));
            }
            Record::WillClear { sid } => {
                let s = self.session_of(st, *sid)?;
                s.pending_will = None;
            }
        }
        Ok(())
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
            Some(group) => self.shared.join(group, inner, sid, entry),
            None => {
                self.trie.insert(filter, sid, entry);
            }
        }
        Ok(())
    }

    /// The whole durable state as records, for compaction: retained
    /// messages (not `$SYS`) and, in full mode, every persistent session
    /// with its subscriptions, messages, packet ids and delayed will.
    pub fn snapshot_records(&self) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        let Some(p) = self.persist.as_deref() else {
            return out;
        };
        let mut rec = |kind: u8, f: &mut dyn FnMut(&mut Writer<'_>)| {
            let mut b = Vec::new();
            f(&mut Writer(&mut b));
            out.push((kind, b));
        };
        self.retained.for_each(|m| {
            if !is_sys_topic(&m.topic) {
                rec(record::RETAIN_SET, &mut |w| write_msg(w, m, p));
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
            rec(record::SESSION, &mut |w| {
                w.u64(psid)
                    .str(&s.client_id)
                    .u8(s.protocol as u8)
                    .u32(s.expiry_interval)
                    .u8(u8::from(s.trusted));
                match &s.username {
                    Some(u) => w.u8(1).str(u),
                    None => w.u8(0),
                };
            });
            if s.conn.is_none() {
                // Offline since (expires_at - expiry).
                let off = match s.expires_at {
                    Some(at) => p.unix(at).saturating_sub(u64::from(s.expiry_interval)),
                    // Never expires: the time does not matter.
                    None => 0,
                };
                rec(record::SESSION_OFFLINE, &mut |w| {
                    w.u64(psid).u64(off).u32(s.expiry_interval);
                });
            }
            for sub in &s.subscriptions {
                rec(record::SUBSCRIBE, &mut |w| {
                    w.u64(psid)
                        .str(&sub.filter)
                        .u8(sub.entry.options.to_byte())
                        .u32(sub.entry.sub_id.unwrap_or(0));
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
                rec(record::ROUTED, &mut |w| {
                    w.u64(id);
                    if with_body {
                        w.u8(1);
                        write_msg(w, m, p);
                    } else {
                        w.u8(0);
                    }
                    w.u8(0).u32(1);
                    Recipient::write(w, psid, pending.qos as u8, pending.retain, &pending.sub_ids);
                });
                let Some(f) = inflight else { continue };
                if pending.qos != QoS::ExactlyOnce || id == 0 {
                    continue;
                }
                rec(record::SENT, &mut |w| {
                    w.u64(psid).u64(id).u16(f.pid.get());
                });
                if f.state == OutState::AwaitComp {
                    rec(record::RELEASED, &mut |w| {
                        w.u64(psid).u64(id);
                    });
                }
            }
            for &pid in &s.incoming_qos2 {
                rec(record::INBOUND_ADD, &mut |w| {
                    w.u64(psid).u16(pid);
                });
            }
            if let Some(b) = &s.pending_will {
                let (will, due) = &**b;
                let due = p.unix(*due);
                rec(record::WILL_SET, &mut |w| {
                    w.u64(psid).u64(due);
                    write_will(w, will);
                });
            }
        }
        out
    }
}
