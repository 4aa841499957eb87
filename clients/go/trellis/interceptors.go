package trellis

import (
	"context"
	"errors"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/retry"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	trellisv1 "github.com/trellis-dev/trellis/clients/go/gen/trellis/v1"
)

// The client's behaviour lives in interceptors so that it holds for the embedded stubs too. The
// chain, outermost first: default deadline, typed errors, default workspace, retries. The default
// deadline sits outside the retries so that it bounds a call's attempts together, and outside the
// typed errors so that they see the deadline the call ran under.

func unaryInterceptors(cfg *config) []grpc.UnaryClientInterceptor {
	var interceptors []grpc.UnaryClientInterceptor
	if cfg.defaultTimeout > 0 {
		interceptors = append(interceptors, unaryDefaultTimeout(cfg))
	}
	interceptors = append(interceptors, unaryErrors)
	if cfg.workspace != "" {
		interceptors = append(interceptors, unaryWorkspace(cfg.workspace))
	}
	if cfg.retry.MaxAttempts > 1 {
		interceptors = append(interceptors, unaryRetry(cfg.retry))
	}
	return interceptors
}

func streamInterceptors(cfg *config) []grpc.StreamClientInterceptor {
	interceptors := []grpc.StreamClientInterceptor{streamErrors}
	if cfg.workspace != "" {
		interceptors = append(interceptors, streamWorkspace(cfg.workspace))
	}
	return interceptors
}

func unaryErrors(ctx context.Context, method string, request, reply any, conn *grpc.ClientConn, invoker grpc.UnaryInvoker, options ...grpc.CallOption) error {
	return callError(ctx, invoker(ctx, method, request, reply, conn, options...))
}

// callError reads err into an *Error. A server may end a call whose deadline it saw expire with
// CANCELLED (tonic answers "Timeout expired"); when the caller's own deadline has passed too, the
// truth for the caller is DEADLINE_EXCEEDED, which is what it gets.
func callError(ctx context.Context, err error) error {
	err = FromError(err)
	var apiError *Error
	if errors.As(err, &apiError) && apiError.Code == codes.Canceled && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return FromError(status.ErrorProto(deadlineExceeded(apiError.status)))
	}
	return err
}

func deadlineExceeded(canceled *status.Status) *spb.Status {
	message := canceled.Proto()
	message.Code = int32(codes.DeadlineExceeded)
	return message
}

func streamErrors(ctx context.Context, desc *grpc.StreamDesc, conn *grpc.ClientConn, method string, streamer grpc.Streamer, options ...grpc.CallOption) (grpc.ClientStream, error) {
	stream, err := streamer(ctx, desc, conn, method, options...)
	if err != nil {
		return nil, callError(ctx, err)
	}
	return errorStream{stream}, nil
}

// errorStream turns the errors of a stream into *Error, leaving io.EOF alone.
type errorStream struct {
	grpc.ClientStream
}

func (stream errorStream) SendMsg(message any) error {
	return callError(stream.Context(), stream.ClientStream.SendMsg(message))
}

func (stream errorStream) RecvMsg(message any) error {
	return callError(stream.Context(), stream.ClientStream.RecvMsg(message))
}

func (stream errorStream) CloseSend() error {
	return callError(stream.Context(), stream.ClientStream.CloseSend())
}

func unaryDefaultTimeout(cfg *config) grpc.UnaryClientInterceptor {
	timeout := cfg.defaultTimeout
	return func(ctx context.Context, method string, request, reply any, conn *grpc.ClientConn, invoker grpc.UnaryInvoker, options ...grpc.CallOption) error {
		if _, hasDeadline := ctx.Deadline(); !hasDeadline {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		return invoker(ctx, method, request, reply, conn, options...)
	}
}

func unaryWorkspace(workspace string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, request, reply any, conn *grpc.ClientConn, invoker grpc.UnaryInvoker, options ...grpc.CallOption) error {
		return invoker(ctx, method, withWorkspace(request, workspace), reply, conn, options...)
	}
}

func streamWorkspace(workspace string) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, conn *grpc.ClientConn, method string, streamer grpc.Streamer, options ...grpc.CallOption) (grpc.ClientStream, error) {
		stream, err := streamer(ctx, desc, conn, method, options...)
		if err != nil {
			return nil, err
		}
		return workspaceStream{ClientStream: stream, workspace: workspace}, nil
	}
}

type workspaceStream struct {
	grpc.ClientStream
	workspace string
}

func (stream workspaceStream) SendMsg(message any) error {
	return stream.ClientStream.SendMsg(withWorkspace(message, stream.workspace))
}

// withWorkspace returns message with its string field `workspace` set, when it has one and it is
// empty. It sets it on a copy: the caller's message is never changed behind its back.
func withWorkspace(message any, workspace string) any {
	protoMessage, ok := message.(proto.Message)
	if !ok {
		return message
	}
	reflection := protoMessage.ProtoReflect()
	field := reflection.Descriptor().Fields().ByName("workspace")
	if field == nil || field.Kind() != protoreflect.StringKind || field.IsList() || reflection.Get(field).String() != "" {
		return message
	}
	filled := proto.Clone(protoMessage)
	filled.ProtoReflect().Set(field, protoreflect.ValueOfString(workspace))
	return filled
}

