#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine as on a developer's:
# installs what the tests need (when missing, as root or with sudo), runs
# `cargo test`, then Mosquitto's conformance suites against the release
# binary (.ci/conformance.sh) and its 2.0.11 scripts against boxmq.exe under
# Wine (.ci/windows-conformance.sh). CI runs exactly this (.ci/run).
#
#   ./test.sh            everything
#   ./test.sh --no-install   skip the installs (the tests that need a
#                            missing peer say so and skip)
set -euo pipefail
cd "$(dirname "$0")"

install=1
[ "${1:-}" = "--no-install" ] && install=0

SUDO=
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; fi

if [ $install = 1 ]; then
    need_apt=()
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
    command -v mosquitto_pub >/dev/null 2>&1 || need_apt+=(mosquitto-clients)
    # Test certificates for the TLS tests (tests/common/certs.rs).
    command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
    command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
    # Venvs for the Python wheel test (tests/python.rs): Debian splits them out.
    python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
    # Headless browser for the status page test (tests/e2e_http.rs).
    command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
    # Windows x64 builds and tests under Wine (tests/windows.rs,
    # .ci/windows-conformance.sh, pkg/windows/): mingw-w64, Wine, wixl/msiinfo.
    command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || need_apt+=(gcc-mingw-w64-x86-64)
    command -v wine >/dev/null 2>&1 || need_apt+=(wine64)
    command -v wixl >/dev/null 2>&1 || need_apt+=(wixl)
    command -v msiinfo >/dev/null 2>&1 || need_apt+=(msitools)
    command -v zip >/dev/null 2>&1 || need_apt+=(zip)
    # The .NET library on Mono and its NuGet package (tests/dotnet.rs); the
    # cross linkers for the package's native libraries come from
    # .ci/arm-setup.sh below.
    command -v mcs >/dev/null 2>&1 || need_apt+=(mono-mcs)
    command -v mono >/dev/null 2>&1 || need_apt+=(mono-runtime)
    command -v unzip >/dev/null 2>&1 || need_apt+=(unzip)
    if [ ${#need_apt[@]} -gt 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        $SUDO apt-get update -qq
        $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
    fi
    # RabbitMQ (with its MQTT plugin) for tests/e2e_bridge.rs: installed,
    # never started as a service (the tests start their own nodes on free
    # ports).
    if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
        export DEBIAN_FRONTEND=noninteractive
        own_policy=0
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
            $SUDO chmod +x /usr/sbin/policy-rc.d
            own_policy=1
        fi
        $SUDO apt-get update -qq
        $SUDO apt-get install -y -qq rabbitmq-server >/dev/null
        if [ "$own_policy" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
    fi
    if ! python3 -c 'import paho.mqtt, sys; sys.exit(0 if paho.mqtt.__version__.startswith("2.") else 1)' 2>/dev/null; then
        python3 -m pip install -q --disable-pip-version-check 'paho-mqtt>=2,<3' \
            || python3 -m pip install -q --disable-pip-version-check --break-system-packages 'paho-mqtt>=2,<3'
    fi
    # Cross targets, qemu-user and cargo-deb for tests/arm_qemu.rs,
    # tests/package.rs and the .NET package of tests/dotnet.rs (idempotent;
    # says what is missing).
    bash .ci/arm-setup.sh
    rustup target add x86_64-pc-windows-gnu >/dev/null 2>&1 \
        || echo "test.sh: cannot add the x86_64-pc-windows-gnu target (tests/windows.rs will say so)"
fi

cargo test
.ci/conformance.sh
# The same 2.0.11 scripts against boxmq.exe under Wine (a few minutes).
.ci/windows-conformance.sh
