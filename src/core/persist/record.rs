//! The records the core persists: kinds, and [`Record`] with its
//! [`decode`] and [`Record::emit`] side by side (each the other's inverse).
//!
//! A record is a kind byte and a body. Bodies are little-endian fixed-width
//! integers and length-prefixed (u32) byte strings, in the order of the
//! fields below. Decoding never panics: a record read from disk may be
//! damaged, so every read is checked and a short or malformed body gives
//! `None` (the caller skips it and counts it).
//!
//! Session ids in records are the core's persistent session numbers (not
//! slab keys); message ids number the messages written once by `ROUTED`
//! records and referenced by the later records of each session.

/// A retained message was stored: [`MsgBody`].
pub const RETAIN_SET: u8 = 1;
/// The retained message of a topic was cleared: topic.
pub const RETAIN_CLEAR: u8 = 2;
/// A persistent session was created or (re)connected: sid, client id,
/// protocol level, expiry interval, trusted, user name.
pub const SESSION: u8 = 3;
/// A persistent session ended: sid.
pub const SESSION_END: u8 = 4;
/// A persistent session lost its connection: sid, unix time, expiry interval.
pub const SESSION_OFFLINE: u8 = 5;
/// A subscription was made or replaced: sid, filter, options byte, sub id (0: none).
pub const SUBSCRIBE: u8 = 6;
/// A subscription was removed: sid, filter.
pub const UNSUBSCRIBE: u8 = 7;
/// A QoS 1/2 message was routed: message id, a body flag and [`MsgBody`],
/// the inbound QoS 2 packet id it came with (if any) and every persistent
/// session it was queued for. One record, so a torn write keeps all of it
/// or nothing.
pub const ROUTED: u8 = 8;
/// A queued QoS 2 message was sent with a packet id: sid, message id, packet id.
pub const SENT: u8 = 9;
/// An outgoing QoS 2 message got its PUBREC (PUBREL sent): sid, message id.
pub const RELEASED: u8 = 10;
/// A message left a session's queue (acknowledged, expired, dropped): sid, message id.
pub const REMOVED: u8 = 11;
/// An inbound QoS 2 packet id awaits PUBREL: sid, packet id (snapshots only;
/// the log carries it in `ROUTED`).
pub const INBOUND_ADD: u8 = 12;
/// An inbound QoS 2 packet id was released by PUBREL: sid, packet id.
pub const INBOUND_DEL: u8 = 13;
/// A will waits out its delay: sid, due unix time, will.
pub const WILL_SET: u8 = 14;
/// A delayed will was cancelled or published: sid.
pub const WILL_CLEAR: u8 = 15;

/// Appends little-endian fields to a record body.
pub struct Writer<'a>(pub &'a mut Vec<u8>);

impl Writer<'_> {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        // Every byte string the core holds is far below 4 GiB (packet size
        // limit); saturating keeps this total all the same.
        let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
        self.u32(len);
        self.0
            .extend_from_slice(b.get(..len as usize).unwrap_or_default());
        self
    }
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }
}

/// Reads fields back; every read is checked.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.buf.split_at_checked(n)?;
        self.buf = rest;
        Some(head)
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }
    pub fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        self.take(n)
    }
    pub fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
    pub fn bool(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    /// Whether the whole body was read (trailing bytes mean damage).
    pub fn done(&self) -> bool {
        self.buf.is_empty()
    }
}

/// An application message as written in `RETAIN_SET` and `ROUTED`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgBody<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub qos: u8,
    pub props: &'a [u8],
    /// Message expiry as unix seconds; 0 for none.
    pub expires: u64,
}

impl MsgBody<'_> {
    pub fn write(&self, w: &mut Writer<'_>) {
        w.str(self.topic)
            .bytes(self.payload)
            .u8(self.qos)
            .bytes(self.props)
            .u64(self.expires);
    }
}

fn read_msg<'a>(r: &mut Reader<'a>) -> Option<MsgBody<'a>> {
    let m = MsgBody {
        topic: r.str()?,
        payload: r.bytes()?,
        qos: r.u8()?,
        props: r.bytes()?,
        expires: r.u64()?,
    };
    (m.qos <= 2).then_some(m)
}

