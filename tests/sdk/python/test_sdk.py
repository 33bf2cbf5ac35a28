"""Compatibility of the official PyPI `akeyless` SDK (pinned in
tests/requirements.txt) with a real Coffer server.

Everything goes through the SDK's own model classes and V2Api methods,
exactly as a user would write it; only the host URL points at Coffer.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import uuid

import akeyless
import pytest
from akeyless.rest import ApiException

from cofferlib import MysqlTestDb

# The three ways a gateway URL is written (wire contract §1.1).
BASES = ["", "/api/v2", "/v2"]


def make_api(url: str) -> akeyless.V2Api:
    return akeyless.V2Api(akeyless.ApiClient(akeyless.Configuration(host=url)))


def login(api: akeyless.V2Api, access_id: str, access_key: str) -> str:
    out = api.auth(akeyless.Auth(access_id=access_id, access_key=access_key, access_type="access_key"))
    assert isinstance(out, akeyless.AuthOutput)
    assert out.token and out.token.startswith("t-")
    assert out.expiration, "auth must return a non-empty expiration (DAPR fails on an empty one)"
    assert out.creds is not None and out.creds.access_id == access_id
    return out.token


def status_of(excinfo) -> int:
    return excinfo.value.status


@pytest.fixture(params=BASES, ids=["root", "api-v2", "v2"])
def base(request) -> str:
    return request.param


@pytest.fixture
def api(server, base) -> akeyless.V2Api:
    return make_api(server.url + base)


@pytest.fixture
def token(server, api) -> str:
    return login(api, server.admin.access_id, server.admin.access_key)


def test_bootstrap_access_id_format(server):
    # p- + 12 alphanumerics, second-to-last character 'a' = API key (§1.3).
    assert re.fullmatch(r"p-[A-Za-z0-9]{12}", server.admin.access_id)
    assert server.admin.access_id[-2] == "a"


def test_static_secret_lifecycle(api, token):
    prefix = f"/app/{uuid.uuid4().hex[:8]}"
    pw, user, cfg = f"{prefix}/db/password", f"{prefix}/db/user", f"{prefix}/config"

    out = api.create_secret(akeyless.CreateSecret(name=pw, value="pw-v1", description="db password",
                                                  tags=["team-a", "db"], token=token))
    assert out.name == pw
    api.create_secret(akeyless.CreateSecret(name=user, value="app_user", token=token))
    api.create_secret(akeyless.CreateSecret(name=cfg, value=json.dumps({"host": "db", "port": "5432"}),
                                            format="json", token=token))

    # Two more versions of the password.
    assert api.update_secret_val(akeyless.UpdateSecretVal(name=pw, value="pw-v2", token=token)).name == pw
    api.update_secret_val(akeyless.UpdateSecretVal(name=pw, value="pw-v3", token=token))

    # The SDK sends format="text" with every update (its model default): a
    # JSON secret updates as JSON, and a value that is not JSON is refused.
    api.update_secret_val(akeyless.UpdateSecretVal(name=cfg, value=json.dumps({"host": "db", "port": "5432"}),
                                                   token=token))
    with pytest.raises(ApiException) as e:
        api.update_secret_val(akeyless.UpdateSecretVal(name=cfg, value="not json", token=token))
    assert e.value.status == 400

    # Several names in one call; the JSON secret comes back as its JSON text.
    got = api.get_secret_value(akeyless.GetSecretValue(names=[pw, user, cfg], token=token))
    assert set(got) == {pw, user, cfg}
    assert got[pw] == "pw-v3" and got[user] == "app_user"
    assert json.loads(got[cfg]) == {"host": "db", "port": "5432"}

    # Explicit versions.
    for version, expected in [(1, "pw-v1"), (2, "pw-v2"), (3, "pw-v3")]:
        got = api.get_secret_value(akeyless.GetSecretValue(names=[pw], version=version, token=token))
        assert got[pw] == expected, f"version {version} of {pw}"

    # describe-item: types and dates the SDK deserialises.
    item = api.describe_item(akeyless.DescribeItem(name=pw, show_versions=True, token=token))
    assert isinstance(item, akeyless.Item)
    assert item.item_name == pw
    assert item.item_type == "STATIC_SECRET"
    assert item.last_version == 3
    assert item.is_enabled is True
    assert isinstance(item.creation_date, dt.datetime)
    assert isinstance(item.modification_date, dt.datetime)
    assert item.modification_date >= item.creation_date
    assert sorted(item.item_tags or []) == ["db", "team-a"]
    assert sorted(v.version for v in item.item_versions) == [1, 2, 3]
    assert all(isinstance(v.creation_date, dt.datetime) for v in item.item_versions)

    # list-items: the three items under the prefix, and the db folder.
    listing = api.list_items(akeyless.ListItems(path=prefix, token=token))
    assert isinstance(listing, akeyless.ListItemsInPathOutput)
    names = sorted(i.item_name for i in listing.items or [])
    assert names == sorted([pw, user, cfg])
    assert all(i.item_type == "STATIC_SECRET" for i in listing.items)
    only_here = api.list_items(akeyless.ListItems(path=prefix, current_folder=True, token=token))
    assert [i.item_name for i in only_here.items or []] == [cfg]
    assert f"{prefix}/db" in (only_here.folders or [])
    filtered = api.list_items(akeyless.ListItems(path=prefix, filter="pass", token=token))
    assert [i.item_name for i in filtered.items or []] == [pw]

    # Delete one version, then the whole item.
    deleted = api.delete_item(akeyless.DeleteItem(name=pw, version=1, token=token))
    assert deleted.item_name == pw and deleted.version_deleted == 1
    with pytest.raises(ApiException) as e:
        api.get_secret_value(akeyless.GetSecretValue(names=[pw], version=1, token=token))
    assert status_of(e) == 404
    assert api.get_secret_value(akeyless.GetSecretValue(names=[pw], token=token))[pw] == "pw-v3"
    assert api.get_secret_value(akeyless.GetSecretValue(names=[pw], version=2, token=token))[pw] == "pw-v2"

    # SDK defaults: version=-1 (whole item), delete-in-days 7: pending deletion.
    out = api.delete_item(akeyless.DeleteItem(name=pw, token=token))
    assert isinstance(out.deletion_date, dt.datetime)
    with pytest.raises(ApiException) as e:
        api.get_secret_value(akeyless.GetSecretValue(names=[pw], token=token))
    assert status_of(e) == 404
    item = api.describe_item(akeyless.DescribeItem(name=pw, token=token))
    assert item.item_state == "PendingDeletion" and item.deletion_date == out.deletion_date
    remaining = api.list_items(akeyless.ListItems(path=prefix, token=token))
    assert sorted(i.item_name for i in remaining.items or []) == sorted([user, cfg])

    # The JSON secret gets a new version through the SDK too.
    api.update_secret_val(akeyless.UpdateSecretVal(name=cfg, value=json.dumps({"host": "db2"}),
                                                   format="json", token=token))
    got = api.get_secret_value(akeyless.GetSecretValue(names=[cfg], token=token))
    assert json.loads(got[cfg]) == {"host": "db2"}


def test_create_existing_name_conflicts(api, token):
    name = f"/app/{uuid.uuid4().hex[:8]}/dup"
    api.create_secret(akeyless.CreateSecret(name=name, value="one", token=token))
    with pytest.raises(ApiException) as e:
        api.create_secret(akeyless.CreateSecret(name=name, value="two", token=token))
    assert status_of(e) == 409
    assert api.get_secret_value(akeyless.GetSecretValue(names=[name], token=token))[name] == "one"


def test_api_key_auth_method_role_and_rbac(server, api, token):
    tag = uuid.uuid4().hex[:8]
    allowed, forbidden = f"/app/{tag}/token", f"/other/{tag}/token"
    for name in (allowed, forbidden):
        api.create_secret(akeyless.CreateSecret(name=name, value=f"value-of-{name}", token=token))

    am = api.create_auth_method(akeyless.CreateAuthMethod(name=f"/ci/{tag}", token=token))
    assert isinstance(am, akeyless.CreateAuthMethodOutput)
    assert re.fullmatch(r"p-[A-Za-z0-9]{12}", am.access_id) and am.access_id[-2] == "a"
    assert am.access_key
    role = f"/roles/{tag}"
    api.create_role(akeyless.CreateRole(name=role, token=token))
    api.set_role_rule(akeyless.SetRoleRule(role_name=role, path="/app/*", capability=["read", "list"],
                                           token=token))
    assoc = api.assoc_role_auth_method(akeyless.AssocRoleAuthMethod(role_name=role, am_name=f"/ci/{tag}",
                                                                    token=token))
    assert assoc.assoc_id

    ci_token = login(api, am.access_id, am.access_key)
    assert ci_token != token

    got = api.get_secret_value(akeyless.GetSecretValue(names=[allowed], token=ci_token))
    assert got[allowed] == f"value-of-{allowed}"

    # Read outside the granted path: 403, also when mixed with an allowed name.
    for names in ([forbidden], [allowed, forbidden]):
        with pytest.raises(ApiException) as e:
            api.get_secret_value(akeyless.GetSecretValue(names=names, token=ci_token))
        assert status_of(e) == 403, names
    # No create capability.
    with pytest.raises(ApiException) as e:
        api.create_secret(akeyless.CreateSecret(name=f"/app/{tag}/new", value="x", token=ci_token))
    assert status_of(e) == 403
    # Listing shows only what the role may list.
    listing = api.list_items(akeyless.ListItems(path="/", token=ci_token))
    names = {i.item_name for i in listing.items or []}
    assert allowed in names and forbidden not in names

    # validate-token for a real token and a made-up one.
    ok = api.validate_token(akeyless.ValidateToken(token=ci_token))
    assert ok.is_valid is True and ok.ttl > 0
    bad = api.validate_token(akeyless.ValidateToken(token="t-" + "0" * 32))
    assert bad.is_valid is False and bad.reason


def test_bad_credentials_and_tokens(server, api):
    bogus = "t-" + uuid.uuid4().hex
    with pytest.raises(ApiException) as e:
        api.get_secret_value(akeyless.GetSecretValue(names=["/app/anything"], token=bogus))
    assert status_of(e) == 401
    with pytest.raises(ApiException) as e:
        api.list_items(akeyless.ListItems(path="/"))  # no token at all
    assert status_of(e) == 401
    with pytest.raises(ApiException) as e:
        api.auth(akeyless.Auth(access_id=server.admin.access_id, access_key="wrong-key"))
    assert status_of(e) == 401
    # The error body is the documented {"error": "..."} shape.
    assert "error" in json.loads(e.value.body)


def mint(issuer, ref: str, **extra) -> str:
    return issuer.mint("coffer", project_path="group/app", ref=ref, **extra)


def test_jwt_login_with_sub_claims(server, api, token, dev_oidc):
    """A CI job logs in with the SDK's access_type="jwt" and a GitLab-shaped
    ID token; role-association sub-claims decide what it may read."""
    tag = uuid.uuid4().hex[:8]
    am_name = f"/ci/gitlab-{tag}"
    am = api.create_auth_method_o_auth2(akeyless.CreateAuthMethodOAuth2(
        name=am_name, jwks_uri=f"{dev_oidc.url}/oauth/discovery/keys", unique_identifier="user_login",
        issuer=dev_oidc.url, audience="coffer", token=token))
    assert am.access_id and am.access_id[-2] == "o"
    role = f"/roles/app-main-{tag}"
    api.create_role(akeyless.CreateRole(name=role, token=token))
    api.set_role_rule(akeyless.SetRoleRule(role_name=role, path=f"/app/{tag}/*", capability=["read"], token=token))
    # force-sub-claims is on by default for JWT methods.
    with pytest.raises(ApiException) as e:
        api.assoc_role_auth_method(akeyless.AssocRoleAuthMethod(role_name=role, am_name=am_name, token=token))
    assert status_of(e) == 400
    api.assoc_role_auth_method(akeyless.AssocRoleAuthMethod(
        role_name=role, am_name=am_name, sub_claims={"project_path": "group/app", "ref": "main"}, token=token))
    secret = f"/app/{tag}/db"
    api.create_secret(akeyless.CreateSecret(name=secret, value="jwt-read-ok", token=token))

    out = api.auth(akeyless.Auth(access_id=am.access_id, access_type="jwt", jwt=mint(dev_oidc, "main")))
    assert out.token.startswith("t-") and out.expiration
    assert out.creds.sub_claims["ref"] == ["main"]
    assert api.get_secret_value(akeyless.GetSecretValue(names=[secret], token=out.token))[secret] == "jwt-read-ok"

    # ref=feature logs in but matches no association: the read is refused.
    feature = api.auth(akeyless.Auth(access_id=am.access_id, access_type="jwt", jwt=mint(dev_oidc, "feature")))
    with pytest.raises(ApiException) as e:
        api.get_secret_value(akeyless.GetSecretValue(names=[secret], token=feature.token))
    assert status_of(e) == 403
    # access_type "oidc" is the same login.
    assert api.auth(akeyless.Auth(access_id=am.access_id, access_type="oidc", jwt=mint(dev_oidc, "main"))).token
    # A token signed by someone else is refused with 401 and the failed check.
    forged = mint(dev_oidc, "main")
    head, payload, sig = forged.split(".")
    with pytest.raises(ApiException) as e:
        api.auth(akeyless.Auth(access_id=am.access_id, access_type="jwt", jwt=f"{head}.{payload}.{sig[::-1]}"))
    assert status_of(e) == 401 and "signature check" in e.value.body


def test_uid_generate_login_rotate_revoke(server, api, token):
    tag = uuid.uuid4().hex[:8]
    name, secret = f"/uid/{tag}", f"/uid-app/{tag}/db"
    api.create_secret(akeyless.CreateSecret(name=secret, value="uid-value", token=token))
    out = api.create_auth_method_universal_identity(
        akeyless.CreateAuthMethodUniversalIdentity(name=name, ttl=30, token=token))
    assert isinstance(out, akeyless.CreateAuthMethodUniversalIdentityOutput)
    assert re.fullmatch(r"p-[A-Za-z0-9]{12}", out.access_id) and out.access_id[-2] == "u"
    role = f"/roles/uid-{tag}"
    api.create_role(akeyless.CreateRole(name=role, token=token))
    api.set_role_rule(akeyless.SetRoleRule(role_name=role, path=f"/uid-app/{tag}/*", capability=["read"],
                                           token=token))
    api.assoc_role_auth_method(akeyless.AssocRoleAuthMethod(role_name=role, am_name=name, token=token))

    # An admin makes the root token.
    gen = api.uid_generate_token(akeyless.UidGenerateToken(auth_method_name=name, token=token))
    assert isinstance(gen, akeyless.UidGenerateTokenOutput)
    uid = gen.token
    assert uid and uid.startswith("u-")

    # The machine logs in with it...
    auth = api.auth(akeyless.Auth(access_id=out.access_id, access_type="universal_identity", uid_token=uid))
    assert auth.token.startswith("t-") and auth.expiration
    got = api.get_secret_value(akeyless.GetSecretValue(names=[secret], token=auth.token))
    assert got[secret] == "uid-value"
    # ... or uses the UID token directly.
    got = api.get_secret_value(akeyless.GetSecretValue(names=[secret], uid_token=uid))
    assert got[secret] == "uid-value"

    # Rotation: a new secret; the old one is dead at once.
    rotated = api.uid_rotate_token(akeyless.UidRotateToken(uid_token=uid))
    assert isinstance(rotated, akeyless.UidRotateTokenOutput)
    assert rotated.token and rotated.token.startswith("u-") and rotated.token != uid
    with pytest.raises(ApiException) as e:
        api.auth(akeyless.Auth(access_id=out.access_id, access_type="universal_identity", uid_token=uid))
    assert status_of(e) == 401
    auth = api.auth(akeyless.Auth(access_id=out.access_id, access_type="universal_identity",
                                  uid_token=rotated.token))
    assert api.get_secret_value(akeyless.GetSecretValue(names=[secret], token=auth.token))[secret] == "uid-value"

    # The tree through the SDK's models; a child, then revokeAll by the admin.
    child = api.uid_create_child_token(akeyless.UidCreateChildToken(uid_token=rotated.token, child_ttl=10,
                                                                    comment="agent"))
    assert child.token.startswith("u-")
    tree = api.uid_list_children(akeyless.UidListChildren(uid_token=rotated.token))
    assert isinstance(tree, akeyless.UniversalIdentityDetails)
    assert tree.number_of_tokens == 2
    (kid,) = tree.root.children.values()
    assert kid.ttl == 10 and kid.comment == "agent" and kid.depth == 2 and not kid.revoked
    api.uid_revoke_token(akeyless.UidRevokeToken(revoke_token=tree.root.id, revoke_type="revokeAll",
                                                 auth_method_name=name, token=token))
    for dead in (rotated.token, child.token):
        with pytest.raises(ApiException) as e:
            api.get_secret_value(akeyless.GetSecretValue(names=[secret], uid_token=dead))
        assert status_of(e) == 401
    with pytest.raises(ApiException) as e:
        api.get_secret_value(akeyless.GetSecretValue(names=[secret], token=auth.token))
    assert status_of(e) == 401


def test_deleted_version_numbers_are_not_reused(api, token):
    """A client pinned to a version number never gets another value."""
    name = f"/versions/{uuid.uuid4().hex[:8]}"
    api.create_secret(akeyless.CreateSecret(name=name, value="v1", token=token))
    api.update_secret_val(akeyless.UpdateSecretVal(name=name, value="v2", token=token))
    api.delete_item(akeyless.DeleteItem(name=name, version=2, token=token))
    api.update_secret_val(akeyless.UpdateSecretVal(name=name, value="v3", token=token))
    with pytest.raises(ApiException) as e:
        api.get_secret_value(akeyless.GetSecretValue(names=[name], version=2, token=token))
    assert status_of(e) == 404
    assert api.get_secret_value(akeyless.GetSecretValue(names=[name], version=3, token=token))[name] == "v3"
    item = api.describe_item(akeyless.DescribeItem(name=name, token=token))
    assert item.last_version == 3
    assert [v.version for v in item.item_versions] == [1, 3]


def test_password_secret_through_the_sdk(api, token):
    """type=password keeps username and password (the SDK also sends format="text")."""
    name = f"/pw/{uuid.uuid4().hex[:8]}"
    # The SDK insists on a value even for password secrets: an empty one.
    api.create_secret(akeyless.CreateSecret(name=name, value="", type="password", username="app",
                                            password="s3cret", custom_field={"pin": "42"}, token=token))
    value = api.get_secret_value(akeyless.GetSecretValue(names=[name], token=token))[name]
    entry = json.loads(value)
    assert entry["username"] == "app" and entry["password"] == "s3cret" and entry["custom_field"] == {"pin": "42"}
    item = api.describe_item(akeyless.DescribeItem(name=name, token=token))
    assert item.item_sub_type == "password"
    api.update_secret_val(akeyless.UpdateSecretVal(name=name, value="", password="n3w", token=token))
    entry = json.loads(api.get_secret_value(akeyless.GetSecretValue(names=[name], token=token))[name])
    assert (entry["username"], entry["password"]) == ("app", "n3w")


def test_list_filters_through_the_sdk(api, token):
    """list-items tag/sub-types/modified-after/type and list-auth-methods
    type/filter narrow the answer; an unknown filter value is refused."""
    base = f"/filters/{uuid.uuid4().hex[:8]}"
    api.create_secret(akeyless.CreateSecret(name=f"{base}/plain", value="v", token=token))
    api.create_secret(akeyless.CreateSecret(name=f"{base}/tagged", value="v", tags=["team=infra"], token=token))
    api.create_secret(akeyless.CreateSecret(name=f"{base}/pw", value="", type="password", password="p",
                                            token=token))

    def names(**kw):
        out = api.list_items(akeyless.ListItems(path=base, token=token, **kw))
        return sorted(i.item_name for i in (out.items or []))

    assert names() == sorted([f"{base}/plain", f"{base}/tagged", f"{base}/pw"])
    assert names(tag="team=infra") == [f"{base}/tagged"]
    assert names(sub_types=["password"]) == [f"{base}/pw"]
    assert names(type=["static-secret"]) == names()
    assert names(type=["dynamic-secret"]) == []
    future = int(dt.datetime.now(dt.timezone.utc).timestamp()) + 3600
    assert names(modified_after=future) == []
    with pytest.raises(ApiException) as e:
        names(type=["no-such-type"])
    assert status_of(e) == 400

    tag = uuid.uuid4().hex[:8]
    api.create_auth_method(akeyless.CreateAuthMethod(name=f"/am-filter/{tag}/key", token=token))
    api.create_auth_method_universal_identity(
        akeyless.CreateAuthMethodUniversalIdentity(name=f"/am-filter/{tag}/uid", token=token))
    out = api.list_auth_methods(akeyless.ListAuthMethods(type=["universal_identity"], filter=f"/am-filter/{tag}/",
                                                         token=token))
    assert [m.auth_method_name for m in out.auth_methods] == [f"/am-filter/{tag}/uid"]


# --------------------------------------------------------------------------
# Dynamic and rotated secrets (MariaDB from scripts/test.sh)


@pytest.fixture(scope="module")
def mysql_db() -> MysqlTestDb:
    url = os.environ.get("COFFER_TEST_MYSQL_URL", "")
    if not url:
        pytest.skip("COFFER_TEST_MYSQL_URL is not set (scripts/test.sh provides MariaDB)")
    return MysqlTestDb(url)


def test_dynamic_and_rotated_mysql_secrets_through_the_sdk(api, token, mysql_db):
    """Everything through the SDK's models (with their defaults: inline
    mysql-host/port beside target-name, user-ttl 60m, timeout 15, json false,
    secure-access-web false, …); the answers have the documented shapes."""
    db, tag = mysql_db, uuid.uuid4().hex[:7]
    u = db.url
    target, dyn, rot = f"/sdk/{tag}/mysql", f"/sdk/{tag}/s{tag}", f"/sdk/{tag}/rot"
    user, pw0 = f"ct_sdk_{tag}", f"SdkPw{uuid.uuid4().hex[:16]}"
    db.create_user(user, pw0)
    try:
        out = api.target_create_db(akeyless.TargetCreateDB(
            name=target, db_type="mysql", host=u.host, port=str(u.port), user_name=u.user, pwd=u.password,
            db_name=u.dbname, token=token))
        assert out.target_id
        api.dynamic_secret_create_my_sql(akeyless.DynamicSecretCreateMySql(
            name=dyn, target_name=target, user_ttl="2m", token=token))

        value = api.get_dynamic_secret_value(akeyless.GetDynamicSecretValue(name=dyn, token=token))
        assert isinstance(value, dict) and {"id", "user", "password", "ttl_in_minutes"} <= set(value), value.keys()
        assert all(isinstance(v, str) for v in value.values()), {k: type(v).__name__ for k, v in value.items()}
        assert value["id"] == value["user"] and value["ttl_in_minutes"] == "2"
        db.connect(value["user"], value["password"]).close()  # a working login
        creds = api.dynamic_secret_tmp_creds_get(akeyless.DynamicSecretTmpCredsGet(name=dyn, token=token))
        assert [c.id for c in creds] == [value["id"]]

        api.rotated_secret_create_mysql(akeyless.RotatedSecretCreateMysql(
            name=rot, target_name=target, rotator_type="password", rotated_username=user, rotated_password=pw0,
            authentication_credentials="use-target-creds", token=token))
        # names is ONE string in this SDK model.
        v1 = api.get_rotated_secret_value(akeyless.GetRotatedSecretValue(names=rot, token=token))
        assert v1["value"] == {"username": user, "password": pw0} and isinstance(v1["version"], int), v1.keys()
        api.rotate_secret(akeyless.RotateSecret(name=rot, token=token))
        v2 = api.get_rotated_secret_value(akeyless.GetRotatedSecretValue(names=rot, token=token))
        assert v2["value"]["username"] == user and v2["value"]["password"] != pw0 and v2["version"] > v1["version"]
        db.connect(user, v2["value"]["password"]).close()
        old = api.get_rotated_secret_value(akeyless.GetRotatedSecretValue(names=rot, version=v1["version"],
                                                                          token=token))
        assert old["value"]["password"] == pw0

        api.dynamic_secret_delete(akeyless.DynamicSecretDelete(name=dyn, token=token))
        assert db.users(value["user"]) == set(), "deleting the dynamic secret did not revoke its credential"
    finally:
        db.drop_users(user)
        db.drop_users(f"tmp_s{tag}_")


# --------------------------------------------------------------------------
# Keys and certificate issuers through the SDK's models

SSH_KEYGEN = shutil.which("ssh-keygen")
OPENSSL = shutil.which("openssl")


def test_encrypt_decrypt_with_context_and_rotation_through_the_sdk(api, token):
    name = f"/sdk-keys/{uuid.uuid4().hex[:8]}/aes"
    out = api.create_key(akeyless.CreateKey(name=name, alg="AES256GCM", token=token))
    assert isinstance(out, akeyless.CreateKeyOutput) and out.item_id and out.display_id
    ctx = {"app": "billing", "env": "prod"}
    enc = api.encrypt(akeyless.Encrypt(key_name=name, plaintext="card-4242", encryption_context=ctx, token=token))
    assert isinstance(enc, akeyless.EncryptOutput) and enc.result and enc.result != "card-4242"
    dec = api.decrypt(akeyless.Decrypt(key_name=name, ciphertext=enc.result, encryption_context=ctx, token=token))
    assert isinstance(dec, akeyless.DecryptOutput) and dec.result == "card-4242"
    # A changed (or missing) context does not decrypt: 400.
    for other in ({"app": "billing", "env": "dev"}, {"app": "billing"}, None):
        with pytest.raises(ApiException) as e:
            api.decrypt(akeyless.Decrypt(key_name=name, ciphertext=enc.result, encryption_context=other, token=token))
        assert status_of(e) == 400, other
        assert "decryption failed" in e.value.body
    # Rotation: a new version; the old ciphertext still decrypts.
    rotated = api.rotate_key(akeyless.RotateKey(name=name, token=token))
    assert rotated.new_item_version == 2
    enc2 = api.encrypt(akeyless.Encrypt(key_name=name, plaintext="card-4242", encryption_context=ctx, token=token))
    for ct in (enc.result, enc2.result):
        got = api.decrypt(akeyless.Decrypt(key_name=name, ciphertext=ct, encryption_context=ctx, token=token))
        assert got.result == "card-4242"
    item = api.describe_item(akeyless.DescribeItem(name=name, token=token))
    assert item.item_type == "CLASSIC_KEY" and item.last_version == 2


def test_get_rsa_public_through_the_sdk(api, token):
    from cryptography.hazmat.primitives import serialization

    tag = uuid.uuid4().hex[:8]
    for alg, ssh_prefix in [("RSA2048", "ssh-rsa "), ("EC256", "ecdsa-sha2-nistp256 "), ("Ed25519", "ssh-ed25519 ")]:
        name = f"/sdk-keys/{tag}/{alg.lower()}"
        created = api.create_classic_key(akeyless.CreateClassicKey(name=name, alg=alg, token=token))
        assert isinstance(created, akeyless.CreateClassicKeyOutput)
        assert created.classic_key_name == name and created.classic_key_type == alg
        pub = api.get_rsa_public(akeyless.GetRSAPublic(name=name, token=token))
        assert isinstance(pub, akeyless.GetRSAPublicOutput)
        assert pub.pem == created.public_key and pub.pem.startswith("-----BEGIN PUBLIC KEY-----")
        # raw is the base64 of the DER of the same key; ssh is its OpenSSH form.
        key = serialization.load_pem_public_key(pub.pem.encode())
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert pub.raw.strip() == base64.b64encode(der).decode()
        assert pub.ssh.startswith(ssh_prefix)
        openssh = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
        assert pub.ssh.split()[:2] == openssh.split()[:2]
    # An AES key has no public part.
    api.create_key(akeyless.CreateKey(name=f"/sdk-keys/{tag}/aes", alg="AES128GCM", token=token))
    with pytest.raises(ApiException) as e:
        api.get_rsa_public(akeyless.GetRSAPublic(name=f"/sdk-keys/{tag}/aes", token=token))
    assert status_of(e) == 400


@pytest.mark.skipif(SSH_KEYGEN is None, reason="ssh-keygen is not installed (Debian: openssh-client)")
def test_ssh_certificate_through_the_sdk(api, token, tmp_path, server):
    tag = uuid.uuid4().hex[:8]
    ca, issuer = f"/sdk-ssh/{tag}/ca", f"/sdk-ssh/{tag}/issuer"
    api.create_classic_key(akeyless.CreateClassicKey(name=ca, alg="Ed25519", token=token))
    api.create_ssh_cert_issuer(akeyless.CreateSSHCertIssuer(
        name=issuer, signer_key_name=ca, allowed_users="ubuntu,deploy", principals="ops", ttl=300,
        extensions={"permit-pty": ""}, token=token))
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")], check=True)
    pub = (tmp_path / "id.pub").read_text().strip()
    out = api.get_ssh_certificate(akeyless.GetSSHCertificate(
        cert_issuer_name=issuer, cert_username="ubuntu", public_key_data=pub, ttl=120, token=token))
    assert isinstance(out, akeyless.GetSSHCertificateOutput)
    cert = tmp_path / "id-cert.pub"
    cert.write_text(out.data.strip() + "\n")
    listing = subprocess.run([SSH_KEYGEN, "-L", "-f", str(cert)], capture_output=True, text=True, check=True).stdout
    assert "ssh-ed25519-cert-v01@openssh.com user certificate" in listing
    assert f'Key ID: "{server.admin.access_id} (auth method /admin)"' in listing, listing
    principals = listing.split("Principals:")[1].split("Critical Options:")[0].split()
    assert principals == ["ubuntu", "ops"], listing
    assert listing.split("Extensions:")[1].split() == ["permit-pty"], listing
    ca_ssh = api.get_rsa_public(akeyless.GetRSAPublic(name=ca, token=token)).ssh
    (tmp_path / "ca.pub").write_text(ca_ssh + "\n")
    ca_fp = subprocess.run([SSH_KEYGEN, "-l", "-f", str(tmp_path / "ca.pub")], capture_output=True, text=True,
                           check=True).stdout.split()[1]
    assert f"Signing CA: ED25519 {ca_fp}" in listing, listing
    # A user outside allowed-users: 403; ttl above the issuer's: 403.
    for kw in ({"cert_username": "root"}, {"cert_username": "ubuntu", "ttl": 301}):
        with pytest.raises(ApiException) as e:
            api.get_ssh_certificate(akeyless.GetSSHCertificate(cert_issuer_name=issuer, public_key_data=pub,
                                                               token=token, **kw))
        assert status_of(e) == 403, kw


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
def test_pki_certificate_through_the_sdk(api, token, tmp_path):
    tag = uuid.uuid4().hex[:8]
    root, issuer = f"/sdk-pki/{tag}/root", f"/sdk-pki/{tag}/issuer"
    api.create_key(akeyless.CreateKey(name=root, alg="EC256", generate_self_signed_certificate=True,
                                      certificate_ttl=30, certificate_common_name="SDK Test Root", token=token))
    api.create_pki_cert_issuer(akeyless.CreatePKICertIssuer(
        name=issuer, signer_key_name=root, ttl=3600, allowed_domains="example.com", allow_subdomains=True,
        server_flag=True, token=token))
    cnf = tmp_path / "req.cnf"
    cnf.write_text("[req]\ndistinguished_name = dn\n[dn]\n")
    subprocess.run([OPENSSL, "req", "-config", str(cnf), "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp_path / "k.pem"), "-out",
                    str(tmp_path / "req.csr"), "-subj", "/CN=api.example.com", "-addext",
                    "subjectAltName=DNS:api.example.com"], check=True, capture_output=True)
    csr = (tmp_path / "req.csr").read_text()
    out = api.get_pki_certificate(akeyless.GetPKICertificate(
        cert_issuer_name=issuer, csr_data_base64=base64.b64encode(csr.encode()).decode(), ttl=600, token=token))
    assert isinstance(out, akeyless.GetPKICertificateOutput)
    assert out.data.startswith("-----BEGIN CERTIFICATE-----") and out.cert_display_id
    (tmp_path / "leaf.pem").write_text(out.data)
    (tmp_path / "root.pem").write_text(out.parent_cert)
    root_desc = api.describe_item(akeyless.DescribeItem(name=root, token=token))
    assert root_desc.item_type == "CLASSIC_KEY"
    v = subprocess.run([OPENSSL, "verify", "-CAfile", str(tmp_path / "root.pem"), str(tmp_path / "leaf.pem")],
                       capture_output=True, text=True)
    assert v.returncode == 0 and v.stdout.strip().endswith(": OK"), v.stdout + v.stderr
    serial = subprocess.run([OPENSSL, "x509", "-in", str(tmp_path / "leaf.pem"), "-noout", "-serial"],
                            capture_output=True, text=True, check=True).stdout.strip().split("=")[1]
    assert serial.lower().lstrip("0") == out.cert_display_id.lower().lstrip("0")
    # A public key with a name outside the issuer's domains: 403.
    pub = subprocess.run([OPENSSL, "pkey", "-in", str(tmp_path / "k.pem"), "-pubout"], capture_output=True,
                         text=True, check=True).stdout
    with pytest.raises(ApiException) as e:
        api.get_pki_certificate(akeyless.GetPKICertificate(
            cert_issuer_name=issuer, key_data_base64=base64.b64encode(pub.encode()).decode(),
            common_name="api.evil.org", token=token))
    assert status_of(e) == 403 and "allowed-domains" in e.value.body
