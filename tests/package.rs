//! The Debian package (docs/GATEWAY.md): `pkg/boxmq.conf` parses, the unit
//! is hardened and sized for the config, and `cargo deb` builds an amd64
//! package with the right fields and files, checked with `dpkg-deb` and
//! unpacked into a temporary root with `dpkg -x` (never installed).
//!
//! Without cargo-deb or dpkg-deb the package test prints a note and passes,
//! except under `CI=true` (`.ci/arm-setup.sh` installs cargo-deb).

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use boxmq::Config;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
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

#[test]
fn amd64_deb_has_the_right_fields_and_files() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let have_deb = have(&cargo, "deb") && have("dpkg-deb", "--version");
    let have_deb = have_deb && {
        // `cargo deb --version`
        Command::new(&cargo)
            .args(["deb", "--version"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have_deb {
        let msg = "cargo-deb or dpkg-deb missing; run .ci/arm-setup.sh";
        assert!(!in_ci(), "{msg} (CI=true: not skipping)");
        println!("NOTE: amd64_deb_has_the_right_fields_and_files skipped: {msg}");
        return;
    }
    let arch = run(Command::new("dpkg").arg("--print-architecture"));
    let arch = arch.trim();
    // Own target dir: no waiting for the outer cargo's lock.
    let td = root().join("target").join("pkg-test");
    let out_dir = td.join(format!("debian-{}", std::process::id()));
    let _ = fs::remove_dir_all(&out_dir);
    let start = Instant::now();
    let output = Command::new(&cargo)
        .current_dir(root())
        .args(["deb", "--fast", "-o"])
        .arg(&out_dir)
        .env("CARGO_TARGET_DIR", &td)
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo deb failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    println!("cargo deb: {:.1} s", start.elapsed().as_secs_f64());
    assert!(start.elapsed() < Duration::from_secs(900));
    let debs: Vec<PathBuf> = fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    let deb = &debs[0];
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        deb.file_name().unwrap().to_string_lossy(),
        format!("boxmq_{version}-1_{arch}.deb")
    );

    let field = |name: &str| run(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name));
    assert_eq!(field("Package").trim(), "boxmq");
    assert_eq!(field("Architecture").trim(), arch);
    assert_eq!(field("Version").trim(), format!("{version}-1"));
    let depends = field("Depends");
    assert!(depends.starts_with("libc6 (>= 2."), "Depends: {depends}");
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
    let version_out = run(Command::new(tree.join("usr/bin/boxmq")).arg("--version"));
    assert_eq!(version_out.trim(), format!("boxmq {version}"));
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
    let _ = fs::remove_dir_all(&out_dir);
}
