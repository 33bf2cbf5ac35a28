//! Key algorithms, generation, the stored form of a key version, public
//! key export and self-signed CA certificates.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING,
    ECDSA_P384_SHA384_ASN1_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING,
    ECDSA_P521_SHA512_ASN1_SIGNING, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair,
    KeyPair as _, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{KeyError, Result, invalid};

/// The algorithms Coffer generates keys for, named as Akeyless names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyAlg {
    #[serde(rename = "AES128GCM")]
    Aes128Gcm,
    #[serde(rename = "AES256GCM")]
    Aes256Gcm,
    #[serde(rename = "AES128SIV")]
    Aes128Siv,
    #[serde(rename = "AES256SIV")]
    Aes256Siv,
    #[serde(rename = "RSA2048")]
    Rsa2048,
    #[serde(rename = "RSA3072")]
    Rsa3072,
    #[serde(rename = "RSA4096")]
    Rsa4096,
    #[serde(rename = "EC256")]
    Ec256,
    #[serde(rename = "EC384")]
    Ec384,
    #[serde(rename = "Ed25519")]
    Ed25519,
}

impl KeyAlg {
    pub const ALL: [KeyAlg; 10] = [
        KeyAlg::Aes128Gcm,
        KeyAlg::Aes256Gcm,
        KeyAlg::Aes128Siv,
        KeyAlg::Aes256Siv,
        KeyAlg::Rsa2048,
        KeyAlg::Rsa3072,
        KeyAlg::Rsa4096,
        KeyAlg::Ec256,
        KeyAlg::Ec384,
        KeyAlg::Ed25519,
    ];

    /// Akeyless's name (`AES256GCM`, `RSA2048`, `EC256`, `Ed25519`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlg::Aes128Gcm => "AES128GCM",
            KeyAlg::Aes256Gcm => "AES256GCM",
            KeyAlg::Aes128Siv => "AES128SIV",
            KeyAlg::Aes256Siv => "AES256SIV",
            KeyAlg::Rsa2048 => "RSA2048",
            KeyAlg::Rsa3072 => "RSA3072",
            KeyAlg::Rsa4096 => "RSA4096",
            KeyAlg::Ec256 => "EC256",
            KeyAlg::Ec384 => "EC384",
            KeyAlg::Ed25519 => "Ed25519",
        }
    }

    /// AES keys: encrypt/decrypt only, no public part.
    pub fn is_symmetric(self) -> bool {
        matches!(
            self,
            KeyAlg::Aes128Gcm | KeyAlg::Aes256Gcm | KeyAlg::Aes128Siv | KeyAlg::Aes256Siv
        )
    }
}

impl fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlg {
    type Err = KeyError;
    /// Case-insensitive. RSA1024 and the CBC modes are refused with the
    /// reason (too weak; unauthenticated), GPG and the rest as unknown.
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_uppercase();
        if let Some(a) = KeyAlg::ALL
            .iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(&t))
        {
            return Ok(*a);
        }
        Err(match t.as_str() {
            "RSA1024" => {
                invalid("alg RSA1024 is refused: 1024-bit RSA is breakable; use RSA2048 or larger")
            }
            "AES128CBC" | "AES256CBC" => invalid(format!(
                "alg {t} is refused: CBC has no integrity protection; use AES128GCM or AES256GCM"
            )),
            _ => invalid(format!(
                "alg {s:?} is not supported: use one of {}",
                KeyAlg::ALL.map(KeyAlg::as_str).join(", ")
            )),
        })
    }
}

/// One version of a key, as the server seals it: the algorithm, the
/// secret (raw AES key bytes, or the PKCS#8 DER of an asymmetric private
/// key) and, for signer keys, the key's certificate chain (PEM, leaf
/// first: a self-signed root, or a certificate issued by another CA
/// followed by that CA's chain).
#[derive(Clone)]
pub struct KeyMaterial {
    alg: KeyAlg,
    secret: Zeroizing<Vec<u8>>,
    certificate_chain: Option<String>,
}

impl KeyMaterial {
    pub fn alg(&self) -> KeyAlg {
        self.alg
    }

    /// Raw AES key bytes, or PKCS#8 DER of the private key.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// PEM chain, leaf (this key's certificate) first.
    pub fn certificate_chain(&self) -> Option<&str> {
        self.certificate_chain.as_deref()
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("alg", &self.alg)
            .field("secret", &"[redacted]")
            .field("certificate_chain", &self.certificate_chain.is_some())
            .finish()
    }
}

impl KeyMaterial {
    /// A key version from its parts, as stored (no checks beyond the
    /// constructor's callers).
    pub(crate) fn from_parts(
        alg: KeyAlg,
        secret: Zeroizing<Vec<u8>>,
        certificate_chain: Option<String>,
    ) -> Self {
        KeyMaterial {
            alg,
            secret,
            certificate_chain,
        }
    }

    /// The rcgen signing key of an asymmetric key (X.509 signatures:
    /// ECDSA with SHA-256/384, Ed25519, RSA PKCS#1 v1.5 with SHA-256).
    pub fn rcgen_key_pair(&self) -> Result<rcgen::KeyPair> {
        let sig_alg: &'static rcgen::SignatureAlgorithm = match self.alg {
            KeyAlg::Ec256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlg::Ec384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyAlg::Ed25519 => &rcgen::PKCS_ED25519,
            KeyAlg::Rsa2048 | KeyAlg::Rsa3072 | KeyAlg::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
            a => {
                return Err(invalid(format!(
                    "a {a} key cannot sign certificates: use an RSA, EC256, EC384 or Ed25519 key"
                )));
            }
        };
        let der = rustls_pki_types::PrivatePkcs8KeyDer::from(self.secret.to_vec());
        rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, sig_alg)
            .map_err(|e| KeyError::Internal(format!("loading the {} key: {e}", self.alg)))
    }
}

// ---------------------------------------------------------------------------
// Sizes, names and the aws-lc-rs key pairs of a key version.

impl KeyAlg {
    /// Length of the raw key of an AES algorithm (an SIV key is two AES
    /// keys: one for S2V/CMAC, one for CTR).
    pub(crate) fn aes_key_len(self) -> Option<usize> {
        match self {
            KeyAlg::Aes128Gcm => Some(16),
            KeyAlg::Aes256Gcm | KeyAlg::Aes128Siv => Some(32),
            KeyAlg::Aes256Siv => Some(64),
            _ => None,
        }
    }

    /// Modulus size of an RSA algorithm.
    pub(crate) fn rsa_bits(self) -> Option<usize> {
        match self {
            KeyAlg::Rsa2048 => Some(2048),
            KeyAlg::Rsa3072 => Some(3072),
            KeyAlg::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// aws-lc-rs ECDSA algorithm: ASN.1 (DER) signatures for X.509,
    /// fixed-width `r || s` for SSH.
    fn ecdsa(self, fixed: bool) -> Option<&'static EcdsaSigningAlgorithm> {
        match (self, fixed) {
            (KeyAlg::Ec256, false) => Some(&ECDSA_P256_SHA256_ASN1_SIGNING),
            (KeyAlg::Ec256, true) => Some(&ECDSA_P256_SHA256_FIXED_SIGNING),
            (KeyAlg::Ec384, false) => Some(&ECDSA_P384_SHA384_ASN1_SIGNING),
            (KeyAlg::Ec384, true) => Some(&ECDSA_P384_SHA384_FIXED_SIGNING),
            _ => None,
        }
    }

    /// What a private key of this algorithm is, for messages.
    fn key_description(self) -> String {
        match self {
            KeyAlg::Ed25519 => "an Ed25519 key".to_owned(),
            KeyAlg::Ec256 => "an EC P-256 key".to_owned(),
            KeyAlg::Ec384 => "an EC P-384 key".to_owned(),
            a => match a.rsa_bits() {
                Some(bits) => format!("a {bits}-bit RSA key"),
                None => format!("a {a} key"),
            },
        }
    }
}

/// The exact size of an RSA key's modulus, in bits.
fn modulus_bits(kp: &RsaKeyPair) -> usize {
    let n = kp.public_key().modulus();
    let n = n.big_endian_without_leading_zero();
    match n.first() {
        Some(b) => (n.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
        None => 0,
    }
}

fn internal(what: &str) -> impl FnOnce(aws_lc_rs::error::Unspecified) -> KeyError + '_ {
    move |_| KeyError::Internal(what.to_owned())
}

fn stored_key_broken(alg: KeyAlg, reason: impl fmt::Display) -> KeyError {
    KeyError::Internal(format!("the stored {alg} key does not load ({reason})"))
}

impl KeyMaterial {
    /// The Ed25519 key pair of an Ed25519 key.
    pub(crate) fn ed25519_key_pair(&self) -> Result<Ed25519KeyPair> {
        if self.alg != KeyAlg::Ed25519 {
            return Err(stored_key_broken(self.alg, "not an Ed25519 key"));
        }
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(&self.secret)
            .map_err(|e| stored_key_broken(self.alg, e))
    }

