//! Questions fdguard asks the kernel about one socket fd: its type, TCP state, addresses, and
//! whether the number still names a socket at all. Report time, load time and the watcher
//! only; never on the host's socket path. Each is one system call with no side effect.
#![allow(unsafe_code)] // getsockopt, ioctl, statx, getsockname/getpeername, getrlimit on raw fds.

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

/// The kernel's `TCP_INFO` for `fd`, or `None` when `fd` is not a TCP socket; with
/// `tcpi_notsent_bytes` (Linux 4.6+, past the end of libc's older `tcp_info`) when the kernel
/// wrote that far.
pub fn tcp_info(fd: i32) -> Option<(libc::tcp_info, Option<u32>)> {
    /// Offset of `tcpi_notsent_bytes` in the kernel's `struct tcp_info` (after the eight u8
    /// fields, 24 u32 counters, four u64 byte counters and `tcpi_segs_out`/`tcpi_segs_in`).
    const NOTSENT_OFFSET: usize = 144;
    // Room for the kernel's whole struct as of 6.x (about 280 bytes), aligned for tcp_info.
    let mut buf = [0u64; 48];
    let mut len = std::mem::size_of_val(&buf) as libc::socklen_t;
    // SAFETY: valid out-pointers; the kernel writes at most `len` bytes into `buf`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    const _: () = assert!(std::mem::size_of::<libc::tcp_info>() <= 48 * 8);
    // SAFETY: `buf` is larger than and aligned for `tcp_info`, a plain-integer struct for
    // which any bytes are valid (zeros past what the kernel wrote).
    let info: libc::tcp_info = unsafe { std::ptr::read(buf.as_ptr().cast()) };
    let bytes: &[u8; 384] = {
        // SAFETY: a [u64; 48] is 384 initialised bytes.
        unsafe { &*buf.as_ptr().cast() }
    };
    let notsent = (len as usize >= NOTSENT_OFFSET + 4).then(|| {
        u32::from_ne_bytes(
            bytes[NOTSENT_OFFSET..NOTSENT_OFFSET + 4]
                .try_into()
                .unwrap_or_default(),
        )
    });
    Some((info, notsent))
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
    /// Bytes written and not yet acknowledged (`SIOCOUTQ`, `ss`'s Send-Q), when `TCP_INFO`
    /// alone tells it: with nothing in flight (`tcpi_unacked` 0) every unacknowledged byte is
    /// one not sent yet, `tcpi_notsent_bytes`. `None`: ask [`send_queue`].
    pub send_queue: Option<u64>,
}

/// The `TCP_INFO` of `fd` given its recorded family and type, reduced to a [`TcpSample`];
/// `None` when it is not TCP. One system call.
pub fn tcp_sample(fd: i32, family: i32, sock_type: i32) -> Option<TcpSample> {
    if !is_tcp(family, sock_type) {
        return None;
    }
    let (info, notsent) = tcp_info(fd)?;
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
        send_queue: notsent.filter(|_| info.tcpi_unacked == 0).map(u64::from),
    })
}

/// `SO_KEEPALIVE` of `fd`; `None` when it cannot be read.
pub fn keepalive(fd: i32) -> Option<bool> {
    match socket_option(fd, libc::SO_KEEPALIVE) {
        -1 => None,
        v => Some(v != 0),
    }
}

/// Bytes received on `fd` and not yet read (`SIOCINQ`, `ss`'s Recv-Q); `None` where the
/// kernel refuses (a listening socket).
pub fn recv_queue(fd: i32) -> Option<u64> {
    int_ioctl(fd, libc::FIONREAD)
}

/// Bytes written on `fd` and not yet acknowledged (`SIOCOUTQ`, `ss`'s Send-Q); `None` where
/// the kernel refuses (a listening socket).
pub fn send_queue(fd: i32) -> Option<u64> {
    int_ioctl(fd, libc::TIOCOUTQ)
}

/// An ioctl that writes one non-negative int.
fn int_ioctl(fd: i32, request: libc::Ioctl) -> Option<u64> {
    let mut value: libc::c_int = 0;
    // SAFETY: SIOCINQ/SIOCOUTQ write one int through the pointer, which is valid.
    let rc = unsafe { libc::ioctl(fd, request, &mut value as *mut libc::c_int) };
    (rc == 0 && value >= 0).then_some(value as u64)
}

/// The fd still refers to a socket (not closed behind our back by an untracked path such as
/// glibc's fclose, nor reused by a file).
pub fn is_socket(fd: i32) -> bool {
    socket_inode(fd).is_some()
}

/// The inode of the socket `fd` refers to (`socket:[N]` in /proc, `ss -e`'s `ino`); `None`
/// when `fd` is closed or not a socket (closed behind our back, or reused by a file). statx
/// with `AT_STATX_DONT_SYNC`: a file on a network or FUSE file system is answered from the
/// cache, never by a server that may not answer.
pub fn socket_inode(fd: i32) -> Option<u64> {
    stat_fd(fd).ok().flatten()
}

/// statx of an fd number: `Ok(Some(inode))` for a socket, `Ok(None)` for anything else open,
/// else the errno (EBADF: not open).
pub fn stat_fd(fd: i32) -> Result<Option<u64>, i32> {
    // SAFETY: zeroed statx is a valid out-buffer.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: statx on an fd number with an empty path (AT_EMPTY_PATH), a NUL-terminated path
    // literal and a valid out-pointer.
    let rc = unsafe {
        libc::statx(
            fd,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_STATX_DONT_SYNC,
            libc::STATX_TYPE | libc::STATX_INO,
            &mut st,
        )
    };
    if rc != 0 {
        return Err(super::errno::errno());
    }
    let socket = u32::from(st.stx_mode) & libc::S_IFMT == libc::S_IFSOCK;
    Ok(socket.then_some(st.stx_ino))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    /// The Send-Q a sample derives from `TCP_INFO` is the one `SIOCOUTQ` reports: idle, and
    /// with the peer not reading (the window full, bytes waiting unsent).
    #[test]
    fn send_queue_from_tcp_info_matches_siocoutq() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, _) = listener.accept().unwrap();
        let fd = client.as_raw_fd();
        let check = |what: &str| {
            let sample = tcp_sample(fd, libc::AF_INET, libc::SOCK_STREAM).unwrap();
            if let Some(derived) = sample.send_queue {
                assert_eq!(Some(derived), send_queue(fd), "{what}");
            }
            sample
        };
        assert_eq!(check("idle").send_queue, Some(0));
        client.set_nonblocking(true).unwrap();
        let chunk = [7u8; 65536];
        for _ in 0..1000 {
            if client.write(&chunk).is_err() {
                break;
            }
        }
        // Let loopback deliver what fits and the ACKs come back (bounded).
        let mut derived_once = false;
        for _ in 0..200 {
            std::thread::sleep(std::time::Duration::from_millis(5));
            if check("peer not reading").send_queue.is_some_and(|q| q > 0) {
                derived_once = true;
                break;
            }
        }
        assert!(derived_once, "never idle with a full window");
        assert!(recv_queue(fd) == Some(0));
    }
}
