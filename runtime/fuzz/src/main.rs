//! `domicile-fuzz [TARGET...]`: fuzzes the runtime's decoders of untrusted
//! input for `FUZZ_SECONDS` each (default 60), writing findings under
//! `FUZZ_FINDINGS` (default `target/fuzz-findings`). Exits 1 when a target
//! panicked; a hang or an out-of-memory input aborts the run after writing
//! the input out.

#[global_allocator]
static ALLOCATOR: domicile_fuzz_engine::CappedAllocator = domicile_fuzz_engine::CappedAllocator::new(2 << 30);

fn main() {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    let findings = domicile_fuzz::repo().join("target/fuzz-findings");
    let settings = domicile_fuzz_engine::Settings::from_env(60.0, &findings);
    std::env::set_var("FUZZ_SEED", settings.seed.to_string());
    let mut failed = false;
    let targets = domicile_fuzz::targets();
    if let Some(unknown) = wanted.iter().find(|w| !targets.iter().any(|t| t.name == w.as_str())) {
        let names: Vec<&str> = targets.iter().map(|t| t.name).collect();
        eprintln!("domicile-fuzz: no target `{unknown}`; the targets are {}", names.join(", "));
        std::process::exit(2);
    }
    println!("seed {} (FUZZ_SEED={} reproduces this run)", settings.seed, settings.seed);
    for target in targets.iter().filter(|t| wanted.is_empty() || wanted.iter().any(|w| w == t.name)) {
        let failures = domicile_fuzz_engine::brief_run(target, &domicile_fuzz::regressions(), 60.0, &findings);
        for failure in &failures {
            eprintln!("{failure}");
        }
        failed |= !failures.is_empty();
    }
    std::process::exit(i32::from(failed));
}
