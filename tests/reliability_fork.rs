//! Issue 6, fork and vfork: a fork child gets its own report (the parent's sockets marked
//! `inherited`), an exec'd child sees inherited sockets as `preexisting`, and vfork children —
//! C and CPython's subprocess — that close fds on their parent's memory never disturb the
//! parent's records.

mod common;

use common::{Run, compile, compile_with, fd_set, functions, lib_path};
use fdguard_report::{Origin, Role, Trigger};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn a_fork_child_that_never_execs_writes_its_own_report_with_the_parents_sockets_inherited() {
    let bin = compile("rel_fork");
    let out = Run::new(&bin).arg("fork").run();
    assert!(out.status.success(), "{:?}\n{}", out.status, out.stderr);
    assert_eq!(out.stderr, "");
    let lines = out.json_lines();
    let child_line = lines.iter().find(|l| l.get("child").is_some()).unwrap();
    let parent_line = lines.iter().find(|l| l.get("parent").is_some()).unwrap();
    let child_pid = child_line["child"].as_i64().unwrap() as i32;
    let parent_pid = parent_line["parent"].as_i64().unwrap() as i32;
    let child_socket = child_line["child_socket"].as_i64().unwrap() as i32;
    let parent_open = fd_set(&parent_line["open"]);

    let child_reports = out.reports_of(child_pid);
    assert_eq!(
        child_reports.len(),
        1,
        "the child's own exit report (_exit)"
    );
    let child = child_reports[0];
    assert_eq!(child.trigger, Trigger::Exit);
    let mut expected = parent_open.clone();
    expected.insert(child_socket);
    let listed: BTreeSet<i32> = child.sockets.iter().map(|s| s.fd).collect();
    assert_eq!(listed, expected);
    for s in &child.sockets {
        if s.fd == child_socket {
            assert_eq!(s.origin, Origin::Created);
            assert!(functions(s).iter().any(|f| f == "child_own_socket"));
        } else {
            assert_eq!(s.origin, Origin::Inherited, "fd {}", s.fd);
        }
    }

    let parent_reports = out.reports_of(parent_pid);
    assert_eq!(parent_reports.len(), 1);
    let parent = parent_reports[0];
    let listed: BTreeSet<i32> = parent.sockets.iter().map(|s| s.fd).collect();
    assert_eq!(
        listed, parent_open,
        "the child's socket never shows in the parent's report"
    );
    assert!(parent.sockets.iter().all(|s| s.origin == Origin::Created));
    assert!(
        parent
            .sockets
            .iter()
            .all(|s| !functions(s).iter().any(|f| f == "child_own_socket"))
    );
    // One file per process: the %p in FDGUARD_REPORT kept them apart.
    assert_eq!(out.reports.len(), 2);
}

#[test]
fn a_child_that_execs_sees_inherited_sockets_as_preexisting() {
    let bin = compile("rel_fork");
    let out = Run::new(&bin)
        .arg("exec")
        .env("FDGUARD_EXIT_REPORT", "always")
        .run();
    assert!(out.status.success(), "{:?}\n{}", out.status, out.stderr);
    let lines = out.json_lines();
    let parent_line = lines.iter().find(|l| l.get("parent").is_some()).unwrap();
    let child_pid = lines
        .iter()
        .find_map(|l| l.get("child"))
        .unwrap()
        .as_i64()
        .unwrap() as i32;
    let child = out.reports_of(child_pid);
    assert_eq!(child.len(), 1, "{}", out.stderr);
    let listener = parent_line["listener"].as_i64().unwrap() as i32;
    let client = parent_line["client"].as_i64().unwrap() as i32;
    let listed: BTreeSet<i32> = child[0].sockets.iter().map(|s| s.fd).collect();
    assert_eq!(
        listed,
        BTreeSet::from([listener, client]),
        "only the inheritable sockets crossed exec"
    );
    for s in &child[0].sockets {
        assert_eq!(s.origin, Origin::Preexisting);
        assert!(s.stack.is_empty(), "no stack for a socket made before load");
    }
}

