/** StrategyService through the client, against the real server. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code, FacetKind, TrellisError, type TrellisClient } from "@trellis/client";
import { freshWorkspace, startHarness, strategy, type Harness } from "./support.js";

describe("strategy", () => {
  let harness: Harness;
  let client: TrellisClient;
  before(async () => {
    harness = await startHarness();
    client = harness.client();
  });
  after(() => harness?.close());

  test("put then get returns the stored version", async () => {
    const workspace = freshWorkspace();
    const put = await client.strategy.putStrategy({ workspace, strategy });
    assert.equal(put.strategyVersion?.version, 1);
    const got = await client.strategy.getStrategy({ workspace });
    assert.equal(got.strategyVersion?.version, 1);
    assert.equal(got.strategyVersion?.strategy?.name, strategy.name);
    assert.deepEqual(
      got.strategyVersion?.strategy?.facets.map((facet) => facet.id),
      strategy.facets.map((facet) => facet.id),
    );
    assert.ok(got.strategyVersion?.createdAt, "a version has its creation time");
  });

  test("the client's workspace is used when a request names none", async () => {
    const workspace = freshWorkspace();
    const scoped = harness.client({ workspace });
    await scoped.strategy.putStrategy({ strategy });
    const got = await client.strategy.getStrategy({ workspace });
    assert.equal(got.strategyVersion?.strategy?.name, strategy.name);
    const again = await scoped.strategy.getStrategy();
    assert.equal(again.strategyVersion?.version, 1);
  });

  test("a bad strategy is refused with one field violation per problem", async () => {
    const workspace = freshWorkspace();
    const error = await client.strategy
      .putStrategy({ workspace, strategy: { name: "", facets: [{ id: "Not An Id", kind: FacetKind.JOB, name: "x", description: "y", weight: 11 }] } })
      .then(() => assert.fail("the bad strategy was accepted"), (thrown: unknown) => thrown);
    assert.ok(error instanceof TrellisError, `expected a TrellisError, got ${String(error)}`);
    assert.equal(error.code, Code.InvalidArgument);
    assert.equal(error.codeName, "INVALID_ARGUMENT");
    const fields = error.violations.map((violation) => violation.field);
    assert.ok(fields.includes("strategy.name"), `violations: ${fields.join(", ")}`);
    assert.ok(fields.includes("strategy.facets[0].id"), `violations: ${fields.join(", ")}`);
    assert.ok(fields.includes("strategy.facets[0].weight"), `violations: ${fields.join(", ")}`);
    const [nameViolation] = error.violationsOf("strategy.name");
    assert.match(nameViolation!.description, /^is empty; name the strategy/);
    for (const violation of error.violations) {
      assert.match(violation.description, /^[^A-Z]/, "messages start lowercase");
      assert.ok(error.rawMessage.includes(violation.field));
    }
  });

  test("a bad workspace name is refused naming the field", async () => {
    await assert.rejects(client.strategy.getStrategy({ workspace: "no spaces allowed" }), (error: unknown) => {
      assert.ok(error instanceof TrellisError);
      assert.equal(error.code, Code.InvalidArgument);
      assert.deepEqual(error.violations.map((violation) => violation.field), ["workspace"]);
      return true;
    });
  });

  test("a workspace without a strategy answers NOT_FOUND", async () => {
    await assert.rejects(client.strategy.getStrategy({ workspace: freshWorkspace() }), (error: unknown) => {
      assert.ok(error instanceof TrellisError);
      assert.equal(error.code, Code.NotFound);
      assert.deepEqual(error.violations, []);
      return true;
    });
  });

  test("versions() walks every page, newest first", async () => {
    const workspace = freshWorkspace();
    for (let index = 1; index <= 5; index++) {
      await client.strategy.putStrategy({ workspace, strategy: { ...strategy, name: `${strategy.name} v${index}` } });
    }
    const firstPage = await client.strategy.listStrategyVersions({ workspace, pageSize: 2 });
    assert.equal(firstPage.strategyVersions.length, 2);
    assert.notEqual(firstPage.nextPageToken, "");

    const versions: number[] = [];
    for await (const version of client.strategy.versions({ workspace, pageSize: 2 })) versions.push(version.version);
    assert.deepEqual(versions, [5, 4, 3, 2, 1]);
  });

  test("versions() stops asking for pages when the loop breaks", async () => {
    const workspace = freshWorkspace();
    for (let index = 1; index <= 3; index++) await client.strategy.putStrategy({ workspace, strategy });
    const seen: number[] = [];
    for await (const version of client.strategy.versions({ workspace, pageSize: 1 })) {
      seen.push(version.version);
      if (seen.length === 2) break;
    }
    assert.deepEqual(seen, [3, 2]);
  });

  test("a page token the server never issued is refused naming page_token", async () => {
    await assert.rejects(
      client.strategy.listStrategyVersions({ workspace: freshWorkspace(), pageToken: "garbage" }),
      (error: unknown) => error instanceof TrellisError && error.violations.some((violation) => violation.field === "page_token"),
    );
  });
});
