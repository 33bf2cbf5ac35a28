"""People log in through a real OpenID Provider: panva's certified
`oidc-provider` (pinned in tests/sdk/node/package.json) on loopback, with
`coffer auth --access-type oidc --no-browser` as a user would run it.

The test plays the browser with `requests`: it opens the URL the CLI
prints, fills the provider's login and consent forms, and follows the
redirect to the CLI's loopback listener. Refusals drive the wire API
directly: a forged or replayed state, a replayed code, a nonce the server
did not issue, a code and state without the client nonce they were issued
for, an issuer that does not match, a redirect URI the method does not
allow, a required scope the provider does not grant. An issuer ending with
'/' (Auth0's do) logs in; the CLI's listener ignores redirects that do not
carry its state and prints nothing a web page could use to steer the
terminal.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlparse, urlunparse

import pytest
import requests

from cofferlib import REPO_ROOT, ApiError, coffer_bin, free_port, poll, _remember_pid

NODE_DIR = REPO_ROOT / "tests" / "sdk" / "node"
CLIENT_ID = "coffer-cli"
# What a client keeps to itself between oidc-auth-url and auth.
CLIENT_NONCE = "wire-test-client-nonce-" + uuid.uuid4().hex



class Provider:
    """`node oidc_provider.mjs` on a free loopback port."""

    def __init__(self, log_dir: Path, redirect_uris: list[str], issuer_host: str = "127.0.0.1",
                 issuer_suffix: str = ""):
        if shutil.which("node") is None or not (NODE_DIR / "node_modules" / "oidc-provider").is_dir():
            pytest.fail("oidc-provider is not installed: run `npm ci` in tests/sdk/node (scripts/test.sh does)")
        log_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.issuer = f"http://{issuer_host}:{self.port}{issuer_suffix}"
        self.client_secret = uuid.uuid4().hex
        self.log = log_dir / "oidc-provider.log"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(log_dir),
            "OIDC_PORT": str(self.port), "OIDC_ISSUER": self.issuer, "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": self.client_secret, "OIDC_REDIRECT_URIS": ",".join(redirect_uris),
        }
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(["node", "oidc_provider.mjs"], cwd=NODE_DIR, env=env,
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _remember_pid(self.proc.pid)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"oidc-provider exited: {self.log.read_text()[-2000:]}")
            try:
                return requests.get(f"http://127.0.0.1:{self.port}/.well-known/openid-configuration", timeout=2).ok
            except requests.ConnectionError:
                return False

        poll(up, 60, "oidc-provider to answer")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


FORM_RE = re.compile(r'<form[^>]*action="([^"]+)"[^>]*method="post"[^>]*>(.*?)</form>', re.S)
INPUT_RE = re.compile(r'<input[^>]*name="([^"]+)"(?:[^>]*value="([^"]*)")?[^>]*>')


def browse(url: str, user: str, stop_at: str | None = None, timeout: float = 30) -> str:
    """Play the browser from `url`: sign in as `user` (any password), give
    consent, and follow redirects. With `stop_at` (a URL prefix) the
    redirect there is returned instead of followed."""
    s = requests.Session()
    method, data = "GET", None
    for _ in range(20):
        r = s.request(method, url, data=data, allow_redirects=False, timeout=timeout)
        if r.is_redirect:
            nxt = urljoin(url, r.headers["Location"])
            if stop_at and nxt.startswith(stop_at):
                return nxt
            url, method, data = nxt, "GET", None
            continue
        if r.status_code == 200 and "<form" in r.text:
            m = FORM_RE.search(r.text)
            assert m, f"no form at {url}: {r.text[:500]}"
            fields = {name: html.unescape(value or "") for name, value in INPUT_RE.findall(m.group(2))}
            if "login" in fields:
                fields.update(login=user, password="any-password")
            url, method, data = urljoin(url, html.unescape(m.group(1))), "POST", fields
            continue
        return r.text
    raise AssertionError(f"too many steps at {url}")


@pytest.fixture
def cli_port() -> int:
    return free_port()


@pytest.fixture
def provider(tmp_path, cli_port):
    p = Provider(tmp_path / "idp", [f"http://127.0.0.1:{cli_port}/callback",
                                    "http://127.0.0.1:1/callback"])
    yield p
    p.stop()


def make_method(admin, provider: Provider, cli_port: int, **extra) -> tuple[str, str]:
    name = f"/people/{uuid.uuid4().hex[:8]}"
    body = {
        "name": name, "issuer": provider.issuer, "client-id": CLIENT_ID, "client-secret": provider.client_secret,
        "unique-identifier": "email", "allowed-redirect-uri": [f"http://127.0.0.1:{cli_port}/callback"],
        "required-scopes": ["email", "groups"],
    }
    body.update(extra)
    out = admin.call("create-auth-method-oidc", body)
    return name, out["access_id"]


def cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COFFER_", "AKEYLESS_"))}
    env["COFFER_HOME"] = str(home)
    return env


def start_cli_login(server, access_id: str, cli_port: int, home: Path) -> tuple[subprocess.Popen, str]:
    """`coffer auth --access-type oidc --no-browser`; returns it and the URL
    it printed."""
    proc = subprocess.Popen(
        [str(coffer_bin()), "auth", "--gateway-url", server.url, "--access-id", access_id,
         "--access-type", "oidc", "--no-browser", "--redirect-port", str(cli_port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=cli_env(home), text=True)
    _remember_pid(proc.pid)
    deadline = time.monotonic() + 30
    seen = ""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
        m = re.search(r"(http://\S+/auth\?\S+)", line)
        if m:
            return proc, m.group(1)
    proc.kill()
    raise AssertionError(f"the CLI printed no login URL: {seen}")


def test_person_logs_in_with_the_cli(server, admin, provider, cli_port, tmp_path):
    name, access_id = make_method(admin, provider, cli_port)
    assert access_id[-2] == "i"
    role = f"{name}-role"
    admin.call("create-role", {"name": role})
    admin.call("set-role-rule", {"role-name": role, "path": "/people-data/*", "capability": ["read"]})
    admin.call("assoc-role-am", {"role-name": role, "am-name": name,
                                 "sub-claims": {"groups": "team-alice"}})
    admin.create_secret("/people-data/db", "oidc-secret")

    shown = admin.call("get-auth-method", {"name": name})
    rules = shown["access_info"]["oidc_access_rules"]
    assert rules["issuer"] == provider.issuer and rules["client_id"] == CLIENT_ID
    assert rules["allowed_redirect_URIs"] == [f"http://127.0.0.1:{cli_port}/callback"]
    assert provider.client_secret not in str(shown), "the client secret is never shown"

    proc, url = start_cli_login(server, access_id, cli_port, tmp_path / "home")
    page = browse(url, "alice")
    assert "Login received" in page, page
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    token = out.strip()
    assert token.startswith("t-"), out
    assert provider.client_secret not in err + out

    reader = server.client()
    reader.token = token
    assert reader.get_value("/people-data/db") == "oidc-secret"
    me = reader.call("get-caller-identity", {})
    assert me["identity"] == "alice@example.test", me
    assert "team-alice" in me["sub_claims"]["groups"], me

    # bob logs in too, but no association grants him the role.
    proc, url = start_cli_login(server, access_id, cli_port, tmp_path / "home-bob")
    browse(url, "bob")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    reader.token = out.strip()
    with pytest.raises(ApiError) as e:
        reader.get_value("/people-data/db")
    assert e.value.status == 403

    # The server never logged the client secret.
    assert provider.client_secret.encode() not in server.logs()


def wire_login(server, access_id: str, redirect_uri: str) -> dict:
    return server.client().call("oidc-auth-url", {"access-id": access_id, "redirect-uri": redirect_uri,
                                                  "client-nonce": CLIENT_NONCE}, token=False)


def code_of(redirect: str) -> tuple[str, str]:
    q = parse_qs(urlparse(redirect).query)
    assert "code" in q, redirect
    return q["code"][0], q["state"][0]


def test_refusals(server, admin, provider, cli_port):
    _, access_id = make_method(admin, provider, cli_port)
    redirect_uri = f"http://127.0.0.1:{cli_port}/callback"
    anon = server.client()

    def auth(code: str, state: str, client_nonce: str | None = CLIENT_NONCE):
        body = {"access-id": access_id, "access-type": "oidc", "code": code, "state": state}
        if client_nonce is not None:
            body["client-nonce"] = client_nonce
        return anon.raw("auth", body, token=False)

    # A good login over the wire, then its code and state replayed.
    start = wire_login(server, access_id, redirect_uri)
    code, state = code_of(browse(start["auth_url"], "carol", stop_at=redirect_uri))
    assert state == start["state"]
    r = auth(code, state)
    assert r.status_code == 200, r.text
    r = auth(code, state)
    assert r.status_code == 401 and "already used" in r.json()["error"], r.text

    # A forged state (one byte changed), and a state of another method.
    start = wire_login(server, access_id, redirect_uri)
    code, state = code_of(browse(start["auth_url"], "carol", stop_at=redirect_uri))
    forged = state[:-2] + ("A" if state[-2] != "A" else "B") + state[-1]
    r = auth(code, forged)
    assert r.status_code == 401 and "not one this server issued" in r.json()["error"], r.text
    _, other_id = make_method(admin, provider, cli_port)
    r = anon.raw("auth", {"access-id": other_id, "access-type": "oidc", "code": code, "state": state,
                          "client-nonce": CLIENT_NONCE}, token=False)
    assert r.status_code == 401 and "not one this server issued" in r.json()["error"], r.text
    # Whoever saw only the redirect (code and state) cannot redeem it:
    # without the client nonce, or with another one, it is refused.
    r = auth(code, state, client_nonce=None)
    assert r.status_code == 400 and "client-nonce" in r.json()["error"], r.text
    r = auth(code, state, client_nonce="someone-elses-client-nonce")
    assert r.status_code == 401 and "client-nonce" in r.json()["error"], r.text
    # The refused attempts did not use the state up: the real one works.
    r = auth(code, state)
    assert r.status_code == 200, r.text

    # A nonce this login did not make: the same authorization request with
    # another nonce (as a provider or an attacker injecting a token of
    # another login would present it).
    start = wire_login(server, access_id, redirect_uri)
    u = urlparse(start["auth_url"])
    q = {k: v[0] for k, v in parse_qs(u.query).items()}
    q["nonce"] = "not-the-servers-nonce"
    evil = urlunparse(u._replace(query=urlencode(q)))
    code, state = code_of(browse(evil, "carol", stop_at=redirect_uri))
    r = auth(code, state)
    assert r.status_code == 401 and "nonce mismatch" in r.json()["error"], r.text

    # A code the provider did not issue for this PKCE verifier (another
    # login's code with this login's state).
    a = wire_login(server, access_id, redirect_uri)
    b = wire_login(server, access_id, redirect_uri)
    code_a, _ = code_of(browse(a["auth_url"], "carol", stop_at=redirect_uri))
    r = auth(code_a, b["state"])
    assert r.status_code == 401 and "refused the code" in r.json()["error"], r.text

    # A redirect URI the method does not allow (the provider would accept it).
    with pytest.raises(ApiError) as e:
        wire_login(server, access_id, "http://127.0.0.1:1/callback")
    assert e.value.status == 400 and "not one auth method" in e.value.body["error"]

    # A required scope the provider does not grant.
    _, scoped_id = make_method(admin, provider, cli_port, **{"required-scopes": ["email", "coffer.admin"]})
    start = wire_login(server, scoped_id, redirect_uri)
    code, state = code_of(browse(start["auth_url"], "carol", stop_at=redirect_uri))
    r = anon.raw("auth", {"access-id": scoped_id, "access-type": "oidc", "code": code, "state": state,
                          "client-nonce": CLIENT_NONCE}, token=False)
    assert r.status_code == 401 and "coffer.admin" in r.json()["error"], r.text

    # oidc-auth-url without a client nonce.
    with pytest.raises(ApiError) as e:
        server.client().call("oidc-auth-url", {"access-id": access_id, "redirect-uri": redirect_uri}, token=False)
    assert e.value.status == 400 and "client-nonce" in e.value.body["error"], e.value.body

    # Missing code or state.
    r = auth("", "")
    assert r.status_code == 400 and "oidc-auth-url" in r.json()["error"], r.text


def test_issuer_mismatch_is_refused(server, admin, tmp_path, cli_port):
    # The provider calls itself http://localhost:PORT; the method expects
    # http://127.0.0.1:PORT (the same server).
    p = Provider(tmp_path / "idp2", [f"http://127.0.0.1:{cli_port}/callback"], issuer_host="localhost")
    try:
        name = f"/people/{uuid.uuid4().hex[:8]}"
        out = admin.call("create-auth-method-oidc", {
            "name": name, "issuer": f"http://127.0.0.1:{p.port}", "client-id": CLIENT_ID,
            "client-secret": p.client_secret, "allowed-redirect-uri": [f"http://127.0.0.1:{cli_port}/callback"]})
        with pytest.raises(ApiError) as e:
            wire_login(server, out["access_id"], f"http://127.0.0.1:{cli_port}/callback")
        assert e.value.status == 401 and "issuer mismatch" in e.value.body["error"], e.value.body
    finally:
        p.stop()


def test_cli_refuses_a_redirect_port_the_method_does_not_allow(server, admin, provider, cli_port, tmp_path):
    _, access_id = make_method(admin, provider, cli_port)
    other = free_port()
    done = subprocess.run(
        [str(coffer_bin()), "auth", "--gateway-url", server.url, "--access-id", access_id,
         "--access-type", "oidc", "--no-browser", "--redirect-port", str(other)],
        capture_output=True, text=True, timeout=60, env=cli_env(tmp_path / "home"))
    assert done.returncode != 0
    assert "not one auth method" in done.stderr, done.stderr


def test_explain_access_with_an_id_token(server, admin, provider, cli_port):
    """explain-access takes an ID token of the provider (here from a code
    flow the test runs itself, as a relying party would)."""
    import base64
    import hashlib
    import secrets

    name, access_id = make_method(admin, provider, cli_port)
    role = f"{name}-role"
    admin.call("create-role", {"name": role})
    admin.call("set-role-rule", {"role-name": role, "path": "/people-data/*", "capability": ["read"]})
    admin.call("assoc-role-am", {"role-name": role, "am-name": name, "sub-claims": {"groups": "team-dave"}})

    redirect_uri = f"http://127.0.0.1:{cli_port}/callback"
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    disc = requests.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=10).json()
    auth_url = disc["authorization_endpoint"] + "?" + urlencode({
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": redirect_uri,
        "scope": "openid email groups", "state": "s" * 16, "nonce": "n" * 16,
        "code_challenge": challenge, "code_challenge_method": "S256"})
    code, _ = code_of(browse(auth_url, "dave", stop_at=redirect_uri))
    tokens = requests.post(disc["token_endpoint"], auth=(CLIENT_ID, provider.client_secret), timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
        "code_verifier": verifier}).json()
    id_token = tokens["id_token"]

    out = admin.call("explain-access", {"access-id": access_id, "jwt": id_token, "path": "/people-data/x"})
    assert out["login"] == {"verified": True, "identity": "dave@example.test"}, out
    assert out["associations"][0]["matched"] is True, out
    assert out["capabilities"] == ["read"], out
    # An ID token is not a login: /auth wants the flow's code and state.
    r = server.client().raw("auth", {"access-id": access_id, "access-type": "oidc", "jwt": id_token}, token=False)
    assert r.status_code == 400, r.text


def test_issuer_with_a_trailing_slash(server, admin, tmp_path, cli_port):
    """An issuer ending with '/' (Auth0's `https://tenant.auth0.com/`) is
    kept as given: discovery and the ID token's `iss` match it exactly."""
    p = Provider(tmp_path / "idp-slash", [f"http://127.0.0.1:{cli_port}/callback"], issuer_suffix="/")
    try:
        assert p.issuer.endswith("/")
        disc = requests.get(f"{p.issuer}.well-known/openid-configuration", timeout=10).json()
        assert disc["issuer"] == p.issuer, disc
        name, access_id = make_method(admin, p, cli_port)
        shown = admin.call("get-auth-method", {"name": name})
        assert shown["access_info"]["oidc_access_rules"]["issuer"] == p.issuer
        redirect_uri = f"http://127.0.0.1:{cli_port}/callback"
        start = wire_login(server, access_id, redirect_uri)
        code, state = code_of(browse(start["auth_url"], "erin", stop_at=redirect_uri))
        r = server.client().raw("auth", {"access-id": access_id, "access-type": "oidc", "code": code,
                                         "state": state, "client-nonce": CLIENT_NONCE}, token=False)
        assert r.status_code == 200, r.text
        # The same provider configured without the slash is another issuer.
        name2 = f"/people/{uuid.uuid4().hex[:8]}"
        out = admin.call("create-auth-method-oidc", {
            "name": name2, "issuer": p.issuer.rstrip("/"), "client-id": CLIENT_ID,
            "client-secret": p.client_secret, "allowed-redirect-uri": [redirect_uri]})
        with pytest.raises(ApiError) as e:
            wire_login(server, out["access_id"], redirect_uri)
        assert e.value.status == 401 and "issuer mismatch" in e.value.body["error"], e.value.body
    finally:
        p.stop()


def test_cli_listener_ignores_redirects_without_its_state(server, admin, provider, cli_port, tmp_path):
    """Any web page can make the browser fetch the CLI's loopback port: a
    request without the login's state is answered 400 and does not end the
    login, and nothing it carries reaches the terminal."""
    _, access_id = make_method(admin, provider, cli_port)
    proc, url = start_cli_login(server, access_id, cli_port, tmp_path / "home")
    callback = f"http://127.0.0.1:{cli_port}/callback"
    evil = "\x1b]0;pwned\x07\x1b[2J\r\nGIVE ME YOUR PASSWORD"
    for params in ({"error": "access_denied", "error_description": evil, "state": "not-the-state"},
                   {"error": "access_denied", "error_description": evil},
                   {"code": "stolen", "state": "not-the-state"}):
        r = requests.get(callback, params=params, timeout=10)
        assert r.status_code == 400, r.text
    assert proc.poll() is None, "the CLI still waits for the real redirect"
    page = browse(url, "frank")
    assert "Login received" in page, page
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip().startswith("t-"), out
    assert "\x1b" not in err and "pwned" not in err, repr(err)


def test_cli_prints_a_provider_error_without_control_characters(server, admin, provider, cli_port, tmp_path):
    """The provider's error redirect (with the login's state) ends the
    login; its text reaches the terminal without escape sequences."""
    _, access_id = make_method(admin, provider, cli_port)
    proc, url = start_cli_login(server, access_id, cli_port, tmp_path / "home")
    state = parse_qs(urlparse(url).query)["state"][0]
    r = requests.get(f"http://127.0.0.1:{cli_port}/callback", timeout=10, params={
        "error": "access_denied", "error_description": "\x1b[31mdenied\x1b[0m\r\nfake prompt$ ",
        "state": state})
    assert r.status_code == 200, r.text
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "access_denied" in err and "denied" in err, err
    assert "\x1b" not in err and "\r" not in err, repr(err)