#[test]
fn a_c_vfork_child_that_closes_and_replaces_fds_before_exec_leaves_the_parents_records_alone() {
    let bin = compile("rel_vfork");
    let out = Run::new(&bin).run();
    assert!(out.status.success(), "{:?}\n{}", out.status, out.stderr);
    assert_eq!(out.stderr, "");
    let truth = &out.json_lines()[0];
    assert_eq!(out.reports.len(), 1, "only the parent writes a report");
    let exit = out.exit_report();
    let listed: BTreeSet<i32> = exit.sockets.iter().map(|s| s.fd).collect();
    assert_eq!(listed, fd_set(&truth["open"]));
    let by_fd = |key: &str| {
        let fd = truth[key].as_i64().unwrap() as i32;
        exit.sockets.iter().find(|s| s.fd == fd).unwrap()
    };
    assert_eq!(by_fd("listener").role, Role::Listener);
    assert_eq!(by_fd("client").role, Role::Client);
    let accepted = by_fd("accepted");
    assert_eq!(
        accepted.role,
        Role::Accepted,
        "not the child's dup2 of the listener"
    );
    assert_eq!(accepted.dup_of, None);
    assert!(
        functions(by_fd("client"))
            .iter()
            .any(|f| f == "vfork_parent_client")
    );
}

/// The real CPython interpreter (not a pyenv shim script), found once without the shim.
fn python() -> PathBuf {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .env_remove("LD_PRELOAD")
        .output()
        .expect("python3 is needed (the README's test command installs it)");
    assert!(out.status.success());
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(path.is_file(), "{}", path.display());
    path
}

const SUBPROCESS_SCRIPT: &str = r#"
import ctypes, json, os, socket, subprocess
probe = ctypes.CDLL(None)
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
def leak_a_connection(port):
    s = socket.socket()
    s.connect(("127.0.0.1", port))
    return s
leaked = leak_a_connection(listener.getsockname()[1])
accepted, _ = listener.accept()
before = probe.rel_vfork_probe_execs()
for _ in range(50):
    subprocess.run(["/bin/true"], check=True)
print(json.dumps({
    "open": [listener.fileno(), leaked.fileno(), accepted.fileno()],
    "leaked": leaked.fileno(),
    "execs_seen_by_parent": probe.rel_vfork_probe_execs() - before,
}), flush=True)
# Leave with the sockets still open: a normal exit would close them during finalization.
os._exit(0)
"#;

#[test]
fn cpython_subprocess_spawned_50_times_with_vfork_never_hangs_and_keeps_the_parents_sockets() {
    let probe = compile_with("rel_vfork_probe", &["-shared", "-fPIC"]);
    let preload = format!("{}:{}", lib_path().display(), probe.display());
    let start = Instant::now();
    let out = Run::new(python())
        .args(["-c", SUBPROCESS_SCRIPT])
        .without_shim()
        .env("LD_PRELOAD", &preload)
        .timeout(Duration::from_secs(60))
        .run();
    assert!(
        !out.timed_out && out.status.success(),
        "{:?} after {:?}\n{}",
        out.status,
        start.elapsed(),
        out.stderr
    );
    assert_eq!(out.stderr, "");
    eprintln!("50 subprocess.run: {:?}", start.elapsed());
    let truth = &out.json_lines()[0];
    // The children's execve() calls happened on the parent's memory: vfork, not fork.
    assert_eq!(
        truth["execs_seen_by_parent"], 50,
        "CPython used vfork for every child"
    );
    assert_eq!(out.reports.len(), 1, "only the parent reports");
    let exit = out.exit_report();
    let listed: BTreeSet<i32> = exit.sockets.iter().map(|s| s.fd).collect();
    assert_eq!(listed, fd_set(&truth["open"]));
    let leaked = truth["leaked"].as_i64().unwrap() as i32;
    let s = exit.sockets.iter().find(|s| s.fd == leaked).unwrap();
    assert_eq!(s.role, Role::Client);
    assert_eq!(s.origin, Origin::Created);
    assert!(!s.stack.is_empty());
}

#[test]
fn cpython_really_uses_vfork_here_the_probe_sees_no_exec_from_a_fork_child() {
    // Control for the probe: with os.fork() the child's execve changes only its own memory.
    let probe = compile_with("rel_vfork_probe", &["-shared", "-fPIC"]);
    let script = r#"
import ctypes, os
probe = ctypes.CDLL(None)
pid = os.fork()
if pid == 0:
    os.execv("/bin/true", ["true"])
os.waitpid(pid, 0)
print(probe.rel_vfork_probe_execs())
"#;
    let out = Run::new(python())
        .args(["-c", script])
        .without_shim()
        .env("LD_PRELOAD", probe.as_os_str())
        .run();
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "0");
}
