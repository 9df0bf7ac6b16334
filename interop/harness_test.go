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
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Paths inside the modules dir's node_modules (interop/node_modules, all
// installed by `make interop`), relative to modulesDir.
const (
	proper      = "node_modules/proper-lockfile/package.json"
	codexJS     = "node_modules/@openai/codex/bin/codex.js"
	codexNative = "node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"
	// The platform package's native binary, the same file the
	// @anthropic-ai/claude-code postinstall links to bin/claude.exe; running it
	// directly does not depend on that postinstall having run. This is the
	// oldest pinned release; claudeReleases lists every one.
	claudeNative = "node_modules/@anthropic-ai/claude-code-linux-x64/claude"
)

// Claude Code in package.json: the wrapper package (whose linux-x64 optional
// dependency holds the native binary), or an alias of the native package
// itself ("claude-code-2.1.332": "npm:@anthropic-ai/claude-code-linux-x64@2.1.332"),
// which is how a second release sits beside the first.
const (
	claudeWrapperPkg = "@anthropic-ai/claude-code"
	claudeNativePkg  = "@anthropic-ai/claude-code-linux-x64"
)

// modulesEnv names another directory holding package.json and node_modules
// to test against instead of interop/ (`make interop-latest` installs the
// registry's newest releases into one).
const modulesEnv = "CREDSLOTS_INTEROP_MODULES"

const makeHint = "run `make interop` (npm ci --prefix interop --no-audit --no-fund) first"

var (
	interopDir string   // absolute path of interop/
	modulesDir string   // absolute path of the dir holding package.json and node_modules (interop/ unless $CREDSLOTS_INTEROP_MODULES)
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
	modulesDir = wd
	if d := os.Getenv(modulesEnv); d != "" {
		if modulesDir, err = filepath.Abs(d); err != nil {
			fmt.Fprintln(os.Stderr, "interop:", err)
			os.Exit(2)
		}
	}
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
	fmt.Fprintln(os.Stderr, "interop: testing", describeVersions())
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
	if _, err := os.Stat(filepath.Join(interopDir, "lockholder.js")); err != nil {
		t.Fatalf("interop: lockholder.js missing (%v)", err)
	}
	for _, p := range []string{proper, codexJS, codexNative} {
		if _, err := os.Stat(nodeModule(p)); err != nil {
			t.Fatalf("interop: %s missing (%v); %s", nodeModule(p), err, makeHint)
		}
	}
	deps, err := readDeps()
	require.NoError(t, err)
	for name, spec := range deps {
		want := pinnedVersion(spec)
		got, err := installedVersion(name)
		if err != nil {
			t.Fatalf("interop: %s not installed (%v); %s", name, err, makeHint)
		}
		if want != "" && got != want {
			t.Fatalf("interop: %s is %s in node_modules, package.json pins %s; %s", name, got, want, makeHint)
		}
	}
	rels, err := listClaudeReleases()
	if err != nil {
		t.Fatalf("interop: %v; %s", err, makeHint)
	}
	for _, rel := range rels {
		if _, err := os.Stat(rel.Bin); err != nil {
			t.Fatalf("interop: Claude Code %s: %v; %s", rel.Version, err, makeHint)
		}
	}
}

// nodeModule is the absolute path of rel (e.g. codexJS) in the modules dir.
func nodeModule(rel string) string { return filepath.Join(modulesDir, rel) }

