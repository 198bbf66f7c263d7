//! Between bytes and the core, for the connections whose bytes never
//! leave the process (in-process clients, a bridge's local side): whole
//! frames in, the core's own frames out.

use std::time::Instant;

use super::{ConnId, Core};
use crate::codec::{Packet, PacketId, Properties, PubResp, PubRespKind};

/// Encodes with `encode` into `buf` and hands the bytes to the core as the
/// input of in-process connection `id` (an application client or a
/// bridge's local side). Whole frames go in, so the core takes them all;
/// a remainder cannot happen and is logged, not trusted.
pub(crate) fn feed_core(
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
