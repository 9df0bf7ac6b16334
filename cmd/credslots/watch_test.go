//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer safe for the watch goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// watching is a watch command running in process.
type watching struct {
	stdout, stderr *syncBuffer
	cancel         func()
	done           chan int
}

// startWatch runs credslots ARGS watch until stop, and waits until it
// follows the creds dir. Unless ARGS name the watch command themselves,
// watch acts without waiting for a login to settle.
func startWatch(t *testing.T, args ...string) *watching {
	if !slices.Contains(args, "watch") {
		args = append(args, "watch", "--login-settle=0")
	}
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watching{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	a := &app{now: func() time.Time { return testNow }, stdout: w.stdout, stderr: w.stderr, ctx: ctx}
	go func() { w.done <- a.run(args) }()
	t.Cleanup(func() { w.stop(t) })
	require.Eventually(t, func() bool { return strings.Contains(w.stderr.String(), "watching") },
		2*time.Second, 5*time.Millisecond, "watch started: %s", w.stderr)
	return w
}

// stop interrupts the watch and returns its exit code.
func (w *watching) stop(t *testing.T) int {
	t.Helper()
	w.cancel()
	select {
	case code, ok := <-w.done:
		if ok {
			close(w.done)
			return code
		}
		return exitOK
	case <-time.After(2 * time.Second):
		t.Fatal("watch did not stop within 2 s of its interruption")
		return -1
	}
}

// events are the JSON objects watch printed, one a line.
func (w *watching) events(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(w.stdout.String()), "\n") {
		if line == "" {
			continue
		}
		var ev map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &ev), "one JSON object a line: %q", line)
		out = append(out, ev)
	}
	return out
}

// claudeRefresh does what Claude Code does when it refreshes its token:
// under its three lock directories, a temporary file renamed over the live
// path; then the locks are removed. A lock the watch holds at that moment
// is waited for (up to 5 s), as a refresh waits for a lock held.
func claudeRefresh(t *testing.T, dir string, doc []byte) {
	t.Helper()
	real, err := filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	locks := []string{filepath.Join(dir, ".oauth_refresh.lock"), real + ".lock", filepath.Join(dir, ".storage-write.lock")}
	deadline := time.Now().Add(5 * time.Second)
	for _, l := range locks {
		err := os.Mkdir(l, 0o755)
		for errors.Is(err, fs.ErrExist) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
			err = os.Mkdir(l, 0o755)
		}
		require.NoError(t, err)
	}
	tmp := filepath.Join(dir, fmt.Sprintf(".credentials.json.tmp.%d.%d", os.Getpid(), time.Now().UnixNano()))
	require.NoError(t, os.WriteFile(tmp, doc, 0o600))
	require.NoError(t, os.Rename(tmp, filepath.Join(dir, ".credentials.json")))
	for i := len(locks) - 1; i >= 0; i-- {
		require.NoError(t, os.Remove(locks[i]))
	}
}

func TestWatchHealsAClaudeCodeRefresh(t *testing.T) {
	dir := credsDir(t, testNow)
	require.Equal(t, 0, run("--dir", dir, "switch", "bob").code)
	w := startWatch(t, "--dir", dir, "--json")
	time.Sleep(20 * time.Millisecond) // the refresh comes after the switch

	refreshed := cred(testNow.Add(8*time.Hour), "rt-bob-2")
	start := time.Now()
	claudeRefresh(t, dir, refreshed)

	live := filepath.Join(dir, ".credentials.json")
	require.Eventually(t, func() bool {
		target, err := os.Readlink(live)
		return err == nil && target == ".credentials.json.bob" &&
			mustRead(t, filepath.Join(dir, ".credentials.json.bob")) == string(refreshed) &&
			len(w.events(t)) == 1
	}, time.Second, 5*time.Millisecond, "healed within a second; stdout %s stderr %s", w.stdout, w.stderr)
	t.Logf("healed %v after the refresh", time.Since(start))
	ev := w.events(t)[0]
	assert.Equal(t, "healed", ev["event"])
	assert.Equal(t, "bob", ev["sub"])
	assert.Contains(t, ev["reason"], "healed: synced live → .credentials.json.bob")

	// The heal's own changes settle without another event.
	time.Sleep(300 * time.Millisecond)
	assert.Len(t, w.events(t), 1, "one event: %s", w.stdout)
	assert.Equal(t, 0, w.stop(t))
	assert.Contains(t, w.stderr.String(), "watch stopped")
	assert.NotContains(t, w.stdout.String()+w.stderr.String(), "rt-")

	// The heal ran under Claude Code's locks, and released them.
	real, err := filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	for _, l := range []string{filepath.Join(dir, ".oauth_refresh.lock"), real + ".lock", filepath.Join(dir, ".storage-write.lock")} {
		_, err := os.Lstat(l)
		assert.ErrorIs(t, err, fs.ErrNotExist)
	}
	r := run("--dir", dir, "--json", "log", "-n", "1")
	entries := r.json(t)["entries"].([]any)
	assert.Equal(t, "heal", entries[0].(map[string]any)["op"])
}

