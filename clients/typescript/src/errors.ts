/**
 * The one error type of the client. Every failed call, unary or streamed, rejects with a
 * `TrellisError`: the gRPC status code, the server's message, and, for bad input, the field
 * violations the server put in `grpc-status-details-bin` (a `google.rpc.Status` carrying a
 * `google.rpc.BadRequest`), decoded so that callers never touch the wire format; likewise the
 * delay of a `google.rpc.RetryInfo`, which the server sends with `RESOURCE_EXHAUSTED` when an API
 * key is over its rate limit.
 */
import { durationMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb.js";

export { Code };

/** One problem with one field of a request, as the server reported it. */
export interface FieldViolation {
  /** The path of the field, e.g. `strategy.facets[0].id`. */
  readonly field: string;
  /** What is wrong with it and how to fix it. */
  readonly description: string;
}

const codeNames: Readonly<Record<Code, string>> = {
  [Code.Canceled]: "CANCELLED",
  [Code.Unknown]: "UNKNOWN",
  [Code.InvalidArgument]: "INVALID_ARGUMENT",
  [Code.DeadlineExceeded]: "DEADLINE_EXCEEDED",
  [Code.NotFound]: "NOT_FOUND",
  [Code.AlreadyExists]: "ALREADY_EXISTS",
  [Code.PermissionDenied]: "PERMISSION_DENIED",
  [Code.ResourceExhausted]: "RESOURCE_EXHAUSTED",
  [Code.FailedPrecondition]: "FAILED_PRECONDITION",
  [Code.Aborted]: "ABORTED",
  [Code.OutOfRange]: "OUT_OF_RANGE",
  [Code.Unimplemented]: "UNIMPLEMENTED",
  [Code.Internal]: "INTERNAL",
  [Code.Unavailable]: "UNAVAILABLE",
  [Code.DataLoss]: "DATA_LOSS",
  [Code.Unauthenticated]: "UNAUTHENTICATED",
};

/** The gRPC name of a status code, e.g. `INVALID_ARGUMENT`. */
export function codeName(code: Code): string {
  return codeNames[code] ?? `CODE_${code}`;
}

export class TrellisError extends Error {
  override readonly name = "TrellisError";
  /** The gRPC status code. */
  readonly code: Code;
  /** The status message as the server wrote it, without the code prefix. */
  readonly rawMessage: string;
  /** Field violations from `google.rpc.BadRequest`; empty when the server sent none. */
  readonly violations: readonly FieldViolation[];
  /** Response headers and trailers of the failed call. */
  readonly metadata: Headers;
  /**
   * How long the server asked the caller to wait before trying again (`google.rpc.RetryInfo`), in
   * milliseconds; `undefined` when it did not say. Set on `RESOURCE_EXHAUSTED` from a rate limit.
   */
  readonly retryAfterMs: number | undefined;

  constructor(
    code: Code,
    rawMessage: string,
    violations: readonly FieldViolation[] = [],
    metadata: Headers = new Headers(),
    cause?: unknown,
    retryAfterMs?: number,
  ) {
    super(`${codeName(code).toLowerCase()}: ${rawMessage}`, { cause });
    this.code = code;
    this.rawMessage = rawMessage;
    this.violations = violations;
    this.metadata = metadata;
    this.retryAfterMs = retryAfterMs;
  }

  /** The gRPC name of the status code, e.g. `INVALID_ARGUMENT`. */
  get codeName(): string {
    return codeName(this.code);
  }

  /** True when the server does not implement the called method (yet). */
  get isUnimplemented(): boolean {
    return this.code === Code.Unimplemented;
  }

  /** The violations of one field, e.g. `violationsOf("strategy.name")`. */
  violationsOf(field: string): FieldViolation[] {
    return this.violations.filter((violation) => violation.field === field);
  }
}

/** Turns whatever a call threw into a `TrellisError`, decoding the field violations. */
export function toTrellisError(error: unknown): TrellisError {
  if (error instanceof TrellisError) return error;
  const connectError = ConnectError.from(error);
  const violations = connectError
    .findDetails(BadRequestSchema)
    .flatMap((badRequest) =>
      badRequest.fieldViolations.map((violation) => ({
        field: violation.field,
        description: violation.description,
      })),
    );
  const retryDelay = connectError.findDetails(RetryInfoSchema).find((info) => info.retryDelay !== undefined)?.retryDelay;
  return new TrellisError(
    connectError.code,
    connectError.rawMessage,
    violations,
    connectError.metadata,
    connectError.cause ?? error,
    retryDelay === undefined ? undefined : durationMs(retryDelay),
  );
}

/**
 * Like `toTrellisError`, for an error a call ended with. A connection that closes under a call
 * (a server restarting, a proxy dropping the socket) surfaces from Node's HTTP/2 stack as a
 * stream reset with CANCEL, which the transport reports as `CANCELED`. gRPC calls that
 * `UNAVAILABLE`: the caller cancelled nothing, and the call may be retried. Only a call whose own
 * signal fired, or whose client was closed, stays `CANCELED`.
 */
export function callError(error: unknown, cancelledByCaller: boolean): TrellisError {
  const converted = toTrellisError(error);
  if (converted.code !== Code.Canceled || cancelledByCaller) return converted;
  return new TrellisError(
    Code.Unavailable,
    `the connection closed before the server answered (${converted.rawMessage}); retry shortly`,
    converted.violations,
    converted.metadata,
    converted,
  );
}

/** True when `error` is a `TrellisError` for a method the server does not implement yet. */
export function isUnimplemented(error: unknown): error is TrellisError {
  return error instanceof TrellisError && error.isUnimplemented;
}
