//! The Debian packages (docs/GATEWAY.md): `pkg/boxmq.conf` parses, the
//! unit is hardened and sized for the config, and `cargo deb` builds the
//! amd64, arm64 and armhf packages with the right fields and files, checked
//! with `dpkg-deb` and unpacked into a temporary root with `dpkg -x` (never
//! installed). The packaged binary is an ELF for the package's
//! architecture, runs (natively, or under qemu-user for ARM) and has the
//! default features: a config with a WebSockets listener, the HTTP status
//! listener and a TLS listener gets as far as opening the certificate.
//!
//! The ARM packages are built from `target/arm-qemu`, where
//! `tests/arm_qemu.rs` (which runs first) has already built the same
//! `release-small` binaries for its relay tests under qemu: `cargo deb`
//! then only packages them. Run alone, this test builds them itself.
//!
//! Without cargo-deb or dpkg-deb (or, for ARM, the rustup targets, the
//! cross gcc and qemu-user) the package tests print a note and pass, except
//! under `CI=true` (`.ci/arm-setup.sh` installs them all).

use std::fs::{self, File};
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use boxmq::Config;

#[allow(dead_code)] // the shell-like environment and the tool checks only
mod nested_cargo;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn unit() -> String {
    fs::read_to_string(root().join("pkg/boxmq.service")).unwrap()
}

/// The values of `key=` lines of a unit file.
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .map(str::to_owned)
        .collect()
}

#[test]
fn default_config_parses_and_listens_on_loopback_only() {
    let config = Config::from_file(&root().join("pkg/boxmq.conf")).unwrap();
    let expected: SocketAddr = "127.0.0.1:1883".parse().unwrap();
    assert_eq!(config.effective_listeners(), vec![expected]);
    assert!(config.allow_anonymous);
    // State in the unit's StateDirectory.
    assert!(config.persistence.is_on(true));
    assert_eq!(config.persistence.dir(), PathBuf::from("/var/lib/boxmq"));
    // The commented limits are the defaults: uncommenting changes nothing.
    let text = fs::read_to_string(root().join("pkg/boxmq.conf")).unwrap();
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest)
                if rest.starts_with("max_")
                    || rest.starts_with("connect_")
                    || rest.starts_with("stuck_") =>
            {
                rest
            }
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let same = Config::parse(&uncommented, "uncommented").unwrap();
    assert_eq!(same.limits, config.limits);
    assert_eq!(same.limits, boxmq::Limits::default());
}

