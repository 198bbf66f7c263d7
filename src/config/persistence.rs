//! Persistence directives: `persistence`, `persistence_location`,
//! `persistence_mode`, `persistence_sync`, and Mosquitto's
//! `persistence_file`, `autosave_interval` and `autosave_on_changes`, which
//! are accepted with a notice (boxmq writes every change at the end of the
//! loop turn that made it, so there is nothing to save periodically, and it
//! keeps a directory rather than one file).

use std::path::PathBuf;

pub use crate::core::PersistMode;

/// Directory used when `persistence_location` is not given and systemd
/// sets no `STATE_DIRECTORY`: relative to the working directory.
pub const DEFAULT_DIR: &str = "boxmq-data";

/// Where and how the broker keeps its state on disk (see docs/PERSISTENCE.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistenceConfig {
    /// `persistence true|false`; `None` when not configured: the `boxmq`
    /// binary then turns it on, the embedding API leaves it off.
    pub enabled: Option<bool>,
    /// `persistence_location DIR`; see [`PersistenceConfig::dir`] for the default.
    pub location: Option<PathBuf>,
    /// `persistence_mode retained|full` (default full).
    pub mode: PersistMode,
    /// `persistence_sync true|false` (default true): acknowledgements wait
    /// for `fdatasync`. False: written every loop turn, the OS syncs later,
    /// acknowledgements are not held.
    pub sync: bool,
    /// Notices about accepted but ignored Mosquitto directives, for the log.
    pub notices: Vec<String>,
}

impl Default for PersistenceConfig {
    fn default() -> Self {
        PersistenceConfig {
            enabled: None,
            location: None,
            mode: PersistMode::Full,
            sync: true,
            notices: Vec::new(),
        }
    }
}

impl PersistenceConfig {
    /// Whether persistence is on, given the caller's default for "not configured".
    pub fn is_on(&self, default: bool) -> bool {
        self.enabled.unwrap_or(default)
    }

    /// The data directory: `persistence_location`, else `$STATE_DIRECTORY`
    /// (set by systemd's `StateDirectory=`; the first one if several), else
    /// `./boxmq-data`.
    pub fn dir(&self) -> PathBuf {
        if let Some(dir) = &self.location {
            return dir.clone();
        }
        match std::env::var_os("STATE_DIRECTORY") {
            Some(v) if !v.is_empty() => {
                let s = v.to_string_lossy();
                let first = s.split(':').next().unwrap_or_default();
                PathBuf::from(first)
            }
            _ => PathBuf::from(DEFAULT_DIR),
        }
    }
}

fn boolean(name: &str, args: &[&str]) -> Result<bool, String> {
    match args {
        ["true"] => Ok(true),
        ["false"] => Ok(false),
        _ => Err(format!("{name}: expected '{name} true' or '{name} false'")),
    }
}

/// Applies one persistence directive.
pub(super) fn directive(
    p: &mut PersistenceConfig,
    name: &str,
    args: &[&str],
    line: usize,
) -> Result<(), String> {
    match name {
        "persistence" => p.enabled = Some(boolean(name, args)?),
        "persistence_sync" => p.sync = boolean(name, args)?,
        "persistence_location" => match args {
            [dir] => p.location = Some(PathBuf::from(dir)),
            _ => return Err(format!("{name}: expected '{name} DIR'")),
        },
        "persistence_mode" => {
            p.mode = match args {
                ["full"] => PersistMode::Full,
                ["retained"] => PersistMode::Retained,
                _ => {
                    return Err(format!(
                        "{name}: expected '{name} full' or '{name} retained'"
                    ));
                }
            }
        }
        "persistence_file" => {
            if args.len() != 1 {
                return Err(format!("{name}: expected '{name} FILE'"));
            }
            p.notices.push(format!(
                "line {line}: persistence_file is ignored: boxmq keeps its files in the \
                 persistence_location directory"
            ));
        }
        "autosave_interval" | "autosave_on_changes" => {
            if args.len() != 1 {
                return Err(format!("{name}: expected '{name} VALUE'"));
            }
            p.notices.push(format!(
                "line {line}: {name} is ignored: boxmq writes every change at the end of \
                 the loop turn that made it"
            ));
        }
        _ => return Err(format!("unknown directive '{name}'")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn defaults_leave_the_choice_to_the_caller() {
        let c = Config::parse("", "t").unwrap();
        assert_eq!(c.persistence.enabled, None);
        assert!(c.persistence.is_on(true));
        assert!(!c.persistence.is_on(false));
        assert_eq!(c.persistence.mode, PersistMode::Full);
        assert!(c.persistence.sync);
    }

    #[test]
    fn directives_are_parsed() {
        let c = Config::parse(
            "persistence false\npersistence_location /var/lib/x\npersistence_mode retained\n\
             persistence_sync false\n",
            "t",
        )
        .unwrap();
        let p = &c.persistence;
        assert_eq!(p.enabled, Some(false));
        assert_eq!(
            p.location.as_deref(),
            Some(std::path::Path::new("/var/lib/x"))
        );
        assert_eq!(p.dir(), PathBuf::from("/var/lib/x"));
        assert_eq!(p.mode, PersistMode::Retained);
        assert!(!p.sync);
        assert!(p.notices.is_empty());
    }

    #[test]
    fn mosquitto_file_and_autosave_are_accepted_with_a_notice() {
        let c = Config::parse(
            "persistence true\npersistence_file mosquitto.db\nautosave_interval 1800\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.persistence.notices.len(), 2);
        assert!(c.persistence.notices[0].starts_with("line 2: persistence_file"));
    }

    #[test]
    fn bad_values_are_refused() {
        for (text, want) in [
            ("persistence yes", "persistence: expected"),
            ("persistence_mode all", "persistence_mode: expected"),
            ("persistence_sync", "persistence_sync: expected"),
            ("persistence_location", "persistence_location: expected"),
            ("persistence_location a b", "persistence_location: expected"),
        ] {
            let e = Config::parse(text, "t").unwrap_err();
            assert!(e.message.starts_with(want), "{text}: {e}");
        }
    }
}
