/** PeopleService through the client; skipped per RPC while the server answers UNIMPLEMENTED. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { MATCH_IN_FLIGHT, type MatchContact, type TrellisClient } from "@trellis/client";
import { collectUnlessUnimplemented, freshWorkspace, seed, startHarness, unlessUnimplemented, type Harness } from "./support.js";

describe("people", () => {
  let harness: Harness;
  let client: TrellisClient;
  let workspace: string;
  before(async () => {
    harness = await startHarness();
    workspace = freshWorkspace("people");
    client = harness.client({ workspace });
    await seed(client, workspace);
  });
  after(() => harness?.close());

  test("getPerson", async (t) => {
    const response = await unlessUnimplemented(t, () => client.people.getPerson({ ref: { source: "forum", externalId: "u-ana" } }));
    if (!response) return;
    assert.equal(response.profile?.person?.displayName, "Ana");
  });

  test("people() walks every page of listPeople", async (t) => {
    const people = await collectUnlessUnimplemented(t, client.people.people({ pageSize: 1 }));
    if (!people) return;
    assert.deepEqual(people.map((person) => person.ref?.externalId).sort(), ["u-ana", "u-ben"]);
    const members = await collectUnlessUnimplemented(t, client.people.people({ member: true }));
    assert.equal(members?.length, 2);
  });

  test("matchPerson by CRM id", async (t) => {
    const response = await unlessUnimplemented(t, () =>
      client.people.matchPerson({ lookup: { key: { case: "crmId", value: "crm-1001" } }, suggestionLimit: 3 }),
    );
    if (!response) return;
    assert.equal(response.found, true);
    assert.equal(response.profile?.person?.ref?.externalId, "u-ana");
  });

  test("matchContacts streams many contacts over one bidirectional stream", async (t) => {
    async function* contacts(): AsyncGenerator<MatchContact> {
      yield { contactId: "1", lookup: { key: { case: "handle", value: "ana" } } };
      yield { contactId: "2", lookup: { key: { case: "crmId", value: "crm-9999" } } };
      yield {
        contactId: "3",
        lookup: { key: { case: "emailSha256", value: createHash("sha256").update("nobody@example.com").digest("hex") } },
      };
    }
    const answers = await collectUnlessUnimplemented(t, client.people.matchContacts(contacts()));
    if (!answers) return;
    const byContact = new Map(answers.map((answer) => [answer.contactId, answer]));
    assert.deepEqual([...byContact.keys()].sort(), ["1", "2", "3"]);
    assert.equal(byContact.get("1")?.found, true);
    assert.equal(byContact.get("2")?.found, false);
  });

  /**
   * Counts the contacts matchContacts has taken from its iterable and the answers the test has
   * read, and the most that were ever out at once. Contact i looks up knownHandles[i % 5] for
   * i % 5 < 4 and a handle nobody has for the fifth.
   */
  const knownHandles = ["ana", "ben", "chen", "dora"];
  const bulkHandle = (i: number): string => (i % 5 < 4 ? knownHandles[i % 5]! : `nobody-${i}`);
  function bulkWindow(count: number) {
    const window = {
      pulled: 0,
      answered: 0,
      widest: 0,
      *contacts(): Generator<MatchContact> {
        for (let i = 0; i < count; i++) {
          window.pulled++;
          window.widest = Math.max(window.widest, window.pulled - window.answered);
          yield { contactId: String(i), lookup: { key: { case: "handle", value: bulkHandle(i) } } };
        }
      },
    };
    return window;
  }

  test("matchContacts streams 100,000 contacts over one call within the in-flight window", async (t) => {
    // The fixture community has two of the four handles: add the other two.
    const bulk = freshWorkspace("bulk");
    const bulkClient = harness.client({ workspace: bulk });
    await seed(bulkClient, bulk);
    const tally = await bulkClient.ingest.ingestRecords(
      ["chen", "dora"].map((handle) => ({
        person: { ref: { source: "forum", externalId: `u-${handle}` }, displayName: handle, identities: [{ platform: "forum", handle }] },
      })),
      { workspace: bulk },
    );
    assert.deepEqual(tally.errors, []);

    const count = 100_000;
    const window = bulkWindow(count);
    const seen = new Uint8Array(count);
    const started = performance.now();
    const done = await unlessUnimplemented(t, async () => {
      for await (const answer of bulkClient.people.matchContacts(window.contacts())) {
        window.answered++;
        const i = Number(answer.contactId);
        assert.equal(seen[i], 0, `contact ${i} answered twice`);
        seen[i] = 1;
        assert.equal(answer.error, "", `contact ${i}: ${answer.error}`);
        assert.equal(answer.found, i % 5 < 4, `contact ${i} (${bulkHandle(i)}) found=${answer.found}`);
      }
      return true;
    });
    if (!done) return;
    const seconds = (performance.now() - started) / 1000;
    assert.equal(window.answered, count);
    assert.ok(seen.every((once) => once === 1), "every contact answered");
    // The test counts an answer just after the client gives its slot back: allow a few between.
    assert.ok(window.widest <= MATCH_IN_FLIGHT + 8, `${window.widest} contacts in flight`);
    t.diagnostic(
      `${count} contacts in ${seconds.toFixed(1)} s, ${Math.round(count / seconds)} contacts/s, at most ${window.widest} in flight`,
    );
  });

  test("matchContacts keeps at most inFlight contacts unanswered", async (t) => {
    const window = bulkWindow(500);
    const done = await unlessUnimplemented(t, async () => {
      for await (const _ of client.people.matchContacts(window.contacts(), { inFlight: 3 })) window.answered++;
      return true;
    });
    if (!done) return;
    assert.equal(window.answered, 500);
    assert.ok(window.widest <= 3 + 1, `${window.widest} contacts in flight`);
  });

  test("matchContacts refuses a window of nothing", () => {
    for (const inFlight of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => client.people.matchContacts([], { inFlight }), RangeError);
    }
  });

  test("matchContacts stops reading contacts when the caller stops early", async (t) => {
    let finished = false;
    function* endless(): Generator<MatchContact> {
      try {
        for (let i = 0; ; i++) yield { contactId: String(i), lookup: { key: { case: "handle", value: "ana" } } };
      } finally {
        finished = true;
      }
    }
    let answers = 0;
    const done = await unlessUnimplemented(t, async () => {
      for await (const _ of client.people.matchContacts(endless(), { inFlight: 10 })) {
        if (++answers === 3) break;
      }
      return true;
    });
    if (!done) return;
    // Leaving the loop closes the window: the request side, waiting for a slot, gives up.
    for (let waited = 0; !finished && waited < 10_000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.ok(finished, "the contacts were still being read after the caller stopped");
  });

  test("mergePeople then unmergePeople", async (t) => {
    const merged = await unlessUnimplemented(t, () =>
      client.people.mergePeople({
        target: { source: "forum", externalId: "u-ana" },
        others: [{ source: "forum", externalId: "u-ben" }],
        reason: "test merge",
      }),
    );
    if (!merged) return;
    assert.notEqual(merged.mergeId, "");
    const unmerged = await unlessUnimplemented(t, () => client.people.unmergePeople({ mergeId: merged.mergeId }));
    assert.ok(unmerged);
    const trail = await client.people.listMerges({ person: { source: "forum", externalId: "u-ben" } });
    const record = trail.merges.find((merge) => merge.mergeId === merged.mergeId);
    assert.ok(record, "the merge is in the audit trail");
    assert.ok(record.undoneAt, "and it says it was undone");
    // Merged again and undone again: the trail, a merge a page, holds both, newest first.
    const again = await client.people.mergePeople({
      target: { source: "forum", externalId: "u-ana" },
      others: [{ source: "forum", externalId: "u-ben" }],
      reason: "test merge again",
    });
    await client.people.unmergePeople({ mergeId: again.mergeId });
    const paged: string[] = [];
    for await (const merge of client.people.merges({ person: { source: "forum", externalId: "u-ben" }, pageSize: 1 })) {
      paged.push(merge.mergeId);
    }
    const ours = paged.filter((id) => id === again.mergeId || id === merged.mergeId);
    assert.deepEqual(ours, [again.mergeId, merged.mergeId]);
  });

  test("forgetPerson", async (t) => {
    const own = freshWorkspace("forget");
    await seed(client, own);
    const response = await unlessUnimplemented(t, () =>
      client.people.forgetPerson({ workspace: own, ref: { source: "forum", externalId: "u-ben" } }),
    );
    if (!response) return;
    assert.ok(response.postsRemoved >= 1n);
  });
});
