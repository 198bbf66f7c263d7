//! Codec tests: spec byte vectors, round trips, streaming, every error, and
//! a deterministic pseudo-random robustness test.

mod errors;
mod fuzz;

use super::*;
use ProtocolVersion::{V5, V31, V311};

const MAX: usize = 1 << 20;

/// Concatenates byte pieces (spec vectors are written field by field).
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A frame with `first` as its first byte and `body` after a minimal
/// remaining length.
fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![first];
    encode_remaining_length(body.len(), &mut v);
    v.extend_from_slice(body);
    v
}

fn pid(v: u16) -> PacketId {
    PacketId::new(v).unwrap()
}

/// Decodes exactly one whole frame.
fn one(buf: &[u8], version: ProtocolVersion) -> Packet<'_> {
    match decode(buf, version, MAX) {
        Ok(Some((p, n))) => {
            assert_eq!(n, buf.len(), "consumed");
            p
        }
        other => panic!("{buf:02X?}: {other:?}"),
    }
}

fn err(buf: &[u8], version: ProtocolVersion) -> DecodeError {
    match decode(buf, version, MAX) {
        Err(e) => e,
        other => panic!("expected an error for {buf:02X?}, got {other:?}"),
    }
}

/// Every strict prefix of a valid frame is "need more bytes".
fn assert_prefixes_incomplete(buf: &[u8], version: ProtocolVersion) {
    for cut in 0..buf.len() {
        let prefix = buf.get(..cut).unwrap();
        assert_eq!(decode(prefix, version, MAX), Ok(None), "cut at {cut}");
    }
}

/// `p` as a pre-5.0 peer sees it: no properties, no reason codes, UNSUBACK
/// without codes. (SUBSCRIBE is compared through its filters instead.)
fn without_v5_fields<'a>(p: &Packet<'a>) -> Packet<'a> {
    let none = Properties::EMPTY;
    match p.clone() {
        Packet::Connack(c) => Packet::Connack(Connack {
            properties: none,
            ..c
        }),
        Packet::Publish(x) => Packet::Publish(Publish {
            properties: none,
            ..x
        }),
        Packet::PubResp(x) => Packet::PubResp(PubResp {
            reason: 0,
            properties: none,
            ..x
        }),
        Packet::Suback(x) => Packet::Suback(Suback {
            properties: none,
            ..x
        }),
        Packet::Unsubscribe(x) => Packet::Unsubscribe(Unsubscribe {
            properties: none,
            ..x
        }),
        Packet::Unsuback(x) => Packet::Unsuback(Unsuback {
            properties: none,
            codes: &[],
            ..x
        }),
        Packet::Disconnect(_) => Packet::Disconnect(Disconnect {
            reason: 0,
            properties: none,
        }),
        other => other,
    }
}

/// Encodes `p`, checks `encoded_len`, decodes it back to an equal packet
/// (minus what `version` cannot carry) and checks every truncation of the
/// frame. Returns the frame.
fn round_trip(p: &Packet<'_>, version: ProtocolVersion) -> Vec<u8> {
    let mut out = vec![0xAA]; // encode appends: keep a byte in front
    p.encode(version, &mut out);
    let bytes = out.split_off(1);
    assert_eq!(bytes.len(), p.encoded_len(version), "{p:?}");
    let q = one(&bytes, version);
    match (&q, p) {
        (Packet::Subscribe(a), Packet::Subscribe(b)) if !version.is_v5() => {
            let qos = |s: &Subscribe<'_>| {
                s.filters()
                    .map(|(f, o)| (f.to_owned(), o.qos))
                    .collect::<Vec<_>>()
            };
            assert_eq!((a.packet_id, qos(a)), (b.packet_id, qos(b)));
        }
        _ if version.is_v5() || matches!(p, Packet::Connect(_)) => assert_eq!(&q, p),
        _ => assert_eq!(q, without_v5_fields(p)),
    }
    // Re-encoding what was decoded is a fixed point.
    let mut again = Vec::new();
    q.encode(version, &mut again);
    assert_eq!(again, bytes);
    assert_prefixes_incomplete(&bytes, version);
    bytes
}

