/**
 * FeedbackService through the client, against the real server: recording feedback on suggestions
 * (replacing by id, all or nothing on a bad item), listing it page by page with its filters and
 * counts, retries only where a repeat is safe, and what a read key may do. Skipped while the
 * server answers UNIMPLEMENTED.
 */
import assert from "node:assert/strict";
import { after, before, describe, test, type TestContext } from "node:test";
import {
  Code,
  FeedbackOutcome,
  SuggestionKind,
  TrellisError,
  feedbackItem,
  isUnimplemented,
  timestampDate,
  type RetryEvent,
  type TrellisClient,
} from "@trellis/client";
import { startFlakyProxy } from "./proxies.js";
import { authConfig, createKey } from "./server.js";
import { collectUnlessUnimplemented, freshWorkspace, seed, startHarness, strategy, unlessUnimplemented, type Harness } from "./support.js";

const ana = { source: "forum", externalId: "u-ana" };
const ben = { source: "forum", externalId: "u-ben" };
const t1 = { source: "forum", externalId: "t1" };
const t2 = { source: "forum", externalId: "t2" };
const derivedId = /^fb-[0-9a-f]{16}$/;
const minute = (n: number) => new Date(Date.UTC(2026, 10, 25, 9, n));

/**
 * Asserts that `call` rejects with a TrellisError of `code`, and returns it; when it rejects with
 * UNIMPLEMENTED instead and `t` is given, skips the test and returns undefined.
 */
async function refused(call: Promise<unknown>, code: Code, t?: TestContext): Promise<TrellisError | undefined> {
  const outcome = await call.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (t !== undefined && isUnimplemented(outcome)) {
    t.skip(`the server does not implement this RPC yet (${outcome.rawMessage})`);
    return undefined;
  }
  assert.ok(outcome instanceof TrellisError, `the call succeeded or failed otherwise: ${String(outcome)}`);
  assert.equal(outcome.code, code, outcome.message);
  return outcome;
}

