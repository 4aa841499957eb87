/**
 * Wraps a generated service descriptor into a thin, promise-based client: every RPC of the
 * proto keeps its generated name and message types, and gains what every call needs here, in
 * one place: the client's default workspace, the per-call deadline, retries of safe unary calls
 * on `UNAVAILABLE`, (async) iterables as client streams, and `TrellisError` for every failure,
 * streamed or not. Nothing here knows a particular service; the helpers that do live in client.ts.
 */
import type {
  DescMethod,
  DescMethodBiDiStreaming,
  DescMethodClientStreaming,
  DescMethodServerStreaming,
  DescMethodUnary,
  DescService,
  MessageInitShape,
  MessageShape,
} from "@bufbuild/protobuf";
import { Code, createClient, type CallOptions, type Transport } from "@connectrpc/connect";
import { TrellisError, callError } from "./errors.js";
import { backoffMs, isRetryable, sleep, type RetryPolicy } from "./retry.js";

/** A synchronous or asynchronous iterable: an array, a generator, a stream of records. */
export type Streamable<T> = Iterable<T> | AsyncIterable<T>;

/** Options of one call. */
export interface TrellisCallOptions extends CallOptions {
  /**
   * Deadline of the call in milliseconds, covering every retry; sent to the server as
   * `grpc-timeout`. Overrides the client's `timeoutMs`; 0 or less for none.
   */
  timeoutMs?: number;
  /**
   * Retry this call on `UNAVAILABLE`. By default unary calls that are safe to repeat are
   * retried and the others are not; `false` turns retries off, `true` forces them on for a
   * unary call you know to be safe.
   */
  retry?: boolean;
}

/** The client of one service: its RPCs, under their generated names. */
export type ServiceClient<Desc extends DescService> = {
  [P in keyof Desc["method"]]: Desc["method"][P] extends DescMethodUnary<infer I, infer O>
    ? (request?: MessageInitShape<I>, options?: TrellisCallOptions) => Promise<MessageShape<O>>
    : Desc["method"][P] extends DescMethodServerStreaming<infer I, infer O>
      ? (request?: MessageInitShape<I>, options?: TrellisCallOptions) => AsyncIterable<MessageShape<O>>
      : Desc["method"][P] extends DescMethodClientStreaming<infer I, infer O>
        ? (requests: Streamable<MessageInitShape<I>>, options?: TrellisCallOptions) => Promise<MessageShape<O>>
        : Desc["method"][P] extends DescMethodBiDiStreaming<infer I, infer O>
          ? (requests: Streamable<MessageInitShape<I>>, options?: TrellisCallOptions) => AsyncIterable<MessageShape<O>>
          : never;
};

/** What every wrapped call shares, set once on the client. */
export interface CallSettings {
  /** Filled into requests whose `workspace` is empty; empty for the default workspace. */
  workspace: string;
  /** Deadline for calls that give none, in milliseconds; undefined for none. */
  timeoutMs: number | undefined;
  retry: RetryPolicy;
  /** Unary methods that must not run twice (full names): never retried unless forced. */
  notRetried: ReadonlySet<string>;
  /** True once the client is closed: calls failing after that were cancelled by the caller. */
  closed: () => boolean;
}

type AnyRequest = Record<string, unknown>;
type AnyFn = (request: unknown, options?: CallOptions) => unknown;

export function fullMethodName(method: DescMethod): string {
  return `${method.parent.typeName}/${method.name}`;
}

export function createServiceClient<Desc extends DescService>(
  service: Desc,
  transport: Transport,
  settings: CallSettings,
): ServiceClient<Desc> {
  const generated = createClient(service, transport) as unknown as Record<string, AnyFn>;
  const wrapped: Record<string, unknown> = {};
  for (const method of service.methods) {
    const call = generated[method.localName]!.bind(generated);
    wrapped[method.localName] = wrapMethod(method, call, settings);
  }
  return wrapped as ServiceClient<Desc>;
}

