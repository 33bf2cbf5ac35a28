"""Keys, SSH certificates and PKI (X.509) certificates against the real
tools that consume them: a real `sshd` (user and host certificates,
refusals), `ssh-keygen -L`, and `openssl` (verify, chains, a TLS
handshake, CRLs).

- SSH: an Ed25519 CA (and an RSA and an EC256 one) whose public halves
  come from `get-rsa-public`; sshd trusts them (TrustedUserCAKeys) and
  lets a Coffer certificate log in; its log names the caller (the key ID)
  and the serial. Refusals: a user outside allowed-users (Coffer, 403), a
  certificate whose principal is not the login user, an expired one, one
  restricted to another source address (sshd). force-command is obeyed,
  a host certificate is trusted through `@cert-authority`.
- PKI: a root CA key with a self-signed certificate, issuers with a
  domain policy; a CSR made by `openssl req` and a bare public key get
  certificates that `openssl verify` accepts and that serve a TLS
  handshake `openssl s_client` verifies (hostname included); an
  intermediate CA certificate attached to a second key with
  update-classic-key-certificate issues a leaf whose parent_cert is the
  chain. Out-of-policy requests are refused with 403 and a message naming
  the field; malformed ones with 400. Revocation shows in cert-list and in
  the CRL (`openssl crl -verify`, `openssl verify -crl_check`).
- Permissions: a reader of an issuer gets certificates but cannot use or
  read the CA key, nor make an issuer sign with a key it cannot read.
- Keys: encrypt/decrypt with an encryption context, rotation, imported
  keys never on disk or in logs in a readable form.
- `coffer ci`: the seed's "Issue certificate" examples (SSH with
  cert_user_name + public_key_data, PKI with csr_data or public_key_data)
  resolve to certificates.
- Every issuance has an audit record naming the caller and holding no key
  material.

sshd runs on a free loopback port from a temp dir. As root it logs the
test in as root (privilege separation needs /run/sshd, made if missing);
otherwise it runs unprivileged (UsePAM no) and logs in as the current
user. The SSH tests are skipped, saying why, when sshd or ssh is missing
(.ci/run installs openssh-server and openssh-client).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from cofferlib import Client, CofferServer, DevOidc, _remember_pid, coffer_bin, free_port, poll, server_env
from test_no_plaintext_at_rest import encoded_forms, find_leaks

SSHD = next((p for p in (shutil.which("sshd"), "/usr/sbin/sshd") if p and os.access(p, os.X_OK)), None)
SSH = shutil.which("ssh")
SSH_KEYGEN = shutil.which("ssh-keygen")
OPENSSL = shutil.which("openssl")
IS_ROOT = os.geteuid() == 0
LOGIN = pwd.getpwuid(os.geteuid()).pw_name
# A second user name the SSH issuer allows (need not exist on this machine).
OTHER = "deploy" if LOGIN != "deploy" else "ubuntu"
SEED_AUD = "https://gitlab.com"

needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed (Debian: apt-get install openssl)")
needs_ssh_keygen = pytest.mark.skipif(SSH_KEYGEN is None,
                                      reason="ssh-keygen is not installed (Debian: apt-get install openssh-client)")


# --------------------------------------------------------------------------
# Helpers


def run(cmd: list[str], *, check: bool = True, input: str | None = None, timeout: float = 30,
        env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, input=input, timeout=timeout,
                       stdin=None if input is not None else subprocess.DEVNULL, env=env, cwd=cwd)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd[:3]))} … exited {p.returncode}\n"
                             f"stdout: {p.stdout[-2000:]}\nstderr: {p.stderr[-2000:]}")
    return p


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def error_of(r: requests.Response) -> str:
    try:
        return str(r.json().get("error", r.text))
    except ValueError:
        return r.text


def refused(client: Client, op: str, body: dict, status: int, *needles: str) -> str:
    """The request fails with `status` and a message holding every needle."""
    r = client.raw(op, body)
    msg = error_of(r)
    assert r.status_code == status, f"{op}: expected HTTP {status}, got {r.status_code}: {msg}"
    for n in needles:
        assert n in msg, f"{op}: {n!r} not in the refusal: {msg}"
    return msg


def pem_blocks(text: str, kind: str = "CERTIFICATE") -> list[str]:
    return re.findall(rf"-----BEGIN {kind}-----\n.*?-----END {kind}-----\n?", text, re.S)


def norm_serial(s: str) -> str:
    return s.replace(":", "").lower().lstrip("0")


def openssl(*args, **kw) -> subprocess.CompletedProcess:
    return run([OPENSSL, *args], **kw)


def cert_serial(path: Path) -> str:
    out = openssl("x509", "-in", path, "-noout", "-serial").stdout.strip()
    return norm_serial(out.split("=", 1)[1])


def cert_text(path: Path) -> str:
    return openssl("x509", "-in", path, "-noout", "-text").stdout


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@dataclass
class KeyPair:
    """A private key made by openssl in a temp dir, never sent to Coffer."""
    key: Path
    pub_pem: str


def ec_keypair(d: Path, name: str) -> KeyPair:
    key = d / f"{name}.key"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    pub = openssl("pkey", "-in", key, "-pubout").stdout
    return KeyPair(key, pub)


def make_csr(d: Path, name: str, subj: str, *addext: str) -> tuple[Path, str]:
    """`openssl req -new -newkey ec …` as an operator would type it; a
    minimal config so the machine's openssl.cnf adds no extensions."""
    cnf = write(d / "req.cnf", "[req]\ndistinguished_name = dn\n[dn]\n")
    key, csr = d / f"{name}.key", d / f"{name}.csr"
    args = ["req", "-config", cnf, "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", subj]
    for e in addext:
        args += ["-addext", e]
    openssl(*args)
    return key, csr.read_text()


def ssh_keygen_list(cert: Path) -> dict:
    """`ssh-keygen -L` parsed: type, key_id, serial, valid (from, to) in
    UTC, principals, critical options, extensions, signing CA."""
    out = run([SSH_KEYGEN, "-L", "-f", cert], env={**os.environ, "TZ": "UTC"}).stdout
    info: dict = {"raw": out, "principals": [], "critical": [], "extensions": []}
    section = None
    for line in out.splitlines():
        s = line.strip()
        if m := re.match(r"Type: (\S+) (user|host) certificate", s):
            info["alg"], info["type"] = m[1], m[2]
        elif m := re.match(r'Key ID: "(.*)"$', s):
            info["key_id"] = m[1]
        elif m := re.match(r"Serial: (\d+)", s):
            info["serial"] = int(m[1])
        elif m := re.match(r"Signing CA: (\S+) (\S+) \(using (\S+)\)", s):
            info["ca_type"], info["ca_fp"], info["ca_sig"] = m[1], m[2], m[3]
        elif m := re.match(r"Valid: from (\S+) to (\S+)", s):
            info["valid"] = tuple(dt.datetime.fromisoformat(x).replace(tzinfo=dt.timezone.utc).timestamp()
                                  for x in m.groups())
        elif s.startswith("Principals:"):
            section = "principals"
        elif s.startswith("Critical Options:"):
            section = "critical"
        elif s.startswith("Extensions:"):
            section = "extensions"
        elif section and s and s != "(none)" and line.startswith((" " * 16, "\t\t")):
            info[section].append(s)
    return info


def ssh_keypair(d: Path, name: str, kind: str = "ed25519") -> tuple[Path, str]:
    key = d / name
    args = ["-q", "-t", kind, "-N", "", "-C", f"{name}@coffer-test", "-f", key]
    if kind == "rsa":
        args[3:3] = ["-b", "3072"]
    run([SSH_KEYGEN, *args])
    return key, (d / f"{name}.pub").read_text().strip()


# --------------------------------------------------------------------------
# The world: one Coffer server with CA keys and issuers


