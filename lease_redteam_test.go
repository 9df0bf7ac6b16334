package credslots

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A lessee that died (no release) left a newer login in its seat while the
// slot's own token is still fresh: the slot's refresh token was consumed by
// the seat's refresh. SwitchTo must not point home at the consumed token.
func TestRedteamSwitchToRecoversADeadSeatFirst(t *testing.T) {
	for _, next := range []bool{false, true} {
		f := leaseFixture(t)
		seat := seatDir(t)
		l, err := f.m.Lease(context.Background(), seat, LeaseSub("alice"))
		require.NoError(t, err)
		cliRefresh(t, seat, fresh.Add(30*time.Hour), "rt-alice-1")
		require.NoError(t, l.File().Close(), "the lessee died")
		if next {
			_, err = f.m.SwitchNext("x")
		} else {
			_, err = f.m.SwitchTo("alice", "x")
		}
		require.NoError(t, err)
		require.Equal(t, "alice", f.activeSub(t))
		slot, err := os.ReadFile(f.slot("alice"))
		require.NoError(t, err)
		assert.Equal(t, "rt-alice-1", refreshTokenOf(slot), "home serves the newest token, never the consumed one")
	}
}

// A waiting Lease whose attempts all find the package's lock busy ends,
// when its context does, with ErrNoFreeSub (run's exit 75), not a nil
// refusal formatted into the error.
func TestRedteamLeaseWaitOnABusyLockEndsWithNoFreeSub(t *testing.T) {
	f := leaseFixture(t, WithLockTimeout(50*time.Millisecond))
	m2, err := New(WithCredsDir(f.dir), WithSubscriptions("erik", "bob", "alice"), WithLockTimeout(time.Minute))
	require.NoError(t, err)
	mu, err := m2.beginMutation()
	require.NoError(t, err)
	defer mu.end()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = f.m.Lease(ctx, seatDir(t), LeaseWait())
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrNoFreeSub)
	assert.NotContains(t, err.Error(), "%!", "no nil error formatted in")
	assert.False(t, strings.Contains(err.Error(), "<nil>"))
}

// --wait bounds the whole Lease: a package lock another change holds for
// longer than the wait must not keep a waiting Lease past its context (the
// lock timeout is 10 s by default).
func TestRedteamLeaseWaitIsBoundedByItsContextOnABusyLock(t *testing.T) {
	f := leaseFixture(t)
	m2, err := New(WithCredsDir(f.dir), WithSubscriptions("erik", "bob", "alice"), WithLockTimeout(time.Minute))
	require.NoError(t, err)
	mu, err := m2.beginMutation()
	require.NoError(t, err)
	defer mu.end()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = f.m.Lease(ctx, seatDir(t), LeaseWait())
	assert.Less(t, time.Since(start), 3*time.Second, "ended with its context, not the lock timeout")
	assert.ErrorIs(t, err, ErrNoFreeSub)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}
