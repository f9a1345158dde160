//! The report path template grammar (`FDGUARD_REPORT`, `fdguard run --report`), shared by
//! `libfdguard.so` (which expands it) and the `fdguard` CLI (which finds the files it produced),
//! so the two can never disagree on what a template means.
//!
//! `%p` pid, `%n` report number, `%e` program name, `%t` unix time (seconds), `%%` a percent
//! sign; any other `%` is literal. A template without `%p` gets `.<pid>` appended
//! (LeakSanitizer's `log_path` convention), so processes that inherit the variable never share
//! a file.

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(char),
    Pid,
    Seq,
    Exe,
    Time,
}

/// A parsed report path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    pieces: Vec<Piece>,
}

impl PathTemplate {
    /// Parses `template`; never fails (unknown `%x` sequences stay literal).
    pub fn parse(template: &str) -> PathTemplate {
        let mut pieces = Vec::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                pieces.push(Piece::Literal(c));
                continue;
            }
            let piece = match chars.peek() {
                Some('p') => Piece::Pid,
                Some('n') => Piece::Seq,
                Some('e') => Piece::Exe,
                Some('t') => Piece::Time,
                Some('%') => Piece::Literal('%'),
                _ => {
                    pieces.push(Piece::Literal('%'));
                    continue;
                }
            };
            chars.next();
            pieces.push(piece);
        }
        if !pieces.contains(&Piece::Pid) {
            pieces.push(Piece::Literal('.'));
            pieces.push(Piece::Pid);
        }
        PathTemplate { pieces }
    }

    /// The path for report number `seq` of process `pid` (program name `exe`, at `unix_s`).
    pub fn expand(&self, pid: i32, seq: u64, exe: &str, unix_s: u64) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(c) => out.push(*c),
                Piece::Pid => out.push_str(&pid.to_string()),
                Piece::Seq => out.push_str(&seq.to_string()),
                Piece::Exe => out.push_str(exe),
                Piece::Time => out.push_str(&unix_s.to_string()),
            }
        }
        out
    }

    /// True when `name` (a file name, no directory) could have been produced by the template's
    /// last path component.
    pub fn file_name_matches(&self, name: &str) -> bool {
        let start = self
            .pieces
            .iter()
            .rposition(|p| *p == Piece::Literal('/'))
            .map_or(0, |i| i + 1);
        let text: Vec<char> = name.chars().collect();
        match_from(&self.pieces[start..], &text)
    }
}

fn match_from(pieces: &[Piece], text: &[char]) -> bool {
    match pieces.split_first() {
        None => text.is_empty(),
        Some((Piece::Literal(c), rest)) => text.first() == Some(c) && match_from(rest, &text[1..]),
        Some((Piece::Pid | Piece::Seq | Piece::Time, rest)) => {
            let run = text.iter().take_while(|c| c.is_ascii_digit()).count();
            (1..=run).rev().any(|n| match_from(rest, &text[n..]))
        }
        Some((Piece::Exe, rest)) => (1..=text.len()).rev().any(|n| match_from(rest, &text[n..])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_and_always_carries_the_pid() {
        let t = |s: &str| PathTemplate::parse(s);
        assert_eq!(
            t("/tmp/r-%p-%n.json").expand(42, 3, "app", 9),
            "/tmp/r-42-3.json"
        );
        assert_eq!(t("/tmp/r.json").expand(42, 1, "app", 9), "/tmp/r.json.42");
        assert_eq!(t("/tmp/%e.%t.%p%%").expand(7, 1, "app", 9), "/tmp/app.9.7%");
        // `%%p` is a percent sign and a `p`, not a pid: the pid is appended.
        assert_eq!(t("/tmp/a%%p").expand(7, 1, "app", 9), "/tmp/a%p.7");
    }

    #[test]
    fn matches_exactly_what_it_expands() {
        for template in [
            "/x/fdguard.%p.%n.json",
            "/x/report.json",
            "/x/%e-%t-%p%%",
            "/x/a%%p",
            "/x/%q-%p",
        ] {
            let t = PathTemplate::parse(template);
            let path = t.expand(4242, 17, "my-app", 1_700_000_000);
            let name = path.rsplit('/').next().unwrap();
            assert!(t.file_name_matches(name), "{template} -> {name}");
            assert!(!t.file_name_matches(&format!("{name}x")), "{template}");
        }
        let t = PathTemplate::parse("/x/fdguard.%p.%n.json");
        assert!(!t.file_name_matches("fdguard.12.json"));
        assert!(!t.file_name_matches("fdguard.a.1.json"));
    }
}
