//! Authentication and authorization, compatible with Mosquitto's files.
//!
//! * [`passwd`]: Mosquitto's password file (`password_file`), `$6$` (salted
//!   SHA-512) and `$7$` (PBKDF2-HMAC-SHA512) hashes.
//! * [`acl`]: Mosquitto's ACL file (`acl_file`): `user`, `topic`, `pattern`
//!   lines with `read`, `write`, `readwrite` and `deny`.
//! * [`passwd_cli`]: `boxmq passwd`, a stand-in for `mosquitto_passwd`.
//! * [`Auth`]: the facade the broker core asks at CONNECT, PUBLISH,
//!   SUBSCRIBE and delivery time.
//!
//! # Connect semantics
//!
//! [`Auth::authenticate`] follows Mosquitto 2.0.11's built-in security,
//! checked against the real broker:
//!
//! | username | password file | result |
//! | --- | --- | --- |
//! | none | any | allowed iff `allow_anonymous`, else [`AuthResult::NotAuthorized`] |
//! | given | configured | allowed iff the user exists and the password matches, whatever `allow_anonymous` says; else [`AuthResult::BadCredentials`] |
//! | given | none | allowed iff `allow_anonymous` (the username is *not* verified), else [`AuthResult::NotAuthorized`] |
//!
//! A username given without a password file is taken at its word: it selects
//! that user's ACL section. That is what Mosquitto does too; configure a
//! password file whenever the ACL has `user` sections that matter.
//!
//! Mosquitto 2.0.11 answers every refusal with CONNACK 5 ("not authorised",
//! MQTT 3.1.1) or reason code 0x87 ("Not authorized", MQTT 5.0). boxmq tells
//! the two cases apart so the core can answer a wrong password with 4 / 0x86
//! ("bad user name or password"); see [`AuthResult`].

use std::fmt;
use std::path::Path;

pub mod acl;
pub mod passwd;
pub mod passwd_cli;

pub use acl::{Access, Acl, SubscribeDecision};
pub use passwd::PasswordFile;

/// A password or ACL file that cannot be read or has a malformed line.
///
/// Displays as `origin:line: message`, or `origin: message` when the problem
/// is not on one line (`line == 0`, such as a file that cannot be opened).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthFileError {
    /// Where the text came from: normally the file's path.
    pub origin: String,
    /// 1-based line number, or 0 for the whole file.
    pub line: usize,
    /// What is wrong, in one line.
    pub message: String,
}

impl AuthFileError {
    /// An error on one line (1-based) of `origin`.
    pub fn new(origin: &str, line: usize, message: impl Into<String>) -> Self {
        AuthFileError {
            origin: origin.to_owned(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for AuthFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}:{}: {}", self.origin, self.line, self.message)
        }
    }
}

impl std::error::Error for AuthFileError {}

/// Read a whole file as UTF-8 text; an error names the file, and the line for
/// invalid UTF-8.
pub(crate) fn read_text(path: &Path) -> Result<String, AuthFileError> {
    let origin = path.display().to_string();
    let bytes = std::fs::read(path)
        .map_err(|e| AuthFileError::new(&origin, 0, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..valid]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        AuthFileError::new(&origin, line, "not valid UTF-8")
    })
}

/// The outcome of [`Auth::authenticate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthResult {
    /// The client may connect.
    Allowed,
    /// A username was checked against the password file and the user is
    /// unknown, the password is wrong, or no password was sent. Suggested
    /// answer: CONNACK 0x04 (3.1.1) / reason code 0x86 (5.0); Mosquitto sends
    /// 0x05 / 0x87 here.
    BadCredentials,
    /// Anonymous access (no username, or a username with no password file to
    /// check it against) while `allow_anonymous` is false. Answer: CONNACK
    /// 0x05 (3.1.1) / reason code 0x87 (5.0).
    NotAuthorized,
}

/// Authentication and authorization state for the broker: the loaded files
/// and `allow_anonymous`.
///
/// Cheap to query; build a new one on SIGHUP with [`Auth::load`] and swap it
/// in only when that succeeds.
#[derive(Clone, Debug)]
pub struct Auth {
    passwords: Option<PasswordFile>,
    acl: Option<Acl>,
    allow_anonymous: bool,
    /// Mosquitto's `per_listener_settings true`: each listener's own
    /// rules, by listener index (see [`Auth::for_listener`]).
    listeners: Vec<Auth>,
    /// With `listeners`: the rules for a client of no known listener
    /// (nothing allowed).
    no_listener: Option<Box<Auth>>,
}

