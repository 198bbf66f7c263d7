//! The bytes on disk: file header, record frame, snapshot footer, CRC-32C.
//!
//! Every multi-byte integer is little-endian. Layouts (docs/PERSISTENCE.md,
//! "On disk"):
//!
//! ```text
//! file header (36 bytes)
//!   0..8    magic       b"BOXMQLG\0" (log) or b"BOXMQSN\0" (snapshot)
//!   8..12   version     1
//!  12..16   salt        random per file; starts every frame checksum
//!  16..24   generation  the N of "log.N" / "snap.N"
//!  24..32   base seq    last sequence number before this file's first record
//!  32..36   crc         CRC-32C of bytes 0..32
//! record frame (16 + len bytes)
//!   0..4    len         bytes of kind + body, 1 ..= 0xFFFF_FFFE
//!   4..8    crc         CRC-32C of salt, len, seq, kind and body
//!   8..16   seq
//!  16       kind
//!  17..     body
//! snapshot footer (24 bytes, after the last record of a snapshot)
//!   0..4    0xFFFF_FFFF (a length no record can have)
//!   4..8    crc         CRC-32C of salt and bytes 8..24
//!   8..16   records     number of records in the snapshot
//!  16..24   last seq    sequence number of the last record (or the base seq)
//! ```
//!
//! The salt makes a frame valid only in the file it was written to: a
//! record body (an MQTT payload, chosen by a client) that holds bytes
//! shaped like a frame cannot pass for one when recovery looks for the
//! next good frame after damage, because the client does not know the
//! salt.
//!
//! Parsing never panics and never trusts a length: everything read from a
//! file goes through [`Reader`], which checks each frame against the bytes
//! that are really there.

use super::Recovered;

/// Magic of a log file.
pub(crate) const LOG_MAGIC: [u8; 8] = *b"BOXMQLG\0";
/// Magic of a snapshot file.
pub(crate) const SNAP_MAGIC: [u8; 8] = *b"BOXMQSN\0";
/// The only format version written and read.
pub(crate) const VERSION: u32 = 1;
/// Bytes of the file header.
pub(crate) const HEADER_LEN: usize = 36;
/// Bytes of a frame before its kind byte (len, crc, seq).
pub(crate) const FRAME_HEAD: usize = 16;
/// The `len` value that marks a snapshot footer.
pub(crate) const FOOTER_MARK: u32 = u32::MAX;
/// Bytes of the snapshot footer.
pub(crate) const FOOTER_LEN: usize = 24;
/// Why a frame is refused when it is a footer mark (fine only in a snapshot).
const FOOTER_WHY: &str = "end-of-snapshot mark";
/// Longest body a record can have (`len` counts the kind byte too).
pub(crate) const MAX_BODY: usize = (u32::MAX - 2) as usize;

mod field {
    use std::ops::Range;
    pub const MAGIC: Range<usize> = 0..8;
    pub const VERSION: Range<usize> = 8..12;
    pub const SALT: Range<usize> = 12..16;
    pub const GEN: Range<usize> = 16..24;
    pub const BASE: Range<usize> = 24..32;
    pub const HEADER_CRC: Range<usize> = 32..36;

    pub const LEN: Range<usize> = 0..4;
    pub const CRC: Range<usize> = 4..8;
    pub const SEQ: Range<usize> = 8..16;
    pub const KIND: usize = 16;

    pub const FOOT_COUNT: Range<usize> = 8..16;
    pub const FOOT_LAST: Range<usize> = 16..24;
}

// ---------------------------------------------------------------- CRC-32C

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), slicing by 8.
const CRC_TABLES: [[u32; 256]; 8] = crc_tables();

const fn crc_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut s = 1;
        while s < 8 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            s += 1;
        }
        i += 1;
    }
    t
}

/// A running CRC-32C.
#[derive(Clone, Copy)]
pub(crate) struct Crc(u32);

impl Crc {
    pub(crate) fn new() -> Self {
        Crc(!0)
    }

