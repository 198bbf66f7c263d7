//! MQTT 5.0 properties [MQTT 5.0 §2.2.2].
//!
//! A decoded property list stays a borrowed, validated byte slice
//! ([`Properties`]); [`Properties::iter`] walks it again on demand. The
//! broker's own lists are built in a [`PropertiesBuf`].

use super::DecodeError;
use super::primitives::{
    Reader, VARINT_MAX, encode_remaining_length, prefixed_len, remaining_length_len, write_bin,
    write_str, write_u16, write_u32,
};

/// Property identifiers [MQTT 5.0 §2.2.2.2].
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PropertyId {
    /// 0x01, byte: 0 unspecified bytes, 1 UTF-8 payload (PUBLISH, will).
    PayloadFormatIndicator = 0x01,
    /// 0x02, four-byte integer: lifetime in seconds (PUBLISH, will).
    MessageExpiryInterval = 0x02,
    /// 0x03, string: MIME type of the payload (PUBLISH, will).
    ContentType = 0x03,
    /// 0x08, string: topic name for a response (PUBLISH, will).
    ResponseTopic = 0x08,
    /// 0x09, binary: ties a response to its request (PUBLISH, will).
    CorrelationData = 0x09,
    /// 0x0B, variable byte integer 1..268,435,455 (PUBLISH, SUBSCRIBE).
    SubscriptionIdentifier = 0x0B,
    /// 0x11, four-byte integer: seconds (CONNECT, CONNACK, DISCONNECT).
    SessionExpiryInterval = 0x11,
    /// 0x12, string: client id chosen by the server (CONNACK).
    AssignedClientIdentifier = 0x12,
    /// 0x13, two-byte integer: keep alive imposed by the server (CONNACK).
    ServerKeepAlive = 0x13,
    /// 0x15, string: extended authentication method (CONNECT, CONNACK, AUTH).
    AuthenticationMethod = 0x15,
    /// 0x16, binary: extended authentication data (CONNECT, CONNACK, AUTH).
    AuthenticationData = 0x16,
    /// 0x17, byte 0 or 1 (CONNECT).
    RequestProblemInformation = 0x17,
    /// 0x18, four-byte integer: seconds before the will is sent (will).
    WillDelayInterval = 0x18,
    /// 0x19, byte 0 or 1 (CONNECT).
    RequestResponseInformation = 0x19,
    /// 0x1A, string: basis for response topics (CONNACK).
    ResponseInformation = 0x1A,
    /// 0x1C, string: another server to use (CONNACK, DISCONNECT).
    ServerReference = 0x1C,
    /// 0x1F, string: human-readable diagnostic (acks, DISCONNECT, AUTH).
    ReasonString = 0x1F,
    /// 0x21, two-byte integer, not 0: QoS 1/2 inflight limit (CONNECT, CONNACK).
    ReceiveMaximum = 0x21,
    /// 0x22, two-byte integer: highest topic alias accepted (CONNECT, CONNACK).
    TopicAliasMaximum = 0x22,
    /// 0x23, two-byte integer, not 0 (PUBLISH).
    TopicAlias = 0x23,
    /// 0x24, byte 0 or 1 (CONNACK).
    MaximumQoS = 0x24,
    /// 0x25, byte 0 or 1 (CONNACK).
    RetainAvailable = 0x25,
    /// 0x26, string pair: name and value; repeatable (every packet).
    UserProperty = 0x26,
    /// 0x27, four-byte integer, not 0 (CONNECT, CONNACK).
    MaximumPacketSize = 0x27,
    /// 0x28, byte 0 or 1 (CONNACK).
    WildcardSubscriptionAvailable = 0x28,
    /// 0x29, byte 0 or 1 (CONNACK).
    SubscriptionIdentifierAvailable = 0x29,
    /// 0x2A, byte 0 or 1 (CONNACK).
    SharedSubscriptionAvailable = 0x2A,
}

