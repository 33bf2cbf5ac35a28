//! `aws_iam` methods: the caller proves its AWS identity with a signed STS
//! `GetCallerIdentity` request (the Akeyless `cloud-id`: base64 of
//! `{"sts_request_method", "sts_request_url", "sts_request_body",
//! "sts_request_headers"}`, each base64, headers as `{name: [value]}`).
//! Coffer replays it to the method's STS endpoint; STS checks the signature
//! and answers with the caller's ARN, user ID and account, which are then
//! matched against the method's bounds.
//!
//! Replaying a client-built request is the dangerous part (Vault's
//! CVE-2020-16250/16251 came from trusting its URL, headers and response),
//! so the request is rebuilt from checked parts:
//! - **Endpoint**: the request goes only to the method's `sts-url`. The
//!   client's `sts_request_url` must be that same URL (scheme, host, port,
//!   path; no query): a mismatch is refused before anything is sent, with a
//!   message saying which endpoint to sign for. The URL actually used is
//!   the configured one, never the client's string.
//! - **Method and body**: POST, and the body must be exactly the form
//!   `Action=GetCallerIdentity&Version=2011-06-15` (any order, nothing
//!   else). A missing body means that form (`akeyless-go-cloud-id` omits
//!   it).
//! - **Headers**: STS verifies the signature over every header named in
//!   `SignedHeaders`, so each signed header must reach it with the value
//!   the client signed, or the login fails. Forwarding a client's headers
//!   is also how a replayed request could be steered (another action or
//!   protocol via `X-Amz-Target` or a JSON `Content-Type`, a proxy or
//!   routing header, an `Expect`/`Transfer-Encoding` that changes how the
//!   body is framed), so only headers that cannot change what STS does or
//!   where the request goes are forwarded, each either opaque to STS or
//!   checked: `Authorization` (AWS4-HMAC-SHA256 for service `sts`),
//!   `X-Amz-Date` (fresh), `X-Amz-Security-Token` (the session token the
//!   signature is checked with), `Content-Type` (a form),
//!   `X-Amz-Content-Sha256` (the SHA-256 of the fixed body: the AWS SDK v3
//!   signer always signs it), and the SDKs' telemetry `Amz-Sdk-Invocation-Id`,
//!   `Amz-Sdk-Request`, `X-Amz-User-Agent`. `Host` and `Content-Length`
//!   are checked against the endpoint and the body, then set by the HTTP
//!   client (with the same values). Other headers are dropped; if the
//!   signature covers one, the request is refused before anything is sent,
//!   naming the header (STS would refuse it anyway, less clearly).
//! - **Freshness**: `X-Amz-Date` must be within 15 minutes of the server's
//!   clock (STS checks it too, test doubles do not).
//! - **Transport**: 3 s connect, 5 s total, no redirects, 64 KiB answer.
//! - **Answer**: a strict little XML reader (no DTDs, entities limited to
//!   the predefined ones, each field exactly once under
//!   `GetCallerIdentityResponse/GetCallerIdentityResult`).
//!
//! The signed `Authorization` header and the session token are secrets:
//! they are never logged, and error messages never echo them (STS error
//! messages are scrubbed of them too).
//!
//! Not done: a server-ID header bound into the signature (Vault's
//! `X-Vault-AWS-IAM-Server-ID`). Akeyless clients do not send one, so a
//! cloud-id can be replayed to any server trusting the same account while
//! its signature is fresh (15 minutes): treat cloud-ids as credentials.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use coffer_core::glob::wildcard_match;
use coffer_core::model::AuthMethod;
use coffer_core::name::truncate_for_message;
use coffer_core::subclaims::Claims;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Verified, bounded_list, decode_b64_param, settings};
use crate::error::ApiError;
use crate::jwt::check_jwks_url;
use crate::state::{AppState, now_ms};
use crate::wire::Body;

/// The global STS endpoint (signing region us-east-1), the Akeyless default.
pub(crate) const DEFAULT_STS_URL: &str = "https://sts.amazonaws.com";
/// The only request body accepted (and the one assumed when it is absent).
const GET_CALLER_IDENTITY_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const STS_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_STS_RESPONSE_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 32;
const MAX_HEADER_VALUE_BYTES: usize = 8 * 1024;
const MAX_BODY_BYTES: usize = 1024;
const MAX_URL_BYTES: usize = 2048;

/// Headers copied into the replayed request (lower case).
const FORWARDED_HEADERS: &[&str] = &[
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "content-type",
    "x-amz-content-sha256",
    "amz-sdk-invocation-id",
    "amz-sdk-request",
    "x-amz-user-agent",
];

/// Stored settings of an `aws_iam` method.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct AwsIamConfig {
    /// Normalised STS endpoint URL; every login is replayed there.
    pub sts_url: String,
    /// 12-digit account IDs (required, exact).
    pub bound_account_ids: Vec<String>,
    /// ARN patterns (`*`/`?` wildcards), matched against the caller ARN and,
    /// for an assumed role, the role's IAM ARN.
    pub bound_arns: Vec<String>,
    pub bound_role_names: Vec<String>,
    pub bound_role_ids: Vec<String>,
    /// Role session names (for EC2 instance profiles: the instance ID).
    pub bound_resource_ids: Vec<String>,
    pub bound_user_names: Vec<String>,
    pub bound_user_ids: Vec<String>,
}

/// Validated settings of `create-auth-method-aws-iam`.
pub(crate) fn settings_from_body(body: &Body) -> Result<Value, ApiError> {
    let bound_account_ids = bounded_list(body, "bound-aws-account-id")?;
    if bound_account_ids.is_empty() {
        return Err(ApiError::bad(
            "missing required parameter bound-aws-account-id: the 12-digit IDs of the AWS accounts whose identities may log in",
        ));
    }
    if let Some(bad) = bound_account_ids.iter().find(|a| !is_account_id(a)) {
        return Err(ApiError::bad(format!(
            "bound-aws-account-id {:?} is not an AWS account ID: use the 12-digit number (no wildcards)",
            truncate_for_message(bad)
        )));
    }
    let sts_url = body
        .opt_str("sts-url")?
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_STS_URL.to_owned());
    let endpoint = check_sts_url(&sts_url).map_err(ApiError::BadRequest)?;
    let bound_arns = bounded_list(body, "bound-arn")?;
    if let Some(bad) = bound_arns.iter().find(|a| !a.starts_with("arn:")) {
        return Err(ApiError::bad(format!(
            "bound-arn {:?} is not an ARN: use e.g. arn:aws:iam::123456789012:role/ci-deployer (`*` wildcards allowed)",
            truncate_for_message(bad)
        )));
    }
    let cfg = AwsIamConfig {
        sts_url: endpoint.to_string(),
        bound_account_ids,
        bound_arns,
        bound_role_names: exact_list(body, "bound-role-name")?,
        bound_role_ids: exact_list(body, "bound-role-id")?,
        bound_resource_ids: exact_list(body, "bound-resource-id")?,
        bound_user_names: exact_list(body, "bound-user-name")?,
        bound_user_ids: exact_list(body, "bound-user-id")?,
    };
    serde_json::to_value(&cfg).map_err(ApiError::internal)
}

/// A bound list compared exactly: wildcards would silently match nothing.
fn exact_list(body: &Body, key: &str) -> Result<Vec<String>, ApiError> {
    let list = bounded_list(body, key)?;
    if let Some(bad) = list.iter().find(|v| v.contains(['*', '?'])) {
        return Err(ApiError::bad(format!(
            "{key} takes exact values, not patterns ({:?}); use bound-arn for wildcards",
            truncate_for_message(bad)
        )));
    }
    Ok(list)
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `sts-url`: https (plain http only on loopback, as for JWKS URLs), no
/// credentials, query or fragment.
fn check_sts_url(url: &str) -> Result<Url, String> {
    if url.len() > MAX_URL_BYTES {
        return Err(format!("sts-url is longer than {MAX_URL_BYTES} bytes"));
    }
    check_jwks_url(url).map_err(|e| e.replace("jwks-uri", "sts-url"))?;
    let parsed = Url::parse(url).map_err(|_| "sts-url is not a URL".to_string())?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("sts-url must not carry a user name or password".into());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("sts-url must not have a query or fragment: give the endpoint, e.g. https://sts.us-east-1.amazonaws.com".into());
    }
    Ok(parsed)
}

/// `access_info.aws_iam_access_rules` (field names of the SDK's
/// `AWSIAMAccessRules`).
pub(crate) fn rules_json(am: &AuthMethod) -> Value {
    let c: AwsIamConfig = serde_json::from_value(am.config.clone()).unwrap_or_default();
    json!({
        "account_id": c.bound_account_ids,
        "arn": c.bound_arns,
        "role_name": c.bound_role_names,
        "role_id": c.bound_role_ids,
        "resource_id": c.bound_resource_ids,
        "user_name": c.bound_user_names,
        "user_id": c.bound_user_ids,
        "sts_endpoint": c.sts_url,
    })
}

/// Verify an `aws_iam` login: check the signed request, replay it to STS,
/// bind on the answer. The identity is the caller's ARN.
pub(crate) async fn login(
    _state: &Arc<AppState>,
    am: &AuthMethod,
    body: &Body,
) -> Result<Verified, ApiError> {
    let cloud_id = decode_b64_param(
        body,
        "cloud-id",
        "the signed STS GetCallerIdentity request made by an Akeyless cloud-id library",
    )?;
    let cfg: AwsIamConfig = settings(am)?;
    let endpoint = Url::parse(&cfg.sts_url).map_err(|_| {
        ApiError::internal(format!(
            "auth method {}: stored sts-url does not parse",
            am.name
        ))
    })?;
    let request =
        SignedRequest::from_cloud_id(&cloud_id, &endpoint, now_ms() / 1000).map_err(fail)?;
    let answer = replay(&endpoint, &request).await?;
    let caller = Principal::from_answer(answer).map_err(fail)?;
    check_bindings(&cfg, &caller).map_err(fail)?;
    Ok(Verified {
        identity: caller.arn.clone(),
        claims: caller.claims(),
        not_after_ms: None,
    })
}

fn fail(msg: String) -> ApiError {
    ApiError::Unauthorized(format!("AWS IAM authentication failed: {msg}"))
}

