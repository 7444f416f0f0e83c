//! Secondary indexes: for each indexed field of a document, one entry
//! `doctype NUL field NUL encoded-value id → id` in the resident's index
//! tree. The value encoding sorts like the values do (null < false < true <
//! numbers < strings; numbers numerically, strings bytewise), so a range of
//! values is a range of keys and a range query reads only its results.

use std::ops::Bound;

use domicile_manifest::Doctype;
use serde_json::Value;

use crate::FieldPath;

const NULL: u8 = 0x01;
const FALSE: u8 = 0x02;
const TRUE: u8 = 0x03;
const NUMBER: u8 = 0x04;
const STRING: u8 = 0x05;
/// Greater than every byte of an encoded value followed by a UTF-8 id.
const AFTER: u8 = 0xff;

/// Appends the sortable encoding of a scalar; arrays and objects are not
/// indexed (returns false).
pub(crate) fn encode_value(value: &Value, out: &mut Vec<u8>) -> bool {
    match value {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Number(n) => {
            let Some(f) = n.as_f64() else { return false };
            // IEEE 754 to an unsigned integer of the same order.
            let bits = f.to_bits();
            let ordered = if bits >> 63 == 1 { !bits } else { bits | 1 << 63 };
            out.push(NUMBER);
            out.extend_from_slice(&ordered.to_be_bytes());
        }
        Value::String(s) => {
            out.push(STRING);
            // NUL is escaped so that the terminator sorts first: "a" < "a\0" < "ab".
            for &b in s.as_bytes() {
                out.push(b);
                if b == 0 {
                    out.push(AFTER);
                }
            }
            out.extend_from_slice(&[0, 0]);
        }
        Value::Array(_) | Value::Object(_) => return false,
    }
    true
}

/// `doctype NUL field NUL`: the start of every entry of one index.
pub(crate) fn prefix(doctype: &Doctype, field: &FieldPath) -> Vec<u8> {
    let mut p = Vec::with_capacity(64);
    p.extend_from_slice(doctype.as_str().as_bytes());
    p.push(0);
    p.extend_from_slice(field.to_string().as_bytes());
    p.push(0);
    p
}

/// Every index key of a document body under the doctype's indexed fields.
pub(crate) fn entries(doctype: &Doctype, fields: &[FieldPath], id: &str, body: &Value) -> Vec<Vec<u8>> {
    fields
        .iter()
        .filter_map(|field| {
            let mut key = prefix(doctype, field);
            if !encode_value(field.lookup(body)?, &mut key) {
                return None;
            }
            key.extend_from_slice(id.as_bytes());
            Some(key)
        })
        .collect()
}

/// The key range of an index holding exactly the values within the bounds.
/// An unbounded side stays within the type of the other bound, so that
/// `$gt: 5` does not wander into the strings.
pub(crate) fn key_range(prefix: &[u8], lower: Bound<&Value>, upper: Bound<&Value>) -> (Vec<u8>, Vec<u8>) {
    let with = |v: &Value, suffix: Option<u8>| {
        let mut k = prefix.to_vec();
        encode_value(v, &mut k);
        k.extend(suffix);
        k
    };
    let type_tag = |v: &Value| {
        let mut k = Vec::new();
        encode_value(v, &mut k);
        k[0]
    };
    let bounded_type = match (lower, upper) {
        (Bound::Included(v) | Bound::Excluded(v), _) | (_, Bound::Included(v) | Bound::Excluded(v)) => {
            Some(type_tag(v))
        }
        _ => None,
    };
    let start = match lower {
        Bound::Included(v) => with(v, None),
        Bound::Excluded(v) => with(v, Some(AFTER)),
        Bound::Unbounded => [prefix, &bounded_type.map(|t| vec![t]).unwrap_or_default()].concat(),
    };
    let end = match upper {
        Bound::Included(v) => with(v, Some(AFTER)),
        Bound::Excluded(v) => with(v, None),
        Bound::Unbounded => [prefix, &[bounded_type.map_or(AFTER, |t| t + 1)]].concat(),
    };
    (start, end)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn enc(v: Value) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(encode_value(&v, &mut out));
        out
    }

    #[test]
    fn encoding_sorts_like_the_values() {
        let ordered = [
            json!(null),
            json!(false),
            json!(true),
            json!(-1e300),
            json!(-2.5),
            json!(-0.0),
            json!(0),
            json!(1),
            json!(1.5),
            json!(1e12),
            json!(""),
            json!("a"),
            json!("a\u{0}"),
            json!("a\u{0}b"),
            json!("ab"),
            json!("b"),
            json!("é"),
        ];
        for pair in ordered.windows(2) {
            assert!(enc(pair[0].clone()) <= enc(pair[1].clone()), "{} !<= {}", pair[0], pair[1]);
        }
        assert!(!encode_value(&json!([1]), &mut Vec::new()));
    }

    #[test]
    fn key_ranges_select_exactly_their_values() {
        let prefix = b"d\0f\0".to_vec();
        let key = |v: Value, id: &str| [prefix.clone(), enc(v), id.as_bytes().to_vec()].concat();
        let keys =
            [key(json!(1), "a"), key(json!(2), "b"), key(json!(2), "c"), key(json!(3), "d"), key(json!("2"), "e")];
        let select = |lo: Bound<&Value>, hi: Bound<&Value>| {
            let (s, e) = key_range(&prefix, lo, hi);
            keys.iter().filter(|k| **k >= s && **k < e).map(|k| *k.last().unwrap() as char).collect::<String>()
        };
        let two = json!(2);
        assert_eq!(select(Bound::Included(&two), Bound::Included(&two)), "bc");
        assert_eq!(select(Bound::Excluded(&two), Bound::Unbounded), "d");
        assert_eq!(select(Bound::Unbounded, Bound::Excluded(&two)), "a");
        assert_eq!(select(Bound::Included(&two), Bound::Unbounded), "bcd");
        assert_eq!(select(Bound::Unbounded, Bound::Unbounded), "abcde");
    }
}
