//! The JSON bodies of `/health` and `/status.json` (RFC 8259), written by
//! hand: a handful of numbers and strings do not need a serializer.

use std::fmt::Write as _;
use std::time::Instant;

use super::Health;
use crate::stats::BrokerStats;

/// `s` as a JSON string, quotes included. Control characters are escaped;
/// everything else (a bridge name, an error message) passes as UTF-8.
pub(super) fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn opt_string(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => out.push_str("null"),
    }
}

/// `"state":..,"healthy":..,"reason":..,"reasons":[..]`, the part both
/// bodies share.
fn verdict(out: &mut String, state: &str, health: &Health) {
    out.push_str("\"state\":");
    string(out, state);
    let _ = write!(out, ",\"healthy\":{},\"reason\":", health.healthy);
    let joined = health.reasons.join("; ");
    opt_string(out, (!health.healthy).then_some(joined.as_str()));
    out.push_str(",\"reasons\":[");
    for (i, r) in health.reasons.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(out, r);
    }
    out.push(']');
}

/// The body of `/health`: `{"state":"Running","healthy":true,...}`.
pub(super) fn health(state: &str, stats: &BrokerStats, health: &Health) -> String {
    let mut out = String::with_capacity(128);
    out.push('{');
    verdict(&mut out, state, health);
    let _ = writeln!(out, ",\"uptime_seconds\":{}}}", stats.uptime.as_secs());
    out
}

/// The body of `/status.json`: every figure the status page shows.
pub(super) fn status(state: &str, stats: &BrokerStats, health: &Health, now: Instant) -> String {
    let mut out = String::with_capacity(1024);
    out.push('{');
    verdict(&mut out, state, health);
    let _ = write!(
        out,
        ",\"version\":\"{}\",\"uptime_seconds\":{:.3},\"clients_connected\":{},\
         \"clients_maximum\":{},\"sessions\":{},\"subscriptions\":{},\
         \"messages_received\":{},\"messages_sent\":{},\"messages_dropped\":{},\
         \"bytes_received\":{},\"bytes_sent\":{},\"retained_messages\":{},\
         \"retained_bytes\":{},\"retained_refused\":{}",
        env!("CARGO_PKG_VERSION"),
        stats.uptime.as_secs_f64(),
        stats.clients_connected,
        stats.clients_maximum,
        stats.sessions,
        stats.subscriptions,
        stats.messages_received,
        stats.messages_sent,
        stats.publish_dropped,
        stats.bytes_received,
        stats.bytes_sent,
        stats.retained_messages,
        stats.retained_bytes,
        stats.retained_refused,
    );
    out.push_str(",\"store\":");
    match &stats.store {
        None => out.push_str("null"),
        Some(s) => {
            out.push_str("{\"failing\":");
            opt_string(&mut out, s.failing.as_deref());
            let _ = write!(
                out,
                ",\"disk_full\":{},\"commits\":{},\"log_bytes\":{},\
                 \"snapshot_bytes\":{},\"last_sync_ms\":{:.3},\"max_sync_ms\":{:.3}}}",
                s.disk_full,
                s.stats.commits,
                s.stats.log_bytes,
                s.stats.snapshot_bytes,
                s.stats.last_sync.as_secs_f64() * 1e3,
                s.stats.max_sync.as_secs_f64() * 1e3,
            );
        }
    }
    out.push_str(",\"bridges\":[");
    for (i, b) in stats.bridges.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        string(&mut out, &b.name);
        let _ = write!(out, ",\"connected\":{},\"address\":", b.connected);
        opt_string(&mut out, b.address.as_deref());
        let _ = write!(
            out,
            ",\"queued\":{},\"queued_bytes\":{},\"inflight\":{},\"dropped\":{},\
             \"forwarded\":{},\"received\":{},\"connects\":{},\"down_seconds\":",
            b.queued, b.queued_bytes, b.inflight, b.dropped, b.forwarded, b.received, b.connects
        );
        match b.down_since {
            Some(since) => {
                let _ = write!(out, "{}", now.saturating_duration_since(since).as_secs());
            }
            None => out.push_str("null"),
        }
        out.push_str(",\"last_error\":");
        opt_string(&mut out, b.last_error.as_deref());
        out.push('}');
    }
    out.push_str("]}\n");
    out
}
