//! Mosquitto's own lines (include_dir, the default listener,
//! per_listener_settings, logging, ...) and the agreement of
//! docs/MOSQUITTO.md, the table and mosquitto.conf(5).

use super::*;

// ---- docs/MOSQUITTO.md and mosquitto.conf(5) ----

/// The rows of docs/MOSQUITTO.md: (directive, verdict).
fn mosquitto_md_rows() -> Vec<(String, String)> {
    let doc = include_str!("../../../docs/MOSQUITTO.md");
    doc.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("| `")?;
            let (name, rest) = rest.split_once("` | ")?;
            let verdict = rest.split(" | ").next()?;
            Some((name.to_owned(), verdict.to_owned()))
        })
        .collect()
}

#[test]
fn mosquitto_md_agrees_with_the_table() {
    use directives::Meaning;
    let rows = mosquitto_md_rows();
    assert!(rows.len() > 100, "{} rows", rows.len());
    for (name, verdict) in &rows {
        let d = directives::TABLE
            .iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("docs/MOSQUITTO.md lists '{name}', the parser does not"));
        let want = match d.meaning {
            Meaning::Same => "same",
            Meaning::Differs => "same, with this difference",
            Meaning::Refused => "refused, because",
            Meaning::Own => panic!("'{name}' is boxmq's own, not for docs/MOSQUITTO.md"),
        };
        assert_eq!(verdict, want, "docs/MOSQUITTO.md on '{name}'");
        assert_eq!(
            rows.iter().filter(|(n, _)| n == name).count(),
            1,
            "'{name}' twice"
        );
    }
    for d in directives::TABLE {
        if d.meaning != Meaning::Own {
            assert!(
                rows.iter().any(|(n, _)| n == d.name),
                "the parser knows Mosquitto's '{}', docs/MOSQUITTO.md does not list it",
                d.name
            );
        }
    }
}

/// Directive names of mosquitto.conf(5) as Debian installs it (roff: a
/// `.PP` paragraph that starts with the name in bold).
fn man_page_directives() -> Option<Vec<String>> {
    let out = std::process::Command::new("zcat")
        .arg("/usr/share/man/man5/mosquitto.conf.5.gz")
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut names = Vec::new();
    let mut after_pp = false;
    for line in text.lines() {
        if let (true, Some(rest)) = (after_pp, line.strip_prefix("\\fB")) {
            let name = rest.split("\\fR").next().unwrap_or("").replace("\\&", "");
            let plain = name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.*".contains(&b));
            if plain && !name.is_empty() && !name.starts_with("mosquitto") {
                names.push(name);
            }
        }
        after_pp = line == ".PP";
    }
    Some(names)
}

#[test]
fn every_directive_of_the_man_page_is_in_the_table() {
    let Some(names) = man_page_directives() else {
        eprintln!("skipped: no mosquitto.conf(5) man page (Debian's mosquitto package)");
        return;
    };
    assert!(names.len() > 100, "{names:?}");
    for name in &names {
        let d = directives::find(name.trim_end_matches('*').trim_end_matches('_'));
        let known = directives::TABLE.iter().any(|d| d.name == name) || d.is_some();
        assert!(
            known,
            "mosquitto.conf(5) names '{name}', the parser does not"
        );
    }
}

// ---- Mosquitto's general lines ----

/// A fresh directory under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("boxmq-config-dir-{}-{n}", std::process::id());
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("mkdir");
        TempDir(path)
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write");
        path.to_str().expect("utf-8").to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn include_dir_reads_conf_files_in_mosquittos_order() {
    let dir = TempDir::new();
    let d = dir.0.display().to_string();
    dir.file("b.conf", "max_sessions 2\n");
    dir.file("B.conf", "max_sessions 1\nmax_retained_messages 7\n");
    dir.file("a.conf", "max_sessions 9\n");
    dir.file("notes.txt", "not a directive\n");
    // B.conf, then b.conf: the lower-case file wins; the main file's
    // lines after include_dir win over both.
    let c = parse(&format!("max_retained_messages 3\ninclude_dir {d}\n")).unwrap();
    assert_eq!(c.limits.max_sessions, 2);
    assert_eq!(c.limits.max_retained_messages, 7);
    let c = parse(&format!("include_dir {d}\nmax_sessions 5\n")).unwrap();
    assert_eq!(c.limits.max_sessions, 5);
    // An error names the included file and its line.
    let bad = dir.file("c.conf", "\nxyz 1\n");
    let e = parse(&format!("include_dir {d}\n")).unwrap_err();
    assert_eq!((e.origin.as_str(), e.line), (bad.as_str(), 2));
    std::fs::remove_file(&bad).expect("rm");
    // Only from the main file.
    let nested = TempDir::new();
    nested.file("x.conf", &format!("include_dir {d}\n"));
    let e = parse(&format!("include_dir {}\n", nested.0.display())).unwrap_err();
    assert!(e.message.contains("only the main config file"), "{e}");
    fails_with(
        "include_dir /nonexistent/boxmq",
        1,
        &["include_dir: /nonexistent"],
    );
}

