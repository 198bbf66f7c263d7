use super::*;

const MAX_LEN: usize = 4096;
const MAX_LEVELS: usize = 64;

fn name_ok(s: &str) -> Result<(), TopicError> {
    validate_topic_name(s, MAX_LEN, MAX_LEVELS)
}

fn filter_ok(s: &str) -> Result<(), TopicError> {
    validate_topic_filter(s, MAX_LEN, MAX_LEVELS)
}

// ---------------------------------------------------------------- matching

/// MQTT 3.1.1 §4.7.1.2 multi-level wildcard examples [MQTT-4.7.1-2].
#[test]
fn spec_multi_level_examples() {
    let f = "sport/tennis/player1/#";
    assert!(matches(f, "sport/tennis/player1"));
    assert!(matches(f, "sport/tennis/player1/ranking"));
    assert!(matches(f, "sport/tennis/player1/score/wimbledon"));
    assert!(!matches(f, "sport/tennis/player2"));
    assert!(!matches(f, "sport/tennis"));
    // "sport/#" also matches the singular "sport", '#' includes the parent.
    assert!(matches("sport/#", "sport"));
    assert!(matches("sport/#", "sport/"));
    assert!(matches("#", "sport/tennis"));
    assert!(matches("#", "/"));
}

/// MQTT 3.1.1 §4.7.1.3 single-level wildcard examples [MQTT-4.7.1-3].
#[test]
fn spec_single_level_examples() {
    assert!(matches("sport/tennis/+", "sport/tennis/player1"));
    assert!(matches("sport/tennis/+", "sport/tennis/player2"));
    assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
    assert!(!matches("sport/+", "sport"));
    assert!(matches("sport/+", "sport/"));
    assert!(!matches("sport/+", "sport/tennis/player1"));
    assert!(matches("+/+", "/finance"));
    assert!(matches("/+", "/finance"));
    assert!(!matches("+", "/finance"));
    assert!(matches("+/tennis/#", "sport/tennis/x"));
    assert!(matches("+/tennis/#", "sport/tennis"));
}

