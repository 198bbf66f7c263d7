//! Packet views and their decoding. Encoding is in `encode.rs`.
//!
//! CONTRACT: the type and function signatures below are used by the core.

use super::primitives::{Reader, decode_varint};
use super::properties::PropCtx;
use super::{DecodeError, PacketId, Properties, ProtocolVersion, QoS};

/// Packet type numbers (upper nibble of the first byte) [MQTT-2.2.1].
pub mod packet_type {
    /// CONNECT.
    pub const CONNECT: u8 = 1;
    /// CONNACK.
    pub const CONNACK: u8 = 2;
    /// PUBLISH.
    pub const PUBLISH: u8 = 3;
    /// PUBACK.
    pub const PUBACK: u8 = 4;
    /// PUBREC.
    pub const PUBREC: u8 = 5;
    /// PUBREL.
    pub const PUBREL: u8 = 6;
    /// PUBCOMP.
    pub const PUBCOMP: u8 = 7;
    /// SUBSCRIBE.
    pub const SUBSCRIBE: u8 = 8;
    /// SUBACK.
    pub const SUBACK: u8 = 9;
    /// UNSUBSCRIBE.
    pub const UNSUBSCRIBE: u8 = 10;
    /// UNSUBACK.
    pub const UNSUBACK: u8 = 11;
    /// PINGREQ.
    pub const PINGREQ: u8 = 12;
    /// PINGRESP.
    pub const PINGRESP: u8 = 13;
    /// DISCONNECT.
    pub const DISCONNECT: u8 = 14;
    /// AUTH (5.0 only).
    pub const AUTH: u8 = 15;
}

/// The will message carried by CONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Will<'a> {
    /// Will topic (validated as a topic name: no wildcards, not empty).
    pub topic: &'a str,
    /// Will payload.
    pub payload: &'a [u8],
    /// Will QoS.
    pub qos: QoS,
    /// Will retain flag.
    pub retain: bool,
    /// Will properties (5.0; empty otherwise).
    pub properties: Properties<'a>,
}

/// CONNECT [MQTT 3.1.1 §3.1, 5.0 §3.1].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect<'a> {
    /// Protocol level.
    pub protocol: ProtocolVersion,
    /// Clean session (3.1.1) / clean start (5.0).
    pub clean_start: bool,
    /// Keep alive in seconds; 0 turns it off.
    pub keep_alive: u16,
    /// CONNECT properties (5.0; empty otherwise).
    pub properties: Properties<'a>,
    /// Client identifier, possibly empty.
    pub client_id: &'a str,
    /// Will, when the will flag is set.
    pub will: Option<Will<'a>>,
    /// User name, when its flag is set.
    pub username: Option<&'a str>,
    /// Password, when its flag is set.
    pub password: Option<&'a [u8]>,
}

/// CONNACK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connack<'a> {
    /// Session present flag.
    pub session_present: bool,
    /// Return code (3.1.1) or reason code (5.0).
    pub code: u8,
    /// CONNACK properties (5.0; empty otherwise).
    pub properties: Properties<'a>,
}

/// PUBLISH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish<'a> {
    /// DUP flag.
    pub dup: bool,
    /// QoS.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// Topic name; empty only in 5.0 (then a topic alias must be present,
    /// which the core checks).
    pub topic: &'a str,
    /// Packet identifier; `Some` exactly when `qos > 0`.
    pub packet_id: Option<PacketId>,
    /// PUBLISH properties (5.0; empty otherwise).
    pub properties: Properties<'a>,
    /// Application payload.
    pub payload: &'a [u8],
}

