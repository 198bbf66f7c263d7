//! What the bridge tests (`e2e_bridge.rs`, `e2e_tls_bridge.rs`) share:
//! the state topic, waiting for a retained value, and the Shelly round
//! trip through a bridge.

use std::thread;
use std::time::{Duration, Instant};

use super::RawClient;

/// The retained state topic of bridge `name`.
pub fn state(name: &str) -> String {
    format!("$SYS/broker/connection/{name}/state")
}

/// Waits (bounded) until the retained value of `topic` on `port` is
/// `want`.
pub fn wait_retained(port: u16, topic: &str, want: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut last = String::from("<nothing>");
    while Instant::now() < deadline {
        let mut c = RawClient::connect(port, &super::unique("probe"));
        c.subscribe_ok(&[(topic, 0)]);
        if let Ok(p) = c.try_recv(Duration::from_millis(500)) {
            if p.ptype() == 3 {
                let p = p.publish();
                if p.payload_str() == want {
                    return;
                }
                last = p.payload_str();
            }
        }
        drop(c);
        thread::sleep(Duration::from_millis(100));
    }
    panic!("'{topic}' on port {port} is not '{want}' after {limit:?} (last: {last})");
}

/// A Shelly press on the box (`box_port`) reaches a dashboard on the
/// remote (`remote_port`), and the remote's relay command reaches the
/// Shelly: a bridge with `topic shellies/# out 1` and
/// `topic shellies/+/relay/0/command in 1`, already up. Returns the
/// Shelly's client for further checks.
pub fn shelly_round_trip(box_port: u16, remote_port: u16) -> RawClient {
    let mut cloud = RawClient::connect(remote_port, "dashboard");
    cloud.subscribe_ok(&[("shellies/+/input_event/0", 1)]);
    let mut shelly = RawClient::connect(box_port, "shelly1-ABC");
    shelly.subscribe_ok(&[("shellies/shelly1-ABC/relay/0/command", 1)]);
    shelly.publish(
        "shellies/shelly1-ABC/input_event/0",
        br#"{"event":"S","event_cnt":1}"#,
        1,
        false,
    );
    let p = cloud.recv_publish();
    assert_eq!(p.topic, "shellies/shelly1-ABC/input_event/0");
    assert_eq!(p.payload_str(), r#"{"event":"S","event_cnt":1}"#);

    cloud.publish("shellies/shelly1-ABC/relay/0/command", b"on", 1, false);
    let p = shelly.recv_publish();
    assert_eq!(p.topic, "shellies/shelly1-ABC/relay/0/command");
    assert_eq!(p.payload_str(), "on");
    shelly
}
