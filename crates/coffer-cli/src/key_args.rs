//! Arguments of the key and certificate commands: keys (`create-key`,
//! `create-classic-key`, `encrypt`, `decrypt`, …), SSH and PKI certificate
//! issuers (`create-ssh-cert-issuer`, `get-pki-certificate`, …) and the
//! issued certificates (`cert list|revoke|crl`). Names and flags follow
//! the Akeyless CLI; lists are comma-separated as there.
//!
//! Files named by `--*-file-path` are read here, on the caller's machine:
//! only their contents travel (a CSR, a public key, a certificate; a
//! private key only for `create-classic-key --key-file-path`, an import).

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, Subcommand};
use secrecy::SecretString;

use crate::args::{GlobalArgs, secret};

/// `key=value` (the value may contain '='), or a bare `key` for an empty
/// value (`permit-pty`).
pub(crate) fn key_value(value: &str) -> Result<(String, String), String> {
    let (k, v) = value.split_once('=').unwrap_or((value, ""));
    let k = k.trim();
    if k.is_empty() {
        return Err(format!("{value:?} has an empty key"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// `key=value` with a value required (an encryption context entry).
fn context_pair(value: &str) -> Result<(String, String), String> {
    if !value.contains('=') {
        return Err(format!("{value:?} is not key=value"));
    }
    key_value(value)
}

// ---- keys ----

/// The self-signed certificate options of `create-key` and
/// `create-classic-key`.
#[derive(Debug, Args)]
pub(crate) struct SelfSignedArgs {
    /// Give the key a self-signed certificate: it becomes a root CA that
    /// PKI issuers can sign with (RSA, EC and Ed25519 keys).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub generate_self_signed_certificate: Option<bool>,
    /// Lifetime of the self-signed certificate, in days.
    #[arg(long)]
    pub certificate_ttl: Option<i64>,
    /// Common name of the self-signed certificate.
    #[arg(long)]
    pub certificate_common_name: Option<String>,
    /// Organization of the self-signed certificate.
    #[arg(long)]
    pub certificate_organization: Option<String>,
    /// Country of the self-signed certificate.
    #[arg(long)]
    pub certificate_country: Option<String>,
    /// Locality of the self-signed certificate.
    #[arg(long)]
    pub certificate_locality: Option<String>,
    /// Province of the self-signed certificate.
    #[arg(long)]
    pub certificate_province: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CreateKeyArgs {
    /// Key name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// AES128GCM, AES256GCM, AES128SIV, AES256SIV, RSA2048, RSA3072,
    /// RSA4096, EC256, EC384 or Ed25519.
    #[arg(long)]
    pub alg: String,
    /// Tag (repeatable).
    #[arg(long = "tag", alias = "tags")]
    pub tags: Vec<String>,
    /// Description.
    #[arg(long, alias = "metadata")]
    pub description: Option<String>,
    #[command(flatten)]
    pub certificate: SelfSignedArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct CreateClassicKeyArgs {
    /// Key name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// AES128GCM, AES256GCM, AES128SIV, AES256SIV, RSA2048, RSA3072,
    /// RSA4096, EC256, EC384 or Ed25519.
    #[arg(long)]
    pub alg: String,
    /// Import this key instead of generating one: base64 of a raw AES key
    /// or of a PKCS#8 DER private key, or PEM text ("-" reads standard input).
    #[arg(long, value_parser = secret, allow_hyphen_values = true, conflicts_with = "key_file_path")]
    pub key_data: Option<SecretString>,
    /// Import the key in this file (PEM, or DER / raw AES bytes).
    #[arg(long)]
    pub key_file_path: Option<PathBuf>,
    /// The key's certificate (PEM, chain leaf first), e.g. an intermediate
    /// CA certificate another CA issued for an imported key.
    #[arg(long, conflicts_with = "generate_self_signed_certificate")]
    pub cert_file_path: Option<PathBuf>,
    /// Tag (repeatable).
    #[arg(long = "tag", alias = "tags")]
    pub tags: Vec<String>,
    /// Description.
    #[arg(long, alias = "metadata")]
    pub description: Option<String>,
    #[command(flatten)]
    pub certificate: SelfSignedArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct KeyNameArgs {
    /// Key name.
    #[arg(short = 'n', long)]
    pub name: String,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct EncryptArgs {
    /// The key (AES, or RSA for small plaintexts).
    #[arg(long)]
    pub key_name: String,
    /// Text to encrypt ("-" reads standard input, as is).
    #[arg(long, value_parser = secret, allow_hyphen_values = true)]
    pub plaintext: SecretString,
    /// Context bound to the ciphertext: key=value (repeatable). Decrypting
    /// needs exactly the same entries.
    #[arg(long = "encryption-context", value_parser = context_pair)]
    pub encryption_context: Vec<(String, String)>,
    /// base64: --plaintext is base64 (binary data).
    #[arg(long, value_parser = ["base64"])]
    pub input_format: Option<String>,
    /// Key version to use (default: the latest).
    #[arg(long)]
    pub version: Option<i64>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DecryptArgs {
    /// The key the ciphertext was made with.
    #[arg(long)]
    pub key_name: String,
    /// The ciphertext (base64, as encrypt printed it).
    #[arg(long)]
    pub ciphertext: String,
    /// The encryption context given to encrypt: key=value (repeatable).
    #[arg(long = "encryption-context", value_parser = context_pair)]
    pub encryption_context: Vec<(String, String)>,
    /// base64: print the plaintext base64-encoded (binary data).
    #[arg(long, value_parser = ["base64"])]
    pub output_format: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UpdateClassicKeyCertificateArgs {
    /// Key name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// The certificate (PEM, chain leaf first) for the key's public key.
    #[arg(long)]
    pub cert_file_path: PathBuf,
    #[command(flatten)]
    pub global: GlobalArgs,
}

// ---- SSH certificate issuers ----

/// Options of `create-ssh-cert-issuer` and `update-ssh-cert-issuer`.
#[derive(Debug, Args)]
pub(crate) struct SshIssuerArgs {
    /// User names callers may ask for (comma-separated; * for any).
    #[arg(long)]
    pub allowed_users: Option<String>,
    /// Principals put in every certificate (comma-separated).
    #[arg(long)]
    pub principals: Option<String>,
    /// Extension of the certificates: name=value or name (repeatable;
    /// default: ssh-keygen's, e.g. permit-pty).
    #[arg(long = "extensions", alias = "extension", value_parser = key_value)]
    pub extensions: Vec<(String, String)>,
    /// Critical option: force-command=…, source-address=… (repeatable).
    #[arg(long = "critical-options", alias = "critical-option", value_parser = key_value)]
    pub critical_options: Vec<(String, String)>,
    /// user (default) or host certificates.
    #[arg(long, value_parser = ["user", "host"])]
    pub cert_type: Option<String>,
    /// Tag (repeatable).
    #[arg(long = "tag", alias = "tags")]
    pub tags: Vec<String>,
    /// Description.
    #[arg(long, alias = "metadata")]
    pub description: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CreateSshCertIssuerArgs {
    /// Issuer name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// The key that signs the certificates (RSA, EC or Ed25519; you need read on it).
    #[arg(long)]
    pub signer_key_name: String,
    /// Longest certificate lifetime: seconds, or e.g. 15m, 24h.
    #[arg(long)]
    pub ttl: String,
    #[command(flatten)]
    pub issuer: SshIssuerArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UpdateSshCertIssuerArgs {
    /// Issuer name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// Another signer key (absent: keep it).
    #[arg(long)]
    pub signer_key_name: Option<String>,
    /// Longest certificate lifetime: seconds, or e.g. 15m, 24h (absent: keep it).
    #[arg(long)]
    pub ttl: Option<String>,
    #[command(flatten)]
    pub issuer: SshIssuerArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct GetSshCertificateArgs {
    /// The SSH certificate issuer.
    #[arg(long)]
    pub cert_issuer_name: String,
    /// User name(s) to certify (comma-separated), as the issuer allows.
    #[arg(long)]
    pub cert_username: String,
    /// The public key file (e.g. ~/.ssh/id_ed25519.pub): the certificate is
    /// written next to it as ssh-keygen does (id_ed25519-cert.pub).
    #[arg(
        long,
        required_unless_present = "public_key_data",
        conflicts_with = "public_key_data"
    )]
    pub public_key_file_path: Option<PathBuf>,
    /// The OpenSSH public key line itself: the certificate is printed.
    #[arg(long)]
    pub public_key_data: Option<String>,
    /// Lifetime: seconds, or e.g. 15m (at most the issuer's ttl).
    #[arg(long)]
    pub ttl: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

// ---- PKI certificate issuers ----

/// The policy of `create-pki-cert-issuer` and `update-pki-cert-issuer`.
#[derive(Debug, Args)]
pub(crate) struct PkiIssuerArgs {
    /// Domains certificates may name (comma-separated), e.g. example.com.
    #[arg(long)]
    pub allowed_domains: Option<String>,
    /// Allow subdomains of --allowed-domains (api.example.com).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub allow_subdomains: Option<bool>,
    /// Allow any name (no domain check).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub allow_any_name: Option<bool>,
    /// Refuse wildcard names (*.example.com).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub disable_wildcards: Option<bool>,
    /// Allow names that are not valid host names.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub not_enforce_hostnames: Option<bool>,
    /// URI SANs allowed (comma-separated; `*` matches within one path segment, e.g. spiffe://example.com/ns/*).
    #[arg(long)]
    pub allowed_uri_sans: Option<String>,
    /// IP SANs allowed (comma-separated addresses or CIDRs).
    #[arg(long)]
    pub allowed_ip_sans: Option<String>,
    /// Certificates are for TLS servers (serverAuth).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub server_flag: Option<bool>,
    /// Certificates are for TLS clients (clientAuth).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub client_flag: Option<bool>,
    /// Certificates sign code (codeSigning).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub code_signing_flag: Option<bool>,
    /// Key usages (comma-separated), e.g. DigitalSignature,KeyEncipherment.
    #[arg(long)]
    pub key_usage: Option<String>,
    /// Mark the key usage extension critical (default true).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub critical_key_usage: Option<bool>,
    /// Organizations of the subject (comma-separated).
    #[arg(long)]
    pub organizations: Option<String>,
    /// Organizational units of the subject (comma-separated).
    #[arg(long)]
    pub organizational_units: Option<String>,
    /// Country of the subject.
    #[arg(long)]
    pub country: Option<String>,
    /// Locality of the subject.
    #[arg(long)]
    pub locality: Option<String>,
    /// Province of the subject.
    #[arg(long)]
    pub province: Option<String>,
    /// Street address of the subject.
    #[arg(long)]
    pub street_address: Option<String>,
    /// Postal code of the subject.
    #[arg(long)]
    pub postal_code: Option<String>,
    /// Issue CA certificates (intermediate CAs).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub is_ca: Option<bool>,
    /// Path length limit of CA certificates (-1: none).
    #[arg(long, allow_negative_numbers = true)]
    pub max_path_len: Option<i64>,
    /// Allow certificates without a common name.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub not_require_cn: Option<bool>,
    /// Tag (repeatable).
    #[arg(long = "tag", alias = "tags")]
    pub tags: Vec<String>,
    /// Description.
    #[arg(long, alias = "metadata")]
    pub description: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CreatePkiCertIssuerArgs {
    /// Issuer name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// The CA key: it needs a certificate (--generate-self-signed-certificate,
    /// or update-classic-key-certificate); you need read on it.
    #[arg(long)]
    pub signer_key_name: String,
    /// Longest certificate lifetime: seconds, or e.g. 24h, 30d.
    #[arg(long)]
    pub ttl: String,
    #[command(flatten)]
    pub issuer: PkiIssuerArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UpdatePkiCertIssuerArgs {
    /// Issuer name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// Another CA key (absent: keep it).
    #[arg(long)]
    pub signer_key_name: Option<String>,
    /// Longest certificate lifetime: seconds, or e.g. 24h, 30d (absent: keep it).
    #[arg(long)]
    pub ttl: Option<String>,
    #[command(flatten)]
    pub issuer: PkiIssuerArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct GetPkiCertificateArgs {
    /// The PKI certificate issuer.
    #[arg(long)]
    pub cert_issuer_name: String,
    /// A certificate signing request (PEM or DER), e.g. from `openssl req -new`.
    #[arg(
        long,
        required_unless_present = "key_file_path",
        conflicts_with = "key_file_path"
    )]
    pub csr_file_path: Option<PathBuf>,
    /// A public key (PEM or DER) to certify instead of a CSR (never the
    /// private key: `openssl pkey -in key.pem -pubout`).
    #[arg(long)]
    pub key_file_path: Option<PathBuf>,
    /// Common name (default: the CSR's).
    #[arg(long)]
    pub common_name: Option<String>,
    /// DNS names and IP addresses (comma-separated).
    #[arg(long)]
    pub alt_names: Option<String>,
    /// URI SANs (comma-separated).
    #[arg(long)]
    pub uri_sans: Option<String>,
    /// Lifetime: seconds, or e.g. 24h (at most the issuer's ttl).
    #[arg(long)]
    pub ttl: Option<String>,
    /// Extended key usages (comma-separated): serverauth, clientauth, codesigning.
    #[arg(long)]
    pub extended_key_usage: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

// ---- issued certificates ----

#[derive(Debug, Args)]
pub(crate) struct CertCommand {
    #[command(subcommand)]
    pub command: CertSubcommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CertSubcommand {
    /// List the certificates issued by the issuers you may list.
    List(CertListArgs),
    /// Revoke a PKI certificate: it is in the issuer's CRL from then on.
    Revoke(CertRevokeArgs),
    /// Print a PKI issuer's current CRL (PEM; public, no login needed).
    Crl(CertCrlArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CertListArgs {
    /// Only this issuer.
    #[arg(long)]
    pub cert_issuer_name: Option<String>,
    /// Only revoked certificates.
    #[arg(long)]
    pub revoked_only: bool,
    /// Include expired certificates.
    #[arg(long)]
    pub include_expired: bool,
    /// At most this many certificates (default 1000, max 10000).
    #[arg(long)]
    pub limit: Option<i64>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct CertRevokeArgs {
    /// The PKI issuer that issued the certificate.
    #[arg(long)]
    pub cert_issuer_name: String,
    /// The certificate's serial number (hex, as cert list shows it).
    #[arg(long)]
    pub serial_number: String,
    /// Why (kept with the record).
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct CertCrlArgs {
    /// The PKI issuer.
    #[arg(long)]
    pub cert_issuer_name: String,
    #[command(flatten)]
    pub global: GlobalArgs,
}
