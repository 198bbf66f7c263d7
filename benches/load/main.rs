//! boxmq's load generator: simulated MQTT clients against any broker.
//!
//! ```text
//! cargo bench --bench load -- <scenario> --addr 127.0.0.1:PORT [options]
//! ```
//!
//! Each scenario is bounded in time and in count, prints one
//! `RESULT scenario=... broker=... key=value ...` line and a table, and
//! exits 0 (1 with an `error=` field if it could not complete). Without a
//! scenario (as under `cargo test`) it prints usage and exits 0.

mod mqtt;
mod net;
mod scenarios;
mod stats;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use boxmq::codec::QoS;

const USAGE: &str = "\
usage: load <scenario> --addr HOST:PORT [options]

scenarios:
  ping        connect once and wait for CONNACK (readiness probe)
  press       Shelly Button1 press cycles: connect, CONNACK, PUBLISH
              input_event, DISCONNECT, close; one dashboard subscriber
  fanin       --clients connected buttons publish at --rate msg/s in total
              for --duration; one dashboard on shellies/+/input_event/0
  throughput  --publishers pipeline 64-byte messages to bench/<i>; one
              subscriber on bench/#; delivered msg/s over --duration
  fanout      1 publisher, --subscribers on one topic; deliveries/s
  idle        --clients idle connections; broker RSS per connection
              (needs --pid)

options (defaults in brackets):
  --broker NAME       label in the RESULT line [broker]
  --qos 0|1           QoS of publishes and subscriptions [0]
  --duration SECS     measured window [3]
  --warmup SECS       unmeasured lead-in of throughput/fanout [0.5]
  --clients N         fanin/idle connections [1000]
  --rate N            fanin total messages per second [2000]
  --presses N         press: most press cycles [5000]
  --concurrency N     press: cycles in flight [50]
  --press-rate N      press: cycles started per second, 0 for as many as
                      --concurrency allows [0]; brokers compared at the
                      same rate differ in broker_cpu_pct only
  --publishers N      throughput publishers [1]
  --subscribers N     fanout subscribers [10]
  --window N          QoS 1 unacknowledged PUBLISHes per publisher [64]
  --payload BYTES     throughput/fanout payload size [64]
  --pid PID           broker process, for idle's RSS
  --persistent 0|1    throughput/fanout subscribers keep a session
                      (clean session 0) [0]
  --stuck N           throughput: N more subscribers on bench/# that
                      subscribe and then never read their socket [0]
";

/// Parsed command line.
#[derive(Clone, Debug)]
pub struct Opts {
    pub scenario: String,
    pub addr: SocketAddr,
    pub broker: String,
    pub qos: QoS,
    pub duration: Duration,
    pub warmup: Duration,
    pub clients: usize,
    pub rate: u64,
    pub presses: usize,
    pub concurrency: usize,
    pub press_rate: u64,
    pub publishers: usize,
    pub subscribers: usize,
    pub window: usize,
    pub payload: usize,
    pub pid: Option<u32>,
    pub persistent: bool,
    pub stuck: usize,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        scenario: args.first().cloned().ok_or("no scenario")?,
        addr: "127.0.0.1:1883".parse().map_err(|_| "addr")?,
        broker: "broker".into(),
        qos: QoS::AtMostOnce,
        duration: Duration::from_secs(3),
        warmup: Duration::from_millis(500),
        clients: 1000,
        rate: 2000,
        presses: 5000,
        concurrency: 50,
        press_rate: 0,
        publishers: 1,
        subscribers: 10,
        window: 64,
        payload: 64,
        pid: None,
        persistent: false,
        stuck: 0,
    };
    let mut it = args[1..].iter();
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| -> Result<u64, String> {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: '{v}' is not a whole number"))
        };
        let secs = |v: &str| -> Result<Duration, String> {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 600.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("{flag}: '{v}' is not a number of seconds up to 600"))
        };
        match flag.as_str() {
            "--addr" => {
                o.addr = v
                    .parse()
                    .map_err(|_| format!("--addr: '{v}' is not HOST:PORT"))?;
                if !o.addr.ip().is_loopback() {
                    return Err("--addr must be a loopback address".into());
                }
            }
            "--broker" => o.broker = v.clone(),
            "--qos" => {
                o.qos = match v.as_str() {
                    "0" => QoS::AtMostOnce,
                    "1" => QoS::AtLeastOnce,
                    _ => return Err("--qos: 0 or 1".into()),
                }
            }
            "--duration" => o.duration = secs(v)?,
            "--warmup" => o.warmup = secs(v)?,
            "--clients" => o.clients = num(v)?.clamp(1, 60_000) as usize,
            "--rate" => o.rate = num(v)?.clamp(1, 1_000_000),
            "--presses" => o.presses = num(v)?.clamp(1, 1_000_000) as usize,
            "--concurrency" => o.concurrency = num(v)?.clamp(1, 10_000) as usize,
            "--press-rate" => o.press_rate = num(v)?.min(1_000_000),
            "--publishers" => o.publishers = num(v)?.clamp(1, 1000) as usize,
            "--subscribers" => o.subscribers = num(v)?.clamp(1, 10_000) as usize,
            "--window" => o.window = num(v)?.clamp(1, 30_000) as usize,
            "--payload" => o.payload = num(v)?.clamp(1, 256 * 1024) as usize,
            "--pid" => o.pid = Some(num(v)? as u32),
            "--persistent" => o.persistent = num(v)? != 0,
            "--stuck" => o.stuck = num(v)?.clamp(0, 100) as usize,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    // cargo passes `--bench` when benchmarking; nothing else of cargo's.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.is_empty() {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let opts = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("load: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match opts.scenario.as_str() {
        "ping" => scenarios::ping(&opts),
        "press" => scenarios::press(&opts),
        "fanin" => scenarios::fanin(&opts),
        "throughput" => scenarios::throughput(&opts),
        "fanout" => scenarios::fanout(&opts),
        "idle" => scenarios::idle(&opts),
        other => {
            eprintln!("load: unknown scenario '{other}'\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(report) => {
            report.print();
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!(
                "RESULT scenario={} broker={} error={}",
                opts.scenario,
                opts.broker,
                e.replace(' ', "_")
            );
            ExitCode::FAILURE
        }
    }
}
