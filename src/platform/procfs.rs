//! Which fds this process has open, as the kernel sees them, and which of them are sockets.
//! Never on a hot path: once at load, once per report, and on the metrics writer's tick.

use super::{kernel, workers};

/// One open fd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFd {
    pub fd: i32,
    /// The socket's inode (`socket:[inode]` in /proc) when the fd is a socket.
    pub socket_inode: Option<u64>,
}

impl OpenFd {
    pub fn is_socket(&self) -> bool {
        self.socket_inode.is_some()
    }
}

/// Every open fd, in fd order, with a statx(2) of each ([`kernel::stat_fd`]: whether it is a
/// socket, and its inode; never asks a FUSE or NFS server). The fd numbers come one of two
/// ways, whichever costs less, judged from `expected` (about how many fds the caller thinks
/// are open: a report passes the table's live count):
/// - every number below the fd table's size (`FDSize`, which bounds every fd in use): a
///   closed number fails at once with EBADF (0.1 µs measured here). Needs no descriptor, so it
///   works at the fd limit. With 18,000 sockets open (fd table 32,768): 12 ms, where reading
///   /proc/self/fd with a readlink per entry took 90 ms.
/// - the entries of /proc/self/fd (1.8 µs an entry: the kernel builds a dentry for each),
///   when the table is much larger than what is open (a process that once had many fds keeps
///   its big table): 1,000 fds in a table of 1,048,576 cost 2 ms this way, 100 ms the other.
///
/// `Threads::Allowed` spreads many statx calls over [`workers`] (a report); the constructor
/// passes `Threads::None`.
pub fn open_fds(threads: Threads, expected: usize) -> Vec<OpenFd> {
    let table = fd_table_size();
    let numbers: Vec<i32> = if table > 16 * (expected + 64) {
        listed_numbers().unwrap_or_else(|| all_numbers(table))
    } else {
        all_numbers(table)
    };
    let read = |&fd: &i32| match kernel::stat_fd(fd) {
        Err(libc::EBADF) => None,
        Ok(socket_inode) => Some(OpenFd { fd, socket_inode }),
        // Open, but not something statx describes: count it, not a socket.
        Err(_) => Some(OpenFd {
            fd,
            socket_inode: None,
        }),
    };
    let found = match threads {
        Threads::Allowed => workers::map(&numbers, read, &|| {}),
        Threads::None => numbers.iter().map(read).collect(),
    };
    found.into_iter().flatten().collect()
}

/// Every fd number below `table`.
fn all_numbers(table: usize) -> Vec<i32> {
    (0..table).map_while(|fd| i32::try_from(fd).ok()).collect()
}

/// The numbers /proc/self/fd lists, sorted (the one that lists them is closed by then and
/// fails its statx); `None` without /proc or a descriptor to read it.
fn listed_numbers() -> Option<Vec<i32>> {
    let mut numbers: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    numbers.sort_unstable();
    Some(numbers)
}

/// Whether [`open_fds`] may use helper threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    Allowed,
    None,
}

/// How many fds are open, without telling sockets: the entries of /proc/self/fd less the one
/// listing it (the metrics writer's count, on the watcher's tick: a few ms for 18,000 fds,
/// no system call per fd); without /proc or a descriptor to read it, [`open_fds`].
pub fn count_open_fds() -> u64 {
    match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => (dir.count() as u64).saturating_sub(1),
        Err(_) => open_fds(Threads::None, 0).len() as u64,
    }
}

/// One past the highest fd number that can be open: the kernel's fd table size (`FDSize` in
/// /proc/self/status), else (no /proc, or no descriptor left to read it) the soft fd limit.
fn fd_table_size() -> usize {
    let from_status = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("FDSize:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
        });
    from_status.unwrap_or_else(|| {
        let (soft, _) = super::kernel::nofile_limit();
        soft.min(1 << 24) as usize
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// /proc/self/fd's entries and a statx of every number below FDSize find the same fds.
    #[test]
    fn both_ways_of_finding_the_numbers_agree() {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let l = listener.as_raw_fd();
        let listed = listed_numbers().unwrap();
        let scanned: Vec<i32> = all_numbers(fd_table_size())
            .into_iter()
            .filter(|&fd| kernel::stat_fd(fd) != Err(libc::EBADF))
            .collect();
        // The harness's threads may open and close files meanwhile: compare the stable part.
        for fd in [0, 1, 2, l] {
            assert_eq!(listed.contains(&fd), scanned.contains(&fd), "fd {fd}");
        }
        assert!(listed.contains(&l));
        assert!(listed.windows(2).all(|w| w[0] < w[1]));
    }

    /// The listing agrees with /proc/self/fd for the fds this test holds still.
    #[test]
    fn listing_finds_sockets_and_files() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let file = std::fs::File::open("/proc/self/status").unwrap();
        use std::os::fd::AsRawFd;
        let (l, f) = (listener.as_raw_fd(), file.as_raw_fd());
        let fds = open_fds(Threads::Allowed, 0);
        let find = |fd| fds.iter().find(|o| o.fd == fd).copied();
        let expected_inode = std::fs::read_link(format!("/proc/self/fd/{l}"))
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("socket:[")
            .trim_end_matches(']')
            .parse::<u64>()
            .unwrap();
        assert_eq!(find(l).and_then(|o| o.socket_inode), Some(expected_inode));
        assert_eq!(find(f).map(|o| o.is_socket()), Some(false));
        for fd in [0, 1, 2] {
            let listed = std::path::Path::new(&format!("/proc/self/fd/{fd}")).exists();
            assert_eq!(find(fd).is_some(), listed, "fd {fd}");
        }
        assert!(count_open_fds() >= 2);
        drop(file);
        assert!(
            !open_fds(Threads::None, 0)
                .iter()
                .any(|o| o.fd == f && o.is_socket())
        );
    }
}
