//! Configuration: a mosquitto.conf-style file and the command line.
//!
//! The file format follows mosquitto.conf(5): one directive per line, the
//! directive name first, its values after it, separated by white space. A
//! line whose first non-blank character is `#` is a comment; `#` anywhere
//! else is an error rather than a silent surprise. Blank lines are ignored,
//! CRLF line endings and a leading UTF-8 byte order mark are accepted.
//!
//! Every directive of mosquitto.conf(5) for Mosquitto 2.0 is in the table
//! of `config/directives.rs`, with Mosquitto's meaning or refused with the
//! reason and what to use instead (docs/MOSQUITTO.md lists them); boxmq's
//! own bounds are there too (see [`HELP`]). `include_dir` reads the `*.conf`
//! files of a directory where it stands (`config/parser.rs`).
//!
//! Mosquitto's "0 / -1 means no maximum" is accepted for Mosquitto's
//! directives and becomes a real bound here (docs/MOSQUITTO.md); boxmq's
//! own bounds take a real number only. When a directive is repeated the
//! last one wins, as in Mosquitto; `listener`, `log_type` and `log_dest`
//! accumulate instead. Settings apply to the whole broker wherever they
//! appear in the file (Mosquitto makes some of them, such as
//! `max_connections`, per listener), except the TLS and WebSockets lines
//! (`certfile`, `keyfile`, `cafile`, `require_certificate`,
//! `use_identity_as_username`, `protocol`, `socket_domain`), which apply to
//! the listener above them, or before any `listener` line to Mosquitto's
//! default listener (`port`, `bind_address`).

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use log::LevelFilter;

use crate::Limits;
use crate::auth::Auth;
use crate::core::CoreOptions;

mod directives;
pub mod http;
pub use http::HttpConfig;
mod listener;
pub mod logging;
pub use logging::{LogConfig, LogDest};
mod parser;
pub use listener::ListenerProtocol;
pub mod persistence;
pub use persistence::PersistenceConfig;

/// One network listener (make one with [`ListenerConfig::new`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Address and port to bind. Port 0 lets the system pick a free port.
    pub addr: SocketAddr,
    /// MQTT or MQTT over WebSockets (`protocol`).
    pub protocol: ListenerProtocol,
    /// PEM certificate chain of the server (`certfile`); set: TLS.
    pub certfile: Option<PathBuf>,
    /// PEM private key of the server (`keyfile`).
    pub keyfile: Option<PathBuf>,
    /// PEM CA certificates that sign client certificates (`cafile`).
    pub cafile: Option<PathBuf>,
    /// A directory of PEM CA certificates, every file in it read (`capath`,
    /// as OpenSSL's `c_rehash` directories such as `/etc/ssl/certs`);
    /// with `cafile`, both count.
    pub capath: Option<PathBuf>,
    /// Clients must present a certificate `cafile` verifies (`require_certificate`).
    pub require_certificate: bool,
    /// PEM certificate revocation lists (`crlfile`): a client certificate
    /// they revoke is refused in the handshake.
    pub crlfile: Option<PathBuf>,
    /// The client certificate's subject CN is the user name; no password
    /// needed (`use_identity_as_username`).
    pub use_identity_as_username: bool,
    /// The client certificate's whole subject, as Mosquitto writes it
    /// (`CN=alice,O=Example,C=GB`), is the user name; no password needed
    /// (`use_subject_as_username`; `use_identity_as_username` wins).
    pub use_subject_as_username: bool,
    /// Only TLS 1.3 is accepted (`tls_version tlsv1.3`, Mosquitto's
    /// minimum version); `false`, the default (`tlsv1.2`): TLS 1.2 and 1.3.
    pub tls13_only: bool,
    /// The highest QoS its clients may use (`max_qos`, 0 to 2; default 2).
    pub max_qos: u8,
    /// The user name is the client id (`use_username_as_clientid`).
    pub use_username_as_clientid: bool,
    /// Put before its clients' topics and taken off what they receive
    /// (`mount_point`).
    pub mount_point: Option<String>,
    /// Its own `allow_zero_length_clientid` (with `per_listener_settings
    /// true`; `None`: the default, true).
    pub allow_zero_length_clientid: Option<bool>,
    /// Its own `auto_id_prefix` (with `per_listener_settings true`;
    /// `None`: the default, `auto-`).
    pub auto_id_prefix: Option<String>,
    /// Its own `allow_anonymous` (with `per_listener_settings true`;
    /// `None`: refused when it has a `password_file`, else allowed, as
    /// for the broker-wide line).
    pub allow_anonymous: Option<bool>,
    /// Its own `password_file` (with `per_listener_settings true`).
    pub password_file: Option<PathBuf>,
    /// Its own `acl_file` (with `per_listener_settings true`).
    pub acl_file: Option<PathBuf>,
}

