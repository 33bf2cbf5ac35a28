"""Client-certificate logins through the official PyPI `akeyless` SDK
(pinned in tests/requirements.txt) against a real Coffer server.

The CA and client certificates are made by `openssl`; the challenge is
signed with `openssl dgst` behind the prefix `coffer-cert-login-v1` and a
NUL byte, as the server's documentation (docs/api.md) says a client
may: the private key stays on the client, the SDK only carries the
certificate, the challenge and the signature.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

import akeyless
import pytest
from akeyless.rest import ApiException


def openssl(cwd: Path, *args: str) -> bytes:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, check=False)
    assert done.returncode == 0, f"openssl {args}: {done.stderr.decode()}"
    return done.stdout


def make_ca(cwd: Path, name: str) -> None:
    openssl(cwd, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")


def make_client(cwd: Path, ca: str, name: str, cn: str, serial: str, days: str = "2",
                eku: str = "clientAuth") -> None:
    (cwd / f"{name}.ext").write_text(
        "[ext]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        f"extendedKeyUsage={eku}\nsubjectAltName=DNS:{cn}.svc.example,email:{cn}@example.com\n")
    openssl(cwd, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", f"{name}.key")
    openssl(cwd, "req", "-new", "-key", f"{name}.key", "-subj", f"/CN={cn}/OU=platform", "-out", f"{name}.csr")
    openssl(cwd, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-set_serial", serial, "-days", days, "-extfile", f"{name}.ext", "-extensions", "ext",
            "-out", f"{name}.pem")


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


# What a client signs: never the server's text alone (docs/api.md, `auth`).
SIGNED_PREFIX = b"coffer-cert-login-v1\0"


def sign(cwd: Path, key: str, challenge: str, prefix: bytes = SIGNED_PREFIX) -> str:
    (cwd / "challenge.bin").write_bytes(prefix + challenge.encode())
    sig = openssl(cwd, "dgst", "-sha256", "-sign", f"{key}.key", "challenge.bin")
    return base64.b64encode(sig).decode()


@pytest.fixture
def pki(tmp_path) -> Path:
    make_ca(tmp_path, "ca")
    make_ca(tmp_path, "rogue-ca")
    make_client(tmp_path, "ca", "alice", "alice", "0x0a11ce")
    make_client(tmp_path, "ca", "mallory", "mallory", "0x0bad")
    make_client(tmp_path, "ca", "revoked", "alice", "0xdead")
    make_client(tmp_path, "rogue-ca", "rogue", "alice", "0x01")
    make_client(tmp_path, "ca", "server-only", "alice", "0x02", eku="serverAuth")
    return tmp_path


@pytest.fixture
def api(server) -> akeyless.V2Api:
    return akeyless.V2Api(akeyless.ApiClient(akeyless.Configuration(host=server.url)))


@pytest.fixture
def token(server, api) -> str:
    out = api.auth(akeyless.Auth(access_id=server.admin.access_id, access_key=server.admin.access_key,
                                 access_type="access_key"))
    return out.token


def cert_login(api: akeyless.V2Api, pki: Path, access_id: str, cert: str, key: str) -> akeyless.AuthOutput:
    cert_data = b64(pki / f"{cert}.pem")
    challenge = api.get_cert_challenge(akeyless.GetCertChallenge(access_id=access_id, cert_data=cert_data)).challenge
    assert challenge
    return api.auth(akeyless.Auth(access_id=access_id, access_type="cert", cert_data=cert_data,
                                  cert_challenge=challenge, signed_cert_challenge=sign(pki, key, challenge)))


def refused(excinfo, status: int, needle: str) -> None:
    assert excinfo.value.status == status, excinfo.value.body
    assert needle in excinfo.value.body, excinfo.value.body


def test_cert_auth_method_and_logins_through_the_sdk(server, api, token, pki):
    name = f"/mtls/{uuid.uuid4().hex[:8]}"
    out = api.auth_method_create_cert(akeyless.AuthMethodCreateCert(
        name=name, certificate_data=b64(pki / "ca.pem"), unique_identifier="common_name",
        bound_common_names=["alice", "mallory"], bound_dns_sans=["*.svc.example"],
        revoked_cert_ids=["de:ad"], token=token))
    access_id = out.access_id
    assert access_id.startswith("p-") and access_id[-2] == "c"

    role = f"{name}-readers"
    api.create_role(akeyless.CreateRole(name=role, token=token))
    api.set_role_rule(akeyless.SetRoleRule(role_name=role, path="/mtls-data/*", capability=["read"], token=token))
    api.assoc_role_auth_method(akeyless.AssocRoleAuthMethod(role_name=role, am_name=name,
                                                            sub_claims={"common_name": "alice"}, token=token))
    api.create_secret(akeyless.CreateSecret(name="/mtls-data/db", value="cert-secret", token=token))

    # The method as the SDK's AuthMethod model reads it.
    am = api.get_auth_method(akeyless.GetAuthMethod(name=name, token=token))
    rules = am.access_info.cert_access_rules
    assert am.access_info.rules_type == "cert"
    assert base64.b64decode(rules.certificate) == (pki / "ca.pem").read_bytes()
    assert rules.bound_common_names == ["alice", "mallory"]
    assert rules.bound_dns_sans == ["*.svc.example"]
    assert rules.revoked_cert_ids == ["dead"]
    assert rules.unique_identifier == "common_name"
    listed = api.list_auth_methods(akeyless.ListAuthMethods(type=["cert"], token=token))
    assert [m.auth_method_name for m in listed.auth_methods] == [name]

    # alice logs in and reads; her claims come from the certificate.
    out = cert_login(api, pki, access_id, "alice", "alice")
    assert out.token.startswith("t-") and out.expiration
    assert out.creds.sub_claims["common_name"] == ["alice"]
    assert out.creds.sub_claims["email_sans"] == ["alice@example.com"]
    got = api.get_secret_value(akeyless.GetSecretValue(names=["/mtls-data/db"], token=out.token))
    assert got["/mtls-data/db"] == "cert-secret"

    # mallory is bound (she logs in) but no association grants her anything.
    out = cert_login(api, pki, access_id, "mallory", "mallory")
    with pytest.raises(ApiException) as e:
        api.get_secret_value(akeyless.GetSecretValue(names=["/mtls-data/db"], token=out.token))
    assert e.value.status == 403

    # A replayed challenge and signature.
    cert_data = b64(pki / "alice.pem")
    challenge = api.get_cert_challenge(akeyless.GetCertChallenge(access_id=access_id, cert_data=cert_data)).challenge
    body = akeyless.Auth(access_id=access_id, access_type="cert", cert_data=cert_data, cert_challenge=challenge,
                         signed_cert_challenge=sign(pki, "alice", challenge))
    api.auth(body)
    with pytest.raises(ApiException) as e:
        api.auth(body)
    refused(e, 401, "already used")

    # Signed by another key.
    challenge = api.get_cert_challenge(akeyless.GetCertChallenge(access_id=access_id, cert_data=cert_data)).challenge
    with pytest.raises(ApiException) as e:
        api.auth(akeyless.Auth(access_id=access_id, access_type="cert", cert_data=cert_data,
                               cert_challenge=challenge, signed_cert_challenge=sign(pki, "mallory", challenge)))
    refused(e, 401, "not a signature of the challenge")

    # The bare challenge signed by the right key (no prefix): refused, so
    # the key's signatures of a server-chosen text are useless elsewhere.
    challenge = api.get_cert_challenge(akeyless.GetCertChallenge(access_id=access_id, cert_data=cert_data)).challenge
    with pytest.raises(ApiException) as e:
        api.auth(akeyless.Auth(access_id=access_id, access_type="cert", cert_data=cert_data,
                               cert_challenge=challenge, signed_cert_challenge=sign(pki, "alice", challenge, b"")))
    refused(e, 401, "not a signature of the challenge")

    # The private key in key-data: refused, never used (the SDK has the
    # field; the server will not take a key).
    with pytest.raises(ApiException) as e:
        api.auth(akeyless.Auth(access_id=access_id, access_type="cert", cert_data=cert_data,
                               key_data=b64(pki / "alice.key")))
    refused(e, 400, "never accepts a private key")

    # Certificates the method must refuse.
    for cert, needle in [("rogue", "does not chain to the CA"), ("revoked", "is revoked"),
                         ("server-only", "clientAuth")]:
        with pytest.raises(ApiException) as e:
            api.get_cert_challenge(akeyless.GetCertChallenge(access_id=access_id, cert_data=b64(pki / f"{cert}.pem")))
        refused(e, 401, needle)

    # Unbound common name: a method bound to mallory only.
    api.auth_method_update_cert(akeyless.AuthMethodUpdateCert(
        name=name, certificate_data=b64(pki / "ca.pem"), bound_common_names=["mallory"],
        unique_identifier="common_name", token=token))
    with pytest.raises(ApiException) as e:
        cert_login(api, pki, access_id, "alice", "alice")
    refused(e, 401, "matches none of bound-common-names")
    cert_login(api, pki, access_id, "mallory", "mallory")

    # Unsupported: CRL distribution points.
    with pytest.raises(ApiException) as e:
        api.auth_method_create_cert(akeyless.AuthMethodCreateCert(
            name=f"{name}-crl", certificate_data=b64(pki / "ca.pem"), require_crl_dp=True,
            unique_identifier="common_name", token=token))
    refused(e, 400, "require-crl-dp")

    api.delete_auth_method(akeyless.DeleteAuthMethod(name=name, token=token))
    with pytest.raises(ApiException) as e:
        cert_login(api, pki, access_id, "mallory", "mallory")
    assert e.value.status == 401


def test_expired_client_certificate_is_refused(server, api, token, pki):
    # openssl cannot sign a certificate that is already expired with
    # -days; backdate one with the `ca` command's -startdate/-enddate.
    (pki / "db").mkdir()
    (pki / "db" / "index.txt").write_text("")
    (pki / "ca.cnf").write_text(
        "[ca]\ndefault_ca=d\n[d]\ndatabase=db/index.txt\nnew_certs_dir=db\nserial=db/serial\n"
        "default_md=sha256\npolicy=p\nunique_subject=no\n[p]\ncommonName=supplied\n"
        "[ext]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n")
    (pki / "db" / "serial").write_text("1000\n")
    openssl(pki, "ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key",
            "-in", "alice.csr", "-out", "expired.pem", "-startdate", "20200101000000Z",
            "-enddate", "20200102000000Z", "-extensions", "ext", "-notext")
    name = f"/mtls/{uuid.uuid4().hex[:8]}"
    access_id = api.auth_method_create_cert(akeyless.AuthMethodCreateCert(
        name=name, certificate_data=b64(pki / "ca.pem"), unique_identifier="common_name", token=token)).access_id
    with pytest.raises(ApiException) as e:
        api.get_cert_challenge(akeyless.GetCertChallenge(access_id=access_id, cert_data=b64(pki / "expired.pem")))
    refused(e, 401, "expired")


def test_oidc_auth_method_through_the_sdk(server, api, token):
    """The SDK manages OIDC methods for people (the browser login itself is
    tests/system/test_oidc_login.py: the SDK's Auth has no code/state)."""
    name = f"/people/{uuid.uuid4().hex[:8]}"
    secret = f"client-secret-{uuid.uuid4().hex}"
    out = api.auth_method_create_oidc(akeyless.AuthMethodCreateOIDC(
        name=name, issuer="https://idp.example", client_id="coffer", client_secret=secret,
        unique_identifier="email", required_scopes=["email", "groups"],
        allowed_redirect_uri=["http://127.0.0.1:8250/callback"], token=token))
    assert out.access_id.startswith("p-") and out.access_id[-2] == "i"
    am = api.get_auth_method(akeyless.GetAuthMethod(name=name, token=token))
    rules = am.access_info.oidc_access_rules
    assert am.access_info.rules_type == "oidc"
    assert rules.issuer == "https://idp.example" and rules.client_id == "coffer"
    assert rules.unique_identifier == "email"
    assert rules.required_scopes == ["email", "groups"]
    assert rules.allowed_redirect_ur_is == ["http://127.0.0.1:8250/callback"]
    assert not rules.client_secret, "the client secret is never returned"
    listed = api.list_auth_methods(akeyless.ListAuthMethods(type=["oidc"], token=token))
    assert name in [m.auth_method_name for m in listed.auth_methods]
    assert secret.encode() not in server.logs()

    # An issuer off loopback over plain http, or a redirect URI that is not
    # https/loopback: refused, nothing created.
    for bad in [dict(issuer="http://idp.example"),
                dict(allowed_redirect_uri=["http://evil.example/callback"])]:
        body = dict(name=f"{name}-bad", issuer="https://idp.example", client_id="coffer", client_secret=secret,
                    unique_identifier="email", allowed_redirect_uri=["http://127.0.0.1:8250/callback"], token=token)
        body.update(bad)
        with pytest.raises(ApiException) as e:
            api.auth_method_create_oidc(akeyless.AuthMethodCreateOIDC(**body))
        assert e.value.status == 400, e.value.body
    with pytest.raises(ApiException) as e:
        api.get_auth_method(akeyless.GetAuthMethod(name=f"{name}-bad", token=token))
    assert e.value.status == 404

    api.auth_method_update_oidc(akeyless.AuthMethodUpdateOIDC(
        name=name, issuer="https://idp2.example", client_id="coffer2", client_secret=secret,
        unique_identifier="sub", allowed_redirect_uri=["http://127.0.0.1:8251/callback"], token=token))
    rules = api.get_auth_method(akeyless.GetAuthMethod(name=name, token=token)).access_info.oidc_access_rules
    assert rules.issuer == "https://idp2.example" and rules.client_id == "coffer2"
    api.delete_auth_method(akeyless.DeleteAuthMethod(name=name, token=token))
