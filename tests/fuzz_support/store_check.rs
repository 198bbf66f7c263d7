//! The `store` property: recovery takes any bytes as a snapshot and a log
//! and never panics, never refuses to start, returns records in strictly
//! increasing order, and leaves a directory that opens again with the same
//! records and nothing to note.
//!
//! Input layout: byte 0 says which files exist (bit 0 `snap.N`, bit 1
//! `log.N`, bit 2 an older `snap.N-1`, bits 4..6 N - 1); bytes 1..3 are
//! the length of the snapshot's bytes (little-endian, clamped to what is
//! there); the snapshot's bytes, then the rest is the log (and the older
//! snapshot, if any, is a copy of the snapshot).

use std::path::Path;

use boxmq::store::{SimDisk, Store, StoreOptions};

use super::Input;

const DIR: &str = "/fuzz/store";

pub fn check(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let generation = 1 + u64::from((flags >> 4) & 0x7);
    let snap_len = usize::from(input.u16());
    let snap = input.take(snap_len);
    let log = input.take(usize::MAX);

    let dir = Path::new(DIR);
    let disk = SimDisk::new();
    if flags & 1 != 0 {
        disk.put_file(&dir.join(format!("snap.{generation:08}")), snap);
    }
    if flags & 2 != 0 {
        disk.put_file(&dir.join(format!("log.{generation:08}")), log);
    }
    if flags & 4 != 0 && generation > 1 {
        disk.put_file(&dir.join(format!("snap.{:08}", generation - 1)), snap);
    }
    let opts = StoreOptions::new(DIR);
    let (mut store, rec) = match Store::open_on(disk.clone(), opts.clone()) {
        Ok(x) => x,
        Err(e) => panic!("recovery refused to start: {e}"),
    };
    for w in rec.records.windows(2) {
        assert!(w[0].seq < w[1].seq, "sequence numbers not increasing");
    }
    let last = rec.records.last().map_or(0, |r| r.seq);
    assert!(store.last_seq() >= last, "last_seq behind the records");
    let next = store.append(0, b"after");
    assert!(next > last, "sequence number reused");
    store.commit().expect("commit after recovery");
    drop(store);
    disk.crash_lose_unsynced();
    let (_, again) = Store::open_on(disk, opts).expect("second open");
    assert!(
        again.notes.is_empty(),
        "second open noted {:?}",
        again.notes
    );
    assert_eq!(again.records.len(), rec.records.len() + 1);
    assert_eq!(again.records[..rec.records.len()], rec.records[..]);
}

/// Seeds: real store directories (an empty store, records in the log, a
/// compacted snapshot with a log) in the input layout above.
pub fn store_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, state, log) in [
        ("empty", 0usize, 0usize),
        ("log-only", 0, 5),
        ("snapshot-and-log", 6, 3),
        ("snapshot-only", 4, 0),
    ] {
        let disk = SimDisk::new();
        let (mut s, _) = Store::open_on(disk.clone(), StoreOptions::new(DIR)).expect("open");
        let mut generation = 1u8;
        if state > 0 {
            let mut records = (0..state).map(|i| (1u8, format!("state {i}").into_bytes()));
            s.compact(&mut records).expect("compact");
            generation = 2;
        }
        for i in 0..log {
            s.append(2, format!("log {i}").as_bytes());
            s.commit().expect("commit");
        }
        drop(s);
        let dir = Path::new(DIR);
        let snap = disk
            .file(&dir.join(format!("snap.{generation:08}")))
            .unwrap_or_default();
        let log = disk
            .file(&dir.join(format!("log.{generation:08}")))
            .unwrap_or_default();
        let mut input = vec![3 | ((generation - 1) << 4)];
        input.extend_from_slice(&(snap.len() as u16).to_le_bytes());
        input.extend_from_slice(&snap);
        input.extend_from_slice(&log);
        out.push((name.to_string(), input));
    }
    out
}
