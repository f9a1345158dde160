//! The capture itself: the calling thread's own Python frames, read in place and interned.
//!
//! WARNING: this runs inside the host's socket()/accept() call, usually with the GIL released
//! (CPython drops it around those calls), so CPython's own locks and APIs are off limits. What
//! makes reading safe without them:
//! - only the calling thread's state is read (`PyGILState_GetThisThreadState`, a
//!   `pthread_getspecific` slot), and only its own frames: while this thread is inside a C call,
//!   no other thread pushes, pops or frees them, and each frame holds a strong reference to its
//!   code object, which holds its names and line table;
//! - the thread must be running Python code: one of its native return addresses lies in
//!   `_PyEval_EvalFrameDefault` (checked first, in [`append`]), so a state that another thread
//!   runs (an embedding program's hand-made state) is never read;
//! - the state must name this thread (`thread_id == pthread_self()`) and every object must have
//!   the type we expect (`ob_type` compared with `PyCode_Type`, `PyUnicode_Type`, …) before it
//!   is used; anything else ends the walk;
//! - nothing is read while the interpreter is finalizing (the one time CPython frees the state
//!   of a thread that is still inside a C call: a daemon thread), checked before and after;
//! - every loop is bounded: [`MAX_LINKS`] frames walked, the configured number kept, names cut
//!   to the intern table's sizes, line tables bounded by their own length.
//!
//! No allocation, no lock, no system call (but the frame table's one `mmap`, on first use).
#![allow(unsafe_code)] // reads the interpreter's frames: foreign memory.

use super::cache;
use super::detect::Interpreter;
use super::intern::{self, Key};
use super::layout::{self, Frames, Layout};
use super::linetable;
use super::slot;
use std::sync::atomic::{AtomicU64, Ordering};

/// Frames walked at most per capture (kept or skipped): a recursion-limit-deep Python stack is
/// 1000 frames; anything longer is a loop we must not follow.
const MAX_LINKS: usize = 1200;
/// Longest string or line table believed (anything longer is not a name or a table).
const MAX_OBJECT_LEN: usize = 1 << 24;
/// Longest name or line table hashed for the frame cache (longer ones take the slow path).
const CACHED_LEN: usize = 1 << 16;

/// Thread states that did not name their own thread: a layout fdguard got wrong.
pub static MISMATCHED: AtomicU64 = AtomicU64::new(0);
/// Captures skipped because the interpreter was finalizing.
pub static FINALIZING: AtomicU64 = AtomicU64::new(0);

/// A plausible address of an 8-aligned structure in user space.
#[inline]
fn plausible(p: usize) -> bool {
    (4096..1usize << 47).contains(&p) && p.is_multiple_of(8)
}

/// SAFETY (all three): the caller knows `addr` lies inside a live object or structure of at
/// least the size read.
#[inline]
unsafe fn word(addr: usize) -> usize {
    // SAFETY: see above. Volatile: this is another component's memory, read once.
    unsafe { std::ptr::read_volatile(addr as *const usize) }
}

#[inline]
unsafe fn int(addr: usize) -> i32 {
    // SAFETY: see `word`.
    unsafe { std::ptr::read_volatile(addr as *const i32) }
}

#[inline]
unsafe fn byte(addr: usize) -> u8 {
    // SAFETY: see `word`.
    unsafe { std::ptr::read_volatile(addr as *const u8) }
}

/// One frame of the chain.
enum Step {
    /// A Python frame: its code object and the byte offset of its current instruction.
    Python {
        code: usize,
        offset: i64,
        group_end: bool,
    },
    /// Not a Python frame (a 3.12+ shim, an incomplete or foreign frame); `group_end`: the
    /// eval call that the last kept frame belongs to ends here.
    Skip { group_end: bool },
}

struct Walker<'a> {
    py: &'a Interpreter,
    l: &'a Layout,
}

