use super::*;

use Access::{Read, Write};

fn acl(text: &str) -> Acl {
    Acl::parse(text, "acl.txt").unwrap()
}

fn err(text: &str) -> AuthFileError {
    Acl::parse(text, "acl.txt").unwrap_err()
}

#[test]
fn parse_errors_name_file_and_line() {
    let cases: &[(&str, &str)] = &[
        ("topic", "needs a topic filter"),
        ("pattern   ", "needs a topic filter"),
        ("user", "needs a username"),
        ("user   ", "needs a username"),
        ("topic rw a/b", "unknown access 'rw'"),
        ("topic read a/#/b", "invalid topic filter"),
        ("topic a+", "invalid topic filter"),
        ("pattern deny %c/#x", "invalid topic filter"),
        ("topc read a", "unknown keyword 'topc'"),
        ("allow a", "unknown keyword 'allow'"),
        ("topic read \u{0}", "invalid topic filter"),
    ];
    for (line, want) in cases {
        let text = format!("# comment\n\ntopic read ok/#\nuser bob\n{line}\n");
        let e = err(&text);
        assert_eq!(e.origin, "acl.txt");
        assert_eq!(e.line, 5, "{line:?}: {e}");
        assert!(e.message.contains(want), "{line:?}: {e}");
        assert!(e.to_string().starts_with("acl.txt:5: "), "{e}");
    }
}

#[test]
fn layout_mosquitto_accepts() {
    let a = acl(concat!(
        "# comment\n",
        "   # indented comment\n",
        "\n",
        "topic read   $SYS/#  \r\n",
        "topic\tanon/rw\n",
        "user  bob smith \n",
        "topic readwrite with space/#\n",
        "topic read\n", // Mosquitto: a readwrite rule for the topic "read"
        "pattern write dev/%c/state\n",
    ));
    assert!(a.check(None, "c", "$SYS/broker/uptime", Read));
    assert!(!a.check(None, "c", "$SYS/broker/uptime", Write));
    assert!(a.check(None, "c", "anon/rw", Write));
    assert!(a.check(Some("bob smith"), "c", "with space/x", Write));
    assert!(a.check(Some("bob smith"), "c", "read", Write));
    assert!(a.check(Some("bob smith"), "c", "dev/c/state", Write));
    assert!(!a.is_empty());
}

#[test]
fn empty_file_denies_everything() {
    let a = acl("# nothing\n\n");
    assert!(a.is_empty());
    assert!(!a.check(None, "c", "a", Read));
    assert!(!a.check(Some("u"), "c", "a", Write));
    assert!(!a.may_subscribe(Some("u"), "c", "#"));
}

const FILE: &str = "\
topic read public/#
topic write anon/in

user alice
topic readwrite home/#
topic deny home/secret/#
topic read $SYS/#
topic write sensors/+/temp

user bob
topic read home/kitchen/#

user alice
topic read extra/#

pattern readwrite clients/%c/#
pattern read users/%u/inbox
pattern write users/%u/outbox/%c
pattern deny clients/%c/locked
";

/// (username, client id, topic, access, allowed)
type Case = (
    Option<&'static str>,
    &'static str,
    &'static str,
    Access,
    bool,
);

