"""Helpers shared by the Python suites: start/stop a real `coffer` server
binary on a free loopback port and talk to its wire API.

Nothing here prints secret values, access keys or tokens: the server's
stdout/stderr go to files in the test's temp dir, and assertion messages
only name items, never their values.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import shutil
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent

ACCESS_ID_RE = re.compile(r"access_id:\s+(p-\S+)")
ACCESS_KEY_RE = re.compile(r"access_key:\s+(\S+)")

# How long a server may take to answer /health (debug build, busy 2-core CI).
START_TIMEOUT = float(os.environ.get("COFFER_TEST_START_TIMEOUT", "60"))


def coffer_bin() -> Path:
    """The server binary under test: $COFFER_BIN or target/debug/coffer."""
    path = Path(os.environ.get("COFFER_BIN", REPO_ROOT / "target" / "debug" / "coffer"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"coffer binary not found at {path}: build it (cargo build -p coffer-cli) or set COFFER_BIN")
    return path


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env() -> dict[str, str]:
    """The caller's environment without COFFER_* settings, so a developer's
    shell (COFFER_STORAGE_URL, COFFER_ROOT_KEY, …) cannot change what the
    tests start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COFFER_")}
    # Debug builds append undeclared parameter reads here instead of
    # panicking (crates/coffer-server/src/wire.rs), to list them in one run.
    if "COFFER_RECORD_PARAMS" in os.environ:
        env["COFFER_RECORD_PARAMS"] = os.environ["COFFER_RECORD_PARAMS"]
    env.setdefault("RUST_BACKTRACE", "1")
    return env


