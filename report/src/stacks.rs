//! Creating stacks: how to print a frame, when two sockets share a stack, and the
//! process-independent key the diff compares stacks by.
//!
//! Two notions of "same stack" live here on purpose:
//! - [`StackIdentity`] is exact and only valid inside ONE report (`stack_id`, or the frames
//!   themselves, addresses included). The text report groups by it.
//! - [`stack_key`] uses only function and module names (plus the module offset when a frame has
//!   no name), never addresses or `stack_id`: both change between processes (ASLR) and between
//!   reports (ids are per-report numbering). The diff compares by it.

use crate::model::{Frame, Origin, Socket};
use crate::text::escape;

/// The exact identity of a socket's creating stack within one report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackIdentity<'a> {
    /// The library's stack numbering (same id ⇒ same stack).
    Id(u64),
    /// No id in the report: compare the frames.
    Frames(&'a [Frame]),
    /// The socket has no stack; grouped by where it came from.
    None(Origin),
}

impl<'a> StackIdentity<'a> {
    /// The identity of `socket`'s creating stack.
    pub fn of(socket: &'a Socket) -> StackIdentity<'a> {
        match socket.stack_id {
            // A stack id with no frames still means "captured, but empty": group by id.
            Some(id) => StackIdentity::Id(id),
            None if socket.stack.is_empty() => StackIdentity::None(socket.origin),
            None => StackIdentity::Frames(&socket.stack),
        }
    }

    /// True for sockets without a creating stack.
    pub fn is_none(&self) -> bool {
        matches!(self, StackIdentity::None(_))
    }
}

/// Number of distinct creating stacks among `sockets` (sockets without a stack not counted),
/// as printed on the SUMMARY line.
pub fn count_stacks<'a>(sockets: impl IntoIterator<Item = &'a Socket>) -> u64 {
    let mut seen: Vec<StackIdentity<'a>> = Vec::new();
    for socket in sockets {
        let identity = StackIdentity::of(socket);
        if !identity.is_none() && !seen.contains(&identity) {
            seen.push(identity);
        }
    }
    seen.len() as u64
}

/// The last path component: `/usr/lib/libc.so.6` → `libc.so.6`.
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The process-independent key of one frame: `function@module`, or `?@module+0xOFF` when the
/// function is unknown (the offset is stable across runs of one binary, unlike the address).
/// A Python frame is `py:function@file:line`: its source position is what identifies it (two
/// call sites in one function are two stacks), and it does not move while the process runs.
pub fn frame_key(frame: &Frame) -> String {
    if frame.is_python() {
        return format!(
            "py:{}@{}:{}",
            frame.function.as_deref().unwrap_or("?"),
            frame.file.as_deref().unwrap_or("?"),
            frame.line.unwrap_or(0)
        );
    }
    let module = frame.module.as_deref().map(basename).unwrap_or("?");
    match (&frame.function, &frame.module_offset) {
        (Some(function), _) => format!("{function}@{module}"),
        (None, Some(offset)) => format!("?@{module}+{offset}"),
        (None, None) => format!("?@{module}"),
    }
}

/// The process-independent key of a creating stack (see the module documentation). Sockets
/// without a stack get a one-element key naming their origin.
pub fn stack_key(socket_stack: &[Frame], origin: Origin) -> Vec<String> {
    if socket_stack.is_empty() {
        return vec![match origin {
            Origin::Preexisting => "(open before fdguard was loaded)".to_string(),
            Origin::Inherited => "(inherited across fork, no stack)".to_string(),
            Origin::Created => "(no stack recorded)".to_string(),
            Origin::Received => "(received from another process, no stack)".to_string(),
            Origin::Untracked => "(found open, never seen created)".to_string(),
            Origin::Observed => "(inspected from outside, no stack)".to_string(),
            Origin::Unknown => "(unknown origin, no stack)".to_string(),
        }];
    }
    socket_stack.iter().map(frame_key).collect()
}