#[test]
fn semantics_table() {
    let a = acl(FILE);
    let cases: &[Case] = &[
        // Anonymous: the rules before the first `user`, plus patterns
        // without %u.
        (None, "c1", "public/news", Read, true),
        (None, "c1", "public/news", Write, false),
        (None, "c1", "public", Read, true), // `#` matches the parent
        (None, "c1", "anon/in", Write, true),
        (None, "c1", "anon/in", Read, false),
        (None, "c1", "home/x", Read, false),
        (None, "c1", "clients/c1/x", Write, true),
        (None, "c1", "clients/c2/x", Write, false),
        (None, "c1", "users/c1/inbox", Read, false), // %u needs a username
        // alice: her sections (merged), not the anonymous rules.
        (Some("alice"), "a1", "home/kitchen/light", Write, true),
        (Some("alice"), "a1", "home/kitchen/light", Read, true),
        (Some("alice"), "a1", "home/secret", Read, false), // deny beats readwrite
        (Some("alice"), "a1", "home/secret/key", Write, false),
        (Some("alice"), "a1", "home/secretive", Read, true),
        (Some("alice"), "a1", "$SYS/broker/load", Read, true),
        (Some("alice"), "a1", "$SYS/broker/load", Write, false),
        (Some("alice"), "a1", "sensors/3/temp", Write, true),
        (Some("alice"), "a1", "sensors/3/temp", Read, false),
        (Some("alice"), "a1", "sensors/3/4/temp", Write, false),
        (Some("alice"), "a1", "extra/1", Read, true),
        (Some("alice"), "a1", "public/news", Read, false),
        (Some("alice"), "a1", "users/alice/inbox", Read, true),
        (Some("alice"), "a1", "users/alice/inbox", Write, false),
        (Some("alice"), "a1", "users/bob/inbox", Read, false),
        (Some("alice"), "a1", "users/alice/outbox/a1", Write, true),
        (Some("alice"), "a1", "users/alice/outbox/a2", Write, false),
        (Some("alice"), "a1", "clients/a1/x", Read, true),
        (Some("alice"), "a1", "clients/a1/locked", Read, false), // pattern deny
        (Some("alice"), "a1", "clients/a1/locked", Write, false),
        // bob
        (Some("bob"), "b1", "home/kitchen", Read, true),
        (Some("bob"), "b1", "home/kitchen/x", Write, false),
        (Some("bob"), "b1", "home/secret/x", Read, false),
        // A username with no section: patterns only.
        (Some("carol"), "k1", "public/news", Read, false),
        (Some("carol"), "k1", "users/carol/inbox", Read, true),
        (Some("carol"), "k1", "clients/k1/a/b", Write, true),
    ];
    for &(user, id, topic, access, want) in cases {
        assert_eq!(
            a.check(user, id, topic, access),
            want,
            "{user:?} {id} {topic} {access:?}"
        );
    }
}

#[test]
fn wildcard_and_slash_injection_does_not_widen_access() {
    let a = acl(FILE);
    // A client id of `#` must not turn `clients/%c/#` into `clients/#/#`
    // or `clients/#`.
    for id in ["#", "+", "a/b", "x/#", "", "+/+"] {
        assert!(!a.check(None, id, "clients/other/x", Write), "{id:?}");
        assert!(!a.check(None, id, "clients/a/b/c", Read), "{id:?}");
    }
    // The same for usernames in %u.
    for user in ["#", "+", "bob/inbox/..", "", "alice/x"] {
        assert!(
            !a.check(Some(user), "c", "users/alice/inbox", Read),
            "{user:?}"
        );
        assert!(
            !a.check(Some(user), "c", "users/bob/inbox", Read),
            "{user:?}"
        );
    }
    // A literal client id `a+b` is also unsafe (Mosquitto refuses it too).
    assert!(!a.check(None, "a+b", "clients/a+b/x", Read));
    // Safe values still work in the same file.
    assert!(a.check(None, "ok", "clients/ok/x", Read));
}

#[test]
fn unsafe_value_in_a_deny_pattern_fails_closed() {
    let a = acl("topic read open/#\npattern deny open/%c/#\n");
    assert!(a.check(None, "me", "open/you/x", Read));
    assert!(!a.check(None, "me", "open/me/x", Read));
    // `a/b` cannot be placed safely: everything is denied to that client.
    assert!(!a.check(None, "a/b", "open/you/x", Read));
    assert!(!a.check(None, "#", "open/you/x", Read));
    assert_eq!(
        a.subscribe_decision(None, "#", "open/you"),
        SubscribeDecision::Denied
    );
}

#[test]
fn dollar_topics_need_explicit_rules() {
    let a = acl("topic read #\ntopic read +/x\n");
    assert!(a.check(None, "c", "a/b", Read));
    assert!(!a.check(None, "c", "$SYS/x", Read));
    assert!(!a.check(None, "c", "$SYS", Read));
    assert!(!a.may_subscribe(None, "c", "$SYS/#"));
    let b = acl("topic read $SYS/#\n");
    assert!(b.check(None, "c", "$SYS/broker/x", Read));
    assert!(b.may_subscribe(None, "c", "$SYS/#"));
}

#[test]
fn deny_is_not_order_dependent() {
    let a = acl("topic deny a/#\ntopic readwrite a/b\n");
    let b = acl("topic readwrite a/b\ntopic deny a/#\n");
    for x in [&a, &b] {
        assert!(!x.check(None, "c", "a/b", Read));
        assert!(!x.check(None, "c", "a/b", Write));
    }
}

