//! TLS listeners (cargo feature `tls`): rustls with the ring provider,
//! TLS 1.2 and 1.3 only (1.3 alone with `tls_version tlsv1.3`). Certificates and keys come from PEM files
//! (`certfile`, `keyfile`, `cafile`); client certificates are verified by
//! rustls' WebPKI verifier when `cafile` is set, and required with
//! `require_certificate true`; one that `crlfile` revokes is refused.
//! With `use_identity_as_username` the subject CN of the verified client
//! certificate is the client's user name, with `use_subject_as_username`
//! its whole subject, as Mosquitto writes it (`x509.rs`).
//!
//! rustls is sans-IO as well: the loop hands it the bytes it read and
//! writes what it produces, so a handshake never blocks the loop, and a
//! peer stalling mid-handshake meets the core's CONNECT timeout.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use crate::config::{ConfigError, ListenerConfig};

mod x509;
pub(crate) use x509::{subject_cn, subject_rfc2253};

/// Largest PEM file read (a chain of a few certificates is a few KiB).
const MAX_PEM_FILE: u64 = 1024 * 1024;

/// TLS 1.3 alone (`tls_version tlsv1.3`).
static TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
/// TLS 1.3 and 1.2 (the default, `tls_version tlsv1.2`).
static TLS13_AND_12: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The TLS versions offered: `tls_version tlsv1.3` (`only13`) leaves
/// TLS 1.2 out, as Mosquitto's minimum version does.
pub(super) fn protocol_versions(
    only13: bool,
) -> &'static [&'static rustls::SupportedProtocolVersion] {
    if only13 { TLS13_ONLY } else { TLS13_AND_12 }
}

/// What a TLS listener needs for each connection it accepts.
#[derive(Clone)]
pub(crate) struct TlsListener {
    config: Arc<ServerConfig>,
    /// Where a client's user name comes from.
    identity: Identity,
}

/// A user name taken from the verified client certificate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Identity {
    /// The CONNECT's own.
    None,
    /// The subject's first CN (`use_identity_as_username`).
    CommonName,
    /// The whole subject (`use_subject_as_username`).
    Subject,
}

pub(super) fn file_error(path: &Path, message: String) -> ConfigError {
    ConfigError {
        origin: path.display().to_string(),
        line: 0,
        message,
    }
}

