package trellis_test

// PeopleService is not implemented by the server yet: each test skips while it answers
// UNIMPLEMENTED, and runs the day it does not.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	trellisv1 "github.com/trellis-dev/trellis/clients/go/gen/trellis/v1"
	"github.com/trellis-dev/trellis/clients/go/trellis"
)

func TestGetPerson(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)
	ctx := testContext(t)

	response, err := client.GetPerson(ctx, &trellisv1.GetPersonRequest{Workspace: workspace, Ref: trellis.Ref("forum", "u-ana")})
	skipIfUnimplemented(t, err)
	if err != nil {
		t.Fatalf("GetPerson: %v", err)
	}
	if name := response.GetProfile().GetPerson().GetDisplayName(); name != "Ana" {
		t.Errorf("display name %q, want Ana", name)
	}

	_, err = client.GetPerson(ctx, &trellisv1.GetPersonRequest{Workspace: workspace, Ref: trellis.Ref("forum", "nobody")})
	if !errors.Is(err, trellis.ErrNotFound) {
		t.Errorf("GetPerson of a missing id returned %v, want NOT_FOUND", err)
	}
}

func TestAllPeopleWalksPagesAndFiltersMembers(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)
	ctx := testContext(t)

	collect := func(request *trellisv1.ListPeopleRequest) []string {
		var ids []string
		for person, err := range client.AllPeople(ctx, request) {
			skipIfUnimplemented(t, err)
			if err != nil {
				t.Fatalf("AllPeople: %v", err)
			}
			ids = append(ids, person.GetRef().GetExternalId())
		}
		slices.Sort(ids)
		return ids
	}
	everyone := collect(&trellisv1.ListPeopleRequest{Workspace: workspace, PageSize: 1})
	if want := []string{"u-ana", "u-ben", "u-dora"}; !slices.Equal(everyone, want) {
		t.Errorf("people %v, want %v", everyone, want)
	}
	members := collect(&trellisv1.ListPeopleRequest{Workspace: workspace, PageSize: 1, Member: proto.Bool(true)})
	if want := []string{"u-ana", "u-ben"}; !slices.Equal(members, want) {
		t.Errorf("members %v, want %v", members, want)
	}
}

func TestMatchPersonByEveryKindOfKey(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)
	ctx := testContext(t)

	lookups := map[string]*trellisv1.PersonLookup{
		"ref":    trellis.LookupByRef("forum", "u-ana"),
		"email":  trellis.LookupByEmail("  Ana@Example.com "),
		"handle": trellis.LookupByHandle("ana"),
		"crm id": trellis.LookupByCRMID("crm-1001"),
	}
	for kind, lookup := range lookups {
		response, err := client.MatchPerson(ctx, &trellisv1.MatchPersonRequest{Workspace: workspace, Lookup: lookup})
		skipIfUnimplemented(t, err)
		if err != nil {
			t.Fatalf("MatchPerson by %s: %v", kind, err)
		}
		if !response.GetFound() || response.GetProfile().GetPerson().GetRef().GetExternalId() != "u-ana" {
			t.Errorf("MatchPerson by %s found %v, want u-ana", kind, response.GetProfile().GetPerson().GetRef())
		}
	}

	response, err := client.MatchPerson(ctx, &trellisv1.MatchPersonRequest{Workspace: workspace, Lookup: trellis.LookupByHandle("nobody")})
	if err != nil {
		t.Fatalf("MatchPerson of an unknown handle: %v", err)
	}
	if response.GetFound() {
		t.Errorf("an unknown handle matched %v", response.GetProfile())
	}
}

func TestMatchContactsAnswersEveryContactByItsID(t *testing.T) {
	t.Parallel()
	client := newClient(t, trellis.WithWorkspace(newWorkspace(t)))
	ctx := testContext(t)
	if _, err := client.IngestRecords(ctx, slices.Values(communityRecords())); err != nil {
		t.Fatalf("IngestRecords: %v", err)
	}

	contacts := []*trellisv1.MatchPeopleRequest{
		{ContactId: "c-1", Lookup: trellis.LookupByEmail("ana@example.com")},
		{ContactId: "c-2", Lookup: trellis.LookupByHandle("ben")},
		{ContactId: "c-3", Lookup: trellis.LookupByHandle("nobody")},
	}
	found := map[string]bool{}
	for match, err := range client.MatchContacts(ctx, slices.Values(contacts)) {
		skipIfUnimplemented(t, err)
		if err != nil {
			t.Fatalf("MatchContacts: %v", err)
		}
		found[match.GetContactId()] = match.GetFound()
	}
	want := map[string]bool{"c-1": true, "c-2": true, "c-3": false}
	if len(found) != len(want) {
		t.Fatalf("answers %v, want one per contact %v", found, want)
	}
	for id, wantFound := range want {
		if found[id] != wantFound {
			t.Errorf("contact %s found=%v, want %v", id, found[id], wantFound)
		}
	}
}

