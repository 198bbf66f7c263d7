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
        return service::command(&args[1..], run);
    }
    run(args)
}

/// Parses `args` (flags and config), starts logging and runs the broker
/// until it is stopped; the service runs this too.
fn run(args: Vec<String>) -> ExitCode {
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
    logger::init(default_level);
    // The event loop runs on this thread and flushes the log before it
    // waits (see logger.rs).
    logger::batch_this_thread();

    let certificate_users = config.listeners.iter().any(|l| l.use_identity_as_username);
    if !config.allow_anonymous && config.password_file.is_none() && !certificate_users {
        log::warn!(
            "allow_anonymous is false and there is no password_file: every network client will be refused"
        );
    }
    // Enough file descriptors for max_connections, or a clear refusal.
    let needed = boxmq::rlimit::nofile_needed(
        config.limits.max_connections,
        config.effective_listeners().len(),
    );
    match boxmq::rlimit::ensure_nofile(needed) {
        Ok(limit) => log::debug!("open file limit {limit} (max_connections needs {needed})"),
        Err(e) => {
            log::error!("{e}");
            eprintln!("boxmq: {e}");
            return ExitCode::FAILURE;
        }
    }
    for notice in &config.persistence.notices {
        log::warn!("config: {notice}");
    }
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
