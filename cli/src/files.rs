//! Reading report files, and small file-system helpers shared by the subcommands.

use std::io::Read;
use std::path::{Path, PathBuf};

use fdguard_report::{Report, SCHEMA_VERSION};

use crate::error::{Failure, Result};

/// Reads and parses a JSON report; `-` reads standard input. Errors say what the file is
/// instead (a text report, not JSON at all, a newer schema, …).
pub fn load_report(path: &Path) -> Result<Report> {
    let shown = path.display();
    let bytes = if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map_err(|e| {
            Failure::new(format!("cannot read the report from standard input: {e}"))
        })?;
        buf
    } else {
        std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Failure::new(format!("{shown}: no such file")),
            std::io::ErrorKind::PermissionDenied => Failure::new(format!(
                "{shown}: permission denied (report files are created mode 0600 by the user \
                 that ran the program; read it as that user)"
            )),
            _ => Failure::new(format!("cannot read {shown}: {e}")),
        })?
    };
    parse_report(&bytes, &shown.to_string())
}

/// Parses a JSON report; `what` names it in error messages.
pub fn parse_report(bytes: &[u8], what: &str) -> Result<Report> {
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(Failure::new(format!("{what} is empty")));
    }
    if trimmed.starts_with("==") {
        return Err(Failure::new(format!(
            "{what} is a text report; this command needs a JSON report \
             (write one with FDGUARD_FORMAT=json, `fdguard run --format json`, or \
             `fdguard report PID --format json`)"
        )));
    }
    // Look at the version before the full parse, so a newer schema gets a clear message even if
    // it changed something this version would choke on.
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(&text) {
        match map.get("schema_version").and_then(|v| v.as_u64()) {
            None => {
                return Err(Failure::new(format!(
                    "{what} is JSON but not an fdguard report (no schema_version field)"
                )));
            }
            Some(v) if v > u64::from(SCHEMA_VERSION) => eprintln!(
                "fdguard: warning: {what} has schema_version {v}; this fdguard reads version \
                 {SCHEMA_VERSION} and ignores fields it does not know"
            ),
            Some(_) => {}
        }
    }
    serde_json::from_str(&text).map_err(|e| {
        Failure::new(format!(
            "{what} is not a valid fdguard JSON report: {e} (truncated file, or written by an \
             incompatible version?)"
        ))
    })
}

/// The report files named by `inputs`: files as given, directories' `*.json` (not hidden, not
/// recursive) in name order; `true` marks those found in a directory (a file there that is not
/// a report is skipped with a warning, one named on the command line is an error).
pub fn report_files(inputs: &[PathBuf]) -> Result<Vec<(PathBuf, bool)>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| Failure::new(format!("cannot list {}: {e}", input.display())))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default();
                    name.ends_with(".json") && !name.starts_with('.') && p.is_file()
                })
                .collect();
            found.sort();
            files.extend(found.into_iter().map(|p| (p, true)));
        } else {
            files.push((input.clone(), false));
        }
    }
    if files.is_empty() {
        return Err(Failure::new(format!(
            "no JSON reports in {}",
            inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(files)
}

/// `path` made absolute against the current directory (the child may chdir; the library
/// resolves relative report paths against ITS current directory at report time).
pub fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path)
        .map_err(|e| Failure::new(format!("cannot make {} absolute: {e}", path.display())))
}

/// 16 hex digits from the kernel's random source, for unguessable file names. Falls back to the
/// clock and pid (uniqueness is still guaranteed by `O_EXCL`/`mkdir` at the call sites).
pub fn random_token() -> String {
    let mut bytes = [0u8; 8];
    let from_kernel =
        std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if from_kernel.is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        bytes = (nanos ^ (u64::from(std::process::id()) << 32)).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
