#!/usr/bin/env bash
#
# deploy/kafka.sh - a single-node Apache Kafka broker (KRaft, broker+controller in one JVM)
# for development, integration tests and benchmarks. No Kafka install needed: the broker's
# jars come from Maven (deploy/kafka/pom.xml) into a per-user cache, and the broker runs
# straight from that classpath.
#
# Run `deploy/kafka.sh --help` for the commands and the environment variables.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
readonly SCRIPT_DIR REPO_ROOT
readonly POM=$SCRIPT_DIR/kafka/pom.xml
readonly PROG=deploy/kafka.sh
readonly HOST=127.0.0.1
readonly STOP_TIMEOUT_S=30

usage() {
    cat <<EOF
usage: $PROG COMMAND [ARGS]

A single-node Apache Kafka broker (KRaft, combined broker and controller) for development
and tests, listening on $HOST only.

commands:
  fetch                    copy the broker's jars into the cache with Maven (skipped when
                           the cache is already complete for the current pom.xml)
  start                    fetch if needed, format the log dir on first use, start the broker
                           in the background and wait until it answers metadata requests
  stop                     stop the broker (SIGTERM, then SIGKILL after ${STOP_TIMEOUT_S} s)
  status                   exit 0 if the broker is running and answering, 1 if it is running
                           but not answering, 3 if it is not running
  topic NAME PARTITIONS    create a topic with replication factor 1 (ok if it exists)
  reset                    stop the broker and delete its run directory (all topics and data)
  help, -h, --help         print this help

environment:
  RS_KAFKA_PORT            client listener port (default 9092)
  RS_KAFKA_CONTROLLER_PORT KRaft controller port (default 9093)
  RS_KAFKA_DIR             run directory: config, data, logs, pid file; relative paths are
                           taken from the repository root (default ./.kafka)
  RS_KAFKA_CACHE           jar cache (default \${XDG_CACHE_HOME:-\$HOME/.cache}/revstream/kafka-VERSION)
  RS_KAFKA_HEAP            broker -Xmx (default 1G)
  RS_KAFKA_START_TIMEOUT   seconds start waits for the broker to answer (default 90)
  RS_KAFKA_MVN_ARGS        extra arguments for mvn, e.g. "-o" or "-s settings.xml"
  JAVA_HOME                Java 17 or newer to run the broker (default: java on PATH)

files in the run directory: server.properties, broker.log (the broker's log4j2 log),
broker.out (JVM stdout/stderr), kafka.pid, data/ (log.dirs and the KRaft metadata log).
EOF
}

