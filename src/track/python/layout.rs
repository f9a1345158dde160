//! Where CPython keeps what the capture reads, per minor version (x86-64, the default build:
//! no `Py_DEBUG`, no `Py_TRACE_REFS`, not free-threaded — detection refuses those).
//!
//! Every number below was printed by `offsetof()` against the installed headers of CPython
//! 3.8.18, 3.9.18, 3.10.13, 3.11.7 (and Debian's 3.11.2), 3.12.1 and 3.13.0, including the
//! internal ones (`Py_BUILD_CORE`); the unit test `layouts_match_the_headers` recompiles that
//! program against every interpreter it finds and compares. CPython keeps these structures
//! stable within a minor release (py-spy and austin rely on the same).

/// How a thread's Python frames are chained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frames {
    /// 3.8–3.10: `PyThreadState.frame` → `PyFrameObject` linked by `f_back`; one C call of
    /// `_PyEval_EvalFrameDefault` per Python frame.
    Objects,
    /// 3.11: `PyThreadState.cframe->current_frame` → `_PyInterpreterFrame` linked by
    /// `previous`; a C-level eval call runs frames up to one marked `is_entry`.
    Cframe311,
    /// 3.12: like 3.11, but each C-level eval call pushes a shim frame owned by the C stack.
    Cframe312,
    /// 3.13: `PyThreadState.current_frame` directly; shim frames as in 3.12.
    Direct313,
}

/// How a code object maps instruction offsets to lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// 3.8–3.9 `co_lnotab`; `f_lasti` counts bytes.
    Lnotab,
    /// 3.10 `co_linetable` (PEP 626); `f_lasti` counts code units.
    Linetable310,
    /// 3.11+ location table (PEP 657).
    Locations311,
}

/// The offsets one minor version needs (bytes from the start of each structure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub minor: u8,
    pub frames: Frames,
    pub lines: Lines,
    /// `PyThreadState.interp`.
    pub ts_interp: usize,
    /// `PyThreadState.thread_id` (`pthread_self()` of the owning thread).
    pub ts_thread_id: usize,
    /// `PyThreadState.frame` (3.8–3.10), `.cframe` (3.11–3.12), `.current_frame` (3.13).
    pub ts_frame: usize,
    /// `_PyCFrame.current_frame` (3.11–3.12).
    pub cframe_current: usize,
    /// `PyFrameObject.f_back` / `_PyInterpreterFrame.previous`.
    pub frame_back: usize,
    /// `f_code` / `f_executable`.
    pub frame_code: usize,
    /// `PyFrameObject.f_lasti` (an int) / `prev_instr` (3.11–3.12) / `instr_ptr` (3.13).
    pub frame_instr: usize,
    /// `_PyInterpreterFrame.owner` (a char; 3.11+).
    pub frame_owner: usize,
    /// `_PyInterpreterFrame.is_entry` (a bool; 3.11 only, else 0).
    pub frame_is_entry: usize,
    /// `co_qualname` (3.11+) or `co_name`.
    pub co_name: usize,
    pub co_filename: usize,
    /// An int.
    pub co_firstlineno: usize,
    /// `co_lnotab` (3.8–3.9) or `co_linetable`: a bytes object.
    pub co_lines: usize,
    /// `_co_firsttraceable` (an int; 3.11+).
    pub co_firsttraceable: usize,
    /// `co_code_adaptive` (the instructions, inline; 3.11+).
    pub co_code: usize,
    /// `sizeof(PyASCIIObject)`: where a compact ASCII string's bytes start.
    pub ascii_size: usize,
    /// `sizeof(PyCompactUnicodeObject)`: where other compact strings' code points start.
    pub compact_size: usize,
}

/// Fields shared by every supported version.
pub const OB_TYPE: usize = 8;
/// `PyVarObject.ob_size` (bytes objects: their length; code objects 3.11+: code units).
pub const OB_SIZE: usize = 16;
/// `PyBytesObject.ob_sval`.
pub const BYTES_DATA: usize = 32;
/// `PyASCIIObject.length` (code points) and `.state` (a 32-bit bitfield).
pub const STR_LENGTH: usize = 16;
pub const STR_STATE: usize = 32;
/// Bits of `state`: `kind` (1, 2 or 4 bytes per code point), `compact`, `ascii`.
pub const STATE_KIND_SHIFT: u32 = 2;
pub const STATE_KIND_MASK: u32 = 0b111 << STATE_KIND_SHIFT;
pub const STATE_COMPACT: u32 = 1 << 5;
pub const STATE_ASCII: u32 = 1 << 6;
/// `_PyInterpreterFrame.owner` values (3.11+).
pub const OWNED_BY_GENERATOR: u8 = 1;
/// 3.12+: a shim frame an eval call pushes on the C stack; not a Python frame.
pub const OWNED_BY_CSTACK: u8 = 3;