impl Walker<'_> {
    /// `obj` is an object of type `ty`.
    ///
    /// SAFETY: `obj` is 0 or points to something at least 16 bytes long (a frame's or code
    /// object's field says it holds an object).
    #[inline]
    unsafe fn is(&self, obj: usize, ty: usize) -> bool {
        // SAFETY: checked plausible; the caller's contract covers the read.
        plausible(obj) && unsafe { word(obj + layout::OB_TYPE) } == ty
    }

    /// The innermost frame of the thread whose state is `tstate`, or 0.
    ///
    /// SAFETY: `tstate` is this thread's own live PyThreadState.
    unsafe fn first(&self, tstate: usize) -> usize {
        // SAFETY: offsets inside PyThreadState (and the _PyCFrame it points to, which lives on
        // this thread's stack while it runs Python) per the layout table.
        unsafe {
            match self.l.frames {
                Frames::Objects | Frames::Direct313 => word(tstate + self.l.ts_frame),
                Frames::Cframe311 | Frames::Cframe312 => {
                    let cframe = word(tstate + self.l.ts_frame);
                    if plausible(cframe) {
                        word(cframe + self.l.cframe_current)
                    } else {
                        0
                    }
                }
            }
        }
    }

    /// What `frame` is, and the next frame out.
    ///
    /// SAFETY: `frame` is one of this thread's frames, reached from its state.
    unsafe fn step(&self, frame: usize) -> Option<(Step, usize)> {
        let l = self.l;
        if !plausible(frame) {
            return None;
        }
        // SAFETY: `frame` is a frame of this thread (the caller's contract); the offsets are
        // fields of PyFrameObject / _PyInterpreterFrame, and the code object's fields are read
        // only after its type was checked.
        unsafe {
            if l.frames == Frames::Objects {
                if !self.is(frame, self.py.frame_type) {
                    return None;
                }
                let next = word(frame + l.frame_back);
                let code = word(frame + l.frame_code);
                if !self.is(code, self.py.code_type) {
                    return Some((Step::Skip { group_end: true }, next));
                }
                let lasti = int(frame + l.frame_instr) as i64;
                let offset = match l.lines {
                    layout::Lines::Linetable310 if lasti >= 0 => lasti * 2,
                    _ => lasti,
                };
                return Some((
                    Step::Python {
                        code,
                        offset,
                        group_end: true,
                    },
                    next,
                ));
            }
            let next = word(frame + l.frame_back);
            let owner = byte(frame + l.frame_owner);
            let entry = l.frames == Frames::Cframe311 && byte(frame + l.frame_is_entry) != 0;
            if owner == layout::OWNED_BY_CSTACK && l.frames != Frames::Cframe311 {
                return Some((Step::Skip { group_end: true }, next));
            }
            let code = word(frame + l.frame_code);
            if !self.is(code, self.py.code_type) {
                return Some((Step::Skip { group_end: entry }, next));
            }
            let start = code + l.co_code;
            let instr = word(frame + l.frame_instr);
            let traceable = int(code + l.co_firsttraceable).max(0) as usize;
            if owner != layout::OWNED_BY_GENERATOR && instr < start + traceable * 2 {
                // Incomplete: set up, not yet running (CPython skips these too).
                return Some((Step::Skip { group_end: entry }, next));
            }
            Some((
                Step::Python {
                    code,
                    offset: instr.wrapping_sub(start) as isize as i64,
                    group_end: entry,
                },
                next,
            ))
        }
    }

    /// Copies the string `obj` into `out` as UTF-8: the start when it is too long, or with
    /// `keep_end` its end after `...`. `?` when it is not a compact str. Returns the length.
    ///
    /// SAFETY: `obj` was read from a live code object's name field.
    unsafe fn string(&self, obj: usize, out: &mut [u8], keep_end: bool) -> usize {
        // SAFETY: the object's type is checked before any other field is read; a compact
        // string's code points follow its header and number `length` (per its `kind`).
        unsafe {
            if out.len() < 8 || !self.is(obj, self.py.unicode_type) {
                out[0] = b'?';
                return 1;
            }
            let length = word(obj + layout::STR_LENGTH);
            let state = int(obj + layout::STR_STATE) as u32;
            let kind = (state & layout::STATE_KIND_MASK) >> layout::STATE_KIND_SHIFT;
            if length > MAX_OBJECT_LEN
                || state & layout::STATE_COMPACT == 0
                || !matches!(kind, 1 | 2 | 4)
            {
                out[0] = b'?';
                return 1;
            }
            let ascii = state & layout::STATE_ASCII != 0;
            let data = obj
                + if ascii {
                    self.l.ascii_size
                } else {
                    self.l.compact_size
                };
            // Bytes one code point may take in UTF-8.
            let widest = match (ascii, kind) {
                (true, _) => 1,
                (false, 1) => 2,
                (false, 2) => 3,
                _ => 4,
            };
            let mut at = 0;
            let mut first = 0;
            if length * widest > out.len() && keep_end {
                out[..3].copy_from_slice(b"...");
                at = 3;
                first = length - (out.len() - 3) / widest;
            }
            if ascii {
                // The common case: the bytes are the UTF-8.
                let n = (length - first).min(out.len() - at);
                std::ptr::copy_nonoverlapping(
                    (data + first) as *const u8,
                    out[at..].as_mut_ptr(),
                    n,
                );
                return at + n;
            }
            for i in first..length {
                let cp = match kind {
                    1 => byte(data + i) as u32,
                    2 => std::ptr::read_unaligned((data + 2 * i) as *const u16) as u32,
                    _ => std::ptr::read_unaligned((data + 4 * i) as *const u32),
                };
                let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                if at + ch.len_utf8() > out.len() {
                    break;
                }
                at += ch.encode_utf8(&mut out[at..]).len();
            }
            at
        }
    }

    /// The raw bytes of a compact str (`None` for anything else, or longer than `limit`),
    /// and its state bits that say how to read them (kind, ascii).
    ///
    /// SAFETY: `obj` was read from a live code object's field.
    unsafe fn raw_str(&self, obj: usize, limit: usize) -> Option<(&'static [u8], u32)> {
        // SAFETY: the type is checked first; a compact string's `length` code points of
        // `kind` bytes follow its header (at `ascii_size` when ASCII, else `compact_size`).
        unsafe {
            if !self.is(obj, self.py.unicode_type) {
                return None;
            }
            let length = word(obj + layout::STR_LENGTH);
            let state = int(obj + layout::STR_STATE) as u32;
            let kind = ((state & layout::STATE_KIND_MASK) >> layout::STATE_KIND_SHIFT) as usize;
            if state & layout::STATE_COMPACT == 0 || !matches!(kind, 1 | 2 | 4) {
                return None;
            }
            let ascii = state & layout::STATE_ASCII != 0;
            let data = obj
                + if ascii {
                    self.l.ascii_size
                } else {
                    self.l.compact_size
                };
            let len = length.checked_mul(kind).filter(|&n| n <= limit)?;
            let bits = state & (layout::STATE_KIND_MASK | layout::STATE_ASCII);
            Some((std::slice::from_raw_parts(data as *const u8, len), bits))
        }
    }

    /// The bytes of a bytes object (`None` for anything else, or longer than `limit`).
    ///
    /// SAFETY: `obj` was read from a live code object's field.
    unsafe fn raw_bytes(&self, obj: usize, limit: usize) -> Option<&'static [u8]> {
        // SAFETY: the type is checked first; a bytes object's `ob_size` bytes follow its header.
        unsafe {
            if !self.is(obj, self.py.bytes_type) {
                return None;
            }
            let len = word(obj + layout::OB_SIZE);
            (len <= limit)
                .then(|| std::slice::from_raw_parts((obj + layout::BYTES_DATA) as *const u8, len))
        }
    }

    /// The frame id of `code` running at byte `offset`: from the frame cache when the same
    /// bytes were seen before, else copied, decoded and interned.
    ///
    /// SAFETY: `code` is a live code object (type checked).
    unsafe fn frame_id(&self, code: usize, offset: i64) -> u32 {
        // SAFETY: names, table and first line of a live, type-checked code object.
        unsafe {
            let name = word(code + self.l.co_name);
            let file = word(code + self.l.co_filename);
            let table = word(code + self.l.co_lines);
            let first = int(code + self.l.co_firstlineno);
            let content = match (
                self.raw_str(name, CACHED_LEN),
                self.raw_str(file, CACHED_LEN),
                self.raw_bytes(table, CACHED_LEN),
            ) {
                (Some((n, n_bits)), Some((f, f_bits)), Some(t)) => {
                    let mut h = cache::Hasher::new(self.l.minor as u64);
                    h.bytes(n);
                    h.bytes(f);
                    h.bytes(t);
                    h.word((n_bits as u64) << 32 | f_bits as u64);
                    h.word((first as u32 as u64) << 32 ^ offset as u64);
                    if let Some(id) = cache::get(h) {
                        return id;
                    }
                    Some(h)
                }
                _ => None,
            };
            let mut key = Key::new();
            let (f, p) = key.buffers();
            let (function_len, file_len) =
                (self.string(name, f, false), self.string(file, p, true));
            key.function_len = function_len;
            key.file_len = file_len;
            key.line = match self.raw_bytes(table, MAX_OBJECT_LEN) {
                Some(bytes) => linetable::line(self.l.lines, bytes, first, offset).unwrap_or(0),
                None => 0,
            };
            let id = intern::intern(&key);
            if let (Some(h), true) = (content, id != intern::NONE) {
                cache::put(h, id);
            }
            id
        }
    }
}

