//! A process that exits while `fdguard inspect` looks at it must give a clear "exited" error
//! (exit status 3), never a half-read report, a report of another process that reused the
//! pid, or a crash.
//!
//! The deterministic cases use the CLI's library with a hook at each phase of the look, and
//! SIGKILL the (real) process right there: after the fd list was read, and after everything
//! was read. A zombie (exited, not yet reaped) is refused up front. A bounded stress run then
//! ends the process at arbitrary moments through the real binary: every outcome is a valid
//! report or the clean error.

mod common;

use std::time::Duration;

use common::subjects::{Server, Subject};
use common::{compile_c, fdguard, scratch, stderr};
use fdguard_cli::inspect::collect::Phase;
use fdguard_cli::inspect::{Judging, inspect_with};

fn start_leaker(
    leaker: &std::path::Path,
    dir: &std::path::Path,
    backend: &Server,
    name: &str,
) -> Subject {
    let pidfile = dir.join(format!("{name}.pid"));
    let mut subject = Subject::start(
        leaker,
        &[
            backend.port.to_string(),
            "20".to_string(),
            "0".to_string(),
            pidfile.display().to_string(),
        ],
    );
    subject.wait_for_file(&pidfile);
    subject
}

fn exits_at(phase: Phase) {
    let dir = scratch("inspect-vanish");
    let backend = Server::hanging_up();
    let leaker = compile_c("leaker.c", &dir, &[]);
    let mut subject = start_leaker(&leaker, &dir, &backend, "leaker");
    let pid = subject.pid;
    let child = &mut subject.child;
    let mut killed = false;
    let result = inspect_with(pid, &Judging::default(), &mut |at| {
        if at == phase {
            child.kill().unwrap();
            // Reaped: the pid may now be reused, and the pidfd must still tell.
            child.wait().unwrap();
            killed = true;
        }
    });
    assert!(killed, "the hook ran");
    let failure = result.expect_err("a process that exited mid-inspection gives no report");
    assert_eq!(failure.exit_code, 3);
    assert_eq!(
        failure.message,
        format!("process {pid} exited during the inspection; nothing to report")
    );
}

#[test]
fn exits_after_its_fds_were_listed() {
    exits_at(Phase::FdsListed);
}

#[test]
fn exits_after_everything_was_read() {
    exits_at(Phase::Read);
}

#[test]
fn a_zombie_is_refused() {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    // Not reaped: wait for it to become a zombie.
    common::subjects::wait_until("the child to exit", common::subjects::DEADLINE, || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .filter(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
    });
    let output = fdguard()
        .args(["inspect", &pid.to_string()])
        .output()
        .unwrap();
    child.wait().unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!("process {pid} has exited (a zombie")),
        "{}",
        stderr(&output)
    );
}

#[test]
fn ending_at_arbitrary_moments_gives_a_report_or_the_clean_error() {
    let dir = scratch("inspect-vanish-stress");
    let backend = Server::hanging_up();
    let leaker = compile_c("leaker.c", &dir, &[]);
    let mut outcomes = (0, 0);
    for round in 0..8u64 {
        let mut subject = start_leaker(&leaker, &dir, &backend, &format!("leaker{round}"));
        let pid = subject.pid;
        let inspect = fdguard()
            .args(["inspect", &pid.to_string(), "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Somewhere between 0 and ~4 ms into the inspection.
        std::thread::sleep(Duration::from_micros(round * 500));
        subject.child.kill().unwrap();
        subject.child.wait().unwrap();
        let output = inspect.wait_with_output().unwrap();
        match output.status.code() {
            Some(0) => {
                let report: fdguard_report::Report = serde_json::from_slice(&output.stdout)
                    .unwrap_or_else(|e| panic!("round {round}: exit 0 without a report: {e}"));
                assert_eq!(report.pid, pid);
                outcomes.0 += 1;
            }
            Some(3) => {
                let err = stderr(&output);
                assert!(
                    err.contains("exited during the inspection")
                        || err.contains("no process with pid")
                        || err.contains("has exited (a zombie"),
                    "round {round}: {err}"
                );
                assert!(output.stdout.is_empty());
                outcomes.1 += 1;
            }
            other => panic!("round {round}: exit {other:?}: {}", stderr(&output)),
        }
    }
    assert_eq!(outcomes.0 + outcomes.1, 8);
}
