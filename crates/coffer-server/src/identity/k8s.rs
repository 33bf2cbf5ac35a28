//! `k8s` methods: a pod's service-account token, sent base64-encoded as
//! `k8s-service-account-token` (as the Akeyless SDKs and GitHub Action do).
//!
//! Two ways to verify it, chosen per method:
//! - **JWKS**: the cluster's service-account issuer keys (`jwks-uri`, e.g.
//!   `https://<issuer>/openid/v1/jwks`, or `jwks-json-data` from
//!   `kubectl get --raw /openid/v1/jwks`), with `k8s-issuer` and
//!   `audience` (both required) checked. Offline and fast; only bound
//!   (projected) tokens, which carry `exp`, pass.
//! - **TokenReview**: `k8s-host` is asked through the
//!   `authentication.k8s.io/v1` TokenReview API, authenticated with
//!   `token-reviewer-jwt` (stored encrypted) or, without one, the presented
//!   token itself; `k8s-ca-cert` pins the API server's CA. Works for
//!   legacy tokens too, and notices deleted pods and service accounts.
//!   `audience` is optional here: without it the cluster accepts tokens
//!   for the API server's own audience (the pod's default token); with it,
//!   the API server must confirm that audience.
//!
//! The Coffer token expires no later than a service-account token's `exp`
//! (legacy tokens have none).
//!
//! Then the namespace, service account and pod must match the method's
//! `bound-namespaces`, `bound-sa-names` and `bound-pod-names` (globs).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use coffer_core::glob::wildcard_match;
use coffer_core::model::AuthMethod;
use coffer_core::subclaims::{Claims, flatten_claims};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::oauth2::{jwks_data_b64, jwks_settings};
use super::{KeySource, Verified, bounded_list, settings, verify_jwt};
use crate::error::ApiError;
use crate::jwt::{self, check_jwks_url};
use crate::state::{AppState, now_ms};
use crate::wire::Body;

/// AAD binding a sealed token-reviewer JWT to its purpose.
const REVIEWER_AAD: &[u8] = b"coffer:k8s:token-reviewer-jwt";
const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_REVIEW_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct K8sConfig {
    pub bound_namespaces: Vec<String>,
    pub bound_sa_names: Vec<String>,
    pub bound_pod_names: Vec<String>,
    pub audience: String,
    pub issuer: String,
    pub jwks_uri: String,
    pub jwks_json: String,
    /// TokenReview API base URL (the cluster's API server).
    pub k8s_host: String,
    pub k8s_ca_cert: String,
    /// Data key id and sealed token-reviewer JWT (base64), if set.
    pub reviewer_key_id: i64,
    pub reviewer_jwt_sealed: String,
}

impl K8sConfig {
    fn uses_token_review(&self) -> bool {
        !self.k8s_host.is_empty()
    }
}

