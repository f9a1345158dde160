//! The frame cache: most frames of a capture are frames an earlier capture already interned
//! (the event loop, the framework, `<module>`), and decoding their line tables again dominated
//! the cost (≈ 1,250 instructions a frame under callgrind, two thirds of a capture). This maps
//! the *content* a frame is made of — the raw bytes of its function name, file name and line
//! table, its first line and instruction offset — to the frame's id in the intern table, by two
//! independent 64-bit hashes (a wrong answer needs both to collide: 2⁻¹²⁸). Hashing those bytes
//! costs a fraction of decoding them, and a hit skips the copy and the intern probe too.
//!
//! Nothing here trusts an address: a code object freed and another allocated in its place hash
//! differently unless their names, table, first line and offset are all the same bytes, and
//! then the frame *is* the same. Direct-mapped, each entry a seqlock of atomics: a reader that
//! overlaps a writer misses; a writer that meets another skips. Lock-free and bounded.

use std::sync::atomic::{AtomicU64, Ordering, fence};

/// Entries (32 bytes each: 128 KiB, in .bss, touched as used). A service's distinct
/// socket-creating frames fit many times over.
const ENTRIES: usize = 4096;

struct Entry {
    /// Even: stable; odd: being written; 0: never written.
    seq: AtomicU64,
    h1: AtomicU64,
    h2: AtomicU64,
    id: AtomicU64,
}

static CACHE: [Entry; ENTRIES] = [const {
    Entry {
        seq: AtomicU64::new(0),
        h1: AtomicU64::new(0),
        h2: AtomicU64::new(0),
        id: AtomicU64::new(0),
    }
}; ENTRIES];

/// Two 64-bit hashes computed in one pass over a frame's bytes.
#[derive(Clone, Copy)]
pub struct Hasher {
    h1: u64,
    h2: u64,
}

impl Hasher {
    pub fn new(seed: u64) -> Hasher {
        Hasher {
            h1: 0x243f_6a88_85a3_08d3 ^ seed,
            h2: 0x1319_8a2e_0370_7344 ^ seed.rotate_left(29),
        }
    }

    /// Mixes one word into both chains: a multiply-rotate chain and an add-rotate one, so a
    /// pair of inputs colliding in both is not a practical event.
    #[inline]
    pub fn word(&mut self, w: u64) {
        self.h1 = (self.h1 ^ w)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(31);
        self.h2 = self.h2.rotate_left(19).wrapping_add(w);
    }

    /// Hashes `bytes` (with their length, so concatenations do not collide). Long runs go 16
    /// bytes a step, one word into each of two multiply-rotate lanes that run in parallel:
    /// every byte still reaches the 128-bit result, and two inputs that differ anywhere
    /// collide only if one 64-bit lane does.
    pub fn bytes(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        self.word(n as u64);
        let word = |w: &[u8]| u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        let mut pairs = bytes.chunks_exact(16);
        for c in &mut pairs {
            let (a, b) = (word(&c[..8]), word(&c[8..]));
            self.h1 = (self.h1 ^ a)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(31);
            self.h2 = (self.h2 ^ b)
                .wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
                .rotate_left(27);
        }
        let rest = pairs.remainder();
        if rest.len() >= 8 {
            self.word(word(&rest[..8]));
        }
        if !n.is_multiple_of(8) {
            // The last 8 bytes (overlapping what was hashed: still a function of the bytes
            // and their length), or the few there are.
            let tail = if n >= 8 {
                word(&bytes[n - 8..])
            } else {
                bytes.iter().fold(0u64, |t, &b| t << 8 | b as u64)
            };
            self.word(tail);
        }
    }

    fn finish(self) -> (u64, u64) {
        // A final avalanche, so the low bits that pick the entry depend on every input bit.
        let mix = |mut h: u64| {
            h ^= h >> 33;
            h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^ (h >> 33)
        };
        (mix(self.h1) | 1, mix(self.h2 ^ self.h1.rotate_left(32)))
    }
}

/// The id cached for this content, if any.
pub fn get(h: Hasher) -> Option<u32> {
    let (h1, h2) = h.finish();
    let e = &CACHE[(h1 as usize >> 1) % ENTRIES];
    let s1 = e.seq.load(Ordering::Acquire);
    if s1 == 0 || s1 & 1 != 0 {
        return None;
    }
    let (a, b, id) = (
        e.h1.load(Ordering::Relaxed),
        e.h2.load(Ordering::Relaxed),
        e.id.load(Ordering::Relaxed),
    );
    fence(Ordering::Acquire);
    (e.seq.load(Ordering::Relaxed) == s1 && a == h1 && b == h2).then_some(id as u32)
}

/// Remembers `id` for this content (skipped if another thread is writing the entry).
pub fn put(h: Hasher, id: u32) {
    let (h1, h2) = h.finish();
    let e = &CACHE[(h1 as usize >> 1) % ENTRIES];
    let s = e.seq.load(Ordering::Relaxed);
    if s & 1 != 0
        || e.seq
            .compare_exchange(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    fence(Ordering::Release);
    e.h1.store(h1, Ordering::Relaxed);
    e.h2.store(h2, Ordering::Relaxed);
    e.id.store(id as u64, Ordering::Relaxed);
    e.seq.store(s + 2, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(name: &[u8], line: u64) -> Hasher {
        let mut h = Hasher::new(7);
        h.bytes(name);
        h.word(line);
        h
    }

    #[test]
    fn hits_only_the_same_content() {
        assert_eq!(get(content(b"cache_test_f", 1)), None);
        put(content(b"cache_test_f", 1), 42);
        assert_eq!(get(content(b"cache_test_f", 1)), Some(42));
        assert_eq!(get(content(b"cache_test_f", 2)), None);
        assert_eq!(get(content(b"cache_test_g", 1)), None);
        // Lengths are hashed: "ab" + "c" is not "a" + "bc".
        let mut a = Hasher::new(0);
        a.bytes(b"ab");
        a.bytes(b"c");
        let mut b = Hasher::new(0);
        b.bytes(b"a");
        b.bytes(b"bc");
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn concurrent_readers_and_writers_never_see_a_torn_entry() {
        // Every writer stores id == low bits of its own content; a reader that hits must get
        // the id that belongs to the content it asked for.
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..20_000u64 {
                        let k = (i * 4 + t) % 64;
                        let h = content(b"torn", k + 1000);
                        put(h, k as u32);
                        if let Some(id) = get(h) {
                            assert_eq!(id as u64, k);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}
