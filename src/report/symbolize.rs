//! Turning interned stacks into frames, at report time only, on the reporting thread.
//!
//! Each address gets: the module and offset (`dladdr`), the demangled function name plus
//! file:line where debug info exists (the `backtrace` crate's DWARF reader), and otherwise the
//! nearest symbol the module still exports (`dladdr`'s answer, written `symbol+0xOFF`) — the
//! only name a stripped module such as a grpcio wheel's cygrpc can give.
#![allow(unsafe_code)] // dladdr1 and the backtrace crate's unsynchronised resolver.

use super::interleave::PythonFrame;
use crate::track::python::{self, slot};
use fdguard_report::{Frame, FrameKind};
use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set in a fork child whose parent was symbolising when it forked: the symboliser's lock may
/// be held by a thread that does not exist here, so only `dladdr` names are used.
static DWARF_OFF: AtomicBool = AtomicBool::new(false);

/// Disables DWARF symbolisation for the rest of the process.
pub fn disable_dwarf() {
    DWARF_OFF.store(true, Ordering::Relaxed);
}

/// Resolves addresses, caching per report.
pub struct Symbolizer {
    cache: HashMap<usize, Vec<Frame>>,
    /// The executable's path (`/proc/self/exe`), the module name of the main program's frames
    /// (see [`dladdr`]).
    exe: String,
    startup: StartupFrames,
}

struct ModuleInfo {
    path: String,
    base: usize,
    symbol: Option<(String, usize)>,
}

/// The public head of glibc's `struct link_map` (`<link.h>`): what `dladdr1` with
/// `RTLD_DL_LINKMAP` points to.
#[repr(C)]
struct LinkMapHead {
    l_addr: usize,
    l_name: *const libc::c_char,
}

/// `dladdr1`'s flag for the module's link map (`<dlfcn.h>`).
const RTLD_DL_LINKMAP: libc::c_int = 2;

