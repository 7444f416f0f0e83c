//! A brief fuzzing run of every host-side target, in the test suite: the
//! inputs kept from earlier findings must not panic again, every target's
//! seeds must reach its decoder (at least one is accepted), and a few
//! seconds of mutations (`FUZZ_SECONDS`, default 3) must find no panic. A
//! hang or an out-of-memory input aborts the test binary after writing the
//! input to `target/fuzz-findings`.

#[global_allocator]
static ALLOCATOR: domicile_fuzz_engine::CappedAllocator = domicile_fuzz_engine::CappedAllocator::new(2 << 30);

#[test]
fn every_decoder_of_untrusted_input_survives_a_brief_fuzzing_run() {
    let findings = domicile_fuzz::repo().join("target/fuzz-findings");
    let mut failures = Vec::new();
    for target in domicile_fuzz::targets() {
        let accepted = target.seeds.iter().filter(|s| (target.run)(s).starts_with("ok")).count();
        assert!(accepted > 0, "{}: no seed is accepted, so mutations start from refused inputs", target.name);
        failures.extend(domicile_fuzz_engine::brief_run(&target, &domicile_fuzz::regressions(), 3.0, &findings));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
