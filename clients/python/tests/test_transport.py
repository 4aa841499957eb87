"""Auth metadata, TLS, deadlines and retries.

Most tests run against the real server (auth failures against one that requires keys, in
test_auth.py). Some conditions it cannot produce on demand or report back: the suite's server runs
without TLS, it does not echo the metadata it received, and it answers UNAVAILABLE only when its
storage fails. For those, the tests start an observing peer: a real gRPC
server over TCP (optionally TLS) built from the generated StrategyService servicer, which records
what reached it and answers as told.
"""

from __future__ import annotations

import datetime
import ipaddress
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.protobuf import any_pb2
from google.rpc import code_pb2
from google.rpc.error_details_pb2 import BadRequest
from google.rpc.status_pb2 import Status
from grpc_status import rpc_status

from fixtures import example_strategy
from support import Server, start_server, stop_server
from trellis.v1 import strategy_pb2, strategy_pb2_grpc
from trellis_client import (
    Client,
    DeadlineExceeded,
    InvalidArgument,
    RetryEvent,
    RetryPolicy,
    Unavailable,
)

# -- the observing peer ------------------------------------------------------------------------


@dataclass
class Observer(strategy_pb2_grpc.StrategyServiceServicer):
    """Answers GetStrategy and PutStrategy, after failing the first ``fail_first`` calls with
    ``fail_code``, and records each call's metadata."""

    fail_first: int = 0
    fail_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    delay: float = 0.0
    calls: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _answer(self, context: Any) -> None:
        with self.lock:
            self.calls.append({k: str(v) for k, v in context.invocation_metadata()})
            failing = len(self.calls) <= self.fail_first
        if self.delay:
            time.sleep(self.delay)
        if failing:
            if self.fail_code == grpc.StatusCode.INVALID_ARGUMENT:
                detail = any_pb2.Any()
                detail.Pack(
                    BadRequest(
                        field_violations=[
                            BadRequest.FieldViolation(field="version", description="too high")
                        ]
                    )
                )
                status = Status(
                    code=code_pb2.INVALID_ARGUMENT, message="version: too high", details=[detail]
                )
                context.abort_with_status(rpc_status.to_status(status))
            context.abort(self.fail_code, "the observer is told to fail")

    def GetStrategy(
        self, request: strategy_pb2.GetStrategyRequest, context: Any
    ) -> strategy_pb2.GetStrategyResponse:
        self._answer(context)
        return strategy_pb2.GetStrategyResponse(
            strategy_version=strategy_pb2.StrategyVersion(version=request.version or 1)
        )

    def ListStrategyVersions(
        self, request: strategy_pb2.ListStrategyVersionsRequest, context: Any
    ) -> strategy_pb2.ListStrategyVersionsResponse:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the observer does not list versions")
        raise AssertionError("abort raises")

    def PutStrategy(
        self, request: strategy_pb2.PutStrategyRequest, context: Any
    ) -> strategy_pb2.PutStrategyResponse:
        self._answer(context)
        return strategy_pb2.PutStrategyResponse(
            strategy_version=strategy_pb2.StrategyVersion(version=1, strategy=request.strategy)
        )


@dataclass
class Peer:
    address: str
    observer: Observer


@dataclass(frozen=True)
class Certificate:
    cert_pem: bytes
    key_pem: bytes


