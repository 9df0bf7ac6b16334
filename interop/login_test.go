//go:build interop

package interop

// The real Claude Code (2.1.197) logging in to another account while
// credslots has bob active: `claude auth login` driven offline (the browser
// is a script that records the authorize URL, the test plays the browser's
// redirect to Claude Code's localhost callback, the fake token endpoint
// answers the code exchange with dave's login). SPEC section 21: a heal
// must not file dave's login into bob's slot.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loginCode is the authorization code the fake "browser" hands back.
const loginCode = "fake-login-code"

// loginSetup is a creds dir with bob active through credslots (slot, live
// symlink, journal, bob's oauthAccount in .claude.json captured into his
// sidecar) and a fake Anthropic that answers a code exchange with dave's
// login.
type loginSetup struct {
	*claudeSetup
	dave       claudeAccount
	browserLog string // where the fake browser writes the URLs it is given
	bin        string // the Claude Code binary (default claudeNative)
}

func accountUUID(name string) string { return "00000000-0000-4000-8000-" + pad12(name) }

func newLoginSetup(t *testing.T, rel claudeRelease, bobExpires time.Time) *loginSetup {
	t.Helper()
	requireInstalled(t)
	dir, home := newCredsDir(t)
	s := &loginSetup{
		claudeSetup: &claudeSetup{rel: rel, dir: dir, home: home, work: filepath.Join(filepath.Dir(home), "work"),
			alice: fakeClaudeAccount("alice"), bob: fakeClaudeAccount("bob")},
		dave:       fakeClaudeAccount("dave"),
		browserLog: filepath.Join(home, "browser.log"),
		bin:        rel.Bin,
	}
	require.NoError(t, os.MkdirAll(filepath.Join(home, "tmp"), 0o700))
	require.NoError(t, os.MkdirAll(s.work, 0o700))
	writeFile0600(t, filepath.Join(dir, ".credentials.json.alice"), claudeCred(s.alice.access, s.alice.refresh, time.Now().Add(2*time.Hour)))
	writeFile0600(t, filepath.Join(dir, ".credentials.json.bob"), claudeCred(s.bob.access, s.bob.refresh, time.Now().Add(2*time.Hour)))
	state := map[string]any{
		"hasCompletedOnboarding": true,
		"numStartups":            5,
		"projects": map[string]any{s.work: map[string]any{
			"hasTrustDialogAccepted": true, "hasCompletedProjectOnboarding": true, "allowedTools": []any{},
		}},
		"oauthAccount": map[string]any{
			"accountUuid": accountUUID("bob"), "emailAddress": "bob@example.test",
			"organizationUuid": "00000000-0000-4000-9000-" + pad12("bob"),
		},
	}
	b, _ := json.MarshalIndent(state, "", "  ")
	writeFile0600(t, filepath.Join(dir, ".claude.json"), b)
	// The browser: a script that records the URL Claude Code opens.
	browser := filepath.Join(home, "browser.sh")
	require.NoError(t, os.WriteFile(browser, []byte("#!/bin/sh\nprintf '%s\\n' \"$1\" >> '"+s.browserLog+"'\n"), 0o700))

	s.fake = newClaudeFake(s.alice, s.bob, s.dave)
	s.fake.open()
	s.proxy = newTLSProxy(t, http.HandlerFunc(s.serve))

	// bob becomes active through credslots while his token is fresh, and his
	// account is captured; then his token ages to bobExpires.
	r := s.credslots(t, "switch", "bob")
	require.Equal(t, 0, r.code, "switch bob: %s", r)
	require.Equal(t, ".credentials.json.bob", liveTarget(t, dir, ".credentials.json"))
	r = s.credslots(t, "capture", "bob")
	require.Equal(t, 0, r.code, "capture bob: %s", r)
	writeFile0600(t, filepath.Join(dir, ".credentials.json.bob"), claudeCred(s.bob.access, s.bob.refresh, bobExpires))
	return s
}