/// True for frames that say little about the application: the C library and the Rust standard
/// library's socket wrappers sit innermost in every stack and would make every one-line summary
/// look the same; so do Python's standard library (`socket.py`, `http/client.py`, asyncio) and
/// its frozen import machinery.
fn is_plumbing(frame: &Frame) -> bool {
    if frame.is_python() {
        let file = frame.file.as_deref().unwrap_or("");
        let stdlib = file.contains("/lib/python3.")
            && !file.contains("/site-packages/")
            && !file.contains("/dist-packages/");
        return stdlib || file.starts_with("<frozen ");
    }
    let module = frame.module.as_deref().map(basename).unwrap_or("");
    if module.starts_with("libc.so") || module.starts_with("libc-") {
        return true;
    }
    match frame.function.as_deref() {
        Some(f) => [
            "std::", "core::", "alloc::", "<std::", "<core::", "__libc_", "__GI_",
        ]
        .iter()
        .any(|prefix| f.starts_with(prefix)),
        None => false,
    }
}

/// One line naming up to `max` frames, innermost first, joined by ` <- `:
/// `open_backup_connection <- run_client <- main`. Library plumbing frames are skipped when
/// anything else is left. Frames without a function print as `module+0xOFF`. A stack with
/// Python frames is named by them: the program's own Python code is what opened the socket.
pub fn short_description(frames: &[Frame], max: usize) -> String {
    if frames.is_empty() {
        return "(no stack)".to_string();
    }
    let python: Vec<&Frame> = frames.iter().filter(|f| f.is_python()).collect();
    let frames: Vec<&Frame> = if python.is_empty() {
        frames.iter().collect()
    } else {
        python
    };
    let interesting: Vec<&Frame> = frames.iter().copied().filter(|f| !is_plumbing(f)).collect();
    let chosen: Vec<&Frame> = if interesting.is_empty() {
        frames
    } else {
        interesting
    };
    let mut names: Vec<String> = chosen
        .iter()
        .take(max)
        .map(|frame| match &frame.function {
            Some(function) => escape(short_function_name(function)).into_owned(),
            None => location_in_module(frame).unwrap_or_else(|| "??".to_string()),
        })
        .collect();
    if chosen.len() > max {
        names.push("…".to_string());
    }
    names.join(" <- ")
}

