#!/usr/bin/env bash
# Mosquitto 2.0.11's broker scripts (../shared/conformance) against
# boxmq.exe under Wine, on its default config (persistence on, data in
# %ProgramData%\boxmq\data of a fresh Wine prefix): the same runner as
# .ci/conformance.sh on Linux. Fails when a script fails that is not in
# .ci/expected-script-failures (the Linux list, see docs/CONFORMANCE.md). Bounded: about a minute.
#
#   .ci/windows-conformance.sh [CONFORMANCE_DIR]
#
# Needs wine (wine64), x86_64-w64-mingw32-gcc and the Rust target
# x86_64-pc-windows-gnu (./test.sh installs them); without the suites or
# without Wine it says so and exits 0.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CONF=${1:-${BOXMQ_CONFORMANCE:-$ROOT/../shared/conformance}}

# The list both runners share (comments and blank lines skipped).
mapfile -t EXPECTED_SCRIPT_FAILURES < <(grep -v -e '^#' -e '^$' "$ROOT/.ci/expected-script-failures")

if [ ! -x "$CONF/run-mosq-suite.sh" ]; then
    echo "windows conformance: SKIPPED, no suites at $CONF (set BOXMQ_CONFORMANCE)"
    exit 0
fi
if ! command -v wine >/dev/null || ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
    echo "windows conformance: SKIPPED, needs wine and x86_64-w64-mingw32-gcc (./test.sh installs them)"
    exit 0
fi
cargo build --release --quiet --target x86_64-pc-windows-gnu --bin boxmq || exit 1
OUT=$ROOT/target/windows-conformance
rm -rf "$OUT"
mkdir -p "$OUT/bin"
cp target/x86_64-pc-windows-gnu/release/boxmq.exe "$OUT/bin/"
# Wine 8 lacks bcryptprimitives.dll (Windows 10 has it): a test-only stand-in.
x86_64-w64-mingw32-gcc -shared -O2 -o "$OUT/bin/bcryptprimitives.dll" \
    tests/windows/bcryptprimitives.c -ladvapi32 || exit 1
export WINEPREFIX=$OUT/wineprefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
PID=
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; fi
    wineserver -k 2>/dev/null
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
wine "$OUT/bin/boxmq.exe" --listen "127.0.0.1:$PORT" >"$OUT/broker.log" 2>&1 </dev/null &
PID=$!
up=0
for _ in $(seq 600); do
    if grep -q ' listening on ' "$OUT/broker.log" 2>/dev/null \
        && python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1).close()" 2>/dev/null; then
        up=1; break
    fi
    sleep 0.2
done
if [ $up = 0 ]; then
    echo "windows conformance: boxmq.exe did not start; its log:"; cat "$OUT/broker.log"
    exit 1
fi

suite() { # suite LOG_DIR [extra env...]
    local logs=$1; shift
    env MOSQ_LENIENT_CONNACK=1 MOSQ_NO_MSGSEQ=1 "$@" \
        "$CONF/run-mosq-suite.sh" 127.0.0.1 "$PORT" "$CONF/mosquitto-2.0.11" "$logs"
}

status=0
script_line=$(suite "$OUT/scripts" | grep '^mosq-broker')
failed=$(sed -n 's/^mosq-broker[^(]*(\(.*\))$/\1/p' <<<"$script_line" | tr -d ' ' | tr ',' ' ')
unexpected=()
for t in $failed; do
    expected=0
    for e in "${EXPECTED_SCRIPT_FAILURES[@]}"; do [ "$t" = "$e" ] && expected=1; done
    [ $expected = 1 ] && continue
    again=$(suite "$OUT/retry" "MOSQ_ONLY=$t" | grep '^mosq-broker')
    case $again in
        *" 1 passed"*) echo "windows conformance: $t failed once, passed when run again" ;;
        *) unexpected+=("$t") ;;
    esac
done
if [ ${#unexpected[@]} -gt 0 ]; then
    echo "windows conformance: REGRESSION: scripts failing under Wine: ${unexpected[*]}"
    sed -n '/^# per-test results/,$p' "$OUT/scripts"/*.log | grep -v '^PASS\|^SKIP' | head -40
    status=1
fi
echo "windows (Wine) $script_line"
exit $status