describe("feedback", () => {
  let harness: Harness;
  before(async () => {
    harness = await startHarness();
  });
  after(() => harness?.close());

  /** A fresh workspace holding the fixture strategy and community (a workspace exists from its first write). */
  async function seededWorkspace(): Promise<string> {
    const workspace = freshWorkspace("feedback");
    await seed(harness.client({ workspace }), workspace);
    return workspace;
  }

  /** A client of a fresh workspace holding the fixture strategy and community. */
  async function seeded(): Promise<TrellisClient> {
    return harness.client({ workspace: await seededWorkspace() });
  }

  test("discussion feedback is recorded, and recording its id again replaces it", async (t) => {
    const client = await seeded();
    const recorded = await unlessUnimplemented(t, () =>
      client.feedback.recordFeedback({
        feedback: [
          feedbackItem(SuggestionKind.DISCUSSION, FeedbackOutcome.ACCEPTED, {
            person: ana,
            conversation: t1,
            at: minute(1),
            actor: "crm-sync",
            note: "joined from the weekly digest",
            id: "fb-ana-t1",
          }),
        ],
      }),
    );
    if (!recorded) return;
    assert.deepEqual(recorded.ids, ["fb-ana-t1"]);
    assert.deepEqual([recorded.recorded, recorded.replaced], [1, 0]);

    const again = await client.feedback.recordFeedback({
      feedback: [feedbackItem(SuggestionKind.DISCUSSION, FeedbackOutcome.DONE, { person: ana, conversation: t1, at: minute(2), id: "fb-ana-t1" })],
    });
    assert.deepEqual(again.ids, ["fb-ana-t1"]);
    assert.deepEqual([again.recorded, again.replaced], [0, 1]);

    const page = await client.feedback.listFeedback();
    assert.deepEqual(
      page.feedback.map((item) => item.id),
      ["fb-ana-t1"],
      "replaced, not duplicated",
    );
    const stored = page.feedback[0]!;
    assert.equal(stored.kind, SuggestionKind.DISCUSSION);
    assert.equal(stored.outcome, FeedbackOutcome.DONE);
    assert.deepEqual([stored.person?.source, stored.person?.externalId], ["forum", "u-ana"]);
    assert.deepEqual([stored.conversation?.source, stored.conversation?.externalId], ["forum", "t1"]);
    assert.equal(timestampDate(stored.at!).getTime(), minute(2).getTime());
    assert.ok(stored.recordedAt, "the server says when it recorded it");
    assert.equal(page.nextPageToken, "");
    assert.deepEqual([page.counts?.shown, page.counts?.accepted, page.counts?.dismissed, page.counts?.done], [0n, 0n, 0n, 1n]);
  });

  test("ids left out are derived, in request order, the same again for the same feedback", async (t) => {
    const client = await seeded();
    const items = [
      feedbackItem(SuggestionKind.DISCUSSION, FeedbackOutcome.SHOWN, { person: ana, conversation: t1, at: minute(1) }),
      feedbackItem(SuggestionKind.PARTICIPANT, FeedbackOutcome.ACCEPTED, { conversation: t2, person: ben, id: "mine" }),
      feedbackItem(SuggestionKind.PROSPECT, FeedbackOutcome.DISMISSED, { person: { source: "social", externalId: "p-eli" }, at: minute(3) }),
    ];
    const recorded = await unlessUnimplemented(t, () => client.feedback.recordFeedback({ feedback: items }));
    if (!recorded) return;
    assert.equal(recorded.ids.length, 3);
    assert.equal(recorded.ids[1], "mine");
    assert.match(recorded.ids[0]!, derivedId);
    assert.match(recorded.ids[2]!, derivedId);
    assert.deepEqual([recorded.recorded, recorded.replaced], [3, 0]);
    const repeated = await client.feedback.recordFeedback({ feedback: items });
    assert.deepEqual(repeated.ids, recorded.ids);
    assert.deepEqual([repeated.recorded, repeated.replaced], [0, 3]);
    const listed: string[] = [];
    for await (const item of client.feedback.feedback()) listed.push(item.id);
    assert.deepEqual(listed.sort(), [...recorded.ids].sort());
  });

  test("feedback naming records the workspace does not hold is recorded", async (t) => {
    const client = await seeded();
    const recorded = await unlessUnimplemented(t, () =>
      client.feedback.recordFeedback({
        feedback: [
          feedbackItem(SuggestionKind.DISCUSSION, FeedbackOutcome.SHOWN, {
            person: { source: "crm", externalId: "nobody" },
            conversation: { source: "forum", externalId: "none" },
          }),
        ],
      }),
    );
    if (!recorded) return;
    assert.equal(recorded.recorded, 1);
  });

  test("an invalid item refuses the whole call, naming feedback[i].conversation", async (t) => {
    const client = await seeded();
    const call = client.feedback.recordFeedback({
      feedback: [
        feedbackItem(SuggestionKind.PROSPECT, FeedbackOutcome.SHOWN, { person: ana }),
        feedbackItem(SuggestionKind.DISCUSSION, FeedbackOutcome.ACCEPTED, { person: ana }),
      ],
    });
    const error = await refused(call, Code.InvalidArgument, t);
    if (!error) return;
    assert.equal(error.codeName, "INVALID_ARGUMENT");
    assert.deepEqual(
      error.violations.map((violation) => violation.field),
      ["feedback[1].conversation"],
    );
    assert.match(error.violations[0]!.description, /discussion/);
    const listed = await client.feedback.listFeedback();
    assert.deepEqual(listed.feedback, [], "all or nothing: the good item was not recorded either");

    const noPerson = await refused(
      client.feedback.recordFeedback({ feedback: [feedbackItem(SuggestionKind.DISCUSSION, FeedbackOutcome.ACCEPTED, { conversation: t1 })] }),
      Code.InvalidArgument,
    );
    assert.deepEqual(
      noPerson?.violations.map((violation) => violation.field),
      ["feedback[0].person"],
    );
  });

  test("an unspecified kind or outcome, or a missing part, is refused naming the field", async (t) => {
    const client = await seeded();
    const cases: [Parameters<typeof feedbackItem>, string][] = [
      [[SuggestionKind.UNSPECIFIED, FeedbackOutcome.SHOWN, { person: ana }], "feedback[0].kind"],
      [[SuggestionKind.PROSPECT, FeedbackOutcome.UNSPECIFIED, { person: ana }], "feedback[0].outcome"],
      [[SuggestionKind.PARTICIPANT, FeedbackOutcome.ACCEPTED, { person: ana }], "feedback[0].conversation"],
      [[SuggestionKind.ASSET, FeedbackOutcome.ACCEPTED, { conversation: t1 }], "feedback[0].asset"],
      [[SuggestionKind.PROSPECT, FeedbackOutcome.ACCEPTED, {}], "feedback[0].person"],
      [[SuggestionKind.ACTION, FeedbackOutcome.DONE, {}], "feedback[0].action"],
    ];
    for (const [args, field] of cases) {
      const error = await refused(client.feedback.recordFeedback({ feedback: [feedbackItem(...args)] }), Code.InvalidArgument, t);
      if (!error) return;
      assert.ok(
        error.violations.some((violation) => violation.field === field),
        `${field} not among ${JSON.stringify(error.violations)}`,
      );
    }
  });

  test("listFeedback filters by kind, person and conversation; counts cover every outcome", async (t) => {
    const client = await seeded();
    const recorded = await unlessUnimplemented(t, () =>
      client.feedback.recordFeedback({
        feedback: [
          feedbackItem(SuggestionKind.DISCUSSION, FeedbackOutcome.SHOWN, { person: ana, conversation: t1, at: minute(1) }),
          feedbackItem(SuggestionKind.DISCUSSION, FeedbackOutcome.ACCEPTED, { person: ana, conversation: t2, at: minute(2) }),
          feedbackItem(SuggestionKind.DISCUSSION, FeedbackOutcome.DISMISSED, { person: ben, conversation: { source: "forum", externalId: "t3" }, at: minute(3) }),
          feedbackItem(SuggestionKind.ASSET, FeedbackOutcome.DONE, { conversation: t1, asset: { source: "blog", externalId: "a1" }, at: minute(4), id: "asset-1" }),
          feedbackItem(SuggestionKind.ACTION, FeedbackOutcome.ACCEPTED, { action: "reply:forum:t2", at: minute(5), id: "act-1" }),
        ],
      }),
    );
    if (!recorded) return;

    const everything = await client.feedback.listFeedback();
    assert.deepEqual(
      everything.feedback.map((item) => timestampDate(item.at!).getTime()),
      [5, 4, 3, 2, 1].map((n) => minute(n).getTime()),
      "newest first",
    );
    const counts = everything.counts!;
    assert.deepEqual([counts.shown, counts.accepted, counts.dismissed, counts.done], [1n, 2n, 1n, 1n]);

    const discussions = await client.feedback.listFeedback({ kind: SuggestionKind.DISCUSSION });
    assert.deepEqual(
      discussions.feedback.map((item) => item.conversation?.externalId),
      ["t3", "t2", "t1"],
    );
    assert.ok(discussions.feedback.every((item) => item.kind === SuggestionKind.DISCUSSION));
    assert.deepEqual(
      [discussions.counts?.shown, discussions.counts?.accepted, discussions.counts?.dismissed, discussions.counts?.done],
      [1n, 2n, 1n, 1n],
      "the counts are the workspace's, whatever the filter",
    );
    const assets = await client.feedback.listFeedback({ kind: SuggestionKind.ASSET });
    assert.deepEqual(
      assets.feedback.map((item) => item.id),
      ["asset-1"],
    );
    const actions = await collectUnlessUnimplemented(t, client.feedback.feedback({ kind: SuggestionKind.ACTION }));
    assert.deepEqual(
      actions?.map((item) => item.id),
      ["act-1"],
    );
    const forAna = await collectUnlessUnimplemented(t, client.feedback.feedback({ person: ana }));
    assert.deepEqual(
      forAna?.map((item) => item.conversation?.externalId),
      ["t2", "t1"],
    );
    const onT1 = await collectUnlessUnimplemented(t, client.feedback.feedback({ conversation: t1 }));
    assert.deepEqual(
      onT1?.map((item) => item.kind),
      [SuggestionKind.ASSET, SuggestionKind.DISCUSSION],
    );
  });

  test("feedback() walks every page, newest first", async (t) => {
    const client = await seeded();
    const items = Array.from({ length: 7 }, (_, n) =>
      feedbackItem(SuggestionKind.DISCUSSION, FeedbackOutcome.SHOWN, {
        person: ana,
        conversation: { source: "forum", externalId: `page-${n}` },
        at: minute(n),
        id: `page-${n}`,
      }),
    );
    if (!(await unlessUnimplemented(t, () => client.feedback.recordFeedback({ feedback: items })))) return;
    const first = await client.feedback.listFeedback({ limit: 3 });
    assert.deepEqual(
      first.feedback.map((item) => item.id),
      ["page-6", "page-5", "page-4"],
    );
    assert.notEqual(first.nextPageToken, "");
    const second = await client.feedback.listFeedback({ limit: 3, pageToken: first.nextPageToken });
    assert.deepEqual(
      second.feedback.map((item) => item.id),
      ["page-3", "page-2", "page-1"],
    );
    const walked: string[] = [];
    for await (const item of client.feedback.feedback({ limit: 2 })) walked.push(item.id);
    assert.deepEqual(walked, [6, 5, 4, 3, 2, 1, 0].map((n) => `page-${n}`));
    let fetched = 0;
    for await (const _ of client.feedback.feedback({ limit: 2 })) if (++fetched === 3) break;
    assert.equal(fetched, 3);
  });

  test("recordFeedback is retried when every id is fixed, and not otherwise", async (t) => {
    const workspace = await seededWorkspace();
    const probe = await unlessUnimplemented(t, () => harness.client({ workspace }).feedback.listFeedback());
    if (!probe) return;
    const proxy = await startFlakyProxy(harness.server.address, 1);
    const retries: RetryEvent[] = [];
    const client = harness.client({ address: proxy.address, workspace, retry: { initialBackoffMs: 10, onRetry: (event) => retries.push(event) } });
    try {
      // feedbackItem sets `at`: the derived id is the same on every attempt.
      const recorded = await client.feedback.recordFeedback({
        feedback: [feedbackItem(SuggestionKind.PROSPECT, FeedbackOutcome.SHOWN, { person: ana })],
      });
      assert.equal(recorded.recorded, 1);
      assert.deepEqual(
        retries.map((event) => event.method),
        ["trellis.v1.FeedbackService/RecordFeedback"],
      );
    } finally {
      client.close();
      await proxy.close();
    }

    const dropping = await startFlakyProxy(harness.server.address, 1);
    const unpinned = harness.client({ address: dropping.address, workspace, retry: { initialBackoffMs: 10, onRetry: (event) => retries.push(event) } });
    retries.length = 0;
    try {
      // Neither an id nor a time: the server would derive another id on each attempt.
      const call = unpinned.feedback.recordFeedback({
        feedback: [{ kind: SuggestionKind.PROSPECT, outcome: FeedbackOutcome.SHOWN, person: ana }],
      });
      await refused(call, Code.Unavailable);
      assert.deepEqual(retries, []);
    } finally {
      unpinned.close();
      await dropping.close();
    }
  });

  test("feedbackItem sets the time to now unless given, and keeps the parts it is given", () => {
    const started = Date.now();
    const item = feedbackItem(SuggestionKind.ACTION, FeedbackOutcome.DONE, { action: "publish:post-1", actor: "app", note: "posted", id: "a" });
    assert.equal(item.kind, SuggestionKind.ACTION);
    assert.equal(item.outcome, FeedbackOutcome.DONE);
    assert.deepEqual([item.action, item.actor, item.note, item.id, item.person], ["publish:post-1", "app", "posted", "a", undefined]);
    const at = item.at as { seconds: bigint };
    assert.ok(Number(at.seconds) * 1000 >= started - 1000 && Number(at.seconds) * 1000 <= Date.now());
  });
});

