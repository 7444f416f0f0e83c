//! Every decoder of untrusted input under libFuzzer, briefly:
//! `runtime/fuzz/fuzz.sh` builds the harnesses with cargo-fuzz
//! (instrumented for coverage, apart from the workspaces' builds) and
//! fuzzes each target for `FUZZ_SECONDS` (default 3), from its seeds and
//! the inputs kept from earlier findings. Any crash, timeout or
//! out-of-memory input fails the test, and is written to
//! `target/fuzz-findings/`.

/// Runs `fuzz.sh` on one family of targets and checks that each ran to its time.
fn fuzz_briefly(family: &str, targets: &[&str]) {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let seconds = std::env::var("FUZZ_SECONDS").unwrap_or_else(|_| "3".into());
    let run = std::process::Command::new(repo.join("runtime/fuzz/fuzz.sh"))
        .args([seconds.as_str(), family])
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
    fuzz_briefly("runtime", &["manifest", "package", "catalogue", "selector", "archive", "cluster-entry"]);
}

#[test]
#[cfg_attr(missing_cargo_fuzz, ignore = "needs cargo-fuzz: cargo install cargo-fuzz --locked")]
fn every_importer_parser_survives_a_brief_libfuzzer_run() {
    fuzz_briefly("importers", &["linky", "bank", "gpx", "xapi", "fhir"]);
}