say() { printf 'kafka: %s\n' "$*" >&2; }
die() { printf 'kafka: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Settings derived from the environment and the pom.

kafka_version() {
    local v
    v=$(sed -n 's:.*<kafka\.version>[[:space:]]*\([^<[:space:]]*\)[[:space:]]*</kafka\.version>.*:\1:p' \
        "$POM" | head -n 1)
    [[ -n $v ]] || die "cannot read <kafka.version> from '$POM'"
    printf '%s\n' "$v"
}

[[ -f $POM ]] || die "missing '$POM'"
# A plain assignment, not "readonly X=$(...)", so a failure inside $(...) stops the script.
VERSION=$(kafka_version)
readonly VERSION
readonly PORT=${RS_KAFKA_PORT:-9092}
readonly CONTROLLER_PORT=${RS_KAFKA_CONTROLLER_PORT:-9093}
readonly BOOTSTRAP=$HOST:$PORT
readonly HEAP=${RS_KAFKA_HEAP:-1G}
readonly START_TIMEOUT_S=${RS_KAFKA_START_TIMEOUT:-90}

for n in "$PORT" "$CONTROLLER_PORT" "$START_TIMEOUT_S"; do
    [[ $n =~ ^[0-9]+$ ]] || die "expected a number, got '$n' (check RS_KAFKA_* variables)"
done
[[ $PORT != "$CONTROLLER_PORT" ]] || die "RS_KAFKA_PORT and RS_KAFKA_CONTROLLER_PORT are both $PORT"

if [[ -n ${RS_KAFKA_CACHE:-} ]]; then
    CACHE=$RS_KAFKA_CACHE
else
    CACHE=${XDG_CACHE_HOME:-${HOME:?HOME is not set; set RS_KAFKA_CACHE}/.cache}/revstream/kafka-$VERSION
fi
readonly CACHE
# Written last by fetch, holding the pom's checksum: a cache without it (an interrupted
# fetch) or with another checksum (the pom changed) is fetched again.
readonly MARKER=$CACHE/.revstream-fetched

run_dir=${RS_KAFKA_DIR:-./.kafka}
case $run_dir in
    /*) ;;
    *) run_dir=$REPO_ROOT/${run_dir#./} ;;
esac
run_dir=${run_dir%/}
readonly RUN=${run_dir:-/}
readonly DATA=$RUN/data
readonly PIDFILE=$RUN/kafka.pid
readonly LOG=$RUN/broker.log
readonly OUT=$RUN/broker.out

if [[ -n ${JAVA_HOME:-} ]]; then
    JAVA=$JAVA_HOME/bin/java
else
    JAVA=java
fi
readonly JAVA

# Short-lived tool JVMs: no JIT beyond C1 and a small serial heap start about twice as fast.
readonly TOOL_JVM_OPTS=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true)

# ---------------------------------------------------------------------------------------------
# Jar cache.

pom_checksum() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$POM" | cut -d ' ' -f 1
    else
        cksum "$POM" | cut -d ' ' -f 1,2
    fi
}

cache_is_complete() {
    [[ -f $MARKER && -f $CACHE/kafka_2.13-$VERSION.jar ]] &&
        [[ $(cat "$MARKER") == "$(pom_checksum)" ]]
}

cmd_fetch() {
    if cache_is_complete; then
        say "jars for Kafka $VERSION already in $CACHE"
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not found; install Maven (scripts/install-deps.sh does)"
    mkdir -p "$CACHE" || die "cannot create cache directory '$CACHE'"

    # Two fetches at once (parallel CI jobs sharing a cache) must not interleave.
    if command -v flock >/dev/null 2>&1; then
        exec 8>"$CACHE/.lock"
        flock 8
        if cache_is_complete; then
            exec 8>&-
            say "jars for Kafka $VERSION fetched meanwhile by another run"
            return 0
        fi
    fi

    say "fetching Kafka $VERSION jars with Maven into $CACHE"
    local started=$SECONDS
    FETCH_TMP=$(mktemp -d "$CACHE/.fetch.XXXXXX")
    trap 'rm -rf "$FETCH_TMP" "$FETCH_TMP.log"' EXIT
    # shellcheck disable=SC2086 # RS_KAFKA_MVN_ARGS is a list of words on purpose
    if ! mvn -q -B ${RS_KAFKA_MVN_ARGS:-} -f "$POM" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$FETCH_TMP" >"$FETCH_TMP.log" 2>&1; then
        cat "$FETCH_TMP.log" >&2
        die "maven could not fetch the Kafka $VERSION jars (output above)"
    fi
    [[ -f $FETCH_TMP/kafka_2.13-$VERSION.jar ]] ||
        die "maven ran but kafka_2.13-$VERSION.jar is missing; check '$POM'"
    # Replace only our own files: RS_KAFKA_CACHE may point at a directory with other content.
    rm -f "$MARKER" "$CACHE"/*.jar
    mv "$FETCH_TMP"/*.jar "$CACHE"/
    pom_checksum >"$MARKER"
    rm -rf "$FETCH_TMP" "$FETCH_TMP.log"
    trap - EXIT
    exec 8>&-
    say "fetched $(find "$CACHE" -maxdepth 1 -name '*.jar' | wc -l | tr -d ' ') jars in $((SECONDS - started)) s"
}

ensure_java() {
    command -v "$JAVA" >/dev/null 2>&1 ||
        die "java not found; install a JRE 17+ (scripts/install-deps.sh does) or set JAVA_HOME"
    local line major
    line=$("$JAVA" -version 2>&1 | head -n 1)
    major=$(printf '%s\n' "$line" | sed -n 's/.*version "\([0-9]*\).*/\1/p')
    # "1.8.0_x" reads as 1; Kafka 4 brokers need Java 17.
    if [[ -n $major && $major -lt 17 ]]; then
        die "Kafka $VERSION needs Java 17 or newer, found: $line"
    fi
}

