"""`coffer ci resolve` end to end on GitLab's own AWS Secrets Manager and
Azure Key Vault examples, verbatim.

The pipeline files are crates/coffer-ci/tests/fixtures/gitlab/aws_0[1-7]_*.yml
and azure_01_*.yml, copied unchanged from GitLab's documentation pages
"Use AWS Secrets Manager secrets in GitLab CI/CD" and "Use Azure Key Vault
secrets in GitLab CI/CD". They are read from disk and passed with --file;
their text is never edited. Everything a GitLab instance would provide
around them comes from outside the file: ID tokens (--id-token, minted by a
real `coffer dev oidc`), CI/CD variables (--var) and the runner host's
environment (AWS endpoint and host credentials, AZURE_AUTHORITY_HOST).

AWS: a real moto (STS AssumeRoleWithWebIdentity + Secrets Manager), run in
this process behind a small WSGI recorder so that the tests can check which
credentials signed each GetSecretValue and in which region, and which role
moto recorded as assumed (moto's STS does not verify the web identity
token, so the tokens' own claims are checked here).

Azure: no emulator exists, so a loopback stub follows Microsoft's documented
protocol: the identity platform's client-credentials token endpoint with a
JWT client assertion (checked as a federated identity credential would be:
signature against the issuer's JWKS, issuer, subject, audience, lifetime)
and Key Vault's `GET secret` (bearer token, api-version, documented error
bodies).

The Rust tests in crates/coffer-ci/tests/{aws,azure}.rs cover the providers
in isolation (field rules, error-text details, credential chains); this
module covers the CLI on the documented examples.

Nothing here prints a secret value: assertion messages name variables, and
outputs are checked not to leak values where they must not appear.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import secrets
import subprocess
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import boto3
import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cofferlib import REPO_ROOT, InThread, coffer_bin, loopback_http

FIXTURES = REPO_ROOT / "crates" / "coffer-ci" / "tests" / "fixtures" / "gitlab"
TIMEOUT = 60  # seconds, for every subprocess
ACCOUNT = "123456789012"  # moto's default account, and the seeds' account
PROVIDER_NOT_FOUND = "The secrets provider can not be found. Check your CI/CD variables and try again."
# The host credentials of the "runner" for the seeds without a role ARN.
HOST_KEY_ID = "AKIAHOSTRUNNER000001"
HOST_SECRET = "host/secret/key/for/the/runner/EXAMPLEKEY"
# Credentials the tests use to seed moto (a different key id than the host's).
ADMIN_KEY_ID = "AKIATESTSEEDER000001"


def seed_file(pattern: str) -> Path:
    """The one fixture matching pattern (aws_05_*.yml …)."""
    found = sorted(FIXTURES.glob(pattern))
    assert len(found) == 1, f"expected one fixture {pattern} in {FIXTURES}, found {found}"
    return found[0]


def b64url_json(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def jwt_claims(token: str) -> dict:
    return b64url_json(token.split(".")[1])


def no_crash(text: str) -> None:
    for bad in ("panicked at", "stack backtrace", "RUST_BACKTRACE", "Traceback"):
        assert bad not in text, f"{bad!r} in coffer's output:\n{text[-2000:]}"


# ---------------------------------------------------------------------------
# Running the CLI
# ---------------------------------------------------------------------------


def base_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: the CLI reads its CI/CD variables from the
    environment, so nothing of the developer's shell (AWS_*, CI_*, AZURE_*,
    proxies) may leak in; HOME and the AWS config files point to nothing."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TMPDIR": str(tmp_path),
        "LANG": "C.UTF-8",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def coffer(args: list[str], env: dict[str, str], cwd: Path) -> Result:
    p = subprocess.run(
        [str(coffer_bin()), *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=TIMEOUT,
    )
    return Result(p.returncode, p.stdout, p.stderr)


def ci_args(cmd: str, seed: Path, job: str, tokens: dict[str, str] | None = None,
            variables: dict[str, str] | None = None) -> list[str]:
    args = ["ci", cmd, "--job", job, "--file", str(seed)]
    for k, v in (variables or {}).items():
        args += ["--var", f"{k}={v}"]
    for k, v in (tokens or {}).items():
        args += ["--id-token", f"{k}={v}"]
    return args


def resolve_json(seed: Path, job: str, env: dict[str, str], cwd: Path, **kw) -> dict[str, str]:
    r = coffer([*ci_args("resolve", seed, job, **kw), "--format", "json"], env, cwd)
    no_crash(r.err)
    assert r.rc == 0, f"coffer ci resolve exited {r.rc}:\n{r.err[-3000:]}"
    return json.loads(r.out)


def resolve_fails(seed: Path, job: str, env: dict[str, str], cwd: Path, **kw) -> Result:
    r = coffer([*ci_args("resolve", seed, job, **kw), "--format", "json"], env, cwd)
    no_crash(r.text)
    assert r.rc != 0, "coffer ci resolve succeeded where it must fail"
    assert r.out == "", "a failed resolve printed something on stdout (a partial secret set?)"
    return r


# ---------------------------------------------------------------------------
# coffer dev oidc: the ID tokens
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oidc(dev_oidc):
    """The shared `coffer dev oidc` (tests/conftest.py)."""
    return dev_oidc


# ---------------------------------------------------------------------------
# AWS: moto in this process, behind a recorder
# ---------------------------------------------------------------------------


@dataclass
class AwsCall:
    """One request that reached moto."""
    target: str  # X-Amz-Target (Secrets Manager) or the form's Action (STS)
    access_key: str | None  # SigV4 credential of the request, None if unsigned
    region: str | None  # SigV4 credential scope region
    body: dict


SIGV4_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


class Moto:
    def __init__(self):
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args, **kwargs):
                pass

        app = DomainDispatcherApplication(create_backend_app)
        self.calls: list[AwsCall] = []
        self._lock = threading.Lock()

        def recorder(environ, start_response):
            n = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(n) if n else b""
            environ["wsgi.input"] = io.BytesIO(raw)
            m = SIGV4_CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            if target:
                body = json.loads(raw or b"{}")
            else:
                body = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode("utf-8", "replace")).items()}
                target = body.get("Action", environ.get("PATH_INFO", ""))
            with self._lock:
                self.calls.append(AwsCall(target, m and m.group(1), m and m.group(2), body))
            return app(environ, start_response)

        self.http = InThread(make_server("127.0.0.1", 0, recorder, threaded=True, request_handler=QuietHandler))
        self.url = self.http.url

    def reset(self):
        requests.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()
        self.calls.clear()

    def client(self, region: str = "us-east-1"):
        return boto3.client(
            "secretsmanager", region_name=region, endpoint_url=self.url,
            aws_access_key_id=ADMIN_KEY_ID, aws_secret_access_key="seeder-secret",
        )

    def sm_calls(self, operation: str = "GetSecretValue") -> list[AwsCall]:
        return [c for c in self.calls if c.target == f"secretsmanager.{operation}"]

    def sts_calls(self) -> list[AwsCall]:
        return [c for c in self.calls if c.target == "AssumeRoleWithWebIdentity"]

    @staticmethod
    def assumed_roles() -> list:
        """What moto's STS recorded (role ARN, session name, access key id)."""
        from moto.sts.models import sts_backends
        return list(sts_backends[ACCOUNT]["aws"].assumed_roles)

    def close(self):
        self.http.close()


