//! Shared harness for the boxmq end-to-end tests.
//!
//! Every test starts its own broker on a free loopback port, so the tests run
//! in parallel. By default the broker is the `boxmq` binary of this crate;
//! with `BOXMQ_TEST_BROKER=mosquitto` it is `/usr/sbin/mosquitto` (the
//! reference the suite is validated against).
//!
//! Pieces:
//! - [`TestBroker`]: start/stop a broker, its log captured to a temp file and
//!   printed when the test panics.
//! - [`run_with_timeout`], [`mosquitto_pub`], [`MosqSub`]: the mosquitto
//!   command line clients, always bounded in time.
//! - [`run_paho`]: run `tests/paho/<script>.py <port> [args]`.
//! - [`RawClient`] and [`frame`]: hand-built MQTT 3.1.1 frames over a plain
//!   `TcpStream`, independent of the crate's own codec.

#![allow(dead_code)]

pub mod bridge;
pub mod certs;
pub mod flood;

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The only address the suite ever uses.
pub const HOST: &str = "127.0.0.1";

/// Default bound for waiting on one packet.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique within this test process (for client ids and temp dirs).
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

// ---------------------------------------------------------------------------
// Which broker
// ---------------------------------------------------------------------------

/// The broker implementation under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerKind {
    /// This crate's binary (the default).
    Boxmq,
    /// Eclipse Mosquitto, selected with `BOXMQ_TEST_BROKER=mosquitto`.
    Mosquitto,
}

/// Reads `BOXMQ_TEST_BROKER` (unset, `boxmq` or `mosquitto`).
pub fn broker_kind() -> BrokerKind {
    match std::env::var("BOXMQ_TEST_BROKER") {
        Err(_) => BrokerKind::Boxmq,
        Ok(v) if v.is_empty() || v.eq_ignore_ascii_case("boxmq") => BrokerKind::Boxmq,
        Ok(v) if v.eq_ignore_ascii_case("mosquitto") => BrokerKind::Mosquitto,
        Ok(v) => panic!("BOXMQ_TEST_BROKER={v:?}: expected `boxmq` or `mosquitto`"),
    }
}

/// True when the suite runs against Mosquitto.
pub fn is_mosquitto() -> bool {
    broker_kind() == BrokerKind::Mosquitto
}

/// For tests of behaviour where boxmq deliberately differs from Mosquitto:
/// returns true (and prints a note) when the test must be skipped.
pub fn skip_unless_boxmq(test: &str, why: &str) -> bool {
    if broker_kind() == BrokerKind::Boxmq {
        return false;
    }
    println!(
        "NOTE: {test} is boxmq-only, skipped under {:?}: {why}",
        broker_kind()
    );
    true
}

// ---------------------------------------------------------------------------
// Temp dirs
// ---------------------------------------------------------------------------

/// A directory under the system temp dir, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!("boxmq-e2e-{}-{nanos}", unique(prefix)));
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------
// Broker process
// ---------------------------------------------------------------------------

/// A broker started for one test. Dropping it kills and reaps the process
/// (only this child, by its handle); if the test is panicking, the broker's
/// log is printed first.
pub struct TestBroker {
    pub port: u16,
    pub kind: BrokerKind,
    child: Option<Child>,
    log_path: PathBuf,
    _dir: Option<TempDir>,
}

