//! The metrics stay bounded whatever the process talks to: a real client under the shim with
//! 10,000 connections to 10,000 distinct loopback peers (tests/programs/fleet_peers.c; the
//! listeners live in a second process without the shim, each side under RLIMIT_NOFILE's hard
//! limit of 20,000) writes a file with the 10 busiest backends plus `other`, not 10,000
//! series, and promtool accepts it.

mod common;

use common::prom;
use common::{Run, compile, temp_dir};
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

const PEERS: usize = 10_000;
/// `fdguard_report::fleet::TOP_BACKENDS`.
const TOP_BACKENDS: usize = 10;

#[test]
fn ten_thousand_peers_make_eleven_backend_series() {
    let program = compile("fleet_peers");
    let dir = temp_dir("cardinality");
    let ports = dir.join("ports.txt");
    let (mut server, _) = Run::new(&program)
        .args(["server", &PEERS.to_string()])
        .arg(&ports)
        .without_shim()
        .stdin(b"")
        .spawn();
    let server_stdin = server.stdin.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ports.exists() {
        assert!(
            server.try_wait().unwrap().is_none(),
            "the server exited early"
        );
        assert!(
            Instant::now() < deadline,
            "the server's listeners did not appear"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let metrics = dir.join("metrics");
    std::fs::create_dir(&metrics).unwrap();
    let (mut client, _) = Run::new(&program)
        .arg("client")
        .arg(&ports)
        .env("FDGUARD_METRICS_DIR", &metrics)
        .env("FDGUARD_WATCH_MS", "100")
        .env("FDGUARD_EXIT_REPORT", "never")
        .stdin(b"")
        .spawn();
    let client_stdin = client.stdin.take().unwrap();
    let mut line = String::new();
    BufReader::new(client.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(
        line.trim(),
        format!("{{\"ok\":true,\"connected\":{PEERS}}}")
    );

    let file = prom::file_of(&metrics, client.id());
    let all_counted = |samples: &[prom::Sample]| {
        prom::select(samples, "fdguard_sockets", &[])
            .iter()
            .map(|s| s.value)
            .sum::<f64>()
            == PEERS as f64
    };
    let (samples, text) = prom::wait_for(&file, Duration::from_secs(120), all_counted);
    prom::promtool_check(&file);

    let backends = prom::select(&samples, "fdguard_backend_sockets", &[]);
    assert_eq!(backends.len(), TOP_BACKENDS + 1, "{text}");
    let other = prom::value(&samples, "fdguard_backend_sockets", &[("backend", "other")]);
    assert_eq!(other, (PEERS - TOP_BACKENDS) as f64);
    assert_eq!(
        backends.iter().map(|s| s.value).sum::<f64>(),
        PEERS as f64,
        "every client fd counted once"
    );
    assert_eq!(
        prom::value(
            &samples,
            "fdguard_sockets",
            &[("role", "client"), ("state", "ESTABLISHED")]
        ),
        PEERS as f64
    );
    assert!(
        samples.len() < 50,
        "{} series for one process:\n{text}",
        samples.len()
    );
    assert!(
        text.len() < 8192,
        "the file stays small: {} bytes",
        text.len()
    );

    drop(client_stdin);
    drop(server_stdin);
    for (name, child) in [("client", &mut client), ("server", &mut server)] {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the {name} did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "{name}: {status:?}");
    }
    assert!(!file.exists(), "the client's file outlived it");
}
