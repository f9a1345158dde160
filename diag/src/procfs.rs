//! What `/proc/PID` says about a process: its open fds (socket inodes), identity, limits and
//! mapped files. Reading another user's `fd`, `exe`, `maps` or `ns` needs ptrace read access
//! (proc(5)); those errors come back as [`Error::PermissionDenied`], a vanished process as
//! [`Error::NoSuchProcess`].

use std::io;
use std::path::PathBuf;

use crate::Error;
use crate::sys;

/// One open fd of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdEntry {
    /// The fd number.
    pub fd: i32,
    /// The socket's inode when the fd is a socket (`socket:[N]`).
    pub socket_inode: Option<u64>,
}

/// What `/proc/PID/{stat,status,cmdline,exe,limits}` say.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessInfo {
    /// The pid.
    pub pid: i32,
    /// `/proc/PID/exe`, when readable.
    pub exe: Option<String>,
    /// The command line words.
    pub cmdline: Vec<String>,
    /// `/proc/PID/comm`.
    pub comm: String,
    /// Effective uid (from `status`).
    pub uid: u32,
    /// The state letter (`R`, `S`, `Z`, …).
    pub state: char,
    /// Start time, clock ticks after boot (`stat` field 22): with the pid, it names one
    /// process for its whole life.
    pub start_ticks: u64,
    /// Seconds since the process started.
    pub uptime_s: f64,
    /// `Max open files` soft and hard limits (`u64::MAX` for unlimited).
    pub nofile: (u64, u64),
}

fn map_error(pid: i32, what: &str, error: io::Error) -> Error {
    match error.raw_os_error() {
        Some(libc::ENOENT | libc::ESRCH) => Error::NoSuchProcess { pid },
        Some(libc::EACCES | libc::EPERM) => Error::PermissionDenied {
            what: format!("reading /proc/{pid}/{what}"),
        },
        _ => Error::Io {
            what: format!("reading /proc/{pid}/{what}"),
            error,
        },
    }
}

fn read(pid: i32, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(format!("/proc/{pid}/{what}")).map_err(|e| map_error(pid, what, e))
}

/// Every open fd of `pid`, in fd order, with socket inodes. An fd closed while the directory is
/// read is left out.
pub fn fds(pid: i32) -> Result<Vec<FdEntry>, Error> {
    let dir = PathBuf::from(format!("/proc/{pid}/fd"));
    let entries = std::fs::read_dir(&dir).map_err(|e| map_error(pid, "fd", e))?;
    let mut numbers = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| map_error(pid, "fd", e))?;
        if let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        {
            numbers.push(fd);
        }
    }
    numbers.sort_unstable();
    let mut out = Vec::with_capacity(numbers.len());
    for fd in numbers {
        match std::fs::read_link(dir.join(fd.to_string())) {
            Ok(target) => out.push(FdEntry {
                fd,
                socket_inode: socket_inode(&target.to_string_lossy()),
            }),
            // Closed since the directory was read.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(map_error(pid, &format!("fd/{fd}"), e)),
        }
    }
    Ok(out)
}

/// `socket:[12345]` → 12345.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The state letter and start time (clock ticks after boot) from `/proc/PID/stat`.
pub fn state_and_start(pid: i32) -> Result<(char, u64), Error> {
    let stat = String::from_utf8_lossy(&read(pid, "stat")?).into_owned();
    // The command name is in parentheses and may itself contain ") ": split at the LAST one.
    let after_comm = stat.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // after_comm starts at field 3 (state); starttime is field 22.
    let state = fields.first().and_then(|s| s.chars().next()).unwrap_or('?');
    let start_ticks: u64 = fields.get(19).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok((state, start_ticks))
}

