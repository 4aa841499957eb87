/**
 * The Trellis client for Node.js: `TrellisClient` and its per-service clients, the error type
 * with field violations, the retry policy, and every generated message and enum type of the
 * `trellis.v1` API.
 */
export {
  TrellisClient,
  StrategyClient,
  IngestClient,
  InsightClient,
  PeopleClient,
  SourceClient,
  ServerClient,
  FeedbackClient,
  NOT_RETRIED_METHODS,
  MATCH_IN_FLIGHT,
  paginate,
  feedbackItem,
  type TrellisClientOptions,
  type TlsOptions,
  type IngestRecord,
  type MatchContact,
  type MatchContactsOptions,
  type FeedbackInit,
  type FeedbackParts,
  type RecordRefInit,
} from "./client.js";
export { TrellisError, Code, codeName, isUnimplemented, toTrellisError, type FieldViolation } from "./errors.js";
export { backoffMs, defaultRetryPolicy, type RetryPolicy, type RetryEvent } from "./retry.js";
export type { ServiceClient, Streamable, TrellisCallOptions } from "./service.js";
export * from "./gen/trellis/v1/common_pb.js";
export * from "./gen/trellis/v1/feedback_pb.js";
export * from "./gen/trellis/v1/ingest_pb.js";
export * from "./gen/trellis/v1/insight_pb.js";
export * from "./gen/trellis/v1/people_pb.js";
export * from "./gen/trellis/v1/server_pb.js";
export * from "./gen/trellis/v1/source_pb.js";
export * from "./gen/trellis/v1/strategy_pb.js";
export { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
