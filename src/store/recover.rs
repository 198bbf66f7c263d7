//! Recovery: what [`Store::open_on`] does with the files it finds.
//!
//! Rules (docs/PERSISTENCE.md, "On disk"):
//!
//! * The newest generation `N` (highest number of any `snap.N`/`log.N`)
//!   is the state: `snap.N`, then `log.N`. Older generations are left
//!   over from a compaction that crashed before removing them, and go.
//!   Temp files (`*.tmp`) are unfinished snapshots, and go.
//! * A log whose last frame is torn or invalid, with nothing valid after
//!   it, was cut by a crash: the tail is truncated and noted.
//! * Anything else that is wrong (a bad header, a bad frame with valid
//!   frames after it, a snapshot without its footer, a missing snapshot)
//!   is damage: every intact record is kept, a fresh generation holding
//!   them is written, and the damaged file is renamed `NAME.corrupt-K`.
//!   Each case makes one note that names the file.

use std::collections::BTreeSet;
use std::path::Path;

use super::format::{self, FileType, HEADER_LEN, HeaderError, Stop};
use super::{Disk, Recovered, Recovery, Store, StoreError, io_err, log_name, snap_name};

/// A file name the store knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Name {
    Snap(u64),
    Log(u64),
    /// `snap.N.tmp`: a snapshot being written.
    Tmp(u64),
    /// `NAME.corrupt-K`: set aside earlier.
    Corrupt,
}

