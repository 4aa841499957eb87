package trellis_test

// The suite runs against the real `trellis serve`: one server for the whole test binary, on a
// loopback port it picks itself, with a database in a temporary folder and a plugin folder
// holding the real template connector (plugins/template, connector "jsonl"); every test works in
// a workspace of its own. A second real server requires API keys (auth_test.go), which tests make
// and revoke with the real `trellis keys` on its database. The binary is TRELLIS_BIN, else
// target/debug/trellis of the repository, built with cargo when missing. The plugin folder is
// TRELLIS_PLUGIN_DIR, else a temporary one with a copy of the template connector's library found
// next to the binary or in target/debug (or its deps/), built with cargo when missing.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/trellis-dev/trellis/clients/go/trellis"
)

// serverAddress is where the suite's server listens; trellisBinaryPath is the binary it runs.
var serverAddress, trellisBinaryPath string

// authServer is the suite's second server, which requires API keys and has no rate limit.
var authServer *server

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	binary, err := trellisBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	trellisBinaryPath = binary
	plugins, cleanup, err := pluginDir(binary)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	defer cleanup()
	main, err := startServer(binary, "127.0.0.1:0", "", plugins)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	serverAddress = main.address
	authServer, err = startServer(binary, "127.0.0.1:0", authConfig(0, 0), "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		_ = main.stop()
		return 1
	}
	code := m.Run()
	for _, running := range []*server{main, authServer} {
		if err := running.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			code = 1
		}
		if code != 0 {
			running.printLog()
		}
	}
	return code
}

// repositoryRoot is the folder holding Cargo.toml and proto/, above this package.
func repositoryRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isFile(filepath.Join(dir, "Cargo.toml")) && isDir(filepath.Join(dir, "proto")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the repository root (a folder with Cargo.toml and proto/) above the test's folder; set TRELLIS_BIN to the trellis binary")
		}
		dir = parent
	}
}

func trellisBinary() (string, error) {
	if binary := os.Getenv("TRELLIS_BIN"); binary != "" {
		if !isFile(binary) {
			return "", fmt.Errorf("TRELLIS_BIN=%s is not a file; point it at a built trellis binary or unset it", binary)
		}
		return binary, nil
	}
	root, err := repositoryRoot()
	if err != nil {
		return "", err
	}
	binary := filepath.Join(root, "target", "debug", "trellis")
	if isFile(binary) {
		return binary, nil
	}
	fmt.Fprintln(os.Stderr, "building the trellis binary with cargo (set TRELLIS_BIN to skip this)")
	build := exec.Command("cargo", "build", "--quiet", "--bin", "trellis")
	build.Dir = root
	build.Stdout = os.Stderr
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("cargo build --bin trellis failed: %w", err)
	}
	return binary, nil
}

// templateLibrary is the template connector's shared library as cargo builds it.
const templateLibrary = "libtrellis_connector_template.so"

// pluginDir is a plugin folder holding the template connector: TRELLIS_PLUGIN_DIR when set, else
// a temporary folder (removed by cleanup) with a copy of the library found next to binary or in
// target/debug (or its deps/, where a build of dependents leaves it), which is built with cargo
// when missing.
func pluginDir(binary string) (folder string, cleanup func(), err error) {
	if configured := os.Getenv("TRELLIS_PLUGIN_DIR"); configured != "" {
		if !isFile(filepath.Join(configured, templateLibrary)) {
			return "", nil, fmt.Errorf("TRELLIS_PLUGIN_DIR=%s holds no %s; build it with `cargo build -p trellis-connector-template` or unset it", configured, templateLibrary)
		}
		return configured, func() {}, nil
	}
	candidates := []string{filepath.Join(filepath.Dir(binary), templateLibrary)}
	root, rootErr := repositoryRoot()
	if rootErr == nil {
		built := filepath.Join(root, "target", "debug", templateLibrary)
		candidates = append(candidates, built, filepath.Join(root, "target", "debug", "deps", templateLibrary))
	}
	library := ""
	for _, candidate := range candidates {
		if isFile(candidate) {
			library = candidate
			break
		}
	}
	if library == "" {
		if rootErr != nil {
			return "", nil, rootErr
		}
		fmt.Fprintln(os.Stderr, "building the template connector with cargo (set TRELLIS_PLUGIN_DIR to skip this)")
		build := exec.Command("cargo", "build", "--quiet", "-p", "trellis-connector-template")
		build.Dir = root
		build.Stdout = os.Stderr
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			return "", nil, fmt.Errorf("cargo build -p trellis-connector-template failed: %w", err)
		}
		library = filepath.Join(root, "target", "debug", templateLibrary)
	}
	folder, err = os.MkdirTemp("", "trellis-go-plugins-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { _ = os.RemoveAll(folder) }
	content, err := os.ReadFile(library)
	if err == nil {
		err = os.WriteFile(filepath.Join(folder, templateLibrary), content, 0o755)
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("cannot copy %s into a plugin folder: %w", library, err)
	}
	return folder, cleanup, nil
}

func isFile(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular()
}

func isDir(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}

// A running `trellis serve`.
type server struct {
	command *exec.Cmd
	folder  string
	logPath string
	address string
	db      string
	exited  chan error
}

// authConfig is a config file that makes every call need an API key; 0 calls per second for
// no limit.
func authConfig(requestsPerSecond, burst int) string {
	return fmt.Sprintf("[auth]\nrequired = true\nrequests_per_second = %d\nburst = %d\n", requestsPerSecond, burst)
}

