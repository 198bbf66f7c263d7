//! The MQTT wire format: 3.1 (`MQIsdp`, level 3), 3.1.1 (level 4) and 5.0 (level 5).
//!
//! Read: MQTT 3.1.1 chapter 2 (fixed header) and chapter 3 (packets); MQTT 5.0
//! chapter 2.2 (variable header, properties) and chapter 3.
//!
//! Decoding yields borrowed views ([`Packet`]) into the caller's buffer: topic
//! names are `&str`, payloads `&[u8]`, properties a validated raw slice
//! ([`Properties`]). Every check the specification asks of a receiver that can
//! be made without session state happens here, once, so the core never sees
//! an ill-formed packet. "Not enough bytes yet" is `Ok(None)`, not an error.
//!
//! Encoding writes into a `Vec<u8>`; `encoded_len` tells the size beforehand.

mod encode;
mod packet;
mod primitives;
mod properties;
#[cfg(test)]
mod tests;

pub use encode::{encode_subscribe, encode_unsubscribe};
pub use packet::*;
pub(crate) use primitives::check_utf8;
pub use primitives::{encode_remaining_length, remaining_length_len};
pub use properties::{Properties, PropertiesBuf, Property, PropertyId, PropertyIter};

use core::num::NonZeroU16;

/// The protocol level a connection speaks, from its CONNECT packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    /// MQTT 3.1, protocol name `MQIsdp`, level 3.
    V31 = 3,
    /// MQTT 3.1.1, protocol name `MQTT`, level 4.
    V311 = 4,
    /// MQTT 5.0, protocol name `MQTT`, level 5.
    V5 = 5,
}

impl ProtocolVersion {
    /// True for MQTT 5.0, the only level with properties and reason codes.
    pub fn is_v5(self) -> bool {
        self == ProtocolVersion::V5
    }
}

/// Quality of service of a message or a subscription (QoS 0 by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    /// QoS 0.
    #[default]
    AtMostOnce = 0,
    /// QoS 1.
    AtLeastOnce = 1,
    /// QoS 2.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for the two-bit value `v`, or `None` for 3 (reserved) and above.
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// A non-zero packet identifier [MQTT-2.3.1-1].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacketId(pub NonZeroU16);

impl PacketId {
    /// `None` for 0, which no packet identifier may be.
    pub fn new(v: u16) -> Option<PacketId> {
        NonZeroU16::new(v).map(PacketId)
    }
    /// The identifier as a number.
    pub fn get(self) -> u16 {
        self.0.get()
    }
}

