"""aws_iam logins end to end: a real moto STS server, cloud-ids signed with
botocore's SigV4 signer (as the Akeyless cloud-id libraries and GitHub
Action build them) and with the AWS SDK for JavaScript v3
(`@aws-sdk/client-sts` from tests/sdk/node), Coffer replaying them to the
method's sts-url. One moto runs with IAM authentication on, so it verifies
every SigV4 signature as STS does: a header Coffer failed to forward, or
forwarded changed, fails there.

A small in-test HTTP stub stands in for STS where the test needs to see
what Coffer sends (or that it sends nothing) and for STS error answers.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
import time
from http.server import BaseHTTPRequestHandler
from unittest import mock

import botocore.session
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cofferlib import Client, MotoServer, coffer_bin, free_port, loopback_http

ACCOUNT = "123456789012"  # moto's default account
GCI_BODY = "Action=GetCallerIdentity&Version=2011-06-15"
FORM = "application/x-www-form-urlencoded; charset=utf-8"
USER_CREDS = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")

STS_ERROR_XML = (
    '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
    "<Error><Type>Sender</Type><Code>InvalidClientTokenId</Code>"
    "<Message>The security token included in the request is invalid.</Message></Error>"
    "<RequestId>4fa4a2b1-5c1e-4a39-9d1b-6a0d8f0e2c11</RequestId></ErrorResponse>"
)


def gci_xml(arn: str, user_id: str, account: str = ACCOUNT) -> str:
    return (
        '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<GetCallerIdentityResult><Arn>{arn}</Arn><UserId>{user_id}</UserId>"
        f"<Account>{account}</Account></GetCallerIdentityResult>"
        "<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
    )


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def sign(url: str, creds: Credentials, *, body: str = GCI_BODY, when: datetime.datetime | None = None,
         extra_signed: dict | None = None) -> dict[str, str]:
    """SigV4-sign a GetCallerIdentity POST the way botocore does; returns the headers."""
    headers = {"Content-Type": FORM, **(extra_signed or {})}
    req = AWSRequest(method="POST", url=url, data=body, headers=headers)
    if when is None:
        SigV4Auth(creds, "sts", "us-east-1").add_auth(req)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            SigV4Auth(creds, "sts", "us-east-1").add_auth(req)
    return dict(req.headers.items())


def make_cloud_id(url: str, headers: dict[str, str], body: str = GCI_BODY, method: str = "POST") -> str:
    """The Akeyless cloud-id: base64 JSON of base64 fields, headers as {name: [value]}."""
    doc = {
        "sts_request_method": method,
        "sts_request_url": b64(url),
        "sts_request_body": b64(body),
        "sts_request_headers": b64(json.dumps({k: [v] for k, v in headers.items()})),
    }
    return b64(json.dumps(doc))


def cloud_id_for(url: str, creds: Credentials = USER_CREDS, **kw) -> str:
    return make_cloud_id(url, sign(url, creds, **kw))


def aws_login(client: Client, access_id: str, cloud_id: str) -> requests.Response:
    return client.raw("auth", {"access-id": access_id, "access-type": "aws_iam", "cloud-id": cloud_id}, token=False)


def assert_refused(r: requests.Response, status: int, *needles: str) -> str:
    """A refusal: the expected status, a message naming the check, no token."""
    assert r.status_code == status, f"expected HTTP {status}, got {r.status_code}: {r.text[:300]}"
    body = r.json()
    assert "token" not in body and "creds" not in body, "a refused login returned a token"
    msg = body.get("error", "")
    for n in needles:
        assert n in msg, f"{n!r} not in error message {msg!r}"
    return msg


# ---------------------------------------------------------------------------
# Peers: moto's STS and a recording stub
# ---------------------------------------------------------------------------


class StubSts:
    """A loopback HTTP server that records every request and answers with a
    configurable status and body (default: a valid GetCallerIdentity
    success, so a request that got through unchecked would log in)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        self.body = gci_xml(f"arn:aws:iam::{ACCOUNT}:user/stub", "AIDASTUB")
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                n = int(self.headers.get("Content-Length") or 0)
                stub.requests.append({
                    "method": "POST", "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": self.rfile.read(n).decode("utf-8", "replace"),
                })
                data = stub.body.encode()
                self.send_response(stub.status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args):
                pass

        self.http = loopback_http(Handler)
        self.url = self.http.url + "/"

    def close(self):
        self.http.close()


