package trellis_test

import (
	"context"
	"errors"
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	trellisv1 "github.com/trellis-dev/trellis/clients/go/gen/trellis/v1"
	"github.com/trellis-dev/trellis/clients/go/trellis"
)

func TestEveryRPCOfTheAPIIsAMethodOfTheClient(t *testing.T) {
	_ = trellisv1.File_trellis_v1_strategy_proto // makes sure the API's descriptors are registered
	clientType := reflect.TypeOf(&trellis.Client{})
	methods := 0
	protoregistry.GlobalFiles.RangeFilesByPackage("trellis.v1", func(file protoreflect.FileDescriptor) bool {
		for i := range file.Services().Len() {
			service := file.Services().Get(i)
			for j := range service.Methods().Len() {
				method := service.Methods().Get(j)
				methods++
				if _, ok := clientType.MethodByName(string(method.Name())); !ok {
					t.Errorf("%s.%s is not a method of trellis.Client", service.Name(), method.Name())
				}
			}
		}
		return true
	})
	if methods < 30 {
		t.Errorf("found only %d RPCs in package trellis.v1; are the descriptors registered?", methods)
	}
}

func TestHealthReportsServing(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	serving, err := client.Health(testContext(t))
	if err != nil {
		t.Fatalf("Health: %v", err)
	}
	if serving != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health %v, want SERVING", serving)
	}
}

// headerRecorder is a real gRPC server (the standard health service) that records the metadata
// of the calls it receives, to see what the client puts on the wire.
type headerRecorder struct {
	address string
	mutex   sync.Mutex
	seen    []metadata.MD
}

func startHeaderRecorder(t *testing.T) *headerRecorder {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	recorder := &headerRecorder{address: listener.Addr().String()}
	server := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, request any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		incoming, _ := metadata.FromIncomingContext(ctx)
		recorder.mutex.Lock()
		recorder.seen = append(recorder.seen, incoming)
		recorder.mutex.Unlock()
		return handler(ctx, request)
	}))
	healthpb.RegisterHealthServer(server, health.NewServer())
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	return recorder
}

func TestTokenTravelsAsBearerMetadataOnEveryCall(t *testing.T) {
	t.Parallel()
	recorder := startHeaderRecorder(t)
	client, err := trellis.New(recorder.address, trellis.WithToken("secret-token"))
	if err != nil {
		t.Fatalf("trellis.New: %v", err)
	}
	defer client.Close()
	for range 2 {
		if _, err := client.Health(testContext(t)); err != nil {
			t.Fatalf("Health: %v", err)
		}
	}
	recorder.mutex.Lock()
	defer recorder.mutex.Unlock()
	if len(recorder.seen) != 2 {
		t.Fatalf("the server saw %d calls, want 2", len(recorder.seen))
	}
	for _, seen := range recorder.seen {
		if got := seen.Get("authorization"); len(got) != 1 || got[0] != "Bearer secret-token" {
			t.Errorf("authorization metadata %q, want [\"Bearer secret-token\"]", got)
		}
	}

	// A Trellis server without auth ignores the token (auth_test.go tests one that requires it).
	trellisClient := newClient(t, trellis.WithToken("secret-token"))
	if _, err := trellisClient.PutStrategy(testContext(t), &trellisv1.PutStrategyRequest{Workspace: newWorkspace(t), Strategy: testStrategy()}); err != nil {
		t.Fatalf("PutStrategy with a token: %v", err)
	}
}

func TestTLSToAPlaintextServerFailsAsUnavailable(t *testing.T) {
	t.Parallel()
	client := newClient(t, trellis.WithTLS(nil), trellis.WithRetry(trellis.RetryPolicy{}))
	_, err := client.Health(testContext(t))
	if !errors.Is(err, trellis.ErrUnavailable) {
		t.Fatalf("a TLS call to a plaintext server returned %v, want UNAVAILABLE", err)
	}
}

