package credslots

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClaudeJSONBackupsAreTheChangedMemberNotWholeCopies(t *testing.T) {
	f, path := homeFixture(t)
	learnAccounts(t, f, path)
	// A .claude.json grown large with project history.
	big := bytes.Replace(claudeJSON(bobAccount), []byte(`["x"]`), []byte(`["`+strings.Repeat("h", 2<<20)+`"]`), 1)
	writeFile(t, path, big)
	for i := 0; i < 6; i++ {
		sub := []string{"alice", "bob"}[i%2]
		_, err := f.m.SwitchTo(sub, "rotate")
		require.NoError(t, err)
	}
	var total int64
	n := 0
	for _, b := range listGenerations(t, f.m, ".claude.json") {
		data, err := os.ReadFile(b)
		require.NoError(t, err)
		total += int64(len(data))
		n++
		assert.True(t, strings.HasPrefix(string(data), `{"oauthAccount":{`), "%s holds only the account: %.80s", b, data)
	}
	assert.Equal(t, 6, n, "one generation a splice")
	assert.Less(t, total, int64(4096), "six splices of a 2 MiB .claude.json keep a few hundred bytes, not 12 MiB")
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Greater(t, len(got), 2<<20, "the history is still in .claude.json")
}

// listGenerations lists the backup generations of files named base.
func listGenerations(t *testing.T, m *Manager, base string) []string {
	t.Helper()
	ents, err := os.ReadDir(m.backupsDir())
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), base+".") || strings.Contains(e.Name(), base+".") {
			out = append(out, filepath.Join(m.backupsDir(), e.Name()))
		}
	}
	return out
}

func TestClaudeJSONWithTheSecureStorageDir(t *testing.T) {
	root := t.TempDir()
	home := filepath.Join(root, "home")
	store := filepath.Join(root, "store", "alice") // only the credentials live here
	require.NoError(t, os.MkdirAll(store, 0o700))
	writeFile(t, filepath.Join(home, ".claude.json"), claudeJSON(aliceAccount))
	t.Setenv("HOME", home)
	t.Setenv("CLAUDE_CONFIG_DIR", "")
	t.Setenv("CLAUDE_SECURESTORAGE_CONFIG_DIR", store)
	m, err := New(WithCredsDir(store), WithSubscriptions("alice", "bob"))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(home, ".claude.json"), m.claudeJSONPath(), "the config dir's, as Claude Code finds it")

	cfg := filepath.Join(root, "cfg")
	writeFile(t, filepath.Join(cfg, ".claude.json"), claudeJSON(bobAccount))
	t.Setenv("CLAUDE_CONFIG_DIR", cfg)
	assert.Equal(t, filepath.Join(cfg, ".claude.json"), m.claudeJSONPath())

	// Locks stay in the storage dir: Claude Code takes them there.
	locks := ClaudeCode.(*jsonFormat).cliLocks(store, store)
	for _, l := range locks {
		assert.True(t, strings.HasPrefix(l.path, store), l.path)
	}

	// Another dir is not the storage dir's.
	other := filepath.Join(root, "other")
	require.NoError(t, os.Mkdir(other, 0o700))
	m2, err := New(WithCredsDir(other), WithSubscriptions("alice"))
	require.NoError(t, err)
	assert.Equal(t, "", m2.claudeJSONPath())
}
