//! Unit tests of the store: format, round trips, compaction, the lock,
//! sync errors, and crashes at every write and sync point on [`SimDisk`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::format::{self, test_vectors};
use super::*;

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("boxmq-store-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const DIR: &str = "/sim/store";

fn sim_opts() -> StoreOptions {
    StoreOptions::new(DIR)
}

fn bodies(rec: &Recovery) -> Vec<(u8, Vec<u8>)> {
    rec.records
        .iter()
        .map(|r| (r.kind, r.body.clone()))
        .collect()
}

fn assert_increasing(rec: &Recovery) {
    for w in rec.records.windows(2) {
        assert!(
            w[0].seq < w[1].seq,
            "seqs not increasing: {:?}",
            rec.records
        );
    }
}

// ---------------------------------------------------------------- format

const SALT: u32 = 0x1234_5678;

fn hdr(base_seq: u64) -> format::Header {
    format::Header {
        salt: SALT,
        generation: 1,
        base_seq,
    }
}

#[test]
fn crc32c_known_values() {
    assert_eq!(format::crc32c(b"123456789"), test_vectors::CHECK);
    assert_eq!(format::crc32c(&[0u8; 32]), test_vectors::ZEROS_32);
    // Split updates give the same value as one.
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    let split = format::Crc::new()
        .update(&data[..13])
        .update(&data[13..])
        .finish();
    assert_eq!(split, format::crc32c(&data));
}

#[test]
fn frame_round_trip_and_every_truncation() {
    let mut buf = Vec::new();
    format::put_frame(&mut buf, SALT, 7, 3, b"hello");
    format::put_frame(&mut buf, SALT, 8, 0, b"");
    assert_eq!(buf.len(), format::frame_len(5) + format::frame_len(0));
    let scan = format::scan(&buf, 0, hdr(6), false);
    assert_eq!(scan.stop, format::Stop::End);
    assert_eq!(scan.records.len(), 2);
    assert_eq!(
        scan.records[0],
        Recovered {
            seq: 7,
            kind: 3,
            body: b"hello".to_vec()
        }
    );
    assert_eq!(
        scan.records[1],
        Recovered {
            seq: 8,
            kind: 0,
            body: Vec::new()
        }
    );
    // Cut anywhere inside the second frame: one record, then a torn stop.
    let first = format::frame_len(5);
    for cut in first + 1..buf.len() {
        let scan = format::scan(&buf[..cut], 0, hdr(6), false);
        assert_eq!(scan.records.len(), 1, "cut {cut}");
        assert!(matches!(scan.stop, format::Stop::Bad { offset, .. } if offset == first));
    }
    // A sequence number that does not grow is refused.
    let scan = format::scan(&buf, 0, hdr(7), false);
    assert!(scan.records.len() <= 1);
    // Another file's salt: nothing is valid.
    let other = format::Header {
        salt: SALT ^ 1,
        ..hdr(6)
    };
    assert!(format::scan(&buf, 0, other, false).records.is_empty());
}

#[test]
fn flipped_bit_anywhere_is_caught() {
    let mut buf = Vec::new();
    format::put_frame(&mut buf, SALT, 1, 9, b"some body bytes");
    for i in 0..buf.len() {
        for bit in 0..8 {
            let mut bad = buf.clone();
            bad[i] ^= 1 << bit;
            let scan = format::scan(&bad, 0, hdr(0), false);
            assert!(scan.records.is_empty(), "byte {i} bit {bit} not caught");
        }
    }
}

#[test]
fn header_checks() {
    let mut h = Vec::new();
    let want = format::Header {
        salt: SALT,
        generation: 5,
        base_seq: 42,
    };
    format::put_header(&mut h, format::FileType::Log, want);
    assert_eq!(h.len(), format::HEADER_LEN);
    assert_eq!(format::parse_header(&h, format::FileType::Log), Ok(want));
    assert_eq!(
        format::parse_header(&h, format::FileType::Snapshot),
        Err(format::HeaderError::Magic)
    );
    assert_eq!(
        format::parse_header(&h[..format::HEADER_LEN - 1], format::FileType::Log),
        Err(format::HeaderError::Short)
    );
    let mut bad = h.clone();
    bad[20] ^= 1;
    assert_eq!(
        format::parse_header(&bad, format::FileType::Log),
        Err(format::HeaderError::Checksum)
    );
    assert_eq!(
        format::parse_header(&[0u8; 64], format::FileType::Log),
        Err(format::HeaderError::Magic)
    );
}

// ---------------------------------------------------------------- basics

#[test]
fn round_trip_on_real_files() {
    let tmp = TempDir::new("rt");
    // Missing parents are created (and synced) too.
    let dir = tmp.0.join("a/b");
    let (mut s, rec) = Store::open(StoreOptions::new(&dir)).unwrap();
    assert!(rec.records.is_empty() && rec.notes.is_empty());
    for i in 0..100u32 {
        s.append((i % 5) as u8, &i.to_le_bytes());
        if i % 10 == 9 {
            s.commit().unwrap();
        }
    }
    assert_eq!(s.stats().commits, 10);
    drop(s);
    let (s, rec) = Store::open(StoreOptions::new(&dir)).unwrap();
    assert!(rec.notes.is_empty(), "{:?}", rec.notes);
    assert_eq!(rec.records.len(), 100);
    for (i, r) in rec.records.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
        assert_eq!(r.kind, (i % 5) as u8);
        assert_eq!(r.body, (i as u32).to_le_bytes());
    }
    assert_eq!(s.last_seq(), 100);
}