const V38: Layout = Layout {
    minor: 8,
    frames: Frames::Objects,
    lines: Lines::Lnotab,
    ts_interp: 16,
    ts_thread_id: 176,
    ts_frame: 24,
    cframe_current: 0,
    frame_back: 24,
    frame_code: 32,
    frame_instr: 104,
    frame_owner: 0,
    frame_is_entry: 0,
    co_name: 112,
    co_filename: 104,
    co_firstlineno: 40,
    co_lines: 120,
    co_firsttraceable: 0,
    co_code: 0,
    ascii_size: 48,
    compact_size: 72,
};

/// The known layouts, 3.8 to 3.13.
pub const LAYOUTS: [Layout; 6] = [
    V38,
    Layout { minor: 9, ..V38 },
    Layout {
        minor: 10,
        lines: Lines::Linetable310,
        frame_instr: 96,
        ..V38
    },
    Layout {
        minor: 11,
        frames: Frames::Cframe311,
        lines: Lines::Locations311,
        ts_interp: 16,
        ts_thread_id: 152,
        ts_frame: 56,
        cframe_current: 8,
        frame_back: 48,
        frame_code: 32,
        frame_instr: 56,
        frame_owner: 69,
        frame_is_entry: 68,
        co_name: 128,
        co_filename: 112,
        co_firstlineno: 72,
        co_lines: 136,
        co_firsttraceable: 168,
        co_code: 184,
        ascii_size: 48,
        compact_size: 72,
    },
    Layout {
        minor: 12,
        frames: Frames::Cframe312,
        lines: Lines::Locations311,
        ts_interp: 16,
        ts_thread_id: 136,
        ts_frame: 56,
        cframe_current: 0,
        frame_back: 8,
        frame_code: 0,
        frame_instr: 56,
        frame_owner: 70,
        frame_is_entry: 0,
        co_name: 128,
        co_filename: 112,
        co_firstlineno: 68,
        co_lines: 136,
        co_firsttraceable: 176,
        co_code: 192,
        ascii_size: 40,
        compact_size: 56,
    },
    Layout {
        minor: 13,
        frames: Frames::Direct313,
        lines: Lines::Locations311,
        ts_interp: 16,
        ts_thread_id: 152,
        ts_frame: 72,
        cframe_current: 0,
        frame_back: 8,
        frame_code: 0,
        frame_instr: 56,
        frame_owner: 70,
        frame_is_entry: 0,
        co_name: 128,
        co_filename: 112,
        co_firstlineno: 68,
        co_lines: 136,
        co_firsttraceable: 184,
        co_code: 200,
        ascii_size: 40,
        compact_size: 56,
    },
];