/// Validated settings of `create-auth-method-k8s`; the token-reviewer JWT
/// is sealed with the active data key.
pub(crate) fn settings_from_body(state: &AppState, body: &Body) -> Result<Value, ApiError> {
    let (jwks_uri, jwks_json) = jwks_settings(body, false)?;
    let k8s_host = body
        .opt_str("k8s-host")?
        .unwrap_or_default()
        .trim()
        .trim_end_matches('/')
        .to_owned();
    if k8s_host.is_empty() == (jwks_uri.is_empty() && jwks_json.is_empty()) {
        return Err(ApiError::bad(
            "say how to verify service-account tokens: either jwks-uri / jwks-json-data (the cluster issuer's JWKS, e.g. from `kubectl get --raw /openid/v1/jwks`) or k8s-host (the API server, for the TokenReview API), not both",
        ));
    }
    let issuer = body
        .opt_str("k8s-issuer")?
        .or(body.opt_str("issuer")?)
        .unwrap_or_default()
        .trim()
        .to_owned();
    let audience = body
        .opt_str("audience")?
        .unwrap_or_default()
        .trim()
        .to_owned();
    for (k, v) in [
        ("k8s-issuer", &issuer),
        ("audience", &audience),
        ("k8s-host", &k8s_host),
    ] {
        if v.len() > 1024 {
            return Err(ApiError::bad(format!("{k} is longer than 1024 bytes")));
        }
    }
    let mut cfg = K8sConfig {
        bound_namespaces: bounded_list(body, "bound-namespaces")?,
        bound_sa_names: bounded_list(body, "bound-sa-names")?,
        bound_pod_names: bounded_list(body, "bound-pod-names")?,
        audience,
        issuer,
        jwks_uri,
        jwks_json,
        k8s_host,
        ..Default::default()
    };
    if cfg.uses_token_review() {
        check_jwks_url(&cfg.k8s_host)
            .map_err(|e| ApiError::bad(format!("k8s-host: {}", e.replace("JWKS URL", "URL"))))?;
        let ca = body.opt_str("k8s-ca-cert")?.unwrap_or_default();
        if !ca.trim().is_empty() {
            let pem = decode_pem(&ca)?;
            reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    ApiError::bad("k8s-ca-cert is not a PEM certificate (plain or base64)")
                })?;
            cfg.k8s_ca_cert = pem;
        }
        if let Some(jwt) = body
            .opt_str("token-reviewer-jwt")?
            .filter(|j| !j.trim().is_empty())
        {
            if jwt.len() > jwt::MAX_TOKEN_BYTES {
                return Err(ApiError::bad("token-reviewer-jwt is too large"));
            }
            let id = state.keys.active_key_id();
            let sealed = state
                .keys
                .data_key(id)?
                .seal(jwt.trim().as_bytes(), REVIEWER_AAD)?;
            cfg.reviewer_key_id = id;
            cfg.reviewer_jwt_sealed = base64::engine::general_purpose::STANDARD.encode(sealed);
        }
    } else if cfg.issuer.is_empty() {
        return Err(ApiError::bad(
            "k8s-issuer is required with a JWKS: the cluster's service-account issuer (`kubectl get --raw /.well-known/openid-configuration`), e.g. https://kubernetes.default.svc.cluster.local",
        ));
    } else if cfg.audience.is_empty() {
        return Err(ApiError::bad(
            "audience is required with a JWKS: service-account tokens always carry aud, and without a bound audience a token minted for any other service that trusts this cluster (or for the API server itself) would log in here; mount a projected token for Coffer (a serviceAccountToken volume source with audience: <value>) and set audience to that value",
        ));
    }
    serde_json::to_value(&cfg).map_err(ApiError::internal)
}

/// A CA certificate given as PEM text or base64 of it (as kubeconfig does).
fn decode_pem(raw: &str) -> Result<String, ApiError> {
    let raw = raw.trim();
    if raw.starts_with("-----BEGIN") {
        return Ok(raw.to_owned());
    }
    base64::engine::general_purpose::STANDARD
        .decode(raw)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| s.trim_start().starts_with("-----BEGIN"))
        .ok_or_else(|| ApiError::bad("k8s-ca-cert is not a PEM certificate (plain or base64)"))
}

pub(crate) fn rules_json(am: &AuthMethod) -> Value {
    let c: K8sConfig = serde_json::from_value(am.config.clone()).unwrap_or_default();
    json!({
        "bound_namespaces": c.bound_namespaces,
        "bound_service_account_names": c.bound_sa_names,
        "bound_pod_names": c.bound_pod_names,
        "audience": c.audience,
        "k8s_issuer": c.issuer,
        "jwks_uri": c.jwks_uri,
        "jwks_json_data": jwks_data_b64(&c.jwks_json),
        "k8s_host": c.k8s_host,
        "token_reviewer": c.uses_token_review(),
        "token_reviewer_jwt_set": !c.reviewer_jwt_sealed.is_empty(),
    })
}

/// Who the cluster says the token belongs to.
#[derive(Debug, Default, Clone, PartialEq)]
struct SaIdentity {
    namespace: String,
    service_account: String,
    service_account_uid: String,
    pod_name: String,
    pod_uid: String,
}