// serve answers the code exchange with dave's login and hands everything
// else to the fake the other Claude Code tests use.
func (s *loginSetup) serve(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/oauth/token") && r.Method == http.MethodPost {
		var req struct {
			GrantType string `json:"grant_type"`
			Code      string `json:"code"`
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		_ = json.Unmarshal(body, &req)
		if req.GrantType == "authorization_code" {
			s.fake.mu.Lock()
			s.fake.requests = append(s.fake.requests, seenRequest{Host: r.Host, Method: r.Method, Path: r.URL.Path + "#code", At: time.Now()})
			s.fake.mu.Unlock()
			if req.Code != loginCode {
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant"})
				return
			}
			a := s.dave
			writeJSON(w, http.StatusOK, map[string]any{
				"access_token":  a.access,
				"refresh_token": a.refresh,
				"expires_in":    28800,
				"token_type":    "Bearer",
				"scope":         "user:inference user:profile user:sessions:claude_code user:mcp_servers user:file_upload",
				"account":       map[string]any{"uuid": accountUUID(a.name), "email_address": a.name + "@example.test"},
				"organization":  map[string]any{"uuid": "00000000-0000-4000-9000-" + pad12(a.name), "name": a.name + "'s org"},
			})
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	if r.URL.Path == "/api/oauth/claude_cli/roles" {
		writeJSON(w, http.StatusOK, map[string]any{"organization_role": "admin", "workspace_role": nil, "organization_name": "fake org"})
		return
	}
	s.fake.ServeHTTP(w, r)
}

// login runs `claude auth login` (prefix, e.g. strace, before the binary),
// plays the browser's redirect to its localhost callback with loginCode and
// waits for it to exit.
func (s *loginSetup) login(t *testing.T, prefix ...string) *proc {
	t.Helper()
	bin := s.bin
	if bin == "" {
		bin = filepath.Join(interopDir, claudeNative)
	}
	argv := append(append([]string{}, prefix...), bin, "auth", "login")
	env := append(claudeEnv(s.home, s.dir, s.proxy), "BROWSER="+filepath.Join(s.home, "browser.sh"))
	p := startProc(t, procOpts{dir: s.work, env: env, stdinPipe: true, description: "claude auth login"}, argv...)
	var authorize *url.URL
	deadline := time.Now().Add(30 * time.Second)
	for authorize == nil {
		if raw, err := os.ReadFile(s.browserLog); err == nil {
			for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
				if u, err := url.Parse(line); err == nil && u.Query().Get("state") != "" {
					authorize = u
				}
			}
		}
		if authorize != nil {
			break
		}
		if !p.running() || time.Now().After(deadline) {
			s.logTraffic(t)
			t.Fatalf("claude auth login opened no authorize URL (exit %v)\nstdout: %s\nstderr: %s", p.waitErr, tail(p.stdout.String()), tail(p.stderr.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	q := authorize.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	require.NoError(t, err)
	require.Equal(t, "localhost", redirect.Hostname(), "redirect_uri %s", redirect)
	cb := *redirect
	cb.RawQuery = url.Values{"code": {loginCode}, "state": {q.Get("state")}}.Encode()
	// The browser: straight to the callback, no proxy, no redirects followed.
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil},
		Timeout:       60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Get(cb.String())
	require.NoError(t, err, "GET the login callback")
	_ = resp.Body.Close()
	t.Logf("login callback answered %s (Location %q)", resp.Status, resp.Header.Get("Location"))
	code := p.wait(t, 60*time.Second)
	t.Logf("claude auth login: exit %d\nstdout: %s\nstderr: %s", code, tail(p.stdout.String()), tail(p.stderr.String()))
	require.Equal(t, 0, code, "claude auth login failed")
	return p
}

func (s *loginSetup) account(t *testing.T) string {
	t.Helper()
	v, _ := dig(readJSON(t, filepath.Join(s.dir, ".claude.json")), "oauthAccount", "accountUuid").(string)
	return v
}

// slotBytes reads a file's bytes (nil when it is missing).
func slotBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		require.ErrorIs(t, err, os.ErrNotExist)
		return nil
	}
	return b
}

// TestClaudeLoginToAnotherAccountIsNotHealed: bob is active; the operator
// logs in as dave with the real `claude auth login`. Claude Code renames
// dave's login over the live symlink and writes dave's account into
// .claude.json; `heal --auto` (the journal says bob) must refuse with
// identity_drift, leave bob's slot and the live file as they are, and
// `credslots add dave` files the login into dave's slot.
func TestClaudeLoginToAnotherAccountIsNotHealed(t *testing.T) {
	forEachClaude(t, func(t *testing.T, rel claudeRelease) {
		s := newLoginSetup(t, rel, time.Now().Add(2*time.Hour))
		dir := s.dir
		live := filepath.Join(dir, ".credentials.json")
		bobSlot := filepath.Join(dir, ".credentials.json.bob")
		bobSidecar := bobSlot + ".fingerprint.json"
		bobBefore, sidecarBefore := slotBytes(t, bobSlot), slotBytes(t, bobSidecar)
		require.NotEmpty(t, sidecarBefore, "capture bob wrote no sidecar")
		require.Equal(t, accountUUID("bob"), s.account(t))

		s.login(t)
		s.logTraffic(t)

		// What the real CLI did: dave's login renamed over the live symlink,
		// dave's account in .claude.json, bob's slot not written through the link.
		fi, err := os.Lstat(live)
		require.NoError(t, err)
		require.True(t, fi.Mode().IsRegular(), "claude auth login did not replace the live symlink: %v", fi.Mode())
		require.Equal(t, s.dave.refresh, s.refreshTokenIn(t, ".credentials.json"), "the live file does not hold dave's login")
		require.Equal(t, accountUUID("dave"), s.account(t), ".claude.json does not show dave's account after the login")
		require.Equal(t, string(bobBefore), string(slotBytes(t, bobSlot)), "claude auth login wrote bob's slot")
		liveAfterLogin := slotBytes(t, live)

		// The heal cron's step: refused, nothing moved.
		r := s.credslots(t, "heal", "--auto")
		t.Logf("heal --auto after the login: %s", r)
		assert.Equal(t, 1, r.code, "heal --auto after a login to another account: %s", r)
		assert.Equal(t, "identity_drift", r.doc["error"], "heal --auto after a login to another account: %s", r)
		assert.Contains(t, r.doc["reason"], "credslots add", "the refusal does not name the command that files the login: %s", r)
		assert.Equal(t, string(bobBefore), string(slotBytes(t, bobSlot)), "heal --auto wrote dave's login into bob's slot")
		assert.Equal(t, string(sidecarBefore), string(slotBytes(t, bobSidecar)), "heal --auto changed bob's sidecar")
		fi, err = os.Lstat(live)
		require.NoError(t, err)
		assert.True(t, fi.Mode().IsRegular(), "heal --auto put a symlink back over dave's login: %v", fi.Mode())
		assert.Equal(t, string(liveAfterLogin), string(slotBytes(t, live)), "heal --auto changed the live file")

		// The command the refusal names: dave's login into dave's slot.
		r = s.credslots(t, "add", "dave")
		t.Logf("add dave: %s", r)
		require.Equal(t, 0, r.code, "add dave after the login: %s", r)
		assert.Equal(t, s.dave.refresh, s.refreshTokenIn(t, ".credentials.json.dave"), "dave's slot does not hold his login")
		assert.Equal(t, ".credentials.json.dave", liveTarget(t, dir, ".credentials.json"))
		assert.Equal(t, string(bobBefore), string(slotBytes(t, bobSlot)), "add dave changed bob's slot")
		daveSidecar := readJSON(t, filepath.Join(dir, ".credentials.json.dave.fingerprint.json"))
		assert.Equal(t, accountUUID("dave"), dig(daveSidecar, "oauth_account", "accountUuid"), "dave's sidecar: %v", daveSidecar)
		assert.Equal(t, accountUUID("bob"), dig(readJSON(t, bobSidecar), "oauth_account", "accountUuid"), "bob's sidecar forgot his account")

		// The real CLI now uses dave's slot through the link.
		p := s.start(t, "-p", "say hi")
		require.Equal(t, 0, p.wait(t, 60*time.Second), "claude -p as dave: %s", tail(p.stderr.String()))
		assert.Contains(t, p.stdout.String(), "fake API answered for dave")
	})
}

// TestClaudeRefreshOfSameAccountIsHealed is the control: bob's expired
// token refreshed by the real `claude -p` (the profile, fetched with the
// new token, is still bob's, so .claude.json keeps bob's account id) is
// healed by `heal --auto` into bob's slot, and bob's slot still remembers
// his account.
func TestClaudeRefreshOfSameAccountIsHealed(t *testing.T) {
	forEachClaude(t, func(t *testing.T, rel claudeRelease) {
		s := newLoginSetup(t, rel, time.Now().Add(-time.Hour))
		dir := s.dir
		live := filepath.Join(dir, ".credentials.json")
		bobSidecar := filepath.Join(dir, ".credentials.json.bob.fingerprint.json")
		require.Equal(t, accountUUID("bob"), dig(readJSON(t, bobSidecar), "oauth_account", "accountUuid"), "capture bob did not record his account")

		p := s.start(t, "-p", "say hi")
		rt := s.waitTokenRequest(t, p, 60*time.Second)
		assert.Equal(t, s.bob.refresh, rt)
		require.Equal(t, 0, p.wait(t, 60*time.Second), "claude -p: %s", tail(p.stderr.String()))
		s.logTraffic(t)
		assert.Contains(t, p.stdout.String(), "fake API answered for bob")
		fi, err := os.Lstat(live)
		require.NoError(t, err)
		require.True(t, fi.Mode().IsRegular(), "the refresh did not replace the live symlink: %v", fi.Mode())
		require.Equal(t, s.bob.newRefresh, s.refreshTokenIn(t, ".credentials.json"))
		require.Equal(t, accountUUID("bob"), s.account(t), "the refresh changed .claude.json's account")
		require.Equal(t, "bob", dig(readJSON(t, filepath.Join(dir, ".claude.json")), "oauthAccount", "displayName"), "the refresh did not rewrite oauthAccount from the profile")

		r := s.credslots(t, "heal", "--auto")
		t.Logf("heal --auto after the refresh: %s", r)
		require.Equal(t, 0, r.code, "heal --auto after a refresh of the same account: %s", r)
		assert.Equal(t, s.bob.newRefresh, s.refreshTokenIn(t, ".credentials.json.bob"), "bob's slot does not hold his rotated token")
		assert.Equal(t, ".credentials.json.bob", liveTarget(t, dir, ".credentials.json"))
		assert.Equal(t, accountUUID("bob"), dig(readJSON(t, bobSidecar), "oauth_account", "accountUuid"), "the heal made bob's slot forget his account")
		assertNoIdentityDrift(t, s.credslots(t, "check"))
	})
}

// watchEvents are the JSON lines a running `credslots watch --json` printed.
func watchEvents(t *testing.T, w *proc) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(w.stdout.String(), "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		var ev map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &ev), "watch --json printed a line that is not one JSON object: %q", line)
		out = append(out, ev)
	}
	return out
}

func (s *loginSetup) startWatch(t *testing.T) *proc {
	t.Helper()
	w := startCredslots(t, s.home, "--dir", s.dir, "--subs", "alice,bob", "--json", "watch")
	require.Eventually(t, func() bool { return strings.Contains(w.stderr.String(), "watching") || !w.running() },
		20*time.Second, 20*time.Millisecond)
	require.True(t, w.running(), "watch exited: %s", w.result(exitCode(w.waitErr)))
	return w
}

// TestClaudeLoginUnderWatch: the documented set-up, `credslots watch`
// running, and the operator logs in as dave with the real Claude Code.
// watch must not heal dave's login into bob's slot (the incident of SPEC
// section 21); it reports the new login, naming `credslots add`, and
// leaves it live.
func TestClaudeLoginUnderWatch(t *testing.T) {
	forEachClaude(t, func(t *testing.T, rel claudeRelease) {
		s := newLoginSetup(t, rel, time.Now().Add(2*time.Hour))
		bobSlot := filepath.Join(s.dir, ".credentials.json.bob")
		bobBefore := slotBytes(t, bobSlot)
		w := s.startWatch(t)

		s.login(t)
		// Claude Code's writes settle within ~160 ms (LOGIN-TRACE.md); watch
		// then lets them settle for --login-settle (2s) before it decides:
		// wait for its report, with room to spare.
		assert.Eventually(t, func() bool {
			for _, ev := range watchEvents(t, w) {
				if ev["event"] == "new_login" || ev["event"] == "healed" {
					return true
				}
			}
			return false
		}, 10*time.Second, 50*time.Millisecond, "watch reported nothing after the login")
		time.Sleep(500 * time.Millisecond) // nothing else follows
		require.True(t, w.running(), "watch exited: %s", w.result(exitCode(w.waitErr)))
		events := watchEvents(t, w)
		t.Logf("watch events: %v\nwatch stderr: %s", events, w.stderr.String())

		assert.Equal(t, string(bobBefore), string(slotBytes(t, bobSlot)), "watch healed dave's login into bob's slot")
		fi, err := os.Lstat(filepath.Join(s.dir, ".credentials.json"))
		require.NoError(t, err)
		assert.True(t, fi.Mode().IsRegular(), "watch put a symlink back over dave's login: %v", fi.Mode())
		assert.Equal(t, s.dave.refresh, s.refreshTokenIn(t, ".credentials.json"), "the live file lost dave's login")
		named := 0
		for _, ev := range events {
			assert.NotEqual(t, "healed", ev["event"], "watch healed the login: %v", ev)
			if reason, _ := ev["reason"].(string); strings.Contains(reason, "credslots add") {
				named++
			}
		}
		assert.Equal(t, 1, named, "watch did not report the new login once, naming credslots add: %v", events)
	})
}

// TestClaudeRefreshUnderWatch is its control: with watch running, the real
// Claude Code's refresh of bob (profile still bob's) is healed into bob's
// slot and the symlink is back.
func TestClaudeRefreshUnderWatch(t *testing.T) {
	forEachClaude(t, func(t *testing.T, rel claudeRelease) {
		s := newLoginSetup(t, rel, time.Now().Add(-time.Hour))
		bobSlot := filepath.Join(s.dir, ".credentials.json.bob")
		w := s.startWatch(t)

		p := s.start(t, "-p", "say hi")
		require.Equal(t, 0, p.wait(t, 60*time.Second), "claude -p: %s", tail(p.stderr.String()))
		assert.Contains(t, p.stdout.String(), "fake API answered for bob")
		require.Equal(t, accountUUID("bob"), s.account(t), "the refresh changed .claude.json's account")
		assert.Eventually(t, func() bool {
			return liveTarget(t, s.dir, ".credentials.json") == ".credentials.json.bob" && s.refreshTokenIn(t, ".credentials.json.bob") == s.bob.newRefresh
		}, 10*time.Second, 50*time.Millisecond, "watch did not heal bob's refresh into his slot")
		// The event is printed just after the heal's last step.
		assert.Eventually(t, func() bool {
			for _, ev := range watchEvents(t, w) {
				if ev["event"] == "healed" {
					return true
				}
			}
			return false
		}, 5*time.Second, 20*time.Millisecond, "watch printed no healed event")
		events := watchEvents(t, w)
		t.Logf("watch events: %v", events)
		healed := 0
		for _, ev := range events {
			if ev["event"] == "healed" {
				healed++
				assert.Equal(t, "bob", ev["sub"], "healed into another sub: %v", ev)
			}
		}
		assert.Equal(t, 1, healed, "watch events: %v", events)
		assert.Equal(t, accountUUID("bob"), dig(readJSON(t, bobSlot+".fingerprint.json"), "oauth_account", "accountUuid"), "the heal made bob's slot forget his account")
	})
}
