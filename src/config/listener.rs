//! Per-listener directives (Mosquitto semantics: they apply to the listener
//! of the last `listener` or `port` line above them): `certfile`, `keyfile`,
//! `cafile`, `require_certificate`, `crlfile`, `use_identity_as_username`,
//! `use_subject_as_username`, `tls_version` (cargo feature `tls`) and `protocol` (`websockets` needs the cargo feature
//! `websockets`). See docs/SECURITY.md.

use std::path::PathBuf;

use super::{ListenerConfig, one, shown};

/// What a listener speaks above TCP (or TLS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ListenerProtocol {
    /// MQTT straight on the socket (`protocol mqtt`, the default).
    #[default]
    Mqtt,
    /// MQTT in WebSocket binary messages, subprotocol `mqtt`
    /// (`protocol websockets`; cargo feature `websockets`).
    WebSockets,
}

impl ListenerConfig {
    /// A plain MQTT listener on `addr`: no TLS, no WebSockets.
    pub fn new(addr: std::net::SocketAddr) -> Self {
        ListenerConfig {
            addr,
            protocol: ListenerProtocol::Mqtt,
            certfile: None,
            keyfile: None,
            cafile: None,
            capath: None,
            require_certificate: false,
            crlfile: None,
            use_identity_as_username: false,
            use_subject_as_username: false,
            tls13_only: false,
            max_qos: 2,
            use_username_as_clientid: false,
            mount_point: None,
            allow_zero_length_clientid: None,
            auto_id_prefix: None,
            allow_anonymous: None,
            password_file: None,
            acl_file: None,
        }
    }

    /// Whether its clients may connect without a user name, with
    /// `per_listener_settings true`.
    pub fn own_allow_anonymous(&self) -> bool {
        self.allow_anonymous.unwrap_or(self.password_file.is_none())
    }

    /// What the core applies to this listener's clients; with
    /// `per_listener_settings` its own client id lines, Mosquitto's
    /// defaults where it has none.
    pub fn core_options(&self, per_listener_settings: bool) -> crate::core::ListenerOptions {
        crate::core::ListenerOptions {
            allow_zero_length_clientid: per_listener_settings
                .then(|| self.allow_zero_length_clientid.unwrap_or(true)),
            auto_id_prefix: per_listener_settings
                .then(|| self.auto_id_prefix.as_deref().unwrap_or("auto-").into()),
            max_qos: crate::codec::QoS::from_u8(self.max_qos)
                .unwrap_or(crate::codec::QoS::ExactlyOnce),
            use_username_as_clientid: self.use_username_as_clientid,
            mount_point: self.mount_point.as_deref().map(Into::into),
        }
    }

    /// Whether this listener speaks TLS (it has a `certfile`).
    pub fn is_tls(&self) -> bool {
        self.certfile.is_some()
    }
}

/// The message for a directive that needs a cargo feature not compiled in.
fn not_built(name: &str, feature: &str) -> String {
    format!(
        "{name}: boxmq was built without the '{feature}' feature; rebuild with --features {feature}"
    )
}

fn flag(name: &str, args: &[&str]) -> Result<bool, String> {
    let form = format!("expected '{name} true' or '{name} false'");
    match one(name, args, &form)? {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("{name}: '{}': {form}", shown(other))),
    }
}

