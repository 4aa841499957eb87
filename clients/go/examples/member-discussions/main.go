// Command member-discussions is the core of an internal app: it shows a member the discussions
// Trellis suggests they join, and the topics they could start, each with its reasons.
//
//	go run ./examples/member-discussions -person forum:u-ana
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	trellisv1 "github.com/trellis-dev/trellis/clients/go/gen/trellis/v1"
	"github.com/trellis-dev/trellis/clients/go/trellis"
)

func main() {
	address := flag.String("addr", envOr("TRELLIS_ADDR", "127.0.0.1:50151"), "the Trellis server")
	workspace := flag.String("workspace", os.Getenv("TRELLIS_WORKSPACE"), "the workspace; empty for the default one")
	person := flag.String("person", "forum:u-ana", "the member, as source:external_id")
	limit := flag.Int("limit", 5, "how many discussions to suggest")
	flag.Parse()
	if err := run(*address, *workspace, *person, *limit); err != nil {
		if errors.Is(err, trellis.ErrUnimplemented) {
			fmt.Println("this server does not implement SuggestDiscussions yet (it answered UNIMPLEMENTED); the example will work once the insight is built.")
			return
		}
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(address, workspace, person string, limit int) error {
	source, externalID, ok := strings.Cut(person, ":")
	if !ok || source == "" || externalID == "" {
		return fmt.Errorf("-person %q is not source:external_id; write it like forum:u-ana", person)
	}
	client, err := trellis.New(address, trellis.WithWorkspace(workspace), trellis.WithToken(os.Getenv("TRELLIS_TOKEN")),
		trellis.WithDefaultTimeout(10*time.Second))
	if err != nil {
		return err
	}
	defer client.Close()

	suggestions, err := client.SuggestDiscussions(context.Background(), &trellisv1.SuggestDiscussionsRequest{
		Person: trellis.Ref(source, externalID), Limit: int32(limit),
	})
	if errors.Is(err, trellis.ErrNotFound) {
		return fmt.Errorf("trellis does not know %s; ingest the person first (%w)", person, err)
	}
	if err != nil {
		return err
	}

	fmt.Printf("Discussions for %s to join:\n", person)
	if len(suggestions.GetJoin()) == 0 {
		fmt.Println("  none right now")
	}
	for _, discussion := range suggestions.GetJoin() {
		fmt.Printf("  %.2f  %s  %s\n", discussion.GetScore(), discussion.GetTitle(), discussion.GetUrl())
		for _, reason := range discussion.GetReasons() {
			fmt.Printf("        - %s\n", reason)
		}
	}
	fmt.Printf("\nTopics %s could start:\n", person)
	if len(suggestions.GetStart()) == 0 {
		fmt.Println("  none right now")
	}
	for _, topic := range suggestions.GetStart() {
		fmt.Printf("  %s (facet %s)\n", topic.GetSuggestedTitle(), topic.GetFacetId())
		for _, reason := range topic.GetReasons() {
			fmt.Printf("        - %s\n", reason)
		}
	}
	return nil
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}
