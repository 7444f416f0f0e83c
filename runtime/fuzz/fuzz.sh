#!/usr/bin/env bash
# Fuzzes every decoder of untrusted input in domicile with libFuzzer,
# through cargo-fuzz (`cargo install cargo-fuzz`; stable Rust,
# RUSTC_BOOTSTRAP=1 for its instrumentation flags), coverage-guided, each
# target for SECONDS (default 600), from its seeds and dictionary, the
# inputs kept in tests/fixtures/fuzz/<target>/ replayed first:
# - the runtime's (manifest, package, catalogue index, export archive,
#   selector, cluster entry): harnesses in runtime/fuzz/libfuzzer, seeds
#   and dictionaries written by `domicile-fuzz corpus`;
# - the sample importers' parsers (Linky, OFX and bank CSV, GPX, xAPI,
#   FHIR): harnesses in sample-apps/fuzz, seeds from the real exports of
#   tests/fixtures/corpus/ and sample-apps/data, dictionaries in
#   sample-apps/fuzz/dictionaries/.
#
#   runtime/fuzz/fuzz.sh [SECONDS] [all|runtime|importers]
#
# FUZZ_BUILD=dev builds the harnesses unoptimised, with debug assertions
# and overflow checks, in half the time of the default optimised build:
# for brief runs (the test suite's), where building is most of the time.
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
corpus="$root/target/fuzz-corpus"
seeds="$root/target/fuzz-seeds"
status=0
case "${FUZZ_BUILD:-release}" in
    release) profile=-O ;;
    dev) profile=--dev ;;
    *) echo "fuzz.sh: FUZZ_BUILD is release or dev, not ${FUZZ_BUILD}" >&2; exit 2 ;;
esac
echo "fuzz.sh: ${seconds} s per target ($which, ${FUZZ_BUILD:-release} build), findings in $findings"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
    exit 2
fi
# cargo-fuzz FUZZ_COMMAND...: cargo-fuzz with the environment its
# instrumented builds need (RUSTC_BOOTSTRAP=1; the harness crates are not
# linted, clippy-driver would wrap them). Only there: the same variables
# given to the workspace's own cargo (the corpus command below) would
# change its fingerprints, and it would rebuild into target/debug
# dependencies that the rest of the test run had compiled otherwise (a CI
# run's doctests then found no crate matching the rlibs they were given).
cargo_fuzz() {
    (cd "$root" && env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS RUSTC_BOOTSTRAP=1 cargo fuzz "$@")
}

# fuzz FUZZ_DIR TARGET SEEDS DICTIONARY: runs libFuzzer on TARGET of the
# cargo-fuzz project FUZZ_DIR, from the seeds in the folder SEEDS (and
# DICTIONARY, if the file exists).
fuzz() {
    local build=(--fuzz-dir "$1" "$profile" -s none) target="$2" from="$3" dictionary="$4"
    mkdir -p "$corpus/$target" "$findings/$target"
    cp -n "$from/"* "$corpus/$target/" 2>/dev/null || true
    local kept="$root/tests/fixtures/fuzz/$target"
    local options=(-max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1
                   -artifact_prefix="$findings/$target/")
    [ -f "$dictionary" ] && options+=(-dict="$dictionary")
    local corpora=("$corpus/$target")
    [ -d "$kept" ] && corpora+=("$kept")
    local log="$findings/$target.log"
    echo "== $target"
    if ! cargo_fuzz run "${build[@]}" "$target" "${corpora[@]}" -- "${options[@]}" >"$log" 2>&1; then
        echo "fuzz.sh: $target: a finding, in $findings/$target/ (libFuzzer's output: $log)" >&2
        status=1
    fi
    grep -E "^#[0-9]+[[:space:]]+DONE|^stat::average_exec_per_sec" "$log" || true
}

if [ "$which" != importers ]; then
    rm -rf "$seeds/runtime"
    (cd "$root" && cargo run --quiet --locked -p domicile-fuzz -- corpus "$seeds/runtime")
    # Without ASan (-s none): the decoders are safe Rust; libFuzzer's
    # -rss_limit_mb bounds their memory, -timeout their time.
    cargo_fuzz build --fuzz-dir runtime/fuzz/libfuzzer "$profile" -s none
    for dir in "$seeds/runtime"/*/; do
        target="$(basename "$dir")"
        fuzz "$root/runtime/fuzz/libfuzzer" "$target" "$dir" "$seeds/runtime/$target.dict"
    done
fi

if [ "$which" != runtime ]; then
    # Each importer's seeds: the real exports of its formats.
    declare -A sources=(
        [linky]="tests/fixtures/corpus/linky sample-apps/data/enedis-*.csv"
        [bank]="tests/fixtures/corpus/ofx tests/fixtures/corpus/bank-csv sample-apps/data/bank-*"
        [gpx]="tests/fixtures/corpus/gpx sample-apps/data/week-around-nantes.gpx"
        [xapi]="tests/fixtures/corpus/xapi sample-apps/data/xapi-*.json"
        [fhir]="tests/fixtures/corpus/fhir sample-apps/data/fhir-*.json"
    )
    cargo_fuzz build --fuzz-dir sample-apps/fuzz "$profile" -s none
    for target in linky bank gpx xapi fhir; do
        from="$seeds/importers/$target"
        rm -rf "$from"
        mkdir -p "$from"
        for source in ${sources[$target]}; do
            source="$root/$source"
            if [ -d "$source" ]; then cp "$source"/* "$from/"; else cp "$source" "$from/"; fi
        done
        fuzz "$root/sample-apps/fuzz" "$target" "$from" "$root/sample-apps/fuzz/dictionaries/$target.dict"
    done
fi
exit $status
