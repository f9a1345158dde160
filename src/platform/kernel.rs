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

/// What one `TCP_INFO` call says about a connection, reduced to what fdguard uses. Times are
/// milliseconds before the call, as the kernel counts them (`jiffies`, so a few ms coarse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSample {
    pub state: TcpState,
    /// The three-way handshake completed at some point. The kernel never says so directly;
    /// a connection that never got an answer (SYN_SENT, or refused) has neither a measured
    /// round-trip time nor negotiated options, while every answered one has at least one of
    /// the two. Measured on Linux 6.x loopback: refused and SYN_SENT sockets report
    /// `tcpi_rtt == 0 && tcpi_options == 0`; established ones `tcpi_rtt` 10-30 µs and options
    /// 7 (timestamps, SACK, window scaling). When false, the `last_*` times are meaningless
    /// (the kernel counts them from 0) and must not be used.
    pub handshake_completed: bool,
    /// `tcpi_last_data_recv`: since the last payload arrived.
    pub last_data_recv_ms: u32,
    /// `tcpi_last_data_sent`: since the last payload left.
    pub last_data_sent_ms: u32,
    /// `tcpi_last_ack_recv`: since the last ACK arrived (a FIN carries one).
    pub last_ack_recv_ms: u32,
    /// `tcpi_unacked`: segments sent and not yet acknowledged.
    pub unacked: u32,
    /// `tcpi_retransmits`: retransmissions of the oldest unacknowledged segment.
    pub retransmits: u8,
    /// `tcpi_backoff`: exponential backoff of the retransmission timer.
    pub backoff: u8,
    /// `tcpi_probes`: unanswered keepalive or zero-window probes.
    pub probes: u8,
}

/// The `TCP_INFO` of `fd` given its recorded family and type, reduced to a [`TcpSample`];
/// `None` when it is not TCP. One system call.
pub fn tcp_sample(fd: i32, family: i32, sock_type: i32) -> Option<TcpSample> {
    if !is_tcp(family, sock_type) {
        return None;
    }
    let info = tcp_info(fd)?;
    Some(TcpSample {
        state: TcpState::from_kernel(info.tcpi_state),
        handshake_completed: info.tcpi_rtt != 0 || info.tcpi_options != 0,
        last_data_recv_ms: info.tcpi_last_data_recv,
        last_data_sent_ms: info.tcpi_last_data_sent,
        last_ack_recv_ms: info.tcpi_last_ack_recv,
        unacked: info.tcpi_unacked,
        retransmits: info.tcpi_retransmits,
        backoff: info.tcpi_backoff,
        probes: info.tcpi_probes,
    })
}

/// `SO_KEEPALIVE` of `fd`; `None` when it cannot be read.
pub fn keepalive(fd: i32) -> Option<bool> {
    match socket_option(fd, libc::SO_KEEPALIVE) {
        -1 => None,
        v => Some(v != 0),
    }
}

/// Bytes queued on `fd`: (received and not yet read, written and not yet acknowledged), from
/// the `SIOCINQ` / `SIOCOUTQ` ioctls (`ss`'s Recv-Q / Send-Q). `None` where the kernel refuses
/// (a listening socket).
pub fn queues(fd: i32) -> (Option<u64>, Option<u64>) {
    let read = |request: libc::Ioctl| {
        let mut value: libc::c_int = 0;
        // SAFETY: SIOCINQ/SIOCOUTQ write one int through the pointer, which is valid.
        let rc = unsafe { libc::ioctl(fd, request, &mut value as *mut libc::c_int) };
        (rc == 0 && value >= 0).then_some(value as u64)
    };
    (read(libc::FIONREAD), read(libc::TIOCOUTQ))
}

/// The fd still refers to a socket (not closed behind our back by an untracked path such as
/// glibc's fclose, nor reused by a file).
pub fn is_socket(fd: i32) -> bool {
    socket_inode(fd).is_some()
}

/// The inode of the socket `fd` refers to (`socket:[N]` in /proc, `ss -e`'s `ino`); `None`
/// when `fd` is not a socket (closed behind our back, or reused by a file).
pub fn socket_inode(fd: i32) -> Option<u64> {
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
