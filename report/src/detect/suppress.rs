//! Suppressions, LeakSanitizer style: a file of `leak:<pattern>` lines (matched against every
//! frame's function, module and source file of the finding's sockets — for a Python frame its
//! qualified name and its `.py` file; they apply to
//! peer_closed, shutdown_not_closed, since_checkpoint and open_at_exit) and `dup:<pattern>`
//! lines (matched against a duplicate_backend finding's backend; the only rules that apply to
//! duplicate groups). `*` is a wildcard; a pattern matches anywhere in the text unless anchored
//! with `^` (start) or `$` (end); `#` starts a comment. Suppressed findings stay in the JSON,
//! marked `suppressed_by`, and do not count.

use crate::filter::glob_match;
use crate::{FindingKind, Report, SuppressionUse};

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `leak:` or `dup:`.
    pub kind: RuleKind,
    /// The pattern after the colon, trimmed.
    pub pattern: String,
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
        format!("{prefix}:{}", self.pattern)
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
            },
            Some(("dup", p)) if !p.trim().is_empty() => Rule {
                kind: RuleKind::Dup,
                pattern: p.trim().to_string(),
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
        let hit = rules.iter().position(|rule| match rule.kind {
            RuleKind::Dup => {
                finding.kind == FindingKind::DuplicateBackend
                    && finding
                        .backend
                        .as_deref()
                        .is_some_and(|b| pattern_matches(&rule.pattern, b))
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
                pattern: "grpc_core::*".into()
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
            }];
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
