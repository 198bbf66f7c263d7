//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the
//! same check functions the cargo-fuzz targets use, so `cargo test` (and CI)
//! exercises every input the fuzzer found interesting, on stable Rust.
//!
//! `BOXMQ_WRITE_SEEDS=1 cargo test --test fuzz_corpus write_seeds -- --ignored`
//! (re)writes the generated seed inputs into the corpus directories.

mod fuzz_support;

use std::path::{Path, PathBuf};

use fuzz_support::{codec_check, core_check, seeds, store_check, topic_check};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus")
        .join(target)
}

/// Runs `check` on every file of the target's corpus; returns how many.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for path in &files {
        let data = std::fs::read(path).expect("corpus file");
        let result = std::panic::catch_unwind(|| check(&data));
        if result.is_err() {
            panic!("{target}: {} fails its check", path.display());
        }
    }
    files.len()
}

#[test]
fn codec_corpus() {
    let n = replay("codec", codec_check::check);
    assert!(n >= 10, "codec corpus has only {n} files");
}

#[test]
fn topic_corpus() {
    let n = replay("topic", topic_check::check);
    assert!(n >= 3, "topic corpus has only {n} files");
}

#[test]
fn core_corpus() {
    let n = replay("core", core_check::check);
    assert!(n >= 5, "core corpus has only {n} files");
}

#[test]
fn store_corpus() {
    let n = replay("store", store_check::check);
    assert!(n >= 4, "store corpus has only {n} files");
}

#[cfg(feature = "http")]
#[test]
fn http_corpus() {
    let n = replay("http", fuzz_support::http_check::check);
    assert!(n >= 8, "http corpus has only {n} files");
}

#[cfg(feature = "websockets")]
#[test]
fn ws_corpus() {
    let n = replay("ws", fuzz_support::ws_check::check);
    assert!(n >= 10, "ws corpus has only {n} files");
}

#[cfg(feature = "tls")]
#[test]
fn tls_corpus() {
    let n = replay("tls", fuzz_support::tls_check::check);
    assert!(n >= 7, "tls corpus has only {n} files");
}

#[cfg(feature = "tls")]
#[test]
fn x509_corpus() {
    let n = replay("x509", fuzz_support::x509_check::check);
    assert!(n >= 7, "x509 corpus has only {n} files");
}

/// The x509 seeds reach what they are about: the fixture's subject and
/// the crafted ones are read, the broken ones refused.
#[cfg(feature = "tls")]
#[test]
fn x509_seeds_reach_the_subject() {
    use boxmq::net::fuzzing::x509_subject;
    for (name, data) in fuzz_support::x509_check::x509_seeds() {
        let (cn, subject) = x509_subject(&data);
        match name.as_str() {
            "empty-subject" | "odd-bmp" => assert!(subject.is_err(), "{name}"),
            "mosquitto-example" => assert_eq!(
                subject.as_deref(),
                Ok("CN=test client,OU=Production,O=Server,C=GB")
            ),
            _ => assert!(subject.is_ok(), "{name}: {subject:?}"),
        }
        if name == "fixture" {
            assert!(cn.is_some(), "fixture has a CN");
        }
    }
}

