//! The loop side of in-process clients: a core connection whose bytes never
//! leave memory.
//!
//! For a local connection the event loop encodes real MQTT 5.0 packets
//! (CONNECT, SUBSCRIBE, PUBLISH with its properties, the acknowledgements) and feeds them to
//! [`Core::handle_data`]; what the core writes for it is decoded here and
//! dispatched: CONNACK and SUBACK answer the waiting request, PUBLISH goes to
//! the subscription's mailbox and is acknowledged (PUBACK for QoS 1, PUBREC
//! then PUBCOMP for QoS 2).
//!
//! Each local connection is either a publisher (what a [`Client`] holds) or
//! carries exactly one subscription (what a [`Subscription`] holds), so every
//! PUBLISH the core sends it has exactly one destination.
//!
//! [`Client`]: crate::Client
//! [`Subscription`]: crate::Subscription

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::time::Instant;

mod error;
pub(crate) mod mailbox;
mod message;

pub use error::ClientError;
pub(crate) use error::connack_text;
use mailbox::Mailbox;
pub use message::Message;

use crate::codec::{
    self, Connect, Packet, PacketId, Properties, ProtocolVersion, PubRespKind, QoS, SubOptions,
};
use crate::core::adapter::{self, Frame, ack, feed_frame};
use crate::core::{ConnId, Core};
use crate::stats::BrokerStats;

/// QoS 2 messages a local publisher may have sent that the core has not yet
/// confirmed with PUBCOMP. Only reached when the core's answers are stuck
/// behind messages this process does not take.
const MAX_QOS2_AWAITING: usize = 1024;

/// What local connections speak: 5.0, so that messages keep their
/// properties both ways. With no properties in CONNECT, the session ends
/// with the connection (expiry 0), no topic aliases come from the core and
/// there is no Maximum Packet Size on what it sends.
const VERSION: ProtocolVersion = ProtocolVersion::V5;

/// Names one local connection across threads: the slab key plus a serial
/// number, so a request for a connection that is gone never reaches a new
/// one that reuses its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LocalRef {
    pub key: usize,
    pub serial: u64,
}

/// A request to open a local connection.
pub(crate) struct Open {
    /// The MQTT client id (empty: the core assigns one).
    pub client_id: String,
    /// For a subscription connection: the filter, its QoS and the mailbox.
    pub subscribe: Option<(String, QoS, Arc<Mailbox>)>,
    /// Answered once CONNACK (and SUBACK) arrived.
    pub reply: SyncSender<Result<LocalRef, ClientError>>,
}

/// What other threads ask of the loop.
pub(crate) enum Request {
    /// Open a local connection.
    Open(Open),
    /// Publish on a local connection.
    Publish {
        /// The publishing connection.
        to: LocalRef,
        /// What to publish.
        message: Message,
        /// Answered once the core has taken the message.
        reply: SyncSender<Result<(), ClientError>>,
    },
    /// Disconnect a local connection (its owner was dropped).
    Close(LocalRef),
    /// Counters.
    Stats(SyncSender<BrokerStats>),
    /// Stop the broker gracefully.
    Stop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    AwaitConnack,
    AwaitSuback,
    Ready,
}

/// The outcome of [`LocalConn::drain`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Drain {
    /// All output handled.
    Done,
    /// The mailbox is full; the rest waits in the core until it has room.
    Blocked,
    /// The output could not be decoded; close the connection.
    Broken,
}

/// What one frame of core output asks of us, owned so the core can be
/// called again.
enum Event {
    Connack(u8),
    Suback(Option<u8>),
    Publish { qos: QoS, pid: Option<PacketId> },
    Ack(PubRespKind, PacketId, u8),
    Ignore,
}

/// One local connection, as the loop keeps it.
pub(crate) struct LocalConn {
    me: LocalRef,
    phase: Phase,
    reply: Option<SyncSender<Result<LocalRef, ClientError>>>,
    subscribe: Option<(String, QoS)>,
    mailbox: Option<Arc<Mailbox>>,
    next_pid: u16,
    /// Packet ids of our QoS 2 publishes not yet completed.
    qos2_awaiting: HashSet<u16>,
    /// Reused encode buffer.
    buf: Vec<u8>,
}

