"""Prometheus metrics and health endpoints, against the real binary.

* a known mix of requests moves the counters by exactly that much (parsed
  with the Prometheus text-format parser of `prometheus_client`), and the
  scrape holds no token, access key or secret value;
* `--metrics-listen` serves /metrics and health on a port of its own, and the
  main listener then serves /metrics only with `--metrics`; `--metrics=false`
  turns it off in dev; a non-loopback metrics address needs an opt-in;
* readiness follows the store: PostgreSQL reached through a TCP proxy in
  this file, cut → /health/ready 503 while /health/live stays 200, restored
  → ready again without a restart.
"""

import socket
import subprocess
import threading

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from cofferlib import (CofferServer, Client, coffer_bin, free_port, fresh_postgres_database, poll,
                       postgres_base_url, server_env)

SECRET_VALUE = "metrics-test-value-7f3c1d"
FORBIDDEN_VALUE = "metrics-forbidden-value-9a8b"


def scrape(base: str) -> tuple[dict, str]:
    r = requests.get(f"{base}/metrics", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain"), r.headers
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, r.text


def val(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: dict, after: dict, name: str, **labels) -> float:
    return val(after, name, **labels) - val(before, name, **labels)


@pytest.fixture
def dev_server(tmp_path):
    srv = CofferServer(tmp_path / "data", tmp_path / "logs").start()
    yield srv
    srv.stop()


def test_counters_follow_a_known_mix_of_requests(dev_server):
    srv = dev_server
    admin = srv.admin_client()
    admin.create_secret("/m/readable", SECRET_VALUE)
    admin.create_secret("/other/forbidden", FORBIDDEN_VALUE)
    creds = admin.new_reader("mreader", "/m/*")

    before, _ = scrape(srv.url)
    N, M, K, L, U = 7, 4, 3, 2, 3
    reader = srv.client()
    for _ in range(L):
        reader.login(creds.access_id, creds.access_key)
    for i in range(K):
        # Fewer than the failed-login back-off's free attempts: all 401.
        r = reader.raw("auth", {"access-id": creds.access_id, "access-key": f"wrong-{i}",
                                "access-type": "access_key"}, token=False)
        assert r.status_code == 401, r.text
    for _ in range(N):
        assert reader.get_value("/m/readable") == SECRET_VALUE
    for _ in range(M):
        r = reader.raw("get-secret-value", {"names": ["/other/forbidden"]})
        assert r.status_code == 403, r.text
    for i in range(U):
        r = reader.raw(f"no-such-operation-{i}", {})
        assert r.status_code == 404, r.text

    after, text = scrape(srv.url)
    req = "coffer_requests_total"
    assert delta(before, after, req, operation="get-secret-value", status="200") == N
    assert delta(before, after, req, operation="get-secret-value", status="403") == M
    assert delta(before, after, req, operation="auth", status="200") == L
    assert delta(before, after, req, operation="auth", status="401") == K
    assert delta(before, after, req, operation="unknown", status="404") == U
    logins = "coffer_logins_total"
    assert delta(before, after, logins, auth_type="access_key", outcome="success") == L
    assert delta(before, after, logins, auth_type="access_key", outcome="failure") == K
    # The histogram saw every request of the operation once.
    hist = "coffer_request_duration_seconds"
    assert delta(before, after, f"{hist}_count", operation="get-secret-value") == N + M
    assert delta(before, after, f"{hist}_bucket", operation="get-secret-value", le="+Inf") == N + M
    assert val(after, f"{hist}_sum", operation="get-secret-value") > 0
    # Buckets are cumulative.
    buckets = sorted(
        (float(dict(labels)["le"]), v) for (name, labels), v in after.items()
        if name == f"{hist}_bucket" and dict(labels).get("operation") == "get-secret-value")
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    # A client cannot make series: unknown operations are one label value.
    assert "no-such-operation" not in text
    ops = {dict(labels).get("operation") for (name, labels) in after if name == req}
    assert "unknown" in ops

    assert val(after, "coffer_build_info", version=_version(text), backend="sqlite") == 1
    assert delta(before, after, "coffer_cache_hits_total", cache="token") >= N + M - 1
    assert val(after, "coffer_audit_commit_duration_seconds_count") > 0
    assert val(after, "coffer_audit_batch_records_count") > 0
    assert val(after, "coffer_audit_queue_depth") >= 0
    assert val(after, "coffer_store_connections", state="max") >= 2
    assert val(after, "coffer_connections_open") >= 1
    assert val(after, "coffer_requests_in_flight") >= 1  # this scrape
    # Counted by the periodic task (first at start-up, then every 15 s).
    assert ("coffer_tokens_live", frozenset()) in after
    assert val(after, "coffer_leases", state="live") == 0

    # Nothing secret in the exposition.
    for secret in (SECRET_VALUE, FORBIDDEN_VALUE, creds.access_key, srv.admin.access_key,
                   reader.token, admin.token, creds.access_id, srv.admin.access_id):
        assert secret not in text


def _version(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("coffer_build_info{"):
            return line.split('version="', 1)[1].split('"', 1)[0]
    raise AssertionError(f"no coffer_build_info in\n{text}")


def test_metrics_listen_serves_metrics_and_health_on_its_own_port(tmp_path):
    mport = free_port()
    srv = CofferServer(tmp_path / "data", tmp_path / "logs",
                       extra_args=["--metrics-listen", f"127.0.0.1:{mport}"]).start()
    try:
        murl = f"http://127.0.0.1:{mport}"
        # The main listener no longer serves /metrics (dev default is off
        # once a metrics address is given)...
        assert requests.get(f"{srv.url}/metrics", timeout=5).status_code == 404
        srv.admin_client().create_secret("/x/one", SECRET_VALUE)
        samples, text = scrape(murl)
        assert val(samples, "coffer_requests_total", operation="create-secret", status="200") == 1
        assert SECRET_VALUE not in text
        assert requests.get(f"{murl}/health/live", timeout=5).status_code == 200
        r = requests.get(f"{murl}/health/ready", timeout=5)
        assert r.status_code == 200
        assert r.json() == {"status": "ok", "checks": {"store": "ok", "audit": "ok", "keys": "loaded"}}
        # ... and the metrics port serves nothing else.
        assert requests.post(f"{murl}/auth", json={}, timeout=5).status_code == 404
        assert requests.post(f"{murl}/get-secret-value", json={}, timeout=5).status_code == 404
    finally:
        srv.stop()
    # With --metrics as well, both serve it.
    srv.extra_args.append("--metrics")
    srv.start(expect_credentials=False)
    try:
        scrape(srv.url)
        scrape(f"http://127.0.0.1:{mport}")
    finally:
        srv.stop()


def test_metrics_can_be_turned_off_and_remote_needs_an_opt_in(tmp_path):
    srv = CofferServer(tmp_path / "data", tmp_path / "logs", extra_args=["--metrics=false"]).start()
    try:
        assert requests.get(f"{srv.url}/metrics", timeout=5).status_code == 404
        assert requests.get(f"{srv.url}/health/live", timeout=5).status_code == 200
        assert requests.get(f"{srv.url}/health", timeout=5).status_code == 200
    finally:
        srv.stop()
    out = subprocess.run(
        [str(coffer_bin()), "server", "--dev", "--data-dir", str(tmp_path / "d2"),
         "--listen", f"127.0.0.1:{free_port()}", "--metrics-listen", f"0.0.0.0:{free_port()}"],
        capture_output=True, text=True, timeout=60, env=server_env(), stdin=subprocess.DEVNULL)
    assert out.returncode != 0
    assert "--metrics-allow-remote" in out.stderr, out.stderr


class Proxy:
    """A TCP proxy on a loopback port to `upstream`; cut() closes every
    connection and refuses new ones until restore()."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.up = True
        self.lock = threading.Lock()
        self.conns: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                if not self.up:
                    client.close()
                    continue
                try:
                    server = socket.create_connection(self.upstream, timeout=5)
                except OSError:
                    client.close()
                    continue
                server.settimeout(None)
                self.conns += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            self.up = False
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.conns.clear()

    def restore(self):
        with self.lock:
            self.up = True

    def close(self):
        self.closed = True
        self.cut()
        self.sock.close()


@pytest.fixture
def proxied_postgres():
    """A fresh database reached through a TCP proxy the test can cut."""
    with fresh_postgres_database("coffer_ready") as (name, _):
        rest = postgres_base_url().split("://", 1)[1]
        creds, hostpart = rest.rsplit("@", 1) if "@" in rest else ("", rest)
        hostport = hostpart.split("/", 1)[0]
        host, _, port = hostport.partition(":")
        proxy = Proxy((host or "127.0.0.1", int(port or 5432)))
        url = f"postgres://{creds + '@' if creds else ''}127.0.0.1:{proxy.port}/{name}"
        yield proxy, url
        proxy.close()


def test_readiness_follows_the_store_and_recovers_without_restart(proxied_postgres, tmp_path):
    proxy, url = proxied_postgres
    srv = CofferServer(tmp_path / "data", tmp_path / "logs", extra_args=["--storage", url]).start()
    try:
        admin = srv.admin_client()
        admin.create_secret("/ready/s", SECRET_VALUE)

        def ready_status():
            return requests.get(f"{srv.url}/health/ready", timeout=10)

        r = ready_status()
        assert r.status_code == 200, r.text
        before, _ = scrape(srv.url)

        proxy.cut()
        poll(lambda: ready_status().status_code == 503, 30, "readiness to go 503")
        r = ready_status()
        assert r.status_code == 503
        assert r.json() == {"status": "unavailable",
                            "checks": {"store": "unreachable", "audit": "ok", "keys": "loaded"}}
        assert requests.get(f"{srv.url}/health", timeout=10).status_code == 503
        live = requests.get(f"{srv.url}/health/live", timeout=10)
        assert live.status_code == 200 and live.json() == {"status": "ok"}
        # A request that needs the database fails and is not served.
        r = admin.raw("create-secret", {"name": "/ready/during", "value": "x"})
        assert r.status_code >= 500, r.text
        # Still not ready: the audit writer's failure is reported too.
        body = ready_status().json()
        assert body["status"] == "unavailable" and body["checks"]["store"] == "unreachable"

        proxy.restore()
        poll(lambda: ready_status().status_code == 200, 60, "readiness to come back")
        assert ready_status().json()["checks"] == {"store": "ok", "audit": "ok", "keys": "loaded"}
        # The same process serves again, reads and writes.
        assert admin.get_value("/ready/s") == SECRET_VALUE
        admin.create_secret("/ready/after", "y")
        after, text = scrape(srv.url)
        assert val(after, "coffer_store_errors_total") > val(before, "coffer_store_errors_total")
        assert val(after, "coffer_build_info", version=_version(text), backend="postgres") == 1
    finally:
        srv.stop()


def test_audit_aggregation_and_file_sink_are_counted(tmp_path):
    """Anonymous failures past the burst are counted into aggregates, and
    the audit file's progress shows, both on /metrics."""
    audit_file = tmp_path / "audit.jsonl"
    srv = CofferServer(tmp_path / "data", tmp_path / "logs",
                       extra_args=["--audit-failure-burst", "2", "--audit-file", str(audit_file)]).start()
    try:
        before, _ = scrape(srv.url)
        anon = Client(srv.url)
        for _ in range(10):
            assert anon.raw("get-secret-value", {"names": ["/x"], "token": "t-not-a-token"}).status_code == 401
        after, text = scrape(srv.url)
        # 2 get their own records; the other 8 are counted for the window's aggregate.
        assert delta(before, after, "coffer_audit_failures_aggregated_total") == 8
        assert "t-not-a-token" not in text

        def sink_caught_up():
            s, _ = scrape(srv.url)
            return val(s, "coffer_audit_file_lines_total") > 0 and val(s, "coffer_audit_file_last_seq") > 0
        poll(sink_caught_up, 10, "the audit file sink to report progress")
        s, _ = scrape(srv.url)
        lines = audit_file.read_text().splitlines()
        assert val(s, "coffer_audit_file_write_failures_total") == 0
        assert val(s, "coffer_audit_file_last_seq") >= len(lines) > 0
    finally:
        srv.stop()
