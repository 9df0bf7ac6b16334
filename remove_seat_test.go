package credslots

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Spec 23: "its newest token always finds its way back to its slot". A
// lessee dies after its CLI refreshed in the seat (the slot's refresh
// token is spent); then the operator removes the sub. Remove recovers the
// ended lease's seat first, so the backup it keeps holds the newest login,
// not the spent one stranded beside a seat no configured sub leads to.
func TestRemoveRecoversTheNewestLoginFromADeadSeatFirst(t *testing.T) {
	f := leaseFixture(t)
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("alice"))
	require.NoError(t, err)
	cliRefresh(t, seat, fresh.Add(30*time.Hour), "rt-alice-1") // spends rt-alice-0
	require.NoError(t, l.File().Close())                       // the lessee died

	require.NoError(t, f.m.Remove("alice", "retire"))

	prev, err := os.ReadFile(f.slot("alice") + prevSuffix)
	require.NoError(t, err)
	assert.Equal(t, "rt-alice-1", refreshTokenOf(prev), "the backup holds the newest login")
	_, err = os.Stat(filepath.Join(seat, DefaultLiveName))
	assert.ErrorIs(t, err, os.ErrNotExist, "and the seat no longer holds it")
}
