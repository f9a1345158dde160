//! Issue 10 corpus: wget against an HTTP/1.0 server, the issue's own example of a false alarm:
//! the server closes the connection after the response and wget exits a moment later, its
//! socket still open (ESTABLISHED or CLOSE_WAIT, depending on who is faster). With the default
//! thresholds that is never a leak: not in the JSON, not in the text, not for FDGUARD_EXITCODE.

mod common;
mod corpus_support;

use common::Run;
use corpus_support::{findings_text, leak_level, program};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

#[test]
fn wget_after_an_http_1_0_response_is_not_a_leak() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    const RUNS: usize = 10;
    let server = std::thread::spawn(move || {
        for stream in listener.incoming().take(RUNS) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
            // HTTP/1.0: the server hangs up after the response.
            drop(stream);
            let _ = reader.read(&mut [0u8; 1]);
        }
    });
    let url = format!("http://127.0.0.1:{port}/");
    let mut close_wait = 0;
    for _ in 0..RUNS {
        let out = Run::new(program("wget", "wget"))
            .args(["-q", "-O", "/dev/null", "--tries=1", &url])
            .env("FDGUARD_EXITCODE", "23")
            .env("FDGUARD_EXIT_REPORT", "always")
            .run();
        assert_eq!(out.code(), Some(0), "{}", out.stderr);
        let exit = out.exit_report();
        assert!(leak_level(exit).is_empty(), "{}", findings_text(exit));
        let text = fdguard_report::text::render(exit);
        assert!(!text.contains("(leak)"), "{text}");
        close_wait += exit
            .sockets
            .iter()
            .filter(|s| s.tcp_state == Some(fdguard_report::TcpState::CloseWait))
            .count();
    }
    server.join().unwrap();
    eprintln!("wget exited with its socket in CLOSE_WAIT in {close_wait} of {RUNS} runs");
}
