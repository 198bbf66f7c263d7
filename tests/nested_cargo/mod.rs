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
