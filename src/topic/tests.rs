use super::*;

const MAX_LEN: usize = 4096;
const MAX_LEVELS: usize = 64;

fn name_ok(s: &str) -> Result<(), TopicError> {
    validate_topic_name(s, MAX_LEN, MAX_LEVELS)
}

fn filter_ok(s: &str) -> Result<(), TopicError> {
    validate_topic_filter(s, MAX_LEN, MAX_LEVELS)
}

/// Everything `trie` visits for `name`, sorted.
fn visited<V: Copy + Ord>(trie: &Trie<u32, V>, name: &str) -> Vec<(u32, V)> {
    let mut out = Vec::new();
    trie.for_each_match(name, |k, v| out.push((k, *v)));
    out.sort_unstable();
    out
}

/// Recompute what `Trie::heap_bytes` keeps incrementally.
fn heap_bytes_slow<K: Copy + Eq, V>(trie: &Trie<K, V>) -> usize {
    let nodes: usize = trie
        .nodes
        .iter()
        .map(|n| n.vec_bytes() + n.children.iter().map(|(l, _)| l.len()).sum::<usize>())
        .sum();
    trie.nodes.capacity() * mem::size_of::<Node<K, V>>()
        + trie.free.capacity() * mem::size_of::<NodeId>()
        + nodes
}

// ---------------------------------------------------------------- matching

/// MQTT 3.1.1 §4.7.1.2 multi-level wildcard examples [MQTT-4.7.1-2].
#[test]
fn spec_multi_level_examples() {
    let f = "sport/tennis/player1/#";
    assert!(matches(f, "sport/tennis/player1"));
    assert!(matches(f, "sport/tennis/player1/ranking"));
    assert!(matches(f, "sport/tennis/player1/score/wimbledon"));
    assert!(!matches(f, "sport/tennis/player2"));
    assert!(!matches(f, "sport/tennis"));
    // "sport/#" also matches the singular "sport", '#' includes the parent.
    assert!(matches("sport/#", "sport"));
    assert!(matches("sport/#", "sport/"));
    assert!(matches("#", "sport/tennis"));
    assert!(matches("#", "/"));
}

/// MQTT 3.1.1 §4.7.1.3 single-level wildcard examples [MQTT-4.7.1-3].
#[test]
fn spec_single_level_examples() {
    assert!(matches("sport/tennis/+", "sport/tennis/player1"));
    assert!(matches("sport/tennis/+", "sport/tennis/player2"));
    assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
    assert!(!matches("sport/+", "sport"));
    assert!(matches("sport/+", "sport/"));
    assert!(!matches("sport/+", "sport/tennis/player1"));
    assert!(matches("+/+", "/finance"));
    assert!(matches("/+", "/finance"));
    assert!(!matches("+", "/finance"));
    assert!(matches("+/tennis/#", "sport/tennis/x"));
    assert!(matches("+/tennis/#", "sport/tennis"));
}

