//go:build unix

package main

// Red-team replays of the long-running commands (watch, run) left alone in
// a state an operator can leave behind: while nothing changes, they must
// not take the CLI's locks, write or print again and again.

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/gptme/credslots"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// creates counts, from now until the returned function is called, the
// Create events in dir of the entries named names (a CLI's lock
// directories: each Create is one taking of that lock).
func creates(t *testing.T, dir string, names ...string) func() int {
	t.Helper()
	fw, err := fsnotify.NewWatcher()
	require.NoError(t, err)
	require.NoError(t, fw.Add(dir))
	var (
		mu sync.Mutex
		n  int
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range fw.Events {
			for _, name := range names {
				if filepath.Base(ev.Name) == name && ev.Has(fsnotify.Create) {
					mu.Lock()
					n++
					mu.Unlock()
				}
			}
		}
	}()
	var once sync.Once
	stop := func() int {
		once.Do(func() {
			_ = fw.Close()
			<-done
		})
		mu.Lock()
		defer mu.Unlock()
		return n
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestRedteamRunWaitingLeavesHomesLocksAlone: run --wait, while no sub is
// free, looks for one without taking any lock until one looks free. A sub
// that is not usable (resting) whose last lease was released from a seat
// Claude Code keeps other state in (its MCP logins stay in the seat's file)
// has nothing to recover there: it must not make every 50 ms poll take
// Claude Code's refresh lock at home.
func TestRedteamRunWaitingLeavesHomesLocksAlone(t *testing.T) {
	dir := poolDir(t, testNow)
	m := poolManager(t, dir, testNow)
	seat := filepath.Join(t.TempDir(), "seat")
	l, err := m.Lease(context.Background(), seat, credslots.LeaseSub("erik"))
	require.NoError(t, err)
	seatFile := filepath.Join(seat, ".credentials.json")
	login := mustRead(t, seatFile)
	write(t, seatFile, []byte(`{"mcpOAuth":{"srv":{"accessToken":"mcp-at"}},`+login[1:]))
	require.NoError(t, l.Release())
	require.FileExists(t, seatFile, "the seat keeps Claude Code's other state")
	r := run("--dir", dir, "rest", "erik", "--for", "1h")
	require.Equal(t, 0, r.code, r.stderr)
	for _, sub := range []string{"alice", "bob"} {
		held, err := m.Lease(context.Background(), filepath.Join(t.TempDir(), sub), credslots.LeaseSub(sub))
		require.NoError(t, err)
		defer func() { assert.NoError(t, held.Release()) }()
	}

	taken := creates(t, dir, ".oauth_refresh.lock")
	r = run("--dir", dir, "run", "--wait", "1s", "--", "true")
	require.Equal(t, exitTempFail, r.code, r.stderr)
	assert.LessOrEqual(t, taken(), 1, "home's refresh lock taken by a second of waiting (once, for the first look, at most)")
}

// seatOf waits for run's private seat to appear under dir and returns it.
func seatOf(t *testing.T, dir string) string {
	t.Helper()
	seats := filepath.Join(dir, ".credslots", "seats")
	var seat string
	require.Eventually(t, func() bool {
		entries, err := os.ReadDir(seats)
		if err == nil && len(entries) > 0 {
			seat = filepath.Join(seats, entries[0].Name())
		}
		return seat != ""
	}, 5*time.Second, time.Millisecond, "run made its seat")
	return seat
}

// TestRedteamRunLeavesASeatWithNothingNewAlone: CMD leaves its seat's file
// blank (a failed refresh writes that) and runs on. That is read once under
// the CLI's locks; run's polls every two seconds must not take them again
// for the same file.
func TestRedteamRunLeavesASeatWithNothingNewAlone(t *testing.T) {
	dir := poolDir(t, testNow)
	blank := filepath.Join(t.TempDir(), "blank.json")
	write(t, blank, []byte(`{"claudeAiOauth":{"accessToken":"","refreshToken":"","expiresAt":`+
		strconv.FormatInt(testNow.Add(20*time.Hour).UnixMilli(), 10)+`}}`))
	t.Setenv("BLANK", blank)
	script := `sleep 0.3
cp "$BLANK" "$CREDSLOTS_SEAT/.credentials.json.tmp.1"
mv "$CREDSLOTS_SEAT/.credentials.json.tmp.1" "$CREDSLOTS_SEAT/.credentials.json"
sleep 4.7`
	counted := make(chan int, 1)
	go func() {
		seat := seatOf(t, dir)
		// From the moment the login is in the seat (the lease's own
		// writing of it took the locks).
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if _, err := os.Lstat(filepath.Join(seat, ".credentials.json")); err == nil {
				break
			}
		}
		taken := creates(t, seat, ".oauth_refresh.lock")
		time.Sleep(4800 * time.Millisecond)
		counted <- taken()
	}()
	r := run("--dir", dir, "run", "--", "sh", "-c", script)
	require.Equal(t, 0, r.code, r.stderr)
	assert.LessOrEqual(t, <-counted, 1, "the seat's refresh lock taken again for a blank file that stayed as it was (two polls)")
}

// TestRedteamRunSaysARefusedWriteBackOnce: a seat login of another account
// (Codex CLI's account id) is not written back; run says so once, not on
// every poll into CMD's terminal.
func TestRedteamRunSaysARefusedWriteBackOnce(t *testing.T) {
	now := time.Now()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "auth.json.a"), codexCred(now.Add(5*time.Hour)))
	other := filepath.Join(t.TempDir(), "other.json")
	write(t, other, bytes.ReplaceAll(codexCred(now.Add(9*time.Hour)), []byte("acct-a"), []byte("acct-z")))
	t.Setenv("OTHER", other)
	script := `cp "$OTHER" "$CODEX_HOME/.auth-1"
mv "$CODEX_HOME/.auth-1" "$CODEX_HOME/auth.json"
sleep 4.5`
	// The built command: CMD shares its stderr, as in a terminal.
	r := execBinary(t, "--tool", "codex", "--dir", dir, "run", "--", "sh", "-c", script)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, 1, strings.Count(r.stderr, "write-back of a"), "said once: %s", r.stderr)
}

