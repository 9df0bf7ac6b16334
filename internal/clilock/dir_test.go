package clilock

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// spec is a refresh-like lock at dir/name: stale after stale, refreshed
// every beat.
func spec(dir, name string, stale, beat time.Duration) Spec {
	return Spec{Path: filepath.Join(dir, name), Name: "test lock", Stale: stale, Beat: beat}
}

func take(t *testing.T, fsys *countFS, s Spec, wait time.Duration) (*Dir, error) {
	t.Helper()
	start := time.Now()
	d, skipped, err := Take(context.Background(), fsys, s, start, start.Add(wait), nil)
	require.False(t, skipped)
	return d, err
}

// otherTakesOver does what another holder does once the lock is stale:
// removes it and makes it again.
func otherTakesOver(t *testing.T, path string) {
	t.Helper()
	require.NoError(t, os.Remove(path))
	require.NoError(t, os.Mkdir(path, 0o700))
}

func TestTakeVerifyReleaseAtTheFloor(t *testing.T) {
	fsys := &countFS{}
	s := spec(t.TempDir(), ".oauth_refresh.lock", time.Minute, 5*time.Second)
	d, err := take(t, fsys, s, time.Second)
	require.NoError(t, err)
	assert.Equal(t, []string{"mkdir .oauth_refresh.lock", "statlock .oauth_refresh.lock"}, fsys.ops(), "a mkdir and one stat")
	st := d.Stat()
	assert.True(t, st.IsDir())
	require.NoError(t, d.Verify())
	assert.Equal(t, []string{"statlock .oauth_refresh.lock"}, fsys.ops(), "one look")
	d.Release()
	assert.Equal(t, []string{"statlock .oauth_refresh.lock", "rmdir .oauth_refresh.lock"}, fsys.ops(), "a look, then one rmdir")
	assert.NoDirExists(t, s.Path)
	d.Release()
	assert.Empty(t, fsys.ops(), "a second release does nothing")
}

// A lock is not only taken over once stale: it may be removed by hand, or
// by a paused CLI whose lock this holder took over releasing it (a plain
// rmdir), and made again by another party at once. Verify finds it at
// once, and Release leaves the new holder's lock alone.
func TestALockMadeAgainIsFoundAtOnce(t *testing.T) {
	for _, how := range []string{"made again", "mtime set"} {
		t.Run(how, func(t *testing.T) {
			fsys := &countFS{}
			// The heartbeat is far off, as in a stopped process.
			s := spec(t.TempDir(), "x.lock", time.Hour, time.Hour)
			d, err := take(t, fsys, s, time.Second)
			require.NoError(t, err)
			if how == "made again" {
				otherTakesOver(t, s.Path)
			} else {
				theirs := time.Now().Add(time.Second)
				require.NoError(t, os.Chtimes(s.Path, theirs, theirs))
			}
			fsys.ops()
			err = d.Verify()
			require.ErrorIs(t, err, ErrLost)
			assert.Equal(t, []string{"statlock x.lock"}, fsys.ops(), "looked, once")
			d.Release()
			assert.DirExists(t, s.Path, "the new holder's lock is never removed")
			assert.Empty(t, fsys.ops(), "a lock known lost is not looked at again")
		})
	}
}

func TestReleaseLooksFirst(t *testing.T) {
	fsys := &countFS{}
	s := spec(t.TempDir(), "x.lock", time.Hour, time.Hour)
	d, err := take(t, fsys, s, time.Second)
	require.NoError(t, err)
	fsys.ops()
	d.Release()
	assert.Equal(t, []string{"statlock x.lock", "rmdir x.lock"}, fsys.ops())
}

func TestHeartbeatIsATimer(t *testing.T) {
	fsys := &countFS{}
	s := spec(t.TempDir(), "x.lock", time.Second, 20*time.Millisecond)
	before := runtime.NumGoroutine()
	d, err := take(t, fsys, s, time.Second)
	require.NoError(t, err)
	assert.LessOrEqual(t, runtime.NumGoroutine(), before, "no goroutine per lock")
	first := d.Stat().Mtime
	worst := time.Duration(0)
	for i := 0; i < 15; i++ {
		time.Sleep(10 * time.Millisecond)
		fi, err := os.Stat(s.Path)
		require.NoError(t, err)
		worst = max(worst, time.Since(fi.ModTime()))
	}
	assert.True(t, d.Stat().Mtime.After(first), "refreshed while held")
	assert.Less(t, worst, 500*time.Millisecond, "never stale while held")
	require.NoError(t, d.Verify(), "its own refreshes are not a takeover")
	d.Release()
	assert.NoDirExists(t, s.Path)
}

// A refresh that fails once is tried again: the lock never goes stale
// while held.
func TestHeartbeatRetriesAFailedRefresh(t *testing.T) {
	fsys := &countFS{chtimesFails: 1}
	s := spec(t.TempDir(), "x.lock", time.Minute, 20*time.Millisecond)
	d, err := take(t, fsys, s, time.Second)
	require.NoError(t, err)
	defer d.Release()
	first := d.Stat().Mtime
	deadline := time.Now().Add(retryBeat + 2*time.Second)
	for !d.Stat().Mtime.After(first) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	fi, err := os.Stat(s.Path)
	require.NoError(t, err)
	assert.True(t, fi.ModTime().After(first), "refreshed again after the failed refresh")
	require.NoError(t, d.Verify())
}