@pytest.fixture
def stub():
    s = StubSts()
    yield s
    s.close()


# Setup calls moto serves without authentication (create the IAM user, its
# access key, its policy); every request after them must be signed with
# the key of one of moto's IAM users, and moto checks the signature.
MOTO_SETUP_CALLS = 3


@pytest.fixture(scope="module")
def verifying_sts(tmp_path_factory):
    """A moto server that verifies SigV4 signatures, and the credentials of
    an IAM user `ci` it knows: (url, Credentials)."""
    moto = MotoServer(tmp_path_factory.mktemp("moto-auth"),
                      env={"INITIAL_NO_AUTH_ACTION_COUNT": str(MOTO_SETUP_CALLS)})
    url = moto.url + "/"
    iam = botocore.session.get_session().create_client(
        "iam", endpoint_url=moto.url, region_name="us-east-1",
        aws_access_key_id=USER_CREDS.access_key, aws_secret_access_key=USER_CREDS.secret_key,
    )
    iam.create_user(UserName="ci")
    key = iam.create_access_key(UserName="ci")["AccessKey"]
    iam.put_user_policy(UserName="ci", PolicyName="whoami", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}],
    }))
    yield url, Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    moto.stop()


NODE_DIR = os.path.join(os.path.dirname(__file__), "..", "sdk", "node")


def aws_sdk_v3_cloud_id(url: str, creds: Credentials) -> str:
    """A cloud-id from a GetCallerIdentity signed by the real AWS SDK for
    JavaScript v3 (tests/sdk/node/aws_sdk_v3_cloud_id.mjs)."""
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "@aws-sdk", "client-sts")):
        pytest.fail("@aws-sdk/client-sts is not installed: run `npm ci` in tests/sdk/node (scripts/test.sh does)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=creds.access_key, AWS_SECRET_ACCESS_KEY=creds.secret_key)
    if creds.token:
        env["AWS_SESSION_TOKEN"] = creds.token
    p = subprocess.run(["node", "aws_sdk_v3_cloud_id.mjs", url], cwd=NODE_DIR, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def decoded_headers(cloud_id: str) -> dict[str, str]:
    doc = json.loads(base64.b64decode(cloud_id))
    return {k.lower(): v[0] for k, v in json.loads(base64.b64decode(doc["sts_request_headers"])).items()}


def create_method(admin: Client, name: str, sts_url: str, **bounds) -> str:
    body = {"name": name, "bound-aws-account-id": [ACCOUNT], "sts-url": sts_url}
    body.update({k.replace("_", "-"): v for k, v in bounds.items()})
    return admin.call("create-auth-method-aws-iam", body)["access_id"]


def grant(admin: Client, role: str, am: str, path: str, sub_claims: dict | None = None):
    """A new role with read on path, associated with the auth method."""
    admin.call("create-role", {"name": role})
    admin.call("set-role-rule", {"role-name": role, "path": path, "capability": ["read"]})
    body = {"role-name": role, "am-name": am}
    if sub_claims:
        body["sub-claims"] = sub_claims
    admin.call("assoc-role-am", body)


def assume_role(moto_url: str, role_name: str, session: str) -> Credentials:
    sts = botocore.session.get_session().create_client(
        "sts", endpoint_url=moto_url, region_name="us-east-1",
        aws_access_key_id=USER_CREDS.access_key, aws_secret_access_key=USER_CREDS.secret_key,
    )
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role_name}", RoleSessionName=session)["Credentials"]
    return Credentials(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])


