//! boxmq on Windows x64, tested on Linux under Wine (docs/WINDOWS.md).
//!
//! A nested build (target dir `target/windows`) makes `boxmq.exe` and
//! `boxmq.dll` for `x86_64-pc-windows-gnu` with Debian's mingw-w64, then:
//!
//! * both import only DLLs that Windows 10 ships (`objdump -p`);
//! * `boxmq.exe` on its default config (`%ProgramData%\boxmq\boxmq.conf`,
//!   data in `%ProgramData%\boxmq\data`) carries a Shelly press from Linux
//!   `mosquitto_pub` to `mosquitto_sub`, and a second broker on the same
//!   data directory is refused with a clear error;
//! * a retained QoS 1 message it acknowledged survives `kill -9` of the
//!   process (config with a drive-letter, backslash `persistence_location`);
//! * a listener port already in use is a clear error;
//! * the C example built with `x86_64-w64-mingw32-gcc` against `boxmq.dll`
//!   receives a press.
//!
//! Wine 8 (Debian 12) lacks `bcryptprimitives.dll`, which Rust's std
//! imports and Windows 10 has: a tiny stand-in (`tests/windows/
//! bcryptprimitives.c`) is built beside the programs under test only. The
//! Wine prefix is `target/windows/wineprefix`; the last test to finish
//! shuts its `wineserver` down.
//!
//! Needs `wine` (Debian: wine64), `x86_64-w64-mingw32-gcc`
//! (gcc-mingw-w64-x86-64), `mosquitto-clients` and the Rust target
//! (`rustup target add x86_64-pc-windows-gnu`); ./test.sh installs them.
//! A missing one fails the test, naming what to install.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

mod nested_cargo;
use nested_cargo::{cargo, manifest_dir, require, run_bounded, target_dir, without_outer_build};

const TARGET: &str = "x86_64-pc-windows-gnu";
/// Building both artifacts from scratch (release, LTO) on 2 cores.
const BUILD_LIMIT: Duration = Duration::from_secs(900);
/// A broker under Wine accepting connections (the first start also
/// creates the Wine prefix).
const START_LIMIT: Duration = Duration::from_secs(120);
const WAIT: Duration = Duration::from_secs(15);
const TOPIC: &str = "shellies/shellybutton1-A4CF12F45A10/input_event/0";
const PRESS: &str = r#"{"event":"S","event_cnt":7}"#;
/// DLLs a Windows 10 x64 installation has (`api-ms-win-*` are its API sets).
const SYSTEM_DLLS: &[&str] = &[
    "kernel32.dll",
    "ntdll.dll",
    "msvcrt.dll",
    "ws2_32.dll",
    "advapi32.dll",
    "bcryptprimitives.dll",
    "bcrypt.dll",
    "userenv.dll",
];

/// Where the programs under test and the stand-in DLL are put.
fn bin_dir() -> PathBuf {
    target_dir("windows").join("bin")
}

fn prefix() -> PathBuf {
    target_dir("windows").join("wineprefix")
}

/// The built artifacts: (boxmq.exe, boxmq.dll's import library), copied
/// into [`bin_dir`] with boxmq.dll and the stand-in.
fn built() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        require("wine", "wine64");
        require("x86_64-w64-mingw32-gcc", "gcc-mingw-w64-x86-64");
        let dir = target_dir("windows");
        let builds: [(&str, &[&str]); 2] = [
            ("build boxmq.exe", &["--release", "--bin", "boxmq"]),
            (
                "build boxmq.dll",
                &["--profile", "release-lib", "-p", "boxmq-ffi"],
            ),
        ];
        for (what, args) in builds {
            let (status, out) = run_bounded(
                cargo()
                    .arg("build")
                    .args(args)
                    .args(["--target", TARGET, "--target-dir"])
                    .arg(&dir),
                BUILD_LIMIT,
                what,
                &dir,
            );
            assert!(
                status.success(),
                "{what} failed (is the target installed? rustup target add {TARGET}):\n{out}"
            );
        }
        let bin = bin_dir();
        fs::create_dir_all(&bin).expect("create the bin dir");
        let exe = dir.join(TARGET).join("release/boxmq.exe");
        let lib_dir = dir.join(TARGET).join("release-lib");
        fs::copy(&exe, bin.join("boxmq.exe")).expect("copy boxmq.exe");
        fs::copy(lib_dir.join("boxmq.dll"), bin.join("boxmq.dll")).expect("copy boxmq.dll");
        let shim = Command::new("x86_64-w64-mingw32-gcc")
            .args(["-shared", "-O2", "-o"])
            .arg(bin.join("bcryptprimitives.dll"))
            .arg(manifest_dir().join("tests/windows/bcryptprimitives.c"))
            .arg("-ladvapi32")
            .output()
            .expect("run x86_64-w64-mingw32-gcc");
        assert!(
            shim.status.success(),
            "building the bcryptprimitives stand-in failed:\n{}",
            String::from_utf8_lossy(&shim.stderr)
        );
        (bin.join("boxmq.exe"), lib_dir.join("libboxmq.dll.a"))
    })
}

