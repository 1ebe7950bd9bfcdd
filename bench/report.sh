#!/usr/bin/env bash
#
# bench/report.sh - REPORT.md, throughput.png and latency.png from the raw outputs that
# bench/run-all collected (RAW_DIR: engine.txt, sketch.txt, replay.txt, e2e.txt, latency.txt,
# compare.txt when the peer ran, alert_latency.txt, event_latency.txt, commands.txt,
# status.txt, run.txt). Run again on the same RAW_DIR to remake the report without measuring.
#
#   bench/report.sh RAW_DIR OUT_DIR
#
# A figure whose bench did not run shows as "n/a". Needs gnuplot for the two pictures (the
# report is written without them otherwise).
set -euo pipefail

[[ $# -eq 2 ]] || { sed -n '8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
raw=$1
out=$2
mkdir -p "$out"

# The value of KEY on the line whose first word is NAME in FILE ("name key=value ..."); "".
kv() { # FILE NAME KEY
    [[ -f $1 ]] || return 0
    awk -v n="$2" -v k="$3" '$1 == n { for (i = 2; i <= NF; i++) { j = index($i, "=");
        if (j > 0 && substr($i, 1, j - 1) == k) { print substr($i, j + 1); exit } } }' "$1"
}
# Field F (1-based) of the first line whose words start with the given ones.
field() { # FILE "WORD1 WORD2" F
    [[ -f $1 ]] || return 0
    awk -v w="$2" -v f="$3" 'BEGIN { n = split(w, ws, " ") }
        { ok = 1; for (i = 1; i <= n; i++) if ($i != ws[i]) ok = 0; if (ok) { print $f; exit } }' "$1"
}
# A / B for figures that may be missing: "" when either is, or B is not positive.
div() { # A B
    [[ -n $1 && -n $2 ]] || return 0
    awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.6g\n", a / b }'
}
# A number for the table: thousands separated, or n/a.
num() { # VALUE [DECIMALS]
    [[ -n $1 ]] || { echo "n/a"; return; }
    LC_ALL=C awk -v v="$1" -v d="${2:-0}" 'BEGIN {
        s = sprintf("%." d "f", v); neg = s ~ /^-/; if (neg) s = substr(s, 2)
        p = index(s, "."); ip = p ? substr(s, 1, p - 1) : s; fp = p ? substr(s, p) : ""
        o = ""; while (length(ip) > 3) { o = "," substr(ip, length(ip) - 2) o; ip = substr(ip, 1, length(ip) - 3) }
        printf "%s%s%s%s\n", neg ? "-" : "", ip, o, fp }'
}
# "met" or how far off: OP is ge (value >= target), le or lt.
status() { # VALUE OP TARGET
    [[ -n $1 ]] || { echo "not measured"; return; }
    awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
        ok = (op == "ge" && v >= t) || (op == "le" && v <= t) || (op == "lt" && v < t)
        if (ok) { print "**met**"; exit }
        if (op == "ge") printf "missed: %.1f%% of the target (needs %.1fx)\n", 100 * v / t, t / v
        else printf "missed: %.1fx the target\n", v / t }'
}

engine=$raw/engine.txt
replay=$raw/replay.txt
e2e=$raw/e2e.txt
lat=$raw/latency.txt
compare=$raw/compare.txt

# ---- the figures ---------------------------------------------------------------------------
decode_rate=$(field "$engine" decode_only 2)
sla01_rate=$(field "$engine" engine_sla01 2)
sla01_cpu_rate=$(field "$engine" engine_sla01 4)
all_rate=$(field "$engine" engine_all 2)
all_cpu_rate=$(field "$engine" engine_all 4)
rmw_rate=$(field "$engine" lmdb_rmw 2)
stages=$(sed -n 's/^# engine_sla01 by stage: //p' "$engine" 2>/dev/null | head -n 1)
engine_batch=$(sed -n 's/^# name events\/s ns\/event[a-z/ -]* (\(.*\))$/\1/p' "$engine" 2>/dev/null || true)

