//! Consistency check of a resident's space: every document readable and
//! valid against its doctype's schema, every
//! index entry pointing at a document that has that value (no stale
//! entries), none missing, usage counters right. Used by `domicile check`
//! and by the crash tests.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::docs::{parse_doc_key, StoredDoc, Usage};
use crate::{decode, index, ResidentSpace, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub documents: u64,
    pub index_entries: u64,
    pub problems: Vec<String>,
}

impl CheckReport {
    pub fn is_consistent(&self) -> bool {
        self.problems.is_empty()
    }
}

impl ResidentSpace {
    /// What the usage counters should say: the documents, counted.
    pub(crate) fn counted_usage(&self) -> Result<Usage> {
        let mut usage = Usage::default();
        for value in self.docs.iter().values() {
            usage.documents += 1;
            usage.bytes += value?.len() as u64;
        }
        Ok(usage)
    }

    pub fn verify(&self) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let mut expected = BTreeSet::new();
        let mut usage = Usage::default();
        for item in self.docs.iter() {
            let (key, value) = item?;
            let Ok((doctype, id)) = parse_doc_key(&key) else {
                report.problems.push("a document key is unreadable".into());
                continue;
            };
            let stored: StoredDoc = match decode("a document", &value) {
                Ok(s) => s,
                Err(_) => {
                    report.problems.push(format!("document `{id}` of `{doctype}` is unreadable"));
                    continue;
                }
            };
            if let Err(e) = self.vocabulary.validate(&doctype, &stored.body) {
                report.problems.push(format!("a document of `{doctype}` breaks its schema: {e}"));
            }
            report.documents += 1;
            usage.documents += 1;
            usage.bytes += value.len() as u64;
            expected.extend(index::entries(&doctype, self.vocabulary.indexes(&doctype), id.as_str(), &stored.body));
        }
        for key in self.index.iter().keys() {
            let key = key?;
            report.index_entries += 1;
            if !expected.remove(key.as_ref()) {
                report
                    .problems
                    .push(format!("stale index entry: {}", String::from_utf8_lossy(&key).replace('\0', "/")));
            }
        }
        for key in expected {
            report.problems.push(format!("missing index entry: {}", String::from_utf8_lossy(&key).replace('\0', "/")));
        }
        let recorded = self.usage()?;
        if recorded != usage {
            report.problems.push(format!(
                "usage counters say {} documents and {} bytes, the documents add up to {} and {}",
                recorded.documents, recorded.bytes, usage.documents, usage.bytes
            ));
        }
        Ok(report)
    }
}
