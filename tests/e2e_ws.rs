//! WebSockets listeners end to end (cargo feature `websockets`): paho-mqtt
//! with `transport="websockets"` (and wss with the `tls` feature too), and
//! a raw RFC 6455 client for MQTT packets split across frames and several
//! in one frame, fragmentation, ping, an upgrade without the `mqtt`
//! subprotocol and an oversized frame.
//!
//! Run: `cargo test --features websockets --test e2e_ws`.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

const UPGRADE: &str = "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";

/// A broker with its usual plain listener plus a WebSockets one.
fn start_ws(ws_port: u16, extra: &[&str]) -> TestBroker {
    let listener = format!("listener {ws_port} 127.0.0.1");
    let mut lines = vec![listener.as_str(), "protocol websockets"];
    lines.extend_from_slice(extra);
    TestBroker::start_with_config(&lines)
}

/// A masked client frame.
fn ws_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0xA1, 0x05, 0x7E, 0x33];
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

/// A raw WebSocket client: frames out, frames in.
struct WsClient {
    s: TcpStream,
    buf: Vec<u8>,
}

impl WsClient {
    /// Connects and sends `request`; returns the client and the HTTP answer head.
    fn open(port: u16, request: &str) -> (WsClient, String) {
        let s = TcpStream::connect((HOST, port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut c = WsClient { s, buf: Vec::new() };
        c.s.write_all(request.as_bytes()).expect("upgrade");
        let mut chunk = [0u8; 4096];
        let end = loop {
            if let Some(p) = c.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let n = c.s.read(&mut chunk).expect("upgrade answer");
            if n == 0 {
                break c.buf.len();
            }
            c.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&c.buf[..end]).into_owned();
        c.buf.drain(..end);
        (c, head)
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("send");
        // Separate writes arrive in separate reads more often than not.
        std::thread::sleep(Duration::from_millis(5));
    }

    /// The next server frame: (opcode, payload); `None` at end of stream.
    fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.buf.len() >= 2 {
                assert_eq!(self.buf[1] & 0x80, 0, "server frames are not masked");
                let (len, at) = match self.buf[1] & 0x7F {
                    126 if self.buf.len() >= 4 => {
                        (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
                    }
                    127 if self.buf.len() >= 10 => {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&self.buf[2..10]);
                        (u64::from_be_bytes(b) as usize, 10)
                    }
                    n if n < 126 => (n as usize, 2),
                    _ => (usize::MAX, 0),
                };
                if len != usize::MAX && self.buf.len() >= at + len {
                    let op = self.buf[0] & 0x0F;
                    let payload = self.buf[at..at + len].to_vec();
                    self.buf.drain(..at + len);
                    return Some((op, payload));
                }
            }
            let mut chunk = [0u8; 65536];
            match self.s.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("reading a frame: {e}"),
            }
        }
    }

    /// MQTT packets until nothing arrives for a second (frames checked
    /// as they come; a packet may span frames).
    fn packets_until_idle(&mut self) -> Vec<(u8, Vec<u8>)> {
        self.s
            .set_read_timeout(Some(Duration::from_secs(1)))
            .expect("timeout");
        let mut stream = Vec::new();
        let mut out = Vec::new();
        let mut chunk = vec![0u8; 65536];
        loop {
            // Whole frames already buffered first.
            while let Some((op, payload)) = self.buffered_frame() {
                assert_eq!(op, 0x2, "binary frames only");
                stream.extend(payload);
                while let Some((first, body, used)) = split_packet(&stream) {
                    out.push((first >> 4, body));
                    stream.drain(..used);
                }
            }
            match self.s.read(&mut chunk) {
                Ok(0) => panic!("closed by the broker"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    assert!(stream.is_empty(), "a packet cut short");
                    self.s
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .expect("timeout");
                    return out;
                }
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// A whole frame from `buf`, if there is one.
    fn buffered_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        let (len, at) = match b[1] & 0x7F {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => {
                let mut l = [0u8; 8];
                l.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(l) as usize, 10)
            }
            n if n < 126 => (n as usize, 2),
            _ => return None,
        };
        if b.len() < at + len {
            return None;
        }
        let frame = (b[0] & 0x0F, b[at..at + len].to_vec());
        self.buf.drain(..at + len);
        Some(frame)
    }

    /// The next `count` MQTT packets, whatever the framing: (type, body).
    fn packets(&mut self, count: usize) -> Vec<(u8, Vec<u8>)> {
        let mut stream = Vec::new();
        let mut out = Vec::new();
        while out.len() < count {
            let (op, payload) = self.frame().expect("a frame");
            assert!(op == 0x2 || op == 0x0, "opcode {op}");
            stream.extend(payload);
            while let Some((first, body, used)) = split_packet(&stream) {
                out.push((first >> 4, body));
                stream.drain(..used);
            }
        }
        out
    }
}