impl LocalConn {
    /// Opens the connection in the core and sends CONNECT.
    pub(crate) fn open(core: &mut Core, me: LocalRef, open: Open, now: Instant) -> LocalConn {
        let (subscribe, mailbox) = match open.subscribe {
            Some((filter, qos, mailbox)) => (Some((filter, qos)), Some(mailbox)),
            None => (None, None),
        };
        let label = match &subscribe {
            Some((filter, _)) => format!("in-process, '{filter}'"),
            None => "in-process".to_owned(),
        };
        let mut conn = LocalConn {
            me,
            phase: Phase::AwaitConnack,
            reply: Some(open.reply),
            subscribe,
            mailbox,
            next_pid: 0,
            qos2_awaiting: HashSet::new(),
            buf: Vec::new(),
        };
        let id = ConnId(me.key);
        core.handle_open(id, &label, now);
        // The application's own client: no credentials, no ACL.
        core.trust(id);
        let connect = Packet::Connect(Connect {
            protocol: VERSION,
            clean_start: true,
            // In-process: nothing to detect, no keepalive.
            keep_alive: 0,
            properties: Properties::EMPTY,
            client_id: &open.client_id,
            will: None,
            username: None,
            password: None,
        });
        conn.feed(core, now, |out| connect.encode(VERSION, out));
        conn
    }

    /// Whether this is the connection `r` names.
    pub(crate) fn is(&self, r: LocalRef) -> bool {
        self.me == r
    }

    /// Encodes with `encode` and hands the bytes to the core.
    fn feed(&mut self, core: &mut Core, now: Instant, encode: impl FnOnce(&mut Vec<u8>)) {
        feed_frame(core, ConnId(self.me.key), &mut self.buf, now, encode);
    }

    fn feed_ack(&mut self, core: &mut Core, now: Instant, kind: PubRespKind, pid: PacketId) {
        let packet = ack(kind, pid);
        self.feed(core, now, |out| packet.encode(VERSION, out));
    }

    /// A packet id for a new publish; `None` when every candidate is taken.
    fn new_pid(&mut self) -> Option<PacketId> {
        for _ in 0..=MAX_QOS2_AWAITING {
            self.next_pid = self.next_pid.wrapping_add(1).max(1);
            if !self.qos2_awaiting.contains(&self.next_pid) {
                return PacketId::new(self.next_pid);
            }
        }
        None
    }

    /// Publishes `m` (already validated by the client). Returns once the
    /// core has taken it: routed to the subscribers and stored if retained.
    pub(crate) fn publish(
        &mut self,
        core: &mut Core,
        m: &Message,
        now: Instant,
    ) -> Result<(), ClientError> {
        let id = ConnId(self.me.key);
        if self.phase != Phase::Ready || core.is_closing(id) {
            return Err(ClientError::Disconnected);
        }
        let packet_id = match m.qos {
            QoS::AtMostOnce => None,
            QoS::ExactlyOnce if self.qos2_awaiting.len() >= MAX_QOS2_AWAITING => {
                return Err(ClientError::Busy);
            }
            _ => Some(self.new_pid().ok_or(ClientError::Busy)?),
        };
        // Checked by the client already; a failure here means nothing is
        // sent rather than a property dropped.
        let properties = m.properties()?;
        let packet = m.as_publish(properties.as_properties(), packet_id);
        self.feed(core, now, |out| packet.encode(VERSION, out));
        if let (QoS::ExactlyOnce, Some(pid)) = (m.qos, packet_id) {
            self.qos2_awaiting.insert(pid.get());
        }
        if core.is_closing(id) {
            return Err(ClientError::Disconnected);
        }
        Ok(())
    }

    /// Says DISCONNECT; the core then closes the connection.
    pub(crate) fn disconnect(&mut self, core: &mut Core, now: Instant) {
        if core.is_closing(ConnId(self.me.key)) {
            return;
        }
        let packet = Packet::Disconnect(codec::Disconnect {
            reason: 0,
            properties: Properties::EMPTY,
        });
        self.feed(core, now, |out| packet.encode(VERSION, out));
    }

