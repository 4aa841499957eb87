"""An internal app's view of one member: the discussions Trellis suggests they join and the
topics they could start, with the reasons.

    python examples/member_suggestions.py [forum:u-ben]

The server is TRELLIS_ADDR (default 127.0.0.1:50151), the workspace TRELLIS_WORKSPACE, the token
TRELLIS_TOKEN.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable

from trellis_client import Client, NotFound, TrellisError, Unimplemented
from trellis_client.messages import SuggestedDiscussion


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("member", nargs="?", default="forum:u-ben", help="source:external_id")
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--addr", default=os.environ.get("TRELLIS_ADDR", "127.0.0.1:50151"))
    parser.add_argument("--workspace", default=os.environ.get("TRELLIS_WORKSPACE", ""))
    args = parser.parse_args()

    with Client(
        args.addr, token=os.environ.get("TRELLIS_TOKEN"), workspace=args.workspace
    ) as trellis:
        try:
            suggestions = trellis.suggest_discussions(args.member, limit=args.limit)
        except Unimplemented:
            print("SuggestDiscussions is not implemented by this server yet.")
            print("Meanwhile, the conversations the whole community should nourish now:")
            try:
                top = trellis.list_strategic_conversations(limit=args.limit)
            except TrellisError as error:
                print(f"  (none: {error})")
                return 0
            for conversation in top.conversations:
                print(f"  {conversation.priority:.2f}  {conversation.title}  {conversation.url}")
            return 0
        except NotFound as error:
            print(f"no member {args.member}: {error.message}", file=sys.stderr)
            return 1
        except TrellisError as error:
            print(f"could not get suggestions: {error}", file=sys.stderr)
            return 1

        print(f"Discussions for {args.member} to join:")
        for discussion in suggestion_lines(suggestions.join):
            print(discussion)
        print("Topics they could start:")
        for topic in suggestions.start:
            print(f"  {topic.suggested_title}  ({topic.facet_id}; {'; '.join(topic.reasons)})")
    return 0


def suggestion_lines(discussions: Iterable[SuggestedDiscussion]) -> list[str]:
    lines = []
    for discussion in discussions:
        reasons = "; ".join(discussion.reasons)
        lines.append(f"  {discussion.score:.2f}  {discussion.title}  {discussion.url}  ({reasons})")
    return lines


if __name__ == "__main__":
    sys.exit(main())
