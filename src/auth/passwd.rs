//! Mosquitto's password file.
//!
//! One entry a line, `username:hash`, where the hash is one of
//!
//! * `$7$<iterations>$<salt>$<hash>`: PBKDF2-HMAC-SHA512 of the password with
//!   the salt, `iterations` rounds, 64 bytes of output. What
//!   `mosquitto_passwd` 2.x writes by default, with 101 iterations; what
//!   [`PasswordFile::set`] writes.
//! * `$6$<salt>$<hash>`: SHA-512 of the password followed by the salt. Written
//!   by Mosquitto 1.x and by `mosquitto_passwd -H sha512`.
//!
//! Salt and hash are standard base64 (with `+`, `/` and `=` padding); the salt
//! is 12 bytes and the hash 64 bytes, and Mosquitto rejects any other length,
//! so boxmq does too.
//!
//! Blank lines and lines starting with `#` are kept as they are. Where
//! Mosquitto logs and skips a bad line (no `:`, a plain-text password, a
//! broken hash), boxmq refuses the whole file and names the line: a
//! half-loaded password file is a security surprise. A username listed twice
//! is an error too.
//!
//! The username is the text before the first `:` and the hash the text after
//! it, both trimmed of spaces and tabs, as Mosquitto does.
//!
//! Passwords are compared as bytes. Mosquitto hashes the client's password
//! only up to its first NUL byte; boxmq hashes all of it, so a password with a
//! NUL in it never matches a hash made by `mosquitto_passwd` (which cannot
//! make one).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use super::AuthFileError;

/// Iterations `mosquitto_passwd` 2.0 uses for `$7$`, and so does boxmq.
pub const DEFAULT_ITERATIONS: u32 = 101;

/// The most `$7$` iterations accepted in a file: each check runs this many
/// HMAC pairs on the broker's only thread, so an absurd count is refused at
/// load time rather than stalling every CONNECT.
pub const MAX_ITERATIONS: u32 = 10_000_000;

/// Salt length in bytes, as Mosquitto requires.
pub const SALT_LEN: usize = 12;

/// Hash length in bytes (SHA-512 output), as Mosquitto requires.
pub const HASH_LEN: usize = 64;

/// Decoding accepts the salt and hash with or without `=` padding.
const B64_DECODE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Encoding writes padding, like OpenSSL (and so `mosquitto_passwd`).
const B64_ENCODE: GeneralPurpose = general_purpose::STANDARD;

/// A decoded password hash.
#[derive(Clone, PartialEq, Eq)]
enum Hash {
    /// `$6$`: SHA-512(password || salt).
    Sha512 {
        salt: [u8; SALT_LEN],
        hash: [u8; HASH_LEN],
    },
    /// `$7$`: PBKDF2-HMAC-SHA512(password, salt, iterations).
    Pbkdf2 {
        iterations: u32,
        salt: [u8; SALT_LEN],
        hash: [u8; HASH_LEN],
    },
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print hash material in logs.
        match self {
            Hash::Sha512 { .. } => f.write_str("$6$…"),
            Hash::Pbkdf2 { iterations, .. } => write!(f, "$7${iterations}$…"),
        }
    }
}

