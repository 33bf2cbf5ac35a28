//! Coffer's cryptography, in one place:
//!
//! * [`RootKey`]: the 256-bit key everything else derives from; loaded from a
//!   file (created with mode 0600), an environment variable or a command.
//! * [`DataKey`]: random AES-256-GCM keys, stored only wrapped by the root
//!   key, that seal secret values. Every seal binds associated data (the
//!   item and version), so ciphertext moved to another row fails to open.
//! * The derivation key: what the keyed hashes below derive from. Stores
//!   made before root-key rotation existed use the root key itself; a
//!   rotation keeps the old root key's bytes as the derivation key, stored
//!   wrapped by the new root key (meta `derivation_key`), so access keys,
//!   tokens and the audit chain stay valid.
//! * [`KeyedHasher`]: HMAC-SHA-256 with a key derived from the derivation key, for
//!   access keys and tokens (high-entropy random values, not passwords, so a
//!   fast keyed hash is the right tool) and for the audit hash chain.
//! * Random identifiers: tokens, access keys, access IDs.
#![forbid(unsafe_code)]

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use thiserror::Error;
use zeroize::{Zeroize, Zeroizing};

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

#[derive(Debug, Error)]
pub enum CryptoError {
    #[error("root key: {0}")]
    RootKey(String),
    #[error("sealed data could not be opened (wrong key, or data was modified or moved)")]
    Open,
    #[error("sealing failed")]
    Seal,
    #[error("system random number generator failed")]
    Random,
}

/// Fill a buffer from the OS CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|_| CryptoError::Random)
}

fn random_array<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut b = [0u8; N];
    fill_random(&mut b)?;
    Ok(b)
}

/// The root key. Wiped from memory on drop; `Debug` prints nothing of it.
pub struct RootKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey(<redacted>)")
    }
}

impl RootKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        RootKey(Zeroizing::new(bytes))
    }

    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self::from_bytes(random_array()?))
    }

    /// Parse 64 hex characters or standard/URL-safe base64 of 32 bytes.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        use base64::Engine;
        let t = text.trim();
        let mut bytes = if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) {
            hex::decode(t).map_err(|_| CryptoError::RootKey("invalid hex".into()))?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t))
                .map_err(|_| {
                    CryptoError::RootKey("expected 64 hex characters or base64 of 32 bytes".into())
                })?
        };
        if bytes.len() != 32 {
            bytes.zeroize();
            return Err(CryptoError::RootKey(format!(
                "expected 32 bytes (256 bits), got {}",
                bytes.len()
            )));
        }
        let mut arr = [0u8; 32];
        arr.copy_from_slice(&bytes);
        bytes.zeroize();
        Ok(Self::from_bytes(arr))
    }

    /// Read the key file; refuse one that other users can read.
    pub fn load_file(path: &Path) -> Result<Self, CryptoError> {
        check_private_file(path)?;
        let text =
            Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                CryptoError::RootKey(format!("cannot read {}: {e}", path.display()))
            })?);
        Self::parse(&text)
    }

    /// Load the key file, or create it (mode 0600, hex) if it does not exist.
    /// Returns the key and whether it was created.
    pub fn load_or_create_file(path: &Path) -> Result<(Self, bool), CryptoError> {
        if path.exists() {
            return Ok((Self::load_file(path)?, false));
        }
        let key = Self::generate()?;
        let text = Zeroizing::new(hex::encode(*key.0) + "\n");
        write_private_file(path, text.as_bytes())
            .map_err(|e| CryptoError::RootKey(format!("cannot create {}: {e}", path.display())))?;
        Ok((key, true))
    }

    /// Derive a purpose-specific 256-bit key (HMAC-SHA-256 as a PRF).
    pub fn derive(&self, label: &str) -> Zeroizing<[u8; 32]> {
        #[allow(clippy::expect_used)] // HMAC takes keys of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&*self.0).expect("any key length");
        mac.update(b"coffer-derive-v1:");
        mac.update(label.as_bytes());
        let out = mac.finalize().into_bytes();
        let mut arr = [0u8; 32];
        arr.copy_from_slice(&out);
        Zeroizing::new(arr)
    }

    /// Wrap a data key for storage, bound to its key ID.
    pub fn wrap(&self, dek: &DataKey, key_id_label: &str) -> Result<Vec<u8>, CryptoError> {
        self.kek().wrap(dek, key_id_label)
    }

    pub fn unwrap(&self, wrapped: &[u8], key_id_label: &str) -> Result<DataKey, CryptoError> {
        self.kek().unwrap(wrapped, key_id_label)
    }

    /// The key-encryption key that wraps data keys: all a running server
    /// keeps of the root key, to open data keys added while it runs.
    pub fn kek(&self) -> Kek {
        Kek(DataKey(self.derive("kek")))
    }

    /// Wrap another 256-bit key (the derivation key) for storage.
    pub fn wrap_key(&self, key: &RootKey, label: &str) -> Result<Vec<u8>, CryptoError> {
        self.kek().0.seal(&*key.0, label.as_bytes())
    }

    /// Open what [`RootKey::wrap_key`] produced.
    pub fn unwrap_key(&self, wrapped: &[u8], label: &str) -> Result<RootKey, CryptoError> {
        let plain = self.kek().0.open(wrapped, label.as_bytes())?;
        Ok(RootKey::from_bytes(to_key_bytes(&plain)?))
    }

    /// A second copy of this key (wiped on drop like the first).
    pub fn duplicate(&self) -> RootKey {
        RootKey::from_bytes(*self.0)
    }

    /// Generate a new key into `path` (hex, mode 0600 from the start):
    /// written to a temporary file, synced, then linked into place (which,
    /// unlike a rename, never replaces a file created meanwhile) and the
    /// directory synced, so a crash leaves either no file or the whole key.
    /// Refuses an existing `path`; the temporary file is removed on every
    /// error.
    pub fn create_file(path: &Path) -> Result<Self, CryptoError> {
        let err = |e: std::io::Error| {
            CryptoError::RootKey(format!("cannot create {}: {e}", path.display()))
        };
        if path.exists() {
            return Err(CryptoError::RootKey(format!(
                "{} exists already",
                path.display()
            )));
        }
        let key = Self::generate()?;
        let text = Zeroizing::new(hex::encode(*key.0) + "\n");
        let name = path.file_name().ok_or_else(|| {
            CryptoError::RootKey(format!("{} is not a file name", path.display()))
        })?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(".tmp");
        let tmp = path.with_file_name(tmp_name);
        // A leftover of an interrupted run holds no key anyone uses.
        std::fs::remove_file(&tmp).ok();
        let placed = write_private_file(&tmp, text.as_bytes()).and_then(|()| {
            match std::fs::hard_link(&tmp, path) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
                // Filesystems without hard links: rename (the check above
                // makes a replaced file unlikely).
                Err(_) if !path.exists() => std::fs::rename(&tmp, path),
                other => other,
            }
        });
        std::fs::remove_file(&tmp).ok();
        placed.map_err(err)?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(err)?;
        Ok(key)
    }

    /// A short public fingerprint, to tell keys apart in logs and errors.
    pub fn fingerprint(&self) -> String {
        hex::encode(&self.derive("fingerprint")[..6])
    }
}

