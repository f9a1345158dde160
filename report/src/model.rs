//! The report schema (JSON `schema_version` 1).
//!
//! This module is the contract between `libfdguard.so` (which writes reports) and the `fdguard`
//! CLI and users' scripts (which read them). Later versions may ADD optional fields; they never
//! remove or change the meaning of one. Every optional field is `#[serde(default)]` so that a
//! reader of version N accepts reports written by version N with fields it does not know yet.
//! The human-readable description of every field lives in `docs/report-format.md`.

use serde::{Deserialize, Serialize};

/// The schema version written by this crate.
pub const SCHEMA_VERSION: u32 = 1;

/// What caused a report to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The report signal (SIGUSR1 by default), e.g. from `fdguard report PID`.
    Signal,
    /// Process exit (`exit`, return from `main`, `_exit`, `_Exit`).
    Exit,
    /// An explicit call through the C API.
    Api,
}

impl Trigger {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Signal => "signal",
            Trigger::Exit => "exit",
            Trigger::Api => "api",
        }
    }
}

/// One complete report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA_VERSION`] for reports written by this crate.
    pub schema_version: u32,
    /// `fdguard <version>`.
    pub tool: String,
    pub pid: i32,
    /// Executable path (`/proc/self/exe`), or `argv[0]` when that cannot be read.
    pub program: String,
    /// The command line, as far as it could be read.
    #[serde(default)]
    pub cmdline: Vec<String>,
    pub trigger: Trigger,
    /// 1 for the first report of this process, then 2, 3, …
    pub seq: u64,
    /// Wall-clock time of the report, milliseconds since the Unix epoch.
    pub time_unix_ms: u64,
    /// Seconds since libfdguard.so was loaded into this process.
    pub uptime_s: f64,
    pub fd_budget: FdBudget,
    /// Every live socket fdguard knows about, ordered by fd.
    pub sockets: Vec<Socket>,
    /// What the detectors concluded, most severe first.
    pub findings: Vec<Finding>,
    /// Recently closed client connections (bounded history), newest first.
    #[serde(default)]
    pub recently_closed: Vec<ClosedSocket>,
    /// Suppression rules that matched at least once in this report.
    #[serde(default)]
    pub suppressions_used: Vec<SuppressionUse>,
    /// Checkpoints set through the C API, oldest first.
    #[serde(default)]
    pub checkpoints: Vec<Checkpoint>,
    /// Things fdguard wants the reader to know about its own coverage
    /// (records dropped because the fd was closed behind its back, table full, …).
    #[serde(default)]
    pub notes: Vec<String>,
    pub summary: Summary,
}

/// How close the process is to running out of file descriptors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdBudget {
    /// Entries in /proc/self/fd (all kinds of fds).
    pub open_fds: u64,
    /// RLIMIT_NOFILE soft limit (what EMFILE is measured against).
    pub limit_soft: u64,
    /// RLIMIT_NOFILE hard limit.
    pub limit_hard: u64,
    /// Sockets among the open fds, as the kernel sees them.
    pub sockets_open: u64,
    /// Sockets fdguard tracks (equals `sockets.len()`).
    pub sockets_tracked: u64,
}

/// Where a tracked socket came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Created in this process while fdguard was loaded (has a stack).
    Created,
    /// Already open when fdguard was loaded (inherited across exec, or opened by a library
    /// constructor that ran first); no stack.
    Preexisting,
    /// Created by the parent before a fork() that produced this process.
    Inherited,
}

/// What the socket is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// connect() was called on it.
    Client,
    /// Returned by accept()/accept4().
    Accepted,
    /// listen() was called on it.
    Listener,
    /// One end of a socketpair().
    Pair,
    /// Created but neither connected, accepted nor listening (yet).
    Unconnected,
    /// Pre-existing socket with a peer whose direction is unknown.
    Connected,
}

impl Role {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Accepted => "accepted",
            Role::Listener => "listener",
            Role::Pair => "pair",
            Role::Unconnected => "unconnected",
            Role::Connected => "connected",
        }
    }
}

/// The thread that created a socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadInfo {
    pub tid: i32,
    /// The kernel thread name (15 bytes at most) at creation time.
    pub name: String,
}

/// One frame of a creating stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Frame {
    /// Return address, hex (`0x7f…`).
    pub ip: String,
    /// Demangled function name, when known. For stripped modules this is the nearest symbol the
    /// module exports, written `symbol+0xOFF`.
    #[serde(default)]
    pub function: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub line: Option<u32>,
    /// Path of the module (executable or shared object) containing `ip`.
    #[serde(default)]
    pub module: Option<String>,
    /// Offset of `ip` inside `module`, hex.
    #[serde(default)]
    pub module_offset: Option<String>,
}

/// The outcome of connect().
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectInfo {
    /// `ok`, or the errno name (`EINPROGRESS`, `ECONNREFUSED`, …).
    pub result: String,
    /// Seconds between creation and the connect() call.
    pub after_s: f64,
}

/// The app's shutdown() call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShutdownInfo {
    /// `read`, `write` or `both`.
    pub how: String,
    /// Seconds since shutdown() was called.
    pub ago_s: f64,
}

