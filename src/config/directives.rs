//! The table of directives: every line of mosquitto.conf(5) for Mosquitto
//! 2.0 and boxmq's own, each with what boxmq does with it. docs/MOSQUITTO.md
//! lists the Mosquitto ones with the same verdicts; a test holds the two
//! together (`config/tests/mosquitto.rs`, `mosquitto_md_agrees_with_the_table`).
//!
//! A directive is applied by a small function, or refused with the reason
//! and what to use instead. Mosquitto's "0 / -1 means no maximum" is
//! turned into a real bound here (see each function).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::parser::{Line, Parser};
use super::{
    LogDest, MAX_CONNECT_TIMEOUT, MAX_MQTT_PACKET, MAX_MQTT_STRING, MIN_CLIENT_ID_LEN,
    MIN_PACKET_SIZE, USIZE_MAX, bridge, count, http, listener, one, parse_ip, parse_port,
    persistence, shown, to_usize,
};
use crate::Limits;
use log::LevelFilter;

/// Result of applying one line: the error is the message only.
type Applied = Result<(), String>;

/// How a directive is handled.
#[derive(Clone, Copy)]
pub(super) enum Apply {
    /// Applied by this function.
    With(fn(&mut Parser, &Line<'_>) -> Applied),
    /// Refused: why, and what to use instead.
    Refuse(&'static str),
    /// `include_dir`: read by the parser, which knows the file being read.
    Include,
}

/// What a Mosquitto user gets (docs/MOSQUITTO.md says the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Meaning {
    /// Mosquitto's meaning.
    Same,
    /// Accepted, with a difference docs/MOSQUITTO.md states.
    Differs,
    /// Refused with a reason.
    Refused,
    /// boxmq's own directive, not Mosquitto's.
    Own,
}

/// One row of the table.
#[derive(Clone, Copy)]
pub(super) struct Directive {
    /// The name, or a prefix ending in `*` (`auth_opt_*`).
    pub name: &'static str,
    /// Read by the test that holds docs/MOSQUITTO.md to the table.
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the docs test"))]
    pub meaning: Meaning,
    pub apply: Apply,
}

const fn same(name: &'static str, f: fn(&mut Parser, &Line<'_>) -> Applied) -> Directive {
    Directive {
        name,
        meaning: Meaning::Same,
        apply: Apply::With(f),
    }
}

const fn differs(name: &'static str, f: fn(&mut Parser, &Line<'_>) -> Applied) -> Directive {
    Directive {
        name,
        meaning: Meaning::Differs,
        apply: Apply::With(f),
    }
}

const fn own(name: &'static str, f: fn(&mut Parser, &Line<'_>) -> Applied) -> Directive {
    Directive {
        name,
        meaning: Meaning::Own,
        apply: Apply::With(f),
    }
}

const fn refused(name: &'static str, why: &'static str) -> Directive {
    Directive {
        name,
        meaning: Meaning::Refused,
        apply: Apply::Refuse(why),
    }
}

const PLUGINS: &str = "boxmq cannot load Mosquitto's C plugins (it has no plugin interface); \
     use password_file and acl_file, or embed boxmq and decide in the application \
     (docs/EMBEDDING.md)";
const PLUGIN_OPTS: &str = "options for a plugin, which boxmq cannot load (see auth_plugin)";
const PSK: &str = "pre-shared-key TLS is not available: rustls, boxmq's TLS, has no PSK \
     cipher suites; use certificates (certfile, keyfile, cafile, require_certificate)";
const CIPHERS: &str = "boxmq's TLS (rustls) offers only its own modern cipher suites \
     (AES-GCM, ChaCha20-Poly1305, ECDHE) and has no line to narrow them; remove the line";
const ENGINE: &str = "OpenSSL engines (TPM-held keys) do not exist in rustls, boxmq's TLS; \
     use a PEM key file (keyfile)";

