//! The `http` target's property (cargo feature `http`): the status
//! listener's request parser and responder on any bytes a client can send.
//!
//! Input: byte 0 picks the head limit (16 + 32 x byte, 16..8,176 bytes),
//! byte 1 whether basic auth is required, the rest is what the client
//! sends. For every prefix of it, as the bytes could arrive:
//! * `parse` never panics, and a verdict never changes once given: a
//!   complete head parses the same with more bytes after it, and an error
//!   stays an error ("a head that cannot become valid is an error at once");
//! * "need more" never once the prefix reaches the limit;
//! * a parsed method and path are slices of the input, the path starts
//!   with `/` and holds no `?`.
//!
//! For the complete head, `respond` never panics and gives one whole
//! response: a status line, headers ending in a blank line, and
//! `Connection: close`.

use std::time::{Duration, Instant};

use boxmq::Stats;
use boxmq::auth::PasswordFile;
use boxmq::http::{self, Context, Request, RequestError};

/// Longest client input looked at; every prefix of it is parsed.
const MAX_INPUT: usize = 4096;

pub fn check(data: &[u8]) {
    let (Some(&limit), Some(&auth)) = (data.first(), data.get(1)) else {
        return;
    };
    let max = 16 + 32 * usize::from(limit);
    let body = &data[2..data.len().min(2 + MAX_INPUT)];
    let mut verdict: Option<Result<Request<'_>, RequestError>> = None;
    for k in 0..=body.len() {
        let prefix = &body[..k];
        let got = http::request::parse(prefix, max);
        match (&verdict, got) {
            (None, Ok(None)) => {
                assert!(k < max, "need more at {k} bytes with a limit of {max}");
            }
            (None, Ok(Some(r))) => {
                check_request(&r, body);
                verdict = Some(Ok(r));
            }
            (None, Err(e)) => verdict = Some(Err(e)),
            (Some(Ok(before)), Ok(Some(r))) => assert_eq!(*before, r, "changed at {k} bytes"),
            (Some(Err(_)), Err(_)) => {}
            (Some(before), now) => panic!("{before:?} became {now:?} at {k} bytes"),
        }
    }
    let Some(Ok(request)) = verdict else {
        return;
    };
    let users = PasswordFile::new();
    let ctx = Context {
        state: "Running",
        users: (auth & 1 == 1).then_some(&users),
        bridge_down_grace: Duration::from_secs(60),
        now: Instant::now(),
    };
    if let Some(value) = request.authorization {
        let _ = http::request::basic_credentials(value);
    }
    let out = http::respond(&request, &ctx, Stats::default);
    assert!(out.starts_with(b"HTTP/1.1 "), "status line");
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head ending in a blank line");
    let head = std::str::from_utf8(&out[..end]).expect("an ASCII head");
    assert!(
        head.lines()
            .any(|l| l.eq_ignore_ascii_case("connection: close")),
        "Connection: close in {head:?}"
    );
}

fn check_request(r: &Request<'_>, input: &[u8]) {
    let range = input.as_ptr_range();
    for s in [r.method, r.path] {
        let p = s.as_ptr();
        assert!(
            range.start <= p && p <= range.end,
            "{s:?} not from the input"
        );
    }
    assert!(
        r.path.starts_with('/') && !r.path.contains('?'),
        "path {:?}",
        r.path
    );
    assert!(!r.method.is_empty() && r.method.bytes().all(|b| b.is_ascii_uppercase()));
}

/// Seed inputs: the requests a browser, a scraper and a load balancer
/// send, and a few broken ones.
pub fn http_seeds() -> Vec<(String, Vec<u8>)> {
    let with = |limit: u8, auth: u8, req: &[u8]| {
        let mut v = vec![limit, auth];
        v.extend_from_slice(req);
        v
    };
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        (
            "page",
            with(
                255,
                0,
                b"GET / HTTP/1.1\r\nHost: box\r\nUser-Agent: x\r\n\r\n",
            ),
        ),
        (
            "metrics",
            with(
                255,
                0,
                b"GET /metrics HTTP/1.1\r\nAccept: text/plain\r\n\r\n",
            ),
        ),
        (
            "health-head",
            with(255, 0, b"HEAD /health?x=1 HTTP/1.0\r\n\r\n"),
        ),
        (
            "auth",
            with(
                255,
                1,
                b"GET /status.json HTTP/1.1\r\nAuthorization: Basic dTpw\r\n\r\n",
            ),
        ),
        (
            "post",
            with(255, 0, b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"),
        ),
        (
            "too-long",
            with(
                0,
                0,
                b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n",
            ),
        ),
        (
            "bad-header",
            with(255, 0, b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"),
        ),
        (
            "not-http",
            with(255, 0, b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c"),
        ),
    ];
    seeds
        .into_iter()
        .map(|(name, data)| (name.to_owned(), data))
        .collect()
}