#[test]
fn deny_pattern_beats_user_allow() {
    // Stricter than Mosquitto 2.0 (which checks the user's topics first).
    let a = acl("user u\ntopic readwrite dev/#\npattern deny dev/%u/private\n");
    assert!(a.check(Some("u"), "c", "dev/u/public", Read));
    assert!(!a.check(Some("u"), "c", "dev/u/private", Read));
}

#[test]
fn percent_without_c_or_u_is_literal() {
    let a = acl("pattern read a/%x/%/%c%u/%%c\n");
    assert!(a.check(Some("U"), "C", "a/%x/%/CU/%C", Read));
    assert!(!a.check(None, "C", "a/%x/%/CU/%C", Read));
}

#[test]
fn patterns_can_sit_inside_a_level() {
    let a = acl("pattern readwrite dev/id-%c-%u/#\n");
    assert!(a.check(Some("u"), "c", "dev/id-c-u/x", Write));
    assert!(!a.check(Some("u"), "c", "dev/id-c-v/x", Write));
}

#[test]
fn overlap_and_cover() {
    // (a, b, overlap)
    let overlaps = [
        ("#", "a/b", true),
        ("a/#", "a", true),
        ("a/#", "a/b/c", true),
        ("a/+", "a/#", true),
        ("a/+", "+/b", true),
        ("a/+", "b/+", false),
        ("a/+/c", "a/b", false),
        ("a/+/c", "a/b/#", true),
        ("a/b", "a/b/c", false),
        ("a", "a/+", false),
        ("+", "+/+", false),
        ("#", "#", true),
        ("#", "$SYS/x", false),
        ("+/x", "$SYS/x", false),
        ("$SYS/#", "$SYS/+", true),
        ("$SYS/#", "#", false),
        ("a//b", "a/+/b", true),
        ("a//b", "a/x/b", false),
        ("/a", "+/a", true),
        ("/a", "#", true),
    ];
    for (a, b, want) in overlaps {
        assert_eq!(filters_overlap(a, b), want, "overlap {a} {b}");
        assert_eq!(filters_overlap(b, a), want, "overlap {b} {a}");
    }
    // (general, specific, covers)
    let covers = [
        ("#", "a/b", true),
        ("#", "#", true),
        ("#", "$SYS/#", false),
        ("#", "+/x", true),
        ("a/#", "a", true),
        ("a/#", "a/#", true),
        ("a/#", "a/+/c", true),
        ("a/#", "#", false),
        ("a/+", "a/b", true),
        ("a/+", "a/+", true),
        ("a/+", "a/#", false),
        ("a/+", "a", false),
        ("a/+", "a/b/c", false),
        ("a/b", "a/+", false),
        ("a/b", "a/b", true),
        ("a", "a/#", false),
        ("+/+", "a/+", true),
        ("+", "$SYS", false),
        ("+/#", "$SYS/x", false),
        ("$SYS/#", "$SYS/broker/+", true),
        ("+/b", "+/b", true),
        ("+/b/#", "x/b", true),
    ];
    for (g, s, want) in covers {
        assert_eq!(filter_covers(g, s), want, "covers {g} {s}");
        // Covering a filter implies overlapping it.
        if want {
            assert!(filters_overlap(g, s), "{g} {s}");
        }
    }
}

#[test]
fn overlap_and_cover_agree_with_matches_on_samples() {
    // Brute force over a small universe of names and filters.
    let levels = ["a", "b", "", "$s"];
    let mut names = Vec::new();
    for x in levels {
        names.push(x.to_string());
        for y in levels {
            names.push(format!("{x}/{y}"));
            for z in levels {
                names.push(format!("{x}/{y}/{z}"));
            }
        }
    }
    let toks = ["a", "b", "", "$s", "+", "#"];
    let mut filters = Vec::new();
    for x in toks {
        filters.push(x.to_string());
        for y in toks {
            filters.push(format!("{x}/{y}"));
            for z in toks {
                filters.push(format!("{x}/{y}/{z}"));
            }
        }
    }
    filters.retain(|f| topic::validate_topic_filter(f, 100, 100).is_ok());
    // Filters here have at most 3 levels, but `#` reaches deeper names; add
    // 4-level names so "covers" sees past the end.
    let extra: Vec<String> = names.iter().map(|n| format!("{n}/a")).collect();
    names.extend(extra);
    for f in &filters {
        for g in &filters {
            let both = names
                .iter()
                .any(|n| topic::matches(f, n) && topic::matches(g, n));
            assert_eq!(filters_overlap(f, g), both, "overlap {f} {g}");
            let covered = names
                .iter()
                .filter(|n| topic::matches(g, n))
                .all(|n| topic::matches(f, n));
            // A sampled "covered" can be a false positive only where `g`
            // reaches deeper than the samples; `f` must then end in `#`.
            if filter_covers(f, g) {
                assert!(covered, "covers {f} {g}");
            } else if covered {
                assert!(!g.ends_with('#') || f.ends_with('#'), "not covers {f} {g}");
            }
        }
    }
}

