//! Getting `libfdguard.so` into a program: finding the library, adding it to `LD_PRELOAD`, and
//! telling the user up front when the dynamic loader will not honour `LD_PRELOAD` for the
//! program (statically linked, Go, setuid, wrong ELF class), since fdguard would then silently
//! see nothing.
//!
//! The ELF reader here is deliberately small: 64-bit little-endian headers only, every offset
//! and count bounds-checked against the file, at most a few kilobytes read. Anything it cannot
//! understand yields no warning rather than an error: the program is run regardless.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Failure, Result};

/// The library's file name.
pub const LIBRARY_FILE_NAME: &str = "libfdguard.so";

/// Where [`find_library`] looks, in order, for an executable at `exe`: beside it, in `../lib/`
/// (an installed layout: `bin/fdguard`, `lib/libfdguard.so`), then in `target/release` and
/// `target/debug` of every ancestor directory (a cargo checkout).
pub fn library_candidates(exe: &Path) -> Vec<PathBuf> {
    let Some(dir) = exe.parent() else {
        return Vec::new();
    };
    let mut candidates = vec![
        dir.join(LIBRARY_FILE_NAME),
        dir.join("../lib").join(LIBRARY_FILE_NAME),
    ];
    for ancestor in dir.ancestors() {
        for profile in ["release", "debug"] {
            candidates.push(
                ancestor
                    .join("target")
                    .join(profile)
                    .join(LIBRARY_FILE_NAME),
            );
        }
    }
    candidates
}

/// Finds `libfdguard.so`: `explicit` (`--lib`), else `$FDGUARD_LIB`, else the first of
/// [`library_candidates`] for the running executable that exists. The result is absolute.
pub fn find_library(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return checked_library(path, "--lib");
    }
    if let Some(path) = std::env::var_os("FDGUARD_LIB").filter(|v| !v.is_empty()) {
        return checked_library(Path::new(&path), "FDGUARD_LIB");
    }
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| {
            Failure::new(format!(
                "cannot locate the fdguard executable ({e}); pass --lib PATH"
            ))
        })?;
    let candidates = library_candidates(&exe);
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return crate::files::absolute(found);
    }
    let searched: Vec<String> = candidates
        .iter()
        .take(6)
        .map(|p| format!("  {}", p.display()))
        .collect();
    Err(Failure::new(format!(
        "cannot find {LIBRARY_FILE_NAME}; looked in:\n{}\n  … and target/{{release,debug}} above {}\n\
         Build it with `cargo build -p fdguard`, or say where it is with --lib PATH or FDGUARD_LIB=PATH.",
        searched.join("\n"),
        exe.parent().unwrap_or(&exe).display()
    )))
}

fn checked_library(path: &Path, source: &str) -> Result<PathBuf> {
    if !path.is_file() {
        return Err(Failure::new(format!(
            "{source} names {}, which is not a file; build the library with `cargo build -p fdguard` \
             or fix the path",
            path.display()
        )));
    }
    if let Some(why) = library_problem(path) {
        return Err(Failure::new(format!(
            "{source} names {}, which is not libfdguard.so: {why}; the dynamic loader would \
             refuse it (or load something else) and fdguard would see nothing",
            path.display()
        )));
    }
    crate::files::absolute(path)
}

/// Why `path` is not a loadable libfdguard.so: not a 64-bit little-endian ELF shared object,
/// or one that does not export `fdguard_version`. `None` when it looks right.
pub fn library_problem(path: &Path) -> Option<String> {
    const ET_DYN: u16 = 3;
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return Some(format!("cannot read it ({e})")),
    };
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let Some(header) = read_range(&mut file, file_len, 0, 64) else {
        return Some("not an ELF file".to_string());
    };
    if &header[..4] != b"\x7fELF" {
        return Some("not an ELF file".to_string());
    }
    if header[4] != 2 || header[5] != 1 {
        return Some("not a 64-bit little-endian ELF file".to_string());
    }
    if u16_at(&header, 0x10) != ET_DYN {
        return Some("not a shared object".to_string());
    }
    let header: [u8; 64] = header.try_into().ok()?;
    if !dynamic_strings(&mut file, file_len, &header)
        .windows(b"\0fdguard_version\0".len())
        .any(|w| w == b"\0fdguard_version\0")
    {
        return Some("it does not export fdguard_version".to_string());
    }
    None
}

