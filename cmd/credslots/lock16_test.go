package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLockTimeoutFlag(t *testing.T) {
	dir := credsDir(t, testNow)
	// Claude Code is refreshing: its storage-write lock is fresh.
	lock := filepath.Join(dir, ".storage-write.lock")
	require.NoError(t, os.Mkdir(lock, 0o700))
	start := time.Now()
	r := run("--dir", dir, "--json", "switch", "erik", "--lock-timeout", "150ms")
	took := time.Since(start)
	assert.Equal(t, 1, r.code, r.stdout+r.stderr)
	doc := r.json(t)
	assert.Equal(t, "lock_timeout", doc["error"])
	reason, _ := doc["reason"].(string)
	assert.Contains(t, reason, lock, "names the lock")
	assert.Contains(t, reason, "abandoned once 15s old")
	assert.Less(t, took, 5*time.Second, "waited the flag's 150ms, not the default 10s")
	assert.DirExists(t, lock)
}