/// Held by the tests that install the service "boxmq" (one at a time).
static SERVICE: Mutex<()> = Mutex::new(());

/// Counts the tests using Wine; the last one to finish stops `wineserver`.
static USERS: Mutex<usize> = Mutex::new(0);

/// Held by a test for as long as it uses Wine.
struct WineSession;

impl WineSession {
    fn start() -> WineSession {
        built();
        *USERS.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        WineSession
    }
}

impl Drop for WineSession {
    fn drop(&mut self) {
        let mut users = USERS.lock().unwrap_or_else(|e| e.into_inner());
        *users -= 1;
        if *users == 0 {
            // Under the lock, and waited for (`-w`): a test starting now
            // must not reach a server that is still going away (its
            // socket directory vanishes under it: "wine: chdir to ...").
            for arg in ["-k", "-w"] {
                let _ = Command::new("wineserver")
                    .arg(arg)
                    .env("WINEPREFIX", prefix())
                    .status();
            }
        }
    }
}

/// Wine's own start-up failure, not boxmq's: a `wine` that starts while a
/// wineserver goes away finds its socket directory gone. Debian's Wine 8
/// shows it now and then on a loaded machine; the start is tried again.
fn wine_lost_its_server(output: &str) -> bool {
    output.contains("wine: chdir to") && output.contains("/server-")
}

/// How often a Wine start that lost its server is tried.
const WINE_TRIES: usize = 3;

/// A Wine command with the test prefix, quiet.
fn wine(program: &Path) -> Command {
    let mut cmd = Command::new("wine");
    cmd.arg(program)
        .env("WINEPREFIX", prefix())
        .env("WINEDEBUG", "-all")
        .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
        .stdin(Stdio::null());
    cmd
}

/// A Windows program under Wine, killed (SIGKILL) when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `path` (absolute, Linux) as Wine's `Z:` drive shows it to a program.
fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

/// `C:\ProgramData` of the test prefix, on the Linux side.
fn program_data() -> PathBuf {
    prefix().join("drive_c/ProgramData")
}

/// Starts `boxmq.exe` with `args`, its log in `log`; waits until `port`
/// accepts connections.
fn start_broker(args: &[&str], port: u16, log: &Path) -> Running {
    for _ in 1..WINE_TRIES {
        match try_start_broker(args, port, log) {
            Some(broker) => return broker,
            None => continue,
        }
    }
    try_start_broker(args, port, log).expect("boxmq.exe started")
}

