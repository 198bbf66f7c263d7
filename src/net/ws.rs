//! A small sans-IO WebSocket server layer (RFC 6455) for MQTT over
//! WebSockets (MQTT 3.1.1 §6, 5.0 §6): the HTTP/1.1 upgrade with the `mqtt`
//! subprotocol, then binary frames whose payloads form one byte stream of
//! MQTT packets. Frame and packet boundaries are independent: a packet may
//! span frames and a frame may hold several packets.
//!
//! Bounds: the upgrade request is at most [`MAX_HEADER`] bytes (its time
//! is the core's CONNECT timeout, which starts when the socket opens); a
//! frame's payload is at most `max_frame` bytes (close 1009 beyond); control
//! frames at most 125 bytes as RFC 6455 says. Payloads are unmasked straight
//! into the caller's buffer, so no frame is ever held whole.

use base64::Engine as _;
use sha1::{Digest, Sha1};

/// Largest upgrade request (request line and headers).
pub(crate) const MAX_HEADER: usize = 8 * 1024;
/// RFC 6455 §1.3: appended to Sec-WebSocket-Key before hashing.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Answer to an upgrade refused.
const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

const OP_CONT: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Close status codes (RFC 6455 §7.4.1).
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_PROTOCOL: u16 = 1002;
const CLOSE_UNSUPPORTED: u16 = 1003;
const CLOSE_TOO_BIG: u16 = 1009;

/// Why the WebSocket ended; the answer (400, close frame) is in `out` already.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct WsEnd {
    /// For the log line.
    pub message: String,
    /// The peer closed cleanly (not an error).
    pub normal: bool,
}

fn fail(message: impl Into<String>) -> WsEnd {
    WsEnd {
        message: message.into(),
        normal: false,
    }
}

/// One WebSocket connection, server side.
#[derive(Debug)]
pub(crate) struct WsConn {
    /// Upgrade request bytes until the blank line; `None` once upgraded.
    header: Option<Vec<u8>>,
    /// Largest payload of one frame.
    max_frame: u64,
    /// Frame header being read (at most 14 bytes).
    head: [u8; 14],
    head_len: usize,
    /// Payload bytes of the current frame still to come; its opcode and mask.
    remaining: u64,
    opcode: u8,
    fin: bool,
    mask: [u8; 4],
    mask_pos: usize,
    /// A fragmented data message is in progress (continuations expected).
    in_message: bool,
    /// Payload of the current control frame (at most 125 bytes).
    control: Vec<u8>,
    /// Sent or received a close: nothing more is read or framed.
    closed: bool,
    /// Bytes for the wire: the upgrade answer, frames.
    pub out: Vec<u8>,
}

impl WsConn {
    /// A connection whose upgrade request is still to come; frames carry
    /// at most `max_frame` bytes (the broker's max_packet_size).
    pub(crate) fn new(max_frame: usize) -> WsConn {
        WsConn {
            header: Some(Vec::new()),
            max_frame: max_frame as u64,
            head: [0; 14],
            head_len: 0,
            remaining: 0,
            opcode: 0,
            fin: false,
            mask: [0; 4],
            mask_pos: 0,
            in_message: false,
            control: Vec::new(),
            closed: false,
            out: Vec::new(),
        }
    }

    /// The upgrade is done.
    pub(crate) fn is_open(&self) -> bool {
        self.header.is_none() && !self.closed
    }

    /// Bytes from the peer: the upgrade request, then frames whose data
    /// payloads are appended to `mqtt`. On `Err` the answer (400 or a close
    /// frame) is in `out` and the connection should be closed once it is
    /// written.
    pub(crate) fn input(&mut self, mut data: &[u8], mqtt: &mut Vec<u8>) -> Result<(), WsEnd> {
        if self.closed {
            return Err(fail("data after close"));
        }
        if let Some(header) = self.header.as_mut() {
            let before = header.len();
            // Only as much as can still belong to the header.
            let room = MAX_HEADER.saturating_sub(before);
            let take = data.len().min(room);
            header.extend_from_slice(data.get(..take).unwrap_or_default());
            // Look for the blank line, including across the old tail.
            let from = before.saturating_sub(3);
            let Some(end) = find_blank_line(header, from) else {
                if header.len() >= MAX_HEADER {
                    return Err(
                        self.refuse(format!("upgrade request larger than {MAX_HEADER} bytes"))
                    );
                }
                return Ok(());
            };
            let answer = upgrade_answer(header.get(..end).unwrap_or_default());
            match answer {
                Ok(answer) => {
                    self.out.extend_from_slice(answer.as_bytes());
                }
                Err(why) => return Err(self.refuse(why)),
            }
            // What followed the blank line is frames already.
            let used_of_data = (end + 4).saturating_sub(before);
            data = data.get(used_of_data..).unwrap_or_default();
            self.header = None;
        }
        self.frames(data, mqtt)
    }

