/**
 * What the client adds around calls, shown over real connections: the bearer token, TLS,
 * retries with backoff on UNAVAILABLE (and only where safe), and deadlines.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code, TrellisClient, TrellisError, backoffMs, defaultRetryPolicy, type RetryEvent } from "@trellis/client";
import { startFlakyProxy, startRecordingProxy, startSilentListener, selfSignedCertificate } from "./proxies.js";
import { freshWorkspace, startHarness, strategy, type Harness } from "./support.js";

describe("transport", () => {
  let harness: Harness;
  let workspace: string;
  before(async () => {
    harness = await startHarness();
    workspace = freshWorkspace("transport");
    await harness.client().strategy.putStrategy({ workspace, strategy });
  });
  after(() => harness?.close());

  test("a token is sent as authorization: Bearer on every call", async () => {
    const proxy = await startRecordingProxy(harness.server.address);
    const client = harness.client({ address: proxy.address, token: "secret-key-1", workspace });
    try {
      const got = await client.strategy.getStrategy();
      assert.equal(got.strategyVersion?.version, 1, "the server still answers");
      const tally = await client.ingest.ingestRecords([{ person: { ref: { source: "crm", externalId: "c1" }, displayName: "C" } }]);
      assert.equal(tally.received, 1n);
      assert.equal(proxy.requests.length, 2);
      for (const headers of proxy.requests) assert.equal(headers["authorization"], "Bearer secret-key-1");
      assert.equal(proxy.requests[0]![":path"], "/trellis.v1.StrategyService/GetStrategy");
    } finally {
      client.close();
      await proxy.close();
    }
  });

  test("without a token no authorization header is sent", async () => {
    const proxy = await startRecordingProxy(harness.server.address);
    const client = harness.client({ address: proxy.address, workspace });
    try {
      await client.strategy.getStrategy();
      assert.equal(proxy.requests[0]!["authorization"], undefined);
    } finally {
      client.close();
      await proxy.close();
    }
  });

  test("calls go over TLS when the client trusts the server's certificate", async (t) => {
    const certificate = selfSignedCertificate();
    if (!certificate) return t.skip("the openssl CLI is not available to make a test certificate");
    const proxy = await startRecordingProxy(harness.server.address, certificate);
    const trusting = harness.client({ address: proxy.address, tls: { ca: certificate.cert }, workspace, token: "k" });
    const untrusting = harness.client({ address: proxy.address, tls: true, workspace, retry: false });
    try {
      assert.match(trusting.baseUrl, /^https:\/\//);
      const got = await trusting.strategy.getStrategy();
      assert.equal(got.strategyVersion?.version, 1);
      assert.equal(proxy.requests[0]!["authorization"], "Bearer k");
      assert.equal(proxy.requests[0]![":scheme"], "https");
      await assert.rejects(untrusting.strategy.getStrategy({}, { timeoutMs: 5_000 }), (error: unknown) => {
        assert.ok(error instanceof TrellisError, String(error));
        assert.notEqual(error.code, Code.DeadlineExceeded, "an untrusted certificate fails at once");
        return true;
      });
    } finally {
      trusting.close();
      untrusting.close();
      await proxy.close();
    }
  });

  test("UNAVAILABLE is retried with backoff until the server answers", async () => {
    const proxy = await startFlakyProxy(harness.server.address, 2);
    const retries: RetryEvent[] = [];
    const client = harness.client({
      address: proxy.address,
      workspace,
      retry: { initialBackoffMs: 20, maxAttempts: 5, onRetry: (event) => retries.push(event) },
    });
    try {
      const got = await client.strategy.getStrategy();
      assert.equal(got.strategyVersion?.version, 1);
      assert.equal(retries.length, 2, "two dropped connections, two retries");
      assert.deepEqual(retries.map((event) => event.attempt), [1, 2]);
      for (const event of retries) {
        assert.equal(event.error.code, Code.Unavailable);
        assert.equal(event.method, "trellis.v1.StrategyService/GetStrategy");
      }
      assert.ok(retries[1]!.delayMs >= 20, "the backoff grows");
      assert.equal(proxy.connections, 3);
    } finally {
      client.close();
      await proxy.close();
    }
  });

  test("retries stop after maxAttempts with the UNAVAILABLE error", async () => {
    const proxy = await startFlakyProxy(harness.server.address, Number.POSITIVE_INFINITY);
    const retries: RetryEvent[] = [];
    const client = harness.client({ address: proxy.address, workspace, retry: { initialBackoffMs: 10, maxAttempts: 3, onRetry: (event) => retries.push(event) } });
    try {
      await assert.rejects(client.strategy.getStrategy(), (error: unknown) => {
        assert.ok(error instanceof TrellisError);
        assert.equal(error.code, Code.Unavailable);
        return true;
      });
      assert.equal(retries.length, 2);
      assert.equal(proxy.connections, 3);
    } finally {
      client.close();
      await proxy.close();
    }
  });

  test("a call that must not run twice is not retried unless forced", async () => {
    const proxy = await startFlakyProxy(harness.server.address, 1);
    const retries: RetryEvent[] = [];
    const client = harness.client({ address: proxy.address, workspace, retry: { initialBackoffMs: 10, onRetry: (event) => retries.push(event) } });
    try {
      await assert.rejects(client.strategy.putStrategy({ strategy }), (error: unknown) => error instanceof TrellisError && error.code === Code.Unavailable);
      assert.equal(retries.length, 0, "PutStrategy makes a new version each time: never retried by default");
      const forced = await client.strategy.putStrategy({ strategy }, { retry: true });
      assert.equal(forced.strategyVersion?.version, 2);
    } finally {
      client.close();
      await proxy.close();
    }
  });

  test("retry: false on the client turns retries off", async () => {
    const proxy = await startFlakyProxy(harness.server.address, 1);
    const client = harness.client({ address: proxy.address, workspace, retry: false });
    try {
      await assert.rejects(client.strategy.getStrategy(), (error: unknown) => error instanceof TrellisError && error.code === Code.Unavailable);
      assert.equal(proxy.connections, 1);
    } finally {
      client.close();
      await proxy.close();
    }
  });

  test("a per-call deadline fails a call to a hung server with DEADLINE_EXCEEDED", async () => {
    const silent = await startSilentListener();
    const client = harness.client({ address: silent.address, workspace });
    try {
      const started = Date.now();
      await assert.rejects(client.strategy.getStrategy({}, { timeoutMs: 300 }), (error: unknown) => {
        assert.ok(error instanceof TrellisError, String(error));
        assert.equal(error.code, Code.DeadlineExceeded);
        return true;
      });
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 250 && elapsed < 5_000, `failed after ${elapsed} ms`);
    } finally {
      client.close();
      await silent.close();
    }
  });

  test("the deadline travels to the server as grpc-timeout", async () => {
    const proxy = await startRecordingProxy(harness.server.address);
    const client = harness.client({ address: proxy.address, workspace });
    try {
      await client.strategy.getStrategy({}, { timeoutMs: 5_000 });
      await client.strategy.getStrategy();
      const [withDeadline, withoutDeadline] = proxy.requests;
      const timeout = String(withDeadline!["grpc-timeout"]);
      assert.match(timeout, /^\d+m$/, `grpc-timeout: ${timeout}`);
      assert.ok(Number.parseInt(timeout, 10) <= 5_000 && Number.parseInt(timeout, 10) > 4_000);
      assert.equal(withoutDeadline!["grpc-timeout"], undefined, "no deadline unless one is set");
    } finally {
      client.close();
      await proxy.close();
    }
  });

  test("closing the client cancels the calls in flight", async () => {
    const silent = await startSilentListener();
    const client = harness.client({ address: silent.address, workspace });
    try {
      const call = client.strategy.getStrategy({}, { timeoutMs: 10_000 });
      setTimeout(() => client.close(), 50);
      await assert.rejects(call, (error: unknown) => {
        assert.ok(error instanceof TrellisError, String(error));
        assert.equal(error.code, Code.Canceled);
        assert.equal(error.codeName, "CANCELLED");
        return true;
      });
    } finally {
      await silent.close();
    }
  });

  test("the client's default deadline applies to calls that set none", async () => {
    const silent = await startSilentListener();
    const client = harness.client({ address: silent.address, workspace, timeoutMs: 200 });
    try {
      await assert.rejects(client.strategy.getStrategy(), (error: unknown) => error instanceof TrellisError && error.code === Code.DeadlineExceeded);
    } finally {
      client.close();
      await silent.close();
    }
  });

  test("one deadline bounds all the retries of a call", async () => {
    const proxy = await startFlakyProxy(harness.server.address, Number.POSITIVE_INFINITY);
    const client = harness.client({ address: proxy.address, workspace, retry: { maxAttempts: 1000, initialBackoffMs: 50, maxBackoffMs: 100 } });
    try {
      const started = Date.now();
      await assert.rejects(client.strategy.getStrategy({}, { timeoutMs: 500 }), (error: unknown) => {
        assert.ok(error instanceof TrellisError);
        assert.ok([Code.Unavailable, Code.DeadlineExceeded].includes(error.code), error.message);
        return true;
      });
      const elapsed = Date.now() - started;
      assert.ok(elapsed < 2_000, `gave up after ${elapsed} ms`);
      assert.ok(proxy.connections > 1 && proxy.connections < 20, `${proxy.connections} attempts`);
    } finally {
      client.close();
      await proxy.close();
    }
  });

  test("an aborted signal cancels the call", async () => {
    const silent = await startSilentListener();
    const client = harness.client({ address: silent.address, workspace });
    try {
      const controller = new AbortController();
      const call = client.strategy.getStrategy({}, { signal: controller.signal });
      setTimeout(() => controller.abort(), 50);
      await assert.rejects(call, (error: unknown) => error instanceof TrellisError && error.code === Code.Canceled);
    } finally {
      client.close();
      await silent.close();
    }
  });

  test("backoff grows exponentially, is capped, and is jittered within [half, full]", () => {
    const policy = { ...defaultRetryPolicy, initialBackoffMs: 100, multiplier: 2, maxBackoffMs: 1000 };
    assert.equal(backoffMs(1, policy, () => 1), 100);
    assert.equal(backoffMs(1, policy, () => 0), 50);
    assert.equal(backoffMs(3, policy, () => 1), 400);
    assert.equal(backoffMs(10, policy, () => 1), 1000);
    assert.equal(backoffMs(10, policy, () => 0), 500);
  });

  test("an address may be a URL; TrellisClient defaults to TRELLIS_ADDR", () => {
    const previous = process.env["TRELLIS_ADDR"];
    process.env["TRELLIS_ADDR"] = "127.0.0.1:1";
    try {
      const fromEnvironment = new TrellisClient();
      assert.equal(fromEnvironment.baseUrl, "http://127.0.0.1:1");
      fromEnvironment.close();
    } finally {
      if (previous === undefined) delete process.env["TRELLIS_ADDR"];
      else process.env["TRELLIS_ADDR"] = previous;
    }
    const fromUrl = new TrellisClient({ address: "https://trellis.example:443/" });
    assert.equal(fromUrl.baseUrl, "https://trellis.example:443");
    fromUrl.close();
  });
});