/// [`start_broker`] once: `None` when Wine lost its server at the start.
fn try_start_broker(args: &[&str], port: u16, log: &Path) -> Option<Running> {
    let (exe, _) = built();
    let log_file = fs::File::create(log).expect("create the broker log");
    let child = wine(exe)
        .args(args)
        .stdout(log_file.try_clone().expect("clone the log"))
        .stderr(log_file)
        .spawn()
        .expect("start boxmq.exe under wine");
    let mut broker = Running(child);
    let deadline = Instant::now() + START_LIMIT;
    // Listening (the log says so: a port that accepts may still be a
    // killed broker's socket that wineserver has not closed yet).
    let listening = |log: &Path| {
        fs::read_to_string(log).is_ok_and(|t| t.contains(" listening on "))
            && TcpStream::connect(("127.0.0.1", port)).is_ok()
    };
    while !listening(log) {
        if let Some(status) = broker.0.try_wait().expect("wait") {
            let text = fs::read_to_string(log).unwrap_or_default();
            if wine_lost_its_server(&text) {
                return None;
            }
            panic!("boxmq.exe exited ({status}):\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "boxmq.exe not listening on {port} after {START_LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(broker)
}

fn mosquitto(tool: &str, port: u16, args: &[&str]) -> Output {
    require(tool, "mosquitto-clients");
    Command::new(tool)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

/// Presses until a `mosquitto_sub` waiting on `filter` prints one message
/// (a QoS 1 press each 300 ms: mosquitto_sub does not say when its
/// subscription is in place); returns what it printed.
fn press_until_received(port: u16, filter: &str) -> String {
    require("mosquitto_sub", "mosquitto-clients");
    let mut sub = Running(
        Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-t", filter, "-q", "1", "-C", "1", "-W", "20", "-v"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("mosquitto_sub"),
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let publish = mosquitto(
            "mosquitto_pub",
            port,
            &["-t", TOPIC, "-q", "1", "-m", PRESS],
        );
        assert!(publish.status.success(), "{publish:?}");
        if sub.0.try_wait().expect("wait").is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "no press received in {WAIT:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut out = String::new();
    if let Some(mut stdout) = sub.0.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
    }
    out.trim().to_owned()
}

fn imports(binary: &Path) -> Vec<String> {
    let out = Command::new("x86_64-w64-mingw32-objdump")
        .arg("-p")
        .arg(binary)
        .output()
        .expect("run x86_64-w64-mingw32-objdump (binutils-mingw-w64-x86-64)");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("DLL Name: "))
        .map(str::to_ascii_lowercase)
        .collect()
}

#[test]
fn exe_and_dll_import_only_windows_system_dlls() {
    let (exe, implib) = built();
    let dll = implib.with_file_name("boxmq.dll");
    assert!(implib.is_file(), "the import library is built");
    for binary in [exe, &dll] {
        let found = imports(binary);
        assert!(found.contains(&"ws2_32.dll".to_owned()), "{found:?}");
        for name in &found {
            assert!(
                SYSTEM_DLLS.contains(&name.as_str()) || name.starts_with("api-ms-win-"),
                "{} imports {name}, which Windows does not ship (static libgcc/winpthread?)",
                binary.display()
            );
        }
    }
}

#[test]
fn a_shelly_press_crosses_boxmq_exe_on_its_default_config() {
    let _wine = WineSession::start();
    let port = free_port();
    let base = program_data().join("boxmq");
    fs::create_dir_all(&base).expect("create ProgramData\\boxmq");
    fs::write(
        base.join("boxmq.conf"),
        format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
    )
    .expect("write the default config");
    let log = target_dir("windows").join("press.log");
    let broker = start_broker(&[], port, &log);

    assert_eq!(
        press_until_received(port, "shellies/+/input_event/0"),
        format!("{TOPIC} {PRESS}")
    );

    // The default data directory, and a second broker refused on it.
    assert!(base.join("data/lock").is_file(), "data in ProgramData");
    let conf = target_dir("windows").join("second.conf");
    fs::write(&conf, format!("listener {} 127.0.0.1\n", free_port())).expect("write");
    let second = wine(&built().0)
        .args(["-c", &windows_path(&conf)])
        .output()
        .expect("run a second boxmq.exe");
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(
        err.contains(r"C:\ProgramData\boxmq\data") && err.contains("locked by another process"),
        "{err}"
    );
    drop(broker);
}

#[test]
fn an_acknowledged_retained_message_survives_kill_9() {
    let _wine = WineSession::start();
    let port = free_port();
    let conf = target_dir("windows").join("kill9.conf");
    let data = program_data().join("kill9");
    let _ = fs::remove_dir_all(&data);
    // A drive-letter path with backslashes, as a Windows user writes it.
    fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\n\
             persistence true\npersistence_location C:\\ProgramData\\kill9\n"
        ),
    )
    .expect("write the config");
    let conf_arg = windows_path(&conf);
    let log = target_dir("windows").join("kill9.log");
    let mut broker = start_broker(&["-c", &conf_arg], port, &log);
    // mosquitto_pub exits 0 once the PUBACK arrived: the broker has the
    // message on disk by then [MQTT-4.3.2-1].
    let publish = mosquitto(
        "mosquitto_pub",
        port,
        &["-t", TOPIC, "-q", "1", "-r", "-m", PRESS],
    );
    assert!(publish.status.success(), "{publish:?}");
    broker.0.kill().expect("kill -9 boxmq.exe");
    let _ = broker.0.wait();
    // wineserver closes the killed process's handles (its listener, the
    // data directory's lock) a moment later.
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the killed broker's port stays open"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(data.join("lock").is_file(), "data where the config says");

    let log = target_dir("windows").join("kill9-restart.log");
    let _broker = start_broker(&["-c", &conf_arg], port, &log);
    let got = mosquitto(
        "mosquitto_sub",
        port,
        &["-t", TOPIC, "-C", "1", "-W", "10", "-v"],
    );
    assert!(got.status.success(), "{got:?}");
    assert_eq!(
        String::from_utf8_lossy(&got.stdout).trim(),
        format!("{TOPIC} {PRESS}")
    );
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let _wine = WineSession::start();
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let conf = target_dir("windows").join("in-use.conf");
    fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\npersistence false\n"),
    )
    .expect("write");
    let mut tries = 0;
    let (out, err) = loop {
        let out = wine(&built().0)
            .args(["-c", &windows_path(&conf)])
            .output()
            .expect("run boxmq.exe");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        tries += 1;
        if !wine_lost_its_server(&err) || tries == WINE_TRIES {
            break (out, err);
        }
    };
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}"))
            && err.contains("another program listens on this port"),
        "{err}"
    );
}

