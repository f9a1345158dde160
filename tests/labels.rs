//! Issue 12, item 6: labels live and die with their sockets. 300,000 sockets created,
//! labelled and closed grow the resident set by less than 8 MiB (the previous store kept
//! every label until a report: +35 MB in a release build), and the labels of the sockets
//! still open — one of them moved to another fd by dup() — are all still there.

mod common;

use common::{Run, compile, host_ok};
use fdguard_report::Trigger;

#[test]
fn three_hundred_thousand_labelled_then_closed_sockets_stay_within_a_memory_bound() {
    let bin = compile("labels_rss");
    let out = Run::new(&bin).arg("300000").run();
    host_ok(&out, "labels");
    assert_eq!(out.stderr, "");
    let truth = &out.json_lines()[0];
    let grown =
        truth["rss_after_kib"].as_i64().unwrap() - truth["rss_before_kib"].as_i64().unwrap();
    eprintln!("resident set grew by {grown} KiB over 300,000 labelled sockets");
    assert!(grown < 8 * 1024, "grew by {grown} KiB: {truth}");
    let report = out
        .reports
        .iter()
        .find(|r| r.trigger == Trigger::Signal)
        .expect("a signal report");
    let label_of = |fd: i64| {
        report
            .sockets
            .iter()
            .find(|s| s.fd as i64 == fd)
            .and_then(|s| s.label.clone())
    };
    for (i, fd) in truth["kept"].as_array().unwrap().iter().enumerate() {
        assert_eq!(label_of(fd.as_i64().unwrap()), Some(format!("kept {i}")));
    }
    assert_eq!(
        label_of(truth["dup"].as_i64().unwrap()).as_deref(),
        Some("moved by dup")
    );
}
