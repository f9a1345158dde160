//! The C API: the `fdguard_*` functions declared in `include/fdguard.h`, for programs that want
//! to checkpoint, count, label or report their sockets. The header is generated from this file
//! alone by cbindgen (`FDGUARD_BLESS=1 cargo test --test header`), so every doc comment here is
//! the C documentation: write it for C programmers.
//!
//! Every exported function follows the same rules (house style H6, H14; rustls-ffi's
//! conventions):
//! - its body runs inside [`ffi_boundary!`]: a panic never unwinds into C, it becomes
//!   `FDGUARD_RESULT_PANIC` (and fdguard disables itself, as after any internal fault);
//! - it holds the reentrancy guard while it works, so anything it does itself (the file a report
//!   is written to) passes straight through the hooks;
//! - pointers are NULL-checked, C strings are read with a bound, output parameters are written
//!   only on success;
//! - checks run in one order: arguments, then fdguard's state (`NOT_ACTIVE`, `REENTRANT`), then
//!   the work.
//!
//! WARNING: result codes and format values are ABI. Never renumber or reuse one; retire a code by
//! leaving a "Reserved from previous use" comment in its place. `tests/header.rs` pins them.
#![allow(unsafe_code)] // the exported C API: `no_mangle`, and pointers from C callers.

use crate::agent::report_now;
use crate::annotate::{checkpoints, labels};
use crate::config::Format;
use crate::platform::guard::{self, Guard};
use crate::platform::{kernel, real};
use crate::report::{Destination, snapshot};
use crate::track::table;
use fdguard_report::Trigger;
use libc::{c_char, c_int};
use std::ffi::CStr;
use std::path::Path;

/// The result of every fdguard function that can fail.
///
/// `FDGUARD_RESULT_OK` is 7000, not 0: compare with `FDGUARD_RESULT_OK`, never with 0 (a
/// zero-initialised variable is then never mistaken for success, and no code can be confused
/// with an errno value). Codes never change meaning; new ones are only ever added.
/// `fdguard_result_str()` gives a one-line message for each.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum fdguard_result {
    /// Success.
    Ok = 7000,
    /// A required pointer argument was NULL.
    NullArgument = 7001,
    /// The fd is negative, or (fdguard_report_to_fd) not open for writing.
    BadFd = 7002,
    /// The fd is not a socket that fdguard tracks: never seen, already closed, untracked with
    /// fdguard_untrack(), or no longer a socket.
    NotTracked = 7003,
    /// No checkpoint has this id.
    UnknownCheckpoint = 7004,
    /// The format is not one of the `FDGUARD_FORMAT_*` values.
    BadFormat = 7005,
    /// The label is not valid UTF-8 or contains a control character.
    BadLabel = 7006,
    /// The label is longer than `FDGUARD_LABEL_MAX` bytes.
    LabelTooLong = 7007,
    /// The path is empty, longer than `FDGUARD_PATH_MAX` bytes, not valid UTF-8, or does not end
    /// in a file name (ends in `/`, `.` or `..`).
    BadPath = 7008,
    /// Something other than a regular file exists at the path (a symbolic link, a directory, a
    /// device, ...). Nothing was written, and no link was followed.
    PathNotAFile = 7009,
    /// The directory the path names does not exist (or is not a directory).
    NoSuchDirectory = 7010,
    /// The directory of the path is not writable by this process.
    PermissionDenied = 7011,
    /// The report could not be written (file creation, write or rename failed; full disk; the
    /// fd refused the data). A destination that was only partly written may remain for an fd;
    /// a path is never left half-written.
    WriteFailed = 7012,
    /// The output buffer is too small for the result; nothing was written.
    BufferTooSmall = 7013,
    /// fdguard is loaded but not tracking: disabled with `FDGUARD_DISABLE=1`, switched off after
    /// an internal error, or not initialised yet. Nothing was done.
    NotActive = 7014,
    /// Called where fdguard cannot run: on a thread that is already inside fdguard (a signal
    /// handler that interrupted fdguard) or in a vfork() child. Nothing was done.
    Reentrant = 7015,
    /// Internal error in fdguard (a Rust panic, caught). fdguard has disabled itself; the
    /// program continues untracked and further calls return `FDGUARD_RESULT_NOT_ACTIVE`.
    Panic = 7016,
}