#[test]
fn unit_is_hardened_and_has_enough_file_descriptors() {
    let unit = unit();
    assert_eq!(
        unit_values(&unit, "ExecStart"),
        ["/usr/bin/boxmq --config /etc/boxmq/boxmq.conf"]
    );
    // SIGHUP re-reads the password and ACL files.
    assert_eq!(
        unit_values(&unit, "ExecReload"),
        ["/bin/kill -HUP $MAINPID"]
    );
    for (key, value) in [
        ("DynamicUser", "yes"),
        ("StateDirectory", "boxmq"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("Restart", "on-failure"),
        ("RestartPreventExitStatus", "2"),
        ("WantedBy", "multi-user.target"),
    ] {
        assert_eq!(unit_values(&unit, key), [value], "{key}");
    }
    // max_connections + listeners + spare (src/rlimit.rs) for the default
    // config, with room to raise max_connections.
    let config = Config::from_file(&root().join("pkg/boxmq.conf")).unwrap();
    let needed = config.limits.max_connections + config.effective_listeners().len() + 32;
    let nofile: Vec<usize> = unit_values(&unit, "LimitNOFILE")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(nofile.len(), 1);
    assert!(
        nofile[0] >= 2 * needed,
        "LimitNOFILE {nofile:?} < 2 × {needed}"
    );
}

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// True when `test` can run: cargo-deb, dpkg-deb and `tools`, and the
/// rustup `target` if any. Otherwise prints a note and returns false, or
/// panics under `CI=true`.
fn have_tools(test: &str, target: Option<&str>, tools: &[&str]) -> bool {
    let mut missing = Vec::new();
    let have_deb = Command::new(cargo())
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_deb {
        missing.push("cargo-deb".to_owned());
    }
    if !have("dpkg-deb", "--version") {
        missing.push("dpkg-deb".to_owned());
    }
    for tool in tools {
        if !have(tool, "--version") {
            missing.push((*tool).to_owned());
        }
    }
    if let Some(target) = target
        && !nested_cargo::rust_target_installed(target)
    {
        missing.push(format!("rust target {target}"));
    }
    nested_cargo::tools_or_skip(test, &missing)
}

/// `cargo deb --fast [--target T] [--variant V]` with `target_dir` as the
/// target dir, into a fresh `out_dir`; returns the one `.deb` it wrote.
fn build_deb(
    target_dir: &Path,
    out_dir: &Path,
    target: Option<&str>,
    variant: Option<&str>,
) -> PathBuf {
    let _ = fs::remove_dir_all(out_dir);
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root())
        .args(["deb", "--fast", "-o"])
        .arg(out_dir);
    if let Some(target) = target {
        cmd.args(["--target", target]);
    }
    if let Some(variant) = variant {
        cmd.args(["--variant", variant]);
    }
    // As tests/arm_qemu.rs runs cargo, so that both see the same build in
    // target/arm-qemu, and so does `cargo deb` typed in a shell.
    nested_cargo::without_outer_build(nested_cargo::as_from_a_shell(&mut cmd))
        .env("CARGO_TARGET_DIR", target_dir);
    let start = Instant::now();
    let output = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    println!(
        "cargo deb {}: {:.1} s",
        target.unwrap_or("(host)"),
        start.elapsed().as_secs_f64()
    );
    assert!(start.elapsed() < Duration::from_secs(900));
    let debs: Vec<PathBuf> = fs::read_dir(out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    debs[0].clone()
}

/// What every package must be, whatever its architecture: the name,
/// version and Architecture fields, the files and their modes, the
/// conffile, the systemd scripts, and, unpacked with `dpkg -x` under
/// `out_dir`, the packaged config and unit as in `pkg/`. Returns the
/// `Depends` field and the unpacked tree.
fn check_deb(deb: &Path, arch: &str, out_dir: &Path) -> (String, PathBuf) {
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        deb.file_name().unwrap().to_string_lossy(),
        format!("boxmq_{version}-1_{arch}.deb")
    );

    let field = |name: &str| run(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name));
    assert_eq!(field("Package").trim(), "boxmq");
    assert_eq!(field("Architecture").trim(), arch);
    assert_eq!(field("Version").trim(), format!("{version}-1"));
    let depends = field("Depends").trim().to_owned();
    assert!(!depends.contains(':'), "Depends names an arch: {depends}");
    let info = run(Command::new("dpkg-deb").arg("--info").arg(deb));
    assert!(info.contains(" conffiles"), "{info}");

    let contents = run(Command::new("dpkg-deb").arg("--contents").arg(deb));
    for path in [
        "./usr/bin/boxmq",
        "./etc/boxmq/boxmq.conf",
        "./usr/lib/systemd/system/boxmq.service",
        "./usr/share/doc/boxmq/GATEWAY.md",
    ] {
        assert!(
            contents.lines().any(|l| l.ends_with(path)),
            "{path} not in:\n{contents}"
        );
    }
    assert!(
        contents
            .lines()
            .any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with("./usr/bin/boxmq"))
    );

    // Control files: conffile, systemd scripts.
    let control = out_dir.join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(deb).arg(&control));
    let conffiles = fs::read_to_string(control.join("conffiles")).unwrap();
    assert_eq!(conffiles.trim(), "/etc/boxmq/boxmq.conf");
    let postinst = fs::read_to_string(control.join("postinst")).unwrap();
    assert!(postinst.contains("deb-systemd-helper enable boxmq.service"));
    let prerm = fs::read_to_string(control.join("prerm")).unwrap();
    assert!(prerm.contains("stop boxmq.service"));

    // Unpacked into a temporary root, not installed.
    let tree = out_dir.join("root");
    run(Command::new("dpkg").arg("-x").arg(deb).arg(&tree));
    let packaged_conf = tree.join("etc/boxmq/boxmq.conf");
    assert_eq!(
        fs::read(&packaged_conf).unwrap(),
        fs::read(root().join("pkg/boxmq.conf")).unwrap()
    );
    Config::from_file(&packaged_conf).unwrap();
    assert_eq!(
        fs::read_to_string(tree.join("usr/lib/systemd/system/boxmq.service")).unwrap(),
        unit()
    );
    (depends, tree)
}