/// Which acknowledgement of the QoS 1/2 flows a [`PubResp`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PubRespKind {
    /// PUBACK (QoS 1).
    PubAck,
    /// PUBREC (QoS 2, step 1).
    PubRec,
    /// PUBREL (QoS 2, step 2; fixed-header flags 0b0010).
    PubRel,
    /// PUBCOMP (QoS 2, step 3).
    PubComp,
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PubResp<'a> {
    /// Which of the four.
    pub kind: PubRespKind,
    /// Packet identifier.
    pub packet_id: PacketId,
    /// Reason code (5.0; 0x00 success, also when omitted on the wire). Always 0 before 5.0.
    pub reason: u8,
    /// Properties (5.0; empty otherwise).
    pub properties: Properties<'a>,
}

/// Subscription options byte [MQTT 5.0 §3.8.3.1]. Before 5.0 only `qos` is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubOptions {
    /// Maximum QoS.
    pub qos: QoS,
    /// No Local (5.0).
    pub no_local: bool,
    /// Retain As Published (5.0).
    pub retain_as_published: bool,
    /// Retain Handling 0, 1 or 2 (5.0).
    pub retain_handling: u8,
}

/// SUBSCRIBE (fixed-header flags 0b0010).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribe<'a> {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// Properties (5.0; empty otherwise).
    pub properties: Properties<'a>,
    /// The validated raw topic filter list; iterate with [`Subscribe::filters`].
    pub raw_filters: &'a [u8],
    /// Protocol the list was decoded with.
    pub protocol: ProtocolVersion,
}

/// UNSUBSCRIBE (fixed-header flags 0b0010).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe<'a> {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// Properties (5.0; empty otherwise).
    pub properties: Properties<'a>,
    /// The validated raw topic filter list; iterate with [`Unsubscribe::filters`].
    pub raw_filters: &'a [u8],
}

/// SUBACK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suback<'a> {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// Properties (5.0; empty otherwise).
    pub properties: Properties<'a>,
    /// One return/reason code per filter, in order.
    pub codes: &'a [u8],
}

/// UNSUBACK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsuback<'a> {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// Properties (5.0; empty otherwise).
    pub properties: Properties<'a>,
    /// One reason code per filter (5.0); empty before 5.0.
    pub codes: &'a [u8],
}

/// DISCONNECT. Before 5.0 it has no body: `reason` 0 and no properties.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disconnect<'a> {
    /// Reason code (5.0; 0x00 when omitted).
    pub reason: u8,
    /// Properties (5.0).
    pub properties: Properties<'a>,
}

/// AUTH (5.0 only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth<'a> {
    /// Reason code (0x00 when omitted).
    pub reason: u8,
    /// Properties.
    pub properties: Properties<'a>,
}