# ---------------------------------------------------------------------------
# Logins that succeed
# ---------------------------------------------------------------------------


def test_iam_user_logs_in_and_reads_through_its_role(server, admin, moto_url):
    access_id = create_method(admin, "/aws/ci", moto_url)
    admin.create_secret("/aws-data/db", "s3cr3t-value")
    grant(admin, "/role/aws-ci", "/aws/ci", "/aws-data/*")

    am = admin.call("get-auth-method", {"name": "/aws/ci"})
    assert am["access_info"]["rules_type"] == "aws_iam"
    rules = am["access_info"]["aws_iam_access_rules"]
    assert rules["account_id"] == [ACCOUNT] and rules["sts_endpoint"] == moto_url

    headers = sign(moto_url, USER_CREDS)
    r = aws_login(server.client(), access_id, make_cloud_id(moto_url, headers))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["token"] and out["expiration"]
    claims = out["creds"]["sub_claims"]
    assert claims["account_id"] == [ACCOUNT]
    assert claims["user_id"] == [USER_CREDS.access_key]  # moto answers the access key as UserId
    assert claims["user_name"] == ["moto"]
    arn = claims["arn"][0]
    assert arn.endswith(f"::{ACCOUNT}:user/moto"), arn

    reader = Client(server.url, out["token"])
    assert reader.get_value("/aws-data/db") == "s3cr3t-value"
    assert reader.raw("create-secret", {"name": "/aws-data/x", "value": "x"}).status_code == 403

    # The audit log names the caller by ARN; neither it nor the server's
    # output holds the signature (the signed Authorization header).
    signature = headers["Authorization"].rsplit("Signature=", 1)[1]
    logins = [a for a in admin.audit() if a["operation"] == "auth" and a["access_id"] == access_id]
    assert logins and logins[-1]["identity"] == arn and logins[-1]["outcome"] == "allowed"
    assert signature not in json.dumps(admin.audit())
    assert signature.encode() not in server.logs()


def test_assumed_role_binds_on_role_name_and_arn_with_sub_claims(server, admin, moto_url):
    access_id = create_method(
        admin, "/aws/deploy", moto_url,
        bound_role_name=["ci-deployer", "ci-reader"],
        bound_arn=[f"arn:aws:iam::{ACCOUNT}:role/ci-*"],
    )
    admin.create_secret("/deploy/key", "deploy-value")
    admin.create_secret("/read/key", "read-value")
    grant(admin, "/role/deployers", "/aws/deploy", "/deploy/*", {"role_name": ["ci-deployer"]})
    grant(admin, "/role/readers", "/aws/deploy", "/read/*",
          {"arn": [f"arn:aws:iam::{ACCOUNT}:role/ci-reader"]})

    creds = assume_role(moto_url, "ci-deployer", "job-42")
    headers = sign(moto_url, creds)
    assert "X-Amz-Security-Token" in headers
    r = aws_login(server.client(), access_id, make_cloud_id(moto_url, headers))
    assert r.status_code == 200, r.text
    claims = r.json()["creds"]["sub_claims"]
    assert claims["role_name"] == ["ci-deployer"]
    assert claims["resource_id"] == ["job-42"]
    assert claims["arn"] == [f"arn:aws:sts::{ACCOUNT}:assumed-role/ci-deployer/job-42",
                             f"arn:aws:iam::{ACCOUNT}:role/ci-deployer"]
    assert claims["user_id"][0].endswith(":job-42") and claims["role_id"] == [claims["user_id"][0].split(":")[0]]
    deployer = Client(server.url, r.json()["token"])
    assert deployer.get_value("/deploy/key") == "deploy-value"
    assert deployer.raw("get-secret-value", {"names": ["/read/key"]}).status_code == 403, \
        "the arn sub-claim of the readers' association must not match the deployer"

    # The other role: the arn sub-claim (its role ARN) gives /read, not /deploy.
    r = aws_login(server.client(), access_id, cloud_id_for(moto_url, assume_role(moto_url, "ci-reader", "job-43")))
    assert r.status_code == 200, r.text
    reader = Client(server.url, r.json()["token"])
    assert reader.get_value("/read/key") == "read-value"
    assert reader.raw("get-secret-value", {"names": ["/deploy/key"]}).status_code == 403

    # A role outside the bounds, and a plain IAM user, are refused.
    r = aws_login(server.client(), access_id, cloud_id_for(moto_url, assume_role(moto_url, "prod-admin", "job-44")))
    assert_refused(r, 401, "ARN check", "prod-admin")
    r = aws_login(server.client(), access_id, cloud_id_for(moto_url, USER_CREDS))
    assert_refused(r, 401, "ARN check")
    names_only = create_method(admin, "/aws/names", moto_url, bound_role_name=["ci-deployer"])
    r = aws_login(server.client(), names_only, cloud_id_for(moto_url, assume_role(moto_url, "ci-reader", "job-46")))
    assert_refused(r, 401, "role name check", "ci-reader", "bound-role-name")
    r = aws_login(server.client(), names_only, cloud_id_for(moto_url, USER_CREDS))
    assert_refused(r, 401, "role name check", "has no role name")
    assert aws_login(server.client(), names_only, cloud_id_for(moto_url, creds)).status_code == 200

    # The session token is a secret: not in the audit log or the server output.
    assert creds.token not in json.dumps(admin.audit())
    assert creds.token.encode() not in server.logs()


