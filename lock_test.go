package credslots

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// holdLock takes the manager's lock file the way another process would.
func holdLock(t *testing.T, m *Manager) func() {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(m.lockPath), 0o700))
	unlock, ok, err := disk.TryLock(m.lockPath)
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
	require.NoError(t, os.Mkdir(filepath.Join(f.dir, ".credslots"), 0o700))
	require.NoError(t, os.Symlink(victim, f.m.lockPath))
	_, err := f.m.SwitchTo("bob", "r")
	require.Error(t, err, "a symlinked lock file is refused, not followed")
	data, rerr := os.ReadFile(victim)
	require.NoError(t, rerr)
	assert.Equal(t, "keep", string(data))
}

func TestPrivateDirMustBeADirectory(t *testing.T) {
	f := newFixture(t)
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	elsewhere := t.TempDir()
	require.NoError(t, os.Symlink(elsewhere, filepath.Join(f.dir, ".credslots")))
	_, err := f.m.SwitchTo("bob", "r")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a directory")
	ents, rerr := os.ReadDir(elsewhere)
	require.NoError(t, rerr)
	assert.Empty(t, ents, "nothing is written through a symlinked private directory")
	assert.Equal(t, "", f.readlink(t))
}

// claudeLockDirs are Claude Code's three lock directories for a fixture.
func claudeLockDirs(t *testing.T, f *fixture) []string {
	t.Helper()
	real, err := filepath.EvalSymlinks(f.dir)
	require.NoError(t, err)
	return []string{
		filepath.Join(f.dir, ".oauth_refresh.lock"),
		real + ".lock",
		filepath.Join(f.dir, ".storage-write.lock"),
	}
}

func TestClaudeCodeLocks(t *testing.T) {
	t.Run("held while changing and removed after", func(t *testing.T) {
		f := newFixture(t)
		dirs := claudeLockDirs(t, f)
		var held []bool
		f.m.cfg.onSwitch = func(string, string) {
			for _, d := range dirs {
				fi, err := os.Stat(d)
				held = append(held, err == nil && fi.IsDir())
			}
		}
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		_, err := f.m.SwitchTo("bob", "r")
		require.NoError(t, err)
		assert.Equal(t, []bool{true, true, true}, held)
		for _, d := range dirs {
			assert.NoDirExists(t, d)
		}
	})
	t.Run("taken in Claude Code's order", func(t *testing.T) {
		ffs := &faultFS{inner: disk.OS{}, failAt: -1, ops: map[string]bool{"mkdir": true}}
		f := newFixture(t, withFS(ffs))
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		_, err := f.m.SwitchTo("bob", "r")
		require.NoError(t, err)
		dirs := claudeLockDirs(t, f)
		want := []string{"mkdir .credslots"}
		for _, d := range dirs {
			want = append(want, "mkdir "+filepath.Base(d))
		}
		assert.Equal(t, want, ffs.log)
	})
	for i, name := range []string{"refresh lock", "legacy lock", "storage-write lock"} {
		t.Run("a fresh "+name+" held by the CLI times out", func(t *testing.T) {
			f := newFixture(t, WithLockTimeout(60*time.Millisecond))
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			dir := claudeLockDirs(t, f)[i]
			require.NoError(t, os.Mkdir(dir, 0o700))
			_, err := f.m.SwitchTo("bob", "r")
			require.ErrorIs(t, err, ErrLockTimeout)
			assert.DirExists(t, dir, "someone else's lock is left alone")
			for j, other := range claudeLockDirs(t, f) {
				if j != i {
					assert.NoDirExists(t, other, "locks taken before are released")
				}
			}
			assert.Equal(t, "", f.readlink(t))
			unlock, ok, err := disk.TryLock(f.m.lockPath)
			require.NoError(t, err)
			assert.True(t, ok, "the package's own lock was released")
			_ = unlock()
		})
	}
	t.Run("an abandoned lock is taken over", func(t *testing.T) {
		f := newFixture(t, WithLockTimeout(time.Second))
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		for _, d := range claudeLockDirs(t, f) {
			require.NoError(t, os.Mkdir(d, 0o700))
			old := time.Now().Add(-61 * time.Second) // past 2.1.332's 60 s
			require.NoError(t, os.Chtimes(d, old, old))
		}
		_, err := f.m.SwitchTo("bob", "r")
		require.NoError(t, err)
		for _, d := range claudeLockDirs(t, f) {
			assert.NoDirExists(t, d)
		}
	})
	t.Run("a lock younger than its stale time is not taken over", func(t *testing.T) {
		f := newFixture(t, WithLockTimeout(100*time.Millisecond))
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		d := claudeLockDirs(t, f)[2] // stale after 15 s, not 10 s
		require.NoError(t, os.Mkdir(d, 0o700))
		old := time.Now().Add(-12 * time.Second)
		require.NoError(t, os.Chtimes(d, old, old))
		_, err := f.m.SwitchTo("bob", "r")
		require.ErrorIs(t, err, ErrLockTimeout)
		assert.DirExists(t, d)
	})
	t.Run("a stale file at the legacy lock's path is gone without, as Claude Code does", func(t *testing.T) {
		f := newFixture(t, WithLockTimeout(time.Second))
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		legacy := claudeLockDirs(t, f)[1]
		writeFile(t, legacy, nil)
		old := time.Now().Add(-time.Hour)
		require.NoError(t, os.Chtimes(legacy, old, old))
		st, err := f.m.Status()
		require.NoError(t, err)
		assert.NotContains(t, strings.Join(st.Problems, "\n"), "changes cannot be made")
		res, err := f.m.SwitchTo("bob", "r")
		require.NoError(t, err)
		assert.True(t, res.OK)
		fi, err := os.Lstat(legacy)
		require.NoError(t, err)
		assert.True(t, fi.Mode().IsRegular(), "left as it was")
	})
	t.Run("a non-directory at a lock path is an error", func(t *testing.T) {
		f := newFixture(t, WithLockTimeout(time.Second))
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		writeFile(t, claudeLockDirs(t, f)[0], []byte("x"))
		_, err := f.m.SwitchTo("bob", "r")
		require.Error(t, err)
		assert.NotErrorIs(t, err, ErrLockTimeout)
		assert.Contains(t, err.Error(), "not a lock directory")
	})
}

