"""The Akeyless Terraform provider's auth-method, role and association
resources replayed against a real Coffer server over raw HTTP.

For each resource the provider's create -> read -> update -> read ->
delete sequence is sent with the field names its Go source sends
(akeyless-community/terraform-provider-akeyless, akeyless/resource_*.go:
struct literals of the akeyless-go models, whose JSON tags are the
kebab-case wire names; `GetAkeylessPtr` sets every field, so empty lists,
empty strings and false/0 are sent too) and the header the provider adds
(`akeylessclienttype: terraform`). Every response field the provider reads
is asserted; a read after delete must be a 404 (the provider then drops
the resource), except for associations, which the provider reads through
`get-role` and drops when the ID is no longer listed.

The provider source in the index uses the legacy operation names
(`create-auth-method-*`, `get-auth-method`, `update-auth-method-*`,
`delete-auth-method`); newer releases call `auth-method-create-*`,
`auth-method-get`, `auth-method-update-*`, `auth-method-delete` with the
same bodies. Both sets run.

Known deviation: the provider's k8s resource verifies tokens through an
Akeyless gateway key pair (`public-key`, `gen-key`), which Coffer has no
counterpart for; Coffer verifies service-account tokens itself and needs
`k8s-host` (TokenReview) or a JWKS. The replay adds `k8s-host` and sends
the provider's `gen-key: "false"` and empty `public-key` unchanged.

The second half drives every new operation through the official Python
SDK (akeyless.V2Api).
"""

from __future__ import annotations

import uuid

import akeyless
import pytest
import requests
from akeyless.rest import ApiException

TF_HEADERS = {"akeylessclienttype": "terraform", "Content-Type": "application/json"}

LEGACY = {
    "get": "get-auth-method",
    "delete": "delete-auth-method",
}
CURRENT = {
    "get": "auth-method-get",
    "delete": "auth-method-delete",
}


class Tf:
    """Raw HTTP the way the provider's Go client sends it."""

    def __init__(self, server):
        self.url = server.url
        r = requests.post(
            f"{self.url}/auth",
            json={
                "access-id": server.admin.access_id,
                "access-key": server.admin.access_key,
                "access-type": "access_key",
            },
            headers=TF_HEADERS,
            timeout=30,
        )
        assert r.status_code == 200, r.text
        self.token = r.json()["token"]

    def call(self, op: str, body: dict) -> requests.Response:
        return requests.post(
            f"{self.url}/{op}", json={**body, "token": self.token}, headers=TF_HEADERS, timeout=30
        )

    def ok(self, op: str, body: dict) -> dict:
        r = self.call(op, body)
        assert r.status_code == 200, f"{op} {body} -> {r.status_code} {r.text}"
        return r.json()


@pytest.fixture
def tf(server) -> Tf:
    return Tf(server)


def common_fields(name: str, *, bound_ips: list[str], force: bool, access_expires: int = 0) -> dict:
    """The options every auth-method resource sends."""
    return {
        "name": name,
        "access-expires": access_expires,
        "bound-ips": bound_ips,
        "force-sub-claims": force,
    }


def assert_common_read(got: dict, access_id: str, *, bound_ips: list[str], force: bool):
    """What every auth-method resource's Read takes from `get-auth-method`."""
    assert got["auth_method_access_id"] == access_id
    info = got["access_info"]
    assert info["access_expires"] == 0
    assert info["force_sub_claims"] is force
    # The provider splits cidr_whitelist on "," when it is not empty.
    cidr = info["cidr_whitelist"]
    assert (cidr.split(",") if cidr else []) == bound_ips
    assert isinstance(info["jwt_ttl"], int)


# Each resource: the typed create/update operation suffix, its create and
# update bodies (type fields only), and a check of the access rules Read.
def api_key_case(_):
    return "", {}, {}, lambda info: None