def test_akeyless_js_style_headers_with_host_and_content_length(server, admin, moto_url):
    """akeyless-js-cloud-id also sends Host and Content-Length (both signed)."""
    access_id = create_method(admin, "/aws/js", moto_url)
    host = moto_url.split("//")[1].rstrip("/")
    headers = sign(moto_url, USER_CREDS, extra_signed={"Content-Length": str(len(GCI_BODY))})
    assert "content-length" in headers["Authorization"]
    headers["Host"] = host
    r = aws_login(server.client(), access_id, make_cloud_id(moto_url, headers))
    assert r.status_code == 200, r.text


def test_aws_sdk_v3_signed_request_logs_in_against_a_verifying_sts(server, admin, verifying_sts):
    """The AWS SDK for JavaScript v3 signs x-amz-content-sha256 (and its
    telemetry headers): every one of them must reach STS as signed."""
    url, creds = verifying_sts
    access_id = create_method(admin, "/aws/sdk-v3", url)
    cloud_id = aws_sdk_v3_cloud_id(url, creds)
    h = decoded_headers(cloud_id)
    signed = h["authorization"].split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
    assert "x-amz-content-sha256" in signed and "amz-sdk-request" in signed, signed
    r = aws_login(server.client(), access_id, cloud_id)
    assert r.status_code == 200, r.text
    assert r.json()["creds"]["sub_claims"]["arn"] == [f"arn:aws:iam::{ACCOUNT}:user/ci"]

    # The same STS also takes botocore's signature (the Akeyless libraries'
    # shape), and it does verify: a wrong secret is refused, and its error
    # document (moto nests it: ErrorResponse>Errors>Error) is reported.
    assert aws_login(server.client(), access_id, cloud_id_for(url, creds)).status_code == 200
    wrong = Credentials(creds.access_key, "not-the-secret-key")
    for bad in (aws_sdk_v3_cloud_id(url, wrong), cloud_id_for(url, wrong)):
        msg = assert_refused(aws_login(server.client(), access_id, bad), 401,
                             "STS refused the signed request: SignatureDoesNotMatch: "
                             "The request signature we calculated does not match")
        assert "without an STS error document" not in msg
    # An access key STS does not know.
    msg = assert_refused(aws_login(server.client(), access_id, aws_sdk_v3_cloud_id(url, USER_CREDS)), 401,
                         "STS refused the signed request: InvalidClientTokenId")
    assert "not valid" in msg

    # A content hash that is not the body's is refused before sending.
    doc = json.loads(base64.b64decode(cloud_id))
    headers = json.loads(base64.b64decode(doc["sts_request_headers"]))
    headers["x-amz-content-sha256"] = ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]
    doc["sts_request_headers"] = b64(json.dumps(headers))
    assert_refused(aws_login(server.client(), access_id, b64(json.dumps(doc))), 401,
                   "body check", "X-Amz-Content-Sha256")