// NoRetry is a call option that turns retries off for one call.
func NoRetry() grpc.CallOption {
	return retry.Disable()
}

func unaryRetry(policy RetryPolicy) grpc.UnaryClientInterceptor {
	retrying := retry.UnaryClientInterceptor(
		retry.WithMax(uint(policy.MaxAttempts)),
		retry.WithCodes(codes.Unavailable),
		retry.WithBackoff(retry.BackoffExponentialWithJitterBounded(policy.InitialBackoff, policy.Jitter, policy.MaxBackoff)),
	)
	return func(ctx context.Context, method string, request, reply any, conn *grpc.ClientConn, invoker grpc.UnaryInvoker, options ...grpc.CallOption) error {
		if !safeToRepeat(method, request) {
			return invoker(ctx, method, request, reply, conn, options...)
		}
		return retrying(ctx, method, request, reply, conn, invoker, options...)
	}
}

// Unary calls that are safe to repeat: reads, and UpdateSource and SetSourceSecrets, whose second application changes
// nothing and answers the same. PutStrategy (each put is a new version), CreateSource, MergePeople
// and UnmergePeople are not; DeleteSource and ForgetPerson are not either, since a repeat of one
// that succeeded would answer NOT_FOUND. Neither is any RPC added to the API later, until it is
// listed here or its proto declares an idempotency_level.
var idempotentMethods = map[string]bool{
	trellisv1.StrategyService_GetStrategy_FullMethodName:               true,
	trellisv1.StrategyService_ListStrategyVersions_FullMethodName:      true,
	trellisv1.IngestService_GetConversation_FullMethodName:             true,
	trellisv1.InsightService_ScoreConversations_FullMethodName:         true,
	trellisv1.InsightService_ListStrategicConversations_FullMethodName: true,
	trellisv1.InsightService_AuditCommunityDesign_FullMethodName:       true,
	trellisv1.InsightService_SuggestDiscussions_FullMethodName:         true,
	trellisv1.InsightService_SuggestParticipants_FullMethodName:        true,
	trellisv1.InsightService_FindSupportingAssets_FullMethodName:       true,
	trellisv1.InsightService_FindProspects_FullMethodName:              true,
	trellisv1.InsightService_RecommendPlatformMix_FullMethodName:       true,
	trellisv1.InsightService_PlanActions_FullMethodName:                true,
	trellisv1.PeopleService_GetPerson_FullMethodName:                   true,
	trellisv1.PeopleService_ListPeople_FullMethodName:                  true,
	trellisv1.PeopleService_MatchPerson_FullMethodName:                 true,
	trellisv1.PeopleService_ListMerges_FullMethodName:                  true,
	trellisv1.SourceService_ListConnectors_FullMethodName:              true,
	trellisv1.SourceService_GetSource_FullMethodName:                   true,
	trellisv1.SourceService_UpdateSource_FullMethodName:                true,
	trellisv1.SourceService_SetSourceSecrets_FullMethodName:            true,
	trellisv1.SourceService_ListSources_FullMethodName:                 true,
	trellisv1.SourceService_CheckSource_FullMethodName:                 true,
	trellisv1.ServerService_GetServerStatus_FullMethodName:             true,
	trellisv1.FeedbackService_ListFeedback_FullMethodName:              true,
	"/grpc.health.v1.Health/Check":                                     true,
}

// Unary calls whose repeat is safe or not depending on the request. RecordFeedback replaces
// feedback recorded under the same id, so a repeat changes nothing when every id is the same on
// each attempt: given, or derived by the server from the suggestion, the outcome and the time,
// which it takes as the time it received the call when the feedback has none.
var idempotentRequests = map[string]func(request any) bool{
	trellisv1.FeedbackService_RecordFeedback_FullMethodName: func(request any) bool {
		record, ok := request.(*trellisv1.RecordFeedbackRequest)
		if !ok {
			return false
		}
		for _, feedback := range record.GetFeedback() {
			if feedback.GetId() == "" && feedback.GetAt() == nil {
				return false
			}
		}
		return true
	},
}

func safeToRepeat(method string, request any) bool {
	if idempotentMethods[method] {
		return true
	}
	if idempotent, ok := idempotentRequests[method]; ok {
		return idempotent(request)
	}
	// "/trellis.v1.StrategyService/GetStrategy" names the descriptor
	// "trellis.v1.StrategyService.GetStrategy".
	name := protoreflect.FullName(strings.ReplaceAll(strings.TrimPrefix(method, "/"), "/", "."))
	descriptor, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
	if err != nil {
		return false
	}
	methodDescriptor, ok := descriptor.(protoreflect.MethodDescriptor)
	if !ok {
		return false
	}
	methodOptions, ok := methodDescriptor.Options().(*descriptorpb.MethodOptions)
	if !ok || methodOptions == nil {
		return false
	}
	level := methodOptions.GetIdempotencyLevel()
	return level == descriptorpb.MethodOptions_IDEMPOTENT || level == descriptorpb.MethodOptions_NO_SIDE_EFFECTS
}

// bearerToken sends the API token as per-RPC credentials.
type bearerToken struct {
	token       string
	requiresTLS bool
}

var _ credentials.PerRPCCredentials = bearerToken{}

func (credential bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + credential.token}, nil
}

func (credential bearerToken) RequireTransportSecurity() bool {
	return credential.requiresTLS
}
