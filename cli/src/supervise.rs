//! `fdguard run`'s hold on the whole process tree, not just the process it started.
//!
//! - **Daemons that detach** (`redis-server --daemonize yes`: fork, the parent exits, the child
//!   calls setsid and lives on) would leave `fdguard run` summarising, and removing an empty
//!   report directory, before the daemon has written anything. `fdguard run` makes itself a
//!   *child subreaper* (`PR_SET_CHILD_SUBREAPER`): every orphaned descendant is re-parented to
//!   it instead of init, so it can wait until the whole tree has exited ([`Tree::wait`]).
//!   While it waits it says so once, with the pids; SIGINT, SIGTERM and SIGHUP sent to
//!   `fdguard` are forwarded to what is left (a detached daemon is in no terminal's process
//!   group, so ^C reaches it only that way).
//! - **Which processes ran**: the tree is sampled every [`SCAN_INTERVAL`] (children lists in
//!   `/proc/PID/task/*/children`, bounded by `control::TREE_MAX`): each process's name, user,
//!   whether `libfdguard.so` was mapped, whether fdguard's thread ran (it did exactly when the
//!   process held a socket, or with `FDGUARD_EXIT_REPORT=always`), and how it ended when
//!   `fdguard run` reaped it. The summary says which processes wrote no report and why.
//!   Processes shorter than a sample can be missed; their reports are still listed.
//!
//! WARNING: the forwarding handler runs in signal context: it only touches atomics and calls
//! kill(2), getpgid(2) and getpgrp(2) (async-signal-safe system calls).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use crate::control;
use crate::signals::signal_name;

/// How often the tree is sampled while it runs.
pub const SCAN_INTERVAL: Duration = Duration::from_millis(50);
/// Most processes signals are forwarded to at once.
const FORWARD_MAX: usize = 32;

/// One process seen in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    /// Process id.
    pub pid: i32,
    /// Its name (`comm`) when last seen.
    pub name: String,
    /// Its effective uid when last seen.
    pub uid: u32,
    /// `libfdguard.so` was mapped.
    pub preloaded: bool,
    /// fdguard's thread was seen running (the process held a socket).
    pub had_thread: bool,
    /// Its wait status, when `fdguard run` reaped it (the launched process, or an orphan
    /// re-parented to it); `None` when its own parent reaped it.
    pub status: Option<i32>,
    /// Samples in which `libfdguard.so` was looked for (bounded for processes without it).
    looked: u32,
}

/// The processes of one `fdguard run`, by pid.
#[derive(Debug, Default)]
pub struct Tree {
    /// Every process seen, the launched one included.
    pub procs: BTreeMap<i32, Proc>,
}

/// Makes this process a child subreaper: orphaned descendants become its children.
pub fn become_subreaper() {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

fn status_field(status: &str, field: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .map(|v| v.trim().to_string())
}

impl Tree {
    /// Samples the tree below this process.
    pub fn scan(&mut self) {
        let me = std::process::id() as i32;
        for pid in control::tree(me).into_iter().filter(|&p| p != me) {
            let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                continue;
            };
            let name = status_field(&status, "Name:").unwrap_or_default();
            let uid = status_field(&status, "Uid:")
                .and_then(|v| v.split_whitespace().nth(1)?.parse().ok())
                .unwrap_or(u32::MAX);
            let entry = self.procs.entry(pid).or_insert_with(|| Proc {
                pid,
                name: name.clone(),
                uid,
                preloaded: false,
                had_thread: false,
                status: None,
                looked: 0,
            });
            if status_field(&status, "State:").is_some_and(|s| s.starts_with('Z')) {
                continue;
            }
            entry.name = name;
            entry.uid = uid;
            if !entry.preloaded && entry.looked < 20 {
                entry.looked += 1;
                entry.preloaded = std::fs::read_to_string(format!("/proc/{pid}/maps"))
                    .is_ok_and(|m| m.contains(crate::preload::LIBRARY_FILE_NAME));
            }
            if entry.preloaded && !entry.had_thread {
                entry.had_thread = control::thread_running(pid);
            }
        }
    }

    /// Waits until `root` (the launched process) and every process it left behind have
    /// exited, reaping them, sampling the tree meanwhile. Returns `root`'s wait status.
    pub fn wait(&mut self, root: i32, quiet: bool) -> i32 {
        let mut root_status = None;
        let mut announced = false;
        loop {
            self.scan();
            let mut no_children = false;
            loop {
                let mut status = 0;
                // SAFETY: waitpid with a valid out-pointer; WNOHANG never blocks.
                let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
                if pid == 0 {
                    break;
                }
                if pid < 0 {
                    let err = std::io::Error::last_os_error().raw_os_error();
                    if err == Some(libc::EINTR) {
                        continue;
                    }
                    no_children = true;
                    break;
                }
                if let Some(p) = self.procs.get_mut(&pid) {
                    p.status = Some(status);
                } else {
                    self.procs.insert(
                        pid,
                        Proc {
                            pid,
                            name: String::new(),
                            uid: u32::MAX,
                            preloaded: false,
                            had_thread: false,
                            status: Some(status),
                            looked: 0,
                        },
                    );
                }
                if pid == root {
                    root_status = Some(status);
                }
            }
            if let Some(status) = root_status {
                if no_children {
                    forward::set_targets(&[]);
                    return status;
                }
                let left = self.direct_children();
                forward::set_targets(&left);
                if !announced && !left.is_empty() {
                    announced = true;
                    if !quiet {
                        let names: Vec<String> = left
                            .iter()
                            .take(8)
                            .map(|pid| match self.procs.get(pid) {
                                Some(p) if !p.name.is_empty() => format!("{pid} ({})", p.name),
                                _ => pid.to_string(),
                            })
                            .collect();
                        eprintln!(
                            "fdguard: process {root} exited ({}); waiting for the {} process(es) \
                             it left running: {}{} (SIGINT/SIGTERM to fdguard is passed on to them)",
                            describe_status(status),
                            left.len(),
                            names.join(", "),
                            if left.len() > 8 { ", …" } else { "" }
                        );
                    }
                }
            }
            std::thread::sleep(SCAN_INTERVAL);
        }
    }

    /// Our live children (after the launched process exited: the processes it left behind,
    /// re-parented to us).
    fn direct_children(&self) -> Vec<i32> {
        let me = std::process::id();
        let mut out: Vec<i32> = std::fs::read_dir(format!("/proc/{me}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .flat_map(|text| {
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok())
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Distinct effective uids of the processes seen.
    pub fn uids(&self) -> Vec<u32> {
        let mut uids: Vec<u32> = self
            .procs
            .values()
            .map(|p| p.uid)
            .filter(|&u| u != u32::MAX)
            .collect();
        uids.sort_unstable();
        uids.dedup();
        uids
    }
}

/// `exit status 3`, `killed by SIGKILL`.
pub fn describe_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by {}", signal_name(libc::WTERMSIG(status)))
    } else {
        format!("wait status {status}")
    }
}

