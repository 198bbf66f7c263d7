#!/usr/bin/env bash
# Installs what the ARM cross builds, their qemu-user tests, the Debian
# package tests and the .NET package's native libraries need
# (tests/arm_qemu.rs, tests/package.rs, tests/dotnet.rs), and nothing that
# is already there. Idempotent; quiet when all is in place.
#
#   rustup targets  aarch64-unknown-linux-musl, armv7-unknown-linux-gnueabihf,
#                   aarch64-unknown-linux-gnu (linux-arm64 libboxmq.so),
#                   x86_64-pc-windows-gnu (win-x64 boxmq.dll)
#   Debian          qemu-user (qemu-aarch64, qemu-arm),
#                   gcc-arm-linux-gnueabihf + libc6-dev-armhf-cross (armv7
#                     linker, C compiler for ring's C code, its libc for qemu),
#                   gcc-aarch64-linux-gnu + libc6-dev-arm64-cross (aarch64
#                     glibc linker; also compiles ring's C code for the
#                     aarch64 musl target, see .cargo/config.toml [env]),
#                   gcc-mingw-w64-x86-64 (Windows linker, and its objdump),
#                   mosquitto-clients (the relay tests' peers),
#                   openssl (their TLS test certificates)
#   crates.io       cargo-deb (packages)
#
# Each download is retried. When a component still cannot be installed the
# script says which one on a line starting with "arm-setup: MISSING" and
# exits 1 after trying all the others: under CI=true the tests would fail
# on it anyway, and this says why first. Developers may ignore the exit
# status; without these tools the tests skip with a printed note.
set -uo pipefail

say() { echo "arm-setup: $*"; }
missing=()

# --- rustup targets -------------------------------------------------------
targets=(aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf aarch64-unknown-linux-gnu x86_64-pc-windows-gnu)
if command -v rustup >/dev/null 2>&1; then
    installed=$(rustup target list --installed 2>/dev/null)
    for t in "${targets[@]}"; do
        grep -qx "$t" <<<"$installed" && continue
        ok=0
        for attempt in 1 2 3; do
            if rustup target add "$t" >/dev/null 2>&1; then ok=1; break; fi
            sleep $((attempt * 5))
        done
        if [ $ok = 1 ]; then say "installed rust target $t"; else missing+=("rust target $t (rustup target add $t)"); fi
    done
else
    missing+=("rustup (needed for: rustup target add ${targets[*]})")
fi

# --- Debian packages ------------------------------------------------------
need_apt=()
command -v qemu-aarch64 >/dev/null 2>&1 && command -v qemu-arm >/dev/null 2>&1 || need_apt+=(qemu-user)
command -v arm-linux-gnueabihf-gcc >/dev/null 2>&1 || need_apt+=(gcc-arm-linux-gnueabihf)
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need_apt+=(gcc-aarch64-linux-gnu)
# The C headers ring's C code includes (<string.h>, <stdint.h>); the gcc
# packages above only recommend them.
[ -f /usr/arm-linux-gnueabihf/include/string.h ] || need_apt+=(libc6-dev-armhf-cross)
[ -f /usr/aarch64-linux-gnu/include/string.h ] || need_apt+=(libc6-dev-arm64-cross)
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || need_apt+=(gcc-mingw-w64-x86-64)
command -v mosquitto_pub >/dev/null 2>&1 && command -v mosquitto_sub >/dev/null 2>&1 || need_apt+=(mosquitto-clients)
command -v dpkg-deb >/dev/null 2>&1 || need_apt+=(dpkg)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt_opts=(-o Acquire::Retries=3 -o Acquire::http::Timeout=60 -o Dpkg::Use-Pty=0)
    ok=0
    for attempt in 1 2 3; do
        if apt-get "${apt_opts[@]}" update -qq >/dev/null 2>&1 &&
            apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null 2>&1; then
            ok=1
            break
        fi
        sleep $((attempt * 10))
    done
    if [ $ok = 1 ]; then
        say "installed ${need_apt[*]}"
    else
        missing+=("Debian packages ${need_apt[*]} (apt-get install failed 3 times)")
    fi
fi
# What the tests actually run, checked after the install.
for tool in qemu-aarch64 qemu-arm arm-linux-gnueabihf-gcc aarch64-linux-gnu-gcc x86_64-w64-mingw32-gcc \
    x86_64-w64-mingw32-objdump mosquitto_pub mosquitto_sub dpkg-deb openssl; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
for h in /usr/arm-linux-gnueabihf/include/string.h /usr/aarch64-linux-gnu/include/string.h; do
    [ -f "$h" ] || missing+=("$h (libc6-dev-armhf-cross / libc6-dev-arm64-cross)")
done
[ -d /usr/arm-linux-gnueabihf/lib ] || missing+=("/usr/arm-linux-gnueabihf/lib (libc6-armhf-cross, qemu-arm -L needs it)")

# --- cargo-deb --------------------------------------------------------------
if ! cargo deb --version >/dev/null 2>&1; then
    ok=0
    for attempt in 1 2 3; do
        if CARGO_NET_RETRY=5 cargo install --quiet --locked cargo-deb >/dev/null 2>&1; then ok=1; break; fi
        sleep $((attempt * 10))
    done
    if [ $ok = 1 ]; then say "installed $(cargo deb --version 2>/dev/null | head -1)"; else missing+=("cargo-deb (cargo install --locked cargo-deb)"); fi
fi

if [ ${#missing[@]} -gt 0 ]; then
    for m in "${missing[@]}"; do say "MISSING $m"; done
    say "the ARM and package tests will skip without these, or fail under CI=true"
    exit 1
fi
exit 0