func TestDefaultTimeoutBoundsCallsWithoutADeadline(t *testing.T) {
	t.Parallel()
	client := newClient(t, trellis.WithDefaultTimeout(time.Nanosecond))
	request := &trellisv1.GetStrategyRequest{Workspace: newWorkspace(t)}

	_, err := client.GetStrategy(context.Background(), request)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, trellis.ErrDeadlineExceeded) {
		t.Fatalf("a call without a deadline returned %v, want DEADLINE_EXCEEDED from the default timeout", err)
	}

	// A deadline of the caller's own wins over the default.
	_, err = client.GetStrategy(testContext(t), request)
	if !errors.Is(err, trellis.ErrNotFound) {
		t.Fatalf("a call with its own deadline returned %v, want NOT_FOUND from the server", err)
	}
}

// attemptCounter counts the attempts of each method: added with WithDialOptions, it runs inside
// the client's retries.
type attemptCounter struct {
	mutex    sync.Mutex
	attempts map[string]int
}

func (counter *attemptCounter) interceptor(ctx context.Context, method string, request, reply any, conn *grpc.ClientConn, invoker grpc.UnaryInvoker, options ...grpc.CallOption) error {
	counter.mutex.Lock()
	if counter.attempts == nil {
		counter.attempts = map[string]int{}
	}
	counter.attempts[method]++
	counter.mutex.Unlock()
	return invoker(ctx, method, request, reply, conn, options...)
}

func (counter *attemptCounter) of(method string) int {
	counter.mutex.Lock()
	defer counter.mutex.Unlock()
	return counter.attempts[method]
}

// unusedAddress is a loopback address nothing listens on, the moment it is returned.
func unusedAddress(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	address := listener.Addr().String()
	_ = listener.Close()
	return address
}

func TestRetriesOnUnavailableOnlyCallsSafeToRepeat(t *testing.T) {
	t.Parallel()
	counter := &attemptCounter{}
	client, err := trellis.New(unusedAddress(t),
		trellis.WithRetry(trellis.RetryPolicy{MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, Jitter: 0.1}),
		trellis.WithDialOptions(grpc.WithChainUnaryInterceptor(counter.interceptor)))
	if err != nil {
		t.Fatalf("trellis.New: %v", err)
	}
	defer client.Close()
	ctx := testContext(t)

	_, err = client.GetStrategy(ctx, &trellisv1.GetStrategyRequest{})
	if !errors.Is(err, trellis.ErrUnavailable) {
		t.Fatalf("GetStrategy with no server returned %v, want UNAVAILABLE", err)
	}
	if attempts := counter.of(trellisv1.StrategyService_GetStrategy_FullMethodName); attempts != 3 {
		t.Errorf("GetStrategy was attempted %d times, want 3", attempts)
	}

	// Each put makes a new version: repeating one could store the strategy twice.
	_, err = client.PutStrategy(ctx, &trellisv1.PutStrategyRequest{Strategy: testStrategy()})
	if !errors.Is(err, trellis.ErrUnavailable) {
		t.Fatalf("PutStrategy with no server returned %v, want UNAVAILABLE", err)
	}
	if attempts := counter.of(trellisv1.StrategyService_PutStrategy_FullMethodName); attempts != 1 {
		t.Errorf("PutStrategy was attempted %d times, want 1", attempts)
	}

	_, err = client.ScoreConversations(ctx, &trellisv1.ScoreConversationsRequest{}, trellis.NoRetry())
	if !errors.Is(err, trellis.ErrUnavailable) {
		t.Fatalf("ScoreConversations with no server returned %v, want UNAVAILABLE", err)
	}
	if attempts := counter.of(trellisv1.InsightService_ScoreConversations_FullMethodName); attempts != 1 {
		t.Errorf("ScoreConversations with NoRetry was attempted %d times, want 1", attempts)
	}
}