#[test]
fn the_c_example_against_boxmq_dll_receives_a_press() {
    let _wine = WineSession::start();
    let (_, implib) = built();
    let exe = bin_dir().join("button_dashboard.exe");
    let cc = Command::new("x86_64-w64-mingw32-gcc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-I"])
        .arg(manifest_dir().join("ffi/include"))
        .arg(manifest_dir().join("examples/c/button_dashboard.c"))
        .arg(implib)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run x86_64-w64-mingw32-gcc");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let mut child = Running(
        wine(&exe)
            .arg("0")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the C example"),
    );
    let out = child.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line.trim_end_matches('\r').to_owned()).is_err() {
                break;
            }
        }
    });
    let next = || {
        rx.recv_timeout(START_LIMIT)
            .expect("a line from the C example")
    };
    assert_eq!(next(), "state: Init");
    assert_eq!(next(), "state: Running");
    let listening = next();
    let port: u16 = listening
        .strip_prefix("listening on 127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected line {listening:?}"));
    assert_eq!(next(), "waiting for presses on shellies/+/input_event/0");
    let publish = mosquitto("mosquitto_pub", port, &["-t", TOPIC, "-m", PRESS]);
    assert!(publish.status.success(), "{publish:?}");
    assert_eq!(
        next(),
        "shellybutton1-A4CF12F45A10: short press (S), count 7"
    );
}

/// `wine` running a Windows command to its end (at most `WAIT` x 4), its
/// output as text. The output goes through a file, not a pipe: programs it
/// starts (msiexec's server) may outlive it holding a pipe open.
fn wine_output(program: &str, args: &[&str]) -> (bool, String) {
    wine_output_in(&prefix(), program, args)
}

/// [`wine_output`] in Wine prefix `wine_prefix`.
fn wine_output_in(wine_prefix: &Path, program: &str, args: &[&str]) -> (bool, String) {
    let mut tries = 0;
    loop {
        let (ok, output) = wine_output_once(wine_prefix, program, args);
        tries += 1;
        if ok || !wine_lost_its_server(&output) || tries == WINE_TRIES {
            return (ok, output);
        }
    }
}

/// [`wine_output_in`] once.
fn wine_output_once(wine_prefix: &Path, program: &str, args: &[&str]) -> (bool, String) {
    static SERIAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = target_dir("windows").join(format!("wine-output-{n}.txt"));
    let file = fs::File::create(&path).expect("create the output file");
    let mut child = Running(
        Command::new("wine")
            .arg(program)
            .args(args)
            .env("WINEPREFIX", wine_prefix)
            .env("WINEDEBUG", "-all")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("wine {program}: {e}")),
    );
    let deadline = Instant::now() + WAIT * 4;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "wine {program} {args:?} still running after {:?}",
            WAIT * 4
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = fs::read_to_string(&path).unwrap_or_default();
    (status.success(), output)
}

