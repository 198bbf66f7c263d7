//! The records the core persists: kinds, encoding and decoding.
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

/// A decoded record.
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
