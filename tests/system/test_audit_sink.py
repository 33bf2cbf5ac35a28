"""The streaming audit sink (--audit-file) and the bounded records of
anonymous floods.

* the audit file holds exactly the records the database holds (same seqs
  and hashes), rotated by size into PATH.1 … PATH.N with contiguous seqs,
  mode 0600; `--audit-file -` puts JSON lines alone on standard output;
* a flood of unauthenticated failures (bad tokens, failed logins, bodies
  refused before authentication) from one address adds a bounded number
  of records: a few of their own per (address, operation, status), then
  aggregate records whose counts add up to what was sent; failed logins
  against a real access ID stay visible under that access ID; and
  `coffer audit verify` still passes.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from cofferlib import Client, coffer_bin

AGGREGATE = re.compile(r"^suppressed (\d+) similar unauthenticated failures from (\S+)")


def offline_records(data_dir: Path) -> list[dict]:
    """Every record in the stopped server's store, read with `coffer audit list`."""
    out, after = [], 0
    while True:
        p = subprocess.run(
            [str(coffer_bin()), "audit", "list", "--data-dir", str(data_dir), "--json",
             "--limit", "10000", "--after-seq", str(after)],
            capture_output=True, text=True, timeout=120,
        )
        assert p.returncode == 0, p.stderr
        page = json.loads(p.stdout)
        recs = page.get("records") or []
        out.extend(recs)
        if len(recs) < 10000:
            return out
        after = recs[-1]["seq"]