impl fdguard_result {
    /// Every code, in numeric order.
    const ALL: [fdguard_result; 17] = [
        fdguard_result::Ok,
        fdguard_result::NullArgument,
        fdguard_result::BadFd,
        fdguard_result::NotTracked,
        fdguard_result::UnknownCheckpoint,
        fdguard_result::BadFormat,
        fdguard_result::BadLabel,
        fdguard_result::LabelTooLong,
        fdguard_result::BadPath,
        fdguard_result::PathNotAFile,
        fdguard_result::NoSuchDirectory,
        fdguard_result::PermissionDenied,
        fdguard_result::WriteFailed,
        fdguard_result::BufferTooSmall,
        fdguard_result::NotActive,
        fdguard_result::Reentrant,
        fdguard_result::Panic,
    ];

    fn from_u32(value: u32) -> Option<fdguard_result> {
        fdguard_result::ALL
            .iter()
            .copied()
            .find(|&r| r as u32 == value)
    }

    fn message(self) -> &'static CStr {
        match self {
            fdguard_result::Ok => c"success",
            fdguard_result::NullArgument => c"a required pointer argument was NULL",
            fdguard_result::BadFd => c"the fd is negative or not open for writing",
            fdguard_result::NotTracked => c"the fd is not a socket tracked by fdguard",
            fdguard_result::UnknownCheckpoint => c"no checkpoint has this id",
            fdguard_result::BadFormat => c"the format is not a FDGUARD_FORMAT_* value",
            fdguard_result::BadLabel => {
                c"the label is not valid UTF-8 or contains a control character"
            }
            fdguard_result::LabelTooLong => c"the label is longer than FDGUARD_LABEL_MAX bytes",
            fdguard_result::BadPath => {
                c"the path is empty, too long, not UTF-8 or does not end in a file name"
            }
            fdguard_result::PathNotAFile => {
                c"something other than a regular file (e.g. a symbolic link) exists at the path"
            }
            fdguard_result::NoSuchDirectory => c"the directory of the path does not exist",
            fdguard_result::PermissionDenied => c"the directory of the path is not writable",
            fdguard_result::WriteFailed => c"the report could not be written",
            fdguard_result::BufferTooSmall => c"the output buffer is too small",
            fdguard_result::NotActive => c"fdguard is not active (disabled or not initialised)",
            fdguard_result::Reentrant => {
                c"called from inside fdguard (signal handler) or from a vfork child"
            }
            fdguard_result::Panic => c"internal error in fdguard; fdguard is now disabled",
        }
    }
}

/// Report formats, for the `format` argument of the `fdguard_report*()` functions (passed as a
/// `uint32_t`: any other value gives `FDGUARD_RESULT_BAD_FORMAT`).
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum fdguard_format {
    /// The format chosen with the `FDGUARD_FORMAT` environment variable (text if unset).
    Configured = 0,
    /// Human-readable text, grouped by creating stack.
    Text = 1,
    /// JSON, as read by the `fdguard` command-line tool (schema in its documentation).
    Json = 2,
}

fn parse_format(value: u32) -> Option<Format> {
    match value {
        v if v == fdguard_format::Configured as u32 => Some(crate::config::get().format),
        v if v == fdguard_format::Text as u32 => Some(Format::Text),
        v if v == fdguard_format::Json as u32 => Some(Format::Json),
        _ => None,
    }
}

/// Longest label accepted by `fdguard_label()`, in bytes, not counting the terminating NUL.
pub const FDGUARD_LABEL_MAX: usize = 256;

/// Longest path accepted by `fdguard_report_to_path()`, in bytes, not counting the terminating
/// NUL (Linux's `PATH_MAX` minus one).
pub const FDGUARD_PATH_MAX: usize = 4095;

