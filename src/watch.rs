//! The TCP-state watcher: notes when each tracked TCP connection's peer hung up, so a report
//! can say "the peer closed 42 s ago" and the grace period can be measured.
//!
//! Runs on the `fdguard` thread every FDGUARD_WATCH_MS. Its cost is bounded whatever the
//! number of sockets: at most [`BUDGET`] `getsockopt(TCP_INFO)` calls per tick, resuming where
//! the previous tick stopped (round robin over fd numbers). With 100,000 live sockets a full
//! sweep therefore takes 50 ticks (50 s at the default 1 s) while costing about 1-2 ms of one
//! core per tick; below 2,000 sockets every socket is seen every tick.

use crate::{clock, detect, table};
use std::sync::atomic::{AtomicI32, Ordering};

/// getsockopt calls per tick.
pub const BUDGET: usize = 2000;

static CURSOR: AtomicI32 = AtomicI32::new(0);

/// One watcher tick.
pub fn sample() {
    let start = CURSOR.load(Ordering::Relaxed);
    let now = clock::now_ns();
    let mut seen = 0usize;
    let mut next_cursor = 0;
    let mut wrapped = true;
    table::for_each_live(|r| {
        if seen >= BUDGET {
            if wrapped {
                next_cursor = r.fd;
                wrapped = false;
            }
            return;
        }
        if r.fd < start
            || r.ignored
            || r.peer.len == 0 && r.role == crate::record::Role::Unconnected
        {
            return;
        }
        let Some(state) = crate::report::tcp_state(&r) else {
            return;
        };
        seen += 1;
        let gone = detect::peer_gone_state(Some(state), r.role.to_model(), true);
        if gone && r.peer_closed_ns == 0 {
            table::set_peer_closed(r.fd, r.socket_id, now);
        } else if !gone && r.peer_closed_ns != 0 {
            table::set_peer_closed(r.fd, r.socket_id, 0);
        }
    });
    CURSOR.store(if wrapped { 0 } else { next_cursor }, Ordering::Relaxed);
}