// readDeps reads the modules dir's package.json: dependencies and
// optionalDependencies together, name to spec.
func readDeps() (map[string]string, error) {
	var pkg struct {
		Dependencies         map[string]string `json:"dependencies"`
		OptionalDependencies map[string]string `json:"optionalDependencies"`
	}
	raw, err := os.ReadFile(filepath.Join(modulesDir, "package.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &pkg); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(modulesDir, "package.json"), err)
	}
	deps := map[string]string{}
	for n, v := range pkg.Dependencies {
		deps[n] = v
	}
	for n, v := range pkg.OptionalDependencies {
		deps[n] = v
	}
	return deps, nil
}

// pinnedVersion is the exact version a package.json spec pins ("2.1.197",
// "npm:pkg@2.1.332"), or "" for a range or tag ("latest", "^1.2.0").
func pinnedVersion(spec string) string {
	if strings.HasPrefix(spec, "npm:") {
		i := strings.LastIndex(spec, "@")
		if i <= len("npm:") {
			return ""
		}
		spec = spec[i+1:]
	}
	if spec == "" || strings.ContainsAny(spec, "^~<>=*xX| ") || !strings.ContainsAny(spec[:1], "0123456789") {
		return ""
	}
	return spec
}

// aliasOf is the package an "npm:<pkg>@<version>" spec installs, or "".
func aliasOf(spec string) string {
	if !strings.HasPrefix(spec, "npm:") {
		return ""
	}
	rest := spec[len("npm:"):]
	if i := strings.LastIndex(rest, "@"); i > 0 {
		return rest[:i]
	}
	return rest
}

// installedVersion reads node_modules/<name>/package.json's version.
func installedVersion(name string) (string, error) {
	var got struct {
		Version string `json:"version"`
	}
	raw, err := os.ReadFile(filepath.Join(modulesDir, "node_modules", name, "package.json"))
	if err != nil {
		return "", err
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		return "", fmt.Errorf("node_modules/%s/package.json: %w", name, err)
	}
	return got.Version, nil
}

// claudeRelease is one Claude Code release under test.
type claudeRelease struct {
	Version string // as installed, e.g. "2.1.332"
	Bin     string // absolute path of its native binary
}

// atLeast reports whether the release is v or newer ("2.1.220").
func (r claudeRelease) atLeast(v string) bool { return compareVersions(r.Version, v) >= 0 }

// listClaudeReleases lists the Claude Code releases in package.json, oldest
// first: the wrapper package (native binary from its linux-x64 optional
// dependency) and every alias of the native package.
func listClaudeReleases() ([]claudeRelease, error) {
	deps, err := readDeps()
	if err != nil {
		return nil, err
	}
	var rels []claudeRelease
	for name, spec := range deps {
		var pkgDir string
		switch {
		case name == claudeWrapperPkg:
			pkgDir = claudeNativePkg
		case name == claudeNativePkg || aliasOf(spec) == claudeNativePkg:
			pkgDir = name
		default:
			continue
		}
		v, err := installedVersion(pkgDir)
		if err != nil {
			return nil, fmt.Errorf("claude code %s (%s) not installed: %w", name, spec, err)
		}
		rels = append(rels, claudeRelease{Version: v, Bin: filepath.Join(modulesDir, "node_modules", pkgDir, "claude")})
	}
	if len(rels) == 0 {
		return nil, fmt.Errorf("no Claude Code release in %s", filepath.Join(modulesDir, "package.json"))
	}
	sort.Slice(rels, func(i, j int) bool { return compareVersions(rels[i].Version, rels[j].Version) < 0 })
	return rels, nil
}

// compareVersions compares dotted numeric versions ("2.1.197" < "2.1.332");
// a pre-release suffix after "-" is ignored.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(strings.SplitN(a, "-", 2)[0], "."), strings.Split(strings.SplitN(b, "-", 2)[0], ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// claudeReleases lists the Claude Code releases under test, oldest first,
// failing (never skipping) when they are not installed.
func claudeReleases(t *testing.T) []claudeRelease {
	t.Helper()
	requireInstalled(t)
	rels, err := listClaudeReleases()
	require.NoError(t, err)
	return rels
}

// oldestClaude and newestClaude are the two ends of the supported range
// (one and the same under `make interop-latest`).
func oldestClaude(t *testing.T) claudeRelease { t.Helper(); return claudeReleases(t)[0] }
func newestClaude(t *testing.T) claudeRelease {
	t.Helper()
	rels := claudeReleases(t)
	return rels[len(rels)-1]
}

// forEachClaude runs f as a subtest "claude-<version>" once per Claude Code
// release under test.
func forEachClaude(t *testing.T, f func(t *testing.T, rel claudeRelease)) {
	t.Helper()
	for _, rel := range claudeReleases(t) {
		rel := rel
		t.Run("claude-"+rel.Version, func(t *testing.T) { f(t, rel) })
	}
}

// describeVersions names every CLI version the run tests, for the log.
func describeVersions() string {
	var parts []string
	if rels, err := listClaudeReleases(); err == nil {
		var vs []string
		for _, r := range rels {
			vs = append(vs, r.Version)
		}
		parts = append(parts, "Claude Code "+strings.Join(vs, ", "))
	} else {
		parts = append(parts, "Claude Code: "+err.Error())
	}
	for _, p := range []struct{ label, name string }{{"Codex CLI", "@openai/codex"}, {"proper-lockfile", "proper-lockfile"}} {
		v, err := installedVersion(p.name)
		if err != nil {
			v = "not installed"
		}
		parts = append(parts, p.label+" "+v)
	}
	return strings.Join(parts, "; ") + " (from " + modulesDir + ")"
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
	// NODE_PATH: proper-lockfile from the modules dir when
	// interop/node_modules has none (`make interop-latest`).
	n.p = startProc(t, procOpts{
		dir:         interopDir,
		env:         childEnv(home, "NODE_PATH="+filepath.Join(modulesDir, "node_modules")),
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

// TestHarnessClaudeReleases: every Claude Code release under test is
// installed and is the version it claims (its own --version), and a default
// run covers both ends of the supported range.
func TestHarnessClaudeReleases(t *testing.T) {
	rels := claudeReleases(t)
	if os.Getenv(modulesEnv) == "" {
		require.GreaterOrEqual(t, len(rels), 2, "package.json pins both ends of the supported Claude Code range")
		require.Equal(t, "2.1.197", rels[0].Version, "the oldest supported release")
	}
	for _, rel := range rels {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, rel.Bin, "--version")
		cmd.Env = childEnv(scratch)
		out, err := cmd.Output()
		cancel()
		require.NoError(t, err, "%s --version", rel.Bin)
		require.Equal(t, rel.Version+" (Claude Code)", strings.TrimSpace(string(out)), rel.Bin)
		t.Logf("Claude Code %s: %s", rel.Version, rel.Bin)
	}
}