@pytest.fixture(scope="module")
def moto_server():
    m = Moto()
    try:
        yield m
    finally:
        m.close()


@pytest.fixture
def aws(moto_server):
    """moto with no state left by an earlier test."""
    moto_server.reset()
    yield moto_server
    moto_server.reset()


def aws_env(tmp_path: Path, moto: Moto, host_credentials: bool) -> dict[str, str]:
    env = base_env(tmp_path)
    env["AWS_ENDPOINT_URL"] = moto.url  # STS and Secrets Manager
    if host_credentials:
        env["AWS_ACCESS_KEY_ID"] = HOST_KEY_ID
        env["AWS_SECRET_ACCESS_KEY"] = HOST_SECRET
    return env


def password_secret(value: str, **more) -> str:
    return json.dumps({"username": "app", "password": value, **more})


def fresh(prefix: str) -> str:
    """A value unique to this run (so a stale or crossed value cannot pass)."""
    return f"{prefix}-{secrets.token_urlsafe(12)}"


def assert_signed_by(call: AwsCall, access_key: str, region: str, what: str):
    assert call.access_key == access_key, f"{what}: signed with {call.access_key}, expected {access_key}"
    assert call.region == region, f"{what}: SigV4 scope region {call.region}, expected {region}"


# --- seed 01: IAM role of the runner (host credentials) ---------------------


def test_aws_01_iam_role_uses_the_hosts_credentials(aws, tmp_path):
    seed = seed_file("aws_01_*.yml")
    pw = fresh("db-pw")
    aws.client().create_secret(Name="app-secrets/database", SecretString=password_secret(pw))
    aws.calls.clear()

    out = resolve_json(seed, "database-migration", aws_env(tmp_path, aws, True), tmp_path)

    assert out == {"DATABASE_PASSWORD": pw}
    assert aws.sts_calls() == [] and aws.assumed_roles() == [], "no role ARN: nothing may be assumed"
    [call] = aws.sm_calls()
    assert call.body == {"SecretId": "app-secrets/database"}
    assert_signed_by(call, HOST_KEY_ID, "us-east-1", "GetSecretValue")


def test_aws_01_without_host_credentials_fails_readably(aws, tmp_path):
    """The isolated HOME/config files leave no credentials: the error says
    what was tried (GitLab's runner fails with `no EC2 IMDS role found`)."""
    seed = seed_file("aws_01_*.yml")
    r = resolve_fails(seed, "database-migration", aws_env(tmp_path, aws, False), tmp_path)
    assert "DATABASE_PASSWORD" in r.err and "no AWS credentials found" in r.err, r.err
    assert "AWS_EC2_METADATA_DISABLED" in r.err, r.err
    assert aws.calls == [], "a request was sent without credentials"


# --- seeds 02/03: OpenID Connect ---------------------------------------------


