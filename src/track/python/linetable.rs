//! From an instruction offset to a source line, for the three formats CPython 3.8–3.13 use.
//! Safe code over a copied-in-place byte slice: every read is bounded by the table's length, so
//! a table that is not what we expect gives a wrong or missing line, never a bad read.
//! (CPython's own `PyCode_Addr2Line` is not called: in 3.11 it may read a lazily built line
//! array that another thread publishes before filling.)
//!
//! `offset` is always in bytes from the start of the code; `first` is `co_firstlineno`.
//! `None`: the instruction has no line (CPython answers -1).

use super::layout::Lines;

/// Most table entries walked for one lookup: a function of 100,000 instructions is far beyond
/// any real one; the bound keeps a corrupt table from costing more than a few microseconds.
const MAX_STEPS: usize = 1 << 17;

/// The line of the instruction at byte `offset`.
pub fn line(format: Lines, table: &[u8], first: i32, offset: i64) -> Option<u32> {
    let line = match format {
        Lines::Lnotab => lnotab(table, first, offset),
        Lines::Linetable310 => linetable_310(table, first, offset),
        Lines::Locations311 => locations_311(table, first, offset),
    }?;
    u32::try_from(line).ok().filter(|&l| l > 0)
}

/// 3.8–3.9 `co_lnotab`: pairs (bytecode increment, signed line increment), applied while the
/// running address stays at or below `offset` (Objects/codeobject.c `PyCode_Addr2Line`).
fn lnotab(table: &[u8], first: i32, offset: i64) -> Option<i64> {
    let mut line = first as i64;
    let mut address: i64 = 0;
    for pair in table.chunks_exact(2).take(MAX_STEPS) {
        address += pair[0] as i64;
        if address > offset {
            break;
        }
        line += pair[1] as i8 as i64;
    }
    Some(line)
}

/// 3.10 `co_linetable`: pairs (bytes covered, signed line delta; -128 = no line), each pair one
/// address range (Objects/lnotab_notes.txt).
fn linetable_310(table: &[u8], first: i32, offset: i64) -> Option<i64> {
    if offset < 0 {
        return Some(first as i64);
    }
    let mut line = first as i64;
    let mut start: i64 = 0;
    for pair in table.chunks_exact(2).take(MAX_STEPS) {
        let end = start + pair[0] as i64;
        let delta = pair[1] as i8;
        let this = if delta == -128 {
            None
        } else {
            line += delta as i64;
            Some(line)
        };
        if start <= offset && offset < end {
            return this;
        }
        start = end;
    }
    None
}

/// 3.11+ location table: entries starting with a byte whose top bit is set; bits 3–6 are the
/// entry's code, bits 0–2 its length in code units minus one. Codes 13 and 14 carry a signed
/// varint line delta, 10–12 a line delta of 0–2, 15 "no location", the rest "same line"
/// (Objects/locations.md).
fn locations_311(table: &[u8], first: i32, offset: i64) -> Option<i64> {
    if offset < 0 {
        return Some(first as i64);
    }
    let mut line = first as i64;
    let mut start: i64 = 0;
    let mut at = 0usize;
    let mut steps = 0;
    while at < table.len() && steps < MAX_STEPS {
        steps += 1;
        let head = table[at];
        if head & 0x80 == 0 {
            return None; // not at an entry start: not the format we know
        }
        let code = (head >> 3) & 15;
        let end = start + ((head & 7) as i64 + 1) * 2;
        let delta = match code {
            13 | 14 => signed_varint(&table[at + 1..])?,
            10..=12 => (code - 10) as i64,
            _ => 0,
        };
        line += delta;
        if start <= offset && offset < end {
            return (code != 15).then_some(line);
        }
        start = end;
        at += 1;
        while at < table.len() && table[at] & 0x80 == 0 {
            at += 1;
        }
    }
    None
}

/// 6 bits per byte, bit 6 = more to come.
fn varint(bytes: &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    let mut shift = 0;
    for &b in bytes.iter().take(10) {
        value |= ((b & 63) as u64) << shift;
        if b & 64 == 0 {
            return Some(value);
        }
        shift += 6;
    }
    None
}

