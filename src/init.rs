//! The constructor: read the configuration, resolve the real functions, scan pre-existing
//! sockets, install the signal, exit and fork handlers, then switch tracking on.
//!
//! Placed in `.init_array` so it runs when the dynamic loader initialises us. Other libraries'
//! constructors may run before it and already create sockets: until it finishes, hooks pass
//! straight through to the raw system calls, and the scan below picks those sockets up as
//! pre-existing.
#![allow(unsafe_code)]

use crate::detect::suppress::{self, Rule};
use crate::guard::Guard;
use crate::{capture, clock, config, events, guard, log, real, trigger};
use once_cell::sync::OnceCell;

static SUPPRESSIONS: OnceCell<Vec<Rule>> = OnceCell::new();

/// The loaded suppression rules, if a file was configured.
pub fn suppressions() -> Option<&'static [Rule]> {
    SUPPRESSIONS.get().map(Vec::as_slice)
}

// Not in unit tests: the test binary must not install hooks, handlers or a panic hook.
#[cfg(not(test))]
#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn() = constructor;

extern "C" fn constructor() {
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
    events::refresh_pid();
    let (cfg, warnings) = config::parse(|name| std::env::var(name).ok());
    for w in &warnings {
        log::line(&[w]);
    }
    if cfg.disabled {
        config::install(cfg);
        guard::disable_quietly();
        return;
    }
    if let config::Sink::File(template) = &cfg.sink {
        let probe = config::expand_path(template, events::pid(), 1, "x", 0);
        if let Err(why) = crate::output::check_directory(&probe) {
            log::line(&[
                "fdguard: FDGUARD_REPORT: ",
                &why,
                "; reports will go to stderr if it stays that way",
            ]);
        }
    }
    if let Some(path) = &cfg.suppressions {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let (rules, problems) = suppress::parse(&text);
                for p in &problems {
                    log::line(&[p]);
                }
                let _ = SUPPRESSIONS.set(rules);
            }
            Err(e) => log::line(&[
                "fdguard: FDGUARD_SUPPRESSIONS=",
                &path.to_string_lossy(),
                ": ",
                &e.to_string(),
                "; continuing without suppressions",
            ]),
        }
    }
    let own = capture::own_module_range();
    capture::set_own_module(own);
    capture::set_depth(cfg.stack_depth);
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
    config::install(cfg);
    events::scan_preexisting(&guard);
    if let Some(sig) = signal {
        trigger::install_signal(sig);
    }
    trigger::install_atexit();
    trigger::install_fork_handlers();
    guard::activate();
}
