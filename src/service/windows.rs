//! `boxmq service install|uninstall|run`: boxmq as a Windows service.
//!
//! * `install [--config FILE] [--no-firewall]` registers the service
//!   `boxmq` ("boxmq MQTT broker"): automatic start as LocalSystem,
//!   restarted by the service manager when it fails (5 s, 5 s, then 30 s),
//!   running `boxmq.exe service run [--config FILE]`. FILE defaults to
//!   `%ProgramData%\boxmq\boxmq.conf` when it exists. For each listener of
//!   the config that is not on loopback it adds an inbound Windows Firewall
//!   rule (`netsh advfirewall`), all named `boxmq MQTT broker`.
//! * `uninstall` stops and deletes the service and removes those rules.
//! * `run` is what the service manager starts: it connects to the service
//!   manager, reports Running, redirects the log (stderr) to
//!   `%ProgramData%\boxmq\log\boxmq.log`, runs the broker until the Stop
//!   control (a graceful stop through `platform::stop`), and reports
//!   Stopped with the broker's exit status.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::os::windows::io::IntoRawHandle;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::OnceLock;
use std::time::Duration;

use boxmq::config::Config;
use boxmq::platform::{paths, stop};
use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

use super::Run;

/// The service's name (`sc query boxmq`, `net stop boxmq`).
const NAME: &str = "boxmq";
const DISPLAY_NAME: &str = "boxmq MQTT broker";
const DESCRIPTION: &str = "A small MQTT 3.1/3.1.1/5.0 broker for the box (boxmq).";
/// The name of every firewall rule `install` adds.
const FIREWALL_RULE: &str = "boxmq MQTT broker";
/// `ERROR_SERVICE_EXISTS`.
const ERROR_SERVICE_EXISTS: i32 = 1073;
/// `ERROR_SERVICE_DOES_NOT_EXIST`.
const ERROR_SERVICE_DOES_NOT_EXIST: i32 = 1060;
/// `ERROR_ACCESS_DENIED`.
const ERROR_ACCESS_DENIED: i32 = 5;
/// `ERROR_FAILED_SERVICE_CONTROLLER_CONNECT`: `service run` typed in a console.
const ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: i32 = 1063;

const USAGE: &str = "\
Usage: boxmq service install [--config FILE] [--no-firewall]
       boxmq service uninstall
       boxmq service run [--config FILE]   (what the service manager starts)
";

/// Runs `boxmq service ARGS...`.
pub fn command(args: &[String], run: Run) -> ExitCode {
    let result = match args.first().map(String::as_str) {
        Some("install") => install(&args[1..]),
        Some("uninstall") if args.len() == 1 => uninstall(),
        Some("run") => return run_service(args[1..].to_vec(), run),
        Some("-h" | "--help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => Err(format!("expected install, uninstall or run\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("boxmq service: {e}");
            ExitCode::from(2)
        }
    }
}

/// What the service manager's errors mean for a person.
fn explain(what: &str, e: &windows_service::Error) -> String {
    let os = match e {
        windows_service::Error::Winapi(io) => io.raw_os_error(),
        _ => None,
    };
    match os {
        Some(ERROR_ACCESS_DENIED) => {
            format!("{what}: access denied (run it from an administrator prompt)")
        }
        Some(ERROR_SERVICE_EXISTS) => format!(
            "{what}: the service '{NAME}' is already installed \
             (boxmq service uninstall first to change it)"
        ),
        Some(ERROR_SERVICE_DOES_NOT_EXIST) => {
            format!("{what}: the service '{NAME}' is not installed")
        }
        _ => match e {
            windows_service::Error::Winapi(io) => format!("{what}: {io}"),
            other => format!("{what}: {other}"),
        },
    }
}

