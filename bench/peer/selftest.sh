#!/usr/bin/env bash
#
# bench/peer/selftest.sh - the peer and revstream on the same generated topic: same breaches?
#
#   selftest.sh [--leads N] [--partitions P] [--seed S] [--t0 MS | --future] [--keep-topics]
#
# Generates LEADS leads (default 200) with the peer jar's --gen-events (touches in time, at
# the threshold, one millisecond late, late, never, before the lead, automated or inbound;
# disqualified leads; duplicate creations; see EventGen.java), sends them with `revstream send`
# to a fresh topic of P partitions (default 4), runs the peer (run.sh) and `revstream replay
# --topic-suffix .cmp` on it, and compares their L1 breaches with compare.sh. Event times
# start at --t0 (default 2026-03-02T00:00:00Z), or 30 days from now with --future. The topics
# are deleted at the end unless --keep-topics.
#
# environment: RS_BENCH_BROKERS (default 127.0.0.1:9092), REVSTREAM (the revstream binary;
# default build/release/revstream of this repository), PEER_OPTS (peer options, e.g.
# "--lateness-ms 0", which must then make the comparison fail), and run.sh's variables.
# Exit: 0 same breaches, 1 different, 2 error.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
readonly HERE ROOT
readonly JAR=$HERE/target/revstream-peer.jar
BROKERS=${RS_BENCH_BROKERS:-127.0.0.1:9092}
REVSTREAM=${REVSTREAM:-$ROOT/build/release/revstream}

die() { printf 'selftest: error: %s\n' "$*" >&2; exit 2; }

leads=200 partitions=4 seed=7 t0=1772409600000 keep=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --leads) leads=$2; shift 2 ;;
        --partitions) partitions=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --t0) t0=$2; shift 2 ;;
        --future) t0=$(( ($(date +%s) + 30 * 86400) * 1000 )); shift ;;
        --keep-topics) keep=1; shift ;;
        *) sed -n '3,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
[[ -x $REVSTREAM ]] || die "no revstream binary at '$REVSTREAM' (build it, or set REVSTREAM)"
if [[ -n ${JAVA_HOME:-} ]]; then JAVA=$JAVA_HOME/bin/java; else JAVA=java; fi
[[ -f $JAR ]] || "$HERE/run.sh" --build

work=$(mktemp -d)
run=peer.selftest.$(date +%s).$$
topics=("$run.events" "$run.alerts" "$run.dlq" "$run.metrics" "$run.alerts.cmp" "$run.dlq.cmp"
    "$run.metrics.cmp" "$run.peer.alerts")
cleanup() {
    rm -rf "$work"
    if [[ $keep == 0 ]]; then
        "$JAVA" -jar "$JAR" --delete-topics "$BROKERS" "${topics[@]}" || true
    fi
}
trap cleanup EXIT

"$JAVA" -jar "$JAR" --create-topics "$BROKERS" "$partitions" "${topics[@]}"
cat >"$work/revstream.conf" <<CONF
kafka.bootstrap.servers = $BROKERS
kafka.group.id = $run
topic.events = $run.events
topic.alerts = $run.alerts
topic.dlq = $run.dlq
topic.metrics = $run.metrics
state.dir = $work/revstream-state
CONF
"$JAVA" -jar "$JAR" --gen-events "$leads" "$seed" "$t0" >"$work/events.jsonl"
records=$(wc -l <"$work/events.jsonl")
printf 'selftest: %d leads, %d events from %s, topic %s (%d partitions)\n' "$leads" "$records" \
    "$(date -u -d "@$((t0 / 1000))" +%FT%TZ)" "$run.events" "$partitions"
"$REVSTREAM" send -c "$work/revstream.conf" "$work/events.jsonl" 2>/dev/null ||
    die "revstream send failed"

# shellcheck disable=SC2086 # PEER_OPTS is a list of words on purpose
"$HERE/run.sh" "$BROKERS" "$run.events" "$run.peer.alerts" "$work/peer-state" "$records" ${PEER_OPTS:-} ||
    die "the peer failed"
"$REVSTREAM" replay -c "$work/revstream.conf" --state-dir "$work/replay-state" --from earliest \
    --topic-suffix .cmp 2>/dev/null | tail -n 1 || die "revstream replay failed"
"$HERE/compare.sh" "$BROKERS" "$run.peer.alerts" "$run.alerts.cmp"
