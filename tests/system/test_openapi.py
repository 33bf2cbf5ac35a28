"""The served OpenAPI description (`GET /openapi.json`) against the real binary.

* it is a valid OpenAPI 3.1 document (openapi-spec-validator), served
  without a token;
* every path it lists is an operation the server dispatches (a POST without a
  token is refused for the token, or by the operation's own checks, never
  with "unknown operation"), and a name it does not list is not dispatched;
* every parameter name is one an official SDK model uses, or a listed Coffer
  extension (a typo would never be filled in by an SDK);
* every path is an SDK operation's path, or a listed Coffer operation.
"""

import inspect
import re

import akeyless
import requests
from openapi_spec_validator import validate

from cofferlib import CofferServer


def fetch(server: CofferServer) -> dict:
    r = requests.get(f"{server.url}/openapi.json", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def test_served_description_is_valid_openapi_31(server):
    doc = fetch(server)
    assert doc["openapi"] == "3.1.0"
    validate(doc)
    # Without a token: it describes the binary, nothing stored.
    assert requests.get(f"{server.url}/openapi.json", timeout=10).json() == doc


def test_every_documented_path_is_dispatched_and_nothing_else(server):
    doc = fetch(server)
    paths = doc["paths"]
    assert len(paths) > 80
    for path, item in paths.items():
        post = item["post"]
        r = requests.post(f"{server.url}/v2{path}", json={}, timeout=10)
        body = r.json()
        assert "unknown operation" not in body.get("error", ""), (path, body)
        needs_token = "token" in doc["components"]["schemas"][
            post["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        ]["properties"]
        if needs_token:
            assert r.status_code == 401, (path, r.status_code, body)
            assert "missing token" in body["error"], (path, body)
        else:
            assert r.status_code in (400, 401, 404, 429), (path, r.status_code, body)
    r = requests.post(f"{server.url}/v2/no-such-operation", json={}, timeout=10)
    assert r.status_code == 404 and "unknown operation" in r.json()["error"]


def test_answers_match_their_documented_schema(server, admin):
    """Real answers of a mix of operations validate against the 200 schema
    the description gives them (generated from ops/returns.rs)."""
    from jsonschema import Draft202012Validator

    doc = fetch(server)

    def check(op, body):
        answer = admin.call(op, body)
        schema = doc["paths"][f"/{op}"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema, f"{op} has no documented answer"
        errors = list(Draft202012Validator(schema).iter_errors(answer))
        assert not errors, (op, [e.message for e in errors])
        if schema.get("type") == "object" and "properties" in schema:
            assert set(answer) <= set(schema["properties"]), (op, set(answer) - set(schema["properties"]))
        return answer

    check("create-secret", {"name": "/oa/s", "value": "v1", "tags": ["t1"]})
    check("update-secret-val", {"name": "/oa/s", "value": "v2"})
    check("get-secret-value", {"names": ["/oa/s"]})
    check("describe-item", {"name": "/oa/s"})
    check("list-items", {"path": "/oa"})
    check("get-tags", {"name": "/oa/s"})
    check("create-role", {"name": "/oa/r"})
    check("get-role", {"name": "/oa/r"})
    check("create-auth-method", {"name": "/oa/am"})
    check("get-auth-method", {"name": "/oa/am"})
    check("list-auth-methods", {})
    check("validate-token", {})
    check("get-caller-identity", {})
    check("audit-list", {"limit": 5})
    check("delete-item", {"name": "/oa/s", "delete-immediately": True})


def sdk_models() -> dict[str, set[str]]:
    """SDK operation path → its request model's wire keys."""
    src = inspect.getsource(akeyless.V2Api)
    out = {}
    for m in re.finditer(r"def \w+_with_http_info\(self, \w+, \*\*kwargs\):.*?"
                         r":param (\w+) \w+: \(required\).*?call_api\(\s*'(/[^']+)'", src, re.S):
        model, path = m.groups()
        cls = getattr(akeyless, model, None)
        if cls is not None and hasattr(cls, "attribute_map"):
            out[path] = set(cls.attribute_map.values())
    return out


def test_parameter_names_are_akeyless_spellings_or_coffer_extensions(server):
    """Every parameter Coffer reads is spelled as some official SDK request
    model spells it (normalised to kebab-case), or is one of Coffer's own
    extensions listed below: a typo in a parameter name, which the SDKs would
    never fill in, fails here."""
    doc = fetch(server)
    sdk_keys = set()
    for _, cls in inspect.getmembers(akeyless, inspect.isclass):
        if hasattr(cls, "attribute_map"):
            sdk_keys |= {k.lower().replace("_", "-") for k in cls.attribute_map.values()}
    assert len(sdk_keys) > 1000, "could not read the SDK's models"
    unknown = {}
    for name, schema in doc["components"]["schemas"].items():
        for p in schema.get("properties", {}):
            if p not in sdk_keys and p not in COFFER_EXTENSIONS:
                unknown.setdefault(p, []).append(name)
    assert not unknown, unknown


def test_sdk_operation_names_are_paths(server):
    """Where Coffer serves an operation the SDK has, it answers at the SDK's
    path: the documented paths include every SDK path of the operations
    Coffer implements under one of their names."""
    doc = fetch(server)
    models = sdk_models()
    assert len(models) > 300, "could not read the SDK's operations"
    served = set(doc["paths"])
    coffer_only = sorted(p for p in served if p not in models)
    # Coffer's own operations, and Akeyless names the SDK no longer carries.
    assert set(coffer_only) <= COFFER_OPERATIONS, set(coffer_only) - COFFER_OPERATIONS


# Parameters Coffer reads that no SDK model has: Coffer's own extensions.
COFFER_EXTENSIONS = {
    "after-seq", "since", "until", "operation", "outcome", "limit",  # audit-list
    "all", "failing",  # lease-list
    "include-expired", "revoked-only",  # cert-list
    "lease-tied-to-token",  # auth methods: dynamic credentials die with the login's token
    "max-leases",  # dynamic secrets: live credentials cap
    "refuse-events", "refuse-replay",  # OAuth2/JWT: event-triggered tokens, jti replay
    "pending-deletion",  # list-items: only items pending deletion
    "code", "redirect-uri",  # OIDC logins for people: auth's code, oidc-auth-url's redirect
    "client-nonce",  # OIDC logins for people: the client-held secret of oidc-auth-url and auth
}

# Paths Coffer serves that the SDK does not name.
COFFER_OPERATIONS = {
    "/audit-list", "/audit-verify", "/explain-access", "/lease-list", "/whoami",
    "/get-caller-identity", "/cert-list", "/list-certificates", "/revoke-token",
    "/restore-item", "/revoke-creds", "/rotate-secret",
    "/gateway-get-tmp-users", "/gateway-revoke-tmp-users", "/gateway-update-tmp-users",
    "/oidc-auth-url",  # the first step of a person's OIDC login (authorization code + PKCE)
}
