/**
 * What the test files share: one real server per test file, a fresh workspace name per test,
 * the skip-on-unimplemented helper for RPCs the server does not serve yet, and small fixtures
 * of our own (a strategy and a community) in the API's own types, and as a JSON Lines file for
 * the template connector.
 */
import type { TestContext } from "node:test";
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { FacetKind, PlatformKind, TrellisClient, isUnimplemented, timestampFromDate, type IngestRecord, type TrellisClientOptions } from "@trellis/client";
import { startServer, type RunningServer, type ServerOptions } from "./server.js";

export interface Harness {
  server: RunningServer;
  clients: TrellisClient[];
  /** A client of the running server; closed with the harness. */
  client(options?: TrellisClientOptions): TrellisClient;
  close(): Promise<void>;
}

export async function startHarness(options: ServerOptions = {}): Promise<Harness> {
  const server = await startServer(options);
  const clients: TrellisClient[] = [];
  return {
    server,
    clients,
    client(options: TrellisClientOptions = {}) {
      const client = new TrellisClient({ address: server.address, ...options });
      clients.push(client);
      return client;
    },
    async close() {
      for (const client of clients) client.close();
      await server.stop();
    },
  };
}

/** A workspace name no other test uses. */
export function freshWorkspace(prefix = "ts"): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/**
 * Runs a call of an RPC the server may not implement yet: when it answers UNIMPLEMENTED the test
 * is marked skipped (and returns undefined), so the test starts running the day the RPC lands.
 */
export async function unlessUnimplemented<T>(t: TestContext, call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (error) {
    if (isUnimplemented(error)) {
      t.skip(`the server does not implement this RPC yet (${error.rawMessage})`);
      return undefined;
    }
    throw error;
  }
}

/** Collects an async iterable, skipping the test if its RPC is unimplemented. */
export function collectUnlessUnimplemented<T>(t: TestContext, stream: AsyncIterable<T>): Promise<T[] | undefined> {
  return unlessUnimplemented(t, async () => {
    const items: T[] = [];
    for await (const item of stream) items.push(item);
    return items;
  });
}

export const strategy = {
  name: "Lumen observability platform and training",
  mission: "A place where engineers learn to see inside their systems.",
  exclusions: ["cryptocurrency trading"],
  facets: [
    {
      id: "debug-incidents",
      kind: FacetKind.JOB,
      name: "Find the cause of a production incident fast",
      description:
        "When a service slows down or fails in production, on-call engineers want to go from the alert to the failing request and its root cause in minutes.",
      keywords: ["root cause", "on-call", "outage", "latency spike"],
    },
    {
      id: "low-overhead-tracing",
      kind: FacetKind.ADVANTAGE,
      name: "Distributed tracing with almost no overhead",
      description: "Our tracing agent samples and exports spans at very high request rates while adding less than one percent of CPU.",
      keywords: ["distributed tracing", "sampling", "span", "overhead"],
    },
    {
      id: "opentelemetry",
      kind: FacetKind.EXPERTISE,
      name: "Instrumenting code with OpenTelemetry",
      description: "Our engineers maintain OpenTelemetry instrumentation libraries and know context propagation and custom spans.",
      keywords: ["opentelemetry", "instrumentation", "context propagation", "collector"],
    },
  ],
};

const at = (iso: string) => timestampFromDate(new Date(iso));

/** A small community: two people, two conversations, posts and an asset. */
export const community: IngestRecord[] = [
  { person: { ref: { source: "forum", externalId: "u-ana" }, displayName: "Ana", bio: "SRE on call; tracing and incident reviews.", member: true, identities: [{ platform: "forum", handle: "ana" }], crmIds: ["crm-1001"] } },
  { person: { ref: { source: "forum", externalId: "u-ben" }, displayName: "Ben", bio: "Backend developer learning OpenTelemetry.", member: true, identities: [{ platform: "forum", handle: "ben" }] } },
  {
    conversation: {
      ref: { source: "forum", externalId: "t1" },
      platform: PlatformKind.QA_FORUM,
      url: "https://forum.example/t/1",
      title: "How do I find which service causes a latency spike?",
      body: "Our checkout API has a latency spike every evening. How do you go from the alert to the root cause of the outage?",
      tags: ["latency", "debugging"],
      author: "u-ben",
      open: true,
      createdAt: at("2026-11-20T09:00:00Z"),
      lastActivityAt: at("2026-11-24T18:00:00Z"),
    },
  },
  {
    conversation: {
      ref: { source: "forum", externalId: "t2" },
      platform: PlatformKind.QA_FORUM,
      url: "https://forum.example/t/2",
      title: "Traces stop at the message queue",
      body: "We added OpenTelemetry instrumentation but context propagation breaks at the queue. Which headers carry the span context?",
      tags: ["opentelemetry"],
      author: "u-ana",
      open: true,
      createdAt: at("2026-11-21T09:00:00Z"),
      lastActivityAt: at("2026-11-23T10:00:00Z"),
    },
  },
  { post: { ref: { source: "forum", externalId: "p1" }, conversation: "t1", author: "u-ana", text: "Start from a distributed trace of a slow request; the span that grows is your root cause.", createdAt: at("2026-11-21T10:00:00Z"), reactions: 3 } },
  { post: { ref: { source: "forum", externalId: "p2" }, conversation: "t2", author: "u-ben", text: "The collector drops the traceparent header unless the queue client is instrumented.", createdAt: at("2026-11-22T10:00:00Z") } },
  { asset: { ref: { source: "blog", externalId: "a1" }, url: "https://lumen.example/blog/propagation", title: "Context propagation through queues", text: "How OpenTelemetry carries span context through message queues.", own: true, tags: ["opentelemetry"] } },
];

/** Seeds a workspace with the strategy and the community. */
export async function seed(client: TrellisClient, workspace: string): Promise<void> {
  await client.strategy.putStrategy({ workspace, strategy });
  const tally = await client.ingest.ingestRecords(community, { workspace });
  if (tally.errors.length > 0) throw new Error(`the fixture community was refused: ${JSON.stringify(tally.errors)}`);
}

/**
 * Writes a JSON Lines file for the template connector (the format of `trellis ingest`): two people,
 * `conversations` conversations and one post; returns how many records it holds.
 */
export function writeCommunity(path: string, conversations = 3): number {
  const lines: object[] = [
    { type: "person", id: "u-ana", name: "Ana", bio: "SRE on call", member: true },
    { type: "person", id: "u-ben", name: "Ben", bio: "backend developer" },
  ];
  for (let n = 0; n < conversations; n++) {
    lines.push({ type: "conversation", id: `c${n}`, title: `thread ${n}`, body: `how do we trace request ${n} across services`, author: "u-ben" });
  }
  lines.push({ type: "post", id: "p0", conversation: "c0", author: "u-ana", text: "use spans" });
  writeFileSync(path, lines.map((line) => `${JSON.stringify(line)}\n`).join(""));
  return lines.length;
}
