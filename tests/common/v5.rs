//! A hand-driven MQTT 5.0 client over a blocking `TcpStream`, for the 5.0
//! end-to-end tests (tests/e2e_v5.rs includes this file with
//! `#[path = "common/v5.rs"] mod v5;` next to `mod common;`).
//!
//! Frames are built and parsed with the crate's own codec
//! (`boxmq::codec`), then turned into owned values ([`Rx`], [`Msg`],
//! [`Props`]) so a test can keep them. Every read has a deadline; anything
//! the broker sends that the codec rejects fails the test with the bytes.

#![allow(dead_code)]

use crate::common::{HOST, RECV_TIMEOUT, ReadEnd};
use boxmq::codec::{
    self, Auth, Connect, Disconnect, PacketId, Properties, PropertiesBuf, Property,
    ProtocolVersion, PubResp, PubRespKind, Publish, QoS, SubOptions,
};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub const V5: ProtocolVersion = ProtocolVersion::V5;

fn qos(q: u8) -> QoS {
    QoS::from_u8(q).unwrap_or_else(|| panic!("bad QoS {q}"))
}

fn pid(id: u16) -> PacketId {
    PacketId::new(id).expect("packet id 0")
}

// ---------------------------------------------------------------------------
// Owned property lists
// ---------------------------------------------------------------------------

/// An owned MQTT 5.0 property list (the raw bytes after the length).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Props(Vec<u8>);

impl Props {
    pub fn new() -> Props {
        Props::default()
    }

    /// Appends one property (no rule checked: tests send invalid ones too).
    pub fn with(self, p: Property<'_>) -> Props {
        let mut b = PropertiesBuf::new();
        b.extend_from(self.get());
        b.push(&p);
        Props(b.as_properties().raw().to_vec())
    }

    fn from_properties(p: Properties<'_>) -> Props {
        Props(p.raw().to_vec())
    }

    pub fn get(&self) -> Properties<'_> {
        Properties::try_from_raw(&self.0).expect("well-formed property list")
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn user_properties(&self) -> Vec<(String, String)> {
        self.get()
            .iter()
            .filter_map(|p| match p {
                Property::UserProperty(k, v) => Some((k.to_string(), v.to_string())),
                _ => None,
            })
            .collect()
    }

    pub fn subscription_ids(&self) -> Vec<u32> {
        self.get()
            .iter()
            .filter_map(|p| match p {
                Property::SubscriptionIdentifier(v) => Some(v),
                _ => None,
            })
            .collect()
    }

    pub fn message_expiry(&self) -> Option<u32> {
        self.get().message_expiry_interval()
    }

    pub fn payload_format(&self) -> Option<u8> {
        self.get().payload_format_indicator()
    }

    pub fn topic_alias(&self) -> Option<u16> {
        self.get().topic_alias()
    }

    pub fn receive_maximum(&self) -> Option<u16> {
        self.get().receive_maximum()
    }

    pub fn maximum_packet_size(&self) -> Option<u32> {
        self.get().maximum_packet_size()
    }

    pub fn topic_alias_maximum(&self) -> Option<u16> {
        self.get().topic_alias_maximum()
    }

    pub fn content_type(&self) -> Option<String> {
        self.get().iter().find_map(|p| match p {
            Property::ContentType(s) => Some(s.to_string()),
            _ => None,
        })
    }

    pub fn response_topic(&self) -> Option<String> {
        self.get().iter().find_map(|p| match p {
            Property::ResponseTopic(s) => Some(s.to_string()),
            _ => None,
        })
    }

    pub fn correlation_data(&self) -> Option<Vec<u8>> {
        self.get().iter().find_map(|p| match p {
            Property::CorrelationData(b) => Some(b.to_vec()),
            _ => None,
        })
    }

    pub fn assigned_client_id(&self) -> Option<String> {
        self.get().iter().find_map(|p| match p {
            Property::AssignedClientIdentifier(s) => Some(s.to_string()),
            _ => None,
        })
    }
}

