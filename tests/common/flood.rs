//! A slow-reader flood shared by the transport tests (`e2e_tls.rs`,
//! `e2e_ws.rs`): numbered 4 KiB QoS 0 messages on `flood/x`, and the check
//! that what a slow reader finally gets is whole, in order and intact.

use super::{RawClient, frame, ptype};

/// Topic of the flood.
pub const TOPIC: &str = "flood/x";
/// Messages in a flood: 16 MB, far more than socket buffers and
/// `max_output_buffer` hold.
pub const COUNT: u32 = 4000;
const PAYLOAD: usize = 4096;

/// Publishes the flood through `publisher` in bursts of about 256 KiB.
pub fn send(publisher: &mut RawClient) {
    let mut burst = Vec::new();
    for i in 0..COUNT {
        let mut payload = i.to_be_bytes().to_vec();
        payload.extend((0..(PAYLOAD as u32 - 4)).map(|j| (i + j) as u8));
        burst.extend(frame::publish(TOPIC, &payload, 0, false, false, 0));
        if burst.len() > 256 * 1024 {
            publisher.send(&burst);
            burst.clear();
        }
    }
    publisher.send(&burst);
}

/// `got` (packet type, body) holds flood messages only, each whole and
/// intact, in increasing order (QoS 0 past the output bound may be
/// missing, never reordered or cut).
pub fn check(got: &[(u8, Vec<u8>)]) {
    assert!(!got.is_empty());
    let mut last = None;
    for (t, body) in got {
        assert_eq!(*t, ptype::PUBLISH);
        let payload = &body[2 + TOPIC.len()..];
        assert_eq!(payload.len(), PAYLOAD);
        let i = u32::from_be_bytes(payload[..4].try_into().expect("4 bytes"));
        assert!(last.is_none_or(|l| i > l), "order: {i} after {last:?}");
        assert!(
            payload[4..]
                .iter()
                .enumerate()
                .all(|(j, &v)| v == (i + j as u32) as u8),
            "payload {i} intact"
        );
        last = Some(i);
    }
}
