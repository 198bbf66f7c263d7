//! QoS: delivered QoS is the minimum of published and granted QoS, and the
//! QoS 2 receiver side is exactly-once.

mod common;

use common::*;
use std::time::Duration;

/// [MQTT-3.8.4-6] The QoS of messages sent for a subscription MUST be the
/// minimum of the published QoS and the granted QoS. Checked with the
/// mosquitto clients (`%q` prints the QoS of the PUBLISH it received).
#[test]
fn qos_downgrade_matrix_with_mosquitto_clients() {
    let b = TestBroker::start();
    let subs: Vec<(u8, MosqSub)> = (0u8..=2)
        .map(|sq| {
            let filter = format!("mq/s{sq}/#");
            let q = sq.to_string();
            let sub = MosqSub::start(
                b.port,
                &[
                    "-q", &q, "-t", &filter, "-F", "%q %t %p", "-C", "3", "-W", "10",
                ],
            );
            (sq, sub)
        })
        .collect();
    for sq in 0u8..=2 {
        for pq in 0u8..=2 {
            mosquitto_pub(
                b.port,
                &[
                    "-q",
                    &pq.to_string(),
                    "-t",
                    &format!("mq/s{sq}/p{pq}"),
                    "-m",
                    &format!("pub{pq}-sub{sq}"),
                ],
            );
        }
    }
    for (sq, sub) in subs {
        let out = sub.finish(Duration::from_secs(10));
        let mut got = out.messages.clone();
        got.sort();
        let want: Vec<String> = (0u8..=2)
            .map(|pq| format!("{} mq/s{sq}/p{pq} pub{pq}-sub{sq}", pq.min(sq)))
            .collect();
        assert_eq!(got, want, "subscriber at QoS {sq}:\n{}", out.raw);
    }
}

/// [MQTT-3.8.4-6] again, reading the QoS bits of each delivered PUBLISH's
/// fixed header directly, and completing each QoS flow by hand
/// ([MQTT-4.3.2-2] PUBACK, [MQTT-4.3.3-2] PUBREC/PUBREL/PUBCOMP).
#[test]
fn qos_downgrade_matrix_raw_fixed_header() {
    let b = TestBroker::start();
    let mut subs: Vec<RawClient> = (0u8..=2)
        .map(|sq| {
            let mut c = RawClient::connect(b.port, &format!("rq-sub{sq}"));
            let codes = c.subscribe(&[(&format!("rq/s{sq}/+"), sq)]);
            assert_eq!(codes, vec![sq], "granted QoS");
            c
        })
        .collect();
    let mut publ = RawClient::connect(b.port, "rq-pub");
    for sq in 0u8..=2 {
        for pq in 0u8..=2 {
            publ.publish(
                &format!("rq/s{sq}/p{pq}"),
                format!("{pq}").as_bytes(),
                pq,
                false,
            );
        }
    }
    for (sq, sub) in subs.iter_mut().enumerate() {
        let sq = sq as u8;
        // Order across different topics is not required; match by topic.
        let mut seen = Vec::new();
        for _ in 0..3 {
            let raw = sub.expect(ptype::PUBLISH);
            let p = raw.publish();
            let pq: u8 = p
                .payload_str()
                .parse()
                .expect("payload is the published QoS");
            assert_eq!(p.topic, format!("rq/s{sq}/p{pq}"));
            let want = pq.min(sq);
            assert_eq!(
                raw.qos(),
                want,
                "published at QoS {pq}, subscribed at {sq}: header {:#04x}",
                raw.first
            );
            assert!(
                !p.dup && !p.retain,
                "fresh delivery has DUP=0 RETAIN=0: {raw:?}"
            );
            assert_eq!(p.packet_id.is_some(), want > 0);
            sub.ack(&p);
            seen.push(pq);
        }
        seen.sort();
        assert_eq!(seen, vec![0, 1, 2], "subscriber at QoS {sq}");
        sub.expect_nothing(Duration::from_millis(50));
    }
}

/// [MQTT-4.3.3-2] Until it has received the PUBREL, the receiver MUST
/// acknowledge any PUBLISH with the same packet id with a PUBREC and MUST
/// NOT deliver the message onward again. The resend carries DUP=1
/// ([MQTT-3.3.1-1]). PUBREL is answered with PUBCOMP with the same id
/// ([MQTT-4.3.3-2] / §3.7).
#[test]
fn qos2_publish_resent_before_pubrel_is_delivered_once() {
    let b = TestBroker::start();
    let mut sub = RawClient::connect(b.port, "eo-sub");
    sub.subscribe_ok(&[("eo/t", 2)]);

    let mut publ = RawClient::connect(b.port, "eo-pub");
    publ.send(&frame::publish("eo/t", b"exactly once", 2, false, false, 7));
    assert_eq!(publ.expect(ptype::PUBREC).packet_id(), 7);
    // Resend before PUBREL, DUP set.
    publ.send(&frame::publish("eo/t", b"exactly once", 2, false, true, 7));
    let rec = publ.expect(ptype::PUBREC);
    assert_eq!((rec.first, rec.packet_id()), (0x50, 7));
    publ.send(&frame::pubrel(7));
    let comp = publ.expect(ptype::PUBCOMP);
    assert_eq!((comp.first, comp.packet_id()), (0x70, 7));
    // A marker after the exchange: the subscriber must see one copy, then it.
    publ.publish("eo/t", b"marker", 0, false);

    let first = sub.recv_publish();
    assert_eq!(
        (first.payload_str().as_str(), first.qos),
        ("exactly once", 2)
    );
    let next = sub.recv_publish();
    assert_eq!(
        next.payload_str(),
        "marker",
        "the QoS 2 message was delivered twice"
    );
    sub.expect_nothing(Duration::from_millis(50));
}
