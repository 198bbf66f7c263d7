//! The C ABI (`ffi/`), under the root's `cargo test`.
//!
//! The `boxmq-ffi` crate is a workspace member outside `default-members`,
//! so a plain `cargo test` does not build it. These tests do, in a nested
//! `cargo build -p boxmq-ffi` with its own target dir (`target/ffi`), then:
//!
//! * check that `ffi/include/boxmq.h` declares exactly the functions the
//!   crate exports and the same constant values;
//! * run the crate's own unit tests;
//! * compile `ffi/tests/abi.c` with the system `cc` against the header and
//!   `libboxmq.a`, and run it;
//! * compile `examples/c/button_dashboard.c` the same way, run it on a free
//!   port, press the button with `mosquitto_pub`, stop it with SIGINT.
//!
//! Needs `cc` (Debian: `gcc`) and `mosquitto_pub` (`mosquitto-clients`);
//! a missing one fails the test, naming what to install.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

mod nested_cargo;
use nested_cargo::{cargo, manifest_dir, read, require, target_dir};

/// Building the boxmq crate and the ffi crate from scratch (debug).
const BUILD_LIMIT: Duration = Duration::from_secs(600);
const WAIT: Duration = Duration::from_secs(10);
const TOPIC: &str = "shellies/shellybutton1-A4CF12F45A10/input_event/0";
/// What a Rust static library needs from the system on Linux (as
/// `rustc --print native-static-libs` says).
const NATIVE_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// The Rust sources of the ffi crate, concatenated.
fn ffi_sources() -> String {
    let dir = manifest_dir().join("ffi/src");
    let mut names: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("ffi/src")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| fs::read_to_string(p).expect("read an ffi source"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Names of the `#[unsafe(no_mangle)]` functions.
fn exported_functions(src: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut lines = src.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line != "#[unsafe(no_mangle)]" && line != "#[no_mangle]" {
            continue;
        }
        let def = lines.next().unwrap_or_default();
        let name = def
            .split_once("extern \"C\" fn ")
            .and_then(|(_, rest)| rest.split('(').next())
            .unwrap_or_else(|| panic!("no extern \"C\" fn after no_mangle: {def:?}"));
        names.push(name.to_owned());
    }
    names.sort();
    names
}

/// The header without its comments.
fn header_code(header: &str) -> String {
    let mut out = String::new();
    let mut rest = header;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        rest = rest[start..]
            .find("*/")
            .map_or("", |end| &rest[start + end + 2..]);
    }
    out.push_str(rest);
    out
}

/// Names of the functions the header declares: `boxmq_...(` in its code.
fn declared_functions(header: &str) -> Vec<String> {
    let code = header_code(header);
    let mut names: Vec<String> = code
        .match_indices("boxmq_")
        .filter_map(|(at, _)| {
            let tail = &code[at..];
            let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
            tail[end..].starts_with('(').then(|| tail[..end].to_owned())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `BOXMQ_*` integer constants: `pub const X: c_int = V;` in Rust,
/// `#define X V` or `#define X (V)` in the header.
fn rust_constants(src: &str) -> BTreeMap<String, i64> {
    src.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("pub const BOXMQ_")?;
            let (name, value) = rest.split_once(": c_int = ")?;
            let value = value.trim_end_matches(';').parse().ok()?;
            Some((format!("BOXMQ_{name}"), value))
        })
        .collect()
}

fn header_constants(header: &str) -> BTreeMap<String, i64> {
    header_code(header)
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("#define BOXMQ_")?;
            let (name, value) = rest.split_once(' ')?;
            let value = value.trim().trim_start_matches('(').trim_end_matches(')');
            Some((format!("BOXMQ_{name}"), value.parse().ok()?))
        })
        .collect()
}

#[test]
fn the_header_declares_every_exported_function_and_no_other() {
    let exported = exported_functions(&ffi_sources());
    let declared = declared_functions(&read("ffi/include/boxmq.h"));
    assert!(exported.len() >= 15, "too few exports found: {exported:?}");
    let missing: Vec<_> = exported.iter().filter(|n| !declared.contains(n)).collect();
    let extra: Vec<_> = declared.iter().filter(|n| !exported.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "exported by ffi/src but not declared in ffi/include/boxmq.h: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "declared in ffi/include/boxmq.h but not exported by ffi/src: {extra:?}"
    );
}

