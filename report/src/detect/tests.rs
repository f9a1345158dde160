use super::*;
use crate::{
    Collector, ConnectInfo, FdBudget, FindingKind, Origin, SCHEMA_VERSION, ShutdownInfo, Summary,
    TcpActivity, TcpState, Trigger,
};

fn client(fd: i32, id: u64, peer: &str, state: &str, age: f64) -> Socket {
    Socket {
        fd,
        socket_id: id,
        family: "inet".into(),
        sock_type: "stream".into(),
        role: Role::Client,
        origin: Origin::Created,
        peer: Some(peer.into()),
        tcp_state: TcpState::parse(state),
        age_s: age,
        connect: Some(ConnectInfo {
            result: "EINPROGRESS".into(),
            after_s: 0.0,
        }),
        ..Socket::default()
    }
}

/// A connection that moved payload `idle` seconds ago, as TCP_INFO reports it.
fn active(mut s: Socket, idle: f64) -> Socket {
    s.tcp = Some(TcpActivity {
        last_data_recv_s: Some(idle),
        last_data_sent_s: Some(idle),
        last_ack_recv_s: Some(idle),
        keepalive: Some(false),
        handshake_completed: Some(true),
        ..TcpActivity::default()
    });
    s
}

fn settings() -> Settings {
    Settings {
        grace_s: 10.0,
        idle_s: 600.0,
        connect_s: 30.0,
        half_open_s: 60.0,
        ..Settings::default()
    }
}

fn kinds(findings: &[Finding]) -> Vec<(FindingKind, Severity)> {
    findings.iter().map(|f| (f.kind, f.severity())).collect()
}

fn of_kind(findings: &[Finding], kind: FindingKind) -> Vec<&Finding> {
    findings.iter().filter(|f| f.kind == kind).collect()
}

#[test]
fn idle_long_lived_connection_without_activity_data_is_not_a_finding() {
    let s = [client(5, 1, "10.0.0.1:443", "ESTABLISHED", 86_400.0)];
    assert!(run(&s, &settings()).is_empty());
}

#[test]
fn idle_orphan_is_a_warning_past_the_threshold_and_never_with_keepalive() {
    let busy = active(client(5, 1, "10.0.0.1:443", "ESTABLISHED", 9000.0), 12.0);
    assert!(run(&[busy], &settings()).is_empty());
    let idle = active(client(5, 1, "10.0.0.1:443", "ESTABLISHED", 9000.0), 840.0);
    let f = run(std::slice::from_ref(&idle), &settings());
    assert_eq!(
        kinds(&f),
        vec![(FindingKind::IdleOrphan, Severity::Warning)]
    );
    assert!(f[0].message.contains("14m00s"), "{}", f[0].message);
    let mut kept_alive = idle;
    kept_alive.tcp.as_mut().unwrap().keepalive = Some(true);
    assert!(
        run(&[kept_alive], &settings()).is_empty(),
        "SO_KEEPALIVE: the program expects it to sit idle"
    );
    // Server side: the client decides when to use its connection.
    let mut accepted = active(client(6, 2, "10.0.0.9:5000", "ESTABLISHED", 9000.0), 840.0);
    accepted.role = Role::Accepted;
    assert!(run(&[accepted], &settings()).is_empty());
}

#[test]
fn close_wait_within_grace_is_healthy_and_past_grace_is_a_leak() {
    let mut s = client(5, 1, "10.0.0.1:443", "CLOSE_WAIT", 60.0);
    s.peer_closed_s = Some(4.9); // grpcio 1.51.1's backup poller closes within ~5 s
    assert!(run(&[s.clone()], &settings()).is_empty());
    s.peer_closed_s = Some(40.0);
    let f = run(&[s], &settings());
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].kind, f[0].fds.clone(), f[0].severity()),
        (FindingKind::PeerClosed, vec![5], Severity::Leak)
    );
    assert!(f[0].message.contains("40.0s"), "{}", f[0].message);
}

