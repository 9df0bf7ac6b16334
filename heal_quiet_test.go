package credslots

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHealDeferredTakesNoCLILock: a busy-signal defers a heal whatever the
// locks would show, so a heal refused for it takes none of the CLI's locks,
// also after the package's first change (when the look without locks is
// otherwise skipped): watch retries a deferred heal every --retry while the
// CLI works, and must not take its refresh lock each time. The checks
// before the guard still refuse first.
func TestHealDeferredTakesNoCLILock(t *testing.T) {
	busy := true
	f := newFixture(t, WithLockTimeout(200*time.Millisecond), WithLockGuard(func() []string {
		if busy {
			return []string{"agent-1"}
		}
		return nil
	}))
	writeSlot(t, f.slot("bob"), fresh, "rt-bob")
	writeSlot(t, f.slot("alice"), fresh, "rt-alice")
	_, err := f.m.SwitchTo("bob", "r", Force())
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(f.dir, privateDirName, "lock"), "after the first change")

	_, err = f.m.HealDrift()
	assert.ErrorIs(t, err, ErrNoDrift, "no drift comes before the guard")

	refreshLock := filepath.Join(f.dir, claudeRefreshLock)
	require.NoError(t, os.Mkdir(refreshLock, 0o755)) // the CLI's refresh, under way
	f.refresh(t, claudeDoc(fresh.Add(time.Hour), "rt-bob-2"))
	for i := 0; i < 3; i++ {
		start := time.Now()
		res, err := f.m.HealDrift()
		require.ErrorIs(t, err, ErrDeferred)
		assert.Equal(t, []string{"agent-1"}, res.DeferredLocks)
		assert.Less(t, time.Since(start), 100*time.Millisecond, "no lock waited for")
	}
	assert.DirExists(t, refreshLock, "the CLI's lock is left alone")

	busy = false
	_, err = f.m.HealDrift()
	assert.ErrorIs(t, err, ErrLockTimeout, "without the busy-signal, the heal waits for the CLI's lock")
	require.NoError(t, os.Remove(refreshLock))
	_, err = f.m.HealDrift()
	require.NoError(t, err)
	assert.Equal(t, ".credentials.json.bob", f.readlink(t))
}
