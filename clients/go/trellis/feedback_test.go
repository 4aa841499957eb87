package trellis_test

// FeedbackService through the client, against the real server: recording feedback on suggestions
// (replacing by id, all or nothing on a bad item), listing it page by page with its filters and
// counts, retries only where a repeat is safe, and what a read key may do. Each test skips while
// the server answers UNIMPLEMENTED.

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	trellisv1 "github.com/trellis-dev/trellis/clients/go/gen/trellis/v1"
	"github.com/trellis-dev/trellis/clients/go/trellis"
)

const (
	discussion  = trellisv1.SuggestionKind_SUGGESTION_KIND_DISCUSSION
	participant = trellisv1.SuggestionKind_SUGGESTION_KIND_PARTICIPANT
	assetKind   = trellisv1.SuggestionKind_SUGGESTION_KIND_ASSET
	prospect    = trellisv1.SuggestionKind_SUGGESTION_KIND_PROSPECT
	action      = trellisv1.SuggestionKind_SUGGESTION_KIND_ACTION
	shown       = trellisv1.FeedbackOutcome_FEEDBACK_OUTCOME_SHOWN
	accepted    = trellisv1.FeedbackOutcome_FEEDBACK_OUTCOME_ACCEPTED
	dismissed   = trellisv1.FeedbackOutcome_FEEDBACK_OUTCOME_DISMISSED
	done        = trellisv1.FeedbackOutcome_FEEDBACK_OUTCOME_DONE
)

var derivedFeedbackID = regexp.MustCompile(`^fb-[0-9a-f]{16}$`)

// minute is a fixed time, n minutes past the hour.
func minute(n int) time.Time {
	return time.Date(2026, 11, 25, 9, n, 0, 0, time.UTC)
}

func feedbackIDs(feedback []*trellisv1.Feedback) []string {
	ids := make([]string, 0, len(feedback))
	for _, item := range feedback {
		ids = append(ids, item.GetId())
	}
	return ids
}

// allFeedback collects what AllFeedback yields for request.
func allFeedback(t *testing.T, client *trellis.Client, request *trellisv1.ListFeedbackRequest) []*trellisv1.Feedback {
	t.Helper()
	var collected []*trellisv1.Feedback
	for item, err := range client.AllFeedback(testContext(t), request) {
		if err != nil {
			t.Fatalf("AllFeedback: %v", err)
		}
		collected = append(collected, item)
	}
	return collected
}

func counts(c *trellisv1.FeedbackCounts) [4]uint64 {
	return [4]uint64{c.GetShown(), c.GetAccepted(), c.GetDismissed(), c.GetDone()}
}

// wantViolation checks that err is INVALID_ARGUMENT naming field among its violations.
func wantViolation(t *testing.T, err error, field string) *trellis.Error {
	t.Helper()
	var apiErr *trellis.Error
	if !errors.As(err, &apiErr) || !errors.Is(err, trellis.ErrInvalidArgument) {
		t.Fatalf("error %v, want INVALID_ARGUMENT naming %s", err, field)
	}
	if _, ok := apiErr.Violation(field); !ok {
		t.Fatalf("violations %v do not name %s", apiErr.Violations, field)
	}
	return apiErr
}