/// Every directive, Mosquitto's in the order of mosquitto.conf(5), then
/// boxmq's own.
pub(super) const TABLE: &[Directive] = &[
    // General options.
    same("acl_file", acl_file),
    differs("allow_anonymous", allow_anonymous),
    differs("allow_duplicate_messages", allow_duplicate_messages),
    differs("allow_zero_length_clientid", allow_zero_length_clientid),
    refused("auth_opt_*", PLUGIN_OPTS),
    refused("auth_plugin", PLUGINS),
    differs("auth_plugin_deny_special_chars", no_effect_bool),
    same("auto_id_prefix", auto_id_prefix),
    differs("autosave_interval", persistence_line),
    differs("autosave_on_changes", persistence_line),
    differs("check_retain_source", no_effect_bool),
    refused(
        "clientid_prefixes",
        "deprecated by Mosquitto and not implemented; allow clients by user name with \
         password_file and acl_file",
    ),
    same("connection_messages", connection_messages),
    Directive {
        name: "include_dir",
        meaning: Meaning::Same,
        apply: Apply::Include,
    },
    differs("log_dest", log_dest),
    same("log_facility", log_facility),
    same("log_timestamp", log_timestamp),
    differs("log_timestamp_format", log_timestamp_format),
    differs("log_type", log_type),
    same("max_inflight_bytes", max_inflight_bytes),
    same("max_inflight_messages", max_inflight_messages),
    same("max_keepalive", max_keepalive),
    differs("max_packet_size", max_packet_size),
    same("max_queued_bytes", max_queued_bytes),
    same("max_queued_messages", max_queued_messages),
    differs("memory_limit", memory_limit),
    differs("message_size_limit", message_size_limit),
    same("password_file", password_file),
    differs("per_listener_settings", per_listener_settings),
    differs("persistence", persistence_line),
    differs("persistence_file", persistence_line),
    differs("persistence_location", persistence_line),
    same("persistent_client_expiration", persistent_client_expiration),
    same("pid_file", pid_file),
    refused("plugin", PLUGINS),
    refused("plugin_opt_*", PLUGIN_OPTS),
    refused("psk_file", PSK),
    differs("queue_qos0_messages", queue_qos0_messages),
    same("retain_available", retain_available),
    differs("set_tcp_nodelay", no_effect_bool),
    same("sys_interval", sys_interval),
    same("upgrade_outgoing_qos", upgrade_outgoing_qos),
    differs("user", user),
    // Listeners.
    same("bind_address", bind_address),
    refused(
        "bind_interface",
        "binding to a network device is not done; use 'listener PORT ADDRESS' with the \
         interface's address",
    ),
    refused(
        "http_dir",
        "boxmq's WebSockets listener serves no files; serve them with a web server (boxmq's \
         own status page: http_listener)",
    ),
    differs("listener", listener_line),
    differs("max_connections", max_connections),
    same("max_qos", max_qos),
    differs("max_topic_alias", max_topic_aliases),
    differs("mount_point", mount_point),
    same("port", port),
    same("protocol", listener_line_tls),
    same("socket_domain", socket_domain),
    same("use_username_as_clientid", use_username_as_clientid),
    differs("websockets_headers_size", no_effect_number),
    differs("websockets_log_level", no_effect_number),
    // Certificate based TLS.
    same("cafile", listener_line_tls),
    differs("capath", listener_line_tls),
    same("certfile", listener_line_tls),
    refused("ciphers", CIPHERS),
    refused("ciphers_tls1.3", CIPHERS),
    same("crlfile", listener_line_tls),
    differs("dhparamfile", dhparamfile),
    same("keyfile", listener_line_tls),
    same("require_certificate", listener_line_tls),
    refused("tls_engine", ENGINE),
    refused("tls_engine_kpass_sha1", ENGINE),
    differs("tls_keyform", tls_keyform),
    differs("tls_version", listener_line_tls),
    same("use_identity_as_username", listener_line_tls),
    same("use_subject_as_username", listener_line_tls),
    // Pre-shared-key TLS.
    refused("psk_hint", PSK),
    // Bridges.
    same("address", bridge_line),
    same("addresses", bridge_line),
    differs("bridge_attempt_unsubscribe", bridge_no_effect_bool),
    same("bridge_bind_address", bridge_line),
    same("bridge_max_packet_size", bridge_line),
    same("bridge_outgoing_retain", bridge_line),
    differs("bridge_protocol_version", bridge_line),
    same("cleansession", bridge_line),
    differs("local_cleansession", bridge_no_effect_bool),
    same("connection", bridge_line),
    same("keepalive_interval", bridge_line),
    differs("idle_timeout", bridge_line),
    same("local_clientid", bridge_line),
    refused(
        "local_password",
        "a bridge's local side is inside boxmq and logs in nowhere; remove the line",
    ),
    refused(
        "local_username",
        "a bridge's local side is inside boxmq and logs in nowhere; remove the line",
    ),
    same("notifications", bridge_line),
    same("notifications_local_only", bridge_line),
    same("notification_topic", bridge_line),
    same("remote_clientid", bridge_line),
    same("clientid", bridge_line),
    same("remote_password", bridge_line),
    same("password", bridge_line),
    same("remote_username", bridge_line),
    same("username", bridge_line),
    same("restart_timeout", bridge_line),
    same("round_robin", bridge_line),
    differs("start_type", bridge_line),
    same("threshold", bridge_line),
    same("topic", bridge_line),
    same("try_private", bridge_line),
    // Bridge TLS.
    same("bridge_alpn", bridge_line),
    same("bridge_cafile", bridge_line),
    differs("bridge_capath", bridge_line),
    same("bridge_certfile", bridge_line),
    refused("bridge_identity", PSK),
    same("bridge_insecure", bridge_line),
    same("bridge_keyfile", bridge_line),
    refused("bridge_psk", PSK),
    differs("bridge_require_ocsp", bridge_require_ocsp),
    differs("bridge_tls_version", bridge_line),
    // Gone from Mosquitto 2.0, still found in old files.
    refused(
        "retry_interval",
        "removed in Mosquitto 2.0 (unacknowledged messages are resent on reconnect, as \
         MQTT 3.1.1 and 5.0 ask); remove the line",
    ),
    refused(
        "store_clean_interval",
        "removed in Mosquitto 2.0; remove the line",
    ),
    // boxmq's own.
    own("reason_strings", reason_strings),
    own("max_subscriptions_per_session", count_limit),
    own("max_sessions", count_limit),
    own("max_topic_length", count_limit),
    own("max_topic_levels", count_limit),
    own("max_client_id_length", count_limit),
    own("max_retained_messages", count_limit),
    own("max_retained_bytes", count_limit),
    own("max_output_buffer", count_limit),
    own("connect_timeout", count_limit),
    own("stuck_timeout", count_limit),
    own("max_topic_aliases", max_topic_aliases),
    own("persistence_mode", persistence_line),
    own("persistence_sync", persistence_line),
    own("http_listener", http_line),
    own("http_require_auth", http_line),
    own("http_bridge_down_grace", http_line),
    own("bridge_max_queued_messages", bridge_line),
    own("bridge_max_queued_bytes", bridge_line),
    own("bridge_queue_full", bridge_line),
    own("bridge_queue_qos0", bridge_line),
];

