//! `fdguard run` argument handling and its checks before starting anything: usage errors,
//! the library validated (`--lib` must be a real libfdguard.so), 127/126 for a command that is
//! missing or not executable (as a shell says), and no directory left behind or created at a
//! place nobody meant.

mod common;

use common::{assert_status, library, run, scratch, stderr};

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
        // --json is --format json, on every subcommand that has both.
        &["run", "--json", "--format", "text", "--", "true"],
        &["watch", "1", "--json", "--format", "text"],
        &["show", "-", "--json", "--format", "text"],
        &["diff", "a", "b", "--json", "--format", "text"],
        &["report", "1", "--json", "--format", "text"],
        &["inspect", "1", "--json", "--format", "text"],
        &["report", "1", "--signal=SIGKILL"],
        &["show", "-", "--fail-on", "leaks"],
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
fn a_library_that_is_not_libfdguard_is_refused() {
    for (lib, why) in [
        ("/bin/sh", "does not export fdguard_version"),
        ("/etc/hostname", "not an ELF file"),
    ] {
        let output = run(&["run", "--lib", lib, "--", "true"]);
        assert_status(&output, 1);
        let message = stderr(&output);
        assert!(
            message.contains(&format!("--lib names {lib}, which is not libfdguard.so"))
                && message.contains(why),
            "{message}"
        );
    }
}

#[test]
fn unknown_command_is_127_and_not_executable_is_126() {
    let lib = library();
    let lib = lib.to_str().unwrap();
    let dir = scratch("run-127");
    let output = common::fdguard()
        .current_dir(&dir)
        .args(["run", "--lib", lib, "--", "fdguard-no-such-command"])
        .output()
        .unwrap();
    assert_status(&output, 127);
    assert!(
        stderr(&output).contains("command not found: fdguard-no-such-command"),
        "{}",
        stderr(&output)
    );
    let script = dir.join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    for (target, why) in [
        (script.to_str().unwrap(), "permission denied"),
        (dir.to_str().unwrap(), "is a directory"),
    ] {
        let output = common::fdguard()
            .current_dir(&dir)
            .args(["run", "--lib", lib, "--", target])
            .output()
            .unwrap();
        assert_status(&output, 126);
        assert!(stderr(&output).contains(why), "{}", stderr(&output));
    }
    // Nothing was created: no fdguard-reports/ for a command that never ran.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, [std::ffi::OsString::from("not-executable.sh")]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn no_empty_report_directory_is_left_and_no_deep_one_created() {
    let lib = library();
    let lib = lib.to_str().unwrap();
    let dir = scratch("run-empty");
    // `true` creates no socket: no report, and the directories fdguard made are removed again
    // (the default one, and a --report DIR/ that did not exist).
    let output = common::fdguard()
        .current_dir(&dir)
        .args(["run", "--lib", lib, "--", "true"])
        .output()
        .unwrap();
    assert_status(&output, 0);
    let output = common::fdguard()
        .current_dir(&dir)
        .args(["run", "--lib", lib, "--report", "out/", "--", "true"])
        .output()
        .unwrap();
    assert_status(&output, 0);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing left in {}",
        dir.display()
    );
    // A directory whose parent is missing is a mistake, not something to create.
    let output = common::fdguard()
        .current_dir(&dir)
        .args([
            "run",
            "--lib",
            lib,
            "--report",
            "no/such/place/",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert_status(&output, 1);
    assert!(
        stderr(&output).contains("does not exist"),
        "{}",
        stderr(&output)
    );
    assert!(!dir.join("no").exists());
    // An existing directory the user named stays, reports or not.
    std::fs::create_dir(dir.join("kept")).unwrap();
    let output = common::fdguard()
        .current_dir(&dir)
        .args(["run", "--lib", lib, "--report", "kept/", "--", "true"])
        .output()
        .unwrap();
    assert_status(&output, 0);
    assert!(dir.join("kept").is_dir());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn missing_suppressions_file() {
    let dir = scratch("run-suppressions");
    let lib = library();
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
    std::os::unix::fs::symlink(library(), &lib).unwrap();
    let output = run(&["run", "--lib", lib.to_str().unwrap(), "--", "true"]);
    assert_status(&output, 1);
    assert!(
        stderr(&output).contains("LD_PRELOAD cannot express"),
        "{}",
        stderr(&output)
    );
    std::fs::remove_dir_all(dir).unwrap();
}
