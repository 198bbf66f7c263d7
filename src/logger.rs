//! The `boxmq` command's logger: `RUST_LOG`-style filters, one line per
//! record, `[2026-12-04T20:49:13Z INFO  boxmq::core] message`, to the
//! destinations of Mosquitto's `log_dest` lines (stderr by default,
//! stdout, a file, syslog, `$SYS/broker/log/...` through the event loop:
//! `net/log_topic.rs`) with its `log_timestamp`,
//! `log_timestamp_format` (strftime, in UTC) and `connection_messages`.
//!
//! Why not `env_logger`: it costs about 40 KiB of the binary (its filter,
//! style and time crates), and it writes every record with a system call of
//! its own. A broker logging one line per connect and per disconnect at the
//! default level pays that on every press of a button. Here the thread that
//! runs the event loop says so ([`batch_this_thread`]); its records are
//! appended to a buffer that the loop writes out before it waits for events
//! (`log::logger().flush()` in `net::Server::run`), so a turn's lines cost
//! one `write` together. Records of other threads, and warnings and errors
//! from any thread, are written at once.

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use boxmq::config::{LogConfig, LogDest};
use log::{Level, LevelFilter, Log, Metadata, Record};

mod syslog;

/// Buffered bytes past which a batching thread writes without waiting for
/// its flush.
const BATCH_LIMIT: usize = 16 * 1024;

thread_local! {
    static BATCHING: Cell<bool> = const { Cell::new(false) };
}

/// One `RUST_LOG` directive: records whose target starts with `module`
/// (all records when `None`) up to `level`.
struct Directive {
    module: Option<Box<str>>,
    level: LevelFilter,
}

/// Where lines go (syslog aside: it takes one datagram per record).
enum Sink {
    Stderr,
    Stdout,
    File(File),
}

/// How the time at the start of a line is written.
enum Stamp {
    /// `log_timestamp false`.
    None,
    /// boxmq's `2026-12-04T20:49:13Z`.
    Iso,
    /// `log_timestamp_format`.
    Format(String),
}

struct Inner {
    buf: Vec<u8>,
    /// The second `stamp` was rendered for, and the rendering.
    stamp_secs: u64,
    stamp: Vec<u8>,
    /// Destinations other than syslog, written from `buf`.
    streams: Vec<Sink>,
    /// Syslog, which takes one datagram per record.
    syslog: Option<syslog::Syslog>,
}

struct Logger {
    /// Longest module first, so the first prefix that matches wins.
    directives: Vec<Directive>,
    inner: Mutex<Inner>,
    stamp: Stamp,
    /// `connection_messages`.
    connection_messages: bool,
    /// `log_dest topic`: lines also go to `$SYS/broker/log/...`.
    topic: bool,
}

/// Installs the logger: `default` unless `RUST_LOG` says otherwise, to
/// the destinations `config` names. `RUST_LOG` is a comma-separated list
/// of `LEVEL`, `MODULE=LEVEL` or `MODULE` (everything from that module),
/// as `env_logger` reads it; an unknown level is ignored with a warning on
/// stderr.
///
/// # Errors
/// A log file or the syslog socket that cannot be opened, named.
pub fn init(default: LevelFilter, config: &LogConfig) -> Result<(), String> {
    let spec = std::env::var("RUST_LOG").unwrap_or_default();
    let mut directives = parse(&spec);
    if !directives.iter().any(|d| d.module.is_none()) {
        directives.push(Directive {
            module: None,
            level: default,
        });
    }
    directives.sort_by_key(|d| std::cmp::Reverse(d.module.as_deref().map_or(0, str::len)));
    let max = directives
        .iter()
        .map(|d| d.level)
        .max()
        .unwrap_or(LevelFilter::Off);
    let mut streams = Vec::new();
    let mut syslog = None;
    let mut topic = false;
    for dest in config.destinations() {
        match dest {
            LogDest::Stderr => streams.push(Sink::Stderr),
            LogDest::Stdout => streams.push(Sink::Stdout),
            LogDest::File(path) => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| format!("log_dest file {}: {e}", path.display()))?;
                streams.push(Sink::File(file));
            }
            LogDest::Topic => {
                topic = true;
                boxmq::net::log_topic::enable();
            }
            LogDest::Syslog => {
                let s = syslog::Syslog::open(config.facility)
                    .map_err(|e| format!("log_dest syslog: {e}"))?;
                syslog = Some(s);
            }
        }
    }
    let stamp = match (&config.timestamp_format, config.timestamp) {
        (_, false) => Stamp::None,
        (Some(f), true) => Stamp::Format(f.clone()),
        (None, true) => Stamp::Iso,
    };
    let logger = Logger {
        directives,
        inner: Mutex::new(Inner {
            buf: Vec::new(),
            stamp_secs: u64::MAX,
            stamp: Vec::new(),
            streams,
            syslog,
        }),
        stamp,
        connection_messages: config.connection_messages,
        topic,
    };
    if log::set_logger(Box::leak(Box::new(logger))).is_ok() {
        log::set_max_level(max);
    }
    Ok(())
}

