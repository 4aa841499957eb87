package trellis_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	trellisv1 "github.com/trellis-dev/trellis/clients/go/gen/trellis/v1"
	"github.com/trellis-dev/trellis/clients/go/trellis"
)

// The suite's server has no sentence-embedding model, so it runs lexical-only.
func TestServerStatusSaysLexicalOnlyAndHowToTurnTheSemanticTierOn(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	status, err := client.GetServerStatus(testContext(t), &trellisv1.GetServerStatusRequest{})
	if err != nil {
		t.Fatalf("GetServerStatus: %v", err)
	}
	if status.GetVersion() == "" {
		t.Error("the status names no version")
	}
	semantic := status.GetSemantic()
	if semantic.GetEnabled() || semantic.GetModelId() != "" {
		t.Errorf("semantic tier %v, want it off without a model", semantic)
	}
	reason := semantic.GetLexicalOnlyReason()
	if reason == "" || !(strings.Contains(reason, "fetch-model") || strings.Contains(reason, "semantic")) {
		t.Errorf("lexical-only reason %q, want one that says how to fix it (fetch-model or semantic)", reason)
	}
}

func TestServerStatusCountsTheConversationsOfEachWorkspace(t *testing.T) {
	t.Parallel()
	workspace := newWorkspace(t)
	client := newClient(t, trellis.WithWorkspace(workspace))
	ctx := testContext(t)

	before, err := client.GetServerStatus(ctx, &trellisv1.GetServerStatusRequest{})
	if err != nil {
		t.Fatalf("GetServerStatus: %v", err)
	}
	for _, w := range before.GetWorkspaces() {
		if w.GetWorkspace() == workspace {
			t.Fatalf("workspace %q has a status before anything was ingested: %v", workspace, w)
		}
	}

	const count = 4
	records := []*trellisv1.IngestRequest{trellis.PersonRecord(&trellisv1.Person{Ref: trellis.Ref("forum", "u1"), DisplayName: "Ana"})}
	for i := range count {
		records = append(records, trellis.ConversationRecord(&trellisv1.Conversation{
			Ref:      trellis.Ref("forum", fmt.Sprintf("t%d", i)),
			Platform: trellisv1.PlatformKind_PLATFORM_KIND_QA_FORUM,
			Title:    fmt.Sprintf("Thread %d on tracing", i),
			Body:     "How do we carry the trace context across the queue?",
		}))
	}
	tally, err := client.IngestRecords(ctx, slices.Values(records))
	if err != nil {
		t.Fatalf("IngestRecords: %v", err)
	}
	if tally.GetInserted() != count+1 {
		t.Fatalf("ingest %v, want %d records inserted", tally, count+1)
	}

	status, err := client.GetServerStatus(ctx, &trellisv1.GetServerStatusRequest{})
	if err != nil {
		t.Fatalf("GetServerStatus: %v", err)
	}
	var mine *trellisv1.WorkspaceStatus
	for _, w := range status.GetWorkspaces() {
		if w.GetWorkspace() == workspace {
			mine = w
		}
	}
	if mine == nil {
		t.Fatalf("no status for workspace %q among %v", workspace, status.GetWorkspaces())
	}
	if mine.GetConversations() != count {
		t.Errorf("%d conversations, want %d", mine.GetConversations(), count)
	}
	// Lexical-only: nothing gets embedded.
	if mine.GetEmbeddedConversations() != 0 || mine.GetPendingEmbeddings() > count {
		t.Errorf("embedded %d, pending %d; want 0 embedded and at most %d pending", mine.GetEmbeddedConversations(), mine.GetPendingEmbeddings(), count)
	}
}
