//! The client-certificate login challenge as both sides see it: the
//! server (`get-cert-challenge`, `auth` with access-type `cert`) and the
//! CLI that signs it.
//!
//! The client's key never signs the challenge text alone: it signs
//! [`signed_message`], the challenge behind a fixed, Coffer-specific
//! prefix. A hostile gateway that hands out something else as a
//! "challenge" (a JWS signing input, a TLS transcript, another service's
//! nonce) therefore never gets a signature that verifies as that thing.
//! The CLI also refuses anything that is not exactly the form the server
//! issues ([`is_challenge_form`]) before it signs.

/// What the client signs before the challenge (NUL-terminated, so no
/// challenge text can extend the prefix).
pub const SIGNED_PREFIX: &[u8] = b"coffer-cert-login-v1\0";

/// A challenge's raw bytes: a 16-byte nonce, its expiry (8 bytes, big
/// endian milliseconds) and a 32-byte MAC.
pub const CHALLENGE_BYTES: usize = 56;

/// A challenge's text: [`CHALLENGE_BYTES`] in unpadded base64url.
pub const CHALLENGE_CHARS: usize = (CHALLENGE_BYTES * 8).div_ceil(6);

/// The message the certificate's key signs for `challenge`:
/// [`SIGNED_PREFIX`] followed by the challenge text, exactly as received.
pub fn signed_message(challenge: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNED_PREFIX.len() + challenge.len());
    m.extend_from_slice(SIGNED_PREFIX);
    m.extend_from_slice(challenge.as_bytes());
    m
}

/// True when `s` has exactly the form of a challenge the server issues:
/// [`CHALLENGE_CHARS`] unpadded base64url characters that decode
/// (canonically: unused trailing bits zero) to [`CHALLENGE_BYTES`] bytes.
pub fn is_challenge_form(s: &str) -> bool {
    fn value(c: u8) -> Option<u8> {
        match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            b'-' => Some(62),
            b'_' => Some(63),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if bytes.len() != CHALLENGE_CHARS {
        return false;
    }
    let mut last = 0;
    for &c in bytes {
        match value(c) {
            Some(v) => last = v,
            None => return false,
        }
    }
    // The bits of the last character beyond the data must be zero.
    let unused_bits = (CHALLENGE_CHARS * 6 - CHALLENGE_BYTES * 8) as u32;
    last & ((1u8 << unused_bits) - 1) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_form() {
        assert_eq!(CHALLENGE_CHARS, 75);
        let good = format!("{}A", "a".repeat(74));
        assert!(is_challenge_form(&good));
        assert!(is_challenge_form(&format!("{}-_0E", "Z".repeat(71))));
        // Wrong length, padding, alphabet, non-canonical trailing bits.
        assert!(!is_challenge_form(&good[1..]));
        assert!(!is_challenge_form(&format!("{good}A")));
        assert!(!is_challenge_form(&format!("{}=", &good[1..])));
        assert!(!is_challenge_form(&format!("{}+", &good[1..])));
        assert!(!is_challenge_form(&format!("{}/", &good[1..])));
        assert!(!is_challenge_form(&format!("{}B", &good[1..])));
        assert!(!is_challenge_form(""));
        // A JWS signing input is not a challenge.
        assert!(!is_challenge_form(
            "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9"
        ));
    }

    #[test]
    fn signed_message_is_prefixed() {
        assert_eq!(signed_message("abc"), b"coffer-cert-login-v1\0abc".to_vec());
    }
}