def test_aws_02_openid_connect_assumes_the_role(aws, oidc, tmp_path):
    seed = seed_file("aws_02_*.yml")
    pw = fresh("db-pw")
    aws.client().create_secret(Name="app-secrets/database", SecretString=password_secret(pw))
    aws.calls.clear()
    jwt = oidc.mint("sts.amazonaws.com")

    # No host credentials at all: only the assumed role can sign.
    out = resolve_json(seed, "database-migration", aws_env(tmp_path, aws, False), tmp_path,
                       tokens={"AWS_ID_TOKEN": jwt})

    assert out == {"DATABASE_PASSWORD": pw}
    [sts] = aws.sts_calls()
    assert sts.access_key is None, "AssumeRoleWithWebIdentity must be unsigned"
    assert sts.body["RoleArn"] == "arn:aws:iam::123456789012:role/gitlab-secrets-role"
    assert sts.body["WebIdentityToken"] == jwt, "STS did not get the job's AWS_ID_TOKEN"
    assert jwt_claims(sts.body["WebIdentityToken"])["aud"] == "sts.amazonaws.com"
    # No CI_JOB_ID/CI_PROJECT_ID/CI_SERVER_HOST outside GitLab: coffer-ci-<time>.
    assert re.fullmatch(r"coffer-ci-\d+", sts.body["RoleSessionName"]), sts.body["RoleSessionName"]
    [role] = aws.assumed_roles()
    assert (role.role_arn, role.session_name) == (sts.body["RoleArn"], sts.body["RoleSessionName"])
    [call] = aws.sm_calls()
    assert call.body == {"SecretId": "app-secrets/database"}
    assert_signed_by(call, role.access_key_id, "us-east-1", "GetSecretValue")


def test_aws_03_custom_token_and_gitlab_session_name(aws, oidc, tmp_path):
    seed = seed_file("aws_03_*.yml")
    pw = fresh("db-pw")
    aws.client().create_secret(Name="app-secrets/database", SecretString=password_secret(pw))
    aws.calls.clear()
    custom = oidc.mint("sts.amazonaws.com", job_id="4242")
    decoy = oidc.mint("sts.amazonaws.com", job_id="1")  # a variable AWS_ID_TOKEN the secret must not use

    out = resolve_json(
        seed, "database-migration", aws_env(tmp_path, aws, False), tmp_path,
        tokens={"CUSTOM_AWS_TOKEN": custom},
        variables={"AWS_ID_TOKEN": decoy, "CI_JOB_ID": "4242", "CI_PROJECT_ID": "17",
                   "CI_SERVER_HOST": "gitlab.example.com"},
    )

    assert out == {"DATABASE_PASSWORD": pw}
    [sts] = aws.sts_calls()
    assert sts.body["WebIdentityToken"] == custom, "token: $CUSTOM_AWS_TOKEN was not the web identity token"
    assert sts.body["RoleArn"] == "arn:aws:iam::123456789012:role/gitlab-secrets-role"
    # GitLab's default: ${CI_JOB_ID}-${CI_PROJECT_ID}-${CI_SERVER_HOST}
    assert sts.body["RoleSessionName"] == "4242-17-gitlab.example.com"
    [role] = aws.assumed_roles()
    [call] = aws.sm_calls()
    assert_signed_by(call, role.access_key_id, "us-east-1", "GetSecretValue")


def test_aws_02_role_without_a_token_fails_before_any_request(aws, tmp_path):
    seed = seed_file("aws_02_*.yml")
    r = resolve_fails(seed, "database-migration", aws_env(tmp_path, aws, True), tmp_path)
    assert "AWS_ID_TOKEN" in r.err, r.err
    assert aws.calls == []


# --- seed 04: short form ------------------------------------------------------


def test_aws_04_short_form_field_and_whole_secret(aws, tmp_path):
    seed = seed_file("aws_04_*.yml")
    key = fresh("api-key")
    # Whole-secret text is returned byte for byte: odd spacing, a newline,
    # a number and a boolean must survive unchanged.
    whole = '{\n  "api_key": "%s",  "api_secret": "%s",\n  "rate_limit": 1000000, "enabled": true}' % (
        key, fresh("api-secret"))
    aws.client().create_secret(Name="app-secrets/api", SecretString=whole)
    aws.calls.clear()

    out = resolve_json(seed, "api-deployment", aws_env(tmp_path, aws, True), tmp_path)

    assert out.keys() == {"API_KEY", "FULL_SECRET"}
    assert out["API_KEY"] == key
    assert out["FULL_SECRET"] == whole, "FULL_SECRET is not the secret's exact text"
    assert json.loads(out["FULL_SECRET"])["api_key"] == key  # what the seed's jq reads
    assert sorted(c.body["SecretId"] for c in aws.sm_calls()) == ["app-secrets/api", "app-secrets/api"]


# --- seed 05: versions ----------------------------------------------------------


PINNED_VERSION = "01234567-89ab-cdef-0123-456789abcdef"


def test_aws_05_version_stage_and_version_id(aws, tmp_path):
    seed = seed_file("aws_05_*.yml")
    sm = aws.client()
    first, pinned, current = fresh("v1"), fresh("v2-staging"), fresh("v3-current")
    sm.create_secret(Name="prod-app-secrets/database", SecretString=password_secret(first))
    sm.put_secret_value(SecretId="prod-app-secrets/database", SecretString=password_secret(pinned),
                        ClientRequestToken=PINNED_VERSION)
    sm.put_secret_value(SecretId="prod-app-secrets/database", SecretString=password_secret(current))
    aws.calls.clear()

    out = resolve_json(seed, "production-deployment", aws_env(tmp_path, aws, True), tmp_path)

    assert out == {"DATABASE_PASSWORD": current, "STAGING_DATABASE_PASSWORD": pinned}
    bodies = sorted((c.body for c in aws.sm_calls()), key=json.dumps)
    assert bodies == sorted([
        {"SecretId": "prod-app-secrets/database", "VersionStage": "AWSCURRENT"},
        {"SecretId": "prod-app-secrets/database", "VersionId": PINNED_VERSION},
    ], key=json.dumps)


