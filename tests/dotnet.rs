//! The .NET library (`dotnet/`), its example and its NuGet package, on
//! Mono, under the root's `cargo test`.
//!
//! * `dotnet/BoxMq/NativeMethods.cs` declares exactly the functions of
//!   `ffi/include/boxmq.h`, and the assembly's version is the crate's;
//! * a nested `cargo build --profile release-lib -p boxmq-ffi` in
//!   `target/dotnet` gives `target/dotnet/release-lib/libboxmq.so`;
//!   `mcs` compiles `dotnet/BoxMq/*.cs` into `BoxMq.dll` and the test
//!   program `dotnet/tests/Tests.cs`, which runs on `mono` against that
//!   library (lifecycle, a press from `mosquitto_pub`, in-process both
//!   ways, callback threads, a port in use, hooks against `mosquitto_pub`
//!   and `mosquitto_sub`, events, 1,000 create/start/dispose cycles
//!   measured for native memory, fds and threads);
//! * the dashboard and the hooks example of `docs/DOTNET.md` compile;
//! * `examples/dotnet/` is built and run: a press from `mosquitto_pub`
//!   reaches its `MessageReceived` event;
//! * `dotnet/pack.sh` builds the package (with the aarch64 and Windows
//!   cross builds) and every entry of the `.nupkg` is checked: the managed
//!   DLL's P/Invokes (read by `dotnet/tests/Inspect.cs`) are all exported
//!   by each native library (`nm -D`, `x86_64-w64-mingw32-objdump -p`),
//!   and `ffi/tests/abi.c`, cross-built against the arm64 library, passes
//!   under `qemu-aarch64`.
//!
//! Needs `mcs`/`mono` (Debian: mono-mcs, mono-runtime), `mosquitto_pub`
//! and `mosquitto_sub`, and for the package `zip`, `unzip`,
//! `gcc-aarch64-linux-gnu`, `qemu-user`, `gcc-mingw-w64-x86-64` (for its objdump too)
//! and the rust targets `.ci/arm-setup.sh` installs; a missing one fails
//! the test, naming what to install.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

mod nested_cargo;
use nested_cargo::{
    cargo, manifest_dir, read, require, run_bounded, target_dir, without_outer_build,
};

/// The nested release-lib build (the boxmq crate and the ffi crate).
const BUILD_LIMIT: Duration = Duration::from_secs(900);
/// The C# test program, 1,000 cycles included (about 5 s here).
const RUN_LIMIT: Duration = Duration::from_secs(300);
const WAIT: Duration = Duration::from_secs(10);
const TOPIC: &str = "shellies/shellybutton1-A4CF12F45A10/input_event/0";

/// `version = "..."` of `ffi/Cargo.toml`.
fn crate_version() -> String {
    read("ffi/Cargo.toml")
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("a version in ffi/Cargo.toml")
        .to_owned()
}

/// The names `boxmq_...(` that a text calls or declares.
fn function_names(text: &str, marker: &str) -> BTreeSet<String> {
    text.match_indices(marker)
        .filter_map(|(at, _)| {
            let tail = &text[at + marker.len() - "boxmq_".len()..];
            let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
            tail[end..].starts_with('(').then(|| tail[..end].to_owned())
        })
        .collect()
}

/// The functions `dotnet/BoxMq/NativeMethods.cs` declares `extern`.
fn declared_in_csharp() -> BTreeSet<String> {
    let source = read("dotnet/BoxMq/NativeMethods.cs");
    [
        "extern IntPtr boxmq_",
        "extern int boxmq_",
        "extern void boxmq_",
        "extern long boxmq_",
    ]
    .iter()
    .flat_map(|marker| function_names(&source, marker))
    .collect()
}

#[test]
fn the_pinvoke_declarations_follow_the_header() {
    let header = read("ffi/include/boxmq.h");
    // Declarations in the header: a return type, then the name.
    let declared: BTreeSet<String> = header
        .lines()
        .filter(|l| !l.trim_start().starts_with(['*', '/']) && !l.contains("typedef"))
        .flat_map(|l| {
            function_names(l, " boxmq_")
                .into_iter()
                .chain(function_names(l, "*boxmq_"))
        })
        .collect();
    let csharp = declared_in_csharp();
    assert!(
        declared.len() >= 20,
        "too few functions in the header: {declared:?}"
    );
    // Not needed in .NET: BrokerState's names are the same strings.
    let declared: BTreeSet<String> = declared
        .into_iter()
        .filter(|f| f != "boxmq_state_name")
        .collect();
    assert_eq!(
        declared, csharp,
        "functions of boxmq.h (left) and the DllImports of dotnet/BoxMq/NativeMethods.cs (right)"
    );
}