impl PropertyId {
    /// The identifier for `v`, or `None` if the spec defines no such property.
    pub fn from_u8(v: u8) -> Option<PropertyId> {
        use PropertyId as P;
        Some(match v {
            0x01 => P::PayloadFormatIndicator,
            0x02 => P::MessageExpiryInterval,
            0x03 => P::ContentType,
            0x08 => P::ResponseTopic,
            0x09 => P::CorrelationData,
            0x0B => P::SubscriptionIdentifier,
            0x11 => P::SessionExpiryInterval,
            0x12 => P::AssignedClientIdentifier,
            0x13 => P::ServerKeepAlive,
            0x15 => P::AuthenticationMethod,
            0x16 => P::AuthenticationData,
            0x17 => P::RequestProblemInformation,
            0x18 => P::WillDelayInterval,
            0x19 => P::RequestResponseInformation,
            0x1A => P::ResponseInformation,
            0x1C => P::ServerReference,
            0x1F => P::ReasonString,
            0x21 => P::ReceiveMaximum,
            0x22 => P::TopicAliasMaximum,
            0x23 => P::TopicAlias,
            0x24 => P::MaximumQoS,
            0x25 => P::RetainAvailable,
            0x26 => P::UserProperty,
            0x27 => P::MaximumPacketSize,
            0x28 => P::WildcardSubscriptionAvailable,
            0x29 => P::SubscriptionIdentifierAvailable,
            0x2A => P::SharedSubscriptionAvailable,
            _ => return None,
        })
    }

    /// The packets (as a [`PropCtx`] bit set) this property may appear in,
    /// from the table of [MQTT 5.0 §2.2.2.2].
    fn allowed(self) -> u16 {
        use PropCtx as C;
        use PropertyId as P;
        let set: &[PropCtx] = match self {
            P::PayloadFormatIndicator
            | P::MessageExpiryInterval
            | P::ContentType
            | P::ResponseTopic
            | P::CorrelationData => &[C::Publish, C::Will],
            P::SubscriptionIdentifier => &[C::Publish, C::Subscribe],
            P::SessionExpiryInterval => &[C::Connect, C::Connack, C::Disconnect],
            P::AssignedClientIdentifier
            | P::ServerKeepAlive
            | P::ResponseInformation
            | P::MaximumQoS
            | P::RetainAvailable
            | P::WildcardSubscriptionAvailable
            | P::SubscriptionIdentifierAvailable
            | P::SharedSubscriptionAvailable => &[C::Connack],
            P::AuthenticationMethod | P::AuthenticationData => &[C::Connect, C::Connack, C::Auth],
            P::RequestProblemInformation | P::RequestResponseInformation => &[C::Connect],
            P::WillDelayInterval => &[C::Will],
            P::ServerReference => &[C::Connack, C::Disconnect],
            P::ReasonString => &[
                C::Connack,
                C::PubResp,
                C::Suback,
                C::Unsuback,
                C::Disconnect,
                C::Auth,
            ],
            P::ReceiveMaximum | P::TopicAliasMaximum | P::MaximumPacketSize => {
                &[C::Connect, C::Connack]
            }
            P::TopicAlias => &[C::Publish],
            P::UserProperty => return u16::MAX,
        };
        set.iter().fold(0, |acc, c| acc | c.bit())
    }
}

/// Which packet (or the will) a property list belongs to, for the
/// per-packet rules of [MQTT 5.0 §2.2.2.2].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PropCtx {
    Connect,
    Connack,
    Publish,
    Will,
    /// PUBACK, PUBREC, PUBREL, PUBCOMP.
    PubResp,
    Subscribe,
    Suback,
    Unsubscribe,
    Unsuback,
    Disconnect,
    Auth,
}

