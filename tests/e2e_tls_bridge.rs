//! Bridges over TLS end to end (cargo feature `tls`): boxmq bridged to
//! Debian's `mosquitto` with a TLS listener (and a plain one for the
//! tests' own clients), both started here on free ports of 127.0.0.1.
//! Certificates come from Debian's `openssl` (tests/common/certs.rs). Every
//! wait is bounded; the remote is killed by its own PID.
//!
//! Run: `cargo test --features tls --test e2e_tls_bridge`.

mod common;

use std::fs;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use boxmq::QoS;
use boxmq::bridge::{BridgeConfig, BridgeStats, Direction, TopicRule};
use common::bridge::{shelly_round_trip, spawn_mosquitto, state, wait_retained};
use common::certs::Certs;
use common::{RawClient, TempDir, TestBroker, free_port, run_with_timeout};

const WAIT: Duration = Duration::from_secs(15);

/// A remote Mosquitto: a plain listener for the tests' clients and a TLS
/// one (the server certificate signed by the test CA) for the bridge.
struct TlsRemote {
    plain: u16,
    tls: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl TlsRemote {
    /// `client_certs`: the TLS listener requires a client certificate
    /// signed by the test CA.
    fn start(certs: &Certs, client_certs: bool) -> TlsRemote {
        TlsRemote::start_as(certs, "server", client_certs)
    }

    /// With the server certificate `<name>.crt`.
    fn start_as(certs: &Certs, name: &str, client_certs: bool) -> TlsRemote {
        let dir = TempDir::new("tls-remote");
        let (plain, tls) = (free_port(), free_port());
        // `user root`: started by root, Mosquitto would otherwise switch to
        // its own user, which cannot read the test keys (mode 0600).
        let mut text = format!(
            "per_listener_settings false\nallow_anonymous true\nlog_dest stderr\n\
             user root\nset_tcp_nodelay true\n\
             log_type all\nlistener {plain} 127.0.0.1\nlistener {tls} 127.0.0.1\n\
             certfile {}\nkeyfile {}\n",
            certs.path(&format!("{name}.crt")),
            certs.path(&format!("{name}.key"))
        );
        if client_certs {
            text.push_str(&format!(
                "cafile {}\nrequire_certificate true\n",
                certs.path("ca.crt")
            ));
        }
        let conf = dir.path().join("mosquitto.conf");
        fs::write(&conf, text).expect("write mosquitto.conf");
        let child = spawn_mosquitto(&conf, &dir.path().join("mosquitto.log"));
        let r = TlsRemote {
            plain,
            tls,
            dir,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !r.log().contains(" running") {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start:\n{}",
                r.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
        r
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for TlsRemote {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if thread::panicking() {
            eprintln!("===== remote mosquitto log =====\n{}", self.log());
        }
    }
}

/// The retained value of `topic` on `port`, if any (waits 500 ms).
fn retained(port: u16, topic: &str) -> Option<String> {
    let mut c = RawClient::connect(port, &common::unique("probe"));
    c.subscribe_ok(&[(topic, 0)]);
    match c.try_recv(Duration::from_millis(500)) {
        Ok(p) if p.ptype() == 3 => Some(p.publish().payload_str()),
        _ => None,
    }
}

/// Polls the embedded broker's figures of bridge `name` until `done`
/// says yes (bounded).
fn wait_bridge(
    handle: &boxmq::Handle,
    name: &str,
    what: &str,
    done: impl Fn(&BridgeStats) -> bool,
) -> BridgeStats {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = handle.stats().expect("stats");
        let b = stats
            .bridges
            .iter()
            .find(|b| b.name == name)
            .expect("the bridge")
            .clone();
        if done(&b) {
            return b;
        }
        assert!(Instant::now() < deadline, "bridge {name}: {what}: {b:?}");
        thread::sleep(Duration::from_millis(50));
    }
}

fn out_rule(pattern: &str) -> TopicRule {
    TopicRule::new(pattern, Direction::Out, QoS::AtLeastOnce)
}

#[test]
fn shelly_press_reaches_remote_over_tls_and_command_comes_back() {
    if common::skip_unless_boxmq("tls shelly", "starts the boxmq binary with bridge lines") {
        return;
    }
    let certs = Certs::generate();
    let remote = TlsRemote::start(&certs, false);
    let ca = format!("bridge_cafile {}", certs.path("ca.crt"));
    let boxmq = TestBroker::start_with_config(&[
        "connection up",
        // The certificate names 127.0.0.1 as an IP address.
        &format!("address 127.0.0.1:{}", remote.tls),
        "restart_timeout 1 2",
        "keepalive_interval 5",
        &ca,
        "topic shellies/# out 1",
        "topic shellies/+/relay/0/command in 1",
    ]);
    wait_retained(remote.plain, &state("up"), "1", WAIT);
    wait_retained(boxmq.port, &state("up"), "1", Duration::from_secs(5));

    shelly_round_trip(boxmq.port, remote.plain);
    let log = boxmq.log();
    assert!(log.contains("TLS handshake done"), "{log}");
}

/// `bridge_capath`: the remote's CA found in a directory of certificates
/// (as `bridge_capath /etc/ssl/certs` finds a public CA), beside files
/// that are none.
#[test]
fn bridge_capath_directory_finds_the_remotes_ca() {
    if common::skip_unless_boxmq("tls capath", "starts the boxmq binary with bridge lines") {
        return;
    }
    let certs = Certs::generate();
    let remote = TlsRemote::start(&certs, false);
    let dir = TempDir::new("bridge-capath");
    fs::write(dir.path().join("README"), "not a certificate\n").expect("readme");
    fs::copy(certs.path("rogue.crt"), dir.path().join("other-ca.pem")).expect("rogue");
    fs::copy(certs.path("ca.crt"), dir.path().join("site-ca.pem")).expect("ca");
    let capath = format!("bridge_capath {}", dir.path().display());
    let boxmq = TestBroker::start_with_config(&[
        "connection up",
        &format!("address 127.0.0.1:{}", remote.tls),
        "restart_timeout 1 2",
        "keepalive_interval 5",
        &capath,
        "topic shellies/# out 1",
        "topic shellies/+/relay/0/command in 1",
    ]);
    wait_retained(remote.plain, &state("up"), "1", WAIT);
    shelly_round_trip(boxmq.port, remote.plain);
}

#[test]
fn remote_with_untrusted_certificate_is_refused_and_retried() {
    let certs = Certs::generate();
    let remote = TlsRemote::start(&certs, false);
    // The remote's certificate is signed by "ca", not by "rogue".
    let mut bridge = BridgeConfig::new("rogue")
        .address(&format!("127.0.0.1:{}", remote.tls))
        .topic(out_rule("shellies/#"))
        .cafile(certs.path("rogue.crt"));
    bridge.restart_timeout.base = Duration::from_secs(1);
    bridge.restart_timeout.cap = Some(Duration::from_secs(1));
    let mut broker = boxmq::Broker::builder()
        .listen("127.0.0.1:0")
        .bridge(bridge)
        .try_build()
        .expect("valid bridge");
    let handle = broker.start().expect("start");
    let b = wait_bridge(&handle, "rogue", "no certificate error", |b| {
        b.last_error
            .as_deref()
            .is_some_and(|e| e.contains("TLS handshake failed") && e.contains("UnknownIssuer"))
    });
    assert!(!b.connected && b.connects == 0, "{b:?}");
    // Retried with the usual backoff, never connected.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        let b = wait_bridge(&handle, "rogue", "", |_| true);
        assert!(!b.connected && b.connects == 0, "{b:?}");
        thread::sleep(Duration::from_millis(100));
    }
    // The remote saw the bridge's alert each time.
    let attempts = remote.log().matches("alert unknown ca").count();
    assert!(attempts >= 2, "one attempt only:\n{}", remote.log());
    assert_eq!(retained(remote.plain, &state("rogue")), None);

    // Local clients are not affected.
    let port = handle.local_addrs()[0].port();
    assert_eq!(retained(port, &state("rogue")).as_deref(), Some("0"));
    let mut sub = RawClient::connect(port, "local-sub");
    sub.subscribe_ok(&[("local/#", 1)]);
    let mut publisher = RawClient::connect(port, "local-pub");
    publisher.publish("local/x", b"fine", 1, false);
    assert_eq!(sub.recv_publish().payload_str(), "fine");
}

#[test]
fn remote_certificate_for_another_name_is_refused_unless_insecure() {
    let certs = Certs::generate();
    // Signed by the CA the bridges trust, but for elsewhere.example.
    let remote = TlsRemote::start_as(&certs, "elsewhere", false);
    let addr = format!("127.0.0.1:{}", remote.tls);
    let strict = BridgeConfig::new("strict")
        .address(&addr)
        .topic(out_rule("a/#"))
        .cafile(certs.path("ca.crt"));
    let mut insecure = BridgeConfig::new("insecure")
        .address(&addr)
        .topic(out_rule("b/#"))
        .cafile(certs.path("ca.crt"));
    insecure.insecure = true;
    let mut broker = boxmq::Broker::builder()
        .listen("127.0.0.1:0")
        .bridge(strict)
        .bridge(insecure)
        .try_build()
        .expect("valid bridges");
    let handle = broker.start().expect("start");
    wait_bridge(&handle, "insecure", "not connected", |b| b.connected);
    let b = wait_bridge(&handle, "strict", "no name error", |b| {
        b.last_error
            .as_deref()
            .is_some_and(|e| e.contains("TLS handshake failed") && e.contains("not valid for name"))
    });
    assert!(!b.connected && b.connects == 0, "{b:?}");
    wait_retained(remote.plain, &state("insecure"), "1", WAIT);
    assert_eq!(retained(remote.plain, &state("strict")), None);
}

#[test]
fn client_certificate_is_shown_to_the_remote() {
    let certs = Certs::generate();
    let remote = TlsRemote::start(&certs, true);
    let addr = format!("localhost:{}", remote.tls);
    let without = BridgeConfig::new("nocert")
        .address(&addr)
        .topic(out_rule("a/#"))
        .cafile(certs.path("ca.crt"));
    let with = BridgeConfig::new("alice")
        .address(&addr)
        .topic(out_rule("b/#"))
        .cafile(certs.path("ca.crt"))
        .client_certificate(certs.path("alice.crt"), certs.path("alice.key"));
    let mut broker = boxmq::Broker::builder()
        .listen("127.0.0.1:0")
        .bridge(without)
        .bridge(with)
        .try_build()
        .expect("valid bridges");
    let handle = broker.start().expect("start");
    wait_bridge(&handle, "alice", "not connected", |b| b.connected);
    // TLS 1.3: the remote's alert comes after the client's Finished.
    let b = wait_bridge(&handle, "nocert", "no TLS error", |b| {
        b.last_error.as_deref().is_some_and(|e| e.contains("TLS"))
    });
    assert!(!b.connected && b.connects == 0, "{b:?}");
    wait_retained(remote.plain, &state("alice"), "1", WAIT);

    let port = handle.local_addrs()[0].port();
    let mut cloud = RawClient::connect(remote.plain, "cloud");
    cloud.subscribe_ok(&[("b/#", 1)]);
    let mut shelly = RawClient::connect(port, "shelly");
    shelly.publish("b/press", b"S", 1, false);
    let p = cloud.recv_publish();
    assert_eq!(
        (p.topic.as_str(), p.payload_str().as_str()),
        ("b/press", "S")
    );
}

#[test]
fn bad_bridge_tls_files_refuse_to_start() {
    if common::skip_unless_boxmq("tls files", "starts the boxmq binary") {
        return;
    }
    let certs = Certs::generate();
    let dir = TempDir::new("bad-bridge-tls");
    let missing = dir.path().join("missing.pem").display().to_string();
    let text = dir.path().join("text.pem");
    fs::write(&text, "not a certificate\n").expect("text");
    let text = text.display().to_string();
    let (ca, alice_crt, server_key) = (
        certs.path("ca.crt"),
        certs.path("alice.crt"),
        certs.path("server.key"),
    );
    for (lines, named) in [
        (format!("bridge_cafile {missing}"), missing.as_str()),
        (format!("bridge_cafile {text}"), text.as_str()),
        (
            format!("bridge_cafile {ca}\nbridge_certfile {alice_crt}\nbridge_keyfile {text}"),
            text.as_str(),
        ),
        // A key that does not belong to the certificate.
        (
            format!("bridge_cafile {ca}\nbridge_certfile {alice_crt}\nbridge_keyfile {server_key}"),
            server_key.as_str(),
        ),
    ] {
        let conf = dir.path().join("boxmq.conf");
        fs::write(
            &conf,
            format!(
                "persistence false\nlistener 0 127.0.0.1\nconnection up\n\
                 address 127.0.0.1:1\ntopic x out\n{lines}\n"
            ),
        )
        .expect("conf");
        let out = run_with_timeout(
            Command::new(env!("CARGO_BIN_EXE_boxmq"))
                .arg("--config")
                .arg(&conf),
            Duration::from_secs(10),
        );
        assert_eq!(out.status.and_then(|s| s.code()), Some(2), "{out}");
        assert!(out.stderr.contains(named), "{named}: {out}");
        assert!(out.stderr.contains("bridge 'up'"), "{out}");
    }
}

/// `bridge_tls_version tlsv1.3`: the bridge offers TLS 1.3 alone
/// (Mosquitto's minimum version). It reaches the Mosquitto remote (which
/// offers 1.3); OpenSSL's `s_server` held to TLS 1.2 answers its
/// ClientHello with a protocol_version alert and the bridge never
/// connects there.
#[test]
fn bridge_tls_version_sets_the_minimum() {
    let certs = Certs::generate();
    let remote = TlsRemote::start(&certs, false);
    let dir = TempDir::new("tls12-server");
    let out = fs::File::create(dir.path().join("s_server.out")).expect("out file");
    let err = out.try_clone().expect("clone");
    let port = free_port();
    let server = Command::new("openssl")
        .args([
            "s_server",
            "-tls1_2",
            "-accept",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["-cert", &certs.path("server.crt")])
        .args(["-key", &certs.path("server.key")])
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("spawn openssl s_server");
    // Killed by its PID when the test ends, passed or not.
    let _server = KillOnDrop(server);
    let only13 = |name: &str, port: u16| {
        let mut b = BridgeConfig::new(name)
            .address(&format!("127.0.0.1:{port}"))
            .topic(out_rule(&format!("{name}/#")))
            .cafile(certs.path("ca.crt"));
        b.tls13_only = true;
        b.restart_timeout.base = Duration::from_secs(1);
        b.restart_timeout.cap = Some(Duration::from_secs(1));
        b
    };
    let mut broker = boxmq::Broker::builder()
        .listen("127.0.0.1:0")
        .bridge(only13("mosq", remote.tls))
        .bridge(only13("old", port))
        .try_build()
        .expect("valid bridges");
    let handle = broker.start().expect("start");
    wait_bridge(&handle, "mosq", "not connected", |b| b.connected);
    wait_retained(remote.plain, &state("mosq"), "1", WAIT);
    let b = wait_bridge(&handle, "old", "no protocol version alert", |b| {
        b.last_error
            .as_deref()
            .is_some_and(|e| e.contains("TLS handshake failed") && e.contains("ProtocolVersion"))
    });
    assert!(!b.connected && b.connects == 0, "{b:?}");
}

/// A child process killed (by its PID) and reaped when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `bridge_alpn mqtt`: the ClientHello offers it. The remote is OpenSSL's
/// own `s_server` (Mosquitto 2.0's listeners do not look at ALPN), which
/// prints the protocols a client advertises.
#[test]
fn alpn_is_offered_to_the_remote() {
    if common::skip_unless_boxmq("tls alpn", "starts the boxmq binary with bridge lines") {
        return;
    }
    let certs = Certs::generate();
    let dir = TempDir::new("alpn");
    let out_path = dir.path().join("s_server.out");
    let out = fs::File::create(&out_path).expect("out file");
    let err = out.try_clone().expect("clone");
    let port = free_port();
    let mut server = Command::new("openssl")
        .args(["s_server", "-accept", &format!("127.0.0.1:{port}")])
        .args(["-cert", &certs.path("server.crt")])
        .args(["-key", &certs.path("server.key")])
        .args(["-alpn", "mqtt", "-naccept", "1"])
        // Kept open: s_server sends what it reads from its input. (It
        // prints what it receives, CONNECT's bytes included: not UTF-8.)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("spawn openssl s_server");
    let wait_for = |what: &str| {
        let deadline = Instant::now() + WAIT;
        loop {
            let text =
                String::from_utf8_lossy(&fs::read(&out_path).unwrap_or_default()).into_owned();
            if text.contains(what) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "no '{what}' from s_server:\n{text}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("ACCEPT");
    let ca = format!("bridge_cafile {}", certs.path("ca.crt"));
    let boxmq = TestBroker::start_with_config(&[
        "connection up",
        &format!("address 127.0.0.1:{port}"),
        &ca,
        "bridge_alpn mqtt",
        "topic shellies/# out 1",
    ]);
    let deadline = Instant::now() + WAIT;
    while !boxmq.log().contains("TLS handshake done") {
        assert!(Instant::now() < deadline, "{}", boxmq.log());
        thread::sleep(Duration::from_millis(50));
    }
    // s_server writes its report when the connection ends: its input
    // closed, it closes the connection and (`-naccept 1`) exits.
    drop(server.stdin.take());
    let deadline = Instant::now() + WAIT;
    while server.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = server.kill();
            let _ = server.wait();
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let text = String::from_utf8_lossy(&fs::read(&out_path).unwrap_or_default()).into_owned();
    assert!(
        text.contains("ALPN protocols advertised by the client: mqtt"),
        "{text}"
    );
    assert!(text.contains("ALPN protocols selected: mqtt"), "{text}");
}

/// Not a check: the cost of TLS on the bridge (docs/BRIDGING.md,
/// "Measured"). Three rounds of a plain and a TLS bridge to the same
/// Mosquitto: time from start to connected, then 5000 QoS 1 presses (one
/// synchronous publisher) until the last is at the remote subscriber.
/// `cargo test --release --features tls --test e2e_tls_bridge -- --ignored --nocapture`
#[test]
#[ignore]
fn measure_tls_against_plain() {
    const N: usize = 5000;
    let certs = Certs::generate();
    let remote = TlsRemote::start(&certs, false);
    for round in 0..3 {
        for tls in [false, true] {
            let name = format!("m{round}{}", if tls { "tls" } else { "plain" });
            let bridge = BridgeConfig::new(&name).topic(out_rule(&format!("{name}/#")));
            let bridge = if tls {
                bridge
                    .address(&format!("127.0.0.1:{}", remote.tls))
                    .cafile(certs.path("ca.crt"))
            } else {
                bridge.address(&format!("127.0.0.1:{}", remote.plain))
            };
            let start = Instant::now();
            let mut broker = boxmq::Broker::builder()
                .listen("127.0.0.1:0")
                .bridge(bridge)
                .try_build()
                .expect("valid bridge");
            let handle = broker.start().expect("start");
            while !handle.stats().expect("stats").bridges[0].connected {
                assert!(start.elapsed() < WAIT, "not connected");
                thread::sleep(Duration::from_micros(200));
            }
            let up = start.elapsed();
            let port = handle.local_addrs()[0].port();
            let mut cloud = RawClient::connect(remote.plain, &format!("cloud-{name}"));
            cloud.subscribe_ok(&[(&format!("{name}/#"), 1)]);
            let mut shelly = RawClient::connect(port, &format!("shelly-{name}"));
            let t = Instant::now();
            let rx = thread::spawn(move || {
                for _ in 0..N {
                    let _ = cloud.recv_publish();
                }
                Instant::now()
            });
            for i in 0..N {
                shelly.publish(
                    &format!("{name}/x"),
                    format!("m{i:05}").as_bytes(),
                    1,
                    false,
                );
            }
            let took = rx.join().expect("subscriber").duration_since(t);
            println!(
                "tls={tls}: connected after {up:?}; {N} presses in {took:?} = {:.0}/s",
                N as f64 / took.as_secs_f64()
            );
        }
    }
}
