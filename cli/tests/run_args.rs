//! `fdguard run` argument handling and its checks before starting anything. None of these
//! needs the real library: they fail before it would be used, or use a dummy `--lib` with a
//! program that ignores LD_PRELOAD.

mod common;

use common::{assert_status, run, scratch, stderr};

#[test]
fn a_command_is_required() {
    assert_status(&run(&["run"]), 2);
    assert_status(&run(&["run", "--"]), 2);
}

#[test]
fn invalid_option_values_are_usage_errors() {
    for args in [
        &["run", "--format", "xml", "--", "true"][..],
        &["run", "--signal", "SIGKILL", "--", "true"],
        &["run", "--signal", "SIGNOPE", "--", "true"],
        &["run", "--dup-min", "1", "--", "true"],
        &["run", "--stack-depth", "65", "--", "true"],
        &["run", "--exitcode", "256", "--", "true"],
        &["run", "--exit-report", "sometimes", "--", "true"],
        &["run", "--grace-ms", "-1", "--", "true"],
    ] {
        let output = run(args);
        assert_status(&output, 2);
        assert!(
            stderr(&output).contains("error:"),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn missing_library_is_explained() {
    let output = run(&["run", "--lib", "/nonexistent/libfdguard.so", "--", "true"]);
    assert_status(&output, 1);
    let message = stderr(&output);
    assert!(
        message.contains("--lib names /nonexistent/libfdguard.so, which is not a file"),
        "{message}"
    );
    assert!(message.contains("cargo build -p fdguard"), "{message}");

    let output = common::fdguard()
        .env("FDGUARD_LIB", "/nonexistent/x.so")
        .args(["run", "--", "true"])
        .output()
        .unwrap();
    assert_status(&output, 1);
    assert!(
        stderr(&output).contains("FDGUARD_LIB names /nonexistent/x.so"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn unknown_command() {
    let output = run(&["run", "--lib", "/dev/null", "--", "fdguard-no-such-command"]);
    assert_status(&output, 1);
    assert!(
        stderr(&output).contains("command not found: fdguard-no-such-command"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn missing_suppressions_file() {
    let dir = scratch("run-suppressions");
    let lib = dir.join("libfdguard.so");
    std::fs::write(&lib, b"").unwrap();
    let output = run(&[
        "run",
        "--lib",
        lib.to_str().unwrap(),
        "--report",
        "stderr",
        "--suppressions",
        "/nonexistent.supp",
        "--",
        "true",
    ]);
    assert_status(&output, 1);
    assert!(
        stderr(&output).contains("--suppressions /nonexistent.supp: no such file"),
        "{}",
        stderr(&output)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn library_path_that_ld_preload_cannot_express() {
    let dir = scratch("run-colon");
    let lib = dir.join("a:b.so");
    std::fs::write(&lib, b"").unwrap();
    let output = run(&["run", "--lib", lib.to_str().unwrap(), "--", "true"]);
    assert_status(&output, 1);
    assert!(
        stderr(&output).contains("LD_PRELOAD cannot express"),
        "{}",
        stderr(&output)
    );
    std::fs::remove_dir_all(dir).unwrap();
}
