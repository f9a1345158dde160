//! Soak: a real gRPC server and a churning gRPC client (latest grpcio), both under the shim,
//! for a bounded time. At each checkpoint both processes are idle and the test compares their
//! reports with the kernel's own view from outside: the socket fds in /proc/PID/fd and each TCP
//! connection's addresses and state in /proc/net/tcp{,6}. Nothing may be missing, invented or
//! misdescribed after hundreds of connections came and went.

mod common;

use common::{lib_path, repo, temp_dir};
use fdguard_report::{Report, Role};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// Seconds of churn (the whole test stays well under a minute).
const CHURN_S: &str = "12";

fn python() -> PathBuf {
    common::venv_python("venv-grpc-latest")
}

/// One side of the scenario: a shimmed `soak.py` with its stdin and parsed stdout lines.
struct Side {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Value>,
}

impl Side {
    fn spawn(args: &[&str], reports: &Path, prefix: &str) -> Side {
        let mut child = Command::new(python())
            .arg(repo().join("tests/grpc/soak.py"))
            .args(args)
            .env("LD_PRELOAD", lib_path())
            .env("FDGUARD_FORMAT", "json")
            .env(
                "FDGUARD_REPORT",
                reports.join(format!("{prefix}-%p-%n.json")),
            )
            .env("FDGUARD_EXPECT_SHIM", "1")
            .env("FDGUARD_WATCH_MS", "200")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn soak.py");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        Side {
            child,
            stdin,
            lines,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn next(&self, timeout: Duration) -> Value {
        self.lines
            .recv_timeout(timeout)
            .unwrap_or_else(|e| panic!("no line from soak.py within {timeout:?}: {e}"))
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A socket as the kernel sees it.
#[derive(Debug, Clone)]
struct KernelSocket {
    local: Option<String>,
    remote: Option<String>,
    state: Option<&'static str>,
}

fn decode_addr(hex: &str) -> String {
    let (ip, port) = hex.split_once(':').unwrap();
    let port = u16::from_str_radix(port, 16).unwrap();
    let raw: Vec<u8> = (0..ip.len() / 2)
        .map(|i| u8::from_str_radix(&ip[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    // /proc/net/tcp* prints each 32-bit word in host (little-endian) order.
    let bytes: Vec<u8> = raw
        .chunks(4)
        .flat_map(|w| w.iter().rev().copied())
        .collect();
    if bytes.len() == 4 {
        return format!(
            "{}:{port}",
            Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
        );
    }
    let ip = Ipv6Addr::from(<[u8; 16]>::try_from(bytes).unwrap());
    match ip.to_ipv4_mapped() {
        Some(v4) => format!("{v4}:{port}"),
        None => format!("[{ip}]:{port}"),
    }
}

fn tcp_state(code: &str) -> &'static str {
    match u8::from_str_radix(code, 16).unwrap() {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        _ => "UNKNOWN",
    }
}

/// fd → socket for every socket fd of `pid`, joined with /proc/PID/net/tcp{,6} by inode.
fn kernel_view(pid: i32) -> BTreeMap<i32, KernelSocket> {
    let mut tcp = BTreeMap::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap();
        for line in text.lines().skip(1) {
            let w: Vec<&str> = line.split_whitespace().collect();
            let inode: u64 = w[9].parse().unwrap();
            if inode != 0 {
                tcp.insert(
                    inode,
                    KernelSocket {
                        local: Some(decode_addr(w[1])),
                        remote: Some(decode_addr(w[2])).filter(|r| !r.ends_with(":0")),
                        state: Some(tcp_state(w[3])),
                    },
                );
            }
        }
    }
    let mut view = BTreeMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|t| t.strip_suffix(']'))
        else {
            continue;
        };
        let fd: i32 = entry.file_name().to_string_lossy().parse().unwrap();
        let inode: u64 = inode.parse().unwrap();
        let socket = tcp.get(&inode).cloned().unwrap_or(KernelSocket {
            local: None,
            remote: None,
            state: None,
        });
        view.insert(fd, socket);
    }
    view
}

fn read_report(path: &Value) -> Report {
    let path = path.as_str().expect("a report path");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The report agrees with the kernel, socket by socket. Returns the TCP connections
/// (local, peer) of the report.
fn agrees_with_kernel(what: &str, report: &Report, pid: i32) -> BTreeSet<(String, String)> {
    let kernel = kernel_view(pid);
    let listed: BTreeSet<i32> = report.sockets.iter().map(|s| s.fd).collect();
    let open: BTreeSet<i32> = kernel.keys().copied().collect();
    assert_eq!(
        listed,
        open,
        "{what}: report vs /proc/{pid}/fd: only in the report {:?}, only in the kernel {:?}",
        listed.difference(&open).collect::<Vec<_>>(),
        open.difference(&listed).collect::<Vec<_>>()
    );
    assert_eq!(
        report.fd_budget.sockets_open, report.fd_budget.sockets_tracked,
        "{what}"
    );
    assert!(report.notes.is_empty(), "{what}: {:?}", report.notes);
    let mut connections = BTreeSet::new();
    for s in &report.sockets {
        let k = &kernel[&s.fd];
        if k.state.is_none() {
            continue; // not TCP (unix, …): presence is all the kernel table can confirm
        }
        assert_eq!(
            s.tcp_state.map(|t| t.as_str()),
            k.state,
            "{what}: fd {} state",
            s.fd
        );
        assert_eq!(s.local, k.local, "{what}: fd {} local address", s.fd);
        if k.remote.is_some() {
            assert_eq!(s.peer, k.remote, "{what}: fd {} peer", s.fd);
            connections.insert((s.local.clone().unwrap(), s.peer.clone().unwrap()));
        }
    }
    connections
}

#[test]
fn grpc_server_and_churning_client_reports_match_the_kernel() {
    let start = Instant::now();
    let reports = temp_dir("soak-grpc");
    let mut server = Side::spawn(&["server"], &reports, "server");
    let port = server.next(Duration::from_secs(30))["listening"]
        .as_i64()
        .expect("listening line");
    let port_text = port.to_string();
    let mut client = Side::spawn(&["client", &port_text, CHURN_S], &reports, "client");

    // Checkpoint 1: churn over, two pinned connections still open.
    let line = client.next(Duration::from_secs(90));
    assert_eq!(line["checkpoint"], "after_churn", "{line}");
    assert_eq!(line["errors"], serde_json::json!([]), "every RPC succeeded");
    let churned = line["churned"].as_u64().unwrap();
    assert!(churned >= 100, "connections churned: {churned}");
    let client_report = read_report(&line["report"]);
    let client_conns = agrees_with_kernel("client after churn", &client_report, client.pid());
    let to_server: Vec<_> = client_conns
        .iter()
        .filter(|(_, peer)| *peer == format!("127.0.0.1:{port}"))
        .collect();
    assert_eq!(
        to_server.len(),
        2,
        "the two pinned channels: {client_conns:?}"
    );
    for s in &client_report.sockets {
        if s.peer.as_deref() == Some(&format!("127.0.0.1:{port}")) {
            assert_eq!(s.role, Role::Client);
            assert!(!s.stack.is_empty());
        }
    }

    server.send("checkpoint");
    let line = server.next(Duration::from_secs(30));
    let server_report = read_report(&line["report"]);
    let server_conns = agrees_with_kernel("server after churn", &server_report, server.pid());
    // The server's accepted connections are exactly the client's pinned ones, seen from the
    // other end.
    let mirrored: BTreeSet<(String, String)> = to_server
        .iter()
        .map(|(local, peer)| (peer.clone(), local.clone()))
        .collect();
    assert_eq!(server_conns, mirrored);
    let listeners = server_report
        .sockets
        .iter()
        .filter(|s| s.role == Role::Listener)
        .count();
    assert_eq!(listeners, 1);

    // Checkpoint 2: the pinned channels closed too.
    client.send("continue");
    let line = client.next(Duration::from_secs(30));
    assert_eq!(line["checkpoint"], "after_close", "{line}");
    let client_report = read_report(&line["report"]);
    let client_conns = agrees_with_kernel("client after close", &client_report, client.pid());
    assert!(
        client_conns
            .iter()
            .all(|(_, peer)| *peer != format!("127.0.0.1:{port}")),
        "{client_conns:?}"
    );
    server.send("checkpoint");
    let line = server.next(Duration::from_secs(30));
    let server_report = read_report(&line["report"]);
    let server_conns = agrees_with_kernel("server after close", &server_report, server.pid());
    assert!(server_conns.is_empty(), "{server_conns:?}");

    client.send("continue");
    server.send("stop");
    assert_eq!(server.next(Duration::from_secs(30))["stopped"], true);
    server.send("exit");
    for side in [&mut client, &mut server] {
        let status = side.child.wait().unwrap();
        assert!(status.success(), "{status:?}");
    }
    // Every report either process wrote parses; no temp file was left behind.
    let all = common::read_reports(&reports);
    assert!(all.len() >= 4, "{}", all.len());
    let stray: Vec<_> = std::fs::read_dir(&reports)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    eprintln!("soak: {churned} channels churned; {:?}", start.elapsed());
}
