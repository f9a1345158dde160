//! The next-in-chain libc functions, resolved once, with raw-syscall fallbacks.
//!
//! WARNING: inside this crate, never call `libc::close`, `libc::socket`, … directly. In a
//! preloaded library those names bind to *our* hooks (symbol preemption), so an internal call
//! would be tracked as the host's. Call `real::close` & co. instead (or hold a [`Guard`] while
//! using std types that own fds, so the hooks pass straight through).
//!
//! Every function here works before [`resolve`] has run (a library constructor that runs
//! before ours may already create sockets) and when `dlsym` fails: it then issues the raw
//! system call, which has the same return value and errno contract.
//!
//! [`Guard`]: crate::platform::guard::Guard
#![allow(unsafe_code)] // dlsym, calls through the resolved pointers, raw syscalls.

use libc::{c_int, c_long, c_uint, c_ulong, c_void, sockaddr, socklen_t};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

// Compile-time pins of our prototypes against the `libc` crate's (heaptrack's `decltype` idea):
// if libc's declaration ever differs, these consts stop compiling.
const _: unsafe extern "C" fn(c_int, c_int, c_int) -> c_int = libc::socket;
const _: unsafe extern "C" fn(c_int, c_int, c_int, *mut c_int) -> c_int = libc::socketpair;
const _: unsafe extern "C" fn(c_int, *const sockaddr, socklen_t) -> c_int = libc::connect;
const _: unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int = libc::accept;
const _: unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t, c_int) -> c_int = libc::accept4;
const _: unsafe extern "C" fn(c_int, c_int) -> c_int = libc::listen;
const _: unsafe extern "C" fn(c_int, c_int) -> c_int = libc::shutdown;
const _: unsafe extern "C" fn(c_int) -> c_int = libc::close;
const _: unsafe extern "C" fn(c_int) -> c_int = libc::dup;
const _: unsafe extern "C" fn(c_int, c_int) -> c_int = libc::dup2;
const _: unsafe extern "C" fn(c_int, c_int, c_int) -> c_int = libc::dup3;
const _: unsafe extern "C" fn(c_int, c_int, ...) -> c_int = libc::fcntl;
const _: unsafe extern "C" fn(c_int) -> ! = libc::_exit;
const _: unsafe extern "C" fn(c_int) -> c_int = libc::unshare;
const _: unsafe extern "C" fn(c_int, c_int) -> c_int = libc::setns;
const _: unsafe extern "C" fn(c_int, *mut libc::msghdr, c_int) -> libc::ssize_t = libc::recvmsg;
const _: unsafe extern "C" fn(
    c_int,
    *mut libc::mmsghdr,
    c_uint,
    c_int,
    *mut libc::timespec,
) -> c_int = libc::recvmmsg;

type SocketFn = unsafe extern "C" fn(c_int, c_int, c_int) -> c_int;
type SocketpairFn = unsafe extern "C" fn(c_int, c_int, c_int, *mut c_int) -> c_int;
type ConnectFn = unsafe extern "C" fn(c_int, *const sockaddr, socklen_t) -> c_int;
type AcceptFn = unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int;
type Accept4Fn = unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t, c_int) -> c_int;
type IntIntFn = unsafe extern "C" fn(c_int, c_int) -> c_int;
type IntFn = unsafe extern "C" fn(c_int) -> c_int;
type Dup3Fn = unsafe extern "C" fn(c_int, c_int, c_int) -> c_int;
type FcntlFn = unsafe extern "C" fn(c_int, c_int, ...) -> c_int;
type CloseRangeFn = unsafe extern "C" fn(c_uint, c_uint, c_int) -> c_int;
type ClosefromFn = unsafe extern "C" fn(c_int);
type ExitFn = unsafe extern "C" fn(c_int) -> !;
type RecvmsgFn = unsafe extern "C" fn(c_int, *mut libc::msghdr, c_int) -> libc::ssize_t;
type RecvmmsgFn =
    unsafe extern "C" fn(c_int, *mut libc::mmsghdr, c_uint, c_int, *mut libc::timespec) -> c_int;

