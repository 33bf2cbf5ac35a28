"""`coffer ci` end to end with the `akeyless` provider: the real CLI binary
against a real Coffer server, ID tokens from a real `coffer dev oidc`.

Every `akeyless` YAML example of the GitLab seed document is used verbatim
(the files in crates/coffer-ci/tests/fixtures/gitlab/, copied unchanged
from ../shared/seeds/001): the ones whose credentials are variables or come
from the machine resolve; the ones with a literal placeholder
(`<akeyless_token>`, `uid_token`, `<Access Key>`, the k8s example's
`akeyless_api_url`, the gateway example's `ca_certificate`) pass GitLab's
validation and then fail with a message that names the secret and the
setting to fix. Cloud identities are obtained the way they are on a cloud
machine: AWS from host credentials signed against a real moto STS, Azure
from the instance metadata endpoint, GCP from the metadata server (the two
metadata endpoints are protocol stubs serving tokens minted by
`coffer dev oidc`, since no Azure or GCP emulator runs here).

Also: `coffer ci run` (files 0600 removed after success, failure and
SIGTERM; exit codes; masking), output formats, the Azure DevOps task
commands, `akeyless://` references, `explain`, and one login for many
secrets. The AWS and Azure Key Vault seeds are in test_ci_cloud.py.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from cofferlib import REPO_ROOT, Client, CofferServer, DevOidc, coffer_bin, free_port, loopback_http, server_env

FIXTURES = REPO_ROOT / "crates" / "coffer-ci" / "tests" / "fixtures" / "gitlab"
PROVIDER_NOT_FOUND = "The secrets provider can not be found. Check your CI/CD variables and try again."
SEED_AUD = "https://gitlab.com"  # the seed's id_tokens audience
JSON_SECRET = {"imp": "imp-value-7f3a", "port": 5432, "tls": True}
AZURE_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
AZURE_OID = "6b2d1a4e-0c1f-4c55-9a0e-8f1d2e3c4b5a"
GCP_SA = "ci-runner@my-project.iam.gserviceaccount.com"


# --------------------------------------------------------------------------
# The world: one Coffer server, one dev OIDC issuer, auth methods and roles


class World:
    def __init__(self, server: CofferServer, admin: Client, oidc: DevOidc):
        self.server, self.admin, self.oidc, self.issuer = server, admin, oidc, oidc.url
        self.jwt_access_id = ""

    def mint(self, aud=SEED_AUD, profile="gitlab", ttl=300, **claims) -> str:
        return self.oidc.mint(aud, profile=profile, ttl=ttl, **claims)

    def grant(self, role: str, am: str, path: str, sub_claims: dict | None):
        self.admin.call("create-role", {"name": role})
        self.admin.call("set-role-rule", {"role-name": role, "path": path, "capability": ["read", "list"]})
        body = {"role-name": role, "am-name": am}
        if sub_claims:
            body["sub-claims"] = sub_claims
        self.admin.call("assoc-role-am", body)

    def audit_after(self, seq: int) -> list[dict]:
        return [r for r in self.admin.audit() if r["seq"] > seq]

    def last_seq(self) -> int:
        return max((r["seq"] for r in self.admin.audit()), default=0)


@pytest.fixture(scope="module")
def world(tmp_path_factory, dev_oidc):
    tmp = tmp_path_factory.mktemp("ci-world")
    server = CofferServer(data_dir=tmp / "data", log_dir=tmp / "logs").start(expect_credentials=True)
    issuer = dev_oidc.url
    try:
        admin = server.admin_client()
        w = World(server, admin, dev_oidc)
        admin.create_secret("/secret_name", json.dumps(JSON_SECRET))
        # The GitLab job's JWT auth method: the seed's audience, the dev issuer.
        w.jwt_access_id = admin.call("create-auth-method-oauth2", {
            "name": "/ci/gitlab", "jwks-uri": f"{issuer}/oauth/discovery/keys", "issuer": issuer,
            "audience": SEED_AUD, "unique-identifier": "user_login",
        })["access_id"]
        w.grant("/roles/gitlab-app-main", "/ci/gitlab", "/secret_name",
                {"project_path": "group/app", "ref": "main"})
        w.grant("/roles/gitlab-app-bulk", "/ci/gitlab", "/ci-bulk/*", {"project_path": "group/app"})
        yield w
    finally:
        server.stop()


def ci_env(world: World | None, **extra) -> dict[str, str]:
    """A clean environment: no CI system's variables, no cloud credentials."""
    drop = ("AKEYLESS_", "AWS_", "AZURE_", "GCE_", "GITHUB_", "ACTIONS_", "CI_", "GITLAB_", "FF_")
    env = {k: v for k, v in server_env().items() if not k.startswith(drop)}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"
    if world is not None:
        env["AKEYLESS_API_URL"] = world.server.url
        env["AKEYLESS_ACCESS_ID"] = world.jwt_access_id
    env.update({k: v for k, v in extra.items() if v is not None})
    for k in [k for k, v in extra.items() if v is None]:
        env.pop(k, None)
    return env


