package etcd_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gptme/credslots/etcd"
)

// A waiting lease's own etcd lease may end while it waits (a member it
// renews through paused past the TTL, an operator's revoke). It holds no
// sub yet, so it takes a new etcd lease and goes on waiting: it neither
// fails on "lease not found" nor hands back a lease already lost.
func TestAWaitingLeaseWhoseEtcdLeaseEndsTakesAnother(t *testing.T) {
	c := sharedCluster(t)
	cli := newClient(t, c.endpoints()...)
	p := newPool(t, cli, testPrefix(t), writeKey(t))
	ctx := context.Background()
	require.NoError(t, p.Import(ctx, "alice", claudeLogin("alice", 0, later)))
	a, err := p.Lease(ctx, t.TempDir())
	require.NoError(t, err)
	before := etcdLeases(t, cli)

	waiting := make(chan struct{}, 4)
	etcd.OnPoolPoint(t, func(point string) error {
		if point == "waiting" {
			select {
			case waiting <- struct{}{}:
			default:
			}
		}
		return nil
	})
	type result struct {
		l   *etcd.Lease
		err error
	}
	res := make(chan result, 1)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	seat := t.TempDir()
	go func() {
		l, err := p.Lease(wctx, seat, etcd.LeaseWait())
		res <- result{l, err}
	}()
	select {
	case <-waiting:
	case r := <-res:
		t.Fatalf("the lease did not wait: %v", r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("the lease never waited")
	}

	// The waiter's etcd lease is the one granted since: the cluster ends it.
	var ended []clientv3.LeaseID
	for id := range etcdLeases(t, cli) {
		if !before[id] {
			_, err := cli.Revoke(ctx, id)
			require.NoError(t, err)
			ended = append(ended, id)
		}
	}
	require.Len(t, ended, 1, "one etcd lease is the waiter's")
	time.Sleep(testTTL / 2) // its renewals see it ended
	require.NoError(t, a.Release())

	var r result
	select {
	case r = <-res:
	case <-time.After(20 * time.Second):
		t.Fatal("the waiting lease never got alice")
	}
	require.NoError(t, r.err)
	t.Cleanup(func() { _ = r.l.Release() })
	assert.Equal(t, "alice", r.l.Sub())
	assert.NotEqual(t, int64(ended[0]), r.l.ID(), "a new etcd lease")
	assert.NoError(t, r.l.Err(), "the lease holds")
	data, err := os.ReadFile(filepath.Join(seat, ".credentials.json"))
	require.NoError(t, err)
	assert.Equal(t, marker+"-rt-alice-0", refreshToken(t, data))
	live := etcdLeases(t, cli)
	assert.True(t, live[clientv3.LeaseID(r.l.ID())])
	assert.False(t, live[ended[0]])
}

// etcdLeases lists the cluster's live etcd leases.
func etcdLeases(t *testing.T, cli *clientv3.Client) map[clientv3.LeaseID]bool {
	t.Helper()
	resp, err := cli.Leases(context.Background())
	require.NoError(t, err)
	out := map[clientv3.LeaseID]bool{}
	for _, s := range resp.Leases {
		out[s.ID] = true
	}
	return out
}

// An etcd lease the cluster ends right after the lease key was made, before
// the seat holds anything, takes the key with it: the lease grants another
// and tries again, rather than hand back a lease already lost.
func TestALeaseWhoseEtcdLeaseEndsAsItsKeyIsMadeTakesAnother(t *testing.T) {
	c := sharedCluster(t)
	cli := newClient(t, c.endpoints()...)
	p := newPool(t, cli, testPrefix(t), writeKey(t))
	ctx := context.Background()
	require.NoError(t, p.Import(ctx, "alice", claudeLogin("alice", 0, later)))
	before := etcdLeases(t, cli)
	var ended []clientv3.LeaseID
	etcd.OnPoolPoint(t, func(point string) error {
		if point != "acquired" || len(ended) > 0 {
			return nil
		}
		for id := range etcdLeases(t, cli) {
			if !before[id] {
				_, err := cli.Revoke(ctx, id)
				require.NoError(t, err)
				ended = append(ended, id)
			}
		}
		time.Sleep(testTTL / 2) // its renewals see it ended
		return nil
	})
	seat := t.TempDir()
	l, err := p.Lease(ctx, seat)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Release() })
	require.Len(t, ended, 1)
	assert.NotEqual(t, int64(ended[0]), l.ID(), "a new etcd lease")
	assert.NoError(t, l.Err(), "the lease holds")
	assert.Equal(t, "alice", l.Sub())
	data, err := os.ReadFile(filepath.Join(seat, ".credentials.json"))
	require.NoError(t, err)
	assert.Equal(t, marker+"-rt-alice-0", refreshToken(t, data))
}
