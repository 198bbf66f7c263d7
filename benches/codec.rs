//! Codec microbenchmarks: decode and encode of PUBLISH (16 B, 64 B, 1 KiB
//! payloads, QoS 0 and 1) and of a Shelly-style CONNECT with a will.
//!
//! `cargo bench --bench codec` measures; `cargo test` runs each once.

use std::hint::black_box;

use boxmq::codec::{
    self, Connect, Packet, PacketId, Properties, ProtocolVersion, Publish, QoS, Will,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const MAX_PACKET: usize = 256 * 1024;
const V311: ProtocolVersion = ProtocolVersion::V311;

fn publish(payload: &[u8], qos: QoS) -> Publish<'_> {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: "shellies/shellybutton1-a4cf12f45a7b/input_event/0",
        packet_id: if qos == QoS::AtMostOnce {
            None
        } else {
            PacketId::new(4242)
        },
        properties: Properties::EMPTY,
        payload,
    }
}

fn connect() -> Connect<'static> {
    Connect {
        protocol: V311,
        clean_start: true,
        keep_alive: 60,
        properties: Properties::EMPTY,
        client_id: "shellybutton1-a4cf12f45a7b",
        will: Some(Will {
            topic: "shellies/shellybutton1-a4cf12f45a7b/online",
            payload: b"false",
            qos: QoS::AtMostOnce,
            retain: true,
            properties: Properties::EMPTY,
        }),
        username: None,
        password: None,
    }
}

fn bench_publish(c: &mut Criterion) {
    for &size in &[16usize, 64, 1024] {
        let payload = vec![b'x'; size];
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
            let p = publish(&payload, qos);
            let mut frame = Vec::new();
            p.encode(V311, &mut frame);
            let name = format!("publish_{size}B_qos{}", qos as u8);

            let mut g = c.benchmark_group("codec_decode");
            g.throughput(Throughput::Bytes(frame.len() as u64));
            g.bench_function(&name, |b| {
                b.iter(|| {
                    let r = codec::decode(black_box(&frame), V311, MAX_PACKET);
                    match r {
                        Ok(Some((Packet::Publish(p), n))) => black_box((p.payload.len(), n)),
                        _ => unreachable!("publish frame must decode"),
                    }
                })
            });
            g.finish();

            let mut g = c.benchmark_group("codec_encode");
            g.throughput(Throughput::Bytes(frame.len() as u64));
            let mut out = Vec::with_capacity(2048);
            g.bench_function(&name, |b| {
                b.iter(|| {
                    out.clear();
                    black_box(&p).encode(V311, &mut out);
                    black_box(out.len())
                })
            });
            g.finish();
        }
    }
}

fn bench_connect(c: &mut Criterion) {
    let conn = connect();
    let mut frame = Vec::new();
    conn.encode(V311, &mut frame);

    c.bench_function("codec_decode/connect_shelly", |b| {
        b.iter(
            || match codec::decode(black_box(&frame), V311, MAX_PACKET) {
                Ok(Some((Packet::Connect(c), n))) => black_box((c.client_id.len(), n)),
                _ => unreachable!("connect frame must decode"),
            },
        )
    });
    let mut out = Vec::with_capacity(256);
    c.bench_function("codec_encode/connect_shelly", |b| {
        b.iter(|| {
            out.clear();
            black_box(&conn).encode(V311, &mut out);
            black_box(out.len())
        })
    });
}

criterion_group!(benches, bench_publish, bench_connect);
criterion_main!(benches);
