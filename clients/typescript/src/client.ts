/**
 * `TrellisClient`: one HTTP/2 connection to a Trellis server and a client per service, with the
 * few helpers that make the API feel native in Node.js: async iterators over paginated lists,
 * streaming ingest from any (async) iterable of records, and bulk `MatchPeople` over one
 * bidirectional stream. Connection concerns (address, TLS, bearer token) are settled here once;
 * call concerns (deadline, retries, errors) live in service.ts.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { Interceptor } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import type { SecureClientSessionOptions } from "node:http2";
import { defaultRetryPolicy, type RetryPolicy } from "./retry.js";
import { createServiceClient, type ServiceClient, type Streamable, type TrellisCallOptions } from "./service.js";
import type { RecordRefSchema } from "./gen/trellis/v1/common_pb.js";
import {
  FeedbackService,
  type Feedback,
  type FeedbackOutcome,
  type FeedbackSchema,
  type ListFeedbackRequestSchema,
  type RecordFeedbackRequestSchema,
  type SuggestionKind,
} from "./gen/trellis/v1/feedback_pb.js";
import {
  IngestService,
  type AssetSchema,
  type ConversationSchema,
  type IngestRequestSchema,
  type IngestResponse,
  type Person,
  type PersonSchema,
  type PostSchema,
} from "./gen/trellis/v1/ingest_pb.js";
import { InsightService } from "./gen/trellis/v1/insight_pb.js";
import {
  PeopleService,
  type ListMergesRequestSchema,
  type ListPeopleRequestSchema,
  type MatchPeopleRequestSchema,
  type MatchPeopleResponse,
  type MergeRecord,
} from "./gen/trellis/v1/people_pb.js";
import { ServerService } from "./gen/trellis/v1/server_pb.js";
import { SourceService, type ListSourcesRequestSchema, type Source } from "./gen/trellis/v1/source_pb.js";
import {
  StrategyService,
  type ListStrategyVersionsRequestSchema,
  type StrategyVersion,
} from "./gen/trellis/v1/strategy_pb.js";

/** TLS settings; `true` uses the system's trusted roots. */
export interface TlsOptions {
  /** PEM root certificate(s) to trust instead of the system's, e.g. a private CA. */
  ca?: string | Buffer;
  /** PEM client certificate and key, for mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** The name to verify the server's certificate against, when it differs from the host. */
  serverName?: string;
}

export interface TrellisClientOptions {
  /**
   * Where the server listens: `host:port`, or a URL (`http://host:port`, `https://host:port`).
   * Defaults to `TRELLIS_ADDR` from the environment, then `127.0.0.1:50151`.
   */
  address?: string;
  /** An API key, sent as `authorization: Bearer <token>` on every call. */
  token?: string;
  /** Connect over TLS: `true`, or the roots and client certificate to use. Off by default. */
  tls?: boolean | TlsOptions;
  /** The workspace requests go to when they name none; empty for the default workspace. */
  workspace?: string;
  /** Deadline for every call that sets none, in milliseconds. None by default. */
  timeoutMs?: number;
  /** Retries on `UNAVAILABLE`; `false` turns them off. */
  retry?: Partial<RetryPolicy> | false;
  /** Extra interceptors, run around every call (e.g. for logging or tracing). */
  interceptors?: Interceptor[];
}

/**
 * Unary methods with side effects that a repeat would duplicate: each put makes a new strategy
 * version, each merge a new merge. Retried only when a call forces it. `RecordFeedback` repeats
 * safely only when the ids of its feedback are fixed: `client.feedback.recordFeedback` forces its
 * retries when they are (see there).
 */
export const NOT_RETRIED_METHODS: ReadonlySet<string> = new Set([
  "trellis.v1.StrategyService/PutStrategy",
  "trellis.v1.PeopleService/MergePeople",
  "trellis.v1.PeopleService/UnmergePeople",
  "trellis.v1.SourceService/CreateSource",
  "trellis.v1.FeedbackService/RecordFeedback",
]);

