"""StrategyService through the client, against the real server."""

from __future__ import annotations

import grpc
import pytest

from fixtures import example_community, example_strategy
from trellis_client import (
    Client,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    TrellisError,
)
from trellis_client.messages import Facet, FacetKind, Strategy


def test_put_then_get_returns_the_same_strategy(client: Client) -> None:
    strategy = example_strategy()
    stored = client.put_strategy(strategy)
    assert stored.version == 1
    assert stored.created_at.seconds > 0
    latest = client.get_strategy()
    assert latest.version == 1
    assert latest.strategy.name == strategy.name
    assert [f.id for f in latest.strategy.facets] == [f.id for f in strategy.facets]


def test_get_a_given_version(client: Client) -> None:
    first = example_strategy()
    second = example_strategy()
    second.name = "Lumen, second take"
    client.put_strategy(first)
    client.put_strategy(second)
    assert client.get_strategy().strategy.name == "Lumen, second take"
    assert client.get_strategy(1).strategy.name == first.name
    with pytest.raises(NotFound) as raised:
        client.get_strategy(7)
    assert raised.value.code == grpc.StatusCode.NOT_FOUND


def test_list_strategy_versions_iterates_every_page_newest_first(client: Client) -> None:
    strategy = example_strategy()
    for n in range(5):
        strategy.name = f"Lumen take {n + 1}"
        client.put_strategy(strategy)
    versions = list(client.list_strategy_versions(page_size=2))
    assert [v.version for v in versions] == [5, 4, 3, 2, 1]
    assert versions[0].strategy.name == "Lumen take 5"
    # The iterator is lazy: taking one item fetches one page only, and works the same.
    first = next(client.list_strategy_versions(page_size=2))
    assert first.version == 5


def test_workspaces_are_isolated(client: Client, workspace: str) -> None:
    client.put_strategy(example_strategy())
    other = f"{workspace}-other"
    with pytest.raises(NotFound) as raised:
        list(client.list_strategy_versions(workspace=other))
    assert other in raised.value.message
    assert [v.version for v in client.list_strategy_versions()] == [1]


def test_get_strategy_before_any_put_says_what_to_do(client: Client) -> None:
    client.ingest(example_community())
    with pytest.raises(FailedPrecondition) as raised:
        client.get_strategy()
    assert "put one first" in raised.value.message


def test_bad_strategy_raises_invalid_argument_with_field_violations(client: Client) -> None:
    bad = Strategy(
        name="",
        facets=[
            Facet(id="Not An Id", kind=FacetKind.FACET_KIND_JOB, name="x", description="y"),
        ],
    )
    with pytest.raises(InvalidArgument) as raised:
        client.put_strategy(bad)
    error = raised.value
    assert isinstance(error, TrellisError)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    fields = [v.field for v in error.violations]
    assert fields == ["strategy.name", "strategy.facets[0].id"]
    assert all(isinstance(v, FieldViolation) and v.description for v in error.violations)
    assert "name the strategy" in error.violations[0].description
    # The google.rpc.Status from the trailer is kept whole.
    assert error.status is not None
    assert error.status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert len(error.status.details) == 1
    assert str(error).startswith("invalid_argument: strategy.name:")
    # Nothing was stored: the next good put is version 1.
    assert client.put_strategy(example_strategy()).version == 1


def test_bad_workspace_name_names_the_field(client: Client) -> None:
    with pytest.raises(InvalidArgument) as raised:
        client.get_strategy(workspace="not a workspace!")
    assert [v.field for v in raised.value.violations] == ["workspace"]


def test_errors_without_details_have_no_violations(client: Client) -> None:
    with pytest.raises(NotFound) as raised:
        client.get_strategy()
    assert raised.value.violations == ()
    assert raised.value.status is None
