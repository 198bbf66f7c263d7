//! paho-mqtt 2.x (Python, MQTT 3.1.1, callback API v2) against the broker.
//! The scripts live in tests/paho/ and state what they check.

mod common;

use common::*;

/// 100 messages at each of QoS 0, 1 and 2, all delivered in order at that
/// QoS ([MQTT-4.6.0-6], [MQTT-4.3.2-2], [MQTT-4.3.3-2]).
#[test]
fn paho_roundtrip_100_messages_per_qos_in_order() {
    let b = TestBroker::start();
    run_paho("roundtrip", b.port, &[]);
}

/// [MQTT-3.8.4-6] delivered QoS is min(published, granted), seen by paho.
#[test]
fn paho_qos_downgrade_matrix() {
    let b = TestBroker::start();
    run_paho("qos_matrix", b.port, &[]);
}

/// Retained: replaced, RETAIN=1 on subscribe, RETAIN=0 live, deleted by an
/// empty payload ([MQTT-3.3.1-5], -6, -8, -9, -10).
#[test]
fn paho_retained() {
    let b = TestBroker::start();
    run_paho("retained", b.port, &[]);
}

/// Will published when the socket is shut down without DISCONNECT
/// ([MQTT-3.1.2-8]), not after a clean disconnect ([MQTT-3.1.2-10]).
#[test]
fn paho_will_on_unexpected_disconnect() {
    let b = TestBroker::start();
    run_paho("will", b.port, &[]);
}

/// Persistent session: queued QoS 1 messages on reconnect, session present
/// flags ([MQTT-3.1.2-5], [MQTT-3.2.2-1], [MQTT-3.2.2-2]).
#[test]
fn paho_persistent_session() {
    let b = TestBroker::start();
    run_paho("session", b.port, &[]);
}
