//! Python frames in creating stacks (issue 16): when the host is CPython 3.8–3.13, a socket
//! created on a thread that runs Python code gets that thread's Python frames — function, file,
//! line — after its native frames, in the same interned stack.
//!
//! - `detect`: is the host CPython, which version, can we read it (load time, and when the
//!   unwinder's module list refreshes). Anything else: native frames only and one note.
//! - `walk`: the capture, on the socket() path: lock-free, allocation-free, bounded; reads only
//!   the calling thread's own frames.
//! - `intern`: the Python frame table ((function, file, line) copied in, one id each), and
//!   `cache`, which maps a frame's bytes to its id so a frame seen before costs a hash.
//! - `linetable`, `layout`: instruction offset → line, and where each version keeps things.
//!
//! A stack keeps native return addresses and Python frames in one array of words ([`slot`]): a
//! Python frame is its id with the top bit set, which no user-space return address has, so
//! native stacks, their hashing and interning are unchanged. The report puts the Python frames
//! where the interpreter's eval-loop frames were (`report::interleave`).

mod cache;
mod detect;
mod intern;
mod layout;
mod linetable;
mod walk;

pub use intern::PyFrame;

use once_cell::sync::OnceCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// How a Python frame is stored among a stack's return addresses.
pub mod slot {
    /// Set on every Python frame (bit 63: never set in a user-space address).
    pub const PYTHON: usize = 1 << 63;
    /// The last Python frame run by one C-level call of the eval loop: the report replaces one
    /// `_PyEval_EvalFrameDefault` native frame with the Python frames up to and including it.
    pub const GROUP_END: usize = 1 << 62;
    /// On the first Python frame: native frames were cut from the outer end to make room.
    pub const NATIVE_CUT: usize = 1 << 61;
    const ID: usize = 0xffff_ffff;

    /// The word for Python frame `id`.
    pub fn encode(id: u32, group_end: bool) -> usize {
        PYTHON | id as usize | if group_end { GROUP_END } else { 0 }
    }

    /// True for a Python frame's word.
    pub fn is_python(word: usize) -> bool {
        word & PYTHON != 0
    }

    /// The frame id of a Python frame's word.
    pub fn id(word: usize) -> u32 {
        (word & ID) as u32
    }
}

/// Python frames kept per stack by default, and at most (a stack holds 64 words in all).
pub const DEFAULT_DEPTH: usize = 32;

static INTERPRETER: detect::Published = detect::Published::new();
static DEPTH: AtomicUsize = AtomicUsize::new(DEFAULT_DEPTH);
/// Why the CPython found cannot be read (the report's note).
static REFUSED: OnceCell<String> = OnceCell::new();
/// Stacks that got Python frames (tests and notes).
static CAPTURED: AtomicU64 = AtomicU64::new(0);
/// Captures on a thread CPython knows whose native stack, cut by the depth, did not reach the
/// eval loop: no Python frames (the report's note says how to get them).
static NO_EVAL_LOOP: AtomicU64 = AtomicU64::new(0);

/// Test-only faults (`FDGUARD_TEST_FAULT`), to prove the safety nets on any machine:
/// `python-refuse` refuses the interpreter found as if its version were unknown;
/// `python-layout-skew` reads `thread_id` 8 bytes off, as a wrong layout table would.
static FAULT: AtomicUsize = AtomicUsize::new(0);
const FAULT_REFUSE: usize = 1;
const FAULT_SKEW: usize = 2;

/// Sets how many Python frames a stack keeps (0 turns Python frames off) and the test fault.
/// Before anything can detect (constructor, before the unwinder registers modules).
pub fn configure(depth: usize, test_fault: Option<&str>) {
    DEPTH.store(depth, Ordering::Relaxed);
    let fault = match test_fault {
        Some("python-refuse") => FAULT_REFUSE,
        Some("python-layout-skew") => FAULT_SKEW,
        _ => 0,
    };
    FAULT.store(fault, Ordering::Relaxed);
}

