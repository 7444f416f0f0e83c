//! Queries: a selector, an optional sort on one field, an optional limit,
//! read page by page through a cursor.
//!
//! The plan is chosen once, when the query opens:
//! - sorted on an indexed field: walk that index (in either direction);
//! - else, a selector bounding an indexed field: walk that index's range,
//!   so the work is proportional to the result, not to the doctype;
//! - else: walk the doctype's documents in id order;
//! - sorted on a field without an index: the matching ids are collected and
//!   sorted when the query opens, then read page by page.
//!
//! A cursor remembers the last key it returned, not an offset, so pages
//! are neither skipped nor repeated while documents are written. Sorting on
//! a field returns only documents that have it.

use std::ops::Bound;

use domicile_manifest::Doctype;

use crate::docs::{doc_prefix, parse_doc_key, StoredDoc};
use crate::{decode, index, DocId, Document, FieldPath, ResidentSpace, Result, Selector};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub field: FieldPath,
    pub descending: bool,
}

impl Sort {
    /// `field` (ascending) or `-field` (descending), as the CLI and the API take it.
    pub fn parse(text: &str) -> Result<Sort> {
        let (field, descending) = text.strip_prefix('-').map_or((text, false), |f| (f, true));
        Ok(Sort { field: FieldPath::parse(field)?, descending })
    }
}

#[derive(Debug, Clone)]
pub struct Query {
    pub doctype: Doctype,
    pub selector: Selector,
    pub sort: Option<Sort>,
    pub limit: Option<u64>,
}

impl Query {
    pub fn all(doctype: Doctype) -> Query {
        Query { doctype, selector: Selector::all(), sort: None, limit: None }
    }
}

#[derive(Debug)]
enum Plan {
    /// Documents of the doctype, in id order: keys within [start, end).
    Documents { start: Vec<u8>, end: Vec<u8> },
    /// Entries of one index within [start, end), values are document ids.
    Index { start: Vec<u8>, end: Vec<u8>, descending: bool },
    /// Ids sorted when the query opened.
    Snapshot { ids: Vec<DocId>, next: usize },
}

/// An open query; see [`ResidentSpace::next_page`].
#[derive(Debug)]
pub struct QueryCursor {
    doctype: Doctype,
    selector: Selector,
    plan: Plan,
    /// The last key returned by a key-ordered plan.
    last: Option<Vec<u8>>,
    remaining: u64,
    done: bool,
}

impl QueryCursor {
    pub fn doctype(&self) -> &Doctype {
        &self.doctype
    }

    /// Whether every result has been returned.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether the plan reads an index (for tests and `--explain`).
    pub fn uses_index(&self) -> bool {
        matches!(self.plan, Plan::Index { .. })
    }
}

impl ResidentSpace {
    pub fn query(&self, query: Query) -> Result<QueryCursor> {
        let Query { doctype, selector, sort, limit } = query;
        let indexed = |field: &FieldPath| self.vocabulary.indexes(&doctype).contains(field);
        let index_plan = |field: &FieldPath, descending: bool| {
            let prefix = index::prefix(&doctype, field);
            let (lower, upper) = selector.bounds_on(field).unwrap_or((Bound::Unbounded, Bound::Unbounded));
            let (start, end) = index::key_range(&prefix, lower, upper);
            Plan::Index { start, end, descending }
        };
        let unsorted_plan = || match self.vocabulary.indexes(&doctype).iter().find(|f| selector.bounds_on(f).is_some())
        {
            Some(field) => index_plan(field, false),
            None => {
                let start = doc_prefix(&doctype);
                let mut end = start.clone();
                *end.last_mut().expect("prefix ends in NUL") = 1;
                Plan::Documents { start, end }
            }
        };
        let plan = match &sort {
            Some(sort) if indexed(&sort.field) => index_plan(&sort.field, sort.descending),
            Some(sort) => {
                let mut cursor = QueryCursor {
                    doctype: doctype.clone(),
                    selector: selector.clone(),
                    plan: unsorted_plan(),
                    last: None,
                    remaining: u64::MAX,
                    done: false,
                };
                let mut keyed: Vec<(Vec<u8>, DocId)> = Vec::new();
                loop {
                    let page = self.next_page(&mut cursor, 1000)?;
                    if page.is_empty() {
                        break;
                    }
                    for doc in page {
                        let mut key = Vec::new();
                        if sort.field.lookup(&doc.body).is_some_and(|v| index::encode_value(v, &mut key)) {
                            keyed.push((key, doc.id));
                        }
                    }
                }
                keyed.sort();
                if sort.descending {
                    keyed.reverse();
                }
                Plan::Snapshot { ids: keyed.into_iter().map(|(_, id)| id).collect(), next: 0 }
            }
            None => unsorted_plan(),
        };
        Ok(QueryCursor { doctype, selector, plan, last: None, remaining: limit.unwrap_or(u64::MAX), done: false })
    }

