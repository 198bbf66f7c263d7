//! The HTTP side without sockets: the health verdict, the bodies, routing
//! and basic auth.

use std::time::{Duration, Instant};

use super::*;
use crate::bridge::BridgeStats;
use crate::store::StoreStatus;

const GRACE: Duration = Duration::from_secs(60);

fn get(path: &str) -> Request<'_> {
    Request {
        method: "GET",
        path,
        authorization: None,
    }
}

fn ctx(now: Instant) -> Context<'static> {
    Context {
        state: "Running",
        users: None,
        bridge_down_grace: GRACE,
        now,
    }
}

fn text(response: &[u8]) -> String {
    String::from_utf8(response.to_vec()).expect("utf-8")
}

fn bridge(name: &str, down_since: Option<Instant>) -> BridgeStats {
    BridgeStats {
        name: name.into(),
        connected: down_since.is_none(),
        down_since,
        last_error: down_since.map(|_| "connection refused".into()),
        queued: 3,
        ..BridgeStats::default()
    }
}

#[test]
fn health_verdicts() {
    let now = Instant::now();
    let mut stats = BrokerStats::default();
    assert_eq!(
        health(&stats, GRACE, now),
        Health {
            healthy: true,
            reasons: vec![]
        }
    );
    // A bridge down, but within its grace; another connected.
    stats.bridges = vec![
        bridge("a", Some(now - Duration::from_secs(30))),
        bridge("b", None),
    ];
    assert!(health(&stats, GRACE, now).healthy);
    stats
        .bridges
        .push(bridge("central", Some(now - Duration::from_secs(61))));
    let h = health(&stats, GRACE, now);
    assert!(!h.healthy);
    assert_eq!(
        h.reasons,
        ["bridge central: down for 61 s (connection refused)"]
    );
    stats.bridges.clear();
    stats.store = Some(StoreStatus::default());
    assert!(health(&stats, GRACE, now).healthy);
    stats.store = Some(StoreStatus {
        failing: Some("commit failed: No space left on device".into()),
        disk_full: true,
        ..StoreStatus::default()
    });
    assert_eq!(
        health(&stats, GRACE, now).reasons,
        ["store: disk full (commit failed: No space left on device)"]
    );
    stats.store = Some(StoreStatus {
        failing: Some("commit failed: I/O error".into()),
        ..StoreStatus::default()
    });
    assert_eq!(
        health(&stats, GRACE, now).reasons,
        ["store: commit failed: I/O error"]
    );
}

#[test]
fn health_answers_200_or_503_with_the_reason() {
    let now = Instant::now();
    let ok = text(&respond(&get("/health"), &ctx(now), BrokerStats::default));
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(ok.contains("Content-Type: application/json\r\n"), "{ok}");
    assert!(
        ok.ends_with(
            "\r\n\r\n{\"state\":\"Running\",\"healthy\":true,\"reason\":null,\
             \"reasons\":[],\"uptime_seconds\":0}\n"
        ),
        "{ok}"
    );
    let failing = || BrokerStats {
        store: Some(StoreStatus {
            failing: Some("disk \"x\"\nbroken".into()),
            ..StoreStatus::default()
        }),
        ..BrokerStats::default()
    };
    let bad = text(&respond(&get("/health"), &ctx(now), failing));
    assert!(
        bad.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{bad}"
    );
    assert!(
        bad.contains("\"healthy\":false,\"reason\":\"store: disk \\\"x\\\"\\nbroken\""),
        "{bad}"
    );
}

#[test]
fn json_strings_are_escaped() {
    let mut out = String::new();
    json::string(&mut out, "a\"b\\c\n\t\u{1}\u{2028}é");
    assert_eq!(out, "\"a\\\"b\\\\c\\n\\t\\u0001\\u2028é\"");
}