pub(crate) async fn login(
    state: &Arc<AppState>,
    am: &AuthMethod,
    body: &Body,
) -> Result<Verified, ApiError> {
    let token = super::decode_b64_param(
        body,
        "k8s-service-account-token",
        "the pod's service-account token, base64-encoded",
    )
    .or_else(|e| {
        // Also accept the raw JWT, which people paste from the pod.
        match body.opt_str("k8s-service-account-token")? {
            Some(t) if t.trim().starts_with("eyJ") => Ok(t.trim().to_owned()),
            _ => Err(e),
        }
    })?;
    let token = token.trim();
    let cfg: K8sConfig = settings(am)?;
    let (sa, mut claims, not_after_ms) = if cfg.uses_token_review() {
        if !cfg.reviewer_jwt_sealed.is_empty() {
            state
                .keys
                .load_missing(&*state.store, cfg.reviewer_key_id)
                .await;
        }
        let reviewer = reviewer_jwt(state, &cfg)?;
        let sa = token_review(&cfg, reviewer.as_ref(), token).await?;
        let not_after = reviewed_token_expiry(token);
        if let Some(n) = not_after.filter(|n| *n <= now_ms()) {
            return Err(ApiError::Unauthorized(format!(
                "Kubernetes authentication failed: exp check: the service-account token expired at {} although the API server accepted it, and a Coffer token never outlives it; check the clocks",
                crate::timefmt::rfc3339(n)
            )));
        }
        (sa, Claims::new(), not_after)
    } else {
        let audiences: Vec<String> = Some(cfg.audience.clone())
            .filter(|a| !a.is_empty())
            .into_iter()
            .collect();
        let v = verify_jwt(
            state,
            am,
            token,
            KeySource::new(&cfg.jwks_uri, &cfg.jwks_json),
            jwt::Expectations {
                unique_identifier: "sub",
                issuer: Some(cfg.issuer.as_str()),
                audience: &audiences,
                ..Default::default()
            },
        )
        .await?;
        let sa = identity_from_claims(&v.claims).map_err(|m| {
            ApiError::Unauthorized(format!("Kubernetes authentication failed: {m}"))
        })?;
        (
            sa,
            flatten_claims(&v.claims),
            Some(super::jwt_not_after_ms(v.exp)),
        )
    };
    check_bindings(&cfg, &sa)?;
    for (k, v) in [
        ("namespace", &sa.namespace),
        ("service_account_name", &sa.service_account),
        ("service_account_uid", &sa.service_account_uid),
        ("pod_name", &sa.pod_name),
        ("pod_uid", &sa.pod_uid),
    ] {
        if !v.is_empty() {
            claims.insert(k.to_owned(), vec![v.clone()]);
        }
    }
    Ok(Verified {
        identity: format!(
            "system:serviceaccount:{}:{}",
            sa.namespace, sa.service_account
        ),
        claims,
        not_after_ms,
    })
}

/// The expiry (Unix ms) of a token the API server has just authenticated:
/// the `exp` of a JWT's payload. The signature over it was checked by the
/// cluster, so the payload is the one it accepted. Legacy (non-expiring)
/// and opaque tokens have none.
fn reviewed_token_expiry(token: &str) -> Option<i64> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    let Some(Value::Number(exp)) = claims.get("exp") else {
        return None;
    };
    let secs = exp.as_i64().or_else(|| exp.as_f64().map(|f| f as i64))?;
    Some(super::jwt_not_after_ms(secs))
}

fn reviewer_jwt(state: &AppState, cfg: &K8sConfig) -> Result<Option<SecretString>, ApiError> {
    if cfg.reviewer_jwt_sealed.is_empty() {
        return Ok(None);
    }
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(&cfg.reviewer_jwt_sealed)
        .map_err(|_| ApiError::internal("k8s method: stored reviewer JWT is not base64"))?;
    let plain = state
        .keys
        .data_key(cfg.reviewer_key_id)?
        .open(&sealed, REVIEWER_AAD)?;
    let text = String::from_utf8(plain.to_vec())
        .map_err(|_| ApiError::internal("k8s method: stored reviewer JWT is not UTF-8"))?;
    Ok(Some(SecretString::from(text)))
}

/// Namespace, service account and pod of a verified bound token
/// (`kubernetes.io` claim), falling back to `sub`.
fn identity_from_claims(c: &Map<String, Value>) -> Result<SaIdentity, String> {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
    let mut sa = SaIdentity::default();
    if let Some(k) = c.get("kubernetes.io").and_then(Value::as_object) {
        sa.namespace = s(k.get("namespace"));
        if let Some(x) = k.get("serviceaccount") {
            sa.service_account = s(x.get("name"));
            sa.service_account_uid = s(x.get("uid"));
        }
        if let Some(x) = k.get("pod") {
            sa.pod_name = s(x.get("name"));
            sa.pod_uid = s(x.get("uid"));
        }
    }
    if sa.namespace.is_empty() || sa.service_account.is_empty() {
        let sub = s(c.get("sub"));
        let (ns, name) = parse_sa_username(&sub).ok_or_else(|| {
            "subject check: the token is not a service-account token (sub is not system:serviceaccount:<namespace>:<name>)".to_string()
        })?;
        sa.namespace = ns;
        sa.service_account = name;
    }
    Ok(sa)
}