func TestRecordDiscussionFeedbackThenReplaceItByID(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)
	ctx := testContext(t)

	recorded, err := client.RecordFeedback(ctx, &trellisv1.RecordFeedbackRequest{Workspace: workspace, Feedback: []*trellisv1.Feedback{
		trellis.Feedback(discussion, accepted, trellis.FeedbackParts{
			Person: trellis.Ref("forum", "u-ana"), Conversation: trellis.Ref("forum", "t1"),
			At: minute(1), Actor: "crm-sync", Note: "joined from the weekly digest", ID: "fb-ana-t1",
		}),
	}})
	skipIfUnimplemented(t, err)
	if err != nil {
		t.Fatalf("RecordFeedback: %v", err)
	}
	if !slices.Equal(recorded.GetIds(), []string{"fb-ana-t1"}) || recorded.GetRecorded() != 1 || recorded.GetReplaced() != 0 {
		t.Errorf("recorded %v, want ids [fb-ana-t1], 1 recorded, 0 replaced", recorded)
	}

	again, err := client.RecordFeedback(ctx, &trellisv1.RecordFeedbackRequest{Workspace: workspace, Feedback: []*trellisv1.Feedback{
		trellis.Feedback(discussion, done, trellis.FeedbackParts{
			Person: trellis.Ref("forum", "u-ana"), Conversation: trellis.Ref("forum", "t1"), At: minute(2), ID: "fb-ana-t1",
		}),
	}})
	if err != nil {
		t.Fatalf("RecordFeedback again: %v", err)
	}
	if !slices.Equal(again.GetIds(), []string{"fb-ana-t1"}) || again.GetRecorded() != 0 || again.GetReplaced() != 1 {
		t.Errorf("recorded again %v, want ids [fb-ana-t1], 0 recorded, 1 replaced", again)
	}

	page, err := client.ListFeedback(ctx, &trellisv1.ListFeedbackRequest{Workspace: workspace})
	if err != nil {
		t.Fatalf("ListFeedback: %v", err)
	}
	if ids := feedbackIDs(page.GetFeedback()); !slices.Equal(ids, []string{"fb-ana-t1"}) {
		t.Fatalf("listed %v, want the one feedback, replaced rather than duplicated", ids)
	}
	stored := page.GetFeedback()[0]
	if stored.GetKind() != discussion || stored.GetOutcome() != done {
		t.Errorf("stored %v %v, want the replacement's discussion, done", stored.GetKind(), stored.GetOutcome())
	}
	if stored.GetPerson().GetExternalId() != "u-ana" || stored.GetConversation().GetExternalId() != "t1" || stored.GetConversation().GetSource() != "forum" {
		t.Errorf("stored person %v, conversation %v", stored.GetPerson(), stored.GetConversation())
	}
	if !stored.GetAt().AsTime().Equal(minute(2)) || stored.GetRecordedAt() == nil {
		t.Errorf("stored at %v, recorded at %v; want %v and a recording time", stored.GetAt().AsTime(), stored.GetRecordedAt(), minute(2))
	}
	if page.GetNextPageToken() != "" {
		t.Errorf("a one-item page has next page token %q", page.GetNextPageToken())
	}
	if got := counts(page.GetCounts()); got != [4]uint64{0, 0, 0, 1} {
		t.Errorf("counts (shown, accepted, dismissed, done) %v, want [0 0 0 1]", got)
	}
}

func TestFeedbackIDsLeftOutAreDerivedInRequestOrderAndStable(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)
	ctx := testContext(t)
	request := &trellisv1.RecordFeedbackRequest{Workspace: workspace, Feedback: []*trellisv1.Feedback{
		trellis.Feedback(discussion, shown, trellis.FeedbackParts{Person: trellis.Ref("forum", "u-ana"), Conversation: trellis.Ref("forum", "t1"), At: minute(1)}),
		trellis.Feedback(participant, accepted, trellis.FeedbackParts{Conversation: trellis.Ref("forum", "t2"), Person: trellis.Ref("forum", "u-ben"), ID: "mine"}),
		trellis.Feedback(prospect, dismissed, trellis.FeedbackParts{Person: trellis.Ref("social", "p-eli"), At: minute(3)}),
	}}
	recorded, err := client.RecordFeedback(ctx, request)
	skipIfUnimplemented(t, err)
	if err != nil {
		t.Fatalf("RecordFeedback: %v", err)
	}
	ids := recorded.GetIds()
	if len(ids) != 3 || ids[1] != "mine" || !derivedFeedbackID.MatchString(ids[0]) || !derivedFeedbackID.MatchString(ids[2]) {
		t.Fatalf("ids %v, want [fb-<16 hex> mine fb-<16 hex>]", ids)
	}
	if recorded.GetRecorded() != 3 || recorded.GetReplaced() != 0 {
		t.Errorf("recorded %d, replaced %d; want 3, 0", recorded.GetRecorded(), recorded.GetReplaced())
	}
	// The same suggestion, outcome and time derive the same id: a repeat replaces, never doubles.
	repeated, err := client.RecordFeedback(ctx, request)
	if err != nil {
		t.Fatalf("RecordFeedback again: %v", err)
	}
	if !slices.Equal(repeated.GetIds(), ids) || repeated.GetRecorded() != 0 || repeated.GetReplaced() != 3 {
		t.Errorf("the repeat answered %v, want the same ids, 0 recorded, 3 replaced", repeated)
	}
	listed := feedbackIDs(allFeedback(t, client, &trellisv1.ListFeedbackRequest{Workspace: workspace}))
	slices.Sort(listed)
	want := slices.Clone(ids)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Errorf("listed %v, want %v", listed, want)
	}
}

