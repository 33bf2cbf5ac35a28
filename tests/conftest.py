"""Fixtures shared by tests/sdk/python and tests/system."""

from __future__ import annotations

import pytest

from cofferlib import CofferServer, DevOidc, MotoServer, fresh_postgres_database


@pytest.fixture
def server_factory(tmp_path):
    """Make (not start) CofferServer objects in this test's temp dir; every
    one still running at the end of the test is stopped."""
    made: list[CofferServer] = []

    def make(name: str = "coffer", **kw) -> CofferServer:
        srv = CofferServer(data_dir=tmp_path / name / "data", log_dir=tmp_path / name / "logs", **kw)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.stop()


@pytest.fixture
def server(server_factory) -> CofferServer:
    """A freshly initialised, running dev server."""
    return server_factory().start(expect_credentials=True)


@pytest.fixture
def admin(server):
    """A wire client logged in as the bootstrap admin of `server`."""
    return server.admin_client()


@pytest.fixture(scope="module")
def dev_oidc(tmp_path_factory) -> DevOidc:
    """A running `coffer dev oidc` (GitLab/GitHub-shaped ID tokens)."""
    issuer = DevOidc(tmp_path_factory.mktemp("dev-oidc"))
    yield issuer
    issuer.stop()


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory) -> str:
    """A real `moto.server` on a free loopback port; its URL with a
    trailing slash (STS is picked from the signature's credential scope)."""
    moto = MotoServer(tmp_path_factory.mktemp("moto"))
    yield moto.url + "/"
    moto.stop()


@pytest.fixture
def fresh_postgres() -> str:
    """The URL of a new, empty database on the suite's PostgreSQL."""
    with fresh_postgres_database() as (_, url):
        yield url