// ---------------------------------------------------------------------------
// The signed request
// ---------------------------------------------------------------------------

/// A checked GetCallerIdentity request, ready to be sent to the endpoint.
struct SignedRequest {
    body: String,
    /// Lower-case name and value of each header to send.
    headers: Vec<(&'static str, String)>,
    /// Values that must never appear in a message (signature, session token).
    secrets: Vec<String>,
}

impl std::fmt::Debug for SignedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values hold the signature and session token: names only.
        f.debug_struct("SignedRequest")
            .field("body", &self.body)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The parts of a SigV4 `Authorization` header that are checked.
#[derive(Debug, PartialEq)]
struct SigV4 {
    scope_date: String,
    region: String,
    signed_headers: Vec<String>,
    signature: String,
}

impl SignedRequest {
    /// Decode and check the cloud-id JSON against the method's endpoint.
    /// Errors name the failed check and never carry secret values.
    /// Check a decoded cloud-id. A refusal never quotes the request's
    /// signature or session token, wherever the client put them (found by
    /// fuzzing: a field echoed in a message may hold them): refusals go to
    /// the client and to the audit log.
    fn from_cloud_id(text: &str, endpoint: &Url, now_secs: i64) -> Result<SignedRequest, String> {
        Self::check_cloud_id(text, endpoint, now_secs)
            .map_err(|message| scrub(&message, &secrets_of_cloud_id(text)))
    }

    fn check_cloud_id(text: &str, endpoint: &Url, now_secs: i64) -> Result<SignedRequest, String> {
        const SHAPE: &str = "the decoded cloud-id must be the JSON object {\"sts_request_method\", \"sts_request_url\", \"sts_request_body\", \"sts_request_headers\"} made by an Akeyless cloud-id library";
        let value: Value =
            serde_json::from_str(text).map_err(|_| format!("cloud-id check: not JSON; {SHAPE}"))?;
        let Value::Object(obj) = value else {
            return Err(format!("cloud-id check: not a JSON object; {SHAPE}"));
        };
        let field = |k: &str| -> Result<Option<&str>, String> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(format!("cloud-id check: {k} must be a string")),
            }
        };
        let required = |k: &str| -> Result<&str, String> {
            field(k)?
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| format!("cloud-id check: {k} is missing; {SHAPE}"))
        };

        let method = required("sts_request_method")?;
        if !method.trim().eq_ignore_ascii_case("POST") {
            return Err(format!(
                "method check: sts_request_method must be POST, not {:?}",
                truncate_for_message(method)
            ));
        }

        let url = b64_text(
            "sts_request_url",
            required("sts_request_url")?,
            MAX_URL_BYTES,
        )?;
        check_request_url(url.trim(), endpoint)?;

        let body = match field("sts_request_body")? {
            Some(b) if !b.trim().is_empty() => b64_text("sts_request_body", b, MAX_BODY_BYTES)?,
            _ => GET_CALLER_IDENTITY_BODY.to_owned(),
        };
        check_form_body(&body)?;

        let headers_json = b64_text(
            "sts_request_headers",
            required("sts_request_headers")?,
            MAX_HEADERS * (MAX_HEADER_VALUE_BYTES + 128),
        )?;
        let headers = parse_headers(&headers_json)?;
        Self::check_headers(headers, body, endpoint, now_secs)
    }

    fn check_headers(
        headers: Vec<(String, String)>,
        body: String,
        endpoint: &Url,
        now_secs: i64,
    ) -> Result<SignedRequest, String> {
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let auth = parse_authorization(get("authorization").ok_or(
            "signature check: the Authorization header is missing from sts_request_headers (the request is not signed)",
        )?)?;
        let amz_date = get("x-amz-date")
            .ok_or("date check: the X-Amz-Date header is missing from sts_request_headers")?;
        let signed_at = parse_amz_date(amz_date).ok_or_else(|| {
            format!(
                "date check: X-Amz-Date {:?} is not a SigV4 timestamp (YYYYMMDDTHHMMSSZ)",
                truncate_for_message(amz_date)
            )
        })?;
        if (signed_at - now_secs).abs() > MAX_CLOCK_SKEW_SECS {
            return Err(format!(
                "date check: the request was signed at {amz_date}, more than {} minutes from the server's time; sign a fresh request (and check the clocks)",
                MAX_CLOCK_SKEW_SECS / 60
            ));
        }
        if !amz_date.starts_with(&auth.scope_date) {
            return Err("signature check: the credential scope date of the Authorization header is not the X-Amz-Date day".into());
        }
        for required in ["host", "x-amz-date"] {
            if !auth.signed_headers.iter().any(|h| h == required) {
                return Err(format!(
                    "signature check: the signature must cover the {required} header (SignedHeaders)"
                ));
            }
        }
        let authority = endpoint_authority(endpoint);
        if let Some(host) = get("host")
            && !host.trim().eq_ignore_ascii_case(&authority)
        {
            return Err(format!(
                "host check: the Host header {:?} is not this auth method's STS endpoint {authority:?}; sign the request for {endpoint}",
                truncate_for_message(host)
            ));
        }
        if let Some(len) = get("content-length")
            && len.trim() != body.len().to_string()
        {
            return Err(format!(
                "body check: Content-Length {:?} is not the length of sts_request_body ({})",
                truncate_for_message(len),
                body.len()
            ));
        }
        if let Some(ct) = get("content-type") {
            let media = ct.split(';').next().unwrap_or_default().trim();
            if !media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
                return Err(format!(
                    "body check: Content-Type must be application/x-www-form-urlencoded, not {:?}",
                    truncate_for_message(ct)
                ));
            }
        }
        if let Some(hash) = get("x-amz-content-sha256") {
            let want = hex::encode(aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                body.as_bytes(),
            ));
            if !hash.trim().eq_ignore_ascii_case(&want) {
                return Err(format!(
                    "body check: X-Amz-Content-Sha256 {:?} is not the SHA-256 of sts_request_body (hex {want})",
                    truncate_for_message(hash)
                ));
            }
        }
        for name in &auth.signed_headers {
            let name = name.as_str();
            if name == "host" {
                continue;
            }
            if !FORWARDED_HEADERS.contains(&name) && name != "content-length" {
                return Err(format!(
                    "header check: the signature covers the header {name:?}, which is not forwarded to STS (accepted: {}, host, content-length)",
                    FORWARDED_HEADERS[1..].join(", ")
                ));
            }
            if get(name).is_none() {
                return Err(format!(
                    "header check: the signed header {name:?} is missing from sts_request_headers"
                ));
            }
        }
        let mut secrets = vec![auth.signature.clone()];
        let mut out = Vec::new();
        for (name, value) in headers {
            let Some(known) = FORWARDED_HEADERS.iter().find(|h| **h == name) else {
                continue; // host and content-length are set by the client; others dropped
            };
            if name == "x-amz-security-token" {
                secrets.push(value.clone());
            }
            out.push((*known, value));
        }
        if !out.iter().any(|(n, _)| *n == "content-type") {
            out.push((
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            ));
        }
        Ok(SignedRequest {
            body,
            headers: out,
            secrets,
        })
    }
}

/// A base64 field of the cloud-id, decoded to text.
fn b64_text(field: &str, value: &str, max_decoded: usize) -> Result<String, String> {
    let value = value.trim();
    if value.len() > max_decoded.saturating_mul(4) / 3 + 4 {
        return Err(format!("cloud-id check: {field} is too large"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value.trim_end_matches('='))
        })
        .map_err(|_| format!("cloud-id check: {field} is not base64"))?;
    String::from_utf8(bytes)
        .map_err(|_| format!("cloud-id check: {field} does not decode to UTF-8 text"))
}

/// Host and, when not the scheme's default, port, as the signer saw them.
fn endpoint_authority(endpoint: &Url) -> String {
    let host = endpoint.host_str().unwrap_or_default();
    match endpoint.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

/// The signed URL must be the method's endpoint: nothing is ever sent
/// anywhere else.
fn check_request_url(url: &str, endpoint: &Url) -> Result<(), String> {
    let mismatch = |shown: &str| {
        format!(
            "request URL check: the request was signed for {shown}, but this auth method sends requests only to its sts-url {endpoint}; sign for that endpoint, or set sts-url to the endpoint your clients sign for"
        )
    };
    // An unparsable URL is not echoed: it is the client's raw input and
    // may hold anything, even the request's own credentials (found by
    // fuzzing); error messages end up in the audit log.
    let parsed = Url::parse(url).map_err(|e| {
        format!(
            "request URL check: sts_request_url is not a URL ({e}, {} bytes): sign a request for https://sts.amazonaws.com/ or this auth method's sts-url",
            url.len()
        )
    })?;
    // Shown without credentials, query or fragment.
    let shown = truncate_for_message(&format!(
        "{}://{}{}",
        parsed.scheme(),
        parsed
            .host_str()
            .map(|h| endpoint_authority_of(h, parsed.port()))
            .unwrap_or_default(),
        parsed.path()
    ));
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "request URL check: sts_request_url must not carry a user name or password".into(),
        );
    }
    if parsed.query().is_some_and(|q| !q.is_empty()) || parsed.fragment().is_some() {
        return Err(format!(
            "request URL check: sts_request_url {shown} has a query or fragment; GetCallerIdentity is sent as a POST form"
        ));
    }
    let same = parsed.scheme() == endpoint.scheme()
        && parsed.host() == endpoint.host()
        && parsed.port_or_known_default() == endpoint.port_or_known_default()
        && parsed.path() == endpoint.path();
    if same { Ok(()) } else { Err(mismatch(&shown)) }
}

