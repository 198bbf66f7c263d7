//! Frames the simulated clients send, and the setup phases every scenario
//! shares: connecting many clients and subscribing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use boxmq::codec::{
    self, Connect, Disconnect, Packet, PacketId, Properties, ProtocolVersion, PubResp, PubRespKind,
    Publish, QoS, SubOptions, Will,
};

use crate::net::{Handler, Net};

/// Every simulated client speaks MQTT 3.1.1.
pub const V311: ProtocolVersion = ProtocolVersion::V311;

/// Base of the simulated buttons' MAC addresses (client ids are
/// `shellybutton1-<12 hex digits>`).
const MAC_BASE: u64 = 0xA4CF_1200_0000;

/// Client id of button `i`.
pub fn button_id(i: usize) -> String {
    format!("shellybutton1-{:012X}", MAC_BASE + i as u64)
}

/// Button index of a `shellies/shellybutton1-<hex>/...` topic.
pub fn button_of_topic(topic: &str) -> Option<usize> {
    let rest = topic.strip_prefix("shellies/shellybutton1-")?;
    let hex = rest.get(..12)?;
    let mac = u64::from_str_radix(hex, 16).ok()?;
    mac.checked_sub(MAC_BASE).map(|i| i as usize)
}

/// The value of `"event_cnt":N` in a Shelly input event payload.
pub fn event_cnt(payload: &[u8]) -> Option<u32> {
    const KEY: &[u8] = b"\"event_cnt\":";
    let at = payload.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = &payload[at..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

/// A Shelly Button1 input event payload.
pub fn shelly_event(cnt: u32) -> String {
    format!("{{\"event\":\"S\",\"event_cnt\":{cnt}}}")
}

/// Appends a 3.1.1 CONNECT. A button's will is `false` on
/// `shellies/<id>/online`, retained, as the device sets it.
pub fn connect(out: &mut Vec<u8>, client_id: &str, keep_alive: u16, shelly_will: bool) {
    connect_session(out, client_id, keep_alive, shelly_will, true);
}

/// CONNECT with the clean session flag given (false: a persistent session).
pub fn connect_session(
    out: &mut Vec<u8>,
    client_id: &str,
    keep_alive: u16,
    shelly_will: bool,
    clean: bool,
) {
    let will_topic = format!("shellies/{client_id}/online");
    let c = Connect {
        protocol: V311,
        clean_start: clean,
        keep_alive,
        properties: Properties::EMPTY,
        client_id,
        will: shelly_will.then(|| Will {
            topic: &will_topic,
            payload: b"false",
            qos: QoS::AtMostOnce,
            retain: true,
            properties: Properties::EMPTY,
        }),
        username: None,
        password: None,
    };
    c.encode(V311, out);
}

/// Appends a PUBLISH; `pid` is used for QoS 1.
pub fn publish(out: &mut Vec<u8>, topic: &str, payload: &[u8], qos: QoS, pid: u16) {
    let p = Publish {
        dup: false,
        qos,
        retain: false,
        topic,
        packet_id: if qos == QoS::AtMostOnce {
            None
        } else {
            PacketId::new(pid)
        },
        properties: Properties::EMPTY,
        payload,
    };
    p.encode(V311, out);
}

/// Appends a PUBACK for `pid`.
pub fn puback(out: &mut Vec<u8>, pid: PacketId) {
    Packet::PubResp(PubResp {
        kind: PubRespKind::PubAck,
        packet_id: pid,
        reason: 0,
        properties: Properties::EMPTY,
    })
    .encode(V311, out);
}

/// Appends a DISCONNECT.
pub fn disconnect(out: &mut Vec<u8>) {
    Packet::Disconnect(Disconnect {
        reason: 0,
        properties: Properties::EMPTY,
    })
    .encode(V311, out);
}

/// Appends a SUBSCRIBE of one filter.
pub fn subscribe(out: &mut Vec<u8>, pid: u16, filter: &str, qos: QoS) {
    let pid = PacketId::new(pid).unwrap_or(PacketId(std::num::NonZeroU16::MIN));
    codec::encode_subscribe(
        pid,
        Properties::EMPTY,
        &[(filter, SubOptions::qos_only(qos))],
        V311,
        out,
    );
}

/// Records CONNACKs and SUBACKs while clients are being set up.
#[derive(Default)]
struct Setup {
    connack: HashMap<usize, u8>,
    suback: HashMap<usize, u8>,
    closed: usize,
}

impl Handler for Setup {
    fn on_packet(&mut self, _net: &mut Net, id: usize, p: &Packet<'_>, _now: Instant) {
        match p {
            Packet::Connack(c) => {
                self.connack.insert(id, c.code);
            }
            Packet::Suback(s) => {
                self.suback
                    .insert(id, s.codes.first().copied().unwrap_or(0x80));
            }
            _ => {}
        }
    }
    fn on_closed(&mut self, _net: &mut Net, _id: usize) {
        self.closed += 1;
    }
}

/// Most connects in flight (sent, not yet CONNACKed), so that the broker's
/// listen backlog never overflows into SYN retransmissions.
const CONNECTS_IN_FLIGHT: usize = 128;

/// Connects `ids.len()` clients (one per client id), paced, and waits for
/// every CONNACK. Returns their connection ids in order. Fails if any is
/// refused or the deadline passes.
pub fn connect_all(
    net: &mut Net,
    addr: SocketAddr,
    ids: &[String],
    keep_alive: u16,
    shelly_will: bool,
    timeout: Duration,
) -> Result<Vec<usize>, String> {
    connect_all_session(net, addr, ids, keep_alive, shelly_will, true, timeout)
}

/// [`connect_all`] with the clean session flag given.
pub fn connect_all_session(
    net: &mut Net,
    addr: SocketAddr,
    ids: &[String],
    keep_alive: u16,
    shelly_will: bool,
    clean: bool,
    timeout: Duration,
) -> Result<Vec<usize>, String> {
    let deadline = Instant::now() + timeout;
    let mut setup = Setup::default();
    let mut conns = Vec::with_capacity(ids.len());
    while setup.connack.len() < ids.len() {
        if Instant::now() > deadline {
            return Err(format!(
                "connect_timeout connected={} of={}",
                setup.connack.len(),
                ids.len()
            ));
        }
        if setup.closed > 0 {
            return Err(format!(
                "connect_closed connected={} closed={}",
                setup.connack.len(),
                setup.closed
            ));
        }
        while conns.len() < ids.len() && conns.len() - setup.connack.len() < CONNECTS_IN_FLIGHT {
            let id = net
                .open(addr)
                .map_err(|e| format!("connect_failed at={} err={:?}", conns.len(), e.kind()))?;
            net.send(id, |out| {
                connect_session(out, &ids[conns.len()], keep_alive, shelly_will, clean)
            });
            conns.push(id);
        }
        net.turn(Duration::from_millis(5), &mut setup)
            .map_err(|e| format!("poll_failed {e}"))?;
    }
    if let Some((_, code)) = setup.connack.iter().find(|(_, c)| **c != 0) {
        return Err(format!("connack_refused code={code}"));
    }
    Ok(conns)
}

/// Connects one client and subscribes it to `filter`; waits for the SUBACK.
pub fn subscriber(
    net: &mut Net,
    addr: SocketAddr,
    client_id: &str,
    filter: &str,
    qos: QoS,
    timeout: Duration,
) -> Result<usize, String> {
    let ids = [client_id.to_owned()];
    let id = connect_all(net, addr, &ids, 60, false, timeout)?[0];
    subscribe_all(net, &[id], filter, qos, timeout)?;
    Ok(id)
}

/// Subscribes every connection in `conns` to `filter` and waits for all SUBACKs.
pub fn subscribe_all(
    net: &mut Net,
    conns: &[usize],
    filter: &str,
    qos: QoS,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut setup = Setup::default();
    for &id in conns {
        net.send(id, |out| subscribe(out, 1, filter, qos));
    }
    while setup.suback.len() < conns.len() {
        if Instant::now() > deadline {
            return Err(format!("suback_timeout got={}", setup.suback.len()));
        }
        if setup.closed > 0 {
            return Err("closed_before_suback".into());
        }
        net.turn(Duration::from_millis(5), &mut setup)
            .map_err(|e| format!("poll_failed {e}"))?;
    }
    if let Some((_, code)) = setup.suback.iter().find(|(_, c)| **c > 2) {
        return Err(format!("subscribe_refused code={code}"));
    }
    Ok(())
}
