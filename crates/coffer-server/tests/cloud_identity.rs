//! Kubernetes, Azure AD and GCP logins through the real router. Tokens are
//! signed by the test with keys published as the method's JWKS; the
//! Kubernetes TokenReview path talks to a local server that implements the
//! `authentication.k8s.io/v1` TokenReview API as the API server does (no
//! cluster can run here).

mod common;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Harness, keys, now, sign};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

const K8S_ISS: &str = "https://kubernetes.default.svc.cluster.local";

fn jwks_b64(jwks: &Value) -> String {
    STANDARD.encode(jwks.to_string())
}

async fn login(h: &Harness, body: Value) -> (StatusCode, Value) {
    h.call("auth", body).await
}

/// Expect a refusal whose message names `check`, and no token.
fn refused(r: (StatusCode, Value), status: StatusCode, check: &str) {
    assert_eq!(r.0, status, "{}", r.1);
    let msg = r.1["error"].as_str().unwrap_or_default();
    assert!(msg.contains(check), "expected {check:?} in {msg:?}");
    assert!(r.1.get("token").is_none());
}

/// A role reading `path` associated with the method under `sub_claims`.
async fn grant(h: &Harness, role: &str, am: &str, path: &str, sub_claims: Value) {
    h.admin_ok("create-role", json!({"name": role})).await;
    h.admin_ok(
        "set-role-rule",
        json!({"role-name": role, "path": path, "capability": ["read"]}),
    )
    .await;
    h.admin_ok(
        "assoc-role-am",
        json!({"role-name": role, "am-name": am, "sub-claims": sub_claims}),
    )
    .await;
}

async fn read(h: &Harness, token: &str, name: &str) -> StatusCode {
    h.call("get-secret-value", json!({"token": token, "names": [name]}))
        .await
        .0
}

fn sa_claims(ns: &str, sa: &str) -> Value {
    json!({
        "iss": K8S_ISS, "aud": ["coffer"], "iat": now(), "nbf": now(), "exp": now() + 600,
        "sub": format!("system:serviceaccount:{ns}:{sa}"),
        "kubernetes.io": {
            "namespace": ns,
            "pod": {"name": "runner-abc", "uid": "pod-uid-1"},
            "serviceaccount": {"name": sa, "uid": "sa-uid-1"},
        }
    })
}

