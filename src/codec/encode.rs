//! Encoding of every packet into canonical, minimal frames.
//!
//! Each `encode` reserves the exact frame size once (from the same
//! computation as `encoded_len`) and appends the frame. Before 5.0 no
//! property or reason code is ever written. Values the wire cannot carry
//! (strings over 65,535 bytes, frames over 256 MiB, a QoS > 0 PUBLISH with
//! no packet identifier) are caller bugs and only debug-asserted.

use super::primitives::{
    encode_remaining_length, prefixed_len, remaining_length_len, write_bin, write_str, write_u16,
};
use super::{
    Auth, Connack, Connect, Disconnect, Packet, PacketId, Properties, ProtocolVersion, PubResp,
    PubRespKind, Publish, QoS, SubOptions, Suback, Subscribe, Unsuback, Unsubscribe,
};

/// Size of a whole frame whose remaining length is `body`.
fn frame_total(body: usize) -> usize {
    1 + remaining_length_len(body) + body
}

/// Reserves the whole frame and writes its fixed header.
fn start_frame(out: &mut Vec<u8>, first: u8, body: usize) {
    out.reserve(frame_total(body));
    out.push(first);
    encode_remaining_length(body, out);
}

/// Size of an optional "reason code, then properties" tail (5.0 PUBACK
/// family, DISCONNECT, AUTH): omitted entirely for reason 0x00 without
/// properties, the properties omitted when empty.
fn reason_tail_len(reason: u8, properties: &Properties<'_>) -> usize {
    if !properties.is_empty() {
        1 + properties.encoded_len()
    } else if reason != 0 {
        1
    } else {
        0
    }
}

fn write_reason_tail(out: &mut Vec<u8>, reason: u8, properties: &Properties<'_>) {
    if !properties.is_empty() {
        out.push(reason);
        properties.encode(out);
    } else if reason != 0 {
        out.push(reason);
    }
}

impl Connect<'_> {
    fn protocol_name(&self) -> &'static [u8] {
        match self.protocol {
            ProtocolVersion::V31 => b"MQIsdp",
            ProtocolVersion::V311 | ProtocolVersion::V5 => b"MQTT",
        }
    }

    fn body_len(&self) -> usize {
        let v5 = self.protocol.is_v5();
        // Protocol name, level, flags, keep alive.
        let mut n = prefixed_len(self.protocol_name().len()) + 1 + 1 + 2;
        if v5 {
            n += self.properties.encoded_len();
        }
        n += prefixed_len(self.client_id.len());
        if let Some(w) = &self.will {
            if v5 {
                n += w.properties.encoded_len();
            }
            n += prefixed_len(w.topic.len()) + prefixed_len(w.payload.len());
        }
        if let Some(u) = self.username {
            n += prefixed_len(u.len());
        }
        if let Some(p) = self.password {
            n += prefixed_len(p.len());
        }
        n
    }

    /// Exact number of bytes [`Connect::encode`] appends. The level is
    /// `self.protocol`; `version` is ignored.
    pub fn encoded_len(&self, _version: ProtocolVersion) -> usize {
        frame_total(self.body_len())
    }

    /// Appends the CONNECT frame for `self.protocol` (`version` is ignored:
    /// a CONNECT announces its own level).
    pub fn encode(&self, _version: ProtocolVersion, out: &mut Vec<u8>) {
        let v5 = self.protocol.is_v5();
        start_frame(out, 0x10, self.body_len());
        write_bin(out, self.protocol_name());
        out.push(self.protocol as u8);
        let mut flags = u8::from(self.clean_start) << 1;
        if let Some(w) = &self.will {
            flags |= 0x04 | ((w.qos as u8) << 3) | (u8::from(w.retain) << 5);
        }
        if self.password.is_some() {
            flags |= 0x40;
        }
        if self.username.is_some() {
            flags |= 0x80;
        }
        out.push(flags);
        write_u16(out, self.keep_alive);
        if v5 {
            self.properties.encode(out);
        }
        write_str(out, self.client_id);
        if let Some(w) = &self.will {
            if v5 {
                w.properties.encode(out);
            }
            write_str(out, w.topic);
            write_bin(out, w.payload);
        }
        if let Some(u) = self.username {
            write_str(out, u);
        }
        if let Some(p) = self.password {
            write_bin(out, p);
        }
    }
}

