//! The JWT parser and verifier (coffer-server `jwt.rs`) against a fixed
//! JWKS (Ed25519 `ed`, EC P-256 `es`, RSA `rsa` with `alg: RS256`, and an
//! Ed25519 key without `kid`'s twin), three ways, chosen by the first byte:
//! - arbitrary token text: `ParsedJwt::parse` then `verify` (no panic; a
//!   refusal never echoes the token);
//! - arbitrary JWKS bytes: `KeySet::parse` (kept keys are usable ones);
//! - a structurally valid token built from fuzzed header fields and claims,
//!   signed with the Ed25519 or P-256 key (or not, or tampered with): the
//!   outcome and the failed check must be what a model of the documented
//!   rules predicts (algorithm allow-list, key family and `alg`, `kid`,
//!   signature, then exp/nbf/iat/iss/aud/client/event/unique-identifier).
#![no_main]

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coffer_server::jwt::{Expectations, KeyKind, KeySet, ParsedJwt, verify};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

const NOW: i64 = 1_790_000_000;
const RSA_N: &str = "uYwwTVbD7CqVt49jjGSjm9D3usPc7QF-9EtXsK_cLCbu3vC7ZVV6_sDwuyRC2FDmWOC-C1_Nm4bcbbusu4cn3dJYmp26UVpZ0M7Wyz1vTHpMs4VVkOeWMt7OZS152rWx0VgFsTLfT9GzaHnGqPqY7SOSNaDS2rE3IT2qa2z7W-2q5wqlKHMSfd78Dpqf5i6KF9gOUpx0ZEDUblQXb2Lu8tyn-U0qz6ky9jbh36wrUA-J0_QK7j_kOwayUwZx268bzvNmD-K1ScXIJvFV6pVvLZ9CUpOJuJXfwis8FLSa-Egfa6VxiOwXPxA6Vs6C_oKk_-AIdrevHeFKV5m7P4FlKw";

struct Fixture {
    ed: Ed25519KeyPair,
    es: EcdsaKeyPair,
    rng: SystemRandom,
    keys: KeySet,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rng = SystemRandom::new();
        let ed = Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).expect("ed25519 key");
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("p256 key");
        let es = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref())
            .expect("p256 key");
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let point = es.public_key().as_ref();
        let jwks = json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(ed.public_key().as_ref())},
            {"kty": "EC", "crv": "P-256", "kid": "es", "x": b64(&point[1..33]), "y": b64(&point[33..65])},
            {"kty": "RSA", "kid": "rsa", "alg": "RS256", "n": RSA_N, "e": "AQAB"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": RSA_N, "e": "AQAB"},
        ]});
        let keys = KeySet::parse(jwks.to_string().as_bytes()).expect("fixture JWKS");
        assert_eq!(keys.keys.len(), 3, "the fixture keeps ed, es and rsa");
        Fixture { ed, es, rng, keys }
    })
}

const ISSUER: &str = "https://gitlab.example.com";
const AUDIENCES: &[&str] = &["https://coffer.example.com", "coffer"];
const CLIENTS: &[&str] = &["ci", "deployer"];
const EVENTS: &[&str] = &["pull_request_target", "workflow_run"];

#[derive(Arbitrary, Debug)]
enum Num {
    Absent,
    Null,
    Near(i16),
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
}

#[derive(Arbitrary, Debug)]
enum Text {
    Absent,
    Known(u8),
    Other(String),
    Number(i32),
    List(Vec<Text>),
    Empty,
    Long(u16),
}

#[derive(Arbitrary, Debug)]
enum Kid {
    Absent,
    Null,
    Ed,
    Es,
    Rsa,
    Hmac,
    Other(String),
    Number(i32),
    Long,
}

#[derive(Arbitrary, Debug)]
struct Token {
    alg: u8,
    alg_other: String,
    kid: Kid,
    crit: bool,
    header_extra: Vec<(String, String)>,
    /// 0: Ed25519, 1: P-256, 2: a garbage signature, 3: no signature.
    sign_with: u8,
    /// 0: none; 1: change the payload after signing; 2: change the signature.
    tamper: u8,
    raw_payload: Option<Vec<u8>>,
    exp: Num,
    nbf: Num,
    iat: Num,
    iss: Text,
    aud: Text,
    sub: Text,
    azp: Text,
    client_id: Text,
    event_name: Text,
    jti: Text,
    extra: Vec<(String, String)>,
    // Expectations
    want_issuer: bool,
    want_audience: bool,
    want_clients: bool,
    refuse: bool,
    leeway: u16,
    unique_identifier: u8,
}

