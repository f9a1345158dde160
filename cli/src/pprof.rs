//! The pprof profile format (`profile.proto`, github.com/google/pprof/proto/profile.proto),
//! write-only, for `fdguard export --pprof`: a [`Builder`] that interns strings, functions,
//! mappings and locations, adds up samples with the same stack and labels, and encodes the
//! result as protobuf.
//!
//! Hand-encoded rather than through a protobuf crate: fdguard only ever WRITES eight small
//! messages, which takes two wire types (varint and length-delimited) in about a hundred
//! lines; prost would bring a derive macro and its dependency tree into the CLI for that.
//! The tests read the output back with `go tool pprof` (the reference decoder), and the unit
//! tests below check the wire format byte by byte.

use std::collections::{BTreeMap, HashMap};

// ---------------------------------------------------------------- protobuf wire format

/// Appends `v` as a base-128 varint.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A varint field (wire type 0); zero values are omitted, as proto3 does.
fn uint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        varint(out, u64::from(field) << 3);
        varint(out, v);
    }
}

/// An int64 field (negative values take ten bytes, two's complement, as protobuf says).
fn int_field(out: &mut Vec<u8>, field: u32, v: i64) {
    uint_field(out, field, v as u64);
}

/// A length-delimited field (wire type 2): a string, bytes, a message or a packed list.
fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    varint(out, u64::from(field) << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A packed repeated varint field (omitted when empty).
fn packed_field(out: &mut Vec<u8>, field: u32, values: impl IntoIterator<Item = u64>) {
    let mut body = Vec::new();
    for v in values {
        varint(&mut body, v);
    }
    if !body.is_empty() {
        bytes_field(out, field, &body);
    }
}

// ---------------------------------------------------------------- the profile

/// One line of a location: a function and a line in it (0: unknown).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Line {
    pub function: Function,
    pub line: i64,
}

/// A function as pprof names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Function {
    pub name: String,
    pub filename: String,
}

/// One stack frame as a pprof location: where in which module, and the functions there,
/// innermost (inlined) first, the caller they were inlined into last.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    /// The module's path ("" when unknown).
    pub module: String,
    /// The offset in the module (0 when unknown): stable across processes, unlike addresses.
    pub address: u64,
    pub lines: Vec<Line>,
}

#[derive(Debug, Default)]
struct Mapping {
    filename: i64,
}

/// A sample's identity: its location ids (leaf first) and its labels (key, value string ids).
type SampleKey = (Vec<u64>, Vec<(i64, i64)>);

#[derive(Debug)]
struct Location {
    mapping_id: u64,
    address: u64,
    lines: Vec<(u64, i64)>,
}

/// Collects samples and encodes a profile.
#[derive(Debug)]
pub struct Builder {
    strings: Vec<String>,
    string_ids: HashMap<String, i64>,
    functions: Vec<(i64, i64)>,
    function_ids: HashMap<Function, u64>,
    mappings: Vec<Mapping>,
    mapping_ids: HashMap<String, u64>,
    locations: Vec<Location>,
    location_ids: HashMap<Frame, u64>,
    /// (location ids leaf first, labels) → value.
    samples: BTreeMap<SampleKey, i64>,
    sample_type: (i64, i64),
    comments: Vec<i64>,
    time_nanos: i64,
}

impl Builder {
    /// A profile whose one sample type (also its period type) is `kind`/`unit`, e.g.
    /// `sockets`/`count`: the value of a sample is how many there are now (an "inuse" type).
    pub fn new(kind: &str, unit: &str) -> Builder {
        let mut b = Builder {
            strings: Vec::new(),
            string_ids: HashMap::new(),
            functions: Vec::new(),
            function_ids: HashMap::new(),
            mappings: Vec::new(),
            mapping_ids: HashMap::new(),
            locations: Vec::new(),
            location_ids: HashMap::new(),
            samples: BTreeMap::new(),
            sample_type: (0, 0),
            comments: Vec::new(),
            time_nanos: 0,
        };
        b.string(""); // string_table[0] must be ""
        b.sample_type = (b.string(kind), b.string(unit));
        b
    }