#[test]
fn uncommitted_records_are_not_written() {
    let disk = SimDisk::new();
    let (mut s, _) = Store::open_on(disk.clone(), sim_opts()).unwrap();
    s.append(1, b"a");
    s.commit().unwrap();
    s.append(1, b"b");
    drop(s);
    let (_, rec) = Store::open_on(disk, sim_opts()).unwrap();
    assert_eq!(bodies(&rec), vec![(1, b"a".to_vec())]);
}

#[test]
fn empty_commit_writes_nothing() {
    let disk = SimDisk::new();
    let (mut s, _) = Store::open_on(disk.clone(), sim_opts()).unwrap();
    let before = disk.ops();
    assert_eq!(s.commit().unwrap(), 0);
    assert_eq!(disk.ops(), before);
    s.append(0, b"x");
    let before = disk.ops();
    assert_eq!(s.commit().unwrap(), 1);
    // One write, one sync.
    assert_eq!(disk.ops(), before + 2);
}

#[test]
fn seq_continues_across_restarts_and_compaction() {
    let disk = SimDisk::new();
    let (mut s, _) = Store::open_on(disk.clone(), sim_opts()).unwrap();
    s.append(0, b"1");
    s.append(0, b"2");
    s.commit().unwrap();
    drop(s);
    let (mut s, _) = Store::open_on(disk.clone(), sim_opts()).unwrap();
    assert_eq!(s.append(0, b"3"), 3);
    s.commit().unwrap();
    // Compacting to an empty state must not reset the numbering.
    assert_eq!(s.compact(&mut std::iter::empty()).unwrap(), 3);
    drop(s);
    let (mut s, rec) = Store::open_on(disk.clone(), sim_opts()).unwrap();
    assert!(rec.records.is_empty());
    assert_eq!(s.last_seq(), 3);
    assert_eq!(s.append(0, b"4"), 4);
    s.commit().unwrap();
    drop(s);
    let (s, rec) = Store::open_on(disk, sim_opts()).unwrap();
    assert_eq!(
        rec.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![4]
    );
    assert_eq!(s.last_seq(), 4);
}

#[test]
fn compaction_replaces_the_log() {
    let disk = SimDisk::new();
    let mut o = sim_opts();
    o.compact_at = 1000;
    let (mut s, _) = Store::open_on(disk.clone(), o.clone()).unwrap();
    let mut i = 0u32;
    while !s.needs_compaction() {
        s.append(1, &i.to_le_bytes());
        s.commit().unwrap();
        i += 1;
    }
    assert!(i > 10);
    // The caller's state is smaller than its history: keep the even ones.
    let state: Vec<(u8, Vec<u8>)> = (0..i)
        .filter(|n| n % 2 == 0)
        .map(|n| (2, n.to_le_bytes().to_vec()))
        .collect();
    let seq = s.compact(&mut state.clone().into_iter()).unwrap();
    assert_eq!(seq, s.last_seq());
    assert!(!s.needs_compaction());
    s.append(3, b"after");
    s.commit().unwrap();
    let names = disk.list_files(Path::new(DIR));
    assert_eq!(names, vec!["log.00000002", "snap.00000002"], "{names:?}");
    drop(s);
    let (_, rec) = Store::open_on(disk, o).unwrap();
    assert!(rec.notes.is_empty(), "{:?}", rec.notes);
    let mut want = state;
    want.push((3, b"after".to_vec()));
    assert_eq!(bodies(&rec), want);
    assert_increasing(&rec);
}

