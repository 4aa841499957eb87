package trellis_test

// A small strategy and community, written for these tests: Lumen, a pretend organisation selling
// an observability platform, and a forum where engineers talk about tracing and outages.

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	trellisv1 "github.com/trellis-dev/trellis/clients/go/gen/trellis/v1"
	"github.com/trellis-dev/trellis/clients/go/trellis"
)

func testStrategy() *trellisv1.Strategy {
	return &trellisv1.Strategy{
		Name:       "Lumen observability",
		Mission:    "A place where engineers learn to see inside their systems.",
		Exclusions: []string{"cryptocurrency trading and token prices"},
		Facets: []*trellisv1.Facet{
			{
				Id:          "debug-incidents",
				Kind:        trellisv1.FacetKind_FACET_KIND_JOB,
				Name:        "Find the cause of a production incident fast",
				Description: "When a service slows down or fails in production, on-call engineers want to go from the alert to the root cause in minutes, so they can restore service.",
				Keywords:    []string{"root cause", "on-call", "outage", "latency spike"},
			},
			{
				Id:          "low-overhead-tracing",
				Kind:        trellisv1.FacetKind_FACET_KIND_ADVANTAGE,
				Name:        "Distributed tracing with almost no overhead",
				Description: "Our tracing agent samples and exports spans at very high request rates while adding less than one percent of CPU.",
				Keywords:    []string{"distributed tracing", "sampling", "span", "overhead"},
				Weight:      proto.Float64(2),
			},
			{
				Id:          "opentelemetry",
				Kind:        trellisv1.FacetKind_FACET_KIND_EXPERTISE,
				Name:        "Instrumenting code with OpenTelemetry",
				Description: "Our engineers maintain OpenTelemetry instrumentation libraries and know context propagation and custom spans.",
				Keywords:    []string{"opentelemetry", "instrumentation", "context propagation", "collector"},
			},
			{
				Id:          "dashboards-as-code",
				Kind:        trellisv1.FacetKind_FACET_KIND_MESSAGE,
				Name:        "Observability as code",
				Description: "Dashboards, alerts and service level objectives belong in version control, reviewed like any other code.",
				Keywords:    []string{"dashboards", "alerts", "slo", "version control"},
			},
			{
				Id:          "observability",
				Kind:        trellisv1.FacetKind_FACET_KIND_CATEGORY,
				Name:        "Observability platforms",
				Description: "Teams use observability platforms to collect metrics, logs and traces from their services and understand their behaviour.",
				Keywords:    []string{"observability", "metrics", "logs", "monitoring"},
			},
		},
	}
}

func at(text string) *timestamppb.Timestamp {
	moment, err := time.Parse(time.RFC3339, text)
	if err != nil {
		panic(err)
	}
	return timestamppb.New(moment)
}

