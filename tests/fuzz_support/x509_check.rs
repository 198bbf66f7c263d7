//! The `x509` target's property (cargo feature `tls`): the reading of a
//! client certificate's subject for `use_identity_as_username` (first CN)
//! and `use_subject_as_username` (the whole subject in OpenSSL's RFC 2253
//! form, `src/net/tls/x509.rs`) on any bytes as the certificate. rustls
//! verifies the certificate first, but its subject's bytes are still the
//! peer's.
//!
//! Input: the DER certificate. Properties:
//! * nothing panics;
//! * the same bytes give the same answer;
//! * a subject given is a user name: 1 to 65,535 bytes, printable ASCII
//!   only (everything else is escaped), so it needs no further checking;
//! * when both are given, the subject names the CN (`CN=`).

use boxmq::net::fuzzing::x509_subject;

/// Longest certificate looked at (rustls takes larger chains, but a
/// subject's cost grows with its bytes alone).
const MAX_INPUT: usize = 64 * 1024;

pub fn check(data: &[u8]) {
    let data = &data[..data.len().min(MAX_INPUT)];
    let (cn, subject) = x509_subject(data);
    assert_eq!(
        (cn.clone(), subject.clone()),
        x509_subject(data),
        "not deterministic"
    );
    if let Ok(s) = &subject {
        assert!(!s.is_empty() && s.len() <= 65_535, "{} bytes", s.len());
        assert!(
            s.bytes().all(|b| (0x20..0x7F).contains(&b)),
            "unescaped byte in {s:?}"
        );
        if cn.is_some() {
            assert!(s.contains("CN="), "CN given, not in {s:?}");
        }
    }
}

fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    if body.len() < 0x80 {
        v.push(body.len() as u8);
    } else {
        v.extend([0x82, (body.len() >> 8) as u8, body.len() as u8]);
    }
    v.extend_from_slice(body);
    v
}

/// One attribute: (type OID bytes, value tag, value).
type Atv<'a> = (&'a [u8], u8, &'a [u8]);

/// A Name from RDNs, each a list of attributes.
fn name(rdns: &[&[Atv<'_>]]) -> Vec<u8> {
    let mut body = Vec::new();
    for rdn in rdns {
        let mut set = Vec::new();
        for (oid, tag, value) in *rdn {
            set.extend(der(0x30, &[der(0x06, oid), der(*tag, value)].concat()));
        }
        body.extend(der(0x31, &set));
    }
    der(0x30, &body)
}

/// A certificate skeleton with `subject`: the fields before it as the
/// walk expects them, a dummy rest.
fn cert(subject: &[u8]) -> Vec<u8> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    let tbs = [
        der(0xA0, &der(0x02, &[2])),
        der(0x02, &[1]),
        der(
            0x30,
            &der(0x06, &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02]),
        ),
        name(&[&[(CN, 0x0C, b"boxmq test ca")]]),
        der(
            0x30,
            &[der(0x17, b"260101000000Z"), der(0x17, b"360101000000Z")].concat(),
        ),
        subject.to_vec(),
        der(0x30, &[0; 16]),
    ]
    .concat();
    der(
        0x30,
        &[der(0x30, &tbs), der(0x30, &[]), der(0x03, &[0])].concat(),
    )
}

/// The fuzz certificate (`tests/fixtures/tls-fuzz/cert.pem`) as DER
/// (its base64 read here: the fuzz crate has no PEM parser).
fn fixture() -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls-fuzz");
    let dir = if dir.exists() {
        dir
    } else {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tls-fuzz")
    };
    let pem = std::fs::read_to_string(dir.join("cert.pem")).expect("fuzz certificate");
    let sextet = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let text: Vec<u8> = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.bytes())
        .filter(|&c| c != b'=')
        .map(sextet)
        .collect();
    let mut der = Vec::new();
    for chunk in text.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &v)| acc | (u32::from(v) << (18 - 6 * i)));
        der.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    der
}

pub fn x509_seeds() -> Vec<(String, Vec<u8>)> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const O: &[u8] = &[0x55, 0x04, 0x0A];
    const OU: &[u8] = &[0x55, 0x04, 0x0B];
    const C: &[u8] = &[0x55, 0x04, 0x06];
    const EMAIL: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x01];
    const UNKNOWN: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x83, 0xB2, 0x03, 0x01];
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("fixture", fixture()),
        (
            "mosquitto-example",
            cert(&name(&[
                &[(C, 0x13, b"GB")],
                &[(O, 0x0C, b"Server")],
                &[(OU, 0x0C, b"Production")],
                &[(CN, 0x0C, b"test client")],
            ])),
        ),
        (
            "multi-valued",
            cert(&name(&[
                &[(O, 0x0C, b"Example, Inc.")],
                &[(CN, 0x0C, b"carol"), (EMAIL, 0x16, b"c@example.com")],
            ])),
        ),
        (
            "escapes-and-wide",
            cert(&name(&[
                &[(CN, 0x0C, " #Z\u{fc}rich;<x>\\ ".as_bytes())],
                &[(OU, 0x1E, &[0, b'Z', 0, 0xFC, 0x20, 0xAC])],
                &[(O, 0x1C, &[0, 1, 0xF6, 0])],
                &[(C, 0x14, b"\xFC")],
            ])),
        ),
        (
            "unknown-type",
            cert(&name(&[
                &[(UNKNOWN, 0x0C, b"value")],
                &[(CN, 0x04, b"\x01\x02")],
            ])),
        ),
        ("empty-subject", cert(&name(&[]))),
        ("odd-bmp", cert(&name(&[&[(CN, 0x1E, &[0, b'a', 0])]]))),
    ];
    seeds.into_iter().map(|(n, d)| (n.to_owned(), d)).collect()
}