// TestRedteamWatchRetriesADeferredHealWithoutTheCLIsLocks: a refresh lands
// while a busy-signal stands (--lock-glob); watch retries the deferred heal
// every --retry, and each retry that finds the signal still there must take
// none of Claude Code's locks, which the busy CLI may need meanwhile, and
// print nothing new. Once the signal is gone, the heal is made.
func TestRedteamWatchRetriesADeferredHealWithoutTheCLIsLocks(t *testing.T) {
	dir, _ := homeWithAccounts(t)
	flag := filepath.Join(t.TempDir(), "agent.busy")
	write(t, flag, []byte("1"))
	w := startWatch(t, "--dir", dir, "--json", "--lock-glob", flag, "watch", "--login-settle", "0", "--retry", "150ms")
	claudeRefresh(t, dir, cred(testNow.Add(9*time.Hour), "rt-bob-2"))
	require.Eventually(t, func() bool { return strings.Contains(w.stdout.String(), `"deferred"`) },
		5*time.Second, 10*time.Millisecond, "the heal is deferred: %s", w.stdout)

	taken := creates(t, dir, ".oauth_refresh.lock", ".storage-write.lock")
	time.Sleep(time.Second) // six retries or so
	assert.Zero(t, taken(), "Claude Code's locks taken by retries of a heal still deferred")
	assert.Equal(t, 1, strings.Count(w.stdout.String(), `"deferred"`), "a deferral that stands is said once: %s", w.stdout)

	require.NoError(t, os.Remove(flag))
	require.Eventually(t, func() bool { return strings.Contains(w.stdout.String(), `"healed"`) },
		5*time.Second, 10*time.Millisecond, "healed once the signal is gone: %s", w.stdout)
	assert.Equal(t, 0, w.stop(t))
}

