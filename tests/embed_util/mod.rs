//! Helpers for the embedding tests: a broker on port 0 and a raw MQTT 3.1.1
//! client over a real socket, written with boxmq's own codec.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use boxmq::codec::{
    self, Connect, Packet, PacketId, Properties, ProtocolVersion, PubResp, PubRespKind, Publish,
    SubOptions,
};
use boxmq::{Broker, Handle, Limits, QoS};

/// Upper bound of every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(5);

/// A started broker on 127.0.0.1, port 0.
pub fn start() -> (Broker, Handle) {
    start_with(Limits::default())
}

/// A started broker on 127.0.0.1, port 0, with `limits`.
pub fn start_with(limits: Limits) -> (Broker, Handle) {
    let mut broker = Broker::builder().port(0).limits(limits).build();
    let handle = broker.start().expect("start");
    (broker, handle)
}

/// The first listener's address.
pub fn addr(handle: &Handle) -> SocketAddr {
    handle.local_addrs()[0]
}

/// Waits until `cond` holds, at most [`WAIT`].
pub fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

/// A packet as the raw client received it, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Got {
    Connack(u8),
    Suback(Vec<u8>),
    Publish {
        topic: String,
        payload: Vec<u8>,
        qos: QoS,
        retain: bool,
        pid: Option<u16>,
    },
    Ack(PubRespKind, u16),
    Other,
}

/// A network MQTT 3.1.1 client, one blocking socket.
pub struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
    next_pid: u16,
}

impl Raw {
    /// Connects and waits for a successful CONNACK.
    pub fn connect(addr: SocketAddr, client_id: &str) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        let mut raw = Raw {
            stream,
            buf: Vec::new(),
            next_pid: 0,
        };
        raw.send(&Packet::Connect(Connect {
            protocol: ProtocolVersion::V311,
            clean_start: true,
            keep_alive: 0,
            properties: Properties::EMPTY,
            client_id,
            will: None,
            username: None,
            password: None,
        }));
        assert_eq!(raw.recv(), Some(Got::Connack(0)));
        raw
    }

    pub fn send(&mut self, p: &Packet<'_>) {
        let mut out = Vec::new();
        p.encode(ProtocolVersion::V311, &mut out);
        self.stream.write_all(&out).expect("write");
    }

    fn pid(&mut self) -> PacketId {
        self.next_pid = self.next_pid.wrapping_add(1).max(1);
        PacketId::new(self.next_pid).expect("non-zero")
    }

    /// Subscribes and waits for the SUBACK; returns its codes.
    pub fn subscribe(&mut self, filter: &str, qos: QoS) -> Vec<u8> {
        let pid = self.pid();
        let mut out = Vec::new();
        codec::encode_subscribe(
            pid,
            Properties::EMPTY,
            &[(filter, SubOptions::qos_only(qos))],
            ProtocolVersion::V311,
            &mut out,
        );
        self.stream.write_all(&out).expect("write");
        match self.recv() {
            Some(Got::Suback(codes)) => codes,
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Publishes; for QoS 1 waits for PUBACK, for QoS 2 completes the flow.
    pub fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS, retain: bool) {
        let packet_id = (qos != QoS::AtMostOnce).then(|| self.pid());
        self.send(&Packet::Publish(Publish {
            dup: false,
            qos,
            retain,
            topic,
            packet_id,
            properties: Properties::EMPTY,
            payload,
        }));
        match (qos, packet_id) {
            (QoS::AtLeastOnce, Some(pid)) => {
                assert_eq!(self.recv(), Some(Got::Ack(PubRespKind::PubAck, pid.get())));
            }
            (QoS::ExactlyOnce, Some(pid)) => {
                assert_eq!(self.recv(), Some(Got::Ack(PubRespKind::PubRec, pid.get())));
                self.ack(PubRespKind::PubRel, pid.get());
                assert_eq!(self.recv(), Some(Got::Ack(PubRespKind::PubComp, pid.get())));
            }
            _ => {}
        }
    }

    pub fn ack(&mut self, kind: PubRespKind, pid: u16) {
        self.send(&Packet::PubResp(PubResp {
            kind,
            packet_id: PacketId::new(pid).expect("non-zero"),
            reason: 0,
            properties: Properties::EMPTY,
        }));
    }

    /// The next packet; `None` when the broker closed the connection.
    /// Panics after [`WAIT`] without one.
    pub fn recv(&mut self) -> Option<Got> {
        loop {
            if let Some((p, n)) =
                codec::decode(&self.buf, ProtocolVersion::V311, 1 << 20).expect("decode")
            {
                let got = match p {
                    Packet::Connack(c) => Got::Connack(c.code),
                    Packet::Suback(s) => Got::Suback(s.codes.to_vec()),
                    Packet::Publish(p) => Got::Publish {
                        topic: p.topic.to_owned(),
                        payload: p.payload.to_vec(),
                        qos: p.qos,
                        retain: p.retain,
                        pid: p.packet_id.map(|id| id.get()),
                    },
                    Packet::PubResp(r) => Got::Ack(r.kind, r.packet_id.get()),
                    _ => Got::Other,
                };
                self.buf.drain(..n);
                return Some(got);
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// The next PUBLISH, acknowledged as its QoS asks.
    pub fn recv_publish(&mut self) -> (String, Vec<u8>, QoS, bool) {
        match self.recv() {
            Some(Got::Publish {
                topic,
                payload,
                qos,
                retain,
                pid,
            }) => {
                match (qos, pid) {
                    (QoS::AtLeastOnce, Some(pid)) => self.ack(PubRespKind::PubAck, pid),
                    (QoS::ExactlyOnce, Some(pid)) => {
                        self.ack(PubRespKind::PubRec, pid);
                        assert_eq!(self.recv(), Some(Got::Ack(PubRespKind::PubRel, pid)));
                        self.ack(PubRespKind::PubComp, pid);
                    }
                    _ => {}
                }
                (topic, payload, qos, retain)
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
}
