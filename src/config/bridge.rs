//! Mosquitto's bridge lines (`connection NAME` and the lines after it that
//! describe that bridge), plus boxmq's queue lines for bridges.

use std::time::Duration;

use crate::bridge::{
    BridgeConfig, Direction, QueueFull, RemoteProtocol, RestartTimeout, StartType, TopicRule,
};
use crate::codec::QoS;

fn boolean(name: &str, args: &[&str]) -> Result<bool, String> {
    match args {
        ["true"] => Ok(true),
        ["false"] => Ok(false),
        _ => Err(format!("{name}: expected 'true' or 'false'")),
    }
}

fn number(name: &str, word: &str, min: u64, max: u64) -> Result<u64, String> {
    match word.parse::<u64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(format!(
            "{name}: '{word}' is not a number from {min} to {max}"
        )),
    }
}

fn single<'a>(name: &str, args: &[&'a str]) -> Result<&'a str, String> {
    match args {
        [one] => Ok(one),
        _ => Err(format!("{name}: expected one value")),
    }
}

/// `""` stands for the empty string in `topic` lines (Mosquitto's way).
fn unquote(word: &str) -> &str {
    if word == "\"\"" { "" } else { word }
}

/// `host[:port]` (an IPv6 address in brackets), with port 1883 by default.
fn address(word: &str) -> Result<String, String> {
    let (host, port) = if let Some(rest) = word.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, "")) => (format!("[{h}]"), None),
            Some((h, p)) => match p.strip_prefix(':') {
                Some(p) => (format!("[{h}]"), Some(p)),
                None => return Err(format!("address: '{word}': expected [IPV6]:PORT")),
            },
            None => return Err(format!("address: '{word}': expected [IPV6]:PORT")),
        }
    } else {
        match word.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (word.to_owned(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(format!("address: '{word}': no host"));
    }
    let port = match port {
        Some(p) => number("address", p, 1, 65_535)?,
        None => 1883,
    };
    Ok(format!("{host}:{port}"))
}

fn topic_line(args: &[&str]) -> Result<TopicRule, String> {
    const FORM: &str = "expected 'topic PATTERN [in|out|both [QOS [LOCAL-PREFIX REMOTE-PREFIX]]]'";
    let (pattern, rest) = match args.split_first() {
        Some((p, rest)) => (unquote(p), rest),
        None => return Err(format!("topic: {FORM}")),
    };
    let direction = match rest.first().copied() {
        None | Some("out") => Direction::Out,
        Some("in") => Direction::In,
        Some("both") => Direction::Both,
        Some(other) => return Err(format!("topic: direction '{other}': {FORM}")),
    };
    let qos = match rest.get(1) {
        None => QoS::AtMostOnce,
        Some(q) => QoS::from_u8(number("topic", q, 0, 2)? as u8).unwrap_or(QoS::AtMostOnce),
    };
    let rule = TopicRule::new(pattern, direction, qos);
    match rest.get(2..) {
        None | Some([]) => {
            if pattern.is_empty() {
                return Err("topic: an empty pattern needs prefixes".to_owned());
            }
            Ok(rule)
        }
        Some([local, remote]) => Ok(rule.with_prefixes(unquote(local), unquote(remote))),
        Some(_) => Err(format!("topic: {FORM}")),
    }
}

/// TLS bridge lines, which need the cargo feature `tls`.
const TLS_LINES: &[&str] = &[
    "bridge_cafile",
    "bridge_capath",
    "bridge_certfile",
    "bridge_keyfile",
    "bridge_insecure",
    "bridge_alpn",
    "bridge_tls_version",
];

/// Applies one bridge line to the bridge of the last `connection` line.
pub(super) fn directive(
    bridges: &mut Vec<BridgeConfig>,
    name: &str,
    args: &[&str],
) -> Result<(), String> {
    // `bridge_insecure false` and `bridge_tls_version tlsv1.2` ask for
    // nothing TLS needs (the value is checked first on any build).
    let nothing = match name {
        "bridge_insecure" => args == ["false"],
        "bridge_tls_version" => !super::listener::tls_version(name, args)?,
        _ => false,
    };
    if TLS_LINES.contains(&name) && !cfg!(feature = "tls") && !nothing {
        return Err(format!(
            "{name}: boxmq was built without the 'tls' feature; rebuild with --features tls"
        ));
    }
    apply(bridges, name, args)
}

/// The bridge a line applies to: the one of the last `connection` line.
pub(super) fn current<'a>(
    bridges: &'a mut [BridgeConfig],
    name: &str,
) -> Result<&'a mut BridgeConfig, String> {
    bridges
        .last_mut()
        .ok_or_else(|| format!("{name}: must follow a 'connection NAME' line"))
}

