//! Test certificates made with Debian's `openssl` command line (installed
//! by `.ci/run`): a CA, a server certificate for 127.0.0.1/localhost, client
//! certificates signed by the CA, and a second ("rogue") CA whose client
//! certificate the broker must refuse. P-256 keys, valid for two days.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::{TempDir, run_with_timeout};

/// Where the generated files are (kept while this lives).
pub struct Certs {
    pub dir: TempDir,
}

fn openssl(dir: &TempDir, args: &[&str]) {
    let out = run_with_timeout(
        Command::new("openssl").args(args).current_dir(dir.path()),
        Duration::from_secs(20),
    );
    out.assert_success();
}

/// A new P-256 key, `<name>.key` in `dir`.
fn new_key(dir: &TempDir, name: &str) {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &format!("{name}.key"),
        ],
    );
}

impl Certs {
    /// Generates: ca, server (CN localhost), `elsewhere` (a server
    /// certificate for elsewhere.example only), clients `alice`, `bob` and `nocn`
    /// (no CN) signed by ca, rogue CA and its client `mallory`.
    pub fn generate() -> Certs {
        let dir = TempDir::new("certs");
        let key = |name: &str| new_key(&dir, name);
        for ca in ["ca", "rogue"] {
            key(ca);
            openssl(
                &dir,
                &[
                    "req",
                    "-x509",
                    "-new",
                    "-key",
                    &format!("{ca}.key"),
                    "-out",
                    &format!("{ca}.crt"),
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN=boxmq test {ca}"),
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            );
        }
        let sign = |name: &str, subj: &str, ca: &str, ext: &str| {
            key(name);
            openssl(
                &dir,
                &[
                    "req",
                    "-new",
                    "-key",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    subj,
                ],
            );
            std::fs::write(dir.path().join(format!("{name}.ext")), ext).expect("ext file");
            openssl(
                &dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    &format!("{ca}.crt"),
                    "-CAkey",
                    &format!("{ca}.key"),
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-out",
                    &format!("{name}.crt"),
                    "-extfile",
                    &format!("{name}.ext"),
                ],
            );
        };
        sign(
            "server",
            "/CN=localhost",
            "ca",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             extendedKeyUsage=serverAuth\n",
        );
        // Signed by ca, but for a name no test connects to.
        sign(
            "elsewhere",
            "/CN=elsewhere.example",
            "ca",
            "subjectAltName=DNS:elsewhere.example\nbasicConstraints=CA:FALSE\n\
             extendedKeyUsage=serverAuth\n",
        );
        let client_ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n";
        sign("alice", "/O=boxmq/CN=alice", "ca", client_ext);
        sign("bob", "/O=boxmq/CN=bob", "ca", client_ext);
        sign("nocn", "/O=boxmq nobody", "ca", client_ext);
        sign("mallory", "/CN=alice", "rogue", client_ext);
        Certs { dir }
    }

    /// Adds a client certificate `<name>.crt` (and `.key`) signed by `ca`
    /// with subject `subj` in `openssl req -subj` form, read as UTF-8 and
    /// with `+` joining attributes into one RDN; `config`, if given, is an
    /// `openssl req` configuration (new OIDs, a string mask).
    #[allow(dead_code)] // not every test binary makes extra certificates
    pub fn client(&self, name: &str, subj: &str, config: Option<&str>) {
        let dir = &self.dir;
        new_key(dir, name);
        let mut req = vec![
            "req".to_owned(),
            "-new".to_owned(),
            "-utf8".to_owned(),
            "-multivalue-rdn".to_owned(),
            "-key".to_owned(),
            format!("{name}.key"),
            "-out".to_owned(),
            format!("{name}.csr"),
            "-subj".to_owned(),
            subj.to_owned(),
        ];
        if let Some(text) = config {
            std::fs::write(dir.path().join(format!("{name}.cnf")), text).expect("req config");
            req.extend(["-config".to_owned(), format!("{name}.cnf")]);
        }
        let req: Vec<&str> = req.iter().map(String::as_str).collect();
        openssl(dir, &req);
        std::fs::write(
            dir.path().join(format!("{name}.ext")),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )
        .expect("ext file");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &format!("{name}.crt"),
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }

    /// The subject of `<name>.crt` as OpenSSL prints it with
    /// `-nameopt RFC2253` (what Mosquitto's `use_subject_as_username`
    /// takes), and the certificate's DER bytes.
    #[allow(dead_code)]
    pub fn subject_rfc2253(&self, name: &str) -> (String, Vec<u8>) {
        let crt = format!("{name}.crt");
        let out = run_with_timeout(
            Command::new("openssl")
                .args([
                    "x509", "-in", &crt, "-noout", "-subject", "-nameopt", "RFC2253",
                ])
                .current_dir(self.dir.path()),
            Duration::from_secs(20),
        );
        out.assert_success();
        let subject = out
            .stdout
            .trim_end_matches('\n')
            .strip_prefix("subject=")
            .unwrap_or_else(|| panic!("openssl x509 -subject: {out}"))
            .to_owned();
        let der = format!("{name}.der");
        openssl(
            &self.dir,
            &["x509", "-in", &crt, "-outform", "DER", "-out", &der],
        );
        let bytes = std::fs::read(self.dir.path().join(der)).expect("DER certificate");
        (subject, bytes)
    }

    /// Writes `ca.crl`, a PEM revocation list of `ca` revoking the client
    /// certificates `names` (made with `openssl ca`); returns its path.
    pub fn crl_revoking(&self, names: &[&str]) -> String {
        let dir = &self.dir;
        std::fs::write(
            dir.path().join("crl.cnf"),
            "[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\n\
             crlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 2\n",
        )
        .expect("crl.cnf");
        std::fs::write(dir.path().join("index.txt"), "").expect("index.txt");
        std::fs::write(dir.path().join("crlnumber"), "01\n").expect("crlnumber");
        let ca = [
            "-config", "crl.cnf", "-keyfile", "ca.key", "-cert", "ca.crt",
        ];
        for name in names {
            let crt = format!("{name}.crt");
            let mut args = vec!["ca", "-revoke", crt.as_str()];
            args.extend(ca);
            openssl(dir, &args);
        }
        let mut args = vec!["ca", "-gencrl", "-out", "ca.crl"];
        args.extend(ca);
        openssl(dir, &args);
        self.path("ca.crl")
    }

    /// `<name>.crt` or `<name>.key` etc.
    pub fn path(&self, file: &str) -> String {
        let p: PathBuf = self.dir.path().join(file);
        p.to_string_lossy().into_owned()
    }
}
