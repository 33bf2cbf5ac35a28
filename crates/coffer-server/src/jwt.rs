//! JWT verification for OAuth2/JWT auth methods (CI job identity).
//!
//! Pure functions, no I/O: [`ParsedJwt::parse`] checks the token's shape and
//! header, [`KeySet::parse`] turns a JWKS into verification keys,
//! [`verify`] picks the key, checks the signature and every claim rule.
//! Fetching and caching the JWKS is `jwks.rs`.
//!
//! Rules (each failure names the check): only RS256/384/512, PS256/384/512,
//! ES256/384 and EdDSA (`none` and HMAC are refused); a key is only used
//! with its JWK's algorithm family (and its `alg` when the JWK has one);
//! `exp` is required; `nbf`/`iat` honoured with a leeway; `iss` checked when
//! configured; `aud` must name one of the configured audiences, or, when
//! none is configured, must be absent (nothing says that a token minted for
//! some audience was meant for this method); tokens are at most
//! [`MAX_TOKEN_BYTES`].

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Largest accepted token (CI ID tokens are 1–2 KiB).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Largest accepted JWKS document.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// At most this many keys are kept from one JWKS.
const MAX_KEYS: usize = 64;

/// A refusal; the text names the failed check and never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);

fn reject<T>(msg: impl Into<String>) -> Result<T, Rejected> {
    Err(Rejected(msg.into()))
}

/// Quote an untrusted value for a message, shortened.
fn q(s: &str) -> String {
    format!("{:?}", coffer_core::name::truncate_for_message(s))
}

/// Settings of an OAuth2/JWT auth method, stored in `AuthMethod.config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OAuth2Config {
    pub unique_identifier: String,
    pub jwks_uri: String,
    /// The JWKS document itself (from `jwks-json-data`), when no URI is used.
    pub jwks_json: String,
    pub issuer: String,
    pub audience: Vec<String>,
    pub bound_client_ids: Vec<String>,
    /// Remember each `jti` until `exp` and refuse a second login with it.
    pub refuse_replay: bool,
    /// `event_name` claim values refused (GitHub Actions).
    pub refuse_events: Vec<String>,
}

/// Events whose tokens may run code of an untrusted pull request with the
/// repository's identity (crates.io refuses them for trusted publishing).
pub const DEFAULT_REFUSED_EVENTS: &[&str] = &["pull_request_target", "workflow_run"];

/// The signature algorithms accepted, by JOSE name.
pub fn allowed_algorithm(name: &str) -> Result<Algorithm, Rejected> {
    Ok(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        n if n.eq_ignore_ascii_case("none") => {
            return reject("algorithm check: alg \"none\" (unsigned token) is refused");
        }
        n if n.to_ascii_uppercase().starts_with("HS") => {
            return reject(format!(
                "algorithm check: HMAC algorithm {} is refused; only public-key signatures (RS*, PS*, ES256/384, EdDSA) are accepted",
                q(n)
            ));
        }
        n => {
            return reject(format!(
                "algorithm check: alg {} is not supported (accepted: RS256/384/512, PS256/384/512, ES256, ES384, EdDSA)",
                q(n)
            ));
        }
    })
}

/// The kind of a verification key, from its JWK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    /// May a key of this kind verify `alg`? (No key-type confusion.)
    pub fn accepts(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyKind::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyKind::P256 => alg == ES256,
            KeyKind::P384 => alg == ES384,
            KeyKind::Ed25519 => alg == EdDSA,
        }
    }

    fn name(self) -> &'static str {
        match self {
            KeyKind::Rsa => "RSA",
            KeyKind::P256 => "EC P-256",
            KeyKind::P384 => "EC P-384",
            KeyKind::Ed25519 => "OKP Ed25519",
        }
    }
}

/// One verification key of a JWKS.
pub struct VerifyKey {
    pub kid: Option<String>,
    pub kind: KeyKind,
    /// The JWK's own `alg`, when it names one: then only that algorithm.
    pub alg: Option<Algorithm>,
    key: DecodingKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("kind", &self.kind)
            .field("alg", &self.alg)
            .finish()
    }
}

/// The usable signing keys of a JWKS.
#[derive(Debug, Default)]
pub struct KeySet {
    pub keys: Vec<VerifyKey>,
}