impl std::fmt::Debug for Props {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match Properties::try_from_raw(&self.0) {
            Some(p) => f.debug_list().entries(p.iter()).finish(),
            None => write!(f, "<bad property list {:02x?}>", self.0),
        }
    }
}

// ---------------------------------------------------------------------------
// CONNECT options
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct V5Will {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
    pub props: Props,
}

/// CONNECT fields; defaults: clean start, keepalive 60, no properties.
#[derive(Clone, Debug)]
pub struct V5Opts {
    pub client_id: String,
    pub clean_start: bool,
    pub keepalive: u16,
    pub props: Props,
    pub will: Option<V5Will>,
}

impl V5Opts {
    pub fn new(client_id: &str) -> V5Opts {
        V5Opts {
            client_id: client_id.into(),
            clean_start: true,
            keepalive: 60,
            props: Props::new(),
            will: None,
        }
    }

    pub fn clean(mut self, clean: bool) -> V5Opts {
        self.clean_start = clean;
        self
    }

    pub fn keepalive(mut self, secs: u16) -> V5Opts {
        self.keepalive = secs;
        self
    }

    pub fn prop(mut self, p: Property<'_>) -> V5Opts {
        self.props = self.props.with(p);
        self
    }

    pub fn session_expiry(self, secs: u32) -> V5Opts {
        self.prop(Property::SessionExpiryInterval(secs))
    }

    pub fn will(
        mut self,
        topic: &str,
        payload: &[u8],
        qos: u8,
        retain: bool,
        props: Props,
    ) -> Self {
        self.will = Some(V5Will {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain,
            props,
        });
        self
    }

    pub fn encode(&self) -> Vec<u8> {
        let will = self.will.as_ref().map(|w| codec::Will {
            topic: &w.topic,
            payload: &w.payload,
            qos: qos(w.qos),
            retain: w.retain,
            properties: w.props.get(),
        });
        let c = Connect {
            protocol: V5,
            clean_start: self.clean_start,
            keep_alive: self.keepalive,
            properties: self.props.get(),
            client_id: &self.client_id,
            will,
            username: None,
            password: None,
        };
        let mut out = Vec::new();
        c.encode(V5, &mut out);
        out
    }
}

// ---------------------------------------------------------------------------
// Frames built with the codec
// ---------------------------------------------------------------------------

pub mod frame5 {
    use super::*;

    pub fn publish(
        topic: &str,
        payload: &[u8],
        q: u8,
        retain: bool,
        packet_id: u16,
        props: &Props,
    ) -> Vec<u8> {
        let p = Publish {
            dup: false,
            qos: qos(q),
            retain,
            topic,
            packet_id: PacketId::new(packet_id),
            properties: props.get(),
            payload,
        };
        let mut out = Vec::new();
        p.encode(V5, &mut out);
        out
    }

    pub fn pub_resp(kind: PubRespKind, packet_id: u16, reason: u8) -> Vec<u8> {
        let p = PubResp {
            kind,
            packet_id: pid(packet_id),
            reason,
            properties: Properties::EMPTY,
        };
        let mut out = Vec::new();
        p.encode(V5, &mut out);
        out
    }

    pub fn subscribe(packet_id: u16, filters: &[(&str, SubOptions)], props: &Props) -> Vec<u8> {
        let mut out = Vec::new();
        codec::encode_subscribe(pid(packet_id), props.get(), filters, V5, &mut out);
        out
    }

    pub fn disconnect(reason: u8, props: &Props) -> Vec<u8> {
        let d = Disconnect {
            reason,
            properties: props.get(),
        };
        let mut out = Vec::new();
        d.encode(V5, &mut out);
        out
    }

    pub fn auth(reason: u8, props: &Props) -> Vec<u8> {
        let a = Auth {
            reason,
            properties: props.get(),
        };
        let mut out = Vec::new();
        a.encode(V5, &mut out);
        out
    }
}