/** One record to ingest: a person, a conversation, a post or an asset. */
export type IngestRecord =
  | { person: MessageInitShape<typeof PersonSchema> }
  | { conversation: MessageInitShape<typeof ConversationSchema> }
  | { post: MessageInitShape<typeof PostSchema> }
  | { asset: MessageInitShape<typeof AssetSchema> };

/** One CRM contact to match: the caller's id for it and how to find the person. */
export type MatchContact = MessageInitShape<typeof MatchPeopleRequestSchema>;

/**
 * How many contacts `matchContacts` keeps in flight (sent, answer not yet received) on one stream
 * unless told otherwise. The server ends a stream that leaves far more than this unanswered.
 */
export const MATCH_IN_FLIGHT = 10_000;

/** Options of `matchContacts`. */
export interface MatchContactsOptions extends TrellisCallOptions {
  /**
   * At most this many contacts are sent ahead of their answers: past that, the next contact is
   * taken from the iterable only once an answer has arrived. A positive integer; `MATCH_IN_FLIGHT`
   * (10,000) by default.
   */
  inFlight?: number;
}

export class StrategyClient {
  constructor(readonly rpc: ServiceClient<typeof StrategyService>) {}
  putStrategy: ServiceClient<typeof StrategyService>["putStrategy"] = (...args) => this.rpc.putStrategy(...args);
  getStrategy: ServiceClient<typeof StrategyService>["getStrategy"] = (...args) => this.rpc.getStrategy(...args);
  listStrategyVersions: ServiceClient<typeof StrategyService>["listStrategyVersions"] = (...args) =>
    this.rpc.listStrategyVersions(...args);

  /** Every strategy version, newest first, fetching pages as the loop needs them. */
  versions(
    request: MessageInitShape<typeof ListStrategyVersionsRequestSchema> = {},
    options?: TrellisCallOptions,
  ): AsyncGenerator<StrategyVersion, void, undefined> {
    return paginate(request, (page) => this.rpc.listStrategyVersions(page, options), (response) => response.strategyVersions);
  }
}

export class IngestClient {
  constructor(readonly rpc: ServiceClient<typeof IngestService>) {}
  /** The raw client stream: `IngestRequest` messages from any (async) iterable. */
  ingest: ServiceClient<typeof IngestService>["ingest"] = (...args) => this.rpc.ingest(...args);
  getConversation: ServiceClient<typeof IngestService>["getConversation"] = (...args) =>
    this.rpc.getConversation(...args);

  /**
   * Streams records to the server as they come from `records` (an array, a generator, a file
   * read line by line) and resolves with the server's tally: what was inserted, updated or
   * unchanged, and each refused record by its position, field and reason.
   */
  ingestRecords(
    records: Streamable<IngestRecord>,
    options?: TrellisCallOptions & { workspace?: string },
  ): Promise<IngestResponse> {
    const { workspace, ...callOptions } = options ?? {};
    return this.rpc.ingest(toIngestRequests(records, workspace), callOptions);
  }
}

async function* toIngestRequests(
  records: Streamable<IngestRecord>,
  workspace: string | undefined,
): AsyncGenerator<MessageInitShape<typeof IngestRequestSchema>, void, undefined> {
  let first = true;
  for await (const record of records) {
    const request: MessageInitShape<typeof IngestRequestSchema> = { record: toRecordCase(record) };
    if (first && workspace) request.workspace = workspace;
    first = false;
    yield request;
  }
}

function toRecordCase(record: IngestRecord): MessageInitShape<typeof IngestRequestSchema>["record"] {
  if ("person" in record) return { case: "person", value: record.person };
  if ("conversation" in record) return { case: "conversation", value: record.conversation };
  if ("post" in record) return { case: "post", value: record.post };
  if ("asset" in record) return { case: "asset", value: record.asset };
  throw new TypeError("an ingest record needs one of person, conversation, post or asset");
}

