#!/usr/bin/env bash
#
# bench/peer/run.sh - run the Kafka Streams peer of revstream's SLA-01 over one topic.
#
#   run.sh BROKERS INPUT_TOPIC ALERTS_TOPIC STATE_DIR EXPECTED_RECORDS [PEER OPTIONS]
#   run.sh --build            build the jar only (so that a measured run does not build)
#
# Builds target/revstream-peer.jar when it is missing (Maven offline when its cache has
# everything, else online), then execs the JVM: the process a harness measures from outside
# (RSS, CPU) is this one's pid. It processes INPUT_TOPIC from the earliest offset with a fresh
# application.id, at_least_once, num.stream.threads = input partitions capped by the
# processors, until EXPECTED_RECORDS records were processed and every task fired what its last
# stream time makes due; closes Kafka Streams; prints `peer: records=N seconds=S alerts=A` on
# stdout (everything else goes to stderr) and exits 0.
#
# environment:
#   JAVA_HOME        the Java 17+ to run (default: java on PATH)
#   PEER_JAVA_OPTS   JVM flags, e.g. -Xmx2g (default none: the JVM's default heap, a quarter
#                    of physical memory, and G1)
#   PEER_MVN_ARGS    extra arguments for mvn
# Peer options (after the five arguments): see `java -jar target/revstream-peer.jar --help`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
readonly JAR=$HERE/target/revstream-peer.jar

die() { printf 'peer: error: %s\n' "$*" >&2; exit 2; }

if [[ -n ${JAVA_HOME:-} ]]; then JAVA=$JAVA_HOME/bin/java; else JAVA=java; fi
readonly JAVA

build() {
    command -v mvn >/dev/null 2>&1 || die "mvn not found (scripts/install-deps.sh installs Maven)"
    local log
    log=$(mktemp)
    # shellcheck disable=SC2086 # PEER_MVN_ARGS is a list of words on purpose
    if ! mvn -q -B -o ${PEER_MVN_ARGS:-} -f "$HERE/pom.xml" package -Dmaven.test.skip=true >"$log" 2>&1; then
        printf 'peer: building online (the Maven cache lacks something)\n' >&2
        # shellcheck disable=SC2086
        if ! mvn -q -B ${PEER_MVN_ARGS:-} -f "$HERE/pom.xml" package -Dmaven.test.skip=true >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$log"
            die "the build failed (output above)"
        fi
    fi
    rm -f "$log"
    [[ -f $JAR ]] || die "the build ran but $JAR is missing"
}

if [[ ${1:-} == --build ]]; then
    build
    exit 0
fi
if [[ $# -lt 5 ]]; then
    sed -n '3,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
[[ $5 =~ ^[0-9]+$ ]] || die "EXPECTED_RECORDS must be a number, got '$5'"
[[ -f $JAR ]] || build
mkdir -p "$4" || die "cannot create the state directory '$4'"

printf 'peer: %s\n' "$("$JAVA" -version 2>&1 | head -n 1)" >&2
# shellcheck disable=SC2086 # PEER_JAVA_OPTS is a list of words on purpose
exec "$JAVA" ${PEER_JAVA_OPTS:-} -jar "$JAR" "$@"