func TestMatchContactsStopsCleanlyWhenTheLoopBreaks(t *testing.T) {
	t.Parallel()
	client := newClient(t, trellis.WithWorkspace(newWorkspace(t)))
	ctx := testContext(t)
	// An endless source of contacts: breaking out must cancel the stream and end the sender.
	endless := func(yield func(*trellisv1.MatchPeopleRequest) bool) {
		for {
			if !yield(&trellisv1.MatchPeopleRequest{ContactId: "c", Lookup: trellis.LookupByHandle("ana")}) {
				return
			}
		}
	}
	answers := 0
	for _, err := range client.MatchContacts(ctx, endless) {
		if err != nil {
			skipIfUnimplemented(t, err)
			// The endless sender is still running when the stream ends; a cancellation from the
			// break is the only other acceptable end.
			t.Fatalf("MatchContacts: %v", err)
		}
		answers++
		if answers == 3 {
			break
		}
	}
	if answers != 3 {
		t.Errorf("%d answers before the break, want 3", answers)
	}
}

// bulkHandle is the handle bulk contact i looks up: one the community has for i%5 < 4 (with Chen
// added to the fixture's Ana, Ben and Dora), one nobody has for the fifth.
func bulkHandle(i int) string {
	if known := []string{"ana", "ben", "chen", "dora"}; i%5 < len(known) {
		return known[i%5]
	}
	return fmt.Sprintf("nobody-%d", i)
}

// bulkWindow counts the contacts MatchContacts has taken from its iterator (on its sending
// goroutine) and the answers the test has read, and the most that were ever out at once.
type bulkWindow struct {
	pulled, answered, widest atomic.Int64
}

func (w *bulkWindow) contacts(count int) func(yield func(*trellisv1.MatchPeopleRequest) bool) {
	return func(yield func(*trellisv1.MatchPeopleRequest) bool) {
		for i := range count {
			if out := w.pulled.Add(1) - w.answered.Load(); out > w.widest.Load() {
				w.widest.Store(out)
			}
			if !yield(&trellisv1.MatchPeopleRequest{ContactId: strconv.Itoa(i), Lookup: trellis.LookupByHandle(bulkHandle(i))}) {
				return
			}
		}
	}
}

