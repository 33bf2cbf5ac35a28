"""(d) A restart keeps everything, and the bootstrap credentials are
printed only on the very first start."""

from __future__ import annotations

import json

from cofferlib import ACCESS_ID_RE, ACCESS_KEY_RE, Client


def test_restart_keeps_state_and_prints_no_credentials(server):
    admin = server.admin_client()
    admin.create_secret("/keep/one", "v1", description="kept", tags=["t1"])
    admin.update_secret("/keep/one", "v2")
    admin.create_secret("/keep/cfg", json.dumps({"a": "b"}), format="json")
    creds = admin.new_reader("keeper", "/keep/*")
    old_reader = Client(server.url)
    old_reader.login(creds.access_id, creds.access_key)
    role_before = admin.call("get-role", {"name": "/role/keeper"})
    am_before = admin.call("get-auth-method", {"name": "/am/keeper"})
    items_before = sorted(i["item_name"] for i in admin.call("list-items", {"path": "/keep"})["items"])
    last_seq = max(r["seq"] for r in admin.audit())

    assert server.stop() == 0, "SIGTERM should shut the server down cleanly (exit 0)"
    server.start(expect_credentials=False)  # asserts the banner is not printed again
    assert not ACCESS_ID_RE.search(server.starts[-1]) and not ACCESS_KEY_RE.search(server.starts[-1])

    # The original admin key still works; the data is all there.
    admin = server.admin_client()
    assert admin.get_value("/keep/one") == "v2"
    assert admin.get_value("/keep/one", version=1) == "v1"
    assert json.loads(admin.get_value("/keep/cfg")) == {"a": "b"}
    item = admin.call("describe-item", {"name": "/keep/one"})
    assert item["last_version"] == 2 and item["item_tags"] == ["t1"]
    assert sorted(i["item_name"] for i in admin.call("list-items", {"path": "/keep"})["items"]) == items_before
    assert admin.call("get-role", {"name": "/role/keeper"})["rules"] == role_before["rules"]
    assert admin.call("get-auth-method", {"name": "/am/keeper"})["auth_method_access_id"] \
        == am_before["auth_method_access_id"]

    # A token issued before the restart is still valid (CI jobs keep theirs).
    assert old_reader.get_value("/keep/one") == "v2"

    # The second identity and its role still work.
    reader = Client(server.url)
    reader.login(creds.access_id, creds.access_key)
    assert reader.get_value("/keep/one") == "v2"
    assert reader.raw("create-secret", {"name": "/keep/x", "value": "x"}).status_code == 403

    # The audit log continues the same sequence.
    records = admin.audit()
    assert any(r["seq"] == last_seq for r in records)
    assert max(r["seq"] for r in records) > last_seq
    assert admin.call("audit-verify", {})["valid"] is True
