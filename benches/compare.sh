#!/usr/bin/env bash
# Compare boxmq with Debian's Mosquitto on this machine, every scenario of
# the load generator (benches/load) against both brokers in the same run,
# each measurement repeated; writes the table of medians and ratios into
# BENCHMARKS.md (between the compare:begin/end markers).
#
# usage: benches/compare.sh [--reps N] [--out FILE] [--quick] [--render-only]
#   --reps N        runs per measurement, median reported (default 3)
#   --out F         file to update (default BENCHMARKS.md)
#   --quick         one run, short windows: checks the script, not the brokers
#   --render-only   no runs: rebuild the table from the raw file of the last run
# The raw runs go to benches/compare-raw.txt (or $RAW) as they finish.
#
# It installs nothing. It needs mosquitto (apt-get install mosquitto),
# python3 (for the table) and cargo. Brokers and load listen and connect on
# 127.0.0.1 only; every broker it starts is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

REPS=3
OUT=BENCHMARKS.md
QUICK=0
RENDER_ONLY=0
RAW=${RAW:-benches/compare-raw.txt}
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --quick) QUICK=1; REPS=1; shift ;;
        --render-only) RENDER_ONLY=1; shift ;;
        *) echo "usage: $0 [--reps N] [--out FILE] [--quick] [--render-only]" >&2; exit 2 ;;
    esac
done

MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
if [ ! -x "$MOSQUITTO" ]; then
    echo "mosquitto not found at $MOSQUITTO." >&2
    echo "Install Debian's broker with: sudo apt-get install mosquitto" >&2
    echo "(or set MOSQUITTO=/path/to/mosquitto)" >&2
    exit 1
fi
command -v python3 >/dev/null || { echo "python3 is needed for the table: sudo apt-get install python3" >&2; exit 1; }

# 10,000 connections need 10,000 descriptors in the broker and the load.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10100 ]; then
    echo "warning: open file limit $(ulimit -n) < 10100; the 10,000-client cases will fail" >&2
fi

echo "== building boxmq (release) and the load generator" >&2
build_boxmq
LOAD=$(bench_bin load)
BOXMQ=target/release/boxmq

# Broker on CPU 0, load on CPU 1, where pinning works.
pin_cpus
bench_tmp

# start_broker NAME: a fresh broker on a free port; sets PORT and BROKER_PID.
start_broker() {
    PORT=$(free_port)
    case "$1" in
        boxmq)
            cat >"$TMP/boxmq.conf" <<EOF
listener $PORT 127.0.0.1
max_connections 12000
max_sessions 12000
max_queued_messages 100000
log_type ${BOXMQ_LOG_TYPE:-error}
persistence false
EOF
            launch_broker boxmq "$BOXMQ" -c "$TMP/boxmq.conf"
            ;;
        mosquitto)
            cat >"$TMP/mosquitto.conf" <<EOF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 100000
max_connections -1
log_dest none
EOF
            launch_broker mosquitto "$MOSQUITTO" -c "$TMP/mosquitto.conf"
            ;;
    esac
    sleep 0.2 # let it settle before RSS is read
}

RESULTS="$RAW"

# run_case CASE SCENARIO ARGS...: each rep runs both brokers, fresh each time.
run_case() {
    local case=$1 scenario=$2
    shift 2
    for rep in $(seq "$REPS"); do
        for broker in boxmq mosquitto; do
            start_broker "$broker"
            local rss0
            rss0=$(awk '/^VmRSS:/ {print $2}' "/proc/$BROKER_PID/status")
            local line
            line=$(load_result 180 "$scenario" "$broker" "$@")
            [ -n "$line" ] || line="RESULT scenario=$scenario broker=$broker error=no_result"
            echo "case=$case rep=$rep rss_fresh_kib=$rss0 $line" >>"$RESULTS"
            echo "  $case rep $rep $broker: ${line#RESULT }" >&2
            stop_broker
        done
    done
}

# meta KEY: the value recorded in the raw file by the run.
meta() { sed -n "s/^# $1: //p" "$RESULTS" | tail -1; }

if [ "$RENDER_ONLY" = 0 ]; then
: >"$RESULTS"
if [ "$QUICK" = 1 ]; then
    D=1; FANIN_D=1; PRESSES=1000
else
    D=2; FANIN_D=3; PRESSES=10000
fi
FANIN_RATE=${FANIN_RATE:-2000}

echo "== running ($REPS reps; $PINNING)" >&2
meta_start
run_case "press" press --presses "$PRESSES" --concurrency 50 --duration 3
# Issue 17: broker CPU per press cycle at the same rate for both brokers,
# boxmq at its default log level (one line per connect and disconnect).
PRESS_RATE=${PRESS_RATE:-5000}
BOXMQ_LOG_TYPE=information run_case "press rate=$PRESS_RATE" press --presses $((PRESS_RATE * 4)) \
    --concurrency 50 --duration 4 --press-rate "$PRESS_RATE"
