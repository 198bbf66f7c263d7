//! Topic names, topic filters and the subscription trie.
//!
//! Read: MQTT 3.1.1 §4.7 (topic names and filters) and MQTT 5.0 §4.7 and
//! §4.8.2 (shared subscriptions).
//!
//! A topic is split into *levels* by `/`. Empty levels are real levels:
//! `"a//b"` has three levels and `"/a"` has the first level `""`. In a filter,
//! `+` matches exactly one level (an empty one too) and `#`, alone in the last
//! level, matches any number of levels including none, so `"a/#"` matches
//! `"a"`. Filters that begin with a wildcard do not match names that begin with
//! `$` [MQTT-4.7.2-1].
//!
//! [`matches()`] is the plain reference matcher. The subscription trie is what the broker
//! routes with: it finds every subscription matching a topic name in time
//! proportional to the matching part of the tree, not to the number of
//! subscriptions.

use core::fmt;

/// Why a topic name or filter is not acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicError {
    /// Zero length [MQTT-4.7.3-1].
    Empty,
    /// More bytes than the configured maximum.
    TooLong,
    /// More levels than the configured maximum.
    TooManyLevels,
    /// `+` or `#` in a topic name [MQTT-4.7.1-1].
    WildcardInName,
    /// In a filter, `+` or `#` not alone in its level, or `#` not in the last
    /// level [MQTT-4.7.1-2], [MQTT-4.7.1-3].
    InvalidWildcard,
    /// Contains U+0000 [MQTT-4.7.3-2].
    NullChar,
    /// A `$share/` filter without a valid share name or inner filter
    /// [MQTT-4.8.2-1], [MQTT-4.8.2-2].
    InvalidSharedSubscription,
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TopicError::Empty => "empty topic",
            TopicError::TooLong => "topic too long",
            TopicError::TooManyLevels => "topic has too many levels",
            TopicError::WildcardInName => "wildcard in topic name",
            TopicError::InvalidWildcard => "wildcard not alone in its level, or '#' not last",
            TopicError::NullChar => "U+0000 in topic",
            TopicError::InvalidSharedSubscription => "malformed shared subscription",
        })
    }
}

impl std::error::Error for TopicError {}

/// Checks shared by names and filters: non-empty, bounded length, no U+0000.
fn check_common(s: &str, max_len: usize) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > max_len {
        return Err(TopicError::TooLong);
    }
    if s.as_bytes().contains(&0) {
        return Err(TopicError::NullChar);
    }
    Ok(())
}

/// Check a PUBLISH topic name [MQTT-4.7.1-1], [MQTT-4.7.3-1]: non-empty, no
/// `+` or `#`, no U+0000, at most `max_len` bytes and at most `max_levels`
/// levels.
///
/// Errors are reported in this order: [`TopicError::Empty`],
/// [`TopicError::TooLong`], [`TopicError::NullChar`],
/// [`TopicError::WildcardInName`], [`TopicError::TooManyLevels`].
pub fn validate_topic_name(
    name: &str,
    max_len: usize,
    max_levels: usize,
) -> Result<(), TopicError> {
    check_common(name, max_len)?;
    let mut levels: usize = 1;
    for &b in name.as_bytes() {
        match b {
            b'+' | b'#' => return Err(TopicError::WildcardInName),
            b'/' => levels += 1,
            _ => {}
        }
    }
    if levels > max_levels {
        return Err(TopicError::TooManyLevels);
    }
    Ok(())
}

/// Check a topic filter [MQTT-4.7.1-2], [MQTT-4.7.1-3]: non-empty; `#` alone
/// in the last level; `+` alone in its level; no U+0000; at most `max_len`
/// bytes and at most `max_levels` levels.
///
/// `$share/` filters are not special here: pass the inner filter from
/// [`parse_shared`]. Errors are reported in this order: [`TopicError::Empty`],
/// [`TopicError::TooLong`], [`TopicError::NullChar`],
/// [`TopicError::InvalidWildcard`], [`TopicError::TooManyLevels`].
pub fn validate_topic_filter(
    filter: &str,
    max_len: usize,
    max_levels: usize,
) -> Result<(), TopicError> {
    check_common(filter, max_len)?;
    let mut levels: usize = 0;
    let mut rest = filter.split('/').peekable();
    while let Some(level) = rest.next() {
        levels += 1;
        let has_plus = level.contains('+');
        let has_hash = level.contains('#');
        if (has_plus || has_hash) && level.len() != 1 {
            return Err(TopicError::InvalidWildcard);
        }
        if has_hash && rest.peek().is_some() {
            return Err(TopicError::InvalidWildcard);
        }
    }
    if levels > max_levels {
        return Err(TopicError::TooManyLevels);
    }
    Ok(())
}

/// The prefix of an MQTT 5.0 shared subscription filter.
const SHARE_PREFIX: &str = "$share/";

/// Split a shared subscription `$share/<group>/<filter>` [MQTT-4.8.2-1],
/// [MQTT-4.8.2-2].
///
/// Returns `Ok(Some((group, filter)))` for a well-formed one (group
/// non-empty without `+`, `#` or `/`; filter non-empty), `Ok(None)` for a
/// filter not starting with `"$share/"`, and
/// `Err(TopicError::InvalidSharedSubscription)` for a malformed one such as
/// `"$share/g"`, `"$share//a"`, `"$share/g/"` or `"$share/g+/a"`. The inner
/// filter's wildcards are not checked: call [`validate_topic_filter`] on it.
pub fn parse_shared(filter: &str) -> Result<Option<(&str, &str)>, TopicError> {
    let Some(rest) = filter.strip_prefix(SHARE_PREFIX) else {
        return Ok(None);
    };
    let Some((group, inner)) = rest.split_once('/') else {
        return Err(TopicError::InvalidSharedSubscription);
    };
    if group.is_empty() || group.contains(['+', '#']) || inner.is_empty() {
        return Err(TopicError::InvalidSharedSubscription);
    }
    Ok(Some((group, inner)))
}

/// The plain reference matcher: does `filter` match `name`? Both are assumed
/// valid.
///
/// `+` matches one level, `#` matches the rest including the parent level
/// (`"a/#"` matches `"a"`) [MQTT-4.7.1-2], and a filter beginning with a
/// wildcard does not match a name beginning with `$` [MQTT-4.7.2-1].
pub fn matches(filter: &str, name: &str) -> bool {
    if name.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut n = name.split('/');
    loop {
        match (f.next(), n.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) => {
                if a != b {
                    return false;
                }
            }
            (None, None) => return true,
            (None, Some(_)) | (Some(_), None) => return false,
        }
    }
}

#[cfg(test)]
mod tests;
