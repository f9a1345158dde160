//! fdguard's report: the versioned schema ([`model`]), the LeakSanitizer-style text rendering
//! ([`text`]), filtering ([`filter`]) and the comparison of two reports ([`diff`]).
//!
//! Shared in code by `libfdguard.so` (which writes reports) and the `fdguard` CLI (which reads,
//! filters, renders and compares them), so the two can never disagree: the text that
//! `fdguard show` prints is produced by the same function the library uses.
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod detect;
pub mod diff;
pub mod filter;
pub mod fleet;
pub mod json;
#[allow(missing_docs)]
pub mod model;
pub mod request;
pub mod signal;
pub mod stacks;
pub mod template;
pub mod text;
pub mod units;
pub mod verdict;

pub use model::*;
