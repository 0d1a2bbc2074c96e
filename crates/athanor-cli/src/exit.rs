//! Exit statuses, so scripts can branch on how a followed or awaited run ended without parsing output.
//!
//! | status | meaning |
//! | --- | --- |
//! | 0 | the command succeeded; for `--follow`/`--wait`, the run completed |
//! | 1 | the command did not get done: the server refused it or could not be reached (the message says which) |
//! | 2 | the command line itself is wrong (clap's usage errors), before anything is asked of the server |
//! | 3 | the followed run failed |
//! | 4 | the followed run was cancelled |
//! | 130 | Ctrl-C stopped the following (the run itself goes on) |
//! | 141 | the reader of standard output went away (`… | head`); nothing is printed |
//!
//! Each outcome has its own status, so a CI job can tell a failed experiment (3) from a broken pipeline (1, 2).

use athanor_core::RunStatus;
use std::process::ExitCode;

/// The command did what it was asked.
pub const SUCCESS: u8 = 0;
/// The command did not get done: refused by the server, the server unreachable, or a local problem.
pub const FAILURE: u8 = 1;
/// The followed run failed.
pub const RUN_FAILED: u8 = 3;
/// The followed run was cancelled.
pub const CANCELLED: u8 = 4;
/// Ctrl-C ended the following: 128 + SIGINT, the shell's convention for a process stopped by Ctrl-C.
pub const INTERRUPTED: u8 = 130;
/// Standard output was closed by its reader: 128 + SIGPIPE, what a process killed by SIGPIPE reports (Rust
/// ignores SIGPIPE, so the write fails instead and this keeps the shell's convention).
pub const BROKEN_PIPE: u8 = 141;

/// The exit status for a run that ended with `status`; `None` while it has not ended.
pub fn for_status(status: RunStatus) -> Option<u8> {
    match status {
        RunStatus::Completed => Some(SUCCESS),
        RunStatus::Failed => Some(RUN_FAILED),
        RunStatus::Cancelled => Some(CANCELLED),
        RunStatus::Pending | RunStatus::Running => None,
    }
}

/// [`for_status`] as the process's exit code; a run that has not ended counts as a failure to wait.
pub fn code_for_status(status: RunStatus) -> ExitCode {
    ExitCode::from(for_status(status).unwrap_or(FAILURE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_terminal_status_has_its_own_exit_code() {
        assert_eq!(for_status(RunStatus::Completed), Some(0));
        assert_eq!(for_status(RunStatus::Failed), Some(3));
        assert_eq!(for_status(RunStatus::Cancelled), Some(4));
        for status in RunStatus::ALL {
            assert_eq!(for_status(status).is_some(), status.is_terminal(), "{status}");
        }
    }
}
