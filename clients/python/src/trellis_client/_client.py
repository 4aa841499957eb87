"""The Client: one channel, one method per RPC of trellis.v1, as a thin layer over the generated
stubs. It adds what every caller would otherwise write again: the bearer token, TLS, a default
deadline, retries of idempotent calls on UNAVAILABLE, iteration over paged lists, streaming
helpers, and exceptions that carry the server's field violations."""

from __future__ import annotations

import enum
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from trellis.v1 import (
    feedback_pb2,
    feedback_pb2_grpc,
    ingest_pb2,
    ingest_pb2_grpc,
    insight_pb2,
    insight_pb2_grpc,
    people_pb2,
    people_pb2_grpc,
    server_pb2,
    server_pb2_grpc,
    source_pb2,
    source_pb2_grpc,
    strategy_pb2,
    strategy_pb2_grpc,
)
from trellis.v1.common_pb2 import PlatformKind

from .errors import Cancelled, DeadlineExceeded, TrellisError, from_rpc_error
from .feedback import SuggestionKindLike, suggestion_kind
from .refs import RefLike, record_ref
from .retry import RetryPolicy

DEFAULT_ADDRESS = "127.0.0.1:50151"

MATCH_IN_FLIGHT = 10_000
"""How many contacts ``Client.match_people`` keeps in flight (sent, answer not yet received) on
one stream by default. The server ends a stream that leaves far more than this unanswered."""

_WINDOW_POLL = 0.1
"""Seconds a request generator waits for a free slot before checking whether the call is over."""

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Item = TypeVar("Item")
Resp_co = TypeVar("Resp_co", covariant=True)


class _Default(enum.Enum):
    DEFAULT = "default"


DEFAULT = _Default.DEFAULT
"""Stands for "the client's default" in ``timeout=`` arguments."""

Timeout = float | None | _Default
"""Seconds for the whole call (every retry included), ``None`` for no deadline, or ``DEFAULT``."""

Record = (
    ingest_pb2.Person
    | ingest_pb2.Conversation
    | ingest_pb2.Post
    | ingest_pb2.Asset
    | ingest_pb2.IngestRequest
)
"""What ``Client.ingest`` takes: a record, or a ready IngestRequest."""

Contacts = (
    Mapping[str, people_pb2.PersonLookup]
    | Iterable[tuple[str, people_pb2.PersonLookup] | people_pb2.MatchPeopleRequest]
)
"""What ``Client.match_people`` takes: contact id -> lookup, pairs, or ready requests."""

TextLike = insight_pb2.TextInput | str | tuple[str, str]
"""A raw text to score: a TextInput, a body, or ``(title, body)``."""


@dataclass(frozen=True)
class Stubs:
    """The generated stubs on the client's channel, for anything the wrapper does not cover."""

    strategy: strategy_pb2_grpc.StrategyServiceStub
    ingest: ingest_pb2_grpc.IngestServiceStub
    insight: insight_pb2_grpc.InsightServiceStub
    people: people_pb2_grpc.PeopleServiceStub
    sources: source_pb2_grpc.SourceServiceStub
    server: server_pb2_grpc.ServerServiceStub
    feedback: feedback_pb2_grpc.FeedbackServiceStub


class _Paged(Protocol):
    @property
    def next_page_token(self) -> str: ...


Paged = TypeVar("Paged", bound=_Paged)


