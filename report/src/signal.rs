//! The `FDGUARD_SIGNAL` grammar, shared by `libfdguard.so` (which installs the handler) and the
//! `fdguard` CLI (which validates `--signal` and reads a target's setting to send it), so the
//! two can never disagree on what a spelling means.

/// Parses a report-signal spelling: `SIGUSR1`, `usr1`, `10`, `RTMIN+2`, or `none` (also `0`).
/// `Some(None)`: reports on signal are turned off. `None`: not a usable signal — unknown, out
/// of range, or one that would break the host if fdguard took it over (KILL, STOP, SEGV, BUS,
/// FPE, ILL).
pub fn parse_signal(text: &str) -> Option<Option<i32>> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") || text == "0" {
        return Some(None);
    }
    let refused = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGILL,
    ];
    if let Ok(n) = text.parse::<i32>() {
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
            // Unsigned: "RTMIN+-23" would otherwise name SIGSEGV (or SIGKILL, SIGBUS, …).
            let offset = name.strip_prefix("RTMIN+")?.parse::<u8>().ok()?;
            let signal = libc::SIGRTMIN() + i32::from(offset);
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

/// Why fdguard will not take `signal` as its report signal, when it will not; `None` when it
/// will. The library installs no handler for such a signal (one stderr line says why), and
/// `fdguard report` never sends it:
/// - 32 and 33 belong to the C library (glibc's SIGCANCEL and SIGSETXID; sigaction refuses
///   them, and sending one to a process interferes with its threads);
/// - SIGCHLD: its disposition decides whether children are reaped automatically (SIG_IGN) or
///   wait as zombies, and a handler would make every child's exit interrupt the program's
///   blocking system calls — taking it changes what the host sees.
pub fn refusal(signal: i32) -> Option<&'static str> {
    match signal {
        32 | 33 => Some("the C library keeps it for its own threads"),
        libc::SIGCHLD => Some(
            "its disposition decides whether children are reaped, and a handler would make \
             every child's exit interrupt the program's system calls",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_none_and_refusals() {
        assert_eq!(parse_signal("SIGUSR2"), Some(Some(libc::SIGUSR2)));
        assert_eq!(parse_signal(" usr1 "), Some(Some(libc::SIGUSR1)));
        assert_eq!(parse_signal("12"), Some(Some(12)));
        assert_eq!(parse_signal("none"), Some(None));
        assert_eq!(parse_signal("RTMIN+2"), Some(Some(libc::SIGRTMIN() + 2)));
        assert!(refusal(libc::SIGCHLD).is_some());
        assert!(refusal(32).is_some() && refusal(33).is_some());
        assert!(refusal(libc::SIGUSR1).is_none() && refusal(libc::SIGRTMIN() + 3).is_none());
        for bad in [
            "SIGKILL",
            "9",
            "11",
            "RTMIN+-23",
            "RTMIN+-25",
            "RTMIN+99",
            "65",
            "-1",
            "FOO",
        ] {
            assert_eq!(parse_signal(bad), None, "{bad}");
        }
    }
}