/// One live socket fd.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Socket {
    pub fd: i32,
    /// Identifies the underlying socket: fds made by dup() share it.
    pub socket_id: u64,
    /// `inet`, `inet6`, `unix`, `netlink`, `packet`, or `af<N>`.
    pub family: String,
    /// `stream`, `dgram`, `seqpacket`, `raw`, or `type<N>`.
    #[serde(rename = "type")]
    pub sock_type: String,
    pub role: Role,
    pub origin: Origin,
    /// Peer address: `ip:port`, `[v6]:port` (IPv4-mapped IPv6 written as plain IPv4), a unix
    /// path, `@name` for an abstract unix name; null when there is none.
    #[serde(default)]
    pub peer: Option<String>,
    /// Local address in the same notation.
    #[serde(default)]
    pub local: Option<String>,
    /// The kernel's TCP state name at report time (`ESTABLISHED`, `CLOSE_WAIT`, …); null when
    /// not TCP.
    #[serde(default)]
    pub tcp_state: Option<String>,
    /// Seconds since the socket was created (since load, for pre-existing ones).
    pub age_s: f64,
    #[serde(default)]
    pub thread: Option<ThreadInfo>,
    #[serde(default)]
    pub connect: Option<ConnectInfo>,
    #[serde(default)]
    pub shutdown: Option<ShutdownInfo>,
    /// Seconds since fdguard first saw the peer's side finished (CLOSE_WAIT, reset, …).
    #[serde(default)]
    pub peer_closed_s: Option<f64>,
    /// This fd is a copy (dup/dup2/dup3/F_DUPFD) of that fd.
    #[serde(default)]
    pub dup_of: Option<i32>,
    /// Label attached by the application through the C API.
    #[serde(default)]
    pub label: Option<String>,
    /// Index of the stack in the report's stack numbering (same id ⇒ same creating stack).
    #[serde(default)]
    pub stack_id: Option<u64>,
    /// The creating stack, innermost frame first, fdguard's own frames removed.
    #[serde(default)]
    pub stack: Vec<Frame>,
}

/// A client connection that was closed recently (from the bounded history).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosedSocket {
    pub fd: i32,
    pub socket_id: u64,
    #[serde(default)]
    pub peer: Option<String>,
    /// Seconds before the report that it was created.
    pub created_ago_s: f64,
    /// Seconds before the report that it was closed.
    pub closed_ago_s: f64,
    #[serde(default)]
    pub stack_id: Option<u64>,
    #[serde(default)]
    pub stack: Vec<Frame>,
}

/// Finding kinds, most severe first. The JSON spelling is the snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The peer has gone (CLOSE_WAIT, reset, …) and the app kept the fd past the grace period.
    PeerClosed,
    /// The app called shutdown() and did not close() within the grace period.
    ShutdownNotClosed,
    /// Opened since a checkpoint and still open.
    SinceCheckpoint,
    /// Several simultaneous client connections to one backend.
    DuplicateBackend,
    /// Still open when the process exited.
    OpenAtExit,
    /// A kind added by a later fdguard that this reader does not know. Reports stay readable
    /// across versions (the schema only ever adds); such findings sort last.
    #[serde(other)]
    Unknown,
}

impl FindingKind {
    /// All kinds, most severe first.
    pub const ALL: [FindingKind; 5] = [
        FindingKind::PeerClosed,
        FindingKind::ShutdownNotClosed,
        FindingKind::SinceCheckpoint,
        FindingKind::DuplicateBackend,
        FindingKind::OpenAtExit,
    ];

    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::PeerClosed => "peer_closed",
            FindingKind::ShutdownNotClosed => "shutdown_not_closed",
            FindingKind::SinceCheckpoint => "since_checkpoint",
            FindingKind::DuplicateBackend => "duplicate_backend",
            FindingKind::OpenAtExit => "open_at_exit",
            FindingKind::Unknown => "unknown",
        }
    }

    /// Parses the JSON spelling.
    pub fn parse(s: &str) -> Option<FindingKind> {
        FindingKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One detector verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// The fds this finding concerns.
    pub fds: Vec<i32>,
    /// One sentence for humans.
    pub message: String,
    /// Normalised backend address, for findings about one backend.
    #[serde(default)]
    pub backend: Option<String>,
    /// For `duplicate_backend`: the members most likely to be the leak (the newer ones, or the
    /// ones whose peer has gone).
    #[serde(default)]
    pub suspect_fds: Vec<i32>,
    /// For `since_checkpoint`: the checkpoint id.
    #[serde(default)]
    pub checkpoint: Option<u64>,
    /// Set when a suppression rule matched; suppressed findings are kept in the JSON but not
    /// counted in the summary or the exit code.
    #[serde(default)]
    pub suppressed_by: Option<String>,
}

/// A suppression rule and how often it matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressionUse {
    pub rule: String,
    pub matched: u64,
}

/// A checkpoint set through the C API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub id: u64,
    pub ago_s: f64,
    /// Sockets created after it and still open.
    pub open_since: u64,
}

/// Totals, as printed on the SUMMARY line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Summary {
    pub live_sockets: u64,
    pub stacks: u64,
    /// Unsuppressed findings per kind (JSON object `{"peer_closed": 1, …}`, zero counts
    /// omitted).
    pub findings: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    pub suppressed: u64,
}