    fn refuse(&mut self, why: String) -> WsEnd {
        self.out.extend_from_slice(BAD_REQUEST);
        self.closed = true;
        fail(format!("WebSocket upgrade refused (HTTP 400): {why}"))
    }

    fn frames(&mut self, mut data: &[u8], mqtt: &mut Vec<u8>) -> Result<(), WsEnd> {
        while !data.is_empty() {
            if self.remaining == 0 {
                // Gather the frame header byte by byte up to its full size.
                let Some((&b, rest)) = data.split_first() else {
                    break;
                };
                if let Some(slot) = self.head.get_mut(self.head_len) {
                    *slot = b;
                }
                self.head_len += 1;
                data = rest;
                // RFC 6455 §5.1: a server closes on an unmasked client
                // frame; known from the second byte on.
                if self.head_len == 2 && b & 0x80 == 0 {
                    return Err(self.close(CLOSE_PROTOCOL, "unmasked frame from the client"));
                }
                if self.head_complete() {
                    self.start_frame()?;
                }
                continue;
            }
            let take = data
                .len()
                .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
            let (chunk, rest) = data.split_at(take);
            data = rest;
            self.remaining -= take as u64;
            let into = if self.opcode == OP_CONT || self.opcode == OP_BINARY {
                &mut *mqtt
            } else {
                &mut self.control
            };
            let start = into.len();
            into.extend_from_slice(chunk);
            for b in into.get_mut(start..).unwrap_or_default() {
                *b ^= self.mask.get(self.mask_pos & 3).copied().unwrap_or(0);
                self.mask_pos = self.mask_pos.wrapping_add(1);
            }
            if self.remaining == 0 {
                self.end_frame()?;
            }
        }
        Ok(())
    }

    /// Whether `head` holds a whole frame header.
    fn head_complete(&self) -> bool {
        if self.head_len < 2 {
            return false;
        }
        let b1 = self.head.get(1).copied().unwrap_or(0);
        let need =
            2 + match b1 & 0x7F {
                126 => 2,
                127 => 8,
                _ => 0,
            } + 4;
        self.head_len >= need
    }

    /// A whole header is in `head`: check it and set up the payload.
    fn start_frame(&mut self) -> Result<(), WsEnd> {
        let b0 = self.head.first().copied().unwrap_or(0);
        let b1 = self.head.get(1).copied().unwrap_or(0);
        self.head_len = 0;
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0F;
        if b0 & 0x70 != 0 {
            return Err(self.close(
                CLOSE_PROTOCOL,
                "reserved bits set (no extension was agreed)",
            ));
        }
        let (len, mask_at) = match b1 & 0x7F {
            126 => {
                let [_, _, a, b, ..] = self.head;
                (u64::from(u16::from_be_bytes([a, b])), 4)
            }
            127 => {
                let [_, _, a, b, c, d, e, f, g, h, ..] = self.head;
                (u64::from_be_bytes([a, b, c, d, e, f, g, h]), 10)
            }
            n => (u64::from(n), 2),
        };
        for (i, m) in self.mask.iter_mut().enumerate() {
            *m = self.head.get(mask_at + i).copied().unwrap_or(0);
        }
        self.mask_pos = 0;
        match opcode {
            OP_BINARY | OP_CONT => {
                if opcode == OP_CONT && !self.in_message {
                    return Err(self.close(CLOSE_PROTOCOL, "continuation frame without a message"));
                }
                if opcode == OP_BINARY && self.in_message {
                    return Err(self.close(CLOSE_PROTOCOL, "new message inside a fragmented one"));
                }
                if len > self.max_frame {
                    return Err(self.close(
                        CLOSE_TOO_BIG,
                        &format!("frame of {len} bytes; the limit is {}", self.max_frame),
                    ));
                }
                self.in_message = !fin;
            }
            OP_TEXT => {
                // [MQTT-6.0.0-1]: MQTT travels in binary frames only.
                return Err(self.close(CLOSE_UNSUPPORTED, "text frame (MQTT needs binary frames)"));
            }
            OP_CLOSE | OP_PING | OP_PONG => {
                if !fin || len > 125 {
                    return Err(self.close(CLOSE_PROTOCOL, "fragmented or long control frame"));
                }
                self.control.clear();
            }
            _ => return Err(self.close(CLOSE_PROTOCOL, &format!("unknown opcode {opcode}"))),
        }
        self.opcode = opcode;
        self.fin = fin;
        self.remaining = len;
        if len == 0 {
            self.end_frame()?;
        }
        Ok(())
    }

