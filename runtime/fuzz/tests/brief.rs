//! The runtime's fuzz targets, in the test suite: every target's seeds
//! reach its decoder (at least one is accepted, so that mutations start
//! from inputs it takes) and none panics, nor does any input kept from an
//! earlier finding. Fuzzing them is libFuzzer's, through cargo-fuzz
//! (`runtime/fuzz/fuzz.sh`; `tests/fuzzing.rs` runs it briefly).

use std::panic::{catch_unwind, AssertUnwindSafe};

#[test]
fn every_target_takes_its_seeds_and_survives_the_inputs_kept_from_findings() {
    let mut failures = Vec::new();
    for target in domicile_fuzz::targets() {
        let accepted = target.seeds.iter().filter(|s| target.run_as_fuzzed(s)).count();
        assert!(accepted > 0, "{}: no seed is accepted, so mutations start from refused inputs", target.name);
        for kept in domicile_fuzz::files_of(&domicile_fuzz::regressions().join(target.name)) {
            let input = std::fs::read(&kept).expect("a kept input reads");
            if catch_unwind(AssertUnwindSafe(|| target.run_as_fuzzed(&input))).is_err() {
                failures.push(format!("{}: kept input {} panics again", target.name, kept.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