def oauth2_case(_):
    create = {
        "jwks-uri": "http://127.0.0.1:9/jwks",
        "unique-identifier": "sub",
        "bound-client-ids": ["client-a"],
        "issuer": "https://issuer.example",
        "audience": "coffer",
    }
    update = {**create, "unique-identifier": "email", "bound-client-ids": ["client-b"], "audience": "other"}

    def read(info):
        r = info["oauth2_access_rules"]
        assert r["jwks_uri"] == "http://127.0.0.1:9/jwks"
        assert r["unique_identifier"] == "email"
        assert r["issuer"] == "https://issuer.example"
        assert r["audience"] == "other"
        assert r["bound_clients_id"] == ["client-b"]

    return "oauth2", create, update, read


def k8s_case(_):
    create = {
        "gen-key": "false",
        "public-key": "",
        "audience": "coffer",
        "bound-sa-names": ["deployer"],
        "bound-pod-names": [],
        "bound-namespaces": ["apps"],
        # Coffer's own verification setting (see the module docstring).
        "k8s-host": "https://127.0.0.1:6443",
    }
    update = {**create, "bound-sa-names": ["deployer", "runner"], "bound-namespaces": ["apps", "ci"]}

    def read(info):
        r = info["k8s_access_rules"]
        assert r["audience"] == "coffer"
        assert r["bound_namespaces"] == ["apps", "ci"]
        assert r["bound_service_account_names"] == ["deployer", "runner"]
        assert r["bound_pod_names"] == []

    return "k8s", create, update, read


def aws_iam_case(_):
    create = {
        "bound-aws-account-id": ["123456789012"],
        "sts-url": "https://sts.amazonaws.com",
        "bound-arn": [],
        "bound-role-name": ["builder"],
        "bound-role-id": [],
        "bound-resource-id": [],
        "bound-user-name": [],
        "bound-user-id": [],
    }
    update = {**create, "bound-aws-account-id": ["123456789012", "210987654321"], "bound-role-name": []}

    def read(info):
        r = info["aws_iam_access_rules"]
        assert r["account_id"] == ["123456789012", "210987654321"]
        assert r["role_name"] == []
        # Stored as a normalized URL.
        assert r["sts_endpoint"].rstrip("/") == "https://sts.amazonaws.com"

    return "aws-iam", create, update, read


def azure_ad_case(_):
    tenant = "11111111-2222-3333-4444-555555555555"
    create = {
        "bound-tenant-id": tenant,
        "issuer": f"https://sts.windows.net/{tenant}/",
        "jwks-uri": "https://login.microsoftonline.com/common/discovery/keys",
        "audience": "https://management.azure.com/",
        "bound-spid": [],
        "bound-group-id": [],
        "bound-sub-id": ["sub-1"],
        "bound-rg-id": [],
        "bound-providers": [],
        "bound-resource-types": [],
        "bound-resource-names": [],
        "bound-resource-id": [],
    }
    update = {**create, "bound-sub-id": ["sub-2"], "bound-rg-id": ["rg-1"]}

    def read(info):
        r = info["azure_ad_access_rules"]
        assert r["bound_tenant_id"] == tenant
        assert r["issuer"] == f"https://sts.windows.net/{tenant}/"
        assert r["jwks_uri"] == "https://login.microsoftonline.com/common/discovery/keys"
        assert r["ad_endpoint"] == "https://management.azure.com/"
        assert r["bound_subscription_ids"] == ["sub-2"]
        assert r["bound_resource_groups"] == ["rg-1"]
        assert r["bound_service_principal_ids"] == []

    return "azure-ad", create, update, read


def gcp_case(_):
    create = {
        "type": "iam",
        "audience": "coffer",
        "service-account-creds-data": "",
        "bound-projects": [],
        "bound-service-accounts": ["ci@proj.iam.gserviceaccount.com"],
        "bound-zones": [],
        "bound-regions": [],
        "bound-labels": [],
    }
    update = {
        **create,
        "bound-service-accounts": ["ci@proj.iam.gserviceaccount.com", "cd@proj.iam.gserviceaccount.com"],
    }

    def read(info):
        r = info["gcp_access_rules"]
        assert r["type"] == "iam"
        assert r["audience"] == "coffer"
        assert r["bound_service_accounts"] == [
            "ci@proj.iam.gserviceaccount.com",
            "cd@proj.iam.gserviceaccount.com",
        ]

    return "gcp", create, update, read


def universal_identity_case(_):
    create = {"deny-rotate": False, "deny-inheritance": False, "ttl": 60}
    update = {"deny-rotate": True, "deny-inheritance": True, "ttl": 120}

    def read(info):
        r = info["universal_identity_access_rules"]
        assert r["deny_rotate"] is True
        assert r["deny_inheritance"] is True
        assert r["ttl"] == 120

    return "universal-identity", create, update, read


CASES = {
    "api_key": api_key_case,
    "oauth2": oauth2_case,
    "k8s": k8s_case,
    "aws_iam": aws_iam_case,
    "azure_ad": azure_ad_case,
    "gcp": gcp_case,
    "universal_identity": universal_identity_case,
}


def op_names(kind: str, ops: dict) -> tuple[str, str]:
    """(create, update) operation names of a resource in one naming set."""
    if ops is LEGACY:
        if kind == "":
            return "create-auth-method", "update-auth-method"
        return f"create-auth-method-{kind}", f"update-auth-method-{kind}"
    kind = kind or "api-key"
    return f"auth-method-create-{kind}", f"auth-method-update-{kind}"


@pytest.mark.parametrize("ops", [LEGACY, CURRENT], ids=["legacy-ops", "current-ops"])
@pytest.mark.parametrize("resource", list(CASES))
def test_terraform_auth_method_resource(tf, resource, ops):
    kind, create_fields, update_fields, read_rules = CASES[resource](None)
    create_op, update_op = op_names(kind, ops)
    name = f"/tf/{resource}-{uuid.uuid4().hex[:6]}"
    force = resource != "api_key"

    # Create: the provider keeps access_id (and access_key for API keys).
    out = tf.ok(create_op, {**common_fields(name, bound_ips=[], force=force), **create_fields})
    access_id = out["access_id"]
    assert access_id.startswith("p-")
    if resource == "api_key":
        assert out["access_key"]

    # Read.
    got = tf.ok(ops["get"], {"name": name})
    assert_common_read(got, access_id, bound_ips=[], force=force)

    # Update: the full desired state, new-name = name (no rename).
    body = {
        **common_fields(name, bound_ips=["10.0.0.0/8", "192.168.0.0/16"], force=not force),
        **update_fields,
        "new-name": name,
    }
    if resource in ("api_key", "azure_ad"):
        body["jwt-ttl"] = 30
    tf.ok(update_op, body)

    # Read again: the update took effect; the access ID never changes.
    got = tf.ok(ops["get"], {"name": name})
    assert_common_read(got, access_id, bound_ips=["10.0.0.0/8", "192.168.0.0/16"], force=not force)
    if resource in ("api_key", "azure_ad"):
        assert got["access_info"]["jwt_ttl"] == 30
    read_rules(got["access_info"])

    # Delete, then the read the provider treats as "gone" is a 404.
    out = tf.ok(ops["delete"], {"name": name})
    assert out["name"] == name
    r = tf.call(ops["get"], {"name": name})
    assert r.status_code == 404, r.text
    assert r.json()["error"]


