//! `fdguard inspect` when it cannot look: each case gets one clear line on stderr and its own
//! documented exit status (cli/README.md): 3 no such process, 4 permission denied, 5 a kernel
//! without socket diagnostics, 2 a usage error.

mod common;

use common::subjects::Subject;
use common::{assert_status, compile_c, fdguard, scratch, stderr, stdout};

fn one_error_line(output: &std::process::Output) -> String {
    let err = stderr(output);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got:\n{err}");
    assert!(lines[0].starts_with("fdguard: error: "), "{err}");
    assert!(stdout(output).is_empty(), "nothing on stdout on failure");
    lines[0].to_string()
}

#[test]
fn a_pid_that_does_not_exist() {
    // pid_max is at most 2^22 on Linux.
    let output = fdguard()
        .args(["inspect", &(1 << 23).to_string()])
        .output()
        .unwrap();
    assert_status(&output, 3);
    assert_eq!(
        one_error_line(&output),
        format!("fdguard: error: no process with pid {}", 1 << 23)
    );
    let output = fdguard().args(["inspect", "0"]).output().unwrap();
    assert_status(&output, 2);
    let output = fdguard().args(["inspect"]).output().unwrap();
    assert_status(&output, 2);
}

#[test]
fn a_process_the_caller_may_not_inspect() {
    let dir = scratch("inspect-perm");
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    let output = if is_root {
        // Root's own child, inspected by fdguard running as nobody. The binary is copied to the
        // scratch dir first: a checkout under /root is not reachable by nobody.
        let as_nobody = compile_c("as_nobody.c", &dir, &[]);
        let binary = dir.join("fdguard");
        std::fs::copy(env!("CARGO_BIN_EXE_fdguard"), &binary).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let target = Subject::start(std::path::Path::new("sleep"), &["30".to_string()]);
        std::process::Command::new(&as_nobody)
            .arg(&binary)
            .args(["inspect", &target.pid.to_string()])
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    } else {
        // An unprivileged runner: pid 1 (or the kernel's kthreadd, 2) belongs to root.
        let root_pid = ["1", "2"]
            .into_iter()
            .find(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
                    s.lines()
                        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
                })
            })
            .expect("this test needs root, or a process owned by root (pid 1 or 2) to be visible");
        fdguard().args(["inspect", root_pid]).output().unwrap()
    };
    assert_status(&output, 4);
    let line = one_error_line(&output);
    assert!(line.contains("permission denied reading /proc/"), "{line}");
    assert!(line.contains("belongs to uid 0"), "{line}");
    assert!(line.contains("as the process's user or as root"), "{line}");
}

#[test]
fn a_kernel_without_socket_diagnostics() {
    let dir = scratch("inspect-nodiag");
    let wrapper = compile_c("no_sock_diag.c", &dir, &[]);
    let target = Subject::start(std::path::Path::new("sleep"), &["30".to_string()]);
    let output = std::process::Command::new(&wrapper)
        .arg(env!("CARGO_BIN_EXE_fdguard"))
        .args(["inspect", &target.pid.to_string()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_status(&output, 5);
    let line = one_error_line(&output);
    assert!(
        line.contains(
            "this kernel does not provide socket diagnostics (netlink NETLINK_SOCK_DIAG)"
        ),
        "{line}"
    );
    assert!(line.contains("CONFIG_INET_DIAG"), "{line}");
}

#[test]
fn several_pids_report_the_ones_that_can_be_inspected() {
    let target = Subject::start(std::path::Path::new("sleep"), &["30".to_string()]);
    let missing = (1 << 23).to_string();
    let output = fdguard()
        .args(["inspect", &target.pid.to_string(), &missing, "--json"])
        .output()
        .unwrap();
    assert_status(&output, 3);
    let reports: Vec<fdguard_report::Report> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].pid, target.pid);
    assert!(reports[0].sockets.is_empty(), "sleep holds no socket");
    assert!(stderr(&output).contains(&format!("no process with pid {missing}")));
}
