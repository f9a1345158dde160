//! The constructor: read the configuration, resolve the real functions, scan pre-existing
//! sockets, install the signal, exit and fork handlers, then switch tracking on.
//!
//! Placed in `.init_array` so it runs when the dynamic loader initialises us. Other libraries'
//! constructors may run before it and already create sockets: until it finishes, hooks pass
//! straight through to the raw system calls, and the scan below picks those sockets up as
//! pre-existing.
#![allow(unsafe_code)] // the constructor: an `.init_array` entry reading the loader's argv.

use crate::agent::{exit, fork, signal, thread};
use crate::config;
use crate::hooks::events;
use crate::platform::guard::{self, Guard};
use crate::platform::{clock, log, process, real};
use crate::track::{capture, python};
use fdguard_report::detect::suppress;

/// Largest suppressions file read (a real one is a few hundred bytes).
const SUPPRESSIONS_MAX_BYTES: u64 = 1 << 20;

/// Reads the suppressions file without ever exhausting the host at load: at most
/// [`SUPPRESSIONS_MAX_BYTES`] (/dev/zero never ends), opened non-blocking (opening a FIFO that
/// has no writer would wait forever; a terminal read would too). A pipe or FIFO is then read
/// blocking, to its end, as `FDGUARD_SUPPRESSIONS=<(cat rules)` needs: without a writer that
/// end comes at once. /dev/null reads as empty.
fn read_suppressions(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    use std::os::unix::io::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| e.to_string())?;
    if file.metadata().is_ok_and(|m| m.file_type().is_fifo()) {
        real::set_status_flags(file.as_raw_fd(), 0);
    }
    let mut bytes = Vec::new();
    file.take(SUPPRESSIONS_MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > SUPPRESSIONS_MAX_BYTES {
        return Err(format!("larger than {SUPPRESSIONS_MAX_BYTES} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())
}

// Not in unit tests: the test binary must not install hooks, handlers or a panic hook.
type Constructor =
    extern "C" fn(libc::c_int, *const *const libc::c_char, *const *const libc::c_char);

// glibc calls `.init_array` entries with the program's (argc, argv, envp).
#[cfg(not(test))]
#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: Constructor = constructor;

extern "C" fn constructor(
    argc: libc::c_int,
    argv: *const *const libc::c_char,
    _envp: *const *const libc::c_char,
) {
    // SAFETY: the loader passes the program's argc/argv to .init_array functions.
    unsafe { process::remember_arguments(argc, argv) };
    if guard::catch("internal error while loading", load).is_none() {
        guard::disable_quietly();
    }
}

fn load() {
    let Some(guard) = Guard::enter_even_if_inactive() else {
        return;
    };
    guard::install_panic_hook();
    clock::mark_loaded();
    log::remember_stderr();
    process::refresh_pid();
    // A value that is not UTF-8 gets its line here and the default (never a lossy copy: for
    // FDGUARD_REPORT that would be a different path).
    let not_utf8 = std::cell::RefCell::new(Vec::new());
    let (cfg, warnings) = config::parse(|name| match std::env::var(name) {
        Ok(value) => Some(value),
        Err(std::env::VarError::NotUnicode(_)) => {
            not_utf8.borrow_mut().push(name.to_string());
            None
        }
        Err(std::env::VarError::NotPresent) => None,
    });
    let mut not_utf8 = not_utf8.into_inner();
    not_utf8.dedup();
    for name in &not_utf8 {
        log::line(&["fdguard: ", name, " is not valid UTF-8; using the default"]);
    }
    for w in &warnings {
        log::line(&[w]);
    }
    let names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    for w in config::unknown_variables(names.iter().map(String::as_str)) {
        log::line(&[&w]);
    }
    if cfg.disabled {
        config::install(cfg);
        guard::disable_quietly();
        return;
    }
    let (sink, why) = crate::report::write::settle_sink(cfg.sink.clone());
    if let Some(why) = why {
        log::line(&[&why]);
    }
    let mut cfg = cfg;
    cfg.sink = sink;
    if let config::Sink::File(template) = &cfg.sink {
        let probe = config::expand_path(template, process::pid(), 1, "x", 0);
        if let Err(why) = crate::report::write::check_directory(&probe) {
            let runtime = fdguard_report::request::channel_dir(process::euid());
            log::line(&[
                "fdguard: FDGUARD_REPORT: ",
                &why,
                "; reports will go to ",
                &runtime.to_string_lossy(),
                " (the per-user runtime directory) if it stays that way",
            ]);
        }
    }
    if let Some(path) = &cfg.suppressions {
        match read_suppressions(path) {
            Ok(text) => {
                let (rules, problems) = suppress::parse(&text);
                // One line however bad the file is (a binary file would give thousands).
                if let Some(first) = problems.first() {
                    let more = match problems.len() {
                        1 => String::new(),
                        n => format!(" (and {} more such lines)", n - 1),
                    };
                    let first = first.strip_prefix("fdguard: ").unwrap_or(first);
                    log::line(&["fdguard: FDGUARD_SUPPRESSIONS: ", first, &more]);
                }
                config::install_suppressions(rules);
            }
            Err(e) => log::line(&[
                "fdguard: FDGUARD_SUPPRESSIONS=",
                &path.to_string_lossy(),
                ": ",
                &e,
                "; continuing without suppressions",
            ]),
        }
    }
    // Python first: registering modules for the unwinder may already look for CPython.
    python::configure(cfg.python_depth, cfg.test_fault.as_deref());
    let own = capture::own_module_range();
    capture::set_fast_unwind(cfg.fast_unwind);
    capture::set_own_module(own);
    capture::set_depth(cfg.stack_depth);
    python::detect();
    let missing = real::resolve(own);
    if !missing.is_empty() {
        let list = missing.join(", ");
        // closefrom/close_range/fcntl64 may legitimately be absent from older C libraries.
        let required_missing = missing
            .iter()
            .any(|m| !matches!(*m, "closefrom" | "close_range" | "fcntl64"));
        if required_missing {
            log::line(&[
                "fdguard: could not resolve ",
                &list,
                "; using raw system calls for them",
            ]);
        }
    }
    let signal = cfg.signal;
    let always = cfg.exit_report == config::ExitReport::Always;
    config::install(cfg);
    let preexisting = events::scan_preexisting(&guard);
    if let Some(sig) = signal {
        signal::install(sig);
    }
    exit::install_atexit();
    fork::install_handlers();
    guard::activate();
    // Sockets inherited across exec (socket activation, inetd), or an exit report wanted
    // whatever happens: the thread is needed from now on (agent::thread).
    if preexisting > 0 || always {
        thread::ensure_running(&guard);
    }
}
