"""The small constructors: record references, e-mail hashes and person lookups."""

from __future__ import annotations

import hashlib

import pytest

from trellis_client import (
    by_crm_id,
    by_email,
    by_handle,
    by_profile_url,
    by_ref,
    email_sha256,
    record_ref,
)
from trellis_client.messages import RecordRef


def test_record_ref_forms() -> None:
    expected = RecordRef(source="forum", external_id="t2")
    assert record_ref("forum:t2") == expected
    assert record_ref(("forum", "t2")) == expected
    assert record_ref(expected) is expected
    # Only the first ':' separates: external ids may contain more.
    assert record_ref("web:https://x.example/a").external_id == "https://x.example/a"


@pytest.mark.parametrize("bad", ["t2", ":t2", "forum:", ("", "x")])
def test_record_ref_names_the_fix(bad: str | tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="forum:t2"):
        record_ref(bad)


def test_email_hash_is_of_the_trimmed_lowercased_address() -> None:
    expected = hashlib.sha256(b"ana@example.org").hexdigest()
    assert email_sha256("  Ana@Example.org ") == expected
    assert by_email("ana@example.org").email_sha256 == expected
    with pytest.raises(ValueError, match="needs an '@'"):
        email_sha256("ana")


def test_lookups_set_one_key() -> None:
    assert by_ref("forum:u-ana").WhichOneof("key") == "ref"
    assert by_handle("ana").WhichOneof("key") == "handle"
    assert by_profile_url("https://forum.example/u/ana").WhichOneof("key") == "profile_url"
    assert by_crm_id("crm-1001").WhichOneof("key") == "crm_id"
    assert by_email("a@b.example").WhichOneof("key") == "email_sha256"
