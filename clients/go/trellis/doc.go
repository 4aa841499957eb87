// Package trellis is the Go client of the Trellis API: a thin, context-aware layer over the
// generated gRPC stubs in package trellisv1.
//
// A [Client] embeds the stub of every Trellis service, so each RPC of the API is a method of the
// client with the generated request and response types, e.g. [Client.PutStrategy] or
// [Client.ListStrategicConversations]. Around those stubs the client adds what every caller would
// otherwise write again:
//
//   - options for the connection: a bearer token sent as per-RPC credentials ([WithToken]), TLS
//     ([WithTLS]), a default workspace ([WithWorkspace]), a default deadline for unary calls
//     ([WithDefaultTimeout]) and retries with exponential backoff and jitter on UNAVAILABLE for
//     calls that are safe to repeat ([WithRetry]);
//   - iterators over paginated lists ([Client.AllStrategyVersions], [Client.AllPeople],
//     [Client.AllMerges], [Client.AllSources], [Client.AllFeedback]) and over server streams
//     ([Client.FollowSync]);
//   - constructors for the messages callers write most: record references ([Ref]), person
//     lookups ([LookupByEmail], ...), ingest records ([PersonRecord], ...) and feedback
//     ([Feedback]);
//   - helpers for the client streams: [Client.IngestRecords] sends records from any iterator and
//     [Client.MatchContacts] runs the bidirectional MatchPeople stream for CRM syncs;
//   - one error type, [*Error], that every failed call returns: it carries the gRPC code, the
//     server's message and the field violations of a refused request, works with errors.As and
//     errors.Is (against [ErrInvalidArgument], [ErrNotFound], ... and the context errors), and
//     still answers status.FromError.
package trellis
