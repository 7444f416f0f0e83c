//! Bank statements: OFX (SGML and XML) and the banks' CSV exports, as the
//! importer tells them apart.
#![no_main]
libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let _ = bank_importer::parse("statement.csv", input, &mut domicile_sdk::import::refuse);
});
