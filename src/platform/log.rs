//! fdguard's own messages: one line on stderr, never on stdout.
//!
//! WARNING: the host may have closed fd 2 and reused the number for a socket or a file (daemons
//! do). Writing there would corrupt the host's data, so we only write while fd 2 is still the
//! file it was when fdguard loaded (same device and inode). Writes are raw syscalls: usable from
//! any context, including after a fault.
#![allow(unsafe_code)] // raw fstat and poll on stderr.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// (st_dev, st_ino) of fd 2 at load; 0/0 when fd 2 was not open.
static STDERR_DEV: AtomicU64 = AtomicU64::new(0);
static STDERR_INO: AtomicU64 = AtomicU64::new(0);

fn identity(fd: i32) -> Option<(u64, u64)> {
    // SAFETY: zeroed `stat` is a valid out-buffer for fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: raw fstat on an fd number with a valid out-pointer.
    let rc = unsafe { libc::syscall(libc::SYS_fstat, fd, &mut st as *mut libc::stat) };
    (rc == 0).then_some((st.st_dev, st.st_ino))
}

/// Remembers what fd 2 is now (called from the constructor).
pub fn remember_stderr() {
    if let Some((dev, ino)) = identity(2) {
        STDERR_DEV.store(dev, Relaxed);
        STDERR_INO.store(ino, Relaxed);
    }
}

/// True when fd 2 is still the stderr fdguard saw at load.
pub fn stderr_is_ours() -> bool {
    let (dev, ino) = (STDERR_DEV.load(Relaxed), STDERR_INO.load(Relaxed));
    if dev == 0 && ino == 0 {
        return false;
    }
    identity(2) == Some((dev, ino))
}

/// Writes `bytes` to stderr if it is still ours. Returns false when it was not written.
pub fn write_stderr(bytes: &[u8]) -> bool {
    if !stderr_is_ours() {
        return false;
    }
    let mut rest = bytes;
    let mut rounds = 0;
    while !rest.is_empty() && rounds < 10_000 {
        let n = crate::platform::real::write_raw(2, rest);
        if n > 0 {
            rest = &rest[n as usize..];
            continue;
        }
        rounds += 1;
        match crate::platform::errno::errno() {
            libc::EINTR => {}
            // A non-blocking stderr (shared with the host) that is full: wait a little for it
            // (at most 1 s in all); reports use report::write, which waits longer.
            libc::EAGAIN if rounds <= 10 => {
                let mut pfd = libc::pollfd {
                    fd: 2,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut pfd, 1, 100) };
            }
            _ => return false,
        }
    }
    rest.is_empty()
}

/// Writes one line made of `parts` to stderr without allocating (parts longer than the buffer
/// are cut).
pub fn line(parts: &[&str]) {
    let mut buf = [0u8; 512];
    let mut len = 0;
    for part in parts {
        let take = part.len().min(buf.len() - 1 - len);
        buf[len..len + take].copy_from_slice(&part.as_bytes()[..take]);
        len += take;
    }
    buf[len] = b'\n';
    write_stderr(&buf[..=len]);
}