#[test]
fn allow_anonymous_defaults_to_false_with_listeners_and_a_password_file() {
    assert!(parse("").unwrap().allow_anonymous);
    assert!(parse("listener 1883").unwrap().allow_anonymous);
    assert!(parse("password_file /p").unwrap().allow_anonymous);
    // Mosquitto 2.0 would require a password here: so does boxmq.
    assert!(
        !parse("listener 1883\npassword_file /p")
            .unwrap()
            .allow_anonymous
    );
    assert!(
        !parse("password_file /p\nport 1883")
            .unwrap()
            .allow_anonymous
    );
    let c = parse("listener 1883\npassword_file /p\nallow_anonymous true").unwrap();
    assert!(c.allow_anonymous);
}

#[test]
fn default_listener_lines() {
    let c = parse("bind_address 127.0.0.1\nport 1884\nlistener 1885 ::1\n").unwrap();
    let addrs: Vec<_> = c.listeners.iter().map(|l| l.addr).collect();
    assert_eq!(addrs, vec![sa("127.0.0.1:1884"), sa("[::1]:1885")]);
    let c = parse("bind_address 10.0.0.2\n").unwrap();
    assert_eq!(c.listeners[0].addr, sa("10.0.0.2:1883"));
    let c = parse("listener 1\nsocket_domain ipv6\nlistener 2\nsocket_domain ipv4\n").unwrap();
    assert_eq!(c.listeners[0].addr, sa("[::]:1"));
    assert_eq!(c.listeners[1].addr, sa("0.0.0.0:2"));
    fails_with(
        "listener 1 ::1\nsocket_domain ipv4",
        2,
        &["not of this family"],
    );
    // Lines for the default listener when nothing starts it.
    let (_, message) = fail("protocol websockets");
    assert!(
        message.contains("default listener") || message.contains("built without"),
        "{message}"
    );
    parse("protocol mqtt\nrequire_certificate false\nlistener 1\n").unwrap();
}

#[test]
fn per_listener_settings_gives_each_listener_its_security_lines() {
    let c = parse(
        "per_listener_settings true\nport 1883\nallow_anonymous true\n\
         listener 1884\npassword_file /p\nacl_file /a\n\
         listener 1885\nallow_anonymous false\n\
         listener 1886\n",
    )
    .unwrap();
    let l = &c.listeners;
    assert_eq!(l.len(), 4);
    // The default listener (port 1883) first, with the lines before any
    // `listener`.
    assert_eq!(l[0].addr.port(), 1883);
    assert_eq!(l[0].allow_anonymous, Some(true));
    assert!(l[0].own_allow_anonymous());
    assert_eq!(l[1].password_file, Some(PathBuf::from("/p")));
    assert_eq!(l[1].acl_file, Some(PathBuf::from("/a")));
    // A password file without allow_anonymous refuses anonymous clients.
    assert!(!l[1].own_allow_anonymous() && !c.anonymous_on(1));
    assert!(!l[2].own_allow_anonymous() && l[2].password_file.is_none());
    assert!(l[3].own_allow_anonymous() && l[3].acl_file.is_none());
    // per_listener_settings may come after the lines it governs.
    let c = parse("listener 1\nacl_file /a\nlistener 2\nper_listener_settings true\n").unwrap();
    assert_eq!(c.listeners[0].acl_file, Some(PathBuf::from("/a")));
    assert_eq!(c.listeners[1].acl_file, None);
    // Before any listener, without a port line: no listener to apply to.
    let (line, message) = fail("per_listener_settings true\nallow_anonymous true\nlistener 1\n");
    assert_eq!(line, 2);
    assert!(
        message.contains("default listener, which is not started"),
        "{message}"
    );
    // Off (Mosquitto's default): one setting for all; the listeners'
    // own stay empty.
    let c = parse("listener 1\nallow_anonymous false\nlistener 2\n").unwrap();
    assert!(!c.allow_anonymous && !c.anonymous_on(1));
    assert_eq!(c.listeners[1].allow_anonymous, None);
}

