//! Per-client session state: what outlives a connection when clean session
//! is 0 (MQTT 3.1.1 §3.1.2.4, §4.1): subscriptions, QoS 1/2 messages in
//! flight towards the client, messages queued for it, and the packet ids of
//! QoS 2 messages it sent us that await PUBREL; for 5.0 also its expiry and
//! a will waiting out its delay (5.0 §3.1.2.11.2, §3.1.3.2.2).

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

use crate::codec::{PacketId, ProtocolVersion, QoS, SubOptions};

use super::ConnId;
use super::conn::WillMsg;

/// Session expiry interval meaning "never" [MQTT 5.0 §3.1.2.11.2].
pub(crate) const NEVER_EXPIRES: u32 = u32::MAX;

/// Index of a session in the core's session slab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub(crate) usize);

/// An application message as the broker keeps it once it must outlive the
/// packet it came in (queued, in flight, retained). Shared by every session
/// it goes to: one thread, so `Rc` is enough.
#[derive(Debug)]
pub(crate) struct Message {
    pub topic: Box<str>,
    pub payload: Box<[u8]>,
    /// QoS it was published with.
    pub qos: QoS,
    /// 5.0 properties passed through to subscribers untouched and in order
    /// (payload format, content type, response topic, correlation data,
    /// user properties). Topic alias, subscription identifiers and message
    /// expiry are not in here: they are per hop or per subscriber.
    pub props: Box<[u8]>,
    /// 5.0 message expiry: not delivered after this instant [MQTT-3.3.2-5].
    pub expires_at: Option<Instant>,
    /// Number of the message in the persistence records; 0 until it is
    /// first written for a persistent session.
    pub persist_id: std::cell::Cell<u64>,
}

impl Message {
    /// Bytes this message accounts for in queue and retained limits.
    pub fn cost(&self) -> usize {
        self.topic.len() + self.payload.len() + self.props.len()
    }

    /// Whether its message expiry has passed.
    pub fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// The message expiry interval to forward: what is left of it, in whole
    /// seconds rounded up [MQTT-3.3.2-6], so a message forwarded within the
    /// second it arrived keeps its interval (as with Mosquitto's clock).
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        self.expires_at.map(|t| {
            let left = t.saturating_duration_since(now);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            u32::try_from(secs).unwrap_or(u32::MAX)
        })
    }
}

/// A message waiting in a session's queue.
#[derive(Debug)]
pub(crate) struct Pending {
    pub msg: Rc<Message>,
    /// QoS it is to be delivered with (the minimum of published and granted).
    pub qos: QoS,
    /// RETAIN flag it is to be delivered with.
    pub retain: bool,
    /// 5.0 subscription identifiers of the matching subscriptions [MQTT-3.3.4-3].
    pub sub_ids: Box<[u32]>,
}

/// Where an outgoing QoS 1/2 message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutState {
    /// PUBLISH sent, PUBACK (QoS 1) or PUBREC (QoS 2) awaited.
    AwaitAck,
    /// PUBREL sent, PUBCOMP awaited.
    AwaitComp,
}

/// An outgoing QoS 1/2 message not yet fully acknowledged.
#[derive(Debug)]
pub(crate) struct Inflight {
    pub pid: PacketId,
    pub state: OutState,
    pub pending: Pending,
}

/// What a subscription asks for: the options byte and, in 5.0, a
/// subscription identifier. This is the trie's per-entry value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SubEntry {
    pub options: SubOptions,
    pub sub_id: Option<u32>,
    /// The ACL allows everything this filter can match, so deliveries
    /// through it need no per-message check.
    pub acl_full: bool,
}

/// One subscription of a session, as granted. `filter` is the whole filter
/// as subscribed, `$share/<group>/` prefix included.
#[derive(Clone, Debug)]
pub(crate) struct Subscription {
    pub filter: Box<str>,
    pub entry: SubEntry,
}

/// A session's own queue bound and what happens when it is reached (see
/// [`super::Core::set_queue_policy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuePolicy {
    /// Most messages queued.
    pub max_messages: usize,
    /// Most topic, payload and property bytes queued.
    pub max_bytes: usize,
    /// When full: drop the oldest queued message (`true`) or refuse the
    /// new one (`false`, what every other session does).
    pub drop_oldest: bool,
    /// A full queue never slows publishers down (see `Core::throttle`).
    pub never_throttle: bool,
    /// QoS 0 messages are queued too while the session is offline (or has
    /// older messages queued), in memory only: a bridge keeps them for an
    /// uplink that is down. Other sessions drop them (3.1.1 §3.1.2.4: the
    /// server MAY store QoS 0 messages for an offline session).
    pub keep_qos0: bool,
}

impl QueuePolicy {
    /// What every session without a policy of its own gets: the
    /// broker-wide `max_queued_messages` / `max_queued_bytes`, refusing new
    /// messages when full, slowing publishers down.
    pub fn from_limits(limits: &crate::Limits) -> QueuePolicy {
        QueuePolicy {
            max_messages: limits.max_queued_messages,
            max_bytes: limits.max_queued_bytes,
            drop_oldest: false,
            never_throttle: false,
            keep_qos0: false,
        }
    }
}

