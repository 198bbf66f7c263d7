//! Per-client session state: what outlives a connection when clean session
//! is 0 (MQTT 3.1.1 §3.1.2.4, §4.1): subscriptions, QoS 1/2 messages in
//! flight towards the client, messages queued for it, and the packet ids of
//! QoS 2 messages it sent us that await PUBREL; for 5.0 also its expiry and
//! a will waiting out its delay (5.0 §3.1.2.11.2, §3.1.3.2.2).

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

use crate::codec::{PacketId, ProtocolVersion, SubOptions};

use super::ids::ConnId;
pub(crate) use super::ids::SessionId;
use super::message::WillMsg;
pub(crate) use super::message::{Message, Pending};

/// Session expiry interval meaning "never" [MQTT 5.0 §3.1.2.11.2].
pub(crate) const NEVER_EXPIRES: u32 = u32::MAX;

/// How long a session with `expiry_interval` outlives its connection, in
/// seconds; `None`: for ever. A session that never expires by the protocol
/// (3.1.1 clean session 0, 5.0 expiry 0xFFFFFFFF) is dropped after
/// `persistent_client_expiration` when that is set (Mosquitto's option).
pub(crate) fn offline_lifetime(
    expiry_interval: u32,
    persistent_client_expiration: Option<u32>,
) -> Option<u32> {
    if expiry_interval == NEVER_EXPIRES {
        persistent_client_expiration
    } else {
        Some(expiry_interval)
    }
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
#[derive(Clone, Debug)]
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

/// Longest client id kept inside the session rather than on the heap.
const INLINE_ID: usize = 30;

/// A client id: inside the session when it is short (23-byte 3.1.1 ids,
/// Shelly's 26-byte `shellybutton1-A4CF12F45A10`), on the heap otherwise.
/// 32 bytes either way; a boxed 26-byte id would be 16 here and a 48-byte
/// heap block.
#[derive(Clone)]
pub(crate) enum ClientId {
    Inline { len: u8, bytes: [u8; INLINE_ID] },
    Heap(Box<str>),
}

impl From<&str> for ClientId {
    fn from(id: &str) -> ClientId {
        match u8::try_from(id.len()) {
            Ok(len) if id.len() <= INLINE_ID => {
                let mut bytes = [0; INLINE_ID];
                bytes[..id.len()].copy_from_slice(id.as_bytes());
                ClientId::Inline { len, bytes }
            }
            _ => ClientId::Heap(id.into()),
        }
    }
}

impl std::ops::Deref for ClientId {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            // Copied from a `&str` whole, so always valid UTF-8.
            ClientId::Inline { len, bytes } => bytes
                .get(..usize::from(*len))
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or(""),
            ClientId::Heap(b) => b,
        }
    }
}

impl std::fmt::Debug for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

/// Per-client state, connected or not. What every session uses is here;
/// the rest is a [`SessionState`] reached through `Deref`, shared between
/// all the sessions that never changed it from empty (copy on write), so
/// an idle client's session is 88 bytes (docs/LIMITS.md, "Per-connection
/// accounting"). Write to state fields only when the value changes: the
/// first write gives the session a state of its own.
#[derive(Debug)]
pub(crate) struct Session {
    pub client_id: ClientId,
    /// The connection currently attached, if any.
    pub conn: Option<ConnId>,
    /// User name of the last connection, for the ACL.
    pub username: Option<Box<str>>,
    state: Rc<SessionState>,
    /// Seconds the session outlives its connection: 0 for a clean 3.1.1
    /// session (it ends with the connection), [`NEVER_EXPIRES`] for a 3.1.1
    /// persistent session, the session expiry interval in 5.0.
    pub expiry_interval: u32,
    /// 5.0: the largest packet the client accepts [MQTT-3.1.2-24].
    pub client_max_packet: u32,
    /// 5.0: the client's Receive Maximum, capping what is in flight to it.
    pub client_receive_max: u16,
    next_pid: u16,
    /// Protocol level of the last connection (to encode queued messages).
    pub protocol: ProtocolVersion,
    /// The application's own session: no ACL applies.
    pub trusted: bool,
    /// The listener of the last connection (its index + 1), when it has
    /// options of its own (`Core::set_listener`): with
    /// `per_listener_settings`, its ACL. Two bytes: the session stays small.
    listener: Option<std::num::NonZeroU16>,
}

/// The part of a [`Session`] that an idle client leaves empty.
#[derive(Clone, Debug, Default)]
pub(crate) struct SessionState {
    /// When an offline session is to be dropped.
    pub expires_at: Option<Instant>,
    /// 5.0: a will waiting out its will delay, and when it is due. A new
    /// connection to the session cancels it [MQTT-3.1.3-9].
    pub pending_will: Option<Box<(WillMsg, Instant)>>,
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
}

thread_local! {
    /// The empty state every new session starts with.
    static EMPTY: Rc<SessionState> = Rc::new(SessionState::default());
}

impl std::ops::Deref for Session {
    type Target = SessionState;
    fn deref(&self) -> &SessionState {
        &self.state
    }
}

impl std::ops::DerefMut for Session {
    fn deref_mut(&mut self) -> &mut SessionState {
        Rc::make_mut(&mut self.state)
    }
}

impl Session {
    pub fn new(client_id: &str, protocol: ProtocolVersion, expiry_interval: u32) -> Session {
        Session {
            client_id: ClientId::from(client_id),
            conn: None,
            username: None,
            state: EMPTY.with(Rc::clone),
            expiry_interval,
            client_max_packet: u32::MAX,
            client_receive_max: u16::MAX,
            next_pid: 0,
            protocol,
            trusted: false,
            listener: None,
        }
    }

    /// The listener of the last connection, if noted (see `listener`).
    pub fn listener(&self) -> Option<u16> {
        self.listener.map(|n| n.get() - 1)
    }

    pub fn set_listener(&mut self, index: Option<u16>) {
        self.listener = index
            .and_then(|i| i.checked_add(1))
            .and_then(std::num::NonZeroU16::new);
    }

    /// Whether the session still shares the empty state (tests).
    #[cfg(test)]
    pub fn shares_empty_state(&self) -> bool {
        EMPTY.with(|e| Rc::ptr_eq(e, &self.state))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-connection accounting of docs/LIMITS.md counts on it.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn session_stays_small() {
        assert!(std::mem::size_of::<Session>() <= 88);
    }

    #[test]
    fn client_ids_inline_and_on_the_heap() {
        for id in [
            "",
            "a",
            "shellybutton1-A4CF12F45A10",
            &"x".repeat(30),
            &"é".repeat(40),
        ] {
            let c = ClientId::from(id);
            assert_eq!(&*c, id);
            assert_eq!(matches!(c, ClientId::Inline { .. }), id.len() <= INLINE_ID);
        }
    }

    #[test]
    fn state_is_copied_on_first_write() {
        let mut a = Session::new("a", ProtocolVersion::V311, 0);
        let b = Session::new("b", ProtocolVersion::V311, 0);
        assert!(a.shares_empty_state() && b.shares_empty_state());
        assert!(a.queue.is_empty() && a.expires_at.is_none());
        a.queued_bytes = 3;
        assert!(!a.shares_empty_state() && b.shares_empty_state());
        assert_eq!((a.queued_bytes, b.queued_bytes), (3, 0));
    }
}