/// A port that was free a moment ago: bind 127.0.0.1:0, read it, drop.
pub fn free_port() -> u16 {
    let l = TcpListener::bind((HOST, 0)).expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

impl TestBroker {
    /// Starts a broker with default settings.
    pub fn start() -> TestBroker {
        TestBroker::start_with_config(&[])
    }

    /// Starts a broker with extra configuration lines (mosquitto.conf style,
    /// e.g. `max_connections 3`), given to boxmq with `--config FILE` and
    /// appended to the generated mosquitto.conf for Mosquitto.
    pub fn start_with_config(lines: &[&str]) -> TestBroker {
        let kind = broker_kind();
        let dir = TempDir::new("broker");
        let mut failures = String::new();
        for attempt in 0..5 {
            let port = free_port();
            let log_path = dir.path().join(format!("broker-{attempt}.log"));
            let log = File::create(&log_path).expect("create broker log");
            let log2 = log.try_clone().expect("clone log handle");
            let mut cmd = match kind {
                BrokerKind::Boxmq => {
                    let mut c = Command::new(env!("CARGO_BIN_EXE_boxmq"));
                    c.arg("--listen").arg(format!("{HOST}:{port}"));
                    // The binary persists by default; tests do not, unless
                    // a line says otherwise (the last one wins). Parallel
                    // tests then never share a data directory.
                    let conf = dir.path().join(format!("boxmq-{attempt}.conf"));
                    let text = format!("persistence false\n{}\n", lines.join("\n"));
                    fs::write(&conf, text).expect("write boxmq config");
                    c.arg("--config").arg(&conf);
                    let level = std::env::var("RUST_LOG").unwrap_or_else(|_| "debug".into());
                    c.env("RUST_LOG", level);
                    c
                }
                BrokerKind::Mosquitto => {
                    let conf = dir.path().join(format!("mosquitto-{attempt}.conf"));
                    let mut text = format!(
                        "listener {port} {HOST}\nallow_anonymous true\npersistence false\n\
                         log_dest stderr\nlog_type all\n"
                    );
                    for l in lines {
                        text.push_str(l);
                        text.push('\n');
                    }
                    fs::write(&conf, text).expect("write mosquitto config");
                    let mut c = Command::new(mosquitto_bin());
                    c.arg("-c").arg(&conf);
                    c
                }
            };
            cmd.stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(log2));
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {kind:?} broker: {e}"));
            let mut broker = TestBroker {
                port,
                kind,
                child: Some(child),
                log_path,
                _dir: None,
            };
            match broker.wait_ready(Duration::from_secs(10)) {
                Ok(()) => {
                    broker._dir = Some(dir);
                    return broker;
                }
                Err(e) => {
                    broker.kill();
                    failures.push_str(&format!(
                        "attempt {attempt} on port {port}: {e}\n--- broker log ---\n{}\n",
                        broker.log()
                    ));
                }
            }
        }
        panic!("could not start the {kind:?} broker:\n{failures}");
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let addr: SocketAddr = format!("{HOST}:{}", self.port).parse().unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                return Err(format!("broker exited early with {status}"));
            }
            if self.kind == BrokerKind::Mosquitto {
                // Mosquitto 2.0.11 miscounts a connection closed before its
                // CONNECT (max_connections then admits one client too many),
                // so wait for its "running" log line instead of probing.
                if self.log().contains(" running") {
                    return Ok(());
                }
            } else if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                drop(s);
                // The port might have been taken by someone else; make sure
                // our broker is still alive.
                thread::sleep(Duration::from_millis(20));
                if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                    return Err(format!("broker exited early with {status}"));
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("port {} not accepting after {limit:?}", self.port));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The broker's stdout+stderr so far.
    pub fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("<cannot read {}: {e}>", self.log_path.display()))
    }

    /// The broker's log once `done` holds for it, or as it is after
    /// `limit`: a line about a client that just went may still be on its
    /// way when the client's process has ended.
    #[allow(dead_code)] // not every test binary reads the log this way
    pub fn log_when(&self, limit: Duration, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let log = self.log();
            if done(&log) || Instant::now() >= deadline {
                return log;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The broker's process id, to send it signals.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the broker process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let crashed = match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(status))) => Some(status),
            _ => None,
        };
        self.kill();
        if thread::panicking() || crashed.is_some() {
            eprintln!(
                "===== {:?} broker log (port {}, exited early: {:?}) =====\n{}\n===== end of broker log =====",
                self.kind,
                self.port,
                crashed,
                self.log()
            );
        }
        if let Some(status) = crashed {
            if !thread::panicking() {
                panic!("the broker exited during the test with {status}");
            }
        }
    }
}

fn mosquitto_bin() -> &'static str {
    if Path::new("/usr/sbin/mosquitto").exists() {
        "/usr/sbin/mosquitto"
    } else {
        "mosquitto"
    }
}

// ---------------------------------------------------------------------------
// Subprocesses with deadlines
// ---------------------------------------------------------------------------

/// What a bounded subprocess did.
#[derive(Debug)]
pub struct CmdOutput {
    /// `None` when it had to be killed at the deadline.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub what: String,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        matches!(self.status, Some(s) if s.success())
    }

    /// Panics with the whole output unless the command exited 0.
    pub fn assert_success(&self) -> &CmdOutput {
        assert!(self.success(), "command failed: {self}");
        self
    }
}

impl std::fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n  status: {:?} (timed out: {})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.status, self.timed_out, self.stdout, self.stderr
        )
    }
}

