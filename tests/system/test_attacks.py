"""The hostile review's attacks (issue 9), against the real binary on
loopback: clients that half-close their connection mid-request, slow-loris
under a low file limit, audit tail truncation and wiping (with anchors), the
root key in /proc/PID/environ, and two nodes bootstrapping one fresh
PostgreSQL database at the same time.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import struct
import subprocess
import threading
import time
from pathlib import Path

import requests

from cofferlib import ApiError, Client, free_port, poll, server_env, coffer_bin, _remember_pid


def request_bytes(port: int, op: str, body: dict) -> bytes:
    import json

    data = json.dumps(body).encode()
    head = (
        f"POST /{op} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    return head + data


def half_close(port: int, op: str, body: dict, reset: bool) -> None:
    """Send a whole request, half-close (FIN), and go away without reading
    the answer; with `reset`, abort the connection (RST) instead."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(request_bytes(port, op, body))
        s.shutdown(socket.SHUT_WR)
        if reset:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        s.close()


def storm(port: int, requests_: list[tuple[str, dict]]) -> None:
    """Fire every request from several threads at once, half-closing each."""
    threads = []
    for i in range(8):
        part = requests_[i::8]

        def go(part=part, i=i):
            for n, (op, body) in enumerate(part):
                half_close(port, op, body, reset=(n + i) % 3 == 0)

        threads.append(threading.Thread(target=go))
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def settle(admin: Client, seconds: float = 1.0) -> None:
    """Wait until the audit log stops growing (abandoned requests finish;
    reading the log adds audit-list records, which do not count)."""
    last = -1
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        head = max((r["seq"] for r in admin.audit() if r["operation"] != "audit-list"), default=0)
        if head == last:
            return
        last = head
        time.sleep(seconds)
    raise TimeoutError("the audit log kept growing for 30 s")


def test_half_closed_writes_are_all_audited(server, admin):
    port = server.port
    token = admin.token
    storm(port, [("create-secret", {"token": token, "name": f"/storm/{i}", "value": "v"}) for i in range(200)])
    admin.call("create-role", {"name": "/storm-role"})
    storm(port, [("set-role-rule", {"token": token, "role-name": "/storm-role", "path": f"/s{i}/*",
                                    "capability": ["read"]}) for i in range(86)])
    settle(admin)

    items = {i["item_name"] for i in (admin.call("list-items", {"path": "/storm"}).get("items") or [])}
    created = {r["object"] for r in admin.audit(operation="create-secret", outcome="allowed")}
    assert items, "no request of the storm got through at all"
    missing = items - created
    assert not missing, f"{len(missing)} of {len(items)} secrets were created without an audit record"
    assert created <= items, "an audited creation left no secret"

    role = admin.call("get-role", {"name": "/storm-role"})
    rules = {r["path"] for r in role["rules"]["path_rules"]}
    granted = {r["object"].split(" ")[-1] for r in admin.audit(operation="set-role-rule", outcome="allowed")
               if r["object"].startswith("/storm-role ")}
    assert rules - granted == set(), f"{len(rules - granted)} grants without an audit record"
    assert admin.call("audit-verify", {})["valid"] is True


def test_half_closed_revocations_take_effect(server, admin):
    """A deleted rule, a revoked token and a deleted auth method stop at once
    even when the client that asked went away before the answer."""
    admin.create_secret("/rev/x", "v")
    creds = admin.new_reader("revokee", "/rev/*", caps=("read",))
    reader = Client(server.url)
    reader.login(creds.access_id, creds.access_key)
    assert reader.get_value("/rev/x") == "v"

    def abandoned(op: str, body: dict):
        before = len(admin.audit(operation=op, outcome="allowed"))
        half_close(server.port, op, body, reset=False)
        poll(lambda: len(admin.audit(operation=op, outcome="allowed")) > before, 10, f"{op} to finish")

    abandoned("delete-role-rule", {"token": admin.token, "role-name": "/role/revokee", "path": "/rev/*"})
    assert reader.raw("get-secret-value", {"names": ["/rev/x"]}).status_code == 403

    other = Client(server.url)
    other.login(creds.access_id, creds.access_key)
    abandoned("revoke-token", {"token": other.token})
    assert other.raw("get-secret-value", {"names": ["/rev/x"]}).status_code == 401

    abandoned("delete-auth-method", {"token": admin.token, "name": "/am/revokee"})
    assert Client(server.url).raw("auth", {"access-id": creds.access_id, "access-key": creds.access_key},
                                  token=False).status_code == 401
    assert reader.raw("get-secret-value", {"names": ["/rev/x"]}).status_code == 401


