/**
 * SourceService through the client, against the real server with the real template connector
 * (plugins/template, connector `jsonl`) loaded from its plugin folder: sources are made from a
 * small JSON Lines file each test writes, checked, synced to the end with streamed progress,
 * listed, updated and deleted; a sync's stream is cancelled with an AbortSignal; bad requests
 * come back as TrellisError with the field violations the server names.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { Code, SyncStatus, TrellisError, type Source, type TrellisClient } from "@trellis/client";
import { freshWorkspace, startHarness, writeCommunity, type Harness } from "./support.js";

const connector = "jsonl";

/** Asserts that `promise` rejects with a TrellisError of `code`, and returns the error. */
async function failure(promise: Promise<unknown>, code: Code): Promise<TrellisError> {
  const error = await promise.then(
    () => assert.fail(`expected ${Code[code]}`),
    (thrown: unknown) => thrown,
  );
  assert.ok(error instanceof TrellisError, String(error));
  assert.equal(error.code, code, error.message);
  return error;
}

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of stream) items.push(item);
  return items;
}

describe("sources", () => {
  let harness: Harness;
  let client: TrellisClient;
  let folder: string;
  before(async () => {
    harness = await startHarness({ plugins: true });
    client = harness.client({ timeoutMs: 20_000 });
    folder = mkdtempSync(join(tmpdir(), "trellis-ts-sources-"));
  });
  after(async () => {
    await harness?.close();
    if (folder) rmSync(folder, { recursive: true, force: true });
  });

  test("listConnectors shows the template connector", async () => {
    const { connectors } = await client.sources.listConnectors({ workspace: freshWorkspace() });
    const jsonl = connectors.find((each) => each.name === connector);
    assert.ok(jsonl, `loaded: ${connectors.map((each) => each.name).join(", ")}`);
    assert.notEqual(jsonl.version, "");
    assert.ok(jsonl.abiMajor >= 1);
    assert.deepEqual((JSON.parse(jsonl.configSchemaJson) as { required: string[] }).required, ["path"]);
    assert.deepEqual([...jsonl.streams].sort(), ["assets", "conversations", "people", "posts"]);
  });

  test("a source is created, checked, synced, listed, updated and deleted", async () => {
    const workspace = freshWorkspace();
    const path = join(folder, "community.jsonl");
    const total = writeCommunity(path);
    const configJson = JSON.stringify({ path, batch_size: 2 });
    const created = await client.sources.createSource({ workspace, source: { id: "ts-src", connector, configJson } });
    assert.equal(created.source?.id, "ts-src");
    assert.equal(created.source?.status, SyncStatus.IDLE);
    assert.equal(created.source?.displayName, "ts-src", "the display name defaults to the id");

    const check = await client.sources.checkSource({ workspace, id: "ts-src" });
    assert.ok(check.ok, check.message);
    assert.match(check.message, /readable/);

    const progress = await collect(client.sources.syncSource({ workspace, id: "ts-src" }));
    assert.equal(progress[0]?.status, SyncStatus.RUNNING);
    const last = progress.at(-1)!;
    assert.equal(last.status, SyncStatus.SUCCEEDED, last.message);
    assert.equal(Number(last.recordsRead), total);
    // Batches of two records: a checkpoint after each, reported as it is committed.
    assert.ok(Number(last.checkpointsCommitted) >= Math.floor(total / 2), `${last.checkpointsCommitted} checkpoints`);
    const read = progress.map((each) => Number(each.recordsRead));
    assert.deepEqual(read, [...read].sort((a, b) => a - b), "progress only grows");

    const { source: synced } = await client.sources.getSource({ workspace, id: "ts-src" });
    assert.equal(synced?.status, SyncStatus.SUCCEEDED);
    assert.equal(Number(synced?.recordsSynced), total);
    assert.ok(synced?.lastSyncAt !== undefined);
    // The records are stored under the source's id.
    const stored = await client.ingest.getConversation({ workspace, ref: { source: "ts-src", externalId: "c0" } });
    assert.equal(stored.conversation?.title, "thread 0");
    assert.deepEqual(stored.posts.map((post) => post.text), ["use spans"]);

    // A second sync reads from where the first stopped; a full refresh reads everything again.
    const again = await collect(client.sources.syncSource({ workspace, id: "ts-src" }));
    assert.equal(again.at(-1)?.status, SyncStatus.SUCCEEDED);
    assert.equal(Number(again.at(-1)?.recordsRead), 0);
    const refreshed = await collect(client.sources.syncSource({ workspace, id: "ts-src", fullRefresh: true }));
    assert.equal(Number(refreshed.at(-1)?.recordsRead), total);

    await client.sources.createSource({ workspace, source: { id: "ts-src-2", connector, configJson } });
    const listed = await collect(client.sources.sources({ workspace, pageSize: 1 }));
    assert.deepEqual(listed.map((source) => source.id), ["ts-src", "ts-src-2"]);

    const update: Source = { ...synced!, displayName: "Community file", configJson: JSON.stringify({ path, batch_size: 50 }) };
    const updated = await client.sources.updateSource({ workspace, source: update });
    assert.equal(updated.source?.displayName, "Community file");
    const reread = await client.sources.getSource({ workspace, id: "ts-src" });
    assert.equal((JSON.parse(reread.source!.configJson) as { batch_size: number }).batch_size, 50);

    await client.sources.deleteSource({ workspace, id: "ts-src" });
    await failure(client.sources.getSource({ workspace, id: "ts-src" }), Code.NotFound);
    assert.deepEqual((await collect(client.sources.sources({ workspace }))).map((source) => source.id), ["ts-src-2"]);
  });

  test("aborting the progress stream cancels it; the sync goes on on the server", async () => {
    const workspace = freshWorkspace();
    const path = join(folder, "slow.jsonl");
    const total = writeCommunity(path, 20);
    // One record per batch, 100 ms apart: a sync of a few seconds.
    const configJson = JSON.stringify({ path, batch_size: 1, throttle_ms: 100 });
    await client.sources.createSource({ workspace, source: { id: "ts-slow", connector, configJson } });
    const abort = new AbortController();
    const seen: SyncStatus[] = [];
    const error = await (async () => {
      for await (const progress of client.sources.syncSource({ workspace, id: "ts-slow" }, { signal: abort.signal })) {
        seen.push(progress.status);
        abort.abort();
      }
    })().then(
      () => assert.fail("an aborted stream ends with an error"),
      (thrown: unknown) => thrown,
    );
    assert.ok(error instanceof TrellisError, String(error));
    assert.equal(error.code, Code.Canceled, error.message);
    assert.deepEqual(seen, [SyncStatus.RUNNING]);

    const running = await client.sources.getSource({ workspace, id: "ts-slow" });
    assert.equal(running.source?.status, SyncStatus.RUNNING);
    const refused = await failure(client.sources.deleteSource({ workspace, id: "ts-slow" }), Code.FailedPrecondition);
    assert.match(refused.rawMessage, /is syncing/);

    let source: Source | undefined = running.source;
    for (const deadline = Date.now() + 60_000; source?.status === SyncStatus.RUNNING && Date.now() < deadline; ) {
      await sleep(100);
      source = (await client.sources.getSource({ workspace, id: "ts-slow" })).source;
    }
    assert.equal(source?.status, SyncStatus.SUCCEEDED, source?.lastError);
    assert.equal(Number(source?.recordsSynced), total);
    await client.sources.deleteSource({ workspace, id: "ts-slow" });
  });

  test("a config against the schema is refused naming source.config_json", async () => {
    const workspace = freshWorkspace();
    const refused = await failure(
      client.sources.createSource({ workspace, source: { id: "ts-bad", connector, configJson: JSON.stringify({ batch_size: 0 }) } }),
      Code.InvalidArgument,
    );
    assert.deepEqual(refused.violations.map((violation) => violation.field), ["source.config_json"]);
    assert.match(refused.rawMessage, /path/);
    const notJson = await failure(
      client.sources.createSource({ workspace, source: { id: "ts-bad", connector, configJson: "{path" } }),
      Code.InvalidArgument,
    );
    assert.deepEqual(notJson.violations.map((violation) => violation.field), ["source.config_json"]);
    await failure(client.sources.getSource({ workspace, id: "ts-bad" }), Code.NotFound);
  });

  test("a config that does not work fails its check and its sync", async () => {
    const workspace = freshWorkspace();
    const missing = JSON.stringify({ path: join(folder, "no-such-file.jsonl") });
    const refused = await failure(
      client.sources.createSource({ workspace, source: { id: "ts-missing", connector, configJson: missing } }),
      Code.InvalidArgument,
    );
    assert.deepEqual(refused.violations.map((violation) => violation.field), ["source.config_json.path"]);
    assert.match(refused.violations[0]!.description, /does not exist/);
    // A file deleted after its source was made: the check and the sync fail, in the connector's words.
    const gone = join(folder, "gone.jsonl");
    writeFileSync(gone, "");
    const configJson = JSON.stringify({ path: gone });
    await client.sources.createSource({ workspace, source: { id: "ts-missing", connector, configJson } });
    rmSync(gone);
    const check = await client.sources.checkSource({ workspace, id: "ts-missing" });
    assert.equal(check.ok, false);
    assert.match(check.message, /cannot open/);
    const progress = await collect(client.sources.syncSource({ workspace, id: "ts-missing" }));
    assert.equal(progress.at(-1)?.status, SyncStatus.FAILED);
    const { source } = await client.sources.getSource({ workspace, id: "ts-missing" });
    assert.match(source?.lastError ?? "", /cannot open/);
  });

  test("an unknown connector is refused naming source.connector", async () => {
    const refused = await failure(
      client.sources.createSource({ workspace: freshWorkspace(), source: { id: "ts-x", connector: "no-such-connector", configJson: "{}" } }),
      Code.InvalidArgument,
    );
    assert.deepEqual(refused.violations.map((violation) => violation.field), ["source.connector"]);
    assert.match(refused.violations[0]!.description, /jsonl/, "it lists the loaded connectors");
  });

  test("a bad id is refused naming source.id", async () => {
    const refused = await failure(
      client.sources.createSource({ workspace: freshWorkspace(), source: { id: "Bad Id!", connector, configJson: "{}" } }),
      Code.InvalidArgument,
    );
    assert.ok(refused.violations.some((violation) => violation.field === "source.id"));
  });

  test("secrets are set alone, and only secret fields", async () => {
    const workspace = freshWorkspace();
    writeFileSync(join(folder, "x.jsonl"), "");
    const configJson = JSON.stringify({ path: join(folder, "x.jsonl") });
    await client.sources.createSource({ workspace, source: { id: "ts-secrets", connector, configJson } });
    const refused = await failure(
      client.sources.setSourceSecrets({ workspace, id: "ts-secrets", set: { path: "elsewhere" } }),
      Code.InvalidArgument,
    );
    assert.deepEqual(refused.violations.map((violation) => violation.field), ["secrets.path"]);
    await failure(client.sources.setSourceSecrets({ workspace, id: "missing", clear: ["api_key"] }), Code.NotFound);
    const source = await client.sources.getSource({ workspace, id: "ts-secrets" });
    assert.deepEqual(source.source?.secrets, []);
  });

  test("calls on a missing source are NOT_FOUND", async () => {
    const workspace = freshWorkspace();
    const id = "missing";
    await failure(client.sources.getSource({ workspace, id }), Code.NotFound);
    await failure(client.sources.checkSource({ workspace, id }), Code.NotFound);
    await failure(client.sources.deleteSource({ workspace, id }), Code.NotFound);
    writeFileSync(join(folder, "x.jsonl"), "");
    const configJson = JSON.stringify({ path: join(folder, "x.jsonl") });
    await failure(client.sources.updateSource({ workspace, source: { id, connector, configJson } }), Code.NotFound);
    await failure(collect(client.sources.syncSource({ workspace, id })), Code.NotFound);
  });

  test("sources() of a workspace without sources is empty", async () => {
    assert.deepEqual(await collect(client.sources.sources({ workspace: freshWorkspace() })), []);
  });
});
