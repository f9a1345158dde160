//! What fdguard records about the sockets of this process, as the hooks report them: the
//! fd-indexed table of [`record::SocketRecord`]s (`table`), their addresses (`sockaddr`), the
//! creating stacks (`capture`, with the cached unwinder in `unwind` and the host's Python
//! frames in `python`) and a bounded history of closed client connections (`history`).
//!
//! Written by the hook side only (plus the watcher's dating of hang-ups); read by the report
//! side through consistent copies. Everything reachable from the close path here is
//! async-signal-safe.

pub mod capture;
pub mod history;
pub mod python;
pub mod record;
pub mod sockaddr;
pub mod table;
pub mod unwind;
