//! Health importer: the care a person received and what it cost them, from
//! an HL7 FHIR R4 JSON export (a Bundle of ExplanationOfBenefit, Claim,
//! Coverage, Encounter, ... as health insurers' and patient-access APIs
//! give it), into `io.domicile.health.care` documents: one per care, with
//! what was billed, what each payer paid back and what was left to pay.
//! See [`fhir`] for how real exports' messiness is read.
//!
//! The care's reference (its claim's id, else its explanation of
//! benefit's) is its natural key: importing a file again, or a later export
//! that settles a pending care, replaces the document instead of adding one.

pub mod fhir;

domicile_sdk::generate!("importer", "../../wit");

#[cfg(target_arch = "wasm32")]
mod component {
    use super::*;
    use domicile_sdk::data;

    const CARE: &str = "io.domicile.health.care";

    struct HealthImporter;

    impl Guest for HealthImporter {
        fn import(file_name: String, bytes: Vec<u8>) -> Result<String, String> {
            let mut leave_out = |location: &str, reason: &str| {
                domicile_sdk::import::leave_out(crate::domicile::app::import_report::skip, location, reason)
            };
            let read = fhir::read(&bytes, &mut leave_out).map_err(|e| format!("{file_name}: {e}"))?;
            let mut pending = 0;
            for care in &read.cares {
                data::put(CARE, None, care).map_err(|e| format!("cannot store care {}: {e}", care.reference))?;
                pending += usize::from(care.status == "pending");
            }
            domicile_sdk::info!(
                "{file_name}: {} cares, {pending} pending, {} withdrawn",
                read.cares.len(),
                read.withdrawn
            );
            Ok(serde_json::json!({ "cares": read.cares.len(), "pending": pending, "withdrawn": read.withdrawn })
                .to_string())
        }
    }

    export!(HealthImporter);
}

#[cfg(test)]
mod tests;