#[test]
fn a_healthy_pool_is_context_not_a_leak() {
    let pool: Vec<Socket> = (0..4)
        .map(|i| {
            active(
                client(
                    10 + i,
                    1 + i as u64,
                    "127.0.0.1:8080",
                    "ESTABLISHED",
                    30.0 - i as f64,
                ),
                0.5 * i as f64,
            )
        })
        .collect();
    let f = run(&pool, &settings());
    assert_eq!(
        kinds(&f),
        vec![(FindingKind::DuplicateBackend, Severity::Info)]
    );
    assert!(f[0].suspect_fds.is_empty());
    assert!(!f[0].message.contains("leak"), "{}", f[0].message);
    assert!(
        f[0].message.contains("ages 27.0s–30.0s") && f[0].message.contains("idle 0.0s–1.5s"),
        "{}",
        f[0].message
    );
}

#[test]
fn duplicate_group_with_a_dead_member_beside_a_live_one_is_the_38871_shape() {
    let a = client(6, 1, "127.0.0.1:50051", "ESTABLISHED", 50.0);
    let mut b = client(7, 2, "127.0.0.1:50051", "CLOSE_WAIT", 49.0);
    let other = client(8, 3, "127.0.0.1:50052", "ESTABLISHED", 49.0);
    // Hung up a moment ago: the pool may not have looked yet; context only.
    b.peer_closed_s = Some(0.5);
    let f = run(&[a.clone(), b.clone(), other.clone()], &settings());
    assert_eq!(
        kinds(&f),
        vec![(FindingKind::DuplicateBackend, Severity::Info)]
    );
    // Dead past the grace period beside a live sibling.
    b.peer_closed_s = Some(45.0);
    let f = run(&[a, b, other], &settings());
    let dup = of_kind(&f, FindingKind::DuplicateBackend);
    assert_eq!(dup.len(), 1);
    assert_eq!(dup[0].fds, vec![6, 7]);
    assert_eq!(dup[0].suspect_fds, vec![7]);
    assert_eq!(dup[0].severity(), Severity::Warning);
    assert_eq!(dup[0].backend.as_deref(), Some("127.0.0.1:50051"));
    assert!(dup[0].message.contains("38871"), "{}", dup[0].message);
}

#[test]
fn duplicate_group_with_a_stale_member_beside_a_busy_one_is_a_warning() {
    // grpc/grpc#42125: the closed channel's connection idles while the new one works.
    let busy = active(client(6, 1, "127.0.0.1:50051", "ESTABLISHED", 900.0), 0.1);
    let orphan = active(client(7, 2, "127.0.0.1:50051", "ESTABLISHED", 950.0), 700.0);
    let f = run(&[busy, orphan], &settings());
    assert_eq!(
        kinds(&f),
        vec![
            (FindingKind::IdleOrphan, Severity::Warning),
            (FindingKind::DuplicateBackend, Severity::Warning)
        ]
    );
    assert_eq!(f[1].suspect_fds, vec![7]);
}

#[test]
fn many_dead_members_are_named_in_one_phrase_per_way_of_dying() {
    // 300 connections to one backend: 2 busy, 200 in CLOSE_WAIT for a while, 98 stale.
    let mut sockets = vec![
        active(client(3, 1, "10.0.0.9:443", "ESTABLISHED", 900.0), 0.1),
        active(client(4, 2, "10.0.0.9:443", "ESTABLISHED", 900.0), 0.2),
    ];
    for i in 0..200 {
        let mut dead = client(10 + i, 10 + i as u64, "10.0.0.9:443", "CLOSE_WAIT", 800.0);
        dead.peer_closed_s = Some(300.0);
        sockets.push(dead);
    }
    for i in 0..98 {
        let idle = 700.0 + f64::from(i);
        sockets.push(active(
            client(
                300 + i,
                300 + i as u64,
                "10.0.0.9:443",
                "ESTABLISHED",
                950.0,
            ),
            idle,
        ));
    }
    let f = run(&sockets, &settings());
    let dup = of_kind(&f, FindingKind::DuplicateBackend);
    assert_eq!(dup.len(), 1);
    assert_eq!(dup[0].suspect_fds.len(), 298);
    let message = &dup[0].message;
    assert_eq!(message.matches("dead (CLOSE_WAIT)").count(), 1, "{message}");
    assert_eq!(message.matches("idle for").count(), 1, "{message}");
    assert!(
        message.contains(" idle for 11m40s–13m17s while fd 3, 4 are alive"),
        "{message}"
    );
    assert!(
        message.starts_with("300 connections to 10.0.0.9:443"),
        "{message}"
    );
}