/// Per-client state, connected or not.
#[derive(Debug)]
pub(crate) struct Session {
    pub client_id: Box<str>,
    /// The connection currently attached, if any.
    pub conn: Option<ConnId>,
    /// Protocol level of the last connection (to encode queued messages).
    pub protocol: ProtocolVersion,
    /// Seconds the session outlives its connection: 0 for a clean 3.1.1
    /// session (it ends with the connection), [`NEVER_EXPIRES`] for a 3.1.1
    /// persistent session, the session expiry interval in 5.0.
    pub expiry_interval: u32,
    /// When an offline session is to be dropped.
    pub expires_at: Option<Instant>,
    /// 5.0: a will waiting out its will delay, and when it is due. A new
    /// connection to the session cancels it [MQTT-3.1.3-9].
    pub pending_will: Option<Box<(WillMsg, Instant)>>,
    /// 5.0: the client's Receive Maximum, capping what is in flight to it.
    pub client_receive_max: u16,
    /// 5.0: the largest packet the client accepts [MQTT-3.1.2-24].
    pub client_max_packet: u32,
    /// User name of the last connection, for the ACL.
    pub username: Option<Box<str>>,
    /// The application's own session: no ACL applies.
    pub trusted: bool,
    /// Number of the last routing that matched this session, and the index
    /// of its entry in that routing's matches (see `collect_matches`).
    pub route_stamp: u64,
    pub route_slot: usize,
    /// When the client last made progress: it acknowledged a message, it
    /// connected owing some, or it began to owe acknowledgements (a message
    /// queued with nothing queued or in flight before). A subscriber that makes
    /// progress is slow but alive, one that does not is stuck (see
    /// `flow.rs`).
    pub last_progress: Option<Instant>,
    /// Messages are being dropped for it (stuck, queue full): the episode
    /// was logged and its end will be.
    pub dropping: bool,
    pub subscriptions: Vec<Subscription>,
    /// Outgoing QoS 1/2 messages in send order.
    pub inflight: VecDeque<Inflight>,
    /// Messages waiting for room in the inflight window or in the
    /// connection's output buffer, or for the client to come back.
    pub queue: VecDeque<Pending>,
    /// Topic and payload bytes held in `queue`.
    pub queued_bytes: usize,
    /// A queue bound and drop policy of its own (a bridge's session), in
    /// place of the broker-wide `max_queued_*` limits.
    pub policy: Option<QueuePolicy>,
    /// Messages this session lost to its queue bound.
    pub dropped: u64,
    /// Incoming QoS 2 packet ids received and not yet released by PUBREL.
    /// Bounded by the packet-id space (at most 65,535 entries).
    pub incoming_qos2: Vec<u16>,
    /// Number of the session in the persistence records; 0 when it is not
    /// recorded (persistence off or not full, or a session that ends with
    /// its connection).
    pub persist_id: u64,
    next_pid: u16,
}

impl Session {
    pub fn new(client_id: Box<str>, protocol: ProtocolVersion, expiry_interval: u32) -> Session {
        Session {
            client_id,
            conn: None,
            protocol,
            expiry_interval,
            expires_at: None,
            pending_will: None,
            client_receive_max: u16::MAX,
            client_max_packet: u32::MAX,
            username: None,
            trusted: false,
            route_stamp: 0,
            route_slot: 0,
            last_progress: None,
            dropping: false,
            subscriptions: Vec::new(),
            inflight: VecDeque::new(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            policy: None,
            dropped: 0,
            incoming_qos2: Vec::new(),
            persist_id: 0,
            next_pid: 0,
        }
    }

    /// A packet id not used by any message in flight [MQTT-2.3.1-2].
    /// The inflight window is far smaller than the id space, so a free one
    /// always exists; the loop is bounded by the window's size.
    pub fn next_packet_id(&mut self) -> PacketId {
        loop {
            self.next_pid = self.next_pid.wrapping_add(1);
            if self.next_pid == 0 {
                self.next_pid = 1;
            }
            let candidate = self.next_pid;
            if !self.inflight.iter().any(|f| f.pid.get() == candidate) {
                if let Some(pid) = PacketId::new(candidate) {
                    return pid;
                }
            }
        }
    }

    /// Position of the inflight entry with this packet id.
    pub fn inflight_position(&self, pid: PacketId) -> Option<usize> {
        self.inflight.iter().position(|f| f.pid == pid)
    }

    /// Pops the oldest queued message, keeping the byte count right.
    pub fn pop_queued(&mut self) -> Option<Pending> {
        let p = self.queue.pop_front()?;
        self.queued_bytes -= p.msg.cost();
        Some(p)
    }

    /// Index of the subscription on exactly this filter.
    pub fn subscription_index(&self, filter: &str) -> Option<usize> {
        self.subscriptions.iter().position(|s| &*s.filter == filter)
    }
}
