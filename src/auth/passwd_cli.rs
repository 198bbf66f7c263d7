//! `boxmq passwd`: manage a password file, like `mosquitto_passwd`.
//!
//! ```text
//! boxmq passwd [-c | -D] FILE USER          prompt for USER's password (twice)
//! boxmq passwd [-c] -b FILE USER PASSWORD   password on the command line
//! boxmq passwd -U FILE                      hash a file of user:password lines
//! ```
//!
//! `-c` creates the file, overwriting any old one; `-D` deletes USER. New
//! hashes are `$7$` with 101 iterations and a 12-byte random salt, the same as
//! `mosquitto_passwd` 2.0 writes, so either broker reads the other's files.
//! `-H sha512-pbkdf2` is accepted for compatibility (it is the only kind
//! written).
//!
//! Differences from `mosquitto_passwd` 2.0.11: comments and blank lines are
//! kept (it calls them corrupt, and `-b` on such a file destroys it); `-U`
//! leaves entries that are already hashed alone (it hashes them again,
//! locking those users out); a new file is created with mode 0600 (it uses
//! the umask). The file is replaced atomically (written beside it, then
//! renamed), keeping an existing file's mode and, where permitted, owner.
//!
//! When standard input is a terminal, the password prompt turns echo off
//! with `stty -echo` on `/dev/tty` and turns it back on afterwards; if that
//! is impossible the command refuses rather than echo the password. An
//! interrupt (Ctrl-C) at the prompt leaves echo off (`stty echo` or `reset`
//! restores it). When standard input is not a terminal the password is read
//! from it, one line per prompt.
//!
//! Exit codes: 0 on success, 1 on an error, 2 on a usage error.

use std::fs::File;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::passwd::{PasswordFile, entry_text, is_hash, validate_username};

/// Usage text, printed for `-h` and after a usage error.
pub const USAGE: &str = "\
Usage: boxmq passwd [-c | -D] FILE USER
       boxmq passwd [-c] -b FILE USER PASSWORD
       boxmq passwd -U FILE
 -b : batch mode: take the password from the command line.
 -c : create a new password file, overwriting any existing one.
 -D : delete USER from the file.
 -U : hash the plain-text passwords of a file of user:password lines, in place.
 -H sha512-pbkdf2 : accepted for compatibility; the only hash written.
";

/// Where the command reads and writes. Tests pass buffers; [`run_std`] passes
/// the process's streams.
pub struct Io<'a> {
    /// Passwords are read from here, one line each.
    pub stdin: &'a mut dyn BufRead,
    /// Prompts and `-h` output.
    pub stdout: &'a mut dyn Write,
    /// Errors and warnings.
    pub stderr: &'a mut dyn Write,
    /// Is `stdin` the user's terminal? Then echo is turned off while a
    /// password is typed.
    pub stdin_is_terminal: bool,
}

/// Run `boxmq passwd` with the process's standard streams. `args` are the
/// arguments after `passwd`.
pub fn run_std(args: Vec<String>) -> i32 {
    let stdin = io::stdin();
    let stdin_is_terminal = stdin.is_terminal();
    let mut stdin = stdin.lock();
    let mut stdout = io::stdout();
    let mut stderr = io::stderr();
    let mut io = Io {
        stdin: &mut stdin,
        stdout: &mut stdout,
        stderr: &mut stderr,
        stdin_is_terminal,
    };
    run(args, &mut io)
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    /// Set USER's password, from the command line or a prompt.
    Set {
        file: String,
        user: String,
        password: Option<String>,
        create: bool,
    },
    /// Delete USER.
    Delete { file: String, user: String },
    /// Hash a plain-text file in place.
    Update { file: String },
    /// Print the usage.
    Help,
}

/// A failure: the message (one line) and the exit code.
struct Failure {
    message: String,
    code: i32,
}

fn usage_error(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: 2,
    }
}

fn error(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: 1,
    }
}

