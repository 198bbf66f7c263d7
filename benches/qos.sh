#!/usr/bin/env bash
# QoS 1 under load (issue 16): boxmq at its default config against Mosquitto
# in the same run, each case repeated; writes the table of medians and
# ratios into BENCHMARKS.md (between the qos:begin/end markers).
#
# usage: benches/qos.sh [--reps N] [--out FILE] [--render-only]
#   --reps N        runs per measurement, median reported (default 3)
#   --out F         file to update (default BENCHMARKS.md)
#   --render-only   no runs: rebuild the table from the raw file of the last run
# The raw runs go to benches/qos-raw.txt (or $RAW) as they finish.
#
# Cases:
#   throughput 1 and 16 publishers, QoS 1, 100 unacknowledged each, one
#     QoS 1 subscriber (the load generator, benches/load);
#   stuck: the same with 1 publisher plus one subscriber that subscribes and
#     then never reads (--stuck 1): what the healthy one gets;
#   mosquitto_pub: 16 `mosquitto_pub -q 1 -l`, 2,000 lines each, into one
#     `mosquitto_sub -q 1`: acknowledged (lines of the publishers that
#     exited 0), delivered, dropped.
# boxmq runs as a user starts it: `boxmq --listen ADDR`, nothing else (its
# default data directory in a temporary working directory). Mosquitto
# 2.0.11 gets `max_inflight_messages 100`, `max_queued_messages 100000`,
# `persistence false` for the load generator's cases, and only a listener
# and `allow_anonymous true` (its defaults otherwise) for the
# mosquitto_pub case. Broker on CPU 0, load on CPU 1 when taskset works.
#
# It installs nothing: it needs mosquitto, mosquitto-clients, python3 and
# cargo. Everything listens and connects on 127.0.0.1; every process it
# starts is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

REPS=3
OUT=BENCHMARKS.md
RENDER_ONLY=0
RAW=${RAW:-benches/qos-raw.txt}
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --render-only) RENDER_ONLY=1; shift ;;
        *) echo "usage: $0 [--reps N] [--out FILE] [--render-only]" >&2; exit 2 ;;
    esac
done

MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
for tool in "$MOSQUITTO" mosquitto_pub mosquitto_sub python3; do
    command -v "$tool" >/dev/null || { echo "$tool not found (apt-get install mosquitto mosquitto-clients python3)" >&2; exit 1; }
done

if [ "$RENDER_ONLY" = 0 ]; then
echo "== building boxmq (release) and the load generator" >&2
build_boxmq
LOAD=$(bench_bin load)
BOXMQ=$PWD/target/release/boxmq

pin_cpus
bench_tmp

# start_broker boxmq|mosquitto|mosquitto-defaults: sets PORT and BROKER_PID.
start_broker() {
    PORT=$(free_port)
    case "$1" in
        boxmq)
            rm -rf "$TMP/cwd"; mkdir -p "$TMP/cwd"
            BROKER_CWD=$TMP/cwd launch_broker boxmq "$BOXMQ" --listen "127.0.0.1:$PORT"
            ;;
        mosquitto)
            printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 100\nmax_queued_messages 100000\nlog_dest none\n' "$PORT" >"$TMP/m.conf"
            launch_broker mosquitto "$MOSQUITTO" -c "$TMP/m.conf"
            ;;
        mosquitto-defaults)
            printf 'listener %s 127.0.0.1\nallow_anonymous true\nlog_dest stderr\n' "$PORT" >"$TMP/m.conf"
            launch_broker mosquitto-defaults "$MOSQUITTO" -c "$TMP/m.conf"
            ;;
    esac
}

# load_case CASE ARGS...: the load generator against both brokers.
load_case() {
    local case=$1
    shift
    for rep in $(seq "$REPS"); do
        for broker in boxmq mosquitto; do
            start_broker "$broker"
            local line
            line=$(load_result 120 throughput "$broker" "$@")
            [ -n "$line" ] || line="RESULT broker=$broker error=no_result"
            echo "case=$case rep=$rep $line" >>"$RAW"
            echo "  $case rep $rep $broker: ${line#RESULT }" >&2
            stop_broker
        done
    done
}

