//! Who may touch fdguard's state right now: the global on/off state, the per-thread reentrancy
//! guard, the vfork-child marker, and the panic boundary around our bookkeeping.
//!
//! The guard is a value you must hold: functions that touch shared state take `&Guard`, so
//! forgetting to enter it does not compile (heaptrack's `RecursionGuard` token). A thread that
//! already holds it (our allocator or symboliser calling back into a hook, our reporter thread)
//! gets `None` and the hook passes straight through to libc.
//!
//! WARNING: the thread-locals here are `const`-initialised and have no destructor, so touching
//! them never allocates or registers anything (redhook#15) — keep it that way.

use std::cell::Cell;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU8, Ordering};

/// Hooks pass through: the constructor has not run yet.
const STATE_LOADING: u8 = 0;
/// Hooks track.
const STATE_ACTIVE: u8 = 1;
/// Hooks pass through for good: disabled by config, or after an internal fault.
const STATE_DISABLED: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(STATE_LOADING);

thread_local! {
    /// This thread is inside fdguard (a hook's bookkeeping, the reporter, the symboliser).
    static INSIDE: Cell<bool> = const { Cell::new(false) };
    /// This thread called vfork() and has not returned in the parent yet. A vfork child runs
    /// on its parent thread's memory and TLS, so it sees `true` and touches nothing.
    static IN_VFORK: Cell<bool> = const { Cell::new(false) };
}

/// Proof that the current thread is inside fdguard's bookkeeping. Not `Send`.
pub struct Guard {
    _not_send: PhantomData<*const ()>,
}

impl Guard {
    /// Enters the guard, or returns `None` when the hook must pass straight through: fdguard
    /// is not active, this thread is already inside fdguard, or this is a vfork child.
    #[inline]
    pub fn enter() -> Option<Guard> {
        if STATE.load(Ordering::Relaxed) != STATE_ACTIVE {
            return None;
        }
        Guard::enter_even_if_inactive()
    }

    /// Like [`Guard::enter`] but also while loading (the constructor itself uses this).
    #[inline]
    pub fn enter_even_if_inactive() -> Option<Guard> {
        if IN_VFORK.with(Cell::get) {
            return None;
        }
        INSIDE.with(|inside| {
            if inside.get() {
                None
            } else {
                inside.set(true);
                Some(Guard {
                    _not_send: PhantomData,
                })
            }
        })
    }

    /// Enters the guard for the rest of this thread's life (the reporter thread).
    pub fn enter_forever() {
        INSIDE.with(|inside| inside.set(true));
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        INSIDE.with(|inside| inside.set(false));
    }
}

/// Marks fdguard active (end of the constructor).
pub fn activate() {
    let _ = STATE.compare_exchange(
        STATE_LOADING,
        STATE_ACTIVE,
        Ordering::AcqRel,
        Ordering::Relaxed,
    );
}

/// True when hooks track.
#[inline]
pub fn is_active() -> bool {
    STATE.load(Ordering::Relaxed) == STATE_ACTIVE
}

/// Turns fdguard off for good; every hook passes through from now on. `why` is printed once.
pub fn disable(why: &str) {
    if STATE.swap(STATE_DISABLED, Ordering::AcqRel) != STATE_DISABLED {
        let place = LAST_PANIC.get().map(String::as_str).unwrap_or("");
        crate::platform::log::line(&[
            "fdguard: ",
            why,
            place,
            "; fdguard is now disabled and the program continues untracked",
        ]);
    }
}

/// Where the last panic inside fdguard happened (set by our panic hook).
static LAST_PANIC: once_cell::sync::OnceCell<String> = once_cell::sync::OnceCell::new();

/// Installs a quiet panic hook. This cdylib carries its own copy of std, so the hook only
/// sees panics in fdguard's code, never the host's (even a Rust host keeps its own hook). The
/// panic is reported inside the single "disabled" line instead of a multi-line backtrace.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let _ = LAST_PANIC.set(place);
    }));
}

/// Turns fdguard off quietly (FDGUARD_DISABLE=1).
pub fn disable_quietly() {
    STATE.store(STATE_DISABLED, Ordering::Release);
}

/// Runs `f` (our bookkeeping, never the host's call) inside the guard and the panic boundary.
/// Returns `None` when the guard could not be entered or `f` panicked (fdguard then disables
/// itself). The host's real call must happen OUTSIDE this, exactly once.
#[inline]
pub fn bookkeeping<R>(f: impl FnOnce(&Guard) -> R) -> Option<R> {
    let guard = Guard::enter()?;
    match catch_unwind(AssertUnwindSafe(|| f(&guard))) {
        Ok(r) => Some(r),
        Err(_) => {
            drop(guard);
            disable("internal error (a panic inside fdguard)");
            None
        }
    }
}

/// Like [`bookkeeping`] but for code that already holds the guard (reporter, C API).
pub fn catch<R>(what: &str, f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(_) => {
            disable(what);
            None
        }
    }
}

/// Like [`catch`], for the close path: no allocation unless a panic actually happens.
#[inline]
pub fn catch_quietly<R>(f: impl FnOnce() -> R) -> Option<R> {
    catch("internal error on the close path", f)
}

/// Sets the vfork marker for this thread. Called by the vfork hook right before the system
/// call; plain `extern "C"` so the assembly can call it.
pub extern "C" fn vfork_enter() {
    IN_VFORK.with(|v| v.set(true));
}

/// Clears the vfork marker. Called by the vfork hook in the parent once vfork returned.
pub extern "C" fn vfork_leave() {
    IN_VFORK.with(|v| v.set(false));
}

/// True in a vfork child (it shares its parent thread's memory and TLS).
#[inline]
pub fn in_vfork_child() -> bool {
    IN_VFORK.with(Cell::get)
}