/// Exactly 32 bytes, or [`CryptoError::Open`].
fn to_key_bytes(plain: &[u8]) -> Result<[u8; 32], CryptoError> {
    if plain.len() != 32 {
        return Err(CryptoError::Open);
    }
    let mut arr = [0u8; 32];
    arr.copy_from_slice(plain);
    Ok(arr)
}

/// The key-encryption key derived from the root key (see [`RootKey::kek`]).
pub struct Kek(DataKey);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl Kek {
    /// Wrap a data key for storage, bound to its key ID.
    pub fn wrap(&self, dek: &DataKey, key_id_label: &str) -> Result<Vec<u8>, CryptoError> {
        self.0.seal(&*dek.0, key_id_label.as_bytes())
    }

    pub fn unwrap(&self, wrapped: &[u8], key_id_label: &str) -> Result<DataKey, CryptoError> {
        let plain = self.0.open(wrapped, key_id_label.as_bytes())?;
        Ok(DataKey(Zeroizing::new(to_key_bytes(&plain)?)))
    }
}

/// Label binding the wrapped derivation key (meta `derivation_key`).
pub const DERIVATION_KEY_LABEL: &str = "coffer-derivation-key-v1";

/// Refuse key files readable by group or others.
#[cfg(unix)]
fn check_private_file(path: &Path) -> Result<(), CryptoError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .map_err(|e| CryptoError::RootKey(format!("cannot read {}: {e}", path.display())))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(CryptoError::RootKey(format!(
            "{} is readable by other users; run: chmod 600 {}",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_file(_path: &Path) -> Result<(), CryptoError> {
    Ok(())
}

/// Create a file that only the owner can read (fails if it exists).
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// An AES-256-GCM data key.
pub struct DataKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(DataKey(Zeroizing::new(random_array()?)))
    }

    fn cipher(&self) -> Aes256Gcm {
        let key: Key<Aes256Gcm> = (*self.0).into();
        Aes256Gcm::new(&key)
    }

    /// Seal: returns `nonce || ciphertext || tag`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce_bytes: [u8; NONCE_LEN] = random_array()?;
        let nonce: Nonce<_> = nonce_bytes.into();
        let ct = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Seal)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Open what [`DataKey::seal`] produced with the same associated data.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Open);
        }
        let (n, ct) = sealed.split_at(NONCE_LEN);
        let mut nb = [0u8; NONCE_LEN];
        nb.copy_from_slice(n);
        let nonce: Nonce<_> = nb.into();
        self.cipher()
            .decrypt(&nonce, Payload { msg: ct, aad })
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Open)
    }
}