/// Any decoded packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// CONNECT.
    Connect(Connect<'a>),
    /// CONNACK.
    Connack(Connack<'a>),
    /// PUBLISH.
    Publish(Publish<'a>),
    /// PUBACK, PUBREC, PUBREL, PUBCOMP.
    PubResp(PubResp<'a>),
    /// SUBSCRIBE.
    Subscribe(Subscribe<'a>),
    /// SUBACK.
    Suback(Suback<'a>),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe<'a>),
    /// UNSUBACK.
    Unsuback(Unsuback<'a>),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT.
    Disconnect(Disconnect<'a>),
    /// AUTH.
    Auth(Auth<'a>),
}

impl SubOptions {
    /// Options asking for `qos` only, everything else at its default: the
    /// only meaningful options before 5.0.
    pub fn qos_only(qos: QoS) -> SubOptions {
        SubOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: 0,
        }
    }

    /// The options byte [MQTT 5.0 §3.8.3.1]: QoS in bits 0-1, No Local bit 2,
    /// Retain As Published bit 3, Retain Handling bits 4-5. Fields out of
    /// range are masked off.
    pub fn to_byte(self) -> u8 {
        (self.qos as u8)
            | (u8::from(self.no_local) << 2)
            | (u8::from(self.retain_as_published) << 3)
            | ((self.retain_handling & 0x03) << 4)
    }

    /// Parses an options byte as `version` defines it.
    ///
    /// Before 5.0 the upper six bits are reserved and must be 0, and QoS 3 is
    /// invalid [MQTT-3-8.3-4] (sic, 3.1.1's tag). In 5.0 bits 6-7 are reserved
    /// [MQTT-3.8.3-5], and QoS 3 and Retain Handling 3 are Protocol Errors
    /// [MQTT 5.0 §3.8.3.1]. All are [`DecodeError::InvalidSubscriptionOptions`].
    pub fn from_byte(b: u8, version: ProtocolVersion) -> Result<SubOptions, DecodeError> {
        let qos = QoS::from_u8(b & 0x03).ok_or(DecodeError::InvalidSubscriptionOptions)?;
        if !version.is_v5() {
            // [MQTT-3-8.3-4]
            if b & 0xFC != 0 {
                return Err(DecodeError::InvalidSubscriptionOptions);
            }
            return Ok(SubOptions::qos_only(qos));
        }
        // [MQTT-3.8.3-5]
        if b & 0xC0 != 0 {
            return Err(DecodeError::InvalidSubscriptionOptions);
        }
        let retain_handling = (b >> 4) & 0x03;
        // [MQTT 5.0 §3.8.3.1] "It is a Protocol Error to send a Retain Handling value of 3".
        if retain_handling == 3 {
            return Err(DecodeError::InvalidSubscriptionOptions);
        }
        Ok(SubOptions {
            qos,
            no_local: b & 0x04 != 0,
            retain_as_published: b & 0x08 != 0,
            retain_handling,
        })
    }
}

impl<'a> Subscribe<'a> {
    /// The (topic filter, options) pairs, in order. Filters are UTF-8
    /// checked but their wildcard syntax is not: that is the core's to judge
    /// (SUBACK 0x80 / 0x8F).
    pub fn filters(&self) -> SubscribeFilters<'a> {
        SubscribeFilters {
            r: Reader::new(self.raw_filters),
            version: self.protocol,
        }
    }
}

/// Iterator over a SUBSCRIBE's (topic filter, options) pairs. It stops at
/// the first inconsistency instead of panicking.
#[derive(Clone, Debug)]
pub struct SubscribeFilters<'a> {
    r: Reader<'a>,
    version: ProtocolVersion,
}

impl<'a> Iterator for SubscribeFilters<'a> {
    type Item = (&'a str, SubOptions);
    fn next(&mut self) -> Option<Self::Item> {
        if self.r.is_empty() {
            return None;
        }
        let item = (|| {
            let filter = self.r.string()?;
            let opts = SubOptions::from_byte(self.r.u8()?, self.version)?;
            Ok::<_, DecodeError>((filter, opts))
        })();
        if item.is_err() {
            self.r.take_rest();
        }
        item.ok()
    }
}

impl<'a> Unsubscribe<'a> {
    /// The topic filters, in order.
    pub fn filters(&self) -> UnsubscribeFilters<'a> {
        UnsubscribeFilters {
            r: Reader::new(self.raw_filters),
        }
    }
}

/// Iterator over an UNSUBSCRIBE's topic filters. It stops at the first
/// inconsistency instead of panicking.
#[derive(Clone, Debug)]
pub struct UnsubscribeFilters<'a> {
    r: Reader<'a>,
}

impl<'a> Iterator for UnsubscribeFilters<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        if self.r.is_empty() {
            return None;
        }
        let item = self.r.string();
        if item.is_err() {
            self.r.take_rest();
        }
        item.ok()
    }
}

