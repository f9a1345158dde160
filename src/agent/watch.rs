//! The TCP-state watcher: dates when each tracked TCP connection entered its current state and
//! when its peer hung up, so a report can say "CLOSE_WAIT for 3h" and "the peer closed 42 s
//! ago", and the grace period can be measured; and keeps the samples the trend detectors read
//! (live sockets per creating stack and per backend, closed connections per backend).
//!
//! Runs on the `fdguard` thread every FDGUARD_WATCH_MS. Its cost is bounded whatever the
//! number of sockets: each tick looks at most at [`BUDGET`] TCP connections (one
//! `getsockopt(TCP_INFO)` each: the state, the activity times and the retransmission counters
//! all come from that one call) and resumes where the previous tick stopped (round robin over
//! fd numbers). Measured cost of one TCP_INFO call is about 0.5-1 µs, so a tick costs at most
//! ~1-2 ms of one core. Below 2,000 connections every one is seen every tick; with 100,000 a
//! full sweep takes 50 ticks (50 s at the default 1 s), which only delays the date of a
//! hang-up by that much — the report itself always reads every state fresh, and dates a
//! hang-up from the kernel's own timestamps when the watcher has not yet.
//!
//! Counting sockets per stack and per backend rides on the same sweep (no system call): one
//! sample per completed sweep, kept in [`History`] (bounded: [`CAPACITY`] samples of at most
//! [`KEYS`] keys each, thinned by halving so they always span the whole run). The history
//! belongs to the `fdguard` thread alone (thread-local: a fork child's new thread starts
//! afresh, and no lock is ever held across a sweep); after each sample it publishes a copy,
//! which reports read ([`samples`]) under a lock held only to swap a pointer.
//!
//! The watcher is the only writer of dates into the table ([`note`] records what a report
//! learned); the report side reads the table and [`samples`].

use crate::platform::{clock, kernel, process};
use crate::report::build::{StateSeen, date_hangup, date_state_entry};
use crate::track::record::{NO_STACK, Role, SocketRecord, TcpSeen};
use crate::track::sockaddr::{self, PeerAddr};
use crate::track::{history, table};
use fdguard_report::detect::{self, Samples, Series};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

/// TCP connections looked at per tick.
pub const BUDGET: usize = 2000;
/// Samples kept. When full, every other one is dropped (its closed connections move to the
/// next one) and one sample is taken per two sweeps from then on: the samples always span
/// the whole run, at a resolution that halves as it gets longer (1 s for the first minute,
/// about 1 min after an hour, about 20 min after a day, at the default 1 s tick).
pub const CAPACITY: usize = 64;
/// Keys (stacks, backends) kept per sample and per dimension: the largest counts. A key that
/// is not among them counts as the smallest kept value of that sample, which can only
/// overstate its past and so understate a rise. Worst case 64 × 3 × 16 × 12 bytes ≈ 37 KiB.
pub const KEYS: usize = 16;

static CURSOR: AtomicI32 = AtomicI32::new(0);
/// The latest samples, for reports. WARNING: hold this lock only to swap or clone the `Arc`
/// (a fork child inherits it in whatever state the parent's threads left it; every user
/// gives up after a bounded wait).
static PUBLISHED: Mutex<Option<Arc<Published>>> = Mutex::new(None);

thread_local! {
    /// The `fdguard` thread's history (the only thread that samples).
    static HISTORY: RefCell<Option<History>> = const { RefCell::new(None) };
}

/// A copy of the samples as of the last sweep, with absolute times: a report converts them
/// to "seconds ago" at its own instant.
struct Published {
    pid: i32,
    at_ns: Vec<u64>,
    by_stack: Vec<Series<u64>>,
    by_backend: Vec<Series<String>>,
    closed_by_backend: Vec<Series<String>>,
}

impl Published {
    fn samples(&self, now: u64) -> Samples {
        Samples {
            ago_s: self
                .at_ns
                .iter()
                .map(|&at| clock::secs_between(at, now))
                .collect(),
            by_stack: self.by_stack.clone(),
            by_backend: self.by_backend.clone(),
            closed_by_backend: self.closed_by_backend.clone(),
        }
    }
}

/// One sample: counts at the end of a sweep.
#[derive(Debug, Clone, Default)]
struct Sample {
    at_ns: u64,
    by_stack: Counts<u32>,
    by_backend: Counts<u64>,
    closed: Counts<u64>,
}