fn apply(bridges: &mut Vec<BridgeConfig>, name: &str, args: &[&str]) -> Result<(), String> {
    if name == "connection" {
        let n = single(name, args)?;
        if bridges.iter().any(|b| b.name == n) {
            return Err(format!("connection: '{n}' is defined twice"));
        }
        bridges.push(BridgeConfig::new(n));
        return Ok(());
    }
    let b = current(bridges, name)?;
    match name {
        "address" | "addresses" => {
            if args.is_empty() {
                return Err(format!("{name}: expected HOST[:PORT] ..."));
            }
            for a in args {
                b.addresses.push(address(a)?);
            }
        }
        "topic" => b.topics.push(topic_line(args)?),
        "remote_clientid" => b.remote_clientid = Some(single(name, args)?.to_owned()),
        "local_clientid" => b.local_clientid = Some(single(name, args)?.to_owned()),
        "remote_username" => b.remote_username = Some(single(name, args)?.to_owned()),
        "remote_password" => b.remote_password = Some(single(name, args)?.to_owned()),
        "notification_topic" => b.notification_topic = Some(single(name, args)?.to_owned()),
        "cleansession" => b.cleansession = boolean(name, args)?,
        "try_private" => b.try_private = boolean(name, args)?,
        "notifications" => b.notifications = boolean(name, args)?,
        "notifications_local_only" => b.notifications_local_only = boolean(name, args)?,
        "round_robin" => b.round_robin = boolean(name, args)?,
        "keepalive_interval" => {
            b.keepalive = number(name, single(name, args)?, 0, 65_535)? as u16;
        }
        "restart_timeout" => {
            let secs = |w: &str| number(name, w, 1, 86_400).map(Duration::from_secs);
            b.restart_timeout = match args {
                [base] => RestartTimeout {
                    base: secs(base)?,
                    cap: None,
                },
                [base, cap] => {
                    let (base, cap) = (secs(base)?, secs(cap)?);
                    if cap < base {
                        return Err(format!("{name}: the cap is below the base"));
                    }
                    RestartTimeout {
                        base,
                        cap: Some(cap),
                    }
                }
                _ => return Err(format!("{name}: expected 'restart_timeout BASE [CAP]'")),
            };
        }
        "bridge_protocol_version" => {
            b.protocol = match single(name, args)? {
                "mqttv311" => RemoteProtocol::V311,
                "mqttv50" => RemoteProtocol::V5,
                other => {
                    return Err(format!(
                        "{name}: '{other}': expected mqttv311 or mqttv50 (mqttv31 is not supported)"
                    ));
                }
            };
        }
        "bridge_max_queued_messages" => {
            b.max_queued_messages = number(name, single(name, args)?, 1, 100_000_000)? as usize;
        }
        "bridge_max_queued_bytes" => {
            b.max_queued_bytes = number(name, single(name, args)?, 1, 1 << 40)? as usize;
        }
        "bridge_queue_full" => {
            b.queue_full = match single(name, args)? {
                "drop_oldest" => QueueFull::DropOldest,
                "refuse_new" => QueueFull::RefuseNew,
                other => {
                    return Err(format!(
                        "{name}: '{other}': expected drop_oldest or refuse_new"
                    ));
                }
            };
        }
        "bridge_queue_qos0" => b.queue_qos0 = boolean(name, args)?,
        "start_type" => {
            b.start_type = match single(name, args)? {
                "automatic" => StartType::Automatic,
                "lazy" => StartType::Lazy,
                "once" => StartType::Once,
                "manual" => {
                    return Err(format!(
                        "{name} manual: not supported: Mosquitto 2.0 has no manual start type \
                         either (it is RSMB's, started by a command boxmq does not have); use \
                         automatic, lazy or once"
                    ));
                }
                other => {
                    return Err(format!(
                        "{name}: '{other}': expected automatic, lazy or once"
                    ));
                }
            };
        }
        "idle_timeout" => {
            let secs = number(name, single(name, args)?, 1, 86_400 * 365)?;
            b.idle_timeout = Duration::from_secs(secs);
        }
        "threshold" => {
            // Mosquitto's 0 starts the bridge at the first message, as 1.
            let n = number(name, single(name, args)?, 0, 100_000_000)? as usize;
            b.threshold = n.max(1);
        }
        "bridge_cafile" => b.cafile = Some(single(name, args)?.into()),
        "bridge_capath" => b.capath = Some(single(name, args)?.into()),
        "bridge_certfile" => b.certfile = Some(single(name, args)?.into()),
        "bridge_keyfile" => b.keyfile = Some(single(name, args)?.into()),
        "bridge_insecure" => b.insecure = boolean(name, args)?,
        "bridge_alpn" => b.alpn = Some(single(name, args)?.to_owned()),
        "bridge_tls_version" => b.tls13_only = super::listener::tls_version(name, args)?,
        "bridge_outgoing_retain" => b.outgoing_retain = boolean(name, args)?,
        "bridge_max_packet_size" => {
            // 0: no limit of the bridge's own (Mosquitto's "unlimited").
            let n = number(name, single(name, args)?, 0, u64::from(u32::MAX))?;
            b.max_packet_size = u32::try_from(n).ok().filter(|n| *n > 0);
        }
        "bridge_bind_address" => {
            let word = single(name, args)?;
            let ip = word.parse::<std::net::IpAddr>().map_err(|_| {
                format!("{name}: '{word}' is not an IP address (host names are not resolved)")
            })?;
            b.bind_address = Some(ip);
        }
        _ => return Err(format!("unknown bridge directive '{name}'")),
    }
    Ok(())
}

/// Checks every bridge once the whole file is read.
pub(super) fn finish(bridges: &[BridgeConfig]) -> Result<(), String> {
    for b in bridges {
        b.check()?;
    }
    Ok(())
}
