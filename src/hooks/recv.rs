//! recvmsg(2), recvmmsg(2): sockets received from another process (`SCM_RIGHTS`).
//!
//! Only what the kernel wrote is read, and only after it succeeded: the `msghdr` (the kernel
//! read it, and wrote `msg_controllen` back into it) and, inside the control buffer, the first
//! `msg_controllen` bytes — exactly what the kernel put there, never the caller's capacity.
//! A call without a control buffer (nearly every recvmsg of a data path) costs one comparison.
#![allow(unsafe_code)] // exported libc symbols (`no_mangle`) reading the caller's msghdr.

use super::events;
use crate::platform::errno::ErrnoKeeper;
use crate::platform::real;
use libc::{c_int, c_uint};

/// Most fds collected from one message (the kernel's SCM_MAX_FD is 253 per cmsg).
const MAX_FDS: usize = 256;
/// Most control messages walked in one buffer.
const MAX_CMSGS: usize = 64;

/// The aligned size of a `cmsghdr` (CMSG_LEN(0)).
const HEADER: usize = (std::mem::size_of::<libc::cmsghdr>() + std::mem::size_of::<usize>() - 1)
    & !(std::mem::size_of::<usize>() - 1);

/// The fds carried by SCM_RIGHTS messages in a control buffer of `len` bytes the kernel wrote.
///
/// # Safety
/// `control` must be readable for `len` bytes (the kernel just wrote them).
unsafe fn rights(control: *const u8, len: usize, out: &mut [c_int; MAX_FDS]) -> usize {
    let mut n = 0;
    let mut offset = 0usize;
    for _ in 0..MAX_CMSGS {
        if offset + HEADER > len {
            break;
        }
        // SAFETY: `offset + HEADER <= len`, inside the buffer; read_unaligned accepts any
        // alignment (a caller's buffer need not be aligned).
        let header: libc::cmsghdr =
            unsafe { std::ptr::read_unaligned(control.add(offset).cast::<libc::cmsghdr>()) };
        let cmsg_len = header.cmsg_len;
        if cmsg_len < HEADER || offset + cmsg_len > len {
            break;
        }
        if header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == libc::SCM_RIGHTS {
            let count = (cmsg_len - HEADER) / std::mem::size_of::<c_int>();
            for i in 0..count {
                if n == MAX_FDS {
                    break;
                }
                // SAFETY: within [offset + HEADER, offset + cmsg_len), inside the buffer.
                out[n] = unsafe {
                    std::ptr::read_unaligned(
                        control
                            .add(offset + HEADER + i * std::mem::size_of::<c_int>())
                            .cast::<c_int>(),
                    )
                };
                n += 1;
            }
        }
        offset +=
            (cmsg_len + std::mem::size_of::<usize>() - 1) & !(std::mem::size_of::<usize>() - 1);
    }
    n
}

/// Hands the fds received through `msg` (if any) to the table.
///
/// # Safety
/// `msg` is the `msghdr` of a recvmsg/recvmmsg that just succeeded.
unsafe fn after_receive(msg: *const libc::msghdr) {
    if msg.is_null() {
        return;
    }
    // SAFETY: the kernel read this struct and wrote msg_controllen back: it is valid memory.
    let (control, len) = unsafe { ((*msg).msg_control, (*msg).msg_controllen) };
    if control.is_null() || len < HEADER {
        return;
    }
    let mut fds = [0; MAX_FDS];
    // SAFETY: the kernel wrote `len` bytes of control messages at `control`.
    let n = unsafe { rights(control.cast::<u8>(), len, &mut fds) };
    if n > 0 {
        events::received(&fds[..n]);
    }
}

/// Interposed `recvmsg(2)`.
///
/// # Safety
/// Same contract as `recvmsg(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> libc::ssize_t {
    // SAFETY: forwarded unchanged.
    let rc = unsafe { real::recvmsg(fd, msg, flags) };
    if rc >= 0 {
        let _errno = ErrnoKeeper::save();
        // SAFETY: the call succeeded with this msghdr.
        unsafe { after_receive(msg) };
    }
    rc
}

/// Interposed `recvmmsg(2)`.
///
/// # Safety
/// Same contract as `recvmmsg(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn recvmmsg(
    fd: c_int,
    msgs: *mut libc::mmsghdr,
    vlen: c_uint,
    flags: c_int,
    timeout: *mut libc::timespec,
) -> c_int {
    // SAFETY: forwarded unchanged.
    let rc = unsafe { real::recvmmsg(fd, msgs, vlen, flags, timeout) };
    if rc > 0 && !msgs.is_null() {
        let _errno = ErrnoKeeper::save();
        for i in 0..(rc as usize).min(vlen as usize) {
            // SAFETY: the kernel filled the first `rc` entries of `msgs`.
            unsafe { after_receive(&(*msgs.add(i)).msg_hdr) };
        }
    }
    rc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_kernel_wrote_and_nothing_more() {
        // A real SCM_RIGHTS round trip through a socketpair.
        let mut pair = [0; 2];
        // SAFETY: plain system calls on buffers of ours.
        unsafe {
            assert_eq!(
                libc::socketpair(libc::AF_UNIX, libc::SOCK_DGRAM, 0, pair.as_mut_ptr()),
                0
            );
        }
        let sent = [pair[0], pair[0]];
        let mut space = [0u64; 16];
        let mut byte = [7u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        // SAFETY: zeroed msghdr is valid; we fill the pointers with our own buffers.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = space.as_mut_ptr().cast();
        // SAFETY: CMSG macros on our own buffer.
        unsafe {
            msg.msg_controllen = libc::CMSG_SPACE(8) as usize;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(8) as usize;
            std::ptr::copy_nonoverlapping(sent.as_ptr(), libc::CMSG_DATA(c).cast::<c_int>(), 2);
            assert_eq!(libc::sendmsg(pair[0], &msg, 0), 1);
        }
        let mut back = [0u64; 16];
        // SAFETY: as above.
        let mut rmsg: libc::msghdr = unsafe { std::mem::zeroed() };
        rmsg.msg_iov = &mut iov;
        rmsg.msg_iovlen = 1;
        rmsg.msg_control = back.as_mut_ptr().cast();
        rmsg.msg_controllen = std::mem::size_of_val(&back);
        // SAFETY: our buffers.
        assert_eq!(unsafe { libc::recvmsg(pair[1], &mut rmsg, 0) }, 1);
        let mut out = [0; MAX_FDS];
        // SAFETY: the kernel wrote rmsg.msg_controllen bytes into `back`.
        let n = unsafe { rights(back.as_ptr().cast(), rmsg.msg_controllen, &mut out) };
        assert_eq!(n, 2);
        assert!(out[0] > 2 && out[1] > 2 && out[0] != out[1]);
        // A length shorter than the header, or a cmsg_len past the end: nothing read.
        // SAFETY: the buffer is 128 bytes, more than any length used here.
        let short = unsafe { rights(back.as_ptr().cast(), HEADER - 1, &mut out) };
        // SAFETY: as above.
        let cut = unsafe { rights(back.as_ptr().cast(), HEADER + 4, &mut out) };
        assert_eq!((short, cut), (0, 0));
        // SAFETY: closing our own fds.
        unsafe {
            for fd in [pair[0], pair[1], out[0], out[1]] {
                libc::close(fd);
            }
        }
    }
}