fn reader_thread<R: Read + Send + 'static>(mut r: R) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Waits for `child` until `deadline`, killing it if it is still running.
fn wait_with_deadline(child: &mut Child, deadline: Instant) -> (Option<ExitStatus>, bool) {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return (Some(status), false),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return (None, true);
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("waiting for child: {e}"),
        }
    }
}

/// Runs `cmd` (stdin closed, output captured); kills it after `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> CmdOutput {
    let what = describe(cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn `{what}`: {e}"));
    let out = reader_thread(child.stdout.take().unwrap());
    let err = reader_thread(child.stderr.take().unwrap());
    let (status, timed_out) = wait_with_deadline(&mut child, Instant::now() + timeout);
    CmdOutput {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        timed_out,
        what,
    }
}

/// `mosquitto_pub -h 127.0.0.1 -p PORT ARGS...`, bounded to 10 s; must exit 0.
pub fn mosquitto_pub(port: u16, args: &[&str]) -> CmdOutput {
    let out = try_mosquitto_pub(port, args);
    out.assert_success();
    out
}

/// Like [`mosquitto_pub`] without the success check.
pub fn try_mosquitto_pub(port: u16, args: &[&str]) -> CmdOutput {
    let mut cmd = Command::new("mosquitto_pub");
    cmd.arg("-h").arg(HOST).arg("-p").arg(port.to_string());
    cmd.args(args);
    run_with_timeout(&mut cmd, Duration::from_secs(10))
}

/// A running `mosquitto_sub`, started with `-d` so the harness can wait for
/// its SUBACK before anything is published. Give it `-C count -W seconds` so
/// it exits by itself; [`MosqSub::finish`] collects the message lines (the
/// debug lines are filtered out). Dropping it kills the process.
pub struct MosqSub {
    child: Option<Child>,
    id: String,
    what: String,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stdout: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
}

/// What a finished [`MosqSub`] printed.
#[derive(Debug)]
pub struct SubOutput {
    /// Message lines (with `-v`: "topic payload"), debug lines removed.
    pub messages: Vec<String>,
    pub status: Option<ExitStatus>,
    pub timed_out: bool,
    /// Everything printed, for failure messages.
    pub raw: String,
}

impl MosqSub {
    /// Starts `mosquitto_sub -h 127.0.0.1 -p PORT -i <unique id> -d ARGS...`
    /// and waits (up to 5 s) until every subscription is acknowledged.
    pub fn start(port: u16, args: &[&str]) -> MosqSub {
        let id = unique("msub");
        // mosquitto_sub block-buffers stdout into a pipe; line-buffer it so
        // the SUBACK line arrives now (stdbuf execs, so the pid stays ours).
        let mut cmd = if Path::new("/usr/bin/stdbuf").exists() {
            let mut c = Command::new("/usr/bin/stdbuf");
            c.arg("-oL").arg("mosquitto_sub");
            c
        } else {
            Command::new("mosquitto_sub")
        };
        cmd.arg("-h")
            .arg(HOST)
            .arg("-p")
            .arg(port.to_string())
            .arg("-i")
            .arg(&id)
            .arg("-d")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let what = describe(&cmd);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn `{what}`: {e}"));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let out_thread = thread::spawn(move || {
            let mut r = io::BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match io::BufRead::read_line(&mut r, &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let l = line.trim_end_matches(['\n', '\r']).to_string();
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let err_thread = reader_thread(child.stderr.take().unwrap());
        let mut sub = MosqSub {
            child: Some(child),
            id,
            what,
            lines: rx,
            seen: Vec::new(),
            stdout: Some(out_thread),
            stderr: Some(err_thread),
        };
        // All `-t` filters go in one SUBSCRIBE; its SUBACK prints one
        // "Subscribed (mid: N): q, ..." line.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match sub.lines.recv_timeout(left) {
                Ok(l) => {
                    let done = l.starts_with("Subscribed (mid");
                    sub.seen.push(l);
                    if done {
                        break;
                    }
                }
                Err(_) => {
                    let out = sub.finish(Duration::from_millis(10));
                    panic!(
                        "mosquitto_sub did not get its SUBACK within 5 s:\n{}",
                        out.raw
                    );
                }
            }
        }
        sub
    }

    /// Waits for the process to exit (it should, via `-C`/`-W`), killing it
    /// after `timeout`, and returns what it printed.
    pub fn finish(mut self, timeout: Duration) -> SubOutput {
        let mut child = self.child.take().unwrap();
        let (status, timed_out) = wait_with_deadline(&mut child, Instant::now() + timeout);
        if let Some(h) = self.stdout.take() {
            let _ = h.join();
        }
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
        let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default());
        let prefix = format!("Client {} ", self.id);
        let messages = self
            .seen
            .iter()
            .filter(|l| !l.starts_with(&prefix) && !l.starts_with("Subscribed (mid"))
            .cloned()
            .collect();
        let raw = format!(
            "{}\nstatus {:?} timed out {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            status,
            timed_out,
            self.seen.join("\n"),
            stderr.unwrap_or_default()
        );
        SubOutput {
            messages,
            status,
            timed_out,
            raw,
        }
    }
}

