//! Data representation [MQTT 3.1.1 §1.5, 5.0 §1.5]: big-endian integers,
//! variable byte integers, length-prefixed UTF-8 strings and binary data.
//!
//! Reading is done through [`Reader`], a cursor over a complete frame body:
//! running out of bytes inside a frame is [`DecodeError::Truncated`], never a
//! panic. Writing appends to a `Vec<u8>`.

use super::DecodeError;

/// Largest value a variable byte integer can carry (four bytes) [MQTT 5.0 §1.5.5].
pub(crate) const VARINT_MAX: u32 = 268_435_455;

/// Decodes a variable byte integer at the start of `buf` [MQTT-2.2.3], [MQTT 5.0 §1.5.5].
///
/// `Ok(None)` when `buf` ends before the last byte of the integer (fewer than
/// four bytes, all with the continuation bit); `Ok(Some((value, bytes_used)))`
/// otherwise. A fourth byte with the continuation bit set is
/// [`DecodeError::MalformedRemainingLength`]. Non-minimal encodings (e.g.
/// `0x80 0x00` for 0) are accepted, as the spec does not forbid them on input.
pub(crate) fn decode_varint(buf: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..4 {
        let Some(&byte) = buf.get(i) else {
            return Ok(None);
        };
        // i < 4, so the shift is at most 21 and the value stays below 2^28.
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    Err(DecodeError::MalformedRemainingLength)
}

/// Number of bytes [`encode_remaining_length`] writes for `len`: 1 to 4 for
/// every valid remaining length (0 to 268,435,455).
pub fn remaining_length_len(len: usize) -> usize {
    let mut n = 1;
    let mut v = len >> 7;
    while v > 0 {
        n += 1;
        v >>= 7;
    }
    n
}

/// Appends `len` as a minimal variable byte integer [MQTT-2.2.3], the
/// encoding of the fixed header's remaining length and of 5.0 property
/// lengths. Values above 268,435,455 do not fit the protocol; passing one is
/// a caller bug (debug-asserted) and yields more than four bytes.
pub fn encode_remaining_length(len: usize, out: &mut Vec<u8>) {
    debug_assert!(
        len <= VARINT_MAX as usize,
        "remaining length {len} too large"
    );
    let mut v = len;
    loop {
        // Masked to 7 bits, so the cast cannot lose anything.
        let mut byte = (v & 0x7F) as u8;
        v >>= 7;
        if v > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if v == 0 {
            break;
        }
    }
}

/// Size of a length-prefixed string or binary field holding `len` bytes.
pub(crate) fn prefixed_len(len: usize) -> usize {
    2 + len
}

/// Appends a big-endian two-byte integer.
pub(crate) fn write_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends a big-endian four-byte integer.
pub(crate) fn write_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends binary data with its two-byte length prefix [MQTT 5.0 §1.5.6].
/// More than 65,535 bytes cannot be encoded; that is a caller bug
/// (debug-asserted) and the length is then truncated on the wire.
pub(crate) fn write_bin(out: &mut Vec<u8>, b: &[u8]) {
    debug_assert!(b.len() <= usize::from(u16::MAX), "field too long");
    let len = u16::try_from(b.len()).unwrap_or(u16::MAX);
    write_u16(out, len);
    out.extend_from_slice(b.get(..usize::from(len)).unwrap_or(b));
}

/// Appends a UTF-8 string with its two-byte length prefix [MQTT-1.5.3].
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    write_bin(out, s.as_bytes());
}

/// Checks a string's bytes: well-formed UTF-8 [MQTT-1.5.3-1] (`from_utf8`
/// already refuses surrogates and overlong forms), no U+0000 [MQTT-1.5.3-2],
/// and no control character U+0001-U+001F or U+007F-U+009F: the spec says
/// they SHOULD NOT appear and a receiver MAY treat them as malformed
/// (MQTT 5.0 §1.5.4, 3.1.1 §1.5.3); Mosquitto does, and so does boxmq.
pub(crate) fn check_utf8(bytes: &[u8]) -> Result<&str, DecodeError> {
    // [MQTT-1.5.3-1]
    let s = core::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)?;
    // [MQTT-1.5.3-2]
    if bytes.contains(&0) {
        return Err(DecodeError::NullInString);
    }
    // U+0080-U+009F are encoded C2 80 to C2 9F; in valid UTF-8 a C2 byte
    // is always a lead byte.
    let c1 = bytes
        .windows(2)
        .any(|w| w[0] == 0xC2 && (0x80..=0x9F).contains(&w[1]));
    if c1 || bytes.iter().any(|&b| b < 0x20 || b == 0x7F) {
        return Err(DecodeError::ControlCharacter);
    }
    Ok(s)
}

