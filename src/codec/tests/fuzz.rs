//! Deterministic pseudo-random robustness test: random and mutated byte
//! strings never panic the decoder, and whatever decodes re-encodes to a
//! frame that decodes to an equal packet.

use super::*;

/// xorshift64* (Vigna), seeded: reproducible without any extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}

/// Valid frames of every type and both property-less and property-rich forms.
fn corpus() -> Vec<(Vec<u8>, ProtocolVersion)> {
    let pb = props(&[
        Property::UserProperty("k", "v"),
        Property::ReasonString("r"),
    ]);
    let cp = props(&[
        Property::SessionExpiryInterval(9),
        Property::ReceiveMaximum(3),
    ]);
    let wp = props(&[
        Property::WillDelayInterval(1),
        Property::ResponseTopic("r/t"),
    ]);
    let pp = props(&[Property::TopicAlias(2), Property::SubscriptionIdentifier(5)]);
    let sp = props(&[
        Property::SubscriptionIdentifier(300),
        Property::UserProperty("a", "b"),
    ]);
    let none = PropertiesBuf::new();
    let mut out = Vec::new();
    for v in [V311, V5] {
        let mut packets = sample_packets(&none, &none);
        packets.push(Packet::Connack(Connack {
            session_present: true,
            code: if v.is_v5() { 0x80 } else { 0x05 },
            properties: pb.as_properties(),
        }));
        packets.push(Packet::Connect(Connect {
            protocol: v,
            clean_start: true,
            keep_alive: 5,
            properties: if v.is_v5() {
                cp.as_properties()
            } else {
                Properties::EMPTY
            },
            client_id: "id",
            will: Some(Will {
                topic: "w",
                payload: b"p",
                qos: QoS::AtLeastOnce,
                retain: true,
                properties: if v.is_v5() {
                    wp.as_properties()
                } else {
                    Properties::EMPTY
                },
            }),
            username: Some("u"),
            password: Some(b"pw"),
        }));
        packets.push(Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "a/b",
            packet_id: Some(pid(2)),
            properties: pp.as_properties(),
            payload: b"xyz",
        }));
        packets.push(Packet::PubResp(PubResp {
            kind: PubRespKind::PubRec,
            packet_id: pid(2),
            reason: 0x10,
            properties: pb.as_properties(),
        }));
        if v.is_v5() {
            packets.push(Packet::Auth(Auth {
                reason: 0x18,
                properties: Properties::EMPTY,
            }));
        }
        for p in packets {
            let mut f = Vec::new();
            p.encode(v, &mut f);
            out.push((f, v));
        }
        let mut f = Vec::new();
        let filters = [
            ("a/+", SubOptions::qos_only(QoS::AtLeastOnce)),
            ("#", SubOptions::qos_only(QoS::AtMostOnce)),
        ];
        encode_subscribe(pid(3), sp.as_properties(), &filters, v, &mut f);
        out.push((f, v));
        let mut f = Vec::new();
        encode_unsubscribe(pid(4), Properties::EMPTY, &["x", "y/z"], v, &mut f);
        out.push((f, v));
    }
    out
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..=rng.below(3) {
        match rng.below(6) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                if let Some(x) = b.get_mut(i) {
                    *x ^= 1 << rng.below(8);
                }
            }
            1 if !b.is_empty() => {
                let i = rng.below(b.len());
                if let Some(x) = b.get_mut(i) {
                    *x = rng.byte();
                }
            }
            2 if !b.is_empty() => b.truncate(rng.below(b.len())),
            3 => {
                let i = rng.below(b.len() + 1);
                b.insert(i, rng.byte());
            }
            4 if b.len() > 2 => {
                // Keep the body, fix up the remaining length so the frame
                // stays self-consistent and reaches the body decoders.
                let body_at = 1
                    + (1..b.len())
                        .find(|&i| b.get(i).is_some_and(|x| x & 0x80 == 0))
                        .unwrap_or(1);
                let body = b.get(body_at..).unwrap_or_default().to_vec();
                let first = b.first().copied().unwrap_or(0);
                b = frame(first, &body);
            }
            _ => {
                if let Some(x) = b.first_mut() {
                    *x = rng.byte();
                }
            }
        }
    }
    b
}

fn check(buf: &[u8], version: ProtocolVersion, stats: &mut [usize; 2]) {
    let _ = frame_len(buf, 4096);
    match decode(buf, version, 4096) {
        Ok(Some((p, n))) => {
            stats[0] += 1;
            assert!(n <= buf.len());
            let mut out = Vec::new();
            p.encode(version, &mut out);
            assert_eq!(out.len(), p.encoded_len(version), "{p:?}");
            match decode(&out, version, usize::MAX) {
                Ok(Some((q, m))) => {
                    assert_eq!(q, p, "re-decoded differs, input {buf:02X?}");
                    assert_eq!(m, out.len());
                }
                other => panic!("re-encoded {p:?} as {out:02X?}: {other:?}"),
            }
        }
        Ok(None) => {}
        Err(_) => stats[1] += 1,
    }
}

#[test]
fn random_and_mutated_inputs() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let corpus = corpus();
    let mut stats = [0usize; 2];
    for (f, v) in &corpus {
        check(f, *v, &mut stats);
    }
    assert_eq!(stats, [corpus.len(), 0], "corpus must decode cleanly");
    for i in 0..60_000 {
        let buf = if i % 4 == 0 {
            // Pure noise, with a plausible first byte half the time.
            let len = rng.below(40);
            let mut b: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
            if i % 8 == 0 {
                b.insert(
                    0,
                    [
                        0x10, 0x20, 0x30, 0x32, 0x40, 0x62, 0x82, 0x90, 0xA2, 0xB0, 0xE0, 0xF0,
                    ][rng.below(12)],
                );
            }
            b
        } else {
            let (base, _) = corpus.get(rng.below(corpus.len())).unwrap();
            mutate(&mut rng, base)
        };
        for v in [V31, V311, V5] {
            check(&buf, v, &mut stats);
        }
    }
    // The test only means something if both outcomes are common.
    assert!(stats[0] > 5_000 && stats[1] > 5_000, "{stats:?}");
}