/// Looks for CPython now, unless it was already found or refused (load time, and whenever the
/// set of loaded modules changed). Not for the hot path: `dlsym` takes the loader's lock. Two
/// threads may look at once (no flag to leave held across a fork): the first answer stays.
pub fn detect() {
    if INTERPRETER.get().is_some() || REFUSED.get().is_some() {
        return;
    }
    let found = match (detect::find(), FAULT.load(Ordering::Relaxed)) {
        (detect::Found::Supported(py), FAULT_REFUSE) => detect::Found::Unsupported(format!(
            "CPython {} found: refused on purpose (FDGUARD_TEST_FAULT=python-refuse); its \
             sockets' stacks show native frames only",
            py.version
        )),
        (detect::Found::Supported(mut py), FAULT_SKEW) => {
            let skewed = layout::Layout {
                ts_thread_id: py.layout.ts_thread_id + 8,
                ..*py.layout
            };
            py.layout = Box::leak(Box::new(skewed));
            detect::Found::Supported(py)
        }
        (found, _) => found,
    };
    match found {
        detect::Found::Supported(interpreter) => INTERPRETER.publish(interpreter),
        detect::Found::Unsupported(why) => {
            let _ = REFUSED.set(why);
        }
        detect::Found::NotPython => {}
    }
}

/// The interpreter found, if it can be read.
fn interpreter() -> Option<&'static detect::Interpreter> {
    INTERPRETER.get()
}

/// The CPython version whose frames are captured (`3.11.7`), if any.
#[cfg_attr(not(test), allow(dead_code))]
pub fn version() -> Option<&'static str> {
    interpreter().map(|i| i.version.as_str())
}

/// Appends the calling thread's Python frames to the stack being captured, whose first
/// `native` words of `buf` are native return addresses (unwound to at most `native_depth`,
/// the capture depth); returns the stack's new length. A
/// thread without Python frames (not Python, or a thread CPython never saw, such as gRPC's
/// C-core threads) costs one `pthread_getspecific`. Async-signal-safe in practice: no lock, no
/// allocation, no system call (but the frame table's one `mmap`, on first use).
#[inline(never)]
pub fn append(buf: &mut [usize], native: usize, native_depth: usize) -> usize {
    let max = DEPTH.load(Ordering::Relaxed);
    let Some(py) = interpreter() else {
        return native;
    };
    if max == 0 {
        return native;
    }
    walk::append(py, buf, native, native_depth, max)
}

/// The Python frame stored as `word` (report time).
pub fn frame(word: usize) -> Option<PyFrame> {
    intern::get(slot::id(word))
}

/// What the report should say about Python frames: a CPython that could not be read, thread
/// states that did not check out, a full frame table.
pub fn notes() -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(why) = REFUSED.get() {
        notes.push(why.clone());
    }
    let mismatched = walk::MISMATCHED.load(Ordering::Relaxed);
    if let (Some(py), true) = (interpreter(), mismatched > 0) {
        notes.push(format!(
            "{mismatched} socket(s) were created on a thread whose CPython {} thread state did not \
             name that thread: their stacks show native frames only",
            py.version
        ));
    }
    let cut = NO_EVAL_LOOP.load(Ordering::Relaxed);
    if cut > 0 {
        notes.push(format!(
            "{cut} socket(s) created on a thread CPython knows got no Python frames: their native \
             stack reached FDGUARD_STACK_DEPTH before the interpreter's eval loop (raise it to \
             see them)"
        ));
    }
    let finalizing = walk::FINALIZING.load(Ordering::Relaxed);
    if finalizing > 0 {
        notes.push(format!(
            "{finalizing} socket(s) were created while the Python interpreter was finalizing: \
             their stacks show native frames only"
        ));
    }
    if intern::dropped() > 0 {
        notes.push(format!(
            "{} Python frame(s) not kept: the Python frame table is full",
            intern::dropped()
        ));
    }
    notes
}

/// Interpreters on this machine for the unit tests: pyenv's, Debian's `python3.X`, and any in
/// `FDGUARD_TEST_PYTHONS` (colon-separated paths).
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::PathBuf;

    pub fn interpreters() -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = Vec::new();
        if let Some(list) = std::env::var_os("FDGUARD_TEST_PYTHONS") {
            found.extend(std::env::split_paths(&list));
        }
        let pyenv = std::env::var_os("PYENV_ROOT")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")));
        if let Some(root) = pyenv
            && let Ok(dir) = std::fs::read_dir(root.join("versions"))
        {
            let mut versions: Vec<PathBuf> = dir
                .flatten()
                .map(|e| e.path().join("bin/python3"))
                .filter(|p| p.is_file())
                .collect();
            versions.sort();
            found.extend(versions);
        }
        for minor in 6..=14 {
            let p = PathBuf::from(format!("/usr/bin/python3.{minor}"));
            if p.is_file() {
                found.push(p);
            }
        }
        found
    }
}
