"""FeedbackService through the client, against the real server: recording feedback on suggestions
(replacing by id, all or nothing on a bad item), listing it page by page with its filters and
counts, and what a read key may do. Tests skip while the server answers UNIMPLEMENTED."""

from __future__ import annotations

import re
import socket
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from fixtures import example_strategy
from support import Server, create_key, skip_unimplemented, unimplemented_skips
from trellis_client import (
    Client,
    InvalidArgument,
    PermissionDenied,
    RetryEvent,
    RetryPolicy,
    Unavailable,
    feedback_item,
)
from trellis_client.messages import (
    Feedback,
    FeedbackOutcome,
    RecordRef,
    SuggestionKind,
)

DERIVED_ID = re.compile(r"^fb-[0-9a-f]{16}$")
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _minutes(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def test_record_discussion_feedback_then_replace_it_by_id(loaded: Client) -> None:
    accepted = feedback_item(
        "discussion",
        "accepted",
        person="forum:u-ana",
        conversation="forum:t1",
        at=_minutes(1),
        actor="crm-sync",
        note="joined from the weekly digest",
        id="fb-ana-t1",
    )
    recorded = skip_unimplemented(lambda: loaded.record_feedback([accepted]))
    assert list(recorded.ids) == ["fb-ana-t1"]
    assert (recorded.recorded, recorded.replaced) == (1, 0)

    # The same id again, saying something else: it replaces what was recorded.
    done = feedback_item(
        "discussion",
        "done",
        person=("forum", "u-ana"),
        conversation=RecordRef(source="forum", external_id="t1"),
        at=_minutes(2),
        id="fb-ana-t1",
    )
    again = loaded.record_feedback([done])
    assert list(again.ids) == ["fb-ana-t1"]
    assert (again.recorded, again.replaced) == (0, 1)

    page = loaded.list_feedback()
    assert [f.id for f in page.feedback] == ["fb-ana-t1"]
    stored = page.feedback[0]
    assert stored.kind == SuggestionKind.SUGGESTION_KIND_DISCUSSION
    assert stored.outcome == FeedbackOutcome.FEEDBACK_OUTCOME_DONE
    assert (stored.person.source, stored.person.external_id) == ("forum", "u-ana")
    assert (stored.conversation.source, stored.conversation.external_id) == ("forum", "t1")
    assert stored.at.ToDatetime(tzinfo=UTC) == _minutes(2)
    assert stored.HasField("recorded_at")
    assert page.next_page_token == ""
    assert (page.counts.shown, page.counts.accepted, page.counts.dismissed, page.counts.done) == (
        0,
        0,
        0,
        1,
    )


def test_ids_left_out_are_derived_in_request_order_and_stable(loaded: Client) -> None:
    items = [
        feedback_item(
            "discussion", "shown", person="forum:u-ana", conversation="forum:t1", at=_minutes(1)
        ),
        feedback_item(
            "participant", "accepted", conversation="forum:t2", person="forum:u-ben", id="mine"
        ),
        feedback_item("prospect", "dismissed", person="social:p-eli", at=_minutes(3)),
    ]
    recorded = skip_unimplemented(lambda: loaded.record_feedback(items))
    ids = list(recorded.ids)
    assert len(ids) == 3 and ids[1] == "mine"
    assert DERIVED_ID.match(ids[0]) and DERIVED_ID.match(ids[2]), ids
    assert (recorded.recorded, recorded.replaced) == (3, 0)
    # The same suggestion, outcome and time derive the same id: a repeat replaces, never doubles.
    repeated = loaded.record_feedback(items)
    assert list(repeated.ids) == ids
    assert (repeated.recorded, repeated.replaced) == (0, 3)
    assert sorted(f.id for f in loaded.iter_feedback()) == sorted(ids)


def test_feedback_on_records_the_workspace_does_not_hold_is_recorded(loaded: Client) -> None:
    recorded = skip_unimplemented(
        lambda: loaded.record_feedback(
            [feedback_item("discussion", "shown", person="crm:nobody", conversation="forum:none")]
        )
    )
    assert recorded.recorded == 1


def test_an_invalid_item_refuses_the_whole_call_naming_its_field(loaded: Client) -> None:
    good = feedback_item("prospect", "shown", person="forum:u-ana")
    no_conversation = feedback_item("discussion", "accepted", person="forum:u-ana")
    with unimplemented_skips(), pytest.raises(InvalidArgument) as raised:
        loaded.record_feedback([good, no_conversation])
    fields = [v.field for v in raised.value.violations]
    assert fields == ["feedback[1].conversation"], raised.value.violations
    assert "discussion" in raised.value.violations[0].description
    # All or nothing: the good item was not recorded either.
    assert list(loaded.iter_feedback()) == []

    with pytest.raises(InvalidArgument) as raised:
        loaded.record_feedback([feedback_item("discussion", "accepted", conversation="forum:t1")])
    assert [v.field for v in raised.value.violations] == ["feedback[0].person"]


def test_an_unspecified_kind_or_outcome_is_refused_naming_it(loaded: Client) -> None:
    no_kind = Feedback(
        outcome=FeedbackOutcome.FEEDBACK_OUTCOME_SHOWN,
        person=RecordRef(source="forum", external_id="u-ana"),
    )
    with unimplemented_skips(), pytest.raises(InvalidArgument) as raised:
        loaded.record_feedback([no_kind])
    assert "feedback[0].kind" in [v.field for v in raised.value.violations]

    no_outcome = feedback_item(
        "prospect", FeedbackOutcome.FEEDBACK_OUTCOME_UNSPECIFIED, person="x:y"
    )
    with pytest.raises(InvalidArgument) as raised:
        loaded.record_feedback([no_outcome])
    assert "feedback[0].outcome" in [v.field for v in raised.value.violations]


def test_each_kind_needs_its_parts(loaded: Client) -> None:
    cases = [
        (feedback_item("participant", "accepted", person="forum:u-ana"), "conversation"),
        (feedback_item("asset", "accepted", conversation="forum:t1"), "asset"),
        (feedback_item("prospect", "accepted"), "person"),
        (feedback_item("action", "done"), "action"),
    ]
    for item, field in cases:
        with unimplemented_skips(), pytest.raises(InvalidArgument) as raised:
            loaded.record_feedback([item])
        assert f"feedback[0].{field}" in [v.field for v in raised.value.violations], item


def test_list_filters_by_kind_and_counts_every_outcome(loaded: Client) -> None:
    items = [
        feedback_item(
            "discussion", "shown", person="forum:u-ana", conversation="forum:t1", at=_minutes(1)
        ),
        feedback_item(
            "discussion", "accepted", person="forum:u-ana", conversation="forum:t2", at=_minutes(2)
        ),
        feedback_item(
            "discussion", "dismissed", person="forum:u-ben", conversation="forum:t3", at=_minutes(3)
        ),
        feedback_item(
            "asset", "done", conversation="forum:t1", asset="blog:a1", at=_minutes(4), id="asset-1"
        ),
        feedback_item("action", "accepted", action="reply:forum:t2", at=_minutes(5), id="act-1"),
    ]
    skip_unimplemented(lambda: loaded.record_feedback(items))

    everything = loaded.list_feedback()
    # Newest first.
    assert [f.at.ToDatetime(tzinfo=UTC) for f in everything.feedback] == [
        _minutes(n) for n in (5, 4, 3, 2, 1)
    ]
    counts = everything.counts
    assert (counts.shown, counts.accepted, counts.dismissed, counts.done) == (1, 2, 1, 1)

    discussions = loaded.list_feedback(kind="discussion")
    assert [f.conversation.external_id for f in discussions.feedback] == ["t3", "t2", "t1"]
    assert all(f.kind == SuggestionKind.SUGGESTION_KIND_DISCUSSION for f in discussions.feedback)
    # The counts are the workspace's, whatever the filter.
    assert discussions.counts == counts

    assets = loaded.list_feedback(kind=SuggestionKind.SUGGESTION_KIND_ASSET)
    assert [f.id for f in assets.feedback] == ["asset-1"]
    assert [f.id for f in loaded.iter_feedback(kind="action")] == ["act-1"]

    ana = [f.conversation.external_id for f in loaded.iter_feedback(person="forum:u-ana")]
    assert ana == ["t2", "t1"]
    on_t1 = [f.kind for f in loaded.iter_feedback(conversation="forum:t1")]
    assert on_t1 == [
        SuggestionKind.SUGGESTION_KIND_ASSET,
        SuggestionKind.SUGGESTION_KIND_DISCUSSION,
    ]


def test_iter_feedback_walks_every_page_newest_first(loaded: Client) -> None:
    items = [
        feedback_item(
            "discussion",
            "shown",
            person="forum:u-ana",
            conversation=f"forum:page-{n}",
            at=_minutes(n),
            id=f"page-{n}",
        )
        for n in range(7)
    ]
    skip_unimplemented(lambda: loaded.record_feedback(items))
    first = loaded.list_feedback(limit=3)
    assert [f.id for f in first.feedback] == ["page-6", "page-5", "page-4"]
    assert first.next_page_token
    second = loaded.list_feedback(limit=3, page_token=first.next_page_token)
    assert [f.id for f in second.feedback] == ["page-3", "page-2", "page-1"]
    walked = [f.id for f in loaded.iter_feedback(page_size=2)]
    assert walked == [f"page-{n}" for n in range(6, -1, -1)]
    assert [f.id for f in loaded.iter_feedback(page_size=1000)] == walked


def test_a_read_key_may_list_feedback_but_not_record_it(auth_server: Server) -> None:
    workspace = f"py-auth-{uuid.uuid4().hex[:12]}"
    writer_key = create_key(auth_server, workspace, "write")
    reader_key = create_key(auth_server, workspace, "read")
    item = feedback_item("prospect", "accepted", person="forum:u-ana", id="p-1")
    with Client(auth_server.address, token=writer_key.key, workspace=workspace) as writer:
        writer.put_strategy(example_strategy())  # the workspace exists from its first write
        recorded = skip_unimplemented(lambda: writer.record_feedback([item]))
        assert recorded.recorded == 1
    events: list[RetryEvent] = []
    policy = RetryPolicy(max_attempts=4, initial_backoff=0.01, on_retry=events.append)
    with Client(
        auth_server.address, token=reader_key.key, workspace=workspace, retry=policy
    ) as reader:
        with pytest.raises(PermissionDenied) as raised:
            reader.record_feedback([item])
        assert "needs a write key" in raised.value.message
        assert [f.id for f in reader.iter_feedback()] == ["p-1"]
        assert reader.list_feedback().counts.accepted == 1
    assert events == []


def _unused_address() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def test_record_feedback_is_retried_only_when_every_id_is_fixed() -> None:
    events: list[RetryEvent] = []
    policy = RetryPolicy(
        max_attempts=3, initial_backoff=0.01, max_backoff=0.02, on_retry=events.append
    )
    with Client(_unused_address(), retry=policy, timeout=10.0) as client:
        # feedback_item sets `at`, so the id the server derives is the same on every attempt.
        with pytest.raises(Unavailable):
            client.record_feedback([feedback_item("prospect", "shown", person="forum:u-ana")])
        assert [e.method for e in events] == ["RecordFeedback", "RecordFeedback"]
        events.clear()
        # Neither an id nor a time: the server would derive a new id on each attempt.
        unpinned = Feedback(
            kind=SuggestionKind.SUGGESTION_KIND_PROSPECT,
            outcome=FeedbackOutcome.FEEDBACK_OUTCOME_SHOWN,
            person=RecordRef(source="forum", external_id="u-ana"),
        )
        with pytest.raises(Unavailable):
            client.record_feedback([unpinned])
        assert events == []
        with pytest.raises(Unavailable):
            client.list_feedback()
        assert len(events) == 2


def test_feedback_item_reads_short_names_and_refuses_unknown_ones() -> None:
    item = feedback_item(
        "action", "done", action="publish:post-1", actor="app", note="posted", id="a"
    )
    assert item.kind == SuggestionKind.SUGGESTION_KIND_ACTION
    assert item.outcome == FeedbackOutcome.FEEDBACK_OUTCOME_DONE
    assert (item.action, item.actor, item.note, item.id) == ("publish:post-1", "app", "posted", "a")
    assert item.HasField("at") and not item.HasField("person")
    with pytest.raises(ValueError, match="not one of discussion, participant"):
        feedback_item("suggestion", "done")
    with pytest.raises(ValueError, match="not one of shown, accepted"):
        feedback_item("prospect", "maybe", person="forum:u-ana")
    with pytest.raises(ValueError, match="has no source"):
        feedback_item("prospect", "shown", person="u-ana")