/// Total size of the frame at the start of `buf` once its fixed header is
/// complete: `Ok(None)` if the fixed header itself is incomplete;
/// `Err(MalformedRemainingLength)` for a 5th length byte with continuation;
/// `Err(PacketTooLarge{size})` if the whole frame (header included) exceeds
/// `max_packet_size` — detectable from the header alone, before the body
/// arrives.
pub fn frame_len(buf: &[u8], max_packet_size: usize) -> Result<Option<usize>, DecodeError> {
    let Some(len_bytes) = buf.get(1..) else {
        return Ok(None);
    };
    // [MQTT-2.2.3] / [MQTT 5.0 §1.5.5]: at most four bytes.
    let Some((remaining, n)) = decode_varint(len_bytes)? else {
        return Ok(None);
    };
    let size = (remaining as usize).saturating_add(1 + n);
    if size > max_packet_size {
        return Err(DecodeError::PacketTooLarge { size });
    }
    Ok(Some(size))
}

/// Checks the first byte of a frame: packet type [MQTT-2.2.1] and the
/// reserved flag bits [MQTT-2.2.2-1], [MQTT-2.2.2-2].
fn check_first_byte(first: u8, version: ProtocolVersion) -> Result<(), DecodeError> {
    use packet_type as t;
    let kind = first >> 4;
    let flags = first & 0x0F;
    let expected = match kind {
        // Reserved type 0; AUTH exists only in 5.0.
        0 => return Err(DecodeError::InvalidPacketType(kind)),
        t::AUTH if !version.is_v5() => return Err(DecodeError::InvalidPacketType(kind)),
        t::PUBLISH => {
            let qos = (flags >> 1) & 0x03;
            // [MQTT-3.3.1-4]
            if qos == 3 {
                return Err(DecodeError::InvalidQoS);
            }
            // [MQTT-3.3.1-2]
            if qos == 0 && flags & 0x08 != 0 {
                return Err(DecodeError::DupWithQoS0);
            }
            return Ok(());
        }
        // CONNECT's flags are checked once its level is known: MQTT 3.1
        // had DUP/QoS/RETAIN bits in every fixed header, ignored on CONNECT
        // (Mosquitto accepts them there).
        t::CONNECT => return Ok(()),
        t::PUBREL | t::SUBSCRIBE | t::UNSUBSCRIBE => 0b0010,
        _ => 0b0000,
    };
    // MQTT 3.1 set DUP on a resent PUBREL, SUBSCRIBE or UNSUBSCRIBE.
    if version == ProtocolVersion::V31 && expected == 0b0010 && flags == 0b1010 {
        return Ok(());
    }
    // [MQTT-2.2.2-1], [MQTT-2.2.2-2]
    if flags != expected {
        return Err(DecodeError::InvalidFixedHeaderFlags);
    }
    Ok(())
}

/// Decode one packet from the start of `buf`. `Ok(None)` = need more bytes;
/// `Ok(Some((packet, consumed)))` otherwise.
///
/// `version` is the connection's protocol level (V311 before CONNECT is
/// seen); a CONNECT is decoded by the level it carries. Properties and reason
/// codes are parsed only for 5.0. The first byte is checked as soon as it is
/// there, and the size as soon as the fixed header is complete, so both
/// errors come before the body is buffered.
pub fn decode<'a>(
    buf: &'a [u8],
    version: ProtocolVersion,
    max_packet_size: usize,
) -> Result<Option<(Packet<'a>, usize)>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    check_first_byte(first, version)?;
    let Some(size) = frame_len(buf, max_packet_size)? else {
        return Ok(None);
    };
    let Some(frame) = buf.get(..size) else {
        return Ok(None);
    };
    // The header is complete, so this re-decode succeeds; the fallback only
    // keeps the code free of panics.
    let header_len = match decode_varint(frame.get(1..).unwrap_or_default())? {
        Some((_, n)) => 1 + n,
        None => return Err(DecodeError::Truncated),
    };
    let body = frame.get(header_len..).unwrap_or_default();
    let packet = decode_body(first, body, version)?;
    Ok(Some((packet, size)))
}