export class InsightClient {
  constructor(readonly rpc: ServiceClient<typeof InsightService>) {}
  scoreConversations: ServiceClient<typeof InsightService>["scoreConversations"] = (...args) =>
    this.rpc.scoreConversations(...args);
  listStrategicConversations: ServiceClient<typeof InsightService>["listStrategicConversations"] = (...args) =>
    this.rpc.listStrategicConversations(...args);
  auditCommunityDesign: ServiceClient<typeof InsightService>["auditCommunityDesign"] = (...args) =>
    this.rpc.auditCommunityDesign(...args);
  suggestDiscussions: ServiceClient<typeof InsightService>["suggestDiscussions"] = (...args) =>
    this.rpc.suggestDiscussions(...args);
  suggestParticipants: ServiceClient<typeof InsightService>["suggestParticipants"] = (...args) =>
    this.rpc.suggestParticipants(...args);
  findSupportingAssets: ServiceClient<typeof InsightService>["findSupportingAssets"] = (...args) =>
    this.rpc.findSupportingAssets(...args);
  findProspects: ServiceClient<typeof InsightService>["findProspects"] = (...args) => this.rpc.findProspects(...args);
  recommendPlatformMix: ServiceClient<typeof InsightService>["recommendPlatformMix"] = (...args) =>
    this.rpc.recommendPlatformMix(...args);
  planActions: ServiceClient<typeof InsightService>["planActions"] = (...args) => this.rpc.planActions(...args);
}

export class PeopleClient {
  constructor(readonly rpc: ServiceClient<typeof PeopleService>) {}
  getPerson: ServiceClient<typeof PeopleService>["getPerson"] = (...args) => this.rpc.getPerson(...args);
  listPeople: ServiceClient<typeof PeopleService>["listPeople"] = (...args) => this.rpc.listPeople(...args);
  matchPerson: ServiceClient<typeof PeopleService>["matchPerson"] = (...args) => this.rpc.matchPerson(...args);
  /** The raw bidirectional stream. */
  matchPeople: ServiceClient<typeof PeopleService>["matchPeople"] = (...args) => this.rpc.matchPeople(...args);
  mergePeople: ServiceClient<typeof PeopleService>["mergePeople"] = (...args) => this.rpc.mergePeople(...args);
  unmergePeople: ServiceClient<typeof PeopleService>["unmergePeople"] = (...args) => this.rpc.unmergePeople(...args);
  listMerges: ServiceClient<typeof PeopleService>["listMerges"] = (...args) => this.rpc.listMerges(...args);
  /** Automatic merges today's identity rules would not make; `apply: true` undoes them. Admin keys. */
  reviewMerges: ServiceClient<typeof PeopleService>["reviewMerges"] = (...args) => this.rpc.reviewMerges(...args);
  forgetPerson: ServiceClient<typeof PeopleService>["forgetPerson"] = (...args) => this.rpc.forgetPerson(...args);

  /** Every person (optionally only members or only non-members), page by page as needed. */
  people(
    request: MessageInitShape<typeof ListPeopleRequestSchema> = {},
    options?: TrellisCallOptions,
  ): AsyncGenerator<Person, void, undefined> {
    return paginate(request, (page) => this.rpc.listPeople(page, options), (response) => response.people);
  }

  /** The audit trail of merges, newest first, fetched page by page as you iterate. */
  merges(
    request: MessageInitShape<typeof ListMergesRequestSchema> = {},
    options?: TrellisCallOptions,
  ): AsyncGenerator<MergeRecord, void, undefined> {
    return paginate(request, (page) => this.rpc.listMerges(page, options), (response) => response.merges);
  }

  /**
   * Matches many CRM contacts over one bidirectional stream: contacts are sent as `contacts`
   * yields them and answers arrive as the server finds them, each echoing its `contactId`.
   * A contact the server could not match comes back with `found: false` (and `error` set when
   * the lookup itself was bad), not as a failed stream.
   *
   * At most `options.inFlight` (10,000 by default) contacts are in flight at once: the next one
   * is read from `contacts` only when an answer frees a slot, so iterate the answers while the
   * contacts go out. Ending the iteration of the answers (to the end, by an error, or by `break`)
   * also stops reading `contacts`.
   */
  matchContacts(contacts: Streamable<MatchContact>, options?: MatchContactsOptions): AsyncIterable<MatchPeopleResponse> {
    const { inFlight = MATCH_IN_FLIGHT, ...callOptions } = options ?? {};
    if (!Number.isSafeInteger(inFlight) || inFlight <= 0) {
      throw new RangeError(`inFlight must be a positive whole number of contacts, not ${String(inFlight)}`);
    }
    const window = new InFlightWindow(inFlight);
    return window.answers(this.rpc.matchPeople(window.contacts(contacts), callOptions));
  }
}