impl PropCtx {
    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// One MQTT 5.0 property with its value [MQTT 5.0 §2.2.2.2]. Strings and
/// binary values borrow from the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Property<'a> {
    /// 0x01, byte: 0 unspecified bytes, 1 UTF-8 payload (PUBLISH, will).
    PayloadFormatIndicator(u8),
    /// 0x02, four-byte integer: lifetime in seconds (PUBLISH, will).
    MessageExpiryInterval(u32),
    /// 0x03, string: MIME type of the payload (PUBLISH, will).
    ContentType(&'a str),
    /// 0x08, string: topic name for a response (PUBLISH, will).
    ResponseTopic(&'a str),
    /// 0x09, binary: ties a response to its request (PUBLISH, will).
    CorrelationData(&'a [u8]),
    /// 0x0B, variable byte integer 1..268,435,455 (PUBLISH, SUBSCRIBE).
    SubscriptionIdentifier(u32),
    /// 0x11, four-byte integer: seconds (CONNECT, CONNACK, DISCONNECT).
    SessionExpiryInterval(u32),
    /// 0x12, string: client id chosen by the server (CONNACK).
    AssignedClientIdentifier(&'a str),
    /// 0x13, two-byte integer: keep alive imposed by the server (CONNACK).
    ServerKeepAlive(u16),
    /// 0x15, string: extended authentication method (CONNECT, CONNACK, AUTH).
    AuthenticationMethod(&'a str),
    /// 0x16, binary: extended authentication data (CONNECT, CONNACK, AUTH).
    AuthenticationData(&'a [u8]),
    /// 0x17, byte 0 or 1 (CONNECT).
    RequestProblemInformation(u8),
    /// 0x18, four-byte integer: seconds before the will is sent (will).
    WillDelayInterval(u32),
    /// 0x19, byte 0 or 1 (CONNECT).
    RequestResponseInformation(u8),
    /// 0x1A, string: basis for response topics (CONNACK).
    ResponseInformation(&'a str),
    /// 0x1C, string: another server to use (CONNACK, DISCONNECT).
    ServerReference(&'a str),
    /// 0x1F, string: human-readable diagnostic (acks, DISCONNECT, AUTH).
    ReasonString(&'a str),
    /// 0x21, two-byte integer, not 0: QoS 1/2 inflight limit (CONNECT, CONNACK).
    ReceiveMaximum(u16),
    /// 0x22, two-byte integer: highest topic alias accepted (CONNECT, CONNACK).
    TopicAliasMaximum(u16),
    /// 0x23, two-byte integer, not 0 (PUBLISH).
    TopicAlias(u16),
    /// 0x24, byte 0 or 1 (CONNACK).
    MaximumQoS(u8),
    /// 0x25, byte 0 or 1 (CONNACK).
    RetainAvailable(u8),
    /// 0x26, string pair: name and value; repeatable (every packet).
    UserProperty(&'a str, &'a str),
    /// 0x27, four-byte integer, not 0 (CONNECT, CONNACK).
    MaximumPacketSize(u32),
    /// 0x28, byte 0 or 1 (CONNACK).
    WildcardSubscriptionAvailable(u8),
    /// 0x29, byte 0 or 1 (CONNACK).
    SubscriptionIdentifierAvailable(u8),
    /// 0x2A, byte 0 or 1 (CONNACK).
    SharedSubscriptionAvailable(u8),
}

impl<'a> Property<'a> {
    /// The property's identifier.
    pub fn id(&self) -> PropertyId {
        use Property as V;
        use PropertyId as P;
        match self {
            V::PayloadFormatIndicator(_) => P::PayloadFormatIndicator,
            V::MessageExpiryInterval(_) => P::MessageExpiryInterval,
            V::ContentType(_) => P::ContentType,
            V::ResponseTopic(_) => P::ResponseTopic,
            V::CorrelationData(_) => P::CorrelationData,
            V::SubscriptionIdentifier(_) => P::SubscriptionIdentifier,
            V::SessionExpiryInterval(_) => P::SessionExpiryInterval,
            V::AssignedClientIdentifier(_) => P::AssignedClientIdentifier,
            V::ServerKeepAlive(_) => P::ServerKeepAlive,
            V::AuthenticationMethod(_) => P::AuthenticationMethod,
            V::AuthenticationData(_) => P::AuthenticationData,
            V::RequestProblemInformation(_) => P::RequestProblemInformation,
            V::WillDelayInterval(_) => P::WillDelayInterval,
            V::RequestResponseInformation(_) => P::RequestResponseInformation,
            V::ResponseInformation(_) => P::ResponseInformation,
            V::ServerReference(_) => P::ServerReference,
            V::ReasonString(_) => P::ReasonString,
            V::ReceiveMaximum(_) => P::ReceiveMaximum,
            V::TopicAliasMaximum(_) => P::TopicAliasMaximum,
            V::TopicAlias(_) => P::TopicAlias,
            V::MaximumQoS(_) => P::MaximumQoS,
            V::RetainAvailable(_) => P::RetainAvailable,
            V::UserProperty(..) => P::UserProperty,
            V::MaximumPacketSize(_) => P::MaximumPacketSize,
            V::WildcardSubscriptionAvailable(_) => P::WildcardSubscriptionAvailable,
            V::SubscriptionIdentifierAvailable(_) => P::SubscriptionIdentifierAvailable,
            V::SharedSubscriptionAvailable(_) => P::SharedSubscriptionAvailable,
        }
    }

    /// Bytes [`Property::encode`] appends (identifier included).
    pub fn encoded_len(&self) -> usize {
        use Property as V;
        1 + match self {
            V::PayloadFormatIndicator(_)
            | V::RequestProblemInformation(_)
            | V::RequestResponseInformation(_)
            | V::MaximumQoS(_)
            | V::RetainAvailable(_)
            | V::WildcardSubscriptionAvailable(_)
            | V::SubscriptionIdentifierAvailable(_)
            | V::SharedSubscriptionAvailable(_) => 1,
            V::ServerKeepAlive(_)
            | V::ReceiveMaximum(_)
            | V::TopicAliasMaximum(_)
            | V::TopicAlias(_) => 2,
            V::MessageExpiryInterval(_)
            | V::SessionExpiryInterval(_)
            | V::WillDelayInterval(_)
            | V::MaximumPacketSize(_) => 4,
            V::SubscriptionIdentifier(v) => remaining_length_len(*v as usize),
            V::ContentType(s)
            | V::ResponseTopic(s)
            | V::AssignedClientIdentifier(s)
            | V::AuthenticationMethod(s)
            | V::ResponseInformation(s)
            | V::ServerReference(s)
            | V::ReasonString(s) => prefixed_len(s.len()),
            V::CorrelationData(b) | V::AuthenticationData(b) => prefixed_len(b.len()),
            V::UserProperty(k, v) => prefixed_len(k.len()) + prefixed_len(v.len()),
        }
    }

    /// Appends the identifier and the value in its wire form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        use Property as V;
        out.push(self.id() as u8);
        match *self {
            V::PayloadFormatIndicator(b)
            | V::RequestProblemInformation(b)
            | V::RequestResponseInformation(b)
            | V::MaximumQoS(b)
            | V::RetainAvailable(b)
            | V::WildcardSubscriptionAvailable(b)
            | V::SubscriptionIdentifierAvailable(b)
            | V::SharedSubscriptionAvailable(b) => out.push(b),
            V::ServerKeepAlive(v)
            | V::ReceiveMaximum(v)
            | V::TopicAliasMaximum(v)
            | V::TopicAlias(v) => write_u16(out, v),
            V::MessageExpiryInterval(v)
            | V::SessionExpiryInterval(v)
            | V::WillDelayInterval(v)
            | V::MaximumPacketSize(v) => write_u32(out, v),
            V::SubscriptionIdentifier(v) => encode_remaining_length(v as usize, out),
            V::ContentType(s)
            | V::ResponseTopic(s)
            | V::AssignedClientIdentifier(s)
            | V::AuthenticationMethod(s)
            | V::ResponseInformation(s)
            | V::ServerReference(s)
            | V::ReasonString(s) => write_str(out, s),
            V::CorrelationData(b) | V::AuthenticationData(b) => write_bin(out, b),
            V::UserProperty(k, v) => {
                write_str(out, k);
                write_str(out, v);
            }
        }
    }

    /// Reads one property (identifier and typed value) from `r`. Strings are
    /// UTF-8 checked [MQTT-1.5.3-1], [MQTT-1.5.3-2]; the identifier is a
    /// variable byte integer, and as every defined one fits in one byte, a
    /// byte with the continuation bit is an unknown identifier.
    fn read(r: &mut Reader<'a>) -> Result<Property<'a>, DecodeError> {
        use Property as V;
        use PropertyId as P;
        let raw_id = r.u8()?;
        let id = PropertyId::from_u8(raw_id).ok_or(DecodeError::UnknownProperty(raw_id))?;
        Ok(match id {
            P::PayloadFormatIndicator => V::PayloadFormatIndicator(r.u8()?),
            P::MessageExpiryInterval => V::MessageExpiryInterval(r.u32()?),
            P::ContentType => V::ContentType(r.string()?),
            P::ResponseTopic => V::ResponseTopic(r.string()?),
            P::CorrelationData => V::CorrelationData(r.binary()?),
            P::SubscriptionIdentifier => V::SubscriptionIdentifier(r.varint()?),
            P::SessionExpiryInterval => V::SessionExpiryInterval(r.u32()?),
            P::AssignedClientIdentifier => V::AssignedClientIdentifier(r.string()?),
            P::ServerKeepAlive => V::ServerKeepAlive(r.u16()?),
            P::AuthenticationMethod => V::AuthenticationMethod(r.string()?),
            P::AuthenticationData => V::AuthenticationData(r.binary()?),
            P::RequestProblemInformation => V::RequestProblemInformation(r.u8()?),
            P::WillDelayInterval => V::WillDelayInterval(r.u32()?),
            P::RequestResponseInformation => V::RequestResponseInformation(r.u8()?),
            P::ResponseInformation => V::ResponseInformation(r.string()?),
            P::ServerReference => V::ServerReference(r.string()?),
            P::ReasonString => V::ReasonString(r.string()?),
            P::ReceiveMaximum => V::ReceiveMaximum(r.u16()?),
            P::TopicAliasMaximum => V::TopicAliasMaximum(r.u16()?),
            P::TopicAlias => V::TopicAlias(r.u16()?),
            P::MaximumQoS => V::MaximumQoS(r.u8()?),
            P::RetainAvailable => V::RetainAvailable(r.u8()?),
            P::UserProperty => {
                let k = r.string()?;
                V::UserProperty(k, r.string()?)
            }
            P::MaximumPacketSize => V::MaximumPacketSize(r.u32()?),
            P::WildcardSubscriptionAvailable => V::WildcardSubscriptionAvailable(r.u8()?),
            P::SubscriptionIdentifierAvailable => V::SubscriptionIdentifierAvailable(r.u8()?),
            P::SharedSubscriptionAvailable => V::SharedSubscriptionAvailable(r.u8()?),
        })
    }

    /// The value range rules of [MQTT 5.0 §3.1.2.11, §3.2.2.3, §3.3.2.3, §3.8.2.1].
    fn value_is_valid(&self) -> bool {
        use Property as V;
        match *self {
            // "It is a Protocol Error to include ... with a value other than 0 or 1."
            // (The Payload Format Indicator has no such sentence: other
            // values are forwarded as they came, as Mosquitto does.)
            V::RequestProblemInformation(b)
            | V::RequestResponseInformation(b)
            | V::MaximumQoS(b)
            | V::RetainAvailable(b)
            | V::WildcardSubscriptionAvailable(b)
            | V::SubscriptionIdentifierAvailable(b)
            | V::SharedSubscriptionAvailable(b) => b <= 1,
            // §3.1.2.11.3 / §3.2.2.3.3: "a value of 0" is a Protocol Error.
            V::ReceiveMaximum(v) => v != 0,
            // §3.1.2.11.4 / §3.2.2.3.6: "set to zero" is a Protocol Error.
            V::MaximumPacketSize(v) => v != 0,
            // §3.8.2.1.2: 1 to 268,435,455; 0 is a Protocol Error.
            V::SubscriptionIdentifier(v) => v != 0 && v <= VARINT_MAX,
            // §3.3.2.3.4: "A Topic Alias of 0 is not permitted".
            V::TopicAlias(v) => v != 0,
            // [MQTT-3.3.2-14]: the Response Topic is a topic name, no wildcards.
            V::ResponseTopic(t) => !t.is_empty() && !t.contains(['+', '#']),
            _ => true,
        }
    }
}

/// A validated, borrowed MQTT 5.0 property list (the bytes after the
/// property-length varint).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Properties<'a> {
    raw: &'a [u8],
}

impl<'a> Properties<'a> {
    /// The empty list.
    pub const EMPTY: Properties<'static> = Properties { raw: &[] };

    /// Wraps `raw` if it is a well-formed property list: every identifier
    /// known and every value complete and well-typed. Unlike decoding, this
    /// does not apply the per-packet, duplicate and range rules; it is for
    /// lists the broker stored itself.
    pub fn try_from_raw(raw: &'a [u8]) -> Option<Properties<'a>> {
        let mut r = Reader::new(raw);
        while !r.is_empty() {
            Property::read(&mut r).ok()?;
        }
        Some(Properties { raw })
    }

    /// Reads a property length and the list it announces from `r`, and
    /// checks the list against the rules for `ctx` [MQTT 5.0 §2.2.2.2]:
    /// known identifiers, allowed in this packet, at most once unless the
    /// spec allows repetition, values in range.
    pub(crate) fn decode(r: &mut Reader<'a>, ctx: PropCtx) -> Result<Self, DecodeError> {
        let len = r.varint()?;
        let raw = r.take(len as usize)?;
        let mut seen: u64 = 0;
        // The whole list is read before a rule is enforced: a list that is
        // malformed further on is a Malformed Packet even if an earlier
        // property broke a rule (Mosquitto's order, so the same reason
        // code comes back).
        let mut broken: Option<DecodeError> = None;
        let mut pr = Reader::new(raw);
        while !pr.is_empty() {
            let p = Property::read(&mut pr)?;
            if broken.is_none() {
                broken = Self::rule_error(&p, ctx, &mut seen);
            }
        }
        match broken {
            // Mosquitto answers a property not allowed in SUBSCRIBE or
            // UNSUBSCRIBE with Malformed Packet; the spec does not say which
            // of 0x81 and 0x82 that is, so its bytes are kept. (A repeated
            // or zero Subscription Identifier stays a Protocol Error: the
            // spec says so in §3.8.2.1.2.)
            Some(DecodeError::PropertyNotAllowed(n))
                if matches!(ctx, PropCtx::Subscribe | PropCtx::Unsubscribe) =>
            {
                Err(DecodeError::MalformedProperty(n))
            }
            Some(e) => Err(e),
            None => Ok(Properties { raw }),
        }
    }

    /// The first rule property `p` breaks in a list for `ctx`, given the
    /// identifiers `seen` before it (updated).
    fn rule_error(p: &Property<'_>, ctx: PropCtx, seen: &mut u64) -> Option<DecodeError> {
        {
            let id = p.id();
            let n = id as u8;
            // §2.2.2.2: "A Control Packet ... MUST NOT contain" properties
            // not listed for it; receiving one is a Protocol Error.
            if id.allowed() & ctx.bit() == 0 {
                return Some(DecodeError::PropertyNotAllowed(n));
            }
            // "It is a Protocol Error to include the <property> more than
            // once", except User Property (§3.1.2.11.8: may appear multiple
            // times) and Subscription Identifier in PUBLISH (§3.3.2.3.8:
            // multiple identifiers when several subscriptions matched).
            let repeatable = id == PropertyId::UserProperty
                || (id == PropertyId::SubscriptionIdentifier && ctx == PropCtx::Publish);
            let bit = 1u64 << n; // every defined id is below 64
            if *seen & bit != 0 && !repeatable {
                return Some(DecodeError::DuplicateProperty(n));
            }
            *seen |= bit;
            if !p.value_is_valid() {
                return Some(DecodeError::InvalidPropertyValue(n));
            }
        }
        None
    }

    /// The raw list, without its length prefix.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// True when the list has no property.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The properties in wire order.
    pub fn iter(&self) -> PropertyIter<'a> {
        PropertyIter {
            r: Reader::new(self.raw),
        }
    }

    /// Bytes [`Properties::encode`] appends: the length varint plus the list.
    pub fn encoded_len(&self) -> usize {
        remaining_length_len(self.raw.len()) + self.raw.len()
    }

    /// Appends the property length (a variable byte integer) and the list.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_remaining_length(self.raw.len(), out);
        out.extend_from_slice(self.raw);
    }

    fn find<T>(&self, f: impl FnMut(Property<'a>) -> Option<T>) -> Option<T> {
        self.iter().find_map(f)
    }

    /// Session Expiry Interval (0x11).
    pub fn session_expiry_interval(&self) -> Option<u32> {
        self.find(|p| match p {
            Property::SessionExpiryInterval(v) => Some(v),
            _ => None,
        })
    }

    /// Receive Maximum (0x21).
    pub fn receive_maximum(&self) -> Option<u16> {
        self.find(|p| match p {
            Property::ReceiveMaximum(v) => Some(v),
            _ => None,
        })
    }

    /// Maximum Packet Size (0x27).
    pub fn maximum_packet_size(&self) -> Option<u32> {
        self.find(|p| match p {
            Property::MaximumPacketSize(v) => Some(v),
            _ => None,
        })
    }

    /// Topic Alias Maximum (0x22).
    pub fn topic_alias_maximum(&self) -> Option<u16> {
        self.find(|p| match p {
            Property::TopicAliasMaximum(v) => Some(v),
            _ => None,
        })
    }

    /// Topic Alias (0x23).
    pub fn topic_alias(&self) -> Option<u16> {
        self.find(|p| match p {
            Property::TopicAlias(v) => Some(v),
            _ => None,
        })
    }

    /// Message Expiry Interval (0x02).
    pub fn message_expiry_interval(&self) -> Option<u32> {
        self.find(|p| match p {
            Property::MessageExpiryInterval(v) => Some(v),
            _ => None,
        })
    }

    /// Payload Format Indicator (0x01).
    pub fn payload_format_indicator(&self) -> Option<u8> {
        self.find(|p| match p {
            Property::PayloadFormatIndicator(v) => Some(v),
            _ => None,
        })
    }

    /// Will Delay Interval (0x18).
    pub fn will_delay_interval(&self) -> Option<u32> {
        self.find(|p| match p {
            Property::WillDelayInterval(v) => Some(v),
            _ => None,
        })
    }

    /// Request Problem Information (0x17).
    pub fn request_problem_information(&self) -> Option<u8> {
        self.find(|p| match p {
            Property::RequestProblemInformation(v) => Some(v),
            _ => None,
        })
    }

    /// Request Response Information (0x19).
    pub fn request_response_information(&self) -> Option<u8> {
        self.find(|p| match p {
            Property::RequestResponseInformation(v) => Some(v),
            _ => None,
        })
    }

    /// Authentication Method (0x15).
    pub fn authentication_method(&self) -> Option<&'a str> {
        self.find(|p| match p {
            Property::AuthenticationMethod(v) => Some(v),
            _ => None,
        })
    }

    /// The first Subscription Identifier (0x0B).
    pub fn subscription_identifier(&self) -> Option<u32> {
        self.find(|p| match p {
            Property::SubscriptionIdentifier(v) => Some(v),
            _ => None,
        })
    }

    /// Reason String (0x1F).
    pub fn reason_string(&self) -> Option<&'a str> {
        self.find(|p| match p {
            Property::ReasonString(v) => Some(v),
            _ => None,
        })
    }
}

impl<'a> IntoIterator for Properties<'a> {
    type Item = Property<'a>;
    type IntoIter = PropertyIter<'a>;
    fn into_iter(self) -> PropertyIter<'a> {
        self.iter()
    }
}

/// Iterator over a [`Properties`] list. It stops at the first inconsistency
/// (which a validated list does not have) instead of panicking.
#[derive(Clone, Debug)]
pub struct PropertyIter<'a> {
    r: Reader<'a>,
}

impl<'a> Iterator for PropertyIter<'a> {
    type Item = Property<'a>;
    fn next(&mut self) -> Option<Property<'a>> {
        if self.r.is_empty() {
            return None;
        }
        match Property::read(&mut self.r) {
            Ok(p) => Some(p),
            Err(_) => {
                self.r.take_rest();
                None
            }
        }
    }
}

/// Owned builder, for properties the broker creates (e.g. CONNACK's).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PropertiesBuf {
    raw: Vec<u8>,
}

impl PropertiesBuf {
    /// An empty list.
    pub fn new() -> Self {
        PropertiesBuf::default()
    }

    /// Appends one property. No per-packet rule is checked: the caller
    /// builds what the spec allows for the packet it sends.
    pub fn push(&mut self, p: &Property<'_>) {
        self.raw.reserve(p.encoded_len());
        p.encode(&mut self.raw);
    }

    /// Appends every property of `props` (e.g. to forward a PUBLISH's
    /// properties with some removed or added).
    pub fn extend_from(&mut self, props: Properties<'_>) {
        self.raw.extend_from_slice(props.raw());
    }

    /// The list as a borrowed [`Properties`].
    pub fn as_properties(&self) -> Properties<'_> {
        Properties { raw: &self.raw }
    }

    /// Removes every property.
    pub fn clear(&mut self) {
        self.raw.clear();
    }

    /// True when the list has no property.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
}
