package etcd_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gptme/credslots/etcd"
)

// Two hosts (two pools, two clients) settle one shared seat (a directory
// without file locks) that an ended lease of alice left holding alice-1.
// Host B's settle reads the seat and stops at "checked"; host C settles it
// meanwhile and leases bob into it; B's settle then finds bob's login in the
// seat and writes alice's old record back over C's.
func TestTwoHostsSettlingOneUnlockedSeatKeepEachLoginInItsSub(t *testing.T) {
	c := sharedCluster(t)
	prefix, key := testPrefix(t), writeKey(t)
	p1 := newPool(t, newClient(t, c.endpoints()...), prefix, key)
	p2 := newPool(t, newClient(t, c.endpoints()...), prefix, key)
	p3 := newPool(t, newClient(t, c.endpoints()...), prefix, key)
	ctx := context.Background()
	require.NoError(t, p1.Import(ctx, "alice", claudeLogin("alice", 0, later)))
	require.NoError(t, p1.Import(ctx, "bob", claudeLogin("bob", 0, later.Add(-time.Minute))))
	etcd.SeatsDoNotLock(t)
	seat := t.TempDir()
	file := filepath.Join(seat, ".credentials.json")

	a, err := p1.Lease(ctx, seat, etcd.LeaseSub("alice"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, claudeLogin("alice", 1, later.Add(time.Hour)), 0o600))
	_, err = p1.Lease(ctx, seat) // a live lease's seat is refused
	require.ErrorIs(t, err, etcd.ErrLeased)
	cli := newClient(t, c.endpoints()...)
	_, err = cli.Revoke(ctx, clientv3.LeaseID(a.ID()))
	require.NoError(t, err)
	<-a.Done() // a's lessee is gone from here on (its Release never runs)

	blocked, proceed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	etcd.OnPoolPoint(t, func(point string) error {
		if point == "checked" {
			first := false
			once.Do(func() { first = true })
			if first {
				close(blocked)
				<-proceed
			}
		}
		return nil
	})
	bErr := make(chan error, 1)
	go func() {
		l, err := p2.Lease(ctx, seat, etcd.LeaseSub("alice"))
		if l != nil {
			_ = l.Release()
		}
		bErr <- err
	}()
	<-blocked
	cl, err := p3.Lease(ctx, seat, etcd.LeaseSub("bob"))
	require.NoError(t, err)
	close(proceed)
	require.ErrorIs(t, <-bErr, etcd.ErrPending, "host B's settle found the seat changed")

	// Host C's CLI refreshes bob; C releases.
	require.NoError(t, os.WriteFile(file, claudeLogin("bob", 1, later.Add(2*time.Hour)), 0o600))
	require.NoError(t, cl.Release())

	// The next lease of the seat.
	d, err := p1.Lease(ctx, seat, etcd.LeaseSub("bob"))
	require.NoError(t, err)
	require.NoError(t, d.Release())
	_ = a.Release()

	alice, err := p1.Export(ctx, "alice")
	require.NoError(t, err)
	bob, err := p1.Export(ctx, "bob")
	require.NoError(t, err)
	assert.Equal(t, marker+"-rt-alice-1", refreshToken(t, alice), "alice's newest login")
	assert.Equal(t, marker+"-rt-bob-1", refreshToken(t, bob), "bob's newest login")
}
