//! Colour for terminals: a few ANSI codes, only when the stream is a terminal and `NO_COLOR`
//! (<https://no-color.org>) is unset or empty. The renderers in fdguard-report never colour;
//! these functions decorate their output line by line, so the text stays byte-identical to the
//! library's when colour is off.

use std::io::IsTerminal;

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[1;33m";
const GREEN: &str = "\x1b[32m";

fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// True when output to stdout should be coloured.
pub fn stdout_wants_colour() -> bool {
    colour_allowed() && std::io::stdout().is_terminal()
}

/// True when output to stderr should be coloured.
pub fn stderr_wants_colour() -> bool {
    colour_allowed() && std::io::stderr().is_terminal()
}

fn paint(colour: &str, text: &str) -> String {
    format!("{colour}{text}{RESET}")
}

/// Colours a text report (`fdguard_report::text::render` output).
pub fn colour_report(text: &str) -> String {
    const SECTIONS: [&str; 6] = [
        "FINDINGS",
        "LIVE SOCKETS",
        "CHECKPOINTS",
        "SUPPRESSIONS USED",
        "NOTES",
        "SUMMARY:",
    ];
    const SEVERE: [&str; 2] = ["peer_closed", "shutdown_not_closed"];
    const OTHER: [&str; 3] = ["since_checkpoint", "duplicate_backend", "open_at_exit"];
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.lines() {
        let kind = line.split([':', ' ']).next().unwrap_or("");
        let coloured = if line.starts_with("==") && line.contains("WARNING") {
            paint(YELLOW, line)
        } else if line.starts_with("==") || SECTIONS.iter().any(|s| line.starts_with(s)) {
            paint(BOLD, line)
        } else if line.starts_with(kind) && !kind.is_empty() && line.contains(" [suppressed by ") {
            paint(DIM, line)
        } else if SEVERE.contains(&kind) {
            paint(RED, line)
        } else if OTHER.contains(&kind) {
            paint(YELLOW, line)
        } else if line.trim_start().starts_with("fd ") {
            line.replace("CLOSE_WAIT", &paint(RED, "CLOSE_WAIT"))
                .replace("[likely leak]", &paint(RED, "[likely leak]"))
        } else {
            line.to_string()
        };
        out.push_str(&coloured);
        out.push('\n');
    }
    out
}

/// Colours a rendered diff (`fdguard_report::diff::render` output): growth red, shrinkage green.
pub fn colour_diff(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.lines() {
        let trimmed = line.trim_start();
        let coloured = if line.starts_with("WARNING") {
            paint(YELLOW, line)
        } else if line.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && !line.starts_with("WARNING")
        {
            paint(BOLD, line)
        } else if trimmed.starts_with('+') {
            paint(RED, line)
        } else if trimmed.starts_with('-')
            && trimmed.chars().nth(1).is_some_and(|c| c.is_ascii_digit())
        {
            paint(GREEN, line)
        } else {
            line.to_string()
        };
        out.push_str(&coloured);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colouring_keeps_the_text() {
        let text = "==1==fdguard\nFINDINGS (1)\npeer_closed: x\n  fd 7  CLOSE_WAIT  [likely leak]\nplain\n";
        let coloured = colour_report(text);
        let stripped = coloured
            .replace(RESET, "")
            .replace(BOLD, "")
            .replace(RED, "")
            .replace(YELLOW, "")
            .replace(DIM, "");
        assert_eq!(stripped, text);
        assert!(coloured.contains(&format!("{RED}peer_closed: x{RESET}")));
    }
}
