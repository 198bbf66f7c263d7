//! The Python package (`python/`), under the root's `cargo test`.
//!
//! `boxmq-python` is a workspace member outside `default-members`, so a
//! plain `cargo test` does not build it. This test does, as a user would:
//!
//! 1. installs maturin in a venv of its own (`target/python/tools`, kept
//!    between runs; falls back to a `maturin` on `PATH` when the package
//!    index cannot be reached);
//! 2. builds the abi3 wheel with `maturin build` (debug, into the same
//!    target dir as `tests/ffi.rs`, so the boxmq crate is built once);
//! 3. installs the wheel in a fresh venv (`target/python/venv`; paho-mqtt 2
//!    from the system's site-packages, or from the index);
//! 4. runs `python/tests/test_package.py` there: the button dashboard
//!    against `mosquitto_pub` and paho-mqtt over TCP, the lifecycle, the
//!    errors, and the type stub against the module.
//!
//! Skipped, saying so, only when `python3` (with `venv`) or `mosquitto_pub`
//! is not installed at all; CI has both (`.ci/run`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod nested_cargo;
use nested_cargo::{cargo, manifest_dir, run_bounded, target_dir, without_outer_build};

/// Building pyo3 and the extension (boxmq itself is usually built already).
const BUILD_LIMIT: Duration = Duration::from_secs(600);
/// pip: creating a venv, installing maturin or paho-mqtt.
const PIP_LIMIT: Duration = Duration::from_secs(300);
/// The Python tests (they take well under a second).
const TEST_LIMIT: Duration = Duration::from_secs(180);

/// Whether `cmd` runs and exits 0 (output discarded).
fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `tool` can be started at all (`--help` may well exit non-zero).
fn installed(tool: &str) -> bool {
    Command::new(tool)
        .arg("--help")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Runs `cmd` bounded in time, with its log in `target/python`; fails the
/// test with the output unless it succeeds.
fn run(cmd: &mut Command, limit: Duration, what: &str) -> String {
    let (status, out) = run_bounded(cmd, limit, what, &target_dir("python"));
    assert!(status.success(), "{what} failed ({status}):\n{out}");
    out
}

fn venv_bin(venv: &Path, tool: &str) -> PathBuf {
    venv.join("bin").join(tool)
}

/// A maturin that can build the wheel: the tools venv's, installed there
/// if needed, else one on `PATH`.
fn maturin(python: &str) -> PathBuf {
    let tools = target_dir("python").join("tools");
    let own = venv_bin(&tools, "maturin");
    if succeeds(Command::new(&own).arg("--version")) {
        return own;
    }
    let _ = fs::remove_dir_all(&tools);
    run(
        Command::new(python).args(["-m", "venv"]).arg(&tools),
        PIP_LIMIT,
        "tools venv",
    );
    let (status, out) = run_bounded(
        Command::new(venv_bin(&tools, "pip")).args([
            "install",
            "-q",
            "--disable-pip-version-check",
            "maturin>=1.9.4,<2",
        ]),
        PIP_LIMIT,
        "pip install maturin",
        &target_dir("python"),
    );
    if status.success() {
        return own;
    }
    assert!(
        succeeds(Command::new("maturin").arg("--version")),
        "cannot install maturin (pip install 'maturin>=1.9.4,<2' failed) and none \
         is on PATH:\n{out}"
    );
    PathBuf::from("maturin")
}

/// Builds the wheel into an emptied `target/python/wheels`; its path.
fn build_wheel(python: &str) -> PathBuf {
    let maturin = maturin(python);
    let wheels = target_dir("python").join("wheels");
    let _ = fs::remove_dir_all(&wheels);
    run(
        without_outer_build(&mut Command::new(&maturin))
            .current_dir(manifest_dir())
            .args(["build", "-m", "python/Cargo.toml", "--profile", "dev"])
            .arg("--target-dir")
            .arg(target_dir("ffi"))
            .arg("--out")
            .arg(&wheels)
            .args(["-i", python])
            // The same cargo as the outer build (maturin runs `$CARGO`).
            .env("CARGO", cargo().get_program())
            // Leave the Python symbols to the interpreter (maturin sets it
            // too from 1.9.4 on).
            .env("PYO3_BUILD_EXTENSION_MODULE", "1"),
        BUILD_LIMIT,
        "maturin build",
    );
    let built: Vec<PathBuf> = fs::read_dir(&wheels)
        .expect("the wheels dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    assert_eq!(built.len(), 1, "expected one wheel: {built:?}");
    let wheel = built.into_iter().next().expect("one wheel");
    let name = wheel.file_name().and_then(|n| n.to_str()).unwrap_or("");
    assert!(
        name.starts_with("boxmq-") && name.contains("-cp39-abi3-"),
        "not an abi3 wheel: {name}"
    );
    wheel
}

/// A fresh venv with the wheel and paho-mqtt 2; its python.
fn test_venv(python: &str, wheel: &Path) -> PathBuf {
    let venv = target_dir("python").join("venv");
    let _ = fs::remove_dir_all(&venv);
    run(
        Command::new(python)
            .args(["-m", "venv", "--system-site-packages"])
            .arg(&venv),
        PIP_LIMIT,
        "test venv",
    );
    run(
        Command::new(venv_bin(&venv, "pip"))
            .args(["install", "-q", "--disable-pip-version-check"])
            .args(["--no-index", "--no-deps"])
            .arg(wheel),
        PIP_LIMIT,
        "pip install the wheel",
    );
    let py = venv_bin(&venv, "python");
    let has_paho2 = succeeds(Command::new(&py).args([
        "-c",
        "import sys, paho.mqtt; sys.exit(not paho.mqtt.__version__.startswith('2.'))",
    ]));
    if !has_paho2 {
        run(
            Command::new(venv_bin(&venv, "pip")).args([
                "install",
                "-q",
                "--disable-pip-version-check",
                "paho-mqtt>=2,<3",
            ]),
            PIP_LIMIT,
            "pip install paho-mqtt",
        );
    }
    py
}

#[test]
fn the_wheel_builds_installs_and_runs_the_dashboard_against_mosquitto_pub_and_paho() {
    let python = "python3";
    if !succeeds(Command::new(python).args(["-c", "import venv, ensurepip"])) {
        println!(
            "SKIPPED: no python3 with venv and ensurepip \
             (Debian: apt-get install -y python3 python3-venv)"
        );
        return;
    }
    if !installed("mosquitto_pub") {
        println!("SKIPPED: no mosquitto_pub (Debian: apt-get install -y mosquitto-clients)");
        return;
    }

    let wheel = build_wheel(python);
    let py = test_venv(python, &wheel);
    let out = run(
        Command::new(&py)
            // -I: the script's own directory and PYTHONPATH stay out of
            // sys.path, so `boxmq` can only be the installed wheel.
            .arg("-I")
            .arg(manifest_dir().join("python/tests/test_package.py"))
            .current_dir(target_dir("python")),
        TEST_LIMIT,
        "python tests",
    );
    println!("{out}");
    let ran = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("Ran ")?
                .split(' ')
                .next()?
                .parse::<u32>()
                .ok()
        })
        .unwrap_or(0);
    assert!(ran >= 9, "expected at least 9 Python tests:\n{out}");
    assert!(
        out.lines().any(|l| l == "OK"),
        "the Python tests did not all pass (or some were skipped):\n{out}"
    );
}