/// What an exported function returns when its body panicked (rustls-ffi's `PanicOrDefault`).
trait PanicFallback {
    fn on_panic() -> Self;
}

impl PanicFallback for fdguard_result {
    fn on_panic() -> Self {
        fdguard_result::Panic
    }
}

impl PanicFallback for *const c_char {
    /// The string functions promise never to return NULL.
    fn on_panic() -> Self {
        c"fdguard: internal error".as_ptr()
    }
}

/// The panic boundary of every exported function: runs the body in `catch_unwind` and turns a
/// panic into the fallback for the function's return type. `return` inside the body returns
/// from the body, i.e. from the exported function.
macro_rules! ffi_boundary {
    ($($body:tt)*) => {
        match guard::catch("internal error in the C API", || { $($body)* }) {
            Some(value) => value,
            None => PanicFallback::on_panic(),
        }
    };
}

/// Early return with a result code: `try_rc!(expr)` on a `Result<T, fdguard_result>`.
macro_rules! try_rc {
    ($e:expr) => {
        match $e {
            Ok(value) => value,
            Err(code) => return code,
        }
    };
}

/// Enters the guard for an API call, or says why fdguard cannot serve it now.
fn enter() -> Result<Guard, fdguard_result> {
    if !guard::is_active() {
        return Err(fdguard_result::NotActive);
    }
    Guard::enter_even_if_inactive().ok_or(fdguard_result::Reentrant)
}

/// Reads the NUL-terminated string at `ptr` if it is at most `max` bytes long (without its NUL).
/// Never reads past the NUL, nor more than `max + 1` bytes: an unterminated buffer is safe.
///
/// # Safety
/// `ptr` is non-NULL and points to readable bytes up to its NUL or `max + 1` bytes, whichever
/// comes first.
unsafe fn bounded_c_str<'a>(ptr: *const c_char, max: usize) -> Option<&'a [u8]> {
    for len in 0..=max {
        // SAFETY: `len <= max` and every byte before it was non-NUL, so by the caller's promise
        // `ptr + len` is readable.
        if unsafe { *ptr.add(len) } == 0 {
            // SAFETY: the `len` bytes before the NUL were just read, so they are readable.
            return Some(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) });
        }
    }
    None
}

/// Checks an fd argument for a tracked socket.
fn tracked(fd: c_int) -> Result<(), fdguard_result> {
    match table::get(fd) {
        Some(record) if !record.ignored && kernel::is_socket(fd) => Ok(()),
        _ => Err(fdguard_result::NotTracked),
    }
}

