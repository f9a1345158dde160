//! What each interposed call means for the fd table. The hooks beside this file call these after
//! (creation) or before (close) the real function; this is where the policy lives, so the hooks
//! stay five lines each.
//!
//! Creation-side events run inside [`guard::bookkeeping`] (reentrancy guard + panic boundary).
//! Close-side events ([`before_close`], [`before_close_range`]) must stay async-signal-safe: they
//! only touch the table's atomics.

use crate::agent::thread;
use crate::platform::guard::{self, Guard};
use crate::platform::kernel::{self, socket_option};
use crate::platform::process::{pid, thread_name, tid};
use crate::platform::{clock, procfs};
use crate::track::record::{self, NO_STACK, Origin, Role, SocketRecord};
use crate::track::sockaddr::PeerAddr;
use crate::track::{capture, table};

fn new_record(_guard: &Guard, fd: i32, family: i32, sock_type: i32, role: Role) -> SocketRecord {
    SocketRecord {
        fd,
        socket_id: table::next_socket_id(),
        created_ns: clock::now_ns(),
        stack_id: capture::capture_stack(),
        tid: tid(),
        family,
        sock_type,
        role,
        origin: Origin::Created,
        creator_pid: pid(),
        dup_of: -1,
        thread_name: thread_name(),
        ..SocketRecord::default()
    }
}

fn publish_created(guard: &Guard, record: &SocketRecord) {
    table::publish(guard, record);
    thread::ensure_running(guard);
}

/// socket() returned `fd`.
pub fn socket_created(fd: i32, family: i32, sock_type: i32) {
    guard::bookkeeping(|g| {
        if crate::config::get().test_fault.as_deref() == Some("hook-panic") {
            panic!("injected fault (FDGUARD_TEST_FAULT=hook-panic)");
        }
        let record = new_record(g, fd, family, sock_type, Role::Unconnected);
        publish_created(g, &record);
    });
}

/// socketpair() returned `fds`.
pub fn pair_created(fds: [i32; 2], family: i32, sock_type: i32) {
    guard::bookkeeping(|g| {
        let first = new_record(g, fds[0], family, sock_type, Role::Pair);
        let second = SocketRecord {
            fd: fds[1],
            socket_id: table::next_socket_id(),
            ..first.clone()
        };
        publish_created(g, &first);
        publish_created(g, &second);
    });
}

/// accept()/accept4() on `listener` returned `fd`; `peer` is what the kernel wrote into the
/// caller's buffer (empty when the caller passed none: the report asks the kernel later).
pub fn accepted(listener: i32, fd: i32, peer: PeerAddr) {
    guard::bookkeeping(|g| {
        let (family, sock_type) = match table::family_and_type(listener) {
            Some(known) => known,
            None => (
                socket_option(fd, libc::SO_DOMAIN),
                socket_option(fd, libc::SO_TYPE),
            ),
        };
        let mut record = new_record(g, fd, family, sock_type, Role::Accepted);
        record.peer = peer;
        publish_created(g, &record);
    });
}

/// connect() on `fd` returned with `errno_value` (0: success). `peer` is the address the
/// kernel read, `None` when it read none (EFAULT, EBADF, a length it refused: the hook never
/// reads caller memory the kernel did not).
///
/// The record shows what the kernel last agreed to: every new attempt (success, EINPROGRESS,
/// or a failure such as ECONNREFUSED) replaces the peer and the result, so a TCP socket
/// reconnected after a refusal and a UDP socket re-connected elsewhere show where they point
/// now; connect(AF_UNSPEC) dissolves the association and clears the peer. Polling a
/// non-blocking connect (EALREADY, then EISCONN) changes nothing but the result: the kernel
/// ignores the address of those calls. A report asks the kernel (getpeername) whenever the
/// record is not a confirmed connection.
pub fn connected(fd: i32, peer: Option<PeerAddr>, errno_value: i32) {
    guard::bookkeeping(|g| {
        let now = clock::now_ns();
        let tracked = table::update(g, fd, |r| match errno_value {
            libc::EALREADY => {}
            libc::EISCONN => {
                if matches!(r.connect_errno, libc::EINPROGRESS | libc::EALREADY) {
                    r.connect_errno = 0;
                }
            }
            _ => {
                let Some(peer) = peer else { return };
                if peer.family() == Some(libc::AF_UNSPEC) {
                    if errno_value == 0 {
                        r.new_peer = Some(PeerAddr::NONE);
                        r.connect_ns = 0;
                        r.connect_errno = 0;
                        if matches!(r.role, Role::Client | Role::Connected) {
                            r.role = Role::Unconnected;
                        }
                    }
                    return;
                }
                r.connect_ns = now;
                r.connect_errno = errno_value;
                r.new_peer = Some(peer);
                if matches!(r.role, Role::Unconnected | Role::Connected) {
                    r.role = Role::Client;
                }
            }
        });
        if tracked {
            thread::ensure_running(g);
        }
    });
}

/// listen() succeeded on `fd`.
pub fn listening(fd: i32) {
    guard::bookkeeping(|g| {
        if table::update(g, fd, |r| r.role = Role::Listener) {
            thread::ensure_running(g);
        }
    });
}

