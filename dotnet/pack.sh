#!/usr/bin/env bash
# Builds the BoxMq NuGet package: target/nuget/BoxMq.<version>.nupkg, a zip
# with a .nuspec (docs/DOTNET.md, "The package"):
#
#   lib/net48/BoxMq.dll, lib/net8.0/BoxMq.dll   the managed library (+ .xml docs)
#   runtimes/linux-x64/native/libboxmq.so       x86_64-unknown-linux-gnu
#   runtimes/linux-arm64/native/libboxmq.so     aarch64-unknown-linux-gnu
#   runtimes/win-x64/native/boxmq.dll           x86_64-pc-windows-gnu
#   build/BoxMq.targets                         copies boxmq.dll for .NET Framework projects
#   BoxMq.nuspec, README.md, [Content_Types].xml, _rels/.rels
#
# Needs mcs (Debian: mono-mcs), zip, cargo with the rust targets
# aarch64-unknown-linux-gnu and x86_64-pc-windows-gnu, and the linkers
# aarch64-linux-gnu-gcc (gcc-aarch64-linux-gnu) and x86_64-w64-mingw32-gcc
# (gcc-mingw-w64-x86-64); .ci/arm-setup.sh installs them. CARGO_TARGET_DIR
# is honoured (the package then lands in $CARGO_TARGET_DIR/nuget).
#
#   dotnet/pack.sh
set -euo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-target}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' ffi/Cargo.toml | head -n 1)
[ -n "$version" ] || { echo "pack.sh: no version in ffi/Cargo.toml" >&2; exit 1; }
out=$target/nuget
stage=$out/BoxMq.$version
package=$out/BoxMq.$version.nupkg

say() { echo "pack.sh: $*" >&2; }

# --- native libraries: each target's build, then its file ----------------
native() { # rust target ("" for the host), file name, package runtime id
    local rust_target=$1 file=$2 rid=$3 dir
    if [ -z "$rust_target" ]; then
        dir=$target/release-lib
        cargo build --quiet --profile release-lib -p boxmq-ffi || return 1
    else
        dir=$target/$rust_target/release-lib
        cargo build --quiet --profile release-lib -p boxmq-ffi --target "$rust_target" || return 1
    fi
    mkdir -p "$stage/runtimes/$rid/native" || return 1
    cp "$dir/$file" "$stage/runtimes/$rid/native/$file" || return 1
    say "runtimes/$rid/native/$file from $dir"
}

rm -rf "$stage" "$package"
mkdir -p "$stage"
package=$(cd "$out" && pwd)/BoxMq.$version.nupkg
# Every runtime is tried before failing, so one run says which ones fail.
failed=()
native "" libboxmq.so linux-x64 || failed+=(linux-x64)
native aarch64-unknown-linux-gnu libboxmq.so linux-arm64 || failed+=(linux-arm64)
native x86_64-pc-windows-gnu boxmq.dll win-x64 || failed+=(win-x64)
if [ ${#failed[@]} -gt 0 ]; then
    say "FAILED native builds: ${failed[*]}"
    exit 1
fi

# --- the managed library --------------------------------------------------
# One build for both folders: mcs compiles against Mono's .NET Framework 4.x
# profile (mscorlib, System, System.Core); .NET 8 loads such an assembly
# through its own mscorlib/System facades, and lib/net8.0 spares .NET 8
# projects NuGet's "restored using .NETFramework" warning (NU1701).
mkdir -p "$stage/lib/net48" "$stage/lib/net8.0"
mcs -target:library -langversion:6 -warn:4 -warnaserror+ -optimize+ -nologo \
    -doc:"$stage/lib/net48/BoxMq.xml" -out:"$stage/lib/net48/BoxMq.dll" dotnet/BoxMq/*.cs
cp "$stage/lib/net48/BoxMq.dll" "$stage/lib/net48/BoxMq.xml" "$stage/lib/net8.0/"

# --- metadata -------------------------------------------------------------
mkdir -p "$stage/build" "$stage/_rels"
cp dotnet/BoxMq.targets "$stage/build/BoxMq.targets"
cp docs/DOTNET.md "$stage/README.md"
sed "s/@VERSION@/$version/" dotnet/BoxMq.nuspec >"$stage/BoxMq.nuspec"
cat >"$stage/[Content_Types].xml" <<'EOF'
<?xml version="1.0" encoding="utf-8"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
  <Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml" />
  <Default Extension="nuspec" ContentType="application/octet" />
  <Default Extension="dll" ContentType="application/octet" />
  <Default Extension="so" ContentType="application/octet" />
  <Default Extension="xml" ContentType="application/octet" />
  <Default Extension="targets" ContentType="application/octet" />
  <Default Extension="md" ContentType="application/octet" />
</Types>
EOF
cat >"$stage/_rels/.rels" <<'EOF'
<?xml version="1.0" encoding="utf-8"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
  <Relationship Type="http://schemas.microsoft.com/packaging/2010/07/manifest" Target="/BoxMq.nuspec" Id="R0" />
</Relationships>
EOF

# --- the zip: the nuspec first, as NuGet writes it --------------------------
(cd "$stage" && zip -q -X -D "$package" BoxMq.nuspec && zip -q -X -D -r "$package" . -x BoxMq.nuspec)
rm -rf "$stage"
say "wrote $package"
echo "$package"
