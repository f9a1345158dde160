//! The _exit(2), _Exit(3) and vfork(2) hooks: abrupt exits still get their exit report; a
//! vfork child, running on its parent's memory, records nothing.
#![allow(unsafe_code)] // exported libc symbols (`no_mangle`), one a naked function.

use crate::agent::exit;
use crate::platform::real;
use libc::c_int;

/// Interposed `_exit(2)`: abrupt exits (os._exit, a child after fork) still get their exit
/// report, then the real `_exit` runs with the (possibly FDGUARD_EXITCODE-replaced) status.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn _exit(status: c_int) -> ! {
    let status = exit::before_exit(status, true);
    real::exit_now(status, false)
}

/// Interposed `_Exit(3)`.
#[allow(non_snake_case)] // the C name
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn _Exit(status: c_int) -> ! {
    let status = exit::before_exit(status, true);
    real::exit_now(status, true)
}

/// Sets errno to `err` and returns -1 (the error tail of `vfork`).
extern "C" fn vfork_failed(err: c_int) -> libc::pid_t {
    crate::platform::errno::set_errno(err);
    -1
}

/// Interposed `vfork(2)` (x86-64).
///
/// A vfork child runs on its parent's memory — including our table — until it execs or exits,
/// and CPython's subprocess closes fds in that child. So the calling thread is marked "in
/// vfork" before the system call: the child, which shares that thread's TLS, sees the mark and
/// every hook passes straight through; the parent clears it when vfork returns.
///
/// Like glibc's own vfork, the return address is kept in a register across the system call,
/// because the child will reuse (and clobber) this stack frame before the parent resumes.
#[cfg(target_arch = "x86_64")]
#[cfg_attr(not(test), unsafe(no_mangle))]
#[unsafe(naked)]
pub extern "C" fn vfork() -> libc::pid_t {
    core::arch::naked_asm!(
        "sub rsp, 8",          // align the stack for the call below
        "call {enter}",        // mark this thread "in vfork"
        "add rsp, 8",
        "pop rdi",             // return address: keep it off the shared stack
        "mov eax, 58",         // SYS_vfork
        "syscall",
        "push rdi",
        "test rax, rax",
        "jz 2f",               // child: return 0 with the mark still set
        "push rax",            // parent or error: keep the result (stack now aligned)
        "call {leave}",        // clear the mark
        "pop rax",
        "cmp rax, -4095",
        "jae 3f",
        "2:",
        "ret",
        "3:",
        "neg eax",
        "mov edi, eax",
        "jmp {failed}",        // errno = -rax; return -1
        enter = sym crate::platform::guard::vfork_enter,
        leave = sym crate::platform::guard::vfork_leave,
        failed = sym vfork_failed,
    )
}