/// A cursor over the bytes of one complete frame body.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { rest: buf }
    }

    /// True when everything has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Takes the next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let (head, tail) = self
            .rest
            .split_at_checked(n)
            .ok_or(DecodeError::Truncated)?;
        self.rest = tail;
        Ok(head)
    }

    /// Takes everything left.
    pub(crate) fn take_rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.rest)
    }

    /// Reads one byte.
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&b, tail) = self.rest.split_first().ok_or(DecodeError::Truncated)?;
        self.rest = tail;
        Ok(b)
    }

    /// Reads a big-endian two-byte integer.
    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        let arr: [u8; 2] = b.try_into().map_err(|_| DecodeError::Truncated)?;
        Ok(u16::from_be_bytes(arr))
    }

    /// Reads a big-endian four-byte integer.
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        let arr: [u8; 4] = b.try_into().map_err(|_| DecodeError::Truncated)?;
        Ok(u32::from_be_bytes(arr))
    }

    /// Reads a variable byte integer that must lie wholly inside the frame,
    /// in its shortest form [MQTT-1.5.5-1] (`80 00` for 0 is malformed).
    /// The fixed header's remaining length is read elsewhere and not held
    /// to this, as Mosquitto does not.
    pub(crate) fn varint(&mut self) -> Result<u32, DecodeError> {
        match decode_varint(self.rest)? {
            Some((v, n)) => {
                if n > 1 && self.rest.get(n - 1) == Some(&0) {
                    return Err(DecodeError::MalformedRemainingLength);
                }
                self.take(n)?;
                Ok(v)
            }
            None => Err(DecodeError::Truncated),
        }
    }

    /// Reads binary data with a two-byte length prefix [MQTT 5.0 §1.5.6].
    pub(crate) fn binary(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }

    /// Reads a UTF-8 string with a two-byte length prefix, checked as
    /// [`check_utf8`] does [MQTT-1.5.3-1], [MQTT-1.5.3-2].
    pub(crate) fn string(&mut self) -> Result<&'a str, DecodeError> {
        let bytes = self.binary()?;
        check_utf8(bytes)
    }

    /// Reads a packet identifier, refusing 0 [MQTT-2.3.1-1].
    pub(crate) fn packet_id(&mut self) -> Result<super::PacketId, DecodeError> {
        let v = self.u16()?;
        // [MQTT-2.3.1-1]
        super::PacketId::new(v).ok_or(DecodeError::ZeroPacketId)
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless everything was read.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_boundaries_round_trip() {
        // [MQTT 5.0 §1.5.5] table of 1..4 byte ranges.
        for (v, n) in [
            (0usize, 1usize),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (2_097_151, 3),
            (2_097_152, 4),
            (268_435_455, 4),
        ] {
            let mut out = Vec::new();
            encode_remaining_length(v, &mut out);
            assert_eq!(out.len(), n, "{v}");
            assert_eq!(remaining_length_len(v), n, "{v}");
            assert_eq!(decode_varint(&out), Ok(Some((v as u32, n))));
        }
        let mut out = Vec::new();
        encode_remaining_length(321, &mut out);
        assert_eq!(out, [0xC1, 0x02]); // 321 = 65 + 2 * 128
    }

    #[test]
    fn varint_incomplete_malformed_and_non_minimal() {
        assert_eq!(decode_varint(&[]), Ok(None));
        assert_eq!(decode_varint(&[0x80]), Ok(None));
        assert_eq!(decode_varint(&[0xFF, 0xFF, 0xFF]), Ok(None));
        // [MQTT-2.2.3]: at most four bytes.
        assert_eq!(
            decode_varint(&[0xFF, 0xFF, 0xFF, 0xFF]),
            Err(DecodeError::MalformedRemainingLength)
        );
        // Non-minimal encodings are accepted on input.
        assert_eq!(decode_varint(&[0x80, 0x00]), Ok(Some((0, 2))));
        assert_eq!(decode_varint(&[0x81, 0x80, 0x00]), Ok(Some((1, 3))));
    }

    #[test]
    fn strings_are_checked() {
        // [MQTT-1.5.3-1] ill-formed UTF-8 (a lone continuation byte, a surrogate).
        assert_eq!(check_utf8(&[0x80]), Err(DecodeError::InvalidUtf8));
        assert_eq!(
            check_utf8(&[0xED, 0xA0, 0x80]),
            Err(DecodeError::InvalidUtf8)
        );
        // Overlong encoding of '/'.
        assert_eq!(check_utf8(&[0xC0, 0xAF]), Err(DecodeError::InvalidUtf8));
        // [MQTT-1.5.3-2] U+0000.
        assert_eq!(check_utf8(b"a\0b"), Err(DecodeError::NullInString));
        // Control characters, C0 and C1, as Mosquitto refuses them.
        for bad in ["a\u{1}", "\u{1F}", "x\u{7F}", "\u{80}", "\u{9F}z"] {
            assert_eq!(
                check_utf8(bad.as_bytes()),
                Err(DecodeError::ControlCharacter)
            );
        }
        assert_eq!(check_utf8("\u{A0}\u{7E} ".as_bytes()), Ok("\u{A0}\u{7E} "));
        // [MQTT-1.5.3-3] a BOM is kept, not stripped.
        assert_eq!(check_utf8("\u{FEFF}a".as_bytes()), Ok("\u{FEFF}a"));
        let mut r = Reader::new(&[0x00, 0x03, b'a', b'b']);
        assert_eq!(r.string(), Err(DecodeError::Truncated));
    }

    #[test]
    fn reader_never_panics_on_short_input() {
        let mut r = Reader::new(&[1]);
        assert_eq!(r.u16(), Err(DecodeError::Truncated));
        assert_eq!(r.u32(), Err(DecodeError::Truncated));
        assert_eq!(r.take(2), Err(DecodeError::Truncated));
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u8(), Err(DecodeError::Truncated));
        assert_eq!(r.varint(), Err(DecodeError::Truncated));
        assert!(r.is_empty());
        assert_eq!(r.finish(), Ok(()));
    }
}
