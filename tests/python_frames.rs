//! Issue 16: a leaking Python program's report names the Python function and `file:line` that
//! opened each leaked socket. Real programs under the shim, each with a server in-process on
//! loopback and ground truth on stdout: an `http.client` connection leaked from a named
//! function, a urllib3 pool whose connections are never released (urllib3 from its own venv),
//! and an asyncio stream client that never closes its writer; then suppressions by Python
//! function and file, and `fdguard diff` keyed by Python frames.
//!
//! The scripts (tests/python/*.py) mark the line that opens the leaked socket with
//! `# fdguard: <what>`: that line, read from the file, is what the report must say.

mod common;

use common::python::{assert_frame, marker_line, python_frames, script, socket, venv};
use common::{Outcome, Run, fd_list, host_ok};
use fdguard_report::{FindingKind, FrameKind, Report, Socket};
use std::path::Path;

/// Runs a leak scenario with a short grace period and returns the outcome and its exit report.
fn scenario(python: &Path, name: &str, extra: &[(&str, &str)]) -> (Outcome, Report) {
    let mut run = Run::new(python)
        .arg(script(name))
        .env("FDGUARD_GRACE_MS", "300")
        .env("FDGUARD_WATCH_MS", "50");
    for (k, v) in extra {
        run = run.env(k, v);
    }
    let out = run.run();
    host_ok(&out, name);
    let report = out.exit_report().clone();
    (out, report)
}

/// The leaked fds the script printed.
fn leaked(out: &Outcome) -> Vec<i32> {
    fd_list(&out.json_lines()[0]["leaked"])
}

/// `fd` has an unsuppressed peer_closed finding.
fn assert_peer_closed(report: &Report, fd: i32) {
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::PeerClosed && f.fds == [fd]),
        "fd {fd}: no peer_closed finding: {:#?}",
        report.findings
    );
}

/// Python frames come innermost first, in call order: `inner` is closer to the socket call.
fn assert_inside(socket: &Socket, inner: &str, outer: &str) {
    let at = |name: &str| {
        socket
            .stack
            .iter()
            .position(|f| f.is_python() && f.function.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("fd {}: no Python frame {name}", socket.fd))
    };
    assert!(at(inner) < at(outer), "{inner} should be inside {outer}");
}

#[test]
fn http_client_connection_leaked_from_a_named_function() {
    let path = script("http_client_leak.py");
    let (out, report) = scenario(&venv("venv-grpc-latest"), "http_client_leak.py", &[]);
    let fds = leaked(&out);
    assert_eq!(fds.len(), 1);
    assert_peer_closed(&report, fds[0]);
    let s = socket(&report, fds[0]);
    let line = marker_line(&path, "opens the leaked connection");
    let frame = assert_frame(s, "leak_connection", &path, line);
    assert_eq!(frame.kind, FrameKind::Python);
    assert_eq!((frame.ip.as_str(), frame.module.as_deref()), ("", None));
    // http.client's own frames sit between socket() and the program's function.
    assert_inside(s, "create_connection", "HTTPConnection.connect");
    assert_inside(s, "HTTPConnection.connect", "leak_connection");
    assert_inside(s, "leak_connection", "main");
    // Interleaved where the interpreter's frames were: the native frame of the socket module
    // comes first, and no eval-loop frame is left.
    assert!(!s.stack[0].is_python(), "{:#?}", s.stack[0]);
    assert!(
        !s.stack.iter().any(|f| f
            .function
            .as_deref()
            .is_some_and(|n| n.starts_with("_PyEval_EvalFrameDefault"))),
        "{:#?}",
        s.stack
    );
    // The connection that was closed is not reported; the text names function and file:line.
    assert_eq!(
        report
            .sockets
            .iter()
            .filter(|s| s.peer.is_some() && s.role == fdguard_report::Role::Client)
            .count(),
        1
    );
    let text = fdguard_report::text::render(&report);
    let expected = format!(
        "python             in leak_connection {}:{line}",
        path.display()
    );
    assert!(text.contains(&expected), "{expected:?} not in\n{text}");
    assert!(report.notes.is_empty(), "{:?}", report.notes);
}

