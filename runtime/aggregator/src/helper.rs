//! The helper's side: its share of each report, verified with the
//! leader's message, kept under the report's nonce.

use domicile_campaign::{AggregatorRole, Report};

use crate::{AggregatorError, Helper, Result};

/// The helper's store: the state of each report under verification and
/// the output share of each verified one.
pub struct HelperStore {
    role: AggregatorRole,
    states: sled::Tree,
    outputs: sled::Tree,
}

impl HelperStore {
    /// The helper's store in `db`, for `role` (aggregator 1).
    pub fn open(db: &sled::Db, role: AggregatorRole) -> Result<HelperStore> {
        Ok(HelperStore { role, states: db.open_tree("helper-states")?, outputs: db.open_tree("helper-outputs")? })
    }
}

impl Helper for HelperStore {
    fn prepare(&self, report: &Report) -> Result<Vec<u8>> {
        // The same share again for a report prepared before (Prio3's
        // preparation has no randomness): a leader that failed between
        // the helper's finish and its own tries again.
        let started = self.role.start(report)?;
        if !self.outputs.contains_key(&report.nonce)? {
            self.states.insert(&report.nonce, started.state)?;
        }
        Ok(started.verifier_share)
    }

    fn finish(&self, nonce: &str, message: &[u8]) -> Result<()> {
        if self.outputs.contains_key(nonce)? {
            return Ok(());
        }
        let state = self
            .states
            .get(nonce)?
            .ok_or_else(|| AggregatorError::Refused(format!("report {nonce} was not prepared here")))?;
        let output = self.role.finish(&state, message)?;
        self.outputs.insert(nonce, output)?;
        self.states.remove(nonce)?;
        self.outputs.flush()?;
        Ok(())
    }

    fn abandon(&self, nonce: &str) -> Result<()> {
        self.states.remove(nonce)?;
        Ok(())
    }

    fn aggregate(&self, nonces: &[String]) -> Result<Vec<u8>> {
        let mut outputs = Vec::with_capacity(nonces.len());
        for nonce in nonces {
            let output = self
                .outputs
                .get(nonce)?
                .ok_or_else(|| AggregatorError::Refused(format!("report {nonce} was not verified here")))?;
            outputs.push(output.to_vec());
        }
        Ok(self.role.aggregate(&outputs)?)
    }
}
