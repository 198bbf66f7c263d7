//! Bridges: boxmq as an MQTT client of another broker (a central
//! Mosquitto, a RabbitMQ/EMQX/HiveMQ/VerneMQ cluster), forwarding chosen
//! topics both ways, with store-and-forward while the uplink is down.
//!
//! A bridge has two sides, both spoken with boxmq's own codec:
//!
//! * the local side is a trusted in-process connection to the core, MQTT
//!   5.0, with a persistent session (client id `$bridge/<name>` unless
//!   `local_clientid` says otherwise, session expiry "never") subscribed to
//!   the `out`/`both` topics with No Local (what the bridge publishes from
//!   the remote does not come back to it) and Retain As Published;
//! * the remote side is an outgoing TCP connection driven by the event loop
//!   (`src/net/bridge.rs`), MQTT 3.1.1 or 5.0.
//!
//! Store-and-forward falls out of the core's session rules: the local side
//! is connected only while the remote one is up, and a message the core
//! gives the bridge is acknowledged to the core only once the remote
//! acknowledged it. While the uplink is down the local session is offline,
//! so the core keeps its QoS 1/2 messages (in flight and queued, in order,
//! within the bridge's own queue bound and drop policy) and sends them
//! again when the bridge comes back. With persistence on, that session is
//! kept on disk like any other.
//!
//! This module is sans-IO: [`Link`] never touches a socket or the clock;
//! the event loop feeds it the remote's bytes and the time and writes what
//! it queues.

pub(crate) mod link;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::codec::QoS;
use crate::topic;

pub(crate) use link::Link;

/// Which way a topic is forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the remote broker to this one.
    In,
    /// From this broker to the remote one.
    Out,
    /// Both ways.
    Both,
}

impl Direction {
    /// Whether messages go from here to the remote.
    pub fn outgoing(self) -> bool {
        matches!(self, Direction::Out | Direction::Both)
    }

    /// Whether messages come from the remote to here.
    pub fn incoming(self) -> bool {
        matches!(self, Direction::In | Direction::Both)
    }
}

/// One `topic` line: a pattern, a direction, a QoS and the prefixes that
/// turn a local topic into a remote one and back (Mosquitto's semantics:
/// the local topic is `local_prefix` + the part matching `pattern`, the
/// remote one `remote_prefix` + the same part).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicRule {
    /// Topic filter, wildcards allowed; may be empty when a prefix is given.
    pub pattern: String,
    /// Which way.
    pub direction: Direction,
    /// QoS of the subscriptions made for this rule (local and remote).
    pub qos: QoS,
    /// Prefix of the topic on this broker.
    pub local_prefix: String,
    /// Prefix of the topic on the remote broker.
    pub remote_prefix: String,
}

impl TopicRule {
    /// A rule without prefixes.
    pub fn new(pattern: &str, direction: Direction, qos: QoS) -> TopicRule {
        TopicRule {
            pattern: pattern.to_owned(),
            direction,
            qos,
            local_prefix: String::new(),
            remote_prefix: String::new(),
        }
    }

    /// The same rule with prefixes.
    pub fn with_prefixes(mut self, local: &str, remote: &str) -> TopicRule {
        self.local_prefix = local.to_owned();
        self.remote_prefix = remote.to_owned();
        self
    }

    /// The filter subscribed to on this broker.
    pub fn local_filter(&self) -> String {
        format!("{}{}", self.local_prefix, self.pattern)
    }

    /// The filter subscribed to on the remote broker.
    pub fn remote_filter(&self) -> String {
        format!("{}{}", self.remote_prefix, self.pattern)
    }

    /// The remote topic for local `topic`, if this rule forwards it out.
    pub fn to_remote(&self, topic: &str) -> Option<String> {
        if !self.direction.outgoing() || !topic::matches(&self.local_filter(), topic) {
            return None;
        }
        let rest = topic.strip_prefix(self.local_prefix.as_str())?;
        Some(format!("{}{rest}", self.remote_prefix))
    }

    /// The local topic for remote `topic`, if this rule forwards it in.
    pub fn to_local(&self, topic: &str) -> Option<String> {
        if !self.direction.incoming() || !topic::matches(&self.remote_filter(), topic) {
            return None;
        }
        let rest = topic.strip_prefix(self.remote_prefix.as_str())?;
        Some(format!("{}{rest}", self.local_prefix))
    }
}

