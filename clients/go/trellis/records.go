package trellis

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	trellisv1 "github.com/trellis-dev/trellis/clients/go/gen/trellis/v1"
)

// Ref is the identity of a record: the source it came from and its id there.
func Ref(source, externalID string) *trellisv1.RecordRef {
	return &trellisv1.RecordRef{Source: source, ExternalId: externalID}
}

// PersonRecord wraps a person for [Client.IngestRecords].
func PersonRecord(person *trellisv1.Person) *trellisv1.IngestRequest {
	return &trellisv1.IngestRequest{Record: &trellisv1.IngestRequest_Person{Person: person}}
}

// ConversationRecord wraps a conversation for [Client.IngestRecords].
func ConversationRecord(conversation *trellisv1.Conversation) *trellisv1.IngestRequest {
	return &trellisv1.IngestRequest{Record: &trellisv1.IngestRequest_Conversation{Conversation: conversation}}
}

// PostRecord wraps a post for [Client.IngestRecords].
func PostRecord(post *trellisv1.Post) *trellisv1.IngestRequest {
	return &trellisv1.IngestRequest{Record: &trellisv1.IngestRequest_Post{Post: post}}
}

// AssetRecord wraps an asset for [Client.IngestRecords].
func AssetRecord(asset *trellisv1.Asset) *trellisv1.IngestRequest {
	return &trellisv1.IngestRequest{Record: &trellisv1.IngestRequest_Asset{Asset: asset}}
}

// EmailSHA256 is the form in which Trellis knows e-mail addresses: the lowercase hex SHA-256 of
// the trimmed, lowercased address. The address itself never leaves the caller.
func EmailSHA256(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:])
}

// LookupByRef finds a person by the record they were ingested as.
func LookupByRef(source, externalID string) *trellisv1.PersonLookup {
	return &trellisv1.PersonLookup{Key: &trellisv1.PersonLookup_Ref{Ref: Ref(source, externalID)}}
}

// LookupByEmail finds a person by e-mail address; only its hash is sent (see [EmailSHA256]).
func LookupByEmail(email string) *trellisv1.PersonLookup {
	return &trellisv1.PersonLookup{Key: &trellisv1.PersonLookup_EmailSha256{EmailSha256: EmailSHA256(email)}}
}

// LookupByHandle finds a person by their handle on a platform.
func LookupByHandle(handle string) *trellisv1.PersonLookup {
	return &trellisv1.PersonLookup{Key: &trellisv1.PersonLookup_Handle{Handle: handle}}
}

// LookupByProfileURL finds a person by the URL of one of their profiles.
func LookupByProfileURL(profileURL string) *trellisv1.PersonLookup {
	return &trellisv1.PersonLookup{Key: &trellisv1.PersonLookup_ProfileUrl{ProfileUrl: profileURL}}
}

// LookupByCRMID finds a person by their id in the organisation's CRM.
func LookupByCRMID(crmID string) *trellisv1.PersonLookup {
	return &trellisv1.PersonLookup{Key: &trellisv1.PersonLookup_CrmId{CrmId: crmID}}
}

// FeedbackParts names the suggestion a piece of feedback is about, and what else it says; see
// [Feedback]. Each kind of suggestion is named by its own parts: a discussion by Person and
// Conversation, a participant by Conversation and Person, an asset by Conversation and Asset, a
// prospect by Person, an action by Action (and the conversation or person it is about, if any).
type FeedbackParts struct {
	// The person the suggestion was for (discussion) or about (participant, prospect, action).
	Person *trellisv1.RecordRef
	// The conversation suggested (discussion) or suggested for (participant, asset, action).
	Conversation *trellisv1.RecordRef
	// The asset suggested (asset).
	Asset *trellisv1.RecordRef
	// The action as the caller names it: its kind and target, or its own id for it (action).
	Action string
	// When it happened; now when zero.
	At time.Time
	// Who said so: a team member, an app. At most 200 bytes.
	Actor string
	// At most 2,000 bytes.
	Note string
	// The caller's id for it: recording an id again replaces what it said. Left empty, the server
	// derives one from the suggestion, the outcome and At.
	ID string
}

// Feedback is one piece of feedback for [Client.RecordFeedback]: what became (outcome) of a
// suggestion of kind, named by parts. The server refuses a part the kind needs and lacks, naming
// it ("feedback[0].conversation").
//
// At is now when parts leaves it zero, so the id the server derives for feedback without one is
// the same on every attempt of a call: the client retries RecordFeedback only when every piece
// has an id or a time.
//
//	client.RecordFeedback(ctx, &trellisv1.RecordFeedbackRequest{Feedback: []*trellisv1.Feedback{
//		trellis.Feedback(trellisv1.SuggestionKind_SUGGESTION_KIND_DISCUSSION, trellisv1.FeedbackOutcome_FEEDBACK_OUTCOME_ACCEPTED,
//			trellis.FeedbackParts{Person: trellis.Ref("forum", "u-ana"), Conversation: trellis.Ref("forum", "t1")}),
//	}})
func Feedback(kind trellisv1.SuggestionKind, outcome trellisv1.FeedbackOutcome, parts FeedbackParts) *trellisv1.Feedback {
	at := parts.At
	if at.IsZero() {
		at = time.Now()
	}
	return &trellisv1.Feedback{
		Id:           parts.ID,
		Kind:         kind,
		Outcome:      outcome,
		Person:       parts.Person,
		Conversation: parts.Conversation,
		Asset:        parts.Asset,
		Action:       parts.Action,
		At:           timestamppb.New(at),
		Actor:        parts.Actor,
		Note:         parts.Note,
	}
}