/// Decides whether a report may be written at `path` (already a `&str` within bounds).
fn check_report_path(path: &str) -> Result<(), fdguard_result> {
    let p = Path::new(path);
    let last = path.rsplit('/').next().unwrap_or("");
    if last.is_empty() || last == "." || last == ".." {
        return Err(fdguard_result::BadPath);
    }
    let os_error = |e: &std::io::Error| match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => fdguard_result::NoSuchDirectory,
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => {
            fdguard_result::PermissionDenied
        }
        Some(libc::ENAMETOOLONG) | Some(libc::ELOOP) => fdguard_result::BadPath,
        _ => fdguard_result::WriteFailed,
    };
    // lstat: never follows a link at the final name. Only "does not exist" lets us go on.
    match std::fs::symlink_metadata(p) {
        Ok(meta) if meta.file_type().is_file() => {}
        Ok(_) => return Err(fdguard_result::PathNotAFile),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(os_error(&e)),
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(fdguard_result::NoSuchDirectory),
        Err(e) => return Err(os_error(&e)),
    }
    let c_dir = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| fdguard_result::BadPath)?;
    // SAFETY: `c_dir` is a valid C string; faccessat takes no other pointer.
    let rc = unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            c_dir.as_ptr(),
            libc::W_OK | libc::X_OK,
            libc::AT_EACCESS,
        )
    };
    if rc != 0 {
        return Err(os_error(&std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Returns fdguard's version as a static NUL-terminated string, e.g. `"0.1.0"`: the version of
/// the library actually loaded, which may differ from the `FDGUARD_VERSION` of the header a
/// program was compiled with. Never NULL; do not free it. Works even when fdguard is disabled.
#[unsafe(no_mangle)]
pub extern "C" fn fdguard_version() -> *const c_char {
    ffi_boundary! {
        const VERSION: &CStr = match CStr::from_bytes_with_nul(
            concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
        ) {
            Ok(v) => v,
            Err(_) => panic!("the crate version contains a NUL byte"),
        };
        VERSION.as_ptr()
    }
}

/// Returns a static, NUL-terminated, one-line English message for `result` (a `fdguard_result`
/// value), or `"unknown fdguard result code"` for any other number. Never NULL; do not free it.
/// Works even when fdguard is disabled.
#[unsafe(no_mangle)]
pub extern "C" fn fdguard_result_str(result: u32) -> *const c_char {
    ffi_boundary! {
        match fdguard_result::from_u32(result) {
            Some(code) => code.message().as_ptr(),
            None => c"unknown fdguard result code".as_ptr(),
        }
    }
}

/// Writes a report now, to the place chosen with the `FDGUARD_REPORT` environment variable
/// (stderr if unset), in `format` (a `fdguard_format` value; `FDGUARD_FORMAT_CONFIGURED` uses
/// `FDGUARD_FORMAT`). Blocks the calling thread while the report is built (stacks are
/// symbolised then), and waits if another report is being written.
///
/// Returns `FDGUARD_RESULT_OK`; `FDGUARD_RESULT_BAD_FORMAT`; `FDGUARD_RESULT_WRITE_FAILED` when
/// the configured file could not be written (the report then went to stderr, as for a report on
/// signal); `FDGUARD_RESULT_NOT_ACTIVE`; `FDGUARD_RESULT_REENTRANT`.
#[unsafe(no_mangle)]
pub extern "C" fn fdguard_report(format: u32) -> fdguard_result {
    ffi_boundary! {
        let Some(format) = parse_format(format) else {
            return fdguard_result::BadFormat;
        };
        let _guard = try_rc!(enter());
        match report_now(Trigger::Api, Destination::Configured, format, true).result {
            Ok(()) => fdguard_result::Ok,
            Err(_) => fdguard_result::WriteFailed,
        }
    }
}

/// Writes a report now to the file `path`, in `format` (a `fdguard_format` value).
///
/// The file is created with mode 0600 next to `path` under a temporary name and renamed over
/// `path` once complete, so readers never see half a report and an existing regular file is
/// replaced. If anything other than a regular file exists at `path` (in particular a symbolic
/// link) nothing is written and `FDGUARD_RESULT_PATH_NOT_A_FILE` is returned: fdguard never
/// writes through a link. `path` must be valid UTF-8, at most `FDGUARD_PATH_MAX` bytes; it is
/// used as given (no `%p` expansion). A failure is only returned, never redirected to stderr.
///
/// Returns `FDGUARD_RESULT_OK`; `FDGUARD_RESULT_NULL_ARGUMENT`; `FDGUARD_RESULT_BAD_PATH`;
/// `FDGUARD_RESULT_BAD_FORMAT`; `FDGUARD_RESULT_PATH_NOT_A_FILE`;
/// `FDGUARD_RESULT_NO_SUCH_DIRECTORY`; `FDGUARD_RESULT_PERMISSION_DENIED`;
/// `FDGUARD_RESULT_WRITE_FAILED`; `FDGUARD_RESULT_NOT_ACTIVE`; `FDGUARD_RESULT_REENTRANT`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fdguard_report_to_path(
    path: *const c_char,
    format: u32,
) -> fdguard_result {
    ffi_boundary! {
        if path.is_null() {
            return fdguard_result::NullArgument;
        }
        // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
        let Some(bytes) = (unsafe { bounded_c_str(path, FDGUARD_PATH_MAX) }) else {
            return fdguard_result::BadPath;
        };
        let Ok(path) = std::str::from_utf8(bytes) else {
            return fdguard_result::BadPath;
        };
        if path.is_empty() {
            return fdguard_result::BadPath;
        }
        let Some(format) = parse_format(format) else {
            return fdguard_result::BadFormat;
        };
        let _guard = try_rc!(enter());
        try_rc!(check_report_path(path));
        match report_now(Trigger::Api, Destination::Path(path), format, false).result {
            Ok(()) => fdguard_result::Ok,
            Err(_) => fdguard_result::WriteFailed,
        }
    }
}

/// Writes a report now to the open file descriptor `fd` (a file, pipe or socket open for
/// writing), in `format` (a `fdguard_format` value). The report is written at the fd's current
/// position; `fd` stays open and is not synced. A failure is only returned, never redirected to
/// stderr.
///
/// Returns `FDGUARD_RESULT_OK`; `FDGUARD_RESULT_BAD_FD` (negative, not open, or open read-only);
/// `FDGUARD_RESULT_BAD_FORMAT`; `FDGUARD_RESULT_WRITE_FAILED` (e.g. full disk, closed pipe:
/// part of the report may have been written); `FDGUARD_RESULT_NOT_ACTIVE`;
/// `FDGUARD_RESULT_REENTRANT`.
#[unsafe(no_mangle)]
pub extern "C" fn fdguard_report_to_fd(fd: c_int, format: u32) -> fdguard_result {
    ffi_boundary! {
        if fd < 0 {
            return fdguard_result::BadFd;
        }
        let Some(format) = parse_format(format) else {
            return fdguard_result::BadFormat;
        };
        let _guard = try_rc!(enter());
        // SAFETY: F_GETFL takes no pointer argument.
        let flags = unsafe { real::fcntl(fd, libc::F_GETFL, 0, false) };
        if flags < 0 || flags & libc::O_ACCMODE == libc::O_RDONLY {
            return fdguard_result::BadFd;
        }
        match report_now(Trigger::Api, Destination::Fd(fd), format, false).result {
            Ok(()) => fdguard_result::Ok,
            Err(_) => fdguard_result::WriteFailed,
        }
    }
}

/// Sets a checkpoint and stores its id (never 0) in `*out_id`. Sockets created after it and
/// still open can then be counted with `fdguard_open_since()` and listed with
/// `fdguard_open_since_fds()`; reports list every checkpoint with that count, and at exit
/// they become `since_checkpoint` findings. Typical use: checkpoint before a unit of work
/// (a test, a request, a reconnect), and check the count is back to 0 after it.
///
/// Returns `FDGUARD_RESULT_OK`; `FDGUARD_RESULT_NULL_ARGUMENT`; `FDGUARD_RESULT_NOT_ACTIVE`;
/// `FDGUARD_RESULT_REENTRANT`.
///
/// # Safety
/// `out_id` is NULL or points to a writable `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fdguard_checkpoint(out_id: *mut u64) -> fdguard_result {
    ffi_boundary! {
        if out_id.is_null() {
            return fdguard_result::NullArgument;
        }
        let _guard = try_rc!(enter());
        let id = checkpoints::set();
        // SAFETY: non-NULL, and the caller promises it is writable.
        unsafe { out_id.write(id) };
        fdguard_result::Ok
    }
}

/// Stores in `*out_count` the number of sockets created since checkpoint `id` that are still
/// open: created by this process (socket, accept, socketpair) after `fdguard_checkpoint()`
/// returned `id`, not closed, not untracked with `fdguard_untrack()`. A socket duplicated with
/// dup() counts once. The same number appears as `open_since` in a report's checkpoint list.
///
/// Returns `FDGUARD_RESULT_OK`; `FDGUARD_RESULT_NULL_ARGUMENT`;
/// `FDGUARD_RESULT_UNKNOWN_CHECKPOINT`; `FDGUARD_RESULT_NOT_ACTIVE`; `FDGUARD_RESULT_REENTRANT`.
///
/// # Safety
/// `out_count` is NULL or points to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fdguard_open_since(id: u64, out_count: *mut usize) -> fdguard_result {
    ffi_boundary! {
        if out_count.is_null() {
            return fdguard_result::NullArgument;
        }
        let _guard = try_rc!(enter());
        let Some(fds) = checkpoints::time_of(id).map(snapshot::open_since) else {
            return fdguard_result::UnknownCheckpoint;
        };
        // SAFETY: non-NULL, and the caller promises it is writable.
        unsafe { out_count.write(fds.len()) };
        fdguard_result::Ok
    }
}

