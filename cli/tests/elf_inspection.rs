//! Telling the user when LD_PRELOAD cannot reach a program: ELF files built here byte by byte
//! (static, dynamic, Go, 32-bit, extended section numbering, corrupt), real binaries from the C
//! compiler (`-static` and dynamic), scripts, setuid files, and the warning `fdguard run` prints
//! before running the program anyway.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{assert_status, compile_c, scratch, stderr, stdout};
use fdguard_cli::preload::{ElfInfo, inspect_elf, preload_warnings};

const INTERPRETER: &str = "/lib64/ld-linux-x86-64.so.2";

/// Options for [`build_elf`].
#[derive(Default)]
struct Elf<'a> {
    interpreter: Option<&'a str>,
    sections: &'a [&'a str],
    /// Put the section count and string-table index in section 0 (elf(5) extended numbering).
    extended_numbering: bool,
}

/// A minimal but well-formed ELF64 little-endian executable: one PT_LOAD, an optional
/// PT_INTERP, and empty sections with the given names.
fn build_elf(spec: &Elf<'_>) -> Vec<u8> {
    let phnum: u16 = if spec.interpreter.is_some() { 2 } else { 1 };
    let phoff = 64u64;
    let mut data = Vec::new();
    let data_start = phoff + 56 * u64::from(phnum);
    let interp_offset = data_start;
    if let Some(interp) = spec.interpreter {
        data.extend_from_slice(interp.as_bytes());
        data.push(0);
    }
    let strtab_offset = data_start + data.len() as u64;
    let mut strtab = vec![0u8];
    let mut name_offsets = Vec::new();
    for name in spec.sections.iter().chain([&".shstrtab"]) {
        name_offsets.push(strtab.len() as u32);
        strtab.extend_from_slice(name.as_bytes());
        strtab.push(0);
    }
    data.extend_from_slice(&strtab);
    while data.len() % 8 != 0 {
        data.push(0);
    }
    let shoff = data_start + data.len() as u64;
    let shnum = (spec.sections.len() + 2) as u16; // null + named + .shstrtab
    let shstrndx = shnum - 1;

    let mut elf = vec![0u8; 64];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2; // ELFCLASS64
    elf[5] = 1; // little endian
    elf[6] = 1; // EV_CURRENT
    elf[0x10..0x12].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf[0x12..0x14].copy_from_slice(&0x3eu16.to_le_bytes()); // x86-64
    elf[0x14..0x18].copy_from_slice(&1u32.to_le_bytes());
    elf[0x20..0x28].copy_from_slice(&phoff.to_le_bytes());
    elf[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
    elf[0x34..0x36].copy_from_slice(&64u16.to_le_bytes());
    elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
    elf[0x38..0x3a].copy_from_slice(&phnum.to_le_bytes());
    elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    let (header_shnum, header_shstrndx) = if spec.extended_numbering {
        (0, 0xffff)
    } else {
        (shnum, shstrndx)
    };
    elf[0x3c..0x3e].copy_from_slice(&header_shnum.to_le_bytes());
    elf[0x3e..0x40].copy_from_slice(&header_shstrndx.to_le_bytes());

    let mut load = vec![0u8; 56];
    load[..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&load);
    if let Some(interp) = spec.interpreter {
        let mut ph = vec![0u8; 56];
        ph[..4].copy_from_slice(&3u32.to_le_bytes()); // PT_INTERP
        ph[8..16].copy_from_slice(&interp_offset.to_le_bytes());
        ph[32..40].copy_from_slice(&(interp.len() as u64 + 1).to_le_bytes());
        elf.extend_from_slice(&ph);
    }
    elf.extend_from_slice(&data);

    let mut null = vec![0u8; 64];
    if spec.extended_numbering {
        null[32..40].copy_from_slice(&u64::from(shnum).to_le_bytes()); // sh_size = count
        null[40..44].copy_from_slice(&u32::from(shstrndx).to_le_bytes()); // sh_link = strndx
    }
    elf.extend_from_slice(&null);
    for (i, _) in spec.sections.iter().enumerate() {
        let mut sh = vec![0u8; 64];
        sh[..4].copy_from_slice(&name_offsets[i].to_le_bytes());
        sh[4..8].copy_from_slice(&1u32.to_le_bytes()); // SHT_PROGBITS
        elf.extend_from_slice(&sh);
    }
    let mut sh = vec![0u8; 64];
    sh[..4].copy_from_slice(&name_offsets[spec.sections.len()].to_le_bytes());
    sh[4..8].copy_from_slice(&3u32.to_le_bytes()); // SHT_STRTAB
    sh[24..32].copy_from_slice(&strtab_offset.to_le_bytes());
    sh[32..40].copy_from_slice(&(strtab.len() as u64).to_le_bytes());
    elf.extend_from_slice(&sh);
    elf
}

fn write_file(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn warnings(path: &Path) -> Vec<String> {
    preload_warnings(path, Some(path.parent().unwrap().as_os_str()))
}

#[test]
fn constructed_static_and_dynamic_executables() {
    let dir = scratch("elf-constructed");
    let static_elf = write_file(
        &dir,
        "static",
        &build_elf(&Elf {
            sections: &[".text"],
            ..Elf::default()
        }),
        0o755,
    );
    let info = inspect_elf(&static_elf).unwrap().unwrap();
    assert!(
        info.is_64_le && info.statically_linked && !info.is_go,
        "{info:?}"
    );
    let w = warnings(&static_elf);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("is statically linked (no ELF interpreter)"),
        "{w:?}"
    );

    let dynamic = write_file(
        &dir,
        "dynamic",
        &build_elf(&Elf {
            interpreter: Some(INTERPRETER),
            sections: &[".text", ".dynamic"],
            ..Elf::default()
        }),
        0o755,
    );
    assert_eq!(
        inspect_elf(&dynamic).unwrap().unwrap(),
        ElfInfo {
            is_64_le: true,
            interpreter: Some(INTERPRETER.to_string()),
            statically_linked: false,
            is_go: false
        }
    );
    assert!(warnings(&dynamic).is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn go_programs_are_recognised_by_their_sections() {
    let dir = scratch("elf-go");
    for (name, section) in [
        ("go-buildinfo", ".go.buildinfo"),
        ("go-pclntab", ".gopclntab"),
        ("go-note", ".note.go.buildid"),
    ] {
        let path = write_file(
            &dir,
            name,
            &build_elf(&Elf {
                interpreter: Some(INTERPRETER),
                sections: &[".text", section],
                ..Elf::default()
            }),
            0o755,
        );
        assert!(inspect_elf(&path).unwrap().unwrap().is_go, "{section}");
        let w = warnings(&path);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("is a Go program"), "{w:?}");
    }
    // A static Go program gets both warnings.
    let path = write_file(
        &dir,
        "go-static",
        &build_elf(&Elf {
            sections: &[".gopclntab"],
            ..Elf::default()
        }),
        0o755,
    );
    assert_eq!(warnings(&path).len(), 2);
    // Extended section numbering (elf(5)) is followed.
    let path = write_file(
        &dir,
        "go-extended",
        &build_elf(&Elf {
            interpreter: Some(INTERPRETER),
            sections: &[".gopclntab"],
            extended_numbering: true,
        }),
        0o755,
    );
    assert!(inspect_elf(&path).unwrap().unwrap().is_go);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn other_elf_classes_and_non_elf_files() {
    let dir = scratch("elf-other");
    let mut elf32 = build_elf(&Elf {
        interpreter: Some(INTERPRETER),
        ..Elf::default()
    });
    elf32[4] = 1; // ELFCLASS32
    let path = write_file(&dir, "elf32", &elf32, 0o755);
    let w = warnings(&path);
    assert!(
        w.len() == 1 && w[0].contains("not a 64-bit little-endian ELF"),
        "{w:?}"
    );

    let text = write_file(&dir, "notes.txt", b"just text\n", 0o644);
    assert_eq!(inspect_elf(&text).unwrap(), None);
    assert!(warnings(&text).is_empty());
    let empty = write_file(&dir, "empty", b"", 0o755);
    assert_eq!(inspect_elf(&empty).unwrap(), None);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn corrupt_headers_never_panic_and_never_warn_wrongly() {
    let dir = scratch("elf-corrupt");
    let good = build_elf(&Elf {
        interpreter: Some(INTERPRETER),
        sections: &[".gopclntab"],
        ..Elf::default()
    });
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    cases.push(("truncated-header", good[..40].to_vec()));
    let mut far_phoff = good.clone();
    far_phoff[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
    cases.push(("far-phoff", far_phoff));
    let mut many_ph = good.clone();
    many_ph[0x38..0x3a].copy_from_slice(&u16::MAX.to_le_bytes());
    cases.push(("many-phdrs", many_ph));
    let mut small_phent = good.clone();
    small_phent[0x36..0x38].copy_from_slice(&8u16.to_le_bytes());
    cases.push(("small-phentsize", small_phent));
    let mut bad_strndx = good.clone();
    bad_strndx[0x3e..0x40].copy_from_slice(&200u16.to_le_bytes());
    cases.push(("strndx-out-of-range", bad_strndx));
    let mut far_shoff = good.clone();
    far_shoff[0x28..0x30].copy_from_slice(&(u64::MAX - 10).to_le_bytes());
    cases.push(("far-shoff", far_shoff));
    let cut = good.len() - 64;
    cases.push(("truncated-sections", good[..cut].to_vec()));
    for (name, bytes) in cases {
        let path = write_file(&dir, name, &bytes, 0o755);
        let info = inspect_elf(&path).unwrap();
        if let Some(info) = &info {
            assert!(
                !info.statically_linked,
                "{name}: unreadable program headers must not mean static: {info:?}"
            );
        }
        for w in warnings(&path) {
            assert!(!w.contains("statically linked"), "{name}: {w}");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn scripts_are_judged_by_their_interpreter() {
    let dir = scratch("elf-script");
    let static_elf = write_file(&dir, "static-interp", &build_elf(&Elf::default()), 0o755);
    let script = write_file(
        &dir,
        "direct.sh",
        format!("#!{}\necho hi\n", static_elf.display()).as_bytes(),
        0o755,
    );
    let w = warnings(&script);
    assert!(
        w.len() == 1 && w[0].contains("(the interpreter of"),
        "{w:?}"
    );
    // `#!/usr/bin/env -S NAME args`: NAME is looked up on PATH (here: the scratch dir).
    let via_env = write_file(
        &dir,
        "env.sh",
        b"#!/usr/bin/env -S static-interp -u\n",
        0o755,
    );
    let w = warnings(&via_env);
    assert!(
        w.len() == 1 && w[0].contains("static-interp (the interpreter of"),
        "{w:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn setuid_and_setgid_files() {
    let dir = scratch("elf-setuid");
    let bytes = build_elf(&Elf {
        interpreter: Some(INTERPRETER),
        ..Elf::default()
    });
    let setuid = write_file(&dir, "setuid", &bytes, 0o4755);
    let w = warnings(&setuid);
    assert!(
        w.len() == 1 && w[0].contains("is setuid:") && w[0].contains("secure-execution mode"),
        "{w:?}"
    );
    let setgid = write_file(&dir, "setgid", &bytes, 0o2755);
    assert!(warnings(&setgid)[0].contains("is setgid:"));
    let both = write_file(&dir, "both", &bytes, 0o6755);
    assert!(warnings(&both)[0].contains("is setuid and setgid:"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn real_binaries_from_the_c_compiler() {
    let dir = scratch("elf-gcc");
    let dynamic = compile_c("hello.c", &dir, &[]);
    let info = inspect_elf(&dynamic).unwrap().unwrap();
    assert!(
        info.interpreter.is_some() && !info.statically_linked,
        "{info:?}"
    );
    assert!(warnings(&dynamic).is_empty());

    // Requires the static C library (Debian: libc6-dev ships libc.a).
    let static_dir = dir.join("static");
    std::fs::create_dir(&static_dir).unwrap();
    let static_bin = compile_c("hello.c", &static_dir, &["-static"]);
    let info = inspect_elf(&static_bin).unwrap().unwrap();
    assert!(
        info.statically_linked && info.interpreter.is_none(),
        "{info:?}"
    );

    // `fdguard run` warns, runs the program anyway, and exits with its status.
    let lib = common::library();
    let output = common::run(&[
        "run",
        "--lib",
        lib.to_str().unwrap(),
        "--report",
        dir.join("reports/").to_str().unwrap(),
        "--",
        static_bin.to_str().unwrap(),
    ]);
    assert_status(&output, 3);
    assert_eq!(stdout(&output), "hello-from-test-program\n");
    let message = stderr(&output);
    assert!(
        message.contains(&format!(
            "fdguard: warning: {} is statically linked",
            static_bin.display()
        )) && message.contains("running it anyway"),
        "{message}"
    );
    assert!(message.contains("no report was written"), "{message}");
    std::fs::remove_dir_all(dir).unwrap();
}