func TestFeedbackOnRecordsTheWorkspaceDoesNotHoldIsRecorded(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	recorded, err := client.RecordFeedback(testContext(t), &trellisv1.RecordFeedbackRequest{Workspace: seedWorkspace(t, client), Feedback: []*trellisv1.Feedback{
		trellis.Feedback(discussion, shown, trellis.FeedbackParts{Person: trellis.Ref("crm", "nobody"), Conversation: trellis.Ref("forum", "none")}),
	}})
	skipIfUnimplemented(t, err)
	if err != nil || recorded.GetRecorded() != 1 {
		t.Fatalf("RecordFeedback: %v, %v; want 1 recorded", recorded, err)
	}
}

func TestAnInvalidFeedbackItemRefusesTheWholeCallNamingItsField(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)
	ctx := testContext(t)
	_, err := client.RecordFeedback(ctx, &trellisv1.RecordFeedbackRequest{Workspace: workspace, Feedback: []*trellisv1.Feedback{
		trellis.Feedback(prospect, shown, trellis.FeedbackParts{Person: trellis.Ref("forum", "u-ana")}),
		trellis.Feedback(discussion, accepted, trellis.FeedbackParts{Person: trellis.Ref("forum", "u-ana")}),
	}})
	skipIfUnimplemented(t, err)
	apiErr := wantViolation(t, err, "feedback[1].conversation")
	if len(apiErr.Violations) != 1 || !strings.Contains(apiErr.Violations[0].Description, "discussion") {
		t.Errorf("violations %v, want only feedback[1].conversation, saying what a discussion names", apiErr.Violations)
	}
	if listed := allFeedback(t, client, &trellisv1.ListFeedbackRequest{Workspace: workspace}); len(listed) != 0 {
		t.Errorf("all or nothing: %v was recorded from a refused call", feedbackIDs(listed))
	}
}

func TestFeedbackWithoutWhatItsKindNeedsIsRefusedNamingTheField(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)
	ana := trellis.Ref("forum", "u-ana")
	for _, tc := range []struct {
		feedback *trellisv1.Feedback
		field    string
	}{
		{trellis.Feedback(trellisv1.SuggestionKind_SUGGESTION_KIND_UNSPECIFIED, shown, trellis.FeedbackParts{Person: ana}), "feedback[0].kind"},
		{trellis.Feedback(prospect, trellisv1.FeedbackOutcome_FEEDBACK_OUTCOME_UNSPECIFIED, trellis.FeedbackParts{Person: ana}), "feedback[0].outcome"},
		{trellis.Feedback(discussion, accepted, trellis.FeedbackParts{Conversation: trellis.Ref("forum", "t1")}), "feedback[0].person"},
		{trellis.Feedback(participant, accepted, trellis.FeedbackParts{Person: ana}), "feedback[0].conversation"},
		{trellis.Feedback(assetKind, accepted, trellis.FeedbackParts{Conversation: trellis.Ref("forum", "t1")}), "feedback[0].asset"},
		{trellis.Feedback(prospect, accepted, trellis.FeedbackParts{}), "feedback[0].person"},
		{trellis.Feedback(action, done, trellis.FeedbackParts{}), "feedback[0].action"},
	} {
		_, err := client.RecordFeedback(testContext(t), &trellisv1.RecordFeedbackRequest{Workspace: workspace, Feedback: []*trellisv1.Feedback{tc.feedback}})
		skipIfUnimplemented(t, err)
		wantViolation(t, err, tc.field)
	}
}

