//! What the kernel lists as this process's open fds (/proc/self/fd). Read with std, so callers
//! must hold the guard (our hooks then pass straight through). Never on a hot path: once at
//! load, and once per report.
#![allow(unsafe_code)]

/// One open fd.
pub struct OpenFd {
    pub fd: i32,
    /// The kernel calls it `socket:[inode]`.
    pub socket: bool,
}

/// Every open fd, in fd order. The fd used to list the directory is closed before the links
/// are read, so it never counts (a readlink of it then fails, as for any fd closed meanwhile).
/// When /proc/self/fd cannot be opened (no descriptor left: the fd limit; no /proc), the fds
/// are found without one ([`open_fds_without_an_fd`]).
pub fn open_fds() -> Vec<OpenFd> {
    let mut numbers: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => return open_fds_without_an_fd(),
    };
    numbers.sort_unstable();
    numbers
        .into_iter()
        .filter_map(|fd| {
            let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
            let socket = link.to_string_lossy().starts_with("socket:");
            Some(OpenFd { fd, socket })
        })
        .collect()
}

/// How many fds are open, without reading a single link: the entries of /proc/self/fd less
/// the one listing it. The metrics writer's count (`agent::metrics`): with 18,000 fds open,
/// [`open_fds`]'s readlink per fd costs tens of milliseconds, this one a few.
pub fn count_open_fds() -> u64 {
    match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => (dir.count() as u64).saturating_sub(1),
        Err(_) => 0,
    }
}

/// Every open fd, found without opening anything: poll(2) with no events asked marks each
/// closed number POLLNVAL (and has no other effect: nothing is waited for or consumed), in
/// chunks up to the soft fd limit (and the fd table's current size, which bounds the numbers
/// in use); fstat tells sockets. About a millisecond for 20,000 numbers.
pub fn open_fds_without_an_fd() -> Vec<OpenFd> {
    const CHUNK: usize = 1024;
    let (soft, _) = super::kernel::nofile_limit();
    let end = soft.min(1 << 24) as usize;
    let mut out = Vec::new();
    let mut polls: Vec<libc::pollfd> = Vec::with_capacity(CHUNK);
    let mut first = 0usize;
    while first < end {
        let last = (first + CHUNK).min(end);
        polls.clear();
        polls.extend((first..last).map(|fd| libc::pollfd {
            fd: fd as i32,
            events: 0,
            revents: 0,
        }));
        // SAFETY: `polls` holds `polls.len()` valid pollfd entries; timeout 0 never waits.
        let rc = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, 0) };
        if rc < 0 {
            break;
        }
        for p in &polls {
            if p.revents & libc::POLLNVAL == 0 {
                // SAFETY: zeroed stat is a valid out-buffer; fstat on an fd number.
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                // SAFETY: as above.
                let socket = unsafe { libc::fstat(p.fd, &mut st) } == 0
                    && st.st_mode & libc::S_IFMT == libc::S_IFSOCK;
                out.push(OpenFd { fd: p.fd, socket });
            }
        }
        first = last;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ways_of_listing_agree() {
        let listed: Vec<i32> = open_fds().iter().map(|f| f.fd).collect();
        let polled: Vec<i32> = open_fds_without_an_fd().iter().map(|f| f.fd).collect();
        // The harness's threads may open and close files meanwhile: compare the stable part.
        for fd in [0, 1, 2] {
            assert_eq!(listed.contains(&fd), polled.contains(&fd), "fd {fd}");
        }
        assert!(!polled.is_empty());
    }
}
