//! Suppressions, LeakSanitizer style: a file of `leak:<pattern>` lines (matched against every
//! frame's function, module and source file of the finding's sockets — for a Python frame its
//! qualified name and its `.py` file; they apply to every kind but duplicate_backend) and
//! `dup:<pattern>` lines (matched against a duplicate_backend finding's backend; the only rules
//! that apply to duplicate groups). A `dup:` rule may end with an allowance,
//! `dup:10.0.0.5:443 max=8`: groups of up to 8 connections to that backend are suppressed, a
//! larger one is reported (at least as a warning) and says it is over the allowance. `*` is a
//! wildcard; a pattern matches anywhere in the text unless anchored with `^` (start) or `$`
//! (end); `#` starts a comment. Suppressed findings stay in the JSON, marked `suppressed_by`,
//! and do not count.

use crate::filter::glob_match;
use crate::{FindingKind, Report, Severity, SuppressionUse};
use std::collections::BTreeSet;

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `leak:` or `dup:`.
    pub kind: RuleKind,
    /// The pattern after the colon, trimmed.
    pub pattern: String,
    /// `dup:` only: the allowance, `max=N` (groups of up to N connections are suppressed).
    pub max: Option<usize>,
}

/// What a rule is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// `leak:`: matched against the frames of a finding's sockets.
    Leak,
    /// `dup:`: matched against a duplicate group's backend.
    Dup,
}

impl Rule {
    fn text(&self) -> String {
        let prefix = match self.kind {
            RuleKind::Leak => "leak",
            RuleKind::Dup => "dup",
        };
        match self.max {
            Some(max) => format!("{prefix}:{} max={max}", self.pattern),
            None => format!("{prefix}:{}", self.pattern),
        }
    }
}

/// Parses a suppressions file. Returns the rules and one warning per line it did not understand.
pub fn parse(text: &str) -> (Vec<Rule>, Vec<String>) {
    let mut rules = Vec::new();
    let mut warnings = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let rule = match line.split_once(':') {
            Some(("leak", p)) if !p.trim().is_empty() => Rule {
                kind: RuleKind::Leak,
                pattern: p.trim().to_string(),
                max: None,
            },
            Some(("dup", p)) if !p.trim().is_empty() => match dup_rule(p) {
                Some(rule) => rule,
                None => {
                    warnings.push(format!("fdguard: suppressions line {}: {line:?}: a `dup:` rule is `dup:<pattern>` or `dup:<pattern> max=<connections>`; ignored", n + 1));
                    continue;
                }
            },
            _ => {
                warnings.push(format!("fdguard: suppressions line {}: {line:?} is not `leak:<pattern>` or `dup:<pattern>`; ignored", n + 1));
                continue;
            }
        };
        rules.push(rule);
    }
    (rules, warnings)
}

/// The part of a `dup:` line after the colon: a pattern, optionally followed by `max=N`.
fn dup_rule(text: &str) -> Option<Rule> {
    let mut words = text.split_whitespace();
    let pattern = words.next()?.to_string();
    let max = match words.next() {
        None => None,
        Some(word) => Some(word.strip_prefix("max=")?.parse::<usize>().ok()?),
    };
    if words.next().is_some() {
        return None;
    }
    Some(Rule {
        kind: RuleKind::Dup,
        pattern,
        max,
    })
}

/// LeakSanitizer's matching: substring unless anchored, `*` wildcards.
pub fn pattern_matches(pattern: &str, text: &str) -> bool {
    let (start, p) = match pattern.strip_prefix('^') {
        Some(rest) => ("", rest),
        None => ("*", pattern),
    };
    let (p, end) = match p.strip_suffix('$') {
        Some(rest) => (rest, ""),
        None => (p, "*"),
    };
    glob_match(&format!("{start}{p}{end}"), text)
}

