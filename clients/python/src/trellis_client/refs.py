"""Small constructors for the messages callers write most: record references and person
lookups. They accept the forms people already have at hand (``"forum:t2"``, an e-mail address)."""

from __future__ import annotations

import hashlib

from trellis.v1.common_pb2 import RecordRef
from trellis.v1.people_pb2 import PersonLookup

RefLike = RecordRef | str | tuple[str, str]
"""A record reference: a RecordRef, ``"source:external_id"``, or ``(source, external_id)``."""


def record_ref(value: RefLike) -> RecordRef:
    """A RecordRef from any RefLike form."""
    if isinstance(value, RecordRef):
        return value
    if isinstance(value, tuple):
        source, external_id = value
    else:
        source, sep, external_id = value.partition(":")
        if not sep:
            raise ValueError(
                f"record reference {value!r} has no source: write it as 'source:external_id', "
                "e.g. 'forum:t2'"
            )
    if not source or not external_id:
        raise ValueError(
            f"record reference {value!r} needs both a source and an external id, e.g. 'forum:t2'"
        )
    return RecordRef(source=source, external_id=external_id)


def email_sha256(email: str) -> str:
    """The lowercase hex SHA-256 of the trimmed, lowercased address: what Trellis stores instead
    of the address itself."""
    normalized = email.strip().lower()
    if "@" not in normalized:
        raise ValueError(f"email {email!r} is not an e-mail address: it needs an '@'")
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def by_ref(ref: RefLike) -> PersonLookup:
    """Find a person by the record they were ingested as."""
    return PersonLookup(ref=record_ref(ref))


def by_email(email: str) -> PersonLookup:
    """Find a person by e-mail address; only its hash leaves this process."""
    return PersonLookup(email_sha256=email_sha256(email))


def by_handle(handle: str) -> PersonLookup:
    """Find a person by a platform handle."""
    return PersonLookup(handle=handle)


def by_profile_url(url: str) -> PersonLookup:
    """Find a person by a profile URL."""
    return PersonLookup(profile_url=url)


def by_crm_id(crm_id: str) -> PersonLookup:
    """Find a person by an id in the organisation's CRM."""
    return PersonLookup(crm_id=crm_id)
