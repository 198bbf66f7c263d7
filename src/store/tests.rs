//! Unit tests of the store.

use super::*;

fn opts(dir: &str) -> StoreOptions {
    StoreOptions::new(dir)
}

#[test]
fn round_trip_on_sim() {
    let disk = SimDisk::new();
    let (mut s, rec) = Store::open_on(disk.clone(), opts("/d")).unwrap();
    assert!(rec.records.is_empty() && rec.notes.is_empty());
    assert_eq!(s.append(1, b"one"), 1);
    assert_eq!(s.append(2, b"two"), 2);
    assert_eq!(s.commit().unwrap(), 2);
    drop(s);
    let (s, rec) = Store::open_on(disk.clone(), opts("/d")).unwrap();
    assert_eq!(rec.notes, Vec::<String>::new());
    let got: Vec<_> = rec
        .records
        .iter()
        .map(|r| (r.seq, r.kind, r.body.clone()))
        .collect();
    assert_eq!(got, vec![(1, 1, b"one".to_vec()), (2, 2, b"two".to_vec())]);
    assert_eq!(s.last_seq(), 2);
}