impl Auth {
    /// An `Auth` from already parsed files. `None` for the password file means
    /// usernames are not verified; `None` for the ACL means every client may
    /// publish and subscribe to everything.
    pub fn new(passwords: Option<PasswordFile>, acl: Option<Acl>, allow_anonymous: bool) -> Self {
        Auth {
            passwords,
            acl,
            allow_anonymous,
            listeners: Vec::new(),
            no_listener: None,
        }
    }

    /// Mosquitto's `per_listener_settings true`: `listeners[i]` decides
    /// for the clients of listener `i`, this `Auth` only where no listener
    /// applies (the HTTP status listener's basic auth). A session whose
    /// listener is not known (restored from disk, its client not back
    /// yet) may do nothing, as in Mosquitto.
    pub fn with_listeners(mut self, listeners: Vec<Auth>) -> Auth {
        self.listeners = listeners;
        self.no_listener = Some(Box::new(Auth::new(None, Some(Acl::default()), false)));
        self
    }

    /// The rules for a client of listener `index` (`None`: not known).
    /// Without per-listener rules, this `Auth` itself.
    pub fn for_listener(&self, index: Option<u16>) -> &Auth {
        let Some(nobody) = self.no_listener.as_deref() else {
            return self;
        };
        index
            .and_then(|i| self.listeners.get(usize::from(i)))
            .unwrap_or(nobody)
    }

    /// Load the configured files. Any unreadable or malformed file is an
    /// error naming the file and line; at SIGHUP the caller then keeps its old
    /// `Auth`.
    pub fn load(
        password_file: Option<&Path>,
        acl_file: Option<&Path>,
        allow_anonymous: bool,
    ) -> Result<Auth, AuthFileError> {
        let passwords = password_file.map(PasswordFile::load).transpose()?;
        let acl = acl_file.map(Acl::load).transpose()?;
        Ok(Auth::new(passwords, acl, allow_anonymous))
    }

    /// The password file, if one is configured.
    pub fn passwords(&self) -> Option<&PasswordFile> {
        self.passwords.as_ref()
    }

    /// The ACL, if one is configured.
    pub fn acl(&self) -> Option<&Acl> {
        self.acl.as_ref()
    }

    /// Whether clients without a verified username may connect.
    pub fn allow_anonymous(&self) -> bool {
        self.allow_anonymous
    }

    /// Decide a CONNECT from its username and password fields. See the
    /// [module documentation](self) for the table.
    ///
    /// With a password file this costs one password hash, whether or not the
    /// user exists (about a millisecond for the default `$7$` entries).
    pub fn authenticate(&self, username: Option<&str>, password: Option<&[u8]>) -> AuthResult {
        match (username, &self.passwords) {
            (None, _) => self.anonymous(),
            (Some(user), Some(file)) => {
                // No password: still hash something so the answer takes as
                // long as for a wrong one.
                let ok = file.check(user, password.unwrap_or(b"")) && password.is_some();
                if ok {
                    AuthResult::Allowed
                } else {
                    AuthResult::BadCredentials
                }
            }
            (Some(_), None) => self.anonymous(),
        }
    }

    fn anonymous(&self) -> AuthResult {
        if self.allow_anonymous {
            AuthResult::Allowed
        } else {
            AuthResult::NotAuthorized
        }
    }

    /// May this client publish to the topic name `topic`?
    pub fn may_publish(&self, username: Option<&str>, client_id: &str, topic: &str) -> bool {
        self.acl
            .as_ref()
            .is_none_or(|acl| acl.check(username, client_id, topic, Access::Write))
    }

    /// May a message on the topic name `topic` be delivered to this client?
    /// Ask for every delivery (including retained messages sent on
    /// subscribe) unless [`Auth::subscribe_decision`] said
    /// [`SubscribeDecision::Full`].
    pub fn may_receive(&self, username: Option<&str>, client_id: &str, topic: &str) -> bool {
        self.acl
            .as_ref()
            .is_none_or(|acl| acl.check(username, client_id, topic, Access::Read))
    }

    /// May this client subscribe to `filter`? `false` means no message could
    /// ever be delivered through it; see [`Acl::subscribe_decision`].
    pub fn may_subscribe(&self, username: Option<&str>, client_id: &str, filter: &str) -> bool {
        self.subscribe_decision(username, client_id, filter) != SubscribeDecision::Denied
    }

    /// The detailed answer behind [`Auth::may_subscribe`]:
    /// [`SubscribeDecision::Full`] when there is no ACL.
    pub fn subscribe_decision(
        &self,
        username: Option<&str>,
        client_id: &str,
        filter: &str,
    ) -> SubscribeDecision {
        match &self.acl {
            None => SubscribeDecision::Full,
            Some(acl) => acl.subscribe_decision(username, client_id, filter),
        }
    }
}

#[cfg(test)]
mod tests;
