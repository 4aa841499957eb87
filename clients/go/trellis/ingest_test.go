package trellis_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	trellisv1 "github.com/trellis-dev/trellis/clients/go/gen/trellis/v1"
	"github.com/trellis-dev/trellis/clients/go/trellis"
)

func TestIngestRecordsStoresACommunityIdempotently(t *testing.T) {
	t.Parallel()
	client := newClient(t, trellis.WithWorkspace(newWorkspace(t)))
	ctx := testContext(t)
	records := communityRecords()

	first, err := client.IngestRecords(ctx, slices.Values(records))
	if err != nil {
		t.Fatalf("IngestRecords: %v", err)
	}
	if first.GetReceived() != uint64(len(records)) || first.GetInserted() != uint64(len(records)) || len(first.GetErrors()) != 0 {
		t.Errorf("first ingest %v, want all %d records received and inserted", first, len(records))
	}

	again, err := client.IngestRecords(ctx, slices.Values(records))
	if err != nil {
		t.Fatalf("IngestRecords again: %v", err)
	}
	if again.GetUnchanged() != uint64(len(records)) || again.GetInserted() != 0 {
		t.Errorf("second ingest %v, want all %d records unchanged", again, len(records))
	}
	for _, record := range records {
		if record.GetWorkspace() != "" {
			t.Fatalf("the client changed the caller's record: workspace %q", record.GetWorkspace())
		}
	}
}

func TestIngestReportsRefusedRecordsByPositionAndStoresTheRest(t *testing.T) {
	t.Parallel()
	client := newClient(t, trellis.WithWorkspace(newWorkspace(t)))
	records := communityRecords()[:4]
	records = append(records[:2], append([]*trellisv1.IngestRequest{
		trellis.PostRecord(&trellisv1.Post{Ref: trellis.Ref("", "no-source"), Conversation: "t1", Text: "hello"}),
	}, records[2:]...)...)

	summary, err := client.IngestRecords(testContext(t), slices.Values(records))
	if err != nil {
		t.Fatalf("IngestRecords: %v", err)
	}
	if summary.GetReceived() != 5 || summary.GetInserted() != 4 {
		t.Errorf("summary %v, want 5 received and 4 inserted", summary)
	}
	if len(summary.GetErrors()) != 1 {
		t.Fatalf("errors %v, want the one bad record", summary.GetErrors())
	}
	refused := summary.GetErrors()[0]
	if refused.GetPosition() != 2 || refused.GetField() == "" || refused.GetReason() == "" {
		t.Errorf("refused record %v, want position 2 with a field and a reason", refused)
	}
}

func TestIngestOfNothingIsAnEmptySummary(t *testing.T) {
	t.Parallel()
	client := newClient(t, trellis.WithWorkspace(newWorkspace(t)))
	summary, err := client.IngestRecords(testContext(t), slices.Values([]*trellisv1.IngestRequest(nil)))
	if err != nil {
		t.Fatalf("IngestRecords: %v", err)
	}
	if summary.GetReceived() != 0 {
		t.Errorf("summary %v, want nothing received", summary)
	}
}

func TestIngestStreamPastItsDeadlineFailsWithDeadlineExceeded(t *testing.T) {
	t.Parallel()
	client := newClient(t, trellis.WithWorkspace(newWorkspace(t)))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	// An iterator that sends one record, then stalls past the deadline before ending.
	stalling := func(yield func(*trellisv1.IngestRequest) bool) {
		if !yield(communityRecords()[0]) {
			return
		}
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond)
	}
	_, err := client.IngestRecords(ctx, stalling)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, trellis.ErrDeadlineExceeded) {
		t.Fatalf("error %v, want DEADLINE_EXCEEDED", err)
	}
	var apiError *trellis.Error
	if !errors.As(err, &apiError) || apiError.Code != codes.DeadlineExceeded {
		t.Errorf("error %T %v, want a *trellis.Error with code DeadlineExceeded", err, err)
	}
}

func TestGetConversationReturnsItsPosts(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)
	ctx := testContext(t)

	response, err := client.GetConversation(ctx, &trellisv1.GetConversationRequest{Workspace: workspace, Ref: trellis.Ref("forum", "t1")})
	if err != nil {
		t.Fatalf("GetConversation: %v", err)
	}
	if response.GetConversation().GetTitle() != "How do I find which service causes a latency spike?" {
		t.Errorf("conversation %v, want t1", response.GetConversation())
	}
	if len(response.GetPosts()) != 1 || response.GetPosts()[0].GetRef().GetExternalId() != "p1" {
		t.Errorf("posts %v, want p1", response.GetPosts())
	}

	_, err = client.GetConversation(ctx, &trellisv1.GetConversationRequest{Workspace: workspace, Ref: trellis.Ref("forum", "missing")})
	if !errors.Is(err, trellis.ErrNotFound) {
		t.Errorf("GetConversation of a missing id returned %v, want NOT_FOUND", err)
	}

	_, err = client.GetConversation(ctx, &trellisv1.GetConversationRequest{Workspace: workspace})
	var apiError *trellis.Error
	if !errors.As(err, &apiError) || apiError.Code != codes.InvalidArgument {
		t.Fatalf("GetConversation without a ref returned %v, want INVALID_ARGUMENT", err)
	}
	if _, ok := apiError.Violation("ref"); !ok {
		t.Errorf("no violation of ref in %v", apiError.Violations)
	}
}
