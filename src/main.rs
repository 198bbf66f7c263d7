//! The `boxmq` command line: parse flags and config, start logging, run.

use std::process::ExitCode;

use boxmq::Broker;
use boxmq::config::{self, Command};

mod logger;
mod service;

fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "passwd") {
        let args = std::env::args_os().skip(2);
        let code =
            boxmq::auth::passwd_cli::run_std(args.map(|a| a.to_string_lossy().into()).collect());
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.first().is_some_and(|a| a == "service") {
        // Windows: install, uninstall, or run as the service (service.rs).
        return service::command(&args[1..], serve);
    }
    serve(args)
}

/// Parses `args` (flags and config), starts logging and runs the broker
/// until it is stopped; the service runs this too.
fn serve(args: Vec<String>) -> ExitCode {
    let command = match config::parse_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("boxmq: {e}");
            eprintln!("Try 'boxmq --help'.");
            return ExitCode::from(2);
        }
    };
    let config = match command {
        Command::Help => {
            print!("{}", config::HELP);
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("boxmq {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Command::Run(config) => *config,
    };

    let default_level = config.log_level.unwrap_or(log::LevelFilter::Info);
    if let Err(e) = logger::init(default_level, &config.log) {
        eprintln!("boxmq: {e}");
        return ExitCode::from(2);
    }
    // The event loop runs on this thread and flushes the log before it
    // waits (see logger.rs).
    logger::batch_this_thread();

    let mut config = config;
    let certificate_users = config
        .listeners
        .iter()
        .any(|l| l.use_identity_as_username || l.use_subject_as_username);
    if config.per_listener_settings && !config.listeners.is_empty() {
        for l in &config.listeners {
            let certificates = l.use_identity_as_username || l.use_subject_as_username;
            if !l.own_allow_anonymous() && l.password_file.is_none() && !certificates {
                log::warn!(
                    "listener {}: allow_anonymous is false and it has no password_file: every network client will be refused",
                    l.addr
                );
            }
        }
    } else if !config.allow_anonymous && config.password_file.is_none() && !certificate_users {
        log::warn!(
            "allow_anonymous is false and there is no password_file: every network client will be refused"
        );
    }
    let listeners = config.effective_listeners().len();
    if config.connections_up_to_fd_limit {
        // Mosquitto's max_connections -1: as many as file descriptors allow.
        let cap = boxmq::rlimit::nofile_needed(MAX_CONNECTIONS_BY_FD_LIMIT, listeners);
        match boxmq::rlimit::connections_allowed(cap, listeners) {
            Ok(n) => {
                config.limits.max_connections = n.max(1);
                log::info!("max_connections -1: {n} connections (the open file limit)");
            }
            Err(e) => {
                log::error!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    // Enough file descriptors for max_connections, or a clear refusal.
    let needed = boxmq::rlimit::nofile_needed(config.limits.max_connections, listeners);
    match boxmq::rlimit::ensure_nofile(needed) {
        Ok(limit) => log::debug!("open file limit {limit} (max_connections needs {needed})"),
        Err(e) => {
            log::error!("{e}");
            eprintln!("boxmq: {e}");
            return ExitCode::FAILURE;
        }
    }
    for notice in config.persistence.notices.iter().chain(&config.notices) {
        log::warn!("config: {notice}");
    }
    // Mosquitto exits when it cannot write its pid file; so does boxmq.
    let pid_file = config.pid_file.clone();
    if let Some(path) = &pid_file {
        if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
            log::error!("pid_file {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let code = run(config);
    if let Some(path) = &pid_file {
        // After `user` this may not be allowed any more, as for Mosquitto.
        let _ = std::fs::remove_file(path);
    }
    code
}

/// Most connections `max_connections -1` gives (the tables are reserved
/// up to 65,536 entries and grow beyond).
const MAX_CONNECTIONS_BY_FD_LIMIT: usize = 1 << 20;

/// Runs the broker until it stops; the exit status.
fn run(config: boxmq::Config) -> ExitCode {
    // The binary keeps its state by default (docs/PERSISTENCE.md).
    let mut config = config;
    config.persistence.enabled.get_or_insert(true);
    let mut broker = Broker::new(config);
    broker.stop_on_signals(true);
    match broker.run() {
        Ok(()) => {
            log::logger().flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("{e}");
            eprintln!("boxmq: {e}");
            // A broken password or ACL file is a config error: status 2,
            // which the systemd unit does not restart in a loop.
            // So is a data directory another broker holds.
            if matches!(
                e,
                boxmq::BrokerError::Config(_) | boxmq::BrokerError::Persistence(_)
            ) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
