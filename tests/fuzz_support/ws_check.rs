//! The `ws` target's property (cargo feature `websockets`): the server side
//! WebSocket layer (`src/net/ws.rs`: the upgrade request, then RFC 6455
//! frames) on any bytes a client can send.
//!
//! Input: byte 0 picks the largest frame (1 + 64 x byte, 1..16,321 bytes),
//! byte 1 how the bytes are cut into reads (pieces of 1 to 16 bytes,
//! cycling), bit 0 of byte 2 puts a valid upgrade request first (so the
//! fuzzer spends its time on frames); the rest is what the client sends.
//! Properties:
//! * nothing panics;
//! * cut into reads anywhere, the same bytes give the same MQTT bytes,
//!   the same answer on the wire, and end (or not) alike;
//! * MQTT bytes never outnumber the input (payloads are unmasked, never
//!   made up), and the answers stay within the upgrade answer plus one
//!   echo of the input (pongs, a close frame).

use boxmq::net::fuzzing::{WsOutcome, ws_feed};

/// Longest client input looked at.
const MAX_INPUT: usize = 8192;

/// A valid upgrade request (RFC 6455 §1.3, subprotocol `mqtt`).
pub const UPGRADE: &[u8] = b"GET /mqtt HTTP/1.1\r\nHost: box\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";

pub fn check(data: &[u8]) {
    let (Some(&frame), Some(&cut), Some(&flags)) = (data.first(), data.get(1), data.get(2)) else {
        return;
    };
    let max_frame = 1 + 64 * usize::from(frame);
    let mut input = Vec::new();
    if flags & 1 == 1 {
        input.extend_from_slice(UPGRADE);
    }
    input.extend_from_slice(&data[3..data.len().min(3 + MAX_INPUT)]);
    let whole = ws_feed(max_frame, [input.as_slice()]);
    let mut pieces = Vec::new();
    let mut rest = input.as_slice();
    let mut n = usize::from(cut);
    while !rest.is_empty() {
        let size = 1 + n % 16;
        n = n.wrapping_mul(31).wrapping_add(7);
        let (piece, after) = rest.split_at(size.min(rest.len()));
        pieces.push(piece);
        rest = after;
    }
    let cut_up = ws_feed(max_frame, pieces);
    same(&whole, &cut_up);
    assert!(
        whole.mqtt.len() <= input.len(),
        "more MQTT bytes than input"
    );
    assert!(
        whole.out.len() <= 512 + input.len(),
        "{} bytes answered to {} bytes",
        whole.out.len(),
        input.len()
    );
}

fn same(a: &WsOutcome, b: &WsOutcome) {
    assert_eq!(a.mqtt, b.mqtt, "MQTT bytes depend on how reads are cut");
    assert_eq!(a.out, b.out, "answers depend on how reads are cut");
    assert_eq!(
        a.end.is_some(),
        b.end.is_some(),
        "ended {:?} / {:?}",
        a.end,
        b.end
    );
}

/// A masked client frame.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut v = vec![u8::from(fin) << 7 | opcode];
    match payload.len() {
        n @ 0..=125 => v.push(0x80 | n as u8),
        n @ 126..=65_535 => {
            v.push(0x80 | 126);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            v.push(0x80 | 127);
            v.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    v.extend_from_slice(&mask);
    v.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    v
}

/// Seed inputs: an MQTT CONNECT in one frame, split over fragments, with a
/// ping between, a close, an oversized frame, an unmasked frame, and
/// requests that are not WebSocket upgrades.
pub fn ws_seeds() -> Vec<(String, Vec<u8>)> {
    let connect: &[u8] = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00";
    let with = |frame_limit: u8, cut: u8, upgrade: bool, body: Vec<u8>| {
        let mut v = vec![frame_limit, cut, u8::from(upgrade)];
        v.extend_from_slice(&body);
        v
    };
    let fragments = [
        frame(false, 2, &connect[..5]),
        frame(true, 9, b"hi"),
        frame(true, 0, &connect[5..]),
    ]
    .concat();
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("connect", with(4, 3, true, frame(true, 2, connect))),
        ("fragments-and-ping", with(4, 5, true, fragments)),
        (
            "close",
            with(
                4,
                1,
                true,
                [frame(true, 2, connect), frame(true, 8, b"\x03\xe8bye")].concat(),
            ),
        ),
        ("oversized", with(0, 2, true, frame(true, 2, &[0; 300]))),
        (
            "long-length",
            with(255, 9, true, frame(true, 2, &[0x30; 70_000][..8000])),
        ),
        (
            "unmasked",
            with(4, 0, true, b"\x82\x03\x10\x01\x00".to_vec()),
        ),
        ("text-frame", with(4, 0, true, frame(true, 1, b"{}"))),
        (
            "upgrade-by-hand",
            with(4, 7, false, [UPGRADE, &frame(true, 2, connect)].concat()),
        ),
        (
            "no-mqtt-protocol",
            with(
                4,
                4,
                false,
                b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n\r\n"
                    .to_vec(),
            ),
        ),
        ("plain-mqtt", with(4, 4, false, connect.to_vec())),
    ];
    seeds
        .into_iter()
        .map(|(name, data)| (name.to_owned(), data))
        .collect()
}