fetch_rate=$(kv "$e2e" fetch events_per_s)
e2e_events=$(kv "$e2e" engine events)
e2e_rate=$(kv "$e2e" engine steady_events_per_s)
e2e_wall_rate=$(kv "$e2e" engine events_per_s)
e2e_cpu=$(kv "$e2e" engine cpu_s)
e2e_cpu_m=$(kv "$e2e" engine cpu_s_per_mevents)
e2e_rss=$(kv "$e2e" engine peak_rss_mb)
e2e_state=$(kv "$e2e" engine state_mb)
e2e_anon=$(kv "$e2e" engine peak_anon_mb)
e2e_of_fetch=$(div "$e2e_rate" "$fetch_rate")
e2e_eps_cpu=$(div "$e2e_events" "$e2e_cpu")

peer_rate=$(kv "$e2e" peer own_events_per_s)
peer_wall_rate=$(kv "$e2e" peer events_per_s)
peer_cpu=$(kv "$e2e" peer cpu_s)
peer_cpu_m=$(kv "$e2e" peer cpu_s_per_mevents)
peer_rss=$(kv "$e2e" peer peak_rss_mb)
peer_events=$(kv "$e2e" peer events)
peer_anon=$(kv "$e2e" peer peak_anon_mb)
anon_ratio=$(div "$e2e_anon" "$peer_anon")
peer_eps_cpu=$(div "$peer_events" "$peer_cpu")
cpu_ratio=$(div "$e2e_eps_cpu" "$peer_eps_cpu")
rss_ratio=$(div "$e2e_rss" "$peer_rss")
rate_ratio=$(div "$e2e_rate" "$peer_rate")
wall_ratio=$(div "$e2e_wall_rate" "$peer_wall_rate")
cpu_m_ratio=$(div "$e2e_cpu_m" "$peer_cpu_m")

replay_fetch=$(field "$replay" "fetch median" 4)
replay_rate=$(field "$replay" "replay median" 4)
replay_own=$(field "$replay" "replay median" 7)
replay_of_fetch=$(div "$replay_own" "$replay_fetch")
replay_events=$(field "$replay" "replay median" 3)

alert_p50=$(kv "$lat" alert_latency p50_ms)
alert_p99=$(kv "$lat" alert_latency p99_ms)
alert_max=$(kv "$lat" alert_latency max_ms)
alert_n=$(kv "$lat" alert_latency breaches)
alert_expected=$(kv "$lat" alert_latency expected)
event_p50=$(kv "$lat" event_latency p50_ms)
event_p99=$(kv "$lat" event_latency p99_ms)
event_max=$(kv "$lat" event_latency max_ms)
event_n=$(kv "$lat" event_latency probes)
live_rate=$(kv "$lat" load events_per_s)
live_seconds=$(kv "$lat" load seconds)
live_share=$(kv "$lat" engine cpu_share)
live_cpu_m=$(kv "$lat" engine cpu_s_per_mevents)
live_rss=$(kv "$lat" engine peak_rss_mb)
live_fire_mean=$(kv "$lat" engine_view fire_lag_mean_ms)

sketch_err=$(awk '$1 ~ /^sketch_n/ { last = $8 } END { print last }' "$raw/sketch.txt" 2>/dev/null || true)
sketch_ns=$(awk '$1 ~ /^sketch_n/ { last = $NF } END { print last }' "$raw/sketch.txt" 2>/dev/null || true)

same=$(kv "$compare" compare same)
case $same in
    1) same_text="**same L1 breaches** ($(kv "$compare" peer events) events)" ;;
    0) same_text="**DIFFERENT** ($(kv "$compare" peer events) events; see raw/compare.txt)" ;;
    *) same_text="not run" ;;
esac
peer_note=$(cat "$raw/peer_skipped.txt" 2>/dev/null || true)

