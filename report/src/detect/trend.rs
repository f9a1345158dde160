//! Trends over time: `growth` (live sockets per creating stack or per backend that keep rising,
//! bcc fdleak's "the count keeps growing", with the rate) and `reconnect_churn` (connections
//! to one backend closed and reopened far more often than the process's own norm). Both read
//! [`Samples`], passed in as data: the library's watcher keeps them; `fdguard watch` can build
//! them from a series of reports; without samples these findings are simply not made.

use super::{Settings, describe, fds, list};
use crate::units::duration;
use crate::{Finding, FindingKind, Role, Severity, Socket};
use std::collections::BTreeMap;

/// Counts over time. Every series has one count per sample, aligned with `ago_s`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples {
    /// When each sample was taken, seconds before the report, oldest first.
    pub ago_s: Vec<f64>,
    /// Live sockets per creating stack (the report's `stack_id`).
    pub by_stack: Vec<Series<u64>>,
    /// Live client connections per backend (`ip:port`, as the report writes peers).
    pub by_backend: Vec<Series<String>>,
    /// Client connections to each backend closed since the previous sample (the first
    /// sample's count covers an unknown time and is not used).
    pub closed_by_backend: Vec<Series<String>>,
}

/// One key's counts, one per sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Series<K> {
    /// What is counted: a stack id or a backend.
    pub key: K,
    /// One count per sample.
    pub counts: Vec<u32>,
}

/// A rise in a series, as [`rising`] finds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rise {
    /// The count at the first sample.
    pub from: u32,
    /// The count at the last sample.
    pub to: u32,
    /// Seconds between the first and the last sample.
    pub over_s: f64,
    /// Sockets gained per minute over that time.
    pub per_min: f64,
}

/// Fewest samples a trend is judged on.
const MIN_SAMPLES: usize = 6;
/// New high-water marks a rising series sets at least (a pool that fills once sets fewer
/// after its warm-up; a leak keeps setting them).
const MIN_RAISES: usize = 3;
/// Reconnect churn: the recent rate must be this many times the process's norm.
const CHURN_FACTOR: f64 = 10.0;
/// Reconnect churn compares the last quarter of the sampled time (at most this long) with the
/// time before it.
const CHURN_WINDOW_MAX_S: f64 = 60.0;
/// Fewest closed connections in that window for churn: a pool that reconnects its 4 members
/// after the server closed them for being idle is not a reconnect loop, however short the
/// window makes the rate look (4 in 2 s read as 120 a minute in a urllib3 test).
const CHURN_MIN_CLOSES: u64 = 20;

/// How many times `counts` set a new high-water mark after its first quarter, and whether its
/// last value is the high-water mark.
pub(super) fn high_water_raises(counts: &[u32]) -> (usize, bool) {
    let Some(&last) = counts.last() else {
        return (0, false);
    };
    let warm_up = counts.len() / 4;
    let mut high = counts
        .iter()
        .take(warm_up.max(1))
        .copied()
        .max()
        .unwrap_or(0);
    let mut raises = 0;
    for &c in counts.iter().skip(warm_up.max(1)) {
        if c > high {
            high = c;
            raises += 1;
        }
    }
    (raises, last == high)
}

/// Whether `counts` (taken `ago_s` seconds before the report, oldest first) keep rising: at
/// least `min_rise` more at the end than at the start, at least [`MIN_RAISES`] new highs after
/// the warm-up, the highest value in the last third, and no fall back below the middle third's
/// peak. A pool that fills once and stays, or load that comes and goes, is not a rise.
pub fn rising(counts: &[u32], ago_s: &[f64], min_rise: u64) -> Option<Rise> {
    let n = counts.len().min(ago_s.len());
    if n < MIN_SAMPLES {
        return None;
    }
    let (counts, ago_s) = (&counts[..n], &ago_s[..n]);
    let (from, to) = (counts[0], counts[n - 1]);
    if u64::from(to.saturating_sub(from)) < min_rise.max(1) {
        return None;
    }
    let (raises, _) = high_water_raises(counts);
    let third = n / 3;
    let early_max = counts[..n - third].iter().copied().max().unwrap_or(0);
    let late_max = counts[n - third..].iter().copied().max().unwrap_or(0);
    let middle_max = counts[third..n - third].iter().copied().max().unwrap_or(0);
    if raises < MIN_RAISES || late_max <= early_max || to < middle_max {
        return None;
    }
    let over_s = (ago_s[0] - ago_s[n - 1]).max(0.001);
    Some(Rise {
        from,
        to,
        over_s,
        per_min: f64::from(to - from) * 60.0 / over_s,
    })
}