func TestCLILockHeartbeat(t *testing.T) {
	// Stale times scaled down 50 times: 200 ms, refreshed every 100 ms.
	f := newFixture(t, withStaleScale(0.02))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	dir := claudeLockDirs(t, f)[0]
	var mtimes []time.Time
	f.m.cfg.onSwitch = func(string, string) {
		for i := 0; i < 8; i++ {
			fi, err := os.Stat(dir)
			if err == nil {
				mtimes = append(mtimes, fi.ModTime())
				assert.Less(t, time.Since(fi.ModTime()), 200*time.Millisecond, "never stale while held")
			}
			time.Sleep(60 * time.Millisecond)
		}
	}
	_, err := f.m.SwitchTo("bob", "r")
	require.NoError(t, err)
	require.Len(t, mtimes, 8)
	assert.True(t, mtimes[7].After(mtimes[0]), "the mtime was refreshed while held")
	assert.NoDirExists(t, dir)
}

func TestCLILockTakenOverAbandonsTheChange(t *testing.T) {
	for _, op := range []string{"switch", "heal"} {
		t.Run(op, func(t *testing.T) {
			ffs := &faultFS{inner: disk.OS{}, failAt: -1}
			// Stale times scaled 100 times down: nobody could take a held
			// lock over until 50 ms after its mtime (10 s for real), so a
			// takeover can only come once the change has stalled that long.
			f := newFixture(t, withFS(ffs), withStaleScale(0.01))
			writeSlot(t, f.slot("bob"), fresh, "rt-bob")
			alice := writeSlot(t, f.slot("alice"), fresh, "rt-alice")
			f.link(t, "alice")
			dir := claudeLockDirs(t, f)[0]
			refreshed := claudeDoc(fresh.Add(time.Hour), "rt-alice-2")
			if op == "heal" {
				f.refresh(t, refreshed)
			}
			// Another process takes the refresh lock over right after the
			// intent is journaled, before anything changes: the change
			// stalls there past the time nobody could have (its heartbeat
			// held back meanwhile, as in a stopped process), and the
			// other process sets the lock's mtime as its own.
			var theirs time.Time
			var armed atomic.Bool
			taken := make(chan struct{})
			ffs.before = func(o, name string) {
				if o == "statlock" && name == dir && armed.Load() {
					<-taken // the heartbeat, while the change is stalled
				}
				if o == "append" && theirs.IsZero() {
					armed.Store(true)
					time.Sleep(80 * time.Millisecond)
					theirs = time.Now().Add(time.Second).Truncate(time.Millisecond)
					require.NoError(t, os.Chtimes(dir, theirs, theirs))
					armed.Store(false)
					close(taken)
				}
			}
			var err error
			if op == "switch" {
				_, err = f.m.SwitchTo("bob", "r")
				assert.Equal(t, ".credentials.json.alice", f.readlink(t), "live path unchanged")
			} else {
				_, err = f.m.HealDriftTo("alice")
				data, rerr := os.ReadFile(f.m.LivePath())
				require.NoError(t, rerr)
				assert.Equal(t, refreshed, data, "live file unchanged")
				slot, rerr := os.ReadFile(f.slot("alice"))
				require.NoError(t, rerr)
				assert.Equal(t, alice, slot, "slot unchanged")
			}
			require.ErrorIs(t, err, ErrLockLost)
			fi, serr := os.Stat(dir)
			require.NoError(t, serr, "the new holder's lock is not removed")
			assert.True(t, fi.ModTime().Equal(theirs))
			entries, jerr := f.m.Journal()
			require.NoError(t, jerr)
			require.Len(t, entries, 2)
			assert.Equal(t, phaseFailed, entries[1].Phase)
			_, ok := f.m.LastActive()
			assert.False(t, ok)
		})
	}
}