def ci(args: list[str], env: dict[str, str], timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(coffer_bin()), "ci", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, **kw)


def resolve(seed: str, env: dict[str, str], *extra: str, job: str = "job") -> subprocess.CompletedProcess:
    return ci(["resolve", "--job", job, "--file", str(FIXTURES / seed), "--format", "json", *extra], env)


def ok_json(p: subprocess.CompletedProcess) -> dict:
    assert p.returncode == 0, f"exit {p.returncode}\nstderr: {p.stderr}"
    return json.loads(p.stdout)


def failed(p: subprocess.CompletedProcess, *needles: str) -> str:
    assert p.returncode != 0, f"expected a failure, got exit 0 (stdout has {len(p.stdout)} bytes)"
    assert "panicked" not in p.stderr and "RUST_BACKTRACE" not in p.stderr, p.stderr
    for n in needles:
        assert n in p.stderr, f"{n!r} not in stderr:\n{p.stderr}"
    assert p.stdout == "", "a failed resolution printed something on stdout"
    return p.stderr


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --------------------------------------------------------------------------
# Seed examples that resolve


def test_seed_jwt_authentication_resolves_with_a_dev_oidc_token(world, tmp_path):
    """akeyless_01: `token: $AKEYLESS_JWT`, the job's ID token given as a
    file; the login is audited under the token's user_login."""
    seq = world.last_seq()
    tok = write(tmp_path / "jwt", world.mint(user_login="alice"))
    out = ok_json(resolve("akeyless_01_jwt_authentication.yml", ci_env(world),
                          "--id-token", f"AKEYLESS_JWT=@{tok}"))
    assert json.loads(out["DATABASE_PASSWORD"]) == JSON_SECRET
    logins = [r for r in world.audit_after(seq) if r["operation"] == "auth"]
    assert len(logins) == 1 and logins[0]["status"] == 200, logins
    assert "alice" in json.dumps(logins[0]), "the audit record does not name the JWT's user_login"
    assert str(tok.read_text()) not in json.dumps(world.audit_after(seq)), "the JWT is in the audit log"


def test_seed_jwt_authentication_from_the_gitlab_variable(world):
    """On GitLab the ID token is already a variable of the job: no --id-token."""
    out = ok_json(resolve("akeyless_01_jwt_authentication.yml", ci_env(world, AKEYLESS_JWT=world.mint())))
    assert json.loads(out["DATABASE_PASSWORD"]) == JSON_SECRET


def test_seed_jwt_with_a_non_matching_ref_is_refused(world):
    """ref=feature matches no role association: the read is refused (403)
    and the message names the secret and its variable."""
    p = resolve("akeyless_01_jwt_authentication.yml", ci_env(world),
                "--id-token", f"AKEYLESS_JWT={world.mint(ref='feature')}")
    err = failed(p, "DATABASE_PASSWORD")
    assert "secret_name" in err and ("403" in err or "denied" in err.lower() or "not allowed" in err.lower()), err


def test_seed_jwt_with_a_wrong_audience_or_expired_token_fails_closed(world):
    for token, check in [(world.mint(aud="https://other.example"), "aud"),
                         (world.mint(exp=int(time.time()) - 600, iat=int(time.time()) - 900), "exp")]:
        p = resolve("akeyless_01_jwt_authentication.yml", ci_env(world), "--id-token", f"AKEYLESS_JWT={token}")
        err = failed(p, "DATABASE_PASSWORD")
        assert check in err, err


def test_seed_fetch_a_json_secret_data_key(world):
    """akeyless_10: `data_key: imp` takes one field of a JSON secret."""
    out = ok_json(resolve("akeyless_10_fetch_a_json_secret.yml", ci_env(world),
                          "--id-token", f"AKEYLESS_JWT={world.mint()}"))
    assert out == {"DATABASE_PASSWORD": JSON_SECRET["imp"]}


def test_seed_jwt_reuse_outputs_a_working_token(world):
    """akeyless_09: `akeyless:` with no name is the Coffer token itself."""
    out = ok_json(resolve("akeyless_09_jwt_reuse.yml", ci_env(world),
                          "--id-token", f"AKEYLESS_JWT={world.mint()}"))
    token = out["AKEYLESS_TOKEN"]
    assert token.startswith("t-")
    reader = Client(world.server.url, token=token)
    assert json.loads(reader.get_value("/secret_name")) == JSON_SECRET


