//! `boxmq service ...` on Unix: services are systemd's business.

use std::process::ExitCode;

use super::Run;

/// Says that services are for Windows; status 2.
pub fn command(_args: &[String], _run: Run) -> ExitCode {
    eprintln!(
        "boxmq service: Windows only; on Linux, run boxmq under systemd \
         (pkg/boxmq.service, docs/GATEWAY.md)"
    );
    ExitCode::from(2)
}