fn install(args: &[String]) -> Result<(), String> {
    let mut config: Option<PathBuf> = None;
    let mut firewall = true;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-firewall" => firewall = false,
            "-c" | "--config" => match args.next() {
                Some(v) if config.is_none() => config = Some(PathBuf::from(v)),
                Some(_) => return Err("only one --config may be given".into()),
                None => return Err(format!("{arg}: missing FILE")),
            },
            other => return Err(format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    let config = config.or_else(paths::default_config);
    let config = match config {
        Some(path) => {
            Some(std::path::absolute(&path).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        None => None,
    };
    // A config the broker would refuse is refused now, not at every start.
    let listeners = match &config {
        Some(path) => Config::from_file(path)
            .map_err(|e| e.to_string())?
            .effective_listeners(),
        None => Config::default().effective_listeners(),
    };
    let exe = std::env::current_exe().map_err(|e| format!("where is boxmq.exe? {e}"))?;
    let mut launch = vec![OsString::from("service"), OsString::from("run")];
    if let Some(path) = &config {
        launch.push("--config".into());
        launch.push(path.into());
    }
    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )
    .map_err(|e| explain("cannot open the service manager", &e))?;
    let info = ServiceInfo {
        name: NAME.into(),
        display_name: DISPLAY_NAME.into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe.clone(),
        launch_arguments: launch,
        dependencies: vec![],
        account_name: None,
        account_password: None,
    };
    let service = manager
        .create_service(&info, ServiceAccess::CHANGE_CONFIG | ServiceAccess::START)
        .map_err(|e| explain("cannot install the service", &e))?;
    if let Err(e) = service.set_description(DESCRIPTION) {
        eprintln!(
            "boxmq service: {}",
            explain("cannot set the description", &e)
        );
    }
    let restart = |secs| ServiceAction {
        action_type: ServiceActionType::Restart,
        delay: Duration::from_secs(secs),
    };
    let failure = ServiceFailureActions {
        reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(86_400)),
        reboot_msg: None,
        command: None,
        actions: Some(vec![restart(5), restart(5), restart(30)]),
    };
    // A failed restart policy leaves a working service: said, not fatal.
    if let Err(e) = service
        .update_failure_actions(failure)
        .and_then(|()| service.set_failure_actions_on_non_crash_failures(true))
    {
        eprintln!(
            "boxmq service: {}",
            explain("cannot set restart on failure", &e)
        );
    }
    println!(
        "installed the service '{NAME}' ({DISPLAY_NAME}): {} service run{}",
        exe.display(),
        config
            .as_ref()
            .map(|p| format!(" --config {}", p.display()))
            .unwrap_or_default()
    );
    if firewall {
        add_firewall_rules(&exe, &listeners);
    }
    println!("start it with: sc start {NAME}   (or reboot: it starts automatically)");
    Ok(())
}

/// One inbound rule per port of a listener that is not on loopback (a
/// loopback listener needs none). Failures are reported with the command
/// to run by hand; the service works without them on this machine.
fn add_firewall_rules(exe: &Path, listeners: &[SocketAddr]) {
    let mut ports: Vec<u16> = listeners
        .iter()
        .filter(|a| !a.ip().is_loopback())
        .map(SocketAddr::port)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    for port in ports {
        let args = [
            "advfirewall".to_owned(),
            "firewall".to_owned(),
            "add".to_owned(),
            "rule".to_owned(),
            format!("name={FIREWALL_RULE}"),
            "dir=in".to_owned(),
            "action=allow".to_owned(),
            "protocol=TCP".to_owned(),
            format!("localport={port}"),
            format!("program={}", exe.display()),
        ];
        match netsh(&args) {
            Ok(()) => println!("firewall: inbound TCP {port} allowed (rule \"{FIREWALL_RULE}\")"),
            Err(e) => eprintln!(
                "boxmq service: warning: cannot add the firewall rule for TCP {port} ({e}); \
                 add it by hand: netsh advfirewall firewall add rule name=\"{FIREWALL_RULE}\" \
                 dir=in action=allow protocol=TCP localport={port}"
            ),
        }
    }
}

fn netsh(args: &[String]) -> Result<(), String> {
    let out = Command::new("netsh")
        .args(args)
        .output()
        .map_err(|e| format!("netsh: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&out.stdout);
        Err(format!("netsh: {}", text.trim()))
    }
}

fn uninstall() -> Result<(), String> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .map_err(|e| explain("cannot open the service manager", &e))?;
    let service = manager
        .open_service(
            NAME,
            ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
        )
        .map_err(|e| explain("cannot open the service", &e))?;
    if let Ok(status) = service.query_status() {
        if status.current_state != ServiceState::Stopped {
            // A graceful stop: 5.0 clients get DISCONNECT 0x8B.
            let _ = service.stop();
            for _ in 0..100 {
                match service.query_status() {
                    Ok(s) if s.current_state != ServiceState::Stopped => {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    _ => break,
                }
            }
        }
    }
    service
        .delete()
        .map_err(|e| explain("cannot delete the service", &e))?;
    println!("uninstalled the service '{NAME}'");
    let args = [
        "advfirewall".to_owned(),
        "firewall".to_owned(),
        "delete".to_owned(),
        "rule".to_owned(),
        format!("name={FIREWALL_RULE}"),
    ];
    // No rule (installed with --no-firewall, or loopback only) is fine.
    if netsh(&args).is_ok() {
        println!("firewall: rules \"{FIREWALL_RULE}\" removed");
    }
    Ok(())
}

/// The broker's `run` and its arguments, for the service's thread.
static RUN: OnceLock<(Run, Vec<String>)> = OnceLock::new();

define_windows_service!(ffi_service_main, service_main);

fn run_service(args: Vec<String>, run: Run) -> ExitCode {
    let _ = RUN.set((run, args));
    match service_dispatcher::start(NAME, ffi_service_main) {
        Ok(()) => ExitCode::SUCCESS,
        Err(windows_service::Error::Winapi(e))
            if e.raw_os_error() == Some(ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) =>
        {
            eprintln!(
                "boxmq service run: only the service manager starts this \
                 (sc start {NAME}); in a console, run boxmq without 'service run'"
            );
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("boxmq service run: {}", explain("cannot start", &e));
            ExitCode::FAILURE
        }
    }
}

/// Sends stderr (the log) to `%ProgramData%\boxmq\log\boxmq.log`: a
/// service has no console. Rust's stderr asks Windows for the handle at
/// every write, so the logger follows.
fn log_to_file() {
    let dir = paths::log_dir();
    let _ = std::fs::create_dir_all(&dir);
    let Ok(file) = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("boxmq.log"))
    else {
        return;
    };
    let handle = file.into_raw_handle();
    // SAFETY: `handle` is a valid file handle we own and never close (it
    // was released from the `File`); SetStdHandle only records it as the
    // process's stderr.
    #[allow(unsafe_code)]
    unsafe {
        windows_sys::Win32::System::Console::SetStdHandle(
            windows_sys::Win32::System::Console::STD_ERROR_HANDLE,
            handle,
        );
    }
}

fn service_main(_from_manager: Vec<OsString>) {
    stop::set_service();
    let handler = |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            stop::request(stop::Cause::Service);
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let Ok(status) = service_control_handler::register(NAME, handler) else {
        return;
    };
    let report = |state, accepted, code| {
        let _ = status.set_service_status(ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: accepted,
            exit_code: ServiceExitCode::Win32(code),
            checkpoint: 0,
            wait_hint: Duration::from_secs(10),
            process_id: None,
        });
    };
    report(
        ServiceState::Running,
        ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
        0,
    );
    log_to_file();
    let code = match RUN.get() {
        Some((run, args)) if run(args.clone()) == ExitCode::SUCCESS => 0,
        // ERROR_SERVICE_SPECIFIC_ERROR would need a second code; 1 (a
        // failure) is what makes the manager apply the restart policy.
        _ => 1,
    };
    report(ServiceState::Stopped, ServiceControlAccept::empty(), code);
}