fn props(list: &[Property<'_>]) -> PropertiesBuf {
    let mut b = PropertiesBuf::new();
    for p in list {
        b.push(p);
    }
    b
}

// ---------------------------------------------------------------- vectors

#[test]
fn connect_311_spec_example() {
    // MQTT 3.1.1 §3.1.2.10 variable header example, with a payload.
    let buf = cat(&[
        &[0x10, 0x24],                         // CONNECT, remaining length 36
        &[0x00, 0x04, b'M', b'Q', b'T', b'T'], // protocol name [MQTT-3.1.2-1]
        &[0x04],                               // level 4 [MQTT-3.1.2-2]
        &[0xCE],       // user name, password, will QoS 1, will flag, clean session
        &[0x00, 0x0A], // keep alive 10
        &[0x00, 0x03],
        b"cid", // client id [MQTT-3.1.3-3]
        &[0x00, 0x03],
        b"w/t", // will topic
        &[0x00, 0x02],
        b"wp", // will message
        &[0x00, 0x04],
        b"user", // user name
        &[0x00, 0x04],
        b"pass", // password
    ]);
    let p = one(&buf, V311);
    let Packet::Connect(c) = &p else {
        panic!("{p:?}")
    };
    assert_eq!(c.protocol, V311);
    assert!(c.clean_start);
    assert_eq!(c.keep_alive, 10);
    assert_eq!(c.client_id, "cid");
    let w = c.will.as_ref().unwrap();
    assert_eq!(
        (w.topic, w.payload, w.qos, w.retain),
        ("w/t", &b"wp"[..], QoS::AtLeastOnce, false)
    );
    assert_eq!(c.username, Some("user"));
    assert_eq!(c.password, Some(&b"pass"[..]));
    assert_eq!(round_trip(&p, V5), buf); // CONNECT ignores `version`
    assert_prefixes_incomplete(&buf, V311);
}

#[test]
fn connect_5_spec_example_with_properties() {
    // MQTT 5.0 §3.1.2.12 example: properties = Session Expiry Interval 10.
    let buf = cat(&[
        &[0x10, 0x1E],                         // CONNECT, remaining length 30
        &[0x00, 0x04, b'M', b'Q', b'T', b'T'], // protocol name
        &[0x05],                               // level 5
        &[0x06],                               // will flag, clean start
        &[0x00, 0x0A],                         // keep alive 10
        &[0x05, 0x11, 0x00, 0x00, 0x00, 0x0A], // props len 5: session expiry 10
        &[0x00, 0x01],
        b"c",                                  // client id
        &[0x05, 0x18, 0x00, 0x00, 0x00, 0x05], // will props: will delay 5
        &[0x00, 0x01],
        b"t",          // will topic
        &[0x00, 0x00], // empty will payload
    ]);
    let p = one(&buf, V311); // decoded by its own level
    let Packet::Connect(c) = &p else {
        panic!("{p:?}")
    };
    assert_eq!(c.protocol, V5);
    assert_eq!(c.properties.session_expiry_interval(), Some(10));
    let w = c.will.as_ref().unwrap();
    assert_eq!(w.properties.will_delay_interval(), Some(5));
    assert_eq!(round_trip(&p, V311), buf);
}

#[test]
fn shelly_button1_connect() {
    let buf = cat(&[
        &[0x10, 0x59],                         // CONNECT, remaining length 89
        &[0x00, 0x04, b'M', b'Q', b'T', b'T'], // protocol name
        &[0x04],                               // level 4 (3.1.1)
        &[0x26],                               // will retain, will flag, clean session; will QoS 0
        &[0x00, 0x3C],                         // keep alive 60
        &[0x00, 0x1A],
        b"shellybutton1-A4CF12F45A10", // client id (26)
        &[0x00, 0x2A],
        b"shellies/shellybutton1-A4CF12F45A10/online", // will topic (42)
        &[0x00, 0x05],
        b"false", // will payload
    ]);
    let p = one(&buf, V311);
    let expected = Packet::Connect(Connect {
        protocol: V311,
        clean_start: true,
        keep_alive: 60,
        properties: Properties::EMPTY,
        client_id: "shellybutton1-A4CF12F45A10",
        will: Some(Will {
            topic: "shellies/shellybutton1-A4CF12F45A10/online",
            payload: b"false",
            qos: QoS::AtMostOnce,
            retain: true,
            properties: Properties::EMPTY,
        }),
        username: None,
        password: None,
    });
    assert_eq!(p, expected);
    assert_eq!(round_trip(&p, V311), buf);
}

#[test]
fn shelly_button1_publish() {
    let buf = cat(&[
        &[0x30, 0x4E], // PUBLISH QoS 0, no DUP/RETAIN, remaining length 78
        &[0x00, 0x31],
        b"shellies/shellybutton1-A4CF12F45A10/input_event/0", // topic (49)
        br#"{"event":"S","event_cnt":3}"#,                    // payload (27), no packet id at QoS 0
    ]);
    let p = one(&buf, V311);
    let Packet::Publish(pb) = &p else {
        panic!("{p:?}")
    };
    assert_eq!(
        pb.topic,
        "shellies/shellybutton1-A4CF12F45A10/input_event/0"
    );
    assert_eq!(pb.payload, br#"{"event":"S","event_cnt":3}"#);
    assert_eq!(
        (pb.qos, pb.dup, pb.retain, pb.packet_id),
        (QoS::AtMostOnce, false, false, None)
    );
    assert_eq!(round_trip(&p, V311), buf);
}

#[test]
fn simple_311_vectors() {
    // CONNACK [MQTT 3.1.1 §3.2]: flags 0x01 session present, code 0.
    let p = one(&[0x20, 0x02, 0x01, 0x00], V311);
    assert_eq!(
        p,
        Packet::Connack(Connack {
            session_present: true,
            code: 0,
            properties: Properties::EMPTY
        })
    );
    assert_eq!(round_trip(&p, V311), [0x20, 0x02, 0x01, 0x00]);
    // PUBLISH [MQTT 3.1.1 §3.3.2.3 example]: QoS 1 retain, "a/b", packet id 10.
    let buf = [
        0x33, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0A, b'h', b'i',
    ];
    let p = one(&buf, V311);
    let Packet::Publish(pb) = &p else { panic!() };
    assert_eq!(
        (pb.topic, pb.packet_id, pb.retain, pb.payload),
        ("a/b", Some(pid(10)), true, &b"hi"[..])
    );
    assert_eq!(round_trip(&p, V311), buf);
    // PUBACK / PUBREC / PUBREL (flags 0b0010) / PUBCOMP, packet id 10.
    for (b, kind) in [
        (0x40, PubRespKind::PubAck),
        (0x50, PubRespKind::PubRec),
        (0x62, PubRespKind::PubRel),
        (0x70, PubRespKind::PubComp),
    ] {
        let buf = [b, 0x02, 0x00, 0x0A];
        let p = one(&buf, V311);
        assert_eq!(
            p,
            Packet::PubResp(PubResp {
                kind,
                packet_id: pid(10),
                reason: 0,
                properties: Properties::EMPTY
            })
        );
        assert_eq!(round_trip(&p, V311), buf);
    }
    // SUBSCRIBE [MQTT 3.1.1 §3.8.3 example]: "a/b" QoS 1, "c/d" QoS 2.
    let buf = [
        0x82, 0x0E, // SUBSCRIBE, flags 0b0010 [MQTT-3.8.1-1]
        0x00, 0x0A, // packet id 10
        0x00, 0x03, b'a', b'/', b'b', 0x01, // filter, requested QoS 1
        0x00, 0x03, b'c', b'/', b'd', 0x02, // filter, requested QoS 2
    ];
    let p = one(&buf, V311);
    let Packet::Subscribe(s) = &p else { panic!() };
    let f: Vec<_> = s.filters().collect();
    assert_eq!(
        f,
        [
            ("a/b", SubOptions::qos_only(QoS::AtLeastOnce)),
            ("c/d", SubOptions::qos_only(QoS::ExactlyOnce))
        ]
    );
    assert_eq!(round_trip(&p, V311), buf);
    // SUBACK [MQTT 3.1.1 §3.9.3 example]: QoS 0, QoS 2, failure.
    let buf = [0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x80];
    let p = one(&buf, V311);
    let Packet::Suback(s) = &p else { panic!() };
    assert_eq!(s.codes, [0x00, 0x02, 0x80]);
    assert_eq!(round_trip(&p, V311), buf);
    // UNSUBSCRIBE [MQTT 3.1.1 §3.10.3 example].
    let buf = [
        0xA2, 0x0C, 0x00, 0x0A, // UNSUBSCRIBE flags 0b0010 [MQTT-3.10.1-1], packet id 10
        0x00, 0x03, b'a', b'/', b'b', 0x00, 0x03, b'c', b'/', b'd',
    ];
    let p = one(&buf, V311);
    let Packet::Unsubscribe(u) = &p else { panic!() };
    assert_eq!(u.filters().collect::<Vec<_>>(), ["a/b", "c/d"]);
    assert_eq!(round_trip(&p, V311), buf);
    // UNSUBACK, PINGREQ, PINGRESP, DISCONNECT.
    assert_eq!(
        round_trip(&one(&[0xB0, 0x02, 0x00, 0x0A], V311), V311),
        [0xB0, 0x02, 0x00, 0x0A]
    );
    assert_eq!(one(&[0xC0, 0x00], V311), Packet::PingReq);
    assert_eq!(one(&[0xD0, 0x00], V311), Packet::PingResp);
    assert_eq!(round_trip(&Packet::PingReq, V311), [0xC0, 0x00]);
    assert_eq!(round_trip(&Packet::PingResp, V5), [0xD0, 0x00]);
    let p = one(&[0xE0, 0x00], V311);
    assert_eq!(round_trip(&p, V311), [0xE0, 0x00]);
}

#[test]
fn mqisdp_31_connect() {
    let buf = cat(&[
        &[0x10, 0x0F],
        &[0x00, 0x06],
        b"MQIsdp",     // protocol name of 3.1
        &[0x03],       // level 3
        &[0x02],       // clean session
        &[0x00, 0x00], // keep alive off
        &[0x00, 0x01],
        b"x",
    ]);
    let p = one(&buf, V311);
    let Packet::Connect(c) = &p else { panic!() };
    assert_eq!(c.protocol, V31);
    assert_eq!(round_trip(&p, V31), buf);
}

#[test]
fn v5_vectors() {
    // CONNACK 5.0: flags 0, reason 0, properties: receive maximum 20,
    // maximum QoS 1 [MQTT 5.0 §3.2.2.3].
    let buf = [0x20, 0x08, 0x00, 0x00, 0x05, 0x21, 0x00, 0x14, 0x24, 0x01];
    let p = one(&buf, V5);
    let Packet::Connack(c) = &p else { panic!() };
    assert_eq!(c.properties.receive_maximum(), Some(20));
    assert_eq!(round_trip(&p, V5), buf);
    // The same CONNACK for 3.1.1 is exactly 4 bytes.
    assert_eq!(round_trip(&p, V311), [0x20, 0x02, 0x00, 0x00]);
    // PUBACK 5.0 short forms [MQTT 5.0 §3.4.2.1]: length 2 = reason 0.
    let p = one(&[0x40, 0x02, 0x00, 0x01], V5);
    let Packet::PubResp(r) = &p else { panic!() };
    assert_eq!((r.reason, r.properties), (0, Properties::EMPTY));
    // Length 3: reason only; 0x10 "no matching subscribers".
    let p = one(&[0x40, 0x03, 0x00, 0x01, 0x10], V5);
    assert_eq!(round_trip(&p, V5), [0x40, 0x03, 0x00, 0x01, 0x10]);
    // Length 3 with reason 0 re-encodes to the canonical 2-byte form.
    let p = one(&[0x40, 0x03, 0x00, 0x01, 0x00], V5);
    assert_eq!(round_trip(&p, V5), [0x40, 0x02, 0x00, 0x01]);
    // Length 4: reason and an empty property list.
    let p = one(&[0x50, 0x04, 0x00, 0x01, 0x80, 0x00], V5);
    assert_eq!(round_trip(&p, V5), [0x50, 0x03, 0x00, 0x01, 0x80]);
    // Reason + reason string "x".
    let buf = [0x70, 0x08, 0x00, 0x01, 0x92, 0x04, 0x1F, 0x00, 0x01, b'x'];
    let p = one(&buf, V5);
    let Packet::PubResp(r) = &p else { panic!() };
    assert_eq!(r.properties.reason_string(), Some("x"));
    assert_eq!(round_trip(&p, V5), buf);
    // Encoded for 3.1.1 the reason and properties disappear.
    assert_eq!(round_trip(&p, V311).len(), 4);
    // DISCONNECT 5.0 [MQTT 5.0 §3.14.2.1]: 0 bytes = reason 0; 1 byte = reason.
    let p = one(&[0xE0, 0x00], V5);
    assert_eq!(
        p,
        Packet::Disconnect(Disconnect {
            reason: 0,
            properties: Properties::EMPTY
        })
    );
    let p = one(&[0xE0, 0x01, 0x04], V5); // 0x04 disconnect with will message
    assert_eq!(round_trip(&p, V5), [0xE0, 0x01, 0x04]);
    assert_eq!(round_trip(&p, V311), [0xE0, 0x00]);
    // DISCONNECT with session expiry 0 property.
    let buf = [0xE0, 0x07, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x00];
    assert_eq!(round_trip(&one(&buf, V5), V5), buf);
    // AUTH [MQTT 5.0 §3.15]: continue authentication 0x18, method "m".
    let buf = [0xF0, 0x06, 0x18, 0x04, 0x15, 0x00, 0x01, b'm'];
    let p = one(&buf, V5);
    let Packet::Auth(a) = &p else { panic!() };
    assert_eq!(
        (a.reason, a.properties.authentication_method()),
        (0x18, Some("m"))
    );
    assert_eq!(round_trip(&p, V5), buf);
    assert_eq!(
        one(&[0xF0, 0x00], V5),
        Packet::Auth(Auth {
            reason: 0,
            properties: Properties::EMPTY
        })
    );
    // SUBSCRIBE 5.0 with subscription identifier 300 (two-byte varint) and
    // options no local + retain as published + retain handling 2 + QoS 1.
    let buf = [
        0x82, 0x0A, 0x00, 0x02, // packet id 2
        0x03, 0x0B, 0xAC, 0x02, // props: subscription identifier 300
        0x00, 0x01, b'#', 0x2D, // "#", options 0b0010_1101
    ];
    let p = one(&buf, V5);
    let Packet::Subscribe(s) = &p else { panic!() };
    assert_eq!(s.properties.subscription_identifier(), Some(300));
    let (f, o) = s.filters().next().unwrap();
    assert_eq!(f, "#");
    assert_eq!(
        o,
        SubOptions {
            qos: QoS::AtLeastOnce,
            no_local: true,
            retain_as_published: true,
            retain_handling: 2
        }
    );
    assert_eq!(o.to_byte(), 0x2D);
    assert_eq!(round_trip(&p, V5), buf);
    // SUBACK / UNSUBACK 5.0 with codes.
    let buf = [0x90, 0x05, 0x00, 0x02, 0x00, 0x01, 0x97];
    assert_eq!(round_trip(&one(&buf, V5), V5), buf);
    let buf = [0xB0, 0x05, 0x00, 0x02, 0x00, 0x00, 0x11];
    let p = one(&buf, V5);
    assert_eq!(round_trip(&p, V5), buf);
    assert_eq!(round_trip(&p, V311), [0xB0, 0x02, 0x00, 0x02]);
}

// ------------------------------------------------------------ round trips

fn sample_packets<'a>(pb: &'a PropertiesBuf, wp: &'a PropertiesBuf) -> Vec<Packet<'a>> {
    let props = pb.as_properties();
    vec![
        Packet::Connect(Connect {
            protocol: V5,
            clean_start: false,
            keep_alive: 300,
            properties: props,
            client_id: "",
            will: Some(Will {
                topic: "dev/1/status",
                payload: &[0, 1, 2],
                qos: QoS::ExactlyOnce,
                retain: false,
                properties: wp.as_properties(),
            }),
            username: None,
            password: Some(b"secret"), // allowed without user name in 5.0
        }),
        Packet::Connect(Connect {
            protocol: V311,
            clean_start: true,
            keep_alive: 0,
            properties: Properties::EMPTY,
            client_id: "c",
            will: None,
            username: Some("u"),
            password: Some(b""),
        }),
        Packet::Connack(Connack {
            session_present: false,
            code: 0x00,
            properties: props,
        }),
        Packet::Publish(Publish {
            dup: true,
            qos: QoS::ExactlyOnce,
            retain: true,
            topic: "a/b/c",
            packet_id: Some(pid(65535)),
            properties: props,
            payload: &[0xFF; 200],
        }),
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "t",
            packet_id: None,
            properties: Properties::EMPTY,
            payload: b"",
        }),
        Packet::PubResp(PubResp {
            kind: PubRespKind::PubAck,
            packet_id: pid(1),
            reason: 0,
            properties: Properties::EMPTY,
        }),
        Packet::PubResp(PubResp {
            kind: PubRespKind::PubRel,
            packet_id: pid(7),
            reason: 0,
            properties: props,
        }),
        Packet::Suback(Suback {
            packet_id: pid(3),
            properties: props,
            codes: &[0, 1, 2, 0x80],
        }),
        Packet::Unsuback(Unsuback {
            packet_id: pid(4),
            properties: props,
            codes: &[0x00, 0x80],
        }),
        Packet::PingReq,
        Packet::PingResp,
        Packet::Disconnect(Disconnect {
            reason: 0x00,
            properties: Properties::EMPTY,
        }),
        Packet::Disconnect(Disconnect {
            reason: 0x8E,
            properties: props,
        }),
    ]
}

