//! The `fdguard` thread: the one thread fdguard owns. It writes reports on request (signal,
//! exit), runs the periodic work between requests (the TCP-state watcher, label reclaim), and
//! exists only while needed.
//!
//! Lifecycle, in one place:
//! - **Started** when the process holds a tracked socket of any origin — a hook published one
//!   (socket, socketpair, accept, recvmsg/recvmmsg receiving one with SCM_RIGHTS, or
//!   connect/listen/shutdown on a tracked socket), sockets were
//!   found open at load (inherited across exec: systemd socket activation, inetd), or sockets
//!   were inherited across fork (the fork child handler, see `fork`) — and at load when an
//!   exit report is wanted whatever happens (`FDGUARD_EXIT_REPORT=always`). Never from a
//!   signal handler's paths (close, dup, the report signal), never in a vfork child.
//! - **Stopped and joined** before a host's `unshare`/`setns` that the kernel refuses to a
//!   multi-threaded process ([`stop_for_namespace_change`]): joined, then waited for until the
//!   kernel has reaped it, so the host's call sees exactly the threads it would see without
//!   fdguard. It is started again by the next hook that needs it.
//! - **Created** with pthread_create (1 MiB stack), every signal blocked from its first
//!   instruction (heaptrack, bugs.kde.org 378494: hosts expect their own threads to receive
//!   signals), named `fdguard`.
//!
//! The main loop does one thing per turn, in priority order: stop when asked, write the exit
//! report when asked, answer report signals, then the periodic work in [`Ticks::tick`] — the
//! one place where what is due each tick is done: the report-request channel every
//! [`REQUEST_PERIOD`] (one `lstat`, see `control`), the watcher every `FDGUARD_WATCH_MS`,
//! label reclaim every second.
#![allow(unsafe_code)] // the thread is made with pthread_create (signals blocked from birth).

use super::bell::{FAILED, NONE, RUNNING, STARTING, STATE, STOPPING, WAKE};
use super::{control, exit, signal, watch};
use crate::annotate::labels;
use crate::config;
use crate::platform::guard::{self, Guard};
use crate::platform::process::SignalsBlocked;
use crate::platform::{futex, log, real};
use crate::report::Destination;
use fdguard_report::Trigger;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The thread's pthread_t while it exists (joined when stopped).
static HANDLE: AtomicUsize = AtomicUsize::new(0);
/// The thread's kernel tid, set by the thread itself.
static TID: AtomicI32 = AtomicI32::new(0);
/// Asks the thread to return (see [`stop_for_namespace_change`]).
static STOP: AtomicBool = AtomicBool::new(false);

/// The thread's stack: reports symbolise C++ names (recursive demangling) and serialise deep
/// JSON; address space only, the pages it touches are what it costs.
const STACK_BYTES: usize = 1 << 20;
/// Longest wait between ticks when the watcher is off (label reclaim still runs).
const TICK_MAX: Duration = Duration::from_secs(1);
/// How often the report-request channel is looked at, whatever `FDGUARD_WATCH_MS` says: the
/// longest an `fdguard report` waits before its report starts.
const REQUEST_PERIOD: Duration = Duration::from_millis(fdguard_report::request::POLL_MS);

use super::bell::wake;

/// The process holds a tracked socket (or wants an exit report whatever happens): makes sure
/// the thread runs. Only from paths that may allocate and create a thread (the creation side of
/// the hooks, load, the fork child handler): never from the close path or a signal handler's.
#[inline]
pub fn ensure_running(_guard: &Guard) {
    if STATE.load(Ordering::Relaxed) == NONE {
        start();
    }
}