/// `27/min`, `0.5/min`, `1.2/h`.
pub(super) fn rate(per_min: f64) -> String {
    if per_min >= 10.0 {
        format!("{per_min:.0}/min")
    } else if per_min >= 0.1 {
        format!("{per_min:.1}/min")
    } else {
        format!("{:.1}/h", per_min * 60.0)
    }
}

/// `growth`: per creating stack, then per backend (a backend whose growing sockets all come
/// from a growing stack is not reported twice).
pub(super) fn growth(
    sockets_by_id: &BTreeMap<u64, Vec<&Socket>>,
    settings: &Settings,
) -> Vec<Finding> {
    let samples = &settings.samples;
    let mut out: Vec<Finding> = Vec::new();
    for series in &samples.by_stack {
        let Some(rise) = rising(&series.counts, &samples.ago_s, settings.growth_min) else {
            continue;
        };
        let members: Vec<&Vec<&Socket>> = sockets_by_id
            .values()
            .filter(|m| m[0].stack_id == Some(series.key))
            .collect();
        if members.is_empty() {
            continue;
        }
        let mut all: Vec<i32> = members.iter().flat_map(|m| fds(m)).collect();
        all.sort_unstable();
        let mut finding = Finding::new(
            FindingKind::Growth,
            Severity::Warning,
            Vec::new(),
            format!(
                "live sockets created from stack {} rose from {} to {} in {} ({}) and keep \
                 rising: {} open now (fd {})",
                series.key,
                rise.from,
                rise.to,
                duration(rise.over_s),
                rate(rise.per_min),
                members.len(),
                abbreviated(&all)
            ),
        );
        finding.fds = all;
        finding.rate_per_min = Some(rise.per_min);
        out.push(finding);
    }
    for series in &samples.by_backend {
        let Some(rise) = rising(&series.counts, &samples.ago_s, settings.growth_min) else {
            continue;
        };
        let members: Vec<&Vec<&Socket>> = sockets_by_id
            .values()
            .filter(|m| m[0].role == Role::Client && m[0].peer.as_deref() == Some(&series.key))
            .collect();
        let mut all: Vec<i32> = members.iter().flat_map(|m| fds(m)).collect();
        all.sort_unstable();
        let covered = out
            .iter()
            .any(|f| all.iter().all(|fd| f.fds.binary_search(fd).is_ok()));
        if members.is_empty() || covered {
            continue;
        }
        let mut finding = Finding::new(
            FindingKind::Growth,
            Severity::Warning,
            Vec::new(),
            format!(
                "client connections to {} rose from {} to {} in {} ({}) and keep rising: {} \
                 open now (fd {})",
                series.key,
                rise.from,
                rise.to,
                duration(rise.over_s),
                rate(rise.per_min),
                members.len(),
                abbreviated(&all)
            ),
        );
        finding.fds = all;
        finding.backend = Some(series.key.clone());
        finding.rate_per_min = Some(rise.per_min);
        out.push(finding);
    }
    out
}

/// The first fds of a long list and how many more.
fn abbreviated(fds: &[i32]) -> String {
    const SHOWN: usize = 10;
    if fds.len() <= SHOWN {
        list(fds)
    } else {
        format!("{} and {} more", list(&fds[..SHOWN]), fds.len() - SHOWN)
    }
}

