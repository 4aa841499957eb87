package trellis_test

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	trellisv1 "github.com/trellis-dev/trellis/clients/go/gen/trellis/v1"
	"github.com/trellis-dev/trellis/clients/go/trellis"
)

func TestScoreConversationsExplainsStoredConversationsAndTexts(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)

	response, err := client.ScoreConversations(testContext(t), &trellisv1.ScoreConversationsRequest{
		Workspace:     workspace,
		Conversations: []*trellisv1.RecordRef{trellis.Ref("forum", "t2"), trellis.Ref("forum", "t3")},
		Texts: []*trellisv1.TextInput{{
			Title: "Sampling spans without overhead",
			Body:  "How does distributed tracing keep the CPU overhead low when sampling every span?",
		}},
	})
	if err != nil {
		t.Fatalf("ScoreConversations: %v", err)
	}
	scores := response.GetScores()
	if len(scores) != 3 {
		t.Fatalf("%d scores, want 3 (two stored conversations, then the text)", len(scores))
	}
	tracing, pizza, text := scores[0], scores[1], scores[2]
	if tracing.GetConversation().GetExternalId() != "t2" || pizza.GetConversation().GetExternalId() != "t3" || text.GetConversation() != nil {
		t.Errorf("scores are not in request order: %v, %v, %v", tracing.GetConversation(), pizza.GetConversation(), text.GetConversation())
	}
	if tracing.GetRelevance() <= pizza.GetRelevance() {
		t.Errorf("the tracing thread (%v) does not outscore the pizza thread (%v)", tracing.GetRelevance(), pizza.GetRelevance())
	}
	if pizza.GetClass() != trellisv1.ConnectionClass_CONNECTION_CLASS_OFF_STRATEGY {
		t.Errorf("the pizza thread is %v, want off strategy", pizza.GetClass())
	}
	if text.GetStrategyVersion() != 1 {
		t.Errorf("scored against strategy version %d, want 1", text.GetStrategyVersion())
	}
	best := strongestFacet(text)
	if best.GetFacetId() != "low-overhead-tracing" {
		t.Errorf("the text's strongest facet is %q, want low-overhead-tracing", best.GetFacetId())
	}
	if evidence := best.GetEvidence(); evidence == nil || len(evidence.GetTerms()) == 0 || evidence.GetSentence() == "" {
		t.Errorf("the strongest facet has no evidence: %v", evidence)
	}
}

func strongestFacet(score *trellisv1.ConversationScore) *trellisv1.FacetScore {
	var best *trellisv1.FacetScore
	for _, facet := range score.GetFacets() {
		if best == nil || facet.GetRelevance() > best.GetRelevance() {
			best = facet
		}
	}
	return best
}

func TestListStrategicConversationsPutsStrategicThreadsFirst(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)

	response, err := client.ListStrategicConversations(testContext(t), &trellisv1.ListStrategicConversationsRequest{
		Workspace: workspace, Limit: 10, MinRelevance: proto.Float32(0),
	})
	if err != nil {
		t.Fatalf("ListStrategicConversations: %v", err)
	}
	conversations := response.GetConversations()
	if len(conversations) == 0 {
		t.Fatal("no conversations listed")
	}
	for i := 1; i < len(conversations); i++ {
		if conversations[i].GetPriority() > conversations[i-1].GetPriority() {
			t.Errorf("not ordered by priority: %v after %v", conversations[i].GetPriority(), conversations[i-1].GetPriority())
		}
	}
	if top := conversations[0].GetConversation().GetExternalId(); top == "t3" {
		t.Errorf("the off-strategy pizza thread is listed first")
	}
	if len(conversations[0].GetReasons()) == 0 || conversations[0].GetEngagement() == nil {
		t.Errorf("the top conversation has no reasons or engagement: %v", conversations[0])
	}
}

func TestListStrategicConversationsRefusesANegativeLimit(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	_, err := client.ListStrategicConversations(testContext(t), &trellisv1.ListStrategicConversationsRequest{Limit: -1})
	var apiError *trellis.Error
	if !errors.As(err, &apiError) {
		t.Fatalf("error %v, want a *trellis.Error", err)
	}
	if _, ok := apiError.Violation("limit"); !ok {
		t.Errorf("no violation of limit in %v", apiError.Violations)
	}
}

func TestAuditCommunityDesignFindsWhatTheMissionLeavesOut(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)

	response, err := client.AuditCommunityDesign(testContext(t), &trellisv1.AuditCommunityDesignRequest{
		Workspace: workspace,
		Mission:   "A place where engineers learn distributed tracing and find the root cause of an outage.",
	})
	if err != nil {
		t.Fatalf("AuditCommunityDesign: %v", err)
	}
	if alignment := response.GetAlignment(); alignment <= 0 || alignment >= 1 {
		t.Errorf("alignment %v, want strictly between 0 and 1 for a mission serving some facets", alignment)
	}
	if len(response.GetFacets()) != len(testStrategy().GetFacets()) {
		t.Errorf("%d facets audited, want %d", len(response.GetFacets()), len(testStrategy().GetFacets()))
	}
	servedTracing, leftOutDashboards := false, false
	for _, coverage := range response.GetFacets() {
		switch coverage.GetFacetId() {
		case "low-overhead-tracing":
			servedTracing = coverage.GetServed()
		case "dashboards-as-code":
			leftOutDashboards = !coverage.GetServed() && coverage.GetSuggestion() != ""
		}
	}
	if !servedTracing || !leftOutDashboards {
		t.Errorf("coverage %v: want tracing served, dashboards left out with a suggestion", response.GetFacets())
	}
	if len(response.GetFindings()) == 0 {
		t.Error("no findings")
	}
}

