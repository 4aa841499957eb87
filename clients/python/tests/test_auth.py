"""Auth failures against a real server that requires API keys: keys are made and revoked with the
real `trellis keys` on that server's database, and each refusal arrives as the client's own
exception, without being retried."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from fixtures import example_strategy
from support import Server, auth_config, create_key, revoke_key, start_server, stop_server
from trellis_client import (
    Client,
    PermissionDenied,
    ResourceExhausted,
    RetryEvent,
    RetryPolicy,
    Unauthenticated,
)


def _workspace() -> str:
    return f"py-auth-{uuid.uuid4().hex[:12]}"


def _client(server: Server, token: str | None, workspace: str, events: list[RetryEvent]) -> Client:
    """A client whose retries on UNAVAILABLE are fast and recorded, to show none happen."""
    policy = RetryPolicy(max_attempts=4, initial_backoff=0.01, on_retry=events.append)
    return Client(server.address, token=token, workspace=workspace, timeout=20.0, retry=policy)


def test_a_valid_write_key_works(auth_server: Server) -> None:
    workspace = _workspace()
    key = create_key(auth_server, workspace, "write")
    with _client(auth_server, key.key, workspace, []) as client:
        assert client.put_strategy(example_strategy()).version == 1
        assert client.get_strategy().version == 1
        assert [v.version for v in client.list_strategy_versions()] == [1]


def test_no_token_is_unauthenticated_and_not_retried(auth_server: Server) -> None:
    events: list[RetryEvent] = []
    with _client(auth_server, None, _workspace(), events) as client:
        with pytest.raises(Unauthenticated) as raised:
            client.get_strategy()
    assert raised.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert "requires an api key" in raised.value.message
    assert events == []


@pytest.mark.parametrize(
    "token",
    ["not-a-key", "trk_0123456789abcdef_" + "0" * 64],
    ids=["garbage", "well-formed-but-unknown"],
)
def test_a_wrong_token_is_unauthenticated(auth_server: Server, token: str) -> None:
    events: list[RetryEvent] = []
    with _client(auth_server, token, _workspace(), events) as client:
        with pytest.raises(Unauthenticated):
            client.get_strategy()
    assert events == []


def test_a_key_of_the_right_id_with_a_wrong_secret_is_unauthenticated(auth_server: Server) -> None:
    workspace = _workspace()
    key = create_key(auth_server, workspace, "read")
    forged = f"trk_{key.id}_{'f' * 64}"
    with _client(auth_server, forged, workspace, []) as client, pytest.raises(Unauthenticated):
        client.get_strategy()


def test_a_revoked_key_stops_working_at_once(auth_server: Server) -> None:
    workspace = _workspace()
    key = create_key(auth_server, workspace, "write")
    events: list[RetryEvent] = []
    with _client(auth_server, key.key, workspace, events) as client:
        assert client.put_strategy(example_strategy()).version == 1
        revoke_key(auth_server, key)
        with pytest.raises(Unauthenticated) as raised:
            client.get_strategy()
    assert "revoked" in raised.value.message
    assert events == []


def test_a_read_key_cannot_write(auth_server: Server) -> None:
    workspace = _workspace()
    writer = create_key(auth_server, workspace, "write")
    reader = create_key(auth_server, workspace, "read")
    with _client(auth_server, writer.key, workspace, []) as client:
        client.put_strategy(example_strategy())
    events: list[RetryEvent] = []
    with _client(auth_server, reader.key, workspace, events) as client:
        assert client.get_strategy().version == 1  # reading is allowed
        with pytest.raises(PermissionDenied) as raised:
            client.put_strategy(example_strategy())
    assert raised.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert "needs a write key" in raised.value.message
    assert events == []


def test_a_key_of_one_workspace_cannot_read_another(auth_server: Server) -> None:
    home, other = _workspace(), _workspace()
    key = create_key(auth_server, home, "admin")
    events: list[RetryEvent] = []
    with _client(auth_server, key.key, home, events) as client:
        client.put_strategy(example_strategy())
        with pytest.raises(PermissionDenied) as raised:
            client.get_strategy(workspace=other)
        with pytest.raises(PermissionDenied):
            list(client.list_strategy_versions(workspace=other))
    assert f"cannot reach workspace {other!r}".replace("'", '"') in raised.value.message
    assert events == []


@pytest.fixture(scope="module")
def limited_server(binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server that requires keys and lets each make one call per second, burst one."""
    running = start_server(
        binary,
        tmp_path_factory.mktemp("trellis-limited"),
        config=auth_config(requests_per_second=1, burst=1),
    )
    yield running
    stop_server(running)


def test_over_the_rate_limit_is_resource_exhausted_with_the_delay(limited_server: Server) -> None:
    workspace = _workspace()
    key = create_key(limited_server, workspace, "write")
    events: list[RetryEvent] = []
    with _client(limited_server, key.key, workspace, events) as client:
        client.put_strategy(example_strategy())
        with pytest.raises(ResourceExhausted) as raised:
            client.get_strategy()
        retry_after = raised.value.retry_after
        assert retry_after is not None and 0 < retry_after <= 1.0, retry_after
        assert "rate limit" in raised.value.message
        assert events == [], "RESOURCE_EXHAUSTED is not retried"
        time.sleep(retry_after + 0.05)
        assert client.get_strategy().version == 1  # the delay was enough