impl Drop for MosqSub {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `python3 tests/paho/<script>.py PORT ARGS...` (bounded to 60 s) and
/// panics with its output unless it exits 0.
pub fn run_paho(script: &str, port: u16, args: &[&str]) -> CmdOutput {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("paho")
        .join(format!("{script}.py"));
    assert!(path.exists(), "missing paho script {}", path.display());
    let mut cmd = Command::new("python3");
    cmd.arg(&path).arg(port.to_string()).args(args);
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
    println!("{out}");
    assert!(out.success(), "paho script failed: {out}");
    out
}

// ---------------------------------------------------------------------------
// Hand-built MQTT 3.1.1 frames
// ---------------------------------------------------------------------------

/// Packet type numbers (upper nibble of the first byte).
pub mod ptype {
    pub const CONNECT: u8 = 1;
    pub const CONNACK: u8 = 2;
    pub const PUBLISH: u8 = 3;
    pub const PUBACK: u8 = 4;
    pub const PUBREC: u8 = 5;
    pub const PUBREL: u8 = 6;
    pub const PUBCOMP: u8 = 7;
    pub const SUBSCRIBE: u8 = 8;
    pub const SUBACK: u8 = 9;
    pub const UNSUBSCRIBE: u8 = 10;
    pub const UNSUBACK: u8 = 11;
    pub const PINGREQ: u8 = 12;
    pub const PINGRESP: u8 = 13;
    pub const DISCONNECT: u8 = 14;

    pub fn name(t: u8) -> &'static str {
        match t {
            CONNECT => "CONNECT",
            CONNACK => "CONNACK",
            PUBLISH => "PUBLISH",
            PUBACK => "PUBACK",
            PUBREC => "PUBREC",
            PUBREL => "PUBREL",
            PUBCOMP => "PUBCOMP",
            SUBSCRIBE => "SUBSCRIBE",
            SUBACK => "SUBACK",
            UNSUBSCRIBE => "UNSUBSCRIBE",
            UNSUBACK => "UNSUBACK",
            PINGREQ => "PINGREQ",
            PINGRESP => "PINGRESP",
            DISCONNECT => "DISCONNECT",
            _ => "RESERVED",
        }
    }
}

/// A will message in a CONNECT.
#[derive(Clone, Debug)]
pub struct Will {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
}

/// The fields of a CONNECT packet; defaults: MQTT 3.1.1, clean session,
/// keepalive 60, no will, no credentials.
#[derive(Clone, Debug)]
pub struct ConnectOpts {
    pub client_id: String,
    pub clean_session: bool,
    pub keepalive: u16,
    pub will: Option<Will>,
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
    pub protocol_name: String,
    pub protocol_level: u8,
    /// Sets the reserved bit 0 of the connect flags (a protocol violation).
    pub reserved_flag: bool,
}

impl ConnectOpts {
    pub fn new(client_id: &str) -> ConnectOpts {
        ConnectOpts {
            client_id: client_id.to_string(),
            clean_session: true,
            keepalive: 60,
            will: None,
            username: None,
            password: None,
            protocol_name: "MQTT".into(),
            protocol_level: 4,
            reserved_flag: false,
        }
    }

    pub fn clean(mut self, clean: bool) -> Self {
        self.clean_session = clean;
        self
    }

    pub fn keepalive(mut self, secs: u16) -> Self {
        self.keepalive = secs;
        self
    }

    pub fn will(mut self, topic: &str, payload: &[u8], qos: u8, retain: bool) -> Self {
        self.will = Some(Will {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain,
        });
        self
    }

    /// MQTT 3.1: protocol name `MQIsdp`, level 3.
    pub fn v31(mut self) -> Self {
        self.protocol_name = "MQIsdp".into();
        self.protocol_level = 3;
        self
    }

    pub fn level(mut self, level: u8) -> Self {
        self.protocol_level = level;
        self
    }
}

/// Frame builders. Nothing here validates: tests use them to build
/// malformed packets too.
pub mod frame {
    use super::ConnectOpts;

