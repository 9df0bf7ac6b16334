//go:build interop

package interop

// Leases with the real Claude Code: several agents at once, each with a
// login of its own, against a token endpoint that, like the real one,
// issues a new refresh token on every refresh and rejects one presented
// twice (in real life that revokes the login).

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seatClaudes lists the pinned Claude Code releases that honour
// CLAUDE_SECURESTORAGE_CONFIG_DIR (2.1.220 and later), by version. It fails
// when there is none.
func seatClaudes(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, rel := range claudeReleases(t) {
		if rel.atLeast("2.1.220") {
			out[rel.Version] = rel.Bin
		}
	}
	if len(out) == 0 {
		t.Fatalf("interop: no pinned Claude Code 2.1.220 or later (the seat variable CLAUDE_SECURESTORAGE_CONFIG_DIR); %s", makeHint)
	}
	return out
}

// rotatingFake is the token endpoint of the real servers, faithfully
// strict: every refresh returns a new access and refresh token, a refresh
// token is good once, and a second presentation is recorded as a reuse
// (and rejected). Access tokens it issued are accepted by the Messages API.
type rotatingFake struct {
	ttl time.Duration // expires_in of what it issues

	mu      sync.Mutex
	serial  map[string]int    // account -> refreshes so far
	current map[string]string // account -> its one valid refresh token
	used    map[string]bool   // refresh tokens already presented
	access  map[string]string // access token -> account
	reuses  []string          // refresh tokens presented twice
	calls   int               // Messages API calls answered
}

func newRotatingFake(ttl time.Duration, accounts ...string) *rotatingFake {
	f := &rotatingFake{ttl: ttl, serial: map[string]int{}, current: map[string]string{}, used: map[string]bool{}, access: map[string]string{}}
	for _, a := range accounts {
		f.current[a] = rotRefresh(a, 0)
		f.access[rotAccess(a, 0)] = a
	}
	return f
}

func rotRefresh(account string, n int) string { return fmt.Sprintf("fake-%s-refresh-%d", account, n) }
func rotAccess(account string, n int) string  { return fmt.Sprintf("fake-%s-access-%d", account, n) }

var rotToken = regexp.MustCompile(`^fake-([a-z]+)-refresh-(\d+)$`)

// accountOf names the account a refresh token belongs to.
func accountOf(rt string) string {
	if m := rotToken.FindStringSubmatch(rt); m != nil {
		return m[1]
	}
	return ""
}

func (f *rotatingFake) newest(account string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.current[account]
}

func (f *rotatingFake) report() (reuses []string, refreshes, calls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.serial {
		refreshes += n
	}
	return append([]string(nil), f.reuses...), refreshes, f.calls
}

func (f *rotatingFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	bearer := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case strings.HasSuffix(r.URL.Path, "/oauth/token"):
		f.token(w, body)
	case r.URL.Path == "/api/oauth/profile":
		f.mu.Lock()
		a, ok := f.access[bearer]
		f.mu.Unlock()
		if !ok {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		writeJSON(w, http.StatusOK, profileDoc(claudeAccount{name: a}))
	case strings.HasPrefix(r.URL.Path, "/v1/messages"):
		f.mu.Lock()
		a, ok := f.access[bearer]
		if ok {
			f.calls++
		}
		f.mu.Unlock()
		if !ok {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"type": "error", "error": map[string]any{"type": "authentication_error", "message": "invalid bearer"}})
			return
		}
		var fake claudeFake
		fake.accounts = []claudeAccount{{name: a, access: bearer}}
		fake.messages(w, r, body, bearer)
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{})
	}
}

func (f *rotatingFake) token(w http.ResponseWriter, body []byte) {
	var req struct {
		GrantType    string `json:"grant_type"`
		RefreshToken string `json:"refresh_token"`
	}
	_ = json.Unmarshal(body, &req)
	f.mu.Lock()
	defer f.mu.Unlock()
	a := accountOf(req.RefreshToken)
	if f.used[req.RefreshToken] {
		f.reuses = append(f.reuses, req.RefreshToken)
	}
	f.used[req.RefreshToken] = true
	if req.GrantType != "refresh_token" || a == "" || f.current[a] != req.RefreshToken {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant", "error_description": "refresh token not found or already used"})
		return
	}
	f.serial[a]++
	n := f.serial[a]
	f.current[a] = rotRefresh(a, n)
	f.access[rotAccess(a, n)] = a
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":  rotAccess(a, n),
		"refresh_token": rotRefresh(a, n),
		"expires_in":    int(f.ttl / time.Second),
		"token_type":    "Bearer",
		"scope":         "user:inference user:profile user:sessions:claude_code",
		"account":       map[string]any{"uuid": "00000000-0000-4000-8000-" + pad12(a), "email_address": a + "@example.test"},
		"organization":  map[string]any{"uuid": "00000000-0000-4000-9000-" + pad12(a), "name": a + "'s org"},
	})
}

