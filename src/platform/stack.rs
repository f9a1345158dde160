//! Stacks fdguard owns, and running a function on one of them.
//!
//! Why: the host's thread may have a small stack (POSIX allows `PTHREAD_STACK_MIN`, 16 KiB on
//! x86-64; event loops and embedded runtimes use little more), while unwinding the creating
//! stack is the deepest thing fdguard does on the host's path. Measured on this code (a thread
//! with a painted 1 MiB stack calling socket(), tests/stack_budget.rs): the cached DWARF
//! unwinder touches ≈ 16 KiB of stack in a release build and ≈ 43–57 KiB in a debug build
//! (framehop keeps gimli's unwind-table rows, 6 KiB each, on the stack), libgcc's
//! `_Unwind_Backtrace` ≈ 2.5–7 KiB, everything else fdguard does for a socket() ≈ 0.6 KiB
//! (release) / 2.9 KiB (debug). So the capture runs on one of these stacks instead: what the
//! host's stack pays is then the hook's own frames and the switch, whatever the unwinder
//! needs, and an unwinder that needs more never touches the host's memory.
//!
//! A stack is taken from a fixed pool with one compare-and-swap (no lock, no allocation after
//! its first use, async-signal-safe), starting at the slot of the CPU we run on. A capture
//! holds one for about a microsecond; a capture that finds every stack taken (more than
//! [`POOL`] captures at the same instant) records no stack, and the report counts it.
//! Each stack is mapped on first use, [`STACK_BYTES`] long, with a guard page below it: an
//! overflow would be a clean SIGSEGV, never a write into someone else's memory.
//!
//! The switch (`fdguard_on_stack`, x86-64) is an ordinary frame-pointer frame: it saves rbp,
//! points rbp at the host's stack, moves rsp to the new stack and calls the function; its CFI
//! says "CFA = rbp + 16", so any unwinder (libgcc's, a debugger's, a profiler's) walks from the
//! new stack back onto the host's as if nothing had happened. Other architectures run the
//! function in place.
#![allow(unsafe_code)] // maps stacks and switches onto them (assembly).

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Usable bytes per stack: four times the deepest capture measured in a debug build (≈ 57 KiB,
/// a connect() whose capture missed every cache), so a signal handler of the host that runs
/// while we are on it still has room. Address space only: a stack costs memory for the
/// pages a capture actually touched (≈ 16 KiB in a release build).
pub const STACK_BYTES: usize = 256 * 1024;
/// Stacks in the pool: more than the captures that can run at one instant on any machine this
/// has been measured on (8 busy threads on 2 cores hold at most 8), and only the ones used are
/// ever mapped.
pub const POOL: usize = 16;
const GUARD_BYTES: usize = 4096;

struct Slot {
    busy: AtomicBool,
    /// Lowest usable address of the mapped stack; 0 until first use.
    low: AtomicUsize,
}

static SLOTS: [Slot; POOL] = [const {
    Slot {
        busy: AtomicBool::new(false),
        low: AtomicUsize::new(0),
    }
}; POOL];

/// One stack of the pool, held until dropped.
pub struct OwnStack {
    index: usize,
    top: usize,
}

impl OwnStack {
    /// Takes a free stack, mapping it on its first use. `None`: every stack is taken, or a
    /// first mapping failed. Async-signal-safe (one mmap the first time a slot is used).
    pub fn take() -> Option<OwnStack> {
        // SAFETY: sched_getcpu has no preconditions; glibc reads it from the rseq area.
        let cpu = unsafe { libc::sched_getcpu() };
        let first = usize::try_from(cpu).unwrap_or(0) % POOL;
        for i in 0..POOL {
            let index = (first + i) % POOL;
            let slot = &SLOTS[index];
            if slot.busy.load(Ordering::Relaxed)
                || slot
                    .busy
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            let mut low = slot.low.load(Ordering::Relaxed);
            if low == 0 {
                match map_stack() {
                    Some(mapped) => {
                        low = mapped;
                        slot.low.store(low, Ordering::Relaxed);
                    }
                    None => {
                        slot.busy.store(false, Ordering::Release);
                        return None;
                    }
                }
            }
            return Some(OwnStack {
                index,
                top: low + STACK_BYTES,
            });
        }
        None
    }

    /// Runs `f` on this stack and returns its result. A panic inside `f` is caught on this
    /// stack and resumed on the caller's (it never unwinds through the switch).
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        run_on(self.top, f)
    }
}

impl Drop for OwnStack {
    fn drop(&mut self) {
        SLOTS[self.index].busy.store(false, Ordering::Release);
    }
}

/// Fork child: the threads that held stacks in the parent do not exist here.
pub fn after_fork_in_child() {
    for slot in &SLOTS {
        slot.busy.store(false, Ordering::Release);
    }
}

fn map_stack() -> Option<usize> {
    let len = STACK_BYTES + GUARD_BYTES;
    // SAFETY: anonymous private mapping, no pointer arguments.
    let mem = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if mem == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: the first page of our own fresh mapping becomes the guard page.
    if unsafe { libc::mprotect(mem, GUARD_BYTES, libc::PROT_NONE) } != 0 {
        // SAFETY: our own mapping of `len` bytes, used by nobody.
        unsafe { libc::munmap(mem, len) };
        return None;
    }
    Some(mem as usize + GUARD_BYTES)
}