/// Applies `protocol` or a TLS line to `listener`: the last one defined, or
/// Mosquitto's default listener before any `listener` line.
pub(super) fn directive(
    listener: &mut ListenerConfig,
    name: &str,
    args: &[&str],
) -> Result<(), String> {
    if name == "protocol" {
        let form = "expected 'protocol mqtt' or 'protocol websockets'";
        listener.protocol = match one(name, args, form)? {
            "mqtt" => ListenerProtocol::Mqtt,
            "websockets" if cfg!(feature = "websockets") => ListenerProtocol::WebSockets,
            "websockets" => return Err(not_built(name, "websockets")),
            other => return Err(format!("{name}: '{}': {form}", shown(other))),
        };
        return Ok(());
    }
    match name {
        "certfile" | "keyfile" | "cafile" | "capath" | "crlfile" => {
            let form = format!("expected '{name} PATH'");
            let path = Some(PathBuf::from(one(name, args, &form)?));
            tls_built(name)?;
            match name {
                "certfile" => listener.certfile = path,
                "keyfile" => listener.keyfile = path,
                "crlfile" => listener.crlfile = path,
                "capath" => listener.capath = path,
                _ => listener.cafile = path,
            }
        }
        "tls_version" => {
            let only13 = tls_version(name, args)?;
            // `tlsv1.2` asks for nothing TLS needs: accepted without it.
            if only13 {
                tls_built(name)?;
            }
            listener.tls13_only = only13;
        }
        "require_certificate" => {
            let value = flag(name, args)?;
            // `false` asks for nothing TLS needs: accepted without it.
            if value {
                tls_built(name)?;
            }
            listener.require_certificate = value;
        }
        _ => {
            let value = flag(name, args)?;
            if value {
                tls_built(name)?;
            }
            if name == "use_subject_as_username" {
                listener.use_subject_as_username = value;
            } else {
                listener.use_identity_as_username = value;
            }
        }
    }
    Ok(())
}

/// The value of `tls_version` or `bridge_tls_version`, Mosquitto's
/// minimum TLS version: `true` for `tlsv1.3` (TLS 1.3 only), `false` for
/// `tlsv1.2` (TLS 1.2 and 1.3, the default).
pub(super) fn tls_version(name: &str, args: &[&str]) -> Result<bool, String> {
    let form = format!("expected '{name} tlsv1.2' or '{name} tlsv1.3'");
    match one(name, args, &form)? {
        "tlsv1.3" => Ok(true),
        "tlsv1.2" => Ok(false),
        "tlsv1.1" => Err(format!(
            "{name} tlsv1.1: not supported: rustls, boxmq's TLS, has no TLS 1.1 (RFC 8996 \
             retired it); use tlsv1.2 (TLS 1.2 and 1.3, Mosquitto's default) or tlsv1.3"
        )),
        other => Err(format!("{name}: '{}': {form}", shown(other))),
    }
}

/// Refuses a TLS line when TLS is not built in.
fn tls_built(name: &str) -> Result<(), String> {
    if cfg!(feature = "tls") {
        Ok(())
    } else {
        Err(not_built(name, "tls"))
    }
}

