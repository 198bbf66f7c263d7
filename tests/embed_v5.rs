//! The in-process client speaks MQTT 5.0: message properties both ways
//! with a real 5.0 network client (paho), and shared subscriptions from
//! the application.

mod common;
mod embed_util;

use std::collections::BTreeSet;
use std::thread;
use std::time::Duration;

use boxmq::topic::TopicError;
use boxmq::{ClientError, Message, QoS};
use embed_util::{WAIT, addr, start};

/// A paho 5.0 client sends a request with User Properties (one name
/// twice), Content Type, Response Topic, Correlation Data, Payload Format
/// Indicator and Message Expiry Interval; the application receives all of
/// them unchanged [MQTT-3.3.2-17] [MQTT-3.3.2-18] and replies on the
/// Response Topic with its own User Property and the Correlation Data,
/// which paho checks.
#[test]
fn properties_travel_both_ways_between_paho_and_the_application() {
    let (_broker, handle) = start();
    let port = addr(&handle).port();
    let app = handle.client("dashboard").expect("client");
    let requests = app
        .subscribe("embed5/request", QoS::AtLeastOnce)
        .expect("subscribe");
    let paho = thread::spawn(move || common::run_paho("v5_embedded", port, &[]));

    let m = requests.recv_timeout(WAIT).expect("the request");
    assert_eq!(m.topic, "embed5/request");
    assert_eq!(m.payload, br#"{"ask":"state"}"#);
    assert_eq!(m.qos, QoS::AtLeastOnce);
    assert_eq!(
        m.user_properties,
        [
            ("origin".to_owned(), "paho".to_owned()),
            ("origin".to_owned(), "second".to_owned())
        ]
    );
    assert_eq!(m.content_type.as_deref(), Some("application/json"));
    assert_eq!(m.response_topic.as_deref(), Some("embed5/reply"));
    assert_eq!(m.correlation_data.as_deref(), Some(&[1u8, 2, 3][..]));
    assert_eq!(m.payload_format_indicator, Some(1));
    // What is left of the 300 s [MQTT-3.3.2-6].
    let left = m.message_expiry_interval.expect("expiry");
    assert!((290..=300).contains(&left), "{left}");

    let mut reply = Message::new(
        m.response_topic.clone().expect("topic"),
        r#"{"state":"Running"}"#,
    )
    .with_qos(QoS::AtLeastOnce)
    .with_user_property("from", "dashboard")
    .with_content_type("application/json");
    reply.correlation_data = m.correlation_data.clone();
    app.publish_message(reply).expect("reply");
    paho.join().expect("paho thread");
}

/// Between in-process clients too, and a property the broker would refuse
/// is an error before anything is sent; the client goes on.
#[test]
fn in_process_properties_and_refused_ones() {
    let (_broker, handle) = start();
    let app = handle.client("app").expect("client");
    let sub = app.subscribe("p/#", QoS::ExactlyOnce).expect("subscribe");
    let sent = Message::new("p/1", "x")
        .with_qos(QoS::ExactlyOnce)
        .with_user_property("k", "v")
        .with_response_topic("p/answers")
        .with_message_expiry_interval(60);
    app.publish_message(sent.clone()).expect("publish");
    let got = sub.recv_timeout(WAIT).expect("message");
    assert_eq!(got.user_properties, sent.user_properties);
    assert_eq!(got.response_topic, sent.response_topic);
    assert_eq!(got.qos, QoS::ExactlyOnce);

    let bad = [
        (
            Message::new("p/2", "").with_user_property("k", "a\u{1}b"),
            "User Property value",
        ),
        (
            Message::new("p/2", "").with_response_topic("p/+"),
            "Response Topic",
        ),
        (
            Message::new("p/2", "").with_content_type("\0"),
            "Content Type",
        ),
    ];
    for (m, which) in bad {
        match app.publish_message(m) {
            Err(ClientError::InvalidProperty { property, .. }) => assert_eq!(property, which),
            other => panic!("{which}: {other:?}"),
        }
    }
    assert_eq!(
        app.publish("p/\u{7f}", "", QoS::AtMostOnce, false),
        Err(ClientError::InvalidTopic {
            topic: "p/\u{7f}".to_owned(),
            reason: TopicError::ControlCharacter
        })
    );
    app.publish("p/3", "still here", QoS::AtLeastOnce, false)
        .expect("the client goes on");
    let m = sub.recv_timeout(WAIT).expect("message");
    assert_eq!(m.payload, b"still here");
    assert!(m.user_properties.is_empty());
}

/// Two in-process members of `$share/workers/jobs/#` split 60 QoS 1
/// messages: every message once, each member some (MQTT 5.0 §4.8.2),
/// while a plain subscription of the same filter gets them all. Malformed
/// share names are typed errors.
#[test]
fn shared_subscriptions_from_the_application() {
    let (_broker, handle) = start();
    let app = handle.client("app").expect("client");
    let a = app
        .subscribe("$share/workers/jobs/#", QoS::AtLeastOnce)
        .expect("member a");
    let b = app
        .subscribe("$share/workers/jobs/#", QoS::AtLeastOnce)
        .expect("member b");
    // A plain subscriber of the same topics gets everything.
    let all = app.subscribe("jobs/#", QoS::AtLeastOnce).expect("plain");
    const N: usize = 60;
    for i in 0..N {
        app.publish(&format!("jobs/{i}"), i.to_string(), QoS::AtLeastOnce, false)
            .expect("publish");
    }
    let mut seen = BTreeSet::new();
    let (mut got_a, mut got_b) = (0, 0);
    while seen.len() < N {
        let mut progress = false;
        for (sub, count) in [(&a, &mut got_a), (&b, &mut got_b)] {
            if let Ok(m) = sub.recv_timeout(Duration::from_millis(20)) {
                assert!(seen.insert(m.topic.clone()), "twice: {}", m.topic);
                *count += 1;
                progress = true;
            }
        }
        if !progress {
            panic!("stuck at {} of {N} (a {got_a}, b {got_b})", seen.len());
        }
    }
    assert!(got_a > 0 && got_b > 0, "a {got_a}, b {got_b}");
    assert!(a.try_recv().is_err() && b.try_recv().is_err());
    for _ in 0..N {
        all.recv_timeout(WAIT)
            .expect("the plain subscriber gets all");
    }

    for bad in ["$share/wor+kers/jobs", "$share/workers", "$share//jobs"] {
        assert_eq!(
            app.subscribe(bad, QoS::AtMostOnce).expect_err(bad),
            ClientError::InvalidFilter {
                filter: bad.to_owned(),
                reason: TopicError::InvalidSharedSubscription
            }
        );
    }
    assert!(matches!(
        app.subscribe("$share/workers/jobs/#/x", QoS::AtMostOnce),
        Err(ClientError::InvalidFilter {
            reason: TopicError::InvalidWildcard,
            ..
        })
    ));
}
