//! Checking a peer's certificate: the chain against the cluster CA, then the name the peer must
//! hold (Nomad's `verify_server_hostname`: `server.<region>.nomad` whatever address was dialled),
//! and, for callers the listener verified, which roles their certificate names.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

use super::listener::PeerRoles;

/// Which name a server's certificate must hold.
#[derive(Clone, Debug)]
pub enum NameCheck {
    /// The host dialled (the URL's), as browsers check.
    Dialled,
    /// One of these, whatever was dialled (`server.<region>.nomad`).
    OneOf(Vec<ServerName<'static>>),
    /// Any name: the chain alone (agents without `verify_server_hostname`).
    ChainOnly,
    /// Nothing at all (`-tls-skip-verify`): the handshake's signatures only.
    Nothing,
}

/// A server-certificate verifier over the cluster CA.
#[derive(Debug)]
pub struct CaVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    names: NameCheck,
}

impl CaVerifier {
    pub fn new(roots: Arc<RootCertStore>, names: NameCheck) -> Self {
        Self {
            roots,
            provider: super::provider(),
            names,
        }
    }
}

impl ServerCertVerifier for CaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if matches!(self.names, NameCheck::Nothing) {
            return Ok(ServerCertVerified::assertion());
        }
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        match &self.names {
            NameCheck::Dialled => verify_server_name(&cert, server_name)?,
            NameCheck::OneOf(names) => {
                let mut first_error = None;
                for name in names {
                    match verify_server_name(&cert, name) {
                        Ok(()) => return Ok(ServerCertVerified::assertion()),
                        Err(error) => {
                            first_error.get_or_insert(error);
                        }
                    }
                }
                if let Some(error) = first_error {
                    return Err(error);
                }
            }
            NameCheck::ChainOnly | NameCheck::Nothing => {}
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The roles a caller's certificate names; the listener verified its chain already. No chain:
/// no certificate, no role.
pub fn peer_roles(chain: Option<&[CertificateDer<'static>]>, region: &str) -> PeerRoles {
    let Some(end_entity) = chain.and_then(|chain| chain.first()) else {
        return PeerRoles::default();
    };
    let Ok(cert) = ParsedCertificate::try_from(end_entity) else {
        return PeerRoles::default();
    };
    let holds = |name: String| {
        ServerName::try_from(name).is_ok_and(|name| verify_server_name(&cert, &name).is_ok())
    };
    PeerRoles {
        certified: true,
        server: holds(super::server_name(region)),
        client: holds(super::client_name(region)),
    }
}
