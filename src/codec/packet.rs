//! Packet views and their decode/encode. CONTRACT: the type and function
//! signatures below are used by the core; the implementations are to be filled in.

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
