#!/usr/bin/env bash
#
# scripts/install-deps.sh - install the Debian packages revstream needs to build and test.
#
# Installs only what is missing, so a second run does nothing and needs no network. Java and
# Maven (for the test broker, deploy/kafka.sh) are installed only when `java` or `mvn` is
# not already on PATH, so a developer's own JDK or Maven is left alone.
# Uses sudo when not run as root. Debian 12 (bookworm) package names.
set -euo pipefail

# Build: compiler, CMake, the five libraries (DESIGN.md), OpenSSL headers that librdkafka's
# pkg-config file asks for (sla.c hashes alert ids with it too), Jansson for `revstream send`,
# GLib for time zones from the system's tz database (calendar.c), libmicrohttpd for the HTTP
# endpoint (http.c), xxHash for the in-memory tables' keys (store.c, agg.c).
# Test: cmocka, clang with its sanitizer runtime (the Asan build),
# clang-format-14 (the format check), valgrind (memcheck job), mdb_stat/mdb_dump for looking
# into state files.
# Bench: gnuplot-nox draws bench/run-all's report pictures.
packages=(
    build-essential cmake pkg-config
    librdkafka-dev libuv1-dev libmsgpack-dev liblmdb-dev libssl-dev libjansson-dev
    libglib2.0-dev libmicrohttpd-dev libxxhash-dev tzdata
    libcmocka-dev clang libclang-rt-14-dev clang-format-14 valgrind lmdb-utils
    gnuplot-nox
)

say() { printf 'install-deps: %s\n' "$*" >&2; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }

command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script is for Debian; install the equivalents of: ${packages[*]} maven openjdk-17-jre-headless"

java_major() {
    java -version 2>&1 | head -n 1 | sed -n 's/.*version "\([0-9]*\).*/\1/p'
}

# Kafka 4 needs Java 17: an older java on PATH gets a 17 beside it (then use JAVA_HOME).
if ! command -v java >/dev/null 2>&1; then
    packages+=(openjdk-17-jre-headless)
elif major=$(java_major) && [[ -n $major && $major -lt 17 ]]; then
    say "java on PATH is version $major; Kafka needs 17: installing openjdk-17-jre-headless"
    say "then run deploy/kafka.sh with JAVA_HOME set to the Java 17 under /usr/lib/jvm"
    packages+=(openjdk-17-jre-headless)
fi
command -v mvn >/dev/null 2>&1 || packages+=(maven)

is_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

missing=()
for p in "${packages[@]}"; do
    is_installed "$p" || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    say "all ${#packages[@]} packages already installed"
    exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "not root and sudo not found; as root run: apt-get install ${missing[*]}"
    sudo=(sudo)
fi

# apt's progress output is long and rarely useful: keep it in a file, show it on failure.
log=$(mktemp "${TMPDIR:-/tmp}/install-deps.XXXXXX")
trap 'rm -f "$log"' EXIT
apt() {
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y \
        -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300 "$@" >>"$log" 2>&1; then
        cat "$log" >&2
        die "apt-get $1 failed (output above)"
    fi
}

say "installing: ${missing[*]}"
started=$SECONDS
apt update
apt install "${missing[@]}"
say "installed ${#missing[@]} packages in $((SECONDS - started)) s"
