//! `duplicate_backend`: several client connections to one backend. Most such groups are pools
//! (urllib3's, Node's `http.Agent`, a gRPC client with several channels) and are reported as
//! context: count, ages, idle times. A group is a warning only when it has the
//! grpc/grpc#38871 shape — a member dead (peer gone for the grace period, or half-open) or
//! stale (idle past the idle threshold) while a sibling to the same backend is alive — or when
//! it keeps growing past its own high-water mark across the samples.

use super::sockets::is_half_open;
use super::trend::{rate, rising};
use super::{Settings, fds, list};
use crate::units::duration;
use crate::verdict::{never_connected, peer_gone};
use crate::{Finding, FindingKind, Role, Severity, Socket, TcpState};
use std::collections::BTreeMap;

/// Why a member of a group is suspect.
enum Suspect {
    Dead,
    Stale(f64),
}

/// A member is dead once its peer has been gone for the grace period (a pool notices a
/// hang-up on its next checkout: urllib3's LIFO pool keeps the connection it does not need
/// right now in CLOSE_WAIT for as long as it does not need it), stale once idle past the idle
/// threshold.
fn suspect(s: &Socket, settings: &Settings) -> Option<Suspect> {
    if is_half_open(s, settings) {
        return Some(Suspect::Dead);
    }
    if peer_gone(s) {
        return s
            .peer_closed_s
            .filter(|&since| since >= settings.grace_s)
            .map(|_| Suspect::Dead);
    }
    let idle = s.tcp.as_ref().and_then(|t| t.idle_s())?;
    (s.tcp_state == Some(TcpState::Established) && idle >= settings.idle_s)
        .then_some(Suspect::Stale(idle))
}

/// `a–b` for a range of durations, or one value.
fn span(values: impl Iterator<Item = f64>) -> Option<String> {
    let values: Vec<f64> = values.collect();
    let min = values.iter().copied().reduce(f64::min)?;
    let max = values.iter().copied().reduce(f64::max)?;
    let (a, b) = (duration(min), duration(max));
    Some(if a == b { a } else { format!("{a}–{b}") })
}

pub(super) fn duplicates(
    sockets_by_id: &BTreeMap<u64, Vec<&Socket>>,
    settings: &Settings,
) -> Vec<Finding> {
    let mut groups: BTreeMap<&str, Vec<&Vec<&Socket>>> = BTreeMap::new();
    for members in sockets_by_id.values() {
        let s = members[0];
        // Failed and unanswered connects are stuck_connecting's business, not pool members.
        let connecting = never_connected(s) || s.tcp_state == Some(TcpState::SynSent);
        if let Some(peer) = s
            .peer
            .as_deref()
            .filter(|_| s.role == Role::Client && s.sock_type == "stream" && !connecting)
        {
            groups.entry(peer).or_default().push(members);
        }
    }
    let mut out = Vec::new();
    for (backend, members) in groups {
        if members.len() < settings.dup_min {
            continue;
        }
        let all: Vec<i32> = {
            let mut v: Vec<i32> = members
                .iter()
                .flat_map(|m| m.iter().map(|s| s.fd))
                .collect();
            v.sort_unstable();
            v
        };
        let judged: Vec<(&Vec<&Socket>, Option<Suspect>)> = members
            .iter()
            .map(|m| (*m, suspect(m[0], settings)))
            .collect();
        // Alive: neither suspect nor hung up (a member whose peer left a moment ago is not
        // evidence either way).
        let alive: Vec<i32> = judged
            .iter()
            .filter(|(m, why)| why.is_none() && !peer_gone(m[0]))
            .flat_map(|(m, _)| fds(m))
            .collect();
        // Why each suspect is one: members dead the same way share one phrase ("fd 7, 9
        // dead (CLOSE_WAIT)"), and the stale ones one with their idle span, so a group with
        // hundreds of dead members still reads as one line.
        let mut suspects: Vec<i32> = Vec::new();
        let mut dead: Vec<(&str, Vec<i32>)> = Vec::new();
        let (mut stale, mut stale_idle): (Vec<i32>, Vec<f64>) = (Vec::new(), Vec::new());
        for (m, why) in &judged {
            match why {
                Some(Suspect::Dead) => {
                    let how = if peer_gone(m[0]) {
                        m[0].tcp_state.map_or("peer gone", |s| s.as_str())
                    } else {
                        "no ACK from the peer"
                    };
                    match dead.iter_mut().find(|(h, _)| *h == how) {
                        Some((_, fds_of_how)) => fds_of_how.extend(fds(m)),
                        None => dead.push((how, fds(m))),
                    }
                }
                Some(Suspect::Stale(idle)) => {
                    stale.extend(fds(m));
                    stale_idle.push(*idle);
                }
                None => continue,
            }
            suspects.extend(fds(m));
        }
        let mut reasons: Vec<String> = dead
            .iter()
            .map(|(how, fds)| format!("fd {} dead ({how})", list(fds)))
            .collect();
        if let Some(idle) = span(stale_idle.into_iter()) {
            reasons.push(format!("fd {} idle for {idle}", list(&stale)));
        }
        suspects.sort_unstable();
        // Growing past its own high-water mark: the same test as a `growth` finding (a pool
        // fills up once; a leak keeps setting new highs, by at least FDGUARD_GROWTH_MIN).
        let growing = settings
            .samples
            .by_backend
            .iter()
            .find(|series| series.key == backend)
            .and_then(|series| {
                rising(&series.counts, &settings.samples.ago_s, settings.growth_min)
            });

        let ages = span(members.iter().map(|m| m[0].age_s)).unwrap_or_default();
        let idle = span(
            members
                .iter()
                .filter_map(|m| m[0].tcp.as_ref().and_then(|t| t.idle_s())),
        );
        let context = match idle {
            Some(idle) => format!("ages {ages}, idle {idle}"),
            None => format!("ages {ages}"),
        };
        let n = members.len();
        let shape_38871 = !suspects.is_empty() && !alive.is_empty();
        let mut message = format!(
            "{n} connections to {backend} (fds {}), {context}",
            list(&all)
        );
        if shape_38871 {
            message.push_str(&format!(
                ": {} while fd {} {} alive — the grpc/grpc#38871 shape; likely leak: fd {}",
                reasons.join(", "),
                list(&alive),
                if alive.len() == 1 { "is" } else { "are" },
                list(&suspects)
            ));
        } else if !suspects.is_empty() {
            // Nobody alive to compare with: each member's own finding (peer_closed,
            // idle_orphan) says what is wrong.
            message.push_str(&format!(
                ": every one is dead or stale ({})",
                reasons.join(", ")
            ));
        } else {
            message.push_str(": a pool or parallel connections, none dead or stale");
        }
        if let Some(rise) = growing {
            message.push_str(&format!(
                "; the group keeps growing past its high-water mark: {} to {} in {} ({})",
                rise.from,
                rise.to,
                duration(rise.over_s),
                rate(rise.per_min)
            ));
        }
        let severity = if shape_38871 || growing.is_some() {
            Severity::Warning
        } else {
            Severity::Info
        };
        let mut finding = Finding::new(FindingKind::DuplicateBackend, severity, all, message);
        finding.backend = Some(backend.to_string());
        finding.suspect_fds = suspects;
        out.push(finding);
    }
    out
}
