//! The Python frame table: every distinct (function, file, line) a capture saw, copied in and
//! interned, so a stack keeps a 32-bit id per Python frame and the code object it came from may
//! die long before the report. The same design as the stack table in `capture.rs`: one fixed
//! open-addressing table, mapped on first use, never resized, never locked; an entry is claimed
//! with a compare-and-swap, written, then published. Names are cut to fixed sizes (see
//! [`FUNCTION_BYTES`], [`FILE_BYTES`]) so an entry is a fixed 272 bytes.
#![allow(unsafe_code)] // the lock-free frame table lives in memory it maps itself.

use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

/// Bytes kept of a function's qualified name (longer ones keep their start). Real qualified
/// names are far shorter (`Outer.method.<locals>.inner` is 27).
pub const FUNCTION_BYTES: usize = 96;
/// Bytes kept of a file path (longer ones keep their end, after `...`: the package and module
/// are the useful part of a deep venv path).
pub const FILE_BYTES: usize = 160;
const WORDS: usize = (FUNCTION_BYTES + FILE_BYTES) / 8;
const FUNCTION_WORDS: usize = FUNCTION_BYTES / 8;
/// Distinct Python frames kept: a service's socket-creating paths share most of their frames;
/// 8192 × 272 bytes ≈ 2.2 MiB of address space, touched only as frames are added.
pub const MAX_ENTRIES: usize = 1 << 13;
const MAX_PROBES: usize = 64;
/// The id of a frame that could not be kept (table full).
pub const NONE: u32 = u32::MAX;

const TAG_READY: u64 = 1 << 63;
const TAG_WRITING: u64 = 1 << 62;
const HASH_MASK: u64 = !(TAG_READY | TAG_WRITING);

/// A frame being captured: names as bytes, zero padded, in one buffer on the capturing thread's
/// stack (the function in the first [`FUNCTION_BYTES`], the file in the rest).
#[repr(C, align(8))]
pub struct Key {
    pub bytes: [u8; FUNCTION_BYTES + FILE_BYTES],
    pub function_len: usize,
    pub file_len: usize,
    pub line: u32,
}

impl Key {
    pub const fn new() -> Key {
        Key {
            bytes: [0; FUNCTION_BYTES + FILE_BYTES],
            function_len: 0,
            file_len: 0,
            line: 0,
        }
    }

    /// The function's bytes buffer (to fill) and the file's.
    pub fn buffers(&mut self) -> (&mut [u8], &mut [u8]) {
        self.bytes.split_at_mut(FUNCTION_BYTES)
    }

    fn meta(&self) -> u64 {
        (self.line as u64) << 32 | (self.function_len as u64) << 16 | self.file_len as u64
    }