/// The module (path, base) and nearest exported symbol of `ip`. The main program gets an
/// empty path: its link map's name is "" and glibc's dladdr then answers `argv[0]` — the
/// string nginx, sshd, PostgreSQL and redis overwrite with their process title, which would
/// name frames `nginx: worker process+0x…`. The caller names it from `/proc/self/exe`.
fn dladdr(ip: usize) -> Option<ModuleInfo> {
    // SAFETY: zeroed Dl_info is a valid out-buffer.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let mut map: *mut libc::c_void = std::ptr::null_mut();
    // SAFETY: dladdr1 accepts any address value and writes `info` and `map` on success.
    if unsafe {
        libc::dladdr1(
            ip as *const libc::c_void,
            &mut info,
            &mut map,
            RTLD_DL_LINKMAP,
        )
    } == 0
    {
        return None;
    }
    // SAFETY: on success `map` is the module's link map, whose head is LinkMapHead and whose
    // name is a NUL-terminated string that lives as long as the module.
    let main_program = !map.is_null()
        && unsafe {
            let name = (*map.cast::<LinkMapHead>()).l_name;
            name.is_null() || *name == 0
        };
    if main_program {
        info.dli_fname = std::ptr::null();
    }
    let text = |p: *const libc::c_char| {
        // SAFETY: dladdr's strings are NUL-terminated and live as long as the module.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    };
    let symbol = text(info.dli_sname).map(|name| (name, info.dli_saddr as usize));
    Some(ModuleInfo {
        path: text(info.dli_fname).unwrap_or_default(),
        base: info.dli_fbase as usize,
        symbol,
    })
}

fn demangle(name: &str) -> String {
    format!("{}", backtrace::SymbolName::new(name.as_bytes()))
}

impl Symbolizer {
    /// A symboliser for one report; `exe` is the executable's path (the report already read
    /// it from /proc/self/exe).
    pub fn new(exe: &str) -> Symbolizer {
        Symbolizer {
            cache: HashMap::new(),
            exe: exe.to_string(),
            startup: StartupFrames::here(),
        }
    }

    /// The frames for one return address: one per inlining level, innermost first (a call
    /// that the compiler inlined still shows as its own frame, as in LeakSanitizer reports).
    pub fn frames(&mut self, ip: usize) -> Vec<Frame> {
        if let Some(f) = self.cache.get(&ip) {
            return f.clone();
        }
        let base = {
            let mut frame = Frame {
                ip: format!("{ip:#x}"),
                ..Frame::default()
            };
            if let Some(m) = dladdr(ip) {
                let path = if m.path.is_empty() {
                    self.exe.clone()
                } else {
                    m.path.clone()
                };
                frame.module = Some(path);
                frame.module_offset = Some(format!("{:#x}", ip.wrapping_sub(m.base)));
                if let Some((name, addr)) = m.symbol {
                    // Nearest exported symbol: the only name a stripped module can give.
                    frame.function =
                        Some(format!("{}+{:#x}", demangle(&name), ip.wrapping_sub(addr)));
                }
            }
            frame
        };
        let mut levels: Vec<Frame> = Vec::new();
        if !DWARF_OFF.load(Ordering::Relaxed) {
            // SAFETY: resolve_unsynchronized requires no concurrent symbolisation through the
            // backtrace crate in this process; only the thread writing a report symbolises,
            // and reports are written one at a time (report::Busy).
            unsafe {
                backtrace::resolve_unsynchronized(ip as *mut libc::c_void, |symbol| {
                    let mut frame = base.clone();
                    if let Some(name) = symbol.name() {
                        // `{:#}` drops Rust's `::h0123…` hash suffix.
                        frame.function = Some(format!("{name:#}"));
                    }
                    frame.file = symbol.filename().map(|p| p.to_string_lossy().into_owned());
                    frame.line = symbol.lineno();
                    levels.push(frame);
                });
            }
        }
        // Levels without any name add nothing over the dladdr answer.
        levels.retain(|f| f.function.is_some() || f.file.is_some());
        if levels.is_empty() {
            levels.push(base);
        }
        self.cache.insert(ip, levels.clone());
        levels
    }

    /// The frames of an interned stack, cut below the program's entry: the C library's
    /// start-up frames (`__libc_start_*`, `_start`) and a thread's `start_thread`/`clone3` say
    /// nothing about who created the socket.
    pub fn stack(&mut self, stack_id: u32) -> Vec<Frame> {
        let mut ips = crate::track::capture::frames(stack_id);
        // Python frames, if any, follow the native return addresses (track::python::slot).
        let python = ips.split_off(
            ips.iter()
                .position(|&w| slot::is_python(w))
                .unwrap_or(ips.len()),
        );
        let native_cut = python.first().is_some_and(|&w| w & slot::NATIVE_CUT != 0);
        if ips.len() < crate::track::capture::depth() && !native_cut {
            // A complete stack: drop its start-up frames by address before symbolising. Naming
            // them first would load the C library's debug info (libc6-dbg: ~100 ms of
            // decompression at every exit report) only to throw the names away.
            while ips.len() > 1 && ips.last().is_some_and(|&ip| self.startup.contains(ip)) {
                ips.pop();
            }
        }
        let mut out: Vec<Frame> = Vec::new();
        for ip in ips {
            let levels = self.frames(ip);
            // Rust's runtime marks where the program's own code begins: below
            // `__rust_begin_short_backtrace` are only std's start-up frames (lang_start,
            // catch_unwind), which Rust's own panic backtraces hide the same way.
            let rust_runtime = levels.iter().any(|f| {
                f.function
                    .as_deref()
                    .is_some_and(|n| n.contains("__rust_begin_short_backtrace"))
            });
            if rust_runtime && !out.is_empty() {
                break;
            }
            out.extend(levels);
        }
        // By name as well: a stack exactly `depth` frames long is not cut by position above
        // (it may have been truncated), yet can still end in start-up frames.
        let noise = |f: &Frame| {
            f.function.as_deref().is_some_and(|n| {
                n.starts_with("__libc_start_call_main")
                    || n.starts_with("__libc_start_main")
                    || n == "_start"
                    || n.starts_with("start_thread")
                    || n.starts_with("clone3")
                    || n.starts_with("__clone")
            })
        };
        while out.len() > 1 && out.last().is_some_and(noise) {
            out.pop();
        }
        let python = python.into_iter().map(python_frame).collect();
        super::interleave::merge(out, python)
    }
}

/// A Python frame word of a stack as a report frame (copied at capture time: the code object it
/// came from may be long gone).
fn python_frame(word: usize) -> PythonFrame {
    let frame = match python::frame(word) {
        Some(f) => Frame {
            function: Some(f.function),
            file: Some(f.file),
            line: (f.line > 0).then_some(f.line),
            kind: FrameKind::Python,
            ..Frame::default()
        },
        None => Frame {
            function: Some("(Python frame not kept: table full)".to_string()),
            kind: FrameKind::Python,
            ..Frame::default()
        },
    };
    PythonFrame {
        frame,
        group_end: word & slot::GROUP_END != 0,
    }
}

/// Where a process's start-up frames live, to recognise them without symbols: every frame of
/// the C library at the outer end of a complete stack is start-up code (`__libc_start_main`,
/// `__libc_start_call_main` for the main thread, `start_thread` and `clone3` for the others:
/// whatever the C library calls back into sits further in), and so is the executable's
/// `_start`, a few bytes after the entry point.
struct StartupFrames {
    libc_base: Option<usize>,
    entry: usize,
}

impl StartupFrames {
    /// `_start` calls `__libc_start_main` within its first few dozen bytes on every ABI glibc
    /// supports; 64 leaves margin without reaching into the next function.
    const START_LEN: usize = 64;

    fn here() -> StartupFrames {
        // `sigaction` is one of the C library's own functions that fdguard does not interpose,
        // so its address is inside libc, not inside libfdguard.so.
        let libc_base = dladdr(libc::sigaction as *const () as usize).map(|m| m.base);
        // SAFETY: getauxval has no preconditions; AT_ENTRY is the executable's entry point
        // (0 if unknown, which matches no return address).
        let entry = unsafe { libc::getauxval(libc::AT_ENTRY) } as usize;
        StartupFrames { libc_base, entry }
    }

    fn contains(&self, ip: usize) -> bool {
        if self.entry != 0 && ip > self.entry && ip - self.entry < Self::START_LEN {
            return true;
        }
        self.libc_base
            .is_some_and(|base| dladdr(ip).is_some_and(|m| m.base == base))
    }
}
