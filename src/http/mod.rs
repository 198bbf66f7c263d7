//! The HTTP status listener's protocol side (cargo feature `http`): no
//! sockets here. The event loop (`net/http.rs`) reads request heads, hands
//! them to [`respond`] with the broker's [`BrokerStats`], and writes back what it
//! returns.
//!
//! * [`request`]: the request line and headers (RFC 9112), and basic auth.
//! * [`health`]: the verdict of `/health`, also for embedders.
//! * `metrics`: `/metrics`, the Prometheus text format 0.0.4.
//! * `json`: `/health` and `/status.json` bodies.
//! * `page`: `/`, one self-contained HTML page that fetches `/status.json`.
//!
//! Every response closes its connection (`Connection: close`): a status
//! page and a scraper make a request every few seconds, and one request per
//! connection keeps the connection's state a single buffer.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::auth::PasswordFile;
use crate::stats::BrokerStats;

mod json;
mod metrics;
mod page;
pub mod request;

pub use request::{Request, RequestError};

/// The verdict of `/health` (see [`health`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// Everything works: `/health` answers 200.
    pub healthy: bool,
    /// What does not, one line each (`/health` answers 503 with them).
    pub reasons: Vec<String>,
}

/// Judges the broker's health from its figures: unhealthy when the store
/// is not writing (a failed commit or snapshot, a full disk), or a bridge
/// has been without its remote for longer than `bridge_down_grace` at
/// `now`.
///
/// Embedders get the same verdict from [`crate::Handle::stats`]:
///
/// ```
/// # use std::time::{Duration, Instant};
/// let stats = boxmq::Stats::default();
/// assert!(boxmq::http::health(&stats, Duration::from_secs(60), Instant::now()).healthy);
/// ```
pub fn health(stats: &BrokerStats, bridge_down_grace: Duration, now: Instant) -> Health {
    let mut reasons = Vec::new();
    if let Some(store) = &stats.store {
        if let Some(why) = &store.failing {
            if store.disk_full {
                reasons.push(format!("store: disk full ({why})"));
            } else {
                reasons.push(format!("store: {why}"));
            }
        }
    }
    for b in &stats.bridges {
        let Some(since) = b.down_since else { continue };
        let down = now.saturating_duration_since(since);
        if down > bridge_down_grace {
            let mut line = format!("bridge {}: down for {} s", b.name, down.as_secs());
            if let Some(e) = &b.last_error {
                let _ = write!(line, " ({e})");
            }
            reasons.push(line);
        }
    }
    Health {
        healthy: reasons.is_empty(),
        reasons,
    }
}

/// What [`respond`] needs besides the request and the figures.
pub struct Context<'a> {
    /// The broker's state as `/health` names it (`Running` while the loop
    /// serves).
    pub state: &'a str,
    /// Users and passwords every request must prove, when basic auth is
    /// required.
    pub users: Option<&'a PasswordFile>,
    /// See [`crate::config::HttpConfig::bridge_down_grace`].
    pub bridge_down_grace: Duration,
    /// The time now (bridges' down time).
    pub now: Instant,
}

/// HTTP status codes this listener answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// 200 OK.
    Ok,
    /// 400 Bad Request.
    BadRequest,
    /// 401 Unauthorized (with a `WWW-Authenticate: Basic` challenge).
    Unauthorized,
    /// 404 Not Found.
    NotFound,
    /// 405 Method Not Allowed (only GET and HEAD are served).
    MethodNotAllowed,
    /// 408 Request Timeout.
    RequestTimeout,
    /// 431 Request Header Fields Too Large.
    TooLarge,
    /// 503 Service Unavailable (`/health` of an unhealthy broker).
    Unavailable,
}

impl Status {
    /// The code and reason phrase of the status line.
    pub fn line(self) -> &'static str {
        match self {
            Status::Ok => "200 OK",
            Status::BadRequest => "400 Bad Request",
            Status::Unauthorized => "401 Unauthorized",
            Status::NotFound => "404 Not Found",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::RequestTimeout => "408 Request Timeout",
            Status::TooLarge => "431 Request Header Fields Too Large",
            Status::Unavailable => "503 Service Unavailable",
        }
    }
}

/// The content types served.
const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=utf-8";
/// The Prometheus text exposition format, version 0.0.4.
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The page runs its own inline script and style and talks to this server
/// only.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
                           style-src 'unsafe-inline'; connect-src 'self'";

/// A whole response: status line, headers and (but for HEAD) body.
pub fn error_response(status: Status) -> Vec<u8> {
    let body = format!("{}\n", status.line());
    encode(status, TEXT, &[], body.as_bytes(), true)
}

/// The response to `request`, from the broker's `stats` (a closure, so a
/// refused request costs no figures).
pub fn respond(
    request: &Request<'_>,
    ctx: &Context<'_>,
    stats: impl FnOnce() -> BrokerStats,
) -> Vec<u8> {
    let with_body = match request.method {
        "GET" => true,
        "HEAD" => false,
        _ => {
            return encode(
                Status::MethodNotAllowed,
                TEXT,
                &[("Allow", "GET, HEAD")],
                b"405 Method Not Allowed\n",
                true,
            );
        }
    };
    if let Some(users) = ctx.users {
        let ok = request
            .authorization
            .and_then(request::basic_credentials)
            .is_some_and(|(user, password)| users.check(&user, &password));
        if !ok {
            return encode(
                Status::Unauthorized,
                TEXT,
                &[(
                    "WWW-Authenticate",
                    "Basic realm=\"boxmq\", charset=\"UTF-8\"",
                )],
                b"401 Unauthorized\n",
                with_body,
            );
        }
    }
    let (status, kind, extra, body): (Status, &str, &[(&str, &str)], Vec<u8>) = match request.path {
        "/health" => {
            let stats = stats();
            let verdict = health(&stats, ctx.bridge_down_grace, ctx.now);
            let status = if verdict.healthy {
                Status::Ok
            } else {
                Status::Unavailable
            };
            let body = json::health(ctx.state, &stats, &verdict);
            (status, JSON, &[], body.into_bytes())
        }
        "/status.json" => {
            let stats = stats();
            let verdict = health(&stats, ctx.bridge_down_grace, ctx.now);
            let body = json::status(ctx.state, &stats, &verdict, ctx.now);
            (Status::Ok, JSON, &[], body.into_bytes())
        }
        "/metrics" => {
            let stats = stats();
            let verdict = health(&stats, ctx.bridge_down_grace, ctx.now);
            let body = metrics::render(&stats, &verdict);
            (Status::Ok, PROMETHEUS, &[], body.into_bytes())
        }
        "/" | "/index.html" => (
            Status::Ok,
            HTML,
            &[("Content-Security-Policy", PAGE_POLICY)],
            page::PAGE.as_bytes().to_vec(),
        ),
        _ => (Status::NotFound, TEXT, &[], b"404 Not Found\n".to_vec()),
    };
    encode(status, kind, extra, &body, with_body)
}

/// Status line, the usual headers, `extra` headers, body (`Content-Length`
/// is the body's even for HEAD, as RFC 9110 section 9.3.2 allows).
fn encode(
    status: Status,
    kind: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    with_body: bool,
) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
         Connection: close\r\n",
        status.line(),
        body.len()
    );
    for (name, value) in extra {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if with_body {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests;