    pub(crate) fn update(mut self, data: &[u8]) -> Self {
        let mut c = self.0;
        let mut chunks = data.chunks_exact(8);
        for b in &mut chunks {
            let lo = c ^ u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            c = CRC_TABLES[7][(lo & 0xFF) as usize]
                ^ CRC_TABLES[6][((lo >> 8) & 0xFF) as usize]
                ^ CRC_TABLES[5][((lo >> 16) & 0xFF) as usize]
                ^ CRC_TABLES[4][(lo >> 24) as usize]
                ^ CRC_TABLES[3][b[4] as usize]
                ^ CRC_TABLES[2][b[5] as usize]
                ^ CRC_TABLES[1][b[6] as usize]
                ^ CRC_TABLES[0][b[7] as usize];
        }
        for &b in chunks.remainder() {
            c = (c >> 8) ^ CRC_TABLES[0][((c ^ u32::from(b)) & 0xFF) as usize];
        }
        self.0 = c;
        self
    }

    pub(crate) fn finish(self) -> u32 {
        !self.0
    }
}

/// CRC-32C of one slice.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    Crc::new().update(data).finish()
}

// ---------------------------------------------------------------- encoding

/// Which of the two file types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileType {
    Log,
    Snapshot,
}

impl FileType {
    fn magic(self) -> [u8; 8] {
        match self {
            FileType::Log => LOG_MAGIC,
            FileType::Snapshot => SNAP_MAGIC,
        }
    }
}

/// Appends a file header to `out`.
pub(crate) fn put_header(out: &mut Vec<u8>, ty: FileType, h: Header) {
    let Header {
        salt,
        generation,
        base_seq,
    } = h;
    let start = out.len();
    out.extend_from_slice(&ty.magic());
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&salt.to_le_bytes());
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(&base_seq.to_le_bytes());
    let crc = crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// A salt for a new file: random, so that no client can predict it.
pub(crate) fn new_salt() -> u32 {
    let mut b = [0u8; 4];
    if getrandom::fill(&mut b).is_err() {
        // Still unpredictable enough to tell files apart; the seq test
        // remains.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        b = (t ^ std::process::id().rotate_left(16)).to_le_bytes();
    }
    u32::from_le_bytes(b)
}

/// Bytes one record takes on disk.
pub(crate) fn frame_len(body_len: usize) -> usize {
    FRAME_HEAD + 1 + body_len
}

/// Appends one record frame to `out`.
///
/// # Panics
///
/// If `body` is longer than [`MAX_BODY`] (4 GiB): a caller bug, never data
/// from disk.
pub(crate) fn put_frame(out: &mut Vec<u8>, salt: u32, seq: u64, kind: u8, body: &[u8]) {
    assert!(body.len() <= MAX_BODY, "store record body too long");
    // Cannot truncate: checked just above.
    let len = (body.len() + 1) as u32;
    let len_bytes = len.to_le_bytes();
    let seq_bytes = seq.to_le_bytes();
    let crc = Crc::new()
        .update(&salt.to_le_bytes())
        .update(&len_bytes)
        .update(&seq_bytes)
        .update(&[kind])
        .update(body)
        .finish();
    out.reserve(frame_len(body.len()));
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&seq_bytes);
    out.push(kind);
    out.extend_from_slice(body);
}

/// Appends a snapshot footer to `out`.
pub(crate) fn put_footer(out: &mut Vec<u8>, salt: u32, count: u64, last_seq: u64) {
    let mut tail = [0u8; 16];
    tail[..8].copy_from_slice(&count.to_le_bytes());
    tail[8..].copy_from_slice(&last_seq.to_le_bytes());
    out.extend_from_slice(&FOOTER_MARK.to_le_bytes());
    let crc = Crc::new()
        .update(&salt.to_le_bytes())
        .update(&tail)
        .finish();
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&tail);
}

// ---------------------------------------------------------------- decoding

