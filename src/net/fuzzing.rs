//! Entry points for the fuzz targets and their corpus replay
//! (`tests/fuzz_support/`, `fuzz/`) into crate-private byte parsers that
//! are default attack surface: the WebSocket framing (`ws.rs`), the TLS
//! listener's read path (`tls.rs`) and its reading of a client
//! certificate's subject (`tls/x509.rs`). Not for applications: they
//! drive one connection's layer with bytes and report what came out.

/// What one WebSocket connection made of the bytes it was given.
#[cfg(feature = "websockets")]
#[derive(Debug, PartialEq, Eq)]
pub struct WsOutcome {
    /// MQTT bytes taken out of data frames.
    pub mqtt: Vec<u8>,
    /// Bytes for the wire: the upgrade answer, pongs, a close frame.
    pub out: Vec<u8>,
    /// How it ended, if it did: (message, a clean close by the peer).
    pub end: Option<(String, bool)>,
}

/// Feeds `chunks` as they would arrive from the socket into a new server
/// side WebSocket connection whose frames carry at most `max_frame` bytes;
/// stops at the first end.
#[cfg(feature = "websockets")]
pub fn ws_feed<'a>(max_frame: usize, chunks: impl IntoIterator<Item = &'a [u8]>) -> WsOutcome {
    let mut ws = super::ws::WsConn::new(max_frame);
    let mut mqtt = Vec::new();
    let mut end = None;
    for chunk in chunks {
        if let Err(e) = ws.input(chunk, &mut mqtt) {
            end = Some((e.message, e.normal));
            break;
        }
    }
    WsOutcome {
        mqtt,
        out: std::mem::take(&mut ws.out),
        end,
    }
}

/// A TLS listener's settings, loaded once, for [`TlsFuzz::feed`].
#[cfg(feature = "tls")]
pub struct TlsFuzz(super::tls::TlsListener);

/// What one TLS connection made of the bytes it was given.
#[cfg(feature = "tls")]
#[derive(Debug)]
pub struct TlsOutcome {
    /// Decrypted bytes handed on to MQTT.
    pub plain: Vec<u8>,
    /// Bytes for the wire (handshake messages, an alert).
    pub wire: Vec<u8>,
    /// Why it ended, if it did.
    pub end: Option<String>,
}

#[cfg(feature = "tls")]
impl TlsFuzz {
    /// A listener with this certificate chain and key (PEM files).
    ///
    /// # Errors
    /// The files cannot be read or do not fit together.
    pub fn load(
        certfile: &std::path::Path,
        keyfile: &std::path::Path,
    ) -> Result<TlsFuzz, crate::ConfigError> {
        let mut l = crate::ListenerConfig::new(([127, 0, 0, 1], 0).into());
        l.certfile = Some(certfile.to_owned());
        l.keyfile = Some(keyfile.to_owned());
        match super::tls::TlsListener::load(&l)? {
            Some(listener) => Ok(TlsFuzz(listener)),
            None => Err(crate::ConfigError {
                origin: certfile.display().to_string(),
                line: 0,
                message: "no TLS listener".to_owned(),
            }),
        }
    }

    /// Feeds `chunks` into a newly accepted connection, writing out what
    /// it answers after each, until the first end.
    pub fn feed<'a>(&self, chunks: impl IntoIterator<Item = &'a [u8]>) -> TlsOutcome {
        let mut plain = Vec::new();
        let mut wire = Vec::new();
        let mut conn = match self.0.accept() {
            Ok(c) => c,
            Err(e) => {
                return TlsOutcome {
                    plain,
                    wire,
                    end: Some(e.to_string()),
                };
            }
        };
        let mut end = None;
        for chunk in chunks {
            let result = conn.input(chunk, &mut plain);
            let _ = conn.write_to(&mut wire);
            if let Err(e) = result {
                end = Some(e.message);
                break;
            }
        }
        TlsOutcome { plain, wire, end }
    }
}

/// A DER certificate's subject as `use_identity_as_username` and
/// `use_subject_as_username` take it: (first CN, whole subject or why
/// not).
#[cfg(feature = "tls")]
pub fn x509_subject(cert: &[u8]) -> (Option<String>, Result<String, &'static str>) {
    (
        super::tls::subject_cn(cert),
        super::tls::subject_rfc2253(cert),
    )
}