fn start() {
    if STATE
        .compare_exchange(NONE, STARTING, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    match spawn() {
        Ok(handle) => {
            HANDLE.store(handle as usize, Ordering::Release);
            STATE.store(RUNNING, Ordering::Release);
            crate::report::write::reserve_fd();
        }
        Err(err) => {
            STATE.store(FAILED, Ordering::Release);
            log::line(&[
                "fdguard: cannot start the fdguard thread (",
                &std::io::Error::from_raw_os_error(err).to_string(),
                "); no report on signal or at exit (the C API still works)",
            ]);
        }
    }
}

type SetSigmaskFn = unsafe extern "C" fn(*mut libc::pthread_attr_t, *const libc::sigset_t) -> i32;

/// glibc ≥ 2.32's `pthread_attr_setsigmask_np`, looked up at run time so the library still
/// loads on an older C library (then the mask is blocked around pthread_create instead).
fn setsigmask_np() -> Option<SetSigmaskFn> {
    static ADDRESS: AtomicUsize = AtomicUsize::new(1);
    let mut address = ADDRESS.load(Ordering::Relaxed);
    if address == 1 {
        // SAFETY: dlsym with a NUL-terminated name; RTLD_DEFAULT searches the global scope.
        address = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"pthread_attr_setsigmask_np".as_ptr()) }
            as usize;
        ADDRESS.store(address, Ordering::Relaxed);
    }
    // SAFETY: a non-null result of dlsym for this symbol has this prototype.
    (address != 0).then(|| unsafe { std::mem::transmute::<usize, SetSigmaskFn>(address) })
}

fn spawn() -> Result<libc::pthread_t, i32> {
    // SAFETY: pthread_attr_t and sigset_t are plain data initialised by their init functions;
    // every pointer passed is to a local that outlives the call; `thread_start` has the
    // start-routine prototype and takes no argument.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        let rc = libc::pthread_attr_init(&mut attr);
        if rc != 0 {
            return Err(rc);
        }
        libc::pthread_attr_setstacksize(&mut attr, STACK_BYTES);
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        let in_attr = setsigmask_np().is_some_and(|f| f(&mut attr, &all) == 0);
        // Without that, the new thread inherits the creator's mask: block everything around
        // the call.
        let blocked = (!in_attr).then(SignalsBlocked::new);
        let mut handle: libc::pthread_t = 0;
        let rc = libc::pthread_create(&mut handle, &attr, thread_start, std::ptr::null_mut());
        drop(blocked);
        libc::pthread_attr_destroy(&mut attr);
        if rc == 0 { Ok(handle) } else { Err(rc) }
    }
}

