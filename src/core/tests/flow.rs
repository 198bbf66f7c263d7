//! Flow control (`core/flow.rs`): publishers paused for a subscriber that
//! keeps acknowledging, given up on for a stuck one.

use super::*;

/// Queue bound of these tests: publishers pause at 4, go on at 2.
const QUEUE: usize = 8;
const STUCK: Duration = Duration::from_secs(5);

fn harness() -> Harness {
    let mut config = CoreOptions::default();
    config.limits.max_queued_messages = QUEUE;
    config.limits.max_inflight = 1;
    config.limits.stuck_timeout = STUCK;
    Harness::with(config)
}

/// QoS 1 PUBLISH frames on `topic` with packet ids `ids`, payloads the id.
/// A clean-session client subscribed to `t` at QoS 1.
fn subscriber(h: &mut Harness, name: &str) -> ConnId {
    let s = h.connect(name, true);
    h.subscribe(s, "t", QoS::AtLeastOnce);
    s
}

fn frames(topic: &str, ids: std::ops::RangeInclusive<u16>) -> Vec<u8> {
    let mut out = Vec::new();
    for i in ids {
        let payload = i.to_string();
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic,
            packet_id: Some(pid(i)),
            properties: Properties::EMPTY,
            payload: payload.as_bytes(),
        })
        .encode(V4, &mut out);
    }
    out
}

/// Acknowledges the QoS 1 PUBLISHes `id` was sent, once (a slow
/// subscriber) or until no more come (a fast one); returns the payloads.
fn take_and_ack(h: &mut Harness, id: ConnId, until_empty: bool) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let before = got.len();
        for out in h.recv(id) {
            if let Out::Publish {
                payload,
                pid: Some(p),
                ..
            } = out
            {
                got.push(String::from_utf8(payload).expect("utf-8"));
                h.resp(id, PubRespKind::PubAck, p);
            }
        }
        if !until_empty || got.len() == before {
            return got;
        }
    }
}

/// Feeds what is left of `input` to publisher `p` as an event loop does:
/// only while the core wants its input. Returns the bytes taken.
fn feed(h: &mut Harness, p: ConnId, input: &[u8]) -> usize {
    if !h.core.wants_input(p) {
        return 0;
    }
    h.core.handle_data(p, input, h.now)
}

/// Number of PUBACKs in what `p` was sent.
fn pubacks(h: &mut Harness, p: ConnId) -> usize {
    h.recv(p)
        .iter()
        .filter(|o| {
            matches!(
                o,
                Out::Resp {
                    kind: PubRespKind::PubAck,
                    ..
                }
            )
        })
        .count()
}

#[test]
fn a_slow_subscriber_that_keeps_acknowledging_loses_nothing() {
    let mut h = harness();
    let s = subscriber(&mut h, "slow");
    let p = h.connect("p", true);
    let input = frames("t", 1..=100);
    let (mut at, mut got, mut acked) = (0, Vec::new(), 0);
    // One acknowledgement every 2 s (less than `stuck_timeout`): far slower
    // than the publisher, which spends most of the time paused.
    for _ in 0..1000 {
        at += feed(&mut h, p, &input[at..]);
        acked += pubacks(&mut h, p);
        if at == input.len() && got.len() == 100 {
            break;
        }
        got.extend(take_and_ack(&mut h, s, false));
        h.advance(Duration::from_secs(2));
        while let Some(r) = h.core.poll_resumed() {
            assert_eq!(r, p);
        }
        assert!(at == input.len() || !h.core.wants_input(p) || got.len() < 100);
    }
    let want: Vec<String> = (1..=100).map(|i: u16| i.to_string()).collect();
    assert_eq!(got, want, "every message, in order");
    assert_eq!(acked, 100);
    let st = h.core.stats();
    assert_eq!(st.publish_dropped, 0);
    assert!(st.dropped_per_client.is_empty());
}

#[test]
fn a_full_queue_refuses_a_publish_until_there_is_room() {
    let mut h = harness();
    let s = subscriber(&mut h, "slow");
    // Many publishers, one message each: each gets past the half-way
    // pause once, so the queue reaches its bound.
    let pubs: Vec<ConnId> = (0..12).map(|i| h.connect(&format!("p{i}"), true)).collect();
    let mut refused = Vec::new();
    for (i, &p) in pubs.iter().enumerate() {
        let f = frames("t", 1..=1);
        let used = h.core.handle_data(p, &f, h.now);
        if used == 0 {
            refused.push((i, p, f));
            assert!(!h.core.wants_input(p));
            assert_eq!(pubacks(&mut h, p), 0, "not acknowledged");
        } else {
            assert_eq!(pubacks(&mut h, p), 1);
        }
    }
    // One in flight, QUEUE queued: the rest wait.
    assert_eq!(refused.len(), 12 - 1 - QUEUE);
    assert_eq!(h.core.stats().publish_dropped, 0);
    // The subscriber catches up: the refused publishers are resumed and
    // their PUBLISH is taken when handed in again.
    let mut got = take_and_ack(&mut h, s, false);
    for _ in 0..20 {
        while let Some(r) = h.core.poll_resumed() {
            if let Some(k) = refused.iter().position(|&(_, p, _)| p == r) {
                let (_, p, f) = refused.swap_remove(k);
                assert_eq!(h.core.handle_data(p, &f, h.now), f.len());
                assert_eq!(pubacks(&mut h, p), 1);
            }
        }
        got.extend(take_and_ack(&mut h, s, false));
    }
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(got.len(), 12);
    assert_eq!(h.core.stats().publish_dropped, 0);
}

