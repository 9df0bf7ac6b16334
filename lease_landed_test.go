package credslots

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gptme/credslots/internal/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of a lease write-back whose slot write landed and whose step after
// it failed or was killed: the slot holds the seat's login, whose earlier
// refresh token (the slot's) is spent, so that login is what the seat's CLI
// rotates next, and its next refresh is written back, whatever its life.

// writeBackFixture leases bob into a seat whose CLI then refreshes (rt-bob-1,
// a long life), and arms ffs to act on the first operation after the rename
// that writes bob's slot.
func writeBackFixture(t *testing.T, act func(ffs *faultFS)) (*fixture, *faultFS, *Lease, string) {
	ffs := &faultFS{inner: disk.OS{}, failAt: -1}
	f := leaseFixture(t, withFS(ffs), WithCLILocks(false))
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.NoError(t, err)
	cliRefresh(t, seat, fresh.Add(20*time.Hour), "rt-bob-1")
	armed, done := false, false
	ffs.before = func(op, name string) {
		switch {
		case done:
		case op == "rename" && strings.HasSuffix(name, ".credentials.json.bob"):
			armed = true
		case armed:
			done = true
			act(ffs)
		}
	}
	return f, ffs, l, seat
}

// The slot write of a Sync lands, then its directory sync fails: Sync returns
// the error. The seat's CLI then rotates the login it holds (rt-bob-1 ->
// rt-bob-2) with a shorter life, as a token endpoint may, and the lease is
// released.
func TestAWriteBackWhoseDirSyncFailedIsTheHandedLogin(t *testing.T) {
	f, ffs, l, seat := writeBackFixture(t, func(ffs *faultFS) {
		ffs.mu.Lock()
		ffs.failAt = ffs.n + 1 // this very operation: the syncdir after the slot's rename
		ffs.mu.Unlock()
	})
	err := l.Sync()
	require.ErrorIs(t, err, errInjected)
	slot, _ := os.ReadFile(f.slot("bob"))
	require.Equal(t, "rt-bob-1", refreshTokenOf(slot), "the write-back landed; rt-bob-0 is spent")
	ffs.before = nil

	cliRefresh(t, seat, fresh.Add(2*time.Hour), "rt-bob-2") // rt-bob-1 is now spent too
	require.NoError(t, l.Release())

	slot, _ = os.ReadFile(f.slot("bob"))
	assert.Equal(t, "rt-bob-2", refreshTokenOf(slot), "the seat's newest login is the slot's")
	assert.Equal(t, hashBytes([]byte("rt-bob-2")), mustStoredFingerprint(t, f.m, "bob"), "and captured")
}

// The same with the lessee killed right after the slot write (a panic stands
// in for the kill: the journal has the write-back's intent, no outcome; the
// lease's lock is closed as the kernel would). The CLI that inherited the
// lease refreshes once more before it exits; the next lease recovers the seat.
func TestAWriteBackKilledAfterTheSlotWriteIsTheHandedLogin(t *testing.T) {
	type killed struct{}
	f, ffs, l, seat := writeBackFixture(t, func(*faultFS) { panic(killed{}) })
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(killed); !ok {
					panic(r)
				}
			}
		}()
		_ = l.Sync()
		t.Fatal("not killed")
	}()
	ffs.before = nil
	require.NoError(t, l.File().Close()) // the process is gone: its lock with it
	slot, _ := os.ReadFile(f.slot("bob"))
	require.Equal(t, "rt-bob-1", refreshTokenOf(slot), "the write-back landed")

	cliRefresh(t, seat, fresh.Add(2*time.Hour), "rt-bob-2")

	m, err := New(WithCredsDir(f.dir), WithSubscriptions("bob", "alice", "erik"), WithClock(fixedClock), WithCLILocks(false))
	require.NoError(t, err)
	l2, err := m.Lease(context.Background(), filepath.Join(t.TempDir(), "seat2"), LeaseSub("bob"))
	require.NoError(t, err)
	require.NoError(t, l2.Release())

	slot, _ = os.ReadFile(f.slot("bob"))
	assert.Equal(t, "rt-bob-2", refreshTokenOf(slot), "the seat's newest login is the slot's")
	assert.Equal(t, hashBytes([]byte("rt-bob-2")), mustStoredFingerprint(t, m, "bob"), "and captured")
}

