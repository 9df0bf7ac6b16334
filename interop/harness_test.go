//go:build interop

package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Paths inside interop/node_modules, all installed by `make interop`.
const (
	proper      = "node_modules/proper-lockfile/package.json"
	codexJS     = "node_modules/@openai/codex/bin/codex.js"
	codexNative = "node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"
	// The platform package's native binary, the same file the
	// @anthropic-ai/claude-code postinstall links to bin/claude.exe; running it
	// directly does not depend on that postinstall having run.
	claudeNative = "node_modules/@anthropic-ai/claude-code-linux-x64/claude"
)

const makeHint = "run `make interop` (npm ci --prefix interop --no-audit --no-fund) first"

var (
	interopDir string   // absolute path of interop/
	repoRoot   string   // absolute path of the module root
	scratch    string   // per-run scratch dir (built command, fake HOME)
	origEnv    []string // the environment before TestMain replaced HOME; only for `go build`

	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(2)
	}
	interopDir = wd
	repoRoot = filepath.Dir(wd)
	origEnv = os.Environ()
	scratch, err = os.MkdirTemp("", "credslots-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(2)
	}
	// Nothing below may touch the real user's config: point every CLI's
	// default location into the scratch dir for this process too.
	home := filepath.Join(scratch, "home")
	_ = os.MkdirAll(home, 0o700)
	os.Setenv("HOME", home)
	os.Setenv("CODEX_HOME", filepath.Join(home, ".codex"))
	os.Setenv("CLAUDE_CONFIG_DIR", filepath.Join(home, ".claude"))
	// The tests mostly wait (lock stale times, heartbeats, held token
	// requests), so run the parallel ones side by side even on a small
	// machine, unless -test.parallel was given.
	flag.Parse()
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet {
		_ = flag.Set("test.parallel", "16")
	}
	code := m.Run()
	_ = os.RemoveAll(scratch)
	os.Exit(code)
}

// requireInstalled fails (never skips) when node, npm or the pinned packages
// are missing or not the pinned versions.
func requireInstalled(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("interop: %s not found on PATH (%v); install Node.js >= 18, then %s", tool, err, makeHint)
		}
	}
	for _, p := range []string{proper, codexJS, codexNative, claudeNative, "lockholder.js"} {
		if _, err := os.Stat(filepath.Join(interopDir, p)); err != nil {
			t.Fatalf("interop: %s missing (%v); %s", p, err, makeHint)
		}
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	raw, err := os.ReadFile(filepath.Join(interopDir, "package.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &pkg))
	for name, want := range pkg.Dependencies {
		var got struct {
			Version string `json:"version"`
		}
		raw, err := os.ReadFile(filepath.Join(interopDir, "node_modules", name, "package.json"))
		if err != nil {
			t.Fatalf("interop: %s not installed (%v); %s", name, err, makeHint)
		}
		require.NoError(t, json.Unmarshal(raw, &got))
		if got.Version != want {
			t.Fatalf("interop: %s is %s in node_modules, package.json pins %s; %s", name, got.Version, want, makeHint)
		}
	}
}

// credslotsBin builds the command once per run.
func credslotsBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(scratch, "bin", "credslots")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goTool, "build", "-o", builtBin, "./cmd/credslots")
		cmd.Dir = repoRoot
		cmd.Env = origEnv
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/credslots: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("interop: %v", buildErr)
	}
	return builtBin
}

// childEnv is a minimal environment for a child process: nothing of the
// caller's environment leaks in except PATH (no API keys, no proxies).
func childEnv(home string, extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"LANG=C.UTF-8",
		"TERM=dumb",
		"NO_COLOR=1",
	}
	return append(env, extra...)
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a child process in its own process group, killed (group and all)
// when the test ends.
type proc struct {
	name    string
	cmd     *exec.Cmd
	stdout  *syncBuffer
	stderr  *syncBuffer
	stdin   io.WriteCloser
	done    chan struct{}
	waitErr error
}

type procOpts struct {
	dir         string
	env         []string
	stdoutPipe  io.Writer // when set, stdout also goes here
	stdinPipe   bool
	description string
}

func startProc(t *testing.T, o procOpts, argv ...string) *proc {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = o.dir
	cmd.Env = o.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &proc{name: o.description, cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	if p.name == "" {
		p.name = filepath.Base(argv[0])
	}
	cmd.Stdout = p.stdout
	if o.stdoutPipe != nil {
		cmd.Stdout = io.MultiWriter(p.stdout, o.stdoutPipe)
	}
	cmd.Stderr = p.stderr
	if o.stdinPipe {
		w, err := cmd.StdinPipe()
		require.NoError(t, err)
		p.stdin = w
	}
	require.NoError(t, cmd.Start(), "start %s", p.name)
	go func() {
		p.waitErr = cmd.Wait()
		if c, ok := o.stdoutPipe.(io.Closer); ok {
			_ = c.Close()
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("interop: %s (pid %d) did not exit after SIGKILL", p.name, cmd.Process.Pid)
		}
	})
	return p
}