/// Install, start, graceful stop (a 5.0 client gets DISCONNECT 0x8B
/// [MQTT-3.14.2-1]), uninstall, through Wine's service manager (`sc`).
/// Wine runs the service only while another Wine program runs: an idle
/// `cmd` is kept open for that. What Wine cannot show (restart on
/// failure, the real firewall) is in docs/WINDOWS.md.
#[test]
fn the_service_installs_starts_stops_gracefully_and_uninstalls() {
    let _service = SERVICE.lock().unwrap_or_else(|e| e.into_inner());
    let _wine = WineSession::start();
    let (exe, _) = built();
    let exe = exe.to_str().expect("a UTF-8 path");
    let port = free_port();
    let conf = target_dir("windows").join("service.conf");
    fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\n\
             persistence_location C:\\ProgramData\\service-test\n"
        ),
    )
    .expect("write the config");
    // Left over by an interrupted run: not an error here.
    let _ = wine_output(exe, &["service", "uninstall"]);
    let mut keep_alive = Running(
        Command::new("wine")
            .arg("cmd")
            .env("WINEPREFIX", prefix())
            .env("WINEDEBUG", "-all")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("wine cmd"),
    );

    let (ok, text) = wine_output(
        exe,
        &["service", "install", "--config", &windows_path(&conf)],
    );
    assert!(ok, "{text}");
    assert!(text.contains("installed the service 'boxmq'"), "{text}");
    let (ok, text) = wine_output(exe, &["service", "install"]);
    assert!(!ok && text.contains("already installed"), "{text}");

    let (ok, text) = wine_output("sc", &["start", "boxmq"]);
    assert!(ok, "{text}");
    let deadline = Instant::now() + START_LIMIT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the service does not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        press_until_received(port, "shellies/+/input_event/0"),
        format!("{TOPIC} {PRESS}")
    );
    let v5 = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-V", "mqttv5", "-t", "x", "-d", "-W", "20"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub");
    std::thread::sleep(Duration::from_secs(1));
    let (ok, text) = wine_output("sc", &["stop", "boxmq"]);
    assert!(ok, "{text}");
    let out = v5.wait_with_output().expect("mosquitto_sub");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("Received DISCONNECT (139)"), "{said}");
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, text) = wine_output("sc", &["query", "boxmq"]);
        if text.contains("STOPPED") {
            break;
        }
        assert!(Instant::now() < deadline, "not stopped: {text}");
        std::thread::sleep(Duration::from_millis(200));
    }

    let (ok, text) = wine_output(exe, &["service", "uninstall"]);
    assert!(
        ok && text.contains("uninstalled the service 'boxmq'"),
        "{text}"
    );
    let (ok, text) = wine_output(exe, &["service", "uninstall"]);
    assert!(!ok && text.contains("is not installed"), "{text}");
    drop(keep_alive.0.stdin.take());
}

