//! Issue 12, item 8 (first half): a sandbox that opens IPC sockets and then changes
//! namespaces gets exactly what it would get without fdguard. `setns(CLONE_NEWNS)` and
//! `unshare(CLONE_NEWUSER)` are refused (EINVAL) to a multi-threaded process, so fdguard stops
//! and reaps its thread around them; the next socket starts it again. A host with a thread of
//! its own gets EINVAL with and without fdguard, and keeps fdguard's thread.

mod common;

use common::{Run, compile, fd_set, host_ok};
use serde_json::Value;
use std::collections::BTreeSet;

fn run(mode: &str, shim: bool) -> (common::Outcome, Value) {
    let bin = compile("namespaces");
    let mut run = Run::new(&bin).arg(mode);
    if !shim {
        run = run.without_shim();
    }
    let out = run.run();
    host_ok(&out, mode);
    let truth = out.json_lines().remove(0);
    (out, truth)
}

#[test]
fn setns_and_unshare_succeed_as_without_fdguard_and_the_thread_comes_back() {
    let (_, plain) = run("single", false);
    assert_eq!(plain["setns"], serde_json::json!([0, 0]), "{plain}");
    assert_eq!(plain["unshare"], serde_json::json!([0, 0]), "{plain}");
    let (out, shimmed) = run("single", true);
    assert_eq!(shimmed["setns"], plain["setns"], "{shimmed}");
    assert_eq!(shimmed["unshare"], plain["unshare"], "{shimmed}");
    // Right after each call the host is alone, as it was without fdguard; the socket created
    // after each brings the fdguard thread back.
    assert_eq!(plain["threads"], serde_json::json!([1, 1, 1, 1]));
    assert_eq!(shimmed["threads"], serde_json::json!([1, 2, 1, 2]));
    assert_eq!(out.stderr, "");
    let exit = out.exit_report();
    let listed: BTreeSet<i32> = exit.sockets.iter().map(|s| s.fd).collect();
    assert_eq!(listed, fd_set(&shimmed["keep"]));
}

#[test]
fn a_host_with_threads_of_its_own_gets_einval_as_without_fdguard() {
    let (_, plain) = run("threaded", false);
    let (out, shimmed) = run("threaded", true);
    assert_eq!(plain["setns"][0], -1);
    assert_eq!(plain["setns"][1], libc::EINVAL);
    assert_eq!(shimmed["setns"], plain["setns"]);
    assert_eq!(shimmed["unshare"], plain["unshare"]);
    // The failed calls gave fdguard's thread back at once.
    assert_eq!(plain["threads"], serde_json::json!([2, 2, 2, 2]));
    assert_eq!(shimmed["threads"], serde_json::json!([3, 3, 3, 3]));
    assert_eq!(out.stderr, "");
}