/// The string table of the dynamic symbols (`.dynstr`, found through SHT_DYNSYM's link), or
/// nothing when the section table is absent or corrupt.
fn dynamic_strings(file: &mut File, file_len: u64, header: &[u8; 64]) -> Vec<u8> {
    const SHT_DYNSYM: u32 = 11;
    const MAX_DYNSTR: u64 = 16 << 20;
    let shoff = u64_at(header, 0x28);
    let shentsize = u64::from(u16_at(header, 0x3a));
    let shnum = u64::from(u16_at(header, 0x3c));
    if shoff == 0 || shentsize < 64 || shnum == 0 || shnum > MAX_HEADERS {
        return Vec::new();
    }
    let Some(table) = read_range(file, file_len, shoff, shentsize * shnum) else {
        return Vec::new();
    };
    let entries: Vec<&[u8]> = table.chunks_exact(shentsize as usize).collect();
    let Some(dynsym) = entries.iter().find(|e| u32_at(e, 4) == SHT_DYNSYM) else {
        return Vec::new();
    };
    let Some(strtab) = entries.get(u32_at(dynsym, 40) as usize) else {
        return Vec::new();
    };
    let (offset, size) = (u64_at(strtab, 24), u64_at(strtab, 32));
    if size > MAX_DYNSTR {
        return Vec::new();
    }
    read_range(file, file_len, offset, size).unwrap_or_default()
}

/// `LD_PRELOAD` with `library` APPENDED (what heaptrack does): libraries the user already
/// preloads keep their place in front. Entries are separated by `:` (ld.so(8) accepts ':' and
/// ' '). Unchanged if `library` is already listed. Fails for a path that `LD_PRELOAD` cannot
/// express (containing ':' or whitespace).
pub fn append_ld_preload(existing: Option<&OsStr>, library: &Path) -> Result<OsString> {
    let lib = library.as_os_str();
    if lib
        .as_bytes()
        .iter()
        .any(|b| *b == b':' || b.is_ascii_whitespace())
    {
        return Err(Failure::new(format!(
            "the library path {} contains ':' or whitespace, which LD_PRELOAD cannot express; \
             copy or link the library to a plain path and pass --lib",
            library.display()
        )));
    }
    let existing = existing.map(OsStr::as_bytes).unwrap_or_default();
    let entries: Vec<&[u8]> = existing
        .split(|b| *b == b':' || b.is_ascii_whitespace())
        .filter(|e| !e.is_empty())
        .collect();
    if entries.contains(&lib.as_bytes()) {
        return Ok(OsString::from(OsStr::from_bytes(existing)));
    }
    let mut joined: Vec<u8> = entries.join(&b':');
    if !joined.is_empty() {
        joined.push(b':');
    }
    joined.extend_from_slice(lib.as_bytes());
    Ok(OsString::from(OsStr::from_bytes(&joined)))
}

/// Resolves a command like execvp(3): a name containing '/' is used as is, otherwise the first
/// executable regular file of that name on `path_var` (empty entries mean the current directory).
pub fn resolve_command(command: &OsStr, path_var: Option<&OsStr>) -> Option<PathBuf> {
    let command_path = Path::new(command);
    if command.as_bytes().contains(&b'/') {
        return command_path.exists().then(|| command_path.to_path_buf());
    }
    let path_var = path_var
        .map(OsStr::as_bytes)
        .unwrap_or(b"/usr/local/bin:/usr/bin:/bin");
    path_var
        .split(|b| *b == b':')
        .map(|dir| {
            if dir.is_empty() {
                Path::new(".")
            } else {
                Path::new(OsStr::from_bytes(dir))
            }
        })
        .map(|dir| dir.join(command))
        .find(|candidate| is_executable_file(candidate))
}

fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What the ELF headers say about interposability.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ElfInfo {
    /// 64-bit (ELFCLASS64) little-endian: the only layout whose headers are read further.
    pub is_64_le: bool,
    /// The PT_INTERP path (`/lib64/ld-linux-x86-64.so.2`), if any.
    pub interpreter: Option<String>,
    /// The program headers were read and none is PT_INTERP: no dynamic loader will run.
    pub statically_linked: bool,
    /// Has a `.go.buildinfo`, `.gopclntab` or `.note.go.buildid` section.
    pub is_go: bool,
}

const PT_INTERP: u32 = 3;
/// Upper bounds that keep a corrupt header from making us read gigabytes.
const MAX_HEADERS: u64 = 4096;
const MAX_SECTION_NAMES: u64 = 1 << 20;
const MAX_INTERPRETER: u64 = 4096;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads `len` bytes at `offset`, refusing ranges outside the file.
fn read_range(file: &mut File, file_len: u64, offset: u64, len: u64) -> Option<Vec<u8>> {
    let end = offset.checked_add(len)?;
    if end > file_len {
        return None;
    }
    let mut buf = vec![0u8; usize::try_from(len).ok()?];
    file.seek(SeekFrom::Start(offset)).ok()?;
    file.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// Reads the ELF headers of `path`. `Ok(None)`: not an ELF file (a script, say).
pub fn inspect_elf(path: &Path) -> std::io::Result<Option<ElfInfo>> {
    let mut file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut header = [0u8; 64];
    let mut got = 0;
    while got < header.len() {
        match file.read(&mut header[got..])? {
            0 => break,
            n => got += n,
        }
    }
    if got < 16 || &header[..4] != b"\x7fELF" {
        return Ok(None);
    }
    // EI_CLASS 2 = 64-bit, EI_DATA 1 = little endian.
    if header[4] != 2 || header[5] != 1 {
        return Ok(Some(ElfInfo::default()));
    }
    if got < 64 {
        // A truncated header: nothing can be concluded.
        return Ok(None);
    }
    let mut info = ElfInfo {
        is_64_le: true,
        ..ElfInfo::default()
    };

    let (phoff, phentsize, phnum) = (
        u64_at(&header, 0x20),
        u64::from(u16_at(&header, 0x36)),
        u64::from(u16_at(&header, 0x38)),
    );
    let program_headers = if phentsize >= 56 && phnum <= MAX_HEADERS {
        read_range(&mut file, file_len, phoff, phentsize * phnum)
    } else {
        None
    };
    // Only a readable, non-empty program header table proves the absence of PT_INTERP.
    info.statically_linked = program_headers.as_ref().is_some_and(|t| !t.is_empty());
    let program_headers = program_headers.unwrap_or_default();
    for entry in program_headers.chunks_exact(phentsize.max(1) as usize) {
        if u32_at(entry, 0) == PT_INTERP {
            let (offset, size) = (u64_at(entry, 8), u64_at(entry, 32));
            let path = read_range(&mut file, file_len, offset, size.min(MAX_INTERPRETER))
                .unwrap_or_default();
            let path = path.split(|b| *b == 0).next().unwrap_or_default();
            info.interpreter = Some(String::from_utf8_lossy(path).into_owned());
            info.statically_linked = false;
        }
    }

    info.is_go = section_names(&mut file, file_len, &header)
        .iter()
        .any(|name| {
            matches!(
                name.as_slice(),
                b".go.buildinfo" | b".gopclntab" | b".note.go.buildid"
            )
        });
    Ok(Some(info))
}

/// The section names, or nothing when the section table is absent, stripped or corrupt.
fn section_names(file: &mut File, file_len: u64, header: &[u8; 64]) -> Vec<Vec<u8>> {
    let shoff = u64_at(header, 0x28);
    let shentsize = u64::from(u16_at(header, 0x3a));
    let mut shnum = u64::from(u16_at(header, 0x3c));
    let mut shstrndx = u64::from(u16_at(header, 0x3e));
    if shoff == 0 || shentsize < 64 {
        return Vec::new();
    }
    // Extended numbering (elf(5)): counts too big for the header live in section 0.
    if shnum == 0 || shstrndx == 0xffff {
        let Some(first) = read_range(file, file_len, shoff, shentsize) else {
            return Vec::new();
        };
        if shnum == 0 {
            shnum = u64_at(&first, 32);
        }
        if shstrndx == 0xffff {
            shstrndx = u64::from(u32_at(&first, 40));
        }
    }
    if shnum > MAX_HEADERS || shstrndx >= shnum {
        return Vec::new();
    }
    let Some(table) = read_range(file, file_len, shoff, shentsize * shnum) else {
        return Vec::new();
    };
    let strtab_entry = &table[(shstrndx * shentsize) as usize..];
    let (str_offset, str_size) = (u64_at(strtab_entry, 24), u64_at(strtab_entry, 32));
    if str_size > MAX_SECTION_NAMES {
        return Vec::new();
    }
    let Some(strings) = read_range(file, file_len, str_offset, str_size) else {
        return Vec::new();
    };
    table
        .chunks_exact(shentsize as usize)
        .filter_map(|entry| {
            let start = u32_at(entry, 0) as usize;
            let rest = strings.get(start..)?;
            Some(rest.split(|b| *b == 0).next().unwrap_or_default().to_vec())
        })
        .collect()
}

/// The interpreter a `#!` script names, resolved on `PATH` through `env`
/// (`#!/usr/bin/env -S python3 -u` → `/usr/bin/python3`). None when `path` is not a script.
pub fn script_interpreter(path: &Path, path_var: Option<&OsStr>) -> Option<PathBuf> {
    let mut first = [0u8; 256];
    let mut file = File::open(path).ok()?;
    let n = file.read(&mut first).ok()?;
    let line = first[..n].strip_prefix(b"#!")?;
    let line = line.split(|b| *b == b'\n').next()?;
    let mut words = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .map(OsStr::from_bytes);
    let interpreter = Path::new(words.next()?);
    if interpreter.file_name() != Some(OsStr::new("env")) {
        return Some(interpreter.to_path_buf());
    }
    // `env [-S] [-i] [NAME=VALUE…] program`: the first word that is neither an option nor an
    // assignment is the program.
    let program =
        words.find(|w| !w.as_bytes().starts_with(b"-") && !w.as_bytes().contains(&b'='))?;
    resolve_command(program, path_var)
}

/// Plain-language warnings when `LD_PRELOAD` cannot work for the program at `path` (already
/// resolved on PATH). Empty when nothing is wrong or nothing could be determined.
pub fn preload_warnings(path: &Path, path_var: Option<&OsStr>) -> Vec<String> {
    let mut warnings = Vec::new();
    let shown = path.display();
    if let Ok(meta) = std::fs::metadata(path) {
        let (setuid, setgid) = (meta.mode() & 0o4000 != 0, meta.mode() & 0o2000 != 0);
        if setuid || setgid {
            let which = match (setuid, setgid) {
                (true, true) => "setuid and setgid",
                (true, false) => "setuid",
                _ => "setgid",
            };
            warnings.push(format!(
                "{shown} is {which}: when it runs with privileges the caller does not have, the \
                 dynamic loader ignores LD_PRELOAD (secure-execution mode, see ld.so(8)), and \
                 fdguard will see nothing"
            ));
        }
    }
    let (elf_path, via) = match script_interpreter(path, path_var) {
        Some(interpreter) => (interpreter, format!(" (the interpreter of {shown})")),
        None => (path.to_path_buf(), String::new()),
    };
    let elf_shown = elf_path.display();
    match inspect_elf(&elf_path) {
        Ok(Some(info)) if !info.is_64_le => warnings.push(format!(
            "{elf_shown}{via} is not a 64-bit little-endian ELF program; the dynamic loader will \
             refuse to preload the 64-bit libfdguard.so into it (\"wrong ELF class\") and fdguard \
             will see nothing"
        )),
        Ok(Some(info)) => {
            if info.statically_linked {
                warnings.push(format!(
                    "{elf_shown}{via} is statically linked (no ELF interpreter): no dynamic loader \
                     runs, so LD_PRELOAD cannot interpose its socket calls and fdguard will see \
                     nothing"
                ));
            }
            if info.is_go {
                warnings.push(format!(
                    "{elf_shown}{via} is a Go program: Go makes socket system calls directly, not \
                     through libc, so LD_PRELOAD cannot interpose them and fdguard will not see \
                     its sockets (only those of C libraries it calls through cgo)"
                ));
            }
        }
        Ok(None) | Err(_) => {}
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lib() -> PathBuf {
        PathBuf::from("/opt/fdguard/lib/libfdguard.so")
    }

    #[test]
    fn ld_preload_is_appended() {
        assert_eq!(
            append_ld_preload(None, &lib()).unwrap(),
            "/opt/fdguard/lib/libfdguard.so"
        );
        assert_eq!(
            append_ld_preload(Some(OsStr::new("")), &lib()).unwrap(),
            "/opt/fdguard/lib/libfdguard.so"
        );
        assert_eq!(
            append_ld_preload(Some(OsStr::new("/usr/lib/libjemalloc.so.2")), &lib()).unwrap(),
            "/usr/lib/libjemalloc.so.2:/opt/fdguard/lib/libfdguard.so"
        );
        // Space-separated and sloppy lists are normalised to ':'.
        assert_eq!(
            append_ld_preload(Some(OsStr::new(" liba.so  libb.so: ")), &lib()).unwrap(),
            "liba.so:libb.so:/opt/fdguard/lib/libfdguard.so"
        );
    }

    #[test]
    fn ld_preload_already_listed_is_unchanged() {
        let existing = OsStr::new("/opt/fdguard/lib/libfdguard.so liba.so");
        assert_eq!(append_ld_preload(Some(existing), &lib()).unwrap(), existing);
    }

    #[test]
    fn ld_preload_refuses_unexpressible_paths() {
        let error = append_ld_preload(None, Path::new("/tmp/my libs/libfdguard.so")).unwrap_err();
        assert!(
            error.message.contains("LD_PRELOAD cannot express"),
            "{error}"
        );
        assert!(append_ld_preload(None, Path::new("/a:b/libfdguard.so")).is_err());
    }

    #[test]
    fn candidates_cover_installed_and_cargo_layouts() {
        let candidates = library_candidates(Path::new("/work/main/target/debug/fdguard"));
        assert_eq!(
            candidates[0],
            Path::new("/work/main/target/debug/libfdguard.so")
        );
        assert_eq!(
            candidates[1],
            Path::new("/work/main/target/debug/../lib/libfdguard.so")
        );
        assert!(candidates.contains(&PathBuf::from("/work/main/target/release/libfdguard.so")));
        let installed = library_candidates(Path::new("/usr/local/bin/fdguard"));
        assert_eq!(
            installed[1],
            Path::new("/usr/local/bin/../lib/libfdguard.so")
        );
    }

    #[test]
    fn only_a_real_libfdguard_passes_as_the_library() {
        // A PIE program is ET_DYN too: the exported symbol tells it apart.
        let problem = library_problem(Path::new("/bin/sh")).unwrap();
        assert!(problem.contains("fdguard_version"), "{problem}");
        let libc = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap();
        let problem = library_problem(Path::new(libc)).unwrap();
        assert!(problem.contains("fdguard_version"), "{problem}");
        let script = std::env::temp_dir().join(format!("fdguard-lib-{}", std::process::id()));
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        assert_eq!(library_problem(&script).unwrap(), "not an ELF file");
        std::fs::remove_file(script).unwrap();
    }

    #[test]
    fn commands_resolve_like_execvp() {
        let sh = resolve_command(
            OsStr::new("sh"),
            Some(OsStr::new("/nonexistent:/bin:/usr/bin")),
        )
        .unwrap();
        assert!(sh.ends_with("sh"));
        assert!(
            resolve_command(
                OsStr::new("no-such-command-fdguard"),
                Some(OsStr::new("/bin"))
            )
            .is_none()
        );
        assert_eq!(
            resolve_command(OsStr::new("/bin/sh"), None).unwrap(),
            Path::new("/bin/sh")
        );
        assert!(resolve_command(OsStr::new("./no/such"), None).is_none());
    }
}