/// One MQTT packet at the start of `b`: (first byte, body, length).
fn split_packet(b: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (mut len, mut mult, mut i) = (0usize, 1usize, 1usize);
    loop {
        let byte = *b.get(i)?;
        len += usize::from(byte & 0x7F) * mult;
        mult *= 128;
        i += 1;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let body = b.get(i..i + len)?.to_vec();
    Some((b[0], body, i + len))
}

#[test]
fn raw_client_packets_split_across_frames_and_combined_in_one() {
    let ws_port = free_port();
    let b = start_ws(ws_port, &[]);
    let (mut c, head) = WsClient::open(ws_port, UPGRADE);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(head.contains("Sec-WebSocket-Protocol: mqtt\r\n"), "{head}");
    let plain_sub = MosqSub::start(b.port, &["-t", "ws/#", "-v", "-C", "2", "-W", "10"]);

    // CONNECT cut into a fragmented message of three frames, a ping between.
    let connect = frame::connect(&ConnectOpts::new(&unique("ws-raw")));
    c.send(&ws_frame(false, 0x2, &connect[..3]));
    c.send(&ws_frame(false, 0x0, &connect[3..10]));
    c.send(&ws_frame(true, 0x9, b"ping?"));
    c.send(&ws_frame(true, 0x0, &connect[10..]));
    let (op, payload) = c.frame().expect("pong");
    assert_eq!((op, payload.as_slice()), (0xA, &b"ping?"[..]));
    let p = c.packets(1);
    assert_eq!(p[0], (ptype::CONNACK, vec![0, 0]), "[MQTT-3.2.2-1]");

    // SUBSCRIBE and two PUBLISHes in one frame; one more PUBLISH split
    // over two messages, the cut inside its topic.
    let mut combined = frame::subscribe(1, &[("ws/#", 0)]);
    combined.extend(frame::publish("ws/a", b"one", 0, false, false, 0));
    combined.extend(frame::publish("ws/b", b"two", 0, false, false, 0));
    c.send(&ws_frame(true, 0x2, &combined));
    let split = frame::publish("ws/c", b"three", 0, false, false, 0);
    c.send(&ws_frame(true, 0x2, &split[..5]));
    c.send(&ws_frame(true, 0x2, &split[5..]));
    let p = c.packets(4);
    assert_eq!(p[0].0, ptype::SUBACK);
    let topics: Vec<(u8, Vec<u8>)> = p[1..].to_vec();
    for ((t, body), want) in topics
        .iter()
        .zip([&b"ws/aone"[..], b"ws/btwo", b"ws/cthree"])
    {
        assert_eq!(*t, ptype::PUBLISH);
        assert_eq!(&body[2..], want);
    }
    // A plain MQTT subscriber got them too.
    let out = plain_sub.finish(WAIT);
    assert_eq!(out.messages, ["ws/a one", "ws/b two"], "{}", out.raw);

    // Closing: the broker answers the close frame and ends the stream.
    c.send(&ws_frame(true, 0x8, &1000u16.to_be_bytes()));
    let (op, payload) = c.frame().expect("close answer");
    assert_eq!((op, payload.as_slice()), (0x8, &[0x03, 0xE8][..]));
    assert!(c.frame().is_none());
}

#[test]
fn upgrade_without_mqtt_subprotocol_is_refused() {
    let ws_port = free_port();
    let b = start_ws(ws_port, &[]);
    let request = UPGRADE.replace("Sec-WebSocket-Protocol: mqtt\r\n", "");
    let (mut c, head) = WsClient::open(ws_port, &request);
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    assert!(c.frame().is_none(), "closed after the 400");
    // A plain HTTP request for a page gets the same.
    let (_, head) = WsClient::open(ws_port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    let log = b.log();
    assert!(
        log.contains("did not offer the 'mqtt' subprotocol"),
        "{log}"
    );
    // MQTT on the plain listener is unaffected.
    mosquitto_pub(b.port, &["-t", "t", "-m", "x"]);
}

#[test]
fn stalled_upgrade_meets_the_connect_timeout() {
    let ws_port = free_port();
    let b = start_ws(ws_port, &["connect_timeout 1"]);
    // Half an upgrade request, then silence.
    let mut s = TcpStream::connect((HOST, ws_port)).expect("connect");
    s.write_all(&UPGRADE.as_bytes()[..40]).expect("write");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("not closed by the CONNECT timeout: {other:?}"),
    }
    // An upgrade and CONNECT in time are fine.
    let (mut c, head) = WsClient::open(ws_port, UPGRADE);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    c.send(&ws_frame(
        true,
        0x2,
        &frame::connect(&ConnectOpts::new("in-time")),
    ));
    assert_eq!(c.packets(1)[0].0, ptype::CONNACK);
    drop(b);
}

#[test]
fn oversized_frame_is_closed_with_1009() {
    let ws_port = free_port();
    let b = start_ws(ws_port, &["max_packet_size 1024"]);
    let (mut c, head) = WsClient::open(ws_port, UPGRADE);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    c.send(&ws_frame(
        true,
        0x2,
        &frame::connect(&ConnectOpts::new("big")),
    ));
    assert_eq!(c.packets(1)[0].0, ptype::CONNACK);
    // Only the header of a 1 MiB frame: refused before its payload.
    let header = &ws_frame(true, 0x2, &vec![0u8; 1 << 20])[..14];
    c.send(header);
    let (op, payload) = c.frame().expect("close frame");
    assert_eq!(op, 0x8);
    assert_eq!(&payload[..2], &1009u16.to_be_bytes());
    assert!(c.frame().is_none());
    assert!(b.log().contains("1009"), "{}", b.log());
}

#[test]
fn slow_websocket_reader_gets_whole_frames_and_others_are_served() {
    let ws_port = free_port();
    let b = start_ws(ws_port, &["max_output_buffer 65536"]);
    let (mut c, head) = WsClient::open(ws_port, UPGRADE);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let mut hello = frame::connect(&ConnectOpts::new("slow-ws"));
    hello.extend(frame::subscribe(1, &[("flood/#", 0)]));
    c.send(&ws_frame(true, 0x2, &hello));
    let p = c.packets(2);
    assert_eq!((p[0].0, p[1].0), (ptype::CONNACK, ptype::SUBACK));

    // 16 MB of QoS 0 messages while the WebSocket client reads nothing:
    // far more than the socket buffers and max_output_buffer hold.
    let mut publisher = RawClient::connect(b.port, "flooder");
    flood::send(&mut publisher);
    // Others are served meanwhile.
    mosquitto_pub(b.port, &["-t", "other", "-m", "x"]);

    // Reading now: whole frames, whole packets, in order, intact (QoS 0
    // beyond the output buffer was dropped).
    let got = c.packets_until_idle();
    flood::check(&got);
    println!("slow reader got {} of {} messages", got.len(), flood::COUNT);
    // And it is still subscribed and served.
    publisher.send(&frame::publish("flood/end", b"end", 0, false, false, 0));
    let p = c.packets(1);
    assert_eq!(&p[0].1[2..], b"flood/endend");
}

#[test]
fn paho_over_websockets() {
    let ws_port = free_port();
    let _b = start_ws(ws_port, &[]);
    run_paho("transport", ws_port, &["ws"]);
}

#[cfg(feature = "tls")]
#[test]
fn paho_over_secure_websockets() {
    let certs = common::certs::Certs::generate();
    let ws_port = free_port();
    let cert = format!("certfile {}", certs.path("server.crt"));
    let key = format!("keyfile {}", certs.path("server.key"));
    let _b = start_ws(ws_port, &[&cert, &key]);
    run_paho("transport", ws_port, &["wss", &certs.path("ca.crt")]);
}
