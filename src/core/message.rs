//! The messages the core carries: one coming in ([`Incoming`], borrowed),
//! one kept ([`Message`], shared by the sessions it goes to), one queued
//! for a session ([`Pending`]), and a connection's will ([`WillMsg`], built
//! from [`WillParts`]).

use std::rc::Rc;
use std::time::Instant;

use super::charge::{Charge, MESSAGE_OVERHEAD, Meter};
use crate::codec::QoS;

/// A message on its way into the router, borrowed from wherever it came
/// from (a PUBLISH frame, a will, the in-process client).
pub(crate) struct Incoming<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub qos: QoS,
    pub retain: bool,
    /// Properties to forward (see `Message::props`).
    pub props: &'a [u8],
    /// Message expiry interval in seconds, if any.
    pub expiry: Option<u32>,
}

/// An application message as the broker keeps it once it must outlive the
/// packet it came in (queued, in flight, retained). Shared by every session
/// it goes to: one thread, so `Rc` is enough.
#[derive(Debug)]
pub(crate) struct Message {
    pub topic: Box<str>,
    pub payload: Box<[u8]>,
    /// QoS it was published with.
    pub qos: QoS,
    /// 5.0 properties passed through to subscribers untouched and in order
    /// (payload format, content type, response topic, correlation data,
    /// user properties). Topic alias, subscription identifiers and message
    /// expiry are not in here: they are per hop or per subscriber.
    pub props: Box<[u8]>,
    /// 5.0 message expiry: not delivered after this instant [MQTT-3.3.2-5].
    pub expires_at: Option<Instant>,
    /// Number of the message in the persistence records; 0 until it is
    /// first written for a persistent session.
    pub persist_id: std::cell::Cell<u64>,
    /// Its share of the memory budget, given back when the last holder
    /// drops it (see `budget.rs`).
    _charge: Charge,
}

impl Message {
    /// A message to keep, its cost counted on `meter` until it is dropped.
    pub fn new(
        topic: Box<str>,
        payload: Box<[u8]>,
        qos: QoS,
        props: Box<[u8]>,
        expires_at: Option<Instant>,
        meter: &Meter,
    ) -> Message {
        let bytes = topic.len() + payload.len() + props.len() + MESSAGE_OVERHEAD;
        Message {
            topic,
            payload,
            qos,
            props,
            expires_at,
            persist_id: std::cell::Cell::new(0),
            _charge: Charge::new(meter, bytes),
        }
    }

    /// Bytes this message accounts for in queue and retained limits.
    pub fn cost(&self) -> usize {
        self.topic.len() + self.payload.len() + self.props.len()
    }

    /// Whether its message expiry has passed.
    pub fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// The message expiry interval to forward: what is left of it, in whole
    /// seconds rounded up [MQTT-3.3.2-6], so a message forwarded within the
    /// second it arrived keeps its interval (as with Mosquitto's clock).
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        self.expires_at.map(|t| {
            let left = t.saturating_duration_since(now);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            u32::try_from(secs).unwrap_or(u32::MAX)
        })
    }
}

/// A message waiting in a session's queue.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub msg: Rc<Message>,
    /// QoS it is to be delivered with (the minimum of published and granted).
    pub qos: QoS,
    /// RETAIN flag it is to be delivered with.
    pub retain: bool,
    /// 5.0 subscription identifiers of the matching subscriptions [MQTT-3.3.4-3].
    pub sub_ids: Box<[u32]>,
}

/// A will message held until the connection ends (MQTT 3.1.1 §3.1.2.5,
/// 5.0 §3.1.3.2). Topic, payload and properties are one allocation behind
/// a small header: every Shelly device connects with a will, so an idle
/// connection's will is one heap block (docs/LIMITS.md).
#[derive(Clone, Debug)]
pub(crate) struct WillMsg(Box<[u8]>);

