package credslots

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testJWT builds an unsigned JWT whose payload is claims.
func testJWT(claims string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString([]byte(claims)) + ".c2ln"
}

// geminiDoc builds a Gemini CLI credential whose identity is its refresh token.
func geminiDoc(expiry time.Time, refreshToken string) []byte {
	return []byte(fmt.Sprintf(`{"access_token":"ya29.%s","refresh_token":%q,"token_type":"Bearer","expiry_date":%d}`,
		refreshToken, refreshToken, expiry.UnixMilli()))
}

// codexDoc builds a Codex CLI credential for an account; its refresh token
// is "rt-<account>".
func codexDoc(expiry time.Time, account string) []byte {
	return []byte(fmt.Sprintf(`{"OPENAI_API_KEY":null,"tokens":{"id_token":"x","access_token":%q,"refresh_token":"rt-%s","account_id":%q},"last_refresh":"2026-01-01T00:00:00Z"}`,
		testJWT(fmt.Sprintf(`{"exp":%d,"sub":"u"}`, expiry.Unix())), account, account))
}

// formatCase describes one credential format for the shared flow tests.
type formatCase struct {
	format Format
	// doc builds a credential with an expiry and an identity key.
	doc func(expiry time.Time, identity string) []byte
	// field is how reasons name the expiry.
	field string
	// malformed maps a live document to the heal reason it must produce.
	malformed map[string]string
	// blank is a fresh document blanked by a failed refresh, and its reason.
	blank, blankReason string
}

func formatCases() []formatCase {
	return []formatCase{
		{
			format: ClaudeCode,
			doc:    claudeDoc,
			field:  "expiresAt",
			malformed: map[string]string{
				`{"other":1}`:                            "live file missing claudeAiOauth payload",
				`{"claudeAiOauth":{"expiresAt":"soon"}}`: "live file missing expiresAt",
				`{"claudeAiOauth":{"expiresAt":9e99}}`:   "live file expiresAt unparseable",
				`{"claudeAiOauth":`:                      "live file unreadable or malformed JSON: unexpected end of JSON input",
			},
			blank:       `{"claudeAiOauth":{"accessToken":"","refreshToken":"r","expiresAt":1767290400000}}`,
			blankReason: "claudeAiOauth.accessToken",
		},
		{
			format: GeminiCLI,
			doc:    geminiDoc,
			field:  "expiry_date",
			malformed: map[string]string{
				`{"access_token":"a"}`:                    "live file missing expiry_date",
				`{"expiry_date":null}`:                    "live file missing expiry_date",
				`{"expiry_date":-1e20}`:                   "live file expiry_date unparseable",
				`[1]`:                                     "live file missing expiry_date",
				`{"expiry_date":1767290400000,}`:          "live file unreadable or malformed JSON: syntax error at offset 30",
				`{"expiry_date":"1767290400000","a":"b"}`: "live file missing expiry_date",
			},
			blank:       `{"access_token":"","refresh_token":"r","expiry_date":1767290400000}`,
			blankReason: "access_token",
		},
		{
			format: CodexCLI,
			doc:    codexDoc,
			field:  "tokens.access_token exp",
			malformed: map[string]string{
				`{"tokens":"x"}`:                                                 "live file missing tokens payload",
				`{"tokens":{"access_token":""}}`:                                 "live file missing tokens.access_token",
				`{"tokens":{"access_token":"opaque"}}`:                           "live file tokens.access_token exp unparseable",
				`{"tokens":{"access_token":"a.%%%.c"}}`:                          "live file tokens.access_token exp unparseable",
				`{"tokens":{"access_token":"` + testJWT(`{"iat":1}`) + `"}}`:     "live file missing tokens.access_token exp",
				`{"tokens":{"access_token":"` + testJWT(`{"exp":"1"}`) + `"}}`:   "live file missing tokens.access_token exp",
				`{"tokens":{"access_token":"` + testJWT(`{"exp":1e300}`) + `"}}`: "live file tokens.access_token exp unparseable",
				`{"tokens":{"access_token":"` + testJWT(`not json`) + `"}}`:      "live file tokens.access_token exp unparseable",
			},
			blank:       "",
			blankReason: "",
		},
	}
}

