package credfile

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const claudeDoc = `{"claudeAiOauth":{"accessToken":"at","refreshToken":"rt-bob","expiresAt":1767225600000,"scopes":["user:inference"]}}`

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// Each field is computed only when wanted, and the same whatever else is.
func TestParseComputesWhatIsWanted(t *testing.T) {
	exp := time.UnixMilli(1767225600000).UTC()
	for _, tc := range []struct {
		want Want
		c    Credential
	}{
		{All, Credential{Expiry: exp, ExpiryOK: true, Fingerprint: sum("rt-bob"), Login: sum("rt-bob")}},
		{Expiry, Credential{Expiry: exp, ExpiryOK: true}},
		{Identity, Credential{Fingerprint: sum("rt-bob")}},
		{Login, Credential{Login: sum("rt-bob")}},
		{Blank, Credential{}},
	} {
		assert.Equal(t, tc.c, Parse(Claude, []byte(claudeDoc), tc.want), "want %b", tc.want)
	}
	blank := []byte(`{"claudeAiOauth":{"accessToken":"","refreshToken":"rt","expiresAt":1}}`)
	assert.Equal(t, "claudeAiOauth.accessToken", Parse(Claude, blank, Blank).Blank)
	assert.Empty(t, Parse(Claude, blank, Expiry|Identity).Blank)
	bad := Parse(Claude, []byte(`{"claudeAiOauth":`), Identity)
	assert.Equal(t, "unreadable or malformed JSON: unexpected end of JSON input", bad.Problem, "a document that is not JSON says so whatever was wanted")
	assert.False(t, bad.ExpiryOK)
}

func TestFormats(t *testing.T) {
	gem := Parse(Gemini, []byte(`{"access_token":"a","refresh_token":"rt","expiry_date":1767225600000}`), All)
	assert.True(t, gem.ExpiryOK)
	assert.Equal(t, sum("rt"), gem.Fingerprint)
	assert.Equal(t, sum("rt"), gem.Login, "Gemini's identity is its refresh token")
	assert.Empty(t, Parse(Gemini, []byte(`{"refresh_token":"rt"}`), Identity).Login)
	// {"exp":1767225600}
	codex := Parse(Codex, []byte(`{"tokens":{"access_token":"eyJhbGciOiJub25lIn0.eyJleHAiOjE3NjcyMjU2MDB9.x","account_id":"acct"}}`), All)
	assert.True(t, codex.ExpiryOK)
	assert.Equal(t, time.Unix(1767225600, 0).UTC(), codex.Expiry)
	assert.Equal(t, sum("acct"), codex.Fingerprint)
	assert.Empty(t, codex.Login, "no refresh token")
	withRefresh := []byte(`{"tokens":{"access_token":"a","account_id":"acct","refresh_token":"rt-codex"}}`)
	assert.Equal(t, sum("rt-codex"), Parse(Codex, withRefresh, Login).Login, "Codex's login is its refresh token, not the account")
	assert.Empty(t, Parse(Codex, withRefresh, Identity).Login)
	assert.Empty(t, Parse(Codex, withRefresh, Login).Fingerprint)
	assert.Equal(t, "missing tokens payload", Parse(Codex, []byte(`{}`), Expiry).Problem)
	assert.Equal(t, "missing expiry_date", Parse(Gemini, []byte(`{"expiry_date":"soon"}`), Expiry).Problem)
}

// A token hashed where it lies and one decoded from escapes hash alike;
// invalid UTF-8 is hashed as encoding/json decodes it.
func TestFingerprint(t *testing.T) {
	assert.Equal(t, sum("rt-é"), Fingerprint([]byte(`"rt-é"`)))
	assert.Equal(t, sum("rt-é"), Fingerprint([]byte(`"rt-\u00e9"`)))
	assert.Equal(t, sum("rt-\uFFFD"), Fingerprint([]byte("\"rt-\xff\"")))
	for _, raw := range []string{`""`, `null`, `12`, `{}`, ``} {
		assert.Empty(t, Fingerprint([]byte(raw)), raw)
	}
}