    /// The next at most `max` matching documents; empty when the query is done.
    pub fn next_page(&self, cursor: &mut QueryCursor, max: usize) -> Result<Vec<Document>> {
        let max = (max.max(1) as u64).min(cursor.remaining) as usize;
        if cursor.done || max == 0 {
            return Ok(Vec::new());
        }
        let QueryCursor { doctype, selector, plan, last, remaining, done } = cursor;
        let mut page = Vec::new();
        match plan {
            Plan::Documents { start, end } => {
                let from = last.clone().map_or(Bound::Included(start.clone()), Bound::Excluded);
                *done = true;
                for item in self.docs.range((from, Bound::Excluded(end.clone()))) {
                    let (key, value) = item?;
                    *last = Some(key.to_vec());
                    let (doctype, id) = parse_doc_key(&key)?;
                    let stored: StoredDoc = decode("a document", &value)?;
                    if selector.matches(&stored.body) {
                        page.push(Document { doctype, id, body: stored.body, meta: stored.meta });
                    }
                    if page.len() >= max {
                        *done = false;
                        break;
                    }
                }
            }
            Plan::Index { start, end, descending } => {
                let range = match (&*last, *descending) {
                    (None, _) => (Bound::Included(start.clone()), Bound::Excluded(end.clone())),
                    (Some(l), false) => (Bound::Excluded(l.clone()), Bound::Excluded(end.clone())),
                    (Some(l), true) => (Bound::Included(start.clone()), Bound::Excluded(l.clone())),
                };
                let entries = self.index.range(range);
                let entries: Box<dyn Iterator<Item = _>> =
                    if *descending { Box::new(entries.rev()) } else { Box::new(entries) };
                *done = true;
                for item in entries {
                    let (key, id) = item?;
                    *last = Some(key.to_vec());
                    let id: DocId = std::str::from_utf8(&id)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| crate::StoreError::Corrupt("an index entry".into()))?;
                    // Index and documents change in one transaction, but a
                    // write may land between reading the entry and the document.
                    if let Some(doc) = self.get(doctype, &id)?.filter(|d| selector.matches(&d.body)) {
                        page.push(doc);
                    }
                    if page.len() >= max {
                        *done = false;
                        break;
                    }
                }
            }
            Plan::Snapshot { ids, next } => {
                while *next < ids.len() && page.len() < max {
                    if let Some(doc) = self.get(doctype, &ids[*next])?.filter(|d| selector.matches(&d.body)) {
                        page.push(doc);
                    }
                    *next += 1;
                }
                *done = *next >= ids.len();
            }
        }
        *remaining -= page.len() as u64;
        if *remaining == 0 {
            *done = true;
        }
        Ok(page)
    }

    /// Convenience: every document a query returns.
    pub fn query_all(&self, query: Query) -> Result<Vec<Document>> {
        let mut cursor = self.query(query)?;
        let mut out = Vec::new();
        loop {
            let page = self.next_page(&mut cursor, 1000)?;
            if page.is_empty() {
                return Ok(out);
            }
            out.extend(page);
        }
    }
}
