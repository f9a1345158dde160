//! Issue 11 on a real Node.js (Debian's `nodejs`): a keep-alive HTTP server is asked for a
//! report through the request channel. Node owns SIGUSR1 (it opens the inspector: "Debugger
//! listening on ws://127.0.0.1:9229"); no signal is sent, so the inspector never opens, and
//! the report's note says the signal no longer reaches fdguard. libuv closes fds with raw
//! system calls: those are counted in `summary.closed_unseen`, never a note.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::servers::program;
use common::{assert_status, fdguard, library, scratch};
use fdguard_report::{Origin, Report, Role, TcpState, Trigger};

const SERVER: &str = r#"
const http = require('http');
const server = http.createServer((req, res) => { res.end('ok\n'); });
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ pid: process.pid, port: server.address().port }));
});
process.on('SIGTERM', () => process.exit(0));
setTimeout(() => process.exit(7), 60000);
"#;

#[test]
fn a_node_keep_alive_server_answers_without_its_inspector_opening() {
    let node = program("/usr/bin/node", "nodejs");
    let dir = scratch("node");
    let script = dir.join("server.js");
    std::fs::write(&script, SERVER).unwrap();
    let mut child = Command::new(&node)
        .arg(&script)
        .env("LD_PRELOAD", library())
        .env_remove("NODE_OPTIONS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("node did not start listening within 30 s");
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
    let pid = ready["pid"].as_i64().unwrap() as i32;
    let port = ready["port"].as_u64().unwrap() as u16;

    // One keep-alive request: the connection stays open on both sides.
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let mut answer = [0u8; 512];
    let n = client.read(&mut answer).unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));

    let output = fdguard()
        .args(["report", &pid.to_string(), "--json", "--timeout", "20"])
        .output()
        .unwrap();
    assert_status(&output, 0);
    let report: Report = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((report.pid, report.trigger), (pid, Trigger::Request));
    let local = client.local_addr().unwrap().to_string();
    let accepted = report
        .sockets
        .iter()
        .find(|s| s.peer.as_deref() == Some(local.as_str()))
        .unwrap_or_else(|| panic!("no connection from {local}: {:#?}", report.sockets));
    assert_eq!(
        (accepted.role, accepted.origin, accepted.tcp_state),
        (Role::Accepted, Origin::Created, Some(TcpState::Established))
    );
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("SIGUSR1 no longer reaches fdguard")),
        "{:?}",
        report.notes
    );
    assert!(
        report.notes.iter().all(|n| !n.contains("dropped")),
        "{:?}",
        report.notes
    );

    drop(client);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let output = common::wait_bounded(child, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        !err.contains("Debugger listening") && !err.contains("inspector"),
        "node's inspector opened: {err}"
    );
    // Clean at exit: nothing from fdguard either.
    assert!(!err.contains("fdguard"), "{err}");
    assert_eq!(output.status.code(), Some(0), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
