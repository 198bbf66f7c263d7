//! Binding and attaching the HTTP status listener (`http_listener`,
//! [`super::BrokerBuilder::http_listener`]): bound on the calling thread
//! with the MQTT listeners, served by the loop (`net/http.rs`).

use std::net::TcpListener;

use super::BrokerError;
use crate::auth::Auth;
use crate::config::{Config, ConfigError};
use crate::net::Server;

/// Binds the HTTP listener of `config`, if it has one; warns when it is
/// reachable from other hosts without basic auth, as for MQTT listeners
/// with anonymous access.
///
/// # Errors
/// [`BrokerError::Bind`] when the address cannot be bound;
/// [`BrokerError::Config`] when this build has no `http` feature.
pub(super) fn bind(config: &Config) -> Result<Option<TcpListener>, BrokerError> {
    let Some(addr) = config.http.listener else {
        return Ok(None);
    };
    if !cfg!(feature = "http") {
        return Err(BrokerError::Config(ConfigError {
            origin: "http_listener".to_owned(),
            line: 0,
            message: "boxmq was built without the 'http' feature; rebuild with --features http"
                .to_owned(),
        }));
    }
    let listener = TcpListener::bind(addr).map_err(|source| BrokerError::Bind { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    if !bound.ip().is_loopback() && !config.http.require_auth {
        log::warn!(
            "HTTP status on {bound} without http_require_auth: any device that reaches this address can read the broker's figures"
        );
    }
    log::info!("boxmq HTTP status on http://{bound}/");
    Ok(Some(listener))
}

/// Hands the bound HTTP listener to the loop, with the access rules whose
/// password file basic auth checks.
///
/// # Errors
/// When it cannot be registered.
#[cfg(feature = "http")]
pub(super) fn attach(
    server: &mut Server,
    listener: Option<(TcpListener, Auth)>,
    config: &Config,
) -> std::io::Result<()> {
    match listener {
        Some((l, auth)) => server.attach_http(l, &config.http, &auth),
        None => Ok(()),
    }
}

/// Without the `http` feature [`bind`] returns no listener.
#[cfg(not(feature = "http"))]
pub(super) fn attach(
    _: &mut Server,
    _: Option<(TcpListener, Auth)>,
    _: &Config,
) -> std::io::Result<()> {
    Ok(())
}