impl KeySet {
    /// Parse a JWKS document. Keys that cannot verify signatures here
    /// (encryption keys, HMAC `oct` keys, unknown types or curves) are
    /// skipped; a set without a usable key is an error.
    pub fn parse(bytes: &[u8]) -> Result<KeySet, String> {
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(format!("the JWKS is larger than {MAX_JWKS_BYTES} bytes"));
        }
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|_| "the JWKS is not valid JSON".to_string())?;
        let Some(list) = doc.get("keys").and_then(Value::as_array) else {
            return Err("the JWKS has no \"keys\" list".into());
        };
        let mut keys = Vec::new();
        for raw in list.iter().take(MAX_KEYS) {
            if raw.get("use").and_then(Value::as_str) == Some("enc") {
                continue;
            }
            let alg = match raw.get("alg").and_then(Value::as_str) {
                None => None,
                Some(a) => match allowed_algorithm(a) {
                    Ok(a) => Some(a),
                    Err(_) => continue,
                },
            };
            let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
                continue;
            };
            let kind = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => KeyKind::Rsa,
                AlgorithmParameters::EllipticCurve(p) => match p.curve {
                    EllipticCurve::P256 => KeyKind::P256,
                    EllipticCurve::P384 => KeyKind::P384,
                    _ => continue,
                },
                AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                    KeyKind::Ed25519
                }
                _ => continue,
            };
            if alg.is_some_and(|a| !kind.accepts(a)) {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            keys.push(VerifyKey {
                kid: jwk.common.key_id.clone(),
                kind,
                alg,
                key,
            });
        }
        if keys.is_empty() {
            return Err(
                "the JWKS has no usable signing key (RSA, EC P-256/P-384 or Ed25519)".into(),
            );
        }
        Ok(KeySet { keys })
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// A token whose shape and header passed the checks; not yet verified.
#[derive(Debug)]
pub struct ParsedJwt<'a> {
    pub alg: Algorithm,
    pub kid: Option<String>,
    signing_input: &'a str,
    payload: &'a str,
    signature: &'a str,
}

impl<'a> ParsedJwt<'a> {
    pub fn parse(token: &'a str) -> Result<ParsedJwt<'a>, Rejected> {
        if token.len() > MAX_TOKEN_BYTES {
            return reject(format!(
                "size check: the JWT is larger than {MAX_TOKEN_BYTES} bytes"
            ));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return reject(
                "format check: a JWT is three base64url parts separated by dots (header.payload.signature)",
            );
        };
        let b64url = |x: &str| {
            !x.is_empty()
                && x.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !b64url(h) || !b64url(p) {
            return reject("format check: the JWT header or payload is not base64url");
        }
        let header_bytes = URL_SAFE_NO_PAD
            .decode(h)
            .map_err(|_| Rejected("format check: the JWT header is not valid base64url".into()))?;
        let header: Map<String, Value> = serde_json::from_slice(&header_bytes)
            .map_err(|_| Rejected("format check: the JWT header is not a JSON object".into()))?;
        let Some(alg) = header.get("alg").and_then(Value::as_str) else {
            return reject("algorithm check: the JWT header has no alg");
        };
        let alg = allowed_algorithm(alg)?;
        if s.is_empty() {
            return reject("signature check: the JWT has no signature");
        }
        if !b64url(s) {
            return reject("format check: the JWT signature is not base64url");
        }
        if header.contains_key("crit") {
            return reject(
                "header check: the JWT header has critical extensions (crit), which are not supported",
            );
        }
        let kid = match header.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) if k.len() <= 256 => Some(k.clone()),
            Some(_) => return reject("header check: kid must be a string of at most 256 bytes"),
        };
        Ok(ParsedJwt {
            alg,
            kid,
            signing_input: &token[..h.len() + 1 + p.len()],
            payload: p,
            signature: s,
        })
    }
}

/// What a method expects of a token.
#[derive(Debug, Clone, Default)]
pub struct Expectations<'a> {
    pub unique_identifier: &'a str,
    pub issuer: Option<&'a str>,
    pub audience: &'a [String],
    pub bound_client_ids: &'a [String],
    pub refuse_events: &'a [String],
    pub leeway_secs: i64,
    pub now_secs: i64,
}

/// A verified token's claims and what the login needs from them.
#[derive(Debug, Clone)]
pub struct Verified {
    pub claims: Map<String, Value>,
    /// Value of the unique-identifier claim.
    pub identity: String,
    pub exp: i64,
    pub jti: Option<String>,
}