def test_terraform_role_resource(tf):
    name = f"/tf/role-{uuid.uuid4().hex[:6]}"
    am = f"/tf/role-am-{uuid.uuid4().hex[:6]}"
    tf.ok("create-auth-method", {"name": am, "access-expires": 0, "bound-ips": [], "force-sub-claims": False})

    # Create: create-role, then (CreateContext) the provider reads the role
    # for restricted rules, associates its auth methods and sets its rules.
    out = tf.ok("create-role", {"name": name, "comment": "", "audit-access": "own", "analytics-access": ""})
    assert out.get("name") == name
    role = tf.ok("get-role", {"name": name})
    assert role["rules"]["path_rules"] == []
    tf.ok("assoc-role-am", {"role-name": name, "am-name": am, "sub-claims": {"team": "a,b"}, "case-sensitive": "true"})
    tf.ok(
        "set-role-rule",
        {"role-name": name, "capability": ["read", "list"], "path": "/tf/app/*", "rule-type": "item-rule"},
    )

    # Read: path rules and the associations, as the provider reads them.
    role = tf.ok("get-role", {"name": name})
    rule = role["rules"]["path_rules"][0]
    assert (rule["path"], rule["type"], sorted(rule["capabilities"])) == ("/tf/app/*", "item-rule", ["list", "read"])
    assoc = role["role_auth_methods_assoc"][0]
    assoc_id = assoc["assoc_id"]
    assert assoc["auth_method_name"] == am
    assert assoc["auth_method_access_id"].startswith("p-")
    assert assoc["auth_method_sub_claims"] == {"team": ["a", "b"]}
    assert assoc["sub_claims_case_sensitive"] is True

    # The same association again (a re-apply): 409, which the provider
    # tolerates; nothing is added.
    r = tf.call("assoc-role-am", {"role-name": name, "am-name": am, "sub-claims": {"team": "a,b"}, "case-sensitive": "true"})
    assert r.status_code == 409, r.text
    assert assoc_id in r.json()["error"]

    # Update: changed sub-claims go through update-assoc, a replaced rule
    # through delete-role-rule + set-role-rule, then update-role with every
    # access field ("none" for those not set).
    assert tf.ok("update-assoc", {"assoc-id": assoc_id, "sub-claims": {"team": "c"}, "case-sensitive": "false"}) == {}
    tf.ok("delete-role-rule", {"role-name": name, "path": "/tf/app/*", "rule-type": "item-rule"})
    tf.ok("set-role-rule", {"role-name": name, "capability": ["read"], "path": "/tf/other/*", "rule-type": "item-rule"})
    out = tf.ok(
        "update-role",
        {
            "name": name,
            "audit-access": "all",
            "analytics-access": "none",
            "gw-analytics-access": "none",
            "sra-reports-access": "none",
        },
    )
    assert out == {"updated": True}

    role = tf.ok("get-role", {"name": name})
    assert [r["path"] for r in role["rules"]["path_rules"]] == ["/tf/other/*"]
    assert role["audit_access"] == "all"
    assoc = role["role_auth_methods_assoc"][0]
    assert assoc["assoc_id"] == assoc_id
    assert assoc["auth_method_sub_claims"] == {"team": ["c"]}
    assert assoc["sub_claims_case_sensitive"] is False

    # An access field Coffer does not implement is refused, not ignored.
    r = tf.call("update-role", {"name": name, "analytics-access": "all"})
    assert r.status_code == 400 and "analytics-access" in r.json()["error"], r.text

    tf.ok("delete-role", {"name": name})
    r = tf.call("get-role", {"name": name})
    assert r.status_code == 404, r.text
    tf.ok("delete-auth-method", {"name": am})


