#!/usr/bin/env bash
# Builds the guest apps into WebAssembly components, signs them into
# packages with the sample publisher key, and indexes the sample apps into
# the signed sample catalogue (sample-apps/catalogue).
#
#   sample-apps/build.sh           rebuild and overwrite the committed packages
#   sample-apps/build.sh --check   rebuild and fail unless the result is
#                                  byte-for-byte the committed packages and catalogue
#
# Toolchain: rustup's wasm32-wasip2 target (`rustup target add
# wasm32-wasip2`), whose default linker, wasm-component-ld, ships with it:
# the output is a component. The target has the standard WASI 0.2 imports,
# which the runtime links and denies at run time (as for every language),
# so `println!` and panics reach the app's log.
#
# The apps in Python and JavaScript are built by componentize.sh. Those
# toolchains snapshot an initialised interpreter, so their output is not
# byte-reproducible: their package is built only when the manifest's
# version has none yet (bump the version to rebuild one), `--check` keeps
# the committed package, and tests/languages.rs checks that a build from
# source computes exactly what the committed package computes.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
target=wasm32-wasip2
check=0
scratch=""
[[ "${1:-}" == "--check" ]] && check=1

# The guests' own target dir, whatever CARGO_TARGET_DIR says for the runtime.
cargo_args=(build --release --target "$target" --target-dir "$here/target")
# The check builds exactly what is committed; a plain build may add a new app to the lock file.
[[ $check == 1 ]] && cargo_args+=(--locked)
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    echo "build.sh: no Rust toolchain for $target. Install it with:" >&2
    echo "  rustup target add $target" >&2
    exit 1
fi
# The committed packages are this compiler's output; another one builds
# working packages with other bytes, which `--check` reports.
committed_rustc="rustc 1.95.0"
echo "build.sh: using $(rustc --version) for $target" >&2
if [[ $check == 1 && "$(rustc --version)" != "$committed_rustc "* ]]; then
    echo "build.sh --check: the committed packages were built by $committed_rustc; expect differences" >&2
fi

# Reproducible output: no machine-specific paths in the components.
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
export RUSTFLAGS="--remap-path-prefix=$here=/domicile/sample-apps --remap-path-prefix=$root/wit=/domicile/wit --remap-path-prefix=$cargo_home=/cargo"
export SOURCE_DATE_EPOCH=0

(cd "$here" && cargo "${cargo_args[@]}")

# The runtime binary signs the packages (shares its build with the tests).
domicile="${DOMICILE:-${CARGO_TARGET_DIR:-$root/target}/debug/domicile}"
if [[ ! -x "$domicile" ]]; then
    (cd "$root" && cargo build -p domicile-cli)
fi

out_catalogue="$here/catalogue"
out_fixtures="$root/tests/fixtures/packages"
if [[ $check == 1 ]]; then
    scratch="$(mktemp -d)"
    out_catalogue="$scratch/catalogue"
    out_fixtures="$scratch/fixtures"
fi
mkdir -p "$out_catalogue/packages" "$out_fixtures"
# The catalogue holds exactly the current sample apps; the language apps'
# packages of the current versions are kept (see the header).
kept="$(mktemp -d)"
trap 'rm -rf "$kept" ${scratch:+"$scratch"}' EXIT
cp "$here"/catalogue/packages/*.dpkg "$kept/"
rm -f "$out_catalogue"/packages/*.dpkg

key="$here/keys/sample-publisher.key"
wasm_dir="$here/target/$target/release"
pack() { # crate package-name manifest out-dir
    local component="$wasm_dir/${1//-/_}.wasm"
    rm -f "$4/$2.dpkg"
    "$domicile" pack --manifest "$3" --component "$component" --key "$key" --out "$4/$2.dpkg" >/dev/null
    echo "  $2: $(stat -c %s "$component") bytes of component" >&2
}
version_of() { sed -n 's/^version = "\(.*\)"$/\1/p' "$root/manifests/$1.toml"; }
for app in gpx-importer mobility-footprint energy-importer energy-insights bank-importer budget \
    learning-importer learning-dashboard data-donation mobility-allowance health-importer health-spending; do
    pack "$app" "$app-$(version_of "$app")" "$root/manifests/$app.toml" "$out_catalogue/packages"
done
for entry in tariff-check:python recurring-payments:js; do
    app="${entry%%:*}" lang="${entry##*:}"
    package="$app-$(version_of "$app").dpkg"
    if [[ -f "$kept/$package" ]]; then
        cp "$kept/$package" "$out_catalogue/packages/"
        continue
    fi
    [[ $check == 1 ]] && { echo "build.sh --check: $package is not committed" >&2; exit 1; }
    "$here/componentize.sh" "$lang" "$here/$app" service "$kept/$app.wasm"
    "$domicile" pack --manifest "$root/manifests/$app.toml" --component "$kept/$app.wasm" --key "$key" \
        --out "$out_catalogue/packages/$package" >/dev/null
    echo "  ${package%.dpkg}: $(stat -c %s "$kept/$app.wasm") bytes of component ($lang)" >&2
done
"$domicile" catalogue build "$out_catalogue" --key "$key" --name "domicile sample catalogue" >/dev/null
# Test guests; one component may be packed under several manifests.
for fixture in cpu-hog memory-hog snooper wasi-guest wasi-guest:wasi-guest-no-scratch net-guest foreign-guest poller \
    hostile bench-guest:bench; do
    crate="${fixture%%:*}" name="${fixture##*:}"
    pack "$crate" "$name" "$root/tests/fixtures/manifests/$name.toml" "$out_fixtures"
done

if [[ $check == 1 ]]; then
    status=0
    diff -r "$out_catalogue" "$here/catalogue" >&2 || status=1
    diff -r "$out_fixtures" "$root/tests/fixtures/packages" >&2 || status=1
    if [[ $status != 0 ]]; then
        echo "build.sh --check: rebuilt packages or catalogue differ from the committed ones" >&2
        exit 1
    fi
    echo "build.sh --check: rebuilt packages and catalogue are identical to the committed ones" >&2
fi
