//! Issue 16 on real gRPC: a grpcio client whose channel is created from a named Python function
//! (`make_channel`) and used from another (`call_backend`), against an echo server in the same
//! process that drops each connection after 300 ms, so the second RPC reconnects. Run with
//! grpcio 1.51.1 (the version of grpc/grpc#38871) and the latest grpcio.
//!
//! What this pins down (and the README states): a socket C-core creates on a Python thread
//! carries that thread's Python frames — in 1.51.1 the subchannel's connect runs inline in the
//! RPC that needs it, so its sockets name `call_backend`; a socket C-core creates on its own
//! threads (the latest grpcio's EventEngine) has native frames only. The function that created
//! the channel appears in no connection's stack, in either version: nothing fdguard sees happens
//! on the caller's thread when the channel is created.

mod common;

use common::python::{assert_frame, marker_line, python_frames, script, venv};
use common::{Run, host_ok};
use fdguard_report::{Frame, Role};

struct Connection<'a> {
    what: String,
    stack: &'a [Frame],
    tid: Option<i32>,
}

fn scenario(venv_name: &str) {
    let path = script("grpc_channel.py");
    let out = Run::new(venv(venv_name))
        .arg(&path)
        .env("FDGUARD_HISTORY", "64")
        .run();
    host_ok(&out, &format!("{venv_name} grpc_channel.py"));
    let truth = &out.json_lines()[0];
    let report = out.exit_report();
    let backend = format!("127.0.0.1:{}", truth["port"]);
    let mut connections: Vec<Connection> = report
        .sockets
        .iter()
        .filter(|s| s.role == Role::Client && s.peer.as_deref() == Some(backend.as_str()))
        .map(|s| Connection {
            what: format!("live fd {}", s.fd),
            stack: &s.stack,
            tid: s.thread.as_ref().map(|t| t.tid),
        })
        .collect();
    connections.extend(
        report
            .recently_closed
            .iter()
            .filter(|c| c.peer.as_deref() == Some(backend.as_str()))
            .map(|c| Connection {
                what: format!("closed fd {}", c.fd),
                stack: &c.stack,
                tid: None,
            }),
    );
    assert!(
        connections.len() >= 2,
        "{venv_name}: the second RPC reconnects: {} connection(s)",
        connections.len()
    );
    for c in &connections {
        assert!(!c.stack.is_empty(), "{venv_name} {}: native frames", c.what);
        assert!(
            !c.stack
                .iter()
                .any(|f| f.function.as_deref() == Some("make_channel")),
            "{venv_name} {}: the channel's creator is not on a connection's stack",
            c.what
        );
    }
    let rpc_line = marker_line(&path, "makes the RPC");
    let with_python: Vec<&Connection> = connections
        .iter()
        .filter(|c| c.stack.iter().any(Frame::is_python))
        .collect();
    let version = truth["grpc"].as_str().unwrap();
    if version == "1.51.1" {
        // iomgr: the connect runs in the RPC's own call into C-core, on the Python thread
        // (every run here: all of them; a connect C-core ever does on its own timer thread
        // would have native frames only).
        assert!(!with_python.is_empty(), "{venv_name}");
        for c in &with_python {
            let socket_like = fdguard_report::Socket {
                fd: -1,
                stack: c.stack.into(),
                ..Default::default()
            };
            assert_frame(&socket_like, "call_backend", &path, rpc_line);
        }
    } else {
        // EventEngine: every connection is made on C-core's own threads, which CPython never
        // saw: native frames only, and not on the main thread.
        assert!(with_python.is_empty(), "{venv_name} {version}");
        for c in &connections {
            assert_ne!(c.tid, Some(report.pid), "{venv_name}: {}", c.what);
        }
    }
    // The server's listening socket is created in the Python call that adds the port.
    let listener = report
        .sockets
        .iter()
        .find(|s| s.role == Role::Listener)
        .expect("listener");
    assert!(
        python_frames(listener)
            .iter()
            .any(|f| f.function.as_deref() == Some("make_server")),
        "{venv_name}: {:#?}",
        listener.stack
    );
    eprintln!(
        "{venv_name} (grpcio {version}): {} connection(s), {} with Python frames",
        connections.len(),
        with_python.len()
    );
}

#[test]
fn grpcio_1_51_1_connections_carry_the_rpc_callers_python_frames() {
    scenario("venv-grpc151");
}

#[test]
fn latest_grpcio_connections_are_made_on_c_core_threads() {
    scenario("venv-grpc-latest");
}