function wrapMethod(method: DescMethod, call: AnyFn, settings: CallSettings): unknown {
  const hasWorkspace = method.input.field["workspace"] !== undefined;
  const withWorkspace = (request: unknown): unknown => {
    const message = (request ?? {}) as AnyRequest;
    if (!hasWorkspace || settings.workspace === "" || message["workspace"]) return message;
    return { ...message, workspace: settings.workspace };
  };
  const name = fullMethodName(method);
  const failure = (options: TrellisCallOptions) => (error: unknown) =>
    callError(error, options.signal?.aborted === true || settings.closed());
  switch (method.methodKind) {
    case "unary":
      return (request?: unknown, options: TrellisCallOptions = {}) => {
        const retry = options.retry ?? !settings.notRetried.has(name);
        return callWithRetry(name, (callOptions) => call(withWorkspace(request), callOptions) as Promise<unknown>, {
          options: callOptionsOf(options, settings),
          policy: retry ? settings.retry : { ...settings.retry, maxAttempts: 1 },
          toError: failure(options),
        });
      };
    case "server_streaming":
      return (request?: unknown, options: TrellisCallOptions = {}) =>
        mapStreamErrors(call(withWorkspace(request), callOptionsOf(options, settings)) as AsyncIterable<unknown>, failure(options));
    case "client_streaming":
      return async (requests: Streamable<unknown>, options: TrellisCallOptions = {}) => {
        try {
          return await call(firstWithWorkspace(requests, withWorkspace), callOptionsOf(options, settings));
        } catch (error) {
          throw failure(options)(error);
        }
      };
    case "bidi_streaming":
      // Each request of a bidirectional stream is answered on its own (MatchPeople reads every
      // contact's workspace), so each one gets the client's workspace when it names none.
      return (requests: Streamable<unknown>, options: TrellisCallOptions = {}) =>
        mapStreamErrors(
          call(eachWithWorkspace(requests, withWorkspace), callOptionsOf(options, settings)) as AsyncIterable<unknown>,
          failure(options),
        );
  }
}

function callOptionsOf(options: TrellisCallOptions, settings: CallSettings): CallOptions {
  const { retry: _retry, ...callOptions } = options;
  // connect reads `timeoutMs <= 0` as "no deadline", which is what 0 means here too.
  return { ...callOptions, timeoutMs: options.timeoutMs ?? settings.timeoutMs ?? 0 };
}

/**
 * Runs a unary call, retrying on `UNAVAILABLE` with backoff while attempts and the deadline
 * allow. Each attempt gets what is left of the deadline, so the server sees the true budget.
 */
export async function callWithRetry<T>(
  method: string,
  attempt: (options: CallOptions) => Promise<T>,
  { options, policy, toError }: { options: CallOptions; policy: RetryPolicy; toError: (error: unknown) => TrellisError },
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 0;
  const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : undefined;
  for (let attemptNumber = 1; ; attemptNumber++) {
    const remainingMs = deadline === undefined ? 0 : deadline - Date.now();
    if (deadline !== undefined && remainingMs <= 0) {
      throw new TrellisError(Code.DeadlineExceeded, `the deadline of ${timeoutMs} ms passed before ${method} answered`);
    }
    try {
      return await attempt({ ...options, timeoutMs: remainingMs });
    } catch (thrown) {
      const error = toError(thrown);
      if (!isRetryable(error) || attemptNumber >= policy.maxAttempts) throw error;
      const delayMs = backoffMs(attemptNumber, policy);
      if (deadline !== undefined && Date.now() + delayMs >= deadline) throw error;
      policy.onRetry?.({ method, attempt: attemptNumber, delayMs, error });
      await sleep(delayMs, options.signal);
    }
  }
}

/** Re-throws any error of a response stream as a `TrellisError`. */
export async function* mapStreamErrors<T>(
  stream: AsyncIterable<T>,
  toError: (error: unknown) => TrellisError,
): AsyncGenerator<T, void, undefined> {
  try {
    yield* stream;
  } catch (error) {
    throw toError(error);
  }
}

/** An async iterable of the requests, the first one carrying the client's workspace. */
async function* firstWithWorkspace(
  requests: Streamable<unknown>,
  withWorkspace: (request: unknown) => unknown,
): AsyncGenerator<unknown, void, undefined> {
  let first = true;
  for await (const request of requests) {
    yield first ? withWorkspace(request) : request;
    first = false;
  }
}

/** An async iterable of the requests, each carrying the client's workspace when it names none. */
async function* eachWithWorkspace(
  requests: Streamable<unknown>,
  withWorkspace: (request: unknown) => unknown,
): AsyncGenerator<unknown, void, undefined> {
  for await (const request of requests) yield withWorkspace(request);
}