#[test]
fn logging_lines() {
    use super::LogDest;
    let c = parse(
        "log_dest stdout\nlog_dest file /var/log/b.log\nlog_dest syslog\nlog_dest stdout\n\
         log_facility 5\nlog_timestamp false\nlog_timestamp_format %Y-%m-%d %H:%M:%S\n\
         connection_messages false\n",
    )
    .unwrap();
    assert_eq!(
        c.log.destinations(),
        vec![
            LogDest::Stdout,
            LogDest::File("/var/log/b.log".into()),
            LogDest::Syslog
        ]
    );
    assert_eq!(c.log.facility, Some(5));
    assert!(!c.log.timestamp && !c.log.connection_messages);
    assert_eq!(c.log.timestamp_format.as_deref(), Some("%Y-%m-%d %H:%M:%S"));
    assert_eq!(parse("").unwrap().log.destinations(), vec![LogDest::Stderr]);
    let c = parse("log_dest stdout\nlog_dest none\n").unwrap();
    assert!(c.log.destinations().is_empty());
    fails_with("log_dest file a\nlog_dest file b", 2, &["only one file"]);
    fails_with("log_dest file", 1, &["expected 'log_dest file PATH'"]);
    fails_with("log_dest tty", 1, &["log_dest: expected"]);
    fails_with("log_facility 8", 1, &["from 0 to 7"]);
}

/// `tls_version` and `bridge_tls_version`: Mosquitto's minimum TLS
/// version, `tlsv1.2` (the default) or `tlsv1.3`; rustls has no 1.1.
#[test]
fn tls_version_lines() {
    // The default asks for nothing TLS needs, on any build.
    let c = parse("listener 1\ntls_version tlsv1.2\nconnection b\naddress h\ntopic #\nbridge_tls_version tlsv1.2")
        .unwrap();
    assert!(!c.listeners[0].tls13_only && !c.bridges[0].tls13_only);
    for line in [
        "tls_version tlsv1.1",
        "connection b\nbridge_tls_version tlsv1.1",
    ] {
        let (_, message) = fail(line);
        assert!(message.contains("tlsv1.1: not supported: "), "{message}");
        assert!(message.contains("use tlsv1.2"), "{message}");
    }
    fails_with("tls_version sslv3", 1, &["expected 'tls_version tlsv1.2'"]);
    fails_with(
        "bridge_tls_version tlsv1.2",
        1,
        &["must follow a 'connection NAME'"],
    );
    let tls = "listener 8883\ncertfile /c\nkeyfile /k\ntls_version tlsv1.3\n\
               connection b\naddress h\ntopic #\nbridge_cafile /ca\nbridge_tls_version tlsv1.3\n";
    if !cfg!(feature = "tls") {
        fails_with(tls, 2, &["built without the 'tls' feature"]);
        return;
    }
    let c = parse(tls).unwrap();
    assert!(c.listeners[0].tls13_only && c.bridges[0].tls13_only);
    // TLS 1.3 alone on a listener or bridge without TLS says so.
    fails_with(
        "listener 1\ntls_version tlsv1.3",
        1,
        &["TLS settings without 'certfile'"],
    );
    fails_with(
        "connection b\naddress h\ntopic #\nbridge_tls_version tlsv1.3",
        0,
        &["TLS settings without 'bridge_cafile'"],
    );
}

