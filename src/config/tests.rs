//! Tests of the config file and command line parsing.

use super::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "test.conf")
}

/// Parse text expected to fail; return (line, message).
fn fail(text: &str) -> (usize, String) {
    match parse(text) {
        Ok(c) => panic!("expected an error for {text:?}, got {c:?}"),
        Err(e) => {
            assert_eq!(e.origin, "test.conf");
            (e.line, e.message)
        }
    }
}

/// Assert that `text` fails on `line` with a message containing every part.
fn fails_with(text: &str, line: usize, parts: &[&str]) {
    let (got_line, message) = fail(text);
    assert_eq!(got_line, line, "line for {text:?}: {message}");
    for part in parts {
        assert!(
            message.contains(part),
            "message for {text:?} lacks {part:?}: {message}"
        );
    }
}

fn args(list: &[&str]) -> Result<Command, ConfigError> {
    parse_args(list.iter().map(|s| s.to_string()))
}

fn run(list: &[&str]) -> Config {
    match args(list) {
        Ok(Command::Run(c)) => *c,
        other => panic!("expected Run for {list:?}, got {other:?}"),
    }
}

fn args_error(list: &[&str]) -> String {
    match args(list) {
        Err(e) => {
            assert_eq!(e.origin, "boxmq");
            assert_eq!(e.line, 0);
            assert!(!e.message.contains('\n'));
            e.message
        }
        Ok(c) => panic!("expected an error for {list:?}, got {c:?}"),
    }
}