describe("feedback with API keys", () => {
  let harness: Harness;
  before(async () => {
    harness = await startHarness({ config: authConfig() });
  });
  after(() => harness?.close());

  test("a read key may list feedback but is refused recordFeedback", async (t) => {
    const workspace = freshWorkspace("feedback-auth");
    const writer = harness.client({ workspace, token: createKey(harness.server, workspace, "write").key });
    await writer.strategy.putStrategy({ strategy }); // the workspace exists from its first write
    const item = feedbackItem(SuggestionKind.PROSPECT, FeedbackOutcome.ACCEPTED, { person: ana, id: "p-1" });
    const recorded = await unlessUnimplemented(t, () => writer.feedback.recordFeedback({ feedback: [item] }));
    if (!recorded) return;
    assert.equal(recorded.recorded, 1);

    const retries: RetryEvent[] = [];
    const reader = harness.client({
      workspace,
      token: createKey(harness.server, workspace, "read").key,
      retry: { maxAttempts: 4, initialBackoffMs: 10, onRetry: (event) => retries.push(event) },
    });
    const error = await refused(reader.feedback.recordFeedback({ feedback: [item] }), Code.PermissionDenied);
    assert.match(error!.rawMessage, /needs a write key/);
    const listed: string[] = [];
    for await (const stored of reader.feedback.feedback()) listed.push(stored.id);
    assert.deepEqual(listed, ["p-1"]);
    assert.equal((await reader.feedback.listFeedback()).counts?.accepted, 1n);
    assert.deepEqual(retries, []);
  });
});
