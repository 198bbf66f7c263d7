//! TLS towards a bridge's remote (`bridge_cafile`, `bridge_certfile`,
//! `bridge_keyfile`, `bridge_insecure`, `bridge_alpn`, `bridge_tls_version`;
//! cargo feature `tls`): a rustls client session around the bridge's
//! non-blocking socket.
//!
//! The remote's certificate must chain to the CA certificates of
//! `bridge_cafile` and name the host of the address in use (an IP address
//! literal is checked against the certificate's IP addresses); with
//! `bridge_insecure true` only the name check is skipped. As on the server
//! side, rustls is sans-IO: the loop hands it what it read and writes what
//! it produces, so a handshake never blocks the loop; a stalled one meets
//! the bridge's connect timeout (the link stays "connecting" until the
//! handshake is done, and only then sends CONNECT).
//!
//! Without the `tls` feature the types here have no values, and a bridge
//! that asks for TLS is refused when the broker starts.

use crate::bridge::BridgeConfig;
use crate::config::ConfigError;

#[cfg(feature = "tls")]
pub(super) use with_tls::{BridgeTls, ClientTls};
#[cfg(not(feature = "tls"))]
pub(super) use without_tls::{BridgeTls, ClientTls};

/// The TLS set-up of each bridge of `bridges`, in order (`None`: plain
/// TCP), its files read and checked. Errors name the bridge and the file.
pub(super) fn load_all(bridges: &[BridgeConfig]) -> Result<Vec<Option<BridgeTls>>, ConfigError> {
    bridges.iter().map(BridgeTls::load).collect()
}

/// The host part of `host:port` or `[v6]:port`, for the certificate check.
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

#[cfg(feature = "tls")]
mod with_tls {
    use std::io::{self, Read, Write};
    use std::sync::Arc;

    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{
        CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme,
    };
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;

    use super::host_of;
    use crate::bridge::BridgeConfig;
    use crate::config::ConfigError;
    use crate::net::tls::{ca_roots, file_error, protocol_versions, read_certs, read_pem};

    /// A bridge's TLS configuration, shared by its connections.
    pub(in crate::net) struct BridgeTls {
        config: Arc<ClientConfig>,
    }

    /// `bridge_insecure true`: the chain is verified as usual, a name that
    /// does not match the address is accepted.
    #[derive(Debug)]
    struct AnyName(Arc<WebPkiServerVerifier>);

