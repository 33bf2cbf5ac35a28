//! JWT/OIDC logins through the real router: a JWKS served by a local axum
//! server on 127.0.0.1, tokens signed by the test itself (including hostile
//! ones) and by the dev OIDC issuer.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{Harness, keys, now, serve_jwks, sign};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

const ISS: &str = "https://gitlab.test";

fn claims() -> Value {
    json!({
        "iss": ISS, "aud": "coffer", "iat": now(), "nbf": now(), "exp": now() + 300,
        "sub": "project_path:group/app:ref_type:branch:ref:main",
        "project_path": "group/app", "ref": "main", "ref_type": "branch",
        "user_login": "alice", "jti": format!("j-{}", rand_suffix()),
    })
}

fn rand_suffix() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{}-{}", now(), N.fetch_add(1, Ordering::SeqCst))
}

fn with(patch: Value) -> Value {
    let mut c = claims();
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// header.payload.signature with a chosen header and raw signature bytes.
fn forge(header: Value, claims: &Value, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(&header),
        b64(claims),
        URL_SAFE_NO_PAD.encode(sig)
    )
}

async fn setup(h: &Harness, jwks_uri: &str, name: &str, extra: Value) -> String {
    let mut body = json!({
        "name": name, "jwks-uri": jwks_uri, "unique-identifier": "user_login",
        "issuer": ISS, "audience": "coffer",
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let am = h.admin_ok("create-auth-method-oauth2", body).await;
    let id = am["access_id"].as_str().unwrap().to_owned();
    assert!(
        id.starts_with("p-") && id.chars().rev().nth(1) == Some('o'),
        "{id}"
    );
    id
}

#[tokio::test]
async fn hostile_token_matrix() {
    let h = Harness::new().await;
    let k = keys();
    let (uri, hits) = serve_jwks(k.jwks.clone()).await;
    let id = setup(&h, &uri, "/ci/gitlab", json!({})).await;

    // Roles: /app/* for group/app on main.
    h.admin_ok("create-role", json!({"name": "app-reader"}))
        .await;
    h.admin_ok(
        "set-role-rule",
        json!({"role-name": "app-reader", "path": "/app/*", "capability": ["read"]}),
    )
    .await;
    let (s, v) = h
        .call(
            "assoc-role-am",
            json!({"token": h.admin, "role-name": "app-reader", "am-name": "/ci/gitlab"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("force-sub-claims"),
        "{v}"
    );
    h.admin_ok(
        "assoc-role-am",
        json!({"role-name": "app-reader", "am-name": "/ci/gitlab", "sub-claims": {"project_path": "group/app", "ref": "main"}}),
    )
    .await;
    h.admin_ok(
        "create-secret",
        json!({"name": "/app/db", "value": "app-secret"}),
    )
    .await;
    h.admin_ok(
        "create-secret",
        json!({"name": "/other/db", "value": "other"}),
    )
    .await;

    // The good token, RS256 and ES256.
    let good = sign(&k.rsa, Algorithm::RS256, "rsa1", &claims());
    let (s, v) = h.jwt_auth(&id, &good).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["creds"]["sub_claims"]["project_path"],
        json!(["group/app"])
    );
    let t = v["token"].as_str().unwrap().to_owned();
    let v = h
        .ok(
            "get-secret-value",
            json!({"token": t, "names": ["/app/db"]}),
        )
        .await;
    assert_eq!(v["/app/db"], "app-secret");
    let (s, _) = h
        .call(
            "get-secret-value",
            json!({"token": t, "names": ["/other/db"]}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = h
        .call(
            "auth",
            json!({"access-id": id, "access-type": "oidc", "jwt": sign(&k.ec, Algorithm::ES256, "ec1", &claims())}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the JWKS is cached");

    // Sub-claim mismatch: a token, but no role.
    let (s, v) = h
        .jwt_auth(
            &id,
            &sign(
                &k.rsa,
                Algorithm::RS256,
                "rsa1",
                &with(json!({"ref": "feature"})),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = h
        .call(
            "get-secret-value",
            json!({"token": v["token"], "names": ["/app/db"]}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let hs_key = EncodingKey::from_secret(&k.rsa_pem_public);
    let rsa_sig = {
        // An RS256 signature presented as ES256 with the RSA key's kid.
        let t = sign(&k.rsa, Algorithm::RS256, "rsa1", &claims());
        URL_SAFE_NO_PAD
            .decode(t.rsplit('.').next().unwrap())
            .unwrap()
    };
    let mut tampered = good.clone();
    let parts: Vec<&str> = good.split('.').collect();
    let evil_payload = b64(&with(json!({"project_path": "group/other"})));
    tampered = tampered.replacen(parts[1], &evil_payload, 1);
    let big = sign(
        &k.rsa,
        Algorithm::RS256,
        "rsa1",
        &with(json!({"pad": "x".repeat(17 * 1024)})),
    );
    let matrix: Vec<(&str, String, &str)> = vec![
        (
            "alg none",
            forge(json!({"alg": "none", "kid": "rsa1"}), &claims(), b""),
            "\"none\"",
        ),
        (
            "alg none with a signature",
            forge(json!({"alg": "none"}), &claims(), b"sig"),
            "\"none\"",
        ),
        (
            "HS256 keyed with the public key",
            sign(&hs_key, Algorithm::HS256, "rsa1", &claims()),
            "HMAC",
        ),
        (
            "unknown kid",
            sign(&k.rsa, Algorithm::RS256, "forged-kid", &claims()),
            "unknown kid",
        ),
        (
            "RSA key with an ES256 header",
            forge(json!({"alg": "ES256", "kid": "rsa1"}), &claims(), &rsa_sig),
            "algorithm check",
        ),
        (
            "EC key claimed for an RS256 token",
            forge(json!({"alg": "RS256", "kid": "ec1"}), &claims(), &rsa_sig),
            "algorithm check",
        ),
        ("tampered payload", tampered, "signature check"),
        (
            "expired",
            sign(
                &k.rsa,
                Algorithm::RS256,
                "rsa1",
                &with(json!({"exp": now() - 3600, "iat": now() - 7200, "nbf": now() - 7200})),
            ),
            "exp check",
        ),
        (
            "no exp",
            sign(
                &k.rsa,
                Algorithm::RS256,
                "rsa1",
                &with(json!({"exp": null})),
            ),
            "exp check",
        ),
        (
            "nbf in the future",
            sign(
                &k.rsa,
                Algorithm::RS256,
                "rsa1",
                &with(json!({"nbf": now() + 3600})),
            ),
            "nbf check",
        ),
        (
            "iat in the future",
            sign(
                &k.rsa,
                Algorithm::RS256,
                "rsa1",
                &with(json!({"iat": now() + 3600})),
            ),
            "iat check",
        ),
        (
            "wrong issuer",
            sign(
                &k.rsa,
                Algorithm::RS256,
                "rsa1",
                &with(json!({"iss": "https://evil.test"})),
            ),
            "iss check",
        ),
        (
            "wrong audience",
            sign(
                &k.rsa,
                Algorithm::RS256,
                "rsa1",
                &with(json!({"aud": "someone-else"})),
            ),
            "aud check",
        ),
        (
            "missing audience",
            sign(
                &k.rsa,
                Algorithm::RS256,
                "rsa1",
                &with(json!({"aud": null})),
            ),
            "aud check",
        ),
        ("oversized", big, "size check"),
        (
            "malformed base64",
            "e30.###.abc".to_string(),
            "format check",
        ),
        ("two parts", "abc.def".to_string(), "format check"),
        (
            "header not JSON",
            format!("{}.{}.c2ln", URL_SAFE_NO_PAD.encode("nope"), b64(&claims())),
            "format check",
        ),
        (
            "missing unique-identifier claim",
            sign(
                &k.rsa,
                Algorithm::RS256,
                "rsa1",
                &with(json!({"user_login": null})),
            ),
            "unique-identifier",
        ),
    ];
    let mut expected = Vec::new();
    for (what, token, want) in &matrix {
        let (s, v) = h.jwt_auth(&id, token).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}: {v}");
        let msg = v["error"].as_str().unwrap().to_owned();
        assert!(msg.contains(want), "{what}: {msg:?} should name {want:?}");
        assert!(
            msg.starts_with("JWT authentication failed"),
            "{what}: {msg}"
        );
        assert!(v.get("token").is_none(), "{what}");
        expected.push((*what, msg));
    }
    // Forged kids cause at most one refetch per interval.
    for i in 0..5 {
        let (s, _) = h
            .jwt_auth(
                &id,
                &sign(&k.rsa, Algorithm::RS256, &format!("storm-{i}"), &claims()),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    assert!(
        hits.load(Ordering::SeqCst) == 1,
        "fetches: {}",
        hits.load(Ordering::SeqCst)
    );
    // Not rate-limited into a lockout: the good token still works.
    let (s, v) = h
        .jwt_auth(&id, &sign(&k.rsa, Algorithm::RS256, "rsa1", &claims()))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // One audit record per refusal, with the reason and without the token.
    let recs = h.audit().await;
    let text = serde_json::to_string(&recs).unwrap();
    for (what, token, _) in &matrix {
        if token.len() > 20 {
            assert!(
                !text.contains(token.as_str()),
                "{what}: token in the audit log"
            );
        }
    }
    assert!(!text.contains(&good));
    for (what, msg) in &expected {
        let n = recs
            .iter()
            .filter(|r| r["operation"] == "auth" && r["error"] == msg.as_str())
            .count();
        let dup = expected.iter().filter(|(_, m)| m == msg).count();
        assert_eq!(n, dup, "{what}: audit records for {msg:?}");
        let r = recs
            .iter()
            .find(|r| r["operation"] == "auth" && r["error"] == msg.as_str())
            .unwrap();
        assert_eq!(r["outcome"], "denied");
        assert_eq!(r["status"], 401);
        assert_eq!(r["auth_method"], "/ci/gitlab");
    }
    let ok = recs
        .iter()
        .find(|r| {
            r["operation"] == "auth" && r["outcome"] == "allowed" && r["access_id"] == id.as_str()
        })
        .unwrap();
    assert_eq!(ok["identity"], "alice");
    let read = recs
        .iter()
        .find(|r| {
            r["operation"] == "get-secret-value"
                && r["object"] == "/app/db"
                && r["outcome"] == "allowed"
                && r["access_id"] == id.as_str()
        })
        .unwrap();
    assert_eq!(read["identity"], "alice");

    // get-auth-method shows the rules.
    let v = h
        .admin_ok("get-auth-method", json!({"name": "/ci/gitlab"}))
        .await;
    let rules = &v["access_info"]["oauth2_access_rules"];
    assert_eq!(rules["jwks_uri"], uri.as_str());
    assert_eq!(rules["unique_identifier"], "user_login");
    assert_eq!(rules["issuer"], ISS);
    assert_eq!(rules["audience"], "coffer");
    assert_eq!(v["access_info"]["force_sub_claims"], true);
    assert_eq!(v["access_info"]["rules_type"], "oauth2");
}

#[tokio::test]
async fn replay_events_and_unreachable_jwks() {
    let h = Harness::new().await;
    let k = keys();
    let (uri, _) = serve_jwks(k.jwks.clone()).await;
    let id = setup(&h, &uri, "/ci/replay", json!({"refuse-replay": "true"})).await;
    let token = sign(&k.rsa, Algorithm::RS256, "rsa1", &claims());
    assert_eq!(h.jwt_auth(&id, &token).await.0, StatusCode::OK);
    let (s, v) = h.jwt_auth(&id, &token).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["error"].as_str().unwrap().contains("replay check"), "{v}");
    let (s, v) = h
        .jwt_auth(
            &id,
            &sign(
                &k.rsa,
                Algorithm::RS256,
                "rsa1",
                &with(json!({"jti": null})),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["error"].as_str().unwrap().contains("jti"), "{v}");

    // GitHub pull_request_target / workflow_run tokens are refused by default.
    let gh = setup(&h, &uri, "/ci/github", json!({})).await;
    for event in ["pull_request_target", "workflow_run"] {
        let (s, v) = h
            .jwt_auth(
                &gh,
                &sign(
                    &k.rsa,
                    Algorithm::RS256,
                    "rsa1",
                    &with(json!({"event_name": event})),
                ),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{event}");
        assert!(v["error"].as_str().unwrap().contains("event check"), "{v}");
    }
    let push = sign(
        &k.rsa,
        Algorithm::RS256,
        "rsa1",
        &with(json!({"event_name": "push"})),
    );
    assert_eq!(h.jwt_auth(&gh, &push).await.0, StatusCode::OK);
    let allow = setup(&h, &uri, "/ci/github-all", json!({"refuse-events": "none"})).await;
    let prt = sign(
        &k.rsa,
        Algorithm::RS256,
        "rsa1",
        &with(json!({"event_name": "pull_request_target"})),
    );
    assert_eq!(h.jwt_auth(&allow, &prt).await.0, StatusCode::OK);

    // A JWKS that cannot be fetched fails closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = setup(
        &h,
        &format!("http://127.0.0.1:{port}/jwks"),
        "/ci/down",
        json!({}),
    )
    .await;
    let (s, v) = h.jwt_auth(&down, &token).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("could not be fetched"),
        "{v}"
    );

    // Wrong access types and IDs.
    let (s, v) = h.jwt_auth("p-unknown00000o.", &token).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, v) = h
        .call("auth", json!({"access-id": id, "access-type": "jwt"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = h
        .call(
            "auth",
            json!({"access-id": id, "access-type": "access_key", "access-key": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
}

#[tokio::test]
async fn create_validation_and_inline_jwks() {
    let h = Harness::new().await;
    let k = keys();
    for (body, want) in [
        (
            json!({"name": "/a", "jwks-uri": "https://x.test/jwks"}),
            "unique-identifier",
        ),
        (
            json!({"name": "/a", "unique-identifier": "sub"}),
            "jwks-uri",
        ),
        (
            json!({"name": "/a", "unique-identifier": "sub", "jwks-uri": "http://gitlab.test/jwks"}),
            "https",
        ),
        (
            json!({"name": "/a", "unique-identifier": "sub", "jwks-json-data": "not base64!"}),
            "base64",
        ),
        (
            json!({"name": "/a", "unique-identifier": "sub", "audience": "coffer", "jwks-json-data": STANDARD.encode(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#)}),
            "no usable signing key",
        ),
        (
            json!({"name": "/a", "unique-identifier": "sub", "jwks-json-data": STANDARD.encode(k.jwks.to_string())}),
            "missing required parameter audience",
        ),
        (
            json!({"name": "/a", "unique-identifier": "sub", "audience": " , ", "jwks-json-data": STANDARD.encode(k.jwks.to_string())}),
            "missing required parameter audience",
        ),
    ] {
        let mut b = body.clone();
        b["token"] = json!(h.admin);
        let (s, v) = h.call("auth-method-create-oauth2", b).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(want), "{body}: {v}");
    }
    // Inline JWKS, force-sub-claims turned off.
    let v = h
        .admin_ok(
            "auth-method-create-oauth2",
            json!({"name": "/inline", "unique-identifier": "sub", "force-sub-claims": "false",
                   "audience": "coffer", "jwks-json-data": STANDARD.encode(k.jwks.to_string()), "jwt-ttl": 5}),
        )
        .await;
    assert_eq!(v["access_key"], "");
    let id = v["access_id"].as_str().unwrap().to_owned();
    h.admin_ok("create-role", json!({"name": "r"})).await;
    h.admin_ok(
        "assoc-role-am",
        json!({"role-name": "r", "am-name": "/inline"}),
    )
    .await;
    let token = sign(
        &k.ec,
        Algorithm::ES256,
        "ec1",
        &with(json!({"iss": "https://anyone", "exp": now() + 3600})),
    );
    let (s, v) = h.jwt_auth(&id, &token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ttl = v["creds"]["expiry"].as_i64().unwrap() - now();
    assert!((290..=301).contains(&ttl), "jwt-ttl 5 minutes: {ttl}");
    let v = h
        .admin_ok("get-auth-method", json!({"name": "/inline"}))
        .await;
    assert!(
        v["access_info"]["oauth2_access_rules"]["jwks_json_data"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    assert_eq!(v["access_info"]["force_sub_claims"], false);
}

#[tokio::test]
async fn dev_oidc_tokens_log_in() {
    let h = Harness::new().await;
    let issuer = coffer_server::dev_oidc::DevIssuer::generate().unwrap();
    let (uri, _) = serve_jwks(issuer.jwks()).await;
    let url = "http://127.0.0.1:1";
    let v = h
        .admin_ok(
            "create-auth-method-oauth2",
            json!({"name": "/dev", "jwks-uri": uri, "unique-identifier": "user_login", "issuer": url, "audience": "coffer"}),
        )
        .await;
    let id = v["access_id"].as_str().unwrap().to_owned();
    let claims = coffer_server::dev_oidc::profile_claims(
        coffer_server::dev_oidc::Profile::Gitlab,
        &Default::default(),
        &["coffer".into()],
    )
    .unwrap();
    let token = issuer.mint(url, claims.clone(), 60).unwrap();
    let (s, v) = h.jwt_auth(&id, &token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["creds"]["sub_claims"]["sub"],
        json!(["project_path:group/app:ref_type:branch:ref:main"])
    );
    let mut expired = claims;
    expired.insert("exp".into(), json!(now() - 3600));
    expired.insert("iat".into(), json!(now() - 7200));
    expired.insert("nbf".into(), json!(now() - 7200));
    let (s, v) = h
        .jwt_auth(&id, &issuer.mint(url, expired, 60).unwrap())
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["error"].as_str().unwrap().contains("exp check"), "{v}");
}

#[tokio::test]
async fn explain_access_names_matches_failures_and_capabilities() {
    let h = Harness::new().await;
    let k = keys();
    let (uri, _) = serve_jwks(k.jwks.clone()).await;
    let id = setup(&h, &uri, "/ci", json!({"refuse-replay": true})).await;
    for (role, path, caps) in [
        ("app-main", "/app/*", json!(["read", "list"])),
        ("other", "/other/*", json!(["read"])),
        ("app-deny", "/app/prod/*", json!(["deny"])),
    ] {
        h.admin_ok("create-role", json!({"name": role})).await;
        h.admin_ok(
            "set-role-rule",
            json!({"role-name": role, "path": path, "capability": caps}),
        )
        .await;
    }
    h.admin_ok(
        "assoc-role-am",
        json!({"role-name": "app-main", "am-name": "/ci", "sub-claims": {"project_path": "group/app", "ref": "main"}}),
    )
    .await;
    h.admin_ok(
        "assoc-role-am",
        json!({"role-name": "other", "am-name": "/ci", "sub-claims": {"project_path": "group/other"}}),
    )
    .await;
    h.admin_ok(
        "assoc-role-am",
        json!({"role-name": "app-deny", "am-name": "/ci", "sub-claims": {"environment": "*"}}),
    )
    .await;
    let token = sign(&k.rsa, Algorithm::RS256, "rsa1", &claims());
    let v = h
        .admin_ok(
            "explain-access",
            json!({"access-id": id, "jwt": token, "path": "/app/db"}),
        )
        .await;
    assert_eq!(v["login"]["verified"], json!(true), "{v}");
    assert_eq!(v["login"]["identity"], "alice");
    assert_eq!(v["roles"], json!(["/app-main"]));
    assert_eq!(v["capabilities"], json!(["read", "list"]), "{v}");
    let assocs = v["associations"].as_array().unwrap();
    let by_role = |r: &str| {
        assocs
            .iter()
            .find(|a| a["role_name"].as_str().unwrap().trim_start_matches('/') == r)
            .unwrap()
            .clone()
    };
    assert_eq!(by_role("app-main")["matched"], json!(true));
    let other = by_role("other");
    assert_eq!(other["matched"], json!(false));
    assert_eq!(other["failed_claim"], "project_path");
    assert!(
        other["reason"].as_str().unwrap().contains("group/app"),
        "{other}"
    );
    assert_eq!(by_role("app-deny")["failed_claim"], "environment");
    assert!(
        by_role("app-deny")["reason"]
            .as_str()
            .unwrap()
            .contains("no \"environment\" claim")
    );
    // The explained token is not burnt: the real (refuse-replay) login works.
    assert_eq!(h.jwt_auth(&id, &token).await.0, StatusCode::OK);

    // With an environment claim the deny role matches and wins on /app/prod.
    let prod = sign(
        &k.rsa,
        Algorithm::RS256,
        "rsa1",
        &with(json!({"environment": "production"})),
    );
    let v = h
        .admin_ok(
            "explain-access",
            json!({"access-id": id, "jwt": prod, "path": "/app/prod/db"}),
        )
        .await;
    assert_eq!(v["capabilities"], json!([]), "{v}");
    assert_eq!(v["denied"], json!(true));
    assert_eq!(v["rules"].as_array().unwrap().len(), 2, "{v}");

    // ref=feature: the app association fails on ref; nothing is granted.
    let feature = sign(
        &k.rsa,
        Algorithm::RS256,
        "rsa1",
        &with(json!({"ref": "feature"})),
    );
    let v = h
        .admin_ok(
            "explain-access",
            json!({"access-id": id, "jwt": feature, "path": "/app/db"}),
        )
        .await;
    assert_eq!(v["roles"], json!([]));
    assert_eq!(v["capabilities"], json!([]));
    let a = &v["associations"].as_array().unwrap()[0];
    assert_eq!(a["failed_claim"], "ref", "{v}");

    // A token that fails verification is explained, not an error.
    let expired = sign(
        &k.rsa,
        Algorithm::RS256,
        "rsa1",
        &with(json!({"exp": now() - 3600, "iat": now() - 7200, "nbf": now() - 7200})),
    );
    let v = h
        .admin_ok("explain-access", json!({"access-id": id, "jwt": expired}))
        .await;
    assert_eq!(v["login"]["verified"], json!(false));
    assert!(
        v["login"]["error"].as_str().unwrap().contains("exp check"),
        "{v}"
    );
    assert!(
        v["associations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["matched"] == json!(false))
    );

    // Only callers who may read the auth method get an explanation.
    let (s, _) = h
        .call(
            "explain-access",
            json!({"token": h.jwt_auth(&id, &sign(&k.rsa, Algorithm::RS256, "rsa1", &claims())).await.1["token"], "access-id": id, "jwt": token}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = h
        .call(
            "explain-access",
            json!({"token": h.admin, "access-id": "p-nonexistent"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
}

/// The audience rules: creation needs an audience (or bound client IDs),
/// a token minted for another relying party of the same issuer is refused,
/// and a method without an audience takes only tokens that carry none.
#[tokio::test]
async fn foreign_audience_tokens_are_refused() {
    let h = Harness::new().await;
    let k = keys();
    let (uri, _) = serve_jwks(k.jwks.clone()).await;

    // No audience and no client IDs: refused at creation, saying why.
    let msg = h
        .fails(
            "create-auth-method-oauth2",
            json!({"token": h.admin, "name": "/ci/any", "jwks-uri": uri, "unique-identifier": "user_login", "issuer": ISS}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(
        msg.contains("missing required parameter audience")
            && msg.contains("any other service that trusts the same issuer"),
        "{msg}"
    );
    let listed = h.admin_ok("list-auth-methods", json!({})).await;
    assert!(
        !listed.to_string().contains("/ci/any"),
        "nothing was created: {listed}"
    );

    // Same issuer, same keys, a token minted for another service.
    let id = setup(&h, &uri, "/ci/gitlab", json!({})).await;
    h.admin_ok("create-role", json!({"name": "r"})).await;
    h.admin_ok(
        "set-role-rule",
        json!({"role-name": "r", "path": "/app/*", "capability": ["read"]}),
    )
    .await;
    h.admin_ok(
        "assoc-role-am",
        json!({"role-name": "r", "am-name": "/ci/gitlab", "sub-claims": {"project_path": "group/app"}}),
    )
    .await;
    for foreign in [
        json!("https://vault.example.com"),
        json!(["https://vault.example.com", "sts.amazonaws.com"]),
        json!("COFFER"),
    ] {
        let t = sign(
            &k.rsa,
            Algorithm::RS256,
            "rsa1",
            &with(json!({ "aud": foreign })),
        );
        let (s, v) = h.jwt_auth(&id, &t).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{foreign}: {v}");
        let msg = v["error"].as_str().unwrap();
        assert!(
            msg.starts_with("JWT authentication failed: aud check: audience")
                && msg.contains("is not this auth method's audience \"coffer\""),
            "{foreign}: {msg}"
        );
        assert!(v.get("token").is_none());
    }
    // A list that includes this method's audience is accepted.
    let t = sign(
        &k.rsa,
        Algorithm::RS256,
        "rsa1",
        &with(json!({"aud": ["https://vault.example.com", "coffer"]})),
    );
    assert_eq!(h.jwt_auth(&id, &t).await.0, StatusCode::OK);

    // An issuer without aud: bound client IDs instead of an audience. A
    // token without aud from a bound client logs in; any token that names
    // an audience is refused (Vault's rule for roles without
    // bound_audiences).
    let am = h
        .admin_ok(
            "create-auth-method-oauth2",
            json!({"name": "/ci/noaud", "jwks-uri": uri, "unique-identifier": "user_login",
                   "issuer": ISS, "bound-client-ids": "ci-client", "force-sub-claims": false}),
        )
        .await;
    let noaud = am["access_id"].as_str().unwrap().to_owned();
    let rules = h
        .admin_ok("get-auth-method", json!({"name": "/ci/noaud"}))
        .await["access_info"]["oauth2_access_rules"]
        .clone();
    assert_eq!(rules["audience"], "", "{rules}");
    let ok = sign(
        &k.rsa,
        Algorithm::RS256,
        "rsa1",
        &with(json!({"aud": null, "azp": "ci-client"})),
    );
    let (s, v) = h.jwt_auth(&noaud, &ok).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for aud in [json!("coffer"), json!(["x"]), json!("")] {
        let t = sign(
            &k.rsa,
            Algorithm::RS256,
            "rsa1",
            &with(json!({"aud": aud, "azp": "ci-client"})),
        );
        let (s, v) = h.jwt_auth(&noaud, &t).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{aud}: {v}");
        let msg = v["error"].as_str().unwrap();
        assert!(
            msg.contains("aud check") && msg.contains("binds no audience"),
            "{aud}: {msg}"
        );
    }
    // A malformed aud does not pass for "none".
    let t = sign(
        &k.rsa,
        Algorithm::RS256,
        "rsa1",
        &with(json!({"aud": {"x": 1}, "azp": "ci-client"})),
    );
    let (s, v) = h.jwt_auth(&noaud, &t).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("string or a list of strings"),
        "{v}"
    );
    // Without aud, the client binding still applies.
    let t = sign(
        &k.rsa,
        Algorithm::RS256,
        "rsa1",
        &with(json!({"aud": null, "azp": "other-client"})),
    );
    let (s, v) = h.jwt_auth(&noaud, &t).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["error"].as_str().unwrap().contains("client check"), "{v}");
    // explain-access applies the same rules.
    let t = sign(
        &k.rsa,
        Algorithm::RS256,
        "rsa1",
        &with(json!({"aud": "https://vault.example.com"})),
    );
    let v = h
        .admin_ok("explain-access", json!({"access-id": id, "jwt": t}))
        .await;
    assert_eq!(v["login"]["verified"], json!(false), "{v}");
    assert!(
        v["login"]["error"].as_str().unwrap().contains("aud check"),
        "{v}"
    );
}

/// A Coffer token never outlives the JWT it was issued for.
#[tokio::test]
async fn tokens_expire_with_the_jwt() {
    let h = Harness::new().await;
    let k = keys();
    let (uri, _) = serve_jwks(k.jwks.clone()).await;
    // jwt-ttl 60 minutes: without the cap the token would live an hour.
    let id = setup(&h, &uri, "/ci/short", json!({"jwt-ttl": 60})).await;
    h.admin_ok("create-role", json!({"name": "r"})).await;
    h.admin_ok(
        "set-role-rule",
        json!({"role-name": "r", "path": "/app/*", "capability": ["read"]}),
    )
    .await;
    h.admin_ok(
        "assoc-role-am",
        json!({"role-name": "r", "am-name": "/ci/short", "sub-claims": {"project_path": "group/app"}}),
    )
    .await;
    h.admin_ok("create-secret", json!({"name": "/app/db", "value": "v"}))
        .await;

    // A 20-second JWT.
    let exp = now() + 20;
    let t = sign(
        &k.rsa,
        Algorithm::RS256,
        "rsa1",
        &with(json!({ "exp": exp })),
    );
    let (s, v) = h.jwt_auth(&id, &t).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let expiry = v["creds"]["expiry"].as_i64().unwrap();
    assert!(
        expiry <= exp,
        "token expiry {expiry} is after the JWT's {exp}"
    );
    assert!(expiry >= exp - 1, "{expiry} vs {exp}");
    let token = v["token"].as_str().unwrap().to_owned();
    let vt = h.ok("validate-token", json!({ "token": token })).await;
    assert_eq!(vt["is_valid"], true, "{vt}");
    assert!(vt["ttl"].as_i64().unwrap() <= 20, "{vt}");

    // A 2-second JWT: its token works, then stops with the JWT.
    let t = sign(
        &k.rsa,
        Algorithm::RS256,
        "rsa1",
        &with(json!({"exp": now() + 2})),
    );
    let (s, v) = h.jwt_auth(&id, &t).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let short = v["token"].as_str().unwrap().to_owned();
    let read = |tok: String| {
        let h = &h;
        async move {
            h.call(
                "get-secret-value",
                json!({"token": tok, "names": ["/app/db"]}),
            )
            .await
            .0
        }
    };
    assert_eq!(read(short.clone()).await, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_eq!(read(short.clone()).await, StatusCode::UNAUTHORIZED);
    let vt = h.ok("validate-token", json!({ "token": short })).await;
    assert_eq!(vt["is_valid"], false, "{vt}");

    // Expired but inside the clock leeway: the token would be born dead,
    // so the login is refused with the reason.
    let t = sign(
        &k.rsa,
        Algorithm::RS256,
        "rsa1",
        &with(json!({"exp": now() - 5, "iat": now() - 60, "nbf": now() - 60})),
    );
    let (s, v) = h.jwt_auth(&id, &t).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains("exp check") && msg.contains("never outlives"),
        "{msg}"
    );
}
