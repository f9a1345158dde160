//! Facts about this process and the calling thread: pid, tid and thread name, cached so the
//! socket-creation path pays no system call for them; the effective uid, whether another pid
//! is alive; and the process-wide handlers libc offers (atexit, pthread_atfork).
#![allow(unsafe_code)] // libc calls with pointers (argv, prctl's buffer, handler registration).

use std::cell::Cell;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering};

/// Our pid, refreshed in the fork child (a vfork child never records anything).
static PID: AtomicI32 = AtomicI32::new(0);
/// Where the argument strings live: `[start, end)` of the memory the kernel reads for
/// /proc/self/cmdline, from the argv the loader gave the constructor.
static ARGS_START: AtomicUsize = AtomicUsize::new(0);
static ARGS_END: AtomicUsize = AtomicUsize::new(0);

/// Remembers where the argument strings are (constructor, with the loader's argc/argv).
///
/// # Safety
/// `argv` is null or points to `argc` pointers to NUL-terminated strings (the loader's).
pub unsafe fn remember_arguments(argc: i32, argv: *const *const libc::c_char) {
    if argv.is_null() || argc <= 0 {
        return;
    }
    let (mut start, mut end) = (usize::MAX, 0usize);
    for i in 0..argc as usize {
        // SAFETY: argv holds argc valid pointers (the caller's promise).
        let arg = unsafe { *argv.add(i) };
        if arg.is_null() {
            break;
        }
        // SAFETY: a NUL-terminated string.
        let len = unsafe { libc::strlen(arg) };
        start = start.min(arg as usize);
        end = end.max(arg as usize + len + 1);
    }
    if start < end && end - start <= 1 << 20 {
        ARGS_START.store(start, Ordering::Relaxed);
        ARGS_END.store(end, Ordering::Relaxed);
    }
}

/// The argument strings as they are in memory now (a program that rewrites its title, as
/// PostgreSQL and nginx do, shows the new one, as /proc/self/cmdline would), NUL-separated.
/// Read with process_vm_readv: never a fault.
pub fn arguments() -> Option<Vec<u8>> {
    let (start, end) = (
        ARGS_START.load(Ordering::Relaxed),
        ARGS_END.load(Ordering::Relaxed),
    );
    if start == 0 || end <= start {
        return None;
    }
    let mut bytes = vec![0u8; end - start];
    crate::platform::real::read_own_memory(start as *const u8, &mut bytes).then_some(bytes)
}

thread_local! {
    /// This thread's tid (0 = not read yet). Reset in the fork child.
    static TID: Cell<i32> = const { Cell::new(0) };
    /// This thread's name as last read, and the [`NAME_GENERATION`] it was read at.
    static NAME: Cell<([u8; 16], u32)> = const { Cell::new(([0; 16], 0)) };
}

/// Bumped whenever a thread name may have changed (interposed `pthread_setname_np`), so every
/// thread re-reads its name at its next socket instead of paying a prctl() system call per
/// socket (≈120 ns, measured by the benchmark). Starts at 1 so "never read" (0) differs.
static NAME_GENERATION: AtomicU32 = AtomicU32::new(1);

/// A thread name may have changed (called by the `pthread_setname_np` hook).
pub fn thread_names_changed() {
    NAME_GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Caches the pid (constructor and fork child).
pub fn refresh_pid() {
    PID.store(crate::platform::real::getpid_raw(), Ordering::Relaxed);
    TID.with(|t| t.set(0));
    NAME.with(|n| n.set(([0; 16], 0)));
}

/// Our pid as last cached.
pub fn pid() -> i32 {
    PID.load(Ordering::Relaxed)
}

pub fn tid() -> i32 {
    TID.with(|t| {
        if t.get() == 0 {
            t.set(crate::platform::real::gettid());
        }
        t.get()
    })
}

pub fn thread_name() -> [u8; 16] {
    let generation = NAME_GENERATION.load(Ordering::Relaxed);
    let (cached, read_at) = NAME.with(Cell::get);
    if read_at == generation {
        return cached;
    }
    let name = read_thread_name();
    NAME.with(|n| n.set((name, generation)));
    name
}

fn read_thread_name() -> [u8; 16] {
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes into the buffer we pass.
    unsafe {
        libc::prctl(
            libc::PR_GET_NAME,
            name.as_mut_ptr() as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    name
}

/// The effective uid (`geteuid`, re-read at every call: a worker may drop privileges).
#[inline]
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// True when `pid` certainly names no process (`kill(pid, 0)` fails with ESRCH). Keeps the
/// caller's errno.
pub fn is_gone(pid: i32) -> bool {
    let saved = crate::platform::errno::errno();
    // SAFETY: signal 0 only checks that the process exists; nothing is delivered.
    let gone = unsafe { libc::kill(pid, 0) } != 0 && crate::platform::errno::errno() == libc::ESRCH;
    crate::platform::errno::set_errno(saved);
    gone
}

/// Registers `handler` with `atexit(3)` (run by `exit()` and a return from `main`).
pub fn at_exit(handler: extern "C" fn()) {
    // SAFETY: `handler` is a valid function taking no arguments, for the process's lifetime.
    unsafe { libc::atexit(handler) };
}

/// Registers `handler` to run in the child of every `fork()` (`pthread_atfork`, no prepare or
/// parent handler).
pub fn at_fork_in_child(handler: extern "C" fn()) {
    // SAFETY: `handler` is a valid function taking no arguments; null prepare and parent
    // handlers are allowed.
    unsafe { libc::pthread_atfork(None, None, Some(handler as unsafe extern "C" fn())) };
}

/// Flushes every stdio output stream, as `exit()` does (`fflush(NULL)`). Not
/// async-signal-safe: from an atexit handler, not a signal handler.
pub fn flush_stdio() {
    // SAFETY: fflush(NULL) flushes all open output streams.
    unsafe { libc::fflush(std::ptr::null_mut()) };
}

/// Every signal blocked on the calling thread until dropped (then its mask is as before):
/// threads fdguard creates while this is held are born with every signal blocked, so none of
/// the host's signals is ever delivered to (and its handler run on) a thread of fdguard's.
/// Signals that arrive meanwhile stay pending and are delivered when it is dropped.
pub struct SignalsBlocked {
    old: libc::sigset_t,
}

impl SignalsBlocked {
    pub fn new() -> SignalsBlocked {
        // SAFETY: sigset_t is plain data, filled by sigfillset; pthread_sigmask reads `all`
        // and writes the old mask into `old`, both locals.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            SignalsBlocked { old }
        }
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `new` from a valid sigset_t.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}
