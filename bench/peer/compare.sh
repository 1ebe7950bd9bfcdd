#!/usr/bin/env bash
#
# bench/peer/compare.sh - do the peer and revstream publish the same SLA-01 L1 breaches?
#
#   compare.sh BROKERS PEER_ALERTS_TOPIC REVSTREAM_ALERTS_TOPIC
#
# Reads both alerts topics from the first offset to their end offsets with the peer jar's
# --dump-alerts mode (revstream's alerts are msgpack maps, which kcat does not decode), keeps
# the L1_breach alerts (a revstream alert that retracts a breach is not one), and compares the
# sets of lead ids, then the sets of (lead id, target time). Prints the counts and, when they
# differ, up to 20 leads on each side; exits 0 when the sets are equal, 1 when not, 2 on error.
# Redeliveries (at-least-once) count once.
#
# environment: JAVA_HOME, PEER_MVN_ARGS as for run.sh (the jar is built when missing);
# PEER_COMPARE_KEEP=DIR keeps the four sorted lists in DIR.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
readonly JAR=$HERE/target/revstream-peer.jar

if [[ $# -ne 3 ]]; then
    sed -n '3,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
if [[ -n ${JAVA_HOME:-} ]]; then JAVA=$JAVA_HOME/bin/java; else JAVA=java; fi
[[ -f $JAR ]] || "$HERE/run.sh" --build || exit 2

dir=${PEER_COMPARE_KEEP:-}
if [[ -n $dir ]]; then
    mkdir -p "$dir"
else
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
fi

dump() { # TOPIC NAME
    "$JAVA" -Xmx512m -XX:+UseSerialGC -jar "$JAR" --dump-alerts "$1" "$2" --with-target >"$dir/$3.all" ||
        { printf 'compare: error: cannot read %s\n' "$2" >&2; exit 2; }
    grep '|L1_breach|[-0-9]*$' "$dir/$3.all" | sort -u >"$dir/$3.targets" || true
    cut -d '|' -f 1 "$dir/$3.targets" | sort -u >"$dir/$3.leads"
}

dump "$1" "$2" peer
dump "$1" "$3" revstream

np=$(wc -l <"$dir/peer.leads")
nr=$(wc -l <"$dir/revstream.leads")
printf 'compare: L1 breaches: peer %d leads (%s), revstream %d leads (%s)\n' "$np" "$2" "$nr" "$3"
rc=0
if cmp -s "$dir/peer.leads" "$dir/revstream.leads"; then
    printf 'compare: same leads\n'
else
    rc=1
    printf 'compare: DIFFERENT leads: %d only in the peer, %d only in revstream\n' \
        "$(comm -23 "$dir/peer.leads" "$dir/revstream.leads" | wc -l)" \
        "$(comm -13 "$dir/peer.leads" "$dir/revstream.leads" | wc -l)"
    comm -23 "$dir/peer.leads" "$dir/revstream.leads" | head -n 20 | sed 's/^/  only peer:      /'
    comm -13 "$dir/peer.leads" "$dir/revstream.leads" | head -n 20 | sed 's/^/  only revstream: /'
fi
if cmp -s "$dir/peer.targets" "$dir/revstream.targets"; then
    printf 'compare: same target times\n'
else
    rc=1
    printf 'compare: DIFFERENT (lead, target time) pairs\n'
    diff "$dir/peer.targets" "$dir/revstream.targets" | grep '^[<>]' | head -n 20 | sed 's/^/  /'
fi
exit "$rc"