@dataclass
class World:
    server: CofferServer
    admin: Client
    tmp: Path

    def client(self, creds) -> Client:
        c = Client(self.server.url)
        c.login(creds.access_id, creds.access_key)
        return c

    def root_pem(self, key: str) -> str:
        return self.admin.call("describe-item", {"name": key})["certificates"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    tmp = tmp_path_factory.mktemp("coffer-certs")
    server = CofferServer(data_dir=tmp / "data", log_dir=tmp / "logs").start(expect_credentials=True)
    try:
        admin = server.admin_client()
        w = World(server, admin, tmp)
        # SSH CAs.
        admin.call("create-classic-key", {"name": "/ca/ssh-ed", "alg": "Ed25519"})
        admin.call("create-classic-key", {"name": "/ca/ssh-rsa", "alg": "RSA2048"})
        admin.call("create-classic-key", {"name": "/ca/ssh-host", "alg": "EC256"})
        admin.call("create-ssh-cert-issuer", {
            "name": "/issuers/ssh", "signer-key-name": "/ca/ssh-ed", "allowed-users": f"{LOGIN},{OTHER}",
            "principals": "coffer-ops", "ttl": 600, "extensions": {"permit-pty": ""}, "cert-type": "user"})
        admin.call("create-ssh-cert-issuer", {
            "name": "/issuers/ssh-rsa", "signer-key-name": "/ca/ssh-rsa", "allowed-users": LOGIN, "ttl": 600})
        admin.call("create-ssh-cert-issuer", {
            "name": "/issuers/ssh-forced", "signer-key-name": "/ca/ssh-ed", "allowed-users": LOGIN, "ttl": 600,
            "critical-options": {"force-command": "echo forced-by-coffer"}})
        admin.call("create-ssh-cert-issuer", {
            "name": "/issuers/ssh-elsewhere", "signer-key-name": "/ca/ssh-ed", "allowed-users": LOGIN, "ttl": 600,
            "critical-options": {"source-address": "192.0.2.0/24"}})
        admin.call("create-ssh-cert-issuer", {
            "name": "/issuers/ssh-host", "signer-key-name": "/ca/ssh-host", "allowed-users": "127.0.0.1,localhost",
            "ttl": 3600, "cert-type": "host"})
        # PKI: a root CA, issuers for example.com.
        admin.call("create-key", {
            "name": "/ca/root", "alg": "EC256", "generate-self-signed-certificate": True, "certificate-ttl": 30,
            "certificate-common-name": "Coffer Test Root CA"})
        admin.call("create-pki-cert-issuer", {
            "name": "/issuers/web", "signer-key-name": "/ca/root", "ttl": 3600, "allowed-domains": "example.com",
            "allow-subdomains": True, "server-flag": True, "allowed-ip-sans": "127.0.0.1/32"})
        admin.call("create-pki-cert-issuer", {
            "name": "/issuers/web-exact", "signer-key-name": "/ca/root", "ttl": 3600,
            "allowed-domains": "example.com", "server-flag": True})
        # CI client certificates for a bare public key (GitLab's
        # `public_key_data` carries no name): the subject is the issuer's.
        admin.call("create-pki-cert-issuer", {
            "name": "/issuers/ci-client", "signer-key-name": "/ca/root", "ttl": 3600, "not-require-cn": True,
            "organizations": "Acme CI", "client-flag": True})
        admin.call("create-key", {"name": "/ca/aes", "alg": "AES256GCM"})
        yield w
    finally:
        server.stop()


def ssh_ca_line(admin: Client, key: str) -> str:
    return admin.call("get-rsa-public", {"name": key})["ssh"].strip()


def get_ssh_cert(client: Client, d: Path, pub: str, key: Path, issuer: str = "/issuers/ssh",
                 user: str = LOGIN, ttl: int | None = None, name: str | None = None) -> Path:
    body = {"cert-issuer-name": issuer, "cert-username": user, "public-key-data": pub}
    if ttl is not None:
        body["ttl"] = ttl
    out = client.call("get-ssh-certificate", body)
    assert out["path"] == "" and out["data"].split()[0].endswith("-cert-v01@openssh.com"), out
    cert = d / (name or f"{key.name}-cert.pub")
    cert.write_text(out["data"].strip() + "\n")
    return cert


# --------------------------------------------------------------------------
# sshd


@dataclass
class Sshd:
    port: int
    dir: Path
    log: Path
    proc: subprocess.Popen
    host_ca: str  # the host CA's OpenSSH public key line

    def log_text(self) -> str:
        return self.log.read_text("utf-8", "replace")

    def wait_log(self, *needles: str, after: int = 0, timeout: float = 5) -> str:
        def seen():
            text = self.log_text()[after:]
            return text if all(n in text for n in needles) else None
        try:
            return poll(seen, timeout, f"sshd to log {needles}", interval=0.1)
        except TimeoutError:
            raise AssertionError(f"sshd did not log {needles}; its log since:\n{self.log_text()[after:][-3000:]}") from None

    def ssh(self, key: Path, cert: Path | None, user: str = LOGIN, command: str = "echo ok",
            known_hosts: Path | None = None) -> subprocess.CompletedProcess:
        opts = ["-F", "/dev/null", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
                "-o", "BatchMode=yes", "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no",
                "-o", "ConnectTimeout=10", "-o", "GlobalKnownHostsFile=/dev/null", "-p", str(self.port)]
        if cert is not None:
            opts += ["-o", f"CertificateFile={cert}"]
        if known_hosts is None:
            opts += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
        else:
            opts += ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}"]
        return run([SSH, *opts, f"{user}@127.0.0.1", command], check=False, timeout=30)


def root_account_locked() -> bool:
    try:
        for line in Path("/etc/shadow").read_text().splitlines():
            f = line.split(":")
            if f[0] == LOGIN:
                return f[1].startswith("!") or "*LK*" in f[1]
    except OSError:
        pass
    return False