# ---- the pictures --------------------------------------------------------------------------
pictures=no
if command -v gnuplot >/dev/null 2>&1; then
    bars=$(mktemp)
    trap 'rm -f "$bars"' EXIT
    {
        [[ -n $decode_rate ]] && printf '"decode only\\n(no Kafka)" %s\n' "$decode_rate"
        [[ -n $sla01_rate ]] && printf '"engine SLA-01\\n(no Kafka)" %s\n' "$sla01_rate"
        [[ -n $all_rate ]] && printf '"engine, all rules\\n(no Kafka)" %s\n' "$all_rate"
        [[ -n $fetch_rate ]] && printf '"bare fetch\\n(librdkafka)" %s\n' "$fetch_rate"
        [[ -n $e2e_rate ]] && printf '"revstream run\\n(e2e)" %s\n' "$e2e_rate"
        [[ -n $replay_own ]] && printf '"revstream replay\\n(no output)" %s\n' "$replay_own"
        [[ -n $peer_rate ]] && printf '"Kafka Streams\\npeer" %s\n' "$peer_rate"
        true
    } >"$bars"
    if [[ -s $bars ]]; then
        gnuplot <<EOF
set terminal pngcairo size 1000,560 noenhanced font ",10"
set output "$out/throughput.png"
set title "Events per second (log scale), $(sed -n 's/^# cpu: //p' "$engine" 2>/dev/null | head -n 1), $(sed -n 's/^# nproc: //p' "$engine" 2>/dev/null | head -n 1) cores"
set style fill solid 0.7 border -1
set boxwidth 0.6
set logscale y
set yrange [1000:*]
set grid ytics
set ylabel "events/s"
set xtics nomirror
set bmargin 4
unset key
set arrow from graph 0, first 1000000 to graph 1, first 1000000 nohead dt 2 lc rgb "red"
set label "1M events/s: the engine-alone target" right at graph 0.99, first 1300000 tc rgb "red"
plot "$bars" using 0:2:xtic(1) with boxes lc rgb "#4472c4", \
     "$bars" using 0:(\$2*1.15):(sprintf("%.0f", \$2)) with labels
EOF
        pictures=yes
    fi
    if [[ -s $raw/alert_latency.txt || -s $raw/event_latency.txt ]]; then
        plots=()
        [[ -s $raw/alert_latency.txt ]] &&
            plots+=("\"$raw/alert_latency.txt\" using 2:(1) smooth cnormal lw 2 title \"deadline -> sla.breached readable ($alert_n alerts)\"")
        [[ -s $raw/event_latency.txt ]] &&
            plots+=("\"$raw/event_latency.txt\" using 2:(1) smooth cnormal lw 2 title \"lead.created produced -> visible in /api/metric ($event_n probes)\"")
        joined=$(IFS=,; echo "${plots[*]}")
        gnuplot <<EOF
set terminal pngcairo size 1000,560 noenhanced font ",10"
set output "$out/latency.png"
set title "Live latency at $(num "$live_rate") events/s for $(num "$live_seconds") s: cumulative share of samples"
set logscale x
set xlabel "milliseconds (log scale)"
set ylabel "share of samples"
set yrange [0:1.02]
set grid
set key top left
set arrow from 250, graph 0 to 250, graph 1 nohead dt 2 lc rgb "red"
set label "alert p99 target: 250 ms" at 270, graph 0.5 tc rgb "red"
set arrow from graph 0, first 0.99 to graph 1, first 0.99 nohead dt 3 lc rgb "gray"
plot $joined
EOF
    fi
fi

# ---- REPORT.md -----------------------------------------------------------------------------
runv() { sed -n "s/^$1=//p" "$raw/run.txt" 2>/dev/null | head -n 1; }
cpu_model=$(sed -n 's/^# cpu: //p' "$engine" 2>/dev/null | head -n 1)
nproc_n=$(sed -n 's/^# nproc: //p' "$engine" 2>/dev/null | head -n 1)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
os=$(sed -n 's/^PRETTY_NAME="\(.*\)"/\1/p' /etc/os-release 2>/dev/null || true)
rdkafka=$(pkg-config --modversion rdkafka 2>/dev/null || echo unknown)
kafka=$(sed -n 's:.*<kafka\.version>[[:space:]]*\([^<[:space:]]*\)[[:space:]]*</kafka\.version>.*:\1:p' \
    deploy/kafka/pom.xml 2>/dev/null | head -n 1)
java_v=$(java -version 2>&1 | head -n 1 || true)

