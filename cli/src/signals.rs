//! Signal names and numbers, spelled the way `FDGUARD_SIGNAL` accepts them: `SIGUSR1`, `usr1`,
//! `10`, or `none`. KEEP IN SYNC with `parse_signal` in the library's src/config.rs: the CLI
//! validates `--signal` and reads a target's FDGUARD_SIGNAL with the same rules.

/// Parses a report-signal spelling. `Some(None)`: reports on signal are turned off (`none`).
/// `None`: not a usable signal (unknown name, or one the library refuses: KILL, STOP, SEGV, BUS,
/// FPE, ILL).
pub fn parse_signal(text: &str) -> Option<Option<i32>> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") || text == "0" {
        return Some(None);
    }
    if let Ok(n) = text.parse::<i32>() {
        let refused = [
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
        ];
        return ((1..=64).contains(&n) && !refused.contains(&n)).then_some(Some(n));
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let signal = match name {
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "HUP" => libc::SIGHUP,
        "WINCH" => libc::SIGWINCH,
        "URG" => libc::SIGURG,
        "PWR" => libc::SIGPWR,
        "QUIT" => libc::SIGQUIT,
        _ => {
            let offset = name.strip_prefix("RTMIN+")?.parse::<i32>().ok()?;
            let signal = libc::SIGRTMIN() + offset;
            if signal > libc::SIGRTMAX() {
                return None;
            }
            signal
        }
    };
    Some(Some(signal))
}

/// `SIGUSR1`, `SIGRTMIN+2`, or `signal 40`.
pub fn signal_name(signal: i32) -> String {
    let named = [
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGILL, "SIGILL"),
        (libc::SIGABRT, "SIGABRT"),
        (libc::SIGBUS, "SIGBUS"),
        (libc::SIGFPE, "SIGFPE"),
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGSEGV, "SIGSEGV"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGPIPE, "SIGPIPE"),
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGURG, "SIGURG"),
        (libc::SIGWINCH, "SIGWINCH"),
        (libc::SIGPWR, "SIGPWR"),
    ];
    if let Some((_, name)) = named.iter().find(|(n, _)| *n == signal) {
        return (*name).to_string();
    }
    if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&signal) {
        return format!("SIGRTMIN+{}", signal - libc::SIGRTMIN());
    }
    format!("signal {signal}")
}

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