/// Protocol spoken to the remote broker (`bridge_protocol_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteProtocol {
    /// MQTT 3.1.1 (`mqttv311`, the default).
    V311,
    /// MQTT 5.0 (`mqttv50`).
    V5,
}

/// What happens to a message for the remote when the bridge's queue is
/// full (`bridge_queue_full`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueFull {
    /// The new message is dropped and counted; what is queued stays (the
    /// default, and what every other session does).
    RefuseNew,
    /// The oldest queued message is dropped and counted to make room.
    DropOldest,
}

/// When a bridge connects (`start_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartType {
    /// At the broker's start, and again after every failure, after
    /// `restart_timeout` (the default).
    Automatic,
    /// When `threshold` messages wait for the remote (queued or in
    /// flight); it disconnects after `idle_timeout` without a message
    /// either way. Messages are kept meanwhile within the bridge's queue
    /// bound, as while any bridge is down.
    Lazy,
    /// At the broker's start, once: no new attempt after that connection
    /// ends or fails.
    Once,
}

/// Reconnection delays (`restart_timeout BASE [CAP]`): a constant `base`
/// without a cap; with one, exponential backoff from `base` to `cap`
/// with jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartTimeout {
    /// First delay.
    pub base: Duration,
    /// Longest delay; `None`: always `base`.
    pub cap: Option<Duration>,
}

/// One bridge (`connection NAME` and the lines after it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeConfig {
    /// The connection's name, used in client ids, logs and `$SYS` topics.
    pub name: String,
    /// Remote brokers as `host:port` (port 1883 when omitted); the first
    /// is the primary, the others are tried in turn when it fails.
    pub addresses: Vec<String>,
    /// What is forwarded.
    pub topics: Vec<TopicRule>,
    /// Client id on the remote; default `boxmq.<name>`.
    pub remote_clientid: Option<String>,
    /// Client id of the local session; default `$bridge/<name>`.
    pub local_clientid: Option<String>,
    /// User name on the remote.
    pub remote_username: Option<String>,
    /// Password on the remote.
    pub remote_password: Option<String>,
    /// Clean session towards the remote (default false: the remote keeps
    /// the bridge's subscriptions and messages across reconnections).
    pub cleansession: bool,
    /// Keepalive towards the remote in seconds (default 60).
    pub keepalive: u16,
    /// Reconnection delays (default 5 s, backing off to 30 s).
    pub restart_timeout: RestartTimeout,
    /// Protocol towards the remote (default 3.1.1).
    pub protocol: RemoteProtocol,
    /// 3.1.1: announce the bridge to the remote (protocol level 0x84) so a
    /// Mosquitto remote does not send our own messages back (default
    /// true; dropped for the session if the remote closes before CONNACK).
    pub try_private: bool,
    /// Publish the connection state, retained, here and on the remote
    /// (default true).
    pub notifications: bool,
    /// `notifications_local_only true`: the state notifications are
    /// published here only; the remote gets neither the "1" nor the "0",
    /// and no will (default false).
    pub notifications_local_only: bool,
    /// Topic of the state notifications; default
    /// `$SYS/broker/connection/<name>/state`.
    pub notification_topic: Option<String>,
    /// `true`: addresses are used in turn; `false` (default): after a
    /// failover the bridge goes back to the first address once it is
    /// reachable, tried after a hold-down.
    pub round_robin: bool,
    /// Most messages kept for the remote while it cannot take them.
    pub max_queued_messages: usize,
    /// Most bytes (topic, payload, properties) kept for the remote.
    pub max_queued_bytes: usize,
    /// What a full queue does.
    pub queue_full: QueueFull,
    /// QoS 0 messages for the remote are kept too while the uplink is down
    /// (default true; in memory only, never on disk).
    pub queue_qos0: bool,
    /// TLS towards the remote (cargo feature `tls`, `bridge_cafile`): the
    /// CA certificates (PEM) the remote's certificate must chain to. The
    /// remote's name is the host of the address in use (an IP address
    /// literal is checked against the certificate's IP addresses).
    pub cafile: Option<PathBuf>,
    /// A directory of PEM CA certificates, every file in it read
    /// (`bridge_capath`, e.g. `/etc/ssl/certs` for a remote with a public
    /// certificate); TLS as with `cafile`, and both count when both are set.
    pub capath: Option<PathBuf>,
    /// Client certificate chain (PEM) shown to the remote
    /// (`bridge_certfile`; with `keyfile`).
    pub certfile: Option<PathBuf>,
    /// Private key (PEM) of `certfile` (`bridge_keyfile`).
    pub keyfile: Option<PathBuf>,
    /// `bridge_insecure`: the remote's certificate must still chain to
    /// `cafile`, but its names are not compared with the address (default
    /// false; for tests only).
    pub insecure: bool,
    /// `bridge_alpn`: the protocol name offered in the TLS handshake's
    /// ALPN extension (none by default).
    pub alpn: Option<String>,
    /// `bridge_tls_version tlsv1.3`: the bridge offers and accepts TLS 1.3
    /// only; `false`, the default (`tlsv1.2`, Mosquitto's minimum): TLS 1.2
    /// and 1.3.
    pub tls13_only: bool,
    /// When the bridge connects (default [`StartType::Automatic`]).
    pub start_type: StartType,
    /// Lazy bridges: disconnect after this long without a message to or
    /// from the remote (default 60 s).
    pub idle_timeout: Duration,
    /// Lazy bridges: connect when this many messages wait for the remote
    /// (default 10).
    pub threshold: usize,
    /// `bridge_outgoing_retain false`: the retain flag is cleared on
    /// everything sent to the remote (for brokers without retained
    /// messages); default true.
    pub outgoing_retain: bool,
    /// `bridge_max_packet_size`: messages whose PUBLISH to the remote
    /// would be larger are dropped (the smaller of this and the remote's
    /// 5.0 Maximum Packet Size applies); `None`: no limit of the bridge's
    /// own.
    pub max_packet_size: Option<u32>,
    /// `bridge_bind_address`: the local address the connection to the
    /// remote goes out from (by default the system chooses).
    pub bind_address: Option<IpAddr>,
}