    /// The variable-length "remaining length" encoding (MQTT 3.1.1 §2.2.3).
    pub fn remaining_length(mut n: usize) -> Vec<u8> {
        assert!(n <= 268_435_455, "remaining length too large");
        let mut out = Vec::new();
        loop {
            let mut b = (n % 128) as u8;
            n /= 128;
            if n > 0 {
                b |= 0x80;
            }
            out.push(b);
            if n == 0 {
                return out;
            }
        }
    }

    /// First byte, remaining length, body.
    pub fn packet(first: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        out.extend(remaining_length(body.len()));
        out.extend_from_slice(body);
        out
    }

    /// A length-prefixed string (bytes, so tests can send invalid UTF-8).
    pub fn string(s: &[u8]) -> Vec<u8> {
        assert!(s.len() <= 0xFFFF);
        let mut out = (s.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(s);
        out
    }

    pub fn connect(o: &ConnectOpts) -> Vec<u8> {
        let mut flags = 0u8;
        if o.reserved_flag {
            flags |= 0x01;
        }
        if o.clean_session {
            flags |= 0x02;
        }
        if let Some(w) = &o.will {
            flags |= 0x04 | (w.qos & 3) << 3;
            if w.retain {
                flags |= 0x20;
            }
        }
        if o.password.is_some() {
            flags |= 0x40;
        }
        if o.username.is_some() {
            flags |= 0x80;
        }
        let mut body = string(o.protocol_name.as_bytes());
        body.push(o.protocol_level);
        body.push(flags);
        body.extend(o.keepalive.to_be_bytes());
        body.extend(string(o.client_id.as_bytes()));
        if let Some(w) = &o.will {
            body.extend(string(w.topic.as_bytes()));
            body.extend(string(&w.payload));
        }
        if let Some(u) = &o.username {
            body.extend(string(u.as_bytes()));
        }
        if let Some(p) = &o.password {
            body.extend(string(p));
        }
        packet(0x10, &body)
    }

    /// PUBLISH with raw header flags and topic bytes (for malformed cases).
    /// The packet id is written only when `qos_bits` (flags >> 1 & 3) > 0.
    pub fn publish_raw(flags: u8, topic: &[u8], packet_id: u16, payload: &[u8]) -> Vec<u8> {
        let mut body = string(topic);
        if (flags >> 1) & 3 > 0 {
            body.extend(packet_id.to_be_bytes());
        }
        body.extend_from_slice(payload);
        packet(0x30 | (flags & 0x0F), &body)
    }

    pub fn publish(
        topic: &str,
        payload: &[u8],
        qos: u8,
        retain: bool,
        dup: bool,
        packet_id: u16,
    ) -> Vec<u8> {
        let flags = (u8::from(dup) << 3) | (qos << 1) | u8::from(retain);
        publish_raw(flags, topic.as_bytes(), packet_id, payload)
    }

    fn ack(first: u8, packet_id: u16) -> Vec<u8> {
        packet(first, &packet_id.to_be_bytes())
    }

    pub fn puback(packet_id: u16) -> Vec<u8> {
        ack(0x40, packet_id)
    }

    pub fn pubrec(packet_id: u16) -> Vec<u8> {
        ack(0x50, packet_id)
    }

    /// PUBREL has the reserved flags 0b0010 [MQTT-3.6.1-1].
    pub fn pubrel(packet_id: u16) -> Vec<u8> {
        ack(0x62, packet_id)
    }

    pub fn pubcomp(packet_id: u16) -> Vec<u8> {
        ack(0x70, packet_id)
    }

    /// SUBSCRIBE with explicit first byte (correct: 0x82).
    pub fn subscribe_with_header(first: u8, packet_id: u16, filters: &[(&str, u8)]) -> Vec<u8> {
        let mut body = packet_id.to_be_bytes().to_vec();
        for (f, q) in filters {
            body.extend(string(f.as_bytes()));
            body.push(*q);
        }
        packet(first, &body)
    }

    pub fn subscribe(packet_id: u16, filters: &[(&str, u8)]) -> Vec<u8> {
        subscribe_with_header(0x82, packet_id, filters)
    }

    pub fn unsubscribe(packet_id: u16, filters: &[&str]) -> Vec<u8> {
        let mut body = packet_id.to_be_bytes().to_vec();
        for f in filters {
            body.extend(string(f.as_bytes()));
        }
        packet(0xA2, &body)
    }

    pub fn pingreq() -> Vec<u8> {
        vec![0xC0, 0x00]
    }

    pub fn disconnect() -> Vec<u8> {
        vec![0xE0, 0x00]
    }
}

/// One frame read back from the broker.
#[derive(Clone, PartialEq, Eq)]
pub struct Packet {
    pub first: u8,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Packet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}(flags {:#06b}, {} bytes: {:02x?})",
            ptype::name(self.ptype()),
            self.flags(),
            self.body.len(),
            &self.body[..self.body.len().min(64)]
        )
    }
}

