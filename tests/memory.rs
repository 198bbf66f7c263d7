//! The broker's memory under the worst abuses, measured from
//! /proc/PID/status (VmRSS, VmHWM) of a boxmq child with the default
//! limits (only the connection count is a parameter), compared with the
//! worst-case formula of docs/LIMITS.md (since issue 28: the memory
//! budget, `memory_limit`, bounds the partial packets, the queues and the
//! output buffers together). Heavy, so ignored by default:
//!
//! ```text
//! cargo test --release --test memory -- --ignored --nocapture
//! BOXMQ_MEM_CONNS=1000 cargo test --release --test memory -- --ignored --nocapture
//! BOXMQ_MEM_CONNS=1000 BOXMQ_MEM_FIRST=60000 cargo test --release --test memory worst -- --ignored --nocapture
//! ```

mod abuse_support;

use std::io::Write;
use std::time::Duration;

use abuse_support::{Broker, Client, publish_bytes};
use boxmq::Limits;
use boxmq::codec::QoS;

fn conns() -> usize {
    std::env::var("BOXMQ_MEM_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

fn settle() {
    std::thread::sleep(Duration::from_millis(500));
}

/// Idle overhead per connected client (one subscription each).
#[test]
#[ignore = "measurement; run with --release --ignored --nocapture"]
fn idle_connection_overhead() {
    let n = conns();
    let broker = Broker::start(&format!("max_connections {}", n + 8));
    settle();
    let base = broker.rss_kib();
    let mut clients = Vec::new();
    for i in 0..n {
        let mut c = broker.client(&format!("idle-{i:05}"));
        c.subscribe(
            &[&format!("shellies/idle-{i}/input_event/0")],
            QoS::AtMostOnce,
        );
        clients.push(c);
    }
    settle();
    let rss = broker.rss_kib();
    let per = (rss.saturating_sub(base) * 1024) / n as u64;
    println!("idle: {n} clients, RSS {base} -> {rss} KiB: {per} bytes per connected client");
}

/// Every connection holds a 256 KiB PUBLISH (the old default
/// max_packet_size) cut 16 bytes short, and one subscriber never reads
/// while another client floods it. Past the memory budget, further
/// partial packets are refused (their connections closed).
#[test]
#[ignore = "measurement; run with --release --ignored --nocapture"]
fn worst_case_partial_packets_and_slow_consumer() {
    let n = conns();
    let l = Limits::default();
    let broker = Broker::start(&format!("max_connections {}", n + 8));
    settle();
    let base = broker.rss_kib();

    // Slow consumer: subscribed at QoS 1, never reads. Flood: 8 MiB.
    let mut slow = broker.client("slow");
    slow.subscribe(&["flood/#"], QoS::AtLeastOnce);
    let mut flood = broker.client("flood");
    let payload = vec![b'f'; 8 * 1024];
    for i in 0..1024u16 {
        let qos = if i % 2 == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        flood.send(&publish_bytes("flood/x", &payload, qos, i + 1));
        if i % 64 == 0 {
            let _ = flood.recv(Duration::from_millis(1));
        }
    }
    settle();
    let after_slow = broker.rss_kib();

    // Partial packets: a 256 KiB PUBLISH frame, all but its last 16
    // bytes sent.
    let frame_size = 256 * 1024;
    let body = frame_size - 1 - 3; // 3 remaining-length bytes for 256 KiB
    let topic = "partial/x";
    let payload = vec![b'p'; body - 2 - topic.len()];
    let frame = publish_bytes(topic, &payload, QoS::AtMostOnce, 0);
    assert_eq!(frame.len(), frame_size);
    // BOXMQ_MEM_FIRST=N sends the first N bytes, then (after a pause, so
    // the broker reads them alone) the rest: the read buffer is sized for
    // the frame once its fixed header is in (finding 4, fixed).
    let first: usize = std::env::var("BOXMQ_MEM_FIRST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cut = frame.len() - 16;
    let mut holders: Vec<Client> = Vec::new();
    for i in 0..n {
        let mut c = broker.client(&format!("partial-{i:05}"));
        let _ = c.stream.write_all(&frame[..first.min(cut)]);
        holders.push(c);
    }
    settle();
    for c in &mut holders {
        // Refused past the budget: the broker may have closed it.
        let _ = c.stream.write_all(&frame[first.min(cut)..cut]);
    }
    settle();
    let rss = broker.rss_kib();
    let hwm = broker.hwm_kib();
    let per_partial = (rss.saturating_sub(after_slow) * 1024) / n as u64;
    println!(
        "worst case: base {base} KiB; + slow consumer and 8 MiB flood: {after_slow} KiB; \
         + {n} partial {frame_size}-byte packets: RSS {rss} KiB, VmHWM {hwm} KiB \
         ({per_partial} bytes per holding connection)"
    );
    // The formula's prediction for these n connections (docs/LIMITS.md):
    // what the budget counts (partial frames, the flood kept for the slow
    // consumer, output buffers) is at most memory_limit; a connection's
    // own state (about 4 KiB with its socket's share) is outside it.
    let counted = (n * frame_size + l.max_output_buffer + 8 * 1024 * 1024).min(l.memory_limit);
    let predicted_kib = (base as usize * 1024 + counted + n * 4096 + 4 * 64 * 1024) / 1024;
    println!("formula for these {n} connections: {predicted_kib} KiB");
    assert!(
        hwm as usize <= predicted_kib + predicted_kib / 4,
        "VmHWM {hwm} KiB over the formula's {predicted_kib} KiB"
    );
    drop(slow);
}