/// Zig-zag in the low bit: odd values are negative.
fn signed_varint(bytes: &[u8]) -> Option<i64> {
    let v = varint(bytes)?;
    let magnitude = (v >> 1) as i64;
    Some(if v & 1 != 0 { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn lnotab_pairs() {
        // first line 10; +6 bytes -> line 11; +4 bytes -> line 13
        let t = [6u8, 1, 4, 2];
        assert_eq!(line(Lines::Lnotab, &t, 10, 0), Some(10));
        assert_eq!(line(Lines::Lnotab, &t, 10, 5), Some(10));
        assert_eq!(line(Lines::Lnotab, &t, 10, 6), Some(11));
        assert_eq!(line(Lines::Lnotab, &t, 10, 10), Some(13));
        assert_eq!(line(Lines::Lnotab, &t, 10, 100), Some(13));
    }

    #[test]
    fn linetable_310_ranges_and_no_line() {
        // [0,4) line 11, [4,8) no line, [8,10) line 13
        let t = [4u8, 1, 4, 0x80, 2, 2];
        assert_eq!(line(Lines::Linetable310, &t, 10, 2), Some(11));
        assert_eq!(line(Lines::Linetable310, &t, 10, 6), None);
        assert_eq!(line(Lines::Linetable310, &t, 10, 8), Some(13));
        assert_eq!(line(Lines::Linetable310, &t, 10, 10), None);
    }

    #[test]
    fn locations_311_codes() {
        // code 10 (line +0), 1 unit; code 13 (+3 via varint 6), 2 units; code 15 (none);
        // code 14 (-2 via varint 5) with three more varints.
        let t = [
            0x80 | (10 << 3),
            0x80 | (13 << 3) | 1,
            6,
            0x80 | (15 << 3),
            0x80 | (14 << 3),
            5,
            0,
            1,
            2,
        ];
        assert_eq!(line(Lines::Locations311, &t, 20, 0), Some(20));
        assert_eq!(line(Lines::Locations311, &t, 20, 2), Some(23));
        assert_eq!(line(Lines::Locations311, &t, 20, 4), Some(23));
        assert_eq!(line(Lines::Locations311, &t, 20, 6), None);
        assert_eq!(line(Lines::Locations311, &t, 20, 8), Some(21));
        assert_eq!(line(Lines::Locations311, &t, 20, 10), None);
        // Garbage never reads out of bounds.
        assert_eq!(line(Lines::Locations311, &[0x80 | (13 << 3)], 1, 0), None);
        assert_eq!(line(Lines::Locations311, &[0x12, 0x34], 1, 0), None);
    }

    /// Compares the decoders with CPython's own answer (`co_lines()` on 3.10+, `dis` on 3.8–3.9)
    /// for every instruction of a few hundred real code objects, on every interpreter found.
    #[test]
    fn decoders_agree_with_cpython() {
        const DUMP: &str = r#"
import sys, dis, types, json
def codes(co):
    yield co
    for c in co.co_consts:
        if isinstance(c, types.CodeType):
            yield from codes(c)
import json.decoder, http.client, asyncio.base_events, socket
mods = [json.decoder, http.client, asyncio.base_events, socket]
out = []
for m in mods:
    src = open(m.__file__).read()
    for co in codes(compile(src, m.__file__, "exec")):
        if sys.version_info >= (3, 10):
            table = co.co_linetable
            pairs = [(s, l) for (s, e, l) in co.co_lines() for s in range(s, e, 2)]
        else:
            table = co.co_lnotab
            starts = dict(dis.findlinestarts(co))
            pairs, cur = [], co.co_firstlineno
            for off in range(0, len(co.co_code), 2):
                cur = starts.get(off, cur)
                pairs.append((off, cur))
        out.append([table.hex(), co.co_firstlineno, pairs])
print(json.dumps(out))
"#;
        let mut checked = Vec::new();
        for python in super::super::test_support::interpreters() {
            let Ok(out) = Command::new(&python).args(["-c", DUMP]).output() else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
                continue;
            };
            let version = Command::new(&python)
                .args(["-c", "import sys;print(sys.version_info[1])"])
                .output()
                .unwrap();
            let minor: u8 = String::from_utf8_lossy(&version.stdout)
                .trim()
                .parse()
                .unwrap();
            let Some(layout) = super::super::layout::for_minor(minor) else {
                continue;
            };
            let mut n = 0;
            for entry in v.as_array().unwrap() {
                let hex = entry[0].as_str().unwrap();
                let table: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect();
                let first = entry[1].as_i64().unwrap() as i32;
                for pair in entry[2].as_array().unwrap() {
                    let offset = pair[0].as_i64().unwrap();
                    let want = pair[1].as_i64().filter(|&l| l > 0).map(|l| l as u32);
                    assert_eq!(
                        line(layout.lines, &table, first, offset),
                        want,
                        "3.{minor} ({}) offset {offset} table {hex}",
                        python.display()
                    );
                    n += 1;
                }
            }
            assert!(n > 1000, "{}: only {n} instructions", python.display());
            checked.push(format!("3.{minor}: {n} instructions"));
        }
        eprintln!("line tables checked: {checked:?}");
        assert!(!checked.is_empty(), "no CPython 3.8-3.13 interpreter found");
    }
}