class Loris:
    """Slow-loris attackers: connections that send a few header bytes and
    then trickle one more now and then, replaced whenever the server
    closes them, for as long as the attack runs."""

    def __init__(self, port: int, count: int, source: str):
        self.port, self.count, self.source = port, count, source
        self.socks: list[socket.socket] = []
        self.stop = threading.Event()
        self.opened = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def connect(self):
        try:
            s = socket.socket()
            s.bind((self.source, 0))
            s.settimeout(2)
            s.connect(("127.0.0.1", self.port))
            s.sendall(b"POST /auth HTTP/1.1\r\nHost: x\r\n")
            s.setblocking(False)
            self.socks.append(s)
            self.opened += 1
        except OSError:
            pass

    def run(self):
        while len(self.socks) < self.count and not self.stop.is_set():
            self.connect()
        while not self.stop.is_set():
            alive = []
            for s in self.socks:
                try:
                    s.send(b"X")
                    alive.append(s)
                except OSError:
                    s.close()
            self.socks = alive
            while len(self.socks) < self.count and not self.stop.is_set():
                self.connect()
            self.stop.wait(0.5)

    def start(self):
        self.thread.start()
        poll(lambda: self.opened >= self.count, 60, "the attack's connections to open")

    def end(self):
        self.stop.set()
        self.thread.join(10)
        for s in self.socks:
            s.close()