/// shutdown(`how`) succeeded on `fd`.
pub fn shut_down(fd: i32, how: i32) {
    guard::bookkeeping(|g| {
        let now = clock::now_ns();
        let tracked = table::update(g, fd, |r| {
            let bits = |h: u32| match h {
                1 => 1u32, // SHUT_RD + 1
                2 => 2,    // SHUT_WR + 1
                3 => 3,    // SHUT_RDWR + 1
                _ => 0,
            };
            let merged = bits(r.shutdown_how) | bits((how + 1).clamp(0, 3) as u32);
            if r.shutdown_ns == 0 {
                r.shutdown_ns = now;
            }
            r.shutdown_how = merged;
        });
        if tracked {
            thread::ensure_running(g);
        }
    });
}

/// recvmsg()/recvmmsg() installed `fds` (SCM_RIGHTS). The sockets among them are recorded
/// with origin `received`, the receiving stack and the kernel's view (family, type, peer,
/// listening or not); other kinds of fds are not fdguard's business.
pub fn received(fds: &[i32]) {
    guard::bookkeeping(|g| {
        let mut any = false;
        for &fd in fds {
            if !kernel::is_socket(fd) {
                continue;
            }
            let seen = record::observe(fd);
            let mut record = new_record(g, fd, seen.family, seen.sock_type, seen.role);
            record.origin = Origin::Received;
            record.peer = seen.peer;
            // A fresh number (the kernel just installed it): replace whatever record a close
            // we did not see left there.
            table::retire(fd);
            any |= table::publish(g, &record);
        }
        if any {
            thread::ensure_running(g);
        }
    });
}

/// `new` now refers to the same open socket as `old` (dup, dup2, dup3, F_DUPFD*). Runs after
/// the real call: the number `new` stays occupied throughout, so no other socket can be
/// given it in between.
///
/// Async-signal-safe and, like the close path, independent of the reentrancy guard: hosts
/// call dup2() from signal handlers, and the handler may interrupt this very thread inside
/// fdguard's own bookkeeping (where the guard is held). Skipping the update then would leave
/// `new` untracked, or still described as the socket dup2 just replaced
/// (tests/reliability_signals.rs lost 45% of such dups). Retiring `new` and copying `old`'s
/// record are atomic stores (at worst one mmap for a fresh table chunk); only starting the
/// reporter thread is not done here (it allocates): `old` being tracked means the thread runs
/// already, or will be started by the next creation-side hook.
pub fn duplicated(old: i32, new: i32) {
    if old == new || !close_path_enabled() {
        return;
    }
    let _ = guard::catch_quietly(|| {
        table::retire(new);
        table::publish_dup(old, new)
    });
}

/// True when the close path may touch the table: fdguard active and not a vfork child. Unlike
/// the creation path this does not need the reentrancy guard: retiring is a few atomic stores,
/// correct whoever closes the number (our own internal closes included).
#[inline]
fn close_path_enabled() -> bool {
    guard::is_active() && !guard::in_vfork_child()
}

/// `fd` is about to be closed. Async-signal-safe.
#[inline]
pub fn before_close(fd: i32) {
    if close_path_enabled() {
        let _ = guard::catch_quietly(|| table::retire(fd));
    }
}

/// close_range(first, last, flags) is about to run. Async-signal-safe.
pub fn before_close_range(first: u32, last: u32, flags: i32) {
    let known = libc::CLOSE_RANGE_CLOEXEC as i32 | libc::CLOSE_RANGE_UNSHARE as i32;
    let closes =
        flags & !known == 0 && flags & libc::CLOSE_RANGE_CLOEXEC as i32 == 0 && first <= last;
    if closes && close_path_enabled() {
        let _ = guard::catch_quietly(|| table::retire_range(first, last));
    }
}

/// closefrom(lowfd) is about to run. Async-signal-safe.
pub fn before_closefrom(lowfd: i32) {
    if close_path_enabled() {
        let _ = guard::catch_quietly(|| table::retire_range(lowfd.max(0) as u32, u32::MAX));
    }
}

/// The host is about to change namespaces in a way the kernel refuses to a multi-threaded
/// process: stops the `fdguard` thread (see hooks/namespace.rs). Returns whether it was
/// running. Not in a vfork child (the thread is the parent's) nor inside fdguard.
pub fn before_namespace_change() -> bool {
    if !guard::is_active() || guard::in_vfork_child() {
        return false;
    }
    guard::bookkeeping(|_| thread::stop_for_namespace_change()).unwrap_or(false)
}

/// The namespace change is done: after a failure (the host has threads of its own) the
/// thread is started again at once; after a success, by the next hook that needs it.
pub fn after_namespace_change(succeeded: bool) {
    if !succeeded {
        guard::bookkeeping(thread::ensure_running);
    }
}

/// Records the sockets that were open before fdguard loaded (constructor): peer and state but
/// no stack. Returns how many.
pub fn scan_preexisting(guard: &Guard) -> usize {
    let now = clock::now_ns();
    let mut found = 0;
    for fd in procfs::open_fds(procfs::Threads::None, 0)
        .into_iter()
        .filter(|f| f.is_socket())
        .map(|f| f.fd)
    {
        let seen = record::observe(fd);
        let record = SocketRecord {
            fd,
            socket_id: table::next_socket_id(),
            created_ns: now,
            stack_id: NO_STACK,
            family: seen.family,
            sock_type: seen.sock_type,
            role: seen.role,
            origin: Origin::Preexisting,
            creator_pid: pid(),
            dup_of: -1,
            peer: seen.peer,
            ..SocketRecord::default()
        };
        found += usize::from(table::publish(guard, &record));
    }
    found
}
