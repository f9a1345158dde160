//! `fdguard run --metrics-dir DIR` end to end with the REAL libfdguard.so: the directory is
//! created, the program's metrics file appears there while it runs (counting its marker
//! connection to the backend this test opens), and goes when it exits.

mod common;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{compile_c, fdguard, library, scratch};

#[test]
fn run_writes_metrics_while_the_program_lives() {
    let dir = scratch("run-metrics");
    let holder = compile_c("holder.c", &dir, &[]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let pidfile = dir.join("holder.pid");
    let metrics = dir.join("metrics/not/yet/there");
    let mut run = fdguard()
        .arg("run")
        .arg("--lib")
        .arg(library())
        .arg("--report")
        .arg(format!("{}/", dir.join("reports").display()))
        .arg("--metrics-dir")
        .arg(&metrics)
        .arg("--watch-ms")
        .arg("100")
        .arg("--quiet")
        .arg("--")
        .arg(&holder)
        .arg(port.to_string())
        .arg(&pidfile)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(9);
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the holder did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    let file = metrics.join(format!("fdguard-{pid}.prom"));
    let backend = format!("backend=\"127.0.0.1:{port}\"}} 1");
    let text = loop {
        if let Ok(text) = std::fs::read_to_string(&file)
            && text.contains(&backend)
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not count the marker connection in time",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(text.contains("program=\"holder\""), "{text}");
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(5), "the holder's own status");
    assert!(!file.exists(), "the file went with the process");
    let _ = std::fs::remove_dir_all(&dir);
}
