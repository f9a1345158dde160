//! Golden files for what `fdguard watch` prints at the end and the HTML page it writes, from a
//! fixed series of reports (a leak adding CLOSE_WAIT connections from one stack beside a steady
//! pool): both renderers are pure functions of the reports, so any change to them shows here.
//! Regenerate with `FDGUARD_BLESS=1 cargo test -p fdguard-cli --test watch_summary_golden`.

mod common;

use common::assert_golden;
use fdguard_cli::timeline::{Timeline, render_growth};
use fdguard_report::{
    Collector, FdBudget, Finding, FindingKind, Frame, Origin, Report, Role, SCHEMA_VERSION,
    Severity, Socket, Summary, TcpState, Trigger,
};

fn frame(function: &str, offset: u64) -> Frame {
    Frame {
        ip: format!("0x{:x}", 0x5555_0000_0000u64 + offset),
        function: Some(function.to_string()),
        file: Some("/srv/app/client.c".to_string()),
        line: Some(offset as u32),
        module: Some("/srv/app/client".to_string()),
        module_offset: Some(format!("0x{offset:x}")),
        ..Frame::default()
    }
}

fn socket(fd: i32, peer: &str, state: TcpState, stack: &[&str]) -> Socket {
    Socket {
        fd,
        socket_id: 1000 + fd as u64,
        family: "inet".into(),
        sock_type: "stream".into(),
        role: Role::Client,
        origin: Origin::Created,
        peer: Some(peer.into()),
        local: Some(format!("10.0.0.2:{}", 40000 + fd)),
        tcp_state: Some(state),
        age_s: 1.0,
        stack_id: Some(stack.len() as u64),
        stack: stack
            .iter()
            .enumerate()
            .map(|(i, f)| frame(f, 0x100 * (i as u64 + 1)))
            .collect(),
        ..Socket::default()
    }
}

fn reports() -> Vec<Report> {
    let pool = ["pool_connect", "pool_init", "main"];
    let leaky = ["open_backup_connection", "run_client", "main"];
    (0..8u64)
        .map(|n| {
            let mut sockets = vec![
                socket(3, "10.0.0.7:6379", TcpState::Established, &pool),
                socket(4, "10.0.0.7:6379", TcpState::Established, &pool),
            ];
            let mut findings = Vec::new();
            for i in 0..(n as i32 * 3) {
                sockets.push(socket(
                    10 + i,
                    "10.0.0.9:50051",
                    TcpState::CloseWait,
                    &leaky,
                ));
                if i < (n as i32 - 2) * 3 {
                    findings.push(Finding {
                        kind: FindingKind::PeerClosed,
                        fds: vec![10 + i],
                        message: format!(
                            "fd {} to 10.0.0.9:50051 (CLOSE_WAIT): the peer hung up",
                            10 + i
                        ),
                        backend: Some("10.0.0.9:50051".into()),
                        suspect_fds: vec![],
                        checkpoint: None,
                        suppressed_by: None,
                        severity: Some(Severity::Leak),
                        rate_per_min: None,
                    });
                }
            }
            Report {
                schema_version: SCHEMA_VERSION,
                tool: "fdguard 0.1.0".into(),
                collector: Collector::Preload,
                pid: 4242,
                program: "/srv/app/client".into(),
                cmdline: vec!["/srv/app/client".into()],
                trigger: Trigger::Signal,
                seq: n + 1,
                time_unix_ms: 1_764_198_000_000 + n * 30_000,
                uptime_s: 60.0 + n as f64 * 30.0,
                fd_budget: FdBudget {
                    open_fds: 5 + sockets.len() as u64,
                    limit_soft: 64,
                    limit_hard: 4096,
                    sockets_open: sockets.len() as u64,
                    sockets_tracked: sockets.len() as u64,
                },
                sockets,
                findings,
                recently_closed: vec![],
                suppressions_used: vec![],
                checkpoints: vec![],
                notes: vec![],
                summary: Summary::default(),
            }
        })
        .collect()
}

fn timeline() -> Timeline {
    let mut timeline = Timeline::new(4242, "/srv/app/client");
    for report in reports() {
        timeline.push(&report);
    }
    timeline
}

#[test]
fn watch_summary() {
    assert_golden("watch_summary.txt", &render_growth(&timeline().growth()));
}

#[test]
fn timeline_page() {
    let page = fdguard_cli::html::render(&[timeline()]);
    assert_golden("timeline.html", &page);
}