/// Subscription options.
pub fn sub_opts(
    q: u8,
    no_local: bool,
    retain_as_published: bool,
    retain_handling: u8,
) -> SubOptions {
    SubOptions {
        qos: qos(q),
        no_local,
        retain_as_published,
        retain_handling,
    }
}

// ---------------------------------------------------------------------------
// Received packets, owned
// ---------------------------------------------------------------------------

/// A PUBLISH received from the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
    pub dup: bool,
    pub packet_id: Option<u16>,
    pub props: Props,
}

impl Msg {
    pub fn payload_str(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnackV5 {
    pub session_present: bool,
    pub code: u8,
    pub props: Props,
}

/// One packet received from the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rx {
    Connack(ConnackV5),
    Publish(Msg),
    PubResp {
        kind: PubRespKind,
        id: u16,
        reason: u8,
        props: Props,
    },
    Suback {
        id: u16,
        codes: Vec<u8>,
        props: Props,
    },
    Unsuback {
        id: u16,
        codes: Vec<u8>,
    },
    PingResp,
    Disconnect {
        reason: u8,
        props: Props,
    },
    Auth {
        reason: u8,
        props: Props,
    },
    /// Something a broker never sends (CONNECT, SUBSCRIBE, ...).
    Other(String),
}

/// Decodes one whole frame. A CONNACK with a 3.1.1 body (2 bytes, as sent
/// for an unsupported protocol level) is decoded as 3.1.1.
fn to_rx(frame: &[u8]) -> Rx {
    let version = if frame.len() == 4 && frame[0] == 0x20 {
        ProtocolVersion::V311
    } else {
        V5
    };
    let (p, _) = match codec::decode(frame, version, usize::MAX) {
        Ok(Some(x)) => x,
        other => panic!("broker sent a frame the codec rejects ({other:?}): {frame:02x?}"),
    };
    match p {
        codec::Packet::Connack(c) => Rx::Connack(ConnackV5 {
            session_present: c.session_present,
            code: c.code,
            props: Props::from_properties(c.properties),
        }),
        codec::Packet::Publish(p) => Rx::Publish(Msg {
            topic: p.topic.into(),
            payload: p.payload.into(),
            qos: p.qos as u8,
            retain: p.retain,
            dup: p.dup,
            packet_id: p.packet_id.map(PacketId::get),
            props: Props::from_properties(p.properties),
        }),
        codec::Packet::PubResp(r) => Rx::PubResp {
            kind: r.kind,
            id: r.packet_id.get(),
            reason: r.reason,
            props: Props::from_properties(r.properties),
        },
        codec::Packet::Suback(s) => Rx::Suback {
            id: s.packet_id.get(),
            codes: s.codes.to_vec(),
            props: Props::from_properties(s.properties),
        },
        codec::Packet::Unsuback(u) => Rx::Unsuback {
            id: u.packet_id.get(),
            codes: u.codes.to_vec(),
        },
        codec::Packet::PingResp => Rx::PingResp,
        codec::Packet::Disconnect(d) => Rx::Disconnect {
            reason: d.reason,
            props: Props::from_properties(d.properties),
        },
        codec::Packet::Auth(a) => Rx::Auth {
            reason: a.reason,
            props: Props::from_properties(a.properties),
        },
        other => Rx::Other(format!("{other:?}")),
    }
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

pub struct V5Client {
    stream: TcpStream,
    buf: Vec<u8>,
    pending: VecDeque<Rx>,
    next_id: u16,
    pub name: String,
}

impl V5Client {
    /// TCP connection only (no CONNECT sent).
    pub fn tcp(port: u16) -> V5Client {
        let addr: SocketAddr = format!("{HOST}:{port}").parse().unwrap();
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("TCP connect to {addr}: {e}"));
        stream.set_nodelay(true).unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.set_read_timeout(Some(RECV_TIMEOUT)).unwrap();
        V5Client {
            stream,
            buf: Vec::new(),
            pending: VecDeque::new(),
            next_id: 1,
            name: format!("v5@{port}"),
        }
    }

    /// TCP connect, CONNECT, return the CONNACK whatever its code.
    pub fn connect_with(port: u16, opts: &V5Opts) -> (V5Client, ConnackV5) {
        let mut c = V5Client::tcp(port);
        c.name = opts.client_id.clone();
        c.send(&opts.encode());
        match c.recv() {
            Rx::Connack(a) => (c, a),
            other => panic!("[{}] expected CONNACK, got {other:?}", c.name),
        }
    }

    /// Connects and asserts reason code 0.
    pub fn connect_opts(port: u16, opts: &V5Opts) -> (V5Client, ConnackV5) {
        let (c, ack) = V5Client::connect_with(port, opts);
        assert_eq!(
            ack.code, 0,
            "CONNACK refused for {:?}: {ack:?}",
            opts.client_id
        );
        (c, ack)
    }

    /// Clean start, keepalive 60, no properties.
    pub fn connect(port: u16, client_id: &str) -> V5Client {
        V5Client::connect_opts(port, &V5Opts::new(client_id)).0
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("[{}] write: {e}", self.name));
    }

    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    fn take_frame(&mut self) -> Option<Rx> {
        let size = match codec::frame_len(&self.buf, usize::MAX) {
            Ok(Some(n)) => n,
            Ok(None) => return None,
            Err(e) => panic!("[{}] bad fixed header from broker: {e:?}", self.name),
        };
        if self.buf.len() < size {
            return None;
        }
        let frame: Vec<u8> = self.buf.drain(..size).collect();
        Some(to_rx(&frame))
    }