/// Why a frame could not be decoded. Every variant is the peer's fault; the
/// caller answers with a disconnect (and, for 5.0, [`DecodeError::reason_code`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The remaining length uses more than four bytes [MQTT-2.2.3]; also any
    /// other variable byte integer (property length, subscription
    /// identifier) longer than four bytes [MQTT 5.0 §1.5.5].
    MalformedRemainingLength,
    /// The frame (fixed header included) is larger than the allowed maximum.
    PacketTooLarge {
        /// The whole frame's size as declared by its header.
        size: usize,
    },
    /// Packet type 0, or 15 (AUTH) before 5.0.
    InvalidPacketType(u8),
    /// Reserved fixed-header flag bits not as the spec requires [MQTT-2.2.2-1].
    InvalidFixedHeaderFlags,
    /// QoS bits set to 3 [MQTT-3.3.1-4].
    InvalidQoS,
    /// DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2].
    DupWithQoS0,
    /// The packet's fields run past its remaining length, or a field is cut.
    Truncated,
    /// Bytes left over after the last field of a packet that has no payload.
    TrailingBytes,
    /// A string is not well-formed UTF-8 [MQTT-1.5.3-1].
    InvalidUtf8,
    /// A string contains U+0000 [MQTT-1.5.3-2].
    NullInString,
    /// A string contains a control character (U+0001-U+001F,
    /// U+007F-U+009F), which the spec allows a receiver to treat as
    /// malformed (MQTT 5.0 §1.5.4).
    ControlCharacter,
    /// CONNECT's protocol name is neither `MQTT` nor `MQIsdp` [MQTT-3.1.2-1].
    InvalidProtocolName,
    /// CONNECT asks for a level the broker does not speak; the caller answers
    /// CONNACK 0x01 (3.1.1) or 0x84 (5.0) [MQTT-3.1.2-2].
    UnsupportedProtocolVersion(u8),
    /// CONNECT's reserved flag is set [MQTT-3.1.2-3], or a reserved bit of
    /// CONNACK's acknowledge flags is [MQTT-3.2.2-1].
    ConnectReservedFlag,
    /// Will QoS or retain set without the will flag, or will QoS 3
    /// [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-14], [MQTT-3.1.2-15].
    InvalidWillFlags,
    /// Password flag without user name flag in 3.1.1 [MQTT-3.1.2-22].
    PasswordWithoutUsername,
    /// A packet identifier of 0 [MQTT-2.3.1-1].
    ZeroPacketId,
    /// A SUBSCRIBE or UNSUBSCRIBE with packet identifier 0 [MQTT-2.3.1-1]:
    /// answered as a Malformed Packet, as Mosquitto does (elsewhere 0 is a
    /// Protocol Error).
    ZeroSubscribePacketId,
    /// `+` or `#` in a PUBLISH topic name [MQTT-3.3.2-2].
    WildcardInTopicName,
    /// A zero-length topic name where one is required [MQTT-4.7.3-1].
    EmptyTopicName,
    /// SUBSCRIBE or UNSUBSCRIBE with no topic filter [MQTT-3.8.3-3], [MQTT-3.10.3-2].
    NoTopicFilters,
    /// Reserved bits of subscription options set, or retain handling 3
    /// [MQTT-3.8.3-4] (3.1.1), [MQTT-3.8.3-5] (5.0).
    InvalidSubscriptionOptions,
    /// A property that may not appear in this packet.
    PropertyNotAllowed(u8),
    /// A property identifier the spec does not define.
    UnknownProperty(u8),
    /// A property that may appear at most once appears again.
    DuplicateProperty(u8),
    /// A property value out of its range (e.g. receive maximum 0).
    InvalidPropertyValue(u8),
    /// A reason code that is not valid for this packet.
    InvalidReasonCode(u8),
    /// A property not allowed in SUBSCRIBE or UNSUBSCRIBE: answered as a
    /// Malformed Packet, as Mosquitto does.
    MalformedProperty(u8),
}

impl DecodeError {
    /// The property identifier a property error is about.
    pub fn property(&self) -> Option<u8> {
        match *self {
            DecodeError::PropertyNotAllowed(n)
            | DecodeError::UnknownProperty(n)
            | DecodeError::DuplicateProperty(n)
            | DecodeError::InvalidPropertyValue(n)
            | DecodeError::MalformedProperty(n) => Some(n),
            _ => None,
        }
    }
}

impl DecodeError {
    /// The MQTT 5.0 reason code to send in DISCONNECT (or CONNACK) for this error:
    /// 0x81 malformed packet, 0x82 protocol error, 0x84 unsupported protocol
    /// version, 0x95 packet too large.
    pub fn reason_code(&self) -> u8 {
        match self {
            DecodeError::PacketTooLarge { .. } => 0x95,
            DecodeError::UnsupportedProtocolVersion(_) => 0x84,
            DecodeError::DuplicateProperty(_)
            | DecodeError::PropertyNotAllowed(_)
            | DecodeError::InvalidPropertyValue(_)
            | DecodeError::ZeroPacketId
            | DecodeError::InvalidReasonCode(_)
            | DecodeError::NoTopicFilters => 0x82,
            _ => 0x81,
        }
    }
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for DecodeError {}
