package credslots

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// holdLock takes the manager's lock file the way another process would.
func holdLock(t *testing.T, m *Manager) func() {
	t.Helper()
	unlock, ok, err := tryLock(m.lockPath)
	require.NoError(t, err)
	require.True(t, ok)
	return func() { _ = unlock() }
}

func TestMutationsTimeOutOnAHeldLock(t *testing.T) {
	f := newFixture(t, WithLockTimeout(30*time.Millisecond))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeFile(t, f.m.LivePath(), claudeDoc(fresh, "rt-live"))
	release := holdLock(t, f.m)
	defer release()

	res, err := f.m.SwitchTo("bob", "r", Force())
	require.ErrorIs(t, err, ErrLockTimeout)
	assert.False(t, res.OK)
	assert.Contains(t, res.Reason, "lock")

	_, err = f.m.HealDriftTo("bob")
	assert.ErrorIs(t, err, ErrLockTimeout)
	_, err = f.m.CaptureSlotFingerprint("bob")
	assert.ErrorIs(t, err, ErrLockTimeout)
	assert.NoFileExists(t, f.m.FingerprintPath("bob"))

	// Reads take no lock.
	info, err := f.m.DetectLiveSlotDrift()
	require.NoError(t, err)
	assert.True(t, info.Drift)
	ok, _ := f.m.SlotIsFresh("bob")
	assert.True(t, ok)
}

func TestMutationWaitsForTheLock(t *testing.T) {
	f := newFixture(t, WithLockTimeout(5*time.Second))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	release := holdLock(t, f.m)
	released := make(chan time.Time, 1)
	go func() {
		time.Sleep(50 * time.Millisecond)
		released <- time.Now()
		release()
	}()
	res, err := f.m.SwitchTo("bob", "r")
	done := time.Now()
	require.NoError(t, err)
	assert.True(t, res.OK)
	assert.False(t, done.Before(<-released), "the switch ran only after the lock was released")
}

func TestLockFileIsNotFollowedThroughASymlink(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	victim := filepath.Join(t.TempDir(), "victim")
	writeFile(t, victim, []byte("keep"))
	require.NoError(t, os.Symlink(victim, f.m.LivePath()+".lock"))
	_, err := f.m.SwitchTo("bob", "r")
	require.Error(t, err, "a symlinked lock file is refused, not followed")
	data, rerr := os.ReadFile(victim)
	require.NoError(t, rerr)
	assert.Equal(t, "keep", string(data))
}

func TestRefreshLock(t *testing.T) {
	t.Run("held while mutating and removed after", func(t *testing.T) {
		lockDir := filepath.Join(t.TempDir(), ".claude.lock")
		var heldDuringHook bool
		f := newFixture(t, WithRefreshLock(lockDir))
		f.m.cfg.onSwitch = func(string, string) {
			fi, err := os.Stat(lockDir)
			heldDuringHook = err == nil && fi.IsDir()
		}
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		_, err := f.m.SwitchTo("bob", "r")
		require.NoError(t, err)
		assert.True(t, heldDuringHook)
		assert.NoDirExists(t, lockDir)
	})
	t.Run("a fresh lock held by the CLI times out", func(t *testing.T) {
		lockDir := filepath.Join(t.TempDir(), ".claude.lock")
		require.NoError(t, os.Mkdir(lockDir, 0o700))
		f := newFixture(t, WithRefreshLock(lockDir), WithLockTimeout(40*time.Millisecond))
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		_, err := f.m.SwitchTo("bob", "r")
		require.ErrorIs(t, err, ErrLockTimeout)
		assert.DirExists(t, lockDir, "someone else's lock is left alone")
		assert.Equal(t, "", f.readlink(t))
		// The manager's own lock was released on the way out.
		unlock, ok, err := tryLock(f.m.lockPath)
		require.NoError(t, err)
		assert.True(t, ok)
		_ = unlock()
	})
	t.Run("a stale lock is broken", func(t *testing.T) {
		lockDir := filepath.Join(t.TempDir(), ".claude.lock")
		require.NoError(t, os.Mkdir(lockDir, 0o700))
		old := time.Now().Add(-2 * time.Minute)
		require.NoError(t, os.Chtimes(lockDir, old, old))
		f := newFixture(t, WithRefreshLock(lockDir), WithLockTimeout(time.Second))
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		_, err := f.m.SwitchTo("bob", "r")
		require.NoError(t, err)
		assert.NoDirExists(t, lockDir)
	})
}

