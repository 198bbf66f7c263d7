//! The HTTP status listener end to end (cargo feature `http`), over real
//! loopback sockets: `/health` (200, and 503 with the reason once a bridge
//! is down past its grace), `/metrics` read by a Prometheus text-format
//! parser (the `prometheus-parse` crate, and `promtool check metrics` when
//! it is installed), basic auth, the bounds (head size, connections, slow
//! clients) while MQTT keeps flowing, the binary's `http_listener` line,
//! and the status page in headless Chromium.
//!
//! Run: `cargo test --features http --test e2e_http`. With
//! `BOXMQ_SCREENSHOT=docs/status-page.png` the Chromium test also saves a
//! screenshot of the page (the README's).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use boxmq::bridge::{BridgeConfig, Direction, TopicRule};
use boxmq::{Broker, Config, Handle, QoS};
use common::{TempDir, TestBroker, free_port, run_with_timeout};

const WAIT: Duration = Duration::from_secs(10);

/// A response: status code, head, body.
struct Response {
    status: u16,
    head: String,
    body: String,
}

/// One request on a fresh connection; reads until the server closes.
fn request(addr: SocketAddr, raw: &str) -> Response {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s.write_all(raw.as_bytes()).expect("send");
    let mut bytes = Vec::new();
    s.read_to_end(&mut bytes)
        .expect("read the response to its end");
    let text = String::from_utf8(bytes).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("status line: {head}"));
    Response {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

fn get(addr: SocketAddr, path: &str) -> Response {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
    )
}

/// A config with an MQTT and an HTTP listener on ports the system picks.
fn config() -> Config {
    let mut c = Config::default();
    c.listeners.push(boxmq::ListenerConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
    ));
    c.http.listener = Some("127.0.0.1:0".parse().expect("addr"));
    c
}

/// A bridge named `central` to a loopback port nobody listens on, so it
/// stays down and queues what it should forward.
fn down_bridge() -> BridgeConfig {
    BridgeConfig::new("central")
        .address(&format!("127.0.0.1:{}", free_port()))
        .topic(TopicRule::new(
            "sensors/#",
            Direction::Out,
            QoS::AtLeastOnce,
        ))
}

/// Polls `handle.stats()` until `ok` holds for bridge `central`.
fn wait_bridge(handle: &Handle, what: &str, ok: impl Fn(&boxmq::bridge::BridgeStats) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = handle.stats().expect("stats");
        if stats.bridges.iter().any(&ok) {
            return;
        }
        assert!(Instant::now() < deadline, "bridge never {what}: {stats:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start(config: Config) -> (Broker, Handle, SocketAddr) {
    let mut broker = Broker::new(config);
    let handle = broker.start().expect("start");
    let addr = handle.http_addr().expect("an HTTP listener");
    (broker, handle, addr)
}

/// The value of the sample `name` (with `label` = `value`, if given).
fn sample(scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    use prometheus_parse::Value;
    let s = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .unwrap_or_else(|| panic!("no sample {name} {label:?}"));
    match s.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        ref other => panic!("{name}: not a single value: {other:?}"),
    }
}

/// Parses `/metrics` with the Prometheus text-format parser; every line
/// must be understood (the parser skips what it cannot read, so that is
/// checked line by line), every family typed, and promtool's linter, when
/// installed, must find nothing.
fn parse_metrics(body: &str) -> prometheus_parse::Scrape {
    use prometheus_parse::LineInfo;
    let mut typed = Vec::new();
    for line in body.lines() {
        match LineInfo::parse(line) {
            LineInfo::Ignored | LineInfo::Empty => panic!("line not understood: {line:?}"),
            LineInfo::Type {
                metric_name,
                metric_alias,
                ..
            } => typed.push(metric_alias.unwrap_or(metric_name)),
            LineInfo::Sample { metric_name, .. } => assert!(
                typed.iter().any(|t| metric_name == t
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| metric_name.strip_suffix(s) == Some(t.as_str()))),
                "{metric_name}: no # TYPE before it"
            ),
            LineInfo::Doc { .. } => {}
        }
    }
    promtool_check(body);
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("scrape")
}

