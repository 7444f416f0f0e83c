//! `domicile-fuzz corpus DIR`: writes each runtime target's seeds to
//! `DIR/<target>/` and its dictionary to `DIR/<target>.dict`, in
//! libFuzzer's format, for `runtime/fuzz/fuzz.sh` to fuzz the targets
//! from (with cargo-fuzz: `runtime/fuzz/libfuzzer`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [verb, dir] = args.as_slice() else { usage() };
    if verb != "corpus" {
        usage();
    }
    if let Err(e) = domicile_fuzz::write_corpus(&domicile_fuzz::targets(), std::path::Path::new(dir)) {
        eprintln!("domicile-fuzz: cannot write the corpus to {dir}: {e}");
        std::process::exit(1);
    }
}

fn usage() -> ! {
    eprintln!("usage: domicile-fuzz corpus DIR (runtime/fuzz/fuzz.sh fuzzes the targets with cargo-fuzz)");
    std::process::exit(2);
}
