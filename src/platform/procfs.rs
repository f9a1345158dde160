//! What the kernel lists as this process's open fds (/proc/self/fd). Read with std, so callers
//! must hold the guard (our hooks then pass straight through). Never on a hot path: once at
//! load, and once per report.

/// One open fd.
pub struct OpenFd {
    pub fd: i32,
    /// The kernel calls it `socket:[inode]`.
    pub socket: bool,
}

/// Every open fd, in fd order. The fd used to list the directory is closed before the links
/// are read, so it never counts (a readlink of it then fails, as for any fd closed meanwhile).
pub fn open_fds() -> Vec<OpenFd> {
    let mut numbers: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => return Vec::new(),
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
