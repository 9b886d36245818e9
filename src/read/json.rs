//! What untrusted JSON costs in memory once parsed, estimated from its text before parsing,
//! so that a parse is refused instead of exhausting memory.
//!
//! Two models, both upper bounds on what the parser allocates (64-bit, glibc malloc):
//!
//! * **Typed** (the manifest's fields, parsed into structs): the text's length (every string's
//!   bytes, once) plus [`TYPED_TOKEN`] bytes per `[`, `{`, `,` and `:` outside strings, plus
//!   one: a struct field or a `Vec` slot (doubled by growth) and a string's allocation overhead.
//! * **Value** (a `serde_json::Value` tree: a v1 manifest's embedded `analysis`, and
//!   `analysis.json` when `show` prints it): a non-empty object is a B-tree node of 11 entries
//!   (~640 bytes, [`VALUE_OBJECT`]) and each member costs up to [`VALUE_MEMBER`] more as nodes
//!   fill half-way and split; a non-empty array is a `Vec<Value>` of at least 4 slots
//!   ([`VALUE_ARRAY`]) plus up to two 32-byte slots per further element ([`VALUE_ELEMENT`]);
//!   every string allocation costs [`VALUE_STRING`] beyond its bytes. Measured: 16 MiB of
//!   `{"":0},` objects parse to ~1.6 GB of `Value` (≈ 700 bytes per object); this model charges
//!   850.
//!
//! The scan is one pass over the bytes and allocates nothing but a small stack of container
//! kinds (nesting deeper than [`MAX_TRACKED_DEPTH`] is charged as the most expensive kind; the
//! parser refuses nesting beyond 128 anyway).

/// Typed model: bytes per structural token.
pub const TYPED_TOKEN: usize = 48;
/// Value model: a non-empty object (one B-tree leaf node plus malloc overhead).
pub const VALUE_OBJECT: usize = 656;
/// Value model: each object member (its share of half-full nodes and internal nodes).
pub const VALUE_MEMBER: usize = 160;
/// Value model: a non-empty array (its first allocation of 4 slots of 32 bytes, plus overhead).
pub const VALUE_ARRAY: usize = 144;
/// Value model: each array element after the first (two slots: growth doubles capacity).
pub const VALUE_ELEMENT: usize = 64;
/// Value model: a string's allocation overhead (its bytes are counted in the text's length).
pub const VALUE_STRING: usize = 32;
/// Deepest nesting whose container kinds are tracked exactly.
pub const MAX_TRACKED_DEPTH: usize = 256;

/// Which parts of a document are parsed into `serde_json::Value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// The whole document is a `Value`.
    Value,
    /// A manifest: typed, except the value of a top-level `analysis` key (and, to be safe, of
    /// any top-level key written with an escape, which the parser could decode to `analysis`).
    Manifest,
}

