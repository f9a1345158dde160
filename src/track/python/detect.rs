//! Is the host CPython, which version, and can we read it? Answered from the symbols the loaded
//! objects export (`dlsym` in the global scope, where CPython must put them for its extension
//! modules to load), never from the program's name. Runs at load and when the unwinder's module
//! list refreshes (an embedding program may `dlopen` libpython later): never on the hot path.
//!
//! A version or build whose layout fdguard does not know (before 3.8, after 3.13, a debug or a
//! free-threaded build, or a 3.13 whose own `_Py_DebugOffsets` disagree with our table) is
//! refused with a reason that becomes one note in the report; its stacks stay native.
#![allow(unsafe_code)] // dlsym, reading CPython's memory to recognise it, the published answer.

use super::layout::{self, Layout};
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::atomic::{AtomicPtr, Ordering};

/// What capture needs from a supported interpreter.
#[derive(Debug)]
pub struct Interpreter {
    /// `3.11.7`.
    pub version: String,
    pub layout: &'static Layout,
    /// `PyGILState_GetThisThreadState`: the calling thread's own state, held in a
    /// `pthread_getspecific` slot (lock-free), whether or not the thread holds the GIL now
    /// (CPython releases it around socket(), connect() and accept()).
    pub this_thread_state: unsafe extern "C" fn() -> *mut c_void,
    /// `Py_IsFinalizing` (3.13) or `_Py_IsFinalizing` (3.8–3.12): one load of the runtime's
    /// finalizing flag.
    pub is_finalizing: unsafe extern "C" fn() -> c_int,
    pub code_type: usize,
    pub unicode_type: usize,
    pub bytes_type: usize,
    /// `PyFrame_Type` (3.8–3.10 frames are objects).
    pub frame_type: usize,
    /// `_PyEval_EvalFrameDefault`'s code, `[start, end)`: a thread running Python code has a
    /// return address in it on its native stack (see `walk::capture`).
    pub eval_loop: (usize, usize),
}

/// The interpreter found, published once for every thread: set at most once from a leaked
/// box, never freed, so a reference to it is good forever. Lock-free (a capture reads it on
/// the socket() path; a fork child can never inherit it half set).
pub struct Published(AtomicPtr<Interpreter>);

impl Published {
    pub const fn new() -> Published {
        Published(AtomicPtr::new(std::ptr::null_mut()))
    }

    /// The interpreter, once published.
    #[inline]
    pub fn get(&self) -> Option<&'static Interpreter> {
        let p = self.0.load(Ordering::Acquire);
        // SAFETY: only `publish` stores a non-null pointer: a leaked Box, never freed.
        (!p.is_null()).then(|| unsafe { &*p })
    }

    /// Publishes `interpreter` unless one already was. Leaked on purpose: captures on any
    /// thread may hold the reference forever (and a second, concurrent answer is left unused:
    /// a few dozen bytes).
    pub fn publish(&self, interpreter: Interpreter) {
        let fresh = Box::into_raw(Box::new(interpreter));
        let _ = self.0.compare_exchange(
            std::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }
}

/// The answer.
#[derive(Debug)]
pub enum Found {
    /// No CPython in this process (yet).
    NotPython,
    Supported(Interpreter),
    /// CPython, but not one fdguard can read: the note for the report.
    Unsupported(String),
}

fn symbol(name: &CStr) -> usize {
    // SAFETY: dlsym with a NUL-terminated name; RTLD_DEFAULT searches the global scope.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) as usize }
}