/// The table row for `name` (prefix rows such as `auth_opt_*` included).
pub(super) fn find(name: &str) -> Option<&'static Directive> {
    TABLE.iter().find(|d| match d.name.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix) && name.len() > prefix.len(),
        None => d.name == name,
    })
}

// Shared value forms.

fn boolean(line: &Line<'_>) -> Result<bool, String> {
    let name = line.name;
    let form = format!("expected '{name} true' or '{name} false'");
    match one(name, line.args, &form)? {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("{name}: '{}': {form}", shown(other))),
    }
}

/// A directive boxmq accepts only at the value(s) that say what boxmq
/// does anyway; any other value is refused with `why`.
fn only(line: &Line<'_>, accepted: &[&str], why: &str) -> Applied {
    let name = line.name;
    let form = format!("expected '{name} VALUE'");
    let value = one(name, line.args, &form)?;
    if accepted.contains(&value) {
        Ok(())
    } else {
        Err(format!("{name} {}: not supported: {why}", shown(value)))
    }
}

/// A count where Mosquitto reads the words in `unlimited` as "no maximum":
/// `None` for those, else the number in `min..=max`.
fn count_or_unlimited(
    line: &Line<'_>,
    unlimited: &[&str],
    min: u64,
    max: u64,
) -> Result<Option<u64>, String> {
    let name = line.name;
    if let [word] = line.args {
        if unlimited.contains(word) {
            return Ok(None);
        }
    }
    let form = format!(
        "expected '{name} N' with N from {min} to {max}, or {} for no maximum",
        unlimited.join(" or ")
    );
    let word = one(name, line.args, &form)?;
    match word.parse::<u64>() {
        Ok(v) if (min..=max).contains(&v) && word.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Some(v))
        }
        _ => Err(format!("{name}: '{}': {form}", shown(word))),
    }
}

