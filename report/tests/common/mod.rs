//! Golden-file comparison shared by the report crate's tests.
//!
//! `FDGUARD_BLESS=1 cargo test -p fdguard-report` rewrites the expected files from the current
//! output; review the change with `git diff` before committing it.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use fdguard_report::Report;

/// `report/tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Parses the JSON fixture `name`.
pub fn load(name: &str) -> Report {
    let path = fixture(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()))
}

/// Compares `actual` with the expected file `name` line by line, or rewrites the file when
/// `FDGUARD_BLESS=1`.
pub fn assert_golden(name: &str, actual: &str) {
    let path = fixture(name);
    if std::env::var_os("FDGUARD_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read expected output {}: {e}\n(create it with FDGUARD_BLESS=1)",
            path.display()
        )
    });
    let expected_lines: Vec<&str> = expected.lines().collect();
    let actual_lines: Vec<&str> = actual.lines().collect();
    let mut differences = Vec::new();
    for i in 0..expected_lines.len().max(actual_lines.len()) {
        let (e, a) = (expected_lines.get(i), actual_lines.get(i));
        if e != a {
            differences.push(format!(
                "line {}:\n  expected: {}\n  actual:   {}",
                i + 1,
                e.map_or("<missing>".to_string(), |l| format!("{l:?}")),
                a.map_or("<missing>".to_string(), |l| format!("{l:?}"))
            ));
        }
    }
    if differences.is_empty() && expected.ends_with('\n') != actual.ends_with('\n') {
        differences.push("final newline differs".to_string());
    }
    if !differences.is_empty() {
        let shown = differences.len().min(15);
        panic!(
            "{} differs from the output in {} place(s) (showing {shown}); if the change is \
             intended, rerun with FDGUARD_BLESS=1 and review `git diff`:\n{}\n--- actual output ---\n{actual}",
            path.display(),
            differences.len(),
            differences[..shown].join("\n")
        );
    }
}
