//! What an importer tells the resident about the file it reads (WIT
//! `import-report`): the records it left out of a partial import. Leaving
//! a record out is the resident's choice (`ImportMode::ValidRecords`);
//! without it, the importer is told no and fails with the record's error,
//! so a file with a broken record imports nothing.

use wasmtime::component::Linker;

use crate::bindings::importer::domicile::app::import_report;
use crate::bindings::types;
use crate::import::{LeftOut, MAX_LEFT_OUT};
use crate::shared::{Reply, Shared};

/// The longest location and reason of a record left out that are kept.
const MAX_LOCATION: usize = 200;
const MAX_REASON: usize = 500;

/// The records an importer left out, when the resident allowed it.
#[derive(Default)]
pub(crate) struct ReportState {
    /// `None`: the import is all or nothing.
    pub(crate) left_out: Option<Vec<LeftOut>>,
}

/// The report, as the `import-report` interface sees it.
pub(crate) struct ReportView<'a> {
    pub(crate) state: &'a mut ReportState,
    pub(crate) shared: &'a mut Shared,
}

crate::shared::served_by!(ReportCapability, ReportView);

/// Links `import-report`, each call reaching the state `view` gives.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> ReportView<'_>,
) -> wasmtime::Result<()> {
    import_report::add_to_linker::<T, ReportCapability>(linker, view)
}

impl import_report::Host for ReportView<'_> {
    fn skip(&mut self, location: String, reason: String) -> Reply<()> {
        self.shared.limiter.charge_call()?;
        let Some(left_out) = self.state.left_out.as_mut() else {
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
