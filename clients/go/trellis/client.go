package trellis

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	trellisv1 "github.com/trellis-dev/trellis/clients/go/gen/trellis/v1"
)

// Client calls a Trellis server. Every RPC of the API is a method of it, through the embedded
// stubs; it is safe for concurrent use, and one client per server is enough for a whole program.
type Client struct {
	trellisv1.StrategyServiceClient
	trellisv1.IngestServiceClient
	trellisv1.InsightServiceClient
	trellisv1.PeopleServiceClient
	trellisv1.SourceServiceClient
	// GetServerStatus: the server's version, whether the semantic tier is on (or why it runs
	// lexical-only, with the fix), and per workspace how many conversations are indexed and embedded.
	trellisv1.ServerServiceClient
	// RecordFeedback and ListFeedback: what became of the suggestions (see [Feedback] and
	// [Client.AllFeedback]).
	trellisv1.FeedbackServiceClient

	conn   *grpc.ClientConn
	health healthpb.HealthClient
}

// New makes a client for the server at target ("127.0.0.1:50151", "trellis.example.com:443",
// or any gRPC target). It does not connect yet: the first call does, so New fails only on bad
// options. Close the client when done.
//
// Without options the connection is plaintext, requests go to the server's default workspace,
// calls have no deadline but their context's, and unary calls that are safe to repeat are retried
// on UNAVAILABLE with [DefaultRetryPolicy].
func New(target string, options ...Option) (*Client, error) {
	if target == "" {
		return nil, errors.New("trellis: target is empty; give the server's address, e.g. 127.0.0.1:50151")
	}
	cfg := defaultConfig()
	for _, option := range options {
		option(&cfg)
	}
	if cfg.retry.MaxAttempts > 1 && (cfg.retry.InitialBackoff <= 0 || cfg.retry.MaxBackoff < cfg.retry.InitialBackoff || cfg.retry.Jitter < 0 || cfg.retry.Jitter > 1) {
		return nil, fmt.Errorf("trellis: retry policy %+v is invalid; InitialBackoff must be positive, MaxBackoff at least InitialBackoff, and Jitter within [0, 1]", cfg.retry)
	}

	transport := insecure.NewCredentials()
	if cfg.tls != nil {
		transport = credentials.NewTLS(cfg.tls)
	}
	dialOptions := []grpc.DialOption{
		grpc.WithTransportCredentials(transport),
		grpc.WithChainUnaryInterceptor(unaryInterceptors(&cfg)...),
		grpc.WithChainStreamInterceptor(streamInterceptors(&cfg)...),
	}
	if cfg.token != "" {
		dialOptions = append(dialOptions, grpc.WithPerRPCCredentials(bearerToken{token: cfg.token, requiresTLS: cfg.tls != nil}))
	}
	dialOptions = append(dialOptions, cfg.dialOptions...)

	conn, err := grpc.NewClient(target, dialOptions...)
	if err != nil {
		return nil, fmt.Errorf("trellis: cannot make a client for %q: %w", target, err)
	}
	return &Client{
		StrategyServiceClient: trellisv1.NewStrategyServiceClient(conn),
		IngestServiceClient:   trellisv1.NewIngestServiceClient(conn),
		InsightServiceClient:  trellisv1.NewInsightServiceClient(conn),
		PeopleServiceClient:   trellisv1.NewPeopleServiceClient(conn),
		SourceServiceClient:   trellisv1.NewSourceServiceClient(conn),
		ServerServiceClient:   trellisv1.NewServerServiceClient(conn),
		FeedbackServiceClient: trellisv1.NewFeedbackServiceClient(conn),
		conn:                  conn,
		health:                healthpb.NewHealthClient(conn),
	}, nil
}

// Close closes the connection; calls in flight fail with CANCELED.
func (c *Client) Close() error {
	return c.conn.Close()
}

// Conn is the underlying connection, for stubs of other services on the same server.
func (c *Client) Conn() grpc.ClientConnInterface {
	return c.conn
}

// Health asks the server's gRPC health service about the server as a whole.
func (c *Client) Health(ctx context.Context, options ...grpc.CallOption) (healthpb.HealthCheckResponse_ServingStatus, error) {
	response, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{}, options...)
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN, err
	}
	return response.GetStatus(), nil
}