// The insight RPCs below are not implemented by the server yet: each test skips while it answers
// UNIMPLEMENTED, and checks the answer's shape once it does not.

func TestSuggestDiscussionsForAMember(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)
	response, err := client.SuggestDiscussions(testContext(t), &trellisv1.SuggestDiscussionsRequest{
		Workspace: workspace, Person: trellis.Ref("forum", "u-ana"), Limit: 5,
	})
	skipIfUnimplemented(t, err)
	if err != nil {
		t.Fatalf("SuggestDiscussions: %v", err)
	}
	if len(response.GetJoin()) > 5 {
		t.Errorf("%d discussions suggested, more than the limit of 5", len(response.GetJoin()))
	}
	for _, discussion := range response.GetJoin() {
		if discussion.GetConversation() == nil || len(discussion.GetReasons()) == 0 {
			t.Errorf("suggestion %v has no conversation or no reasons", discussion)
		}
	}
}

func TestSuggestParticipantsForAConversation(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)
	response, err := client.SuggestParticipants(testContext(t), &trellisv1.SuggestParticipantsRequest{
		Workspace: workspace, Conversation: trellis.Ref("forum", "t2"), Limit: 3,
	})
	skipIfUnimplemented(t, err)
	if err != nil {
		t.Fatalf("SuggestParticipants: %v", err)
	}
	if len(response.GetParticipants()) > 3 {
		t.Errorf("%d participants, more than the limit of 3", len(response.GetParticipants()))
	}
	for _, participant := range response.GetParticipants() {
		if participant.GetPerson().GetRef() == nil || len(participant.GetReasons()) == 0 {
			t.Errorf("participant %v has no person or no reasons", participant)
		}
	}
}

func TestFindSupportingAssetsForAConversation(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)
	response, err := client.FindSupportingAssets(testContext(t), &trellisv1.FindSupportingAssetsRequest{
		Workspace: workspace,
		Context:   &trellisv1.FindSupportingAssetsRequest_Conversation{Conversation: trellis.Ref("forum", "t2")},
		Limit:     3,
	})
	skipIfUnimplemented(t, err)
	if err != nil {
		t.Fatalf("FindSupportingAssets: %v", err)
	}
	assets := response.GetAssets()
	if len(assets) == 0 || assets[0].GetAsset().GetRef().GetExternalId() != "a1" {
		t.Errorf("assets %v, want the propagation article first", assets)
	}
}

func TestFindProspectsOutsideTheCommunity(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)
	response, err := client.FindProspects(testContext(t), &trellisv1.FindProspectsRequest{Workspace: workspace, Limit: 5})
	skipIfUnimplemented(t, err)
	if err != nil {
		t.Fatalf("FindProspects: %v", err)
	}
	for _, prospect := range response.GetProspects() {
		if prospect.GetPerson().GetMember() {
			t.Errorf("prospect %v is already a member", prospect.GetPerson().GetRef())
		}
		if prospect.GetInvitation().GetDraftMessage() == "" {
			t.Errorf("prospect %v has no draft invitation", prospect.GetPerson().GetRef())
		}
	}
}

func TestRecommendPlatformMix(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)
	response, err := client.RecommendPlatformMix(testContext(t), &trellisv1.RecommendPlatformMixRequest{Workspace: workspace})
	skipIfUnimplemented(t, err)
	if err != nil {
		t.Fatalf("RecommendPlatformMix: %v", err)
	}
	var effort float32
	for _, platform := range response.GetPlatforms() {
		effort += platform.GetRecommendedEffort()
	}
	if len(response.GetPlatforms()) > 0 && (effort < 0.99 || effort > 1.01) {
		t.Errorf("recommended effort sums to %v, want 1", effort)
	}
}

func TestPlanActions(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)
	response, err := client.PlanActions(testContext(t), &trellisv1.PlanActionsRequest{
		Workspace: workspace, Platform: trellisv1.PlatformKind_PLATFORM_KIND_QA_FORUM, Limit: 3,
	})
	skipIfUnimplemented(t, err)
	if err != nil {
		t.Fatalf("PlanActions: %v", err)
	}
	if len(response.GetActions()) > 3 {
		t.Errorf("%d actions, more than the limit of 3", len(response.GetActions()))
	}
	for _, action := range response.GetActions() {
		if action.GetKind() == trellisv1.ActionKind_ACTION_KIND_UNSPECIFIED || action.GetWhyNow() == "" {
			t.Errorf("action %v has no kind or no reason", action)
		}
	}
}