/// `X.Y.Z` from the start of `Py_GetVersion()`'s text (`3.10.13 (main, …) [GCC …]`).
fn parse_version(text: &str) -> Option<(u8, u8, u8)> {
    let head = text.split([' ', '+', 'a', 'b', 'r']).next()?;
    let mut parts = head.split('.').map(|p| p.parse::<u8>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

/// Looks for CPython in the process.
pub fn find() -> Found {
    let this_thread_state = symbol(c"PyGILState_GetThisThreadState");
    let get_version = symbol(c"Py_GetVersion");
    if this_thread_state == 0 || get_version == 0 {
        return Found::NotPython;
    }
    let hex_version = symbol(c"Py_Version");
    let (major, minor, micro) = if hex_version != 0 {
        // SAFETY: `Py_Version` (3.11+) is an exported `const unsigned long`.
        let v = unsafe { std::ptr::read_volatile(hex_version as *const u64) };
        ((v >> 24) as u8, (v >> 16) as u8, (v >> 8) as u8)
    } else {
        type GetVersion = unsafe extern "C" fn() -> *const c_char;
        // SAFETY: `Py_GetVersion` takes nothing and returns a static NUL-terminated string;
        // it only formats constants, usable before the interpreter is initialised.
        let text = unsafe {
            let f = std::mem::transmute::<usize, GetVersion>(get_version);
            let p = f();
            if p.is_null() {
                return Found::Unsupported("CPython of unknown version found".into());
            }
            CStr::from_ptr(p).to_string_lossy().into_owned()
        };
        match parse_version(&text) {
            Some(v) => v,
            None => {
                return Found::Unsupported(format!(
                    "CPython found, but its version {:?} could not be read",
                    text.chars().take(20).collect::<String>()
                ));
            }
        }
    };
    let version = format!("{major}.{minor}.{micro}");
    let refuse = |why: &str| {
        Found::Unsupported(format!(
            "CPython {version} found: {why}; its sockets' stacks show native frames only"
        ))
    };
    let Some(layout) = (major == 3).then(|| layout::for_minor(minor)).flatten() else {
        return refuse("fdguard reads the frames of CPython 3.8 to 3.13 only");
    };
    if symbol(c"_Py_NegativeRefcount") != 0 || symbol(c"_Py_PrintReferences") != 0 {
        return refuse("a debug build, whose object layout fdguard does not read");
    }
    if symbol(c"_Py_DecRefShared") != 0 || symbol(c"_Py_MergeZeroLocalRefcount") != 0 {
        return refuse("a free-threaded build, whose object layout fdguard does not read");
    }
    let is_finalizing = match symbol(c"Py_IsFinalizing") {
        0 => symbol(c"_Py_IsFinalizing"),
        f => f,
    };
    let type_type = symbol(c"PyType_Type");
    let types = [
        symbol(c"PyCode_Type"),
        symbol(c"PyUnicode_Type"),
        symbol(c"PyBytes_Type"),
        symbol(c"PyFrame_Type"),
    ];
    if is_finalizing == 0 || type_type == 0 || types.contains(&0) {
        return refuse("a symbol fdguard needs is missing");
    }
    // Static type objects are initialised with `ob_type = &PyType_Type` by the compiler: if the
    // object header is not where we read it, this tells before any capture does.
    // SAFETY: the four are exported data symbols, type objects far larger than 16 bytes.
    let headers_ok = types.iter().all(
        |&t| unsafe { std::ptr::read_volatile((t + layout::OB_TYPE) as *const usize) } == type_type,
    );
    if !headers_ok {
        return refuse("its object header is not the one fdguard knows");
    }
    if minor >= 13 && !debug_offsets_agree(layout, hex_version) {
        return refuse("its _Py_DebugOffsets disagree with fdguard's layout table");
    }
    let Some(eval_loop) = function_range(symbol(c"_PyEval_EvalFrameDefault")) else {
        return refuse("the extent of its eval loop (_PyEval_EvalFrameDefault) is unknown");
    };
    type Fn0<T> = unsafe extern "C" fn() -> T;
    // SAFETY: both symbols are CPython functions taking no arguments, with these return types
    // (`PyThreadState *PyGILState_GetThisThreadState(void)`, `int Py_IsFinalizing(void)`).
    let (this_thread_state, is_finalizing) = unsafe {
        (
            std::mem::transmute::<usize, Fn0<*mut c_void>>(this_thread_state),
            std::mem::transmute::<usize, Fn0<c_int>>(is_finalizing),
        )
    };
    Found::Supported(Interpreter {
        version,
        layout,
        this_thread_state,
        is_finalizing,
        code_type: types[0],
        unicode_type: types[1],
        bytes_type: types[2],
        frame_type: types[3],
        eval_loop,
    })
}

/// glibc's `RTLD_DL_SYMENT` (<dlfcn.h>): `dladdr1` also returns the symbol's ELF entry.
const RTLD_DL_SYMENT: libc::c_int = 1;

/// `[start, start + st_size)` of the function at `address`, from its dynamic symbol.
fn function_range(address: usize) -> Option<(usize, usize)> {
    if address == 0 {
        return None;
    }
    // SAFETY: zeroed Dl_info is a valid out-buffer; `sym` receives a pointer to the module's
    // own ElfW(Sym) (RTLD_DL_SYMENT), valid while the module is loaded (CPython is not
    // unloaded).
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        let mut sym: *const libc::Elf64_Sym = std::ptr::null();
        let found = libc::dladdr1(
            address as *const c_void,
            &mut info,
            (&mut sym as *mut *const libc::Elf64_Sym).cast(),
            RTLD_DL_SYMENT,
        );
        if found == 0 || sym.is_null() || info.dli_saddr as usize != address {
            return None;
        }
        let size = (*sym).st_size as usize;
        (size > 0).then_some((address, address + size))
    }
}

/// 3.13's `_PyRuntime` starts with `_Py_DebugOffsets`, the offsets CPython publishes for
/// out-of-process debuggers. Where it overlaps our table it must say the same. Positions in
/// the struct as in 3.13.0's `pycore_runtime.h` (the layout test checks them); a later release
/// that moved them fails this check and is refused, which is the safe answer.
pub(super) mod debug_offsets {
    pub const COOKIE: usize = 0;
    pub const VERSION: usize = 8;
    pub const FREE_THREADED: usize = 16;
    pub const TS_INTERP: usize = 176;
    pub const TS_CURRENT_FRAME: usize = 184;
    pub const TS_THREAD_ID: usize = 192;
    pub const IF_PREVIOUS: usize = 232;
    pub const IF_EXECUTABLE: usize = 240;
    pub const IF_INSTR_PTR: usize = 248;
    pub const IF_OWNER: usize = 264;
    pub const CO_FILENAME: usize = 280;
    pub const CO_QUALNAME: usize = 296;
    pub const CO_LINETABLE: usize = 304;
    pub const CO_FIRSTLINENO: usize = 312;
    pub const CO_CODE_ADAPTIVE: usize = 344;
    pub const OB_TYPE: usize = 360;
}

fn debug_offsets_agree(l: &Layout, hex_version: usize) -> bool {
    use debug_offsets as d;
    let runtime = symbol(c"_PyRuntime");
    if runtime == 0 || hex_version == 0 {
        return false;
    }
    // SAFETY: `_PyRuntime` is an exported data symbol whose first member, in 3.13, is the
    // `_Py_DebugOffsets` structure (several hundred bytes; we read within its first 368).
    let read = |at: usize| unsafe { std::ptr::read_volatile((runtime + at) as *const u64) };
    // SAFETY: as above; `Py_Version` is a `const unsigned long`.
    let version = unsafe { std::ptr::read_volatile(hex_version as *const u64) };
    read(d::COOKIE) == u64::from_ne_bytes(*b"xdebugpy")
        && read(d::VERSION) == version
        && read(d::FREE_THREADED) == 0
        && [
            (d::TS_INTERP, l.ts_interp),
            (d::TS_CURRENT_FRAME, l.ts_frame),
            (d::TS_THREAD_ID, l.ts_thread_id),
            (d::IF_PREVIOUS, l.frame_back),
            (d::IF_EXECUTABLE, l.frame_code),
            (d::IF_INSTR_PTR, l.frame_instr),
            (d::IF_OWNER, l.frame_owner),
            (d::CO_FILENAME, l.co_filename),
            (d::CO_QUALNAME, l.co_name),
            (d::CO_LINETABLE, l.co_lines),
            (d::CO_FIRSTLINENO, l.co_firstlineno),
            (d::CO_CODE_ADAPTIVE, l.co_code),
            (d::OB_TYPE, layout::OB_TYPE),
        ]
        .iter()
        .all(|&(at, ours)| read(at) == ours as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(
            parse_version("3.10.13 (main, May  9 2026)"),
            Some((3, 10, 13))
        );
        assert_eq!(parse_version("3.13.0rc1 (main)"), Some((3, 13, 0)));
        assert_eq!(parse_version("3.12.0b4+ (heads)"), Some((3, 12, 0)));
        assert_eq!(parse_version("3.8 (x)"), Some((3, 8, 0)));
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn a_process_without_python_is_not_python() {
        // The unit test binary links no libpython.
        assert!(matches!(find(), Found::NotPython));
    }
}
