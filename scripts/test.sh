#!/usr/bin/env bash
#
# scripts/test.sh - what CI runs (through .ci/run), and what to run before pushing:
#   0. the Debian packages (scripts/install-deps.sh; quick when they are there)
#   1. Release build with -Werror (RS_WERROR=ON)
#   2. Asan build (clang, -fsanitize=address,undefined)
#   3. the single-node Kafka broker (deploy/kafka.sh), RS_TEST_BROKERS pointing at it
#   4. every Release test, then the unit and mock-cluster tests under the sanitizers, then
#      the unit tests under valgrind
# Both test runs always happen, so both summaries are printed; exits 1 if either failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

jobs=$(nproc 2>/dev/null || echo 2)
step() { printf '\n==> %s\n' "$*"; }

step "install the Debian packages the build and the tests need"
bash scripts/install-deps.sh

step "format: clang-format-14 --dry-run --Werror (STYLE.md section 10)"
git ls-files -z '*.c' '*.h' | xargs -0 clang-format-14 --dry-run --Werror

step "configure and build: Release, -Werror"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DRS_WERROR=ON
cmake --build build/release --parallel "$jobs"

step "configure and build: Asan, clang"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Asan -DCMAKE_C_COMPILER=clang
cmake --build build/asan --parallel "$jobs"

step "start the Kafka broker"
trap 'bash deploy/kafka.sh stop' EXIT
bash deploy/kafka.sh start
# With RS_TEST_BROKERS set, integration tests must not skip (STYLE.md section 8).
export RS_TEST_BROKERS=127.0.0.1:${RS_KAFKA_PORT:-9092}

failed=()

# --no-tests=error: a build that registered no tests must not pass as green.
step "tests: Release, all labels"
ctest --test-dir build/release --output-on-failure --no-tests=error || failed+=(release)

step "tests: Asan, unit and the mock-cluster tests"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build/asan -L 'unit|mock' --output-on-failure --no-tests=error || failed+=(asan)

step "tests: valgrind memcheck, unit (definite leaks and memory errors fail)"
ctest --test-dir build/release -T memcheck -L unit --output-on-failure --no-tests=error ||
    failed+=(memcheck)

if [[ ${#failed[@]} -gt 0 ]]; then
    printf '\ntest.sh: FAILED: %s\n' "${failed[*]}" >&2
    exit 1
fi
printf '\ntest.sh: all tests passed\n'