/// One resolved function pointer (0 = not resolved: use the raw syscall).
struct Real {
    name: &'static [u8],
    addr: AtomicUsize,
}

impl Real {
    const fn new(name: &'static [u8]) -> Real {
        Real {
            name,
            addr: AtomicUsize::new(0),
        }
    }
}

macro_rules! reals {
    ($($var:ident = $sym:literal;)*) => {
        $(static $var: Real = Real::new(concat!($sym, "\0").as_bytes());)*
        static ALL: &[&Real] = &[$(&$var),*];
    };
}

reals! {
    SOCKET = "socket";
    SOCKETPAIR = "socketpair";
    CONNECT = "connect";
    ACCEPT = "accept";
    ACCEPT4 = "accept4";
    LISTEN = "listen";
    SHUTDOWN = "shutdown";
    CLOSE = "close";
    CLOSE_RANGE = "close_range";
    CLOSEFROM = "closefrom";
    DUP = "dup";
    DUP2 = "dup2";
    DUP3 = "dup3";
    FCNTL = "fcntl";
    FCNTL64 = "fcntl64";
    EXIT = "_exit";
    EXIT2 = "_Exit";
    SETNAME = "pthread_setname_np";
    UNSHARE = "unshare";
    SETNS = "setns";
    RECVMSG = "recvmsg";
    RECVMMSG = "recvmmsg";
}

/// Resolves every next-in-chain function with `dlsym(RTLD_NEXT)`. Called once from the
/// constructor. Returns the names that could not be resolved (they use raw syscalls).
pub fn resolve(own_module: (usize, usize)) -> Vec<&'static str> {
    let mut missing = Vec::new();
    for real in ALL {
        // SAFETY: `real.name` is a NUL-terminated literal; dlsym has no other precondition.
        let addr = unsafe { libc::dlsym(libc::RTLD_NEXT, real.name.as_ptr().cast()) } as usize;
        // hooky's check: a pointer into our own module would make the hook call itself.
        if addr != 0 && !(own_module.0 <= addr && addr < own_module.1) {
            real.addr.store(addr, Relaxed);
        } else {
            let name = std::str::from_utf8(&real.name[..real.name.len() - 1]).unwrap_or("?");
            missing.push(name);
        }
    }
    missing
}

fn raw_syscall_result(ret: c_long) -> c_int {
    ret as c_int
}

macro_rules! load {
    ($real:ident, $ty:ty) => {{
        let addr = $real.addr.load(Relaxed);
        if addr == 0 {
            None
        } else {
            // SAFETY: `addr` came from dlsym for this symbol, whose C prototype is `$ty`
            // (pinned against the libc crate above); function pointers are address-sized.
            Some(unsafe { std::mem::transmute::<usize, $ty>(addr) })
        }
    }};
}

/// # Safety
/// Same contract as `socket(2)`.
pub unsafe fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    match load!(SOCKET, SocketFn) {
        // SAFETY: forwarded with the caller's arguments.
        Some(f) => unsafe { f(domain, ty, protocol) },
        None => {
            // SAFETY: raw syscall with the same arguments and errno contract.
            raw_syscall_result(unsafe { libc::syscall(libc::SYS_socket, domain, ty, protocol) })
        }
    }
}

/// # Safety
/// Same contract as `socketpair(2)`.
pub unsafe fn socketpair(domain: c_int, ty: c_int, protocol: c_int, sv: *mut c_int) -> c_int {
    match load!(SOCKETPAIR, SocketpairFn) {
        // SAFETY: forwarded with the caller's arguments.
        Some(f) => unsafe { f(domain, ty, protocol, sv) },
        // SAFETY: raw syscall with the same arguments and errno contract.
        None => raw_syscall_result(unsafe {
            libc::syscall(libc::SYS_socketpair, domain, ty, protocol, sv)
        }),
    }
}

