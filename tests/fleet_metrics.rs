//! FDGUARD_METRICS_DIR end to end: a real process under the shim (tests/programs/fleet_leak.c:
//! 3 connections left in CLOSE_WAIT, 2 healthy ones, a listener, a socketpair) writes its
//! metrics file, which `promtool check metrics` accepts and whose numbers are the ground
//! truth; a symlink planted at the file's name is replaced, not followed; files of dead
//! processes are swept, others are not; and the file is gone once the process exits, by
//! `return` from main as by `_exit`.

mod common;

use common::prom::{self, Sample};
use common::{Run, compile, temp_dir};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// Plants a file named `name` in `dir`, last modified `age` ago.
fn plant(dir: &Path, name: &str, age: Duration) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, "# planted by the test\n").unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
    path
}

fn leaks_counted(samples: &[Sample]) -> bool {
    prom::select(samples, "fdguard_findings", &[("kind", "peer_closed")])
        .first()
        .is_some_and(|s| s.value == 3.0)
}

fn run_leaker(exit_mode: &str, plant_files: bool) {
    let program = compile("fleet_leak");
    let dir = temp_dir("metrics");
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "not yours\n").unwrap();
    let ten_minutes_and_more = Duration::from_secs(11 * 60);
    // Beyond any pid_max (2^22): certainly no process.
    let dead_stale = plant(&dir, "fdguard-2147483000.prom", ten_minutes_and_more);
    let dead_tmp = plant(
        &dir,
        ".fdguard-2147483001.prom.fdguard-tmp.2147483001.0",
        ten_minutes_and_more,
    );
    let dead_fresh = plant(&dir, "fdguard-2147483002.prom", Duration::from_secs(5));
    let alive_stale = plant(
        &dir,
        &format!("fdguard-{}.prom", std::process::id()),
        ten_minutes_and_more,
    );
    let foreign = plant(&dir, "node_custom.prom", ten_minutes_and_more);

    let (mut child, _) = Run::new(&program)
        .arg(exit_mode)
        .env("FDGUARD_METRICS_DIR", &dir)
        .env("FDGUARD_WATCH_MS", "100")
        .env("FDGUARD_GRACE_MS", "300")
        .env("FDGUARD_EXIT_REPORT", "never")
        .stdin(b"")
        .spawn();
    let pid = child.id();
    let file = prom::file_of(&dir, pid);
    if plant_files {
        std::os::unix::fs::symlink(&victim, &file).unwrap();
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let truth: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("ground truth line {first:?}: {e}"));
    let port = truth["port"].as_i64().unwrap();

    let (samples, _) = prom::wait_for(&file, Duration::from_secs(60), leaks_counted);
    prom::promtool_check(&file);
    let meta = std::fs::symlink_metadata(&file).unwrap();
    assert!(
        meta.file_type().is_file(),
        "a regular file replaced the symlink"
    );
    assert_eq!(meta.permissions().mode() & 0o777, 0o644);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "not yours\n");

    let pid_text = pid.to_string();
    for s in &samples {
        assert_eq!(s.labels["pid"], pid_text, "{s:?}");
        assert_eq!(s.labels["program"], "fleet_leak", "{s:?}");
    }
    let sockets = |role: &str, state: &str| {
        prom::value(
            &samples,
            "fdguard_sockets",
            &[("role", role), ("state", state)],
        )
    };
    assert_eq!(sockets("client", "CLOSE_WAIT"), 3.0);
    assert_eq!(sockets("client", "ESTABLISHED"), 2.0);
    assert_eq!(sockets("accepted", "ESTABLISHED"), 2.0);
    assert_eq!(sockets("accepted", "CLOSE_WAIT"), 0.0);
    assert_eq!(sockets("listener", "LISTEN"), 1.0);
    assert_eq!(sockets("pair", "none"), 2.0);
    let total: f64 = prom::select(&samples, "fdguard_sockets", &[])
        .iter()
        .map(|s| s.value)
        .sum();
    assert_eq!(total, 10.0, "every tracked socket fd counted once");
    let backend = format!("127.0.0.1:{port}");
    assert_eq!(
        prom::value(
            &samples,
            "fdguard_backend_sockets",
            &[("backend", &backend)]
        ),
        5.0
    );
    assert_eq!(
        prom::value(&samples, "fdguard_backend_sockets", &[("backend", "other")]),
        0.0
    );
    assert_eq!(
        prom::value(
            &samples,
            "fdguard_findings",
            &[("kind", "peer_closed"), ("severity", "leak")]
        ),
        3.0
    );
    assert_eq!(prom::value(&samples, "fdguard_dead_sockets", &[]), 3.0);
    assert!(prom::value(&samples, "fdguard_oldest_dead_socket_seconds", &[]) >= 0.3);
    // The kernel's view of the process, read from outside.
    let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as f64;
    assert_eq!(prom::value(&samples, "fdguard_open_fds", &[]), open_fds);
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let soft: f64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert_eq!(
        prom::value(&samples, "fdguard_fd_limit", &[("kind", "soft")]),
        soft
    );
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let updated = prom::value(&samples, "fdguard_last_update_timestamp_seconds", &[]);
    assert!((now - updated).abs() < 60.0, "{updated} vs {now}");

    // The sweep (at the first update): only files that are old AND of a dead pid go.
    assert!(
        !dead_stale.exists() && !dead_tmp.exists(),
        "dead and stale: swept"
    );
    assert!(
        dead_fresh.exists(),
        "fresh (a reused pid may have just written it): kept"
    );
    assert!(
        alive_stale.exists(),
        "the pid is alive (updates merely slow): kept"
    );
    assert!(foreign.exists(), "not fdguard's: untouched");

    // Exit: the file goes with the process.
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the program did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    assert!(
        !file.exists(),
        "{} outlived its process ({exit_mode})",
        file.display()
    );
    let leftovers: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&pid_text))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    assert_eq!(std::fs::metadata(&victim).unwrap().nlink(), 1);
}