    fn string(&mut self, s: &str) -> i64 {
        if let Some(&id) = self.string_ids.get(s) {
            return id;
        }
        let id = self.strings.len() as i64;
        self.strings.push(s.to_string());
        self.string_ids.insert(s.to_string(), id);
        id
    }

    fn function(&mut self, f: &Function) -> u64 {
        if let Some(&id) = self.function_ids.get(f) {
            return id;
        }
        let entry = (self.string(&f.name), self.string(&f.filename));
        self.functions.push(entry);
        let id = self.functions.len() as u64;
        self.function_ids.insert(f.clone(), id);
        id
    }

    fn mapping(&mut self, module: &str) -> u64 {
        if module.is_empty() {
            return 0;
        }
        if let Some(&id) = self.mapping_ids.get(module) {
            return id;
        }
        let filename = self.string(module);
        self.mappings.push(Mapping { filename });
        let id = self.mappings.len() as u64;
        self.mapping_ids.insert(module.to_string(), id);
        id
    }

    fn location(&mut self, frame: &Frame) -> u64 {
        if let Some(&id) = self.location_ids.get(frame) {
            return id;
        }
        let mapping_id = self.mapping(&frame.module);
        let lines = frame
            .lines
            .iter()
            .map(|l| (self.function(&l.function), l.line))
            .collect();
        self.locations.push(Location {
            mapping_id,
            address: frame.address,
            lines,
        });
        let id = self.locations.len() as u64;
        self.location_ids.insert(frame.clone(), id);
        id
    }

    /// Adds `value` to the sample with this stack (innermost frame first) and these labels.
    pub fn add(&mut self, stack: &[Frame], labels: &[(&str, &str)], value: i64) {
        let locations = stack.iter().map(|f| self.location(f)).collect();
        let mut labels: Vec<(i64, i64)> = labels
            .iter()
            .map(|(k, v)| (self.string(k), self.string(v)))
            .collect();
        labels.sort_unstable();
        *self.samples.entry((locations, labels)).or_default() += value;
    }

    /// Adds a comment line (shown by `go tool pprof -comments`).
    pub fn comment(&mut self, text: &str) {
        let id = self.string(text);
        self.comments.push(id);
    }

    /// When the profile was taken, nanoseconds since the Unix epoch.
    pub fn set_time_nanos(&mut self, nanos: i64) {
        self.time_nanos = nanos;
    }