class Client:
    """A connection to a Trellis server.

    >>> with Client("127.0.0.1:50151", token="...") as trellis:
    ...     version = trellis.get_strategy()

    Every method takes ``workspace`` (the client's default workspace when omitted) and
    ``timeout`` (seconds for the whole call). Failures raise a ``TrellisError`` subclass named after
    the gRPC status code; ``InvalidArgument.violations`` lists the fields to fix.
    """

    def __init__(
        self,
        target: str = DEFAULT_ADDRESS,
        *,
        token: str | None = None,
        tls: bool = False,
        root_certificates: bytes | None = None,
        private_key: bytes | None = None,
        certificate_chain: bytes | None = None,
        server_name_override: str | None = None,
        workspace: str = "",
        timeout: float | None = 30.0,
        stream_timeout: float | None = None,
        retry: RetryPolicy | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        options: Sequence[tuple[str, Any]] = (),
        channel: grpc.Channel | None = None,
    ) -> None:
        """Connects lazily: nothing goes over the network before the first call.

        target: ``host:port`` (an ``http://`` or ``https://`` prefix is accepted; ``https``
            turns TLS on).
        token: sent as ``authorization: Bearer <token>`` on every call.
        tls: use TLS with the system's root certificates, or ``root_certificates`` (PEM) when
            given; ``private_key`` and ``certificate_chain`` (PEM) add a client certificate.
        server_name_override: the name to check the server's certificate against, when it is
            not the target's host (tests, tunnels).
        workspace: the workspace calls go to unless they name one; "" is the default workspace.
        timeout: default deadline in seconds for unary calls, every retry included.
        stream_timeout: default deadline for streaming calls (ingest, MatchPeople, SyncSource).
        retry: how idempotent unary calls are retried on UNAVAILABLE.
        metadata: extra metadata sent on every call.
        options: gRPC channel options, e.g. ``[("grpc.max_receive_message_length", 1 << 24)]``.
        channel: an existing channel to use instead of opening one (the client then does not
            close it).
        """
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive seconds, or None for no deadline")
        if stream_timeout is not None and stream_timeout <= 0:
            raise ValueError("stream_timeout must be positive seconds, or None for no deadline")
        if token is not None and (not token.strip() or "\n" in token):
            raise ValueError("token must be a non-empty single line; leave it out for no auth")
        if target.startswith("https://"):
            target, tls = target.removeprefix("https://"), True
        target = target.removeprefix("http://").rstrip("/")
        if not target:
            raise ValueError(f"target must be host:port, e.g. {DEFAULT_ADDRESS}")

        self.target = target
        self.workspace = workspace
        self.timeout = timeout
        self.stream_timeout = stream_timeout
        self.retry = retry if retry is not None else RetryPolicy()
        auth = (("authorization", f"Bearer {token.strip()}"),) if token is not None else ()
        self._metadata: tuple[tuple[str, str], ...] = auth + tuple(metadata)

        self._owns_channel = channel is None
        if channel is not None:
            self._channel = channel
        else:
            channel_options = list(options)
            if server_name_override is not None:
                channel_options.append(("grpc.ssl_target_name_override", server_name_override))
            if tls or root_certificates is not None or certificate_chain is not None:
                credentials = grpc.ssl_channel_credentials(
                    root_certificates=root_certificates,
                    private_key=private_key,
                    certificate_chain=certificate_chain,
                )
                self._channel = grpc.secure_channel(target, credentials, channel_options)
            else:
                self._channel = grpc.insecure_channel(target, channel_options)

        self.stubs = Stubs(
            strategy=strategy_pb2_grpc.StrategyServiceStub(self._channel),
            ingest=ingest_pb2_grpc.IngestServiceStub(self._channel),
            insight=insight_pb2_grpc.InsightServiceStub(self._channel),
            people=people_pb2_grpc.PeopleServiceStub(self._channel),
            sources=source_pb2_grpc.SourceServiceStub(self._channel),
            server=server_pb2_grpc.ServerServiceStub(self._channel),
            feedback=feedback_pb2_grpc.FeedbackServiceStub(self._channel),
        )

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The metadata sent on every call (the authorization header among them)."""
        return self._metadata

    def close(self) -> None:
        """Closes the channel (unless it was handed in); calls in flight are cancelled."""
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(target={self.target!r}, workspace={self.workspace!r})"

    # -- StrategyService -------------------------------------------------------------------

    def put_strategy(
        self,
        strategy: strategy_pb2.Strategy,
        *,
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
    ) -> strategy_pb2.StrategyVersion:
        """Validates and stores ``strategy`` as a new version. Not retried: every put is a version.

        Raises InvalidArgument with one violation per problem when the strategy is bad."""
        request = strategy_pb2.PutStrategyRequest(workspace=self._ws(workspace), strategy=strategy)
        response = self._unary(
            self.stubs.strategy.PutStrategy, "PutStrategy", request, timeout, idempotent=False
        )
        return response.strategy_version

    def get_strategy(
        self, version: int = 0, *, workspace: str | None = None, timeout: Timeout = DEFAULT
    ) -> strategy_pb2.StrategyVersion:
        """The latest strategy version, or ``version`` when it is not 0."""
        request = strategy_pb2.GetStrategyRequest(workspace=self._ws(workspace), version=version)
        response = self._unary(
            self.stubs.strategy.GetStrategy, "GetStrategy", request, timeout, idempotent=True
        )
        return response.strategy_version

    def list_strategy_versions(
        self, *, page_size: int = 0, workspace: str | None = None, timeout: Timeout = DEFAULT
    ) -> Iterator[strategy_pb2.StrategyVersion]:
        """Every strategy version, newest first, fetched page by page as you iterate (``timeout``
        applies to each page)."""
        ws = self._ws(workspace)
        return self._paginate(
            lambda token: self._unary(
                self.stubs.strategy.ListStrategyVersions,
                "ListStrategyVersions",
                strategy_pb2.ListStrategyVersionsRequest(
                    workspace=ws, page_size=page_size, page_token=token
                ),
                timeout,
                idempotent=True,
            ),
            lambda response: response.strategy_versions,
        )

    # -- IngestService ---------------------------------------------------------------------

    def ingest(
        self,
        records: Iterable[Record],
        *,
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
    ) -> ingest_pb2.IngestResponse:
        """Streams ``records`` (consumed lazily, so a generator over a large file is fine) and
        returns the server's counts. Records the server refuses are in ``response.errors`` by
        position; the others are stored. Upserts are idempotent by (source, external id), but the
        stream is not retried: call again to resend."""
        ws = self._ws(workspace)

        def requests() -> Iterator[ingest_pb2.IngestRequest]:
            for position, record in enumerate(records):
                request = _ingest_request(record, position)
                if position == 0 and not request.workspace:
                    request.workspace = ws
                yield request

        guarded = _GuardedRequests(requests())
        seconds, deadline = self._stream_deadline(timeout)
        try:
            return self.stubs.ingest.Ingest(iter(guarded), timeout=seconds, metadata=self._metadata)
        except grpc.RpcError as error:
            guarded.raise_own()
            raise _failure(error, deadline) from error

    def get_conversation(
        self, conversation: RefLike, *, workspace: str | None = None, timeout: Timeout = DEFAULT
    ) -> ingest_pb2.GetConversationResponse:
        """A stored conversation (``response.conversation``) with its posts (``response.posts``)."""
        request = ingest_pb2.GetConversationRequest(
            workspace=self._ws(workspace), ref=record_ref(conversation)
        )
        return self._unary(
            self.stubs.ingest.GetConversation, "GetConversation", request, timeout, idempotent=True
        )

    # -- InsightService --------------------------------------------------------------------

    def score_conversations(
        self,
        conversations: Iterable[RefLike] = (),
        texts: Iterable[TextLike] = (),
        *,
        all_evidence: bool = False,
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
    ) -> list[insight_pb2.ConversationScore]:
        """Scores stored conversations, then raw texts, in the order given."""
        request = insight_pb2.ScoreConversationsRequest(
            workspace=self._ws(workspace),
            conversations=[record_ref(c) for c in conversations],
            texts=[_text_input(t) for t in texts],
            all_evidence=all_evidence,
        )
        response = self._unary(
            self.stubs.insight.ScoreConversations,
            "ScoreConversations",
            request,
            timeout,
            idempotent=True,
        )
        return list(response.scores)

    def list_strategic_conversations(
        self,
        *,
        limit: int = 0,
        facet_id: str = "",
        min_relevance: float | None = None,
        as_of: datetime | None = None,
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
    ) -> insight_pb2.ListStrategicConversationsResponse:
        """The conversations to nourish now, best first (``response.conversations``)."""
        request = insight_pb2.ListStrategicConversationsRequest(
            workspace=self._ws(workspace), limit=limit, facet_id=facet_id
        )
        if min_relevance is not None:
            request.min_relevance = min_relevance
        if as_of is not None:
            request.as_of.CopyFrom(_timestamp(as_of))
        return self._unary(
            self.stubs.insight.ListStrategicConversations,
            "ListStrategicConversations",
            request,
            timeout,
            idempotent=True,
        )

    def audit_community_design(
        self, mission: str, *, workspace: str | None = None, timeout: Timeout = DEFAULT
    ) -> insight_pb2.AuditCommunityDesignResponse:
        """Whether ``mission`` serves the strategy, facet by facet, and what to add."""
        request = insight_pb2.AuditCommunityDesignRequest(
            workspace=self._ws(workspace), mission=mission
        )
        return self._unary(
            self.stubs.insight.AuditCommunityDesign,
            "AuditCommunityDesign",
            request,
            timeout,
            idempotent=True,
        )

    def suggest_discussions(
        self,
        person: RefLike,
        *,
        limit: int = 0,
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
    ) -> insight_pb2.SuggestDiscussionsResponse:
        """Discussions ``person`` should join (``.join``) and topics they could start
        (``.start``)."""
        request = insight_pb2.SuggestDiscussionsRequest(
            workspace=self._ws(workspace), person=record_ref(person), limit=limit
        )
        return self._unary(
            self.stubs.insight.SuggestDiscussions,
            "SuggestDiscussions",
            request,
            timeout,
            idempotent=True,
        )

    def suggest_participants(
        self,
        conversation: RefLike,
        *,
        limit: int = 0,
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
    ) -> list[insight_pb2.SuggestedParticipant]:
        """Who should be brought into ``conversation``."""
        request = insight_pb2.SuggestParticipantsRequest(
            workspace=self._ws(workspace), conversation=record_ref(conversation), limit=limit
        )
        response = self._unary(
            self.stubs.insight.SuggestParticipants,
            "SuggestParticipants",
            request,
            timeout,
            idempotent=True,
        )
        return list(response.participants)

    def find_supporting_assets(
        self,
        *,
        facet_id: str | None = None,
        conversation: RefLike | None = None,
        text: TextLike | None = None,
        limit: int = 0,
        own_only: bool = False,
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
    ) -> list[insight_pb2.SupportingAsset]:
        """Assets that support a key message: give exactly one of ``facet_id``,
        ``conversation`` or ``text``."""
        given = [
            name
            for name, value in (
                ("facet_id", facet_id),
                ("conversation", conversation),
                ("text", text),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "find_supporting_assets needs exactly one of facet_id, conversation or text; "
                f"got {', '.join(given) or 'none'}"
            )
        request = insight_pb2.FindSupportingAssetsRequest(
            workspace=self._ws(workspace), limit=limit, own_only=own_only
        )
        if facet_id is not None:
            request.facet_id = facet_id
        elif conversation is not None:
            request.conversation.CopyFrom(record_ref(conversation))
        elif text is not None:
            request.text.CopyFrom(_text_input(text))
        response = self._unary(
            self.stubs.insight.FindSupportingAssets,
            "FindSupportingAssets",
            request,
            timeout,
            idempotent=True,
        )
        return list(response.assets)

    def find_prospects(
        self,
        *,
        limit: int = 0,
        facet_id: str = "",
        include_members: bool = False,
        as_of: datetime | None = None,
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
    ) -> list[insight_pb2.Prospect]:
        """People outside the community whose interests intersect the strategy (or the facet
        ``facet_id``), best first, each with a draft invitation. ``include_members`` ranks
        members too; ``as_of`` judges activity as of that time."""
        request = insight_pb2.FindProspectsRequest(
            workspace=self._ws(workspace),
            limit=limit,
            facet_id=facet_id,
            include_members=include_members,
        )
        if as_of is not None:
            request.as_of.CopyFrom(_timestamp(as_of))
        response = self._unary(
            self.stubs.insight.FindProspects, "FindProspects", request, timeout, idempotent=True
        )
        return list(response.prospects)

    def recommend_platform_mix(
        self,
        *,
        since: datetime | None = None,
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
    ) -> insight_pb2.RecommendPlatformMixResponse:
        """Which platform mix carries the strategic conversations, and why."""
        request = insight_pb2.RecommendPlatformMixRequest(workspace=self._ws(workspace))
        if since is not None:
            request.since.CopyFrom(_timestamp(since))
        return self._unary(
            self.stubs.insight.RecommendPlatformMix,
            "RecommendPlatformMix",
            request,
            timeout,
            idempotent=True,
        )

    def plan_actions(
        self,
        *,
        platform: PlatformKind.ValueType = PlatformKind.PLATFORM_KIND_UNSPECIFIED,
        limit: int = 0,
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
    ) -> list[insight_pb2.Action]:
        """The next concrete actions (on ``platform``, or every platform), with draft text."""
        request = insight_pb2.PlanActionsRequest(
            workspace=self._ws(workspace), platform=platform, limit=limit
        )
        response = self._unary(
            self.stubs.insight.PlanActions, "PlanActions", request, timeout, idempotent=True
        )
        return list(response.actions)

    # -- PeopleService ---------------------------------------------------------------------

    def get_person(
        self, person: RefLike, *, workspace: str | None = None, timeout: Timeout = DEFAULT
    ) -> people_pb2.PersonProfile:
        """A person's profile: identities, merged records, convergence with the strategy."""
        request = people_pb2.GetPersonRequest(workspace=self._ws(workspace), ref=record_ref(person))
        response = self._unary(
            self.stubs.people.GetPerson, "GetPerson", request, timeout, idempotent=True
        )
        return response.profile

    def list_people(
        self,
        *,
        member: bool | None = None,
        page_size: int = 0,
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
    ) -> Iterator[ingest_pb2.Person]:
        """Every person (only members, or only non-members, when ``member`` is set), fetched page
        by page as you iterate (``timeout`` applies to each page)."""
        ws = self._ws(workspace)

        def page(token: str) -> people_pb2.ListPeopleResponse:
            request = people_pb2.ListPeopleRequest(
                workspace=ws, page_size=page_size, page_token=token
            )
            if member is not None:
                request.member = member
            return self._unary(
                self.stubs.people.ListPeople, "ListPeople", request, timeout, idempotent=True
            )

        return self._paginate(page, lambda response: response.people)

    def match_person(
        self,
        lookup: people_pb2.PersonLookup,
        *,
        suggestion_limit: int = 0,
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
    ) -> people_pb2.MatchPersonResponse:
        """Looks a person up (see ``trellis_client.by_email`` and friends); ``response.found``
        says whether they are known, with their profile and discussions to suggest."""
        request = people_pb2.MatchPersonRequest(
            workspace=self._ws(workspace), lookup=lookup, suggestion_limit=suggestion_limit
        )
        return self._unary(
            self.stubs.people.MatchPerson, "MatchPerson", request, timeout, idempotent=True
        )

    def match_people(
        self,
        contacts: Contacts,
        *,
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
        in_flight: int = MATCH_IN_FLIGHT,
    ) -> Iterator[people_pb2.MatchPeopleResponse]:
        """Bulk MatchPerson over one bidirectional stream, for CRM syncs: ``contacts`` maps your
        contact id to a lookup (or is an iterable of pairs or requests), consumed lazily while
        answers stream back, each with ``contact_id`` echoed. A per-contact problem comes back in
        ``response.error``; the stream goes on.

        At most ``in_flight`` contacts are sent ahead of their answers: past that the next one is
        taken from ``contacts`` only once an answer has arrived, so iterate the answers while the
        contacts are sent (the server ends a stream that leaves far too many unanswered)."""
        if isinstance(in_flight, bool) or not isinstance(in_flight, int) or in_flight <= 0:
            raise ValueError(f"in_flight must be a positive number of contacts, not {in_flight!r}")
        ws = self._ws(workspace)
        items: Iterable[tuple[str, people_pb2.PersonLookup] | people_pb2.MatchPeopleRequest] = (
            contacts.items() if isinstance(contacts, Mapping) else contacts
        )
        window = _InFlightWindow(in_flight)

        def requests() -> Iterator[people_pb2.MatchPeopleRequest]:
            # A slot is taken before the next contact is read, so no more than `in_flight` are
            # ever read ahead of their answers; a closed window ends the stream of requests.
            pending = iter(items)
            position = 0
            while window.acquire():
                try:
                    item = next(pending)
                except StopIteration:
                    return
                if isinstance(item, people_pb2.MatchPeopleRequest):
                    request = people_pb2.MatchPeopleRequest()
                    request.CopyFrom(item)
                    if not request.workspace:
                        request.workspace = ws
                elif (
                    isinstance(item, tuple)
                    and len(item) == 2
                    and isinstance(item[1], people_pb2.PersonLookup)
                ):
                    request = people_pb2.MatchPeopleRequest(
                        workspace=ws, contact_id=str(item[0]), lookup=item[1]
                    )
                else:
                    raise TypeError(
                        f"contact {position} is a {type(item).__name__}: match_people takes "
                        "(contact_id, PersonLookup) pairs or MatchPeopleRequest messages"
                    )
                position += 1
                yield request

        guarded = _GuardedRequests(requests())
        seconds, deadline = self._stream_deadline(timeout)
        call = self.stubs.people.MatchPeople(
            iter(guarded), timeout=seconds, metadata=self._metadata
        )
        window.watch(call)
        return _windowed(_responses(call, guarded, deadline), window)

    def merge_people(
        self,
        target: RefLike,
        others: Iterable[RefLike],
        *,
        reason: str,
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
    ) -> people_pb2.MergePeopleResponse:
        """Merges ``others`` into ``target``; ``response.merge_id`` undoes it. Not retried."""
        request = people_pb2.MergePeopleRequest(
            workspace=self._ws(workspace),
            target=record_ref(target),
            others=[record_ref(o) for o in others],
            reason=reason,
        )
        return self._unary(
            self.stubs.people.MergePeople, "MergePeople", request, timeout, idempotent=False
        )

    def unmerge_people(
        self, merge_id: str, *, workspace: str | None = None, timeout: Timeout = DEFAULT
    ) -> None:
        """Undoes the merge ``merge_id``. Not retried."""
        request = people_pb2.UnmergePeopleRequest(workspace=self._ws(workspace), merge_id=merge_id)
        self._unary(
            self.stubs.people.UnmergePeople, "UnmergePeople", request, timeout, idempotent=False
        )

    def list_merges(
        self,
        *,
        person: RefLike | None = None,
        active_only: bool = False,
        page_size: int = 0,
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
    ) -> Iterator[people_pb2.MergeRecord]:
        """The audit trail of merges, newest first: only those that joined ``person`` when
        given, only those still holding with ``active_only``; fetched page by page as you
        iterate (``timeout`` applies to each page)."""
        ws = self._ws(workspace)

        def page(token: str) -> people_pb2.ListMergesResponse:
            request = people_pb2.ListMergesRequest(
                workspace=ws, active_only=active_only, page_size=page_size, page_token=token
            )
            if person is not None:
                request.person.CopyFrom(record_ref(person))
            return self._unary(
                self.stubs.people.ListMerges, "ListMerges", request, timeout, idempotent=True
            )

        return self._paginate(page, lambda response: response.merges)

    def review_merges(
        self,
        *,
        apply: bool = False,
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
    ) -> list[people_pb2.MergeRecord]:
        """The automatic merges today's identity rules would not make, oldest first; with
        ``apply``, undone (kept in the audit trail with ``undone_at`` set). Needs an admin key.
        Only a dry run is retried."""
        request = people_pb2.ReviewMergesRequest(workspace=self._ws(workspace), apply=apply)
        response = self._unary(
            self.stubs.people.ReviewMerges, "ReviewMerges", request, timeout, idempotent=not apply
        )
        return list(response.merges)

    def forget_person(
        self, person: RefLike, *, workspace: str | None = None, timeout: Timeout = DEFAULT
    ) -> people_pb2.ForgetPersonResponse:
        """Removes the person's personal data and what they wrote, for good. Not retried."""
        request = people_pb2.ForgetPersonRequest(
            workspace=self._ws(workspace), ref=record_ref(person)
        )
        return self._unary(
            self.stubs.people.ForgetPerson, "ForgetPerson", request, timeout, idempotent=False
        )

    # -- SourceService ---------------------------------------------------------------------

    def list_connectors(
        self, *, workspace: str | None = None, timeout: Timeout = DEFAULT
    ) -> list[source_pb2.Connector]:
        """The connector plugins the server loaded."""
        request = source_pb2.ListConnectorsRequest(workspace=self._ws(workspace))
        response = self._unary(
            self.stubs.sources.ListConnectors, "ListConnectors", request, timeout, idempotent=True
        )
        return list(response.connectors)

    def create_source(
        self, source: source_pb2.Source, *, workspace: str | None = None, timeout: Timeout = DEFAULT
    ) -> source_pb2.Source:
        """Configures a source; its ``config_json`` is checked against the connector's schema.
        Not retried."""
        request = source_pb2.CreateSourceRequest(workspace=self._ws(workspace), source=source)
        response = self._unary(
            self.stubs.sources.CreateSource, "CreateSource", request, timeout, idempotent=False
        )
        return response.source

    def get_source(
        self, source_id: str, *, workspace: str | None = None, timeout: Timeout = DEFAULT
    ) -> source_pb2.Source:
        """A source with its sync status."""
        request = source_pb2.GetSourceRequest(workspace=self._ws(workspace), id=source_id)
        response = self._unary(
            self.stubs.sources.GetSource, "GetSource", request, timeout, idempotent=True
        )
        return response.source

    def update_source(
        self, source: source_pb2.Source, *, workspace: str | None = None, timeout: Timeout = DEFAULT
    ) -> source_pb2.Source:
        """Replaces a source's settings (same id). Retried: the same update twice is one update."""
        request = source_pb2.UpdateSourceRequest(workspace=self._ws(workspace), source=source)
        response = self._unary(
            self.stubs.sources.UpdateSource, "UpdateSource", request, timeout, idempotent=True
        )
        return response.source

    def set_source_secrets(
        self,
        source_id: str,
        secrets: Mapping[str, str] | None = None,
        *,
        clear: Sequence[str] = (),
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
    ) -> source_pb2.Source:
        """Sets (``secrets``: field name to value) or unsets (``clear``) secret fields of a source's
        config, such as ``api_key``, without resending the rest. Secrets are never returned:
        ``Source.secrets`` says which are set. Retried: setting the same values twice is once."""
        request = source_pb2.SetSourceSecretsRequest(
            workspace=self._ws(workspace), id=source_id, set=dict(secrets or {}), clear=list(clear)
        )
        response = self._unary(
            self.stubs.sources.SetSourceSecrets,
            "SetSourceSecrets",
            request,
            timeout,
            idempotent=True,
        )
        return response.source

    def delete_source(
        self,
        source_id: str,
        *,
        delete_records: bool = False,
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
    ) -> None:
        """Deletes a source, and the records it brought in when ``delete_records``. Not retried."""
        request = source_pb2.DeleteSourceRequest(
            workspace=self._ws(workspace), id=source_id, delete_records=delete_records
        )
        self._unary(
            self.stubs.sources.DeleteSource, "DeleteSource", request, timeout, idempotent=False
        )

    def list_sources(
        self, *, page_size: int = 0, workspace: str | None = None, timeout: Timeout = DEFAULT
    ) -> Iterator[source_pb2.Source]:
        """Every configured source, fetched page by page as you iterate (``timeout`` applies to
        each page)."""
        ws = self._ws(workspace)
        return self._paginate(
            lambda token: self._unary(
                self.stubs.sources.ListSources,
                "ListSources",
                source_pb2.ListSourcesRequest(workspace=ws, page_size=page_size, page_token=token),
                timeout,
                idempotent=True,
            ),
            lambda response: response.sources,
        )

    def check_source(
        self, source_id: str, *, workspace: str | None = None, timeout: Timeout = DEFAULT
    ) -> source_pb2.CheckSourceResponse:
        """Asks the connector whether the source's config works (``.ok``, ``.message``)."""
        request = source_pb2.CheckSourceRequest(workspace=self._ws(workspace), id=source_id)
        return self._unary(
            self.stubs.sources.CheckSource, "CheckSource", request, timeout, idempotent=True
        )

    def sync_source(
        self,
        source_id: str,
        *,
        full_refresh: bool = False,
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
    ) -> Iterator[source_pb2.SyncSourceResponse]:
        """Runs a sync now and yields its progress until it ends. Closing the iterator early
        cancels the stream (the sync itself goes on on the server)."""
        request = source_pb2.SyncSourceRequest(
            workspace=self._ws(workspace), id=source_id, full_refresh=full_refresh
        )
        seconds, deadline = self._stream_deadline(timeout)
        call = self.stubs.sources.SyncSource(request, timeout=seconds, metadata=self._metadata)
        return _responses(call, None, deadline)

    # -- ServerService ---------------------------------------------------------------------

    def get_server_status(
        self, *, timeout: Timeout = DEFAULT
    ) -> server_pb2.GetServerStatusResponse:
        """The server's version, whether the semantic tier is on (``.semantic.enabled``, with
        ``.semantic.model_id``, or ``.semantic.lexical_only_reason`` saying why not and how to fix
        it), and per workspace (``.workspaces``) how many conversations are indexed and embedded.
        Covers every workspace, so it takes no ``workspace``."""
        return self._unary(
            self.stubs.server.GetServerStatus,
            "GetServerStatus",
            server_pb2.GetServerStatusRequest(),
            timeout,
            idempotent=True,
        )

    # -- FeedbackService -------------------------------------------------------------------

    def record_feedback(
        self,
        feedback: Iterable[feedback_pb2.Feedback],
        *,
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
    ) -> feedback_pb2.RecordFeedbackResponse:
        """Records feedback on suggestions (see ``trellis_client.feedback_item``), at most 1,000
        per call, all or nothing: when any item is invalid none is recorded, and InvalidArgument
        names every problem (``feedback[2].conversation``). ``response.ids`` holds each item's id
        in order, derived by the server where none was given; ``.recorded`` counts the new ones,
        ``.replaced`` those that replaced feedback recorded earlier under the same id. Needs a
        write key.

        Retried only when every item has an ``id`` or an ``at`` (``feedback_item`` sets ``at``):
        its id is then the same on every attempt, so a repeat replaces rather than duplicates."""
        request = feedback_pb2.RecordFeedbackRequest(
            workspace=self._ws(workspace), feedback=list(feedback)
        )
        pinned = all(item.id or item.HasField("at") for item in request.feedback)
        return self._unary(
            self.stubs.feedback.RecordFeedback,
            "RecordFeedback",
            request,
            timeout,
            idempotent=pinned,
        )

    def list_feedback(
        self,
        *,
        kind: SuggestionKindLike | None = None,
        person: RefLike | None = None,
        conversation: RefLike | None = None,
        limit: int = 0,
        page_token: str = "",
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
    ) -> feedback_pb2.ListFeedbackResponse:
        """One page of the workspace's feedback, newest first (``response.feedback``): only of
        ``kind``, or naming ``person`` or ``conversation``, when given; at most ``limit`` (100 when
        0; larger pages are cut to the server's page size, 500 unless configured).
        ``response.next_page_token`` asks for the next page (empty on the last) and
        ``response.counts`` counts all the workspace's feedback by outcome, whatever the filter.
        ``iter_feedback`` walks every page."""
        request = feedback_pb2.ListFeedbackRequest(
            workspace=self._ws(workspace), limit=limit, page_token=page_token
        )
        if kind is not None:
            request.kind = suggestion_kind(kind)
        if person is not None:
            request.person.CopyFrom(record_ref(person))
        if conversation is not None:
            request.conversation.CopyFrom(record_ref(conversation))
        return self._unary(
            self.stubs.feedback.ListFeedback, "ListFeedback", request, timeout, idempotent=True
        )

    def iter_feedback(
        self,
        *,
        kind: SuggestionKindLike | None = None,
        person: RefLike | None = None,
        conversation: RefLike | None = None,
        page_size: int = 0,
        workspace: str | None = None,
        timeout: Timeout = DEFAULT,
    ) -> Iterator[feedback_pb2.Feedback]:
        """Every piece of feedback ``list_feedback`` would list with these filters, newest first,
        fetched ``page_size`` at a time (its ``limit``) as you iterate (``timeout`` applies to
        each page)."""
        ws = self._ws(workspace)
        return self._paginate(
            lambda token: self.list_feedback(
                kind=kind,
                person=person,
                conversation=conversation,
                limit=page_size,
                page_token=token,
                workspace=ws,
                timeout=timeout,
            ),
            lambda response: response.feedback,
        )

    # -- plumbing --------------------------------------------------------------------------

    def _ws(self, workspace: str | None) -> str:
        return self.workspace if workspace is None else workspace

    def _stream_deadline(self, timeout: Timeout) -> tuple[float | None, float | None]:
        """The stream's timeout in seconds, and its deadline on the monotonic clock."""
        seconds = self.stream_timeout if timeout is DEFAULT else timeout
        assert not isinstance(seconds, _Default)
        return seconds, None if seconds is None else time.monotonic() + seconds

    def _unary(
        self,
        method: grpc.UnaryUnaryMultiCallable[Req, Resp],
        name: str,
        request: Req,
        timeout: Timeout,
        *,
        idempotent: bool,
    ) -> Resp:
        seconds = self.timeout if timeout is DEFAULT else timeout
        assert not isinstance(seconds, _Default)
        deadline = None if seconds is None else time.monotonic() + seconds

        def attempt() -> Resp:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            return method(request, timeout=remaining, metadata=self._metadata)

        try:
            if idempotent:
                return self.retry.run(name, attempt, deadline)
            return attempt()
        except grpc.RpcError as error:
            raise _failure(error, deadline) from error

    @staticmethod
    def _paginate(
        fetch: Callable[[str], Paged], items: Callable[[Paged], Iterable[Item]]
    ) -> Iterator[Item]:
        token = ""
        seen: set[str] = set()
        while True:
            response = fetch(token)
            yield from items(response)
            token = response.next_page_token
            if not token:
                return
            if token in seen:
                raise TrellisError(
                    grpc.StatusCode.INTERNAL,
                    f"the server returned page token {token!r} twice; stopping to avoid a loop",
                )
            seen.add(token)


