"""`coffer operator`: backup/restore under write load, root-key rotation
(restart with the new key, refusal of the old one, kill -9 mid-way), data-key
rotation under a serving node, the same rotations on PostgreSQL, and the
production bootstrap file."""

import os
import random
import shutil
import signal
import sqlite3
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from cofferlib import Client, CofferServer, coffer_bin, free_port, poll, server_env


def coffer(*args, env=None, check=True, timeout=120):
    out = subprocess.run([str(coffer_bin()), *map(str, args)], capture_output=True, text=True,
                         env={**server_env(), **(env or {})}, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"coffer {' '.join(map(str, args))} failed ({out.returncode}):\n"
                             f"{out.stdout}\n{out.stderr}")
    return out


def audit_verify(*where):
    out = coffer("audit", "verify", *where, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def copy_key(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    dst.chmod(0o600)
    return dst


def started(tmp_path: Path, name: str, **kw) -> CofferServer:
    return CofferServer(data_dir=tmp_path / name, log_dir=tmp_path / f"{name}-logs", **kw).start()


# ---- backup and restore ----

def test_backup_under_write_load_then_restore(tmp_path):
    srv = started(tmp_path, "data")
    try:
        admin = srv.admin_client()
        admin.create_secret("/before/one", "1")
        acked: list[tuple[float, str]] = []  # (time acknowledged, name)
        stop = threading.Event()
        errors = []

        def writer(w: int):
            c = Client(srv.url, admin.token)
            i = 0
            while not stop.is_set():
                name = f"/load/w{w}/s{i}"
                try:
                    c.create_secret(name, f"value-{w}-{i}")
                    acked.append((time.monotonic(), name))
                except Exception as e:  # noqa: BLE001 - recorded, asserted below
                    errors.append(repr(e))
                i += 1

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
        for t in threads:
            t.start()
        poll(lambda: len(acked) >= 200, 60, "200 acknowledged writes")
        backup_started = time.monotonic()
        out = coffer("operator", "backup", "--data-dir", srv.data_dir, "--to", tmp_path / "b.db")
        time.sleep(0.3)  # writes go on after the backup too
        stop.set()
        for t in threads:
            t.join(30)
        assert not errors, errors[:3]
        assert "does NOT contain the root key" in out.stdout
        assert "audit chain verified" in out.stdout, out.stdout
        assert stat.S_IMODE((tmp_path / "b.db").stat().st_mode) == 0o600
        before = [n for t, n in acked if t < backup_started]
        after = [n for t, n in acked if t > backup_started]
        assert len(before) >= 200 and after, "the backup ran while writes were acknowledged"

        # A non-empty directory is refused and left as it is.
        busy = tmp_path / "busy"
        busy.mkdir()
        (busy / "x").write_text("x")
        out = coffer("operator", "restore", "--from", tmp_path / "b.db", "--data-dir", busy, check=False)
        assert out.returncode != 0 and "not empty" in out.stderr
        assert os.listdir(busy) == ["x"]

        new = tmp_path / "restored"
        out = coffer("operator", "restore", "--from", tmp_path / "b.db", "--data-dir", new,
                     "--root-key-file", srv.data_dir / "root.key")
        assert "audit chain verified" in out.stdout, out.stdout
        copy_key(srv.data_dir / "root.key", new / "root.key")
    finally:
        srv.stop()
    audit_verify("--data-dir", new)
    restored = CofferServer(data_dir=new, log_dir=tmp_path / "restored-logs").start(expect_credentials=False)
    try:
        c = restored.client()
        c.login(srv.admin.access_id, srv.admin.access_key)
        assert c.get_value("/before/one") == "1"
        names = before + ["/before/one"]
        values = {}
        for i in range(0, len(names), 100):
            values.update(c.get_values(names[i:i + 100]))
        missing = [n for n in before if n not in values]
        assert not missing, f"{len(missing)} writes acknowledged before the backup are missing: {missing[:5]}"
    finally:
        restored.stop()
    audit_verify("--data-dir", new)


def test_backup_refuses_postgres_and_existing_files(tmp_path):
    out = coffer("operator", "backup", "--storage", "postgres://coffer@127.0.0.1:1/coffer",
                 "--to", tmp_path / "x.db", check=False)
    assert out.returncode != 0 and "pg_dump" in out.stderr
    assert not (tmp_path / "x.db").exists()
    srv = started(tmp_path, "data")
    srv.stop()
    (tmp_path / "exists.db").write_text("keep me")
    out = coffer("operator", "backup", "--data-dir", srv.data_dir, "--to", tmp_path / "exists.db", check=False)
    assert out.returncode != 0 and "never overwrites" in out.stderr
    assert (tmp_path / "exists.db").read_text() == "keep me"


# ---- root-key rotation ----

def test_root_key_rotation_online_then_restart(tmp_path):
    srv = started(tmp_path, "data")
    old_key = copy_key(srv.data_dir / "root.key", tmp_path / "old.key")
    try:
        admin = srv.admin_client()
        admin.create_secret("/rk/a", "alpha")
        reader = admin.new_reader("rkreader", "/rk/*")
        rc = srv.client()
        rc.login(reader.access_id, reader.access_key)
        token = rc.token
        # Online: the running server keeps its keys in memory.
        out = coffer("operator", "rotate-root-key", "--data-dir", srv.data_dir,
                     "--new-root-key-file", tmp_path / "new.key")
        assert "Root key rotated" in out.stdout and "Replaced" in out.stdout, out.stdout
        assert stat.S_IMODE((tmp_path / "new.key").stat().st_mode) == 0o600
        assert (srv.data_dir / "root.key").read_text() == (tmp_path / "new.key").read_text()
        admin.create_secret("/rk/b", "beta")
        assert rc.get_value("/rk/a") == "alpha"
    finally:
        srv.stop()
    audit_verify("--data-dir", srv.data_dir)
    # The old key no longer opens the store, with a message saying so.
    bad = CofferServer(data_dir=srv.data_dir, log_dir=tmp_path / "bad-logs", port=srv.port,
                       extra_args=["--root-key-file", str(old_key)])
    with pytest.raises(RuntimeError):
        bad.start(expect_credentials=False)
    assert "wrong root key" in bad.stderr_path.read_text()
    out = coffer("operator", "key-status", "--data-dir", srv.data_dir, "--root-key-file", old_key, check=False)
    assert out.returncode != 0 and "wrong root key" in out.stderr
    # The new key (now the data dir's root.key): access keys, tokens,
    # secrets and the audit chain all still work.
    srv.proc = None
    srv.start(expect_credentials=False)
    try:
        assert Client(srv.url, token).get_value("/rk/a") == "alpha"
        c = srv.client()
        c.login(reader.access_id, reader.access_key)
        assert c.get_value("/rk/b") == "beta"
        admin = srv.admin_client()
        assert admin.call("audit-verify", {})["valid"] is True
    finally:
        srv.stop()
    audit_verify("--data-dir", srv.data_dir)


def opens(data_dir: Path, key: Path) -> bool:
    return coffer("operator", "key-status", "--data-dir", data_dir, "--root-key-file", key,
                  check=False).returncode == 0


def test_rotate_root_key_killed_at_random_moments(tmp_path):
    """kill -9 during rotate-root-key, 30 times: the store always opens with
    exactly one of the two keys and its audit chain verifies. A test-only
    delay between the steps (COFFER_TEST_ROTATE_STEP_DELAY_MS, also between
    the statements of the one transaction) makes kills land mid-way."""
    srv = started(tmp_path, "data")
    admin = srv.admin_client()
    for i in range(20):
        admin.create_secret(f"/crash/s{i}", f"v{i}")
    srv.stop()
    # A second data key, so the transaction re-wraps more than one row.
    coffer("operator", "rotate-data-key", "--data-dir", srv.data_dir, "--wait", "0")
    cur = copy_key(srv.data_dir / "root.key", tmp_path / "key0.key")
    rng = random.Random(12)
    env = {"COFFER_TEST_ROTATE_STEP_DELAY_MS": "60"}
    n, rotated, killed_midway = 1, 0, 0
    for attempt in range(30):
        new = tmp_path / f"key{n}.key"
        proc = subprocess.Popen([str(coffer_bin()), "operator", "rotate-root-key", "--data-dir",
                                 str(srv.data_dir), "--root-key-file", str(cur), "--new-root-key-file", str(new)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**server_env(), **env})
        time.sleep(rng.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if proc.returncode == -signal.SIGKILL:
            killed_midway += 1
        if not new.exists():
            assert opens(srv.data_dir, cur), f"attempt {attempt}: the old key must still open the store"
            continue
        with_old, with_new = opens(srv.data_dir, cur), opens(srv.data_dir, new)
        assert with_old != with_new, f"attempt {attempt}: old opens={with_old} new opens={with_new}"
        good = cur if with_old else new
        audit_verify("--data-dir", srv.data_dir, "--root-key-file", good)
        if with_new:
            # The same command again (the operator cannot tell whether it
            # committed): it sees the store uses the new key, changes nothing.
            again = coffer("operator", "rotate-root-key", "--data-dir", srv.data_dir,
                           "--root-key-file", cur, "--new-root-key-file", new)
            assert "already uses the new root key" in again.stdout, again.stdout
            assert opens(srv.data_dir, new) and not opens(srv.data_dir, cur)
            cur, n, rotated = new, n + 1, rotated + 1
        # No temporary copy of a key is left behind by a finished run.
        assert not list(tmp_path.glob(".key*.tmp")) or proc.returncode == -signal.SIGKILL
    assert killed_midway >= 10, f"only {killed_midway} kills landed before the command finished"
    # Finish one rotation and start the server with the final key.
    final = tmp_path / "final.key"
    coffer("operator", "rotate-root-key", "--data-dir", srv.data_dir, "--root-key-file", cur,
           "--new-root-key-file", final)
    copy_key(final, srv.data_dir / "root.key")
    srv.start(expect_credentials=False)
    try:
        c = srv.admin_client()
        assert all(c.get_value(f"/crash/s{i}") == f"v{i}" for i in range(20))
        assert c.call("audit-verify", {})["valid"] is True
    finally:
        srv.stop()
    print(f"kills: {killed_midway} mid-way, {rotated} after commit")


# ---- data-key rotation ----

def key_ids(db: Path) -> tuple[dict, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        per_key = dict(conn.execute("SELECT key_id, COUNT(*) FROM item_versions GROUP BY key_id").fetchall())
        newest = conn.execute("SELECT id FROM data_keys ORDER BY created_ms DESC, id DESC LIMIT 1").fetchone()[0]
        return per_key, newest
    finally:
        conn.close()


def test_rotate_data_key_under_reads_and_writes(tmp_path):
    srv = started(tmp_path, "data")
    try:
        admin = srv.admin_client()
        names = [f"/dk/s{i}" for i in range(300)]
        for name in names:
            admin.create_secret(name, name + "-v")
        per_key, first = key_ids(srv.data_dir / "coffer.db")
        assert list(per_key) == [first]
        stop = threading.Event()
        failures, reads, writes = [], [0], [0]

        def reader():
            c = Client(srv.url, admin.token)
            r = random.Random()
            while not stop.is_set():
                name = r.choice(names)
                try:
                    assert c.get_value(name).startswith(name)
                    reads[0] += 1
                except Exception as e:  # noqa: BLE001
                    failures.append(f"read {name}: {e!r}")

        def writer():
            c = Client(srv.url, admin.token)
            i = 0
            while not stop.is_set():
                try:
                    c.update_secret(names[i % len(names)], f"{names[i % len(names)]}-w{i}")
                    c.create_secret(f"/dk/new{i}", "n")
                    writes[0] += 2
                except Exception as e:  # noqa: BLE001
                    failures.append(f"write {i}: {e!r}")
                i += 1

        threads = [threading.Thread(target=reader) for _ in range(3)] + [threading.Thread(target=writer)]
        for t in threads:
            t.start()
        out = coffer("operator", "rotate-data-key", "--data-dir", srv.data_dir, "--batch-size", "50",
                     "--wait", "3")
        stop.set()
        for t in threads:
            t.join(30)
        assert not failures, failures[:5]
        assert reads[0] > 100 and writes[0] > 10
        assert "re-sealed" in out.stdout and "Every value is sealed" in out.stdout, out.stdout
        per_key, newest = key_ids(srv.data_dir / "coffer.db")
        assert newest != first
        assert list(per_key) == [newest], f"values under other keys remain: {per_key}"
        assert admin.call("audit-verify", {})["valid"] is True
        assert any(r["operation"] == "rotate-data-key" for r in admin.audit(operation="rotate-data-key"))
        assert admin.get_value("/dk/s0").startswith("/dk/s0")
    finally:
        srv.stop()
    audit_verify("--data-dir", srv.data_dir)


# ---- PostgreSQL ----

class PgNode:
    def __init__(self, storage: str, key: Path, tmp: Path, creds: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"node-{self.port}.log"
        cmd = [str(coffer_bin()), "server", "--storage", storage, "--root-key-file", str(key),
               "--listen", f"127.0.0.1:{self.port}"]
        if creds is not None:
            cmd += ["--bootstrap-file", str(creds)]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=server_env())
        if pidfile := os.environ.get("COFFER_TEST_PIDFILE"):
            with open(pidfile, "a") as f:
                f.write(f"{self.proc.pid}\n")

    def wait(self):
        import requests

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited: {self.log.read_text()[-2000:]}")
            try:
                return requests.get(f"{self.url}/health", timeout=2).ok
            except requests.ConnectionError:
                return False
        poll(up, 60, "the node to start")
        return self

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


def read_creds(path: Path) -> tuple[str, str]:
    fields = dict(line.split(":", 1) for line in path.read_text().splitlines())
    return fields["access_id"].strip(), fields["access_key"].strip()


def test_rotations_on_postgres(fresh_postgres, tmp_path):
    key = tmp_path / "root.key"
    key.write_text(os.urandom(32).hex())
    key.chmod(0o600)
    node = PgNode(fresh_postgres, key, tmp_path, tmp_path / "admin.creds").wait()
    try:
        access_id, access_key = read_creds(tmp_path / "admin.creds")
        c = Client(node.url)
        c.login(access_id, access_key)
        for i in range(50):
            c.create_secret(f"/pg/s{i}", f"v{i}")
        out = coffer("operator", "rotate-data-key", "--storage", fresh_postgres, "--root-key-file", key,
                     "--wait", "3")
        assert "Every value is sealed" in out.stdout, out.stdout
        assert c.get_value("/pg/s7") == "v7"
        c.create_secret("/pg/after", "x")  # sealed with the new key by the running node
        out = coffer("operator", "rotate-root-key", "--storage", fresh_postgres, "--root-key-file", key,
                     "--new-root-key-file", tmp_path / "new.key")
        assert "Root key rotated" in out.stdout
    finally:
        node.stop()
    status = coffer("operator", "key-status", "--storage", fresh_postgres, "--root-key-file", tmp_path / "new.key")
    assert "data keys: 2" in status.stdout
    assert coffer("operator", "key-status", "--storage", fresh_postgres, "--root-key-file", key,
                  check=False).returncode != 0
    node = PgNode(fresh_postgres, tmp_path / "new.key", tmp_path).wait()
    try:
        c = Client(node.url)
        c.login(access_id, access_key)
        assert c.get_value("/pg/s49") == "v49" and c.get_value("/pg/after") == "x"
        assert c.call("audit-verify", {})["valid"] is True
    finally:
        node.stop()
    audit_verify("--storage", fresh_postgres, "--root-key-file", tmp_path / "new.key")


# ---- bootstrap file ----

def test_bootstrap_file_production(tmp_path):
    key = tmp_path / "root.key"
    key.write_text(os.urandom(32).hex())
    key.chmod(0o600)

    def run(data: str, *extra, wait=True):
        port = free_port()
        d = tmp_path / data
        d.mkdir(exist_ok=True)
        log_out, log_err = tmp_path / f"{data}.out", tmp_path / f"{data}.err"
        with open(log_out, "ab") as o, open(log_err, "ab") as e:
            p = subprocess.Popen([str(coffer_bin()), "server", "--storage", f"sqlite://{d}/coffer.db",
                                  "--root-key-file", str(key), "--listen", f"127.0.0.1:{port}", *map(str, extra)],
                                 stdout=o, stderr=e, stdin=subprocess.DEVNULL, env=server_env())
        return p, port, log_out, log_err

    # No file, no terminal: refused, naming the flag.
    p, _, out, err = run("a")
    assert p.wait(60) != 0
    assert "--bootstrap-file" in err.read_text()
    # An existing file is refused and nothing is created.
    existing = tmp_path / "existing.creds"
    existing.write_text("do not touch")
    p, _, out, err = run("a", "--bootstrap-file", existing)
    assert p.wait(60) != 0
    assert "refusing to overwrite" in err.read_text()
    assert existing.read_text() == "do not touch"
    # A new file: 0600, the two lines, and the credentials nowhere else.
    creds = tmp_path / "admin.creds"
    p, port, out, err = run("a", "--bootstrap-file", creds)
    try:
        import requests

        def up():
            if p.poll() is not None:
                raise RuntimeError(err.read_text())
            try:
                return requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok
            except requests.ConnectionError:
                return False
        poll(up, 60, "the server to start")
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        lines = creds.read_text().splitlines()
        assert [ln.split(":")[0] for ln in lines] == ["access_id", "access_key"]
        access_id, access_key = read_creds(creds)
        c = Client(f"http://127.0.0.1:{port}")
        c.login(access_id, access_key)
        c.create_secret("/boot/x", "y")
    finally:
        p.terminate()
        p.wait(20)
    for f in (out, err):
        # The access ID is no secret (request log lines name the caller's),
        # but it is not announced: only the key would make it a credential.
        text = f.read_text()
        assert access_key not in text and "access_key" not in text, f"credentials leaked into {f.name}"
        assert f"access_id: {access_id}" not in text and f"access_id:  {access_id}" not in text
    assert str(creds) in err.read_text() or str(creds) in out.read_text()
