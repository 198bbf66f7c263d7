//! What the bridge tests (`e2e_bridge.rs`, `e2e_tls_bridge.rs`) share:
//! the state topic, waiting for a retained value, and the Shelly round
//! trip through a bridge.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{RawClient, ReadEnd, TempDir, free_port};

/// The retained state topic of bridge `name`.
pub fn state(name: &str) -> String {
    format!("$SYS/broker/connection/{name}/state")
}

/// Waits (bounded) until the retained value of `topic` on `port` is
/// `want`.
pub fn wait_retained(port: u16, topic: &str, want: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut last = String::from("<nothing>");
    while Instant::now() < deadline {
        let mut c = RawClient::connect(port, &super::unique("probe"));
        c.subscribe_ok(&[(topic, 0)]);
        if let Ok(p) = c.try_recv(Duration::from_millis(500)) {
            if p.ptype() == 3 {
                let p = p.publish();
                if p.payload_str() == want {
                    return;
                }
                last = p.payload_str();
            }
        }
        drop(c);
        thread::sleep(Duration::from_millis(100));
    }
    panic!("'{topic}' on port {port} is not '{want}' after {limit:?} (last: {last})");
}

/// A Shelly press on the box (`box_port`) reaches a dashboard on the
/// remote (`remote_port`), and the remote's relay command reaches the
/// Shelly: a bridge with `topic shellies/# out 1` and
/// `topic shellies/+/relay/0/command in 1`, already up. Returns the
/// Shelly's client for further checks.
pub fn shelly_round_trip(box_port: u16, remote_port: u16) -> RawClient {
    let mut cloud = RawClient::connect(remote_port, "dashboard");
    cloud.subscribe_ok(&[("shellies/+/input_event/0", 1)]);
    let mut shelly = RawClient::connect(box_port, "shelly1-ABC");
    shelly.subscribe_ok(&[("shellies/shelly1-ABC/relay/0/command", 1)]);
    shelly.publish(
        "shellies/shelly1-ABC/input_event/0",
        br#"{"event":"S","event_cnt":1}"#,
        1,
        false,
    );
    let p = cloud.recv_publish();
    assert_eq!(p.topic, "shellies/shelly1-ABC/input_event/0");
    assert_eq!(p.payload_str(), r#"{"event":"S","event_cnt":1}"#);

    cloud.publish("shellies/shelly1-ABC/relay/0/command", b"on", 1, false);
    let p = shelly.recv_publish();
    assert_eq!(p.topic, "shellies/shelly1-ABC/relay/0/command");
    assert_eq!(p.payload_str(), "on");
    shelly
}

/// Receives up to `n` PUBLISH payloads (acknowledged), waiting at most
/// `limit` in all and `gap` for each.
pub fn receive(c: &mut RawClient, n: usize, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        match c.try_recv(Duration::from_millis(500)) {
            Ok(p) if p.ptype() == 3 => {
                let p = p.publish();
                c.ack(&p);
                got.push(p.payload_str());
            }
            Ok(_) | Err(ReadEnd::Timeout) => {}
            Err(ReadEnd::Closed(e)) => panic!("subscriber closed: {e}"),
        }
    }
    got
}

/// Nothing more arrives within `dur`.
pub fn nothing_more(c: &mut RawClient, dur: Duration) {
    if let Ok(p) = c.try_recv(dur) {
        assert_ne!(p.ptype(), 3, "unexpected PUBLISH {:?}", p.publish());
    }
}

/// A remote Mosquitto on a fixed port that can be stopped and started
/// again (with persistence, so its subscribers' sessions survive).
pub struct Remote {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Extra lines of its mosquitto.conf.
    extra: String,
    dir: TempDir,
    child: Option<Child>,
    starts: u32,
}

impl Remote {
    /// Starts one with `listener PORT 127.0.0.1`, anonymous clients and
    /// persistence.
    pub fn start() -> Remote {
        Remote::start_with(&[])
    }

    /// As [`Remote::start`], with `lines` added to its mosquitto.conf.
    pub fn start_with(lines: &[&str]) -> Remote {
        let mut r = Remote {
            port: free_port(),
            extra: lines.iter().map(|l| format!("{l}\n")).collect(),
            dir: TempDir::new("remote"),
            child: None,
            starts: 0,
        };
        r.up();
        r
    }

    /// Its log of the current run.
    pub fn log_path(&self) -> PathBuf {
        self.dir
            .path()
            .join(format!("mosquitto-{}.log", self.starts))
    }

    /// Starts (again) on the same port.
    pub fn up(&mut self) {
        assert!(self.child.is_none(), "remote already running");
        self.starts += 1;
        let conf = self.dir.path().join("mosquitto.conf");
        let text = format!(
            "listener {} 127.0.0.1\nallow_anonymous true\npersistence true\n\
             persistence_location {}/\nlog_dest stderr\nlog_type all\n\
             max_queued_messages 100000\nset_tcp_nodelay true\n{}",
            self.port,
            self.dir.path().display(),
            self.extra
        );
        fs::write(&conf, text).expect("write mosquitto.conf");
        self.child = Some(spawn_mosquitto(&conf, &self.log_path()));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = fs::read_to_string(self.log_path()).unwrap_or_default();
            if text.contains(" running") {
                return;
            }
            if self.starts == 1 && text.contains("Address already in use") {
                // The free port was taken by a test running beside this
                // one before mosquitto bound it: on a first start nothing
                // depends on the port yet, so take another.
                if let Some(mut c) = self.child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                self.port = free_port();
                self.starts = 0;
                return self.up();
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start on port {}:\n{text}",
                self.port
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it with SIGTERM (it saves its sessions) and waits for it.
    pub fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if thread::panicking() {
            eprintln!(
                "===== remote mosquitto log (port {}) =====\n{}",
                self.port,
                fs::read_to_string(self.log_path()).unwrap_or_default()
            );
        }
    }
}

/// Debian's `mosquitto` (or the one on the PATH) on config file `conf`,
/// its stdout and stderr in the file `log`.
#[allow(dead_code)] // not every test binary starts a remote
pub fn spawn_mosquitto(conf: &std::path::Path, log: &std::path::Path) -> Child {
    let out = fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log clone");
    let bin = if std::path::Path::new("/usr/sbin/mosquitto").exists() {
        "/usr/sbin/mosquitto"
    } else {
        "mosquitto"
    };
    Command::new(bin)
        .arg("-c")
        .arg(conf)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("spawn mosquitto")
}