#[tokio::test]
async fn k8s_service_account_tokens_with_jwks() {
    let h = Harness::new().await;
    let k = keys();
    // Creation is validated.
    let (s, v) = h
        .call(
            "create-auth-method-k8s",
            json!({"token": h.admin, "name": "/k8s-bad"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"].as_str().unwrap().contains("jwks-uri"), "{v}");
    let (s, v) = h
        .call(
            "create-auth-method-k8s",
            json!({"token": h.admin, "name": "/k8s-bad", "jwks-json-data": jwks_b64(&k.jwks)}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"].as_str().unwrap().contains("k8s-issuer"), "{v}");
    // Service-account tokens always carry aud: a JWKS method must bind one.
    let (s, v) = h
        .call(
            "create-auth-method-k8s",
            json!({"token": h.admin, "name": "/k8s-bad", "jwks-json-data": jwks_b64(&k.jwks), "k8s-issuer": K8S_ISS}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains("audience is required with a JWKS") && msg.contains("serviceAccountToken"),
        "{v}"
    );

    let am = h
        .admin_ok(
            "create-auth-method-k8s",
            json!({"name": "/k8s", "jwks-json-data": jwks_b64(&k.jwks), "k8s-issuer": K8S_ISS,
                   "audience": "coffer", "bound-namespaces": ["ci-*"], "bound-sa-names": "runner"}),
        )
        .await;
    let id = am["access_id"].as_str().unwrap().to_owned();
    assert_eq!(id.chars().rev().nth(1), Some('k'), "{id}");
    let info = h.admin_ok("get-auth-method", json!({"name": "/k8s"})).await;
    let rules = &info["access_info"]["k8s_access_rules"];
    assert_eq!(rules["bound_namespaces"], json!(["ci-*"]), "{info}");
    assert_eq!(info["access_info"]["force_sub_claims"], json!(true));

    // force-sub-claims is on by default for k8s.
    h.admin_ok("create-role", json!({"name": "k8s-reader"}))
        .await;
    let (s, v) = h
        .call(
            "assoc-role-am",
            json!({"token": h.admin, "role-name": "k8s-reader", "am-name": "/k8s"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    h.admin_ok(
        "set-role-rule",
        json!({"role-name": "k8s-reader", "path": "/k8s/*", "capability": ["read"]}),
    )
    .await;
    h.admin_ok(
        "assoc-role-am",
        json!({"role-name": "k8s-reader", "am-name": "/k8s", "sub-claims": {"namespace": "ci-prod"}}),
    )
    .await;
    h.admin_ok("create-secret", json!({"name": "/k8s/db", "value": "v"}))
        .await;

    let auth = |tok: String| {
        json!({"access-id": id, "access-type": "k8s", "k8s-service-account-token": tok,
               "k8s-auth-config-name": "cluster-1"})
    };
    let good = sign(
        &k.rsa,
        Algorithm::RS256,
        "rsa1",
        &sa_claims("ci-prod", "runner"),
    );
    let (s, v) = login(&h, auth(STANDARD.encode(&good))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    assert_eq!(v["creds"]["sub_claims"]["namespace"], json!(["ci-prod"]));
    let exp = sa_claims("ci-prod", "runner")["exp"].as_i64().unwrap();
    let expiry = v["creds"]["expiry"].as_i64().unwrap();
    assert!(
        expiry <= exp && expiry >= exp - 5,
        "the token ends with the service-account token: {expiry} vs {exp}"
    );
    assert_eq!(v["creds"]["sub_claims"]["pod_name"], json!(["runner-abc"]));
    assert_eq!(read(&h, &token, "/k8s/db").await, StatusCode::OK);
    // The raw JWT (not base64) is accepted too.
    assert_eq!(login(&h, auth(good.clone())).await.0, StatusCode::OK);

    // Same cluster, other namespace that the method binds but no role
    // association matches: a token that can read nothing.
    let staging = sign(
        &k.rsa,
        Algorithm::RS256,
        "rsa1",
        &sa_claims("ci-staging", "runner"),
    );
    let (s, v) = login(&h, auth(STANDARD.encode(&staging))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        read(&h, v["token"].as_str().unwrap(), "/k8s/db").await,
        StatusCode::FORBIDDEN
    );

    let enc = |c: &Value| STANDARD.encode(sign(&k.rsa, Algorithm::RS256, "rsa1", c));
    refused(
        login(&h, auth(enc(&sa_claims("default", "runner")))).await,
        StatusCode::UNAUTHORIZED,
        "namespace check",
    );
    refused(
        login(&h, auth(enc(&sa_claims("ci-prod", "deployer")))).await,
        StatusCode::UNAUTHORIZED,
        "service account check",
    );
    let mut c = sa_claims("ci-prod", "runner");
    c["iss"] = json!("https://other-cluster");
    refused(
        login(&h, auth(enc(&c))).await,
        StatusCode::UNAUTHORIZED,
        "iss check",
    );
    // The pod's default token (for the API server) or one projected for
    // another service is refused.
    for aud in [json!([K8S_ISS]), json!(["vault"]), json!(null)] {
        let mut c = sa_claims("ci-prod", "runner");
        c["aud"] = aud;
        refused(
            login(&h, auth(enc(&c))).await,
            StatusCode::UNAUTHORIZED,
            "aud check",
        );
    }
    let mut c = sa_claims("ci-prod", "runner");
    c.as_object_mut().unwrap().remove("exp");
    refused(
        login(&h, auth(enc(&c))).await,
        StatusCode::UNAUTHORIZED,
        "exp check",
    );
    let mut c = sa_claims("ci-prod", "runner");
    c["exp"] = json!(now() - 3600);
    refused(
        login(&h, auth(enc(&c))).await,
        StatusCode::UNAUTHORIZED,
        "exp check",
    );
    // A user token of the cluster is not a service-account token.
    let mut c = sa_claims("ci-prod", "runner");
    c.as_object_mut().unwrap().remove("kubernetes.io");
    c["sub"] = json!("alice");
    refused(
        login(&h, auth(enc(&c))).await,
        StatusCode::UNAUTHORIZED,
        "subject check",
    );
    // Signed by another key.
    let other = keys();
    refused(
        login(
            &h,
            auth(STANDARD.encode(sign(
                &other.rsa,
                Algorithm::RS256,
                "rsa1",
                &sa_claims("ci-prod", "runner"),
            ))),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "signature check",
    );
    refused(
        login(&h, auth("%%%not base64%%%".into())).await,
        StatusCode::UNAUTHORIZED,
        "base64",
    );
    refused(
        login(&h, json!({"access-id": id, "access-type": "k8s"})).await,
        StatusCode::BAD_REQUEST,
        "k8s-service-account-token",
    );
    // Access-type confusion: the k8s access ID with a JWT login.
    refused(
        login(
            &h,
            json!({"access-id": id, "access-type": "jwt", "jwt": good}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "access-type k8s",
    );
    // Every refusal left one audit record naming the method, none a token.
    let audit = h.audit().await;
    let denied = audit
        .iter()
        .filter(|r| {
            r["operation"] == "auth" && r["auth_method"] == "/k8s" && r["outcome"] != "allowed"
        })
        .count();
    assert!(denied >= 10, "{denied} refused k8s logins audited");
    assert!(!serde_json::to_string(&audit).unwrap().contains(&good));
}

/// The TokenReview API as the Kubernetes API server serves it. Valid
/// tokens: `legacy-sa-token` (no expiry), `bound` (a bound JWT the cluster
/// issued, with its audiences), and `unaware-sa-token`, answered as an API
/// server that ignores spec.audiences does (no status.audiences: the token
/// is then valid only for the API server itself).
async fn serve_token_review(
    reviewer: &'static str,
    bound: Option<(String, Vec<String>)>,
) -> String {
    async fn review(
        headers: HeaderMap,
        body: axum::Json<Value>,
        reviewer: &'static str,
        bound: Option<(String, Vec<String>)>,
    ) -> (StatusCode, axum::Json<Value>) {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if auth != format!("Bearer {reviewer}") {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401}),
                ),
            );
        }
        assert_eq!(body["kind"], "TokenReview");
        assert_eq!(body["apiVersion"], "authentication.k8s.io/v1");
        let token = body["spec"]["token"].as_str().unwrap_or_default();
        let sa_user = json!({
            "username": "system:serviceaccount:ci:runner",
            "uid": "sa-uid-9",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"],
            "extra": {"authentication.kubernetes.io/pod-name": ["runner-xyz"], "authentication.kubernetes.io/pod-uid": ["pod-uid-9"]}
        });
        if let Some((_, token_auds)) = bound.as_ref().filter(|(t, _)| t == token) {
            // spec.audiences ∩ the token's audiences (the API server's own
            // audience when spec.audiences is absent).
            let wanted: Vec<String> = match body["spec"]["audiences"].as_array() {
                Some(a) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                None => vec![K8S_ISS.to_owned()],
            };
            let both: Vec<&String> = wanted.iter().filter(|a| token_auds.contains(a)).collect();
            let status = if both.is_empty() {
                json!({"authenticated": false, "error": "[invalid bearer token, token audiences [\"coffer\"] is invalid for the target audiences]"})
            } else {
                json!({"authenticated": true, "user": sa_user, "audiences": both})
            };
            return (
                StatusCode::CREATED,
                axum::Json(
                    json!({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1", "spec": body["spec"].clone(), "status": status}),
                ),
            );
        }
        let status = match token {
            "unaware-sa-token" => json!({"authenticated": true, "user": sa_user}),
            "legacy-sa-token" => json!({
                "authenticated": true,
                "user": {
                    "username": "system:serviceaccount:ci:runner",
                    "uid": "sa-uid-9",
                    "groups": ["system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"],
                    "extra": {"authentication.kubernetes.io/pod-name": ["runner-xyz"], "authentication.kubernetes.io/pod-uid": ["pod-uid-9"]}
                },
                "audiences": body["spec"]["audiences"].clone(),
            }),
            "user-token" => json!({"authenticated": true, "user": {"username": "alice"}}),
            _ => {
                json!({"authenticated": false, "error": "[invalid bearer token, service account token has been invalidated]"})
            }
        };
        (
            StatusCode::CREATED,
            axum::Json(
                json!({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1", "metadata": {"creationTimestamp": null}, "spec": body["spec"].clone(), "status": status}),
            ),
        )
    }
    let app = Router::new().route(
        "/apis/authentication.k8s.io/v1/tokenreviews",
        axum::routing::post(move |h: HeaderMap, b: axum::Json<Value>| {
            review(h, b, reviewer, bound.clone())
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn k8s_token_review_api() {
    let h = Harness::new().await;
    let k = keys();
    let mut c = sa_claims("ci", "runner");
    let exp = now() + 120;
    c["exp"] = json!(exp);
    let bound_jwt = sign(&k.rsa, Algorithm::RS256, "rsa1", &c);
    let host = serve_token_review(
        "reviewer-jwt-MARKER-7f3a",
        Some((bound_jwt.clone(), vec!["coffer".to_owned()])),
    )
    .await;
    let am = h
        .admin_ok(
            "create-auth-method-k8s",
            json!({"name": "/k8s-tr", "k8s-host": host, "token-reviewer-jwt": "reviewer-jwt-MARKER-7f3a",
                   "bound-namespaces": "ci"}),
        )
        .await;
    let id = am["access_id"].as_str().unwrap().to_owned();
    let info = h
        .admin_ok("get-auth-method", json!({"name": "/k8s-tr"}))
        .await;
    assert_eq!(
        info["access_info"]["k8s_access_rules"]["token_reviewer_jwt_set"],
        json!(true)
    );
    assert!(
        !info.to_string().contains("MARKER"),
        "the reviewer JWT is never shown"
    );

    let auth = |tok: &str| json!({"access-id": id, "access-type": "k8s", "k8s-service-account-token": STANDARD.encode(tok)});
    let (s, v) = login(&h, auth("legacy-sa-token")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["creds"]["sub_claims"]["service_account_name"],
        json!(["runner"])
    );
    assert_eq!(v["creds"]["sub_claims"]["pod_name"], json!(["runner-xyz"]));
    // A legacy token has no expiry: the method's TTL applies.
    assert!(v["creds"]["expiry"].as_i64().unwrap() > now() + 600, "{v}");
    refused(
        login(&h, auth("revoked-token")).await,
        StatusCode::UNAUTHORIZED,
        "service account token has been invalidated",
    );
    refused(
        login(&h, auth("user-token")).await,
        StatusCode::UNAUTHORIZED,
        "subject check",
    );

    // With an audience: the cluster must confirm it. A bound token for
    // Coffer logs in, and its Coffer token ends with it; an API server
    // that does not answer the audience is not trusted for it.
    let am_aud = h
        .admin_ok(
            "create-auth-method-k8s",
            json!({"name": "/k8s-tr-aud", "k8s-host": host, "token-reviewer-jwt": "reviewer-jwt-MARKER-7f3a",
                   "audience": "coffer", "bound-namespaces": "ci"}),
        )
        .await;
    let aud_id = am_aud["access_id"].as_str().unwrap().to_owned();
    let auth_aud = |tok: &str| json!({"access-id": aud_id, "access-type": "k8s", "k8s-service-account-token": STANDARD.encode(tok)});
    let (s, v) = login(&h, auth_aud(&bound_jwt)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let expiry = v["creds"]["expiry"].as_i64().unwrap();
    assert!(expiry <= exp && expiry >= exp - 5, "{expiry} vs {exp}");
    refused(
        login(&h, auth_aud("unaware-sa-token")).await,
        StatusCode::UNAUTHORIZED,
        "aud check",
    );
    let (s, v) = login(&h, auth_aud("unaware-sa-token")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        v["error"].as_str().unwrap().contains("lists no audiences"),
        "{v}"
    );
    // Without an audience the cluster checks its own: the bound token for
    // Coffer is not a token for the API server.
    refused(
        login(&h, auth(&bound_jwt)).await,
        StatusCode::UNAUTHORIZED,
        "the cluster rejected the token",
    );

    // A method whose reviewer JWT the cluster refuses.
    let am2 = h
        .admin_ok(
            "create-auth-method-k8s",
            json!({"name": "/k8s-tr2", "k8s-host": host, "token-reviewer-jwt": "wrong"}),
        )
        .await;
    let (s, v) = login(
        &h,
        json!({"access-id": am2["access_id"], "access-type": "k8s", "k8s-service-account-token": STANDARD.encode("legacy-sa-token")}),
    )
    .await;
    refused((s, v), StatusCode::UNAUTHORIZED, "system:auth-delegator");

    // An unreachable API server fails closed with a clear message.
    let am3 = h
        .admin_ok(
            "create-auth-method-k8s",
            json!({"name": "/k8s-tr3", "k8s-host": "http://127.0.0.1:9"}),
        )
        .await;
    refused(
        login(
            &h,
            json!({"access-id": am3["access_id"], "access-type": "k8s", "k8s-service-account-token": STANDARD.encode("legacy-sa-token")}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "could not be reached",
    );
    // Non-loopback plain HTTP and junk CA certificates are refused at creation.
    for bad in [
        json!({"name": "/k8s-x", "k8s-host": "http://k8s.example.com"}),
        json!({"name": "/k8s-x", "k8s-host": "https://k8s.example.com", "k8s-ca-cert": "not a cert"}),
        json!({"name": "/k8s-x", "k8s-host": "https://k8s.example.com", "jwks-uri": "https://k8s.example.com/openid/v1/jwks"}),
    ] {
        let mut b = bad.clone();
        b["token"] = json!(h.admin);
        let (s, v) = h.call("create-auth-method-k8s", b).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad} -> {v}");
    }
    let audit = serde_json::to_string(&h.audit().await).unwrap();
    assert!(!audit.contains("MARKER"));
}

fn azure_claims() -> Value {
    json!({
        "iss": "https://sts.windows.net/tenant-1/", "aud": "api://coffer",
        "iat": now(), "nbf": now(), "exp": now() + 600,
        "tid": "tenant-1", "oid": "oid-runner", "appid": "app-1", "sub": "oid-runner",
        "xms_mirid": "/subscriptions/sub-1/resourcegroups/rg-ci/providers/Microsoft.Compute/virtualMachines/runner-1",
    })
}

#[tokio::test]
async fn azure_ad_managed_identity_tokens() {
    let h = Harness::new().await;
    let k = keys();
    let (s, v) = h
        .call(
            "create-auth-method-azure-ad",
            json!({"token": h.admin, "name": "/az-bad"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["error"].as_str().unwrap().contains("bound-tenant-id"),
        "{v}"
    );
    let am = h
        .admin_ok(
            "create-auth-method-azure-ad",
            json!({"name": "/az", "bound-tenant-id": "tenant-1", "jwks-json-data": jwks_b64(&k.jwks),
                   "bound-rg-id": "rg-ci", "bound-sub-id": ["sub-1"]}),
        )
        .await;
    let id = am["access_id"].as_str().unwrap().to_owned();
    assert_eq!(id.chars().rev().nth(1), Some('z'), "{id}");
    let info = h.admin_ok("get-auth-method", json!({"name": "/az"})).await;
    assert_eq!(
        info["access_info"]["azure_ad_access_rules"]["audience"], "api://coffer",
        "Coffer's own default audience"
    );
    grant(
        &h,
        "az-reader",
        "/az",
        "/az/*",
        json!({"resource_name": "runner-*"}),
    )
    .await;
    h.admin_ok("create-secret", json!({"name": "/az/key", "value": "v"}))
        .await;

    let auth = |c: &Value| {
        json!({"access-id": id, "access-type": "azure_ad",
               "cloud-id": STANDARD.encode(sign(&k.rsa, Algorithm::RS256, "rsa1", c))})
    };
    let (s, v) = login(&h, auth(&azure_claims())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["creds"]["sub_claims"]["resource_group"], json!(["rg-ci"]));
    let exp = azure_claims()["exp"].as_i64().unwrap();
    let expiry = v["creds"]["expiry"].as_i64().unwrap();
    assert!(expiry <= exp && expiry >= exp - 5, "{expiry} vs {exp}");
    assert_eq!(
        read(&h, v["token"].as_str().unwrap(), "/az/key").await,
        StatusCode::OK
    );
    // The v2 issuer of the same tenant is accepted.
    let mut c = azure_claims();
    c["iss"] = json!("https://login.microsoftonline.com/tenant-1/v2.0");
    assert_eq!(login(&h, auth(&c)).await.0, StatusCode::OK);

    let mut c = azure_claims();
    c["tid"] = json!("tenant-2");
    c["iss"] = json!("https://sts.windows.net/tenant-2/");
    refused(
        login(&h, auth(&c)).await,
        StatusCode::UNAUTHORIZED,
        "tenant check",
    );
    let mut c = azure_claims();
    c["iss"] = json!("https://evil.example/tenant-1/");
    refused(
        login(&h, auth(&c)).await,
        StatusCode::UNAUTHORIZED,
        "iss check",
    );
    // Tokens of the same managed identity for other resources: Key Vault,
    // and ARM, which is what the Akeyless cloud-id libraries request.
    for aud in ["https://vault.azure.net", "https://management.azure.com/"] {
        let mut c = azure_claims();
        c["aud"] = json!(aud);
        let (s, v) = login(&h, auth(&c)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{aud}: {v}");
        let msg = v["error"].as_str().unwrap();
        assert!(
            msg.starts_with("Azure AD authentication failed: aud check")
                && msg.contains(aud)
                && msg.contains("api://coffer"),
            "{msg}"
        );
    }
    let mut c = azure_claims();
    c["xms_mirid"] = json!(
        "/subscriptions/sub-1/resourcegroups/rg-prod/providers/Microsoft.Compute/virtualMachines/runner-1"
    );
    refused(
        login(&h, auth(&c)).await,
        StatusCode::UNAUTHORIZED,
        "resource group check",
    );
    let mut c = azure_claims();
    c.as_object_mut().unwrap().remove("xms_mirid");
    refused(
        login(&h, auth(&c)).await,
        StatusCode::UNAUTHORIZED,
        "subscription check",
    );
    refused(
        login(&h, json!({"access-id": id, "access-type": "azure_ad"})).await,
        StatusCode::BAD_REQUEST,
        "cloud-id",
    );

    // ARM's audience only by explicit opt-in (for the Akeyless cloud-id
    // libraries, which cannot ask for another resource).
    let arm = h
        .admin_ok(
            "create-auth-method-azure-ad",
            json!({"name": "/az-arm", "bound-tenant-id": "tenant-1", "jwks-json-data": jwks_b64(&k.jwks),
                   "audience": "https://management.azure.com/", "force-sub-claims": false}),
        )
        .await;
    let mut c = azure_claims();
    c["aud"] = json!("https://management.azure.com/");
    let body = json!({"access-id": arm["access_id"], "access-type": "azure_ad",
                      "cloud-id": STANDARD.encode(sign(&k.rsa, Algorithm::RS256, "rsa1", &c))});
    assert_eq!(login(&h, body).await.0, StatusCode::OK);
}

fn gcp_claims() -> Value {
    json!({
        "iss": "https://accounts.google.com", "aud": "coffer-gcp", "azp": "1234567890",
        "iat": now(), "exp": now() + 600, "sub": "1234567890",
        "email": "ci@proj-1.iam.gserviceaccount.com", "email_verified": true,
    })
}

#[tokio::test]
async fn gcp_identity_tokens() {
    let h = Harness::new().await;
    let k = keys();
    for bad in [
        json!({"name": "/g-bad", "type": "aws"}),
        json!({"name": "/g-bad", "bound-labels": ["env:ci"]}),
        json!({"name": "/g-bad", "type": "iam", "bound-zones": ["europe-west1-b"]}),
    ] {
        let mut b = bad.clone();
        b["token"] = json!(h.admin);
        let (s, v) = h.call("create-auth-method-gcp", b).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad} -> {v}");
    }
    let am = h
        .admin_ok(
            "create-auth-method-gcp",
            json!({"name": "/gcp", "type": "iam", "audience": "coffer-gcp", "jwks-json-data": jwks_b64(&k.jwks),
                   "bound-service-accounts": ["ci@proj-1.iam.gserviceaccount.com"], "bound-projects": "proj-1"}),
        )
        .await;
    let id = am["access_id"].as_str().unwrap().to_owned();
    assert_eq!(id.chars().rev().nth(1), Some('g'), "{id}");
    grant(
        &h,
        "gcp-reader",
        "/gcp",
        "/gcp/*",
        json!({"project_id": "proj-1"}),
    )
    .await;
    h.admin_ok("create-secret", json!({"name": "/gcp/key", "value": "v"}))
        .await;
    let auth = |c: &Value, aud: &str| {
        json!({"access-id": id, "access-type": "gcp", "gcp-audience": aud,
               "cloud-id": STANDARD.encode(sign(&k.rsa, Algorithm::RS256, "rsa1", c))})
    };
    let (s, v) = login(&h, auth(&gcp_claims(), "coffer-gcp")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        read(&h, v["token"].as_str().unwrap(), "/gcp/key").await,
        StatusCode::OK
    );
    let exp = gcp_claims()["exp"].as_i64().unwrap();
    let expiry = v["creds"]["expiry"].as_i64().unwrap();
    assert!(expiry <= exp && expiry >= exp - 5, "{expiry} vs {exp}");
    // The SDKs send gcp-audience "akeyless.io" whatever the token's audience:
    // the signed aud decides.
    let (s, v) = login(&h, auth(&gcp_claims(), "akeyless.io")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut c = gcp_claims();
    c["aud"] = json!("akeyless.io");
    refused(
        login(&h, auth(&c, "")).await,
        StatusCode::UNAUTHORIZED,
        "aud check",
    );
    let (s, v) = login(&h, auth(&c, "akeyless.io")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains("aud check") && msg.contains("request it for \"coffer-gcp\""),
        "{msg}"
    );
    let mut c = gcp_claims();
    c["email"] = json!("other@proj-1.iam.gserviceaccount.com");
    refused(
        login(&h, auth(&c, "coffer-gcp")).await,
        StatusCode::UNAUTHORIZED,
        "service account check",
    );
    let mut c = gcp_claims();
    c["iss"] = json!("https://evil.example");
    refused(
        login(&h, auth(&c, "coffer-gcp")).await,
        StatusCode::UNAUTHORIZED,
        "iss check",
    );
    let mut c = gcp_claims();
    c["email_verified"] = json!(false);
    refused(
        login(&h, auth(&c, "coffer-gcp")).await,
        StatusCode::UNAUTHORIZED,
        "email check",
    );

    // gce: instance identity tokens bound by region.
    let am = h
        .admin_ok(
            "create-auth-method-gcp",
            json!({"name": "/gce", "type": "gce", "audience": "coffer-gcp", "jwks-json-data": jwks_b64(&k.jwks),
                   "bound-regions": ["europe-west1"], "bound-projects": ["proj-1"]}),
        )
        .await;
    let gid = am["access_id"].as_str().unwrap().to_owned();
    let gce = |zone: &str| {
        let mut c = gcp_claims();
        c["email"] = json!("1234-compute@developer.gserviceaccount.com");
        c["google"] = json!({"compute_engine": {"project_id": "proj-1", "project_number": 42,
                              "zone": zone, "instance_id": "77", "instance_name": "runner-1"}});
        json!({"access-id": gid, "access-type": "gcp",
               "cloud-id": STANDARD.encode(sign(&k.rsa, Algorithm::RS256, "rsa1", &c))})
    };
    let (s, v) = login(&h, gce("europe-west1-b")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["creds"]["sub_claims"]["region"], json!(["europe-west1"]));
    refused(
        login(&h, gce("us-east1-c")).await,
        StatusCode::UNAUTHORIZED,
        "region check",
    );
    // A service-account token has no instance claims.
    let c = gcp_claims();
    refused(
        login(
            &h,
            json!({"access-id": gid, "access-type": "gcp",
                   "cloud-id": STANDARD.encode(sign(&k.rsa, Algorithm::RS256, "rsa1", &c))}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "gce check",
    );
}

/// Without a configured audience, GCP methods expect Coffer's own: an ID
/// token requested for Akeyless (the cloud-id libraries' default) or for
/// another service is refused.
#[tokio::test]
async fn gcp_default_audience_is_coffers_own() {
    let h = Harness::new().await;
    let k = keys();
    let am = h
        .admin_ok(
            "create-auth-method-gcp",
            json!({"name": "/gcp-default", "jwks-json-data": jwks_b64(&k.jwks),
                   "bound-service-accounts": ["ci@proj-1.iam.gserviceaccount.com"], "force-sub-claims": false}),
        )
        .await;
    let id = am["access_id"].as_str().unwrap().to_owned();
    let info = h
        .admin_ok("get-auth-method", json!({"name": "/gcp-default"}))
        .await;
    assert_eq!(
        info["access_info"]["gcp_access_rules"]["audience"],
        "coffer"
    );
    let auth = |aud: &str| {
        let mut c = gcp_claims();
        c["aud"] = json!(aud);
        json!({"access-id": id, "access-type": "gcp",
               "cloud-id": STANDARD.encode(sign(&k.rsa, Algorithm::RS256, "rsa1", &c))})
    };
    for foreign in [
        "akeyless.io",
        "https://run.example.app",
        "//iam.googleapis.com/projects/1",
    ] {
        let (s, v) = login(&h, auth(foreign)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{foreign}: {v}");
        let msg = v["error"].as_str().unwrap();
        assert!(
            msg.starts_with("GCP authentication failed: aud check") && msg.contains(foreign),
            "{msg}"
        );
    }
    assert_eq!(login(&h, auth("coffer")).await.0, StatusCode::OK);
}
