//! Learning records (xAPI statements), voidings included.
#![no_main]
libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let _ = learning_importer::parse(input, &mut domicile_sdk::import::refuse);
});
