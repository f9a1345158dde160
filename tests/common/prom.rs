//! The Prometheus text exposition format, as the fleet tests read fdguard's metrics files:
//! `promtool check metrics` (Debian's prometheus package) on a file, and a strict parser of the
//! subset fdguard writes (gauges, label values escaped, no timestamps). Panics, never skips.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Runs `promtool check metrics < path` and asserts it finds nothing wrong (lint included).
pub fn promtool_check(path: &Path) {
    let file = std::fs::File::open(path).unwrap();
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}): apt-get install prometheus (tests/support/install-deps.sh does)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.trim().is_empty(),
        "promtool check metrics {}: {:?}\n{text}\n--- file ---\n{}",
        path.display(),
        out.status,
        std::fs::read_to_string(path).unwrap_or_default()
    );
}

/// Parses a metrics file; panics on any line that is not a HELP/TYPE comment or a sample of a
/// family declared before it.
pub fn parse(text: &str) -> Vec<Sample> {
    let mut declared = Vec::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect(line);
            assert_eq!(kind, "gauge", "{line}");
            declared.push(name.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "unexpected line {line:?}"
        );
        let open = line.find('{').expect(line);
        let name = &line[..open];
        assert!(
            declared.iter().any(|d| d == name),
            "{name} used before its TYPE"
        );
        let body: Vec<char> = line[open + 1..].chars().collect();
        let mut labels = BTreeMap::new();
        let mut i = 0;
        loop {
            match body.get(i).copied() {
                Some('}') => {
                    i += 1;
                    break;
                }
                Some(',') => i += 1,
                Some(_) => {
                    let key_start = i;
                    while body.get(i).is_some_and(|&c| c != '=') {
                        i += 1;
                    }
                    let key: String = body[key_start..i].iter().collect();
                    assert_eq!(body.get(i + 1), Some(&'"'), "{line}");
                    i += 2;
                    let mut value = String::new();
                    loop {
                        match body.get(i).copied().expect(line) {
                            '\\' => {
                                value.push(match body.get(i + 1).copied().expect(line) {
                                    'n' => '\n',
                                    c => c,
                                });
                                i += 2;
                            }
                            '"' => {
                                i += 1;
                                break;
                            }
                            c => {
                                value.push(c);
                                i += 1;
                            }
                        }
                    }
                    assert!(
                        labels.insert(key.clone(), value).is_none(),
                        "label {key} twice: {line}"
                    );
                }
                None => panic!("unterminated labels: {line}"),
            }
        }
        let rest: String = body[i..].iter().collect();
        let rest = rest.trim_start_matches(' ');
        assert!(!rest.contains(' '), "no timestamps: {line}");
        let value: f64 = rest.parse().unwrap_or_else(|_| panic!("value of {line}"));
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    samples
}

/// The samples of `name` whose labels include every `(key, value)` of `with`.
pub fn select<'a>(samples: &'a [Sample], name: &str, with: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

/// The one sample of `name` with those labels.
pub fn value(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    let found = select(samples, name, with);
    assert_eq!(found.len(), 1, "{name} {with:?}: {found:?}");
    found[0].value
}

/// `dir/fdguard-<pid>.prom`.
pub fn file_of(dir: &Path, pid: u32) -> PathBuf {
    dir.join(format!("fdguard-{pid}.prom"))
}

/// Waits (bounded) until `path` holds a file whose samples satisfy `ready`; returns them and
/// the text. Panics with the last text seen on timeout.
pub fn wait_for(
    path: &Path,
    timeout: Duration,
    ready: impl Fn(&[Sample]) -> bool,
) -> (Vec<Sample>, String) {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        // Only fdguard's own regular file (a test may plant a symlink at the name first).
        let written = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file());
        if let Some(text) = written
            .then(|| std::fs::read_to_string(path).ok())
            .flatten()
        {
            let samples = parse(&text);
            if ready(&samples) {
                return (samples, text);
            }
            last = text;
        }
        assert!(
            start.elapsed() < timeout,
            "{} not ready within {timeout:?}; last seen:\n{last}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
