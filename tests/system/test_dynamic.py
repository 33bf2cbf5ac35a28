"""Targets, dynamic database secrets (leases) and rotated secrets against
real MariaDB and PostgreSQL servers (COFFER_TEST_MYSQL_URL,
COFFER_TEST_POSTGRES_URL, provided by scripts/test.sh; the tests that
need one are skipped, saying so, when its URL is not set).

- MariaDB and PostgreSQL lifecycles: target checks with clear errors,
  custom creation statements, a credential that can do exactly what its
  statements grant, and at expiry the user gone and its open session ended.
- Revocation: a PostgreSQL role that owns objects is still dropped; a
  failing revocation locks the user, is reported and retried without
  holding up other leases; credentials tied to a token die with it.
- kill -9 with live leases: after a restart the expired ones are revoked at
  once, nothing orphaned; kill -9 during issuance leaves no user without
  its lease.
- Two nodes on one PostgreSQL store: 200 leases, each revoked exactly once.
- Rotated secrets: password rotation (old refused, new works, versions),
  a failing rotation that keeps the old value, rotating a target's own
  administrator while dynamic secrets keep using the target.
- Permissions and their audit records; hostile statements, templates and
  names; no target or issued password in plain text on disk or in logs.
- Seeds 000 (GitLab, `akeyless://mysqlDS` + jq + mysql) and 004 (Azure
  DevOps dynamic/rotated tasks) through `coffer ci`.

Every database user and table a test makes carries a random tag, so runs
(and other suites on the same servers) do not meet; the tests drop what
they made, whatever the outcome.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests

from cofferlib import (
    ApiError,
    Client,
    CofferServer,
    MysqlTestDb,
    PgTestDb,
    _remember_pid,
    coffer_bin,
    free_port,
    loopback_http,
    poll,
    server_env,
)
from test_no_plaintext_at_rest import find_leaks

MYSQL_URL = os.environ.get("COFFER_TEST_MYSQL_URL", "")
PG_URL = os.environ.get("COFFER_TEST_POSTGRES_URL", "")
# How long after a lease's expiry its user must be gone: the reaper runs
# every second; a busy 2-core CI machine gets some slack.
REAPER_SLACK = 6.0

MYSQL_STATEMENTS = ("CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; "
                    "GRANT SELECT ON `<DB>`.`<TABLE>` TO '{{name}}'@'%'")
PG_STATEMENTS = ("CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; "
                 "GRANT SELECT ON public.<TABLE> TO \"{{name}}\"")


# --------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture(scope="module")
def mysql_db() -> MysqlTestDb:
    if not MYSQL_URL:
        pytest.skip("COFFER_TEST_MYSQL_URL is not set (scripts/test.sh provides MariaDB; "
                    "or e.g. mysql://root@127.0.0.1:3306/coffer_test)")
    return MysqlTestDb(MYSQL_URL)


@pytest.fixture(scope="module")
def pg_db() -> PgTestDb:
    if not PG_URL:
        pytest.skip("COFFER_TEST_POSTGRES_URL is not set (scripts/test.sh provides PostgreSQL; "
                    "or e.g. postgres://postgres@127.0.0.1:5432/postgres)")
    return PgTestDb(PG_URL)


class Janitor:
    """Clean-ups run at the end of the test, last added first, each on its
    own (one failing does not stop the others)."""

    def __init__(self):
        self.jobs = []

    def add(self, fn, *args, **kw):
        self.jobs.append((fn, args, kw))

    def run(self):
        errors = []
        for fn, args, kw in reversed(self.jobs):
            try:
                fn(*args, **kw)
            except Exception as e:  # noqa: BLE001 (clean-up: report, go on)
                errors.append(f"{getattr(fn, '__name__', fn)}: {e}")
        if errors:
            print("clean-up problems:", *errors, sep="\n  ")


@pytest.fixture
def janitor(request):
    """Requested after `server`/`admin`, so it runs while the server is still up."""
    j = Janitor()
    yield j
    j.run()


def new_tag() -> str:
    return uuid.uuid4().hex[:7]


def prefix_of(item_name: str) -> str:
    """The default temporary user names of a dynamic secret:
    tmp_<last segment, lower case, 8 characters>_ (the tests' segments are
    letters and digits)."""
    return f"tmp_{item_name.rstrip('/').rsplit('/', 1)[-1][:8].lower()}_"


def error_of(r: requests.Response) -> str:
    try:
        return str(r.json().get("error", r.text))
    except ValueError:
        return r.text


def parse_date(s: str) -> float:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def leases(client: Client, name: str, all_: bool = True) -> list[dict]:
    return client.call("lease-list", {"name": name, "all": all_})["leases"]


def delete_dynamic(client: Client, name: str) -> None:
    """Delete a dynamic secret (revokes its live credentials first)."""
    r = client.raw("dynamic-secret-delete", {"name": name})
    assert r.status_code in (200, 404), f"dynamic-secret-delete {name}: HTTP {r.status_code} {r.text[:300]}"


def create_mysql_dynamic(admin: Client, janitor: Janitor, name: str, target: str, **extra) -> dict:
    out = admin.call("dynamic-secret-create-mysql", {"name": name, "target-name": target, **extra})
    janitor.add(delete_dynamic, admin, name)
    return out["dynamic_secret_details"]


def mysql_target(admin: Client, db: MysqlTestDb, name: str, **override) -> None:
    admin.call("target-create-db", db.url.target_body(name, **override))


def pg_target(admin: Client, db: PgTestDb, name: str, **override) -> None:
    admin.call("target-create-db", db.url.target_body(name, **override))


def assert_all_strings(value: dict) -> None:
    assert {"id", "user", "password", "ttl_in_minutes"} <= set(value), sorted(value)
    not_str = {k: type(v).__name__ for k, v in value.items() if not isinstance(v, str)}
    assert not not_str, f"get-dynamic-secret-value values that are not strings: {not_str}"
    assert value["id"] == value["user"]


def mysql_refused(db: MysqlTestDb, user: str, password: str) -> int | None:
    """The error code of a login (None: it worked)."""
    import pymysql

    try:
        db.connect(user, password).close()
        return None
    except pymysql.err.OperationalError as e:
        return MysqlTestDb.error_code(e)


def all_revoked(client: Client, name: str, timeout: float = 5.0) -> list[dict]:
    """The leases of `name` once every one is marked revoked (its user is
    dropped a moment before the lease is marked)."""
    def done():
        ls = leases(client, name)
        return ls if ls and all(l["state"] == "revoked" for l in ls) else None

    try:
        return poll(done, timeout, f"every lease of {name} to be marked revoked", interval=0.2)
    except TimeoutError:
        raise AssertionError(f"not all revoked: {Counter(l['state'] for l in leases(client, name))}") from None


def wait_gone(exists, what: str, timeout: float) -> float:
    """Poll until exists() is false; the monotonic time it was first seen gone."""
    poll(lambda: not exists(), timeout, what, interval=0.2)
    return time.monotonic()


# --------------------------------------------------------------------------
# 1. MariaDB: targets, a dynamic secret, its credential and its expiry


def test_mysql_target_checks_and_dynamic_secret_lifecycle(server, admin, mysql_db, janitor):
    import pymysql

    db, tag = mysql_db, new_tag()
    table, other = f"dyn_{tag}", f"dyn_{tag}_other"
    db.execute(f"CREATE TABLE `{table}` (id INT PRIMARY KEY, v VARCHAR(20))")
    janitor.add(db.execute, f"DROP TABLE IF EXISTS `{table}`, `{other}`")
    db.execute(f"INSERT INTO `{table}` VALUES (1, 'one')")
    db.execute(f"CREATE TABLE `{other}` (id INT)")
    adm, adm_pw = f"ct_adm_{tag}", f"AdmPw{uuid.uuid4().hex}"
    db.create_user(adm, adm_pw, admin=True)
    janitor.add(db.drop_users, adm)

    # Target checks: nothing is stored unless the connection works.
    bad = admin.raw("target-create-db", db.url.target_body(f"/t/{tag}/bad", **{"user-name": adm, "pwd": "wrong-" + tag}))
    assert bad.status_code == 400, bad.text
    assert "password" in error_of(bad).lower() and adm in error_of(bad), error_of(bad)
    assert "wrong-" + tag not in bad.text, "the refused password is echoed back"
    port = free_port()  # nothing listens there
    unreachable = admin.raw("target-create-db", db.url.target_body(f"/t/{tag}/down", port=str(port)))
    assert unreachable.status_code == 400, unreachable.text
    assert "reach" in error_of(unreachable).lower() and str(port) in error_of(unreachable), error_of(unreachable)
    plain = f"ct_plain_{tag}"
    db.create_user(plain, "PlainPw1" + tag)
    janitor.add(db.drop_users, plain)  # may connect, may not create users
    weak = admin.raw("target-create-db", db.url.target_body(f"/t/{tag}/weak", **{"user-name": plain, "pwd": "PlainPw1" + tag}))
    assert weak.status_code == 400 and "CREATE USER" in error_of(weak), weak.text
    target = f"/t/{tag}/good"
    assert "target_id" in admin.call("target-create-db",
                                     db.url.target_body(target, **{"user-name": adm, "pwd": adm_pw}))
    names = [t["target_name"] for t in admin.call("target-list", {})["targets"]]
    assert [n for n in names if tag in n] == [target], names

    # A dynamic secret whose users may only SELECT from one table.
    name = f"/dyn/{tag}/m{tag}"
    prefix = prefix_of(name)
    stmts = MYSQL_STATEMENTS.replace("<DB>", db.url.dbname).replace("<TABLE>", table)
    details = create_mysql_dynamic(admin, janitor, name, target, **{"user-ttl": "8s", "mysql-screation-statements": stmts})
    assert details["item_name"] == name and details["producer_status"] == "ProducerConnected", details
    assert db.users(prefix) == set(), "the dry run left its user behind"

    t0 = time.time()
    value = admin.call("get-dynamic-secret-value", {"name": name})
    assert_all_strings(value)
    user, password = value["user"], value["password"]
    assert user.startswith(prefix) and len(user) <= 32, user
    assert value["ttl_in_minutes"] == "1", value["ttl_in_minutes"]  # 8 s, rounded up
    assert db.users(prefix) == {user}

    session = db.connect(user, password)
    with session.cursor() as cur:
        cur.execute(f"SELECT v FROM `{table}`")
        assert cur.fetchall() == (("one",),)
        for sql in (f"INSERT INTO `{table}` VALUES (2, 'two')", f"SELECT * FROM `{other}`"):
            with pytest.raises((pymysql.err.OperationalError, pymysql.err.ProgrammingError)) as e:
                cur.execute(sql)
            assert MysqlTestDb.error_code(e.value) == 1142, (sql, e.value)  # command denied
    assert mysql_refused(db, user, password + "x") == 1045

    (lease,) = leases(admin, name, all_=False)
    assert lease["id"] == user and lease["state"] == "live", lease
    expires = parse_date(lease["expiration_date"])
    assert abs(expires - (t0 + 8)) < 3, (lease["expiration_date"], t0)

    # Expiry: the user is dropped and the open session ended.
    assert time.time() < expires - 1, "the test itself was too slow to see the user before its expiry"
    assert user in db.users(prefix)
    wait_gone(lambda: user in db.users(prefix), f"{user} to be dropped", expires - time.time() + REAPER_SLACK)
    assert time.time() >= expires - 1, "the user was dropped before its lease expired"
    assert db.sessions(user) == 0
    with pytest.raises((pymysql.err.OperationalError, pymysql.err.InterfaceError)):
        with session.cursor() as cur:
            cur.execute("SELECT 1")
    session.close()
    # A user that no longer exists: 1045, or 1698 from some MariaDB auth paths.
    assert mysql_refused(db, user, password) in (1045, 1698)

    (gone,) = all_revoked(admin, name)
    assert gone["id"] == user and gone.get("revocation_date"), gone
    expired = [r for r in admin.audit(operation="lease-expire") if r["object"] == f"{name}/{user}"]
    assert [r["outcome"] for r in expired] == ["allowed"], expired


# --------------------------------------------------------------------------
# 2. PostgreSQL: the same


def test_postgres_dynamic_secret_lifecycle(server, admin, pg_db, janitor):
    import psycopg

    db, tag = pg_db, new_tag()
    table = f"dyn_{tag}"
    db.execute(f"CREATE TABLE public.{table} (id int PRIMARY KEY, v text)")
    janitor.add(db.execute, f"DROP TABLE IF EXISTS public.{table}")
    db.execute(f"INSERT INTO public.{table} VALUES (1, 'one')")

    missing = f"ct_nobody_{tag}"
    r = admin.raw("target-create-db", db.url.target_body(f"/t/{tag}/nobody", **{"user-name": missing}))
    assert r.status_code == 400 and missing in error_of(r), r.text
    port = free_port()
    r = admin.raw("target-create-db", db.url.target_body(f"/t/{tag}/down", port=str(port)))
    assert r.status_code == 400 and "reach" in error_of(r).lower() and str(port) in error_of(r), r.text
    target = f"/t/{tag}/pg"
    pg_target(admin, db, target)

    name = f"/dyn/{tag}/p{tag}"
    prefix = prefix_of(name)
    janitor.add(db.drop_roles, prefix)
    out = admin.call("dynamic-secret-create-postgresql", {
        "name": name, "target-name": target, "user-ttl": "8s",
        "creation-statements": PG_STATEMENTS.replace("<TABLE>", table)})
    janitor.add(delete_dynamic, admin, name)
    assert out["dynamic_secret_details"]["producer_status"] == "ProducerConnected", out
    assert db.roles(prefix) == set()

    t0 = time.time()
    value = admin.call("get-dynamic-secret-value", {"name": name})
    assert_all_strings(value)
    role, password = value["user"], value["password"]
    assert role.startswith(prefix) and db.roles(prefix) == {role}
    # The local server trusts loopback logins: check the password against
    # the stored verifier instead of by a refused login.
    assert db.password_matches(role, password) and not db.password_matches(role, password + "x")
    (valid_until,) = db.execute("SELECT extract(epoch FROM rolvaliduntil) FROM pg_roles WHERE rolname = %s", (role,))[0]
    assert abs(float(valid_until) - (t0 + 8)) < 3, "VALID UNTIL is not the lease's expiry"

    session = db.connect(role, password)
    assert session.execute(f"SELECT v FROM public.{table}").fetchall() == [("one",)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        session.execute(f"INSERT INTO public.{table} VALUES (2, 'two')")
    assert db.sessions(role) == 1

    (lease,) = leases(admin, name, all_=False)
    expires = parse_date(lease["expiration_date"])
    assert time.time() < expires - 1
    wait_gone(lambda: role in db.roles(prefix), f"role {role} to be dropped", expires - time.time() + REAPER_SLACK)
    assert time.time() >= expires - 1, "the role was dropped before its lease expired"
    assert db.sessions(role) == 0
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")
    session.close()
    assert [l["id"] for l in all_revoked(admin, name)] == [role]
    assert [r["outcome"] for r in admin.audit(operation="lease-expire") if r["object"] == f"{name}/{role}"] == ["allowed"]


def test_postgres_revocation_drops_what_the_role_owns(server, admin, pg_db, janitor):
    """A temporary role that created a table is still dropped, with what it
    owns (default revocation: DROP OWNED, DROP ROLE; never REASSIGN OWNED to
    the administrator, which would hand a temporary user's objects, e.g.
    SECURITY DEFINER functions, to a superuser)."""
    db, tag = pg_db, new_tag()
    pg_target(admin, db, f"/t/{tag}/pg")
    name = f"/dyn/{tag}/o{tag}"
    janitor.add(db.drop_roles, prefix_of(name))
    janitor.add(db.execute, f"DROP TABLE IF EXISTS public.owned_{tag}")
    admin.call("dynamic-secret-create-postgresql", {
        "name": name, "target-name": f"/t/{tag}/pg", "user-ttl": "1m",
        "creation-statements": "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; "
                               "GRANT CREATE ON SCHEMA public TO \"{{name}}\""})
    janitor.add(delete_dynamic, admin, name)
    v = admin.call("get-dynamic-secret-value", {"name": name})
    with db.connect(v["user"], v["password"]) as c:
        c.execute(f"CREATE TABLE public.owned_{tag} (x int)")
    assert admin.call("dynamic-secret-tmp-creds-delete", {"name": name, "tmp-creds-id": v["id"]}) == {"revoked": [v["id"]]}
    assert db.roles(v["user"]) == set()
    assert db.execute("SELECT tableowner FROM pg_tables WHERE tablename = %s", (f"owned_{tag}",)) == []


def test_failing_revocation_locks_the_user_is_reported_and_retried(server, admin, mysql_db, janitor):
    """Revocation statements that fail (a gate table is missing) leave the
    user locked with its sessions ended, are reported (lease-list failing,
    an audit record per attempt), do not hold up other leases, and are
    retried until they work (the gate table appears)."""
    import pymysql

    db, tag = mysql_db, new_tag()
    gate = f"gate_{tag}"
    janitor.add(db.execute, f"DROP TABLE IF EXISTS `{gate}`")
    mysql_target(admin, db, f"/t/{tag}/root")
    failing, fine = f"/dyn/{tag}/f{tag}", f"/dyn/{tag}/g{tag}"
    for n in (failing, fine):
        janitor.add(db.drop_users, prefix_of(n))
    create_mysql_dynamic(admin, janitor, failing, f"/t/{tag}/root", **{
        "user-ttl": "3s", "skip-dry-run": True,
        "mysql-revocation-statements": f"DO (SELECT COUNT(*) FROM `{db.url.dbname}`.`{gate}`); DROP USER '{{{{name}}}}'@'%'"})
    create_mysql_dynamic(admin, janitor, fine, f"/t/{tag}/root", **{"user-ttl": "3s"})
    stuck = [admin.call("get-dynamic-secret-value", {"name": failing}) for _ in range(2)]
    session = db.connect(stuck[0]["user"], stuck[0]["password"])
    ok = admin.call("get-dynamic-secret-value", {"name": fine})["id"]

    wait_gone(lambda: ok in db.users(prefix_of(fine)), "the healthy lease to be revoked", 3 + REAPER_SLACK)
    poll(lambda: len(admin.call("lease-list", {"name": failing, "failing": True})["leases"]) == 2, REAPER_SLACK,
         "both failing leases to be reported")
    reported = admin.call("lease-list", {"name": failing, "failing": True})["leases"]
    assert all(l["revocation_attempts"] >= 1 and "statement 1" in l["last_error"] and l.get("next_attempt_date")
               for l in reported), reported
    assert db.users(prefix_of(failing)) == {v["user"] for v in stuck}
    for v in stuck:
        assert mysql_refused(db, v["user"], v["password"]) == 4151, "a user whose revocation failed is not locked"
    with pytest.raises((pymysql.err.OperationalError, pymysql.err.InterfaceError)):
        with session.cursor() as cur:
            cur.execute("SELECT 1")
    session.close()
    errors = [r for r in admin.audit(operation="lease-expire") if r["object"].startswith(failing + "/")]
    assert errors and all(r["outcome"] == "error" for r in errors), errors

    db.execute(f"CREATE TABLE `{gate}` (x INT)")  # the next attempt (5 s backoff) succeeds
    wait_gone(lambda: db.users(prefix_of(failing)), "the retried revocations to drop the users", 20)
    assert len(all_revoked(admin, failing)) == 2


def test_credentials_tied_to_a_token_die_with_it(server, admin, mysql_db, janitor):
    db, tag = mysql_db, new_tag()
    mysql_target(admin, db, f"/t/{tag}/root")
    name = f"/dyn/{tag}/k{tag}"
    janitor.add(db.drop_users, prefix_of(name))
    create_mysql_dynamic(admin, janitor, name, f"/t/{tag}/root", **{"user-ttl": "10m"})
    am = admin.call("create-auth-method", {"name": f"/am/tied-{tag}", "lease-tied-to-token": True})
    admin.call("create-role", {"name": f"/role/tied-{tag}"})
    admin.call("set-role-rule", {"role-name": f"/role/tied-{tag}", "path": name, "capability": ["read"]})
    admin.call("assoc-role-am", {"role-name": f"/role/tied-{tag}", "am-name": f"/am/tied-{tag}"})
    job = Client(server.url)
    job.login(am["access_id"], am["access_key"])
    v = job.call("get-dynamic-secret-value", {"name": name})
    assert mysql_refused(db, v["user"], v["password"]) is None
    (lease,) = leases(admin, name)
    assert lease["tied_to_token"] is True
    job.call("revoke-token", {})
    wait_gone(lambda: v["user"] in db.users(prefix_of(name)), "the tied credential to be revoked with its token",
              REAPER_SLACK)
    assert [l["id"] for l in all_revoked(admin, name)] == [v["id"]]


# --------------------------------------------------------------------------
# 3. kill -9 with live leases


def issue(url: str, token: str, name: str, n: int, workers: int = 8) -> list[dict]:
    local = threading.local()

    def one(_):
        if not hasattr(local, "c"):
            local.c = Client(url, token)
        return local.c.call("get-dynamic-secret-value", {"name": name})

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(n)))


@pytest.mark.slow
def test_leases_expired_during_a_crash_are_revoked_at_restart(server_factory, mysql_db, janitor):
    db, tag = mysql_db, new_tag()
    srv = server_factory().start(expect_credentials=True)
    admin = srv.admin_client()
    name = f"/crash/c{tag}"
    prefix = prefix_of(name)
    janitor.add(db.drop_users, prefix)
    mysql_target(admin, db, f"/t/{tag}/root")
    admin.call("dynamic-secret-create-mysql", {"name": name, "target-name": f"/t/{tag}/root", "user-ttl": "5s"})

    issued = {v["id"] for v in issue(srv.url, admin.token, name, 20)}
    assert len(issued) == 20 and db.users(prefix) == issued
    latest = max(parse_date(l["expiration_date"]) for l in leases(admin, name))
    srv.kill()

    time.sleep(max(0.0, latest - time.time()) + 1)
    assert db.users(prefix) == issued, "users vanished while no server ran"
    srv.start(expect_credentials=False)
    started = time.monotonic()
    wait_gone(lambda: db.users(prefix), "the expired users to be dropped after the restart", 10)
    print(f"20 expired leases revoked {time.monotonic() - started:.1f}s after the restart")

    admin = srv.admin_client()
    after = all_revoked(admin, name)
    assert {l["id"] for l in after} == issued
    assert db.users(prefix) == set(), "orphaned database users"
    srv.stop()


@pytest.mark.slow
def test_kill_during_issuance_leaves_no_unknown_user(server_factory, mysql_db, janitor):
    """kill -9 while credentials are being issued: every user in the
    database has its lease (written before the user is created), every
    acknowledged credential too, and all are revoked at expiry."""
    db, tag = mysql_db, new_tag()
    srv = server_factory().start(expect_credentials=True)
    admin = srv.admin_client()
    name = f"/crash/i{tag}"
    prefix = prefix_of(name)
    janitor.add(db.drop_users, prefix)
    mysql_target(admin, db, f"/t/{tag}/root")
    admin.call("dynamic-secret-create-mysql", {"name": name, "target-name": f"/t/{tag}/root", "user-ttl": "4s"})
    acked, stop = [], threading.Event()

    def worker():
        c = Client(srv.url, admin.token)
        while not stop.is_set():
            try:
                r = c.raw("get-dynamic-secret-value", {"name": name}, timeout=10)
            except requests.RequestException:
                return  # the server is gone
            if r.status_code == 200:
                acked.append(r.json()["id"])

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    poll(lambda: len(acked) >= 30, 60, "30 issued credentials")
    srv.kill()
    stop.set()
    for t in threads:
        t.join(30)
    in_db = db.users(prefix)
    assert set(acked) <= in_db, "an acknowledged credential has no database user"
    srv.start(expect_credentials=False)
    admin = srv.admin_client()
    known = {l["id"] for l in leases(admin, name)}
    assert in_db <= known, f"database users without a lease: {sorted(in_db - known)[:5]}"
    wait_gone(lambda: db.users(prefix), "every user to be dropped at expiry", 4 + REAPER_SLACK + 4)
    assert {l["id"] for l in all_revoked(admin, name, timeout=10)} == known
    srv.stop()


# --------------------------------------------------------------------------
# 4. Two nodes on one PostgreSQL store: every lease revoked exactly once


@pytest.fixture
def fresh_store(pg_db):
    """A new PostgreSQL database for a Coffer store, dropped afterwards."""
    name = f"coffer_dyn_{uuid.uuid4().hex[:12]}"
    pg_db.execute(f"CREATE DATABASE {name}")
    u = pg_db.url
    auth = u.user + (f":{u.password}" if u.password else "")
    yield f"postgres://{auth}@{u.host}:{u.port}/{name}"
    pg_db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class StoreNode:
    """A non-dev `coffer server` on a shared storage URL."""

    def __init__(self, storage: str, key_file: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        # A first start without --dev writes the admin's credentials here.
        self.creds = log.with_suffix(".creds")
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [str(coffer_bin()), "server", "--storage", storage, "--root-key-file", str(key_file),
                 "--listen", f"127.0.0.1:{self.port}", "--bootstrap-file", str(self.creds)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=server_env())
        _remember_pid(self.proc.pid)

    def healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"node exited: {self.log.read_text()[-2000:]}")
        try:
            return requests.get(f"{self.url}/health", timeout=2).ok
        except requests.ConnectionError:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.mark.slow
def test_two_nodes_revoke_each_lease_exactly_once(fresh_store, mysql_db, tmp_path, janitor):
    db, tag = mysql_db, new_tag()
    key_file = tmp_path / "root.key"
    key_file.write_text(os.urandom(32).hex())
    key_file.chmod(0o600)
    nodes = [StoreNode(fresh_store, key_file, tmp_path / f"node{i}.log") for i in range(2)]
    janitor.add(lambda: [n.stop() for n in nodes])
    name = f"/multi/n{tag}"
    prefix = prefix_of(name)
    janitor.add(db.drop_users, prefix)
    for n in nodes:
        poll(n.healthy, 60, "both nodes to start")
    def creds(n):
        return n.creds.read_text() if n.creds.exists() else ""

    poll(lambda: any("access_key:" in creds(n) for n in nodes), 10, "the bootstrap file")
    banner = next(creds(n) for n in nodes if "access_key:" in creds(n))
    access_id = banner.split("access_id:")[1].split()[0]
    access_key = banner.split("access_key:")[1].split()[0]
    clients = [Client(n.url) for n in nodes]

    def logged_in(c: Client) -> bool:
        # The node that did not bootstrap sees the admin within its
        # one-second policy poll: until then a login is refused.
        try:
            c.login(access_id, access_key)
            return True
        except ApiError as e:
            if e.status not in (401, 429):
                raise
            return False

    for c in clients:
        poll(lambda: logged_in(c), 10, "the admin's login to work on both nodes", interval=0.2)
    a = clients[0]
    mysql_target(a, db, f"/t/{tag}/root")
    a.call("dynamic-secret-create-mysql", {"name": name, "target-name": f"/t/{tag}/root", "user-ttl": "10s"})
    janitor.add(delete_dynamic, a, name)

    # 200 credentials, alternating between the nodes.
    local = threading.local()

    def one(i):
        if not hasattr(local, "c"):
            local.c = {j: Client(n.url, c.token) for j, (n, c) in enumerate(zip(nodes, clients))}
        return local.c[i % 2].call("get-dynamic-secret-value", {"name": name})["id"]

    t0 = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(one, range(200)))
    print(f"200 credentials issued in {time.monotonic() - t0:.1f}s")
    assert len(set(ids)) == 200

    latest = max(parse_date(l["expiration_date"]) for l in leases(a, name))
    wait_gone(lambda: db.users(prefix), "every user to be dropped", latest - time.time() + 30)
    wanted = {f"{name}/{i}" for i in ids}

    def expire_records():
        return [r for r in a.audit(operation="lease-expire") if r["object"].startswith(name + "/")]

    poll(lambda: wanted <= {r["object"] for r in expire_records()}, 10, "a lease-expire record per lease")
    records = expire_records()
    allowed = Counter(r["object"] for r in records if r["outcome"] == "allowed")
    assert set(allowed) == wanted, f"{len(wanted - set(allowed))} leases without a revocation record"
    twice = {k: n for k, n in allowed.items() if n != 1}
    assert not twice, f"leases revoked more than once: {list(twice.items())[:5]}"
    failures = [r for r in records if r["outcome"] != "allowed"]
    assert not failures, f"failed revocations: {failures[:3]}"
    states = Counter(l["state"] for l in leases(clients[1], name))
    assert states == {"revoked": 200}, states
    assert a.call("audit-verify", {})["valid"] is True


# --------------------------------------------------------------------------
# 5. Rotated secrets on MariaDB


def describe_rotated(client: Client, name: str) -> dict:
    item = client.call("describe-item", {"name": name})
    return item["item_general_info"]["rotated_secret_details"]


def test_rotated_secret_password_and_target_rotation(server, admin, mysql_db, janitor):
    db, tag = mysql_db, new_tag()
    mysql_target(admin, db, f"/t/{tag}/root")

    # rotator-type password, changed by the target's administrator.
    user, pw0 = f"ct_rot_{tag}", f"Initial{uuid.uuid4().hex[:16]}"
    db.create_user(user, pw0)
    janitor.add(db.drop_users, user)
    name = f"/rot/{tag}/user"
    assert admin.call("rotated-secret-create-mysql", {
        "name": name, "target-name": f"/t/{tag}/root", "rotator-type": "password", "rotated-username": user,
        "rotated-password": pw0, "authentication-credentials": "use-target-creds"}) == {"name": name}
    v1 = admin.call("get-rotated-secret-value", {"names": name})
    assert v1["value"] == {"username": user, "password": pw0}, "the initial value is not the given credentials"

    assert admin.call("gateway-rotate-secret", {"name": name}) == {"name": name}
    v2 = admin.call("get-rotated-secret-value", {"names": name})
    pw1 = v2["value"]["password"]
    assert v2["value"]["username"] == user and pw1 != pw0 and v2["version"] > v1["version"], (v1["version"], v2["version"])
    assert mysql_refused(db, user, pw0) == 1045, "the old password still logs in"
    assert mysql_refused(db, user, pw1) is None, "the new password does not log in"
    old = admin.call("get-rotated-secret-value", {"names": name, "version": v1["version"]})
    assert old["value"]["password"] == pw0 and old["version"] == v1["version"]
    assert admin.call("rotated-secret-get-value", {"name": name})["value"]["password"] == pw1
    assert describe_rotated(admin, name)["rotator_status"] == "RotationSucceeded"

    # A rotation whose ALTER USER fails: the old value stays current.
    db.drop_users(user)
    r = admin.raw("gateway-rotate-secret", {"name": name})
    assert r.status_code >= 400 and user in error_of(r), r.text
    after = admin.call("get-rotated-secret-value", {"names": name})
    assert after["value"]["password"] == pw1 and after["version"] == v2["version"], "a failed rotation changed the value"
    status = describe_rotated(admin, name)
    assert status["rotator_status"] == "RotationFailed" and status.get("last_rotation_error"), status
    failed = [x for x in admin.audit(operation="gateway-rotate-secret") if x["object"] == name and x["outcome"] != "allowed"]
    assert failed, "the failed rotation has no audit record"

    # rotator-type target: the target's own administrator; dynamic
    # secrets on that target keep working after its password changed.
    adm, adm_pw0 = f"ct_tadm_{tag}", f"AdmPw{uuid.uuid4().hex}"
    db.create_user(adm, adm_pw0, admin=True)
    janitor.add(db.drop_users, adm)
    target = f"/t/{tag}/own"
    mysql_target(admin, db, target, **{"user-name": adm, "pwd": adm_pw0})
    dyn = f"/dyn/{tag}/t{tag}"
    janitor.add(db.drop_users, prefix_of(dyn))
    create_mysql_dynamic(admin, janitor, dyn, target, **{"user-ttl": "2m"})
    before = admin.call("get-dynamic-secret-value", {"name": dyn})
    assert mysql_refused(db, before["user"], before["password"]) is None

    rot_t = f"/rot/{tag}/target"
    admin.call("rotated-secret-create-mysql", {"name": rot_t, "target-name": target, "rotator-type": "target"})
    assert admin.call("get-rotated-secret-value", {"names": rot_t})["value"] == {"username": adm, "password": adm_pw0}
    admin.call("gateway-rotate-secret", {"name": rot_t})
    adm_pw1 = admin.call("get-rotated-secret-value", {"names": rot_t})["value"]["password"]
    assert adm_pw1 != adm_pw0
    assert mysql_refused(db, adm, adm_pw0) == 1045 and mysql_refused(db, adm, adm_pw1) is None
    details = admin.call("target-get-details", {"name": target})["value"]["db_target_details"]
    assert details["db_pwd"] == adm_pw1, "target-get-details does not show the rotated password"
    fresh = admin.call("get-dynamic-secret-value", {"name": dyn})
    assert mysql_refused(db, fresh["user"], fresh["password"]) is None, "the target stopped working after its rotation"
    revoked = admin.call("dynamic-secret-tmp-creds-delete", {"name": dyn, "revoke-all": True})["revoked"]
    assert set(revoked) == {before["user"], fresh["user"]}
    assert db.users(prefix_of(dyn)) == set(), "revocation with the rotated administrator password failed"


# --------------------------------------------------------------------------
# 6. Permissions


def test_read_only_identity_cannot_revoke_others_or_rotate(server, admin, mysql_db, janitor):
    db, tag = mysql_db, new_tag()
    mysql_target(admin, db, f"/t/{tag}/root")
    ds, rot = f"/perm/{tag}/d{tag}", f"/perm/{tag}/rot"
    janitor.add(db.drop_users, prefix_of(ds))
    create_mysql_dynamic(admin, janitor, ds, f"/t/{tag}/root", **{"user-ttl": "2m"})
    user, pw = f"ct_perm_{tag}", f"Perm{uuid.uuid4().hex[:12]}"
    db.create_user(user, pw)
    janitor.add(db.drop_users, user)
    admin.call("rotated-secret-create-mysql", {"name": rot, "target-name": f"/t/{tag}/root", "rotator-type": "password",
                                               "rotated-username": user, "rotated-password": pw,
                                               "authentication-credentials": "use-target-creds"})
    creds = admin.new_reader(f"perm-{tag}", ds, caps=("read",))
    admin.call("set-role-rule", {"role-name": f"/role/perm-{tag}", "path": rot, "capability": ["read"]})
    reader = Client(server.url)
    reader.login(creds.access_id, creds.access_key)

    theirs = admin.call("get-dynamic-secret-value", {"name": ds})["id"]
    mine = reader.call("get-dynamic-secret-value", {"name": ds})
    assert_all_strings(mine)
    assert mysql_refused(db, mine["user"], mine["password"]) is None
    assert reader.call("get-rotated-secret-value", {"names": rot})["value"]["password"] == pw

    denied_calls = [
        ("dynamic-secret-tmp-creds-delete", {"name": ds, "tmp-creds-id": theirs}),
        ("dynamic-secret-tmp-creds-delete", {"name": ds, "revoke-all": True}),
        ("dynamic-secret-tmp-creds-update", {"name": ds, "tmp-creds-id": theirs, "new-ttl-min": 1}),
        ("gateway-rotate-secret", {"name": rot}),
    ]
    for op, body in denied_calls:
        r = reader.raw(op, body)
        assert r.status_code == 403, f"{op}: HTTP {r.status_code} {r.text[:200]}"
    assert theirs in db.users(prefix_of(ds)), "another identity's credential was revoked"
    assert admin.call("get-rotated-secret-value", {"names": rot})["value"]["password"] == pw
    # Its own credential: read suffices.
    assert reader.call("dynamic-secret-tmp-creds-delete", {"name": ds, "tmp-creds-id": mine["id"]})["revoked"] == [mine["id"]]
    assert db.users(prefix_of(ds)) == {theirs}

    audit = admin.audit(**{"access-id": creds.access_id})
    denied = Counter(r["operation"] for r in audit if r["outcome"] == "denied" and r["status"] == 403)
    expected = Counter(op for op, _ in denied_calls)
    assert all(denied[op] >= n for op, n in expected.items()), f"denials missing from the audit log: {denied}"

    # Naming a target needs read on it (target-rule), beside create on the item.
    maker_creds = admin.new_reader(f"maker-{tag}", f"/perm/{tag}/new/*", caps=("create", "read"))
    maker = Client(server.url)
    maker.login(maker_creds.access_id, maker_creds.access_key)
    body = {"name": f"/perm/{tag}/new/d{tag}", "target-name": f"/t/{tag}/root", "user-ttl": "1m"}
    r = maker.raw("dynamic-secret-create-mysql", body)
    assert r.status_code == 403 and f"/t/{tag}/root" in error_of(r), r.text
    admin.call("set-role-rule", {"role-name": f"/role/maker-{tag}", "path": f"/t/{tag}/root", "capability": ["read"],
                                 "rule-type": "target-rule"})
    maker.call("dynamic-secret-create-mysql", body)
    janitor.add(delete_dynamic, admin, body["name"])
    janitor.add(db.drop_users, prefix_of(body["name"]))


# --------------------------------------------------------------------------
# 7. Hostile input


HOSTILE_STATEMENTS = {
    "unknown placeholder": "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; GRANT SELECT ON *.* TO '{{nope}}'@'%'",
    "unbalanced quote": "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}",
    "unbalanced backtick": "CREATE USER `{{name}}@'%' IDENTIFIED BY '{{password}}'",
    "placeholder in a -- comment": "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}' -- {{password}}",
    "placeholder in a /* comment */": "CREATE USER '{{name}}'@'%' /* {{password}} */ IDENTIFIED BY '{{password}}'",
    "unclosed placeholder": "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password'",
}
HOSTILE_TEMPLATES = ["tmp_'{{random}}", 'tmp_"{{random}}', "tmp_`{{random}}`", "tmp_{{random}}'; DROP USER root; --",
                     "tmp_{{random}}@'%'", "tmp_{{item}}"]
HOSTILE_NAMES = ["/hostile/../escape", "/hostile/./x", "/hostile/..", "../../etc/passwd", "/hostile/x\x00y",
                 "/hostile/x\ny", "/hostile/%2e%2e/x", "/hostile/a\\..\\b", "/hostile/" + "a" * 129, "/hostile/x'y",
                 "/hostile/x;DROP USER root"]


def test_hostile_statements_templates_and_names_create_nothing(server, admin, mysql_db, pg_db, janitor):
    db, tag = mysql_db, new_tag()
    mysql_target(admin, db, f"/t/{tag}/root")
    pg_target(admin, pg_db, f"/t/{tag}/pg")
    refused = []
    for i, (what, stmts) in enumerate(HOSTILE_STATEMENTS.items()):
        r = admin.raw("dynamic-secret-create-mysql", {"name": f"/hostile/{tag}/s{i}", "target-name": f"/t/{tag}/root",
                                                      "mysql-screation-statements": stmts})
        refused.append((what, r))
    for i, stmts in enumerate(["CREATE ROLE \"{{name}} WITH LOGIN PASSWORD '{{password}}'",
                               "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expires}}'"]):
        r = admin.raw("dynamic-secret-create-postgresql", {"name": f"/hostile/{tag}/p{i}", "target-name": f"/t/{tag}/pg",
                                                           "creation-statements": stmts})
        refused.append((f"postgres statements {i}", r))
    for i, tpl in enumerate(HOSTILE_TEMPLATES):
        r = admin.raw("dynamic-secret-create-mysql", {"name": f"/hostile/{tag}/u{i}", "target-name": f"/t/{tag}/root",
                                                      "custom-username-template": tpl})
        refused.append((f"template {tpl!r}", r))
    for bad in HOSTILE_NAMES:
        r = admin.raw("dynamic-secret-create-mysql", {"name": bad.replace("/hostile/", f"/hostile/{tag}/"),
                                                      "target-name": f"/t/{tag}/root"})
        refused.append((f"name {bad[:40]!r}", r))
    wrong = [f"{what}: HTTP {r.status_code} {r.text[:150]}" for what, r in refused if r.status_code != 400]
    assert not wrong, "hostile input not refused with 400:\n" + "\n".join(wrong)
    unclear = [what for what, r in refused if len(error_of(r)) < 10]
    assert not unclear, f"refusals without a message: {unclear}"
    assert "nope" in error_of(refused[0][1]), error_of(refused[0][1])

    # Nothing was created: no item, no database user, no role.
    producers = admin.call("dynamic-secret-list", {})["producers"]
    assert [p["name"] for p in producers if tag in p["name"]] == []
    assert [u for u in db.users("") if tag in u] == []
    assert [u for u in pg_db.roles("") if tag in u] == []


def test_failing_statement_is_named_without_leaking_the_password(server, admin, mysql_db, janitor):
    db, tag = mysql_db, new_tag()
    mysql_target(admin, db, f"/t/{tag}/root")
    name = f"/dyn/{tag}/f{tag}"
    janitor.add(db.drop_users, prefix_of(name))
    stmts = "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; GRANT SELEKT ON *.* TO '{{name}}'@'%'"
    r = admin.raw("dynamic-secret-create-mysql", {"name": name, "target-name": f"/t/{tag}/root",
                                                  "mysql-screation-statements": stmts})
    assert r.status_code == 400, r.text
    err = error_of(r)
    assert "2" in err and "SELEKT" in err, f"the error does not name the failing statement: {err}"
    assert admin.raw("describe-item", {"name": name}).status_code == 404
    assert db.users(prefix_of(name)) == set(), "the dry run left a half-created user"


# --------------------------------------------------------------------------
# 8. No target or issued password in plain text at rest or in the logs


def test_database_passwords_are_not_on_disk_or_in_logs(server, admin, mysql_db, janitor):
    db, tag = mysql_db, new_tag()
    adm, adm_pw = f"ct_leak_{tag}", f"LeakTarget{uuid.uuid4().hex}"
    wrong_pw = f"LeakWrong{uuid.uuid4().hex}"
    db.create_user(adm, adm_pw, admin=True)
    janitor.add(db.drop_users, adm)
    r = admin.raw("target-create-db", db.url.target_body(f"/t/{tag}/wrong", **{"user-name": adm, "pwd": wrong_pw}))
    assert r.status_code == 400 and wrong_pw not in r.text
    target = f"/t/{tag}/leak"
    mysql_target(admin, db, target, **{"user-name": adm, "pwd": adm_pw})
    name = f"/leak/{tag}/l{tag}"
    janitor.add(db.drop_users, prefix_of(name))
    admin.call("dynamic-secret-create-mysql", {"name": name, "target-name": target, "user-ttl": "2m"})
    issued = [admin.call("get-dynamic-secret-value", {"name": name})["password"] for _ in range(3)]
    assert admin.call("target-get-details", {"name": target})["value"]["db_target_details"]["db_pwd"] == adm_pw

    rot_user, rot_pw0 = f"ct_leakrot_{tag}", f"LeakRot{uuid.uuid4().hex}"
    db.create_user(rot_user, rot_pw0)
    janitor.add(db.drop_users, rot_user)
    admin.call("rotated-secret-create-mysql", {"name": f"/leak/{tag}/rot", "target-name": target,
                                               "rotator-type": "password", "rotated-username": rot_user,
                                               "rotated-password": rot_pw0, "authentication-credentials": "use-target-creds"})
    admin.call("gateway-rotate-secret", {"name": f"/leak/{tag}/rot"})
    rot_pw1 = admin.call("get-rotated-secret-value", {"names": f"/leak/{tag}/rot"})["value"]["password"]

    markers = {"target password": adm_pw, "refused target password": wrong_pw, "rotated password v1": rot_pw0,
               "rotated password v2": rot_pw1, **{f"issued password {i}": p for i, p in enumerate(issued)}}

    def leaks(root: Path) -> list[str]:
        return [f"{what}: {where}" for what, m in markers.items() for where in find_leaks(root, m.encode())]

    assert leaks(server.data_dir) == [], "a database password is readable in the data dir (server running)"
    delete_dynamic(admin, name)  # revoke the credentials while the server runs
    server.stop()
    assert leaks(server.data_dir) == [], "a database password is readable in the data dir (server stopped)"
    assert leaks(server.log_dir) == [], "a database password appears in the server logs"


# --------------------------------------------------------------------------
# 9. Seeds 000 and 004 through `coffer ci`

SEED_AUD = "https://gitlab.com"


def ci_env(server: CofferServer, **extra) -> dict[str, str]:
    drop = ("AKEYLESS_", "AWS_", "AZURE_", "GITHUB_", "CI_", "GITLAB_")
    env = {k: v for k, v in server_env().items() if not k.startswith(drop)}
    env["AKEYLESS_API_URL"] = server.url
    env.update(extra)
    return env


def coffer_ci(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(coffer_bin()), "ci", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


class Seed000:
    """Seed 000's set-up: the MySQL dynamic secret `mysqlDS` whose users may
    insert into `employees`, and the seed's MyJWTAuth (OAuth2/JWT method,
    unique identifier user_login) with a role that reads the producer,
    associated with sub-claims."""

    def __init__(self, server, admin, db: MysqlTestDb, oidc, janitor):
        tag = new_tag()
        self.admin, self.db, self.name = admin, db, "/mysqlDS"
        self.database = f"coffer_emp_{tag}"
        db.execute(f"CREATE DATABASE `{self.database}`")
        janitor.add(db.execute, f"DROP DATABASE IF EXISTS `{self.database}`")
        db.execute(f"CREATE TABLE `{self.database}`.employees (id INT AUTO_INCREMENT PRIMARY KEY, "
                   "First_Name VARCHAR(40), Last_Name VARCHAR(40))")
        # The target's database is the one the job's temporary users work in.
        mysql_target(admin, db, f"/t/{tag}/root", **{"db-name": self.database})
        janitor.add(db.drop_users, prefix_of(self.name))
        create_mysql_dynamic(admin, janitor, self.name, f"/t/{tag}/root", **{
            "user-ttl": "5m",
            "mysql-screation-statements": "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; "
                                          f"GRANT SELECT, INSERT ON `{self.database}`.employees TO '{{{{name}}}}'@'%'"})
        self.access_id = admin.call("create-auth-method-oauth2", {
            "name": f"/MyJWTAuth-{tag}", "jwks-uri": oidc.jwks_uri, "issuer": oidc.url,
            "audience": SEED_AUD, "unique-identifier": "user_login"})["access_id"]
        admin.call("create-role", {"name": f"/MyJWTRole-{tag}"})
        admin.call("set-role-rule", {"role-name": f"/MyJWTRole-{tag}", "path": self.name, "capability": ["read", "list"]})
        admin.call("assoc-role-am", {"role-name": f"/MyJWTRole-{tag}", "am-name": f"/MyJWTAuth-{tag}",
                                     "sub-claims": {"user_login": "jeremy"}})
        self.jwt = oidc.mint(SEED_AUD, user_login="jeremy")
        u = db.url
        # The seed's script lines; its mysql line (run over ssh on the seed's
        # EC2 host) runs here, with the test server's -h/-P and database.
        self.script = (
            'export LC_user=$(echo $DATA | jq -r .id)\n'
            'export LC_pass=$(echo $DATA | jq -r .password)\n'
            f"mysql -h{u.host} -P{u.port} -u$LC_user -p$LC_pass -e 'USE {self.database}; "
            'INSERT INTO employees (First_Name,Last_Name) VALUES ("Wade","Wilson");\'\n'
            'echo "Database Employees updated!"\n'
        )

    def check(self, p: subprocess.CompletedProcess) -> None:
        assert p.returncode == 0, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
        assert "Database Employees updated!" in p.stdout
        rows = self.db.execute(f"SELECT First_Name, Last_Name FROM `{self.database}`.employees")
        assert rows == [("Wade", "Wilson")], rows
        (lease,) = leases(self.admin, self.name)
        assert lease["identity"] == "jeremy" and lease["access_id"] == self.access_id, lease
        creds = self.admin.call("dynamic-secret-tmp-creds-get", {"name": self.name})
        assert [c["id"] for c in creds] == [lease["id"]]


@pytest.fixture
def seed000(server, admin, mysql_db, dev_oidc, janitor):
    if shutil.which("jq") is None or shutil.which("mysql") is None:
        pytest.fail("jq and the mysql client are needed (apt-get install jq mariadb-client)")
    return Seed000(server, admin, mysql_db, dev_oidc, janitor)


def test_seed_000_gitlab_job_updates_mysql_with_a_dynamic_secret(server, seed000, tmp_path):
    """Seed 000's job as written: `export DATA=akeyless://mysqlDS`, the
    Coffer login from the job's JWT, `jq -r .id` / `jq -r .password`, then
    `mysql -u$LC_user -p$LC_pass -e 'USE Employees; INSERT …'`."""
    env = ci_env(server, DATA="akeyless://mysqlDS", AKEYLESS_ACCESS_ID=seed000.access_id, AKEYLESS_JWT=seed000.jwt)
    p = coffer_ci(["run", "--resolve-refs", "--secrets-dir", str(tmp_path), "--", "bash", "-ec", seed000.script], env)
    seed000.check(p)


SEED_000_SECRETS_YML = """\
deploy-job:
  stage: deploy-stage
  id_tokens:
    AKEYLESS_JWT:
      aud: 'https://gitlab.com'
  secrets:
    DATA:
      token: $AKEYLESS_JWT
      akeyless:
        name: mysqlDS
      file: false
  script: [./update-db.sh]
