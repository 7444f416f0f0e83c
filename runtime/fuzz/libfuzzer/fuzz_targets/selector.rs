#![no_main]
libfuzzer_sys::fuzz_target!(|input: &[u8]| domicile_fuzz_libfuzzer::run("selector", input));
