//! Mosquitto's ACL file.
//!
//! ```text
//! # Before the first `user` line: rules for anonymous clients.
//! topic read $SYS/#
//!
//! user alice
//! topic readwrite home/#
//! topic deny home/secret/#
//!
//! # `pattern` lines apply to every client, wherever they stand.
//! pattern write devices/%c/status
//! pattern read users/%u/#
//! ```
//!
//! * `user NAME` starts NAME's section (NAME is the rest of the line, so it
//!   may contain spaces). Sections with the same name are merged.
//! * `topic [ACCESS] FILTER` adds a rule to the current section: the
//!   anonymous section (clients that sent no username) before the first
//!   `user` line. A client whose username has no section gets no `topic`
//!   rules, only the patterns.
//! * `pattern [ACCESS] FILTER` applies to all clients, with `%c` replaced by
//!   the client identifier and `%u` by the username. A pattern with `%u` does
//!   not apply to clients without a username.
//! * ACCESS is `read`, `write`, `readwrite` or `deny`; without it the rule is
//!   `readwrite`. As in Mosquitto, the word is only taken as ACCESS when a
//!   filter follows it, so `topic read` is a rule for the topic `read`.
//! * FILTER may use `+` and `#` and may contain spaces; it must be a valid
//!   topic filter.
//! * Blank lines and lines starting with `#` are ignored; anything else is
//!   an error naming the file and line.
//!
//! # Decisions
//!
//! A publish (write) or delivery (read) on a topic name is allowed when some
//! applicable rule with that access matches the name and no applicable `deny`
//! rule does. `deny` always wins. (Mosquitto 2.0 puts `deny` first only within
//! a list, and checks the user's `topic` list before the patterns, so there a
//! user's `topic` allow beats a `pattern deny`; boxmq is stricter.) A file
//! with no rules denies everything, as in Mosquitto; no ACL file at all
//! allows everything (see [`super::Auth`]).
//!
//! Filters beginning with `+` or `#` do not match topics beginning with `$`
//! ([`crate::topic::matches`]), so `topic read #` does not give `$SYS`.
//!
//! # Substitution safety
//!
//! A client chooses its own client identifier and, without a password file,
//! its username. If a substituted value is empty or contains `+`, `#` or `/`,
//! substituting it could widen the pattern (`%c` = `#`) or move it to another
//! part of the tree (`%c` = `a/b`). For such a value an allowing pattern using
//! that placeholder never matches, and a `deny` pattern using it matches
//! everything (fail closed: the deny could otherwise be dodged). Mosquitto 2.0
//! instead refuses all access to a client whose username or identifier
//! contains `+` or `#` as soon as the file has any pattern.
//!
//! # Subscriptions
//!
//! Mosquitto 2.0's built-in ACL grants every SUBSCRIBE and checks read access
//! for each message at delivery. boxmq keeps the per-delivery check as the
//! authority and adds a check at subscribe time,
//! [`Acl::subscribe_decision`], comparing the subscription filter with the
//! rules' filters as sets of topic names:
//!
//! * [`SubscribeDecision::Denied`] when nothing could ever be delivered: no
//!   read rule's filter overlaps the subscription, or a `deny` rule's filter
//!   covers all of it. The broker refuses the subscription (SUBACK 0x80 /
//!   0x87), where Mosquitto would grant it and deliver nothing.
//! * [`SubscribeDecision::Full`] when one read rule covers the whole
//!   subscription and no `deny` rule overlaps it: every matching message may
//!   be delivered, so per-delivery checks may be skipped.
//! * [`SubscribeDecision::Partial`] otherwise: granted, and each delivery
//!   must be checked with [`Acl::check`]. A client subscribing to `#` under
//!   `topic read sensors/#` gets the `sensors` messages, as with Mosquitto.
//!
//! `$share/GROUP/FILTER` subscriptions are judged on FILTER.

use std::collections::HashMap;
use std::path::Path;

use super::AuthFileError;
use crate::topic;