func TestFormatDefaults(t *testing.T) {
	tests := []struct {
		f                    Format
		name, dir, live, tpl string
	}{
		{ClaudeCode, "claude", ".claude", ".credentials.json", ".credentials.json.{sub}"},
		{GeminiCLI, "gemini", ".gemini", "oauth_creds.json", "oauth_creds.json.{sub}"},
		{CodexCLI, "codex", ".codex", "auth.json", "auth.json.{sub}"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.name, tt.f.Name())
		assert.Equal(t, tt.dir, tt.f.(*jsonFormat).cliDir(noEnv, noHome), "no variable, no home")
		assert.Equal(t, tt.live, tt.f.DefaultLiveName())
		assert.Equal(t, tt.tpl, tt.f.DefaultSlotTemplate())

		dir := t.TempDir()
		m, err := New(WithCredsDir(dir), WithSubscriptions("bob"), WithFormat(tt.f))
		require.NoError(t, err)
		assert.Equal(t, filepath.Join(dir, tt.live), m.LivePath())
		assert.Equal(t, filepath.Join(dir, tt.live+".bob"), m.SlotPath("bob"))
		assert.Equal(t, filepath.Join(dir, tt.live+".bob.fingerprint.json"), m.FingerprintPath("bob"))

		m, err = New(WithCredsDir(dir), WithSubscriptions("bob"), WithFormat(tt.f), WithLiveName("live"), WithSlotTemplate("s/{sub}"))
		require.NoError(t, err)
		assert.Equal(t, filepath.Join(dir, "live"), m.LivePath(), "explicit names win over the format's")
		assert.Equal(t, filepath.Join(dir, "s", "bob"), m.SlotPath("bob"))
	}
	assert.Equal(t, []Format{ClaudeCode, GeminiCLI, CodexCLI}, Formats())
}

// TestFlowAcrossFormats runs switch, drift, heal and identity for each format.
func TestFlowAcrossFormats(t *testing.T) {
	for _, fc := range formatCases() {
		t.Run(fc.format.Name(), func(t *testing.T) {
			f := newFixture(t, WithFormat(fc.format))
			name := filepath.Base(f.slot("bob"))
			writeFile(t, f.slot("bob"), fc.doc(fresh, "id-bob"))
			writeFile(t, f.slot("alice"), fc.doc(stale, "id-alice"))

			exp, ok := f.m.SlotExpiry("bob")
			require.True(t, ok)
			assert.True(t, exp.Equal(fresh.Truncate(time.Second)), "expiry %s", exp)
			okFresh, why := f.m.SlotIsFresh("bob")
			assert.True(t, okFresh, why)

			// Switch into a fresh slot; an expired one is refused even when forced.
			res, err := f.m.SwitchTo("bob", "start")
			require.NoError(t, err)
			assert.Equal(t, name, f.readlink(t))
			fp, ok := f.m.ReadStoredFingerprint("bob")
			require.True(t, ok)
			assert.Equal(t, hashBytes([]byte("id-bob")), fp, "identity key of %s", fc.format.Name())
			_, err = f.m.SwitchTo("alice", "r", Force())
			require.ErrorIs(t, err, ErrNotFresh)

			// A refresh replaces the symlink: drift, refusal, heal.
			refreshed := fc.doc(fresh.Add(time.Hour), "id-bob")
			f.refresh(t, refreshed)
			info, err := f.m.DetectLiveSlotDrift()
			require.NoError(t, err)
			assert.True(t, info.Drift)
			_, err = f.m.SwitchTo("bob", "r")
			require.ErrorIs(t, err, ErrLiveDrifted)
			res, err = f.m.HealDriftTo("bob")
			require.NoError(t, err)
			assert.Equal(t, "healed: synced live → "+name+", symlink restored", res.Reason)
			slot, err := os.ReadFile(f.slot("bob"))
			require.NoError(t, err)
			assert.Equal(t, refreshed, slot)

			// A login written through the symlink: identity drift.
			writeFile(t, f.slot("bob"), fc.doc(fresh, "id-someone-else"))
			id, err := f.m.DetectSlotIdentityDrift("bob")
			require.NoError(t, err)
			assert.True(t, id.Drift)
			_, err = f.m.SwitchTo("erik", "r")
			require.ErrorIs(t, err, ErrSlotMissing)
			_, err = f.m.SwitchTo("bob", "r")
			require.ErrorIs(t, err, ErrIdentityDrift)

			st, err := f.m.Status()
			require.NoError(t, err)
			assert.Equal(t, fc.format.Name(), st.Format)
			assert.True(t, containsSubstring(st.Problems, "slot bob: identity drift"))
		})
	}
}