// General options.

fn acl_file(p: &mut Parser, line: &Line<'_>) -> Applied {
    let form = format!("expected '{} PATH'", line.name);
    p.config.acl_file = Some(PathBuf::from(one(line.name, line.args, &form)?));
    p.security_line(line);
    Ok(())
}

fn password_file(p: &mut Parser, line: &Line<'_>) -> Applied {
    let form = format!("expected '{} PATH'", line.name);
    p.config.password_file = Some(PathBuf::from(one(line.name, line.args, &form)?));
    p.security_line(line);
    Ok(())
}

fn allow_anonymous(p: &mut Parser, line: &Line<'_>) -> Applied {
    p.config.allow_anonymous = boolean(line)?;
    p.allow_anonymous_set = true;
    p.security_line(line);
    Ok(())
}

fn allow_duplicate_messages(_: &mut Parser, line: &Line<'_>) -> Applied {
    // Deprecated by Mosquitto; boxmq sends one copy either way.
    boolean(line).map(|_| ())
}

fn allow_zero_length_clientid(p: &mut Parser, line: &Line<'_>) -> Applied {
    let value = boolean(line)?;
    // With per_listener_settings true, the listener's own (Mosquitto).
    if p.per_listener_settings {
        p.current_listener().allow_zero_length_clientid = Some(value);
    } else {
        p.config.allow_zero_length_clientid = value;
    }
    Ok(())
}

fn auto_id_prefix(p: &mut Parser, line: &Line<'_>) -> Applied {
    // The whole rest of the line, as Mosquitto takes it; an assigned id
    // is a client id, so the prefix must leave room for the 36 characters
    // after it.
    let prefix = line.rest.trim();
    if prefix.is_empty() {
        return Err("auto_id_prefix: expected 'auto_id_prefix PREFIX'".to_owned());
    }
    if prefix.len() > MAX_AUTO_ID_PREFIX {
        return Err(format!(
            "auto_id_prefix: at most {MAX_AUTO_ID_PREFIX} bytes (an assigned client id is a \
             client id, at most 65,535 bytes with the 36 after the prefix)"
        ));
    }
    if p.per_listener_settings {
        p.current_listener().auto_id_prefix = Some(prefix.to_owned());
    } else {
        p.config.auto_id_prefix = prefix.to_owned();
    }
    Ok(())
}

/// Longest `auto_id_prefix`: 65,535 bytes of MQTT string minus the 36 of
/// the random part.
const MAX_AUTO_ID_PREFIX: usize = 65_535 - 36;

fn no_effect_bool(_: &mut Parser, line: &Line<'_>) -> Applied {
    boolean(line).map(|_| ())
}

fn no_effect_number(_: &mut Parser, line: &Line<'_>) -> Applied {
    let form = format!("expected '{} N'", line.name);
    let word = one(line.name, line.args, &form)?;
    word.parse::<u64>()
        .map(|_| ())
        .map_err(|_| format!("{}: '{}': {form}", line.name, shown(word)))
}

fn connection_messages(p: &mut Parser, line: &Line<'_>) -> Applied {
    p.config.log.connection_messages = boolean(line)?;
    Ok(())
}

fn log_dest(p: &mut Parser, line: &Line<'_>) -> Applied {
    const FORM: &str =
        "expected 'log_dest stdout', 'stderr', 'syslog', 'file PATH', 'topic' or 'none'";
    let dest = match line.args {
        ["none"] => {
            p.config.log.dests = Some(Vec::new());
            return Ok(());
        }
        ["stdout"] => LogDest::Stdout,
        ["stderr"] => LogDest::Stderr,
        ["syslog"] => LogDest::Syslog,
        ["file", path] => {
            let taken = p.config.log.dests.iter().flatten();
            if taken.clone().any(|d| matches!(d, LogDest::File(_))) {
                return Err(
                    "log_dest file: only one file destination may be configured (as in Mosquitto)"
                        .to_owned(),
                );
            }
            LogDest::File(PathBuf::from(path))
        }
        ["file"] => return Err("log_dest file: expected 'log_dest file PATH'".to_owned()),
        ["topic"] => LogDest::Topic,
        ["dlt"] => {
            return Err(
                "log_dest dlt: not supported: boxmq has no Diagnostic Log and Trace output; \
                 use log_dest syslog"
                    .to_owned(),
            );
        }
        _ => return Err(format!("log_dest: {FORM}")),
    };
    let dests = p.config.log.dests.get_or_insert_with(Vec::new);
    if !dests.contains(&dest) {
        dests.push(dest);
    }
    Ok(())
}

