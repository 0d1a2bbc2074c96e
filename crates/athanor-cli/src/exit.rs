//! Exit statuses, so scripts can branch on how a followed or awaited run ended without parsing output.
//!
//! | status | meaning |
//! | --- | --- |
//! | 0 | the command succeeded; for `--follow`/`--wait`, the run completed |
//! | 1 | an error (the message says which), or the followed run failed |
//! | 2 | the followed run was cancelled |
//! | 130 | Ctrl-C stopped the following (the run itself goes on) |
//! | 141 | the reader of standard output went away (`… | head`); nothing is printed |
//!
//! Clap's own usage errors exit with 2 as well, before anything is asked of the server.

use athanor_core::RunStatus;
use std::process::ExitCode;

/// The command did what it was asked.
pub const SUCCESS: u8 = 0;
/// Something went wrong, or the followed run failed.
pub const FAILURE: u8 = 1;
/// The followed run was cancelled.
pub const CANCELLED: u8 = 2;
/// Ctrl-C ended the following: 128 + SIGINT, the shell's convention for a process stopped by Ctrl-C.
pub const INTERRUPTED: u8 = 130;
/// Standard output was closed by its reader: 128 + SIGPIPE, what a process killed by SIGPIPE reports (Rust
/// ignores SIGPIPE, so the write fails instead and this keeps the shell's convention).
pub const BROKEN_PIPE: u8 = 141;

/// The exit status for a run that ended with `status`; `None` while it has not ended.
pub fn for_status(status: RunStatus) -> Option<u8> {
    match status {
        RunStatus::Completed => Some(SUCCESS),
        RunStatus::Failed => Some(FAILURE),
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
        assert_eq!(for_status(RunStatus::Failed), Some(1));
        assert_eq!(for_status(RunStatus::Cancelled), Some(2));
        for status in RunStatus::ALL {
            assert_eq!(for_status(status).is_some(), status.is_terminal(), "{status}");
        }
    }
}