impl Connack<'_> {
    fn body_len(&self, version: ProtocolVersion) -> usize {
        if version.is_v5() {
            2 + self.properties.encoded_len()
        } else {
            2
        }
    }

    /// Exact number of bytes [`Connack::encode`] appends (4 before 5.0).
    pub fn encoded_len(&self, version: ProtocolVersion) -> usize {
        frame_total(self.body_len(version))
    }

    /// Appends the CONNACK frame; 5.0 always carries a property length.
    pub fn encode(&self, version: ProtocolVersion, out: &mut Vec<u8>) {
        start_frame(out, 0x20, self.body_len(version));
        out.push(u8::from(self.session_present));
        out.push(self.code);
        if version.is_v5() {
            self.properties.encode(out);
        }
    }
}

impl Publish<'_> {
    fn body_len(&self, version: ProtocolVersion) -> usize {
        let mut n = prefixed_len(self.topic.len()) + self.payload.len();
        if self.qos != QoS::AtMostOnce {
            n += 2;
        }
        if version.is_v5() {
            n += self.properties.encoded_len();
        }
        n
    }

    /// Exact number of bytes [`Publish::encode`] appends.
    pub fn encoded_len(&self, version: ProtocolVersion) -> usize {
        frame_total(self.body_len(version))
    }

    /// Appends the PUBLISH frame with one reservation and no intermediate
    /// allocation. The packet identifier is written exactly when QoS > 0
    /// (a missing one then is a caller bug: debug-asserted, 0 written).
    pub fn encode(&self, version: ProtocolVersion, out: &mut Vec<u8>) {
        let first =
            0x30 | (u8::from(self.dup) << 3) | ((self.qos as u8) << 1) | u8::from(self.retain);
        start_frame(out, first, self.body_len(version));
        write_str(out, self.topic);
        if self.qos != QoS::AtMostOnce {
            debug_assert!(
                self.packet_id.is_some(),
                "QoS > 0 PUBLISH without packet id"
            );
            write_u16(out, self.packet_id.map_or(0, PacketId::get));
        }
        if version.is_v5() {
            self.properties.encode(out);
        }
        out.extend_from_slice(self.payload);
    }
}

impl PubResp<'_> {
    fn body_len(&self, version: ProtocolVersion) -> usize {
        if version.is_v5() {
            2 + reason_tail_len(self.reason, &self.properties)
        } else {
            2
        }
    }

    /// Exact number of bytes [`PubResp::encode`] appends.
    pub fn encoded_len(&self, version: ProtocolVersion) -> usize {
        frame_total(self.body_len(version))
    }

    /// Appends the PUBACK/PUBREC/PUBREL/PUBCOMP frame, in 5.0 using the
    /// short forms when the reason is 0x00 and/or there are no properties.
    pub fn encode(&self, version: ProtocolVersion, out: &mut Vec<u8>) {
        let first = match self.kind {
            PubRespKind::PubAck => 0x40,
            PubRespKind::PubRec => 0x50,
            PubRespKind::PubRel => 0x62,
            PubRespKind::PubComp => 0x70,
        };
        start_frame(out, first, self.body_len(version));
        write_u16(out, self.packet_id.get());
        if version.is_v5() {
            write_reason_tail(out, self.reason, &self.properties);
        }
    }
}

/// Bytes of a SUBSCRIBE payload (filter strings plus one options byte each).
fn subscribe_payload_len<'f>(filters: impl Iterator<Item = (&'f str, SubOptions)>) -> usize {
    filters.map(|(f, _)| prefixed_len(f.len()) + 1).sum()
}

fn subscribe_body_len<'f>(
    properties: &Properties<'_>,
    filters: impl Iterator<Item = (&'f str, SubOptions)>,
    version: ProtocolVersion,
) -> usize {
    let props = if version.is_v5() {
        properties.encoded_len()
    } else {
        0
    };
    2 + props + subscribe_payload_len(filters)
}