/// [`super::append`] once a readable interpreter is known and frames are wanted: the calling
/// thread's state, the eval-loop check, then [`capture`]. `native_depth`: the capture depth
/// (a native stack that long may have been cut before reaching the eval loop).
#[inline]
pub fn append(
    py: &Interpreter,
    buf: &mut [usize],
    native: usize,
    native_depth: usize,
    max: usize,
) -> usize {
    // SAFETY: CPython's `PyGILState_GetThisThreadState`, no arguments; it reads this thread's
    // TSS slot (0 for a thread CPython does not know, or before Py_Initialize).
    let tstate = unsafe { (py.this_thread_state)() } as usize;
    if tstate == 0 {
        return native;
    }
    // No return address in the eval loop among the native frames: as far as we can see this
    // thread is not running Python code, whatever state its slot holds (an embedding program
    // may have made one there for another thread to run), and its frames are not ours to
    // read. When the native stack was cut by the depth before reaching the eval loop, say so.
    let (lo, hi) = py.eval_loop;
    if !buf[..native].iter().any(|&ra| lo < ra && ra <= hi) {
        if native >= native_depth {
            super::NO_EVAL_LOOP.fetch_add(1, Ordering::Relaxed);
        }
        return native;
    }
    // SAFETY: `tstate` is this thread's own state, as `capture` requires.
    let n = unsafe { capture(py, tstate, buf, native, max) };
    if n != native {
        super::CAPTURED.fetch_add(1, Ordering::Relaxed);
    }
    n
}

