"""A CRM sync: pushes the CRM's contacts through MatchPeople (one bidirectional stream for all of
them) and prints, per contact, whether Trellis knows the person and where their interests meet
the strategy.

    python examples/crm_sync.py [--contacts examples/contacts.csv]

The contacts file is CSV with contact_id and any of crm_id, email, handle. The server is
TRELLIS_ADDR (default 127.0.0.1:50151), the workspace TRELLIS_WORKSPACE, the token TRELLIS_TOKEN.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from trellis_client import Client, TrellisError, Unimplemented, by_crm_id, by_email, by_handle
from trellis_client.messages import PersonLookup


def lookups(path: Path) -> Iterator[tuple[str, PersonLookup]]:
    """(contact id, lookup) per CSV row: the CRM id when there is one, else e-mail, else handle."""
    with path.open(newline="", encoding="utf-8") as rows:
        for row in csv.DictReader(rows):
            if row.get("crm_id"):
                yield row["contact_id"], by_crm_id(row["crm_id"])
            elif row.get("email"):
                yield row["contact_id"], by_email(row["email"])
            elif row.get("handle"):
                yield row["contact_id"], by_handle(row["handle"])
            else:
                print(f"skipped {row['contact_id']}: no crm_id, email or handle", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=Path, default=Path(__file__).with_name("contacts.csv"))
    parser.add_argument("--addr", default=os.environ.get("TRELLIS_ADDR", "127.0.0.1:50151"))
    parser.add_argument("--workspace", default=os.environ.get("TRELLIS_WORKSPACE", ""))
    args = parser.parse_args()

    with Client(
        args.addr, token=os.environ.get("TRELLIS_TOKEN"), workspace=args.workspace
    ) as trellis:
        try:
            for answer in trellis.match_people(lookups(args.contacts), timeout=60):
                if answer.error:
                    print(f"{answer.contact_id}: error: {answer.error}")
                elif not answer.found:
                    print(f"{answer.contact_id}: not known to Trellis")
                else:
                    person = answer.profile.person
                    facets = sorted(
                        answer.profile.convergence, key=lambda c: c.convergence, reverse=True
                    )
                    summary = ", ".join(f"{c.facet_id} {c.convergence:.2f}" for c in facets[:3])
                    print(
                        f"{answer.contact_id}: {person.display_name} "
                        f"({person.ref.source}:{person.ref.external_id}) "
                        f"convergence: {summary or 'none yet'}"
                    )
        except Unimplemented:
            print("MatchPeople is not implemented by this server yet; nothing was synced.")
            return 0
        except TrellisError as error:
            print(f"the sync failed: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