fn log_facility(p: &mut Parser, line: &Line<'_>) -> Applied {
    let form = "expected 'log_facility N' with N from 0 to 7 (local0 to local7)";
    let word = one(line.name, line.args, form)?;
    match word.parse::<u8>() {
        Ok(n) if n <= 7 => {
            p.config.log.facility = Some(n);
            Ok(())
        }
        _ => Err(format!("{}: '{}': {form}", line.name, shown(word))),
    }
}

fn log_timestamp(p: &mut Parser, line: &Line<'_>) -> Applied {
    p.config.log.timestamp = boolean(line)?;
    Ok(())
}

fn log_timestamp_format(p: &mut Parser, line: &Line<'_>) -> Applied {
    if line.rest.is_empty() {
        return Err("log_timestamp_format: expected a strftime format".to_owned());
    }
    p.config.log.timestamp_format = Some(line.rest.to_owned());
    Ok(())
}

fn log_type(p: &mut Parser, line: &Line<'_>) -> Applied {
    const FORM: &str = "expected 'log_type TYPE' with TYPE error, warning, notice, information, \
                        subscribe, unsubscribe, websockets, debug, all or none";
    let level = match one(line.name, line.args, FORM)? {
        "error" => LevelFilter::Error,
        "warning" => LevelFilter::Warn,
        "notice" | "information" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        "all" => LevelFilter::Trace,
        "none" => LevelFilter::Off,
        // Mosquitto message classes boxmq has no separate switch for.
        "subscribe" | "unsubscribe" | "websockets" => return Ok(()),
        other => {
            return Err(format!(
                "{}: unknown type '{}'; {FORM}",
                line.name,
                shown(other)
            ));
        }
    };
    // Off < Error < ... < Trace: the most verbose line wins.
    p.config.log_level = Some(match p.config.log_level {
        Some(old) => old.max(level),
        None => level,
    });
    Ok(())
}

fn max_inflight_bytes(p: &mut Parser, line: &Line<'_>) -> Applied {
    // 0: no byte bound (Mosquitto's default).
    let v = count_or_unlimited(line, &["0"], 1, USIZE_MAX)?;
    p.config.max_inflight_bytes = match v {
        Some(v) => to_usize(line.name, v)?,
        None => 0,
    };
    Ok(())
}

fn max_inflight_messages(p: &mut Parser, line: &Line<'_>) -> Applied {
    // 0: no maximum of Mosquitto's; the protocol's is 65,535 (Receive Maximum).
    let v = count_or_unlimited(line, &["0"], 1, u64::from(u16::MAX))?;
    p.config.limits.max_inflight = v.map_or(u16::MAX, |v| u16::try_from(v).unwrap_or(u16::MAX));
    Ok(())
}

fn max_keepalive(p: &mut Parser, line: &Line<'_>) -> Applied {
    // 0 (later Mosquitto versions): no limit, as 65,535. Mosquitto advises
    // against values below 10 seconds; boxmq refuses them.
    let v = count_or_unlimited(line, &["0"], 10, u64::from(u16::MAX))?;
    p.config.limits.max_keepalive = v.map_or(u16::MAX, |v| u16::try_from(v).unwrap_or(u16::MAX));
    Ok(())
}

fn max_packet_size(p: &mut Parser, line: &Line<'_>) -> Applied {
    // 0: no limit but MQTT's own (268,435,455 bytes after the fixed header).
    let v = count_or_unlimited(line, &["0"], MIN_PACKET_SIZE, MAX_MQTT_PACKET)?;
    let v = v.unwrap_or(MAX_MQTT_PACKET);
    p.config.limits.max_packet_size =
        u32::try_from(v).map_err(|_| format!("max_packet_size: {v} is too large"))?;
    Ok(())
}

fn max_queued_bytes(p: &mut Parser, line: &Line<'_>) -> Applied {
    // 0: no byte bound; the queue is then bounded by max_queued_messages
    // times max_packet_size (docs/LIMITS.md).
    let v = count_or_unlimited(line, &["0"], 1, USIZE_MAX)?;
    p.unlimited_queue.1 = v.is_none().then(|| p.place.clone());
    p.config.limits.max_queued_bytes = match v {
        Some(v) => to_usize(line.name, v)?,
        None => usize::MAX,
    };
    Ok(())
}