#[test]
fn round_trip_every_packet_type_both_versions() {
    // Only properties valid in every packet used here: reason string and
    // user properties; CONNECT-only ones are fine in CONNECT too.
    let pb = props(&[
        Property::UserProperty("k", "v"),
        Property::UserProperty("k", "w"),
    ]);
    let wp = props(&[
        Property::WillDelayInterval(30),
        Property::ContentType("text/plain"),
    ]);
    for version in [V311, V5] {
        for p in sample_packets(&pb, &wp) {
            let bytes = round_trip(&p, version);
            if !version.is_v5() {
                // Nothing 5.0-only leaks into a 3.1.1 frame (CONNECT aside,
                // whose level is its own).
                if !matches!(p, Packet::Connect(_)) {
                    assert!(
                        !bytes.windows(4).any(|w| w == [0x26, 0x00, 0x01, b'k']),
                        "{p:?}"
                    );
                }
            }
        }
        // SUBSCRIBE and UNSUBSCRIBE through their encoders.
        let filters = [
            ("a/+/c", SubOptions::qos_only(QoS::AtLeastOnce)),
            (
                "#",
                SubOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: version.is_v5(),
                    retain_as_published: false,
                    retain_handling: 0,
                },
            ),
        ];
        let mut out = Vec::new();
        encode_subscribe(pid(9), pb.as_properties(), &filters, version, &mut out);
        let p = one(&out, version);
        assert_eq!(p.encoded_len(version), out.len());
        let Packet::Subscribe(s) = &p else { panic!() };
        assert_eq!(s.filters().collect::<Vec<_>>(), filters);
        round_trip(&p, version);
        let mut out = Vec::new();
        encode_unsubscribe(pid(9), pb.as_properties(), &["a", "b/#"], version, &mut out);
        let p = one(&out, version);
        let Packet::Unsubscribe(u) = &p else { panic!() };
        assert_eq!(u.filters().collect::<Vec<_>>(), ["a", "b/#"]);
        round_trip(&p, version);
    }
    // An AUTH with properties.
    let ap = props(&[
        Property::AuthenticationMethod("SCRAM"),
        Property::AuthenticationData(&[1, 2]),
    ]);
    round_trip(
        &Packet::Auth(Auth {
            reason: 0x19,
            properties: ap.as_properties(),
        }),
        V5,
    );
}

