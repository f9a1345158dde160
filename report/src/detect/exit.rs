//! `open_at_exit`: the sockets this process created and still holds when it exits, dangerous
//! first, listeners last. A socket is a leak at exit exactly when another `leak` finding of the
//! same report names it, so the text, the JSON severity and FDGUARD_EXITCODE agree on every
//! socket: a peer that hung up a moment before exit (wget against an HTTP/1.0 server, redis-cli
//! when the server shuts down) is within the grace period and is not called a leak.

use super::{describe, fds, list};
use crate::units::duration;
use crate::verdict::{ExitSeverity, exit_severity, peer_gone};
use crate::{Finding, FindingKind, Origin, Severity, Socket};
use std::collections::{BTreeMap, BTreeSet};

pub(super) fn open_at_exit(
    sockets_by_id: &BTreeMap<u64, Vec<&Socket>>,
    findings: &[Finding],
) -> Vec<Finding> {
    // fd → the kinds of the leak findings that name it.
    let mut leaks: BTreeMap<i32, BTreeSet<&str>> = BTreeMap::new();
    for f in findings.iter().filter(|f| f.severity() == Severity::Leak) {
        for &fd in &f.fds {
            leaks.entry(fd).or_default().insert(f.kind.as_str());
        }
    }
    let mut at_exit: Vec<(ExitSeverity, &Vec<&Socket>, Vec<&str>)> = sockets_by_id
        .values()
        .filter(|m| m[0].origin == Origin::Created)
        .map(|m| {
            let kinds: BTreeSet<&str> = m
                .iter()
                .filter_map(|s| leaks.get(&s.fd))
                .flatten()
                .copied()
                .collect();
            (
                exit_severity(m[0], !kinds.is_empty()),
                m,
                kinds.into_iter().collect(),
            )
        })
        .collect();
    at_exit.sort_by_key(|(severity, m, _)| (*severity, m[0].fd));
    at_exit
        .into_iter()
        .map(|(severity, members, kinds)| {
            let s = members[0];
            let why = match severity {
                ExitSeverity::Leak => format!(": a leak ({})", kinds.join(", ")),
                ExitSeverity::Recent if peer_gone(s) => match s.peer_closed_s {
                    Some(ago) => format!(
                        "; its peer hung up {} before, within the grace period: not a leak",
                        duration(ago)
                    ),
                    None => "; its peer hung up just before: not a leak".to_string(),
                },
                ExitSeverity::Recent => match &s.shutdown {
                    Some(sh) => format!(
                        "; it was shut down {} before, within the grace period: not a leak",
                        duration(sh.ago_s)
                    ),
                    None => String::new(),
                },
                ExitSeverity::Listener => " (listening socket)".to_string(),
                ExitSeverity::Open => String::new(),
            };
            let fds = fds(members);
            let mut finding = Finding::new(
                FindingKind::OpenAtExit,
                if severity == ExitSeverity::Leak {
                    Severity::Leak
                } else {
                    Severity::Info
                },
                Vec::new(),
                format!(
                    "fd {} {} was still open at exit{why}",
                    list(&fds),
                    describe(s)
                ),
            );
            finding.fds = fds;
            finding.backend = s.peer.clone();
            finding
        })
        .collect()
}
