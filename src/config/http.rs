//! The HTTP status listener's lines (cargo feature `http`):
//! `http_listener PORT [ADDRESS]` (default address 127.0.0.1),
//! `http_require_auth true|false` and `http_bridge_down_grace SECONDS`.
//! Without the feature each of them is refused, naming the feature.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::{count, one, parse_ip, parse_port, shown};

/// Default of `http_bridge_down_grace`, in seconds.
pub const DEFAULT_BRIDGE_DOWN_GRACE: u64 = 60;

/// Default of [`HttpConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 8;

/// Default of [`HttpConfig::max_request_bytes`].
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 8 * 1024;

/// Default of [`HttpConfig::timeout`], in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;

/// Upper bound of `http_bridge_down_grace`: a week.
const MAX_BRIDGE_DOWN_GRACE: u64 = 7 * 24 * 3600;

/// The HTTP status listener (`/health`, `/metrics`, `/status.json`, `/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// Where to listen (`http_listener`); `None`: no HTTP listener (the
    /// default).
    pub listener: Option<SocketAddr>,
    /// Every request needs HTTP basic auth with a user and password of the
    /// `password_file` (`http_require_auth`, default false).
    pub require_auth: bool,
    /// A bridge down longer than this makes `/health` answer 503
    /// (`http_bridge_down_grace`, default 60 s).
    pub bridge_down_grace: Duration,
    /// HTTP connections open at once (default 8); one more is accepted and
    /// closed at once. Each holds at most `max_request_bytes` plus one
    /// response (the status page, about 4 KiB, or the metrics, about
    /// 6 KiB with the store and one bridge, 0.5 KiB per further bridge).
    pub max_connections: usize,
    /// Bytes of a request line and headers (default 8 KiB); a longer
    /// request gets 431 and is closed.
    pub max_request_bytes: usize,
    /// Time from accepting a connection to the end of its request, and
    /// again to the end of its response (default 5 s); a slower client is
    /// closed.
    pub timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listener: None,
            require_auth: false,
            bridge_down_grace: Duration::from_secs(DEFAULT_BRIDGE_DOWN_GRACE),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
        }
    }
}

/// Applies `http_listener`, `http_require_auth` or `http_bridge_down_grace`.
pub(super) fn directive(http: &mut HttpConfig, name: &str, args: &[&str]) -> Result<(), String> {
    if !cfg!(feature = "http") {
        return Err(format!(
            "{name}: boxmq was built without the 'http' feature; rebuild with --features http"
        ));
    }
    match name {
        "http_listener" => {
            const FORM: &str = "expected 'http_listener PORT [ADDRESS]'";
            let (port, addr) = match args {
                [port] => (*port, None),
                [port, addr] => (*port, Some(*addr)),
                _ => return Err(format!("{name}: {FORM}")),
            };
            let port = parse_port(name, port, FORM)?;
            // Loopback unless told otherwise: the page shows who is
            // connected and the metrics what flows.
            let ip = match addr {
                None => IpAddr::V4(Ipv4Addr::LOCALHOST),
                Some(addr) => parse_ip(name, addr)?,
            };
            if let Some(earlier) = http.listener {
                return Err(format!(
                    "{name}: only one HTTP listener is supported ({earlier} is already set)"
                ));
            }
            http.listener = Some(SocketAddr::new(ip, port));
        }
        "http_require_auth" => {
            let form = "expected 'http_require_auth true' or 'http_require_auth false'";
            http.require_auth = match one(name, args, form)? {
                "true" => true,
                "false" => false,
                other => return Err(format!("{name}: '{}': {form}", shown(other))),
            };
        }
        _ => {
            let v = count(
                name,
                args,
                1,
                MAX_BRIDGE_DOWN_GRACE,
                DEFAULT_BRIDGE_DOWN_GRACE,
            )?;
            http.bridge_down_grace = Duration::from_secs(v);
        }
    }
    Ok(())
}

/// Checks the lines fit together once the whole file is read.
pub(super) fn finish(config: &super::Config) -> Result<(), String> {
    if config.http.require_auth && config.password_file.is_none() {
        return Err(
            "http_require_auth true needs a password_file (its users and passwords are checked)"
                .to_owned(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    fn parse(text: &str) -> Result<Config, (usize, String)> {
        Config::parse(text, "t.conf").map_err(|e| (e.line, e.message))
    }

    #[test]
    fn http_lines() {
        let text = "http_listener 8081\n";
        if !cfg!(feature = "http") {
            let (line, message) = parse(text).expect_err("not built");
            assert_eq!(line, 1);
            assert!(
                message.contains("built without the 'http' feature; rebuild with --features http"),
                "{message}"
            );
            return;
        }
        let c = parse(text).expect("http");
        assert_eq!(
            c.http.listener,
            Some("127.0.0.1:8081".parse().expect("addr"))
        );
        assert!(!c.http.require_auth);
        assert_eq!(c.http.bridge_down_grace.as_secs(), 60);
        let c = parse(
            "password_file /p\nhttp_listener 0 0.0.0.0\nhttp_require_auth true\n\
             http_bridge_down_grace 5\n",
        )
        .expect("all lines");
        assert_eq!(c.http.listener, Some("0.0.0.0:0".parse().expect("addr")));
        assert!(c.http.require_auth);
        assert_eq!(c.http.bridge_down_grace.as_secs(), 5);
        for (text, line, part) in [
            (
                "http_listener\n",
                1,
                "expected 'http_listener PORT [ADDRESS]'",
            ),
            ("http_listener 70000\n", 1, "out of range"),
            (
                "http_listener 1 host.example\n",
                1,
                "host names are not resolved",
            ),
            (
                "http_listener 1\nhttp_listener 2\n",
                2,
                "only one HTTP listener",
            ),
            (
                "http_require_auth yes\n",
                1,
                "expected 'http_require_auth true'",
            ),
            ("http_require_auth true\n", 0, "needs a password_file"),
            ("http_bridge_down_grace 0\n", 1, "0 is not accepted"),
        ] {
            let (got, message) = parse(text).expect_err(text);
            assert_eq!(got, line, "{text}: {message}");
            assert!(message.contains(part), "{text}: {message}");
        }
    }
}
