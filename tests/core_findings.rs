//! Core bugs found by fuzzing and the abuse tests, each kept as a
//! regression test with the exact input that found it. All three are fixed.

use std::time::{Duration, Instant};

use boxmq::codec::{self, Packet, ProtocolVersion, QoS};
use boxmq::core::{ConnId, Core};
use boxmq::{Config, Limits};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

fn connect(v: ProtocolVersion, id: &str, will: bool) -> Vec<u8> {
    let mut out = Vec::new();
    Packet::Connect(codec::Connect {
        protocol: v,
        clean_start: true,
        keep_alive: 0,
        properties: codec::Properties::EMPTY,
        client_id: id,
        will: will.then_some(codec::Will {
            topic: "will/t",
            payload: b"gone",
            qos: QoS::AtMostOnce,
            retain: false,
            properties: codec::Properties::EMPTY,
        }),
        username: None,
        password: None,
    })
    .encode(v, &mut out);
    out
}

fn subscribe(v: ProtocolVersion, filter: &str) -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode_subscribe(
        codec::PacketId::new(1).expect("non-zero"),
        codec::Properties::EMPTY,
        &[(filter, codec::SubOptions::qos_only(QoS::AtMostOnce))],
        v,
        &mut out,
    );
    out
}

/// Feeds complete frames and takes all output.
fn feed(core: &mut Core, id: ConnId, bytes: &[u8], now: Instant) -> Vec<u8> {
    let used = core.handle_data(id, bytes, now);
    assert_eq!(used, bytes.len());
    take(core, id, now)
}

fn take(core: &mut Core, id: ConnId, now: Instant) -> Vec<u8> {
    let out = core.pending_output(id).to_vec();
    core.handle_written(id, out.len(), now);
    out
}

/// Finding 1. A 5.0 client subscribed at QoS 0 gets QoS 0 PUBLISH frames in
/// the 3.1.1 form (no property length), which it cannot decode: `route`
/// encodes the frame once with `ProtocolVersion::V311` for every subscriber.
///
/// Bytes: 5.0 CONNECT "sub", SUBSCRIBE "t" QoS 0; a 3.1.1 client publishes
/// `30 04 00 01 74 78` (QoS 0, topic "t", payload "x"). Expected for the
/// 5.0 subscriber: `30 05 00 01 74 00 78`; actual: `30 04 00 01 74 78`,
/// which a 5.0 decoder reads as property length 0x78: malformed.
#[test]
fn v5_subscriber_gets_v5_qos0_publish() {
    let now = Instant::now();
    let mut core = Core::new(Config::default().core_options());
    let (sub, publ) = (ConnId(0), ConnId(1));
    core.handle_open(sub, "sub", now);
    core.handle_open(publ, "pub", now);
    feed(&mut core, sub, &connect(V5, "sub", false), now);
    feed(&mut core, sub, &subscribe(V5, "t"), now);
    feed(&mut core, publ, &connect(V311, "pub", false), now);
    feed(&mut core, publ, &[0x30, 0x04, 0x00, 0x01, b't', b'x'], now);
    let got = take(&mut core, sub, now);
    assert_eq!(got, [0x30, 0x05, 0x00, 0x01, b't', 0x00, b'x']);
}

/// Finding 2. `max_output_buffer` does not bound the answers the core
/// writes to a client's own packets (PINGRESP, PUBACK, PUBREC, PUBREL,
/// PUBCOMP, SUBACK, UNSUBACK): a client that keeps sending and never reads
/// makes the broker buffer every answer. 1 MiB of PINGREQ (`c0 00` x
/// 524,288) with no write leaves 1 MiB of PINGRESP pending; the documented
/// bound is max_output_buffer (256 KiB) + one packet. Over TCP: the
/// broker's RSS grows by what the client sends (see tests/abuse.rs,
/// `pingreq_flood_without_reading`).
#[test]
fn answers_respect_max_output_buffer() {
    let now = Instant::now();
    let limits = Limits::default();
    let mut core = Core::new(Config::default().core_options());
    let id = ConnId(0);
    core.handle_open(id, "flood", now);
    feed(&mut core, id, &connect(V311, "flood", false), now);
    let pings: Vec<u8> = [0xC0u8, 0x00].repeat(512 * 1024);
    // The core stops taking packets from a client that does not read its
    // answers (`Core::wants_input`), leaving the rest with the caller.
    let used = core.handle_data(id, &pings, now);
    assert!(used < pings.len(), "the core paused the client");
    assert!(!core.wants_input(id));
    let pending = core.pending_output(id).len();
    // One answer (a 2-byte PINGRESP) crosses the bound: max_packet_size
    // (MQTT's own by default since issue 28) is no bound for answers.
    let bound = limits.max_output_buffer + 2;
    assert!(pending <= bound, "{pending} bytes pending, bound {bound}");
}

/// Finding 3. A connected client that sends a second CONNECT with an
/// unsupported protocol level gets CONNACK 0x01 (and a 5.0 client gets it
/// as `20 03 00 01 00`, reason 0x01 being invalid in 5.0), and its will is
/// dropped. A second CONNECT is a protocol violation [MQTT-3.1.0-2]: close
/// without CONNACK, publish the will. Cause: `decode_error` answers
/// `UnsupportedProtocolVersion` with a CONNACK whatever the phase.
///
/// Bytes: CONNECT "a" with will on "will/t", then
/// `10 0d 00 04 4d 51 54 54 01 00 00 00 00 01 61` (CONNECT, level 1).
/// Expected: no output, will published to a subscriber of "will/t".
#[test]
fn second_connect_with_bad_level_is_a_protocol_violation() {
    let now = Instant::now();
    let mut core = Core::new(Config::default().core_options());
    let (watcher, client) = (ConnId(0), ConnId(1));
    core.handle_open(watcher, "w", now);
    feed(&mut core, watcher, &connect(V311, "w", false), now);
    feed(&mut core, watcher, &subscribe(V311, "will/t"), now);
    core.handle_open(client, "c", now);
    feed(&mut core, client, &connect(V311, "a", true), now);
    let bad = [
        0x10, 0x0d, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, b'a',
    ];
    let out = feed(&mut core, client, &bad, now);
    assert!(core.is_closing(client));
    assert_eq!(out, [], "no CONNACK after the first");
    let will = take(&mut core, watcher, now + Duration::from_millis(1));
    assert!(!will.is_empty(), "the will was not published");
}
