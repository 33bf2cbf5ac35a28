"""(c) The audit log's HMAC chain detects offline tampering.

Requests are made, the server is stopped, and `coffer audit verify
--data-dir DIR` must pass. Then the SQLite audit_log table (schema:
crates/coffer-store/migrations/sqlite/) is changed behind the server's
back — a field edited, a middle row deleted, two rows' seq swapped — and
verify must fail each time; after restoring the original data it passes
again.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from cofferlib import Client


def verify(binary: Path, data_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), "audit", "verify", "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=120)


def db_path(data_dir: Path) -> Path:
    return data_dir / "coffer.db"


def seqs(data_dir: Path) -> list[int]:
    with sqlite3.connect(db_path(data_dir)) as db:
        return [row[0] for row in db.execute("SELECT seq FROM audit_log ORDER BY seq")]


def tamper(data_dir: Path, *statements: tuple[str, tuple]) -> None:
    db = sqlite3.connect(db_path(data_dir))
    try:
        with db:
            for sql, args in statements:
                cur = db.execute(sql, args)
                assert cur.rowcount == 1, f"{sql} {args} changed {cur.rowcount} rows"
    finally:
        db.close()


@pytest.fixture
def stopped_server(server):
    """A server that saw a mix of allowed, denied and failed requests, then stopped."""
    admin = server.admin_client()
    admin.create_secret("/audit/a", "value-a")
    admin.update_secret("/audit/a", "value-a2")
    admin.get_value("/audit/a")
    creds = admin.new_reader("auditee", "/audit/*", caps=("read",))
    reader = Client(server.url)
    reader.login(creds.access_id, creds.access_key)
    assert reader.raw("create-secret", {"name": "/audit/b", "value": "x"}).status_code == 403
    assert admin.raw("get-secret-value", {"names": ["/audit/missing"]}).status_code == 404
    assert admin.raw("auth", {"access-id": creds.access_id, "access-key": "wrong"}, token=False).status_code == 401
    # The online check agrees before anything is touched.
    online = admin.call("audit-verify", {})
    assert online["valid"] is True and online["records"] >= 10
    server.stop()
    return server


def test_untouched_chain_verifies(stopped_server):
    out = verify(stopped_server.binary, stopped_server.data_dir)
    assert out.returncode == 0, out.stdout + out.stderr
    assert len(seqs(stopped_server.data_dir)) >= 10


def test_tampering_is_detected(stopped_server, tmp_path):
    data_dir, binary = stopped_server.data_dir, stopped_server.binary
    pristine = tmp_path / "pristine"
    shutil.copytree(data_dir, pristine)

    def restore():
        shutil.rmtree(data_dir)
        shutil.copytree(pristine, data_dir)
        ok = verify(binary, data_dir)
        assert ok.returncode == 0, f"restored copy must verify again: {ok.stdout}{ok.stderr}"

    all_seqs = seqs(data_dir)
    mid = all_seqs[len(all_seqs) // 2]
    other = all_seqs[len(all_seqs) // 2 + 2]

    # 1. Edit one field of one record: detected, and the message names it.
    with sqlite3.connect(db_path(data_dir)) as db:
        (outcome,) = db.execute("SELECT outcome FROM audit_log WHERE seq = ?", (mid,)).fetchone()
    forged = "denied" if outcome == "allowed" else "allowed"
    tamper(data_dir, ("UPDATE audit_log SET outcome = ? WHERE seq = ?", (forged, mid)))
    out = verify(binary, data_dir)
    message = out.stdout + out.stderr
    assert out.returncode != 0, f"edited outcome of record {mid} not detected: {message}"
    assert re.search(rf"\b{mid}\b", message), f"the error should name record {mid}: {message}"
    restore()

    # Other single fields, each on its own.
    for column, value in [("object", "/audit/other"), ("status", 299), ("access_id", "p-forgedforged"),
                          ("time_ms", 1)]:
        tamper(data_dir, (f"UPDATE audit_log SET {column} = ? WHERE seq = ?", (value, mid)))
        out = verify(binary, data_dir)
        assert out.returncode != 0, f"edited {column} of record {mid} not detected: {out.stdout}{out.stderr}"
        restore()

    # 2. Delete a record from the middle.
    tamper(data_dir, ("DELETE FROM audit_log WHERE seq = ?", (mid,)))
    out = verify(binary, data_dir)
    assert out.returncode != 0, f"deleted record {mid} not detected: {out.stdout}{out.stderr}"
    assert (out.stdout + out.stderr).strip(), "a failed verify must say why"
    restore()

    # 3. Swap two records' seq (reorder history).
    tamper(data_dir,
           ("UPDATE audit_log SET seq = -1 WHERE seq = ?", (mid,)),
           ("UPDATE audit_log SET seq = ? WHERE seq = ?", (mid, other)),
           ("UPDATE audit_log SET seq = ? WHERE seq = -1", (other,)))
    out = verify(binary, data_dir)
    assert out.returncode != 0, f"swapped records {mid} and {other} not detected: {out.stdout}{out.stderr}"
    restore()

    # 4. Delete the newest record (truncating the tail): the chain head moves with it.
    tamper(data_dir, ("DELETE FROM audit_log WHERE seq = ?", (all_seqs[-1],)))
    out = verify(binary, data_dir)
    assert out.returncode != 0, f"deleted last record {all_seqs[-1]} not detected: {out.stdout}{out.stderr}"
    restore()
