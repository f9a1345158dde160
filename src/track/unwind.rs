//! The fast unwinder for the socket-creation path (issue 7): framehop's x86-64 DWARF CFI
//! unwinder over the `.eh_frame_hdr`/`.eh_frame` sections the loader already mapped, with
//! cached per-address unwind rules. libgcc's `_Unwind_Backtrace` re-parses CIEs and FDEs and
//! restores every register for every frame (≈ 1 µs for the 9 frames of a socket() call from
//! main, ≈ 100 ns per further frame); here a frame costs a rule-cache lookup and one or two
//! stack loads, and our own frames at the top are skipped by replaying their recorded layout.
//!
//! What the hot path (`capture`) does, and never does:
//! - no allocation, no lock, no system call, no file I/O: module data is registered up front
//!   (constructor) or on a refresh, and the rule caches come from a fixed per-CPU pool taken
//!   with an atomic swap. A capture that finds no free cache, no usable stack bound, or a
//!   module it cannot register now returns `None` and the caller uses libgcc instead (correct,
//!   only slower).
//! - reads the stack only inside `[sp, top)` of the stack it runs on (see `stack_top`), and
//!   module memory only after `_dl_find_object` — lock-free and async-signal-safe per the glibc
//!   manual — confirmed that the module is still the one registered (a `dlclose` may have
//!   unmapped it).
//! - never steps across a signal frame (`__restore_rt`), where framehop would have to guess:
//!   a capture from a signal handler is handed to libgcc, which reads the interrupted
//!   registers from the frame.
//!
//! The slow path, `refresh`, runs when a frame lies in a module loaded after the last snapshot
//! (CPython imports grpc's cygrpc long after start): it walks `dl_iterate_phdr` and allocates a
//! new snapshot. It is taken with a try-lock, at most once per `REFRESH_EVERY` misses and at
//! most `MAX_REFRESHES` times; old snapshots are leaked on purpose (a capture on another
//! thread may still be reading one; they are a few KiB each).
#![allow(unsafe_code)] // the unwinder reads stack memory and asks the loader (_dl_find_object).

#[cfg(target_arch = "x86_64")]
pub use imp::{capture_from, is_known_startup, prepare};

/// Where a capture starts: the instruction pointer, stack pointer and frame pointer of the
/// capturing frame, read together (see [`Regs::here`]).
#[derive(Debug, Clone, Copy)]
pub struct Regs {
    pub ip: usize,
    pub sp: usize,
    pub bp: usize,
}

impl Regs {
    /// The registers of the calling frame, read in one instruction sequence (inlined, so the
    /// capture starts in the caller: the walk's first frame is the caller's).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub fn here() -> Regs {
        let (ip, sp, bp): (usize, usize, usize);
        // SAFETY: reads rip, rsp and rbp into registers; no memory access, no stack use.
        unsafe {
            std::arch::asm!(
                "lea {ip}, [rip]",
                "mov {sp}, rsp",
                "mov {bp}, rbp",
                ip = out(reg) ip,
                sp = out(reg) sp,
                bp = out(reg) bp,
                options(nomem, nostack, preserves_flags),
            );
        }
        Regs { ip, sp, bp }
    }

    /// Other architectures: nothing to read (the fast unwinder is x86-64 only).
    #[cfg(not(target_arch = "x86_64"))]
    #[inline(always)]
    pub fn here() -> Regs {
        Regs {
            ip: 0,
            sp: 0,
            bp: 0,
        }
    }
}

/// Counters (tests check with them that the fast path really serves captures).
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Captures served by the fast unwinder.
    pub fast: u64,
    /// Captures the fast unwinder handed back to libgcc.
    pub fallback: u64,
    /// Module-list refreshes done.
    pub refreshes: u64,
    /// Modules in the current snapshot.
    pub modules: u64,
}

/// Other architectures: the caller always uses libgcc.
#[cfg(not(target_arch = "x86_64"))]
pub fn capture_from(
    _regs: Regs,
    _out: &mut [usize],
    _own: impl Fn(usize) -> bool,
) -> Option<usize> {
    None
}

/// Other architectures: no start-up frames are learned.
#[cfg(not(target_arch = "x86_64"))]
pub fn is_known_startup(_ra: usize) -> bool {
    false
}

/// Other architectures: nothing to prepare.
#[cfg(not(target_arch = "x86_64"))]
pub fn prepare() {}

