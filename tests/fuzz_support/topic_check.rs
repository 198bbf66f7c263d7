//! The `topic` property: validation never panics and is self-consistent,
//! and the subscription trie agrees with the naive [`topic::matches`] for
//! any sequence of inserts and removes.
//!
//! Input layout: byte 0 and 1 are `max_len` and `max_levels` for the raw
//! validation of the whole input (as lossy UTF-8); then a program of
//! operations, each one op byte followed by a topic built from a few bytes
//! (see [`topic_from`]).

use std::collections::HashMap;

use boxmq::topic::{self, Trie};

use super::Input;

/// Level vocabulary: few enough that filters and names collide often.
const LEVELS: [&str; 10] = ["a", "b", "+", "#", "", "$SYS", "c", "a+", "#b", "x/y"];

/// Builds a topic string: a length byte (levels 1..=6), then one byte per
/// level choosing from [`LEVELS`].
fn topic_from(input: &mut Input<'_>) -> String {
    let n = 1 + usize::from(input.byte() % 6);
    let mut parts = Vec::with_capacity(n);
    for _ in 0..n {
        parts.push(LEVELS[usize::from(input.byte()) % LEVELS.len()]);
    }
    parts.join("/")
}

const MAX_LEN: usize = 64;
const MAX_LEVELS: usize = 8;

pub fn check(data: &[u8]) {
    let mut input = Input::new(data);
    check_validation(data, usize::from(input.byte()), usize::from(input.byte()));

    let mut trie: Trie<u8, u32> = Trie::new();
    // The model: (filter, key) -> value.
    let mut model: HashMap<(String, u8), u32> = HashMap::new();
    let mut counter = 0u32;
    while !input.is_empty() {
        let op = input.byte();
        let key = (op >> 2) % 4;
        let t = topic_from(&mut input);
        check_validation(t.as_bytes(), MAX_LEN, MAX_LEVELS);
        match op % 4 {
            0 | 1 => {
                if topic::validate_topic_filter(&t, MAX_LEN, MAX_LEVELS).is_err() {
                    continue;
                }
                counter += 1;
                let old = trie.insert(&t, key, counter);
                assert_eq!(old, model.insert((t.clone(), key), counter), "insert {t:?}");
            }
            2 => {
                let removed = trie.remove(&t, key);
                assert_eq!(removed, model.remove(&(t.clone(), key)), "remove {t:?}");
            }
            _ => {
                if topic::validate_topic_name(&t, MAX_LEN, MAX_LEVELS).is_err() {
                    continue;
                }
                let mut got = Vec::new();
                trie.for_each_match(&t, |k, &v| got.push((k, v)));
                let mut want: Vec<(u8, u32)> = model
                    .iter()
                    .filter(|((f, _), _)| topic::matches(f, &t))
                    .map(|((_, k), &v)| (*k, v))
                    .collect();
                got.sort_unstable();
                want.sort_unstable();
                assert_eq!(got, want, "matches for {t:?} with {model:?}");
            }
        }
        assert_eq!(trie.len(), model.len());
        assert_eq!(trie.is_empty(), model.is_empty());
    }
    for ((f, k), v) in &model {
        assert_eq!(trie.get(f, *k), Some(v), "get {f:?}");
    }
    // Removing everything prunes the trie back to its root.
    let entries: Vec<(String, u8)> = model.keys().cloned().collect();
    for (f, k) in entries {
        assert!(trie.remove(&f, k).is_some(), "final remove {f:?}");
    }
    assert!(trie.is_empty());
    assert_eq!(trie.node_count(), 1, "nodes left after removing everything");
}

/// Validation of arbitrary text: no panic, and the verdicts agree with
/// each other and with the matcher.
fn check_validation(raw: &[u8], max_len: usize, max_levels: usize) {
    let s = String::from_utf8_lossy(raw);
    let name = topic::validate_topic_name(&s, max_len, max_levels);
    let filter = topic::validate_topic_filter(&s, max_len, max_levels);
    let shared = topic::parse_shared(&s);
    if name.is_ok() {
        // A valid name has no wildcard, so it is also a valid filter, and
        // it matches itself.
        assert_eq!(filter, Ok(()), "name {s:?} valid but not as a filter");
        assert!(topic::matches(&s, &s), "{s:?} does not match itself");
        assert!(s.len() <= max_len && !s.is_empty());
        assert!(s.split('/').count() <= max_levels);
    }
    if filter.is_ok() {
        assert!(!s.contains('\0'));
        if !s.contains(['+', '#']) {
            assert_eq!(
                name,
                Ok(()),
                "filter {s:?} without wildcards is not a valid name"
            );
        }
    }
    if let Ok(Some((group, inner))) = shared {
        assert!(!group.is_empty() && !inner.is_empty());
        assert!(!group.contains(['+', '#', '/']));
        assert_eq!(s, format!("$share/{group}/{inner}"));
    }
}
