"""SourceService through the client, against the real server with the real template connector
(plugins/template, connector ``jsonl``) loaded from its plugin folder: sources are made from a
small JSON Lines file each test writes, checked, synced to the end with streamed progress, listed,
updated and deleted, and bad requests come back as the client's own exceptions with the field
violations the server names."""

from __future__ import annotations

import json
import time
from collections.abc import Generator
from pathlib import Path

import pytest

from fixtures import write_community
from trellis_client import Client, FailedPrecondition, InvalidArgument, NotFound
from trellis_client.messages import Source, SyncStatus

CONNECTOR = "jsonl"


def wait_for_status(client: Client, source_id: str, status: int) -> Source:
    """Polls GetSource until the source has ``status`` (a sync the test no longer follows)."""
    deadline = time.monotonic() + 60
    while True:
        source = client.get_source(source_id)
        if source.status == status or time.monotonic() > deadline:
            return source
        time.sleep(0.1)


def test_list_connectors_shows_the_template_connector(client: Client) -> None:
    connectors = {c.name: c for c in client.list_connectors()}
    assert CONNECTOR in connectors, list(connectors)
    jsonl = connectors[CONNECTOR]
    assert jsonl.version and jsonl.abi_major >= 1
    assert json.loads(jsonl.config_schema_json)["required"] == ["path"]
    assert set(jsonl.streams) == {"people", "conversations", "posts", "assets"}


def test_a_source_is_created_checked_synced_listed_updated_and_deleted(
    client: Client, tmp_path: Path
) -> None:
    data = tmp_path / "community.jsonl"
    total = write_community(data)
    config = json.dumps({"path": str(data), "batch_size": 2})
    created = client.create_source(Source(id="py-src", connector=CONNECTOR, config_json=config))
    assert created.id == "py-src"
    assert created.status == SyncStatus.SYNC_STATUS_IDLE
    assert created.display_name == "py-src", "the display name defaults to the id"

    check = client.check_source("py-src")
    assert check.ok, check.message
    assert "readable" in check.message

    progress = list(client.sync_source("py-src"))
    assert progress[0].status == SyncStatus.SYNC_STATUS_RUNNING
    assert progress[-1].status == SyncStatus.SYNC_STATUS_SUCCEEDED, progress[-1]
    assert progress[-1].records_read == total
    # Batches of two records: a checkpoint after each, reported as it is committed.
    assert progress[-1].checkpoints_committed >= total // 2
    read = [p.records_read for p in progress]
    assert read == sorted(read), "progress only grows"

    synced = client.get_source("py-src")
    assert synced.status == SyncStatus.SYNC_STATUS_SUCCEEDED
    assert synced.records_synced == total
    assert synced.last_sync_at.seconds > 0
    # The records are stored under the source's id.
    stored = client.get_conversation("py-src:c0")
    assert stored.conversation.title == "thread 0"
    assert [post.text for post in stored.posts] == ["use spans"]

    # A second sync reads from where the first stopped: nothing new.
    again = list(client.sync_source("py-src"))
    assert again[-1].status == SyncStatus.SYNC_STATUS_SUCCEEDED
    assert again[-1].records_read == 0
    assert list(client.sync_source("py-src", full_refresh=True))[-1].records_read == total

    client.create_source(Source(id="py-src-2", connector=CONNECTOR, config_json=config))
    assert [s.id for s in client.list_sources(page_size=1)] == ["py-src", "py-src-2"]

    synced.display_name = "Community file"
    synced.config_json = json.dumps({"path": str(data), "batch_size": 50})
    updated = client.update_source(synced)
    assert updated.display_name == "Community file"
    assert json.loads(client.get_source("py-src").config_json)["batch_size"] == 50

    client.delete_source("py-src")
    with pytest.raises(NotFound):
        client.get_source("py-src")
    assert [s.id for s in client.list_sources()] == ["py-src-2"]


