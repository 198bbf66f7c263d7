//! Reading config text into a [`Config`]: the line loop, `include_dir`,
//! Mosquitto's default listener (`port`, `bind_address`, and listener
//! lines before the first `listener`), and the checks made once every
//! file is read. What each directive does is in `directives.rs`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use super::directives::{self, Apply};
use super::{Config, ConfigError, ListenerConfig, bridge, http, listener, read_text, shown};

/// Where a line came from: file (or origin) and 1-based line number.
#[derive(Clone, Debug)]
pub(super) struct Place {
    pub origin: String,
    pub line: usize,
}

/// One directive line, split.
pub(super) struct Line<'a> {
    /// The directive.
    pub name: &'a str,
    /// Its values, split at white space.
    pub args: &'a [&'a str],
    /// Everything after the name, trimmed (for free-text values such as
    /// `log_timestamp_format`).
    pub rest: &'a str,
}

/// A security line (`allow_anonymous`, `password_file`, `acl_file`):
/// which listener section it was in, and its value, for
/// `per_listener_settings true` (applied at the end, when that is known).
pub(super) struct SecurityLine {
    pub name: String,
    /// Index in `Config::listeners` of the section (None: before any).
    pub section: Option<usize>,
    pub value: String,
    pub place: Place,
}

/// Config being built from one or more files.
pub(super) struct Parser {
    pub config: Config,
    /// Where each entry of `config.listeners` came from.
    pub listener_at: Vec<Place>,
    /// Mosquitto's default listener: the `port` line's port (1883 without
    /// one), `bind_address`, and listener lines that come before any
    /// `listener` line. Started only when `port` or `bind_address` is given.
    pub default_listener: ListenerConfig,
    /// The `port` or `bind_address` line that started the default listener.
    pub default_at: Option<Place>,
    /// A `listener` line was seen: listener lines apply to the last one.
    pub listener_seen: bool,
    /// `per_listener_settings true`.
    pub per_listener_settings: bool,
    /// Security lines, applied per listener at the end with
    /// `per_listener_settings true`.
    pub security: Vec<SecurityLine>,
    /// `allow_anonymous` was given (Mosquitto's default depends on it).
    pub allow_anonymous_set: bool,
    /// `max_queued_messages` and `max_queued_bytes` set to "no maximum".
    pub unlimited_queue: (Option<Place>, Option<Place>),
    /// The file being read and the line being applied.
    pub place: Place,
    /// Whether the file being read came from `include_dir`.
    included: bool,
}

/// Default listener port.
const DEFAULT_PORT: u16 = 1883;

