//! The one adapter between bytes and the core, shared by every kind of
//! connection: the socket loop and its TLS / WebSocket transports
//! (`net/mod.rs`, `net/transport.rs`), in-process clients (`net/local/`)
//! and a bridge's local side (`bridge/link.rs`).
//!
//! * Into the core: [`Inbox::feed`] for bytes that arrive in pieces (a
//!   socket, a transport's decoded stream): what the core does not take
//!   waits in the inbox and goes in first next time. [`feed_frame`] for
//!   whole frames encoded in the process, which the core always takes.
//! * Out of the core: [`drain`] hands the core's output to a byte sink (a
//!   socket, a transport) as far as it takes it; [`next_frame`] gives it
//!   frame by frame, decoded, to the connections that act on what the
//!   core says (in-process clients, bridges).
//!
//! Every path tells the core what it took (`handle_data`'s count kept,
//! `handle_written` called), so the core's accounting of input and output
//! is the same whatever the connection.

use std::time::Instant;

use super::{ConnId, Core};
use crate::codec::PubRespKind;
use crate::codec::{self, DecodeError, Packet, PacketId, Properties, ProtocolVersion, PubResp};

/// Capacity past which an inbox that holds little is shrunk, and what it
/// is shrunk to (one read of the event loop, a quarter of it).
const INBOX_ROOM: usize = 64 * 1024;
const INBOX_KEEP: usize = INBOX_ROOM / 4;

/// Bytes of one connection that the core has not taken yet: the start of
/// a frame cut by a read, or input held while the core takes none (see
/// [`Core::wants_input`]). Boxed and given back once the core took it
/// all, so an idle connection holds no buffer and pays one pointer.
#[derive(Debug, Default)]
// One pointer (8 bytes) in every slab slot instead of a `Vec`'s 24.
#[allow(clippy::box_collection)]
pub(crate) struct Inbox(Option<Box<Vec<u8>>>);

impl Inbox {
    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|v| v.is_empty())
    }

    /// Where a transport decodes bytes for the core (TLS, WebSockets); the
    /// next [`Inbox::feed`] hands them in.
    pub(crate) fn buffer(&mut self) -> &mut Vec<u8> {
        self.0.get_or_insert_default()
    }

    /// Hands connection `id`'s input to the core: what waits here first,
    /// then `fresh`. What the core does not take waits here for the next
    /// call (which may have no fresh bytes: resuming a paused connection).
    pub(crate) fn feed(&mut self, core: &mut Core, id: ConnId, fresh: &[u8], now: Instant) {
        match self.0.as_mut() {
            Some(waiting) if !waiting.is_empty() => {
                waiting.extend_from_slice(fresh);
                let used = core.handle_data(id, waiting, now);
                waiting.drain(..used.min(waiting.len()));
            }
            _ if fresh.is_empty() => {}
            _ => {
                // The common case: nothing waits, the core reads straight
                // from the caller's buffer and only a remainder is copied.
                let used = core.handle_data(id, fresh, now);
                if let Some(rest) = fresh.get(used..).filter(|r| !r.is_empty()) {
                    self.buffer().extend_from_slice(rest);
                }
            }
        }
        self.tidy();
        self.reserve_frame();
    }

    /// A cut frame whose fixed header is in gets room for all of it at
    /// once, so the buffer never grows past the frame by doubling (the
    /// memory budget counts the frame's size: `core/budget.rs`).
    fn reserve_frame(&mut self) {
        let Some(v) = self.0.as_mut() else {
            return;
        };
        // The core refused a frame over max_packet_size already.
        if let Ok(Some(size)) = codec::frame_len(v, usize::MAX) {
            if size > v.capacity() {
                v.reserve_exact(size - v.len());
            }
        }
    }

    /// Frees an empty inbox and shrinks one that grew for a large packet.
    fn tidy(&mut self) {
        let Some(v) = self.0.as_mut() else {
            return;
        };
        if v.is_empty() {
            self.0 = None;
        } else if v.capacity() > INBOX_ROOM && v.len() < INBOX_KEEP {
            v.shrink_to(INBOX_KEEP);
        }
    }
}

/// Hands the core's output for connection `id` to `take`, which returns
/// how many of the bytes it was given it took (0: its sink is full or
/// failed), until the core has none left or `take` takes nothing. Tells
/// the core what went out; returns how many bytes that was.
pub(crate) fn drain(
    core: &mut Core,
    id: ConnId,
    now: Instant,
    mut take: impl FnMut(&[u8]) -> usize,
) -> usize {
    let mut taken = 0;
    loop {
        let out = core.pending_output(id);
        if out.is_empty() {
            return taken;
        }
        let n = take(out).min(out.len());
        if n == 0 {
            return taken;
        }
        taken += n;
        core.handle_written(id, n, now);
    }
}

/// What [`next_frame`] found in the core's output.
#[derive(Debug)]
pub(crate) enum Frame<T> {
    /// No output.
    None,
    /// The first frame, as `read` made it; the core was told it went out.
    Taken(T),
    /// `read` left the first frame where it is (no room for it yet).
    Left,
    /// The output does not decode (a bug in the core): said why; nothing
    /// was taken.
    Broken(String),
}