impl Hash {
    /// Parse the text after `username:`.
    fn parse(text: &str) -> Result<Hash, String> {
        let Some(rest) = text.strip_prefix('$') else {
            return Err(
                "password is not hashed (hash the file with 'boxmq passwd -U FILE')".into(),
            );
        };
        let parts: Vec<&str> = rest.split('$').collect();
        match parts.as_slice() {
            ["6", salt, hash] => Ok(Hash::Sha512 {
                salt: decode_fixed(salt, "salt")?,
                hash: decode_fixed(hash, "hash")?,
            }),
            ["7", iterations, salt, hash] => {
                let iterations: u32 = iterations
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_ITERATIONS).contains(n))
                    .ok_or_else(|| {
                        format!("iteration count must be a number from 1 to {MAX_ITERATIONS}")
                    })?;
                Ok(Hash::Pbkdf2 {
                    iterations,
                    salt: decode_fixed(salt, "salt")?,
                    hash: decode_fixed(hash, "hash")?,
                })
            }
            ["6", ..] => Err("a $6$ hash has the form $6$SALT$HASH".into()),
            ["7", ..] => Err("a $7$ hash has the form $7$ITERATIONS$SALT$HASH".into()),
            [kind, ..] => Err(format!(
                "unsupported hash type '${kind}$' (only $6$ and $7$ are supported)"
            )),
            [] => Err("empty hash".into()),
        }
    }

    /// The file form, after `username:`.
    fn to_text(&self) -> String {
        match self {
            Hash::Sha512 { salt, hash } => {
                format!("$6${}${}", B64_ENCODE.encode(salt), B64_ENCODE.encode(hash))
            }
            Hash::Pbkdf2 {
                iterations,
                salt,
                hash,
            } => format!(
                "$7${iterations}${}${}",
                B64_ENCODE.encode(salt),
                B64_ENCODE.encode(hash)
            ),
        }
    }

    /// Hash `password` the way this entry was made, and compare in constant
    /// time with the stored hash.
    fn verify(&self, password: &[u8]) -> bool {
        #[cfg(test)]
        tests::record_work(self.work());
        let (computed, stored) = match self {
            Hash::Sha512 { salt, hash } => (sha512_salted(password, salt), hash),
            Hash::Pbkdf2 {
                iterations,
                salt,
                hash,
            } => (pbkdf2_sha512(password, salt, *iterations), hash),
        };
        bool::from(computed.ct_eq(stored))
    }

    /// The hashing work `verify` does: the kind (6 or 7) and iterations.
    #[cfg(test)]
    fn work(&self) -> (u8, u32) {
        match self {
            Hash::Sha512 { .. } => (6, 1),
            Hash::Pbkdf2 { iterations, .. } => (7, *iterations),
        }
    }

    /// A stand-in with the same cost as `self`, for unknown users.
    fn dummy_like(&self) -> Hash {
        match self {
            Hash::Sha512 { .. } => Hash::Sha512 {
                salt: [0x5a; SALT_LEN],
                hash: [0; HASH_LEN],
            },
            Hash::Pbkdf2 { iterations, .. } => Hash::Pbkdf2 {
                iterations: *iterations,
                salt: [0x5a; SALT_LEN],
                hash: [0; HASH_LEN],
            },
        }
    }
}

fn decode_fixed<const N: usize>(text: &str, what: &str) -> Result<[u8; N], String> {
    let bytes = B64_DECODE
        .decode(text)
        .map_err(|_| format!("{what} is not valid base64"))?;
    <[u8; N]>::try_from(bytes.as_slice())
        .map_err(|_| format!("{what} is {} bytes, expected {N}", bytes.len()))
}

fn sha512_salted(password: &[u8], salt: &[u8]) -> [u8; HASH_LEN] {
    let mut h = Sha512::new();
    h.update(password);
    h.update(salt);
    h.finalize().into()
}

fn pbkdf2_sha512(password: &[u8], salt: &[u8], iterations: u32) -> [u8; HASH_LEN] {
    let mut out = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
    out
}

/// A new `$7$` hash of `password` with a fresh random salt.
fn new_hash(password: &[u8]) -> Result<Hash, SetError> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|e| SetError::Random(e.to_string()))?;
    Ok(Hash::Pbkdf2 {
        iterations: DEFAULT_ITERATIONS,
        salt,
        hash: pbkdf2_sha512(password, &salt, DEFAULT_ITERATIONS),
    })
}

/// One line of the file, kept for [`PasswordFile::to_text`].
#[derive(Clone, Debug)]
enum Line {
    /// A comment or blank line, written back unchanged.
    Verbatim(String),
    /// `username:hash`.
    Entry { user: String, hash: Hash },
}

