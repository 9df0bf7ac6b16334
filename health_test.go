package credslots

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// problemWith returns the first problem containing want, or "".
func problemWith(st Status, want string) string {
	for _, p := range st.Problems {
		if strings.Contains(p, want) {
			return p
		}
	}
	return ""
}

// TestStatusHealthMeansRotationWorks: each way rotation would fail is a
// problem, and a dir where it works has none.
func TestStatusHealthMeansRotationWorks(t *testing.T) {
	fresh := testNow.Add(8 * time.Hour)
	tests := []struct {
		name  string
		setup func(t *testing.T, f *fixture)
		want  []string // substrings of the problems
	}{
		{"healthy", func(t *testing.T, f *fixture) {}, nil},
		{"active rests", func(t *testing.T, f *fixture) {
			require.NoError(t, f.m.Rest("bob", testNow.Add(2*time.Hour), "429"))
		}, []string{"active sub bob rests until 2026-01-01T14:00:00Z (429): switch to another sub (credslots switch --next), or end the rest (credslots rest bob --clear)"}},
		{"active invalid", func(t *testing.T, f *fixture) {
			require.NoError(t, f.m.MarkInvalid("bob", "401"))
		}, []string{"active slot bob was rejected by the server: 401; switch to another sub (credslots switch --next)"}},
		{"no usable other", func(t *testing.T, f *fixture) {
			require.NoError(t, f.m.MarkInvalid("alice", "401"))
			writeSlot(t, f.slot("erik"), testNow.Add(-time.Hour), "rt-erik")
		}, []string{"no usable sub besides the active one (bob): alice: rejected by the server; erik: expired 60m ago"}},
		{"configured sub with no slot", func(t *testing.T, f *fixture) {
			require.NoError(t, os.Remove(f.slot("erik")))
		}, []string{"sub erik has no slot (.credentials.json.erik is missing): it cannot be switched to; log in to it and run credslots add erik"}},
		{"not a credential", func(t *testing.T, f *fixture) {
			writeFile(t, f.slot("erik"), []byte(`{"theme":"dark"}`))
		}, []string{"slot erik (.credentials.json.erik) is not a claude credential at all: no claudeAiOauth object"}},
		{"not JSON", func(t *testing.T, f *fixture) {
			writeFile(t, f.slot("erik"), []byte("hello\n"))
		}, []string{"slot erik (.credentials.json.erik) is not a claude credential at all: not a JSON document"}},
		{"seconds as milliseconds", func(t *testing.T, f *fixture) {
			writeFile(t, f.slot("erik"), []byte(fmt.Sprintf(`{"claudeAiOauth":{"accessToken":"a","refreshToken":"rt-erik","expiresAt":%d}}`, fresh.Unix())))
		}, []string{"slot erik: expiresAt 1767297600 looks like seconds written where milliseconds belong (as seconds it is 2026-01-01T20:00:00Z)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			require.NoError(t, os.Chmod(f.dir, 0o700))
			for _, sub := range []string{"bob", "alice", "erik"} {
				writeSlot(t, f.slot(sub), fresh, "rt-"+sub)
			}
			f.link(t, "bob")
			tt.setup(t, f)
			st, err := f.m.Status()
			require.NoError(t, err)
			for _, w := range tt.want {
				assert.NotEmpty(t, problemWith(st, w), "want %q in %q", w, st.Problems)
			}
			if tt.want == nil {
				assert.Empty(t, st.Problems)
				assert.True(t, st.Healthy)
			} else {
				assert.False(t, st.Healthy)
			}
		})
	}
}

func TestStatusOnlySub(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o700))
	m, err := New(WithCredsDir(dir), WithSubscriptions("work"), WithClock(fixedClock))
	require.NoError(t, err)
	writeSlot(t, m.SlotPath("work"), testNow.Add(8*time.Hour), "rt-work")
	require.NoError(t, os.Symlink(".credentials.json.work", m.LivePath()))
	st, err := m.Status()
	require.NoError(t, err)
	assert.Equal(t, []string{"no usable sub besides the active one (work): it is the only sub; log in to another account and run credslots add NAME"}, st.Problems)
}

func TestUnitHint(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	assert.Contains(t, unitHint(ClaudeCode, time.UnixMilli(at.Unix())), "seconds written where milliseconds belong")
	assert.Contains(t, unitHint(GeminiCLI, time.UnixMilli(at.Unix())), "expiry_date")
	assert.Empty(t, unitHint(ClaudeCode, at))
	assert.Empty(t, unitHint(ClaudeCode, time.UnixMilli(5)), "a tiny number is no time in any unit")
	assert.Contains(t, unitHint(CodexCLI, time.Unix(at.UnixMilli(), 0)), "milliseconds written where seconds belong")
	assert.Empty(t, unitHint(CodexCLI, at))
}

// TestDiscoverySkipsNonCredentials: copies and non-credential JSON are not
// subs; a file that is not JSON is listed (Status reports it).
func TestDiscoverySkipsNonCredentials(t *testing.T) {
	dir := t.TempDir()
	cred := claudeDoc(testNow.Add(time.Hour), "rt")
	for name, data := range map[string][]byte{
		".credentials.json.bob":      cred,
		".credentials.json.bak":      cred,
		".credentials.json.bob.bak":  cred,
		".credentials.json.bob~":     cred,
		".credentials.json.bob.swp":  cred,
		".credentials.json.bob.orig": cred,
		".credentials.json.old":      cred,
		".credentials.json.settings": []byte(`{"theme":"dark"}`),
		".credentials.json.list":     []byte(`[1,2]`),
		".credentials.json.gem":      []byte(`{"access_token":"x","refresh_token":"y","expiry_date":1}`),
		".credentials.json.garbled":  []byte(`{"claudeAiOauth":`),
	} {
		writeFile(t, filepath.Join(dir, name), data)
	}
	subs, err := DiscoverSubscriptions(dir, DefaultSlotTemplate)
	require.NoError(t, err)
	assert.Equal(t, []string{"bob", "garbled"}, subs, "the Claude Code template checks Claude Code content")

	subs, err = DiscoverSubscriptions(dir, ".credentials.json.{sub}.x")
	require.NoError(t, err)
	assert.Empty(t, subs)

	gdir := t.TempDir()
	writeFile(t, filepath.Join(gdir, "oauth_creds.json.g1"), []byte(`{"access_token":"x","refresh_token":"y","expiry_date":1}`))
	writeFile(t, filepath.Join(gdir, "oauth_creds.json.g2"), cred)
	subs, err = DiscoverSubscriptions(gdir, GeminiCLI.DefaultSlotTemplate())
	require.NoError(t, err)
	assert.Equal(t, []string{"g1"}, subs)
}