fn max_queued_messages(p: &mut Parser, line: &Line<'_>) -> Applied {
    let v = count_or_unlimited(line, &["0"], 1, USIZE_MAX)?;
    p.unlimited_queue.0 = v.is_none().then(|| p.place.clone());
    p.config.limits.max_queued_messages = match v {
        Some(v) => to_usize(line.name, v)?,
        None => usize::MAX,
    };
    Ok(())
}

fn memory_limit(p: &mut Parser, line: &Line<'_>) -> Applied {
    // 0: Mosquitto's "no limit set"; boxmq keeps its default budget then
    // (docs/LIMITS.md, "The memory budget").
    let v = count_or_unlimited(line, &["0"], super::MIN_MEMORY_LIMIT, USIZE_MAX)?;
    p.config.limits.memory_limit = match v {
        Some(v) => to_usize(line.name, v)?,
        None => crate::limits::DEFAULT_MEMORY_LIMIT,
    };
    Ok(())
}

fn message_size_limit(p: &mut Parser, line: &Line<'_>) -> Applied {
    // 0: no limit but MQTT's own (a packet's whole body).
    let v = count_or_unlimited(line, &["0"], 1, crate::limits::MAX_MQTT_PAYLOAD as u64)?;
    p.config.limits.message_size_limit = match v {
        Some(v) => to_usize(line.name, v)?,
        None => crate::limits::MAX_MQTT_PAYLOAD,
    };
    Ok(())
}

fn per_listener_settings(p: &mut Parser, line: &Line<'_>) -> Applied {
    p.per_listener_settings = boolean(line)?;
    p.config.per_listener_settings = p.per_listener_settings;
    Ok(())
}

fn persistence_line(p: &mut Parser, line: &Line<'_>) -> Applied {
    let at = p.place.line;
    persistence::directive(&mut p.config.persistence, line.name, line.args, at)
}

fn persistent_client_expiration(p: &mut Parser, line: &Line<'_>) -> Applied {
    // Mosquitto's form: a number and one of h d w m y (a month is 30
    // days, a year 365).
    let form = "expected 'persistent_client_expiration N' with N a number followed by \
                h, d, w, m or y (hours, days, weeks, months, years), such as 14d";
    let word = one(line.name, line.args, form)?;
    let split = word.len().saturating_sub(1);
    let (number, unit) = (
        word.get(..split).unwrap_or(""),
        word.get(split..).unwrap_or(""),
    );
    let unit_secs: u64 = match unit {
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "m" => 30 * 86_400,
        "y" => 365 * 86_400,
        _ => return Err(format!("{}: '{}': {form}", line.name, shown(word))),
    };
    let n: u64 = number
        .parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{}: '{}': {form}", line.name, shown(word)))?;
    let secs = n
        .checked_mul(unit_secs)
        .and_then(|s| u32::try_from(s).ok())
        .ok_or_else(|| format!("{}: '{}': at most about 136 years", line.name, shown(word)))?;
    p.config.persistent_client_expiration = Some(secs);
    Ok(())
}

fn pid_file(p: &mut Parser, line: &Line<'_>) -> Applied {
    let form = "expected 'pid_file PATH'";
    p.config.pid_file = Some(PathBuf::from(one(line.name, line.args, form)?));
    Ok(())
}

fn queue_qos0_messages(p: &mut Parser, line: &Line<'_>) -> Applied {
    p.config.queue_qos0_messages = boolean(line)?;
    Ok(())
}

fn retain_available(p: &mut Parser, line: &Line<'_>) -> Applied {
    p.config.retain_available = boolean(line)?;
    Ok(())
}

fn sys_interval(p: &mut Parser, line: &Line<'_>) -> Applied {
    // 0 turns $SYS off, as in Mosquitto.
    p.config.sys_interval = if line.args == ["0"] {
        0
    } else {
        let v = count(line.name, line.args, 1, u64::from(u32::MAX), 10)?;
        u32::try_from(v).unwrap_or(u32::MAX)
    };
    Ok(())
}

fn upgrade_outgoing_qos(p: &mut Parser, line: &Line<'_>) -> Applied {
    p.config.upgrade_outgoing_qos = boolean(line)?;
    Ok(())
}