// The community: people, three conversations (two strategic, one not), posts and an asset.
func communityRecords() []*trellisv1.IngestRequest {
	return []*trellisv1.IngestRequest{
		trellis.PersonRecord(&trellisv1.Person{
			Ref: trellis.Ref("forum", "u-ana"), DisplayName: "Ana", Member: true,
			Bio:        "SRE on call for a payments platform. Tracing, Kubernetes and incident reviews.",
			Identities: []*trellisv1.Identity{{Platform: "forum", Handle: "ana", EmailSha256: trellis.EmailSHA256("ana@example.com")}},
			CrmIds:     []string{"crm-1001"},
		}),
		trellis.PersonRecord(&trellisv1.Person{
			Ref: trellis.Ref("forum", "u-ben"), DisplayName: "Ben", Member: true,
			Bio:        "Backend developer in Go and Python; learning OpenTelemetry.",
			Identities: []*trellisv1.Identity{{Platform: "forum", Handle: "ben"}},
		}),
		trellis.PersonRecord(&trellisv1.Person{
			Ref: trellis.Ref("forum", "u-dora"), DisplayName: "Dora", Member: false,
			Bio:        "Platform engineer. Dashboards as code with Terraform.",
			Identities: []*trellisv1.Identity{{Platform: "forum", Handle: "dora"}},
		}),
		trellis.ConversationRecord(&trellisv1.Conversation{
			Ref: trellis.Ref("forum", "t1"), Platform: trellisv1.PlatformKind_PLATFORM_KIND_QA_FORUM,
			Url: "https://forum.example/t/1", Title: "How do I find which service causes a latency spike?",
			Body: "Our checkout API has a latency spike every evening. Metrics show p99 going from 200 ms to 3 s but we cannot tell which downstream service is slow. How do you go from the alert to the root cause?",
			Tags: []string{"latency", "debugging"}, Author: "u-ben", Open: true,
			CreatedAt: at("2026-11-20T09:00:00Z"), LastActivityAt: at("2026-11-24T18:00:00Z"),
		}),
		trellis.PostRecord(&trellisv1.Post{
			Ref: trellis.Ref("forum", "p1"), Conversation: "t1", Author: "u-ana", CreatedAt: at("2026-11-24T18:00:00Z"),
			Text: "Add distributed tracing: a trace shows the span of the slow downstream call, and sampling keeps the overhead low.",
		}),
		trellis.ConversationRecord(&trellisv1.Conversation{
			Ref: trellis.Ref("forum", "t2"), Platform: trellisv1.PlatformKind_PLATFORM_KIND_QA_FORUM,
			Url: "https://forum.example/t/2", Title: "Traces break at the message queue",
			Body: "We instrumented every service with OpenTelemetry but the trace stops when a message goes through the queue. How does context propagation work across Kafka?",
			Tags: []string{"opentelemetry", "kafka"}, Author: "u-ben", Open: true,
			CreatedAt: at("2026-11-22T10:00:00Z"), LastActivityAt: at("2026-11-22T10:00:00Z"),
		}),
		trellis.ConversationRecord(&trellisv1.Conversation{
			Ref: trellis.Ref("forum", "t3"), Platform: trellisv1.PlatformKind_PLATFORM_KIND_QA_FORUM,
			Url: "https://forum.example/t/3", Title: "Best pizza near the office?",
			Body:   "We are ordering lunch for the team on Friday. Any favourite pizza places around?",
			Author: "u-dora", Open: false,
			CreatedAt: at("2026-11-21T12:00:00Z"), LastActivityAt: at("2026-11-21T12:30:00Z"),
		}),
		trellis.PostRecord(&trellisv1.Post{
			Ref: trellis.Ref("forum", "p2"), Conversation: "t3", Author: "u-ana", CreatedAt: at("2026-11-21T12:30:00Z"),
			Text: "The place on the corner makes a good margherita.",
		}),
		trellis.AssetRecord(&trellisv1.Asset{
			Ref: trellis.Ref("blog", "a1"), Url: "https://lumen.example/blog/propagation",
			Title: "Context propagation through message queues",
			Text:  "How to carry trace context through Kafka headers with OpenTelemetry, so traces continue across the queue.",
			Kind:  trellisv1.AssetKind_ASSET_KIND_ARTICLE, Own: true, BookmarkCount: 12,
			CreatedAt: at("2026-11-01T08:00:00Z"),
		}),
	}
}

// seedWorkspace puts the test strategy and community into a new workspace and returns its name.
func seedWorkspace(t *testing.T, client *trellis.Client) string {
	t.Helper()
	workspace := newWorkspace(t)
	ctx := testContext(t)
	if _, err := client.PutStrategy(ctx, &trellisv1.PutStrategyRequest{Workspace: workspace, Strategy: testStrategy()}); err != nil {
		t.Fatalf("PutStrategy: %v", err)
	}
	records := communityRecords()
	records[0].Workspace = workspace
	summary, err := client.IngestRecords(ctx, slices.Values(records))
	if err != nil {
		t.Fatalf("IngestRecords: %v", err)
	}
	if len(summary.GetErrors()) > 0 {
		t.Fatalf("the community fixture was refused: %v", summary.GetErrors())
	}
	return workspace
}
