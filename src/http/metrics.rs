//! `/metrics` in the Prometheus text exposition format 0.0.4: one `# HELP`
//! and `# TYPE` line per family, then its samples. Names follow the
//! Prometheus conventions: the `boxmq_` prefix, base units (seconds,
//! bytes), `_total` on counters; per-bridge families carry a `bridge`
//! label.

use std::fmt::Write as _;

use super::Health;
use crate::bridge::BridgeStats;
use crate::stats::BrokerStats;
use crate::store::{SYNC_BUCKETS_US, StoreStatus, SyncHistogram};

/// One family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A family of one unlabelled sample.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// A label value: backslash, double quote and line feed escaped.
fn label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The per-bridge families: name, type, help, and the figure.
type BridgeFigure = (
    &'static str,
    &'static str,
    &'static str,
    fn(&BridgeStats) -> u64,
);

const BRIDGE_FAMILIES: &[BridgeFigure] = &[
    (
        "boxmq_bridge_connected",
        "gauge",
        "1 while the bridge is connected to its remote broker.",
        |b| u64::from(b.connected),
    ),
    (
        "boxmq_bridge_queued_messages",
        "gauge",
        "Messages waiting in the bridge's queue for the remote broker.",
        |b| b.queued as u64,
    ),
    (
        "boxmq_bridge_queued_bytes",
        "gauge",
        "Bytes of the messages waiting in the bridge's queue.",
        |b| b.queued_bytes as u64,
    ),
    (
        "boxmq_bridge_inflight_messages",
        "gauge",
        "Messages sent to the remote broker and not yet acknowledged.",
        |b| b.inflight as u64,
    ),
    (
        "boxmq_bridge_dropped_messages_total",
        "counter",
        "Messages for the remote broker dropped because the queue was full.",
        |b| b.dropped,
    ),
    (
        "boxmq_bridge_forwarded_messages_total",
        "counter",
        "Messages forwarded to the remote broker, resends included.",
        |b| b.forwarded,
    ),
    (
        "boxmq_bridge_received_messages_total",
        "counter",
        "Messages received from the remote broker and published here.",
        |b| b.received,
    ),
    (
        "boxmq_bridge_connects_total",
        "counter",
        "Successful connections to the remote broker.",
        |b| b.connects,
    ),
];

/// Every figure of `stats`, and the verdict of `/health` as `boxmq_healthy`.
pub(super) fn render(stats: &BrokerStats, health: &Health) -> String {
    let mut out = String::with_capacity(4096);
    broker_families(&mut out, stats, health);
    message_counters(&mut out, stats);
    if !stats.bridges.is_empty() {
        bridge_families(&mut out, &stats.bridges);
    }
    if let Some(store) = &stats.store {
        store_families(&mut out, store);
    }
    out
}

/// The broker's own gauges: build, health, uptime, clients, sessions,
/// subscriptions, retained messages.
fn broker_families(out: &mut String, stats: &BrokerStats, health: &Health) {
    family(
        out,
        "boxmq_build_info",
        "gauge",
        "Always 1; the version in a label.",
    );
    let _ = writeln!(
        out,
        "boxmq_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    single(
        out,
        "boxmq_healthy",
        "gauge",
        "1 when /health answers 200: the store writes and no bridge is down past its grace.",
        u8::from(health.healthy),
    );
    single(
        out,
        "boxmq_uptime_seconds",
        "gauge",
        "Time since the broker started.",
        format_args!("{:.3}", stats.uptime.as_secs_f64()),
    );
    let gauges: [(&str, &str, usize); 6] = [
        (
            "boxmq_clients_connected",
            "Clients connected now.",
            stats.clients_connected,
        ),
        (
            "boxmq_clients_maximum",
            "Most clients connected at once since the start.",
            stats.clients_maximum,
        ),
        (
            "boxmq_sessions",
            "Sessions held, connected and persistent offline ones.",
            stats.sessions,
        ),
        (
            "boxmq_subscriptions",
            "Subscriptions held over all sessions.",
            stats.subscriptions,
        ),
        (
            "boxmq_retained_messages",
            "Retained messages held.",
            stats.retained_messages,
        ),
        (
            "boxmq_retained_bytes",
            "Topic and payload bytes of the retained messages held.",
            stats.retained_bytes,
        ),
    ];
    for (name, help, value) in gauges {
        single(out, name, "gauge", help, value);
    }
}

