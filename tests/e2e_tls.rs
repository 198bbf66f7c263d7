//! TLS listeners end to end (cargo feature `tls`): `mosquitto_pub` and
//! `mosquitto_sub` with `--cafile`, `--cert`/`--key`, client certificates
//! as user names under an ACL, certificates that do not verify, garbage
//! and stalled handshakes, bad certificate files, a slow reader (a rustls
//! client), paho-mqtt over TLS.
//! Certificates come from Debian's `openssl` (tests/common/certs.rs).
//!
//! Run: `cargo test --features tls --test e2e_tls`.

mod common;

use common::certs::Certs;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

/// A broker with its usual plain listener plus a TLS one on `tls_port`.
fn start_tls(certs: &Certs, tls_port: u16, extra: &[String]) -> TestBroker {
    let mut lines = vec![
        format!("listener {tls_port} 127.0.0.1"),
        format!("certfile {}", certs.path("server.crt")),
        format!("keyfile {}", certs.path("server.key")),
    ];
    lines.extend(extra.iter().cloned());
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    TestBroker::start_with_config(&lines)
}

/// Reads until the broker closes the connection; panics if it does not
/// within `limit`.
fn expect_closed(s: &mut TcpStream, limit: Duration) {
    s.set_read_timeout(Some(limit)).expect("timeout");
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("connection not closed after {:?}: {e}", start.elapsed()),
        }
        assert!(start.elapsed() < limit, "connection not closed");
    }
}

/// A broker whose TLS listener on `tls_port` requires client
/// certificates and takes the user name from them (`how`:
/// `use_identity_as_username` or `use_subject_as_username`), anonymous
/// clients refused, under the ACL file `acl` (kept in the returned dir).
fn start_certificate_users(
    certs: &Certs,
    tls_port: u16,
    how: &str,
    acl: &str,
) -> (TestBroker, TempDir) {
    let dir = TempDir::new("tls-acl");
    let acl_path = dir.path().join("acl");
    std::fs::write(&acl_path, acl).expect("acl");
    let b = start_tls(
        certs,
        tls_port,
        &[
            format!("cafile {}", certs.path("ca.crt")),
            "require_certificate true".into(),
            format!("{how} true"),
            "allow_anonymous false".into(),
            format!("acl_file {}", acl_path.display()),
        ],
    );
    (b, dir)
}

/// `mosquitto_pub` of one QoS 1 message `name` over TLS to `tls_port`,
/// with the client certificate `<name>.crt`.
fn publish_with_certificate(certs: &Certs, tls_port: u16, name: &str) -> CmdOutput {
    try_mosquitto_pub(
        tls_port,
        &[
            "--cafile",
            &certs.path("ca.crt"),
            "--cert",
            &certs.path(&format!("{name}.crt")),
            "--key",
            &certs.path(&format!("{name}.key")),
            "-t",
            "shellies/s1/input_event/0",
            "-m",
            name,
            "-q",
            "1",
        ],
    )
}

/// The binary with the config `lines` (written into `dir`, persistence
/// off) refuses to start: exit status 2, the output for the caller to
/// check what it names.
fn start_fails(dir: &TempDir, lines: &str) -> CmdOutput {
    let conf = dir.path().join("boxmq.conf");
    std::fs::write(&conf, format!("persistence false\n{lines}")).expect("conf");
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_boxmq"))
            .arg("--config")
            .arg(&conf),
        WAIT,
    );
    assert_eq!(out.status.and_then(|s| s.code()), Some(2), "{out}");
    out
}

#[test]
fn mosquitto_clients_over_tls_with_cafile() {
    let certs = Certs::generate();
    let tls_port = free_port();
    let b = start_tls(&certs, tls_port, &[]);
    let ca = certs.path("ca.crt");
    let sub = MosqSub::start(
        tls_port,
        &["--cafile", &ca, "-t", "t/#", "-v", "-C", "2", "-W", "10"],
    );
    mosquitto_pub(
        tls_port,
        &["--cafile", &ca, "-t", "t/1", "-m", "over tls", "-q", "1"],
    );
    // The plain listener is untouched and shares the broker.
    mosquitto_pub(b.port, &["-t", "t/2", "-m", "plain"]);
    let out = sub.finish(WAIT);
    assert_eq!(out.messages, ["t/1 over tls", "t/2 plain"], "{}", out.raw);
    // A client that does not trust the server's CA gives up.
    let rogue = try_mosquitto_pub(
        tls_port,
        &["--cafile", &certs.path("rogue.crt"), "-t", "t", "-m", "x"],
    );
    assert!(!rogue.success(), "{rogue}");
}