@pytest.mark.parametrize("seed", ["akeyless_11_ssh.yml", "akeyless_12_issue_certificate.yml"])
def test_certificate_seeds_dispatch_on_the_item_type(world, seed):
    """akeyless_11/12 as written name `secret_name`, a static secret in
    this world: like GitLab Runner, the resolver asks describe-item and
    reads a static secret as such, ignoring cert_user_name/public_key_data
    (the batched get-secret-value answers for static items directly). The
    same blocks naming real SSH and PKI issuers are in test_certs.py."""
    seq = world.last_seq()
    out = ok_json(resolve(seed, ci_env(world), "--id-token", f"AKEYLESS_JWT={world.mint()}"))
    assert json.loads(out["DATABASE_PASSWORD"]) == JSON_SECRET
    ops = [r["operation"] for r in world.audit_after(seq)]
    assert "get-secret-value" in ops, ops


# --------------------------------------------------------------------------
# Seeds whose credentials are literal placeholders: clear failures


def test_seed_akeyless_token_placeholder_is_refused(world):
    """akeyless_02 carries the literal `<akeyless_token>`."""
    err = failed(resolve("akeyless_02_akeyless_token.yml", ci_env(world)), "DATABASE_PASSWORD", "secret_name")
    assert "<akeyless_token>" not in err, "the token is echoed in the error"


def test_seed_api_key_placeholder_is_refused(world):
    """akeyless_08: access key `<Access Key>` for the JWT method's ID."""
    err = failed(resolve("akeyless_08_api_key.yml", ci_env(world)), "DATABASE_PASSWORD")
    assert "authenticate" in err.lower(), err
    assert "<Access Key>" not in err


def test_seed_universal_identity_placeholder_is_refused(world):
    err = failed(resolve("akeyless_06_universal_identity.yml", ci_env(world)), "DATABASE_PASSWORD")
    assert "authenticate" in err.lower(), err


def test_seed_k8s_example_names_the_bad_api_url(world):
    """akeyless_07 sets `akeyless_api_url: 'akeyless_api_url'`: not a URL."""
    seq = world.last_seq()
    failed(resolve("akeyless_07_k8s.yml", ci_env(world)), "DATABASE_PASSWORD", "akeyless_api_url")
    assert world.audit_after(seq) == [] or all(r["operation"] == "audit-list" for r in world.audit_after(seq))


def test_seed_gateway_example_refuses_a_ca_certificate_that_is_not_pem(world):
    """akeyless_13: `gateway_ca_certificate: 'ca_certificate'` is no PEM
    certificate; nothing is sent to the gateway."""
    failed(resolve("akeyless_13_work_with_a_gateway.yml", ci_env(world), "--id-token",
                   f"AKEYLESS_JWT={world.mint()}"), "DATABASE_PASSWORD", "gateway_ca_certificate")


def test_access_id_is_required(world):
    """GitLab's provider check: AKEYLESS_ACCESS_ID unset → its message."""
    p = resolve("akeyless_01_jwt_authentication.yml", ci_env(world, AKEYLESS_ACCESS_ID=None),
                "--id-token", f"AKEYLESS_JWT={world.mint()}")
    failed(p, PROVIDER_NOT_FOUND, "AKEYLESS_ACCESS_ID")


# --------------------------------------------------------------------------
# Access types whose identity comes from the machine


class StubHandler(BaseHTTPRequestHandler):
    routes: dict = {}
    seen: list = []

    def do_GET(self):  # noqa: N802 (http.server API)
        u = urlparse(self.path)
        self.seen.append((u.path, parse_qs(u.query), dict(self.headers.items())))
        handler = self.routes.get(u.path)
        status, body, ctype = handler(parse_qs(u.query), self.headers) if handler else (404, "not found", "text/plain")
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


@pytest.fixture
def stub():
    """A loopback HTTP server whose GET routes the test sets."""
    handler = type("H", (StubHandler,), {"routes": {}, "seen": []})
    srv = loopback_http(handler)
    srv.routes = handler.routes
    yield srv
    srv.close()


