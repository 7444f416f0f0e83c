#!/usr/bin/env bash
# Fuzzes every decoder of untrusted input in domicile, each for SECONDS
# (default 600):
# - the runtime's (manifest, package, catalogue index, export archive,
#   selector, cluster entry) with libFuzzer, through cargo-fuzz
#   (`cargo install cargo-fuzz`; stable Rust, RUSTC_BOOTSTRAP=1 for its
#   instrumentation flags): coverage-guided, from each target's seeds and
#   dictionary (`domicile-fuzz corpus`), the inputs kept in
#   tests/fixtures/fuzz/<target>/ replayed first;
# - the sample importers' parsers (Linky, OFX and bank CSV, GPX, xAPI,
#   FHIR) in their crates' test suites, with runtime/fuzz-engine.
#
#   runtime/fuzz/fuzz.sh [SECONDS] [all|runtime|importers]
#
# Findings (crashes, timeouts, out-of-memory inputs) go to
# target/fuzz-findings/<target>/; exits non-zero when there is any. Keep
# each one under tests/fixtures/fuzz/<target>/ once fixed. Each target's
# corpus grows in target/fuzz-corpus/<target>/ from one run to the next.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
seconds="${1:-${FUZZ_SECONDS:-600}}"
which="${2:-all}"
findings="$root/target/fuzz-findings"
status=0
echo "fuzz.sh: ${seconds} s per target ($which), findings in $findings"

if [ "$which" != importers ]; then
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "fuzz.sh: cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
        exit 2
    fi
    corpus="$root/target/fuzz-corpus"
    seeds="$root/target/fuzz-seeds"
    rm -rf "$seeds"
    (cd "$root" && cargo run --quiet --locked -p domicile-fuzz -- corpus "$seeds")
    # Without ASan (-s none): the decoders are safe Rust; libFuzzer's
    # -rss_limit_mb bounds their memory, -timeout their time.
    build=(--fuzz-dir "$root/runtime/fuzz/libfuzzer" -O -s none)
    # The harness crate is not linted (clippy-driver would wrap it).
    unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
    (cd "$root" && RUSTC_BOOTSTRAP=1 cargo fuzz build "${build[@]}")
    for dir in "$seeds"/*/; do
        target="$(basename "$dir")"
        mkdir -p "$corpus/$target" "$findings/$target"
        cp -n "$dir"* "$corpus/$target/" 2>/dev/null || true
        kept="$root/tests/fixtures/fuzz/$target"
        options=(-max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1
                 -artifact_prefix="$findings/$target/")
        [ -f "$seeds/$target.dict" ] && options+=(-dict="$seeds/$target.dict")
        corpora=("$corpus/$target")
        [ -d "$kept" ] && corpora+=("$kept")
        log="$findings/$target.log"
        echo "== $target"
        if ! (cd "$root" && RUSTC_BOOTSTRAP=1 cargo fuzz run "${build[@]}" "$target" "${corpora[@]}" -- "${options[@]}") \
                >"$log" 2>&1; then
            echo "fuzz.sh: $target: a finding, in $findings/$target/ (libFuzzer's output: $log)" >&2
            status=1
        fi
        grep -E "^#[0-9]+[[:space:]]+DONE|^stat::average_exec_per_sec" "$log" || true
    done
fi

if [ "$which" != runtime ]; then
    host="$(rustc -vV | sed -n 's/^host: //p')"
    (cd "$root/sample-apps" && FUZZ_SECONDS="$seconds" FUZZ_FINDINGS="$findings" cargo test --quiet --release --locked \
        --target "$host" -p energy-importer -p bank-importer -p gpx-importer -p learning-importer -p health-importer \
        fuzz -- --nocapture --test-threads 1) || status=1
fi
exit $status
