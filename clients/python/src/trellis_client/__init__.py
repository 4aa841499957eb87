"""Python client for Trellis, the gRPC service that connects an organisation's community
conversations to its strategy.

>>> from trellis_client import Client, InvalidArgument
>>> with Client("127.0.0.1:50151") as trellis:
...     for version in trellis.list_strategy_versions():
...         print(version.version, version.strategy.name)

The generated messages are in ``trellis_client.messages`` (and ``trellis.v1.*_pb2``).
"""

from ._client import (
    DEFAULT,
    DEFAULT_ADDRESS,
    MATCH_IN_FLIGHT,
    Client,
    Contacts,
    Record,
    Stubs,
    TextLike,
    Timeout,
)
from .errors import (
    Aborted,
    AlreadyExists,
    Cancelled,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    Internal,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    TrellisError,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Unknown,
    from_rpc_error,
)
from .feedback import (
    OutcomeLike,
    SuggestionKindLike,
    feedback_item,
    feedback_outcome,
    suggestion_kind,
)
from .messages import connection_class
from .refs import (
    RefLike,
    by_crm_id,
    by_email,
    by_handle,
    by_profile_url,
    by_ref,
    email_sha256,
    record_ref,
)
from .retry import RetryEvent, RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "DEFAULT",
    "DEFAULT_ADDRESS",
    "MATCH_IN_FLIGHT",
    "Aborted",
    "AlreadyExists",
    "Cancelled",
    "Client",
    "Contacts",
    "DataLoss",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FieldViolation",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "OutcomeLike",
    "PermissionDenied",
    "Record",
    "RefLike",
    "ResourceExhausted",
    "RetryEvent",
    "RetryPolicy",
    "Stubs",
    "SuggestionKindLike",
    "TextLike",
    "Timeout",
    "TrellisError",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "__version__",
    "by_crm_id",
    "by_email",
    "by_handle",
    "by_profile_url",
    "by_ref",
    "connection_class",
    "email_sha256",
    "feedback_item",
    "feedback_outcome",
    "from_rpc_error",
    "record_ref",
    "suggestion_kind",
]
