"""Audit lifecycle: retention with a signed checkpoint, and export.

A server runs with a 3-second retention pruned every second and an anchor
file. After traffic and a prune, `coffer audit verify` passes through the
API and offline (the anchors inside the pruned range do not make it fail);
`coffer audit export --since/--until` returns exactly the records of that
window (through the API and offline) with their chain fields; then the
checkpoint row is tampered with (python sqlite3) and verify must fail.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

from cofferlib import coffer_bin, poll


def cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COFFER_")}
    env["HOME"] = str(home)
    return subprocess.run([str(coffer_bin()), *args], capture_output=True, text=True, timeout=120, env=env)


def checkpoint(db: Path):
    with sqlite3.connect(db) as con:
        return con.execute("SELECT seq, hash, time_ms, mac FROM audit_checkpoint WHERE id = 1").fetchone()


def records(db: Path, since_ms: int, until_ms: int) -> list[int]:
    with sqlite3.connect(db) as con:
        return [r[0] for r in con.execute(
            "SELECT seq FROM audit_log WHERE time_ms >= ? AND time_ms < ? ORDER BY seq", (since_ms, until_ms))]


def rfc3339(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).isoformat().replace("+00:00", "Z")


def test_retention_checkpoint_verify_and_export(server_factory, tmp_path):
    anchors = tmp_path / "anchors.jsonl"
    srv = server_factory(extra_args=["--audit-retention", "3s", "--audit-prune-interval", "1",
                                     "--audit-anchor-file", str(anchors), "--audit-anchor-interval", "1"])
    srv.start(expect_credentials=True)
    db = srv.data_dir / "coffer.db"
    admin = srv.admin_client()
    admin.create_secret("/life/a", "value-a")
    for _ in range(20):
        admin.get_value("/life/a")
    # The anchor file gets heads that will soon lie inside the pruned range.
    poll(lambda: anchors.exists() and anchors.read_text().strip(), 20, "an audit anchor")
    cp = poll(lambda: checkpoint(db), 30, "a retention checkpoint")
    first_anchor = json.loads(anchors.read_text().splitlines()[0])
    poll(lambda: checkpoint(db)[0] > first_anchor["seq"], 30, "a prune past the first anchor")
    assert cp[0] > 0
    pruned = admin.call("audit-list", {"operation": "audit-prune", "limit": 100})["records"]
    assert pruned and "audit-log seq 1-" in pruned[0]["object"], "the pruning is audited with its range"

    # Verify through the API while the server keeps pruning.
    report = admin.call("audit-verify")
    assert report["valid"], report
    assert report["checkpoint"]["seq"] >= first_anchor["seq"]
    assert report["anchors_pruned"] >= 1
    out = cli("audit", "verify", "--gateway-url", srv.url, "--token", admin.token, home=tmp_path)
    assert out.returncode == 0, out.stderr

    # A window of fresh records: export through the API, then offline.
    t0 = int(time.time() * 1000)
    for _ in range(5):
        admin.get_value("/life/a")
    t1 = int(time.time() * 1000) + 1
    since, until = rfc3339(t0), rfc3339(t1)
    api_file = tmp_path / "api.jsonl"
    out = cli("audit", "export", "--since", since, "--until", until, "--output", str(api_file),
              "--gateway-url", srv.url, "--token", admin.token, home=tmp_path)
    assert out.returncode == 0, out.stderr
    srv.stop()

    expected = records(db, t0, t1)
    assert len(expected) >= 5
    got = [json.loads(line) for line in api_file.read_text().splitlines()]
    assert [r["seq"] for r in got] == expected
    assert all({"seq", "time_ms", "time", "prev_hash", "hash", "operation"} <= r.keys() for r in got)
    for a, b in zip(got, got[1:]):
        assert b["prev_hash"] == a["hash"], "exported records carry their links"
    off_file = tmp_path / "offline.jsonl"
    out = cli("audit", "export", "--data-dir", str(srv.data_dir), "--since", since, "--until", until,
              "--output", str(off_file), home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert off_file.read_text() == api_file.read_text(), "offline and API exports are identical"
    bad = cli("audit", "export", "--data-dir", str(srv.data_dir), "--since", "yesterday",
              "--output", str(tmp_path / "bad.jsonl"), home=tmp_path)
    assert bad.returncode != 0 and "since" in bad.stderr
    assert not (tmp_path / "bad.jsonl").exists(), "a refused export writes nothing"

    # Offline verify with the anchors (some inside the pruned range) passes.
    args = ["audit", "verify", "--data-dir", str(srv.data_dir), "--anchor-file", str(anchors)]
    out = cli(*args, home=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr

    # Tamper with the checkpoint: moved forward (records "pruned" without
    # the key), its time changed, or rewound to an earlier record.
    seq, hsh, time_ms, mac = checkpoint(db)
    with sqlite3.connect(db) as con:
        prev = con.execute("SELECT hash FROM audit_log WHERE seq = ?", (seq + 2,)).fetchone()[0]
    for sql, params in [
        ("records deleted and the checkpoint moved forward", None),
        ("UPDATE audit_checkpoint SET time_ms = ?", (time_ms - 1,)),
        ("UPDATE audit_checkpoint SET seq = ?", (seq - 1,)),
        ("DELETE FROM audit_checkpoint", ()),
    ]:
        backup = tmp_path / "backup.db"
        with sqlite3.connect(db) as con, sqlite3.connect(backup) as b:
            con.backup(b)
        with sqlite3.connect(db) as con:
            if params is None:
                con.execute("DELETE FROM audit_log WHERE seq <= ?", (seq + 2,))
                con.execute("UPDATE audit_checkpoint SET seq = ?, hash = ?", (seq + 2, prev))
            else:
                con.execute(sql, params)
        out = cli(*args, home=tmp_path)
        assert out.returncode != 0, f"verify passed after: {sql}"
        assert "broken" in out.stderr, out.stderr
        with sqlite3.connect(backup) as b, sqlite3.connect(db) as con:
            b.backup(con)
    assert cli(*args, home=tmp_path).returncode == 0, "restored: verify passes again"
