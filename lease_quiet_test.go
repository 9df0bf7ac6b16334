package credslots

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/disk"
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

// TestLeaseWaitingTakesNoLockForASeatWithNothingToRecover: a waiting Lease
// makes an attempt, under the locks, only when a sub looks free. The seat
// of an ended lease of a sub that is not usable (resting) looks worth one
// only while it holds a login to recover: the file Claude Code leaves there
// with its other state (MCP logins) holds none, and must not make every
// poll take the CLI's refresh lock at home.
func TestLeaseWaitingTakesNoLockForASeatWithNothingToRecover(t *testing.T) {
	ffs := &faultFS{inner: disk.OS{}, failAt: -1}
	f := leaseFixture(t, withFS(ffs))
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("erik"))
	require.NoError(t, err)
	cliRefresh(t, seat, fresh.Add(time.Hour), "rt-erik-1")
	data, err := os.ReadFile(filepath.Join(seat, DefaultLiveName))
	require.NoError(t, err)
	writeFile(t, filepath.Join(seat, DefaultLiveName), append([]byte(`{"mcpOAuth":{"srv":{"accessToken":"mcp"}},`), data[1:]...))
	require.NoError(t, l.Release())
	require.FileExists(t, filepath.Join(seat, DefaultLiveName), "Claude Code's other state stays in the seat")
	require.NoError(t, f.m.Rest("erik", testNow.Add(time.Hour), "quota"))
	for _, sub := range []string{"bob", "alice"} {
		held, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub(sub))
		require.NoError(t, err)
		defer held.Release()
	}

	assert.Equal(t, 1, waitingLeaseTakesHomesLock(t, f, ffs), "the refresh lock at home taken for the first attempt only, not on every poll")
}