/// Reads the process's identity, uptime and fd limits.
pub fn process_info(pid: i32) -> Result<ProcessInfo, Error> {
    let (state, start_ticks) = state_and_start(pid)?;
    let status = String::from_utf8_lossy(&read(pid, "status")?).into_owned();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(u32::MAX);
    let cmdline = read(pid, "cmdline")?
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    let comm = String::from_utf8_lossy(&read(pid, "comm")?)
        .trim_end()
        .to_string();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let nofile = parse_nofile(&String::from_utf8_lossy(&read(pid, "limits")?));
    let system_uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let started = start_ticks as f64 / sys::clock_ticks_per_second() as f64;
    Ok(ProcessInfo {
        pid,
        exe,
        cmdline,
        comm,
        uid,
        state,
        start_ticks,
        uptime_s: (system_uptime - started).max(0.0),
        nofile,
    })
}

/// The `Max open files` line of `/proc/PID/limits`.
fn parse_nofile(limits: &str) -> (u64, u64) {
    let value = |v: Option<&str>| match v {
        Some("unlimited") | None => u64::MAX,
        Some(n) => n.parse().unwrap_or(u64::MAX),
    };
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .map(|rest| {
            let mut words = rest.split_whitespace();
            (value(words.next()), value(words.next()))
        })
        .unwrap_or((u64::MAX, u64::MAX))
}

/// True when a line of `/proc/PID/maps` mentions `needle` (e.g. `libfdguard.so`).
pub fn maps_mention(pid: i32, needle: &str) -> Result<bool, Error> {
    let maps = read(pid, "maps")?;
    Ok(String::from_utf8_lossy(&maps)
        .lines()
        .any(|l| l.contains(needle)))
}

/// Inodes listed in `/proc/PID/net/<table>` for the tables whose last column is the inode
/// (`netlink`, `packet`): names the family of sockets no sock_diag dump here covers.
pub fn table_inodes(pid: i32, table: &str) -> Result<Vec<u64>, Error> {
    let text = read(pid, &format!("net/{table}"))?;
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().last()?.parse().ok())
        .collect())
}

/// True when `pid` lives in another network namespace than we do: the sock_diag dumps then
/// cannot see its sockets. `None` when it cannot be told.
pub fn other_network_namespace(pid: i32) -> Option<bool> {
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    let ours = std::fs::read_link("/proc/self/ns/net").ok()?;
    Some(theirs != ours)
}

/// Our effective uid (to word permission errors).
pub fn effective_uid() -> u32 {
    sys::effective_uid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn socket_links() {
        assert_eq!(socket_inode("socket:[4242]"), Some(4242));
        assert_eq!(socket_inode("pipe:[4242]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    #[test]
    fn limits_lines() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             63704                63704                processes \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(parse_nofile(text), (1024, 524288));
        assert_eq!(
            parse_nofile(
                "Max open files            unlimited            unlimited            files\n"
            ),
            (u64::MAX, u64::MAX)
        );
    }

    #[test]
    fn our_own_fds_and_identity() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", socket.as_raw_fd()))
            .unwrap()
            .ino();
        let pid = std::process::id() as i32;
        let fds = fds(pid).unwrap();
        assert!(
            fds.iter()
                .any(|f| f.fd == socket.as_raw_fd() && f.socket_inode == Some(inode))
        );
        assert!(fds.windows(2).all(|w| w[0].fd < w[1].fd));
        let info = process_info(pid).unwrap();
        assert_eq!(info.uid, effective_uid());
        assert!(info.start_ticks > 0);
        assert!(info.nofile.0 > 0);
        assert_eq!(other_network_namespace(pid), Some(false));
        // Every process has netlink tables to read (possibly empty).
        assert!(table_inodes(pid, "netlink").is_ok());
    }

    #[test]
    fn a_pid_that_cannot_exist() {
        // pid_max is at most 2^22.
        assert!(matches!(fds(1 << 23), Err(Error::NoSuchProcess { .. })));
        assert!(matches!(
            process_info(1 << 23),
            Err(Error::NoSuchProcess { .. })
        ));
    }
}