def test_aws_05_missing_secret_names_the_variables_and_the_secret(aws, tmp_path):
    seed = seed_file("aws_05_*.yml")
    r = resolve_fails(seed, "production-deployment", aws_env(tmp_path, aws, True), tmp_path)
    for needle in ("DATABASE_PASSWORD", "STAGING_DATABASE_PASSWORD", "prod-app-secrets/database",
                   "ResourceNotFoundException", "aws_secrets_manager"):
        assert needle in r.err, f"{needle!r} not in:\n{r.err}"
    assert len(aws.sm_calls()) == 2


def test_aws_05_missing_version_fails(aws, tmp_path):
    """The secret exists but not the pinned version: only the staging
    variable fails, and nothing is printed (no partial secret set)."""
    seed = seed_file("aws_05_*.yml")
    current = fresh("current")
    aws.client().create_secret(Name="prod-app-secrets/database", SecretString=password_secret(current))
    r = resolve_fails(seed, "production-deployment", aws_env(tmp_path, aws, True), tmp_path)
    assert "STAGING_DATABASE_PASSWORD" in r.err and PINNED_VERSION in r.err, r.err
    assert "failed for 1 of 2" in r.err, r.err
    assert current not in r.text


# --- seed 06: cross-account ARN --------------------------------------------------


SHARED_ARN = "arn:aws:secretsmanager:us-east-1:987654321098:secret:shared-api-keys-AbCdEf"


def share_cross_account_secret(moto: Moto, value: str) -> None:
    """Stand-in for AWS's cross-account access, which moto cannot model.

    On AWS the secret lives in account 987654321098 and its resource policy
    (plus a KMS key policy) lets the role in 123456789012 read it by full
    ARN. moto keeps one store per account (chosen from the caller's
    credentials) and gives secrets a random 6-letter ARN suffix, so the
    assumed role of account 123456789012 could never see a secret created in
    987654321098. moto runs in this process, so the secret is created in the
    store the role's credentials map to (123456789012, us-east-1) and its ARN
    is then set to the seed's exact ARN. moto's lookup matches a full ARN
    against each secret's `arn` attribute, so GetSecretValue with the seed's
    ARN finds it, and only by that ARN (a name lookup of
    `shared-api-keys-AbCdEf` would not).
    """
    from moto.secretsmanager.models import secretsmanager_backends

    moto.client().create_secret(Name="shared-api-keys", SecretString=value)
    store = secretsmanager_backends[ACCOUNT]["us-east-1"].secrets
    secret = store["shared-api-keys"]
    secret.arn = SHARED_ARN
    # The replacement took: the ARN resolves, the random one no longer does.
    assert store.get(SHARED_ARN) is secret


def test_aws_06_cross_account_secret_by_full_arn(aws, oidc, tmp_path):
    seed = seed_file("aws_06_*.yml")
    key = fresh("prod-key")
    share_cross_account_secret(aws, json.dumps({"production_key": key, "staging_key": fresh("stg")}))
    aws.calls.clear()
    jwt = oidc.mint("sts.amazonaws.com")

    out = resolve_json(seed, "cross-account-deployment", aws_env(tmp_path, aws, False), tmp_path,
                       tokens={"AWS_ID_TOKEN": jwt})

    assert out == {"SHARED_API_KEY": key}
    [sts] = aws.sts_calls()
    assert sts.body["RoleArn"] == "arn:aws:iam::123456789012:role/cross-account-secrets-role"
    [role] = aws.assumed_roles()
    [call] = aws.sm_calls()
    assert call.body == {"SecretId": SHARED_ARN}, "the full ARN must be sent as is"
    assert_signed_by(call, role.access_key_id, "us-east-1", "GetSecretValue")


def test_aws_06_unshared_secret_is_a_readable_error(aws, oidc, tmp_path):
    seed = seed_file("aws_06_*.yml")
    r = resolve_fails(seed, "cross-account-deployment", aws_env(tmp_path, aws, False), tmp_path,
                      tokens={"AWS_ID_TOKEN": oidc.mint("sts.amazonaws.com")})
    assert "SHARED_API_KEY" in r.err and SHARED_ARN in r.err, r.err
    assert "ResourceNotFoundException" in r.err, r.err
    [call] = aws.sm_calls()
    assert call.body == {"SecretId": SHARED_ARN} and call.region == "us-east-1"


# --- seed 07: per-secret region / role / session / token -----------------------


