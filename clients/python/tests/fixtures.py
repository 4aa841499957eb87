"""Readers of the project's own example files (examples/strategy.toml, examples/community.jsonl)
into trellis.v1 messages, so the tests feed the server what the quick start feeds it, and a writer
of small JSON Lines files for the template connector's sources."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from trellis_client.messages import (
    Asset,
    AssetKind,
    Conversation,
    Facet,
    FacetKind,
    Identity,
    Person,
    PlatformKind,
    Post,
    RecordRef,
    Strategy,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = REPO_ROOT / "examples"


def example_strategy() -> Strategy:
    """examples/strategy.toml as a Strategy message."""
    data = tomllib.loads((EXAMPLES / "strategy.toml").read_text(encoding="utf-8"))
    strategy = Strategy(
        name=data["name"], mission=data.get("mission", ""), exclusions=data.get("exclusions", [])
    )
    for facet in data["facets"]:
        message = Facet(
            id=facet["id"],
            kind=FacetKind.Value(f"FACET_KIND_{facet['kind'].upper()}"),
            name=facet["name"],
            description=facet["description"],
            examples=facet.get("examples", []),
            keywords=facet.get("keywords", []),
        )
        if "weight" in facet:
            message.weight = float(facet["weight"])
        strategy.facets.append(message)
    return strategy


def _stamp(value: str | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(datetime.fromisoformat(value))
    return stamp


def _record(line: dict[str, Any]) -> Person | Conversation | Post | Asset:
    ref = RecordRef(source=line["source"], external_id=line["id"])
    kind = line["type"]
    if kind == "person":
        return Person(
            ref=ref,
            display_name=line.get("name", ""),
            bio=line.get("bio", ""),
            member=line.get("member", False),
            crm_ids=line.get("crm_ids", []),
            identities=(
                [
                    Identity(
                        platform=line.get("platform") or line["source"],
                        handle=line.get("handle", ""),
                        profile_url=line.get("profile_url", ""),
                        email_sha256=line.get("email_sha256", ""),
                    )
                ]
                if any(line.get(k) for k in ("handle", "profile_url", "email_sha256"))
                else []
            ),
            created_at=_stamp(line.get("created_at")),
        )
    if kind == "conversation":
        return Conversation(
            ref=ref,
            platform=PlatformKind.Value(f"PLATFORM_KIND_{line['platform'].upper()}"),
            url=line.get("url", ""),
            title=line.get("title", ""),
            body=line.get("body", ""),
            tags=line.get("tags", []),
            author=line.get("author", ""),
            open=line.get("open", True),
            created_at=_stamp(line.get("created_at")),
            last_activity_at=_stamp(line.get("last_activity_at")),
        )
    if kind == "post":
        return Post(
            ref=ref,
            conversation=line["conversation"],
            author=line.get("author", ""),
            parent=line.get("parent", ""),
            text=line.get("text", ""),
            reactions=line.get("reactions", 0),
            created_at=_stamp(line.get("created_at")),
        )
    if kind == "asset":
        return Asset(
            ref=ref,
            url=line.get("url", ""),
            title=line.get("title", ""),
            text=line.get("text", ""),
            kind=AssetKind.Value(f"ASSET_KIND_{line.get('kind', 'article').upper()}"),
            own=line.get("own", False),
            bookmark_count=line.get("bookmarks", 0),
            share_count=line.get("shares", 0),
            tags=line.get("tags", []),
            created_at=_stamp(line.get("created_at")),
        )
    raise ValueError(f"unknown record type {kind!r}")


def example_community() -> Iterator[Person | Conversation | Post | Asset]:
    """examples/community.jsonl as records, read lazily line by line."""
    with (EXAMPLES / "community.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            line = line.strip()
            if line and not line.startswith("#"):
                yield _record(json.loads(line))


def example_community_size() -> int:
    return sum(1 for _ in example_community())


def write_community(path: Path, conversations: int = 3) -> int:
    """Writes a JSON Lines file in the format of `trellis ingest`: two people, ``conversations``
    conversations and one post; returns how many records it holds."""
    lines = [
        {"type": "person", "id": "u-ana", "name": "Ana", "bio": "SRE on call", "member": True},
        {"type": "person", "id": "u-ben", "name": "Ben", "bio": "backend developer"},
    ]
    lines += [
        {
            "type": "conversation",
            "id": f"c{n}",
            "title": f"thread {n}",
            "body": f"how do we trace request {n} across services",
            "author": "u-ben",
        }
        for n in range(conversations)
    ]
    lines.append(
        {"type": "post", "id": "p0", "conversation": "c0", "author": "u-ana", "text": "use spans"}
    )
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return len(lines)
