//! Without the `http` feature: no HTTP listener, and the loop's hooks for
//! it do nothing (see `http.rs` for the real ones).

use std::time::Instant;

use mio::Token;

use super::Server;
use crate::auth::Auth;

/// Stands for the HTTP listener, which this build cannot have.
pub(super) enum HttpServer {}

/// No token is the HTTP listener's.
pub(super) fn owns(_: Token) -> bool {
    false
}

impl Server {
    pub(super) fn http_event(&mut self, _: Token, _: Instant) {}

    pub(super) fn http_deadline(&self) -> Option<Instant> {
        match self.http {
            Some(ref never) => match *never {},
            None => None,
        }
    }

    pub(super) fn http_tick(&mut self, _: Instant) {}

    pub(super) fn http_reload(&mut self, _: &Auth) {}

    pub(super) fn http_close_all(&mut self) {}
}