// leaseWorld is a creds dir of rotating-fake logins, a config dir every
// agent shares (only the credentials move to a seat), the proxy and fake.
type leaseWorld struct {
	dir, home, config, work string
	fake                    *rotatingFake
	proxy                   *tlsProxy
}

func newLeaseWorld(t *testing.T, ttl time.Duration, accounts ...string) *leaseWorld {
	t.Helper()
	requireInstalled(t)
	dir, home := newCredsDir(t)
	w := &leaseWorld{dir: dir, home: home, config: filepath.Join(home, ".claude"), work: filepath.Join(filepath.Dir(home), "work")}
	for _, d := range []string{w.config, w.work, filepath.Join(home, "tmp")} {
		require.NoError(t, os.MkdirAll(d, 0o700))
	}
	state := map[string]any{
		"hasCompletedOnboarding": true,
		"numStartups":            5,
		"projects": map[string]any{w.work: map[string]any{
			"hasTrustDialogAccepted": true, "hasCompletedProjectOnboarding": true, "allowedTools": []any{},
		}},
	}
	b, _ := json.MarshalIndent(state, "", "  ")
	writeFile0600(t, filepath.Join(w.config, ".claude.json"), b)
	// Every login is due for a refresh at once (Claude Code refreshes
	// within 5 minutes of expiry) yet fresh for credslots' --grace.
	for _, a := range accounts {
		writeFile0600(t, filepath.Join(dir, ".credentials.json."+a), claudeCred(rotAccess(a, 0), rotRefresh(a, 0), time.Now().Add(ttl)))
	}
	w.fake = newRotatingFake(ttl, accounts...)
	w.proxy = newTLSProxy(t, w.fake)
	return w
}

func (w *leaseWorld) env() []string { return claudeEnv(w.home, w.config, w.proxy) }

// seatLogins reads every seat under the creds dir's private seats and the
// extra seats: which account's login each holds.
func seatLogins(seats []string) map[string][]string {
	out := map[string][]string{}
	for _, s := range seats {
		raw, err := os.ReadFile(filepath.Join(s, ".credentials.json"))
		if err != nil {
			continue
		}
		var doc struct {
			ClaudeAiOauth struct {
				RefreshToken string `json:"refreshToken"`
			} `json:"claudeAiOauth"`
		}
		if json.Unmarshal(raw, &doc) != nil {
			continue
		}
		if a := accountOf(doc.ClaudeAiOauth.RefreshToken); a != "" {
			out[a] = append(out[a], s)
		}
	}
	return out
}

// TestClaudeSharedLoginReusesRefreshToken shows what leases prevent: two
// Claude Code processes started on copies of one login both refresh it,
// and the endpoint sees the same refresh token twice.
func TestClaudeSharedLoginReusesRefreshToken(t *testing.T) {
	t.Parallel()
	for version, bin := range seatClaudes(t) {
		t.Run("claude-"+version, func(t *testing.T) {
			w := newLeaseWorld(t, 2*time.Minute, "alice")
			login, err := os.ReadFile(filepath.Join(w.dir, ".credentials.json.alice"))
			require.NoError(t, err)
			var procs []*proc
			for i := 0; i < 2; i++ {
				seat := filepath.Join(t.TempDir(), "seat")
				require.NoError(t, os.MkdirAll(seat, 0o700))
				writeFile0600(t, filepath.Join(seat, ".credentials.json"), login)
				env := append(w.env(), "CLAUDE_SECURESTORAGE_CONFIG_DIR="+seat)
				procs = append(procs, startProc(t, procOpts{dir: w.work, env: env, description: "claude copy"}, bin, "-p", "say ok"))
			}
			for _, p := range procs {
				p.wait(t, 90*time.Second)
			}
			reuses, refreshes, _ := w.fake.report()
			assert.GreaterOrEqual(t, refreshes, 1, "one of them refreshed")
			assert.NotEmpty(t, reuses, "the other presented the consumed refresh token: in real life the login is revoked")
		})
	}
}

