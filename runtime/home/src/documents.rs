//! A resident's own writes to their documents (not through an app): they
//! are recorded as the resident's, with the time.

use domicile_manifest::Doctype;
use domicile_store::{Author, Change, DocId, ResidentSpace};

use crate::{Home, Result};

impl Home {
    /// Adds or replaces a document; without an id, its natural key (or a
    /// new id) names it. Returns the id once the write is on disk.
    pub fn put_document(
        &self,
        space: &ResidentSpace,
        doctype: &Doctype,
        id: Option<DocId>,
        body: serde_json::Value,
    ) -> Result<DocId> {
        let id = match id {
            Some(id) => id,
            None => space.id_for(doctype, &body)?,
        };
        let change = Change::Put { doctype: doctype.clone(), id: id.clone(), body };
        space.commit(&[change], &Author::Resident, self.now_ms(), &[])?;
        Ok(id)
    }

    pub fn delete_document(&self, space: &ResidentSpace, doctype: &Doctype, id: DocId) -> Result<()> {
        let change = Change::Delete { doctype: doctype.clone(), id };
        Ok(space.commit(&[change], &Author::Resident, self.now_ms(), &[])?)
    }
}

impl Home {
    /// Discards an outbox item: it is never sent.
    pub fn deny_outbox(&self, space: &ResidentSpace, id: u64) -> Result<domicile_store::OutboxItem> {
        Ok(domicile_egress::deny(space, id, self.now_ms())?)
    }
}
