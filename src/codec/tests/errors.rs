//! One crafted vector (at least) per decode error, each citing the rule.

use super::*;
use DecodeError as E;

/// A CONNECT frame: protocol name, level, flags, keep alive 60, then `rest`
/// (properties for 5.0, then the payload).
fn connect(name: &[u8], level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    let len = u8::try_from(name.len()).unwrap();
    frame(
        0x10,
        &cat(&[&[0x00, len], name, &[level, flags, 0x00, 0x3C], rest]),
    )
}

/// A 3.1.1 CONNECT with client id "c" followed by `rest`.
fn connect4(flags: u8, rest: &[u8]) -> Vec<u8> {
    connect(b"MQTT", 4, flags, &cat(&[&[0x00, 0x01, b'c'], rest]))
}

/// A 5.0 CONNECT with property list `props` (raw, length added) and client id "c".
fn connect5(props: &[u8], rest: &[u8]) -> Vec<u8> {
    let len = u8::try_from(props.len()).unwrap();
    connect(
        b"MQTT",
        5,
        0x02,
        &cat(&[&[len], props, &[0x00, 0x01, b'c'], rest]),
    )
}

/// A 5.0 QoS 0 PUBLISH to "t" with property list `props`.
fn publish5(props: &[u8]) -> Vec<u8> {
    let len = u8::try_from(props.len()).unwrap();
    frame(0x30, &cat(&[&[0x00, 0x01, b't', len], props]))
}

#[test]
fn fixed_header_errors() {
    // [MQTT-2.2.3] a fourth remaining-length byte with continuation.
    assert_eq!(
        err(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF], V311),
        E::MalformedRemainingLength
    );
    assert_eq!(
        frame_len(&[0x30, 0x80, 0x80, 0x80, 0x80], MAX),
        Err(E::MalformedRemainingLength)
    );
    // Packet type 0 is reserved [MQTT-2.2.1]; 15 (AUTH) only exists in 5.0.
    assert_eq!(err(&[0x00, 0x00], V311), E::InvalidPacketType(0));
    assert_eq!(err(&[0xF0, 0x00], V311), E::InvalidPacketType(15));
    assert_eq!(err(&[0xF0, 0x00], V31), E::InvalidPacketType(15));
    // [MQTT-2.2.2-1], [MQTT-2.2.2-2] reserved flags: detected from the first byte alone.
    for first in [
        0x21, 0x41, 0x58, 0x60, 0x63, 0x7F, 0x80, 0x83, 0x91, 0xA0, 0xB2, 0xC1, 0xD4, 0xE8,
    ] {
        assert_eq!(
            decode(&[first], V311, MAX),
            Err(E::InvalidFixedHeaderFlags),
            "{first:02X}"
        );
    }
    assert_eq!(err(&[0xF1, 0x00], V5), E::InvalidFixedHeaderFlags);
    // CONNECT's flags wait for its level: refused for 3.1.1 and 5.0; MQTT
    // 3.1 had DUP/QoS/RETAIN on every header and no reserved CONNECT flag,
    // so both are ignored there (Mosquitto's reading).
    let mut c = connect4(0x02, &[]);
    c[0] = 0x14;
    assert_eq!(err(&c, V311), E::InvalidFixedHeaderFlags);
    let mut c31 = connect(b"MQIsdp", 3, 0x03, &[0x00, 0x01, b'c']);
    c31[0] = 0x14;
    assert!(matches!(
        decode(&c31, V311, MAX),
        Ok(Some((Packet::Connect(_), _)))
    ));
    // [MQTT-3.3.1-4] PUBLISH QoS 3.
    assert_eq!(err(&[0x36, 0x00], V311), E::InvalidQoS);
    // [MQTT-3.3.1-2] DUP on QoS 0.
    assert_eq!(err(&[0x38, 0x03, 0x00, 0x01, b't'], V311), E::DupWithQoS0);
    // Answered as a malformed packet (5.0: DISCONNECT 0x81), as the
    // conformance corpus expects (docs/CONFORMANCE.md); Mosquitto 2.0.11
    // closes without a DISCONNECT.
    assert_eq!(E::DupWithQoS0.reason_code(), 0x81);
    // Oversize [MQTT 5.0 §3.1.2.11.4]: refused before the body.
    assert_eq!(
        decode(&[0x30, 0x7F], V5, 100),
        Err(E::PacketTooLarge { size: 129 })
    );
}