// A refresh whose touch lands and whose stat after it fails: the lock is
// still this holder's, refreshed again, and removed at its release.
func TestHeartbeatKeepsALockWhoseStatFailedAfterItsTouch(t *testing.T) {
	fsys := &countFS{}
	s := spec(t.TempDir(), "x.lock", time.Minute, 20*time.Millisecond)
	d, err := take(t, fsys, s, time.Second)
	require.NoError(t, err)
	fsys.mu.Lock()
	fsys.statAfterChtimesFails = 1
	fsys.mu.Unlock()
	time.Sleep(retryBeat + 500*time.Millisecond)
	require.NoError(t, d.Verify(), "its own touch is no takeover")
	d.Release()
	assert.NoDirExists(t, s.Path, "released: removed")
}

func TestHeartbeatStopsOnATakeover(t *testing.T) {
	fsys := &countFS{}
	s := spec(t.TempDir(), "x.lock", time.Second, 10*time.Millisecond)
	d, err := take(t, fsys, s, time.Second)
	require.NoError(t, err)
	otherTakesOver(t, s.Path)
	theirs := time.Now().Add(-time.Minute).Truncate(time.Second)
	require.NoError(t, os.Chtimes(s.Path, theirs, theirs))
	time.Sleep(50 * time.Millisecond)
	fi, err := os.Stat(s.Path)
	require.NoError(t, err)
	assert.True(t, fi.ModTime().Equal(theirs), "a compromised lock is never refreshed")
	require.ErrorIs(t, d.Verify(), ErrLost)
	d.Release()
	assert.DirExists(t, s.Path)
}

func TestStaleAndFreshLocks(t *testing.T) {
	t.Run("a fresh lock held by another times out", func(t *testing.T) {
		fsys := &countFS{}
		s := spec(t.TempDir(), "x.lock", time.Minute, time.Second)
		require.NoError(t, os.Mkdir(s.Path, 0o700))
		_, err := take(t, fsys, s, 50*time.Millisecond)
		require.ErrorIs(t, err, ErrTimeout)
		assert.Contains(t, err.Error(), "counts as abandoned once 1m0s old")
		assert.DirExists(t, s.Path)
	})
	t.Run("an abandoned lock is taken over", func(t *testing.T) {
		fsys := &countFS{}
		s := spec(t.TempDir(), "x.lock", time.Minute, time.Second)
		require.NoError(t, os.Mkdir(s.Path, 0o700))
		old := time.Now().Add(-61 * time.Second)
		require.NoError(t, os.Chtimes(s.Path, old, old))
		d, err := take(t, fsys, s, time.Second)
		require.NoError(t, err)
		assert.True(t, time.Since(d.Stat().Mtime) < time.Minute, "made again, fresh")
		d.Release()
	})
	t.Run("a file at the path is no lock", func(t *testing.T) {
		fsys := &countFS{}
		s := spec(t.TempDir(), "x.lock", time.Minute, time.Second)
		require.NoError(t, os.WriteFile(s.Path, []byte("x"), 0o600))
		_, err := take(t, fsys, s, time.Second)
		require.Error(t, err)
		assert.NotErrorIs(t, err, ErrTimeout)
		assert.Contains(t, err.Error(), "not a lock directory")
	})
	t.Run("a file at the legacy lock's path: held while fresh, then gone without", func(t *testing.T) {
		fsys := &countFS{}
		s := spec(t.TempDir(), "x.lock", time.Minute, time.Second)
		s.Legacy = true
		require.NoError(t, os.WriteFile(s.Path, []byte("x"), 0o600))
		_, err := take(t, fsys, s, 300*time.Millisecond)
		require.ErrorIs(t, err, ErrTimeout, "fresh: Claude Code counts it as held")
		assert.Contains(t, err.Error(), "is not a lock directory, and Claude Code counts it as held")
		old := time.Now().Add(-61 * time.Second)
		require.NoError(t, os.Chtimes(s.Path, old, old))
		start := time.Now()
		d, skipped, err := Take(context.Background(), fsys, s, start, start.Add(time.Second), nil)
		require.NoError(t, err)
		assert.True(t, skipped, "stale: Claude Code's rmdir fails, and it goes on without it")
		assert.Nil(t, d)
		assert.FileExists(t, s.Path, "left as it is")
	})
	t.Run("taken back at once when the caller proves it", func(t *testing.T) {
		fsys := &countFS{}
		s := spec(t.TempDir(), "x.lock", time.Minute, time.Second)
		require.NoError(t, os.Mkdir(s.Path, 0o700))
		start := time.Now()
		d, skipped, err := Take(context.Background(), fsys, s, start, start.Add(time.Second), func(string, disk.LockStat) bool { return true })
		require.NoError(t, err)
		require.False(t, skipped)
		assert.Less(t, time.Since(start), 500*time.Millisecond)
		d.Release()
	})
}
