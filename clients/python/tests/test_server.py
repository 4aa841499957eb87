"""ServerService through the client: GetServerStatus on the suite's server, which has no
sentence-embedding model and so runs lexical-only."""

from __future__ import annotations

from trellis_client import Client
from trellis_client.messages import Conversation, Person, PlatformKind, RecordRef


def test_server_status_says_lexical_only_and_how_to_turn_the_semantic_tier_on(
    client: Client,
) -> None:
    status = client.get_server_status()
    assert status.version
    assert not status.semantic.enabled
    assert status.semantic.model_id == ""
    reason = status.semantic.lexical_only_reason
    assert reason
    assert "fetch-model" in reason or "semantic" in reason, reason


def test_server_status_counts_the_conversations_of_each_workspace(
    client: Client, workspace: str
) -> None:
    before = client.get_server_status()
    assert workspace not in [w.workspace for w in before.workspaces]

    count = 4
    response = client.ingest(
        [Person(ref=RecordRef(source="forum", external_id="u1"), display_name="Ana")]
        + [
            Conversation(
                ref=RecordRef(source="forum", external_id=f"t{i}"),
                platform=PlatformKind.PLATFORM_KIND_QA_FORUM,
                title=f"Thread {i} on tracing",
                body="How do we carry the trace context across the queue?",
            )
            for i in range(count)
        ]
    )
    assert response.inserted == count + 1, response

    statuses = {w.workspace: w for w in client.get_server_status().workspaces}
    assert workspace in statuses, list(statuses)
    mine = statuses[workspace]
    assert mine.conversations == count
    # Lexical-only: nothing gets embedded.
    assert mine.embedded_conversations == 0
    assert mine.pending_embeddings <= count