def verify_offline(data_dir: Path) -> None:
    p = subprocess.run([str(coffer_bin()), "audit", "verify", "--data-dir", str(data_dir)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"audit verify failed:\n{p.stdout}\n{p.stderr}"


def file_records(*paths: Path) -> list[dict]:
    recs = []
    for p in paths:
        for line in p.read_text().splitlines():
            recs.append(json.loads(line))
    return recs


def some_traffic(srv, n: int = 20) -> None:
    admin = srv.admin_client()
    for i in range(n):
        admin.create_secret(f"/sink/s{i}", f"value-{i}")
        admin.call("get-secret-value", {"names": [f"/sink/s{i}"]})
    # A few refusals too (each keeps its own record: far below the burst).
    assert Client(srv.url).raw("list-items", {"token": "t-bogus"}).status_code == 401
    assert Client(srv.url).raw("auth", {"access-id": "p-nobody", "access-key": "x"}).status_code == 401


def test_audit_file_holds_exactly_the_database_records(server_factory, tmp_path):
    path = tmp_path / "audit" / "audit.jsonl"
    path.parent.mkdir()
    srv = server_factory(extra_args=["--audit-file", str(path)]).start(expect_credentials=True)
    some_traffic(srv)
    assert srv.stop() == 0
    db = offline_records(srv.data_dir)
    lines = file_records(path)
    assert [r["seq"] for r in lines] == [r["seq"] for r in db]
    assert [(r["hash"], r["prev_hash"]) for r in lines] == [(r["hash"], r["prev_hash"]) for r in db]
    for line, rec in zip(lines, db):
        assert {k: line.get(k) for k in rec} == rec, "a line differs from the record audit list shows"
    for field in ("seq", "time", "request_id", "operation", "object", "outcome", "status", "error",
                  "access_id", "auth_method", "identity", "peer", "hash", "prev_hash"):
        assert field in lines[-1], field
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # No secret value in the file.
    text = path.read_text()
    assert "value-1" not in text and srv.admin.access_key not in text

    # Restarted, the sink resumes after the last line: no gap, no repeat.
    srv.start(expect_credentials=False)
    srv.admin_client().call("list-items", {"path": "/"})
    assert srv.stop() == 0
    db = offline_records(srv.data_dir)
    lines = file_records(path)
    assert [r["seq"] for r in lines] == [r["seq"] for r in db]
    verify_offline(srv.data_dir)


def test_rotation_keeps_n_files_with_contiguous_seqs(server_factory, tmp_path):
    path = tmp_path / "audit.jsonl"
    srv = server_factory(extra_args=[
        "--audit-file", str(path), "--audit-file-max-bytes", "8192", "--audit-file-keep", "3",
    ]).start(expect_credentials=True)
    some_traffic(srv, n=60)
    assert srv.stop() == 0
    files = [path.with_name(f"audit.jsonl.{n}") for n in (3, 2, 1)] + [path]
    for f in files:
        assert f.exists(), f"{f.name} missing"
        assert f.stat().st_size <= 8192, f"{f.name} is {f.stat().st_size} bytes"
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f.name
    assert not path.with_name("audit.jsonl.4").exists(), "more rotated files kept than --audit-file-keep"
    seqs = [r["seq"] for r in file_records(*files)]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "seqs are not contiguous across the files"
    db = offline_records(srv.data_dir)
    assert seqs[-1] == db[-1]["seq"]
    assert seqs[0] > 1, "nothing was rotated away"


def test_audit_file_dash_writes_json_lines_to_stdout(server_factory):
    srv = server_factory()
    srv.start(expect_credentials=True)
    assert srv.stop() == 0
    srv.extra_args = ["--audit-file", "-"]
    srv.start(expect_credentials=False)
    some_traffic(srv, n=3)
    assert srv.stop() == 0
    out = srv.current_stdout()
    lines = out.splitlines()
    assert lines, "nothing on standard output"
    recs = [json.loads(line) for line in lines]  # every line is a record, nothing else
    seqs = [r["seq"] for r in recs]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert seqs[-1] == offline_records(srv.data_dir)[-1]["seq"]
    # The start-up lines went to standard error.
    assert "Coffer listening on" in srv.stderr_path.read_text()


def flood(url: str, jobs: list[tuple[str, dict | bytes]], workers: int = 8) -> Counter:
    """Send every (op, body) once; count the answers by (op, status)."""
    def run(chunk):
        s = requests.Session()
        seen = Counter()
        for op, body in chunk:
            if isinstance(body, bytes):
                r = s.post(f"{url}/{op}", data=body, headers={"Content-Type": "application/json"})
            else:
                r = s.post(f"{url}/{op}", json=body)
            seen[(op, r.status_code)] += 1
        return seen

    chunks = [jobs[i::workers] for i in range(workers)]
    total = Counter()
    with ThreadPoolExecutor(workers) as ex:
        for c in ex.map(run, chunks):
            total.update(c)
    return total


def test_anonymous_flood_adds_a_bounded_number_of_records(server_factory, tmp_path):
    path = tmp_path / "audit.jsonl"
    srv = server_factory(extra_args=["--audit-file", str(path)]).start(expect_credentials=True)
    admin = srv.admin_client()  # logged in before the back-off locks the admin's ID
    head = admin.audit()[-1]["seq"]
    admin_id = srv.admin.access_id
    jobs: list[tuple[str, dict | bytes]] = []
    jobs += [("get-secret-value", {"names": ["/x"], "token": f"t-{i:032x}"}) for i in range(2000)]
    jobs += [("list-items", {"path": "/"})] * 1000                     # no token at all
    jobs += [("auth", {"access-id": f"p-unknown{i}", "access-key": "k"}) for i in range(1000)]
    jobs += [("create-secret", b'{"name": "/h/x", "value": ')] * 500   # 400 before authentication
    jobs += [("auth", {"access-id": admin_id, "access-key": "wrong"})] * 500  # real access ID
    sent = flood(srv.url, jobs)
    assert sum(sent.values()) == 5000
    assert sent[("get-secret-value", 401)] == 2000
    assert sent[("list-items", 401)] == 1000
    assert sent[("create-secret", 400)] == 500
    # The real access ID is refused (401, and 429 once the back-off starts).
    assert sent[("auth", 401)] + sent[("auth", 429)] == 1500
    # Authenticated work is recorded as before.
    admin.call("list-items", {"path": "/"})
    assert srv.stop() == 0  # graceful: pending counts are written now

    verify_offline(srv.data_dir)
    recs = [r for r in offline_records(srv.data_dir) if r["seq"] > head]
    assert len(recs) < 600, f"{len(recs)} records for 5000 anonymous failures"
    # Own records plus aggregate counts account for every request sent.
    own, aggregated = Counter(), Counter()
    for r in recs:
        m = AGGREGATE.match(r["error"])
        key = (r["operation"], r["status"])
        if m:
            aggregated[key] += int(m.group(1))
            assert r["status"] == key[1] and r["operation"] == key[0]
        elif r["outcome"] != "allowed":
            own[key] += 1
    for key, n in sent.items():
        assert own[key] + aggregated[key] == n, f"{key}: {own[key]} own + {aggregated[key]} counted != {n} sent"
        assert aggregated[key] > 0, f"{key}: nothing aggregated"
    # Anonymous failures of one address: a few own records per key and window.
    assert own[("get-secret-value", 401)] <= 2 * 10
    # Unknown access IDs aggregate by address, not per made-up ID.
    anon_auth = [r for r in recs if r["operation"] == "auth" and AGGREGATE.match(r["error"])
                 and r["access_id"] == ""]
    assert anon_auth and all(r["peer"] == "127.0.0.1" for r in anon_auth)
    # Failed logins against the real access ID stay visible under it.
    mine = [r for r in recs if r["operation"] == "auth" and r["access_id"] == admin_id]
    assert any(r["status"] == 401 and not AGGREGATE.match(r["error"]) for r in mine)
    agg = [r for r in mine if AGGREGATE.match(r["error"])]
    assert agg, "no aggregate record for the real access ID"
    assert all(f"access ID {admin_id}" in r["error"] and "127.0.0.1" in r["peer"] for r in agg)
    # The audit file got the aggregates too, and equals the database.
    lines = file_records(path)
    db = offline_records(srv.data_dir)
    assert [r["seq"] for r in lines] == [r["seq"] for r in db]


def reads(srv, n: int) -> None:
    """n reads of a listing by the admin (one record each)."""
    admin = srv.admin_client()
    for _ in range(n):
        admin.call("list-items", {"path": "/"})


def test_disk_full_loses_nothing_once_space_is_back(server_factory, tmp_path):
    """The audit file on a full file system: writes fail and are retried
    from the database, no partial line stays behind, and once space is back
    the file catches up with exactly the database's records. Needs root (a
    small tmpfs mounted for this test only)."""
    import pytest

    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    srv = None
    try:
        path = mnt / "audit.jsonl"
        srv = server_factory(extra_args=["--audit-file", str(path)]).start(expect_credentials=True)
        reads(srv, 3)
        # Fill the file system to the last bytes.
        filler = mnt / "filler"
        with open(filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 512)
            except OSError:
                pass
        reads(srv, 10)
        # The failure is logged and retried (back-off starts at 1 s).
        import time

        deadline = time.time() + 20
        while "audit file write failed" not in srv.stderr_path.read_text() and time.time() < deadline:
            time.sleep(0.2)
        assert "audit file write failed" in srv.stderr_path.read_text()
        filler.unlink()
        reads(srv, 2)
        # The retry (back-off at most a few seconds here) catches up.
        recs = srv.admin_client().call("audit-list", {"limit": 10000})["records"]
        after = recs[-1]["seq"]
        deadline = time.time() + 60
        while time.time() < deadline:
            if path.exists() and path.read_text().endswith("\n") and \
                    file_records(path) and file_records(path)[-1]["seq"] >= after:
                break
            time.sleep(0.5)
        assert srv.stop() == 0
        db = offline_records(srv.data_dir)
        lines = file_records(path)  # every line parses: no partial line left
        assert [r["seq"] for r in lines] == [r["seq"] for r in db]
    finally:
        if srv is not None:
            srv.stop()
        subprocess.run(["umount", str(mnt)], check=False)
