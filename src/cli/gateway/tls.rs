//! `--tls-cert` and `--tls-key`: the gateway's TLS server configuration.

use crate::cli::exit::{Code, fail};
use crate::cli::{CliError, GatewayArgs};
use std::sync::Arc;

/// Largest certificate chain or key file read.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// `--tls-cert` and `--tls-key`: a TLS server configuration (TLS 1.2 and 1.3, HTTP/1.1), or
/// none when not asked for.
pub fn acceptor(args: &GatewayArgs) -> Result<Option<tokio_rustls::TlsAcceptor>, CliError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let unreadable = |path: &std::path::Path, why: String| {
        fail(Code::InputUnreadable, format!("{}: {why}", path.display()))
    };
    let chain_pem = crate::edge::fs::read_bounded(cert, MAX_PEM_BYTES)
        .map_err(|e| unreadable(cert, e.to_string()))?
        .ok_or_else(|| unreadable(cert, "no such file".into()))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| unreadable(cert, format!("not a PEM certificate chain ({e})")))?;
    if chain.is_empty() {
        return Err(unreadable(
            cert,
            "holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let key_pem = crate::edge::fs::read_secret(key, MAX_PEM_BYTES).map_err(|e| {
        unreadable(
            key,
            format!(
                "{e} (a private key must be 0600: chmod 600 {})",
                key.display()
            ),
        )
    })?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| unreadable(key, format!("not a PEM private key ({e})")))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private))
        .map_err(|e| {
            fail(
                Code::Usage,
                format!(
                    "--tls-cert {} with --tls-key {}: {e} (the key must be the certificate's)",
                    cert.display(),
                    key.display()
                ),
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}
