//! Mosquitto's own config files, as a box has them, run by the `boxmq`
//! binary (docs/MOSQUITTO.md; issue 28, item 5):
//!
//! * Debian's `/etc/mosquitto/mosquitto.conf` (`pid_file`, `persistence`,
//!   `persistence_location`, `log_dest file`, `include_dir`) with only its
//!   paths changed, plus a `conf.d` snippet naming a listener;
//! * a file that sets every directive mosquitto.conf(5) gives a default to
//!   that default;
//! * Mosquitto's example `mosquitto.conf` (Debian installs it under
//!   `/usr/share/doc/mosquitto/examples/`) with every commented line that
//!   carries a value uncommented.
//!
//! Each starts boxmq on 127.0.0.1 and a free port, and a Shelly button
//! press goes from `mosquitto_pub` to `mosquitto_sub` through it. The
//! Mosquitto files are read from the system at test time (the `mosquitto`
//! package, which test.sh installs), never copied into this repository.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{HOST, MosqSub, TempDir, free_port, mosquitto_pub, run_with_timeout};

const SHELLY_TOPIC: &str = "shellies/shellybutton1-A4CF12F45A10/input_event/0";
const SHELLY_PRESS: &str = r#"{"event":"S","event_cnt":7}"#;

const DEBIAN_CONF: &str = "/etc/mosquitto/mosquitto.conf";
const EXAMPLE_CONF: &str = "/usr/share/doc/mosquitto/examples/mosquitto.conf";

/// The `boxmq` binary running one config file; killed on drop.
struct Boxmq {
    child: Option<Child>,
    log: PathBuf,
}