func TestListFeedbackFiltersAndCountsEveryOutcome(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)
	ctx := testContext(t)
	ana, t1 := trellis.Ref("forum", "u-ana"), trellis.Ref("forum", "t1")
	_, err := client.RecordFeedback(ctx, &trellisv1.RecordFeedbackRequest{Workspace: workspace, Feedback: []*trellisv1.Feedback{
		trellis.Feedback(discussion, shown, trellis.FeedbackParts{Person: ana, Conversation: t1, At: minute(1)}),
		trellis.Feedback(discussion, accepted, trellis.FeedbackParts{Person: ana, Conversation: trellis.Ref("forum", "t2"), At: minute(2)}),
		trellis.Feedback(discussion, dismissed, trellis.FeedbackParts{Person: trellis.Ref("forum", "u-ben"), Conversation: trellis.Ref("forum", "t3"), At: minute(3)}),
		trellis.Feedback(assetKind, done, trellis.FeedbackParts{Conversation: t1, Asset: trellis.Ref("blog", "a1"), At: minute(4), ID: "asset-1"}),
		trellis.Feedback(action, accepted, trellis.FeedbackParts{Action: "reply:forum:t2", At: minute(5), ID: "act-1"}),
	}})
	skipIfUnimplemented(t, err)
	if err != nil {
		t.Fatalf("RecordFeedback: %v", err)
	}

	everything, err := client.ListFeedback(ctx, &trellisv1.ListFeedbackRequest{Workspace: workspace})
	if err != nil {
		t.Fatalf("ListFeedback: %v", err)
	}
	var times []time.Time
	for _, item := range everything.GetFeedback() {
		times = append(times, item.GetAt().AsTime())
	}
	if want := []time.Time{minute(5), minute(4), minute(3), minute(2), minute(1)}; !slices.EqualFunc(times, want, time.Time.Equal) {
		t.Errorf("times %v, want newest first %v", times, want)
	}
	all := counts(everything.GetCounts())
	if all != [4]uint64{1, 2, 1, 1} {
		t.Errorf("counts (shown, accepted, dismissed, done) %v, want [1 2 1 1]", all)
	}

	discussions, err := client.ListFeedback(ctx, &trellisv1.ListFeedbackRequest{Workspace: workspace, Kind: discussion})
	if err != nil {
		t.Fatalf("ListFeedback of discussions: %v", err)
	}
	var conversations []string
	for _, item := range discussions.GetFeedback() {
		if item.GetKind() != discussion {
			t.Errorf("the discussion filter let %v through", item)
		}
		conversations = append(conversations, item.GetConversation().GetExternalId())
	}
	if want := []string{"t3", "t2", "t1"}; !slices.Equal(conversations, want) {
		t.Errorf("discussions on %v, want %v", conversations, want)
	}
	if got := counts(discussions.GetCounts()); got != all {
		t.Errorf("a filtered page counts %v, want the workspace's %v", got, all)
	}
	for kind, want := range map[trellisv1.SuggestionKind][]string{assetKind: {"asset-1"}, action: {"act-1"}, prospect: nil} {
		if got := feedbackIDs(allFeedback(t, client, &trellisv1.ListFeedbackRequest{Workspace: workspace, Kind: kind})); !slices.Equal(got, want) {
			t.Errorf("feedback of kind %v: %v, want %v", kind, got, want)
		}
	}
	var forAna []string
	for _, item := range allFeedback(t, client, &trellisv1.ListFeedbackRequest{Workspace: workspace, Person: ana}) {
		forAna = append(forAna, item.GetConversation().GetExternalId())
	}
	if want := []string{"t2", "t1"}; !slices.Equal(forAna, want) {
		t.Errorf("feedback for u-ana on %v, want %v", forAna, want)
	}
	var onT1 []trellisv1.SuggestionKind
	for _, item := range allFeedback(t, client, &trellisv1.ListFeedbackRequest{Workspace: workspace, Conversation: t1}) {
		onT1 = append(onT1, item.GetKind())
	}
	if want := []trellisv1.SuggestionKind{assetKind, discussion}; !slices.Equal(onT1, want) {
		t.Errorf("feedback on t1 of kinds %v, want %v", onT1, want)
	}
}