def poll(predicate, timeout: float, what: str, interval: float = 0.05):
    """Call predicate() until it returns a truthy value or timeout expires."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Credentials:
    access_id: str
    access_key: str


@dataclass
class CofferServer:
    """One `coffer server --dev` process on a data dir.

    The same object can be started again after stop()/kill() on the same
    data dir and port; each start appends to the same stdout/stderr logs
    and the output of each start is kept separately in `starts`.
    """

    data_dir: Path
    log_dir: Path
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    binary: Path = field(default_factory=coffer_bin)
    # Extra environment for the server (e.g. COFFER_ROOT_KEY).
    env: dict[str, str] = field(default_factory=dict)
    # RLIMIT_NOFILE (soft and hard) for the server process, e.g. 256.
    rlimit_nofile: int | None = None
    proc: subprocess.Popen | None = None
    admin: Credentials | None = None
    starts: list[str] = field(default_factory=list)  # stdout of each start
    _stdout_offset: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / "coffer.stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / "coffer.stderr.log"

    def start(self, expect_credentials: bool | None = None) -> "CofferServer":
        """Start the server and wait until /health answers 200.

        expect_credentials: True = the bootstrap admin must be printed (first
        start), False = it must not be, None = first start iff the data dir
        is empty.
        """
        assert self.proc is None, "server already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if expect_credentials is None:
            expect_credentials = not any(self.data_dir.iterdir())
        self._stdout_offset = self.stdout_path.stat().st_size if self.stdout_path.exists() else 0
        cmd = [
            str(self.binary), "server", "--dev",
            "--data-dir", str(self.data_dir),
            "--listen", f"127.0.0.1:{self.port}",
            *self.extra_args,
        ]
        limit = self.rlimit_nofile

        def preexec():
            if limit is not None:
                import resource
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                cwd=self.log_dir, env={**server_env(), **self.env},
                preexec_fn=preexec if limit is not None else None,
            )
        # scripts/test.sh kills any PID listed here that outlives the run.
        if pidfile := os.environ.get("COFFER_TEST_PIDFILE"):
            with open(pidfile, "a") as f:
                f.write(f"{self.proc.pid}\n")

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"coffer exited with {self.proc.returncode} during start-up; "
                    f"see {self.stderr_path}:\n{self._tail(self.stderr_path)}"
                )
            try:
                r = requests.get(f"{self.url}/health", timeout=2)
            except requests.ConnectionError:
                return False
            if r.status_code != 200:
                return False
            if expect_credentials:
                # The banner may be flushed a moment after the listener is up.
                return self._parse_credentials() is not None
            return True

        poll(ready, START_TIMEOUT, f"coffer on {self.url} to become healthy")
        out = self.current_stdout()
        self.starts.append(out)
        if expect_credentials:
            self.admin = self._parse_credentials()
        else:
            assert not ACCESS_ID_RE.search(out) and not ACCESS_KEY_RE.search(out), (
                "a restart on an initialised data dir printed bootstrap credentials again"
            )
        return self

    def current_stdout(self) -> str:
        with open(self.stdout_path, "rb") as f:
            f.seek(self._stdout_offset)
            return f.read().decode("utf-8", "replace")

    def _parse_credentials(self) -> Credentials | None:
        out = self.current_stdout()
        mid, mkey = ACCESS_ID_RE.search(out), ACCESS_KEY_RE.search(out)
        if mid and mkey:
            return Credentials(mid.group(1), mkey.group(1))
        return None

    @staticmethod
    def _tail(path: Path, n: int = 30) -> str:
        try:
            return "\n".join(path.read_text("utf-8", "replace").splitlines()[-n:])
        except FileNotFoundError:
            return "(no output)"

    def stop(self, timeout: float = 20) -> int:
        """Graceful stop (SIGTERM), SIGKILL if it does not exit in time."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def kill(self) -> None:
        """kill -9, as in a crash or power loss of the process."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def logs(self) -> bytes:
        data = b""
        for p in (self.stdout_path, self.stderr_path):
            if p.exists():
                data += p.read_bytes()
        return data

    def client(self, base: str = "") -> "Client":
        return Client(self.url + base)

    def admin_client(self, base: str = "") -> "Client":
        assert self.admin is not None, "no bootstrap credentials captured"
        c = self.client(base)
        c.login(self.admin.access_id, self.admin.access_key)
        return c


class ApiError(Exception):
    def __init__(self, op: str, status: int, body):
        self.op, self.status, self.body = op, status, body
        super().__init__(f"{op} -> HTTP {status}: {body!r}")


class Client:
    """Minimal JSON client for the wire API (POST <base>/<op>)."""

    def __init__(self, base_url: str, token: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.session = requests.Session()

    def raw(self, op: str, body=None, *, data: bytes | None = None, token: bool = True,
            headers: dict | None = None, timeout: float = 30) -> requests.Response:
        """POST and return the response whatever its status."""
        if data is None:
            body = dict(body or {})
            if token and self.token and "token" not in body:
                body["token"] = self.token
            return self.session.post(f"{self.base_url}/{op}", json=body, headers=headers, timeout=timeout)
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        return self.session.post(f"{self.base_url}/{op}", data=data, headers=hdrs, timeout=timeout)

    def call(self, op: str, body=None, **kw):
        """POST and return the decoded JSON; raise ApiError on non-2xx."""
        r = self.raw(op, body, **kw)
        try:
            decoded = r.json()
        except ValueError:
            decoded = r.text
        if not 200 <= r.status_code < 300:
            raise ApiError(op, r.status_code, decoded)
        return decoded

    def login(self, access_id: str, access_key: str) -> str:
        out = self.call("auth", {"access-id": access_id, "access-key": access_key, "access-type": "access_key"},
                        token=False)
        self.token = out["token"]
        return self.token

    # Convenience wrappers used by several tests.
    def create_secret(self, name: str, value: str, **extra):
        return self.call("create-secret", {"name": name, "value": value, **extra})

    def update_secret(self, name: str, value: str, **extra):
        return self.call("update-secret-val", {"name": name, "value": value, **extra})

    def get_values(self, names, version: int | None = None) -> dict:
        body = {"names": list(names)}
        if version is not None:
            body["version"] = version
        return self.call("get-secret-value", body)

    def get_value(self, name: str, version: int | None = None) -> str:
        return self.get_values([name], version)[name]

    def new_reader(self, name: str, path: str, caps=("read", "list")) -> Credentials:
        """Create an API-key auth method + role granting caps on path, associated."""
        am = self.call("create-auth-method", {"name": f"/am/{name}"})
        self.call("create-role", {"name": f"/role/{name}"})
        self.call("set-role-rule", {"role-name": f"/role/{name}", "path": path, "capability": list(caps)})
        self.call("assoc-role-am", {"role-name": f"/role/{name}", "am-name": f"/am/{name}"})
        return Credentials(am["access_id"], am["access_key"])

    def audit(self, **query) -> list[dict]:
        """All audit records matching query (follows next_seq paging)."""
        records, after = [], None
        while True:
            body = {"limit": 10000, **query}
            if after is not None:
                body["after-seq"] = after
            page = self.call("audit-list", body)
            recs = page.get("records") or []
            records.extend(recs)
            nxt = page.get("next_seq")
            if len(recs) < body["limit"] or not nxt or nxt == after:
                return records
            after = nxt


class DevOidc:
    """A running `coffer dev oidc` (the local OIDC issuer) on a free port."""

    def __init__(self, log_dir: Path):
        log_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.jwks_uri = f"{self.url}/.well-known/jwks.json"
        self.log = log_dir / "dev-oidc.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [str(coffer_bin()), "dev", "oidc", "--listen", f"127.0.0.1:{self.port}",
                 "--key-file", str(log_dir / "oidc.key")],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=log_dir,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(log_dir)},
            )
        _remember_pid(self.proc.pid)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"coffer dev oidc exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                return requests.get(f"{self.url}/.well-known/openid-configuration", timeout=2).ok
            except requests.ConnectionError:
                return False

        poll(up, START_TIMEOUT, "coffer dev oidc to answer")

    def mint(self, aud: str | list[str] = "coffer", profile: str = "gitlab", ttl: int = 300, **claims) -> str:
        """An ID token: the profile's claims overridden by `claims` (values
        are sent as strings; exp/iat/nbf as numbers)."""
        r = requests.post(f"{self.url}/mint", timeout=10, json={
            "profile": profile, "claims": {k: str(v) for k, v in claims.items()},
            "aud": [aud] if isinstance(aud, str) else list(aud), "ttl": ttl,
        })
        assert r.status_code == 200, f"mint failed: HTTP {r.status_code} {r.text[:300]}"
        return r.json()["token"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # it shuts down on Ctrl-C
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class MotoServer:
    """A real `moto.server` (AWS STS, Secrets Manager, …) on a free port;
    `env` adds environment variables (e.g. moto's INITIAL_NO_AUTH_ACTION_COUNT,
    after which it verifies SigV4 signatures against its IAM users' keys)."""

    def __init__(self, log_dir: Path, env: dict[str, str] | None = None):
        import sys

        log_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = log_dir / "moto.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
            )
        _remember_pid(self.proc.pid)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto.server exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                return requests.get(f"{self.url}/moto-api/", timeout=2).status_code < 500
            except requests.ConnectionError:
                return False

        poll(up, 60, "moto.server to start")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class InThread:
    """A loopback server (`http.server` or `wsgiref`, bound to port 0)
    serving from a daemon thread; `url` has no trailing slash."""

    def __init__(self, server):
        self.server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def loopback_http(handler) -> InThread:
    """An `http.server` handler class served on a free loopback port."""
    from http.server import ThreadingHTTPServer

    return InThread(ThreadingHTTPServer(("127.0.0.1", 0), handler))


