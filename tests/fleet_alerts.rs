//! The README's example alert rules (section "Fleet") are valid and fire when they should:
//! `promtool check rules` on the block as published, then `promtool test rules` on synthetic
//! series shaped like fdguard's metrics files. Needs Debian's prometheus package (promtool);
//! fails, never skips, without it.

mod common;

use common::temp_dir;
use std::process::Command;

/// The YAML block that follows the README's marker.
fn readme_rules() -> String {
    let readme = std::fs::read_to_string(common::repo().join("README.md")).unwrap();
    let marker = "<!-- fleet alert rules: tested by tests/fleet_alerts.rs -->";
    let after = &readme[readme.find(marker).expect("README lacks the rules marker")..];
    let start = after
        .find("```yaml\n")
        .expect("a yaml block after the marker")
        + 8;
    let end = start + after[start..].find("```").unwrap();
    after[start..end].to_string()
}

fn promtool(args: &[&str], dir: &std::path::Path) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}): apt-get install prometheus (tests/support/install-deps.sh does)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}: {text}");
    text
}

/// One process's series, one sample a minute for 90 minutes: `close_wait` and `open_fds` as
/// promtool's expanding notation, the file rewritten every minute (or not, `fresh: false`).
fn process(pid: &str, close_wait: &str, open_fds: &str, leaks: &str, fresh: bool) -> String {
    let id = format!("instance=\"h1\",program=\"client\",pid=\"{pid}\"");
    let updated = if fresh { "0+60x90" } else { "0x90" };
    format!(
        "      - series: 'fdguard_sockets{{{id},role=\"client\",state=\"CLOSE_WAIT\"}}'\n        values: '{close_wait}'\n\
         \x20     - series: 'fdguard_open_fds{{{id}}}'\n        values: '{open_fds}'\n\
         \x20     - series: 'fdguard_fd_limit{{{id},kind=\"soft\"}}'\n        values: '2000x90'\n\
         \x20     - series: 'fdguard_findings{{{id},kind=\"peer_closed\",severity=\"leak\"}}'\n        values: '{leaks}'\n\
         \x20     - series: 'fdguard_last_update_timestamp_seconds{{{id}}}'\n        values: '{updated}'\n"
    )
}

fn expect(alert: &str, at: &str, pids: &[&str], extra: &str) -> String {
    let mut out =
        format!("      - eval_time: {at}\n        alertname: {alert}\n        exp_alerts:");
    if pids.is_empty() {
        out.push_str(" []\n");
    }
    out.push('\n');
    for pid in pids {
        out.push_str(&format!(
            "          - exp_labels: {{instance: h1, program: client, pid: \"{pid}\"{extra}}}\n"
        ));
    }
    out
}

#[test]
fn the_readme_alerts_are_valid_and_fire_when_they_should() {
    let dir = temp_dir("alerts");
    std::fs::write(dir.join("rules.yml"), readme_rules()).unwrap();
    promtool(&["check", "rules", "rules.yml"], &dir);

    // pid 1: one more CLOSE_WAIT socket a minute, fds climbing past 80 % of 2000 at minute 16,
    //        a leak finding from minute 10 on.
    // pid 2: a steady 5 CLOSE_WAIT sockets (a healthy pool that lost its peer once), 10 % fds.
    // pid 3: like pid 1, but its process died at once: the file was never rewritten.
    let mut test = String::from(
        "rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n",
    );
    test.push_str(&process("1", "0+1x90", "100+100x90", "0x10 1x80", true));
    test.push_str(&process("2", "5x90", "200x90", "0x90", true));
    test.push_str(&process("3", "0+1x90", "100+100x90", "0x10 1x80", false));
    test.push_str("    alert_rule_test:\n");
    // Rising, but not yet for 30 minutes.
    test.push_str(&expect("SocketsInCloseWaitRising", "25m", &[], ""));
    test.push_str(&expect("SocketsInCloseWaitRising", "45m", &["1"], ""));
    test.push_str(&expect("FdUseAbove80Percent", "18m", &[], ""));
    test.push_str(&expect("FdUseAbove80Percent", "25m", &["1"], ""));
    test.push_str(&expect("SocketLeakFinding", "20m", &[], ""));
    test.push_str(&expect(
        "SocketLeakFinding",
        "30m",
        &["1"],
        ", kind: peer_closed",
    ));
    std::fs::write(dir.join("test.yml"), test).unwrap();
    promtool(&["test", "rules", "test.yml"], &dir);
}
