//! The `boxmq` command's logger: `RUST_LOG`-style filters, one line per
//! record on stderr, `[2026-12-04T20:49:13Z INFO  boxmq::core] message`.
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
use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};

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

struct Inner {
    buf: Vec<u8>,
    /// The second `stamp` was rendered for, and the rendering.
    stamp_secs: u64,
    stamp: [u8; 20],
}

struct Logger {
    /// Longest module first, so the first prefix that matches wins.
    directives: Vec<Directive>,
    inner: Mutex<Inner>,
}

/// Installs the logger: `default` unless `RUST_LOG` says otherwise.
/// `RUST_LOG` is a comma-separated list of `LEVEL`, `MODULE=LEVEL` or
/// `MODULE` (everything from that module), as `env_logger` reads it; an
/// unknown level is ignored with a warning on stderr.
pub fn init(default: LevelFilter) {
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
    let logger = Logger {
        directives,
        inner: Mutex::new(Inner {
            buf: Vec::new(),
            stamp_secs: u64::MAX,
            stamp: [0; 20],
        }),
    };
    if log::set_logger(Box::leak(Box::new(logger))).is_ok() {
        log::set_max_level(max);
    }
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
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if secs != inner.stamp_secs {
            inner.stamp = render_utc(secs);
            inner.stamp_secs = secs;
        }
        let Inner { buf, stamp, .. } = &mut *inner;
        buf.push(b'[');
        buf.extend_from_slice(stamp);
        let level: &[u8] = match record.level() {
            Level::Error => b" ERROR ",
            Level::Warn => b" WARN  ",
            Level::Info => b" INFO  ",
            Level::Debug => b" DEBUG ",
            Level::Trace => b" TRACE ",
        };
        buf.extend_from_slice(level);
        buf.extend_from_slice(record.target().as_bytes());
        buf.extend_from_slice(b"] ");
        // Writing into a Vec cannot fail.
        let _ = buf.write_fmt(*record.args());
        buf.push(b'\n');
        let now =
            record.level() <= Level::Warn || buf.len() >= BATCH_LIMIT || !BATCHING.with(Cell::get);
        if now {
            write_out(buf);
        }
    }

    fn flush(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            if !inner.buf.is_empty() {
                write_out(&mut inner.buf);
            }
        }
    }
}

/// Writes `buf` to stderr in one go (stderr is unbuffered) and empties it,
/// giving back a buffer that a burst made large.
fn write_out(buf: &mut Vec<u8>) {
    let _ = std::io::stderr().lock().write_all(buf);
    buf.clear();
    if buf.capacity() > BATCH_LIMIT * 2 {
        *buf = Vec::new();
    }
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
    fn filters() {
        let mut d = parse("warn, boxmq::core=debug ,boxmq::net, x=loud");
        d.sort_by_key(|d| std::cmp::Reverse(d.module.as_deref().map_or(0, str::len)));
        let l = Logger {
            directives: d,
            inner: Mutex::new(Inner {
                buf: Vec::new(),
                stamp_secs: 0,
                stamp: [0; 20],
            }),
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