def test_closing_the_progress_stream_leaves_the_sync_running(
    client: Client, tmp_path: Path
) -> None:
    data = tmp_path / "slow.jsonl"
    total = write_community(data, conversations=20)
    # One record per batch, 100 ms apart: a sync of a few seconds.
    config = json.dumps({"path": str(data), "batch_size": 1, "throttle_ms": 100})
    client.create_source(Source(id="py-slow", connector=CONNECTOR, config_json=config))
    stream = client.sync_source("py-slow")
    assert isinstance(stream, Generator)
    first = next(stream)
    assert first.status == SyncStatus.SYNC_STATUS_RUNNING
    stream.close()  # cancels the call; the sync itself goes on on the server

    assert client.get_source("py-slow").status == SyncStatus.SYNC_STATUS_RUNNING
    with pytest.raises(FailedPrecondition) as refused:
        client.delete_source("py-slow")
    assert "is syncing" in refused.value.message

    done = wait_for_status(client, "py-slow", SyncStatus.SYNC_STATUS_SUCCEEDED)
    assert done.status == SyncStatus.SYNC_STATUS_SUCCEEDED, done
    assert done.records_synced == total
    client.delete_source("py-slow")


def test_a_config_against_the_schema_names_config_json(client: Client, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as raised:
        client.create_source(
            Source(id="py-bad", connector=CONNECTOR, config_json=json.dumps({"batch_size": 0}))
        )
    assert [v.field for v in raised.value.violations] == ["source.config_json"]
    assert "path" in raised.value.message
    with pytest.raises(InvalidArgument) as not_json:
        client.create_source(Source(id="py-bad", connector=CONNECTOR, config_json="{path"))
    assert [v.field for v in not_json.value.violations] == ["source.config_json"]
    with pytest.raises(NotFound):
        client.get_source("py-bad")


def test_a_config_that_does_not_work_fails_its_check(client: Client, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-file.jsonl"
    with pytest.raises(InvalidArgument) as raised:
        client.create_source(
            Source(
                id="py-missing", connector=CONNECTOR, config_json=json.dumps({"path": str(missing)})
            )
        )
    assert [v.field for v in raised.value.violations] == ["source.config_json.path"]
    assert "does not exist" in raised.value.violations[0].description
    # A file deleted after its source was made: the check and the sync fail, in its connector's
    # words.
    gone = tmp_path / "gone.jsonl"
    gone.write_text("")
    config = json.dumps({"path": str(gone)})
    client.create_source(Source(id="py-missing", connector=CONNECTOR, config_json=config))
    gone.unlink()
    check = client.check_source("py-missing")
    assert not check.ok
    assert "cannot open" in check.message
    progress = list(client.sync_source("py-missing"))
    assert progress[-1].status == SyncStatus.SYNC_STATUS_FAILED
    assert "cannot open" in client.get_source("py-missing").last_error


def test_an_unknown_connector_names_the_connector(client: Client) -> None:
    with pytest.raises(InvalidArgument) as raised:
        client.create_source(Source(id="py-x", connector="no-such-connector", config_json="{}"))
    assert [v.field for v in raised.value.violations] == ["source.connector"]
    assert CONNECTOR in raised.value.violations[0].description, "it lists the loaded connectors"


def test_a_bad_id_names_the_field(client: Client) -> None:
    with pytest.raises(InvalidArgument) as raised:
        client.create_source(Source(id="Not An Id", connector=CONNECTOR, config_json="{}"))
    assert "source.id" in [v.field for v in raised.value.violations]


def test_secrets_are_set_alone_and_only_secret_fields(client: Client, tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text("")
    config = json.dumps({"path": str(tmp_path / "x.jsonl")})
    client.create_source(Source(id="py-secrets", connector=CONNECTOR, config_json=config))
    with pytest.raises(InvalidArgument) as raised:
        client.set_source_secrets("py-secrets", {"path": "elsewhere"})
    assert [v.field for v in raised.value.violations] == ["secrets.path"]
    assert "has none" in raised.value.violations[0].description
    with pytest.raises(NotFound):
        client.set_source_secrets("nothing-here", clear=["api_key"])
    assert list(client.get_source("py-secrets").secrets) == []


def test_calls_on_a_missing_source_are_not_found(client: Client, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        client.get_source("nothing-here")
    with pytest.raises(NotFound):
        client.check_source("nothing-here")
    with pytest.raises(NotFound):
        client.delete_source("nothing-here")
    (tmp_path / "x.jsonl").write_text("")
    with pytest.raises(NotFound):
        config = json.dumps({"path": str(tmp_path / "x.jsonl")})
        client.update_source(Source(id="nothing-here", connector=CONNECTOR, config_json=config))
    with pytest.raises(NotFound):
        list(client.sync_source("nothing-here"))


def test_list_sources_of_a_workspace_without_sources(loaded: Client) -> None:
    assert list(loaded.list_sources()) == []