/// # Safety
/// Same contract as `connect(2)`.
pub unsafe fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    match load!(CONNECT, ConnectFn) {
        // SAFETY: forwarded with the caller's arguments.
        Some(f) => unsafe { f(fd, addr, len) },
        // SAFETY: raw syscall with the same arguments and errno contract.
        None => raw_syscall_result(unsafe { libc::syscall(libc::SYS_connect, fd, addr, len) }),
    }
}

/// # Safety
/// Same contract as `accept(2)`.
pub unsafe fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    match load!(ACCEPT, AcceptFn) {
        // SAFETY: forwarded with the caller's arguments.
        Some(f) => unsafe { f(fd, addr, len) },
        // SAFETY: raw syscall with the same arguments and errno contract.
        None => raw_syscall_result(unsafe { libc::syscall(libc::SYS_accept, fd, addr, len) }),
    }
}

/// # Safety
/// Same contract as `accept4(2)`.
pub unsafe fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int {
    match load!(ACCEPT4, Accept4Fn) {
        // SAFETY: forwarded with the caller's arguments.
        Some(f) => unsafe { f(fd, addr, len, flags) },
        None => {
            // SAFETY: raw syscall with the same arguments and errno contract.
            raw_syscall_result(unsafe { libc::syscall(libc::SYS_accept4, fd, addr, len, flags) })
        }
    }
}

/// # Safety
/// Same contract as `listen(2)`.
pub unsafe fn listen(fd: c_int, backlog: c_int) -> c_int {
    match load!(LISTEN, IntIntFn) {
        // SAFETY: forwarded with the caller's arguments.
        Some(f) => unsafe { f(fd, backlog) },
        // SAFETY: raw syscall with the same arguments and errno contract.
        None => raw_syscall_result(unsafe { libc::syscall(libc::SYS_listen, fd, backlog) }),
    }
}

/// # Safety
/// Same contract as `shutdown(2)`.
pub unsafe fn shutdown(fd: c_int, how: c_int) -> c_int {
    match load!(SHUTDOWN, IntIntFn) {
        // SAFETY: forwarded with the caller's arguments.
        Some(f) => unsafe { f(fd, how) },
        // SAFETY: raw syscall with the same arguments and errno contract.
        None => raw_syscall_result(unsafe { libc::syscall(libc::SYS_shutdown, fd, how) }),
    }
}

/// # Safety
/// Same contract as `recvmsg(2)`.
pub unsafe fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> libc::ssize_t {
    match load!(RECVMSG, RecvmsgFn) {
        // SAFETY: forwarded with the caller's arguments.
        Some(f) => unsafe { f(fd, msg, flags) },
        // SAFETY: raw syscall with the same arguments and errno contract.
        None => unsafe { libc::syscall(libc::SYS_recvmsg, fd, msg, flags) as libc::ssize_t },
    }
}

/// # Safety
/// Same contract as `recvmmsg(2)`.
pub unsafe fn recvmmsg(
    fd: c_int,
    msgs: *mut libc::mmsghdr,
    vlen: c_uint,
    flags: c_int,
    timeout: *mut libc::timespec,
) -> c_int {
    match load!(RECVMMSG, RecvmmsgFn) {
        // SAFETY: forwarded with the caller's arguments.
        Some(f) => unsafe { f(fd, msgs, vlen, flags, timeout) },
        None => raw_syscall_result(
            // SAFETY: raw syscall with the same arguments and errno contract.
            unsafe { libc::syscall(libc::SYS_recvmmsg, fd, msgs, vlen, flags, timeout) },
        ),
    }
}

/// Closes `fd` (async-signal-safe: a pointer load and the call).
pub fn close(fd: c_int) -> c_int {
    match load!(CLOSE, IntFn) {
        // SAFETY: close has no memory-safety preconditions.
        Some(f) => unsafe { f(fd) },
        // SAFETY: raw syscall with the same arguments and errno contract.
        None => raw_syscall_result(unsafe { libc::syscall(libc::SYS_close, fd) }),
    }
}

