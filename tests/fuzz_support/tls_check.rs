//! The `tls` target's property (cargo feature `tls`): a TLS listener's
//! read path (`src/net/tls.rs`, rustls server side) on any bytes a client
//! can send, with a fixed self-signed certificate
//! (`tests/fixtures/tls-fuzz/`, made for this and nothing else).
//!
//! Input: byte 0 says how the bytes are cut into reads (pieces of 1 to 64
//! bytes, cycling); the rest is what the client sends. Properties:
//! * nothing panics, whole or cut up;
//! * no byte reaches MQTT: without the key exchange a client cannot
//!   finish a handshake, so any plaintext would be unauthenticated;
//! * the answer stays bounded (one server flight, an alert).

use std::path::Path;
use std::sync::OnceLock;

use boxmq::net::fuzzing::TlsFuzz;

/// Longest client input looked at.
const MAX_INPUT: usize = 16 * 1024;

/// Most bytes the server may answer: its flight (certificate included)
/// and an alert, with room to spare.
const MAX_ANSWER: usize = 16 * 1024;

fn listener() -> &'static TlsFuzz {
    static LISTENER: OnceLock<TlsFuzz> = OnceLock::new();
    LISTENER.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls-fuzz");
        // Under cargo-fuzz the manifest dir is fuzz/.
        let dir = if dir.exists() {
            dir
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tls-fuzz")
        };
        TlsFuzz::load(&dir.join("cert.pem"), &dir.join("key.pem")).expect("fuzz certificate")
    })
}

pub fn check(data: &[u8]) {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let input = &rest[..rest.len().min(MAX_INPUT)];
    let whole = listener().feed([input]);
    let mut pieces = Vec::new();
    let mut left = input;
    let mut n = usize::from(cut);
    while !left.is_empty() {
        let size = 1 + n % 64;
        n = n.wrapping_mul(31).wrapping_add(7);
        let (piece, after) = left.split_at(size.min(left.len()));
        pieces.push(piece);
        left = after;
    }
    let cut_up = listener().feed(pieces);
    for o in [&whole, &cut_up] {
        assert!(o.plain.is_empty(), "plaintext without a handshake: {o:?}");
        assert!(
            o.wire.len() <= MAX_ANSWER,
            "{} bytes answered",
            o.wire.len()
        );
    }
}

/// A TLS record header: content type, version 3.3, length.
fn record(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![kind, 3, 3];
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// A ClientHello (TLS 1.2 and 1.3, X25519, the usual suites) as a curl
/// or paho client sends it, with `sni` as server name when given.
fn client_hello(sni: Option<&str>) -> Vec<u8> {
    let mut ext = Vec::new();
    let mut push = |kind: u16, body: &[u8]| {
        ext.extend_from_slice(&kind.to_be_bytes());
        ext.extend_from_slice(&(body.len() as u16).to_be_bytes());
        ext.extend_from_slice(body);
    };
    if let Some(name) = sni {
        let mut b = ((name.len() + 3) as u16).to_be_bytes().to_vec();
        b.push(0);
        b.extend_from_slice(&(name.len() as u16).to_be_bytes());
        b.extend_from_slice(name.as_bytes());
        push(0, &b);
    }
    push(10, &[0, 4, 0, 29, 0, 23]); // groups: x25519, secp256r1
    push(13, &[0, 4, 4, 3, 8, 4]); // signature algorithms
    push(43, &[4, 3, 4, 3, 3]); // versions: 1.3, 1.2
    push(45, &[1, 1]); // psk modes
    let mut share = vec![0, 36, 0, 29, 0, 32];
    share.extend_from_slice(&[9; 32]);
    push(51, &share); // key share
    let mut hello = vec![3, 3];
    hello.extend_from_slice(&[7; 32]); // random
    hello.push(0); // session id
    hello.extend_from_slice(&[0, 6, 0x13, 0x01, 0x13, 0x02, 0xc0, 0x2b]); // suites
    hello.extend_from_slice(&[1, 0]); // compression
    hello.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    hello.extend_from_slice(&ext);
    let mut hs = vec![1];
    hs.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&hello);
    record(22, &hs)
}

/// Seed inputs: ClientHellos, one followed by records a client cannot
/// make valid, plain MQTT and HTTP on the TLS port, an alert.
pub fn tls_seeds() -> Vec<(String, Vec<u8>)> {
    let with = |cut: u8, body: Vec<u8>| {
        let mut v = vec![cut];
        v.extend_from_slice(&body);
        v
    };
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("hello", with(63, client_hello(None))),
        ("hello-sni", with(5, client_hello(Some("box.local")))),
        (
            "hello-then-records",
            with(
                1,
                [
                    client_hello(None),
                    record(20, &[1]),
                    record(23, &[0x10; 40]),
                ]
                .concat(),
            ),
        ),
        (
            "mqtt-in-clear",
            with(3, b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00".to_vec()),
        ),
        (
            "http",
            with(9, b"GET / HTTP/1.1\r\nHost: box\r\n\r\n".to_vec()),
        ),
        ("alert", with(0, record(21, &[2, 40]))),
        ("huge-record", with(2, vec![22, 3, 3, 0xff, 0xff, 1, 0, 0])),
    ];
    seeds
        .into_iter()
        .map(|(name, data)| (name.to_owned(), data))
        .collect()
}