#[test]
fn truncated_and_trailing() {
    // A field running past the remaining length.
    assert_eq!(err(&[0x30, 0x02, 0x00, 0x05], V311), E::Truncated);
    assert_eq!(
        err(&[0x32, 0x04, 0x00, 0x01, b't', 0x00], V311),
        E::Truncated
    ); // half a packet id
    assert_eq!(err(&[0x40, 0x01, 0x00], V311), E::Truncated);
    // 5.0 property length past the end.
    assert_eq!(err(&[0x30, 0x04, 0x00, 0x01, b't', 0x05], V5), E::Truncated);
    // A property value cut short (session expiry is four bytes).
    assert_eq!(err(&connect5(&[0x11, 0x00, 0x00], &[]), V5), E::Truncated);
    // [MQTT-3.12.1] / [MQTT-3.13.1] PINGREQ/PINGRESP have no body.
    assert_eq!(err(&[0xC0, 0x01, 0x00], V311), E::TrailingBytes);
    assert_eq!(err(&[0xD0, 0x01, 0x00], V5), E::TrailingBytes);
    // 3.1.1 DISCONNECT has no body; PUBACK is exactly 2 bytes; UNSUBACK too.
    assert_eq!(err(&[0xE0, 0x01, 0x00], V311), E::TrailingBytes);
    assert_eq!(err(&[0x40, 0x03, 0x00, 0x01, 0x00], V311), E::TrailingBytes);
    assert_eq!(err(&[0xB0, 0x03, 0x00, 0x01, 0x00], V311), E::TrailingBytes);
    assert_eq!(err(&[0x20, 0x03, 0x00, 0x00, 0x00], V311), E::TrailingBytes);
    // CONNECT with a byte after the payload.
    assert_eq!(err(&connect4(0x02, &[0x00]), V311), E::TrailingBytes);
    // 5.0 PUBACK with bytes after its properties.
    assert_eq!(
        err(&[0x40, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00], V5),
        E::TrailingBytes
    );
    // SUBACK/UNSUBACK without any code.
    assert_eq!(err(&[0x90, 0x02, 0x00, 0x01], V311), E::Truncated);
    assert_eq!(err(&[0xB0, 0x03, 0x00, 0x01, 0x00], V5), E::Truncated);
}

#[test]
fn string_errors() {
    // [MQTT-1.5.3-1] ill-formed UTF-8 in a topic (overlong '/'), a client
    // id (lone surrogate), a user property.
    assert_eq!(
        err(&[0x30, 0x04, 0x00, 0x02, 0xC0, 0xAF], V311),
        E::InvalidUtf8
    );
    let bad_cid = connect(b"MQTT", 4, 0x02, &[0x00, 0x03, 0xED, 0xA0, 0x80]);
    assert_eq!(err(&bad_cid, V311), E::InvalidUtf8);
    assert_eq!(
        err(&publish5(&[0x26, 0x00, 0x01, 0xFF, 0x00, 0x00]), V5),
        E::InvalidUtf8
    );
    // [MQTT-1.5.3-2] U+0000 in a topic, a filter, a property string.
    assert_eq!(
        err(&[0x30, 0x04, 0x00, 0x02, b'a', 0x00], V311),
        E::NullInString
    );
    assert_eq!(
        err(&[0xA2, 0x05, 0x00, 0x01, 0x00, 0x01, 0x00], V311),
        E::NullInString
    );
    assert_eq!(
        err(&publish5(&[0x03, 0x00, 0x01, 0x00]), V5),
        E::NullInString
    );
}

