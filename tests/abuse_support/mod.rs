//! A boxmq child process on a free loopback port, and a raw MQTT 3.1.1
//! client over `std::net::TcpStream` built on `boxmq::codec`. Shared by
//! `tests/abuse.rs` and `tests/memory.rs`.

#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use boxmq::codec::{self, Connect, Packet, PacketId, Properties, ProtocolVersion, QoS, Will};

pub const V311: ProtocolVersion = ProtocolVersion::V311;

/// A running boxmq, killed (only this child) when dropped.
pub struct Broker {
    child: Child,
    pub port: u16,
    config_path: PathBuf,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

impl Broker {
    /// Starts boxmq with `lines` added to a config file that sets the
    /// listener. Retries with another port if the first one was taken.
    pub fn start(lines: &str) -> Broker {
        for _ in 0..5 {
            let port = free_port();
            let config_path = std::env::temp_dir()
                .join(format!("boxmq-abuse-{}-{port}.conf", std::process::id()));
            std::fs::write(
                &config_path,
                format!("listener {port} 127.0.0.1\npersistence false\n{lines}\n"),
            )
            .expect("write config");
            let child = Command::new(env!("CARGO_BIN_EXE_boxmq"))
                .arg("--config")
                .arg(&config_path)
                .env("RUST_LOG", "error")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn boxmq");
            let mut broker = Broker {
                child,
                port,
                config_path,
            };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = broker.child.try_wait() {
                    break; // exited: port taken or bad config; try again
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return broker;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            drop(broker);
        }
        panic!("boxmq did not start");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A field of /proc/PID/status in KiB (VmRSS, VmHWM).
    pub fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in status"))
    }

    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS")
    }

    pub fn hwm_kib(&self) -> u64 {
        self.status_kib("VmHWM")
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn raw(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to boxmq");
        s.set_nodelay(true).expect("nodelay");
        s
    }

    pub fn client(&self, client_id: &str) -> Client {
        Client::connect(self, client_id, 0, None)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config_path);
    }
}

/// What a client received, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    Connack(u8),
    Publish {
        topic: String,
        payload: Vec<u8>,
        qos: QoS,
        pid: Option<u16>,
    },
    Suback(Vec<u8>),
    Other(u8),
}

fn own(p: &Packet<'_>) -> Msg {
    match p {
        Packet::Connack(c) => Msg::Connack(c.code),
        Packet::Publish(p) => Msg::Publish {
            topic: p.topic.to_string(),
            payload: p.payload.to_vec(),
            qos: p.qos,
            pid: p.packet_id.map(PacketId::get),
        },
        Packet::Suback(s) => Msg::Suback(s.codes.to_vec()),
        other => {
            let mut b = Vec::new();
            other.encode(V311, &mut b);
            Msg::Other(b[0] >> 4)
        }
    }
}

pub fn connect_bytes(client_id: &str, keep_alive: u16, will: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    Packet::Connect(Connect {
        protocol: V311,
        clean_start: true,
        keep_alive,
        properties: Properties::EMPTY,
        client_id,
        will: will.map(|(topic, payload)| Will {
            topic,
            payload,
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Properties::EMPTY,
        }),
        username: None,
        password: None,
    })
    .encode(V311, &mut out);
    out
}

pub fn publish_bytes(topic: &str, payload: &[u8], qos: QoS, pid: u16) -> Vec<u8> {
    let mut out = Vec::new();
    Packet::Publish(codec::Publish {
        dup: false,
        qos,
        retain: false,
        topic,
        packet_id: (qos != QoS::AtMostOnce).then(|| PacketId::new(pid.max(1)).expect("non-zero")),
        properties: Properties::EMPTY,
        payload,
    })
    .encode(V311, &mut out);
    out
}

pub fn subscribe_bytes(pid: u16, filters: &[&str], qos: QoS) -> Vec<u8> {
    let list: Vec<(&str, codec::SubOptions)> = filters
        .iter()
        .map(|f| (*f, codec::SubOptions::qos_only(qos)))
        .collect();
    let mut out = Vec::new();
    codec::encode_subscribe(
        PacketId::new(pid.max(1)).expect("non-zero"),
        Properties::EMPTY,
        &list,
        V311,
        &mut out,
    );
    out
}