    /// The current frame's payload is complete.
    fn end_frame(&mut self) -> Result<(), WsEnd> {
        match self.opcode {
            OP_PING => {
                let payload = std::mem::take(&mut self.control);
                self.frame(OP_PONG, &payload);
            }
            OP_CLOSE => {
                let code = match self.control.as_slice() {
                    [a, b, ..] => u16::from_be_bytes([*a, *b]),
                    _ => CLOSE_NORMAL,
                };
                let echo = if (1000..5000).contains(&code) {
                    code
                } else {
                    CLOSE_PROTOCOL
                };
                self.frame(OP_CLOSE, &echo.to_be_bytes());
                self.closed = true;
                return Err(WsEnd {
                    message: format!("WebSocket closed by the client (code {code})"),
                    normal: true,
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// Queues a close frame with `code` and ends the connection.
    fn close(&mut self, code: u16, why: &str) -> WsEnd {
        let mut payload = code.to_be_bytes().to_vec();
        // Reasons are short and ours; 123 bytes is the most a close frame carries.
        payload.extend(why.bytes().take(123));
        self.frame(OP_CLOSE, &payload);
        self.closed = true;
        fail(format!("WebSocket closed ({code}): {why}"))
    }

    /// Queues MQTT bytes as one binary frame.
    pub(crate) fn send(&mut self, mqtt: &[u8]) {
        if !self.closed && !mqtt.is_empty() {
            self.frame(OP_BINARY, mqtt);
        }
    }

    /// Queues a normal close (the broker ends the connection).
    pub(crate) fn goodbye(&mut self) {
        if self.is_open() {
            self.frame(OP_CLOSE, &CLOSE_NORMAL.to_be_bytes());
            self.closed = true;
        }
    }

    /// A server frame: FIN, not masked.
    fn frame(&mut self, opcode: u8, payload: &[u8]) {
        self.out.push(0x80 | opcode);
        let len = payload.len();
        if len < 126 {
            self.out.push(len as u8);
        } else if let Ok(short) = u16::try_from(len) {
            self.out.push(126);
            self.out.extend_from_slice(&short.to_be_bytes());
        } else {
            self.out.push(127);
            self.out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        self.out.extend_from_slice(payload);
    }
}

/// Offset of "\r\n\r\n" in `buf` at or after `from`.
fn find_blank_line(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + from)
}

/// The 101 answer to a valid upgrade request (without its blank line),
/// or why it is refused.
fn upgrade_answer(request: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(request).map_err(|_| "request is not UTF-8 text".to_owned())?;
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut parts = first.split(' ');
    let (method, version) = (parts.next(), parts.nth(1));
    if method != Some("GET") || version != Some("HTTP/1.1") {
        return Err(format!("not an HTTP/1.1 GET: '{}'", shown(first)));
    }
    let (mut upgrade, mut connection, mut key, mut ws_version, mut mqtt) =
        (false, false, None, None, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("malformed header line '{}'", shown(line)));
        };
        let value = value.trim();
        let tokens = || value.split(',').map(str::trim);
        match name.trim().to_ascii_lowercase().as_str() {
            "upgrade" => upgrade |= tokens().any(|t| t.eq_ignore_ascii_case("websocket")),
            "connection" => connection |= tokens().any(|t| t.eq_ignore_ascii_case("upgrade")),
            "sec-websocket-key" => key = Some(value),
            "sec-websocket-version" => ws_version = Some(value),
            "sec-websocket-protocol" => mqtt |= tokens().any(|t| t == "mqtt"),
            _ => {}
        }
    }
    if !upgrade || !connection {
        return Err("not a WebSocket upgrade (Upgrade/Connection headers)".to_owned());
    }
    if ws_version != Some("13") {
        return Err("Sec-WebSocket-Version is not 13".to_owned());
    }
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return Err("no Sec-WebSocket-Key".to_owned());
    };
    if !mqtt {
        return Err("the client did not offer the 'mqtt' subprotocol".to_owned());
    }
    Ok(format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
        accept_key(key)
    ))
}

/// Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2).
fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// A peer's text in a log line: control characters escaped, cut short.
fn shown(s: &str) -> String {
    s.chars().take(80).flat_map(char::escape_default).collect()
}

#[cfg(test)]
mod tests;
