//! The embedding API end to end: lifecycle, in-process clients, network
//! clients (raw sockets and Debian's mosquitto clients), backpressure.
//! Everything on 127.0.0.1 with port 0, every wait bounded.

mod embed_util;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use boxmq::topic::TopicError;
use boxmq::{
    Broker, BrokerError, BrokerState, ClientError, Limits, QoS, RecvTimeoutError, TryRecvError,
};
use embed_util::{Raw, WAIT, addr, start, start_with, wait_until};

#[test]
fn lifecycle_init_running_stopped_and_restart_on_same_port() {
    let mut broker = Broker::builder().port(0).build();
    assert_eq!(broker.state(), BrokerState::Init);
    let handle = broker.start().expect("start");
    assert_eq!(broker.state(), BrokerState::Running);
    assert_eq!(handle.state(), BrokerState::Running);
    let bound = addr(&handle);
    assert_ne!(bound.port(), 0);
    assert!(matches!(broker.start(), Err(BrokerError::AlreadyRunning)));

    let t = Instant::now();
    handle.stop().expect("stop");
    assert!(t.elapsed() < WAIT);
    assert_eq!(handle.state(), BrokerState::Stopped);
    assert_eq!(broker.state(), BrokerState::Stopped);
    handle.stop().expect("a second stop is harmless");

    // A new broker on the very same port.
    let mut again = Broker::builder().listen(bound.to_string()).build();
    let h2 = again.start().expect("the port is free again after stop");
    assert_eq!(h2.local_addrs(), vec![bound]);
    let _raw = Raw::connect(bound, "after-restart");
    h2.stop().expect("stop");
}

