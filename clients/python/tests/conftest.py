"""Starts the real `trellis serve` once per test session on a loopback port with a temporary
SQLite database and a plugin folder holding the template connector, and gives each test a client
bound to a fresh workspace. A second real server, started on first use, requires API keys (see
test_auth.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures import example_community, example_strategy
from support import Server, auth_config, plugin_dir, start_server, stop_server, trellis_binary
from trellis_client import Client


@pytest.fixture(scope="session")
def binary() -> Path:
    return trellis_binary()


@pytest.fixture(scope="session")
def server(binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("trellis")
    running = start_server(binary, workdir, plugins=plugin_dir(binary, workdir))
    yield running
    stop_server(running)
    assert running.process.returncode == 0, f"trellis exited with {running.process.returncode}"


@pytest.fixture(scope="session")
def auth_server(binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server with `[auth] required = true` and no rate limit; tests make their keys."""
    running = start_server(binary, tmp_path_factory.mktemp("trellis-auth"), config=auth_config())
    yield running
    stop_server(running)
    assert running.process.returncode == 0, f"trellis exited with {running.process.returncode}"


@pytest.fixture
def workspace() -> str:
    """A workspace name no other test uses."""
    return f"py-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def client(server: Server, workspace: str) -> Iterator[Client]:
    with Client(server.address, workspace=workspace, timeout=20.0, stream_timeout=60.0) as c:
        yield c


@pytest.fixture
def loaded(client: Client) -> Client:
    """A client whose workspace holds the example strategy and community."""
    client.put_strategy(example_strategy())
    response = client.ingest(example_community())
    assert not response.errors, response.errors
    return client