    impl ServerCertVerifier for AnyName {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp_response: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            // The chain is checked before the name: a name error means
            // the chain was good.
            match self.0.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.supported_verify_schemes()
        }
    }

    impl BridgeTls {
        /// Reads and checks the bridge's files (`None`: no `bridge_cafile`,
        /// plain TCP). Errors name the bridge and the file.
        pub(in crate::net) fn load(b: &BridgeConfig) -> Result<Option<BridgeTls>, ConfigError> {
            let Some(cafile) = b.cafile.as_deref().or(b.capath.as_deref()) else {
                return Ok(None);
            };
            let name = &b.name;
            let error = |path: &std::path::Path, e: ConfigError| {
                file_error(path, format!("bridge '{name}': {}", e.message))
            };
            let roots = ca_roots(
                b.cafile.as_deref(),
                b.capath.as_deref(),
                ["bridge_cafile", "bridge_capath"],
            )
            .map_err(|e| {
                let origin = std::path::PathBuf::from(&e.origin);
                error(&origin, e)
            })?;
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| {
                        file_error(cafile, format!("bridge '{name}': bridge_cafile: {e}"))
                    })?;
            let builder = ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(protocol_versions(b.tls13_only))
                .map_err(|e| {
                    file_error(cafile, format!("bridge '{name}': TLS set-up failed: {e}"))
                })?;
            let builder = if b.insecure {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyName(verifier)))
            } else {
                builder.with_webpki_verifier(verifier)
            };
            let config = match (b.certfile.as_deref(), b.keyfile.as_deref()) {
                (Some(certfile), Some(keyfile)) => {
                    let chain =
                        read_certs(certfile, "bridge_certfile").map_err(|e| error(certfile, e))?;
                    let key_pem =
                        read_pem(keyfile, "bridge_keyfile").map_err(|e| error(keyfile, e))?;
                    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                        file_error(
                            keyfile,
                            format!(
                                "bridge '{name}': bridge_keyfile: no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"
                            ),
                        )
                    })?;
                    builder.with_client_auth_cert(chain, key).map_err(|e| {
                        file_error(
                            keyfile,
                            format!(
                                "bridge '{name}': bridge_keyfile does not fit bridge_certfile {}: {e}",
                                certfile.display()
                            ),
                        )
                    })?
                }
                _ => builder.with_no_client_auth(),
            };
            let mut config = config;
            // `bridge_alpn`: offered in the ClientHello; a remote that
            // selects none is accepted (as with OpenSSL, Mosquitto's TLS).
            if let Some(alpn) = &b.alpn {
                config.alpn_protocols = vec![alpn.as_bytes().to_vec()];
            }
            Ok(Some(BridgeTls {
                config: Arc::new(config),
            }))
        }

        /// The TLS side of a new connection to `addr` (`host:port`).
        pub(in crate::net) fn connect(&self, addr: &str) -> Result<ClientTls, String> {
            let host = host_of(addr);
            let name = ServerName::try_from(host.to_owned())
                .map_err(|e| format!("TLS: '{host}' is not a host name or address: {e}"))?;
            let conn = ClientConnection::new(self.config.clone(), name)
                .map_err(|e| format!("TLS set-up failed: {e}"))?;
            Ok(ClientTls { conn, ready: false })
        }
    }

    /// One TLS connection to a remote.
    pub(in crate::net) struct ClientTls {
        conn: ClientConnection,
        /// The handshake's end was reported.
        ready: bool,
    }

    impl ClientTls {
        /// Bytes from the socket; the decrypted ones are appended to
        /// `plain`. `Err`: why the connection ends (an alert may be
        /// waiting to be written).
        pub(in crate::net) fn input(
            &mut self,
            mut data: &[u8],
            plain: &mut Vec<u8>,
        ) -> Result<(), String> {
            while !data.is_empty() {
                match self.conn.read_tls(&mut data) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => return Err(format!("TLS: {e}")),
                }
                let state = self.conn.process_new_packets().map_err(|e| {
                    if self.conn.is_handshaking() {
                        format!("TLS handshake failed: {e}")
                    } else {
                        format!("TLS record refused: {e}")
                    }
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
                    return Err("the remote closed the TLS connection".to_owned());
                }
            }
            Ok(())
        }

        /// The handshake is still going on.
        pub(in crate::net) fn handshaking(&self) -> bool {
            self.conn.is_handshaking()
        }

        /// `true` once, when the handshake has just completed.
        pub(in crate::net) fn just_ready(&mut self) -> bool {
            if self.ready || self.conn.is_handshaking() {
                return false;
            }
            self.ready = true;
            true
        }

        /// Encrypts what it can of `plain`; how many bytes it took.
        pub(in crate::net) fn send(&mut self, plain: &[u8]) -> usize {
            self.conn.writer().write(plain).unwrap_or(0)
        }

        /// Writes what is waiting to `w`, until done or `WouldBlock`.
        pub(in crate::net) fn write_to(&mut self, w: &mut dyn Write) -> io::Result<()> {
            while self.conn.wants_write() {
                if self.conn.write_tls(w)? == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
            }
            Ok(())
        }

        /// Queues close_notify (the bridge ends the connection).
        pub(in crate::net) fn goodbye(&mut self) {
            self.conn.send_close_notify();
        }
    }
}

#[cfg(not(feature = "tls"))]
mod without_tls {
    use std::io::{self, Write};

    use crate::bridge::BridgeConfig;
    use crate::config::ConfigError;

    /// Never made: without the feature no bridge speaks TLS.
    pub(in crate::net) enum BridgeTls {}

    /// Never made.
    pub(in crate::net) enum ClientTls {}

    impl BridgeTls {
        /// Refuses a bridge that asks for TLS (possible through the
        /// embedding API; config files are refused when parsed).
        pub(in crate::net) fn load(b: &BridgeConfig) -> Result<Option<BridgeTls>, ConfigError> {
            if b.is_tls()
                || b.certfile.is_some()
                || b.keyfile.is_some()
                || b.insecure
                || b.tls13_only
            {
                return Err(ConfigError {
                    origin: format!("bridge '{}'", b.name),
                    line: 0,
                    message: "bridge_cafile: boxmq was built without the 'tls' feature; \
                              rebuild with --features tls"
                        .to_owned(),
                });
            }
            Ok(None)
        }

        pub(in crate::net) fn connect(&self, _addr: &str) -> Result<ClientTls, String> {
            match *self {}
        }
    }

    #[allow(clippy::unused_self)]
    impl ClientTls {
        pub(in crate::net) fn input(&mut self, _: &[u8], _: &mut Vec<u8>) -> Result<(), String> {
            match *self {}
        }
        pub(in crate::net) fn handshaking(&self) -> bool {
            match *self {}
        }
        pub(in crate::net) fn just_ready(&mut self) -> bool {
            match *self {}
        }
        pub(in crate::net) fn send(&mut self, _: &[u8]) -> usize {
            match *self {}
        }
        pub(in crate::net) fn write_to(&mut self, _: &mut dyn Write) -> io::Result<()> {
            match *self {}
        }
        pub(in crate::net) fn goodbye(&mut self) {
            match *self {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn host_of_address() {
        assert_eq!(host_of("broker.example:8883"), "broker.example");
        assert_eq!(host_of("127.0.0.1:8883"), "127.0.0.1");
        assert_eq!(host_of("[::1]:8883"), "::1");
        assert_eq!(host_of("localhost"), "localhost");
    }
}
