/**
 * Auth failures against a real server that requires API keys: keys are made and revoked with the
 * real `trellis keys` on that server's database, and each refusal rejects with a `TrellisError`
 * of its code, without being retried.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as wait } from "node:timers/promises";
import { Code, TrellisError, type RetryEvent, type TrellisClientOptions } from "@trellis/client";
import { authConfig, createKey, revokeKey } from "./server.js";
import { freshWorkspace, startHarness, strategy, type Harness } from "./support.js";

/** Asserts that `call` rejects with a TrellisError of `code`, and returns it. */
async function refused(call: Promise<unknown>, code: Code): Promise<TrellisError> {
  const outcome = await call.then(
    () => undefined,
    (error: unknown) => error,
  );
  assert.ok(outcome instanceof TrellisError, `the call succeeded or failed otherwise: ${String(outcome)}`);
  assert.equal(outcome.code, code, outcome.message);
  return outcome;
}

describe("auth", () => {
  let harness: Harness;
  before(async () => {
    harness = await startHarness({ config: authConfig() });
  });
  after(() => harness?.close());

  /** A client whose retries on UNAVAILABLE are fast and recorded in `events`, to show none happen. */
  function client(events: RetryEvent[], options: TrellisClientOptions) {
    return harness.client({ timeoutMs: 20_000, retry: { maxAttempts: 4, initialBackoffMs: 10, onRetry: (event) => events.push(event) }, ...options });
  }

  test("a valid write key works", async () => {
    const workspace = freshWorkspace("auth");
    const key = createKey(harness.server, workspace, "write");
    const writer = client([], { token: key.key, workspace });
    const put = await writer.strategy.putStrategy({ strategy });
    assert.equal(put.strategyVersion?.version, 1);
    const got = await writer.strategy.getStrategy();
    assert.equal(got.strategyVersion?.version, 1);
    const versions = [];
    for await (const version of writer.strategy.versions()) versions.push(version.version);
    assert.deepEqual(versions, [1]);
  });

  test("no token is UNAUTHENTICATED and not retried", async () => {
    const events: RetryEvent[] = [];
    const anonymous = client(events, { workspace: freshWorkspace("auth") });
    const error = await refused(anonymous.strategy.getStrategy(), Code.Unauthenticated);
    assert.match(error.rawMessage, /requires an api key/);
    assert.equal(error.codeName, "UNAUTHENTICATED");
    assert.deepEqual(events, []);
  });

  for (const [name, token] of [
    ["garbage", "not-a-key"],
    ["well-formed but unknown", `trk_0123456789abcdef_${"0".repeat(64)}`],
  ] as const) {
    test(`a ${name} token is UNAUTHENTICATED`, async () => {
      const events: RetryEvent[] = [];
      const stranger = client(events, { token, workspace: freshWorkspace("auth") });
      await refused(stranger.strategy.getStrategy(), Code.Unauthenticated);
      assert.deepEqual(events, []);
    });
  }

  test("a key id with a wrong secret is UNAUTHENTICATED", async () => {
    const workspace = freshWorkspace("auth");
    const key = createKey(harness.server, workspace, "read");
    const forger = client([], { token: `trk_${key.id}_${"f".repeat(64)}`, workspace });
    await refused(forger.strategy.getStrategy(), Code.Unauthenticated);
  });

  test("a revoked key stops working at once", async () => {
    const workspace = freshWorkspace("auth");
    const key = createKey(harness.server, workspace, "write");
    const events: RetryEvent[] = [];
    const holder = client(events, { token: key.key, workspace });
    await holder.strategy.putStrategy({ strategy });
    revokeKey(harness.server, key);
    const error = await refused(holder.strategy.getStrategy(), Code.Unauthenticated);
    assert.match(error.rawMessage, /revoked/);
    assert.deepEqual(events, []);
  });

  test("a read key calling a write RPC is PERMISSION_DENIED", async () => {
    const workspace = freshWorkspace("auth");
    const writer = client([], { token: createKey(harness.server, workspace, "write").key, workspace });
    await writer.strategy.putStrategy({ strategy });
    const events: RetryEvent[] = [];
    const reader = client(events, { token: createKey(harness.server, workspace, "read").key, workspace });
    const got = await reader.strategy.getStrategy();
    assert.equal(got.strategyVersion?.version, 1, "reading is allowed");
    const error = await refused(reader.strategy.putStrategy({ strategy }), Code.PermissionDenied);
    assert.match(error.rawMessage, /needs a write key/);
    assert.deepEqual(events, []);
  });

  test("a key of workspace A reading workspace B is PERMISSION_DENIED", async () => {
    const home = freshWorkspace("auth");
    const other = freshWorkspace("auth");
    const events: RetryEvent[] = [];
    const admin = client(events, { token: createKey(harness.server, home, "admin").key, workspace: home });
    await admin.strategy.putStrategy({ strategy });
    const error = await refused(admin.strategy.getStrategy({ workspace: other }), Code.PermissionDenied);
    assert.ok(error.rawMessage.includes(`cannot reach workspace "${other}"`), error.rawMessage);
    const listing = (async () => {
      for await (const version of admin.strategy.versions({ workspace: other })) assert.fail(`listed ${version.version}`);
    })();
    await refused(listing, Code.PermissionDenied);
    assert.deepEqual(events, []);
  });
});

describe("auth with a rate limit", () => {
  let harness: Harness;
  before(async () => {
    harness = await startHarness({ config: authConfig(1, 1) });
  });
  after(() => harness?.close());

  test("over the limit is RESOURCE_EXHAUSTED with the delay, not retried", async () => {
    const workspace = freshWorkspace("limit");
    const events: RetryEvent[] = [];
    const limited = harness.client({
      token: createKey(harness.server, workspace, "write").key,
      workspace,
      retry: { maxAttempts: 4, initialBackoffMs: 10, onRetry: (event) => events.push(event) },
    });
    await limited.strategy.putStrategy({ strategy });
    const error = await refused(limited.strategy.getStrategy(), Code.ResourceExhausted);
    assert.match(error.rawMessage, /rate limit/);
    const delay = error.retryAfterMs;
    assert.ok(delay !== undefined && delay > 0 && delay <= 1_000, `retryAfterMs ${delay}`);
    assert.deepEqual(events, [], "RESOURCE_EXHAUSTED is not retried");
    await wait(delay + 50);
    const got = await limited.strategy.getStrategy();
    assert.equal(got.strategyVersion?.version, 1, "the delay was enough");
  });
});