#[test]
fn port_in_use_is_an_error_and_state_failed() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let at = taken.local_addr().expect("addr");
    let mut broker = Broker::builder().listen(at.to_string()).build();
    match broker.start() {
        Err(BrokerError::Bind { addr, source }) => {
            assert_eq!(addr, at);
            assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
        }
        other => panic!("expected a bind error, got {other:?}"),
    }
    match broker.state() {
        BrokerState::Failed(why) => {
            assert!(why.contains(&at.to_string()), "{why}");
            assert!(why.starts_with("cannot listen on"), "{why}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    // Once the port is free, the same broker can start.
    drop(taken);
    let handle = broker.start().expect("start after the port was freed");
    assert_eq!(handle.state(), BrokerState::Running);
}

#[test]
fn malformed_config_is_a_typed_error() {
    let mut broker = Broker::builder().listen("localhost-ish:99999").build();
    let err = broker.start().expect_err("bad address");
    assert!(matches!(err, BrokerError::Config(_)), "{err:?}");
    assert!(err.to_string().contains("localhost-ish:99999"), "{err}");
    assert!(matches!(broker.state(), BrokerState::Failed(_)));
    assert!(matches!(
        Broker::builder().listen("nonsense").try_build(),
        Err(BrokerError::Config(_))
    ));

    let dir = std::env::temp_dir().join(format!("boxmq-embed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("bad.conf");
    std::fs::write(&path, "port 1883\nbridge_protocol_version mqttv311\n").expect("write");
    let err = Broker::from_config_file(&path).expect_err("refused directive");
    let text = err.to_string();
    assert!(text.contains("bad.conf:2"), "{text}");
    assert!(matches!(
        Broker::from_config_file(dir.join("missing.conf")),
        Err(BrokerError::Config(_))
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn in_process_wildcards_and_qos() {
    let (_broker, handle) = start();
    let app = handle.client("app").expect("client");
    let plus = app
        .subscribe("sensors/+/temp", QoS::ExactlyOnce)
        .expect("sub");
    let hash = app.subscribe("sensors/#", QoS::AtLeastOnce).expect("sub");
    let exact = app
        .subscribe("sensors/a/temp", QoS::AtMostOnce)
        .expect("sub");

    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        let payload = format!("{i}");
        app.publish("sensors/a/temp", &payload, qos, false)
            .expect("publish");
        let m = plus.recv_timeout(WAIT).expect("plus");
        assert_eq!(
            (m.topic.as_str(), m.payload.as_slice()),
            ("sensors/a/temp", payload.as_bytes())
        );
        assert_eq!(m.qos, qos, "delivered at the published QoS (granted 2)");
        assert!(!m.retain);
        let m = hash.recv_timeout(WAIT).expect("hash");
        assert_eq!(m.qos, qos.min(QoS::AtLeastOnce));
        let m = exact.recv_timeout(WAIT).expect("exact");
        assert_eq!(m.qos, QoS::AtMostOnce);
    }
    app.publish("sensors/a/humidity", "50", QoS::AtLeastOnce, false)
        .expect("publish");
    assert_eq!(
        hash.recv_timeout(WAIT).expect("hash").topic,
        "sensors/a/humidity"
    );
    assert_eq!(plus.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(exact.try_recv(), Err(TryRecvError::Empty));
    app.publish("sensors", "x", QoS::AtMostOnce, false)
        .expect("publish");
    assert_eq!(
        hash.recv_timeout(WAIT).expect("parent level").topic,
        "sensors"
    );
}

#[test]
fn retained_messages_arrive_on_subscribe() {
    let (_broker, handle) = start();
    let app = handle.client("app").expect("client");
    app.publish("display/brightness", "80", QoS::AtLeastOnce, true)
        .expect("publish");
    app.publish("display/mode", "night", QoS::ExactlyOnce, true)
        .expect("publish");
    let sub = app.subscribe("display/+", QoS::ExactlyOnce).expect("sub");
    let mut got: Vec<_> = (0..2)
        .map(|_| sub.recv_timeout(WAIT).expect("retained"))
        .collect();
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    assert_eq!(got[0].topic, "display/brightness");
    assert_eq!(got[0].payload, b"80");
    assert_eq!(got[0].qos, QoS::AtLeastOnce);
    assert!(got[0].retain);
    assert_eq!(got[1].topic, "display/mode");
    assert_eq!(got[1].qos, QoS::ExactlyOnce);
    assert!(got[1].retain);

    // Clearing the retained message: an empty retained publish.
    app.publish("display/mode", "", QoS::AtMostOnce, true)
        .expect("clear");
    let cleared = sub
        .recv_timeout(WAIT)
        .expect("the empty message is delivered");
    assert!(cleared.payload.is_empty());
    let late = app.subscribe("display/#", QoS::AtMostOnce).expect("sub");
    let only = late.recv_timeout(WAIT).expect("retained");
    assert_eq!(only.topic, "display/brightness");
    assert_eq!(
        late.recv_timeout(Duration::from_millis(100)),
        Err(RecvTimeoutError::Timeout)
    );
}

#[test]
fn dollar_topics_are_not_matched_by_leading_wildcards() {
    let (_broker, handle) = start();
    let app = handle.client("app").expect("client");
    let all = app.subscribe("#", QoS::AtMostOnce).expect("sub");
    let plus = app.subscribe("+/x", QoS::AtMostOnce).expect("sub");
    // Clients cannot publish under $SYS, so another $-topic stands in.
    let sys = app.subscribe("$app/#", QoS::AtMostOnce).expect("sub");
    app.publish("$app/x", "hidden", QoS::AtMostOnce, false)
        .expect("publish");
    app.publish("visible", "v", QoS::AtMostOnce, false)
        .expect("publish");
    assert_eq!(sys.recv_timeout(WAIT).expect("$app/#").topic, "$app/x");
    // Messages are delivered in order: "visible" first means "$SYS/x" was skipped.
    assert_eq!(all.recv_timeout(WAIT).expect("#").topic, "visible");
    assert_eq!(all.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(plus.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn network_and_in_process_clients_talk_both_ways() {
    let (_broker, handle) = start();
    let app = handle.client("app").expect("client");
    let from_net = app.subscribe("net/#", QoS::ExactlyOnce).expect("sub");

    let mut device = Raw::connect(addr(&handle), "device");
    assert_eq!(device.subscribe("app/#", QoS::ExactlyOnce), vec![2]);

    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        device.publish("net/in", b"from the network", qos, false);
        let m = from_net.recv_timeout(WAIT).expect("network -> in-process");
        assert_eq!(m.topic, "net/in");
        assert_eq!(m.payload, b"from the network");
        assert_eq!(m.qos, qos);

        app.publish("app/out", "from the app", qos, false)
            .expect("publish");
        let (topic, payload, got_qos, retain) = device.recv_publish();
        assert_eq!(
            (topic.as_str(), payload.as_slice()),
            ("app/out", &b"from the app"[..])
        );
        assert_eq!(got_qos, qos);
        assert!(!retain);
    }

    // Retained from the network, picked up by a later in-process subscriber.
    device.publish("net/status", b"online", QoS::AtLeastOnce, true);
    let status = app.subscribe("net/status", QoS::AtMostOnce).expect("sub");
    let m = status.recv_timeout(WAIT).expect("retained");
    assert!(m.retain);
    assert_eq!(m.payload, b"online");
}

fn mosquitto_available() -> bool {
    let ok = Command::new("mosquitto_pub")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        eprintln!("mosquitto clients not installed; skipping");
    }
    ok
}

#[test]
fn mosquitto_clients_and_in_process_clients() {
    if !mosquitto_available() {
        return;
    }
    let (_broker, handle) = start();
    let port = addr(&handle).port().to_string();
    let app = handle.client("app").expect("client");

    // mosquitto_pub -> in-process subscriber.
    let sub = app
        .subscribe("shellies/+/input_event/0", QoS::AtLeastOnce)
        .expect("sub");
    let status = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port, "-q", "1"])
        .args(["-t", "shellies/shellybutton1-A4CF12F45A10/input_event/0"])
        .args(["-m", r#"{"event":"S","event_cnt":3}"#])
        .status()
        .expect("mosquitto_pub");
    assert!(status.success());
    let m = sub.recv_timeout(WAIT).expect("from mosquitto_pub");
    assert_eq!(m.payload, br#"{"event":"S","event_cnt":3}"#);
    assert_eq!(m.qos, QoS::AtLeastOnce);

    // In-process publisher -> mosquitto_sub.
    let before = handle.stats().expect("stats").subscriptions;
    let child = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port, "-q", "2", "-v"])
        .args(["-t", "app/#", "-C", "1", "-W", "5"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub");
    assert!(
        wait_until(|| handle.stats().is_ok_and(|s| s.subscriptions > before)),
        "mosquitto_sub subscribed"
    );
    app.publish("app/light", "on", QoS::ExactlyOnce, false)
        .expect("publish");
    let out = child.wait_with_output().expect("mosquitto_sub output");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "app/light on");
}

#[test]
fn stop_with_network_clients_connected() {
    let (broker, handle) = start();
    let mut a = Raw::connect(addr(&handle), "a");
    let mut b = Raw::connect(addr(&handle), "b");
    b.subscribe("x/#", QoS::AtLeastOnce);
    let app = handle.client("app").expect("client");
    let sub = app.subscribe("x/#", QoS::AtMostOnce).expect("sub");
    app.publish("x/1", "before stop", QoS::AtMostOnce, false)
        .expect("publish");

    let t = Instant::now();
    handle.stop().expect("stop");
    assert!(t.elapsed() < WAIT, "stop took {:?}", t.elapsed());
    assert_eq!(broker.state(), BrokerState::Stopped);

    // The network clients see the connection close.
    assert_eq!(a.recv(), None);
    let mut rest = Vec::new();
    while let Some(p) = b.recv() {
        rest.push(p);
    }
    assert!(
        rest.len() <= 1,
        "at most the message sent before stop: {rest:?}"
    );
    // The in-process subscription ends after what was delivered before.
    let drained: Vec<_> = sub.collect();
    assert!(drained.len() <= 1);
    // Everything after stop says so.
    assert_eq!(
        app.publish("x/2", "after", QoS::AtMostOnce, false),
        Err(ClientError::NotRunning)
    );
    assert!(matches!(
        handle.client("late"),
        Err(BrokerError::NotRunning)
    ));
    assert!(matches!(handle.stats(), Err(BrokerError::NotRunning)));
}

#[test]
fn dropping_the_broker_stops_it() {
    let (broker, handle) = start();
    let at = addr(&handle);
    let mut raw = Raw::connect(at, "watcher");
    drop(broker);
    assert_eq!(handle.state(), BrokerState::Stopped);
    assert_eq!(raw.recv(), None);
    let _again = TcpListener::bind(at).expect("the port is free");
}

#[test]
fn invalid_topics_and_filters_are_typed_errors_and_the_client_goes_on() {
    let (_broker, handle) = start_with(Limits {
        max_topic_levels: 4,
        max_packet_size: 1024,
        ..Limits::default()
    });
    let app = handle.client("app").expect("client");
    let sub = app.subscribe("ok/#", QoS::AtLeastOnce).expect("sub");

    let bad_topics = [
        ("", TopicError::Empty),
        ("a/+/b", TopicError::WildcardInName),
        ("a/#", TopicError::WildcardInName),
        ("a\0b", TopicError::NullChar),
        ("a/b/c/d/e", TopicError::TooManyLevels),
    ];
    for (topic, reason) in bad_topics {
        let err = app
            .publish(topic, "x", QoS::AtLeastOnce, false)
            .expect_err(topic);
        assert_eq!(
            err,
            ClientError::InvalidTopic {
                topic: topic.to_owned(),
                reason
            }
        );
        assert!(err.to_string().contains("invalid topic name"));
    }
    let bad_filters = [
        ("", TopicError::Empty),
        ("a/#/b", TopicError::InvalidWildcard),
        ("a+/b", TopicError::InvalidWildcard),
        ("a/b#", TopicError::InvalidWildcard),
        ("a/b/c/d/e", TopicError::TooManyLevels),
    ];
    for (filter, reason) in bad_filters {
        let err = app.subscribe(filter, QoS::AtMostOnce).expect_err(filter);
        assert_eq!(
            err,
            ClientError::InvalidFilter {
                filter: filter.to_owned(),
                reason
            }
        );
    }
    assert_eq!(
        app.subscribe("$share/group/a+", QoS::AtMostOnce)
            .expect_err("share"),
        ClientError::InvalidFilter {
            filter: "$share/group/a+".to_owned(),
            reason: TopicError::InvalidWildcard
        }
    );
    let err = app
        .publish("ok/big", vec![0u8; 2000], QoS::AtMostOnce, false)
        .expect_err("too large");
    assert!(
        matches!(err, ClientError::TooLarge { max: 1024, .. }),
        "{err:?}"
    );

    // Still connected, still subscribed.
    app.publish("ok/still", "fine", QoS::AtLeastOnce, false)
        .expect("publish");
    assert_eq!(sub.recv_timeout(WAIT).expect("message").topic, "ok/still");
    assert_eq!(handle.stats().expect("stats").clients_connected, 2);

    // Client ids.
    assert!(matches!(
        handle.client(&"x".repeat(65_536)),
        Err(BrokerError::InvalidClientId(_))
    ));
    assert!(matches!(
        handle.client("a\0b"),
        Err(BrokerError::InvalidClientId(_))
    ));
}

#[test]
fn anonymous_off_refuses_network_clients_not_in_process_ones() {
    use std::io::{Read, Write};
    let mut broker = Broker::builder().port(0).allow_anonymous(false).build();
    let handle = broker.start().expect("start");
    // The application's own client needs no credentials.
    let app = handle.client("app").expect("in-process client");
    app.publish("t", "x", QoS::AtMostOnce, false)
        .expect("publish");
    // A network client without a user name: CONNACK 0x05, not authorized.
    let mut s = std::net::TcpStream::connect(addr(&handle)).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    let connect = [
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 1, b'n',
    ];
    s.write_all(&connect).expect("write");
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).expect("CONNACK");
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x05]);
}

#[test]
fn slow_subscriber_stays_bounded_and_others_keep_receiving() {
    let (_broker, handle) = start_with(Limits {
        max_output_buffer: 16 * 1024,
        ..Limits::default()
    });
    let app = handle.client("app").expect("client");
    let slow = app.subscribe("flood/#", QoS::AtMostOnce).expect("slow");
    let fast_client = handle.client("fast").expect("client");
    let fast = fast_client
        .subscribe("flood/#", QoS::AtMostOnce)
        .expect("fast");
    let mut net = Raw::connect(addr(&handle), "net");
    net.subscribe("flood/#", QoS::AtMostOnce);

    const BATCH: usize = 100;
    const BATCHES: usize = 20;
    let payload = vec![b'p'; 200];
    let mut fast_got = 0;
    let mut net_got = 0;
    for _ in 0..BATCHES {
        for _ in 0..BATCH {
            app.publish("flood/x", &payload, QoS::AtMostOnce, false)
                .expect("publish");
        }
        // The fast readers take every batch before the next one.
        for _ in 0..BATCH {
            let m = fast.recv_timeout(WAIT).unwrap_or_else(|e| {
                panic!(
                    "fast subscriber after {fast_got}: {e:?} {:?}",
                    handle.stats()
                )
            });
            assert_eq!(m.payload.len(), 200);
            fast_got += 1;
            net.recv_publish();
            net_got += 1;
        }
    }
    assert_eq!(fast_got, BATCH * BATCHES);
    assert_eq!(net_got, BATCH * BATCHES);

    // The slow one holds at most its queue; the broker dropped the rest.
    let held = slow.pending();
    assert!(held > 0 && held < BATCH * BATCHES, "held {held}");
    let stats = handle.stats().expect("stats");
    assert!(stats.publish_dropped > 0, "{stats:?}");
    assert_eq!(stats.messages_received, (BATCH * BATCHES) as u64);

    // Once the slow reader catches up, messages flow to it again.
    let mut taken = 0;
    while slow.try_recv().is_ok() {
        taken += 1;
    }
    assert!(taken >= held);
    // What the broker still held for it (within max_output_buffer) follows.
    while slow.recv_timeout(Duration::from_millis(200)).is_ok() {}
    app.publish("flood/after", "late", QoS::AtMostOnce, false)
        .expect("publish");
    assert_eq!(
        slow.recv_timeout(WAIT).expect("after catching up").topic,
        "flood/after"
    );
}

#[test]
fn slow_qos1_subscriber_keeps_messages_in_the_session_queue() {
    let (_broker, handle) = start();
    let app = handle.client("app").expect("client");
    let slow = app.subscribe("q/#", QoS::AtLeastOnce).expect("sub");
    const N: usize = 600;
    for i in 0..N {
        app.publish("q/x", i.to_string(), QoS::AtLeastOnce, false)
            .expect("publish");
    }
    // Nothing lost: everything beyond the mailbox waited in the broker.
    for i in 0..N {
        let m = slow.recv_timeout(WAIT).expect("in order, nothing lost");
        assert_eq!(m.payload, i.to_string().as_bytes());
    }
    assert_eq!(handle.stats().expect("stats").publish_dropped, 0);
}

#[test]
fn stats_counters_move() {
    // $SYS off, so that only this test's traffic moves the counters.
    let mut broker = Broker::builder().port(0).sys_interval(0).build();
    let handle = broker.start().expect("start");
    let s0 = handle.stats().expect("stats");
    assert_eq!(s0.clients_connected, 0);
    let app = handle.client("app").expect("client");
    let sub = app.subscribe("s/#", QoS::AtMostOnce).expect("sub");
    let _raw = Raw::connect(addr(&handle), "raw");
    app.publish("s/1", "x", QoS::AtMostOnce, true)
        .expect("publish");
    sub.recv_timeout(WAIT).expect("message");
    let s1 = handle.stats().expect("stats");
    assert_eq!(s1.clients_connected, 3, "{s1:?}");
    assert_eq!(s1.subscriptions, 1);
    assert_eq!(s1.messages_received, 1);
    assert_eq!(s1.messages_sent, 1);
    assert_eq!(s1.retained_messages, 1);
    assert!(s1.bytes_received > s0.bytes_received);
    assert!(s1.bytes_sent > s0.bytes_sent);

    // Dropping a subscription unsubscribes and disconnects it.
    drop(sub);
    assert!(wait_until(|| {
        handle
            .stats()
            .is_ok_and(|s| s.subscriptions == 0 && s.clients_connected == 2)
    }));
    drop(app);
    assert!(wait_until(|| handle
        .stats()
        .is_ok_and(|s| s.clients_connected == 1)));
}

#[test]
fn subscriptions_outlive_their_client() {
    let (_broker, handle) = start();
    let sub = handle
        .client("short-lived")
        .expect("client")
        .subscribe("t", QoS::AtMostOnce)
        .expect("sub");
    let other = handle.client("other").expect("client");
    other
        .publish("t", "still here", QoS::AtMostOnce, false)
        .expect("publish");
    assert_eq!(
        sub.recv_timeout(WAIT).expect("message").payload,
        b"still here"
    );
}

#[test]
fn callbacks_run_on_their_own_thread_and_stop_on_drop() {
    let (_broker, handle) = start();
    let app = handle.client("app").expect("client");
    let (tx, rx) = mpsc::channel();
    let guard = app
        .subscribe_with("cb/#", QoS::AtLeastOnce, move |m| {
            let name = std::thread::current().name().map(str::to_owned);
            let _ = tx.send((m.topic, name));
        })
        .expect("subscribe_with");
    app.publish("cb/1", "x", QoS::AtLeastOnce, false)
        .expect("publish");
    let (topic, thread) = rx.recv_timeout(WAIT).expect("callback");
    assert_eq!(topic, "cb/1");
    assert_eq!(thread.as_deref(), Some("boxmq-callback"));

    guard.unsubscribe();
    assert!(wait_until(|| handle
        .stats()
        .is_ok_and(|s| s.subscriptions == 0)));
    app.publish("cb/2", "x", QoS::AtLeastOnce, false)
        .expect("publish");
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
}

#[test]
fn a_network_client_taking_over_the_id_disconnects_the_in_process_one() {
    let (_broker, handle) = start();
    let app = handle.client("shared-id").expect("client");
    app.publish("t", "x", QoS::AtMostOnce, false)
        .expect("publish");
    let _raw = Raw::connect(addr(&handle), "shared-id");
    assert_eq!(
        app.publish("t", "x", QoS::AtMostOnce, false),
        Err(ClientError::Disconnected)
    );
}

#[test]
fn handle_is_send_sync_clone_and_works_from_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<boxmq::Handle>();
    fn assert_send_sync2<T: Send + Sync>() {}
    assert_send_sync2::<boxmq::Client>();
    assert_send_sync2::<boxmq::Subscription>();

    let (_broker, handle) = start();
    let sub = handle
        .client("reader")
        .expect("client")
        .subscribe("threads/#", QoS::AtLeastOnce)
        .expect("sub");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let h = handle.clone();
            std::thread::spawn(move || {
                let c = h.client(&format!("writer{t}")).expect("client");
                for i in 0..50 {
                    c.publish(
                        &format!("threads/{t}"),
                        i.to_string(),
                        QoS::AtLeastOnce,
                        false,
                    )
                    .expect("publish");
                }
            })
        })
        .collect();
    let mut n = 0;
    while n < 200 {
        sub.recv_timeout(WAIT).expect("message");
        n += 1;
    }
    for t in threads {
        t.join().expect("thread");
    }
    let stopper = handle.clone();
    std::thread::spawn(move || stopper.stop())
        .join()
        .expect("thread")
        .expect("stop from another thread");
    assert_eq!(handle.state(), BrokerState::Stopped);
}

#[test]
fn run_reports_bind_errors() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let at = taken.local_addr().expect("addr");
    let broker = Broker::builder().listen(at.to_string()).build();
    match broker.run() {
        Err(BrokerError::Bind { addr, .. }) => assert_eq!(addr, at),
        other => panic!("expected a bind error, got {other:?}"),
    }
}

/// The binary runs through `Broker::run` with signal handling: SIGINT
/// stops it gracefully and its clients see the connection close.
#[test]
fn the_binary_runs_the_broker_and_stops_on_sigint() {
    use std::io::{BufRead, BufReader};
    // Persistence is on by default in the binary; its directory comes from
    // STATE_DIRECTORY (as under systemd), here a fresh temporary one.
    let state = std::env::temp_dir().join(format!("boxmq-embed-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(state.clone());
    let mut child = Command::new(env!("CARGO_BIN_EXE_boxmq"))
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env("STATE_DIRECTORY", &state)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn boxmq");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let addr = loop {
        let line = match lines.recv_timeout(WAIT) {
            Ok(l) => l,
            Err(e) => {
                let _ = child.kill();
                panic!("no listening line: {e}");
            }
        };
        if let Some((_, a)) = line.split_once(" listening on ") {
            break a.trim().parse().expect("address");
        }
    };
    let mut raw = Raw::connect(addr, "binary-client");
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill")
            .success()
    );
    assert_eq!(raw.recv(), None);
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("boxmq did not exit on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

/// Flow control with in-process subscribers (README "QoS 1/2 under
/// load"): one that keeps taking messages gets every one from a network
/// publisher, in order, while another that stopped taking them holds the
/// publisher up only until it counts as stuck, and its drops are counted.
#[test]
fn an_in_process_subscriber_that_stops_taking_holds_nobody_for_ever() {
    if !mosquitto_available() {
        return;
    }
    const LINES: usize = 2000;
    let (_broker, handle) = start_with(Limits {
        max_queued_messages: 50,
        stuck_timeout: Duration::from_secs(1),
        ..Limits::default()
    });
    let port = addr(&handle).port().to_string();
    let healthy = handle.client("healthy").expect("client");
    let sub = healthy.subscribe("press/#", QoS::AtLeastOnce).expect("sub");
    let stuck = handle.client("stuck").expect("client");
    let _never_read = stuck.subscribe("press/#", QoS::AtLeastOnce).expect("sub");
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        while got.len() < LINES {
            match sub.recv_timeout(Duration::from_secs(20)) {
                Ok(m) => got.push(String::from_utf8_lossy(&m.payload).into_owned()),
                Err(_) => break,
            }
        }
        got
    });
    let lines: Vec<String> = (0..LINES).map(|i| format!("press-{i}")).collect();
    let mut publisher = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-q",
            "1",
            "-t",
            "press/b",
            "-l",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto_pub");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let mut stdin = publisher.stdin.take().expect("stdin");
    let _ = std::io::Write::write_all(&mut stdin, text.as_bytes());
    drop(stdin);
    let finished = wait_until(|| publisher.try_wait().ok().flatten().is_some())
        || wait_until(|| publisher.try_wait().ok().flatten().is_some());
    if !finished {
        let _ = publisher.kill();
    }
    let _ = publisher.wait();
    assert!(finished, "the publisher was not held up for ever");
    let got = reader.join().expect("reader");
    assert_eq!(got, lines, "the healthy subscriber got all, in order");
    let stats = handle.stats().expect("stats");
    let dropped: u64 = stats.dropped_per_client.iter().map(|c| c.dropped).sum();
    assert!(dropped > 0, "{:?}", stats.dropped_per_client);
    assert_eq!(stats.publish_dropped, dropped);
}