/// Records logged on this thread wait in the buffer until the next
/// `log::logger().flush()` (or until the buffer is large); warnings and
/// errors still go out at once. For the event loop's thread, which flushes
/// before every wait.
pub fn batch_this_thread() {
    BATCHING.with(|b| b.set(true));
}

fn parse(spec: &str) -> Vec<Directive> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        // env_logger's "/regex" message filter is not supported: ignored.
        let part = part.split('/').next().unwrap_or("");
        let (module, level) = match part.split_once('=') {
            Some((m, l)) => (Some(m.trim()), level_of(l.trim())),
            None => match level_of(part) {
                Some(l) => (None, Some(l)),
                None => (Some(part), Some(LevelFilter::Trace)),
            },
        };
        match level {
            Some(level) => out.push(Directive {
                module: module.filter(|m| !m.is_empty()).map(Into::into),
                level,
            }),
            None => eprintln!("boxmq: RUST_LOG: '{part}' ignored (unknown level)"),
        }
    }
    out
}

fn level_of(s: &str) -> Option<LevelFilter> {
    const LEVELS: [(&str, LevelFilter); 6] = [
        ("off", LevelFilter::Off),
        ("error", LevelFilter::Error),
        ("warn", LevelFilter::Warn),
        ("info", LevelFilter::Info),
        ("debug", LevelFilter::Debug),
        ("trace", LevelFilter::Trace),
    ];
    LEVELS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(s))
        .map(|&(_, l)| l)
}

impl Logger {
    fn level_for(&self, target: &str) -> LevelFilter {
        for d in &self.directives {
            match &d.module {
                None => return d.level,
                Some(m) if module_matches(m, target) => return d.level,
                Some(_) => {}
            }
        }
        LevelFilter::Off
    }
}

/// `boxmq::core` covers `boxmq::core` and `boxmq::core::connect`, not
/// `boxmq::corex`.
fn module_matches(module: &str, target: &str) -> bool {
    target
        .strip_prefix(module)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level_for(metadata.target())
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if !self.connection_messages && record.target() == boxmq::core::CONNECTION_LOG {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if secs != inner.stamp_secs {
            inner.stamp = match &self.stamp {
                Stamp::None => Vec::new(),
                Stamp::Iso => render_utc(secs).to_vec(),
                Stamp::Format(f) => strftime_utc(f, secs).into_bytes(),
            };
            inner.stamp_secs = secs;
        }
        let Inner {
            buf,
            stamp,
            streams,
            syslog,
            ..
        } = &mut *inner;
        buf.push(b'[');
        if !stamp.is_empty() {
            buf.extend_from_slice(stamp);
            buf.push(b' ');
        }
        let level: &[u8] = match record.level() {
            Level::Error => b"ERROR ",
            Level::Warn => b"WARN  ",
            Level::Info => b"INFO  ",
            Level::Debug => b"DEBUG ",
            Level::Trace => b"TRACE ",
        };
        buf.extend_from_slice(level);
        let from = buf.len();
        buf.extend_from_slice(record.target().as_bytes());
        buf.extend_from_slice(b"] ");
        let message = buf.len();
        // Writing into a Vec cannot fail.
        let _ = buf.write_fmt(*record.args());
        if let Some(s) = syslog {
            s.send(record.level(), &buf[from..]);
        }
        if self.topic {
            // Mosquitto's form: the time (as log_timestamp says), then
            // the message.
            let text = String::from_utf8_lossy(&buf[message..]);
            let line = if stamp.is_empty() {
                text.into_owned()
            } else {
                format!("{}: {text}", String::from_utf8_lossy(stamp))
            };
            boxmq::net::log_topic::push(record.level(), &line);
        }
        buf.push(b'\n');
        let now =
            record.level() <= Level::Warn || buf.len() >= BATCH_LIMIT || !BATCHING.with(Cell::get);
        if now {
            write_out(buf, streams);
        }
    }

    fn flush(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            let Inner { buf, streams, .. } = &mut *inner;
            if !buf.is_empty() {
                write_out(buf, streams);
            }
        }
    }
}

/// Writes `buf` to each stream in one go (stderr is unbuffered) and
/// empties it, giving back a buffer that a burst made large.
fn write_out(buf: &mut Vec<u8>, streams: &mut [Sink]) {
    for sink in streams.iter_mut() {
        let _ = match sink {
            Sink::Stderr => std::io::stderr().lock().write_all(buf),
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(buf).and_then(|()| out.flush())
            }
            Sink::File(f) => f.write_all(buf),
        };
    }
    buf.clear();
    if buf.capacity() > BATCH_LIMIT * 2 {
        *buf = Vec::new();
    }
}