def get_from(source: str, url: str, body: dict, timeout: float = 5) -> int:
    """POST from a given local address; returns the status."""
    import http.client
    import json
    from urllib.parse import urlparse

    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request("POST", u.path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        return conn.getresponse().status
    finally:
        conn.close()


def test_slow_loris_cannot_starve_the_server(server_factory):
    srv = server_factory(rlimit_nofile=256).start(expect_credentials=True)
    admin = srv.admin_client()
    admin.create_secret("/loris/x", "v")
    loris = Loris(srv.port, 300, "127.0.0.1")
    loris.start()
    try:
        ok = 0
        started = time.monotonic()
        for i in range(20):
            for source in ("127.0.0.1", "127.0.0.2"):
                t0 = time.monotonic()
                status = get_from(source, f"{srv.url}/get-secret-value",
                                  {"token": admin.token, "names": ["/loris/x"]})
                assert status == 200, f"request {i} from {source}: HTTP {status}"
                assert time.monotonic() - t0 < 5
                ok += 1
        assert ok == 40
        # The attack kept going all along (its connections are replaced as
        # the server sheds them) and the server is still up.
        assert loris.opened >= 300
        assert srv.proc.poll() is None
        print(f"40 requests served in {time.monotonic() - started:.1f}s under 300 slow connections; "
              f"the attack opened {loris.opened} connections")
    finally:
        loris.end()


def verify_offline(data_dir: Path, anchor_file: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [str(coffer_bin()), "audit", "verify", "--data-dir", str(data_dir)]
    if anchor_file is not None:
        cmd += ["--anchor-file", str(anchor_file)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=server_env())


def head(db_file: Path) -> tuple[int, bytes, bytes]:
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True) as db:
        return db.execute("SELECT seq, hash, mac FROM audit_head WHERE id = 1").fetchone()


def test_tail_truncation_and_wipes_are_detected(server_factory, tmp_path):
    anchors = tmp_path / "anchors.jsonl"
    srv = server_factory(extra_args=["--audit-anchor-file", str(anchors), "--audit-anchor-interval", "1"])
    srv.start(expect_credentials=True)
    admin = srv.admin_client()
    admin.create_secret("/trunc/a", "v")
    db = srv.data_dir / "coffer.db"
    # An older, genuine head (as a backup would hold it).
    old_seq, old_hash, old_mac = head(db)
    for i in range(5):
        admin.get_value("/trunc/a")
    last = max(r["seq"] for r in admin.audit())
    poll(lambda: anchors.exists() and any(f'"seq":{s}' in anchors.read_text() for s in range(last, last + 20)),
         15, "an anchor at the head")
    srv.stop()
    assert verify_offline(srv.data_dir, anchors).returncode == 0

    def scenario(name: str, *sql: tuple[str, tuple]) -> Path:
        copy = tmp_path / name
        shutil.copytree(srv.data_dir, copy)
        with sqlite3.connect(copy / "coffer.db") as c:
            for stmt, args in sql:
                c.execute(stmt, args)
        return copy

    # (1) Records removed from the end, head pointed at the new last record
    #     without the key: the head's MAC gives it away.
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        k_seq, k_hash = c.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1 OFFSET 3").fetchone()
    forged = scenario("forged", ("DELETE FROM audit_log WHERE seq > ?", (k_seq,)),
                      ("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (k_seq, k_hash)))
    out = verify_offline(forged)
    assert out.returncode != 0 and "MAC" in out.stdout + out.stderr, out.stdout + out.stderr

    # (2) The tail removed and an older genuine head put back: only an
    #     anchor kept outside the database can tell.
    replayed = scenario("replayed", ("DELETE FROM audit_log WHERE seq > ?", (old_seq,)),
                        ("UPDATE audit_head SET seq = ?, hash = ?, mac = ? WHERE id = 1",
                         (old_seq, old_hash, old_mac)))
    out = verify_offline(replayed, anchors)
    assert out.returncode != 0 and "removed from the end" in out.stdout + out.stderr, out.stdout + out.stderr

    # (3) The whole log wiped and the head reset to its first state.
    wiped = scenario("wiped", ("DELETE FROM audit_log", ()),
                     ("UPDATE audit_head SET seq = 0, hash = x'', mac = x'' WHERE id = 1", ()))
    out = verify_offline(wiped)
    assert out.returncode != 0 and "wiped" in out.stdout + out.stderr, out.stdout + out.stderr

    # The server itself checks the anchors it wrote: started on the
    # replayed copy, its online verify fails too.
    shutil.rmtree(srv.data_dir)
    shutil.copytree(replayed, srv.data_dir)
    srv.start(expect_credentials=False)
    report = srv.admin_client().call("audit-verify", {})
    assert report["valid"] is False and "removed from the end" in report["error"], report


def test_root_key_is_not_left_in_the_process_environment(server_factory):
    key = os.urandom(32).hex()
    srv = server_factory(env={"COFFER_ROOT_KEY": key}).start(expect_credentials=True)
    environ = Path(f"/proc/{srv.proc.pid}/environ").read_bytes()
    assert b"COFFER_ROOT_KEY=" not in environ
    assert key.encode() not in environ
    assert not (srv.data_dir / "root.key").exists(), "the key came from the environment, not a file"
    admin = srv.admin_client()
    admin.create_secret("/env/x", "v")
    # The same key opens the same data after a restart.
    srv.stop()
    srv.start(expect_credentials=False)
    assert srv.admin_client().get_value("/env/x") == "v"


def try_login(client, access_id: str, access_key: str) -> bool:
    try:
        client.login(access_id, access_key)
        return True
    except ApiError as e:
        if e.status != 401:
            raise
        return False


def test_two_nodes_bootstrap_one_fresh_postgres(fresh_postgres, tmp_path):
    key_file = tmp_path / "root.key"
    key_file.write_text(os.urandom(32).hex())
    key_file.chmod(0o600)
    nodes = []
    for n in range(2):
        port = free_port()
        out = open(tmp_path / f"node{n}.out", "wb")
        proc = subprocess.Popen(
            [str(coffer_bin()), "server", "--storage", fresh_postgres, "--root-key-file", str(key_file),
             "--listen", f"127.0.0.1:{port}", "--bootstrap-file", str(tmp_path / f"node{n}.creds")],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=server_env())
        _remember_pid(proc.pid)
        nodes.append((proc, port, tmp_path / f"node{n}.out"))
    try:
        def healthy(proc, port, log):
            if proc.poll() is not None:
                raise RuntimeError(f"node exited: {log.read_text()[-2000:]}")
            try:
                return requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok
            except requests.ConnectionError:
                return False

        for proc, port, log in nodes:
            poll(lambda: healthy(proc, port, log), 60, "both nodes to start")
        # Without --dev the credentials go to each node's --bootstrap-file;
        # the node that did not bootstrap removes its (empty) file.
        def creds(n):
            f = tmp_path / f"node{n}.creds"
            return f.read_text() if f.exists() else ""

        poll(lambda: any("access_key:" in creds(n) for n in range(2)), 10, "the bootstrap file")
        poll(lambda: sum((tmp_path / f"node{n}.creds").exists() for n in range(2)) == 1, 10,
             "the other node to remove its empty bootstrap file")
        with_creds = [creds(n) for n in range(2) if "access_key:" in creds(n)]
        assert len(with_creds) == 1, "exactly one node bootstraps and writes the admin credentials"
        assert not any("access_key" in p.read_text() for _, _, p in nodes), "never in the output"
        access_id = with_creds[0].split("access_id:")[1].split()[0]
        access_key = with_creds[0].split("access_key:")[1].split()[0]
        a, b = (Client(f"http://127.0.0.1:{port}") for _, port, _ in nodes)
        a.login(access_id, access_key)
        # The other node sees the bootstrap when its policy refresh (every
        # second) notices the generation moved.
        poll(lambda: try_login(b, access_id, access_key), 10, "the other node to accept the admin")
        a.create_secret("/boot/x", "from-a")
        assert b.get_value("/boot/x") == "from-a", "both nodes use the same data key"
        assert a.call("audit-verify", {})["valid"] is True
    finally:
        for proc, _, _ in nodes:
            proc.terminate()
            proc.wait(20)