#[test]
fn publish_encode_reserves_once() {
    let p = Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "x/y",
        packet_id: Some(pid(5)),
        properties: Properties::EMPTY,
        payload: &[7; 5000],
    };
    let mut out = Vec::new();
    p.encode(V311, &mut out);
    // One exact reservation and no growth afterwards.
    assert_eq!(out.capacity(), out.len());
    assert_eq!(out.len(), p.encoded_len(V311));
    assert_eq!(out.get(..3), Some(&[0x32, 0x8F, 0x27][..])); // 5009 = 0x0F + 0x27 * 128
}

// -------------------------------------------------------------- streaming

#[test]
fn frames_split_across_reads_and_back_to_back() {
    let mut stream = Vec::new();
    let pb = PropertiesBuf::new();
    let packets = sample_packets(&pb, &pb);
    for p in &packets {
        p.encode(V5, &mut stream);
    }
    // All frames in one buffer: decode returns how much each one consumed.
    let mut at = 0;
    for p in &packets {
        let (q, n) = decode(stream.get(at..).unwrap(), V5, MAX).unwrap().unwrap();
        assert_eq!(&q, p);
        at += n;
    }
    assert_eq!(at, stream.len());
    // The same stream fed 3 bytes at a time, as reads would deliver it.
    let mut buf: Vec<u8> = Vec::new();
    let mut got = 0;
    for chunk in stream.chunks(3) {
        buf.extend_from_slice(chunk);
        while let Some((q, n)) = decode(&buf, V5, MAX).unwrap() {
            assert_eq!(&q, packets.get(got).unwrap());
            got += 1;
            buf.drain(..n);
        }
    }
    assert_eq!(got, packets.len());
    assert!(buf.is_empty());
}