/// One session a routed message was queued for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub sid: u64,
    pub qos: u8,
    pub retain: bool,
    pub sub_ids: Vec<u32>,
}

impl Recipient {
    pub fn write(w: &mut Writer<'_>, sid: u64, qos: u8, retain: bool, sub_ids: &[u32]) {
        w.u64(sid).u8(qos).u8(u8::from(retain));
        w.u16(u16::try_from(sub_ids.len()).unwrap_or(u16::MAX));
        for &id in sub_ids.iter().take(usize::from(u16::MAX)) {
            w.u32(id);
        }
    }
}

/// A will as written in `WILL_SET`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WillBody<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub qos: u8,
    pub retain: bool,
    pub props: &'a [u8],
    /// Message expiry interval in seconds; `u64::MAX` for none.
    pub expiry: u64,
    pub delay: u32,
}

impl WillBody<'_> {
    pub fn write(&self, w: &mut Writer<'_>) {
        w.str(self.topic)
            .bytes(self.payload)
            .u8(self.qos)
            .u8(u8::from(self.retain))
            .bytes(self.props)
            .u64(self.expiry)
            .u32(self.delay);
    }
}

/// One record, decoded ([`decode`]) or to write ([`Record::emit`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    RetainSet(MsgBody<'a>),
    RetainClear {
        topic: &'a str,
    },
    Session {
        sid: u64,
        client_id: &'a str,
        protocol: u8,
        expiry: u32,
        trusted: bool,
        username: Option<&'a str>,
    },
    SessionEnd {
        sid: u64,
    },
    SessionOffline {
        sid: u64,
        at: u64,
        expiry: u32,
    },
    Subscribe {
        sid: u64,
        filter: &'a str,
        options: u8,
        sub_id: u32,
    },
    Unsubscribe {
        sid: u64,
        filter: &'a str,
    },
    Routed {
        msg_id: u64,
        body: Option<MsgBody<'a>>,
        inbound: Option<(u64, u16)>,
        recipients: Vec<Recipient>,
    },
    Sent {
        sid: u64,
        msg_id: u64,
        pid: u16,
    },
    Released {
        sid: u64,
        msg_id: u64,
    },
    Removed {
        sid: u64,
        msg_id: u64,
    },
    InboundAdd {
        sid: u64,
        pid: u16,
    },
    InboundDel {
        sid: u64,
        pid: u16,
    },
    WillSet {
        sid: u64,
        due: u64,
        will: WillBody<'a>,
    },
    WillClear {
        sid: u64,
    },
}

/// Decodes one record; `None` for an unknown kind or a damaged body.
pub fn decode(kind: u8, body: &[u8]) -> Option<Record<'_>> {
    let mut r = Reader::new(body);
    let rec = match kind {
        RETAIN_SET => Record::RetainSet(read_msg(&mut r)?),
        RETAIN_CLEAR => Record::RetainClear { topic: r.str()? },
        SESSION => Record::Session {
            sid: r.u64()?,
            client_id: r.str()?,
            protocol: r.u8()?,
            expiry: r.u32()?,
            trusted: r.bool()?,
            username: match r.bool()? {
                true => Some(r.str()?),
                false => None,
            },
        },
        SESSION_END => Record::SessionEnd { sid: r.u64()? },
        SESSION_OFFLINE => Record::SessionOffline {
            sid: r.u64()?,
            at: r.u64()?,
            expiry: r.u32()?,
        },
        SUBSCRIBE => Record::Subscribe {
            sid: r.u64()?,
            filter: r.str()?,
            options: r.u8()?,
            sub_id: r.u32()?,
        },
        UNSUBSCRIBE => Record::Unsubscribe {
            sid: r.u64()?,
            filter: r.str()?,
        },
        ROUTED => {
            let msg_id = r.u64()?;
            let body = match r.bool()? {
                true => Some(read_msg(&mut r)?),
                false => None,
            };
            let inbound = match r.bool()? {
                true => Some((r.u64()?, r.u16()?)),
                false => None,
            };
            let n = r.u32()?;
            let mut recipients = Vec::new();
            for _ in 0..n {
                let sid = r.u64()?;
                let qos = r.u8()?;
                let retain = r.bool()?;
                let k = r.u16()?;
                let mut sub_ids = Vec::new();
                for _ in 0..k {
                    sub_ids.push(r.u32()?);
                }
                if !(1..=2).contains(&qos) {
                    return None;
                }
                recipients.push(Recipient {
                    sid,
                    qos,
                    retain,
                    sub_ids,
                });
            }
            Record::Routed {
                msg_id,
                body,
                inbound,
                recipients,
            }
        }
        SENT => Record::Sent {
            sid: r.u64()?,
            msg_id: r.u64()?,
            pid: r.u16()?,
        },
        RELEASED => Record::Released {
            sid: r.u64()?,
            msg_id: r.u64()?,
        },
        REMOVED => Record::Removed {
            sid: r.u64()?,
            msg_id: r.u64()?,
        },
        INBOUND_ADD => Record::InboundAdd {
            sid: r.u64()?,
            pid: r.u16()?,
        },
        INBOUND_DEL => Record::InboundDel {
            sid: r.u64()?,
            pid: r.u16()?,
        },
        WILL_SET => Record::WillSet {
            sid: r.u64()?,
            due: r.u64()?,
            will: WillBody {
                topic: r.str()?,
                payload: r.bytes()?,
                qos: r.u8()?,
                retain: r.bool()?,
                props: r.bytes()?,
                expiry: r.u64()?,
                delay: r.u32()?,
            },
        },
        WILL_CLEAR => Record::WillClear { sid: r.u64()? },
        _ => return None,
    };
    r.done().then_some(rec)
}