def test_aws_07_per_secret_overrides(aws, oidc, tmp_path):
    seed = seed_file("aws_07_*.yml")
    eu_pw, us_pw = fresh("eu-pw"), fresh("us-pw")
    aws.client("eu-west-1").create_secret(Name="eu-app-secrets/database", SecretString=password_secret(eu_pw))
    aws.client("us-east-1").create_secret(Name="us-app-secrets/database", SecretString=password_secret(us_pw))
    aws.calls.clear()
    default_jwt = oidc.mint("sts.amazonaws.com", job_id="100")
    eu_jwt = oidc.mint("sts.amazonaws.com", job_id="200")

    out = resolve_json(seed, "multi-region-deployment", aws_env(tmp_path, aws, False), tmp_path,
                       tokens={"AWS_ID_TOKEN": default_jwt, "EU_AWS_TOKEN": eu_jwt})

    assert out == {"EU_DATABASE_PASSWORD": eu_pw, "US_DATABASE_PASSWORD": us_pw}
    sts = {c.body["RoleArn"]: c.body for c in aws.sts_calls()}
    eu_role_arn = "arn:aws:iam::123456789012:role/eu-deployment-role"
    default_role_arn = "arn:aws:iam::123456789012:role/default-role"
    assert sts.keys() == {eu_role_arn, default_role_arn}, sts.keys()
    assert sts[eu_role_arn]["WebIdentityToken"] == eu_jwt, "the EU role must get $EU_AWS_TOKEN"
    assert sts[eu_role_arn]["RoleSessionName"] == "gitlab-eu-deployment"
    assert sts[default_role_arn]["WebIdentityToken"] == default_jwt, "the default role must get $AWS_ID_TOKEN"
    assert sts[default_role_arn]["RoleSessionName"] != "gitlab-eu-deployment"
    keys = {r.role_arn: r.access_key_id for r in aws.assumed_roles()}
    assert keys.keys() == {eu_role_arn, default_role_arn}
    calls = {c.body["SecretId"]: c for c in aws.sm_calls()}
    assert calls.keys() == {"eu-app-secrets/database", "us-app-secrets/database"}
    assert_signed_by(calls["eu-app-secrets/database"], keys[eu_role_arn], "eu-west-1", "EU GetSecretValue")
    assert_signed_by(calls["us-app-secrets/database"], keys[default_role_arn], "us-east-1", "US GetSecretValue")


def test_aws_07_explain_shows_each_secrets_login_without_requests(tmp_path):
    """`coffer ci explain` on the seed, with no endpoint override: the real
    regional endpoints, each secret's role and session, and no network."""
    seed = seed_file("aws_07_*.yml")
    env = base_env(tmp_path)
    r = coffer(ci_args("explain", seed, "multi-region-deployment",
                       tokens={"AWS_ID_TOKEN": "x.y.z", "EU_AWS_TOKEN": "a.b.c"}), env, tmp_path)
    no_crash(r.text)
    assert r.rc == 0, r.text
    eu = r.out.split("\nEU_DATABASE_PASSWORD\n")[1].split("\n\n")[0]
    us = r.out.split("\nUS_DATABASE_PASSWORD\n")[1].split("\n\n")[0]
    assert "https://secretsmanager.eu-west-1.amazonaws.com/" in eu, eu
    assert "role/eu-deployment-role (session gitlab-eu-deployment)" in eu, eu
    assert "https://sts.eu-west-1.amazonaws.com/" in eu, eu
    assert "$EU_AWS_TOKEN" in eu, eu
    assert "https://secretsmanager.us-east-1.amazonaws.com/" in us, us
    assert "role/default-role" in us and "$AWS_ID_TOKEN" in us, us
    assert "environment variable $EU_DATABASE_PASSWORD" in eu  # file: false


# ---------------------------------------------------------------------------
# Azure: a protocol-exact stub of Entra ID + Key Vault
# ---------------------------------------------------------------------------

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "b6b2ab2e-9d6c-4b3a-9c59-3c0d1e5f7a21"
KV_API_VERSION = "7.5"  # what coffer sends (azure.rs API_VERSION); the stub refuses any other
KEY_VAULT_SCOPE = "https://vault.azure.net/.default"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SEED_VERSION = "00000000000000000000000000000000"
GITLAB_SUBJECT = "project_path:group/app:ref_type:branch:ref:main"  # dev oidc's gitlab profile


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def lower(headers) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


class EntraError(Exception):
    def __init__(self, status: int, error: str, code: int, text: str):
        self.status, self.error, self.code, self.text = status, error, code, text