#[test]
fn dup_fds_of_one_socket_are_not_duplicate_connections() {
    let a = client(6, 1, "127.0.0.1:50051", "ESTABLISHED", 50.0);
    let mut a2 = a.clone();
    a2.fd = 9;
    a2.dup_of = Some(6);
    assert!(run(&[a, a2], &settings()).is_empty());
}

#[test]
fn shutdown_without_close_after_grace() {
    let mut s = client(5, 1, "10.0.0.1:443", "FIN_WAIT2", 30.0);
    s.shutdown = Some(ShutdownInfo {
        how: "write".into(),
        ago_s: 20.0,
    });
    let f = run(&[s], &settings());
    assert_eq!(
        kinds(&f),
        vec![(FindingKind::ShutdownNotClosed, Severity::Leak)]
    );
}

#[test]
fn since_checkpoint_counts_sockets_created_after_it() {
    let old = client(5, 10, "10.0.0.1:1", "ESTABLISHED", 9.0);
    let new = client(6, 11, "10.0.0.2:1", "ESTABLISHED", 1.0);
    let mut s = settings();
    s.checkpoints = vec![(1, 5.0)]; // set 5 s ago: only the 1 s old socket is newer
    let f = run(&[old, new], &s);
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].kind, f[0].fds.clone(), f[0].checkpoint),
        (FindingKind::SinceCheckpoint, vec![6], Some(1))
    );
}

#[test]
fn nested_checkpoints_make_one_finding_for_the_oldest() {
    let a = client(5, 10, "10.0.0.1:1", "ESTABLISHED", 9.0);
    let b = client(6, 12, "10.0.0.2:1", "ESTABLISHED", 1.0);
    let mut s = settings();
    s.checkpoints = vec![(1, 10.0), (2, 5.0), (3, 0.5)];
    let f = run(&[a, b], &s);
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].fds.clone(), f[0].checkpoint), (vec![5, 6], Some(1)));
    assert!(
        f[0].message.contains("1 newer checkpoint"),
        "{}",
        f[0].message
    );
}

#[test]
fn open_at_exit_orders_dangerous_first_and_listeners_last() {
    let mut listener = client(3, 1, "0.0.0.0:0", "LISTEN", 9.0);
    listener.role = Role::Listener;
    listener.peer = None;
    let healthy = client(4, 2, "10.0.0.1:1", "ESTABLISHED", 9.0);
    let mut leaked = client(5, 3, "10.0.0.2:1", "CLOSE_WAIT", 90.0);
    leaked.peer_closed_s = Some(80.0);
    let mut just_now = client(7, 5, "10.0.0.4:1", "CLOSE_WAIT", 9.0);
    just_now.peer_closed_s = Some(0.001);
    let mut pre = client(6, 4, "10.0.0.3:1", "ESTABLISHED", 9.0);
    pre.origin = Origin::Preexisting;
    let mut s = settings();
    s.at_exit = true;
    let f = run(&[listener, healthy, leaked, just_now, pre], &s);
    let exit: Vec<(i32, Severity)> = of_kind(&f, FindingKind::OpenAtExit)
        .iter()
        .map(|f| (f.fds[0], f.severity()))
        .collect();
    assert_eq!(
        exit,
        vec![
            (5, Severity::Leak),
            (7, Severity::Info),
            (4, Severity::Info),
            (3, Severity::Info)
        ]
    );
}