"""


def test_seed_000_job_with_a_gitlab_secrets_block(server, seed000, tmp_path):
    """The same job with GitLab's own `secrets:` block instead of the
    `akeyless://` reference: the dynamic secret's JSON lands in $DATA."""
    f = tmp_path / ".gitlab-ci.yml"
    f.write_text(SEED_000_SECRETS_YML)
    env = ci_env(server, AKEYLESS_ACCESS_ID=seed000.access_id)
    p = coffer_ci(["run", "--job", "deploy-job", "--file", str(f), "--secrets-dir", str(tmp_path),
                   "--id-token", f"AKEYLESS_JWT={seed000.jwt}", "--", "bash", "-ec", seed000.script], env)
    seed000.check(p)


@pytest.fixture
def ado(server, admin):
    """Seed 004's service connection: an API key (AKEYLESS_ACCESS_ID/KEY)."""
    return ado_env(server, admin)


def ado_env(server, admin):
    """The environment of seed 004's tasks after its akeyless-auth task."""
    tag = new_tag()
    creds = admin.new_reader(f"ado-{tag}", "/dynamic/*", caps=("read",))
    admin.call("set-role-rule", {"role-name": f"/role/ado-{tag}", "path": "/rotated/*", "capability": ["read"]})
    env = ci_env(server, AKEYLESS_ACCESS_ID=creds.access_id, AKEYLESS_ACCESS_KEY=creds.access_key)
    p = coffer_ci(["auth", "--format", "json"], env)
    assert p.returncode == 0, p.stderr
    token = json.loads(p.stdout)["akeylessToken"]  # the akeyless-auth task's output
    return ci_env(server, AKEYLESS_TOKEN=token)