// startServer starts trellis on listen, with config as its config file and plugins as its plugin
// folder unless they are empty, and waits for its "trellis listening on" line.
func startServer(binary, listen, config, plugins string) (*server, error) {
	folder, err := os.MkdirTemp("", "trellis-go-client-")
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(folder, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	db := filepath.Join(folder, "trellis.db")
	arguments := []string{"serve", "--listen", listen, "--db", db}
	if config != "" {
		configPath := filepath.Join(folder, "trellis.toml")
		if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
			return nil, err
		}
		arguments = append(arguments, "--config", configPath)
	}
	command := exec.Command(binary, arguments...)
	command.Stderr = logFile
	// No sentence-embedding model: the suite's server runs lexical-only, whatever
	// scripts/fetch-model.sh put in the repository.
	command.Env = append(os.Environ(), "TRELLIS__SEMANTIC__MODEL_DIR="+filepath.Join(folder, "no-model"))
	if plugins != "" {
		dirs, err := json.Marshal([]string{plugins})
		if err != nil {
			return nil, err
		}
		command.Env = append(command.Env, "TRELLIS__PLUGINS__DIRS="+string(dirs))
	}
	stdout, err := command.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := command.Start(); err != nil {
		return nil, fmt.Errorf("cannot start %s: %w", binary, err)
	}
	_ = logFile.Close()
	started := &server{command: command, folder: folder, logPath: logPath, db: db, exited: make(chan error, 1)}

	addresses := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			if address, ok := strings.CutPrefix(lines.Text(), "trellis listening on "); ok {
				addresses <- strings.TrimSpace(address)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		started.exited <- command.Wait()
	}()
	select {
	case started.address = <-addresses:
		return started, nil
	case err := <-started.exited:
		started.printLog()
		return nil, fmt.Errorf("trellis serve exited before listening: %v", err)
	case <-time.After(60 * time.Second):
		_ = command.Process.Kill()
		started.printLog()
		return nil, errors.New("trellis serve did not print its address within 60 s")
	}
}

// stop sends SIGTERM and waits for a graceful exit.
func (s *server) stop() error {
	defer os.RemoveAll(s.folder)
	if err := s.command.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("cannot signal the server: %w", err)
	}
	select {
	case err := <-s.exited:
		if err != nil {
			return fmt.Errorf("the server did not exit cleanly after SIGTERM: %w", err)
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = s.command.Process.Kill()
		return errors.New("the server did not stop within 30 s of SIGTERM")
	}
}

func (s *server) printLog() {
	log, err := os.ReadFile(s.logPath)
	if err != nil {
		return
	}
	fmt.Fprintf(os.Stderr, "--- server log (%s)\n%s\n", s.logPath, log)
}

// apiKey is a key made by `trellis keys create`.
type apiKey struct {
	ID string `json:"id"`
	// The whole key, trk_<id>_<secret>, as a client sends it.
	Key       string `json:"key"`
	Workspace string `json:"workspace"`
	Role      string `json:"role"`
}

// createKey makes a key on the server's database with the real `trellis keys create`; the
// running server accepts it from its next call.
func (s *server) createKey(t *testing.T, workspace, role string) apiKey {
	t.Helper()
	output := s.keys(t, "create", "--workspace", workspace, "--role", role, "--name", "go-client-tests", "--json")
	var key apiKey
	if err := json.Unmarshal(output, &key); err != nil {
		t.Fatalf("trellis keys create printed %q: %v", output, err)
	}
	return key
}

// revokeKey revokes key with the real `trellis keys revoke`; the running server refuses it from
// its next call.
func (s *server) revokeKey(t *testing.T, key apiKey) {
	t.Helper()
	output := s.keys(t, "revoke", key.ID, "--json")
	var revoked struct {
		ID      string `json:"id"`
		Revoked bool   `json:"revoked"`
	}
	if err := json.Unmarshal(output, &revoked); err != nil || revoked.ID != key.ID || !revoked.Revoked {
		t.Fatalf("trellis keys revoke --json printed %q (%v)", output, err)
	}
}

func (s *server) keys(t *testing.T, arguments ...string) []byte {
	t.Helper()
	command := exec.Command(trellisBinaryPath, append(append([]string{"keys"}, arguments...), "--db", s.db)...)
	command.Env = append(os.Environ(), "RUST_LOG=warn")
	var stderr strings.Builder
	command.Stderr = &stderr
	output, err := command.Output()
	if err != nil {
		t.Fatalf("trellis keys %s: %v: %s", strings.Join(arguments, " "), err, stderr.String())
	}
	return output
}

// newClient connects to the suite's server; the client closes when the test ends.
func newClient(t *testing.T, options ...trellis.Option) *trellis.Client {
	t.Helper()
	client, err := trellis.New(serverAddress, options...)
	if err != nil {
		t.Fatalf("trellis.New: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

var workspaceCounter atomic.Int64
var notWorkspaceCharacter = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// newWorkspace names a workspace no other test uses.
func newWorkspace(t *testing.T) string {
	name := notWorkspaceCharacter.ReplaceAllString(t.Name(), "-")
	suffix := fmt.Sprintf("-%d", workspaceCounter.Add(1))
	if len(name)+len(suffix) > 64 {
		name = name[:64-len(suffix)]
	}
	return name + suffix
}

// testContext is cancelled when the test ends, and gives a call at most 30 s.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// skipIfUnimplemented skips a test of an RPC the server does not implement yet, so that it starts
// running the day the server does.
func skipIfUnimplemented(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, trellis.ErrUnimplemented) {
		t.Skipf("the server does not implement this RPC yet: %v", err)
	}
}