def test_sts_error_in_moto_shape_is_reported(server, admin, stub):
    """An STS answer with the error nested in <Errors> names code and message."""
    stub.status = 403
    stub.body = ('<?xml version="1.0" encoding="utf-8"?>\n<ErrorResponse><Errors><Error>'
                 "<Code>ExpiredToken</Code><Message>The security token included in the request is expired</Message>"
                 "<Type>Sender</Type></Error></Errors></ErrorResponse>")
    access_id = create_method(admin, "/aws/nested", stub.url)
    msg = assert_refused(aws_login(server.client(), access_id, cloud_id_for(stub.url)), 401,
                         "ExpiredToken: The security token included in the request is expired",
                         "session token that signed the request has expired")
    assert "without an STS error document" not in msg
    assert len(stub.requests) == 1


# ---------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------


def test_wrong_account_is_refused(server, admin, moto_url):
    access_id = admin.call("create-auth-method-aws-iam", {
        "name": "/aws/other-account", "bound-aws-account-id": "210987654321", "sts-url": moto_url,
    })["access_id"]
    r = aws_login(server.client(), access_id, cloud_id_for(moto_url))
    assert_refused(r, 401, "account check", ACCOUNT, "bound-aws-account-id")


def test_bound_arn_mismatch_is_refused(server, admin, moto_url):
    access_id = create_method(admin, "/aws/prod", moto_url, bound_arn=[f"arn:aws:iam::{ACCOUNT}:role/prod-*"])
    r = aws_login(server.client(), access_id, cloud_id_for(moto_url))
    assert_refused(r, 401, "ARN check", "bound-arn")
    r = aws_login(server.client(), access_id, cloud_id_for(moto_url, assume_role(moto_url, "dev-x", "job-45")))
    assert_refused(r, 401, "ARN check")


def test_request_url_or_host_elsewhere_is_refused_without_sending(server, admin, moto_url, stub):
    access_id = create_method(admin, "/aws/url", moto_url)
    # Signed for the stub's URL: refused, and nothing reaches the stub (which
    # would have answered a valid identity).
    r = aws_login(server.client(), access_id, cloud_id_for(stub.url))
    assert_refused(r, 401, "request URL check", moto_url.rstrip("/"))
    # Right URL, but a Host header naming somewhere else.
    headers = sign(moto_url, USER_CREDS)
    headers["Host"] = stub.url.split("//")[1].rstrip("/")
    r = aws_login(server.client(), access_id, make_cloud_id(moto_url, headers))
    assert_refused(r, 401, "host check")
    # Cloud metadata and other schemes are no better.
    for url in ("http://169.254.169.254/latest/meta-data/", "file:///etc/passwd", moto_url + "?Action=AssumeRole"):
        r = aws_login(server.client(), access_id, make_cloud_id(url, sign(moto_url, USER_CREDS)))
        assert_refused(r, 401, "request URL check")
    assert stub.requests == []


