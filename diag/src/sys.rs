//! Every system call this crate makes, and the only module allowed `unsafe`. Each wrapper takes
//! and returns owned or borrowed fds (`OwnedFd`, `BorrowedFd`) and byte slices, so the rest of
//! the crate is safe code and no fd can leak: an `OwnedFd` is closed when dropped, on every
//! path, including errors and panics.
//!
//! WARNING: nothing here may change the state of a socket that belongs to another process (we
//! read sockets copied with `pidfd_getfd`). In particular never read `SO_ERROR`: reading it
//! CLEARS the pending error, so the program's next `recv()` would return 0 instead of
//! `ECONNRESET`. Only side-effect-free reads (`getsockopt` of plain values, `getsockname`,
//! `SIOCINQ`/`SIOCOUTQ`) are allowed.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

/// `socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol)`.
pub(crate) fn netlink_socket(protocol: i32) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            protocol,
        )
    };
    if fd < 0 {
        return Err(last_error());
    }
    // SAFETY: `fd` was just returned by socket(2), is open, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets a receive timeout, so a dump that never ends cannot hang the caller.
pub(crate) fn set_receive_timeout(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<()> {
    let value = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: `value` is a live timeval and the length passed is its exact size; `fd` is open
    // for the duration of the borrow.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const value).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc < 0 { Err(last_error()) } else { Ok(()) }
}

/// `send(fd, bytes, 0)`; netlink messages go out whole or not at all.
pub(crate) fn send(fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `bytes` is a valid slice for its whole length; `fd` is open.
        let n = unsafe { libc::send(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), 0) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let error = last_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// `recv(fd, buf, MSG_TRUNC)`: returns the datagram's FULL length, which is larger than
/// `buf.len()` when it was truncated (the caller checks).
pub(crate) fn recv_datagram(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is a valid, writable slice for its whole length; the kernel writes at
        // most `buf.len()` bytes even with MSG_TRUNC (which only changes the return value).
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let error = last_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// `pidfd_open(pid, 0)` (Linux 5.3). The fd is close-on-exec.
pub(crate) fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, no pointers; the result is checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(last_error());
    }
    // SAFETY: the kernel returned a new, open fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `pidfd_getfd(pidfd, target_fd, 0)` (Linux 5.6): a copy, in THIS process, of the target's
/// fd. Needs ptrace-attach permission over the target. The copy is close-on-exec and is closed
/// when the returned `OwnedFd` drops.
pub(crate) fn pidfd_getfd(pidfd: BorrowedFd<'_>, target_fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: no pointers; `pidfd` is open for the borrow; the result is checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target_fd, 0) };
    if fd < 0 {
        return Err(last_error());
    }
    // SAFETY: the kernel installed a new fd in our table that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// True when the process behind `pidfd` has exited (a pidfd polls readable then; a zombie
/// counts as exited).
pub(crate) fn pidfd_exited(pidfd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut entry = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: `entry` is one valid pollfd and the count passed is 1; timeout 0 never blocks.
        let n = unsafe { libc::poll(&raw mut entry, 1, 0) };
        if n >= 0 {
            return Ok(n > 0 && entry.revents & (libc::POLLIN | libc::POLLHUP) != 0);
        }
        let error = last_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// `getsockopt(fd, level, name)` into `buf`; returns the length the kernel wrote.
pub(crate) fn getsockopt(
    fd: BorrowedFd<'_>,
    level: i32,
    name: i32,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` is writable for `len` bytes and `len` is a live socklen_t the kernel
    // updates; `fd` is open for the borrow. Callers never pass SO_ERROR (see the module note).
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            buf.as_mut_ptr().cast(),
            &raw mut len,
        )
    };
    if rc < 0 {
        Err(last_error())
    } else {
        Ok((len as usize).min(buf.len()))
    }
}

/// `getsockname(fd)` as raw sockaddr bytes.
pub(crate) fn getsockname(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    let mut storage = [0u8; size_of::<libc::sockaddr_storage>()];
    let mut len = storage.len() as libc::socklen_t;
    // SAFETY: `storage` is writable for `len` bytes (the size of sockaddr_storage, the largest
    // address); `len` is a live socklen_t the kernel updates; `fd` is open.
    let rc =
        unsafe { libc::getsockname(fd.as_raw_fd(), storage.as_mut_ptr().cast(), &raw mut len) };
    if rc < 0 {
        return Err(last_error());
    }
    Ok(storage[..(len as usize).min(storage.len())].to_vec())
}

/// `getpeername(fd)` as raw sockaddr bytes (ENOTCONN for a TCP socket in CLOSE or SYN_SENT:
/// use `SO_PEERNAME` with the exact address size for those).
pub(crate) fn getpeername(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    let mut storage = [0u8; size_of::<libc::sockaddr_storage>()];
    let mut len = storage.len() as libc::socklen_t;
    // SAFETY: as in getsockname: `storage` is writable for `len` bytes, `len` is live, `fd` is
    // open.
    let rc =
        unsafe { libc::getpeername(fd.as_raw_fd(), storage.as_mut_ptr().cast(), &raw mut len) };
    if rc < 0 {
        return Err(last_error());
    }
    Ok(storage[..(len as usize).min(storage.len())].to_vec())
}

/// `ioctl(fd, request, &int)` for the read-only queue requests (`SIOCINQ`, `SIOCOUTQ`).
pub(crate) fn ioctl_int(fd: BorrowedFd<'_>, request: libc::Ioctl) -> io::Result<i32> {
    let mut value: libc::c_int = 0;
    // SAFETY: both requests write exactly one int to the pointer given, which points at a
    // live c_int; `fd` is open.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request, &raw mut value) };
    if rc < 0 { Err(last_error()) } else { Ok(value) }
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of /proc/PID/stat times.
pub(crate) fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

/// Our effective uid.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