/// Check the signature with the matching key, then every claim rule.
pub fn verify(
    jwt: &ParsedJwt<'_>,
    keys: &KeySet,
    expect: &Expectations<'_>,
) -> Result<Verified, Rejected> {
    let candidates: Vec<&VerifyKey> = match &jwt.kid {
        Some(kid) => {
            let k: Vec<_> = keys
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect();
            if k.is_empty() {
                return reject(format!(
                    "key check: unknown kid {}: no key of the auth method's JWKS has it",
                    q(kid)
                ));
            }
            k
        }
        None => keys.keys.iter().collect(),
    };
    let usable: Vec<&&VerifyKey> = candidates
        .iter()
        .filter(|k| k.kind.accepts(jwt.alg) && k.alg.is_none_or(|a| a == jwt.alg))
        .collect();
    if usable.is_empty() {
        let kinds: Vec<&str> = candidates.iter().map(|k| k.kind.name()).collect();
        return reject(format!(
            "algorithm check: alg {:?} does not match the key type ({}) of the JWKS key{}; a key is only used with its own algorithm family",
            jwt.alg,
            kinds.join(", "),
            jwt.kid
                .as_ref()
                .map(|k| format!(" with kid {}", q(k)))
                .unwrap_or_default()
        ));
    }
    let mut ok = false;
    for k in usable {
        if jsonwebtoken::crypto::verify(
            jwt.signature,
            jwt.signing_input.as_bytes(),
            &k.key,
            jwt.alg,
        )
        .unwrap_or(false)
        {
            ok = true;
            break;
        }
    }
    if !ok {
        return reject(
            "signature check: the JWT signature does not verify with the auth method's JWKS",
        );
    }
    let payload = URL_SAFE_NO_PAD
        .decode(jwt.payload)
        .map_err(|_| Rejected("format check: the JWT payload is not valid base64url".into()))?;
    let claims: Map<String, Value> = serde_json::from_slice(&payload)
        .map_err(|_| Rejected("format check: the JWT payload is not a JSON object".into()))?;
    check_claims(claims, expect)
}

fn numeric(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, Rejected> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)) {
            Some(v) => Ok(Some(v)),
            None => reject(format!("{name} check: {name} is not a NumericDate")),
        },
        Some(_) => reject(format!(
            "{name} check: {name} must be a number (seconds since 1970)"
        )),
    }
}

fn date(secs: i64) -> String {
    crate::timefmt::rfc3339(secs.saturating_mul(1000))
}

/// The `aud` claim's values: a string, or a list of strings (RFC 7519
/// 4.1.3). Absent, `null` and `[]` mean none; any other shape is refused
/// (it must not pass as "no audience").
fn audiences(claims: &Map<String, Value>) -> Result<Vec<&str>, Rejected> {
    let bad = || Rejected("aud check: the aud claim must be a string or a list of strings".into());
    match claims.get("aud") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.as_str()]),
        Some(Value::Array(a)) => a.iter().map(|v| v.as_str().ok_or_else(bad)).collect(),
        Some(_) => Err(bad()),
    }
}