struct Job<F, R> {
    f: Option<F>,
    out: Option<std::thread::Result<R>>,
}

extern "C" fn call_job<F: FnOnce() -> R, R>(arg: *mut c_void) {
    // SAFETY: `arg` is the `Job` that `run_on` passed, alive and exclusively ours for the call.
    let job = unsafe { &mut *arg.cast::<Job<F, R>>() };
    if let Some(f) = job.f.take() {
        job.out = Some(catch_unwind(AssertUnwindSafe(f)));
    }
}

#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(
    ".pushsection .text.fdguard_on_stack,\"ax\",@progbits",
    ".p2align 4",
    ".globl fdguard_on_stack",
    ".hidden fdguard_on_stack",
    ".type fdguard_on_stack,@function",
    "fdguard_on_stack:",
    ".cfi_startproc",
    "push rbp",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset rbp, -16",
    "mov rbp, rsp",
    ".cfi_def_cfa_register rbp",
    "mov rsp, rdx",
    "call rsi",
    "mov rsp, rbp",
    ".cfi_def_cfa_register rsp",
    "pop rbp",
    ".cfi_def_cfa_offset 8",
    "ret",
    ".cfi_endproc",
    ".size fdguard_on_stack, .-fdguard_on_stack",
    ".popsection",
);

#[cfg(target_arch = "x86_64")]
unsafe extern "C" {
    /// Calls `f(arg)` with the stack pointer at `top` (16-byte aligned, the high end of a
    /// stack), then returns on the caller's stack.
    fn fdguard_on_stack(arg: *mut c_void, f: extern "C" fn(*mut c_void), top: usize);
}

#[cfg(target_arch = "x86_64")]
fn run_on<R, F: FnOnce() -> R>(top: usize, f: F) -> R {
    let mut job = Job {
        f: Some(f),
        out: None,
    };
    let call: extern "C" fn(*mut c_void) = call_job::<F, R>;
    // SAFETY: `top` is the 16-byte aligned end of a mapped stack of STACK_BYTES that this
    // thread holds exclusively (OwnStack); `call` is `call_job` for this job's types and only
    // touches `job`, which outlives the call. The switch restores rsp and rbp before
    // returning, and `call_job` never unwinds (it catches panics).
    unsafe { fdguard_on_stack((&mut job as *mut Job<F, R>).cast(), call, top & !15) };
    match job.out {
        Some(Ok(value)) => value,
        Some(Err(panic)) => resume_unwind(panic),
        None => unreachable!("the job always runs"),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn run_on<R>(_top: usize, f: impl FnOnce() -> R) -> R {
    f()
}

/// The address of the caller's stack pointer, roughly (a local's address).
#[cfg(test)]
#[inline(never)]
fn stack_pointer() -> usize {
    let local = 0u8;
    std::hint::black_box(&local) as *const u8 as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_on_its_own_stack_and_returns_the_value() {
        let here = stack_pointer();
        let stack = OwnStack::take().expect("a stack");
        let (low, top) = (stack.top - STACK_BYTES, stack.top);
        let there = stack.run(stack_pointer);
        assert!(
            low <= there && there < top,
            "{there:#x} in [{low:#x}, {top:#x})"
        );
        assert!(!(low <= here && here < top));
        assert_eq!(stack.run(|| 6 * 7), 42);
    }

    #[test]
    fn a_panic_comes_back_to_the_caller() {
        let stack = OwnStack::take().expect("a stack");
        let caught = catch_unwind(AssertUnwindSafe(|| stack.run(|| panic!("inside"))));
        assert!(caught.is_err());
        assert_eq!(stack.run(|| 1), 1, "the stack is still usable");
    }

    #[test]
    fn libgcc_unwinds_from_our_stack_back_onto_the_callers() {
        #[inline(never)]
        fn marker() -> Vec<usize> {
            let stack = OwnStack::take().expect("a stack");
            let mut ips = Vec::new();
            stack.run(|| {
                backtrace::trace(|f| {
                    ips.push(f.ip() as usize);
                    ips.len() < 64
                })
            });
            std::hint::black_box(ips)
        }
        let ips = marker();
        // The walk got past the switch: some frame is in this test function's caller chain,
        // i.e. in the test harness (std's thread start), far beyond our few frames.
        assert!(ips.len() > 8, "{ips:x?}");
        let names: Vec<String> = ips
            .iter()
            .flat_map(|&ip| {
                let mut names = Vec::new();
                backtrace::resolve(ip as *mut c_void, |s| {
                    if let Some(n) = s.name() {
                        names.push(n.to_string());
                    }
                });
                names
            })
            .collect();
        assert!(
            names
                .iter()
                .any(|n| n.contains("libgcc_unwinds_from_our_stack")),
            "{names:#?}"
        );
    }

    #[test]
    fn the_pool_ends_and_release_gives_stacks_back() {
        let held: Vec<OwnStack> = std::iter::from_fn(OwnStack::take).take(POOL).collect();
        // Other tests may hold some meanwhile; what matters is that the pool ends.
        assert!(!held.is_empty() && held.len() <= POOL);
        drop(held);
        assert!(OwnStack::take().is_some());
    }
}
