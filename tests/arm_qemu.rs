//! boxmq on ARM, tested on an x86 machine under qemu-user (docs/GATEWAY.md).
//!
//! * `aarch64_lib_tests_under_qemu`: `cargo test --target
//!   aarch64-unknown-linux-musl --lib`, the library's unit and core tests
//!   built for aarch64 and run by the `qemu-aarch64` runner of
//!   `.cargo/config.toml`.
//! * `aarch64_binary_relays_a_shelly_press`: the static aarch64 `boxmq`
//!   under `qemu-aarch64` on a free 127.0.0.1 port; Debian's
//!   `mosquitto_sub`/`mosquitto_pub` exchange a Shelly Button1 message
//!   through it; SIGTERM stops it with exit status 0.
//!
//! The builds are `--no-default-features`: the default `tls` feature
//! needs ring's C code built for aarch64 musl, and the tools here have no
//! C cross compiler for it (the listeners' TLS on ARM is not covered by
//! this test).
//!
//! The nested builds use the dev profile (the release profile's LTO costs
//! minutes on two cores) in their own target dir, `target/arm-qemu`, so they
//! never wait for the outer `cargo test`'s lock. Every step is bounded.
//!
//! Tools (`.ci/arm-setup.sh` installs them): the rustup target, qemu-user,
//! mosquitto-clients. Without them these tests print a note and pass, except
//! under `CI=true`, where a missing tool fails them.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

mod nested_cargo;
use nested_cargo::{cargo, tail};

const AARCH64: &str = "aarch64-unknown-linux-musl";
const TOPIC: &str = "shellies/shellybutton1-A4CF12F45A10/input_event/0";
const PAYLOAD: &str = r#"{"event":"S","event_cnt":3}"#;
/// Bound of one nested cargo build (generous: CI shares two cores).
const BUILD_LIMIT: Duration = Duration::from_secs(900);
/// Bound of running the aarch64 unit tests under qemu (about 40 s here).
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// The two tests share `target/arm-qemu`; one nested cargo at a time.
static NESTED_CARGO: Mutex<()> = Mutex::new(());

