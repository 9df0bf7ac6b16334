//go:build unix

package credslots

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gptme/credslots/internal/disk"
)

// probeFailFS fails, while armed, every probe (LockOpen without create) of
// one sub's lease lock with EMFILE, as a process out of descriptors sees it.
type probeFailFS struct {
	disk.FS
	sub   string
	armed atomic.Bool
}

func (p *probeFailFS) LockOpen(name string, create bool) (*os.File, bool, error) {
	if p.armed.Load() && !create && filepath.Base(name) == p.sub+lockSuffix {
		return nil, false, &os.PathError{Op: "open", Path: name, Err: syscall.EMFILE}
	}
	return p.FS.LockOpen(name, create)
}

// A lease lock that cannot be probed counted as free: a switch to alice,
// leased to a seat, went ahead when the probe failed (out of descriptors,
// say), and alice's login was live in the seat and at home at once.
func TestALeaseLockThatCannotBeProbedCountsAsHeld(t *testing.T) {
	pfs := &probeFailFS{FS: disk.OS{}, sub: "alice"}
	f := leaseFixture(t, withFS(pfs))
	_, err := f.m.SwitchTo("bob", "home")
	require.NoError(t, err)
	seat := seatDir(t)
	l, err := f.m.Lease(context.Background(), seat, LeaseSub("alice"))
	require.NoError(t, err)
	defer func() { _ = l.Release() }()

	pfs.armed.Store(true)
	_, err = f.m.SwitchTo("alice", "probe fails", Force())
	require.ErrorIs(t, err, ErrLeased)
	assert.Contains(t, err.Error(), seat, "the refusal names the seat the record knows")
	st, err := f.m.Status()
	require.NoError(t, err)
	assert.Contains(t, strings.Join(st.Problems, "\n"), "sub alice: its lease lock cannot be probed")
	pfs.armed.Store(false)
	assert.Equal(t, ".credentials.json.bob", f.readlink(t), "home keeps bob")

	// The same with the package's own fault seam: one failed lockopen,
	// at any step of a switch, never makes alice live at home.
	for k := 1; k <= 12; k++ {
		ffs := &faultFS{inner: disk.OS{}, failAt: -1, ops: map[string]bool{"lockopen": true}}
		f := leaseFixture(t, withFS(ffs))
		l, err := f.m.Lease(context.Background(), seatDir(t), LeaseSub("alice"))
		require.NoError(t, err)
		ffs.mu.Lock()
		ffs.failAt = ffs.n + k
		ffs.mu.Unlock()
		res, err := f.m.SwitchTo("alice", "fault")
		assert.False(t, err == nil && res.OK, "lockopen fault %d: alice switched to at home while leased", k)
		_ = l.Release()
	}
}

// probeCollideFS plays a reader's probe of alice's lease lock that meets
// the recovery of ended leases: from the moment, armed, that alice's lock
// is taken, another open file holds its flock, until bob's lease lock is
// taken.
type probeCollideFS struct {
	disk.FS
	armed atomic.Bool
	mu    sync.Mutex
	probe *os.File
}

func (p *probeCollideFS) LockOpen(name string, create bool) (*os.File, bool, error) {
	if create && p.armed.Load() {
		p.mu.Lock()
		switch base := filepath.Base(name); {
		case base == "alice"+lockSuffix && p.probe == nil:
			if f, ok, err := p.FS.LockOpen(name, false); err == nil && ok {
				p.probe = f
			}
		case base == "bob"+lockSuffix && p.probe != nil:
			_ = p.probe.Close()
			p.probe = nil
			p.armed.Store(false)
		}
		p.mu.Unlock()
	}
	return p.FS.LockOpen(name, create)
}

// Alice's lessee died with a refreshed login in its seat. When a reader's
// probe made the recovery find alice's lock busy, a lease of bob to that
// very seat handed bob's login over alice's, which ended as a backup of
// bob's slot, and alice's next lease handed out her spent refresh token.
func TestALeaseIntoADeadLeasesSeatRecoversItFirst(t *testing.T) {
	pfs := &probeCollideFS{FS: disk.OS{}}
	f := leaseFixture(t, withFS(pfs))
	seat := seatDir(t)
	la, err := f.m.Lease(context.Background(), seat, LeaseSub("alice"))
	require.NoError(t, err)
	cliRefresh(t, seat, fresh.Add(10*time.Hour), "rt-alice-1") // rt-alice-0 is spent
	require.NoError(t, la.File().Close())                      // alice's lessee dies

	pfs.armed.Store(true)
	lb, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.NoError(t, err)
	assert.False(t, pfs.armed.Load(), "the probe met the recovery")
	assert.Equal(t, "rt-alice-1", refreshTokenOf(mustRead(t, f.slot("alice"))), "alice's login is back in her slot")
	require.NoError(t, lb.Release())

	seat2 := seatDir(t)
	la2, err := f.m.Lease(context.Background(), seat2, LeaseSub("alice"))
	require.NoError(t, err)
	defer func() { _ = la2.Release() }()
	assert.Equal(t, "rt-alice-1", refreshTokenOf(mustRead(t, filepath.Join(seat2, DefaultLiveName))), "her live login is handed out, not the spent one")
}

// The same when alice's lease was released but a process that inherited
// its lock refreshed in the seat afterwards, then exited.
func TestALeaseIntoAReleasedSeatAnInheritorRefreshedRecoversItFirst(t *testing.T) {
	pfs := &probeCollideFS{FS: disk.OS{}}
	f := leaseFixture(t, withFS(pfs))
	seat := seatDir(t)
	la, err := f.m.Lease(context.Background(), seat, LeaseSub("alice"))
	require.NoError(t, err)
	child, err := syscall.Dup(int(la.File().Fd())) // CMD inherits the lease's lock
	require.NoError(t, err)
	require.NoError(t, la.Release())
	require.True(t, f.m.leaseHeld("alice"), "the inheritor holds the lock")
	cliRefresh(t, seat, fresh.Add(10*time.Hour), "rt-alice-1") // after the release: rt-alice-0 spent
	require.NoError(t, syscall.Close(child))                   // and exits

	pfs.armed.Store(true)
	lb, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.NoError(t, err)
	defer func() { _ = lb.Release() }()
	assert.False(t, pfs.armed.Load(), "the probe met the recovery")
	assert.Equal(t, "rt-alice-1", refreshTokenOf(mustRead(t, f.slot("alice"))), "alice's live login is back in her slot")
}

// A FIFO at a lease lock's name never blocks a probe (SPEC 18: a hostile
// file is never waited on): Leases and Status return.
func TestALeaseProbeNeverBlocksOnAFIFO(t *testing.T) {
	f := leaseFixture(t)
	fifo := f.m.leaseLockPath("bob")
	mkfifo(t, fifo)
	within(t, "Leases", []string{fifo}, func() { _, _ = f.m.Leases() })
	within(t, "Status", []string{fifo}, func() { _, _ = f.m.Status() })
}

// A private seat handed to a lease, released, then handed to another sub's
// lease: the recovery of the released record does not remove the seat the
// new lease is about to use.
func TestAPrivateSeatReusedAfterARelease(t *testing.T) {
	f := leaseFixture(t)
	seat := filepath.Join(f.dir, privateDirName, SeatsDirName, "w1")
	la, err := f.m.Lease(context.Background(), seat, LeaseSub("alice"))
	require.NoError(t, err)
	require.NoError(t, la.Release())
	lb, err := f.m.Lease(context.Background(), seat, LeaseSub("bob"))
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(seat, DefaultLiveName))
	require.NoError(t, lb.Release())
}
