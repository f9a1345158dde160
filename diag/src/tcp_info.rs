//! `struct tcp_info` (linux/tcp.h), as `INET_DIAG_INFO` and `getsockopt(TCP_INFO)` return it.
//! Parsed by offset from the bytes the kernel gave, so an older kernel's shorter struct yields
//! `None` for the fields it lacks instead of garbage.

use crate::netlink::{u32_at, u64_at};

/// The fields fdguard uses. Times are milliseconds before the read; they are only meaningful
/// once the connection was synchronized (see [`TcpInfo::timestamps_valid`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TcpInfo {
    /// `tcpi_state`, the kernel's state number (1 ESTABLISHED … 12 NEW_SYN_RECV).
    pub state: u8,
    /// `tcpi_ca_state` (congestion-avoidance state).
    pub ca_state: u8,
    /// `tcpi_retransmits`: retransmissions of the current unacknowledged segment.
    pub retransmits: u8,
    /// `tcpi_probes`: unanswered zero-window or keepalive probes.
    pub probes: u8,
    /// `tcpi_backoff`: retransmission timer backoff.
    pub backoff: u8,
    /// `tcpi_rto`, microseconds.
    pub rto_us: u32,
    /// `tcpi_unacked`: segments sent and not yet acknowledged (for a listener: the accept
    /// queue length).
    pub unacked: u32,
    /// `tcpi_last_data_sent`, ms.
    pub last_data_sent_ms: u32,
    /// `tcpi_last_data_recv`, ms.
    pub last_data_recv_ms: u32,
    /// `tcpi_last_ack_recv`, ms: since the last segment that acknowledged anything, which is
    /// also the last segment received in CLOSE_WAIT (the peer's FIN carries an ACK and the peer
    /// sends nothing after it but ACKs).
    pub last_ack_recv_ms: u32,
    /// `tcpi_rtt`, microseconds.
    pub rtt_us: u32,
    /// `tcpi_total_retrans` (Linux 2.6.x on; `None` from a shorter struct).
    pub total_retrans: Option<u32>,
    /// `tcpi_bytes_acked` (Linux 4.1): counts the SYN, so it is at least 1 once an actively
    /// opened connection was established.
    pub bytes_acked: Option<u64>,
    /// `tcpi_bytes_received` (Linux 4.1).
    pub bytes_received: Option<u64>,
    /// `tcpi_segs_out` (Linux 4.2).
    pub segs_out: Option<u32>,
    /// `tcpi_segs_in` (Linux 4.2).
    pub segs_in: Option<u32>,
}

/// Byte offsets in `struct tcp_info` (checked against the libc crate's struct in the tests).
mod offset {
    pub(super) const STATE: usize = 0;
    pub(super) const CA_STATE: usize = 1;
    pub(super) const RETRANSMITS: usize = 2;
    pub(super) const PROBES: usize = 3;
    pub(super) const BACKOFF: usize = 4;
    pub(super) const RTO: usize = 8;
    pub(super) const UNACKED: usize = 24;
    pub(super) const LAST_DATA_SENT: usize = 44;
    pub(super) const LAST_DATA_RECV: usize = 52;
    pub(super) const LAST_ACK_RECV: usize = 56;
    pub(super) const RTT: usize = 68;
    pub(super) const TOTAL_RETRANS: usize = 100;
    pub(super) const BYTES_ACKED: usize = 120;
    pub(super) const BYTES_RECEIVED: usize = 128;
    pub(super) const SEGS_OUT: usize = 136;
    pub(super) const SEGS_IN: usize = 140;
}

/// The kernel's TCP state numbers (include/net/tcp_states.h).
pub mod state {
    /// ESTABLISHED
    pub const ESTABLISHED: u8 = 1;
    /// SYN_SENT
    pub const SYN_SENT: u8 = 2;
    /// SYN_RECV
    pub const SYN_RECV: u8 = 3;
    /// FIN_WAIT1
    pub const FIN_WAIT1: u8 = 4;
    /// FIN_WAIT2
    pub const FIN_WAIT2: u8 = 5;
    /// TIME_WAIT
    pub const TIME_WAIT: u8 = 6;
    /// CLOSE: never connected, or the connection ended (reset, failed connect).
    pub const CLOSE: u8 = 7;
    /// CLOSE_WAIT: the peer sent its FIN; we have not closed.
    pub const CLOSE_WAIT: u8 = 8;
    /// LAST_ACK
    pub const LAST_ACK: u8 = 9;
    /// LISTEN
    pub const LISTEN: u8 = 10;
    /// CLOSING
    pub const CLOSING: u8 = 11;
    /// NEW_SYN_RECV (request sockets)
    pub const NEW_SYN_RECV: u8 = 12;
}