fn endpoint_authority_of(host: &str, port: Option<u16>) -> String {
    match port {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

/// The body must be exactly `Action=GetCallerIdentity&Version=2011-06-15`
/// as a form (parameters in any order, each once, nothing else).
fn check_form_body(body: &str) -> Result<(), String> {
    let wrong = || {
        format!(
            "body check: sts_request_body must be exactly the STS form {GET_CALLER_IDENTITY_BODY:?}; other actions or parameters are refused"
        )
    };
    let (mut action, mut version) = (None, None);
    for pair in body.split('&') {
        let (k, v) = pair.split_once('=').ok_or_else(wrong)?;
        let (k, v) = (
            form_decode(k).ok_or_else(wrong)?,
            form_decode(v).ok_or_else(wrong)?,
        );
        let slot = match k.as_str() {
            "Action" => &mut action,
            "Version" => &mut version,
            _ => return Err(wrong()),
        };
        if slot.replace(v).is_some() {
            return Err(wrong());
        }
    }
    match (action.as_deref(), version.as_deref()) {
        (Some("GetCallerIdentity"), Some("2011-06-15")) => Ok(()),
        _ => Err(wrong()),
    }
}

/// `application/x-www-form-urlencoded` decoding of one key or value.
fn form_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// `{name: [value]}` (or `{name: value}`), one value per header, names
/// lower-cased and unique, values printable ASCII.
fn parse_headers(json: &str) -> Result<Vec<(String, String)>, String> {
    let value: Value = serde_json::from_str(json).map_err(|_| {
        "header check: sts_request_headers is not JSON (it must be base64 of {\"Name\": [\"value\"]})".to_string()
    })?;
    let Value::Object(map) = value else {
        return Err(
            "header check: sts_request_headers must be a JSON object {\"Name\": [\"value\"]}"
                .into(),
        );
    };
    if map.len() > MAX_HEADERS {
        return Err(format!("header check: more than {MAX_HEADERS} headers"));
    }
    header_list(&map)
}

fn header_list(map: &Map<String, Value>) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(map.len());
    for (name, v) in map {
        let lower = name.to_ascii_lowercase();
        if lower.is_empty()
            || lower.len() > 64
            || !lower
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "header check: {:?} is not a header name",
                truncate_for_message(name)
            ));
        }
        let value = match v {
            Value::String(s) => s.clone(),
            Value::Array(a) if a.len() == 1 => match &a[0] {
                Value::String(s) => s.clone(),
                _ => {
                    return Err(format!(
                        "header check: the value of {lower} must be a string"
                    ));
                }
            },
            Value::Array(_) => {
                return Err(format!("header check: {lower} must have exactly one value"));
            }
            _ => {
                return Err(format!(
                    "header check: the value of {lower} must be [\"value\"]"
                ));
            }
        };
        if value.len() > MAX_HEADER_VALUE_BYTES
            || !value
                .bytes()
                .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
        {
            return Err(format!(
                "header check: the value of {lower} is too long or has characters that are not printable ASCII"
            ));
        }
        if out.iter().any(|(n, _)| *n == lower) {
            return Err(format!("header check: {lower} is given twice"));
        }
        out.push((lower, value));
    }
    Ok(out)
}

/// `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/sts/aws4_request,
/// SignedHeaders=a;b, Signature=hex`.
fn parse_authorization(v: &str) -> Result<SigV4, String> {
    let rest = v.trim().strip_prefix("AWS4-HMAC-SHA256 ").ok_or(
        "signature check: the Authorization header must be an AWS Signature Version 4 signature (AWS4-HMAC-SHA256)",
    )?;
    let bad =
        |what: &str| format!("signature check: the Authorization header has a malformed {what}");
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, val) = part.split_once('=').ok_or_else(|| bad("component"))?;
        let slot = match k.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => return Err(bad("component")),
        };
        if slot.replace(val.trim()).is_some() {
            return Err(bad("component (given twice)"));
        }
    }
    let credential = credential.ok_or_else(|| bad("Credential"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [akid, date, region, service, terminator] = scope[..] else {
        return Err(bad("Credential"));
    };
    if akid.is_empty() || !akid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(bad("Credential (access key ID)"));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("Credential (date)"));
    }
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(bad("Credential (region)"));
    }
    if service != "sts" || terminator != "aws4_request" {
        return Err(format!(
            "signature check: the request is signed for service {:?}, not sts",
            truncate_for_message(service)
        ));
    }
    let signed_headers: Vec<String> = signed
        .ok_or_else(|| bad("SignedHeaders"))?
        .split(';')
        .map(str::to_owned)
        .collect();
    if signed_headers.iter().any(|h| {
        h.is_empty()
            || !h
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    }) {
        return Err(bad("SignedHeaders"));
    }
    let signature = signature.ok_or_else(|| bad("Signature"))?;
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("Signature"));
    }
    Ok(SigV4 {
        scope_date: date.to_owned(),
        region: region.to_owned(),
        signed_headers,
        signature: signature.to_owned(),
    })
}

/// `YYYYMMDDTHHMMSSZ` → Unix seconds.
fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        let part = s.get(from..to)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let month = time::Month::try_from(u8::try_from(num(4, 6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(num(0, 4)?).ok()?,
        month,
        u8::try_from(num(6, 8)?).ok()?,
    )
    .ok()?;
    let t = time::Time::from_hms(
        u8::try_from(num(9, 11)?).ok()?,
        u8::try_from(num(11, 13)?).ok()?,
        u8::try_from(num(13, 15)?).ok()?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp(),
    )
}

// ---------------------------------------------------------------------------
// STS
// ---------------------------------------------------------------------------

/// The three fields of a GetCallerIdentity result.
#[derive(Debug, Clone, PartialEq, Default)]
struct CallerIdentity {
    arn: String,
    user_id: String,
    account: String,
}

fn sts_client() -> Result<&'static reqwest::Client, ApiError> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| crate::outbound::client(CONNECT_TIMEOUT, STS_TIMEOUT, "STS"))
        .as_ref()
        .map_err(ApiError::internal)
}

