//go:build unix

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

// CMD exits but leaves a process that inherited the lease (and reads the
// seat, as a background CLI does); it refreshes after run returned. The
// private seat must still be there for that refresh to land in, so that
// the next lease recovers it: removing it under a live holder loses the
// only live refresh token.
func TestRedteamRunKeepsThePrivateSeatOfAnInheritingChild(t *testing.T) {
	now := time.Now()
	dir := poolDir(t, now)
	tmp := t.TempDir()
	refreshed := filepath.Join(tmp, "refreshed.json")
	write(t, refreshed, cred(now.Add(20*time.Hour), "rt-erik-2"))
	pidFile, goFile, wrote := filepath.Join(tmp, "pid"), filepath.Join(tmp, "go"), filepath.Join(tmp, "wrote")
	t.Setenv("REFRESHED", refreshed)
	t.Setenv("PIDFILE", pidFile)
	t.Setenv("GO", goFile)
	t.Setenv("WROTE", wrote)
	script := `( i=0; while [ ! -e "$GO" ]; do sleep 0.05; i=$((i+1)); [ $i -gt 200 ] && exit 1; done
cp "$REFRESHED" "$CREDSLOTS_SEAT/.credentials.json" || true
touch "$WROTE"; exec sleep 60 ) >/dev/null 2>&1 &
echo $! > "$PIDFILE"`
	r := run("--dir", dir, "run", "--sub", "erik", "--", "sh", "-c", script)
	require.Equal(t, 0, r.code, r.stderr)
	raw, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

	write(t, goFile, []byte("go"))
	require.Eventually(t, func() bool { _, err := os.Stat(wrote); return err == nil }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))

	m := poolManager(t, dir, now)
	require.Eventually(t, func() bool {
		l, err := m.Lease(context.Background(), filepath.Join(t.TempDir(), "seat"), credslots.LeaseSub("erik"))
		if err != nil {
			return false
		}
		return l.Release() == nil
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, "rt-erik-2", refreshTokenIn(t, filepath.Join(dir, ".credentials.json.erik")),
		"the child's refresh came back to the slot")
	seats, err := os.ReadDir(filepath.Join(dir, ".credslots", "seats"))
	require.NoError(t, err)
	assert.Empty(t, seats, "the recovered private seat is removed then")
}

// TestRedteamRunLeavesTheSeatsLocksAlone: while CMD runs and nothing
// changes in its seat, run takes none of the CLI's locks there: its own
// write-back must not wake itself into taking Claude Code's refresh lock
// again and again, where CMD's refresh would find it held.
func TestRedteamRunLeavesTheSeatsLocksAlone(t *testing.T) {
	dir := poolDir(t, testNow)
	ran := make(chan result, 1)
	go func() { ran <- run("--dir", dir, "run", "--", "sleep", "3.8") }()
	seat := seatOf(t, dir)
	count := creates(t, seat, ".oauth_refresh.lock")
	time.Sleep(3500 * time.Millisecond)
	taken := count()
	r := <-ran
	require.Equal(t, 0, r.code, r.stderr)
	// At most the hand-out's taking, when the count began before it ended,
	// and the follower's first look under the locks; a follower woken by
	// its own lock directories took it some 30 times.
	assert.LessOrEqual(t, taken, 2, "the seat's refresh lock taken %d times in 3.5 s of CMD doing nothing (a poll among them)", taken)
}
