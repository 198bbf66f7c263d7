//! A broker for `benches/hooks.sh`: the embedding API on one TCP port with
//! an accept-all `on_publish` (or no hook with `--no-hook`), for the load
//! generator to measure what a hook costs per message.
//!
//! ```text
//! cargo bench --bench hooks_broker --no-run   # prints the executable
//! hooks_broker PORT [--no-hook]               # runs until killed
//! ```

use boxmq::{Broker, Limits};

fn main() {
    let mut args = std::env::args().skip(1);
    // `cargo bench` runs every bench target with `--bench`: usage, exit 0.
    let Some(port) = args.next().and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("usage: hooks_broker PORT [--no-hook]");
        return;
    };
    let hook = args.next().as_deref() != Some("--no-hook");
    let limits = Limits {
        max_connections: 12_000,
        max_sessions: 12_000,
        max_queued_messages: 100_000,
        ..Limits::default()
    };
    let mut builder = Broker::builder().port(port).limits(limits).sys_interval(0);
    if hook {
        builder = builder.on_publish(|_: &boxmq::PublishRequest| true);
    }
    let mut broker = builder.build();
    if let Err(e) = broker.start() {
        eprintln!("hooks_broker: {e}");
        std::process::exit(1);
    }
    // Runs until the process is killed.
    loop {
        std::thread::park();
    }
}