@dataclass
class AzureStub:
    """Entra ID token endpoint + Key Vault data plane on one loopback port.

    federated: the app's federated identity credential (issuer, subject,
    audience), as configured in Entra for GitLab (audience
    https://gitlab.com, the seed's id_tokens aud). rbac: whether the app has
    "Key Vault Secrets User" on the vault.
    """

    issuer: str
    secrets: dict[tuple[str, str], str] = field(default_factory=dict)  # (name, version) -> value
    latest: dict[str, str] = field(default_factory=dict)  # name -> version
    audience: str = "https://gitlab.com"
    subject: str = GITLAB_SUBJECT
    rbac: bool = True
    token_requests: list[dict] = field(default_factory=list)
    vault_requests: list[dict] = field(default_factory=list)
    issued: set[str] = field(default_factory=set)

    def start(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def reply(self, status: int, body: dict, headers: dict | None = None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n).decode("utf-8", "replace")
                stub.token_requests.append({"path": self.path, "headers": lower(self.headers),
                                            "form": urllib.parse.parse_qs(raw, keep_blank_values=True)})
                try:
                    self.reply(200, stub.token(self.path, self.headers, raw))
                except EntraError as e:
                    self.reply(e.status, entra_body(e))

            def do_GET(self):  # noqa: N802
                stub.vault_requests.append({"path": self.path, "headers": lower(self.headers)})
                status, body, headers = stub.get_secret(self.path, self.headers)
                self.reply(status, body, headers)

            def log_message(self, *args):
                pass

        self.http = loopback_http(Handler)
        self.url = self.http.url
        return self

    def close(self):
        self.http.close()

    def put(self, name: str, version: str, value: str):
        self.secrets[(name, version)] = value
        self.latest[name] = version

    # --- Microsoft identity platform: POST /{tenant}/oauth2/v2.0/token -----

    def token(self, path: str, headers, raw: str) -> dict:
        m = re.fullmatch(r"/([^/]+)/oauth2/v2\.0/token", path)
        if not m:
            raise EntraError(404, "invalid_request", 900023, "Specified tenant identifier is neither a valid DNS name, nor a valid external domain.")
        if m.group(1) != TENANT:
            raise EntraError(400, "invalid_request", 90002, f"Tenant '{m.group(1)}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.")
        if not headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            raise EntraError(400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
        form = urllib.parse.parse_qs(raw, keep_blank_values=True)
        one = {k: v[0] for k, v in form.items() if len(v) == 1}
        if set(form) != {"grant_type", "client_id", "scope", "client_assertion_type", "client_assertion"} or len(one) != 5:
            raise EntraError(400, "invalid_request", 900144, f"The request body must contain exactly the client-assertion parameters, got {sorted(form)}.")
        if one["grant_type"] != "client_credentials":
            raise EntraError(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        if one["scope"] != KEY_VAULT_SCOPE:
            raise EntraError(400, "invalid_scope", 70011, f"The provided value for the input parameter 'scope' is not valid. The scope {one['scope']} is not valid.")
        if one["client_assertion_type"] != JWT_BEARER:
            raise EntraError(400, "invalid_request", 50027, "JWT token is invalid or malformed.")
        if one["client_id"] != CLIENT_ID:
            raise EntraError(400, "unauthorized_client", 700016, f"Application with identifier '{one['client_id']}' was not found in the directory '{TENANT}'.")
        self.check_assertion(one["client_assertion"])
        access = secrets.token_urlsafe(32)
        self.issued.add(access)
        return {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": access}

    def check_assertion(self, jwt: str):
        """A federated identity credential's checks: a well-formed RS256 JWT
        signed by a key of the issuer's JWKS (found by OIDC discovery),
        issuer, subject and audience equal to the credential's, in its
        validity window."""
        malformed = EntraError(400, "invalid_client", 50027, "JWT token is invalid or malformed.")
        parts = jwt.split(".")
        if len(parts) != 3:
            raise malformed
        try:
            header, claims, signature = b64url_json(parts[0]), b64url_json(parts[1]), b64url_decode(parts[2])
        except ValueError:
            raise malformed from None
        if header.get("alg") != "RS256" or not isinstance(claims, dict):
            raise malformed
        iss = claims.get("iss")
        if iss != self.issuer:
            raise EntraError(400, "invalid_client", 700211, f"No matching federated identity record found for presented assertion issuer '{iss}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.")
        jwks_uri = requests.get(f"{iss}/.well-known/openid-configuration", timeout=10).json()["jwks_uri"]
        keys = [k for k in requests.get(jwks_uri, timeout=10).json()["keys"] if k.get("kid") == header.get("kid")]
        if not keys:
            raise EntraError(400, "invalid_client", 700027, "Client assertion failed signature validation. Key was not found.")
        n = int.from_bytes(b64url_decode(keys[0]["n"]), "big")
        e = int.from_bytes(b64url_decode(keys[0]["e"]), "big")
        try:
            rsa.RSAPublicNumbers(e, n).public_key().verify(
                signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise EntraError(400, "invalid_client", 700027, "Client assertion failed signature validation.") from None
        if claims.get("sub") != self.subject:
            raise EntraError(400, "invalid_client", 700213, f"No matching federated identity record found for presented assertion subject '{claims.get('sub')}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.")
        aud = claims.get("aud")
        if self.audience not in (aud if isinstance(aud, list) else [aud]):
            raise EntraError(400, "invalid_client", 700212, f"No matching federated identity record found for presented assertion audience '{aud}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.")
        now = time.time()
        if not (claims.get("nbf", 0) - 300 <= now < claims.get("exp", 0) + 300):
            raise EntraError(400, "invalid_client", 700024, "Client assertion is not within its valid time range.")

    # --- Key Vault: GET /secrets/{name}[/{version}]?api-version=7.5 ---------

    def get_secret(self, path: str, headers) -> tuple[int, dict, dict]:
        url = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qs(url.query)

        def kv_error(status, code, message, inner=None, extra_headers=None):
            err = {"code": code, "message": message}
            if inner:
                err["innererror"] = {"code": inner}
            return status, {"error": err}, extra_headers or {}

        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return kv_error(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.", extra_headers={
                "WWW-Authenticate": f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", resource="https://vault.azure.net"'})
        if auth[len("Bearer "):] not in self.issued:
            return kv_error(401, "Unauthorized", "AKV10032: Invalid issuer.")
        if query.get("api-version") != [KV_API_VERSION]:
            return kv_error(400, "BadParameter", f"The specified version ({','.join(query.get('api-version', []))}) is not recognized. Consider using the latest supported version ({KV_API_VERSION}).")
        m = re.fullmatch(r"/secrets/([0-9A-Za-z-]{1,127})(?:/([0-9A-Za-z]*))?/?", url.path)
        if not m:
            return kv_error(400, "BadParameter", "The request URI contains an invalid name: " + url.path)
        name, version = m.group(1), m.group(2) or ""
        if not self.rbac:
            return kv_error(403, "Forbidden", (
                "Caller is not authorized to perform action on resource.\r\n"
                "If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n"
                f"Caller: appid={CLIENT_ID};oid=5f0d4c2e-0000-0000-0000-000000000000;iss=https://sts.windows.net/{TENANT}/\r\n"
                "Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\n"
                f"Resource: '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg/providers/microsoft.keyvault/vaults/test-vault/secrets/{name}'\r\n"
                "Assignment: (not found)\r\nDecisionReason: 'DeniedWithNoValidRBAC' \r\n"
                "Vault: test-vault;location=eastus\r\n"), inner="ForbiddenByRbac")
        version = version or self.latest.get(name, "")
        value = self.secrets.get((name, version))
        if value is None:
            return kv_error(404, "SecretNotFound", (
                f"A secret with (name/id) {name}/{version} was not found in this key vault. If you recently deleted "
                "this secret you may be able to recover it using the correct recovery command. For help resolving "
                "this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"))
        return 200, {
            "value": value,
            "id": f"https://test-vault.vault.azure.net/secrets/{name}/{version}",
            "attributes": {"enabled": True, "created": 1767225600, "updated": 1767225600,
                           "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90},
            "tags": {},
        }, {}


def entra_body(e: EntraError) -> dict:
    """The identity platform's error document."""
    trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    return {
        "error": e.error,
        "error_description": f"AADSTS{e.code}: {e.text}\r\nTrace ID: {trace}\r\nCorrelation ID: {corr}\r\nTimestamp: {stamp}",
        "error_codes": [e.code],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": corr,
        "error_uri": f"https://login.microsoftonline.com/error?code={e.code}",
    }


@pytest.fixture
def azure(oidc):
    stub = AzureStub(issuer=oidc.url).start()
    yield stub
    stub.close()


AZURE_JOB = "job"


def azure_env(tmp_path: Path, stub: AzureStub) -> dict[str, str]:
    env = base_env(tmp_path)
    env["AZURE_AUTHORITY_HOST"] = stub.url  # the runner host's setting, as the Azure SDK reads it
    return env


def azure_vars(stub: AzureStub) -> dict[str, str]:
    return {"AZURE_KEY_VAULT_SERVER_URL": stub.url + "/", "AZURE_CLIENT_ID": CLIENT_ID, "AZURE_TENANT_ID": TENANT}


def token_file(tmp_path: Path, jwt: str) -> str:
    p = tmp_path / "azure_jwt"
    p.write_text(jwt + "\n")
    return f"@{p}"


def test_azure_01_key_vault_secret(azure, oidc, tmp_path):
    seed = seed_file("azure_01_*.yml")
    value = fresh("kv-secret") + " with spaces, 'quotes' and\na second line"
    azure.put("test", SEED_VERSION, value)
    azure.put("test", "ffffffffffffffffffffffffffffffff", fresh("newer"))  # latest is another version
    jwt = oidc.mint("https://gitlab.com")

    out = resolve_json(seed, AZURE_JOB, azure_env(tmp_path, azure), tmp_path,
                       tokens={"AZURE_JWT": token_file(tmp_path, jwt)}, variables=azure_vars(azure))

    # file: true is the default; `resolve` prints values (only `coffer ci run`
    # writes files, see the next test).
    assert out == {"DATABASE_PASSWORD": value}
    [tok] = azure.token_requests
    assert tok["path"] == f"/{TENANT}/oauth2/v2.0/token"
    assert {k: v for k, v in tok["form"].items() if k != "client_assertion"} == {
        "grant_type": ["client_credentials"], "client_id": [CLIENT_ID], "scope": [KEY_VAULT_SCOPE],
        "client_assertion_type": [JWT_BEARER]}
    assert tok["form"]["client_assertion"] == [jwt], "the assertion is not the job's AZURE_JWT"
    [get] = azure.vault_requests
    assert get["path"] == f"/secrets/test/{SEED_VERSION}?api-version={KV_API_VERSION}"
    assert get["headers"]["authorization"].removeprefix("Bearer ") in azure.issued


def test_azure_01_file_variable_with_ci_run(azure, oidc, tmp_path):
    """GitLab's default `file: true`: the variable holds the path of a file
    with the exact value (no trailing newline), removed after the command."""
    seed = seed_file("azure_01_*.yml")
    value = fresh("kv-file-secret")
    azure.put("test", SEED_VERSION, value)
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    copy, where = tmp_path / "copy.bin", tmp_path / "path.txt"
    r = coffer([*ci_args("run", seed, AZURE_JOB, tokens={"AZURE_JWT": oidc.mint("https://gitlab.com")},
                         variables=azure_vars(azure)),
                "--secrets-dir", str(secrets_dir), "--",
                "sh", "-c", f'printf %s "$DATABASE_PASSWORD" > {where}; cp "$DATABASE_PASSWORD" {copy}'],
               azure_env(tmp_path, azure), tmp_path)
    no_crash(r.text)
    assert r.rc == 0, r.text
    assert copy.read_bytes() == value.encode(), "the secret file does not hold the exact value"
    path = Path(where.read_text())
    assert path.is_absolute() and secrets_dir in path.parents, f"unexpected secret file location {path}"
    assert not path.exists(), "the secret file was left behind"
    assert value not in r.text


def test_azure_01_malformed_jwt_is_aadsts50027(azure, tmp_path):
    """Seed 003's first troubleshooting entry: `RESPONSE 400 Bad Request /
    AADSTS50027: JWT token is invalid or malformed.`"""
    seed = seed_file("azure_01_*.yml")
    azure.put("test", SEED_VERSION, fresh("never-read"))
    r = resolve_fails(seed, AZURE_JOB, azure_env(tmp_path, azure), tmp_path,
                      tokens={"AZURE_JWT": "not-a-jwt"}, variables=azure_vars(azure))
    for needle in ("DATABASE_PASSWORD", "azure-key-vault", "AADSTS50027", "JWT token is invalid or malformed"):
        assert needle in r.err, f"{needle!r} not in:\n{r.err}"
    assert "Trace ID" not in r.err, "the error should keep AADSTS's first line only"
    assert len(azure.token_requests) == 1 and azure.vault_requests == []


def test_azure_01_forbidden_by_rbac(azure, oidc, tmp_path):
    """Seed 003's second entry: 403 Forbidden / ForbiddenByRbac."""
    seed = seed_file("azure_01_*.yml")
    value = fresh("kv-secret")
    azure.put("test", SEED_VERSION, value)
    azure.rbac = False
    r = resolve_fails(seed, AZURE_JOB, azure_env(tmp_path, azure), tmp_path,
                      tokens={"AZURE_JWT": oidc.mint("https://gitlab.com")}, variables=azure_vars(azure))
    for needle in ("DATABASE_PASSWORD", "403", "Forbidden", "ForbiddenByRbac",
                   "Caller is not authorized to perform action on resource", "Key Vault Secrets User"):
        assert needle in r.err, f"{needle!r} not in:\n{r.err}"
    assert value not in r.text
    assert len(azure.vault_requests) == 1


def test_azure_01_token_for_another_audience(azure, oidc, tmp_path):
    """An ID token whose aud is not the federated credential's (the seed
    says aud https://gitlab.com): Entra's AADSTS700212, explained."""
    seed = seed_file("azure_01_*.yml")
    azure.put("test", SEED_VERSION, fresh("never-read"))
    r = resolve_fails(seed, AZURE_JOB, azure_env(tmp_path, azure), tmp_path,
                      tokens={"AZURE_JWT": oidc.mint("api://AzureADTokenExchange")}, variables=azure_vars(azure))
    assert "AADSTS700212" in r.err and "audience" in r.err, r.err
    assert azure.vault_requests == []


@pytest.mark.parametrize("fails_if_missing", [None, "false"])
def test_azure_01_secret_not_found(azure, oidc, tmp_path, fails_if_missing):
    """Key Vault's 404 SecretNotFound is GitLab's `secret not found: VAR`,
    or an empty value with FF_SECRET_RESOLVING_FAILS_IF_MISSING=false."""
    seed = seed_file("azure_01_*.yml")
    azure.put("test", "ffffffffffffffffffffffffffffffff", fresh("other-version"))
    env = azure_env(tmp_path, azure)
    kw = dict(tokens={"AZURE_JWT": oidc.mint("https://gitlab.com")}, variables=azure_vars(azure))
    if fails_if_missing is None:
        r = resolve_fails(seed, AZURE_JOB, env, tmp_path, **kw)
        assert "secret not found: DATABASE_PASSWORD" in r.err, r.err
    else:
        env["FF_SECRET_RESOLVING_FAILS_IF_MISSING"] = fails_if_missing
        assert resolve_json(seed, AZURE_JOB, env, tmp_path, **kw) == {"DATABASE_PASSWORD": ""}


@pytest.mark.parametrize("missing", [
    ("AZURE_KEY_VAULT_SERVER_URL",),
    ("AZURE_CLIENT_ID",),
    ("AZURE_TENANT_ID",),
    ("AZURE_KEY_VAULT_SERVER_URL", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"),
])
def test_azure_01_missing_variables_is_provider_not_found(azure, oidc, tmp_path, missing):
    """Seed 003's third entry: GitLab's text, plus which variables."""
    seed = seed_file("azure_01_*.yml")
    variables = {k: v for k, v in azure_vars(azure).items() if k not in missing}
    r = resolve_fails(seed, AZURE_JOB, azure_env(tmp_path, azure), tmp_path,
                      tokens={"AZURE_JWT": oidc.mint("https://gitlab.com")}, variables=variables)
    assert PROVIDER_NOT_FOUND in r.err, r.err
    for var in ("AZURE_KEY_VAULT_SERVER_URL", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"):
        if var in missing:
            assert var in r.err, f"{var} is missing but not named:\n{r.err}"
        else:
            assert var not in r.err, f"{var} is set but named as missing:\n{r.err}"
    assert "DATABASE_PASSWORD" in r.err, r.err
    assert azure.token_requests == [] and azure.vault_requests == []


def test_azure_01_explain(azure, tmp_path):
    seed = seed_file("azure_01_*.yml")
    r = coffer(ci_args("explain", seed, AZURE_JOB, tokens={"AZURE_JWT": "x.y.z"}, variables=azure_vars(azure)),
               azure_env(tmp_path, azure), tmp_path)
    no_crash(r.text)
    assert r.rc == 0, r.text
    assert "id_token AZURE_JWT: aud https://gitlab.com; from --id-token" in r.out, r.out
    assert f"client {CLIENT_ID} in tenant {TENANT}" in r.out, r.out
    assert f"secret test version {SEED_VERSION}" in r.out, r.out
    assert "file (0600); $DATABASE_PASSWORD holds its path" in r.out, r.out
    assert azure.token_requests == [] and azure.vault_requests == []


def test_every_aws_and_azure_seed_is_covered():
    """A new AWS/Azure example added to the fixtures must get a test here."""
    covered = {"aws_01", "aws_02", "aws_03", "aws_04", "aws_05", "aws_06", "aws_07", "azure_01"}
    present = {p.name[:6] if p.name.startswith("aws") else p.name[:8]
               for p in [*FIXTURES.glob("aws_*.yml"), *FIXTURES.glob("azure_*.yml")]}
    assert present == covered, f"fixtures {sorted(present - covered)} have no end-to-end test"
