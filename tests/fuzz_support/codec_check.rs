//! The `codec` property: any bytes, under every protocol version, decode to a
//! packet or a clean error; a decoded packet re-encodes canonically to bytes
//! that decode to the same packet; `frame_len` and `decode` agree on sizes.

use boxmq::codec::{self, DecodeError, ProtocolVersion};

pub const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V31,
    ProtocolVersion::V311,
    ProtocolVersion::V5,
];

/// Runs every codec property on `data`.
pub fn check(data: &[u8]) {
    for v in VERSIONS {
        check_version(data, v);
    }
}

fn check_version(data: &[u8], v: ProtocolVersion) {
    let full = codec::decode(data, v, usize::MAX);
    let fl = codec::frame_len(data, usize::MAX);
    match &full {
        Ok(Some((packet, n))) => {
            let n = *n;
            assert!(
                n >= 2 && n <= data.len(),
                "{v:?}: consumed {n} of {}",
                data.len()
            );
            assert_eq!(fl, Ok(Some(n)), "{v:?}: frame_len disagrees with decode");
            round_trip(packet, v);
            // Streaming: every strict prefix is "need more bytes".
            for k in 0..n {
                assert_eq!(
                    codec::decode(&data[..k], v, usize::MAX),
                    Ok(None),
                    "{v:?}: prefix of {k} bytes of a {n}-byte frame"
                );
            }
            // The size bound is checked against the whole frame.
            assert!(
                codec::decode(data, v, n)
                    .is_ok_and(|r| r.is_some_and(|(p, m)| m == n && &p == packet)),
                "{v:?}: a frame of exactly max_packet_size must decode"
            );
            assert_eq!(
                codec::decode(data, v, n - 1),
                Err(DecodeError::PacketTooLarge { size: n }),
                "{v:?}: a frame one byte over max_packet_size"
            );
            // Trailing bytes after the frame are the next frame's business.
            let mut longer = data[..n].to_vec();
            longer.extend_from_slice(&[0xC0, 0x00]);
            assert_eq!(
                codec::decode(&longer, v, usize::MAX).map(|r| r.map(|(_, m)| m)),
                Ok(Some(n)),
                "{v:?}: bytes after the frame changed its decoding"
            );
        }
        Ok(None) => {
            // Not enough bytes: either the header is cut or the body is.
            match fl {
                Ok(None) => {}
                Ok(Some(size)) => assert!(
                    size > data.len(),
                    "{v:?}: decode wants more bytes but frame_len says {size} <= {}",
                    data.len()
                ),
                Err(e) => panic!("{v:?}: decode wants more bytes but frame_len says {e:?}"),
            }
        }
        Err(DecodeError::PacketTooLarge { .. }) => {
            panic!("{v:?}: PacketTooLarge with usize::MAX as the bound")
        }
        Err(e) => {
            // Any other error is about the content: the header is then
            // either complete and consistent or the first byte is bad.
            let _ = e.reason_code();
            let _ = e.to_string();
        }
    }

    if let Err(e) = fl {
        // A broken fixed header is an error whatever else is wrong.
        assert_eq!(e, DecodeError::MalformedRemainingLength, "{v:?}");
        assert!(
            full.is_err(),
            "{v:?}: frame_len says {e:?}, decode {full:?}"
        );
    }

    // A small bound: the decision is taken from the header alone.
    let small = 64;
    let bounded = codec::decode(data, v, small);
    match (&full, fl) {
        (Ok(Some((_, n))), _) if *n > small => assert_eq!(
            bounded,
            Err(DecodeError::PacketTooLarge { size: *n }),
            "{v:?}: bound {small}"
        ),
        (Ok(Some(_)), _) => assert_eq!(bounded, full, "{v:?}: bound {small}"),
        (_, Ok(Some(size))) if size > small && bounded.is_ok() => {
            panic!("{v:?}: a {size}-byte frame passed the {small}-byte bound: {bounded:?}")
        }
        _ => {}
    }
}

/// Encode, check the length prediction, decode again, compare; the second
/// encoding is byte-identical (canonical form is a fixed point).
pub fn round_trip(packet: &codec::Packet<'_>, v: ProtocolVersion) {
    let mut out = Vec::new();
    packet.encode(v, &mut out);
    assert_eq!(
        out.len(),
        packet.encoded_len(v),
        "{v:?}: encoded_len is wrong for {packet:?}"
    );
    assert_eq!(
        codec::frame_len(&out, usize::MAX),
        Ok(Some(out.len())),
        "{v:?}: frame_len of our own encoding"
    );
    let again = match codec::decode(&out, v, usize::MAX) {
        Ok(Some((p, n))) => {
            assert_eq!(
                n,
                out.len(),
                "{v:?}: re-decoding used {n} of {} bytes",
                out.len()
            );
            p
        }
        other => panic!("{v:?}: {packet:?} encodes to {out:02x?}, which decodes to {other:?}"),
    };
    assert_eq!(
        &again, packet,
        "{v:?}: round trip changed the packet ({out:02x?})"
    );
    let mut out2 = Vec::new();
    again.encode(v, &mut out2);
    assert_eq!(out, out2, "{v:?}: encoding is not canonical");
}