    /// The connection is gone: the subscription ends, a waiting request is
    /// told (dropping its reply sender does that).
    pub(crate) fn closed(&mut self) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.try_send(Err(ClientError::Disconnected));
        }
        if let Some(m) = &self.mailbox {
            m.close();
        }
    }

    /// Answers the waiting open request. When nobody waits any more (the
    /// requester timed out), the connection has no owner and is closed.
    fn answer(&mut self, core: &mut Core, now: Instant, result: Result<LocalRef, ClientError>) {
        let ok = result.is_ok();
        let delivered = match self.reply.take() {
            Some(reply) => reply.try_send(result).is_ok(),
            None => false,
        };
        if ok && !delivered {
            self.disconnect(core, now);
        }
    }

    /// Handles what the core has written for this connection.
    pub(crate) fn drain(&mut self, core: &mut Core, now: Instant) -> Drain {
        let id = ConnId(self.me.key);
        loop {
            let mailbox = self.mailbox.as_deref();
            let frame = adapter::next_frame(core, id, VERSION, now, |packet| {
                Some(match packet {
                    Packet::Connack(c) => (Event::Connack(c.code), None),
                    Packet::Suback(s) => (Event::Suback(s.codes.first().copied()), None),
                    Packet::Publish(p) => {
                        if mailbox.is_some_and(|m| !m.has_room()) {
                            return None;
                        }
                        let event = Event::Publish {
                            qos: p.qos,
                            pid: p.packet_id,
                        };
                        (event, Some(Message::from_publish(&p)))
                    }
                    Packet::PubResp(r) => (Event::Ack(r.kind, r.packet_id, r.reason), None),
                    _ => (Event::Ignore, None),
                })
            });
            match frame {
                Frame::None => return Drain::Done,
                Frame::Left => return Drain::Blocked,
                Frame::Broken(why) => {
                    log::error!("in-process connection: {why} from the core");
                    return Drain::Broken;
                }
                Frame::Taken((event, message)) => self.handle(core, now, event, message),
            }
        }
    }

    fn handle(&mut self, core: &mut Core, now: Instant, event: Event, message: Option<Message>) {
        match event {
            Event::Connack(0) => match self.subscribe.clone() {
                Some((filter, qos)) => {
                    self.phase = Phase::AwaitSuback;
                    let pid = PacketId::new(1);
                    if let Some(pid) = pid {
                        let filters = [(filter.as_str(), SubOptions::qos_only(qos))];
                        self.feed(core, now, |out| {
                            codec::encode_subscribe(pid, Properties::EMPTY, &filters, VERSION, out)
                        });
                    }
                }
                None => {
                    self.phase = Phase::Ready;
                    self.answer(core, now, Ok(self.me));
                }
            },
            Event::Connack(code) => {
                // The core closes the connection after a refusal.
                self.answer(core, now, Err(ClientError::Refused { code }));
            }
            Event::Suback(code) if self.phase == Phase::AwaitSuback => match code {
                // 5.0: 0-2 granted QoS, 0x80 and up a refusal.
                Some(c) if c <= 2 => {
                    self.phase = Phase::Ready;
                    self.answer(core, now, Ok(self.me));
                }
                other => {
                    self.answer(
                        core,
                        now,
                        Err(ClientError::SubscriptionRefused {
                            code: other.unwrap_or(0x80),
                        }),
                    );
                    self.disconnect(core, now);
                }
            },
            Event::Suback(_) | Event::Ignore => {}
            Event::Publish { qos, pid } => {
                if let (Some(mailbox), Some(m)) = (&self.mailbox, message) {
                    mailbox.push(m);
                }
                match (qos, pid) {
                    (QoS::AtLeastOnce, Some(pid)) => {
                        self.feed_ack(core, now, PubRespKind::PubAck, pid);
                    }
                    (QoS::ExactlyOnce, Some(pid)) => {
                        self.feed_ack(core, now, PubRespKind::PubRec, pid);
                    }
                    _ => {}
                }
            }
            // A PUBREC with a failure code ends the flow: no PUBREL
            // [MQTT-4.3.3-7] (5.0 §4.3.3), and the id is free again.
            Event::Ack(PubRespKind::PubRec, pid, reason) if reason >= 0x80 => {
                self.qos2_awaiting.remove(&pid.get());
            }
            Event::Ack(PubRespKind::PubRec, pid, _) => {
                self.feed_ack(core, now, PubRespKind::PubRel, pid);
            }
            Event::Ack(PubRespKind::PubRel, pid, _) => {
                self.feed_ack(core, now, PubRespKind::PubComp, pid);
            }
            Event::Ack(PubRespKind::PubComp, pid, _) => {
                self.qos2_awaiting.remove(&pid.get());
            }
            Event::Ack(PubRespKind::PubAck, _, _) => {}
        }
    }
}