const ALGS: &[&str] = &[
    "EdDSA", "ES256", "RS256", "PS256", "ES384", "RS512", "HS256", "hs512", "none", "NoNe",
    "ES512", "",
];

fn num(n: &Num) -> Option<Value> {
    Some(match n {
        Num::Absent => return None,
        Num::Null => Value::Null,
        Num::Near(d) => json!(NOW + i64::from(*d)),
        Num::Int(i) => json!(i),
        Num::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Num::Text(s) => json!(s),
        Num::Bool(b) => json!(b),
    })
}

fn text(t: &Text, known: &[&str]) -> Option<Value> {
    Some(match t {
        Text::Absent => return None,
        Text::Known(i) => json!(known[usize::from(*i) % known.len()]),
        Text::Other(s) => json!(s),
        Text::Number(n) => json!(n),
        Text::List(l) => Value::Array(l.iter().take(4).filter_map(|t| text(t, known)).collect()),
        Text::Empty => json!(""),
        Text::Long(n) => json!("x".repeat(usize::from(*n % 1024))),
    })
}

/// What `check_claims` must answer: Ok, or the name of the first failed check.
fn model_claims(c: &Map<String, Value>, e: &Expectations<'_>) -> Result<(), &'static str> {
    let numeric = |name: &'static str| -> Result<Option<i64>, &'static str> {
        match c.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))),
            Some(_) => Err(name),
        }
    };
    let exp = numeric("exp")?.ok_or("exp")?;
    if e.now_secs > exp.saturating_add(e.leeway_secs) {
        return Err("exp");
    }
    if numeric("nbf")?.is_some_and(|nbf| e.now_secs.saturating_add(e.leeway_secs) < nbf) {
        return Err("nbf");
    }
    if numeric("iat")?.is_some_and(|iat| e.now_secs.saturating_add(e.leeway_secs) < iat) {
        return Err("iat");
    }
    if let Some(want) = e.issuer.filter(|i| !i.is_empty())
        && c.get("iss").and_then(Value::as_str) != Some(want)
    {
        return Err("iss");
    }
    // aud: a string or a list of strings, else refused; a method without
    // an audience refuses any token that names one (Vault's rule); one
    // with an audience needs a token naming it.
    let auds: Vec<&str> = match c.get("aud") {
        None | Some(Value::Null) => vec![],
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(a)) => {
            if !a.iter().all(Value::is_string) {
                return Err("aud");
            }
            a.iter().filter_map(Value::as_str).collect()
        }
        Some(_) => return Err("aud"),
    };
    if e.audience.is_empty() {
        if !auds.is_empty() {
            return Err("aud");
        }
    } else if !auds.iter().any(|a| e.audience.iter().any(|w| w == a)) {
        return Err("aud");
    }
    if !e.bound_client_ids.is_empty() {
        let client = ["azp", "client_id", "cid"]
            .iter()
            .find_map(|k| c.get(*k).and_then(Value::as_str));
        if !client.is_some_and(|c| e.bound_client_ids.iter().any(|b| b == c)) {
            return Err("client");
        }
    }
    if let Some(ev) = c.get("event_name").and_then(Value::as_str)
        && e.refuse_events.iter().any(|r| r == ev)
    {
        return Err("event");
    }
    match c.get(e.unique_identifier) {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 512 => Ok(()),
        Some(Value::Number(_)) => Ok(()),
        _ => Err("unique-identifier"),
    }
}

/// The check a refusal names: the text before " check".
fn check_of(msg: &str) -> &str {
    msg.split(" check").next().unwrap_or(msg)
}

