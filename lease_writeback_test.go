package credslots

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gptme/credslots/internal/disk"
)

// onceFailFS fails, once armed, the next Remove or Rename of path.
type onceFailFS struct {
	disk.FS
	path  string
	op    string // "remove" or "rename"
	armed atomic.Bool
}

func (o *onceFailFS) Remove(name string) error {
	if o.op == "remove" && name == o.path && o.armed.CompareAndSwap(true, false) {
		return &os.PathError{Op: "remove", Path: name, Err: errInjected}
	}
	return o.FS.Remove(name)
}

func (o *onceFailFS) Rename(from, to string) error {
	if o.op == "rename" && to == o.path && o.armed.CompareAndSwap(true, false) {
		return &os.PathError{Op: "rename", Path: to, Err: errInjected}
	}
	return o.FS.Rename(from, to)
}

// recordFailLease is bob leased to a seat of its own, over a file system
// whose next rename onto bob's lease record fails once armed.
func recordFailLease(t *testing.T) (*fixture, *onceFailFS, string, *Lease) {
	t.Helper()
	ofs := &onceFailFS{FS: disk.OS{}, op: "rename"}
	f := leaseFixture(t, withFS(ofs))
	ofs.path = f.m.leaseRecordPath("bob")
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.NoError(t, err)
	return f, ofs, seat, l
}

// A write-back makes the written login the one handed out: the seat's CLI
// rotates that one next. A Release whose write-back succeeded and whose
// seat then failed to clear kept the old one as handed, so the next
// rotation, shorter-lived, was only kept as a backup, and the slot held a
// spent refresh token.
func TestAWriteBackMakesItsLoginTheHandedOne(t *testing.T) {
	for _, next := range []string{"Release", "Sync"} {
		t.Run("a failed Release, then "+next, func(t *testing.T) {
			ofs := &onceFailFS{FS: disk.OS{}, op: "remove"}
			f := leaseFixture(t, withFS(ofs))
			seat := seatDir(t)
			ofs.path = filepath.Join(seat, DefaultLiveName)
			l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
			require.NoError(t, err)
			defer func() { _ = l.Release() }()

			cliRefresh(t, seat, testNow.Add(4*time.Minute), "rt-bob-short-1")
			ofs.armed.Store(true)
			require.ErrorIs(t, l.Release(), errInjected, "the seat could not be cleared: the lease stays held")
			require.True(t, f.m.leaseHeld("bob"))
			require.Equal(t, "rt-bob-short-1", refreshTokenOf(mustRead(t, f.slot("bob"))), "written back")

			cliRefresh(t, seat, testNow.Add(3*time.Minute), "rt-bob-short-2") // rt-bob-short-1 now spent
			if next == "Release" {
				require.NoError(t, l.Release())
			} else {
				require.NoError(t, l.Sync())
			}
			assert.Equal(t, "rt-bob-short-2", refreshTokenOf(mustRead(t, f.slot("bob"))), "the newest refresh token is back in the slot")
		})
	}

	// The record's update after the write-back is bookkeeping: its failure
	// does not keep the lease held, the login in the seat.
	t.Run("a Release whose record update fails still ends", func(t *testing.T) {
		f, ofs, seat, l := recordFailLease(t)
		cliRefresh(t, seat, fresh.Add(5*time.Hour), "rt-bob-1")
		ofs.armed.Store(true)
		require.NoError(t, l.Release())
		assert.False(t, ofs.armed.Load(), "the record's update failed")
		assert.Equal(t, "rt-bob-1", refreshTokenOf(mustRead(t, f.slot("bob"))), "written back")
		assert.False(t, f.m.leaseHeld("bob"), "released")
		left, _ := os.ReadFile(filepath.Join(seat, DefaultLiveName))
		assert.NotContains(t, string(left), "rt-bob-1", "the seat is cleared")
	})

	// Sync writes the slot, then the record: when the record's update fails
	// and the lessee dies, the recovery goes by the journal's write-back.
	t.Run("a Sync whose record update failed, then a crash", func(t *testing.T) {
		f, ofs, seat, l := recordFailLease(t)

		cliRefresh(t, seat, testNow.Add(5*time.Hour), "rt-bob-short-1")
		ofs.armed.Store(true)
		require.ErrorIs(t, l.Sync(), errInjected)
		require.Equal(t, "rt-bob-short-1", refreshTokenOf(mustRead(t, f.slot("bob"))))
		cliRefresh(t, seat, testNow.Add(4*time.Hour), "rt-bob-short-2")
		require.NoError(t, l.File().Close()) // the lessee dies

		seat2 := seatDir(t)
		l2, err := f.m.Lease(context.Background(), seat2, LeaseSub("bob"))
		require.NoError(t, err)
		defer func() { _ = l2.Release() }()
		assert.Equal(t, "rt-bob-short-2", refreshTokenOf(mustRead(t, f.slot("bob"))), "recovered into the slot")
		assert.Equal(t, "rt-bob-short-2", refreshTokenOf(mustRead(t, filepath.Join(seat2, DefaultLiveName))), "and handed out, not the spent one")
	})
}
