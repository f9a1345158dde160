//! The CLI's one error type: a message that tells the user what to do next, and the exit
//! status it maps to. Documented statuses (keep `--help` and cli/README.md in sync):
//! 0 success, 1 the operation failed, 2 usage error; `fdguard run` exits with the child's status;
//! `inspect` and `watch` say why they could not look with 3 (no such process), 4 (permission
//! denied) and 5 (no sock_diag in this kernel).

use std::fmt;

/// The operation succeeded.
pub const EXIT_OK: i32 = 0;
/// The operation failed (no such process, library not loaded, unreadable report, …).
pub const EXIT_FAILURE: i32 = 1;
/// The command line was wrong (clap uses the same status for its own errors).
pub const EXIT_USAGE: i32 = 2;
/// `inspect`, `watch`: no such process, or it exited before or during the look.
pub const EXIT_NO_PROCESS: i32 = 3;
/// `inspect`, `watch`: not allowed to inspect the process (another user's, ptrace limits).
pub const EXIT_PERMISSION: i32 = 4;
/// `inspect`, `watch`: the kernel lacks the socket diagnostics (sock_diag) it needs.
pub const EXIT_UNSUPPORTED: i32 = 5;

/// Why a subcommand failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// One or more lines for stderr, without the `fdguard: error: ` prefix.
    pub message: String,
    /// The process exit status.
    pub exit_code: i32,
}

impl Failure {
    /// The operation failed (exit status 1).
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            exit_code: EXIT_FAILURE,
        }
    }

    /// Failed with a specific exit status.
    pub fn with_code(message: impl Into<String>, exit_code: i32) -> Failure {
        Failure {
            message: message.into(),
            exit_code,
        }
    }

    /// The command line was wrong (exit status 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            exit_code: EXIT_USAGE,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Result of a CLI operation.
pub type Result<T> = std::result::Result<T, Failure>;