#[test]
fn the_header_constants_match_the_code() {
    let rust = rust_constants(&ffi_sources());
    let header = header_constants(&read("ffi/include/boxmq.h"));
    assert!(rust.len() >= 20, "too few constants found: {rust:?}");
    assert_eq!(
        rust, header,
        "constants of ffi/src (left) and boxmq.h (right)"
    );
}

/// Builds the ffi crate once for all tests here; the static library.
fn static_lib() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let dir = target_dir("ffi");
        let (status, out) = nested_cargo::run_bounded(
            cargo()
                .args(["build", "-p", "boxmq-ffi", "--target-dir"])
                .arg(&dir),
            BUILD_LIMIT,
            "ffi build",
            &dir,
        );
        assert!(status.success(), "cargo build -p boxmq-ffi failed:\n{out}");
        let lib = dir.join("debug").join("libboxmq.a");
        assert!(lib.exists(), "{} not built", lib.display());
        assert!(dir.join("debug").join("libboxmq.so").exists(), "no cdylib");
        lib
    })
}

#[test]
fn the_ffi_crate_unit_tests_pass() {
    static_lib(); // same target dir: the build is shared
    let dir = target_dir("ffi");
    let (status, out) = nested_cargo::run_bounded(
        cargo()
            .args(["test", "-p", "boxmq-ffi", "--target-dir"])
            .arg(&dir),
        BUILD_LIMIT,
        "ffi unit tests",
        &dir,
    );
    assert!(status.success(), "cargo test -p boxmq-ffi failed:\n{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("test result: ok.") && !l.contains(" 0 passed")),
        "no ffi unit test ran:\n{out}"
    );
}

/// Compiles one C file against the header and the static library.
fn compile_c(source: &str, name: &str) -> PathBuf {
    require("cc", "gcc");
    let lib = static_lib();
    let exe = target_dir("ffi").join(name);
    let out = Command::new("cc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .args(["-D_POSIX_C_SOURCE=200809L", "-I"])
        .arg(manifest_dir().join("ffi/include"))
        .arg(manifest_dir().join(source))
        .arg(lib)
        .args(NATIVE_LIBS)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "cc {source} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

#[test]
fn a_c_program_compiles_against_the_header_and_passes() {
    let exe = compile_c("ffi/tests/abi.c", "abi");
    let out = Command::new(&exe).output().expect("run abi");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "abi.c failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    println!("{stdout}");
}

/// Kills the child if the test fails half-way.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_c_button_dashboard_prints_presses_from_mosquitto_pub() {
    require("mosquitto_pub", "mosquitto-clients");
    let exe = compile_c("examples/c/button_dashboard.c", "button_dashboard");
    let mut child = Reap(
        Command::new(&exe)
            .arg("0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the C example"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = || lines.recv_timeout(WAIT).expect("a line from the C example");

    assert_eq!(next(), "state: Init");
    assert_eq!(next(), "state: Running");
    let listening = next();
    let port = listening
        .strip_prefix("listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected line {listening:?}"))
        .to_owned();
    assert_eq!(next(), "waiting for presses on shellies/+/input_event/0");

    let press = |payload: &str| {
        let status = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port, "-t", TOPIC, "-m", payload])
            .status()
            .expect("mosquitto_pub");
        assert!(status.success());
    };
    press(r#"{"event":"S","event_cnt":3}"#);
    assert_eq!(
        next(),
        "shellybutton1-A4CF12F45A10: short press (S), count 3"
    );
    press(r#"{ "event_cnt" : 7 , "event" : "SS" }"#);
    assert_eq!(
        next(),
        "shellybutton1-A4CF12F45A10: double press (SS), count 7"
    );
    press("not json");
    assert_eq!(next(), format!("{TOPIC}: unreadable event \"not json\""));

    // Ctrl-C, by PID.
    let pid = child.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert_eq!(next(), "state: Stopped");
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "the C example did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}