#[test]
fn oversized_frame_refused_from_header_alone() {
    // PUBLISH declaring 1,000,000 bytes of body; only the header has arrived.
    let mut head = vec![0x30];
    encode_remaining_length(1_000_000, &mut head);
    let size = 1 + head.len() - 1 + 1_000_000;
    assert_eq!(
        frame_len(&head, 1000),
        Err(DecodeError::PacketTooLarge { size })
    );
    assert_eq!(
        decode(&head, V311, 1000),
        Err(DecodeError::PacketTooLarge { size })
    );
    // The limit counts the fixed header: a 10-byte frame fits 10, not 9.
    assert_eq!(frame_len(&[0xC0, 0x08], 10), Ok(Some(10)));
    assert_eq!(
        frame_len(&[0xC0, 0x08], 9),
        Err(DecodeError::PacketTooLarge { size: 10 })
    );
    // Incomplete fixed headers.
    assert_eq!(frame_len(&[], 10), Ok(None));
    assert_eq!(frame_len(&[0x30], 10), Ok(None));
    assert_eq!(frame_len(&[0x30, 0x80, 0x80], MAX), Ok(None));
}

#[test]
fn non_minimal_remaining_length_accepted() {
    // [MQTT-2.2.3]: PINGREQ with remaining length 0 encoded in 2 bytes.
    assert_eq!(
        decode(&[0xC0, 0x80, 0x00], V311, MAX),
        Ok(Some((Packet::PingReq, 3)))
    );
}
