/** InsightService through the client: every RPC, the unimplemented ones skipped until served. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code, ConnectionClass, PlatformKind, TrellisError, type TrellisClient } from "@trellis/client";
import { freshWorkspace, seed, startHarness, unlessUnimplemented, type Harness } from "./support.js";

describe("insight", () => {
  let harness: Harness;
  let client: TrellisClient;
  let workspace: string;
  before(async () => {
    harness = await startHarness();
    workspace = freshWorkspace("insight");
    client = harness.client({ workspace });
    await seed(client, workspace);
  });
  after(() => harness?.close());

  test("scoreConversations scores stored conversations and raw texts, with evidence", async () => {
    const response = await client.insight.scoreConversations({
      conversations: [{ source: "forum", externalId: "t2" }],
      texts: [
        { title: "Where did my spans go?", body: "OpenTelemetry context propagation breaks at the collector." },
        { title: "Cake", body: "My grandmother's recipe for lemon cake." },
      ],
    });
    assert.equal(response.scores.length, 3);
    const [stored, related, unrelated] = response.scores;
    assert.equal(stored!.conversation?.externalId, "t2");
    assert.ok(related!.relevance > unrelated!.relevance, `${related!.relevance} > ${unrelated!.relevance}`);
    assert.equal(unrelated!.class, ConnectionClass.OFF_STRATEGY);
    const opentelemetry = related!.facets.find((facet) => facet.facetId === "opentelemetry");
    assert.ok(opentelemetry?.evidence, "the connecting facet carries its evidence");
    assert.ok(opentelemetry.evidence.terms.length > 0);
    assert.equal(related!.strategyVersion, 1);
  });

  test("listStrategicConversations ranks the stored conversations with reasons", async () => {
    const response = await client.insight.listStrategicConversations({ limit: 5, minRelevance: 0 });
    assert.ok(response.conversations.length > 0);
    const top = response.conversations[0]!;
    assert.equal(top.platform, PlatformKind.QA_FORUM);
    assert.ok(top.engagement, "each conversation carries its engagement");
    for (let index = 1; index < response.conversations.length; index++) {
      assert.ok(response.conversations[index - 1]!.priority >= response.conversations[index]!.priority, "ordered by priority");
    }
  });

  test("auditCommunityDesign names what the mission leaves out", async () => {
    const response = await client.insight.auditCommunityDesign({ mission: "Engineers help each other with OpenTelemetry instrumentation." });
    assert.ok(response.alignment >= 0 && response.alignment <= 1);
    assert.equal(response.facets.length, 3);
    assert.ok(response.findings.length > 0);
    const served = response.facets.find((facet) => facet.facetId === "opentelemetry");
    assert.ok(served?.served, "the mission speaks to opentelemetry");
  });

  test("auditCommunityDesign without a mission is refused naming the field", async () => {
    await assert.rejects(client.insight.auditCommunityDesign({ mission: "" }), (error: unknown) => {
      assert.ok(error instanceof TrellisError);
      assert.equal(error.code, Code.InvalidArgument);
      assert.deepEqual(error.violations.map((violation) => violation.field), ["mission"]);
      return true;
    });
  });

  test("suggestDiscussions", async (t) => {
    const response = await unlessUnimplemented(t, () =>
      client.insight.suggestDiscussions({ person: { source: "forum", externalId: "u-ben" }, limit: 3 }),
    );
    if (!response) return;
    // Ben opened t1 and replied in t2: the fixture holds nothing he has not joined already.
    const joined = new Set(["t1", "t2"]);
    for (const discussion of response.join) {
      assert.ok(!joined.has(discussion.conversation?.externalId ?? ""), "never suggests what he is in");
    }
    for (const topic of response.start) {
      assert.ok(["debug-incidents", "low-overhead-tracing", "opentelemetry"].includes(topic.facetId), topic.facetId);
      assert.ok(topic.suggestedTitle.length > 0);
    }
  });

  test("suggestParticipants", async (t) => {
    const response = await unlessUnimplemented(t, () =>
      client.insight.suggestParticipants({ conversation: { source: "forum", externalId: "t2" }, limit: 3 }),
    );
    if (!response) return;
    assert.ok(response.participants.every((participant) => participant.person !== undefined));
  });

  test("findSupportingAssets", async (t) => {
    const response = await unlessUnimplemented(t, () =>
      client.insight.findSupportingAssets({ context: { case: "conversation", value: { source: "forum", externalId: "t2" } }, limit: 3 }),
    );
    if (!response) return;
    assert.ok(response.assets.length <= 1, "the community has one asset");
    for (const supporting of response.assets) {
      assert.equal(supporting.asset?.ref?.externalId, "a1");
      assert.ok(supporting.reasons.length > 0 || supporting.evidence.length > 0, "an asset comes with why it supports the message");
    }
  });

  test("findProspects", async (t) => {
    const response = await unlessUnimplemented(t, () => client.insight.findProspects({ limit: 3 }));
    if (!response) return;
    assert.ok(response.prospects.every((prospect) => prospect.person?.member === false));
    assert.ok(response.prospects.every((prospect) => (prospect.invitation?.draftMessage ?? "").length > 0));
  });

  test("recommendPlatformMix", async (t) => {
    const response = await unlessUnimplemented(t, () => client.insight.recommendPlatformMix({}));
    if (!response) return;
    assert.ok(response.platforms.some((platform) => platform.platform === PlatformKind.QA_FORUM));
  });

  test("planActions", async (t) => {
    const response = await unlessUnimplemented(t, () => client.insight.planActions({ platform: PlatformKind.QA_FORUM, limit: 3 }));
    if (!response) return;
    assert.ok(response.actions.every((action) => action.draftText !== ""));
  });
});