for n in 1000 5000 10000; do
    for q in 0 1; do
        run_case "fanin clients=$n qos=$q" fanin --clients "$n" --qos "$q" --rate "$FANIN_RATE" --duration "$FANIN_D"
    done
done
for q in 0 1; do
    for p in 1 4 16; do
        run_case "throughput publishers=$p qos=$q" throughput --publishers "$p" --qos "$q" --duration "$D" --window 64
    done
done
for s in 10 100; do
    run_case "fanout subscribers=$s qos=0" fanout --subscribers "$s" --duration "$D"
done
for n in 1000 10000; do
    run_case "idle clients=$n" idle --clients "$n"
done
{
    meta_head
    echo "# quick: $QUICK"
    echo "# pinning: $PINNING"
    meta_stamp
} >>"$RESULTS"
fi
[ -s "$RESULTS" ] || { echo "no runs in $RESULTS" >&2; exit 1; }
ELAPSED=$(meta elapsed)
LOADAVG_START=$(meta loadavg_start)
LOADAVG_END=$(meta loadavg_end)
REPS=$(meta reps)
QUICK=$(meta quick)
PINNING=$(meta pinning)
RUN_DATE=$(meta date)
COMMIT=$(meta commit)

# Static facts.
BOXMQ_SIZE=$(stat -c %s "$BOXMQ")
MOSQ_SIZE=$(stat -c %s "$MOSQUITTO")
MOSQ_LIBS=$(ldd "$MOSQUITTO" | awk '$3 ~ /^\// && $1 !~ /^(libc|libm)\.so/ {print $1}' | tr '\n' ' ' || true)
MACHINE="$(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r)"
MOSQ_VERSION=$(mosquitto_version)
COMMAND="benches/compare.sh --reps $REPS"
if [ "$QUICK" = 1 ]; then COMMAND="benches/compare.sh --quick"; fi


python3 - "$RESULTS" "$OUT" <<PYEOF
import re, statistics, sys, datetime

sys.path.insert(0, "benches")
from lib import read_raw, fmt

results, out = sys.argv[1], sys.argv[2]
runs, _, med = read_raw(results)

def errors(case):
    errs = [kv["error"] for b in ("boxmq", "mosquitto") for kv in runs.get((case, b), []) if "error" in kv]
    return errs

rows = []
def row(case, key, label, better):
    b, m = med(case, "boxmq", key), med(case, "mosquitto", key)
    ratio = (f"{b / m:.2f}" if b / m < 100 else f"{b / m:,.0f}") if b is not None and m not in (None, 0) else "n/a"
    rows.append((case, label, fmt(b), fmt(m), ratio, better))
    return b, m

cases = sorted({c for c, _ in runs}, key=lambda c: list(dict.fromkeys(c for c, _ in runs)).index(c))
for case in cases:
    sc = case.split()[0]
    if sc == "press" and "rate=" in case:
        row(case, "cycles_per_s", "press cycles/s (paced)", "")
        row(case, "broker_cpu_pct", "broker CPU %", "lower")
        row(case, "broker_cpu_us_per_cycle", "broker CPU µs per cycle", "lower")
        row(case, "lost", "lost events", "lower")
    elif sc == "press":
        row(case, "cycles_per_s", "press cycles/s", "higher")
        row(case, "p50_ms", "press-to-dashboard p50 ms", "lower")
        row(case, "p99_ms", "press-to-dashboard p99 ms", "lower")
        row(case, "max_ms", "press-to-dashboard max ms", "lower")
        row(case, "lost", "lost events", "lower")
    elif sc == "fanin":
        row(case, "p50_ms", "latency p50 ms", "lower")
        row(case, "p99_ms", "latency p99 ms", "lower")
        row(case, "max_ms", "latency max ms", "lower")
        row(case, "lost", "lost", "lower")
    elif sc in ("throughput", "fanout"):
        row(case, "delivered_per_s", "delivered msg/s", "higher")
        if "qos=1" in case:
            row(case, "backlog_at_end", "QoS 1 backlog at end (msgs)", "lower")
            row(case, "lost_after_drain", "QoS 1 acked but never delivered", "lower")
        row(case, "broker_cpu_pct", "broker CPU %", "")
        row(case, "load_cpu_pct", "load generator CPU %", "")
    elif sc == "idle":
        row(case, "bytes_per_conn", "RSS per idle connection (B)", "lower")

# Idle RSS of a fresh broker with no clients: every run starts one.
def fresh(broker):
    vals = [float(kv["rss_fresh_kib"]) for (c, b), l in runs.items() if b == broker
            for kv in l if kv.get("rss_fresh_kib", "").isdigit()]
    return statistics.median(vals) if vals else None
fb, fm = fresh("boxmq"), fresh("mosquitto")
rows.append(("no clients", "RSS KiB (fresh broker)", fmt(fb), fmt(fm), f"{fb/fm:.2f}" if fb and fm else "n/a", "lower"))
bs, ms = $BOXMQ_SIZE, $MOSQ_SIZE
rows.append(("binary", "size bytes (stripped)", f"{bs:,}", f"{ms:,} + shared libs", f"{bs/ms:.2f}", "lower"))