/// The layout of CPython 3.`minor`, if known.
pub fn for_minor(minor: u8) -> Option<&'static Layout> {
    LAYOUTS.iter().find(|l| l.minor == minor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;

    /// A C program that prints the same offsets from the headers, as `name=value` lines.
    const PROBE: &str = r#"
#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <frameobject.h>
#if PY_VERSION_HEX >= 0x030B0000
#include "internal/pycore_frame.h"
#endif
#if PY_VERSION_HEX >= 0x030D0000
#include "internal/pycore_runtime.h"
#endif
#define P(name, v) printf("%s=%ld\n", name, (long)(v))
#define D(name, field) P("debug_" name, offsetof(_Py_DebugOffsets, field))
int main(void) {
#if PY_VERSION_HEX >= 0x030D0000
  P("debug_at", offsetof(_PyRuntimeState, debug_offsets));
  D("cookie", cookie); D("version", version); D("free_threaded", free_threaded);
  D("ts_interp", thread_state.interp); D("ts_current_frame", thread_state.current_frame);
  D("ts_thread_id", thread_state.thread_id); D("if_previous", interpreter_frame.previous);
  D("if_executable", interpreter_frame.executable);
  D("if_instr_ptr", interpreter_frame.instr_ptr); D("if_owner", interpreter_frame.owner);
  D("co_filename", code_object.filename); D("co_qualname", code_object.qualname);
  D("co_linetable", code_object.linetable); D("co_firstlineno", code_object.firstlineno);
  D("co_code_adaptive", code_object.co_code_adaptive); D("ob_type", pyobject.ob_type);
#endif
  P("minor", PY_MINOR_VERSION);
  P("ob_type", offsetof(PyObject, ob_type));
  P("ob_size", offsetof(PyVarObject, ob_size));
  P("bytes_data", offsetof(PyBytesObject, ob_sval));
  P("str_length", offsetof(PyASCIIObject, length));
  P("str_state", offsetof(PyASCIIObject, state));
  P("ts_interp", offsetof(PyThreadState, interp));
  P("ts_thread_id", offsetof(PyThreadState, thread_id));
#if PY_VERSION_HEX < 0x030B0000
  P("ts_frame", offsetof(PyThreadState, frame));
  P("frame_back", offsetof(PyFrameObject, f_back));
  P("frame_code", offsetof(PyFrameObject, f_code));
  P("frame_instr", offsetof(PyFrameObject, f_lasti));
  P("co_name", offsetof(PyCodeObject, co_name));
#else
#if PY_VERSION_HEX < 0x030D0000
  P("ts_frame", offsetof(PyThreadState, cframe));
  P("cframe_current", offsetof(_PyCFrame, current_frame));
  P("frame_code", offsetof(_PyInterpreterFrame, f_code));
  P("frame_instr", offsetof(_PyInterpreterFrame, prev_instr));
#else
  P("ts_frame", offsetof(PyThreadState, current_frame));
  P("frame_code", offsetof(_PyInterpreterFrame, f_executable));
  P("frame_instr", offsetof(_PyInterpreterFrame, instr_ptr));
#endif
#if PY_VERSION_HEX < 0x030C0000
  P("frame_is_entry", offsetof(_PyInterpreterFrame, is_entry));
#endif
  P("frame_back", offsetof(_PyInterpreterFrame, previous));
  P("frame_owner", offsetof(_PyInterpreterFrame, owner));
  P("co_name", offsetof(PyCodeObject, co_qualname));
  P("co_firsttraceable", offsetof(PyCodeObject, _co_firsttraceable));
  P("co_code", offsetof(PyCodeObject, co_code_adaptive));
  P("owned_by_generator", FRAME_OWNED_BY_GENERATOR);
#if PY_VERSION_HEX >= 0x030C0000
  P("owned_by_cstack", FRAME_OWNED_BY_CSTACK);
#endif
#endif
  P("co_filename", offsetof(PyCodeObject, co_filename));
  P("co_firstlineno", offsetof(PyCodeObject, co_firstlineno));
#if PY_VERSION_HEX < 0x030A0000
  P("co_lines", offsetof(PyCodeObject, co_lnotab));
#else
  P("co_lines", offsetof(PyCodeObject, co_linetable));
#endif
  P("ascii_size", sizeof(PyASCIIObject));
  P("compact_size", sizeof(PyCompactUnicodeObject));
  { PyASCIIObject a; unsigned int w; memset(&a, 0, sizeof a); a.state.kind = 7;
    memcpy(&w, &a.state, 4); P("kind_mask", w); }
  { PyASCIIObject a; unsigned int w; memset(&a, 0, sizeof a); a.state.compact = 1;
    memcpy(&w, &a.state, 4); P("compact", w); }
  { PyASCIIObject a; unsigned int w; memset(&a, 0, sizeof a); a.state.ascii = 1;
    memcpy(&w, &a.state, 4); P("ascii", w); }
  return 0;
}
"#;

    fn expected(l: &Layout) -> Vec<(&'static str, i64)> {
        let mut v = vec![
            ("minor", l.minor as i64),
            ("ob_type", OB_TYPE as i64),
            ("ob_size", OB_SIZE as i64),
            ("bytes_data", BYTES_DATA as i64),
            ("str_length", STR_LENGTH as i64),
            ("str_state", STR_STATE as i64),
            ("ts_interp", l.ts_interp as i64),
            ("ts_thread_id", l.ts_thread_id as i64),
            ("ts_frame", l.ts_frame as i64),
            ("frame_back", l.frame_back as i64),
            ("frame_code", l.frame_code as i64),
            ("frame_instr", l.frame_instr as i64),
            ("co_name", l.co_name as i64),
            ("co_filename", l.co_filename as i64),
            ("co_firstlineno", l.co_firstlineno as i64),
            ("co_lines", l.co_lines as i64),
            ("ascii_size", l.ascii_size as i64),
            ("compact_size", l.compact_size as i64),
            ("kind_mask", STATE_KIND_MASK as i64),
            ("compact", STATE_COMPACT as i64),
            ("ascii", STATE_ASCII as i64),
        ];
        if l.frames != Frames::Objects {
            v.extend([
                ("frame_owner", l.frame_owner as i64),
                ("co_firsttraceable", l.co_firsttraceable as i64),
                ("co_code", l.co_code as i64),
                ("owned_by_generator", OWNED_BY_GENERATOR as i64),
            ]);
        }
        match l.frames {
            Frames::Cframe311 => v.extend([
                ("cframe_current", l.cframe_current as i64),
                ("frame_is_entry", l.frame_is_entry as i64),
            ]),
            Frames::Cframe312 => v.extend([
                ("cframe_current", l.cframe_current as i64),
                ("owned_by_cstack", OWNED_BY_CSTACK as i64),
            ]),
            Frames::Direct313 => {
                use super::super::detect::debug_offsets as d;
                v.extend([
                    ("owned_by_cstack", OWNED_BY_CSTACK as i64),
                    ("debug_at", 0),
                    ("debug_cookie", d::COOKIE as i64),
                    ("debug_version", d::VERSION as i64),
                    ("debug_free_threaded", d::FREE_THREADED as i64),
                    ("debug_ts_interp", d::TS_INTERP as i64),
                    ("debug_ts_current_frame", d::TS_CURRENT_FRAME as i64),
                    ("debug_ts_thread_id", d::TS_THREAD_ID as i64),
                    ("debug_if_previous", d::IF_PREVIOUS as i64),
                    ("debug_if_executable", d::IF_EXECUTABLE as i64),
                    ("debug_if_instr_ptr", d::IF_INSTR_PTR as i64),
                    ("debug_if_owner", d::IF_OWNER as i64),
                    ("debug_co_filename", d::CO_FILENAME as i64),
                    ("debug_co_qualname", d::CO_QUALNAME as i64),
                    ("debug_co_linetable", d::CO_LINETABLE as i64),
                    ("debug_co_firstlineno", d::CO_FIRSTLINENO as i64),
                    ("debug_co_code_adaptive", d::CO_CODE_ADAPTIVE as i64),
                    ("debug_ob_type", d::OB_TYPE as i64),
                ]);
            }
            Frames::Objects => {}
        }
        v.sort();
        v
    }

    /// Include directories of the CPython interpreters on this machine (pyenv's, Debian's,
    /// and any listed in `FDGUARD_TEST_PYTHONS`, colon-separated).
    fn include_dirs() -> Vec<(String, PathBuf)> {
        let mut found = Vec::new();
        for python in super::super::test_support::interpreters() {
            let out = Command::new(&python)
                .args([
                    "-c",
                    "import sysconfig,platform;print(platform.python_version());print(sysconfig.get_paths()['include'])",
                ])
                .output();
            let Ok(out) = out else { continue };
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let mut lines = text.lines();
            if let (Some(version), Some(dir)) = (lines.next(), lines.next()) {
                let dir = PathBuf::from(dir);
                if dir.join("Python.h").is_file() {
                    found.push((version.to_string(), dir));
                }
            }
        }
        found
    }

    #[test]
    fn layouts_match_the_headers() {
        let dir = std::env::temp_dir().join(format!("fdguard-pylayout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("probe.c");
        std::fs::write(&src, PROBE).unwrap();
        let mut checked = Vec::new();
        for (version, include) in include_dirs() {
            let minor: u8 = version.split('.').nth(1).unwrap().parse().unwrap();
            let Some(layout) = for_minor(minor) else {
                continue; // outside 3.8-3.13: detection refuses it (tested end to end)
            };
            let exe = dir.join(format!("probe-{version}"));
            let ok = Command::new("gcc")
                .arg("-w")
                .arg("-I")
                .arg(&include)
                .arg(&src)
                .arg("-o")
                .arg(&exe)
                .status()
                .expect("gcc")
                .success();
            assert!(
                ok,
                "compiling the layout probe against {}",
                include.display()
            );
            let out = Command::new(&exe).output().unwrap();
            let mut got: Vec<(String, i64)> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
                .collect();
            got.sort();
            let want: Vec<(String, i64)> = expected(layout)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            assert_eq!(got, want, "CPython {version} ({})", include.display());
            checked.push(version);
        }
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!("layouts checked against the headers of CPython {checked:?}");
        assert!(
            checked.iter().any(|v| v.starts_with("3.11.")),
            "no CPython 3.11 headers found (Debian's python3-dev or the venvs' interpreter)"
        );
    }
}
