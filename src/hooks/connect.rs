//! The connect(2) hook: every attempt records the address it was given and how it ended.
//!
//! The address is read only where the kernel itself read it: Linux looks the fd up (EBADF),
//! then copies `len` bytes from the caller (EFAULT when they are not readable; a length above
//! `sizeof(struct sockaddr_storage)` is refused with EINVAL before any read), and only then
//! connects (net/socket.c, `__sys_connect`, `move_addr_to_kernel`). So after a success or
//! EINPROGRESS the caller's bytes are known to be readable and are copied directly (the hot
//! path: no system call). After any other failure — including a seccomp filter's errno, which
//! comes before the kernel reads anything — they are read with `process_vm_readv` on our own
//! process, which returns EFAULT instead of faulting. A bad pointer can never crash the host.
#![allow(unsafe_code)] // an exported libc symbol (`no_mangle`) reading the caller's address.

use super::events;
use crate::platform::errno::{ErrnoKeeper, errno};
use crate::platform::real;
use crate::track::sockaddr::PeerAddr;
use libc::{c_int, sockaddr, socklen_t};

/// Interposed `connect(2)`. Every attempt's address is recorded (see `events::connected`).
///
/// # Safety
/// Same contract as `connect(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: forwarded unchanged.
    let rc = unsafe { real::connect(fd, addr, len) };
    let result_errno = if rc == 0 { 0 } else { errno() };
    let _errno = ErrnoKeeper::save();
    // SAFETY: see `attempted_peer`.
    let peer = unsafe { attempted_peer(addr, len, result_errno) };
    events::connected(fd, peer, result_errno);
    rc
}

/// The address connect() was given, read only as described at the top of this file.
///
/// # Safety
/// `result_errno` is what connect(fd, addr, len) just returned (0 for success).
unsafe fn attempted_peer(
    addr: *const sockaddr,
    len: socklen_t,
    result_errno: c_int,
) -> Option<PeerAddr> {
    let n = len as usize;
    if addr.is_null() || n < 2 || n > std::mem::size_of::<libc::sockaddr_storage>() {
        return None;
    }
    match result_errno {
        // The call went past the copy: the kernel read `len` bytes at `addr`.
        0 | libc::EINPROGRESS => {
            // SAFETY: readable, as the kernel just proved; at most PeerAddr::CAPACITY are read.
            let bytes =
                unsafe { std::slice::from_raw_parts(addr.cast::<u8>(), n.min(PeerAddr::CAPACITY)) };
            Some(PeerAddr::from_bytes(bytes))
        }
        // Polling a connect in progress, or no socket: the address does not matter.
        libc::EALREADY | libc::EISCONN | libc::EBADF | libc::ENOTSOCK | libc::EFAULT => None,
        _ => {
            let mut bytes = [0u8; PeerAddr::CAPACITY];
            let n = n.min(PeerAddr::CAPACITY);
            real::read_own_memory(addr.cast(), &mut bytes[..n])
                .then(|| PeerAddr::from_bytes(&bytes[..n]))
        }
    }
}