func TestCLILockLeftByAKilledHolder(t *testing.T) {
	// A holder killed mid-change leaves its lock directory with a recent
	// mtime; it is taken over once stale (200 ms here, 10 s for real).
	f := newFixture(t, withStaleScale(0.02), WithLockTimeout(5*time.Second))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	dir := claudeLockDirs(t, f)[0]
	require.NoError(t, os.Mkdir(dir, 0o700))
	start := time.Now()
	_, err := f.m.SwitchTo("bob", "r")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "waited for the lock to go stale")
	assert.NoDirExists(t, dir)
}

func TestCodexAndGeminiLocks(t *testing.T) {
	t.Run("codex holds auth.lock", func(t *testing.T) {
		f := newFixture(t, WithFormat(CodexCLI), WithLockTimeout(60*time.Millisecond))
		writeFile(t, f.slot("bob"), codexDoc(fresh, "acct-bob"))
		lock := filepath.Join(f.dir, "auth.lock")
		unlock, ok, err := disk.TryLock(lock)
		require.NoError(t, err)
		require.True(t, ok)
		_, err = f.m.SwitchTo("bob", "r")
		require.ErrorIs(t, err, ErrLockTimeout, "held by Codex")
		_ = unlock()
		_, err = f.m.SwitchTo("bob", "r")
		require.NoError(t, err)
		assert.FileExists(t, lock, "Codex's lock file stays, as Codex leaves it")
		assert.NoFileExists(t, f.m.LivePath()+".lock", "auth.json.lock is Codex's commit lock, never taken")
	})
	t.Run("gemini takes none", func(t *testing.T) {
		ffs := &faultFS{inner: disk.OS{}, failAt: -1, ops: map[string]bool{"mkdir": true, "lock": true}}
		f := newFixture(t, WithFormat(GeminiCLI), withFS(ffs))
		writeFile(t, f.slot("bob"), geminiDoc(fresh, "rt-bob"))
		_, err := f.m.SwitchTo("bob", "r")
		require.NoError(t, err)
		assert.Equal(t, []string{"mkdir .credslots", "lock lock"}, ffs.log)
	})
	t.Run("off", func(t *testing.T) {
		ffs := &faultFS{inner: disk.OS{}, failAt: -1, ops: map[string]bool{"mkdir": true, "lock": true}}
		f := newFixture(t, withFS(ffs), WithCLILocks(false))
		writeSlot(t, f.slot("bob"), fresh, "rt-bob")
		_, err := f.m.SwitchTo("bob", "r")
		require.NoError(t, err)
		assert.Equal(t, []string{"mkdir .credslots", "lock lock"}, ffs.log)
	})
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
