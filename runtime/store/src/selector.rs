//! The selector language for queries: a JSON object mapping field paths
//! (dotted for nested fields, `"start.date"`) to a required value or to an
//! object of operators: `$gt`, `$gte`, `$lt`, `$lte`, `$in`, `$exists`.
//! `{}` selects everything. Comparisons hold between numbers, or between
//! strings (lexicographic, so ISO-8601 dates order correctly); a field of
//! another type never matches a comparison.

use std::cmp::Ordering;
use std::ops::Bound;

use serde_json::{Map, Value};

use crate::{FieldPath, StoreError};

#[derive(Debug, Clone, PartialEq)]
enum Condition {
    Eq(Value),
    Cmp(Ordering, bool, Value),
    In(Vec<Value>),
    Exists(bool),
}

/// A parsed selector: every clause must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector {
    clauses: Vec<(FieldPath, Condition)>,
}

fn invalid(msg: String) -> StoreError {
    StoreError::Invalid(format!("invalid selector: {msg}"))
}

impl Selector {
    /// Everything.
    pub fn all() -> Selector {
        Selector::default()
    }

    pub fn parse(text: &str) -> Result<Selector, StoreError> {
        let value: Value = serde_json::from_str(text).map_err(|e| invalid(format!("not JSON ({e})")))?;
        Selector::from_value(&value)
    }

    pub fn from_value(value: &Value) -> Result<Selector, StoreError> {
        let object =
            value.as_object().ok_or_else(|| invalid("must be a JSON object such as {\"mode\": \"bus\"}".into()))?;
        let mut clauses = Vec::new();
        for (path, wanted) in object {
            let path = FieldPath::parse(path).map_err(|e| invalid(e.to_string()))?;
            match wanted {
                Value::Object(ops) if ops.keys().any(|k| k.starts_with('$')) => {
                    for condition in operators(ops)? {
                        clauses.push((path.clone(), condition));
                    }
                }
                other => clauses.push((path, Condition::Eq(other.clone()))),
            }
        }
        Ok(Selector { clauses })
    }

    /// The top-level fields the selector looks at: an app restricted to
    /// some fields must not learn others through what a query matches.
    pub fn top_level_fields(&self) -> impl Iterator<Item = &str> {
        self.clauses.iter().map(|(path, _)| path.top())
    }

    /// The bounds this selector puts on one field's value, if any: what an
    /// index on that field needs to read only the matching range.
    pub(crate) fn bounds_on(&self, field: &FieldPath) -> Option<(Bound<&Value>, Bound<&Value>)> {
        let (mut lower, mut upper) = (Bound::Unbounded, Bound::Unbounded);
        let mut constrained = false;
        for (path, condition) in &self.clauses {
            if path != field {
                continue;
            }
            match condition {
                Condition::Eq(v) if !v.is_array() && !v.is_object() => {
                    return Some((Bound::Included(v), Bound::Included(v)));
                }
                Condition::Cmp(Ordering::Greater, or_equal, v) => {
                    lower = if *or_equal { Bound::Included(v) } else { Bound::Excluded(v) };
                    constrained = true;
                }
                Condition::Cmp(_, or_equal, v) => {
                    upper = if *or_equal { Bound::Included(v) } else { Bound::Excluded(v) };
                    constrained = true;
                }
                _ => {}
            }
        }
        constrained.then_some((lower, upper))
    }

    pub fn matches(&self, body: &Value) -> bool {
        self.clauses.iter().all(|(path, condition)| {
            let field = path.lookup(body);
            match (condition, field) {
                (Condition::Exists(wanted), field) => field.is_some() == *wanted,
                (_, None) => false,
                (Condition::Eq(wanted), Some(v)) => v == wanted,
                (Condition::In(list), Some(v)) => list.contains(v),
                (Condition::Cmp(side, or_equal, bound), Some(v)) => match compare(v, bound) {
                    Some(Ordering::Equal) => *or_equal,
                    Some(o) => o == *side,
                    None => false,
                },
            }
        })
    }
}

fn operators(ops: &Map<String, Value>) -> Result<Vec<Condition>, StoreError> {
    ops.iter()
        .map(|(op, arg)| {
            Ok(match op.as_str() {
                "$gt" => Condition::Cmp(Ordering::Greater, false, comparable(op, arg)?),
                "$gte" => Condition::Cmp(Ordering::Greater, true, comparable(op, arg)?),
                "$lt" => Condition::Cmp(Ordering::Less, false, comparable(op, arg)?),
                "$lte" => Condition::Cmp(Ordering::Less, true, comparable(op, arg)?),
                "$in" => Condition::In(
                    arg.as_array().cloned().ok_or_else(|| invalid("`$in` takes a list of values".into()))?,
                ),
                "$exists" => {
                    Condition::Exists(arg.as_bool().ok_or_else(|| invalid("`$exists` takes true or false".into()))?)
                }
                other => {
                    return Err(invalid(format!(
                        "unknown operator `{other}`; use $gt, $gte, $lt, $lte, $in or $exists"
                    )))
                }
            })
        })
        .collect()
}

fn comparable(op: &str, arg: &Value) -> Result<Value, StoreError> {
    match arg {
        Value::Number(_) | Value::String(_) => Ok(arg.clone()),
        _ => Err(invalid(format!("`{op}` compares with a number or a string"))),
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}
