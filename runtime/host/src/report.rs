//! What an importer tells the resident about the file it reads (WIT
//! `import-report`): the records it left out of a partial import. Leaving
//! a record out is the resident's choice (`ImportMode::ValidRecords`);
//! without it, the importer is told no and fails with the record's error,
//! so a file with a broken record imports nothing.

use crate::bindings::importer::domicile::app::import_report;
use crate::bindings::types;
use crate::import::{LeftOut, MAX_LEFT_OUT};
use crate::sandbox::Invocation;

/// The longest location and reason of a record left out that are kept.
const MAX_LOCATION: usize = 200;
const MAX_REASON: usize = 500;

impl import_report::Host for Invocation {
    fn skip(&mut self, location: String, reason: String) -> crate::data::Reply<()> {
        self.charge_call()?;
        let Some(left_out) = self.left_out.as_mut() else {
            return Ok(Err(types::Error::Denied(
                "the resident imports whole files: a broken record refuses the file".into(),
            )));
        };
        if left_out.len() >= MAX_LEFT_OUT {
            return Ok(Err(types::Error::Limit(format!(
                "more than {MAX_LEFT_OUT} broken records: this is not a file this importer reads"
            ))));
        }
        left_out.push(LeftOut {
            location: location.chars().take(MAX_LOCATION).collect(),
            reason: reason.chars().take(MAX_REASON).collect(),
        });
        Ok(Ok(()))
    }
}