/// Default `bridge_max_queued_messages`.
pub const DEFAULT_MAX_QUEUED_MESSAGES: usize = 100_000;
/// Default `bridge_max_queued_bytes`.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 16 * 1024 * 1024;

impl BridgeConfig {
    /// A bridge named `name` with Mosquitto's defaults and no address or
    /// topic yet.
    pub fn new(name: &str) -> BridgeConfig {
        BridgeConfig {
            name: name.to_owned(),
            addresses: Vec::new(),
            topics: Vec::new(),
            remote_clientid: None,
            local_clientid: None,
            remote_username: None,
            remote_password: None,
            cleansession: false,
            keepalive: 60,
            restart_timeout: RestartTimeout {
                base: Duration::from_secs(5),
                cap: Some(Duration::from_secs(30)),
            },
            protocol: RemoteProtocol::V311,
            try_private: true,
            notifications: true,
            notifications_local_only: false,
            notification_topic: None,
            round_robin: false,
            max_queued_messages: DEFAULT_MAX_QUEUED_MESSAGES,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            queue_full: QueueFull::RefuseNew,
            queue_qos0: true,
            cafile: None,
            capath: None,
            certfile: None,
            keyfile: None,
            insecure: false,
            alpn: None,
            tls13_only: false,
            start_type: StartType::Automatic,
            idle_timeout: Duration::from_secs(60),
            threshold: 10,
            outgoing_retain: true,
            max_packet_size: None,
            bind_address: None,
        }
    }

    /// TLS towards the remote, its certificate checked against the CA
    /// certificates in `cafile` (PEM). Needs the cargo feature `tls`.
    pub fn cafile(mut self, cafile: impl Into<PathBuf>) -> BridgeConfig {
        self.cafile = Some(cafile.into());
        self
    }

    /// A client certificate (PEM chain and its PEM key) for a TLS remote.
    pub fn client_certificate(
        mut self,
        certfile: impl Into<PathBuf>,
        keyfile: impl Into<PathBuf>,
    ) -> BridgeConfig {
        self.certfile = Some(certfile.into());
        self.keyfile = Some(keyfile.into());
        self
    }

