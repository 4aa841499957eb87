package trellis_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"slices"
	"time"

	trellisv1 "github.com/trellis-dev/trellis/clients/go/gen/trellis/v1"
	"github.com/trellis-dev/trellis/clients/go/trellis"
)

func ExampleNew() {
	client, err := trellis.New("127.0.0.1:50151",
		trellis.WithWorkspace("lumen"),
		trellis.WithToken("an API key"),
		trellis.WithDefaultTimeout(10*time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	top, err := client.ListStrategicConversations(context.Background(), &trellisv1.ListStrategicConversationsRequest{Limit: 5})
	if err != nil {
		log.Fatal(err)
	}
	for _, conversation := range top.GetConversations() {
		fmt.Printf("%.2f %s\n", conversation.GetPriority(), conversation.GetTitle())
	}
}

func ExampleError() {
	client, err := trellis.New("127.0.0.1:50151")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	_, err = client.PutStrategy(context.Background(), &trellisv1.PutStrategyRequest{Strategy: &trellisv1.Strategy{}})
	var apiError *trellis.Error
	if errors.As(err, &apiError) {
		for _, violation := range apiError.Violations {
			fmt.Printf("%s: %s\n", violation.Field, violation.Description)
		}
	}
}

func ExampleClient_AllStrategyVersions() {
	client, err := trellis.New("127.0.0.1:50151")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	for version, err := range client.AllStrategyVersions(context.Background(), &trellisv1.ListStrategyVersionsRequest{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(version.GetVersion(), version.GetStrategy().GetName())
	}
}

func ExampleClient_IngestRecords() {
	client, err := trellis.New("127.0.0.1:50151")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	records := []*trellisv1.IngestRequest{
		trellis.PersonRecord(&trellisv1.Person{Ref: trellis.Ref("forum", "u-ana"), DisplayName: "Ana", Member: true}),
		trellis.ConversationRecord(&trellisv1.Conversation{Ref: trellis.Ref("forum", "t1"), Title: "Traces stop at the queue"}),
	}
	summary, err := client.IngestRecords(context.Background(), slices.Values(records))
	if err != nil {
		log.Fatal(err)
	}
	for _, refused := range summary.GetErrors() {
		fmt.Printf("record %d refused: %s %s\n", refused.GetPosition(), refused.GetField(), refused.GetReason())
	}
}

func ExampleClient_MatchContacts() {
	client, err := trellis.New("127.0.0.1:50151")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	contacts := []*trellisv1.MatchPeopleRequest{
		{ContactId: "c-1", Lookup: trellis.LookupByEmail("ana@example.com")},
		{ContactId: "c-2", Lookup: trellis.LookupByCRMID("crm-1002")},
	}
	for match, err := range client.MatchContacts(context.Background(), slices.Values(contacts)) {
		if err != nil {
			log.Fatal(err)
		}
		for _, facet := range match.GetProfile().GetConvergence() {
			fmt.Println(match.GetContactId(), facet.GetFacetId(), facet.GetConvergence())
		}
	}
}

func ExampleFeedback() {
	client, err := trellis.New("127.0.0.1:50151")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	ctx := context.Background()
	recorded, err := client.RecordFeedback(ctx, &trellisv1.RecordFeedbackRequest{Feedback: []*trellisv1.Feedback{
		trellis.Feedback(trellisv1.SuggestionKind_SUGGESTION_KIND_DISCUSSION, trellisv1.FeedbackOutcome_FEEDBACK_OUTCOME_ACCEPTED,
			trellis.FeedbackParts{Person: trellis.Ref("forum", "u-ana"), Conversation: trellis.Ref("forum", "t1"), Actor: "community-app"}),
	}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(recorded.GetIds(), recorded.GetRecorded(), recorded.GetReplaced())

	for item, err := range client.AllFeedback(ctx, &trellisv1.ListFeedbackRequest{Kind: trellisv1.SuggestionKind_SUGGESTION_KIND_DISCUSSION}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(item.GetId(), item.GetOutcome(), item.GetAt().AsTime())
	}
}
