"""SourceService through the client. The server does not implement it yet: every test here
skips on UNIMPLEMENTED (or when no connector plugin is loaded), and starts running the day it
lands."""

from __future__ import annotations

import json

import pytest

from support import skip_unimplemented, unimplemented_skips
from trellis_client import Client, InvalidArgument, NotFound
from trellis_client.messages import Connector, Source, SyncStatus


def _a_connector(client: Client) -> Connector:
    connectors = skip_unimplemented(client.list_connectors)
    if not connectors:
        pytest.skip("the server loaded no connector plugins")
    return connectors[0]


def test_list_connectors(client: Client) -> None:
    connector = _a_connector(client)
    assert connector.name and connector.version
    assert json.loads(connector.config_schema_json)


def test_create_get_update_list_delete(client: Client) -> None:
    connector = _a_connector(client)
    created = client.create_source(
        Source(id="py-src", connector=connector.name, display_name="Python test", config_json="{}")
    )
    assert created.id == "py-src"
    assert client.get_source("py-src").connector == connector.name
    created.display_name = "Renamed"
    assert client.update_source(created).display_name == "Renamed"
    assert [s.id for s in client.list_sources(page_size=1)] == ["py-src"]
    client.delete_source("py-src")
    with pytest.raises(NotFound):
        client.get_source("py-src")


def test_create_source_with_a_bad_id_names_the_field(client: Client) -> None:
    with unimplemented_skips(), pytest.raises(InvalidArgument) as raised:
        client.create_source(Source(id="Not An Id", connector="x", config_json="{}"))
    assert any(v.field.endswith("id") for v in raised.value.violations)


def test_check_and_sync_a_source(client: Client) -> None:
    connector = _a_connector(client)
    client.create_source(Source(id="py-sync", connector=connector.name, config_json="{}"))
    check = client.check_source("py-sync")
    assert check.message or check.ok
    progress = list(client.sync_source("py-sync", full_refresh=True))
    assert progress
    assert progress[-1].status in (SyncStatus.SYNC_STATUS_SUCCEEDED, SyncStatus.SYNC_STATUS_FAILED)


def test_get_source_that_does_not_exist(client: Client) -> None:
    with unimplemented_skips(), pytest.raises(NotFound):
        client.get_source("nothing-here")


def test_list_sources_of_a_workspace_without_sources(loaded: Client) -> None:
    sources = skip_unimplemented(lambda: list(loaded.list_sources()))
    assert sources == []


def test_sync_source_that_does_not_exist(client: Client) -> None:
    with unimplemented_skips(), pytest.raises(NotFound):
        list(client.sync_source("nothing-here"))