#[test]
fn a_peer_that_hung_up_just_before_exit_is_not_a_leak_anywhere() {
    // wget against an HTTP/1.0 server; redis-cli when the server shuts down.
    let mut s = client(3, 1, "127.0.0.1:6379", "CLOSE_WAIT", 0.2);
    s.peer_closed_s = Some(0.000_05);
    let mut settings = settings();
    settings.at_exit = true;
    let f = run(&[s], &settings);
    assert_eq!(kinds(&f), vec![(FindingKind::OpenAtExit, Severity::Info)]);
    assert!(f[0].message.contains("not a leak"), "{}", f[0].message);
    let mut report = report_of(vec![], f);
    summarize(&mut report);
    assert_eq!(gating(&report), 0);
}

#[test]
fn a_refused_connect_kept_open_is_stuck_connecting_not_peer_closed() {
    // Blocking connect(): the errno says it.
    let mut refused = client(5, 1, "127.0.0.1:1", "CLOSE", 30.0);
    refused.connect = Some(ConnectInfo {
        result: "ECONNREFUSED".into(),
        after_s: 0.0,
    });
    refused.peer_closed_s = Some(30.0);
    let f = run(&[refused.clone()], &settings());
    assert_eq!(
        kinds(&f),
        vec![(FindingKind::StuckConnecting, Severity::Leak)]
    );
    assert!(f[0].message.contains("ECONNREFUSED"), "{}", f[0].message);
    // Within the grace period: the program may be about to close it.
    refused.age_s = 2.0;
    assert!(run(&[refused], &settings()).is_empty());
    // Non-blocking: EINPROGRESS, then the kernel says it was never answered.
    let mut unanswered = client(6, 2, "127.0.0.1:1", "CLOSE", 30.0);
    unanswered.tcp = Some(TcpActivity {
        handshake_completed: Some(false),
        ..TcpActivity::default()
    });
    unanswered.state_since_s = Some(29.0);
    unanswered.peer_closed_s = Some(29.0);
    let f = run(&[unanswered], &settings());
    assert_eq!(
        kinds(&f),
        vec![(FindingKind::StuckConnecting, Severity::Leak)]
    );
}

#[test]
fn syn_sent_past_the_connect_threshold_is_a_warning() {
    let mut s = client(5, 1, "127.0.0.1:9", "SYN_SENT", 40.0);
    s.state_since_s = Some(40.0);
    s.tcp = Some(TcpActivity {
        unacked: 1,
        retransmits: 4,
        handshake_completed: Some(false),
        ..TcpActivity::default()
    });
    let f = run(&[s.clone()], &settings());
    assert_eq!(
        kinds(&f),
        vec![(FindingKind::StuckConnecting, Severity::Warning)]
    );
    assert!(
        f[0].message.contains("4 SYN retransmissions"),
        "{}",
        f[0].message
    );
    s.state_since_s = Some(3.0);
    assert!(run(&[s], &settings()).is_empty());
}

#[test]
fn unacknowledged_data_with_no_ack_is_half_open() {
    let mut s = active(client(5, 1, "10.0.0.1:443", "ESTABLISHED", 300.0), 70.0);
    {
        let tcp = s.tcp.as_mut().unwrap();
        tcp.unacked = 2;
        tcp.retransmits = 5;
        tcp.backoff = 5;
    }
    let f = run(&[s.clone()], &settings());
    assert_eq!(kinds(&f), vec![(FindingKind::HalfOpen, Severity::Warning)]);
    assert!(
        f[0].message.contains("no ACK from the peer for 1m10s"),
        "{}",
        f[0].message
    );
    // A slow network retransmits too, but it answers: not yet.
    s.tcp.as_mut().unwrap().last_ack_recv_s = Some(3.0);
    assert!(run(&[s.clone()], &settings()).is_empty());
    // Keepalive probes that go unanswered.
    let mut probed = active(client(6, 2, "10.0.0.1:443", "ESTABLISHED", 300.0), 200.0);
    probed.tcp.as_mut().unwrap().probes = 3;
    probed.tcp.as_mut().unwrap().keepalive = Some(true);
    assert_eq!(
        kinds(&run(&[probed], &settings())),
        vec![(FindingKind::HalfOpen, Severity::Warning)]
    );
}