/// Everything the broker needs to run; the binary and the embedding API share it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Listeners; empty means the default 127.0.0.1:1883 (see `effective_listeners`).
    pub listeners: Vec<ListenerConfig>,
    /// Every memory and resource bound.
    pub limits: Limits,
    /// Whether clients without a user name may connect. Default true.
    pub allow_anonymous: bool,
    /// Log level from `log_type` lines, if any (RUST_LOG overrides it).
    pub log_level: Option<LevelFilter>,
    /// Seconds between updates of the `$SYS/broker/...` topics; 0 turns
    /// them off. Default 10.
    pub sys_interval: u32,
    /// Mosquitto-format password file (`password_file`), if any.
    pub password_file: Option<PathBuf>,
    /// Mosquitto-format ACL file (`acl_file`), if any.
    pub acl_file: Option<PathBuf>,
    /// Bridges to other brokers (`connection` and the lines after it).
    pub bridges: Vec<crate::bridge::BridgeConfig>,
    /// Persistence (`persistence`, `persistence_location`, ...).
    pub persistence: PersistenceConfig,
    /// Whether 5.0 error replies (DISCONNECT, ...) carry a Reason String
    /// saying what was wrong, for debugging (`reason_strings true`). Off by
    /// default, as on Mosquitto: the reason code alone. A client that
    /// sets Request Problem Information to 1 explicitly gets them anyway;
    /// one that sets it to 0 never does [MQTT-3.1.2-29].
    pub reason_strings: bool,
    /// The HTTP status listener (`http_listener`, ...; cargo feature `http`).
    pub http: HttpConfig,
    /// Where and how the `boxmq` binary logs (`log_dest`, `log_timestamp`, ...).
    pub log: LogConfig,
    /// `pid_file PATH`: the `boxmq` binary writes its process id there.
    pub pid_file: Option<PathBuf>,
    /// `user NAME`: the `boxmq` binary, started as root, becomes this user
    /// once its listeners are bound and its store is open (Linux).
    pub user: Option<String>,
    /// `allow_zero_length_clientid`: a client sending an empty client id
    /// gets one assigned (default true) or is refused (false).
    pub allow_zero_length_clientid: bool,
    /// `auto_id_prefix`: what assigned client ids start with (`auto-`).
    pub auto_id_prefix: String,
    /// `per_listener_settings`: each listener has its own security lines
    /// (`allow_anonymous`, `password_file`, `acl_file`,
    /// `allow_zero_length_clientid`, `auto_id_prefix`; see
    /// docs/MOSQUITTO.md).
    pub per_listener_settings: bool,
    /// `retain_available`: retained messages on (default) or off.
    pub retain_available: bool,
    /// `upgrade_outgoing_qos`: deliver at the subscription's QoS.
    pub upgrade_outgoing_qos: bool,
    /// `queue_qos0_messages`: keep QoS 0 for offline persistent sessions.
    pub queue_qos0_messages: bool,
    /// `persistent_client_expiration`, in seconds (`None`: never).
    pub persistent_client_expiration: Option<u32>,
    /// `max_inflight_bytes`: payload bytes in flight to a client before
    /// it must acknowledge some (0: no byte bound).
    pub max_inflight_bytes: usize,
    /// `max_connections -1` (Mosquitto's default, and the default here):
    /// the `boxmq` binary sets `limits.max_connections` from the open file
    /// limit at start. Embedders keep `limits.max_connections` as it is.
    pub connections_up_to_fd_limit: bool,
    /// Notices about accepted lines that change nothing, for the log.
    pub notices: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listeners: Vec::new(),
            limits: Limits::default(),
            allow_anonymous: true,
            log_level: None,
            sys_interval: 10,
            password_file: None,
            acl_file: None,
            bridges: Vec::new(),
            persistence: PersistenceConfig::default(),
            reason_strings: false,
            http: HttpConfig::default(),
            log: LogConfig::default(),
            pid_file: None,
            user: None,
            allow_zero_length_clientid: true,
            auto_id_prefix: "auto-".to_owned(),
            per_listener_settings: false,
            retain_available: true,
            upgrade_outgoing_qos: false,
            queue_qos0_messages: false,
            persistent_client_expiration: None,
            max_inflight_bytes: 0,
            // Mosquitto's default: max_connections -1.
            connections_up_to_fd_limit: true,
            notices: Vec::new(),
        }
    }
}

