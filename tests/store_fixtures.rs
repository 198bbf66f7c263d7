//! Damaged store directories (committed fixtures under
//! tests/fixtures/store/, one per kind of damage): the store opens each
//! one, keeps what is intact, names the damaged file in its notes, and
//! opens cleanly afterwards.
//!
//! Regenerate the fixtures (only after a format change, with a new format
//! version): `cargo test --test store_fixtures -- --ignored generate`.

use std::path::{Path, PathBuf};

use boxmq::store::{LOCK_FILE, Store, StoreOptions};

const FIXTURES: &str = "tests/fixtures/store";

/// A scratch copy of a fixture, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn of(case: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("boxmq-fixture-{case}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(FIXTURES)
            .join(case);
        for entry in std::fs::read_dir(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display())) {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Opens a fixture; returns the bodies (as text) and the notes, and checks
/// that a second open finds the same records and nothing to note.
fn open(case: &str) -> (Vec<String>, Vec<String>, Scratch) {
    let scratch = Scratch::of(case);
    let (store, rec) = Store::open(StoreOptions::new(&scratch.0))
        .unwrap_or_else(|e| panic!("{case}: refused to start: {e}"));
    let bodies: Vec<String> = rec
        .records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    for w in rec.records.windows(2) {
        assert!(w[0].seq < w[1].seq, "{case}: order");
    }
    for note in &rec.notes {
        eprintln!("{case}: {note}");
    }
    let last = store.last_seq();
    drop(store);
    let (store, again) = Store::open(StoreOptions::new(&scratch.0)).unwrap();
    assert!(
        again.notes.is_empty(),
        "{case}: second open noted {:?}",
        again.notes
    );
    assert_eq!(again.records, rec.records, "{case}: second open differs");
    assert_eq!(store.last_seq(), last);
    (bodies, rec.notes, scratch)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn assert_note(notes: &[String], starts: &str, contains: &str) {
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with(starts) && n.contains(contains)),
        "no note starting {starts:?} containing {contains:?} in {notes:?}"
    );
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != LOCK_FILE)
        .collect();
    v.sort();
    v
}

#[test]
fn clean_store_has_no_notes() {
    let (bodies, notes, _s) = open("clean");
    assert_eq!(
        bodies,
        strings(&[
            "state 1", "state 2", "state 3", "state 4", "state 5", "log 1", "log 2"
        ])
    );
    assert!(notes.is_empty(), "{notes:?}");
}

#[test]
fn torn_log_tail_is_truncated() {
    let (bodies, notes, s) = open("torn_log_tail");
    assert_eq!(
        bodies,
        strings(&["record 1", "record 2", "record 3", "record 4", "record 5"])
    );
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_note(&notes, "log.00000001: torn record at offset", "truncated");
    assert_eq!(names(&s.0), strings(&["log.00000001", "snap.00000001"]));
}

#[test]
fn zeroed_log_tail_is_truncated() {
    let (bodies, notes, _s) = open("zeroed_log_tail");
    assert_eq!(
        bodies,
        strings(&["record 1", "record 2", "record 3", "record 4", "record 5"])
    );
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_note(&notes, "log.00000001: torn record at offset", "(4096 bytes");
}

#[test]
fn bad_checksum_mid_log_skips_one_record() {
    let (bodies, notes, s) = open("bad_checksum_mid_log");
    assert_eq!(
        bodies,
        strings(&["record 1", "record 2", "record 4", "record 5"])
    );
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_note(
        &notes,
        "log.00000001: checksum mismatch at offset",
        "set aside as log.00000001.corrupt-1",
    );
    assert!(names(&s.0).contains(&"log.00000001.corrupt-1".to_string()));
}

#[test]
fn bad_log_header_keeps_the_snapshot() {
    let (bodies, notes, s) = open("bad_log_header");
    assert_eq!(
        bodies,
        strings(&["state 1", "state 2", "state 3", "state 4", "state 5"])
    );
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_note(
        &notes,
        "log.00000002: file header checksum mismatch",
        "log.00000002.corrupt-1",
    );
    assert_eq!(
        names(&s.0),
        strings(&["log.00000002.corrupt-1", "log.00000003", "snap.00000003"])
    );
}

#[test]
fn bad_log_header_checksum_keeps_its_records() {
    let (bodies, notes, _s) = open("bad_log_header_checksum");
    assert_eq!(
        bodies,
        strings(&[
            "state 1", "state 2", "state 3", "state 4", "state 5", "log 1", "log 2"
        ])
    );
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_note(
        &notes,
        "log.00000002: file header checksum mismatch",
        "kept 2 intact records",
    );
}

#[test]
fn bad_snapshot_header_checksum_keeps_its_records() {
    let (bodies, notes, _s) = open("bad_snapshot_header_checksum");
    assert_eq!(
        bodies,
        strings(&[
            "state 1", "state 2", "state 3", "state 4", "state 5", "log 1", "log 2"
        ])
    );
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_note(
        &notes,
        "snap.00000002: file header checksum mismatch",
        "kept 5 intact records",
    );
}