/// Send the checked request to the endpoint and read STS's answer.
async fn replay(endpoint: &Url, req: &SignedRequest) -> Result<CallerIdentity, ApiError> {
    let mut builder = sts_client()?.post(endpoint.clone()).body(req.body.clone());
    for (name, value) in &req.headers {
        builder = builder.header(*name, value.as_str());
    }
    let mut resp = builder.send().await.map_err(|e| {
        // reqwest's error names the URL (the configured endpoint), never headers.
        tracing::warn!(sts_url = %endpoint, error = %e, "STS GetCallerIdentity request failed");
        let why = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "cannot connect"
        } else {
            "TLS or protocol error"
        };
        fail(format!(
            "STS check: the STS endpoint {endpoint} could not be reached ({why}); check the auth method's sts-url and this server's network access to it"
        ))
    })?;
    let status = resp.status().as_u16();
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_STS_RESPONSE_BYTES as u64)
    {
        return Err(fail(format!(
            "STS check: the answer from {endpoint} is larger than {MAX_STS_RESPONSE_BYTES} bytes"
        )));
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|_| fail(format!("STS check: the answer from {endpoint} was cut off")))?
    {
        if buf.len() + chunk.len() > MAX_STS_RESPONSE_BYTES {
            return Err(fail(format!(
                "STS check: the answer from {endpoint} is larger than {MAX_STS_RESPONSE_BYTES} bytes"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    interpret_answer(status, &buf, endpoint, &req.secrets)
}

/// Turn STS's HTTP answer into the caller's identity or a refusal that
/// names the STS error code and message.
fn interpret_answer(
    status: u16,
    body: &[u8],
    endpoint: &Url,
    secrets: &[String],
) -> Result<CallerIdentity, ApiError> {
    let doc = std::str::from_utf8(body)
        .ok()
        .and_then(|t| xml::parse(t).ok());
    if (200..300).contains(&status) {
        let not_gci = || {
            fail(format!(
                "STS check: the answer from {endpoint} is not a GetCallerIdentity response; is sts-url an STS endpoint?"
            ))
        };
        let root = doc
            .filter(|d| d.name == "GetCallerIdentityResponse")
            .ok_or_else(not_gci)?;
        let result = root
            .only("GetCallerIdentityResult")
            .map_err(|_| not_gci())?;
        let text = |k: &str| -> Result<String, ApiError> {
            let v = result
                .only(k)
                .map_err(|_| not_gci())?
                .text
                .trim()
                .to_owned();
            if v.is_empty() || v.len() > 2048 {
                return Err(not_gci());
            }
            Ok(v)
        };
        return Ok(CallerIdentity {
            arn: text("Arn")?,
            user_id: text("UserId")?,
            account: text("Account")?,
        });
    }
    if (300..400).contains(&status) {
        return Err(fail(format!(
            "STS check: {endpoint} answered with a redirect (HTTP {status}), which is not followed; sts-url must be the STS endpoint itself"
        )));
    }
    let error = doc
        .as_ref()
        .and_then(error_element)
        .map(|e| {
            let code = e
                .only("Code")
                .map(|c| c.text.trim().to_owned())
                .unwrap_or_default();
            let message = e
                .only("Message")
                .map(|m| m.text.trim().to_owned())
                .unwrap_or_default();
            (code, message)
        })
        .filter(|(code, _)| {
            !code.is_empty()
                && code.len() <= 64
                && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
        });
    let Some((code, message)) = error else {
        return Err(fail(format!(
            "STS check: {endpoint} answered HTTP {status} without an STS error document; is sts-url an STS endpoint?"
        )));
    };
    let message = scrub(&message, secrets);
    let said = if message.is_empty() {
        code.clone()
    } else {
        format!("{code}: {message}")
    };
    if code == "Throttling" {
        return Err(ApiError::TooManyRequests(format!(
            "AWS IAM authentication failed: STS is throttling requests ({said}); try again shortly"
        )));
    }
    if status >= 500 {
        return Err(fail(format!(
            "STS check: STS at {endpoint} is unavailable (HTTP {status}, {said}); try again later"
        )));
    }
    let hint = match code.as_str() {
        "InvalidClientTokenId" | "UnrecognizedClientException" => {
            " (the access key or session token that signed the request is not valid)"
        }
        "ExpiredToken" => " (the session token that signed the request has expired)",
        "SignatureDoesNotMatch" | "IncompleteSignature" => {
            " (the request was changed after signing, or was signed for another endpoint)"
        }
        "RequestExpired" => " (the signature is too old: sign a fresh request)",
        _ => "",
    };
    Err(fail(format!(
        "STS check: STS refused the signed request: {said}{hint}"
    )))
}

/// The `<Error>` of an AWS query-protocol error document, in either shape:
/// STS's `<ErrorResponse><Error>…` or the `<ErrorResponse><Errors><Error>…`
/// (also `<Response><Errors><Error>…`) that moto and other AWS services
/// answer with. Exactly one `<Error>`.
fn error_element(doc: &xml::Element) -> Option<&xml::Element> {
    if doc.name != "ErrorResponse" && doc.name != "Response" {
        return None;
    }
    doc.only("Error")
        .or_else(|_| doc.only("Errors").and_then(|e| e.only("Error")))
        .ok()
}

/// An STS message made safe to show: one line, bounded, without any of the
/// request's secret values.
/// Best effort, for scrubbing refusals: the signature and session token a
/// cloud-id carries in its headers, however malformed the rest is.
fn secrets_of_cloud_id(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text) else {
        return out;
    };
    let Some(Value::String(encoded)) = obj.get("sts_request_headers") else {
        return out;
    };
    let Ok(json) = b64_text("sts_request_headers", encoded, 1 << 20) else {
        return out;
    };
    let Ok(Value::Object(headers)) = serde_json::from_str::<Value>(&json) else {
        return out;
    };
    for (name, value) in &headers {
        let values: Vec<&str> = match value {
            Value::String(v) => vec![v.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let name = name.to_ascii_lowercase();
        for v in values {
            if name == "x-amz-security-token" {
                out.push(v.trim().to_owned());
            } else if name == "authorization"
                && let Some((_, sig)) = v.split_once("Signature=")
            {
                out.push(sig.split([',', ' ']).next().unwrap_or("").to_owned());
            }
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

fn scrub(message: &str, secrets: &[String]) -> String {
    let mut m: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        m = m.replace(s.as_str(), "[redacted]");
    }
    let m = m.split_whitespace().collect::<Vec<_>>().join(" ");
    if m.len() <= 300 {
        return m;
    }
    let mut end = 300;
    while !m.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &m[..end])
}

// ---------------------------------------------------------------------------
// The caller and the method's bounds
// ---------------------------------------------------------------------------

/// The verified caller, with what its ARN and user ID say.
#[derive(Debug, Clone, PartialEq, Default)]
struct Principal {
    arn: String,
    user_id: String,
    account: String,
    /// Assumed roles: `arn:<partition>:iam::<account>:role/<name>`.
    role_arn: Option<String>,
    role_name: Option<String>,
    /// Assumed roles: the role's unique ID (`AROA…`, the user ID before `:`).
    role_id: Option<String>,
    /// Assumed roles: the session name (an EC2 instance ID for instance profiles).
    resource_id: Option<String>,
    /// IAM users: the user name.
    user_name: Option<String>,
}

impl Principal {
    fn from_answer(c: CallerIdentity) -> Result<Principal, String> {
        let parts: Vec<&str> = c.arn.splitn(6, ':').collect();
        let [prefix, partition, service, _region, account, resource] = parts[..] else {
            return Err(format!(
                "STS check: STS returned an ARN that does not parse ({:?})",
                truncate_for_message(&c.arn)
            ));
        };
        if prefix != "arn" || partition.is_empty() || !is_account_id(&c.account) {
            return Err("STS check: STS returned a malformed caller identity".into());
        }
        if account != c.account {
            return Err(
                "STS check: the account of the returned ARN is not the returned account".into(),
            );
        }
        let mut p = Principal {
            arn: c.arn.clone(),
            user_id: c.user_id.clone(),
            account: c.account.clone(),
            ..Default::default()
        };
        if let Some(rest) = resource.strip_prefix("assumed-role/") {
            let (role, session) = rest
                .split_once('/')
                .filter(|(r, s)| !r.is_empty() && !s.is_empty() && !s.contains('/'))
                .ok_or("STS check: STS returned a malformed assumed-role ARN")?;
            if service != "sts" {
                return Err("STS check: STS returned a malformed assumed-role ARN".into());
            }
            p.role_arn = Some(format!("arn:{partition}:iam::{account}:role/{role}"));
            p.role_name = Some(role.to_owned());
            p.role_id = c
                .user_id
                .split_once(':')
                .map(|(id, _)| id.to_owned())
                .filter(|id| !id.is_empty());
            p.resource_id = Some(session.to_owned());
        } else if let Some(rest) = resource.strip_prefix("user/") {
            p.user_name = rest
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .map(str::to_owned);
        }
        Ok(p)
    }

    /// Claims for role-association sub-claims.
    fn claims(&self) -> Claims {
        let mut c = Claims::new();
        c.insert("account_id".into(), vec![self.account.clone()]);
        let mut arns = vec![self.arn.clone()];
        arns.extend(self.role_arn.clone());
        c.insert("arn".into(), arns);
        c.insert("user_id".into(), vec![self.user_id.clone()]);
        for (k, v) in [
            ("role_name", &self.role_name),
            ("role_id", &self.role_id),
            ("resource_id", &self.resource_id),
            ("user_name", &self.user_name),
        ] {
            if let Some(v) = v {
                c.insert(k.into(), vec![v.clone()]);
            }
        }
        c
    }
}

/// Every bound list that is set must match (any of its values).
fn check_bindings(cfg: &AwsIamConfig, p: &Principal) -> Result<(), String> {
    let shown = |v: &str| format!("{:?}", truncate_for_message(v));
    if !cfg.bound_account_ids.contains(&p.account) {
        return Err(format!(
            "account check: AWS account {} is not in the auth method's bound-aws-account-id",
            p.account
        ));
    }
    if !cfg.bound_arns.is_empty() {
        let candidates = std::iter::once(&p.arn).chain(p.role_arn.as_ref());
        let ok = candidates
            .into_iter()
            .any(|arn| cfg.bound_arns.iter().any(|b| wildcard_match(b, arn, true)));
        if !ok {
            return Err(format!(
                "ARN check: {} matches none of the auth method's bound-arn",
                shown(&p.arn)
            ));
        }
    }
    let exact = |what: &str, key: &str, bound: &[String], values: &[&Option<String>]| {
        if bound.is_empty() {
            return Ok(());
        }
        let present: Vec<&String> = values.iter().filter_map(|v| v.as_ref()).collect();
        if present.iter().any(|v| bound.contains(v)) {
            return Ok(());
        }
        Err(match present.first() {
            Some(v) => format!(
                "{what} check: {} is not in the auth method's {key}",
                shown(v)
            ),
            None => format!(
                "{what} check: the auth method requires {key}, and the caller {} has no {what}",
                shown(&p.arn)
            ),
        })
    };
    exact(
        "role name",
        "bound-role-name",
        &cfg.bound_role_names,
        &[&p.role_name],
    )?;
    exact(
        "role ID",
        "bound-role-id",
        &cfg.bound_role_ids,
        &[&p.role_id],
    )?;
    exact(
        "resource ID",
        "bound-resource-id",
        &cfg.bound_resource_ids,
        &[&p.resource_id],
    )?;
    exact(
        "user name",
        "bound-user-name",
        &cfg.bound_user_names,
        &[&p.user_name],
    )?;
    let user_id = Some(p.user_id.clone());
    exact(
        "user ID",
        "bound-user-id",
        &cfg.bound_user_ids,
        &[&user_id, &p.role_id],
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------
// XML
// ---------------------------------------------------------------------------

/// The small, strict XML reader for STS answers: elements, attributes
/// (skipped), text with the predefined and numeric entities, comments and
/// processing instructions. DTDs and CDATA are refused; depth and element
/// count are bounded. Element names are kept without their prefix.
mod xml {
    const MAX_DEPTH: usize = 16;
    const MAX_ELEMENTS: usize = 256;

    #[derive(Debug, Default)]
    pub(super) struct Element {
        pub name: String,
        pub children: Vec<Element>,
        pub text: String,
    }

    impl Element {
        /// The one child called `name` (absent or repeated is an error).
        pub(super) fn only(&self, name: &str) -> Result<&Element, String> {
            let mut found = self.children.iter().filter(|c| c.name == name);
            match (found.next(), found.next()) {
                (Some(e), None) => Ok(e),
                (None, _) => Err(format!("no <{name}> in <{}>", self.name)),
                (Some(_), Some(_)) => Err(format!("<{name}> appears twice in <{}>", self.name)),
            }
        }
    }

    pub(super) fn parse(doc: &str) -> Result<Element, String> {
        let mut p = Parser {
            s: doc.strip_prefix('\u{feff}').unwrap_or(doc),
            i: 0,
            elements: 0,
        };
        p.misc()?;
        if !p.rest().starts_with('<') {
            return Err("no root element".into());
        }
        let root = p.element(0)?;
        p.misc()?;
        if p.i != p.s.len() {
            return Err("content after the root element".into());
        }
        Ok(root)
    }

    struct Parser<'a> {
        s: &'a str,
        i: usize,
        elements: usize,
    }

    impl<'a> Parser<'a> {
        fn rest(&self) -> &'a str {
            &self.s[self.i..]
        }

        fn skip_ws(&mut self) {
            let r = self.rest();
            self.i += r.len() - r.trim_start_matches([' ', '\t', '\r', '\n']).len();
        }

        /// Skip `<?…?>` or `<!--…-->` at the cursor; refuse `<!DOCTYPE`,
        /// `<![CDATA[`. Returns whether something was skipped.
        fn skip_markup(&mut self) -> Result<bool, String> {
            let r = self.rest();
            if let Some(body) = r.strip_prefix("<?") {
                let end = body
                    .find("?>")
                    .ok_or("unterminated processing instruction")?;
                self.i += 2 + end + 2;
                Ok(true)
            } else if let Some(body) = r.strip_prefix("<!--") {
                let end = body.find("-->").ok_or("unterminated comment")?;
                self.i += 4 + end + 3;
                Ok(true)
            } else if r.starts_with("<!") {
                Err("DTDs and CDATA sections are not accepted".into())
            } else {
                Ok(false)
            }
        }

        fn misc(&mut self) -> Result<(), String> {
            loop {
                self.skip_ws();
                if !self.skip_markup()? {
                    return Ok(());
                }
            }
        }

        fn name(&mut self) -> Result<&'a str, String> {
            let r = self.rest();
            let len = r
                .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
                .unwrap_or(r.len());
            if len == 0 {
                return Err("missing element name".into());
            }
            self.i += len;
            Ok(&r[..len])
        }

        fn expect(&mut self, c: char) -> Result<(), String> {
            if self.rest().starts_with(c) {
                self.i += c.len_utf8();
                Ok(())
            } else {
                Err(format!("expected {c:?}"))
            }
        }

        /// Attributes up to the end of a start tag; true if self-closing.
        fn attributes(&mut self) -> Result<bool, String> {
            loop {
                self.skip_ws();
                let r = self.rest();
                if r.starts_with("/>") {
                    self.i += 2;
                    return Ok(true);
                }
                if r.starts_with('>') {
                    self.i += 1;
                    return Ok(false);
                }
                self.name()?;
                self.skip_ws();
                self.expect('=')?;
                self.skip_ws();
                let quote = self
                    .rest()
                    .chars()
                    .next()
                    .filter(|c| *c == '"' || *c == '\'');
                let quote = quote.ok_or("attribute value without quotes")?;
                self.i += 1;
                let end = self
                    .rest()
                    .find(quote)
                    .ok_or("unterminated attribute value")?;
                if self.rest()[..end].contains('<') {
                    return Err("'<' in an attribute value".into());
                }
                self.i += end + 1;
            }
        }

        fn element(&mut self, depth: usize) -> Result<Element, String> {
            self.elements += 1;
            if depth >= MAX_DEPTH || self.elements > MAX_ELEMENTS {
                return Err("document too deep or too large".into());
            }
            self.expect('<')?;
            let qname = self.name()?.to_owned();
            let mut el = Element {
                name: local(&qname).to_owned(),
                ..Default::default()
            };
            if self.attributes()? {
                return Ok(el);
            }
            loop {
                let r = self.rest();
                if r.is_empty() {
                    return Err(format!("unterminated element <{qname}>"));
                }
                if r.starts_with("</") {
                    self.i += 2;
                    let end = self.name()?;
                    if end != qname {
                        return Err(format!("</{end}> closes <{qname}>"));
                    }
                    self.skip_ws();
                    self.expect('>')?;
                    return Ok(el);
                }
                if self.skip_markup()? {
                    continue;
                }
                if r.starts_with('<') {
                    el.children.push(self.element(depth + 1)?);
                    continue;
                }
                let end = r.find('<').unwrap_or(r.len());
                el.text.push_str(&decode_entities(&r[..end])?);
                self.i += end;
            }
        }
    }

    fn local(qname: &str) -> &str {
        qname.rsplit(':').next().unwrap_or(qname)
    }

    fn decode_entities(s: &str) -> Result<String, String> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(at) = rest.find('&') {
            out.push_str(&rest[..at]);
            let tail = &rest[at + 1..];
            let semi = tail
                .find(';')
                .filter(|n| *n <= 10)
                .ok_or("bad entity reference")?;
            let ent = &tail[..semi];
            let c = match ent {
                "lt" => '<',
                "gt" => '>',
                "amp" => '&',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let code = if let Some(hex) = ent.strip_prefix("#x") {
                        u32::from_str_radix(hex, 16).ok()
                    } else if let Some(dec) = ent.strip_prefix('#') {
                        dec.parse().ok()
                    } else {
                        None
                    };
                    code.and_then(char::from_u32)
                        .ok_or("unknown entity reference")?
                }
            };
            out.push(c);
            rest = &tail[semi + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// Entry points for the fuzz targets in `fuzz/` (not an API): everything a
/// login checks without the network, before and after the round trip to STS.
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    /// A cloud-id that passed the checks: what would be sent to STS.
    #[derive(Debug)]
    pub struct Checked {
        pub body: String,
        /// Lower-case header names and values, as forwarded.
        pub headers: Vec<(&'static str, String)>,
        /// Values that must never appear in a message.
        pub secrets: Vec<String>,
    }

    /// The `cloud-id` parameter as the SDKs send it (base64), decoded to text.
    pub fn decode_cloud_id(raw: &str) -> Result<String, String> {
        let body = serde_json::to_vec(&json!({ "cloud-id": raw })).map_err(|e| e.to_string())?;
        let body = Body::parse(&body).map_err(|e| e.to_string())?;
        decode_b64_param(&body, "cloud-id", "fuzz").map_err(|e| e.to_string())
    }

    /// The checks of the decoded cloud-id against the method's endpoint.
    pub fn check_cloud_id(text: &str, endpoint: &str, now_secs: i64) -> Result<Checked, String> {
        let endpoint = Url::parse(endpoint).map_err(|e| e.to_string())?;
        let r = SignedRequest::from_cloud_id(text, &endpoint, now_secs)?;
        Ok(Checked {
            body: r.body,
            headers: r.headers,
            secrets: r.secrets,
        })
    }

    /// STS's answer (HTTP status and body) read as a login does, then the
    /// caller checked against a method with settings `config` (stored
    /// `AwsIamConfig` JSON). Returns the identity and the claims.
    pub fn check_sts_answer(
        status: u16,
        body: &[u8],
        endpoint: &str,
        secrets: &[String],
        config: &Value,
    ) -> Result<(String, Claims), String> {
        let endpoint = Url::parse(endpoint).map_err(|e| e.to_string())?;
        let cfg: AwsIamConfig =
            serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
        let answer =
            interpret_answer(status, body, &endpoint, secrets).map_err(|e| e.to_string())?;
        let p = Principal::from_answer(answer)?;
        check_bindings(&cfg, &p)?;
        Ok((p.arn.clone(), p.claims()))
    }

    /// The strict XML reader alone: the number of elements read.
    pub fn parse_xml(doc: &str) -> Result<usize, String> {
        fn count(e: &xml::Element) -> usize {
            1 + e.children.iter().map(count).sum::<usize>()
        }
        xml::parse(doc).map(|root| count(&root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_never_quote_the_signature_or_session_token() {
        use base64::Engine as _;
        let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
        let sig = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
        let token = "FwoGZXIvYXdzEXAMPLESESSIONTOKENVALUE";
        let headers = json!({
            "Authorization": [format!("AWS4-HMAC-SHA256 Credential=AKID/20261206/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature={sig}")],
            "X-Amz-Security-Token": [token],
        });
        let endpoint = Url::parse("https://sts.amazonaws.com/").unwrap();
        // Each field a refusal may quote, carrying a secret.
        for (method, url) in [
            (format!("GET{sig}"), "https://sts.amazonaws.com/".to_owned()),
            ("POST".to_owned(), format!("ht!tp://{token}")),
            ("POST".to_owned(), format!("https://{sig}.example/")),
        ] {
            let doc = json!({
                "sts_request_method": method,
                "sts_request_url": b64(&url),
                "sts_request_body": b64(GET_CALLER_IDENTITY_BODY),
                "sts_request_headers": b64(&headers.to_string()),
            });
            let Err(err) = SignedRequest::from_cloud_id(&doc.to_string(), &endpoint, 1_765_000_000)
            else {
                panic!("a request quoting secrets in {method} {url} was accepted");
            };
            assert!(!err.contains(sig) && !err.contains(token), "{err}");
        }
    }

    #[test]
    fn an_unparsable_request_url_is_not_echoed() {
        // Found by the aws_iam fuzz target: the raw URL, which may hold
        // anything the client put there, was quoted in the refusal.
        let endpoint = Url::parse("https://sts.amazonaws.com/").unwrap();
        let secret = "0000000000000000SIGNATURE0000000000000000";
        let err = check_request_url(&format!("http:/@\u{2}{secret}"), &endpoint).unwrap_err();
        assert!(err.contains("is not a URL"), "{err}");
        assert!(!err.contains("SIGNATURE"), "{err}");
    }

    const NOW: i64 = 1_790_000_000; // 2026-09-21T14:13:20Z
    const SIG: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "FQoGZXIvYXdzEXAMPLESESSIONTOKEN";

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn amz_date(secs: i64) -> String {
        let t = time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }

    fn endpoint() -> Url {
        Url::parse("https://sts.amazonaws.com").unwrap()
    }

    /// Headers as botocore's SigV4Auth leaves them (host is signed, not sent).
    fn headers(date: &str, signed: &str) -> Map<String, Value> {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/{}/us-east-1/sts/aws4_request, SignedHeaders={signed}, Signature={SIG}",
            &date[..8]
        );
        serde_json::from_value(json!({
            "Authorization": [auth],
            "X-Amz-Date": [date],
            "X-Amz-Security-Token": [TOKEN],
            "Content-Type": ["application/x-www-form-urlencoded; charset=utf-8"],
            "User-Agent": ["aws-sdk-python"],
        }))
        .unwrap()
    }

    fn cloud_id(url: &str, body: Option<&str>, headers: &Map<String, Value>) -> String {
        let mut v = json!({
            "sts_request_method": "POST",
            "sts_request_url": b64(url),
            "sts_request_headers": b64(&serde_json::to_string(headers).unwrap()),
        });
        if let Some(b) = body {
            v["sts_request_body"] = json!(b64(b));
        }
        v.to_string()
    }

    fn default_headers() -> Map<String, Value> {
        headers(
            &amz_date(NOW - 30),
            "content-type;host;x-amz-date;x-amz-security-token",
        )
    }

    fn check(id: &str) -> Result<SignedRequest, String> {
        SignedRequest::from_cloud_id(id, &endpoint(), NOW)
    }

    #[test]
    fn a_botocore_style_request_is_accepted_and_only_allowed_headers_go_out() {
        let req = check(&cloud_id(
            "https://sts.amazonaws.com/",
            Some(GET_CALLER_IDENTITY_BODY),
            &default_headers(),
        ))
        .unwrap();
        assert_eq!(req.body, GET_CALLER_IDENTITY_BODY);
        let names: Vec<&str> = req.headers.iter().map(|(n, _)| *n).collect();
        assert!(names.contains(&"authorization") && names.contains(&"x-amz-security-token"));
        assert!(
            !names.contains(&"user-agent"),
            "unsigned extra headers are dropped"
        );
        assert!(req.secrets.contains(&SIG.to_string()) && req.secrets.contains(&TOKEN.to_string()));
        let debug = format!("{req:?}");
        assert!(
            !debug.contains(SIG) && !debug.contains(TOKEN),
            "Debug shows no secrets"
        );
    }

    #[test]
    fn missing_body_means_get_caller_identity_and_params_may_be_reordered() {
        let h = default_headers();
        let req = check(&cloud_id("https://sts.amazonaws.com", None, &h)).unwrap();
        assert_eq!(req.body, GET_CALLER_IDENTITY_BODY);
        check(&cloud_id(
            "https://sts.amazonaws.com/",
            Some("Version=2011-06-15&Action=GetCallerIdentity"),
            &h,
        ))
        .unwrap();
    }

    #[test]
    fn request_url_must_be_the_configured_endpoint() {
        let h = default_headers();
        for url in [
            "https://evil.example.com/",
            "http://sts.amazonaws.com/",
            "https://sts.amazonaws.com:8443/",
            "https://sts.amazonaws.com/other",
            "https://sts.amazonaws.com.evil.example/",
            "https://sts.amazonaws.com/?Action=AssumeRole",
            "https://user:pw@sts.amazonaws.com/",
            "not a url",
        ] {
            let e = check(&cloud_id(url, Some(GET_CALLER_IDENTITY_BODY), &h)).unwrap_err();
            assert!(e.starts_with("request URL check"), "{url}: {e}");
            assert!(
                !e.contains("pw@"),
                "credentials in the URL are not echoed: {e}"
            );
        }
        // Explicit default port and upper-case host are the same endpoint.
        check(&cloud_id(
            "https://STS.amazonaws.com:443/",
            Some(GET_CALLER_IDENTITY_BODY),
            &h,
        ))
        .unwrap();
    }

    #[test]
    fn only_post_and_exactly_get_caller_identity() {
        let h = default_headers();
        let mut v: Value =
            serde_json::from_str(&cloud_id("https://sts.amazonaws.com/", None, &h)).unwrap();
        v["sts_request_method"] = json!("GET");
        assert!(
            check(&v.to_string())
                .unwrap_err()
                .starts_with("method check")
        );
        for body in [
            "Action=AssumeRole&Version=2011-06-15&RoleArn=x",
            "Action=GetCallerIdentity&Version=2011-06-15&Extra=1",
            "Action=GetCallerIdentity&Version=2011-06-15&Action=GetCallerIdentity",
            "Action=GetCallerIdentity",
            "Action=GetCallerIdentity&Version=2011-06-15&",
            "Action=GetCallerIdentity&Version=2011-06-1%",
            "Action=GetSessionToken&Version=2011-06-15",
        ] {
            let e = check(&cloud_id("https://sts.amazonaws.com/", Some(body), &h)).unwrap_err();
            assert!(e.starts_with("body check"), "{body}: {e}");
        }
        // Percent-encoding is decoded before comparing.
        check(&cloud_id(
            "https://sts.amazonaws.com/",
            Some("Action=Get%43allerIdentity&Version=2011-06-15"),
            &h,
        ))
        .unwrap();
    }

    #[test]
    fn stale_or_future_signatures_are_refused() {
        let signed = "content-type;host;x-amz-date;x-amz-security-token";
        for secs in [NOW - 16 * 60, NOW + 16 * 60] {
            let e = check(&cloud_id(
                "https://sts.amazonaws.com/",
                None,
                &headers(&amz_date(secs), signed),
            ))
            .unwrap_err();
            assert!(e.starts_with("date check"), "{e}");
        }
        check(&cloud_id(
            "https://sts.amazonaws.com/",
            None,
            &headers(&amz_date(NOW - 14 * 60), signed),
        ))
        .unwrap();
        let mut h = default_headers();
        h.insert("X-Amz-Date".into(), json!(["2026-09-21T14:13:20Z"]));
        assert!(
            check(&cloud_id("https://sts.amazonaws.com/", None, &h))
                .unwrap_err()
                .starts_with("date check")
        );
        h.remove("X-Amz-Date");
        assert!(
            check(&cloud_id("https://sts.amazonaws.com/", None, &h))
                .unwrap_err()
                .starts_with("date check")
        );
    }

    #[test]
    fn headers_are_checked() {
        let url = "https://sts.amazonaws.com/";
        let date = amz_date(NOW);
        // A signed header that is not forwarded.
        let h = headers(&date, "host;x-amz-date;x-forwarded-for");
        let e = check(&cloud_id(url, None, &h)).unwrap_err();
        assert!(
            e.contains("x-forwarded-for") && e.starts_with("header check"),
            "{e}"
        );
        // A signed header that is absent.
        let h = headers(&date, "amz-sdk-request;host;x-amz-date");
        assert!(
            check(&cloud_id(url, None, &h))
                .unwrap_err()
                .contains("missing")
        );
        // The signature must cover host.
        let h = headers(&date, "x-amz-date");
        assert!(
            check(&cloud_id(url, None, &h))
                .unwrap_err()
                .contains("cover the host")
        );
        // Host must be the endpoint.
        let mut h = default_headers();
        h.insert("Host".into(), json!(["attacker.example"]));
        assert!(
            check(&cloud_id(url, None, &h))
                .unwrap_err()
                .starts_with("host check")
        );
        h.insert("Host".into(), json!(["sts.amazonaws.com"]));
        check(&cloud_id(url, None, &h)).unwrap();
        // Content-Length must be the body's.
        h.insert("Content-Length".into(), json!(["999"]));
        assert!(
            check(&cloud_id(url, None, &h))
                .unwrap_err()
                .starts_with("body check")
        );
        h.insert("Content-Length".into(), json!(["43"]));
        let req = check(&cloud_id(url, None, &h)).unwrap();
        assert!(
            req.headers
                .iter()
                .all(|(n, _)| *n != "host" && *n != "content-length")
        );
        // Content-Type must be a form.
        h.insert("Content-Type".into(), json!(["application/json"]));
        assert!(
            check(&cloud_id(url, None, &h))
                .unwrap_err()
                .starts_with("body check")
        );
        // Two values, duplicate names, control characters.
        let mut h = default_headers();
        h.insert("X-Amz-Date".into(), json!([date, date]));
        assert!(
            check(&cloud_id(url, None, &h))
                .unwrap_err()
                .contains("exactly one value")
        );
        let mut h = default_headers();
        h.insert("x-amz-date".into(), json!([date]));
        assert!(
            check(&cloud_id(url, None, &h))
                .unwrap_err()
                .contains("twice")
        );
        let mut h = default_headers();
        h.insert("X-Amz-Security-Token".into(), json!(["a\r\nInjected: 1"]));
        assert!(
            check(&cloud_id(url, None, &h))
                .unwrap_err()
                .contains("printable ASCII")
        );
        // Plain string values are accepted too.
        let mut h = default_headers();
        h.insert("X-Amz-Date".into(), json!(date));
        check(&cloud_id(url, None, &h)).unwrap();
    }

    /// Headers as the AWS SDK for JavaScript v3 signs a GetCallerIdentity
    /// (captured from `@aws-sdk/client-sts`: it always signs
    /// x-amz-content-sha256, and its telemetry headers).
    fn sdk_v3_headers(date: &str, body_sha256: &str) -> Map<String, Value> {
        let signed = "amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token;x-amz-user-agent";
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/{}/us-east-1/sts/aws4_request, SignedHeaders={signed}, Signature={SIG}",
            &date[..8]
        );
        serde_json::from_value(json!({
            "content-type": "application/x-www-form-urlencoded",
            "content-length": "43",
            "x-amz-user-agent": "aws-sdk-js/3.1177.0",
            "user-agent": "aws-sdk-js/3.1177.0 ua/2.1 lang/js",
            "host": "sts.amazonaws.com",
            "amz-sdk-invocation-id": "685867e0-5b7d-4335-9e23-a70ac9edbbcf",
            "amz-sdk-request": "attempt=1; max=3",
            "x-amz-date": date,
            "x-amz-security-token": TOKEN,
            "x-amz-content-sha256": body_sha256,
            "authorization": auth,
        }))
        .unwrap()
    }

    #[test]
    fn aws_sdk_v3_requests_forward_the_signed_content_sha256() {
        let url = "https://sts.amazonaws.com/";
        let sha = "ab821ae955788b0e33ebd34c208442ccfc2d406e2edc5e7a39bd6458fbb4f843";
        let req = check(&cloud_id(
            url,
            Some(GET_CALLER_IDENTITY_BODY),
            &sdk_v3_headers(&amz_date(NOW), sha),
        ))
        .unwrap();
        // The JS SDK v3 sends every header the replay forwards.
        for signed in FORWARDED_HEADERS {
            assert!(
                req.headers.iter().any(|(n, _)| n == signed),
                "{signed} is forwarded"
            );
        }
        let (_, v) = req
            .headers
            .iter()
            .find(|(n, _)| *n == "x-amz-content-sha256")
            .unwrap();
        assert_eq!(v, sha, "forwarded exactly as signed");
        let (_, ct) = req
            .headers
            .iter()
            .find(|(n, _)| *n == "content-type")
            .unwrap();
        assert_eq!(
            ct, "application/x-www-form-urlencoded",
            "as signed, no charset added"
        );
        assert!(req.headers.iter().all(|(n, _)| *n != "user-agent"));
        // Upper-case hex is the same digest.
        check(&cloud_id(
            url,
            None,
            &sdk_v3_headers(&amz_date(NOW), &sha.to_ascii_uppercase()),
        ))
        .unwrap();
        // A hash of some other body, or an unsigned payload, is refused
        // before anything is sent.
        for bad in [
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "UNSIGNED-PAYLOAD",
            "",
        ] {
            let e = check(&cloud_id(url, None, &sdk_v3_headers(&amz_date(NOW), bad))).unwrap_err();
            assert!(
                e.starts_with("body check") && e.contains("X-Amz-Content-Sha256"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn authorization_must_be_sigv4_for_sts() {
        let d = amz_date(NOW);
        let day = &d[..8];
        let ok = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{day}/us-east-1/sts/aws4_request,  SignedHeaders=host;x-amz-date, Signature={SIG}"
        );
        let a = parse_authorization(&ok).unwrap();
        assert_eq!(a.region, "us-east-1");
        assert_eq!(a.signed_headers, ["host", "x-amz-date"]);
        for bad in [
            format!(
                "AWS4-HMAC-SHA1 Credential=AKID/{day}/us-east-1/sts/aws4_request, SignedHeaders=host, Signature={SIG}"
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/{day}/us-east-1/s3/aws4_request, SignedHeaders=host, Signature={SIG}"
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/{day}/us-east-1/sts, SignedHeaders=host, Signature={SIG}"
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/{day}/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=xyz"
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/{day}/us-east-1/sts/aws4_request, Signature={SIG}"
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/{day}/us-east-1/sts/aws4_request, SignedHeaders=Host, Signature={SIG}"
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/{day}/us-east-1/sts/aws4_request, SignedHeaders=host, Signature={SIG}, Signature={SIG}"
            ),
            "Bearer abc".to_string(),
        ] {
            let e = parse_authorization(&bad).unwrap_err();
            assert!(e.starts_with("signature check"), "{bad}: {e}");
            assert!(!e.contains(SIG), "the signature is never echoed: {e}");
        }
        // The scope date must be the X-Amz-Date day.
        let mut h = default_headers();
        h.insert(
            "Authorization".into(),
            json!([format!("AWS4-HMAC-SHA256 Credential=AKID/20000101/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature={SIG}")]),
        );
        assert!(
            check(&cloud_id("https://sts.amazonaws.com/", None, &h))
                .unwrap_err()
                .contains("scope date")
        );
    }

    #[test]
    fn garbage_cloud_ids_name_the_problem() {
        assert!(check("not json").unwrap_err().contains("not JSON"));
        assert!(check("[1]").unwrap_err().contains("not a JSON object"));
        assert!(
            check("{}")
                .unwrap_err()
                .contains("sts_request_method is missing")
        );
        let e = check(&json!({"sts_request_method":"POST","sts_request_url":"%%%","sts_request_headers":"e30="}).to_string())
            .unwrap_err();
        assert!(e.contains("sts_request_url is not base64"), "{e}");
        let e = check(&json!({"sts_request_method":"POST","sts_request_url":b64("https://sts.amazonaws.com/"),"sts_request_headers":b64("[")}).to_string())
            .unwrap_err();
        assert!(e.starts_with("header check"), "{e}");
        let e = check(&json!({"sts_request_method":"POST","sts_request_url":b64("https://sts.amazonaws.com/"),"sts_request_headers":b64("{}")}).to_string())
            .unwrap_err();
        assert!(e.contains("Authorization header is missing"), "{e}");
        let e = check(&json!({"sts_request_method":5}).to_string()).unwrap_err();
        assert!(e.contains("must be a string"), "{e}");
    }

    #[test]
    fn amz_dates_parse_strictly() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date(&amz_date(NOW)), Some(NOW));
        for bad in [
            "20261321T000000Z",
            "20260101T250000Z",
            "2026010T1000000Z",
            "20260101 000000Z",
            "+2026101T000000Z",
            "",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    const OK_XML: &str = r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:sts::123456789012:assumed-role/ci-deployer/job-42</Arn>
    <UserId>AROA3XFRBF535PLBIFPI4:job-42</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>
"#;

    #[test]
    fn sts_success_answers_parse() {
        let c = interpret_answer(200, OK_XML.as_bytes(), &endpoint(), &[]).unwrap();
        assert_eq!(
            c.arn,
            "arn:aws:sts::123456789012:assumed-role/ci-deployer/job-42"
        );
        assert_eq!(c.user_id, "AROA3XFRBF535PLBIFPI4:job-42");
        assert_eq!(c.account, "123456789012");
        let with_decl = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- hi -->{OK_XML}");
        assert!(interpret_answer(200, with_decl.as_bytes(), &endpoint(), &[]).is_ok());
        let prefixed = "<a:GetCallerIdentityResponse xmlns:a='x'><a:GetCallerIdentityResult><a:Arn>arn:aws:iam::123456789012:user/a&amp;b</a:Arn><a:UserId>AIDA</a:UserId><a:Account>123456789012</a:Account></a:GetCallerIdentityResult></a:GetCallerIdentityResponse>";
        let c = interpret_answer(200, prefixed.as_bytes(), &endpoint(), &[]).unwrap();
        assert_eq!(c.arn, "arn:aws:iam::123456789012:user/a&b");
    }

    #[test]
    fn sts_answers_that_are_not_exactly_get_caller_identity_are_refused() {
        let twice = OK_XML.replace(
            "<Account>123456789012</Account>",
            "<Account>123456789012</Account><Arn>arn:aws:iam::999999999999:root</Arn>",
        );
        let doctype = format!("<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>{OK_XML}");
        let cdata = OK_XML.replace(
            "123456789012</Account>",
            "<![CDATA[123456789012]]></Account>",
        );
        let deep = format!("{}{}", "<a>".repeat(40), "</a>".repeat(40));
        for (what, doc) in [
            ("duplicate field", twice.as_str()),
            ("doctype", doctype.as_str()),
            ("cdata", cdata.as_str()),
            (
                "other root",
                "<AssumeRoleResponse><GetCallerIdentityResult/></AssumeRoleResponse>",
            ),
            (
                "missing field",
                "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>x</Arn></GetCallerIdentityResult></GetCallerIdentityResponse>",
            ),
            (
                "mismatched tags",
                "<GetCallerIdentityResponse><GetCallerIdentityResult></GetCallerIdentityResponse>",
            ),
            ("trailing content", &format!("{OK_XML}<x/>")),
            (
                "unknown entity",
                &OK_XML.replace("job-42</Arn>", "job-42&foo;</Arn>"),
            ),
            ("deep", deep.as_str()),
            ("json", "{\"Arn\":\"x\"}"),
        ] {
            let e = interpret_answer(200, doc.as_bytes(), &endpoint(), &[]).unwrap_err();
            assert!(
                matches!(&e, ApiError::Unauthorized(m) if m.contains("not a GetCallerIdentity response")),
                "{what}: {e}"
            );
        }
        assert!(interpret_answer(200, &[0xff, 0xfe], &endpoint(), &[]).is_err());
    }

    #[test]
    fn sts_errors_name_the_code_and_message_without_secrets() {
        let doc = |code: &str, msg: &str| {
            format!(
                "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{msg}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
            )
        };
        let e = interpret_answer(
            403,
            doc(
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            )
            .as_bytes(),
            &endpoint(),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.status(), axum::http::StatusCode::UNAUTHORIZED);
        let m = e.to_string();
        assert!(
            m.contains(
                "InvalidClientTokenId: The security token included in the request is invalid."
            ),
            "{m}"
        );
        let leaky = doc(
            "SignatureDoesNotMatch",
            &format!("canonical request:\nx-amz-security-token:{TOKEN}\nsig {SIG}"),
        );
        let m = interpret_answer(
            403,
            leaky.as_bytes(),
            &endpoint(),
            &[TOKEN.into(), SIG.into()],
        )
        .unwrap_err()
        .to_string();
        assert!(
            m.contains("SignatureDoesNotMatch") && m.contains("[redacted]"),
            "{m}"
        );
        assert!(
            !m.contains(TOKEN) && !m.contains(SIG) && !m.contains('\n'),
            "{m}"
        );
        let e = interpret_answer(
            400,
            doc("Throttling", "Rate exceeded").as_bytes(),
            &endpoint(),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        let e = interpret_answer(
            503,
            doc("ServiceUnavailable", "busy").as_bytes(),
            &endpoint(),
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("unavailable (HTTP 503"), "{e}");
        // moto (and other AWS query services) nest the error in <Errors>.
        let nested = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message><Type>Sender</Type></Error></Errors></ErrorResponse>";
        let m = interpret_answer(403, nested.as_bytes(), &endpoint(), &[])
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("STS refused the signed request: SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided.")
                && m.contains("changed after signing"),
            "{m}"
        );
        let ec2_style = "<Response><Errors><Error><Code>InvalidClientTokenId</Code><Message>bad</Message></Error></Errors><RequestID>r</RequestID></Response>";
        assert!(
            interpret_answer(403, ec2_style.as_bytes(), &endpoint(), &[])
                .unwrap_err()
                .to_string()
                .contains("InvalidClientTokenId: bad")
        );
        let throttled = nested
            .replace("SignatureDoesNotMatch", "Throttling")
            .replace(
                "The request signature we calculated does not match the signature you provided.",
                "Rate exceeded",
            );
        assert_eq!(
            interpret_answer(400, throttled.as_bytes(), &endpoint(), &[])
                .unwrap_err()
                .status(),
            axum::http::StatusCode::TOO_MANY_REQUESTS
        );
        // Two errors, or an <Errors> without one, are not an STS error document.
        for odd in [
            "<ErrorResponse><Errors><Error><Code>A</Code></Error><Error><Code>B</Code></Error></Errors></ErrorResponse>",
            "<ErrorResponse><Errors/></ErrorResponse>",
            "<Other><Errors><Error><Code>A</Code></Error></Errors></Other>",
        ] {
            assert!(
                interpret_answer(403, odd.as_bytes(), &endpoint(), &[])
                    .unwrap_err()
                    .to_string()
                    .contains("without an STS error document"),
                "{odd}"
            );
        }
        let e = interpret_answer(404, b"<html>nope</html>", &endpoint(), &[]).unwrap_err();
        assert!(
            e.to_string().contains("without an STS error document"),
            "{e}"
        );
        let e = interpret_answer(302, b"", &endpoint(), &[]).unwrap_err();
        assert!(e.to_string().contains("redirect"), "{e}");
        let bad_code = doc("<x>", "m");
        assert!(
            interpret_answer(403, bad_code.as_bytes(), &endpoint(), &[])
                .unwrap_err()
                .to_string()
                .contains("without an STS error document")
        );
    }

    fn caller(arn: &str, user_id: &str) -> Principal {
        Principal::from_answer(CallerIdentity {
            arn: arn.into(),
            user_id: user_id.into(),
            account: "123456789012".into(),
        })
        .unwrap()
    }

    #[test]
    fn principals_parse_from_arns() {
        let r = caller(
            "arn:aws:sts::123456789012:assumed-role/ci-deployer/i-0abc",
            "AROAEXAMPLE:i-0abc",
        );
        assert_eq!(
            r.role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/ci-deployer")
        );
        assert_eq!(r.role_name.as_deref(), Some("ci-deployer"));
        assert_eq!(r.role_id.as_deref(), Some("AROAEXAMPLE"));
        assert_eq!(r.resource_id.as_deref(), Some("i-0abc"));
        assert_eq!(r.user_name, None);
        let u = caller("arn:aws:iam::123456789012:user/team/alice", "AIDAEXAMPLE");
        assert_eq!(u.user_name.as_deref(), Some("alice"));
        assert_eq!(u.role_name, None);
        let moto = caller("arn:aws:sts::123456789012:user/moto", "AKIAEXAMPLE");
        assert_eq!(moto.user_name.as_deref(), Some("moto"));
        let root = caller("arn:aws:iam::123456789012:root", "123456789012");
        assert_eq!((root.user_name, root.role_name), (None, None));
        let gov = caller(
            "arn:aws-us-gov:sts::123456789012:assumed-role/r/s",
            "AROA:s",
        );
        assert_eq!(
            gov.role_arn.as_deref(),
            Some("arn:aws-us-gov:iam::123456789012:role/r")
        );
        for (arn, account) in [
            ("arn:aws:iam::999999999999:user/x", "123456789012"),
            ("arn:aws:iam::123456789012", "123456789012"),
            ("urn:aws:iam::123456789012:user/x", "123456789012"),
            ("arn:aws:sts::123456789012:assumed-role/r", "123456789012"),
            ("arn:aws:iam::12345:user/x", "12345"),
        ] {
            let r = Principal::from_answer(CallerIdentity {
                arn: arn.into(),
                user_id: "X".into(),
                account: account.into(),
            });
            assert!(r.is_err(), "{arn}");
        }
    }

    #[test]
    fn claims_carry_account_arn_ids_and_names() {
        let r = caller(
            "arn:aws:sts::123456789012:assumed-role/ci-deployer/job-42",
            "AROAEXAMPLE:job-42",
        );
        let c = r.claims();
        assert_eq!(c["account_id"], ["123456789012"]);
        assert_eq!(
            c["arn"],
            [
                "arn:aws:sts::123456789012:assumed-role/ci-deployer/job-42",
                "arn:aws:iam::123456789012:role/ci-deployer"
            ]
        );
        assert_eq!(c["user_id"], ["AROAEXAMPLE:job-42"]);
        assert_eq!(c["role_name"], ["ci-deployer"]);
        assert_eq!(c["role_id"], ["AROAEXAMPLE"]);
        assert_eq!(c["resource_id"], ["job-42"]);
        assert!(!c.contains_key("user_name"));
        let u = caller("arn:aws:iam::123456789012:user/alice", "AIDAEXAMPLE").claims();
        assert_eq!(u["user_name"], ["alice"]);
        assert!(!u.contains_key("role_name"));
    }

    #[test]
    fn bindings_name_the_failed_check() {
        let role = caller(
            "arn:aws:sts::123456789012:assumed-role/ci-deployer/job-42",
            "AROAEXAMPLE:job-42",
        );
        let user = caller("arn:aws:iam::123456789012:user/alice", "AIDAEXAMPLE");
        let base = AwsIamConfig {
            bound_account_ids: vec!["123456789012".into()],
            ..Default::default()
        };
        assert!(check_bindings(&base, &role).is_ok());
        let other = AwsIamConfig {
            bound_account_ids: vec!["210987654321".into()],
            ..Default::default()
        };
        assert!(
            check_bindings(&other, &role)
                .unwrap_err()
                .starts_with("account check")
        );

        let arn = |p: &str| AwsIamConfig {
            bound_arns: vec![p.into()],
            ..base.clone()
        };
        // The role's IAM ARN, a glob over assumed-role sessions, or the exact caller.
        assert!(check_bindings(&arn("arn:aws:iam::123456789012:role/ci-deployer"), &role).is_ok());
        assert!(
            check_bindings(&arn("arn:aws:sts::123456789012:assumed-role/ci-*/*"), &role).is_ok()
        );
        assert!(check_bindings(&arn("arn:aws:iam::123456789012:user/alice"), &user).is_ok());
        assert!(
            check_bindings(&arn("arn:aws:iam::123456789012:role/other"), &role)
                .unwrap_err()
                .starts_with("ARN check")
        );
        assert!(
            check_bindings(&arn("arn:aws:iam::123456789012:role/CI-DEPLOYER"), &role).is_err(),
            "case-sensitive"
        );

        let names = AwsIamConfig {
            bound_role_names: vec!["ci-deployer".into()],
            ..base.clone()
        };
        assert!(check_bindings(&names, &role).is_ok());
        let e = check_bindings(&names, &user).unwrap_err();
        assert!(
            e.starts_with("role name check") && e.contains("has no role name"),
            "{e}"
        );
        let ids = AwsIamConfig {
            bound_role_ids: vec!["AROAEXAMPLE".into()],
            bound_resource_ids: vec!["job-42".into()],
            ..base.clone()
        };
        assert!(check_bindings(&ids, &role).is_ok());
        let wrong_session = caller(
            "arn:aws:sts::123456789012:assumed-role/ci-deployer/job-7",
            "AROAEXAMPLE:job-7",
        );
        assert!(
            check_bindings(&ids, &wrong_session)
                .unwrap_err()
                .starts_with("resource ID check")
        );
        let uid = |v: &str| AwsIamConfig {
            bound_user_ids: vec![v.into()],
            ..base.clone()
        };
        assert!(
            check_bindings(&uid("AROAEXAMPLE"), &role).is_ok(),
            "role part of the user ID"
        );
        assert!(
            check_bindings(&uid("AROAEXAMPLE:job-42"), &role).is_ok(),
            "full user ID"
        );
        assert!(check_bindings(&uid("AIDAEXAMPLE"), &user).is_ok());
        assert!(
            check_bindings(&uid("AIDAOTHER"), &user)
                .unwrap_err()
                .starts_with("user ID check")
        );
        let uname = AwsIamConfig {
            bound_user_names: vec!["bob".into()],
            ..base
        };
        assert!(
            check_bindings(&uname, &user)
                .unwrap_err()
                .starts_with("user name check")
        );
    }

    fn body(v: Value) -> Body {
        Body::parse(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn settings_are_validated_and_stored() {
        let v = settings_from_body(&body(json!({
            "name": "/aws",
            "bound-aws-account-id": "123456789012, 210987654321",
            "bound-arn": ["arn:aws:iam::123456789012:role/ci-*"],
            "bound-role-name": "ci-deployer",
        })))
        .unwrap();
        let c: AwsIamConfig = serde_json::from_value(v).unwrap();
        assert_eq!(c.sts_url, "https://sts.amazonaws.com/");
        assert_eq!(c.bound_account_ids, ["123456789012", "210987654321"]);
        assert_eq!(c.bound_role_names, ["ci-deployer"]);
        let c: AwsIamConfig = serde_json::from_value(
            settings_from_body(&body(json!({
                "bound-aws-account-id": ["123456789012"],
                "sts-url": "http://127.0.0.1:5000",
            })))
            .unwrap(),
        )
        .unwrap();
        assert_eq!(c.sts_url, "http://127.0.0.1:5000/");

        for (b, needle) in [
            (json!({}), "missing required parameter bound-aws-account-id"),
            (json!({"bound-aws-account-id": "1234"}), "12-digit"),
            (json!({"bound-aws-account-id": "*"}), "12-digit"),
            (
                json!({"bound-aws-account-id": "123456789012", "sts-url": "http://sts.amazonaws.com"}),
                "must use https",
            ),
            (
                json!({"bound-aws-account-id": "123456789012", "sts-url": "https://sts.amazonaws.com/?x=1"}),
                "query",
            ),
            (
                json!({"bound-aws-account-id": "123456789012", "sts-url": "https://u:p@sts.amazonaws.com"}),
                "password",
            ),
            (
                json!({"bound-aws-account-id": "123456789012", "sts-url": "ftp://x"}),
                "sts-url",
            ),
            (
                json!({"bound-aws-account-id": "123456789012", "bound-arn": "ci-deployer"}),
                "not an ARN",
            ),
            (
                json!({"bound-aws-account-id": "123456789012", "bound-role-name": "ci-*"}),
                "exact values",
            ),
            (
                json!({"bound-aws-account-id": "123456789012", "bound-user-id": ["x".repeat(600)]}),
                "at most 64 values",
            ),
        ] {
            let e = settings_from_body(&body(b.clone())).unwrap_err();
            assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST, "{b}");
            assert!(e.to_string().contains(needle), "{b}: {e}");
        }
    }

    #[test]
    fn rules_show_the_sdk_field_names() {
        let cfg = AwsIamConfig {
            sts_url: "https://sts.amazonaws.com/".into(),
            bound_account_ids: vec!["123456789012".into()],
            bound_arns: vec!["arn:aws:iam::123456789012:role/*".into()],
            ..Default::default()
        };
        let am = AuthMethod {
            name: "/aws".into(),
            access_id: "p-x".into(),
            kind: coffer_core::model::AuthMethodKind::AwsIam,
            description: String::new(),
            access_key_hash: None,
            access_expires_ms: 0,
            bound_ips: vec![],
            token_ttl_secs: 0,
            force_sub_claims: false,
            config: serde_json::to_value(&cfg).unwrap(),
            created_ms: 0,
            modified_ms: 0,
        };
        let r = rules_json(&am);
        assert_eq!(r["account_id"], json!(["123456789012"]));
        assert_eq!(r["arn"], json!(["arn:aws:iam::123456789012:role/*"]));
        assert_eq!(r["sts_endpoint"], json!("https://sts.amazonaws.com/"));
        for k in [
            "role_name",
            "role_id",
            "resource_id",
            "user_name",
            "user_id",
        ] {
            assert_eq!(r[k], json!([]), "{k}");
        }
    }

    #[test]
    fn scrub_bounds_and_redacts() {
        let long = "x".repeat(1000);
        assert!(scrub(&long, &[]).len() <= 304);
        assert_eq!(scrub("a\n\tb", &[]), "a b");
        assert_eq!(
            scrub("token=SECRETSECRET!", &["SECRETSECRET".into()]),
            "token=[redacted]!"
        );
    }
}