/// Lists the sockets `fdguard_open_since()` counts: writes one fd per socket (the lowest, if it
/// was duplicated), in increasing order, to `fds[0 .. *out_count]`.
///
/// If more than `capacity` sockets qualify, nothing is written and
/// `FDGUARD_RESULT_BUFFER_TOO_SMALL` is returned: size the array with `fdguard_open_since()`
/// plus some room for sockets other threads open meanwhile, and retry. `fds` may be NULL when
/// `capacity` is 0 (then the call succeeds only when no socket qualifies).
///
/// Returns `FDGUARD_RESULT_OK`; `FDGUARD_RESULT_NULL_ARGUMENT`;
/// `FDGUARD_RESULT_UNKNOWN_CHECKPOINT`; `FDGUARD_RESULT_BUFFER_TOO_SMALL`;
/// `FDGUARD_RESULT_NOT_ACTIVE`; `FDGUARD_RESULT_REENTRANT`.
///
/// # Safety
/// `fds` is NULL or points to `capacity` writable ints; `out_count` is NULL or points to a
/// writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fdguard_open_since_fds(
    id: u64,
    fds: *mut c_int,
    capacity: usize,
    out_count: *mut usize,
) -> fdguard_result {
    ffi_boundary! {
        if out_count.is_null() || (fds.is_null() && capacity > 0) {
            return fdguard_result::NullArgument;
        }
        let _guard = try_rc!(enter());
        let Some(list) = checkpoints::time_of(id).map(snapshot::open_since) else {
            return fdguard_result::UnknownCheckpoint;
        };
        if list.len() > capacity {
            return fdguard_result::BufferTooSmall;
        }
        if !list.is_empty() {
            // SAFETY: `fds` is non-NULL here (capacity >= list.len() > 0) and the caller
            // promises `capacity` writable ints; we write `list.len() <= capacity` of them.
            unsafe { std::ptr::copy_nonoverlapping(list.as_ptr(), fds, list.len()) };
        }
        // SAFETY: non-NULL, and the caller promises it is writable.
        unsafe { out_count.write(list.len()) };
        fdguard_result::Ok
    }
}

