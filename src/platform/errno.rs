//! The calling thread's `errno`: read, set, and kept across our bookkeeping. Hooks must return
//! exactly the errno the real call set (bionic's ErrnoRestorer).
#![allow(unsafe_code)] // errno is read and written through __errno_location.

/// Restores `errno` when dropped: hooks must return exactly the errno the real call set.
pub struct ErrnoKeeper(i32);

impl ErrnoKeeper {
    /// Saves the current errno.
    #[inline]
    pub fn save() -> ErrnoKeeper {
        ErrnoKeeper(errno())
    }
}

impl Drop for ErrnoKeeper {
    #[inline]
    fn drop(&mut self) {
        set_errno(self.0);
    }
}

/// The calling thread's errno.
#[inline]
pub fn errno() -> i32 {
    // SAFETY: __errno_location always returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Sets the calling thread's errno.
#[inline]
pub fn set_errno(value: i32) {
    // SAFETY: __errno_location always returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() = value };
}