/// Appends the Python frames of the thread whose state is `tstate` to `buf[..native]` (its
/// native frames), cutting native frames from the outer end if the buffer would not hold
/// `max` Python frames. Returns the new length.
///
/// SAFETY: `tstate` is what `PyGILState_GetThisThreadState` returned on this thread (0 checked
/// by the caller).
unsafe fn capture(
    py: &Interpreter,
    tstate: usize,
    buf: &mut [usize],
    native: usize,
    max: usize,
) -> usize {
    let walker = Walker { py, l: py.layout };
    // SAFETY: `is_finalizing` is CPython's, taking nothing (see detect.rs).
    if unsafe { (py.is_finalizing)() } != 0 {
        FINALIZING.fetch_add(1, Ordering::Relaxed);
        return native;
    }
    // SAFETY: tstate is this thread's own state (caller's contract): its fields are readable.
    let (thread_id, interp) = unsafe {
        (
            word(tstate + walker.l.ts_thread_id),
            word(tstate + walker.l.ts_interp),
        )
    };
    // SAFETY: pthread_self has no preconditions.
    if thread_id != unsafe { libc::pthread_self() } as usize || !plausible(interp) {
        MISMATCHED.fetch_add(1, Ordering::Relaxed);
        return native;
    }
    let native = native.min(buf.len());
    // SAFETY: validated above.
    let first = unsafe { walker.first(tstate) };
    if first == 0 {
        return native;
    }
    let max = max.min(buf.len());
    let mut at = native;
    if native + max > buf.len() {
        // Room for the Python frames first: count them (links only), then cut native frames.
        let mut count = 0;
        let mut frame = first;
        let mut links = 0;
        while frame != 0 && links < MAX_LINKS && count < max {
            links += 1;
            // SAFETY: a frame of this thread, reached from its state.
            let Some((step, next)) = (unsafe { walker.step(frame) }) else {
                break;
            };
            if matches!(step, Step::Python { .. }) {
                count += 1;
            }
            frame = next;
        }
        at = native.min(buf.len() - count);
    }
    let start = at;
    let mut frame = first;
    let mut links = 0;
    let mut complete = false;
    // The previous frame's (code, offset, id): recursion repeats them, and within one capture
    // the same code object at the same offset is the same frame.
    let mut last = (0usize, 0i64, intern::NONE);
    while links < MAX_LINKS {
        if frame == 0 {
            complete = true;
            break;
        }
        links += 1;
        if at == buf.len() || at - start == max {
            break;
        }
        // SAFETY: a frame of this thread, reached from its state.
        let Some((step, next)) = (unsafe { walker.step(frame) }) else {
            break;
        };
        match step {
            Step::Python {
                code,
                offset,
                group_end,
            } => {
                let id = if (code, offset) == (last.0, last.1) {
                    last.2
                } else {
                    // SAFETY: `code` was type-checked by `step`.
                    unsafe { walker.frame_id(code, offset) }
                };
                last = (code, offset, id);
                buf[at] = slot::encode(id, group_end);
                at += 1;
            }
            Step::Skip { group_end: true } if at > start => buf[at - 1] |= slot::GROUP_END,
            Step::Skip { .. } => {}
        }
        frame = next;
    }
    if at == start {
        return native;
    }
    if complete {
        buf[at - 1] |= slot::GROUP_END; // the outermost eval call ends with the last frame
    }
    if start < native {
        buf[start] |= slot::NATIVE_CUT;
    }
    // SAFETY: as above. Finalization began during the walk: what we read may already have
    // been freed, so none of it is kept.
    if unsafe { (py.is_finalizing)() } != 0 {
        FINALIZING.fetch_add(1, Ordering::Relaxed);
        return start;
    }
    at
}
