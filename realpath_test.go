package credslots

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The creds dir's real path is kept between changes only while it still
// names the creds dir itself. Here the creds dir is a symlink to
// base/a/claude; after a switch the directory moves to base/b/claude and
// the link follows it (or base/a/claude becomes a symlink to it). Claude
// Code then takes its legacy lock at base/b/claude.lock, and the next
// switch must wait for that lock, not take one at the old path.
func TestRealPathFollowsAMovedCredsDir(t *testing.T) {
	for _, how := range []string{"link repointed", "old path a link to the new"} {
		t.Run(how, func(t *testing.T) {
			base := t.TempDir()
			oldReal, newReal := filepath.Join(base, "a", "claude"), filepath.Join(base, "b", "claude")
			require.NoError(t, os.MkdirAll(oldReal, 0o700))
			require.NoError(t, os.MkdirAll(filepath.Dir(newReal), 0o700))
			dir := filepath.Join(base, "dot-claude")
			require.NoError(t, os.Symlink(oldReal, dir))
			m, err := New(WithCredsDir(dir), WithSubscriptions("bob", "alice"), WithLockTimeout(200*time.Millisecond), WithClock(fixedClock))
			require.NoError(t, err)
			writeSlot(t, m.SlotPath("bob"), fresh, "rt-bob")
			writeSlot(t, m.SlotPath("alice"), fresh, "rt-alice")
			_, err = m.SwitchTo("bob", "first")
			require.NoError(t, err)

			require.NoError(t, os.Rename(oldReal, newReal))
			if how == "link repointed" {
				require.NoError(t, os.Remove(dir))
				require.NoError(t, os.Symlink(newReal, dir))
			} else {
				require.NoError(t, os.Symlink(newReal, oldReal))
			}
			require.NoError(t, os.Mkdir(newReal+lockSuffix, 0o700)) // Claude Code's, fresh

			_, err = m.SwitchTo("alice", "second")
			require.ErrorIs(t, err, ErrLockTimeout, "the legacy lock at the new real path is waited for")
			_, err = os.Lstat(oldReal + lockSuffix)
			require.ErrorIs(t, err, os.ErrNotExist, "no lock taken at the old path")
		})
	}
}