/// Claim rules on a signature-verified payload.
pub fn check_claims(
    claims: Map<String, Value>,
    expect: &Expectations<'_>,
) -> Result<Verified, Rejected> {
    let now = expect.now_secs;
    let leeway = expect.leeway_secs;
    let Some(exp) = numeric(&claims, "exp")? else {
        return reject("exp check: the JWT has no exp claim; tokens without an expiry are refused");
    };
    if now > exp.saturating_add(leeway) {
        return reject(format!("exp check: the JWT expired at {}", date(exp)));
    }
    if let Some(nbf) = numeric(&claims, "nbf")?
        && now.saturating_add(leeway) < nbf
    {
        return reject(format!(
            "nbf check: the JWT is not valid before {}",
            date(nbf)
        ));
    }
    if let Some(iat) = numeric(&claims, "iat")?
        && now.saturating_add(leeway) < iat
    {
        return reject(format!(
            "iat check: the JWT claims to be issued in the future ({})",
            date(iat)
        ));
    }
    if let Some(want) = expect.issuer.filter(|i| !i.is_empty()) {
        match claims.get("iss").and_then(Value::as_str) {
            Some(iss) if iss == want => {}
            Some(iss) => {
                return reject(format!(
                    "iss check: issuer {} is not this auth method's issuer {}",
                    q(iss),
                    q(want)
                ));
            }
            None => {
                return reject(format!(
                    "iss check: the JWT has no iss claim; this auth method requires issuer {}",
                    q(want)
                ));
            }
        }
    }
    let auds = audiences(&claims)?;
    if expect.audience.is_empty() {
        // No audience bound (Vault's `bound_audiences` rule): a token that
        // names its audience was minted for someone, and nothing says it
        // was for this method, so it is refused.
        if !auds.is_empty() {
            return reject(format!(
                "aud check: the JWT is for audience {}, but this auth method binds no audience; set the auth method's audience to the aud value of the tokens meant for it (tokens carrying aud are refused by a method without one)",
                q(&auds.join(","))
            ));
        }
    } else {
        if auds.is_empty() {
            return reject(format!(
                "aud check: the JWT has no aud claim; this auth method requires audience {}",
                q(&expect.audience.join(","))
            ));
        }
        if !auds.iter().any(|a| expect.audience.iter().any(|w| w == a)) {
            return reject(format!(
                "aud check: audience {} is not this auth method's audience {}",
                q(&auds.join(",")),
                q(&expect.audience.join(","))
            ));
        }
    }
    if !expect.bound_client_ids.is_empty() {
        let client = ["azp", "client_id", "cid"]
            .iter()
            .find_map(|c| claims.get(*c).and_then(Value::as_str));
        match client {
            Some(c) if expect.bound_client_ids.iter().any(|b| b == c) => {}
            Some(c) => {
                return reject(format!(
                    "client check: client ID {} is not in this auth method's bound-client-ids",
                    q(c)
                ));
            }
            None => {
                return reject(
                    "client check: the JWT has no azp/client_id claim; this auth method has bound-client-ids",
                );
            }
        }
    }
    if let Some(event) = claims.get("event_name").and_then(Value::as_str)
        && expect.refuse_events.iter().any(|e| e == event)
    {
        return reject(format!(
            "event check: tokens of GitHub {} workflows are refused by this auth method (they can run untrusted pull-request code); see refuse-events",
            q(event)
        ));
    }
    let identity = match claims.get(expect.unique_identifier) {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 512 => s.clone(),
        Some(v @ Value::Number(_)) => v.to_string(),
        Some(Value::String(s)) if !s.is_empty() => {
            return reject(format!(
                "unique-identifier check: claim {} is longer than 512 bytes",
                q(expect.unique_identifier)
            ));
        }
        _ => {
            return reject(format!(
                "unique-identifier check: the JWT has no claim {} (the auth method's unique-identifier) with a non-empty string value",
                q(expect.unique_identifier)
            ));
        }
    };
    let jti = match claims.get("jti") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => Some(s.clone()),
        _ => None,
    };
    Ok(Verified {
        claims,
        identity,
        exp,
        jti,
    })
}