fn u32_at(data: &[u8], r: std::ops::Range<usize>) -> Option<u32> {
    let b: [u8; 4] = data.get(r)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

fn u64_at(data: &[u8], r: std::ops::Range<usize>) -> Option<u64> {
    let b: [u8; 8] = data.get(r)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

/// A checked file header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub salt: u32,
    pub generation: u64,
    pub base_seq: u64,
}

/// Why a header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Fewer bytes than a header (a file created but never synced, or cut).
    Short,
    /// Not our magic (zeros after a power cut, or another file).
    Magic,
    /// A version this build does not read.
    Version(u32),
    /// The header checksum does not match.
    Checksum,
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::Short => f.write_str("shorter than a file header"),
            HeaderError::Magic => f.write_str("bad magic in the file header"),
            HeaderError::Version(v) => write!(f, "unknown format version {v}"),
            HeaderError::Checksum => f.write_str("file header checksum mismatch"),
        }
    }
}

/// Checks the header at the start of `data`.
pub(crate) fn parse_header(data: &[u8], ty: FileType) -> Result<Header, HeaderError> {
    let Some(head) = data.get(..HEADER_LEN) else {
        return Err(HeaderError::Short);
    };
    if head.get(field::MAGIC) != Some(&ty.magic()[..]) {
        return Err(HeaderError::Magic);
    }
    let crc = u32_at(head, field::HEADER_CRC).ok_or(HeaderError::Short)?;
    if crc32c(&head[..field::HEADER_CRC.start]) != crc {
        return Err(HeaderError::Checksum);
    }
    let version = u32_at(head, field::VERSION).ok_or(HeaderError::Short)?;
    if version != VERSION {
        return Err(HeaderError::Version(version));
    }
    Ok(Header {
        salt: u32_at(head, field::SALT).ok_or(HeaderError::Short)?,
        generation: u64_at(head, field::GEN).ok_or(HeaderError::Short)?,
        base_seq: u64_at(head, field::BASE).ok_or(HeaderError::Short)?,
    })
}

/// The header of a file whose header checksum failed but whose magic is
/// right: its fields as they are, so that the frames after it can still be
/// checked with the salt it holds (a frame only passes with the right
/// salt, so a damaged salt just yields nothing).
pub(crate) fn salvage_header(data: &[u8], ty: FileType) -> Option<Header> {
    let head = data.get(..HEADER_LEN)?;
    if head.get(field::MAGIC)? != &ty.magic()[..] {
        return None;
    }
    Some(Header {
        salt: u32_at(head, field::SALT)?,
        generation: u64_at(head, field::GEN)?,
        base_seq: u64_at(head, field::BASE)?,
    })
}

/// What stopped a run of good frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The data ended exactly after a frame.
    End,
    /// A valid snapshot footer at this offset.
    Footer {
        offset: usize,
        count: u64,
        last_seq: u64,
    },
    /// Bytes at this offset are not a valid frame.
    Bad { offset: usize, why: &'static str },
}

/// One scan of a file body: the good records and where and why it stopped.
pub(crate) struct Scan {
    pub records: Vec<Recovered>,
    /// Damaged stretches skipped because good frames follow them:
    /// (offset, bytes skipped, reason).
    pub skipped: Vec<(usize, usize, &'static str)>,
    pub stop: Stop,
}

/// Checks the frame at `off`; `Ok(Some((seq, kind, body range, next)))` for
/// a good frame, `Ok(None)` for a footer (only if `footer` is allowed),
/// `Err(reason)` otherwise.
fn frame_at(
    data: &[u8],
    off: usize,
    salt: u32,
    prev_seq: u64,
) -> Result<(u64, u8, std::ops::Range<usize>, usize), &'static str> {
    let rest = data.get(off..).unwrap_or(&[]);
    let Some(len) = u32_at(rest, field::LEN) else {
        return Err("torn frame header");
    };
    if len == FOOTER_MARK {
        return Err(FOOTER_WHY);
    }
    if len == 0 {
        return Err("zero length");
    }
    let total = FRAME_HEAD + len as usize;
    if rest.len() < total {
        return Err("frame runs past the end of the file");
    }
    let (Some(crc), Some(seq)) = (u32_at(rest, field::CRC), u64_at(rest, field::SEQ)) else {
        return Err("torn frame header");
    };
    let got = Crc::new()
        .update(&salt.to_le_bytes())
        .update(&rest[field::LEN])
        .update(&rest[field::SEQ.start..total])
        .finish();
    if got != crc {
        return Err("checksum mismatch");
    }
    if seq <= prev_seq {
        return Err("sequence number goes back");
    }
    let kind = rest[field::KIND];
    Ok((seq, kind, off + field::KIND + 1..off + total, off + total))
}

