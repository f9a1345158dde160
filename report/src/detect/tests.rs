use super::*;
use crate::{ConnectInfo, ShutdownInfo, TcpState};

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

fn settings() -> Settings {
    Settings {
        grace_s: 10.0,
        dup_min: 2,
        at_exit: false,
        checkpoints: Vec::new(),
    }
}

#[test]
fn idle_long_lived_connection_is_not_a_finding() {
    let s = [client(5, 1, "10.0.0.1:443", "ESTABLISHED", 86_400.0)];
    assert!(run(&s, &settings()).is_empty());
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
        (f[0].kind, f[0].fds.clone()),
        (FindingKind::PeerClosed, vec![5])
    );
    assert!(f[0].message.contains("40.0s"), "{}", f[0].message);
}

#[test]
fn duplicate_group_names_the_peer_closed_member_as_the_leak() {
    let a = client(6, 1, "127.0.0.1:50051", "ESTABLISHED", 50.0);
    let b = client(7, 2, "127.0.0.1:50051", "CLOSE_WAIT", 49.0);
    let other = client(8, 3, "127.0.0.1:50052", "ESTABLISHED", 49.0);
    let f = run(&[a, b, other], &settings());
    let dup: Vec<_> = f
        .iter()
        .filter(|f| f.kind == FindingKind::DuplicateBackend)
        .collect();
    assert_eq!(dup.len(), 1);
    assert_eq!(dup[0].fds, vec![6, 7]);
    assert_eq!(dup[0].suspect_fds, vec![7]);
    assert_eq!(dup[0].backend.as_deref(), Some("127.0.0.1:50051"));
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
        f.iter().map(|f| f.kind).collect::<Vec<_>>(),
        vec![FindingKind::ShutdownNotClosed]
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
    let mut leaked = client(5, 3, "10.0.0.2:1", "CLOSE_WAIT", 9.0);
    leaked.peer_closed_s = Some(1.0);
    let mut pre = client(6, 4, "10.0.0.3:1", "ESTABLISHED", 9.0);
    pre.origin = Origin::Preexisting;
    let mut s = settings();
    s.at_exit = true;
    let f: Vec<_> = run(&[listener, healthy, leaked, pre], &s)
        .into_iter()
        .filter(|f| f.kind == FindingKind::OpenAtExit)
        .map(|f| f.fds[0])
        .collect();
    assert_eq!(f, vec![5, 4, 3]);
}
