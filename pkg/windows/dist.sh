#!/usr/bin/env bash
# Builds the Windows x64 release on Linux (Debian's mingw-w64 and wixl):
#
#   target/dist/boxmq-<version>-x86_64-windows.zip   boxmq.exe, boxmq.dll,
#       boxmq.dll.a (import library), boxmq.h, boxmq.conf, README.md, WINDOWS.md
#   target/dist/boxmq-<version>-x86_64-windows.msi   the same, installed to
#       %ProgramFiles%\boxmq, the config to %ProgramData%\boxmq, and the
#       service "boxmq" (pkg/windows/boxmq.wxs)
#
#   pkg/windows/dist.sh          (CARGO_TARGET_DIR and BOXMQ_DIST are honoured)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
TARGET=x86_64-pc-windows-gnu
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DIST=${BOXMQ_DIST:-$ROOT/target/dist}
# BOXMQ_VERSION: another version for the packages (the upgrade test).
VERSION=${BOXMQ_VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)}
NAME=boxmq-$VERSION-x86_64-windows

for tool in x86_64-w64-mingw32-gcc zip wixl msiinfo msibuild; do
    command -v $tool >/dev/null || {
        echo "dist.sh: $tool is missing (Debian: gcc-mingw-w64-x86-64, zip, wixl, msitools)" >&2
        exit 1
    }
done
cargo build --release --quiet --target $TARGET --bin boxmq --target-dir "$TARGET_DIR"
cargo build --profile release-lib --quiet -p boxmq-ffi --target $TARGET --target-dir "$TARGET_DIR"

STAGE=$DIST/$NAME
rm -rf "$STAGE" "$DIST/$NAME.zip" "$DIST/$NAME.msi"
mkdir -p "$STAGE"
cp "$TARGET_DIR/$TARGET/release/boxmq.exe" "$STAGE/"
cp "$TARGET_DIR/$TARGET/release-lib/boxmq.dll" "$STAGE/"
cp "$TARGET_DIR/$TARGET/release-lib/libboxmq.dll.a" "$STAGE/boxmq.dll.a"
cp ffi/include/boxmq.h pkg/windows/boxmq.conf README.md docs/WINDOWS.md "$STAGE/"
# Text files with Windows line ends, for Notepad.
for f in boxmq.conf README.md WINDOWS.md boxmq.h; do
    sed -i 's/\r\?$/\r/' "$STAGE/$f"
done
(cd "$DIST" && zip -q -r "$NAME.zip" "$NAME")
# wixl takes sources relative to where it runs.
(cd "$STAGE" && wixl -a x64 -D Version="$VERSION" -D Dist=. -o "$DIST/$NAME.msi" "$ROOT/pkg/windows/boxmq.wxs")
# The config component: Permanent (16, uninstalling leaves the user's
# config) and NeverOverwrite (128, an upgrade keeps it), which wixl does
# not write itself.
IDT=$(mktemp -d)
msiinfo export "$DIST/$NAME.msi" Component >"$IDT/Component.idt"
awk -F'\t' 'BEGIN { OFS = "\t" } NR > 3 && $1 == "Config" { $4 = $4 + 16 + 128 } { print }' \
    "$IDT/Component.idt" >"$IDT/Component.new"
mv "$IDT/Component.new" "$IDT/Component.idt"
msibuild "$DIST/$NAME.msi" -i "$IDT/Component.idt"
rm -rf "$IDT"
echo "$DIST/$NAME.zip"
echo "$DIST/$NAME.msi"
