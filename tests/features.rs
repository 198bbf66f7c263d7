//! The cargo features, under the README's one test command.
//!
//! TLS and WebSockets listeners and the HTTP status listener are compiled
//! only with `--features tls,websockets,http`, which a plain `cargo test`
//! leaves out. This test runs their unit tests and end-to-end tests
//! (`tests/e2e_tls.rs`, `tests/e2e_tls_bridge.rs`, `tests/e2e_ws.rs`,
//! `tests/e2e_http.rs`, and `tests/fuzz_corpus.rs` for the `http` fuzz
//! target's corpus) in a nested `cargo test --features tls,websockets,http`
//! with its own target dir, `target/features`, so `cargo test` alone covers
//! the whole suite. The nested run is bounded; its log is
//! `target/features/tls-and-websockets.log`.

use std::time::Duration;

mod nested_cargo;
use nested_cargo::{cargo, target_dir};

/// Building rustls and ring from scratch on two shared cores, then running
/// the tests (about two minutes of building here).
const LIMIT: Duration = Duration::from_secs(1500);

#[test]
fn tls_and_websockets_features() {
    let dir = target_dir("features");
    let (status, out) = nested_cargo::run_bounded(
        cargo()
            .args([
                "test",
                "--features",
                "tls,websockets,http",
                "--lib",
                "--test",
                "e2e_tls",
                "--test",
                "e2e_tls_bridge",
                "--test",
                "e2e_ws",
                "--test",
                "e2e_http",
                // The http fuzz target's corpus (tests/fuzz_support/http_check.rs).
                "--test",
                "fuzz_corpus",
                "--target-dir",
            ])
            .arg(&dir),
        LIMIT,
        "tls and websockets",
        &dir,
    );
    assert!(
        status.success(),
        "cargo test --features tls,websockets,http failed:\n{out}"
    );
    // Both test binaries ran tests (a filter or cfg slip that runs nothing
    // would otherwise pass unseen).
    let ran: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("test result: ok.") && !l.contains(" 0 passed"))
        .collect();
    assert!(
        ran.len() >= 6,
        "expected lib, e2e_tls, e2e_tls_bridge, e2e_ws, e2e_http and fuzz_corpus results:\n{out}"
    );
    println!("{}", ran.join("\n"));
}