impl TcpInfo {
    /// Parses the bytes of a `struct tcp_info`; `None` when shorter than the 104-byte original.
    pub fn parse(bytes: &[u8]) -> Option<TcpInfo> {
        if bytes.len() < offset::TOTAL_RETRANS + 4 {
            return None;
        }
        let u8_at = |at: usize| bytes[at];
        let u32_or_0 = |at: usize| u32_at(bytes, at).unwrap_or(0);
        Some(TcpInfo {
            state: u8_at(offset::STATE),
            ca_state: u8_at(offset::CA_STATE),
            retransmits: u8_at(offset::RETRANSMITS),
            probes: u8_at(offset::PROBES),
            backoff: u8_at(offset::BACKOFF),
            rto_us: u32_or_0(offset::RTO),
            unacked: u32_or_0(offset::UNACKED),
            last_data_sent_ms: u32_or_0(offset::LAST_DATA_SENT),
            last_data_recv_ms: u32_or_0(offset::LAST_DATA_RECV),
            last_ack_recv_ms: u32_or_0(offset::LAST_ACK_RECV),
            rtt_us: u32_or_0(offset::RTT),
            total_retrans: u32_at(bytes, offset::TOTAL_RETRANS),
            bytes_acked: u64_at(bytes, offset::BYTES_ACKED),
            bytes_received: u64_at(bytes, offset::BYTES_RECEIVED),
            segs_out: u32_at(bytes, offset::SEGS_OUT),
            segs_in: u32_at(bytes, offset::SEGS_IN),
        })
    }

    /// True when the `last_*` times mean something. The kernel starts those clocks when a
    /// connection is synchronized (`tcp_finish_connect`, `tcp_create_openreq_child`); before
    /// that (SYN_SENT, LISTEN, a socket never connected) they count from an unset zero and are
    /// garbage. A CLOSE socket was synchronized if it was accepted (`accepted`) or if its SYN
    /// was acknowledged (`bytes_acked` counts the SYN).
    pub fn timestamps_valid(&self, accepted: bool) -> bool {
        match self.state {
            state::ESTABLISHED
            | state::FIN_WAIT1
            | state::FIN_WAIT2
            | state::CLOSE_WAIT
            | state::LAST_ACK
            | state::CLOSING => true,
            state::CLOSE => accepted || self.bytes_acked.is_some_and(|b| b >= 1),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn offsets_match_the_c_struct() {
        assert_eq!(offset_of!(libc::tcp_info, tcpi_state), offset::STATE);
        assert_eq!(offset_of!(libc::tcp_info, tcpi_ca_state), offset::CA_STATE);
        assert_eq!(
            offset_of!(libc::tcp_info, tcpi_retransmits),
            offset::RETRANSMITS
        );
        assert_eq!(offset_of!(libc::tcp_info, tcpi_probes), offset::PROBES);
        assert_eq!(offset_of!(libc::tcp_info, tcpi_backoff), offset::BACKOFF);
        assert_eq!(offset_of!(libc::tcp_info, tcpi_rto), offset::RTO);
        assert_eq!(offset_of!(libc::tcp_info, tcpi_unacked), offset::UNACKED);
        assert_eq!(
            offset_of!(libc::tcp_info, tcpi_last_data_sent),
            offset::LAST_DATA_SENT
        );
        assert_eq!(
            offset_of!(libc::tcp_info, tcpi_last_data_recv),
            offset::LAST_DATA_RECV
        );
        assert_eq!(
            offset_of!(libc::tcp_info, tcpi_last_ack_recv),
            offset::LAST_ACK_RECV
        );
        assert_eq!(offset_of!(libc::tcp_info, tcpi_rtt), offset::RTT);
        assert_eq!(
            offset_of!(libc::tcp_info, tcpi_total_retrans),
            offset::TOTAL_RETRANS
        );
    }

    #[test]
    fn short_structs_leave_newer_fields_unknown() {
        let mut bytes = vec![0u8; 104];
        bytes[0] = state::CLOSE_WAIT;
        bytes[56..60].copy_from_slice(&1500u32.to_ne_bytes());
        let info = TcpInfo::parse(&bytes).unwrap();
        assert_eq!(info.state, state::CLOSE_WAIT);
        assert_eq!(info.last_ack_recv_ms, 1500);
        assert_eq!(info.bytes_acked, None);
        assert_eq!(info.segs_in, None);
        assert!(TcpInfo::parse(&bytes[..100]).is_none());
    }

    #[test]
    fn clocks_only_count_once_synchronized() {
        let info = |state, bytes_acked| TcpInfo {
            state,
            bytes_acked,
            ..TcpInfo::default()
        };
        assert!(info(state::CLOSE_WAIT, None).timestamps_valid(false));
        assert!(!info(state::SYN_SENT, Some(0)).timestamps_valid(false));
        assert!(!info(state::LISTEN, None).timestamps_valid(false));
        // A refused connect ends in CLOSE with nothing acknowledged; a reset connection had its
        // SYN acknowledged.
        assert!(!info(state::CLOSE, Some(0)).timestamps_valid(false));
        assert!(info(state::CLOSE, Some(1)).timestamps_valid(false));
        assert!(info(state::CLOSE, Some(0)).timestamps_valid(true));
    }
}
