"""IngestService through the client: the streaming helper and GetConversation."""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures import REPO_ROOT, example_community, example_community_size
from trellis_client import Client, DeadlineExceeded, NotFound, Record
from trellis_client.messages import (
    Conversation,
    IngestRequest,
    Person,
    PlatformKind,
    Post,
    RecordRef,
)


def test_ingest_streams_records_and_counts_them(client: Client) -> None:
    size = example_community_size()
    first = client.ingest(example_community())
    assert (first.received, first.inserted, first.updated, first.unchanged) == (size, size, 0, 0)
    assert list(first.errors) == []
    # Upserts are idempotent by (source, external id).
    again = client.ingest(example_community())
    assert (again.received, again.inserted, again.unchanged) == (size, 0, size)


def test_ingest_reports_bad_records_by_position_and_stores_the_rest(client: Client) -> None:
    records: list[Record] = [
        Person(ref=RecordRef(source="crm", external_id="p1"), display_name="Pat"),
        Conversation(ref=RecordRef(source="crm", external_id=""), title="no id"),
        Conversation(
            ref=RecordRef(source="crm", external_id="c1"),
            platform=PlatformKind.PLATFORM_KIND_CHAT,
            title="Tracing across the queue",
            body="Where does the context go?",
        ),
    ]
    response = client.ingest(records)
    assert response.received == 3
    assert response.inserted == 2
    assert [e.position for e in response.errors] == [1]
    assert "external_id" in response.errors[0].field
    assert response.errors[0].reason
    assert client.get_conversation("crm:c1").conversation.title == "Tracing across the queue"


def test_ingest_accepts_ready_requests_and_the_workspace_of_the_client(
    client: Client, workspace: str
) -> None:
    request = IngestRequest(
        conversation=Conversation(ref=RecordRef(source="forum", external_id="q1"), title="Q")
    )
    assert client.ingest([request]).inserted == 1
    # The caller's message is not changed.
    assert request.workspace == ""
    assert client.get_conversation(("forum", "q1"), workspace=workspace).conversation.title == "Q"


def test_ingest_of_a_wrong_type_raises_that_error_not_a_grpc_one(client: Client) -> None:
    def records() -> Iterator[object]:
        yield Person(ref=RecordRef(source="forum", external_id="ok"))
        yield {"type": "person"}

    with pytest.raises(TypeError, match="record 1 is a dict"):
        client.ingest(records())  # type: ignore[arg-type]


def test_ingest_stream_honours_its_deadline(client: Client) -> None:
    def slow() -> Iterator[Person]:
        yield Person(ref=RecordRef(source="forum", external_id="slow"))
        time.sleep(3)
        yield Person(ref=RecordRef(source="forum", external_id="late"))

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        client.ingest(slow(), timeout=0.5)
    assert time.monotonic() - started < 2.9


def test_get_conversation_returns_its_posts(loaded: Client) -> None:
    response = loaded.get_conversation("forum:t1")
    assert response.conversation.ref == RecordRef(source="forum", external_id="t1")
    assert response.conversation.platform == PlatformKind.PLATFORM_KIND_QA_FORUM
    assert response.conversation.created_at.ToJsonString() == "2026-11-20T09:00:00Z"
    assert len(response.posts) >= 1
    assert all(post.conversation == "t1" for post in response.posts)


def test_get_conversation_that_does_not_exist(loaded: Client) -> None:
    with pytest.raises(NotFound) as raised:
        loaded.get_conversation("forum:nope")
    assert "nope" in raised.value.message


def test_record_refs_are_checked_before_sending(loaded: Client) -> None:
    with pytest.raises(ValueError, match="source:external_id"):
        loaded.get_conversation("t1")


def _stackexchange_posts(folder: Path) -> Iterator[Conversation | Post]:
    """Questions as conversations and answers as posts, read lazily from a real dump."""
    for _, row in ElementTree.iterparse(folder / "Posts.xml"):
        if row.tag != "row":
            continue
        post_id = row.get("Id", "")
        if row.get("PostTypeId") == "1":
            yield Conversation(
                ref=RecordRef(source="se", external_id=post_id),
                platform=PlatformKind.PLATFORM_KIND_QA_FORUM,
                title=row.get("Title", ""),
                body=row.get("Body", ""),
                author=row.get("OwnerUserId", ""),
            )
        elif row.get("PostTypeId") == "2":
            yield Post(
                ref=RecordRef(source="se", external_id=post_id),
                conversation=row.get("ParentId", ""),
                author=row.get("OwnerUserId", ""),
                text=row.get("Body", ""),
            )
        row.clear()


def test_ingest_streams_a_real_stackexchange_dump(client: Client) -> None:
    shared = Path(os.environ.get("TRELLIS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    folder = shared / "stackexchange" / "conlang"
    if not (folder / "Posts.xml").is_file():
        pytest.skip(f"skipped: no StackExchange dump at {folder} (set TRELLIS_SHARED_DATA)")
    expected = sum(1 for _ in _stackexchange_posts(folder))
    response = client.ingest(_stackexchange_posts(folder))
    assert response.received == expected
    assert response.inserted + len(response.errors) == expected
    assert response.inserted > expected * 0.9, list(response.errors)[:3]
