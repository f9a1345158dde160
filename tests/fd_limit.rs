//! Issue 12, item 5: at the fd limit — exactly when users need fdguard — a report still tells
//! the truth. Under `ulimit -n 64`, a daemon whose stderr is /dev/null fills its fd table with
//! sockets and asks for a report: the report file is created, its fd budget says 64 of 64, it
//! has the command line, and the creating function is named (fdguard keeps one descriptor in
//! reserve and releases it while a report runs). The old code said "0 of 64", had neither the
//! command line nor function names, and, unable to create its file with stderr gone, wrote no
//! report at all.

mod common;

use common::{Run, compile, functions, host_ok};
use fdguard_report::Trigger;

#[test]
fn a_report_at_the_fd_limit_is_written_whole_and_true() {
    let bin = compile("fdlimit");
    let out = Run::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 64 && exec '{}' --marker-arg",
            bin.display()
        ))
        .run();
    host_ok(&out, "ulimit -n 64");
    let truth = &out.json_lines()[0];
    assert_eq!(truth["errno"], libc::EMFILE, "{truth}");
    let opened = truth["opened"].as_u64().unwrap();
    let first = truth["first"].as_i64().unwrap() as i32;
    let report = out
        .reports
        .iter()
        .find(|r| r.trigger == Trigger::Signal)
        .unwrap_or_else(|| panic!("no signal report written; stderr was /dev/null"));
    let budget = &report.fd_budget;
    assert_eq!((budget.limit_soft, budget.limit_hard), (64, 64));
    assert_eq!(budget.open_fds, 64, "every slot is taken: {budget:?}");
    assert_eq!(budget.sockets_open, opened, "{budget:?}");
    assert!(
        report.cmdline.iter().any(|a| a == "--marker-arg"),
        "{:?}",
        report.cmdline
    );
    let socket = report.sockets.iter().find(|s| s.fd == first).unwrap();
    assert!(
        functions(socket).iter().any(|f| f == "open_until_full"),
        "function names at the limit: {:?}",
        socket.stack
    );
    // The exit report was written too, with the same truth.
    let exit = out.exit_report();
    assert_eq!(exit.fd_budget.open_fds, 64);
}
