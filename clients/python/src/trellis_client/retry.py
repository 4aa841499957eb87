"""Retries with exponential backoff and full jitter on UNAVAILABLE, built on tenacity.

Only idempotent unary calls are retried (the client decides which); the call's deadline covers
every attempt and the sleeps between them, so a retry never outlives the caller's timeout."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_random_exponential

_log = logging.getLogger("trellis_client")

T = TypeVar("T")


@dataclass(frozen=True)
class RetryEvent:
    """What the client is about to do after an attempt failed with UNAVAILABLE."""

    method: str
    """The full gRPC method name, e.g. ``/trellis.v1.StrategyService/GetStrategy``."""
    attempt: int
    """The attempt that failed, from 1."""
    sleep: float
    """Seconds the client sleeps before the next attempt."""
    error: grpc.RpcError
    """The failure."""


@dataclass(frozen=True)
class RetryPolicy:
    """How idempotent unary calls are retried on UNAVAILABLE.

    The n-th sleep is drawn uniformly from
    [0, min(max_backoff, initial_backoff * multiplier**(n-1))] ("full jitter").
    ``RetryPolicy(max_attempts=1)`` turns retries off.
    """

    max_attempts: int = 5
    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    multiplier: float = 2.0
    on_retry: Callable[[RetryEvent], None] | None = None
    """Called before each sleep, e.g. for metrics; a debug log line is written either way."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1; use 1 to turn retries off")
        if self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("initial_backoff and max_backoff must not be negative")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")

    def run(self, method: str, attempt: Callable[[], T], deadline: float | None) -> T:
        """Calls ``attempt`` until it succeeds, fails with another code, runs out of attempts, or
        the next sleep would pass ``deadline`` (a ``time.monotonic()`` value)."""
        if self.max_attempts == 1:
            return attempt()
        stop: stop_base = stop_after_attempt(self.max_attempts)
        if deadline is not None:
            stop = stop | _StopAtDeadline(deadline)

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            assert isinstance(error, grpc.RpcError)
            event = RetryEvent(method, state.attempt_number, state.upcoming_sleep, error)
            _log.debug(
                "retrying %s after attempt %d failed with unavailable; sleeping %.3fs",
                method,
                event.attempt,
                event.sleep,
            )
            if self.on_retry is not None:
                self.on_retry(event)

        retrying = Retrying(
            stop=stop,
            wait=wait_random_exponential(
                multiplier=self.initial_backoff, max=self.max_backoff, exp_base=self.multiplier
            ),
            retry=retry_if_exception(_is_unavailable),
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(attempt)


class _StopAtDeadline(stop_base):
    """Stops when the next sleep would end at or after the call's deadline."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return time.monotonic() + retry_state.upcoming_sleep >= self.deadline


def _is_unavailable(error: BaseException) -> bool:
    return (
        isinstance(error, grpc.RpcError)
        and isinstance(error, grpc.Call)
        and error.code() == grpc.StatusCode.UNAVAILABLE
    )