    fn word(&self, i: usize) -> u64 {
        let b = &self.bytes[i * 8..i * 8 + 8];
        u64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// The word indexes that hold names: the rest is zero padding.
    fn used(&self) -> impl Iterator<Item = usize> {
        let f = self.function_len.min(FUNCTION_BYTES).div_ceil(8);
        let p = self.file_len.min(FILE_BYTES).div_ceil(8);
        (0..f).chain(FUNCTION_WORDS..FUNCTION_WORDS + p)
    }

    fn hash(&self) -> u64 {
        let mut h = self.meta().wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for i in self.used() {
            h = (h ^ self.word(i)).wrapping_mul(0x0000_0100_0000_01b3);
            h ^= h >> 29;
        }
        (h & HASH_MASK) | 1
    }
}

#[repr(C)]
struct Entry {
    tag: AtomicU64,
    /// line << 32 | function length << 16 | file length.
    meta: AtomicU64,
    words: [AtomicU64; WORDS],
}

static TABLE: AtomicPtr<Entry> = AtomicPtr::new(null_mut());
static DROPPED: AtomicU64 = AtomicU64::new(0);

fn table() -> Option<&'static [Entry]> {
    let mut ptr = TABLE.load(Ordering::Acquire);
    let size = std::mem::size_of::<Entry>() * MAX_ENTRIES;
    if ptr.is_null() {
        // SAFETY: anonymous private mapping, no pointer arguments.
        let mem = unsafe {
            libc::mmap(
                null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if mem == libc::MAP_FAILED {
            return None;
        }
        match TABLE.compare_exchange(null_mut(), mem.cast(), Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => ptr = mem.cast(),
            Err(winner) => {
                // SAFETY: our own unshared mapping of `size` bytes.
                unsafe { libc::munmap(mem, size) };
                ptr = winner;
            }
        }
    }
    // SAFETY: `ptr` is a live, never-unmapped mapping of MAX_ENTRIES zero-initialised entries
    // (all-zero atomics are valid).
    Some(unsafe { std::slice::from_raw_parts(ptr, MAX_ENTRIES) })
}

fn same(entry: &Entry, key: &Key) -> bool {
    entry.meta.load(Ordering::Relaxed) == key.meta()
        && key
            .used()
            .all(|i| entry.words[i].load(Ordering::Relaxed) == key.word(i))
}

/// Interns `key`; returns its id, or [`NONE`] when the table is full.
pub fn intern(key: &Key) -> u32 {
    let Some(entries) = table() else {
        return NONE;
    };
    let h = key.hash();
    let start = (h as usize) % MAX_ENTRIES;
    let mut probe = 0;
    while probe < MAX_PROBES {
        let index = (start + probe) % MAX_ENTRIES;
        let entry = &entries[index];
        let tag = entry.tag.load(Ordering::Acquire);
        if tag == (h | TAG_READY) && same(entry, key) {
            return index as u32;
        }
        if tag == 0 {
            if entry
                .tag
                .compare_exchange(0, h | TAG_WRITING, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                for i in key.used() {
                    entry.words[i].store(key.word(i), Ordering::Relaxed);
                }
                entry.meta.store(key.meta(), Ordering::Relaxed);
                entry.tag.store(h | TAG_READY, Ordering::Release);
                return index as u32;
            }
            continue; // lost the race for this entry: look at it again
        }
        if tag == (h | TAG_WRITING) {
            // Someone is writing a frame with our hash; wait briefly, bounded.
            for _ in 0..1000 {
                if entry.tag.load(Ordering::Acquire) & TAG_READY != 0 {
                    break;
                }
                std::hint::spin_loop();
            }
            if entry.tag.load(Ordering::Acquire) == (h | TAG_READY) && same(entry, key) {
                return index as u32;
            }
        }
        probe += 1;
    }
    DROPPED.fetch_add(1, Ordering::Relaxed);
    NONE
}

/// An interned frame, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyFrame {
    pub function: String,
    pub file: String,
    /// 0 when the instruction had no line.
    pub line: u32,
}

/// The frame with id `id` (report time).
pub fn get(id: u32) -> Option<PyFrame> {
    let entry = table()?.get(id as usize)?;
    if entry.tag.load(Ordering::Acquire) & TAG_READY == 0 {
        return None;
    }
    let meta = entry.meta.load(Ordering::Relaxed);
    let function_len = ((meta >> 16) & 0xffff) as usize;
    let file_len = (meta & 0xffff) as usize;
    let mut bytes = [0u8; FUNCTION_BYTES + FILE_BYTES];
    for (i, word) in entry.words.iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Some(PyFrame {
        function: text(&bytes[..function_len.min(FUNCTION_BYTES)]),
        file: text(&bytes[FUNCTION_BYTES..FUNCTION_BYTES + file_len.min(FILE_BYTES)]),
        line: (meta >> 32) as u32,
    })
}

/// Frames that could not be kept because the table was full.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(function: &str, file: &str, line: u32) -> Key {
        let mut k = Key::new();
        let (f, p) = k.buffers();
        f[..function.len()].copy_from_slice(function.as_bytes());
        p[..file.len()].copy_from_slice(file.as_bytes());
        k.function_len = function.len();
        k.file_len = file.len();
        k.line = line;
        k
    }

    #[test]
    fn same_frames_share_an_id_and_read_back() {
        let a = intern(&key("leak_connection", "/srv/app.py", 12));
        let b = intern(&key("leak_connection", "/srv/app.py", 13));
        let c = intern(&key("leak_connection", "/srv/app.pyc", 12));
        assert_ne!(a, NONE);
        assert_eq!(intern(&key("leak_connection", "/srv/app.py", 12)), a);
        assert!(a != b && a != c && b != c);
        assert_eq!(
            get(a),
            Some(PyFrame {
                function: "leak_connection".into(),
                file: "/srv/app.py".into(),
                line: 12
            })
        );
        let long = "x".repeat(FILE_BYTES);
        let d = intern(&key("f", &long, 1));
        assert_eq!(get(d).unwrap().file, long);
    }

    #[test]
    fn concurrent_interning_agrees() {
        let ids: Vec<Vec<u32>> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    (0..200)
                        .map(|i| intern(&key(&format!("f{i}"), "/t/concurrent.py", i)))
                        .collect()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] == w[1]));
        assert!(ids[0].iter().all(|&id| id != NONE));
    }
}
