#!/usr/bin/env bash
#
# scripts/demo.sh - README's first command: install what the build needs, build revstream, and
# run `revstream demo` (the whole pipeline on librdkafka's in-process mock cluster; no broker
# of your own). Arguments go to the demo: scripts/demo.sh --json, --seed 7, --leads 1000.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release &&
       cmake --build build/release --parallel "$(nproc 2>/dev/null || echo 2)" \
           --target revstream; } > "$log" 2>&1; then
    cat "$log" >&2
    echo "demo.sh: the build failed (output above)" >&2
    exit 1
fi
build/release/revstream demo "$@"
