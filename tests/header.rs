//! include/fdguard.h cannot drift (house style H15, rustls-ffi's `ensure-header-updated` and
//! tests/rustls_version.rs): it is regenerated here with the pinned cbindgen and compared with
//! the committed file; its version macros are checked against Cargo.toml; its result codes are
//! checked against a frozen table (they are ABI); no libc name may appear in it.
//!
//! `FDGUARD_BLESS=1 cargo test -p fdguard --test header` rewrites the committed header.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn header_path() -> PathBuf {
    root().join("include/fdguard.h")
}

fn committed() -> String {
    let path = header_path();
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; generate it with FDGUARD_BLESS=1 cargo test -p fdguard --test header",
            path.display()
        )
    })
}

/// The header as cbindgen generates it now from src/capi.rs (see cbindgen.toml for why only
/// that file).
fn generate() -> String {
    let config = cbindgen::Config::from_file(root().join("cbindgen.toml"))
        .unwrap_or_else(|e| panic!("cbindgen.toml: {e}"));
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root().join("src/capi.rs"))
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen failed on src/capi.rs: {e}"));
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("cbindgen wrote UTF-8")
}

/// The header without comments, string literals kept.
fn code_only(header: &str) -> String {
    let mut out = String::with_capacity(header.len());
    let mut rest = header;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("/*") {
            let end = after
                .find("*/")
                .expect("unterminated comment in the header");
            rest = &after[end + 2..];
            out.push(' ');
        } else if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |end| &after[end..]);
        } else {
            let ch = rest.chars().next().unwrap();
            out.push(ch);
            rest = &rest[ch.len_utf8()..];
        }
    }
    out
}

fn identifiers(code: &str) -> Vec<&str> {
    code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
        .collect()
}

#[test]
fn committed_header_matches_cbindgen_output() {
    let fresh = generate();
    let path = header_path();
    if std::env::var_os("FDGUARD_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let old = committed();
    if old != fresh {
        let first_difference = old
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| old.lines().count().min(fresh.lines().count()));
        panic!(
            "include/fdguard.h is out of date (first difference at line {}):\n  committed: {:?}\n  generated: {:?}\n\
             Regenerate it with FDGUARD_BLESS=1 cargo test -p fdguard --test header and commit it.",
            first_difference + 1,
            old.lines().nth(first_difference).unwrap_or("<end of file>"),
            fresh
                .lines()
                .nth(first_difference)
                .unwrap_or("<end of file>"),
        );
    }
}

fn defines(header: &str) -> BTreeMap<String, String> {
    header
        .lines()
        .filter_map(|line| line.trim().strip_prefix("#define "))
        .filter_map(|rest| {
            let (name, value) = rest.split_once(char::is_whitespace)?;
            Some((name.to_string(), value.trim().to_string()))
        })
        .collect()
}

#[test]
fn version_macros_match_cargo_toml() {
    let header = committed();
    let d = defines(&header);
    let want = [
        (
            "FDGUARD_VERSION_MAJOR",
            env!("CARGO_PKG_VERSION_MAJOR").to_string(),
        ),
        (
            "FDGUARD_VERSION_MINOR",
            env!("CARGO_PKG_VERSION_MINOR").to_string(),
        ),
        (
            "FDGUARD_VERSION_PATCH",
            env!("CARGO_PKG_VERSION_PATCH").to_string(),
        ),
        (
            "FDGUARD_VERSION",
            format!("\"{}\"", env!("CARGO_PKG_VERSION")),
        ),
    ];
    for (name, value) in want {
        assert_eq!(
            d.get(name),
            Some(&value),
            "{name} in include/fdguard.h must match Cargo.toml's version {}: update \
             after_includes in cbindgen.toml and regenerate",
            env!("CARGO_PKG_VERSION")
        );
    }
    // Cross-check with Cargo.toml's own text, in case the package stops inheriting the
    // workspace version.
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let declared = manifest
        .lines()
        .find_map(|l| {
            let l = l.trim();
            let v = l
                .strip_prefix("version")?
                .trim_start()
                .strip_prefix('=')?
                .trim();
            v.strip_prefix('"')?.strip_suffix('"').map(str::to_string)
        })
        .expect("a version = \"...\" line in Cargo.toml");
    assert_eq!(declared, env!("CARGO_PKG_VERSION"));
}

