//! Progress of long work on a terminal: an import of a large file shows
//! how many documents it has written, how fast, from how big a file, while
//! it runs. Nothing is drawn when stderr is not a terminal, with `--json`,
//! or for work that ends within half a second. A command a running server
//! executes for a `domicile` beside it sends the same line to that client,
//! which draws it on its terminal (see the control module).

use std::sync::Arc;
use std::time::{Duration, Instant};

use domicile_host::ImportProgress;

use crate::terminal::safe;

/// How long work runs before its progress is shown.
const QUIET: Duration = Duration::from_millis(500);
const REDRAW: Duration = Duration::from_millis(100);

/// The display of one import's progress; cleared when dropped.
pub struct ImportWatch {
    task: tokio::task::JoinHandle<()>,
    line: Line,
}

/// A progress line on a terminal: this process's, or a client's.
#[derive(Clone)]
pub(crate) enum Line {
    Own(indicatif::ProgressBar),
    Client(Arc<crate::io::Remote>),
}

impl Line {
    /// This process's progress line, drawn on its stderr.
    pub(crate) fn own() -> indicatif::ProgressBar {
        let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        bar.set_style(indicatif::ProgressStyle::with_template("{spinner} {msg}").expect("a valid template"));
        bar
    }

    fn show(&self, message: String) {
        match self {
            Line::Own(bar) => {
                bar.set_message(message);
                bar.tick();
            }
            Line::Client(client) => (client.progress)(message.as_bytes()),
        }
    }

    fn clear(&self) {
        match self {
            Line::Own(bar) => bar.finish_and_clear(),
            Line::Client(client) => (client.progress)(b""),
        }
    }
}

impl ImportWatch {
    /// Starts showing `progress` of importing `file_name` (`bytes` long),
    /// unless there is no one to show it to (`json`, or no terminal).
    pub fn start(file_name: &str, bytes: usize, progress: Arc<ImportProgress>, json: bool) -> Option<ImportWatch> {
        let target = crate::io::progress_target().filter(|_| !json)?;
        let label = format!("{} ({})", safe(file_name), indicatif::HumanBytes(bytes as u64));
        let line = match target {
            crate::io::ProgressTarget::Own => {
                let bar = Line::own();
                // Hidden until the work has lasted a while.
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
                Line::Own(bar)
            }
            crate::io::ProgressTarget::Client(client) => Line::Client(client),
        };
        let shown = line.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            tokio::time::sleep(QUIET).await;
            if let Line::Own(bar) = &shown {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            loop {
                shown.show(describe(&label, &progress, started.elapsed()));
                tokio::time::sleep(REDRAW).await;
            }
        });
        Some(ImportWatch { task, line })
    }
}

impl Drop for ImportWatch {
    fn drop(&mut self) {
        self.task.abort();
        self.line.clear();
    }
}

/// "importing statement.ofx (12.3 MiB): 48,200 documents, 9,640 a second",
/// then, once the importer is done, "saving the 60,000 documents of ...".
fn describe(label: &str, progress: &ImportProgress, elapsed: Duration) -> String {
    let documents = progress.documents();
    if progress.saving() {
        return format!("saving the {} documents of {label}", indicatif::HumanCount(documents));
    }
    let rate = documents as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "importing {label}: {} documents, {} a second",
        indicatif::HumanCount(documents),
        indicatif::HumanCount(rate.round() as u64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_says_documents_and_rate_then_saving() {
        let progress = ImportProgress::default();
        assert_eq!(describe("x", &progress, Duration::ZERO), "importing x: 0 documents, 0 a second");
        for _ in 0..48_200 {
            progress.wrote();
        }
        assert_eq!(
            describe("load-curve.csv (12.00 MiB)", &progress, Duration::from_secs(5)),
            "importing load-curve.csv (12.00 MiB): 48,200 documents, 9,640 a second"
        );
        progress.saves();
        assert_eq!(describe("x", &progress, Duration::from_secs(9)), "saving the 48,200 documents of x");
    }
}