#[test]
fn corrupt_snapshot_keeps_the_rest() {
    let (bodies, notes, _s) = open("corrupt_snapshot");
    assert_eq!(
        bodies,
        strings(&["state 1", "state 3", "state 4", "state 5", "log 1", "log 2"])
    );
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_note(
        &notes,
        "snap.00000002: checksum mismatch at offset",
        "snap.00000002.corrupt-1",
    );
}

#[test]
fn truncated_snapshot_keeps_its_prefix_and_the_log() {
    let (bodies, notes, _s) = open("truncated_snapshot");
    assert_eq!(
        bodies,
        strings(&["state 1", "state 2", "state 3", "log 1", "log 2"])
    );
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_note(
        &notes,
        "snap.00000002: ",
        "set aside as snap.00000002.corrupt-1",
    );
}

#[test]
fn zero_filled_snapshot_keeps_the_log() {
    let (bodies, notes, _s) = open("zero_filled_snapshot");
    assert_eq!(bodies, strings(&["log 1", "log 2"]));
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_note(
        &notes,
        "snap.00000002: bad magic",
        "snap.00000002.corrupt-1",
    );
}

#[test]
fn everything_zero_filled_starts_empty() {
    let (bodies, notes, _s) = open("all_zero_filled");
    assert!(bodies.is_empty());
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_note(&notes, "snap.00000002: bad magic", "corrupt-1");
    assert_note(&notes, "log.00000002: bad magic", "corrupt-1");
}

// ---------------------------------------------------------------- generator

fn fresh(case: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(FIXTURES)
        .join(case);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn finish(dir: &Path) {
    std::fs::remove_file(dir.join(LOCK_FILE)).unwrap();
}

/// Generation 1: an empty snapshot and a log of "record 1" ..= "record 5".
fn log_only(case: &str) -> PathBuf {
    let dir = fresh(case);
    let (mut s, _) = Store::open(StoreOptions::new(&dir)).unwrap();
    for i in 1..=5 {
        s.append(1, format!("record {i}").as_bytes());
        s.commit().unwrap();
    }
    drop(s);
    finish(&dir);
    dir
}

/// Generation 2: a snapshot of "state 1" ..= "state 5", a log of "log 1", "log 2".
fn snapshot_and_log(case: &str) -> PathBuf {
    let dir = fresh(case);
    let (mut s, _) = Store::open(StoreOptions::new(&dir)).unwrap();
    let mut state = (1..=5).map(|i| (2u8, format!("state {i}").into_bytes()));
    s.compact(&mut state).unwrap();
    for i in 1..=2 {
        s.append(3, format!("log {i}").as_bytes());
        s.commit().unwrap();
    }
    drop(s);
    finish(&dir);
    dir
}

fn edit(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut data = std::fs::read(path).unwrap();
    f(&mut data);
    std::fs::write(path, data).unwrap();
}

/// Offset of the body of record `n` (0-based) in a file of equal-sized
/// records of `body` bytes: header 36, frame head 16, kind 1.
fn body_at(n: usize, body: usize) -> usize {
    36 + n * (17 + body) + 17
}

#[test]
#[ignore = "writes tests/fixtures/store; run by hand after a format change"]
fn generate() {
    snapshot_and_log("clean");

    let d = log_only("torn_log_tail");
    // The first 11 bytes of a sixth frame.
    edit(&d.join("log.00000001"), |v| {
        v.extend_from_slice(&[9, 0, 0, 0, 0xAB, 0xCD, 0xEF, 1, 6, 0, 0])
    });

    let d = log_only("zeroed_log_tail");
    // The file grew but its new block never reached the disk.
    edit(&d.join("log.00000001"), |v| v.extend_from_slice(&[0; 4096]));

    let d = log_only("bad_checksum_mid_log");
    // "record 3" becomes "rekord 3".
    edit(&d.join("log.00000001"), |v| v[body_at(2, 8) + 2] = b'k');

    let d = snapshot_and_log("bad_log_header");
    edit(&d.join("log.00000002"), |v| v[13] ^= 0x40);

    // The header's own checksum (byte 33): the salt is intact.
    let d = snapshot_and_log("bad_log_header_checksum");
    edit(&d.join("log.00000002"), |v| v[33] ^= 0x01);

    // The generation field (byte 20) of the snapshot's header.
    let d = snapshot_and_log("bad_snapshot_header_checksum");
    edit(&d.join("snap.00000002"), |v| v[20] ^= 0x08);

    let d = snapshot_and_log("corrupt_snapshot");
    // "state 2" becomes "stat? 2".
    edit(&d.join("snap.00000002"), |v| v[body_at(1, 7) + 4] = b'?');

    let d = snapshot_and_log("truncated_snapshot");
    // Cut in the middle of the fourth record.
    edit(&d.join("snap.00000002"), |v| v.truncate(body_at(3, 7) + 3));

    let d = snapshot_and_log("zero_filled_snapshot");
    edit(&d.join("snap.00000002"), |v| v.fill(0));

    let d = snapshot_and_log("all_zero_filled");
    edit(&d.join("snap.00000002"), |v| v.fill(0));
    edit(&d.join("log.00000002"), |v| v.fill(0));
}
