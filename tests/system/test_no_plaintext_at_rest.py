"""(a) Secret values never reach the disk or the logs in a readable form.

Secrets are written whose values contain a unique marker; then every file
under the data directory (coffer.db, its -wal/-shm, root.key, anything
else) is searched for the marker as raw bytes, base64 (any alignment,
standard and URL-safe alphabets) and hex, once while the server runs and
once after it stopped. The server's stdout/stderr must not contain the
marker, any issued token, or the bootstrap access key after its one
first-start banner.
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

from cofferlib import Client


def encoded_forms(marker: bytes) -> dict[str, bytes]:
    """Byte strings that appear in any raw/base64/hex encoding of data that
    contains `marker`, whatever its offset in that data."""
    forms = {"raw": marker, "hex": marker.hex().encode(), "HEX": marker.hex().upper().encode()}
    n = len(marker)
    for k in range(3):  # the marker's offset modulo 3 in the encoded data
        enc = base64.b64encode(b"\0" * k + marker)
        # base64 chars i whose 6 bits lie entirely inside the marker's bytes
        first, last = -(-8 * k // 6), (8 * k + 8 * n) // 6
        core = enc[first:last]
        forms[f"base64+{k}"] = core
        forms[f"base64url+{k}"] = core.translate(bytes.maketrans(b"+/", b"-_"))
    return forms


def find_leaks(root: Path, marker: bytes) -> list[str]:
    forms = encoded_forms(marker)
    leaks = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for form, needle in forms.items():
            if needle in data:
                leaks.append(f"{path.relative_to(root)} ({form})")
    return leaks


def test_encoded_forms_find_the_marker_at_every_offset():
    # Self-check of the search itself: it must see the marker inside
    # base64/hex of larger data at any offset.
    marker = b"m4rk3r-" + uuid.uuid4().hex.encode()
    for prefix in (b"", b"a", b"ab", b"abc", b'{"v":"'):
        blob = prefix + marker + b"-tail"
        encodings = [blob, base64.b64encode(blob), base64.urlsafe_b64encode(blob), blob.hex().encode()]
        forms = encoded_forms(marker).values()
        for enc in encodings:
            assert any(f in enc for f in forms), (prefix, enc[:20])


def test_values_are_not_on_disk_or_in_logs(server):
    marker = f"cofferMARK{uuid.uuid4().hex}".encode()
    m = marker.decode()
    admin = server.admin_client()
    tokens = [admin.token]

    admin.create_secret("/leak/text", f"text-{m}-v1", description="marker test")
    admin.update_secret("/leak/text", f"text-{m}-v2")
    admin.update_secret("/leak/text", f"{m}")  # the bare marker as a whole value
    admin.create_secret("/leak/json", json.dumps({"password": m, "user": "svc"}), format="json")
    admin.update_secret("/leak/json", json.dumps({"password": m + "-2"}), format="json")
    admin.create_secret("/leak/kv", json.dumps({"k": m}), format="key-value")
    admin.create_secret("/leak/multi", "\n".join([m] * 50))

    # A second identity reads them too, so its token exists in the logs' window.
    creds = admin.new_reader("leak-reader", "/leak/*")
    reader = Client(server.url)
    tokens.append(reader.login(creds.access_id, creds.access_key))
    assert m in reader.get_value("/leak/text")
    assert json.loads(reader.get_value("/leak/json"))["password"] == m + "-2"
    assert json.loads(reader.get_value("/leak/json", version=1))["password"] == m

    # A failed login with the marker as the access key must not log it either.
    bad = admin.raw("auth", {"access-id": creds.access_id, "access-key": m}, token=False)
    assert bad.status_code == 401

    data_dir = server.data_dir
    files = {p.name for p in data_dir.rglob("*") if p.is_file()}
    assert any(name.endswith(".db") for name in files), f"no database file in {sorted(files)}"

    # While running: the WAL holds the latest pages.
    assert find_leaks(data_dir, marker) == [], "secret marker found in the data dir while running"

    server.stop()
    assert find_leaks(data_dir, marker) == [], "secret marker found in the data dir after stop"

    logs = server.logs()
    assert find_leaks(server.log_dir, marker) == [], "secret marker found in the server logs"
    for i, token in enumerate(tokens):
        assert token.encode() not in logs, f"issued token #{i} appears in the server logs"
    # The bootstrap banner prints the admin access key exactly once, on stdout.
    key = server.admin.access_key.encode()
    assert server.stdout_path.read_bytes().count(key) == 1
    assert key not in server.stderr_path.read_bytes()
    assert creds.access_key.encode() not in logs, "a created auth method's access key appears in the logs"
