//go:build interop

package interop

// The real Claude Code (2.1.197) against a switch that carries the live
// file's account-independent state (MCP logins, plugin secrets) into the
// target slot and splices the target's remembered oauthAccount into
// .claude.json (SPEC section 19).

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gptme/credslots"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	mcpHost   = "mcp.example.test"
	mcpURL    = "https://" + mcpHost + "/mcp"
	mcpName   = "fakemcp"
	pluginKey = "fakeplugin@fake-marketplace"
)

// mcpOAuthKey is the key Claude Code files an MCP server's login under in
// .credentials.json: "<name>|<first 16 hex of sha256(JSON of {type, url,
// headers})>" (function Lv in the 2.1.197 bundle).
func mcpOAuthKey(name, typ, url string) string {
	cfg, _ := json.Marshal(struct {
		Type    string            `json:"type"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
	}{typ, url, map[string]string{}})
	sum := sha256.Sum256(cfg)
	return name + "|" + hex.EncodeToString(sum[:])[:16]
}

// mcpState is one generation of the account-independent keys: an MCP login
// for the fake MCP server and a plugin secret, both tagged with gen.
type mcpState struct{ gen string }

func (g mcpState) access() string  { return "fake-mcp-access-" + g.gen }
func (g mcpState) refresh() string { return "fake-mcp-refresh-" + g.gen }
func (g mcpState) secret() string  { return "fake-plugin-secret-" + g.gen }

func (g mcpState) members() map[string]any {
	return map[string]any{
		"mcpOAuth": map[string]any{mcpOAuthKey(mcpName, "http", mcpURL): map[string]any{
			"serverName":   mcpName,
			"serverUrl":    mcpURL,
			"accessToken":  g.access(),
			"refreshToken": g.refresh(),
			"expiresAt":    time.Now().Add(3 * time.Hour).UnixMilli(),
			"scope":        "",
		}},
		"pluginSecrets": map[string]any{pluginKey: map[string]any{"API_KEY": g.secret()}},
	}
}

// credWithState is claudeCred plus the state members, indented the way
// Claude Code writes its file.
func credWithState(access, refresh string, expires time.Time, g mcpState) []byte {
	var doc map[string]any
	_ = json.Unmarshal(claudeCred(access, refresh, expires), &doc)
	for k, v := range g.members() {
		doc[k] = v
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return b
}

// rawMembers reads a JSON object file into its members' raw bytes.
func rawMembers(t *testing.T, path string) map[string]json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err, "read %s", path)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(data, &m), "parse %s", path)
	return m
}

// stateGen reports which generation of MCP login and plugin secret a
// credential file holds ("" for a member that is missing or foreign).
func stateGen(t *testing.T, path string) (mcp, plugin string) {
	t.Helper()
	doc := readJSON(t, path)
	tok, _ := dig(doc, "mcpOAuth", mcpOAuthKey(mcpName, "http", mcpURL), "accessToken").(string)
	sec, _ := dig(doc, "pluginSecrets", pluginKey, "API_KEY").(string)
	return strings.TrimPrefix(tok, "fake-mcp-access-"), strings.TrimPrefix(sec, "fake-plugin-secret-")
}

// mcpFake is a minimal streamable-HTTP MCP server that takes only the
// access tokens of known generations and records which one it saw.
type mcpFake struct {
	mu      sync.Mutex
	bearers []string // "Bearer" of each request, "" when none
}

func (f *mcpFake) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.bearers...)
}

func (f *mcpFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	bearer := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	f.bearers = append(f.bearers, bearer)
	f.mu.Unlock()
	if r.URL.Path != "/mcp" {
		http.NotFound(w, r)
		return
	}
	if !strings.HasPrefix(bearer, "fake-mcp-access-") {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_token"})
		return
	}
	switch r.Method {
	case http.MethodPost:
	case http.MethodDelete:
		w.WriteHeader(http.StatusOK)
		return
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	var req struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			ProtocolVersion string `json:"protocolVersion"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &req) != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "not a single JSON-RPC message"})
		return
	}
	if len(req.ID) == 0 {
		w.WriteHeader(http.StatusAccepted) // a notification
		return
	}
	reply := map[string]any{"jsonrpc": "2.0", "id": req.ID}
	switch req.Method {
	case "initialize":
		pv := req.Params.ProtocolVersion
		if pv == "" {
			pv = "2025-06-18"
		}
		reply["result"] = map[string]any{
			"protocolVersion": pv,
			"capabilities":    map[string]any{"tools": map[string]any{}},
			"serverInfo":      map[string]any{"name": "credslots-fake-mcp", "version": "0.0.1"},
		}
	case "tools/list":
		reply["result"] = map[string]any{"tools": []any{}}
	case "ping":
		reply["result"] = map[string]any{}
	default:
		reply["error"] = map[string]any{"code": -32601, "message": "method not found"}
	}
	w.Header().Set("Mcp-Session-Id", "fake-session")
	writeJSON(w, http.StatusOK, reply)
}

