#!/usr/bin/env python3
"""Audit cost of an anonymous flood, with and without aggregation.

Starts `coffer server --dev` twice on fresh data dirs: once with the
default aggregation, once with `--audit-failure-burst 4000000000` (every
unauthenticated failure its own record, as before aggregation). Each time
it sends N requests with made-up tokens (401) from loopback over keep-alive
connections in parallel processes, and reports requests/s, the audit
records added, and the growth of the SQLite files (db + WAL) after a
graceful stop.

    bench/audit_flood.py [--requests 10000] [--procs 4] [--bin target/debug/coffer]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def db_bytes(data: Path) -> int:
    return sum(p.stat().st_size for p in data.glob("coffer.db*"))


def records(binary: str, data: Path) -> int:
    """Records in the chain, as `coffer audit verify` counts them (and checks them)."""
    v = subprocess.run([binary, "audit", "verify", "--data-dir", str(data)], capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr
    for tok in v.stdout.replace(",", " ").split():
        if tok.isdigit():
            return int(tok)
    raise RuntimeError(f"cannot read the record count from: {v.stdout}")


def worker(args):
    url, n, seed = args
    s = requests.Session()
    for i in range(n):
        r = s.post(f"{url}/get-secret-value", json={"names": ["/x"], "token": f"t-{seed}-{i:030x}"})
        assert r.status_code == 401, r.status_code
    return n


def run(binary: str, extra: list[str], n: int, procs: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="coffer-flood-"))
    data = tmp / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(tmp / "out.log", "wb") as out, open(tmp / "err.log", "wb") as err:
        proc = subprocess.Popen([binary, "server", "--dev", "--data-dir", str(data), "--listen",
                                 f"127.0.0.1:{port}", *extra], stdout=out, stderr=err,
                                env={**os.environ, "COFFER_LOG": "warn"})
    try:
        for _ in range(600):
            try:
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        before_bytes, before_recs = db_bytes(data), records(binary, data)
        with open(tmp / "out.log", "ab") as out, open(tmp / "err.log", "ab") as err:
            proc = subprocess.Popen([binary, "server", "--dev", "--data-dir", str(data), "--listen",
                                     f"127.0.0.1:{port}", *extra], stdout=out, stderr=err,
                                    env={**os.environ, "COFFER_LOG": "warn"})
        for _ in range(600):
            try:
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        per = n // procs
        t0 = time.perf_counter()
        with mp.Pool(procs) as pool:
            sent = sum(pool.map(worker, [(url, per, k) for k in range(procs)]))
        elapsed = time.perf_counter() - t0
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        return {
            "requests": sent,
            "seconds": round(elapsed, 2),
            "req_per_s": round(sent / elapsed),
            "records_added": records(binary, data) - before_recs,
            "db_bytes_added": db_bytes(data) - before_bytes,
        }
    finally:
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--bin", default=os.environ.get("COFFER_BIN", "target/debug/coffer"))
    a = ap.parse_args()
    out = {
        "every failure recorded (--audit-failure-burst 4000000000)":
            run(a.bin, ["--audit-failure-burst", "4000000000"], a.requests, a.procs),
        "aggregated (defaults)": run(a.bin, [], a.requests, a.procs),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