/// The counters of messages and bytes since the start.
fn message_counters(out: &mut String, stats: &BrokerStats) {
    let counters: [(&str, &str, u64); 6] = [
        (
            "boxmq_messages_received_total",
            "PUBLISH packets received from clients and in-process publishers.",
            stats.messages_received,
        ),
        (
            "boxmq_messages_sent_total",
            "PUBLISH packets sent to clients.",
            stats.messages_sent,
        ),
        (
            "boxmq_messages_dropped_total",
            "Messages not delivered because a client's output or queue was full.",
            stats.publish_dropped,
        ),
        (
            "boxmq_retained_refused_total",
            "Retained messages not stored because the retained limits were reached.",
            stats.retained_refused,
        ),
        (
            "boxmq_received_bytes_total",
            "Bytes received from all connections.",
            stats.bytes_received,
        ),
        (
            "boxmq_sent_bytes_total",
            "Bytes handed to the network for all connections.",
            stats.bytes_sent,
        ),
    ];
    for (name, help, value) in counters {
        single(out, name, "counter", help, value);
    }
}

/// The per-bridge families, one sample per bridge.
fn bridge_families(out: &mut String, bridges: &[BridgeStats]) {
    for &(name, kind, help, figure) in BRIDGE_FAMILIES {
        family(out, name, kind, help);
        for b in bridges {
            let _ = write!(out, "{name}{{bridge=\"");
            label_value(out, &b.name);
            let _ = writeln!(out, "\"}} {}", figure(b));
        }
    }
}

/// The store's families, when persistence is on.
fn store_families(out: &mut String, store: &StoreStatus) {
    single(
        out,
        "boxmq_store_healthy",
        "gauge",
        "1 while the store writes; 0 after a failed commit or snapshot.",
        u8::from(store.failing.is_none()),
    );
    single(
        out,
        "boxmq_store_disk_full",
        "gauge",
        "1 when the store's last failure was a full disk or quota.",
        u8::from(store.disk_full),
    );
    let s = &store.stats;
    for (name, kind, help, value) in [
        (
            "boxmq_store_commits_total",
            "counter",
            "Commits that wrote records.",
            s.commits,
        ),
        (
            "boxmq_store_written_bytes_total",
            "counter",
            "Bytes written to the log and snapshot files.",
            s.bytes_written,
        ),
        (
            "boxmq_store_sync_errors_total",
            "counter",
            "Failed syncs.",
            s.sync_errors,
        ),
        (
            "boxmq_store_log_bytes",
            "gauge",
            "Bytes in the current log file.",
            s.log_bytes,
        ),
        (
            "boxmq_store_snapshot_bytes",
            "gauge",
            "Bytes in the current snapshot file.",
            s.snapshot_bytes,
        ),
    ] {
        single(out, name, kind, help, value);
    }
    fsync_histogram(out, &s.sync_histogram);
}

/// How long the store's fdatasyncs took, as a histogram in seconds.
fn fsync_histogram(out: &mut String, h: &SyncHistogram) {
    let name = "boxmq_store_fsync_duration_seconds";
    family(out, name, "histogram", "Time each commit's fdatasync took.");
    let mut cumulative = 0u64;
    for (bound, count) in SYNC_BUCKETS_US.iter().zip(h.counts.iter()) {
        cumulative = cumulative.saturating_add(*count);
        // Microseconds as seconds: 100 -> 0.0001, 1000000 -> 1.
        let le = *bound as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
    }
    let total = h.count();
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
    let _ = writeln!(out, "{name}_sum {}", h.sum.as_secs_f64());
    let _ = writeln!(out, "{name}_count {total}");
}
