//! Every memory and resource bound of the broker, in one place.
//!
//! Each field says its default, what it costs in the worst case and what the
//! broker does when it is reached. There is no "0 means unlimited": a bound
//! is always a real number. Mosquitto's defaults are accepted (messages up to
//! MQTT's own size, clients up to the open file limit): one memory budget,
//! `memory_limit`, bounds what they make the broker hold (docs/LIMITS.md,
//! "The memory budget"), sized for a box with 64 MiB of RAM to spare.

use std::time::Duration;

/// Largest MQTT packet: 1 byte of type, 4 of remaining length, 268,435,455
/// of body [MQTT-2.2.3].
pub const MAX_MQTT_PACKET: u32 = 268_435_460;

/// Largest payload an MQTT packet can carry (its whole body).
pub const MAX_MQTT_PAYLOAD: usize = 268_435_455;

/// Default [`Limits::memory_limit`]: 64 MiB, what a box has to spare for its
/// broker (docs/LIMITS.md explains the choice).
pub const DEFAULT_MEMORY_LIMIT: usize = 64 * 1024 * 1024;

/// The broker's bounds. `Limits::default()` gives the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Simultaneous network connections (the connection slab's capacity).
    /// Default 1024 here; the `boxmq` binary's default (Mosquitto's
    /// `max_connections -1`) is what the open file limit allows, set at
    /// start. One more is accepted and closed at once, with a log line.
    pub max_connections: usize,
    /// Largest MQTT packet accepted or sent, fixed header included, in bytes.
    /// Default 268,435,460: MQTT's own maximum, as Mosquitto's default (no
    /// Maximum Packet Size in CONNACK then). A larger incoming packet closes
    /// the connection (3.1.1) or is answered with DISCONNECT 0x95 (5.0)
    /// before its body is buffered. A smaller packet is buffered only when
    /// `memory_limit` has room for it.
    pub max_packet_size: u32,
    /// The memory budget, in bytes (Mosquitto's `memory_limit`): one bound
    /// over the frames being received, the messages kept (queued, in
    /// flight, retained) and the output buffers. Default 64 MiB. Packets
    /// and messages over 4 KiB may use it less its last eighth: past that
    /// a frame (decided from its fixed header) or a QoS 1/2 message closes
    /// its connection with DISCONNECT 0x97 (5.0) before anything is
    /// buffered or acknowledged; QoS 0 copies are dropped and counted;
    /// queued copies wait (docs/LIMITS.md, "The memory budget").
    pub memory_limit: usize,
    /// Largest PUBLISH payload taken, in bytes (Mosquitto's
    /// `message_size_limit`). Default 268,435,455: none beyond MQTT's.
    /// A larger payload is dropped, its QoS flow completed (5.0: PUBACK or
    /// PUBREC 0x83 implementation specific error), as Mosquitto does; a
    /// CONNECT whose will payload is larger gets CONNACK 0x05 (5.0: 0x95).
    pub message_size_limit: usize,
    /// QoS 1/2 messages sent to one client and not yet acknowledged.
    /// Default 100 (measured: see BENCHMARKS.md, issue 16). Further
    /// messages wait in the session queue.
    pub max_inflight: u16,
    /// QoS 1/2 messages queued for one session beyond the inflight window
    /// (while it is offline, or while it is slow). Default 1000. When the
    /// queue of a connected subscriber that keeps acknowledging fills, the
    /// publishers feeding it are paused instead (see `stuck_timeout`); new
    /// messages for an offline or stuck session are dropped and counted.
    pub max_queued_messages: usize,
    /// Bytes of payload and topic queued for one session. Default
    /// `usize::MAX` (Mosquitto's `max_queued_bytes 0`): no byte bound of
    /// its own; `max_queued_messages` and `memory_limit` bound the queue.
    /// Same reaction as `max_queued_messages`.
    pub max_queued_bytes: usize,
    /// Subscriptions one session may hold. Default 256. Further SUBSCRIBE
    /// filters get return code 0x80 (3.1.1) / 0x97 quota exceeded (5.0).
    pub max_subscriptions_per_session: usize,
    /// Sessions kept in all (connected and persistent offline ones).
    /// Default 4096. A CONNECT that would need one more is refused with
    /// CONNACK 0x03 server unavailable (3.1.1) / 0x97 quota exceeded (5.0).
    pub max_sessions: usize,
    /// Longest topic name or filter in bytes. Default 65,535 (the longest
    /// an MQTT string can be, as Mosquitto accepts). A longer PUBLISH topic
    /// is a protocol error (5.0: DISCONNECT 0x82); a longer filter in
    /// SUBSCRIBE or UNSUBSCRIBE closes the connection (5.0: 0x81), as
    /// Mosquitto answers a filter it cannot take.
    pub max_topic_len: usize,
    /// Most levels in a topic name or filter. Default 201 (Mosquitto's
    /// hierarchy limit: 200 separators). Same reactions as `max_topic_len`.
    pub max_topic_levels: usize,
    /// Longest client identifier in bytes. Default 65,535 (no limit beyond
    /// the protocol's, as Mosquitto). Longer gets CONNACK 0x02 identifier
    /// rejected (3.1.1) / 0x85 (5.0).
    pub max_client_id_len: usize,
    /// Retained messages held. Default 10,000. A new retained topic past the
    /// bound is not stored (the message is still delivered) and counted.
    pub max_retained_messages: usize,
    /// Bytes of retained topics and payloads held. Default 32 MiB, half the
    /// default memory budget, so that a 16 MiB retained message (a camera
    /// snapshot) is kept. Same reaction as `max_retained_messages`.
    pub max_retained_bytes: usize,
    /// Bytes waiting in one connection's output queue before the broker stops
    /// adding to it: QoS 0 messages for that client are dropped and counted,
    /// QoS 1/2 messages stay in the session queue. Default 256 KiB.
    pub max_output_buffer: usize,
    /// Time a new connection has to send a complete CONNECT. Default 10 s;
    /// then it is closed.
    pub connect_timeout: Duration,
    /// 5.0 topic aliases a client may set on one connection (the Topic Alias
    /// Maximum announced in CONNACK). Default 10 (Mosquitto's), each holding one topic
    /// name (at most `max_topic_len` bytes). An alias of 0 or above it gets
    /// DISCONNECT 0x94. 0 turns topic aliases off.
    pub max_topic_aliases: u16,
    /// A connected subscriber that owes acknowledgements and has sent none
    /// for this long is stuck. Default 5 s. Until then the publishers
    /// feeding its full queue are paused (the broker stops reading them);
    /// once it is stuck they go on and its queue bound drops, counts and
    /// logs what does not fit. Costs nothing in memory.
    pub stuck_timeout: Duration,
    /// Longest keep alive a 5.0 client may use, in seconds (Mosquitto's
    /// `max_keepalive`). Default 65,535: no limit. Below that, a 5.0 client
    /// asking for more, or for none (0), is told this value in CONNACK's
    /// Server Keep Alive and held to it [MQTT-3.2.2-21]. 3.1.1 clients keep
    /// their own, as in Mosquitto. No memory.
    pub max_keepalive: u16,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_packet_size: MAX_MQTT_PACKET,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            message_size_limit: MAX_MQTT_PAYLOAD,
            max_inflight: 100,
            max_queued_messages: 1000,
            max_queued_bytes: usize::MAX,
            max_subscriptions_per_session: 256,
            max_sessions: 4096,
            max_topic_len: 65_535,
            max_topic_levels: 201,
            max_client_id_len: 65_535,
            max_retained_messages: 10_000,
            max_retained_bytes: 32 * 1024 * 1024,
            max_output_buffer: 256 * 1024,
            connect_timeout: Duration::from_secs(10),
            max_topic_aliases: 10,
            stuck_timeout: Duration::from_secs(5),
            max_keepalive: u16::MAX,
        }
    }
}