classpath() { printf '%s/*' "$CACHE"; }

# Run a Kafka command-line tool class quietly: its log4j2 sends warnings to stderr only.
# coreutils timeout, where present, bounds a tool stuck on a broker that accepts
# connections but never answers.
run_tool() {
    [[ -f $RUN/tools-log4j2.properties ]] || write_tools_config
    local limit=()
    if command -v timeout >/dev/null 2>&1; then limit=(timeout 60); fi
    "${limit[@]}" "$JAVA" "${TOOL_JVM_OPTS[@]}" \
        -Dlog4j2.configurationFile="$RUN/tools-log4j2.properties" -cp "$(classpath)" "$@"
}

# ---------------------------------------------------------------------------------------------
# Process and readiness checks.

# Prints the pid if the pid file names a live broker started from this run directory.
# A stale pid file (crash, reboot, pid reused by another program) is removed.
running_pid() {
    [[ -f $PIDFILE ]] || return 1
    local pid
    pid=$(tr -cd '0-9' <"$PIDFILE")
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && is_our_broker "$pid"; then
        printf '%s\n' "$pid"
        return 0
    fi
    rm -f "$PIDFILE"
    return 1
}

is_our_broker() {
    local args
    if [[ -r /proc/$1/cmdline ]]; then
        args=$(tr '\0' ' ' <"/proc/$1/cmdline")
    elif command -v ps >/dev/null 2>&1; then
        args=$(ps -o args= -p "$1" 2>/dev/null) || return 1
    else
        return 0
    fi
    [[ $args == *kafka.Kafka* && $args == *"$RUN/server.properties"* ]]
}

# True if something accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# The broker answers when a metadata request lists it (a fenced broker, still catching up on
# the metadata log, is left out) and it then answers ApiVersions: BrokerApiVersionsCommand
# does both.
broker_answers() {
    local out
    out=$(run_tool org.apache.kafka.tools.BrokerApiVersionsCommand \
        --bootstrap-server "$BOOTSTRAP" 2>"$RUN/probe.err") || return 1
    [[ $out == *"(id: 1 "* ]]
}

running_version() {
    if [[ -f $RUN/kafka.version ]]; then cat "$RUN/kafka.version"; else printf '%s\n' "$VERSION"; fi
}

# Byte sizes of broker.log and broker.out when this start launched the broker: both are
# appended to across runs, and an old run's lines would mislead.
LOG_OFFSET=0
OUT_OFFSET=0

file_size() { if [[ -f $1 ]]; then wc -c <"$1" | tr -d ' '; else echo 0; fi; }

print_log_tail() {
    local f off lines
    for f in "$LOG" "$OUT"; do
        off=$OUT_OFFSET
        [[ $f == "$LOG" ]] && off=$LOG_OFFSET
        [[ -f $f ]] || continue
        lines=$(tail -c +"$((off + 1))" "$f" | tail -n 40)
        if [[ -n $lines ]]; then
            printf -- '--- last lines of %s ---\n%s\n' "$f" "$lines" >&2
        fi
    done
}

# ---------------------------------------------------------------------------------------------
# Configuration, written on every start so a changed port or script takes effect.