// TestClaudeAgentsThroughLeases runs four `credslots run -- claude -p`
// loops in parallel over three subs whose tokens are always due for a
// refresh: no refresh token is ever presented twice, no login is ever
// live in two seats at once, and each slot ends with its account's newest
// token.
func TestClaudeAgentsThroughLeases(t *testing.T) {
	t.Parallel()
	for version, bin := range seatClaudes(t) {
		t.Run("claude-"+version, func(t *testing.T) {
			accounts := []string{"alice", "bob", "carol"}
			w := newLeaseWorld(t, 2*time.Minute, accounts...)
			credslots := credslotsBin(t)
			const loops, rounds = 4, 4

			// Sample every seat while the agents run.
			stop := make(chan struct{})
			sampled := make(chan []string, 1)
			go func() {
				var twice []string
				samples := 0
				seats := filepath.Join(w.dir, ".credslots", "seats")
				for {
					select {
					case <-stop:
						sampled <- append(twice, fmt.Sprintf("samples=%d", samples))
						return
					case <-time.After(10 * time.Millisecond):
					}
					entries, _ := os.ReadDir(seats)
					var dirs []string
					for _, e := range entries {
						if e.IsDir() {
							dirs = append(dirs, filepath.Join(seats, e.Name()))
						}
					}
					samples++
					for a, in := range seatLogins(dirs) {
						if len(in) > 1 {
							twice = append(twice, fmt.Sprintf("%s in %v", a, in))
						}
					}
				}
			}()

			var wg sync.WaitGroup
			var mu sync.Mutex
			var failures []string
			subsUsed := map[string]int{}
			for i := 0; i < loops; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					for r := 0; r < rounds; r++ {
						// One supervisor is killed with SIGKILL while its
						// agent runs on: the agent keeps the lease's lock,
						// and its refresh is recovered by a later lease.
						killed := i == 0 && r == 1
						script := `printf 'sub=%s\n' "$CREDSLOTS_SUB"; exec "$0" -p "say ok"`
						if killed {
							script = `printf 'sub=%s\n' "$CREDSLOTS_SUB"; sleep 1; exec "$0" -p "say ok"`
						}
						p := startProc(t, procOpts{dir: w.work, env: w.env(), description: fmt.Sprintf("agent %d round %d", i, r)},
							credslots, "--dir", w.dir, "--grace", "30s", "run", "--wait", "2m", "--", "sh", "-c", script, bin)
						if killed {
							require.Eventually(t, func() bool { return strings.Contains(p.stdout.String(), "sub=") }, time.Minute, 10*time.Millisecond)
							require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
						}
						code := p.wait(t, 3*time.Minute)
						if killed && code == 128+int(syscall.SIGKILL) {
							code = 0 // the supervisor's status; its agent ran on
						}
						out := p.stdout.String()
						mu.Lock()
						if code != 0 || !strings.Contains(out, "fake API answered for") {
							failures = append(failures, fmt.Sprintf("agent %d round %d: exit %d\nstdout: %s\nstderr: %s", i, r, code, tail(out), tail(p.stderr.String())))
						}
						if m := regexp.MustCompile(`sub=(\w+)`).FindStringSubmatch(out); m != nil {
							subsUsed[m[1]]++
							if !strings.Contains(out, "fake API answered for "+m[1]) {
								failures = append(failures, fmt.Sprintf("agent %d round %d leased %s but called the API as another account: %s", i, r, m[1], tail(out)))
							}
						}
						mu.Unlock()
					}
				}(i)
			}
			wg.Wait()
			// Any later lease recovers the seat the killed supervisor left.
			r := runCredslotsWithEnv(t, w.env(), "--dir", w.dir, "--grace", "30s", "run", "--", "true")
			require.Equal(t, 0, r.code, r.String())
			close(stop)
			twice := <-sampled
			for _, f := range failures {
				t.Error(f)
			}
			reuses, refreshes, calls := w.fake.report()
			t.Logf("%d refreshes, %d API calls, subs used %v, sampler %v", refreshes, calls, subsUsed, twice[len(twice)-1])
			assert.Empty(t, reuses, "no refresh token presented twice")
			assert.Empty(t, twice[:len(twice)-1], "no login live in two seats at once")
			assert.GreaterOrEqual(t, refreshes, loops*rounds, "every run refreshed")
			for _, a := range accounts {
				v, _ := dig(readJSON(t, filepath.Join(w.dir, ".credentials.json."+a)), "claudeAiOauth", "refreshToken").(string)
				assert.Equal(t, w.fake.newest(a), v, "slot %s ends with its account's newest token", a)
			}
			seats, _ := os.ReadDir(filepath.Join(w.dir, ".credslots", "seats"))
			var left []string
			for _, s := range seats {
				left = append(left, s.Name())
			}
			sort.Strings(left)
			assert.Empty(t, left, "every private seat removed")
		})
	}
}

