//! Issue 6, internal faults: a panic inside a hook or inside report building, and binaries
//! whose symbols are gone or whose debug info is garbage. fdguard says so in one stderr line
//! (or not at all), the host's own calls keep working, and reports still come out with
//! module+offset frames where names cannot be had.

mod common;

use common::{Outcome, Run, compile, compile_with, host_ok, read_reports};
use fdguard_report::{Report, Trigger};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn one_line(out: &Outcome, what: &str) -> String {
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: exactly one stderr line:\n{}",
        out.stderr
    );
    assert!(lines[0].starts_with("fdguard: "), "{what}: {}", lines[0]);
    assert!(lines[0].contains("disabled"), "{what}: {}", lines[0]);
    lines[0].to_string()
}

#[test]
fn a_panic_in_a_hook_costs_one_line_and_the_host_keeps_working() {
    let host = compile("rel_host");
    let out = Run::new(&host)
        .env("FDGUARD_TEST_FAULT", "hook-panic")
        .run();
    host_ok(&out, "hook-panic");
    let line = one_line(&out, "hook-panic");
    assert!(line.contains("panic"), "{line}");
    // Disabled from the first socket on: nothing is tracked, nothing is reported.
    assert!(
        files_in(&out.report_dir).is_empty(),
        "{:?}",
        files_in(&out.report_dir)
    );
}

#[test]
fn a_panic_while_building_a_report_costs_one_line_and_no_file() {
    let host = compile("rel_host");
    // On the signal (fdguard thread) and, with no signal, at exit (atexit, exiting thread).
    for signal in ["SIGUSR1", "none"] {
        let out = Run::new(&host)
            .env("FDGUARD_TEST_FAULT", "report-panic")
            .env("FDGUARD_SIGNAL", signal)
            .run();
        host_ok(&out, signal);
        one_line(&out, signal);
        assert!(
            files_in(&out.report_dir).is_empty(),
            "{signal}: no report, no temp file: {:?}",
            files_in(&out.report_dir)
        );
    }
    // At _exit from a signal handler: the exit report is built on the fdguard thread.
    let bin = compile("rel_exit_in_handler");
    let out = Run::new(&bin)
        .arg("sleep")
        .env("FDGUARD_TEST_FAULT", "report-panic")
        .timeout(Duration::from_secs(20))
        .run();
    assert_eq!(out.code(), Some(7), "{}", out.stderr);
    one_line(&out, "_exit");
    assert!(files_in(&out.report_dir).is_empty());
}

/// Runs `bin` (a copy of rel_host) and returns its exit report.
fn exit_report_of(bin: &Path) -> Report {
    let out = Run::new(bin).run();
    host_ok(&out, &bin.display().to_string());
    assert_eq!(out.stderr, "", "{}", bin.display());
    let reports = read_reports(&out.report_dir);
    assert_eq!(reports.len(), 2, "signal and exit report");
    reports
        .into_iter()
        .find(|r| r.trigger == Trigger::Exit)
        .unwrap()
}

/// The frames of `report`'s sockets that lie in `module`.
fn frames_in<'a>(report: &'a Report, module: &Path) -> Vec<&'a fdguard_report::Frame> {
    let module = module.to_string_lossy();
    report
        .sockets
        .iter()
        .flat_map(|s| s.stack.iter())
        .filter(|f| f.module.as_deref() == Some(&*module))
        .collect()
}

fn copy_of(bin: &Path, name: &str) -> PathBuf {
    let copy = bin.with_file_name(name);
    std::fs::copy(bin, &copy).unwrap();
    copy
}

fn run_tool(tool: &str, args: &[&std::ffi::OsStr]) {
    let status = Command::new(tool)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{tool}: {e} (binutils is needed)"));
    assert!(status.success(), "{tool} {args:?}");
}

#[test]
fn a_stripped_binary_still_gets_reports_with_module_and_offset_frames() {
    let host = compile("rel_host");
    let stripped = copy_of(&host, "rel_host-stripped");
    run_tool("strip", &[stripped.as_os_str()]);
    let report = exit_report_of(&stripped);
    assert_eq!(report.sockets.len(), 3);
    let frames = frames_in(&report, &stripped);
    assert!(
        frames.len() >= 3,
        "the program's own frames are kept: {frames:?}"
    );
    for f in &frames {
        assert!(f.module_offset.is_some(), "{f:?}");
        assert!(
            f.file.is_none() && f.line.is_none(),
            "no debug info left: {f:?}"
        );
        assert!(
            !f.function
                .as_deref()
                .is_some_and(|n| n == "host_client" || n == "host_listener"),
            "names cannot survive strip: {f:?}"
        );
    }
}

#[test]
fn a_binary_with_garbage_debug_info_still_gets_reports() {
    let host = compile_with("rel_host", &["-gdwarf-5"]);
    let corrupt = copy_of(&host, "rel_host-corrupt-debug");
    let dir = common::temp_dir("garbage-dwarf");
    // Same-size random bytes over every DWARF section the binary has.
    let sections = String::from_utf8(
        Command::new("objdump")
            .arg("-h")
            .arg(&corrupt)
            .output()
            .expect("objdump (binutils) is needed")
            .stdout,
    )
    .unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut replaced = 0;
    for line in sections.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() < 3 || !words[1].starts_with(".debug_") {
            continue;
        }
        let size = usize::from_str_radix(words[2], 16).unwrap();
        let bytes: Vec<u8> = (0..size)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let file = dir.join(words[1].trim_start_matches('.'));
        std::fs::write(&file, bytes).unwrap();
        let arg = format!("{}={}", words[1], file.display());
        run_tool(
            "objcopy",
            &[
                "--update-section".as_ref(),
                arg.as_ref(),
                corrupt.as_os_str(),
            ],
        );
        replaced += 1;
    }
    assert!(replaced >= 3, "debug sections replaced: {sections}");
    let report = exit_report_of(&corrupt);
    assert_eq!(report.sockets.len(), 3);
    let frames = frames_in(&report, &corrupt);
    assert!(frames.len() >= 3, "{frames:?}");
    for f in &frames {
        assert!(f.module_offset.is_some(), "{f:?}");
    }
}