def test_seed_azure_ad_uses_the_managed_identity_token(world, stub):
    """akeyless_04: the runner machine's managed identity token from the
    instance metadata endpoint (IMDS protocol: GET with `Metadata: true`,
    api-version, resource, object_id), verified by Coffer against the
    tenant's keys (here the dev issuer's) and bound tenant/object ID.

    The token is requested for Coffer's default resource (`api://coffer`),
    which is also the method's default audience, never for ARM: a token
    for ARM (what the Akeyless cloud-id libraries request) is refused
    unless the method's audience says ARM, and `COFFER_AZURE_AUDIENCE`
    makes `coffer ci` request another resource."""
    minted = {}

    def token_for(resource):
        if resource not in minted:
            minted[resource] = world.mint(profile="plain", aud=resource, tid=AZURE_TENANT, oid=AZURE_OID,
                                          appid="11111111-2222-3333-4444-555555555555", sub=AZURE_OID)
        return minted[resource]

    requested = []

    def imds(q, headers):
        if headers.get("Metadata") != "true":
            return 400, json.dumps({"error": "invalid_request", "error_description": "Required metadata header not specified"}), "application/json"
        assert q["object_id"] == ["azure_object_id"], q
        resource = q["resource"][0]
        requested.append(resource)
        return 200, json.dumps({"access_token": token_for(resource), "token_type": "Bearer", "expires_in": "86399",
                                "resource": resource}), "application/json"

    stub.routes["/metadata/identity/oauth2/token"] = imds
    name = f"/ci/azure-{uuid.uuid4().hex[:6]}"
    access_id = world.admin.call("create-auth-method-azure-ad", {
        "name": name, "bound-tenant-id": AZURE_TENANT, "issuer": world.issuer,
        "jwks-uri": f"{world.issuer}/.well-known/jwks.json", "bound-spid": [AZURE_OID],
    })["access_id"]
    world.grant(f"/roles/azure-{uuid.uuid4().hex[:6]}", name, "/secret_name", {"oid": AZURE_OID})
    env = ci_env(world, AKEYLESS_ACCESS_ID=access_id, AZURE_POD_IDENTITY_AUTHORITY_HOST=stub.url)
    out = ok_json(resolve("akeyless_04_azure_ad.yml", env))
    assert json.loads(out["DATABASE_PASSWORD"]) == JSON_SECRET
    assert requested == ["api://coffer"], requested

    # A token for ARM is refused by the default method, with the reason.
    p = resolve("akeyless_04_azure_ad.yml", {**env, "COFFER_AZURE_AUDIENCE": "https://management.azure.com/"})
    failed(p, "DATABASE_PASSWORD", "aud check")
    assert requested[-1] == "https://management.azure.com/", requested

    # Opting in to ARM's audience on the method (for Akeyless' cloud-id
    # libraries) makes it work, when coffer ci is told to request it.
    arm_name = f"/ci/azure-arm-{uuid.uuid4().hex[:6]}"
    arm_id = world.admin.call("create-auth-method-azure-ad", {
        "name": arm_name, "bound-tenant-id": AZURE_TENANT, "issuer": world.issuer,
        "jwks-uri": f"{world.issuer}/.well-known/jwks.json", "bound-spid": [AZURE_OID],
        "audience": "https://management.azure.com/",
    })["access_id"]
    world.grant(f"/roles/azure-{uuid.uuid4().hex[:6]}", arm_name, "/secret_name", {"oid": AZURE_OID})
    out = ok_json(resolve("akeyless_04_azure_ad.yml", {**env, "AKEYLESS_ACCESS_ID": arm_id,
                                                      "COFFER_AZURE_AUDIENCE": "https://management.azure.com/"}))
    assert json.loads(out["DATABASE_PASSWORD"]) == JSON_SECRET


def test_seed_gcp_uses_the_metadata_server_identity_token(world, stub):
    """akeyless_05: an ID token for `gcp_audience` from the metadata server
    (GET .../identity?audience=…&format=full with `Metadata-Flavor: Google`)."""
    token = world.mint(profile="plain", aud="gcp_audience", email=GCP_SA, sub="1234567890",
                       email_verified="true")

    def identity(q, headers):
        if headers.get("Metadata-Flavor") != "Google":
            return 403, "Missing Metadata-Flavor:Google header.", "text/html"
        assert q["audience"] == ["gcp_audience"] and q["format"] == ["full"], q
        return 200, token, "application/text"

    stub.routes["/computeMetadata/v1/instance/service-accounts/default/identity"] = identity
    name = f"/ci/gcp-{uuid.uuid4().hex[:6]}"
    access_id = world.admin.call("create-auth-method-gcp", {
        "name": name, "type": "iam", "audience": "gcp_audience", "issuer": world.issuer,
        "jwks-uri": f"{world.issuer}/.well-known/jwks.json", "bound-service-accounts": [GCP_SA],
    })["access_id"]
    world.grant(f"/roles/gcp-{uuid.uuid4().hex[:6]}", name, "/secret_name", {"email": GCP_SA})
    out = ok_json(resolve("akeyless_05_gcp.yml", ci_env(world, AKEYLESS_ACCESS_ID=access_id,
                                                       GCE_METADATA_HOST=stub.url.removeprefix("http://"))))
    assert json.loads(out["DATABASE_PASSWORD"]) == JSON_SECRET
    # Without a metadata server the failure says what was tried.
    p = resolve("akeyless_05_gcp.yml", ci_env(world, AKEYLESS_ACCESS_ID=access_id,
                                              GCE_METADATA_HOST=f"127.0.0.1:{free_port()}"))
    failed(p, "DATABASE_PASSWORD", "metadata")


