/** IngestService through the client: streaming ingest from iterables, errors, deadlines. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code, TrellisError, type IngestRecord, type TrellisClient } from "@trellis/client";
import { community, freshWorkspace, startHarness, strategy, type Harness } from "./support.js";

describe("ingest", () => {
  let harness: Harness;
  let client: TrellisClient;
  before(async () => {
    harness = await startHarness();
    client = harness.client();
  });
  after(() => harness?.close());

  test("ingestRecords streams an array and the server tallies it", async () => {
    const workspace = freshWorkspace();
    await client.strategy.putStrategy({ workspace, strategy });
    const tally = await client.ingest.ingestRecords(community, { workspace });
    assert.equal(tally.received, BigInt(community.length));
    assert.equal(tally.inserted, BigInt(community.length));
    assert.deepEqual(tally.errors, []);

    const again = await client.ingest.ingestRecords(community, { workspace });
    assert.equal(again.unchanged, BigInt(community.length), "ingest is idempotent by (source, external id)");
    assert.equal(again.inserted, 0n);
  });

  test("ingestRecords takes an async generator, read as the server pulls", async () => {
    const workspace = freshWorkspace();
    let produced = 0;
    async function* slowly(): AsyncGenerator<IngestRecord> {
      for (const record of community) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        produced++;
        yield record;
      }
    }
    const tally = await client.ingest.ingestRecords(slowly(), { workspace });
    assert.equal(produced, community.length);
    assert.equal(tally.received, BigInt(community.length));
  });

  test("bad records are reported by position and field; the good ones are stored", async () => {
    const workspace = freshWorkspace();
    const records: IngestRecord[] = [
      community[2]!,
      { conversation: { ref: { source: "forum", externalId: "" }, title: "no id" } },
      { post: { ref: { source: "bad:source", externalId: "x" }, conversation: "t1", text: "hello" } },
    ];
    const tally = await client.ingest.ingestRecords(records, { workspace });
    assert.equal(tally.received, 3n);
    assert.equal(tally.inserted, 1n);
    assert.deepEqual(
      tally.errors.map((error) => error.position),
      [1n, 2n],
    );
    for (const error of tally.errors) {
      assert.notEqual(error.field, "", "each refused record names its field");
      assert.notEqual(error.reason, "");
    }
  });

  test("the raw ingest stream takes IngestRequest messages", async () => {
    const workspace = freshWorkspace();
    const tally = await client.ingest.ingest([
      { workspace, record: { case: "person", value: { ref: { source: "crm", externalId: "c-1" }, displayName: "Cleo" } } },
    ]);
    assert.equal(tally.inserted, 1n);
  });

  test("getConversation returns the conversation with its posts", async () => {
    const workspace = freshWorkspace();
    await client.ingest.ingestRecords(community, { workspace });
    const got = await client.ingest.getConversation({ workspace, ref: { source: "forum", externalId: "t1" } });
    assert.equal(got.conversation?.title, "How do I find which service causes a latency spike?");
    assert.deepEqual(got.posts.map((post) => post.ref?.externalId), ["p1"]);
  });

  test("a missing conversation answers NOT_FOUND; a missing ref names the field", async () => {
    const workspace = freshWorkspace();
    await assert.rejects(client.ingest.getConversation({ workspace, ref: { source: "forum", externalId: "nope" } }), (error: unknown) => {
      assert.ok(error instanceof TrellisError);
      assert.equal(error.code, Code.NotFound);
      return true;
    });
    await assert.rejects(client.ingest.getConversation({ workspace }), (error: unknown) => {
      assert.ok(error instanceof TrellisError);
      assert.equal(error.code, Code.InvalidArgument);
      assert.deepEqual(error.violations.map((violation) => violation.field), ["ref"]);
      return true;
    });
  });

  test("a stream that outlives its deadline fails with DEADLINE_EXCEEDED", async () => {
    const workspace = freshWorkspace();
    const stop = new AbortController();
    async function* neverEnding(): AsyncGenerator<IngestRecord> {
      yield community[0]!;
      await new Promise((resolve) => stop.signal.addEventListener("abort", resolve, { once: true }));
    }
    const started = Date.now();
    await assert.rejects(client.ingest.ingestRecords(neverEnding(), { workspace, timeoutMs: 300 }), (error: unknown) => {
      assert.ok(error instanceof TrellisError, String(error));
      assert.equal(error.code, Code.DeadlineExceeded);
      return true;
    });
    stop.abort();
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 250 && elapsed < 10_000, `the deadline fired after ${elapsed} ms`);
  });

  test("a record with no kind is refused before anything is sent", async () => {
    await assert.rejects(client.ingest.ingestRecords([{} as IngestRecord]), (error: unknown) => {
      assert.ok(error instanceof TrellisError);
      assert.match(error.message, /one of person, conversation, post or asset/);
      return true;
    });
  });
});