def test_terraform_associate_role_auth_method_resource(tf):
    role = f"/tf/assoc-role-{uuid.uuid4().hex[:6]}"
    am = f"/tf/assoc-am-{uuid.uuid4().hex[:6]}"
    tf.ok("create-role", {"name": role, "comment": ""})
    tf.ok("create-auth-method", {"name": am, "access-expires": 0, "bound-ips": [], "force-sub-claims": False})

    # Create: the provider keeps the returned assoc_id as the resource ID.
    out = tf.ok("assoc-role-am", {"role-name": role, "am-name": am, "sub-claims": {"env": "prod"}, "case-sensitive": "true"})
    assoc_id = out["assoc_id"]
    assert assoc_id

    def read():
        got = tf.ok("get-role", {"name": role})
        assert got["role_name"] == role
        return next((a for a in got["role_auth_methods_assoc"] if a["assoc_id"] == assoc_id), None)

    a = read()
    assert a["auth_method_name"] == am
    assert a["auth_method_sub_claims"] == {"env": ["prod"]}
    assert a["sub_claims_case_sensitive"] is True

    # Update: sub_claims and case_sensitive through update-assoc.
    assert tf.ok("update-assoc", {"assoc-id": assoc_id, "sub-claims": {"env": "prod,stage", "team": "a"}, "case-sensitive": "false"}) == {}
    a = read()
    assert a["auth_method_name"] == am
    assert a["auth_method_sub_claims"] == {"env": ["prod", "stage"], "team": ["a"]}
    assert a["sub_claims_case_sensitive"] is False

    # Delete (DeleteRoleAssociation = delete-assoc): the read no longer
    # finds the ID (the provider drops the resource); deleting again is 404.
    assert tf.ok("delete-assoc", {"assoc-id": assoc_id}) == {}
    assert read() is None
    r = tf.call("delete-assoc", {"assoc-id": assoc_id})
    assert r.status_code == 404, r.text
    r = tf.call("update-assoc", {"assoc-id": assoc_id, "sub-claims": {"env": "x"}})
    assert r.status_code == 404, r.text


# ---- the official Python SDK: every new operation ----


@pytest.fixture
def sdk(server):
    api = akeyless.V2Api(akeyless.ApiClient(akeyless.Configuration(host=server.url)))
    out = api.auth(
        akeyless.Auth(access_id=server.admin.access_id, access_key=server.admin.access_key, access_type="access_key")
    )
    return api, out.token


def test_sdk_auth_method_updates_and_aliases(sdk):
    api, token = sdk
    name = f"/sdk/am-{uuid.uuid4().hex[:6]}"
    created = api.auth_method_create_api_key(akeyless.AuthMethodCreateApiKey(name=name, token=token))
    access_id, old_key = created.access_id, created.access_key

    # auth-method-update-api-key: the SDK sends access-expires 0 and
    # jwt-ttl 0 (its defaults) with what is set.
    out = api.auth_method_update_api_key(
        akeyless.AuthMethodUpdateApiKey(name=name, description="sdk", bound_ips=["127.0.0.1"], token=token)
    )
    assert isinstance(out, akeyless.AuthMethodUpdateOutput) and out.name == name
    got = api.auth_method_get(akeyless.AuthMethodGet(name=name, token=token))
    assert got.auth_method_access_id == access_id
    assert got.description == "sdk"
    assert got.access_info.cidr_whitelist == "127.0.0.1"

    # Legacy update-auth-method with a rename.
    renamed = name + "-r"
    out = api.update_auth_method(akeyless.UpdateAuthMethod(name=name, new_name=renamed, bound_ips=[], token=token))
    assert isinstance(out, akeyless.UpdateAuthMethodOutput) and out.name == renamed
    listed = api.auth_method_list(akeyless.AuthMethodList(token=token))
    names = [m.auth_method_name for m in listed.auth_methods]
    assert renamed in names and name not in names

    # reset-access-key: the new key works, the old one is refused.
    reset = api.reset_access_key(akeyless.ResetAccessKey(name=renamed, token=token))
    assert isinstance(reset, akeyless.ResetAuthMethodAccessKeyOutput)
    assert reset.access_key and reset.access_key != old_key
    with pytest.raises(ApiException) as e:
        api.auth(akeyless.Auth(access_id=access_id, access_key=old_key, access_type="access_key"))
    assert e.value.status == 401
    mine = api.auth(akeyless.Auth(access_id=access_id, access_key=reset.access_key, access_type="access_key"))
    assert mine.token

    # revoke-creds ends the caller's own token. The SDK's revoke_creds
    # sends no body (so no token): the server says what is missing.
    with pytest.raises(ApiException) as e:
        api.revoke_creds()
    assert e.value.status == 401 and "missing token" in e.value.body
    r = requests.post(f"{api.api_client.configuration.host}/revoke-creds", json={"token": mine.token}, timeout=30)
    assert r.status_code == 200, r.text
    with pytest.raises(ApiException) as e:
        api.list_items(akeyless.ListItems(token=mine.token))
    assert e.value.status == 401

    # Unsupported options are refused with a message.
    with pytest.raises(ApiException) as e:
        api.auth_method_update_api_key(
            akeyless.AuthMethodUpdateApiKey(name=renamed, gw_bound_ips=["10.0.0.0/8"], token=token)
        )
    assert e.value.status == 400 and "gw-bound-ips" in e.value.body

    deleted = api.auth_method_delete(akeyless.AuthMethodDelete(name=renamed, token=token))
    assert isinstance(deleted, akeyless.AuthMethodDeleteOutput) and deleted.name == renamed
    with pytest.raises(ApiException) as e:
        api.auth_method_get(akeyless.AuthMethodGet(name=renamed, token=token))
    assert e.value.status == 404