def ado_output(p: subprocess.CompletedProcess, variable: str) -> str:
    """The value a `##vso[task.setvariable …]` line sets."""
    assert p.returncode == 0, p.stderr
    prefix = f"##vso[task.setvariable variable={variable};issecret=true;isoutput=true]"
    (line,) = [l for l in p.stdout.splitlines() if l.startswith(prefix)]
    return line[len(prefix):]


def seed_step(script: str, **variables: str) -> str:
    """Run a seed script step; $(Step.var) macros are given as environment
    variables (a macro substituted into "…" would break the JSON's quotes)."""
    p = subprocess.run(["bash", "-ec", script], capture_output=True, text=True, timeout=30,
                       env={"PATH": os.environ["PATH"], **variables})
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_seed_004_azure_devops_dynamic_secret(server, admin, pg_db, ado, janitor):
    tag = new_tag()
    pg_target(admin, pg_db, f"/t/{tag}/pg")
    name = "/dynamic/postgres/credentials"
    janitor.add(pg_db.drop_roles, prefix_of(name))
    admin.call("dynamic-secret-create-postgresql", {"name": name, "target-name": f"/t/{tag}/pg", "user-ttl": "2m"})
    janitor.add(delete_dynamic, admin, name)
    p = coffer_ci(["get-dynamic-secret", "--name", name, "--timeout", "30", "--format", "azure-devops"], ado)
    value = ado_output(p, "dynamicSecretValue")
    out = seed_step("""ttl=$(echo "$DbDynamicSecret_dynamicSecretValue" | jq -r '.ttl_in_minutes')
                       id=$(echo "$DbDynamicSecret_dynamicSecretValue" | jq -r '.id')
                       password=$(echo "$DbDynamicSecret_dynamicSecretValue" | jq -r '.password')
                       printf '%s\\n%s\\n%s\\n' "$ttl" "$id" "$password" """,
                    DbDynamicSecret_dynamicSecretValue=value)
    ttl, role, password = out.splitlines()
    assert ttl == "2"
    assert pg_db.roles(prefix_of(name)) == {role} and pg_db.password_matches(role, password)