#[test]
fn subscribe_decisions() {
    let a = acl(FILE);
    use SubscribeDecision::{Denied, Full, Partial};
    let cases: &[(Option<&str>, &str, &str, SubscribeDecision)] = &[
        // Anonymous: read public/#, write anon/in, own clients/ tree.
        (None, "c1", "#", Partial),
        (None, "c1", "public/#", Full),
        (None, "c1", "public/+", Full),
        (None, "c1", "public", Full),
        (None, "c1", "+/news", Partial),
        (None, "c1", "anon/in", Denied), // write-only
        (None, "c1", "home/#", Denied),
        (None, "c1", "clients/c1/#", Partial), // the locked deny overlaps
        (None, "c1", "clients/c1/x", Full),
        (None, "c1", "clients/c1/locked", Denied),
        (None, "c1", "clients/c2/x", Denied),
        (None, "c1", "$SYS/#", Denied),
        // alice
        (Some("alice"), "a1", "home/#", Partial), // deny home/secret/# inside
        (Some("alice"), "a1", "home/kitchen/#", Full),
        (Some("alice"), "a1", "home/secret/#", Denied),
        (Some("alice"), "a1", "home/secret/+", Denied),
        (Some("alice"), "a1", "home/+", Partial), // home/secret itself is denied
        (Some("alice"), "a1", "home/+/x", Partial),
        (Some("alice"), "a1", "a/b", Denied),
        (Some("alice"), "a1", "a/+", Denied),
        (Some("alice"), "a1", "#", Partial),
        (Some("alice"), "a1", "+", Partial), // `home/#` matches `home`
        (Some("alice"), "a1", "$SYS/broker/#", Full),
        (Some("alice"), "a1", "sensors/+/temp", Denied), // write-only
        (Some("alice"), "a1", "users/alice/inbox", Full),
        (Some("alice"), "a1", "users/+/inbox", Partial),
        // Shared subscriptions are judged on the inner filter.
        (Some("alice"), "a1", "$share/g/home/kitchen/#", Full),
        (Some("alice"), "a1", "$share/g/a/b", Denied),
        (Some("alice"), "a1", "$share/g", Denied),
        // bob
        (Some("bob"), "b1", "home/kitchen/#", Full),
        (Some("bob"), "b1", "home/#", Partial),
        (Some("bob"), "b1", "home/+", Partial),
        (Some("bob"), "b1", "home/living/#", Denied),
        // Injection in subscriptions.
        (None, "#", "clients/x/#", Denied),
        (Some("#"), "c", "users/alice/inbox", Denied),
    ];
    for &(user, id, filter, want) in cases {
        assert_eq!(
            a.subscribe_decision(user, id, filter),
            want,
            "{user:?} {id} {filter}"
        );
        assert_eq!(a.may_subscribe(user, id, filter), want != Denied);
    }
}

#[test]
fn no_panic_on_odd_input() {
    for text in [
        "topic %",
        "pattern %",
        "pattern %c%",
        "user \u{0}",
        "topic \u{feff}",
        "topic read #/#",
        "\r",
        "\r\n\r\n",
        "pattern read %u%u%u",
    ] {
        if let Ok(a) = Acl::parse(text, "x") {
            let _ = a.check(Some("%u"), "%c", "a", Read);
            let _ = a.subscribe_decision(Some(""), "", "#");
        }
    }
    let a = acl(FILE);
    for f in ["", "/", "#/#", "a/#/b", "++", "$share/", "$share//x", "+#"] {
        let _ = a.subscribe_decision(Some("alice"), "c", f);
        let _ = a.check(Some("alice"), "c", f, Read);
    }
}