/// Port of the default listener.
const DEFAULT_PORT: u16 = 1883;

/// `usize::MAX` as a `u64` (every platform Rust supports has usize <= 64 bits).
const USIZE_MAX: u64 = usize::MAX as u64;

/// Largest config file read, in bytes. Protects against `--config /dev/zero`.
const MAX_FILE_SIZE: u64 = 1024 * 1024;

/// Upper bound of `max_connections`: the connection table may be sized by it.
const MAX_CONNECTIONS: u64 = 1 << 20;

/// Largest MQTT packet: 1 byte of type, 4 of remaining length, 268,435,455 of body.
const MAX_MQTT_PACKET: u64 = crate::limits::MAX_MQTT_PACKET as u64;

/// Smallest `memory_limit` accepted: room for a few packets of a box's
/// devices and the answers to them.
const MIN_MEMORY_LIMIT: u64 = 1024 * 1024;

/// Smallest `max_packet_size` accepted: room for a CONNECT with a modest
/// client id, user name and will.
const MIN_PACKET_SIZE: u64 = 128;

/// MQTT strings (topics, client ids) are at most this many bytes.
const MAX_MQTT_STRING: u64 = 65_535;

/// MQTT 3.1.1 [MQTT-3.1.3-5]: servers must accept client ids of 1 to 23 bytes.
const MIN_CLIENT_ID_LEN: u64 = 23;

/// Upper bound of `connect_timeout` and `stuck_timeout`, in seconds; keeps
/// deadline arithmetic sane.
const MAX_CONNECT_TIMEOUT: u64 = 3600;

/// Origin used in errors about the command line.
const ARGS_ORIGIN: &str = "boxmq";

/// The expected form of a `--listen` value, for error messages.
const LISTEN_FORM: &str = "expected ADDR:PORT such as 127.0.0.1:1883";

impl Config {
    /// Where boxmq listens when no listener is configured.
    pub const DEFAULT_LISTEN: &'static str = "127.0.0.1:1883";

