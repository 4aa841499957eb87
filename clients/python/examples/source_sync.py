"""Adds a source from a connector plugin and follows its first sync as it streams progress.

    python examples/source_sync.py [--connector NAME] [--config '{"path": "..."}'] [--id my-source]

Without --connector it uses the first connector the server loaded. The server is TRELLIS_ADDR
(default 127.0.0.1:50151), the workspace TRELLIS_WORKSPACE, the token TRELLIS_TOKEN.
"""

from __future__ import annotations

import argparse
import os
import sys

from trellis_client import AlreadyExists, Client, InvalidArgument, TrellisError, Unimplemented
from trellis_client.messages import Source, SyncStatus


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--id", default="example-source")
    parser.add_argument("--connector", default="")
    parser.add_argument("--config", default="{}", help="the connector's config, as JSON")
    parser.add_argument("--addr", default=os.environ.get("TRELLIS_ADDR", "127.0.0.1:50151"))
    parser.add_argument("--workspace", default=os.environ.get("TRELLIS_WORKSPACE", ""))
    args = parser.parse_args()

    with Client(
        args.addr, token=os.environ.get("TRELLIS_TOKEN"), workspace=args.workspace
    ) as trellis:
        try:
            connectors = {c.name: c for c in trellis.list_connectors()}
            if not connectors:
                print("the server loaded no connector plugins; configure a plugin folder first")
                return 0
            name = args.connector or next(iter(connectors))
            if name not in connectors:
                print(f"no connector {name!r}; loaded: {', '.join(connectors)}", file=sys.stderr)
                return 1
            source = Source(id=args.id, connector=name, config_json=args.config)
            try:
                source = trellis.create_source(source)
                print(f"added source {source.id} ({name})")
            except AlreadyExists:
                source = trellis.get_source(args.id)
                print(f"source {source.id} exists already; syncing it")
            for progress in trellis.sync_source(source.id):
                print(
                    f"  {SyncStatus.Name(progress.status).removeprefix('SYNC_STATUS_').lower():9}"
                    f" {progress.stream or '-':14} read {progress.records_read:6}"
                    f"  stored {progress.records_stored:6}  {progress.message}"
                )
            final = trellis.get_source(source.id)
            status = SyncStatus.Name(final.status).removeprefix("SYNC_STATUS_").lower()
            print(f"done: {status}, {final.records_synced} records synced {final.last_error}")
        except Unimplemented as error:
            print(f"SourceService is not implemented by this server yet ({error.message}).")
            return 0
        except InvalidArgument as error:
            print("the source was refused:", file=sys.stderr)
            for violation in error.violations:
                print(f"  {violation.field}: {violation.description}", file=sys.stderr)
            return 1
        except TrellisError as error:
            print(f"the sync failed: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