/// Forwarding SIGINT, SIGTERM and SIGHUP to the launched process, and once it has exited, to
/// the processes it left behind, so that `kill <fdguard pid>` (a supervisor stopping the
/// service) reaches the program and fdguard outlives it long enough to summarise its exit
/// report.
pub mod forward {
    use super::*;

    /// The processes signals go to (0: unused slot; never signal pid 0, our process group).
    static TARGETS: [AtomicI32; FORWARD_MAX] = [const { AtomicI32::new(0) }; FORWARD_MAX];
    /// A signal that arrived before the child existed, delivered right after spawn.
    static PENDING: AtomicI32 = AtomicI32::new(0);

    const FORWARDED: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

    extern "C" fn forward(
        signal: libc::c_int,
        info: *mut libc::siginfo_t,
        _context: *mut libc::c_void,
    ) {
        let code = if info.is_null() {
            0
        } else {
            // SAFETY: with SA_SIGINFO the kernel passes a valid, readable siginfo_t (and the
            // null case is excluded above).
            unsafe { (*info).si_code }
        };
        let mut any = false;
        for target in &TARGETS {
            let pid = target.load(Ordering::SeqCst);
            if pid <= 0 {
                continue;
            }
            any = true;
            // A terminal's ^C / hangup (SI_KERNEL) already went to the whole foreground process
            // group: forwarding it to a process still in our group would deliver it twice
            // (Python would raise a second KeyboardInterrupt inside its cleanup).
            // SAFETY: getpgid/getpgrp are plain system calls without memory arguments.
            let same_group = unsafe { libc::getpgid(pid) == libc::getpgrp() };
            if code == libc::SI_KERNEL && same_group {
                continue;
            }
            // SAFETY: kill(2) has no memory arguments; pid > 0 so only that process is
            // signalled.
            unsafe { libc::kill(pid, signal) };
        }
        if !any {
            PENDING.store(signal, Ordering::SeqCst);
        }
    }

    /// Installs the handler for the forwarded signals (once per run).
    pub fn install() {
        for signal in FORWARDED {
            // SAFETY: an all-zero sigaction is a valid initial value (empty mask, no flags).
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = forward as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            // SAFETY: `action` is initialised, its mask is emptied by sigemptyset, and the
            // handler only performs async-signal-safe operations (see the module comment).
            unsafe {
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
    }

    /// Sets the processes signals go to (at most [`FORWARD_MAX`]) and delivers a signal that
    /// arrived while there were none.
    pub fn set_targets(pids: &[i32]) {
        for (i, target) in TARGETS.iter().enumerate() {
            target.store(
                pids.get(i).copied().filter(|&p| p > 0).unwrap_or(0),
                Ordering::SeqCst,
            );
        }
        if pids.is_empty() {
            return;
        }
        let pending = PENDING.swap(0, Ordering::SeqCst);
        if pending != 0 {
            eprintln!(
                "fdguard: forwarding {} that arrived during start-up",
                signal_name(pending)
            );
            for &pid in pids.iter().take(FORWARD_MAX).filter(|&&p| p > 0) {
                // SAFETY: kill(2) has no memory arguments; pid > 0.
                unsafe { libc::kill(pid, pending) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_like_a_shell() {
        assert_eq!(describe_status(3 << 8), "exit status 3");
        assert_eq!(describe_status(libc::SIGKILL), "killed by SIGKILL");
    }
}