/// Other architectures: no counters.
#[cfg(not(target_arch = "x86_64"))]
#[allow(dead_code)]
pub fn stats() -> Stats {
    Stats::default()
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::Stats;
    use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
    use framehop::{
        ExplicitModuleSectionInfo, FrameAddress, Module, MustNotAllocateDuringUnwind, Unwinder,
    };
    use std::cell::Cell;
    use std::ffi::c_void;
    use std::ptr::null_mut;
    use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

    /// Section bytes inside a loaded module; valid while the module stays loaded, which every
    /// use checks first (see `Walk::validate`).
    type Bytes = &'static [u8];
    type Native = UnwinderX86_64<Bytes, MustNotAllocateDuringUnwind>;
    type Cache = CacheX86_64<MustNotAllocateDuringUnwind>;

    /// Cache sets in the pool. A capture holds one for ≈ 0.1 µs, so only captures running at
    /// the same instant compete (on the 2-core benchmark box 8 busy threads never exhausted
    /// 4); a capture that finds them all taken uses libgcc. Each set is ≈ 72 KiB resident
    /// (4 × 16 KiB of framehop cache, 8 KiB of tags), allocated at load time: 4 sets keep
    /// fdguard's fixed memory under 300 KiB.
    const POOL: usize = 4;
    /// framehop's rule cache is direct-mapped: 509 entries indexed by `address % 509`
    /// (framehop rule_cache.rs, CACHE_ENTRY_COUNT). Two hot return addresses with the same
    /// index evict each other on every capture, and each miss re-parses the FDE (≈ 1 µs): the
    /// live-connections workload hit exactly that (4 misses per connection). [`Ways`] turns
    /// `WAYS` such caches into one set-associative cache. If framehop changes its size, only
    /// the hit rate suffers.
    const SETS: usize = 509;
    const WAYS: usize = 4;
    /// Modules validated per walk without asking the loader again (a stack crosses a handful).
    const VALIDATED: usize = 8;
    /// A miss (frame in an unknown module) refreshes the module list only every this many
    /// misses: a program that keeps loading libraries, or that runs code in memory no module
    /// maps, cannot make every capture rescan the loader's list.
    pub(super) const REFRESH_EVERY: u64 = 64;
    /// Refreshes ever done; each leaks its predecessor's few KiB (see module docs).
    pub(super) const MAX_REFRESHES: u64 = 64;

    /// `struct dl_find_object` (glibc ≥ 2.35, <dlfcn.h>, x86-64 layout).
    #[repr(C)]
    struct DlFindObject {
        flags: u64,
        map_start: *mut c_void,
        map_end: *mut c_void,
        link_map: *mut c_void,
        eh_frame: *mut c_void,
        reserved: [u64; 7],
    }

    type DlFindObjectFn = unsafe extern "C" fn(*mut c_void, *mut DlFindObject) -> libc::c_int;

    /// What every capture reads, set at prepare time (and `snapshot` on a refresh), on cache
    /// lines of its own so no counter written by other threads shares them (see
    /// capture.rs `Settings`).
    #[repr(align(128))]
    struct Shared {
        /// `_dl_find_object`, resolved at prepare time (absent before glibc 2.35: then the
        /// fast unwinder stays off).
        dl_find_object: AtomicUsize,
        /// The registered modules.
        snapshot: AtomicPtr<Snapshot>,
        /// The main thread's stack `[main_low, main_top)`, read at prepare time
        /// (pthread_getattr_np reads /proc/self/maps for the main thread: never on the hot
        /// path).
        main_low: AtomicUsize,
        main_top: AtomicUsize,
        /// Largest distance from a thread's stack pointer up to its thread descriptor that
        /// we trust as one stack (see `stack_top`): the default thread stack size, at least
        /// 8 MiB.
        max_depth_bytes: AtomicUsize,
        /// The executable's entry point (`AT_ENTRY`): `_start` returns a few bytes after it.
        entry: AtomicUsize,
    }

    static SHARED: Shared = Shared {
        dl_find_object: AtomicUsize::new(0),
        snapshot: AtomicPtr::new(null_mut()),
        main_low: AtomicUsize::new(0),
        main_top: AtomicUsize::new(0),
        max_depth_bytes: AtomicUsize::new(8 << 20),
        entry: AtomicUsize::new(0),
    };

    /// Where a thread's own frames end: the innermost start-up frame of each kind of thread
    /// seen so far (the return address in `__libc_start_call_main` below `main`, the one in
    /// `start_thread` below a thread's function). They are learned from complete walks
    /// ([`learn_startup`]); a later walk stops when it reaches one, because everything beyond
    /// is start-up code the report cuts anyway (symbolize.rs): three or four frames, a third
    /// of a typical capture, never walked again. Zero is "empty"; a return address is never 0.
    static STARTUP: [AtomicUsize; STARTUP_KINDS] = [const { AtomicUsize::new(0) }; STARTUP_KINDS];
    /// Distinct start-up return addresses kept (main thread, pthreads, a few spares).
    const STARTUP_KINDS: usize = 8;
    /// `_start` calls `__libc_start_main` within its first few dozen bytes.
    const START_LEN: usize = 64;

    /// True for a learned start-up return address (see [`STARTUP`]). Async-signal-safe.
    #[inline]
    pub fn is_known_startup(ra: usize) -> bool {
        STARTUP.iter().any(|s| s.load(Ordering::Relaxed) == ra)
    }

    /// True for a return address that is start-up code when it sits at the outer end of a
    /// complete stack: anywhere in the C library, or `_start` in the executable (the same
    /// rule as the report's cut in symbolize.rs).
    fn startup_code(snapshot: &Snapshot, ra: usize) -> bool {
        let entry = SHARED.entry.load(Ordering::Relaxed);
        (snapshot.libc_text.0 <= ra && ra < snapshot.libc_text.1)
            || (entry != 0 && ra > entry && ra - entry < START_LEN)
    }

    /// A walk reached the real end of its stack with `out` holding every return address: cuts
    /// the start-up frames at its outer end, remembers the innermost of them, and returns the
    /// new length. At least one frame of the thread's own code stays.
    fn learn_startup(snapshot: &Snapshot, out: &[usize]) -> usize {
        let mut k = out.len();
        while k > 1 && startup_code(snapshot, out[k - 1]) {
            k -= 1;
        }
        if k == out.len() {
            return k;
        }
        let ra = out[k];
        for slot in &STARTUP {
            match slot.compare_exchange(0, ra, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break,
                Err(existing) if existing == ra => break,
                Err(_) => continue,
            }
        }
        k
    }

    /// What the loader says about the object containing an address. Two keys are equal only
    /// if they describe the same mapping of the same object.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    struct ModuleKey {
        start: usize,
        end: usize,
        link_map: usize,
        eh_frame_hdr: usize,
    }

    fn find_object(address: usize) -> Option<ModuleKey> {
        let f = SHARED.dl_find_object.load(Ordering::Relaxed);
        if f == 0 {
            return None;
        }
        // SAFETY: `f` was returned by dlsym for `_dl_find_object`, whose prototype is
        // DlFindObjectFn; ld.so is never unloaded.
        let f: DlFindObjectFn = unsafe { std::mem::transmute::<usize, DlFindObjectFn>(f) };
        let mut out = DlFindObject {
            flags: 0,
            map_start: null_mut(),
            map_end: null_mut(),
            link_map: null_mut(),
            eh_frame: null_mut(),
            reserved: [0; 7],
        };
        // SAFETY: `_dl_find_object` accepts any address and writes `out` on success; it takes
        // no lock and is async-signal-safe (glibc manual, "Dynamic Linker Introspection").
        if unsafe { f(address as *mut c_void, &mut out) } != 0 {
            return None;
        }
        Some(ModuleKey {
            start: out.map_start as usize,
            end: out.map_end as usize,
            link_map: out.link_map as usize,
            eh_frame_hdr: out.eh_frame as usize,
        })
    }

    /// The registered modules: framehop's unwinder plus the loader's identity of each module,
    /// sorted by start address, with the same ranges.
    struct Snapshot {
        unwinder: Native,
        keys: Vec<ModuleKey>,
        /// The C library's code segment: the only place a signal trampoline can be, and
        /// readable (we compare the bytes at a return address there).
        libc_text: (usize, usize),
    }

    impl Snapshot {
        fn knows(&self, key: &ModuleKey) -> bool {
            self.keys
                .binary_search_by_key(&key.start, |k| k.start)
                .is_ok_and(|i| self.keys[i] == *key)
        }
    }

    /// `WAYS` framehop caches plus which return address each one holds at each index, so an
    /// address is looked up in the cache that has it, and a new one goes to a free or the
    /// next way of its set. Tags are the address's low 32 bits (16 bytes a set, 4 sets to a
    /// cache line: the tag line is one of the two lines a frame costs). A tag clash between
    /// two addresses only costs a framehop miss, never a wrong rule: framehop checks the full
    /// address itself.
    struct Ways {
        caches: [Cache; WAYS],
        tags: [[u32; WAYS]; SETS],
        victim: [u8; SETS],
    }

    impl Ways {
        fn new() -> Box<Ways> {
            Box::new(Ways {
                caches: std::array::from_fn(|_| Cache::new_in()),
                tags: [[0; WAYS]; SETS],
                victim: [0; SETS],
            })
        }

        /// The cache to look `address` up in.
        #[inline]
        fn cache_for(&mut self, address: u64) -> &mut Cache {
            let set = (address % SETS as u64) as usize;
            let tag = (address as u32) | 1;
            let tags = &mut self.tags[set];
            let way = match tags.iter().position(|&t| t == tag) {
                Some(way) => way,
                None => {
                    let way = match tags.iter().position(|&t| t == 0) {
                        Some(free) => free,
                        None => {
                            let v = self.victim[set] as usize % WAYS;
                            self.victim[set] = ((v + 1) % WAYS) as u8;
                            v
                        }
                    };
                    tags[way] = tag;
                    way
                }
            };
            &mut self.caches[way]
        }
    }

    /// One cache set per 128 bytes (a line and its prefetch partner), so cores taking
    /// different sets never share a line.
    #[repr(align(128))]
    struct Slot {
        ways: AtomicPtr<Ways>,
        /// Captures served with this set; only its holder writes it (no shared counter on
        /// the hot path).
        served: AtomicU64,
    }

    static CACHES: [Slot; POOL] = [const {
        Slot {
            ways: AtomicPtr::new(null_mut()),
            served: AtomicU64::new(0),
        }
    }; POOL];

    /// Who refreshes now: 0 = nobody, else the pid of the refresher (a fork child that
    /// inherits a held lock sees a foreign pid and takes it over).
    static REFRESH_OWNER: AtomicI32 = AtomicI32::new(0);
    static MISSES: AtomicU64 = AtomicU64::new(0);
    static REFRESHES: AtomicU64 = AtomicU64::new(0);
    static FALLBACK: AtomicU64 = AtomicU64::new(0);

    /// Counters so far.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn stats() -> Stats {
        let snapshot = SHARED.snapshot.load(Ordering::Acquire);
        Stats {
            fast: CACHES
                .iter()
                .map(|s| s.served.load(Ordering::Relaxed))
                .sum(),
            fallback: FALLBACK.load(Ordering::Relaxed),
            refreshes: REFRESHES.load(Ordering::Relaxed),
            modules: if snapshot.is_null() {
                0
            } else {
                // SAFETY: snapshots are never freed.
                unsafe { (*snapshot).keys.len() as u64 }
            },
        }
    }

    /// Sets up the fast unwinder: resolves `_dl_find_object`, reads the main thread's stack
    /// bounds, registers every loaded module, and fills the cache pool. Constructor time (may
    /// allocate and read /proc); calling it again is harmless.
    pub fn prepare() {
        static PREPARED: std::sync::Once = std::sync::Once::new();
        PREPARED.call_once(|| {
            // SAFETY: dlsym with a NUL-terminated name; RTLD_DEFAULT searches the global scope.
            let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_dl_find_object".as_ptr()) };
            if f.is_null() {
                return; // glibc < 2.35: libgcc serves every capture
            }
            SHARED.dl_find_object.store(f as usize, Ordering::Relaxed);
            // SAFETY: getauxval has no preconditions (0 when the entry is unknown).
            let entry = unsafe { libc::getauxval(libc::AT_ENTRY) } as usize;
            SHARED.entry.store(entry, Ordering::Relaxed);
            read_stack_bounds();
            for slot in &CACHES {
                slot.ways
                    .store(Box::into_raw(Ways::new()), Ordering::Release);
            }
            refresh_now();
        });
    }

    unsafe extern "C" {
        /// glibc ≥ 2.18 (not in the libc crate): the attributes new threads get by default.
        fn pthread_getattr_default_np(attr: *mut libc::pthread_attr_t) -> libc::c_int;
    }

    fn read_stack_bounds() {
        // SAFETY: pthread_attr_t is plain data; the attr functions get valid pointers and the
        // attr is destroyed after use.
        unsafe {
            let mut attr: libc::pthread_attr_t = std::mem::zeroed();
            if pthread_getattr_default_np(&mut attr) == 0 {
                let mut size: libc::size_t = 0;
                if libc::pthread_attr_getstacksize(&attr, &mut size) == 0 {
                    SHARED
                        .max_depth_bytes
                        .store(size.max(8 << 20), Ordering::Relaxed);
                }
                libc::pthread_attr_destroy(&mut attr);
            }
            // Only the main thread's own stack is recorded: other threads are bounded by
            // their thread descriptor (see `stack_top`).
            if libc::syscall(libc::SYS_gettid) as i32 != libc::getpid() {
                return;
            }
            let mut attr: libc::pthread_attr_t = std::mem::zeroed();
            if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) == 0 {
                let mut addr: *mut c_void = null_mut();
                let mut size: libc::size_t = 0;
                if libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0 {
                    SHARED.main_low.store(addr as usize, Ordering::Relaxed);
                    SHARED
                        .main_top
                        .store(addr as usize + size, Ordering::Relaxed);
                }
                libc::pthread_attr_destroy(&mut attr);
            }
        }
    }

    /// The end of the stack that `sp` is on, if we can tell without a lock or a system call.
    ///
    /// glibc (and musl) place a thread's descriptor — what `pthread_self()` returns — at the
    /// top of the thread's stack mapping, above its static TLS; everything from the stack
    /// pointer up to it is that one read-write mapping (nptl/allocatestack.c, also for stacks
    /// given with pthread_attr_setstack). The main thread's descriptor lives elsewhere (below
    /// the stack), so its bounds come from prepare time. A stack pointer on anything else — a
    /// sigaltstack, a coroutine stack far from the descriptor — gives `None` (libgcc then).
    fn stack_top(sp: usize) -> Option<usize> {
        // SAFETY: pthread_self has no preconditions; it reads the thread pointer.
        let descriptor = unsafe { libc::pthread_self() } as usize;
        if descriptor > sp && descriptor - sp <= SHARED.max_depth_bytes.load(Ordering::Relaxed) {
            return Some(descriptor);
        }
        let (low, top) = (
            SHARED.main_low.load(Ordering::Relaxed),
            SHARED.main_top.load(Ordering::Relaxed),
        );
        (low <= sp && sp < top).then_some(top)
    }

    /// Takes a cache set from the pool, starting at the slot of the CPU we run on: threads
    /// on one core reuse one set (warm in that core's cache) and cores do not pass sets back
    /// and forth. With a slot per thread instead, 8 threads on 2 cores made a capture three
    /// times dearer (the sets' lines moved between cores).
    fn take_cache() -> Option<(usize, &'static mut Ways)> {
        // SAFETY: sched_getcpu has no preconditions; glibc reads it from the rseq area (or
        // the vDSO), no lock, async-signal-safe. -1 (unknown) maps to slot 0.
        let cpu = unsafe { libc::sched_getcpu() };
        let first = usize::try_from(cpu).unwrap_or(0) % POOL;
        for i in 0..POOL {
            let index = (first + i) % POOL;
            let slot = &CACHES[index].ways;
            if slot.load(Ordering::Relaxed).is_null() {
                continue;
            }
            let ways = slot.swap(null_mut(), Ordering::Acquire);
            if !ways.is_null() {
                // SAFETY: the swap made us the only holder of this pool entry (a leaked Box)
                // until `put_cache` stores it back.
                return Some((index, unsafe { &mut *ways }));
            }
        }
        None
    }

    fn put_cache(index: usize, ways: &'static mut Ways) {
        CACHES[index].ways.store(ways, Ordering::Release);
    }

    /// Why a walk could not finish.
    enum Stop {
        /// A frame lies in a module the snapshot does not have: refresh and walk again.
        UnknownModule,
        /// A recorded chain led to a null return address.
        Empty,
        /// The stack crosses a signal frame (a socket created in a signal handler): libgcc
        /// knows how to step over it (the interrupted registers are in the frame's ucontext),
        /// framehop does not.
        SignalFrame,
    }

    /// One walk's module checks: the loader is asked once per module per walk.
    struct Walk<'a> {
        snapshot: &'a Snapshot,
        /// The module the previous frame was in (most frames follow one in the same module).
        last: (usize, usize),
        validated: [(usize, usize); VALIDATED],
        count: usize,
    }

    impl Walk<'_> {
        /// Ok(true): `address` is in a registered, still-loaded module; Ok(false): it is in
        /// no module at all (JIT code, garbage): stop the walk there.
        #[inline]
        fn validate(&mut self, address: usize) -> Result<bool, Stop> {
            if self.last.0 <= address && address < self.last.1 {
                return Ok(true);
            }
            self.validate_slow(address)
        }

        fn validate_slow(&mut self, address: usize) -> Result<bool, Stop> {
            if let Some(&range) = self.validated[..self.count]
                .iter()
                .find(|&&(lo, hi)| lo <= address && address < hi)
            {
                self.last = range;
                return Ok(true);
            }
            let Some(key) = find_object(address) else {
                return Ok(false);
            };
            if !self.snapshot.knows(&key) {
                return Err(Stop::UnknownModule);
            }
            self.last = (key.start, key.end);
            if self.count < VALIDATED {
                self.validated[self.count] = self.last;
                self.count += 1;
            }
            Ok(true)
        }
    }

    /// The bytes of glibc's x86-64 signal trampoline `__restore_rt`: `mov $15, %rax; syscall`
    /// (libgcc's linux-unwind.h recognises signal frames by the same bytes).
    const RESTORE_RT: [u8; 9] = [0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05];

    fn is_signal_trampoline(address: usize) -> bool {
        // Only when the 9 bytes sit on the page the address is on: that page holds code we
        // are returning into, so it is mapped and readable.
        if (address & 4095) + RESTORE_RT.len() > 4096 {
            return false;
        }
        // SAFETY: the caller checked that `address` lies in the C library's code segment
        // (mapped and readable), and the 9 bytes stay on its page (checked above).
        let bytes = unsafe { std::ptr::read_volatile(address as *const [u8; 9]) };
        bytes == RESTORE_RT
    }

    /// Own frames between `capture` and the hook's caller, unwound once and then skipped.
    ///
    /// Our frames at the top of every capture (capture, capture_stack, the bookkeeping
    /// closure, the hook) are static code: for one chain of our return addresses their sizes,
    /// and where each saved the caller's rbp, are fixed offsets from the stack pointer at the
    /// capture site. So the first walk through a chain records those offsets; later captures
    /// check that the same return addresses sit at the same offsets and jump straight to the
    /// host's frame. That skips about half the frames of a short C stack (4 of 9 in the churn
    /// workload). A chain is recorded only when every step was stack-pointer relative (no
    /// frame-pointer rule) and rbp was either kept or reloaded from one slot, and is keyed by
    /// the capture site and the stack pointer's alignment (so a function that realigns its
    /// stack can never be replayed at another alignment).
    mod prefix {
        use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

        /// Distinct chains: hooks × 4 alignments of the host's stack pointer (mod 64).
        const CHAINS: usize = 32;
        /// Own frames in a chain we remember (the hooks have 3 to 5).
        pub(super) const FRAMES: usize = 8;
        const EMPTY: u32 = 0;
        const WRITING: u32 = 1;
        const READY: u32 = 2;
        /// `bp_slot` value: rbp is the one at the capture site.
        const KEPT: usize = usize::MAX;

        /// Aligned so a chain never shares a cache line with anything written later.
        #[repr(align(128))]
        struct Chain {
            state: AtomicU32,
            ip: AtomicUsize,
            align: AtomicUsize,
            len: AtomicUsize,
            slots: [AtomicUsize; FRAMES],
            addresses: [AtomicUsize; FRAMES],
            host_slot: AtomicUsize,
            host_sp: AtomicUsize,
            bp_slot: AtomicUsize,
        }

        static TABLE: [Chain; CHAINS] = [const {
            Chain {
                state: AtomicU32::new(EMPTY),
                ip: AtomicUsize::new(0),
                align: AtomicUsize::new(0),
                len: AtomicUsize::new(0),
                slots: [const { AtomicUsize::new(0) }; FRAMES],
                addresses: [const { AtomicUsize::new(0) }; FRAMES],
                host_slot: AtomicUsize::new(0),
                host_sp: AtomicUsize::new(0),
                bp_slot: AtomicUsize::new(0),
            }
        }; CHAINS];

        /// A recorded chain's facts, as offsets from the capture site's stack pointer.
        #[derive(Clone, Copy)]
        pub(super) struct Record {
            pub ip: usize,
            pub sp: usize,
            pub valid: bool,
            pub len: usize,
            pub slots: [usize; FRAMES],
            pub addresses: [usize; FRAMES],
            pub bp_slot: usize,
        }

        impl Record {
            pub fn new(ip: usize, sp: usize) -> Record {
                Record {
                    ip,
                    sp,
                    valid: true,
                    len: 0,
                    slots: [0; FRAMES],
                    addresses: [0; FRAMES],
                    bp_slot: KEPT,
                }
            }

            /// One unwinding step from (`old_sp`, `old_bp`) to (`new_sp`, `new_bp`), which
            /// read `reads` (address, value) and found return address `ra`.
            pub fn step(
                &mut self,
                (old_sp, old_bp): (usize, usize),
                (new_sp, new_bp): (usize, usize),
                ra: usize,
                reads: &[(usize, u64)],
            ) {
                let ra_slot = new_sp.wrapping_sub(8);
                // A frame-pointer rule (CFA = rbp + 16) depends on rbp, not on the offsets.
                let maybe_frame_pointer = old_bp != 0 && new_sp == old_bp.wrapping_add(16);
                let ra_read = reads.iter().any(|&(a, v)| a == ra_slot && v as usize == ra);
                let mut others = reads.iter().filter(|&&(a, _)| a != ra_slot);
                let bp_ok = match (others.next(), others.next()) {
                    (None, _) => new_bp == old_bp,
                    (Some(&(a, v)), None) if v as usize == new_bp => {
                        self.bp_slot = a - self.sp;
                        true
                    }
                    _ => false,
                };
                if maybe_frame_pointer || !ra_read || !bp_ok || new_sp <= old_sp {
                    self.valid = false;
                }
            }

            /// `ra`, found at `slot`, is still one of ours.
            pub fn own(&mut self, slot: usize, ra: usize) {
                if self.len == FRAMES {
                    self.valid = false;
                    return;
                }
                self.slots[self.len] = slot - self.sp;
                self.addresses[self.len] = ra;
                self.len += 1;
            }

            /// The first host frame: `host_sp` after the last own frame. Publishes the chain.
            pub fn finish(&self, host_sp: usize) {
                if !self.valid || TABLE.iter().any(|c| self.same_key(c)) {
                    return;
                }
                for chain in &TABLE {
                    if chain
                        .state
                        .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Relaxed)
                        .is_err()
                    {
                        continue;
                    }
                    chain.ip.store(self.ip, Ordering::Relaxed);
                    chain.align.store(self.sp % 64, Ordering::Relaxed);
                    chain.len.store(self.len, Ordering::Relaxed);
                    for i in 0..self.len {
                        chain.slots[i].store(self.slots[i], Ordering::Relaxed);
                        chain.addresses[i].store(self.addresses[i], Ordering::Relaxed);
                    }
                    chain
                        .host_slot
                        .store(host_sp - 8 - self.sp, Ordering::Relaxed);
                    chain.host_sp.store(host_sp - self.sp, Ordering::Relaxed);
                    chain.bp_slot.store(self.bp_slot, Ordering::Relaxed);
                    chain.state.store(READY, Ordering::Release);
                    return;
                }
            }

            fn same_key(&self, chain: &Chain) -> bool {
                chain.state.load(Ordering::Acquire) == READY
                    && chain.ip.load(Ordering::Relaxed) == self.ip
                    && chain.align.load(Ordering::Relaxed) == self.sp % 64
                    && chain.len.load(Ordering::Relaxed) == self.len
                    && (0..self.len).all(|i| {
                        chain.slots[i].load(Ordering::Relaxed) == self.slots[i]
                            && chain.addresses[i].load(Ordering::Relaxed) == self.addresses[i]
                    })
            }
        }

        /// The host frame (return address, sp, bp) for a capture at (`ip`, `sp`, `bp`) whose
        /// own frames match a recorded chain.
        pub(super) fn replay(
            (ip, sp, bp): (usize, usize, usize),
            read: &mut impl FnMut(u64) -> Result<u64, ()>,
        ) -> Option<(usize, usize, usize)> {
            let mut read = |offset: usize| read((sp + offset) as u64).ok().map(|v| v as usize);
            'chains: for chain in &TABLE {
                if chain.state.load(Ordering::Acquire) != READY
                    || chain.ip.load(Ordering::Relaxed) != ip
                    || chain.align.load(Ordering::Relaxed) != sp % 64
                {
                    continue;
                }
                let len = chain.len.load(Ordering::Relaxed).min(FRAMES);
                for i in 0..len {
                    let slot = chain.slots[i].load(Ordering::Relaxed);
                    if read(slot) != Some(chain.addresses[i].load(Ordering::Relaxed)) {
                        continue 'chains;
                    }
                }
                let ra = read(chain.host_slot.load(Ordering::Relaxed))?;
                let bp = match chain.bp_slot.load(Ordering::Relaxed) {
                    KEPT => bp,
                    slot => read(slot)?,
                };
                return Some((ra, sp + chain.host_sp.load(Ordering::Relaxed), bp));
            }
            None
        }
    }

    /// Walks from (`ip`, `sp`, `bp`), skipping leading frames for which `own` is true, and
    /// writes up to `out.len()` return addresses.
    fn walk(
        snapshot: &Snapshot,
        ways: &mut Ways,
        (ip, sp, bp): (usize, usize, usize),
        top: usize,
        out: &mut [usize],
        own: &impl Fn(usize) -> bool,
    ) -> Result<usize, Stop> {
        // Reads made by the current step, while the own prefix is being recorded.
        let log: Cell<[(usize, u64); 4]> = Cell::new([(0, 0); 4]);
        let logged = Cell::new(0usize);
        let logging = Cell::new(false);
        let mut read_stack = |address: u64| -> Result<u64, ()> {
            let address = address as usize;
            if address < sp || address >= top.saturating_sub(7) || !address.is_multiple_of(8) {
                return Err(());
            }
            // SAFETY: `[sp, top)` is the live, mapped stack of this thread (`stack_top`),
            // and the 8 aligned bytes read lie inside it (checked above). Volatile: these are
            // other frames' slots, not objects this function owns.
            let value = unsafe { std::ptr::read_volatile(address as *const u64) };
            if logging.get() {
                let n = logged.get();
                if n < 4 {
                    let mut entries = log.get();
                    entries[n] = (address, value);
                    log.set(entries);
                }
                logged.set(n + 1);
            }
            Ok(value)
        };
        let mut walk = Walk {
            snapshot,
            last: (0, 0),
            validated: [(0, 0); VALIDATED],
            count: 0,
        };
        if out.is_empty() {
            return Ok(0);
        }
        let mut n = 0;
        let mut regs;
        let mut frame;
        let mut record = None;
        match prefix::replay((ip, sp, bp), &mut read_stack) {
            Some((ra, host_sp, host_bp)) => {
                out[0] = ra;
                n = 1;
                regs = UnwindRegsX86_64::new(ra as u64, host_sp as u64, host_bp as u64);
                frame = FrameAddress::from_return_address(ra as u64).ok_or(Stop::Empty)?;
            }
            None => {
                regs = UnwindRegsX86_64::new(ip as u64, sp as u64, bp as u64);
                frame = FrameAddress::from_instruction_pointer(ip as u64);
                record = Some(prefix::Record::new(ip, sp));
                logging.set(true);
            }
        }
        // Set when the unwinder reports the outermost frame (framehop: no return address,
        // e.g. `_start`'s and `clone3`'s CFI mark it undefined), not a failure to go on.
        let mut reached_end = false;
        while n < out.len() {
            let lookup = frame.address_for_lookup() as usize;
            if !own(lookup) && !walk.validate(lookup)? {
                break;
            }
            let before = (regs.sp() as usize, regs.bp() as usize);
            logged.set(0);
            let next = match snapshot.unwinder.unwind_frame(
                frame,
                &mut regs,
                ways.cache_for(lookup as u64),
                &mut read_stack,
            ) {
                Ok(Some(next)) => next,
                Ok(None) => {
                    reached_end = true;
                    break;
                }
                Err(_) => break,
            };
            let Some(next_frame) = FrameAddress::from_return_address(next) else {
                break;
            };
            let next = next as usize;
            let after = (regs.sp() as usize, regs.bp() as usize);
            if let Some(record) = record.as_mut() {
                let count = logged.get();
                let reads = log.get();
                if count > reads.len() {
                    record.valid = false;
                }
                record.step(before, after, next, &reads[..count.min(reads.len())]);
            }
            if n == 0 && own(next) {
                if let Some(record) = record.as_mut() {
                    record.own(after.0 - 8, next);
                }
                frame = next_frame;
                continue; // still inside fdguard
            }
            if let Some(record) = record.take() {
                logging.set(false);
                record.finish(after.0);
            }
            if n > 0 && is_known_startup(next) {
                return Ok(n); // the rest is this thread's start-up code
            }
            if snapshot.libc_text.0 <= next
                && next < snapshot.libc_text.1
                && is_signal_trampoline(next)
            {
                return Err(Stop::SignalFrame);
            }
            out[n] = next;
            n += 1;
            frame = next_frame;
        }
        if reached_end {
            n = learn_startup(snapshot, &out[..n]);
        }
        Ok(n)
    }

    /// Captures the calling stack into `out` (tests: the capture starts in the caller).
    #[cfg(test)]
    #[inline(never)]
    pub fn capture(out: &mut [usize], own: impl Fn(usize) -> bool) -> Option<usize> {
        capture_from(super::Regs::here(), out, own)
    }

    /// Captures the stack that `regs` were read on into `out` (return addresses, innermost
    /// first, leading frames for which `own` is true skipped). The frames `regs` describe must
    /// stay as they are until this returns (the caller waits for it, possibly running this on
    /// another stack: see platform::stack). `None`: the fast unwinder cannot serve this
    /// capture (not prepared, no free cache, unknown stack, an unknown module that could not
    /// be registered now) and the caller should use libgcc.
    pub fn capture_from(
        regs: super::Regs,
        out: &mut [usize],
        own: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let result = capture_with((regs.ip, regs.sp, regs.bp), out, &own);
        if result.is_none() {
            FALLBACK.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn capture_with(
        regs: (usize, usize, usize),
        out: &mut [usize],
        own: &impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let top = stack_top(regs.1)?;
        let (index, ways) = take_cache()?;
        let mut result = None;
        for attempt in 0..2 {
            let snapshot = SHARED.snapshot.load(Ordering::Acquire);
            let walked = if snapshot.is_null() {
                // The snapshot taken at load time failed: as good as an unknown module.
                Err(Stop::UnknownModule)
            } else {
                // SAFETY: snapshots are leaked, never freed: the reference stays valid.
                walk(unsafe { &*snapshot }, ways, regs, top, out, own)
            };
            match walked {
                Ok(n) => {
                    let served = &CACHES[index].served;
                    served.store(served.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                    result = Some(n);
                    break;
                }
                Err(Stop::Empty) => {
                    result = Some(0);
                    break;
                }
                Err(Stop::SignalFrame) => break,
                Err(Stop::UnknownModule) => {
                    if attempt == 1 || !refresh() {
                        break;
                    }
                }
            }
        }
        put_cache(index, ways);
        result
    }

    /// A capture met an unknown module: registers the current module list, unless another
    /// thread is doing it, the rate limit says not yet, or the refresh budget is spent.
    /// Returns whether a new snapshot is in place.
    fn refresh() -> bool {
        let misses = MISSES.fetch_add(1, Ordering::Relaxed);
        if !misses.is_multiple_of(REFRESH_EVERY)
            || REFRESHES.load(Ordering::Relaxed) >= MAX_REFRESHES
        {
            return false;
        }
        refresh_now()
    }

    fn refresh_now() -> bool {
        // SAFETY: getpid has no preconditions (a system call: this is the slow path).
        let pid = unsafe { libc::getpid() };
        let owner = REFRESH_OWNER.load(Ordering::Relaxed);
        // A held lock whose owner is not this process was inherited through fork from a
        // thread that does not exist here: take it over.
        let expected = if owner != 0 && owner != pid { owner } else { 0 };
        if REFRESH_OWNER
            .compare_exchange(expected, pid, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        let done = match build_snapshot() {
            Some(snapshot) => {
                SHARED
                    .snapshot
                    .store(Box::into_raw(Box::new(snapshot)), Ordering::Release);
                REFRESHES.fetch_add(1, Ordering::Relaxed);
                // A module loaded since the last look may be libpython (an embedding program
                // that dlopens it): look for CPython again (nothing if found or refused).
                crate::track::python::detect();
                true
            }
            None => false,
        };
        REFRESH_OWNER.store(0, Ordering::Release);
        done
    }

    /// One module as `dl_iterate_phdr` reports it.
    struct Loaded {
        bias: usize,
        /// (p_vaddr, p_filesz) of each PT_LOAD.
        loads: Vec<(usize, usize)>,
        /// (p_vaddr, p_filesz) of the executable PT_LOAD.
        text: Option<(usize, usize)>,
        /// (p_vaddr, p_memsz) of PT_GNU_EH_FRAME.
        eh_frame_hdr: Option<(usize, usize)>,
    }

    fn loaded_modules() -> Vec<Loaded> {
        unsafe extern "C" fn each(
            info: *mut libc::dl_phdr_info,
            _size: libc::size_t,
            data: *mut c_void,
        ) -> libc::c_int {
            // SAFETY: dl_iterate_phdr passes a valid info pointer and our `data` pointer.
            let (info, list) = unsafe { (&*info, &mut *data.cast::<Vec<Loaded>>()) };
            let mut module = Loaded {
                bias: info.dlpi_addr as usize,
                loads: Vec::new(),
                text: None,
                eh_frame_hdr: None,
            };
            for i in 0..info.dlpi_phnum as usize {
                // SAFETY: dlpi_phdr points to dlpi_phnum program headers.
                let ph = unsafe { &*info.dlpi_phdr.add(i) };
                match ph.p_type {
                    libc::PT_LOAD => {
                        let segment = (ph.p_vaddr as usize, ph.p_filesz as usize);
                        module.loads.push(segment);
                        if ph.p_flags & libc::PF_X != 0 {
                            module.text.get_or_insert(segment);
                        }
                    }
                    libc::PT_GNU_EH_FRAME => {
                        module.eh_frame_hdr = Some((ph.p_vaddr as usize, ph.p_memsz as usize))
                    }
                    _ => {}
                }
            }
            if !module.loads.is_empty() {
                list.push(module);
            }
            0
        }
        let mut list: Vec<Loaded> = Vec::with_capacity(64);
        // SAFETY: the callback matches dl_iterate_phdr's contract and `list` outlives the call.
        unsafe { libc::dl_iterate_phdr(Some(each), (&mut list as *mut Vec<Loaded>).cast()) };
        list
    }

    /// Reads the `eh_frame_ptr` field of an `.eh_frame_hdr` (at `hdr`, in memory): the
    /// address of `.eh_frame`. Handles the encodings linkers emit (pc-relative or absolute,
    /// 4 or 8 bytes).
    pub(super) fn eh_frame_address(hdr: &[u8], hdr_address: usize) -> Option<usize> {
        const PCREL: u8 = 0x10;
        if hdr.len() < 12 || hdr[0] != 1 {
            return None;
        }
        let encoding = hdr[1];
        let field = hdr_address + 4;
        let value = match encoding & 0x0f {
            0x03 => u32::from_le_bytes(hdr[4..8].try_into().ok()?) as i64, // udata4
            0x0b => i32::from_le_bytes(hdr[4..8].try_into().ok()?) as i64, // sdata4
            0x04 | 0x0c => i64::from_le_bytes(hdr[4..12].try_into().ok()?), // (u|s)data8
            _ => return None,
        };
        match encoding & 0x70 {
            0 => Some(value as usize),
            PCREL => Some((field as i64).wrapping_add(value) as usize),
            _ => None,
        }
    }

    /// The in-memory bytes `[address, address + len)` if they lie inside one PT_LOAD's file
    /// image (the part of a segment the loader mapped from the file, always readable for the
    /// read-only segments that hold unwind data).
    fn mapped(module: &Loaded, address: usize, len: usize) -> Option<Bytes> {
        let svma = address.checked_sub(module.bias)?;
        let &(vaddr, filesz) = module
            .loads
            .iter()
            .find(|&&(vaddr, filesz)| vaddr <= svma && svma < vaddr + filesz)?;
        let len = len.min(vaddr + filesz - svma);
        // SAFETY: the range lies inside a loaded segment's file image, mapped for as long as
        // the module stays loaded (every use re-checks that with `_dl_find_object`).
        Some(unsafe { std::slice::from_raw_parts(address as *const u8, len) })
    }

    fn build_snapshot() -> Option<Snapshot> {
        let mut unwinder = Native::new();
        let mut keys = Vec::new();
        let libc_key = find_object(libc::sigaction as *const () as usize);
        let mut libc_text = (0, 0);
        for module in loaded_modules() {
            let Some(lowest) = module.loads.iter().map(|&(v, _)| v).min() else {
                continue;
            };
            let Some(key) = find_object(module.bias + lowest) else {
                continue;
            };
            if let (true, Some((vaddr, size))) = (Some(key) == libc_key, module.text) {
                libc_text = (module.bias + vaddr, module.bias + vaddr + size);
            }
            if keys.iter().any(|k: &ModuleKey| k.start == key.start) {
                continue;
            }
            let mut info = ExplicitModuleSectionInfo::<Bytes> {
                base_svma: 0,
                ..Default::default()
            };
            if let Some((hdr_vaddr, hdr_len)) = module.eh_frame_hdr {
                let hdr_address = module.bias + hdr_vaddr;
                if let Some(hdr) = mapped(&module, hdr_address, hdr_len) {
                    let eh_frame = eh_frame_address(hdr, hdr_address)
                        .and_then(|a| Some((a, mapped(&module, a, usize::MAX)?)));
                    if let Some((eh_address, eh_frame)) = eh_frame {
                        let eh_svma = (eh_address - module.bias) as u64;
                        info.eh_frame_hdr_svma =
                            Some(hdr_vaddr as u64..(hdr_vaddr + hdr.len()) as u64);
                        info.eh_frame_hdr = Some(hdr);
                        info.eh_frame_svma = Some(eh_svma..eh_svma + eh_frame.len() as u64);
                        info.eh_frame = Some(eh_frame);
                    }
                }
            }
            unwinder.add_module(Module::new(
                String::new(),
                key.start as u64..key.end as u64,
                module.bias as u64,
                info,
            ));
            keys.push(key);
        }
        keys.sort_by_key(|k| k.start);
        (!keys.is_empty()).then_some(Snapshot {
            unwinder,
            keys,
            libc_text,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[inline(never)]
        fn fast(depth: usize) -> Vec<usize> {
            prepare();
            let mut buf = vec![0usize; depth];
            let n = capture(&mut buf, |_| false).expect("fast unwinder serves the test thread");
            buf.truncate(n);
            buf
        }

        #[inline(never)]
        fn slow(depth: usize) -> Vec<usize> {
            let mut frames = Vec::new();
            backtrace::trace(|f| {
                frames.push(f.ip() as usize);
                frames.len() < depth
            });
            frames
        }

        #[inline(never)]
        fn both(depth: usize) -> (Vec<usize>, Vec<usize>) {
            let f = fast(depth);
            let s = slow(depth);
            std::hint::black_box((f, s))
        }

        #[test]
        fn fast_stack_matches_libgcc_above_the_capturing_frames() {
            // The first capture walks every frame and records the capturing frames' layout;
            // the later ones replay it (`prefix`): all must agree with libgcc.
            let mut first = None;
            for _ in 0..3 {
                let (fast, slow) = both(64);
                // Both start inside their own machinery; from the first frame they share (the
                // return address into `both`) on, the stacks must be identical.
                let start = fast
                    .iter()
                    .position(|ip| slow.contains(ip))
                    .expect("a common frame");
                let from = slow.iter().position(|ip| *ip == fast[start]).unwrap();
                let common = (fast.len() - start).min(slow.len() - from);
                assert!(common >= 3, "fast {fast:x?}\nslow {slow:x?}");
                assert_eq!(
                    fast[start..start + common],
                    slow[from..from + common],
                    "fast {fast:x?}\nslow {slow:x?}"
                );
                assert_eq!(
                    *first.get_or_insert(fast.clone()),
                    fast,
                    "replayed == walked"
                );
            }
        }

        #[test]
        fn start_up_frames_are_cut_learned_and_not_walked_again() {
            // On a thread of its own (start_thread, clone3 below the closure), twice: the first
            // walk reaches the end and learns where start-up begins, the second stops there.
            let (first, second, slow) = std::thread::spawn(|| {
                let first = both(64);
                let second = both(64);
                (first.0, second.0, first.1)
            })
            .join()
            .unwrap();
            // SAFETY: snapshots are never freed.
            let snapshot = unsafe { &*SHARED.snapshot.load(Ordering::Acquire) };
            // The two captures differ only in the return address into the closure (two call
            // sites); beyond it, the learned stop cut exactly what the first walk cut.
            assert_eq!(first.len(), second.len(), "{first:x?}\n{second:x?}");
            let differing = first.iter().zip(&second).filter(|(a, b)| a != b).count();
            assert_eq!(differing, 1, "{first:x?}\n{second:x?}");
            let last = *first.last().unwrap();
            assert!(!startup_code(snapshot, last), "{first:x?}");
            assert!(
                is_known_startup_after(&slow, last),
                "{first:x?}\nslow {slow:x?}"
            );
            // libgcc walks on through start_thread and clone3: all of it start-up code.
            let at = slow.iter().position(|ip| *ip == last).unwrap();
            assert!(slow.len() > at + 1, "slow {slow:x?}");
            assert!(
                slow[at + 1..]
                    .iter()
                    .filter(|ip| **ip != 0) // libgcc's end marker
                    .all(|ip| startup_code(snapshot, *ip)),
                "slow {slow:x?}"
            );
        }

        /// The frame after `last` in `slow` is a learned start-up return address.
        fn is_known_startup_after(slow: &[usize], last: usize) -> bool {
            slow.iter()
                .position(|ip| *ip == last)
                .and_then(|at| slow.get(at + 1))
                .is_some_and(|next| is_known_startup(*next))
        }

        #[test]
        fn other_threads_are_served_and_bounded_by_their_descriptor() {
            let frames = std::thread::spawn(|| fast(64)).join().unwrap();
            assert!(frames.len() >= 3, "{frames:x?}");
        }

        static IN_HANDLER: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

        extern "C" fn handler(_: libc::c_int) {
            let mut buf = [0usize; 32];
            let served = capture(&mut buf, |_| false).is_some();
            IN_HANDLER.store(if served { 1 } else { 2 }, Ordering::SeqCst);
        }

        #[test]
        fn a_capture_in_a_signal_handler_is_left_to_libgcc() {
            prepare();
            // SAFETY: snapshots are never freed.
            let snapshot = unsafe { &*SHARED.snapshot.load(Ordering::Acquire) };
            assert!(snapshot.libc_text.0 < snapshot.libc_text.1);
            // SAFETY: a plain handler for SIGURG (ignored by default, unused by the harness);
            // raise() runs it synchronously on this thread.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = handler as *const () as usize;
                libc::sigaction(libc::SIGURG, &action, null_mut());
                libc::raise(libc::SIGURG);
                libc::signal(libc::SIGURG, libc::SIG_DFL);
            }
            assert_eq!(
                IN_HANDLER.load(Ordering::SeqCst),
                2,
                "stopped at __restore_rt"
            );
        }

        #[test]
        fn the_counters_show_the_fast_path_serving_captures() {
            let before = stats();
            let frames = fast(16);
            let after = stats();
            assert!(!frames.is_empty());
            assert!(after.fast > before.fast, "{before:?} -> {after:?}");
            assert!(after.modules > 0, "modules registered: {after:?}");
        }

        #[test]
        fn eh_frame_pointer_encodings() {
            let mut hdr = [1u8, 0x1b, 0x03, 0x3b, 0, 0, 0, 0, 0, 0, 0, 0];
            hdr[4..8].copy_from_slice(&0x100i32.to_le_bytes());
            assert_eq!(eh_frame_address(&hdr, 0x1000), Some(0x1104));
            hdr[1] = 0x03;
            assert_eq!(eh_frame_address(&hdr, 0x1000), Some(0x100));
            hdr[0] = 2;
            assert_eq!(eh_frame_address(&hdr, 0x1000), None);
        }

        #[test]
        fn stack_top_is_above_the_stack_pointer() {
            let local = 0u64;
            let sp = &local as *const u64 as usize;
            prepare();
            let top = stack_top(sp).expect("main or test thread has a known stack");
            assert!(top > sp);
            assert_eq!(stack_top(8), None);
        }
    }
}
