//! Signal names and numbers, spelled the way `FDGUARD_SIGNAL` accepts them: `SIGUSR1`, `usr1`,
//! `10`, or `none`. The grammar itself is `fdguard_report::signal`, shared with the library, so
//! the CLI validates `--signal` and reads a target's FDGUARD_SIGNAL with exactly its rules.

pub use fdguard_report::signal::{parse_signal, signal_name};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert_eq!(parse_signal("SIGUSR1"), Some(Some(libc::SIGUSR1)));
        assert_eq!(parse_signal("usr2"), Some(Some(libc::SIGUSR2)));
        assert_eq!(parse_signal(" 12 "), Some(Some(12)));
        assert_eq!(parse_signal("none"), Some(None));
        assert_eq!(parse_signal("0"), Some(None));
        assert_eq!(parse_signal("SIGKILL"), None);
        assert_eq!(parse_signal("9"), None);
        assert_eq!(parse_signal("SIGFOO"), None);
        assert_eq!(parse_signal("RTMIN+1"), Some(Some(libc::SIGRTMIN() + 1)));
        assert_eq!(parse_signal("RTMIN+99"), None);
    }

    #[test]
    fn names() {
        assert_eq!(signal_name(libc::SIGUSR1), "SIGUSR1");
        assert_eq!(signal_name(libc::SIGRTMIN() + 2), "SIGRTMIN+2");
    }
}