// Control: no fault. The same rotation with a shorter life is written back.
func TestAWriteBackWithNoFaultIsTheHandedLogin(t *testing.T) {
	f, ffs, l, seat := writeBackFixture(t, func(*faultFS) {})
	require.NoError(t, l.Sync())
	ffs.before = nil
	cliRefresh(t, seat, fresh.Add(2*time.Hour), "rt-bob-2")
	require.NoError(t, l.Release())
	slot, _ := os.ReadFile(f.slot("bob"))
	assert.Equal(t, "rt-bob-2", refreshTokenOf(slot))
}

// Release's own write-back lands, then its directory sync fails: the lease
// stays held (as documented), the CLI rotates once more with a shorter life,
// and the retried Release runs.
func TestAReleaseWriteBackWhoseDirSyncFailedIsTheHandedLogin(t *testing.T) {
	f, ffs, l, seat := writeBackFixture(t, func(ffs *faultFS) {
		ffs.mu.Lock()
		ffs.failAt = ffs.n + 1
		ffs.mu.Unlock()
	})
	err := l.Release()
	require.ErrorIs(t, err, errInjected)
	ffs.before = nil
	slot, _ := os.ReadFile(f.slot("bob"))
	require.Equal(t, "rt-bob-1", refreshTokenOf(slot), "the write-back landed")
	cliRefresh(t, seat, fresh.Add(2*time.Hour), "rt-bob-2")
	require.NoError(t, l.Release())
	slot, _ = os.ReadFile(f.slot("bob"))
	assert.Equal(t, "rt-bob-2", refreshTokenOf(slot), "the seat's newest login is the slot's")
	st, err := f.m.Status()
	require.NoError(t, err)
	assert.NotContains(t, strings.Join(st.Problems, "\n"), "slot bob", "no identity drift: the write-back was captured")
	assert.Equal(t, hashBytes([]byte("rt-bob-2")), mustStoredFingerprint(t, f.m, "bob"))
}

// mustStoredFingerprint is sub's captured fingerprint.
func mustStoredFingerprint(t *testing.T, m *Manager, sub string) string {
	t.Helper()
	fp, ok := m.ReadStoredFingerprint(sub)
	require.True(t, ok)
	return fp
}

// A release whose write-back lands and whose capture of the sidecar then
// fails: the slot reads as the write-back's login, not as identity drift,
// and the next switch to the sub captures it.
func TestAWriteBackWhoseCaptureFailedIsNoDrift(t *testing.T) {
	ffs := &faultFS{inner: disk.OS{}, failAt: -1}
	f := leaseFixture(t, withFS(ffs), WithCLILocks(false))
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.NoError(t, err)
	cliRefresh(t, seat, fresh.Add(20*time.Hour), "rt-bob-1")
	ffs.before = func(op, name string) {
		if strings.Contains(name, ".credentials.json.bob.fingerprint.json") && op != "readfile" && op != "lstat" && op != "stat" {
			ffs.mu.Lock()
			ffs.failAt = ffs.n + 1
			ffs.mu.Unlock()
		}
	}
	require.NoError(t, l.Release())
	ffs.before = nil
	ffs.mu.Lock()
	ffs.failAt = -1
	ffs.mu.Unlock()
	slot, err := os.ReadFile(f.slot("bob"))
	require.NoError(t, err)
	require.Equal(t, "rt-bob-1", refreshTokenOf(slot), "written back")
	fp, _ := f.m.ReadStoredFingerprint("bob")
	require.NotEqual(t, hashBytes([]byte("rt-bob-1")), fp, "the capture failed")

	info, err := f.m.DetectSlotIdentityDrift("bob")
	require.NoError(t, err)
	assert.False(t, info.Drift, info.Reason)
	res, err := f.m.SwitchTo("bob", "rotate")
	require.NoError(t, err, res.Reason)
	assert.Equal(t, hashBytes([]byte("rt-bob-1")), mustStoredFingerprint(t, f.m, "bob"), "captured by the switch")
}