#[test]
fn pid_file_user_and_defaults_only_lines() {
    let c = parse("pid_file /run/b.pid\nuser mqtt\n").unwrap();
    assert_eq!(c.pid_file, Some(PathBuf::from("/run/b.pid")));
    assert_eq!(c.user.as_deref(), Some("mqtt"));
    // Lines accepted at the value that is what boxmq does.
    for line in [
        "set_tcp_nodelay false",
        "allow_duplicate_messages true",
        "check_retain_source true",
        "websockets_log_level 0",
        "connection b\naddress h\nbridge_attempt_unsubscribe true\nstart_type automatic\n\
         threshold 10\nidle_timeout 60\nclientid x\nusername u\npassword p\ntopic #",
    ] {
        parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    fails_with(
        "connection b\nstart_type manual",
        2,
        &["start_type manual: not supported", "RSMB"],
    );
    assert_eq!(parse("max_keepalive 60").unwrap().limits.max_keepalive, 60);
    assert_eq!(
        parse("max_keepalive 0").unwrap().limits.max_keepalive,
        65535
    );
    fails_with("max_keepalive 9", 1, &["from 10 to 65535"]);
    fails_with("threshold 10", 1, &["must follow a 'connection NAME' line"]);
}

#[test]
fn client_id_and_listener_lines_reach_the_core() {
    let c = parse(
        "allow_zero_length_clientid false\nauto_id_prefix panel -\nlistener 1884\nmax_qos 1\n\
         use_username_as_clientid true\nlistener 1885\n",
    )
    .unwrap();
    let o = c.core_options();
    assert!(!o.allow_zero_length_clientid);
    // The rest of the line, as Mosquitto reads it.
    assert_eq!(o.auto_id_prefix, "panel -");
    assert_eq!(o.listeners.len(), 2);
    assert_eq!(o.listeners[0].max_qos, crate::codec::QoS::AtLeastOnce);
    assert!(o.listeners[0].use_username_as_clientid);
    // Per listener: the next one has Mosquitto's defaults.
    assert_eq!(o.listeners[1], crate::core::ListenerOptions::default());
    let o = parse("").unwrap().core_options();
    assert!(o.allow_zero_length_clientid);
    assert_eq!(o.auto_id_prefix, "auto-");
    fails_with("listener 1884\nmax_qos 3", 2, &["expected 'max_qos 0'"]);
    fails_with("auto_id_prefix", 1, &["expected 'auto_id_prefix PREFIX'"]);
    fails_with("allow_zero_length_clientid no", 1, &["expected"]);
    // Before any listener they are the default listener's, as in Mosquitto.
    fails_with("max_qos 1", 0, &["only a 'port' line starts"]);
    let c = parse("port 1884\nmax_qos 0\n").unwrap();
    assert_eq!(
        c.core_options().listeners[0].max_qos,
        crate::codec::QoS::AtMostOnce
    );
}

#[test]
fn persistent_client_expiration_takes_mosquittos_units() {
    for (value, secs) in [
        ("2h", 7200),
        ("14d", 14 * 86_400),
        ("1w", 7 * 86_400),
        ("2m", 60 * 86_400),
        ("1y", 365 * 86_400),
    ] {
        let c = parse(&format!("persistent_client_expiration {value}")).unwrap();
        assert_eq!(c.persistent_client_expiration, Some(secs), "{value}");
        assert_eq!(c.core_options().persistent_client_expiration, Some(secs));
    }
    assert_eq!(parse("").unwrap().persistent_client_expiration, None);
    for bad in ["14", "14s", "0d", "d", "-1d", "1.5d", "200y"] {
        fails_with(
            &format!("persistent_client_expiration {bad}"),
            1,
            &["persistent_client_expiration: "],
        );
    }
}

#[test]
fn mount_point_is_per_listener() {
    let c = parse("listener 1884\nmount_point site1/\nlistener 1885\n").unwrap();
    let o = c.core_options();
    assert_eq!(o.listeners[0].mount_point.as_deref(), Some("site1/"));
    assert_eq!(o.listeners[1].mount_point, None);
    fails_with("listener 1884\nmount_point site/#", 2, &["a topic name"]);
    fails_with(
        "listener 1884\nmount_point",
        2,
        &["expected 'mount_point PREFIX'"],
    );
}

#[test]
fn max_inflight_bytes_is_a_byte_bound_or_none() {
    let c = parse("max_inflight_bytes 4096").unwrap();
    assert_eq!(c.core_options().max_inflight_bytes, 4096);
    assert_eq!(parse("max_inflight_bytes 0").unwrap().max_inflight_bytes, 0);
    assert_eq!(parse("").unwrap().max_inflight_bytes, 0);
    fails_with("max_inflight_bytes -5", 1, &["max_inflight_bytes: '-5'"]);
}

#[test]
fn per_listener_client_id_lines() {
    // With per_listener_settings true each listener has its own; the
    // others get Mosquitto's defaults.
    let c = parse(
        "per_listener_settings true\nlistener 1884\nallow_anonymous true\n\
         allow_zero_length_clientid false\nlistener 1885\nallow_anonymous true\n\
         auto_id_prefix panel-\n",
    )
    .unwrap();
    let o = c.core_options();
    assert_eq!(o.listeners[0].allow_zero_length_clientid, Some(false));
    assert_eq!(o.listeners[0].auto_id_prefix.as_deref(), Some("auto-"));
    assert_eq!(o.listeners[1].allow_zero_length_clientid, Some(true));
    assert_eq!(o.listeners[1].auto_id_prefix.as_deref(), Some("panel-"));
    assert!(o.allow_zero_length_clientid, "the global one is untouched");
    // Without it, one setting for all.
    let c = parse("listener 1884\nallow_zero_length_clientid false\nlistener 1885\n").unwrap();
    let o = c.core_options();
    assert!(!o.allow_zero_length_clientid);
    assert_eq!(o.listeners[1].allow_zero_length_clientid, None);
}