#[test]
fn connect_errors() {
    // [MQTT-3.1.2-1] unknown protocol name (and a non-UTF-8 one).
    assert_eq!(
        err(&connect(b"MQTX", 4, 0x02, &[0, 0]), V311),
        E::InvalidProtocolName
    );
    assert_eq!(
        err(&connect(&[0xFF, 0xFE], 4, 0x02, &[0, 0]), V311),
        E::InvalidProtocolName
    );
    // [MQTT-3.1.2-2] known name, unsupported level.
    assert_eq!(
        err(&connect(b"MQTT", 6, 0x02, &[0, 0]), V311),
        E::UnsupportedProtocolVersion(6)
    );
    assert_eq!(
        err(&connect(b"MQTT", 3, 0x02, &[0, 0]), V311),
        E::UnsupportedProtocolVersion(3)
    );
    assert_eq!(
        err(&connect(b"MQIsdp", 4, 0x02, &[0, 0]), V311),
        E::UnsupportedProtocolVersion(4)
    );
    assert_eq!(E::UnsupportedProtocolVersion(6).reason_code(), 0x84);
    // [MQTT-3.1.2-3] reserved flag.
    assert_eq!(err(&connect4(0x03, &[]), V311), E::ConnectReservedFlag);
    // [MQTT-3.1.2-11], [MQTT-3.1.2-13] will QoS without the will flag.
    assert_eq!(err(&connect4(0x0A, &[]), V311), E::InvalidWillFlags);
    // [MQTT-3.1.2-15] will retain without the will flag.
    assert_eq!(err(&connect4(0x22, &[]), V311), E::InvalidWillFlags);
    // [MQTT-3.1.2-14] will QoS 3.
    let will = [0x00, 0x01, b't', 0x00, 0x00];
    assert_eq!(err(&connect4(0x1E, &will), V311), E::InvalidWillFlags);
    assert!(one(&connect4(0x16, &will), V311) != Packet::PingReq); // QoS 2 will is fine
    // [MQTT-3.1.2-22] password without user name: refused in 3.1.1, fine in 5.0.
    let pw = [0x00, 0x01, b'p'];
    assert_eq!(err(&connect4(0x42, &pw), V311), E::PasswordWithoutUsername);
    let v5 = connect(b"MQTT", 5, 0x42, &cat(&[&[0x00, 0x00, 0x01, b'c'], &pw]));
    let Packet::Connect(c) = one(&v5, V311) else {
        panic!()
    };
    assert_eq!((c.username, c.password), (None, Some(&b"p"[..])));
    // Will topic is a topic name: [MQTT-3.3.2-2] no wildcards, [MQTT-4.7.3-1] not empty.
    assert_eq!(
        err(&connect4(0x06, &[0x00, 0x01, b'#', 0x00, 0x00]), V311),
        E::WildcardInTopicName
    );
    assert_eq!(
        err(&connect4(0x06, &[0x00, 0x00, 0x00, 0x00]), V311),
        E::EmptyTopicName
    );
    // An empty client id is the core's decision [MQTT-3.1.3-6].
    let empty_id = connect(b"MQTT", 4, 0x02, &[0x00, 0x00]);
    let Packet::Connect(c) = one(&empty_id, V311) else {
        panic!()
    };
    assert_eq!(c.client_id, "");
    // Missing payload fields: user name flag without a user name.
    assert_eq!(err(&connect4(0x82, &[]), V311), E::Truncated);
}

#[test]
fn publish_errors() {
    // [MQTT-3.3.2-2] wildcards in a topic name.
    assert_eq!(
        err(&[0x30, 0x05, 0x00, 0x03, b'a', b'/', b'+'], V311),
        E::WildcardInTopicName
    );
    assert_eq!(
        err(&[0x30, 0x03, 0x00, 0x01, b'#'], V5),
        E::WildcardInTopicName
    );
    // [MQTT-4.7.3-1] empty topic before 5.0; in 5.0 the core checks for an alias.
    assert_eq!(err(&[0x30, 0x02, 0x00, 0x00], V311), E::EmptyTopicName);
    let alias = [0x30, 0x06, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01];
    let Packet::Publish(p) = one(&alias, V5) else {
        panic!()
    };
    assert_eq!((p.topic, p.properties.topic_alias()), ("", Some(1)));
    // [MQTT-2.3.1-1] packet id 0 at QoS 1.
    assert_eq!(
        err(&[0x32, 0x05, 0x00, 0x01, b't', 0x00, 0x00], V311),
        E::ZeroPacketId
    );
    // Empty payload is fine.
    let Packet::Publish(p) = one(&[0x30, 0x03, 0x00, 0x01, b't'], V311) else {
        panic!()
    };
    assert!(p.payload.is_empty());
}