/// A function name without what makes one-liners unreadable: a C++ parameter list
/// (`ns::f(int, char const*) const` → `ns::f`) and a Rust legacy-mangling hash
/// (`app::f::h0123456789abcdef` → `app::f`). Names in parentheses such as
/// `(anonymous namespace)` are kept.
pub fn short_function_name(name: &str) -> &str {
    let mut name = name.trim_end();
    name = name.strip_suffix(" const").unwrap_or(name);
    if name.ends_with(')') {
        // Walk back to the '(' matching the final ')'.
        let mut depth = 0usize;
        for (at, c) in name.char_indices().rev() {
            match c {
                ')' => depth += 1,
                '(' => {
                    depth -= 1;
                    if depth == 0 {
                        if at > 0 {
                            name = &name[..at];
                        }
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    if let Some((head, hash)) = name.rsplit_once("::h")
        && hash.len() == 16
        && hash.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return head;
    }
    name
}

/// `module+0xOFF` (module basename), `module`, or nothing.
fn location_in_module(frame: &Frame) -> Option<String> {
    let module = escape(basename(frame.module.as_deref()?));
    Some(match &frame.module_offset {
        Some(offset) => format!("{module}+{}", escape(offset)),
        None => module.into_owned(),
    })
}

/// Normalises an address string to `0x` + 16 hex digits, so columns line up; anything that is
/// not hex is printed as given.
fn normalise_ip(ip: &str) -> String {
    let digits = ip
        .strip_prefix("0x")
        .or_else(|| ip.strip_prefix("0X"))
        .unwrap_or(ip);
    match u64::from_str_radix(digits, 16) {
        Ok(value) => format!("0x{value:016x}"),
        Err(_) => escape(ip).into_owned(),
    }
}

/// One frame, LeakSanitizer style:
/// `#1 0x00005555555551a9 in open_connection /src/demo.c:42 (demo+0x11a9)`.
/// Unknown function: `#1 0x00007f… (libfoo.so+0x1234)`. With `with_ip == false` (the diff,
/// where addresses differ between processes) the address is left out. A Python frame has
/// `python` in the address column: `#4 python             in leak /srv/app.py:12`, and
/// `#4 in leak /srv/app.py:12 (python)` without addresses.
pub fn frame_line(index: usize, frame: &Frame, with_ip: bool) -> String {
    let mut line = format!("#{index}");
    if frame.is_python() {
        if with_ip {
            line.push_str(&format!(" {:<18}", "python"));
        }
        line.push_str(" in ");
        line.push_str(frame.function.as_deref().unwrap_or("?"));
        if let Some(file) = &frame.file {
            line.push(' ');
            line.push_str(file);
            if let Some(number) = frame.line {
                line.push_str(&format!(":{number}"));
            }
        }
        if !with_ip {
            line.push_str(" (python)");
        }
        return line;
    }
    if with_ip {
        line.push(' ');
        line.push_str(&normalise_ip(&frame.ip));
    }
    if let Some(function) = &frame.function {
        line.push_str(" in ");
        line.push_str(&escape(function));
    }
    if let Some(file) = &frame.file {
        line.push(' ');
        line.push_str(&escape(file));
        if let Some(number) = frame.line {
            line.push_str(&format!(":{number}"));
        }
    }
    match location_in_module(frame) {
        Some(location) => line.push_str(&format!(" ({location})")),
        None if frame.function.is_none() && !with_ip => line.push_str(" ??"),
        None => {}
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: Option<&str>, module: Option<&str>, offset: Option<&str>) -> Frame {
        Frame {
            ip: "0x7f00001234".to_string(),
            function: function.map(str::to_string),
            file: None,
            line: None,
            module: module.map(str::to_string),
            module_offset: offset.map(str::to_string),
            kind: crate::model::FrameKind::Native,
        }
    }

    fn python(function: &str, file: &str, line: u32) -> Frame {
        Frame {
            function: Some(function.to_string()),
            file: Some(file.to_string()),
            line: Some(line),
            kind: crate::model::FrameKind::Python,
            ..Frame::default()
        }
    }

    #[test]
    fn python_frames_print_keys_and_summaries() {
        let leak = python("Client.leak", "/srv/app/client.py", 12);
        assert_eq!(
            frame_line(4, &leak, true),
            "#4 python             in Client.leak /srv/app/client.py:12"
        );
        assert_eq!(
            frame_line(4, &leak, false),
            "#4 in Client.leak /srv/app/client.py:12 (python)"
        );
        assert_eq!(frame_key(&leak), "py:Client.leak@/srv/app/client.py:12");
        let mut other_line = leak.clone();
        other_line.line = Some(13);
        assert_ne!(frame_key(&leak), frame_key(&other_line));
        let stack = vec![
            frame(Some("sock_initobj"), Some("/py/_socket.so"), None),
            python("socket.__init__", "/usr/lib/python3.11/socket.py", 232),
            python("create_connection", "/usr/lib/python3.11/socket.py", 831),
            python(
                "HTTPConnection._new_conn",
                "/v/lib/python3.11/site-packages/urllib3/connection.py",
                198,
            ),
            leak,
            python("<module>", "/srv/app/client.py", 40),
            frame(Some("main"), Some("/usr/bin/python3.11"), None),
        ];
        assert_eq!(
            short_description(&stack, 2),
            "HTTPConnection._new_conn <- Client.leak <- …"
        );
        let only_stdlib = vec![python("f", "/usr/lib/python3.11/asyncio/x.py", 1)];
        assert_eq!(short_description(&only_stdlib, 3), "f");
    }

    #[test]
    fn frame_lines() {
        let mut f = frame(
            Some("open_connection"),
            Some("/usr/bin/demo"),
            Some("0x11a9"),
        );
        f.file = Some("/src/demo.c".to_string());
        f.line = Some(42);
        assert_eq!(
            frame_line(0, &f, true),
            "#0 0x0000007f00001234 in open_connection /src/demo.c:42 (demo+0x11a9)"
        );
        assert_eq!(
            frame_line(3, &f, false),
            "#3 in open_connection /src/demo.c:42 (demo+0x11a9)"
        );
        let unknown = frame(None, Some("/lib/libfoo.so"), Some("0x1234"));
        assert_eq!(
            frame_line(1, &unknown, true),
            "#1 0x0000007f00001234 (libfoo.so+0x1234)"
        );
        let nothing = frame(None, None, None);
        assert_eq!(frame_line(2, &nothing, false), "#2 ??");
        let mut odd = frame(None, None, None);
        odd.ip = "garbage".to_string();
        assert_eq!(frame_line(0, &odd, true), "#0 garbage");
    }

    #[test]
    fn keys_ignore_addresses() {
        let a = frame(Some("f"), Some("/a/libx.so"), Some("0x10"));
        let mut b = a.clone();
        b.ip = "0x5555".to_string();
        assert_eq!(frame_key(&a), frame_key(&b));
        assert_eq!(frame_key(&a), "f@libx.so");
        assert_eq!(
            frame_key(&frame(None, Some("/x/liby.so"), Some("0x20"))),
            "?@liby.so+0x20"
        );
    }

    #[test]
    fn short_function_names() {
        assert_eq!(
            short_function_name(
                "grpc_core::Chttp2Connector::Connect(grpc_core::Args const&, grpc_closure*)"
            ),
            "grpc_core::Chttp2Connector::Connect"
        );
        assert_eq!(
            short_function_name("grpc_core::Subchannel::StartConnectingLocked()"),
            "grpc_core::Subchannel::StartConnectingLocked"
        );
        assert_eq!(
            short_function_name("f(std::function<void (int)>) const"),
            "f"
        );
        assert_eq!(
            short_function_name("(anonymous namespace)"),
            "(anonymous namespace)"
        );
        assert_eq!(
            short_function_name("fdguard_cli::demo::open_primary_connection::h0123456789abcdef"),
            "fdguard_cli::demo::open_primary_connection"
        );
        assert_eq!(
            short_function_name("app::h_is_not_a_hash"),
            "app::h_is_not_a_hash"
        );
        assert_eq!(
            short_function_name("sock_initobj+0x64"),
            "sock_initobj+0x64"
        );
    }

    #[test]
    fn short_description_skips_plumbing() {
        let frames = vec![
            frame(
                Some("__libc_socket"),
                Some("/lib/x86_64-linux-gnu/libc.so.6"),
                None,
            ),
            frame(
                Some("std::net::tcp::TcpStream::connect"),
                Some("/bin/app"),
                None,
            ),
            frame(Some("open_backup_connection"), Some("/bin/app"), None),
            frame(Some("run"), Some("/bin/app"), None),
            frame(Some("main"), Some("/bin/app"), None),
            frame(Some("__libc_start_main"), Some("/lib/libc.so.6"), None),
        ];
        assert_eq!(
            short_description(&frames, 2),
            "open_backup_connection <- run <- …"
        );
        assert_eq!(
            short_description(&frames, 3),
            "open_backup_connection <- run <- main"
        );
        let only_libc = vec![frame(Some("__libc_socket"), Some("/lib/libc.so.6"), None)];
        assert_eq!(short_description(&only_libc, 3), "__libc_socket");
    }
}
