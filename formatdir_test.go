package credslots

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func noEnv(string) (string, bool) { return "", false }
func noHome() (string, error)     { return "", errors.New("no home") }
func homeAt(h string) func() (string, error) {
	return func() (string, error) { return h, nil }
}

// TestDefaultDirFollowsTheCLI: each format finds its creds dir where its CLI
// does, from the CLI's own variables, else in the home directory.
func TestDefaultDirFollowsTheCLI(t *testing.T) {
	home := filepath.FromSlash("/home/u")
	tests := []struct {
		name string
		f    Format
		env  map[string]string
		want string
	}{
		{"claude default", ClaudeCode, nil, filepath.Join(home, ".claude")},
		{"claude config dir", ClaudeCode, map[string]string{"CLAUDE_CONFIG_DIR": "/cfg"}, "/cfg"},
		{"claude secure storage wins", ClaudeCode,
			map[string]string{"CLAUDE_CONFIG_DIR": "/cfg", "CLAUDE_SECURESTORAGE_CONFIG_DIR": "/agent1/"}, "/agent1"},
		{"claude empty variable is unset", ClaudeCode, map[string]string{"CLAUDE_CONFIG_DIR": ""}, filepath.Join(home, ".claude")},
		{"claude secure storage set but empty is the home's, as Claude Code 2.1.332 reads it", ClaudeCode,
			map[string]string{"CLAUDE_CONFIG_DIR": "/cfg", "CLAUDE_SECURESTORAGE_CONFIG_DIR": ""}, filepath.Join(home, ".claude")},
		{"claude ignores codex", ClaudeCode, map[string]string{"CODEX_HOME": "/cx"}, filepath.Join(home, ".claude")},
		{"codex default", CodexCLI, nil, filepath.Join(home, ".codex")},
		{"codex home", CodexCLI, map[string]string{"CODEX_HOME": "/cx"}, "/cx"},
		{"codex ignores claude", CodexCLI, map[string]string{"CLAUDE_CONFIG_DIR": "/cfg"}, filepath.Join(home, ".codex")},
		{"gemini default", GeminiCLI, nil, filepath.Join(home, ".gemini")},
		{"gemini cli home", GeminiCLI, map[string]string{"GEMINI_CLI_HOME": "/gh"}, filepath.Join("/gh", ".gemini")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			got := tt.f.(*jsonFormat).cliDir(lookup, homeAt(home))
			assert.Equal(t, filepath.FromSlash(tt.want), got)
		})
	}
}

// TestDefaultDirReadsTheEnvironment: DefaultDir itself reads the process's
// environment.
func TestDefaultDirReadsTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CLAUDE_SECURESTORAGE_CONFIG_DIR", "")
	home, err := os.UserHomeDir()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(home, ".claude"), ClaudeCode.DefaultDir(), "set but empty: the home directory's")
	require.NoError(t, os.Unsetenv("CLAUDE_SECURESTORAGE_CONFIG_DIR"))
	t.Setenv("CLAUDE_CONFIG_DIR", dir)
	t.Setenv("CODEX_HOME", filepath.Join(dir, "cx"))
	t.Setenv("GEMINI_CLI_HOME", dir)
	assert.Equal(t, dir, ClaudeCode.DefaultDir())
	assert.Equal(t, filepath.Join(dir, "cx"), CodexCLI.DefaultDir())
	assert.Equal(t, filepath.Join(dir, ".gemini"), GeminiCLI.DefaultDir())
}
