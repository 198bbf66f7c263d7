use super::*;

use std::os::unix::fs::PermissionsExt;

/// The outcome of one run: exit code, stdout, stderr.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_with(args: &[&str], stdin: &str) -> Out {
    let mut input = stdin.as_bytes();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut io = Io {
        stdin: &mut input,
        stdout: &mut stdout,
        stderr: &mut stderr,
        stdin_is_terminal: false,
    };
    let code = run(args.iter().map(|s| s.to_string()).collect(), &mut io);
    Out {
        code,
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

fn cli(args: &[&str]) -> Out {
    run_with(args, "")
}

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d =
            std::env::temp_dir().join(format!("boxmq-passwd-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn load(path: &str) -> PasswordFile {
    PasswordFile::load(Path::new(path)).unwrap()
}

#[test]
fn batch_create_and_add() {
    let d = Dir::new("batch");
    let f = d.file("pw");
    let out = cli(&["-c", "-b", &f, "alice", "s3cret"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    assert_eq!(cli(&["-b", &f, "bob", "-starts-with-dash"]).code, 0);
    let p = load(&f);
    assert!(p.check("alice", b"s3cret"));
    assert!(p.check("bob", b"-starts-with-dash"));

    // Changing a password keeps the other user and the order.
    assert_eq!(cli(&["-b", &f, "alice", "new"]).code, 0);
    let p = load(&f);
    assert!(p.check("alice", b"new") && !p.check("alice", b"s3cret"));
    assert_eq!(p.users().collect::<Vec<_>>(), ["alice", "bob"]);

    // -c overwrites.
    assert_eq!(cli(&["-c", "-b", &f, "carol", "c"]).code, 0);
    assert_eq!(load(&f).users().collect::<Vec<_>>(), ["carol"]);

    // -H sha512-pbkdf2 is accepted.
    assert_eq!(cli(&["-H", "sha512-pbkdf2", "-b", &f, "dave", "d"]).code, 0);
    assert!(load(&f).check("dave", b"d"));
}

#[test]
fn batch_without_the_file_fails() {
    let d = Dir::new("missing");
    let f = d.file("nope");
    let out = cli(&["-b", &f, "alice", "x"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("cannot read"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1);
    assert!(!Path::new(&f).exists());
}

#[test]
fn prompt_reads_twice_and_never_echoes() {
    let d = Dir::new("prompt");
    let f = d.file("pw");
    let out = run_with(&["-c", &f, "alice"], "hunter2\nhunter2\n");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "Password: Reenter password: ");
    assert!(!out.stderr.contains("hunter2"));
    assert!(load(&f).check("alice", b"hunter2"));

    // CRLF input, and a password with spaces.
    let out = run_with(&[&f, "bob"], "a b c\r\na b c\r\n");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(load(&f).check("bob", b"a b c"));
}

#[test]
fn prompt_mismatch_and_eof_fail_without_writing() {
    let d = Dir::new("mismatch");
    let f = d.file("pw");
    assert_eq!(cli(&["-c", "-b", &f, "alice", "old"]).code, 0);
    let before = std::fs::read_to_string(&f).unwrap();

    let out = run_with(&[&f, "alice"], "one\ntwo\n");
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("do not match"), "{}", out.stderr);
    assert!(!out.stderr.contains("one") && !out.stdout.contains("one"));

    let out = run_with(&[&f, "alice"], "only once\n");
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no password"), "{}", out.stderr);

    let out = run_with(&["-c", &f, "alice"], "");
    assert_eq!(out.code, 1);
    assert_eq!(std::fs::read_to_string(&f).unwrap(), before);
}

#[test]
fn delete() {
    let d = Dir::new("delete");
    let f = d.file("pw");
    assert_eq!(cli(&["-c", "-b", &f, "alice", "a"]).code, 0);
    assert_eq!(cli(&["-b", &f, "bob", "b"]).code, 0);
    assert_eq!(cli(&["-D", &f, "alice"]).code, 0);
    let p = load(&f);
    assert!(!p.contains("alice") && p.check("bob", b"b"));

    let out = cli(&["-D", &f, "alice"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("'alice' not found"), "{}", out.stderr);
}

#[test]
fn update_hashes_plain_text_in_place() {
    let d = Dir::new("update");
    let f = d.file("pw");
    let mut hashed = PasswordFile::new();
    hashed.set("done", b"kept").unwrap();
    let hashed_line = hashed.to_text();
    std::fs::write(
        &f,
        format!("# users\nalice:pa:ss\n\nbob: spaced \n{hashed_line}empty:\n"),
    )
    .unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();

    let out = cli(&["-U", &f]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = std::fs::read_to_string(&f).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "# users");
    assert_eq!(lines[2], "");
    assert_eq!(lines[4], hashed_line.trim_end());
    let p = load(&f);
    assert!(p.check("alice", b"pa:ss"));
    assert!(p.check("bob", b" spaced "));
    assert!(
        p.check("done", b"kept"),
        "already hashed entries are left alone"
    );
    assert!(p.check("empty", b""));
    let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "mode is kept");

    // Running it again changes nothing.
    assert_eq!(cli(&["-U", &f]).code, 0);
    assert_eq!(std::fs::read_to_string(&f).unwrap(), text);
}

#[test]
fn update_refuses_bad_lines_without_writing() {
    let d = Dir::new("update-bad");
    let f = d.file("pw");
    for (text, want) in [
        ("alice:x\nnocolon\n", ":2: expected 'username:password'"),
        ("alice:x\n:x\n", ":2: invalid username: empty"),
        (
            "alice:x\nalice:y\n",
            ":2: user 'alice' is already listed on line 1",
        ),
    ] {
        std::fs::write(&f, text).unwrap();
        let out = cli(&["-U", &f]);
        assert_eq!(out.code, 1, "{text:?}");
        assert!(out.stderr.contains(want), "{text:?}: {}", out.stderr);
        assert!(!out.stderr.contains("alice:x"), "no passwords in errors");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), text);
    }
}

#[test]
fn corrupt_file_is_reported_and_left_alone() {
    let d = Dir::new("corrupt");
    let f = d.file("pw");
    std::fs::write(&f, "# ok\nalice:plaintext\n").unwrap();
    let out = cli(&["-b", &f, "bob", "x"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains(":2: user 'alice'"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "# ok\nalice:plaintext\n"
    );
}

#[test]
fn bad_username() {
    let d = Dir::new("baduser");
    let f = d.file("pw");
    let out = cli(&["-c", "-b", &f, "a:b", "x"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("contains ':'"), "{}", out.stderr);
    assert!(!Path::new(&f).exists());
}

#[test]
fn usage_errors() {
    for args in [
        &[][..],
        &["-c", "-D", "f", "u"],
        &["-b", "-D", "f", "u", "p"],
        &["-U"],
        &["-U", "f", "extra"],
        &["-U", "-c", "f"],
        &["-b", "f", "u"],
        &["f"],
        &["f", "u", "extra"],
        &["-x", "f", "u"],
        &["-H", "sha512", "f", "u"],
        &["-H"],
    ] {
        let out = cli(args);
        assert_eq!(out.code, 2, "{args:?}");
        assert!(out.stderr.starts_with("boxmq passwd: "), "{args:?}");
        assert!(out.stderr.contains("Usage:"), "{args:?}");
    }
    let out = cli(&["-h"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.starts_with("Usage:"));
}

#[test]
fn symlinks_are_followed_and_other_files_untouched() {
    let d = Dir::new("symlink");
    let real = d.file("real");
    let link = d.file("link");
    assert_eq!(cli(&["-c", "-b", &real, "alice", "a"]).code, 0);
    std::os::unix::fs::symlink(&real, &link).unwrap();
    assert_eq!(cli(&["-b", &link, "bob", "b"]).code, 0);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(load(&real).check("bob", b"b"));
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(&d.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn edits_files_written_by_mosquitto_passwd() {
    let tool = "/usr/bin/mosquitto_passwd";
    if !Path::new(tool).exists() {
        eprintln!("skipped: no mosquitto_passwd");
        return;
    }
    let d = Dir::new("mosq");
    let f = d.file("pw");
    let st = Command::new(tool)
        .args(["-c", "-b", &f, "m", "from-mosquitto"])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(cli(&["-b", &f, "b", "from-boxmq"]).code, 0);
    // And mosquitto_passwd can edit boxmq's output in turn.
    let st = Command::new(tool)
        .args(["-b", &f, "m2", "again"])
        .status()
        .unwrap();
    assert!(st.success());
    let p = load(&f);
    assert!(p.check("m", b"from-mosquitto"));
    assert!(p.check("b", b"from-boxmq"));
    assert!(p.check("m2", b"again"));
}