/**
 * The contacts a bulk match may have in flight: the request side takes a slot before it reads each
 * contact, each answer gives one back, and the end of the answers closes the window, which ends
 * the request side even while it waits for a slot.
 */
class InFlightWindow {
  private free: number;
  private closed = false;
  /** The request side, waiting for a slot: true hands it one, false says the window closed. */
  private waiting: ((slot: boolean) => void) | undefined;

  constructor(limit: number) {
    this.free = limit;
  }

  /** Yields `items`, at most `limit` ahead of the answers; returns once the window closes. */
  async *contacts<T>(items: Streamable<T>): AsyncGenerator<T, void, undefined> {
    const iterator: Iterator<T> | AsyncIterator<T> =
      Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]();
    let exhausted = false;
    try {
      while (await this.take()) {
        const next = await iterator.next();
        if (next.done) {
          exhausted = true;
          return;
        }
        yield next.value;
      }
    } finally {
      if (!exhausted) await iterator.return?.();
    }
  }

  /** Yields `answers`, each giving its slot back, and closes the window when they end. */
  async *answers<T>(answers: AsyncIterable<T>): AsyncGenerator<T, void, undefined> {
    try {
      for await (const answer of answers) {
        this.give();
        yield answer;
      }
    } finally {
      this.close();
    }
  }

  private take(): boolean | Promise<boolean> {
    if (this.closed) return false;
    if (this.free > 0) {
      this.free--;
      return true;
    }
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  private give(): void {
    const waiting = this.waiting;
    if (waiting) {
      this.waiting = undefined;
      waiting(true);
    } else {
      this.free++;
    }
  }

  private close(): void {
    this.closed = true;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.(false);
  }
}

export class SourceClient {
  constructor(readonly rpc: ServiceClient<typeof SourceService>) {}
  listConnectors: ServiceClient<typeof SourceService>["listConnectors"] = (...args) => this.rpc.listConnectors(...args);
  createSource: ServiceClient<typeof SourceService>["createSource"] = (...args) => this.rpc.createSource(...args);
  getSource: ServiceClient<typeof SourceService>["getSource"] = (...args) => this.rpc.getSource(...args);
  updateSource: ServiceClient<typeof SourceService>["updateSource"] = (...args) => this.rpc.updateSource(...args);
  /**
   * Sets (`set`: field name to value) or unsets (`clear`) secret fields of a source's config,
   * such as `api_key`, without resending the rest. Secrets are never returned: `Source.secrets`
   * says which are set.
   */
  setSourceSecrets: ServiceClient<typeof SourceService>["setSourceSecrets"] = (...args) =>
    this.rpc.setSourceSecrets(...args);
  deleteSource: ServiceClient<typeof SourceService>["deleteSource"] = (...args) => this.rpc.deleteSource(...args);
  listSources: ServiceClient<typeof SourceService>["listSources"] = (...args) => this.rpc.listSources(...args);
  checkSource: ServiceClient<typeof SourceService>["checkSource"] = (...args) => this.rpc.checkSource(...args);
  /** A sync run's progress, as an async iterator that ends when the run ends. */
  syncSource: ServiceClient<typeof SourceService>["syncSource"] = (...args) => this.rpc.syncSource(...args);

  /** Every configured source, page by page as needed. */
  sources(
    request: MessageInitShape<typeof ListSourcesRequestSchema> = {},
    options?: TrellisCallOptions,
  ): AsyncGenerator<Source, void, undefined> {
    return paginate(request, (page) => this.rpc.listSources(page, options), (response) => response.sources);
  }
}

export class ServerClient {
  constructor(readonly rpc: ServiceClient<typeof ServerService>) {}
  /**
   * The server's version, whether the semantic tier is on (`semantic.enabled` with
   * `semantic.modelId`, or `semantic.lexicalOnlyReason` saying why not and how to fix it), and
   * per workspace how many conversations are indexed and embedded.
   */
  getServerStatus: ServiceClient<typeof ServerService>["getServerStatus"] = (...args) =>
    this.rpc.getServerStatus(...args);
}