func TestSidecar(t *testing.T) {
	fp, acct := Sidecar([]byte(`{"captured_at":"2026-01-01T00:00:00Z","refresh_token_sha256":"ab","slot":"bob","oauth_account":{"accountUuid":"u"}}`))
	assert.Equal(t, "ab", fp)
	assert.Equal(t, `{"accountUuid":"u"}`, string(acct))
	fp, acct = Sidecar([]byte(`{"refresh_token_sha256":7,"oauth_account":"x"}`))
	assert.Empty(t, fp)
	assert.Nil(t, acct)
	fp, acct = Sidecar([]byte(`{"refresh_token_sha256":"ab"`))
	assert.Empty(t, fp, "malformed")
	assert.Nil(t, acct)
}

func TestParseAllocations(t *testing.T) {
	doc := []byte(claudeDoc)
	assert.Zero(t, testing.AllocsPerRun(20, func() { Parse(Claude, doc, Expiry) }), "the expiry alone: nothing")
	assert.LessOrEqual(t, testing.AllocsPerRun(20, func() { Parse(Claude, doc, Identity) }), 1.0, "the identity: its hex string")
}

// BenchmarkParse: a Claude Code credential of the usual size, read for
// what each check needs.
func BenchmarkParse(b *testing.B) {
	doc := []byte(`{"claudeAiOauth":{"accessToken":"sk-ant-oat01-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrst-AAAAAAAA","refreshToken":"sk-ant-ort01-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrst-AAAAAAAA","expiresAt":1767225600000,"scopes":["user:inference","user:profile","user:sessions:claude_code"],"subscriptionType":"max","rateLimitTier":"default_claude_max_20x"}}`)
	for _, w := range []struct {
		name string
		want Want
	}{{"expiry", Expiry}, {"identity", Identity}, {"all", All}} {
		b.Run(w.name, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				Parse(Claude, doc, w.want)
			}
		})
	}
}

func TestShape(t *testing.T) {
	for _, tc := range []struct {
		format, doc string
		ok          bool
		why         string
	}{
		{"claude", `{"claudeAiOauth":{}}`, true, ""},
		{"claude", `{"claudeAiOauth":"x"}`, false, "no claudeAiOauth object"},
		{"claude", `[1]`, false, "not a JSON object"},
		{"claude", `{"claudeAiOauth":`, false, "not a JSON document"},
		{"gemini", `{"refresh_token":"r"}`, true, ""},
		{"gemini", `{"theme":"dark"}`, false, "no access_token or refresh_token"},
		{"codex", `{"OPENAI_API_KEY":"k"}`, true, ""},
		{"codex", `{"tokens":null}`, false, "no tokens object"},
		{"other", `{}`, true, ""},
	} {
		ok, why := Shape(tc.format, []byte(tc.doc))
		assert.Equal(t, tc.ok, ok, "%s %s", tc.format, tc.doc)
		assert.Equal(t, tc.why, why, "%s %s", tc.format, tc.doc)
	}
}

func TestCarryState(t *testing.T) {
	slot := []byte(`{"claudeAiOauth":{"refreshToken":"slot"},"mcpOAuth":{"old":1},"onlySlot":true}`)
	live := []byte(`{"claudeAiOauth":{"refreshToken":"live"},"mcpOAuth":{"new":2},"onlyLive":"x"}`)
	out, ok := CarryState(slot, live, "claudeAiOauth")
	assert.True(t, ok)
	assert.Equal(t, `{"claudeAiOauth":{"refreshToken":"slot"},"mcpOAuth":{"new":2},"onlyLive":"x","onlySlot":true}`, string(out),
		"the slot's account stays; the rest follows live; the slot's own keys are kept")
	_, ok = CarryState(slot, slot, "claudeAiOauth")
	assert.False(t, ok, "nothing would change")
	_, ok = CarryState(slot, []byte(`{"claudeAiOauth":`), "claudeAiOauth")
	assert.False(t, ok, "live is not JSON")
	_, ok = CarryState([]byte(`[1]`), live, "claudeAiOauth")
	assert.False(t, ok, "the slot is no object")
}

