//! boxmq on ARM, tested on an x86 machine under qemu-user (docs/GATEWAY.md),
//! with the default features (`tls`, `websockets`, `http`) a user gets.
//!
//! * `aarch64_lib_tests_under_qemu`: `cargo test --target
//!   aarch64-unknown-linux-musl --lib --no-run` (dev profile), then the
//!   library's unit and core tests run under `qemu-aarch64`.
//! * `aarch64_binary_relays_a_shelly_press_over_tcp_and_tls` and
//!   `armv7_binary_relays_a_shelly_press_over_tcp_and_tls`: the `boxmq` of
//!   the `.deb` (profile `release-small`, the static aarch64-musl one and the
//!   armv7 glibc one) under qemu-user with a plain and a TLS listener on free
//!   127.0.0.1 ports; Debian's `mosquitto_pub` sends a Shelly Button1 press
//!   over TLS (`--cafile`), and `mosquitto_sub` receives it over TLS and over
//!   plain TCP; SIGTERM then stops the broker with exit status 0. So ring's
//!   ARM code (AES-GCM or ChaCha20, P-256, SHA-2) runs in the handshake and
//!   the records, in both directions.
//!
//! ring's C code is compiled by Debian's cross gcc (`.cargo/config.toml`
//! names `aarch64-linux-gnu-gcc` for the musl target; `cc` finds
//! `arm-linux-gnueabihf-gcc` by itself).
//!
//! All nested builds share `target/arm-qemu`, their own target dir, so they
//! never wait for the outer `cargo test`'s lock. The relay tests build
//! exactly what `cargo deb --target T` builds (`cargo build --profile
//! release-small --target T --bin boxmq`), and `tests/package.rs` packages
//! the cross targets from the same dir: the two LTO builds per target are
//! paid once per `cargo test`. Every step is bounded.
//!
//! Tools (`.ci/arm-setup.sh` installs them): the rustup targets, qemu-user,
//! the cross gcc, mosquitto-clients, openssl (the test certificates). Without
//! them these tests print a note and pass, except under `CI=true`, where a
//! missing tool fails them.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

mod common;
mod nested_cargo;
use common::certs::Certs;
use common::{MosqSub, mosquitto_pub};
use nested_cargo::tail;

const TOPIC: &str = "shellies/shellybutton1-A4CF12F45A10/input_event/0";
const PAYLOAD: &str = r#"{"event":"S","event_cnt":3}"#;
/// Bound of one nested cargo build (generous: CI shares two cores; a
/// `release-small` cross build with LTO takes one to two minutes there).
const BUILD_LIMIT: Duration = Duration::from_secs(900);
/// Bound of running the aarch64 unit tests under qemu (about 100 s here).
const RUN_LIMIT: Duration = Duration::from_secs(600);
/// The profile of the `.deb` packages (`[package.metadata.deb]`).
const PACKAGE_PROFILE: &str = "release-small";

/// One ARM target: its triple, how qemu-user runs its binaries here, and
/// what its ELF header says.
struct Arm {
    target: &'static str,
    /// The qemu-user command and its arguments, before the binary.
    runner: &'static [&'static str],
    /// ELF `e_machine`: 183 EM_AARCH64, 40 EM_ARM.
    machine: u16,
    /// ELF class: 2 for 64-bit, 1 for 32-bit.
    class: u8,
}

const AARCH64: Arm = Arm {
    target: "aarch64-unknown-linux-musl",
    runner: &["qemu-aarch64"],
    machine: 183,
    class: 2,
};

const ARMV7: Arm = Arm {
    target: "armv7-unknown-linux-gnueabihf",
    runner: &["qemu-arm", "-L", "/usr/arm-linux-gnueabihf"],
    machine: 40,
    class: 1,
};

/// The tests share `target/arm-qemu`; one nested cargo at a time.
static NESTED_CARGO: Mutex<()> = Mutex::new(());