#[test]
fn client_certificate_as_user_name_under_an_acl() {
    let certs = Certs::generate();
    let tls_port = free_port();
    let (b, _dir) = start_certificate_users(
        &certs,
        tls_port,
        "use_identity_as_username",
        "user alice\ntopic readwrite alice/#\ntopic read other/#\n",
    );
    let ca = certs.path("ca.crt");
    let as_alice = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["--cafile", &ca, "--cert", &certs.path("alice.crt")]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(["--key".to_string(), certs.path("alice.key")]);
        v.extend(args.iter().map(|s| s.to_string()));
        v
    };
    let sub_args = as_alice(&[
        "-t", "alice/#", "-t", "other/#", "-v", "-C", "2", "-W", "10",
    ]);
    let sub_args: Vec<&str> = sub_args.iter().map(String::as_str).collect();
    let sub = MosqSub::start(tls_port, &sub_args);
    for (topic, payload) in [("alice/1", "a"), ("other/1", "denied"), ("alice/2", "b")] {
        let args = as_alice(&["-t", topic, "-m", payload]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // 3.1.1: a PUBLISH the ACL denies is dropped without a word.
        mosquitto_pub(tls_port, &args);
    }
    let out = sub.finish(WAIT);
    assert_eq!(out.messages, ["alice/1 a", "alice/2 b"], "{}", out.raw);

    // No certificate, a certificate from another CA (same CN), a
    // certificate without CN: each refused, each with a log line.
    let none = try_mosquitto_pub(tls_port, &["--cafile", &ca, "-t", "alice/x", "-m", "x"]);
    assert!(!none.success(), "{none}");
    for name in ["mallory", "nocn"] {
        let out = try_mosquitto_pub(
            tls_port,
            &[
                "--cafile",
                &ca,
                "--cert",
                &certs.path(&format!("{name}.crt")),
                "--key",
                &certs.path(&format!("{name}.key")),
                "-t",
                "alice/x",
                "-m",
                "x",
            ],
        );
        assert!(!out.success(), "{name}: {out}");
    }
    let logged = |log: &str| {
        log.contains("no subject CN") && log.matches("TLS handshake or record refused").count() >= 2
    };
    let log = b.log_when(Duration::from_secs(5), logged);
    assert!(log.contains("no subject CN"), "{log}");
    assert!(
        log.matches("TLS handshake or record refused").count() >= 2,
        "{log}"
    );
}

