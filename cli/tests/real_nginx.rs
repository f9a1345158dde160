//! Issue 11 on a real nginx (Debian's): a master and two workers that drop privileges to
//! `nobody`, under `fdguard run`.
//!
//! - `fdguard report --tree MASTER` gets all three reports through the request channel, and
//!   nginx logs no log reopening (SIGUSR1 is nginx's "reopen logs": no signal is sent).
//! - Each report's first note says the report signal no longer reaches fdguard (nginx took
//!   SIGUSR1 over after fdguard loaded).
//! - Frames are named by the mapped object (/usr/sbin/nginx), never by the title nginx writes
//!   over argv[0] ("nginx: worker process").
//! - After a graceful stop, `fdguard run` found every worker's exit report, although the
//!   workers (uid nobody) could not write into the report directory: they went to nobody's
//!   runtime directory and were moved into it.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use common::servers::{
    assert_modules_are_real, children, euid, free_port, has_fdguard_thread, program, read_pid,
    signal, wait_for,
};
use common::{assert_status, fdguard, library, scratch, stderr, wait_bounded};
use fdguard_report::{Origin, Report, Trigger};

const NOBODY: u32 = 65534;

#[test]
fn nginx_master_and_workers_as_nobody() {
    let nginx = program("/usr/sbin/nginx", "nginx");
    let dir = scratch("nginx");
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    let port = free_port();
    let d = dir.display();
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "daemon off;\nmaster_process on;\nworker_processes 2;\nuser nobody nogroup;\n\
             pid {d}/nginx.pid;\nerror_log {d}/logs/error.log notice;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/tmp/body;\n\
               proxy_temp_path {d}/tmp/proxy;\n  fastcgi_temp_path {d}/tmp/fastcgi;\n\
               uwsgi_temp_path {d}/tmp/uwsgi;\n  scgi_temp_path {d}/tmp/scgi;\n\
               server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"ok\\n\"; }} }}\n}}\n"
        ),
    )
    .unwrap();
    let reports = dir.join("reports");
    let run = fdguard()
        .args(["run", "--lib", library().to_str().unwrap(), "--report"])
        .arg(format!("{}/", reports.display()))
        .arg("--")
        .arg(&nginx)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-p")
        .arg(format!("{d}/"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let master = wait_for("nginx.pid", Duration::from_secs(20), || {
        read_pid(&dir.join("nginx.pid"))
    });
    // Both workers forked, switched to nobody, and run fdguard's thread (started in the fork
    // child: the master holds its listening socket).
    let workers = wait_for("two workers as nobody", Duration::from_secs(20), || {
        let kids = children(master);
        (kids.len() == 2
            && kids
                .iter()
                .all(|&w| euid(w) == Some(NOBODY) && has_fdguard_thread(w)))
        .then_some(kids)
    });
    // One keep-alive request, so that a worker holds an accepted connection of its own.
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = [0u8; 256];
    let n = client.read(&mut answer).unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));

    let output = fdguard()
        .args([
            "report",
            "--tree",
            &master.to_string(),
            "--json",
            "--timeout",
            "20",
        ])
        .output()
        .unwrap();
    assert_status(&output, 0);
    let asked: Vec<Report> = serde_json::from_slice(&output.stdout).unwrap();
    let mut pids: Vec<i32> = asked.iter().map(|r| r.pid).collect();
    pids.sort_unstable();
    let mut expected = vec![master];
    expected.extend(&workers);
    expected.sort_unstable();
    assert_eq!(pids, expected);
    for report in &asked {
        assert_eq!(report.trigger, Trigger::Request);
        assert_eq!(report.program, "/usr/sbin/nginx");
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains("SIGUSR1 no longer reaches fdguard")),
            "pid {}: {:?}",
            report.pid,
            report.notes
        );
        assert_modules_are_real(report, "nginx:");
        // The listening socket: the master's own, inherited by the workers.
        let listener = report
            .sockets
            .iter()
            .find(|s| s.local.as_deref() == Some(format!("127.0.0.1:{port}").as_str()))
            .unwrap_or_else(|| panic!("pid {}: no listener: {:#?}", report.pid, report.sockets));
        let origin = if report.pid == master {
            Origin::Created
        } else {
            Origin::Inherited
        };
        assert_eq!(listener.origin, origin, "pid {}", report.pid);
    }
    // --signal without a value would need nginx's FDGUARD_SIGNAL, but nginx wrote its title
    // over the environment it started with: refused, nothing sent.
    let output = fdguard()
        .args(["report", &master.to_string(), "--signal"])
        .output()
        .unwrap();
    assert_status(&output, 1);
    assert!(
        stderr(&output).contains("cannot tell which report signal"),
        "{}",
        stderr(&output)
    );
    let log = std::fs::read_to_string(dir.join("logs/error.log")).unwrap();
    assert!(log.contains("start worker process"), "{log}");
    assert!(
        !log.contains("reopen") && !log.contains("SIGUSR1"),
        "nginx was sent its reopen signal:\n{log}"
    );
    // A second ask: the note is said once.
    let again = fdguard()
        .args(["report", &master.to_string(), "--json"])
        .output()
        .unwrap();
    assert_status(&again, 0);
    let again: Report = serde_json::from_slice(&again.stdout).unwrap();
    assert!(again.notes.iter().all(|n| !n.contains("no longer reaches")));

    drop(client);
    signal(master, "QUIT");
    let output = wait_bounded(run, Duration::from_secs(30));
    assert_status(&output, 0);
    let message = stderr(&output);
    // Every worker's exit report is in the report directory, moved from nobody's runtime
    // directory, and the summary says so.
    let written: Vec<Report> = std::fs::read_dir(&reports)
        .unwrap()
        .flatten()
        .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
        .collect();
    for &pid in expected.iter() {
        assert!(
            written
                .iter()
                .any(|r| r.pid == pid && r.trigger == Trigger::Exit),
            "no exit report of {pid} in {}:\n{message}",
            reports.display()
        );
        assert!(
            message.contains(&format!("pid {pid}, report #")),
            "{message}"
        );
    }
    let runtime = fdguard_report::request::channel_dir(NOBODY);
    assert!(
        message.contains("could not write into")
            && message.contains(&runtime.display().to_string()),
        "{message}"
    );
    assert!(!message.contains("wrote no report"), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}
