//go:build unix

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gptme/credslots"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A release that fails (here: the CLI's refresh lock in the seat outlives
// the lock timeout) leaves the newest login in the seat; run must not then
// remove its private seat, or the only live refresh token is gone and the
// slot keeps the spent one.
func TestRedteamRunKeepsTheSeatWhenTheReleaseFails(t *testing.T) {
	now := time.Now()
	dir := poolDir(t, now)
	refreshed := filepath.Join(t.TempDir(), "refreshed.json")
	write(t, refreshed, cred(now.Add(20*time.Hour), "rt-erik-2"))
	report := filepath.Join(t.TempDir(), "report")
	t.Setenv("REFRESHED", refreshed)
	t.Setenv("REPORT", report)
	script := `set -e
printf '%s\n' "$CREDSLOTS_SEAT" > "$REPORT"
mkdir "$CREDSLOTS_SEAT/.oauth_refresh.lock"
cp "$REFRESHED" "$CREDSLOTS_SEAT/.credentials.json.tmp.1"
mv "$CREDSLOTS_SEAT/.credentials.json.tmp.1" "$CREDSLOTS_SEAT/.credentials.json"`
	// The real binary: a failed release leaves its lock to the process's exit.
	var stderr bytes.Buffer
	cmd := exec.Command(binary, "--dir", dir, "--lock-timeout", "150ms", "run", "--sub", "erik", "--", "sh", "-c", script)
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	assert.Contains(t, stderr.String(), "release of erik")
	raw, err := os.ReadFile(report)
	require.NoError(t, err)
	seat := strings.TrimSpace(string(raw))

	// The CLI's lock goes away; the next lease of erik recovers the seat.
	_ = os.RemoveAll(filepath.Join(seat, ".oauth_refresh.lock"))
	m := poolManager(t, dir, now)
	l, err := m.Lease(context.Background(), filepath.Join(t.TempDir(), "seat"), credslots.LeaseSub("erik"))
	require.NoError(t, err)
	assert.Equal(t, "rt-erik-2", refreshTokenIn(t, filepath.Join(dir, ".credentials.json.erik")),
		"the newest token came back to its slot")
	require.NoError(t, l.Release())
}