/// Is `url` an acceptable JWKS URL: HTTPS, or HTTP to a loopback host?
pub fn check_jwks_url(url: &str) -> Result<(), String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|_| format!("jwks-uri {} is not a URL", q(url)))?;
    let Some(host) = parsed.host_str() else {
        return Err(format!("jwks-uri {} has no host", q(url)));
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "jwks-uri {} must use https (plain http is allowed only for 127.0.0.1, ::1 and localhost)",
            q(url)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    fn rsa_key() -> (EncodingKey, Value) {
        let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der =
            aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&kp).unwrap();
        let enc = crate::dev_oidc::rsa_encoding_key(der.as_ref()).unwrap();
        let mut jwk =
            serde_json::to_value(Jwk::from_encoding_key(&enc, Algorithm::RS256).unwrap()).unwrap();
        jwk["kid"] = json!("k1");
        (enc, jwk)
    }

    fn es_key() -> (EncodingKey, Value) {
        let doc = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .unwrap();
        let enc = EncodingKey::from_ec_der(doc.as_ref());
        let mut jwk =
            serde_json::to_value(Jwk::from_encoding_key(&enc, Algorithm::ES256).unwrap()).unwrap();
        jwk["kid"] = json!("e1");
        (enc, jwk)
    }

    fn sign(enc: &EncodingKey, alg: Algorithm, kid: &str, claims: &Value) -> String {
        let mut h = Header::new(alg);
        h.kid = Some(kid.into());
        jsonwebtoken::encode(&h, claims, enc).unwrap()
    }

    fn expect<'a>(aud: &'a [String]) -> Expectations<'a> {
        Expectations {
            unique_identifier: "sub",
            issuer: Some("https://issuer"),
            audience: aud,
            leeway_secs: 60,
            now_secs: 1_000_000,
            ..Default::default()
        }
    }

    fn good() -> Value {
        json!({"sub": "me", "iss": "https://issuer", "aud": "coffer", "exp": 1_000_300, "iat": 999_990, "jti": "j1"})
    }

    fn run(token: &str, keys: &KeySet, aud: &[String]) -> Result<Verified, Rejected> {
        verify(&ParsedJwt::parse(token)?, keys, &expect(aud))
    }

    #[test]
    fn rsa_and_ec_tokens_verify_and_confusion_is_refused() {
        let (rsa, rjwk) = rsa_key();
        let (ec, ejwk) = es_key();
        let keys = KeySet::parse(json!({"keys": [rjwk, ejwk]}).to_string().as_bytes()).unwrap();
        assert_eq!(keys.keys.len(), 2);
        let aud = vec!["coffer".to_string()];
        let v = run(&sign(&rsa, Algorithm::RS256, "k1", &good()), &keys, &aud).unwrap();
        assert_eq!(v.identity, "me");
        assert_eq!(v.jti.as_deref(), Some("j1"));
        run(&sign(&ec, Algorithm::ES256, "e1", &good()), &keys, &aud).unwrap();
        // The JWK says RS256: PS256 with the same key is refused.
        let e = run(&sign(&rsa, Algorithm::PS256, "k1", &good()), &keys, &aud).unwrap_err();
        assert!(e.0.contains("algorithm check"), "{e}");
        // An EC token claiming the RSA key's kid.
        let e = run(&sign(&ec, Algorithm::ES256, "k1", &good()), &keys, &aud).unwrap_err();
        assert!(e.0.contains("algorithm check"), "{e}");
        // Right kid, wrong key.
        let (other, _) = rsa_key();
        let e = run(&sign(&other, Algorithm::RS256, "k1", &good()), &keys, &aud).unwrap_err();
        assert!(e.0.contains("signature check"), "{e}");
        let e = run(&sign(&rsa, Algorithm::RS256, "nope", &good()), &keys, &aud).unwrap_err();
        assert!(e.0.contains("unknown kid"), "{e}");
    }

    #[test]
    fn header_checks() {
        let enc = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let body = enc(good());
        for (alg, want) in [
            ("none", "\"none\""),
            ("HS256", "HMAC"),
            ("hs512", "HMAC"),
            ("ES512", "not supported"),
        ] {
            let t = format!("{}.{body}.c2ln", enc(json!({"alg": alg})));
            let e = ParsedJwt::parse(&t).unwrap_err();
            assert!(e.0.contains(want), "{alg}: {e}");
        }
        let t = format!("{}.{body}.", enc(json!({"alg": "none"})));
        assert!(ParsedJwt::parse(&t).is_err());
        let t = format!("{}.{body}.", enc(json!({"alg": "RS256"})));
        assert!(ParsedJwt::parse(&t).unwrap_err().0.contains("no signature"));
        assert!(
            ParsedJwt::parse("a.b")
                .unwrap_err()
                .0
                .contains("format check")
        );
        assert!(
            ParsedJwt::parse("a+b.c.d")
                .unwrap_err()
                .0
                .contains("format check")
        );
        assert!(
            ParsedJwt::parse("YQ.YQ.YQ")
                .unwrap_err()
                .0
                .contains("format check")
        );
        let big = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(ParsedJwt::parse(&big).unwrap_err().0.contains("size check"));
        let t = format!(
            "{}.{body}.c2ln",
            enc(json!({"alg": "RS256", "crit": ["x"]}))
        );
        assert!(ParsedJwt::parse(&t).unwrap_err().0.contains("crit"));
    }

    #[test]
    fn claim_rules() {
        let aud = vec!["coffer".to_string()];
        let e = expect(&aud);
        let with = |patch: Value| {
            let mut c = good();
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    c.as_object_mut().unwrap().remove(k);
                } else {
                    c[k] = v.clone();
                }
            }
            check_claims(c.as_object().unwrap().clone(), &e)
        };
        assert!(with(json!({})).is_ok());
        for (patch, want) in [
            (json!({"exp": null}), "exp check"),
            (json!({"exp": "soon"}), "exp check"),
            (json!({"exp": 999_900}), "exp check"),
            (json!({"nbf": 1_000_100}), "nbf check"),
            (json!({"iat": 1_000_100}), "iat check"),
            (json!({"iss": "https://evil"}), "iss check"),
            (json!({"iss": null}), "iss check"),
            (json!({"aud": "other"}), "aud check"),
            (json!({"aud": null}), "aud check"),
            (json!({"aud": []}), "aud check"),
            (json!({"sub": null}), "unique-identifier"),
            (json!({"sub": ""}), "unique-identifier"),
        ] {
            let err = with(patch.clone()).unwrap_err();
            assert!(err.0.contains(want), "{patch}: {err}");
        }
        // Within the leeway.
        assert!(with(json!({"exp": 999_950, "nbf": 1_000_050})).is_ok());
        assert!(with(json!({"aud": ["x", "coffer"]})).is_ok());
        // A malformed aud never passes as "no audience".
        for bad in [json!(5), json!({"a": 1}), json!(["coffer", 5]), json!(true)] {
            let err = with(json!({ "aud": bad })).unwrap_err();
            assert!(err.0.contains("string or a list of strings"), "{err}");
        }
        // No audience configured: a token without aud passes, a token that
        // names any audience (or a malformed one) is refused.
        let none: Vec<String> = vec![];
        let e2 = expect(&none);
        let mut c = good();
        c.as_object_mut().unwrap().remove("aud");
        assert!(check_claims(c.as_object().unwrap().clone(), &e2).is_ok());
        for empty in [json!(null), json!([])] {
            c["aud"] = empty;
            assert!(check_claims(c.as_object().unwrap().clone(), &e2).is_ok());
        }
        for foreign in [json!("coffer"), json!(["other", "x"]), json!(""), json!(7)] {
            c["aud"] = foreign.clone();
            let err = check_claims(c.as_object().unwrap().clone(), &e2).unwrap_err();
            assert!(err.0.starts_with("aud check"), "{foreign}: {err}");
        }
        c["aud"] = json!("https://other.example");
        let err = check_claims(c.as_object().unwrap().clone(), &e2).unwrap_err();
        assert!(
            err.0.contains("binds no audience") && err.0.contains("https://other.example"),
            "{err}"
        );
        c.as_object_mut().unwrap().remove("aud");
        // Refused events and bound client IDs.
        let ev = vec!["pull_request_target".to_string()];
        let ids = vec!["ci".to_string()];
        let e3 = Expectations {
            refuse_events: &ev,
            bound_client_ids: &ids,
            ..expect(&none)
        };
        let mut c = good();
        c.as_object_mut().unwrap().remove("aud");
        c["azp"] = json!("ci");
        assert!(check_claims(c.as_object().unwrap().clone(), &e3).is_ok());
        c["event_name"] = json!("pull_request_target");
        let err = check_claims(c.as_object().unwrap().clone(), &e3).unwrap_err();
        assert!(err.0.contains("event check"), "{err}");
        c["event_name"] = json!("push");
        c["azp"] = json!("other");
        let err = check_claims(c.as_object().unwrap().clone(), &e3).unwrap_err();
        assert!(err.0.contains("client check"), "{err}");
    }

    #[test]
    fn jwks_parsing_skips_unusable_keys() {
        let (_, rjwk) = rsa_key();
        let hmac = json!({"kty": "oct", "k": "c2VjcmV0", "kid": "h"});
        let enc = {
            let mut k = rjwk.clone();
            k["use"] = json!("enc");
            k["kid"] = json!("enc");
            k
        };
        let hs_alg = {
            let mut k = rjwk.clone();
            k["alg"] = json!("HS256");
            k
        };
        let ks = KeySet::parse(
            json!({"keys": [hmac, enc, hs_alg, rjwk]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(ks.keys.len(), 1);
        assert!(ks.has_kid("k1"));
        assert!(KeySet::parse(br#"{"keys": [{"kty":"oct","k":"eA"}]}"#).is_err());
        assert!(KeySet::parse(b"[]").is_err());
        assert!(KeySet::parse(b"nope").is_err());
    }

    #[test]
    fn jwks_urls() {
        assert!(check_jwks_url("https://gitlab.example.com/oauth/discovery/keys").is_ok());
        assert!(check_jwks_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_jwks_url("http://localhost/jwks").is_ok());
        assert!(check_jwks_url("http://[::1]:1/jwks").is_ok());
        assert!(check_jwks_url("http://gitlab.example.com/jwks").is_err());
        assert!(check_jwks_url("ftp://127.0.0.1/jwks").is_err());
        assert!(check_jwks_url("not a url").is_err());
    }
}
