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
    /// A request through the report-request channel (`fdguard report PID`, no signal; see
    /// [`crate::request`]).
    Request,
    /// A look from outside the process (`fdguard inspect`, `fdguard watch` without the
    /// library: `collector` is `observed`).
    Inspect,
    /// A trigger written by a later fdguard that this reader does not know.
    #[serde(other)]
    Unknown,
}

impl Trigger {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Signal => "signal",
            Trigger::Exit => "exit",
            Trigger::Api => "api",
            Trigger::Request => "request",
            Trigger::Inspect => "inspect",
            Trigger::Unknown => "unknown",
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
    /// How the data was collected: `preload` (libfdguard.so inside the process: stacks,
    /// lifecycle) or `inspect` (`fdguard inspect` from outside: kernel state only, no stacks).
    /// Reports written before this field existed are `preload`.
    #[serde(default)]
    pub collector: Collector,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Created in this process while fdguard was loaded (has a stack).
    #[default]
    Created,
    /// Already open when fdguard was loaded (inherited across exec, or opened by a library
    /// constructor that ran first); no stack.
    Preexisting,
    /// Created by the parent before a fork() that produced this process.
    Inherited,
    /// Received from another process over a unix socket (`SCM_RIGHTS`).
    Received,
    /// Found open at report time without any hook having seen it created (a raw `syscall()`,
    /// a path inside libc): no stack, origin unknown.
    Untracked,
    /// Seen from outside the process by `fdguard inspect` (no hooks at all).
    Observed,
    /// An origin written by a later fdguard that this reader does not know.
    #[serde(other)]
    Unknown,
}

/// How a report's data was collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Collector {
    /// libfdguard.so, loaded into the process.
    #[default]
    Preload,
    /// `fdguard inspect`: `/proc` and the kernel's socket diagnostics, from outside.
    Inspect,
    /// A collector written by a later fdguard that this reader does not know.
    #[serde(other)]
    Unknown,
}

/// A TCP connection state, as the kernel names it (`include/net/tcp_states.h`). The JSON and
/// the text use the upper-case names `ss` prints (`ESTABLISHED`, `CLOSE_WAIT`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    NewSynRecv,
    /// A state number or name this reader does not know.
    #[serde(other)]
    Unknown,
}

impl TcpState {
    /// Every state, in the kernel's numbering (1 = ESTABLISHED … 12 = NEW_SYN_RECV).
    pub const ALL: [TcpState; 12] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::Closing,
        TcpState::NewSynRecv,
    ];

    /// The state for the kernel's `tcpi_state` / `idiag_state` number.
    pub fn from_kernel(number: u8) -> TcpState {
        match number {
            1..=12 => TcpState::ALL[number as usize - 1],
            _ => TcpState::Unknown,
        }
    }

    /// The name `ss` and the JSON use.
    pub fn as_str(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::NewSynRecv => "NEW_SYN_RECV",
            TcpState::Unknown => "UNKNOWN",
        }
    }

    /// Parses a name as [`TcpState::as_str`] writes it (case-insensitive).
    pub fn parse(name: &str) -> Option<TcpState> {
        TcpState::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

impl std::fmt::Display for TcpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the kernel says about a TCP connection's recent activity (`TCP_INFO`, or
/// `INET_DIAG_INFO` for `fdguard inspect`), read at report time. Times are seconds before the
/// report; `None` when the kernel gave no value (for example, never since the connection
/// started).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TcpActivity {
    /// Since the last payload was received (`tcpi_last_data_recv`).
    #[serde(default)]
    pub last_data_recv_s: Option<f64>,
    /// Since the last payload was sent (`tcpi_last_data_sent`).
    #[serde(default)]
    pub last_data_sent_s: Option<f64>,
    /// Since the last ACK was received (`tcpi_last_ack_recv`).
    #[serde(default)]
    pub last_ack_recv_s: Option<f64>,
    /// Segments sent and not yet acknowledged (`tcpi_unacked`).
    #[serde(default)]
    pub unacked: u32,
    /// Retransmissions of the current unacknowledged data (`tcpi_retransmits`).
    #[serde(default)]
    pub retransmits: u32,
    /// Retransmission timer backoff (`tcpi_backoff`).
    #[serde(default)]
    pub backoff: u32,
    /// Unanswered zero-window or keepalive probes (`tcpi_probes`).
    #[serde(default)]
    pub probes: u32,
    /// `SO_KEEPALIVE` is on; `None` when unknown.
    #[serde(default)]
    pub keepalive: Option<bool>,
    /// Bytes received and not yet read by the program; `None` when unknown.
    #[serde(default)]
    pub recv_queue: Option<u64>,
    /// Bytes written by the program and not yet acknowledged; `None` when unknown.
    #[serde(default)]
    pub send_queue: Option<u64>,
    /// The three-way handshake completed at some point: `false` for a connection that never
    /// got an answer (SYN_SENT, refused, timed out); `None` when unknown. When `false` the
    /// `last_*` times are null: the kernel has none.
    #[serde(default)]
    pub handshake_completed: Option<bool>,
}