    /// Listeners to bind: `listeners`, or the default when empty.
    pub fn effective_listeners(&self) -> Vec<SocketAddr> {
        if self.listeners.is_empty() {
            vec![SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                DEFAULT_PORT,
            )]
        } else {
            self.listeners.iter().map(|l| l.addr).collect()
        }
    }

    /// Parse a config file's text; `origin` (usually the path) is used in
    /// errors. `include_dir` lines read the files they name.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let mut parser = parser::Parser::new();
        parser.feed(text, origin)?;
        parser.finish(origin)
    }

    /// Loads the password and ACL files the config names (none named:
    /// everything allowed, anonymous clients as `allow_anonymous` says).
    ///
    /// # Errors
    /// A file that cannot be read or has a malformed line, named by file
    /// and line.
    pub fn load_auth(&self) -> Result<Auth, ConfigError> {
        let error = |e: crate::auth::AuthFileError| ConfigError::new(&e.origin, e.line, e.message);
        let auth = Auth::load(
            self.password_file.as_deref(),
            self.acl_file.as_deref(),
            self.allow_anonymous,
        )
        .map_err(error)?;
        if !self.per_listener_settings || self.listeners.is_empty() {
            return Ok(auth);
        }
        // Mosquitto's per_listener_settings true: each listener its own.
        let own = self.listeners.iter().map(|l| {
            Auth::load(
                l.password_file.as_deref(),
                l.acl_file.as_deref(),
                l.own_allow_anonymous(),
            )
            .map_err(error)
        });
        Ok(auth.with_listeners(own.collect::<Result<_, _>>()?))
    }

    /// Whether clients of listener `index` may connect without a user
    /// name (its own `allow_anonymous` with `per_listener_settings true`).
    pub fn anonymous_on(&self, index: usize) -> bool {
        match self.listeners.get(index) {
            Some(l) if self.per_listener_settings => l.own_allow_anonymous(),
            _ => self.allow_anonymous,
        }
    }

    /// The settings the core is made with (see [`Core::new`]).
    ///
    /// [`Core::new`]: crate::core::Core::new
    pub fn core_options(&self) -> CoreOptions {
        CoreOptions {
            limits: self.limits.clone(),
            allow_anonymous: self.allow_anonymous,
            sys_interval: self.sys_interval,
            reason_strings: self.reason_strings,
            allow_zero_length_clientid: self.allow_zero_length_clientid,
            auto_id_prefix: self.auto_id_prefix.clone(),
            retain_available: self.retain_available,
            upgrade_outgoing_qos: self.upgrade_outgoing_qos,
            queue_qos0_messages: self.queue_qos0_messages,
            persistent_client_expiration: self.persistent_client_expiration,
            max_inflight_bytes: self.max_inflight_bytes,
            listeners: self
                .listeners
                .iter()
                .map(|l| l.core_options(self.per_listener_settings))
                .collect(),
        }
    }

    /// Read and parse a file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = read_text(path).map_err(|(line, message)| ConfigError {
            origin: origin.clone(),
            line,
            message,
        })?;
        Config::parse(&text, &origin)
    }
}

/// Read a config file of at most `MAX_FILE_SIZE` bytes of UTF-8 text.
/// Errors carry the line they are about (0 for the whole file).
fn read_text(path: &Path) -> Result<String, (usize, String)> {
    let file = File::open(path).map_err(|e| (0, format!("cannot open: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| (0, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err((
            0,
            format!("larger than {MAX_FILE_SIZE} bytes; is this really a config file?"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = e.utf8_error().valid_up_to();
        let before = e.as_bytes().get(..good).unwrap_or_default();
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        (line, "not UTF-8 text".to_owned())
    })
}

/// A config error: which file, which line (1-based; 0 when not about a line), what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or `boxmq` for the command line) the error is about.
    pub origin: String,
    /// 1-based line number, or 0 when the error is not about one line.
    pub line: usize,
    /// What is wrong, in one line.
    pub message: String,
}

impl ConfigError {
    fn new(origin: &str, line: usize, message: String) -> Self {
        ConfigError {
            origin: origin.to_owned(),
            line,
            message,
        }
    }

    fn args(message: String) -> Self {
        ConfigError::new(ARGS_ORIGIN, 0, message)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}:{}: {}", self.origin, self.line, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

fn to_usize(name: &str, v: u64) -> Result<usize, String> {
    usize::try_from(v).map_err(|_| format!("{name}: {v} is too large for this platform"))
}

/// A token as shown in an error: control characters escaped, cut at 60 characters.
fn shown(word: &str) -> String {
    let mut out: String = word
        .chars()
        .take(60)
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect();
    if word.chars().nth(60).is_some() {
        out.push_str("...");
    }
    out
}

/// The single value of a directive.
fn one<'a>(name: &str, args: &[&'a str], form: &str) -> Result<&'a str, String> {
    match args {
        [value] => Ok(*value),
        _ => Err(format!("{name}: {form}")),
    }
}

/// The expected form of a count directive, for error messages.
fn count_form(name: &str, min: u64, max: u64) -> String {
    if max == USIZE_MAX {
        format!("expected '{name} N' with N a whole number of at least {min}")
    } else {
        format!("expected '{name} N' with N a whole number from {min} to {max}")
    }
}

