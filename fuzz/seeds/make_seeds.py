#!/usr/bin/env python3
"""Writes the hand-made seed inputs of the fuzz targets into
fuzz/corpus/<target>/seed-*. Realistic shapes: JSON bodies the Akeyless
SDKs send, GitLab/GitHub-shaped JWTs and JWKS, cloud-ids as botocore and
akeyless-go-cloud-id build them, STS answers (AWS and moto), and the
GitLab fixtures of crates/coffer-ci/tests/fixtures/gitlab. The targets that
decode their input with `arbitrary` (policy_match, masker) get a few
byte strings. pki_request and ssh_request get CSRs, public keys and
OpenSSH public key lines made here with openssl and ssh-keygen (fresh keys
on every run). Run from the repository root, optionally naming the targets
to write (`fuzz/seeds/make_seeds.py pki_request ssh_request`); then
scripts/fuzz.sh --merge.
"""
import base64, json, pathlib, random, shutil, struct, subprocess, sys, tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fuzz" / "corpus"
rnd = random.Random(9)


ONLY = set(sys.argv[1:])


def put(target, name, data):
    if ONLY and target not in ONLY:
        return
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / f"seed-{name}").write_bytes(data)


def b64u(b):
    if isinstance(b, str):
        b = b.encode()
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64(s):
    return base64.b64encode(s.encode()).decode()


