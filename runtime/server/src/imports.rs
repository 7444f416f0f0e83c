//! The imports under way on this server, per resident: while an upload's
//! request waits for its answer (an import of a year of half-hourly
//! readings takes a while), the web UI asks here how far the importer has
//! got.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use domicile_host::ImportProgress;
use domicile_manifest::AppId;
use domicile_store::ResidentName;
use serde_json::{json, Value};

#[derive(Default)]
pub(crate) struct Imports {
    next: AtomicU64,
    under_way: Mutex<Vec<UnderWay>>,
}

struct UnderWay {
    id: u64,
    resident: ResidentName,
    app: AppId,
    file: String,
    started: Instant,
    progress: Arc<ImportProgress>,
}

/// An import under way, listed until dropped.
pub(crate) struct Listed<'a> {
    imports: &'a Imports,
    id: u64,
    pub(crate) progress: Arc<ImportProgress>,
}

impl Drop for Listed<'_> {
    fn drop(&mut self) {
        self.imports.lock().retain(|i| i.id != self.id);
    }
}

impl Imports {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<UnderWay>> {
        self.under_way.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lists an import of `file` by `app` for `resident`, with the progress
    /// its runtime reports, until the returned guard is dropped.
    pub(crate) fn begin(&self, resident: &ResidentName, app: &AppId, file: &str) -> Listed<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let progress = Arc::new(ImportProgress::default());
        self.lock().push(UnderWay {
            id,
            resident: resident.clone(),
            app: app.clone(),
            file: file.to_owned(),
            started: Instant::now(),
            progress: progress.clone(),
        });
        Listed { imports: self, id, progress }
    }

    /// `resident`'s imports under way: the importer, the file, the
    /// documents written so far, whether they are being saved (all or
    /// nothing), and for how long it has run.
    pub(crate) fn of(&self, resident: &ResidentName) -> Vec<Value> {
        self.lock()
            .iter()
            .filter(|i| &i.resident == resident)
            .map(|i| {
                json!({
                    "app": i.app.as_str(),
                    "file": i.file,
                    "documents": i.progress.documents(),
                    "saving": i.progress.saving(),
                    "seconds": (i.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
                })
            })
            .collect()
    }
}