/// The kind of access asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Receive messages on a topic (deliveries, and subscriptions).
    Read,
    /// Publish to a topic.
    Write,
}

/// What a rule grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Perm {
    Read,
    Write,
    ReadWrite,
    Deny,
}

impl Perm {
    fn parse(word: &str) -> Option<Perm> {
        match word {
            "read" => Some(Perm::Read),
            "write" => Some(Perm::Write),
            "readwrite" => Some(Perm::ReadWrite),
            "deny" => Some(Perm::Deny),
            _ => None,
        }
    }

    fn grants(self, access: Access) -> bool {
        matches!(
            (self, access),
            (Perm::ReadWrite, _) | (Perm::Read, Access::Read) | (Perm::Write, Access::Write)
        )
    }
}

/// A `topic` rule.
#[derive(Clone, Debug)]
struct Rule {
    perm: Perm,
    filter: String,
}

/// One piece of a `pattern` filter.
#[derive(Clone, Debug)]
enum Piece {
    Text(String),
    ClientId,
    Username,
}

/// A `pattern` rule.
#[derive(Clone, Debug)]
struct Pattern {
    perm: Perm,
    pieces: Vec<Piece>,
    uses_username: bool,
}

/// The result of substituting a pattern for one client.
enum Substituted {
    /// The pattern does not apply (e.g. `%u` without a username).
    NotApplicable,
    /// A substituted value was unsafe; see the module docs.
    Unsafe,
    /// The filter to use.
    Filter(String),
}

/// Is a substituted value unsafe: empty, or able to change the filter's
/// structure?
fn unsafe_value(v: &str) -> bool {
    v.is_empty() || v.contains(['+', '#', '/'])
}

impl Pattern {
    fn parse(text: &str, perm: Perm) -> Pattern {
        let mut pieces = Vec::new();
        let mut uses_username = false;
        let mut buf = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '%' {
                match chars.peek() {
                    Some('c') => {
                        chars.next();
                        if !buf.is_empty() {
                            pieces.push(Piece::Text(std::mem::take(&mut buf)));
                        }
                        pieces.push(Piece::ClientId);
                        continue;
                    }
                    Some('u') => {
                        chars.next();
                        if !buf.is_empty() {
                            pieces.push(Piece::Text(std::mem::take(&mut buf)));
                        }
                        pieces.push(Piece::Username);
                        uses_username = true;
                        continue;
                    }
                    _ => {}
                }
            }
            buf.push(c);
        }
        if !buf.is_empty() {
            pieces.push(Piece::Text(buf));
        }
        Pattern {
            perm,
            pieces,
            uses_username,
        }
    }

    fn substitute(&self, username: Option<&str>, client_id: &str) -> Substituted {
        if self.uses_username && username.is_none() {
            return Substituted::NotApplicable;
        }
        let mut out = String::new();
        for piece in &self.pieces {
            let value = match piece {
                Piece::Text(t) => {
                    out.push_str(t);
                    continue;
                }
                Piece::ClientId => client_id,
                Piece::Username => username.unwrap_or_default(),
            };
            if unsafe_value(value) {
                return Substituted::Unsafe;
            }
            out.push_str(value);
        }
        Substituted::Filter(out)
    }
}

/// The answer to a SUBSCRIBE; see the [module documentation](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscribeDecision {
    /// Refuse: no message could ever be delivered through this subscription.
    Denied,
    /// Grant, and check each delivery with [`Acl::check`].
    Partial,
    /// Grant; every message matching the filter may be delivered.
    Full,
}

/// A parsed ACL file.
#[derive(Clone, Debug, Default)]
pub struct Acl {
    anonymous: Vec<Rule>,
    users: HashMap<String, Vec<Rule>>,
    patterns: Vec<Pattern>,
}

/// Longest filter accepted in an ACL line (the MQTT string limit).
const MAX_FILTER_LEN: usize = 65535;

