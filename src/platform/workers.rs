//! Helper threads for a report's bulk kernel reads: one question per fd (statx, TCP_INFO, …)
//! for tens of thousands of fds is system-call bound, and the calls are independent, so a
//! report with many sockets spreads them over the machine's cores. Threads exist only while a
//! big report runs (never for a small one, never between reports), are named `fdguard`, are
//! born with every signal blocked, and hold the reentrancy guard; when a thread cannot be started (a seccomp policy, the thread
//! limit) or fails, its share is done on the calling thread.

use super::guard::Guard;
use super::process::SignalsBlocked;

/// Below this many items one thread does it all: a thread costs about 50 µs to start and
/// join, and the reads cost about 2 µs an item.
pub const PARALLEL_FROM: usize = 4096;
/// At most this many threads in all, the caller's included.
const MAX_THREADS: usize = 4;
/// Helper threads only read the kernel into plain values.
const HELPER_STACK: usize = 256 * 1024;

/// `read` of every item, in order. The calling thread does the first share (calling
/// `on_item` after each item, so a waiter sees progress); helper threads the others.
pub fn map<T: Sync, R: Send>(
    items: &[T],
    read: impl Fn(&T) -> R + Sync,
    on_item: &dyn Fn(),
) -> Vec<R> {
    let threads = if items.len() >= PARALLEL_FROM {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS)
    } else {
        1
    };
    if threads <= 1 {
        return items
            .iter()
            .map(|item| {
                let value = read(item);
                on_item();
                value
            })
            .collect();
    }
    let share = items.len().div_ceil(threads);
    let mut out: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    let read = &read;
    std::thread::scope(|scope| {
        let mut shares = items.chunks(share).zip(out.chunks_mut(share));
        let mine = shares.next();
        // Born with every signal blocked, whatever the calling thread's mask (a C API report
        // runs on a host thread): the host's signals never land on a helper.
        let blocked = SignalsBlocked::new();
        let helpers: Vec<_> = shares
            .filter_map(|(items, out)| {
                std::thread::Builder::new()
                    .name("fdguard".into())
                    .stack_size(HELPER_STACK)
                    .spawn_scoped(scope, move || {
                        let _guard = Guard::enter_even_if_inactive();
                        for (item, slot) in items.iter().zip(out) {
                            *slot = Some(read(item));
                        }
                    })
                    .ok()
            })
            .collect();
        drop(blocked);
        if let Some((items, out)) = mine {
            for (item, slot) in items.iter().zip(out) {
                *slot = Some(read(item));
                on_item();
            }
        }
        for helper in helpers {
            // A helper that panicked left its slots empty: filled below.
            let _ = helper.join();
        }
    });
    // Shares whose thread could not start or failed.
    items
        .iter()
        .zip(out)
        .map(|(item, slot)| slot.unwrap_or_else(|| read(item)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_item_once_in_order_small_and_large() {
        for len in [
            0,
            1,
            10,
            PARALLEL_FROM - 1,
            PARALLEL_FROM,
            3 * PARALLEL_FROM + 7,
        ] {
            let items: Vec<usize> = (0..len).collect();
            let calls = AtomicUsize::new(0);
            let progress = AtomicUsize::new(0);
            let out = map(
                &items,
                |&i| {
                    calls.fetch_add(1, Ordering::Relaxed);
                    i * 2
                },
                &|| {
                    progress.fetch_add(1, Ordering::Relaxed);
                },
            );
            assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
            assert_eq!(calls.load(Ordering::Relaxed), len);
            assert!(progress.load(Ordering::Relaxed) <= len);
        }
    }

    /// Helpers are born with every signal blocked, even when the caller blocks none.
    #[test]
    fn helpers_never_take_the_hosts_signals() {
        let blocked_mask = || {
            std::fs::read_to_string("/proc/thread-self/status")
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("SigBlk:").map(|v| v.trim().to_string()))
                .unwrap()
        };
        let caller = std::thread::current().id();
        let caller_mask = blocked_mask();
        let items: Vec<usize> = (0..2 * PARALLEL_FROM).collect();
        let masks = map(
            &items,
            |&i| (i % 512 == 0).then(|| (std::thread::current().id() != caller, blocked_mask())),
            &|| {},
        );
        let helper_masks: Vec<String> = masks
            .iter()
            .flatten()
            .filter(|(helper, _)| *helper)
            .map(|(_, mask)| mask.clone())
            .collect();
        if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
            assert!(!helper_masks.is_empty(), "no helper ran");
        }
        for mask in helper_masks {
            // Every bit of the 64 signals blocked (the kernel may not show SIGKILL/SIGSTOP).
            assert!(
                mask.trim_start_matches('0').starts_with("fffffffe"),
                "{mask}"
            );
        }
        assert_eq!(blocked_mask(), caller_mask, "the caller's mask is restored");
    }

    #[test]
    fn a_failing_helper_share_is_redone() {
        let items: Vec<usize> = (0..2 * PARALLEL_FROM).collect();
        let main = std::thread::current().id();
        let failed = AtomicUsize::new(0);
        let out = map(
            &items,
            |&i| {
                // Each helper thread panics on its first item, once.
                if std::thread::current().id() != main
                    && failed.fetch_add(1, Ordering::Relaxed) == 0
                {
                    panic!("injected");
                }
                i + 1
            },
            &|| {},
        );
        assert_eq!(out, items.iter().map(|i| i + 1).collect::<Vec<_>>());
    }
}