/// The ELF header of `bin`: (class: 1 for 32-bit, 2 for 64-bit; e_machine;
/// e_flags), after checking the magic and little endianness.
fn elf_header(bin: &Path) -> (u8, u16, u32) {
    let mut h = [0u8; 52];
    File::open(bin)
        .and_then(|mut f| f.read_exact(&mut h))
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    assert!(h.starts_with(b"\x7fELF"), "{} is not an ELF", bin.display());
    assert_eq!(h[5], 1, "{}: not little endian", bin.display());
    let class = h[4];
    let machine = u16::from_le_bytes([h[18], h[19]]);
    // e_flags follows e_entry, e_phoff and e_shoff: 4 or 8 bytes each.
    let at = if class == 1 { 36 } else { 48 };
    let flags = u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    (class, machine, flags)
}

/// True when `bin` (64-bit ELF) has a PT_INTERP program header, i.e. needs
/// a dynamic loader.
fn elf64_has_interpreter(bin: &Path) -> bool {
    let data = fs::read(bin).unwrap();
    let u16_at = |at: usize| u16::from_le_bytes([data[at], data[at + 1]]) as usize;
    let mut phoff = [0u8; 8];
    phoff.copy_from_slice(&data[32..40]);
    let phoff = u64::from_le_bytes(phoff) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    (0..phnum).any(|i| {
        let at = phoff + i * phentsize;
        // p_type 3: PT_INTERP
        data[at..at + 4] == 3u32.to_le_bytes()
    })
}

/// The highest `GLIBC_2.N` symbol version named in `bin` (its version
/// needs are among those strings), as N.
fn highest_glibc_minor(bin: &Path) -> u32 {
    let data = fs::read(bin).unwrap();
    let needle = b"GLIBC_2.";
    data.windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .filter_map(|(at, _)| {
            let digits: String = data[at + needle.len()..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .map(|&b| b as char)
                .collect();
            digits.parse().ok()
        })
        .max()
        .unwrap_or_else(|| panic!("{}: no GLIBC_2.x version", bin.display()))
}

/// Runs the packaged `bin` (through `runner`, the qemu-user command for
/// ARM): `--version`, and a config that needs the default features
/// (`protocol websockets`, `http_listener`, `certfile`) must fail only at
/// the missing certificate file, with exit status 2, never at a feature.
fn check_runs_with_default_features(runner: &[&str], bin: &Path, out_dir: &Path) {
    let command = || match runner.split_first() {
        Some((qemu, args)) => {
            let mut cmd = Command::new(qemu);
            cmd.args(args).arg(bin);
            cmd
        }
        None => Command::new(bin),
    };
    let version = run(command().arg("--version"));
    assert_eq!(
        version.trim(),
        format!("boxmq {}", env!("CARGO_PKG_VERSION"))
    );

    let missing = out_dir.join("missing");
    let conf = out_dir.join("features.conf");
    fs::write(
        &conf,
        format!(
            "persistence false\n\
             listener 0 127.0.0.1\nprotocol websockets\n\
             http_listener 0 127.0.0.1\n\
             listener 0 127.0.0.1\ncertfile {0}/server.crt\nkeyfile {0}/server.key\n",
            missing.display()
        ),
    )
    .unwrap();
    let mut cmd = command();
    let child = cmd
        .arg("--config")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    // It stops at the config: bounded anyway, a broker must not be left.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(out) = rx.recv_timeout(Duration::from_secs(60)) else {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        panic!("{cmd:?} still running after 60 s");
    };
    let out = out.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("built without"), "{stderr}");
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}/server.crt: certfile: cannot open",
            missing.display()
        )),
        "{stderr}"
    );
}