impl Boxmq {
    /// Starts `boxmq -c conf` and waits until `port` takes connections.
    fn start(conf: &Path, port: u16, dir: &Path) -> Boxmq {
        let log = dir.join("boxmq.stderr");
        let out = fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("clone");
        let child = Command::new(env!("CARGO_BIN_EXE_boxmq"))
            .arg("-c")
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn boxmq");
        let mut b = Boxmq {
            child: Some(child),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = b.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("boxmq exited with {status}:\n{}", b.output());
            }
            if std::net::TcpStream::connect((HOST, port)).is_ok() {
                return b;
            }
            assert!(
                Instant::now() < deadline,
                "boxmq not listening on {port}:\n{}",
                b.output()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM (to this child, by its id) and wait: a clean stop.
    fn stop(mut self) {
        let pid = self.pid().to_string();
        let out = run_with_timeout(
            Command::new("kill").args(["-TERM", &pid]),
            Duration::from_secs(5),
        );
        assert!(out.success(), "kill: {out:?}");
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() {
                assert!(Instant::now() < deadline, "boxmq did not stop");
                thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Boxmq {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!("--- boxmq output ---\n{}", self.output());
        }
    }
}

/// A Shelly press from `mosquitto_pub` reaches `mosquitto_sub` through
/// the broker on `port` (`auth`: `-u`/`-P` arguments for both).
fn relays_a_shelly_press(port: u16, auth: &[&str]) {
    let mut args = vec![
        "-t",
        "shellies/+/input_event/0",
        "-v",
        "-C",
        "1",
        "-W",
        "10",
    ];
    args.extend_from_slice(auth);
    let sub = MosqSub::start(port, &args);
    let mut pub_args = vec!["-t", SHELLY_TOPIC, "-m", SHELLY_PRESS, "-q", "1"];
    pub_args.extend_from_slice(auth);
    mosquitto_pub(port, &pub_args);
    let got = sub.finish(Duration::from_secs(10));
    assert_eq!(
        got.messages,
        vec![format!("{SHELLY_TOPIC} {SHELLY_PRESS}")],
        "{}",
        got.raw
    );
}

/// The system's copy of a Mosquitto file, or `None` (and a note) when the
/// `mosquitto` package is not installed.
fn system_file(path: &str) -> Option<String> {
    match fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) => {
            eprintln!("skipped: {path}: {e} (install Debian's mosquitto package)");
            None
        }
    }
}

/// Writes a Mosquitto password file with one user (`mosquitto_passwd`).
fn password_file(dir: &Path) -> PathBuf {
    let path = dir.join("passwd");
    let out = run_with_timeout(
        Command::new("mosquitto_passwd")
            .args(["-b", "-c"])
            .arg(&path)
            .args(["shelly", "s3cret"]),
        Duration::from_secs(10),
    );
    assert!(out.success(), "mosquitto_passwd: {out:?}");
    path
}

#[test]
fn debians_mosquitto_conf_with_a_conf_d_snippet() {
    let Some(text) = system_file(DEBIAN_CONF) else {
        return;
    };
    let dir = TempDir::new("debian-conf");
    let d = dir.path();
    for sub in ["run", "lib", "log", "conf.d"] {
        fs::create_dir_all(d.join(sub)).expect("mkdir");
    }
    // Only the paths change: each directive keeps its line.
    let mut changed = 0;
    let conf: String = text
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let new = match words.as_slice() {
                ["pid_file", _] => format!("pid_file {}", d.join("run/mosquitto.pid").display()),
                ["persistence_location", _] => {
                    format!("persistence_location {}/", d.join("lib").display())
                }
                ["log_dest", "file", _] => {
                    format!("log_dest file {}", d.join("log/mosquitto.log").display())
                }
                ["include_dir", _] => format!("include_dir {}", d.join("conf.d").display()),
                _ => return format!("{line}\n"),
            };
            changed += 1;
            format!("{new}\n")
        })
        .collect();
    assert_eq!(changed, 4, "Debian's file changed?\n{text}");
    let port = free_port();
    fs::write(
        d.join("conf.d/shelly.conf"),
        format!("# the buttons on the LAN\nlistener {port} {HOST}\nallow_anonymous true\n"),
    )
    .expect("snippet");
    let path = d.join("mosquitto.conf");
    fs::write(&path, conf).expect("conf");

    let broker = Boxmq::start(&path, port, d);
    let pid = fs::read_to_string(d.join("run/mosquitto.pid")).expect("pid file");
    assert_eq!(pid.trim(), broker.pid().to_string());
    relays_a_shelly_press(port, &[]);
    broker.stop();
    // The log went to the file, the state to the data directory, and the
    // pid file went away with the broker.
    let log = fs::read_to_string(d.join("log/mosquitto.log")).expect("log file");
    assert!(
        log.contains(&format!("listening on {HOST}:{port}")),
        "{log}"
    );
    assert!(log.contains("connected from"), "{log}");
    let data = fs::read_dir(d.join("lib")).expect("data dir").count();
    assert!(data > 0, "nothing persisted in lib/");
    assert!(!d.join("run/mosquitto.pid").exists());
}

/// Every directive mosquitto.conf(5) gives a default, at that default
/// (`{dir}`, `{port}`, `{passwd}` and `{dead}` are filled in). Directives
/// with no default (paths, names, `socket_domain`, `log_facility`, ...)
/// are not here.
const DEFAULTS: &str = "\
# General
acl_file {dir}/acl
allow_anonymous false
allow_duplicate_messages true
allow_zero_length_clientid true
auth_plugin_deny_special_chars true
auto_id_prefix auto-
autosave_interval 1800
autosave_on_changes false
check_retain_source true
connection_messages true
log_dest stderr
log_timestamp true
log_type error
log_type warning
log_type notice
log_type information
max_inflight_bytes 0
max_inflight_messages 20
max_keepalive 65535
max_packet_size 0
max_queued_bytes 0
max_queued_messages 1000
memory_limit 0
message_size_limit 0
password_file {passwd}
per_listener_settings false
persistence false
persistence_file mosquitto.db
persistence_location {dir}/
queue_qos0_messages false
retain_available true
set_tcp_nodelay false
sys_interval 10
upgrade_outgoing_qos false
user mosquitto
# Listeners
listener {port} 127.0.0.1
max_connections -1
max_qos 2
max_topic_alias 10
protocol mqtt
use_username_as_clientid false
websockets_headers_size 1024
websockets_log_level 0
require_certificate false
tls_keyform pem
tls_version tlsv1.2
use_identity_as_username false
use_subject_as_username false
# Bridges
connection uplink
address 127.0.0.1:{dead}
topic shellies/# out 0
bridge_attempt_unsubscribe true
bridge_max_packet_size 0
bridge_outgoing_retain true
bridge_protocol_version mqttv311
cleansession false
idle_timeout 60
keepalive_interval 60
notifications true
notifications_local_only false
restart_timeout 5 30
round_robin false
start_type automatic
threshold 10
try_private true
bridge_insecure false
bridge_require_ocsp false
bridge_tls_version tlsv1.2
";