# Targets of issue 7.
targets = []
def target(what, ok, detail):
    targets.append((what, "met" if ok else "**missed**", detail))
def ratio(case, key):
    b, m = med(case, "boxmq", key), med(case, "mosquitto", key)
    return (b / m) if b is not None and m else None, b, m
for case in cases:
    sc = case.split()[0]
    if sc in ("throughput", "fanout"):
        r, b, m = ratio(case, "delivered_per_s")
        ok = r is not None and r >= 3
        detail = f"{fmt(r)}x"
        if "qos=1" in case:
            lost = med(case, "boxmq", "lost_after_drain")
            ok = ok and lost == 0
            detail += f", boxmq QoS 1 acked-but-undelivered {fmt(lost)}"
        target(f"{case}: >= 3x Mosquitto", ok, detail)
r, b, m = ratio("press", "cycles_per_s")
target("press cycles/s >= Mosquitto", r is not None and r >= 1, f"{fmt(b)} vs {fmt(m)}")
r, b, m = ratio("press", "p99_ms")
target("press p99 latency < Mosquitto", r is not None and r < 1, f"{fmt(b)} ms vs {fmt(m)} ms")
for n in (5000, 10000):
    for q in (0, 1):
        case = f"fanin clients={n} qos={q}"
        r, b, m = ratio(case, "p99_ms")
        target(f"{case}: p99 < Mosquitto", r is not None and r < 1, f"{fmt(b)} ms vs {fmt(m)} ms")
for n in (1000, 10000):
    case = f"idle clients={n}"
    r, b, m = ratio(case, "bytes_per_conn")
    target(f"{case}: bytes/connection < Mosquitto", r is not None and r < 1, f"{fmt(b)} B vs {fmt(m)} B")
target("RSS with no clients < 2 MiB", fb is not None and fb < 2048, f"{fmt(fb)} KiB")
target("stripped binary < 1 MiB", bs < 1048576, f"{bs:,} B")
# Targets of issue 17.
b = med("idle clients=10000", "boxmq", "bytes_per_conn")
target("issue 17: idle clients=10000: at most 300 B per connection", b is not None and b <= 300, f"{fmt(b)} B")
target("issue 17: stripped default binary at most 800 KiB", bs <= 800 * 1024, f"{bs:,} B ({bs/1024:,.0f} KiB)")
for case in cases:
    if case.startswith("press rate="):
        r, b, m = ratio(case, "broker_cpu_us_per_cycle")
        target(f"issue 17: {case}: broker CPU per cycle at most 50% of Mosquitto's (boxmq at log level info)",
               r is not None and r <= 0.5, f"{fmt(b)} µs vs {fmt(m)} µs ({fmt(r)})")

errs = [(c, e) for c in cases for e in errors(c)]

md = []
md.append("<!-- compare:begin (generated by benches/compare.sh; edits here are overwritten) -->")
md.append("")
md.append("Date: $RUN_DATE  ")
md.append("Machine: $MACHINE  ")
md.append("Command: \`$COMMAND\` (took ${ELAPSED} s of measuring)  ")
md.append("Brokers: boxmq $COMMIT (release) vs Mosquitto ${MOSQ_VERSION:-?} ($MOSQUITTO); $PINNING  ")
md.append("Load average (1/5/15 min) at start: $LOADAVG_START, at end: $LOADAVG_END (anything else running on the machine shows here)  ")
md.append(f"Each cell is the median of $REPS runs, each run against a freshly started broker; ratio = boxmq / Mosquitto.")
md.append("")
md.append("| case | metric | boxmq | Mosquitto | ratio | better |")
md.append("| --- | --- | ---: | ---: | ---: | --- |")
for r in rows:
    md.append("| " + " | ".join(r) + " |")
md.append("")
md.append("Mosquitto's shared libraries (not counted above): $MOSQ_LIBS")
md.append("")
md.append("### Targets (issues 7 and 17)")
md.append("")
md.append("| target | status | measured |")
md.append("| --- | --- | --- |")
for t in targets:
    md.append("| " + " | ".join(t) + " |")
if errs:
    md.append("")
    md.append("Runs that failed: " + "; ".join(f"{c}: {e}" for c, e in errs))
md.append("")
md.append("<!-- compare:end -->")
block = "\n".join(md)

try:
    text = open(out).read()
except FileNotFoundError:
    text = "# Benchmarks\n\n<!-- compare:begin -->\n<!-- compare:end -->\n"
pat = re.compile(r"<!-- compare:begin.*?<!-- compare:end -->", re.S)
text = pat.sub(lambda _: block, text) if pat.search(text) else text + "\n" + block + "\n"
open(out, "w").write(text)
print(block)
PYEOF
echo "== wrote $OUT (raw runs: $RAW)" >&2
