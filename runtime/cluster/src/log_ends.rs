//! Where each resident's log ended, as its holder reports it, so that a
//! log cut back and put back **within** the replay window is refused.
//!
//! The seal of each message refuses a log put back after the replay
//! window ([`crate::log`]). Within it, whoever holds the nodes' NATS
//! credentials could purge a resident's log and publish its genuine
//! messages again but the last few: a node rebuilding the space from it
//! (the holder gone) would give the resident her space without her last
//! writes. So the holder reports where the log ends, sealed, in the
//! bucket `domicile-log-ends` (one key per resident: the position and
//! the MAC of its last message), and a rebuild refuses a log whose chain
//! does not reach that message. The report of a snapshot is made before
//! the messages it replaces are purged; those of writes follow within
//! [`REPORT_EVERY`], in one put per resident however many writes it
//! made meanwhile. The bucket is followed by every node like the others
//! ([`crate::recent`]): an earlier report put back is refused too.
//!
//! What is left: the writes of the last [`REPORT_EVERY`] before the
//! holder stopped can still be cut back unseen.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use domicile_store::ResidentName;
use serde::{Deserialize, Serialize};

use crate::bucket::Bucket;
use crate::{refuse, Result};

pub(crate) const LOG_ENDS: &str = "domicile-log-ends";

/// How often the holder reports the ends of the logs it wrote since.
pub(crate) const REPORT_EVERY: Duration = Duration::from_millis(200);

/// The last message of a resident's log, as its holder wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogEnd {
    pub(crate) position: u64,
    pub(crate) mac: [u8; 32],
}

impl LogEnd {
    /// A report as the bucket holds it (opened), or why it is not one.
    pub(crate) fn decode(value: &[u8]) -> std::result::Result<LogEnd, String> {
        let reported: Reported = serde_json::from_slice(value).map_err(|e| e.to_string())?;
        let mac = hex::decode(&reported.mac).ok().and_then(|m| <[u8; 32]>::try_from(m).ok());
        let mac = mac.ok_or("its MAC is not 64 hexadecimal characters")?;
        Ok(LogEnd { position: reported.position, mac })
    }
}

#[derive(Serialize, Deserialize)]
struct Reported {
    position: u64,
    mac: String,
}

/// The holder's reports of where residents' logs end.
pub(crate) struct LogEnds {
    bucket: Bucket,
    /// Ends written since the last report, by resident.
    unreported: Mutex<HashMap<ResidentName, LogEnd>>,
}

impl LogEnds {
    pub(crate) fn new(bucket: Bucket) -> LogEnds {
        LogEnds { bucket, unreported: Mutex::default() }
    }

    pub(crate) fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    fn unreported(&self) -> std::sync::MutexGuard<'_, HashMap<ResidentName, LogEnd>> {
        self.unreported.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes that `resident`'s log now ends at `end`, to report soon.
    pub(crate) fn wrote(&self, resident: &ResidentName, end: LogEnd) {
        let mut unreported = self.unreported();
        let noted = unreported.entry(resident.clone()).or_insert(end);
        if end.position >= noted.position {
            *noted = end;
        }
    }

    /// Reports at once that `resident`'s log ends at `end` (a snapshot,
    /// before what it replaces is purged).
    pub(crate) async fn report(&self, resident: &ResidentName, end: LogEnd) -> Result<()> {
        self.unreported().remove(resident);
        let reported = Reported { position: end.position, mac: hex::encode(end.mac) };
        let value = serde_json::to_vec(&reported).expect("a number and a string serialise");
        self.bucket.put(resident.as_str(), &value, "report where a resident's log ends").await?;
        Ok(())
    }

    /// Reports every end written since the last report; one that fails
    /// (NATS away) is kept for the next, unless a newer one came meanwhile.
    pub(crate) async fn report_written(&self) {
        let written: Vec<(ResidentName, LogEnd)> = self.unreported().drain().collect();
        for (resident, end) in written {
            if let Err(e) = self.report(&resident, end).await {
                tracing::warn!(%resident, error = %e, "could not report where a resident's log ends; will try again");
                self.unreported().entry(resident).or_insert(end);
            }
        }
    }

    /// Reports what was written every [`REPORT_EVERY`], for as long as the
    /// returned task runs.
    pub(crate) fn report_continually(ends: std::sync::Arc<LogEnds>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(REPORT_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                ends.report_written().await;
            }
        })
    }

    /// Where the holder last reported `resident`'s log ends; `None` when
    /// no holder did (a log of the version before reports). A report that
    /// does not open (forged, or an earlier one put back) is refused, and
    /// so is the rebuild that needed it.
    pub(crate) async fn reported(&self, resident: &ResidentName) -> Result<Option<LogEnd>> {
        let Some(entry) = self.bucket.entry(resident.as_str(), "read where a resident's log ends").await? else {
            return Ok(None);
        };
        let key = format!("{LOG_ENDS}/{resident}");
        LogEnd::decode(&entry.value).map(Some).map_err(|why| refuse(&key, &why))
    }

    /// Forgets a removed resident's report.
    pub(crate) async fn forget(&self, resident: &ResidentName) -> Result<()> {
        self.unreported().remove(resident);
        self.bucket.remove(resident.as_str(), "forget where a resident's log ends").await
    }
}