write_config() {
    cat >"$RUN/server.properties" <<EOF
# Written by $PROG on every start: edit the script, not this file.
# Single-node KRaft: this process is the only broker and the only controller.
process.roles=broker,controller
node.id=1
# A static quorum of one voter. It lives in this file rather than in the formatted metadata
# log (as a dynamic quorum formatted with --standalone would), so the ports can change
# between runs without reformatting.
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT

log.dirs=$DATA
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true

# Internal topics must fit on one broker.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Tests join consumer groups often: don't wait 3 s for more members.
group.initial.rebalance.delay.ms=0
EOF

    cat >"$RUN/log4j2.properties" <<EOF
# Written by $PROG: the broker's log4j2 configuration.
status = warn
name = revstream-kafka-broker
# The file appender flushes every line, so log4j's own shutdown hook adds nothing but a
# warning that the JVM is already shutting down (Kafka logs from its own hook).
shutdownHook = disable

appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = $LOG
appender.file.filePattern = $LOG.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 2

rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file

# One line per request or per partition state change: far too much for a test broker.
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
EOF
    write_tools_config
}

write_tools_config() {
    mkdir -p "$RUN"
    cat >"$RUN/tools-log4j2.properties" <<EOF
# Written by $PROG: log4j2 configuration for the command-line tools it runs.
status = warn
name = revstream-kafka-tools
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = err
EOF
}

# Format the log dir once: a fresh cluster id the first time, nothing on later starts.
format_storage() {
    if [[ -f $DATA/meta.properties ]]; then
        return 0
    fi
    local cluster_id
    cluster_id=$(run_tool kafka.tools.StorageTool random-uuid 2>"$RUN/format.log") || {
        cat "$RUN/format.log" >&2
        die "cannot generate a cluster id"
    }
    say "formatting $DATA (cluster id $cluster_id)"
    if ! run_tool kafka.tools.StorageTool format --config "$RUN/server.properties" \
        --cluster-id "$cluster_id" --ignore-formatted >>"$RUN/format.log" 2>&1; then
        cat "$RUN/format.log" >&2
        die "cannot format '$DATA'"
    fi
}

# ---------------------------------------------------------------------------------------------
# Commands.

wait_ready() {
    local pid=$1 started=$SECONDS deadline=$((SECONDS + START_TIMEOUT_S))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PIDFILE"
            print_log_tail
            die "the broker exited during startup (logs above)"
        fi
        # The broker binds its client port only once it is about to serve, so a TCP connect
        # is a cheap gate in front of the JVM-based probe (about 1.5 s per call).
        if port_in_use "$PORT" && broker_answers; then
            say "broker answered after $((SECONDS - started)) s"
            printf 'kafka: ready on %s (version %s)\n' "$BOOTSTRAP" "$(running_version)"
            return 0
        fi
        sleep 0.2
    done
    print_log_tail
    say "the broker did not answer on $BOOTSTRAP within $START_TIMEOUT_S s; stopping it"
    cmd_stop >/dev/null 2>&1 || true
    exit 1
}

cmd_start() {
    local pid
    mkdir -p "$RUN"
    if pid=$(running_pid); then
        say "already running (pid $pid)"
        wait_ready "$pid"
        return 0
    fi
    ensure_java
    cache_is_complete || cmd_fetch

    local p
    for p in "$PORT" "$CONTROLLER_PORT"; do
        if port_in_use "$p"; then
            die "port $HOST:$p is already in use (another broker?); stop it or set RS_KAFKA_PORT/RS_KAFKA_CONTROLLER_PORT"
        fi
    done

    mkdir -p "$DATA"
    write_config
    format_storage

    printf '%s\n' "$VERSION" >"$RUN/kafka.version"
    LOG_OFFSET=$(file_size "$LOG")
    OUT_OFFSET=$(file_size "$OUT")
    # The broker must not hold this script's stdout/stderr: a caller reading them through a
    # pipe (CI, $(...)) would wait for the broker to exit. setsid keeps Ctrl-C in the
    # caller's terminal from reaching it.
    local launcher=()
    if command -v setsid >/dev/null 2>&1; then launcher=(setsid); fi
    (
        cd "$RUN"
        exec "${launcher[@]}" "$JAVA" -Xms256m -Xmx"$HEAP" \
            -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExplicitGCInvokesConcurrent \
            -Djava.awt.headless=true \
            -Dlog4j2.configurationFile="$RUN/log4j2.properties" -Dkafka.logs.dir="$RUN" \
            -cp "$(classpath)" kafka.Kafka "$RUN/server.properties"
    ) </dev/null >>"$OUT" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$PIDFILE"
    say "started broker (pid $pid, log $LOG), waiting up to $START_TIMEOUT_S s for $BOOTSTRAP"
    wait_ready "$pid"
}

