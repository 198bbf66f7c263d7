# Plumbing shared by the benchmark scripts (compare.sh, qos.sh, persist.sh,
# hooks.sh): sourced by them, not run. Each script keeps its own broker
# configurations, cases and tables; this file has what they do alike:
# building, CPU pinning, the temporary directory, starting and stopping a
# broker by PID, running the load generator, and the raw file's comments.
# Everything listens and connects on 127.0.0.1.
# shellcheck shell=bash

# build_boxmq: builds the release broker, target/release/boxmq (cargo's
# messages to stderr).
build_boxmq() {
    cargo build --release --bin boxmq >&2
}

# bench_bin NAME: builds the bench target NAME (benches/) and prints the
# path of its executable; fails if cargo names none.
bench_bin() {
    local exe
    exe=$(cargo bench --bench "$1" --no-run 2>&1 | sed -n "s/.*Executable .*(\(.*$1-[0-9a-f]*\)).*/\1/p" | tail -1)
    [ -x "$exe" ] || { echo "cannot find the $1 bench binary" >&2; return 1; }
    echo "$exe"
}

# pin_cpus: sets PIN_BROKER and PIN_LOAD, the command prefixes that put the
# broker on CPU 0 and the load on CPU 1 where taskset can (empty otherwise),
# and PINNING, which of the two, in words.
pin_cpus() {
    PIN_BROKER=()
    PIN_LOAD=()
    if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ] && taskset -c 0 true 2>/dev/null && taskset -c 1 true 2>/dev/null; then
        PIN_BROKER=(taskset -c 0)
        PIN_LOAD=(taskset -c 1)
        PINNING="broker on CPU 0, load generator on CPU 1 (taskset)"
    else
        # shellcheck disable=SC2034 # read by compare.sh
        PINNING="no pinning (taskset unavailable or fewer than 2 CPUs)"
    fi
}

# bench_tmp [TEMPLATE]: sets TMP to a new directory (mktemp -d, with
# TEMPLATE if given) and traps EXIT to stop the broker still running, if
# any, and remove TMP.
# shellcheck disable=SC2120 # the template is optional
bench_tmp() {
    TMP=$(mktemp -d "$@")
    BROKER_PID=
    trap bench_cleanup EXIT
}

# bench_cleanup: the EXIT trap of bench_tmp.
bench_cleanup() {
    stop_broker
    rm -rf "$TMP"
}

# free_port: prints a TCP port of 127.0.0.1 that was free a moment ago.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# launch_broker NAME COMMAND...: runs COMMAND in the background on the
# broker's CPU (in directory BROKER_CWD if set), its output to
# $TMP/broker.log, sets BROKER_PID and waits until it answers on PORT.
launch_broker() {
    local name=$1
    shift
    (cd "${BROKER_CWD:-.}" && exec "${PIN_BROKER[@]}" "$@") >"$TMP/broker.log" 2>&1 &
    BROKER_PID=$!
    wait_broker "$name"
}

# wait_broker NAME: waits up to 5 s for the broker on PORT to answer the
# load generator's ping; else prints its log and exits the script.
wait_broker() {
    for _ in $(seq 50); do
        if "$LOAD" ping --addr "127.0.0.1:$PORT" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    echo "broker $1 did not come up:" >&2
    cat "$TMP/broker.log" >&2
    exit 1
}

# stop_broker: stops the broker BROKER_PID, if any, and waits for it.
stop_broker() {
    if [ -n "${BROKER_PID:-}" ]; then
        kill "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    BROKER_PID=
}

# load_result SECS SCENARIO BROKER ARGS...: runs the load generator's
# SCENARIO on the load CPU against the broker on PORT (BROKER_PID) for at
# most SECS seconds; prints its RESULT line, or nothing if it gave none
# (its stderr goes to $TMP/load.err).
load_result() {
    local secs=$1 scenario=$2 broker=$3
    shift 3
    timeout "$secs" "${PIN_LOAD[@]}" "$LOAD" "$scenario" --addr "127.0.0.1:$PORT" \
        --broker "$broker" --pid "$BROKER_PID" "$@" 2>"$TMP/load.err" | grep '^RESULT' || true
}

# meta_start: notes the time and load average at the start of the runs.
meta_start() {
    START=$(date +%s)
    LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
}

# meta_head: the raw file's first comment lines: seconds since meta_start,
# load averages at the start and now, REPS.
meta_head() {
    echo "# elapsed: $(($(date +%s) - START))"
    echo "# loadavg_start: $LOADAVG_START"
    echo "# loadavg_end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# reps: $REPS"
}

# meta_stamp: the raw file's date and commit comment lines.
meta_stamp() {
    echo "# date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "# commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
}

# mosquitto_version: the version that $MOSQUITTO reports (`-h` exits 3).
mosquitto_version() {
    { "$MOSQUITTO" -h 2>/dev/null || true; } | sed -n 's/^mosquitto version \([^ ]*\).*/\1/p' | head -1
}