/** A record reference as every request takes it: `{ source: "forum", externalId: "t1" }`. */
export type RecordRefInit = MessageInitShape<typeof RecordRefSchema>;

/** One piece of feedback, as `recordFeedback` takes it. */
export type FeedbackInit = MessageInitShape<typeof FeedbackSchema>;

/** What names a suggestion, and what else a piece of feedback may say; see `feedbackItem`. */
export interface FeedbackParts {
  /** The person the suggestion was for (discussion) or about (participant, prospect, action). */
  person?: RecordRefInit;
  /** The conversation suggested (discussion) or suggested for (participant, asset, action). */
  conversation?: RecordRefInit;
  /** The asset suggested (asset). */
  asset?: RecordRefInit;
  /** The action as you name it: its kind and target, or your own id for it (action). */
  action?: string;
  /** When it happened; now when left out. */
  at?: Date | Timestamp;
  /** Who said so: a team member, an app. At most 200 bytes. */
  actor?: string;
  /** At most 2,000 bytes. */
  note?: string;
  /** Your id for it: recording an id again replaces what it said. Derived by the server when left out. */
  id?: string;
}

/**
 * One piece of feedback for `client.feedback.recordFeedback`: what became of a suggestion of
 * `kind` (`SuggestionKind.DISCUSSION`, ...), named by its parts: a discussion by `person` and
 * `conversation`, a participant by `conversation` and `person`, an asset by `conversation` and
 * `asset`, a prospect by `person`, an action by `action`. The server refuses what is missing,
 * naming it (`feedback[0].conversation`).
 *
 * `at` is now when left out. The id the server derives for feedback recorded without one comes
 * from the suggestion, the outcome and `at`, so it is then the same on every attempt of a call,
 * and the call is retried safely.
 */
export function feedbackItem(kind: SuggestionKind, outcome: FeedbackOutcome, parts: FeedbackParts = {}): FeedbackInit {
  const { at, ...rest } = parts;
  return { ...rest, kind, outcome, at: at === undefined ? timestampFromDate(new Date()) : at instanceof Date ? timestampFromDate(at) : at };
}

/** Whether every piece of feedback has an id, or a time to derive the same id from on every attempt. */
function feedbackIdsFixed(request: MessageInitShape<typeof RecordFeedbackRequestSchema> | undefined): boolean {
  return (request?.feedback ?? []).every((item) => (item.id ?? "") !== "" || item.at !== undefined);
}

export class FeedbackClient {
  constructor(readonly rpc: ServiceClient<typeof FeedbackService>) {}
  /**
   * Records feedback on suggestions (see `feedbackItem`), at most 1,000 per call, all or nothing:
   * when any item is invalid none is recorded and the error's violations name every problem.
   * `ids` holds each item's id in request order (derived where none was given); `recorded` counts
   * the new ones, `replaced` those that replaced feedback recorded earlier under the same id.
   * Needs a write key.
   *
   * Retried on `UNAVAILABLE` only when every item has an `id` or an `at` (`feedbackItem` sets
   * `at`): the ids are then the same on every attempt, so a repeat replaces rather than adds.
   * `{ retry }` in the options decides otherwise.
   */
  recordFeedback: ServiceClient<typeof FeedbackService>["recordFeedback"] = (request, options) =>
    this.rpc.recordFeedback(request, { ...options, retry: options?.retry ?? feedbackIdsFixed(request) });
  /**
   * One page of feedback, newest first, filtered by `kind`, `person` or `conversation` when set;
   * `limit` per page (100 when unset; larger pages are cut to the server's page size, 500 unless
   * configured), `nextPageToken` empty on the last page, and `counts`, the workspace's feedback by
   * outcome whatever the filter. `feedback()` walks every page.
   */
  listFeedback: ServiceClient<typeof FeedbackService>["listFeedback"] = (...args) => this.rpc.listFeedback(...args);

