package credslots

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

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
