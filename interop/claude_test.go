//go:build interop

package interop

// The real Claude Code (native binary, 2.1.197) refreshing its OAuth token
// through a local TLS-terminating proxy, against a credslots switch.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gptme/credslots"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// claudeAccount is one fake account the fake Anthropic endpoints know.
type claudeAccount struct {
	name       string
	access     string // access token in the slot
	refresh    string // refresh token in the slot
	newAccess  string // what a refresh returns
	newRefresh string
}

func fakeClaudeAccount(name string) claudeAccount {
	return claudeAccount{
		name:       name,
		access:     "fake-" + name + "-access-orig",
		refresh:    "fake-" + name + "-refresh-orig",
		newAccess:  "fake-" + name + "-access-NEW",
		newRefresh: "fake-" + name + "-refresh-NEW",
	}
}

type seenRequest struct {
	Host, Method, Path, Bearer string
	At                         time.Time
}

// claudeFake answers Claude Code's requests: the OAuth token endpoint (held
// until the gate opens), the profile endpoint and the Messages API.
type claudeFake struct {
	accounts []claudeAccount

	mu       sync.Mutex
	requests []seenRequest

	tokenGate
}

func newClaudeFake(accounts ...claudeAccount) *claudeFake {
	return &claudeFake{accounts: accounts, tokenGate: newTokenGate()}
}

// byToken finds the account an access or refresh token belongs to.
func (f *claudeFake) byToken(tok string) (claudeAccount, string, bool) {
	for _, a := range f.accounts {
		switch tok {
		case a.access:
			return a, "access-orig", true
		case a.newAccess:
			return a, "access-new", true
		case a.refresh:
			return a, "refresh-orig", true
		case a.newRefresh:
			return a, "refresh-new", true
		}
	}
	return claudeAccount{}, "", false
}

func (f *claudeFake) seen() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.requests...)
}

// apiAccounts lists, in order, whose access token each Messages API call carried.
func (f *claudeFake) apiAccounts() []string {
	var out []string
	for _, r := range f.seen() {
		if r.Host == "api.anthropic.com" && strings.HasPrefix(r.Path, "/v1/messages") {
			if a, kind, ok := f.byToken(r.Bearer); ok {
				out = append(out, a.name+"/"+kind)
			} else {
				out = append(out, "unknown")
			}
		}
	}
	return out
}

func (f *claudeFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	host := r.Host
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	bearer := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	f.requests = append(f.requests, seenRequest{Host: host, Method: r.Method, Path: r.URL.Path, Bearer: bearer, At: time.Now()})
	f.mu.Unlock()

	switch {
	case strings.HasSuffix(r.URL.Path, "/oauth/token"):
		f.token(w, body)
	case r.URL.Path == "/api/oauth/profile":
		a, _, ok := f.byToken(bearer)
		if !ok {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		writeJSON(w, http.StatusOK, profileDoc(a))
	case strings.HasPrefix(r.URL.Path, "/v1/messages"):
		f.messages(w, r, body, bearer)
	default:
		writeJSON(w, http.StatusOK, map[string]any{})
	}
}

func (f *claudeFake) token(w http.ResponseWriter, body []byte) {
	grantType, refreshToken, held := f.hold(w, body)
	if !held {
		return
	}
	a, kind, ok := f.byToken(refreshToken)
	if grantType != "refresh_token" || !ok || kind != "refresh-orig" {
		// A refresh token is single use: a second use is what the server rejects.
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant", "error_description": "refresh token not found or already used"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":  a.newAccess,
		"refresh_token": a.newRefresh,
		"expires_in":    28800,
		"token_type":    "Bearer",
		"scope":         "user:inference user:profile user:sessions:claude_code",
		"account":       map[string]any{"uuid": "00000000-0000-4000-8000-" + pad12(a.name), "email_address": a.name + "@example.test"},
		"organization":  map[string]any{"uuid": "00000000-0000-4000-9000-" + pad12(a.name), "name": a.name + "'s org"},
	})
}