/// Associated data binding a secret value to its item and version.
pub fn value_aad(item_id: i64, version: i32) -> Vec<u8> {
    format!("coffer-value-v1:item={item_id}:version={version}").into_bytes()
}

/// Associated data binding a target's sealed password to its ID and version.
pub fn target_aad(target_id: i64, version: i32) -> Vec<u8> {
    format!("coffer-target-v1:target={target_id}:version={version}").into_bytes()
}

/// Label binding a wrapped data key to its key ID.
pub fn data_key_label(key_id: i64) -> String {
    format!("coffer-dek-v1:{key_id}")
}

/// HMAC-SHA-256 with a derived key: stores and looks up tokens and access
/// keys by their keyed hash, and MACs the audit chain.
#[derive(Clone)]
pub struct KeyedHasher(Hmac<Sha256>);

impl std::fmt::Debug for KeyedHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyedHasher(<redacted>)")
    }
}

impl KeyedHasher {
    pub fn new(root: &RootKey, purpose: &str) -> Self {
        let key = root.derive(purpose);
        #[allow(clippy::expect_used)] // HMAC takes keys of any length: this cannot fail.
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&*key).expect("any key length");
        KeyedHasher(mac)
    }

    pub fn hash(&self, data: &[u8]) -> Vec<u8> {
        let mut mac = self.0.clone();
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    /// Constant-time check of `data` against a stored hash.
    pub fn verify(&self, data: &[u8], expected: &[u8]) -> bool {
        let mut mac = self.0.clone();
        mac.update(data);
        mac.verify_slice(expected).is_ok()
    }

    /// An AES-256-GCM key of its own for `salt` (HMAC of the salt under
    /// this hasher's key). Sealing every message under a key of a fresh
    /// random salt leaves no nonce budget to exhaust, however many
    /// messages anonymous callers make the server seal (OIDC login
    /// states); the salt travels with the sealed message.
    pub fn subkey(&self, salt: &[u8]) -> DataKey {
        let mut mac = self.0.clone();
        mac.update(b"coffer-subkey-v1:");
        mac.update(salt);
        let out = mac.finalize().into_bytes();
        let mut arr = Zeroizing::new([0u8; 32]);
        arr.copy_from_slice(&out);
        DataKey(arr)
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Random alphanumeric string (rejection sampling, no modulo bias).
pub fn random_alnum(len: usize) -> Result<String, CryptoError> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        fill_random(&mut buf)?;
        for b in buf {
            // 62 * 4 = 248: accept bytes below 248 only.
            if b < 248 && out.len() < len {
                out.push(ALNUM[(b % 62) as usize] as char);
            }
        }
    }
    Ok(out)
}

/// A new API token: `t-` and 64 hex characters (256 bits).
pub fn new_token() -> Result<SecretString, CryptoError> {
    let mut b: [u8; 32] = random_array()?;
    let s = format!("t-{}", hex::encode(b));
    b.zeroize();
    Ok(SecretString::from(s))
}

/// A new access key: 43 URL-safe base64 characters (256 bits). Never
/// starts with `-`, so `--access-key KEY` is not mistaken for a flag.
pub fn new_access_key() -> Result<SecretString, CryptoError> {
    use base64::Engine;
    loop {
        let mut b: [u8; 32] = random_array()?;
        let s = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        b.zeroize();
        if !s.starts_with('-') {
            return Ok(SecretString::from(s));
        }
    }
}

/// A new access ID: `p-` + 12 alphanumerics whose second-to-last character
/// encodes the auth-method type (`a` API key, `o` OAuth2/JWT, ...).
pub fn new_access_id(type_char: char) -> Result<String, CryptoError> {
    let body = random_alnum(11)?;
    let (head, tail) = body.split_at(10);
    Ok(format!("p-{head}{type_char}{tail}"))
}