/// The largest counts of one dimension and the value that stands for every other key.
#[derive(Debug, Clone, Default)]
struct Counts<K> {
    top: Vec<(K, u32)>,
    floor: u32,
}

impl<K: Copy + Eq + std::hash::Hash + Ord> Counts<K> {
    fn from_map(map: &HashMap<K, u32>) -> Counts<K> {
        let mut all: Vec<(K, u32)> = map.iter().map(|(&k, &n)| (k, n)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let floor = if all.len() > KEYS { all[KEYS - 1].1 } else { 0 };
        all.truncate(KEYS);
        Counts { top: all, floor }
    }

    fn get(&self, key: K) -> u32 {
        self.top
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(self.floor, |&(_, n)| n)
    }

    fn keys(&self) -> impl Iterator<Item = K> + '_ {
        self.top.iter().map(|&(k, _)| k)
    }

    /// Adds `other` in (closed connections of a dropped sample).
    fn absorb(&mut self, other: &Counts<K>) {
        let mut map: HashMap<K, u32> = self.top.iter().copied().collect();
        for &(k, n) in &other.top {
            *map.entry(k).or_default() += n;
        }
        let floor = self.floor + other.floor;
        *self = Counts::from_map(&map);
        self.floor = self.floor.max(floor);
    }
}

/// What a sweep in progress has counted so far.
#[derive(Default)]
struct Sweep {
    by_stack: HashMap<u32, u32>,
    by_backend: HashMap<u64, u32>,
}

/// The samples of this process.
struct History {
    pid: i32,
    samples: Vec<Sample>,
    /// Sweeps per sample (doubles each time the samples are thinned) and sweeps since the last.
    stride: u32,
    sweeps: u32,
    sweep: Sweep,
    /// Closed connections counted since the last sample, and up to which close.
    closed: HashMap<u64, u32>,
    closed_until_ns: u64,
    pushed_seen: u64,
    /// Backend key → its name (the report's spelling of the peer), and raw peer bytes → key.
    names: HashMap<u64, String>,
    raw_keys: HashMap<u64, u64>,
}

impl History {
    fn new(pid: i32, now: u64) -> History {
        History {
            pid,
            samples: Vec::new(),
            stride: 1,
            sweeps: 0,
            sweep: Sweep::default(),
            closed: HashMap::new(),
            closed_until_ns: now,
            pushed_seen: history::pushed(),
            names: HashMap::new(),
            raw_keys: HashMap::new(),
        }
    }

    /// The key of a backend: peers that print the same (an IPv4 address and its IPv4-mapped
    /// IPv6 form, different padding bytes) are one backend.
    fn backend_key(&mut self, peer: &PeerAddr) -> Option<u64> {
        let raw = fnv(peer.as_slice());
        if let Some(&key) = self.raw_keys.get(&raw) {
            return Some(key);
        }
        let name = sockaddr::format(peer.as_slice())?;
        let key = fnv(name.as_bytes());
        if self.raw_keys.len() > 4096 {
            self.raw_keys.clear(); // bounded: a cache, rebuilt as needed
        }
        self.raw_keys.insert(raw, key);
        if self.names.len() < 4096 || self.names.contains_key(&key) {
            self.names.entry(key).or_insert(name);
        }
        Some(key)
    }

    fn count(&mut self, r: &SocketRecord) {
        if r.is_dup() {
            return;
        }
        if r.stack_id != NO_STACK {
            *self.sweep.by_stack.entry(r.stack_id).or_default() += 1;
        }
        if r.role == Role::Client
            && r.peer.len > 0
            && let Some(key) = self.backend_key(&r.peer)
        {
            *self.sweep.by_backend.entry(key).or_default() += 1;
        }
    }

    /// Counts the client connections closed since the last look (the history ring).
    fn count_closes(&mut self) {
        let pushed = history::pushed();
        if pushed == self.pushed_seen {
            return;
        }
        self.pushed_seen = pushed;
        let since = self.closed_until_ns;
        for c in history::recent(history::CAPACITY) {
            if c.closed_ns <= since {
                break; // newest first
            }
            self.closed_until_ns = self.closed_until_ns.max(c.closed_ns);
            if let Some(key) = self.backend_key(&c.peer) {
                *self.closed.entry(key).or_default() += 1;
            }
        }
    }