/// Stores in `*out_count` the number of socket fds fdguard tracks right now (the
/// `live_sockets` of a report): every open socket fd it has seen created, accepted, duplicated
/// or already open at load, minus those untracked with `fdguard_untrack()`.
///
/// Returns `FDGUARD_RESULT_OK`; `FDGUARD_RESULT_NULL_ARGUMENT`; `FDGUARD_RESULT_NOT_ACTIVE`;
/// `FDGUARD_RESULT_REENTRANT`.
///
/// # Safety
/// `out_count` is NULL or points to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fdguard_live_sockets(out_count: *mut usize) -> fdguard_result {
    ffi_boundary! {
        if out_count.is_null() {
            return fdguard_result::NullArgument;
        }
        let _guard = try_rc!(enter());
        let count = usize::try_from(snapshot::live_count()).unwrap_or(usize::MAX);
        // SAFETY: non-NULL, and the caller promises it is writable.
        unsafe { out_count.write(count) };
        fdguard_result::Ok
    }
}

/// Attaches `label` to the socket open at `fd`; reports show it (`label` in JSON), e.g. the
/// name of a gRPC subchannel. The label belongs to the socket, so dup()s of it show it too, and
/// it goes away when the socket is closed. Setting a label replaces the previous one; NULL or
/// `""` removes it. The string is copied.
///
/// `label` must be valid UTF-8 without control characters (no newline, tab, ...), at most
/// `FDGUARD_LABEL_MAX` bytes; it is rejected, not truncated or repaired, otherwise.
///
/// Returns `FDGUARD_RESULT_OK`; `FDGUARD_RESULT_BAD_FD` (negative fd);
/// `FDGUARD_RESULT_LABEL_TOO_LONG`; `FDGUARD_RESULT_BAD_LABEL`; `FDGUARD_RESULT_NOT_TRACKED`;
/// `FDGUARD_RESULT_NOT_ACTIVE`; `FDGUARD_RESULT_REENTRANT`.
///
/// # Safety
/// `label` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fdguard_label(fd: c_int, label: *const c_char) -> fdguard_result {
    ffi_boundary! {
        if fd < 0 {
            return fdguard_result::BadFd;
        }
        let text = if label.is_null() {
            None
        } else {
            // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
            let Some(bytes) = (unsafe { bounded_c_str(label, FDGUARD_LABEL_MAX) }) else {
                return fdguard_result::LabelTooLong;
            };
            let Ok(text) = std::str::from_utf8(bytes) else {
                return fdguard_result::BadLabel;
            };
            if text.chars().any(char::is_control) {
                return fdguard_result::BadLabel;
            }
            (!text.is_empty()).then(|| text.to_string())
        };
        let _guard = try_rc!(enter());
        try_rc!(tracked(fd));
        match table::get(fd) {
            Some(record) => {
                labels::set(record.socket_id, fd, text.as_deref());
                fdguard_result::Ok
            }
            None => fdguard_result::NotTracked,
        }
    }
}