fn target_dir() -> PathBuf {
    nested_cargo::target_dir("arm-qemu")
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

fn rust_target_installed(target: &str) -> bool {
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

/// True when everything `test` needs is here. Otherwise prints a note and
/// returns false, or panics under `CI=true`.
fn have_tools(test: &str, tools: &[&str]) -> bool {
    let mut missing: Vec<String> = tools
        .iter()
        .filter(|t| !on_path(t))
        .map(|t| (*t).to_owned())
        .collect();
    if !rust_target_installed(AARCH64) {
        missing.push(format!("rust target {AARCH64}"));
    }
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

fn run_bounded(cmd: &mut Command, limit: Duration, what: &str) -> (ExitStatus, String) {
    nested_cargo::run_bounded(cmd, limit, what, &target_dir())
}

#[test]
fn aarch64_lib_tests_under_qemu() {
    if !have_tools("aarch64_lib_tests_under_qemu", &["qemu-aarch64"]) {
        return;
    }
    let _lock = NESTED_CARGO.lock().unwrap_or_else(|e| e.into_inner());
    let td = target_dir();
    let (status, out) = run_bounded(
        cargo()
            .args([
                "test",
                "--no-run",
                "--no-default-features",
                "--lib",
                "--target",
                AARCH64,
                "--target-dir",
            ])
            .arg(&td),
        BUILD_LIMIT,
        "build aarch64 lib tests",
    );
    assert!(
        status.success(),
        "building the aarch64 lib tests failed:\n{out}"
    );
    let (status, out) = run_bounded(
        cargo()
            .args([
                "test",
                "--no-default-features",
                "--lib",
                "--target",
                AARCH64,
                "--target-dir",
            ])
            .arg(&td),
        RUN_LIMIT,
        "run aarch64 lib tests under qemu",
    );
    assert!(
        status.success(),
        "aarch64 lib tests under qemu failed:\n{out}"
    );
    let summary = out
        .lines()
        .find(|l| l.starts_with("test result: ok."))
        .unwrap_or_else(|| panic!("no test summary in:\n{out}"));
    println!("aarch64 under qemu: {summary}");
    assert!(
        !summary.contains(" 0 passed"),
        "no test ran under qemu: {summary}"
    );
}

/// Kills the broker if the test fails half-way.
struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits for `listening on 127.0.0.1:PORT` in the broker's log.
fn wait_for_port(broker: &mut Broker, log: &Path) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if let Some(rest) = text.split("listening on 127.0.0.1:").nth(1) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            return digits.parse().unwrap();
        }
        if let Some(status) = broker.0.try_wait().unwrap() {
            panic!("boxmq under qemu exited early ({status}):\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "boxmq under qemu did not listen within 60 s:\n{text}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

fn is_aarch64_elf(path: &Path) -> bool {
    let mut header = [0u8; 20];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok()
        && header.starts_with(b"\x7fELF")
        // e_machine (little endian) 183 = EM_AARCH64
        && header[18..20] == [183, 0]
}

#[test]
fn aarch64_binary_relays_a_shelly_press() {
    let tools = ["qemu-aarch64", "mosquitto_pub", "mosquitto_sub"];
    if !have_tools("aarch64_binary_relays_a_shelly_press", &tools) {
        return;
    }
    let td = target_dir();
    {
        let _lock = NESTED_CARGO.lock().unwrap_or_else(|e| e.into_inner());
        let (status, out) = run_bounded(
            cargo()
                .args([
                    "build",
                    "--no-default-features",
                    "--bin",
                    "boxmq",
                    "--target",
                    AARCH64,
                    "--target-dir",
                ])
                .arg(&td),
            BUILD_LIMIT,
            "build aarch64 boxmq",
        );
        assert!(status.success(), "building aarch64 boxmq failed:\n{out}");
    }
    let bin = td.join(AARCH64).join("debug").join("boxmq");
    assert!(
        is_aarch64_elf(&bin),
        "{} is not an aarch64 ELF",
        bin.display()
    );

    let dir = td.join(format!("smoke-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("boxmq.conf");
    fs::write(
        &conf,
        "listener 0 127.0.0.1\nmax_connections 64\npersistence false\n",
    )
    .unwrap();
    let log = dir.join("boxmq.log");
    let mut broker = Broker(
        Command::new("qemu-aarch64")
            .arg(&bin)
            .arg("--config")
            .arg(&conf)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("start qemu-aarch64"),
    );
    let port = wait_for_port(&mut broker, &log).to_string();

    let sub = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port, "-q", "1", "-v", "-C", "1"])
        .args(["-W", "60", "-t", "shellies/+/input_event/0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mosquitto_sub");
    let sub_pid = sub.id();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(sub.wait_with_output());
    });
    // QoS 1, not retained: a press sent before the subscription is in place
    // is lost, so press again until the subscriber has one (bounded).
    let mut received = None;
    for _ in 0..60 {
        let status = Command::new("timeout")
            .args([
                "20",
                "mosquitto_pub",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-q",
                "1",
            ])
            .args(["-t", TOPIC, "-m", PAYLOAD])
            .status()
            .expect("run mosquitto_pub");
        assert!(status.success(), "mosquitto_pub failed: {status}");
        if let Ok(out) = rx.recv_timeout(Duration::from_millis(500)) {
            received = Some(out.expect("mosquitto_sub output"));
            break;
        }
    }
    let Some(out) = received else {
        let _ = Command::new("kill").arg(sub_pid.to_string()).status();
        panic!(
            "mosquitto_sub got nothing within 60 presses; broker log:\n{}",
            tail(&log)
        );
    };
    assert!(out.status.success(), "mosquitto_sub: {out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{TOPIC} {PAYLOAD}\n")
    );

    // SIGTERM: graceful stop, exit status 0.
    let status = Command::new("kill")
        .args(["-TERM", &broker.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = broker.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "boxmq under qemu did not stop within 30 s of SIGTERM:\n{}",
            tail(&log)
        );
        thread::sleep(Duration::from_millis(50));
    };
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "exit status {status} after SIGTERM:\n{text}"
    );
    assert!(text.contains("signal 15 received"), "{text}");
    let _ = fs::remove_dir_all(&dir);
}