/// MQTT 3.1.1 §4.7.2 topics beginning with '$' [MQTT-4.7.2-1].
#[test]
fn spec_dollar_examples() {
    assert!(!matches("#", "$SYS/x"));
    assert!(!matches("#", "$SYS"));
    assert!(!matches("+/monitor/Clients", "$SYS/monitor/Clients"));
    assert!(!matches("+/x", "$SYS/x"));
    assert!(!matches("+", "$SYS"));
    assert!(matches("$SYS/#", "$SYS/x"));
    assert!(matches("$SYS/#", "$SYS"));
    assert!(matches("$SYS/+", "$SYS/x"));
    assert!(matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
    // Only the first character counts: a '$' deeper down is ordinary.
    assert!(matches("a/+", "a/$SYS"));
    assert!(matches("#", "a/$SYS"));
}

#[test]
fn empty_levels_are_levels() {
    assert!(matches("a//b", "a//b"));
    assert!(matches("a/+/b", "a//b"));
    assert!(!matches("a/b", "a//b"));
    assert!(matches("+", ""));
    assert!(matches("/", "/"));
    assert!(matches("+/+", "/"));
    assert!(!matches("+", "/"));
    assert!(matches("/#", "/"));
    assert!(matches("/#", "/a/b"));
    assert!(!matches("/#", "a"));
    // Case sensitive, byte-exact.
    assert!(!matches("ACCOUNTS", "Accounts"));
}

// -------------------------------------------------------------- validation

#[test]
fn filter_validation_table() {
    // [MQTT-4.7.1-2], [MQTT-4.7.1-3], [MQTT-4.7.3-1].
    let accepted = [
        "#",
        "+",
        "+/tennis/#",
        "sport/tennis/player1/#",
        "sport/+/player1",
        "/+",
        "+/+",
        "/",
        "//",
        "a//b",
        "$SYS/#",
        "$share/g/a",
        "ünï/ċode",
    ];
    for f in accepted {
        assert_eq!(filter_ok(f), Ok(()), "{f:?}");
    }
    let rejected = [
        ("", TopicError::Empty),
        ("sport/tennis#", TopicError::InvalidWildcard),
        ("sport/tennis/#/ranking", TopicError::InvalidWildcard),
        ("sport+", TopicError::InvalidWildcard),
        ("#/a", TopicError::InvalidWildcard),
        ("##", TopicError::InvalidWildcard),
        ("++", TopicError::InvalidWildcard),
        ("a/+b", TopicError::InvalidWildcard),
        ("a/#/", TopicError::InvalidWildcard),
        ("a\0b", TopicError::NullChar),
    ];
    for (f, e) in rejected {
        assert_eq!(filter_ok(f), Err(e), "{f:?}");
    }
}

#[test]
fn name_validation_table() {
    // [MQTT-4.7.1-1], [MQTT-4.7.3-1], [MQTT-4.7.3-2].
    for n in [
        "a",
        "/",
        "a//b",
        "/finance",
        "$SYS/x",
        "sport/tennis/player1",
        "ü",
    ] {
        assert_eq!(name_ok(n), Ok(()), "{n:?}");
    }
    let rejected = [
        ("", TopicError::Empty),
        ("+", TopicError::WildcardInName),
        ("a/+", TopicError::WildcardInName),
        ("sport+", TopicError::WildcardInName),
        ("#", TopicError::WildcardInName),
        ("a/#", TopicError::WildcardInName),
        ("a\0", TopicError::NullChar),
        ("\0", TopicError::NullChar),
    ];
    for (n, e) in rejected {
        assert_eq!(name_ok(n), Err(e), "{n:?}");
    }
}

#[test]
fn length_and_level_bounds() {
    assert_eq!(validate_topic_name("abcd", 4, 1), Ok(()));
    assert_eq!(validate_topic_name("abcde", 4, 1), Err(TopicError::TooLong));
    // Length is in bytes, not characters.
    assert_eq!(validate_topic_name("üü", 4, 1), Ok(()));
    assert_eq!(validate_topic_name("üüü", 5, 1), Err(TopicError::TooLong));
    assert_eq!(validate_topic_name("a/b/c", 100, 3), Ok(()));
    assert_eq!(
        validate_topic_name("a/b/c/", 100, 3),
        Err(TopicError::TooManyLevels)
    );
    assert_eq!(
        validate_topic_name("//", 100, 2),
        Err(TopicError::TooManyLevels)
    );
    assert_eq!(validate_topic_filter("a/+/#", 5, 3), Ok(()));
    assert_eq!(
        validate_topic_filter("a/+/#", 4, 3),
        Err(TopicError::TooLong)
    );
    assert_eq!(
        validate_topic_filter("a/+/#", 5, 2),
        Err(TopicError::TooManyLevels)
    );
    assert_eq!(
        validate_topic_filter("/", 100, 1),
        Err(TopicError::TooManyLevels)
    );
    // Protocol maximum [MQTT-4.7.3-3].
    let long = "a".repeat(65_536);
    assert_eq!(
        validate_topic_name(&long, 65_535, 1),
        Err(TopicError::TooLong)
    );
    assert_eq!(validate_topic_name(&long[1..], 65_535, 1), Ok(()));
    let deep = "a/".repeat(64) + "a";
    assert_eq!(name_ok(&deep), Err(TopicError::TooManyLevels));
    assert_eq!(name_ok(&deep[2..]), Ok(()));
}

#[test]
fn error_display() {
    let e: Box<dyn std::error::Error> = Box::new(TopicError::InvalidWildcard);
    assert!(!e.to_string().is_empty());
    assert_eq!(TopicError::Empty.to_string(), "empty topic");
}

#[test]
fn shared_subscriptions() {
    // MQTT 5.0 §4.8.2 [MQTT-4.8.2-1], [MQTT-4.8.2-2].
    assert_eq!(parse_shared("$share/g/a/b"), Ok(Some(("g", "a/b"))));
    assert_eq!(parse_shared("$share/group/#"), Ok(Some(("group", "#"))));
    assert_eq!(parse_shared("$share/g//"), Ok(Some(("g", "/"))));
    assert_eq!(parse_shared("$share/g/$SYS/+"), Ok(Some(("g", "$SYS/+"))));
    for not_shared in [
        "a/b",
        "#",
        "$share",
        "$sharex/g/a",
        "$SHARE/g/a",
        "share/g/a",
        "/$share/g/a",
    ] {
        assert_eq!(parse_shared(not_shared), Ok(None), "{not_shared:?}");
    }
    for bad in [
        "$share/",
        "$share/g",
        "$share//a",
        "$share/g/",
        "$share/g+/a",
        "$share/#/a",
        "$share/+/a",
        "$share/a#b/c",
    ] {
        assert_eq!(
            parse_shared(bad),
            Err(TopicError::InvalidSharedSubscription),
            "{bad:?}"
        );
    }
    // The inner filter is the caller's to validate.
    let (_, inner) = parse_shared("$share/g/a#").unwrap().unwrap();
    assert_eq!(filter_ok(inner), Err(TopicError::InvalidWildcard));
}

// -------------------------------------------------------------------- trie

#[test]
fn trie_insert_replace_get_remove() {
    let mut t: Trie<u32, u8> = Trie::new();
    assert!(t.is_empty());
    assert_eq!(t.node_count(), 1);
    assert_eq!(t.insert("a/b", 1, 10), None);
    assert_eq!(t.insert("a/b", 2, 20), None);
    assert_eq!(t.insert("a/b", 1, 11), Some(10));
    assert_eq!(t.insert("a/#", 1, 12), None);
    assert_eq!(t.insert("#", 1, 13), None);
    assert_eq!(t.insert("+", 1, 14), None);
    assert_eq!(t.len(), 5);
    assert_eq!(t.get("a/b", 1), Some(&11));
    assert_eq!(t.get("a/b", 2), Some(&20));
    assert_eq!(t.get("a/b", 3), None);
    assert_eq!(t.get("a/#", 1), Some(&12));
    assert_eq!(t.get("a", 1), None);
    assert_eq!(t.get("#", 1), Some(&13));
    assert_eq!(t.get("+", 1), Some(&14));
    assert_eq!(t.get("x/y", 1), None);
    // Root, "a", "a/b", "+": "#" takes no node of its own.
    assert_eq!(t.node_count(), 4);

    assert_eq!(visited(&t, "a/b"), vec![(1, 11), (1, 12), (1, 13), (2, 20)]);
    assert_eq!(visited(&t, "a"), vec![(1, 12), (1, 13), (1, 14)]);
    assert_eq!(visited(&t, "$SYS"), vec![]);

    assert_eq!(t.remove("a/b", 3), None);
    assert_eq!(t.remove("a/c", 1), None);
    assert_eq!(t.remove("a/b", 1), Some(11));
    assert_eq!(t.remove("a/b", 1), None);
    assert_eq!(t.node_count(), 4, "a/b still has key 2");
    assert_eq!(t.remove("a/b", 2), Some(20));
    assert_eq!(t.node_count(), 3, "a/b pruned, a kept for a/#");
    assert_eq!(t.remove("a/#", 1), Some(12));
    assert_eq!(t.remove("#", 1), Some(13));
    assert_eq!(t.remove("+", 1), Some(14));
    assert!(t.is_empty());
    assert_eq!(t.node_count(), 1);
    assert_eq!(t.heap_bytes(), heap_bytes_slow(&t));
}

#[test]
fn trie_dollar_rule() {
    // [MQTT-4.7.2-1]
    let mut t: Trie<u32, u8> = Trie::new();
    for (i, f) in ["#", "+/x", "+", "$SYS/#", "$SYS/+", "$SYS/x", "+/+"]
        .iter()
        .enumerate()
    {
        t.insert(f, i as u32, 0);
    }
    let keys = |n: &str| {
        visited(&t, n)
            .into_iter()
            .map(|(k, _)| k)
            .collect::<Vec<_>>()
    };
    assert_eq!(keys("$SYS/x"), vec![3, 4, 5]);
    assert_eq!(keys("$SYS"), vec![3]);
    assert_eq!(keys("a/x"), vec![0, 1, 6]);
    assert_eq!(keys("a"), vec![0, 2]);
}

#[test]
fn trie_empty_levels() {
    let mut t: Trie<u32, u8> = Trie::new();
    t.insert("/+", 1, 0);
    t.insert("+/+", 2, 0);
    t.insert("+", 3, 0);
    t.insert("sport/+", 4, 0);
    t.insert("/", 5, 0);
    t.insert("/#", 6, 0);
    let keys = |n: &str| {
        visited(&t, n)
            .into_iter()
            .map(|(k, _)| k)
            .collect::<Vec<_>>()
    };
    assert_eq!(keys("/finance"), vec![1, 2, 6]);
    assert_eq!(keys("sport/"), vec![2, 4]);
    assert_eq!(keys("sport"), vec![3]);
    assert_eq!(keys("/"), vec![1, 2, 5, 6]);
}

#[test]
fn trie_free_list_reuse() {
    let mut t: Trie<u32, ()> = Trie::new();
    t.insert("a/b/c/d", 1, ());
    assert_eq!(t.node_count(), 5);
    let slots = t.nodes.len();
    t.remove("a/b/c/d", 1);
    assert_eq!(t.node_count(), 1);
    assert_eq!(t.free.len(), 4);
    t.insert("w/x/+/z", 1, ());
    assert_eq!(t.node_count(), 5);
    assert_eq!(t.nodes.len(), slots, "freed slots are reused");
    assert!(t.free.is_empty());
    assert_eq!(t.heap_bytes(), heap_bytes_slow(&t));
}

#[test]
fn trie_invalid_filters_do_not_panic() {
    // Unvalidated input is stored consistently and never panics.
    let mut t: Trie<u32, u8> = Trie::new();
    for f in ["", "a/#/b", "#/#", "##", "a+", "/#/", "\0"] {
        assert_eq!(t.insert(f, 1, 1), None);
        assert_eq!(t.get(f, 1), Some(&1));
    }
    t.for_each_match("a/#/b", |_, _| {});
    t.for_each_match("", |_, _| {});
    for f in ["", "a/#/b", "#/#", "##", "a+", "/#/", "\0"] {
        assert_eq!(t.remove(f, 1), Some(1), "{f:?}");
    }
    assert_eq!(t.node_count(), 1);
}

// ---------------------------------------------------------- property test

/// xorshift64: small, seedable, good enough to pick test cases.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const NAME_LEVELS: [&str; 4] = ["a", "b", "", "$SYS"];

fn random_name(rng: &mut XorShift) -> String {
    loop {
        let name = random_name_maybe_empty(rng);
        if !name.is_empty() {
            return name;
        }
    }
}

fn random_name_maybe_empty(rng: &mut XorShift) -> String {
    let levels = 1 + rng.below(4);
    let parts: Vec<&str> = (0..levels)
        .map(|_| NAME_LEVELS[rng.below(NAME_LEVELS.len())])
        .collect();
    parts.join("/")
}

fn random_filter(rng: &mut XorShift) -> String {
    loop {
        let filter = random_filter_maybe_empty(rng);
        if !filter.is_empty() {
            return filter;
        }
    }
}

fn random_filter_maybe_empty(rng: &mut XorShift) -> String {
    const LEVELS: [&str; 6] = ["a", "b", "", "$SYS", "+", "#"];
    let levels = 1 + rng.below(4);
    let mut parts = Vec::new();
    for i in 0..levels {
        // '#' only in the last level [MQTT-4.7.1-2].
        let n = if i + 1 == levels { 6 } else { 5 };
        parts.push(LEVELS[rng.below(n)]);
    }
    parts.join("/")
}

/// The reference model of a trie: one `(filter, key, value)` per distinct
/// `(filter, key)`.
type Model = Vec<(String, u32, u64)>;

/// Insert a random filter with a random key (and a fresh value) into both.
fn insert_random(trie: &mut Trie<u32, u64>, model: &mut Model, rng: &mut XorShift, value: u64) {
    let filter = random_filter(rng);
    assert_eq!(filter_ok(&filter), Ok(()), "{filter:?}");
    let key = rng.below(4) as u32;
    let prev = model.iter_mut().find(|(f, k, _)| *f == filter && *k == key);
    let expected = prev.as_ref().map(|(_, _, v)| *v);
    assert_eq!(trie.insert(&filter, key, value), expected);
    match prev {
        Some(e) => e.2 = value,
        None => model.push((filter, key, value)),
    }
}

/// Compare the trie with the reference matcher over random names; returns
/// how many entries matched.
fn check_against_model(trie: &Trie<u32, u64>, model: &Model, rng: &mut XorShift) -> usize {
    assert_eq!(trie.len(), model.len());
    assert_eq!(trie.heap_bytes(), heap_bytes_slow(trie));
    let mut total = 0;
    for _ in 0..12 {
        let name = random_name(rng);
        assert_eq!(name_ok(&name), Ok(()));
        let mut expected: Vec<(u32, u64)> = model
            .iter()
            .filter(|(f, _, _)| matches(f, &name))
            .map(|(_, k, v)| (*k, *v))
            .collect();
        expected.sort_unstable();
        assert_eq!(
            visited(trie, &name),
            expected,
            "name {name:?}, filters {model:?}"
        );
        total += expected.len();
    }
    for (f, k, v) in model {
        assert_eq!(trie.get(f, *k), Some(v));
    }
    total
}

#[test]
fn property_trie_agrees_with_reference_matcher() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut value: u64 = 0;
    let mut matched = 0;
    for _round in 0..2000 {
        let mut trie: Trie<u32, u64> = Trie::new();
        let mut model = Model::new();
        for _ in 0..1 + rng.below(24) {
            value += 1;
            insert_random(&mut trie, &mut model, &mut rng, value);
        }
        matched += check_against_model(&trie, &model, &mut rng);

        // Remove a random part of the entries, and some that are absent.
        for _ in 0..rng.below(model.len() + 1) {
            let (f, k, v) = model.swap_remove(rng.below(model.len()));
            assert_eq!(trie.remove(&f, k), Some(v));
            assert_eq!(trie.remove(&f, k), None);
            assert_eq!(trie.remove(&random_filter(&mut rng), 9), None);
        }
        matched += check_against_model(&trie, &model, &mut rng);

        // Insert again, reusing freed nodes.
        for _ in 0..rng.below(8) {
            value += 1;
            insert_random(&mut trie, &mut model, &mut rng, value);
        }
        matched += check_against_model(&trie, &model, &mut rng);

        // Removing everything prunes back to the root alone.
        for (f, k, v) in model.drain(..) {
            assert_eq!(trie.remove(&f, k), Some(v));
        }
        assert!(trie.is_empty());
        assert_eq!(trie.node_count(), 1);
        assert_eq!(trie.heap_bytes(), heap_bytes_slow(&trie));
    }
    // The generator is not degenerate: plenty of names did match.
    assert!(matched > 20_000, "{matched}");
}