@pytest.fixture(scope="module")
def sshd(world, tmp_path_factory) -> Sshd:
    if SSHD is None or SSH is None or SSH_KEYGEN is None:
        pytest.skip("OpenSSH is not installed (need /usr/sbin/sshd, ssh and ssh-keygen; "
                    "Debian: apt-get install openssh-server openssh-client — .ci/run installs them)")
    if IS_ROOT and root_account_locked():
        pytest.skip(f"the account {LOGIN} is locked ('!' in /etc/shadow), so sshd with UsePAM=no refuses it")
    d = tmp_path_factory.mktemp("coffer-sshd")
    d.chmod(0o755)
    admin = world.admin
    # Host key, certified by Coffer's host CA (a host certificate issuer).
    host_key = d / "ssh_host_ed25519_key"
    run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", host_key])
    out = admin.call("get-ssh-certificate", {"cert-issuer-name": "/issuers/ssh-host", "cert-username": "127.0.0.1",
                                             "public-key-data": (d / "ssh_host_ed25519_key.pub").read_text()})
    write(d / "ssh_host_ed25519_key-cert.pub", out["data"].strip() + "\n")
    # The user CAs sshd trusts: get-rsa-public's `ssh` of the Ed25519 and RSA CA keys.
    write(d / "user_ca_keys.pub", ssh_ca_line(admin, "/ca/ssh-ed") + "\n" + ssh_ca_line(admin, "/ca/ssh-rsa") + "\n")
    port = free_port()
    cfg = write(d / "sshd_config", "\n".join([
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {host_key}",
        f"HostCertificate {d}/ssh_host_ed25519_key-cert.pub",
        f"TrustedUserCAKeys {d}/user_ca_keys.pub",
        "AuthorizedPrincipalsFile none",
        "AuthorizedKeysFile none",   # certificates only: no authorized_keys may let a key in
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "HostbasedAuthentication no",
        "PermitRootLogin prohibit-password",
        "UsePAM no",
        "StrictModes no",
        "UseDNS no",
        "PrintMotd no",
        "PrintLastLog no",
        f"PidFile {d}/sshd.pid",
        "LogLevel VERBOSE",
        "MaxStartups 50",
    ]) + "\n")
    if IS_ROOT:
        # Privilege separation's chroot (Debian makes it at boot, not at install).
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    check = run([SSHD, "-t", "-f", cfg], check=False)
    assert check.returncode == 0, f"sshd -t refused the test config: {check.stderr}"
    log = d / "sshd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(cfg)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=d)
    _remember_pid(proc.pid)
    s = Sshd(port, d, log, proc, ssh_ca_line(admin, "/ca/ssh-host"))

    def listening():
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {s.log_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    try:
        poll(listening, 20, "sshd to listen")
        yield s
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def gitlab(world, dev_oidc):
    """A GitLab-shaped JWT auth method (the dev OIDC issuer) whose jobs of
    group/app may read /issuers/*; returns (access id, auth method name)."""
    name = "/ci/gitlab"
    access_id = world.admin.call("create-auth-method-oauth2", {
        "name": name, "jwks-uri": f"{dev_oidc.url}/oauth/discovery/keys", "issuer": dev_oidc.url,
        "audience": SEED_AUD, "unique-identifier": "user_login"})["access_id"]
    world.admin.call("create-role", {"name": "/roles/gitlab-issue"})
    world.admin.call("set-role-rule", {"role-name": "/roles/gitlab-issue", "path": "/issuers/*",
                                       "capability": ["read", "list"]})
    world.admin.call("assoc-role-am", {"role-name": "/roles/gitlab-issue", "am-name": name,
                                       "sub-claims": {"project_path": "group/app"}})
    return access_id, name


def jwt_client(world: World, dev_oidc: DevOidc, access_id: str, user_login: str) -> Client:
    c = Client(world.server.url)
    out = c.call("auth", {"access-id": access_id, "access-type": "jwt",
                          "jwt": dev_oidc.mint(SEED_AUD, project_path="group/app", ref="main", user_login=user_login)},
                 token=False)
    c.token = out["token"]
    return c


# --------------------------------------------------------------------------
# SSH


def test_ssh_certificate_logs_in_to_a_real_sshd_and_names_the_caller(world, sshd, gitlab, dev_oidc, tmp_path):
    """A CI job (JWT login, identity alice) gets a certificate for the login
    user; sshd lets it in and logs the key ID (who asked) and the serial."""
    access_id, am = gitlab
    job = jwt_client(world, dev_oidc, access_id, "alice")
    key, pub = ssh_keypair(tmp_path, "id_ed25519")
    cert = get_ssh_cert(job, tmp_path, pub, key)
    info = ssh_keygen_list(cert)
    expected_id = f"alice (auth method {am}, access id {access_id})"
    assert info["key_id"] == expected_id, info["raw"]

    mark = len(sshd.log_text())
    p = sshd.ssh(key, cert)
    assert p.returncode == 0 and p.stdout.strip() == "ok", f"ssh failed ({p.returncode}): {p.stderr}\n{sshd.log_text()[mark:][-2000:]}"
    log = sshd.wait_log("Accepted", after=mark)
    assert f'ID "{expected_id}"' in log or f"ID {expected_id}" in log, log[-2000:]
    assert f"serial {info['serial']}" in log, log[-2000:]
    assert f"Accepted publickey for {LOGIN} from 127.0.0.1" in log, log[-2000:]

    # The issuance is recorded (cert-list) under the job's identity.
    listed = [c for c in world.admin.call("cert-list", {"cert-issuer-name": "/issuers/ssh"})["certificates"]
              if int(c["serial_number"], 16) == info["serial"]]
    assert len(listed) == 1, listed
    rec = listed[0]
    assert rec["access_id"] == access_id and rec["identity"] == "alice" and rec["kind"] == "ssh"
    assert rec["subject"] == expected_id and set(rec["names"]) == {LOGIN, "coffer-ops"} and not rec["revoked"]


@needs_ssh_keygen
def test_ssh_keygen_shows_what_the_issuer_and_request_say(world, tmp_path):
    """Principals (the requested user + the issuer's principals), validity
    (30 s backdated, ttl ahead), key ID, serial, extensions exactly as
    configured; the RSA CA signs with rsa-sha2-512; a host certificate."""
    admin = world.admin
    key, pub = ssh_keypair(tmp_path, "id_ed25519")
    t0 = time.time()
    cert = get_ssh_cert(admin, tmp_path, pub, key, user=OTHER, ttl=120)
    info = ssh_keygen_list(cert)
    assert info["type"] == "user" and info["alg"] == "ssh-ed25519-cert-v01@openssh.com", info["raw"]
    assert info["principals"] == [OTHER, "coffer-ops"], info["raw"]
    assert info["key_id"] == f"{world.server.admin.access_id} (auth method /admin)", info["raw"]
    assert info["extensions"] == ["permit-pty"] and info["critical"] == [], info["raw"]
    assert info["ca_type"] == "ED25519" and info["ca_sig"] == "ssh-ed25519", info["raw"]
    start, end = info["valid"]
    assert end - start == 120 + 30, info["raw"]
    assert t0 - 32 <= start <= time.time() - 28, (t0, start)
    # The signing CA is the key get-rsa-public returns.
    ca_fp = run([SSH_KEYGEN, "-l", "-f", write(tmp_path / "ca.pub", ssh_ca_line(admin, "/ca/ssh-ed") + "\n")]).stdout
    assert info["ca_fp"] in ca_fp

    # Two certificates for the same key and user: different serials (and nonces).
    cert2 = get_ssh_cert(admin, tmp_path, pub, key, user=OTHER, ttl=120, name="second-cert.pub")
    info2 = ssh_keygen_list(cert2)
    assert info2["serial"] != info["serial"] and cert2.read_text() != cert.read_text()
    serials = {int(c["serial_number"], 16) for c in admin.call("cert-list", {"cert-issuer-name": "/issuers/ssh"})["certificates"]}
    assert {info["serial"], info2["serial"]} <= serials

    # Issuer defaults: no extensions map → ssh-keygen's default user extensions.
    rsa_cert = get_ssh_cert(admin, tmp_path, pub, key, issuer="/issuers/ssh-rsa", name="rsa-cert.pub")
    r = ssh_keygen_list(rsa_cert)
    assert r["ca_type"] == "RSA" and r["ca_sig"] == "rsa-sha2-512", r["raw"]
    assert r["principals"] == [LOGIN]
    assert sorted(r["extensions"]) == sorted(["permit-X11-forwarding", "permit-agent-forwarding",
                                               "permit-port-forwarding", "permit-pty", "permit-user-rc"]), r["raw"]
    forced = ssh_keygen_list(get_ssh_cert(admin, tmp_path, pub, key, issuer="/issuers/ssh-forced", name="f.pub"))
    assert any(c.startswith("force-command") and "echo forced-by-coffer" in c for c in forced["critical"]), forced["raw"]

    # A host certificate (RSA subject key too).
    hkey, hpub = ssh_keypair(tmp_path, "host_rsa", "rsa")
    host = ssh_keygen_list(get_ssh_cert(admin, tmp_path, hpub, hkey, issuer="/issuers/ssh-host", user="localhost"))
    assert host["type"] == "host" and host["alg"] == "ssh-rsa-cert-v01@openssh.com", host["raw"]
    assert host["principals"] == ["localhost"] and host["extensions"] == [] and host["ca_type"] == "ECDSA", host["raw"]


def test_ssh_refusals_coffer_and_sshd(world, sshd, tmp_path):
    admin = world.admin
    key, pub = ssh_keypair(tmp_path, "id_ed25519")

    # Coffer refuses a user outside allowed-users (403, the field named).
    refused(admin, "get-ssh-certificate", {"cert-issuer-name": "/issuers/ssh", "cert-username": "mallory",
                                           "public-key-data": pub}, 403, "cert-username", "allowed-users")
    # ttl above the issuer's: 403 naming ttl; malformed key: 400.
    refused(admin, "get-ssh-certificate", {"cert-issuer-name": "/issuers/ssh", "cert-username": LOGIN,
                                           "public-key-data": pub, "ttl": 601}, 403, "ttl")
    refused(admin, "get-ssh-certificate", {"cert-issuer-name": "/issuers/ssh", "cert-username": LOGIN,
                                           "public-key-data": "ssh-ed25519 AAAAnotakey"}, 400, "public-key-data")
    # The CA's own key is never certified.
    refused(admin, "get-ssh-certificate", {"cert-issuer-name": "/issuers/ssh", "cert-username": LOGIN,
                                           "public-key-data": ssh_ca_line(admin, "/ca/ssh-ed")}, 400, "CA")

    # A certificate Coffer issued for another principal: sshd refuses it for the login user.
    other = get_ssh_cert(admin, tmp_path, pub, key, user=OTHER, name="other-cert.pub")
    mark = len(sshd.log_text())
    p = sshd.ssh(key, other)
    assert p.returncode == 255 and "ok" not in p.stdout, (p.returncode, p.stdout, p.stderr)
    assert "Permission denied" in p.stderr, p.stderr
    sshd.wait_log("not a listed principal", after=mark)

    # A certificate restricted to another source address.
    elsewhere = get_ssh_cert(admin, tmp_path, pub, key, issuer="/issuers/ssh-elsewhere", name="elsewhere-cert.pub")
    mark = len(sshd.log_text())
    p = sshd.ssh(key, elsewhere)
    assert p.returncode == 255 and "ok" not in p.stdout, (p.returncode, p.stderr)
    sshd.wait_log("source address", after=mark)

    # force-command in the certificate wins over the command asked for.
    forced = get_ssh_cert(admin, tmp_path, pub, key, issuer="/issuers/ssh-forced", name="forced-cert.pub")
    p = sshd.ssh(key, forced, command="echo not-this")
    assert p.returncode == 0 and p.stdout.strip() == "forced-by-coffer", (p.returncode, p.stdout, p.stderr)

    # The key alone (no certificate) is refused: sshd trusts only the CA.
    p = sshd.ssh(key, None)
    assert p.returncode == 255, (p.returncode, p.stdout)

    # An RSA CA's certificate (rsa-sha2-512) logs in too.
    rsa = get_ssh_cert(admin, tmp_path, pub, key, issuer="/issuers/ssh-rsa", name="rsa-cert.pub")
    p = sshd.ssh(key, rsa)
    assert p.returncode == 0 and p.stdout.strip() == "ok", (p.returncode, p.stderr)


def test_ssh_expired_certificate_is_refused_by_sshd(world, sshd, tmp_path):
    """ttl=2: valid from now-30 s to now+2 s. It logs in at once and is
    refused once that end has passed."""
    key, pub = ssh_keypair(tmp_path, "id_ed25519")
    cert = get_ssh_cert(world.admin, tmp_path, pub, key, ttl=2)
    _, end = ssh_keygen_list(cert)["valid"]
    p = sshd.ssh(key, cert)
    if time.time() < end - 0.5:  # a slow machine may already be past the end
        assert p.returncode == 0 and p.stdout.strip() == "ok", (p.returncode, p.stderr)
    time.sleep(max(0.0, end - time.time()) + 1.5)
    mark = len(sshd.log_text())
    p = sshd.ssh(key, cert)
    assert p.returncode == 255 and "ok" not in p.stdout, (p.returncode, p.stdout, p.stderr)
    sshd.wait_log("expired", after=mark)
    # cert-list leaves expired certificates out unless asked for them.
    serial = f"{ssh_keygen_list(cert)['serial']:016x}"
    current = {c["serial_number"] for c in world.admin.call("cert-list", {"cert-issuer-name": "/issuers/ssh"})["certificates"]}
    every = {c["serial_number"] for c in world.admin.call("cert-list", {"cert-issuer-name": "/issuers/ssh",
                                                                         "include-expired": True})["certificates"]}
    assert serial not in current and serial in every, serial


def test_ssh_host_certificate_is_trusted_through_cert_authority(sshd, tmp_path, world):
    """The client trusts the server through `@cert-authority` with the host
    CA's key from get-rsa-public, and refuses it with another CA."""
    key, pub = ssh_keypair(tmp_path, "id_ed25519")
    cert = get_ssh_cert(world.admin, tmp_path, pub, key)
    good = write(tmp_path / "known_hosts", f"@cert-authority * {sshd.host_ca}\n")
    p = sshd.ssh(key, cert, known_hosts=good)
    assert p.returncode == 0 and p.stdout.strip() == "ok", (p.returncode, p.stderr)
    wrong = write(tmp_path / "known_hosts_wrong", f"@cert-authority * {ssh_ca_line(world.admin, '/ca/ssh-ed')}\n")
    p = sshd.ssh(key, cert, known_hosts=wrong)
    assert p.returncode == 255 and "Host key verification failed" in p.stderr, (p.returncode, p.stderr)


# --------------------------------------------------------------------------
# PKI


@pytest.fixture(scope="module")
def root_pem(world) -> Path:
    if OPENSSL is None:
        pytest.skip("openssl is not installed (Debian: apt-get install openssl)")
    pem = world.root_pem("/ca/root")
    assert len(pem_blocks(pem)) == 1, pem
    path = write(world.tmp / "root.pem", pem)
    text = cert_text(path)
    assert "CA:TRUE" in text and "Coffer Test Root CA" in text, text
    return path


def get_pki(client: Client, issuer: str = "/issuers/web", **body) -> dict:
    body = {k.replace("_", "-"): v for k, v in body.items()}
    return client.call("get-pki-certificate", {"cert-issuer-name": issuer, **body})


def test_pki_csr_from_openssl_verifies_and_serves_tls(world, root_pem, tmp_path):
    key, csr = make_csr(tmp_path, "api", "/CN=api.example.com", "subjectAltName=DNS:api.example.com")
    out = get_pki(world.admin, csr_data_base64=b64(csr), ttl=600)
    assert set(out) >= {"data", "parent_cert", "cert_display_id", "cert_item_id", "path", "reading_token"}, out
    leaf = write(tmp_path / "leaf.pem", out["data"])
    assert pem_blocks(out["parent_cert"]) == pem_blocks(root_pem.read_text())
    assert norm_serial(out["cert_display_id"]) == cert_serial(leaf)
    v = openssl("verify", "-CAfile", root_pem, leaf)
    assert v.stdout.strip().endswith(": OK"), v.stdout

    text = cert_text(leaf)
    assert "DNS:api.example.com" in text and "CA:FALSE" in text, text
    assert "TLS Web Server Authentication" in text and "TLS Web Client Authentication" not in text, text
    assert "Subject: CN = api.example.com" in text, text
    # ttl 600 s from now (and a little backdating).
    nb = openssl("x509", "-in", leaf, "-noout", "-startdate", "-enddate").stdout
    dates = dict(line.split("=", 1) for line in nb.strip().splitlines())
    fmt = "%b %d %H:%M:%S %Y %Z"
    not_after = dt.datetime.strptime(" ".join(dates["notAfter"].split()), fmt).replace(tzinfo=dt.timezone.utc)
    assert abs(not_after.timestamp() - (time.time() + 600)) < 30, dates

    # A real TLS handshake with that certificate, verified by s_client.
    port = free_port()
    log = tmp_path / "s_server.log"
    with open(log, "wb") as f:
        srv = subprocess.Popen([OPENSSL, "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(leaf),
                                "-key", str(key), "-www"], stdout=f, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    try:
        poll(lambda: "ACCEPT" in log.read_text() or srv.poll() is not None, 15, "openssl s_server to listen")
        assert srv.poll() is None, log.read_text()

        def s_client(host: str) -> subprocess.CompletedProcess:
            return run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", host,
                        "-CAfile", root_pem, "-verify_return_error", "-verify_hostname", host, "-brief"],
                       check=False, timeout=20)

        ok = s_client("api.example.com")
        assert ok.returncode == 0, ok.stderr
        assert "Verification: OK" in ok.stderr and "api.example.com" in ok.stderr, ok.stderr
        bad = s_client("www.example.org")
        assert bad.returncode != 0 and "hostname mismatch" in (bad.stderr + bad.stdout), bad.stderr
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(10)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()