/// Byte ranges of the header of a [`WillMsg`]. Topic and payload lengths
/// fit two bytes: both have a two-byte length in CONNECT [MQTT 1.5.4, 1.5.6].
mod will_layout {
    use std::ops::Range;
    /// QoS in bits 0-1, then the flags below.
    pub const FLAGS: usize = 0;
    pub const QOS_MASK: u8 = 0x03;
    pub const RETAIN: u8 = 0x04;
    /// The message expiry interval below is present.
    pub const HAS_EXPIRY: u8 = 0x08;
    pub const EXPIRY: Range<usize> = 1..5;
    pub const DELAY: Range<usize> = 5..9;
    pub const TOPIC_LEN: Range<usize> = 9..11;
    pub const PAYLOAD_LEN: Range<usize> = 11..13;
    pub const HEADER: usize = 13;
}

/// The parts of a will, to build a [`WillMsg`] from.
pub(crate) struct WillParts<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub qos: QoS,
    pub retain: bool,
    /// Will properties to forward (see `Message::props`).
    pub props: &'a [u8],
    /// 5.0 message expiry interval of the will, in seconds.
    pub expiry: Option<u32>,
    /// 5.0 will delay interval, in seconds.
    pub delay: u32,
}

impl WillMsg {
    pub fn new(p: &WillParts<'_>) -> WillMsg {
        use will_layout as l;
        let mut b = Vec::with_capacity(l::HEADER + p.topic.len() + p.payload.len() + p.props.len());
        b.resize(l::HEADER, 0);
        let mut flags = p.qos as u8 & l::QOS_MASK;
        if p.retain {
            flags |= l::RETAIN;
        }
        if p.expiry.is_some() {
            flags |= l::HAS_EXPIRY;
        }
        b[l::FLAGS] = flags;
        b[l::EXPIRY].copy_from_slice(&p.expiry.unwrap_or(0).to_le_bytes());
        b[l::DELAY].copy_from_slice(&p.delay.to_le_bytes());
        // Two-byte lengths on the wire, so these fit; were they not, the
        // stored will would come out cut, never read out of bounds.
        let len16 = |n: usize| u16::try_from(n).unwrap_or(u16::MAX).to_le_bytes();
        b[l::TOPIC_LEN].copy_from_slice(&len16(p.topic.len()));
        b[l::PAYLOAD_LEN].copy_from_slice(&len16(p.payload.len()));
        b.extend_from_slice(p.topic.as_bytes());
        b.extend_from_slice(p.payload);
        b.extend_from_slice(p.props);
        WillMsg(b.into_boxed_slice())
    }

    fn u32_at(&self, r: std::ops::Range<usize>) -> u32 {
        self.0
            .get(r)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, u32::from_le_bytes)
    }

    fn u16_at(&self, r: std::ops::Range<usize>) -> usize {
        self.0
            .get(r)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map_or(0, |b| usize::from(u16::from_le_bytes(b)))
    }

    fn flags(&self) -> u8 {
        self.0.get(will_layout::FLAGS).copied().unwrap_or(0)
    }

    /// Where the topic, the payload and the properties start and end.
    fn bounds(&self) -> (usize, usize) {
        let t = will_layout::HEADER + self.u16_at(will_layout::TOPIC_LEN);
        (t, t + self.u16_at(will_layout::PAYLOAD_LEN))
    }

    pub fn topic(&self) -> &str {
        let (t, _) = self.bounds();
        // Stored from a `&str`, so always valid.
        self.0
            .get(will_layout::HEADER..t)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    pub fn payload(&self) -> &[u8] {
        let (t, p) = self.bounds();
        self.0.get(t..p).unwrap_or(&[])
    }

    /// Will properties to forward (see `Message::props`).
    pub fn props(&self) -> &[u8] {
        let (_, p) = self.bounds();
        self.0.get(p..).unwrap_or(&[])
    }

    pub fn qos(&self) -> QoS {
        QoS::from_u8(self.flags() & will_layout::QOS_MASK).unwrap_or(QoS::AtMostOnce)
    }

    pub fn retain(&self) -> bool {
        self.flags() & will_layout::RETAIN != 0
    }

    /// 5.0 message expiry interval of the will, in seconds.
    pub fn expiry(&self) -> Option<u32> {
        (self.flags() & will_layout::HAS_EXPIRY != 0).then(|| self.u32_at(will_layout::EXPIRY))
    }

    /// 5.0 will delay interval, in seconds.
    pub fn delay(&self) -> u32 {
        self.u32_at(will_layout::DELAY)
    }
}
