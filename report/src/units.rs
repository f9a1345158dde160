//! Human spellings of durations and wall-clock times, shared by the text report and the diff.
//!
//! Pure functions of their input: the renderers must be deterministic (golden files), so nothing
//! here reads the clock or the time zone. Times are always printed in UTC.

/// Formats a duration in seconds the way the reports print ages: `42.0s`, `2m05s`, `3h07m12s`,
/// `2d03h10m`. Negative or non-finite values (a clock that went backwards, a corrupt report)
/// print as `?`.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".to_string();
    }
    if seconds < 59.95 {
        return format!("{seconds:.1}s");
    }
    // Whole seconds from here on: sub-second precision is noise at this scale.
    let total = seconds.round() as u64;
    let (days, hours, minutes, secs) = (
        total / 86_400,
        total / 3_600 % 24,
        total / 60 % 60,
        total % 60,
    );
    if total < 3_600 {
        format!("{minutes}m{secs:02}s")
    } else if total < 86_400 {
        format!("{hours}h{minutes:02}m{secs:02}s")
    } else {
        format!("{days}d{hours:02}h{minutes:02}m")
    }
}

/// A duration the way a person says it at a glance: `3.2s`, `42.0s`, `14m`, `3h07m`, `2d03h`
/// (idle times, how long a connection has been in its state). Under a minute it is
/// [`duration`]'s spelling, so it agrees with the ages printed next to it; from a minute on,
/// truncated, never rounded up, so it never claims more time than has passed. Negative or
/// non-finite values print as `?`.
pub fn short_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".to_string();
    }
    if seconds < 59.95 {
        return duration(seconds);
    }
    let total = (seconds as u64).max(60);
    let (days, hours, minutes) = (total / 86_400, total / 3_600 % 24, total / 60 % 60);
    match total {
        0..3_600 => format!("{minutes}m"),
        3_600..86_400 if minutes == 0 => format!("{hours}h"),
        3_600..86_400 => format!("{hours}h{minutes:02}m"),
        _ if hours == 0 => format!("{days}d"),
        _ => format!("{days}d{hours:02}h"),
    }
}

/// A calendar date and time of day in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    /// Full year, e.g. 2025.
    pub year: i64,
    /// 1–12.
    pub month: u32,
    /// 1–31.
    pub day: u32,
    /// 0–23.
    pub hour: u32,
    /// 0–59.
    pub minute: u32,
    /// 0–59 (no leap seconds: Unix time has none).
    pub second: u32,
}

impl UtcTime {
    /// Converts seconds since the Unix epoch. Uses Howard Hinnant's `civil_from_days`
    /// (<https://howardhinnant.github.io/date_algorithms.html>), exact for the proleptic
    /// Gregorian calendar, so no time crate is needed.
    pub fn from_unix_seconds(unix_s: i64) -> UtcTime {
        let days = unix_s.div_euclid(86_400);
        let of_day = unix_s.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        UtcTime {
            year,
            month,
            day,
            hour: (of_day / 3_600) as u32,
            minute: (of_day / 60 % 60) as u32,
            second: (of_day % 60) as u32,
        }
    }

    /// `2025-11-26 23:00:00 UTC`.
    pub fn to_human(self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `20251126-230000`: sortable and safe in file names.
    pub fn to_compact(self) -> String {
        format!(
            "{:04}{:02}{:02}-{:02}{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// `2025-11-26 23:00:00 UTC` for a report's `time_unix_ms`.
pub fn utc_from_unix_ms(unix_ms: u64) -> String {
    UtcTime::from_unix_seconds((unix_ms / 1000) as i64).to_human()
}

/// `"s"` unless `n == 1`: "1 socket", "2 sockets".
pub fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_durations_truncate() {
        let cases = [
            (0.0, "0.0s"),
            (3.26, "3.3s"),
            (42.9, "42.9s"),
            (59.96, "1m"),
            (14.0 * 60.0 + 59.0, "14m"),
            (3.0 * 3600.0 + 30.0, "3h"),
            (3.0 * 3600.0 + 7.0 * 60.0, "3h07m"),
            (2.0 * 86_400.0 + 3.0 * 3600.0, "2d03h"),
            (86_400.0, "1d"),
            (-1.0, "?"),
        ];
        for (seconds, text) in cases {
            assert_eq!(short_duration(seconds), text, "{seconds}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0.0), "0.0s");
        assert_eq!(duration(42.04), "42.0s");
        assert_eq!(duration(59.96), "1m00s");
        assert_eq!(duration(125.5), "2m06s");
        assert_eq!(duration(3_600.0), "1h00m00s");
        assert_eq!(duration(11_232.0), "3h07m12s");
        assert_eq!(duration(2.0 * 86_400.0 + 3.0 * 3_600.0 + 600.0), "2d03h10m");
        assert_eq!(duration(-1.0), "?");
        assert_eq!(duration(f64::NAN), "?");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(
            UtcTime::from_unix_seconds(0).to_human(),
            "1970-01-01 00:00:00 UTC"
        );
        // 2000-02-29 (leap day in a century leap year) 12:34:56.
        assert_eq!(
            UtcTime::from_unix_seconds(951_827_696).to_human(),
            "2000-02-29 12:34:56 UTC"
        );
        assert_eq!(
            UtcTime::from_unix_seconds(1_764_198_000).to_compact(),
            "20251126-230000"
        );
        assert_eq!(
            utc_from_unix_ms(1_764_198_000_999),
            "2025-11-26 23:00:00 UTC"
        );
    }
}