fn ago(n: usize, step: f64) -> Vec<f64> {
    (0..n).rev().map(|i| i as f64 * step).collect()
}

#[test]
fn rising_needs_a_sustained_climb_not_a_pool_filling_once() {
    let times = ago(20, 1.0);
    let leak: Vec<u32> = (0..20).map(|i| i * 3).collect();
    let rise = rising(&leak, &times, 20).expect("a steady climb");
    assert_eq!((rise.from, rise.to), (0, 57));
    assert!((rise.per_min - 57.0 * 60.0 / 19.0).abs() < 1e-6);
    let pool: Vec<u32> = (0..20).map(|i| (i * 10).min(40)).collect();
    assert_eq!(
        rising(&pool, &times, 20),
        None,
        "filled in its first samples"
    );
    let came_back: Vec<u32> = (0..20).map(|i| if i < 15 { i * 5 } else { 10 }).collect();
    assert_eq!(rising(&came_back, &times, 20), None, "load that went away");
    assert_eq!(rising(&leak[..4], &times[..4], 1), None, "too few samples");
    assert_eq!(rising(&leak, &times, 100), None, "below the threshold");
}

#[test]
fn growth_names_the_stack_and_the_rate() {
    let sockets: Vec<Socket> = (0..30)
        .map(|i| {
            let mut s = client(10 + i, 100 + i as u64, "10.0.0.1:80", "ESTABLISHED", 5.0);
            s.stack_id = Some(7);
            s
        })
        .collect();
    let mut s = settings();
    s.growth_min = 20;
    s.dup_min = 1000;
    s.samples = Samples {
        ago_s: ago(10, 6.0),
        by_stack: vec![Series {
            key: 7,
            counts: (0..10).map(|i| i * 3 + 3).collect(),
        }],
        by_backend: vec![Series {
            key: "10.0.0.1:80".into(),
            counts: (0..10).map(|i| i * 3 + 3).collect(),
        }],
        closed_by_backend: vec![],
    };
    let f = run(&sockets, &s);
    assert_eq!(
        kinds(&f),
        vec![(FindingKind::Growth, Severity::Warning)],
        "the backend's rise is the same sockets: reported once"
    );
    assert_eq!(f[0].fds.len(), 30);
    assert_eq!(f[0].rate_per_min, Some(27.0 * 60.0 / 54.0));
    assert!(f[0].message.contains("stack 7"), "{}", f[0].message);
    // Without samples (fdguard inspect, watcher off): no trend findings at all.
    s.samples = Samples::default();
    assert!(run(&sockets, &s).is_empty());
}

#[test]
fn reconnect_churn_is_measured_against_the_norm() {
    let times = ago(40, 1.0);
    let backend = "10.0.0.1:5432".to_string();
    let mut calm_then_storm: Vec<u32> = vec![1; 40];
    for c in calm_then_storm.iter_mut().skip(32) {
        *c = 30;
    }
    let mut s = settings();
    s.samples = Samples {
        ago_s: times.clone(),
        closed_by_backend: vec![Series {
            key: backend.clone(),
            counts: calm_then_storm,
        }],
        ..Samples::default()
    };
    let f = run(&[], &s);
    assert_eq!(
        kinds(&f),
        vec![(FindingKind::ReconnectChurn, Severity::Warning)]
    );
    assert_eq!(f[0].backend.as_deref(), Some(backend.as_str()));
    // 8 intervals of 30 and one of 1 in the last 9 s.
    assert_eq!(f[0].rate_per_min, Some(241.0 * 60.0 / 9.0));
    // A program that always churns at that rate (HTTP/1.0 without keep-alive) is at its norm.
    s.samples.closed_by_backend[0].counts = vec![30; 40];
    assert!(run(&[], &s).is_empty());
    // Below the absolute floor, however sudden.
    let mut small = vec![0; 40];
    small[39] = 1;
    s.samples.closed_by_backend[0].counts = small.clone();
    assert!(run(&[], &s).is_empty());
    // A pool reconnecting its 4 members after the server closed them (urllib3): 4 in the last
    // second reads as 240 a minute, but 4 reconnects are not a loop.
    small[39] = 4;
    s.samples.closed_by_backend[0].counts = small;
    assert!(run(&[], &s).is_empty());
}