// runCredslotsWithEnv runs the built command to completion with env.
func runCredslotsWithEnv(t *testing.T, env []string, args ...string) cliResult {
	t.Helper()
	p := startProc(t, procOpts{env: env, description: "credslots " + strings.Join(args, " ")}, append([]string{credslotsBin(t)}, args...)...)
	return p.result(p.wait(t, 60*time.Second))
}

// TestClaudeOlderReleaseSeatIsItsConfigDir runs a release before the seat
// variable (2.1.197) through `credslots run --seat-env CLAUDE_CONFIG_DIR`:
// the seat is then its whole config dir, and leases hold just the same.
func TestClaudeOlderReleaseSeatIsItsConfigDir(t *testing.T) {
	t.Parallel()
	rel := oldestClaude(t)
	if rel.atLeast("2.1.220") {
		t.Fatalf("interop: the oldest pinned Claude Code %s already has the seat variable; this case is for an older one", rel.Version)
	}
	w := newLeaseWorld(t, 2*time.Minute, "alice", "bob")
	credslots := credslotsBin(t)
	var procs []*proc
	for i := 0; i < 3; i++ {
		// Each seat is a config dir of its own: give it Claude Code's state.
		script := `cp "$STATE" "$CREDSLOTS_SEAT/.claude.json" && exec "$0" -p "say ok"`
		env := append(w.env(), "STATE="+filepath.Join(w.config, ".claude.json"))
		procs = append(procs, startProc(t, procOpts{dir: w.work, env: env, description: fmt.Sprintf("agent %d", i)},
			credslots, "--dir", w.dir, "--grace", "30s", "run", "--wait", "2m", "--seat-env", "CLAUDE_CONFIG_DIR", "--", "sh", "-c", script, rel.Bin))
	}
	for i, p := range procs {
		code := p.wait(t, 3*time.Minute)
		assert.Equal(t, 0, code, "agent %d: %s\n%s", i, tail(p.stdout.String()), tail(p.stderr.String()))
		assert.Contains(t, p.stdout.String(), "fake API answered for")
	}
	reuses, refreshes, _ := w.fake.report()
	assert.Empty(t, reuses)
	assert.GreaterOrEqual(t, refreshes, 3)
	for _, a := range []string{"alice", "bob"} {
		v, _ := dig(readJSON(t, filepath.Join(w.dir, ".credentials.json."+a)), "claudeAiOauth", "refreshToken").(string)
		assert.Equal(t, w.fake.newest(a), v, "slot %s ends with its account's newest token", a)
	}
}

// TestCodexReadsItsLeasedSeat runs the real Codex CLI through `credslots
// --tool codex run`: it reads the login leased to its seat from CODEX_HOME.
func TestCodexReadsItsLeasedSeat(t *testing.T) {
	t.Parallel()
	requireInstalled(t)
	dir, home := newCredsDir(t)
	a := fakeCodexAccount("dora")
	writeFile0600(t, filepath.Join(dir, "auth.json.dora"), a.authJSON(time.Now().Add(10*24*time.Hour)))
	p := startProc(t, procOpts{env: childEnv(home), description: "credslots run codex login status"},
		credslotsBin(t), "--tool", "codex", "--dir", dir, "run", "--", nodeModule(codexNative), "login", "status")
	code := p.wait(t, 60*time.Second)
	out := p.stdout.String() + p.stderr.String()
	require.Equal(t, 0, code, out)
	assert.Contains(t, strings.ToLower(out), "logged in", "Codex found the leased login in CODEX_HOME")
	seats, _ := os.ReadDir(filepath.Join(dir, ".credslots", "seats"))
	assert.Empty(t, seats, "the private seat is removed")
	slot, err := os.ReadFile(filepath.Join(dir, "auth.json.dora"))
	require.NoError(t, err)
	assert.Contains(t, string(slot), a.refresh, "the slot keeps its login")
}
