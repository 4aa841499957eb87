package trellis_test

// SourceService against the real server with the real template connector (plugins/template,
// connector "jsonl") loaded from the suite's plugin folder: sources are made from a small JSON
// Lines file each test writes, checked, synced to the end with streamed progress, listed,
// updated and deleted; a sync's stream is cancelled with its context; bad requests come back as
// *trellis.Error with the field violations the server names.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	trellisv1 "github.com/trellis-dev/trellis/clients/go/gen/trellis/v1"
	"github.com/trellis-dev/trellis/clients/go/trellis"
)

const templateConnector = "jsonl"

// writeCommunity writes a JSON Lines file for the template connector (the format of `trellis
// ingest`): two people, the given number of conversations and one post; it returns how many
// records the file holds.
func writeCommunity(t *testing.T, path string, conversations int) uint64 {
	t.Helper()
	lines := []map[string]any{
		{"type": "person", "id": "u-ana", "name": "Ana", "bio": "SRE on call", "member": true},
		{"type": "person", "id": "u-ben", "name": "Ben", "bio": "backend developer"},
	}
	for n := range conversations {
		lines = append(lines, map[string]any{
			"type": "conversation", "id": fmt.Sprintf("c%d", n), "title": fmt.Sprintf("thread %d", n),
			"body": fmt.Sprintf("how do we trace request %d across services", n), "author": "u-ben",
		})
	}
	lines = append(lines, map[string]any{"type": "post", "id": "p0", "conversation": "c0", "author": "u-ana", "text": "use spans"})
	var text strings.Builder
	for _, line := range lines {
		encoded, err := json.Marshal(line)
		if err != nil {
			t.Fatal(err)
		}
		text.Write(encoded)
		text.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(text.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return uint64(len(lines))
}

// templateConfig is the template connector's config as JSON.
func templateConfig(t *testing.T, config map[string]any) string {
	t.Helper()
	encoded, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	return string(encoded)
}

// emptyFile makes an empty file named name in a temporary folder and returns its path.
func emptyFile(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// syncToEnd follows a sync and returns every progress message.
func syncToEnd(t *testing.T, client *trellis.Client, request *trellisv1.SyncSourceRequest) []*trellisv1.SyncSourceResponse {
	t.Helper()
	var progress []*trellisv1.SyncSourceResponse
	for message, err := range client.FollowSync(testContext(t), request) {
		if err != nil {
			t.Fatalf("FollowSync: %v", err)
		}
		progress = append(progress, message)
	}
	if len(progress) == 0 {
		t.Fatal("a sync reported no progress")
	}
	return progress
}

// wantViolations asserts that err is INVALID_ARGUMENT with violations of exactly fields.
func wantViolations(t *testing.T, err error, fields ...string) *trellis.Error {
	t.Helper()
	var apiError *trellis.Error
	if !errors.As(err, &apiError) || !errors.Is(err, trellis.ErrInvalidArgument) {
		t.Fatalf("got %v, want INVALID_ARGUMENT", err)
	}
	var got []string
	for _, violation := range apiError.Violations {
		got = append(got, violation.Field)
	}
	if !slices.Equal(got, fields) {
		t.Errorf("violations of %v, want %v: %v", got, fields, err)
	}
	return apiError
}

func TestListConnectorsShowsTheTemplateConnector(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	response, err := client.ListConnectors(testContext(t), &trellisv1.ListConnectorsRequest{})
	if err != nil {
		t.Fatalf("ListConnectors: %v", err)
	}
	var jsonl *trellisv1.Connector
	for _, connector := range response.GetConnectors() {
		if connector.GetName() == templateConnector {
			jsonl = connector
		}
	}
	if jsonl == nil {
		t.Fatalf("no %s connector among %v", templateConnector, response.GetConnectors())
	}
	if jsonl.GetVersion() == "" || jsonl.GetAbiMajor() == 0 {
		t.Errorf("connector %v has no version or ABI version", jsonl)
	}
	var schema struct {
		Required []string `json:"required"`
	}
	if err := json.Unmarshal([]byte(jsonl.GetConfigSchemaJson()), &schema); err != nil || !slices.Equal(schema.Required, []string{"path"}) {
		t.Errorf("config schema %s (%v), want one requiring path", jsonl.GetConfigSchemaJson(), err)
	}
	streams := slices.Sorted(slices.Values(jsonl.GetStreams()))
	if !slices.Equal(streams, []string{"assets", "conversations", "people", "posts"}) {
		t.Errorf("streams %v", streams)
	}
}

func TestASourceIsCreatedCheckedSyncedListedUpdatedAndDeleted(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	ctx := testContext(t)
	workspace := newWorkspace(t)
	path := filepath.Join(t.TempDir(), "community.jsonl")
	total := writeCommunity(t, path, 3)
	config := templateConfig(t, map[string]any{"path": path, "batch_size": 2})

	created, err := client.CreateSource(ctx, &trellisv1.CreateSourceRequest{Workspace: workspace, Source: &trellisv1.Source{Id: "go-src", Connector: templateConnector, ConfigJson: config}})
	if err != nil {
		t.Fatalf("CreateSource: %v", err)
	}
	if got := created.GetSource(); got.GetId() != "go-src" || got.GetStatus() != trellisv1.SyncStatus_SYNC_STATUS_IDLE || got.GetDisplayName() != "go-src" {
		t.Errorf("created %v, want an idle source named by its id", got)
	}

	check, err := client.CheckSource(ctx, &trellisv1.CheckSourceRequest{Workspace: workspace, Id: "go-src"})
	if err != nil || !check.GetOk() || !strings.Contains(check.GetMessage(), "readable") {
		t.Fatalf("CheckSource: %v, %v", check, err)
	}

	progress := syncToEnd(t, client, &trellisv1.SyncSourceRequest{Workspace: workspace, Id: "go-src"})
	if progress[0].GetStatus() != trellisv1.SyncStatus_SYNC_STATUS_RUNNING {
		t.Errorf("first progress %v, want running", progress[0])
	}
	last := progress[len(progress)-1]
	if last.GetStatus() != trellisv1.SyncStatus_SYNC_STATUS_SUCCEEDED || last.GetRecordsRead() != total {
		t.Fatalf("last progress %v, want succeeded with %d records read", last, total)
	}
	// Batches of two records: a checkpoint after each, reported as it is committed.
	if last.GetCheckpointsCommitted() < total/2 {
		t.Errorf("%d checkpoints committed, want at least %d", last.GetCheckpointsCommitted(), total/2)
	}
	if !slices.IsSortedFunc(progress, func(a, b *trellisv1.SyncSourceResponse) int { return int(a.GetRecordsRead()) - int(b.GetRecordsRead()) }) {
		t.Errorf("progress went back: %v", progress)
	}

	got, err := client.GetSource(ctx, &trellisv1.GetSourceRequest{Workspace: workspace, Id: "go-src"})
	if err != nil {
		t.Fatalf("GetSource: %v", err)
	}
	synced := got.GetSource()
	if synced.GetStatus() != trellisv1.SyncStatus_SYNC_STATUS_SUCCEEDED || synced.GetRecordsSynced() != total || synced.GetLastSyncAt() == nil {
		t.Errorf("after the sync: %v", synced)
	}
	// The records are stored under the source's id.
	stored, err := client.GetConversation(ctx, &trellisv1.GetConversationRequest{Workspace: workspace, Ref: trellis.Ref("go-src", "c0")})
	if err != nil || stored.GetConversation().GetTitle() != "thread 0" || len(stored.GetPosts()) != 1 {
		t.Errorf("GetConversation go-src:c0: %v, %v", stored, err)
	}

	// A second sync reads from where the first stopped; a full refresh reads everything again.
	again := syncToEnd(t, client, &trellisv1.SyncSourceRequest{Workspace: workspace, Id: "go-src"})
	if last := again[len(again)-1]; last.GetStatus() != trellisv1.SyncStatus_SYNC_STATUS_SUCCEEDED || last.GetRecordsRead() != 0 {
		t.Errorf("an incremental sync of an unchanged file: %v", last)
	}
	refreshed := syncToEnd(t, client, &trellisv1.SyncSourceRequest{Workspace: workspace, Id: "go-src", FullRefresh: true})
	if last := refreshed[len(refreshed)-1]; last.GetRecordsRead() != total {
		t.Errorf("a full refresh: %v", last)
	}

	if _, err := client.CreateSource(ctx, &trellisv1.CreateSourceRequest{Workspace: workspace, Source: &trellisv1.Source{Id: "go-src-2", Connector: templateConnector, ConfigJson: config}}); err != nil {
		t.Fatalf("CreateSource go-src-2: %v", err)
	}
	if ids := sourceIDs(t, client, workspace, 1); !slices.Equal(ids, []string{"go-src", "go-src-2"}) {
		t.Errorf("AllSources in pages of one: %v", ids)
	}

	synced.DisplayName = "Community file"
	synced.ConfigJson = templateConfig(t, map[string]any{"path": path, "batch_size": 50})
	updated, err := client.UpdateSource(ctx, &trellisv1.UpdateSourceRequest{Workspace: workspace, Source: synced})
	if err != nil || updated.GetSource().GetDisplayName() != "Community file" || !strings.Contains(updated.GetSource().GetConfigJson(), `"batch_size":50`) {
		t.Errorf("UpdateSource: %v, %v", updated, err)
	}

	if _, err := client.DeleteSource(ctx, &trellisv1.DeleteSourceRequest{Workspace: workspace, Id: "go-src"}); err != nil {
		t.Fatalf("DeleteSource: %v", err)
	}
	if _, err := client.GetSource(ctx, &trellisv1.GetSourceRequest{Workspace: workspace, Id: "go-src"}); !errors.Is(err, trellis.ErrNotFound) {
		t.Errorf("GetSource of a deleted source: %v, want NOT_FOUND", err)
	}
	if ids := sourceIDs(t, client, workspace, 0); !slices.Equal(ids, []string{"go-src-2"}) {
		t.Errorf("AllSources after the delete: %v", ids)
	}
}

func sourceIDs(t *testing.T, client *trellis.Client, workspace string, pageSize int32) []string {
	t.Helper()
	var ids []string
	for source, err := range client.AllSources(testContext(t), &trellisv1.ListSourcesRequest{Workspace: workspace, PageSize: pageSize}) {
		if err != nil {
			t.Fatalf("AllSources: %v", err)
		}
		ids = append(ids, source.GetId())
	}
	return ids
}

func TestCancellingTheProgressStreamLeavesTheSyncRunning(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := newWorkspace(t)
	path := filepath.Join(t.TempDir(), "slow.jsonl")
	total := writeCommunity(t, path, 20)
	// One record per batch, 100 ms apart: a sync of a few seconds.
	config := templateConfig(t, map[string]any{"path": path, "batch_size": 1, "throttle_ms": 100})
	if _, err := client.CreateSource(testContext(t), &trellisv1.CreateSourceRequest{Workspace: workspace, Source: &trellisv1.Source{Id: "go-slow", Connector: templateConnector, ConfigJson: config}}); err != nil {
		t.Fatalf("CreateSource: %v", err)
	}

	ctx, cancel := context.WithCancel(testContext(t))
	var seen []trellisv1.SyncStatus
	var streamErr error
	for progress, err := range client.FollowSync(ctx, &trellisv1.SyncSourceRequest{Workspace: workspace, Id: "go-slow"}) {
		if err != nil {
			streamErr = err
			break
		}
		seen = append(seen, progress.GetStatus())
		cancel()
	}
	cancel()
	if !errors.Is(streamErr, trellis.ErrCanceled) {
		t.Errorf("a cancelled stream ended with %v, want CANCELED", streamErr)
	}
	if len(seen) == 0 || seen[0] != trellisv1.SyncStatus_SYNC_STATUS_RUNNING {
		t.Errorf("progress before the cancel: %v", seen)
	}

	running, err := client.GetSource(testContext(t), &trellisv1.GetSourceRequest{Workspace: workspace, Id: "go-slow"})
	if err != nil || running.GetSource().GetStatus() != trellisv1.SyncStatus_SYNC_STATUS_RUNNING {
		t.Fatalf("the sync goes on on the server: %v, %v", running, err)
	}
	_, err = client.DeleteSource(testContext(t), &trellisv1.DeleteSourceRequest{Workspace: workspace, Id: "go-slow"})
	if !errors.Is(err, trellis.ErrFailedPrecondition) || !strings.Contains(err.Error(), "is syncing") {
		t.Errorf("DeleteSource of a syncing source: %v, want FAILED_PRECONDITION", err)
	}

	source := running.GetSource()
	for deadline := time.Now().Add(60 * time.Second); source.GetStatus() == trellisv1.SyncStatus_SYNC_STATUS_RUNNING && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		got, err := client.GetSource(testContext(t), &trellisv1.GetSourceRequest{Workspace: workspace, Id: "go-slow"})
		if err != nil {
			t.Fatalf("GetSource: %v", err)
		}
		source = got.GetSource()
	}
	if source.GetStatus() != trellisv1.SyncStatus_SYNC_STATUS_SUCCEEDED || source.GetRecordsSynced() != total {
		t.Errorf("the sync the client stopped following: %v", source)
	}
	if _, err := client.DeleteSource(testContext(t), &trellisv1.DeleteSourceRequest{Workspace: workspace, Id: "go-slow"}); err != nil {
		t.Errorf("DeleteSource after the sync: %v", err)
	}
}

func TestAConfigAgainstTheSchemaNamesConfigJSON(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	ctx := testContext(t)
	workspace := newWorkspace(t)
	_, err := client.CreateSource(ctx, &trellisv1.CreateSourceRequest{Workspace: workspace, Source: &trellisv1.Source{Id: "go-bad", Connector: templateConnector, ConfigJson: `{"batch_size": 0}`}})
	if refused := wantViolations(t, err, "source.config_json"); !strings.Contains(refused.Message, "path") {
		t.Errorf("the message does not name the missing path: %v", refused)
	}
	_, err = client.CreateSource(ctx, &trellisv1.CreateSourceRequest{Workspace: workspace, Source: &trellisv1.Source{Id: "go-bad", Connector: templateConnector, ConfigJson: `{path`}})
	wantViolations(t, err, "source.config_json")
	if _, err := client.GetSource(ctx, &trellisv1.GetSourceRequest{Workspace: workspace, Id: "go-bad"}); !errors.Is(err, trellis.ErrNotFound) {
		t.Errorf("a refused source was stored: %v", err)
	}
}

func TestAConfigThatDoesNotWorkFailsItsCheckAndSync(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	ctx := testContext(t)
	workspace := newWorkspace(t)
	folder := t.TempDir()
	missing := templateConfig(t, map[string]any{"path": filepath.Join(folder, "no-such-file.jsonl")})
	_, err := client.CreateSource(ctx, &trellisv1.CreateSourceRequest{Workspace: workspace, Source: &trellisv1.Source{Id: "go-missing", Connector: templateConnector, ConfigJson: missing}})
	refused := wantViolations(t, err, "source.config_json.path")
	if violation, ok := refused.Violation("source.config_json.path"); ok && !strings.Contains(violation.Description, "does not exist") {
		t.Errorf("the violation does not say the file is missing: %v", violation)
	}
	// A file deleted after its source was made: the check and the sync fail, in the connector's words.
	gone := filepath.Join(folder, "gone.jsonl")
	if err := os.WriteFile(gone, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	config := templateConfig(t, map[string]any{"path": gone})
	if _, err := client.CreateSource(ctx, &trellisv1.CreateSourceRequest{Workspace: workspace, Source: &trellisv1.Source{Id: "go-missing", Connector: templateConnector, ConfigJson: config}}); err != nil {
		t.Fatalf("CreateSource: %v", err)
	}
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	check, err := client.CheckSource(ctx, &trellisv1.CheckSourceRequest{Workspace: workspace, Id: "go-missing"})
	if err != nil || check.GetOk() || !strings.Contains(check.GetMessage(), "cannot open") {
		t.Errorf("CheckSource of a missing file: %v, %v", check, err)
	}
	progress := syncToEnd(t, client, &trellisv1.SyncSourceRequest{Workspace: workspace, Id: "go-missing"})
	if last := progress[len(progress)-1]; last.GetStatus() != trellisv1.SyncStatus_SYNC_STATUS_FAILED {
		t.Errorf("the sync of a missing file ended %v, want failed", last)
	}
	got, err := client.GetSource(ctx, &trellisv1.GetSourceRequest{Workspace: workspace, Id: "go-missing"})
	if err != nil || !strings.Contains(got.GetSource().GetLastError(), "cannot open") {
		t.Errorf("last error of the failed sync: %v, %v", got, err)
	}
}

func TestCreateSourceRefusesAnUnknownConnector(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	_, err := client.CreateSource(testContext(t), &trellisv1.CreateSourceRequest{
		Workspace: newWorkspace(t),
		Source:    &trellisv1.Source{Id: "forum", Connector: "no-such-connector", ConfigJson: "{}"},
	})
	refused := wantViolations(t, err, "source.connector")
	if violation, ok := refused.Violation("source.connector"); ok && !strings.Contains(violation.Description, templateConnector) {
		t.Errorf("the violation does not list the loaded connectors: %v", violation)
	}
}

func TestCreateSourceRefusesABadID(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	_, err := client.CreateSource(testContext(t), &trellisv1.CreateSourceRequest{
		Workspace: newWorkspace(t),
		Source:    &trellisv1.Source{Id: "Not An Id", Connector: templateConnector, ConfigJson: "{}"},
	})
	var apiError *trellis.Error
	if !errors.As(err, &apiError) {
		t.Fatalf("CreateSource with a bad id: %v", err)
	}
	if _, ok := apiError.Violation("source.id"); !ok {
		t.Errorf("no violation of source.id in %v", apiError.Violations)
	}
}

func TestSecretsAreSetAloneAndOnlySecretFields(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	ctx := testContext(t)
	workspace := newWorkspace(t)
	config := templateConfig(t, map[string]any{"path": emptyFile(t, "x.jsonl")})
	if _, err := client.CreateSource(ctx, &trellisv1.CreateSourceRequest{
		Workspace: workspace,
		Source:    &trellisv1.Source{Id: "go-secrets", Connector: templateConnector, ConfigJson: config},
	}); err != nil {
		t.Fatalf("CreateSource: %v", err)
	}
	_, err := client.SetSourceSecrets(ctx, &trellisv1.SetSourceSecretsRequest{
		Workspace: workspace, Id: "go-secrets", Set: map[string]string{"path": "elsewhere"},
	})
	var apiError *trellis.Error
	if !errors.As(err, &apiError) {
		t.Fatalf("SetSourceSecrets on a field that is not a secret: %v", err)
	}
	if _, ok := apiError.Violation("secrets.path"); !ok {
		t.Errorf("no violation of secrets.path in %v", apiError.Violations)
	}
	got, err := client.GetSource(ctx, &trellisv1.GetSourceRequest{Workspace: workspace, Id: "go-secrets"})
	if err != nil || len(got.GetSource().GetSecrets()) != 0 {
		t.Errorf("GetSource: %v, %v", got, err)
	}
}

func TestCallsOnAMissingSourceAreNotFound(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	ctx := testContext(t)
	workspace := newWorkspace(t)
	config := templateConfig(t, map[string]any{"path": emptyFile(t, "x.jsonl")})

	calls := map[string]func() error{
		"GetSource": func() error {
			_, err := client.GetSource(ctx, &trellisv1.GetSourceRequest{Workspace: workspace, Id: "missing"})
			return err
		},
		"UpdateSource": func() error {
			_, err := client.UpdateSource(ctx, &trellisv1.UpdateSourceRequest{Workspace: workspace, Source: &trellisv1.Source{Id: "missing", Connector: templateConnector, ConfigJson: config}})
			return err
		},
		"DeleteSource": func() error {
			_, err := client.DeleteSource(ctx, &trellisv1.DeleteSourceRequest{Workspace: workspace, Id: "missing"})
			return err
		},
		"CheckSource": func() error {
			_, err := client.CheckSource(ctx, &trellisv1.CheckSourceRequest{Workspace: workspace, Id: "missing"})
			return err
		},
		"SyncSource": func() error {
			failures := 0
			var last error
			for _, err := range client.FollowSync(ctx, &trellisv1.SyncSourceRequest{Workspace: workspace, Id: "missing"}) {
				if err != nil {
					failures++
					last = err
				}
			}
			if failures != 1 {
				t.Errorf("FollowSync yielded %d errors, want one", failures)
			}
			return last
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			if err := call(); !errors.Is(err, trellis.ErrNotFound) {
				t.Errorf("%s of a missing source returned %v, want NOT_FOUND", name, err)
			}
		})
	}
}

func TestAllSourcesOfANewWorkspaceIsEmpty(t *testing.T) {
	t.Parallel()
	if ids := sourceIDs(t, newClient(t), newWorkspace(t), 10); len(ids) != 0 {
		t.Errorf("a new workspace has sources %v", ids)
	}
}