// kill sends SIGKILL to the whole process group.
func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// wait waits up to timeout for the process to exit and returns its exit
// code; on timeout it kills the group and fails the test.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill()
		<-p.done
		t.Fatalf("interop: %s did not exit within %s\nstdout:\n%s\nstderr:\n%s", p.name, timeout, tail(p.stdout.String()), tail(p.stderr.String()))
	}
	return exitCode(p.waitErr)
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return -1
}

func tail(s string) string {
	const max = 4000
	if len(s) > max {
		return "…" + s[len(s)-max:]
	}
	return s
}

// cliResult is one run of the credslots command.
type cliResult struct {
	code   int
	doc    map[string]any // the last stdout line that parses as a JSON object
	stdout string
	stderr string
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, strings.TrimSpace(r.stdout), strings.TrimSpace(r.stderr))
}

// runCredslots runs the built command to completion (60 s at most).
func runCredslots(t *testing.T, home string, args ...string) cliResult {
	t.Helper()
	p := startCredslots(t, home, args...)
	code := p.wait(t, 60*time.Second)
	return p.result(code)
}

func startCredslots(t *testing.T, home string, args ...string) *proc {
	t.Helper()
	bin := credslotsBin(t)
	return startProc(t, procOpts{env: childEnv(home), description: "credslots " + strings.Join(args, " ")}, append([]string{bin}, args...)...)
}

func (p *proc) result(code int) cliResult {
	r := cliResult{code: code, stdout: p.stdout.String(), stderr: p.stderr.String()}
	// --json prints one (possibly indented) object; keep the last one.
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for {
		var doc map[string]any
		if dec.Decode(&doc) != nil {
			break
		}
		r.doc = doc
	}
	return r
}

// ---- credential fixtures (fake tokens only) ----

// fakeJWT is an unsigned JWT-shaped string with the given claims.
func fakeJWT(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]any{"alg": "none", "typ": "JWT"}) + "." + enc(claims) + "." + base64.RawURLEncoding.EncodeToString([]byte("fake-signature"))
}

// jwtClaims decodes a fake JWT's payload.
func jwtClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	require.Len(t, parts, 3, "not a JWT")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var claims map[string]any
	require.NoError(t, json.Unmarshal(raw, &claims))
	return claims
}

func claudeCred(access, refresh string, expires time.Time) []byte {
	doc := map[string]any{"claudeAiOauth": map[string]any{
		"accessToken":      access,
		"refreshToken":     refresh,
		"expiresAt":        expires.UnixMilli(),
		"scopes":           []string{"user:inference", "user:profile", "user:sessions:claude_code"},
		"subscriptionType": "max",
		"rateLimitTier":    "default_claude_max_20x",
	}}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return b
}

func writeFile0600(t *testing.T, path string, data []byte) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, data, 0o600))
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err, "read %s", path)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc), "parse %s", path)
	return doc
}

// dig walks nested JSON objects: dig(doc, "tokens", "refresh_token").
func dig(doc map[string]any, keys ...string) any {
	var cur any = doc
	for _, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// newCredsDir makes a creds dir with a private home beside it.
func newCredsDir(t *testing.T) (dir, home string) {
	t.Helper()
	root := t.TempDir()
	home = filepath.Join(root, "home")
	dir = filepath.Join(root, "creds")
	require.NoError(t, os.MkdirAll(home, 0o700))
	require.NoError(t, os.MkdirAll(dir, 0o700))
	return dir, home
}

// ---- proper-lockfile, driven through lockholder.js ----

type lockEvent struct {
	Event       string   `json:"event"`
	T           int64    `json:"t"` // ms since the epoch
	PID         int      `json:"pid"`
	Lock        string   `json:"lock"`
	Result      string   `json:"result"`
	Code        string   `json:"code"`
	Message     string   `json:"message"`
	Mtime       *float64 `json:"mtime"`
	OK          *bool    `json:"ok"`
	Compromised bool     `json:"compromised"`
}

func (e lockEvent) time() time.Time { return time.UnixMilli(e.T) }

type nodeLock struct {
	p      *proc
	events chan lockEvent
	mu     sync.Mutex
	all    []lockEvent
}

// lineSink turns a child's stdout into lock events.
type lineSink struct {
	w    *io.PipeWriter
	once sync.Once
}

func (s *lineSink) Write(p []byte) (int, error) { return s.w.Write(p) }
func (s *lineSink) Close() error {
	s.once.Do(func() { _ = s.w.Close() })
	return nil
}

// startNodeLock runs `node lockholder.js MODE --dir dir --lock l...` with extra flags.
func startNodeLock(t *testing.T, home, mode, dir string, locks []string, extra ...string) *nodeLock {
	t.Helper()
	requireInstalled(t)
	pr, pw := io.Pipe()
	n := &nodeLock{events: make(chan lockEvent, 4096)}
	argv := []string{"node", filepath.Join(interopDir, "lockholder.js"), mode, "--dir", dir}
	for _, l := range locks {
		argv = append(argv, "--lock", l)
	}
	argv = append(argv, extra...)
	n.p = startProc(t, procOpts{
		dir:         interopDir,
		env:         childEnv(home),
		stdoutPipe:  &lineSink{w: pw},
		stdinPipe:   mode == "hold",
		description: "lockholder " + mode,
	}, argv...)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var ev lockEvent
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			n.mu.Lock()
			n.all = append(n.all, ev)
			n.mu.Unlock()
			n.events <- ev
		}
		close(n.events)
	}()
	return n
}

