"""(b) Acknowledged writes survive kill -9.

Several writer threads create and update secrets as fast as the server
answers and record every write that got a 2xx. The server is killed with
SIGKILL while they are writing, then restarted on the same data dir: every
acknowledged write must be readable with its acknowledged value at its
acknowledged version. Three rounds on the same data dir, each one checking
the writes of all earlier rounds too. Finally the audit chain, written
concurrently with all of this, must still verify offline.
"""

from __future__ import annotations

import random
import subprocess
import threading
from dataclasses import dataclass, field

import pytest
import requests

from cofferlib import Client, poll

WRITERS = 6
VERSIONS_PER_NAME = 3  # create = version 1, then two updates
ROUNDS = 3


@dataclass
class Ledger:
    """Acknowledged writes: name -> {version: value}; plus unexpected answers."""
    acked: dict[str, dict[int, str]] = field(default_factory=dict)
    http_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.acked.values())


def writer(url: str, token: str, prefix: str, ledger: Ledger, stop: threading.Event) -> None:
    client = Client(url, token)
    j = 0
    while not stop.is_set():
        name = f"{prefix}/s{j}"
        for version in range(1, VERSIONS_PER_NAME + 1):
            value = f"{name}#v{version}"
            try:
                if version == 1:
                    r = client.raw("create-secret", {"name": name, "value": value}, timeout=10)
                else:
                    r = client.raw("update-secret-val", {"name": name, "value": value}, timeout=10)
            except requests.RequestException:
                return  # the server is gone: this write may or may not have landed
            if not 200 <= r.status_code < 300:
                with ledger.lock:
                    ledger.http_errors.append(f"{name} v{version}: HTTP {r.status_code} {r.text[:200]}")
                return
            with ledger.lock:
                ledger.acked.setdefault(name, {})[version] = value
        j += 1


def verify(client: Client, ledger: Ledger) -> None:
    missing = []
    for name, versions in sorted(ledger.acked.items()):
        last = max(versions)
        for version, value in sorted(versions.items()):
            r = client.raw("get-secret-value", {"names": [name], "version": version})
            if r.status_code != 200 or r.json().get(name) != value:
                missing.append(f"{name} v{version}: HTTP {r.status_code}")
        # The current version is the last acknowledged one, or the write that
        # was in flight at the kill (committed but not yet answered).
        item = client.call("describe-item", {"name": name})
        if item["last_version"] not in (last, last + 1):
            missing.append(f"{name}: last_version {item['last_version']}, acknowledged {last}")
        current = client.get_value(name)
        if current not in (versions[last], f"{name}#v{last + 1}"):
            missing.append(f"{name}: current value is neither v{last} nor v{last + 1}")
    assert not missing, f"{len(missing)} acknowledged writes lost or wrong after kill -9: {missing[:20]}"


@pytest.mark.slow
def test_acknowledged_writes_survive_kill_9(server_factory, record_property):
    srv = server_factory()
    srv.start(expect_credentials=True)
    ledger = Ledger()
    rng = random.Random()

    for rnd in range(ROUNDS):
        admin = srv.admin_client()
        stop = threading.Event()
        threads = [
            threading.Thread(target=writer, args=(srv.url, admin.token, f"/crash/r{rnd}/w{i}", ledger, stop),
                             daemon=True)
            for i in range(WRITERS)
        ]
        before = ledger.count()
        for t in threads:
            t.start()
        # Kill mid-stream, after a random number of acknowledged writes.
        target = before + rng.randint(150, 400)
        poll(lambda: ledger.count() >= target or ledger.http_errors, 60, f"{target - before} acknowledged writes")
        srv.kill()
        stop.set()
        for t in threads:
            t.join(30)
        assert not ledger.http_errors, f"writes refused before the kill: {ledger.http_errors[:5]}"
        assert ledger.count() > before

        record_property(f"round{rnd}_acknowledged_writes", ledger.count() - before)
        srv.start(expect_credentials=False)
        verify(srv.admin_client(), ledger)

    # The audit chain was written by the same transactions; it must still verify.
    srv.stop()
    out = subprocess.run([str(srv.binary), "audit", "verify", "--data-dir", str(srv.data_dir)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"audit chain broken after kill -9 rounds: {out.stdout}{out.stderr}"
