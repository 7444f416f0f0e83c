#!/usr/bin/env bash
# Builds a Python or JavaScript app into a WebAssembly component against
# domicile's WIT, with the app SDK of its language on the module path.
#
#   sample-apps/componentize.sh python|js SOURCE_DIR WORLD OUT.wasm
#
# SOURCE_DIR holds app.py (a `WitWorld` class, see sdk-python/domicile.py)
# or app.js (an ES module exporting the world's function, see
# sdk-js/domicile.js). WORLD is `service` or `importer`.
#
# Toolchains, pinned:
#   python: componentize-py 0.25.1 on PATH   (pip install componentize-py==0.25.1)
#   js:     componentize-js 0.23.0 in sample-apps/node_modules (cd sample-apps && npm ci)
# Neither toolchain's output is byte-reproducible (each snapshots an
# initialised interpreter); see build.sh for what is checked instead.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
if [[ $# -ne 4 ]]; then
    sed -n '5p' "$0" >&2
    exit 2
fi
lang="$1" src="$(cd "$2" && pwd)" world="$3"
out="$(cd "$(dirname "$4")" && pwd)/$(basename "$4")"

case "$lang" in
python)
    if ! command -v componentize-py >/dev/null; then
        echo "componentize.sh: componentize-py is not installed: pip install componentize-py==0.25.1" >&2
        exit 3
    fi
    # componentize-py resolves the app module and the SDK from these paths.
    componentize-py -d "$root/wit" -w "$world" componentize -p "$src" -p "$here/sdk-python" app -o "$out" >/dev/null
    ;;
js)
    componentize_js="$here/node_modules/.bin/componentize-js"
    if [[ ! -x "$componentize_js" ]]; then
        echo "componentize.sh: componentize-js is not installed: (cd sample-apps && npm ci)" >&2
        exit 3
    fi
    # componentize-js resolves relative imports (the SDK) from its working
    # directory: the folder that holds both the app and sdk-js/.
    (cd "$here" && "$componentize_js" "$src/app.js" -w "$root/wit" -n "$world" -o "$out" >/dev/null)
    ;;
*)
    echo "componentize.sh: unknown language \`$lang\` (python or js)" >&2
    exit 2
    ;;
esac