impl TcpActivity {
    /// Seconds since payload last moved either way, when both directions are known.
    pub fn idle_s(&self) -> Option<f64> {
        match (self.last_data_recv_s, self.last_data_sent_s) {
            (Some(r), Some(s)) => Some(r.min(s)),
            (Some(x), None) | (None, Some(x)) => Some(x),
            (None, None) => None,
        }
    }
}

/// What the socket is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
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
    #[default]
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

/// A creating stack, innermost frame first. Shared: the sockets a report lists from one stack
/// hold the same frames (18,000 sockets from one call site cost one copy, not 18,000).
pub type Stack = std::sync::Arc<[Frame]>;

/// One frame of a creating stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Frame {
    /// Return address, hex (`0x7f…`); empty for a Python frame.
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
    /// `native` (machine code: `ip`, `module`) or `python` (a CPython frame: `function` is its
    /// qualified name, `file` and `line` its source; no address or module). Reports written
    /// before this field existed have native frames only.
    #[serde(default)]
    pub kind: FrameKind,
}

/// What a [`Frame`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    /// Machine code.
    #[default]
    Native,
    /// A frame of the CPython interpreter's own stack.
    Python,
    /// A kind written by a later fdguard that this reader does not know.
    #[serde(other)]
    Unknown,
}

impl Frame {
    /// True for a Python frame.
    pub fn is_python(&self) -> bool {
        self.kind == FrameKind::Python
    }
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// The kernel's TCP state at report time (`ESTABLISHED`, `CLOSE_WAIT`, …); null when not
    /// TCP.
    #[serde(default)]
    pub tcp_state: Option<TcpState>,
    /// Seconds the connection has been in `tcp_state`, as far as fdguard could date it (the
    /// watcher's samples, or the kernel's own timestamps); null when unknown.
    #[serde(default)]
    pub state_since_s: Option<f64>,
    /// What the kernel says about the connection's recent activity; null when not TCP.
    #[serde(default)]
    pub tcp: Option<TcpActivity>,
    /// The socket's inode number (`socket:[N]` in `/proc/PID/fd`, the `ino` column of `ss -e`).
    #[serde(default)]
    pub inode: Option<u64>,
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
    pub stack: Stack,
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
    pub stack: Stack,
}