fn promtool_check(body: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        println!("promtool not installed (Debian package prometheus): its lint is skipped");
        return;
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(body.as_bytes()).expect("to promtool");
    }
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The figures of `/metrics` are those of `Handle::stats()`, named by the
/// Prometheus conventions, with the bridge's queue (its remote, another
/// boxmq, gone after the bridge connected) and the store's fsync
/// histogram.
#[test]
fn metrics_parse_and_match_handle_stats() {
    let mut remote = Broker::builder().port(0).build();
    let remote_handle = remote.start().expect("remote");
    let dir = TempDir::new("http-metrics");
    let mut c = config();
    c.persistence.enabled = Some(true);
    c.persistence.location = Some(dir.path().to_owned());
    c.bridges.push(
        BridgeConfig::new("central")
            .address(&remote_handle.local_addrs()[0].to_string())
            .topic(TopicRule::new(
                "sensors/#",
                Direction::Out,
                QoS::AtLeastOnce,
            )),
    );
    let (_broker, handle, addr) = start(c);
    wait_bridge(&handle, "connected", |b| b.connected);
    remote_handle.stop().expect("stop the remote");
    wait_bridge(&handle, "down", |b| !b.connected);
    let app = handle.client("app").expect("client");
    for i in 0..5 {
        app.publish(&format!("sensors/{i}"), b"21.5", QoS::AtLeastOnce, i == 0)
            .expect("publish");
    }
    let stats = handle.stats().expect("stats");
    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(
        r.head
            .contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{}",
        r.head
    );
    let scrape = parse_metrics(&r.body);
    let f = |name| sample(&scrape, name, None);
    assert_eq!(f("boxmq_clients_connected"), stats.clients_connected as f64);
    assert_eq!(f("boxmq_clients_connected"), 1.0);
    assert!(f("boxmq_messages_received_total") >= 5.0);
    assert_eq!(f("boxmq_retained_messages"), stats.retained_messages as f64);
    assert_eq!(f("boxmq_healthy"), 1.0);
    assert_eq!(f("boxmq_store_healthy"), 1.0);
    let central = Some(("bridge", "central"));
    assert_eq!(sample(&scrape, "boxmq_bridge_connected", central), 0.0);
    assert_eq!(
        sample(&scrape, "boxmq_bridge_queued_messages", central),
        stats.bridges[0].queued as f64
    );
    assert_eq!(stats.bridges[0].queued, 5, "{stats:?}");
    assert_eq!(sample(&scrape, "boxmq_bridge_connects_total", central), 1.0);
    assert_eq!(
        sample(&scrape, "boxmq_bridge_dropped_messages_total", central),
        0.0
    );
    // Each QoS 1 publish waited for its commit's fdatasync.
    let hist = scrape
        .samples
        .iter()
        .find(|s| s.metric == "boxmq_store_fsync_duration_seconds")
        .expect("the fsync histogram");
    let prometheus_parse::Value::Histogram(buckets) = &hist.value else {
        panic!("not a histogram: {hist:?}");
    };
    let inf = buckets.last().expect("buckets");
    assert!(
        inf.less_than.is_infinite() && inf.count >= 1.0,
        "{buckets:?}"
    );
    assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count));
    handle.stop().expect("stop");
}

/// `/health` and `/status.json`: 200 while all is well; a bridge down past
/// `http_bridge_down_grace` makes `/health` 503 with the reason.
#[test]
fn health_turns_503_when_a_bridge_stays_down() {
    let mut c = config();
    c.http.bridge_down_grace = Duration::from_secs(1);
    c.bridges.push(down_bridge());
    let (_broker, handle, addr) = start(c);
    let r = get(addr, "/health");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.head.contains("Content-Type: application/json"));
    assert!(
        r.body
            .starts_with("{\"state\":\"Running\",\"healthy\":true,"),
        "{}",
        r.body
    );
    let status = get(addr, "/status.json");
    assert!(
        status
            .body
            .contains("\"bridges\":[{\"name\":\"central\",\"connected\":false,"),
        "{}",
        status.body
    );
    let deadline = Instant::now() + WAIT;
    let r = loop {
        let r = get(addr, "/health");
        if r.status != 200 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.body
            .contains("\"healthy\":false,\"reason\":\"bridge central: down for "),
        "{}",
        r.body
    );
    // The embedding application reaches the same verdict.
    let stats = handle.stats().expect("stats");
    let verdict = boxmq::http::health(&stats, Duration::from_secs(1), Instant::now());
    assert!(!verdict.healthy && verdict.reasons[0].starts_with("bridge central"));
    handle.stop().expect("stop");
}

/// With `http_require_auth`, every path needs a user of the password file.
#[test]
fn basic_auth_against_the_password_file() {
    let dir = TempDir::new("http-auth");
    let mut users = boxmq::auth::PasswordFile::new();
    users.set("ops", b"s3cret").expect("user");
    let file = dir.path().join("passwd");
    std::fs::write(&file, users.to_text()).expect("write");
    let mut c = config();
    c.password_file = Some(file);
    c.http.require_auth = true;
    let (_broker, handle, addr) = start(c);
    for path in ["/", "/health", "/metrics", "/status.json"] {
        let r = get(addr, path);
        assert_eq!(r.status, 401, "{path}");
        assert!(r.head.contains("WWW-Authenticate: Basic realm=\"boxmq\""));
    }
    // ops:s3cret, then ops:wrong
    let with = |value: &str| {
        request(
            addr,
            &format!("GET /health HTTP/1.1\r\nAuthorization: Basic {value}\r\n\r\n"),
        )
    };
    assert_eq!(with("b3BzOnMzY3JldA==").status, 200);
    assert_eq!(with("b3BzOndyb25n").status, 401);
    handle.stop().expect("stop");
}