/// The core's own output for in-process connection `id` (it speaks
/// `version`), one frame at a time: `read` turns the decoded frame into
/// something owned (or `None`: leave it), so the caller can call the core
/// again once this returns.
pub(crate) fn next_frame<T>(
    core: &mut Core,
    id: ConnId,
    version: ProtocolVersion,
    now: Instant,
    read: impl FnOnce(Packet<'_>) -> Option<T>,
) -> Frame<T> {
    let out = core.pending_output(id);
    if out.is_empty() {
        return Frame::None;
    }
    // Our own core's output: no size limit to enforce.
    let (value, used) = match codec::decode(out, version, usize::MAX) {
        Ok(Some((packet, used))) => match read(packet) {
            Some(value) => (value, used),
            None => return Frame::Left,
        },
        Ok(None) => return Frame::Broken("incomplete frame".into()),
        Err(e) => return Frame::Broken(undecodable(&e)),
    };
    core.handle_written(id, used, now);
    Frame::Taken(value)
}

fn undecodable(e: &DecodeError) -> String {
    format!("undecodable frame: {e}")
}

/// Encodes with `encode` into `buf` and hands the bytes to the core as the
/// input of in-process connection `id` (an application client or a
/// bridge's local side). Whole frames go in, so the core takes them all;
/// a remainder cannot happen and is logged, not trusted.
pub(crate) fn feed_frame(
    core: &mut Core,
    id: ConnId,
    buf: &mut Vec<u8>,
    now: Instant,
    encode: impl FnOnce(&mut Vec<u8>),
) {
    buf.clear();
    encode(buf);
    let used = core.handle_data(id, buf, now);
    if used != buf.len() {
        log::error!(
            "in-process connection {}: the core left {used} of {} bytes",
            id.0,
            buf.len()
        );
    }
}

/// A PUBACK / PUBREC / PUBREL / PUBCOMP with reason 0.
pub(crate) fn ack(kind: PubRespKind, pid: PacketId) -> Packet<'static> {
    Packet::PubResp(PubResp {
        kind,
        packet_id: pid,
        reason: 0,
        properties: Properties::EMPTY,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::CoreOptions;

    /// CONNECT, 3.1.1, clean session, keepalive 0, client id "a".
    const CONNECT: [u8; 15] = [
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 0, 0, 1, b'a',
    ];
    /// PINGREQ [MQTT-3.12.4-1]: answered with PINGRESP.
    const PINGREQ: [u8; 2] = [0xC0, 0];

    fn opened() -> (Core, ConnId, Instant) {
        let mut core = Core::new(CoreOptions::default());
        let now = Instant::now();
        let id = ConnId(0);
        core.handle_open(id, "test", now);
        (core, id, now)
    }

    #[test]
    fn inbox_keeps_a_cut_frame_until_the_rest_arrives() {
        let (mut core, id, now) = opened();
        let mut inbox = Inbox::default();
        let mut bytes = CONNECT.to_vec();
        bytes.extend_from_slice(&PINGREQ[..1]);
        inbox.feed(&mut core, id, &bytes, now);
        assert!(!inbox.is_empty(), "half a PINGREQ waits");
        // CONNACK so far.
        let mut out = Vec::new();
        drain(&mut core, id, now, |b| {
            out.extend_from_slice(b);
            b.len()
        });
        assert_eq!(out, [0x20, 2, 0, 0]);
        inbox.feed(&mut core, id, &PINGREQ[1..], now);
        assert!(inbox.is_empty());
        assert!(inbox.0.is_none(), "an empty inbox holds no buffer");
        assert_eq!(core.pending_output(id), [0xD0, 0]);
    }

    #[test]
    fn a_cut_frame_gets_room_for_itself_once() {
        let (mut core, id, now) = opened();
        let mut inbox = Inbox::default();
        inbox.feed(&mut core, id, &CONNECT, now);
        // A 100,000-byte PUBLISH frame: header (3-byte remaining length),
        // then a piece of its body.
        let body = 100_000 - 4;
        let mut first = vec![
            0x30,
            (body & 0x7F) as u8 | 0x80,
            ((body >> 7) & 0x7F) as u8 | 0x80,
        ];
        first.push((body >> 14) as u8);
        first.extend_from_slice(&[0, 1, b't']);
        first.resize(70_000, b'x');
        inbox.feed(&mut core, id, &first, now);
        let cap = inbox.0.as_ref().map_or(0, |v| v.capacity());
        assert!((100_000..100_100).contains(&cap), "capacity {cap}");
        inbox.feed(&mut core, id, &vec![b'x'; 100_000 - 70_000], now);
        assert!(inbox.is_empty(), "the frame was taken whole");
    }

    #[test]
    fn drain_stops_when_the_sink_is_full_and_counts_what_went_out() {
        let (mut core, id, now) = opened();
        let mut inbox = Inbox::default();
        inbox.feed(&mut core, id, &CONNECT, now);
        assert_eq!(drain(&mut core, id, now, |_| 0), 0);
        assert_eq!(core.pending_output(id), [0x20, 2, 0, 0]);
        assert_eq!(drain(&mut core, id, now, |b| b.len().min(3)), 4);
        assert!(core.pending_output(id).is_empty());
        assert_eq!(core.stats().bytes_sent, 4);
    }

    #[test]
    fn next_frame_decodes_the_core_s_output_one_frame_at_a_time() {
        let (mut core, id, now) = opened();
        feed_frame(&mut core, id, &mut Vec::new(), now, |b| {
            b.extend_from_slice(&CONNECT);
            b.extend_from_slice(&PINGREQ);
        });
        let v = ProtocolVersion::V311;
        let left = next_frame(&mut core, id, v, now, |_| None::<()>);
        assert!(matches!(left, Frame::Left));
        let first = next_frame(&mut core, id, v, now, |p| {
            Some(matches!(p, Packet::Connack(c) if c.code == 0))
        });
        assert!(matches!(first, Frame::Taken(true)));
        let second = next_frame(&mut core, id, v, now, |p| {
            Some(matches!(p, Packet::PingResp))
        });
        assert!(matches!(second, Frame::Taken(true)));
        assert!(matches!(
            next_frame(&mut core, id, v, now, |_| Some(())),
            Frame::None
        ));
    }
}