// TestRedteamWatchDecidesARefusalOnceWhileTheCLIRewritesItsState: a new
// login stays live, refused, until it is filed (credslots add); meanwhile
// Claude Code rewrites .claude.json again and again (several saves a
// command) without changing the account it shows. Each rewrite must not
// make watch decide the same heal again, taking every Claude Code lock and
// printing the refusal once more; a change of the account shown does.
func TestRedteamWatchDecidesARefusalOnceWhileTheCLIRewritesItsState(t *testing.T) {
	dir, claudeJSON := homeWithAccounts(t)
	write(t, claudeJSON, claudeState("dave@example.test", "uuid-dave"))
	claudeRefresh(t, dir, cred(testNow.Add(9*time.Hour), "rt-dave"))
	w := startWatch(t, "--dir", dir, "--json", "watch", "--login-settle", "100ms")
	logins := func() int { return strings.Count(w.stdout.String(), `"new_login"`) }
	require.Eventually(t, func() bool { return logins() == 1 }, 5*time.Second, 10*time.Millisecond, "%s", w.stdout)

	taken := creates(t, dir, ".oauth_refresh.lock")
	rewrite := func(doc []byte) {
		write(t, claudeJSON+".tmp", doc)
		require.NoError(t, os.Rename(claudeJSON+".tmp", claudeJSON))
	}
	for i := 0; i < 4; i++ {
		rewrite([]byte(strings.Replace(mustRead(t, claudeJSON), `"numStartups": `, `"numStartups": 1`, 1)))
		time.Sleep(250 * time.Millisecond) // settled each time
	}
	assert.Zero(t, taken(), "Claude Code's refresh lock taken for a refusal already decided")
	assert.Equal(t, 1, logins(), "said once: %s", w.stdout)

	rewrite(claudeState("erin@example.test", "uuid-erin"))
	require.Eventually(t, func() bool { return logins() == 2 }, 5*time.Second, 10*time.Millisecond,
		"another account shown: decided again: %s", w.stdout)
	assert.Contains(t, w.stdout.String(), "erin@example.test")
	assert.Equal(t, 0, w.stop(t))
}

// TestRedteamWatchSaysAFlipItCannotRecordOnce: a hand flip that watch
// cannot journal (the package's lock cannot be taken) is reported once,
// not again on every rewrite of .claude.json that wakes watch meanwhile.
func TestRedteamWatchSaysAFlipItCannotRecordOnce(t *testing.T) {
	dir, claudeJSON := homeWithAccounts(t)
	live := filepath.Join(dir, ".credentials.json")
	require.NoError(t, os.Symlink(".credentials.json.alice", live+".hand"))
	require.NoError(t, os.Rename(live+".hand", live))
	lock := filepath.Join(dir, ".credslots", "lock")
	require.NoError(t, os.Remove(lock))
	require.NoError(t, os.Mkdir(lock, 0o700)) // no lock file can be opened there
	w := startWatch(t, "--dir", dir, "--json", "watch", "--login-settle", "50ms")
	failures := func() int { return strings.Count(w.stdout.String(), `"event":"error"`) }
	require.Eventually(t, func() bool { return failures() == 1 }, 5*time.Second, 10*time.Millisecond, "%s", w.stdout)
	for i := 0; i < 4; i++ {
		write(t, claudeJSON+".tmp", []byte(mustRead(t, claudeJSON)))
		require.NoError(t, os.Rename(claudeJSON+".tmp", claudeJSON))
		time.Sleep(150 * time.Millisecond)
	}
	assert.Equal(t, 1, failures(), "said once: %s", w.stdout)

	require.NoError(t, os.Remove(lock))
	write(t, claudeJSON+".tmp", []byte(mustRead(t, claudeJSON)))
	require.NoError(t, os.Rename(claudeJSON+".tmp", claudeJSON))
	require.Eventually(t, func() bool { return strings.Contains(w.stdout.String(), `"event":"flip"`) }, 5*time.Second, 10*time.Millisecond,
		"journaled once it can be: %s", w.stdout)
	assert.Equal(t, 0, w.stop(t))
}

// TestWatchReadsClaudeJSONAgainOnlyWhenItChanged: the account .claude.json
// shows is read again only for another file there (Claude Code saves it by
// a rename) or a change of its size or mtime, not on every check.
func TestWatchReadsClaudeJSONAgainOnlyWhenItChanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".claude.json")
	write(t, path, claudeState("dave@example.test", "uuid-dave"))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	w := &watcher{}
	dave := w.shownAccount(path)
	require.NotEmpty(t, dave)
	assert.Equal(t, shownAccount(path), dave)

	// The same file, size and mtime: not read again (so not seen to change).
	require.NoError(t, os.WriteFile(path, claudeState("eric@example.test", "uuid-eric"), 0o600))
	require.NoError(t, os.Chtimes(path, fi.ModTime(), fi.ModTime()))
	assert.Equal(t, dave, w.shownAccount(path), "not read again")
	eric := shownAccount(path)
	assert.NotEqual(t, dave, eric)

	// Saved as Claude Code saves it: read again.
	write(t, path+".tmp", claudeState("eric@example.test", "uuid-eric"))
	require.NoError(t, os.Rename(path+".tmp", path))
	require.NoError(t, os.Chtimes(path, fi.ModTime(), fi.ModTime()))
	assert.Equal(t, eric, w.shownAccount(path), "another file: read again")

	require.NoError(t, os.Remove(path))
	assert.Empty(t, w.shownAccount(path), "none shown")
}