/// Decodes the variable header and payload of a frame whose first byte
/// already passed [`check_first_byte`].
fn decode_body(
    first: u8,
    body: &[u8],
    version: ProtocolVersion,
) -> Result<Packet<'_>, DecodeError> {
    use packet_type as t;
    let mut r = Reader::new(body);
    let packet = match first >> 4 {
        t::CONNECT => Packet::Connect(decode_connect(first, &mut r)?),
        t::CONNACK => Packet::Connack(decode_connack(&mut r, version)?),
        t::PUBLISH => Packet::Publish(decode_publish(first, &mut r, version)?),
        t::PUBACK => Packet::PubResp(decode_pub_resp(PubRespKind::PubAck, &mut r, version)?),
        t::PUBREC => Packet::PubResp(decode_pub_resp(PubRespKind::PubRec, &mut r, version)?),
        t::PUBREL => Packet::PubResp(decode_pub_resp(PubRespKind::PubRel, &mut r, version)?),
        t::PUBCOMP => Packet::PubResp(decode_pub_resp(PubRespKind::PubComp, &mut r, version)?),
        t::SUBSCRIBE => Packet::Subscribe(decode_subscribe(&mut r, version)?),
        t::SUBACK => Packet::Suback(decode_suback(&mut r, version)?),
        t::UNSUBSCRIBE => Packet::Unsubscribe(decode_unsubscribe(&mut r, version)?),
        t::UNSUBACK => Packet::Unsuback(decode_unsuback(&mut r, version)?),
        // [MQTT-3.12.1], [MQTT-3.13.1]: no variable header, no payload.
        t::PINGREQ => Packet::PingReq,
        t::PINGRESP => Packet::PingResp,
        t::DISCONNECT => {
            let (reason, properties) = if version.is_v5() {
                decode_reason_and_properties(&mut r, PropCtx::Disconnect, DISCONNECT_REASONS)?
            } else {
                // 3.1.1 §3.14: no variable header, no payload.
                (0, Properties::EMPTY)
            };
            Packet::Disconnect(Disconnect { reason, properties })
        }
        t::AUTH => {
            let (reason, properties) =
                decode_reason_and_properties(&mut r, PropCtx::Auth, AUTH_REASONS)?;
            Packet::Auth(Auth { reason, properties })
        }
        other => return Err(DecodeError::InvalidPacketType(other)),
    };
    r.finish()?;
    Ok(packet)
}

/// Reason codes a 5.0 CONNACK may carry [MQTT 5.0 §3.2.2.2].
const CONNACK_REASONS: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
/// Reason codes of PUBACK and PUBREC [MQTT 5.0 §3.4.2.1, §3.5.2.1].
const PUBACK_REASONS: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
/// Reason codes of PUBREL and PUBCOMP [MQTT 5.0 §3.6.2.1, §3.7.2.1].
const PUBREL_REASONS: &[u8] = &[0x00, 0x92];
/// Return codes of a 3.1.1 SUBACK [MQTT-3.9.3-2].
const SUBACK_RETURN_CODES: &[u8] = &[0x00, 0x01, 0x02, 0x80];
/// Reason codes of a 5.0 SUBACK [MQTT 5.0 §3.9.3].
const SUBACK_REASONS: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
/// Reason codes of a 5.0 UNSUBACK [MQTT 5.0 §3.11.3].
const UNSUBACK_REASONS: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
/// Reason codes of DISCONNECT [MQTT 5.0 §3.14.2.1].
const DISCONNECT_REASONS: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
/// Reason codes of AUTH [MQTT 5.0 §3.15.2.1].
const AUTH_REASONS: &[u8] = &[0x00, 0x18, 0x19];

fn check_reason(code: u8, allowed: &[u8]) -> Result<u8, DecodeError> {
    if allowed.contains(&code) {
        Ok(code)
    } else {
        Err(DecodeError::InvalidReasonCode(code))
    }
}