/// Checks that a listener's TLS lines fit together; the message names
/// the `listener` line. File contents are checked when the broker starts.
pub(super) fn check(l: &ListenerConfig) -> Result<(), String> {
    let tls_line = l.keyfile.is_some()
        || l.cafile.is_some()
        || l.capath.is_some()
        || l.require_certificate
        || l.crlfile.is_some()
        || l.use_identity_as_username
        || l.use_subject_as_username
        || l.tls13_only;
    if l.certfile.is_none() {
        if tls_line {
            return Err(format!(
                "listener {}: TLS settings without 'certfile' (TLS needs certfile and keyfile)",
                l.addr
            ));
        }
        return Ok(());
    }
    if l.keyfile.is_none() {
        return Err(format!("listener {}: 'certfile' without 'keyfile'", l.addr));
    }
    let no_ca = l.cafile.is_none() && l.capath.is_none();
    if l.require_certificate && no_ca {
        return Err(format!(
            "listener {}: 'require_certificate true' needs 'cafile' or 'capath' (the CA that signs client certificates)",
            l.addr
        ));
    }
    if l.crlfile.is_some() && no_ca {
        return Err(format!(
            "listener {}: 'crlfile' needs 'cafile' or 'capath' (the CA whose revocations it lists)",
            l.addr
        ));
    }
    for (set, name) in [
        (l.use_identity_as_username, "use_identity_as_username"),
        (l.use_subject_as_username, "use_subject_as_username"),
    ] {
        if set && !l.require_certificate {
            return Err(format!(
                "listener {}: '{name} true' needs 'require_certificate true'",
                l.addr
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::ListenerProtocol;

    fn parse(text: &str) -> Result<Config, (usize, String)> {
        Config::parse(text, "t.conf").map_err(|e| (e.line, e.message))
    }

    #[test]
    fn protocol_lines() {
        let c = parse("listener 1883\nprotocol mqtt\n").expect("mqtt");
        assert_eq!(c.listeners[0].protocol, ListenerProtocol::Mqtt);
        // Before any `listener` line: Mosquitto's default listener.
        let c = parse("port 1884\nprotocol mqtt\n").expect("default listener");
        assert_eq!(c.listeners[0].protocol, ListenerProtocol::Mqtt);
        let err = parse("listener 1\nprotocol http\n").expect_err("bad value");
        assert_eq!(err.0, 2);
        let ws = parse("listener 1883\nlistener 8080\nprotocol websockets\n");
        if cfg!(feature = "websockets") {
            let c = ws.expect("websockets");
            assert_eq!(c.listeners[0].protocol, ListenerProtocol::Mqtt);
            assert_eq!(c.listeners[1].protocol, ListenerProtocol::WebSockets);
        } else {
            let (line, message) = ws.expect_err("not built");
            assert_eq!(line, 3);
            assert!(message.contains("--features websockets"), "{message}");
        }
    }

    #[test]
    fn tls_lines() {
        let text = "listener 1883\nlistener 8883\ncertfile /c.pem\nkeyfile /k.pem\n\
                    cafile /ca.pem\nrequire_certificate true\nuse_identity_as_username true\n\
                    crlfile /ca.crl\nuse_subject_as_username true\n";
        if !cfg!(feature = "tls") {
            let (line, message) = parse(text).expect_err("not built");
            assert_eq!(line, 3);
            assert!(
                message.contains("built without the 'tls' feature; rebuild with --features tls"),
                "{message}"
            );
            return;
        }
        let c = parse(text).expect("tls");
        assert!(!c.listeners[0].is_tls());
        let l = &c.listeners[1];
        assert!(l.is_tls());
        assert_eq!(l.keyfile.as_deref(), Some(std::path::Path::new("/k.pem")));
        assert_eq!(l.cafile.as_deref(), Some(std::path::Path::new("/ca.pem")));
        assert!(l.require_certificate && l.use_identity_as_username && l.use_subject_as_username);
        assert_eq!(l.crlfile.as_deref(), Some(std::path::Path::new("/ca.crl")));
        for (text, line, part) in [
            (
                "listener 1\ncertfile /c\nkeyfile /k\ncrlfile /ca.crl\n",
                1,
                "'crlfile' needs 'cafile'",
            ),
            ("certfile /c.pem\n", 0, "default listener"),
            (
                "listener 1\ncertfile /c\n",
                1,
                "'certfile' without 'keyfile'",
            ),
            ("listener 1\nkeyfile /k\n", 1, "without 'certfile'"),
            (
                "listener 1\ncertfile /c\nkeyfile /k\nrequire_certificate true\n",
                1,
                "needs 'cafile'",
            ),
            (
                "listener 1\ncertfile /c\nkeyfile /k\nuse_identity_as_username true\n",
                1,
                "needs 'require_certificate true'",
            ),
            (
                "listener 1\ncertfile /c\nkeyfile /k\nuse_subject_as_username true\n",
                1,
                "'use_subject_as_username true' needs 'require_certificate true'",
            ),
            ("listener 1\nrequire_certificate yes\n", 2, "expected"),
            (
                "listener 1\ncertfile\n",
                2,
                "certfile: expected 'certfile PATH'",
            ),
        ] {
            let (got, message) = parse(text).expect_err(text);
            assert_eq!(got, line, "{text}: {message}");
            assert!(message.contains(part), "{text}: {message}");
        }
    }
}
