//! Issue 12, item 10 (report integrity): reports go where they were meant to, whole.
//! - A relative FDGUARD_REPORT is fixed at load: a later chdir() does not move reports.
//! - FDGUARD_REPORT=/dev/stderr is stderr (no regular file `/dev/stderr.<pid>`), and a FIFO
//!   gets the reports written into it (no `fifo.<pid>` file next to it).
//! - Temporary names are bounded and unpredictable: a final name close to NAME_MAX, or a file
//!   planted at the old predictable temporary name, no longer forces reports to stderr.
//! - A non-blocking stderr whose reader is slow gets the whole report, not the first 64 KiB.

mod common;

use common::{Run, compile, host_ok, read_reports, temp_dir};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

fn summaries(text: &str) -> usize {
    text.lines()
        .filter(|l| l.starts_with("SUMMARY: fdguard:"))
        .count()
}

#[test]
fn a_relative_report_path_is_fixed_at_load() {
    let start = temp_dir("relative");
    std::fs::create_dir(start.join("reports")).unwrap();
    let elsewhere = temp_dir("elsewhere");
    let out = Run::new(compile("report_paths"))
        .arg("chdir")
        .arg(&elsewhere)
        .current_dir(&start)
        .env("FDGUARD_REPORT", "reports/r-%p-%n.json")
        .run();
    host_ok(&out, "chdir");
    assert_eq!(out.stderr, "");
    assert_eq!(
        read_reports(&start.join("reports")).len(),
        2,
        "signal and exit"
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn dev_stderr_is_stderr_not_a_file_in_dev() {
    let out = Run::new(compile("report_paths"))
        .arg("plain")
        .env("FDGUARD_REPORT", "/dev/stderr")
        .env("FDGUARD_FORMAT", "text")
        .run();
    host_ok(&out, "/dev/stderr");
    let pid = out.json_lines()[0]["pid"].as_i64().unwrap();
    let stray = format!("/dev/stderr.{pid}");
    let created = Path::new(&stray).exists();
    let _ = std::fs::remove_file(&stray);
    assert!(!created, "{stray} was created");
    assert_eq!(summaries(&out.stderr), 2, "{}", out.stderr);
}

#[test]
fn a_fifo_gets_the_reports_written_into_it() {
    let dir = temp_dir("fifo");
    let fifo = dir.join("collector");
    let c_fifo = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
    // Read and write: there is always a reader, and reading never sees an end of file.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let (child, _) = Run::new(compile("report_paths"))
        .arg("plain")
        .env("FDGUARD_REPORT", &fifo)
        .env("FDGUARD_FORMAT", "text")
        .spawn();
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while summaries(&text) < 2 && Instant::now() < deadline {
        let mut buf = [0u8; 65536];
        match reader.read(&mut buf) {
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(summaries(&text), 2, "{text}");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["collector".to_string()],
        "no file next to the FIFO"
    );
}

#[test]
fn a_long_final_name_and_a_planted_temporary_file_do_not_block_the_report() {
    let dir = temp_dir("temp-names");
    // 240 characters + "-<pid>.json": under NAME_MAX (255), but the old temporary name
    // (".<name>.fdguard-tmp.<pid>.<n>") was over it.
    let long = format!("{}-%p.json", "r".repeat(240));
    let out = Run::new(compile("report_paths"))
        .arg("plain")
        .env("FDGUARD_REPORT", dir.join(&long))
        .run();
    host_ok(&out, "long name");
    assert_eq!(out.stderr, "");
    assert_eq!(
        read_reports(&dir).len(),
        1,
        "one file, written twice (signal, exit)"
    );

    // A file planted at the old, predictable temporary name of this process's first report.
    let planted = temp_dir("planted");
    let script = format!(
        "touch '{dir}/.r-'$$'-1.json.fdguard-tmp.'$$'.0' && exec '{bin}' plain",
        dir = planted.display(),
        bin = compile("report_paths").display()
    );
    let out = Run::new("/bin/sh")
        .args(["-c", &script])
        .env("FDGUARD_REPORT", planted.join("r-%p-%n.json"))
        .run();
    host_ok(&out, "planted");
    assert_eq!(out.stderr, "");
    assert_eq!(read_reports(&planted).len(), 2);
}

#[test]
fn a_non_blocking_stderr_gets_the_whole_report() {
    let (mut child, _) = Run::new(compile("report_paths"))
        .args(["many", "800"])
        .env("FDGUARD_REPORT", "stderr")
        // JSON: the text report names 800 sockets from one stack in a dozen lines.
        .env("FDGUARD_FORMAT", "json")
        .spawn();
    // Nobody reads for a while: the pipe fills at 64 KiB and the writer meets EAGAIN.
    std::thread::sleep(Duration::from_millis(1500));
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the host did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let text = reader.join().unwrap();
    assert!(
        text.len() > 65536,
        "a report bigger than a pipe: {} bytes",
        text.len()
    );
    let report: fdguard_report::Report =
        serde_json::from_str(&text).expect("the whole report, and nothing else, on stderr");
    let udp = report
        .sockets
        .iter()
        .filter(|s| s.sock_type == "dgram")
        .count();
    assert!(udp >= 800, "every socket listed: {udp}");
}
