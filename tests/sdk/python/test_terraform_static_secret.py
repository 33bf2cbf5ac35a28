"""The Terraform provider's `akeyless_static_secret` resource, replayed.

terraform-provider-akeyless (akeyless/resource_static_secret.go) builds
akeyless-go request structs by hand, so it sends only the fields it sets
(no SDK defaults) and reads these response fields:

* create: `create-secret {name, value, multiline_value, token}` (+ tags,
  description, protection_key when set), then `describe-item {name,
  show-versions: true}` reading `last_version` and `protection_key_name`
  (both dereferenced: absent would crash the provider);
* read: `get-secret-value {names: [path]}` (404 = deleted outside
  Terraform: the resource is dropped), then `describe-item` reading
  `last_version`, `protection_key_name`, `item_metadata`, `item_tags`;
* update: `update-secret-val {name, key: <protection_key_name read back>,
  value, multiline}`, then `update-item {name, new-name: <the same
  path>, add-tag/rm-tag (the difference from get-tags), description,
  new-metadata: "default_metadata"}`, then `describe-item {show-versions:
  false}`;
* delete: `delete-item {name}` only (no delete-in-days: Go sends none).

The replay goes over raw HTTP with the header the provider sets; the
official Python SDK is then used for update_item, get_tags, delete_items
and delete_item soft deletion with restore.
"""

from __future__ import annotations

import uuid

import akeyless
import pytest
import requests
from akeyless.rest import ApiException

TF = {"akeylessclienttype": "terraform", "Content-Type": "application/json"}


def tf(server, op: str, body: dict) -> requests.Response:
    return requests.post(f"{server.url}/{op}", json=body, headers=TF, timeout=10)


def ok(server, op: str, body: dict):
    r = tf(server, op, body)
    assert r.status_code == 200, f"{op}: {r.status_code} {r.text}"
    return r.json()


def get_tags_diff(server, token: str, path: str, wanted: list[str]) -> tuple[list[str], list[str]]:
    """What common.GetTagsForUpdate computes: get-tags, then the difference."""
    current = ok(server, "get-tags", {"name": path, "token": token})
    assert isinstance(current, list), "get-tags must be a top-level JSON array"
    add = [t for t in wanted if t not in current]
    rm = [t for t in current if t not in wanted]
    return add, rm


def test_terraform_static_secret_lifecycle(server):
    token = server.admin_client().token
    path = f"/tf/{uuid.uuid4().hex[:8]}/db-password"

    # create
    ok(server, "create-secret", {"name": path, "value": "s3cret", "multiline_value": False,
                                 "tags": ["env:prod", "team:db"], "description": "managed by terraform",
                                 "token": token})
    d = ok(server, "describe-item", {"name": path, "show-versions": True, "token": token})
    assert d["last_version"] == 1
    assert d["protection_key_name"] == ""
    protection_key = d["protection_key_name"]

    # read
    v = ok(server, "get-secret-value", {"names": [path], "token": token})
    assert v == {path: "s3cret"}
    d = ok(server, "describe-item", {"name": path, "show-versions": True, "token": token})
    assert d["last_version"] == 1
    assert d["protection_key_name"] == ""
    assert d["item_metadata"] == "managed by terraform"
    assert sorted(d["item_tags"]) == ["env:prod", "team:db"]
    # GetSraFromItem: no secure-remote-access details, so nothing to read.
    assert d["item_type"] == "STATIC_SECRET"
    assert "secure_remote_access_details" not in d.get("item_general_info", {})

    # update: value, then item (tags and description)
    ok(server, "update-secret-val", {"name": path, "key": protection_key, "value": "n3w-s3cret",
                                     "multiline": False, "token": token})
    add, rm = get_tags_diff(server, token, path, ["env:prod", "owner:alice"])
    assert (add, rm) == (["owner:alice"], ["team:db"])
    out = ok(server, "update-item", {"name": path, "new-name": path, "add-tag": add, "rm-tag": rm,
                                     "description": "rotated by terraform",
                                     "new-metadata": "default_metadata", "token": token})
    assert out == {"updated": True}
    d = ok(server, "describe-item", {"name": path, "show-versions": False, "token": token})
    assert d["last_version"] == 2
    assert d["protection_key_name"] == ""

    # read
    v = ok(server, "get-secret-value", {"names": [path], "token": token})
    assert v == {path: "n3w-s3cret"}
    d = ok(server, "describe-item", {"name": path, "show-versions": True, "token": token})
    assert d["last_version"] == 2
    assert d["item_metadata"] == "rotated by terraform"
    assert sorted(d["item_tags"]) == ["env:prod", "owner:alice"]
    assert [x["version"] for x in d["item_versions"]] == [1, 2]

    # An option the provider may send that Coffer lacks: refused, not ignored.
    r = tf(server, "update-item", {"name": path, "new-name": path, "secure-access-enable": "true",
                                    "new-metadata": "default_metadata", "token": token})
    assert r.status_code == 400 and "secure-access-enable" in r.json()["error"]

    # delete: then the read's 404 drops the resource
    out = ok(server, "delete-item", {"name": path, "token": token})
    assert out["item_name"] == path and out["deletion_date"]
    r = tf(server, "get-secret-value", {"names": [path], "token": token})
    assert r.status_code == 404, r.text
    assert "pending deletion" in r.json()["error"]

    # Every request above carried the provider's client type.
    records = server.admin_client().audit(object=path)
    assert records and all(rec.get("client_type") == "terraform" for rec in records
                           if rec["operation"] in ("create-secret", "update-item", "delete-item"))