fn parse_generation(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Classifies a directory entry; `None` for names the store does not own.
pub(crate) fn parse_name(name: &str) -> Option<Name> {
    if name.contains(".corrupt-") {
        return Some(Name::Corrupt);
    }
    if let Some(rest) = name.strip_prefix("snap.") {
        if let Some(g) = rest.strip_suffix(".tmp") {
            return parse_generation(g).map(Name::Tmp);
        }
        return parse_generation(rest).map(Name::Snap);
    }
    name.strip_prefix("log.")
        .and_then(parse_generation)
        .map(Name::Log)
}

/// The first free `NAME.corrupt-K`.
fn aside_name(names: &BTreeSet<String>, name: &str) -> String {
    let mut k = 1;
    loop {
        let candidate = format!("{name}.corrupt-{k}");
        if !names.contains(&candidate) {
            return candidate;
        }
        k += 1;
    }
}

/// Damage note of a file read past its damaged header.
const SALVAGED: &str = "file header checksum mismatch (records after it checked with its salt)";

/// What one file contributed.
struct FileResult {
    records: Vec<Recovered>,
    /// What is wrong with it (empty: nothing).
    damage: Vec<String>,
    /// Highest sequence number it proves was used.
    last_seq: u64,
}

fn describe_skips(scan: &format::Scan, damage: &mut Vec<String>) {
    for (offset, len, why) in &scan.skipped {
        damage.push(format!("{why} at offset {offset} ({len} bytes skipped)"));
    }
}

/// Reads a snapshot: header, frames, footer.
fn read_snapshot(data: &[u8], generation: u64) -> FileResult {
    let mut damage = Vec::new();
    let header = match format::parse_header(data, FileType::Snapshot) {
        Ok(h) => h,
        Err(HeaderError::Checksum)
            if let Some(h) = format::salvage_header(data, FileType::Snapshot) =>
        {
            damage.push(SALVAGED.to_string());
            // The base may be what is damaged: accept any numbers.
            format::Header {
                base_seq: 0,
                generation,
                ..h
            }
        }
        Err(e) => {
            return FileResult {
                records: Vec::new(),
                damage: vec![e.to_string()],
                last_seq: 0,
            };
        }
    };
    if header.generation != generation {
        damage.push(format!("header says generation {}", header.generation));
    }
    let scan = format::scan(data, HEADER_LEN, header, true);
    describe_skips(&scan, &mut damage);
    let last_record = scan.records.last().map_or(header.base_seq, |r| r.seq);
    let mut last_seq = last_record;
    match scan.stop {
        Stop::Footer {
            offset,
            count,
            last_seq: footer_last,
        } => {
            if count != scan.records.len() as u64 {
                damage.push(format!(
                    "footer counts {count} records, {} are intact",
                    scan.records.len()
                ));
            }
            if footer_last < last_record {
                damage.push(format!(
                    "footer's last sequence number {footer_last} is too low"
                ));
            } else {
                last_seq = footer_last;
            }
            let after = data.len() - (offset + format::FOOTER_LEN).min(data.len());
            if after > 0 {
                damage.push(format!("{after} bytes after the footer"));
            }
        }
        Stop::End => damage.push(format!("truncated at {} bytes: no footer", data.len())),
        Stop::Bad { offset, why } => damage.push(format!(
            "{why} at offset {offset} ({} bytes lost)",
            data.len() - offset
        )),
    }
    FileResult {
        records: scan.records,
        damage,
        last_seq,
    }
}

/// How a log ended.
enum LogEnd {
    /// Valid to the end; its frames use `salt`.
    Clean { salt: u32 },
    /// Cut by a crash: keep the first `valid` bytes.
    Torn {
        valid: usize,
        why: &'static str,
        salt: u32,
    },
    /// Shorter than a header (created just before a crash): start afresh.
    NoHeader,
}

/// Reads a log: header, frames. `prev` is the last sequence number of the
/// snapshot, `strict` whether that snapshot was intact (then the log must
/// continue exactly from it).
fn read_log(data: &[u8], generation: u64, prev: u64, strict: bool) -> (FileResult, LogEnd) {
    let mut damage = Vec::new();
    let mut salvaged = false;
    let header = match format::parse_header(data, FileType::Log) {
        Ok(h) => h,
        Err(HeaderError::Checksum) if let Some(h) = format::salvage_header(data, FileType::Log) => {
            damage.push(SALVAGED.to_string());
            salvaged = true;
            format::Header {
                base_seq: if strict { prev } else { 0 },
                generation,
                ..h
            }
        }
        Err(HeaderError::Short) => {
            let fr = FileResult {
                records: Vec::new(),
                damage,
                last_seq: 0,
            };
            return (fr, LogEnd::NoHeader);
        }
        Err(e) => {
            let fr = FileResult {
                records: Vec::new(),
                damage: vec![e.to_string()],
                last_seq: 0,
            };
            return (fr, LogEnd::NoHeader);
        }
    };
    if header.generation != generation {
        damage.push(format!("header says generation {}", header.generation));
    }
    if strict && !salvaged && header.base_seq != prev {
        damage.push(format!(
            "starts after sequence number {}, its snapshot ends at {prev}",
            header.base_seq
        ));
    }
    let scan = format::scan(data, HEADER_LEN, header, false);
    describe_skips(&scan, &mut damage);
    let end = match scan.stop {
        Stop::Bad { offset, why } => LogEnd::Torn {
            valid: offset,
            why,
            salt: header.salt,
        },
        _ => LogEnd::Clean { salt: header.salt },
    };
    let last_seq = scan.records.last().map_or(header.base_seq, |r| r.seq);
    // After a damaged snapshot, keep the order strictly increasing.
    let records = scan
        .records
        .into_iter()
        .filter(|r| strict || r.seq > prev)
        .collect();
    (
        FileResult {
            records,
            damage,
            last_seq,
        },
        end,
    )
}

/// What reading the newest generation's files found.
struct Reading {
    /// The directory's entries, and the names taken by files set aside.
    names: BTreeSet<String>,
    records: Vec<Recovered>,
    notes: Vec<String>,
    /// Files of this generation to set aside, with the note for each.
    aside: Vec<(String, String, String)>,
    /// Whether a fresh generation must be written.
    repair: bool,
    last_seq: u64,
}

impl<D: Disk> Store<D> {
    /// Finds, checks and loads the files; repairs what is damaged; leaves
    /// the store ready to append. See the module documentation.
    pub(super) fn recover(&mut self) -> Result<Recovery, StoreError> {
        let dir = self.opts.dir.clone();
        let (names, newest) = self.list_generations(&dir)?;
        let Some(generation) = newest else {
            // A new store: generation 1, an empty snapshot and log.
            self.write_generation(0, &mut std::iter::empty())?;
            return Ok(Recovery::default());
        };
        self.generation = generation;
        self.tried_generation = generation;

        let mut rd = Reading {
            names,
            records: Vec::new(),
            notes: Vec::new(),
            aside: Vec::new(),
            repair: false,
            last_seq: 0,
        };
        let snap_intact = self.read_snapshot_file(&dir, generation, &mut rd)?;
        let log_end = self.read_log_file(&dir, generation, snap_intact, &mut rd)?;

        self.last_seq = rd.last_seq;
        self.durable_seq = rd.last_seq;

        if rd.repair {
            return self.repair(&dir, rd);
        }
        self.continue_log(&dir, generation, log_end, rd.last_seq)?;
        self.remove_older(generation);
        Ok(Recovery {
            records: rd.records,
            notes: rd.notes,
        })
    }

    /// The directory's entries without the temp files (removed here), and
    /// the newest generation among them, if any.
    fn list_generations(
        &mut self,
        dir: &Path,
    ) -> Result<(BTreeSet<String>, Option<u64>), StoreError> {
        let listed = self.disk.list(dir).map_err(|e| io_err("list", dir, e))?;
        let mut names: BTreeSet<String> = listed.into_iter().collect();
        let mut newest: Option<u64> = None;
        let mut tmps = Vec::new();
        for name in &names {
            match parse_name(name) {
                Some(Name::Snap(g) | Name::Log(g)) => newest = newest.max(Some(g)),
                Some(Name::Tmp(_)) => tmps.push(name.clone()),
                _ => {}
            }
        }
        for name in tmps {
            let path = dir.join(&name);
            self.disk
                .remove(&path)
                .map_err(|e| io_err("remove", &path, e))?;
            names.remove(&name);
        }
        Ok((names, newest))
    }

    /// Reads the generation's snapshot into `rd`; whether it was intact.
    fn read_snapshot_file(
        &mut self,
        dir: &Path,
        generation: u64,
        rd: &mut Reading,
    ) -> Result<bool, StoreError> {
        let snap = snap_name(generation);
        if !rd.names.contains(&snap) {
            rd.repair = true;
            let log = log_name(generation);
            rd.notes
                .push(format!("{snap}: missing; starting from {log} alone"));
            return Ok(false);
        }
        let path = dir.join(&snap);
        let data = self
            .disk
            .read(&path)
            .map_err(|e| io_err("read", &path, e))?;
        self.stats.snapshot_bytes = data.len() as u64;
        let fr = read_snapshot(&data, generation);
        rd.last_seq = rd.last_seq.max(fr.last_seq);
        let kept = fr.records.len();
        rd.records = fr.records;
        if fr.damage.is_empty() {
            return Ok(true);
        }
        rd.repair = true;
        let to = aside_name(&rd.names, &snap);
        rd.names.insert(to.clone());
        let note = format!(
            "{snap}: {}; set aside as {to}, kept {kept} intact records",
            fr.damage.join("; ")
        );
        rd.aside.push((snap, to, note));
        Ok(false)
    }

    /// Reads the generation's log into `rd`, after its snapshot; how the
    /// log ended and its length, unless it is missing or set aside.
    fn read_log_file(
        &mut self,
        dir: &Path,
        generation: u64,
        snap_intact: bool,
        rd: &mut Reading,
    ) -> Result<Option<(LogEnd, usize)>, StoreError> {
        let log = log_name(generation);
        if !rd.names.contains(&log) {
            if snap_intact {
                rd.notes.push(format!(
                    "{log}: missing (crash during compaction); started an empty one"
                ));
            }
            return Ok(None);
        }
        let path = dir.join(&log);
        let data = self
            .disk
            .read(&path)
            .map_err(|e| io_err("read", &path, e))?;
        let (mut fr, end) = read_log(&data, generation, rd.last_seq, snap_intact);
        rd.last_seq = rd.last_seq.max(fr.last_seq);
        let kept = fr.records.len();
        rd.records.extend(std::mem::take(&mut fr.records));
        if let LogEnd::Torn { valid, why, .. } = end {
            let lost = data.len() - valid;
            if fr.damage.is_empty() {
                rd.notes.push(format!(
                    "{log}: torn record at offset {valid} ({lost} bytes, {why}) truncated"
                ));
            } else {
                // The file is set aside anyway: one note says it all.
                fr.damage
                    .push(format!("{why} at offset {valid} ({lost} bytes lost)"));
            }
        }
        if fr.damage.is_empty() {
            return Ok(Some((end, data.len())));
        }
        rd.repair = true;
        let to = aside_name(&rd.names, &log);
        rd.names.insert(to.clone());
        let note = format!(
            "{log}: {}; set aside as {to}, kept {kept} intact records",
            fr.damage.join("; ")
        );
        rd.aside.push((log, to, note));
        Ok(None)
    }

    /// Damage found: writes a fresh generation of the intact records, then
    /// sets the damaged files aside.
    fn repair(&mut self, dir: &Path, rd: Reading) -> Result<Recovery, StoreError> {
        let Reading {
            records,
            mut notes,
            aside,
            ..
        } = rd;
        // A fresh generation first, so that a crash from here on
        // finds either the old files or the new ones, never neither.
        let mut iter = records.iter().map(|r| (r.seq, r.kind, r.body.clone()));
        self.write_generation(0, &mut iter)?;
        for (name, to, note) in aside {
            let from = dir.join(&name);
            self.disk
                .rename(&from, &dir.join(&to))
                .map_err(|e| io_err("rename", &from, e))?;
            notes.push(note);
        }
        self.disk
            .sync_dir(dir)
            .map_err(|e| io_err("fsync directory", dir, e))?;
        self.remove_older(self.generation);
        Ok(Recovery { records, notes })
    }

    /// Intact: continues the log where it ends (a torn tail cut off, a
    /// missing or headerless log started afresh).
    fn continue_log(
        &mut self,
        dir: &Path,
        generation: u64,
        log_end: Option<(LogEnd, usize)>,
        last_seq: u64,
    ) -> Result<(), StoreError> {
        let path = dir.join(log_name(generation));
        match log_end {
            Some((LogEnd::Clean { salt }, len)) => {
                let file = self
                    .disk
                    .open_at(&path, len as u64)
                    .map_err(|e| io_err("open", &path, e))?;
                self.log = Some(file);
                self.salt = salt;
                self.stats.log_bytes = len as u64;
            }
            Some((LogEnd::Torn { valid, salt, .. }, _)) => {
                let mut file = self
                    .disk
                    .open_at(&path, valid as u64)
                    .map_err(|e| io_err("truncate", &path, e))?;
                self.disk
                    .sync(&mut file)
                    .map_err(|e| io_err("fdatasync", &path, e))?;
                self.log = Some(file);
                self.salt = salt;
                self.stats.log_bytes = valid as u64;
            }
            Some((LogEnd::NoHeader, _)) | None => {
                let mut file = self
                    .disk
                    .create(&path)
                    .map_err(|e| io_err("create", &path, e))?;
                let mut buf = Vec::new();
                let salt = format::new_salt();
                let header = format::Header {
                    salt,
                    generation,
                    base_seq: last_seq,
                };
                format::put_header(&mut buf, FileType::Log, header);
                self.write_to(&mut file, &buf, &path)?;
                self.disk
                    .sync(&mut file)
                    .map_err(|e| io_err("fdatasync", &path, e))?;
                self.disk
                    .sync_dir(dir)
                    .map_err(|e| io_err("fsync directory", dir, e))?;
                self.log = Some(file);
                self.salt = salt;
                self.stats.log_bytes = buf.len() as u64;
            }
        }
        Ok(())
    }
}