impl Parser {
    pub fn new() -> Self {
        Parser {
            config: Config::default(),
            listener_at: Vec::new(),
            default_listener: ListenerConfig::new(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                DEFAULT_PORT,
            )),
            default_at: None,
            listener_seen: false,
            per_listener_settings: false,
            security: Vec::new(),
            allow_anonymous_set: false,
            unlimited_queue: (None, None),
            place: Place {
                origin: String::new(),
                line: 0,
            },
            included: false,
        }
    }

    fn error(&self, message: String) -> ConfigError {
        ConfigError::new(&self.place.origin, self.place.line, message)
    }

    /// Reads one file's text; `origin` names it in errors.
    pub fn feed(&mut self, text: &str, origin: &str) -> Result<(), ConfigError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        // `lines` splits on "\n" and drops a "\r" before it.
        for (index, raw) in text.lines().enumerate() {
            self.place = Place {
                origin: origin.to_owned(),
                line: index + 1,
            };
            let trimmed = raw.trim();
            let Some(name) = trimmed.split_whitespace().next() else {
                continue;
            };
            if name.starts_with('#') {
                continue;
            }
            let rest = trimmed[name.len()..].trim();
            let args: Vec<&str> = rest.split_whitespace().collect();
            let line = Line {
                name,
                args: &args,
                rest,
            };
            if name == "include_dir" {
                self.include_dir(&line)?;
                continue;
            }
            self.directive(&line).map_err(|m| self.error(m))?;
        }
        Ok(())
    }

    /// Applies one directive line through the table.
    fn directive(&mut self, line: &Line<'_>) -> Result<(), String> {
        let name = line.name;
        if let Some(word) = line
            .args
            .iter()
            .find(|a| a.starts_with('#') && (name != "topic" || **a != "#"))
        {
            if name != "log_timestamp_format" {
                return Err(format!(
                    "{name}: unexpected '{}': '#' starts a comment only at the beginning of a line",
                    shown(word)
                ));
            }
        }
        let Some(entry) = directives::find(name) else {
            let lower = name.to_ascii_lowercase();
            let hint = if directives::find(&lower).is_some() {
                " (directive names are lower case)"
            } else {
                ""
            };
            return Err(format!("unknown directive '{}'{hint}", shown(name)));
        };
        match entry.apply {
            Apply::With(f) => f(self, line),
            Apply::Refuse(why) => Err(format!("{name}: not supported: {why}")),
            // Handled in `feed`, which knows the file being read.
            Apply::Include => Err(format!("{name}: unexpected here")),
        }
    }

    /// `include_dir DIR`: every `*.conf` file of DIR, in Mosquitto's order
    /// (case-sensitive, an upper-case letter before its lower case), read
    /// as if it stood here. Only in the main file, as Mosquitto.
    fn include_dir(&mut self, line: &Line<'_>) -> Result<(), ConfigError> {
        let dir = match line.args {
            [dir] => PathBuf::from(dir),
            _ => return Err(self.error("include_dir: expected 'include_dir DIR'".to_owned())),
        };
        if self.included {
            return Err(self.error(
                "include_dir: only the main config file may include others (as in Mosquitto)"
                    .to_owned(),
            ));
        }
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| self.error(format!("include_dir: {}: {e}", dir.display())))?;
        let mut files: Vec<PathBuf> = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| self.error(format!("include_dir: {}: {e}", dir.display())))?;
            let path = entry.path();
            let is_conf = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".conf"));
            if is_conf && path.is_file() {
                files.push(path);
            }
        }
        files.sort_by_cached_key(|p| include_order(p));
        let back = self.place.clone();
        for path in files {
            let origin = path.display().to_string();
            let text = read_text(&path)
                .map_err(|(line, message)| ConfigError::new(&origin, line, message))?;
            self.included = true;
            let result = self.feed(&text, &origin);
            self.included = false;
            result?;
        }
        self.place = back;
        Ok(())
    }

    /// The listener that listener lines apply to now: the last `listener`,
    /// or Mosquitto's default listener before any.
    pub fn current_listener(&mut self) -> &mut ListenerConfig {
        if self.listener_seen {
            if let Some(l) = self.config.listeners.last_mut() {
                return l;
            }
        }
        &mut self.default_listener
    }

    /// Index of the listener section a line is in (None: before any).
    pub fn section(&self) -> Option<usize> {
        if self.listener_seen {
            self.config.listeners.len().checked_sub(1)
        } else {
            None
        }
    }

    /// Adds a listener unless the same address and port is already there.
    pub fn add_listener(&mut self, addr: SocketAddr) -> Result<(), String> {
        if addr.port() != 0 {
            let earlier = self.config.listeners.iter().position(|l| l.addr == addr);
            if let Some(index) = earlier {
                let first = self.listener_at.get(index).map_or(0, |p| p.line);
                return Err(format!(
                    "listener {addr} is already defined on line {first}"
                ));
            }
        }
        self.config.listeners.push(ListenerConfig::new(addr));
        self.listener_at.push(self.place.clone());
        self.listener_seen = true;
        Ok(())
    }

    /// Records a security line for the `per_listener_settings` check.
    pub fn security_line(&mut self, line: &Line<'_>) {
        self.security.push(SecurityLine {
            name: line.name.to_owned(),
            section: self.section(),
            value: line.rest.to_owned(),
            place: self.place.clone(),
        });
    }

    /// Checks made once every file is read; gives the finished config.
    pub fn finish(mut self, origin: &str) -> Result<Config, ConfigError> {
        let whole = |message: String| ConfigError::new(origin, 0, message);
        let default_started = self.default_at.is_some();
        if let Some(at) = self.default_at.take() {
            let l = self.default_listener.clone();
            if let Some(i) = self.config.listeners.iter().position(|x| x.addr == l.addr) {
                let first = self.listener_at.get(i).map_or(0, |p| p.line);
                return Err(ConfigError::new(
                    &at.origin,
                    at.line,
                    format!(
                        "the default listener ({}) is also defined on line {first}",
                        l.addr
                    ),
                ));
            }
            self.config.listeners.insert(0, l);
            self.listener_at.insert(0, at);
        } else {
            let l = &self.default_listener;
            if *l != ListenerConfig::new(l.addr) {
                return Err(whole(
                    "listener lines (certfile, protocol, ...) before any 'listener' line \
                     apply to Mosquitto's default listener, which only a 'port' line starts: \
                     add one (e.g. 'port 8883'), or move them after a 'listener' line"
                        .to_owned(),
                ));
            }
        }
        if self.per_listener_settings {
            self.apply_per_listener(default_started)?;
        }
        for (l, at) in self.config.listeners.iter().zip(&self.listener_at) {
            listener::check(l).map_err(|m| ConfigError::new(&at.origin, at.line, m))?;
        }
        // Mosquitto 2.0 refuses anonymous clients on the listeners a file
        // names unless told otherwise. boxmq allows them there with a
        // warning (README, Security), except where a password file says
        // clients are expected to log in: a Mosquitto file that relies on
        // the default to require passwords keeps requiring them.
        let named = !self.config.listeners.is_empty();
        if !self.allow_anonymous_set && named && self.config.password_file.is_some() {
            self.config.allow_anonymous = false;
        }
        if let (Some(_), Some(at)) = &self.unlimited_queue {
            return Err(ConfigError::new(
                &at.origin,
                at.line,
                "max_queued_bytes: 0 (no maximum) together with max_queued_messages 0 leaves \
                 a session's queue without any bound; keep one of them (Mosquitto's default \
                 is max_queued_messages 1000)"
                    .to_owned(),
            ));
        }
        bridge::finish(&self.config.bridges).map_err(whole)?;
        http::finish(&self.config).map_err(whole)?;
        Ok(self.config)
    }

    /// `per_listener_settings true`: each `allow_anonymous`,
    /// `password_file` and `acl_file` line applies to the listener it
    /// follows (Mosquitto's meaning); lines before any `listener` line to
    /// the default listener, which `default_started` says a `port` line
    /// started (it is then `config.listeners[0]`). With no listener at
    /// all, the lines are the broker-wide ones of the local listener.
    fn apply_per_listener(&mut self, default_started: bool) -> Result<(), ConfigError> {
        if self.config.listeners.is_empty() {
            return Ok(());
        }
        for s in &self.security {
            let index = match s.section {
                Some(i) => i + usize::from(default_started),
                None if default_started => 0,
                None => {
                    return Err(ConfigError::new(
                        &s.place.origin,
                        s.place.line,
                        format!(
                            "{}: with per_listener_settings true this line applies to the \
                             default listener, which is not started (there is no 'port' line); \
                             move it after a 'listener' line",
                            s.name
                        ),
                    ));
                }
            };
            let Some(l) = self.config.listeners.get_mut(index) else {
                continue;
            };
            match s.name.as_str() {
                "allow_anonymous" => l.allow_anonymous = Some(s.value == "true"),
                "password_file" => l.password_file = Some(PathBuf::from(&s.value)),
                _ => l.acl_file = Some(PathBuf::from(&s.value)),
            }
        }
        Ok(())
    }
}

/// Sort key for `include_dir`: by letter ignoring case, an upper-case
/// letter before its lower case, other bytes as they are.
fn include_order(path: &Path) -> Vec<(u8, bool)> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    name.unwrap_or_default()
        .bytes()
        .map(|b| (b.to_ascii_lowercase(), b.is_ascii_lowercase()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::include_order;
    use std::path::PathBuf;

    #[test]
    fn include_dir_order_is_mosquittos() {
        // mosquitto.conf(5), "Example Load Order for include_dir".
        let mut names: Vec<PathBuf> =
            ["b.conf", "A.conf", "01.conf", "a.conf", "B.conf", "00.conf"]
                .iter()
                .map(PathBuf::from)
                .collect();
        names.sort_by_cached_key(|p| include_order(p));
        let got: Vec<_> = names.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            got,
            ["00.conf", "01.conf", "A.conf", "a.conf", "B.conf", "b.conf"]
        );
    }
}