def test_pki_bare_public_key_and_ip_san(world, root_pem, tmp_path):
    """key-data-base64: Coffer certifies a public key (it never sees the
    private key); names from common-name and alt-names (DNS and IP)."""
    kp = ec_keypair(tmp_path, "web")
    out = get_pki(world.admin, key_data_base64=b64(kp.pub_pem), common_name="web.example.com",
                  alt_names="www.example.com,127.0.0.1")
    leaf = write(tmp_path / "web.pem", out["data"])
    assert openssl("verify", "-CAfile", root_pem, leaf).stdout.strip().endswith(": OK")
    assert openssl("x509", "-in", leaf, "-noout", "-pubkey").stdout == kp.pub_pem
    text = cert_text(leaf)
    for name in ("DNS:web.example.com", "DNS:www.example.com", "IP Address:127.0.0.1"):
        assert name in text, text
    # The certificate's key matches the private key kept here.
    assert openssl("x509", "-in", leaf, "-noout", "-checkend", "0").returncode == 0
    v = openssl("verify", "-CAfile", root_pem, "-verify_ip", "127.0.0.1", leaf)
    assert v.stdout.strip().endswith(": OK")
    # The base64 of DER works as well as base64 of PEM.
    der_bytes = subprocess.run([OPENSSL, "pkey", "-pubin", "-in", str(write(tmp_path / "web.pub", kp.pub_pem)),
                                "-outform", "DER"],
                               capture_output=True, check=True).stdout
    out2 = get_pki(world.admin, key_data_base64=b64(der_bytes), common_name="web.example.com")
    assert openssl("verify", "-CAfile", root_pem, write(tmp_path / "web2.pem", out2["data"])).returncode == 0


