package trellis_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The examples are built and run against the suite's server, on a workspace holding the test
// community (add-source syncs a file of its own through the template connector): each must exit
// cleanly, and say so plainly when the server does not implement the RPC it shows yet.
func TestExamplesRunCleanly(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("building the examples takes a few seconds")
	}
	client := newClient(t)
	workspace := seedWorkspace(t, client)
	binaries := t.TempDir()
	build := exec.Command("go", "build", "-o", binaries+string(filepath.Separator), "./examples/...")
	build.Dir = ".."
	if output, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/...: %v\n%s", err, output)
	}

	data := filepath.Join(t.TempDir(), "community.jsonl")
	total := writeCommunity(t, data, 3)
	config := templateConfig(t, map[string]any{"path": data})
	examples := map[string]struct {
		arguments []string
		// What the output holds when the RPC is implemented.
		working string
	}{
		"crm-sync":           {working: "contacts matched"},
		"member-discussions": {arguments: []string{"-person", "forum:u-ana"}, working: "Discussions for forum:u-ana"},
		"add-source": {
			arguments: []string{"-connector", "jsonl", "-id", "example-file", "-config", config},
			working:   fmt.Sprintf("source example-file: SYNC_STATUS_SUCCEEDED, %d records synced", total),
		},
	}
	for name, example := range examples {
		t.Run(name, func(t *testing.T) {
			command := exec.Command(filepath.Join(binaries, name), example.arguments...)
			command.Env = append(os.Environ(), "TRELLIS_ADDR="+serverAddress, "TRELLIS_WORKSPACE="+workspace)
			output, err := command.CombinedOutput()
			if err != nil {
				t.Fatalf("%s failed: %v\n%s", name, err, output)
			}
			text := string(output)
			if !strings.Contains(text, example.working) && !strings.Contains(text, "does not implement") {
				t.Errorf("%s printed neither its result nor a clear UNIMPLEMENTED message:\n%s", name, text)
			}
		})
	}
}
