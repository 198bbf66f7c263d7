#!/usr/bin/env bash
# What application hooks cost (issue 29), all in one run, alternating:
#
#   before    boxmq built from REV (default: main), the code before hooks
#   after     this tree's boxmq binary: no hook set (the hot path's check)
#   embedded  benches/hooks_broker --no-hook: the embedding API, events on
#   hooked    benches/hooks_broker: an accept-all on_publish
#
# against the load generator's throughput scenario (QoS 0 and 1, 1 and 16
# publishers). Writes the RESULT lines to benches/hooks-raw.txt (or $RAW)
# and prints a table of medians: delivered msg/s, and the broker's CPU time
# per delivered message (its threads, hook workers included, from
# /proc/PID/stat; the fairer figure on a shared machine, where the broker
# is often not the bottleneck).
#
# usage: benches/hooks.sh [--reps N] [--before-rev REV] [--duration S] [--render-only]
# Needs cargo, git, python3. Listens on 127.0.0.1 only; every broker it
# starts is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

REPS=3
REV=main
D=2
RENDER_ONLY=0
RAW=${RAW:-benches/hooks-raw.txt}
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS="$2"; shift 2 ;;
        --before-rev) REV="$2"; shift 2 ;;
        --duration) D="$2"; shift 2 ;;
        --render-only) RENDER_ONLY=1; shift ;;
        *) echo "usage: $0 [--reps N] [--before-rev REV] [--duration S] [--render-only]" >&2; exit 2 ;;
    esac
done

bench_tmp

if [ "$RENDER_ONLY" = 0 ]; then
echo "== building: $REV (before), this tree, the hooks broker, the load generator" >&2
mkdir -p "$TMP/src" target/before
git archive "$REV" | tar -x -C "$TMP/src"
# git archive keeps the commit's mtimes: make cargo see the sources as new.
find "$TMP/src" -name '*.rs' -exec touch {} +
(cd "$TMP/src" && CARGO_TARGET_DIR="$OLDPWD/target/before" cargo build --release --bin boxmq >&2)
BEFORE=target/before/release/boxmq
build_boxmq
AFTER=target/release/boxmq
HOOKS=$(bench_bin hooks_broker)
LOAD=$(bench_bin load)

pin_cpus

start_broker() {
    PORT=$(free_port)
    case "$1" in
        before | after)
            local bin=$BEFORE
            [ "$1" = after ] && bin=$AFTER
            printf 'listener %s 127.0.0.1\nmax_queued_messages 100000\nlog_type error\npersistence false\nsys_interval 0\n' \
                "$PORT" >"$TMP/boxmq.conf"
            launch_broker "$1" "$bin" -c "$TMP/boxmq.conf"
            ;;
        embedded) launch_broker embedded "$HOOKS" "$PORT" --no-hook ;;
        hooked) launch_broker hooked "$HOOKS" "$PORT" ;;
    esac
}

: >"$RAW"
echo "# before: $REV $(git rev-parse --short "$REV"); after: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' + changes'); $(date -u '+%Y-%m-%d %H:%M UTC')" >>"$RAW"
echo "== running ($REPS reps, ${D} s windows)" >&2
for _ in $(seq "$REPS"); do
    for q in 0 1; do
        for p in 1 16; do
            for broker in before after embedded hooked; do
                start_broker "$broker"
                line=$(load_result 120 throughput "$broker" --publishers "$p" --qos "$q" \
                    --duration "$D" --window 64)
                [ -n "$line" ] || line="RESULT scenario=throughput broker=$broker error=no_result"
                echo "$line" | tee -a "$RAW" >&2
                stop_broker
            done
        done
    done
done
fi

python3 - "$RAW" <<'PY'
import statistics, sys
rate, cpu = {}, {}
for line in open(sys.argv[1]):
    if line.startswith("#"):
        print(line.strip())
        continue
    kv = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
    if "delivered_per_s" not in kv:
        continue
    key = (kv["qos"], kv["publishers"], kv["broker"])
    r = float(kv["delivered_per_s"])
    rate.setdefault(key, []).append(r)
    if r > 0 and "broker_cpu_pct" in kv:
        cpu.setdefault(key, []).append(float(kv["broker_cpu_pct"]) / 100 / r * 1e6)
B = ("before", "after", "embedded", "hooked")
med = lambda d, k: statistics.median(d[k]) if d.get(k) else float("nan")
print()
print("| qos | publishers | " + " | ".join(f"{b} msg/s" for b in B) + " | " + " | ".join(f"{b} CPU us/msg" for b in B) + " |")
print("|---" * (2 + 2 * len(B)) + "|")
for q in ("0", "1"):
    for p in ("1", "16"):
        rs = " | ".join(f"{med(rate, (q, p, b)):,.0f}" for b in B)
        cs = " | ".join(f"{med(cpu, (q, p, b)):.2f}" for b in B)
        print(f"| {q} | {p} | {rs} | {cs} |")
PY