/// Result codes and format values are ABI: a program compiled against an older header must keep
/// working. Add new codes at the end; never change or reuse one of these.
const FROZEN: &[(&str, u32)] = &[
    ("FDGUARD_RESULT_OK", 7000),
    ("FDGUARD_RESULT_NULL_ARGUMENT", 7001),
    ("FDGUARD_RESULT_BAD_FD", 7002),
    ("FDGUARD_RESULT_NOT_TRACKED", 7003),
    ("FDGUARD_RESULT_UNKNOWN_CHECKPOINT", 7004),
    ("FDGUARD_RESULT_BAD_FORMAT", 7005),
    ("FDGUARD_RESULT_BAD_LABEL", 7006),
    ("FDGUARD_RESULT_LABEL_TOO_LONG", 7007),
    ("FDGUARD_RESULT_BAD_PATH", 7008),
    ("FDGUARD_RESULT_PATH_NOT_A_FILE", 7009),
    ("FDGUARD_RESULT_NO_SUCH_DIRECTORY", 7010),
    ("FDGUARD_RESULT_PERMISSION_DENIED", 7011),
    ("FDGUARD_RESULT_WRITE_FAILED", 7012),
    ("FDGUARD_RESULT_BUFFER_TOO_SMALL", 7013),
    ("FDGUARD_RESULT_NOT_ACTIVE", 7014),
    ("FDGUARD_RESULT_REENTRANT", 7015),
    ("FDGUARD_RESULT_PANIC", 7016),
    ("FDGUARD_FORMAT_CONFIGURED", 0),
    ("FDGUARD_FORMAT_TEXT", 1),
    ("FDGUARD_FORMAT_JSON", 2),
];

#[test]
fn result_codes_and_formats_never_change() {
    let code = code_only(&committed());
    let mut found = BTreeMap::new();
    for line in code.lines() {
        let line = line.trim().trim_end_matches(',');
        if let Some((name, value)) = line.split_once(" = ")
            && (name.starts_with("FDGUARD_RESULT_") || name.starts_with("FDGUARD_FORMAT_"))
        {
            found.insert(name.to_string(), value.trim().parse::<u32>().unwrap());
        }
    }
    for (name, value) in FROZEN {
        assert_eq!(
            found.get(*name),
            Some(value),
            "{name} must keep the value {value} (codes are ABI)"
        );
    }
    for name in found.keys() {
        assert!(
            FROZEN.iter().any(|(n, _)| n == name),
            "{name} is new: add it to FROZEN in tests/header.rs (and never change it again)"
        );
    }
}

/// The functions libfdguard.so interposes, and other libc names that must never be declared
/// by fdguard.h (a C program including it would get conflicting declarations).
const LIBC_NAMES: &[&str] = &[
    "socket",
    "socketpair",
    "connect",
    "accept",
    "accept4",
    "listen",
    "shutdown",
    "close",
    "close_range",
    "closefrom",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "fcntl64",
    "fork",
    "vfork",
    "exit",
    "_exit",
    "_Exit",
    "open",
    "write",
    "read",
];

#[test]
fn header_declares_only_fdguard_names() {
    for text in [committed(), generate()] {
        let code = code_only(&text);
        let ids = identifiers(&code);
        for name in LIBC_NAMES {
            assert!(
                !ids.contains(name),
                "libc name `{name}` appears in the header's declarations"
            );
        }
        // Every declared function is fdguard_*: an identifier directly followed by `(`.
        let mut functions = 0;
        for (i, _) in code.match_indices('(') {
            let before = code[..i].trim_end();
            let name_start = before
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(0, |p| p + 1);
            let name = &before[name_start..];
            if name.is_empty() || ["defined", "__attribute__", "weak"].contains(&name) {
                continue;
            }
            assert!(
                name.starts_with("fdguard_"),
                "`{name}(` in the header is not an fdguard_ function"
            );
            functions += 1;
        }
        assert!(
            functions >= 11,
            "expected the fdguard_ functions, found {functions}"
        );
        // Everything else defined is FDGUARD_/fdguard_ prefixed.
        for name in defines(&text).keys() {
            assert!(name.starts_with("FDGUARD_"), "#define {name}");
        }
    }
}

#[test]
fn every_item_has_a_doc_comment() {
    let header = committed();
    let lines: Vec<&str> = header.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        let is_item = t.starts_with("fdguard_result fdguard_")
            || t.starts_with("const char *fdguard_")
            || t.starts_with("enum fdguard_")
            || (t.starts_with("FDGUARD_") && t.contains(" = "))
            || (t.starts_with("#define FDGUARD_")
                && !t.starts_with("#define FDGUARD_VERSION")
                && !t.starts_with("#define FDGUARD_WEAK")
                && !t.starts_with("#define FDGUARD_H"));
        if is_item {
            let prev = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim_start())
                .unwrap_or("");
            assert!(
                prev.starts_with("//") || prev.ends_with("*/"),
                "line {} has no doc comment: {line}",
                i + 1
            );
        }
    }
}