/// A decoded PUBLISH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub dup: bool,
    pub retain: bool,
    pub packet_id: Option<u16>,
}

impl Publish {
    pub fn payload_str(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

impl Packet {
    pub fn ptype(&self) -> u8 {
        self.first >> 4
    }

    pub fn flags(&self) -> u8 {
        self.first & 0x0F
    }

    /// QoS bits of the fixed header (meaningful for PUBLISH).
    pub fn qos(&self) -> u8 {
        (self.first >> 1) & 3
    }

    pub fn dup(&self) -> bool {
        self.first & 0x08 != 0
    }

    pub fn retain(&self) -> bool {
        self.first & 0x01 != 0
    }

    /// The packet id at the start of the variable header (acks, SUBACK,
    /// UNSUBACK).
    pub fn packet_id(&self) -> u16 {
        assert!(self.body.len() >= 2, "no packet id in {self:?}");
        u16::from_be_bytes([self.body[0], self.body[1]])
    }

    pub fn publish(&self) -> Publish {
        assert_eq!(self.ptype(), ptype::PUBLISH, "not a PUBLISH: {self:?}");
        let b = &self.body;
        assert!(b.len() >= 2, "short PUBLISH {self:?}");
        let tlen = usize::from(u16::from_be_bytes([b[0], b[1]]));
        let mut at = 2 + tlen;
        let topic = String::from_utf8(b[2..at].to_vec()).expect("PUBLISH topic is UTF-8");
        let qos = self.qos();
        let packet_id = if qos > 0 {
            let id = u16::from_be_bytes([b[at], b[at + 1]]);
            at += 2;
            Some(id)
        } else {
            None
        };
        Publish {
            topic,
            payload: b[at..].to_vec(),
            qos,
            dup: self.dup(),
            retain: self.retain(),
            packet_id,
        }
    }
}

/// The result of the CONNECT handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connack {
    pub session_present: bool,
    pub return_code: u8,
}

/// Why a read ended without a packet.
#[derive(Debug)]
pub enum ReadEnd {
    /// Nothing complete arrived before the deadline.
    Timeout,
    /// EOF or a reset.
    Closed(String),
}

/// A hand-driven MQTT 3.1.1 client over a blocking `TcpStream`.
pub struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
    pending: VecDeque<Packet>,
    next_id: u16,
    pub name: String,
}