func TestRetriesReachAServerThatComesUpLate(t *testing.T) {
	t.Parallel()
	address := unusedAddress(t)
	counter := &attemptCounter{}
	client, err := trellis.New(address,
		trellis.WithRetry(trellis.RetryPolicy{MaxAttempts: 20, InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, Jitter: 0.2}),
		trellis.WithDialOptions(
			grpc.WithChainUnaryInterceptor(counter.interceptor),
			// Reconnect quickly, so that the retries rather than gRPC's own reconnection backoff
			// decide when the server is reached.
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 300 * time.Millisecond},
				MinConnectTimeout: time.Second,
			})))
	if err != nil {
		t.Fatalf("trellis.New: %v", err)
	}
	defer client.Close()

	var late *server
	var startErr error
	started := make(chan struct{})
	go func() {
		defer close(started)
		time.Sleep(300 * time.Millisecond)
		late, startErr = startServer(trellisBinaryPath, address, "", "")
	}()
	t.Cleanup(func() {
		<-started
		if late != nil {
			_ = late.stop()
		}
	})

	_, err = client.GetStrategy(testContext(t), &trellisv1.GetStrategyRequest{Workspace: newWorkspace(t)})
	<-started
	if startErr != nil {
		t.Fatalf("starting the late server on %s: %v", address, startErr)
	}
	if !errors.Is(err, trellis.ErrNotFound) {
		t.Fatalf("GetStrategy returned %v, want NOT_FOUND from the server once it was up", err)
	}
	if attempts := counter.of(trellisv1.StrategyService_GetStrategy_FullMethodName); attempts < 2 {
		t.Errorf("GetStrategy was attempted %d times, want retries before the server came up", attempts)
	}
}

func TestWorkspaceOptionFillsOnlyEmptyWorkspaces(t *testing.T) {
	t.Parallel()
	optionWorkspace, explicitWorkspace := newWorkspace(t), newWorkspace(t)
	client := newClient(t, trellis.WithWorkspace(optionWorkspace))
	plain := newClient(t)
	ctx := testContext(t)

	request := &trellisv1.PutStrategyRequest{Strategy: testStrategy()}
	if _, err := client.PutStrategy(ctx, request); err != nil {
		t.Fatalf("PutStrategy: %v", err)
	}
	if request.GetWorkspace() != "" {
		t.Errorf("the client changed the caller's request: workspace %q", request.GetWorkspace())
	}
	if _, err := plain.GetStrategy(ctx, &trellisv1.GetStrategyRequest{Workspace: optionWorkspace}); err != nil {
		t.Errorf("the strategy is not in the option's workspace: %v", err)
	}

	if _, err := client.PutStrategy(ctx, &trellisv1.PutStrategyRequest{Workspace: explicitWorkspace, Strategy: testStrategy()}); err != nil {
		t.Fatalf("PutStrategy: %v", err)
	}
	versions, err := plain.ListStrategyVersions(ctx, &trellisv1.ListStrategyVersionsRequest{Workspace: optionWorkspace})
	if err != nil {
		t.Fatalf("ListStrategyVersions: %v", err)
	}
	if len(versions.GetStrategyVersions()) != 1 {
		t.Errorf("the option's workspace has %d versions, want 1: an explicit workspace must win", len(versions.GetStrategyVersions()))
	}
	if _, err := plain.GetStrategy(ctx, &trellisv1.GetStrategyRequest{Workspace: explicitWorkspace}); err != nil {
		t.Errorf("the strategy is not in the explicit workspace: %v", err)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	if _, err := trellis.New(""); err == nil {
		t.Error("New accepted an empty target")
	}
	if _, err := trellis.New("127.0.0.1:1", trellis.WithRetry(trellis.RetryPolicy{MaxAttempts: 3})); err == nil {
		t.Error("New accepted retries without a backoff")
	}
}

func TestClientIsSafeForConcurrentCalls(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)
	ctx := testContext(t)
	var failures atomic.Int32
	var calls sync.WaitGroup
	for range 16 {
		calls.Add(1)
		go func() {
			defer calls.Done()
			_, err := client.ScoreConversations(ctx, &trellisv1.ScoreConversationsRequest{
				Workspace: workspace, Conversations: []*trellisv1.RecordRef{trellis.Ref("forum", "t1")},
			})
			if err != nil {
				failures.Add(1)
				t.Errorf("ScoreConversations: %v", err)
			}
		}()
	}
	calls.Wait()
	if failures.Load() > 0 {
		t.Errorf("%d of 16 concurrent calls failed", failures.Load())
	}
}