    fn read_rx(&mut self, timeout: Duration) -> Result<Rx, ReadEnd> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(p) = self.take_frame() {
                return Ok(p);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReadEnd::Timeout);
            }
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut tmp = [0u8; 8192];
            match self.stream.read(&mut tmp) {
                Ok(0) => return Err(ReadEnd::Closed("EOF".into())),
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(ReadEnd::Closed(e.to_string())),
            }
        }
    }

    /// The next packet (stashed ones first), or why there is none.
    pub fn try_recv(&mut self, timeout: Duration) -> Result<Rx, ReadEnd> {
        if let Some(p) = self.pending.pop_front() {
            return Ok(p);
        }
        self.read_rx(timeout)
    }

    pub fn recv(&mut self) -> Rx {
        match self.try_recv(RECV_TIMEOUT) {
            Ok(p) => p,
            Err(e) => panic!("[{}] expected a packet, got {e:?}", self.name),
        }
    }

    /// Waits for a packet matching `want` (from the socket), stashing the
    /// others for later `recv` calls.
    pub fn wait_for(&mut self, what: &str, want: impl Fn(&Rx) -> bool) -> Rx {
        let deadline = Instant::now() + RECV_TIMEOUT;
        let mut stash = Vec::new();
        let found = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_rx(left) {
                Ok(p) if want(&p) => break p,
                Ok(p) => stash.push(p),
                Err(e) => panic!(
                    "[{}] waiting for {what}: {e:?}; got meanwhile {stash:?}",
                    self.name
                ),
            }
        };
        self.pending.extend(stash);
        found
    }

    /// Asserts nothing arrives for `dur`.
    pub fn expect_nothing(&mut self, dur: Duration) {
        match self.try_recv(dur) {
            Ok(p) => panic!("[{}] expected no packet, got {p:?}", self.name),
            Err(ReadEnd::Timeout) => {}
            Err(ReadEnd::Closed(e)) => {
                panic!("[{}] expected no packet, connection closed: {e}", self.name)
            }
        }
    }

    /// Asserts the broker closes the connection within `timeout`; returns
    /// what arrived before the close.
    pub fn expect_closed(&mut self, timeout: Duration) -> Vec<Rx> {
        let deadline = Instant::now() + timeout;
        let mut got: Vec<Rx> = self.pending.drain(..).collect();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_rx(left) {
                Ok(p) => got.push(p),
                Err(ReadEnd::Closed(_)) => return got,
                Err(ReadEnd::Timeout) => panic!(
                    "[{}] expected the broker to close the connection within {timeout:?}; got {got:?}",
                    self.name
                ),
            }
        }
    }

    /// The reason code of the DISCONNECT the broker sent before closing the
    /// connection (within `timeout`), or `None` if it closed without one.
    /// Panics if anything other than PUBLISH/DISCONNECT arrived first.
    pub fn closed_with(&mut self, timeout: Duration) -> Option<u8> {
        let got = self.expect_closed(timeout);
        let mut reason = None;
        for p in &got {
            match p {
                Rx::Disconnect { reason: r, .. } => {
                    assert!(reason.is_none(), "[{}] two DISCONNECTs: {got:?}", self.name);
                    reason = Some(*r);
                }
                Rx::Publish(_) | Rx::PingResp => {}
                other => panic!("[{}] unexpected {other:?} before close", self.name),
            }
        }
        reason
    }

    pub fn next_packet_id(&mut self) -> u16 {
        let id = self.next_id;
        self.next_id = if id == u16::MAX { 1 } else { id + 1 };
        id
    }

    /// SUBSCRIBE with options and properties; returns the SUBACK codes.
    pub fn subscribe_with(&mut self, filters: &[(&str, SubOptions)], props: &Props) -> Vec<u8> {
        let id = self.next_packet_id();
        self.send(&frame5::subscribe(id, filters, props));
        match self.wait_for(
            "SUBACK",
            |p| matches!(p, Rx::Suback { id: i, .. } if *i == id),
        ) {
            Rx::Suback { codes, .. } => {
                assert_eq!(codes.len(), filters.len(), "[{}] SUBACK codes", self.name);
                codes
            }
            _ => unreachable!(),
        }
    }

    /// UNSUBSCRIBE; returns the UNSUBACK reason codes.
    pub fn unsubscribe(&mut self, filters: &[&str]) -> Vec<u8> {
        let id = self.next_packet_id();
        let mut out = Vec::new();
        codec::encode_unsubscribe(pid(id), Properties::EMPTY, filters, V5, &mut out);
        self.send(&out);
        match self.wait_for(
            "UNSUBACK",
            |p| matches!(p, Rx::Unsuback { id: i, .. } if *i == id),
        ) {
            Rx::Unsuback { codes, .. } => codes,
            _ => unreachable!(),
        }
    }

    /// SUBSCRIBE one filter at `q` (default options); asserts it is granted.
    pub fn sub(&mut self, filter: &str, q: u8) {
        let codes = self.subscribe_with(&[(filter, sub_opts(q, false, false, 0))], &Props::new());
        assert_eq!(codes, vec![q], "[{}] SUBACK for {filter}", self.name);
    }

    /// SUBSCRIBE one filter with a Subscription Identifier.
    pub fn sub_id(&mut self, filter: &str, q: u8, id: u32) {
        let props = Props::new().with(Property::SubscriptionIdentifier(id));
        let codes = self.subscribe_with(&[(filter, sub_opts(q, false, false, 0))], &props);
        assert_eq!(codes, vec![q], "[{}] SUBACK for {filter}", self.name);
    }

    /// PUBLISH and complete the handshake; returns the reason code of the
    /// PUBACK / PUBREC (0 for QoS 0). A PUBREC >= 0x80 ends the flow.
    pub fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        q: u8,
        retain: bool,
        props: &Props,
    ) -> u8 {
        let id = if q > 0 { self.next_packet_id() } else { 0 };
        self.send(&frame5::publish(topic, payload, q, retain, id, props));
        let ack = |kind: PubRespKind| move |p: &Rx| matches!(p, Rx::PubResp { kind: k, id: i, .. } if *k == kind && *i == id);
        match q {
            0 => 0,
            1 => match self.wait_for("PUBACK", ack(PubRespKind::PubAck)) {
                Rx::PubResp { reason, .. } => reason,
                _ => unreachable!(),
            },
            2 => {
                let reason = match self.wait_for("PUBREC", ack(PubRespKind::PubRec)) {
                    Rx::PubResp { reason, .. } => reason,
                    _ => unreachable!(),
                };
                if reason < 0x80 {
                    self.send(&frame5::pub_resp(PubRespKind::PubRel, id, 0));
                    self.wait_for("PUBCOMP", ack(PubRespKind::PubComp));
                }
                reason
            }
            _ => panic!("bad qos {q}"),
        }
    }

    /// Plain publish without properties.
    pub fn publish_simple(&mut self, topic: &str, payload: &[u8], q: u8, retain: bool) -> u8 {
        self.publish(topic, payload, q, retain, &Props::new())
    }

    /// The next packet, which must be a PUBLISH; not acknowledged.
    pub fn recv_msg_noack(&mut self) -> Msg {
        match self.recv() {
            Rx::Publish(m) => m,
            other => panic!("[{}] expected PUBLISH, got {other:?}", self.name),
        }
    }

    /// The next PUBLISH, acknowledged as its QoS requires.
    pub fn recv_msg(&mut self) -> Msg {
        let m = self.recv_msg_noack();
        self.ack(&m);
        m
    }

    /// The next PUBLISH within `timeout`, acknowledged; `None` on timeout.
    pub fn try_recv_msg(&mut self, timeout: Duration) -> Option<Msg> {
        match self.try_recv(timeout) {
            Ok(Rx::Publish(m)) => {
                self.ack(&m);
                Some(m)
            }
            Ok(other) => panic!("[{}] expected PUBLISH, got {other:?}", self.name),
            Err(ReadEnd::Timeout) => None,
            Err(ReadEnd::Closed(e)) => panic!("[{}] connection closed: {e}", self.name),
        }
    }

    pub fn ack(&mut self, m: &Msg) {
        match m.qos {
            0 => {}
            1 => self.puback(m.packet_id.unwrap()),
            2 => {
                let id = m.packet_id.unwrap();
                self.send(&frame5::pub_resp(PubRespKind::PubRec, id, 0));
                self.wait_for("PUBREL", |p| {
                    matches!(p, Rx::PubResp { kind: PubRespKind::PubRel, id: i, .. } if *i == id)
                });
                self.send(&frame5::pub_resp(PubRespKind::PubComp, id, 0));
            }
            q => panic!("bad qos {q}"),
        }
    }

    pub fn puback(&mut self, id: u16) {
        self.send(&frame5::pub_resp(PubRespKind::PubAck, id, 0));
    }

    pub fn ping(&mut self) {
        self.send(&[0xC0, 0x00]);
        self.wait_for("PINGRESP", |p| matches!(p, Rx::PingResp));
    }

    /// DISCONNECT with `reason`, half-close, wait for the broker's close.
    pub fn disconnect_with(mut self, reason: u8) {
        self.send(&frame5::disconnect(reason, &Props::new()));
        let _ = self.stream.shutdown(Shutdown::Write);
        self.expect_closed(RECV_TIMEOUT);
    }

    /// DISCONNECT with `reason` and properties, half-close, wait for the
    /// broker's close; returns the packets that arrived before the close.
    pub fn disconnect_props(mut self, reason: u8, props: &Props) -> Vec<Rx> {
        self.send(&frame5::disconnect(reason, props));
        let _ = self.stream.shutdown(Shutdown::Write);
        self.expect_closed(RECV_TIMEOUT)
    }

    /// Normal disconnection (reason 0x00).
    pub fn disconnect(self) {
        self.disconnect_with(0);
    }

    /// Closes the socket without DISCONNECT ("network failure").
    pub fn drop_connection(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}