/// Estimated bytes of memory `bytes` costs once parsed under `model` (saturating).
pub fn cost(bytes: &[u8], model: Model) -> usize {
    let mut total = bytes.len().saturating_add(TYPED_TOKEN);
    // Container stack: true = object. Beyond MAX_TRACKED_DEPTH only the depth is counted.
    let mut stack: Vec<bool> = Vec::new();
    let mut depth = 0usize;
    let mut in_str = false;
    // Value mode: at and below this depth, charge the Value model.
    let mut value_from: Option<usize> = if model == Model::Value { Some(0) } else { None };
    // Top-level key detection (Model::Manifest): where the current string started, whether it
    // had an escape, and whether the last key read at depth 1 selects Value mode.
    let (mut str_start, mut str_escaped) = (0usize, false);
    let mut expecting_key = false;
    let mut key_selects_value = false;
    // The previous structural byte outside strings (to see an empty `[]` or `{}`).
    let mut prev = 0u8;
    let mut i = 0usize;
    while i < bytes.len() {
        if in_str {
            // String contents (most of a manifest: digests, paths) are skipped to the next
            // quote or backslash in one search.
            let Some(off) = memchr::memchr2(b'"', b'\\', &bytes[i..]) else { break };
            let at = i + off;
            if bytes[at] == b'\\' {
                // An escape: the backslash and the byte after it (a `\uXXXX` has no quote).
                str_escaped = true;
                i = at.saturating_add(2);
                continue;
            }
            in_str = false;
            if depth == 1 && expecting_key && model == Model::Manifest {
                key_selects_value = str_escaped || &bytes[str_start..at] == b"analysis";
                expecting_key = false;
            }
            i = at + 1;
            continue;
        }
        let b = bytes[i];
        i += 1;
        if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            continue;
        }
        // The value of a selected top-level key starts here.
        if model == Model::Manifest
            && depth == 1
            && key_selects_value
            && value_from.is_none()
            && !matches!(b, b'}' | b']' | b',' | b':')
        {
            value_from = Some(1);
        }
        let in_value = value_from.is_some_and(|d| depth >= d);
        match b {
            b'"' => {
                in_str = true;
                str_start = i;
                str_escaped = false;
                if in_value {
                    total = total.saturating_add(VALUE_STRING);
                }
            }
            b'{' | b'[' => {
                total = total.saturating_add(match (in_value, b) {
                    (false, _) => TYPED_TOKEN,
                    (true, b'{') => VALUE_OBJECT,
                    (true, _) => VALUE_ARRAY,
                });
                depth += 1;
                if stack.len() < MAX_TRACKED_DEPTH {
                    stack.push(b == b'{');
                }
                if depth == 1 {
                    expecting_key = b == b'{';
                }
            }
            b'}' | b']' => {
                // An empty container allocates nothing.
                if in_value && (prev == b'{' && b == b'}' || prev == b'[' && b == b']') {
                    total = total.saturating_sub(if b == b'}' { VALUE_OBJECT } else { VALUE_ARRAY });
                }
                if depth <= MAX_TRACKED_DEPTH {
                    stack.pop();
                }
                depth = depth.saturating_sub(1);
                if value_from.is_some_and(|d| depth < d) {
                    value_from = None;
                }
            }
            b',' => {
                // Beyond the tracked depth, charge the dearer kind (an array's element).
                let object = depth <= MAX_TRACKED_DEPTH && stack.last().copied().unwrap_or(false);
                total = total.saturating_add(match (in_value, object) {
                    (false, _) => TYPED_TOKEN,
                    (true, true) => 0,
                    (true, false) => VALUE_ELEMENT,
                });
                if depth == 1 {
                    // The top-level value ended: the next string is a key.
                    if value_from == Some(1) {
                        value_from = None;
                    }
                    key_selects_value = false;
                    expecting_key = true;
                }
            }
            b':' => {
                total = total.saturating_add(if in_value { VALUE_MEMBER } else { TYPED_TOKEN });
            }
            // A scalar's slot is charged by its container.
            _ => {}
        }
        prev = b;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(n: usize) -> Vec<u8> {
        let mut v = b"[".to_vec();
        for i in 0..n {
            v.extend_from_slice(if i == 0 { b"{\"\":0}" } else { b",{\"\":0}" });
        }
        v.push(b']');
        v
    }

    #[test]
    fn an_object_costs_what_a_btree_node_costs_in_a_value_and_little_in_a_struct() {
        let v = objects(1000);
        let value = cost(&v, Model::Value);
        assert!(value > 1000 * (VALUE_OBJECT + VALUE_MEMBER), "{value}");
        // The same array under a manifest's typed field is charged per token only.
        let typed = cost(&[b"{\"entries\":", v.as_slice(), b"}"].concat(), Model::Manifest);
        assert!(typed < value / 3, "{typed} vs {value}");
        // Under `analysis`, a manifest pays the Value price.
        let analysis = cost(&[b"{\"analysis\":", v.as_slice(), b",\"format\":\"x\"}"].concat(), Model::Manifest);
        assert!(analysis > value, "{analysis} vs {value}");
        // Written with an escape, the key is treated as `analysis`.
        let escaped = cost(&[b"{\"analys\\u0069s\":", v.as_slice(), b"}"].concat(), Model::Manifest);
        assert!(escaped > value, "{escaped} vs {value}");
    }

    #[test]
    fn empty_containers_and_scalars_are_cheap_and_the_value_mode_ends_with_its_value() {
        let empties = [b"[".as_slice(), &b"{},".repeat(999), b"{}]"].concat();
        assert!(cost(&empties, Model::Value) < 1000 * (VALUE_ELEMENT + 8), "{}", cost(&empties, Model::Value));
        // After `analysis`'s value, the next key's value is typed again.
        let v = objects(1000);
        let after = cost(&[b"{\"analysis\":1,\"entries\":", v.as_slice(), b"}"].concat(), Model::Manifest);
        let typed = cost(&[b"{\"entries\":", v.as_slice(), b"}"].concat(), Model::Manifest);
        assert!(after < typed + 200, "{after} vs {typed}");
    }

    /// The typed model, byte by byte (the first implementation): the skipping scanner must
    /// agree with it on any document without a Value part, escapes included.
    fn typed_reference(bytes: &[u8]) -> usize {
        let (mut in_str, mut esc, mut tokens) = (false, false, 1usize);
        for &b in bytes {
            if in_str {
                if esc {
                    esc = false;
                } else if b == b'\\' {
                    esc = true;
                } else if b == b'"' {
                    in_str = false;
                }
            } else {
                match b {
                    b'"' => in_str = true,
                    b'[' | b'{' | b',' | b':' => tokens += 1,
                    _ => {}
                }
            }
        }
        bytes.len() + tokens * TYPED_TOKEN
    }

    #[test]
    fn the_scanner_skips_strings_exactly_as_a_byte_by_byte_scan() {
        for doc in [
            r#"{"entries":[{"path":"a\"b","kind":"x,y:{["},{"path":"c\\","kind":"\u0022"}],"n":1}"#,
            r#"{"a":"\\\"","b":[1,2,{"c":"]}"}]}"#,
            r#"{"unterminated":"abc"#,
            r#"{"trailing backslash":"abc\"#,
            "",
            "[]",
        ] {
            assert_eq!(cost(doc.as_bytes(), Model::Manifest), typed_reference(doc.as_bytes()), "{doc}");
        }
    }

    #[test]
    fn the_value_model_is_an_upper_bound_of_what_serde_json_allocates() {
        // Count the allocation a parsed Value makes, by the same layout the model assumes; the
        // model must not be below it for shapes an attacker would pick.
        for doc in [
            objects(10_000),
            [b"[".as_slice(), &b"[1],".repeat(9_999), b"[1]]"].concat(),
            [
                b"{".as_slice(),
                &(0..10_000).map(|i| format!("\"k{i}\":0,")).collect::<String>().into_bytes(),
                b"\"z\":0}",
            ]
            .concat(),
            [b"[".as_slice(), &b"\"a\",".repeat(9_999), b"\"a\"]"].concat(),
        ] {
            let v: serde_json::Value = serde_json::from_slice(&doc).unwrap();
            let estimate = cost(&doc, Model::Value);
            let lower_bound_of_real = allocated(&v);
            assert!(estimate >= lower_bound_of_real, "{estimate} < {lower_bound_of_real}");
        }
    }

    /// A lower bound of what a `Value` tree holds on the heap (no malloc overhead counted).
    fn allocated(v: &serde_json::Value) -> usize {
        use serde_json::Value;
        match v {
            Value::String(s) => s.capacity(),
            Value::Array(a) => a.capacity() * 32 + a.iter().map(allocated).sum::<usize>(),
            Value::Object(m) => {
                let leaves = m.len().div_ceil(11);
                leaves * 632 + m.iter().map(|(k, v)| k.capacity() + allocated(v)).sum::<usize>()
            }
            _ => 0,
        }
    }
}