#[test]
fn metrics_names_labels_and_histogram() {
    let now = Instant::now();
    let mut status = StoreStatus::default();
    status
        .stats
        .sync_histogram
        .record(Duration::from_micros(80));
    status
        .stats
        .sync_histogram
        .record(Duration::from_micros(700));
    status.stats.sync_histogram.record(Duration::from_secs(9));
    let stats = BrokerStats {
        core: crate::core::Stats {
            clients_connected: 2,
            messages_received: 7,
            ..crate::core::Stats::default()
        },
        bridges: vec![bridge("cen\"tral", Some(now))],
        store: Some(status),
        ..BrokerStats::default()
    };
    let body = metrics::render(&stats, &health(&stats, GRACE, now));
    for line in [
        "# TYPE boxmq_clients_connected gauge",
        "boxmq_clients_connected 2",
        "# TYPE boxmq_messages_received_total counter",
        "boxmq_messages_received_total 7",
        "boxmq_bridge_queued_messages{bridge=\"cen\\\"tral\"} 3",
        "boxmq_bridge_connected{bridge=\"cen\\\"tral\"} 0",
        "# TYPE boxmq_store_fsync_duration_seconds histogram",
        "boxmq_store_fsync_duration_seconds_bucket{le=\"0.0001\"} 1",
        "boxmq_store_fsync_duration_seconds_bucket{le=\"0.0005\"} 1",
        "boxmq_store_fsync_duration_seconds_bucket{le=\"0.001\"} 2",
        "boxmq_store_fsync_duration_seconds_bucket{le=\"2.5\"} 2",
        "boxmq_store_fsync_duration_seconds_bucket{le=\"+Inf\"} 3",
        "boxmq_store_fsync_duration_seconds_count 3",
        "boxmq_healthy 1",
    ] {
        assert!(body.lines().any(|l| l == line), "{line} missing:\n{body}");
    }
    // No store, no bridges: neither family.
    let bare = metrics::render(
        &BrokerStats::default(),
        &health(&BrokerStats::default(), GRACE, now),
    );
    assert!(!bare.contains("boxmq_store_") && !bare.contains("boxmq_bridge_"));
}

#[test]
fn routes_methods_and_head() {
    let now = Instant::now();
    let page = text(&respond(&get("/"), &ctx(now), BrokerStats::default));
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(page.contains("Content-Security-Policy: default-src 'none'"));
    assert!(page.ends_with("</html>\n"));
    // Self-contained and small.
    assert!(!page.contains("src=\"http") && !page.contains("href=\"http"));
    assert!(page::PAGE.len() < 6 * 1024, "{}", page::PAGE.len());
    let missing = text(&respond(&get("/nope"), &ctx(now), BrokerStats::default));
    assert!(missing.starts_with("HTTP/1.1 404 Not Found\r\n"));
    let post = Request {
        method: "POST",
        ..get("/health")
    };
    let refused = text(&respond(&post, &ctx(now), BrokerStats::default));
    assert!(refused.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
    assert!(refused.contains("Allow: GET, HEAD\r\n"));
    let head = Request {
        method: "HEAD",
        ..get("/metrics")
    };
    let head = text(&respond(&head, &ctx(now), BrokerStats::default));
    assert!(head.contains("version=0.0.4"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "{head}");
}

#[test]
fn basic_auth_against_the_password_file() {
    let now = Instant::now();
    let mut users = PasswordFile::new();
    users.set("ops", b"s3cret").expect("user");
    let ctx = Context {
        users: Some(&users),
        ..ctx(now)
    };
    let figures = || -> BrokerStats { panic!("no figures for a refused request") };
    let anonymous = text(&respond(&get("/metrics"), &ctx, figures));
    assert!(anonymous.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
    assert!(anonymous.contains("WWW-Authenticate: Basic realm=\"boxmq\""));
    // ops:wrong, nobody:s3cret
    for value in [
        "Basic b3BzOndyb25n",
        "Basic bm9ib2R5OnMzY3JldA==",
        "Bearer x",
    ] {
        let r = Request {
            authorization: Some(value),
            ..get("/metrics")
        };
        assert!(text(&respond(&r, &ctx, figures)).starts_with("HTTP/1.1 401 "));
    }
    // ops:s3cret
    let r = Request {
        authorization: Some("Basic b3BzOnMzY3JldA=="),
        ..get("/health")
    };
    assert!(text(&respond(&r, &ctx, BrokerStats::default)).starts_with("HTTP/1.1 200 OK\r\n"));
}
