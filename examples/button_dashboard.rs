//! A dashboard with the broker inside: Shelly buttons connect over TCP and
//! the program prints every press, with no separate MQTT server.
//!
//! ```text
//! cargo run --example button_dashboard -- 1883
//! mosquitto_pub -p 1883 -t shellies/shellybutton1-A4CF12F45A10/input_event/0 \
//!     -m '{"event":"S","event_cnt":3}'
//! ```
//!
//! prints `shellybutton1-A4CF12F45A10: short press (S), count 3`. Ctrl-C
//! stops it cleanly.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use boxmq::{Broker, QoS, RecvTimeoutError};

/// What the Shelly buttons publish on.
const BUTTONS: &str = "shellies/+/input_event/0";

fn main() -> ExitCode {
    let port = match std::env::args().nth(1) {
        None => 1883,
        Some(arg) => match arg.parse::<u16>() {
            Ok(p) => p,
            Err(_) => {
                eprintln!("button_dashboard: {arg:?} is not a port number");
                return ExitCode::from(2);
            }
        },
    };
    match run(port) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("button_dashboard: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(port: u16) -> Result<(), Box<dyn std::error::Error>> {
    // Ctrl-C (and SIGTERM) only set a flag; the loop below looks at it.
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&stop))?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))?;

    let mut broker = Broker::builder().port(port).build();
    println!("state: {}", broker.state());
    let handle = match broker.start() {
        Ok(h) => h,
        Err(e) => {
            println!("state: {}", broker.state());
            return Err(e.into());
        }
    };
    println!("state: {}", handle.state());
    for addr in handle.local_addrs() {
        println!("listening on {addr}");
    }

    let app = handle.client("button-dashboard")?;
    let presses = app.subscribe(BUTTONS, QoS::AtLeastOnce)?;
    println!("waiting for presses on {BUTTONS}");

    while !stop.load(Ordering::Relaxed) {
        match presses.recv_timeout(Duration::from_millis(200)) {
            Ok(m) => match describe_press(&m.topic, &m.payload) {
                Some(line) => println!("{line}"),
                None => println!(
                    "{}: unreadable event {:?}",
                    m.topic,
                    String::from_utf8_lossy(&m.payload)
                ),
            },
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Closed) => break,
        }
    }
    handle.stop()?;
    println!("state: {}", handle.state());
    Ok(())
}

/// The line printed for one button event: `<device>: <kind> (<code>), count <n>`,
/// from the topic `shellies/<device>/input_event/0` and a payload such as
/// `{"event":"S","event_cnt":3}`. `None` when either is not as expected.
pub fn describe_press(topic: &str, payload: &[u8]) -> Option<String> {
    let mut levels = topic.split('/');
    let device = match (levels.next(), levels.next()) {
        (Some("shellies"), Some(d)) if !d.is_empty() => d,
        _ => return None,
    };
    let json = std::str::from_utf8(payload).ok()?;
    let event = json_string(json, "event")?;
    let count = json_number(json, "event_cnt")?;
    let kind = match event {
        "S" => "short press",
        "L" => "long press",
        "SS" => "double press",
        "SSS" => "triple press",
        "SL" => "short then long press",
        "LS" => "long then short press",
        _ => "press",
    };
    Some(format!("{device}: {kind} ({event}), count {count}"))
}

/// The text after `"key"` and its colon, in a flat JSON object. Good
/// enough for the buttons' one-line payloads; not a JSON parser.
fn json_value<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let quoted = format!("\"{key}\"");
    let at = json.find(&quoted)?;
    let rest = json.get(at + quoted.len()..)?.trim_start();
    Some(rest.strip_prefix(':')?.trim_start())
}

/// A string value without escapes.
fn json_string<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let rest = json_value(json, key)?.strip_prefix('"')?;
    let end = rest.find('"')?;
    let s = rest.get(..end)?;
    (!s.contains('\\')).then_some(s)
}

/// A non-negative integer value.
fn json_number(json: &str, key: &str) -> Option<u64> {
    let rest = json_value(json, key)?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest.get(..end)?.parse().ok()
}
