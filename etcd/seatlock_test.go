package etcd_test

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gptme/credslots/etcd"
)

// Two leases of one seat on a host (two `run --seat S --wait` started at
// once): while the first waits for a free sub, the second is refused at
// once, so that it can never write another login over the first's live
// one; the first's refresh made in the seat is written back.
func TestASeatWaitedForByOneLeaseIsRefusedToAnother(t *testing.T) {
	c := sharedCluster(t)
	cli := newClient(t, c.endpoints()...)
	p := newPool(t, cli, testPrefix(t), writeKey(t))
	ctx := context.Background()
	require.NoError(t, p.Import(ctx, "alice", claudeLogin("alice", 0, later)))
	require.NoError(t, p.Import(ctx, "bob", claudeLogin("bob", 0, later)))
	h1, err := p.Lease(ctx, t.TempDir(), etcd.LeaseSub("alice"))
	require.NoError(t, err)
	h2, err := p.Lease(ctx, t.TempDir(), etcd.LeaseSub("bob"))
	require.NoError(t, err)

	var waiting atomic.Int32
	etcd.OnPoolPoint(t, func(point string) error {
		if point == "waiting" {
			waiting.Add(1)
		}
		return nil
	})
	seat := filepath.Join(t.TempDir(), "seat")
	type res struct {
		l   *etcd.Lease
		err error
	}
	got := make(chan res, 1)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	go func() {
		l, err := p.Lease(wctx, seat, etcd.LeaseWait())
		got <- res{l, err}
	}()
	require.Eventually(t, func() bool { return waiting.Load() >= 1 }, 10*time.Second, 10*time.Millisecond)
	_, err = p.Lease(wctx, seat, etcd.LeaseWait())
	require.ErrorIs(t, err, etcd.ErrLeased, "the seat is the waiting lease's")
	assert.Contains(t, err.Error(), "held by another lease on this host")

	require.NoError(t, h1.Release())
	first := <-got
	require.NoError(t, first.err)
	require.Equal(t, "alice", first.l.Sub())
	require.NoError(t, os.WriteFile(filepath.Join(seat, ".credentials.json"), claudeLogin("alice", 1, later.Add(time.Hour)), 0o600))
	require.NoError(t, h2.Release())
	_, err = p.Lease(ctx, seat, etcd.LeaseSub("bob"))
	require.ErrorIs(t, err, etcd.ErrLeased, "still the live lease's seat")

	require.NoError(t, first.l.Release())
	stored, err := p.Export(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, marker+"-rt-alice-1", refreshToken(t, stored), "alice's refresh made in the seat is written back")
	// Released, the seat is free again.
	l, err := p.Lease(ctx, seat, etcd.LeaseSub("bob"))
	require.NoError(t, err)
	require.NoError(t, l.Release())
}

// A lease watches its key from just after it made it: a member that lags
// (one resumed from a pause) would otherwise start the watch at its own
// older revision and replay the earlier holders' put and delete as this
// lease's key removed.
func TestALeaseWatchesItsKeyFromItsOwnRevision(t *testing.T) {
	c := sharedCluster(t)
	cli := newClient(t, c.endpoints()...)
	p := newPool(t, cli, testPrefix(t), writeKey(t))
	ctx := context.Background()
	require.NoError(t, p.Import(ctx, "alice", claudeLogin("alice", 0, later)))
	h, err := p.Lease(ctx, t.TempDir(), etcd.LeaseSub("alice"))
	require.NoError(t, err)
	require.NoError(t, h.Release()) // an earlier holder's put and delete
	l, err := p.Lease(ctx, t.TempDir(), etcd.LeaseSub("alice"))
	require.NoError(t, err)
	defer func() { require.NoError(t, l.Release()) }()
	resp, err := cli.Get(ctx, etcd.LeaseKey(p, "alice"))
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	assert.Equal(t, resp.Kvs[0].ModRevision+1, etcd.WatchFrom(l), "the watch starts after the key's own put")
	select {
	case <-l.Done():
		t.Fatalf("the lease was lost: %v", l.Err())
	case <-time.After(300 * time.Millisecond):
	}
}

// On a file system without locks a lease goes on without the seat's lock,
// as before there was one, and says so.
func TestALeaseOfASeatThatCannotBeLockedGoesOn(t *testing.T) {
	c := sharedCluster(t)
	cli := newClient(t, c.endpoints()...)
	p := newPool(t, cli, testPrefix(t), writeKey(t))
	ctx := context.Background()
	require.NoError(t, p.Import(ctx, "alice", claudeLogin("alice", 0, later)))
	etcd.SeatsDoNotLock(t)
	l, err := p.Lease(ctx, t.TempDir(), etcd.LeaseSub("alice"))
	require.NoError(t, err)
	require.NoError(t, l.Release())
}