class _GuardedRequests:
    """Wraps a request iterator so that an exception raised while producing requests (a bad
    record, a failing file read) reaches the caller as itself, not as the CANCELLED status gRPC
    turns it into."""

    def __init__(self, requests: Iterator[Any]) -> None:
        self._requests = requests
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from self._requests
        except Exception as error:
            self.error = error
            raise

    def raise_own(self) -> None:
        if self.error is not None:
            raise self.error


class _InFlightWindow:
    """The contacts a bulk match may have in flight: the request generator, on gRPC's sending
    thread, takes a slot before each contact; each answer gives one back. Closing the window (the
    answers are over: read to the end, failed, or dropped by the caller) ends the generator, which
    waits for a slot only a short while at a time so that it also notices a call that ended before
    its answers were ever read."""

    def __init__(self, limit: int) -> None:
        self._slots = threading.Semaphore(limit)
        self._closed = threading.Event()
        self._call: weakref.ref[grpc.RpcContext] | None = None

    def watch(self, call: grpc.RpcContext) -> None:
        """Stops waiting for slots once ``call`` is over (its deadline passed, it was cancelled,
        the channel closed) or gone; held weakly, so that the window never keeps it alive."""
        self._call = weakref.ref(call)

    def acquire(self) -> bool:
        """Takes a slot, waiting while every slot is taken; False once the window is closed."""
        while not self._closed.is_set():
            if self._slots.acquire(timeout=_WINDOW_POLL):
                return not self._closed.is_set()
            call = None if self._call is None else self._call()
            if self._call is not None and (call is None or not call.is_active()):
                self.close()
        return False

    def release(self) -> None:
        self._slots.release()

    def close(self) -> None:
        self._closed.set()