def test_tampered_body_and_stale_signature_are_refused_before_sending(server, admin, stub):
    # The method points at the stub, which answers a valid identity: only
    # Coffer's own checks stand between these requests and a token.
    access_id = create_method(admin, "/aws/stub", stub.url)
    tampered = "Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::123456789012:role/admin&RoleSessionName=x"
    r = aws_login(server.client(), access_id,
                  make_cloud_id(stub.url, sign(stub.url, USER_CREDS, body=tampered), body=tampered))
    assert_refused(r, 401, "body check", "GetCallerIdentity")
    extra = GCI_BODY + "&Extra=1"
    r = aws_login(server.client(), access_id, make_cloud_id(stub.url, sign(stub.url, USER_CREDS, body=extra), body=extra))
    assert_refused(r, 401, "body check")
    r = aws_login(server.client(), access_id, make_cloud_id(stub.url, sign(stub.url, USER_CREDS), method="GET"))
    assert_refused(r, 401, "method check")

    stale = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=20)
    r = aws_login(server.client(), access_id, cloud_id_for(stub.url, when=stale))
    assert_refused(r, 401, "date check", "15 minutes")
    future = stale + datetime.timedelta(minutes=40)
    r = aws_login(server.client(), access_id, cloud_id_for(stub.url, when=future))
    assert_refused(r, 401, "date check")

    # A signed header Coffer would not forward, and a non-SigV4 Authorization.
    headers = sign(stub.url, USER_CREDS, extra_signed={"X-Forwarded-For": "10.0.0.1"})
    r = aws_login(server.client(), access_id, make_cloud_id(stub.url, headers))
    assert_refused(r, 401, "header check", "x-forwarded-for")
    headers = sign(stub.url, USER_CREDS)
    headers["Authorization"] = "Bearer abc"
    r = aws_login(server.client(), access_id, make_cloud_id(stub.url, headers))
    assert_refused(r, 401, "signature check")
    assert stub.requests == []

    # Control: the same method accepts a proper request (so the refusals above
    # are Coffer's checks, not a broken stub).
    r = aws_login(server.client(), access_id, cloud_id_for(stub.url))
    assert r.status_code == 200, r.text
    assert len(stub.requests) == 1


def test_garbage_cloud_ids_get_clear_errors(server, admin, moto_url):
    access_id = create_method(admin, "/aws/garbage", moto_url)
    c = server.client()
    r = c.raw("auth", {"access-id": access_id, "access-type": "aws_iam"}, token=False)
    assert_refused(r, 400, "missing required parameter cloud-id")
    assert_refused(aws_login(c, access_id, "!!!not base64!!!"), 401, "cloud-id is not valid base64")
    assert_refused(aws_login(c, access_id, b64("not json")), 401, "cloud-id check", "not JSON")
    assert_refused(aws_login(c, access_id, b64("[1, 2]")), 401, "not a JSON object")
    assert_refused(aws_login(c, access_id, b64(json.dumps({"sts_request_method": "POST"}))), 401,
                   "sts_request_url is missing")
    bad_headers = {
        "sts_request_method": "POST", "sts_request_url": b64(moto_url),
        "sts_request_body": b64(GCI_BODY), "sts_request_headers": "***",
    }
    assert_refused(aws_login(c, access_id, b64(json.dumps(bad_headers))), 401, "sts_request_headers is not base64")
    bad_headers["sts_request_headers"] = b64("{not json")
    assert_refused(aws_login(c, access_id, b64(json.dumps(bad_headers))), 401, "header check")
    bad_headers["sts_request_headers"] = b64("{}")
    assert_refused(aws_login(c, access_id, b64(json.dumps(bad_headers))), 401, "Authorization header is missing")
    # The wrong access type for the method is named too.
    r = c.raw("auth", {"access-id": access_id, "access-type": "jwt", "jwt": "x.y.z"}, token=False)
    assert_refused(r, 401, "log in with access-type aws_iam")


