//! TLS to the database with rustls, following libpq's `sslmode`:
//! - `disable`: no TLS;
//! - `prefer` (the default) and `require`: encrypted, the certificate not checked (with
//!   `require`, checked against a CA when one is given, as libpq does);
//! - `verify-ca`: the certificate must come from the CA in `sslrootcert`;
//! - `verify-full`: that, and it must name the host connected to.
//!
//! `sslrootcert` is a PEM file, or `system` for the usual public CAs. As with libpq, `system`
//! goes only with `verify-full` (and is what `sslmode` defaults to then): any public CA
//! signs certificates for any name, so trusting them all without checking the name would
//! let anyone with a certificate of their own pass for the server.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(text: &str) -> Result<SslMode, String> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
            ))
            }
        })
    }

    /// The mode as `sslmode` spells it.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the client asks for TLS and whether it insists.
    pub fn negotiation(self) -> postgres::config::SslMode {
        match self {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            _ => postgres::config::SslMode::Require,
        }
    }
}

/// The connector for this mode; `root` is the CA file (or `system`).
pub fn connector(mode: SslMode, root: Option<&Path>) -> Result<MakeRustlsConnect, String> {
    if root.is_some_and(is_system) && mode != SslMode::VerifyFull {
        return Err(format!(
            "sslrootcert=system trusts every public certificate authority, so it needs \
             sslmode=verify-full (the server's name checked too), not sslmode={}",
            mode.name()
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, root) {
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
            return Err(format!(
                "sslmode={} needs the CA that signed the server's certificate: add \
                 sslrootcert=/path/to/ca.pem to the URL (or sslrootcert=system)",
                mode.name()
            ))
        }
        (SslMode::VerifyFull, Some(root)) => webpki(root, &provider)?,
        (SslMode::VerifyCa | SslMode::Require, Some(root)) => {
            Arc::new(AnyName(webpki(root, &provider)?))
        }
        _ => Arc::new(EncryptOnly(provider.clone())),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Whether `sslrootcert` names the system's public CAs rather than a file.
pub fn is_system(root: &Path) -> bool {
    root == Path::new("system")
}

/// The standard verifier, trusting the CAs in `root` (or the public ones for `system`).
fn webpki(
    root: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, String> {
    let mut roots = RootCertStore::empty();
    if is_system(root) {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    } else {
        let certs = CertificateDer::pem_file_iter(root)
            .map_err(|e| format!("cannot read the CA file {}: {e}", root.display()))?;
        for cert in certs {
            let cert =
                cert.map_err(|e| format!("the CA file {} is not PEM: {e}", root.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("the CA file {}: {e}", root.display()))?;
        }
        if roots.is_empty() {
            return Err(format!(
                "the CA file {} holds no certificate",
                root.display()
            ));
        }
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| e.to_string())
}

/// `require` without a CA: the session is encrypted and the handshake checked, but any
/// certificate is taken (libpq's behaviour).
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to the CA, whatever host name the certificate carries.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict =
            self.0
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        match verdict {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_authorities_are_trusted_only_when_the_name_is_checked_too() {
        let system = Some(Path::new("system"));
        for mode in [SslMode::Prefer, SslMode::Require, SslMode::VerifyCa] {
            let Err(e) = connector(mode, system) else {
                panic!(
                    "sslmode={} with sslrootcert=system was let through",
                    mode.name()
                );
            };
            assert!(e.contains("verify-full") && e.contains(mode.name()), "{e}");
        }
        assert!(connector(SslMode::VerifyFull, system).is_ok());
    }
}