/// The single value of a count directive: a plain decimal number in `min..=max`.
fn count<D>(name: &str, args: &[&str], min: u64, max: u64, default: D) -> Result<u64, String>
where
    D: fmt::Display,
{
    let form = count_form(name, min, max);
    let word = one(name, args, &form)?;
    if let Some(digits) = word.strip_prefix('-') {
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{name}: {word} is not accepted: boxmq has no 'unlimited' and needs a real \
                 bound (default {default}); {form}"
            ));
        }
    }
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{name}: '{}' is not a whole number; {form}",
            shown(word)
        ));
    }
    let value: u64 = word
        .parse()
        .map_err(|_| format!("{name}: {word} is too large; {form}"))?;
    if value == 0 {
        return Err(format!(
            "{name}: 0 is not accepted: boxmq has no 'unlimited' and needs a real bound \
             (default {default}); {form}"
        ));
    }
    if value < min {
        return Err(format!("{name}: {value} is too small; {form}"));
    }
    if value > max {
        return Err(format!("{name}: {value} is too large; {form}"));
    }
    Ok(value)
}

/// A port number, 0..=65535 (0: the system picks a free port).
fn parse_port(name: &str, word: &str, form: &str) -> Result<u16, String> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{name}: port '{}' is not a number from 0 to 65535; {form}",
            shown(word)
        ));
    }
    word.parse()
        .map_err(|_| format!("{name}: port {word} is out of range 0 to 65535; {form}"))
}

/// A bind address: an IPv4 or IPv6 address (the latter optionally in
/// brackets), or `localhost`. Host names are not resolved.
fn parse_ip(name: &str, word: &str) -> Result<IpAddr, String> {
    if word.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let bare = word
        .strip_prefix('[')
        .and_then(|w| w.strip_suffix(']'))
        .unwrap_or(word);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ip);
    }
    let what = if word.contains('/') {
        "unix sockets are not supported; use an IP address"
    } else if word.contains(':') {
        "not a valid IPv6 address"
    } else if word.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        "not a valid IPv4 address"
    } else {
        "host names are not resolved; use an IP address"
    };
    Err(format!("{name}: address '{}': {what}", shown(word)))
}

/// What the command line asks for.
// Made once per run; boxing the config would only change the API.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Run the broker with this configuration.
    Run(Box<Config>),
    /// Print [`HELP`] and exit.
    Help,
    /// Print the version and exit.
    Version,
}

/// Parse arguments (without `argv[0]`): `--listen ADDR:PORT` (repeatable; also
/// `--listen=ADDR:PORT`), `--config FILE` (also `-c`), `-h`/`--help`, `-V`/`--version`.
///
/// Config file listeners come first, then --listen ones are added. A bad
/// flag or value is an `Err` with a one-line message whose origin is
/// `boxmq`; an error in the config file names the file and line.
/// `-h` or `-V` ends parsing at once: later arguments are not looked at.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, ConfigError> {
    let mut listens: Vec<SocketAddr> = Vec::new();
    let mut config_path: Option<String> = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        match flag {
            "-h" | "--help" | "-V" | "--version" => {
                if inline.is_some() {
                    return Err(ConfigError::args(format!("{flag} takes no value")));
                }
                return Ok(if flag == "-h" || flag == "--help" {
                    Command::Help
                } else {
                    Command::Version
                });
            }
            "--listen" => {
                let Some(value) = inline.or_else(|| args.next()) else {
                    return Err(ConfigError::args(format!(
                        "--listen: missing value; {LISTEN_FORM}"
                    )));
                };
                let addr = parse_listen(&value)?;
                if addr.port() != 0 && listens.contains(&addr) {
                    return Err(ConfigError::args(format!(
                        "--listen: {addr} is given twice"
                    )));
                }
                listens.push(addr);
            }
            "-c" | "--config" => {
                let value = inline.or_else(|| args.next()).unwrap_or_default();
                if value.is_empty() || value.starts_with('-') {
                    return Err(ConfigError::args(format!("{flag}: missing FILE")));
                }
                if config_path.is_some() {
                    return Err(ConfigError::args(format!(
                        "{flag}: only one config file may be given"
                    )));
                }
                config_path = Some(value);
            }
            _ if flag.starts_with('-') => {
                return Err(ConfigError::args(format!(
                    "unknown option '{}' (try --help)",
                    shown(flag)
                )));
            }
            _ => {
                return Err(ConfigError::args(format!(
                    "unexpected argument '{}' (try --help)",
                    shown(flag)
                )));
            }
        }
    }
    let mut config = match config_path {
        Some(path) => Config::from_file(Path::new(&path))?,
        // Windows: %ProgramData%\boxmq\boxmq.conf when it exists.
        None => match crate::platform::paths::default_config() {
            Some(path) => Config::from_file(&path)?,
            None => Config::default(),
        },
    };
    for addr in listens {
        if addr.port() != 0 && config.listeners.iter().any(|l| l.addr == addr) {
            return Err(ConfigError::args(format!(
                "--listen: {addr} is already a listener in the config file"
            )));
        }
        config.listeners.push(ListenerConfig::new(addr));
    }
    Ok(Command::Run(Box::new(config)))
}