def test_sts_rejection_names_the_sts_error(server, admin, stub):
    stub.status, stub.body = 403, STS_ERROR_XML
    access_id = create_method(admin, "/aws/rejected", stub.url)
    headers = sign(stub.url, USER_CREDS)
    headers["User-Agent"] = "aws-sdk-python"  # unsigned: dropped
    headers["X-Forwarded-For"] = "10.9.9.9"  # unsigned: dropped
    r = aws_login(server.client(), access_id, make_cloud_id(stub.url, headers))
    assert_refused(r, 401, "InvalidClientTokenId", "The security token included in the request is invalid.")

    # Exactly the checked request reached "STS": POST /, the GetCallerIdentity
    # form, the signed headers, nothing that was not allow-listed.
    assert len(stub.requests) == 1
    got = stub.requests[0]
    assert got["path"] == "/" and got["body"] == GCI_BODY
    h = got["headers"]
    assert h["authorization"] == headers["Authorization"]
    assert h["x-amz-date"] == headers["X-Amz-Date"]
    assert h["content-type"] == FORM
    assert h["host"] == stub.url.split("//")[1].rstrip("/")
    assert "x-forwarded-for" not in h and h.get("user-agent", "").startswith("coffer/")

    # Other STS answers: throttling → 429, an unreachable endpoint → 401, both clear.
    stub.status = 400
    stub.body = STS_ERROR_XML.replace("InvalidClientTokenId", "Throttling").replace(
        "The security token included in the request is invalid.", "Rate exceeded")
    assert_refused(aws_login(server.client(), access_id, cloud_id_for(stub.url)), 429, "Throttling", "Rate exceeded")
    stub.status, stub.body = 200, "<html>not sts</html>"
    assert_refused(aws_login(server.client(), access_id, cloud_id_for(stub.url)), 401,
                   "not a GetCallerIdentity response")

    closed = f"http://127.0.0.1:{free_port()}/"
    access_id = create_method(admin, "/aws/unreachable", closed)
    t0 = time.monotonic()
    msg = assert_refused(aws_login(server.client(), access_id, cloud_id_for(closed)), 401,
                         "could not be reached", "sts-url")
    assert time.monotonic() - t0 < 10
    assert "os error" not in msg and "reqwest" not in msg


def test_create_validation_and_the_cli(server, admin, moto_url, tmp_path):
    for body, needle in [
        ({"name": "/v1"}, "missing required parameter bound-aws-account-id"),
        ({"name": "/v2", "bound-aws-account-id": "12345"}, "12-digit"),
        ({"name": "/v3", "bound-aws-account-id": ACCOUNT, "sts-url": "http://sts.example.com"}, "must use https"),
        ({"name": "/v4", "bound-aws-account-id": ACCOUNT, "bound-arn": "role/x"}, "not an ARN"),
        ({"name": "/v5", "bound-aws-account-id": ACCOUNT, "bound-role-name": "ci-*"}, "exact values"),
    ]:
        r = admin.raw("create-auth-method-aws-iam", body)
        assert r.status_code == 400 and needle in r.json()["error"], (body, r.text)
    # The Akeyless operation alias.
    admin.call("auth-method-create-aws-iam", {"name": "/aws/alias", "bound-aws-account-id": ACCOUNT})
    rules = admin.call("get-auth-method", {"name": "/aws/alias"})["access_info"]["aws_iam_access_rules"]
    assert rules["sts_endpoint"] == "https://sts.amazonaws.com/"

    env = {k: v for k, v in os.environ.items() if not k.startswith("COFFER_")}
    env["HOME"] = str(tmp_path)
    base = [str(coffer_bin()), "--gateway-url", server.url, "--token", admin.token]

    def cli(*args):
        cmd = [base[0], *args, *base[1:]]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)

    out = cli("create-auth-method-aws-iam", "--name", "/aws/cli", "--bound-aws-account-id", ACCOUNT,
              "--sts-url", moto_url, "--bound-role-name", "ci-deployer", "--jwt-ttl", "15")
    assert out.returncode == 0, out.stderr
    assert "access_id:" in out.stdout
    shown = cli("get-auth-method", "--name", "/aws/cli")
    assert shown.returncode == 0, shown.stderr
    assert ACCOUNT in shown.stdout and "ci-deployer" in shown.stdout and moto_url in shown.stdout
    bad = cli("auth-method-create-aws-iam", "--name", "/aws/cli2", "--bound-aws-account-id", "nope")
    assert bad.returncode != 0 and "12-digit" in bad.stderr + bad.stdout