#[test]
fn large_records_and_a_snapshot_of_several_chunks() {
    let disk = SimDisk::new();
    let (mut s, _) = Store::open_on(disk.clone(), sim_opts()).unwrap();
    let big: Vec<u8> = (0..(1 << 20) + 7).map(|i: u32| (i % 251) as u8).collect();
    s.append(9, &big);
    s.commit().unwrap();
    let state: Vec<(u8, Vec<u8>)> = (0..25u32)
        .map(|i| (i as u8, vec![i as u8; 100_000 + i as usize]))
        .collect();
    s.compact(&mut state.clone().into_iter()).unwrap();
    assert!(s.stats().snapshot_bytes > 2 << 20);
    s.append(9, &big);
    s.commit().unwrap();
    drop(s);
    disk.crash_lose_unsynced();
    let (_, rec) = Store::open_on(disk, sim_opts()).unwrap();
    assert!(rec.notes.is_empty(), "{:?}", rec.notes);
    let mut want = state;
    want.push((9, big));
    assert_eq!(bodies(&rec), want);
}

#[test]
fn second_open_is_locked() {
    let tmp = TempDir::new("lock");
    let (s, _) = Store::open(StoreOptions::new(&tmp.0)).unwrap();
    match Store::open(StoreOptions::new(&tmp.0)) {
        Err(StoreError::Locked(p)) => {
            assert_eq!(p, tmp.0.join(LOCK_FILE));
            let msg = StoreError::Locked(p).to_string();
            assert!(msg.contains(&*tmp.0.to_string_lossy()), "{msg}");
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(s);
    Store::open(StoreOptions::new(&tmp.0)).unwrap();

    let disk = SimDisk::new();
    let (_s, _) = Store::open_on(disk.clone(), sim_opts()).unwrap();
    assert!(matches!(
        Store::open_on(disk, sim_opts()),
        Err(StoreError::Locked(_))
    ));
}

#[test]
fn io_error_names_the_path() {
    let tmp = TempDir::new("io");
    std::fs::create_dir_all(&tmp.0).unwrap();
    // A file where the directory should be.
    let file = tmp.0.join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = Store::open(StoreOptions::new(&file)).unwrap_err();
    assert!(matches!(err, StoreError::Io(_)));
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}

#[test]
fn no_sync_mode_writes_without_syncing() {
    let disk = SimDisk::new();
    let mut o = sim_opts();
    o.sync = false;
    let (mut s, _) = Store::open_on(disk.clone(), o.clone()).unwrap();
    s.append(0, b"x");
    let before = disk.ops();
    s.commit().unwrap();
    assert_eq!(disk.ops(), before + 1);
    drop(s);
    // Not synced: a power cut may take it.
    disk.crash_lose_unsynced();
    let (_, rec) = Store::open_on(disk, o).unwrap();
    assert!(rec.records.is_empty());
}

// ---------------------------------------------------------------- sync errors

#[test]
fn sync_error_poisons_until_compaction() {
    let disk = SimDisk::new();
    let (mut s, _) = Store::open_on(disk.clone(), sim_opts()).unwrap();
    s.append(1, b"kept");
    s.commit().unwrap();
    disk.fail_sync(1);
    s.append(1, b"failed");
    let err = s.commit().unwrap_err();
    assert!(matches!(err, StoreError::Poisoned(_)), "{err}");
    assert!(err.to_string().contains("log.00000001"), "{err}");
    assert!(s.is_poisoned() && s.needs_compaction());
    assert_eq!(s.stats().sync_errors, 1);
    // No retry: later commits fail without touching the disk.
    let ops = disk.ops();
    s.append(1, b"later");
    assert!(matches!(s.commit(), Err(StoreError::Poisoned(_))));
    assert_eq!(disk.ops(), ops);
    // The caller's state is what it acknowledged.
    s.compact(&mut vec![(1, b"kept".to_vec())].into_iter())
        .unwrap();
    assert!(!s.is_poisoned());
    s.append(1, b"new");
    s.commit().unwrap();
    drop(s);
    disk.crash_lose_unsynced();
    let (_, rec) = Store::open_on(disk, sim_opts()).unwrap();
    assert_eq!(
        bodies(&rec),
        vec![(1, b"kept".to_vec()), (1, b"new".to_vec())]
    );
}

#[test]
fn a_full_disk_is_told_apart_and_cleared_by_a_compaction() {
    let disk = SimDisk::new();
    let (mut s, _) = Store::open_on(disk.clone(), sim_opts()).unwrap();
    s.append(1, b"kept");
    s.commit().unwrap();
    assert_eq!(s.stats().sync_histogram.count(), 1);
    disk.set_full(true);
    s.append(1, b"lost");
    assert!(s.commit().is_err());
    assert!(s.is_poisoned() && s.is_disk_full());
    // Still full: the snapshot fails too, and says so.
    let snap = vec![(1, b"kept".to_vec())];
    assert!(s.compact(&mut snap.clone().into_iter()).is_err());
    assert!(s.is_disk_full());
    disk.set_full(false);
    s.compact(&mut snap.into_iter()).unwrap();
    assert!(!s.is_poisoned() && !s.is_disk_full());
    // A sync error is not a full disk.
    disk.fail_sync(1);
    s.append(1, b"x");
    assert!(s.commit().is_err());
    assert!(s.is_poisoned() && !s.is_disk_full());
}

#[test]
fn sync_histogram_buckets() {
    let mut h = crate::store::SyncHistogram::default();
    for us in [50, 100, 101, 3_000_000] {
        h.record(std::time::Duration::from_micros(us));
    }
    assert_eq!(h.count(), 4);
    assert_eq!(h.counts[0], 2);
    assert_eq!(h.counts[1], 1);
    assert_eq!(h.counts[crate::store::SYNC_BUCKETS_US.len()], 1);
    assert_eq!(h.sum, std::time::Duration::from_micros(3_000_251));
}

#[test]
fn failed_compaction_stays_poisoned_and_retries_with_new_names() {
    let disk = SimDisk::new();
    let (mut s, _) = Store::open_on(disk.clone(), sim_opts()).unwrap();
    s.append(1, b"a");
    s.commit().unwrap();
    // The snapshot's sync fails.
    disk.fail_sync(1);
    let err = s
        .compact(&mut vec![(1, b"a".to_vec())].into_iter())
        .unwrap_err();
    assert!(err.to_string().contains("snap.00000002.tmp"), "{err}");
    assert!(s.is_poisoned());
    assert!(s.commit().is_err());
    s.compact(&mut vec![(1, b"a".to_vec())].into_iter())
        .unwrap();
    assert_eq!(
        disk.list_files(Path::new(DIR)),
        vec!["log.00000003", "snap.00000003"]
    );
    s.append(2, b"b");
    s.commit().unwrap();
    drop(s);
    disk.crash_lose_unsynced();
    let (_, rec) = Store::open_on(disk, sim_opts()).unwrap();
    assert_eq!(bodies(&rec), vec![(1, b"a".to_vec()), (2, b"b".to_vec())]);
}

// ---------------------------------------------------------------- damage (sim)

fn store_with(disk: &SimDisk, n: u32) {
    let (mut s, _) = Store::open_on(disk.clone(), sim_opts()).unwrap();
    for i in 0..n {
        s.append(1, &i.to_le_bytes());
        s.commit().unwrap();
    }
}

#[test]
fn frame_inside_a_torn_body_is_not_resurrected() {
    // A client's payload shaped like a frame (right length, next seq, a
    // checksum computed without the file's salt), then the write is torn.
    let disk = SimDisk::new();
    store_with(&disk, 2);
    let (mut s, _) = Store::open_on(disk.clone(), sim_opts()).unwrap();
    let mut forged = Vec::new();
    format::put_frame(&mut forged, 0, 4, 66, b"forged");
    let mut payload = vec![0u8; 40];
    payload.extend_from_slice(&forged);
    payload.extend_from_slice(&[0u8; 40]);
    s.append(1, &payload);
    s.commit().unwrap();
    drop(s);
    let path = Path::new(DIR).join("log.00000001");
    let mut data = disk.file(&path).unwrap();
    data.truncate(data.len() - 20);
    disk.put_file(&path, &data);
    let (_, rec) = Store::open_on(disk, sim_opts()).unwrap();
    assert_eq!(rec.records.len(), 2, "{:?}", rec.notes);
    assert!(rec.notes[0].contains("torn record"), "{:?}", rec.notes);
}

#[test]
fn torn_tail_is_truncated_and_noted() {
    let disk = SimDisk::new();
    store_with(&disk, 5);
    let path = Path::new(DIR).join("log.00000001");
    let mut data = disk.file(&path).unwrap();
    let good = data.len();
    data.extend_from_slice(&[9, 0, 0, 0, 1, 2, 3]);
    disk.put_file(&path, &data);
    let (mut s, rec) = Store::open_on(disk.clone(), sim_opts()).unwrap();
    assert_eq!(rec.records.len(), 5);
    assert_eq!(rec.notes.len(), 1, "{:?}", rec.notes);
    assert!(
        rec.notes[0].starts_with(&format!(
            "log.00000001: torn record at offset {good} (7 bytes"
        )),
        "{:?}",
        rec.notes
    );
    assert_eq!(disk.file(&path).unwrap().len(), good);
    s.append(1, b"next");
    s.commit().unwrap();
    drop(s);
    let (_, rec) = Store::open_on(disk, sim_opts()).unwrap();
    assert_eq!(rec.records.len(), 6);
    assert!(rec.notes.is_empty());
}

#[test]
fn bad_record_mid_log_is_skipped_and_the_log_set_aside() {
    let disk = SimDisk::new();
    store_with(&disk, 5);
    let path = Path::new(DIR).join("log.00000001");
    let mut data = disk.file(&path).unwrap();
    // The body of the third record.
    let third = format::HEADER_LEN + 2 * format::frame_len(4) + format::FRAME_HEAD + 1;
    data[third] ^= 0xFF;
    disk.put_file(&path, &data);
    let (_, rec) = Store::open_on(disk.clone(), sim_opts()).unwrap();
    let got: Vec<u64> = rec.records.iter().map(|r| r.seq).collect();
    assert_eq!(got, vec![1, 2, 4, 5]);
    assert_eq!(rec.notes.len(), 1, "{:?}", rec.notes);
    let note = &rec.notes[0];
    assert!(
        note.starts_with("log.00000001: checksum mismatch"),
        "{note}"
    );
    assert!(
        note.contains("set aside as log.00000001.corrupt-1"),
        "{note}"
    );
    let names = disk.list_files(Path::new(DIR));
    assert_eq!(
        names,
        vec!["log.00000001.corrupt-1", "log.00000002", "snap.00000002"]
    );
    // The repair is durable and clean.
    disk.crash_lose_unsynced();
    let (_, rec2) = Store::open_on(disk, sim_opts()).unwrap();
    assert!(rec2.notes.is_empty(), "{:?}", rec2.notes);
    assert_eq!(rec2.records, rec.records);
}

#[test]
fn zeroed_snapshot_is_set_aside_and_the_log_kept() {
    let disk = SimDisk::new();
    store_with(&disk, 3);
    let snap = Path::new(DIR).join("snap.00000001");
    let len = disk.file(&snap).unwrap().len();
    disk.put_file(&snap, &vec![0; len]);
    let (_, rec) = Store::open_on(disk.clone(), sim_opts()).unwrap();
    assert_eq!(rec.records.len(), 3);
    assert_eq!(rec.notes.len(), 1, "{:?}", rec.notes);
    assert!(
        rec.notes[0].starts_with("snap.00000001: bad magic"),
        "{:?}",
        rec.notes
    );
    assert!(rec.notes[0].contains("snap.00000001.corrupt-1"));
}

#[test]
fn missing_snapshot_starts_from_the_log() {
    let disk = SimDisk::new();
    store_with(&disk, 3);
    let mut d = disk.clone();
    Disk::remove(&mut d, &Path::new(DIR).join("snap.00000001")).unwrap();
    Disk::sync_dir(&mut d, Path::new(DIR)).unwrap();
    let (mut s, rec) = Store::open_on(disk.clone(), sim_opts()).unwrap();
    assert_eq!(rec.records.len(), 3);
    assert!(rec.notes[0].contains("missing"), "{:?}", rec.notes);
    assert_eq!(s.append(0, b""), 4);
}

#[test]
fn unknown_files_are_left_alone() {
    let disk = SimDisk::new();
    disk.put_file(&Path::new(DIR).join("README"), b"hello");
    store_with(&disk, 1);
    let (_, rec) = Store::open_on(disk.clone(), sim_opts()).unwrap();
    assert!(rec.notes.is_empty());
    assert!(disk.file(&Path::new(DIR).join("README")).is_some());
}

// ---------------------------------------------------------------- crashes

/// splitmix64 for the workloads.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The caller's view: what it was told is durable, and what it tried.
#[derive(Default)]
struct Model {
    /// Records whose commit (or compaction) returned Ok: the state.
    acked: Vec<(u8, Vec<u8>)>,
    /// Records of commits that failed: may or may not come back.
    maybe: Vec<(u8, Vec<u8>)>,
    next_id: u32,
}

impl Model {
    fn record(&mut self, rng: &mut Rng) -> (u8, Vec<u8>) {
        self.next_id += 1;
        let mut body = self.next_id.to_le_bytes().to_vec();
        // Sizes from empty-ish to several frames' worth.
        let extra = match rng.below(16) {
            0..=4 => 0,
            5..=10 => rng.below(16),
            11..=14 => rng.below(120),
            _ => rng.below(1500),
        };
        body.extend((0..extra).map(|i| (i as u8) ^ (self.next_id as u8)));
        ((self.next_id % 7) as u8, body)
    }

    /// Recovered must be `acked`, in order, followed by records of `maybe`
    /// in order (some may be missing), and nothing else.
    fn check(&self, rec: &Recovery, what: &str) {
        let got = bodies(rec);
        assert!(
            got.len() >= self.acked.len() && got[..self.acked.len()] == self.acked[..],
            "{what}: acknowledged records lost or reordered: acked {} recovered {}; notes {:?}",
            self.acked.len(),
            got.len(),
            rec.notes
        );
        let mut it = self.maybe.iter();
        for r in &got[self.acked.len()..] {
            assert!(
                it.any(|m| m == r),
                "{what}: invented or reordered record (id {:?}); notes {:?}",
                r.1.get(..4),
                rec.notes
            );
        }
        assert_increasing(rec);
    }

    /// After recovery the recovered records are the new state.
    fn adopt(&mut self, rec: &Recovery) {
        self.acked = bodies(rec);
        self.maybe.clear();
    }
}

/// Runs a seeded workload until the disk fails, keeping the model. With
/// `sync` off, commits only write (several writes pend per file, so a
/// crash can leave holes) and only compaction makes records durable.
fn workload(disk: &SimDisk, seed: u64, sync: bool, model: &mut Model) {
    let mut rng = Rng(seed);
    let mut o = sim_opts();
    o.sync = sync;
    o.compact_at = 512 + rng.below(2048);
    let Ok((mut s, rec)) = Store::open_on(disk.clone(), o) else {
        return;
    };
    model.check(&rec, "open during workload");
    model.adopt(&rec);
    for _ in 0..16 {
        if s.needs_compaction() || rng.below(12) == 0 {
            let state: Vec<_> = model.acked.iter().chain(&model.maybe).cloned().collect();
            match s.compact(&mut state.clone().into_iter()) {
                Ok(_) => {
                    model.acked = state;
                    model.maybe.clear();
                }
                Err(_) => return,
            }
        }
        let n = 1 + rng.below(5);
        let batch: Vec<_> = (0..n).map(|_| model.record(&mut rng)).collect();
        for (k, b) in &batch {
            s.append(*k, b);
        }
        match s.commit() {
            Ok(seq) => {
                assert_eq!(seq, s.last_seq());
                if sync {
                    model.acked.extend(batch);
                } else {
                    model.maybe.extend(batch);
                }
            }
            Err(_) => {
                model.maybe.extend(batch);
                return;
            }
        }
    }
}

fn crash_run(workload_seed: u64, sync: bool, fail_at: u64, crash_seed: u64, torn: bool) {
    let disk = SimDisk::new();
    let mut model = Model::default();
    disk.fail_after(Some(fail_at));
    workload(&disk, workload_seed, sync, &mut model);
    if torn {
        disk.crash_torn(crash_seed);
    } else {
        disk.crash(crash_seed);
    }
    let what = format!("workload {workload_seed} fail at {fail_at} crash {crash_seed}");
    // Sometimes crash again during recovery itself.
    if crash_seed % 3 == 0 {
        disk.fail_after(Some(crash_seed % 7));
        if let Ok((_, rec)) = Store::open_on(disk.clone(), sim_opts()) {
            model.check(&rec, &what);
        }
        disk.crash(crash_seed ^ 0x55);
    }
    let (mut s, rec) = Store::open_on(disk.clone(), sim_opts())
        .unwrap_or_else(|e| panic!("{what}: recovery refused: {e}"));
    model.check(&rec, &what);
    let last = rec.records.last().map_or(0, |r| r.seq);
    assert!(s.last_seq() >= last);
    // The recovered store works, and its repairs are durable.
    model.adopt(&rec);
    let seq = s.append(1, b"after");
    assert!(seq > last, "{what}: seq went back");
    s.commit().unwrap();
    model.acked.push((1, b"after".to_vec()));
    drop(s);
    disk.crash(crash_seed.wrapping_add(1));
    let (_, rec) = Store::open_on(disk, sim_opts()).unwrap();
    model.check(&rec, &format!("{what}, second recovery"));
    assert_eq!(
        rec.records.len(),
        model.acked.len(),
        "{what}: second recovery grew"
    );
}

/// Number of mutating disk operations a workload does without faults.
fn ops_of(workload_seed: u64, sync: bool) -> u64 {
    let disk = SimDisk::new();
    let mut model = Model::default();
    workload(&disk, workload_seed, sync, &mut model);
    disk.ops()
}

#[test]
fn crash_at_every_point_keeps_every_acknowledged_record() {
    let mut runs = 0;
    for w in 0..8u64 {
        let total = ops_of(w, true);
        assert!(total > 30, "workload {w} too small: {total}");
        for fail_at in 0..=total {
            for c in 0..3u64 {
                crash_run(w, true, fail_at, fail_at * 31 + c, false);
                runs += 1;
            }
        }
    }
    assert!(runs > 1000, "{runs}");
}

#[test]
fn torn_writes_at_every_point_keep_every_acknowledged_record() {
    for w in 100..103u64 {
        let total = ops_of(w, true);
        for fail_at in 0..=total {
            crash_run(w, true, fail_at, fail_at * 17 + w, true);
        }
    }
}

#[test]
fn unsynced_writes_with_holes_recover_in_order_and_invent_nothing() {
    // Several writes pend per file: a crash keeps any subset of them, so
    // recovery meets holes of zeros and skips them.
    let mut runs = 0;
    for w in 300..304u64 {
        let total = ops_of(w, false);
        for fail_at in 0..=total {
            for c in 0..3u64 {
                crash_run(w, false, fail_at, fail_at * 13 + c, c == 2);
                runs += 1;
            }
        }
    }
    assert!(runs > 300, "{runs}");
}

#[test]
fn sync_error_at_every_sync_then_compaction_loses_nothing() {
    for w in 200..204u64 {
        for nth in 1..40u64 {
            let disk = SimDisk::new();
            let mut model = Model::default();
            let mut rng = Rng(w * 1000 + nth);
            let (mut s, _) = Store::open_on(disk.clone(), sim_opts()).unwrap();
            disk.fail_sync(nth);
            for _ in 0..30 {
                if s.is_poisoned() {
                    if s.compact(&mut model.acked.clone().into_iter()).is_err() {
                        continue;
                    }
                    model.maybe.clear();
                }
                let batch: Vec<_> = (0..1 + rng.below(4))
                    .map(|_| model.record(&mut rng))
                    .collect();
                for (k, b) in &batch {
                    s.append(*k, b);
                }
                match s.commit() {
                    Ok(_) => model.acked.extend(batch),
                    Err(_) => model.maybe.extend(batch),
                }
            }
            drop(s);
            disk.crash(w ^ nth);
            let (_, rec) = Store::open_on(disk, sim_opts()).unwrap();
            model.check(&rec, &format!("sync error workload {w} at sync {nth}"));
        }
    }
}

// ---------------------------------------------------------------- SimDisk itself

#[test]
fn sim_new_file_needs_a_directory_sync() {
    let mut d = SimDisk::new();
    let dir = Path::new("/x");
    d.create_dir_all(dir).unwrap();
    let mut f = d.create(&dir.join("a")).unwrap();
    d.write(&mut f, b"data").unwrap();
    d.sync(&mut f).unwrap();
    d.crash_lose_unsynced();
    assert!(
        d.file(&dir.join("a")).is_none(),
        "created file survived without a dir sync"
    );

    let mut f = d.create(&dir.join("a")).unwrap();
    d.sync_dir(dir).unwrap();
    d.write(&mut f, b"data").unwrap();
    d.crash_lose_unsynced();
    assert_eq!(
        d.file(&dir.join("a")).unwrap(),
        b"",
        "unsynced data survived"
    );
}

#[test]
fn sim_rename_and_remove_need_a_directory_sync() {
    let mut d = SimDisk::new();
    let dir = Path::new("/x");
    d.create_dir_all(dir).unwrap();
    let mut f = d.create(&dir.join("a")).unwrap();
    d.write(&mut f, b"1").unwrap();
    d.sync(&mut f).unwrap();
    d.sync_dir(dir).unwrap();
    d.rename(&dir.join("a"), &dir.join("b")).unwrap();
    d.crash_lose_unsynced();
    assert_eq!(d.list_files(dir), vec!["a"]);
    d.remove(&dir.join("a")).unwrap();
    d.crash_lose_unsynced();
    assert_eq!(d.list_files(dir), vec!["a"]);
    d.remove(&dir.join("a")).unwrap();
    d.sync_dir(dir).unwrap();
    d.crash_lose_unsynced();
    assert!(d.list_files(dir).is_empty());
}

#[test]
fn sim_torn_crash_keeps_a_prefix() {
    let dir = Path::new("/x");
    let mut seen_partial = false;
    for seed in 0..64 {
        let mut d = SimDisk::new();
        d.create_dir_all(dir).unwrap();
        let mut f = d.create(&dir.join("a")).unwrap();
        d.sync_dir(dir).unwrap();
        d.write(&mut f, b"synced").unwrap();
        d.sync(&mut f).unwrap();
        d.write(&mut f, b"-one").unwrap();
        d.write(&mut f, b"-two").unwrap();
        d.crash_torn(seed);
        let got = d.file(&dir.join("a")).unwrap();
        let full = b"synced-one-two";
        assert!(
            got.len() >= 6 && full.starts_with(&got),
            "seed {seed}: {got:?}"
        );
        seen_partial |= got.len() > 6 && got.len() < full.len();
    }
    assert!(seen_partial);
}

#[test]
fn sim_failed_sync_loses_the_data_even_if_a_later_sync_succeeds() {
    let mut d = SimDisk::new();
    let dir = Path::new("/x");
    d.create_dir_all(dir).unwrap();
    let mut f = d.create(&dir.join("a")).unwrap();
    d.sync_dir(dir).unwrap();
    d.write(&mut f, b"lost").unwrap();
    d.fail_sync(1);
    assert!(d.sync(&mut f).is_err());
    // Reads still see it, and a retry "succeeds".
    assert_eq!(d.file(&dir.join("a")).unwrap(), b"lost");
    d.sync(&mut f).unwrap();
    d.crash_lose_unsynced();
    assert_eq!(d.file(&dir.join("a")).unwrap(), b"");
}

#[test]
fn sim_power_cut_fails_every_later_operation() {
    let mut d = SimDisk::new();
    let dir = Path::new("/x");
    d.create_dir_all(dir).unwrap();
    let mut f = d.create(&dir.join("a")).unwrap();
    d.fail_after(Some(1));
    d.write(&mut f, b"1").unwrap();
    assert!(d.write(&mut f, b"2").is_err());
    assert!(d.sync_dir(dir).is_err());
    d.crash(7);
    assert!(d.write(&mut f, b"3").is_ok() || d.file(&dir.join("a")).is_none());
}

// ---------------------------------------------------------------- random damage

#[test]
fn random_damage_never_panics_and_invents_nothing() {
    // A reference directory: a snapshot of 20 records and a log of 30.
    let base = SimDisk::new();
    let mut known = Vec::new();
    {
        let (mut s, _) = Store::open_on(base.clone(), sim_opts()).unwrap();
        let state: Vec<(u8, Vec<u8>)> = (0..20u32)
            .map(|i| (1, format!("state {i}").into_bytes()))
            .collect();
        s.compact(&mut state.clone().into_iter()).unwrap();
        known.extend(state);
        for i in 0..30u32 {
            let rec = (
                2,
                format!("log record {i} {}", "x".repeat(i as usize)).into_bytes(),
            );
            s.append(rec.0, &rec.1);
            s.commit().unwrap();
            known.push(rec);
        }
    }
    let dir = Path::new(DIR);
    let files: Vec<(String, Vec<u8>)> = base
        .list_files(dir)
        .into_iter()
        .map(|n| {
            let data = base.file(&dir.join(&n)).unwrap();
            (n, data)
        })
        .collect();
    assert_eq!(files.len(), 2);
    for seed in 0..400u64 {
        let mut rng = Rng(seed);
        let disk = SimDisk::new();
        for (name, data) in &files {
            let mut d = data.clone();
            for _ in 0..1 + rng.below(3) {
                let len = d.len() as u64;
                match rng.below(6) {
                    0 if len > 0 => {
                        let at = rng.below(len) as usize;
                        d[at] ^= 1 << rng.below(8);
                    }
                    1 => d.truncate(rng.below(len + 1) as usize),
                    2 if len > 0 => {
                        let at = rng.below(len) as usize;
                        let end = (at + rng.below(600) as usize).min(d.len());
                        d[at..end].fill(0);
                    }
                    3 => d.extend((0..rng.below(200)).map(|_| rng.next() as u8)),
                    4 if len > 0 => {
                        // A stretch repeated (a frame written twice).
                        let at = rng.below(len) as usize;
                        let end = (at + rng.below(200) as usize).min(d.len());
                        let copy = d[at..end].to_vec();
                        let to = rng.below(d.len() as u64 + 1) as usize;
                        d.splice(to..to, copy);
                    }
                    _ => {
                        let n = rng.below(64) as usize;
                        d = (0..n).map(|_| rng.next() as u8).collect();
                    }
                }
            }
            disk.put_file(&dir.join(name), &d);
        }
        let (_, rec) = Store::open_on(disk.clone(), sim_opts())
            .unwrap_or_else(|e| panic!("seed {seed}: refused to start: {e}"));
        assert_increasing(&rec);
        let mut it = known.iter();
        for r in &rec.records {
            let got = (r.kind, r.body.clone());
            assert!(
                it.any(|k| *k == got),
                "seed {seed}: invented or reordered {got:?}"
            );
        }
        disk.crash_lose_unsynced();
        let (_, again) = Store::open_on(disk, sim_opts()).unwrap();
        assert!(again.notes.is_empty(), "seed {seed}: {:?}", again.notes);
        assert_eq!(again.records, rec.records, "seed {seed}");
    }
}
