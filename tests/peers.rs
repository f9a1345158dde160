//! Issue 12, items 3 and 7: hooks never read caller memory the kernel has not validated, and
//! the peer a report shows is what the kernel last agreed to.
//!
//! The EFAULT/EAGAIN matrix (connect with unreadable, unmapped and PROT_NONE addresses and
//! refused lengths; accept and accept4 with bad address and length pointers, with and without
//! a pending connection) returns exactly what it returns without fdguard, and the host lives.
//! Peers: a TCP socket refused and then connected elsewhere, a UDP socket re-connected, a UDP
//! socket disconnected with AF_UNSPEC, an accept() with a 4-byte address buffer, and a
//! non-blocking connect still in progress each show their current peer.

mod common;

use common::{Run, compile, host_ok};
use fdguard_report::Trigger;

#[test]
fn bad_pointers_get_the_same_errors_as_without_fdguard_and_never_crash() {
    let bin = compile("peers");
    let plain = Run::new(&bin).arg("efault").without_shim().run();
    host_ok(&plain, "without fdguard");
    let out = Run::new(&bin).arg("efault").run();
    host_ok(&out, "with fdguard");
    let (p, s) = (&plain.json_lines()[0], &out.json_lines()[0]);
    assert_eq!(s["results"], p["results"]);
    let results = p["results"].as_array().unwrap();
    let errnos: Vec<i64> = results.iter().map(|r| r[1].as_i64().unwrap()).collect();
    for expected in [
        libc::EFAULT,
        libc::EAGAIN,
        libc::EBADF,
        libc::EINVAL,
        libc::ECONNREFUSED,
    ] {
        assert!(
            errnos.contains(&(expected as i64)),
            "{errnos:?} lacks {expected}"
        );
    }
    assert_eq!(out.stderr, "");
}

#[test]
fn the_peer_is_what_the_kernel_last_agreed_to() {
    let bin = compile("peers");
    let out = Run::new(&bin).arg("peers").run();
    host_ok(&out, "peers");
    let truth = &out.json_lines()[0];
    let report = out
        .reports
        .iter()
        .find(|r| r.trigger == Trigger::Signal)
        .expect("a signal report");
    let peer_of = |fd: &serde_json::Value| {
        let fd = fd.as_i64().unwrap() as i32;
        report
            .sockets
            .iter()
            .find(|s| s.fd == fd)
            .unwrap_or_else(|| panic!("fd {fd} listed"))
            .peer
            .clone()
    };
    for what in ["reconnected", "udp", "short", "inprogress"] {
        let pair = &truth[what];
        assert_eq!(
            peer_of(&pair[0]).as_deref(),
            pair[1].as_str(),
            "{what}: {truth}"
        );
    }
    assert_eq!(peer_of(&truth["unspec"]), None, "AF_UNSPEC dissolved it");
}