func TestAllFeedbackWalksEveryPageNewestFirst(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)
	ctx := testContext(t)
	var items []*trellisv1.Feedback
	for n := range 7 {
		items = append(items, trellis.Feedback(discussion, shown, trellis.FeedbackParts{
			Person: trellis.Ref("forum", "u-ana"), Conversation: trellis.Ref("forum", fmt.Sprintf("page-%d", n)), At: minute(n), ID: fmt.Sprintf("page-%d", n),
		}))
	}
	_, err := client.RecordFeedback(ctx, &trellisv1.RecordFeedbackRequest{Workspace: workspace, Feedback: items})
	skipIfUnimplemented(t, err)
	if err != nil {
		t.Fatalf("RecordFeedback: %v", err)
	}
	first, err := client.ListFeedback(ctx, &trellisv1.ListFeedbackRequest{Workspace: workspace, Limit: 3})
	if err != nil {
		t.Fatalf("ListFeedback: %v", err)
	}
	if ids := feedbackIDs(first.GetFeedback()); !slices.Equal(ids, []string{"page-6", "page-5", "page-4"}) || first.GetNextPageToken() == "" {
		t.Fatalf("first page %v with token %q, want page-6..page-4 and a token", ids, first.GetNextPageToken())
	}
	second, err := client.ListFeedback(ctx, &trellisv1.ListFeedbackRequest{Workspace: workspace, Limit: 3, PageToken: first.GetNextPageToken()})
	if err != nil {
		t.Fatalf("ListFeedback of the second page: %v", err)
	}
	if ids := feedbackIDs(second.GetFeedback()); !slices.Equal(ids, []string{"page-3", "page-2", "page-1"}) {
		t.Errorf("second page %v, want page-3..page-1", ids)
	}
	request := &trellisv1.ListFeedbackRequest{Workspace: workspace, Limit: 2}
	walked := feedbackIDs(allFeedback(t, client, request))
	if want := []string{"page-6", "page-5", "page-4", "page-3", "page-2", "page-1", "page-0"}; !slices.Equal(walked, want) {
		t.Errorf("AllFeedback walked %v, want %v", walked, want)
	}
	if request.GetPageToken() != "" {
		t.Errorf("AllFeedback changed the caller's request: page token %q", request.GetPageToken())
	}
}

func TestAReadKeyMayListFeedbackButNotRecordIt(t *testing.T) {
	t.Parallel()
	workspace := newWorkspace(t)
	writer := authClient(t, authServer, authServer.createKey(t, workspace, "write").Key, workspace, &attemptCounter{})
	ctx := testContext(t)
	// The workspace exists from its first write.
	if _, err := writer.PutStrategy(ctx, &trellisv1.PutStrategyRequest{Strategy: testStrategy()}); err != nil {
		t.Fatalf("PutStrategy with a write key: %v", err)
	}
	item := trellis.Feedback(prospect, accepted, trellis.FeedbackParts{Person: trellis.Ref("forum", "u-ana"), ID: "p-1"})
	recorded, err := writer.RecordFeedback(ctx, &trellisv1.RecordFeedbackRequest{Feedback: []*trellisv1.Feedback{item}})
	skipIfUnimplemented(t, err)
	if err != nil || recorded.GetRecorded() != 1 {
		t.Fatalf("RecordFeedback with a write key: %v, %v", recorded, err)
	}
	counter := &attemptCounter{}
	reader := authClient(t, authServer, authServer.createKey(t, workspace, "read").Key, workspace, counter)
	_, err = reader.RecordFeedback(ctx, &trellisv1.RecordFeedbackRequest{Feedback: []*trellisv1.Feedback{item}})
	wantRefused(t, err, codes.PermissionDenied, trellis.ErrPermissionDenied, "needs a write key")
	wantAttempts(t, counter, trellisv1.FeedbackService_RecordFeedback_FullMethodName, 1)
	if ids := feedbackIDs(allFeedback(t, reader, &trellisv1.ListFeedbackRequest{})); !slices.Equal(ids, []string{"p-1"}) {
		t.Errorf("a read key listed %v, want [p-1]", ids)
	}
	page, err := reader.ListFeedback(ctx, &trellisv1.ListFeedbackRequest{})
	if err != nil || page.GetCounts().GetAccepted() != 1 {
		t.Errorf("ListFeedback with a read key: %v, %v; want 1 accepted", page, err)
	}
}