/// Marks the findings of `report` that a rule suppresses and fills `suppressions_used`.
pub fn apply(report: &mut Report, rules: &[Rule]) {
    if rules.is_empty() {
        return;
    }
    let mut used = vec![0u64; rules.len()];
    let sockets = &report.sockets;
    for finding in &mut report.findings {
        // A group's size in connections (sockets: dup'ed fds count once).
        let size = || {
            sockets
                .iter()
                .filter(|s| finding.fds.contains(&s.fd))
                .map(|s| s.socket_id)
                .collect::<BTreeSet<_>>()
                .len()
        };
        let mut over_allowance: Option<(usize, &Rule)> = None;
        let hit = rules.iter().position(|rule| match rule.kind {
            RuleKind::Dup => {
                let matches = finding.kind == FindingKind::DuplicateBackend
                    && finding
                        .backend
                        .as_deref()
                        .is_some_and(|b| pattern_matches(&rule.pattern, b));
                match rule.max {
                    Some(max) if matches && size() > max => {
                        over_allowance.get_or_insert((size(), rule));
                        false
                    }
                    _ => matches,
                }
            }
            // Duplicate groups are governed by `dup:` rules only: a stack pattern that
            // matches one member must not hide a second connection to the backend.
            RuleKind::Leak if finding.kind == FindingKind::DuplicateBackend => false,
            RuleKind::Leak => sockets
                .iter()
                .filter(|s| finding.fds.contains(&s.fd))
                .any(|s| {
                    s.stack.iter().any(|f| {
                        [
                            f.function.as_deref(),
                            f.module.as_deref(),
                            f.file.as_deref(),
                        ]
                        .into_iter()
                        .flatten()
                        .any(|t| pattern_matches(&rule.pattern, t))
                    })
                }),
        });
        if let Some(i) = hit {
            used[i] += 1;
            finding.suppressed_by = Some(rules[i].text());
        } else if let Some((size, rule)) = over_allowance {
            if finding.severity() == Severity::Info {
                finding.severity = Some(Severity::Warning);
            }
            finding.message.push_str(&format!(
                " ({size} connections: over the allowance of {} in `{}`)",
                rule.max.unwrap_or(0),
                rule.text()
            ));
        }
    }
    report.suppressions_used = rules
        .iter()
        .zip(used)
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| SuppressionUse {
            rule: r.text(),
            matched: n,
        })
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rules_comments_and_reports_bad_lines() {
        let (rules, warnings) = parse(
            "# header\nleak:grpc_core::*  # gRPC internals\n\ndup:127.0.0.1:*\nbogus line\nleak:\n",
        );
        assert_eq!(rules.len(), 2);
        assert_eq!(
            rules[0],
            Rule {
                kind: RuleKind::Leak,
                pattern: "grpc_core::*".into(),
                max: None,
            }
        );
        assert_eq!(rules[1].kind, RuleKind::Dup);
        assert_eq!(warnings.len(), 2);
    }

    #[test]
    fn leak_rules_match_python_functions_and_files() {
        use crate::{Frame, FrameKind};
        let mut report: Report =
            serde_json::from_str(include_str!("../../tests/fixtures/exit_report.json")).unwrap();
        for socket in &mut report.sockets {
            socket.stack = vec![Frame {
                function: Some(format!("Pool.open_{}", socket.fd)),
                file: Some(format!("/srv/app/pool_{}.py", socket.fd)),
                line: Some(7),
                kind: FrameKind::Python,
                ..Frame::default()
            }]
            .into();
        }
        let checkpoint = |r: &Report| {
            r.findings
                .iter()
                .find(|f| f.kind == FindingKind::SinceCheckpoint)
                .unwrap()
                .suppressed_by
                .clone()
        };
        // since_checkpoint covers fds 9 and 13: a rule naming either one's frame suppresses it.
        for rule in [
            "leak:^Pool.open_13$",
            "leak:*/app/pool_9.py",
            "leak:Pool.open_*",
        ] {
            let mut r = report.clone();
            apply(&mut r, &parse(rule).0);
            assert_eq!(checkpoint(&r).as_deref(), Some(rule), "{rule}");
        }
        let mut r = report.clone();
        apply(&mut r, &parse("leak:Pool.open_12\nleak:pool_4.py").0);
        assert_eq!(
            checkpoint(&r),
            None,
            "rules about other sockets do not apply"
        );
    }

    #[test]
    fn dup_rules_take_an_allowance() {
        let (rules, warnings) =
            parse("dup:10.0.0.5:443 max=8\ndup:*:6379\ndup:10.0.0.6:443 max=x\ndup:a max=1 b\n");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert_eq!(rules.len(), 2);
        assert_eq!(
            (rules[0].pattern.as_str(), rules[0].max),
            ("10.0.0.5:443", Some(8))
        );
        assert_eq!(rules[0].text(), "dup:10.0.0.5:443 max=8");
        assert_eq!((rules[1].pattern.as_str(), rules[1].max), ("*:6379", None));
    }

    #[test]
    fn lsan_pattern_semantics() {
        assert!(pattern_matches(
            "tcp_client",
            "grpc_core::tcp_client_connect_impl"
        ));
        assert!(pattern_matches(
            "^grpc_core::*connect",
            "grpc_core::tcp_client_connect_impl"
        ));
        assert!(!pattern_matches("^tcp", "grpc_core::tcp_client"));
        assert!(pattern_matches(
            "impl$",
            "grpc_core::tcp_client_connect_impl"
        ));
        assert!(!pattern_matches(
            "connect$",
            "grpc_core::tcp_client_connect_impl"
        ));
        assert!(pattern_matches(
            "libgrpc*.so",
            "/usr/lib/x86_64-linux-gnu/libgrpc.so.29"
        ));
    }
}
