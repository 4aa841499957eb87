"""The client's exceptions: one class per gRPC status code the service uses, each carrying the
status message and the google.rpc details from the ``grpc-status-details-bin`` trailer, with the
field violations of a ``google.rpc.BadRequest`` exposed as plain objects and the delay of a
``google.rpc.RetryInfo`` (sent with RESOURCE_EXHAUSTED when a key is over its rate limit) as
seconds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import grpc
from google.rpc.error_details_pb2 import BadRequest, RetryInfo
from google.rpc.status_pb2 import Status
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    """One problem with one field of a request, as the server reported it."""

    field: str
    """The path of the field, e.g. ``strategy.facets[0].id``."""
    description: str
    """What is wrong and how to fix it."""

    def __str__(self) -> str:
        return f"{self.field}: {self.description}"


class TrellisError(Exception):
    """A call to Trellis failed. Subclasses name the gRPC status code."""

    code: grpc.StatusCode
    """The gRPC status code."""
    message: str
    """The status message the server (or the gRPC runtime) gave."""
    violations: tuple[FieldViolation, ...]
    """Field violations from a google.rpc.BadRequest detail; empty when there are none."""
    status: Status | None
    """The full google.rpc.Status from the trailer, when the server sent one."""
    retry_after: float | None
    """Seconds the server asked the caller to wait before trying again (google.rpc.RetryInfo);
    ``None`` when it did not say."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        violations: tuple[FieldViolation, ...] = (),
        status: Status | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.violations = violations
        self.status = status
        self.retry_after = retry_delay_of(status) if status is not None else None
        super().__init__(self._render())

    def _render(self) -> str:
        name = self.code.name.lower() if isinstance(self.code, grpc.StatusCode) else str(self.code)
        text = f"{name}: {self.message}" if self.message else name
        if self.violations and not all(str(v) in self.message for v in self.violations):
            text += " (" + "; ".join(str(v) for v in self.violations) + ")"
        return text


class Cancelled(TrellisError):
    """CANCELLED: the call was cancelled, usually by the caller."""


class Unknown(TrellisError):
    """UNKNOWN: the server or the runtime failed in a way it could not classify."""


class InvalidArgument(TrellisError):
    """INVALID_ARGUMENT: the request is bad; ``violations`` says which fields to fix, and how."""


class DeadlineExceeded(TrellisError):
    """DEADLINE_EXCEEDED: the call did not finish before its deadline."""


class NotFound(TrellisError):
    """NOT_FOUND: what the request names does not exist."""


class AlreadyExists(TrellisError):
    """ALREADY_EXISTS: what the request creates exists already."""


class PermissionDenied(TrellisError):
    """PERMISSION_DENIED: the API key is valid but does not allow this call: its role is too low
    (a read key writing) or it belongs to another workspace. Never retried."""


class ResourceExhausted(TrellisError):
    """RESOURCE_EXHAUSTED: a limit was reached, e.g. the API key's rate limit; ``retry_after``
    says how many seconds to wait. Not retried by the client: the caller decides."""


class FailedPrecondition(TrellisError):
    """FAILED_PRECONDITION: the workspace is not in a state that allows the call (e.g. it has no
    strategy yet)."""


class Aborted(TrellisError):
    """ABORTED: the call conflicted with another one."""


class OutOfRange(TrellisError):
    """OUT_OF_RANGE: a value is past the valid range."""


class Unimplemented(TrellisError):
    """UNIMPLEMENTED: this server does not implement the RPC (yet)."""


class Internal(TrellisError):
    """INTERNAL: the server failed."""


class Unavailable(TrellisError):
    """UNAVAILABLE: the server cannot be reached or its storage is busy; idempotent calls were
    retried with backoff before this was raised."""


class DataLoss(TrellisError):
    """DATA_LOSS: unrecoverable data loss."""


class Unauthenticated(TrellisError):
    """UNAUTHENTICATED: the server requires an API key and the call carried none, or one it does
    not know, or a revoked one. Never retried."""


_BY_CODE: dict[grpc.StatusCode, type[TrellisError]] = {
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.UNKNOWN: Unknown,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ABORTED: Aborted,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRange,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
    grpc.StatusCode.INTERNAL: Internal,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DATA_LOSS: DataLoss,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
}


def violations_of(status: Status) -> tuple[FieldViolation, ...]:
    """The field violations of every google.rpc.BadRequest detail in ``status``."""
    found: list[FieldViolation] = []
    for detail in status.details:
        bad_request = BadRequest()
        if detail.Unpack(bad_request):
            found.extend(
                FieldViolation(field=v.field, description=v.description)
                for v in bad_request.field_violations
            )
    return tuple(found)


def retry_delay_of(status: Status) -> float | None:
    """The delay of the first google.rpc.RetryInfo detail in ``status``, in seconds."""
    for detail in status.details:
        retry_info = RetryInfo()
        if detail.Unpack(retry_info) and retry_info.HasField("retry_delay"):
            return retry_info.retry_delay.ToTimedelta().total_seconds()
    return None


def from_rpc_error(error: grpc.RpcError) -> TrellisError:
    """The TrellisError for a failed call, with the details of its status trailer."""
    if not isinstance(error, grpc.Call):
        return Unknown(grpc.StatusCode.UNKNOWN, str(error))
    code = error.code()
    message = error.details() or ""
    status: Status | None = None
    try:
        status = cast("Status | None", rpc_status.from_call(error))
    except ValueError:
        # The trailer's code or message disagrees with the call's: keep the call's own.
        status = None
    violations = violations_of(status) if status is not None else ()
    return _BY_CODE.get(code, Unknown)(code, message, violations, status)