// Not parallel: it runs alone, before the parallel tests, so its rate is the stream's own.
func TestMatchContactsStreams100000ContactsInOneCallWithinTheWindow(t *testing.T) {
	client := newClient(t, trellis.WithWorkspace(newWorkspace(t)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	records := append(communityRecords(), trellis.PersonRecord(&trellisv1.Person{
		Ref: trellis.Ref("forum", "u-chen"), DisplayName: "Chen", Member: true,
		Identities: []*trellisv1.Identity{{Platform: "forum", Handle: "chen"}},
	}))
	if _, err := client.IngestRecords(ctx, slices.Values(records)); err != nil {
		t.Fatalf("IngestRecords: %v", err)
	}

	const count = 100_000
	var window bulkWindow
	seen := make([]bool, count)
	started := time.Now()
	for match, err := range client.MatchContacts(ctx, window.contacts(count)) {
		skipIfUnimplemented(t, err)
		if err != nil {
			t.Fatalf("MatchContacts after %d answers: %v", window.answered.Load(), err)
		}
		window.answered.Add(1)
		i, err := strconv.Atoi(match.GetContactId())
		if err != nil || i < 0 || i >= count {
			t.Fatalf("an answer for contact %q, which was never sent", match.GetContactId())
		}
		if seen[i] {
			t.Fatalf("contact %d answered twice", i)
		}
		seen[i] = true
		if match.GetError() != "" {
			t.Fatalf("contact %d: %s", i, match.GetError())
		}
		if want := i%5 < 4; match.GetFound() != want {
			t.Fatalf("contact %d (%s) found=%v, want %v", i, bulkHandle(i), match.GetFound(), want)
		}
	}
	elapsed := time.Since(started)
	if answered := window.answered.Load(); answered != count {
		t.Fatalf("%d answers, want %d", answered, count)
	}
	if missing := slices.Index(seen, false); missing >= 0 {
		t.Fatalf("contact %d was never answered", missing)
	}
	// A contact is taken from the iterator before its token, and an answer is counted just after
	// its token is taken back: allow a few over the window for that.
	if widest := window.widest.Load(); widest > trellis.DefaultMatchInFlight+8 {
		t.Errorf("%d contacts were out at once, want at most %d", widest, trellis.DefaultMatchInFlight)
	}
	t.Logf("%d contacts in %.1f s, %.0f contacts/s, at most %d in flight", count, elapsed.Seconds(), count/elapsed.Seconds(), window.widest.Load())
}

func TestMatchContactsKeepsAtMostMatchInFlightUnanswered(t *testing.T) {
	t.Parallel()
	client := newClient(t, trellis.WithWorkspace(newWorkspace(t)))
	var window bulkWindow
	for _, err := range client.MatchContacts(testContext(t), window.contacts(500), trellis.MatchInFlight(3)) {
		skipIfUnimplemented(t, err)
		if err != nil {
			t.Fatalf("MatchContacts: %v", err)
		}
		window.answered.Add(1)
	}
	if answered := window.answered.Load(); answered != 500 {
		t.Errorf("%d answers, want 500", answered)
	}
	if widest := window.widest.Load(); widest > 3+2 {
		t.Errorf("%d contacts were out at once, want at most 3", widest)
	}
}

func TestMatchContactsRefusesAWindowOfNothing(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	for _, bad := range []int{0, -1} {
		for _, err := range client.MatchContacts(testContext(t), slices.Values([]*trellisv1.MatchPeopleRequest{}), trellis.MatchInFlight(bad)) {
			if err == nil {
				t.Fatalf("MatchInFlight(%d) was accepted", bad)
			}
		}
	}
}

func TestMergeThenUnmergePeople(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)
	ctx := testContext(t)

	merged, err := client.MergePeople(ctx, &trellisv1.MergePeopleRequest{
		Workspace: workspace, Target: trellis.Ref("forum", "u-ana"),
		Others: []*trellisv1.RecordRef{trellis.Ref("forum", "u-ben")}, Reason: "same person, confirmed by the CRM",
	})
	skipIfUnimplemented(t, err)
	if err != nil {
		t.Fatalf("MergePeople: %v", err)
	}
	if merged.GetMergeId() == "" {
		t.Fatal("the merge has no id to undo it with")
	}
	profile, err := client.GetPerson(ctx, &trellisv1.GetPersonRequest{Workspace: workspace, Ref: trellis.Ref("forum", "u-ana")})
	if err != nil {
		t.Fatalf("GetPerson: %v", err)
	}
	if !slices.ContainsFunc(profile.GetProfile().GetMerged(), func(ref *trellisv1.RecordRef) bool { return ref.GetExternalId() == "u-ben" }) {
		t.Errorf("u-ana's merged records %v do not include u-ben", profile.GetProfile().GetMerged())
	}

	if _, err := client.UnmergePeople(ctx, &trellisv1.UnmergePeopleRequest{Workspace: workspace, MergeId: merged.GetMergeId()}); err != nil {
		t.Fatalf("UnmergePeople: %v", err)
	}
	trail, err := client.ListMerges(ctx, &trellisv1.ListMergesRequest{Workspace: workspace, Person: trellis.Ref("forum", "u-ben")})
	if err != nil {
		t.Fatalf("ListMerges: %v", err)
	}
	if len(trail.GetMerges()) != 1 || trail.GetMerges()[0].GetMergeId() != merged.GetMergeId() || trail.GetMerges()[0].GetUndoneAt() == nil {
		t.Errorf("the audit trail %v should hold the undone merge %s", trail.GetMerges(), merged.GetMergeId())
	}
	// Merged again and undone again: the trail, a merge a page, holds both, newest first.
	again, err := client.MergePeople(ctx, &trellisv1.MergePeopleRequest{
		Workspace: workspace, Target: trellis.Ref("forum", "u-ana"),
		Others: []*trellisv1.RecordRef{trellis.Ref("forum", "u-ben")}, Reason: "same person, confirmed again",
	})
	if err != nil {
		t.Fatalf("MergePeople again: %v", err)
	}
	if _, err := client.UnmergePeople(ctx, &trellisv1.UnmergePeopleRequest{Workspace: workspace, MergeId: again.GetMergeId()}); err != nil {
		t.Fatalf("UnmergePeople again: %v", err)
	}
	var paged []string
	for merge, err := range client.AllMerges(ctx, &trellisv1.ListMergesRequest{Workspace: workspace, Person: trellis.Ref("forum", "u-ben"), PageSize: 1}) {
		if err != nil {
			t.Fatalf("AllMerges: %v", err)
		}
		paged = append(paged, merge.GetMergeId())
	}
	if want := []string{again.GetMergeId(), merged.GetMergeId()}; !slices.Equal(paged, want) {
		t.Errorf("the trail a merge a page is %v, want %v", paged, want)
	}
	profile, err = client.GetPerson(ctx, &trellisv1.GetPersonRequest{Workspace: workspace, Ref: trellis.Ref("forum", "u-ana")})
	if err != nil {
		t.Fatalf("GetPerson: %v", err)
	}
	if len(profile.GetProfile().GetMerged()) > 1 {
		t.Errorf("after the unmerge u-ana still has merged records %v", profile.GetProfile().GetMerged())
	}
}

func TestForgetPersonRemovesThemForGood(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	workspace := seedWorkspace(t, client)
	ctx := testContext(t)

	forgotten, err := client.ForgetPerson(ctx, &trellisv1.ForgetPersonRequest{Workspace: workspace, Ref: trellis.Ref("forum", "u-ana")})
	skipIfUnimplemented(t, err)
	if err != nil {
		t.Fatalf("ForgetPerson: %v", err)
	}
	if forgotten.GetPostsRemoved() != 2 {
		t.Errorf("%d posts removed, want Ana's 2", forgotten.GetPostsRemoved())
	}
	_, err = client.GetPerson(ctx, &trellisv1.GetPersonRequest{Workspace: workspace, Ref: trellis.Ref("forum", "u-ana")})
	if !errors.Is(err, trellis.ErrNotFound) {
		t.Errorf("GetPerson after ForgetPerson returned %v, want NOT_FOUND", err)
	}
}