// waitingLeaseTakesHomesLock runs a Lease that waits 400 ms for a free sub
// and finds none, and returns how often it took home's refresh lock (ffs
// is f's fault seam): once for its first attempt, and once more for each
// poll that looked worth an attempt.
func waitingLeaseTakesHomesLock(t *testing.T, f *fixture, ffs *faultFS) int {
	t.Helper()
	homeLock := filepath.Join(f.dir, claudeRefreshLock)
	var mu sync.Mutex
	taken := 0
	ffs.before = func(op, name string) {
		if op == "mkdir" && name == homeLock {
			mu.Lock()
			taken++
			mu.Unlock()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	_, err := f.m.Lease(ctx, seatDir(t), LeaseWait())
	require.ErrorIs(t, err, ErrNoFreeSub)
	ffs.before = nil
	mu.Lock()
	defer mu.Unlock()
	return taken
}

// assertHomeRefreshLockFree asserts that Claude Code at home could take its
// refresh lock now, while the change that waits is stated in while.
func assertHomeRefreshLockFree(t *testing.T, f *fixture, while string) {
	t.Helper()
	homeLock := filepath.Join(f.dir, claudeRefreshLock)
	assert.NoError(t, os.Mkdir(homeLock, 0o755), "home's refresh lock is free while "+while)
	_ = os.Remove(homeLock)
}

// TestLeaseReleaseWaitsForTheSeatsLockWithoutHoldingHomes: a release that
// finds the seat's CLI lock held (a refresh there in flight, or left by a
// CLI killed in the middle of one) waits for it, up to the lock timeout,
// without holding the CLI's locks at home meanwhile: a refresh at home is
// not held up by a seat it has nothing to do with.
func TestLeaseReleaseWaitsForTheSeatsLockWithoutHoldingHomes(t *testing.T) {
	f := leaseFixture(t, WithLockTimeout(400*time.Millisecond))
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.NoError(t, err)
	seatLock := filepath.Join(seat, claudeRefreshLock)
	require.NoError(t, os.Mkdir(seatLock, 0o755)) // the seat's CLI, refreshing
	released := make(chan error, 1)
	go func() { released <- l.Release() }()

	time.Sleep(150 * time.Millisecond)
	assertHomeRefreshLockFree(t, f, "the release waits for the seat's")
	assert.ErrorIs(t, <-released, ErrLockTimeout)
	assert.FileExists(t, filepath.Join(seat, DefaultLiveName), "the login stays in the seat")

	require.NoError(t, os.Remove(seatLock))
	require.NoError(t, l.Release())
	assert.NoFileExists(t, filepath.Join(seat, DefaultLiveName))
}

// TestLeaseWaitsForTheSeatsLockWithoutHoldingHomes: a lease into a seat
// whose CLI lock is held (a seat used before, where a CLI was killed in the
// middle of a refresh) waits for that lock without holding the CLI's locks
// at home; with LeaseWait, it keeps waiting the same way.
func TestLeaseWaitsForTheSeatsLockWithoutHoldingHomes(t *testing.T) {
	for _, wait := range []bool{false, true} {
		t.Run(fmt.Sprintf("wait=%v", wait), func(t *testing.T) {
			f := leaseFixture(t, WithLockTimeout(300*time.Millisecond))
			seat := seatDir(t)
			require.NoError(t, os.MkdirAll(seat, 0o700))
			seatLock := filepath.Join(seat, claudeRefreshLock)
			require.NoError(t, os.Mkdir(seatLock, 0o755))
			opts := []LeaseOption{LeaseSub("bob")}
			ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
			defer cancel()
			if wait {
				opts = append(opts, LeaseWait())
			}
			leased := make(chan error, 1)
			go func() {
				l, err := f.m.Lease(ctx, seat, opts...)
				if err == nil {
					err = l.Release()
				}
				leased <- err
			}()

			homeFree := func() { assertHomeRefreshLockFree(t, f, "the lease waits for the seat's") }
			time.Sleep(150 * time.Millisecond)
			homeFree()
			if wait {
				time.Sleep(350 * time.Millisecond) // a later attempt
				homeFree()
			}
			err := <-leased
			if wait {
				assert.ErrorIs(t, err, ErrNoFreeSub)
			} else {
				assert.ErrorIs(t, err, ErrLockTimeout)
			}
			assert.NoFileExists(t, filepath.Join(seat, DefaultLiveName), "nothing handed out")
		})
	}
}

// TestLeaseLeavesAHeldLeasesSeatAlone: a lease asked for the seat another
// lease holds is refused at once, without touching that seat's CLI locks,
// which its CLI may hold.
func TestLeaseLeavesAHeldLeasesSeatAlone(t *testing.T) {
	f := leaseFixture(t, WithLockTimeout(300*time.Millisecond))
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.NoError(t, err)
	defer l.Release()
	seatLock := filepath.Join(seat, claudeRefreshLock)
	require.NoError(t, os.Mkdir(seatLock, 0o755)) // bob's CLI there, refreshing
	start := time.Now()
	_, err = f.m.Lease(context.Background(), seat, LeaseSub("alice"))
	assert.ErrorIs(t, err, ErrLeased)
	assert.Less(t, time.Since(start), 150*time.Millisecond, "refused without waiting for the seat's lock")
	assert.DirExists(t, seatLock)
	require.NoError(t, os.Remove(seatLock))
}

// TestLeaseWaitsForADeadSeatsLockWithoutHoldingHomes: the seat of a lease
// whose holders died (its CLI killed in the middle of a refresh, its lock
// left there) is recovered by the next lease; waiting for that seat's lock
// holds none of the CLI's locks at home.
func TestLeaseWaitsForADeadSeatsLockWithoutHoldingHomes(t *testing.T) {
	f := leaseFixture(t, WithLockTimeout(300*time.Millisecond))
	dead := deadSeat(t, f, "bob")

	leased := make(chan error, 1)
	go func() {
		l, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub("alice"))
		if err == nil {
			err = l.Release()
		}
		leased <- err
	}()
	time.Sleep(150 * time.Millisecond)
	assertHomeRefreshLockFree(t, f, "the lease waits for the dead seat's")
	assert.ErrorIs(t, <-leased, ErrLockTimeout)
	assert.FileExists(t, filepath.Join(dead, DefaultLiveName), "the dead seat's login waits for its recovery")

	require.NoError(t, os.Remove(filepath.Join(dead, claudeRefreshLock)))
	l, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub("alice"))
	require.NoError(t, err)
	assert.NoFileExists(t, filepath.Join(dead, DefaultLiveName), "recovered")
	require.NoError(t, l.Release())
}