/// Why [`PasswordFile::set`] refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetError {
    /// The username cannot be written to a password file.
    BadUsername(&'static str),
    /// The system's random source failed while making a salt.
    Random(String),
}

impl fmt::Display for SetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetError::BadUsername(why) => write!(f, "invalid username: {why}"),
            SetError::Random(e) => write!(f, "cannot get random bytes for a salt: {e}"),
        }
    }
}

impl std::error::Error for SetError {}

/// Check that `user` survives a round trip through the file format.
pub fn validate_username(user: &str) -> Result<(), SetError> {
    let why = if user.is_empty() {
        "empty"
    } else if user.contains(':') {
        "contains ':'"
    } else if user.contains(['\n', '\r', '\0']) {
        "contains a line break or NUL"
    } else if user.starts_with('#') {
        "starts with '#', which would make the line a comment"
    } else if user.starts_with([' ', '\t']) || user.ends_with([' ', '\t']) {
        "starts or ends with a space or tab"
    } else if user.len() > 65535 {
        "longer than 65535 bytes"
    } else {
        return Ok(());
    };
    Err(SetError::BadUsername(why))
}

/// A parsed password file: usernames and their hashes, plus the comments and
/// blank lines so it can be written back.
#[derive(Clone, Debug, Default)]
pub struct PasswordFile {
    lines: Vec<Line>,
    /// Username → index in `lines`.
    index: HashMap<String, usize>,
}