/// Finding kinds, most severe first. The JSON spelling is the snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The peer has gone (CLOSE_WAIT, reset, …) and the app kept the fd past the grace period.
    PeerClosed,
    /// The app called shutdown() and did not close() within the grace period.
    ShutdownNotClosed,
    /// Data sent and never acknowledged while the kernel retransmits: the peer vanished
    /// without a FIN (host down, cable cut, keepalive off).
    HalfOpen,
    /// An ESTABLISHED connection that has carried no payload either way for longer than the
    /// idle threshold (grpc/grpc#42125: a channel closed, its connection never released).
    IdleOrphan,
    /// A connection stuck in SYN_SENT past its threshold, or whose connect() failed and whose
    /// fd the program never closed.
    StuckConnecting,
    /// Opened since a checkpoint and still open.
    SinceCheckpoint,
    /// Live sockets per creating stack or per backend that keep rising across samples.
    Growth,
    /// New connections to one backend per minute far above the process's norm.
    ReconnectChurn,
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
    pub const ALL: [FindingKind; 10] = [
        FindingKind::PeerClosed,
        FindingKind::ShutdownNotClosed,
        FindingKind::HalfOpen,
        FindingKind::IdleOrphan,
        FindingKind::StuckConnecting,
        FindingKind::SinceCheckpoint,
        FindingKind::Growth,
        FindingKind::ReconnectChurn,
        FindingKind::DuplicateBackend,
        FindingKind::OpenAtExit,
    ];

    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::PeerClosed => "peer_closed",
            FindingKind::ShutdownNotClosed => "shutdown_not_closed",
            FindingKind::HalfOpen => "half_open",
            FindingKind::IdleOrphan => "idle_orphan",
            FindingKind::StuckConnecting => "stuck_connecting",
            FindingKind::SinceCheckpoint => "since_checkpoint",
            FindingKind::Growth => "growth",
            FindingKind::ReconnectChurn => "reconnect_churn",
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

/// How much a finding asks of the reader. Only `leak` findings gate `FDGUARD_EXITCODE` and
/// count as leaks; a healthy program gets none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A socket nobody will use again: act on it.
    Leak,
    /// Suspicious, worth a look: may be a leak, may be a program's choice.
    Warning,
    /// Context (a healthy pool, what was open at exit): nothing to fix by itself.
    Info,
}

impl Severity {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Leak => "leak",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
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
    /// How much this finding asks of the reader. Absent in reports written before severities
    /// existed: [`Finding::severity`] then derives it from the kind as those versions did.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// For `growth` and `reconnect_churn`: the rate, per minute (sockets gained, connections
    /// closed and reopened).
    #[serde(default)]
    pub rate_per_min: Option<f64>,
}

impl Finding {
    /// A finding of `kind` and `severity` about `fds`, every optional field empty.
    pub fn new(kind: FindingKind, severity: Severity, fds: Vec<i32>, message: String) -> Finding {
        Finding {
            kind,
            fds,
            message,
            backend: None,
            suspect_fds: Vec::new(),
            checkpoint: None,
            suppressed_by: None,
            severity: Some(severity),
            rate_per_min: None,
        }
    }

    /// The finding's severity: as written, or for older reports what the kind meant then
    /// (the kinds that gated the exit code were leaks; the rest informed).
    pub fn severity(&self) -> Severity {
        self.severity.unwrap_or(match self.kind {
            FindingKind::PeerClosed
            | FindingKind::ShutdownNotClosed
            | FindingKind::SinceCheckpoint => Severity::Leak,
            FindingKind::DuplicateBackend | FindingKind::OpenAtExit | FindingKind::Unknown => {
                Severity::Info
            }
            _ => Severity::Warning,
        })
    }
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
    /// Unsuppressed findings per severity (JSON object `{"leak": 1, "info": 2}`, zero counts
    /// omitted). Empty in reports written before severities existed.
    #[serde(default)]
    pub by_severity: std::collections::BTreeMap<String, u64>,
    /// Records dropped at this report because their fd no longer names a socket: it was closed
    /// by a path fdguard does not interpose (a raw `close` system call, as libuv makes; `fclose`
    /// of an `fdopen`ed socket inside libc). A count, not a note repeated in every report.
    #[serde(default)]
    pub closed_unseen: u64,
}
