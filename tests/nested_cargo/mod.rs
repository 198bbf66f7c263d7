//! Running cargo from inside a test (`tests/arm_qemu.rs`,
//! `tests/features.rs`, `tests/ffi.rs`, `tests/python.rs`): each nested build gets its own target dir under
//! `target/`, so it never waits for the outer `cargo test`'s lock, and every
//! run is bounded in time.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The package root.
pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `target/NAME`: a nested build's own target dir, also where its logs go.
pub fn target_dir(name: &str) -> PathBuf {
    manifest_dir().join("target").join(name)
}

/// A `cargo` command in the package root, free of the outer build's
/// target, target dir and flags.
pub fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(manifest_dir());
    without_outer_build(&mut cmd);
    cmd
}

/// Clears the outer build's target, target dir and flags from the
/// environment of `cmd` (a cargo, or a tool that runs cargo, like maturin).
pub fn without_outer_build(cmd: &mut Command) -> &mut Command {
    cmd.env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
}

/// Runs `cmd` in its own process group with its output in a file under
/// `log_dir`; kills the whole group after `limit`. Returns the status and
/// the output.
pub fn run_bounded(
    cmd: &mut Command,
    limit: Duration,
    what: &str,
    log_dir: &Path,
) -> (ExitStatus, String) {
    use std::os::unix::process::CommandExt;
    fs::create_dir_all(log_dir).expect("create the nested log dir");
    let log = log_dir.join(format!("{}.log", what.replace(' ', "-")));
    let out = File::create(&log).expect("create the nested log");
    let start = Instant::now();
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("clone the log handle"))
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the nested run") {
            break status;
        }
        if start.elapsed() > limit {
            // The whole group: cargo and the rustc or test processes under it.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            panic!(
                "{what}: still running after {limit:?}; output:\n{}",
                tail(&log)
            );
        }
        thread::sleep(Duration::from_millis(100));
    };
    println!("{what}: {:.1} s", start.elapsed().as_secs_f64());
    (status, fs::read_to_string(&log).unwrap_or_default())
}

/// The last 60 lines of a log file.
pub fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// A file of the package, as text; panics with its path if unreadable.
#[allow(dead_code)] // not every test binary reads files
pub fn read(rel: &str) -> String {
    let path = manifest_dir().join(rel);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Fails the test, naming the Debian package to install, when `tool` is
/// not on the PATH.
#[allow(dead_code)] // not every test binary needs an outside tool
pub fn require(tool: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`{tool}` is not installed; install it (Debian: apt-get install -y {package})"
    );
}

/// Whether the process runs under CI (`CI=true`), where a missing tool
/// fails a test instead of skipping it.
#[allow(dead_code)] // not every test binary skips
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `true` when nothing is `missing`; otherwise prints that `test` is
/// skipped and returns `false`, or panics under `CI=true`.
#[allow(dead_code)] // not every test binary skips
pub fn tools_or_skip(test: &str, missing: &[String]) -> bool {
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{test}: missing {}; run .ci/arm-setup.sh",
        missing.join(", ")
    );
    assert!(!in_ci(), "{msg} (CI=true: not skipping)");
    println!("NOTE: skipped: {msg}");
    false
}

/// Whether rustup has the standard library for `target`.
#[allow(dead_code)] // only the cross-building tests
pub fn rust_target_installed(target: &str) -> bool {
    let Ok(out) = Command::new("rustc").args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(target)
        .join("lib")
        .is_dir()
}

/// Removes what the outer `cargo test` set for this test process
/// (`CARGO_PKG_*`, `CARGO_MANIFEST_*`, `CARGO_CRATE_NAME`,
/// `CARGO_PRIMARY_PACKAGE`). ring's build script tracks some of them, so
/// with them set the nested build differs from the same `cargo build` (or
/// `cargo deb`) typed in a shell, and each would rebuild ring and all after
/// it for the other.
#[allow(dead_code)] // only the builds shared with a shell's
pub fn as_from_a_shell(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || name == "CARGO_CRATE_NAME"
            || name == "CARGO_PRIMARY_PACKAGE"
        {
            cmd.env_remove(&key);
        }
    }
    cmd
}