    /// TLS towards the remote with the CA certificates in the directory
    /// `capath` (every file in it; `bridge_capath`). Needs the cargo
    /// feature `tls`.
    pub fn capath(mut self, capath: impl Into<PathBuf>) -> BridgeConfig {
        self.capath = Some(capath.into());
        self
    }

    /// Whether the remote is reached over TLS.
    pub fn is_tls(&self) -> bool {
        self.cafile.is_some() || self.capath.is_some()
    }

    /// Adds a remote address (`host:port`).
    pub fn address(mut self, addr: &str) -> BridgeConfig {
        self.addresses.push(addr.to_owned());
        self
    }

    /// Adds a topic rule.
    pub fn topic(mut self, rule: TopicRule) -> BridgeConfig {
        self.topics.push(rule);
        self
    }

    /// The client id used on the remote.
    pub fn remote_client_id(&self) -> String {
        self.remote_clientid
            .clone()
            .unwrap_or_else(|| format!("boxmq.{}", self.name))
    }

    /// The client id of the local session.
    pub fn local_client_id(&self) -> String {
        self.local_clientid
            .clone()
            .unwrap_or_else(|| format!("$bridge/{}", self.name))
    }

    /// The topic of the state notifications.
    pub fn state_topic(&self) -> String {
        self.notification_topic
            .clone()
            .unwrap_or_else(|| format!("$SYS/broker/connection/{}/state", self.name))
    }

    /// What is wrong with this bridge, if anything: no address, no topic,
    /// an invalid filter.
    pub fn check(&self) -> Result<(), String> {
        if self.name.is_empty() || self.name.contains(['/', '+', '#']) {
            return Err(format!(
                "bridge name '{}': must be non-empty, without '/', '+' or '#'",
                self.name
            ));
        }
        if self.addresses.is_empty() {
            return Err(format!("bridge '{}': no address", self.name));
        }
        if self.topics.is_empty() {
            return Err(format!("bridge '{}': no topic", self.name));
        }
        if self.certfile.is_some() != self.keyfile.is_some() {
            return Err(format!(
                "bridge '{}': bridge_certfile and bridge_keyfile go together",
                self.name
            ));
        }
        if !self.is_tls()
            && (self.certfile.is_some() || self.insecure || self.alpn.is_some() || self.tls13_only)
        {
            return Err(format!(
                "bridge '{}': TLS settings without 'bridge_cafile' or 'bridge_capath' (TLS towards the remote needs bridge_cafile or bridge_capath)",
                self.name
            ));
        }
        for t in &self.topics {
            for f in [t.local_filter(), t.remote_filter()] {
                if f.is_empty() {
                    return Err(format!("bridge '{}': empty topic", self.name));
                }
                topic::validate_topic_filter(&f, 65_535, 1024)
                    .map_err(|e| format!("bridge '{}': topic '{f}': {e}", self.name))?;
            }
        }
        Ok(())
    }
}

/// A bridge's figures, in [`crate::Stats::bridges`] and under
/// `$SYS/broker/connection/<name>/`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BridgeStats {
    /// The connection's name.
    pub name: String,
    /// Connected to the remote (CONNACK received).
    pub connected: bool,
    /// The remote address in use or last tried.
    pub address: Option<String>,
    /// Messages for the remote kept in the queue.
    pub queued: usize,
    /// Their bytes.
    pub queued_bytes: usize,
    /// Messages for the remote sent (or held for resending) and not yet
    /// acknowledged by it.
    pub inflight: usize,
    /// Messages for the remote dropped because the queue was full.
    pub dropped: u64,
    /// Messages forwarded to the remote (resends included).
    pub forwarded: u64,
    /// Messages received from the remote and published here.
    pub received: u64,
    /// Successful connections to the remote.
    pub connects: u64,
    /// Why the last connection ended or failed.
    pub last_error: Option<String>,
    /// Since when the bridge has had no connection to the remote (its
    /// start, or the end of its last connection); `None` while connected,
    /// and while a lazy bridge is disconnected by choice (idle, or below
    /// its threshold).
    pub down_since: Option<std::time::Instant>,
}
