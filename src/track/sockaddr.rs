//! Socket addresses: [`PeerAddr`], the raw bytes a record keeps (the hooks copy them from the
//! caller's `sockaddr`, see `hooks::connect`); formatting them at report time.
//!
//! The bytes are parsed defensively (rustix's read_sockaddr): the family is read first, the
//! length is checked against that family's struct before any field is used, and anything
//! unexpected becomes "unknown peer" rather than an error.

use std::net::{Ipv4Addr, Ipv6Addr};

/// A raw socket address as the app passed it (up to `sockaddr_un`'s size), kept as bytes so the
/// hot path never parses. `len == 0`: none.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr {
    pub len: u32,
    pub bytes: [u8; PeerAddr::CAPACITY],
}

impl PeerAddr {
    /// `sizeof(struct sockaddr_un)` is 110; rounded up to whole words.
    pub const CAPACITY: usize = 112;
    pub const WORDS: usize = PeerAddr::CAPACITY / 8;

    pub const NONE: PeerAddr = PeerAddr {
        len: 0,
        bytes: [0; PeerAddr::CAPACITY],
    };

    /// Copies `len` bytes (cut to the capacity) from a caller's sockaddr.
    pub fn from_bytes(raw: &[u8]) -> PeerAddr {
        let mut addr = PeerAddr::NONE;
        let n = raw.len().min(PeerAddr::CAPACITY);
        addr.bytes[..n].copy_from_slice(&raw[..n]);
        addr.len = n as u32;
        addr
    }

    /// The address family, when at least its two bytes are there.
    pub fn family(&self) -> Option<i32> {
        family_of(self.as_slice())
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..(self.len as usize).min(PeerAddr::CAPACITY)]
    }

    pub fn words(&self) -> [u64; PeerAddr::WORDS] {
        let mut out = [0u64; PeerAddr::WORDS];
        for (i, word) in out.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.bytes[i * 8..i * 8 + 8]);
            *word = u64::from_ne_bytes(b);
        }
        out
    }

    pub fn from_words(len: u32, words: &[u64; PeerAddr::WORDS]) -> PeerAddr {
        let mut addr = PeerAddr::NONE;
        for (i, word) in words.iter().enumerate() {
            addr.bytes[i * 8..i * 8 + 8].copy_from_slice(&word.to_ne_bytes());
        }
        addr.len = len.min(PeerAddr::CAPACITY as u32);
        addr
    }
}

impl Default for PeerAddr {
    fn default() -> Self {
        PeerAddr::NONE
    }
}

impl std::fmt::Debug for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match format(self.as_slice()) {
            Some(s) => write!(f, "{s}"),
            None => write!(f, "<{} bytes>", self.len),
        }
    }
}

fn family_of(raw: &[u8]) -> Option<i32> {
    (raw.len() >= 2).then(|| u16::from_ne_bytes([raw[0], raw[1]]) as i32)
}

/// Formats an address: `ip:port`, `[v6]:port` (IPv4-mapped written as IPv4), a unix path,
/// `@name` for an abstract unix name. `None` for an empty, unnamed or unknown address.
pub fn format(raw: &[u8]) -> Option<String> {
    match family_of(raw)? {
        libc::AF_INET if raw.len() >= 8 => {
            let port = u16::from_be_bytes([raw[2], raw[3]]);
            let ip = Ipv4Addr::new(raw[4], raw[5], raw[6], raw[7]);
            Some(format!("{ip}:{port}"))
        }
        libc::AF_INET6 if raw.len() >= 24 => {
            let port = u16::from_be_bytes([raw[2], raw[3]]);
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&raw[8..24]);
            let ip = Ipv6Addr::from(octets);
            Some(match ip.to_ipv4_mapped() {
                Some(v4) => format!("{v4}:{port}"),
                None => format!("[{ip}]:{port}"),
            })
        }
        libc::AF_UNIX => {
            let path = &raw[2..];
            if path.is_empty() {
                return None; // unnamed
            }
            if path[0] == 0 {
                // Abstract: the name is every byte after the leading NUL, up to the length.
                let name = String::from_utf8_lossy(&path[1..]).replace('\0', "@");
                return Some(format!("@{name}"));
            }
            let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
            (end > 0).then(|| String::from_utf8_lossy(&path[..end]).into_owned())
        }
        _ => None,
    }
}

/// `inet`, `inet6`, `unix`, `netlink`, `packet` or `af<N>`.
pub fn family_name(family: i32) -> String {
    match family {
        libc::AF_INET => "inet".into(),
        libc::AF_INET6 => "inet6".into(),
        libc::AF_UNIX => "unix".into(),
        libc::AF_NETLINK => "netlink".into(),
        libc::AF_PACKET => "packet".into(),
        other => format!("af{other}"),
    }
}

/// `stream`, `dgram`, `seqpacket`, `raw` or `type<N>` (flags such as SOCK_CLOEXEC removed).
pub fn type_name(sock_type: i32) -> String {
    match sock_type & 0xf {
        libc::SOCK_STREAM => "stream".into(),
        libc::SOCK_DGRAM => "dgram".into(),
        libc::SOCK_SEQPACKET => "seqpacket".into(),
        libc::SOCK_RAW => "raw".into(),
        other => format!("type{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(ip: [u8; 4], port: u16) -> Vec<u8> {
        let mut raw = vec![0u8; 16];
        raw[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        raw[2..4].copy_from_slice(&port.to_be_bytes());
        raw[4..8].copy_from_slice(&ip);
        raw
    }

    fn v6(ip: Ipv6Addr, port: u16) -> Vec<u8> {
        let mut raw = vec![0u8; 28];
        raw[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        raw[2..4].copy_from_slice(&port.to_be_bytes());
        raw[8..24].copy_from_slice(&ip.octets());
        raw
    }

    fn unix(path: &[u8]) -> Vec<u8> {
        let mut raw = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        raw.extend_from_slice(path);
        raw
    }

    #[test]
    fn formats_every_family_the_schema_names() {
        assert_eq!(
            format(&v4([127, 0, 0, 1], 50051)).unwrap(),
            "127.0.0.1:50051"
        );
        assert_eq!(format(&v6(Ipv6Addr::LOCALHOST, 443)).unwrap(), "[::1]:443");
        let mapped = Ipv4Addr::new(10, 0, 28, 129).to_ipv6_mapped();
        assert_eq!(format(&v6(mapped, 443)).unwrap(), "10.0.28.129:443");
        assert_eq!(format(&unix(b"/run/app.sock\0")).unwrap(), "/run/app.sock");
        assert_eq!(format(&unix(b"\0grpc-test")).unwrap(), "@grpc-test");
        assert_eq!(format(&unix(b"")), None);
    }

    #[test]
    fn short_or_unknown_addresses_are_unknown_not_errors() {
        assert_eq!(format(&[]), None);
        assert_eq!(format(&v4([1, 2, 3, 4], 1)[..5]), None);
        assert_eq!(format(&[0xff, 0x7f, 1, 2]), None);
    }

    #[test]
    fn mapped_and_plain_ipv4_share_a_backend_key() {
        let mapped = Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped();
        assert_eq!(format(&v6(mapped, 80)), format(&v4([127, 0, 0, 1], 80)));
    }
}
