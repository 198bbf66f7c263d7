//! What a connection gets from the listener it came in on: Mosquitto's
//! per-listener lines `max_qos`, `mount_point` and
//! `use_username_as_clientid` (mosquitto.conf(5), "Listeners"). The event
//! loop tells the core a connection's listener ([`Core::set_listener`]);
//! a connection without one (in-process clients, bridges) gets the
//! defaults.

use std::borrow::Cow;

use super::conn::Conn;
use super::{Close, ConnId, Core};
use crate::codec::{Publish, QoS};
use crate::topic;

/// The settings of one listener that the core applies to its clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerOptions {
    /// `max_qos`: the highest QoS its clients may publish and subscribe
    /// with; 5.0 clients learn it from CONNACK's Maximum QoS
    /// [MQTT-3.2.2-9]. A PUBLISH above it closes the connection (5.0:
    /// DISCONNECT 0x9B), a will above it refuses the CONNECT, and a
    /// subscription gets at most it.
    pub max_qos: QoS,
    /// `use_username_as_clientid`: the client id is the user name; a client
    /// without one is refused (not authorised).
    pub use_username_as_clientid: bool,
    /// `mount_point`: put before every topic and filter its clients send,
    /// taken off the topics they receive, so they see only the tree
    /// below it. `$SYS` topics are left as they are.
    pub mount_point: Option<Box<str>>,
    /// Its own `allow_zero_length_clientid` (Mosquitto's
    /// `per_listener_settings true`); `None`: the core's
    /// (`CoreOptions::allow_zero_length_clientid`).
    pub allow_zero_length_clientid: Option<bool>,
    /// Its own `auto_id_prefix`, likewise; `None`: the core's.
    pub auto_id_prefix: Option<Box<str>>,
}

impl Default for ListenerOptions {
    /// Mosquitto's defaults: QoS 2, the client's own id, no mount point.
    fn default() -> ListenerOptions {
        ListenerOptions {
            max_qos: QoS::ExactlyOnce,
            use_username_as_clientid: false,
            mount_point: None,
            allow_zero_length_clientid: None,
            auto_id_prefix: None,
        }
    }
}

/// The options of connections that came in on no listener.
static NO_LISTENER: ListenerOptions = ListenerOptions {
    max_qos: QoS::ExactlyOnce,
    use_username_as_clientid: false,
    mount_point: None,
    allow_zero_length_clientid: None,
    auto_id_prefix: None,
};

impl Core {
    /// Connection `id`, just opened, came in on listener `index` (as in
    /// [`super::CoreOptions::listeners`]): its options apply to it.
    pub fn set_listener(&mut self, id: ConnId, index: usize) {
        let Ok(index) = u16::try_from(index) else {
            return;
        };
        // Only a listener with options of its own is noted: the others'
        // connections pay nothing for it.
        if self
            .listeners
            .get(usize::from(index))
            .is_none_or(|l| *l == NO_LISTENER)
        {
            return;
        }
        if let Some(c) = self.conn_mut(id) {
            c.set_listener(index);
        }
    }

    /// The options of connection `id`'s listener.
    pub(super) fn listener_of(&self, id: ConnId) -> &ListenerOptions {
        self.conn(id)
            .and_then(Conn::listener)
            .and_then(|i| self.listeners.get(usize::from(i)))
            .unwrap_or(&NO_LISTENER)
    }
}

/// 5.0 DISCONNECT reason: QoS not supported.
const RC_QOS_NOT_SUPPORTED: u8 = 0x9B;
/// 5.0 DISCONNECT reason: retain not supported.
const RC_RETAIN_NOT_SUPPORTED: u8 = 0x9A;

impl Core {
    /// A PUBLISH of connection `id` above its listener's `max_qos`, or
    /// retained with `retain_available false`, ends the connection
    /// (Mosquitto's rule; 5.0 DISCONNECT 0x9B [MQTT-3.2.2-11], 0x9A
    /// [MQTT-3.2.2-14]; 3.1.1 has no way to say it and just closes).
    pub(super) fn check_publish_caps(&self, id: ConnId, p: &Publish<'_>) -> Result<(), Close> {
        if p.qos > self.listener_of(id).max_qos {
            return Err(Close::new(RC_QOS_NOT_SUPPORTED, "QoS above max_qos"));
        }
        if p.retain && !self.retain_available {
            return Err(Close::new(
                RC_RETAIN_NOT_SUPPORTED,
                "retained message while retain_available is false",
            ));
        }
        Ok(())
    }
}

impl Core {
    /// The QoS a message published at `published` goes out at to a
    /// subscription granted `granted`: the lower of the two
    /// [MQTT-3.8.4-6], or `granted` with `upgrade_outgoing_qos`
    /// (Mosquitto's non-standard option).
    pub(super) fn outgoing_qos(&self, published: QoS, granted: QoS) -> QoS {
        outgoing_qos(self.upgrade_outgoing_qos, published, granted)
    }
}

impl Core {
    /// A topic name or filter of connection `id` as the broker holds it:
    /// behind its listener's `mount_point`. A shared subscription's filter
    /// is mounted after `$share/GROUP/`; `$SYS` ones are left as they are,
    /// so a client behind a mount point still reads the broker's figures
    /// (and cannot write there).
    pub(super) fn mounted<'t>(&self, id: ConnId, topic: &'t str) -> Cow<'t, str> {
        let Some(mount) = self.listener_of(id).mount_point.as_deref() else {
            return Cow::Borrowed(topic);
        };
        match topic::parse_shared(topic) {
            Ok(Some((_, inner))) if topic::is_sys_topic(inner) => Cow::Borrowed(topic),
            Ok(Some((group, inner))) => Cow::Owned(format!("$share/{group}/{mount}{inner}")),
            _ if topic::is_sys_topic(topic) => Cow::Borrowed(topic),
            _ => Cow::Owned(format!("{mount}{topic}")),
        }
    }
}

/// See [`Core::outgoing_qos`]; `upgrade`: `upgrade_outgoing_qos`.
pub(super) fn outgoing_qos(upgrade: bool, published: QoS, granted: QoS) -> QoS {
    if upgrade {
        granted
    } else {
        published.min(granted)
    }
}

/// The mount point of connection `conn`'s listener, if any; `listeners`
/// as in `Core::listeners`.
pub(super) fn mount_of<'l>(listeners: &'l [ListenerOptions], conn: &Conn) -> Option<&'l str> {
    let l = listeners.get(usize::from(conn.listener()?))?;
    l.mount_point.as_deref()
}

/// `topic` as a client behind `mount` sees it: without the mount point.
/// Topics that do not start with it (`$SYS`), or are nothing but it, go
/// as they are.
pub(super) fn unmounted<'t>(mount: Option<&str>, topic: &'t str) -> &'t str {
    match mount.and_then(|m| topic.strip_prefix(m)) {
        Some(rest) if !rest.is_empty() => rest,
        _ => topic,
    }
}
