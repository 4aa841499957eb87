"""PeopleService through the client. The server does not implement it yet: every test here
skips on UNIMPLEMENTED, and starts running the day it lands."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from support import skip_unimplemented, unimplemented_skips
from trellis_client import (
    MATCH_IN_FLIGHT,
    Client,
    NotFound,
    by_crm_id,
    by_email,
    by_handle,
    by_ref,
)
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


KNOWN_HANDLES = ("ana", "ben", "chen", "dora")
"""Handles of the example community; bulk contact i looks up KNOWN_HANDLES[i % 5] for i % 5 < 4
and a handle nobody has for the fifth."""


def _bulk_handle(i: int) -> str:
    return KNOWN_HANDLES[i % 5] if i % 5 < 4 else f"nobody-{i}"


class _Window:
    """Counts the contacts match_people has taken from its iterable and the answers the test has
    read, and the most that were ever out at once."""

    def __init__(self) -> None:
        self.pulled = 0
        self.answered = 0
        self.widest = 0

    def contacts(self, count: int) -> Iterator[tuple[str, PersonLookup]]:
        for i in range(count):
            self.pulled += 1
            self.widest = max(self.widest, self.pulled - self.answered)
            yield str(i), by_handle(_bulk_handle(i))


def test_match_people_streams_100k_contacts_in_one_call_within_the_window(
    loaded: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    count = 100_000
    window = _Window()
    seen = bytearray(count)
    started = time.monotonic()
    with unimplemented_skips():
        for answer in loaded.match_people(window.contacts(count), timeout=600):
            window.answered += 1
            i = int(answer.contact_id)
            assert seen[i] == 0, f"contact {i} answered twice"
            seen[i] = 1
            assert not answer.error, f"contact {i}: {answer.error}"
            assert answer.found == (i % 5 < 4), f"contact {i} ({_bulk_handle(i)}) {answer}"
    seconds = time.monotonic() - started
    assert window.answered == count
    assert all(seen)
    # The answers are counted after the client gives their slots back: allow a few in between.
    assert window.widest <= MATCH_IN_FLIGHT + 8, window.widest
    with capsys.disabled():
        print(
            f"\nmatch_people: {count} contacts in {seconds:.1f} s, {count / seconds:,.0f} "
            f"contacts/s, at most {window.widest} in flight"
        )


def test_match_people_keeps_at_most_in_flight_contacts_unanswered(loaded: Client) -> None:
    window = _Window()
    with unimplemented_skips():
        for _ in loaded.match_people(window.contacts(500), in_flight=3):
            window.answered += 1
    assert window.answered == 500
    assert window.widest <= 3 + 1, window.widest


def test_match_people_refuses_a_window_of_nothing(loaded: Client) -> None:
    for bad in (0, -1):
        with pytest.raises(ValueError, match="in_flight"):
            loaded.match_people({"c": by_handle("ana")}, in_flight=bad)


def test_match_people_ends_the_contacts_when_the_caller_stops_early(loaded: Client) -> None:
    finished = threading.Event()

    def endless() -> Iterator[tuple[str, PersonLookup]]:
        try:
            i = 0
            while True:
                yield str(i), by_handle("ana")
                i += 1
        finally:
            finished.set()

    with unimplemented_skips():
        for count, _ in enumerate(loaded.match_people(endless(), in_flight=10), start=1):
            if count == 3:
                break
    # Leaving the loop closes the answers and so the window: the sender, waiting for a slot,
    # gives up, and the contacts are read no further.
    assert finished.wait(10), "the contacts were still being read after the caller stopped"


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
    trail = list(loaded.list_merges(person="social:p-eli"))
    assert [record.merge_id for record in trail] == [merge.merge_id]
    assert trail[0].HasField("undone_at")
    assert merge.merge_id not in {m.merge_id for m in loaded.list_merges(active_only=True)}
    # Merged again and undone again: the trail, a merge a page, holds both, newest first.
    again = loaded.merge_people("forum:u-ben", ["social:p-eli"], reason="same person again")
    loaded.unmerge_people(again.merge_id)
    paged = [m.merge_id for m in loaded.list_merges(person="social:p-eli", page_size=1)]
    assert paged == [again.merge_id, merge.merge_id]


def test_forget_person(loaded: Client) -> None:
    loaded.ingest([Person(ref=RecordRef(source="crm", external_id="gone"), display_name="Gone")])
    forgotten = skip_unimplemented(lambda: loaded.forget_person("crm:gone"))
    assert forgotten.posts_removed == 0
    with pytest.raises(NotFound):
        loaded.get_person("crm:gone")