#[test]
fn ack_errors() {
    // [MQTT-2.3.1-1] packet id 0 in acks and (UN)SUBSCRIBE.
    assert_eq!(err(&[0x40, 0x02, 0x00, 0x00], V311), E::ZeroPacketId);
    assert_eq!(err(&[0x62, 0x02, 0x00, 0x00], V5), E::ZeroPacketId);
    // (UN)SUBSCRIBE: a Malformed Packet, as Mosquitto answers it.
    assert_eq!(
        err(&[0x82, 0x06, 0x00, 0x00, 0x00, 0x01, b'a', 0x00], V311),
        E::ZeroSubscribePacketId
    );
    assert_eq!(E::ZeroSubscribePacketId.reason_code(), 0x81);
    assert_eq!(err(&[0x90, 0x03, 0x00, 0x00, 0x00], V311), E::ZeroPacketId);
    // Reason codes outside each packet's set [MQTT 5.0 §3.4.2.1 .. §3.15.2.1].
    assert_eq!(
        err(&[0x40, 0x03, 0x00, 0x01, 0x92], V5),
        E::InvalidReasonCode(0x92)
    ); // PUBACK
    assert_eq!(
        err(&[0x50, 0x03, 0x00, 0x01, 0x04], V5),
        E::InvalidReasonCode(0x04)
    ); // PUBREC
    assert_eq!(
        err(&[0x62, 0x03, 0x00, 0x01, 0x10], V5),
        E::InvalidReasonCode(0x10)
    ); // PUBREL
    assert_eq!(
        err(&[0x70, 0x03, 0x00, 0x01, 0x80], V5),
        E::InvalidReasonCode(0x80)
    ); // PUBCOMP
    assert_eq!(err(&[0xE0, 0x01, 0x05], V5), E::InvalidReasonCode(0x05)); // DISCONNECT
    assert_eq!(err(&[0xF0, 0x01, 0x01], V5), E::InvalidReasonCode(0x01)); // AUTH
    assert_eq!(
        err(&[0x90, 0x03, 0x00, 0x01, 0x03], V311),
        E::InvalidReasonCode(0x03)
    ); // [MQTT-3.9.3-2]
    assert_eq!(
        err(&[0x90, 0x04, 0x00, 0x01, 0x00, 0x8E], V5),
        E::InvalidReasonCode(0x8E)
    );
    assert_eq!(
        err(&[0xB0, 0x04, 0x00, 0x01, 0x00, 0x01], V5),
        E::InvalidReasonCode(0x01)
    );
    assert_eq!(
        err(&[0x20, 0x02, 0x00, 0x06], V311),
        E::InvalidReasonCode(0x06)
    ); // 3.1.1 §3.2.2.3
    assert_eq!(
        err(&[0x20, 0x03, 0x00, 0x01, 0x00], V5),
        E::InvalidReasonCode(0x01)
    );
    // [MQTT-3.2.2-1] CONNACK reserved acknowledge flags.
    assert_eq!(err(&[0x20, 0x02, 0x02, 0x00], V311), E::ConnectReservedFlag);
    // 5.0 CONNACK needs its property length.
    assert_eq!(err(&[0x20, 0x02, 0x00, 0x00], V5), E::Truncated);
}

