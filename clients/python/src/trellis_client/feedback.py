"""A constructor for the message FeedbackService records: one piece of feedback on one suggestion,
written with the reference forms the rest of the client accepts (``"forum:t2"``, a pair, a
RecordRef) and the short names of its kind and outcome (``"discussion"``, ``"accepted"``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeAlias

from google.protobuf.timestamp_pb2 import Timestamp

from trellis.v1.feedback_pb2 import Feedback, FeedbackOutcome, SuggestionKind

from .refs import RefLike, record_ref

SuggestionKindLike: TypeAlias = "SuggestionKind.ValueType | str"
"""A suggestion kind: ``SuggestionKind.SUGGESTION_KIND_DISCUSSION``, or its short name
``"discussion"`` (``participant``, ``asset``, ``prospect``, ``action``)."""

OutcomeLike: TypeAlias = "FeedbackOutcome.ValueType | str"
"""An outcome: ``FeedbackOutcome.FEEDBACK_OUTCOME_ACCEPTED``, or its short name ``"accepted"``
(``shown``, ``dismissed``, ``done``)."""


def suggestion_kind(value: SuggestionKindLike) -> SuggestionKind.ValueType:
    """A SuggestionKind from its value or its short name."""
    if isinstance(value, str):
        return SuggestionKind.Value(_enum_name("SUGGESTION_KIND_", value, SuggestionKind.keys()))
    return value


def feedback_outcome(value: OutcomeLike) -> FeedbackOutcome.ValueType:
    """A FeedbackOutcome from its value or its short name."""
    if isinstance(value, str):
        return FeedbackOutcome.Value(_enum_name("FEEDBACK_OUTCOME_", value, FeedbackOutcome.keys()))
    return value


def feedback_item(
    kind: SuggestionKindLike,
    outcome: OutcomeLike,
    *,
    person: RefLike | None = None,
    conversation: RefLike | None = None,
    asset: RefLike | None = None,
    action: str = "",
    at: datetime | Timestamp | None = None,
    actor: str = "",
    note: str = "",
    id: str = "",
) -> Feedback:
    """One piece of feedback for ``Client.record_feedback``.

    Each kind names its suggestion by its own parts: a discussion by ``person`` and
    ``conversation``, a participant by ``conversation`` and ``person``, an asset by
    ``conversation`` and ``asset``, a prospect by ``person``, an action by ``action`` (and the
    conversation or person it is about, if any); the server refuses what is missing, naming it.

    ``at`` is when it happened; left out, it is now. Since the id the server derives for feedback
    recorded without one comes from the suggestion, the outcome and ``at``, a call retried after
    a lost answer then records nothing twice. ``id`` names the feedback yourself: recording an id
    again replaces what it said."""
    item = Feedback(
        id=id,
        kind=suggestion_kind(kind),
        outcome=feedback_outcome(outcome),
        action=action,
        actor=actor,
        note=note,
    )
    if person is not None:
        item.person.CopyFrom(record_ref(person))
    if conversation is not None:
        item.conversation.CopyFrom(record_ref(conversation))
    if asset is not None:
        item.asset.CopyFrom(record_ref(asset))
    if isinstance(at, Timestamp):
        item.at.CopyFrom(at)
    else:
        item.at.FromDatetime(at if at is not None else datetime.now(UTC))
    return item


def _enum_name(prefix: str, value: str, names: list[str]) -> str:
    name = value if value.startswith(prefix) else prefix + value.strip().upper()
    known = [n.removeprefix(prefix).lower() for n in names if not n.endswith("_UNSPECIFIED")]
    if name not in names or name.endswith("_UNSPECIFIED"):
        raise ValueError(f"{value!r} is not one of {', '.join(known)}")
    return name