#[test]
fn the_assembly_version_is_the_crate_version() {
    let info = read("dotnet/BoxMq/AssemblyInfo.cs");
    let version = crate_version();
    assert!(
        info.contains(&format!("AssemblyInformationalVersion(\"{version}\")")),
        "dotnet/BoxMq/AssemblyInfo.cs does not say {version}"
    );
    assert!(info.contains(&format!("AssemblyVersion(\"{version}.0\")")));
}

/// `target/dotnet/release-lib`, holding `libboxmq.so` (built once).
fn native_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = target_dir("dotnet");
        let (status, out) = run_bounded(
            cargo()
                .args(["build", "--profile", "release-lib", "-p", "boxmq-ffi"])
                .arg("--target-dir")
                .arg(&dir),
            BUILD_LIMIT,
            "dotnet native build",
            &dir,
        );
        assert!(status.success(), "cargo build -p boxmq-ffi failed:\n{out}");
        let lib = dir.join("release-lib");
        assert!(
            lib.join("libboxmq.so").exists(),
            "no libboxmq.so in {}",
            lib.display()
        );
        lib
    })
}

/// `target/dotnet/mono`, where the C# programs are compiled to.
fn mono_dir() -> PathBuf {
    target_dir("dotnet").join("mono")
}

/// Compiles with `mcs` (C# 6, warnings are errors) into `target/dotnet/mono`.
fn mcs(out: &str, args: &[&str], sources: &[PathBuf]) -> PathBuf {
    require("mcs", "mono-mcs");
    let dir = mono_dir();
    fs::create_dir_all(&dir).expect("create target/dotnet/mono");
    let exe = dir.join(out);
    let result = Command::new("mcs")
        .args(["-langversion:6", "-warn:4", "-warnaserror+", "-nologo"])
        .args(args)
        .arg(format!("-out:{}", exe.display()))
        .args(sources)
        .output()
        .expect("run mcs");
    assert!(
        result.status.success(),
        "mcs {out} failed:\n{}{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    exe
}

/// The `.cs` files of a directory.
fn sources(rel: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(manifest_dir().join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cs"))
        .collect();
    files.sort();
    files
}

/// `BoxMq.dll`, compiled once.
fn managed() -> &'static Path {
    static DLL: OnceLock<PathBuf> = OnceLock::new();
    DLL.get_or_init(|| {
        let doc = format!("-doc:{}", mono_dir().join("BoxMq.xml").display());
        mcs(
            "BoxMq.dll",
            &["-target:library", &doc],
            &sources("dotnet/BoxMq"),
        )
    })
}

fn reference() -> String {
    format!("-r:{}", managed().display())
}

/// `mono program args`, finding libboxmq.so on LD_LIBRARY_PATH.
fn mono(program: &Path) -> Command {
    require("mono", "mono-runtime");
    let mut cmd = Command::new("mono");
    cmd.arg(program)
        .env("LD_LIBRARY_PATH", native_dir())
        .current_dir(mono_dir());
    cmd
}

#[test]
fn the_managed_library_passes_its_tests_on_mono() {
    require("mosquitto_pub", "mosquitto-clients");
    require("mosquitto_sub", "mosquitto-clients");
    native_dir();
    let exe = mcs(
        "BoxMqTests.exe",
        &[&reference(), "-r:System.Core.dll"],
        &[manifest_dir().join("dotnet/tests/Tests.cs")],
    );
    let log_dir = target_dir("dotnet");
    let (status, out) = run_bounded(mono(&exe).arg("1000"), RUN_LIMIT, "dotnet tests", &log_dir);
    println!("{out}");
    assert!(status.success(), "the C# tests failed:\n{out}");
    let summary = out
        .lines()
        .find(|l| l.ends_with(" failed"))
        .unwrap_or_else(|| panic!("no summary line:\n{out}"));
    let passed: usize = summary
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(summary.ends_with(", 0 failed") && passed >= 15, "{summary}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("measure: ")).count(),
        3,
        "{out}"
    );
}

/// Kills the child if the test fails half-way.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_dotnet_button_dashboard_prints_presses_from_mosquitto_pub() {
    require("mosquitto_pub", "mosquitto-clients");
    native_dir();
    let exe = mcs(
        "ButtonDashboard.exe",
        &[&reference()],
        &sources("examples/dotnet"),
    );
    let mut child = Reap(
        mono(&exe)
            .args(["0", "127.0.0.1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the C# example"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = || {
        lines
            .recv_timeout(WAIT)
            .expect("a line from the C# example")
    };

    assert_eq!(next(), "state: Init");
    assert_eq!(next(), "state: Running");
    let listening = next();
    let port = listening
        .strip_prefix("listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected line {listening:?}"))
        .to_owned();
    assert_ne!(port, "0", "the real port");
    assert_eq!(next(), "waiting for presses on shellies/+/input_event/0");

    let press = |payload: &str| {
        let status = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-q",
                "1",
                "-t",
                TOPIC,
                "-m",
                payload,
            ])
            .status()
            .expect("mosquitto_pub");
        assert!(status.success());
    };
    press(r#"{"event":"S","event_cnt":3}"#);
    assert_eq!(
        next(),
        "shellybutton1-A4CF12F45A10: short press (S), count 3"
    );
    press(r#"{ "event_cnt" : 7 , "event" : "SS" }"#);
    assert_eq!(
        next(),
        "shellybutton1-A4CF12F45A10: double press (SS), count 7"
    );
    press("not json");
    assert_eq!(next(), format!("{TOPIC}: unreadable event \"not json\""));

    // Enter stops it.
    let mut stdin = child.0.stdin.take().expect("stdin");
    stdin.write_all(b"\n").expect("press Enter");
    drop(stdin);
    assert_eq!(next(), "state: Stopped");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the C# example did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The first csharp block of docs/DOTNET.md after a heading.
fn dotnet_md_block(heading: &str) -> String {
    let doc = read("docs/DOTNET.md");
    let start = doc
        .find(heading)
        .and_then(|at| {
            doc[at..]
                .find("```csharp\n")
                .map(|b| at + b + "```csharp\n".len())
        })
        .unwrap_or_else(|| panic!("a csharp block after {heading} in docs/DOTNET.md"));
    let end = start + doc[start..].find("```").expect("the block's end");
    doc[start..end].to_owned()
}

#[test]
fn the_hooks_example_of_dotnet_md_compiles() {
    let block = dotnet_md_block("## Hooks and events");
    let code = format!(
        "using System;\nusing System.Collections.Generic;\nusing System.Text;\n\
         using System.Threading;\nusing BoxMq;\n\
         internal static class HooksExample\n{{\n    private static void Main()\n    {{\n{block}    }}\n}}\n"
    );
    let dir = mono_dir();
    fs::create_dir_all(&dir).expect("create target/dotnet/mono");
    let source = dir.join("HooksExample.cs");
    fs::write(&source, code).expect("write HooksExample.cs");
    mcs("HooksExample.exe", &[&reference()], &[source]);
}

#[test]
fn the_dashboard_of_dotnet_md_compiles() {
    let code = &dotnet_md_block("## The dashboard in 20 lines");
    assert!(code.lines().count() <= 20, "more than 20 lines:\n{code}");
    let dir = mono_dir();
    fs::create_dir_all(&dir).expect("create target/dotnet/mono");
    let source = dir.join("Dashboard.cs");
    fs::write(&source, code).expect("write Dashboard.cs");
    mcs("Dashboard.exe", &[&reference()], &[source]);
}

/// What the package must hold, and nothing else.
const ENTRIES: &[&str] = &[
    "BoxMq.nuspec",
    "README.md",
    "[Content_Types].xml",
    "_rels/.rels",
    "build/BoxMq.targets",
    "lib/net48/BoxMq.dll",
    "lib/net48/BoxMq.xml",
    "lib/net8.0/BoxMq.dll",
    "lib/net8.0/BoxMq.xml",
    "runtimes/linux-arm64/native/libboxmq.so",
    "runtimes/linux-x64/native/libboxmq.so",
    "runtimes/win-x64/native/boxmq.dll",
];

/// Assemblies .NET 8 has facades for, as .NET Framework has them.
const REFERENCES: &[&str] = &["mscorlib", "System", "System.Core"];

fn output(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The functions an ELF shared library exports.
fn elf_exports(lib: &Path) -> BTreeSet<String> {
    output(
        Command::new("nm").args(["-D", "--defined-only"]).arg(lib),
        "nm -D",
    )
    .lines()
    .filter_map(|l| {
        let mut parts = l.split_whitespace();
        let (_, kind, name) = (parts.next()?, parts.next()?, parts.next()?);
        (kind == "T").then(|| name.to_owned())
    })
    .collect()
}

/// The functions a PE DLL exports (its export name table).
fn pe_exports(dll: &Path) -> BTreeSet<String> {
    let dump = output(
        Command::new("x86_64-w64-mingw32-objdump")
            .arg("-p")
            .arg(dll),
        "objdump -p",
    );
    let table = dump
        .split("[Ordinal/Name Pointer] Table")
        .nth(1)
        .unwrap_or_else(|| panic!("no export table in {}", dll.display()));
    table
        .lines()
        .skip(1)
        .map_while(|l| {
            let (_, name) = l.trim().split_once("] ")?;
            Some(name.trim().to_owned())
        })
        .collect()
}

/// The machine an ELF or PE file is for: "x86_64", "aarch64", "pe-x86_64".
fn machine(file: &[u8]) -> &'static str {
    if file.starts_with(b"\x7fELF") && file.len() > 20 {
        return match u16::from_le_bytes([file[18], file[19]]) {
            0x3e => "x86_64",
            0xb7 => "aarch64",
            _ => "other ELF",
        };
    }
    if file.starts_with(b"MZ") && file.len() > 0x40 {
        let at = u32::from_le_bytes([file[0x3c], file[0x3d], file[0x3e], file[0x3f]]) as usize;
        if file.get(at..at + 4) == Some(b"PE\0\0") && file.len() > at + 6 {
            return match u16::from_le_bytes([file[at + 4], file[at + 5]]) {
                0x8664 => "pe-x86_64",
                _ => "other PE",
            };
        }
    }
    "unknown"
}

#[test]
fn the_nuget_package_holds_every_runtime_and_only_exported_pinvokes() {
    for (tool, package) in [
        ("zip", "zip"),
        ("unzip", "unzip"),
        ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
        ("x86_64-w64-mingw32-gcc", "gcc-mingw-w64-x86-64"),
        ("x86_64-w64-mingw32-objdump", "binutils-mingw-w64-x86-64"),
        ("nm", "binutils"),
        ("qemu-aarch64", "qemu-user"),
    ] {
        require(tool, package);
    }
    native_dir(); // the linux-x64 build, shared with the other tests
    let dir = target_dir("dotnet");
    let mut pack = Command::new(manifest_dir().join("dotnet/pack.sh"));
    without_outer_build(&mut pack).env("CARGO_TARGET_DIR", &dir);
    let (status, out) = run_bounded(&mut pack, BUILD_LIMIT, "dotnet pack", &dir);
    assert!(status.success(), "dotnet/pack.sh failed:\n{out}");
    let version = crate_version();
    let package = dir.join("nuget").join(format!("BoxMq.{version}.nupkg"));
    assert!(package.exists(), "no {}", package.display());

    // Every entry, in order: the nuspec first, no directories.
    let listing = output(Command::new("unzip").arg("-Z1").arg(&package), "unzip -Z1");
    let entries: Vec<&str> = listing.lines().collect();
    assert_eq!(entries.first(), Some(&"BoxMq.nuspec"), "{entries:?}");
    let got: BTreeSet<&str> = entries.iter().copied().collect();
    let want: BTreeSet<&str> = ENTRIES.iter().copied().collect();
    assert_eq!(got, want, "entries of {}", package.display());
    assert_eq!(got.len(), entries.len(), "an entry twice: {entries:?}");

    let open = dir.join("nuget").join("opened");
    let _ = fs::remove_dir_all(&open);
    output(
        Command::new("unzip")
            .arg("-q")
            .arg(&package)
            .arg("-d")
            .arg(&open),
        "unzip",
    );
    let file = |rel: &str| fs::read(open.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));

    let nuspec = String::from_utf8(file("BoxMq.nuspec")).expect("UTF-8 nuspec");
    for needle in [
        "<id>BoxMq</id>".to_owned(),
        format!("<version>{version}</version>"),
        "<readme>README.md</readme>".to_owned(),
        "targetFramework=\".NETFramework4.8\"".to_owned(),
        "targetFramework=\"net8.0\"".to_owned(),
    ] {
        assert!(
            nuspec.contains(&needle),
            "the nuspec lacks {needle}:\n{nuspec}"
        );
    }
    let targets = String::from_utf8(file("build/BoxMq.targets")).expect("UTF-8 targets");
    assert!(
        targets.contains(r"$(MSBuildThisFileDirectory)..\runtimes\win-x64\native\boxmq.dll")
            && targets.contains("'$(TargetFrameworkIdentifier)' == '.NETFramework'"),
        "build/BoxMq.targets copies the package's boxmq.dll for .NET Framework:\n{targets}"
    );
    assert_eq!(
        file("README.md"),
        fs::read(manifest_dir().join("docs/DOTNET.md")).expect("docs/DOTNET.md")
    );

    // The native libraries: the right machine, and what each exports.
    let natives = [
        ("runtimes/linux-x64/native/libboxmq.so", "x86_64"),
        ("runtimes/linux-arm64/native/libboxmq.so", "aarch64"),
        ("runtimes/win-x64/native/boxmq.dll", "pe-x86_64"),
    ];
    let mut exports = Vec::new();
    for (rel, arch) in natives {
        assert_eq!(machine(&file(rel)), arch, "{rel}");
        let names = if arch.starts_with("pe") {
            pe_exports(&open.join(rel))
        } else {
            elf_exports(&open.join(rel))
        };
        assert!(
            names.contains("boxmq_broker_new"),
            "{rel} exports {names:?}"
        );
        exports.push((rel, names));
    }

    // The arm64 library works: the C ABI's own test program, cross-built
    // against it, passes under qemu-user.
    let abi = open.join("abi-arm64");
    let arm64 = open.join("runtimes/linux-arm64/native");
    output(
        Command::new("aarch64-linux-gnu-gcc")
            .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"])
            .args(["-D_POSIX_C_SOURCE=200809L", "-I"])
            .arg(manifest_dir().join("ffi/include"))
            .arg(manifest_dir().join("ffi/tests/abi.c"))
            .arg("-L")
            .arg(&arm64)
            .arg(format!("-Wl,-rpath,{}", arm64.display()))
            .args(["-lboxmq", "-lpthread", "-o"])
            .arg(&abi),
        "aarch64-linux-gnu-gcc abi.c",
    );
    let run = output(
        Command::new("qemu-aarch64")
            .args(["-L", "/usr/aarch64-linux-gnu"])
            .arg(&abi),
        "abi.c on the arm64 library under qemu-aarch64",
    );
    assert!(run.contains(" passed, 0 failed"), "{run}");

    // The managed library: one build in both folders; its P/Invokes.
    assert_eq!(file("lib/net48/BoxMq.dll"), file("lib/net8.0/BoxMq.dll"));
    let inspect = mcs(
        "Inspect.exe",
        &["-r:System.Core.dll"],
        &[manifest_dir().join("dotnet/tests/Inspect.cs")],
    );
    let report = output(
        mono(&inspect).arg(open.join("lib/net48/BoxMq.dll")),
        "Inspect.exe",
    );
    println!("{report}");
    assert!(
        report.lines().any(|l| l == format!("version {version}")),
        "{report}"
    );
    for r in report.lines().filter_map(|l| l.strip_prefix("reference ")) {
        let name = r.split(' ').next().unwrap_or_default();
        assert!(REFERENCES.contains(&name), "BoxMq.dll references {r}");
    }
    let pinvokes: Vec<(&str, &str)> = report
        .lines()
        .filter_map(|l| l.strip_prefix("pinvoke ")?.split_once(' '))
        .collect();
    // The compiled DLL has what the source declares.
    let compiled: BTreeSet<String> = pinvokes.iter().map(|(_, e)| (*e).to_owned()).collect();
    assert_eq!(
        compiled,
        declared_in_csharp(),
        "P/Invokes of BoxMq.dll (left) and NativeMethods.cs"
    );
    for (lib, entry) in &pinvokes {
        assert_eq!(*lib, "boxmq", "the library of {entry}");
        for (rel, names) in &exports {
            assert!(names.contains(*entry), "{rel} does not export {entry}");
        }
    }
}