def _remember_pid(pid: int) -> None:
    """scripts/test.sh kills any PID listed here that outlives the run."""
    if pidfile := os.environ.get("COFFER_TEST_PIDFILE"):
        with open(pidfile, "a") as f:
            f.write(f"{pid}\n")


# --------------------------------------------------------------------------
# Databases for dynamic and rotated secrets (MariaDB/MySQL, PostgreSQL).
# The servers come from scripts/test.sh (COFFER_TEST_MYSQL_URL,
# COFFER_TEST_POSTGRES_URL); the drivers (PyMySQL, psycopg) are pinned in
# tests/requirements.txt and imported only when a test needs them.

LOOPBACK_HOSTS = ("localhost", "::1")


@dataclass
class DbUrl:
    """A test database server parsed from its URL (mysql://root@127.0.0.1:3306/coffer_test)."""

    kind: str  # "mysql" or "postgres"
    host: str
    port: int
    user: str
    password: str
    dbname: str

    @classmethod
    def parse(cls, url: str) -> "DbUrl":
        from urllib.parse import unquote, urlparse

        u = urlparse(url)
        kind = {"mysql": "mysql", "mariadb": "mysql", "postgres": "postgres", "postgresql": "postgres"}.get(u.scheme)
        if kind is None:
            raise ValueError(f"not a mysql:// or postgres:// URL: scheme {u.scheme!r}")
        host = u.hostname or "127.0.0.1"
        if not (host.startswith("127.") or host in LOOPBACK_HOSTS):
            raise ValueError(f"the test database must be on a loopback address, not {host!r}")
        return cls(kind, host, u.port or (3306 if kind == "mysql" else 5432), unquote(u.username or ""),
                   unquote(u.password or ""), (u.path or "/").lstrip("/") or ("coffer_test" if kind == "mysql" else "postgres"))

    def target_body(self, name: str, **override) -> dict:
        """A `target-create-db` body for this server's administrator."""
        body = {"name": name, "db-type": self.kind, "host": self.host, "port": str(self.port),
                "user-name": self.user, "pwd": self.password, "db-name": self.dbname}
        body.update(override)
        return body