/// The filter for entry `i` of `many_filters`: 25,000 devices in 100 sites
/// of 250, four subscriptions each.
fn many_filter(i: u32, out: &mut String) {
    use std::fmt::Write;
    let (j, kind) = (i / 4, i % 4);
    let (site, dev) = (j / 250, j % 250);
    out.clear();
    let _ = match kind {
        0 => write!(out, "s/{site}/{dev}/temp"),
        1 => write!(out, "s/{site}/{dev}/#"),
        2 => write!(out, "s/+/{dev}/temp/{site}"),
        _ => write!(out, "x/{}/+/x", i % 1000),
    };
}

#[test]
fn many_filters() {
    const N: u32 = 100_000;
    let mut t: Trie<u32, u32> = Trie::new();
    let base = t.node_count();
    let mut filter = String::new();
    for i in 0..N {
        many_filter(i, &mut filter);
        assert_eq!(t.insert(&filter, i, i), None);
    }
    assert_eq!(t.len(), N as usize);
    let j = 3 * 250 + 7;
    assert_eq!(
        visited(&t, "s/3/7/temp"),
        vec![(4 * j, 4 * j), (4 * j + 1, 4 * j + 1)]
    );
    assert_eq!(
        visited(&t, "s/3/7/temp/3"),
        vec![(4 * j + 1, 4 * j + 1), (4 * j + 2, 4 * j + 2)]
    );
    assert_eq!(visited(&t, "s/3/7"), vec![(4 * j + 1, 4 * j + 1)]);
    assert_eq!(visited(&t, "s/3/250/temp"), vec![]);
    // 100 entries under x/3/+/x: i = 3, 1003, ..., 99003.
    assert_eq!(visited(&t, "x/3/q/x").len(), 100);
    let mut count = 0;
    for i in 0..10_000 {
        filter.clear();
        filter.push_str("s/1/");
        filter.push_str(&(i % 300).to_string());
        filter.push_str("/temp");
        t.for_each_match(&filter, |_, _| count += 1);
    }
    // Devices 0..250 exist and match two filters each; 250..300 do not.
    assert_eq!(count, (0..10_000).filter(|i| i % 300 < 250).count() * 2);
    assert_eq!(t.heap_bytes(), heap_bytes_slow(&t));
    for i in 0..N {
        many_filter(i, &mut filter);
        assert_eq!(t.remove(&filter, i), Some(i));
    }
    assert!(t.is_empty());
    assert_eq!(t.node_count(), base);
    assert_eq!(t.heap_bytes(), heap_bytes_slow(&t));
}

#[cfg(target_pointer_width = "64")]
#[test]
fn node_is_64_bytes() {
    assert_eq!(mem::size_of::<Node<u32, u8>>(), 64);
    assert_eq!(mem::size_of::<Node<u64, [u8; 40]>>(), 64);
}
