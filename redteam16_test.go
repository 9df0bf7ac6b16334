//go:build linux

package credslots

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A credslots killed while it splices the account into .claude.json leaves
// .claude.json.lock behind, as it leaves the CLI's lock directories: the
// next change takes it back at once, as it takes back the others, rather
// than waiting for its stale time (and, with a short lock timeout, leaving
// .claude.json showing the account of the sub switched away from).
func TestRedteam16KilledSpliceLeavesNoBlockingClaudeJSONLock(t *testing.T) {
	f, path := homeFixture(t)
	learnAccounts(t, f, path) // live -> bob
	_, err := f.m.SwitchTo("alice", "r")
	require.NoError(t, err)
	// A .claude.json large enough that its splice takes a while.
	big := bytes.Replace(claudeJSON(aliceAccount), []byte(`["x"]`), []byte(`["`+strings.Repeat("h", 8<<20)+`"]`), 1)
	writeFile(t, path, big)

	child := lockChild(t, "switch", f.dir, nil, "")
	require.NoError(t, child.Start())
	lock := path + lockSuffix
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Killed mid-splice: the symlink points at bob, the lock is held.
		target, _ := os.Readlink(f.m.LivePath())
		if _, err := os.Lstat(lock); err == nil && target == f.m.symlinkTarget("bob") {
			break
		}
		require.True(t, time.Now().Before(deadline), "the child never spliced .claude.json")
		time.Sleep(time.Millisecond)
	}
	require.NoError(t, child.Process.Signal(syscall.SIGKILL))
	_ = child.Wait()
	require.DirExists(t, lock, "the killed change left .claude.json.lock")

	m, err := New(WithCredsDir(f.dir), WithSubscriptions("bob", "alice"), WithClock(fixedClock), WithLockTimeout(10*time.Second))
	require.NoError(t, err)
	start := time.Now()
	_, err = m.SwitchTo("alice", "r")
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 4*time.Second, "the killed change's .claude.json.lock is taken back at once")
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, aliceAccount, string(compactJSON(accountIn(got))), ".claude.json shows the account switched to")
	assert.NoDirExists(t, lock)
}

// A lock directory a killed change left is taken back at once, but not
// while an owner record beside it names a process that is alive: such a
// lock is never taken over while that process lives.
func TestRedteam16LeftoverLockUnderALiveOwnerRecordIsNotTakenBack(t *testing.T) {
	dir := t.TempDir()
	writeSlot(t, filepath.Join(dir, ".credentials.json.bob"), fresh, "rt-bob")
	writeSlot(t, filepath.Join(dir, ".credentials.json.alice"), fresh, "rt-alice")
	killLockHolder(t, dir)
	lock := filepath.Join(dir, ".oauth_refresh.lock")
	before, err := os.Lstat(lock)
	require.NoError(t, err)

	f := &fixture{dir: dir}
	owner := ownerRecordFor(t, f, liveChild(t), "", 1)
	m, err := New(WithCredsDir(dir), WithSubscriptions("bob", "alice"), WithClock(fixedClock), WithLockTimeout(300*time.Millisecond))
	require.NoError(t, err)
	_, err = m.SwitchTo("alice", "r")
	require.ErrorIs(t, err, ErrLockTimeout, "the owner record names a live process")
	after, err := os.Lstat(lock)
	require.NoError(t, err)
	assert.True(t, os.SameFile(before, after), "the lock was not taken over")
	assert.FileExists(t, owner, "the record is not ours: kept")
}

// A private directory that is a symlink (or any non-directory) makes every
// change fail: Status says so instead of reporting the creds dir healthy.
func TestRedteam16StatusSaysAPrivateDirSymlinkBlocksChanges(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	f.link(t, "alice")
	require.NoError(t, os.Symlink(t.TempDir(), filepath.Join(f.dir, privateDirName)))
	_, err := f.m.SwitchTo("bob", "r")
	require.Error(t, err, "no change is made through a symlinked private directory")
	st, err := f.m.Status()
	require.NoError(t, err)
	assert.Contains(t, strings.Join(st.Problems, "\n"), "changes cannot be made: "+filepath.Join(f.dir, privateDirName)+" is not a directory")
}

// A file where a CLI lock directory goes makes every change fail (and the
// CLI's own refresh): Status says so.
func TestRedteam16StatusSaysALockPathThatIsNoDirectoryBlocksChanges(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	f.link(t, "alice")
	lock := filepath.Join(f.dir, ".storage-write.lock")
	writeFile(t, lock, nil)
	_, err := f.m.SwitchTo("bob", "r")
	require.Error(t, err)
	st, err := f.m.Status()
	require.NoError(t, err)
	assert.Contains(t, strings.Join(st.Problems, "\n"), "changes cannot be made: "+lock+" is not a lock directory")
}
