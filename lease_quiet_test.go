package credslots

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLeaseSyncOfASeatWithNothingToWriteBackTakesNoLockTwice: a seat whose
// file is missing (the CLI logged out), blank (a failed refresh) or an
// older copy of the login holds nothing to write back. Following it, as
// run does every couple of seconds, must not take the CLI's locks on each
// look: a missing file is looked at without them, and a file already read
// under them is not read under them again while it stays as it was. A
// newer login written there afterwards is still read under the locks, once
// the refresh that wrote it let them go.
func TestLeaseSyncOfASeatWithNothingToWriteBackTakesNoLockTwice(t *testing.T) {
	tests := []struct {
		name  string
		leave func(t *testing.T, seat string)
	}{
		{"missing", func(t *testing.T, seat string) {
			require.NoError(t, os.Remove(filepath.Join(seat, DefaultLiveName)))
		}},
		{"blank", func(t *testing.T, seat string) {
			doc := fmt.Sprintf(`{"claudeAiOauth":{"accessToken":"","refreshToken":"","expiresAt":%d}}`, fresh.Add(20*time.Hour).UnixMilli())
			writeFile(t, filepath.Join(seat, DefaultLiveName), []byte(doc))
		}},
		{"older copy", func(t *testing.T, seat string) {
			cliRefresh(t, seat, fresh, "rt-bob-0") // the handed login, with an earlier expiry than the slot's
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := leaseFixture(t, WithLockTimeout(200*time.Millisecond))
			seat := seatDir(t)
			l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
			require.NoError(t, err)
			defer l.Release()
			slotBefore, err := os.ReadFile(f.slot("bob"))
			require.NoError(t, err)
			tt.leave(t, seat)
			require.NoError(t, l.Sync(), "looked at once")

			refreshLock := filepath.Join(seat, claudeRefreshLock)
			require.NoError(t, os.Mkdir(refreshLock, 0o755)) // the CLI's refresh, under way
			for i := 0; i < 3; i++ {
				start := time.Now()
				require.NoError(t, l.Sync(), "nothing new: no lock waited for")
				assert.Less(t, time.Since(start), 100*time.Millisecond)
			}
			assert.DirExists(t, refreshLock, "the CLI's lock is left alone")
			slot, err := os.ReadFile(f.slot("bob"))
			require.NoError(t, err)
			assert.Equal(t, slotBefore, slot, "nothing written back")

			cliRefresh(t, seat, fresh.Add(20*time.Hour), "rt-bob-1")
			assert.ErrorIs(t, l.Sync(), ErrLockTimeout, "a newer login is read under the locks")
			require.NoError(t, os.Remove(refreshLock))
			require.NoError(t, l.Sync())
			slot, err = os.ReadFile(f.slot("bob"))
			require.NoError(t, err)
			assert.Equal(t, "rt-bob-1", refreshTokenOf(slot))
		})
	}
}
