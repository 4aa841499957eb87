package trellis_test

// Auth failures against a real server that requires API keys: keys are made and revoked with the
// real `trellis keys` on that server's database, and each refusal comes back as a *trellis.Error
// matching its sentinel, without being retried.

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	trellisv1 "github.com/trellis-dev/trellis/clients/go/gen/trellis/v1"
	"github.com/trellis-dev/trellis/clients/go/trellis"
)

// authClient connects to running with token (none when empty) and workspace, with fast retries
// on UNAVAILABLE whose attempts counter counts, to show that refusals are not retried.
func authClient(t *testing.T, running *server, token, workspace string, counter *attemptCounter) *trellis.Client {
	t.Helper()
	options := []trellis.Option{
		trellis.WithWorkspace(workspace),
		trellis.WithRetry(trellis.RetryPolicy{MaxAttempts: 4, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}),
		trellis.WithDialOptions(grpc.WithChainUnaryInterceptor(counter.interceptor)),
	}
	if token != "" {
		options = append(options, trellis.WithToken(token))
	}
	client, err := trellis.New(running.address, options...)
	if err != nil {
		t.Fatalf("trellis.New: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// wantRefused checks that err is a *trellis.Error of code, matching sentinel, whose message
// contains fragment, and returns it.
func wantRefused(t *testing.T, err error, code codes.Code, sentinel error, fragment string) *trellis.Error {
	t.Helper()
	var apiError *trellis.Error
	if !errors.As(err, &apiError) {
		t.Fatalf("error %T %v, want a *trellis.Error with code %s", err, err, code)
	}
	if apiError.Code != code || !errors.Is(err, sentinel) || status.Code(err) != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
	if !strings.Contains(apiError.Message, fragment) {
		t.Errorf("message %q does not contain %q", apiError.Message, fragment)
	}
	return apiError
}

func wantAttempts(t *testing.T, counter *attemptCounter, method string, want int) {
	t.Helper()
	if attempts := counter.of(method); attempts != want {
		t.Errorf("%s was attempted %d times, want %d (refusals are not retried)", method, attempts, want)
	}
}

const getStrategy = trellisv1.StrategyService_GetStrategy_FullMethodName

func TestAValidWriteKeyWorks(t *testing.T) {
	t.Parallel()
	workspace := newWorkspace(t)
	key := authServer.createKey(t, workspace, "write")
	client := authClient(t, authServer, key.Key, workspace, &attemptCounter{})
	ctx := testContext(t)
	if _, err := client.PutStrategy(ctx, &trellisv1.PutStrategyRequest{Strategy: testStrategy()}); err != nil {
		t.Fatalf("PutStrategy with a write key: %v", err)
	}
	got, err := client.GetStrategy(ctx, &trellisv1.GetStrategyRequest{})
	if err != nil || got.GetStrategyVersion().GetVersion() != 1 {
		t.Fatalf("GetStrategy with a write key: %v, %v", got, err)
	}
	versions := 0
	for _, err := range client.AllStrategyVersions(ctx, &trellisv1.ListStrategyVersionsRequest{}) {
		if err != nil {
			t.Fatalf("AllStrategyVersions: %v", err)
		}
		versions++
	}
	if versions != 1 {
		t.Errorf("listed %d versions, want 1", versions)
	}
}

func TestCallsWithoutAValidKeyAreUnauthenticatedAndNotRetried(t *testing.T) {
	t.Parallel()
	known := authServer.createKey(t, newWorkspace(t), "read")
	for _, tc := range []struct {
		name, token, fragment string
	}{
		{"no token", "", "requires an api key"},
		{"garbage token", "not-a-key-this-server-issued", "is not `Bearer trk_<id>_<secret>`"},
		{"unknown key", "trk_0123456789abcdef_" + strings.Repeat("0", 64), "is not known"},
		{"known id, wrong secret", fmt.Sprintf("trk_%s_%s", known.ID, strings.Repeat("f", 64)), "is not known"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			counter := &attemptCounter{}
			client := authClient(t, authServer, tc.token, newWorkspace(t), counter)
			_, err := client.GetStrategy(testContext(t), &trellisv1.GetStrategyRequest{})
			wantRefused(t, err, codes.Unauthenticated, trellis.ErrUnauthenticated, tc.fragment)
			wantAttempts(t, counter, getStrategy, 1)
		})
	}
}

func TestARevokedKeyStopsWorkingAtOnce(t *testing.T) {
	t.Parallel()
	workspace := newWorkspace(t)
	key := authServer.createKey(t, workspace, "write")
	counter := &attemptCounter{}
	client := authClient(t, authServer, key.Key, workspace, counter)
	ctx := testContext(t)
	if _, err := client.PutStrategy(ctx, &trellisv1.PutStrategyRequest{Strategy: testStrategy()}); err != nil {
		t.Fatalf("PutStrategy before revoking: %v", err)
	}
	authServer.revokeKey(t, key)
	_, err := client.GetStrategy(ctx, &trellisv1.GetStrategyRequest{})
	wantRefused(t, err, codes.Unauthenticated, trellis.ErrUnauthenticated, "was revoked")
	wantAttempts(t, counter, getStrategy, 1)
}

func TestAReadKeyCannotWrite(t *testing.T) {
	t.Parallel()
	workspace := newWorkspace(t)
	writer := authClient(t, authServer, authServer.createKey(t, workspace, "write").Key, workspace, &attemptCounter{})
	ctx := testContext(t)
	if _, err := writer.PutStrategy(ctx, &trellisv1.PutStrategyRequest{Strategy: testStrategy()}); err != nil {
		t.Fatalf("PutStrategy with a write key: %v", err)
	}
	counter := &attemptCounter{}
	reader := authClient(t, authServer, authServer.createKey(t, workspace, "read").Key, workspace, counter)
	if _, err := reader.GetStrategy(ctx, &trellisv1.GetStrategyRequest{}); err != nil {
		t.Fatalf("GetStrategy with a read key: %v", err)
	}
	_, err := reader.PutStrategy(ctx, &trellisv1.PutStrategyRequest{Strategy: testStrategy()})
	wantRefused(t, err, codes.PermissionDenied, trellis.ErrPermissionDenied, "needs a write key")
	wantAttempts(t, counter, trellisv1.StrategyService_PutStrategy_FullMethodName, 1)
}

func TestAKeyOfOneWorkspaceCannotReadAnother(t *testing.T) {
	t.Parallel()
	home, other := newWorkspace(t), newWorkspace(t)
	counter := &attemptCounter{}
	client := authClient(t, authServer, authServer.createKey(t, home, "admin").Key, home, counter)
	ctx := testContext(t)
	if _, err := client.PutStrategy(ctx, &trellisv1.PutStrategyRequest{Strategy: testStrategy()}); err != nil {
		t.Fatalf("PutStrategy in the key's own workspace: %v", err)
	}
	_, err := client.GetStrategy(ctx, &trellisv1.GetStrategyRequest{Workspace: other})
	wantRefused(t, err, codes.PermissionDenied, trellis.ErrPermissionDenied, fmt.Sprintf("cannot reach workspace %q", other))
	wantAttempts(t, counter, getStrategy, 1)
	for _, err := range client.AllStrategyVersions(ctx, &trellisv1.ListStrategyVersionsRequest{Workspace: other}) {
		wantRefused(t, err, codes.PermissionDenied, trellis.ErrPermissionDenied, "cannot reach workspace")
		break
	}
}

func TestOverTheRateLimitIsResourceExhaustedWithTheDelay(t *testing.T) {
	t.Parallel()
	limited, err := startServer(trellisBinaryPath, "127.0.0.1:0", authConfig(1, 1), "")
	if err != nil {
		t.Fatalf("starting a rate-limited server: %v", err)
	}
	t.Cleanup(func() {
		if err := limited.stop(); err != nil {
			t.Errorf("stopping the rate-limited server: %v", err)
		}
	})
	workspace := newWorkspace(t)
	counter := &attemptCounter{}
	client := authClient(t, limited, limited.createKey(t, workspace, "write").Key, workspace, counter)
	ctx := testContext(t)
	if _, err := client.PutStrategy(ctx, &trellisv1.PutStrategyRequest{Strategy: testStrategy()}); err != nil {
		t.Fatalf("the first call: %v", err)
	}
	_, err = client.GetStrategy(ctx, &trellisv1.GetStrategyRequest{})
	apiError := wantRefused(t, err, codes.ResourceExhausted, trellis.ErrResourceExhausted, "rate limit")
	if apiError.RetryDelay <= 0 || apiError.RetryDelay > time.Second {
		t.Fatalf("RetryDelay %v, want a delay in (0, 1s]", apiError.RetryDelay)
	}
	wantAttempts(t, counter, getStrategy, 1)
	time.Sleep(apiError.RetryDelay + 50*time.Millisecond)
	if _, err := client.GetStrategy(ctx, &trellisv1.GetStrategyRequest{}); err != nil {
		t.Fatalf("a call after the delay: %v", err)
	}
}