/// Appends a `ROUTED` body whose `count` recipients are already written
/// into `recipients` (as [`Recipient::write`] does): a routing gathers
/// them as it delivers, without a list of its own.
pub fn emit_routed(
    w: &mut Writer<'_>,
    msg_id: u64,
    body: Option<&MsgBody<'_>>,
    inbound: Option<(u64, u16)>,
    count: u32,
    recipients: &[u8],
) {
    w.u64(msg_id);
    match body {
        Some(m) => m.write(w.u8(1)),
        None => {
            w.u8(0);
        }
    }
    match inbound {
        Some((sid, pid)) => w.u8(1).u64(sid).u16(pid),
        None => w.u8(0),
    };
    w.u32(count);
    w.0.extend_from_slice(recipients);
}

impl Record<'_> {
    /// The kind byte that [`decode`] takes with this record's body.
    pub fn kind(&self) -> u8 {
        match self {
            Record::RetainSet(_) => RETAIN_SET,
            Record::RetainClear { .. } => RETAIN_CLEAR,
            Record::Session { .. } => SESSION,
            Record::SessionEnd { .. } => SESSION_END,
            Record::SessionOffline { .. } => SESSION_OFFLINE,
            Record::Subscribe { .. } => SUBSCRIBE,
            Record::Unsubscribe { .. } => UNSUBSCRIBE,
            Record::Routed { .. } => ROUTED,
            Record::Sent { .. } => SENT,
            Record::Released { .. } => RELEASED,
            Record::Removed { .. } => REMOVED,
            Record::InboundAdd { .. } => INBOUND_ADD,
            Record::InboundDel { .. } => INBOUND_DEL,
            Record::WillSet { .. } => WILL_SET,
            Record::WillClear { .. } => WILL_CLEAR,
        }
    }

    /// Appends the record's body, as [`decode`] reads it back.
    pub fn emit(&self, w: &mut Writer<'_>) {
        match self {
            Record::RetainSet(m) => m.write(w),
            Record::RetainClear { topic } => {
                w.str(topic);
            }
            Record::Session {
                sid,
                client_id,
                protocol,
                expiry,
                trusted,
                username,
            } => {
                w.u64(*sid)
                    .str(client_id)
                    .u8(*protocol)
                    .u32(*expiry)
                    .u8(u8::from(*trusted));
                match username {
                    Some(u) => w.u8(1).str(u),
                    None => w.u8(0),
                };
            }
            Record::SessionEnd { sid } | Record::WillClear { sid } => {
                w.u64(*sid);
            }
            Record::SessionOffline { sid, at, expiry } => {
                w.u64(*sid).u64(*at).u32(*expiry);
            }
            Record::Subscribe {
                sid,
                filter,
                options,
                sub_id,
            } => {
                w.u64(*sid).str(filter).u8(*options).u32(*sub_id);
            }
            Record::Unsubscribe { sid, filter } => {
                w.u64(*sid).str(filter);
            }
            Record::Routed {
                msg_id,
                body,
                inbound,
                recipients,
            } => {
                let mut list = Vec::new();
                for r in recipients {
                    Recipient::write(&mut Writer(&mut list), r.sid, r.qos, r.retain, &r.sub_ids);
                }
                let count = u32::try_from(recipients.len()).unwrap_or(u32::MAX);
                emit_routed(w, *msg_id, body.as_ref(), *inbound, count, &list);
            }
            Record::Sent { sid, msg_id, pid } => {
                w.u64(*sid).u64(*msg_id).u16(*pid);
            }
            Record::Released { sid, msg_id } | Record::Removed { sid, msg_id } => {
                w.u64(*sid).u64(*msg_id);
            }
            Record::InboundAdd { sid, pid } | Record::InboundDel { sid, pid } => {
                w.u64(*sid).u16(*pid);
            }
            Record::WillSet { sid, due, will } => {
                w.u64(*sid).u64(*due);
                will.write(w);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Record<'static>> {
        let msg = MsgBody {
            topic: "shellies/button1/input_event/0",
            payload: br#"{"event":"S","event_cnt":7}"#,
            qos: 1,
            props: &[0x01, 1],
            expires: 1_700_000_000,
        };
        vec![
            Record::RetainSet(msg.clone()),
            Record::RetainClear { topic: "a/b" },
            Record::Session {
                sid: 3,
                client_id: "panel",
                protocol: 5,
                expiry: u32::MAX,
                trusted: true,
                username: Some("op"),
            },
            Record::Session {
                sid: 4,
                client_id: "",
                protocol: 4,
                expiry: 60,
                trusted: false,
                username: None,
            },
            Record::SessionEnd { sid: 3 },
            Record::SessionOffline {
                sid: 3,
                at: 1_700_000_100,
                expiry: 3600,
            },
            Record::Subscribe {
                sid: 3,
                filter: "shellies/+/input_event/#",
                options: 0x2A,
                sub_id: 7,
            },
            Record::Unsubscribe {
                sid: 3,
                filter: "x",
            },
            Record::Routed {
                msg_id: 9,
                body: Some(msg.clone()),
                inbound: Some((3, 17)),
                recipients: vec![
                    Recipient {
                        sid: 3,
                        qos: 1,
                        retain: false,
                        sub_ids: vec![],
                    },
                    Recipient {
                        sid: 4,
                        qos: 2,
                        retain: true,
                        sub_ids: vec![1, 268_435_455],
                    },
                ],
            },
            Record::Routed {
                msg_id: 0,
                body: None,
                inbound: Some((3, 1)),
                recipients: vec![],
            },
            Record::Sent {
                sid: 3,
                msg_id: 9,
                pid: 65535,
            },
            Record::Released { sid: 3, msg_id: 9 },
            Record::Removed { sid: 4, msg_id: 9 },
            Record::InboundAdd { sid: 3, pid: 1 },
            Record::InboundDel { sid: 3, pid: 1 },
            Record::WillSet {
                sid: 3,
                due: 1_700_000_200,
                will: WillBody {
                    topic: "panel/status",
                    payload: b"offline",
                    qos: 1,
                    retain: true,
                    props: &[],
                    expiry: u64::MAX,
                    delay: 30,
                },
            },
            Record::WillClear { sid: 3 },
        ]
    }

    #[test]
    fn every_record_decodes_to_what_was_emitted() {
        for r in samples() {
            let mut body = Vec::new();
            r.emit(&mut Writer(&mut body));
            assert_eq!(decode(r.kind(), &body), Some(r.clone()), "{body:?}");
        }
    }

    #[test]
    fn a_cut_or_padded_body_decodes_to_nothing() {
        for r in samples() {
            let mut body = Vec::new();
            r.emit(&mut Writer(&mut body));
            for n in 0..body.len() {
                assert_eq!(decode(r.kind(), &body[..n]), None, "{r:?} cut at {n}");
            }
            body.push(0);
            assert_eq!(decode(r.kind(), &body), None, "{r:?} with a trailing byte");
        }
    }
}