def test_sdk_typed_auth_method_update(sdk):
    api, token = sdk
    name = f"/sdk/uid-{uuid.uuid4().hex[:6]}"
    api.auth_method_create_universal_identity(akeyless.AuthMethodCreateUniversalIdentity(name=name, token=token))
    out = api.auth_method_update_universal_identity(
        akeyless.AuthMethodUpdateUniversalIdentity(name=name, ttl=120, deny_rotate=True, token=token)
    )
    assert out.name == name
    got = api.auth_method_get(akeyless.AuthMethodGet(name=name, token=token))
    rules = got.access_info.universal_identity_access_rules
    assert rules.ttl == 120 and rules.deny_rotate is True
    # The wrong type's operation is refused, naming the right one.
    with pytest.raises(ApiException) as e:
        api.auth_method_update_gcp(akeyless.AuthMethodUpdateGcp(name=name, type="iam", audience="x", token=token))
    assert e.value.status == 400 and "auth-method-update-universal-identity" in e.value.body


def test_sdk_update_role_and_assoc(sdk):
    api, token = sdk
    role = f"/sdk/role-{uuid.uuid4().hex[:6]}"
    am = f"/sdk/role-am-{uuid.uuid4().hex[:6]}"
    api.create_role(akeyless.CreateRole(name=role, description="first", token=token))
    api.auth_method_create_api_key(akeyless.AuthMethodCreateApiKey(name=am, token=token))
    assoc = api.assoc_role_auth_method(
        akeyless.AssocRoleAuthMethod(role_name=role, am_name=am, sub_claims={"team": "a"}, token=token)
    )
    assert assoc.assoc_id

    # The SDK's default description ("default_comment") keeps it.
    out = api.update_role(akeyless.UpdateRole(name=role, audit_access="own", token=token))
    assert isinstance(out, akeyless.UpdateRoleOutput) and out.updated is True
    got = api.get_role(akeyless.GetRole(name=role, token=token))
    assert got.comment == "first"
    # The SDK's Role model has no audit_access field: read it raw.
    raw = requests.post(
        f"{api.api_client.configuration.host}/get-role", json={"name": role, "token": token}, timeout=30
    ).json()
    assert raw["audit_access"] == "own"

    renamed = role + "-r"
    api.update_role(akeyless.UpdateRole(name=role, new_name=renamed, description="second", token=token))
    got = api.get_role(akeyless.GetRole(name=renamed, token=token))
    assert got.comment == "second"
    assert got.role_auth_methods_assoc[0].assoc_id == assoc.assoc_id

    with pytest.raises(ApiException) as e:
        api.update_role(akeyless.UpdateRole(name=renamed, isi_access="maybe", token=token))
    assert e.value.status == 400 and "none, scoped, all" in e.value.body

    # update-assoc: sub-claims as the SDK sends them; case-sensitive 'true' default.
    api.update_assoc(akeyless.UpdateAssoc(assoc_id=assoc.assoc_id, sub_claims={"team": "b,c"}, token=token))
    got = api.get_role(akeyless.GetRole(name=renamed, token=token))
    a = got.role_auth_methods_assoc[0]
    assert a.auth_method_sub_claims == {"team": ["b", "c"]}
    assert a.sub_claims_case_sensitive is True

    # A duplicate association is a 409 naming the existing one.
    with pytest.raises(ApiException) as e:
        api.assoc_role_auth_method(
            akeyless.AssocRoleAuthMethod(role_name=renamed, am_name=am, sub_claims={"team": "b,c"}, token=token)
        )
    assert e.value.status == 409 and assoc.assoc_id in e.value.body