#[test]
fn metrics_file_is_valid_true_and_removed_at_exit() {
    run_leaker("return", true);
}

#[test]
fn metrics_file_is_removed_by_underscore_exit() {
    run_leaker("_exit", false);
}

#[test]
fn a_missing_directory_costs_one_line_and_is_retried() {
    let program = compile("fleet_leak");
    let missing = temp_dir("metrics-missing").join("not-yet");
    let (mut child, _) = Run::new(&program)
        .arg("return")
        .env("FDGUARD_METRICS_DIR", &missing)
        .env("FDGUARD_WATCH_MS", "50")
        .env("FDGUARD_EXIT_REPORT", "never")
        .stdin(b"")
        .spawn();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push(line);
        }
        all
    });
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("one stderr line about the directory");
    assert!(
        first.starts_with("fdguard: FDGUARD_METRICS_DIR: ") && first.contains("not-yet"),
        "{first}"
    );
    // The directory appears: a later tick writes the file.
    std::fs::create_dir(&missing).unwrap();
    let file = prom::file_of(&missing, child.id());
    prom::wait_for(&file, Duration::from_secs(30), |s| !s.is_empty());
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "the host runs on: {status:?}");
    let lines = reader.join().unwrap();
    assert_eq!(lines, [first], "one line, not one per tick");
    assert!(!file.exists());
}

#[test]
fn a_fork_child_writes_and_removes_only_its_own_file() {
    let program = compile("fleet_leak");
    let dir = temp_dir("metrics-fork");
    let (mut child, _) = Run::new(&program)
        .arg("fork")
        .env("FDGUARD_METRICS_DIR", &dir)
        .env("FDGUARD_WATCH_MS", "50")
        .env("FDGUARD_GRACE_MS", "300")
        .env("FDGUARD_EXIT_REPORT", "never")
        .stdin(b"")
        .spawn();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut truth, mut forked) = (String::new(), String::new());
    out.read_line(&mut truth).unwrap();
    out.read_line(&mut forked).unwrap();
    let forked: serde_json::Value =
        serde_json::from_str(&forked).unwrap_or_else(|e| panic!("fork line {forked:?}: {e}"));
    assert_eq!(
        forked["child_wrote"], 1,
        "the child wrote its own file: {forked}"
    );
    assert_eq!(
        forked["parent_file_kept"], 1,
        "the child's exit left the parent's file alone: {forked}"
    );
    let child_file = prom::file_of(&dir, forked["child"].as_u64().unwrap() as u32);
    assert!(!child_file.exists(), "the child's exit removed its file");
    let parent_file = prom::file_of(&dir, child.id());
    let (samples, _) = prom::wait_for(&parent_file, Duration::from_secs(60), leaks_counted);
    assert_eq!(
        prom::value(
            &samples,
            "fdguard_sockets",
            &[("role", "client"), ("state", "CLOSE_WAIT")]
        ),
        3.0,
        "the parent's counts are its own"
    );
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert!(!parent_file.exists());
}
