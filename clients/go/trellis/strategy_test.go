package trellis_test

import (
	"errors"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	trellisv1 "github.com/trellis-dev/trellis/clients/go/gen/trellis/v1"
	"github.com/trellis-dev/trellis/clients/go/trellis"
)

func TestPutStrategyThenGetItBack(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	ctx := testContext(t)
	workspace := newWorkspace(t)

	put, err := client.PutStrategy(ctx, &trellisv1.PutStrategyRequest{Workspace: workspace, Strategy: testStrategy()})
	if err != nil {
		t.Fatalf("PutStrategy: %v", err)
	}
	if put.GetStrategyVersion().GetVersion() != 1 {
		t.Errorf("the first put made version %d, want 1", put.GetStrategyVersion().GetVersion())
	}
	if put.GetStrategyVersion().GetCreatedAt() == nil {
		t.Error("the version has no created_at")
	}

	latest, err := client.GetStrategy(ctx, &trellisv1.GetStrategyRequest{Workspace: workspace})
	if err != nil {
		t.Fatalf("GetStrategy: %v", err)
	}
	got := latest.GetStrategyVersion().GetStrategy()
	if got.GetName() != testStrategy().GetName() || len(got.GetFacets()) != len(testStrategy().GetFacets()) {
		t.Errorf("GetStrategy returned %v, want the strategy that was put", got)
	}
	if weight := got.GetFacets()[1].GetWeight(); weight != 2 {
		t.Errorf("facet weight came back as %v, want 2", weight)
	}

	first, err := client.GetStrategy(ctx, &trellisv1.GetStrategyRequest{Workspace: workspace, Version: 1})
	if err != nil {
		t.Fatalf("GetStrategy version 1: %v", err)
	}
	if !proto.Equal(first.GetStrategyVersion(), latest.GetStrategyVersion()) {
		t.Error("version 1 differs from the latest version, though only one was put")
	}
}

func TestStrategyOfAnEmptyWorkspaceIsNotFound(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	_, err := client.GetStrategy(testContext(t), &trellisv1.GetStrategyRequest{Workspace: newWorkspace(t)})
	if !errors.Is(err, trellis.ErrNotFound) {
		t.Fatalf("GetStrategy of an empty workspace returned %v, want NOT_FOUND", err)
	}
}

func TestAllStrategyVersionsWalksEveryPageNewestFirst(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	ctx := testContext(t)
	workspace := newWorkspace(t)
	for range 5 {
		if _, err := client.PutStrategy(ctx, &trellisv1.PutStrategyRequest{Workspace: workspace, Strategy: testStrategy()}); err != nil {
			t.Fatalf("PutStrategy: %v", err)
		}
	}

	request := &trellisv1.ListStrategyVersionsRequest{Workspace: workspace, PageSize: 2}
	var versions []uint32
	for version, err := range client.AllStrategyVersions(ctx, request) {
		if err != nil {
			t.Fatalf("AllStrategyVersions: %v", err)
		}
		versions = append(versions, version.GetVersion())
	}
	want := []uint32{5, 4, 3, 2, 1}
	if !slices.Equal(versions, want) {
		t.Errorf("versions %v, want %v", versions, want)
	}
	if request.GetPageToken() != "" {
		t.Errorf("the iterator changed the caller's request: page_token %q", request.GetPageToken())
	}

	// Breaking out stops the iteration without fetching the rest.
	var firstThree []uint32
	for version, err := range client.AllStrategyVersions(ctx, request) {
		if err != nil {
			t.Fatalf("AllStrategyVersions: %v", err)
		}
		firstThree = append(firstThree, version.GetVersion())
		if len(firstThree) == 3 {
			break
		}
	}
	if !slices.Equal(firstThree, want[:3]) {
		t.Errorf("first three versions %v, want %v", firstThree, want[:3])
	}
}

func TestAllStrategyVersionsYieldsTheErrorOnce(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	request := &trellisv1.ListStrategyVersionsRequest{Workspace: newWorkspace(t), PageToken: "not-a-token"}
	failures := 0
	for version, err := range client.AllStrategyVersions(testContext(t), request) {
		if err == nil {
			t.Fatalf("got version %v from a bad page token, want an error", version)
		}
		failures++
		var apiError *trellis.Error
		if !errors.As(err, &apiError) || apiError.Code != codes.InvalidArgument {
			t.Fatalf("error %v, want INVALID_ARGUMENT", err)
		}
		if _, ok := apiError.Violation("page_token"); !ok {
			t.Errorf("no violation of page_token in %v", apiError.Violations)
		}
	}
	if failures != 1 {
		t.Errorf("the error was yielded %d times, want once", failures)
	}
}

func TestBadStrategyComesBackWithItsFieldViolations(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	strategy := testStrategy()
	strategy.Name = ""
	strategy.Facets[0].Id = "Not An Id!"
	strategy.Facets[1].Weight = proto.Float64(42)

	_, err := client.PutStrategy(testContext(t), &trellisv1.PutStrategyRequest{Workspace: newWorkspace(t), Strategy: strategy})
	if err == nil {
		t.Fatal("PutStrategy accepted a strategy without a name")
	}

	var apiError *trellis.Error
	if !errors.As(err, &apiError) {
		t.Fatalf("error %T %v is not a *trellis.Error", err, err)
	}
	if apiError.Code != codes.InvalidArgument || !errors.Is(err, trellis.ErrInvalidArgument) {
		t.Errorf("code %v, want InvalidArgument", apiError.Code)
	}
	if len(apiError.Violations) < 3 {
		t.Fatalf("violations %v, want one per problem (name, facet id, weight)", apiError.Violations)
	}
	for _, field := range []string{"strategy.name", "strategy.facets[0].id", "strategy.facets[1].weight"} {
		violation, ok := apiError.Violation(field)
		if !ok {
			t.Errorf("no violation of %s in %v", field, apiError.Violations)
			continue
		}
		if violation.Description == "" {
			t.Errorf("the violation of %s does not say what to fix", field)
		}
	}

	// The standard gRPC view of the same error still works.
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("status.Code = %v, want InvalidArgument", status.Code(err))
	}
	grpcStatus, ok := status.FromError(err)
	if !ok || len(grpcStatus.Details()) == 0 {
		t.Errorf("status.FromError lost the details: %v", grpcStatus)
	}
}

func TestInvalidWorkspaceNameIsAFieldViolation(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	_, err := client.GetStrategy(testContext(t), &trellisv1.GetStrategyRequest{Workspace: "no spaces allowed"})
	var apiError *trellis.Error
	if !errors.As(err, &apiError) {
		t.Fatalf("error %v, want a *trellis.Error", err)
	}
	if _, ok := apiError.Violation("workspace"); !ok {
		t.Errorf("no violation of workspace in %v", apiError.Violations)
	}
}

func TestIteratorsAcceptANilRequest(t *testing.T) {
	t.Parallel()
	client := newClient(t, trellis.WithWorkspace(newWorkspace(t)))
	ctx := testContext(t)
	if _, err := client.PutStrategy(ctx, &trellisv1.PutStrategyRequest{Strategy: testStrategy()}); err != nil {
		t.Fatalf("PutStrategy: %v", err)
	}
	versions := 0
	for _, err := range client.AllStrategyVersions(ctx, nil) {
		if err != nil {
			t.Fatalf("AllStrategyVersions(nil): %v", err)
		}
		versions++
	}
	if versions != 1 {
		t.Errorf("%d versions, want the one put", versions)
	}
}
