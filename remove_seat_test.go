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

// Restore, like Remove and SwitchTo, recovers the sub's ended lease's seat
// first: the seat's newest login comes back (and is kept as the backup the
// restore makes of the slot) before the restored login goes in, so that a
// later recovery does not put the seat's login over the operator's choice.
func TestRestoreRecoversADeadSeatFirst(t *testing.T) {
	f := leaseFixture(t)
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("alice"))
	require.NoError(t, err)
	cliRefresh(t, seat, fresh.Add(30*time.Hour), "rt-alice-1") // spends rt-alice-0
	require.NoError(t, l.File().Close())                       // the lessee died
	writeFile(t, f.slot("alice")+prevSuffix, claudeDoc(fresh.Add(20*time.Hour), "rt-alice-x"))

	require.NoError(t, f.m.Restore(filepath.Base(f.slot("alice"))+prevSuffix, "alice"))
	assert.Equal(t, "rt-alice-x", refreshTokenOf(mustRead(t, f.slot("alice"))), "the restored login")
	_, err = os.Stat(filepath.Join(seat, DefaultLiveName))
	assert.ErrorIs(t, err, os.ErrNotExist, "the seat no longer holds the login")

	l2, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub("bob"))
	require.NoError(t, err)
	defer func() { _ = l2.Release() }()
	assert.Equal(t, "rt-alice-x", refreshTokenOf(mustRead(t, f.slot("alice"))), "a later recovery leaves the restored login")
	backups, err := f.m.Backups()
	require.NoError(t, err)
	found := false
	for _, b := range backups {
		data, err := os.ReadFile(filepath.Join(f.m.CredsDir(), b.Name))
		found = found || err == nil && refreshTokenOf(data) == "rt-alice-1"
	}
	assert.True(t, found, "the seat's newest login is kept")
}

// A dead seat's CLI lock (a CLI killed mid-refresh) is waited for before
// the restore takes any lock at home, as a switch does: home's refresh is
// never held up by it.
func TestRestoreWaitsForADeadSeatsLockWithoutHoldingHomes(t *testing.T) {
	f := leaseFixture(t, WithLockTimeout(300*time.Millisecond))
	writeSlot(t, f.slot("bob")+prevSuffix, fresh.Add(-time.Hour), "rt-bob-old")
	dead := seatDir(t)
	l, err := f.m.Lease(context.Background(), dead, LeaseSub("bob"))
	require.NoError(t, err)
	require.NoError(t, os.Mkdir(filepath.Join(dead, claudeRefreshLock), 0o755))
	require.NoError(t, l.File().Close())
	done := make(chan error, 1)
	go func() { done <- f.m.Restore(DefaultLiveName+".bob"+prevSuffix, "bob", Force()) }()
	time.Sleep(150 * time.Millisecond)
	homeLock := filepath.Join(f.dir, claudeRefreshLock)
	assert.NoError(t, os.Mkdir(homeLock, 0o755), "home's refresh lock is free while the restore waits")
	_ = os.Remove(homeLock)
	<-done
}