fn parse_args(args: Vec<String>) -> Result<Mode, Failure> {
    let (mut create, mut delete, mut batch, mut update) = (false, false, false, false);
    let mut positional = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if !positional.is_empty() {
            positional.push(arg);
            continue;
        }
        match arg.as_str() {
            "-c" => create = true,
            "-D" => delete = true,
            "-b" => batch = true,
            "-U" => update = true,
            "-h" | "--help" => return Ok(Mode::Help),
            "-H" => match args.next().as_deref() {
                Some("sha512-pbkdf2") => {}
                Some(other) => {
                    return Err(usage_error(format!(
                        "unsupported hash '{other}': boxmq passwd writes only sha512-pbkdf2"
                    )));
                }
                None => return Err(usage_error("-H needs a hash name")),
            },
            "--" => positional.extend(args.by_ref()),
            s if s.starts_with('-') && s.len() > 1 => {
                return Err(usage_error(format!("unknown option '{s}'")));
            }
            _ => positional.push(arg),
        }
    }
    if create && delete {
        return Err(usage_error("-c and -D cannot be used together"));
    }
    if batch && delete {
        return Err(usage_error("-b and -D cannot be used together"));
    }
    if update {
        if create || delete || batch {
            return Err(usage_error("-U cannot be used with -c, -D or -b"));
        }
        let [file] = <[String; 1]>::try_from(positional)
            .map_err(|_| usage_error("-U takes exactly one argument, the file"))?;
        return Ok(Mode::Update { file });
    }
    if batch {
        let [file, user, password] = <[String; 3]>::try_from(positional)
            .map_err(|_| usage_error("-b takes FILE USER PASSWORD"))?;
        return Ok(Mode::Set {
            file,
            user,
            password: Some(password),
            create,
        });
    }
    let [file, user] =
        <[String; 2]>::try_from(positional).map_err(|_| usage_error("expected FILE USER"))?;
    if delete {
        Ok(Mode::Delete { file, user })
    } else {
        Ok(Mode::Set {
            file,
            user,
            password: None,
            create,
        })
    }
}

/// Run `boxmq passwd`; `args` are the arguments after `passwd`. Returns the
/// exit code.
pub fn run(args: Vec<String>, io: &mut Io<'_>) -> i32 {
    let result = parse_args(args).and_then(|mode| execute(mode, io));
    match result {
        Ok(()) => 0,
        Err(f) => {
            let _ = writeln!(io.stderr, "boxmq passwd: {}", f.message);
            if f.code == 2 {
                let _ = write!(io.stderr, "{USAGE}");
            }
            f.code
        }
    }
}

fn execute(mode: Mode, io: &mut Io<'_>) -> Result<(), Failure> {
    match mode {
        Mode::Help => {
            let _ = write!(io.stdout, "{USAGE}");
            Ok(())
        }
        Mode::Set {
            file,
            user,
            password,
            create,
        } => {
            validate_username(&user).map_err(|e| error(e.to_string()))?;
            // Read the old file first so a broken one is reported before the
            // user types a password.
            let mut pw_file = if create {
                PasswordFile::new()
            } else {
                load(&file)?
            };
            let password = match password {
                Some(p) => p,
                None => prompt_twice(io)?,
            };
            pw_file
                .set(&user, password.as_bytes())
                .map_err(|e| error(e.to_string()))?;
            save(&file, &pw_file.to_text())
        }
        Mode::Delete { file, user } => {
            let mut pw_file = load(&file)?;
            if !pw_file.remove(&user) {
                return Err(error(format!("user '{user}' not found in {file}")));
            }
            save(&file, &pw_file.to_text())
        }
        Mode::Update { file } => {
            let text = read(&file)?;
            let hashed = hash_plain_text(&text, &file)?;
            save(&file, &hashed)
        }
    }
}

fn read(file: &str) -> Result<String, Failure> {
    super::read_text(Path::new(file)).map_err(|e| error(e.to_string()))
}

