//go:build interop

package interop

// The real Codex CLI (0.171.0, native binary behind codex.js) refreshing its
// ChatGPT tokens against a fake token endpoint on 127.0.0.1
// (CODEX_REFRESH_TOKEN_URL_OVERRIDE), against a credslots switch.

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gptme/credslots"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type codexAccount struct {
	name, accountID, refresh, newRefresh string
}

func fakeCodexAccount(name string) codexAccount {
	return codexAccount{name: name, accountID: "fake-acct-" + name, refresh: "fake-" + name + "-codex-refresh-orig", newRefresh: "fake-" + name + "-codex-refresh-NEW"}
}

// idToken carries the claims Codex reads its account and plan from.
func (a codexAccount) idToken(exp time.Time) string {
	return fakeJWT(map[string]any{
		"exp": exp.Unix(), "email": a.name + "@example.test",
		"https://api.openai.com/auth": map[string]any{"chatgpt_account_id": a.accountID, "chatgpt_plan_type": "plus"},
	})
}

func (a codexAccount) accessToken(exp time.Time, generation string) string {
	return fakeJWT(map[string]any{"exp": exp.Unix(), "sub": a.name, "gen": generation})
}

func (a codexAccount) authJSON(exp time.Time) []byte {
	doc := map[string]any{
		"OPENAI_API_KEY": nil,
		"tokens": map[string]any{
			"id_token":      a.idToken(exp),
			"access_token":  a.accessToken(exp, "orig"),
			"refresh_token": a.refresh,
			"account_id":    a.accountID,
		},
		"last_refresh": time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339),
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return b
}

// codexFake is the OAuth token endpoint, held until the gate opens; every
// other path (chatgpt_base_url points here too) answers 404.
type codexFake struct {
	url      string
	accounts []codexAccount

	mu     sync.Mutex
	others []string

	tokenGate
}

func newCodexFake(t *testing.T, accounts ...codexAccount) *codexFake {
	t.Helper()
	f := &codexFake{accounts: accounts, tokenGate: newTokenGate()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { f.open(); _ = srv.Close() })
	f.url = "http://" + ln.Addr().String()
	return f
}