fn write_subscribe<'f>(
    packet_id: PacketId,
    properties: &Properties<'_>,
    filters: impl Iterator<Item = (&'f str, SubOptions)> + Clone,
    version: ProtocolVersion,
    out: &mut Vec<u8>,
) {
    start_frame(
        out,
        0x82,
        subscribe_body_len(properties, filters.clone(), version),
    );
    write_u16(out, packet_id.get());
    if version.is_v5() {
        properties.encode(out);
    }
    for (filter, opts) in filters {
        write_str(out, filter);
        // Before 5.0 only the QoS bits exist [MQTT-3-8.3-4].
        let byte = if version.is_v5() {
            opts.to_byte()
        } else {
            opts.qos as u8
        };
        out.push(byte);
    }
}

/// Appends a SUBSCRIBE frame (fixed-header flags 0b0010) for `filters`.
/// Before 5.0 `properties` are not written and only each filter's QoS is.
pub fn encode_subscribe(
    packet_id: PacketId,
    properties: Properties<'_>,
    filters: &[(&str, SubOptions)],
    version: ProtocolVersion,
    out: &mut Vec<u8>,
) {
    write_subscribe(
        packet_id,
        &properties,
        filters.iter().copied(),
        version,
        out,
    );
}

impl Subscribe<'_> {
    /// Exact number of bytes [`Subscribe::encode`] appends.
    pub fn encoded_len(&self, version: ProtocolVersion) -> usize {
        frame_total(subscribe_body_len(
            &self.properties,
            self.filters(),
            version,
        ))
    }

    /// Appends the SUBSCRIBE frame, re-encoding each options byte for `version`.
    pub fn encode(&self, version: ProtocolVersion, out: &mut Vec<u8>) {
        write_subscribe(
            self.packet_id,
            &self.properties,
            self.filters(),
            version,
            out,
        );
    }
}

fn unsubscribe_body_len<'f>(
    properties: &Properties<'_>,
    filters: impl Iterator<Item = &'f str>,
    version: ProtocolVersion,
) -> usize {
    let props = if version.is_v5() {
        properties.encoded_len()
    } else {
        0
    };
    2 + props + filters.map(|f| prefixed_len(f.len())).sum::<usize>()
}

fn write_unsubscribe<'f>(
    packet_id: PacketId,
    properties: &Properties<'_>,
    filters: impl Iterator<Item = &'f str> + Clone,
    version: ProtocolVersion,
    out: &mut Vec<u8>,
) {
    start_frame(
        out,
        0xA2,
        unsubscribe_body_len(properties, filters.clone(), version),
    );
    write_u16(out, packet_id.get());
    if version.is_v5() {
        properties.encode(out);
    }
    for filter in filters {
        write_str(out, filter);
    }
}

/// Appends an UNSUBSCRIBE frame (fixed-header flags 0b0010) for `filters`.
/// Before 5.0 `properties` are not written.
pub fn encode_unsubscribe(
    packet_id: PacketId,
    properties: Properties<'_>,
    filters: &[&str],
    version: ProtocolVersion,
    out: &mut Vec<u8>,
) {
    write_unsubscribe(
        packet_id,
        &properties,
        filters.iter().copied(),
        version,
        out,
    );
}

impl Unsubscribe<'_> {
    /// Exact number of bytes [`Unsubscribe::encode`] appends.
    pub fn encoded_len(&self, version: ProtocolVersion) -> usize {
        frame_total(unsubscribe_body_len(
            &self.properties,
            self.filters(),
            version,
        ))
    }

    /// Appends the UNSUBSCRIBE frame.
    pub fn encode(&self, version: ProtocolVersion, out: &mut Vec<u8>) {
        write_unsubscribe(
            self.packet_id,
            &self.properties,
            self.filters(),
            version,
            out,
        );
    }
}

impl Suback<'_> {
    fn body_len(&self, version: ProtocolVersion) -> usize {
        let props = if version.is_v5() {
            self.properties.encoded_len()
        } else {
            0
        };
        2 + props + self.codes.len()
    }

    /// Exact number of bytes [`Suback::encode`] appends.
    pub fn encoded_len(&self, version: ProtocolVersion) -> usize {
        frame_total(self.body_len(version))
    }

    /// Appends the SUBACK frame. The codes are written as given: the caller
    /// picks 3.1.1 return codes or 5.0 reason codes.
    pub fn encode(&self, version: ProtocolVersion, out: &mut Vec<u8>) {
        start_frame(out, 0x90, self.body_len(version));
        write_u16(out, self.packet_id.get());
        if version.is_v5() {
            self.properties.encode(out);
        }
        out.extend_from_slice(self.codes);
    }
}