# --- wire_body: bodies as the SDKs and the CLI send them -----------------
bodies = {
    "auth-access-key": {"access-id": "p-abcdefghijkl", "access-key": "c2VjcmV0LWtleQ==", "access-type": "access_key", "json": False},
    "auth-jwt": {"access_id": "p-abcdefghijko", "access_type": "jwt", "jwt": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"},
    "auth-aws": {"access-id": "p-abcdefghijkw", "access-type": "aws_iam", "cloud-id": "eyJzdHNfcmVxdWVzdF9tZXRob2QiOiAiUE9TVCJ9"},
    "create-secret": {"name": "/app/db", "value": "s3cr3t", "token": "t-0123456789abcdef", "tags": ["env:prod", "team:ci"], "type": "generic", "max-versions": "5"},
    "create-secret-password": {"name": "/app/pw", "type": "password", "username": "admin", "password": "hunter2", "token": "t-1"},
    "get-secret-value": {"names": ["/app/db", "/app/other"], "token": "t-0123456789abcdef", "version": 2, "json": "true"},
    "get-secret-value-csv": {"names": "/app/db, /app/x,", "uid-token": "u-1", "version": "3"},
    "list-items": {"path": "/app", "token": "t", "minimal-view": "yes", "pagination-token": "", "sub-types": ["generic"], "tag": "env:prod", "modified-after": "1700000000"},
    "set-role-rule": {"role-name": "/ci/deploy", "path": "/app/*", "capability": ["read", "list"], "rule-type": "item-rule", "token": "t"},
    "assoc-role-am": {"role-name": "/ci/deploy", "am-name": "/ci/gitlab", "sub-claims": {"project_path": "group/app", "ref": ["main", "release/*"]}, "case-sensitive": "false", "token": "t"},
    "create-auth-method": {"name": "/ci/deployer", "access-expires": 0, "bound-ips": "127.0.0.1/32,::1/128", "force-sub-claims": True, "jwt-ttl": 60, "token": "t"},
    "oauth2": {"name": "/ci/gitlab", "jwks-uri": "https://gitlab.com/oauth/discovery/keys", "unique-identifier": "user_login", "issuer": "https://gitlab.com", "audience": "https://coffer.example.com", "token": "t"},
    "update-secret-val": {"name": "/app/db", "value": "{\"a\":1}", "keep-prev-version": "true", "token": "t"},
    "uid": {"uid-token": "u-abc", "ttl": "600", "deny-rotate": 1, "deny-inheritance": "off"},
    "nested": {"a": {"b": [1, 2, {"c": None}]}, "Access_ID": " p-1 ", "ACCESS-ID": "p-2", "n": 1.5e300, "big": 18446744073709551615, "neg": -9223372036854775808},
}
for name, b in bodies.items():
    put("wire_body", name, json.dumps(b))
put("wire_body", "empty", "")
put("wire_body", "ws", " \n\t")
put("wire_body", "array", "[1,2]")
put("wire_body", "escapes", '{"na\\u006de":"\\ud83d\\ude00","token":"  t  "}')

# --- jwt: mode byte 0 = token text, 64 = JWKS, >=96 structured -----------
def jwt(header, claims, sig=b"x" * 256):
    return f"{b64u(json.dumps(header))}.{b64u(json.dumps(claims))}.{b64u(sig)}"

gitlab_claims = {
    "namespace_id": "72", "namespace_path": "group", "project_id": "20", "project_path": "group/app",
    "user_id": "5", "user_login": "alice", "user_email": "alice@example.com", "pipeline_id": "574",
    "pipeline_source": "push", "job_id": "302", "ref": "main", "ref_type": "branch", "ref_protected": "true",
    "environment": "production", "runner_id": 1, "jti": "235b3a54-b797-45c7-ae9a-f72d7bc6ef5b",
    "iss": "https://gitlab.example.com", "iat": 1790000000, "nbf": 1789999995, "exp": 1790003600,
    "sub": "project_path:group/app:ref_type:branch:ref:main", "aud": "https://coffer.example.com",
}
github_claims = {
    "jti": "example-id", "sub": "repo:octo-org/octo-repo:environment:prod", "aud": ["https://github.com/octo-org", "coffer"],
    "ref": "refs/heads/main", "repository": "octo-org/octo-repo", "repository_owner": "octo-org", "run_id": "1",
    "event_name": "pull_request_target", "actor": "octocat", "workflow": "ci", "iss": "https://token.actions.githubusercontent.com",
    "nbf": 1789999900, "exp": 1790000900, "iat": 1790000000,
}
k8s_claims = {"aud": ["https://kubernetes.default.svc"], "exp": 1790003600, "iat": 1790000000, "iss": "https://kubernetes.default.svc",
              "kubernetes.io": {"namespace": "ci", "serviceaccount": {"name": "deployer", "uid": "1"}}, "sub": "system:serviceaccount:ci:deployer"}
for name, h, c in [
    ("gitlab-rs256", {"alg": "RS256", "kid": "rsa", "typ": "JWT"}, gitlab_claims),
    ("github-rs256", {"alg": "RS256", "typ": "JWT", "x5t": "abc", "kid": "78167F727DEC5D801DD1C8784C704A1C880EC0E1"}, github_claims),
    ("k8s", {"alg": "RS256", "kid": "k8s"}, k8s_claims),
    ("eddsa", {"alg": "EdDSA", "kid": "ed"}, gitlab_claims),
    ("es256", {"alg": "ES256", "kid": "es"}, gitlab_claims),
    ("none", {"alg": "none"}, gitlab_claims),
    ("hs256", {"alg": "HS256", "kid": "hmac"}, gitlab_claims),
    ("crit", {"alg": "RS256", "crit": ["b64"], "b64": False}, gitlab_claims),
]:
    put("jwt", name, b"\x00" + jwt(h, c).encode())
put("jwt", "two-parts", b"\x00a.b")
jwks_docs = {
    "gitlab": {"keys": [{"kty": "RSA", "kid": "kewiQq9jiC84CvSsJYOB-N6A8WFLSV20Mb-y7IlWDSQ", "e": "AQAB", "n": b64u(bytes(range(256))), "use": "sig", "alg": "RS256"}]},
    "mixed": {"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "e", "x": b64u(b"\x01" * 32), "y": b64u(b"\x02" * 32)},
        {"kty": "OKP", "crv": "Ed25519", "kid": "o", "x": b64u(b"\x03" * 32)},
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
        {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
    ]},
    "empty": {"keys": []},
}
for name, doc in jwks_docs.items():
    put("jwt", f"jwks-{name}", b"\x40" + json.dumps(doc).encode())
for i in range(6):
    put("jwt", f"structured-{i}", bytes([0x80 + i]) + bytes(rnd.randrange(256) for _ in range(rnd.randrange(64, 400))))

# --- aws_iam: 0 = decoded cloud-id, 48 = base64 param, 64 = STS answer,
# 128 = XML, >=144 structured -------------------------------------------
SIG = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
TOKEN = "FQoGZXIvYXdzEXAMPLESESSIONTOKEN"
DATE = "20260921T141250Z"

def headers(signed="content-type;host;x-amz-date;x-amz-security-token", extra=None):
    h = {
        "Authorization": [f"AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/{DATE[:8]}/us-east-1/sts/aws4_request, SignedHeaders={signed}, Signature={SIG}"],
        "X-Amz-Date": [DATE],
        "X-Amz-Security-Token": [TOKEN],
        "Content-Type": ["application/x-www-form-urlencoded; charset=utf-8"],
        "User-Agent": ["aws-sdk-python"],
    }
    h.update(extra or {})
    return h

def cloud_id(url="https://sts.amazonaws.com/", body="Action=GetCallerIdentity&Version=2011-06-15", hdrs=None):
    v = {"sts_request_method": "POST", "sts_request_url": b64(url), "sts_request_headers": b64(json.dumps(hdrs or headers()))}
    if body is not None:
        v["sts_request_body"] = b64(body)
    return json.dumps(v)

ids = {
    "botocore": cloud_id(),
    "go-no-body": cloud_id(body=None, hdrs=headers("host;x-amz-date", {"Host": ["sts.amazonaws.com"]})),
    "js-v3": cloud_id(hdrs=headers("amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token;x-amz-user-agent",
        {"amz-sdk-invocation-id": ["8d5e3c39-1f4b-4b8e-9d84-7a3f0a5e2c11"], "amz-sdk-request": ["attempt=1; max=3"], "content-length": ["43"],
         "x-amz-content-sha256": ["ab530a13e45914982b79f9b7e3fba994cfd1f3fb22f71cea1afbf02b460c6d1d"], "x-amz-user-agent": ["aws-sdk-js/3.0.0"], "host": ["sts.amazonaws.com"]})),
    "regional": cloud_id(url="https://sts.us-east-1.amazonaws.com/"),
    "query": cloud_id(url="https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15", body=None),
    "assume-role": cloud_id(body="Action=AssumeRole&Version=2011-06-15&RoleArn=x"),
}
for name, text in ids.items():
    put("aws_iam", f"text-{name}", b"\x00" + text.encode())
    put("aws_iam", f"param-{name}", b"\x30" + b64(text).encode())
OK_XML = """<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:sts::123456789012:assumed-role/ci-deployer/job-42</Arn>
    <UserId>AROA3XFRBF535PLBIFPI4:job-42</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>
"""
USER_XML = OK_XML.replace("sts::123456789012:assumed-role/ci-deployer/job-42", "iam::123456789012:user/deployer").replace("AROA3XFRBF535PLBIFPI4:job-42", "AIDAEXAMPLE")
ERR_XML = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
           f"<Code>SignatureDoesNotMatch</Code><Message>canonical request: x-amz-security-token:{TOKEN} sig {SIG}</Message></Error>"
           "<RequestId>4fa4a2b1-5c1e-4a39-9d1b-6a0d8f0e2c11</RequestId></ErrorResponse>")