def test_seed_aws_iam_signs_get_caller_identity_with_host_credentials(world, moto_url):
    """akeyless_03: the cloud-id is a GetCallerIdentity request signed with
    the machine's AWS credentials; Coffer replays it to STS (moto)."""
    name = f"/ci/aws-{uuid.uuid4().hex[:6]}"
    access_id = world.admin.call("create-auth-method-aws-iam", {
        "name": name, "bound-aws-account-id": ["123456789012"], "sts-url": moto_url,
    })["access_id"]
    world.grant(f"/roles/aws-{uuid.uuid4().hex[:6]}", name, "/secret_name", None)
    env = ci_env(world, AKEYLESS_ACCESS_ID=access_id, AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
                 AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", AWS_ENDPOINT_URL_STS=moto_url)
    out = ok_json(resolve("akeyless_03_aws_iam.yml", env))
    assert json.loads(out["DATABASE_PASSWORD"]) == JSON_SECRET
    # No AWS credentials on the machine: the error lists where it looked.
    p = resolve("akeyless_03_aws_iam.yml", ci_env(world, AKEYLESS_ACCESS_ID=access_id, AWS_ENDPOINT_URL_STS=moto_url))
    failed(p, "DATABASE_PASSWORD", "AWS_ACCESS_KEY_ID")


# --------------------------------------------------------------------------
# GitLab's validation, through the CLI


@pytest.mark.parametrize("secrets_yaml, message", [
    ("    DB:\n      akeyless:\n        name: x\n      vault: a/b@c\n",
     "config must use exactly one of these keys: vault, azure_key_vault, gcp_secret_manager, akeyless, "
     "gitlab_secrets_manager, aws_secrets_manager"),
    ("    DB:\n      akeyless:\n        name: x\n      colour: red\n", "config contains unknown keys: colour"),
    ("    DB:\n      aws_secrets_manager: 'a#b#c'\n", "must contain at most one '#'"),
])
def test_gitlab_validation_messages_reach_the_user_and_nothing_is_fetched(world, tmp_path, secrets_yaml, message):
    f = write(tmp_path / ".gitlab-ci.yml", "deploy:\n  script: [./deploy.sh]\n  secrets:\n" + secrets_yaml)
    seq = world.last_seq()
    p = ci(["resolve", "--job", "deploy", "--file", str(f)], ci_env(world, AWS_REGION="us-east-1"))
    failed(p, message)
    assert not [r for r in world.audit_after(seq) if r["operation"] != "audit-list"]


def test_unknown_job_and_missing_file_are_clear(world, tmp_path):
    f = write(tmp_path / ".gitlab-ci.yml", "build:\n  script: [make]\n")
    failed(ci(["resolve", "--job", "deploy", "--file", str(f)], ci_env(world)), "deploy")
    failed(ci(["resolve", "--job", "deploy", "--file", str(tmp_path / "nope.yml")], ci_env(world)), "nope.yml")


# --------------------------------------------------------------------------
# coffer ci run

RUN_YAML = """\
.secrets: &secrets
  DB_FILE:
    token: $AKEYLESS_JWT
    akeyless:
      name: /ci-run/db
  DB_ENV:
    token: $AKEYLESS_JWT
    akeyless:
      name: /ci-run/db
    file: false
  CERT:
    token: $AKEYLESS_JWT
    akeyless:
      name: /ci-run/cert
    file: false
deploy:
  id_tokens:
    AKEYLESS_JWT:
      aud: 'https://gitlab.com'
  secrets: *secrets
  script: [./deploy.sh]
"""
DB_VALUE = "s3cr3t-db-pass-91c2"
CERT_VALUE = "-----BEGIN KEY-----\nMIIBVwIBADANBgkqhkiG9w0BAQEFAASCAT\nline-two-of-the-key-Zx8\n-----END KEY-----"


@pytest.fixture(scope="module")
def run_world(world):
    """Secrets under /ci-run readable by the GitLab JWT method."""
    world.admin.create_secret("/ci-run/db", DB_VALUE)
    world.admin.create_secret("/ci-run/cert", CERT_VALUE)
    world.grant("/roles/ci-run", "/ci/gitlab", "/ci-run/*", {"project_path": "group/app"})
    return world


def run(run_world, tmp_path, script: str, *extra, timeout=60, popen=False):
    f = write(tmp_path / ".gitlab-ci.yml", RUN_YAML)
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    args = [str(coffer_bin()), "ci", "run", "--job", "deploy", "--file", str(f), "--secrets-dir", str(secrets_dir),
            "--id-token", f"AKEYLESS_JWT={run_world.mint()}", *extra, "--", "bash", "-c", script]
    env = ci_env(run_world)
    if popen:
        return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL, start_new_session=True), secrets_dir
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL), secrets_dir


def leftover_files(d: Path) -> list[Path]:
    return [p for p in d.rglob("*") if p.is_file()]