fn footer_at(data: &[u8], off: usize, salt: u32) -> Option<(u64, u64)> {
    let rest = data.get(off..off + FOOTER_LEN)?;
    if u32_at(rest, field::LEN)? != FOOTER_MARK {
        return None;
    }
    let crc = u32_at(rest, field::CRC)?;
    let got = Crc::new()
        .update(&salt.to_le_bytes())
        .update(&rest[field::FOOT_COUNT.start..])
        .finish();
    if got != crc {
        return None;
    }
    Some((
        u64_at(rest, field::FOOT_COUNT)?,
        u64_at(rest, field::FOOT_LAST)?,
    ))
}

/// Looks for the next good frame after a damaged one at `from`: the first
/// offset holding a frame with a good checksum and a sequence number after
/// `prev_seq` (and not absurdly far from it). The sequence test is cheap
/// and rules out almost every offset before a checksum is computed.
fn resync(data: &[u8], from: usize, salt: u32, prev_seq: u64) -> Option<usize> {
    const MAX_GAP: u64 = 1 << 32;
    let mut off = from + 1;
    while off + FRAME_HEAD < data.len() {
        if let Some(seq) = u64_at(data, off + field::SEQ.start..off + field::SEQ.end)
            && seq > prev_seq
            && seq - prev_seq <= MAX_GAP
            && frame_at(data, off, salt, prev_seq).is_ok()
        {
            return Some(off);
        }
        off += 1;
    }
    None
}

/// Reads frames from `start`. Stops at the end of the data, at a footer
/// (when `footer` is true) or at damage nothing good follows. Damage that
/// good frames follow is skipped and reported in [`Scan::skipped`].
pub(crate) fn scan(data: &[u8], start: usize, h: Header, footer: bool) -> Scan {
    let Header { salt, base_seq, .. } = h;
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    let mut prev = base_seq;
    let mut off = start;
    let stop = loop {
        if off == data.len() {
            break Stop::End;
        }
        match frame_at(data, off, salt, prev) {
            Ok((seq, kind, body, next)) => {
                records.push(Recovered {
                    seq,
                    kind,
                    body: data.get(body).unwrap_or(&[]).to_vec(),
                });
                prev = seq;
                off = next;
            }
            Err(why) => {
                if footer
                    && why == FOOTER_WHY
                    && let Some((count, last_seq)) = footer_at(data, off, salt)
                {
                    break Stop::Footer {
                        offset: off,
                        count,
                        last_seq,
                    };
                }
                match resync(data, off, salt, prev) {
                    Some(next) => {
                        skipped.push((off, next - off, why));
                        off = next;
                    }
                    None => break Stop::Bad { offset: off, why },
                }
            }
        }
    };
    Scan {
        records,
        skipped,
        stop,
    }
}

#[cfg(test)]
pub(crate) mod test_vectors {
    /// CRC-32C check value from RFC 3720 appendix B.4: 32 bytes of zeros.
    pub const ZEROS_32: u32 = 0x8A91_36AA;
    /// The standard check value of "123456789".
    pub const CHECK: u32 = 0xE306_9283;
}