def self_signed() -> Certificate:
    """A fresh self-signed certificate for localhost and 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Certificate(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def serve_observer(observer: Observer, certificate: Certificate | None = None) -> Iterator[Peer]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    strategy_pb2_grpc.add_StrategyServiceServicer_to_server(observer, server)
    if certificate is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        credentials = grpc.ssl_server_credentials([(certificate.key_pem, certificate.cert_pem)])
        port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        yield Peer(address=f"127.0.0.1:{port}", observer=observer)
    finally:
        server.stop(grace=None)


@pytest.fixture
def peer() -> Iterator[Peer]:
    yield from serve_observer(Observer())


@pytest.fixture(scope="module")
def certificate() -> Certificate:
    return self_signed()


FAST = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05)

# -- auth metadata -----------------------------------------------------------------------------


def test_token_is_sent_as_bearer_metadata(peer: Peer) -> None:
    with Client(peer.address, token="s3cret-token") as client:
        assert client.get_strategy().version == 1
        client.put_strategy(example_strategy())
    assert [call.get("authorization") for call in peer.observer.calls] == [
        "Bearer s3cret-token",
        "Bearer s3cret-token",
    ]


def test_no_token_sends_no_authorization_and_extra_metadata_goes_along(peer: Peer) -> None:
    with Client(peer.address, metadata=[("x-request-source", "crm-sync")]) as client:
        client.get_strategy()
    (call,) = peer.observer.calls
    assert "authorization" not in call
    assert call["x-request-source"] == "crm-sync"


def test_a_server_without_auth_ignores_the_token(server: Server, workspace: str) -> None:
    with Client(server.address, token="any-token", workspace=workspace) as client:
        assert client.put_strategy(example_strategy()).version == 1
        assert client.get_strategy().version == 1


# -- TLS ---------------------------------------------------------------------------------------


def test_tls_with_root_certificates(certificate: Certificate) -> None:
    for tls_peer in serve_observer(Observer(), certificate):
        with Client(tls_peer.address, root_certificates=certificate.cert_pem, token="t") as client:
            assert client.get_strategy(3).version == 3
        assert tls_peer.observer.calls[0]["authorization"] == "Bearer t"


def test_tls_with_a_server_name_override(certificate: Certificate) -> None:
    for tls_peer in serve_observer(Observer(), certificate):
        port = tls_peer.address.rsplit(":", 1)[1]
        with Client(
            f"https://localhost:{port}",
            root_certificates=certificate.cert_pem,
            server_name_override="localhost",
        ) as client:
            assert client.get_strategy().version == 1


def test_tls_refuses_a_server_it_does_not_trust(certificate: Certificate) -> None:
    stranger = self_signed()
    for tls_peer in serve_observer(Observer(), certificate):
        with (
            Client(tls_peer.address, root_certificates=stranger.cert_pem, retry=FAST) as client,
            pytest.raises(Unavailable),
        ):
            client.get_strategy(timeout=5)
        assert tls_peer.observer.calls == []


def test_tls_client_against_the_plaintext_real_server(
    server: Server, certificate: Certificate
) -> None:
    with (
        Client(server.address, root_certificates=certificate.cert_pem, retry=FAST) as client,
        pytest.raises(Unavailable),
    ):
        client.get_strategy(timeout=5)


# -- deadlines ---------------------------------------------------------------------------------


def test_a_call_to_a_hung_server_raises_deadline_exceeded(server: Server, loaded: Client) -> None:
    assert loaded.score_conversations(texts=["latency spike"])  # connected and answering
    server.process.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as raised:
            loaded.score_conversations(texts=["latency spike"], timeout=0.3)
        # It gives up at the deadline, not when the stopped server would answer (never); the
        # upper bound leaves room for a busy machine.
        assert 0.25 < time.monotonic() - started < 10.0
    finally:
        server.process.send_signal(signal.SIGCONT)
    assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert loaded.score_conversations(texts=["latency spike"])  # and it recovers


def test_the_client_default_deadline_and_a_per_call_override() -> None:
    for slow in serve_observer(Observer(delay=1.0)):
        with Client(slow.address, timeout=0.2) as client:
            started = time.monotonic()
            with pytest.raises(DeadlineExceeded):
                client.get_strategy()
            assert time.monotonic() - started < 0.9  # it did not wait for the answer
            assert client.get_strategy(timeout=None).version == 1
            assert client.get_strategy(timeout=5).version == 1


def test_timeouts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout must be positive"):
        Client(timeout=0)
    with pytest.raises(ValueError, match="stream_timeout must be positive"):
        Client(stream_timeout=-1)


# -- retries -----------------------------------------------------------------------------------


def test_idempotent_calls_are_retried_on_unavailable_with_backoff() -> None:
    events: list[RetryEvent] = []
    policy = RetryPolicy(
        max_attempts=5, initial_backoff=0.02, max_backoff=0.1, on_retry=events.append
    )
    for flaky in serve_observer(Observer(fail_first=2)):
        with Client(flaky.address, retry=policy) as client:
            assert client.get_strategy().version == 1
        assert len(flaky.observer.calls) == 3
    assert [e.attempt for e in events] == [1, 2]
    assert all(e.method == "GetStrategy" for e in events)
    # Full jitter: the n-th sleep is at most initial * 2**(n-1), capped.
    assert 0 <= events[0].sleep <= 0.02 and 0 <= events[1].sleep <= 0.04


def test_non_idempotent_calls_are_not_retried() -> None:
    events: list[RetryEvent] = []
    for flaky in serve_observer(Observer(fail_first=1)):
        with Client(flaky.address, retry=RetryPolicy(on_retry=events.append)) as client:
            with pytest.raises(Unavailable):
                client.put_strategy(example_strategy())
        assert len(flaky.observer.calls) == 1
    assert events == []


def test_other_codes_are_not_retried_and_keep_their_violations() -> None:
    for refusing in serve_observer(
        Observer(fail_first=1, fail_code=grpc.StatusCode.INVALID_ARGUMENT)
    ):
        with Client(refusing.address, retry=FAST) as client:
            with pytest.raises(InvalidArgument) as raised:
                client.get_strategy()
        assert len(refusing.observer.calls) == 1
    assert [(v.field, v.description) for v in raised.value.violations] == [("version", "too high")]


def test_retries_stop_after_max_attempts() -> None:
    for down in serve_observer(Observer(fail_first=100)):
        with Client(down.address, retry=RetryPolicy(max_attempts=3, initial_backoff=0.01)) as c:
            with pytest.raises(Unavailable):
                c.get_strategy()
        assert len(down.observer.calls) == 3


def test_retries_stop_at_the_call_deadline() -> None:
    policy = RetryPolicy(max_attempts=100, initial_backoff=0.2, max_backoff=0.4)
    for down in serve_observer(Observer(fail_first=1000)):
        with Client(down.address, retry=policy) as client:
            started = time.monotonic()
            with pytest.raises((Unavailable, DeadlineExceeded)):
                client.get_strategy(timeout=1.0)
            assert time.monotonic() - started < 2.0
        assert 1 < len(down.observer.calls) < 100


def test_retry_policy_is_checked() -> None:
    with pytest.raises(ValueError, match="max_attempts must be at least 1"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="multiplier"):
        RetryPolicy(multiplier=0.5)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_a_retried_call_reaches_a_real_server_that_starts_late(
    binary: Path, tmp_path: Path
) -> None:
    port = _free_port()
    events: list[RetryEvent] = []
    policy = RetryPolicy(
        max_attempts=30, initial_backoff=0.05, max_backoff=0.3, on_retry=events.append
    )
    started: list[Server] = []

    def start_late() -> None:
        time.sleep(0.5)
        started.append(start_server(binary, tmp_path, f"127.0.0.1:{port}"))

    starter = threading.Thread(target=start_late)
    options = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 200)]
    with Client(f"127.0.0.1:{port}", retry=policy, options=options) as client:
        starter.start()
        try:
            assert list(client.list_strategy_versions(timeout=30)) == []
        finally:
            starter.join()
            for running in started:
                stop_server(running)
    assert events, "the first attempts found no server and were retried"
    assert all(e.method == "ListStrategyVersions" for e in events)