impl Acl {
    /// Parse the text of an ACL file. `origin` (normally the path) names the
    /// file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Acl, AuthFileError> {
        let mut acl = Acl::default();
        let mut user: Option<String> = None;
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let err = |m: String| AuthFileError::new(origin, n, m);
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (keyword, rest) = split_word(line);
            match keyword {
                "user" => {
                    if rest.is_empty() {
                        return Err(err("'user' needs a username".into()));
                    }
                    user = Some(rest.to_owned());
                }
                "topic" | "pattern" => {
                    let (first, after) = split_word(rest);
                    if first.is_empty() {
                        return Err(err(format!("'{keyword}' needs a topic filter")));
                    }
                    let (perm, filter) = if after.is_empty() {
                        (Perm::ReadWrite, first)
                    } else {
                        let perm = Perm::parse(first).ok_or_else(|| {
                            err(format!(
                                "unknown access '{first}' (expected read, write, readwrite or deny)"
                            ))
                        })?;
                        (perm, after)
                    };
                    topic::validate_topic_filter(filter, MAX_FILTER_LEN, usize::MAX)
                        .map_err(|e| err(format!("invalid topic filter '{filter}': {e}")))?;
                    if keyword == "pattern" {
                        acl.patterns.push(Pattern::parse(filter, perm));
                    } else {
                        let rule = Rule {
                            perm,
                            filter: filter.to_owned(),
                        };
                        match &user {
                            None => acl.anonymous.push(rule),
                            Some(u) => acl.users.entry(u.clone()).or_default().push(rule),
                        }
                    }
                }
                other => {
                    return Err(err(format!(
                        "unknown keyword '{other}' (expected user, topic or pattern)"
                    )));
                }
            }
        }
        Ok(acl)
    }

    /// Read and parse an ACL file.
    pub fn load(path: &Path) -> Result<Acl, AuthFileError> {
        let text = super::read_text(path)?;
        Acl::parse(&text, &path.display().to_string())
    }

    /// Does the file have no rules at all (and so deny everything)?
    pub fn is_empty(&self) -> bool {
        self.anonymous.is_empty() && self.users.is_empty() && self.patterns.is_empty()
    }

    /// Call `f(perm, filter)` for every rule that applies to this client,
    /// with patterns substituted. An unsafe substitution in a `deny` pattern
    /// is passed as `(Perm::Deny, None)`, a filter that matches everything
    /// (`$` topics included); in an allowing pattern it is skipped.
    fn for_each_rule(
        &self,
        username: Option<&str>,
        client_id: &str,
        mut f: impl FnMut(Perm, Option<&str>),
    ) {
        let topic_rules = match username {
            None => Some(&self.anonymous),
            Some(u) => self.users.get(u),
        };
        for rule in topic_rules.into_iter().flatten() {
            f(rule.perm, Some(&rule.filter));
        }
        for p in &self.patterns {
            match p.substitute(username, client_id) {
                Substituted::NotApplicable => {}
                Substituted::Unsafe => {
                    if p.perm == Perm::Deny {
                        f(Perm::Deny, None);
                    }
                }
                Substituted::Filter(filter) => f(p.perm, Some(&filter)),
            }
        }
    }

    /// May this client have `access` to the topic name `topic`? `topic` is a
    /// name (a PUBLISH topic), not a filter.
    pub fn check(
        &self,
        username: Option<&str>,
        client_id: &str,
        topic: &str,
        access: Access,
    ) -> bool {
        let mut allowed = false;
        let mut denied = false;
        self.for_each_rule(username, client_id, |perm, filter| {
            let hit = filter.is_none_or(|f| topic::matches(f, topic));
            if !hit {
                return;
            }
            if perm == Perm::Deny {
                denied = true;
            } else if perm.grants(access) {
                allowed = true;
            }
        });
        allowed && !denied
    }

    /// May this client subscribe to `filter`? `true` unless
    /// [`Acl::subscribe_decision`] says [`SubscribeDecision::Denied`].
    pub fn may_subscribe(&self, username: Option<&str>, client_id: &str, filter: &str) -> bool {
        self.subscribe_decision(username, client_id, filter) != SubscribeDecision::Denied
    }

    /// Judge a subscription filter against the read rules; see the
    /// [module documentation](self). A malformed `$share/` filter is
    /// [`SubscribeDecision::Denied`].
    pub fn subscribe_decision(
        &self,
        username: Option<&str>,
        client_id: &str,
        filter: &str,
    ) -> SubscribeDecision {
        let filter = match topic::parse_shared(filter) {
            Ok(Some((_group, inner))) => inner,
            Ok(None) => filter,
            Err(_) => return SubscribeDecision::Denied,
        };
        let mut overlaps_read = false;
        let mut covered_by_read = false;
        let mut deny_overlaps = false;
        let mut deny_covers = false;
        self.for_each_rule(username, client_id, |perm, rule| {
            if perm == Perm::Deny {
                match rule {
                    None => {
                        deny_overlaps = true;
                        deny_covers = true;
                    }
                    Some(r) => {
                        if filters_overlap(r, filter) {
                            deny_overlaps = true;
                            if filter_covers(r, filter) {
                                deny_covers = true;
                            }
                        }
                    }
                }
            } else if perm.grants(Access::Read) {
                if let Some(r) = rule {
                    if filters_overlap(r, filter) {
                        overlaps_read = true;
                        if filter_covers(r, filter) {
                            covered_by_read = true;
                        }
                    }
                }
            }
        });
        if deny_covers || !overlaps_read {
            SubscribeDecision::Denied
        } else if covered_by_read && !deny_overlaps {
            SubscribeDecision::Full
        } else {
            SubscribeDecision::Partial
        }
    }
}

