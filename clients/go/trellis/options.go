package trellis

import (
	"crypto/tls"
	"time"

	"google.golang.org/grpc"
)

// Option configures a [Client] at construction.
type Option func(*config)

type config struct {
	token          string
	tls            *tls.Config
	workspace      string
	defaultTimeout time.Duration
	retry          RetryPolicy
	dialOptions    []grpc.DialOption
}

func defaultConfig() config {
	return config{retry: DefaultRetryPolicy}
}

// RetryPolicy says how unary calls that are safe to repeat are retried when the server, or the
// way to it, answers UNAVAILABLE. The wait before retry n (from 1) is InitialBackoff * 2^(n-1),
// moved at random by up to ±Jitter of itself, and never more than MaxBackoff. A call's deadline
// bounds all its attempts together.
type RetryPolicy struct {
	// Attempts in all, the first included; 1 or less turns retries off.
	MaxAttempts int
	// The wait before the first retry.
	InitialBackoff time.Duration
	// The longest wait between two attempts.
	MaxBackoff time.Duration
	// The fraction, in [0, 1], by which each wait is moved at random so that many clients
	// retrying at once spread out.
	Jitter float64
}

// DefaultRetryPolicy is the policy of a client made without [WithRetry]: four attempts, waiting
// about 100 ms, 200 ms and 400 ms between them.
var DefaultRetryPolicy = RetryPolicy{
	MaxAttempts:    4,
	InitialBackoff: 100 * time.Millisecond,
	MaxBackoff:     2 * time.Second,
	Jitter:         0.2,
}

// WithToken sends token as "authorization: Bearer <token>" metadata on every call. Over a
// plaintext connection (no [WithTLS]) the token travels in clear text: use that only on loopback
// or inside a trusted network.
func WithToken(token string) Option {
	return func(c *config) { c.token = token }
}

// WithTLS makes the client connect over TLS. A nil config uses the system's root certificates and
// the target's host name.
func WithTLS(tlsConfig *tls.Config) Option {
	return func(c *config) {
		if tlsConfig == nil {
			tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		c.tls = tlsConfig
	}
}

// WithWorkspace sets the workspace of every request that leaves its workspace field empty.
// Without it, an empty workspace means the server's default workspace.
func WithWorkspace(workspace string) Option {
	return func(c *config) { c.workspace = workspace }
}

// WithDefaultTimeout gives every unary call whose context has no deadline this timeout. Streams
// are left alone: they last as long as their context.
func WithDefaultTimeout(timeout time.Duration) Option {
	return func(c *config) { c.defaultTimeout = timeout }
}

// WithRetry replaces [DefaultRetryPolicy]. Pass RetryPolicy{} (or MaxAttempts 1) to turn
// retries off; a single call can opt out with the call option [NoRetry].
func WithRetry(policy RetryPolicy) Option {
	return func(c *config) { c.retry = policy }
}

// WithDialOptions adds gRPC dial options, applied after the client's own. Interceptors added
// here run inside the client's: once per attempt, after the workspace is filled in.
func WithDialOptions(options ...grpc.DialOption) Option {
	return func(c *config) { c.dialOptions = append(c.dialOptions, options...) }
}
