//! Issue 12, item 10 (escaping): every string that came from the host or a peer is escaped in
//! the text report. A thread name, an abstract unix name, a unix path, the command line and
//! the program's own path, all carrying newlines, ESC and BEL, cannot forge a `SUMMARY:` line
//! or send a terminal sequence: the report keeps one SUMMARY, holds no control byte, and
//! shows each forged name in its escaped form.

mod common;

use common::{Run, compile, host_ok, temp_dir};

#[test]
fn forged_names_are_escaped_in_the_text_report() {
    let dir = temp_dir("forged");
    // The program itself runs from a path that tries the same trick.
    let program = dir.join("prog\n==1==SUMMARY: \u{1b}[2J");
    std::fs::copy(compile("forged"), &program).unwrap();
    let out = Run::new(&program)
        .arg(&dir)
        .arg("arg\nSUMMARY: \u{1b}[31m\u{202e}")
        .env("FDGUARD_REPORT", "stderr")
        .env("FDGUARD_FORMAT", "text")
        .run();
    host_ok(&out, "forged");
    let text = &out.stderr;
    assert!(text.contains("(trigger: exit)"), "{text}");
    for bad in ['\u{1b}', '\u{7}', '\u{202e}'] {
        assert!(!text.contains(bad), "{bad:?} reached the report:\n{text}");
    }
    let summaries: Vec<&str> = text.lines().filter(|l| l.contains("SUMMARY:")).collect();
    let real: Vec<&&str> = summaries
        .iter()
        .filter(|l| l.starts_with("SUMMARY:"))
        .collect();
    assert_eq!(
        real.len(),
        1,
        "exactly one SUMMARY line starts a line:\n{text}"
    );
    for escaped in [
        r"thread",
        r"(\nSUMMARY:\x1b[2J)",
        r"@evil\nSUMMARY: fdguard: 0 live sockets\x1b]0;pwned\x07",
        r"/s\n\x1b[31mred\x07",
        r"prog\n==1==SUMMARY: \x1b[2J",
        r"$'arg\nSUMMARY: \x1b[31m\u202e'",
    ] {
        assert!(text.contains(escaped), "missing {escaped:?}:\n{text}");
    }
}