impl Unsuback<'_> {
    fn body_len(&self, version: ProtocolVersion) -> usize {
        if version.is_v5() {
            2 + self.properties.encoded_len() + self.codes.len()
        } else {
            2
        }
    }

    /// Exact number of bytes [`Unsuback::encode`] appends (4 before 5.0).
    pub fn encoded_len(&self, version: ProtocolVersion) -> usize {
        frame_total(self.body_len(version))
    }

    /// Appends the UNSUBACK frame; before 5.0 it has no payload, so `codes`
    /// and `properties` are not written.
    pub fn encode(&self, version: ProtocolVersion, out: &mut Vec<u8>) {
        start_frame(out, 0xB0, self.body_len(version));
        write_u16(out, self.packet_id.get());
        if version.is_v5() {
            self.properties.encode(out);
            out.extend_from_slice(self.codes);
        }
    }
}

impl Disconnect<'_> {
    fn body_len(&self, version: ProtocolVersion) -> usize {
        if version.is_v5() {
            reason_tail_len(self.reason, &self.properties)
        } else {
            0
        }
    }

    /// Exact number of bytes [`Disconnect::encode`] appends.
    pub fn encoded_len(&self, version: ProtocolVersion) -> usize {
        frame_total(self.body_len(version))
    }

    /// Appends the DISCONNECT frame: two bytes before 5.0, and in 5.0 also
    /// when the reason is 0x00 without properties.
    pub fn encode(&self, version: ProtocolVersion, out: &mut Vec<u8>) {
        start_frame(out, 0xE0, self.body_len(version));
        if version.is_v5() {
            write_reason_tail(out, self.reason, &self.properties);
        }
    }
}

impl Auth<'_> {
    fn body_len(&self) -> usize {
        reason_tail_len(self.reason, &self.properties)
    }

    /// Exact number of bytes [`Auth::encode`] appends.
    pub fn encoded_len(&self, _version: ProtocolVersion) -> usize {
        frame_total(self.body_len())
    }

    /// Appends the AUTH frame. AUTH exists only in 5.0, so it is always
    /// written in the 5.0 form whatever `version` says.
    pub fn encode(&self, _version: ProtocolVersion, out: &mut Vec<u8>) {
        start_frame(out, 0xF0, self.body_len());
        write_reason_tail(out, self.reason, &self.properties);
    }
}

impl Packet<'_> {
    /// Exact number of bytes [`Packet::encode`] appends.
    pub fn encoded_len(&self, version: ProtocolVersion) -> usize {
        match self {
            Packet::Connect(p) => p.encoded_len(version),
            Packet::Connack(p) => p.encoded_len(version),
            Packet::Publish(p) => p.encoded_len(version),
            Packet::PubResp(p) => p.encoded_len(version),
            Packet::Subscribe(p) => p.encoded_len(version),
            Packet::Suback(p) => p.encoded_len(version),
            Packet::Unsubscribe(p) => p.encoded_len(version),
            Packet::Unsuback(p) => p.encoded_len(version),
            Packet::PingReq | Packet::PingResp => 2,
            Packet::Disconnect(p) => p.encoded_len(version),
            Packet::Auth(p) => p.encoded_len(version),
        }
    }

    /// Appends one complete frame for `version`.
    pub fn encode(&self, version: ProtocolVersion, out: &mut Vec<u8>) {
        match self {
            Packet::Connect(p) => p.encode(version, out),
            Packet::Connack(p) => p.encode(version, out),
            Packet::Publish(p) => p.encode(version, out),
            Packet::PubResp(p) => p.encode(version, out),
            Packet::Subscribe(p) => p.encode(version, out),
            Packet::Suback(p) => p.encode(version, out),
            Packet::Unsubscribe(p) => p.encode(version, out),
            Packet::Unsuback(p) => p.encode(version, out),
            // [MQTT-3.12.1], [MQTT-3.13.1]: type byte and a zero remaining length.
            Packet::PingReq => out.extend_from_slice(&[0xC0, 0x00]),
            Packet::PingResp => out.extend_from_slice(&[0xD0, 0x00]),
            Packet::Disconnect(p) => p.encode(version, out),
            Packet::Auth(p) => p.encode(version, out),
        }
    }
}