func (f *codexFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if r.URL.Path != "/oauth/token" {
		f.mu.Lock()
		f.others = append(f.others, r.Method+" "+r.URL.Path)
		f.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	grantType, refreshToken, held := f.hold(w, body)
	if !held {
		return
	}
	for _, a := range f.accounts {
		if grantType == "refresh_token" && refreshToken == a.refresh {
			exp := time.Now().Add(time.Hour)
			writeJSON(w, http.StatusOK, map[string]any{
				"id_token":      a.idToken(exp),
				"access_token":  a.accessToken(exp, "NEW"),
				"refresh_token": a.newRefresh,
				"expires_in":    3600,
			})
			return
		}
	}
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant"})
}

type codexSetup struct {
	dir, home  string
	alice, bob codexAccount
	fake       *codexFake
}

// newCodexSetup: slots auth.json.alice (access token expired an hour ago)
// and auth.json.bob (fresh), live auth.json -> auth.json.alice.
func newCodexSetup(t *testing.T) *codexSetup {
	t.Helper()
	requireInstalled(t)
	dir, home := newCredsDir(t)
	s := &codexSetup{dir: dir, home: home, alice: fakeCodexAccount("alice"), bob: fakeCodexAccount("bob")}
	require.NoError(t, os.MkdirAll(filepath.Join(home, "tmp"), 0o700))
	now := time.Now()
	writeFile0600(t, filepath.Join(dir, "auth.json.alice"), s.alice.authJSON(now.Add(-time.Hour)))
	writeFile0600(t, filepath.Join(dir, "auth.json.bob"), s.bob.authJSON(now.Add(2*time.Hour)))
	require.NoError(t, os.Symlink("auth.json.alice", filepath.Join(dir, "auth.json")))
	s.fake = newCodexFake(t, s.alice, s.bob)
	return s
}

// startCodex runs `codex features list`: it loads the auth manager, which
// refreshes an expired ChatGPT access token proactively
// ("refresh_reason":"proactive_expiry") before it prints the feature table.
// `codex login status` does not refresh.
func (s *codexSetup) startCodex(t *testing.T) *proc {
	t.Helper()
	env := childEnv(s.home,
		"CODEX_HOME="+s.dir,
		"CODEX_REFRESH_TOKEN_URL_OVERRIDE="+s.fake.url+"/oauth/token",
		"TMPDIR="+filepath.Join(s.home, "tmp"),
	)
	argv := []string{"node", filepath.Join(interopDir, codexJS),
		"-c", `chatgpt_base_url="` + s.fake.url + `/backend-api"`,
		"features", "list"}
	return startProc(t, procOpts{dir: s.home, env: env, description: "codex features list"}, argv...)
}

func (s *codexSetup) credslots(t *testing.T, args ...string) cliResult {
	t.Helper()
	return runCredslots(t, s.home, append([]string{"--tool", "codex", "--dir", s.dir, "--subs", "alice,bob", "--busy-proc", "codex", "--json"}, args...)...)
}

func (s *codexSetup) refreshTokenIn(t *testing.T, name string) string {
	t.Helper()
	v, _ := dig(readJSON(t, filepath.Join(s.dir, name)), "tokens", "refresh_token").(string)
	return v
}

func (s *codexSetup) waitTokenRequest(t *testing.T, p *proc) string {
	t.Helper()
	select {
	case rt := <-s.fake.tokenArrived:
		return rt
	case <-p.done:
		t.Fatalf("codex exited (%v) before its refresh reached the fake endpoint\nstdout: %s\nstderr: %s", p.waitErr, tail(p.stdout.String()), tail(p.stderr.String()))
	case <-time.After(60 * time.Second):
		t.Fatalf("no refresh reached the fake endpoint within 60s\nstderr: %s", tail(p.stderr.String()))
	}
	return ""
}

// TestHarnessCodexRefresh proves the harness alone, without credslots: the
// expired token makes codex refresh against the fake endpoint, and it commits
// the new tokens through the symlink into the active slot.
func TestHarnessCodexRefresh(t *testing.T) {
	s := newCodexSetup(t)
	s.fake.open()
	p := s.startCodex(t)
	assert.Equal(t, s.alice.refresh, s.waitTokenRequest(t, p))
	require.Equal(t, 0, p.wait(t, 60*time.Second), "codex stderr: %s", tail(p.stderr.String()))
	assert.Equal(t, "auth.json.alice", liveTarget(t, s.dir, "auth.json"), "codex replaced the symlink")
	assert.Equal(t, s.alice.newRefresh, s.refreshTokenIn(t, "auth.json.alice"))
	assert.Equal(t, s.bob.refresh, s.refreshTokenIn(t, "auth.json.bob"))
	doc := readJSON(t, filepath.Join(s.dir, "auth.json.alice"))
	assert.Equal(t, s.alice.accountID, dig(doc, "tokens", "account_id"))
	access, _ := dig(doc, "tokens", "access_token").(string)
	assert.Equal(t, "NEW", jwtClaims(t, access)["gen"])
	fi, err := os.Stat(filepath.Join(s.dir, "auth.json.alice"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	s.fake.mu.Lock()
	t.Logf("other requests to the fake: %v", s.fake.others)
	s.fake.mu.Unlock()
}

// TestCodexRefreshDuringSwitch: a switch fired while codex refreshes is
// deferred by --busy-proc codex (ProcessGuard); codex commits alice's new
// tokens into alice's slot; the switch made afterwards succeeds.
func TestCodexRefreshDuringSwitch(t *testing.T) {
	s := newCodexSetup(t)
	p := s.startCodex(t)
	require.Equal(t, s.alice.refresh, s.waitTokenRequest(t, p))

	// codex is mid-refresh (its request is held): the switch must wait.
	r := s.credslots(t, "switch", "bob")
	assert.Equal(t, 1, r.code, "switch while codex runs: %s", r)
	assert.Equal(t, "deferred", r.doc["error"], "switch while codex runs: %s", r)
	assert.Equal(t, "auth.json.alice", liveTarget(t, s.dir, "auth.json"), "live changed while codex refreshed")

	s.fake.open()
	require.Equal(t, 0, p.wait(t, 60*time.Second), "codex stderr: %s", tail(p.stderr.String()))
	assert.Equal(t, s.alice.newRefresh, s.refreshTokenIn(t, "auth.json.alice"), "codex did not commit alice's new tokens into her slot")

	r = s.credslots(t, "switch", "bob")
	require.Equal(t, 0, r.code, "switch after codex exited: %s", r)
	assert.Equal(t, true, r.doc["ok"], "%s", r)

	assert.Equal(t, s.alice.newRefresh, s.refreshTokenIn(t, "auth.json.alice"), "alice's slot lost her rotated refresh token")
	assert.Equal(t, s.bob.refresh, s.refreshTokenIn(t, "auth.json.bob"), "bob's slot changed")
	assert.Equal(t, "auth.json.bob", liveTarget(t, s.dir, "auth.json"))
	assert.Equal(t, []string{s.alice.refresh}, s.fake.seenGrants(), "refresh tokens presented to the fake endpoint")
}

// TestCodexSwitchMidRefreshUnguarded records why --busy-proc codex matters:
// without it the switch goes through while codex waits for the token
// endpoint, and codex, finding auth.json changed when it commits, throws its
// new tokens away. alice's slot keeps a refresh token the server has already
// rotated (single use), which is what the guard prevents.
func TestCodexSwitchMidRefreshUnguarded(t *testing.T) {
	s := newCodexSetup(t)
	p := s.startCodex(t)
	require.Equal(t, s.alice.refresh, s.waitTokenRequest(t, p))
	r := runCredslots(t, s.home, "--tool", "codex", "--dir", s.dir, "--subs", "alice,bob", "--json", "switch", "bob")
	require.Equal(t, 0, r.code, "unguarded switch: %s", r)
	s.fake.open()
	code := p.wait(t, 60*time.Second)
	t.Logf("codex exit %d\nstderr: %s", code, tail(p.stderr.String()))
	assert.Equal(t, "auth.json.bob", liveTarget(t, s.dir, "auth.json"))
	assert.Equal(t, s.bob.refresh, s.refreshTokenIn(t, "auth.json.bob"), "codex wrote alice's tokens into bob's slot")
	assert.Equal(t, s.alice.refresh, s.refreshTokenIn(t, "auth.json.alice"), "codex kept its new tokens after all")
	assert.Equal(t, []string{s.alice.refresh}, s.fake.seenGrants())
}

// TestProcessGuardSeesCodex: the library's ProcessGuard("codex") reports the
// real codex process while its refresh is in flight (codex.js runs the
// native binary, named codex, as a child of node), and a Manager guarded by
// it defers the switch.
func TestProcessGuardSeesCodex(t *testing.T) {
	s := newCodexSetup(t)
	guard := credslots.ProcessGuard("codex")
	require.Empty(t, guard(), "a codex process is already running on this machine; the guard tests need none")
	p := s.startCodex(t)
	require.Equal(t, s.alice.refresh, s.waitTokenRequest(t, p))
	busy := guard()
	assert.NotEmpty(t, busy, "ProcessGuard does not see the running codex")
	t.Logf("busy-signals: %v", busy)

	m, err := credslots.New(credslots.WithFormat(credslots.CodexCLI), credslots.WithCredsDir(s.dir),
		credslots.WithSubscriptions("alice", "bob"), credslots.WithLockGuard(guard))
	require.NoError(t, err)
	res, err := m.SwitchTo("bob", "interop: guarded switch")
	assert.ErrorIs(t, err, credslots.ErrDeferred)
	assert.NotEmpty(t, res.DeferredLocks)
	assert.Equal(t, "auth.json.alice", liveTarget(t, s.dir, "auth.json"))

	s.fake.open()
	require.Equal(t, 0, p.wait(t, 60*time.Second))
	assert.Empty(t, guard(), "ProcessGuard still reports codex after it exited")
	_, err = m.SwitchTo("bob", "interop: after codex exited")
	require.NoError(t, err)
	assert.Equal(t, s.alice.newRefresh, s.refreshTokenIn(t, "auth.json.alice"))
	assert.Equal(t, s.bob.refresh, s.refreshTokenIn(t, "auth.json.bob"))
}
