//! Narrowing a report to what the reader asked about (`fdguard show --kind/--backend/…`).
//!
//! [`apply`] returns a smaller, still self-consistent [`Report`]: the sockets that match, the
//! findings that still concern one of them, and a recomputed `summary`, plus a note saying the
//! view is filtered, so a filtered report is never mistaken for the whole picture. The input is
//! never modified.

use crate::model::{Finding, FindingKind, Frame, Report, Socket};
use crate::stacks::count_stacks;

/// What to keep. Every condition that is set must hold; an empty filter keeps everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Keep only findings of these kinds, and only the sockets they concern. Empty: any kind.
    pub kinds: Vec<FindingKind>,
    /// Keep only sockets whose peer matches: a glob when it contains `*` (matched against the
    /// whole peer, e.g. `*:50051`), otherwise a substring (`10.0.0.7`).
    pub backend: Option<String>,
    /// Keep only sockets at least this old, in seconds.
    pub min_age_s: Option<f64>,
    /// Keep only sockets whose creating stack has a frame whose function, file or module
    /// contains this substring.
    pub stack_contains: Option<String>,
}

impl Filter {
    /// True when the filter keeps everything.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
            && self.backend.is_none()
            && self.min_age_s.is_none()
            && self.stack_contains.is_none()
    }

    /// True when `socket` satisfies the socket conditions (backend, age, stack); `kinds` is
    /// applied by [`apply`], which knows the findings.
    pub fn matches_socket(&self, socket: &Socket) -> bool {
        self.matches_peer(socket.peer.as_deref())
            && self.min_age_s.is_none_or(|min| socket.age_s >= min)
            && self.matches_stack(&socket.stack)
    }

    fn matches_peer(&self, peer: Option<&str>) -> bool {
        match (&self.backend, peer) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(pattern), Some(peer)) if pattern.contains('*') => glob_match(pattern, peer),
            (Some(pattern), Some(peer)) => peer.contains(pattern.as_str()),
        }
    }

    fn matches_stack(&self, frames: &[Frame]) -> bool {
        let Some(needle) = &self.stack_contains else {
            return true;
        };
        frames.iter().any(|frame| {
            [&frame.function, &frame.file, &frame.module]
                .into_iter()
                .flatten()
                .any(|text| text.contains(needle.as_str()))
        })
    }

    /// `kind peer_closed, backend "*:50051"`: how the filter is described in the report's notes.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.kinds.is_empty() {
            let kinds: Vec<&str> = self.kinds.iter().map(|k| k.as_str()).collect();
            parts.push(format!("kind {}", kinds.join("|")));
        }
        if let Some(backend) = &self.backend {
            parts.push(format!("backend {backend:?}"));
        }
        if let Some(min) = self.min_age_s {
            parts.push(format!("age >= {min}s"));
        }
        if let Some(needle) = &self.stack_contains {
            parts.push(format!("stack contains {needle:?}"));
        }
        parts.join(", ")
    }
}

/// Returns the part of `report` that `filter` keeps (see [`Filter`]). A finding is kept when its
/// kind is wanted and at least one of its fds is among the kept sockets; it is kept whole
/// (its message and fd list are the library's). Recently closed connections are filtered by
/// backend and stack. `summary` is recomputed; `fd_budget` still describes the whole process.
pub fn apply(report: &Report, filter: &Filter) -> Report {
    if filter.is_empty() {
        return report.clone();
    }
    let mut sockets: Vec<Socket> = report
        .sockets
        .iter()
        .filter(|s| filter.matches_socket(s))
        .cloned()
        .collect();
    let kind_wanted = |f: &Finding| filter.kinds.is_empty() || filter.kinds.contains(&f.kind);
    let findings: Vec<Finding> = report
        .findings
        .iter()
        .filter(|f| kind_wanted(f) && f.fds.iter().any(|fd| sockets.iter().any(|s| s.fd == *fd)))
        .cloned()
        .collect();
    if !filter.kinds.is_empty() {
        // Asking for a kind means asking for the sockets it is about.
        sockets.retain(|s| findings.iter().any(|f| f.fds.contains(&s.fd)));
    }
    let recently_closed = report
        .recently_closed
        .iter()
        .filter(|c| filter.matches_peer(c.peer.as_deref()) && filter.matches_stack(&c.stack))
        .cloned()
        .collect();

    let mut filtered = report.clone();
    filtered.notes.push(format!(
        "filtered view ({}): {} of {} sockets and {} of {} findings shown",
        filter.describe(),
        sockets.len(),
        report.sockets.len(),
        findings.len(),
        report.findings.len()
    ));
    filtered.sockets = sockets;
    filtered.findings = findings;
    filtered.recently_closed = recently_closed;
    recompute_summary(&mut filtered);
    filtered
}

/// Recomputes `report.summary` from its sockets and findings.
pub fn recompute_summary(report: &mut Report) {
    let summary = &mut report.summary;
    summary.live_sockets = report.sockets.len() as u64;
    summary.stacks = count_stacks(&report.sockets);
    crate::detect::summarize(report);
}

/// Matches `text` against `pattern`, where `*` stands for any run of characters (possibly
/// empty) and everything else is literal; the whole text must match.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pieces: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = pieces
        .split_first()
        .expect("split yields at least one piece");
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        // No `*` at all: exact match.
        return remaining.is_empty();
    };
    for piece in middle {
        match remaining.find(piece) {
            Some(at) => remaining = &remaining[at + piece.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*:50051", "10.0.0.7:50051"));
        assert!(!glob_match("*:5005", "10.0.0.7:50051"));
        assert!(glob_match("10.*.7:*", "10.0.0.7:50051"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "abc"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(
            !glob_match("ab*ba", "aba"),
            "prefix and suffix must not overlap"
        );
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }
}