  /** Every piece of feedback `listFeedback` lists with this request, newest first, page by page as needed. */
  feedback(
    request: MessageInitShape<typeof ListFeedbackRequestSchema> = {},
    options?: TrellisCallOptions,
  ): AsyncGenerator<Feedback, void, undefined> {
    return paginate(request, (page) => this.rpc.listFeedback(page, options), (response) => response.feedback);
  }
}

/**
 * Walks a paginated list: asks for a page, yields its items, and follows `nextPageToken` until
 * the server returns an empty one. Pages are fetched lazily, so breaking out stops the calls.
 */
export async function* paginate<Request extends { pageToken?: string }, Response extends { nextPageToken: string }, Item>(
  request: Request,
  fetchPage: (request: Request) => Promise<Response>,
  itemsOf: (response: Response) => Item[],
): AsyncGenerator<Item, void, undefined> {
  let pageToken = request.pageToken ?? "";
  do {
    const response = await fetchPage({ ...request, pageToken });
    yield* itemsOf(response);
    pageToken = response.nextPageToken;
  } while (pageToken !== "");
}

export class TrellisClient {
  readonly strategy: StrategyClient;
  readonly ingest: IngestClient;
  readonly insight: InsightClient;
  readonly people: PeopleClient;
  readonly sources: SourceClient;
  readonly server: ServerClient;
  readonly feedback: FeedbackClient;
  /** The URL the client connects to. */
  readonly baseUrl: string;
  private readonly sessionManager: Http2SessionManager;
  private closed = false;

  constructor(options: TrellisClientOptions = {}) {
    this.baseUrl = baseUrlOf(options.address ?? process.env["TRELLIS_ADDR"] ?? "127.0.0.1:50151", options.tls);
    const interceptors = [...(options.interceptors ?? [])];
    if (options.token !== undefined) interceptors.push(bearerToken(options.token));
    this.sessionManager = new Http2SessionManager(this.baseUrl, { idleConnectionTimeoutMs: 60_000 }, tlsNodeOptions(options.tls));
    const transport = createGrpcTransport({
      baseUrl: this.baseUrl,
      sessionManager: this.sessionManager,
      interceptors,
    });
    const retry: RetryPolicy =
      options.retry === false
        ? { ...defaultRetryPolicy, maxAttempts: 1 }
        : { ...defaultRetryPolicy, ...(options.retry ?? {}) };
    const settings = {
      workspace: options.workspace ?? "",
      timeoutMs: options.timeoutMs,
      retry,
      notRetried: NOT_RETRIED_METHODS,
      closed: () => this.closed,
    };
    this.strategy = new StrategyClient(createServiceClient(StrategyService, transport, settings));
    this.ingest = new IngestClient(createServiceClient(IngestService, transport, settings));
    this.insight = new InsightClient(createServiceClient(InsightService, transport, settings));
    this.people = new PeopleClient(createServiceClient(PeopleService, transport, settings));
    this.sources = new SourceClient(createServiceClient(SourceService, transport, settings));
    this.server = new ServerClient(createServiceClient(ServerService, transport, settings));
    this.feedback = new FeedbackClient(createServiceClient(FeedbackService, transport, settings));
  }

  /** Closes the connection; calls still in flight fail with `CANCELED`. */
  close(): void {
    this.closed = true;
    this.sessionManager.abort();
  }
}

function baseUrlOf(address: string, tls: TrellisClientOptions["tls"]): string {
  if (/^https?:\/\//.test(address)) return address.replace(/\/+$/, "");
  return `${tls ? "https" : "http"}://${address}`;
}

function tlsNodeOptions(tls: TrellisClientOptions["tls"]): SecureClientSessionOptions {
  if (typeof tls !== "object") return {};
  const nodeOptions: SecureClientSessionOptions = {};
  if (tls.ca !== undefined) nodeOptions.ca = tls.ca;
  if (tls.cert !== undefined) nodeOptions.cert = tls.cert;
  if (tls.key !== undefined) nodeOptions.key = tls.key;
  if (tls.serverName !== undefined) nodeOptions.servername = tls.serverName;
  return nodeOptions;
}

function bearerToken(token: string): Interceptor {
  const value = `Bearer ${token}`;
  return (next) => (request) => {
    request.header.set("authorization", value);
    return next(request);
  };
}

