//! Latency samples and the output format.

use std::fmt::Write as _;
use std::time::Duration;

/// Latency samples in microseconds, bounded in number.
#[derive(Default)]
pub struct Latencies {
    us: Vec<u32>,
    /// Samples not kept because the bound was reached.
    pub dropped: u64,
}

/// Most samples kept by one [`Latencies`] (4 MiB of memory).
const MAX_SAMPLES: usize = 1 << 20;

impl Latencies {
    /// Adds one sample.
    pub fn push(&mut self, d: Duration) {
        if self.us.len() < MAX_SAMPLES {
            self.us.push(d.as_micros().min(u128::from(u32::MAX)) as u32);
        } else {
            self.dropped += 1;
        }
    }

    /// p50, p99 and max in microseconds (zeros when empty).
    pub fn summary(&mut self) -> (u32, u32, u32) {
        if self.us.is_empty() {
            return (0, 0, 0);
        }
        self.us.sort_unstable();
        let at = |q: f64| {
            let i = ((self.us.len() as f64 - 1.0) * q).round() as usize;
            self.us[i.min(self.us.len() - 1)]
        };
        (at(0.50), at(0.99), *self.us.last().unwrap_or(&0))
    }
}

/// One scenario's outcome: ordered key/value pairs, printed as one
/// machine-readable `RESULT` line and a human table.
pub struct Report {
    fields: Vec<(String, String)>,
}

impl Report {
    /// A report for `scenario` run against `broker`.
    pub fn new(scenario: &str, broker: &str) -> Report {
        Report {
            fields: vec![
                ("scenario".into(), scenario.into()),
                ("broker".into(), broker.into()),
            ],
        }
    }

    /// Adds a field.
    pub fn add(&mut self, key: &str, value: impl ToString) -> &mut Report {
        self.fields.push((key.into(), value.to_string()));
        self
    }

    /// Adds p50/p99/max latency fields (milliseconds, three decimals).
    pub fn latency(&mut self, prefix: &str, lat: &mut Latencies) -> &mut Report {
        let (p50, p99, max) = lat.summary();
        let ms = |us: u32| format!("{:.3}", f64::from(us) / 1000.0);
        self.add(&format!("{prefix}p50_ms"), ms(p50));
        self.add(&format!("{prefix}p99_ms"), ms(p99));
        self.add(&format!("{prefix}max_ms"), ms(max));
        self
    }

    /// Prints the `RESULT` line, then the table.
    pub fn print(&self) {
        let mut line = String::from("RESULT");
        for (k, v) in &self.fields {
            let _ = write!(line, " {k}={v}");
        }
        println!("{line}");
        let width = self.fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in &self.fields {
            println!("  {k:<width$}  {v}");
        }
    }
}

/// User plus system CPU time of a process (this one for `None`), in clock
/// ticks, from `/proc/<pid>/stat`.
fn cpu_ticks(pid: Option<u32>) -> Option<u64> {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_owned(),
        |p| format!("/proc/{p}/stat"),
    );
    let s = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces): state is
    // field 3, utime field 14, stime field 15.
    let rest = s.get(s.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// CPU use of the load generator and (given its pid) the broker over a
/// window: tells whether the broker or the load generator was the limit.
pub struct CpuMeter {
    pid: Option<u32>,
    start: std::time::Instant,
    load: Option<u64>,
    broker: Option<u64>,
}

impl CpuMeter {
    /// Starts measuring.
    pub fn start(pid: Option<u32>) -> CpuMeter {
        CpuMeter {
            pid,
            start: std::time::Instant::now(),
            load: cpu_ticks(None),
            broker: pid.and_then(|p| cpu_ticks(Some(p))),
        }
    }

    /// Broker CPU time (user + system) since the start, in microseconds.
    pub fn broker_us(&self) -> Option<u64> {
        let now = self.pid.and_then(|p| cpu_ticks(Some(p)))?;
        Some(now.saturating_sub(self.broker?) * 10_000)
    }

    /// Adds `load_cpu_pct` and, with a pid, `broker_cpu_pct` (100 = one
    /// core busy all the window; Linux clock ticks are 1/100 s).
    pub fn report(&self, r: &mut Report) {
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let pct = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.0}", b.saturating_sub(a) as f64 / secs),
            _ => "na".to_owned(),
        };
        r.add("load_cpu_pct", pct(self.load, cpu_ticks(None)));
        if self.pid.is_some() {
            r.add(
                "broker_cpu_pct",
                pct(self.broker, self.pid.and_then(|p| cpu_ticks(Some(p)))),
            );
        }
    }
}