def test_run_injects_files_and_variables_then_removes_the_files(run_world, tmp_path):
    report = tmp_path / "report.json"
    script = f"""
        python3 - <<'PY' > {report}
import json, os, stat
p = os.environ["DB_FILE"]
st = os.stat(p)
print(json.dumps({{"path": p, "mode": stat.S_IMODE(st.st_mode), "dir_mode": stat.S_IMODE(os.stat(os.path.dirname(p)).st_mode),
  "content_ok": open(p).read() == {DB_VALUE!r}, "env_ok": os.environ["DB_ENV"] == {DB_VALUE!r},
  "cert_ok": os.environ["CERT"] == {CERT_VALUE!r}}}))
PY
    """
    p, secrets_dir = run(run_world, tmp_path, script)
    assert p.returncode == 0, p.stderr
    r = json.loads(report.read_text())
    assert r["content_ok"] and r["env_ok"] and r["cert_ok"], r
    assert r["mode"] == 0o600 and r["dir_mode"] == 0o700, r
    assert Path(r["path"]).is_relative_to(secrets_dir)
    assert not Path(r["path"]).exists() and leftover_files(secrets_dir) == []


def test_run_propagates_the_exit_code_and_cleans_up_on_failure(run_world, tmp_path):
    p, secrets_dir = run(run_world, tmp_path, 'test -s "$DB_FILE" && exit 7')
    assert p.returncode == 7, p.stderr
    assert leftover_files(secrets_dir) == []


def test_run_forwards_sigterm_and_cleans_up(run_world, tmp_path):
    marker = tmp_path / "got-term"
    script = f'trap "echo term > {marker}; exit 42" TERM; echo "$DB_FILE"; while true; do sleep 0.1; done'
    proc, secrets_dir = run(run_world, tmp_path, script, popen=True)
    try:
        path = proc.stdout.readline().strip()
        assert path and Path(path).exists(), f"child did not start: {proc.stderr.read() if proc.poll() is not None else ''}"
        proc.send_signal(signal.SIGTERM)  # to coffer only, not its process group
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert marker.exists(), "the child never received SIGTERM"
    assert proc.returncode == 42, proc.stderr.read()
    assert not Path(path).exists() and leftover_files(secrets_dir) == []


def test_run_masks_every_form_of_every_value(run_world, tmp_path):
    b64 = base64.b64encode(DB_VALUE.encode()).decode()
    script = (
        'echo "plain: $DB_ENV"; echo "in-file: $(cat "$DB_FILE")" >&2; '
        'printf "%s" "$DB_ENV" | base64; '
        'python3 -c \'import json,os; print(json.dumps(os.environ["CERT"]))\'; '
        'printf "%s\\n" "$CERT"; '
        # One byte at a time: masking must hold across write boundaries.
        'for ((i=0; i<${#DB_ENV}; i++)); do printf "%s" "${DB_ENV:$i:1}"; sleep 0.01; done; echo'
    )
    p, _ = run(run_world, tmp_path, script)
    assert p.returncode == 0, p.stderr
    both = p.stdout + p.stderr
    for leaked in [DB_VALUE, b64, json.dumps(CERT_VALUE)[1:-1]] + CERT_VALUE.splitlines()[1:3]:
        assert leaked not in both, "a secret form leaked into the output"
    assert p.stdout.count("[MASKED]") >= 5 and "in-file: [MASKED]" in p.stderr, (p.stdout, p.stderr)
    assert "plain: [MASKED]" in p.stdout


