//! What the program tells fdguard about its own sockets through the C API: checkpoints ("what
//! opens from now on should be closed again") and labels ("this socket is the cache
//! connection"). Written by the C API, read by the report side; never by the hooks.

pub mod checkpoints;
pub mod labels;