fn user(p: &mut Parser, line: &Line<'_>) -> Applied {
    let form = "expected 'user NAME'";
    p.config.user = Some(one(line.name, line.args, form)?.to_owned());
    Ok(())
}

// Listeners.

fn listener_line(p: &mut Parser, line: &Line<'_>) -> Applied {
    const FORM: &str = "expected 'listener PORT [ADDRESS]'";
    let (port, addr) = match line.args {
        [port] => (*port, None),
        [port, addr] => (*port, Some(*addr)),
        _ => return Err(format!("listener: {FORM}")),
    };
    let port = parse_port("listener", port, FORM)?;
    let ip = match addr {
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some(addr) => parse_ip("listener", addr)?,
    };
    p.add_listener(SocketAddr::new(ip, port))
}

fn port(p: &mut Parser, line: &Line<'_>) -> Applied {
    const FORM: &str = "expected 'port PORT'";
    let word = one(line.name, line.args, FORM)?;
    let port = parse_port(line.name, word, FORM)?;
    p.default_listener.addr.set_port(port);
    p.default_at = Some(p.place.clone());
    Ok(())
}

fn bind_address(p: &mut Parser, line: &Line<'_>) -> Applied {
    let word = one(line.name, line.args, "expected 'bind_address ADDRESS'")?;
    let ip = parse_ip(line.name, word)?;
    p.default_listener.addr.set_ip(ip);
    p.default_at = Some(p.place.clone());
    Ok(())
}

fn listener_line_tls(p: &mut Parser, line: &Line<'_>) -> Applied {
    listener::directive(p.current_listener(), line.name, line.args)
}

fn socket_domain(p: &mut Parser, line: &Line<'_>) -> Applied {
    let form = "expected 'socket_domain ipv4' or 'socket_domain ipv6'";
    let want_v6 = match one(line.name, line.args, form)? {
        "ipv4" => false,
        "ipv6" => true,
        other => return Err(format!("{}: '{}': {form}", line.name, shown(other))),
    };
    let l = p.current_listener();
    let ip = l.addr.ip();
    if ip.is_unspecified() {
        l.addr.set_ip(if want_v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        });
    } else if ip.is_ipv6() != want_v6 {
        return Err(format!(
            "socket_domain: the listener's address {ip} is not of this family"
        ));
    }
    Ok(())
}

fn max_connections(p: &mut Parser, line: &Line<'_>) -> Applied {
    let v = count_or_unlimited(line, &["-1", "0"], 1, super::MAX_CONNECTIONS)?;
    match v {
        Some(v) => {
            p.config.limits.max_connections = to_usize(line.name, v)?;
            p.config.connections_up_to_fd_limit = false;
        }
        None => p.config.connections_up_to_fd_limit = true,
    }
    Ok(())
}

fn max_qos(p: &mut Parser, line: &Line<'_>) -> Applied {
    let form = "expected 'max_qos 0', 'max_qos 1' or 'max_qos 2'";
    p.current_listener().max_qos = match one(line.name, line.args, form)? {
        "0" => 0,
        "1" => 1,
        "2" => 2,
        other => return Err(format!("max_qos: '{}': {form}", shown(other))),
    };
    Ok(())
}

fn max_topic_aliases(p: &mut Parser, line: &Line<'_>) -> Applied {
    // 0 is a real setting here (no aliases), not "unlimited".
    let v = if line.args == ["0"] {
        0
    } else {
        let default = Limits::default().max_topic_aliases;
        count(line.name, line.args, 1, u64::from(u16::MAX), default)?
    };
    p.config.limits.max_topic_aliases = u16::try_from(v).unwrap_or(u16::MAX);
    Ok(())
}

fn dhparamfile(p: &mut Parser, line: &Line<'_>) -> Applied {
    one(line.name, line.args, "expected 'dhparamfile PATH'")?;
    p.config.notices.push(format!(
        "{}:{}: dhparamfile is ignored: boxmq's TLS has forward secrecy with ECDHE alone",
        p.place.origin, p.place.line
    ));
    Ok(())
}

fn tls_keyform(_: &mut Parser, line: &Line<'_>) -> Applied {
    only(line, &["pem"], ENGINE)
}