def _windowed(answers: Iterator[Resp], window: _InFlightWindow) -> Iterator[Resp]:
    """Yields ``answers``, giving a slot of ``window`` back for each, and closes the window when
    they end, fail, or the caller stops early."""
    try:
        for answer in answers:
            window.release()
            yield answer
    finally:
        window.close()
        close = getattr(answers, "close", None)
        if close is not None:
            close()


class _ResponseStream(Protocol[Resp_co]):
    def __iter__(self) -> Iterator[Resp_co]: ...

    def cancel(self) -> bool: ...


def _responses(
    call: _ResponseStream[Resp], guarded: _GuardedRequests | None, deadline: float | None
) -> Iterator[Resp]:
    """Yields a streaming call's responses, turning failures into TrellisError and cancelling the
    call when the caller stops early."""
    try:
        yield from call
    except grpc.RpcError as error:
        if guarded is not None:
            guarded.raise_own()
        raise _failure(error, deadline) from error
    finally:
        call.cancel()


def _failure(error: grpc.RpcError, deadline: float | None) -> TrellisError:
    """The TrellisError for ``error``. A tonic server whose copy of the call's deadline fires first
    answers CANCELLED "Timeout expired"; when the caller's deadline has passed too, that is the
    caller's DeadlineExceeded, whichever side noticed first."""
    failure = from_rpc_error(error)
    if (
        isinstance(failure, Cancelled)
        and deadline is not None
        and (time.monotonic() >= deadline - 0.05 or failure.message == "Timeout expired")
    ):
        return DeadlineExceeded(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"the call's deadline passed (the server said: {failure.message})",
            failure.violations,
            failure.status,
        )
    return failure


def _ingest_request(record: Record, position: int) -> ingest_pb2.IngestRequest:
    if isinstance(record, ingest_pb2.IngestRequest):
        request = ingest_pb2.IngestRequest()
        request.CopyFrom(record)
        return request
    if isinstance(record, ingest_pb2.Person):
        return ingest_pb2.IngestRequest(person=record)
    if isinstance(record, ingest_pb2.Conversation):
        return ingest_pb2.IngestRequest(conversation=record)
    if isinstance(record, ingest_pb2.Post):
        return ingest_pb2.IngestRequest(post=record)
    if isinstance(record, ingest_pb2.Asset):
        return ingest_pb2.IngestRequest(asset=record)
    raise TypeError(
        f"record {position} is a {type(record).__name__}: ingest takes Person, Conversation, "
        "Post, Asset or IngestRequest messages"
    )


def _text_input(text: TextLike) -> insight_pb2.TextInput:
    if isinstance(text, insight_pb2.TextInput):
        return text
    if isinstance(text, tuple):
        title, body = text
        return insight_pb2.TextInput(title=title, body=body)
    return insight_pb2.TextInput(body=text)


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp
