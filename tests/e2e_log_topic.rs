//! `log_dest topic` end to end: the `boxmq` binary's log lines on
//! `$SYS/broker/log/E`, `W` and `N` (Mosquitto's topics), debug lines
//! never, and no line that feeds itself.

mod common;

use std::time::{Duration, Instant};

use common::{RawClient, ReadEnd, TestBroker, free_port};

/// PUBLISHes (topic, payload) received within `dur`.
fn collect(c: &mut RawClient, dur: Duration) -> Vec<(String, String)> {
    let deadline = Instant::now() + dur;
    let mut got = Vec::new();
    while Instant::now() < deadline {
        match c.try_recv(Duration::from_millis(100)) {
            Ok(p) if p.ptype() == 3 => {
                let p = p.publish();
                c.ack(&p);
                got.push((p.topic.clone(), p.payload_str()));
            }
            Ok(_) | Err(ReadEnd::Timeout) => {}
            Err(ReadEnd::Closed(e)) => panic!("log subscriber closed: {e}"),
        }
    }
    got
}

#[test]
fn log_lines_are_published_on_sys_broker_log() {
    if common::skip_unless_boxmq("log topic", "reads the boxmq binary's own log lines") {
        return;
    }
    // A bridge to a port where nothing listens: its failures are
    // warnings.
    let dead = free_port();
    let boxmq = TestBroker::start_with_config(&[
        "log_dest stderr",
        "log_dest topic",
        "connection dead",
        &format!("address 127.0.0.1:{dead}"),
        "topic shellies/# out 0",
        "restart_timeout 1",
    ]);
    let mut log = RawClient::connect(boxmq.port, "log-reader");
    log.subscribe_ok(&[("$SYS/broker/log/#", 2)]);
    let shelly = RawClient::connect(boxmq.port, "shelly-logged");
    shelly.disconnect();
    let got = collect(&mut log, Duration::from_millis(2500));
    let on = |topic: &str, needle: &str| got.iter().any(|(t, p)| t == topic && p.contains(needle));
    // boxmq's information lines are Mosquitto's notices.
    assert!(
        on("$SYS/broker/log/N", "'shelly-logged' connected"),
        "{got:?}"
    );
    assert!(on("$SYS/broker/log/W", "bridge dead"), "{got:?}");
    // Each line starts with the time, as in the log file.
    assert!(
        got.iter()
            .all(|(_, p)| p.starts_with("20") && p.contains("Z: ")),
        "{got:?}"
    );
    // Debug lines stay off the topics (the test broker logs at debug).
    assert!(boxmq.log().contains("new connection from"));
    assert!(
        !got.iter().any(|(_, p)| p.contains("new connection from")),
        "{got:?}"
    );
    assert!(
        got.iter()
            .all(|(t, _)| t.len() == "$SYS/broker/log/N".len()),
        "{got:?}"
    );
    // Nothing feeds itself: once the bridge's retries are the only news,
    // about one warning a second arrives, not a stream.
    let quiet = collect(&mut log, Duration::from_secs(2));
    assert!(quiet.len() < 10, "{quiet:?}");
}