#[test]
fn subscribe_errors() {
    // [MQTT-3.8.3-3] (3.1.1) / [MQTT-3.8.3-2] (5.0): no filter.
    assert_eq!(err(&[0x82, 0x02, 0x00, 0x01], V311), E::NoTopicFilters);
    assert_eq!(err(&[0x82, 0x03, 0x00, 0x01, 0x00], V5), E::NoTopicFilters);
    // [MQTT-3.10.3-2] UNSUBSCRIBE without a filter.
    assert_eq!(err(&[0xA2, 0x02, 0x00, 0x01], V311), E::NoTopicFilters);
    let sub = |opts: u8, v: ProtocolVersion| {
        let body = if v.is_v5() {
            vec![0x00, 0x01, 0x00, 0x00, 0x01, b'a', opts]
        } else {
            vec![0x00, 0x01, 0x00, 0x01, b'a', opts]
        };
        decode(&frame(0x82, &body), v, MAX).map(|_| ())
    };
    // [MQTT-3-8.3-4] 3.1.1: upper six bits reserved, QoS 3 invalid.
    assert_eq!(sub(0x04, V311), Err(E::InvalidSubscriptionOptions));
    assert_eq!(sub(0x80, V311), Err(E::InvalidSubscriptionOptions));
    assert_eq!(sub(0x03, V311), Err(E::InvalidSubscriptionOptions));
    assert_eq!(sub(0x02, V311), Ok(()));
    // [MQTT-3.8.3-5] 5.0: bits 6-7 reserved; retain handling 3 and QoS 3 invalid (§3.8.3.1).
    assert_eq!(sub(0x40, V5), Err(E::InvalidSubscriptionOptions));
    assert_eq!(sub(0x30, V5), Err(E::InvalidSubscriptionOptions));
    assert_eq!(sub(0x03, V5), Err(E::InvalidSubscriptionOptions));
    assert_eq!(sub(0x2E, V5), Ok(()));
    // A filter with no options byte.
    assert_eq!(
        err(&[0x82, 0x05, 0x00, 0x01, 0x00, 0x01, b'a'], V311),
        E::Truncated
    );
    // Filter syntax is the core's: "a/#/b" and "" decode fine.
    let Packet::Subscribe(s) = one(
        &[
            0x82, 0x0A, 0x00, 0x01, 0x00, 0x05, b'a', b'/', b'#', b'/', b'b', 0x00,
        ],
        V311,
    ) else {
        panic!()
    };
    assert_eq!(s.filters().map(|f| f.0).collect::<Vec<_>>(), ["a/#/b"]);
    assert!(one(&[0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00], V311) != Packet::PingReq);
}