fn structured(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let t = Token::arbitrary(u)?;
    let f = fixture();
    let alg_name = match ALGS.get(usize::from(t.alg)) {
        Some(a) => (*a).to_owned(),
        None => t.alg_other.clone(),
    };
    let mut header = Map::new();
    if t.alg != 255 {
        header.insert("alg".into(), json!(alg_name));
    }
    let kid = match &t.kid {
        Kid::Absent => None,
        Kid::Null => Some(Value::Null),
        Kid::Ed => Some(json!("ed")),
        Kid::Es => Some(json!("es")),
        Kid::Rsa => Some(json!("rsa")),
        Kid::Hmac => Some(json!("hmac")),
        Kid::Other(s) => Some(json!(s)),
        Kid::Number(n) => Some(json!(n)),
        Kid::Long => Some(json!("k".repeat(257))),
    };
    if let Some(k) = &kid {
        header.insert("kid".into(), k.clone());
    }
    for (k, v) in t.header_extra.iter().take(4) {
        if k != "alg" && k != "kid" && k != "crit" {
            header.insert(k.clone(), json!(v));
        }
    }
    if t.crit {
        header.insert("crit".into(), json!(["exp"]));
    }
    let mut claims = Map::new();
    for (k, v) in t.extra.iter().take(4) {
        claims.insert(k.clone(), json!(v));
    }
    for (name, n) in [("exp", &t.exp), ("nbf", &t.nbf), ("iat", &t.iat)] {
        if let Some(v) = num(n) {
            claims.insert(name.into(), v);
        }
    }
    for (name, v, known) in [
        ("iss", &t.iss, &[ISSUER, "https://evil.example"][..]),
        ("aud", &t.aud, AUDIENCES),
        (
            "sub",
            &t.sub,
            &["project_path:group/app:ref_type:branch:ref:main"][..],
        ),
        ("azp", &t.azp, CLIENTS),
        ("client_id", &t.client_id, CLIENTS),
        ("event_name", &t.event_name, EVENTS),
        ("jti", &t.jti, &["j-1"][..]),
    ] {
        if let Some(v) = text(v, known) {
            claims.insert(name.into(), v);
        }
    }
    let payload = match &t.raw_payload {
        Some(raw) => URL_SAFE_NO_PAD.encode(raw),
        None => URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string()),
    };
    let h64 = URL_SAFE_NO_PAD.encode(Value::Object(header.clone()).to_string());
    let signing_input = format!("{h64}.{payload}");
    let sig = match t.sign_with % 4 {
        0 => URL_SAFE_NO_PAD.encode(f.ed.sign(signing_input.as_bytes()).as_ref()),
        1 => URL_SAFE_NO_PAD.encode(
            f.es.sign(&f.rng, signing_input.as_bytes())
                .expect("p256 sign")
                .as_ref(),
        ),
        2 => URL_SAFE_NO_PAD.encode(b"not a signature"),
        _ => String::new(),
    };
    let (payload_sent, sig_sent) = match t.tamper % 3 {
        1 => (format!("{payload}A"), sig.clone()),
        2 if !sig.is_empty() => {
            let mut s = sig.clone().into_bytes();
            s[0] = if s[0] == b'A' { b'B' } else { b'A' };
            (payload.clone(), String::from_utf8(s).expect("ascii"))
        }
        _ => (payload.clone(), sig.clone()),
    };
    let token = format!("{h64}.{payload_sent}.{sig_sent}");

    let audience: Vec<String> = if t.want_audience {
        AUDIENCES.iter().map(|s| (*s).to_owned()).collect()
    } else {
        vec![]
    };
    let clients: Vec<String> = if t.want_clients {
        CLIENTS.iter().map(|s| (*s).to_owned()).collect()
    } else {
        vec![]
    };
    let refuse: Vec<String> = if t.refuse {
        EVENTS.iter().map(|s| (*s).to_owned()).collect()
    } else {
        vec![]
    };
    let expect = Expectations {
        unique_identifier: ["sub", "jti", "aud", "exp"][usize::from(t.unique_identifier % 4)],
        issuer: t.want_issuer.then_some(ISSUER),
        audience: &audience,
        bound_client_ids: &clients,
        refuse_events: &refuse,
        leeway_secs: i64::from(t.leeway % 600),
        now_secs: NOW,
    };

    // The model, step by step.
    let want: Result<(), &str> = (|| {
        if token.len() > coffer_server::jwt::MAX_TOKEN_BYTES {
            return Err("size");
        }
        if payload_sent.is_empty() {
            return Err("format");
        }
        let alg = match header.get("alg").and_then(Value::as_str) {
            None => return Err("algorithm"),
            Some(a) => a,
        };
        let known = [
            "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
        ];
        if !known.contains(&alg) {
            return Err("algorithm");
        }
        if sig_sent.is_empty() {
            return Err("signature");
        }
        if t.crit {
            return Err("header");
        }
        let kid = match &kid {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) if k.len() <= 256 => Some(k.as_str()),
            Some(_) => return Err("header"),
        };
        // JWKS: ed (Ed25519), es (P-256), rsa (RSA, alg RS256).
        let keys: [(&str, &[&str]); 3] =
            [("ed", &["EdDSA"]), ("es", &["ES256"]), ("rsa", &["RS256"])];
        let candidates: Vec<_> = keys
            .iter()
            .filter(|(k, _)| kid.is_none_or(|want| want == *k))
            .collect();
        if candidates.is_empty() {
            return Err("key");
        }
        let usable: Vec<&str> = candidates
            .iter()
            .filter(|(_, algs)| algs.contains(&alg))
            .map(|(k, _)| *k)
            .collect();
        if usable.is_empty() {
            return Err("algorithm");
        }
        let signed_by = match t.sign_with % 4 {
            0 => Some(("ed", "EdDSA")),
            1 => Some(("es", "ES256")),
            _ => None,
        };
        let genuine =
            t.tamper % 3 == 0 && signed_by.is_some_and(|(k, a)| a == alg && usable.contains(&k));
        if !genuine {
            // A tampered payload may also stop being base64url first; the
            // signature check comes before the payload is decoded.
            return Err("signature");
        }
        let bytes = match &t.raw_payload {
            Some(raw) => raw.clone(),
            None => Value::Object(claims.clone()).to_string().into_bytes(),
        };
        let Ok(obj) = serde_json::from_slice::<Map<String, Value>>(&bytes) else {
            return Err("format");
        };
        model_claims(&obj, &expect)
    })();

    let got = ParsedJwt::parse(&token).and_then(|p| verify(&p, &f.keys, &expect));
    match (&got, &want) {
        (Ok(v), Ok(())) => {
            assert!(
                v.exp >= NOW - expect.leeway_secs,
                "accepted an expired token"
            );
            assert!(!v.identity.is_empty());
        }
        (Err(e), Err(w)) => assert_eq!(check_of(&e.0), *w, "refused for another reason: {}", e.0),
        _ => panic!(
            "verifier and model disagree: got {:?}, model {:?}; header {:?}",
            got.as_ref().map(|v| &v.identity),
            want,
            header
        ),
    }
    Ok(())
}

