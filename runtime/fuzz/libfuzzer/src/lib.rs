//! What every libFuzzer harness of `fuzz_targets/` does with an input: it
//! hands it to the target of `domicile-fuzz` of that name, as that
//! target's own runs do (cut to its longest input, its format's checksums
//! repaired so that mutations reach past them). libFuzzer finds the
//! panics, hangs (`-timeout`) and allocations past its limit
//! (`-rss_limit_mb`, `-malloc_limit_mb`).

thread_local! {
    static TARGETS: Vec<domicile_fuzz::Target> = domicile_fuzz::targets();
}

/// Runs `input` through the target `name`.
pub fn run(name: &str, input: &[u8]) {
    TARGETS.with(|targets| {
        let target = targets.iter().find(|t| t.name == name).expect("a target of domicile-fuzz by that name");
        target.run_as_fuzzed(input);
    });
}