/// Split off the first whitespace-separated word; the rest is trimmed.
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    }
}

/// Does a filter level at the start of a filter exclude names whose first
/// level begins with `$`? (Wildcards there do [MQTT-4.7.2-1].)
fn is_wildcard(level: &str) -> bool {
    level == "+" || level == "#"
}

/// Is there a topic name that both filters match?
///
/// Both are assumed to be valid filters. `#` matches the parent level too
/// (`a/#` matches `a`), and a filter starting with a wildcard matches no name
/// starting with `$`.
pub fn filters_overlap(a: &str, b: &str) -> bool {
    let mut ai = a.split('/');
    let mut bi = b.split('/');
    let mut first = true;
    loop {
        match (ai.next(), bi.next()) {
            (None, None) => return true,
            // One filter ended: the other must be able to match zero more
            // levels, which only a final `#` does.
            (None, Some(x)) | (Some(x), None) => return x == "#",
            (Some(x), Some(y)) => {
                if first {
                    // A wildcard in the first level cannot meet a `$` name.
                    let dollar = |l: &str| !is_wildcard(l) && l.starts_with('$');
                    if (is_wildcard(x) && dollar(y)) || (is_wildcard(y) && dollar(x)) {
                        return false;
                    }
                }
                if x == "#" || y == "#" {
                    return true;
                }
                if x != "+" && y != "+" && x != y {
                    return false;
                }
            }
        }
        first = false;
    }
}

/// Does `general` match every topic name that `specific` matches?
///
/// Both are assumed to be valid filters; same conventions as
/// [`filters_overlap`].
pub fn filter_covers(general: &str, specific: &str) -> bool {
    let mut gi = general.split('/');
    let mut si = specific.split('/');
    let mut first = true;
    loop {
        match (gi.next(), si.next()) {
            (None, None) => return true,
            // `specific` ended: `general` must match the parent level too.
            (Some(g), None) => return g == "#",
            // `general` ended but `specific` goes on (or is `#`, which also
            // matches longer names).
            (None, Some(_)) => return false,
            (Some(g), Some(s)) => {
                if first && is_wildcard(g) && !is_wildcard(s) && s.starts_with('$') {
                    return false;
                }
                match g {
                    "#" => return true,
                    "+" => {
                        if s == "#" {
                            return false;
                        }
                    }
                    _ => {
                        if g != s {
                            return false;
                        }
                    }
                }
            }
        }
        first = false;
    }
}

#[cfg(test)]
mod tests;
