//! `--fail-on` for `fdguard show` and `fdguard diff`: let CI fail a build on findings.
//!
//! A condition is a finding kind (`peer_closed`, …), a severity (`leak`: severity leak;
//! `warning`: leak or warning), or `any`. Only unsuppressed findings count. When one matches,
//! the command still prints its output, then exits with [`EXIT_FAIL_ON`] (LeakSanitizer's
//! conventional status for leaks found), distinct from 1 (bad input) and 2 (usage).

use fdguard_report::diff::Diff;
use fdguard_report::{Finding, FindingKind, Report, Severity};

/// Exit status of `show`/`diff` when a `--fail-on` condition matched.
pub const EXIT_FAIL_ON: i32 = 23;

/// One `--fail-on` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    /// Findings of this kind.
    Kind(FindingKind),
    /// Findings of at least this severity (`leak`, or `warning`: leak or warning).
    Severity(Severity),
    /// Any finding.
    Any,
}

impl FailOn {
    /// Parses `KIND`, `leak`, `warning` or `any`.
    pub fn parse(text: &str) -> Result<FailOn, String> {
        match text {
            "any" => return Ok(FailOn::Any),
            "leak" => return Ok(FailOn::Severity(Severity::Leak)),
            "warning" => return Ok(FailOn::Severity(Severity::Warning)),
            _ => {}
        }
        FindingKind::parse(text).map(FailOn::Kind).ok_or_else(|| {
            let known: Vec<&str> = FindingKind::ALL.iter().map(|k| k.as_str()).collect();
            format!(
                "unknown condition; use a finding kind ({}), a severity (leak, warning) or any",
                known.join(", ")
            )
        })
    }

    fn matches(self, kind: FindingKind, severity: Severity) -> bool {
        match self {
            FailOn::Kind(k) => k == kind,
            // Severities order most severe first: "warning" means leak or warning.
            FailOn::Severity(s) => severity <= s,
            FailOn::Any => true,
        }
    }
}

fn matching<'a>(report: &'a Report, conditions: &[FailOn]) -> impl Iterator<Item = &'a Finding> {
    report.findings.iter().filter(move |f| {
        f.suppressed_by.is_none() && conditions.iter().any(|c| c.matches(f.kind, f.severity()))
    })
}

/// Unsuppressed findings of `report` that match a condition.
pub fn count_in_report(report: &Report, conditions: &[FailOn]) -> usize {
    matching(report, conditions).count()
}

/// Finding keys of `diff` that appeared or grew and match a condition; a key's severity is the
/// most severe of NEW's findings with that kind and backend.
pub fn count_in_diff(diff: &Diff, new: &Report, conditions: &[FailOn]) -> usize {
    diff.new_findings()
        .filter(|d| {
            let severity = new
                .findings
                .iter()
                .filter(|f| f.kind == d.kind && f.backend == d.backend)
                .map(Finding::severity)
                .min()
                .unwrap_or(Severity::Info);
            conditions.iter().any(|c| c.matches(d.kind, severity))
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions() {
        assert_eq!(FailOn::parse("any"), Ok(FailOn::Any));
        assert_eq!(
            FailOn::parse("peer_closed"),
            Ok(FailOn::Kind(FindingKind::PeerClosed))
        );
        assert!(FailOn::parse("leaks").is_err());
        let warning = FailOn::Severity(Severity::Warning);
        assert!(warning.matches(FindingKind::OpenAtExit, Severity::Leak));
        assert!(warning.matches(FindingKind::OpenAtExit, Severity::Warning));
        assert!(!warning.matches(FindingKind::OpenAtExit, Severity::Info));
        assert!(
            !FailOn::Severity(Severity::Leak).matches(FindingKind::HalfOpen, Severity::Warning)
        );
    }
}