@pytest.fixture
def api(server) -> akeyless.V2Api:
    return akeyless.V2Api(akeyless.ApiClient(akeyless.Configuration(host=server.url)))


@pytest.fixture
def token(server) -> str:
    return server.admin_client().token


def test_sdk_update_item_and_get_tags(api, token):
    name = f"/sdk-upd/{uuid.uuid4().hex[:8]}"
    api.create_secret(akeyless.CreateSecret(name=name, value="v", tags=["a", "b"], description="d1",
                                            token=token))
    # The model sends description/new-metadata "default_metadata": unchanged.
    out = api.update_item(akeyless.UpdateItem(name=name, add_tag=["c"], rm_tag=["a"], token=token))
    assert isinstance(out, akeyless.UpdateItemOutput) and out.updated is True
    tags = api.get_tags(akeyless.GetTags(name=name, token=token))
    assert sorted(tags) == ["b", "c"]
    item = api.describe_item(akeyless.DescribeItem(name=name, token=token))
    assert item.item_metadata == "d1"
    api.update_item(akeyless.UpdateItem(name=name, description="d2", max_versions="3", token=token))
    item = api.describe_item(akeyless.DescribeItem(name=name, token=token))
    assert item.item_metadata == "d2"
    # Rename keeps the value.
    renamed = name + "-renamed"
    api.update_item(akeyless.UpdateItem(name=name, new_name=renamed, token=token))
    assert api.get_secret_value(akeyless.GetSecretValue(names=[renamed], token=token))[renamed] == "v"
    with pytest.raises(ApiException) as e:
        api.get_tags(akeyless.GetTags(name=name, token=token))
    assert e.value.status == 404
    # Unsupported options are refused.
    with pytest.raises(ApiException) as e:
        api.update_item(akeyless.UpdateItem(name=renamed, lock_on_read="true", token=token))
    assert e.value.status == 400 and "lock-on-read" in e.value.body


def test_sdk_soft_delete_restore_and_delete_items(api, token):
    folder = f"/sdk-del/{uuid.uuid4().hex[:8]}"
    a, b = f"{folder}/a", f"{folder}/sub/b"
    for n in (a, b):
        api.create_secret(akeyless.CreateSecret(name=n, value=f"value of {n}", token=token))

    # delete_item with the SDK defaults (7 days): pending deletion.
    out = api.delete_item(akeyless.DeleteItem(name=a, token=token))
    assert isinstance(out, akeyless.DeleteItemOutput) and out.version_deleted == -1
    with pytest.raises(ApiException) as e:
        api.get_secret_value(akeyless.GetSecretValue(names=[a], token=token))
    assert e.value.status == 404 and "restore-item" in e.value.body
    item = api.describe_item(akeyless.DescribeItem(name=a, token=token))
    assert item.item_state == "PendingDeletion" and item.deletion_date == out.deletion_date
    listing = api.list_items(akeyless.ListItems(path=folder, token=token))
    assert [i.item_name for i in listing.items or []] == [b]
    with pytest.raises(ApiException) as e:
        api.create_secret(akeyless.CreateSecret(name=a, value="again", token=token))
    assert e.value.status == 409 and "pending deletion" in e.value.body

    # restore-item (Coffer's own operation: raw call through the SDK's client).
    api.api_client.call_api("/restore-item", "POST", body={"name": a, "token": token},
                            header_params={"Content-Type": "application/json"},
                            response_type="object", _return_http_data_only=True)
    assert api.get_secret_value(akeyless.GetSecretValue(names=[a], token=token))[a] == f"value of {a}"

    # delete_items: everything under the folder, in one go.
    out = api.delete_items(akeyless.DeleteItems(path=folder, token=token))
    assert isinstance(out, akeyless.DeleteItemsOutput)
    assert sorted(out.deleted_items) == sorted([a, b])
    assert not out.failed_deleted_items
    for n in (a, b):
        with pytest.raises(ApiException) as e:
            api.get_secret_value(akeyless.GetSecretValue(names=[n], token=token))
        assert e.value.status == 404

    # delete-immediately frees the name at once.
    api.delete_item(akeyless.DeleteItem(name=a, delete_immediately=True, delete_in_days=-1, token=token))
    api.create_secret(akeyless.CreateSecret(name=a, value="reborn", token=token))
    assert api.get_secret_value(akeyless.GetSecretValue(names=[a], token=token))[a] == "reborn"
