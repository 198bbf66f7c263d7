//! The request line and headers of an HTTP/1.x request (RFC 9112,
//! sections 2 and 3), as far as a status listener needs them: the method,
//! the path and the `Authorization` header. Bodies are never read; every
//! response closes the connection.
//!
//! The parser works on the bytes received so far: "need more bytes" is
//! `Ok(None)`, and a head that cannot become valid is an error at once.

/// Ends the head of a request (RFC 9112, section 2.1).
const HEAD_END: &[u8] = b"\r\n\r\n";
/// The longest method this listener knows (`OPTIONS`); anything longer is
/// refused before the line is complete.
const MAX_METHOD: usize = 7;

/// A parsed request head, borrowing from the read buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method, as sent (`GET`, `HEAD`, ...).
    pub method: &'a str,
    /// The target's path, without its query string.
    pub path: &'a str,
    /// The value of the `Authorization` header, if any.
    pub authorization: Option<&'a str>,
}

/// Why a request head is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Not an HTTP/1.x request head (answer 400).
    Malformed,
    /// The head is longer than the limit (answer 431).
    TooLarge,
}

/// Parses the head at the start of `buf`, which must not grow past
/// `max_bytes`.
///
/// # Errors
/// [`RequestError::Malformed`] for a head that is not HTTP/1.x, checked
/// on the request line as soon as its first bytes arrive;
/// [`RequestError::TooLarge`] when `buf` holds `max_bytes` and no end of
/// head.
pub fn parse(buf: &[u8], max_bytes: usize) -> Result<Option<Request<'_>>, RequestError> {
    let Some(end) = find(buf, HEAD_END) else {
        // A method that is too long or not a token is wrong already.
        let method_part = buf.split(|&b| b == b' ').next().unwrap_or(buf);
        if method_part.len() > MAX_METHOD || !method_part.iter().all(u8::is_ascii_uppercase) {
            return Err(RequestError::Malformed);
        }
        if buf.len() >= max_bytes {
            return Err(RequestError::TooLarge);
        }
        return Ok(None);
    };
    if end + HEAD_END.len() > max_bytes {
        return Err(RequestError::TooLarge);
    }
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| RequestError::Malformed)?;
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::Malformed);
    };
    if method.is_empty()
        || method.len() > MAX_METHOD
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || !matches!(version, "HTTP/1.0" | "HTTP/1.1")
        || !target.starts_with('/')
    {
        return Err(RequestError::Malformed);
    }
    let path = target.split(['?', '#']).next().unwrap_or(target);
    let mut authorization = None;
    for header in lines {
        let Some((name, value)) = header.split_once(':') else {
            return Err(RequestError::Malformed);
        };
        // No whitespace before the colon (RFC 9112, section 5.1).
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(RequestError::Malformed);
        }
        if name.eq_ignore_ascii_case("authorization") {
            authorization = Some(value.trim_matches([' ', '\t']));
        }
    }
    Ok(Some(Request {
        method,
        path,
        authorization,
    }))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The user name and password of a `Basic` authorization value (RFC 7617),
/// or `None` for anything else.
pub fn basic_credentials(value: &str) -> Option<(String, Vec<u8>)> {
    use base64::Engine as _;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = std::str::from_utf8(decoded.get(..colon)?).ok()?.to_owned();
    let password = decoded.get(colon + 1..)?.to_vec();
    Some((user, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 8192;

    #[test]
    fn a_browser_request() {
        let raw = b"GET /metrics?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                    authorization:  Basic dTpw \r\nAccept: */*\r\n\r\n";
        let r = parse(raw, MAX).expect("valid").expect("complete");
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/metrics");
        assert_eq!(r.authorization, Some("Basic dTpw"));
        assert_eq!(
            basic_credentials("Basic dTpw"),
            Some(("u".into(), b"p".to_vec()))
        );
    }

    #[test]
    fn incomplete_at_every_length() {
        let raw = b"GET / HTTP/1.0\r\nHost: x\r\n\r\n";
        for n in 0..raw.len() {
            assert_eq!(parse(&raw[..n], MAX), Ok(None), "{n}");
        }
        assert!(parse(raw, MAX).expect("valid").is_some());
    }

    #[test]
    fn malformed_heads() {
        for raw in [
            &b"get / HTTP/1.1\r\n\r\n"[..],
            b"GET /\r\n\r\n",
            b"GET / HTTP/2\r\n\r\n",
            b"GET x HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"GET / HTTP/1.1\r\n\xff: x\r\n\r\n",
            // Not HTTP at all: refused before any end of head.
            b"\x10\x0c\x00\x04MQTT",
            b"CONNECTED",
        ] {
            assert_eq!(parse(raw, MAX), Err(RequestError::Malformed), "{raw:?}");
        }
    }

    #[test]
    fn too_large() {
        let mut raw = b"GET / HTTP/1.1\r\nX: ".to_vec();
        raw.resize(100, b'a');
        assert_eq!(parse(&raw, 100), Err(RequestError::TooLarge));
        raw.extend_from_slice(HEAD_END);
        assert_eq!(parse(&raw, 100), Err(RequestError::TooLarge));
        assert!(parse(&raw, 200).expect("fits").is_some());
    }

    #[test]
    fn credentials_that_are_not_basic() {
        for v in ["Bearer abc", "Basic !!!", "Basic dXNlcg==", "Basic"] {
            assert_eq!(basic_credentials(v), None, "{v}");
        }
        // An empty password and a colon in the password.
        assert_eq!(basic_credentials("basic dTo="), Some(("u".into(), vec![])));
        assert_eq!(
            basic_credentials("Basic dTpwOnE="),
            Some(("u".into(), b"p:q".to_vec()))
        );
    }
}