class MysqlTestDb:
    """Administrative access to the test MariaDB/MySQL server (PyMySQL)."""

    def __init__(self, url: str):
        import pymysql  # noqa: F401  (fail here, with the import error, when it is missing)

        self.url = DbUrl.parse(url)
        with self.admin(db=False) as c, c.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{self.url.dbname}`")

    def connect(self, user: str, password: str, db: str | bool | None = None, **kw):
        """A new connection (autocommit) as user/password; db=None: the test database."""
        import pymysql

        database = self.url.dbname if db is None else (db or None)
        return pymysql.connect(host=self.url.host, port=self.url.port, user=user, password=password,
                               database=database, autocommit=True, connect_timeout=10, **kw)

    def admin(self, db: str | bool | None = None):
        return self.connect(self.url.user, self.url.password, db)

    def execute(self, sql: str, args=None) -> list[tuple]:
        with self.admin() as c, c.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def users(self, prefix: str) -> set[str]:
        """Users (any host) whose name starts with prefix."""
        rows = self.execute("SELECT DISTINCT CAST(user AS CHAR) FROM mysql.user WHERE LEFT(user, %s) = %s",
                            (len(prefix), prefix))
        return {r[0] for r in rows}

    def sessions(self, user: str) -> int:
        return self.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = %s", (user,))[0][0]

    def create_user(self, user: str, password: str, admin: bool = False) -> None:
        """user@'%' with password, allowed to read the test database (logins
        name it); admin: every privilege WITH GRANT OPTION (what a target's
        administrator needs to create, drop and kill users)."""
        self.execute("DROP USER IF EXISTS %s@'%%'", (user,))
        self.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        if admin:
            self.execute("GRANT ALL PRIVILEGES ON *.* TO %s@'%%' WITH GRANT OPTION", (user,))
        else:
            self.execute(f"GRANT SELECT ON `{self.url.dbname}`.* TO %s@'%%'", (user,))

    def drop_users(self, prefix: str) -> None:
        """Drop every user whose name starts with prefix (at every host)."""
        rows = self.execute("SELECT CAST(user AS CHAR), CAST(host AS CHAR) FROM mysql.user WHERE LEFT(user, %s) = %s",
                            (len(prefix), prefix))
        for user, host in rows:
            self.execute("DROP USER IF EXISTS %s@%s", (user, host))

    @staticmethod
    def error_code(exc: BaseException) -> int | None:
        args = getattr(exc, "args", ())
        return args[0] if args and isinstance(args[0], int) else None


class PgTestDb:
    """Administrative access to the test PostgreSQL server (psycopg 3)."""

    def __init__(self, url: str):
        import psycopg  # noqa: F401

        self.url = DbUrl.parse(url)
        self.dsn = url

    def connect(self, user: str | None = None, password: str | None = None, dbname: str | None = None):
        import psycopg

        kw = {"host": self.url.host, "port": self.url.port, "dbname": dbname or self.url.dbname,
              "user": user or self.url.user, "connect_timeout": 10, "autocommit": True}
        pw = self.url.password if user is None else password
        if pw:
            kw["password"] = pw
        return psycopg.connect(**kw)

    def execute(self, sql: str, args=None) -> list[tuple]:
        with self.connect() as c, c.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall()) if cur.description else []

    def roles(self, prefix: str) -> set[str]:
        rows = self.execute("SELECT rolname FROM pg_roles WHERE left(rolname, %s) = %s", (len(prefix), prefix))
        return {r[0] for r in rows}

    def sessions(self, role: str) -> int:
        return self.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (role,))[0][0]

    def password_matches(self, role: str, password: str) -> bool:
        """Does `password` match the role's stored verifier (pg_authid, SCRAM or
        md5)? The local test server trusts loopback logins whatever the
        password, so this is how a test checks a PostgreSQL password."""
        rows = self.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,))
        return bool(rows) and rows[0][0] is not None and scram_or_md5_matches(rows[0][0], role, password)

    def drop_roles(self, prefix: str) -> None:
        from psycopg import sql

        for role in self.roles(prefix):
            with self.connect() as c:
                c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
                c.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
                c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def scram_or_md5_matches(verifier: str, role: str, password: str) -> bool:
    """Check a password against a PostgreSQL verifier: SCRAM-SHA-256
    (`SCRAM-SHA-256$iter:salt$StoredKey:ServerKey`) or md5 (`md5` +
    md5(password + role)). ASCII passwords only (no SASLprep)."""
    import base64
    import hashlib
    import hmac

    m = re.fullmatch(r"SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)", verifier)
    if m:
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(m[2]), int(m[1]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        return hmac.compare_digest(hashlib.sha256(client_key).digest(), base64.b64decode(m[3]))
    if verifier.startswith("md5"):
        return verifier == "md5" + hashlib.md5((password + role).encode()).hexdigest()
    return False


# ------------------------------------------------------------ PostgreSQL

def postgres_base_url() -> str:
    """The suite's PostgreSQL (scripts/test.sh exports it), database postgres."""
    return os.environ.get("COFFER_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def psql(url: str, sql: str) -> None:
    if shutil.which("psql") is None:
        raise RuntimeError("psql is needed for the PostgreSQL tests (apt-get install postgresql-client)")
    subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, capture_output=True,
                   timeout=60)


@contextmanager
def fresh_postgres_database(prefix: str = "coffer_test"):
    """A new, empty database on the suite's PostgreSQL (dropped afterwards):
    yields (its name, its URL)."""
    base = postgres_base_url()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    psql(base, f"CREATE DATABASE {name}")
    try:
        yield name, base.rsplit("/", 1)[0] + f"/{name}"
    finally:
        psql(base, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
