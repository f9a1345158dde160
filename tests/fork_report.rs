//! Issue 12, item 4: fork() while fdguard is busy. One thread writes reports back to back,
//! another labels sockets and sets checkpoints, and the main thread forks 60 times; every
//! child labels, checkpoints, reports and exits with an exit report. No child may hang on a
//! lock a parent thread held at fork time (the previous label map did: 6 of 60 children hung
//! in fdguard_label() or in their exit report). Stacks are off to keep each child's reports
//! cheap; locks, not stacks, are what this is about.

mod common;

use common::{Run, compile, host_ok};
use std::time::Duration;

#[test]
fn children_forked_during_reports_and_labelling_never_hang() {
    let bin = compile("fork_report");
    let out = Run::new(&bin)
        .args(["60", "100"])
        .env("FDGUARD_STACK_DEPTH", "0")
        .env("FDGUARD_EXIT_REPORT", "always")
        .timeout(Duration::from_secs(240))
        .run();
    host_ok(&out, "fork during reports");
    let truth = &out.json_lines()[0];
    assert_eq!(truth["forks"], 60, "{truth}");
    assert_eq!(truth["hung"], 0, "children hung: {truth}\n{}", out.stderr);
    assert_eq!(truth["failed"], 0, "a child's fdguard call failed: {truth}");
    let children = out
        .reports
        .iter()
        .filter(|r| r.trigger == fdguard_report::Trigger::Exit)
        .count();
    assert!(
        children >= 60,
        "every child and the parent wrote an exit report: {children}"
    );
}
