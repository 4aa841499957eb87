/**
 * ServerService through the client: GetServerStatus on the suite's server, which has no
 * sentence-embedding model and so runs lexical-only.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { PlatformKind, type IngestRecord, type TrellisClient } from "@trellis/client";
import { freshWorkspace, startHarness, type Harness } from "./support.js";

describe("server status", () => {
  let harness: Harness;
  let client: TrellisClient;
  before(async () => {
    harness = await startHarness();
    client = harness.client({ timeoutMs: 20_000 });
  });
  after(() => harness?.close());

  test("getServerStatus says lexical-only and how to turn the semantic tier on", async () => {
    const status = await client.server.getServerStatus();
    assert.notEqual(status.version, "");
    assert.ok(status.semantic, "the status carries the semantic tier");
    assert.equal(status.semantic.enabled, false);
    assert.equal(status.semantic.modelId, "");
    const reason = status.semantic.lexicalOnlyReason;
    assert.notEqual(reason, "");
    assert.match(reason, /fetch-model|semantic/);
  });

  test("getServerStatus counts the conversations of each workspace", async () => {
    const workspace = freshWorkspace();
    const before = await client.server.getServerStatus();
    assert.ok(!before.workspaces.some((w) => w.workspace === workspace));

    const count = 4;
    const records: IngestRecord[] = [
      { person: { ref: { source: "forum", externalId: "u1" }, displayName: "Ana" } },
      ...Array.from({ length: count }, (_, i): IngestRecord => ({
        conversation: {
          ref: { source: "forum", externalId: `t${i}` },
          platform: PlatformKind.QA_FORUM,
          title: `Thread ${i} on tracing`,
          body: "How do we carry the trace context across the queue?",
        },
      })),
    ];
    const tally = await client.ingest.ingestRecords(records, { workspace });
    assert.equal(tally.inserted, BigInt(count + 1));

    const status = await client.server.getServerStatus();
    const mine = status.workspaces.find((w) => w.workspace === workspace);
    assert.ok(mine, `no status for ${workspace} among ${status.workspaces.map((w) => w.workspace).join(", ")}`);
    assert.equal(mine.conversations, BigInt(count));
    // Lexical-only: nothing gets embedded.
    assert.equal(mine.embeddedConversations, 0n);
    assert.ok(mine.pendingEmbeddings <= BigInt(count));
  });
});