/// Closes in the sample intervals `range` (interval `i` ends at sample `i`), and per minute.
fn closes_per_min(
    counts: &[u32],
    ago_s: &[f64],
    range: std::ops::Range<usize>,
) -> Option<(u64, f64)> {
    let (first, last) = (range.start, range.end.checked_sub(1)?);
    if first == 0 || first > last {
        return None;
    }
    let span = ago_s[first - 1] - ago_s[last];
    (span > 0.0).then(|| {
        let n: u64 = counts[range].iter().map(|&c| u64::from(c)).sum();
        (n, n as f64 * 60.0 / span)
    })
}

/// `reconnect_churn`: per backend, connections closed per minute in the recent window against
/// the norm before it — the backend's own when it has history, else the process's average per
/// backend.
pub(super) fn churn(
    sockets_by_id: &BTreeMap<u64, Vec<&Socket>>,
    settings: &Settings,
) -> Vec<Finding> {
    let samples = &settings.samples;
    let n = samples.ago_s.len();
    if n < MIN_SAMPLES {
        return Vec::new();
    }
    let ago = &samples.ago_s;
    let window = ((ago[0] - ago[n - 1]) / 4.0).min(CHURN_WINDOW_MAX_S);
    // Intervals ending within the window are recent; the first sample only starts the count.
    let split = (1..n)
        .find(|&i| ago[i - 1] - ago[n - 1] <= window)
        .unwrap_or(n);
    if split < 2 {
        return Vec::new();
    }
    let older_span = ago[0] - ago[split - 1];
    if older_span < window {
        return Vec::new(); // not enough history to know the norm
    }
    let aligned = || {
        samples
            .closed_by_backend
            .iter()
            .filter(move |s| s.counts.len() == n)
    };
    let older_total: u64 = aligned()
        .flat_map(|s| s.counts[1..split].iter().map(|&c| u64::from(c)))
        .sum();
    let older_backends = aligned()
        .filter(|s| s.counts[1..split].iter().any(|&c| c > 0))
        .count()
        .max(1);
    let process_norm = older_total as f64 * 60.0 / older_span / older_backends as f64;
    let mut out = Vec::new();
    for series in aligned() {
        let Some((closes, recent)) = closes_per_min(&series.counts, ago, split..n) else {
            continue;
        };
        let own_history = series.counts[1..split].iter().any(|&c| c > 0);
        let norm = if own_history {
            closes_per_min(&series.counts, ago, 1..split).map_or(0.0, |(_, rate)| rate)
        } else {
            process_norm
        };
        if closes < CHURN_MIN_CLOSES
            || recent < settings.churn_per_min
            || recent < CHURN_FACTOR * norm
        {
            continue;
        }
        let members: Vec<&Vec<&Socket>> = sockets_by_id
            .values()
            .filter(|m| m[0].role == Role::Client && m[0].peer.as_deref() == Some(&series.key))
            .collect();
        let mut all: Vec<i32> = members.iter().flat_map(|m| fds(m)).collect();
        all.sort_unstable();
        let now = match members.first() {
            Some(m) => format!("; open now: fd {} {}", abbreviated(&all), describe(m[0])),
            None => "; none open now".to_string(),
        };
        let mut finding = Finding::new(
            FindingKind::ReconnectChurn,
            Severity::Warning,
            Vec::new(),
            format!(
                "connections to {} are being closed and reopened at {} over the last {}, \
                 against {} before ({}){now}",
                series.key,
                rate(recent),
                duration(ago[split - 1] - ago[n - 1]),
                rate(norm),
                if own_history {
                    "this backend's norm"
                } else {
                    "the process's norm per backend"
                }
            ),
        );
        finding.fds = all;
        finding.backend = Some(series.key.clone());
        finding.rate_per_min = Some(recent);
        out.push(finding);
    }
    out
}
