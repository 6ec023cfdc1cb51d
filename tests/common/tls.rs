//! A throwaway PKI for TLS tests, made with the `openssl` command: a root CA, an intermediate
//! CA it signs, and a server certificate the intermediate signs for `127.0.0.1` and
//! `localhost`. Clients are given only the root, so a handshake succeeds only when the
//! server sends the whole chain.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    /// A new root, intermediate and server certificate, valid for two days.
    pub fn new() -> TestCa {
        let ca = TestCa {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        ca.self_signed("root", "stablebuild-test-root");
        ca.signed(
            "int",
            "stablebuild-test-intermediate",
            "root",
            INTERMEDIATE_EXT,
        );
        ca.signed("server", "127.0.0.1", "int", SERVER_EXT);
        let chain = [ca.read("server.crt"), ca.read("int.crt")].concat();
        std::fs::write(ca.chain(), chain).expect("write chain");
        ca
    }

    /// The root certificate clients trust (PEM).
    pub fn root(&self) -> PathBuf {
        self.path("root.crt")
    }

    /// The server's chain: its certificate, then the intermediate (PEM).
    pub fn chain(&self) -> PathBuf {
        self.path("chain.pem")
    }

    /// The server's private key (PKCS#8 PEM).
    pub fn key(&self) -> PathBuf {
        self.path("server.key")
    }

    /// A directory holding `ca.crt` (the root), as Docker's and podman's `certs.d/HOST/`
    /// and skopeo's `--cert-dir` expect.
    pub fn cert_dir(&self) -> PathBuf {
        let dir = self.path("cert-dir");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(self.root(), dir.join("ca.crt")).unwrap();
        dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    fn self_signed(&self, name: &str, cn: &str) {
        openssl(
            self.dir.path(),
            &format!(
                "req -x509 {NEW_KEY} -days 2 -subj /CN={cn} -keyout {name}.key -out {name}.crt \
                 -addext basicConstraints=critical,CA:TRUE \
                 -addext keyUsage=critical,keyCertSign,cRLSign"
            ),
        );
    }

    fn signed(&self, name: &str, cn: &str, issuer: &str, ext: &str) {
        let dir = self.dir.path();
        openssl(
            dir,
            &format!("req -new {NEW_KEY} -subj /CN={cn} -keyout {name}.key -out {name}.csr"),
        );
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        openssl(
            dir,
            &format!(
                "x509 -req -days 2 -in {name}.csr -CA {issuer}.crt -CAkey {issuer}.key \
                 -CAcreateserial -extfile {name}.ext -out {name}.crt"
            ),
        );
    }
}

/// A new P-256 key, unencrypted.
const NEW_KEY: &str = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

const INTERMEDIATE_EXT: &str = "basicConstraints=critical,CA:TRUE,pathlen:0\n\
    keyUsage=critical,keyCertSign,cRLSign\n\
    subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n";

const SERVER_EXT: &str = "basicConstraints=CA:FALSE\n\
    keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n\
    subjectAltName=IP:127.0.0.1,DNS:localhost\n\
    subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n";

/// `openssl` with `args` split at whitespace, in `dir`.
fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .expect("run openssl (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
