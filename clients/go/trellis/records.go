package trellis

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

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
