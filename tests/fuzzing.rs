//! Every decoder of untrusted input under libFuzzer, briefly:
//! `runtime/fuzz/fuzz.sh` builds the harnesses with cargo-fuzz
//! (instrumented for coverage, apart from the workspaces' builds) and
//! fuzzes each target for `FUZZ_SECONDS` (default 3), from its seeds and
//! the inputs kept from earlier findings. Any crash, timeout or
//! out-of-memory input fails the test, and is written to
//! `target/fuzz-findings/`.

/// Runs `fuzz.sh` on one family of targets, with harnesses built as
/// `build` says unless `FUZZ_BUILD` does, and checks that each ran to its
/// time.
fn fuzz_briefly(family: &str, build: &str, targets: &[&str]) {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let seconds = std::env::var("FUZZ_SECONDS").unwrap_or_else(|_| "3".into());
    let build = std::env::var("FUZZ_BUILD").unwrap_or_else(|_| build.into());
    let run = std::process::Command::new(repo.join("runtime/fuzz/fuzz.sh"))
        .args([seconds.as_str(), family])
        .env("FUZZ_BUILD", build)
        .current_dir(&repo)
        .output()
        .expect("runtime/fuzz/fuzz.sh runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "fuzz.sh failed:\n{stdout}\n{stderr}");
    for target in targets {
        assert!(stdout.contains(&format!("== {target}\n")), "{target} was not fuzzed:\n{stdout}");
    }
    assert_eq!(stdout.matches("DONE").count(), targets.len(), "every target ran to its time:\n{stdout}");
}

#[test]
#[cfg_attr(missing_cargo_fuzz, ignore = "needs cargo-fuzz: cargo install cargo-fuzz --locked")]
fn every_runtime_decoder_survives_a_brief_libfuzzer_run() {
    // Unoptimised, with debug assertions and overflow checks: it builds in
    // half the time (111 s against 219 s here), and for 3 s of fuzzing
    // the build is most of the time.
    fuzz_briefly("runtime", "dev", &["manifest", "package", "catalogue", "selector", "archive", "cluster-entry"]);
}

#[test]
#[cfg_attr(missing_cargo_fuzz, ignore = "needs cargo-fuzz: cargo install cargo-fuzz --locked")]
fn every_importer_parser_survives_a_brief_libfuzzer_run() {
    // Optimised: unoptimised, the GPX parser takes over libFuzzer's 5 s on
    // its largest seed (148 KB), and this build takes 56 s only.
    fuzz_briefly("importers", "release", &["linky", "bank", "gpx", "xapi", "fhir"]);
}