func TestWatchTextLinesAndRefusalsOnce(t *testing.T) {
	dir := credsDir(t, testNow)
	w := startWatch(t, "--dir", dir)
	// A refresh the journal cannot place (no switch recorded): refused once,
	// however many times the dir changes afterwards.
	claudeRefresh(t, dir, cred(testNow.Add(8*time.Hour), "rt-who"))
	require.Eventually(t, func() bool { return strings.Contains(w.stdout.String(), "heal_refused") },
		time.Second, 5*time.Millisecond, "%s", w.stdout)
	for i := 0; i < 3; i++ {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "unrelated"), []byte{byte(i)}, 0o600))
		time.Sleep(80 * time.Millisecond)
	}
	out := w.stdout.String()
	assert.Equal(t, 1, strings.Count(out, "\n"), "one line: %q", out)
	assert.Regexp(t, `^2026-01-01T12:00:00Z heal_refused \(ambiguous\): `, out)
	assert.Equal(t, string(cred(testNow.Add(8*time.Hour), "rt-who")), mustRead(t, filepath.Join(dir, ".credentials.json")),
		"a refused heal changes nothing")
}

func TestWatchReportsGeminiIdentityDrift(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o700))
	gem := func(access, refresh string) []byte {
		return []byte(fmt.Sprintf(`{"access_token":%q,"refresh_token":%q,"expiry_date":%d}`,
			access, refresh, testNow.Add(time.Hour).UnixMilli()))
	}
	write(t, filepath.Join(dir, "oauth_creds.json.work"), gem("at-work", "rt-work"))
	write(t, filepath.Join(dir, "oauth_creds.json.home"), gem("at-home", "rt-home"))
	require.NoError(t, os.Symlink("oauth_creds.json.work", filepath.Join(dir, "oauth_creds.json")))
	for _, sub := range []string{"work", "home"} {
		require.Equal(t, 0, run("--tool", "gemini", "--dir", dir, "capture", sub).code)
	}
	w := startWatch(t, "--tool", "gemini", "--dir", dir, "--json")

	// Gemini CLI writes in place through the symlink: an /auth for another
	// account lands in the work slot.
	f, err := os.OpenFile(filepath.Join(dir, "oauth_creds.json"), os.O_WRONLY|os.O_TRUNC, 0)
	require.NoError(t, err)
	_, err = f.Write(gem("at-other", "rt-other"))
	require.NoError(t, err)
	require.NoError(t, f.Close())

	require.Eventually(t, func() bool { return len(w.events(t)) >= 1 }, time.Second, 5*time.Millisecond, "%s", w.stdout)
	time.Sleep(200 * time.Millisecond)
	evs := w.events(t)
	require.Len(t, evs, 1, "%s", w.stdout)
	assert.Equal(t, "identity_drift", evs[0]["event"])
	assert.Equal(t, "work", evs[0]["sub"])
	assert.Equal(t, "identity_drift", evs[0]["error"])
	assert.Contains(t, evs[0]["reason"], "changed since last capture")
	target, err := os.Readlink(filepath.Join(dir, "oauth_creds.json"))
	require.NoError(t, err)
	assert.Equal(t, "oauth_creds.json.work", target, "reported, not changed")
	assert.NotContains(t, w.stdout.String(), "rt-")
}

// TestWatchBinaryStopsOnSignals runs the built command: it waits without
// using the CPU and exits 0 on SIGTERM and SIGINT.
func TestWatchBinaryStopsOnSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := credsDir(t, time.Now())
			cmd := exec.Command(binary, "--dir", dir, "watch")
			var out, errOut syncBuffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			require.Eventually(t, func() bool { return strings.Contains(errOut.String(), "watching") },
				5*time.Second, 10*time.Millisecond)
			time.Sleep(500 * time.Millisecond)
			require.NoError(t, cmd.Process.Signal(sig))
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				require.NoError(t, err, "exit 0; stderr %s", errOut.String())
			case <-time.After(2 * time.Second):
				t.Fatal("watch did not stop on " + sig.String())
			}
			assert.Contains(t, errOut.String(), "watch stopped")
			assert.Empty(t, out.String(), "nothing happened, nothing printed")
			usage := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			cpu := time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
			assert.Less(t, cpu, 300*time.Millisecond, "an idle watch does not spin")
		})
	}
}
