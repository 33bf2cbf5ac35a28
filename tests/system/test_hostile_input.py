"""(e) Hostile input is refused with the documented status, creates
nothing, and is still audited.

Each request below is sent as the bootstrap admin (so a refusal is about
the input, not about rights) or with a bad token; after each one the audit
log (read through the `audit-list` API) must hold a new record with the
same status.
"""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from cofferlib import Client, poll


def audit_head(admin: Client) -> int:
    records = admin.audit()
    return max((r["seq"] for r in records), default=0)


def assert_audited(admin: Client, after_seq: int, status: int, what: str) -> int:
    """A record with `status` exists after `after_seq`; returns the new head."""
    page = admin.call("audit-list", {"after-seq": after_seq, "limit": 1000})
    records = page.get("records") or []
    assert any(r["status"] == status for r in records), (
        f"{what}: no audit record with status {status} after seq {after_seq}; got "
        f"{[(r['seq'], r['operation'], r['status']) for r in records]}"
    )
    assert all(r["seq"] > after_seq for r in records)
    return max(r["seq"] for r in records)


def item_names(admin: Client) -> set[str]:
    return {i["item_name"] for i in admin.call("list-items", {"path": "/"}).get("items") or []}


BAD_NAMES = {
    "dot-dot segment": "/h/../etc/passwd",
    "leading dot-dot": "../h/escape",
    "dot segment": "/h/./x",
    "NUL byte": "/h/a\x00b",
    "10k characters": "/h/" + "a" * 10_000,
    "10k segments": "/h" + "/a" * 5_000,
    "control character": "/h/line\nbreak",
    "empty": "",
}


@pytest.mark.parametrize("label", list(BAD_NAMES))
def test_bad_names_are_refused_and_audited(admin, label):
    name = BAD_NAMES[label]
    before_items, head = item_names(admin), audit_head(admin)
    for op, body in [
        ("create-secret", {"name": name, "value": "v"}),
        ("get-secret-value", {"names": [name]}),
        ("describe-item", {"name": name}),
    ]:
        r = admin.raw(op, body)
        assert r.status_code == 400, f"{op} with {label} name: HTTP {r.status_code} {r.text[:200]}"
        assert "error" in r.json()
        head = assert_audited(admin, head, 400, f"{op} with {label} name")
    assert item_names(admin) == before_items, f"{label}: an item was created"


@pytest.mark.parametrize("label,data", [
    ("truncated JSON", b'{"name": "/h/x", "value": '),
    ("JSON array", b'["/h/x"]'),
    ("JSON string", b'"hello"'),
    ("raw NUL in JSON", b'{"name": "/h/\x00", "value": "v"}'),
    ("invalid UTF-8", b'{"name": "/h/\xff\xfe", "value": "v"}'),
    ("deep nesting", b'{"name": "/h/x", "value": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"),
])
def test_malformed_bodies_are_400_and_audited(admin, label, data):
    before_items, head = item_names(admin), audit_head(admin)
    r = admin.raw("create-secret", data=data)
    assert r.status_code == 400, f"{label}: HTTP {r.status_code} {r.text[:200]}"
    assert "error" in r.json()
    assert_audited(admin, head, 400, label)
    assert item_names(admin) == before_items


def test_empty_body_is_an_empty_object(admin):
    # By design (wire.rs) an empty body decodes as {}: here that means no token.
    head = audit_head(admin)
    r = admin.raw("create-secret", data=b"")
    assert r.status_code == 401, f"HTTP {r.status_code} {r.text[:200]}"
    assert_audited(admin, head, 401, "empty body")


def test_oversized_body_is_413_and_audited(admin):
    before_items, head = item_names(admin), audit_head(admin)
    body = json.dumps({"name": "/h/big", "value": "x" * (2 * 1024 * 1024), "token": admin.token}).encode()
    try:
        r = admin.raw("create-secret", data=body)
    except requests.ConnectionError as e:
        pytest.fail(f"the server dropped the connection instead of answering 413: {e}")
    assert r.status_code == 413, f"HTTP {r.status_code} {r.text[:200]}"
    assert "error" in r.json()
    assert_audited(admin, head, 413, "2 MiB body")
    assert item_names(admin) == before_items
    # The connection pool still works afterwards.
    assert admin.raw("list-items", {"path": "/"}).status_code == 200


def test_unknown_operation_is_404_and_audited(admin):
    head = audit_head(admin)
    r = admin.raw("no-such-operation", {})
    assert r.status_code == 404
    assert_audited(admin, head, 404, "unknown operation")


def test_forged_tokens_are_401_and_audited(server, admin):
    # 8 anonymous 401s per operation from one address: below the default
    # --audit-failure-burst (10), so each still gets its own record (beyond
    # it they are aggregated: tests/system/test_audit_sink.py).
    admin.create_secret("/h/target", "v")
    real = admin.token
    flipped = real[:-1] + ("0" if real[-1] != "0" else "1")
    forged = {
        "random": "t-" + uuid.uuid4().hex,
        "last char flipped": flipped,
        "truncated": real[:-4],
        "extended": real + "00",
        "other scheme": "Bearer " + real,
        "empty": "",
        "huge": "t-" + "a" * 100_000,
    }
    head = audit_head(admin)
    for label, token in forged.items():
        for op, body in [("get-secret-value", {"names": ["/h/target"]}), ("list-items", {"path": "/"})]:
            r = Client(server.url).raw(op, {**body, "token": token})
            assert r.status_code == 401, f"{label} token on {op}: HTTP {r.status_code} {r.text[:200]}"
            head = assert_audited(admin, head, 401, f"{label} token on {op}")
    # Without any token field.
    r = Client(server.url).raw("get-secret-value", {"names": ["/h/target"]})
    assert r.status_code == 401
    assert_audited(admin, head, 401, "no token")


def test_revoked_token_is_401(server, admin):
    creds = admin.new_reader("revoked", "/h/*")
    user = Client(server.url)
    user.login(creds.access_id, creds.access_key)
    assert user.raw("list-items", {"path": "/h"}).status_code == 200
    user.call("revoke-token", {})
    head = audit_head(admin)
    assert user.raw("list-items", {"path": "/h"}).status_code == 401
    assert_audited(admin, head, 401, "revoked token")
    assert user.call("validate-token", {})["is_valid"] is False


def test_expired_token_is_401(server_factory):
    srv = server_factory("short-ttl", extra_args=["--token-ttl", "2"]).start(expect_credentials=True)
    admin = srv.admin_client()
    admin.create_secret("/h/exp", "v")
    user = Client(srv.url)
    user.login(srv.admin.access_id, srv.admin.access_key)
    poll(lambda: user.call("validate-token", {})["is_valid"] is False, 15, "the 2 s token to expire",
         interval=0.2)
    r = user.raw("get-secret-value", {"names": ["/h/exp"]})
    assert r.status_code == 401, f"expired token: HTTP {r.status_code} {r.text[:200]}"
    # The admin's own token expired too; log in again to read the audit log.
    fresh = srv.admin_client()
    records = fresh.audit(operation="get-secret-value")
    assert any(r["status"] == 401 for r in records), "expired-token request not audited"