fn target_dir() -> PathBuf {
    nested_cargo::target_dir("arm-qemu")
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

/// True when everything `test` needs for `arm` is here. Otherwise prints a
/// note and returns false, or panics under `CI=true`.
fn have_tools(test: &str, arm: &Arm, tools: &[&str]) -> bool {
    let mut missing: Vec<String> = tools
        .iter()
        .chain(&arm.runner[..1])
        .filter(|t| !on_path(t))
        .map(|t| (*t).to_owned())
        .collect();
    if !nested_cargo::rust_target_installed(arm.target) {
        missing.push(format!("rust target {}", arm.target));
    }
    nested_cargo::tools_or_skip(test, &missing)
}

/// A nested cargo (`tests/nested_cargo`), with the environment of a shell.
fn cargo() -> Command {
    let mut cmd = nested_cargo::cargo();
    nested_cargo::as_from_a_shell(&mut cmd);
    cmd
}

fn run_bounded(cmd: &mut Command, limit: Duration, what: &str) -> (ExitStatus, String) {
    nested_cargo::run_bounded(cmd, limit, what, &target_dir())
}

#[test]
fn aarch64_lib_tests_under_qemu() {
    // The C cross compiler builds ring's C code (feature `tls`).
    if !have_tools(
        "aarch64_lib_tests_under_qemu",
        &AARCH64,
        &["aarch64-linux-gnu-gcc"],
    ) {
        return;
    }
    let td = target_dir();
    let (status, out) = {
        let _lock = NESTED_CARGO.lock().unwrap_or_else(|e| e.into_inner());
        run_bounded(
            cargo()
                .args(["test", "--no-run", "--lib", "--target", AARCH64.target])
                .arg("--target-dir")
                .arg(&td),
            BUILD_LIMIT,
            "build aarch64 lib tests",
        )
    };
    assert!(
        status.success(),
        "building the aarch64 lib tests failed:\n{out}"
    );
    // "Executable unittests src/lib.rs (target/arm-qemu/.../deps/boxmq-HASH)":
    // run it under qemu directly, so the relay tests' builds need not wait
    // for cargo's lock while the unit tests run.
    let exe = out
        .lines()
        .find_map(|l| {
            let rest = l.trim().strip_prefix("Executable unittests src/lib.rs (")?;
            rest.strip_suffix(')')
        })
        .unwrap_or_else(|| panic!("no lib test executable named in:\n{out}"));
    let exe = nested_cargo::manifest_dir().join(exe);
    assert!(
        elf_is(&exe, &AARCH64),
        "{} is not an aarch64 ELF",
        exe.display()
    );
    let (status, out) = run_bounded(
        Command::new(AARCH64.runner[0]).arg(&exe),
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

/// Waits for `count` lines `listening on 127.0.0.1:PORT` in the broker's
/// log; returns their ports in the order of the config's listeners.
fn wait_for_ports(broker: &mut Broker, log: &Path, count: usize) -> Vec<u16> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        let ports: Vec<u16> = text
            .split("listening on 127.0.0.1:")
            .skip(1)
            .filter_map(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .collect();
        if ports.len() >= count {
            return ports;
        }
        if let Some(status) = broker.0.try_wait().ok().flatten() {
            panic!("boxmq under qemu exited early ({status}):\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "boxmq under qemu did not listen within 60 s:\n{text}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// True when `path` is a little-endian ELF of `arm`'s class and machine.
fn elf_is(path: &Path, arm: &Arm) -> bool {
    let mut header = [0u8; 20];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok()
        && header.starts_with(b"\x7fELF")
        && header[4] == arm.class
        // EI_DATA 1: little endian
        && header[5] == 1
        && header[18..20] == arm.machine.to_le_bytes()
}

/// Builds the packaged `boxmq` for `arm` (what `cargo deb --target` builds,
/// into the dir `tests/package.rs` packages from); runs it under qemu with
/// a plain and a TLS listener; relays a Shelly press through it, published
/// over TLS, received over TLS and over TCP; stops it with SIGTERM.
fn relays_a_shelly_press_over_tcp_and_tls(test: &str, arm: &Arm, cc: &str) {
    let tools = ["mosquitto_pub", "mosquitto_sub", "openssl", cc];
    if !have_tools(test, arm, &tools) {
        return;
    }
    let td = target_dir();
    {
        let _lock = NESTED_CARGO.lock().unwrap_or_else(|e| e.into_inner());
        let (status, out) = run_bounded(
            cargo()
                .args([
                    "build",
                    "--profile",
                    PACKAGE_PROFILE,
                    "--target",
                    arm.target,
                ])
                .args(["--bin", "boxmq", "--target-dir"])
                .arg(&td),
            BUILD_LIMIT,
            &format!("build {} boxmq", arm.target),
        );
        assert!(
            status.success(),
            "building {} boxmq failed:\n{out}",
            arm.target
        );
    }
    let bin = td.join(arm.target).join(PACKAGE_PROFILE).join("boxmq");
    assert!(
        elf_is(&bin, arm),
        "{} is not an ELF for {}",
        bin.display(),
        arm.target
    );

    let certs = Certs::generate();
    let dir = td.join(format!("smoke-{}-{}", arm.target, std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("boxmq.conf");
    fs::write(
        &conf,
        format!(
            "persistence false\nmax_connections 64\n\
             listener 0 127.0.0.1\n\
             listener 0 127.0.0.1\ncertfile {}\nkeyfile {}\n",
            certs.path("server.crt"),
            certs.path("server.key")
        ),
    )
    .unwrap();
    let log = dir.join("boxmq.log");
    let mut broker = Broker(
        Command::new(arm.runner[0])
            .args(&arm.runner[1..])
            .arg(&bin)
            .arg("--config")
            .arg(&conf)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", arm.runner[0])),
    );
    let ports = wait_for_ports(&mut broker, &log, 2);
    let (plain, tls) = (ports[0], ports[1]);

    // Each subscriber has its SUBACK before the press is sent (MosqSub).
    let ca = certs.path("ca.crt");
    let sub_args = ["-q", "1", "-v", "-C", "1", "-W", "60"];
    let filter = ["-t", "shellies/+/input_event/0"];
    let tls_sub = MosqSub::start(tls, &[&sub_args[..], &filter, &["--cafile", &ca]].concat());
    let plain_sub = MosqSub::start(plain, &[&sub_args[..], &filter].concat());
    mosquitto_pub(
        tls,
        &["-q", "1", "-t", TOPIC, "-m", PAYLOAD, "--cafile", &ca],
    );
    let expected = [format!("{TOPIC} {PAYLOAD}")];
    for (name, sub) in [("TLS", tls_sub), ("TCP", plain_sub)] {
        let out = sub.finish(Duration::from_secs(60));
        assert_eq!(
            out.messages,
            expected,
            "{name} subscriber on {}:\n{}\nbroker log:\n{}",
            arm.target,
            out.raw,
            tail(&log)
        );
        assert!(out.status.is_some_and(|s| s.success()), "{}", out.raw);
    }

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

#[test]
fn aarch64_binary_relays_a_shelly_press_over_tcp_and_tls() {
    relays_a_shelly_press_over_tcp_and_tls(
        "aarch64_binary_relays_a_shelly_press_over_tcp_and_tls",
        &AARCH64,
        "aarch64-linux-gnu-gcc",
    );
}

#[test]
fn armv7_binary_relays_a_shelly_press_over_tcp_and_tls() {
    relays_a_shelly_press_over_tcp_and_tls(
        "armv7_binary_relays_a_shelly_press_over_tcp_and_tls",
        &ARMV7,
        "arm-linux-gnueabihf-gcc",
    );
}
