//! Raw stack capture and lock-free interning.
//!
//! On the creation path we only record return addresses into a fixed array on the stack, cut
//! our own frames off the top, and intern the result in a fixed open-addressing table (mapped
//! lazily, never resized, never locked): identical stacks share one id. Symbols are resolved only
//! when a report is written (`symbolize.rs`), off the host's path.
//!
//! Unwinding: the fast, cached unwinder in `unwind.rs` serves almost every capture; libgcc's
//! `_Unwind_Backtrace` is the fallback for whatever it hands back (no free cache, a stack it
//! cannot bound, a module it could not register yet) and the whole path when
//! [`set_fast_unwind`]`(false)`. Both record the same addresses (return addresses), so a stack
//! interns to the same id whichever unwinder captured it.
#![allow(unsafe_code)] // the lock-free stack table's mapping, libgcc's unwinder, dl_iterate_phdr.

use super::record::NO_STACK;
use crate::platform::stack::OwnStack;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Deepest stack kept. The useful frames of a gRPC connect are within the first 30; 64 leaves
/// room for CPython's eval loop without making an entry large (8 bytes a frame).
pub const MAX_FRAMES: usize = 64;
/// Distinct stacks kept. A service has a handful of socket-creating call paths; 16384 leaves
/// room for interpreters whose stacks differ by call site. ≈ 8.4 MiB of address space, touched
/// only as stacks are added.
pub const MAX_STACKS: usize = 1 << 14;
/// Probes before giving up on an insert (the table is then effectively full).
const MAX_PROBES: usize = 128;

const TAG_READY: u64 = 1 << 63;
const TAG_WRITING: u64 = 1 << 62;
const HASH_MASK: u64 = !(TAG_READY | TAG_WRITING);

#[repr(C)]
struct Entry {
    tag: AtomicU64,
    len: AtomicU32,
    frames: [AtomicUsize; MAX_FRAMES],
}

/// What every capture reads, set at load time. Kept on cache lines of its own (128 bytes:
/// a line and the one the CPU prefetches with it): next to a counter that other threads write
/// on every socket, each read would miss whenever another core had just created one.
#[repr(align(128))]
struct Settings {
    table: AtomicPtr<Entry>,
    depth: AtomicUsize,
    own_lo: AtomicUsize,
    own_hi: AtomicUsize,
    fast_unwind: AtomicBool,
}

static SETTINGS: Settings = Settings {
    table: AtomicPtr::new(null_mut()),
    depth: AtomicUsize::new(32),
    own_lo: AtomicUsize::new(0),
    own_hi: AtomicUsize::new(0),
    fast_unwind: AtomicBool::new(true),
};
static STACKS_DROPPED: AtomicU64 = AtomicU64::new(0);
/// Captures skipped because every own stack was taken (see [`capture_stack`]).
static STACKS_SKIPPED: AtomicU64 = AtomicU64::new(0);

/// Sets the capture depth (config); 0 turns capture off.
pub fn set_depth(depth: usize) {
    SETTINGS
        .depth
        .store(depth.min(MAX_FRAMES), Ordering::Relaxed);
}

/// Tells capture where our own code lives, so our frames are cut off the top, and prepares
/// the fast unwinder (constructor time: registers the loaded modules, may allocate).
pub fn set_own_module(range: (usize, usize)) {
    SETTINGS.own_lo.store(range.0, Ordering::Relaxed);
    SETTINGS.own_hi.store(range.1, Ordering::Relaxed);
    if SETTINGS.fast_unwind.load(Ordering::Relaxed) {
        super::unwind::prepare();
    }
}

/// Chooses the unwinder: `true` (default) the cached fast one with libgcc as fallback,
/// `false` libgcc only.
pub fn set_fast_unwind(fast: bool) {
    SETTINGS.fast_unwind.store(fast, Ordering::Relaxed);
    if fast {
        super::unwind::prepare();
    }
}

/// The capture depth in force: a stack this long may have been cut short.
pub fn depth() -> usize {
    SETTINGS.depth.load(Ordering::Relaxed)
}

fn in_own_module(ip: usize) -> bool {
    SETTINGS.own_lo.load(Ordering::Relaxed) <= ip && ip < SETTINGS.own_hi.load(Ordering::Relaxed)
}