/// `close_range(2)`.
pub fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    match load!(CLOSE_RANGE, CloseRangeFn) {
        // SAFETY: close_range has no memory-safety preconditions.
        Some(f) => unsafe { f(first, last, flags) },
        None => {
            // SAFETY: raw syscall with the same arguments and errno contract.
            raw_syscall_result(unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) })
        }
    }
}

/// `closefrom(3)`: glibc's version never fails (it aborts if it cannot close).
pub fn closefrom(lowfd: c_int) {
    match load!(CLOSEFROM, ClosefromFn) {
        // SAFETY: closefrom has no memory-safety preconditions.
        Some(f) => unsafe { f(lowfd) },
        None => {
            if close_range(lowfd.max(0) as c_uint, c_uint::MAX, 0) != 0 {
                // Kernels before 5.9: close what the table can name; bounded by the limit.
                let mut lim = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                // SAFETY: `lim` is a valid out-pointer.
                unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
                let top = lim.rlim_cur.min(1 << 20) as c_int;
                for fd in lowfd.max(0)..top {
                    close(fd);
                }
            }
        }
    }
}

/// `dup(2)`.
pub fn dup(fd: c_int) -> c_int {
    match load!(DUP, IntFn) {
        // SAFETY: dup has no memory-safety preconditions.
        Some(f) => unsafe { f(fd) },
        // SAFETY: raw syscall with the same arguments and errno contract.
        None => raw_syscall_result(unsafe { libc::syscall(libc::SYS_dup, fd) }),
    }
}

/// `dup2(2)`.
pub fn dup2(old: c_int, new: c_int) -> c_int {
    match load!(DUP2, IntIntFn) {
        // SAFETY: dup2 has no memory-safety preconditions.
        Some(f) => unsafe { f(old, new) },
        // SAFETY: raw syscall with the same arguments and errno contract.
        None => raw_syscall_result(unsafe { libc::syscall(libc::SYS_dup2, old, new) }),
    }
}

/// `dup3(2)`.
pub fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    match load!(DUP3, Dup3Fn) {
        // SAFETY: dup3 has no memory-safety preconditions.
        Some(f) => unsafe { f(old, new, flags) },
        // SAFETY: raw syscall with the same arguments and errno contract.
        None => raw_syscall_result(unsafe { libc::syscall(libc::SYS_dup3, old, new, flags) }),
    }
}