// internCollision returns n distinct tokens whose fingerprints interned
// keeps at the same place, so that each replaces the one before, and the
// fingerprints.
func internCollision(t *testing.T, n int) (tokens, fps []string) {
	t.Helper()
	var at uint64
	for i := 0; len(fps) < n && i < 1<<16; i++ {
		token := fmt.Sprintf("rt-%d", i)
		fp := sum(token)
		if len(fps) == 0 {
			at = internSlot([]byte(fp))
		}
		if internSlot([]byte(fp)) == at {
			tokens, fps = append(tokens, token), append(fps, fp)
		}
	}
	require.Len(t, fps, n)
	return tokens, fps
}

func TestInternedFingerprintsStayRight(t *testing.T) {
	tokens, fps := internCollision(t, 3)
	// Each hash and each sidecar read replaces the entry the one before
	// filled: every answer is still its own fingerprint.
	for round := 0; round < 3; round++ {
		for i, fp := range fps {
			assert.Equal(t, fp, Hash([]byte(tokens[i])), "hash %d", i)
			got, _ := Sidecar([]byte(`{"refresh_token_sha256":"` + fp + `"}`))
			assert.Equal(t, fp, got, "sidecar %d", i)
		}
	}
	// A fingerprint of the same length spelled with an escape is decoded,
	// not interned as written.
	escaped := `\u0061` + strings.Repeat("b", hexLen-6)
	got, _ := Sidecar([]byte(`{"refresh_token_sha256":"` + escaped + `"}`))
	assert.Equal(t, "a"+strings.Repeat("b", hexLen-6), got)
	// Invalid UTF-8 of that length becomes U+FFFD, as encoding/json reads it.
	invalid := "\xff" + strings.Repeat("c", hexLen-1)
	got, _ = Sidecar([]byte(`{"refresh_token_sha256":"` + invalid + `"}`))
	assert.Equal(t, "\uFFFD"+strings.Repeat("c", hexLen-1), got)
}

func TestInternedFingerprintsConcurrently(t *testing.T) {
	tokens, fps := internCollision(t, 4)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				k := (g + i) % len(fps)
				got, _ := Sidecar([]byte(`{"refresh_token_sha256":"` + fps[k] + `"}`))
				if got != fps[k] || Hash([]byte(tokens[k])) != fps[k] {
					t.Errorf("fingerprint %d: got %s, want %s", k, got, fps[k])
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestUnchangedFingerprintAllocatesNothing(t *testing.T) {
	doc := []byte(claudeDoc)
	Parse(Claude, doc, Identity)
	assert.Zero(t, testing.AllocsPerRun(20, func() { Parse(Claude, doc, Identity) }), "the identity's hex string is the one interned")
	side := []byte(`{"captured_at":"2026-01-01T00:00:00Z","refresh_token_sha256":"` + sum("x") + `","slot":"bob"}`)
	Sidecar(side)
	assert.Zero(t, testing.AllocsPerRun(20, func() { Sidecar(side) }), "the stored fingerprint is the one interned")
}

func TestAccountIn(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`{"oauthAccount":{"emailAddress":"a@example.test"},"projects":{}}`, `{"emailAddress":"a@example.test"}`},
		{`{"projects":{}}`, ""},
		{`{"oauthAccount":null}`, ""},
		{`{"oauthAccount":"a@example.test"}`, ""},
		{`{"oauthAccount":{}`, ""}, // not JSON
		{`[]`, ""},
	} {
		assert.Equal(t, tc.want, string(AccountIn([]byte(tc.doc))), "%s", tc.doc)
	}
}