    /// A sweep is complete: maybe take a sample (returns whether it did).
    fn sweep_done(&mut self, now: u64) -> bool {
        self.count_closes();
        let sweep = std::mem::take(&mut self.sweep);
        self.sweeps += 1;
        if self.sweeps < self.stride {
            return false;
        }
        self.sweeps = 0;
        let closed = Counts::from_map(&std::mem::take(&mut self.closed));
        self.samples.push(Sample {
            at_ns: now,
            by_stack: Counts::from_map(&sweep.by_stack),
            by_backend: Counts::from_map(&sweep.by_backend),
            closed,
        });
        if self.samples.len() >= CAPACITY {
            self.thin();
        }
        true
    }

    /// Drops every other sample, oldest first; the closes it counted go to the next one.
    fn thin(&mut self) {
        let old = std::mem::take(&mut self.samples);
        let mut carry: Option<Counts<u64>> = None;
        let last = old.len() - 1;
        for (i, mut sample) in old.into_iter().enumerate() {
            if let Some(closed) = carry.take() {
                sample.closed.absorb(&closed);
            }
            if i % 2 == 1 || i == last {
                self.samples.push(sample);
            } else {
                carry = Some(sample.closed);
            }
        }
        self.stride *= 2;
        // Forget the names nothing refers to any more; the raw-bytes cache is rebuilt (and
        // names re-learnt) on demand.
        let live: std::collections::HashSet<u64> = self
            .samples
            .iter()
            .flat_map(|s| s.by_backend.keys().chain(s.closed.keys()))
            .chain(self.sweep.by_backend.keys().copied())
            .chain(self.closed.keys().copied())
            .collect();
        self.names.retain(|k, _| live.contains(k));
        self.raw_keys.clear();
    }

    /// The samples as the detectors read them (times still absolute).
    fn publish(&self) -> Published {
        let empty = Published {
            pid: self.pid,
            at_ns: Vec::new(),
            by_stack: Vec::new(),
            by_backend: Vec::new(),
            closed_by_backend: Vec::new(),
        };
        let Some(latest) = self.samples.last() else {
            return empty;
        };
        let at_ns = self.samples.iter().map(|s| s.at_ns).collect();
        let by_stack = latest
            .by_stack
            .keys()
            .map(|key| Series {
                key: u64::from(key),
                counts: self.samples.iter().map(|s| s.by_stack.get(key)).collect(),
            })
            .collect();
        let name = |key: u64| self.names.get(&key).cloned();
        let by_backend = latest
            .by_backend
            .keys()
            .filter_map(|key| {
                Some(Series {
                    key: name(key)?,
                    counts: self.samples.iter().map(|s| s.by_backend.get(key)).collect(),
                })
            })
            .collect();
        // Backends with closes in the most recent quarter: churn's candidates.
        let recent = &self.samples[self.samples.len() - self.samples.len().div_ceil(4)..];
        let mut keys: Vec<u64> = recent.iter().flat_map(|s| s.closed.keys()).collect();
        keys.sort_unstable();
        keys.dedup();
        let closed_by_backend = keys
            .into_iter()
            .filter_map(|key| {
                Some(Series {
                    key: name(key)?,
                    counts: self.samples.iter().map(|s| s.closed.get(key)).collect(),
                })
            })
            .collect();
        Published {
            at_ns,
            by_stack,
            by_backend,
            closed_by_backend,
            ..empty
        }
    }
}

/// FNV-1a: keys for backends (not security-relevant; collisions only merge two backends'
/// counts).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// One watcher tick (on the `fdguard` thread).
pub fn sample() {
    HISTORY.with(|cell| {
        let mut slot = cell.borrow_mut();
        let now = clock::now_ns();
        let pid = process::pid();
        let history = match slot.as_mut() {
            Some(h) if h.pid == pid => h,
            _ => slot.insert(History::new(pid, now)),
        };
        tick(history, now);
    });
}

fn tick(history: &mut History, now: u64) {
    let mut seen = 0usize;
    let resume = table::visit_live_from(CURSOR.load(Ordering::Relaxed), |r| {
        if seen >= BUDGET {
            return false;
        }
        if r.ignored {
            return true;
        }
        history.count(&r);
        if r.role == Role::Listener || (r.peer.len == 0 && r.role == Role::Unconnected) {
            return true;
        }
        let Some(tcp) = kernel::tcp_sample(r.fd, r.family, r.sock_type) else {
            return true;
        };
        seen += 1;
        observe(&r, &tcp, now);
        true
    });
    CURSOR.store(resume.unwrap_or(0), Ordering::Relaxed);
    if resume.is_none() && history.sweep_done(now) {
        let published = Arc::new(history.publish());
        if let Ok(mut slot) = PUBLISHED.try_lock() {
            *slot = Some(published);
        }
    }
}