/// A well-behaved 3.1.1 client (or a raw socket with a frame reader).
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
    next_pid: u16,
}

impl Client {
    pub fn from_stream(stream: TcpStream) -> Client {
        Client {
            stream,
            buf: Vec::new(),
            next_pid: 0,
        }
    }

    /// Connects and checks CONNACK 0.
    pub fn connect(
        broker: &Broker,
        client_id: &str,
        keep_alive: u16,
        will: Option<(&str, &[u8])>,
    ) -> Client {
        let mut c = Client::from_stream(broker.raw());
        c.send(&connect_bytes(client_id, keep_alive, will));
        match c.recv(Duration::from_secs(5)) {
            Some(Msg::Connack(0)) => c,
            other => panic!("CONNACK for {client_id}: {other:?}"),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to boxmq");
    }

    /// Best effort: the broker may have closed the connection.
    pub fn try_send(&mut self, bytes: &[u8]) -> bool {
        // A broker that stops reading us must not hang the test.
        let _ = self.stream.set_write_timeout(Some(Duration::from_secs(2)));
        self.stream.write_all(bytes).is_ok()
    }

    fn pid(&mut self) -> u16 {
        self.next_pid = self.next_pid % 60000 + 1;
        self.next_pid
    }

    /// SUBSCRIBE and its SUBACK codes.
    pub fn subscribe(&mut self, filters: &[&str], qos: QoS) -> Vec<u8> {
        let pid = self.pid();
        self.send(&subscribe_bytes(pid, filters, qos));
        loop {
            match self.recv(Duration::from_secs(5)) {
                Some(Msg::Suback(codes)) => return codes,
                Some(Msg::Publish { .. }) => continue, // retained
                other => panic!("SUBACK: {other:?}"),
            }
        }
    }

    pub fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS) {
        let pid = self.pid();
        self.send(&publish_bytes(topic, payload, qos, pid));
    }

    /// The next packet within `timeout`; `None` on timeout or close.
    pub fn recv(&mut self, timeout: Duration) -> Option<Msg> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((p, n)) = codec::decode(&self.buf, V311, usize::MAX)
                .unwrap_or_else(|e| panic!("boxmq sent a bad frame: {e:?}"))
                .map(|(p, n)| (own(&p), n))
            {
                self.buf.drain(..n);
                return Some(p);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }

    /// Waits for a PUBLISH on `topic`; acknowledges QoS 1.
    pub fn recv_publish(&mut self, topic: &str, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left)? {
                Msg::Publish {
                    topic: t,
                    payload,
                    qos,
                    pid,
                } => {
                    if let (QoS::AtLeastOnce, Some(pid)) = (qos, pid) {
                        self.send(&[0x40, 0x02, (pid >> 8) as u8, pid as u8]);
                    }
                    if t == topic {
                        return Some(payload);
                    }
                }
                _ => continue,
            }
        }
    }

    /// True if the broker closes the connection within `timeout` (bytes
    /// sent before the close are read and dropped).
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        wait_closed(&mut self.stream, timeout)
    }

    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// True if the peer closes `stream` within `timeout`.
pub fn wait_closed(stream: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).expect("timeout");
        match stream.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true, // reset
        }
    }
}

/// The well-behaved client of every abuse test: subscribed to `good/#`,
/// it publishes to itself and gets its message back.
pub struct Good {
    pub client: Client,
    n: u32,
}

impl Good {
    pub fn new(broker: &Broker) -> Good {
        let mut client = broker.client("good");
        assert_eq!(client.subscribe(&["good/#"], QoS::AtLeastOnce), [1]);
        Good { client, n: 0 }
    }

    /// One message out and back, at QoS 0 and QoS 1.
    pub fn round_trip(&mut self) {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
            self.n += 1;
            let payload = format!("ping {}", self.n);
            self.client.publish("good/echo", payload.as_bytes(), qos);
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let got = self
                    .client
                    .recv_publish("good/echo", left)
                    .unwrap_or_else(|| panic!("good client lost its message {payload:?}"));
                if got == payload.as_bytes() {
                    break;
                }
            }
        }
    }
}
