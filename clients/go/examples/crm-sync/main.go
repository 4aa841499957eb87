// Command crm-sync pushes a CRM's contacts through Trellis's bulk MatchPeople stream and prints,
// for each contact, who Trellis knows them as and where their interests converge with the
// strategy. Contacts come from a CSV file (-contacts, columns contact_id,email,handle,crm_id;
// the first non-empty key is used), or from a built-in list that matches the example community.
//
//	go run ./examples/crm-sync                        # against TRELLIS_ADDR or 127.0.0.1:50151
//	go run ./examples/crm-sync -contacts contacts.csv
package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	trellisv1 "github.com/trellis-dev/trellis/clients/go/gen/trellis/v1"
	"github.com/trellis-dev/trellis/clients/go/trellis"
)

func main() {
	address := flag.String("addr", envOr("TRELLIS_ADDR", "127.0.0.1:50151"), "the Trellis server")
	workspace := flag.String("workspace", os.Getenv("TRELLIS_WORKSPACE"), "the workspace; empty for the default one")
	contactsPath := flag.String("contacts", "", "a CSV file of contacts: contact_id,email,handle,crm_id")
	flag.Parse()
	if err := run(*address, *workspace, *contactsPath); err != nil {
		if errors.Is(err, trellis.ErrUnimplemented) {
			fmt.Println("this server does not implement MatchPeople yet (it answered UNIMPLEMENTED); the example will work once PeopleService is built.")
			return
		}
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(address, workspace, contactsPath string) error {
	contacts := builtInContacts()
	if contactsPath != "" {
		var err error
		if contacts, err = readContacts(contactsPath); err != nil {
			return err
		}
	}
	client, err := trellis.New(address, trellis.WithWorkspace(workspace), trellis.WithToken(os.Getenv("TRELLIS_TOKEN")))
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	matched := 0
	for match, err := range client.MatchContacts(ctx, slices.Values(contacts)) {
		if err != nil {
			return err
		}
		switch {
		case match.GetError() != "":
			fmt.Printf("%-8s could not be looked up: %s\n", match.GetContactId(), match.GetError())
		case !match.GetFound():
			fmt.Printf("%-8s not known to Trellis\n", match.GetContactId())
		default:
			matched++
			printMatch(match)
		}
	}
	fmt.Printf("\n%d of %d contacts matched\n", matched, len(contacts))
	return nil
}

func printMatch(match *trellisv1.MatchPeopleResponse) {
	profile := match.GetProfile()
	person := profile.GetPerson()
	fmt.Printf("%-8s %s (%s:%s), %d posts\n", match.GetContactId(), person.GetDisplayName(),
		person.GetRef().GetSource(), person.GetRef().GetExternalId(), profile.GetPosts())
	convergence := slices.Clone(profile.GetConvergence())
	slices.SortFunc(convergence, func(a, b *trellisv1.FacetConvergence) int {
		return compareDescending(a.GetConvergence(), b.GetConvergence())
	})
	if len(convergence) == 0 {
		fmt.Println("         no convergence with the strategy yet")
	}
	for _, facet := range convergence {
		fmt.Printf("         %-24s %.2f\n", facet.GetFacetId(), facet.GetConvergence())
	}
}

func compareDescending(a, b float32) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// builtInContacts are CRM contacts of the example community, looked up by each kind of key.
func builtInContacts() []*trellisv1.MatchPeopleRequest {
	return []*trellisv1.MatchPeopleRequest{
		{ContactId: "c-1001", Lookup: trellis.LookupByCRMID("crm-1001")},
		{ContactId: "c-1002", Lookup: trellis.LookupByCRMID("crm-1002")},
		{ContactId: "c-2001", Lookup: trellis.LookupByHandle("ben")},
		{ContactId: "c-2002", Lookup: trellis.LookupByHandle("eli@social.example")},
		{ContactId: "c-3001", Lookup: trellis.LookupByEmail("someone.new@example.com")},
	}
}

func readContacts(path string) ([]*trellisv1.MatchPeopleRequest, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	reader := csv.NewReader(file)
	reader.FieldsPerRecord = 4
	var contacts []*trellisv1.MatchPeopleRequest
	for line := 1; ; line++ {
		row, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return contacts, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if line == 1 && row[0] == "contact_id" {
			continue
		}
		id, email, handle, crmID := strings.TrimSpace(row[0]), strings.TrimSpace(row[1]), strings.TrimSpace(row[2]), strings.TrimSpace(row[3])
		contact := &trellisv1.MatchPeopleRequest{ContactId: id}
		switch {
		case email != "":
			contact.Lookup = trellis.LookupByEmail(email)
		case handle != "":
			contact.Lookup = trellis.LookupByHandle(handle)
		case crmID != "":
			contact.Lookup = trellis.LookupByCRMID(crmID)
		default:
			return nil, fmt.Errorf("%s line %d: contact %q has no email, handle or crm_id; give at least one", path, line, id)
		}
		contacts = append(contacts, contact)
	}
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}
