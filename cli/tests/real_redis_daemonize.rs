//! Issue 11, item 3, on a real redis (Debian's `redis-server`) started with
//! `--daemonize yes`: the process `fdguard run` started forks and exits at once, and the
//! daemon lives on in a new session with its stdio on /dev/null. `fdguard run` (a child
//! subreaper) waits for it instead of summarising — and removing its report directory — at
//! once, says what it is waiting for, and lists the daemon's exit report after SHUTDOWN.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use common::servers::{free_port, has_fdguard_thread, program, read_pid, wait_for};
use common::{assert_status, fdguard, library, scratch, stderr};
use fdguard_report::{Report, Trigger};

fn command(stream: &mut TcpStream, line: &str) -> String {
    stream.write_all(line.as_bytes()).unwrap();
    let mut buf = [0u8; 256];
    let n = stream.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn a_daemon_that_detaches_is_waited_for_and_its_report_listed() {
    let redis = program("/usr/bin/redis-server", "redis-server");
    let dir = scratch("redis");
    let port = free_port();
    let reports = dir.join("reports");
    let mut run = fdguard()
        .args(["run", "--lib", library().to_str().unwrap(), "--report"])
        .arg(format!("{}/", reports.display()))
        .arg("--")
        .arg(&redis)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
        ])
        .arg(&dir)
        .arg("--pidfile")
        .arg(dir.join("redis.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let daemon = wait_for("redis.pid", Duration::from_secs(20), || {
        read_pid(&dir.join("redis.pid")).filter(|&p| has_fdguard_thread(p))
    });
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    assert_eq!(command(&mut client, "PING\r\n"), "+PONG\r\n");
    // The launched process has exited (redis daemonized); fdguard run is still waiting.
    assert!(
        run.try_wait().unwrap().is_none(),
        "fdguard run did not wait"
    );

    // The daemon answers through the channel too.
    let output = fdguard()
        .args(["report", &daemon.to_string(), "--json"])
        .output()
        .unwrap();
    assert_status(&output, 0);
    let report: Report = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((report.pid, report.trigger), (daemon, Trigger::Request));

    command(&mut client, "SHUTDOWN NOSAVE\r\n");
    let output = common::wait_bounded(run, Duration::from_secs(30));
    assert_status(&output, 0);
    let message = stderr(&output);
    assert!(
        message.contains("waiting for the 1 process(es) it left running")
            && message.contains(&daemon.to_string()),
        "{message}"
    );
    let written: Vec<Report> = std::fs::read_dir(&reports)
        .unwrap_or_else(|e| panic!("{}: {e}\n{message}", reports.display()))
        .flatten()
        .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
        .collect();
    assert!(
        written
            .iter()
            .any(|r| r.pid == daemon && r.trigger == Trigger::Exit),
        "{written:#?}\n{message}"
    );
    assert!(
        message.contains(&format!("pid {daemon}, report #")),
        "{message}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