fn table() -> Option<&'static [Entry]> {
    let mut ptr = SETTINGS.table.load(Ordering::Acquire);
    let size = std::mem::size_of::<Entry>() * MAX_STACKS;
    if ptr.is_null() {
        // SAFETY: anonymous private mapping, no pointer arguments.
        let mem = unsafe {
            libc::mmap(
                null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if mem == libc::MAP_FAILED {
            return None;
        }
        match SETTINGS.table.compare_exchange(
            null_mut(),
            mem.cast(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => ptr = mem.cast(),
            Err(winner) => {
                // SAFETY: our own unshared mapping of `size` bytes.
                unsafe { libc::munmap(mem, size) };
                ptr = winner;
            }
        }
    }
    // SAFETY: `ptr` is a live, never-unmapped mapping of MAX_STACKS zero-initialised entries
    // (all-zero atomics are valid).
    Some(unsafe { std::slice::from_raw_parts(ptr, MAX_STACKS) })
}

fn hash(frames: &[usize]) -> u64 {
    // FNV-1a over the addresses; folded to leave the two tag bits free and never 0.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &ip in frames {
        h ^= ip as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h & HASH_MASK) | 1
}

fn same(entry: &Entry, frames: &[usize]) -> bool {
    entry.len.load(Ordering::Relaxed) as usize == frames.len()
        && entry
            .frames
            .iter()
            .zip(frames)
            .all(|(a, &b)| a.load(Ordering::Relaxed) == b)
}

/// Interns `frames` and returns the stack id ([`NO_STACK`] when the table is full).
pub fn intern(frames: &[usize]) -> u32 {
    let frames = &frames[..frames.len().min(MAX_FRAMES)];
    let Some(entries) = table() else {
        return NO_STACK;
    };
    let h = hash(frames);
    let start = (h as usize) % MAX_STACKS;
    let mut probe = 0;
    while probe < MAX_PROBES {
        let index = (start + probe) % MAX_STACKS;
        let entry = &entries[index];
        let tag = entry.tag.load(Ordering::Acquire);
        if tag == (h | TAG_READY) && same(entry, frames) {
            return index as u32;
        }
        if tag == 0 {
            if entry
                .tag
                .compare_exchange(0, h | TAG_WRITING, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                for (slot, &ip) in entry.frames.iter().zip(frames) {
                    slot.store(ip, Ordering::Relaxed);
                }
                entry.len.store(frames.len() as u32, Ordering::Relaxed);
                entry.tag.store(h | TAG_READY, Ordering::Release);
                return index as u32;
            }
            continue; // lost the race for this entry: look at it again
        }
        if tag == (h | TAG_WRITING) {
            // Someone is writing a stack with our hash; wait briefly, bounded.
            for _ in 0..1000 {
                if entry.tag.load(Ordering::Acquire) & TAG_READY != 0 {
                    break;
                }
                std::hint::spin_loop();
            }
            if entry.tag.load(Ordering::Acquire) == (h | TAG_READY) && same(entry, frames) {
                return index as u32;
            }
        }
        probe += 1;
    }
    STACKS_DROPPED.fetch_add(1, Ordering::Relaxed);
    NO_STACK
}

/// The frames of an interned stack.
pub fn frames(id: u32) -> Vec<usize> {
    let Some(entries) = table() else {
        return Vec::new();
    };
    let Some(entry) = entries.get(id as usize) else {
        return Vec::new();
    };
    if entry.tag.load(Ordering::Acquire) & TAG_READY == 0 {
        return Vec::new();
    }
    let len = (entry.len.load(Ordering::Relaxed) as usize).min(MAX_FRAMES);
    entry.frames[..len]
        .iter()
        .map(|f| f.load(Ordering::Relaxed))
        .collect()
}

/// Stacks that could not be interned because the table was full.
pub fn dropped() -> u64 {
    STACKS_DROPPED.load(Ordering::Relaxed)
}

/// Captures the calling stack (our own frames removed) and interns it.
///
/// The unwinding itself runs on a stack fdguard owns (platform::stack): the host thread's
/// stack may be small, and an unwinder's needs are not (see that module for the numbers).
/// Only this frame and the switch are on the host's stack. When every own stack is taken at
/// this instant, the socket is recorded without a stack (counted in the report's notes)
/// rather than unwound on a stack that might be too small.
#[inline(never)]
pub fn capture_stack() -> u32 {
    let depth = SETTINGS.depth.load(Ordering::Relaxed);
    if depth == 0 {
        return NO_STACK;
    }
    // Read here, in the host's stack frame: the walk starts from this frame.
    let regs = super::unwind::Regs::here();
    let Some(own_stack) = OwnStack::take() else {
        STACKS_SKIPPED.fetch_add(1, Ordering::Relaxed);
        return NO_STACK;
    };
    own_stack.run(|| capture_on_own_stack(regs, depth))
}

/// The body of [`capture_stack`], on fdguard's own stack. `regs` describe a host frame that
/// stays untouched until this returns (its thread is waiting in `capture_stack`).
#[inline(never)]
fn capture_on_own_stack(regs: super::unwind::Regs, depth: usize) -> u32 {
    let mut buf = [0usize; MAX_FRAMES];
    let out = &mut buf[..depth.min(MAX_FRAMES)];
    let fast = if SETTINGS.fast_unwind.load(Ordering::Relaxed) {
        super::unwind::capture_from(regs, out, in_own_module)
    } else {
        None
    };
    let n = match fast {
        Some(n) => n,
        // libgcc unwinds from here, through the switch back onto the host's stack (the switch
        // is an ordinary frame-pointer frame to it), skipping every frame of ours.
        None => capture_with_libgcc(out),
    };
    // The calling thread's Python frames, if the host is CPython (issue 16, python/mod.rs).
    let n = super::python::append(&mut buf, n, depth);
    if n == 0 {
        return NO_STACK;
    }
    intern(&buf[..n])
}

/// Sockets recorded without a stack because every own stack was taken at that instant.
pub fn skipped() -> u64 {
    STACKS_SKIPPED.load(Ordering::Relaxed)
}

/// The slow path: libgcc's `_Unwind_Backtrace` (through the `backtrace` crate).
#[inline(never)]
fn capture_with_libgcc(out: &mut [usize]) -> usize {
    let mut n = 0;
    // SAFETY: trace_unsynchronized requires that no other backtrace call runs concurrently in a
    // way that is unsafe for the platform unwinder; on Linux/x86_64 it is `_Unwind_Backtrace`,
    // which is thread-safe. The closure only writes into our local buffer.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            let ip = frame.ip() as usize;
            if ip == 0 {
                return false;
            }
            if n == 0 && in_own_module(ip) {
                return true; // still inside fdguard: skip
            }
            if n > 0 && super::unwind::is_known_startup(ip) {
                return false; // start-up code, cut as the fast unwinder cuts it
            }
            out[n] = ip;
            n += 1;
            n < out.len()
        });
    }
    n
}