fn raw_token(data: &[u8]) {
    let token = String::from_utf8_lossy(data);
    let f = fixture();
    let expect = Expectations {
        unique_identifier: "sub",
        issuer: Some(ISSUER),
        audience: &[],
        leeway_secs: 60,
        now_secs: NOW,
        ..Default::default()
    };
    let result = ParsedJwt::parse(&token).and_then(|p| {
        if let Some(k) = &p.kid {
            assert!(k.len() <= 256);
        }
        verify(&p, &f.keys, &expect)
    });
    match result {
        // Only a genuine signature verifies: none can come from here
        // unless the fuzzer finds an Ed25519/P-256 forgery.
        Ok(_) => panic!("an unsigned token verified"),
        Err(e) => {
            if token.len() > 90 {
                assert!(!e.0.contains(token.as_ref()), "a refusal echoes the token");
            }
        }
    }
}

fn jwks(data: &[u8]) {
    if let Ok(set) = KeySet::parse(data) {
        assert!(!set.keys.is_empty() && set.keys.len() <= 64);
        for k in &set.keys {
            if let Some(a) = k.alg {
                assert!(k.kind.accepts(a), "{:?} kept with alg {a:?}", k.kind);
            }
            let _ = matches!(
                k.kind,
                KeyKind::Rsa | KeyKind::P256 | KeyKind::P384 | KeyKind::Ed25519
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0..=63 => raw_token(rest),
        64..=95 => jwks(rest),
        _ => {
            let _ = structured(&mut Unstructured::new(rest));
        }
    }
});