/// `format` (strftime's conversions, in UTC) for `secs` since the Unix
/// epoch. Conversions: %Y %y %m %d %e %j %H %M %S %s %F %T %D %R %a %A %b
/// %B %z %Z %n %t %%; others are copied as they are.
fn strftime_utc(format: &str, secs: u64) -> String {
    const DAYS: [&str; 7] = [
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
    ];
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let weekday = DAYS[(days % 7) as usize];
    let month = MONTHS[(m.clamp(1, 12) - 1) as usize];
    let day_of_year = days - days_from_civil(y) + 1;
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let piece = match chars.next() {
            Some('Y') => format!("{y:04}"),
            Some('y') => format!("{:02}", y % 100),
            Some('m') => format!("{m:02}"),
            Some('d') => format!("{d:02}"),
            Some('e') => format!("{d:2}"),
            Some('j') => format!("{day_of_year:03}"),
            Some('H') => format!("{hh:02}"),
            Some('M') => format!("{mm:02}"),
            Some('S') => format!("{ss:02}"),
            Some('s') => secs.to_string(),
            Some('F') => format!("{y:04}-{m:02}-{d:02}"),
            Some('T') => format!("{hh:02}:{mm:02}:{ss:02}"),
            Some('R') => format!("{hh:02}:{mm:02}"),
            Some('D') => format!("{m:02}/{d:02}/{:02}", y % 100),
            Some('a') => weekday[..3].to_owned(),
            Some('A') => weekday.to_owned(),
            Some('b') | Some('h') => month[..3].to_owned(),
            Some('B') => month.to_owned(),
            Some('z') => "+0000".to_owned(),
            Some('Z') => "UTC".to_owned(),
            Some('n') => "\n".to_owned(),
            Some('t') => "\t".to_owned(),
            Some('%') => "%".to_owned(),
            Some(other) => format!("%{other}"),
            None => "%".to_owned(),
        };
        out.push_str(&piece);
    }
    out
}

/// Days since 1970-01-01 of January 1st of `year` (year >= 1970).
fn days_from_civil(year: u64) -> u64 {
    let before = year.saturating_sub(1);
    let leap = |y: u64| y / 4 - y / 100 + y / 400;
    (year - 1970) * 365 + leap(before) - leap(1969)
}

/// `secs` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
fn render_utc(secs: u64) -> [u8; 20] {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let mut out = *b"0000-00-00T00:00:00Z";
    let put = |out: &mut [u8; 20], at: usize, v: u64, width: usize| {
        let mut v = v;
        for i in (0..width).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut out, 0, y, 4);
    put(&mut out, 5, m, 2);
    put(&mut out, 8, d, 2);
    put(&mut out, 11, rem / 3600, 2);
    put(&mut out, 14, rem % 3600 / 60, 2);
    put(&mut out, 17, rem % 60, 2);
    out
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar: count 400-year eras of 146,097 days from 0000-03-01, so that
/// the leap day is the last day of each shifted year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // 719,468 days from 0000-03-01 to 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March: 0 is March, 11 is February.
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_rendering() {
        assert_eq!(&render_utc(0), b"1970-01-01T00:00:00Z");
        // 2000-02-29 (a leap day of a century divisible by 400).
        assert_eq!(&render_utc(951_782_400 + 3_723), b"2000-02-29T01:02:03Z");
        assert_eq!(&render_utc(1_709_251_199), b"2024-02-29T23:59:59Z");
        assert_eq!(&render_utc(1_798_761_599), b"2026-12-31T23:59:59Z");
        assert_eq!(&render_utc(4_107_542_400), b"2100-03-01T00:00:00Z");
    }

    #[test]
    fn strftime_in_utc() {
        // 2024-02-29T23:59:59Z, a Thursday, day 60 of the year.
        let t = 1_709_251_199;
        assert_eq!(strftime_utc("%Y-%m-%dT%H:%M:%S", t), "2024-02-29T23:59:59");
        assert_eq!(
            strftime_utc("%F %T %z %Z", t),
            "2024-02-29 23:59:59 +0000 UTC"
        );
        assert_eq!(
            strftime_utc("%a %A %b %B %j %e %y", t),
            "Thu Thursday Feb February 060 29 24"
        );
        assert_eq!(strftime_utc("%s|%%|%Q|%", t), "1709251199|%|%Q|%");
        assert_eq!(strftime_utc("%j", 0), "001");
        assert_eq!(strftime_utc("%j", 1_798_761_599), "365");
    }

    #[test]
    fn filters() {
        let mut d = parse("warn, boxmq::core=debug ,boxmq::net, x=loud");
        d.sort_by_key(|d| std::cmp::Reverse(d.module.as_deref().map_or(0, str::len)));
        let l = Logger {
            directives: d,
            inner: Mutex::new(Inner {
                buf: Vec::new(),
                stamp_secs: 0,
                stamp: Vec::new(),
                streams: Vec::new(),
                syslog: None,
            }),
            stamp: Stamp::Iso,
            connection_messages: true,
            topic: false,
        };
        assert_eq!(l.level_for("boxmq::core::connect"), LevelFilter::Debug);
        assert_eq!(l.level_for("boxmq::core"), LevelFilter::Debug);
        assert_eq!(l.level_for("boxmq::corex"), LevelFilter::Warn);
        assert_eq!(l.level_for("boxmq::net::tls"), LevelFilter::Trace);
        assert_eq!(l.level_for("boxmq"), LevelFilter::Warn);
        assert!(
            parse("INFO")
                .first()
                .is_some_and(|d| d.level == LevelFilter::Info)
        );
    }
}
