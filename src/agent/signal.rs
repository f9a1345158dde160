//! The report signal (`FDGUARD_SIGNAL`, SIGUSR1 by default). The handler only bumps an atomic
//! and wakes the `fdguard` thread (no fd needed, nothing allocated), then calls the handler
//! that was installed before ours.
#![allow(unsafe_code)] // sigaction, and calling the handler installed before ours.

use super::bell;
use crate::platform::errno::{errno, set_errno};
use crate::platform::log;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};

/// Report signals received and not served yet.
static PENDING: AtomicU32 = AtomicU32::new(0);
static OUR_SIGNAL: AtomicI32 = AtomicI32::new(0);
static PREV_HANDLER: AtomicUsize = AtomicUsize::new(libc::SIG_DFL);
static PREV_FLAGS: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_report_signal(
    sig: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    let saved = errno();
    PENDING.fetch_add(1, Ordering::AcqRel);
    bell::wake();
    let prev = PREV_HANDLER.load(Ordering::Acquire);
    if prev != libc::SIG_DFL && prev != libc::SIG_IGN {
        if PREV_FLAGS.load(Ordering::Relaxed) & libc::SA_SIGINFO != 0 {
            // SAFETY: the previous handler was installed with SA_SIGINFO, so it has this type.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(prev) };
            f(sig, info, context);
        } else {
            // SAFETY: a plain (non-SA_SIGINFO) handler has this type.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(prev) };
            f(sig);
        }
    }
    set_errno(saved);
}

/// Installs the report signal handler, keeping the previous one to chain to (constructor).
/// A signal fdguard refuses ([`fdguard_report::signal::refusal`]: the C library's own, SIGCHLD)
/// gets no handler and one stderr line.
pub fn install(signal: i32) {
    if let Some(why) = fdguard_report::signal::refusal(signal) {
        log::line(&[
            "fdguard: FDGUARD_SIGNAL: signal ",
            &signal.to_string(),
            " is refused (",
            why,
            "); no report on signal, the C API and the exit report still work",
        ]);
        return;
    }
    // SAFETY: zeroed sigaction is a valid starting value; we fill handler, mask and flags.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_report_signal as *const () as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
    // SAFETY: `action.sa_mask` is a valid sigset.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: zeroed sigaction is a valid out-buffer.
    let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to sigaction structs.
    if unsafe { libc::sigaction(signal, &action, &mut previous) } == 0 {
        PREV_HANDLER.store(previous.sa_sigaction, Ordering::Release);
        PREV_FLAGS.store(previous.sa_flags, Ordering::Release);
        OUR_SIGNAL.store(signal, Ordering::Release);
    } else {
        // e.g. 32 and 33, which glibc keeps for itself (sigaction says EINVAL).
        let why = std::io::Error::last_os_error().to_string();
        log::line(&[
            "fdguard: FDGUARD_SIGNAL: cannot handle signal ",
            &signal.to_string(),
            " (",
            &why,
            "); no report on signal, the C API and the exit report still work",
        ]);
    }
}

/// The note about a replaced handler was written (once per process).
static TOLD_REPLACED: AtomicBool = AtomicBool::new(false);

/// One note, for the first report after the host replaced fdguard's handler for the report
/// signal (nginx, Node and many daemons install their own SIGUSR1 handler after fdguard
/// loaded): the signal no longer reaches fdguard. Checked with `sigaction` at report time.
pub fn replaced_note() -> Option<String> {
    let signal = OUR_SIGNAL.load(Ordering::Acquire);
    if signal == 0 || TOLD_REPLACED.load(Ordering::Relaxed) {
        return None;
    }
    // SAFETY: zeroed sigaction is a valid out-buffer; a NULL new action only reads.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer, NULL act.
    if unsafe { libc::sigaction(signal, std::ptr::null(), &mut current) } != 0
        || current.sa_sigaction == on_report_signal as *const () as usize
        || TOLD_REPLACED.swap(true, Ordering::Relaxed)
    {
        return None;
    }
    let name = fdguard_report::signal::signal_name(signal);
    let now = match current.sa_sigaction {
        libc::SIG_DFL => "reset it to the default action".to_string(),
        libc::SIG_IGN => "ignores it".to_string(),
        _ => "installed its own handler for it".to_string(),
    };
    Some(format!(
        "the report signal {name} no longer reaches fdguard: the program {now} after fdguard \
         loaded; `fdguard report PID` asks through the request channel, which needs no signal"
    ))
}

/// Takes the count of report signals received since the last call (0: none).
pub fn take_pending() -> u32 {
    PENDING.swap(0, Ordering::AcqRel)
}

/// True while a report signal waits to be served.
pub fn pending() -> bool {
    PENDING.load(Ordering::Acquire) > 0
}

/// Fork child: signals received by the parent are the parent's to serve.
pub fn forget_pending() {
    PENDING.store(0, Ordering::Release);
}
