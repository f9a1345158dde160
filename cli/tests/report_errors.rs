//! `fdguard report PID` against processes that cannot answer: clear messages, status 1.
//! (Against a process that can answer: tests/with_library.rs.)

mod common;

use std::process::{Command, Stdio};

use common::{assert_status, run, stderr};

#[test]
fn nonexistent_pid() {
    // pid_max is at most 2^22 on Linux: this pid cannot exist.
    let output = run(&["report", "5000000"]);
    assert_status(&output, 1);
    assert_eq!(
        stderr(&output),
        "fdguard: error: no process with pid 5000000\n"
    );
}

#[test]
fn live_process_without_the_library() {
    let mut sleeper = Command::new("sleep")
        .arg("5")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let output = run(&["report", &sleeper.id().to_string()]);
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    assert_status(&output, 1);
    let message = stderr(&output);
    assert!(
        message.contains(&format!(
            "process {} does not have libfdguard.so loaded; start it with `fdguard run -- …`",
            sleeper.id()
        )),
        "{message}"
    );
}

#[test]
fn usage_errors() {
    assert_status(&run(&["report"]), 2);
    assert_status(&run(&["report", "abc"]), 2);
    assert_status(&run(&["report", "0"]), 2);
    assert_status(&run(&["report", "1", "--timeout", "soon"]), 2);
    assert_status(&run(&["report", "1", "--format", "xml"]), 2);
}