MOTO_XML = ("<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message>"
            "</Error></Errors><RequestID>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestID></ErrorResponse>")
for name, (st, cfg, xml) in {
    "ok": (0, 0, OK_XML), "ok-arns": (1, 1, OK_XML), "ok-roles": (2, 2, OK_XML), "user": (0, 3, USER_XML),
    "error-403": (3, 0, ERR_XML), "moto-403": (3, 0, MOTO_XML), "throttle": (4, 0, ERR_XML.replace("SignatureDoesNotMatch", "Throttling")),
    "error-503": (6, 0, ERR_XML), "redirect": (7, 0, ""),
    "prefixed": (0, 0, "<?xml version='1.0'?><!-- c --><a:GetCallerIdentityResponse xmlns:a='x'><a:GetCallerIdentityResult><a:Arn>arn:aws:iam::123456789012:user/a&amp;b&#x41;&#65;</a:Arn><a:UserId>AIDA</a:UserId><a:Account>123456789012</a:Account></a:GetCallerIdentityResult></a:GetCallerIdentityResponse>"),
}.items():
    put("aws_iam", f"sts-{name}", bytes([0x40, st, 0, cfg]) + xml.encode())
put("aws_iam", "xml-ok", b"\x80" + OK_XML.encode())
put("aws_iam", "xml-doctype", b"\x80" + b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><a>&e;</a>')
for i in range(6):
    put("aws_iam", f"structured-{i}", bytes([0x90 + i]) + bytes(rnd.randrange(256) for _ in range(rnd.randrange(80, 400))))

# --- gitlab_yaml: the verbatim GitLab examples, plus a few edge shapes ----
fixtures = ROOT / "crates" / "coffer-ci" / "tests" / "fixtures" / "gitlab"
for f in sorted(fixtures.glob("*.yml")):
    put("gitlab_yaml", f.stem, f.read_bytes())
put("gitlab_yaml", "extends-reference", """
variables:
  GLOBAL: "g-$CI_PROJECT_PATH"
  RAW: {value: "$NOPE", expand: false}
default:
  id_tokens:
    ID_TOKEN_1:
      aud: [https://coffer.example.com, "$CI_SERVER_URL"]
.base: &base
  secrets:
    DB:
      akeyless: {name: /app/db, akeyless_access_type: jwt, akeyless_token: $ID_TOKEN_1}
      file: false
.tokens:
  id_tokens:
    T: {aud: x}
job:
  extends: [.base]
  inherit: {default: [id_tokens], variables: [GLOBAL]}
  variables: {LOCAL: "${GLOBAL}-x", N: 1}
  id_tokens: !reference [.tokens, id_tokens]
  secrets:
    <<: *base
    AWS:
      aws_secrets_manager: {secret_id: "prod/$CI_COMMIT_REF_NAME", region: us-east-1, version_stage: AWSCURRENT, field: password}
      token: $T
    AZ:
      azure_key_vault: {name: db, version: "1"}
    V:
      vault: production/db/password@ops
deploy:
  extends: job
""")
put("gitlab_yaml", "spec-header", "spec:\n  inputs:\n    x: {default: y}\n---\njob:\n  secrets:\n    A:\n      akeyless: {name: /a}\n")
put("gitlab_yaml", "loop", "a:\n  extends: b\nb:\n  extends: a\njob:\n  extends: a\n")
put("gitlab_yaml", "aliases", "x: &x [a, a, a, a]\ny: &y [*x, *x, *x, *x]\nz: &z [*y, *y, *y, *y]\njob:\n  variables: {A: *z}\n")

# --- policy_match and masker: arbitrary-decoded byte strings -------------
for t in ("policy_match", "masker"):
    for i in range(8):
        n = rnd.choice([16, 64, 256, 1024])
        put(t, f"bytes-{i}", bytes(rnd.randrange(256) for _ in range(n)))
    put(t, "text", b"group/app\x00main\x00*\x00refs/heads/*\x00project_path=group/*,other;ref=main\x00/app/*\x00-----BEGIN KEY-----\nMIIEvQ\n-----END KEY-----\n")


# --- pki_request: [flags][n: u64 BE][names text] 0x00 [key bytes] ----------
# flags bits 0-1: 0 CSR, 1 public key, 2/3 a CSR the target signs itself
# (P-256/Ed25519) from the subject Name DER + attribute contents given;
# bit 2: the first line of the text is the common name; bits 3-4 ttl (none,
# 1 day, n, 1 s); bits 5-6 request time (fixed, +n ns, +n s, n).
def tlv(b, i=0):
    """(tag, start of content, end) of the DER TLV at b[i:]."""
    tag, ln, j = b[i], b[i + 1], i + 2
    if ln & 0x80:
        k = ln & 0x7F
        ln, j = int.from_bytes(b[j:j + k], "big"), j + k
    return tag, j, j + ln


def csr_parts(der):
    """The subject Name (DER) and the [0] attributes' content of a CSR."""
    _, c, _ = tlv(der)  # CertificationRequest
    _, ci, _ = tlv(der, c)  # CertificationRequestInfo
    _, _, e = tlv(der, ci)  # version
    _, _, name_end = tlv(der, e)  # subject
    subject = der[e:name_end]
    _, _, spki_end = tlv(der, name_end)
    _, a, a_end = tlv(der, spki_end)  # [0] attributes
    return subject, der[a:a_end]


def key_seeds(tmp):
    def run(*args, text=False):
        return subprocess.run(args, check=True, capture_output=True, text=text, cwd=tmp).stdout

    def csr(newkey, subj, *ext, der=True, pkeyopt=()):
        args = ["openssl", "req", "-new", "-newkey", newkey, *pkeyopt, "-nodes", "-keyout", "/dev/null", "-subj", subj]
        for e in ext:
            args += ["-addext", e]
        return run(*args, "-outform", "DER" if der else "PEM")

    p256 = ("-pkeyopt", "ec_paramgen_curve:P-256")
    csr_der = csr("ec", "/CN=api.example.com", pkeyopt=p256)
    csr_san = csr("ec", "/CN=api.example.com", "subjectAltName=DNS:api.example.com,DNS:*.api.example.com",
                  "extendedKeyUsage=serverAuth", "keyUsage=digitalSignature", der=False, pkeyopt=p256)
    csr_rsa = csr("rsa:2048", "/CN=www.example.com", "subjectAltName=DNS:www.example.com,DNS:example.com")
    csr_ed = csr("ed25519", "/CN=example.com", der=False)
    csr_evil = csr("ec", "/O=Evil/CN=evil.com", "subjectAltName=DNS:evil.com,email:a@evil.com", pkeyopt=p256)

    def pubkey(genkey, der):
        run(*genkey, "-out", "k.pem")
        return run("openssl", "pkey", "-in", "k.pem", "-pubout", "-outform", "DER" if der else "PEM")

    pub_ec = pubkey(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], False)
    pub_p384 = pubkey(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"], True)
    pub_ed = pubkey(["openssl", "genpkey", "-algorithm", "ed25519"], True)
    pub_rsa = pubkey(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], False)

    def pki(name, flags, text, key, n=0):
        put("pki_request", name, bytes([flags]) + n.to_bytes(8, "big") + text.encode() + b"\x00" + key)

    pki("csr-der", 0x00, "", csr_der)
    pki("csr-pem-san-eku-ku", 0x00, "", csr_san)
    pki("csr-pem-same-cn-and-names", 0x04, "api.example.com\napi.example.com\n*.api.example.com\neku:serverauth", csr_san)
    pki("csr-rsa-ttl-n", 0x10, "", csr_rsa, n=3600)
    pki("csr-ed25519-pem", 0x00, "", csr_ed)
    pki("csr-evil", 0x00, "", csr_evil)
    pki("pubkey-ec-pem", 0x05, "host.example.com\n*.example.com\neku:serverauth", pub_ec)
    pki("pubkey-ed25519-der", 0x05, "example.com", pub_ed)
    pki("pubkey-rsa-pem-ttl-day", 0x0D, "rsa.example.com\nwww.example.com", pub_rsa)
    pki("pubkey-p384-der-later", 0x45, "a.b.example.com\n10.0.0.1\nuri:spiffe://example.com/x", pub_p384, n=86400 * 365)
    subject, attrs = csr_parts(base64.b64decode("".join(csr_san.decode().splitlines()[1:-1])))
    pki("signed-p256-san-eku-ku", 0x02, "", subject + attrs)
    subject, attrs = csr_parts(csr_rsa)
    pki("signed-ed25519-san", 0x03, "", subject + attrs)
    subject, attrs = csr_parts(csr_evil)
    pki("signed-p256-evil", 0x02, "", subject + attrs)
    subject, _ = csr_parts(csr_der)
    pki("signed-ed25519-no-attrs", 0x07, "api.example.com", subject)

    # --- ssh_request: [flags][n: u64 BE] key 0x00 key-id (0x00 user)* -----
    # flags bits 0-1 ttl (none, 3600, n, 1); bits 2-3 time (fixed, n,
    # u64::MAX-, i64::MAX-); bit 4: the CA's own key.
    def ssh_pub(*args):
        run("ssh-keygen", "-q", "-N", "", "-C", "user@host", "-f", "id", *args)
        line = (pathlib.Path(tmp) / "id.pub").read_text().strip()
        (pathlib.Path(tmp) / "id").unlink()
        (pathlib.Path(tmp) / "id.pub").unlink()
        return line

    ed = ssh_pub("-t", "ed25519")
    rsa = ssh_pub("-t", "rsa", "-b", "3072")
    ec256 = ssh_pub("-t", "ecdsa", "-b", "256")
    ec384 = ssh_pub("-t", "ecdsa", "-b", "384")

    def sshstr(b):
        return struct.pack(">I", len(b)) + b

    def fields(blob):
        out, i = [], 0
        while i < len(blob):
            (n,) = struct.unpack(">I", blob[i:i + 4])
            out.append(blob[i + 4:i + 4 + n])
            i += 4 + n
        return out

    # Security-key types (no hardware here): built from the keys above.
    ed_pk = fields(base64.b64decode(ed.split()[1]))[1]
    sk_ed = b"sk-ssh-ed25519@openssh.com"
    sk_ed_line = f"{sk_ed.decode()} {base64.b64encode(sshstr(sk_ed) + sshstr(ed_pk) + sshstr(b'ssh:')).decode()} yubikey"
    _, curve, point = fields(base64.b64decode(ec256.split()[1]))
    sk_ec = b"sk-ecdsa-sha2-nistp256@openssh.com"
    sk_ec_line = f"{sk_ec.decode()} {base64.b64encode(sshstr(sk_ec) + sshstr(curve) + sshstr(point) + sshstr(b'ssh:')).decode()}"

    def ssh(name, flags, key, key_id, *users, n=0):
        body = b"\x00".join([key.encode(), key_id.encode(), *(u.encode() for u in users)])
        put("ssh_request", name, bytes([flags]) + n.to_bytes(8, "big") + body)

    ssh("ed25519", 0x00, ed, "alice@example.com", "ubuntu")
    ssh("rsa3072-ttl", 0x01, rsa, "ci-job-42", "ubuntu", n=17)
    ssh("ecdsa256-ttl-n", 0x02, ec256, "deployer", "ubuntu", n=600)
    ssh("ecdsa384-repeated", 0x00, ec384, "k", "ubuntu", "ubuntu")
    ssh("sk-ed25519", 0x00, sk_ed_line, "fido", "ubuntu")
    ssh("sk-ecdsa", 0x03, sk_ec_line, "fido", "ubuntu")
    ssh("ca-own-key", 0x10, "", "self", "ubuntu")
    ssh("root-denied", 0x00, ed, "mallory", "root")
    ssh("no-username", 0x00, ed, "nobody")
    ssh("time-n", 0x04, ed, "epoch", "ubuntu", n=0)
    ssh("time-i64-max", 0x0C, ed, "late", "ubuntu", n=3600)
    # Control and invisible format characters in the key ID: written as '?'.
    ssh("key-id-sanitised", 0x00, ed, "alice\nroot\r\t\u202ex\u200by\ufeff\u0085\u00e9", "ubuntu")


if ONLY and ONLY.isdisjoint({"pki_request", "ssh_request"}):
    pass  # none of the key targets asked for
elif shutil.which("openssl") and shutil.which("ssh-keygen"):
    with tempfile.TemporaryDirectory() as tmp:
        key_seeds(tmp)
else:
    print("make_seeds.py: openssl and ssh-keygen are needed for the pki_request and ssh_request seeds; skipped", file=sys.stderr)