/// A `--listen` value: `ADDR:PORT`, `[IPV6]:PORT` or `localhost:PORT`.
fn parse_listen(value: &str) -> Result<SocketAddr, ConfigError> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Some((host, port)) = value.rsplit_once(':') {
        if host.eq_ignore_ascii_case("localhost") {
            if let Ok(port) = port.parse::<u16>() {
                return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
            }
        }
    }
    Err(ConfigError::args(format!(
        "--listen: invalid address '{}': {LISTEN_FORM}",
        shown(value)
    )))
}

/// The --help text (also documents config lines briefly).
pub const HELP: &str = "\
boxmq: a small, single-threaded MQTT broker

Usage: boxmq [--listen ADDR:PORT]... [--config FILE]
       boxmq service install|uninstall ...   (Windows: boxmq service --help)

Options:
      --listen ADDR:PORT  listen on ADDR:PORT; repeatable; IPv6 as [::1]:1883;
                          port 0 picks a free port
  -c, --config FILE       read settings from a mosquitto.conf-style FILE
  -h, --help              print this help and exit
  -V, --version           print the version and exit

With no arguments boxmq listens on 127.0.0.1:1883 only. Listeners from the
config file come first; each --listen adds one more.

Logging: the RUST_LOG environment variable (error, warn, info, debug, trace)
sets the log level and overrides log_type lines in the config file.