#[test]
fn property_errors() {
    // §2.2.2.2: property not allowed in this packet.
    assert_eq!(
        err(&connect5(&[0x23, 0x00, 0x01], &[]), V5),
        E::PropertyNotAllowed(0x23)
    ); // topic alias in CONNECT
    assert_eq!(
        err(&connect5(&[0x18, 0, 0, 0, 1], &[]), V5),
        E::PropertyNotAllowed(0x18)
    ); // will delay outside will
    assert_eq!(
        err(&publish5(&[0x11, 0, 0, 0, 1]), V5),
        E::PropertyNotAllowed(0x11)
    );
    // SUBSCRIBE 5.0: only subscription identifier and user property.
    let sub = [
        0x00, 0x01, 0x04, 0x1F, 0x00, 0x01, b'r', 0x00, 0x01, b'a', 0x00,
    ];
    // Answered as Malformed Packet there, as Mosquitto does.
    assert_eq!(err(&frame(0x82, &sub), V5), E::MalformedProperty(0x1F));
    assert_eq!(E::MalformedProperty(0x1F).reason_code(), 0x81);
    // The whole list is read first: a cut property further on makes the
    // packet malformed even after a property not allowed here.
    assert_eq!(
        err(&publish5(&[0x11, 0, 0, 0, 1, 0x26, 0x00]), V5),
        E::Truncated
    );
    // [MQTT-1.5.5-1] a variable byte integer in more bytes than needed.
    assert_eq!(
        err(&publish5(&[0x0B, 0x80, 0x00]), V5),
        E::MalformedRemainingLength
    );
    // Unknown identifiers, including any multi-byte one.
    assert_eq!(err(&publish5(&[0x04, 0x00]), V5), E::UnknownProperty(0x04));
    assert_eq!(
        err(&publish5(&[0x81, 0x00, 0x00]), V5),
        E::UnknownProperty(0x81)
    );
    // Duplicates ("It is a Protocol Error to include ... more than once").
    let two = [0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2];
    assert_eq!(err(&connect5(&two, &[]), V5), E::DuplicateProperty(0x11));
    assert_eq!(E::DuplicateProperty(0x11).reason_code(), 0x82);
    let two_ids = frame(
        0x82,
        &[
            0x00, 0x01, 0x04, 0x0B, 0x01, 0x0B, 0x02, 0x00, 0x01, b'a', 0x00,
        ],
    );
    assert_eq!(err(&two_ids, V5), E::DuplicateProperty(0x0B));
    // ...except user properties anywhere and subscription ids in PUBLISH (§3.3.2.3.8).
    let multi = publish5(&[0x0B, 0x01, 0x0B, 0x02, 0x26, 0, 0, 0, 0, 0x26, 0, 0, 0, 0]);
    let Packet::Publish(p) = one(&multi, V5) else {
        panic!()
    };
    assert_eq!(p.properties.iter().count(), 4);
    assert_eq!(p.properties.subscription_identifier(), Some(1));
    // Values out of range.
    for (props, id) in [
        (&[0x21, 0x00, 0x00][..], 0x21), // receive maximum 0 (§3.1.2.11.3)
        (&[0x27, 0, 0, 0, 0][..], 0x27), // maximum packet size 0 (§3.1.2.11.4)
        (&[0x17, 0x02][..], 0x17),       // request problem information 2
        (&[0x19, 0x02][..], 0x19),       // request response information 2
    ] {
        assert_eq!(
            err(&connect5(props, &[]), V5),
            E::InvalidPropertyValue(id),
            "{id:02X}"
        );
    }
    assert_eq!(
        err(&publish5(&[0x23, 0x00, 0x00]), V5),
        E::InvalidPropertyValue(0x23)
    ); // topic alias 0
    // Payload format 2 is forwarded as it came (no rule says otherwise).
    assert!(matches!(
        decode(&publish5(&[0x01, 0x02]), V5, MAX),
        Ok(Some((Packet::Publish(_), _)))
    ));
    assert_eq!(
        err(&publish5(&[0x0B, 0x00]), V5),
        E::InvalidPropertyValue(0x0B)
    ); // subscription id 0
    // [MQTT-3.3.2-14] response topic with a wildcard.
    assert_eq!(
        err(&publish5(&[0x08, 0x00, 0x01, b'#']), V5),
        E::InvalidPropertyValue(0x08)
    );
    for id in [0x24, 0x25, 0x28, 0x29, 0x2A] {
        let connack = [0x20, 0x05, 0x00, 0x00, 0x02, id, 0x02];
        assert_eq!(err(&connack, V5), E::InvalidPropertyValue(id), "{id:02X}");
    }
    // A subscription identifier varint longer than four bytes.
    assert_eq!(
        err(&publish5(&[0x0B, 0x80, 0x80, 0x80, 0x80, 0x01]), V5),
        E::MalformedRemainingLength
    );
    // Will properties are checked against the will's own table.
    let will5 = |wp: &[u8]| {
        let len = u8::try_from(wp.len()).unwrap();
        connect(
            b"MQTT",
            5,
            0x06,
            &cat(&[
                &[0x00, 0x00, 0x01, b'c', len],
                wp,
                &[0x00, 0x01, b't', 0x00, 0x00],
            ]),
        )
    };
    assert_eq!(
        err(&will5(&[0x11, 0, 0, 0, 1]), V5),
        E::PropertyNotAllowed(0x11)
    );
    assert_eq!(err(&will5(&[0x02, 0x00]), V5), E::Truncated);
    assert!(one(&will5(&[0x01, 0x01, 0x02, 0, 0, 0, 9]), V5) != Packet::PingReq);
}

