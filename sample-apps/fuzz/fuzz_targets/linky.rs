//! Enedis (Linky) exports: daily indexes, load curves, maximum power.
#![no_main]
libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let _ = energy_importer::parse(input, |_| Ok(()), &mut domicile_sdk::import::refuse);
});