/// A file under the temp dir, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(contents: &[u8]) -> TempFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("boxmq-config-test-{}-{n}.conf", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, contents).expect("write temp file");
        TempFile(path)
    }

    fn arg(&self) -> String {
        self.0.to_str().expect("utf-8 temp path").to_owned()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// ---- defaults ----

#[test]
fn defaults() {
    let c = Config::default();
    assert!(c.listeners.is_empty());
    assert_eq!(c.limits, Limits::default());
    assert!(c.allow_anonymous);
    assert_eq!(c.log_level, None);
    assert_eq!(parse("").unwrap(), c);
}

#[test]
fn effective_listeners_default_and_explicit() {
    let c = Config::default();
    assert_eq!(c.effective_listeners(), vec![sa(Config::DEFAULT_LISTEN)]);
    assert_eq!(c.effective_listeners(), vec![sa("127.0.0.1:1883")]);
    let c = Config {
        listeners: vec![
            ListenerConfig::new(sa("0.0.0.0:1883")),
            ListenerConfig::new(sa("[::1]:0")),
        ],
        ..Config::default()
    };
    assert_eq!(
        c.effective_listeners(),
        vec![sa("0.0.0.0:1883"), sa("[::1]:0")]
    );
}

// ---- every directive ----

#[test]
fn every_directive() {
    let text = "\
listener 1883
listener 8883 10.0.0.1
listener 0 ::1
port 1884
allow_anonymous false
log_type warning
max_connections 10
max_packet_size 1000
max_inflight_messages 5
max_queued_messages 6
max_queued_bytes 7000
max_subscriptions_per_session 8
max_sessions 9
max_topic_length 100
max_topic_levels 11
max_client_id_length 64
max_retained_messages 13
max_retained_bytes 14000
max_output_buffer 15000
connect_timeout 16
max_topic_aliases 0
stuck_timeout 17
max_keepalive 60
memory_limit 2000000
message_size_limit 500
";
    let c = parse(text).unwrap();
    let addrs: Vec<SocketAddr> = c.listeners.iter().map(|l| l.addr).collect();
    // `port` is Mosquitto's default listener: first, wherever its line is.
    assert_eq!(
        addrs,
        vec![
            sa("0.0.0.0:1884"),
            sa("0.0.0.0:1883"),
            sa("10.0.0.1:8883"),
            sa("[::1]:0"),
        ]
    );
    assert!(!c.allow_anonymous);
    assert_eq!(c.log_level, Some(LevelFilter::Warn));
    let expected = Limits {
        max_connections: 10,
        max_packet_size: 1000,
        max_inflight: 5,
        max_queued_messages: 6,
        max_queued_bytes: 7000,
        max_subscriptions_per_session: 8,
        max_sessions: 9,
        max_topic_len: 100,
        max_topic_levels: 11,
        max_client_id_len: 64,
        max_retained_messages: 13,
        max_retained_bytes: 14000,
        max_output_buffer: 15000,
        connect_timeout: Duration::from_secs(16),
        max_topic_aliases: 0,
        stuck_timeout: Duration::from_secs(17),
        max_keepalive: 60,
        memory_limit: 2_000_000,
        message_size_limit: 500,
    };
    assert_eq!(c.limits, expected);
    assert_eq!(c.effective_listeners(), addrs);
}

#[test]
fn every_accepted_directive_checks_its_value_and_boxmqs_own_are_in_help() {
    for d in directives::TABLE {
        if matches!(d.apply, directives::Apply::Refuse(_)) || d.name == "include_dir" {
            continue;
        }
        // Without a value each is an arity error, never "unknown"; bridge
        // lines after a bridge, listener lines after a listener.
        let text = format!("listener 1\nconnection b\naddress h\n{}", d.name);
        let (line, message) = fail(&text);
        assert_eq!(line, 4, "{message}");
        assert!(
            message.contains(": expected") || message.contains("was built without the"),
            "{message}"
        );
        if d.meaning == directives::Meaning::Own {
            assert!(
                HELP.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{} ", d.name))),
                "{} missing from HELP",
                d.name
            );
        }
    }
}

#[test]
fn last_setting_wins() {
    let c = parse("max_sessions 5\nmax_sessions 7\nallow_anonymous false\nallow_anonymous true")
        .unwrap();
    assert_eq!(c.limits.max_sessions, 7);
    assert!(c.allow_anonymous);
}

#[test]
fn listener_addresses() {
    let one = |text: &str| -> SocketAddr {
        let c = parse(text).unwrap();
        assert_eq!(c.listeners.len(), 1, "{text}");
        c.listeners[0].addr
    };
    assert_eq!(one("listener 1883"), sa("0.0.0.0:1883"));
    assert_eq!(one("listener 1883 127.0.0.1"), sa("127.0.0.1:1883"));
    assert_eq!(one("listener 1883 localhost"), sa("127.0.0.1:1883"));
    assert_eq!(one("listener 1883 LocalHost"), sa("127.0.0.1:1883"));
    assert_eq!(one("listener 1883 ::"), sa("[::]:1883"));
    assert_eq!(one("listener 1883 [::1]"), sa("[::1]:1883"));
    assert_eq!(one("listener 1883 fe80::1"), sa("[fe80::1]:1883"));
    assert_eq!(one("listener 0"), sa("0.0.0.0:0"));
    assert_eq!(one("listener 65535 0.0.0.0"), sa("0.0.0.0:65535"));
    assert_eq!(one("port 1883"), sa("0.0.0.0:1883"));
    assert_eq!(one("port 0"), sa("0.0.0.0:0"));
}

#[test]
fn listener_errors() {
    let form = "expected 'listener PORT [ADDRESS]'";
    fails_with("listener", 1, &["listener", form]);
    fails_with("\nlistener 1 2 3", 2, &["listener", form]);
    fails_with("listener 65536", 1, &["port 65536", "0 to 65535", form]);
    fails_with("listener 99999999999999999999", 1, &["out of range"]);
    fails_with("listener abc", 1, &["port 'abc'", form]);
    fails_with("listener -1", 1, &["port '-1'"]);
    fails_with("listener +1", 1, &["port '+1'"]);
    fails_with(
        "listener 1883 broker.example.com",
        1,
        &[
            "'broker.example.com'",
            "host names are not resolved; use an IP address",
        ],
    );
    fails_with("listener 1883 300.1.1.1", 1, &["not a valid IPv4 address"]);
    fails_with("listener 1883 1.2.3", 1, &["not a valid IPv4 address"]);
    fails_with(
        "listener 1883 fe80::1%eth0",
        1,
        &["not a valid IPv6 address"],
    );
    fails_with("listener 1883 [::1", 1, &["not a valid IPv6 address"]);
    fails_with(
        "listener 0 /run/mosquitto.sock",
        1,
        &["unix sockets are not supported"],
    );
    fails_with("port", 1, &["port: expected 'port PORT'"]);
    fails_with("port 1883 127.0.0.1", 1, &["expected 'port PORT'"]);
    fails_with("port x", 1, &["port 'x'"]);
}

#[test]
fn duplicate_listeners() {
    fails_with(
        "listener 1883\n\nport 1883",
        3,
        &["the default listener (0.0.0.0:1883) is also defined on line 1"],
    );
    fails_with(
        "listener 1 ::1\nlistener 1 [::1]",
        2,
        &["[::1]:1 is already defined on line 1"],
    );
    // Different addresses, or port 0, are fine.
    let c = parse("listener 1883\nlistener 1883 127.0.0.1\nlistener 0\nlistener 0").unwrap();
    assert_eq!(c.listeners.len(), 4);
}

#[test]
fn allow_anonymous_values() {
    assert!(parse("allow_anonymous true").unwrap().allow_anonymous);
    assert!(!parse("allow_anonymous false").unwrap().allow_anonymous);
    let form = "expected 'allow_anonymous true' or 'allow_anonymous false'";
    fails_with("allow_anonymous yes", 1, &["'yes'", form]);
    fails_with("allow_anonymous True", 1, &["'True'", form]);
    fails_with("allow_anonymous", 1, &[form]);
    fails_with("allow_anonymous true false", 1, &[form]);
}

#[test]
fn log_types() {
    let level = |text: &str| parse(text).unwrap().log_level;
    assert_eq!(level("log_type error"), Some(LevelFilter::Error));
    assert_eq!(level("log_type warning"), Some(LevelFilter::Warn));
    assert_eq!(level("log_type notice"), Some(LevelFilter::Info));
    assert_eq!(level("log_type information"), Some(LevelFilter::Info));
    assert_eq!(level("log_type debug"), Some(LevelFilter::Debug));
    assert_eq!(level("log_type all"), Some(LevelFilter::Trace));
    assert_eq!(level("log_type none"), Some(LevelFilter::Off));
    // The most verbose wins, whatever the order.
    assert_eq!(
        level("log_type error\nlog_type debug\nlog_type warning"),
        Some(LevelFilter::Debug)
    );
    assert_eq!(
        level("log_type none\nlog_type error"),
        Some(LevelFilter::Error)
    );
    assert_eq!(
        level("log_type error\nlog_type none"),
        Some(LevelFilter::Error)
    );
    // Accepted and ignored.
    assert_eq!(
        level("log_type subscribe\nlog_type unsubscribe\nlog_type websockets"),
        None
    );
    assert_eq!(
        level("log_type subscribe\nlog_type notice"),
        Some(LevelFilter::Info)
    );
    fails_with(
        "\n\nlog_type verbose",
        3,
        &["log_type: unknown type 'verbose'"],
    );
    fails_with("log_type", 1, &["log_type: expected 'log_type TYPE'"]);
    fails_with("log_type error debug", 1, &["log_type: expected"]);
}

// ---- numbers ----

#[test]
fn zero_is_refused_for_boxmqs_own_counts() {
    for d in directives::TABLE {
        if d.meaning != directives::Meaning::Own
            || matches!(d.name, "max_topic_aliases" | "reason_strings")
            || d.name.starts_with("persistence_")
            || d.name.starts_with("http_")
            || d.name.starts_with("bridge_")
        {
            continue;
        }
        let (line, message) = fail(&format!("# c\n{} 0", d.name));
        assert_eq!(line, 2);
        assert!(
            message.starts_with(&format!("{}: 0 is not accepted", d.name)),
            "{message}"
        );
        assert!(message.contains("no 'unlimited'"), "{message}");
        assert!(message.contains("(default "), "{message}");
    }
}

#[test]
fn mosquittos_no_maximum_values_are_accepted() {
    // mosquitto.conf(5): -1 (max_connections) and 0 mean no maximum.
    let c = parse("max_connections -1").unwrap();
    assert!(c.connections_up_to_fd_limit);
    let c = parse("max_connections 0\nmax_connections 10").unwrap();
    assert!(!c.connections_up_to_fd_limit);
    assert_eq!(c.limits.max_connections, 10);
    let c = parse(
        "max_packet_size 0\nmax_queued_bytes 0\nmax_inflight_messages 0\n\
         memory_limit 0\nmessage_size_limit 0\nmax_inflight_bytes 0\n",
    )
    .unwrap();
    assert_eq!(c.limits.max_packet_size, 268_435_460);
    assert_eq!(c.limits.max_queued_bytes, usize::MAX);
    // memory_limit 0 (no limit set): the default budget stays.
    assert_eq!(c.limits.memory_limit, 64 * 1024 * 1024);
    assert_eq!(c.limits.message_size_limit, 268_435_455);
    assert_eq!(c.limits.max_queued_messages, 1000);
    assert_eq!(c.limits.max_inflight, u16::MAX);
    let c = parse("max_queued_messages 0\nmax_queued_bytes 100").unwrap();
    assert_eq!(c.limits.max_queued_messages, usize::MAX);
    // Both queue bounds off would leave a queue unbounded.
    fails_with(
        "max_queued_messages 0\nmax_queued_bytes 0",
        2,
        &["without any bound"],
    );
    // A later real bound takes the "no maximum" back.
    parse("max_queued_messages 0\nmax_queued_bytes 0\nmax_queued_messages 5").unwrap();
}

#[test]
fn defaults_are_mosquittos_bounded_by_the_budget() {
    let c = parse("").unwrap();
    // max_connections -1, max_packet_size 0, max_queued_bytes 0,
    // message_size_limit 0: Mosquitto's defaults.
    assert!(c.connections_up_to_fd_limit);
    assert_eq!(c.limits.max_packet_size, 268_435_460);
    assert_eq!(c.limits.max_queued_bytes, usize::MAX);
    assert_eq!(c.limits.message_size_limit, 268_435_455);
    assert_eq!(c.limits.memory_limit, 64 * 1024 * 1024);
    assert_eq!(
        parse("memory_limit 1048576").unwrap().limits.memory_limit,
        1 << 20
    );
    fails_with("memory_limit 1048575", 1, &["memory_limit"]);
    fails_with("message_size_limit 268435456", 1, &["message_size_limit"]);
}

#[test]
fn negatives_are_refused() {
    fails_with(
        "max_queued_messages -1",
        1,
        &["max_queued_messages: '-1'", "or 0 for no maximum"],
    );
    fails_with(
        "max_connections -2",
        1,
        &["'-2'", "or -1 or 0 for no maximum"],
    );
    fails_with("max_sessions -5", 1, &["-5 is not accepted"]);
    fails_with("max_sessions -", 1, &["'-' is not a whole number"]);
}

#[test]
fn malformed_numbers() {
    for bad in ["1k", "+5", "0x10", "1_000", "1.5", "1e3", "ten", "１２"] {
        let (line, message) = fail(&format!("max_sessions {bad}"));
        assert_eq!(line, 1);
        assert!(
            message.contains(&format!("'{bad}' is not a whole number")),
            "{message}"
        );
        assert!(
            message.contains("expected 'max_sessions N' with N a whole number"),
            "{message}"
        );
    }
    fails_with(
        "max_retained_bytes 99999999999999999999999",
        1,
        &["max_retained_bytes: 99999999999999999999999 is too large"],
    );
    fails_with(
        "max_sessions",
        1,
        &["max_sessions: expected 'max_sessions N'"],
    );
    fails_with(
        "max_sessions 1 2",
        1,
        &["max_sessions: expected 'max_sessions N'"],
    );
}

#[test]
fn ranges() {
    let limits = |text: &str| parse(text).unwrap().limits;
    // Bounds that are accepted.
    assert_eq!(limits("max_connections 1").max_connections, 1);
    assert_eq!(limits("max_connections 1048576").max_connections, 1 << 20);
    assert_eq!(limits("max_packet_size 128").max_packet_size, 128);
    assert_eq!(
        limits("max_packet_size 268435460").max_packet_size,
        268_435_460
    );
    assert_eq!(limits("max_inflight_messages 1").max_inflight, 1);
    assert_eq!(limits("max_inflight_messages 65535").max_inflight, 65535);
    assert_eq!(limits("max_topic_length 65535").max_topic_len, 65535);
    assert_eq!(limits("max_topic_levels 1").max_topic_levels, 1);
    assert_eq!(limits("max_client_id_length 23").max_client_id_len, 23);
    assert_eq!(
        limits("connect_timeout 3600").connect_timeout,
        Duration::from_secs(3600)
    );
    assert_eq!(
        limits("stuck_timeout 3600").stuck_timeout,
        Duration::from_secs(3600)
    );
    // The largest the target's usize holds (2^64 - 1 or, on 32-bit ARM,
    // 2^32 - 1).
    assert_eq!(
        limits(&format!("max_queued_bytes {}", usize::MAX)).max_queued_bytes as u64,
        USIZE_MAX
    );
    // And just past them.
    fails_with(
        "max_connections 1048577",
        1,
        &["'1048577'", "from 1 to 1048576"],
    );
    fails_with(
        "max_packet_size 127",
        1,
        &["max_packet_size: '127'", "from 128 to 268435460"],
    );
    fails_with("max_packet_size 268435461", 1, &["'268435461'"]);
    fails_with(
        "max_inflight_messages 65536",
        1,
        &["max_inflight_messages: '65536'", "from 1 to 65535"],
    );
    fails_with("max_topic_length 65536", 1, &["65536 is too large"]);
    fails_with("max_topic_levels 65536", 1, &["65536 is too large"]);
    fails_with(
        "max_client_id_length 22",
        1,
        &["max_client_id_length: 22 is too small", "from 23 to 65535"],
    );
    fails_with(
        "connect_timeout 3601",
        1,
        &["connect_timeout: 3601 is too large", "from 1 to 3600"],
    );
    fails_with(
        "stuck_timeout 3601",
        1,
        &["stuck_timeout: 3601 is too large", "from 1 to 3600"],
    );
}

// ---- unsupported and unknown ----

#[test]
fn refused_mosquitto_directives_say_why() {
    for d in directives::TABLE {
        let directives::Apply::Refuse(why) = d.apply else {
            continue;
        };
        let name = d.name.replace('*', "x");
        let (line, message) = fail(&format!("\n{name} some value"));
        assert_eq!(line, 2);
        assert_eq!(message, format!("{name}: not supported: {why}"));
    }
    // Values boxmq cannot do are refused with the reason too.
    fails_with("log_dest dlt", 1, &["use log_dest syslog"]);
    fails_with(
        "connection b\nbridge_require_ocsp true",
        2,
        &[
            "bridge_require_ocsp true: not supported",
            "does not check OCSP responses",
            "remove the line",
        ],
    );
    let c = parse("log_dest topic\nlog_dest stderr").expect("log_dest topic");
    assert_eq!(
        c.log.dests,
        Some(vec![
            crate::config::LogDest::Topic,
            crate::config::LogDest::Stderr
        ])
    );
}

#[test]
fn unknown_directives() {
    fails_with("\n\n\nxyz 1", 4, &["unknown directive 'xyz'"]);
    let (_, message) = fail("xyz");
    assert_eq!(message, "unknown directive 'xyz'");
    fails_with(
        "Max_Connections 5",
        1,
        &["unknown directive 'Max_Connections' (directive names are lower case)"],
    );
    // Control characters are escaped, long words cut.
    let (_, message) = fail("a\u{7}b");
    assert!(message.contains("a\\u{7}b"), "{message}");
    let long = "x".repeat(500);
    let (_, message) = fail(&long);
    assert!(message.len() < 100, "{message}");
    assert!(message.ends_with("...'"), "{message}");
}

// ---- layout ----

#[test]
fn comments_blank_lines_and_whitespace() {
    let text =
        "# a comment\n\n   \n\t# indented comment\n  listener\t1883   127.0.0.1  \n#listener 1\n";
    let c = parse(text).unwrap();
    assert_eq!(c.effective_listeners(), vec![sa("127.0.0.1:1883")]);
    // '#' mid-line is not a comment.
    fails_with(
        "\nmax_sessions 10 # ten",
        2,
        &[
            "max_sessions: unexpected '#'",
            "only at the beginning of a line",
        ],
    );
    fails_with("listener 1883 #all", 1, &["'#all'"]);
}

#[test]
fn crlf_and_bom() {
    let text = "\u{feff}# hi\r\nmax_sessions 12\r\n\r\nlog_type debug\r\n";
    let c = parse(text).unwrap();
    assert_eq!(c.limits.max_sessions, 12);
    assert_eq!(c.log_level, Some(LevelFilter::Debug));
    fails_with("a_ok\r\n", 1, &["unknown directive 'a_ok'"]);
    fails_with(
        "\r\n\r\nmax_sessions x\r\n",
        3,
        &["'x' is not a whole number"],
    );
    // No trailing newline, and a lone CR, are both fine.
    assert_eq!(parse("max_sessions 3").unwrap().limits.max_sessions, 3);
    assert_eq!(parse("max_sessions 3\r").unwrap().limits.max_sessions, 3);
}

#[test]
fn error_display() {
    let e = ConfigError {
        origin: "/etc/boxmq.conf".into(),
        line: 7,
        message: "unknown directive 'xyz'".into(),
    };
    assert_eq!(e.to_string(), "/etc/boxmq.conf:7: unknown directive 'xyz'");
    let e = ConfigError {
        line: 0,
        message: "cannot open".into(),
        ..e
    };
    assert_eq!(e.to_string(), "/etc/boxmq.conf: cannot open");
    let boxed: Box<dyn std::error::Error> = Box::new(e);
    assert!(boxed.to_string().ends_with("cannot open"));
}

// ---- files ----

#[test]
fn from_file_reads_and_names_the_file() {
    let file = TempFile::new(b"listener 1884\nmax_sessions 3\n");
    let c = Config::from_file(&file.0).unwrap();
    assert_eq!(c.effective_listeners(), vec![sa("0.0.0.0:1884")]);
    assert_eq!(c.limits.max_sessions, 3);

    let file = TempFile::new(b"\n\nbogus\n");
    let e = Config::from_file(&file.0).unwrap_err();
    assert_eq!(e.origin, file.0.display().to_string());
    assert_eq!(e.line, 3);
    assert_eq!(
        e.to_string(),
        format!("{}:3: unknown directive 'bogus'", file.arg())
    );
}

#[test]
fn from_file_errors() {
    let missing = std::env::temp_dir().join(format!(
        "boxmq-config-test-{}-missing.conf",
        std::process::id()
    ));
    let e = Config::from_file(&missing).unwrap_err();
    assert_eq!(e.line, 0);
    assert!(e.message.starts_with("cannot open: "), "{e}");

    let file = TempFile::new(b"max_sessions 1\n# caf\xe9\n");
    let e = Config::from_file(&file.0).unwrap_err();
    assert_eq!((e.line, e.message.as_str()), (2, "not UTF-8 text"));

    let big = vec![b'#'; MAX_FILE_SIZE as usize + 1];
    let file = TempFile::new(&big);
    let e = Config::from_file(&file.0).unwrap_err();
    assert_eq!(e.line, 0);
    assert!(e.message.starts_with("larger than 1048576 bytes"), "{e}");

    let dir = Config::from_file(&std::env::temp_dir()).unwrap_err();
    assert_eq!(dir.line, 0);
}

// ---- command line ----

#[test]
fn args_empty_runs_default() {
    assert_eq!(args(&[]).unwrap(), Command::Run(Box::default()));
}

#[test]
fn args_help_and_version() {
    assert_eq!(args(&["-h"]).unwrap(), Command::Help);
    assert_eq!(args(&["--help"]).unwrap(), Command::Help);
    assert_eq!(args(&["-V"]).unwrap(), Command::Version);
    assert_eq!(args(&["--version"]).unwrap(), Command::Version);
    assert_eq!(
        args(&["--listen", "127.0.0.1:1", "--help", "--bogus"]).unwrap(),
        Command::Help
    );
    assert_eq!(args_error(&["--help=x"]), "--help takes no value");
}

#[test]
fn args_listen() {
    let c = run(&[
        "--listen",
        "0.0.0.0:1883",
        "--listen=[::1]:1884",
        "--listen",
        "localhost:0",
    ]);
    assert_eq!(
        c.effective_listeners(),
        vec![sa("0.0.0.0:1883"), sa("[::1]:1884"), sa("127.0.0.1:0")]
    );
    assert_eq!(c.limits, Limits::default());
    // Port 0 may repeat; others may not.
    assert_eq!(
        run(&["--listen=127.0.0.1:0", "--listen=127.0.0.1:0"])
            .listeners
            .len(),
        2
    );
    assert_eq!(
        args_error(&["--listen=127.0.0.1:5", "--listen=127.0.0.1:5"]),
        "--listen: 127.0.0.1:5 is given twice"
    );
}

#[test]
fn args_listen_errors() {
    let form = "expected ADDR:PORT such as 127.0.0.1:1883";
    assert_eq!(
        args_error(&["--listen", "x"]),
        format!("--listen: invalid address 'x': {form}")
    );
    for bad in [
        "1883",
        "127.0.0.1",
        "127.0.0.1:65536",
        "::1:1883",
        "host:1883",
        "",
    ] {
        let m = args_error(&["--listen", bad]);
        assert_eq!(m, format!("--listen: invalid address '{bad}': {form}"));
    }
    assert_eq!(
        args_error(&["--listen=x"]),
        format!("--listen: invalid address 'x': {form}")
    );
    assert_eq!(
        args_error(&["--listen"]),
        format!("--listen: missing value; {form}")
    );
}

#[test]
fn args_other_errors() {
    assert_eq!(
        args_error(&["--bogus"]),
        "unknown option '--bogus' (try --help)"
    );
    assert_eq!(args_error(&["-x"]), "unknown option '-x' (try --help)");
    assert_eq!(
        args_error(&["--bogus=1"]),
        "unknown option '--bogus' (try --help)"
    );
    assert_eq!(
        args_error(&["serve"]),
        "unexpected argument 'serve' (try --help)"
    );
    assert_eq!(args_error(&["-c"]), "-c: missing FILE");
    assert_eq!(args_error(&["--config"]), "--config: missing FILE");
    assert_eq!(args_error(&["--config="]), "--config: missing FILE");
    assert_eq!(
        args_error(&["--config", "--listen", "1.2.3.4:5"]),
        "--config: missing FILE"
    );
    assert_eq!(
        args_error(&["-c", "a.conf", "--config", "b.conf"]),
        "--config: only one config file may be given"
    );
}

#[test]
fn args_config_file() {
    let file = TempFile::new(b"listener 1883 10.1.2.3\r\nmax_sessions 42\r\nlog_type all\r\n");
    let path = file.arg();
    let expected_limits = Limits {
        max_sessions: 42,
        ..Limits::default()
    };
    for list in [vec!["--config", path.as_str()], vec!["-c", path.as_str()]] {
        let c = run(&list);
        assert_eq!(c.effective_listeners(), vec![sa("10.1.2.3:1883")]);
        assert_eq!(c.limits, expected_limits);
        assert_eq!(c.log_level, Some(LevelFilter::Trace));
    }
    // Config file listeners first, then --listen, whatever the order.
    let with_eq = format!("--config={path}");
    let c = run(&[
        "--listen",
        "127.0.0.1:2000",
        with_eq.as_str(),
        "--listen=[::]:2001",
    ]);
    assert_eq!(
        c.effective_listeners(),
        vec![sa("10.1.2.3:1883"), sa("127.0.0.1:2000"), sa("[::]:2001")]
    );
    assert_eq!(c.limits, expected_limits);
    // A --listen that repeats a file listener.
    assert_eq!(
        args_error(&["-c", path.as_str(), "--listen", "10.1.2.3:1883"]),
        "--listen: 10.1.2.3:1883 is already a listener in the config file"
    );
}

#[test]
fn args_config_file_errors() {
    let file = TempFile::new(b"# boxmq\nlistener 1883\npsk_hint x\n");
    let e = args(&["-c", &file.arg()]).unwrap_err();
    assert_eq!(e.origin, file.arg());
    assert_eq!(e.line, 3);
    assert!(
        e.to_string()
            .starts_with(&format!("{}:3: psk_hint: not supported: ", file.arg())),
        "{e}"
    );
    let missing = format!("{}.missing", file.arg());
    let e = args(&["--config", &missing]).unwrap_err();
    assert_eq!((e.origin.as_str(), e.line), (missing.as_str(), 0));
    assert!(e.message.starts_with("cannot open: "), "{e}");
}

// ---- help ----

/// Every "(default X)" in HELP is checked by parsing "NAME X": the result
/// must be the default config, so a stale number in the text fails.
#[test]
fn help_defaults_agree_with_limits() {
    let mut names = Vec::new();
    for line in HELP.lines() {
        let Some((_, rest)) = line.split_once("(default ") else {
            continue;
        };
        let name = line.split_whitespace().next().expect("directive name");
        let value: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let text = format!("{name} {value}");
        let parsed = parse(&text).unwrap_or_else(|e| panic!("HELP line {line:?}: {e}"));
        assert_eq!(parsed, Config::default(), "HELP line {line:?}");
        names.push(name);
    }
    names.sort_unstable();
    names.dedup();
    // allow_anonymous, reason_strings, sys_interval, the eighteen fields of
    // Limits, persistence_mode and persistence_sync.
    assert_eq!(names.len(), 23, "{names:?}");
}

#[test]
fn help_text_basics() {
    assert!(HELP.contains("Usage: boxmq [--listen ADDR:PORT]... [--config FILE]"));
    assert!(HELP.contains(Config::DEFAULT_LISTEN));
    assert!(HELP.contains("RUST_LOG"));
    for flag in ["--listen", "-c, --config", "-h, --help", "-V, --version"] {
        assert!(HELP.contains(flag), "{flag}");
    }
    for line in HELP.lines() {
        assert!(line.chars().count() <= 80, "long HELP line: {line:?}");
    }
}

// ---- bridges ----

#[test]
fn bridge_sections() {
    use crate::bridge::{Direction, QueueFull, RemoteProtocol};
    use crate::codec::QoS;
    let c = parse(
        "listener 1883\n\
         connection cloud\n\
         address 10.0.0.1:1884 10.0.0.2\n\
         topic shellies/# out 1\n\
         topic # both 2 hall/ site/box7/hall/\n\
         topic \"\" in 0 local/cmd remote/cmd\n\
         remote_clientid box7\n\
         remote_username u\n\
         remote_password p\n\
         cleansession true\n\
         keepalive_interval 30\n\
         restart_timeout 2 60\n\
         bridge_protocol_version mqttv50\n\
         try_private false\n\
         notifications false\n\
         notifications_local_only true\n\
         round_robin true\n\
         bridge_max_queued_messages 5000\n\
         bridge_max_queued_bytes 1000000\n\
         bridge_queue_full drop_oldest\n\
         bridge_queue_qos0 false\n\
         connection second\n\
         address 127.0.0.1\n\
         topic a in\n",
    )
    .expect("parses");
    assert_eq!(c.bridges.len(), 2);
    let b = &c.bridges[0];
    assert_eq!(b.addresses, ["10.0.0.1:1884", "10.0.0.2:1883"]);
    assert_eq!(b.topics.len(), 3);
    assert_eq!(b.topics[0].direction, Direction::Out);
    assert_eq!(b.topics[0].qos, QoS::AtLeastOnce);
    assert_eq!(b.topics[1].local_filter(), "hall/#");
    assert_eq!(b.topics[1].remote_filter(), "site/box7/hall/#");
    assert_eq!(b.topics[2].pattern, "");
    assert_eq!(b.topics[2].local_filter(), "local/cmd");
    assert_eq!(b.remote_client_id(), "box7");
    assert_eq!(b.local_client_id(), "$bridge/cloud");
    assert!(b.cleansession && !b.try_private && !b.notifications && b.round_robin);
    assert!(b.notifications_local_only);
    assert_eq!(b.keepalive, 30);
    assert_eq!(
        b.restart_timeout.cap,
        Some(std::time::Duration::from_secs(60))
    );
    assert_eq!(b.protocol, RemoteProtocol::V5);
    assert_eq!(
        (b.max_queued_messages, b.max_queued_bytes, b.queue_full),
        (5000, 1_000_000, QueueFull::DropOldest)
    );
    assert!(!b.queue_qos0);
    let b = &c.bridges[1];
    assert!(b.queue_qos0, "QoS 0 is kept by default");
    assert_eq!(b.topics[0].direction, Direction::In);
    assert_eq!(b.topics[0].qos, QoS::AtMostOnce);
    assert!(b.try_private && b.notifications && !b.cleansession);
    assert!(!b.notifications_local_only);
}

#[test]
fn bridge_lines_are_checked() {
    fails_with(
        "address 1.2.3.4",
        1,
        &["must follow a 'connection NAME' line"],
    );
    fails_with("connection a\nconnection a", 2, &["defined twice"]);
    fails_with("connection a\naddress 1.2.3.4:0", 2, &["address"]);
    fails_with(
        "connection a\ntopic x sideways",
        2,
        &["direction 'sideways'"],
    );
    fails_with("connection a\ntopic x in 3", 2, &["topic"]);
    fails_with(
        "connection a\nbridge_protocol_version mqttv31",
        2,
        &["mqttv31 is not supported"],
    );
    fails_with(
        "connection a\nbridge_queue_full maybe",
        2,
        &["drop_oldest or refuse_new"],
    );
    fails_with(
        "connection a\nbridge_queue_qos0 yes",
        2,
        &["expected 'true' or 'false'"],
    );
    fails_with("connection a\nrestart_timeout 10 5", 2, &["below the base"]);
    // A section without an address or a topic cannot work.
    let (_, message) = fail("connection a\ntopic x out");
    assert!(message.contains("no address"), "{message}");
    let (_, message) = fail("connection a\naddress 127.0.0.1");
    assert!(message.contains("no topic"), "{message}");
}

#[test]
fn bridge_start_types() {
    use crate::bridge::StartType;
    use std::time::Duration;
    let base = "connection a\naddress 127.0.0.1\ntopic x out\n";
    let b = &parse(base).expect("plain").bridges[0];
    assert_eq!(b.start_type, StartType::Automatic);
    assert_eq!((b.idle_timeout, b.threshold), (Duration::from_secs(60), 10));
    let c = parse(&format!(
        "{base}start_type lazy\nidle_timeout 5\nthreshold 3\n"
    ))
    .expect("lazy");
    let b = &c.bridges[0];
    assert_eq!(b.start_type, StartType::Lazy);
    assert_eq!((b.idle_timeout, b.threshold), (Duration::from_secs(5), 3));
    let c = parse(&format!("{base}start_type once\nthreshold 0\n")).expect("once");
    assert_eq!(c.bridges[0].start_type, StartType::Once);
    assert_eq!(c.bridges[0].threshold, 1);
    fails_with(
        &format!("{base}start_type later"),
        4,
        &["automatic, lazy or once"],
    );
    fails_with(&format!("{base}idle_timeout 0"), 4, &["idle_timeout"]);
}

#[test]
fn bridge_retain_size_bind_and_alpn_lines() {
    let base = "connection a\naddress 127.0.0.1\ntopic x out\n";
    let b = &parse(base).expect("plain").bridges[0];
    assert!(b.outgoing_retain && b.max_packet_size.is_none() && b.bind_address.is_none());
    let c = parse(&format!(
        "{base}bridge_outgoing_retain false\nbridge_max_packet_size 1000\n\
         bridge_bind_address 127.0.0.1\n"
    ))
    .expect("lines");
    let b = &c.bridges[0];
    assert!(!b.outgoing_retain);
    assert_eq!(b.max_packet_size, Some(1000));
    assert_eq!(b.bind_address, Some([127, 0, 0, 1].into()));
    let c = parse(&format!("{base}bridge_max_packet_size 0\n")).expect("0");
    assert_eq!(c.bridges[0].max_packet_size, None, "0: no limit");
    fails_with(
        &format!("{base}bridge_bind_address eth0"),
        4,
        &["not an IP address"],
    );
    if cfg!(feature = "tls") {
        let c = parse(&format!("{base}bridge_cafile /ca.pem\nbridge_alpn mqtt\n")).expect("alpn");
        assert_eq!(c.bridges[0].alpn.as_deref(), Some("mqtt"));
        let (_, message) = fail(&format!("{base}bridge_alpn mqtt\n"));
        assert!(message.contains("bridge_cafile"), "{message}");
    } else {
        fails_with(&format!("{base}bridge_alpn mqtt"), 4, &["--features tls"]);
    }
}

#[test]
fn bridge_tls_lines() {
    let base = "connection a\naddress 127.0.0.1:8883\ntopic x out\n";
    let full = format!(
        "{base}bridge_cafile /etc/ca.pem\nbridge_certfile /etc/c.pem\n\
         bridge_keyfile /etc/c.key\nbridge_insecure true\n"
    );
    if !cfg!(feature = "tls") {
        for name in [
            "bridge_cafile",
            "bridge_certfile",
            "bridge_keyfile",
            "bridge_insecure",
        ] {
            fails_with(
                &format!("{base}{name} x"),
                4,
                &[
                    name,
                    "boxmq was built without the 'tls' feature; rebuild with --features tls",
                ],
            );
        }
        return;
    }
    let c = parse(&full).expect("tls bridge");
    let b = &c.bridges[0];
    assert!(b.is_tls());
    assert_eq!(
        b.cafile.as_deref(),
        Some(std::path::Path::new("/etc/ca.pem"))
    );
    assert_eq!(
        b.certfile.as_deref(),
        Some(std::path::Path::new("/etc/c.pem"))
    );
    assert_eq!(
        b.keyfile.as_deref(),
        Some(std::path::Path::new("/etc/c.key"))
    );
    assert!(b.insecure);
    let plain = parse(base).expect("plain bridge");
    assert!(!plain.bridges[0].is_tls() && !plain.bridges[0].insecure);
    fails_with(
        &format!("{base}bridge_insecure maybe"),
        4,
        &["'true' or 'false'"],
    );
    fails_with(&format!("{base}bridge_cafile"), 4, &["expected one value"]);
    let (_, message) = fail(&format!("{base}bridge_certfile /etc/c.pem\n"));
    assert!(message.contains("go together"), "{message}");
    let (_, message) = fail(&format!(
        "{base}bridge_certfile /etc/c.pem\nbridge_keyfile /etc/c.key\n"
    ));
    assert!(message.contains("needs bridge_cafile"), "{message}");
    let (_, message) = fail(&format!("{base}bridge_insecure true\n"));
    assert!(message.contains("needs bridge_cafile"), "{message}");
}

/// The core made without a config file behaves as one made from the
/// default configuration.
#[test]
fn default_core_options_are_the_default_config_s() {
    assert_eq!(
        Config::default().core_options(),
        crate::core::CoreOptions::default()
    );
}

// Mosquitto's directives, docs/MOSQUITTO.md and mosquitto.conf(5).
mod mosquitto;