@needs_openssl
@pytest.mark.parametrize("ca_alg", ["EC384", "RSA2048", "Ed25519"])
def test_pki_roots_and_subject_keys_of_every_algorithm(world, ca_alg, tmp_path):
    """Roots of the other signing algorithms; subject keys RSA, Ed25519 and
    P-384 from openssl; everything verifies with openssl."""
    admin = world.admin
    root, issuer = f"/ca/root-{ca_alg.lower()}", f"/issuers/web-{ca_alg.lower()}"
    admin.call("create-key", {"name": root, "alg": ca_alg, "generate-self-signed-certificate": True,
                              "certificate-ttl": 10, "certificate-common-name": f"Root {ca_alg}",
                              "certificate-organization": "Coffer Test", "certificate-country": "DE"})
    root_pem = write(tmp_path / "root.pem", world.root_pem(root))
    text = cert_text(root_pem)
    assert "CA:TRUE" in text and f"CN = Root {ca_alg}" in text and "C = DE" in text, text
    assert openssl("verify", "-CAfile", root_pem, root_pem).returncode == 0
    admin.call("create-pki-cert-issuer", {"name": issuer, "signer-key-name": root, "ttl": 3600,
                                          "allowed-domains": "example.com", "allow-subdomains": True,
                                          "server-flag": True, "client-flag": True})
    for kind, genargs in [("rsa", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                          ("ed25519", ["-algorithm", "ED25519"]),
                          ("p384", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"])]:
        key = tmp_path / f"{kind}.key"
        openssl("genpkey", *genargs, "-out", key)
        cnf = write(tmp_path / "req.cnf", "[req]\ndistinguished_name = dn\n[dn]\n")
        csr = openssl("req", "-config", cnf, "-new", "-key", key, "-subj", f"/CN={kind}.example.com").stdout
        out = get_pki(admin, issuer, csr_data_base64=b64(csr), extended_key_usage="clientauth")
        leaf = write(tmp_path / f"{kind}.pem", out["data"])
        v = openssl("verify", "-CAfile", root_pem, "-purpose", "sslclient", leaf, check=False)
        assert v.returncode == 0 and v.stdout.strip().endswith(": OK"), f"{ca_alg} CA, {kind} key: {v.stdout}{v.stderr}"
        assert openssl("x509", "-in", leaf, "-noout", "-pubkey").stdout == \
            openssl("pkey", "-in", key, "-pubout").stdout
        leaf_text = cert_text(leaf)
        assert "TLS Web Client Authentication" in leaf_text and "TLS Web Server Authentication" not in leaf_text


def test_pki_out_of_policy_requests_are_refused_naming_the_field(world, root_pem, tmp_path):
    admin = world.admin
    kp = ec_keypair(tmp_path, "k")
    key = b64(kp.pub_pem)
    cases = [
        ("foreign domain", "/issuers/web", {"key-data-base64": key, "common-name": "api.evil.org"},
         ["allowed-domains", "api.evil.org"]),
        ("foreign alt name", "/issuers/web", {"key-data-base64": key, "common-name": "a.example.com",
                                              "alt-names": "example.com.evil.org"}, ["alt-names", "allowed-domains"]),
        ("subdomain without allow-subdomains", "/issuers/web-exact",
         {"key-data-base64": key, "common-name": "api.example.com"}, ["allow-subdomains"]),
        ("ttl above the issuer's", "/issuers/web", {"key-data-base64": key, "common-name": "api.example.com",
                                                    "ttl": 7200}, ["ttl", "3600"]),
        ("EKU clientauth on a server-only issuer", "/issuers/web",
         {"key-data-base64": key, "common-name": "api.example.com", "extended-key-usage": "clientauth"},
         ["extended-key-usage", "client-flag"]),
        ("IP SAN not allowed", "/issuers/web", {"key-data-base64": key, "common-name": "api.example.com",
                                                "alt-names": "10.1.2.3"}, ["allowed-ip-sans", "10.1.2.3"]),
        ("IP SAN on an issuer without any", "/issuers/web-exact",
         {"key-data-base64": key, "common-name": "example.com", "alt-names": "127.0.0.1"}, ["allowed-ip-sans"]),
        ("URI SAN not allowed", "/issuers/web", {"key-data-base64": key, "common-name": "api.example.com",
                                                 "uri-sans": "spiffe://example.com/x"}, ["uri-sans"]),
    ]
    _, ca_csr = make_csr(tmp_path, "ca", "/CN=api.example.com", "subjectAltName=DNS:api.example.com",
                         "basicConstraints=critical,CA:TRUE")
    cases.append(("CSR asking CA:TRUE", "/issuers/web", {"csr-data-base64": b64(ca_csr)}, ["CA:TRUE", "is-ca"]))
    _, client_csr = make_csr(tmp_path, "cl", "/CN=api.example.com", "extendedKeyUsage=clientAuth")
    cases.append(("CSR asking clientAuth", "/issuers/web", {"csr-data-base64": b64(client_csr)},
                  ["extended-key-usage", "client-flag"]))
    _, evil_csr = make_csr(tmp_path, "evil", "/CN=api.example.com", "subjectAltName=DNS:api.example.com,DNS:evil.org")
    cases.append(("CSR with a foreign SAN", "/issuers/web", {"csr-data-base64": b64(evil_csr)},
                  ["alt-names", "evil.org", "allowed-domains"]))

    # A certificate may not outlive its CA: a root valid for one day, an issuer allowing two.
    admin.call("create-key", {"name": "/ca/short-root", "alg": "EC256", "generate-self-signed-certificate": True,
                              "certificate-ttl": 1, "certificate-common-name": "Short-lived Root"})
    admin.call("create-pki-cert-issuer", {"name": "/issuers/short", "signer-key-name": "/ca/short-root",
                                          "ttl": 2 * 86400, "allowed-domains": "example.com"})
    cases.append(("longer than the CA", "/issuers/short", {"key-data-base64": key, "common-name": "example.com"},
                  ["ttl", "outlive"]))

    before = {c["serial_number"] for c in admin.call("cert-list", {})["certificates"]}
    problems = []
    for what, issuer, body, needles in cases:
        r = admin.raw("get-pki-certificate", {"cert-issuer-name": issuer, **body})
        msg = error_of(r)
        if r.status_code != 403 or not all(n in msg for n in needles):
            problems.append(f"{what}: HTTP {r.status_code} {msg!r} (expected 403 naming {needles})")
    assert not problems, "\n".join(problems)
    after = {c["serial_number"] for c in admin.call("cert-list", {})["certificates"]}
    assert after == before, "a refused request was recorded as issued"

    # Malformed requests: 400.
    malformed = [
        ({"csr-data-base64": b64("not a CSR")}, "csr-data-base64"),
        ({"csr-data-base64": "%%%not-base64%%%"}, "csr-data-base64"),
        ({"key-data-base64": b64(kp.key.read_text()), "common-name": "api.example.com"}, "private key"),
        ({"common-name": "api.example.com"}, "csr-data-base64"),
        ({"key-data-base64": key, "csr-data-base64": b64(ca_csr)}, "not both"),
        ({"key-data-base64": key, "common-name": "api.example.com", "extended-key-usage": "emailsomething"},
         "extended-key-usage"),
    ]
    for body, needle in malformed:
        refused(admin, "get-pki-certificate", {"cert-issuer-name": "/issuers/web", **body}, 400, needle)
    # The private key we sent by mistake is in no audit record.
    secret_body = "".join(kp.key.read_text().splitlines()[1:-1])
    assert secret_body[:40] not in json.dumps(admin.audit())


def test_pki_intermediate_ca_chain(world, root_pem, tmp_path):
    """Root issuer (is-ca, pathlen 0) certifies a second key's public key;
    the certificate is attached to that key; an issuer signing with it
    issues a leaf whose parent_cert is intermediate + root."""
    admin = world.admin
    admin.call("create-pki-cert-issuer", {
        "name": "/issuers/root-ca", "signer-key-name": "/ca/root", "ttl": 7 * 86400, "is-ca": True,
        "max-path-len": 0, "allow-any-name": True, "key-usage": "DigitalSignature", "organizations": "Coffer Test"})
    admin.call("create-classic-key", {"name": "/ca/intermediate", "alg": "EC256"})
    pub = admin.call("get-rsa-public", {"name": "/ca/intermediate"})["pem"]
    out = get_pki(admin, "/issuers/root-ca", key_data_base64=b64(pub), common_name="Coffer Test Intermediate CA")
    inter = write(tmp_path / "intermediate.pem", out["data"])
    assert openssl("verify", "-CAfile", root_pem, inter).returncode == 0
    text = cert_text(inter)
    assert "CA:TRUE, pathlen:0" in text and "Certificate Sign" in text and "CRL Sign" in text, text
    assert "O = Coffer Test" in text and "CN = Coffer Test Intermediate CA" in text, text
    assert openssl("x509", "-in", inter, "-noout", "-pubkey").stdout == pub

    # Without a certificate the key cannot back a PKI issuer.
    refused(admin, "create-pki-cert-issuer", {"name": "/issuers/too-early", "signer-key-name": "/ca/intermediate",
                                              "ttl": 3600, "allowed-domains": "example.com"}, 400, "certificate")
    # A certificate for another key is refused.
    other = get_pki(admin, "/issuers/root-ca", key_data_base64=b64(ec_keypair(tmp_path, "x").pub_pem),
                    common_name="Someone Else CA")["data"]
    r = admin.raw("update-classic-key-certificate", {"name": "/ca/intermediate", "cert-file-data": b64(other)})
    assert r.status_code == 400, (r.status_code, error_of(r))

    up = admin.call("update-classic-key-certificate", {"name": "/ca/intermediate",
                                                       "cert-file-data": b64(out["data"] + out["parent_cert"])})
    assert up.get("new_item_version", 0) >= 2, up
    admin.call("create-pki-cert-issuer", {
        "name": "/issuers/internal", "signer-key-name": "/ca/intermediate", "ttl": 3600,
        "allowed-domains": "internal.example.com", "allow-subdomains": True, "server-flag": True,
        "client-flag": True})
    _, csr = make_csr(tmp_path, "svc", "/CN=svc.internal.example.com",
                      "subjectAltName=DNS:svc.internal.example.com")
    leaf_out = get_pki(admin, "/issuers/internal", csr_data_base64=b64(csr))
    chain = pem_blocks(leaf_out["parent_cert"])
    assert chain == pem_blocks(inter.read_text()) + pem_blocks(root_pem.read_text()), leaf_out["parent_cert"]
    leaf = write(tmp_path / "svc.pem", leaf_out["data"])
    untrusted = write(tmp_path / "chain.pem", chain[0])
    v = openssl("verify", "-CAfile", root_pem, "-untrusted", untrusted, leaf)
    assert v.stdout.strip().endswith(": OK"), v.stdout
    # Without the intermediate the leaf does not verify against the root.
    assert openssl("verify", "-CAfile", root_pem, leaf, check=False).returncode != 0
    leaf_text = cert_text(leaf)
    assert "TLS Web Server Authentication" in leaf_text and "TLS Web Client Authentication" in leaf_text

    # pathlen 0: an issuer on the intermediate cannot issue CA certificates.
    admin.call("create-pki-cert-issuer", {"name": "/issuers/sub-ca", "signer-key-name": "/ca/intermediate",
                                          "ttl": 3600, "is-ca": True, "allow-any-name": True})
    refused(admin, "get-pki-certificate", {"cert-issuer-name": "/issuers/sub-ca", "common-name": "Sub CA",
                                           "key-data-base64": b64(ec_keypair(tmp_path, "sub").pub_pem)},
            403, "is-ca", "path length")
    # The intermediate key signs for issuers: it cannot be deleted under them.
    refused(admin, "delete-item", {"name": "/ca/intermediate"}, 409, "/issuers/internal")


def test_pki_revocation_cert_list_and_crl(world, root_pem, tmp_path):
    admin = world.admin
    kp = ec_keypair(tmp_path, "rev")
    keep = get_pki(admin, key_data_base64=b64(kp.pub_pem), common_name="keep.example.com")
    gone = get_pki(admin, key_data_base64=b64(kp.pub_pem), common_name="gone.example.com")
    keep_pem, gone_pem = write(tmp_path / "keep.pem", keep["data"]), write(tmp_path / "gone.pem", gone["data"])
    assert norm_serial(gone["cert_display_id"]) == cert_serial(gone_pem)
    assert keep["cert_display_id"] != gone["cert_display_id"]

    listed = {c["serial_number"]: c for c in admin.call("cert-list", {"cert-issuer-name": "/issuers/web"})["certificates"]}
    rec = listed[gone["cert_display_id"]]
    assert rec["kind"] == "pki" and rec["subject"] == "CN=gone.example.com" and rec["names"] == ["gone.example.com"]
    assert rec["access_id"] == world.server.admin.access_id and rec["revoked"] is False
    issued = dt.datetime.fromisoformat(rec["issued_at"].replace("Z", "+00:00"))
    expires = dt.datetime.fromisoformat(rec["expires_at"].replace("Z", "+00:00"))
    assert abs((expires - issued).total_seconds() - 3600) <= 2, rec

    out = admin.call("revoke-certificate", {"cert-issuer-name": "/issuers/web", "serial-number": gone["cert_display_id"],
                                            "reason": "key compromise"})
    assert out.get("revoked") is True, out
    refused(admin, "revoke-certificate", {"cert-issuer-name": "/issuers/web",
                                          "serial-number": gone["cert_display_id"]}, 409, "already revoked")
    refused(admin, "revoke-certificate", {"cert-issuer-name": "/issuers/web", "serial-number": "abcdef0123"}, 404)
    refused(admin, "revoke-certificate", {"cert-issuer-name": "/issuers/web", "serial-number": "xyz"}, 400,
            "serial-number")

    revoked = admin.call("cert-list", {"cert-issuer-name": "/issuers/web", "revoked-only": True})["certificates"]
    assert [c["serial_number"] for c in revoked] == [gone["cert_display_id"]], revoked
    assert revoked[0]["revoked"] is True and revoked[0]["revocation_reason"] == "key compromise"
    assert revoked[0].get("revoked_at"), revoked[0]

    # The CRL: public, PEM, signed by the root, listing the revoked serial only.
    r = requests.get(f"{world.server.url}/pki/crl/issuers/web", timeout=10)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    crl = write(tmp_path / "crl.pem", r.text)
    c = openssl("crl", "-in", crl, "-noout", "-text", "-CAfile", root_pem, "-verify")
    assert "verify OK" in c.stderr + c.stdout, c.stderr
    listed_serials = [norm_serial(s) for s in re.findall(r"Serial Number: ([0-9A-Fa-f:]+)", c.stdout)]
    assert listed_serials == [cert_serial(gone_pem)], c.stdout
    assert "Coffer Test Root CA" in c.stdout
    # openssl verify with the CRL: the revoked one fails, the other passes.
    bad = openssl("verify", "-crl_check", "-CAfile", root_pem, "-CRLfile", crl, gone_pem, check=False)
    assert bad.returncode != 0 and "revoked" in (bad.stdout + bad.stderr), bad.stdout + bad.stderr
    assert openssl("verify", "-crl_check", "-CAfile", root_pem, "-CRLfile", crl, keep_pem).returncode == 0
    # An unknown issuer: 404; an SSH issuer has no CRL.
    assert requests.get(f"{world.server.url}/pki/crl/issuers/nope", timeout=10).status_code == 404
    assert requests.get(f"{world.server.url}/pki/crl/issuers/ssh", timeout=10).status_code in (400, 404)
    refused(admin, "revoke-certificate", {"cert-issuer-name": "/issuers/ssh", "serial-number": "01"}, 400)


def test_every_issuance_is_audited_without_key_material(world, root_pem, tmp_path):
    admin = world.admin
    creds = admin.new_reader("audited", "/issuers/*", caps=("read",))
    reader = world.client(creds)
    key, csr = make_csr(tmp_path, "aud", "/CN=aud.example.com", "subjectAltName=DNS:aud.example.com")
    pki = get_pki(reader, csr_data_base64=b64(csr))
    ssh_pub = None
    if SSH_KEYGEN:
        _, ssh_pub = ssh_keypair(tmp_path, "aud_ed25519")
        reader.call("get-ssh-certificate", {"cert-issuer-name": "/issuers/ssh", "cert-username": OTHER,
                                            "public-key-data": ssh_pub})
    records = admin.audit()
    mine = [r for r in records if r["access_id"] == creds.access_id
            and r["operation"] in ("get-pki-certificate", "get-ssh-certificate")]
    ops = sorted(r["operation"] for r in mine)
    assert ops == (["get-pki-certificate", "get-ssh-certificate"] if SSH_KEYGEN else ["get-pki-certificate"]), mine
    for r in mine:
        assert r["status"] == 200 and r["outcome"] == "allowed" and r["auth_method"] == "/am/audited", r
        assert r["object"] in ("/issuers/web", "/issuers/ssh"), r
    # Refusals are audited as denied.
    refused(reader, "get-pki-certificate", {"cert-issuer-name": "/issuers/web", "common-name": "x.evil.org",
                                            "key-data-base64": b64(ec_keypair(tmp_path, "evil").pub_pem)}, 403)
    denied = [r for r in admin.audit() if r["access_id"] == creds.access_id and r["status"] == 403]
    assert denied and denied[-1]["outcome"] == "denied" and denied[-1]["operation"] == "get-pki-certificate"

    # No key material: not the leaf's private key (never sent), nor the CSR,
    # the public keys or the issued certificate bodies.
    text = json.dumps(admin.audit())
    private = "".join(key.read_text().splitlines()[1:-1])
    for what, needle in [("private key", private[:48]), ("CSR", b64(csr)[:48]),
                         ("CSR body", "".join(csr.splitlines()[1:-1])[:48]),
                         ("certificate", "".join(pki["data"].splitlines()[1:-1])[:48])] + (
            [("ssh public key", ssh_pub.split()[1][:48])] if ssh_pub else []):
        assert needle not in text, f"the audit log holds the {what}"


# --------------------------------------------------------------------------
# Permissions


def test_issuer_reader_gets_certificates_but_never_the_ca_key(world, root_pem, tmp_path):
    admin = world.admin
    creds = admin.new_reader("issuer-user", "/issuers/*", caps=("read",))
    admin.call("set-role-rule", {"role-name": "/role/issuer-user", "path": "/team/*",
                                 "capability": ["read", "create", "list"]})
    reader = world.client(creds)

    # It uses the issuers.
    kp = ec_keypair(tmp_path, "r")
    out = get_pki(reader, key_data_base64=b64(kp.pub_pem), common_name="reader.example.com")
    assert openssl("verify", "-CAfile", root_pem, write(tmp_path / "r.pem", out["data"])).returncode == 0
    if SSH_KEYGEN:
        key, pub = ssh_keypair(tmp_path, "id_ed25519")
        cert = get_ssh_cert(reader, tmp_path, pub, key, user=OTHER)
        assert ssh_keygen_list(cert)["key_id"] == f"{creds.access_id} (auth method /am/issuer-user)"

    # It cannot use or read the CA keys.
    for op, body in [("get-rsa-public", {"name": "/ca/root"}), ("get-rsa-public", {"name": "/ca/ssh-ed"}),
                     ("encrypt", {"key-name": "/ca/aes", "plaintext": "x"}),
                     ("describe-item", {"name": "/ca/root"}),
                     ("get-secret-value", {"names": ["/ca/root"]}),
                     ("rotate-key", {"name": "/ca/ssh-ed"}),
                     ("update-classic-key-certificate", {"name": "/ca/root", "cert-file-data": b64(out["data"])})]:
        r = reader.raw(op, body)
        assert r.status_code == 403, f"{op} {body}: HTTP {r.status_code} {error_of(r)}"
    ciphertext = admin.call("encrypt", {"key-name": "/ca/aes", "plaintext": "for admins"})["result"]
    refused(reader, "decrypt", {"key-name": "/ca/aes", "ciphertext": ciphertext}, 403)

    # It cannot make an issuer sign with a key it cannot read…
    refused(reader, "create-ssh-cert-issuer", {"name": "/team/ssh", "signer-key-name": "/ca/ssh-ed",
                                               "allowed-users": "*", "ttl": 600}, 403)
    refused(reader, "create-pki-cert-issuer", {"name": "/team/pki", "signer-key-name": "/ca/root", "ttl": 600,
                                               "allow-any-name": True, "is-ca": True}, 403)
    for name in ("/team/ssh", "/team/pki"):
        assert admin.raw("describe-item", {"name": name}).status_code == 404, f"{name} was created"
    # …nor change an issuer, nor revoke.
    refused(reader, "update-ssh-cert-issuer", {"name": "/issuers/ssh", "allowed-users": "*"}, 403)
    refused(reader, "revoke-certificate", {"cert-issuer-name": "/issuers/web", "serial-number": out["cert_display_id"]},
            403)
    # With its own key it may (the refusal above was about the key).
    reader.call("create-classic-key", {"name": "/team/ed", "alg": "Ed25519"})
    reader.call("create-ssh-cert-issuer", {"name": "/team/ssh", "signer-key-name": "/team/ed",
                                           "allowed-users": "*", "ttl": 600})
    # The refusals are audited as denied, naming the reader.
    denied = [r for r in admin.audit() if r["access_id"] == creds.access_id and r["outcome"] == "denied"]
    assert {"get-rsa-public", "encrypt", "create-ssh-cert-issuer"} <= {r["operation"] for r in denied}


# --------------------------------------------------------------------------
# Item types and listings


def test_describe_and_list_report_key_and_issuer_types(world):
    admin = world.admin
    types = {n: admin.call("describe-item", {"name": n})["item_type"]
             for n in ("/ca/ssh-ed", "/ca/root", "/issuers/ssh", "/issuers/web")}
    assert types == {"/ca/ssh-ed": "CLASSIC_KEY", "/ca/root": "CLASSIC_KEY", "/issuers/ssh": "SSH_CERT_ISSUER",
                     "/issuers/web": "PKI_CERT_ISSUER"}
    d = admin.call("describe-item", {"name": "/issuers/web"})
    assert d["cert_issuer_signer_key_name"] == "/ca/root"
    details = d["certificate_issue_details"]["pki_cert_issuer_details"]
    assert details["allowed_domains_list"] == ["example.com"] and details["allow_subdomains"] is True
    s = admin.call("describe-item", {"name": "/issuers/ssh"})["certificate_issue_details"]
    assert s["ssh_cert_issuer_details"]["allowed_users"] == [LOGIN, OTHER] and s["max_ttl"] == 600
    k = admin.call("describe-item", {"name": "/ca/ssh-ed"})
    assert k["item_general_info"]["classic_key_details"]["key_type"] == "Ed25519"
    assert k["public_value"] == ssh_ca_line(admin, "/ca/ssh-ed")

    def listed(kind: str, path: str) -> set[str]:
        out = admin.call("list-items", {"path": path, "type": [kind]})
        return {i["item_name"] for i in out.get("items") or []}

    assert {"/ca/ssh-ed", "/ca/ssh-rsa", "/ca/root", "/ca/aes"} <= listed("classic-key", "/ca")
    assert listed("key", "/ca") == listed("classic-key", "/ca")
    assert listed("ssh-cert-issuer", "/issuers") >= {"/issuers/ssh", "/issuers/ssh-host"}
    assert not any(n in listed("ssh-cert-issuer", "/issuers") for n in ("/issuers/web", "/issuers/web-exact"))
    assert listed("pki-cert-issuer", "/issuers") >= {"/issuers/web", "/issuers/web-exact"}
    assert "/issuers/ssh" not in listed("pki-cert-issuer", "/issuers")
    assert listed("static-secret", "/issuers") == set()


def test_issuer_updates_keep_the_settings_they_do_not_name(world):
    """update-*-cert-issuer with one field changes that field only; the
    others (principals, allow-subdomains, server-flag, organizations, …)
    stay as they were, as ttl, extensions and the signer already do."""
    admin = world.admin
    admin.call("create-ssh-cert-issuer", {"name": "/issuers/upd-ssh", "signer-key-name": "/ca/ssh-ed",
                                          "allowed-users": "ubuntu", "principals": "ops", "ttl": 60,
                                          "extensions": {"permit-pty": ""}})
    admin.call("update-ssh-cert-issuer", {"name": "/issuers/upd-ssh", "allowed-users": "ubuntu,deploy"})
    ssh = admin.call("describe-item", {"name": "/issuers/upd-ssh"})["certificate_issue_details"]
    assert ssh["max_ttl"] == 60 and ssh["ssh_cert_issuer_details"]["extensions"] == {"permit-pty": ""}
    assert ssh["ssh_cert_issuer_details"]["allowed_users"] == ["ubuntu", "deploy"]
    assert ssh["ssh_cert_issuer_details"]["principals"] == ["ops"], \
        "update-ssh-cert-issuer without principals dropped the issuer's principals"
    r = admin.raw("update-ssh-cert-issuer", {"name": "/issuers/upd-ssh", "ttl": 120})
    assert r.status_code == 200, f"update-ssh-cert-issuer with only ttl: HTTP {r.status_code} {error_of(r)}"

    admin.call("create-pki-cert-issuer", {"name": "/issuers/upd-pki", "signer-key-name": "/ca/root", "ttl": 60,
                                          "allowed-domains": "example.com", "allow-subdomains": True,
                                          "server-flag": True, "organizations": "Acme"})
    r = admin.raw("update-pki-cert-issuer", {"name": "/issuers/upd-pki", "ttl": 120})
    assert r.status_code == 200, f"update-pki-cert-issuer with only ttl: HTTP {r.status_code} {error_of(r)}"
    admin.call("update-pki-cert-issuer", {"name": "/issuers/upd-pki", "allowed-domains": "example.com,example.org"})
    d = admin.call("describe-item", {"name": "/issuers/upd-pki"})["certificate_issue_details"]
    p = d["pki_cert_issuer_details"]
    kept = {k: p[k] for k in ("allowed_domains_list", "allow_subdomains", "server_flag", "organization_list")}
    assert kept == {"allowed_domains_list": ["example.com", "example.org"], "allow_subdomains": True,
                    "server_flag": True, "organization_list": ["Acme"]}, kept


# --------------------------------------------------------------------------
# Keys: encrypt / decrypt, rotation, nothing readable at rest


def test_encrypt_decrypt_context_rotation(world):
    admin = world.admin
    for alg in ("AES128GCM", "AES256GCM", "AES128SIV", "AES256SIV"):
        name = f"/keys/{alg.lower()}"
        admin.call("create-key", {"name": name, "alg": alg})
        ctx = {"app": "web", "env": "prod"}
        ct1 = admin.call("encrypt", {"key-name": name, "plaintext": "hello coffer", "encryption-context": ctx})["result"]
        base64.b64decode(ct1, validate=True)
        assert admin.call("decrypt", {"key-name": name, "ciphertext": ct1, "encryption-context": ctx})["result"] == \
            "hello coffer"
        refused(admin, "decrypt", {"key-name": name, "ciphertext": ct1, "encryption-context": {"app": "web"}}, 400,
                "decryption failed")
        refused(admin, "decrypt", {"key-name": name, "ciphertext": ct1}, 400, "decryption failed")
        refused(admin, "decrypt", {"key-name": name, "ciphertext": ct1,
                                   "encryption-context": {"app": "web", "env": "dev"}}, 400)
        tampered = bytearray(base64.b64decode(ct1))
        tampered[-1] ^= 1
        refused(admin, "decrypt", {"key-name": name, "ciphertext": b64(bytes(tampered)),
                                   "encryption-context": ctx}, 400)
        rot = admin.call("rotate-key", {"name": name})
        assert rot["new_item_version"] == 2, rot
        ct2 = admin.call("encrypt", {"key-name": name, "plaintext": "hello coffer", "encryption-context": ctx})["result"]
        assert ct2 != ct1
        for ct in (ct1, ct2):
            assert admin.call("decrypt", {"key-name": name, "ciphertext": ct, "encryption-context": ctx})["result"] == \
                "hello coffer", f"{alg}: a ciphertext does not decrypt after rotation"
        # Another key's ciphertext does not decrypt here.
        if alg != "AES128GCM":
            refused(admin, "decrypt", {"key-name": "/keys/aes128gcm", "ciphertext": ct2, "encryption-context": ctx},
                    400)
    # Binary data through input/output-format base64.
    blob = bytes(range(256))
    ct = admin.call("encrypt", {"key-name": "/keys/aes256gcm", "plaintext": b64(blob), "input-format": "base64"})
    out = admin.call("decrypt", {"key-name": "/keys/aes256gcm", "ciphertext": ct["result"], "output-format": "base64"})
    assert base64.b64decode(out["result"]) == blob
    # Signing keys do not encrypt; AES keys have no public part.
    refused(admin, "encrypt", {"key-name": "/ca/ssh-ed", "plaintext": "x"}, 400)
    refused(admin, "get-rsa-public", {"name": "/keys/aes256gcm"}, 400)


def test_imported_keys_are_never_readable_at_rest_or_in_logs(server, tmp_path):
    """create-classic-key with key-data (an EC private key, an RSA key and a
    raw AES key): they work (the public part is ours, our ciphertexts
    decrypt), and neither the keys nor a plaintext appear on disk or in the
    server's output, in any encoding, while running or after a stop."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    admin = server.admin_client()
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    aes = os.urandom(32)
    pkcs8 = lambda k: k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,  # noqa: E731
                                      serialization.NoEncryption())
    spki = lambda k: k.public_key().public_bytes(serialization.Encoding.PEM,  # noqa: E731
                                                 serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    admin.call("create-classic-key", {"name": "/imported/ec", "alg": "EC256", "key-data": b64(pkcs8(ec_key))})
    admin.call("create-classic-key", {"name": "/imported/rsa", "alg": "RSA2048", "key-data": pkcs8(rsa_key).decode()})
    admin.call("create-classic-key", {"name": "/imported/aes", "alg": "AES256GCM", "key-data": b64(aes)})
    assert admin.call("get-rsa-public", {"name": "/imported/ec"})["pem"].strip() == spki(ec_key).strip()
    assert admin.call("get-rsa-public", {"name": "/imported/rsa"})["pem"].strip() == spki(rsa_key).strip()
    refused(admin, "create-classic-key", {"name": "/imported/bad", "alg": "AES256GCM", "key-data": b64(aes[:16])},
            400, "key-data")
    plaintext = f"cofferPLAIN{uuid.uuid4().hex}"
    ct = admin.call("encrypt", {"key-name": "/imported/aes", "plaintext": plaintext,
                                "encryption-context": {"k": "v"}})["result"]
    assert admin.call("decrypt", {"key-name": "/imported/aes", "ciphertext": ct,
                                  "encryption-context": {"k": "v"}})["result"] == plaintext
    # The private key is not readable through the API either.
    refused(admin, "get-secret-value", {"names": ["/imported/ec"]}, 400)
    described = json.dumps(admin.call("describe-item", {"name": "/imported/rsa"}))
    assert "PRIVATE KEY" not in described

    ec_der = ec_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    nums = rsa_key.private_numbers()
    markers = {
        "EC PKCS#8": ec_der,
        "EC scalar": ec_key.private_numbers().private_value.to_bytes(32, "big"),
        "RSA p": nums.p.to_bytes(128, "big"),
        "RSA d": nums.d.to_bytes(256, "big")[:64],
        "AES key": aes,
        "plaintext": plaintext.encode(),
    }

    def scan(when: str):
        leaks = []
        for what, marker in markers.items():
            leaks += [f"{what} in {p} ({when})" for p in find_leaks(server.data_dir, marker)]
            logs = server.logs()
            if any(form in logs for form in encoded_forms(marker).values()):
                leaks.append(f"{what} in the server's output ({when})")
        assert not leaks, "\n".join(leaks)

    scan("running")
    server.stop()
    scan("stopped")


# --------------------------------------------------------------------------
# coffer ci: the seed's "Issue certificate" examples


SEED_YAML = """\
job:
  id_tokens:
    AKEYLESS_JWT:
      aud: 'https://gitlab.com'
  secrets:
    SSH_CERTIFICATE:
      token: $AKEYLESS_JWT
      akeyless:
        name: 'issuers/ssh'
        cert_user_name: '{user}'
        public_key_data: $SSH_PUBLIC_KEY
    TLS_CERTIFICATE:
      token: $AKEYLESS_JWT
      akeyless:
        name: 'issuers/web'
        csr_data: $CSR_DATA
    TLS_CERTIFICATE_FROM_KEY:
      token: $AKEYLESS_JWT
      akeyless:
        name: '{key_issuer}'
        public_key_data: $TLS_PUBLIC_KEY
"""


@needs_ssh_keygen
def test_coffer_ci_issues_ssh_and_pki_certificates(world, gitlab, dev_oidc, root_pem, tmp_path):
    """The seed's YAML shapes, values from CI/CD variables: SSH with
    cert_user_name + public_key_data, PKI with csr_data, and PKI with a
    bare public_key_data, which carries no name: from a client issuer
    (not-require-cn, organizations) it is a client certificate whose
    subject is the issuer's; from an issuer that requires a CN it fails
    with a message naming the variable and the field."""
    access_id, am = gitlab
    _, ssh_pub = ssh_keypair(tmp_path, "ci_ed25519")
    _, csr = make_csr(tmp_path, "ci", "/CN=ci.example.com", "subjectAltName=DNS:ci.example.com")
    tls_key = ec_keypair(tmp_path, "ci-tls")
    drop = ("AKEYLESS_", "AWS_", "AZURE_", "GCE_", "GITHUB_", "ACTIONS_", "CI_", "GITLAB_", "FF_")
    env = {k: v for k, v in server_env().items() if not k.startswith(drop)}
    env.update({"AWS_EC2_METADATA_DISABLED": "true", "AKEYLESS_API_URL": world.server.url,
                "AKEYLESS_ACCESS_ID": access_id, "SSH_PUBLIC_KEY": ssh_pub, "CSR_DATA": b64(csr),
                "TLS_PUBLIC_KEY": b64(tls_key.pub_pem)})
    token = dev_oidc.mint(SEED_AUD, project_path="group/app", ref="main", user_login="ci-bot")

    def resolve(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run([str(coffer_bin()), "ci", "resolve", "--job", "job", "--file", str(path), "--format",
                               "json", "--id-token", f"AKEYLESS_JWT={token}"], env=env, capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)

    bad = write(tmp_path / "bad.yml", SEED_YAML.format(user=LOGIN, key_issuer="issuers/web"))
    p = resolve(bad)
    assert p.returncode != 0 and "TLS_CERTIFICATE_FROM_KEY" in p.stderr and "common-name" in p.stderr, (
        p.returncode, p.stderr)
    yml = write(tmp_path / ".gitlab-ci.yml", SEED_YAML.format(user=LOGIN, key_issuer="issuers/ci-client"))
    p = resolve(yml)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert set(out) == {"SSH_CERTIFICATE", "TLS_CERTIFICATE", "TLS_CERTIFICATE_FROM_KEY"}, out.keys()
    client = write(tmp_path / "ci-client.pem", out["TLS_CERTIFICATE_FROM_KEY"])
    assert openssl("verify", "-CAfile", root_pem, "-purpose", "sslclient", client).stdout.strip().endswith(": OK")
    text = cert_text(client)
    assert "O = Acme CI" in text and "TLS Web Client Authentication" in text, text
    cert = write(tmp_path / "ci-cert.pub", out["SSH_CERTIFICATE"].strip() + "\n")
    info = ssh_keygen_list(cert)
    assert info["key_id"] == f"ci-bot (auth method {am}, access id {access_id})", info["raw"]
    assert info["principals"] == [LOGIN, "coffer-ops"], info["raw"]
    leaf = write(tmp_path / "ci.pem", out["TLS_CERTIFICATE"])
    assert openssl("verify", "-CAfile", root_pem, leaf).stdout.strip().endswith(": OK")
    assert "DNS:ci.example.com" in cert_text(leaf)
