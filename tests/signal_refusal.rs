//! Issue 12, item 8 (second half): fdguard never takes a signal whose disposition means
//! something to the kernel. With FDGUARD_SIGNAL=17 (SIGCHLD) and SIGCHLD inherited as SIG_IGN,
//! the host's children are still reaped by the kernel, exactly as without fdguard (the old
//! code replaced SIG_IGN with its handler: the children became zombies); one stderr line says
//! the signal was refused. 32 (glibc's own) is refused the same way.

mod common;

use common::{Run, compile, host_ok, lib_path};

/// The program sets SIGCHLD to SIG_IGN and execs itself: only that second image loads
/// fdguard (when `shim`), and finds the signal ignored.
fn run(shim: bool, signal: &str) -> common::Outcome {
    let bin = compile("sigchld");
    let mut run = Run::new(&bin)
        .arg("launch")
        .env("FDGUARD_SIGNAL", signal)
        .without_shim();
    if shim {
        run = run.env("REL_CHILD_PRELOAD", lib_path());
    }
    run.run()
}

#[test]
fn an_inherited_sig_ign_for_sigchld_is_left_alone() {
    let plain = run(false, "17");
    host_ok(&plain, "without fdguard");
    let truth = &plain.json_lines()[0];
    assert_eq!(
        truth["ignored"], 1,
        "the shell passed SIGCHLD ignored: {truth}"
    );
    assert_eq!(truth["waitpid"], serde_json::json!([-1, libc::ECHILD]));
    let out = run(true, "17");
    host_ok(&out, "with fdguard");
    assert_eq!(out.json_lines()[0], *truth);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].starts_with("fdguard: FDGUARD_SIGNAL: signal 17 is refused"),
        "{}",
        lines[0]
    );
    // The exit report is still written (FDGUARD_SIGNAL only concerns reports on signal).
    assert_eq!(out.exit_report().sockets.len(), 1);
}

#[test]
fn the_c_librarys_own_signal_is_refused_with_one_line() {
    let out = run(true, "32");
    host_ok(&out, "32");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(lines[0].contains("signal 32 is refused"), "{}", lines[0]);
}