# Each typed update through the SDK's own models (which serialise their
# defaults: azure_ad's issuer with the ---bound_tenant_id--- placeholder,
# its audience and JWKS URL, gcp's audience, aws_iam's sts-url, ...). The
# SDK's k8s models have no field for Coffer's k8s-host or a JWKS, so k8s
# runs through the raw replay above only.
SDK_TYPED = {
    "oauth2": (
        "auth_method_create_oauth2",
        akeyless.AuthMethodCreateOauth2,
        {"jwks_uri": "http://127.0.0.1:9/jwks", "unique_identifier": "sub", "audience": "coffer"},
        "auth_method_update_oauth2",
        akeyless.AuthMethodUpdateOauth2,
        {"jwks_uri": "http://127.0.0.1:9/jwks", "unique_identifier": "email", "audience": "other"},
        lambda r: r.oauth2_access_rules.unique_identifier == "email" and r.oauth2_access_rules.audience == "other",
    ),
    "aws_iam": (
        "auth_method_create_aws_iam",
        akeyless.AuthMethodCreateAwsIam,
        {"bound_aws_account_id": ["123456789012"]},
        "auth_method_update_aws_iam",
        akeyless.AuthMethodUpdateAwsIam,
        {"bound_aws_account_id": ["210987654321"]},
        lambda r: r.aws_iam_access_rules.account_id == ["210987654321"],
    ),
    "azure_ad": (
        "auth_method_create_azure_ad",
        akeyless.AuthMethodCreateAzureAD,
        {"bound_tenant_id": "tenant-1"},
        "auth_method_update_azure_ad",
        akeyless.AuthMethodUpdateAzureAD,
        {"bound_tenant_id": "tenant-2"},
        lambda r: r.azure_ad_access_rules.bound_tenant_id == "tenant-2"
        and r.azure_ad_access_rules.issuer == "https://sts.windows.net/tenant-2",
    ),
    "gcp": (
        "auth_method_create_gcp",
        akeyless.AuthMethodCreateGcp,
        {"type": "iam", "audience": "coffer", "bound_service_accounts": ["a@p.iam.gserviceaccount.com"]},
        "auth_method_update_gcp",
        akeyless.AuthMethodUpdateGcp,
        {"type": "iam", "audience": "coffer", "bound_service_accounts": ["b@p.iam.gserviceaccount.com"]},
        lambda r: r.gcp_access_rules.bound_service_accounts == ["b@p.iam.gserviceaccount.com"],
    ),
}


@pytest.mark.parametrize("kind", list(SDK_TYPED))
def test_sdk_typed_updates(sdk, kind):
    api, token = sdk
    create_fn, create_model, create_args, update_fn, update_model, update_args, check = SDK_TYPED[kind]
    name = f"/sdk/{kind}-{uuid.uuid4().hex[:6]}"
    created = getattr(api, create_fn)(create_model(name=name, token=token, **create_args))
    out = getattr(api, update_fn)(update_model(name=name, new_name=name + "-r", token=token, **update_args))
    assert out.name == name + "-r"
    got = api.auth_method_get(akeyless.AuthMethodGet(name=name + "-r", token=token))
    assert got.auth_method_access_id == created.access_id
    assert check(got.access_info), got.access_info