func TestFreshnessReasonsNameTheFormatsField(t *testing.T) {
	for _, fc := range formatCases() {
		t.Run(fc.format.Name(), func(t *testing.T) {
			f := newFixture(t, WithFormat(fc.format))
			writeFile(t, f.slot("bob"), []byte(`{}`))
			ok, why := f.m.SlotIsFresh("bob")
			assert.False(t, ok)
			assert.Equal(t, fmt.Sprintf("unreadable or no %s in %s", fc.field, filepath.Base(f.slot("bob"))), why)
			_, err := f.m.SwitchTo("bob", "r")
			require.ErrorIs(t, err, ErrNotFresh)
			assert.Contains(t, err.Error(), fc.field)
		})
	}
}

func TestHealReasonsAcrossFormats(t *testing.T) {
	for _, fc := range formatCases() {
		t.Run(fc.format.Name(), func(t *testing.T) {
			for doc, want := range fc.malformed {
				f := newFixture(t, WithFormat(fc.format))
				writeFile(t, f.slot("bob"), fc.doc(fresh, "id-bob"))
				writeFile(t, f.m.LivePath(), []byte(doc))
				res, err := f.m.HealDriftTo("bob")
				require.ErrorIs(t, err, ErrUnhealable, doc)
				assert.Equal(t, want, res.Reason, doc)
			}
			f := newFixture(t, WithFormat(fc.format))
			writeFile(t, f.slot("bob"), fc.doc(fresh, "id-bob"))
			writeFile(t, f.m.LivePath(), fc.doc(stale, "id-bob-2"))
			_, err := f.m.HealDriftTo("bob")
			require.ErrorIs(t, err, ErrNotFresh)

			if fc.blank != "" {
				writeFile(t, f.m.LivePath(), []byte(fc.blank))
				res, err := f.m.HealDriftTo("bob")
				require.ErrorIs(t, err, ErrUnhealable)
				assert.Contains(t, res.Reason, "live credential is blank: "+fc.blankReason+" is empty")
			}
		})
	}
}

// TestTestdataFixtures reads the static samples of each format.
func TestTestdataFixtures(t *testing.T) {
	tests := []struct {
		format   Format
		file     string
		expiry   string
		identity string
		blank    string
	}{
		{ClaudeCode, "claude/bob.json", "2026-01-01T20:00:00Z", "demo-refresh-bob-1", ""},
		{ClaudeCode, "claude/alice.json", "2026-01-01T10:30:00Z", "demo-refresh-alice", ""},
		{ClaudeCode, "claude/blank.json", "2026-01-02T06:00:00Z", "", "claudeAiOauth.accessToken"},
		{GeminiCLI, "gemini/bob.json", "2026-01-01T20:00:00Z", "demo-gemini-refresh-bob", ""},
		{GeminiCLI, "gemini/alice.json", "2026-01-01T10:30:00Z", "demo-gemini-refresh-alice", ""},
		{GeminiCLI, "gemini/blank.json", "2026-01-01T20:00:00Z", "demo-gemini-refresh-bob", "access_token"},
		{CodexCLI, "codex/bob.json", "2026-01-01T20:00:00Z", "demo-account-bob", ""},
		{CodexCLI, "codex/alice.json", "2026-01-01T10:30:00Z", "demo-account-alice", ""},
		{CodexCLI, "codex/blank.json", "", "demo-account-bob", "tokens.access_token"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			require.NoError(t, err)
			require.True(t, json.Valid(data))
			c := tt.format.parse(data)
			if tt.expiry == "" {
				assert.False(t, c.hasExpiry())
			} else {
				require.True(t, c.hasExpiry(), c.problem)
				assert.Equal(t, tt.expiry, formatTime(c.expiry))
			}
			want := ""
			if tt.identity != "" {
				want = hashBytes([]byte(tt.identity))
			}
			assert.Equal(t, want, c.fingerprint)
			assert.Equal(t, tt.blank, c.blank)
		})
	}
}

func TestPackageHelpersReadClaudeCodeOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gemini.json")
	writeFile(t, path, []byte(`{"access_token":"a","refresh_token":"r","expiry_date":1767290400000}`))
	_, ok := ReadSlotExpiry(path)
	assert.False(t, ok)
	_, ok = ComputeSlotFingerprint(path)
	assert.False(t, ok)
	fresh, why := SlotIsFresh(path, 0, testNow)
	assert.False(t, fresh)
	assert.Equal(t, "unreadable or no expiresAt in gemini.json", why)
}