# pub_case: 16 mosquitto_pub -l publishers, 2,000 lines each, one
# mosquitto_sub; boxmq at its defaults against Mosquitto at its defaults.
pub_case() {
    local pubs=16 lines=2000
    local total=$((pubs * lines))
    for rep in $(seq "$REPS"); do
        for broker in boxmq mosquitto-defaults; do
            start_broker "$broker"
            : >"$TMP/sub.out"
            mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'load/#' -C "$total" -W 120 >"$TMP/sub.out" 2>/dev/null &
            local sub=$!
            sleep 0.5
            local pids=()
            for p in $(seq "$pubs"); do
                seq -f "$p-%g" 1 "$lines" >"$TMP/lines-$p"
                timeout 60 mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "load/$p" -l <"$TMP/lines-$p" &
                pids+=($!)
            done
            local ok=0
            for pid in "${pids[@]}"; do
                if wait "$pid"; then ok=$((ok + 1)); fi
            done
            # Then until the subscriber has all, or nothing new for 2 s.
            local last=-1 same=0 n=0
            while kill -0 "$sub" 2>/dev/null && [ "$same" -lt 20 ]; do
                n=$(wc -l <"$TMP/sub.out")
                if [ "$n" = "$last" ]; then same=$((same + 1)); else same=0; last=$n; fi
                sleep 0.1
            done
            kill "$sub" 2>/dev/null || true
            wait "$sub" 2>/dev/null || true
            local delivered acked logged
            delivered=$(sort -u "$TMP/sub.out" | wc -l)
            acked=$((ok * lines))
            logged=$(grep -ci 'drop' "$TMP/broker.log" || true)
            local name=${broker%-defaults}
            echo "case=mosquitto_pub rep=$rep RESULT broker=$name acked_total=$acked received_total=$delivered dropped=$((acked > delivered ? acked - delivered : 0)) drop_log_lines=$logged" >>"$RAW"
            echo "  mosquitto_pub rep $rep $name: acked $acked delivered $delivered drop log lines $logged" >&2
            stop_broker
        done
    done
}

: >"$RAW"
meta_start
load_case "throughput publishers=1 qos=1" --publishers 1 --qos 1 --window 100 --duration 2
load_case "throughput publishers=16 qos=1" --publishers 16 --qos 1 --window 100 --duration 2
load_case "stuck subscriber, publishers=1 qos=1" --publishers 1 --qos 1 --window 100 --stuck 1 --duration 10
pub_case
{
    meta_head
    meta_stamp
    echo "# mosquitto: $(mosquitto_version)"
} >>"$RAW"
fi

python3 - "$RAW" "$OUT" <<'PYEOF'
import sys

sys.path.insert(0, "benches")
from lib import read_raw, fmt

raw, out = sys.argv[1], sys.argv[2]
runs, meta, med = read_raw(raw)

rows = []
def row(case, key, label, better):
    b, m = med(case, "boxmq", key), med(case, "mosquitto", key)
    ratio = f"{b / m:.2f}" if b is not None and m not in (None, 0) else "n/a"
    rows.append(f"| {case} | {label} | {fmt(b)} | {fmt(m)} | {ratio} | {better} |")

for case in dict.fromkeys(c for c, _ in runs):
    if case == "mosquitto_pub":
        row(case, "acked_total", "acknowledged", "")
        row(case, "received_total", "delivered", "higher")
        row(case, "dropped", "dropped (acknowledged, never delivered)", "lower")
        row(case, "drop_log_lines", "broker log lines about dropping", "")
        continue
    row(case, "delivered_per_s", "delivered msg/s (to the healthy subscriber)" if "stuck" in case else "delivered msg/s", "higher")
    row(case, "delivery_p50_ms", "publish-to-delivery p50 ms", "lower")
    row(case, "delivery_p99_ms", "publish-to-delivery p99 ms", "lower")
    row(case, "delivery_max_ms", "publish-to-delivery max ms", "lower")
    row(case, "acked_total", "acknowledged", "")
    row(case, "received_total", "delivered (after a 2 s drain)", "")
    row(case, "lost_after_drain", "acknowledged, not delivered after the drain", "lower")
    row(case, "broker_cpu_pct", "broker CPU %", "")

block = [
    "<!-- qos:begin (generated by benches/qos.sh; edits here are overwritten) -->",
    "",
    f"Date: {meta.get('date', '?')}, boxmq {meta.get('commit', '?')} (release, `boxmq --listen ADDR`) vs Mosquitto {meta.get('mosquitto', '?')}  ",
    f"Command: `benches/qos.sh --reps {meta.get('reps', '?')}` (took {meta.get('elapsed', '?')} s)  ",
    f"Load average at start: {meta.get('loadavg_start', '?')}, at end: {meta.get('loadavg_end', '?')}  ",
    "Each cell is the median of the runs, each against a freshly started broker; ratio = boxmq / Mosquitto.",
    "",
    "| case | metric | boxmq | Mosquitto | ratio | better |",
    "| --- | --- | ---: | ---: | ---: | --- |",
    *rows,
    "",
    "<!-- qos:end -->",
]
text = open(out).read()
begin, end = "<!-- qos:begin", "<!-- qos:end -->"
if begin in text and end in text:
    a = text.index(begin)
    b = text.index(end) + len(end)
    text = text[:a] + "\n".join(block) + text[b:]
else:
    text = text.rstrip("\n") + "\n\n" + "\n".join(block) + "\n"
open(out, "w").write(text)
print(f"wrote the qos block of {out}", file=sys.stderr)
PYEOF