/// Stops tracking the socket at `fd`, for a socket the program knows is meant to live long (a
/// listener, a control connection): it no longer appears in reports, counts or findings. Only
/// this fd number is affected (a dup() of it stays tracked); once `fd` is closed, a new socket
/// that gets the same number is tracked as usual. Untracking an fd twice is not an error.
///
/// Returns `FDGUARD_RESULT_OK`; `FDGUARD_RESULT_BAD_FD` (negative fd);
/// `FDGUARD_RESULT_NOT_TRACKED`; `FDGUARD_RESULT_NOT_ACTIVE`; `FDGUARD_RESULT_REENTRANT`.
#[unsafe(no_mangle)]
pub extern "C" fn fdguard_untrack(fd: c_int) -> fdguard_result {
    ffi_boundary! {
        if fd < 0 {
            return fdguard_result::BadFd;
        }
        let _guard = try_rc!(enter());
        if table::get(fd).is_some() && kernel::is_socket(fd) && table::set_ignored(fd, true) {
            fdguard_result::Ok
        } else {
            fdguard_result::NotTracked
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_contiguous_from_7000_with_distinct_messages() {
        for (i, code) in fdguard_result::ALL.iter().enumerate() {
            assert_eq!(*code as u32, 7000 + i as u32);
            assert_eq!(fdguard_result::from_u32(*code as u32), Some(*code));
        }
        let mut messages: Vec<_> = fdguard_result::ALL.iter().map(|c| c.message()).collect();
        messages.sort();
        messages.dedup();
        assert_eq!(messages.len(), fdguard_result::ALL.len());
        assert_eq!(fdguard_result::from_u32(0), None);
        assert_eq!(fdguard_result::from_u32(6999), None);
    }

    #[test]
    fn bounded_c_str_stops_at_the_bound() {
        let exact = [b'a' as c_char; 4];
        // SAFETY: 4 readable bytes, max 3: reads at most 4.
        assert_eq!(unsafe { bounded_c_str(exact.as_ptr(), 3) }, None);
        let ok = [b'a' as c_char, b'b' as c_char, 0];
        // SAFETY: NUL-terminated.
        assert_eq!(unsafe { bounded_c_str(ok.as_ptr(), 2) }, Some(&b"ab"[..]));
    }
}
