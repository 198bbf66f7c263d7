//! The minimal build, under the README's one test command.
//!
//! TLS and WebSockets listeners and the HTTP status listener are default
//! features (what `cargo build --release` and the .deb carry), so a plain
//! `cargo test` runs their tests. This test keeps the `--no-default-features`
//! build, the one for flash-tight boxes, working: its unit tests (each
//! feature's config lines are refused there, naming the feature), the
//! basic end-to-end tests and the fuzz corpora, in a nested
//! `cargo test --no-default-features` with its own target dir,
//! `target/minimal`. The nested run is bounded; its log is
//! `target/minimal/minimal.log`.

use std::time::Duration;

mod nested_cargo;
use nested_cargo::{cargo, target_dir};

/// Building the crate again without features on two shared cores, then
/// running the tests.
const LIMIT: Duration = Duration::from_secs(1500);

#[test]
fn no_default_features_build() {
    let dir = target_dir("minimal");
    let (status, out) = nested_cargo::run_bounded(
        cargo()
            .args([
                "test",
                "--no-default-features",
                "--lib",
                "--test",
                "e2e_basic",
                "--test",
                "mosquitto_conf",
                "--test",
                "fuzz_corpus",
                "--target-dir",
            ])
            .arg(&dir),
        LIMIT,
        "minimal",
        &dir,
    );
    assert!(
        status.success(),
        "cargo test --no-default-features failed:\n{out}"
    );
    // Every test binary ran tests (a filter or cfg slip that runs nothing
    // would otherwise pass unseen).
    let ran: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("test result: ok.") && !l.contains(" 0 passed"))
        .collect();
    assert!(
        ran.len() >= 4,
        "expected lib, e2e_basic, mosquitto_conf and fuzz_corpus results:\n{out}"
    );
    println!("{}", ran.join("\n"));
}