def test_run_warns_about_values_too_short_to_mask(run_world, tmp_path):
    run_world.admin.create_secret("/ci-run/short", "ab")
    f = write(tmp_path / ".gitlab-ci.yml", RUN_YAML.replace("/ci-run/cert", "/ci-run/short"))
    p = subprocess.run([str(coffer_bin()), "ci", "run", "--job", "deploy", "--file", str(f), "--id-token",
                        f"AKEYLESS_JWT={run_world.mint()}", "--", "true"], env=ci_env(run_world),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "CERT" in p.stderr and "short" in p.stderr.lower(), p.stderr


def test_run_resolve_failure_runs_nothing(run_world, tmp_path):
    marker = tmp_path / "ran"
    p, _ = run(run_world, tmp_path, f"touch {marker}", "--var", "AKEYLESS_ACCESS_ID=p-doesnotexist")
    assert p.returncode != 0 and not marker.exists(), p.stderr


# --------------------------------------------------------------------------
# Output formats

TRICKY = "it's \"quoted\" $HOME `x` \\n\nsecond line\ttab"


@pytest.fixture(scope="module")
def tricky(run_world):
    run_world.admin.create_secret("/ci-run/tricky", TRICKY)
    return run_world


def resolve_tricky(world, tmp_path, fmt, **env):
    yaml = RUN_YAML.replace("/ci-run/cert", "/ci-run/tricky")
    f = write(tmp_path / ".gitlab-ci.yml", yaml)
    return ci(["resolve", "--job", "deploy", "--file", str(f), "--format", fmt,
               "--id-token", f"AKEYLESS_JWT={world.mint()}"], ci_env(world, **env))


@pytest.mark.parametrize("fmt", ["env", "dotenv"])
def test_shell_formats_round_trip_exactly(tricky, tmp_path, fmt):
    p = resolve_tricky(tricky, tmp_path, fmt)
    assert p.returncode == 0, p.stderr
    out = write(tmp_path / "vars.sh", p.stdout)
    check = subprocess.run(["bash", "-c", f'set -a; . {out}; printf "%s" "$CERT"'], capture_output=True,
                           text=True, env={"PATH": os.environ["PATH"], "HOME": "/should-not-expand"})
    assert check.returncode == 0 and check.stdout == TRICKY


def test_github_format_masks_each_line_and_writes_env_and_output(tricky, tmp_path):
    gh_env, gh_out = tmp_path / "github_env", tmp_path / "github_output"
    p = resolve_tricky(tricky, tmp_path, "github", GITHUB_ACTIONS="true", GITHUB_ENV=str(gh_env),
                       GITHUB_OUTPUT=str(gh_out))
    assert p.returncode == 0, p.stderr
    masks = [l.removeprefix("::add-mask::") for l in p.stdout.splitlines() if l.startswith("::add-mask::")]
    for line in TRICKY.splitlines():
        assert any(line.strip() in m for m in masks), "no ::add-mask:: for a line of the value"
    assert TRICKY.splitlines()[1] not in p.stdout.replace("::add-mask::", "", 99).split("\n")[-1]
    # Parse $GITHUB_ENV as the runner does: NAME<<DELIM ... DELIM.
    text, parsed, i = gh_env.read_text().splitlines(), {}, 0
    while i < len(text):
        name, delim = text[i].split("<<", 1) if "<<" in text[i] else (text[i].split("=", 1)[0], None)
        if delim is None:
            parsed[name] = text[i].split("=", 1)[1]
            i += 1
            continue
        end = text.index(delim, i + 1)
        parsed[name] = "\n".join(text[i + 1:end])
        i = end + 1
    assert parsed["CERT"] == TRICKY and parsed["DB_ENV"] == DB_VALUE
    assert gh_out.read_text() == gh_env.read_text()


def test_azure_devops_format_sets_secret_output_variables(tricky, tmp_path):
    p = resolve_tricky(tricky, tmp_path, "azure-devops")
    assert p.returncode == 0, p.stderr
    lines = [l for l in p.stdout.splitlines() if l.startswith("##vso[task.setvariable")]
    assert any(l.startswith("##vso[task.setvariable variable=DB_ENV;issecret=true;isoutput=true]") for l in lines)
    assert "\nsecond line" not in p.stdout, "a raw newline would end the logging command"


# --------------------------------------------------------------------------
# Azure DevOps task parity, akeyless:// references, explain, bulk


@pytest.fixture(scope="module")
def api_key(world):
    """An API-key auth method that may read /ai/agent/*, and its secrets."""
    world.admin.create_secret("/ai/agent/api-key", "sk-agent-4242")
    world.admin.create_secret("/ai/agent/model-id", "model-large-2026")
    creds = world.admin.new_reader("ci-ado", "/ai/agent/*")
    return creds


def ado_env(world, creds, **extra):
    return ci_env(world, AKEYLESS_ACCESS_ID=creds.access_id, AKEYLESS_ACCESS_KEY=creds.access_key, **extra)


def test_ado_get_secrets_and_auth(world, api_key):
    p = ci(["get-secrets", "--secrets-paths", "api_key=/ai/agent/api-key,model_id=/ai/agent/model-id",
            "--format", "json"], ado_env(world, api_key))
    assert ok_json(p) == {"api_key": "sk-agent-4242", "model_id": "model-large-2026"}
    p = ci(["get-secrets", "--secrets-paths", "api_key=/ai/agent/api-key", "--format", "azure-devops"],
           ado_env(world, api_key))
    assert p.returncode == 0 and p.stdout.strip() == \
        "##vso[task.setvariable variable=api_key;issecret=true;isoutput=true]sk-agent-4242", p.stdout
    token = ok_json(ci(["auth", "--format", "json"], ado_env(world, api_key)))["akeylessToken"]
    assert Client(world.server.url, token=token).get_value("/ai/agent/model-id") == "model-large-2026"
    # With the token, no second login.
    seq = world.last_seq()
    p = ci(["get-secrets", "--secrets-paths", "m=/ai/agent/model-id", "--format", "json"],
           ci_env(world, AKEYLESS_TOKEN=token, AKEYLESS_ACCESS_ID=None))
    assert ok_json(p) == {"m": "model-large-2026"}
    assert not [r for r in world.audit_after(seq) if r["operation"] == "auth"]
    # A path the role does not cover: refused, named.
    failed(ci(["get-secrets", "--secrets-paths", "x=/secret_name"], ado_env(world, api_key)), "secret_name")
    failed(ci(["get-secrets", "--secrets-paths", "broken"], ado_env(world, api_key)), "name=/path")


def test_akeyless_references_in_the_environment(world, api_key, tmp_path):
    env = ado_env(world, api_key, MODEL="akeyless:///ai/agent/model-id", KEY="coffer://ai/agent/api-key",
                  PLAIN="https://example.com")
    assert ok_json(ci(["env", "--format", "json"], env)) == {"KEY": "sk-agent-4242", "MODEL": "model-large-2026"}
    out = tmp_path / "seen"
    p = ci(["run", "--resolve-refs", "--", "bash", "-c", f'printf "%s|%s|%s" "$MODEL" "$KEY" "$PLAIN" > {out}; echo "$KEY"'], env)
    assert p.returncode == 0, p.stderr
    assert out.read_text() == "model-large-2026|sk-agent-4242|https://example.com"
    assert p.stdout.strip() == "[MASKED]"
    failed(ci(["env"], {**env, "GONE": "akeyless:///ai/agent/missing"}), "GONE")


def test_explain_sends_nothing(world, tmp_path):
    """explain shows provider, endpoint, identity, token and destination
    per secret, and contacts nobody (the API URL does not even resolve)."""
    f = write(tmp_path / ".gitlab-ci.yml", RUN_YAML)
    seq = world.last_seq()
    env = ci_env(world, AKEYLESS_API_URL="https://gateway.invalid:8000")
    p = ci(["explain", "--job", "deploy", "--file", str(f), "--id-token", f"AKEYLESS_JWT={world.mint()}"], env)
    assert p.returncode == 0, p.stderr
    for needle in ["DB_FILE", "DB_ENV", "CERT", "akeyless", "https://gateway.invalid:8000", "AKEYLESS_JWT",
                   "/ci-run/db", world.jwt_access_id]:
        assert needle in p.stdout, f"{needle!r} not in explain output:\n{p.stdout}"
    assert "file (0600)" in p.stdout and "environment variable $DB_ENV" in p.stdout
    # Without the ID token: each secret's problem is named, exit non-zero.
    p = ci(["explain", "--job", "deploy", "--file", str(f)], env)
    assert p.returncode != 0 and p.stdout.count("PROBLEM") == 3 and "NOT SET" in p.stdout, p.stdout
    # ... and still says where and as whom each login would go.
    assert p.stdout.count("https://gateway.invalid:8000") == 3 and world.jwt_access_id in p.stdout, p.stdout
    assert [r for r in world.audit_after(seq) if r["operation"] != "audit-list"] == []


def test_fifty_secrets_one_login_one_batch(world, tmp_path):
    """One login per (provider, endpoint, identity); static secrets of one
    login in one get-secret-value call; deterministic output order."""
    names = [f"S{i:02d}" for i in range(50)]
    for n in names:
        world.admin.create_secret(f"/ci-bulk/{n}", f"value-of-{n}")
    body = "".join(f"    {n}:\n      token: $AKEYLESS_JWT\n      akeyless:\n        name: /ci-bulk/{n}\n      file: false\n"
                   for n in reversed(names))
    f = write(tmp_path / ".gitlab-ci.yml", "bulk:\n  id_tokens:\n    AKEYLESS_JWT:\n      aud: 'https://gitlab.com'\n"
              "  script: [x]\n  secrets:\n" + body)
    seq = world.last_seq()
    t0 = time.monotonic()
    p = ci(["resolve", "--job", "bulk", "--file", str(f), "--format", "json", "--id-token",
            f"AKEYLESS_JWT={world.mint()}"], ci_env(world))
    elapsed = time.monotonic() - t0
    out = ok_json(p)
    assert out == {n: f"value-of-{n}" for n in names}
    assert list(out) == sorted(names) or list(out) == list(reversed(names)) or list(out) == names
    ops = [r["operation"] for r in world.audit_after(seq) if r["operation"] != "audit-list"]
    assert ops.count("auth") == 1, ops
    assert len(ops) <= 3, f"{len(ops)} requests for 50 secrets: {ops}"
    print(f"50 secrets resolved in {elapsed * 1000:.0f} ms with {len(ops)} requests")
    # Two failures are reported together, each naming its variable.
    f2 = write(tmp_path / "bad.yml", f.read_text().replace("/ci-bulk/S03", "/ci-bulk/none-3")
               .replace("/ci-bulk/S41", "/ci-bulk/none-41"))
    err = failed(ci(["resolve", "--job", "bulk", "--file", str(f2), "--id-token",
                     f"AKEYLESS_JWT={world.mint()}"], ci_env(world)), "S03", "S41")
    assert "value-of-" not in err
