// Command add-source configures a source from one of the server's connector plugins, runs its
// first sync and follows the progress as the server streams it.
//
//	go run ./examples/add-source                                   # lists the connectors
//	go run ./examples/add-source -connector blog -id lumen-blog -config '{"feed_url": "https://lumen.example/feed.xml"}'
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	trellisv1 "github.com/trellis-dev/trellis/clients/go/gen/trellis/v1"
	"github.com/trellis-dev/trellis/clients/go/trellis"
)

func main() {
	address := flag.String("addr", envOr("TRELLIS_ADDR", "127.0.0.1:50151"), "the Trellis server")
	workspace := flag.String("workspace", os.Getenv("TRELLIS_WORKSPACE"), "the workspace; empty for the default one")
	connector := flag.String("connector", "", "the connector plugin to use; empty to list them")
	id := flag.String("id", "", "the new source's id: 1 to 64 characters of a-z, 0-9, '-' or '_'")
	config := flag.String("config", "{}", "the connector's config, as JSON")
	interval := flag.Duration("every", 0, "how often to sync on a schedule, e.g. 1h; 0 for manual only")
	flag.Parse()
	if err := run(*address, *workspace, *connector, *id, *config, *interval); err != nil {
		if errors.Is(err, trellis.ErrUnimplemented) {
			fmt.Println("this server does not implement SourceService yet (it answered UNIMPLEMENTED); the example will work once connectors are built.")
			return
		}
		var apiError *trellis.Error
		if errors.As(err, &apiError) && len(apiError.Violations) > 0 {
			fmt.Fprintln(os.Stderr, "error: the server refused the source:")
			for _, violation := range apiError.Violations {
				fmt.Fprintf(os.Stderr, "  %s: %s\n", violation.Field, violation.Description)
			}
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(address, workspace, connector, id, config string, interval time.Duration) error {
	client, err := trellis.New(address, trellis.WithWorkspace(workspace), trellis.WithToken(os.Getenv("TRELLIS_TOKEN")))
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	connectors, err := client.ListConnectors(ctx, &trellisv1.ListConnectorsRequest{})
	if err != nil {
		return err
	}
	if connector == "" {
		fmt.Println("Connectors on this server (choose one with -connector):")
		if len(connectors.GetConnectors()) == 0 {
			fmt.Println("  none: the server found no connector plugins in its configured folders")
		}
		for _, available := range connectors.GetConnectors() {
			fmt.Printf("  %-16s %-10s %v\n", available.GetName(), available.GetVersion(), available.GetStreams())
		}
		return nil
	}
	if id == "" {
		return errors.New("-id is missing; name the source, e.g. -id lumen-blog")
	}

	created, err := client.CreateSource(ctx, &trellisv1.CreateSourceRequest{Source: &trellisv1.Source{
		Id: id, Connector: connector, ConfigJson: config, SyncIntervalSeconds: uint32(interval.Seconds()),
	}})
	if err != nil {
		return err
	}
	fmt.Printf("created source %s (connector %s)\n", created.GetSource().GetId(), created.GetSource().GetConnector())

	check, err := client.CheckSource(ctx, &trellisv1.CheckSourceRequest{Id: id})
	if err != nil {
		return err
	}
	if !check.GetOk() {
		return fmt.Errorf("the connector says the config does not work: %s", check.GetMessage())
	}

	fmt.Println("syncing:")
	for progress, err := range client.FollowSync(ctx, &trellisv1.SyncSourceRequest{Id: id}) {
		if err != nil {
			return err
		}
		fmt.Printf("  %-10s %-14s read %d, stored %d, checkpoints %d  %s\n",
			progress.GetStatus(), progress.GetStream(), progress.GetRecordsRead(), progress.GetRecordsStored(),
			progress.GetCheckpointsCommitted(), progress.GetMessage())
	}

	source, err := client.GetSource(ctx, &trellisv1.GetSourceRequest{Id: id})
	if err != nil {
		return err
	}
	fmt.Printf("source %s: %v, %d records synced", source.GetSource().GetId(), source.GetSource().GetStatus(), source.GetSource().GetRecordsSynced())
	if last := source.GetSource().GetLastError(); last != "" {
		fmt.Printf(", last error: %s", last)
	}
	fmt.Println()
	return nil
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}