/// Reads until the server closes; `true` if it did within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).expect("timeout");
    let mut sink = [0u8; 4096];
    loop {
        match s.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// A long head gets 431, garbage 400; a client past `max_connections` is
/// closed at once; slow and idle clients are closed at the timeout; and
/// while HTTP clients stall, MQTT goes on.
#[test]
fn requests_connections_and_slow_clients_are_bounded() {
    let mut c = config();
    c.http.max_connections = 2;
    c.http.max_request_bytes = 1024;
    c.http.timeout = Duration::from_millis(600);
    let (_broker, handle, addr) = start(c);

    let long = format!("GET / HTTP/1.1\r\nX-Long: {}\r\n\r\n", "a".repeat(2000));
    assert_eq!(request(addr, &long).status, 431);
    assert_eq!(request(addr, "\x10\x0c\x00\x04MQTT\x04\x02").status, 400);

    // Two silent clients take both slots; a third is closed at once.
    let mut idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    // A slowloris: one byte of a valid head now and then.
    idle[1].write_all(b"GET /hea").expect("send");
    std::thread::sleep(Duration::from_millis(100));
    let mut third = TcpStream::connect(addr).expect("connect");
    let t = Instant::now();
    assert!(closed_within(&mut third, Duration::from_millis(300)));
    assert!(t.elapsed() < Duration::from_millis(300));

    // The loop is not blocked by them: an MQTT round trip.
    let app = handle.client("app").expect("client");
    let sub = app.subscribe("t", QoS::AtMostOnce).expect("subscribe");
    app.publish("t", b"x", QoS::AtMostOnce, false)
        .expect("publish");
    assert_eq!(sub.recv_timeout(WAIT).expect("message").payload, b"x");

    for s in &mut idle {
        let _ = s.write_all(b"d");
        assert!(closed_within(s, Duration::from_secs(3)), "not closed");
    }
    // The slots are free again.
    assert_eq!(get(addr, "/health").status, 200);
    handle.stop().expect("stop");
}

/// The binary reads `http_listener` from its config file.
#[test]
fn the_binary_serves_its_http_listener() {
    let port = free_port();
    let line = format!("http_listener {port} 127.0.0.1");
    let broker = TestBroker::start_with_config(&[&line]);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let r = get(addr, "/health");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("\"state\":\"Running\""), "{}", r.body);
    let page = get(addr, "/");
    assert!(page.head.contains("Content-Type: text/html"));
    assert!(page.body.contains("<title>boxmq status</title>"));
    drop(broker);
}

/// The first of these on `PATH`.
fn find_chromium() -> Option<String> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| std::env::split_paths(&path).any(|d| d.join(name).is_file()))
        .map(str::to_owned)
}

/// Headless Chromium loads the page, runs its script (which fetches
/// `/status.json`) and shows the state, a client and the bridge.
#[test]
fn status_page_in_headless_chromium() {
    let Some(chromium) = find_chromium() else {
        println!(
            "SKIPPED status_page_in_headless_chromium: chromium is not installed \
             (.ci/run installs it: apt-get install chromium)"
        );
        return;
    };
    let mut c = config();
    c.bridges.push(down_bridge());
    let (_broker, handle, addr) = start(c);
    let app = handle.client("dashboard").expect("client");
    app.publish("sensors/door", b"open", QoS::AtLeastOnce, true)
        .expect("publish");
    let profile = TempDir::new("chromium");
    let url = format!("http://{addr}/");
    let run = |extra: &[&str]| {
        let mut cmd = Command::new(&chromium);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--hide-scrollbars",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(&url);
        run_with_timeout(&mut cmd, Duration::from_secs(90))
    };
    let out = run(&["--dump-dom"]);
    assert!(out.success(), "{out}");
    let dom = out.stdout;
    assert!(
        dom.contains("<span id=\"state\" class=\"ok\">Running</span>"),
        "the page does not show the state:\n{dom}"
    );
    // The most: the bridge's local side counted too, open at start to
    // make its session before the first connection to the remote.
    assert!(
        dom.contains("<td class=\"n\" id=\"clients\">1 (most 2)</td>"),
        "{dom}"
    );
    assert!(dom.contains("<td>central</td><td>down "), "{dom}");
    if let Some(png) = std::env::var_os("BOXMQ_SCREENSHOT") {
        let png = Path::new(&png);
        let target = if png.is_absolute() {
            png.to_owned()
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(png)
        };
        let shot = format!("--screenshot={}", target.display());
        let out = run(&[&shot, "--window-size=820,640"]);
        assert!(out.success() && target.is_file(), "{out}");
        println!("screenshot: {}", target.display());
    }
    handle.stop().expect("stop");
}