#[test]
fn every_directive_at_mosquittos_default() {
    let dir = TempDir::new("defaults-conf");
    let d = dir.path();
    let passwd = password_file(d);
    fs::write(d.join("acl"), "user shelly\ntopic readwrite shellies/#\n").expect("acl");
    let port = free_port();
    // A port nothing listens on: the bridge keeps retrying, as Mosquitto's.
    let dead = free_port();
    let conf = DEFAULTS
        .replace("{dir}", &d.display().to_string())
        .replace("{passwd}", &passwd.display().to_string())
        .replace("{port}", &port.to_string())
        .replace("{dead}", &dead.to_string());
    let path = d.join("mosquitto.conf");
    fs::write(&path, conf).expect("conf");
    let broker = Boxmq::start(&path, port, d);
    // allow_anonymous false: an anonymous client is refused.
    let sub_anon = run_with_timeout(
        Command::new("mosquitto_sub")
            .args(["-h", HOST, "-p", &port.to_string(), "-t", "x", "-C", "1"])
            .args(["-W", "5"]),
        Duration::from_secs(10),
    );
    assert!(!sub_anon.success(), "anonymous accepted: {sub_anon:?}");
    relays_a_shelly_press(port, &["-u", "shelly", "-P", "s3cret"]);
    let out = broker.output();
    // max_connections -1: the open file limit, reported at start.
    assert!(out.contains("max_connections -1: "), "{out}");
    if is_root() {
        // user mosquitto: bound as root, then running as the package's user.
        assert!(out.contains("running as user "), "{out}");
    }
    broker.stop();
}

/// Whether this process runs as root (`user` then changes the broker's).
fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// A commented example line with a value: `#name value`, no placeholder.
fn example_value(line: &str) -> Option<&str> {
    let body = line.strip_prefix('#')?;
    let mut words = body.split_whitespace();
    let name = words.next()?;
    let plain = name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    let valued = words.next().is_some();
    (plain && valued && !body.contains('<') && !body.starts_with(' ')).then_some(body)
}

#[test]
fn mosquittos_example_conf_uncommented() {
    let Some(text) = system_file(EXAMPLE_CONF) else {
        return;
    };
    let dir = TempDir::new("example-conf");
    let d = dir.path();
    let passwd = password_file(d);
    let port = free_port();
    let dead = free_port();
    // The example's own lines, uncommented where a value is given; its
    // placeholders (`connection <name>`, ...) and the paths it leaves
    // empty get values.
    let mut conf = format!(
        "listener {port} {HOST}\npassword_file {}\n",
        passwd.display()
    );
    let mut uncommented = Vec::new();
    for line in text.lines() {
        if let Some(body) = example_value(line) {
            uncommented.push(body.to_owned());
            conf.push_str(body);
            conf.push('\n');
        } else if line.starts_with("#connection <name>") {
            conf.push_str(&format!(
                "connection example\naddress 127.0.0.1:{dead}\ntopic shellies/# out 0\n"
            ));
        }
    }
    assert!(uncommented.len() > 40, "{uncommented:?}");
    for must in ["max_connections -1", "user mosquitto", "max_packet_size 0"] {
        assert!(
            uncommented.iter().any(|l| l == must),
            "{must} not in the example"
        );
    }
    let path = d.join("mosquitto.conf");
    fs::write(&path, &conf).expect("conf");
    let broker = Boxmq::start(&path, port, d);
    relays_a_shelly_press(port, &["-u", "shelly", "-P", "s3cret"]);
    broker.stop();
}