{
    printf '# revstream benchmarks\n\n'
    printf 'Made by `bench/run-all%s` on %s (took %s s), commit %s%s. Every figure comes from\n' \
        "$( [[ $(runv mode) == default ]] || printf ' --%s' "$(runv mode)")" "$(runv started)" \
        "$(runv seconds)" "$(runv commit)" "$( [[ $(runv dirty) == yes ]] && printf ' (with uncommitted changes)')"
    printf 'the bench outputs in `raw/`; `bench/README.md` says how each is measured.\n\n'
    printf '## Machine\n\n'
    printf '| | |\n|---|---|\n'
    printf '| CPU | %s, %s cores online |\n' "${cpu_model:-unknown}" "${nproc_n:-?}"
    printf '| memory | %s |\n| OS | %s, kernel %s |\n' "$mem" "${os:-unknown}" "$(uname -r)"
    printf '| librdkafka | %s |\n| broker | Apache Kafka %s, single node (deploy/kafka.sh), %s, on the same machine |\n' \
        "$rdkafka" "${kafka:-?}" "$(runv brokers)"
    printf '| JVM (peer) | %s |\n\n' "${java_v:-none}"

    printf '## Figures and targets\n\n'
    printf '| figure | revstream | Kafka Streams peer | revstream / peer | target | status |\n'
    printf '|---|---:|---:|---:|---|---|\n'
    # On one core: events per CPU second of the bench's thread, which another process sharing
    # the machine does not lower by taking the core away; the wall-clock rate beside it.
    printf '| engine alone, SLA-01 (decode + apply + timers + LMDB commit; %s), events per CPU second of its one core (events/s by the wall clock) | %s (%s) | | | >= 1,000,000 | %s |\n' \
        "${engine_batch:-bench_engine}" "$(num "${sla01_cpu_rate:-$sla01_rate}")" "$(num "$sla01_rate")" \
        "$(status "${sla01_cpu_rate:-$sla01_rate}" ge 1000000)"
    printf '| engine alone, every rule and metric, events per CPU second (events/s by the wall clock) | %s (%s) | | | | |\n' \
        "$(num "${all_cpu_rate:-$all_rate}")" "$(num "$all_rate")"
    printf '| msgpack decode alone, events/s | %s | | | | |\n' "$(num "$decode_rate")"
    if [[ -n $rmw_rate ]]; then
        printf '| LMDB read-modify-write alone (the store'"'"'s limit), operations/s | %s | | | | |\n' \
            "$(num "$rmw_rate")"
    fi
    if [[ -n $stages ]]; then
        printf '| engine alone, SLA-01, time by stage | %s | | | | |\n' "$stages"
    fi
    printf '| bare librdkafka fetch of the topic (the limit), events/s | %s | | | | |\n' "$(num "$fetch_rate")"
    printf '| end to end: `revstream run` from the first applied event to the last, events/s | %s | %s | %s | | |\n' \
        "$(num "$e2e_rate")" "$(num "$peer_rate")" "$(num "$rate_ratio" 2)"
    printf '| end to end, from process start (start-up and group join included), events/s | %s | %s | %s | | |\n' \
        "$(num "$e2e_wall_rate")" "$(num "$peer_wall_rate")" "$(num "$wall_ratio" 2)"
    printf '| end to end / bare fetch | %s | | | >= 0.70 | %s |\n' "$(num "$e2e_of_fetch" 3)" \
        "$(status "$e2e_of_fetch" ge 0.70)"
    printf '| CPU seconds per million events (user + system, whole process) | %s | %s | %s | | |\n' \
        "$(num "$e2e_cpu_m" 2)" "$(num "$peer_cpu_m" 2)" "$(num "$cpu_m_ratio" 3)"
    printf '| events per CPU second | %s | %s | %s | revstream >= 5x the peer | %s |\n' \
        "$(num "$e2e_eps_cpu")" "$(num "$peer_eps_cpu")" "$(num "$cpu_ratio" 2)" "$(status "$cpu_ratio" ge 5)"
    printf '| peak RSS, MB | %s | %s | %s | revstream <= 1/10 of the peer | %s |\n' \
        "$(num "$e2e_rss" 1)" "$(num "$peer_rss" 1)" "$(num "$rss_ratio" 3)" "$(status "$rss_ratio" le 0.10)"
    printf '| largest anonymous RSS sampled (RssAnon: without mapped files such as LMDB'"'"'s), MB | %s | %s | %s | | |\n' \
        "$(num "$e2e_anon" 1)" "$(num "$peer_anon" 1)" "$(num "$anon_ratio" 3)"
    printf '| state on disk after the e2e run, MB | %s | | | | |\n' "$(num "$e2e_state")"
    printf '| `revstream replay --no-output` (own clock), events/s | %s | | | | |\n' "$(num "$replay_own")"
    printf '| replay / its bare fetch | %s | | | | |\n' "$(num "$replay_of_fetch" 3)"
    printf '| live alert latency, deadline -> `sla.breached` readable: p50 / p99 / max, ms | %s / %s / %s | | | p99 < 250 ms | %s |\n' \
        "$(num "$alert_p50" 1)" "$(num "$alert_p99" 1)" "$(num "$alert_max" 1)" "$(status "$alert_p99" lt 250)"
    printf '| breaches received / expected | %s / %s | | | all | %s |\n' "$(num "$alert_n")" \
        "$(num "$alert_expected")" "$( [[ -n $alert_n && $alert_n == "$alert_expected" ]] && echo '**met**' || echo 'missed')"
    printf '| live event path, `lead.created` produced -> visible in the HTTP API: p50 / p99 / max, ms | %s / %s / %s | | | | |\n' \
        "$(num "$event_p50" 1)" "$(num "$event_p99" 1)" "$(num "$event_max" 1)"
    printf '| live: engine CPU share of one core at %s events/s; CPU s per million events | %s; %s | | | | |\n' \
        "$(num "$live_rate")" "$(num "$live_share" 3)" "$(num "$live_cpu_m" 2)"
    printf '| live: peak RSS, MB | %s | | | | |\n' "$(num "$live_rss" 1)"
    printf '| live: the engine'"'"'s own mean timer-firing lag (revstream_timer_fire_lag_ms), ms | %s | | | | |\n' \
        "$(num "$live_fire_mean" 1)"
    printf '| quantile sketch: worst relative p99 error at the largest n; ns per add | %s; %s | | | | |\n' \
        "$(num "$sketch_err" 5)" "$(num "$sketch_ns" 1)"
    printf '| same SLA-01 alert set as the peer (bench/peer/compare.sh) | %s | | | equal | |\n\n' "$same_text"
    printf 'Like for like? Both read the same topic from its first offset on the same broker and\n'
    printf 'publish their alerts. `revstream run` (default configuration: batches of 5000 events or\n'
    printf '20 ms, growing to 20000 while it is behind) applies every rule (SLA-01 to SLA-07) and every\n'
    printf 'metric and publishes the metric updates too; the peer computes SLA-01 alone (at least\n'
    printf 'once, with changelogs). The same L1 breaches row checks that both find the same breaches\n'
    printf 'on a small topic. Peak RSS is `ru_maxrss`, in which the pages of LMDB'"'"'s memory-mapped\n'
    printf 'file count; RssAnon leaves them out.\n\n'
    if [[ -n $peer_note ]]; then
        printf '%s\n\n' "$peer_note"
    fi
    if [[ $pictures == yes ]]; then
        printf '![throughput](throughput.png)\n\n![latency](latency.png)\n\n'
    fi
    printf '## Steps\n\n| step | status | seconds |\n|---|---|---:|\n'
    awk -F '\t' '{ printf "| %s | %s | %s |\n", $1, $2, $3 }' "$raw/status.txt" 2>/dev/null || true
    printf '\n## Commands\n\n```sh\n'
    cut -f 2 "$raw/commands.txt" 2>/dev/null || true
    printf '```\n\nThe broker was %s; RS_BENCH_BROKERS=%s.\n' \
        "$( [[ $(runv started_broker) == yes ]] && echo 'started by run-all (deploy/kafka.sh) and stopped after' || echo 'already running and left alone')" \
        "$(runv brokers)"
} >"$out/REPORT.md"
