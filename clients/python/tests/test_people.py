"""PeopleService through the client. The server does not implement it yet: every test here
skips on UNIMPLEMENTED, and starts running the day it lands."""

from __future__ import annotations

import pytest

from support import skip_unimplemented, unimplemented_skips
from trellis_client import Client, NotFound, by_crm_id, by_email, by_handle, by_ref
from trellis_client.messages import MatchPeopleRequest, Person, PersonLookup, RecordRef


def test_get_person(loaded: Client) -> None:
    profile = skip_unimplemented(lambda: loaded.get_person("forum:u-ana"))
    assert profile.person.display_name == "Ana"
    assert profile.person.member


def test_get_person_that_does_not_exist(loaded: Client) -> None:
    with unimplemented_skips(), pytest.raises(NotFound):
        loaded.get_person("forum:nobody")


def test_list_people_iterates_every_page(loaded: Client) -> None:
    people = skip_unimplemented(lambda: list(loaded.list_people(page_size=2)))
    names = {p.display_name for p in people}
    assert {"Ana", "Ben", "Chen", "Dora", "Eli"} <= names
    assert len(people) == len({(p.ref.source, p.ref.external_id) for p in people})
    members = list(loaded.list_people(member=True, page_size=2))
    assert members and all(p.member for p in members)
    outsiders = list(loaded.list_people(member=False))
    assert outsiders and not any(p.member for p in outsiders)


def test_match_person_by_each_key(loaded: Client) -> None:
    found = skip_unimplemented(lambda: loaded.match_person(by_crm_id("crm-1001")))
    assert found.found and found.profile.person.ref.external_id == "u-ana"
    assert loaded.match_person(by_handle("ben")).profile.person.display_name == "Ben"
    assert loaded.match_person(by_ref("forum:u-chen")).found
    missing = loaded.match_person(by_email("nobody@example.org"))
    assert not missing.found


def test_match_people_streams_one_answer_per_contact(loaded: Client) -> None:
    contacts = {
        "c-1": by_crm_id("crm-1001"),
        "c-2": by_handle("ben"),
        "c-3": by_email("nobody@example.org"),
    }
    with unimplemented_skips():
        answers = {a.contact_id: a for a in loaded.match_people(contacts)}
    assert set(answers) == set(contacts)
    assert answers["c-1"].found and answers["c-1"].profile.person.display_name == "Ana"
    assert answers["c-2"].found
    assert not answers["c-3"].found


def test_match_people_takes_pairs_and_requests(loaded: Client) -> None:
    contacts: list[tuple[str, PersonLookup] | MatchPeopleRequest] = [
        ("a", by_crm_id("crm-1002")),
        MatchPeopleRequest(contact_id="b", lookup=by_handle("ana")),
    ]
    with unimplemented_skips():
        answers = [a.contact_id for a in loaded.match_people(contacts)]
    assert sorted(answers) == ["a", "b"]


def test_match_people_rejects_what_is_not_a_contact(loaded: Client) -> None:
    # While the server answers UNIMPLEMENTED at once, that answer can beat the first request.
    with unimplemented_skips(), pytest.raises(TypeError, match="contact 0 is a str"):
        list(loaded.match_people(["not a contact"]))  # type: ignore[list-item]


def test_merge_and_unmerge(loaded: Client) -> None:
    merge = skip_unimplemented(
        lambda: loaded.merge_people("forum:u-ben", ["social:p-eli"], reason="same person")
    )
    assert merge.merge_id
    merged = loaded.get_person("forum:u-ben")
    assert RecordRef(source="social", external_id="p-eli") in merged.merged
    loaded.unmerge_people(merge.merge_id)
    assert (
        RecordRef(source="social", external_id="p-eli")
        not in loaded.get_person("forum:u-ben").merged
    )
    trail = loaded.list_merges(person="social:p-eli")
    assert [record.merge_id for record in trail] == [merge.merge_id]
    assert trail[0].HasField("undone_at")
    assert merge.merge_id not in {m.merge_id for m in loaded.list_merges(active_only=True)}


def test_forget_person(loaded: Client) -> None:
    loaded.ingest([Person(ref=RecordRef(source="crm", external_id="gone"), display_name="Gone")])
    forgotten = skip_unimplemented(lambda: loaded.forget_person("crm:gone"))
    assert forgotten.posts_removed == 0
    with pytest.raises(NotFound):
        loaded.get_person("crm:gone")