cmd_stop() {
    local pid
    if ! pid=$(running_pid); then
        say "not running"
        return 0
    fi
    say "stopping broker (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT_S))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "no clean exit after $STOP_TIMEOUT_S s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$PIDFILE"
    say "stopped"
}

cmd_status() {
    local pid
    if ! pid=$(running_pid); then
        say "not running"
        exit 3
    fi
    if broker_answers; then
        printf 'kafka: running on %s (pid %s, version %s)\n' "$BOOTSTRAP" "$pid" "$(running_version)"
        return 0
    fi
    say "running (pid $pid) but not answering on $BOOTSTRAP"
    exit 1
}

cmd_topic() {
    [[ $# -eq 2 ]] || die "usage: $PROG topic NAME PARTITIONS"
    local name=$1 partitions=$2 out
    [[ $name =~ ^[A-Za-z0-9._-]{1,249}$ ]] || die "invalid topic name '$name'"
    [[ $partitions =~ ^[1-9][0-9]*$ ]] || die "PARTITIONS must be a positive integer, got '$partitions'"
    running_pid >/dev/null || die "the broker is not running; run '$PROG start' first"

    out=$(run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" \
        --create --if-not-exists --topic "$name" --partitions "$partitions" \
        --replication-factor 1) || {
        printf '%s\n' "$out" >&2
        die "cannot create topic '$name'"
    }
    if [[ $out == *"Created topic"* ]]; then
        say "created topic $name ($partitions partitions)"
        return 0
    fi
    # It existed: say so if it differs from what was asked for, since tests that count on a
    # partition layout would then misbehave in confusing ways.
    local have
    have=$(run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" \
        --describe --topic "$name" | sed -n 's/.*PartitionCount: *\([0-9]*\).*/\1/p' | head -n 1)
    if [[ -n $have && $have != "$partitions" ]]; then
        say "warning: topic $name already exists with $have partitions, not $partitions"
    else
        say "topic $name already exists ($partitions partitions)"
    fi
}

cmd_reset() {
    cmd_stop
    if [[ ! -e $RUN ]]; then
        say "nothing to delete at $RUN"
        return 0
    fi
    # RS_KAFKA_DIR is user input: only delete a directory this script evidently made.
    case $RUN in
        / | "$REPO_ROOT" | "${HOME:-/}") die "refusing to delete '$RUN'" ;;
    esac
    if [[ ! -f $RUN/server.properties && -n $(ls -A "$RUN") ]]; then
        die "'$RUN' does not look like a run directory of $PROG (no server.properties); not deleting it"
    fi
    rm -rf "$RUN"
    say "deleted $RUN"
}

main() {
    local cmd=${1:-}
    if [[ $# -gt 0 ]]; then shift; fi
    case $cmd in
        fetch) [[ $# -eq 0 ]] || die "fetch takes no arguments"; cmd_fetch ;;
        start) [[ $# -eq 0 ]] || die "start takes no arguments"; cmd_start ;;
        stop) [[ $# -eq 0 ]] || die "stop takes no arguments"; cmd_stop ;;
        status) [[ $# -eq 0 ]] || die "status takes no arguments"; cmd_status ;;
        topic) cmd_topic "$@" ;;
        reset) [[ $# -eq 0 ]] || die "reset takes no arguments"; cmd_reset ;;
        help | -h | --help) usage ;;
        "") usage >&2; exit 2 ;;
        *) say "unknown command '$cmd'"; usage >&2; exit 2 ;;
    esac
}

main "$@"