#[test]
fn a_duplicate_group_that_keeps_growing_is_a_warning() {
    let members: Vec<Socket> = (0..6)
        .map(|i| {
            active(
                client(10 + i, 1 + i as u64, "10.0.0.5:443", "ESTABLISHED", 60.0),
                1.0,
            )
        })
        .collect();
    let mut s = settings();
    s.growth_min = 4;
    s.samples = Samples {
        ago_s: ago(12, 5.0),
        by_backend: vec![Series {
            key: "10.0.0.5:443".into(),
            counts: vec![1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6],
        }],
        ..Samples::default()
    };
    let f = run(&members, &s);
    assert_eq!(
        kinds(&f),
        vec![
            (FindingKind::Growth, Severity::Warning),
            (FindingKind::DuplicateBackend, Severity::Warning)
        ],
        "the backend's growth, and the group that keeps growing past its high-water mark"
    );
    assert!(f[1].message.contains("keeps growing"), "{}", f[1].message);
    // The same pool after it stopped growing: context again.
    s.samples.by_backend[0].counts = vec![1, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6];
    assert_eq!(
        kinds(&run(&members, &s)),
        vec![(FindingKind::DuplicateBackend, Severity::Info)]
    );
    // A pool still filling up when the report is taken, by less than FDGUARD_GROWTH_MIN.
    s.growth_min = 20;
    s.samples.by_backend[0].counts = vec![0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 6];
    assert_eq!(
        kinds(&run(&members, &s)),
        vec![(FindingKind::DuplicateBackend, Severity::Info)]
    );
}

fn report_of(sockets: Vec<Socket>, findings: Vec<Finding>) -> Report {
    Report {
        schema_version: SCHEMA_VERSION,
        tool: "fdguard test".into(),
        collector: Collector::Preload,
        pid: 1,
        program: "/bin/x".into(),
        cmdline: vec![],
        trigger: Trigger::Signal,
        seq: 1,
        time_unix_ms: 0,
        uptime_s: 1.0,
        fd_budget: FdBudget {
            open_fds: 0,
            limit_soft: 1024,
            limit_hard: 1024,
            sockets_open: 0,
            sockets_tracked: 0,
        },
        sockets,
        findings,
        recently_closed: vec![],
        suppressions_used: vec![],
        checkpoints: vec![],
        notes: vec![],
        summary: Summary::default(),
    }
}

#[test]
fn a_dup_allowance_suppresses_up_to_max_and_flags_a_group_over_it() {
    let pool = |n: i32| -> Vec<Socket> {
        (0..n)
            .map(|i| {
                active(
                    client(10 + i, 1 + i as u64, "10.0.0.5:443", "ESTABLISHED", 9.0),
                    0.1,
                )
            })
            .collect()
    };
    let (rules, warnings) = suppress::parse("dup:10.0.0.5:443 max=8\n");
    assert!(warnings.is_empty());
    let sockets = pool(8);
    let mut report = report_of(sockets.clone(), run(&sockets, &settings()));
    suppress::apply(&mut report, &rules);
    assert_eq!(
        report.findings[0].suppressed_by.as_deref(),
        Some("dup:10.0.0.5:443 max=8")
    );
    let sockets = pool(9);
    let mut report = report_of(sockets.clone(), run(&sockets, &settings()));
    suppress::apply(&mut report, &rules);
    summarize(&mut report);
    let f = &report.findings[0];
    assert_eq!(
        (f.suppressed_by.as_deref(), f.severity()),
        (None, Severity::Warning)
    );
    assert!(
        f.message.contains("over the allowance of 8"),
        "{}",
        f.message
    );
    assert!(report.suppressions_used.is_empty());
    assert_eq!(report.summary.by_severity.get("warning"), Some(&1));
    assert_eq!(gating(&report), 0, "a warning never gates the exit code");
}
