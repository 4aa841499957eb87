"""The client covers every RPC of trellis.v1: a new RPC in the proto fails this test until the
client has a method for it."""

from __future__ import annotations

import re

from trellis.v1 import (
    feedback_pb2,
    ingest_pb2,
    insight_pb2,
    people_pb2,
    server_pb2,
    source_pb2,
    strategy_pb2,
)
from trellis_client import Client


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_every_rpc_has_a_client_method() -> None:
    modules = [
        strategy_pb2,
        ingest_pb2,
        insight_pb2,
        people_pb2,
        source_pb2,
        server_pb2,
        feedback_pb2,
    ]
    rpcs = [
        method.name
        for module in modules
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]
    assert len(rpcs) >= 30  # the services as of this client
    missing = [rpc for rpc in rpcs if not callable(getattr(Client, snake(rpc), None))]
    assert missing == []
