"""Several Coffer nodes on one PostgreSQL, a private PostgreSQL cluster a
test may stop and restart, and a client that fails over between nodes.

Standard library only: used by tests/system/test_multinode.py and by
bench/multinode.py (whose venv has no `requests`).
"""

from __future__ import annotations

import glob
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ------------------------------------------------------------- PostgreSQL

def _pg_bindir() -> Path:
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(f"{d}/initdb", os.X_OK):
            return Path(d)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError("initdb not found: apt-get install postgresql")


class PgCluster:
    """A throwaway PostgreSQL cluster on a free loopback port, owned by the
    caller: it can be stopped, killed and restarted under load."""

    def __init__(self):
        self.bindir = _pg_bindir()
        # Not under pytest's tmp dirs: their parents are 0700 root, which the
        # postgres user cannot traverse.
        self.dir = Path(tempfile.mkdtemp(prefix="coffer-pg-"))
        self.port = free_port()
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _pg(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=check)

    def start(self) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o",
                 f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200", "start")

    def stop(self, mode: str = "fast") -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------------ nodes

def post(port: int, op: str, body: dict, timeout: float = 10) -> tuple[int, object]:
    """One POST on a fresh connection: (status, decoded body). Raises
    OSError when the node cannot be reached."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", f"/{op}", json.dumps(body), {"Content-Type": "application/json"})
        r = conn.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw.decode(errors="replace")
    finally:
        conn.close()


def healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@dataclass
class Node:
    """One `coffer server` on shared storage (not --dev)."""

    binary: Path
    storage: str
    root_key_file: Path
    log_dir: Path
    name: str
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    pidfile: str | None = field(default_factory=lambda: os.environ.get("COFFER_TEST_PIDFILE"))

    @property
    def log(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def start(self, bootstrap_file: Path | None = None, wait: bool = True) -> "Node":
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} is running"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(self.binary), "server", "--storage", self.storage, "--root-key-file", str(self.root_key_file),
               "--listen", f"127.0.0.1:{self.port}", *self.extra_args]
        if bootstrap_file is not None:
            cmd += ["--bootstrap-file", str(bootstrap_file)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("COFFER_")}
        env["COFFER_LOG"] = env.get("COFFER_LOG", "info")
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        out.close()
        if self.pidfile:
            with open(self.pidfile, "a") as f:
                f.write(f"{self.proc.pid}\n")
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 60) -> None:
        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text(errors='replace')[-3000:]}")
            return healthy(self.port)
        wait_for(up, timeout, f"{self.name} to answer /health")

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM: graceful shutdown (in-flight requests drain)."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def read_bootstrap_file(path: Path) -> tuple[str, str]:
    fields = dict(line.split(":", 1) for line in path.read_text().splitlines() if ":" in line)
    return fields["access_id"].strip(), fields["access_key"].strip()


def login(port: int, access_id: str, access_key: str) -> str:
    status, out = post(port, "auth", {"access-id": access_id, "access-key": access_key,
                                      "access-type": "access_key"})
    if status != 200:
        raise RuntimeError(f"login on port {port} failed: {status} {out}")
    return out["token"]


def call(port: int, op: str, body: dict) -> object:
    status, out = post(port, op, body)
    if status != 200:
        raise RuntimeError(f"{op} on port {port} failed: {status} {out}")
    return out


# ---------------------------------------------------- a client that retries

RETRYABLE = {500, 502, 503, 504}


class FailoverClient:
    """Sends each request to its preferred node, and on a connection error
    or a 5xx to the next one, round and round until `deadline_s` passes,
    the way a load balancer with retries (or the Akeyless SDK behind one)
    would. Keeps a log of attempts for the failover gap."""

    def __init__(self, ports: list[int], deadline_s: float = 60):
        self.ports = ports
        self.deadline_s = deadline_s
        self.lock = threading.Lock()
        self.failed_attempts: list[tuple[float, int, str]] = []  # (time, port, why)

    def request(self, op: str, body: dict, prefer: int = 0) -> tuple[int, object, int]:
        """(status, body, attempts) of the first answer that is not retryable."""
        start = time.monotonic()
        attempt = 0
        while True:
            port = self.ports[(prefer + attempt) % len(self.ports)]
            attempt += 1
            try:
                status, out = post(port, op, body, timeout=10)
                if status not in RETRYABLE:
                    return status, out, attempt
                why = f"{status}"
            except OSError as e:
                why = type(e).__name__
            with self.lock:
                self.failed_attempts.append((time.monotonic(), port, why))
            if time.monotonic() - start > self.deadline_s:
                raise TimeoutError(f"{op}: no node answered within {self.deadline_s}s (last: {why})")
            # The next node at once; a pause only after every node failed.
            if attempt % len(self.ports) == 0:
                time.sleep(0.1)


class WriteLoad:
    """Threads writing new secrets through a FailoverClient, each recording
    the writes it saw acknowledged. A write retried after its first attempt
    may find its secret created already (the first attempt committed, its
    answer was lost): it is then read back and counts when the value is the
    one written."""

    def __init__(self, client: FailoverClient, token: str, prefix: str, threads: int = 4, reads: bool = True):
        self.client = client
        self.token = token
        self.prefix = prefix
        self.threads = threads
        self.reads = reads
        self.stop_flag = threading.Event()
        self.acked: list[str] = []
        self.errors: list[str] = []
        self.requests = 0
        self.lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def _run(self, tid: int) -> None:
        i = 0
        while not self.stop_flag.is_set():
            name = f"{self.prefix}/{tid}/{i}"
            value = f"value-{tid}-{i}"
            try:
                status, out, attempts = self.client.request(
                    "create-secret", {"name": name, "value": value, "token": self.token}, prefer=tid)
                ok = status == 200
                if not ok and attempts > 1 and status == 409:
                    s2, got, _ = self.client.request(
                        "get-secret-value", {"names": [name], "token": self.token}, prefer=tid)
                    ok = s2 == 200 and got.get(name) == value
                if not ok:
                    with self.lock:
                        self.errors.append(f"create {name}: {status} {out}")
                else:
                    with self.lock:
                        self.acked.append(name)
                if self.reads and ok:
                    s3, got, _ = self.client.request(
                        "get-secret-value", {"names": [name], "token": self.token}, prefer=tid + 1)
                    if s3 != 200 or got.get(name) != value:
                        with self.lock:
                            self.errors.append(f"read {name}: {s3} {got}")
            except TimeoutError as e:
                with self.lock:
                    self.errors.append(str(e))
            with self.lock:
                self.requests += 1
            i += 1

    def start(self) -> "WriteLoad":
        for t in range(self.threads):
            th = threading.Thread(target=self._run, args=(t,), daemon=True)
            th.start()
            self._threads.append(th)
        return self

    def stop(self) -> None:
        self.stop_flag.set()
        for th in self._threads:
            th.join(120)

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)


def missing_values(port: int, token: str, names: list[str]) -> list[str]:
    """The names among `names` that node `port` does not serve with the
    value WriteLoad wrote."""
    missing = []
    for start in range(0, len(names), 100):
        chunk = names[start:start + 100]
        status, out = post(port, "get-secret-value", {"names": chunk, "token": token}, timeout=30)
        if status != 200:
            # One missing name fails the whole call: check them one by one.
            for n in chunk:
                s, o = post(port, "get-secret-value", {"names": [n], "token": token})
                if s != 200 or o.get(n) != expected_value(n):
                    missing.append(n)
            continue
        missing += [n for n in chunk if out.get(n) != expected_value(n)]
    return missing


def expected_value(name: str) -> str:
    _, tid, i = name.rsplit("/", 2)
    return f"value-{tid}-{i}"