fn load(file: &str) -> Result<PasswordFile, Failure> {
    let text = read(file)?;
    PasswordFile::parse(&text, file).map_err(|e| error(e.to_string()))
}

/// `-U`: hash every `user:password` line whose password is not a hash yet.
/// The password is everything after the first `:`.
fn hash_plain_text(text: &str, origin: &str) -> Result<String, Failure> {
    let mut out = String::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim_matches([' ', '\t']);
        let keep = trimmed.is_empty()
            || trimmed.starts_with('#')
            || line
                .split_once(':')
                .is_some_and(|(_, p)| is_hash(p.trim_matches([' ', '\t'])));
        if keep {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let Some((user, password)) = line.split_once(':') else {
            return Err(error(format!(
                "{origin}:{n}: expected 'username:password' (no ':' on the line)"
            )));
        };
        let user = user.trim_matches([' ', '\t']);
        let entry = entry_text(user, password.as_bytes())
            .map_err(|e| error(format!("{origin}:{n}: {e}")))?;
        out.push_str(&entry);
        out.push('\n');
    }
    // The result must load: a duplicate user or a broken hashed line is
    // reported now, not when the broker starts.
    PasswordFile::parse(&out, origin).map_err(|e| error(e.to_string()))?;
    Ok(out)
}

/// Ask for the password twice; they must match.
fn prompt_twice(io: &mut Io<'_>) -> Result<String, Failure> {
    let first = prompt(io, "Password: ")?;
    let second = prompt(io, "Reenter password: ")?;
    if first != second {
        return Err(error("passwords do not match"));
    }
    Ok(first)
}

fn prompt(io: &mut Io<'_>, text: &str) -> Result<String, Failure> {
    let _ = write!(io.stdout, "{text}");
    let _ = io.stdout.flush();
    let mut line = String::new();
    let read = if io.stdin_is_terminal {
        let _echo = EchoOff::new().map_err(|e| {
            error(format!(
                "cannot turn off terminal echo ({e}); use -b or pipe the password in"
            ))
        })?;
        let r = io.stdin.read_line(&mut line);
        // The Enter key was not echoed either.
        let _ = writeln!(io.stdout);
        r
    } else {
        io.stdin.read_line(&mut line)
    };
    match read {
        Ok(0) => Err(error("no password given (end of input)")),
        Ok(_) => {
            if line.ends_with('\n') {
                line.pop();
                if line.ends_with('\r') {
                    line.pop();
                }
            }
            Ok(line)
        }
        Err(e) => Err(error(format!("cannot read the password: {e}"))),
    }
}

/// Terminal echo off while alive, via `stty` on `/dev/tty`.
struct EchoOff;

impl EchoOff {
    fn new() -> io::Result<EchoOff> {
        stty("-echo")?;
        Ok(EchoOff)
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = stty("echo");
    }
}

fn stty(setting: &str) -> io::Result<()> {
    let tty = File::open("/dev/tty")?;
    let status = Command::new("stty")
        .arg(setting)
        .stdin(tty)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("stty {setting} failed")))
    }
}

/// Replace `file` with `text` atomically: write a temporary file beside it,
/// then rename it over. An existing file's mode and owner are kept; a new
/// file gets mode 0600. A symbolic link is followed, not replaced.
fn save(file: &str, text: &str) -> Result<(), Failure> {
    let target = match std::fs::canonicalize(file) {
        Ok(p) => p,
        Err(_) => PathBuf::from(file),
    };
    write_atomically(&target, text.as_bytes())
        .map_err(|e| error(format!("cannot write {file}: {e}")))
}

fn write_atomically(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::other("not a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".boxmq-tmp");
    let tmp = target.with_file_name(tmp_name);
    let old = std::fs::metadata(target).ok();

    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut f = options.open(&tmp)?;
        if let Some(old) = &old {
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                // Only root may give the file away; otherwise it stays ours.
                let _ = std::os::unix::fs::fchown(&f, Some(old.uid()), Some(old.gid()));
            }
            f.set_permissions(old.permissions())?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests;
