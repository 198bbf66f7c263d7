//! The `boxmq` command line: parse flags and config, start logging, run.

use std::process::ExitCode;

use boxmq::config::{self, Command};
use boxmq::net::Server;

fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "passwd") {
        let args = std::env::args_os().skip(2);
        let code =
            boxmq::auth::passwd_cli::run_std(args.map(|a| a.to_string_lossy().into()).collect());
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let command = match config::parse_args(
        std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned()),
    ) {
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
        Command::Run(config) => config,
    };

    let default_level = config.log_level.unwrap_or(log::LevelFilter::Info);
    env_logger::Builder::new()
        .filter_level(default_level)
        .parse_env("RUST_LOG")
        .init();

    if !config.allow_anonymous {
        log::warn!(
            "allow_anonymous is false and boxmq has no password file support yet: every client will be refused"
        );
    }
    let mut server = match Server::bind(&config) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e}");
            eprintln!("boxmq: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = server.handle_signals() {
        eprintln!("boxmq: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    for addr in server.local_addrs() {
        if !addr.ip().is_loopback() && config.allow_anonymous {
            log::warn!(
                "listening on {addr} with anonymous access: any device that reaches this address can publish and subscribe"
            );
        }
        log::info!("boxmq {} listening on {addr}", env!("CARGO_PKG_VERSION"));
    }
    match server.run(|_, _| false) {
        Ok(reason) => {
            log::info!("stopped ({reason:?})");
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}
