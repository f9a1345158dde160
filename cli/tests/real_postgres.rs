//! Issue 11 on a real PostgreSQL 15 (Debian's): the postmaster forks one backend per
//! connection, and the backend's only socket is the connection the postmaster accepted
//! (inherited across fork). Asked through the request channel, the backend answers: fdguard's
//! thread was started in the fork child because the postmaster held sockets. PostgreSQL owns
//! SIGUSR1 and rewrites its title over argv[0] ("postgres: postgres postgres 127.0.0.1(…)"):
//! the frames still name /usr/lib/postgresql/15/bin/postgres.
//!
//! As root the cluster runs as `postgres` (PostgreSQL refuses root), so `fdguard report` also
//! crosses users: the request directory is handed to that user.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::servers::{
    assert_modules_are_real, children, cmdline, free_port, has_fdguard_thread, program, signal,
    wait_for,
};
use common::{assert_status, fdguard, library, scratch};
use fdguard_report::{Origin, Report, Role, TcpState, Trigger};

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// `cmd` as the `postgres` user when we are root (PostgreSQL refuses to run as root).
fn as_cluster_owner(program: &Path) -> Command {
    if std::fs::metadata("/proc/self").unwrap().uid() == 0 {
        let mut cmd = Command::new(common::servers::program("/usr/bin/setpriv", "util-linux"));
        cmd.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// A PostgreSQL startup packet for user and database `postgres` (protocol 3.0).
fn startup_packet() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196_608u32.to_be_bytes());
    for part in ["user", "postgres", "database", "postgres"] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    packet.extend(body);
    packet
}

#[test]
fn a_postgresql_backend_answers_a_report_request() {
    let initdb = program(&format!("{BIN}/initdb"), "postgresql-15");
    let postgres = program(&format!("{BIN}/postgres"), "postgresql-15");
    let dir = scratch("postgres");
    let data = dir.join("data");
    if std::fs::metadata("/proc/self").unwrap().uid() == 0 {
        let status = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let init = as_cluster_owner(&initdb)
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "postgres", "--no-sync"])
        .env_remove("LD_PRELOAD")
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let port = free_port();
    let server = as_cluster_owner(&postgres)
        .arg("-D")
        .arg(&data)
        .arg("-k")
        .arg(&dir)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .env("LD_PRELOAD", library())
        .env("FDGUARD_EXIT_REPORT", "never")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let postmaster = wait_for("postmaster ready", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
        let pid: i32 = text.lines().next()?.trim().parse().ok()?;
        // Its last line says "ready" once it accepts connections.
        text.lines().any(|l| l.trim() == "ready").then_some(pid)
    });

    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    client.write_all(&startup_packet()).unwrap();
    // AuthenticationOk … ReadyForQuery ('Z'): the backend is idle, the connection open.
    let mut seen = Vec::new();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    while !seen.contains(&b'Z') {
        let mut buf = [0u8; 1024];
        let n = client.read(&mut buf).unwrap();
        assert!(n > 0, "the server closed the connection: {seen:?}");
        seen.extend_from_slice(&buf[..n]);
    }
    let local = client.local_addr().unwrap();
    let marker = format!("127.0.0.1({})", local.port());
    let backend = wait_for("the backend process", Duration::from_secs(20), || {
        children(postmaster)
            .into_iter()
            .find(|&p| cmdline(p).contains(&marker) && has_fdguard_thread(p))
    });

    let output = fdguard()
        .args(["report", &backend.to_string(), "--json", "--timeout", "20"])
        .output()
        .unwrap();
    assert_status(&output, 0);
    let report: Report = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((report.pid, report.trigger), (backend, Trigger::Request));
    assert_eq!(report.program, format!("{BIN}/postgres"));
    assert!(
        report.cmdline.iter().any(|a| a.contains("postgres: ")),
        "the title is the command line: {:?}",
        report.cmdline
    );
    let connection = report
        .sockets
        .iter()
        .find(|s| s.peer.as_deref() == Some(local.to_string().as_str()))
        .unwrap_or_else(|| panic!("no connection from {local}: {:#?}", report.sockets));
    assert_eq!(
        (connection.role, connection.origin, connection.tcp_state),
        (
            Role::Accepted,
            Origin::Inherited,
            Some(TcpState::Established)
        )
    );
    assert!(
        !connection.stack.is_empty(),
        "the postmaster's accept stack"
    );
    assert_modules_are_real(&report, "postgres:");
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("SIGUSR1 no longer reaches fdguard")),
        "{:?}",
        report.notes
    );

    drop(client);
    // Fast shutdown.
    signal(postmaster, "INT");
    let output = common::wait_bounded(server, Duration::from_secs(30));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
