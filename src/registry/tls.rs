//! TLS for `serve --tls-cert FILE --tls-key FILE`: the certificate chain and key (PEM), read
//! at start and again on SIGHUP, and the rustls settings handshakes use (HTTP/1.1 and HTTP/2
//! by ALPN). The connections themselves are `connections.rs`'s.
//!
//! A reload swaps the configuration new handshakes use; connections already open keep the
//! one they were made with, so nothing in flight is dropped. A reload that fails (a file
//! missing, a key that does not match the certificate) keeps the previous certificate.
//! Blobs sent over TLS are encrypted in user space (no sendfile; plain connections write
//! through `sendfile.rs`).
//!
//! Owns: reading and checking the PEM files, the rustls server configuration.
//! Must not touch: sockets, routes or handlers.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--tls-cert {path}: {reason}")]
    Cert { path: PathBuf, reason: String },
    #[error("--tls-key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("--tls-cert {cert} and --tls-key {key} do not go together: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// The certificate files and the configuration made from them, swapped on reload.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
}

impl Tls {
    /// Read and check both files.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let config = server_config(cert, key)?;
        Ok(Tls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(config)),
        })
    }

    /// Read the files again; on success new connections use them, on failure nothing
    /// changes and the error says why.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.cert, &self.key)?;
        *self.current.write().expect("tls config lock") = Arc::new(config);
        Ok(())
    }

    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// What the next handshake uses: the configuration current now.
    pub(super) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let config = self.current.read().expect("tls config lock").clone();
        tokio_rustls::TlsAcceptor::from(config)
    }
}

fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let cert_err = |reason: String| TlsError::Cert {
        path: cert.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_err(pem_reason(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(pem_reason(&e)))?;
    if chain.is_empty() {
        return Err(cert_err(
            "no CERTIFICATE block: expected the PEM chain, server certificate first".into(),
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_path_buf(),
        reason: pem_reason(&e),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| cert_err(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| TlsError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            reason: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn pem_reason(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(io) => io.to_string(),
        Error::NoItemsFound => "no PEM block of the expected kind found".into(),
        other => format!("not valid PEM: {other:?}"),
    }
}