/// `fcntl(2)` with its third argument passed through untouched (an int or a pointer,
/// depending on `cmd`). `use64` selects glibc's `fcntl64` entry point.
///
/// # Safety
/// Same contract as `fcntl(2)` for `cmd`: when `cmd` takes a pointer, `arg` must be valid.
pub unsafe fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong, use64: bool) -> c_int {
    let f = if use64 { load!(FCNTL64, FcntlFn) } else { None }.or(load!(FCNTL, FcntlFn));
    match f {
        // SAFETY: forwarded with the caller's arguments; called through a variadic pointer so
        // the ABI matches glibc's variadic definition.
        Some(f) => unsafe { f(fd, cmd, arg) },
        // SAFETY: raw syscall with the same arguments and errno contract.
        None => raw_syscall_result(unsafe { libc::syscall(libc::SYS_fcntl, fd, cmd, arg) }),
    }
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, lowest)`: a close-on-exec duplicate of `fd` at the lowest free
/// number not below `lowest`. Returns the new fd or -1.
pub fn dup_cloexec_at_least(fd: c_int, lowest: c_int) -> c_int {
    // SAFETY: F_DUPFD_CLOEXEC takes an int argument.
    unsafe { fcntl(fd, libc::F_DUPFD_CLOEXEC, lowest as c_ulong, false) }
}

/// `fcntl(fd, F_SETFL, flags)`: sets the file status flags (O_NONBLOCK, O_APPEND, …).
/// Returns 0 or -1.
pub fn set_status_flags(fd: c_int, flags: c_int) -> c_int {
    // SAFETY: F_SETFL takes an int argument.
    unsafe { fcntl(fd, libc::F_SETFL, flags as c_ulong, false) }
}

/// `_exit(2)` (`which_exit` false) or `_Exit(3)` (true).
pub fn exit_now(status: c_int, underscore_capital: bool) -> ! {
    let f = if underscore_capital {
        load!(EXIT2, ExitFn)
    } else {
        None
    }
    .or(load!(EXIT, ExitFn));
    match f {
        // SAFETY: _exit has no memory-safety preconditions.
        Some(f) => unsafe { f(status) },
        None => loop {
            // SAFETY: exit_group terminates the process; looping keeps the `!` type honest.
            unsafe { libc::syscall(libc::SYS_exit_group, status) };
        },
    }
}

/// `unshare(2)`.
pub fn unshare(flags: c_int) -> c_int {
    match load!(UNSHARE, IntFn) {
        // SAFETY: unshare has no memory-safety preconditions.
        Some(f) => unsafe { f(flags) },
        // SAFETY: raw syscall with the same arguments and errno contract.
        None => raw_syscall_result(unsafe { libc::syscall(libc::SYS_unshare, flags) }),
    }
}

/// `setns(2)`.
pub fn setns(fd: c_int, nstype: c_int) -> c_int {
    match load!(SETNS, IntIntFn) {
        // SAFETY: setns has no memory-safety preconditions.
        Some(f) => unsafe { f(fd, nstype) },
        // SAFETY: raw syscall with the same arguments and errno contract.
        None => raw_syscall_result(unsafe { libc::syscall(libc::SYS_setns, fd, nstype) }),
    }
}

/// `pthread_setname_np(3)`. Before resolution only the calling thread can be renamed (with
/// prctl); another thread then gets ENOSYS.
pub fn pthread_setname_np(thread: libc::pthread_t, name: *const libc::c_char) -> c_int {
    type SetnameFn = unsafe extern "C" fn(libc::pthread_t, *const libc::c_char) -> c_int;
    match load!(SETNAME, SetnameFn) {
        // SAFETY: forwarded unchanged; the caller guarantees `name` is a C string.
        Some(f) => unsafe { f(thread, name) },
        // SAFETY: pthread_self has no preconditions.
        None if thread == unsafe { libc::pthread_self() } => {
            // SAFETY: PR_SET_NAME reads a C string (at most 16 bytes) from `name`.
            let rc = unsafe { libc::prctl(libc::PR_SET_NAME, name as libc::c_ulong, 0, 0, 0) };
            if rc == 0 {
                0
            } else {
                crate::platform::errno::errno()
            }
        }
        None => libc::ENOSYS,
    }
}

/// Raw `write(2)` that never goes through anything we or anyone else interposes.
pub fn write_raw(fd: c_int, buf: &[u8]) -> isize {
    // SAFETY: `buf` is a valid slice for `buf.len()` bytes.
    unsafe {
        libc::syscall(
            libc::SYS_write,
            fd,
            buf.as_ptr() as *const c_void,
            buf.len(),
        ) as isize
    }
}

/// Copies `out.len()` bytes from `address` in this process into `out` with
/// `process_vm_readv`: the kernel checks the source, so an unmapped or unreadable address is a
/// `false` here, never a fault. For caller memory the kernel has not read itself (a failed
/// connect's address). One system call; no fd.
pub fn read_own_memory(address: *const u8, out: &mut [u8]) -> bool {
    if out.is_empty() {
        return true;
    }
    let local = libc::iovec {
        iov_base: out.as_mut_ptr().cast(),
        iov_len: out.len(),
    };
    let remote = libc::iovec {
        iov_base: address as *mut c_void,
        iov_len: out.len(),
    };
    // SAFETY: `local` describes our own writable buffer; the kernel validates `remote` and
    // reports EFAULT rather than faulting.
    let n = unsafe { libc::process_vm_readv(getpid_raw(), &local, 1, &remote, 1, 0) };
    n == out.len() as isize
}

/// Current thread id (raw syscall; glibc's `gettid` needs 2.30, fine, but this is as cheap).
pub fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// Current process id, uncached (a vfork child and its parent must see different answers).
pub fn getpid_raw() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::syscall(libc::SYS_getpid) as i32 }
}
