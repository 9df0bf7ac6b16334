package etcd_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gptme/credslots/etcd"
)

// A lease whose key watch cannot be opened (the member it reached stopped
// answering) still tells when its renewals stop, and is released once the
// cluster is back: opening the watch never holds up the lease's own checks.
func TestALeaseWhoseWatchCannotOpenStillSeesItsRenewalsStop(t *testing.T) {
	c := sharedCluster(t)
	px := newProxy(t, c.endpoints()[0])
	cli := newClient(t, px.URL())
	p := newPool(t, cli, testPrefix(t), writeKey(t))
	ctx := context.Background()
	require.NoError(t, p.Import(ctx, "alice", claudeLogin("alice", 0, later)))
	etcd.HoldWatches(t)
	l, err := p.Lease(ctx, t.TempDir(), etcd.LeaseSub("alice"))
	require.NoError(t, err)
	cut := time.Now()
	px.Cut()
	select {
	case <-l.Done():
		require.ErrorIs(t, l.Err(), etcd.ErrLeaseLost)
		require.Contains(t, l.Err().Error(), "not renewed within half the TTL")
		require.Less(t, time.Since(cut), testTTL, "lost within the TTL of the cut")
	case <-time.After(2 * testTTL):
		t.Fatal("the renewals stopped and the lease never saw it")
	}
	cli.SetEndpoints(c.endpoints()[1]) // back on the network, the watch still held
	released := make(chan error, 1)
	go func() { released <- l.Release() }()
	select {
	case <-released:
	case <-time.After(testTTL):
		t.Fatal("Release hangs on the unopened watch")
	}
}