    /// The number of distinct samples so far.
    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }

    /// The encoded `Profile` message (not compressed).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let value_type = |(kind, unit): (i64, i64)| {
            let mut m = Vec::new();
            int_field(&mut m, 1, kind);
            int_field(&mut m, 2, unit);
            m
        };
        bytes_field(&mut out, 1, &value_type(self.sample_type));
        for ((locations, labels), value) in &self.samples {
            let mut m = Vec::new();
            packed_field(&mut m, 1, locations.iter().copied());
            packed_field(&mut m, 2, [*value as u64]);
            for &(key, s) in labels {
                let mut label = Vec::new();
                int_field(&mut label, 1, key);
                int_field(&mut label, 2, s);
                bytes_field(&mut m, 3, &label);
            }
            bytes_field(&mut out, 2, &m);
        }
        for (i, mapping) in self.mappings.iter().enumerate() {
            let mut m = Vec::new();
            uint_field(&mut m, 1, i as u64 + 1);
            // Addresses are module offsets: the mapping spans the whole offset space.
            uint_field(&mut m, 3, u64::MAX);
            int_field(&mut m, 5, mapping.filename);
            // Names are filled in: pprof must not try to symbolise these frames itself.
            uint_field(&mut m, 7, 1);
            uint_field(&mut m, 8, 1);
            uint_field(&mut m, 9, 1);
            uint_field(&mut m, 10, 1);
            bytes_field(&mut out, 3, &m);
        }
        for (i, location) in self.locations.iter().enumerate() {
            let mut m = Vec::new();
            uint_field(&mut m, 1, i as u64 + 1);
            uint_field(&mut m, 2, location.mapping_id);
            uint_field(&mut m, 3, location.address);
            for &(function_id, line) in &location.lines {
                let mut l = Vec::new();
                uint_field(&mut l, 1, function_id);
                int_field(&mut l, 2, line);
                bytes_field(&mut m, 4, &l);
            }
            bytes_field(&mut out, 4, &m);
        }
        for (i, &(name, filename)) in self.functions.iter().enumerate() {
            let mut m = Vec::new();
            uint_field(&mut m, 1, i as u64 + 1);
            int_field(&mut m, 2, name);
            int_field(&mut m, 3, name);
            int_field(&mut m, 4, filename);
            bytes_field(&mut out, 5, &m);
        }
        for s in &self.strings {
            bytes_field(&mut out, 6, s.as_bytes());
        }
        int_field(&mut out, 9, self.time_nanos);
        bytes_field(&mut out, 11, &value_type(self.sample_type));
        int_field(&mut out, 12, 1);
        packed_field(&mut out, 13, self.comments.iter().map(|&c| c as u64));
        int_field(&mut out, 14, self.sample_type.0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_as_the_protobuf_spec_writes_them() {
        let enc = |v| {
            let mut out = Vec::new();
            varint(&mut out, v);
            out
        };
        assert_eq!(enc(1), [0x01]);
        assert_eq!(enc(150), [0x96, 0x01]);
        assert_eq!(enc(300), [0xac, 0x02]);
        assert_eq!(enc(u64::MAX).len(), 10);
        let mut neg = Vec::new();
        int_field(&mut neg, 1, -1);
        assert_eq!(neg.len(), 11, "key + ten bytes");
    }

    #[test]
    fn fields_and_the_smallest_profile() {
        let mut out = Vec::new();
        bytes_field(&mut out, 6, b"ab");
        assert_eq!(out, [0x32, 0x02, b'a', b'b']);
        let mut out = Vec::new();
        packed_field(&mut out, 1, [3, 270]);
        assert_eq!(out, [0x0a, 0x03, 0x03, 0x8e, 0x02]);

        let b = Builder::new("sockets", "count");
        let bytes = b.encode();
        // sample_type {type: 1, unit: 2}; then the string table "", "sockets", "count".
        assert_eq!(&bytes[..6], [0x0a, 0x04, 0x08, 0x01, 0x10, 0x02]);
        assert_eq!(&bytes[6..8], [0x32, 0x00]);
        assert_eq!(
            &bytes[8..17],
            [0x32, 0x07, b's', b'o', b'c', b'k', b'e', b't', b's']
        );
    }

    #[test]
    fn same_stack_and_labels_add_up_and_tables_are_shared() {
        let f = |name: &str| Frame {
            module: "/usr/bin/app".into(),
            address: 0x1234,
            lines: vec![Line {
                function: Function {
                    name: name.into(),
                    filename: "app.c".into(),
                },
                line: 7,
            }],
        };
        let mut b = Builder::new("sockets", "count");
        b.add(&[f("leak"), f("main")], &[("tcp_state", "CLOSE_WAIT")], 1);
        b.add(&[f("leak"), f("main")], &[("tcp_state", "CLOSE_WAIT")], 2);
        b.add(&[f("leak"), f("main")], &[("tcp_state", "ESTABLISHED")], 1);
        assert_eq!(b.sample_count(), 2);
        assert_eq!(
            (b.locations.len(), b.functions.len(), b.mappings.len()),
            (2, 2, 1)
        );
        assert_eq!(b.samples.values().copied().collect::<Vec<_>>(), [3, 1]);
    }
}