fn mount_point(p: &mut Parser, line: &Line<'_>) -> Applied {
    // A topic name (no wildcards), as Mosquitto checks it.
    let form = "expected 'mount_point PREFIX' (a topic name, such as 'site1/')";
    let prefix = one(line.name, line.args, form)?;
    if prefix.contains(['+', '#']) || prefix.len() > MAX_MQTT_STRING as usize {
        return Err(format!("mount_point: '{}': {form}", shown(prefix)));
    }
    p.current_listener().mount_point = Some(prefix.to_owned());
    Ok(())
}

fn use_username_as_clientid(p: &mut Parser, line: &Line<'_>) -> Applied {
    p.current_listener().use_username_as_clientid = boolean(line)?;
    Ok(())
}

// Bridges.

fn bridge_line(p: &mut Parser, line: &Line<'_>) -> Applied {
    let name = match line.name {
        "clientid" => "remote_clientid",
        "username" => "remote_username",
        "password" => "remote_password",
        other => other,
    };
    bridge::directive(&mut p.config.bridges, name, line.args)
}

/// A bridge line with no effect in boxmq; it must still follow `connection`.
fn bridge_no_effect_bool(p: &mut Parser, line: &Line<'_>) -> Applied {
    boolean(line)?;
    bridge::current(&mut p.config.bridges, line.name).map(|_| ())
}

fn bridge_require_ocsp(p: &mut Parser, line: &Line<'_>) -> Applied {
    only(
        line,
        &["false"],
        "rustls, boxmq's TLS, does not check OCSP responses, so a bridge cannot require \
         one; remove the line (false is the default), and let the remote's certificate \
         expire soon rather than rely on its revocation",
    )?;
    bridge::current(&mut p.config.bridges, line.name).map(|_| ())
}

// boxmq's own.

fn reason_strings(p: &mut Parser, line: &Line<'_>) -> Applied {
    p.config.reason_strings = boolean(line)?;
    Ok(())
}

fn http_line(p: &mut Parser, line: &Line<'_>) -> Applied {
    http::directive(&mut p.config.http, line.name, line.args)
}

/// boxmq's own bounds: a real number each, no "unlimited".
fn count_limit(p: &mut Parser, line: &Line<'_>) -> Applied {
    let d = Limits::default();
    let l = &mut p.config.limits;
    let (name, args) = (line.name, line.args);
    match name {
        "max_subscriptions_per_session" => {
            let v = count(name, args, 1, USIZE_MAX, d.max_subscriptions_per_session)?;
            l.max_subscriptions_per_session = to_usize(name, v)?;
        }
        "max_sessions" => {
            l.max_sessions = to_usize(name, count(name, args, 1, USIZE_MAX, d.max_sessions)?)?
        }
        "max_topic_length" => {
            let v = count(name, args, 1, MAX_MQTT_STRING, d.max_topic_len)?;
            l.max_topic_len = to_usize(name, v)?;
        }
        "max_topic_levels" => {
            let v = count(name, args, 1, MAX_MQTT_STRING, d.max_topic_levels)?;
            l.max_topic_levels = to_usize(name, v)?;
        }
        "max_client_id_length" => {
            let v = count(
                name,
                args,
                MIN_CLIENT_ID_LEN,
                MAX_MQTT_STRING,
                d.max_client_id_len,
            )?;
            l.max_client_id_len = to_usize(name, v)?;
        }
        "max_retained_messages" => {
            let v = count(name, args, 1, USIZE_MAX, d.max_retained_messages)?;
            l.max_retained_messages = to_usize(name, v)?;
        }
        "max_retained_bytes" => {
            let v = count(name, args, 1, USIZE_MAX, d.max_retained_bytes)?;
            l.max_retained_bytes = to_usize(name, v)?;
        }
        "max_output_buffer" => {
            let v = count(name, args, 1, USIZE_MAX, d.max_output_buffer)?;
            l.max_output_buffer = to_usize(name, v)?;
        }
        "connect_timeout" => {
            let v = count(
                name,
                args,
                1,
                MAX_CONNECT_TIMEOUT,
                d.connect_timeout.as_secs(),
            )?;
            l.connect_timeout = Duration::from_secs(v);
        }
        _ => {
            let v = count(
                name,
                args,
                1,
                MAX_CONNECT_TIMEOUT,
                d.stuck_timeout.as_secs(),
            )?;
            l.stuck_timeout = Duration::from_secs(v);
        }
    }
    Ok(())
}
