"""Operator logs: one INFO line per request (operation, status, duration,
the caller's access ID, request ID) in text and JSON, no ANSI colour codes
when the log is a file, SQL statements only when asked for by name, and
never a secret value, access key or token."""

from __future__ import annotations

import json
import re

import pytest

from cofferlib import Client

SECRET = "s3cr3t-value-for-the-log-test"
ANSI = re.compile(r"\x1b\[")


def exercise(server) -> tuple[str, str, str]:
    """A known mix: a create, a read, a denied read, a failed login."""
    admin = server.admin_client()
    admin.create_secret("/logs/one", SECRET)
    assert admin.get_value("/logs/one") == SECRET
    creds = admin.new_reader("log-reader", "/other/*")
    reader = Client(server.url)
    token = reader.login(creds.access_id, creds.access_key)
    denied = reader.raw("get-secret-value", {"names": ["/logs/one"]})
    assert denied.status_code == 403
    bad = Client(server.url).raw("auth", {"access-id": creds.access_id, "access-key": "wrong"}, token=False)
    assert bad.status_code == 401
    return creds.access_id, creds.access_key, token


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_one_info_line_per_request_without_colour_or_secrets(server_factory, fmt):
    srv = server_factory(env={"COFFER_LOG_FORMAT": fmt}).start(expect_credentials=True)
    reader_id, reader_key, token = exercise(srv)
    srv.stop()
    log = srv.stderr_path.read_text()
    assert not ANSI.search(log), "colour codes in a log file"
    for leak in (SECRET, reader_key, token, srv.admin.access_key):
        assert leak not in log, "a secret value, access key or token is in the log"
    assert "sqlx" not in log and "SELECT " not in log, "SQL statements at the default level"
    if fmt == "json":
        lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        reqs = [x["fields"] for x in lines if x.get("target") == "coffer::request"]
        assert all(x.get("level", "INFO") == "INFO" for x in lines if x.get("target") == "coffer::request")
    else:
        reqs = []
        for line in log.splitlines():
            if "coffer::request" in line:
                assert " INFO " in line, line
                reqs.append(dict(re.findall(r"(\w+)=(\S+)", line)))
    ops = [(r["op"], int(r["status"])) for r in reqs]
    assert ("create-secret", 200) in ops and ("get-secret-value", 200) in ops, ops
    assert ("get-secret-value", 403) in ops and ("auth", 401) in ops, ops
    for r in reqs:
        assert r["request_id"] and int(r["duration_us"]) >= 0
    denied = [r for r in reqs if r["op"] == "get-secret-value" and int(r["status"]) == 403]
    assert denied[0]["access_id"] == reader_id, denied


def test_sql_only_when_named(server_factory):
    srv = server_factory(env={"COFFER_LOG": "debug"}).start(expect_credentials=True)
    srv.admin_client().create_secret("/logs/sql", SECRET)
    srv.stop()
    assert "SELECT " not in srv.stderr_path.read_text(), "COFFER_LOG=debug shows SQL"
    srv = server_factory("named", env={"COFFER_LOG": "info,sqlx=debug"}).start(expect_credentials=True)
    srv.admin_client().create_secret("/logs/sql", SECRET)
    srv.stop()
    log = srv.stderr_path.read_text()
    assert "sqlx" in log, "SQL logging by name"
    assert SECRET not in log