#[test]
fn urllib3_pool_connections_never_released() {
    let path = script("urllib3_pool_leak.py");
    let (out, report) = scenario(&venv("venv-http"), "urllib3_pool_leak.py", &[]);
    let fds = leaked(&out);
    assert_eq!(fds.len(), 3, "{}", out.stdout);
    let line = marker_line(&path, "checks out a connection");
    for fd in fds {
        assert_peer_closed(&report, fd);
        let s = socket(&report, fd);
        assert_frame(s, "leak_pool", &path, line);
        assert_inside(s, "HTTPConnectionPool.urlopen", "leak_pool");
        let urllib3_frames = python_frames(s)
            .iter()
            .filter(|f| f.file.as_deref().is_some_and(|p| p.contains("/urllib3/")))
            .count();
        assert!(urllib3_frames >= 3, "{:#?}", s.stack);
    }
    // One creating stack for the three: they merge into one finding group in the text.
    let text = fdguard_report::text::render(&report);
    assert!(
        text.contains("3 sockets created from stack"),
        "merged by stack:\n{text}"
    );
}

#[test]
fn asyncio_stream_client_that_never_closes() {
    let path = script("asyncio_stream_leak.py");
    let (out, report) = scenario(&venv("venv-grpc-latest"), "asyncio_stream_leak.py", &[]);
    let fds = leaked(&out);
    assert_eq!(fds.len(), 1);
    assert_peer_closed(&report, fds[0]);
    let s = socket(&report, fds[0]);
    assert_frame(
        s,
        "leak_stream",
        &path,
        marker_line(&path, "opens the leaked stream"),
    );
    // Coroutine frames, in await order, then the event loop that ran them; between the two
    // the C task-step of the _asyncio extension (a native frame among Python ones).
    assert_inside(s, "open_connection", "leak_stream");
    assert_inside(s, "leak_stream", "main");
    assert_inside(s, "main", "BaseEventLoop.run_forever");
    let main_at = s
        .stack
        .iter()
        .position(|f| f.function.as_deref() == Some("main"))
        .unwrap();
    let loop_at = s
        .stack
        .iter()
        .position(|f| f.function.as_deref() == Some("Handle._run"))
        .unwrap();
    assert!(
        s.stack[main_at..loop_at]
            .iter()
            .any(|f| !f.is_python() && f.function.as_deref() == Some("task_step_impl")),
        "{:#?}",
        &s.stack[main_at..loop_at]
    );
}

#[test]
fn suppressions_match_python_functions_and_files() {
    let dir = common::temp_dir("py-suppressions");
    for (rule, what) in [
        ("leak:^leak_connection$", "function"),
        ("leak:*/tests/python/http_client_leak.py", "file"),
    ] {
        let file = dir.join(format!("{what}.supp"));
        std::fs::write(&file, format!("{rule}\n")).unwrap();
        let (out, report) = scenario(
            &venv("venv-grpc-latest"),
            "http_client_leak.py",
            &[("FDGUARD_SUPPRESSIONS", file.to_str().unwrap())],
        );
        let fd = leaked(&out)[0];
        let finding = report
            .findings
            .iter()
            .find(|f| f.kind == FindingKind::PeerClosed && f.fds == [fd])
            .expect("peer_closed finding");
        assert_eq!(finding.suppressed_by.as_deref(), Some(rule), "{what}");
        assert_eq!(report.summary.findings.get("peer_closed"), None, "{what}");
    }
}

#[test]
fn diff_keys_python_stacks_by_function_file_and_line() {
    let dir = common::temp_dir("py-diff");
    let (old, new) = (dir.join("old.json"), dir.join("new.json"));
    let out = Run::new(venv("venv-grpc-latest"))
        .arg(script("diff_growth.py"))
        .arg(&old)
        .arg(&new)
        .env("FDGUARD_EXIT_REPORT", "never")
        .run();
    host_ok(&out, "diff_growth.py");
    let read = |p: &Path| -> Report {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let diff = fdguard_report::diff::diff(&read(&old), &read(&new));
    let path = script("diff_growth.py");
    let key = |what: &str, function: &str| {
        format!(
            "py:{function}@{}:{}",
            path.display(),
            marker_line(&path, what)
        )
    };
    let growing = diff.growing_stacks().collect::<Vec<_>>();
    assert_eq!(growing.len(), 1, "{:#?}", diff.stacks);
    assert_eq!(growing[0].delta, 3);
    assert!(
        growing[0].key.contains(&key("growing", "open_growing")),
        "{:?}",
        growing[0].key
    );
    let steady = diff
        .stacks
        .iter()
        .find(|s| s.key.contains(&key("steady", "open_steady")))
        .expect("the steady stack is keyed by its Python frame");
    assert_eq!((steady.old, steady.new), (1, 1));
    let text = fdguard_report::diff::render(&diff);
    assert!(text.contains("open_growing"), "{text}");
}