/// Records what one look at a connection says: a new state and its entry date, and the date
/// of a hang-up not dated yet (or no hang-up after all: the number was reused).
fn observe(r: &SocketRecord, tcp: &kernel::TcpSample, now: u64) {
    if r.tcp_seen.get().map(|(state, _)| state) != Some(tcp.state) {
        let since = date_state_entry(r, tcp, now);
        table::set_tcp_seen(
            r.fd,
            r.socket_id,
            r.tcp_seen,
            TcpSeen::new(tcp.state, since),
        );
    }
    let gone = tcp.handshake_completed
        && detect::peer_gone_state(Some(tcp.state), r.role.to_model(), true);
    if gone && r.peer_closed_ns == 0 {
        table::set_peer_closed(r.fd, r.socket_id, date_hangup(r, tcp, now));
    } else if !gone && r.peer_closed_ns != 0 {
        table::set_peer_closed(r.fd, r.socket_id, 0);
    }
}

/// Records what a report saw: the dates it worked out for states and hang-ups the watcher had
/// not dated yet (the watcher may not have run since), so the next report agrees with it.
pub fn note(states: &[StateSeen]) {
    for seen in states {
        if let Some(entered) = seen.entered {
            table::set_tcp_seen(seen.fd, seen.socket_id, seen.before, entered);
        }
        if let Some(at) = seen.hung_up_ns {
            table::set_peer_closed(seen.fd, seen.socket_id, at);
        }
    }
}

/// The samples for a report taken now (empty before the watcher's first sample, in a fork
/// child until its own watcher has sampled, or if the lock cannot be had in 10 ms).
pub fn samples() -> Samples {
    let now = clock::now_ns();
    for _ in 0..10 {
        let published = match PUBLISHED.try_lock() {
            Ok(slot) => slot.clone(),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().clone(),
            Err(std::sync::TryLockError::WouldBlock) => {
                std::thread::sleep(std::time::Duration::from_millis(1));
                continue;
            }
        };
        return match published {
            Some(p) if p.pid == process::pid() => p.samples(now),
            _ => Samples::default(),
        };
    }
    Samples::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(u64, u32)]) -> Counts<u64> {
        Counts::from_map(&pairs.iter().copied().collect())
    }

    #[test]
    fn counts_keep_the_largest_keys_and_a_floor_for_the_rest() {
        let many: Vec<(u64, u32)> = (0..40).map(|k| (k, k as u32)).collect();
        let c = counts(&many);
        assert_eq!(c.top.len(), KEYS);
        assert_eq!(c.get(39), 39);
        assert_eq!(c.floor, 24, "the smallest kept value");
        assert_eq!(c.get(3), 24, "an unkept key counts as the floor");
        let few = counts(&[(1, 5)]);
        assert_eq!((few.get(1), few.get(2)), (5, 0));
    }

    #[test]
    fn thinning_keeps_the_span_and_every_close() {
        let mut h = History::new(1, 0);
        for i in 0..CAPACITY as u64 {
            h.closed.insert(7, 1);
            h.names.insert(7, "10.0.0.1:80".into());
            h.sweep.by_stack.insert(3, i as u32);
            h.sweep_done((i + 1) * 1_000_000_000);
        }
        assert_eq!(h.samples.len(), CAPACITY / 2);
        assert_eq!(h.stride, 2);
        let total: u32 = h.samples.iter().map(|s| s.closed.get(7)).sum();
        assert_eq!(total, CAPACITY as u32, "no close is lost");
        assert_eq!(
            h.samples.last().unwrap().at_ns,
            CAPACITY as u64 * 1_000_000_000
        );
        let exported = h.publish().samples(CAPACITY as u64 * 1_000_000_000);
        assert_eq!(exported.ago_s.last(), Some(&0.0));
        assert_eq!(exported.by_stack[0].counts.len(), CAPACITY / 2);
        assert_eq!(exported.closed_by_backend[0].key, "10.0.0.1:80");
        // Two more sweeps make one sample at the new stride.
        h.sweep_done(100_000_000_000);
        assert_eq!(h.samples.len(), CAPACITY / 2);
        h.sweep_done(101_000_000_000);
        assert_eq!(h.samples.len(), CAPACITY / 2 + 1);
    }
}
