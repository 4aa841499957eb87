"""The generated trellis.v1 message and enum types, re-exported under one short import:
``from trellis_client.messages import Strategy, Facet, FacetKind``. The modules themselves are
``trellis.v1.<service>_pb2``."""

from typing import cast

from trellis.v1.common_pb2 import (
    Evidence,
    FacetKind,
    FacetScore,
    MatchedTerm,
    PlatformKind,
    RecordRef,
)
from trellis.v1.feedback_pb2 import (
    Feedback,
    FeedbackCounts,
    FeedbackOutcome,
    ListFeedbackResponse,
    RecordFeedbackResponse,
    SuggestionKind,
)
from trellis.v1.ingest_pb2 import (
    Asset,
    AssetKind,
    Conversation,
    GetConversationResponse,
    Identity,
    IngestRequest,
    IngestResponse,
    Person,
    Post,
    RecordError,
)
from trellis.v1.insight_pb2 import (
    Action,
    ActionKind,
    AuditCommunityDesignResponse,
    ConnectionClass,
    ConversationScore,
    Engagement,
    FacetCoverage,
    ListStrategicConversationsResponse,
    PlatformStats,
    Prospect,
    RecommendPlatformMixResponse,
    StrategicConversation,
    SuggestDiscussionsResponse,
    SuggestedParticipant,
    SupportingAsset,
    TextInput,
    TopicToStart,
)
from trellis.v1.people_pb2 import (
    FacetConvergence,
    ForgetPersonResponse,
    Interest,
    MatchPeopleRequest,
    MatchPeopleResponse,
    MatchPersonResponse,
    MergePeopleResponse,
    PersonLookup,
    PersonProfile,
    SuggestedDiscussion,
)
from trellis.v1.server_pb2 import (
    GetServerStatusResponse,
    LanguageCount,
    SemanticTier,
    WorkspaceStatus,
)
from trellis.v1.source_pb2 import (
    CheckSourceResponse,
    Connector,
    Source,
    SyncSourceResponse,
    SyncStatus,
)
from trellis.v1.strategy_pb2 import Facet, Strategy, StrategyVersion


def connection_class(
    message: ConversationScore | StrategicConversation,
) -> ConnectionClass.ValueType:
    """The ``class`` field of a score: Python cannot name it as an attribute, so read it here."""
    return cast("ConnectionClass.ValueType", getattr(message, "class"))


__all__ = [
    "Action",
    "ActionKind",
    "Asset",
    "AssetKind",
    "AuditCommunityDesignResponse",
    "CheckSourceResponse",
    "ConnectionClass",
    "Connector",
    "Conversation",
    "ConversationScore",
    "Engagement",
    "Evidence",
    "Facet",
    "FacetConvergence",
    "FacetCoverage",
    "FacetKind",
    "FacetScore",
    "Feedback",
    "FeedbackCounts",
    "FeedbackOutcome",
    "ForgetPersonResponse",
    "GetConversationResponse",
    "GetServerStatusResponse",
    "Identity",
    "IngestRequest",
    "IngestResponse",
    "Interest",
    "LanguageCount",
    "ListFeedbackResponse",
    "ListStrategicConversationsResponse",
    "MatchPeopleRequest",
    "MatchPeopleResponse",
    "MatchPersonResponse",
    "MatchedTerm",
    "MergePeopleResponse",
    "Person",
    "PersonLookup",
    "PersonProfile",
    "PlatformKind",
    "PlatformStats",
    "Post",
    "Prospect",
    "RecommendPlatformMixResponse",
    "RecordError",
    "RecordFeedbackResponse",
    "RecordRef",
    "SemanticTier",
    "Source",
    "StrategicConversation",
    "Strategy",
    "StrategyVersion",
    "SuggestDiscussionsResponse",
    "SuggestedDiscussion",
    "SuggestedParticipant",
    "SuggestionKind",
    "SupportingAsset",
    "SyncSourceResponse",
    "SyncStatus",
    "TextInput",
    "TopicToStart",
    "WorkspaceStatus",
    "connection_class",
]