    /// The ECDSA key pair of an EC256/EC384 key; `fixed`: signatures as
    /// `r || s` (SSH) instead of DER (X.509).
    pub(crate) fn ecdsa_key_pair(&self, fixed: bool) -> Result<EcdsaKeyPair> {
        let alg = self
            .alg
            .ecdsa(fixed)
            .ok_or_else(|| stored_key_broken(self.alg, "not an EC key"))?;
        EcdsaKeyPair::from_pkcs8(alg, &self.secret).map_err(|e| stored_key_broken(self.alg, e))
    }

    /// The RSA key pair of an RSA key.
    pub(crate) fn rsa_key_pair(&self) -> Result<RsaKeyPair> {
        let bits = self
            .alg
            .rsa_bits()
            .ok_or_else(|| stored_key_broken(self.alg, "not an RSA key"))?;
        let kp =
            RsaKeyPair::from_pkcs8(&self.secret).map_err(|e| stored_key_broken(self.alg, e))?;
        if modulus_bits(&kp) != bits {
            return Err(stored_key_broken(self.alg, "wrong modulus size"));
        }
        Ok(kp)
    }

    /// Check that the secret is a key of the algorithm (stored form).
    fn check(&self) -> Result<()> {
        if let Some(n) = self.alg.aes_key_len() {
            if self.secret.len() != n {
                return Err(stored_key_broken(self.alg, "wrong key length"));
            }
            return Ok(());
        }
        match self.alg {
            KeyAlg::Ed25519 => self.ed25519_key_pair().map(drop),
            KeyAlg::Ec256 | KeyAlg::Ec384 => self.ecdsa_key_pair(false).map(drop),
            _ => self.rsa_key_pair().map(drop),
        }
    }
}

// ---------------------------------------------------------------------------
// PEM

/// One PEM block: its label and decoded contents (zeroized on drop: the
/// contents may be a private key).
pub(crate) struct PemBlock {
    pub(crate) label: String,
    pub(crate) der: Zeroizing<Vec<u8>>,
    /// A legacy `Proc-Type: 4,ENCRYPTED` header (an encrypted key).
    pub(crate) encrypted: bool,
}

impl fmt::Debug for PemBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PemBlock")
            .field("label", &self.label)
            .field("der", &format_args!("[{} bytes]", self.der.len()))
            .field("encrypted", &self.encrypted)
            .finish()
    }
}

/// The PEM blocks of `text`, in order; text outside blocks is ignored
/// (OpenSSL writes `subject=` lines before certificates). `field` names
/// the request field in messages.
pub(crate) fn pem_blocks(text: &str, field: &str) -> Result<Vec<PemBlock>> {
    struct Open {
        label: String,
        body: Zeroizing<String>,
        encrypted: bool,
    }
    let mut out = Vec::new();
    let mut open: Option<Open> = None;
    for line in text.lines() {
        let line = line.trim();
        let begin = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"));
        let end = line
            .strip_prefix("-----END ")
            .and_then(|l| l.strip_suffix("-----"));
        match open.take() {
            None => {
                if let Some(label) = begin {
                    open = Some(Open {
                        label: label.to_owned(),
                        // Room for the whole text: no reallocation leaves
                        // copies of a key behind.
                        body: Zeroizing::new(String::with_capacity(text.len())),
                        encrypted: false,
                    });
                } else if let Some(label) = end {
                    return Err(invalid(format!(
                        "{field}: the PEM text has \"-----END {label}-----\" without its BEGIN line"
                    )));
                }
            }
            Some(mut block) => {
                if let Some(label) = end {
                    if label != block.label {
                        return Err(invalid(format!(
                            "{field}: the PEM block \"BEGIN {}\" ends with \"END {label}\"",
                            block.label
                        )));
                    }
                    let der = Zeroizing::new(B64.decode(block.body.as_bytes()).map_err(|_| {
                        invalid(format!(
                            "{field}: the {} PEM block is not valid base64",
                            block.label
                        ))
                    })?);
                    out.push(PemBlock {
                        label: block.label,
                        der,
                        encrypted: block.encrypted,
                    });
                } else if begin.is_some() {
                    return Err(invalid(format!(
                        "{field}: the {} PEM block has no END line",
                        block.label
                    )));
                } else {
                    if line.contains(':') {
                        // RFC 1421 headers (legacy encrypted keys).
                        if line.starts_with("Proc-Type") && line.contains("ENCRYPTED") {
                            block.encrypted = true;
                        }
                    } else {
                        block.body.push_str(line);
                    }
                    open = Some(block);
                }
            }
        }
    }
    if let Some(block) = open {
        return Err(invalid(format!(
            "{field}: the {} PEM block has no END line",
            block.label
        )));
    }
    Ok(out)
}

/// PEM text of `der` under `label` (64-column lines, `\n` endings).
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII: every chunk is UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

// ---------------------------------------------------------------------------
// Generation, import, chains, stored form, public parts.

/// The encodings a caller's private key may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PrivateKeyFormat {
    /// PKCS#8 `PrivateKeyInfo` (PEM "PRIVATE KEY", or DER).
    Pkcs8,
    /// SEC1 `ECPrivateKey` (PEM "EC PRIVATE KEY").
    Sec1,
    /// PKCS#1 `RSAPrivateKey` (PEM "RSA PRIVATE KEY").
    Pkcs1,
}

const EC_CURVES: [(&EcdsaSigningAlgorithm, &str, Option<KeyAlg>); 3] = [
    (
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        "an EC P-256 key",
        Some(KeyAlg::Ec256),
    ),
    (
        &ECDSA_P384_SHA384_ASN1_SIGNING,
        "an EC P-384 key",
        Some(KeyAlg::Ec384),
    ),
    (&ECDSA_P521_SHA512_ASN1_SIGNING, "an EC P-521 key", None),
];

/// What a private key that did not load as the wanted algorithm is
/// (never its contents), and the algorithm that would take it.
fn describe_private_key(format: PrivateKeyFormat, der: &[u8]) -> (String, Option<KeyAlg>) {
    let rsa = |r: std::result::Result<RsaKeyPair, aws_lc_rs::error::KeyRejected>| match r {
        Ok(kp) => {
            let bits = modulus_bits(&kp);
            let alg = KeyAlg::ALL.into_iter().find(|a| a.rsa_bits() == Some(bits));
            Some((format!("a {bits}-bit RSA key"), alg))
        }
        Err(e) if e.description_() == "TooSmall" => Some((
            "an RSA key shorter than 2048 bits (too weak)".to_owned(),
            None,
        )),
        Err(_) => None,
    };
    let found = match format {
        PrivateKeyFormat::Pkcs8 => {
            if Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).is_ok() {
                Some(("an Ed25519 key".to_owned(), Some(KeyAlg::Ed25519)))
            } else if let Some((_, d, a)) = EC_CURVES
                .iter()
                .find(|(alg, ..)| EcdsaKeyPair::from_pkcs8(alg, der).is_ok())
            {
                Some(((*d).to_owned(), *a))
            } else {
                rsa(RsaKeyPair::from_pkcs8(der))
            }
        }
        PrivateKeyFormat::Sec1 => EC_CURVES
            .iter()
            .find(|(alg, ..)| EcdsaKeyPair::from_private_key_der(alg, der).is_ok())
            .map(|(_, d, a)| ((*d).to_owned(), *a)),
        PrivateKeyFormat::Pkcs1 => rsa(RsaKeyPair::from_der(der)),
    };
    found.unwrap_or_else(|| {
        (
            "no private key Coffer can read (expected an unencrypted PKCS#8 key)".to_owned(),
            None,
        )
    })
}

/// The private key of `key_data` (PEM or DER) as PKCS#8 DER, before
/// checking its algorithm.
fn private_key_der(key_data: &[u8]) -> Result<(PrivateKeyFormat, Zeroizing<Vec<u8>>)> {
    if !key_data.windows(11).any(|w| w == b"-----BEGIN ") {
        return Ok((PrivateKeyFormat::Pkcs8, Zeroizing::new(key_data.to_vec())));
    }
    let text =
        std::str::from_utf8(key_data).map_err(|_| invalid("key-data: PEM text must be UTF-8"))?;
    let mut blocks = pem_blocks(text, "key-data")?;
    let n_keys = blocks
        .iter()
        .filter(|b| b.label.ends_with("PRIVATE KEY"))
        .count();
    if n_keys > 1 {
        return Err(invalid(format!(
            "key-data holds {n_keys} private keys: pass exactly one"
        )));
    }
    let Some(pos) = blocks.iter().position(|b| b.label.ends_with("PRIVATE KEY")) else {
        return Err(invalid(
            "key-data has no \"-----BEGIN PRIVATE KEY-----\" block: pass the private key (PKCS#8 PEM or DER)",
        ));
    };
    let block = blocks.swap_remove(pos);
    if block.encrypted {
        return Err(invalid(
            "key-data is an encrypted private key: decrypt it first (openssl pkey -in key.pem -out plain.pem)",
        ));
    }
    let format = match block.label.as_str() {
        "PRIVATE KEY" => PrivateKeyFormat::Pkcs8,
        "EC PRIVATE KEY" => PrivateKeyFormat::Sec1,
        "RSA PRIVATE KEY" => PrivateKeyFormat::Pkcs1,
        "ENCRYPTED PRIVATE KEY" => {
            return Err(invalid(
                "key-data is an encrypted private key: decrypt it first (openssl pkey -in key.pem -out plain.pem)",
            ));
        }
        "OPENSSH PRIVATE KEY" => {
            return Err(invalid(
                "key-data is an OpenSSH private key: convert it to PKCS#8 first (ssh-keygen -p -N \"\" -m PKCS8 -f KEY)",
            ));
        }
        other => {
            return Err(invalid(format!(
                "key-data: a \"{other}\" block is not supported: pass a PKCS#8 \"PRIVATE KEY\", \"EC PRIVATE KEY\" or \"RSA PRIVATE KEY\""
            )));
        }
    };
    Ok((format, block.der))
}

fn random_bytes(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| KeyError::Internal(format!("no random bytes: {e}")))
}

impl KeyMaterial {
    /// New random key of this algorithm: random bytes for AES (AES128GCM
    /// 16, AES256GCM 32, AES128SIV 32, AES256SIV 64), PKCS#8 v1 DER for
    /// RSA, EC and Ed25519 keys.
    pub fn generate(alg: KeyAlg) -> Result<Self> {
        if let Some(n) = alg.aes_key_len() {
            let mut key = Zeroizing::new(vec![0u8; n]);
            random_bytes(&mut key)?;
            return Ok(Self::from_parts(alg, key, None));
        }
        let pkcs8 = match alg {
            KeyAlg::Ed25519 => {
                let kp =
                    Ed25519KeyPair::generate().map_err(internal("generating an Ed25519 key"))?;
                let doc = kp
                    .to_pkcs8v1()
                    .map_err(internal("encoding an Ed25519 key"))?;
                Zeroizing::new(doc.as_ref().to_vec())
            }
            KeyAlg::Ec256 | KeyAlg::Ec384 => {
                let sig_alg = alg
                    .ecdsa(false)
                    .ok_or_else(|| KeyError::Internal(format!("no ECDSA algorithm for {alg}")))?;
                let kp =
                    EcdsaKeyPair::generate(sig_alg).map_err(internal("generating an EC key"))?;
                let doc = kp.to_pkcs8v1().map_err(internal("encoding an EC key"))?;
                Zeroizing::new(doc.as_ref().to_vec())
            }
            _ => {
                use aws_lc_rs::rsa::KeySize;
                let size = match alg {
                    KeyAlg::Rsa2048 => KeySize::Rsa2048,
                    KeyAlg::Rsa3072 => KeySize::Rsa3072,
                    _ => KeySize::Rsa4096,
                };
                let kp = RsaKeyPair::generate(size).map_err(internal("generating an RSA key"))?;
                let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> =
                    kp.as_der().map_err(internal("encoding an RSA key"))?;
                Zeroizing::new(der.as_ref().to_vec())
            }
        };
        Ok(Self::from_parts(alg, pkcs8, None))
    }

    /// The caller's own key (`key-data` of create-classic-key): for AES the
    /// raw key bytes of exactly the algorithm's size; otherwise a private
    /// key as PKCS#8 (PEM "PRIVATE KEY" or DER), SEC1 ("EC PRIVATE KEY")
    /// or PKCS#1 ("RSA PRIVATE KEY") PEM, stored as PKCS#8 v1. A key that
    /// is not of `alg` (type, curve, RSA size) is refused.
    pub fn import(alg: KeyAlg, key_data: &[u8]) -> Result<Self> {
        if let Some(n) = alg.aes_key_len() {
            if key_data.len() != n {
                return Err(invalid(format!(
                    "key-data must be the raw {n}-byte key of a {alg} key ({} bytes given): {}",
                    key_data.len(),
                    match alg {
                        KeyAlg::Aes128Siv | KeyAlg::Aes256Siv =>
                            "an SIV key is two AES keys, so it is twice the AES key size",
                        _ => "pass the key bytes themselves",
                    }
                )));
            }
            return Ok(Self::from_parts(
                alg,
                Zeroizing::new(key_data.to_vec()),
                None,
            ));
        }
        if key_data.is_empty() {
            return Err(invalid(format!(
                "key-data is empty: pass {} as a PKCS#8 private key (PEM or DER)",
                alg.key_description()
            )));
        }
        let (format, der) = private_key_der(key_data)?;
        let loaded: Option<Zeroizing<Vec<u8>>> = match alg {
            KeyAlg::Ed25519 => match format {
                PrivateKeyFormat::Pkcs8 => Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
                    .ok()
                    .map(|kp| kp.to_pkcs8v1().map_err(internal("encoding an Ed25519 key")))
                    .transpose()?
                    .map(|doc| Zeroizing::new(doc.as_ref().to_vec())),
                _ => None,
            },
            KeyAlg::Ec256 | KeyAlg::Ec384 => {
                let sig_alg = alg
                    .ecdsa(false)
                    .ok_or_else(|| KeyError::Internal(format!("no ECDSA algorithm for {alg}")))?;
                let kp = match format {
                    PrivateKeyFormat::Pkcs8 => EcdsaKeyPair::from_pkcs8(sig_alg, &der).ok(),
                    PrivateKeyFormat::Sec1 => {
                        EcdsaKeyPair::from_private_key_der(sig_alg, &der).ok()
                    }
                    PrivateKeyFormat::Pkcs1 => None,
                };
                kp.map(|kp| kp.to_pkcs8v1().map_err(internal("encoding an EC key")))
                    .transpose()?
                    .map(|doc| Zeroizing::new(doc.as_ref().to_vec()))
            }
            _ => {
                let kp = match format {
                    PrivateKeyFormat::Pkcs8 => RsaKeyPair::from_pkcs8(&der).ok(),
                    PrivateKeyFormat::Pkcs1 => RsaKeyPair::from_der(&der).ok(),
                    PrivateKeyFormat::Sec1 => None,
                };
                match kp {
                    Some(kp) if Some(modulus_bits(&kp)) == alg.rsa_bits() => {
                        let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> =
                            kp.as_der().map_err(internal("encoding an RSA key"))?;
                        Some(Zeroizing::new(der.as_ref().to_vec()))
                    }
                    _ => None,
                }
            }
        };
        match loaded {
            Some(pkcs8) => Ok(Self::from_parts(alg, pkcs8, None)),
            None => {
                let (found, fits) = describe_private_key(format, &der);
                let hint = match fits {
                    Some(a) => format!(
                        "pass {} or create the key with alg {a}",
                        alg.key_description()
                    ),
                    None => format!("pass {}", alg.key_description()),
                };
                Err(invalid(format!(
                    "key-data holds {found}, but alg {alg} needs {}: {hint}",
                    alg.key_description()
                )))
            }
        }
    }

    /// Attach a certificate chain (PEM, leaf first). Every block must be a
    /// CERTIFICATE that parses as X.509, the leaf must certify this key's
    /// public key, and each certificate must be issued by the next one.
    /// Returns the key with the chain in normalised PEM.
    pub fn with_certificate_chain(self, pem_chain: &str) -> Result<Self> {
        const FIELD: &str = "certificate-chain";
        if self.alg.is_symmetric() {
            return Err(invalid(format!(
                "{FIELD}: an AES key has no public part, so no certificate can certify it"
            )));
        }
        let blocks = pem_blocks(pem_chain, FIELD)?;
        if blocks.is_empty() {
            return Err(invalid(format!(
                "{FIELD} has no \"-----BEGIN CERTIFICATE-----\" block: pass the PEM certificates, this key's first"
            )));
        }
        if let Some(b) = blocks.iter().find(|b| b.label != "CERTIFICATE") {
            return Err(invalid(format!(
                "{FIELD}: a \"{}\" block is not a certificate: pass only CERTIFICATE blocks, this key's first",
                b.label
            )));
        }
        let mut certs = Vec::with_capacity(blocks.len());
        for (i, b) in blocks.iter().enumerate() {
            match x509_parser::parse_x509_certificate(&b.der) {
                Ok(([], cert)) => certs.push(cert),
                Ok(_) => {
                    return Err(invalid(format!(
                        "{FIELD}: certificate {} has trailing bytes after the X.509 structure",
                        i + 1
                    )));
                }
                Err(e) => {
                    return Err(invalid(format!(
                        "{FIELD}: certificate {} is not an X.509 certificate ({e})",
                        i + 1
                    )));
                }
            }
        }
        let spki = self.spki_der()?;
        if certs[0].tbs_certificate.subject_pki.raw != spki.as_slice() {
            return Err(invalid(format!(
                "{FIELD}: the first certificate (subject \"{}\") is for another public key: the chain must start with this key's certificate",
                certs[0].subject()
            )));
        }
        for (i, pair) in certs.windows(2).enumerate() {
            let (cert, issuer) = (&pair[0], &pair[1]);
            if cert.issuer().as_raw() != issuer.subject().as_raw() {
                return Err(invalid(format!(
                    "{FIELD}: certificate {} was issued by \"{}\", but certificate {} is \"{}\": order the chain leaf first, each certificate followed by its issuer's",
                    i + 1,
                    cert.issuer(),
                    i + 2,
                    issuer.subject()
                )));
            }
            match cert.verify_signature(Some(issuer.public_key())) {
                Ok(()) | Err(x509_parser::error::X509Error::SignatureUnsupportedAlgorithm) => {}
                Err(_) => {
                    return Err(invalid(format!(
                        "{FIELD}: certificate {} is not signed by the key of certificate {} (\"{}\")",
                        i + 1,
                        i + 2,
                        issuer.subject()
                    )));
                }
            }
        }
        let mut chain = String::new();
        for b in &blocks {
            chain.push_str(&pem_encode("CERTIFICATE", &b.der));
        }
        drop(certs);
        Ok(Self {
            certificate_chain: Some(chain),
            ..self
        })
    }

    /// Sealed-storage form: JSON `{"alg": …, "key": base64(secret),
    /// "chain": PEM}` (`chain` only when there is one).
    pub fn to_stored(&self) -> Zeroizing<String> {
        #[derive(Serialize)]
        struct StoredRef<'a> {
            alg: KeyAlg,
            key: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            chain: Option<&'a str>,
        }
        let key = Zeroizing::new(B64.encode(&*self.secret));
        let chain = self.certificate_chain.as_deref();
        // One allocation large enough for the whole text (JSON escapes at
        // most double the chain): no reallocation leaves key copies behind.
        let mut buf = Zeroizing::new(Vec::with_capacity(
            key.len() + 2 * chain.map_or(0, str::len) + 64,
        ));
        let stored = StoredRef {
            alg: self.alg,
            key: &key,
            chain,
        };
        // Serializing plain strings into a Vec cannot fail.
        if serde_json::to_writer(&mut *buf, &stored).is_err() {
            buf.clear();
        }
        let text = String::from_utf8(std::mem::take(&mut *buf)).unwrap_or_default();
        Zeroizing::new(text)
    }

    /// Read what [`KeyMaterial::to_stored`] wrote; the key must load as
    /// its algorithm.
    pub fn from_stored(s: &str) -> Result<Self> {
        #[derive(Deserialize)]
        struct Stored<'a> {
            alg: KeyAlg,
            #[serde(borrow)]
            key: &'a str,
            #[serde(default)]
            chain: Option<String>,
        }
        let stored: Stored<'_> = serde_json::from_str(s).map_err(|e| {
            KeyError::Internal(format!(
                "the stored key is malformed (at line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let secret =
            Zeroizing::new(B64.decode(stored.key).map_err(|_| {
                KeyError::Internal("the stored key is not valid base64".to_owned())
            })?);
        let key = Self::from_parts(stored.alg, secret, stored.chain);
        key.check()?;
        Ok(key)
    }

    /// SubjectPublicKeyInfo DER of the public part.
    pub fn spki_der(&self) -> Result<Vec<u8>> {
        let der = match self.alg {
            KeyAlg::Ed25519 => self.ed25519_key_pair()?.public_key().as_der(),
            KeyAlg::Ec256 | KeyAlg::Ec384 => self.ecdsa_key_pair(false)?.public_key().as_der(),
            KeyAlg::Rsa2048 | KeyAlg::Rsa3072 | KeyAlg::Rsa4096 => {
                self.rsa_key_pair()?.public_key().as_der()
            }
            _ => return Err(no_public_part()),
        }
        .map_err(internal("encoding the public key"))?;
        Ok(der.as_ref().to_vec())
    }

    /// The public part as SPKI PEM, base64 SPKI DER and an OpenSSH line.
    pub fn public_key(&self) -> Result<PublicKey> {
        let spki = self.spki_der()?;
        let ssh = ssh_key::PublicKey::new(self.ssh_public_key()?, "")
            .to_openssh()
            .map_err(|e| KeyError::Internal(format!("encoding the SSH public key: {e}")))?;
        Ok(PublicKey {
            pem: pem_encode("PUBLIC KEY", &spki),
            raw: B64.encode(&spki),
            ssh,
        })
    }

    /// The SSH public key of this key: Ed25519, ECDSA P-256/P-384 or RSA.
    pub fn ssh_public_key(&self) -> Result<ssh_key::public::KeyData> {
        use ssh_key::public::{EcdsaPublicKey, Ed25519PublicKey, KeyData, RsaPublicKey};
        let ssh_err =
            |e: ssh_key::Error| KeyError::Internal(format!("encoding the SSH public key: {e}"));
        match self.alg {
            KeyAlg::Ed25519 => {
                let kp = self.ed25519_key_pair()?;
                let pk = Ed25519PublicKey::try_from(kp.public_key().as_ref()).map_err(ssh_err)?;
                Ok(KeyData::Ed25519(pk))
            }
            KeyAlg::Ec256 | KeyAlg::Ec384 => {
                let kp = self.ecdsa_key_pair(false)?;
                let pk =
                    EcdsaPublicKey::from_sec1_bytes(kp.public_key().as_ref()).map_err(ssh_err)?;
                Ok(KeyData::Ecdsa(pk))
            }
            KeyAlg::Rsa2048 | KeyAlg::Rsa3072 | KeyAlg::Rsa4096 => {
                let kp = self.rsa_key_pair()?;
                let pk = kp.public_key();
                let e = ssh_key::Mpint::from_positive_bytes(
                    pk.exponent().big_endian_without_leading_zero(),
                )
                .map_err(ssh_err)?;
                let n = ssh_key::Mpint::from_positive_bytes(
                    pk.modulus().big_endian_without_leading_zero(),
                )
                .map_err(ssh_err)?;
                Ok(KeyData::Rsa(RsaPublicKey { e, n }))
            }
            _ => Err(no_public_part()),
        }
    }
}

fn no_public_part() -> KeyError {
    invalid("an AES key has no public part: only RSA, EC and Ed25519 keys have a public key")
}

/// The public part of a key, as `get-rsa-public` / `get-public-key` give it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicKey {
    /// `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo) PEM.
    pub pem: String,
    /// base64 (standard, no line breaks) of the SubjectPublicKeyInfo DER.
    pub raw: String,
    /// One OpenSSH `authorized_keys` line without a comment.
    pub ssh: String,
}

/// The subject of a self-signed CA certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateSubject {
    pub common_name: String,
    pub organization: Option<String>,
    pub country: Option<String>,
    pub locality: Option<String>,
    pub province: Option<String>,
}

/// Check one subject attribute; returns it trimmed (None when empty).
fn subject_attr(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    if v.chars().count() > max {
        return Err(invalid(format!(
            "{field} is {} characters long: at most {max} are allowed",
            v.chars().count()
        )));
    }
    Ok(Some(v.to_owned()))
}

/// Sign `msg` with the caller's own private key (`key_data`: PEM
/// "PRIVATE KEY", "EC PRIVATE KEY" or "RSA PRIVATE KEY", or PKCS#8 DER),
/// as a client proving it holds a certificate's key (`coffer auth
/// --access-type cert`): RSA PKCS#1 v1.5 with SHA-256, ECDSA (DER) with
/// SHA-256 on P-256 or SHA-384 on P-384, or Ed25519.
pub fn sign_with_private_key(key_data: &[u8], msg: &[u8]) -> Result<Vec<u8>> {
    use rcgen::SigningKey as _;
    let key = KeyAlg::ALL
        .into_iter()
        .filter(|a| !a.is_symmetric())
        .find_map(|a| KeyMaterial::import(a, key_data).ok())
        .ok_or_else(|| {
            invalid(
                "the key file is not an unencrypted private key Coffer can use (PEM \"PRIVATE KEY\", \"EC PRIVATE KEY\" or \"RSA PRIVATE KEY\": RSA 2048/3072/4096, EC P-256/P-384 or Ed25519)",
            )
        })?;
    key.rcgen_key_pair()?
        .sign(msg)
        .map_err(|e| KeyError::Internal(format!("signing with the {} key: {e}", key.alg)))
}

