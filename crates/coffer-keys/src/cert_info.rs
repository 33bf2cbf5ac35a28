//! Reading certificates Coffer holds: what a renewal of a self-signed CA
//! keeps, and the facts shown about a certificate.

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::keys::CertificateSubject;
use crate::{Result, invalid};

/// The DER of each certificate in a PEM chain, in order.
pub fn chain_der(pem_chain: &str) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for p in x509_parser::pem::Pem::iter_from_buffer(pem_chain.as_bytes()) {
        let p = p.map_err(|_| invalid("certificate chain: not valid PEM"))?;
        if p.label != "CERTIFICATE" {
            return Err(invalid(format!(
                "certificate chain: unexpected PEM block {:?}",
                p.label
            )));
        }
        out.push(p.contents);
    }
    if out.is_empty() {
        return Err(invalid("certificate chain: no certificate in it"));
    }
    Ok(out)
}

/// If the chain's leaf is self-signed (issuer = subject, a single
/// certificate), its subject and lifetime in whole days (at least 1), so
/// that a rotated key gets an equivalent new root. `None` for a
/// certificate issued by another CA (that CA must issue the new one).
pub fn self_signed_subject(pem_chain: &str) -> Result<Option<(CertificateSubject, u32)>> {
    let ders = chain_der(pem_chain)?;
    if ders.len() != 1 {
        return Ok(None);
    }
    let (_, cert) = X509Certificate::from_der(&ders[0])
        .map_err(|_| invalid("certificate chain: not a valid X.509 certificate"))?;
    if cert.subject() != cert.issuer() {
        return Ok(None);
    }
    let first = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
        it.next().and_then(|a| a.as_str().ok()).map(str::to_owned)
    };
    let s = cert.subject();
    let subject = CertificateSubject {
        common_name: first(&mut s.iter_common_name()).unwrap_or_default(),
        organization: first(&mut s.iter_organization()),
        country: first(&mut s.iter_country()),
        locality: first(&mut s.iter_locality()),
        province: first(&mut s.iter_state_or_province()),
    };
    let secs = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    let days = u32::try_from((secs / 86_400).max(1)).unwrap_or(u32::MAX);
    Ok(Some((subject, days)))
}