#[test]
fn amd64_deb_has_the_right_fields_and_files() {
    let test = "amd64_deb_has_the_right_fields_and_files";
    if !have_tools(test, None, &[]) {
        return;
    }
    let arch = run(Command::new("dpkg").arg("--print-architecture"));
    let arch = arch.trim();
    // Own target dir: no waiting for the outer cargo's lock.
    let td = root().join("target").join("pkg-test");
    let out_dir = td.join(format!("debian-{}", std::process::id()));
    let deb = build_deb(&td, &out_dir, None, None);
    let (depends, tree) = check_deb(&deb, arch, &out_dir);
    assert!(depends.starts_with("libc6 (>= 2."), "Depends: {depends}");
    let bin = tree.join("usr/bin/boxmq");
    if arch == "amd64" {
        // EM_X86_64
        assert_eq!(elf_header(&bin).1, 62);
    }
    check_runs_with_default_features(&[], &bin, &out_dir);
    let _ = fs::remove_dir_all(&out_dir);
}

/// The ARM packages share `target/arm-qemu` with `tests/arm_qemu.rs`.
fn arm_target_dir() -> PathBuf {
    root().join("target").join("arm-qemu")
}

#[test]
fn arm64_deb_is_static_aarch64_with_default_features() {
    let test = "arm64_deb_is_static_aarch64_with_default_features";
    let target = "aarch64-unknown-linux-musl";
    if !have_tools(
        test,
        Some(target),
        &["aarch64-linux-gnu-gcc", "qemu-aarch64"],
    ) {
        return;
    }
    let td = arm_target_dir();
    let out_dir = td.join(format!("debian-arm64-{}", std::process::id()));
    let deb = build_deb(&td, &out_dir, Some(target), None);
    let (depends, tree) = check_deb(&deb, "arm64", &out_dir);
    // Static (musl): nothing to depend on; cargo-deb writes an empty field,
    // which dpkg ignores.
    assert_eq!(depends, "", "Depends: {depends}");
    let bin = tree.join("usr/bin/boxmq");
    // 64-bit, EM_AARCH64
    let (class, machine, _) = elf_header(&bin);
    assert_eq!((class, machine), (2, 183), "{}", bin.display());
    assert!(
        !elf64_has_interpreter(&bin),
        "{} needs a dynamic loader",
        bin.display()
    );
    check_runs_with_default_features(&["qemu-aarch64"], &bin, &out_dir);
    let _ = fs::remove_dir_all(&out_dir);
}

#[test]
fn armhf_deb_is_armv7_hard_float_with_default_features() {
    let test = "armhf_deb_is_armv7_hard_float_with_default_features";
    let target = "armv7-unknown-linux-gnueabihf";
    if !have_tools(test, Some(target), &["arm-linux-gnueabihf-gcc", "qemu-arm"]) {
        return;
    }
    let td = arm_target_dir();
    let out_dir = td.join(format!("debian-armhf-{}", std::process::id()));
    let deb = build_deb(&td, &out_dir, Some(target), Some("armhf"));
    let (depends, tree) = check_deb(&deb, "armhf", &out_dir);
    // The variant's Depends; it must cover the glibc symbol versions the
    // binary needs.
    assert_eq!(depends, "libc6 (>= 2.34)");
    let bin = tree.join("usr/bin/boxmq");
    let (class, machine, flags) = elf_header(&bin);
    // 32-bit, EM_ARM; EABI version 5, hard-float calling convention
    // (EF_ARM_ABI_FLOAT_HARD).
    assert_eq!((class, machine), (1, 40), "{}", bin.display());
    assert_eq!(flags & 0xff00_0000, 0x0500_0000, "e_flags {flags:#x}");
    assert_ne!(flags & 0x400, 0, "e_flags {flags:#x}: not hard float");
    let glibc = highest_glibc_minor(&bin);
    assert!(glibc <= 34, "needs GLIBC_2.{glibc}, Depends says 2.34");
    check_runs_with_default_features(
        &["qemu-arm", "-L", "/usr/arm-linux-gnueabihf"],
        &bin,
        &out_dir,
    );
    let _ = fs::remove_dir_all(&out_dir);
}