impl RawClient {
    /// Opens a TCP connection only (no CONNECT sent).
    pub fn tcp(port: u16) -> RawClient {
        let addr: SocketAddr = format!("{HOST}:{port}").parse().unwrap();
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("TCP connect to {addr}: {e}"));
        stream.set_nodelay(true).unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.set_read_timeout(Some(RECV_TIMEOUT)).unwrap();
        RawClient {
            stream,
            buf: Vec::new(),
            pending: VecDeque::new(),
            next_id: 1,
            name: format!("raw@{port}"),
        }
    }

    /// TCP connect, send CONNECT, return the CONNACK (whatever its code).
    pub fn connect_with(port: u16, opts: &ConnectOpts) -> (RawClient, Connack) {
        let mut c = RawClient::tcp(port);
        c.name = opts.client_id.clone();
        c.send(&frame::connect(opts));
        let p = c.expect(ptype::CONNACK);
        assert_eq!(p.body.len(), 2, "CONNACK remaining length must be 2: {p:?}");
        let ack = Connack {
            session_present: p.body[0] & 1 != 0,
            return_code: p.body[1],
        };
        (c, ack)
    }

    /// Connects and asserts CONNACK return code 0; returns the client and
    /// the session-present flag.
    pub fn connect_opts(port: u16, opts: &ConnectOpts) -> (RawClient, bool) {
        let (c, ack) = RawClient::connect_with(port, opts);
        assert_eq!(
            ack.return_code, 0,
            "CONNACK refused {:?}: {ack:?}",
            opts.client_id
        );
        (c, ack.session_present)
    }

    /// Connects with clean session, keepalive 60.
    pub fn connect(port: u16, client_id: &str) -> RawClient {
        RawClient::connect_opts(port, &ConnectOpts::new(client_id)).0
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Writes all bytes in one `write_all`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("[{}] write: {e}", self.name));
    }

    /// Like `send`, but returns the error (for writes that may race a close).
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Writes one byte at a time with a pause between them.
    pub fn send_bytewise(&mut self, bytes: &[u8], pause: Duration) {
        for b in bytes {
            self.send(std::slice::from_ref(b));
            thread::sleep(pause);
        }
    }

    fn take_frame(&mut self) -> Option<Packet> {
        let mut len = 0usize;
        let mut mult = 1usize;
        let mut i = 1;
        loop {
            let b = *self.buf.get(i)?;
            len += usize::from(b & 0x7F) * mult;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
            mult *= 128;
            assert!(
                i <= 4,
                "[{}] malformed remaining length from broker",
                self.name
            );
        }
        if self.buf.len() < i + len {
            return None;
        }
        let first = self.buf[0];
        let body = self.buf[i..i + len].to_vec();
        self.buf.drain(..i + len);
        Some(Packet { first, body })
    }

    /// Reads the next frame from the socket (ignoring the pending queue).
    fn read_frame(&mut self, timeout: Duration) -> Result<Packet, ReadEnd> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(p) = self.take_frame() {
                return Ok(p);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReadEnd::Timeout);
            }
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut tmp = [0u8; 4096];
            match self.stream.read(&mut tmp) {
                Ok(0) => return Err(ReadEnd::Closed("EOF".into())),
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ReadEnd::Closed(e.to_string())),
            }
        }
    }

    /// The next packet, or why there is none within `timeout`.
    pub fn try_recv(&mut self, timeout: Duration) -> Result<Packet, ReadEnd> {
        if let Some(p) = self.pending.pop_front() {
            return Ok(p);
        }
        self.read_frame(timeout)
    }

    /// The next packet; panics on timeout or close.
    pub fn recv(&mut self) -> Packet {
        match self.try_recv(RECV_TIMEOUT) {
            Ok(p) => p,
            Err(e) => panic!("[{}] expected a packet, got {e:?}", self.name),
        }
    }

    /// The next packet, which must be of type `t`.
    pub fn expect(&mut self, t: u8) -> Packet {
        let p = self.recv();
        assert_eq!(
            p.ptype(),
            t,
            "[{}] expected {}, got {p:?}",
            self.name,
            ptype::name(t)
        );
        p
    }

    /// Waits for a packet of type `t` with packet id `id`, keeping any other
    /// packet that arrives meanwhile for later `recv` calls.
    pub fn wait_for(&mut self, t: u8, id: u16) -> Packet {
        let deadline = Instant::now() + RECV_TIMEOUT;
        let mut stash = Vec::new();
        let found = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_frame(left) {
                Ok(p) if p.ptype() == t && p.body.len() >= 2 && p.packet_id() == id => break p,
                Ok(p) => stash.push(p),
                Err(e) => panic!(
                    "[{}] waiting for {} id {id}: {e:?}; got meanwhile {stash:?}",
                    self.name,
                    ptype::name(t)
                ),
            }
        };
        self.pending.extend(stash);
        found
    }

    /// Asserts nothing arrives for `dur`.
    pub fn expect_nothing(&mut self, dur: Duration) {
        match self.try_recv(dur) {
            Ok(p) => panic!("[{}] expected no packet, got {p:?}", self.name),
            Err(ReadEnd::Timeout) => {}
            Err(ReadEnd::Closed(e)) => {
                panic!("[{}] expected no packet, connection closed: {e}", self.name)
            }
        }
    }

    /// Asserts the broker closes the connection (EOF or reset) within
    /// `timeout`. Packets received before the close are returned.
    pub fn expect_closed(&mut self, timeout: Duration) -> Vec<Packet> {
        let deadline = Instant::now() + timeout;
        let mut got: Vec<Packet> = self.pending.drain(..).collect();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_frame(left) {
                Ok(p) => got.push(p),
                Err(ReadEnd::Closed(_)) => return got,
                Err(ReadEnd::Timeout) => panic!(
                    "[{}] expected the broker to close the connection within {timeout:?}; got {got:?}",
                    self.name
                ),
            }
        }
    }

    /// Allocates the next packet id (1..=65535).
    pub fn next_packet_id(&mut self) -> u16 {
        let id = self.next_id;
        self.next_id = if id == u16::MAX { 1 } else { id + 1 };
        id
    }

    /// SUBSCRIBE and wait for the SUBACK; returns its return codes.
    pub fn subscribe(&mut self, filters: &[(&str, u8)]) -> Vec<u8> {
        let id = self.next_packet_id();
        self.send(&frame::subscribe(id, filters));
        let p = self.wait_for(ptype::SUBACK, id);
        let codes = p.body[2..].to_vec();
        assert_eq!(codes.len(), filters.len(), "[{}] SUBACK {p:?}", self.name);
        codes
    }

    /// SUBSCRIBE and assert every requested QoS is granted as asked.
    pub fn subscribe_ok(&mut self, filters: &[(&str, u8)]) {
        let codes = self.subscribe(filters);
        let want: Vec<u8> = filters.iter().map(|f| f.1).collect();
        assert_eq!(codes, want, "[{}] SUBACK codes for {filters:?}", self.name);
    }

    /// UNSUBSCRIBE with `id`; waits for the UNSUBACK carrying the same id.
    pub fn unsubscribe(&mut self, id: u16, filters: &[&str]) {
        self.send(&frame::unsubscribe(id, filters));
        let p = self.wait_for(ptype::UNSUBACK, id);
        assert_eq!(
            p.body.len(),
            2,
            "UNSUBACK remaining length must be 2: {p:?}"
        );
    }

    /// Publishes and completes the QoS 1/2 handshake (other packets arriving
    /// meanwhile are kept). Returns the packet id used (0 for QoS 0).
    pub fn publish(&mut self, topic: &str, payload: &[u8], qos: u8, retain: bool) -> u16 {
        let id = if qos > 0 { self.next_packet_id() } else { 0 };
        self.send(&frame::publish(topic, payload, qos, retain, false, id));
        match qos {
            0 => {}
            1 => {
                self.wait_for(ptype::PUBACK, id);
            }
            2 => {
                self.wait_for(ptype::PUBREC, id);
                self.send(&frame::pubrel(id));
                self.wait_for(ptype::PUBCOMP, id);
            }
            q => panic!("bad qos {q}"),
        }
        id
    }

    /// Receives the next packet, which must be a PUBLISH, without acking it.
    pub fn recv_publish_noack(&mut self) -> Publish {
        self.expect(ptype::PUBLISH).publish()
    }

    /// Receives the next PUBLISH and acknowledges it as its QoS requires
    /// (PUBACK, or PUBREC / PUBREL / PUBCOMP).
    pub fn recv_publish(&mut self) -> Publish {
        let p = self.recv_publish_noack();
        self.ack(&p);
        p
    }

    /// Acknowledges a received PUBLISH as its QoS requires.
    pub fn ack(&mut self, p: &Publish) {
        match p.qos {
            0 => {}
            1 => self.send(&frame::puback(p.packet_id.unwrap())),
            2 => {
                let id = p.packet_id.unwrap();
                self.send(&frame::pubrec(id));
                self.wait_for(ptype::PUBREL, id);
                self.send(&frame::pubcomp(id));
            }
            q => panic!("bad qos {q}"),
        }
    }

    /// PINGREQ and expect PINGRESP (0xD0 0x00).
    pub fn ping(&mut self) {
        self.send(&frame::pingreq());
        let p = self.expect(ptype::PINGRESP);
        assert_eq!((p.first, p.body.len()), (0xD0, 0), "bad PINGRESP {p:?}");
    }

    /// Sends DISCONNECT, half-closes, and waits for the broker to close its
    /// side, so the broker has surely processed the DISCONNECT on return.
    pub fn disconnect(mut self) {
        self.send(&frame::disconnect());
        let _ = self.stream.shutdown(Shutdown::Write);
        self.expect_closed(RECV_TIMEOUT);
    }

    /// Closes the socket without DISCONNECT ("network failure").
    pub fn drop_connection(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// Asserts the broker still serves a well-behaved client: connect,
/// subscribe, publish QoS 1 to itself, receive it, ping, disconnect.
pub fn assert_broker_works(port: u16) {
    let id = unique("health");
    let mut c = RawClient::connect(port, &id);
    let topic = format!("health/{id}");
    c.subscribe_ok(&[(&topic, 1)]);
    c.publish(&topic, b"still alive", 1, false);
    let p = c.recv_publish();
    assert_eq!(
        (p.topic.as_str(), p.payload.as_slice()),
        (topic.as_str(), &b"still alive"[..])
    );
    c.ping();
    c.disconnect();
}
