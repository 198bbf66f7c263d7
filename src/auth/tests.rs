use super::*;

fn passwords() -> PasswordFile {
    let mut f = PasswordFile::new();
    f.set("alice", b"secret").unwrap();
    f
}

fn acl() -> Acl {
    Acl::parse(
        "topic read public/#\nuser alice\ntopic readwrite home/#\n",
        "acl",
    )
    .unwrap()
}

/// (password file?, allow_anonymous, username, password, expected)
type Case = (
    bool,
    bool,
    Option<&'static str>,
    Option<&'static [u8]>,
    AuthResult,
);

#[test]
fn authenticate_matches_mosquitto_2_0() {
    use AuthResult::{Allowed, BadCredentials, NotAuthorized};
    let cases: &[Case] = &[
        (false, true, None, None, Allowed),
        (false, false, None, None, NotAuthorized),
        (false, true, Some("bob"), Some(b"x"), Allowed),
        (false, false, Some("bob"), Some(b"x"), NotAuthorized),
        (true, true, None, None, Allowed),
        (true, false, None, None, NotAuthorized),
        (true, false, None, Some(b"secret"), NotAuthorized),
        (true, false, Some("alice"), Some(b"secret"), Allowed),
        (true, true, Some("alice"), Some(b"secret"), Allowed),
        (true, false, Some("alice"), Some(b"wrong"), BadCredentials),
        (true, true, Some("alice"), Some(b"wrong"), BadCredentials),
        (true, false, Some("alice"), None, BadCredentials),
        (true, true, Some("bob"), Some(b"secret"), BadCredentials),
        (true, false, Some("bob"), Some(b"secret"), BadCredentials),
        (true, false, Some(""), Some(b""), BadCredentials),
    ];
    for &(with_file, anon, user, pw, want) in cases {
        let auth = Auth::new(with_file.then(passwords), None, anon);
        assert_eq!(
            auth.authenticate(user, pw),
            want,
            "file={with_file} anon={anon} {user:?} {pw:?}"
        );
    }
}

#[test]
fn empty_password_is_not_a_missing_one() {
    let mut f = PasswordFile::new();
    f.set("e", b"").unwrap();
    let auth = Auth::new(Some(f), None, false);
    assert_eq!(auth.authenticate(Some("e"), Some(b"")), AuthResult::Allowed);
    assert_eq!(
        auth.authenticate(Some("e"), None),
        AuthResult::BadCredentials
    );
}

#[test]
fn without_an_acl_everything_is_allowed() {
    let auth = Auth::new(None, None, true);
    assert!(auth.may_publish(None, "c", "any/thing"));
    assert!(auth.may_receive(Some("u"), "c", "$SYS/x"));
    assert!(auth.may_subscribe(None, "c", "#"));
    assert_eq!(
        auth.subscribe_decision(None, "c", "#"),
        SubscribeDecision::Full
    );
}

#[test]
fn acl_questions_are_delegated() {
    let auth = Auth::new(Some(passwords()), Some(acl()), true);
    assert!(auth.may_receive(None, "c", "public/x"));
    assert!(!auth.may_publish(None, "c", "public/x"));
    assert!(auth.may_publish(Some("alice"), "c", "home/x"));
    assert!(!auth.may_receive(Some("alice"), "c", "public/x"));
    assert!(auth.may_subscribe(Some("alice"), "c", "#"));
    assert!(!auth.may_subscribe(Some("alice"), "c", "public/#"));
    assert_eq!(
        auth.subscribe_decision(Some("alice"), "c", "home/+"),
        SubscribeDecision::Full
    );
}

#[test]
fn load_reports_broken_files_and_keeps_nothing() {
    let dir = std::env::temp_dir().join(format!("boxmq-auth-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pw = dir.join("passwd");
    let acl_path = dir.join("acl");
    std::fs::write(&pw, passwords().to_text()).unwrap();
    std::fs::write(&acl_path, "user alice\ntopic readwrite home/#\n").unwrap();

    let auth = Auth::load(Some(&pw), Some(&acl_path), false).unwrap();
    assert_eq!(
        auth.authenticate(Some("alice"), Some(b"secret")),
        AuthResult::Allowed
    );
    assert!(auth.may_publish(Some("alice"), "c", "home/a"));
    assert!(!auth.allow_anonymous());
    assert!(auth.passwords().is_some() && auth.acl().is_some());

    // A broken ACL: the error names the file and line.
    std::fs::write(
        &acl_path,
        "user alice\ntopic readwrite home/#\ntopic bogus a\n",
    )
    .unwrap();
    let e = Auth::load(Some(&pw), Some(&acl_path), false).unwrap_err();
    assert_eq!(e.line, 3);
    assert_eq!(e.origin, acl_path.display().to_string());

    // A missing file.
    let e = Auth::load(Some(&dir.join("nope")), None, false).unwrap_err();
    assert_eq!(e.line, 0);
    assert!(e.to_string().contains("cannot read"), "{e}");

    // Invalid UTF-8 is reported with its line.
    std::fs::write(&pw, b"# ok\n# ok\nbad\xff:x\n").unwrap();
    let e = Auth::load(Some(&pw), None, false).unwrap_err();
    assert_eq!(e.line, 3);
    assert!(e.message.contains("UTF-8"));

    // No files at all.
    let auth = Auth::load(None, None, true).unwrap();
    assert!(auth.passwords().is_none() && auth.acl().is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn per_listener_rules_and_none_for_an_unknown_listener() {
    let open = Auth::new(None, None, true);
    let strict = Auth::new(Some(passwords()), Some(acl()), false);
    let global = Auth::new(None, None, true);
    // Without per-listener rules every listener gets the broker-wide ones.
    assert!(std::ptr::eq(global.for_listener(Some(1)), &global));
    assert!(std::ptr::eq(global.for_listener(None), &global));
    let auth = global.with_listeners(vec![open, strict]);
    let (first, second) = (auth.for_listener(Some(0)), auth.for_listener(Some(1)));
    assert_eq!(first.authenticate(None, None), AuthResult::Allowed);
    assert_eq!(second.authenticate(None, None), AuthResult::NotAuthorized);
    assert!(first.may_publish(Some("bob"), "c", "anything"));
    assert!(!second.may_publish(Some("bob"), "c", "anything"));
    // No listener known (a session restored from disk), or one past the
    // list: nothing is allowed.
    for nobody in [auth.for_listener(None), auth.for_listener(Some(2))] {
        assert_eq!(nobody.authenticate(None, None), AuthResult::NotAuthorized);
        assert!(!nobody.may_receive(None, "c", "a"));
        assert_eq!(
            nobody.subscribe_decision(None, "c", "#"),
            SubscribeDecision::Denied
        );
    }
}
