//! The button dashboard example: its line format in-process, and the real
//! program as a process with `mosquitto_pub` as the button.

// The example's own source, so the tested format is the one it prints.
#[allow(dead_code)]
#[path = "../examples/button_dashboard.rs"]
mod button_dashboard;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use boxmq::{Broker, QoS};
use button_dashboard::describe_press;

const WAIT: Duration = Duration::from_secs(10);
const TOPIC: &str = "shellies/shellybutton1-A4CF12F45A10/input_event/0";

#[test]
fn press_lines() {
    let cases: [(&str, &str); 6] = [
        (r#"{"event":"S","event_cnt":3}"#, "short press (S), count 3"),
        (r#"{"event":"L","event_cnt":4}"#, "long press (L), count 4"),
        (
            r#"{"event":"SS","event_cnt":5}"#,
            "double press (SS), count 5",
        ),
        (
            r#"{"event":"SSS","event_cnt":6}"#,
            "triple press (SSS), count 6",
        ),
        (
            r#"{ "event_cnt" : 7 , "event" : "S" }"#,
            "short press (S), count 7",
        ),
        (r#"{"event":"X","event_cnt":0}"#, "press (X), count 0"),
    ];
    for (payload, rest) in cases {
        assert_eq!(
            describe_press(TOPIC, payload.as_bytes()).as_deref(),
            Some(format!("shellybutton1-A4CF12F45A10: {rest}").as_str()),
            "{payload}"
        );
    }
    for (topic, payload) in [
        (TOPIC, "not json"),
        (TOPIC, r#"{"event":"S"}"#),
        (TOPIC, r#"{"event_cnt":3}"#),
        (TOPIC, r#"{"event":S,"event_cnt":3}"#),
        ("shellies//input_event/0", r#"{"event":"S","event_cnt":3}"#),
        ("other/b/input_event/0", r#"{"event":"S","event_cnt":3}"#),
    ] {
        assert_eq!(
            describe_press(topic, payload.as_bytes()),
            None,
            "{topic} {payload}"
        );
    }
    assert_eq!(describe_press(TOPIC, &[0xff, 0xfe]), None);
}

#[test]
fn press_lines_through_an_embedded_broker() {
    let mut broker = Broker::builder().port(0).build();
    let handle = broker.start().expect("start");
    let app = handle.client("dashboard").expect("client");
    let presses = app
        .subscribe("shellies/+/input_event/0", QoS::AtLeastOnce)
        .expect("subscribe");
    let button = handle.client("shellybutton1-A4CF12F45A10").expect("client");
    button
        .publish(
            TOPIC,
            r#"{"event":"SS","event_cnt":9}"#,
            QoS::AtMostOnce,
            false,
        )
        .expect("publish");
    let m = presses.recv_timeout(WAIT).expect("press");
    assert_eq!(
        describe_press(&m.topic, &m.payload).as_deref(),
        Some("shellybutton1-A4CF12F45A10: double press (SS), count 9")
    );
}

/// The example's binary, which `cargo test` builds next to the test's.
fn example_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?; // target/<profile>/deps -> target/<profile>
    let path = dir
        .join("examples")
        .join(format!("button_dashboard{}", std::env::consts::EXE_SUFFIX));
    path.exists().then_some(path)
}

/// Kills the child if the test fails half-way.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_example_program_prints_presses_and_stops_on_ctrl_c() {
    let Some(binary) = example_binary() else {
        eprintln!("example binary not built; skipping (run `cargo test`, which builds examples)");
        return;
    };
    if Command::new("mosquitto_pub")
        .arg("--help")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("mosquitto_pub not installed; skipping");
        return;
    }
    let mut child = Reap(
        Command::new(binary)
            .arg("0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the example"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = || lines.recv_timeout(WAIT).expect("a line from the example");

    assert_eq!(next(), "state: Init");
    assert_eq!(next(), "state: Running");
    let listening = next();
    let port = listening
        .strip_prefix("listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected line {listening:?}"))
        .to_owned();
    assert_eq!(next(), "waiting for presses on shellies/+/input_event/0");

    let status = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port, "-t", TOPIC])
        .args(["-m", r#"{"event":"S","event_cnt":3}"#])
        .status()
        .expect("mosquitto_pub");
    assert!(status.success());
    assert_eq!(
        next(),
        "shellybutton1-A4CF12F45A10: short press (S), count 3"
    );

    // Ctrl-C.
    let pid = child.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert_eq!(next(), "state: Stopped");
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "the example did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}