func TestRecordFeedbackIsRetriedOnlyWhenEveryIDIsFixed(t *testing.T) {
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
	const method = trellisv1.FeedbackService_RecordFeedback_FullMethodName

	// trellis.Feedback sets At, so the id the server derives is the same on every attempt.
	_, err = client.RecordFeedback(ctx, &trellisv1.RecordFeedbackRequest{Feedback: []*trellisv1.Feedback{
		trellis.Feedback(prospect, shown, trellis.FeedbackParts{Person: trellis.Ref("forum", "u-ana")}),
		{Id: "given", Kind: prospect, Outcome: shown, Person: trellis.Ref("forum", "u-ben")},
	}})
	if !errors.Is(err, trellis.ErrUnavailable) {
		t.Fatalf("RecordFeedback with no server returned %v, want UNAVAILABLE", err)
	}
	if attempts := counter.of(method); attempts != 3 {
		t.Errorf("RecordFeedback with fixed ids was attempted %d times, want 3", attempts)
	}

	// Neither an id nor a time: the server would derive another id on each attempt.
	_, err = client.RecordFeedback(ctx, &trellisv1.RecordFeedbackRequest{Feedback: []*trellisv1.Feedback{
		{Id: "given", Kind: prospect, Outcome: shown, Person: trellis.Ref("forum", "u-ben")},
		{Kind: prospect, Outcome: shown, Person: trellis.Ref("forum", "u-ana")},
	}})
	if !errors.Is(err, trellis.ErrUnavailable) {
		t.Fatalf("RecordFeedback with no server returned %v, want UNAVAILABLE", err)
	}
	if attempts := counter.of(method); attempts != 3+1 {
		t.Errorf("RecordFeedback with an id left to the server's clock was attempted %d times, want once", attempts-3)
	}

	_, err = client.ListFeedback(ctx, &trellisv1.ListFeedbackRequest{})
	if !errors.Is(err, trellis.ErrUnavailable) {
		t.Fatalf("ListFeedback with no server returned %v, want UNAVAILABLE", err)
	}
	if attempts := counter.of(trellisv1.FeedbackService_ListFeedback_FullMethodName); attempts != 3 {
		t.Errorf("ListFeedback was attempted %d times, want 3", attempts)
	}
}

func TestFeedbackSetsTheTimeToNowUnlessGiven(t *testing.T) {
	before := time.Now()
	item := trellis.Feedback(action, done, trellis.FeedbackParts{Action: "publish:post-1", Actor: "app", Note: "posted", ID: "a"})
	if item.GetKind() != action || item.GetOutcome() != done || item.GetAction() != "publish:post-1" || item.GetActor() != "app" || item.GetNote() != "posted" || item.GetId() != "a" || item.GetPerson() != nil {
		t.Errorf("Feedback built %v", item)
	}
	if at := item.GetAt().AsTime(); at.Before(before.Add(-time.Second)) || at.After(time.Now()) {
		t.Errorf("at %v, want now", at)
	}
	if at := trellis.Feedback(prospect, shown, trellis.FeedbackParts{At: minute(7)}).GetAt().AsTime(); !at.Equal(minute(7)) {
		t.Errorf("at %v, want the given %v", at, minute(7))
	}
}
