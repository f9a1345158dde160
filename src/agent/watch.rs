//! The TCP-state watcher: notes when each tracked TCP connection's peer hung up, so a report
//! can say "the peer closed 42 s ago" and the grace period can be measured.
//!
//! Runs on the `fdguard` thread every FDGUARD_WATCH_MS. Its cost is bounded whatever the
//! number of sockets: each tick looks at most at [`BUDGET`] TCP connections (one
//! `getsockopt(TCP_INFO)` each) and resumes where the previous tick stopped (round robin over
//! fd numbers). Measured cost of one TCP_INFO call is about 0.5-1 µs, so a tick costs at most
//! ~1-2 ms of one core. Below 2,000 connections every one is seen every tick; with 100,000 a
//! full sweep takes 50 ticks (50 s at the default 1 s), which only delays the date of a
//! hang-up by that much — the report itself always reads every state fresh.

use crate::platform::{clock, kernel};
use crate::report::build::StateSeen;
use crate::track::record::Role;
use crate::track::table;
use fdguard_report::detect;
use std::sync::atomic::{AtomicI32, Ordering};

/// TCP connections looked at per tick.
pub const BUDGET: usize = 2000;

static CURSOR: AtomicI32 = AtomicI32::new(0);

/// One watcher tick.
pub fn sample() {
    let now = clock::now_ns();
    let mut seen = 0usize;
    let resume = table::visit_live_from(CURSOR.load(Ordering::Relaxed), |r| {
        if seen >= BUDGET {
            return false;
        }
        if r.ignored || r.role == Role::Listener || (r.peer.len == 0 && r.role == Role::Unconnected)
        {
            return true;
        }
        let Some(state) = kernel::tcp_state(r.fd, r.family, r.sock_type) else {
            return true;
        };
        seen += 1;
        let gone = detect::peer_gone_state(Some(state), r.role.to_model(), true);
        if gone && r.peer_closed_ns == 0 {
            table::set_peer_closed(r.fd, r.socket_id, now);
        } else if !gone && r.peer_closed_ns != 0 {
            table::set_peer_closed(r.fd, r.socket_id, 0);
        }
        true
    });
    CURSOR.store(resume.unwrap_or(0), Ordering::Relaxed);
}

/// Records what a report saw: the first sighting of a finished peer dates its hang-up, so the
/// next report can measure how long it has been (the watcher may not have run yet).
pub fn note(states: &[StateSeen]) {
    let now = clock::now_ns();
    for seen in states.iter().filter(|s| s.peer_gone) {
        table::set_peer_closed(seen.fd, seen.socket_id, now);
    }
}