/// The seeds reach what the properties are about: MQTT bytes out of
/// frames, and a server answer to a ClientHello (so the checks are not
/// passing on inputs refused at the first byte).
#[cfg(all(feature = "websockets", feature = "tls"))]
#[test]
fn ws_and_tls_seeds_reach_the_layers() {
    use boxmq::net::fuzzing::ws_feed;
    let connect: &[u8] = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00";
    for (name, data) in fuzz_support::ws_check::ws_seeds() {
        if matches!(name.as_str(), "connect" | "fragments-and-ping" | "close") {
            let mut input = fuzz_support::ws_check::UPGRADE.to_vec();
            input.extend_from_slice(&data[3..]);
            let o = ws_feed(1 + 64 * usize::from(data[0]), [input.as_slice()]);
            assert_eq!(o.mqtt, connect, "{name}: {o:?}");
            assert!(o.out.starts_with(b"HTTP/1.1 101"), "{name}");
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls-fuzz");
    let tls = boxmq::net::fuzzing::TlsFuzz::load(&dir.join("cert.pem"), &dir.join("key.pem"))
        .expect("fuzz certificate");
    for (name, data) in fuzz_support::tls_check::tls_seeds() {
        if name.starts_with("hello") {
            let o = tls.feed([&data[1..]]);
            // A ServerHello record (handshake, type 22) came back.
            assert_eq!(o.wire.first(), Some(&22), "{name}: {o:?}");
        }
    }
}

/// The generated seeds pass too (also when they are not written out).
#[test]
fn generated_seeds_pass() {
    for (_, data) in seeds::codec_seeds() {
        codec_check::check(&data);
    }
    for (_, data) in seeds::topic_seeds() {
        topic_check::check(&data);
    }
    for (_, data) in seeds::core_seeds() {
        core_check::check(&data);
    }
    for (_, data) in store_check::store_seeds() {
        store_check::check(&data);
    }
    #[cfg(feature = "http")]
    for (_, data) in fuzz_support::http_check::http_seeds() {
        fuzz_support::http_check::check(&data);
    }
    #[cfg(feature = "websockets")]
    for (_, data) in fuzz_support::ws_check::ws_seeds() {
        fuzz_support::ws_check::check(&data);
    }
    #[cfg(feature = "tls")]
    for (_, data) in fuzz_support::tls_check::tls_seeds() {
        fuzz_support::tls_check::check(&data);
    }
    #[cfg(feature = "tls")]
    for (_, data) in fuzz_support::x509_check::x509_seeds() {
        fuzz_support::x509_check::check(&data);
    }
}

#[test]
#[ignore = "writes fuzz/corpus/*/seed-*; run with BOXMQ_WRITE_SEEDS=1"]
fn write_seeds() {
    if std::env::var_os("BOXMQ_WRITE_SEEDS").is_none() {
        return;
    }
    let sets = [
        ("codec", seeds::codec_seeds()),
        ("topic", seeds::topic_seeds()),
        ("core", seeds::core_seeds()),
        ("store", store_check::store_seeds()),
        #[cfg(feature = "http")]
        ("http", fuzz_support::http_check::http_seeds()),
        #[cfg(feature = "websockets")]
        ("ws", fuzz_support::ws_check::ws_seeds()),
        #[cfg(feature = "tls")]
        ("tls", fuzz_support::tls_check::tls_seeds()),
        #[cfg(feature = "tls")]
        ("x509", fuzz_support::x509_check::x509_seeds()),
    ];
    for (target, set) in sets {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        for (name, data) in set {
            std::fs::write(dir.join(format!("seed-{name}")), data).expect("seed file");
        }
    }
}

/// The hooks seed reaches what it is about: questions asked and answered,
/// packets delivered after the verdicts.
#[test]
fn hooks_seed_gives_verdicts() {
    for (name, data) in seeds::core_seeds() {
        if !name.ends_with("-hooks") {
            continue;
        }
        let mut h = core_check::Harness::new();
        h.run(&data);
        assert!(h.verdicts >= 6, "{name}: {} verdicts", h.verdicts);
        assert!(
            h.received_packets >= 8,
            "{name}: {} packets",
            h.received_packets
        );
    }
}

/// Pseudo-random programs with hooks on (op 7 first), beyond the corpus:
/// the same properties, a few thousand steps, fixed seeds.
#[test]
fn random_programs_with_hooks() {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..300 {
        let mut prog = vec![0x07, (next() % 8) as u8];
        for _ in 0..40 {
            let r = next();
            let conn = ((r >> 8) % 4) as u8;
            match r % 8 {
                0 => prog.push(conn << 4),
                1 | 2 => prog.extend([
                    (conn << 4) | 2,
                    (r >> 16) as u8 % 12,
                    (r >> 24) as u8,
                    (r >> 32) as u8,
                ]),
                3 => prog.extend([(conn << 4) | 3, (r >> 16) as u8 % 8]),
                4 => prog.push((conn << 4) | 4),
                5 => prog.push((conn << 4) | if r & 0x100_0000 != 0 { 5 } else { 4 }),
                6 => prog.extend([0x06, (r >> 16) as u8 % 6]),
                _ => prog.extend([0x07, (r >> 16) as u8]),
            }
        }
        let result = std::panic::catch_unwind(|| core_check::check(&prog));
        assert!(result.is_ok(), "program fails: {prog:02x?}");
    }
}
