#!/usr/bin/env bash
# Persistence benchmark (issue 9): QoS 1 throughput of boxmq memory-only,
# boxmq durable (persistence true, sync true: PUBACK after fdatasync),
# boxmq persistence with sync false, and Mosquitto with persistence true
# (its own temporary directory), all with a persistent subscriber (clean
# session 0) so that the messages are part of the durable state.
#
# Reports, as medians of REPS runs (each against a fresh broker and a fresh
# data directory): acknowledged msg/s (PUBLISHes sent in the measured
# window, with at most `window` unacknowledged per publisher), delivered
# msg/s, PUBACK latency p50/p99, and bytes the
# broker process wrote to the device (/proc/PID/io write_bytes) per byte of
# PUBLISH acknowledged.
#
# Usage: benches/persist.sh [--reps N] [--duration SECS] [--publishers N]
#        [--window N] [--payload BYTES]
# Data directories live under target/ (a real disk, not a tmpfs /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

REPS=3
DURATION=3
PUBLISHERS=4
WINDOW=32
PAYLOAD=64
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --publishers) PUBLISHERS=$2; shift 2 ;;
        --window) WINDOW=$2; shift 2 ;;
        --payload) PAYLOAD=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

echo "== building boxmq (release) and the load generator" >&2
build_boxmq
LOAD=$(bench_bin load)
BOXMQ=target/release/boxmq
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)

pin_cpus

mkdir -p target
bench_tmp target/persist-bench.XXXXXX

write_bytes() {
    sed -n 's/^write_bytes: //p' "/proc/$1/io"
}

# start_broker CASE DATADIR
start_broker() {
    PORT=$(free_port)
    local data=$2
    mkdir -p "$data"
    case "$1" in
        memory|durable|nosync)
            {
                echo "listener $PORT 127.0.0.1"
                echo "max_queued_messages 10000"
                echo "max_queued_bytes 67108864"
                echo "log_type error"
                case "$1" in
                    memory) echo "persistence false" ;;
                    durable) echo "persistence true"; echo "persistence_location $data" ;;
                    nosync) echo "persistence true"; echo "persistence_location $data"; echo "persistence_sync false" ;;
                esac
            } >"$TMP/boxmq.conf"
            launch_broker "$1" "$BOXMQ" -c "$TMP/boxmq.conf"
            ;;
        mosquitto)
            cat >"$TMP/mosquitto.conf" <<EOF
listener $PORT 127.0.0.1
allow_anonymous true
persistence true
persistence_location $data/
max_queued_messages 1000000
log_dest none
EOF
            launch_broker mosquitto "$MOSQUITTO" -c "$TMP/mosquitto.conf"
            ;;
    esac
}

RAW="$TMP/raw.txt"
: >"$RAW"
for rep in $(seq "$REPS"); do
    for case in memory durable nosync mosquitto; do
        data="$TMP/data-$case-$rep"
        start_broker "$case" "$data"
        before=$(write_bytes "$BROKER_PID")
        line=$("${PIN_LOAD[@]}" "$LOAD" throughput --addr "127.0.0.1:$PORT" --broker "$case" \
            --qos 1 --persistent 1 --publishers "$PUBLISHERS" --window "$WINDOW" \
            --payload "$PAYLOAD" --duration "$DURATION" --pid "$BROKER_PID" | grep '^RESULT' || true)
        after=$(write_bytes "$BROKER_PID")
        stop_broker
        echo "$line written=$((after - before)) rep=$rep" | tee -a "$RAW" >&2
    done
done

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
python3 - "$RAW" "$PAYLOAD" "$PUBLISHERS" "$WINDOW" "$DURATION" "$REPS" "$COMMIT" <<'PY'
import sys, statistics
raw, payload, pubs, window, duration, reps, commit = sys.argv[1:]
payload = int(payload)
runs = {}
for line in open(raw):
    kv = dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)
    runs.setdefault(kv.get("broker"), []).append(kv)
def med(case, key):
    vals = [float(r[key]) for r in runs.get(case, []) if key in r]
    return statistics.median(vals) if vals else None
# Bytes of one acknowledged PUBLISH: fixed header (2), topic "bench/N"
# (2 + 7), packet id (2), payload.
packet = 2 + 2 + 7 + 2 + payload
names = {"memory": "boxmq, persistence false", "durable": "boxmq, persistence true (sync)",
         "nosync": "boxmq, persistence_sync false", "mosquitto": "Mosquitto 2, persistence true"}
mem = med("memory", "delivered_per_s")
print(f"QoS 1, {pubs} publishers x window {window}, {payload}-byte payload, persistent subscriber, "
      f"{duration} s, median of {reps}; boxmq {commit}")
print()
print("| broker | acked msg/s | delivered msg/s | delivered vs memory-only | PUBACK p50 ms | PUBACK p99 ms | written bytes / acked byte |")
print("|---|---:|---:|---:|---:|---:|---:|")
for case in ["memory", "durable", "nosync", "mosquitto"]:
    d = med(case, "delivered_per_s")
    if d is None:
        print(f"| {names[case]} | error | | | | | |")
        continue
    ratios = [float(r["written"]) / (float(r["acked_total"]) * packet)
              for r in runs[case] if "written" in r and float(r.get("acked_total", 0)) > 0]
    wb = statistics.median(ratios) if ratios else float("nan")
    vs = f"{d / mem:.0%}" if mem else "-"
    acked = statistics.median(float(r["sent_in_window"]) / float(r["window_s"]) for r in runs[case])
    print(f"| {names[case]} | {acked:,.0f} | {d:,.0f} | {vs} | {med(case, 'ack_p50_ms'):.3f} | "
          f"{med(case, 'ack_p99_ms'):.3f} | {wb:.2f} |")
PY