/// A topic name (PUBLISH, will): no wildcard characters [MQTT-3.3.2-2],
/// at least one character [MQTT-4.7.3-1] unless `allow_empty`.
fn check_topic_name(topic: &str, allow_empty: bool) -> Result<(), DecodeError> {
    // [MQTT-4.7.3-1] a topic name is at least one character long.
    if topic.is_empty() && !allow_empty {
        return Err(DecodeError::EmptyTopicName);
    }
    // [MQTT-3.3.2-2], [MQTT-4.7.1-1] no wildcards in a topic name.
    if topic.contains(['+', '#']) {
        return Err(DecodeError::WildcardInTopicName);
    }
    Ok(())
}

/// The optional "reason code, then properties" tail of 5.0 DISCONNECT and
/// AUTH [MQTT 5.0 §3.14.2.1, §3.15.2.1]: absent means reason 0x00 and no
/// properties; a lone reason code means no properties.
fn decode_reason_and_properties<'a>(
    r: &mut Reader<'a>,
    ctx: PropCtx,
    allowed: &[u8],
) -> Result<(u8, Properties<'a>), DecodeError> {
    if r.is_empty() {
        return Ok((0, Properties::EMPTY));
    }
    let reason = check_reason(r.u8()?, allowed)?;
    if r.is_empty() {
        return Ok((reason, Properties::EMPTY));
    }
    Ok((reason, Properties::decode(r, ctx)?))
}

fn decode_connect<'a>(first: u8, r: &mut Reader<'a>) -> Result<Connect<'a>, DecodeError> {
    // [MQTT-3.1.2-1] protocol name; compared as bytes, so a non-UTF-8 name is
    // simply not a known one.
    let name = r.binary()?;
    let level = r.u8()?;
    let protocol = match (name, level) {
        (b"MQTT", 4) => ProtocolVersion::V311,
        (b"MQTT", 5) => ProtocolVersion::V5,
        (b"MQIsdp", 3) => ProtocolVersion::V31,
        // [MQTT-3.1.2-2] known name, unknown level: CONNACK 0x01 / 0x84.
        (b"MQTT" | b"MQIsdp", _) => return Err(DecodeError::UnsupportedProtocolVersion(level)),
        _ => return Err(DecodeError::InvalidProtocolName),
    };
    let v5 = protocol.is_v5();
    let v31 = protocol == ProtocolVersion::V31;
    // [MQTT-2.2.2-1] [MQTT-2.2.2-2]; MQTT 3.1 defines no such rule.
    if first & 0x0F != 0 && !v31 {
        return Err(DecodeError::InvalidFixedHeaderFlags);
    }
    let flags = r.u8()?;
    // [MQTT-3.1.2-3] reserved flag must be 0; MQTT 3.1 left the bit unused
    // and Mosquitto ignores it there.
    if flags & 0x01 != 0 && !v31 {
        return Err(DecodeError::ConnectReservedFlag);
    }
    let clean_start = flags & 0x02 != 0;
    let will_flag = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 0x03;
    let will_retain = flags & 0x20 != 0;
    let password_flag = flags & 0x40 != 0;
    let username_flag = flags & 0x80 != 0;
    // [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-15]: no will, so will
    // QoS and will retain are 0.
    if !will_flag && (will_qos != 0 || will_retain) {
        return Err(DecodeError::InvalidWillFlags);
    }
    // [MQTT-3.1.2-14] will QoS 3 is invalid.
    let will_qos = QoS::from_u8(will_qos).ok_or(DecodeError::InvalidWillFlags)?;
    // [MQTT-3.1.2-22] (3.1 and 3.1.1 only; 5.0 §3.1.2.9 allows a password alone).
    if password_flag && !username_flag && !v5 {
        return Err(DecodeError::PasswordWithoutUsername);
    }
    let keep_alive = r.u16()?;
    let properties = if v5 {
        Properties::decode(r, PropCtx::Connect)?
    } else {
        Properties::EMPTY
    };
    // [MQTT-3.1.3-1] payload order: client id, will properties, will topic,
    // will payload, user name, password.
    let client_id = r.string()?;
    let will = if will_flag {
        let properties = if v5 {
            Properties::decode(r, PropCtx::Will)?
        } else {
            Properties::EMPTY
        };
        let topic = r.string()?;
        check_topic_name(topic, false)?;
        let payload = r.binary()?;
        Some(Will {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        })
    } else {
        None
    };
    let username = if username_flag {
        Some(r.string()?)
    } else {
        None
    };
    let password = if password_flag {
        Some(r.binary()?)
    } else {
        None
    };
    Ok(Connect {
        protocol,
        clean_start,
        keep_alive,
        properties,
        client_id,
        will,
        username,
        password,
    })
}