/// A self-signed CA certificate (PEM) for `key`: random positive 128-bit
/// serial, notBefore `now` − 60 s, notAfter `now` + `ttl_days`,
/// BasicConstraints CA:TRUE (critical, no path length limit), KeyUsage
/// keyCertSign + cRLSign + digitalSignature (critical), SubjectKeyIdentifier.
pub fn self_signed_ca(
    key: &KeyMaterial,
    subject: &CertificateSubject,
    ttl_days: u32,
    now: time::OffsetDateTime,
) -> Result<String> {
    if !(1..=36500).contains(&ttl_days) {
        return Err(invalid(format!(
            "certificate-ttl must be 1 to 36500 days ({ttl_days} given)"
        )));
    }
    let Some(cn) = subject_attr("certificate-common-name", Some(&subject.common_name), 64)? else {
        return Err(invalid(
            "certificate-common-name is required for a self-signed certificate (e.g. \"Example Root CA\")",
        ));
    };
    let org = subject_attr(
        "certificate-organization",
        subject.organization.as_deref(),
        64,
    )?;
    let locality = subject_attr("certificate-locality", subject.locality.as_deref(), 128)?;
    let province = subject_attr("certificate-province", subject.province.as_deref(), 128)?;
    let country = subject_attr("certificate-country", subject.country.as_deref(), 2)?;
    let country = match country {
        Some(c) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()) => {
            Some(c.to_ascii_uppercase())
        }
        Some(c) => {
            return Err(invalid(format!(
                "certificate-country must be a two-letter ISO 3166 code such as \"US\" ({c:?} given)"
            )));
        }
        None => None,
    };
    if key.alg().is_symmetric() {
        return Err(invalid(format!(
            "generate-self-signed-certificate needs an RSA, EC or Ed25519 key: a {} key has no public part",
            key.alg()
        )));
    }
    let key_pair = key.rcgen_key_pair()?;

    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    if let Some(c) = country {
        let c = rcgen::string::PrintableString::try_from(c.as_str()).map_err(|_| {
            invalid("certificate-country must be a two-letter ISO 3166 code such as \"US\"")
        })?;
        dn.push(
            rcgen::DnType::CountryName,
            rcgen::DnValue::PrintableString(c),
        );
    }
    if let Some(p) = province {
        dn.push(rcgen::DnType::StateOrProvinceName, p);
    }
    if let Some(l) = locality {
        dn.push(rcgen::DnType::LocalityName, l);
    }
    if let Some(o) = org {
        dn.push(rcgen::DnType::OrganizationName, o);
    }
    dn.push(rcgen::DnType::CommonName, cn);
    params.distinguished_name = dn;
    let mut serial = [0u8; 16];
    random_bytes(&mut serial)?;
    if serial.iter().all(|b| *b == 0) {
        serial[15] = 1;
    }
    // rcgen writes the bytes as a positive INTEGER (a leading 0x00 when
    // the top bit is set, leading zero bytes dropped).
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    params.not_before = now - time::Duration::seconds(60);
    params.not_after = now + time::Duration::days(i64::from(ttl_days));
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    params.use_authority_key_identifier_extension = false;
    let cert = params
        .self_signed(&key_pair)
        .map_err(|e| KeyError::Internal(format!("signing the self-signed certificate: {e}")))?;
    Ok(cert.pem())
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::extensions::ParsedExtension;
    use x509_parser::prelude::FromDer;

    const ASYMMETRIC: [KeyAlg; 6] = [
        KeyAlg::Rsa2048,
        KeyAlg::Rsa3072,
        KeyAlg::Rsa4096,
        KeyAlg::Ec256,
        KeyAlg::Ec384,
        KeyAlg::Ed25519,
    ];

    fn now() -> time::OffsetDateTime {
        time::macros::datetime!(2030-01-02 03:04:05 UTC)
    }

    fn msg(e: KeyError) -> String {
        match e {
            KeyError::Invalid(m) => m,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn subject(cn: &str) -> CertificateSubject {
        CertificateSubject {
            common_name: cn.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn aes_keys_have_the_algorithm_size() {
        for (alg, n) in [
            (KeyAlg::Aes128Gcm, 16),
            (KeyAlg::Aes256Gcm, 32),
            (KeyAlg::Aes128Siv, 32),
            (KeyAlg::Aes256Siv, 64),
        ] {
            let k = KeyMaterial::generate(alg).unwrap();
            assert_eq!(k.alg(), alg);
            assert_eq!(k.secret().len(), n, "{alg}");
            assert!(k.certificate_chain().is_none());
            let k2 = KeyMaterial::generate(alg).unwrap();
            assert_ne!(k.secret(), k2.secret(), "{alg}: keys are random");
        }
    }

    #[test]
    fn generated_asymmetric_keys_load_everywhere() {
        for alg in ASYMMETRIC {
            let k = KeyMaterial::generate(alg).unwrap();
            k.check().unwrap();
            k.rcgen_key_pair().unwrap();
            let spki = k.spki_der().unwrap();
            let (rest, parsed) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki).unwrap();
            assert!(rest.is_empty());
            match (alg, parsed.parsed().unwrap()) {
                (
                    KeyAlg::Rsa2048 | KeyAlg::Rsa3072 | KeyAlg::Rsa4096,
                    x509_parser::public_key::PublicKey::RSA(r),
                ) => {
                    assert_eq!(Some(r.key_size()), alg.rsa_bits());
                }
                (KeyAlg::Ec256, x509_parser::public_key::PublicKey::EC(p)) => {
                    assert_eq!(p.key_size(), 256)
                }
                (KeyAlg::Ec384, x509_parser::public_key::PublicKey::EC(p)) => {
                    assert_eq!(p.key_size(), 384)
                }
                (KeyAlg::Ed25519, _) => {
                    assert_eq!(parsed.subject_public_key.data.len(), 32)
                }
                (a, p) => panic!("{a}: unexpected public key {p:?}"),
            }
            // The rcgen key pair and the SPKI agree.
            assert_eq!(
                rcgen::PublicKeyData::subject_public_key_info(&k.rcgen_key_pair().unwrap()),
                spki,
                "{alg}"
            );
        }
    }

    #[test]
    fn ed25519_is_stored_as_pkcs8_v1() {
        let k = KeyMaterial::generate(KeyAlg::Ed25519).unwrap();
        // SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING (32) } }
        assert_eq!(k.secret().len(), 48);
        assert_eq!(&k.secret()[..5], &[0x30, 0x2e, 0x02, 0x01, 0x00]);
        // A v2 document (with the public key) imports and is stored as v1.
        let v2 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
        assert_eq!(v2.as_ref()[4], 0x01, "aws-lc-rs makes v2");
        let imported = KeyMaterial::import(KeyAlg::Ed25519, v2.as_ref()).unwrap();
        assert_eq!(imported.secret().len(), 48);
        let direct = Ed25519KeyPair::from_pkcs8(v2.as_ref()).unwrap();
        assert_eq!(
            imported.ed25519_key_pair().unwrap().public_key().as_ref(),
            direct.public_key().as_ref()
        );
    }

    #[test]
    fn stored_form_round_trips() {
        for alg in KeyAlg::ALL {
            let k = KeyMaterial::generate(alg).unwrap();
            let s = k.to_stored();
            let v: serde_json::Value = serde_json::from_str(&s).unwrap();
            assert_eq!(v["alg"], alg.as_str());
            assert!(v.get("chain").is_none());
            let back = KeyMaterial::from_stored(&s).unwrap();
            assert_eq!(back.alg(), alg);
            assert_eq!(back.secret(), k.secret());
            assert!(back.certificate_chain().is_none());
        }
        let k = KeyMaterial::generate(KeyAlg::Ec256).unwrap();
        let ca = self_signed_ca(&k, &subject("Root"), 10, now()).unwrap();
        let k = k.with_certificate_chain(&ca).unwrap();
        let back = KeyMaterial::from_stored(&k.to_stored()).unwrap();
        assert_eq!(back.certificate_chain(), Some(ca.as_str()));
    }

    #[test]
    fn broken_stored_forms_are_refused() {
        for bad in [
            "",
            "{}",
            "not json",
            r#"{"alg":"AES999","key":"AAAA"}"#,
            r#"{"alg":"AES256GCM","key":"!!!"}"#,
            r#"{"alg":"AES256GCM","key":"AAAA"}"#,
        ] {
            assert!(
                matches!(KeyMaterial::from_stored(bad), Err(KeyError::Internal(_))),
                "{bad}"
            );
        }
        // A P-256 key stored under EC384 does not load.
        let k = KeyMaterial::generate(KeyAlg::Ec256).unwrap();
        let s = k.to_stored().replace("EC256", "EC384");
        assert!(matches!(
            KeyMaterial::from_stored(&s),
            Err(KeyError::Internal(_))
        ));
        let k = KeyMaterial::generate(KeyAlg::Rsa2048).unwrap();
        let s = k.to_stored().replace("RSA2048", "RSA3072");
        assert!(matches!(
            KeyMaterial::from_stored(&s),
            Err(KeyError::Internal(_))
        ));
        // Messages never carry the key.
        let k = KeyMaterial::generate(KeyAlg::Aes256Gcm).unwrap();
        let s = k.to_stored().replace("AES256GCM", "AES128GCM");
        let e = KeyMaterial::from_stored(&s).unwrap_err().to_string();
        assert!(!e.contains(&B64.encode(k.secret())));
    }

    #[test]
    fn debug_output_has_no_key_material() {
        let k = KeyMaterial::generate(KeyAlg::Aes128Gcm).unwrap();
        let d = format!("{k:?}");
        assert!(d.contains("redacted"));
        assert!(!d.contains(&B64.encode(k.secret())));
        assert!(!d.contains(&format!("{:?}", k.secret())));
    }

    #[test]
    fn import_round_trips_der_and_pem() {
        for alg in ASYMMETRIC {
            let k = KeyMaterial::generate(alg).unwrap();
            let der = KeyMaterial::import(alg, k.secret()).unwrap();
            assert_eq!(der.spki_der().unwrap(), k.spki_der().unwrap(), "{alg}");
            let pem = pem_encode("PRIVATE KEY", k.secret());
            let from_pem = KeyMaterial::import(alg, pem.as_bytes()).unwrap();
            assert_eq!(from_pem.secret(), k.secret(), "{alg}: stored as generated");
            // Surrounding text and CRLF line ends are fine.
            let crlf = format!("my key\r\n{}", pem.replace('\n', "\r\n"));
            let k3 = KeyMaterial::import(alg, crlf.as_bytes()).unwrap();
            assert_eq!(k3.spki_der().unwrap(), k.spki_der().unwrap());
        }
        for alg in [
            KeyAlg::Aes128Gcm,
            KeyAlg::Aes256Gcm,
            KeyAlg::Aes128Siv,
            KeyAlg::Aes256Siv,
        ] {
            let k = KeyMaterial::generate(alg).unwrap();
            let i = KeyMaterial::import(alg, k.secret()).unwrap();
            assert_eq!(i.secret(), k.secret());
        }
    }

    #[test]
    fn sec1_ec_keys_import_as_pkcs8() {
        for (alg, sig_alg) in [
            (KeyAlg::Ec256, &ECDSA_P256_SHA256_ASN1_SIGNING),
            (KeyAlg::Ec384, &ECDSA_P384_SHA384_ASN1_SIGNING),
        ] {
            let kp = EcdsaKeyPair::generate(sig_alg).unwrap();
            let sec1: aws_lc_rs::encoding::EcPrivateKeyRfc5915Der<'_> =
                kp.private_key().as_der().unwrap();
            let pem = pem_encode("EC PRIVATE KEY", sec1.as_ref());
            let k = KeyMaterial::import(alg, pem.as_bytes()).unwrap();
            assert_eq!(
                k.spki_der().unwrap(),
                kp.public_key().as_der().unwrap().as_ref()
            );
            // Stored as PKCS#8.
            EcdsaKeyPair::from_pkcs8(sig_alg, k.secret()).unwrap();
        }
        // A P-384 SEC1 key is not an EC256 key.
        let kp = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_ASN1_SIGNING).unwrap();
        let sec1: aws_lc_rs::encoding::EcPrivateKeyRfc5915Der<'_> =
            kp.private_key().as_der().unwrap();
        let pem = pem_encode("EC PRIVATE KEY", sec1.as_ref());
        let m = msg(KeyMaterial::import(KeyAlg::Ec256, pem.as_bytes()).unwrap_err());
        assert!(m.contains("key-data holds an EC P-384 key"), "{m}");
        assert!(m.contains("alg EC384"), "{m}");
    }

    #[test]
    fn wrong_algorithm_imports_are_refused() {
        let cases = [
            (KeyAlg::Ec384, KeyAlg::Ec256, "an EC P-384 key", "EC384"),
            (KeyAlg::Ec256, KeyAlg::Ec384, "an EC P-256 key", "EC256"),
            (
                KeyAlg::Rsa2048,
                KeyAlg::Rsa3072,
                "a 2048-bit RSA key",
                "RSA2048",
            ),
            (
                KeyAlg::Rsa3072,
                KeyAlg::Ed25519,
                "a 3072-bit RSA key",
                "RSA3072",
            ),
            (
                KeyAlg::Ed25519,
                KeyAlg::Rsa2048,
                "an Ed25519 key",
                "Ed25519",
            ),
            (KeyAlg::Ed25519, KeyAlg::Ec256, "an Ed25519 key", "Ed25519"),
        ];
        for (have, want, found, fits) in cases {
            let k = KeyMaterial::generate(have).unwrap();
            let e = KeyMaterial::import(want, k.secret()).unwrap_err();
            let m = msg(e);
            assert!(m.starts_with("key-data holds "), "{m}");
            assert!(m.contains(found), "{m}");
            assert!(
                m.contains(&format!("alg {want} needs {}", want.key_description())),
                "{m}"
            );
            assert!(
                m.contains(&format!("create the key with alg {fits}")),
                "{m}"
            );
            assert!(!m.contains(&B64.encode(k.secret())));
        }
        // Asymmetric key data for an AES key: a size error.
        let k = KeyMaterial::generate(KeyAlg::Ec256).unwrap();
        let m = msg(KeyMaterial::import(KeyAlg::Aes256Gcm, k.secret()).unwrap_err());
        assert!(m.starts_with("key-data must be the raw 32-byte key"), "{m}");
        let m = msg(KeyMaterial::import(KeyAlg::Aes128Siv, &[0u8; 16]).unwrap_err());
        assert!(m.contains("SIV key is two AES keys"), "{m}");
        // AES bytes for an asymmetric key.
        let m = msg(KeyMaterial::import(KeyAlg::Ec256, &[7u8; 32]).unwrap_err());
        assert!(m.contains("no private key Coffer can read"), "{m}");
        let m = msg(KeyMaterial::import(KeyAlg::Rsa2048, b"").unwrap_err());
        assert!(m.starts_with("key-data is empty"), "{m}");
    }

    #[test]
    fn unusable_pem_is_refused_with_the_reason() {
        let k = KeyMaterial::generate(KeyAlg::Ec256).unwrap();
        let pem = pem_encode("PRIVATE KEY", k.secret());
        let cases: Vec<(String, &str)> = vec![
            (pem.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY"), "encrypted"),
            (pem.replace("PRIVATE KEY", "OPENSSH PRIVATE KEY"), "OpenSSH private key"),
            (
                pem.replace("BEGIN PRIVATE KEY-----\n", "BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n")
                    .replace("END PRIVATE KEY", "END EC PRIVATE KEY"),
                "encrypted",
            ),
            (format!("{pem}{pem}"), "2 private keys"),
            (pem.replace("PRIVATE KEY", "PUBLIC KEY"), "no \"-----BEGIN PRIVATE KEY-----\" block"),
            (pem.replace("-----END PRIVATE KEY-----\n", ""), "has no END line"),
            (pem.replace("END PRIVATE KEY", "END RSA PRIVATE KEY"), "ends with"),
            (pem.replace("PRIVATE KEY", "DSA PRIVATE KEY"), "\"DSA PRIVATE KEY\" block is not supported"),
            (
                "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n".to_owned(),
                "not valid base64",
            ),
        ];
        for (text, want) in cases {
            let m = msg(KeyMaterial::import(KeyAlg::Ec256, text.as_bytes()).unwrap_err());
            assert!(m.starts_with("key-data"), "{m}");
            assert!(m.contains(want), "{want}: {m}");
        }
    }

    #[test]
    fn aes_keys_have_no_public_part() {
        for alg in [KeyAlg::Aes128Gcm, KeyAlg::Aes256Siv] {
            let k = KeyMaterial::generate(alg).unwrap();
            let m = msg(k.spki_der().unwrap_err());
            assert!(m.starts_with("an AES key has no public part"), "{m}");
            assert!(matches!(k.public_key(), Err(KeyError::Invalid(_))));
            assert!(matches!(k.ssh_public_key(), Err(KeyError::Invalid(_))));
            assert!(matches!(k.rcgen_key_pair(), Err(KeyError::Invalid(_))));
        }
    }

    #[test]
    fn public_key_forms() {
        for (alg, prefix, bits) in [
            (KeyAlg::Ed25519, "ssh-ed25519 AAAA", 0),
            (KeyAlg::Ec256, "ecdsa-sha2-nistp256 AAAA", 0),
            (KeyAlg::Ec384, "ecdsa-sha2-nistp384 AAAA", 0),
            (KeyAlg::Rsa2048, "ssh-rsa AAAA", 2048),
            (KeyAlg::Rsa4096, "ssh-rsa AAAA", 4096),
        ] {
            let k = KeyMaterial::generate(alg).unwrap();
            let p = k.public_key().unwrap();
            let spki = k.spki_der().unwrap();
            assert_eq!(B64.decode(&p.raw).unwrap(), spki);
            assert!(!p.raw.contains('\n'));
            assert!(p.pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
            assert!(p.pem.ends_with("-----END PUBLIC KEY-----\n"));
            assert!(p.pem.lines().all(|l| l.len() <= 64));
            let blocks = pem_blocks(&p.pem, "t").unwrap();
            assert_eq!(*blocks[0].der, spki);
            assert!(p.ssh.starts_with(prefix), "{}", p.ssh);
            assert_eq!(p.ssh.split(' ').count(), 2, "no comment: {}", p.ssh);
            let parsed = ssh_key::PublicKey::from_openssh(&p.ssh).unwrap();
            assert_eq!(parsed.key_data(), &k.ssh_public_key().unwrap());
            if bits > 0 {
                let rsa = parsed.key_data().rsa().unwrap();
                assert_eq!(rsa.n.as_positive_bytes().unwrap().len() * 8, bits);
                assert_eq!(rsa.e.as_positive_bytes().unwrap(), &[1, 0, 1]);
            }
            let json = serde_json::to_value(&p).unwrap();
            assert_eq!(json["ssh"], p.ssh);
        }
    }

    fn check_ca(alg: KeyAlg) {
        let k = KeyMaterial::generate(alg).unwrap();
        let s = CertificateSubject {
            common_name: "Example Root CA".into(),
            organization: Some("Example Ltd".into()),
            country: Some("gb".into()),
            locality: Some("London".into()),
            province: Some("Greater London".into()),
        };
        let pem = self_signed_ca(&k, &s, 3650, now()).unwrap();
        let blocks = pem_blocks(&pem, "t").unwrap();
        assert_eq!(blocks.len(), 1);
        let (_, cert) = x509_parser::parse_x509_certificate(&blocks[0].der).unwrap();
        assert_eq!(
            cert.subject().to_string(),
            "C=GB, ST=Greater London, L=London, O=Example Ltd, CN=Example Root CA"
        );
        assert_eq!(cert.subject(), cert.issuer());
        assert_eq!(
            cert.tbs_certificate.subject_pki.raw,
            k.spki_der().unwrap().as_slice()
        );
        cert.verify_signature(None).unwrap();
        assert_eq!(
            cert.validity().not_before.timestamp(),
            (now() - time::Duration::seconds(60)).unix_timestamp()
        );
        assert_eq!(
            cert.validity().not_after.timestamp(),
            (now() + time::Duration::days(3650)).unix_timestamp()
        );
        let serial = cert.raw_serial();
        assert!(
            serial.len() <= 17 && serial[0] & 0x80 == 0,
            "positive serial"
        );
        let mut seen = (false, false, false);
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::BasicConstraints(bc) => {
                    assert!(ext.critical && bc.ca && bc.path_len_constraint.is_none());
                    seen.0 = true;
                }
                ParsedExtension::KeyUsage(ku) => {
                    assert!(ext.critical);
                    assert!(ku.key_cert_sign() && ku.crl_sign() && ku.digital_signature());
                    assert!(!ku.key_encipherment());
                    seen.1 = true;
                }
                ParsedExtension::SubjectKeyIdentifier(_) => seen.2 = true,
                other => panic!("unexpected extension {other:?}"),
            }
        }
        assert_eq!(seen, (true, true, true), "{alg}");
        // The key takes its own certificate.
        let k = k.with_certificate_chain(&pem).unwrap();
        assert_eq!(k.certificate_chain(), Some(pem.as_str()));
    }

    #[test]
    fn self_signed_ca_certificates() {
        for alg in [
            KeyAlg::Ed25519,
            KeyAlg::Ec256,
            KeyAlg::Ec384,
            KeyAlg::Rsa2048,
        ] {
            check_ca(alg);
        }
    }

    #[test]
    fn self_signed_ca_serials_differ() {
        let k = KeyMaterial::generate(KeyAlg::Ec256).unwrap();
        let a = self_signed_ca(&k, &subject("A"), 1, now()).unwrap();
        let b = self_signed_ca(&k, &subject("A"), 1, now()).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn self_signed_ca_refusals() {
        let k = KeyMaterial::generate(KeyAlg::Ec256).unwrap();
        for ttl in [0, 36501, u32::MAX] {
            let m = msg(self_signed_ca(&k, &subject("A"), ttl, now()).unwrap_err());
            assert!(
                m.starts_with("certificate-ttl must be 1 to 36500 days"),
                "{m}"
            );
        }
        self_signed_ca(&k, &subject("A"), 36500, now()).unwrap();
        for cn in ["", "   "] {
            let m = msg(self_signed_ca(&k, &subject(cn), 1, now()).unwrap_err());
            assert!(m.starts_with("certificate-common-name is required"), "{m}");
        }
        let m = msg(self_signed_ca(&k, &subject(&"x".repeat(65)), 1, now()).unwrap_err());
        assert!(
            m.starts_with("certificate-common-name is 65 characters"),
            "{m}"
        );
        let m = msg(self_signed_ca(&k, &subject("a\nb"), 1, now()).unwrap_err());
        assert!(m.contains("control characters"), "{m}");
        for c in ["USA", "U1", "Ü"] {
            let s = CertificateSubject {
                country: Some(c.into()),
                ..subject("A")
            };
            let m = msg(self_signed_ca(&k, &s, 1, now()).unwrap_err());
            assert!(m.starts_with("certificate-country"), "{m}");
        }
        // Empty optional attributes are left out.
        let s = CertificateSubject {
            organization: Some(String::new()),
            country: Some(" ".into()),
            ..subject("A")
        };
        self_signed_ca(&k, &s, 1, now()).unwrap();
        let aes = KeyMaterial::generate(KeyAlg::Aes256Gcm).unwrap();
        let m = msg(self_signed_ca(&aes, &subject("A"), 1, now()).unwrap_err());
        assert!(m.contains("AES256GCM key has no public part"), "{m}");
    }

    /// A leaf certificate for `leaf` issued by `issuer` (certified by `issuer_pem`).
    fn issue_leaf(leaf: &KeyMaterial, issuer: &KeyMaterial, issuer_pem: &str) -> String {
        let ca_kp = issuer.rcgen_key_pair().unwrap();
        let ca = rcgen::Issuer::from_ca_cert_pem(issuer_pem, &ca_kp).unwrap();
        let leaf_kp = leaf.rcgen_key_pair().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["leaf.example".to_owned()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "leaf");
        params.signed_by(&leaf_kp, &ca).unwrap().pem()
    }

    #[test]
    fn certificate_chains() {
        let root = KeyMaterial::generate(KeyAlg::Ec384).unwrap();
        let root_pem = self_signed_ca(&root, &subject("Root"), 10, now()).unwrap();
        let leaf = KeyMaterial::generate(KeyAlg::Rsa2048).unwrap();
        let leaf_pem = issue_leaf(&leaf, &root, &root_pem);

        // Leaf first, then its issuer; text between blocks is dropped, CRLF normalised.
        let chain = format!(
            "subject=CN = leaf\r\n{}\r\nissuer=CN = Root\n{root_pem}",
            leaf_pem.replace('\n', "\r\n")
        );
        let leaf = leaf.with_certificate_chain(&chain).unwrap();
        assert_eq!(
            leaf.certificate_chain(),
            Some(format!("{leaf_pem}{root_pem}").as_str())
        );

        // Wrong order: the first certificate is not this key's.
        let other = KeyMaterial::generate(KeyAlg::Rsa2048).unwrap();
        let m = msg(KeyMaterial::import(KeyAlg::Rsa2048, leaf.secret())
            .unwrap()
            .with_certificate_chain(&format!("{root_pem}{leaf_pem}"))
            .unwrap_err());
        assert!(m.starts_with("certificate-chain: the first certificate (subject \"CN=Root\") is for another public key"), "{m}");
        let m = msg(other.with_certificate_chain(&leaf_pem).unwrap_err());
        assert!(m.contains("is for another public key"), "{m}");

        // The next certificate is not the issuer.
        let stranger = KeyMaterial::generate(KeyAlg::Ec256).unwrap();
        let stranger_pem = self_signed_ca(&stranger, &subject("Stranger"), 10, now()).unwrap();
        let leaf2 = KeyMaterial::import(KeyAlg::Rsa2048, leaf.secret()).unwrap();
        let m = msg(leaf2
            .with_certificate_chain(&format!("{leaf_pem}{stranger_pem}"))
            .unwrap_err());
        assert!(
            m.contains(
                "certificate 1 was issued by \"CN=Root\", but certificate 2 is \"CN=Stranger\""
            ),
            "{m}"
        );

        // Same name, other key: the signature does not verify.
        let impostor = KeyMaterial::generate(KeyAlg::Ec384).unwrap();
        let impostor_pem = self_signed_ca(&impostor, &subject("Root"), 10, now()).unwrap();
        let leaf3 = KeyMaterial::import(KeyAlg::Rsa2048, leaf.secret()).unwrap();
        let m = msg(leaf3
            .with_certificate_chain(&format!("{leaf_pem}{impostor_pem}"))
            .unwrap_err());
        assert!(
            m.contains("certificate 1 is not signed by the key of certificate 2"),
            "{m}"
        );
    }

    #[test]
    fn certificate_chain_refusals() {
        let k = KeyMaterial::generate(KeyAlg::Ed25519).unwrap();
        let pem = self_signed_ca(&k, &subject("Root"), 10, now()).unwrap();
        let again = || KeyMaterial::import(KeyAlg::Ed25519, k.secret()).unwrap();
        let key_pem = pem_encode("PRIVATE KEY", k.secret());
        let cases: Vec<(String, &str)> = vec![
            (
                String::new(),
                "has no \"-----BEGIN CERTIFICATE-----\" block",
            ),
            (
                "hello".into(),
                "has no \"-----BEGIN CERTIFICATE-----\" block",
            ),
            (
                format!("{pem}{key_pem}"),
                "a \"PRIVATE KEY\" block is not a certificate",
            ),
            (
                pem_encode("CERTIFICATE", b"garbage"),
                "certificate 1 is not an X.509 certificate",
            ),
            (
                pem.replace("-----END CERTIFICATE-----\n", ""),
                "has no END line",
            ),
        ];
        for (text, want) in cases {
            let m = msg(again().with_certificate_chain(&text).unwrap_err());
            assert!(m.starts_with("certificate-chain"), "{m}");
            assert!(m.contains(want), "{want}: {m}");
            assert!(!m.contains(&B64.encode(k.secret())));
        }
        // Trailing bytes after the certificate.
        let mut der = pem_blocks(&pem, "t").unwrap().remove(0).der.to_vec();
        der.push(0);
        let m = msg(again()
            .with_certificate_chain(&pem_encode("CERTIFICATE", &der))
            .unwrap_err());
        assert!(m.contains("trailing bytes"), "{m}");
        // AES keys take no certificate.
        let aes = KeyMaterial::generate(KeyAlg::Aes128Siv).unwrap();
        let m = msg(aes.with_certificate_chain(&pem).unwrap_err());
        assert!(m.contains("an AES key has no public part"), "{m}");
    }

    #[test]
    fn pem_encoding_round_trips() {
        for n in [0usize, 1, 47, 48, 49, 200] {
            let data: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let pem = pem_encode("X", &data);
            let blocks = pem_blocks(&pem, "t").unwrap();
            assert_eq!(blocks.len(), 1);
            assert_eq!(blocks[0].label, "X");
            assert_eq!(*blocks[0].der, data);
            assert!(!blocks[0].encrypted);
        }
        assert!(
            pem_blocks("-----END X-----\n", "f")
                .unwrap_err()
                .to_string()
                .starts_with("f: ")
        );
    }

    /// The signature `coffer auth --access-type cert` sends verifies with
    /// the key's public half, for each key kind and PEM form; a key Coffer
    /// cannot use is refused with a message, never echoed.
    #[test]
    fn signs_login_challenges_with_the_callers_key() {
        use aws_lc_rs::signature::{
            ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1, ED25519, RSA_PKCS1_2048_8192_SHA256,
            UnparsedPublicKey, VerificationAlgorithm,
        };
        let msg = b"challenge-text";
        let cases: [(&rcgen::SignatureAlgorithm, &dyn VerificationAlgorithm); 4] = [
            (&rcgen::PKCS_ECDSA_P256_SHA256, &ECDSA_P256_SHA256_ASN1),
            (&rcgen::PKCS_ECDSA_P384_SHA384, &ECDSA_P384_SHA384_ASN1),
            (&rcgen::PKCS_ED25519, &ED25519),
            (&rcgen::PKCS_RSA_SHA256, &RSA_PKCS1_2048_8192_SHA256),
        ];
        for (alg, verify) in cases {
            let kp = rcgen::KeyPair::generate_for(alg).unwrap();
            let sig = sign_with_private_key(kp.serialize_pem().as_bytes(), msg).unwrap();
            UnparsedPublicKey::new(verify, kp.public_key_raw())
                .verify(msg, &sig)
                .unwrap_or_else(|_| panic!("{alg:?} signature does not verify"));
            // DER PKCS#8 works too.
            let sig = sign_with_private_key(&kp.serialize_der(), msg).unwrap();
            UnparsedPublicKey::new(verify, kp.public_key_raw())
                .verify(msg, &sig)
                .unwrap();
        }
        let err = sign_with_private_key(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            msg,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not an unencrypted private key"), "{err}");
        assert!(!err.contains("AAAA"), "{err}");
    }
}