/// Hash a secret string (token or access key) with a keyed hasher.
pub fn hash_secret(hasher: &KeyedHasher, secret: &SecretString) -> Vec<u8> {
    hasher.hash(secret.expose_secret().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subkeys_depend_on_salt_and_purpose() {
        let root = RootKey::from_bytes([7; 32]);
        let a = KeyedHasher::new(&root, "p1");
        let sealed = a.subkey(b"salt-1").seal(b"m", b"aad").unwrap();
        assert_eq!(&*a.subkey(b"salt-1").open(&sealed, b"aad").unwrap(), b"m");
        assert!(a.subkey(b"salt-2").open(&sealed, b"aad").is_err());
        let b = KeyedHasher::new(&root, "p2");
        assert!(b.subkey(b"salt-1").open(&sealed, b"aad").is_err());
    }

    #[test]
    fn seal_open_roundtrip_and_aad_binding() {
        let k = DataKey::generate().unwrap();
        let s = k.seal(b"hunter2", &value_aad(1, 1)).unwrap();
        assert_eq!(&**k.open(&s, &value_aad(1, 1)).unwrap(), b"hunter2");
        assert!(k.open(&s, &value_aad(1, 2)).is_err());
        assert!(k.open(&s, &value_aad(2, 1)).is_err());
        let mut bad = s.clone();
        bad[20] ^= 1;
        assert!(k.open(&bad, &value_aad(1, 1)).is_err());
        assert!(k.open(&s[..10], &value_aad(1, 1)).is_err());
        assert!(!s.windows(7).any(|w| w == b"hunter2"));
    }

    #[test]
    fn wrap_unwrap() {
        let root = RootKey::generate().unwrap();
        let dek = DataKey::generate().unwrap();
        let w = root.wrap(&dek, &data_key_label(1)).unwrap();
        let back = root.unwrap(&w, &data_key_label(1)).unwrap();
        let s = dek.seal(b"x", b"a").unwrap();
        assert_eq!(&**back.open(&s, b"a").unwrap(), b"x");
        assert!(root.unwrap(&w, &data_key_label(2)).is_err());
        let other = RootKey::generate().unwrap();
        assert!(other.unwrap(&w, &data_key_label(1)).is_err());
    }

    #[test]
    fn root_key_file_is_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("root.key");
        let (k1, created) = RootKey::load_or_create_file(&p).unwrap();
        assert!(created);
        let (k2, created) = RootKey::load_or_create_file(&p).unwrap();
        assert!(!created);
        assert_eq!(k1.fingerprint(), k2.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = RootKey::load_file(&p).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn kek_and_wrapped_keys() {
        let root = RootKey::generate().unwrap();
        let dek = DataKey::generate().unwrap();
        let w = root.kek().wrap(&dek, &data_key_label(3)).unwrap();
        let back = root.unwrap(&w, &data_key_label(3)).unwrap();
        let s = dek.seal(b"x", b"a").unwrap();
        assert_eq!(&**back.open(&s, b"a").unwrap(), b"x");
        let base = RootKey::generate().unwrap();
        let wb = root.wrap_key(&base, DERIVATION_KEY_LABEL).unwrap();
        let opened = root.unwrap_key(&wb, DERIVATION_KEY_LABEL).unwrap();
        assert_eq!(opened.fingerprint(), base.fingerprint());
        assert!(root.unwrap_key(&wb, "other").is_err());
        assert!(
            RootKey::generate()
                .unwrap()
                .unwrap_key(&wb, DERIVATION_KEY_LABEL)
                .is_err()
        );
        assert_eq!(root.duplicate().fingerprint(), root.fingerprint());
    }

    #[test]
    fn create_file_is_private_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new.key");
        let k = RootKey::create_file(&p).unwrap();
        assert_eq!(
            RootKey::load_file(&p).unwrap().fingerprint(),
            k.fingerprint()
        );
        assert!(RootKey::create_file(&p).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn root_key_parse() {
        assert!(RootKey::parse(&"ab".repeat(32)).is_ok());
        assert!(RootKey::parse("short").is_err());
        assert!(RootKey::parse(&"ab".repeat(31)).is_err());
    }

    #[test]
    fn identifiers() {
        let id = new_access_id('a').unwrap();
        assert_eq!(id.len(), 14);
        assert!(id.starts_with("p-"));
        assert_eq!(id.chars().nth(12), Some('a'));
        let t = new_token().unwrap();
        assert_eq!(t.expose_secret().len(), 66);
        for _ in 0..500 {
            let k = new_access_key().unwrap();
            assert_eq!(k.expose_secret().len(), 43);
            assert!(!k.expose_secret().starts_with('-'));
        }
        assert_ne!(new_token().unwrap().expose_secret(), t.expose_secret());
    }

    #[test]
    fn keyed_hash() {
        let root = RootKey::generate().unwrap();
        let h = KeyedHasher::new(&root, "token");
        let h2 = KeyedHasher::new(&root, "access-key");
        let d = h.hash(b"abc");
        assert!(h.verify(b"abc", &d));
        assert!(!h.verify(b"abd", &d));
        assert_ne!(d, h2.hash(b"abc"));
    }
}