func TestSweepRemovesOldLeftovers(t *testing.T) {
	f := newFixture(t, withSweepAge(time.Minute), WithSlotTemplate("slots/{sub}.json"))
	bob := writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	old := time.Now().Add(-2 * time.Minute)
	mk := func(path string, data []byte, age time.Time) string {
		writeFile(t, path, data)
		require.NoError(t, os.Chtimes(path, age, age))
		return path
	}
	partial := mk(filepath.Join(f.dir, "slots", ".bob.json"+tmpMarker+"123"), []byte(`{"claudeAiOauth":`), old)
	young := mk(filepath.Join(f.dir, "."+DefaultLiveName+tmpMarker+"456"), []byte("x"), time.Now())
	dupLink := mk(filepath.Join(f.dir, "."+DefaultLiveName+tmpLinkMarker+"a"), bob, old)
	onlyCopy := claudeDoc(fresh, "rt-only-in-leftover")
	orphan := mk(filepath.Join(f.dir, "."+DefaultLiveName+tmpLinkMarker+"b"), onlyCopy, old)
	linkLeft := filepath.Join(f.dir, "."+DefaultLiveName+tmpLinkMarker+"c")
	require.NoError(t, os.Symlink("slots/bob.json", linkLeft))
	lchtimes(t, linkLeft, old)
	foreign := mk(filepath.Join(f.dir, ".credentials.json.tmp.1234.5678"), []byte("cli's own temp"), old)
	workDir := filepath.Join(f.dir, "."+DefaultLiveName+tmpMarker+"dryrun-9")
	mk(filepath.Join(workDir, "slots", "bob.json"), bob, old)
	require.NoError(t, os.Chtimes(workDir, old, old))

	_, err := f.m.SwitchTo("bob", "r")
	require.NoError(t, err)

	assert.NoFileExists(t, partial)
	assert.NoFileExists(t, dupLink)
	assert.NoFileExists(t, orphan)
	assert.NoFileExists(t, linkLeft)
	assert.NoDirExists(t, workDir, "an abandoned working directory is removed")
	assert.FileExists(t, young, "a temp file younger than a minute may belong to a running operation")
	assert.FileExists(t, foreign, "a file the package did not write is never touched")
	kept, err := os.ReadFile(f.m.LivePath() + prevSuffix)
	require.NoError(t, err)
	assert.Equal(t, onlyCopy, kept, "an unverified leftover of a swap is rescued, not deleted")
}

func TestLeftoversNeverBlockOrMatch(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	// Leftovers a killed process could leave, at their real names.
	for _, name := range []string{
		"." + DefaultLiveName + tmpLinkMarker + "x",
		".." + DefaultLiveName + ".bob" + tmpMarker + "1",
		".." + DefaultLiveName + ".bob.fingerprint.json" + tmpMarker + "2",
		".." + DefaultLiveName + ".bob.prev" + tmpMarker + "3",
	} {
		writeFile(t, filepath.Join(f.dir, name), []byte("{}"))
	}
	subs, err := DiscoverSubscriptions(f.dir, DefaultSlotTemplate)
	require.NoError(t, err)
	assert.Equal(t, []string{"bob"}, subs)
	assert.Equal(t, []string{"bob"}, f.m.AvailableSubscriptions())
	_, err = f.m.SwitchTo("bob", "r")
	require.NoError(t, err)
	_, err = f.m.CaptureSlotFingerprint("bob")
	require.NoError(t, err)
}
