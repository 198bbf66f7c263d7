//! Subscription trie microbenchmarks: matching a topic name against 10,
//! 1,000 and 100,000 filters (literal ones and ones with `+` and `#`), and
//! subscribe/unsubscribe churn.
//!
//! `cargo bench --bench topic` measures; `cargo test` runs each once.

use std::hint::black_box;

use boxmq::topic::Trie;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// The `i`-th filter of a broker that serves a fleet of devices: per-device
/// literal filters, per-device `#` filters, and `+` filters over rooms and
/// sites, plus the dashboard's fleet-wide wildcard.
fn filter(i: usize) -> String {
    match i % 5 {
        0 => format!("shellies/shellybutton1-{i:012x}/input_event/0"),
        1 => format!("shellies/shellyplug-{i:012x}/#"),
        2 => format!("home/room{}/+/temperature", i % 97),
        3 => format!("site/{}/+/+/meter{i}", i % 31),
        _ => format!("devices/{i}/status"),
    }
}

/// Topic names to look up: some hit several filters, some hit none.
fn names(n: usize) -> Vec<String> {
    let mut v = Vec::new();
    for j in 0..64usize {
        let i = (j * 7919) % n.max(1);
        v.push(match j % 4 {
            0 => format!("shellies/shellybutton1-{:012x}/input_event/0", i - i % 5),
            1 => format!("shellies/shellyplug-{:012x}/relay/0/power", i - i % 5 + 1),
            2 => format!("home/room{}/lamp{j}/temperature", j % 97),
            _ => format!("nowhere/{j}/status"),
        });
    }
    v
}

fn build(n: usize) -> Trie<u32, u8> {
    let mut t = Trie::new();
    for i in 0..n {
        t.insert(&filter(i), i as u32, 0);
    }
    // The dashboard: one subscriber on every button's events.
    t.insert("shellies/+/input_event/0", u32::MAX, 0);
    t
}

fn bench_match(c: &mut Criterion) {
    let mut g = c.benchmark_group("trie_match");
    for &n in &[10usize, 1_000, 100_000] {
        let trie = build(n);
        let names = names(n);
        g.throughput(Throughput::Elements(names.len() as u64));
        g.bench_function(format!("{n}_filters_x64_names"), |b| {
            b.iter(|| {
                let mut hits = 0u32;
                for name in &names {
                    trie.for_each_match(black_box(name), |k, v| {
                        hits = hits.wrapping_add(k ^ u32::from(*v));
                    });
                }
                black_box(hits)
            })
        });
    }
    g.finish();
}

fn bench_churn(c: &mut Criterion) {
    let mut g = c.benchmark_group("trie_churn");
    for &n in &[1_000usize, 100_000] {
        let mut trie = build(n);
        // A client (re)connecting: subscribes to 4 filters, then drops them.
        let own: Vec<String> = (0..4)
            .map(|k| format!("clients/shellybutton1-00000000ffff/cmd/{k}/+"))
            .collect();
        g.throughput(Throughput::Elements(own.len() as u64 * 2));
        g.bench_function(format!("sub_unsub_4_filters_with_{n}_resident"), |b| {
            b.iter(|| {
                for f in &own {
                    trie.insert(black_box(f), 7, 1);
                }
                for f in &own {
                    black_box(trie.remove(black_box(f), 7));
                }
            })
        });
    }
    // Filling an empty trie from scratch: the cost of a broker restart's
    // resubscription storm.
    g.throughput(Throughput::Elements(10_000));
    let filters: Vec<String> = (0..10_000).map(filter).collect();
    g.bench_function("insert_10000_into_empty", |b| {
        b.iter_batched(
            Trie::<u32, u8>::new,
            |mut t| {
                for (i, f) in filters.iter().enumerate() {
                    t.insert(f, i as u32, 0);
                }
                t
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_match, bench_churn);
criterion_main!(benches);
