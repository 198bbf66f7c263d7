//! The record store on the real file system: group-commit throughput with
//! fdatasync at batches of 1, 32 and 256 records, bytes written per record,
//! recovery time of 64 MiB of records, and compaction of that state into
//! a snapshot.
//!
//! ```text
//! cargo bench --bench store            # full run, medians of 3
//! ```
//!
//! Files go to `target/store-bench/` (a real disk: /tmp may be tmpfs, where
//! fdatasync costs nothing); `BOXMQ_STORE_BENCH_DIR` overrides. Without
//! `--bench` (as under `cargo test`) it runs each measurement once on tiny
//! sizes, as a smoke test.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use boxmq::store::{Store, StoreOptions};

/// Body of one record: about a small QoS 1 message with its topic.
const BODY: usize = 100;

struct Scale {
    /// Wall time each throughput measurement runs for.
    window: Duration,
    /// Bytes of records for the recovery measurement.
    recovery_bytes: usize,
    runs: usize,
}

fn bench_dir() -> PathBuf {
    match std::env::var_os("BOXMQ_STORE_BENCH_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/store-bench"),
    }
}

/// Removes the directory when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = bench_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Bytes this process sent to the block layer (Linux `/proc/self/io`).
fn device_write_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

struct Throughput {
    records_per_s: f64,
    commits_per_s: f64,
    store_bytes_per_record: f64,
    device_bytes_per_record: Option<f64>,
    p99_commit_us: f64,
}

fn throughput(batch: usize, window: Duration) -> Throughput {
    let scratch = Scratch::new(&format!("batch{batch}"));
    let mut opts = StoreOptions::new(&scratch.0);
    opts.compact_at = u64::MAX;
    let (mut store, _) = Store::open(opts).expect("open store");
    let body = vec![0x5A; BODY];
    let before_dev = device_write_bytes();
    let before = store.stats().bytes_written;
    let mut lat = Vec::new();
    let mut records = 0u64;
    let start = Instant::now();
    while start.elapsed() < window {
        for _ in 0..batch {
            store.append(1, &body);
        }
        let t = Instant::now();
        store.commit().expect("commit");
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        records += batch as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    let written = store.stats().bytes_written - before;
    let dev = match (before_dev, device_write_bytes()) {
        (Some(a), Some(b)) => Some((b - a) as f64 / records as f64),
        _ => None,
    };
    lat.sort_by(|a, b| a.total_cmp(b));
    let p99 = lat[(lat.len() * 99 / 100).min(lat.len() - 1)];
    Throughput {
        records_per_s: records as f64 / secs,
        commits_per_s: lat.len() as f64 / secs,
        store_bytes_per_record: written as f64 / records as f64,
        device_bytes_per_record: dev,
        p99_commit_us: p99,
    }
}

/// Writes `bytes` of records (sync off, big batches), reopens, compacts
/// what it recovered; returns (open time, compaction time, records).
fn recovery(bytes: usize) -> (Duration, Duration, usize) {
    let scratch = Scratch::new("recovery");
    let mut opts = StoreOptions::new(&scratch.0);
    opts.sync = false;
    opts.compact_at = u64::MAX;
    let (mut store, _) = Store::open(opts.clone()).expect("open store");
    let body = vec![0xA5; BODY];
    let per = BODY + 17;
    let n = bytes / per;
    for i in 0..n {
        store.append((i % 8) as u8, &body);
        if i % 4096 == 4095 {
            store.commit().expect("commit");
        }
    }
    store.commit().expect("commit");
    drop(store);
    let start = Instant::now();
    let (store, rec) = Store::open(opts).expect("reopen store");
    let took = start.elapsed();
    assert_eq!(rec.records.len(), n);
    assert!(rec.notes.is_empty());
    let mut store = store;
    let start = Instant::now();
    store
        .compact(&mut rec.records.into_iter().map(|r| (r.kind, r.body)))
        .expect("compact");
    let compacted = start.elapsed();
    drop(store);
    (took, compacted, n)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let scale = if full {
        Scale {
            window: Duration::from_secs(2),
            recovery_bytes: 64 << 20,
            runs: 3,
        }
    } else {
        Scale {
            window: Duration::from_millis(20),
            recovery_bytes: 256 << 10,
            runs: 1,
        }
    };
    println!(
        "store bench in {} (body {BODY} bytes, sync on)",
        bench_dir().display()
    );
    for batch in [1usize, 32, 256] {
        let runs: Vec<Throughput> = (0..scale.runs)
            .map(|_| throughput(batch, scale.window))
            .collect();
        let dev = if runs.iter().all(|r| r.device_bytes_per_record.is_some()) {
            format!(
                "{:.0}",
                median(
                    runs.iter()
                        .filter_map(|r| r.device_bytes_per_record)
                        .collect()
                )
            )
        } else {
            "n/a".to_string()
        };
        println!(
            "RESULT bench=store_commit batch={batch} records_per_s={:.0} commits_per_s={:.0} \
             store_bytes_per_record={:.1} device_bytes_per_record={dev} p99_commit_us={:.0}",
            median(runs.iter().map(|r| r.records_per_s).collect()),
            median(runs.iter().map(|r| r.commits_per_s).collect()),
            median(runs.iter().map(|r| r.store_bytes_per_record).collect()),
            median(runs.iter().map(|r| r.p99_commit_us).collect()),
        );
    }
    let mut times = Vec::new();
    let mut compactions = Vec::new();
    let mut count = 0;
    for _ in 0..scale.runs {
        let (t, c, n) = recovery(scale.recovery_bytes);
        times.push(t.as_secs_f64() * 1e3);
        compactions.push(c.as_secs_f64() * 1e3);
        count = n;
    }
    println!(
        "RESULT bench=store_recovery mib={} records={count} open_ms={:.0} compact_ms={:.0} \
         (warm page cache)",
        scale.recovery_bytes >> 20,
        median(times),
        median(compactions)
    );
}
