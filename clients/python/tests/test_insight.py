"""InsightService through the client. RPCs the server does not implement yet skip until it does."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fixtures import example_community
from support import skip_unimplemented
from trellis_client import Client, FailedPrecondition, connection_class
from trellis_client.messages import (
    ActionKind,
    ConnectionClass,
    PlatformKind,
    TextInput,
)


def test_score_stored_conversations_and_texts(loaded: Client) -> None:
    scores = loaded.score_conversations(
        ["forum:t1"],
        [
            (
                "Traces stop at our message queue",
                "We added OpenTelemetry to every service but the trace breaks when a message goes"
                " through the queue. Which headers carry the context?",
            ),
            "Best sourdough starter for a cold kitchen?",
            TextInput(body="Which p99 latency spike alert leads to the root cause fastest?"),
        ],
    )
    assert len(scores) == 4
    stored, queue, bread, latency = scores
    assert stored.conversation.external_id == "t1"
    assert not queue.HasField("conversation")
    assert stored.strategy_version == 1
    assert queue.relevance > bread.relevance
    assert connection_class(bread) == ConnectionClass.CONNECTION_CLASS_OFF_STRATEGY
    assert connection_class(queue) != ConnectionClass.CONNECTION_CLASS_OFF_STRATEGY
    assert any(f.HasField("evidence") for f in latency.facets)


def test_score_needs_a_strategy(client: Client) -> None:
    client.ingest(example_community())
    with pytest.raises(FailedPrecondition) as raised:
        client.score_conversations(texts=["anything"])
    assert "put one first" in raised.value.message


def test_list_strategic_conversations(loaded: Client) -> None:
    response = loaded.list_strategic_conversations(
        limit=3, as_of=datetime(2026, 11, 25, tzinfo=UTC)
    )
    assert response.strategy_version == 1
    assert 1 <= len(response.conversations) <= 3
    priorities = [c.priority for c in response.conversations]
    assert priorities == sorted(priorities, reverse=True)
    top = response.conversations[0]
    assert top.title and top.reasons and top.engagement.posts >= 0
    facet = top.facets[0].facet_id
    narrowed = loaded.list_strategic_conversations(facet_id=facet, min_relevance=0.0)
    assert all(any(f.facet_id == facet for f in c.facets) for c in narrowed.conversations)


def test_audit_community_design(loaded: Client) -> None:
    audit = loaded.audit_community_design(
        "A place where engineers learn to see inside their systems with traces, and help each"
        " other during outages."
    )
    assert 0.0 <= audit.alignment <= 1.0
    assert audit.facets and audit.findings
    assert any(f.served for f in audit.facets)
    assert all(f.suggestion for f in audit.facets if not f.served)
    narrow = loaded.audit_community_design("A club for sourdough bakers.")
    assert narrow.alignment < audit.alignment
    assert any(not f.served and f.suggestion for f in narrow.facets)


def test_suggest_discussions(loaded: Client) -> None:
    response = skip_unimplemented(lambda: loaded.suggest_discussions("forum:u-ben", limit=3))
    assert len(response.join) <= 3
    for discussion in response.join:
        assert discussion.conversation.source and discussion.reasons


def test_suggest_participants(loaded: Client) -> None:
    participants = skip_unimplemented(lambda: loaded.suggest_participants("forum:t1", limit=2))
    assert len(participants) <= 2
    assert all(p.person.ref.external_id and p.reasons for p in participants)


def test_find_supporting_assets_for_a_text(loaded: Client) -> None:
    assets = skip_unimplemented(
        lambda: loaded.find_supporting_assets(text="tracing overhead in production", limit=3)
    )
    assert len(assets) <= 3
    assert all(a.asset.ref.external_id for a in assets)


def test_find_supporting_assets_needs_exactly_one_context(loaded: Client) -> None:
    with pytest.raises(ValueError, match="exactly one of facet_id, conversation or text"):
        loaded.find_supporting_assets(facet_id="opentelemetry", text="x")
    with pytest.raises(ValueError, match="got none"):
        loaded.find_supporting_assets()


def test_find_prospects(loaded: Client) -> None:
    prospects = skip_unimplemented(lambda: loaded.find_prospects(limit=5))
    assert prospects
    assert all(not p.person.member for p in prospects)
    assert all(p.reasons and p.invitation.draft_message for p in prospects)
    everyone = loaded.find_prospects(limit=50, include_members=True)
    assert any(p.person.member for p in everyone)


def test_recommend_platform_mix(loaded: Client) -> None:
    response = skip_unimplemented(
        lambda: loaded.recommend_platform_mix(since=datetime(2026, 1, 1, tzinfo=UTC))
    )
    assert response.platforms
    assert sum(p.recommended_effort for p in response.platforms) == pytest.approx(1.0, abs=0.05)


def test_plan_actions(loaded: Client) -> None:
    actions = skip_unimplemented(
        lambda: loaded.plan_actions(platform=PlatformKind.PLATFORM_KIND_QA_FORUM, limit=3)
    )
    assert len(actions) <= 3
    assert all(a.kind != ActionKind.ACTION_KIND_UNSPECIFIED for a in actions)
