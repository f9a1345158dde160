//! Helpers for the Python-frame tests (issue 16): which CPython interpreters this machine has,
//! the venvs the test script installs, the Python frames of a socket, and the line of a
//! `# fdguard: <what>` marker in a test script (the ground truth for `file:line`).

use fdguard_report::{Frame, Report, Socket};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A venv's interpreter (see [`super::venv_python`]).
pub fn venv(name: &str) -> PathBuf {
    super::venv_python(name)
}

/// A test script under tests/python.
pub fn script(name: &str) -> PathBuf {
    super::repo().join("tests/python").join(name)
}

/// The 1-based line of `script` holding `# fdguard: <what>`.
pub fn marker_line(script: &Path, what: &str) -> u32 {
    let text = std::fs::read_to_string(script).unwrap();
    let needle = format!("# fdguard: {what}");
    text.lines()
        .position(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no marker {needle:?} in {}", script.display())) as u32
        + 1
}

/// One CPython interpreter found on this machine.
#[derive(Debug, Clone)]
pub struct Interpreter {
    pub path: PathBuf,
    /// (major, minor, micro).
    pub version: (u32, u32, u32),
}

impl Interpreter {
    /// True for the versions whose frames fdguard reads.
    pub fn supported(&self) -> bool {
        self.version.0 == 3 && (8..=13).contains(&self.version.1)
    }

    pub fn name(&self) -> String {
        let (a, b, c) = self.version;
        format!("{a}.{b}.{c} ({})", self.path.display())
    }
}

/// Every CPython on this machine: the venvs' interpreter, Debian's `/usr/bin/python3.X`,
/// pyenv's versions, and any listed in `FDGUARD_TEST_PYTHONS` (colon-separated). Wrappers and
/// duplicates (the same real binary) are skipped; never the pyenv shim on PATH.
pub fn interpreters() -> Vec<Interpreter> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(list) = std::env::var_os("FDGUARD_TEST_PYTHONS") {
        candidates.extend(std::env::split_paths(&list));
    }
    for minor in 6..=14 {
        candidates.push(PathBuf::from(format!("/usr/bin/python3.{minor}")));
    }
    let pyenv = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")));
    if let Some(dir) = pyenv.and_then(|r| std::fs::read_dir(r.join("versions")).ok()) {
        let mut found: Vec<PathBuf> = dir
            .flatten()
            .flat_map(|e| [e.path().join("bin/python3"), e.path().join("bin/python")])
            .collect();
        found.sort();
        candidates.extend(found);
    }
    let mut out: Vec<Interpreter> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    for path in candidates {
        let Ok(real) = std::fs::canonicalize(&path) else {
            continue;
        };
        if seen.contains(&real) {
            continue;
        }
        seen.push(real);
        let Ok(o) = Command::new(&path)
            .args(["-c", "import sys; print('%d %d %d' % sys.version_info[:3])"])
            .output()
        else {
            continue;
        };
        let text = String::from_utf8_lossy(&o.stdout);
        let v: Vec<u32> = text
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if let [a, b, c] = v[..] {
            out.push(Interpreter {
                path,
                version: (a, b, c),
            });
        }
    }
    out
}

/// The Python frames of a socket's creating stack, innermost first.
pub fn python_frames(socket: &Socket) -> Vec<&Frame> {
    socket.stack.iter().filter(|f| f.is_python()).collect()
}

/// The socket with fd `fd`.
pub fn socket(report: &Report, fd: i32) -> &Socket {
    report
        .sockets
        .iter()
        .find(|s| s.fd == fd)
        .unwrap_or_else(|| panic!("fd {fd} not in the report: {:?}", super::listed(report)))
}

/// The stack's Python frame for `function` in `file` at `line`, as `file:line`, or a panic
/// that prints the whole stack.
pub fn assert_frame<'a>(socket: &'a Socket, function: &str, file: &Path, line: u32) -> &'a Frame {
    let file = file.to_string_lossy();
    socket
        .stack
        .iter()
        .find(|f| {
            f.is_python()
                && f.function.as_deref() == Some(function)
                && f.line == Some(line)
                && f.file.as_deref().is_some_and(|p| {
                    // 3.8 keeps a script's path as given; later versions make it absolute.
                    file.ends_with(p.trim_start_matches("./"))
                })
        })
        .unwrap_or_else(|| {
            panic!(
                "fd {}: no Python frame {function} {file}:{line} in\n{}",
                socket.fd,
                socket
                    .stack
                    .iter()
                    .enumerate()
                    .map(|(i, f)| fdguard_report::stacks::frame_line(i, f, true))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })
}