#[test]
fn a_stuck_subscriber_is_given_up_on_and_its_drops_counted() {
    let mut h = harness();
    let _s = subscriber(&mut h, "stuck");
    let p = h.connect("p", true);
    let input = frames("t", 1..=40);
    let mut at = feed(&mut h, p, &input);
    assert!(at < input.len(), "paused at half the queue");
    // It never acknowledges: the pause lasts until it is stuck.
    h.advance(STUCK - Duration::from_millis(1));
    assert!(!h.core.wants_input(p));
    h.advance(Duration::from_millis(1));
    assert!(h.core.wants_input(p), "stuck: the publisher goes on");
    assert_eq!(h.core.poll_resumed(), Some(p));
    while at < input.len() {
        let used = feed(&mut h, p, &input[at..]);
        assert!(used > 0, "a stuck subscriber pauses nobody");
        at += used;
    }
    assert_eq!(pubacks(&mut h, p), 40);
    // One in flight and QUEUE queued; the rest dropped and counted.
    let st = h.core.stats();
    let dropped = 40 - 1 - QUEUE as u64;
    assert_eq!(st.publish_dropped, dropped);
    assert_eq!(
        st.dropped_per_client,
        vec![crate::core::ClientDropped {
            client_id: "stuck".into(),
            dropped
        }]
    );
}

#[test]
fn a_stuck_subscriber_does_not_stall_a_healthy_one() {
    let mut h = harness();
    let _stuck = subscriber(&mut h, "stuck");
    let healthy = subscriber(&mut h, "healthy");
    // Both just connected: alive until `stuck` owes for `stuck_timeout`.
    let p = h.connect("p", true);
    let input = frames("t", 1..=200);
    let (mut at, mut got) = (0, Vec::new());
    let start = h.now;
    for _ in 0..2000 {
        let used = feed(&mut h, p, &input[at..]);
        at += used;
        let fresh = take_and_ack(&mut h, healthy, true);
        if used == 0 && fresh.is_empty() {
            // Nothing moved: only time can help.
            h.advance(Duration::from_millis(100));
        }
        got.extend(fresh);
        if at == input.len() && got.len() == 200 {
            break;
        }
        while h.core.poll_resumed().is_some() {}
    }
    let want: Vec<String> = (1..=200).map(|i: u16| i.to_string()).collect();
    assert_eq!(got, want);
    // Paused once, for `stuck_timeout` at most.
    assert!(
        h.now - start <= STUCK + Duration::from_secs(1),
        "{:?}",
        h.now - start
    );
    let st = h.core.stats();
    assert_eq!(st.dropped_per_client.len(), 1);
    assert_eq!(st.dropped_per_client[0].client_id, "stuck");
    assert_eq!(st.dropped_per_client[0].dropped, 200 - 1 - QUEUE as u64);
}

#[test]
fn a_subscriber_that_acknowledges_again_ends_its_episode() {
    let mut h = harness();
    let s = subscriber(&mut h, "s");
    let p = h.connect("p", true);
    let input = frames("t", 1..=20);
    let mut at = feed(&mut h, p, &input);
    h.advance(STUCK);
    while at < input.len() {
        at += feed(&mut h, p, &input[at..]);
    }
    assert!(h.core.stats().publish_dropped > 0);
    // It wakes up: what it got is what was kept, in order, and the
    // publisher is paused for it again when it falls behind.
    let mut got = Vec::new();
    for _ in 0..20 {
        got.extend(take_and_ack(&mut h, s, false));
    }
    let want: Vec<String> = (1..=(1 + QUEUE as u16)).map(|i| i.to_string()).collect();
    assert_eq!(got, want);
    let more = frames("t", 21..=40);
    let used = feed(&mut h, p, &more);
    assert!(used < more.len(), "alive again: paused, not dropping");
}

#[test]
fn a_publisher_subscribed_to_its_own_topic_is_not_paused_by_itself() {
    let mut h = harness();
    let p = subscriber(&mut h, "loop");
    let input = frames("t", 1..=6);
    assert_eq!(feed(&mut h, p, &input), input.len());
    assert!(h.core.wants_input(p));
}

#[test]
fn going_offline_releases_the_publishers_paused_for_it() {
    let mut h = harness();
    let s = subscriber(&mut h, "s");
    let p = h.connect("p", true);
    let input = frames("t", 1..=20);
    assert!(feed(&mut h, p, &input) < input.len());
    h.core.handle_close(s, h.now);
    assert!(h.core.wants_input(p));
    assert_eq!(h.core.poll_resumed(), Some(p));
}