fn parse_sa_username(u: &str) -> Option<(String, String)> {
    let rest = u.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':'))
        .then(|| (ns.to_owned(), name.to_owned()))
}

fn check_bindings(cfg: &K8sConfig, sa: &SaIdentity) -> Result<(), ApiError> {
    let check = |what: &str, bound: &[String], value: &str| {
        if bound.is_empty() || bound.iter().any(|b| wildcard_match(b, value, true)) {
            Ok(())
        } else {
            Err(ApiError::Unauthorized(format!(
                "Kubernetes authentication failed: {what} check: {:?} is not in the auth method's bound {what}s",
                coffer_core::name::truncate_for_message(value)
            )))
        }
    };
    check("namespace", &cfg.bound_namespaces, &sa.namespace)?;
    check("service account", &cfg.bound_sa_names, &sa.service_account)?;
    check("pod name", &cfg.bound_pod_names, &sa.pod_name)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenReview {
    status: TokenReviewStatus,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenReviewStatus {
    authenticated: bool,
    error: Option<String>,
    user: ReviewUser,
    audiences: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ReviewUser {
    username: String,
    uid: String,
    extra: Option<std::collections::HashMap<String, Vec<String>>>,
}

/// Ask the API server whether the token is valid (TokenReview API).
async fn token_review(
    cfg: &K8sConfig,
    reviewer: Option<&SecretString>,
    token: &str,
) -> Result<SaIdentity, ApiError> {
    let fail = |m: String| ApiError::Unauthorized(format!("Kubernetes authentication failed: {m}"));
    if token.len() > jwt::MAX_TOKEN_BYTES {
        return Err(fail(
            "format check: the service-account token is too large".into(),
        ));
    }
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(REVIEW_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    if !cfg.k8s_ca_cert.is_empty() {
        for c in reqwest::Certificate::from_pem_bundle(cfg.k8s_ca_cert.as_bytes())
            .map_err(|_| ApiError::internal("k8s method: stored CA certificate does not parse"))?
        {
            builder = builder.add_root_certificate(c);
        }
    }
    let client = builder.build().map_err(ApiError::internal)?;
    let bearer = reviewer.map_or(token, |r| r.expose_secret());
    let mut spec = json!({"token": token});
    if !cfg.audience.is_empty() {
        spec["audiences"] = json!([cfg.audience]);
    }
    let url = format!(
        "{}/apis/authentication.k8s.io/v1/tokenreviews",
        cfg.k8s_host
    );
    let mut resp = client
        .post(&url)
        .bearer_auth(bearer)
        .json(&json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": spec,
        }))
        .send()
        .await
        .map_err(|e| {
            tracing::warn!(k8s_host = %cfg.k8s_host, error = %e, "TokenReview request failed");
            ApiError::Unauthorized(format!(
                "Kubernetes authentication failed: the TokenReview API at {} could not be reached ({}); check k8s-host and k8s-ca-cert",
                cfg.k8s_host,
                if e.is_timeout() { "timed out" } else if e.is_connect() { "cannot connect" } else { "TLS or protocol error" }
            ))
        })?;
    let status = resp.status();
    let mut buf = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|_| fail("TokenReview response was cut off".into()))?
    {
        if buf.len() + chunk.len() > MAX_REVIEW_BYTES {
            return Err(fail("TokenReview response is too large".into()));
        }
        buf.extend_from_slice(&chunk);
    }
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(fail(format!(
            "the API server refused the TokenReview ({status}): the token-reviewer JWT (or, without one, the presented token) needs the system:auth-delegator cluster role"
        )));
    }
    if !status.is_success() {
        return Err(fail(format!("the TokenReview API answered {status}")));
    }
    let review: TokenReview = serde_json::from_slice(&buf).map_err(|_| {
        fail("the TokenReview API answered something that is not a TokenReview".into())
    })?;
    let st = review.status;
    if !st.authenticated {
        let why = match st.error.as_deref() {
            Some(e) if !e.is_empty() => coffer_core::name::truncate_for_message(e),
            _ => "token not authenticated".to_owned(),
        };
        return Err(fail(format!(
            "TokenReview check: the cluster rejected the token: {why}"
        )));
    }
    // The API server returns the audiences it validated the token for
    // (spec.audiences ∩ the token's). An empty list means it ignored the
    // requested audiences (the token is then only valid for the API server
    // itself), so with a configured audience it must be listed.
    let audiences = st.audiences.unwrap_or_default();
    if !cfg.audience.is_empty() && !audiences.contains(&cfg.audience) {
        return Err(fail(format!(
            "aud check: the API server did not confirm that the token is for audience {:?}{}",
            cfg.audience,
            if audiences.is_empty() {
                " (its TokenReview answer lists no audiences: the token is valid only for the API server itself, or the API server does not check audiences)"
            } else {
                ""
            }
        )));
    }
    let (namespace, service_account) = parse_sa_username(&st.user.username).ok_or_else(|| {
        fail("subject check: the token does not belong to a service account".into())
    })?;
    let extra = |k: &str| {
        st.user
            .extra
            .as_ref()
            .and_then(|x| x.get(k))
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_default()
    };
    Ok(SaIdentity {
        namespace,
        service_account,
        service_account_uid: st.user.uid.clone(),
        pod_name: extra("authentication.kubernetes.io/pod-name"),
        pod_uid: extra("authentication.kubernetes.io/pod-uid"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sa_usernames() {
        assert_eq!(
            parse_sa_username("system:serviceaccount:ci:runner"),
            Some(("ci".into(), "runner".into()))
        );
        assert_eq!(parse_sa_username("system:serviceaccount:ci"), None);
        assert_eq!(parse_sa_username("system:serviceaccount::x"), None);
        assert_eq!(parse_sa_username("system:serviceaccount:a:b:c"), None);
        assert_eq!(parse_sa_username("admin"), None);
    }

    #[test]
    fn identity_from_bound_token_claims() {
        let c: Map<String, Value> = serde_json::from_value(json!({
            "sub": "system:serviceaccount:ci:runner",
            "kubernetes.io": {
                "namespace": "ci",
                "pod": {"name": "runner-7f9", "uid": "p-uid"},
                "serviceaccount": {"name": "runner", "uid": "sa-uid"}
            }
        }))
        .unwrap();
        let sa = identity_from_claims(&c).unwrap();
        assert_eq!(sa.namespace, "ci");
        assert_eq!(sa.service_account, "runner");
        assert_eq!(sa.pod_name, "runner-7f9");
        let only_sub: Map<String, Value> =
            serde_json::from_value(json!({"sub": "system:serviceaccount:a:b"})).unwrap();
        assert_eq!(
            identity_from_claims(&only_sub).unwrap().service_account,
            "b"
        );
        let user: Map<String, Value> = serde_json::from_value(json!({"sub": "alice"})).unwrap();
        assert!(identity_from_claims(&user).is_err());
    }

    #[test]
    fn reviewed_token_expiry_reads_exp_of_jwts_only() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let jwt = |payload: Value| {
            format!(
                "eyJhbGciOiJSUzI1NiJ9.{}.c2ln",
                URL_SAFE_NO_PAD.encode(payload.to_string())
            )
        };
        assert_eq!(
            reviewed_token_expiry(&jwt(json!({"exp": 1_700_000_020}))),
            Some(1_700_000_020_000)
        );
        assert_eq!(
            reviewed_token_expiry(&jwt(json!({"exp": 1_700_000_020.9}))),
            Some(1_700_000_020_000)
        );
        // Legacy service-account tokens carry no exp; opaque tokens are no JWT.
        assert_eq!(reviewed_token_expiry(&jwt(json!({"sub": "x"}))), None);
        assert_eq!(reviewed_token_expiry(&jwt(json!({"exp": "soon"}))), None);
        assert_eq!(reviewed_token_expiry("legacy-sa-token"), None);
        assert_eq!(reviewed_token_expiry("a.%%%.c"), None);
        assert_eq!(reviewed_token_expiry("a.b.c.d"), None);
    }

    #[test]
    fn bindings_use_globs_and_name_the_failed_check() {
        let cfg = K8sConfig {
            bound_namespaces: vec!["ci-*".into()],
            bound_sa_names: vec!["runner".into()],
            ..Default::default()
        };
        let mut sa = SaIdentity {
            namespace: "ci-prod".into(),
            service_account: "runner".into(),
            ..Default::default()
        };
        assert!(check_bindings(&cfg, &sa).is_ok());
        sa.namespace = "default".into();
        let e = check_bindings(&cfg, &sa).unwrap_err().to_string();
        assert!(e.contains("namespace check"), "{e}");
        sa.namespace = "ci-x".into();
        sa.service_account = "Runner".into();
        assert!(
            check_bindings(&cfg, &sa)
                .unwrap_err()
                .to_string()
                .contains("service account check")
        );
    }
}
