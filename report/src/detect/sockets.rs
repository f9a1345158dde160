//! Findings about one socket at a time: what its own lifecycle and the kernel's view of the
//! connection say (`peer_closed`, `shutdown_not_closed`, `stuck_connecting`, `half_open`,
//! `idle_orphan`), and `since_checkpoint`.

use super::{Settings, describe, fds, list};
use crate::units::duration;
use crate::verdict::{connect_ago_s, connect_failure, never_connected, peer_gone};
use crate::{Finding, FindingKind, Origin, Role, Severity, Socket, TcpState};
use std::collections::BTreeMap;

/// States in which a connection still has a peer that should acknowledge what we send.
const ACKED_STATES: [TcpState; 5] = [
    TcpState::Established,
    TcpState::CloseWait,
    TcpState::FinWait1,
    TcpState::LastAck,
    TcpState::Closing,
];

/// A finding about the socket `members` (its fds), to its peer.
fn about(members: &[&Socket], kind: FindingKind, severity: Severity, message: String) -> Finding {
    let mut finding = Finding::new(kind, severity, fds(members), message);
    finding.backend = members[0].peer.clone();
    finding
}

/// `peer_closed`, `shutdown_not_closed`, `stuck_connecting`, `half_open` and `idle_orphan`.
pub(super) fn per_socket(
    sockets_by_id: &BTreeMap<u64, Vec<&Socket>>,
    settings: &Settings,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for members in sockets_by_id.values() {
        let s = members[0];
        if s.role == Role::Listener {
            continue;
        }
        let fd_list = list(&fds(members));
        let gone = peer_gone(s);
        if let Some(since) = s.peer_closed_s.filter(|&t| gone && t >= settings.grace_s) {
            findings.push(about(
                members,
                FindingKind::PeerClosed,
                Severity::Leak,
                format!(
                    "fd {fd_list} {}: the peer hung up {} ago and the socket is still open",
                    describe(s),
                    duration(since)
                ),
            ));
        }
        if let Some(shutdown) = members
            .iter()
            .filter_map(|m| m.shutdown.as_ref())
            .find(|sh| sh.ago_s >= settings.grace_s)
        {
            findings.push(about(
                members,
                FindingKind::ShutdownNotClosed,
                Severity::Leak,
                format!(
                    "fd {fd_list} {}: shutdown({}) was called {} ago but the fd was never closed",
                    describe(s),
                    shutdown.how,
                    duration(shutdown.ago_s)
                ),
            ));
        }
        findings.extend(stuck_connecting(members, &fd_list, settings));
        if gone {
            continue; // peer_closed says it better than half_open or idle_orphan
        }
        if let Some(finding) = half_open(members, &fd_list, settings) {
            findings.push(finding);
        } else if let Some(finding) = idle_orphan(members, &fd_list, settings) {
            findings.push(finding);
        }
    }
    findings
}

/// A failed connect kept past the grace period (leak), or SYN_SENT past the connect threshold
/// (warning).
fn stuck_connecting(members: &[&Socket], fd_list: &str, settings: &Settings) -> Option<Finding> {
    let s = members[0];
    if s.role != Role::Client {
        return None;
    }
    if never_connected(s) {
        // When did it fail? A blocking connect() failed when it returned (connect time is a
        // lower bound); a non-blocking one when the kernel entered CLOSE (the watcher's date).
        let failed_ago = match (connect_failure(s), s.state_since_s) {
            (Some(_), _) => connect_ago_s(s),
            (None, Some(since)) => Some(since),
            (None, None) => None,
        }?;
        if failed_ago < settings.grace_s {
            return None;
        }
        let how = match connect_failure(s) {
            Some(result) => format!("connect() failed with {result}"),
            None => "the connection was never answered (refused or timed out)".to_string(),
        };
        return Some(about(
            members,
            FindingKind::StuckConnecting,
            Severity::Leak,
            format!(
                "fd {fd_list} {}: {how} {} ago and the fd was never closed",
                describe(s),
                duration(failed_ago)
            ),
        ));
    }
    if s.tcp_state != Some(TcpState::SynSent) {
        return None;
    }
    let waiting = s.state_since_s.or_else(|| connect_ago_s(s))?;
    if waiting < settings.connect_s {
        return None;
    }
    let retries = s.tcp.as_ref().map_or(0, |t| t.retransmits);
    Some(about(
        members,
        FindingKind::StuckConnecting,
        Severity::Warning,
        format!(
            "fd {fd_list} {}: connecting for {} ({retries} SYN retransmission{}), no answer from \
             the backend (listen backlog full, or packets dropped)",
            describe(s),
            duration(waiting),
            if retries == 1 { "" } else { "s" }
        ),
    ))
}

