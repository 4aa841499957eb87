/** PeopleService through the client; skipped per RPC while the server answers UNIMPLEMENTED. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { MatchContact, TrellisClient } from "@trellis/client";
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