class GraphStub:
    """Microsoft Entra ID's token endpoint and Microsoft Graph's application
    password API on one loopback port, as documented: client credentials
    (`POST /{tenant}/oauth2/v2.0/token`, form-encoded, scope
    `<graph>/.default`), `GET /v1.0/applications/{id}?$select=...`,
    `POST /v1.0/applications/{id}/addPassword` ({"passwordCredential":
    {displayName, endDateTime}} -> the credential with keyId and secretText,
    which Graph never shows again) and `POST .../removePassword` ({keyId}
    -> 204). No real Azure can run here."""

    TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    CLIENT_ID = "0c2b6a53-1e04-4b4f-9a51-7d2f0c8f9a11"
    CLIENT_SECRET = "Gr~stub-client-secret-" + uuid.uuid4().hex
    APP = "5d0b8a49-3c2e-4f11-8a7b-0f6c1d2e3a44"

    def __init__(self):
        self.creds: dict[str, dict] = {}
        self.tokens: set[str] = set()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def reply(self, status, body=None):
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def body(self):
                return self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()

            def authorized(self):
                h = self.headers.get("Authorization", "")
                return h.startswith("Bearer ") and h[7:] in stub.tokens

            def graph_error(self, status, code, message):
                self.reply(status, {"error": {"code": code, "message": message, "innerError": {}}})

            def do_POST(self):  # noqa: N802
                raw = self.body()
                if self.path == f"/{stub.TENANT}/oauth2/v2.0/token":
                    form = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
                    if (form.get("grant_type") != "client_credentials" or form.get("client_id") != stub.CLIENT_ID
                            or form.get("client_secret") != stub.CLIENT_SECRET
                            or form.get("scope") != f"{stub.url}/.default"):
                        return self.reply(401, {"error": "invalid_client",
                                                "error_description": "AADSTS7000215: Invalid client secret provided."})
                    tok = uuid.uuid4().hex
                    stub.tokens.add(tok)
                    return self.reply(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": tok})
                if not self.authorized():
                    return self.graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
                body = json.loads(raw or "{}")
                if self.path == f"/v1.0/applications/{stub.APP}/addPassword":
                    pc = body.get("passwordCredential") or {}
                    key = str(uuid.uuid4())
                    cred = {"customKeyIdentifier": None, "displayName": pc.get("displayName"),
                            "endDateTime": pc.get("endDateTime"), "hint": "Q~x", "keyId": key,
                            "secretText": "Q~x" + uuid.uuid4().hex, "startDateTime": "2026-12-07T00:00:00Z"}
                    stub.creds[key] = cred
                    return self.reply(200, cred)
                if self.path == f"/v1.0/applications/{stub.APP}/removePassword":
                    if stub.creds.pop(body.get("keyId"), None) is None:
                        return self.graph_error(400, "Request_BadRequest", "No password credential found.")
                    return self.reply(204)
                self.graph_error(404, "Request_ResourceNotFound", f"Resource '{self.path}' does not exist.")

            def do_GET(self):  # noqa: N802
                if not self.authorized():
                    return self.graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
                path, _, query = self.path.partition("?")
                if path != f"/v1.0/applications/{stub.APP}":
                    return self.graph_error(404, "Request_ResourceNotFound", f"Resource '{path}' does not exist.")
                creds = [{k: v for k, v in c.items() if k != "secretText"} | {"secretText": None}
                         for c in stub.creds.values()]
                self.reply(200, {"id": stub.APP, "passwordCredentials": creds})

            def log_message(self, *args):
                pass

        self.http = loopback_http(Handler)
        self.url = self.http.url

    def close(self):
        self.http.close()


def test_seed_004_azure_app_secret_fields(server_factory, janitor):
    """Seed 004's dynamic-secret step verbatim (`.secret.displayName`,
    `.secret.secretText`, `.ttl_in_minutes`) against an Azure app-secret
    dynamic secret (Graph addPassword), through `coffer ci
    get-dynamic-secret`; the client secret is removed at revocation."""
    graph = GraphStub()
    janitor.add(graph.close)
    srv = server_factory("azure", extra_args=["--azure-login-url", graph.url, "--azure-graph-url", graph.url])
    srv.start(expect_credentials=True)
    admin = srv.admin_client()
    name = "/dynamic/postgres/credentials"
    admin.call("dynamic-secret-create-azure", {
        "name": name, "azure-tenant-id": graph.TENANT, "azure-client-id": graph.CLIENT_ID,
        "azure-client-secret": graph.CLIENT_SECRET, "app-obj-id": graph.APP, "user-ttl": "60m"})
    p = coffer_ci(["get-dynamic-secret", "--name", name, "--timeout", "30", "--format", "azure-devops"],
                  ado_env(srv, admin))
    value = ado_output(p, "dynamicSecretValue")
    out = seed_step("""username=$(echo "$DbDynamicSecret_dynamicSecretValue" | jq -r '.secret.displayName')
                       password=$(echo "$DbDynamicSecret_dynamicSecretValue" | jq -r '.secret.secretText')
                       ttl=$(echo "$DbDynamicSecret_dynamicSecretValue" | jq -r '.ttl_in_minutes')
                       printf '%s\n%s\n%s\n' "$username" "$password" "$ttl" """,
                    DbDynamicSecret_dynamicSecretValue=value)
    username, password, ttl = out.splitlines()
    assert ttl == "60"
    (cred,) = graph.creds.values()
    assert (username, password) == (cred["displayName"], cred["secretText"])
    admin.call("dynamic-secret-tmp-creds-delete", {"name": name, "revoke-all": True})
    assert graph.creds == {}
    log = srv.log_dir.read_bytes() if srv.log_dir.is_file() else b"".join(
        f.read_bytes() for f in srv.log_dir.glob("*") if f.is_file())
    assert graph.CLIENT_SECRET.encode() not in log and password.encode() not in log


def test_seed_004_azure_devops_rotated_secret(server, admin, pg_db, ado, janitor):
    from psycopg import sql

    tag = new_tag()
    pg_target(admin, pg_db, f"/t/{tag}/pg")
    role, pw0 = f"ct_pgrot_{tag}", f"Pg{uuid.uuid4().hex[:20]}"
    with pg_db.connect() as c:
        c.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(pw0)))
    janitor.add(pg_db.drop_roles, role)
    name = "/rotated/pgsql/password"
    admin.call("rotated-secret-create-postgresql", {
        "name": name, "target-name": f"/t/{tag}/pg", "rotator-type": "password", "rotated-username": role,
        "rotated-password": pw0, "authentication-credentials": "use-target-creds"})
    admin.call("gateway-rotate-secret", {"name": name})
    p = coffer_ci(["get-rotated-secret", "--name", name, "--format", "azure-devops"], ado)
    value = ado_output(p, "rotatedSecretValue")
    out = seed_step("""username=$(echo "$DbRotatedSecret_rotatedSecretValue" | jq -r '.value.username')
                       password=$(echo "$DbRotatedSecret_rotatedSecretValue" | jq -r '.value.password')
                       printf '%s\\n%s\\n' "$username" "$password" """,
                    DbRotatedSecret_rotatedSecretValue=value)
    username, password = out.splitlines()
    assert username == role and password != pw0
    assert pg_db.password_matches(role, password) and not pg_db.password_matches(role, pw0)
