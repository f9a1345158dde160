//! Files and descriptors fdguard opens on its own behalf (reports, report requests, metrics
//! files, the reserved descriptor): the plain libc calls as small safe functions, so the
//! modules that use them need no unsafe code.
//!
//! Each is the libc call and nothing more: same return value, errno left as the call set it
//! (callers that must keep the host's errno save it around the call), no allocation. None of
//! these names is interposed by fdguard, so calling libc directly is right (contrast `real`).
#![allow(unsafe_code)] // every function here is one libc call taking pointers.

use std::ffi::CStr;

/// What a file is, as stat(2) tells it: enough to recognise the same file under another name
/// or descriptor, and to check its type and owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
    /// `st_mode`: type and permission bits.
    pub mode: u32,
    pub uid: u32,
}

impl Identity {
    fn of(st: &libc::stat) -> Identity {
        Identity {
            dev: st.st_dev,
            ino: st.st_ino,
            mode: st.st_mode,
            uid: st.st_uid,
        }
    }
}

/// `fstat(2)` of `fd`.
#[inline]
pub fn fstat(fd: i32) -> Option<Identity> {
    // SAFETY: a zeroed `stat` is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer; any fd value is allowed (EBADF).
    let rc = unsafe { libc::fstat(fd, &mut st) };
    (rc == 0).then(|| Identity::of(&st))
}

/// `stat(2)` of `path`, following symbolic links.
#[inline]
pub fn stat(path: &CStr) -> Option<Identity> {
    // SAFETY: a zeroed `stat` is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string; valid out-pointer.
    let rc = unsafe { libc::stat(path.as_ptr(), &mut st) };
    (rc == 0).then(|| Identity::of(&st))
}

/// True when something exists at `path` itself (`lstat`: a symbolic link is not followed).
/// Opens nothing.
#[inline]
pub fn exists_no_follow(path: &CStr) -> bool {
    // SAFETY: a zeroed `stat` is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string; valid out-pointer. AT_FDCWD with
    // AT_SYMLINK_NOFOLLOW is lstat.
    let rc = unsafe {
        libc::fstatat(
            libc::AT_FDCWD,
            path.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    rc == 0
}

/// `open(2)`; `mode` is used only with `O_CREAT` (or `O_TMPFILE`). Returns the fd or -1.
#[inline]
pub fn open(path: &CStr, flags: i32, mode: libc::mode_t) -> i32 {
    // SAFETY: `path` is a NUL-terminated string; the mode is passed as open's variadic third
    // argument, which it reads only when `flags` create a file.
    unsafe { libc::open(path.as_ptr(), flags, mode as libc::c_uint) }
}

/// `unlink(2)`. Returns 0 or -1.
#[inline]
pub fn unlink(path: &CStr) -> i32 {
    // SAFETY: `path` is a NUL-terminated string.
    unsafe { libc::unlink(path.as_ptr()) }
}

/// `unlinkat(2)` of `name` in the directory open at `dir_fd`. Returns 0 or -1.
/// Async-signal-safe.
#[inline]
pub fn unlink_at(dir_fd: i32, name: &CStr) -> i32 {
    // SAFETY: `name` is a NUL-terminated string; any fd value is allowed (EBADF).
    unsafe { libc::unlinkat(dir_fd, name.as_ptr(), 0) }
}

/// `rename(2)`. Returns 0 or -1.
#[inline]
pub fn rename(from: &CStr, to: &CStr) -> i32 {
    // SAFETY: both are NUL-terminated strings.
    unsafe { libc::rename(from.as_ptr(), to.as_ptr()) }
}

/// `fchmod(2)`. Returns 0 or -1.
#[inline]
pub fn fchmod(fd: i32, mode: libc::mode_t) -> i32 {
    // SAFETY: no pointer arguments; any fd value is allowed (EBADF).
    unsafe { libc::fchmod(fd, mode) }
}

/// `access(2)`: 0 when the real user may access `path` as `mode` asks, else -1.
#[inline]
pub fn access(path: &CStr, mode: i32) -> i32 {
    // SAFETY: `path` is a NUL-terminated string.
    unsafe { libc::access(path.as_ptr(), mode) }
}

/// `memfd_create(2)`. Returns the fd or -1.
#[inline]
pub fn memfd_create(name: &CStr, flags: libc::c_uint) -> i32 {
    // SAFETY: `name` is a NUL-terminated string.
    unsafe { libc::memfd_create(name.as_ptr(), flags) }
}

/// `poll(2)` on one descriptor for `events`, at most `timeout_ms` (-1: no limit). Returns
/// poll's result and the events that occurred.
#[inline]
pub fn poll_one(fd: i32, events: i16, timeout_ms: i32) -> (i32, i16) {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    (rc, pfd.revents)
}

/// Fills `bytes` from the kernel's random source without ever waiting for it
/// (`getrandom(GRND_NONBLOCK)`). True when every byte was filled.
#[inline]
pub fn random_bytes(bytes: &mut [u8]) -> bool {
    // SAFETY: getrandom writes at most `bytes.len()` bytes into the buffer.
    let got =
        unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), libc::GRND_NONBLOCK) };
    got == bytes.len() as isize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wrappers_say_what_libc_says() {
        let dir = std::env::temp_dir().join(format!("fdguard-fs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let path = std::ffi::CString::new(dir.join("a").to_str().unwrap()).unwrap();
        let other = std::ffi::CString::new(dir.join("b").to_str().unwrap()).unwrap();
        assert!(!exists_no_follow(&path));
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC;
        let fd = open(&path, flags, 0o600);
        assert!(fd >= 0);
        assert!(exists_no_follow(&path));
        assert_eq!(fchmod(fd, 0o644), 0);
        let by_fd = fstat(fd).unwrap();
        assert_eq!(stat(&path), Some(by_fd));
        assert_eq!(by_fd.mode & 0o777, 0o644);
        assert_eq!(open(&path, flags, 0o600), -1, "O_EXCL");
        assert_eq!(rename(&path, &other), 0);
        assert_eq!(stat(&path), None);
        assert_eq!(stat(&other).map(|i| i.ino), Some(by_fd.ino));
        assert_eq!(
            poll_one(fd, libc::POLLOUT, 0).1 & libc::POLLOUT,
            libc::POLLOUT
        );
        assert_eq!(unlink(&other), 0);
        assert_eq!(unlink(&other), -1);
        assert_eq!(crate::platform::real::close(fd), 0);
        std::fs::remove_dir_all(dir).unwrap();
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        assert!(random_bytes(&mut a) && random_bytes(&mut b));
        assert_ne!(a, b);
    }
}
