package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gptme/credslots"
)

func TestParseRun(t *testing.T) {
	o, msg := parseRun([]string{"--seat", "/s", "--sub", "alice", "--wait", "2m", "--seat-env", "X", "--", "claude", "-p", "hi"})
	require.Empty(t, msg)
	assert.Equal(t, &runOptions{seat: "/s", sub: "alice", seatEnv: "X", wait: 2 * time.Minute, cmd: []string{"claude", "-p", "hi"}}, o)
	for _, bad := range [][]string{
		{},
		{"--"},
		{"--wait", "soon", "--", "x"},
		{"--wait", "-1s", "--", "x"},
		{"--frob", "--", "x"},
	} {
		_, msg := parseRun(bad)
		assert.NotEmpty(t, msg, "%q", bad)
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	key := filepath.Join(t.TempDir(), "k")
	require.NoError(t, os.WriteFile(key, make([]byte, 32), 0o600))
	for _, args := range [][]string{
		{},
		{"frob"},
		{"--key-file", key, "import", "alice"},
		{"--key-file", key, "leases", "extra"},
		{"--key-file", key, "--tool", "vim", "status"},
		{"status"},
		{"--nope", "status"},
		{"--key-file", key, "--tool", "gemini", "--endpoints", "127.0.0.1:1", "run", "--", "true"},
	} {
		var out, errb bytes.Buffer
		assert.Equal(t, 2, Main(args, &out, &errb), "%q: %s", args, errb.String())
	}
	var out bytes.Buffer
	assert.Equal(t, 0, Main([]string{"help"}, &out, &out))
	assert.Contains(t, out.String(), "import SUB FILE")
}

func TestSeatEnv(t *testing.T) {
	assert.Equal(t, "CLAUDE_SECURESTORAGE_CONFIG_DIR", seatEnvFor(credslots.ClaudeCode))
	assert.Equal(t, "CODEX_HOME", seatEnvFor(credslots.CodexCLI))
	assert.Empty(t, seatEnvFor(credslots.GeminiCLI))
}