// next returns the next event whose name is one of want, failing after timeout.
func (n *nodeLock) next(t *testing.T, timeout time.Duration, want ...string) lockEvent {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-n.events:
			if !ok {
				t.Fatalf("interop: lockholder exited before %v\nstdout:\n%s\nstderr:\n%s", want, tail(n.p.stdout.String()), tail(n.p.stderr.String()))
			}
			for _, w := range want {
				if ev.Event == w {
					return ev
				}
			}
		case <-deadline:
			t.Fatalf("interop: no %v from lockholder within %s\nstdout:\n%s\nstderr:\n%s", want, timeout, tail(n.p.stdout.String()), tail(n.p.stderr.String()))
		}
	}
}

func (n *nodeLock) seen() []lockEvent {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]lockEvent(nil), n.all...)
}

// release asks a holder to release its locks now.
func (n *nodeLock) release(t *testing.T) {
	t.Helper()
	if n.p.stdin == nil {
		return
	}
	_, err := io.WriteString(n.p.stdin, "release\n")
	if err != nil && n.p.running() {
		t.Errorf("interop: tell lockholder to release: %v", err)
	}
}

// nodeTry makes one proper-lockfile attempt (retries 0, stale as given).
func nodeTry(t *testing.T, home, dir, lock string, stale time.Duration) lockEvent {
	t.Helper()
	n := startNodeLock(t, home, "try", dir, []string{lock}, "--stale", fmt.Sprint(stale.Milliseconds()))
	ev := n.next(t, 20*time.Second, "acquired", "elocked", "error")
	n.p.wait(t, 20*time.Second)
	return ev
}

// tokenGate is the part of a fake token endpoint that tests steer: it
// records the refresh tokens presented, reports each request as it arrives,
// and holds every answer until the test opens the gate (a refresh "in
// flight").
type tokenGate struct {
	gmu          sync.Mutex
	grants       []string    // refresh tokens presented to the token endpoint
	tokenArrived chan string // one value per token request, as it arrives
	gate         chan struct{}
	gateOnce     sync.Once
}

func newTokenGate() tokenGate {
	return tokenGate{tokenArrived: make(chan string, 16), gate: make(chan struct{})}
}

// open lets every held and later answer go.
func (g *tokenGate) open() { g.gateOnce.Do(func() { close(g.gate) }) }

// seenGrants returns the refresh tokens presented so far.
func (g *tokenGate) seenGrants() []string {
	g.gmu.Lock()
	defer g.gmu.Unlock()
	return append([]string(nil), g.grants...)
}

// hold records a token request's grant and waits for the gate. It returns
// the grant type and refresh token, and false (having answered 503) when
// the gate never opened.
func (g *tokenGate) hold(w http.ResponseWriter, body []byte) (grantType, refreshToken string, ok bool) {
	var req struct {
		GrantType    string `json:"grant_type"`
		RefreshToken string `json:"refresh_token"`
	}
	_ = json.Unmarshal(body, &req)
	g.gmu.Lock()
	g.grants = append(g.grants, req.RefreshToken)
	g.gmu.Unlock()
	select {
	case g.tokenArrived <- req.RefreshToken:
	default:
	}
	select {
	case <-g.gate:
		return req.GrantType, req.RefreshToken, true
	case <-time.After(90 * time.Second):
		http.Error(w, `{"error":"test gate never opened"}`, http.StatusServiceUnavailable)
		return "", "", false
	}
}
