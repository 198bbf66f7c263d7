//! Unit tests of the WebSocket layer (sans-IO).

use super::*;

const UPGRADE: &str = "GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
    Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqttv3.1, mqtt\r\n\r\n";

/// A masked client frame.
fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
    let len = payload.len();
    if len < 126 {
        f.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        f.push(0x80 | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

fn open() -> WsConn {
    let mut ws = WsConn::new(1024);
    let mut mqtt = Vec::new();
    ws.input(UPGRADE.as_bytes(), &mut mqtt).expect("upgrade");
    assert!(mqtt.is_empty());
    ws.out.clear();
    ws
}

#[test]
fn upgrade_answer_has_rfc_accept_key_and_subprotocol() {
    let mut ws = WsConn::new(1024);
    let mut mqtt = Vec::new();
    // Byte by byte: the blank line is found across reads.
    for b in UPGRADE.bytes() {
        ws.input(&[b], &mut mqtt).expect("upgrade");
    }
    let answer = String::from_utf8(ws.out.clone()).expect("text");
    assert!(answer.starts_with("HTTP/1.1 101 "), "{answer}");
    // RFC 6455 §1.3's example.
    assert!(answer.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(answer.contains("Sec-WebSocket-Protocol: mqtt\r\n"));
    assert!(ws.is_open());
}

#[test]
fn upgrade_without_mqtt_or_malformed_is_refused_with_400() {
    for request in [
        UPGRADE.replace("mqttv3.1, mqtt", "chat"),
        UPGRADE.replace("Sec-WebSocket-Protocol: mqttv3.1, mqtt\r\n", ""),
        UPGRADE.replace("Version: 13", "Version: 8"),
        UPGRADE.replace("Upgrade: websocket", "Upgrade: h2c"),
        UPGRADE.replace("GET", "POST"),
        "\x16\x03\x01garbage\r\n\r\n".to_owned(),
    ] {
        let mut ws = WsConn::new(1024);
        let end = ws
            .input(request.as_bytes(), &mut Vec::new())
            .expect_err(&request);
        assert!(!end.normal);
        assert!(ws.out.starts_with(b"HTTP/1.1 400 "), "{request}");
    }
}

#[test]
fn header_section_is_bounded() {
    let mut ws = WsConn::new(1024);
    let junk = vec![b'a'; 1000];
    let mut result = Ok(());
    for _ in 0..10 {
        result = ws.input(&junk, &mut Vec::new());
        if result.is_err() {
            break;
        }
    }
    let end = result.expect_err("bounded");
    assert!(end.message.contains("larger than 8192"), "{}", end.message);
}

#[test]
fn frames_split_anywhere_and_several_packets_per_frame() {
    let packets: Vec<u8> = [&[0xC0u8, 0x00][..], &[0x30, 0x03, 0x00, 0x01, b'a']].concat();
    // Two packets in one frame, delivered one byte at a time.
    let mut ws = open();
    let mut mqtt = Vec::new();
    for b in client_frame(true, OP_BINARY, &packets) {
        ws.input(&[b], &mut mqtt).expect("frame");
    }
    assert_eq!(mqtt, packets);
    // One packet over three frames (binary + continuations), with a ping
    // between fragments, all in one read, right after the upgrade.
    let mut ws = WsConn::new(1024);
    let mut wire = UPGRADE.as_bytes().to_vec();
    wire.extend(client_frame(false, OP_BINARY, &packets[..1]));
    wire.extend(client_frame(false, OP_CONT, &packets[1..4]));
    wire.extend(client_frame(true, OP_PING, b"hi"));
    wire.extend(client_frame(true, OP_CONT, &packets[4..]));
    let mut mqtt = Vec::new();
    ws.input(&wire, &mut mqtt).expect("frames");
    assert_eq!(mqtt, packets);
    assert!(ws.out.ends_with(&[0x8A, 2, b'h', b'i']), "pong");
}

#[test]
fn long_lengths_and_server_frames() {
    let mut ws = WsConn::new(100_000);
    ws.input(UPGRADE.as_bytes(), &mut Vec::new())
        .expect("upgrade");
    for len in [125usize, 126, 65_535, 65_536] {
        let payload = vec![7u8; len];
        let mut mqtt = Vec::new();
        ws.input(&client_frame(true, OP_BINARY, &payload), &mut mqtt)
            .expect("frame");
        assert_eq!(mqtt, payload);
        ws.out.clear();
        ws.send(&payload);
        let header = match len {
            125 => vec![0x82, 125],
            126 => vec![0x82, 126, 0, 126],
            65_535 => vec![0x82, 126, 0xFF, 0xFF],
            _ => vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0],
        };
        assert!(ws.out.starts_with(&header), "{len}");
        assert_eq!(ws.out.len(), header.len() + len);
    }
}

#[test]
fn oversized_frame_closes_with_1009_before_its_payload() {
    let mut ws = open();
    let frame = client_frame(true, OP_BINARY, &[0; 1025]);
    let end = ws.input(&frame[..8], &mut Vec::new()).expect_err("too big");
    assert!(end.message.contains("1009"), "{}", end.message);
    assert_eq!(ws.out.get(..4), Some(&[0x88, ws.out[1], 0x03, 0xF1][..]));
    assert!(ws.input(&[0], &mut Vec::new()).is_err(), "closed");
}

#[test]
fn protocol_errors_close() {
    for (wire, code) in [
        (vec![0x82, 0x01, b'x'], CLOSE_PROTOCOL), // unmasked
        (client_frame(true, OP_TEXT, b"x"), CLOSE_UNSUPPORTED), // text
        (client_frame(true, OP_CONT, b"x"), CLOSE_PROTOCOL), // stray continuation
        (client_frame(false, OP_PING, b"x"), CLOSE_PROTOCOL), // fragmented control
        (client_frame(true, 0x3, b"x"), CLOSE_PROTOCOL), // reserved opcode
        (client_frame(true, 0x40 | OP_BINARY, b"x"), CLOSE_PROTOCOL), // RSV bit
    ] {
        let mut ws = open();
        let end = ws.input(&wire, &mut Vec::new()).expect_err("violation");
        assert!(!end.normal);
        let [a, b] = code.to_be_bytes();
        assert_eq!(ws.out.get(2..4), Some(&[a, b][..]), "{wire:?}");
    }
}

#[test]
fn client_close_is_echoed() {
    let mut ws = open();
    let end = ws
        .input(
            &client_frame(true, OP_CLOSE, &[0x03, 0xE8]),
            &mut Vec::new(),
        )
        .expect_err("closed");
    assert!(end.normal);
    assert_eq!(ws.out, [0x88, 2, 0x03, 0xE8]);
    // Nothing more is framed after a close.
    ws.send(b"x");
    ws.goodbye();
    assert_eq!(ws.out.len(), 4);
}