/// `pkg/windows/dist.sh` makes the zip and the MSI with what the issue
/// lists; the MSI installs under `wine msiexec /qn` to %ProgramFiles%\boxmq
/// with the config in %ProgramData%\boxmq and the service registered (not
/// started: it would listen on 1883); a newer MSI replaces it keeping the
/// edited config, an older one is refused, and uninstalling removes the
/// program and the service but leaves the config.
#[test]
fn the_zip_and_the_msi_hold_the_release_and_the_msi_installs() {
    let _service = SERVICE.lock().unwrap_or_else(|e| e.into_inner());
    let _wine = WineSession::start();
    for (tool, package) in [("wixl", "wixl"), ("msiinfo", "msitools"), ("zip", "zip")] {
        require(tool, package);
    }
    let dir = target_dir("windows");
    let dist = dir.join("dist");
    let mut cmd = Command::new("bash");
    cmd.arg(manifest_dir().join("pkg/windows/dist.sh"))
        .env("CARGO_TARGET_DIR", &dir)
        .env("BOXMQ_DIST", &dist);
    without_outer_build(&mut cmd).env("CARGO_TARGET_DIR", &dir);
    let (status, out) = run_bounded(&mut cmd, BUILD_LIMIT, "dist", &dir);
    assert!(status.success(), "{out}");
    let name = format!("boxmq-{}-x86_64-windows", env!("CARGO_PKG_VERSION"));
    let files = [
        "boxmq.exe",
        "boxmq.dll",
        "boxmq.dll.a",
        "boxmq.h",
        "boxmq.conf",
        "README.md",
        "WINDOWS.md",
    ];

    let zip = dist.join(format!("{name}.zip"));
    let listing = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))",
        ])
        .arg(&zip)
        .output()
        .expect("python3");
    let listing = String::from_utf8_lossy(&listing.stdout);
    let mut in_zip: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{name}/")))
        .filter(|l| !l.is_empty())
        .collect();
    in_zip.sort_unstable();
    let mut want = files.to_vec();
    want.sort_unstable();
    assert_eq!(in_zip, want, "{listing}");

    let msi = dist.join(format!("{name}.msi"));
    let table = |name: &str| {
        let out = Command::new("msiinfo")
            .args(["export"])
            .arg(&msi)
            .arg(name)
            .output()
            .expect("msiinfo");
        assert!(out.status.success(), "msiinfo export {name}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let file_table = table("File");
    let mut in_msi: Vec<&str> = file_table
        .lines()
        .skip(3)
        .filter_map(|l| l.split('\t').nth(2))
        .collect();
    in_msi.sort_unstable();
    assert_eq!(in_msi, want, "{file_table}");
    let dirs = table("Directory");
    assert!(
        dirs.contains("ProgramFiles64Folder") && dirs.contains("CommonAppDataFolder"),
        "{dirs}"
    );
    let service = table("ServiceInstall");
    let row: Vec<&str> = service
        .lines()
        .nth(3)
        .unwrap_or_default()
        .split('\t')
        .collect();
    assert_eq!(row.get(1), Some(&"boxmq"), "{service}");
    assert_eq!(row.get(4), Some(&"2"), "automatic start: {service}");
    assert!(
        service.contains(r#"service run --config "[CommonAppDataFolder]boxmq\boxmq.conf""#),
        "{service}"
    );

    // The config component is Permanent (16) and NeverOverwrite (128);
    // newer versions replace older ones (MajorUpgrade).
    let components = table("Component");
    let attributes: u32 = components
        .lines()
        .find_map(|l| l.strip_prefix("Config\t"))
        .and_then(|l| l.split('\t').nth(2))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no Config component: {components}"));
    assert_eq!(attributes & (16 | 128), 16 | 128, "{components}");
    let upgrade = table("Upgrade");
    assert!(
        upgrade.contains("WIX_UPGRADE_DETECTED") && upgrade.contains("WIX_DOWNGRADE_DETECTED"),
        "{upgrade}"
    );

    // Installed under Wine, in a fresh prefix of its own: every build has
    // a new product code, so an older build's install would stay beside.
    // Wine runs services only while another Wine program runs: an idle
    // cmd for the uninstall's service stop.
    let msi_prefix = dir.join("msiprefix");
    let _ = fs::remove_dir_all(&msi_prefix);
    struct KillServer(PathBuf);
    impl Drop for KillServer {
        fn drop(&mut self) {
            let _ = Command::new("wineserver")
                .arg("-k")
                .env("WINEPREFIX", &self.0)
                .status();
        }
    }
    let _server = KillServer(msi_prefix.clone());
    // The prefix is made by its first program; Wine's first start in a new
    // prefix can lose its server socket to a parallel start (retried).
    let made = (0..3).any(|_| wine_output_in(&msi_prefix, "cmd", &["/c", "exit"]).0);
    assert!(
        made,
        "cannot create the Wine prefix {}",
        msi_prefix.display()
    );
    let mut keep_alive = Running(
        Command::new("wine")
            .arg("cmd")
            .env("WINEPREFIX", &msi_prefix)
            .env("WINEDEBUG", "-all")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("wine cmd"),
    );
    let msi_arg = windows_path(&msi);
    let (ok, text) = wine_output_in(&msi_prefix, "msiexec", &["/i", &msi_arg, "/qn"]);
    assert!(ok, "msiexec /i: {text}");
    let installed = msi_prefix.join("drive_c/Program Files/boxmq");
    let until = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + WAIT;
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    until("installed", &|| installed.join("WINDOWS.md").is_file());
    for f in files.iter().filter(|f| **f != "boxmq.conf") {
        assert!(installed.join(f).is_file(), "{f} in Program Files");
    }
    assert!(
        msi_prefix
            .join("drive_c/ProgramData/boxmq/boxmq.conf")
            .is_file()
    );
    let (_, text) = wine_output_in(&msi_prefix, "sc", &["query", "boxmq"]);
    assert!(text.contains("STOPPED"), "registered, not started: {text}");

    // The user's config survives an upgrade and the uninstall.
    let config = msi_prefix.join("drive_c/ProgramData/boxmq/boxmq.conf");
    let mut edited = fs::read_to_string(&config).expect("installed config");
    edited.push_str("# edited on the box\r\n");
    fs::write(&config, &edited).expect("edit the config");
    let next = next_version(env!("CARGO_PKG_VERSION"));
    let mut cmd = Command::new("bash");
    cmd.arg(manifest_dir().join("pkg/windows/dist.sh"))
        .env("BOXMQ_VERSION", &next)
        .env("BOXMQ_DIST", &dist);
    without_outer_build(&mut cmd).env("CARGO_TARGET_DIR", &dir);
    let (status, out) = run_bounded(&mut cmd, BUILD_LIMIT, "dist (upgrade)", &dir);
    assert!(status.success(), "{out}");
    let upgrade = windows_path(&dist.join(format!("boxmq-{next}-x86_64-windows.msi")));
    let (ok, text) = wine_output_in(&msi_prefix, "msiexec", &["/i", &upgrade, "/qn"]);
    assert!(ok, "msiexec /i (upgrade): {text}");
    let products = installed_products(&msi_prefix);
    assert_eq!(
        products,
        std::slice::from_ref(&next),
        "one boxmq, the newer one"
    );
    assert!(installed.join("boxmq.exe").is_file());
    assert_eq!(fs::read_to_string(&config).ok().as_ref(), Some(&edited));
    // Back to the older one: refused, the newer one stays.
    let (ok, text) = wine_output_in(&msi_prefix, "msiexec", &["/i", &msi_arg, "/qn"]);
    assert!(!ok, "downgrade accepted: {text}");
    assert_eq!(installed_products(&msi_prefix), [next]);

    let (ok, text) = wine_output_in(&msi_prefix, "msiexec", &["/x", &upgrade, "/qn"]);
    assert!(ok, "msiexec /x: {text}");
    until("uninstalled", &|| !installed.join("boxmq.exe").exists());
    let (_, text) = wine_output_in(&msi_prefix, "sc", &["query", "boxmq"]);
    assert!(!text.contains("SERVICE_NAME"), "service removed: {text}");
    assert!(installed_products(&msi_prefix).is_empty());
    assert_eq!(
        fs::read_to_string(&config).ok().as_ref(),
        Some(&edited),
        "the config stays after uninstalling"
    );
    drop(keep_alive.0.stdin.take());
}

/// `0.1.0` -> `0.1.1`: a version the MSI takes as newer.
fn next_version(version: &str) -> String {
    let (head, last) = version.rsplit_once('.').expect("x.y.z version");
    let last: u32 = last.parse().expect("numeric patch version");
    format!("{head}.{}", last + 1)
}

/// The versions of boxmq that Windows (Wine) lists as installed, from the
/// uninstall entries in the registry.
fn installed_products(prefix: &Path) -> Vec<String> {
    let key = r"HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall";
    let (_, text) = wine_output_in(prefix, "reg", &["query", key, "/s"]);
    let mut versions = Vec::new();
    let mut boxmq = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("HKEY_") {
            boxmq = false;
        } else if line.starts_with("DisplayName") && line.ends_with("boxmq MQTT broker") {
            boxmq = true;
        } else if boxmq && line.starts_with("DisplayVersion") {
            if let Some(v) = line.split_whitespace().last() {
                versions.push(v.to_owned());
            }
        }
    }
    versions
}

/// Ctrl-C (Wine turns SIGINT into CTRL_C_EVENT for a console program) is a
/// graceful stop: a 5.0 client gets DISCONNECT 0x8B [MQTT-3.14.2-1] and the
/// broker exits 0.
#[test]
fn ctrl_c_stops_boxmq_exe_gracefully() {
    let _wine = WineSession::start();
    let port = free_port();
    let conf = target_dir("windows").join("ctrl-c.conf");
    fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\npersistence false\n"),
    )
    .expect("write");
    let log = target_dir("windows").join("ctrl-c.log");
    let mut broker = start_broker(&["-c", &windows_path(&conf)], port, &log);
    let v5 = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-V", "mqttv5", "-t", "x", "-d", "-W", "20"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub");
    std::thread::sleep(Duration::from_secs(1));
    let sent = Command::new("kill")
        .args(["-INT", &broker.0.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(sent.success());
    let out = v5.wait_with_output().expect("mosquitto_sub");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("Received DISCONNECT (139)"), "{said}");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = broker.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "boxmq.exe did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{status}: {text}");
    assert!(text.contains("Ctrl-C received; stopping"), "{text}");
}