/// Whether `s` sends data (or keepalive probes) that its peer has not acknowledged for longer
/// than the half-open threshold: the peer vanished without a FIN. Also how a duplicate group
/// tells a dead member.
pub(super) fn is_half_open(s: &Socket, settings: &Settings) -> bool {
    let (Some(tcp), Some(state)) = (s.tcp.as_ref(), s.tcp_state) else {
        return false;
    };
    let retransmitting = tcp.unacked > 0 && (tcp.retransmits > 0 || tcp.backoff > 0);
    ACKED_STATES.contains(&state)
        && tcp.handshake_completed != Some(false)
        && tcp
            .last_ack_recv_s
            .is_some_and(|t| t >= settings.half_open_s)
        && (retransmitting || tcp.probes > 0)
}

/// Data (or keepalive probes) unacknowledged for longer than the half-open threshold.
fn half_open(members: &[&Socket], fd_list: &str, settings: &Settings) -> Option<Finding> {
    let s = members[0];
    if !is_half_open(s, settings) {
        return None;
    }
    let tcp = s.tcp.as_ref()?;
    let no_ack = tcp.last_ack_recv_s?;
    let retransmitting = tcp.unacked > 0 && (tcp.retransmits > 0 || tcp.backoff > 0);
    let what = if retransmitting {
        format!(
            "{} segment{} unacknowledged, {} retransmission{}",
            tcp.unacked,
            if tcp.unacked == 1 { "" } else { "s" },
            tcp.retransmits.max(tcp.backoff),
            if tcp.retransmits.max(tcp.backoff) == 1 {
                ""
            } else {
                "s"
            }
        )
    } else {
        format!("{} keepalive probe(s) unanswered", tcp.probes)
    };
    Some(about(
        members,
        FindingKind::HalfOpen,
        Severity::Warning,
        format!(
            "fd {fd_list} {}: {what}, no ACK from the peer for {}: the peer vanished without a FIN \
             (the kernel gives up after about 15 minutes of retransmissions)",
            describe(s),
            duration(no_ack)
        ),
    ))
}

/// A client connection that carried no payload for longer than the idle threshold.
fn idle_orphan(members: &[&Socket], fd_list: &str, settings: &Settings) -> Option<Finding> {
    let s = members[0];
    let tcp = s.tcp.as_ref()?;
    if s.role != Role::Client
        || s.tcp_state != Some(TcpState::Established)
        || tcp.keepalive == Some(true)
    {
        return None;
    }
    let idle = tcp.idle_s()?;
    if idle < settings.idle_s {
        return None;
    }
    Some(about(
        members,
        FindingKind::IdleOrphan,
        Severity::Warning,
        format!(
            "fd {fd_list} {}: no payload either way for {} (keepalive off): nothing seems to use \
             this connection any more",
            describe(s),
            duration(idle)
        ),
    ))
}

/// Sockets opened since a newer checkpoint are a subset of those opened since an older one,
/// so one finding, for the oldest checkpoint that still has open sockets, lists them all; the
/// report's `checkpoints` list gives the count per checkpoint.
pub(super) fn since_checkpoint(
    sockets_by_id: &BTreeMap<u64, Vec<&Socket>>,
    settings: &Settings,
) -> Option<Finding> {
    let mut with_open = settings.checkpoints.iter().filter_map(|&(id, ago_s)| {
        let mut open: Vec<i32> = sockets_by_id
            .values()
            .filter(|members| members[0].age_s <= ago_s && members[0].origin == Origin::Created)
            .flat_map(|members| fds(members))
            .collect();
        open.sort_unstable();
        (!open.is_empty()).then_some((id, open))
    });
    let (id, open) = with_open.next()?;
    let newer = with_open.count();
    let also = if newer > 0 {
        format!(" ({newer} newer checkpoint(s) also have sockets still open)")
    } else {
        String::new()
    };
    let mut finding = Finding::new(
        FindingKind::SinceCheckpoint,
        Severity::Leak,
        Vec::new(),
        format!(
            "{} fd(s) opened since checkpoint {id} are still open: {}{also}",
            open.len(),
            list(&open)
        ),
    );
    finding.fds = open;
    finding.checkpoint = Some(id);
    Some(finding)
}
