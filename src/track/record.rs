//! `SocketRecord`: what fdguard knows about one socket fd. Plain data, copied in and out of the
//! table's atomic slots; no behaviour beyond small conversions, and [`observe`], the kernel's
//! answer for a socket no hooked call created (open at load, received, raw syscall).

use super::sockaddr::PeerAddr;
use crate::platform::kernel::{self, Side, socket_option};

/// `stack_id` of a record without a stack (pre-existing sockets, capture off or table full).
pub const NO_STACK: u32 = u32::MAX;

/// What the socket is used for (stored as a number in the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u32)]
pub enum Role {
    #[default]
    Unconnected = 0,
    Client = 1,
    Accepted = 2,
    Listener = 3,
    Pair = 4,
    Connected = 5,
}

impl Role {
    pub fn from_u32(v: u32) -> Role {
        match v {
            1 => Role::Client,
            2 => Role::Accepted,
            3 => Role::Listener,
            4 => Role::Pair,
            5 => Role::Connected,
            _ => Role::Unconnected,
        }
    }

    pub fn to_model(self) -> fdguard_report::Role {
        match self {
            Role::Unconnected => fdguard_report::Role::Unconnected,
            Role::Client => fdguard_report::Role::Client,
            Role::Accepted => fdguard_report::Role::Accepted,
            Role::Listener => fdguard_report::Role::Listener,
            Role::Pair => fdguard_report::Role::Pair,
            Role::Connected => fdguard_report::Role::Connected,
        }
    }
}

/// Where the record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u32)]
pub enum Origin {
    #[default]
    Created = 0,
    Preexisting = 1,
    /// Received from another process (SCM_RIGHTS, `hooks::recv`).
    Received = 2,
    /// Found open at report time with no record (a raw `socket` system call): only ever in a
    /// report's snapshot, never stored in the table.
    Untracked = 3,
}

impl Origin {
    pub fn from_u32(v: u32) -> Origin {
        match v {
            1 => Origin::Preexisting,
            2 => Origin::Received,
            3 => Origin::Untracked,
            _ => Origin::Created,
        }
    }
}

/// A TCP state as the watcher last saw it, with the date it entered that state (monotonic
/// milliseconds), packed into one word so the table stores and loads the pair atomically.
/// `TcpSeen::NONE`: not looked at yet. Dates come from `report::build::date_state_entry`
/// and are never later than the first sighting, never earlier than what the kernel allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpSeen(pub u64);

impl TcpSeen {
    pub const NONE: TcpSeen = TcpSeen(0);
    const STATE_SHIFT: u32 = 56;
    const TIME_MASK: u64 = (1 << TcpSeen::STATE_SHIFT) - 1;

    /// `state` (the kernel's number, 1-12) entered at monotonic `since_ns`.
    pub fn new(state: fdguard_report::TcpState, since_ns: u64) -> TcpSeen {
        let number = fdguard_report::TcpState::ALL
            .iter()
            .position(|&s| s == state)
            .map_or(0, |i| i as u64 + 1);
        // 56 bits of milliseconds: two million years of uptime.
        TcpSeen(number << TcpSeen::STATE_SHIFT | (since_ns / 1_000_000) & TcpSeen::TIME_MASK)
    }

    /// The state and its monotonic entry date (ns), if one was recorded.
    pub fn get(self) -> Option<(fdguard_report::TcpState, u64)> {
        let number = (self.0 >> TcpSeen::STATE_SHIFT) as u8;
        (number != 0).then(|| {
            (
                fdguard_report::TcpState::from_kernel(number),
                (self.0 & TcpSeen::TIME_MASK) * 1_000_000,
            )
        })
    }
}

/// One socket fd's record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SocketRecord {
    pub fd: i32,
    /// Shared by dup'ed fds; monotonic in creation order.
    pub socket_id: u64,
    /// Monotonic ns at creation (at load, for pre-existing sockets).
    pub created_ns: u64,
    pub stack_id: u32,
    pub tid: i32,
    pub family: i32,
    pub sock_type: i32,
    pub role: Role,
    pub origin: Origin,
    /// Pid of the process that created it (differs from ours after a fork: inherited).
    pub creator_pid: i32,
    /// The fd this one was duplicated from, or -1.
    pub dup_of: i32,
    /// Monotonic ns of the connect() call; 0 = never called.
    pub connect_ns: u64,
    /// errno of connect() (0 = success).
    pub connect_errno: i32,
    /// `how + 1` of the app's shutdown() (0 = never called).
    pub shutdown_how: u32,
    pub shutdown_ns: u64,
    /// Monotonic ns when the watcher first saw the peer gone; 0 = not seen.
    pub peer_closed_ns: u64,
    /// The TCP state the watcher last saw and since when it dates it ([`TcpSeen`]).
    pub tcp_seen: TcpSeen,
    pub thread_name: [u8; 16],
    pub peer: PeerAddr,
    pub ignored: bool,
}

impl SocketRecord {
    /// The thread name as text.
    pub fn thread_name(&self) -> String {
        let end = self.thread_name.iter().position(|&b| b == 0).unwrap_or(16);
        String::from_utf8_lossy(&self.thread_name[..end]).into_owned()
    }

    /// The socket was duplicated from another fd.
    pub fn is_dup(&self) -> bool {
        self.dup_of >= 0
    }
}

/// What the kernel says about a socket fdguard saw no call create (open at load, received with
/// SCM_RIGHTS, made by a raw system call): the fields of its record that it can tell.
#[derive(Debug, Clone, Copy)]
pub struct Observed {
    pub family: i32,
    pub sock_type: i32,
    /// Listening, connected (it has a peer) or neither.
    pub role: Role,
    /// `getpeername`, or none.
    pub peer: PeerAddr,
}

/// Asks the kernel about socket `fd` (four system calls, no allocation beyond the address).
pub fn observe(fd: i32) -> Observed {
    let peer = kernel::address(fd, Side::Peer).map(|b| PeerAddr::from_bytes(&b));
    let role = if socket_option(fd, libc::SO_ACCEPTCONN) == 1 {
        Role::Listener
    } else if peer.is_some() {
        Role::Connected
    } else {
        Role::Unconnected
    };
    Observed {
        family: socket_option(fd, libc::SO_DOMAIN),
        sock_type: socket_option(fd, libc::SO_TYPE),
        role,
        peer: peer.unwrap_or_default(),
    }
}