/// MQTT 3.1.1 §4.7.2 topics beginning with '$' [MQTT-4.7.2-1].
#[test]
fn spec_dollar_examples() {
    assert!(!matches("#", "$SYS/x"));
    assert!(!matches("#", "$SYS"));
    assert!(!matches("+/monitor/Clients", "$SYS/monitor/Clients"));
    assert!(!matches("+/x", "$SYS/x"));
    assert!(!matches("+", "$SYS"));
    assert!(matches("$SYS/#", "$SYS/x"));
    assert!(matches("$SYS/#", "$SYS"));
    assert!(matches("$SYS/+", "$SYS/x"));
    assert!(matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
    // Only the first character counts: a '$' deeper down is ordinary.
    assert!(matches("a/+", "a/$SYS"));
    assert!(matches("#", "a/$SYS"));
}

#[test]
fn empty_levels_are_levels() {
    assert!(matches("a//b", "a//b"));
    assert!(matches("a/+/b", "a//b"));
    assert!(!matches("a/b", "a//b"));
    assert!(matches("+", ""));
    assert!(matches("/", "/"));
    assert!(matches("+/+", "/"));
    assert!(!matches("+", "/"));
    assert!(matches("/#", "/"));
    assert!(matches("/#", "/a/b"));
    assert!(!matches("/#", "a"));
    // Case sensitive, byte-exact.
    assert!(!matches("ACCOUNTS", "Accounts"));
}

// -------------------------------------------------------------- validation

#[test]
fn filter_validation_table() {
    // [MQTT-4.7.1-2], [MQTT-4.7.1-3], [MQTT-4.7.3-1].
    let accepted = [
        "#",
        "+",
        "+/tennis/#",
        "sport/tennis/player1/#",
        "sport/+/player1",
        "/+",
        "+/+",
        "/",
        "//",
        "a//b",
        "$SYS/#",
        "$share/g/a",
        "ünï/ċode",
    ];
    for f in accepted {
        assert_eq!(filter_ok(f), Ok(()), "{f:?}");
    }
    let rejected = [
        ("", TopicError::Empty),
        ("sport/tennis#", TopicError::InvalidWildcard),
        ("sport/tennis/#/ranking", TopicError::InvalidWildcard),
        ("sport+", TopicError::InvalidWildcard),
        ("#/a", TopicError::InvalidWildcard),
        ("##", TopicError::InvalidWildcard),
        ("++", TopicError::InvalidWildcard),
        ("a/+b", TopicError::InvalidWildcard),
        ("a/#/", TopicError::InvalidWildcard),
        ("a\0b", TopicError::NullChar),
    ];
    for (f, e) in rejected {
        assert_eq!(filter_ok(f), Err(e), "{f:?}");
    }
}

#[test]
fn name_validation_table() {
    // [MQTT-4.7.1-1], [MQTT-4.7.3-1], [MQTT-4.7.3-2].
    for n in [
        "a",
        "/",
        "a//b",
        "/finance",
        "$SYS/x",
        "sport/tennis/player1",
        "ü",
    ] {
        assert_eq!(name_ok(n), Ok(()), "{n:?}");
    }
    let rejected = [
        ("", TopicError::Empty),
        ("+", TopicError::WildcardInName),
        ("a/+", TopicError::WildcardInName),
        ("sport+", TopicError::WildcardInName),
        ("#", TopicError::WildcardInName),
        ("a/#", TopicError::WildcardInName),
        ("a\0", TopicError::NullChar),
        ("\0", TopicError::NullChar),
    ];
    for (n, e) in rejected {
        assert_eq!(name_ok(n), Err(e), "{n:?}");
    }
}

#[test]
fn length_and_level_bounds() {
    assert_eq!(validate_topic_name("abcd", 4, 1), Ok(()));
    assert_eq!(validate_topic_name("abcde", 4, 1), Err(TopicError::TooLong));
    // Length is in bytes, not characters.
    assert_eq!(validate_topic_name("üü", 4, 1), Ok(()));
    assert_eq!(validate_topic_name("üüü", 5, 1), Err(TopicError::TooLong));
    assert_eq!(validate_topic_name("a/b/c", 100, 3), Ok(()));
    assert_eq!(
        validate_topic_name("a/b/c/", 100, 3),
        Err(TopicError::TooManyLevels)
    );
    assert_eq!(
        validate_topic_name("//", 100, 2),
        Err(TopicError::TooManyLevels)
    );
    assert_eq!(validate_topic_filter("a/+/#", 5, 3), Ok(()));
    assert_eq!(
        validate_topic_filter("a/+/#", 4, 3),
        Err(TopicError::TooLong)
    );
    assert_eq!(
        validate_topic_filter("a/+/#", 5, 2),
        Err(TopicError::TooManyLevels)
    );
    assert_eq!(
        validate_topic_filter("/", 100, 1),
        Err(TopicError::TooManyLevels)
    );
    // Protocol maximum [MQTT-4.7.3-3].
    let long = "a".repeat(65_536);
    assert_eq!(
        validate_topic_name(&long, 65_535, 1),
        Err(TopicError::TooLong)
    );
    assert_eq!(validate_topic_name(&long[1..], 65_535, 1), Ok(()));
    let deep = "a/".repeat(64) + "a";
    assert_eq!(name_ok(&deep), Err(TopicError::TooManyLevels));
    assert_eq!(name_ok(&deep[2..]), Ok(()));
}

#[test]
fn error_display() {
    let e: Box<dyn std::error::Error> = Box::new(TopicError::InvalidWildcard);
    assert!(!e.to_string().is_empty());
    assert_eq!(TopicError::Empty.to_string(), "empty topic");
}

#[test]
fn shared_subscriptions() {
    // MQTT 5.0 §4.8.2 [MQTT-4.8.2-1], [MQTT-4.8.2-2].
    assert_eq!(parse_shared("$share/g/a/b"), Ok(Some(("g", "a/b"))));
    assert_eq!(parse_shared("$share/group/#"), Ok(Some(("group", "#"))));
    assert_eq!(parse_shared("$share/g//"), Ok(Some(("g", "/"))));
    assert_eq!(parse_shared("$share/g/$SYS/+"), Ok(Some(("g", "$SYS/+"))));
    for not_shared in [
        "a/b",
        "#",
        "$share",
        "$sharex/g/a",
        "$SHARE/g/a",
        "share/g/a",
        "/$share/g/a",
    ] {
        assert_eq!(parse_shared(not_shared), Ok(None), "{not_shared:?}");
    }
    for bad in [
        "$share/",
        "$share/g",
        "$share//a",
        "$share/g/",
        "$share/g+/a",
        "$share/#/a",
        "$share/+/a",
        "$share/a#b/c",
    ] {
        assert_eq!(
            parse_shared(bad),
            Err(TopicError::InvalidSharedSubscription),
            "{bad:?}"
        );
    }
    // The inner filter is the caller's to validate.
    let (_, inner) = parse_shared("$share/g/a#").unwrap().unwrap();
    assert_eq!(filter_ok(inner), Err(TopicError::InvalidWildcard));
}
