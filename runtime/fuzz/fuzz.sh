#!/usr/bin/env bash
# Fuzzes every decoder of untrusted input in domicile, each for SECONDS
# (default 600): the runtime's (manifest, package, catalogue index, export
# archive, selector, cluster entry) with the domicile-fuzz binary, and the sample
# importers' parsers (Linky, OFX and bank CSV, GPX, xAPI) in their crates'
# test suites. Release builds; findings go to target/fuzz-findings/<target>/.
#
#   runtime/fuzz/fuzz.sh [SECONDS]        FUZZ_SEED=N reproduces a run
#
# Exits non-zero when any target panicked, hung or ran out of memory; keep
# each finding under tests/fixtures/fuzz/<target>/ once fixed, and every
# later run replays it.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
export FUZZ_SECONDS="${1:-${FUZZ_SECONDS:-600}}"
export FUZZ_FINDINGS="$root/target/fuzz-findings"
export FUZZ_SEED="${FUZZ_SEED:-$(date +%s)}"
echo "fuzz.sh: ${FUZZ_SECONDS} s per target, FUZZ_SEED=$FUZZ_SEED, findings in $FUZZ_FINDINGS"
status=0
(cd "$root" && cargo run --quiet --release --locked -p domicile-fuzz) || status=1
host="$(rustc -vV | sed -n 's/^host: //p')"
(cd "$root/sample-apps" && cargo test --quiet --release --locked --target "$host" \
    -p energy-importer -p bank-importer -p gpx-importer -p learning-importer \
    fuzz -- --nocapture --test-threads 1) || status=1
exit $status