#[test]
fn properties_api() {
    let all = [
        Property::PayloadFormatIndicator(1),
        Property::MessageExpiryInterval(60),
        Property::ContentType("json"),
        Property::ResponseTopic("r/t"),
        Property::CorrelationData(&[1, 2, 3]),
        Property::SubscriptionIdentifier(268_435_455),
        Property::SessionExpiryInterval(u32::MAX),
        Property::AssignedClientIdentifier("auto-1"),
        Property::ServerKeepAlive(30),
        Property::AuthenticationMethod("m"),
        Property::AuthenticationData(b""),
        Property::RequestProblemInformation(0),
        Property::WillDelayInterval(5),
        Property::RequestResponseInformation(1),
        Property::ResponseInformation("ri"),
        Property::ServerReference("other:1883"),
        Property::ReasonString("why"),
        Property::ReceiveMaximum(10),
        Property::TopicAliasMaximum(8),
        Property::TopicAlias(3),
        Property::MaximumQoS(1),
        Property::RetainAvailable(0),
        Property::UserProperty("k", "v"),
        Property::MaximumPacketSize(1024),
        Property::WildcardSubscriptionAvailable(1),
        Property::SubscriptionIdentifierAvailable(0),
        Property::SharedSubscriptionAvailable(1),
    ];
    let buf = props(&all);
    let p = buf.as_properties();
    assert_eq!(
        p.raw().len(),
        all.iter().map(Property::encoded_len).sum::<usize>()
    );
    assert_eq!(p.iter().collect::<Vec<_>>(), all);
    assert_eq!(Properties::try_from_raw(p.raw()), Some(p));
    for q in &all {
        assert_eq!(PropertyId::from_u8(q.id() as u8), Some(q.id()));
    }
    assert_eq!(p.session_expiry_interval(), Some(u32::MAX));
    assert_eq!(p.receive_maximum(), Some(10));
    assert_eq!(p.maximum_packet_size(), Some(1024));
    assert_eq!(p.topic_alias_maximum(), Some(8));
    assert_eq!(p.topic_alias(), Some(3));
    assert_eq!(p.message_expiry_interval(), Some(60));
    assert_eq!(p.payload_format_indicator(), Some(1));
    assert_eq!(p.will_delay_interval(), Some(5));
    assert_eq!(p.request_problem_information(), Some(0));
    assert_eq!(p.request_response_information(), Some(1));
    assert_eq!(p.authentication_method(), Some("m"));
    assert_eq!(p.subscription_identifier(), Some(268_435_455));
    assert_eq!(p.reason_string(), Some("why"));
    let mut out = Vec::new();
    p.encode(&mut out);
    assert_eq!(out.len(), p.encoded_len());
    assert!(Properties::EMPTY.is_empty() && Properties::EMPTY.reason_string().is_none());
    // Garbage is refused by try_from_raw and never panics the iterator.
    assert_eq!(Properties::try_from_raw(&[0x26, 0x00]), None);
    assert_eq!(Properties::try_from_raw(&[0x04]), None);
    let mut forwarded = PropertiesBuf::new();
    forwarded.extend_from(p);
    forwarded.push(&Property::SubscriptionIdentifier(7));
    assert_eq!(forwarded.as_properties().iter().count(), all.len() + 1);
    forwarded.clear();
    assert!(forwarded.is_empty());
}

#[test]
fn filter_iterators_stop_on_garbage() {
    let s = Subscribe {
        packet_id: pid(1),
        properties: Properties::EMPTY,
        raw_filters: &[0x00, 0x01, b'a', 0x01, 0x00, 0x09, b'b'],
        protocol: V311,
    };
    assert_eq!(
        s.filters().collect::<Vec<_>>(),
        [("a", SubOptions::qos_only(QoS::AtLeastOnce))]
    );
    let s = Subscribe {
        raw_filters: &[0x00, 0x01, b'a', 0xFF],
        ..s
    };
    assert_eq!(s.filters().count(), 0);
    // encoded_len and encode agree even then.
    let mut out = Vec::new();
    s.encode(V311, &mut out);
    assert_eq!(out.len(), s.encoded_len(V311));
    let u = Unsubscribe {
        packet_id: pid(1),
        properties: Properties::EMPTY,
        raw_filters: &[0x00, 0x01, b'a', 0x00],
    };
    assert_eq!(u.filters().collect::<Vec<_>>(), ["a"]);
}