impl PasswordFile {
    /// An empty file (no users).
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse the text of a password file. `origin` (normally the path) names
    /// the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<PasswordFile, AuthFileError> {
        let mut file = PasswordFile::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim_end_matches(['\r', '\n']);
            let trimmed = line.trim_matches([' ', '\t']);
            if trimmed.is_empty() || trimmed.starts_with('#') {
                file.lines.push(Line::Verbatim(line.to_owned()));
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                return Err(AuthFileError::new(
                    origin,
                    n,
                    "expected 'username:hash' (no ':' on the line)",
                ));
            };
            let user = user.trim_matches([' ', '\t']);
            let hash = hash.trim_matches([' ', '\t']);
            if user.is_empty() {
                return Err(AuthFileError::new(origin, n, "empty username"));
            }
            if hash.is_empty() {
                return Err(AuthFileError::new(
                    origin,
                    n,
                    format!("no password hash for user '{user}'"),
                ));
            }
            let hash = Hash::parse(hash)
                .map_err(|m| AuthFileError::new(origin, n, format!("user '{user}': {m}")))?;
            if let Some(&first) = file.index.get(user) {
                let first_line = file.line_number_of(first);
                return Err(AuthFileError::new(
                    origin,
                    n,
                    format!("user '{user}' is already listed on line {first_line}"),
                ));
            }
            file.index.insert(user.to_owned(), file.lines.len());
            file.lines.push(Line::Entry {
                user: user.to_owned(),
                hash,
            });
        }
        Ok(file)
    }

    /// While parsing, `lines[i]` came from line `i + 1`.
    fn line_number_of(&self, index: usize) -> usize {
        index + 1
    }

    /// Read and parse a password file.
    pub fn load(path: &Path) -> Result<PasswordFile, AuthFileError> {
        let text = super::read_text(path)?;
        PasswordFile::parse(&text, &path.display().to_string())
    }

    /// Is `password` right for `username`?
    ///
    /// The comparison with the stored hash is constant-time, and an unknown
    /// user costs the same as a known one: the password is hashed against a
    /// dummy entry with the same parameters as the file's first entry (or
    /// `$7$` with [`DEFAULT_ITERATIONS`] for an empty file), so response time
    /// does not tell which usernames exist. Files mixing `$6$` and `$7$`
    /// entries, or iteration counts, do leak which kind an existing user has.
    pub fn check(&self, username: &str, password: &[u8]) -> bool {
        match self.hash_of(username) {
            Some(hash) => hash.verify(password),
            None => {
                let dummy = match self.first_hash() {
                    Some(h) => h.dummy_like(),
                    None => Hash::Pbkdf2 {
                        iterations: DEFAULT_ITERATIONS,
                        salt: [0x5a; SALT_LEN],
                        hash: [0; HASH_LEN],
                    },
                };
                let r = dummy.verify(password);
                std::hint::black_box(r);
                false
            }
        }
    }

    fn hash_of(&self, username: &str) -> Option<&Hash> {
        let &i = self.index.get(username)?;
        match self.lines.get(i) {
            Some(Line::Entry { hash, .. }) => Some(hash),
            _ => None,
        }
    }

    fn first_hash(&self) -> Option<&Hash> {
        self.lines.iter().find_map(|l| match l {
            Line::Entry { hash, .. } => Some(hash),
            Line::Verbatim(_) => None,
        })
    }

    /// Add `user`, or change the password of an existing one (in place),
    /// hashed as `$7$` with [`DEFAULT_ITERATIONS`] and a random 12-byte salt,
    /// exactly as `mosquitto_passwd` 2.0 does.
    pub fn set(&mut self, user: &str, password: &[u8]) -> Result<(), SetError> {
        validate_username(user)?;
        let hash = new_hash(password)?;
        self.insert_hash(user, hash);
        Ok(())
    }

    fn insert_hash(&mut self, user: &str, hash: Hash) {
        match self.index.get(user) {
            Some(&i) => {
                if let Some(line) = self.lines.get_mut(i) {
                    *line = Line::Entry {
                        user: user.to_owned(),
                        hash,
                    };
                }
            }
            None => {
                self.index.insert(user.to_owned(), self.lines.len());
                self.lines.push(Line::Entry {
                    user: user.to_owned(),
                    hash,
                });
            }
        }
    }

    /// Remove `user`; `false` if there was no such user.
    pub fn remove(&mut self, user: &str) -> bool {
        let Some(i) = self.index.remove(user) else {
            return false;
        };
        if i < self.lines.len() {
            self.lines.remove(i);
        }
        for v in self.index.values_mut() {
            if *v > i {
                *v -= 1;
            }
        }
        true
    }

    /// Is `user` in the file?
    pub fn contains(&self, user: &str) -> bool {
        self.index.contains_key(user)
    }

    /// The usernames, in file order.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().filter_map(|l| match l {
            Line::Entry { user, .. } => Some(user.as_str()),
            Line::Verbatim(_) => None,
        })
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// No users?
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The file's text: comments and blank lines as read, then one
    /// `username:hash` line per user, each line ending in `\n`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            match line {
                Line::Verbatim(s) => out.push_str(s),
                Line::Entry { user, hash } => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(&hash.to_text());
                }
            }
            out.push('\n');
        }
        out
    }
}

/// The `$7$` hash text `mosquitto_passwd` would write for this password,
/// salt and iteration count. For tests and tools.
pub fn pbkdf2_hash_text(password: &[u8], salt: &[u8; SALT_LEN], iterations: u32) -> String {
    Hash::Pbkdf2 {
        iterations,
        salt: *salt,
        hash: pbkdf2_sha512(password, salt, iterations),
    }
    .to_text()
}

/// A new `username:hash` line (without the line break) for `password`, hashed
/// as [`PasswordFile::set`] does.
pub fn entry_text(user: &str, password: &[u8]) -> Result<String, SetError> {
    validate_username(user)?;
    Ok(format!("{user}:{}", new_hash(password)?.to_text()))
}

/// Does `text` (what follows `username:`) look like a hash boxmq can check?
/// Used by `boxmq passwd -U` to leave hashed entries alone.
pub fn is_hash(text: &str) -> bool {
    Hash::parse(text).is_ok()
}

#[cfg(test)]
mod tests;