fn decode_connack<'a>(
    r: &mut Reader<'a>,
    version: ProtocolVersion,
) -> Result<Connack<'a>, DecodeError> {
    let flags = r.u8()?;
    // [MQTT-3.2.2-1] bits 7-1 of the acknowledge flags are reserved.
    if flags & 0xFE != 0 {
        return Err(DecodeError::ConnectReservedFlag);
    }
    let code = r.u8()?;
    let properties = if version.is_v5() {
        check_reason(code, CONNACK_REASONS)?;
        Properties::decode(r, PropCtx::Connack)?
    } else {
        // 3.1.1 §3.2.2.3: return codes 0-5; 6-255 are reserved.
        if code > 5 {
            return Err(DecodeError::InvalidReasonCode(code));
        }
        Properties::EMPTY
    };
    Ok(Connack {
        session_present: flags & 0x01 != 0,
        code,
        properties,
    })
}

fn decode_publish<'a>(
    first: u8,
    r: &mut Reader<'a>,
    version: ProtocolVersion,
) -> Result<Publish<'a>, DecodeError> {
    // The flags were checked by `check_first_byte` ([MQTT-3.3.1-4]).
    let qos = QoS::from_u8((first >> 1) & 0x03).ok_or(DecodeError::InvalidQoS)?;
    let topic = r.string()?;
    // [MQTT-3.3.2-1], [MQTT-3.3.2-2]; 5.0 §3.3.2.3.4 allows an empty topic
    // name with a topic alias, which the core checks.
    check_topic_name(topic, version.is_v5())?;
    // [MQTT-2.3.1-1] / [MQTT-2.2.1-2]: a packet identifier exactly when QoS > 0.
    let packet_id = if qos == QoS::AtMostOnce {
        None
    } else {
        Some(r.packet_id()?)
    };
    let properties = if version.is_v5() {
        Properties::decode(r, PropCtx::Publish)?
    } else {
        Properties::EMPTY
    };
    Ok(Publish {
        dup: first & 0x08 != 0,
        qos,
        retain: first & 0x01 != 0,
        topic,
        packet_id,
        properties,
        // [MQTT 3.1.1 §3.3.3] the payload is the rest and may be empty.
        payload: r.take_rest(),
    })
}

fn decode_pub_resp<'a>(
    kind: PubRespKind,
    r: &mut Reader<'a>,
    version: ProtocolVersion,
) -> Result<PubResp<'a>, DecodeError> {
    let packet_id = r.packet_id()?;
    let (reason, properties) = if version.is_v5() {
        let allowed = match kind {
            PubRespKind::PubAck | PubRespKind::PubRec => PUBACK_REASONS,
            PubRespKind::PubRel | PubRespKind::PubComp => PUBREL_REASONS,
        };
        // [MQTT 5.0 §3.4.2.1]: remaining length 2 means reason 0x00, no
        // properties; 3 means a reason and no properties.
        decode_reason_and_properties(r, PropCtx::PubResp, allowed)?
    } else {
        // 3.1.1: remaining length exactly 2 (checked by `finish`).
        (0, Properties::EMPTY)
    };
    Ok(PubResp {
        kind,
        packet_id,
        reason,
        properties,
    })
}

