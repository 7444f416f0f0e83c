//! Health insurance records (FHIR ExplanationOfBenefit and Claim bundles).
#![no_main]
libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let _ = health_importer::fhir::read(input, &mut domicile_sdk::import::refuse);
});
