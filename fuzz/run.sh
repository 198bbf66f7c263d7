#!/usr/bin/env bash
# Runs boxmq's fuzz targets with cargo-fuzz on the nightly toolchain.
#
#   fuzz/run.sh TARGET SECONDS   one target (codec, topic, core, store, http, ws, tls or x509)
#   fuzz/run.sh all SECONDS      every target in turn (2 cores: one at a time)
#
# Installs cargo-fuzz when missing. Extra arguments after SECONDS go to
# libFuzzer (e.g. -jobs=2). New interesting inputs land in
# fuzz/corpus/TARGET/, crashes in fuzz/artifacts/TARGET/. Each run's
# log is kept in fuzz/logs/TARGET.log; the last libFuzzer stat line (the
# "#N DONE" line: N executions) is printed at the end.
set -euo pipefail
cd "$(dirname "$0")"

usage() { echo "usage: $0 {codec|topic|core|store|http|ws|tls|x509|all} SECONDS [libFuzzer args...]" >&2; exit 2; }
[ $# -ge 2 ] || usage
target=$1; seconds=$2; shift 2
case $seconds in ''|*[!0-9]*) usage ;; esac

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "cargo-fuzz needs a nightly toolchain: rustup toolchain install nightly" >&2
    exit 1
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

case $target in
    all) targets=(codec topic core store http ws tls x509) ;;
    codec|topic|core|store|http|ws|tls|x509) targets=("$target") ;;
    *) usage ;;
esac

mkdir -p logs
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "== $t: ${seconds}s"
    if cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$seconds" -print_final_stats=1 "$@" \
        >"logs/$t.log" 2>&1; then
        grep -E '^#[0-9]+[[:space:]]+DONE' "logs/$t.log" | tail -n 1 || true
    else
        status=1
        echo "!! $t failed; see fuzz/logs/$t.log and fuzz/artifacts/$t/" >&2
        grep -E 'panicked|ERROR' "logs/$t.log" | head -n 5 >&2 || true
    fi
done
exit $status