// TestSwitchWaitsForADeadSeatsLockWithoutHoldingHomes: a switch to a sub
// whose lease ended with its holders (its CLI killed in the middle of a
// refresh, the seat's lock left there) recovers that seat first; waiting
// for the seat's lock holds none of the CLI's locks at home, where a
// refresh would find them held.
func TestSwitchWaitsForADeadSeatsLockWithoutHoldingHomes(t *testing.T) {
	f := leaseFixture(t, WithLockTimeout(300*time.Millisecond))
	dead := deadSeat(t, f, "bob")

	switched := make(chan error, 1)
	go func() {
		_, err := f.m.SwitchTo("bob", "r")
		switched <- err
	}()
	time.Sleep(150 * time.Millisecond)
	assertHomeRefreshLockFree(t, f, "the switch waits for the dead seat's")
	assert.ErrorIs(t, <-switched, ErrLockTimeout)

	require.NoError(t, os.Remove(filepath.Join(dead, claudeRefreshLock)))
	_, err := f.m.SwitchTo("bob", "r")
	require.NoError(t, err)
	assert.NoFileExists(t, filepath.Join(dead, DefaultLiveName), "recovered")
	active, _ := f.m.ActiveSubscription()
	assert.Equal(t, "bob", active)
}

// TestSwitchContextEndsTheWaitForADeadSeat: the wait for a dead seat's lock
// ends with the switch's context, long before the lock timeout, and
// changes nothing.
func TestSwitchContextEndsTheWaitForADeadSeat(t *testing.T) {
	f := leaseFixture(t, WithLockTimeout(5*time.Second))
	dead := deadSeat(t, f, "bob")

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := f.m.SwitchToContext(ctx, "bob", "r")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 2*time.Second, "ended with the context, not the lock timeout")
	assert.FileExists(t, filepath.Join(dead, DefaultLiveName), "the dead seat's login waits for its recovery")
	active, _ := f.m.ActiveSubscription()
	assert.NotEqual(t, "bob", active)
}

// deadSeat leases sub into a new seat whose holders then die in the middle
// of its CLI's refresh: the seat's refresh lock is left there, the lease
// never released. It returns the seat.
func deadSeat(t *testing.T, f *fixture, sub string) string {
	t.Helper()
	dead := seatDir(t)
	l, err := f.m.Lease(context.Background(), dead, LeaseSub(sub))
	require.NoError(t, err)
	require.NoError(t, os.Mkdir(filepath.Join(dead, claudeRefreshLock), 0o755))
	require.NoError(t, l.File().Close()) // its holders are gone, never released
	return dead
}

// A waiting Lease whose only not-leased sub is kept out by a dead seat
// that cannot be read takes home's locks once, not on every poll.
func TestAWaitingLeaseDoesNotPollForAnUnreadableDeadSeat(t *testing.T) {
	ffs := &faultFS{inner: disk.OS{}, failAt: -1}
	f := leaseFixture(t, withFS(ffs))
	dead := seatDir(t)
	l, err := f.m.Lease(context.Background(), dead, LeaseSub("bob"))
	require.NoError(t, err)
	require.NoError(t, l.File().Close()) // the lessee died
	seatFile := filepath.Join(dead, DefaultLiveName)
	require.NoError(t, os.Remove(seatFile))
	require.NoError(t, os.Mkdir(seatFile, 0o700))
	writeFile(t, filepath.Join(seatFile, "x"), []byte("{}"))
	for _, sub := range []string{"erik", "alice"} {
		held, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub(sub))
		require.NoError(t, err)
		defer func() { require.NoError(t, held.Release()) }()
	}
	assert.Equal(t, 1, waitingLeaseTakesHomesLock(t, f, ffs), "home's refresh lock taken on every poll")
}