// TestClaudeSwitchCarriesStateAndAccount: with both accounts remembered
// (oauthAccount captured from .claude.json while each was active), a switch
// to bob carries alice's newer MCP login and plugin secret into bob's slot,
// keeps bob's claudeAiOauth byte for byte, and splices bob's oauthAccount
// into .claude.json, so that `claude auth status` reports bob before any
// profile fetch (without the splice it reports alice until the next API
// use; see TestClaudeUsesSwitchedAccount). The next `claude -p` calls the
// API as bob, sends the carried MCP login to the MCP server, and leaves the
// MCP entries in place.
func TestClaudeSwitchCarriesStateAndAccount(t *testing.T) {
	forEachClaude(t, func(t *testing.T, rel claudeRelease) {
		s := newClaudeSetup(t, rel)
		s.fake.open()
		mcp := &mcpFake{}
		profiles := func() int {
			n := 0
			for _, r := range s.fake.seen() {
				if r.Path == "/api/oauth/profile" {
					n++
				}
			}
			return n
		}
		// Claude Code fetches the profile (and rewrites oauthAccount) in the
		// background at start-up, and `claude -p` may exit before that is done:
		// the API answers only once the run's profile fetch was answered (5 s
		// at most), so that .claude.json shows the account when claude exits.
		var profilesAtStart atomic.Int64
		// A proxy in front of both fakes: Anthropic's hosts and the MCP server.
		s.proxy = newTLSProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if host, _, _ := strings.Cut(r.Host, ":"); host == mcpHost {
				mcp.ServeHTTP(w, r)
				return
			}
			if strings.HasPrefix(r.URL.Path, "/v1/messages") {
				for deadline := time.Now().Add(5 * time.Second); int64(profiles()) <= profilesAtStart.Load() && time.Now().Before(deadline); {
					time.Sleep(20 * time.Millisecond)
				}
				time.Sleep(100 * time.Millisecond) // Claude Code writes .claude.json
			}
			s.fake.ServeHTTP(w, r)
		}))
		dir := s.dir
		live := filepath.Join(dir, ".credentials.json")
		aliceSlot := filepath.Join(dir, ".credentials.json.alice")
		bobSlot := filepath.Join(dir, ".credentials.json.bob")
		claudeJSON := filepath.Join(dir, ".claude.json")

		// 1. Fresh tokens; alice's slot (the live file) holds MCP state v1, bob's
		// an older v0. The fake MCP server is a user-scope server.
		v0, v1, v2 := mcpState{"v0"}, mcpState{"v1"}, mcpState{"v2"}
		writeFile0600(t, aliceSlot, credWithState(s.alice.access, s.alice.refresh, time.Now().Add(2*time.Hour), v1))
		writeFile0600(t, bobSlot, credWithState(s.bob.access, s.bob.refresh, time.Now().Add(2*time.Hour), v0))
		bobAuth := rawMembers(t, bobSlot)["claudeAiOauth"]
		require.NotEmpty(t, bobAuth)
		state := readJSON(t, claudeJSON)
		state["mcpServers"] = map[string]any{mcpName: map[string]any{"type": "http", "url": mcpURL}}
		b, _ := json.MarshalIndent(state, "", "  ")
		writeFile0600(t, claudeJSON, b)
		require.Equal(t, ".credentials.json.alice", liveTarget(t, dir, ".credentials.json"))

		email := func() any { return dig(readJSON(t, claudeJSON), "oauthAccount", "emailAddress") }
		runClaude := func(who string) {
			t.Helper()
			before := len(s.fake.apiAccounts())
			profilesAtStart.Store(int64(profiles()))
			p := s.start(t, "-p", "say hi")
			code := p.wait(t, 60*time.Second)
			require.Equal(t, 0, code, "claude -p as %s: %s", who, tail(p.stderr.String()))
			assert.Contains(t, p.stdout.String(), "fake API answered for "+who)
			assert.Equal(t, []string{who + "/access-orig"}, s.fake.apiAccounts()[before:])
		}
		capture := func(who string) {
			t.Helper()
			r := s.credslots(t, "capture", who)
			require.Equal(t, 0, r.code, "capture %s: %s", who, r)
		}
		switchTo := func(who string) {
			t.Helper()
			r := s.credslots(t, "switch", who)
			require.Equal(t, 0, r.code, "switch %s: %s", who, r)
			require.Equal(t, ".credentials.json."+who, liveTarget(t, dir, ".credentials.json"))
		}
		authStatus := func() map[string]any {
			t.Helper()
			st := s.start(t, "auth", "status", "--json")
			code := st.wait(t, 30*time.Second)
			require.Equal(t, 0, code, "claude auth status: %s", st.stderr.String())
			var doc map[string]any
			require.NoError(t, json.Unmarshal([]byte(st.stdout.String()), &doc), "claude auth status --json: %s", st.stdout.String())
			return doc
		}

		// 2. Each account's oauthAccount, as the real Claude Code writes it from
		// the profile endpoint, captured while that account is active.
		runClaude("alice")
		require.Equal(t, "alice@example.test", email())
		capture("alice")
		switchTo("bob")
		mcpGen, pluginGen := stateGen(t, bobSlot)
		assert.Equal(t, "v1", mcpGen, "the first switch did not carry alice's MCP login into bob's slot")
		assert.Equal(t, "v1", pluginGen, "the first switch did not carry alice's plugin secret into bob's slot")
		runClaude("bob")
		require.Equal(t, "bob@example.test", email())
		capture("bob")
		switchTo("alice")
		for _, who := range []string{"alice", "bob"} {
			sc := readJSON(t, filepath.Join(dir, ".credentials.json."+who+".fingerprint.json"))
			assert.Equal(t, who+"@example.test", dig(sc, "oauth_account", "emailAddress"), "%s's sidecar: %v", who, sc)
			assert.Equal(t, who, dig(sc, "oauth_account", "displayName"), "%s's sidecar holds the profile Claude Code fetched: %v", who, sc)
		}
		require.Equal(t, "alice@example.test", email(), "switch back to alice did not splice her account")
		// While alice is active her MCP login and plugin secret move on to v2
		// (written through the live symlink); bob's slot keeps the older v1.
		aliceDoc := readJSON(t, aliceSlot)
		for k, v := range v2.members() {
			aliceDoc[k] = v
		}
		b, _ = json.MarshalIndent(aliceDoc, "", "  ")
		require.NoError(t, os.WriteFile(live, b, 0o600))
		mcpGen, _ = stateGen(t, bobSlot)
		require.Equal(t, "v1", mcpGen)
		assert.Equal(t, "alice@example.test", authStatus()["email"], "before the switch")

		// 3. The switch; then, with no profile fetch, Claude Code reports bob.
		switchTo("bob")
		before := profiles()
		status := authStatus()
		t.Logf("claude auth status after the switch: %v", status)
		assert.Equal(t, "bob@example.test", status["email"], "claude auth status right after the switch (the splice)")
		assert.Equal(t, "00000000-0000-4000-9000-"+pad12("bob"), status["orgId"])
		assert.Equal(t, before, profiles(), "claude auth status fetched the profile")
		assert.Equal(t, "bob@example.test", email())
		after := readJSON(t, claudeJSON)
		assert.NotNil(t, dig(after, "mcpServers", mcpName), "the splice lost mcpServers")
		assert.Equal(t, true, dig(after, "projects", s.work, "hasTrustDialogAccepted"), "the splice lost projects")

		got := rawMembers(t, live)
		assert.Equal(t, string(bobAuth), string(got["claudeAiOauth"]), "bob's claudeAiOauth changed")
		mcpGen, pluginGen = stateGen(t, live)
		assert.Equal(t, "v2", mcpGen, "live file after the switch: MCP login")
		assert.Equal(t, "v2", pluginGen, "live file after the switch: plugin secret")
		mcpGen, pluginGen = stateGen(t, aliceSlot)
		assert.Equal(t, "v2", mcpGen, "alice's slot")
		assert.Equal(t, "v2", pluginGen, "alice's slot")
		assertNoIdentityDrift(t, s.credslots(t, "check"))

		// 4. Claude Code uses bob's login and the carried MCP login, and keeps
		// the MCP entries.
		mcpBefore := len(mcp.seen())
		runClaude("bob")
		s.logTraffic(t)
		mcpSaw := mcp.seen()[mcpBefore:]
		t.Logf("MCP server saw bearers: %v", mcpSaw)
		assert.Contains(t, mcpSaw, v2.access(), "claude -p did not send the carried MCP login to the MCP server")
		assert.NotContains(t, mcpSaw, v1.access(), "claude -p sent bob's stale MCP login")
		assert.Equal(t, ".credentials.json.bob", liveTarget(t, dir, ".credentials.json"), "claude replaced the symlink")
		got = rawMembers(t, live)
		assert.Equal(t, string(bobAuth), string(got["claudeAiOauth"]), "bob's claudeAiOauth after claude -p")
		mcpGen, pluginGen = stateGen(t, live)
		assert.Equal(t, "v2", mcpGen, "live file after claude -p: MCP login")
		assert.Equal(t, "v2", pluginGen, "live file after claude -p: plugin secret")

		ls := s.start(t, "mcp", "list")
		code := ls.wait(t, 30*time.Second)
		t.Logf("claude mcp list: exit %d\n%s%s", code, ls.stdout.String(), ls.stderr.String())
		assert.Equal(t, 0, code)
		assert.Contains(t, ls.stdout.String(), mcpName+": "+mcpURL)
		assert.Contains(t, ls.stdout.String(), "Connected", "claude mcp list did not connect with the carried MCP login")

		// Control: a switch without carrying (hence without the splice) leaves
		// .claude.json on bob, and Claude Code reports the wrong account.
		m := newClaudeManager(t, dir, credslots.WithCarryState(false))
		_, err := m.SwitchTo("alice", "control")
		require.NoError(t, err)
		assert.Equal(t, "bob@example.test", authStatus()["email"], "control: without the splice Claude Code still reports bob after switching to alice")
	})
}
