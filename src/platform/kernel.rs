//! Questions fdguard asks the kernel about one socket fd: its type, TCP state, addresses, and
//! whether the number still names a socket at all. Report time, load time and the watcher
//! only; never on the host's socket path. Each is one system call with no side effect.
#![allow(unsafe_code)]

use fdguard_report::TcpState;

/// An `int`-valued `SOL_SOCKET` option of `fd` (`SO_DOMAIN`, `SO_TYPE`, `SO_ACCEPTCONN`, …), or
/// -1 when it cannot be read.
pub fn socket_option(fd: i32, option: i32) -> i32 {
    let mut value: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value`/`len` are valid out-pointers for an int option.
    unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    value
}

/// True for a TCP socket's (family, type): the only ones `TCP_INFO` answers for.
pub fn is_tcp(family: i32, sock_type: i32) -> bool {
    (family == libc::AF_INET || family == libc::AF_INET6) && sock_type & 0xf == libc::SOCK_STREAM
}

/// The kernel's `TCP_INFO` for `fd`, or `None` when `fd` is not a TCP socket.
pub fn tcp_info(fd: i32) -> Option<libc::tcp_info> {
    // SAFETY: zeroed tcp_info is a valid out-buffer.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: valid out-pointers for TCP_INFO; the kernel writes at most `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(info)
}

/// The TCP state of `fd` given its recorded family and type; `None` when it is not TCP.
pub fn tcp_state(fd: i32, family: i32, sock_type: i32) -> Option<TcpState> {
    if !is_tcp(family, sock_type) {
        return None;
    }
    tcp_info(fd).map(|info| TcpState::from_kernel(info.tcpi_state))
}

/// The fd still refers to a socket (not closed behind our back by an untracked path such as
/// glibc's fclose, nor reused by a file).
pub fn is_socket(fd: i32) -> bool {
    // SAFETY: zeroed stat is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on any number with a valid out-pointer.
    unsafe { libc::fstat(fd, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFSOCK }
}

/// The inode of the socket `fd` names (`socket:[N]` in /proc), or `None` when `fd` is not a
/// socket.
pub fn inode(fd: i32) -> Option<u64> {
    // SAFETY: zeroed stat is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on any number with a valid out-pointer.
    let ok = unsafe { libc::fstat(fd, &mut st) == 0 };
    (ok && st.st_mode & libc::S_IFMT == libc::S_IFSOCK).then_some(st.st_ino)
}

/// Which end of a connection [`address`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `getsockname`.
    Local,
    /// `getpeername`.
    Peer,
}

/// The raw address bytes of one end of `fd` (`getsockname`/`getpeername`).
pub fn address(fd: i32, side: Side) -> Option<Vec<u8>> {
    let mut buf = [0u8; std::mem::size_of::<libc::sockaddr_storage>()];
    address_into(fd, side, &mut buf).map(|n| buf[..n].to_vec())
}

/// Like [`address`], into `buf` (no allocation: the accept hook uses it); returns the length.
pub fn address_into(
    fd: i32,
    side: Side,
    buf: &mut [u8; std::mem::size_of::<libc::sockaddr_storage>()],
) -> Option<usize> {
    let mut len = buf.len() as libc::socklen_t;
    let ptr = buf.as_mut_ptr().cast::<libc::sockaddr>();
    // SAFETY: `ptr`/`len` describe our own buffer of `len` bytes.
    let rc = unsafe {
        match side {
            Side::Peer => libc::getpeername(fd, ptr, &mut len),
            Side::Local => libc::getsockname(fd, ptr, &mut len),
        }
    };
    (rc == 0).then(|| (len as usize).min(buf.len()))
}

/// RLIMIT_NOFILE: (soft, hard).
pub fn nofile_limit() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (lim.rlim_cur, lim.rlim_max)
}
