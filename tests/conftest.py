"""Fixtures shared by tests/sdk/python and tests/system."""

from __future__ import annotations

import pytest

from cofferlib import CofferServer


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