func pad12(s string) string {
	hex := fmt.Sprintf("%x", s)
	for len(hex) < 12 {
		hex = "0" + hex
	}
	return hex[len(hex)-12:]
}

func profileDoc(a claudeAccount) map[string]any {
	return map[string]any{
		"account": map[string]any{
			"uuid": "00000000-0000-4000-8000-" + pad12(a.name), "email": a.name + "@example.test",
			"full_name": a.name, "display_name": a.name, "has_claude_max": true, "has_claude_pro": false,
		},
		"organization": map[string]any{
			"uuid": "00000000-0000-4000-9000-" + pad12(a.name), "name": a.name + "'s org",
			"organization_type": "claude_max", "billing_type": "stripe_subscription", "rate_limit_tier": "default_claude_max_20x",
		},
	}
}

func (f *claudeFake) messages(w http.ResponseWriter, r *http.Request, body []byte, bearer string) {
	a, kind, ok := f.byToken(bearer)
	if !ok || strings.HasPrefix(kind, "refresh") {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"type": "error", "error": map[string]any{"type": "authentication_error", "message": "invalid bearer"}})
		return
	}
	text := "fake API answered for " + a.name
	var req struct {
		Stream bool   `json:"stream"`
		Model  string `json:"model"`
	}
	_ = json.Unmarshal(body, &req)
	if !req.Stream {
		writeJSON(w, http.StatusOK, map[string]any{
			"id": "msg_fake", "type": "message", "role": "assistant", "model": req.Model,
			"content":     []map[string]any{{"type": "text", "text": text}},
			"stop_reason": "end_turn", "stop_sequence": nil,
			"usage": map[string]any{"input_tokens": 1, "output_tokens": 5},
		})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	events := []struct {
		name string
		data map[string]any
	}{
		{"message_start", map[string]any{"type": "message_start", "message": map[string]any{
			"id": "msg_fake", "type": "message", "role": "assistant", "model": req.Model, "content": []any{},
			"stop_reason": nil, "stop_sequence": nil, "usage": map[string]any{"input_tokens": 1, "output_tokens": 1}}}},
		{"content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]any{"type": "text", "text": ""}}},
		{"content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": text}}},
		{"content_block_stop", map[string]any{"type": "content_block_stop", "index": 0}},
		{"message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": "end_turn", "stop_sequence": nil}, "usage": map[string]any{"output_tokens": 5}}},
		{"message_stop", map[string]any{"type": "message_stop"}},
	}
	fl, _ := w.(http.Flusher)
	for _, ev := range events {
		b, _ := json.Marshal(ev.data)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, b)
		if fl != nil {
			fl.Flush()
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// claudeEnv is Claude Code's environment: config dir D, the proxy, the CA,
// and every switch that keeps it from calling home for anything else.
func claudeEnv(home, dir string, proxy *tlsProxy) []string {
	return childEnv(home,
		"CLAUDE_CONFIG_DIR="+dir,
		"HTTPS_PROXY="+proxy.URL(),
		"https_proxy="+proxy.URL(),
		"HTTP_PROXY="+proxy.URL(),
		"http_proxy="+proxy.URL(),
		"NO_PROXY=",
		"no_proxy=",
		"NODE_EXTRA_CA_CERTS="+proxy.caPath,
		"TMPDIR="+filepath.Join(home, "tmp"),
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
		"DISABLE_TELEMETRY=1",
		"DISABLE_ERROR_REPORTING=1",
		"DISABLE_AUTOUPDATER=1",
		"DISABLE_BUG_COMMAND=1",
		"DISABLE_COST_WARNINGS=1",
		"CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY=1",
		"CLAUDE_CODE_DISABLE_TERMINAL_TITLE=1",
		"CLAUDE_CODE_DISABLE_AUTO_MEMORY=1",
		"CLAUDE_CODE_DISABLE_CLAUDE_MDS=1",
		"IS_SANDBOX=1",
	)
}

// claudeSetup makes a creds dir with alice (access token expired) and bob
// (fresh), the live path linked to alice, and the proxy and fake in front.
type claudeSetup struct {
	rel             claudeRelease // the Claude Code release start runs
	dir, home, work string
	alice, bob      claudeAccount
	fake            *claudeFake
	proxy           *tlsProxy
	extraEnv        []string // added to Claude Code's environment
}

func newClaudeSetup(t *testing.T, rel claudeRelease) *claudeSetup {
	t.Helper()
	requireInstalled(t)
	dir, home := newCredsDir(t)
	s := &claudeSetup{rel: rel, dir: dir, home: home, work: filepath.Join(filepath.Dir(home), "work"),
		alice: fakeClaudeAccount("alice"), bob: fakeClaudeAccount("bob")}
	require.NoError(t, os.MkdirAll(filepath.Join(home, "tmp"), 0o700))
	require.NoError(t, os.MkdirAll(s.work, 0o700))
	now := time.Now()
	writeFile0600(t, filepath.Join(dir, ".credentials.json.alice"), claudeCred(s.alice.access, s.alice.refresh, now.Add(-time.Hour)))
	writeFile0600(t, filepath.Join(dir, ".credentials.json.bob"), claudeCred(s.bob.access, s.bob.refresh, now.Add(2*time.Hour)))
	require.NoError(t, os.Symlink(".credentials.json.alice", filepath.Join(dir, ".credentials.json")))
	// Claude Code's own state: onboarding done, the workspace trusted.
	state := map[string]any{
		"hasCompletedOnboarding": true,
		"numStartups":            5,
		"projects": map[string]any{s.work: map[string]any{
			"hasTrustDialogAccepted": true, "hasCompletedProjectOnboarding": true, "allowedTools": []any{},
		}},
		"oauthAccount": map[string]any{
			"accountUuid": "00000000-0000-4000-8000-" + pad12("alice"), "emailAddress": "alice@example.test",
			"organizationUuid": "00000000-0000-4000-9000-" + pad12("alice"),
		},
	}
	b, _ := json.MarshalIndent(state, "", "  ")
	writeFile0600(t, filepath.Join(dir, ".claude.json"), b)
	s.fake = newClaudeFake(s.alice, s.bob)
	s.proxy = newTLSProxy(t, s.fake)
	return s
}

func (s *claudeSetup) start(t *testing.T, args ...string) *proc {
	t.Helper()
	argv := append([]string{s.rel.Bin}, args...)
	env := append(claudeEnv(s.home, s.dir, s.proxy), s.extraEnv...)
	return startProc(t, procOpts{dir: s.work, env: env, description: "claude " + s.rel.Version + " " + strings.Join(args, " ")}, argv...)
}

func (s *claudeSetup) credslots(t *testing.T, args ...string) cliResult {
	t.Helper()
	return runCredslots(t, s.home, append([]string{"--dir", s.dir, "--subs", "alice,bob", "--json"}, args...)...)
}

func (s *claudeSetup) refreshTokenIn(t *testing.T, name string) string {
	t.Helper()
	v, _ := dig(readJSON(t, filepath.Join(s.dir, name)), "claudeAiOauth", "refreshToken").(string)
	return v
}

func (s *claudeSetup) logTraffic(t *testing.T) {
	connects, refused := s.proxy.seen()
	t.Logf("proxy CONNECTs: %v; refused: %v", connects, refused)
	for _, r := range s.fake.seen() {
		who := "-"
		if a, kind, ok := s.fake.byToken(r.Bearer); ok {
			who = a.name + "/" + kind
		}
		t.Logf("fake saw %s %s%s bearer=%s", r.Method, r.Host, r.Path, who)
	}
}

// waitTokenRequest waits for Claude Code's refresh to reach the fake endpoint.
func (s *claudeSetup) waitTokenRequest(t *testing.T, p *proc, timeout time.Duration) string {
	t.Helper()
	select {
	case rt := <-s.fake.tokenArrived:
		return rt
	case <-p.done:
		s.logTraffic(t)
		t.Fatalf("claude exited (%v) before its refresh reached the fake token endpoint\nstdout: %s\nstderr: %s", p.waitErr, tail(p.stdout.String()), tail(p.stderr.String()))
	case <-time.After(timeout):
		s.logTraffic(t)
		t.Fatalf("no refresh reached the fake token endpoint within %s\nstdout: %s\nstderr: %s", timeout, tail(p.stdout.String()), tail(p.stderr.String()))
	}
	return ""
}

// TestHarnessClaudeRefresh proves the harness alone, without credslots: an
// expired token in the linked slot makes `claude -p` refresh through the
// proxy; Claude Code renames the new token over the live path (replacing the
// symlink with a regular file) and then calls the API with it.
func TestHarnessClaudeRefresh(t *testing.T) {
	forEachClaude(t, func(t *testing.T, rel claudeRelease) {
		s := newClaudeSetup(t, rel)
		s.fake.open()
		p := s.start(t, "-p", "say hi")
		rt := s.waitTokenRequest(t, p, 60*time.Second)
		assert.Equal(t, s.alice.refresh, rt)
		code := p.wait(t, 90*time.Second)
		s.logTraffic(t)
		t.Logf("claude exit %d\nstdout: %s\nstderr: %s", code, tail(p.stdout.String()), tail(p.stderr.String()))
		fi, err := os.Lstat(filepath.Join(s.dir, ".credentials.json"))
		require.NoError(t, err)
		assert.True(t, fi.Mode().IsRegular(), "Claude Code wrote through the symlink instead of renaming over it: %v", fi.Mode())
		assert.Equal(t, s.alice.newRefresh, s.refreshTokenIn(t, ".credentials.json"))
		assert.Equal(t, s.alice.refresh, s.refreshTokenIn(t, ".credentials.json.alice"), "slot untouched by the refresh")
		assert.Contains(t, s.fake.apiAccounts(), "alice/access-new", "the API call after the refresh used the new token")
		assert.Equal(t, 0, code)
		assert.Contains(t, p.stdout.String(), "fake API answered for alice")
	})
}

// TestClaudeRefreshDuringSwitch: a switch fired while Claude Code refreshes
// alice's token waits on Claude Code's own refresh lock, then refuses
// (live_drifted) because the rotated token now sits on the live path;
// `heal --auto` puts it into alice's slot (the journal knows alice was
// active); the switch to bob then succeeds and nothing is lost.
func TestClaudeRefreshDuringSwitch(t *testing.T) {
	forEachClaude(t, func(t *testing.T, rel claudeRelease) {
		s := newClaudeSetup(t, rel)
		// alice becomes active through credslots while her token is fresh, so its
		// journal knows she is; then time passes and her access token expires.
		live := filepath.Join(s.dir, ".credentials.json")
		aliceSlot := filepath.Join(s.dir, ".credentials.json.alice")
		require.NoError(t, os.Remove(live))
		writeFile0600(t, aliceSlot, claudeCred(s.alice.access, s.alice.refresh, time.Now().Add(time.Hour)))
		r := s.credslots(t, "switch", "alice")
		require.Equal(t, 0, r.code, "switch alice: %s", r)
		writeFile0600(t, aliceSlot, claudeCred(s.alice.access, s.alice.refresh, time.Now().Add(-time.Hour)))

		p := s.start(t, "-p", "say hi")
		require.Equal(t, s.alice.refresh, s.waitTokenRequest(t, p, 60*time.Second))
		// Claude Code now holds <D>/.oauth_refresh.lock and <realpath(D)>.lock
		// and waits for the token endpoint.
		assert.DirExists(t, refreshLock.path(s.dir), "Claude Code does not hold its refresh lock during the network call")
		assert.DirExists(t, legacyLock.path(s.dir), "Claude Code does not hold its legacy lock during the network call")

		sw := startCredslots(t, s.home, "--dir", s.dir, "--subs", "alice,bob", "--json", "switch", "bob")
		time.Sleep(2 * time.Second)
		assert.True(t, sw.running(), "the switch did not wait for Claude Code's refresh lock: %s", sw.result(exitCode(sw.waitErr)))
		s.fake.open()

		claudeCode := p.wait(t, 90*time.Second)
		r = sw.result(sw.wait(t, 60*time.Second))
		s.logTraffic(t)
		t.Logf("claude exit %d, stdout: %q", claudeCode, strings.TrimSpace(p.stdout.String()))
		assert.Equal(t, 1, r.code, "switch during the refresh: %s", r)
		assert.Equal(t, "live_drifted", r.doc["error"], "switch during the refresh: %s", r)
		assert.Equal(t, s.alice.newRefresh, s.refreshTokenIn(t, ".credentials.json"), "Claude Code's rotated token is not on the live path")

		r = s.credslots(t, "heal", "--auto")
		assert.Equal(t, 0, r.code, "heal --auto: %s", r)
		assert.Equal(t, s.alice.newRefresh, s.refreshTokenIn(t, ".credentials.json.alice"), "heal --auto did not put alice's rotated token into alice's slot")
		assert.Equal(t, ".credentials.json.alice", liveTarget(t, s.dir, ".credentials.json"))

		r = s.credslots(t, "switch", "bob")
		assert.Equal(t, 0, r.code, "switch after the heal: %s", r)

		assert.Equal(t, s.alice.newRefresh, s.refreshTokenIn(t, ".credentials.json.alice"), "alice's slot lost her rotated refresh token")
		assert.Equal(t, s.bob.refresh, s.refreshTokenIn(t, ".credentials.json.bob"), "bob's slot changed")
		assert.Equal(t, ".credentials.json.bob", liveTarget(t, s.dir, ".credentials.json"))
		assertNoIdentityDrift(t, s.credslots(t, "check"))

		// The real CLI now reads bob's credentials and calls the API as bob.
		before := len(s.fake.apiAccounts())
		p2 := s.start(t, "-p", "say hi again")
		assert.Equal(t, 0, p2.wait(t, 90*time.Second), "claude after the switch: %s", tail(p2.stderr.String()))
		assert.Contains(t, p2.stdout.String(), "fake API answered for bob")
		assert.Equal(t, []string{"bob/access-orig"}, s.fake.apiAccounts()[before:])
		assert.Equal(t, []string{s.alice.refresh}, s.fake.seenGrants(), "refresh tokens presented to the token endpoint")
	})
}

// TestClaudeUsesSwitchedAccount: after a credslots switch, the real Claude
// Code follows the symlink to bob's slot: `claude auth status` reports a
// login and `claude -p` calls the API with bob's token, without a refresh.
func TestClaudeUsesSwitchedAccount(t *testing.T) {
	forEachClaude(t, func(t *testing.T, rel claudeRelease) {
		s := newClaudeSetup(t, rel)
		s.fake.open()
		r := s.credslots(t, "switch", "bob")
		require.Equal(t, 0, r.code, "switch: %s", r)
		require.Equal(t, ".credentials.json.bob", liveTarget(t, s.dir, ".credentials.json"))

		st := s.start(t, "auth", "status", "--json")
		code := st.wait(t, 60*time.Second)
		t.Logf("claude auth status: exit %d\n%s", code, st.stdout.String())
		assert.Equal(t, 0, code, "claude auth status: %s", st.stderr.String())
		var status map[string]any
		if assert.NoError(t, json.Unmarshal([]byte(st.stdout.String()), &status), "claude auth status --json output") {
			assert.Equal(t, true, status["loggedIn"], "claude auth status: %v", status)
		}

		p := s.start(t, "-p", "say hi")
		assert.Equal(t, 0, p.wait(t, 90*time.Second), "claude: %s", tail(p.stderr.String()))
		s.logTraffic(t)
		assert.Contains(t, p.stdout.String(), "fake API answered for bob")
		assert.Equal(t, []string{"bob/access-orig"}, s.fake.apiAccounts())
		assert.Empty(t, s.fake.seenGrants(), "bob's token is fresh: no refresh expected")
		assert.Equal(t, s.bob.refresh, s.refreshTokenIn(t, ".credentials.json.bob"))
		assert.Equal(t, ".credentials.json.bob", liveTarget(t, s.dir, ".credentials.json"), "claude replaced the symlink without refreshing")
		// Which account `claude auth status` names right after a switch is
		// TestClaudeSwitchCarriesStateAndAccount's: Claude Code's own profile
		// fetch runs in the background and is not awaited, so it is not
		// asserted here.
	})
}

// assertNoIdentityDrift: `credslots check` is healthy, or at least reports no
// identity drift.
func assertNoIdentityDrift(t *testing.T, r cliResult) {
	t.Helper()
	if r.code == 0 {
		return
	}
	require.NotNil(t, r.doc, "check printed no JSON: %s", r)
	for _, slot := range asList(r.doc["slots"]) {
		sl, _ := slot.(map[string]any)
		assert.NotEqual(t, true, dig(sl, "identity", "drift"), "identity drift reported for %v: %v", sl["sub"], dig(sl, "identity", "reason"))
	}
	for _, pr := range asList(r.doc["problems"]) {
		msg, _ := pr.(string)
		assert.NotContains(t, strings.ToLower(msg), "identity", "check reports: %s", msg)
	}
	t.Logf("check not healthy (exit %d) but no identity drift: %v", r.code, r.doc["problems"])
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// TestClaudeUnlockedSwitchReproducesIncident is the control for
// TestClaudeRefreshDuringSwitch: with the CLI locks off, a switch made while
// Claude Code refreshes alice goes through at once, and Claude Code 2.1.197
// then renames alice's rotated token over the live path although bob is the
// sub last switched to: the incident of SPEC round 2. 2.1.332 instead finds
// bob's token stored and discards alice's rotated one: her login is lost. If this stops happening,
// the harness no longer drives a refresh that races the switch.
func TestClaudeUnlockedSwitchReproducesIncident(t *testing.T) {
	forEachClaude(t, func(t *testing.T, rel claudeRelease) {
		s := newClaudeSetup(t, rel)
		p := s.start(t, "-p", "say hi")
		require.Equal(t, s.alice.refresh, s.waitTokenRequest(t, p, 60*time.Second))
		m := newClaudeManager(t, s.dir, credslots.WithCLILocks(false), credslots.WithLockTimeout(5*time.Second))
		o := awaitSwitch(t, switchAsync(m, "bob"), 10*time.Second)
		require.NoError(t, o.err, "unlocked switch during the refresh")
		assert.Less(t, o.took, 2*time.Second, "the unlocked switch waited")
		s.fake.open()
		assert.Equal(t, 0, p.wait(t, 90*time.Second), "claude: %s", tail(p.stderr.String()))
		last, ok := m.LastActive()
		assert.True(t, ok)
		assert.Equal(t, "bob", last)
		fi, err := os.Lstat(filepath.Join(s.dir, ".credentials.json"))
		require.NoError(t, err)
		assert.Equal(t, s.alice.refresh, s.refreshTokenIn(t, ".credentials.json.alice"))
		assert.Equal(t, []string{s.alice.refresh}, s.fake.seenGrants(), "alice's refresh token was spent")
		if rel.atLeast("2.1.332") {
			// 2.1.332 saves with a compare-and-swap under its storage-write
			// lock: the stored refresh token is no longer the one it sent
			// (bob's is), so it throws alice's new tokens away ("adopted
			// sibling"). Her slot keeps a token the server has consumed.
			assert.Equal(t, ".credentials.json.bob", liveTarget(t, s.dir, ".credentials.json"), "live path: %v", fi.Mode())
			assert.Equal(t, s.bob.refresh, s.refreshTokenIn(t, ".credentials.json"))
			for _, name := range []string{".credentials.json", ".credentials.json.alice", ".credentials.json.bob"} {
				assert.NotEqual(t, s.alice.newRefresh, s.refreshTokenIn(t, name), "alice's rotated token is nowhere: %s", name)
			}
			return
		}
		assert.True(t, fi.Mode().IsRegular(), "live path: %v", fi.Mode())
		assert.Equal(t, s.alice.newRefresh, s.refreshTokenIn(t, ".credentials.json"), "alice's rotated token landed on the live path after the switch to bob")
	})
}