fn decode_subscribe<'a>(
    r: &mut Reader<'a>,
    version: ProtocolVersion,
) -> Result<Subscribe<'a>, DecodeError> {
    let packet_id = r.packet_id().map_err(|e| match e {
        DecodeError::ZeroPacketId => DecodeError::ZeroSubscribePacketId,
        other => other,
    })?;
    let properties = if version.is_v5() {
        Properties::decode(r, PropCtx::Subscribe)?
    } else {
        Properties::EMPTY
    };
    let raw_filters = r.take_rest();
    // [MQTT-3.8.3-3] (3.1.1) / [MQTT-3.8.3-2] (5.0): at least one pair.
    if raw_filters.is_empty() {
        return Err(DecodeError::NoTopicFilters);
    }
    let mut fr = Reader::new(raw_filters);
    while !fr.is_empty() {
        // [MQTT-3.8.3-1] filters are UTF-8 strings; wildcard syntax is the core's.
        fr.string()?;
        SubOptions::from_byte(fr.u8()?, version)?;
    }
    Ok(Subscribe {
        packet_id,
        properties,
        raw_filters,
        protocol: version,
    })
}

fn decode_unsubscribe<'a>(
    r: &mut Reader<'a>,
    version: ProtocolVersion,
) -> Result<Unsubscribe<'a>, DecodeError> {
    let packet_id = r.packet_id().map_err(|e| match e {
        DecodeError::ZeroPacketId => DecodeError::ZeroSubscribePacketId,
        other => other,
    })?;
    let properties = if version.is_v5() {
        Properties::decode(r, PropCtx::Unsubscribe)?
    } else {
        Properties::EMPTY
    };
    let raw_filters = r.take_rest();
    // [MQTT-3.10.3-2] at least one topic filter.
    if raw_filters.is_empty() {
        return Err(DecodeError::NoTopicFilters);
    }
    let mut fr = Reader::new(raw_filters);
    while !fr.is_empty() {
        // [MQTT-3.10.3-1] filters are UTF-8 strings.
        fr.string()?;
    }
    Ok(Unsubscribe {
        packet_id,
        properties,
        raw_filters,
    })
}

fn decode_suback<'a>(
    r: &mut Reader<'a>,
    version: ProtocolVersion,
) -> Result<Suback<'a>, DecodeError> {
    let packet_id = r.packet_id()?;
    let (properties, allowed) = if version.is_v5() {
        (Properties::decode(r, PropCtx::Suback)?, SUBACK_REASONS)
    } else {
        (Properties::EMPTY, SUBACK_RETURN_CODES)
    };
    let codes = r.take_rest();
    // One code per filter, and a SUBSCRIBE has at least one.
    if codes.is_empty() {
        return Err(DecodeError::Truncated);
    }
    for &c in codes {
        // [MQTT-3.9.3-2] (3.1.1) / 5.0 §3.9.3 allowed codes.
        check_reason(c, allowed)?;
    }
    Ok(Suback {
        packet_id,
        properties,
        codes,
    })
}

fn decode_unsuback<'a>(
    r: &mut Reader<'a>,
    version: ProtocolVersion,
) -> Result<Unsuback<'a>, DecodeError> {
    let packet_id = r.packet_id()?;
    if !version.is_v5() {
        // 3.1.1 §3.11: remaining length 2, no payload (checked by `finish`).
        return Ok(Unsuback {
            packet_id,
            properties: Properties::EMPTY,
            codes: &[],
        });
    }
    let properties = Properties::decode(r, PropCtx::Unsuback)?;
    let codes = r.take_rest();
    if codes.is_empty() {
        return Err(DecodeError::Truncated);
    }
    for &c in codes {
        // 5.0 §3.11.3 allowed codes.
        check_reason(c, UNSUBACK_REASONS)?;
    }
    Ok(Unsuback {
        packet_id,
        properties,
        codes,
    })
}