/// The address range of the module that contains this function (libfdguard.so itself).
pub fn own_module_range() -> (usize, usize) {
    struct Search {
        needle: usize,
        found: (usize, usize),
    }
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info pointer and our `data` pointer.
        let (info, search) = unsafe { (&*info, &mut *data.cast::<Search>()) };
        let base = info.dlpi_addr as usize;
        let (mut lo, mut hi) = (usize::MAX, 0usize);
        for i in 0..info.dlpi_phnum as usize {
            // SAFETY: dlpi_phdr points to dlpi_phnum program headers.
            let ph = unsafe { &*info.dlpi_phdr.add(i) };
            if ph.p_type == libc::PT_LOAD {
                let start = base + ph.p_vaddr as usize;
                lo = lo.min(start);
                hi = hi.max(start + ph.p_memsz as usize);
            }
        }
        if lo <= search.needle && search.needle < hi {
            search.found = (lo, hi);
            return 1;
        }
        0
    }
    let mut search = Search {
        needle: own_module_range as *const () as usize,
        found: (0, 0),
    };
    // SAFETY: the callback matches dl_iterate_phdr's contract and `search` outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(each), (&mut search as *mut Search).cast()) };
    search.found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_stacks_intern_once_and_different_ones_do_not_collide() {
        let a = [0x1000usize, 0x2000, 0x3000];
        let b = [0x1000usize, 0x2000, 0x3001];
        let ia = intern(&a);
        assert_eq!(intern(&a), ia);
        let ib = intern(&b);
        assert_ne!(ia, ib);
        assert_eq!(frames(ia), a);
        assert_eq!(frames(ib), b);
    }

    #[test]
    fn capture_cuts_nothing_it_should_keep() {
        set_depth(16);
        let id = capture_stack();
        assert_ne!(id, NO_STACK);
        assert!(!frames(id).is_empty());
    }
}