pub(super) fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, ConfigError> {
    let file = std::fs::File::open(path)
        .map_err(|e| file_error(path, format!("{what}: cannot open: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| file_error(path, format!("{what}: cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_PEM_FILE {
        return Err(file_error(
            path,
            format!("{what}: larger than {MAX_PEM_FILE} bytes"),
        ));
    }
    Ok(bytes)
}

pub(super) fn read_certs(
    path: &Path,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = read_pem(path, what)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(path, format!("{what}: not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(
            path,
            format!("{what}: no PEM certificate (BEGIN CERTIFICATE) in the file"),
        ));
    }
    Ok(certs)
}

/// Files read from a `capath` directory at most (`/etc/ssl/certs` on
/// Debian holds about 300 entries, most of them links).
const MAX_CAPATH_FILES: usize = 4096;

/// The CA certificates of `cafile` and of every file in the directory
/// `capath` (`what` names the two lines in messages, e.g. `cafile` /
/// `capath`). A file of `capath` that holds no PEM certificate, or one
/// rustls cannot use, is skipped, as OpenSSL skips what it cannot parse in
/// such a directory (OpenSSL finds certificates by hashed names; boxmq
/// reads them all, so a plain directory of `.pem` files works as well).
pub(super) fn ca_roots(
    cafile: Option<&Path>,
    capath: Option<&Path>,
    what: [&str; 2],
) -> Result<RootCertStore, ConfigError> {
    let [file_line, dir_line] = what;
    let mut roots = RootCertStore::empty();
    if let Some(cafile) = cafile {
        for cert in read_certs(cafile, file_line)? {
            roots.add(cert).map_err(|e| {
                file_error(cafile, format!("{file_line}: unusable CA certificate: {e}"))
            })?;
        }
    }
    let Some(dir) = capath else {
        return Ok(roots);
    };
    let entries = std::fs::read_dir(dir)
        .map_err(|e| file_error(dir, format!("{dir_line}: cannot read the directory: {e}")))?;
    let mut paths: Vec<std::path::PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .take(MAX_CAPATH_FILES)
        .collect();
    paths.sort();
    let (mut added, mut skipped) = (0, 0);
    for path in &paths {
        let Ok(pem) = read_pem(path, dir_line) else {
            skipped += 1;
            continue;
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .filter_map(Result::ok)
            .collect();
        if certs.is_empty() {
            skipped += 1;
            continue;
        }
        let (ok, bad) = roots.add_parsable_certificates(certs);
        added += ok;
        skipped += bad;
    }
    if added == 0 {
        return Err(file_error(
            dir,
            format!(
                "{dir_line}: no usable PEM CA certificate in the directory ({} files read)",
                paths.len()
            ),
        ));
    }
    log::debug!(
        "{dir_line} {}: {added} CA certificates from {} files ({skipped} skipped)",
        dir.display(),
        paths.len()
    );
    Ok(roots)
}

/// The PEM certificate revocation lists in `path` (`crlfile`).
fn read_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, ConfigError> {
    let pem = read_pem(path, "crlfile")?;
    let crls: Vec<CertificateRevocationListDer<'static>> =
        CertificateRevocationListDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| file_error(path, format!("crlfile: not valid PEM: {e}")))?;
    if crls.is_empty() {
        return Err(file_error(
            path,
            "crlfile: no PEM revocation list (BEGIN X509 CRL) in the file".to_owned(),
        ));
    }
    Ok(crls)
}

impl TlsListener {
    /// Reads and checks a listener's files. Errors name the file.
    pub(crate) fn load(l: &ListenerConfig) -> Result<Option<TlsListener>, ConfigError> {
        let (Some(certfile), Some(keyfile)) = (l.certfile.as_deref(), l.keyfile.as_deref()) else {
            return Ok(None);
        };
        let chain = read_certs(certfile, "certfile")?;
        let key_pem = read_pem(keyfile, "keyfile")?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            file_error(
                keyfile,
                format!("keyfile: no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
            )
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(protocol_versions(l.tls13_only))
            .map_err(|e| file_error(certfile, format!("TLS set-up failed: {e}")))?;
        let ca = l.cafile.as_deref().or(l.capath.as_deref());
        let builder = match ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let roots = ca_roots(
                    l.cafile.as_deref(),
                    l.capath.as_deref(),
                    ["cafile", "capath"],
                )?;
                let mut verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                if let Some(crlfile) = l.crlfile.as_deref() {
                    // As OpenSSL does for Mosquitto: the client's own
                    // certificate is looked up, its issuer must have a
                    // list in the file, and an expired list refuses.
                    verifier = verifier
                        .with_crls(read_crls(crlfile)?)
                        .only_check_end_entity_revocation()
                        .enforce_revocation_expiration();
                }
                if !l.require_certificate {
                    verifier = verifier.allow_unauthenticated();
                }
                let verifier = verifier
                    .build()
                    .map_err(|e| file_error(ca, format!("cafile/capath: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_single_cert(chain, key).map_err(|e| {
            file_error(
                keyfile,
                format!("keyfile does not fit certfile {}: {e}", certfile.display()),
            )
        })?;
        Ok(Some(TlsListener {
            config: Arc::new(config),
            // As in Mosquitto, the CN wins when both lines are set.
            identity: if l.use_identity_as_username {
                Identity::CommonName
            } else if l.use_subject_as_username {
                Identity::Subject
            } else {
                Identity::None
            },
        }))
    }

    /// The TLS side of a new connection.
    pub(crate) fn accept(&self) -> io::Result<TlsConn> {
        let conn = ServerConnection::new(self.config.clone()).map_err(io::Error::other)?;
        Ok(TlsConn {
            conn,
            identity: self.identity,
        })
    }
}

/// Why a TLS connection ended.
pub(crate) struct TlsEnd {
    /// For the log line.
    pub message: String,
    /// The peer closed cleanly (close_notify).
    pub normal: bool,
}

/// One TLS connection, server side.
pub(crate) struct TlsConn {
    conn: ServerConnection,
    /// The user name from the client certificate, still to be handed to
    /// the core (`Identity::None` once done).
    identity: Identity,
}

impl TlsConn {
    /// Bytes from the socket; the decrypted ones are appended to `plain`.
    /// On `Err` an alert may be waiting to be written.
    pub(crate) fn input(&mut self, mut data: &[u8], plain: &mut Vec<u8>) -> Result<(), TlsEnd> {
        while !data.is_empty() {
            match self.conn.read_tls(&mut data) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    return Err(TlsEnd {
                        message: format!("TLS: {e}"),
                        normal: false,
                    });
                }
            }
            let state = self.conn.process_new_packets().map_err(|e| TlsEnd {
                message: format!("TLS handshake or record refused: {e}"),
                normal: false,
            })?;
            let n = state.plaintext_bytes_to_read();
            if n > 0 {
                let start = plain.len();
                plain.resize(start + n, 0);
                let got = self
                    .conn
                    .reader()
                    .read(plain.get_mut(start..).unwrap_or_default())
                    .unwrap_or(0);
                plain.truncate(start + got);
            }
            if state.peer_has_closed() {
                return Err(TlsEnd {
                    message: "TLS closed by the client".to_owned(),
                    normal: true,
                });
            }
        }
        Ok(())
    }

    /// Once, after the handshake with `use_identity_as_username` or
    /// `use_subject_as_username`: the verified client certificate's
    /// subject CN or whole subject (`Err`: why there is none).
    pub(crate) fn take_identity(&mut self) -> Option<Result<String, String>> {
        if self.identity == Identity::None || self.conn.is_handshaking() {
            return None;
        }
        let what = std::mem::replace(&mut self.identity, Identity::None);
        let Some(cert) = self.conn.peer_certificates().and_then(|c| c.first()) else {
            return Some(Err("no client certificate to take a user name from".into()));
        };
        Some(match what {
            Identity::CommonName => subject_cn(cert.as_ref()).ok_or_else(|| {
                "the client certificate has no subject CN to use as user name".into()
            }),
            _ => subject_rfc2253(cert.as_ref()).map_err(Into::into),
        })
    }

    /// Encrypts what it can of `plain` (rustls bounds its buffer); returns
    /// how many bytes it took.
    pub(crate) fn send(&mut self, plain: &[u8]) -> usize {
        self.conn.writer().write(plain).unwrap_or(0)
    }

    /// Bytes for the wire are waiting.
    pub(crate) fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Writes what is waiting to `w`, until done or `WouldBlock`.
    pub(crate) fn write_to(&mut self, w: &mut dyn Write) -> io::Result<()> {
        while self.conn.wants_write() {
            if self.conn.write_tls(w)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// Queues close_notify (the broker ends the connection).
    pub(crate) fn goodbye(&mut self) {
        self.conn.send_close_notify();
    }
}
