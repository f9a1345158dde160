//! The hook side: the only libc symbols fdguard exports. Each hook has the same shape (house
//! style H2): call the real function, keep its errno, hand a small event to `events`, return the
//! real result. Creation events run after the real call; close events run before it (see
//! `track::table`). `events` is where the policy lives: what each call means for the table.
//!
//! In unit tests the symbols are not exported (`cfg_attr(not(test), …)`), so the test binary
//! never interposes itself.
//!
//! cbindgen:ignore

mod accept;
mod close;
mod connect;
mod dup;
pub mod events;
mod namespace;
mod process;
mod recv;
mod shutdown;
mod socket;
mod thread;