#[test]
fn drops_per_client_are_on_sys_and_cleared_when_the_session_ends() {
    let mut h = harness();
    h.core.handle_timeout(h.now); // starts the $SYS clock
    let watch = h.connect("watch", true);
    h.subscribe(watch, "$SYS/broker/client/#", QoS::AtMostOnce);
    let s = subscriber(&mut h, "odd+id#");
    let p = h.connect("p", true);
    let input = frames("t", 1..=20);
    let mut at = feed(&mut h, p, &input);
    h.advance(STUCK);
    while at < input.len() {
        at += feed(&mut h, p, &input[at..]);
    }
    h.advance(Duration::from_secs(10));
    let topic = "$SYS/broker/client/odd_id_/dropped";
    let got: Vec<(String, Vec<u8>, QoS)> = h
        .publishes(watch)
        .into_iter()
        .filter(|u| u.0 == topic)
        .collect();
    let want = (20 - 1 - QUEUE).to_string().into_bytes();
    assert_eq!(got, vec![(topic.to_owned(), want, QoS::AtMostOnce)]);
    // The session ends with its connection: the figure is cleared (an
    // empty retained message), and not published again.
    h.core.handle_close(s, h.now);
    h.advance(Duration::from_secs(10));
    let got: Vec<Vec<u8>> = h
        .publishes(watch)
        .into_iter()
        .filter(|u| u.0 == topic)
        .map(|u| u.1)
        .collect();
    assert_eq!(got, vec![Vec::<u8>::new()]);
    h.advance(Duration::from_secs(10));
    assert!(h.publishes(watch).iter().all(|u| u.0 != topic));
}

#[test]
fn a_session_back_with_messages_owed_counts_as_alive_from_its_reconnect() {
    let mut h = harness();
    let s = h.connect("s", false);
    h.subscribe(s, "t", QoS::AtLeastOnce);
    h.core.handle_close(s, h.now);
    let p = h.connect("p", true);
    // Offline: its queue fills to the bound, nobody is paused for it.
    let offline = frames("t", 1..=QUEUE as u16);
    assert_eq!(feed(&mut h, p, &offline), offline.len());
    h.advance(STUCK * 2);
    // Back: one in flight again, the rest queued. Not stuck, though it
    // acknowledged nothing for longer than `stuck_timeout`.
    let _s = h.connect("s", false);
    let more = frames("t", 100..=101);
    let used = feed(&mut h, p, &more);
    assert!(used < more.len(), "paused for it, not dropping");
    assert!(!h.core.wants_input(p));
    assert_eq!(h.core.stats().publish_dropped, 0);
}

#[test]
fn two_clients_publishing_into_each_others_full_queues_do_not_deadlock() {
    let mut h = harness();
    let a = h.connect("a", true);
    h.subscribe(a, "to/a", QoS::AtLeastOnce);
    let b = h.connect("b", true);
    h.subscribe(b, "to/b", QoS::AtLeastOnce);
    // Each client's byte stream towards the broker, as a socket would hold
    // it: its PUBLISHes to the other and its PUBACKs, in the order written.
    let mut stream = [(a, "to/b", Vec::new(), 0u64), (b, "to/a", Vec::new(), 0u64)];
    let mut next_pid = 1u16;
    let mut both_paused = false;
    let mut at_last_publish = 0;
    for round in 0..400 {
        for (id, other, out, got) in &mut stream {
            for o in h.recv(*id) {
                if let Out::Publish { pid: Some(p), .. } = o {
                    *got += 1;
                    Packet::PubResp(PubResp {
                        kind: PubRespKind::PubAck,
                        packet_id: pid(p),
                        reason: 0,
                        properties: Properties::EMPTY,
                    })
                    .encode(V4, out);
                }
            }
            if round < 300 {
                // Three a round against one delivered a round: the queues
                // fill.
                for _ in 0..3 {
                    out.extend(frames(other, next_pid..=next_pid));
                    next_pid = next_pid % 60_000 + 1;
                }
            }
            let used = feed(&mut h, *id, out);
            out.drain(..used);
        }
        both_paused |= !h.core.wants_input(a) && !h.core.wants_input(b);
        if round == 299 {
            at_last_publish = stream[0].3 + stream[1].3;
        }
        h.advance(Duration::from_millis(100));
        while h.core.poll_resumed().is_some() {}
    }
    assert!(both_paused, "the test reached the cycle");
    // Messages still flow in the last 10 simulated seconds, and every one
    // lost is counted, per client. Who loses depends on who floods: a
    // paused client's acknowledgements sit behind its own PUBLISHes in its
    // stream (head-of-line), so its subscription counts as stuck while it
    // is paused, and the other one goes on at its subscriber's pace.
    let delivered = stream[0].3 + stream[1].3;
    assert!(
        delivered > at_last_publish + 20,
        "{at_last_publish} -> {delivered}"
    );
    let st = h.core.stats();
    let counted: u64 = st.dropped_per_client.iter().map(|c| c.dropped).sum();
    assert_eq!(st.publish_dropped, counted);
}