#[test]
fn garbage_client_hello_and_stalled_handshake_are_closed() {
    let certs = Certs::generate();
    let tls_port = free_port();
    let b = start_tls(&certs, tls_port, &["connect_timeout 1".into()]);
    let sub = MosqSub::start(b.port, &["-t", "t", "-C", "1", "-W", "10"]);
    // Not TLS at all.
    let mut garbage = TcpStream::connect((HOST, tls_port)).expect("connect");
    garbage
        .write_all(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00 and more garbage")
        .expect("write");
    expect_closed(&mut garbage, Duration::from_secs(5));
    // A record header and then silence: the CONNECT timeout ends it.
    let mut stalled = TcpStream::connect((HOST, tls_port)).expect("connect");
    stalled.write_all(&[0x16, 0x03, 0x01]).expect("write");
    expect_closed(&mut stalled, Duration::from_secs(5));
    // The others did not notice.
    mosquitto_pub(
        tls_port,
        &[
            "--cafile",
            &certs.path("ca.crt"),
            "-t",
            "t",
            "-m",
            "still here",
        ],
    );
    let out = sub.finish(WAIT);
    assert_eq!(out.messages, ["still here"], "{}", out.raw);
    let log = b.log();
    assert!(log.contains("TLS handshake or record refused"), "{log}");
}

/// `crlfile`: a revocation list made with `openssl ca` revokes bob's
/// certificate; bob is refused in the handshake, alice (same CA) is
/// served. A file that is not a CRL stops the broker at start.
#[test]
fn revoked_client_certificate_is_refused() {
    let certs = Certs::generate();
    let crl = certs.crl_revoking(&["bob"]);
    let tls_port = free_port();
    let b = start_tls(
        &certs,
        tls_port,
        &[
            format!("cafile {}", certs.path("ca.crt")),
            "require_certificate true".into(),
            format!("crlfile {crl}"),
        ],
    );
    let ca = certs.path("ca.crt");
    let publish_as = |name: &str| publish_with_certificate(&certs, tls_port, name);
    let sub = MosqSub::start(b.port, &["-t", "shellies/#", "-C", "1", "-W", "10"]);
    let bob = publish_as("bob");
    assert!(!bob.success(), "revoked: {bob}");
    let alice = publish_as("alice");
    assert!(alice.success(), "{alice}");
    let out = sub.finish(WAIT);
    assert_eq!(out.messages, ["alice"], "{}", out.raw);
    let log = b.log();
    assert!(log.contains("TLS handshake or record refused"), "{log}");
    assert!(log.to_lowercase().contains("revoked"), "{log}");

    // Not a CRL: the broker does not start, and names the file.
    let dir = TempDir::new("tls-crl");
    let out = start_fails(
        &dir,
        &format!(
            "listener 0 127.0.0.1\ncertfile {}\nkeyfile {}\n\
             cafile {ca}\nrequire_certificate true\ncrlfile {ca}\n",
            certs.path("server.crt"),
            certs.path("server.key")
        ),
    );
    assert!(out.stderr.contains("no PEM revocation list"), "{out}");
}

/// `capath`: every file of a directory read for client CAs, as Debian's
/// `/etc/ssl/certs` would be (a file that is no certificate skipped): alice
/// (signed by the CA in it) gets through, mallory (rogue CA) is refused.
/// A directory without any certificate stops the start, naming it.
#[test]
fn capath_directory_of_cas() {
    let certs = Certs::generate();
    let dir = TempDir::new("tls-capath");
    let cas = dir.path().join("certs");
    std::fs::create_dir(&cas).expect("mkdir");
    std::fs::write(cas.join("README"), "not a certificate\n").expect("readme");
    std::fs::copy(certs.path("ca.crt"), cas.join("site-ca.pem")).expect("copy ca");
    let tls_port = free_port();
    let b = start_tls(
        &certs,
        tls_port,
        &[
            format!("capath {}", cas.display()),
            "require_certificate true".into(),
        ],
    );
    let publish_as = |name: &str| publish_with_certificate(&certs, tls_port, name);
    let sub = MosqSub::start(b.port, &["-t", "shellies/#", "-C", "1", "-W", "10"]);
    let mallory = publish_as("mallory");
    assert!(!mallory.success(), "rogue CA accepted: {mallory}");
    let alice = publish_as("alice");
    assert!(alice.success(), "{alice}");
    assert_eq!(sub.finish(WAIT).messages, ["alice"]);

    std::fs::remove_file(cas.join("site-ca.pem")).expect("rm");
    let out = start_fails(
        &dir,
        &format!(
            "listener 0 127.0.0.1\ncertfile {}\nkeyfile {}\ncapath {}\n",
            certs.path("server.crt"),
            certs.path("server.key"),
            cas.display()
        ),
    );
    assert!(
        out.stderr
            .contains("capath: no usable PEM CA certificate in the directory"),
        "{out}"
    );
}

#[test]
fn bad_certificate_files_refuse_to_start_naming_the_file() {
    let certs = Certs::generate();
    let dir = TempDir::new("tls-bad");
    let text = dir.path().join("not-pem.crt");
    std::fs::write(&text, "hello\n").expect("write");
    let text = text.to_string_lossy().into_owned();
    let missing = dir
        .path()
        .join("missing.crt")
        .to_string_lossy()
        .into_owned();
    let (server_crt, server_key) = (certs.path("server.crt"), certs.path("server.key"));
    let alice_key = certs.path("alice.key");
    for (cert, key, named) in [
        (missing.as_str(), server_key.as_str(), missing.as_str()),
        (text.as_str(), server_key.as_str(), text.as_str()),
        (server_crt.as_str(), text.as_str(), text.as_str()),
        // A key that does not belong to the certificate.
        (server_crt.as_str(), alice_key.as_str(), alice_key.as_str()),
    ] {
        let out = start_fails(
            &dir,
            &format!("listener 0 127.0.0.1\ncertfile {cert}\nkeyfile {key}\n"),
        );
        assert!(out.stderr.contains(named), "{named}: {out}");
    }
}

#[test]
fn paho_over_tls() {
    let certs = Certs::generate();
    let tls_port = free_port();
    let _b = start_tls(&certs, tls_port, &[]);
    run_paho("transport", tls_port, &["tls", &certs.path("ca.crt")]);
}

/// A rustls client trusting `ca` (the crate's own dependency).
fn tls_client(port: u16, ca: &str) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("ca file") {
        roots.add(cert.expect("ca cert")).expect("add ca");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("client");
    let sock = TcpStream::connect((HOST, port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    rustls::StreamOwned::new(conn, sock)
}

/// One MQTT packet at the start of `b`: (first byte, body, length).
fn split_packet(b: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (mut len, mut mult, mut i) = (0usize, 1usize, 1usize);
    loop {
        let byte = *b.get(i)?;
        len += usize::from(byte & 0x7F) * mult;
        mult *= 128;
        i += 1;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let body = b.get(i..i + len)?.to_vec();
    Some((b[0], body, i + len))
}

/// MQTT packets from `s` until `count` arrived or a read timed out.
fn read_packets<R: Read>(s: &mut R, count: usize) -> Vec<(u8, Vec<u8>)> {
    let mut stream = Vec::new();
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 65536];
    while out.len() < count {
        match s.read(&mut chunk) {
            Ok(0) => panic!("closed by the broker"),
            Ok(n) => stream.extend_from_slice(&chunk[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                assert!(stream.is_empty(), "a packet cut short");
                break;
            }
            Err(e) => panic!("read: {e}"),
        }
        while let Some((first, body, used)) = split_packet(&stream) {
            out.push((first >> 4, body));
            stream.drain(..used);
        }
    }
    out
}

#[test]
fn slow_tls_reader_gets_whole_records_in_order_and_others_are_served() {
    let certs = Certs::generate();
    let tls_port = free_port();
    let b = start_tls(&certs, tls_port, &["max_output_buffer 65536".into()]);
    let mut c = tls_client(tls_port, &certs.path("ca.crt"));
    let mut hello = frame::connect(&ConnectOpts::new("slow-tls"));
    hello.extend(frame::subscribe(1, &[("flood/#", 0)]));
    c.write_all(&hello).expect("hello");
    let p = read_packets(&mut c, 2);
    assert_eq!((p[0].0, p[1].0), (ptype::CONNACK, ptype::SUBACK));

    // 16 MB of QoS 0 messages while the TLS client reads nothing.
    let mut publisher = RawClient::connect(b.port, "flooder");
    flood::send(&mut publisher);
    mosquitto_pub(b.port, &["-t", "other", "-m", "x"]);

    c.sock
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    let got = read_packets(&mut c, usize::MAX);
    flood::check(&got);
    println!(
        "slow TLS reader got {} of {} messages",
        got.len(),
        flood::COUNT
    );
    c.sock
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    publisher.send(&frame::publish("flood/end", b"end", 0, false, false, 0));
    let p = read_packets(&mut c, 1);
    assert_eq!(&p[0].1[2..], b"flood/endend");
}

/// A CONNECT and its CONNACK over a rustls client offering only
/// `versions`: the version agreed, or why the handshake failed.
fn connack_with_versions(
    port: u16,
    ca: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<rustls::ProtocolVersion, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("ca file") {
        roots.add(cert.expect("ca cert")).expect("add ca");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("client");
    let sock = TcpStream::connect((HOST, port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut c = rustls::StreamOwned::new(conn, sock);
    c.write_all(&frame::connect(&ConnectOpts::new("tls-version")))
        .and_then(|()| c.flush())
        .map_err(|e| e.to_string())?;
    let mut connack = [0u8; 4];
    c.read_exact(&mut connack).map_err(|e| e.to_string())?;
    assert_eq!(connack, [0x20, 2, 0, 0], "CONNACK accepted");
    Ok(c.conn.protocol_version().expect("version agreed"))
}

/// `tls_version tlsv1.3`: the listener's minimum TLS version, as in
/// Mosquitto 2.0. A client offering TLS 1.2 alone is refused in the
/// handshake; one offering 1.3 is served, and so is `mosquitto_pub`
/// (which offers both). The listener without the line takes 1.2.
#[test]
fn tls_version_sets_the_listeners_minimum() {
    let certs = Certs::generate();
    let (strict, open) = (free_port(), free_port());
    let b = start_tls(
        &certs,
        strict,
        &[
            "tls_version tlsv1.3".into(),
            format!("listener {open} 127.0.0.1"),
            format!("certfile {}", certs.path("server.crt")),
            format!("keyfile {}", certs.path("server.key")),
            "tls_version tlsv1.2".into(),
        ],
    );
    let ca = certs.path("ca.crt");
    let (tls12, tls13) = (&rustls::version::TLS12, &rustls::version::TLS13);
    let refused = connack_with_versions(strict, &ca, &[tls12]);
    assert!(refused.is_err(), "TLS 1.2 served: {refused:?}");
    assert_eq!(
        connack_with_versions(strict, &ca, &[tls13]),
        Ok(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(
        connack_with_versions(open, &ca, &[tls12]),
        Ok(rustls::ProtocolVersion::TLSv1_2)
    );
    let sub = MosqSub::start(b.port, &["-t", "t", "-C", "1", "-W", "10"]);
    mosquitto_pub(strict, &["--cafile", &ca, "-t", "t", "-m", "over 1.3"]);
    let out = sub.finish(WAIT);
    assert_eq!(out.messages, ["over 1.3"], "{}", out.raw);
    if common::broker_kind() == common::BrokerKind::Boxmq {
        let log = b.log();
        assert!(log.contains("TLS handshake or record refused"), "{log}");
    }
}

/// The subject `use_subject_as_username` takes is the one OpenSSL prints
/// with `-nameopt RFC2253` (Mosquitto's `X509_NAME_print_ex` with
/// `XN_FLAG_RFC2253`), for subjects with escapes, UTF-8, several
/// attributes in one RDN, T61String and BMPString values and an attribute
/// type OpenSSL does not know.
#[test]
fn certificate_subject_is_written_as_openssl_writes_it() {
    let certs = Certs::generate();
    let new_oid = "oid_section = new_oids\n[new_oids]\nboxmqTest = 1.3.6.1.4.1.55555.1\n\
                   [req]\ndistinguished_name = dn\nstring_mask = default\n[dn]\n";
    let cases: &[(&str, Option<&str>)] = &[
        (
            "/C=GB/ST=Nottinghamshire/L=Nottingham/O=Server/OU=Production/CN=test client",
            None,
        ),
        ("/C=DE/CN=a+O=b+emailAddress=x@y.example", None),
        (
            "/CN=Zürich, \"Süd\" <x>;y\\\\z=q/O= lead#/OU=#hash /L=#",
            None,
        ),
        ("/boxmqTest=value/CN=Zürich €/O=Zürich", Some(new_oid)),
        ("/DC=org/DC=example/UID=42/serialNumber=007/CN=x", None),
    ];
    for (i, (subj, config)) in cases.iter().enumerate() {
        let name = format!("subject{i}");
        certs.client(&name, subj, *config);
        let (want, der) = certs.subject_rfc2253(&name);
        let (_, got) = boxmq::net::fuzzing::x509_subject(&der);
        assert_eq!(got.as_deref(), Ok(want.as_str()), "{subj}");
    }
}

/// `use_subject_as_username true`: the client certificate's whole subject
/// is the user name the ACL sees (`user <subject>`), with no password
/// file. The name is taken from OpenSSL's own print of the certificate,
/// so the test holds boxmq to what Mosquitto would use.
#[test]
fn client_certificate_subject_as_user_name_under_an_acl() {
    let certs = Certs::generate();
    certs.client(
        "carol",
        "/C=GB/O=Example, Inc./OU=Line 2+OU=Press #3/CN=carol",
        None,
    );
    let (subject, _) = certs.subject_rfc2253("carol");
    assert_eq!(
        subject,
        r"CN=carol,OU=Press #3+OU=Line 2,O=Example\, Inc.,C=GB"
    );
    let tls_port = free_port();
    let _b = start_certificate_users(
        &certs,
        tls_port,
        "use_subject_as_username",
        &format!("user {subject}\ntopic readwrite line2/#\n"),
    );
    let ca = certs.path("ca.crt");
    let as_client = |who: &str, args: &[&str]| -> Vec<String> {
        let mut v = vec![
            "--cafile".to_string(),
            ca.clone(),
            "--cert".to_string(),
            certs.path(&format!("{who}.crt")),
            "--key".to_string(),
            certs.path(&format!("{who}.key")),
        ];
        v.extend(args.iter().map(|s| s.to_string()));
        v
    };
    let sub_args = as_client("carol", &["-t", "#", "-v", "-C", "2", "-W", "10"]);
    let sub_args: Vec<&str> = sub_args.iter().map(String::as_str).collect();
    let sub = MosqSub::start(tls_port, &sub_args);
    // 3.1.1: a PUBLISH the ACL denies is dropped without a word. Alice's
    // subject (CN=alice,O=boxmq) has no section in the ACL.
    for (who, topic, payload) in [
        ("carol", "line2/press", "carol 1"),
        ("carol", "other/press", "denied topic"),
        ("alice", "line2/press", "denied user"),
        ("carol", "line2/press", "carol 2"),
    ] {
        let args = as_client(who, &["-t", topic, "-m", payload]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        mosquitto_pub(tls_port, &args);
    }
    let out = sub.finish(WAIT);
    assert_eq!(
        out.messages,
        ["line2/press carol 1", "line2/press carol 2"],
        "{}",
        out.raw
    );
}