Config file: one directive per line; a line starting with # is a comment.
  listener PORT [ADDRESS]          listen on PORT at ADDRESS (an IP address or
                                   localhost); without ADDRESS, all interfaces
  port PORT                        same as 'listener PORT'
  allow_anonymous true|false       clients may omit a user name (default true)
  reason_strings true|false        5.0 error replies say why (default false)
  log_type TYPE                    error, warning, notice, information, debug,
                                   all or none; repeatable, most verbose wins
  log_dest DEST                    stderr, stdout, file PATH, syslog, topic
                                   ($SYS/broker/log/E|W|N) or none;
                                   repeatable; stderr without any
  max_connections N                open connections (default 0, also -1: as
                                   many as the open file limit allows)
  max_packet_size N                largest packet in bytes (default 0: MQTT's
                                   own limit, 268435460)
  memory_limit BYTES               memory budget (default 0: 67108864, 64 MiB;
                                   at least 1048576) over packets being
                                   received, kept messages, output buffers
  message_size_limit BYTES         largest PUBLISH payload (default 0: none);
                                   larger ones are dropped, their QoS flow
                                   completed
  max_inflight_messages N          QoS 1/2 in flight per client (default 100;
                                   0: 65535)
  max_queued_messages N            QoS 1/2 queued per session (default 1000;
                                   0: no count bound)
  max_queued_bytes N               bytes queued per session (default 0: no
                                   byte bound but memory_limit)
  max_subscriptions_per_session N  per session (default 256)
  max_sessions N                   online and offline sessions (default 4096)
  max_topic_length N               longest topic in bytes (default 65535)
  max_topic_levels N               most levels in a topic (default 201)
  max_client_id_length N           longest client id in bytes (default 65535)
  max_retained_messages N          retained messages (default 10000)
  max_retained_bytes N             retained bytes (default 33554432)
  max_output_buffer N              unsent bytes per connection (default 262144)
  connect_timeout SECONDS          time to send CONNECT (default 10)
  max_topic_aliases N              MQTT 5 aliases per client (default 10)
  stuck_timeout SECONDS            no acks for this long: stuck (default 5);
                                   a full queue pauses its publishers until
                                   its subscriber is stuck, then drops
  sys_interval SECONDS             $SYS update period, 0 for off (default 10)
  password_file PATH               Mosquitto password file (boxmq passwd)
  acl_file PATH                    Mosquitto ACL file
  persistence true|false           keep state on disk; on unless set to false
                                   (off by default when embedded)
  persistence_location DIR         data directory; without it
                                   $STATE_DIRECTORY, else ./boxmq-data
  persistence_mode full|retained   all state, or retained only (default full)
  persistence_sync true|false      ack after fdatasync only (default true)
  persistence_file FILE            ignored with a notice (Mosquitto's)
  autosave_interval SECONDS        ignored with a notice (Mosquitto's)
  autosave_on_changes VALUE        ignored with a notice (Mosquitto's)
HTTP status listener (feature http; README, 'HTTP status'):
  http_listener PORT [ADDRESS]     /health, /metrics, /status.json and a status
                                   page; ADDRESS defaults to 127.0.0.1 (off
                                   without this line)
  http_require_auth true|false     basic auth against password_file (false)
  http_bridge_down_grace SECONDS   a bridge down longer makes /health 503 (60)
Per listener (after its 'listener' line; docs/SECURITY.md):
  certfile PATH                    TLS with this PEM certificate chain and
  keyfile PATH                     this PEM private key (feature tls)
  cafile PATH                      CA for client certificates (feature tls)
  capath DIR                       every file in DIR read for such CAs
  require_certificate true|false   clients need a certificate (feature tls)
  crlfile PATH                     PEM CRLs: revoked client certificates are
                                   refused (feature tls)
  use_identity_as_username true|false
                                   the certificate's CN is the user name
  use_subject_as_username true|false
                                   its whole subject is the user name
  tls_version tlsv1.2|tlsv1.3      the oldest TLS version taken [tlsv1.2]
  protocol mqtt|websockets         MQTT over WebSockets (feature websockets)
Bridges (docs/BRIDGING.md); each 'connection' starts one, the lines after
it describe it (defaults in brackets):
  connection NAME                  a bridge to another broker
  address HOST[:PORT] ...          remote brokers, first is primary (addresses)
  topic PATTERN [in|out|both [QOS [LOCAL-PREFIX REMOTE-PREFIX]]]
  remote_clientid, remote_username, remote_password, local_clientid ID
  cleansession, try_private, notifications, round_robin true|false
  keepalive_interval SECONDS       towards the remote [60]
  restart_timeout BASE [CAP]       reconnect delay, backoff up to CAP [5 30]
  bridge_protocol_version mqttv311|mqttv50
  start_type automatic|lazy|once   when it connects [automatic]
  threshold N, idle_timeout SECONDS
                                   lazy: connect at N waiting, leave when idle
                                   [10 60]
  notification_topic TOPIC         [$SYS/broker/connection/NAME/state]
  notifications_local_only true|false
                                   the state on the box only, no will [false]
  bridge_max_queued_messages N     kept for the remote [100000]
  bridge_max_queued_bytes N        kept for the remote [16777216]
  bridge_queue_full refuse_new|drop_oldest      when full [refuse_new]
  bridge_queue_qos0 true|false     keep QoS 0 too while down [true]
  bridge_outgoing_retain true|false
                                   false: clear the retain flag [true]
  bridge_max_packet_size N         drop larger messages for the remote [0: none]
  bridge_bind_address IP           local address towards the remote
  bridge_cafile PATH               TLS to the remote, its certificate signed
                                   by this PEM CA (feature tls)
  bridge_capath DIR                the same with every file in DIR, e.g.
                                   /etc/ssl/certs
  bridge_certfile PATH             client certificate (PEM) for the remote,
  bridge_keyfile PATH              with its PEM key (feature tls)
  bridge_insecure true|false       skip the remote's host name check [false]
                                   (feature tls)
  bridge_alpn PROTOCOL             offered in the TLS handshake (feature tls)
  bridge_tls_version tlsv1.2|tlsv1.3
                                   the oldest TLS version offered [tlsv1.2]
Mosquitto's other lines: every directive of mosquitto.conf(5) is accepted
with its meaning or refused with the reason (docs/MOSQUITTO.md): pid_file,
user, include_dir, log_dest, log_timestamp, connection_messages, ... boxmq's
own bounds above take a real number: 0 and -1 do not mean unlimited there.
";

mod bridge;
#[cfg(test)]
mod tests;