extern "C" fn thread_start(_: *mut c_void) -> *mut c_void {
    // SAFETY: PR_SET_NAME reads a NUL-terminated name of at most 16 bytes.
    unsafe {
        libc::prctl(
            libc::PR_SET_NAME,
            c"fdguard".as_ptr() as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    TID.store(real::gettid(), Ordering::Release);
    Guard::enter_forever();
    guard::catch("internal error in the fdguard thread", main);
    if !STOP.load(Ordering::Acquire) {
        // Returning on its own (fdguard was disabled): nobody will join it.
        // SAFETY: detaching ourselves; the handle is not used again.
        unsafe { libc::pthread_detach(libc::pthread_self()) };
        STATE.store(NONE, Ordering::Release);
    }
    std::ptr::null_mut()
}

/// Stops the thread and waits until the kernel has reaped it, so the calling thread is the
/// process's only one again (if the host has no other threads). Returns whether it was
/// running. For `unshare`/`setns`, which the kernel refuses to a multi-threaded process.
pub fn stop_for_namespace_change() -> bool {
    // A start in progress on another thread finishes within a pthread_create.
    for _ in 0..10_000 {
        if STATE.load(Ordering::Acquire) != STARTING {
            break;
        }
        std::thread::yield_now();
    }
    if STATE
        .compare_exchange(RUNNING, STOPPING, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return false;
    }
    STOP.store(true, Ordering::Release);
    wake();
    let handle = HANDLE.swap(0, Ordering::AcqRel) as libc::pthread_t;
    // SAFETY: `handle` is the joinable thread we created; only the STOPPING owner joins it.
    unsafe { libc::pthread_join(handle, std::ptr::null_mut()) };
    // pthread_join returns when the thread cleared its tid, which the kernel does before it
    // leaves the thread group: wait until it is gone (tgkill then says ESRCH), at most 2 s.
    let tid = TID.swap(0, Ordering::AcqRel);
    let deadline = Instant::now() + Duration::from_secs(2);
    while tid != 0 && Instant::now() < deadline {
        // SAFETY: signal 0 only checks that the thread exists; nothing is delivered.
        let alive = unsafe {
            libc::syscall(libc::SYS_tgkill, real::getpid_raw(), tid, 0) == 0
                || crate::platform::errno::errno() != libc::ESRCH
        };
        if !alive {
            break;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    STOP.store(false, Ordering::Release);
    STATE.store(NONE, Ordering::Release);
    true
}

/// Fork child: the thread did not survive the fork (its handle means nothing here). Returns
/// whether it was running in the parent.
pub fn forget() -> bool {
    let was = STATE.swap(NONE, Ordering::AcqRel) == RUNNING;
    HANDLE.store(0, Ordering::Release);
    TID.store(0, Ordering::Release);
    STOP.store(false, Ordering::Release);
    was
}

fn main() {
    let mut ticks = Ticks::new();
    loop {
        let seen = WAKE.load(Ordering::Acquire);
        if STOP.load(Ordering::Acquire) || !guard::is_active() {
            return;
        }
        if exit::serve_request() {
            // The process is ending; stay (a second exit path finds the report written).
            continue;
        }
        if signal::take_pending() > 0 {
            guard::catch("internal error while writing a report", || {
                on_signal(&mut ticks.channel)
            });
            continue;
        }
        let timeout = ticks.tick();
        if !signal::pending() && !exit::requested() && !STOP.load(Ordering::Acquire) {
            futex::wait(&WAKE, seen, Some(timeout));
        }
    }
}

/// When each kind of periodic work is next due.
struct Ticks {
    last_watch: Instant,
    last_housekeeping: Instant,
    last_request: Instant,
    /// Where requests for this process are looked for.
    channel: control::Channel,
}

impl Ticks {
    fn new() -> Ticks {
        let now = Instant::now();
        Ticks {
            last_watch: now,
            last_housekeeping: now,
            // Due at once: a request may be waiting for the thread to start.
            last_request: now.checked_sub(REQUEST_PERIOD).unwrap_or(now),
            channel: control::Channel::new(),
        }
    }

    /// Does the periodic work that is due; returns how long until the next is.
    fn tick(&mut self) -> Duration {
        if self.last_request.elapsed() >= REQUEST_PERIOD {
            if self.channel.poll() {
                let channel = &mut self.channel;
                guard::catch("internal error while answering a report request", || {
                    answer_request(channel)
                });
            }
            self.last_request = Instant::now();
        }
        let watch_period = match config::get().watch_ms {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        };
        if let Some(period) = watch_period
            && self.last_watch.elapsed() >= period
        {
            guard::catch("internal error in the watcher", watch::sample);
            super::metrics::tick();
            self.last_watch = Instant::now();
        }
        if self.last_housekeeping.elapsed() >= TICK_MAX {
            guard::catch("internal error while reclaiming labels", labels::reclaim);
            self.last_housekeeping = Instant::now();
        }
        let until_housekeeping = TICK_MAX.saturating_sub(self.last_housekeeping.elapsed());
        let until_watch =
            watch_period.map_or(TICK_MAX, |p| p.saturating_sub(self.last_watch.elapsed()));
        let until_request = REQUEST_PERIOD.saturating_sub(self.last_request.elapsed());
        until_housekeeping
            .min(until_watch)
            .min(until_request)
            .max(Duration::from_millis(1))
    }
}

/// A request is in the channel: answer it where it says (no fallback to the host's stderr: the
/// asker is waiting for the file, not for the host's log).
fn answer_request(channel: &mut control::Channel) {
    // Reading the request needs a descriptor too (at the fd limit: the reserved one).
    let _room = crate::report::write::Room::open();
    if let Some(request) = channel.take() {
        super::report_now(
            Trigger::Request,
            Destination::Path(&request.path),
            request.format,
            false,
        );
    }
}

/// The report signal arrived: answer an `fdguard report --signal` request if one is waiting,
/// otherwise write to the configured place.
fn on_signal(channel: &mut control::Channel) {
    // Reading the request needs a descriptor too (at the fd limit: the reserved one).
    let _room = crate::report::write::Room::open();
    match channel.take() {
        Some(request) => {
            super::report_now(
                Trigger::Signal,
                Destination::Path(&request.path),
                request.format,
                false,
            );
        }
        None => {
            super::report_now(
                Trigger::Signal,
                Destination::Configured,
                config::get().format,
                true,
            );
        }
    }
}
