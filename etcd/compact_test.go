package etcd_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gptme/credslots/etcd"
)

// A lease's key watch that must resume (its member's connection failed)
// after the cluster compacted past the lease key's revision is cancelled by
// the compaction: the lease reads its key and watches it again, so that a
// later removal is still seen.
func TestALeaseSeesItsKeyRemovedAfterACompactedResume(t *testing.T) {
	c := ownCluster(t)
	eps := c.endpoints()
	px := newProxy(t, eps[0])
	cli := newClient(t, px.URL()) // every stream through the proxy
	admin := newClient(t, eps[1], eps[2])
	p := newPool(t, cli, testPrefix(t), writeKey(t))
	ctx := context.Background()
	require.NoError(t, p.Import(ctx, "alice", claudeLogin("alice", 0, later)))
	l, err := p.Lease(ctx, t.TempDir(), etcd.LeaseSub("alice"))
	require.NoError(t, err)
	defer func() { _ = l.Release() }()
	var last int64
	for i := 0; i < 5; i++ {
		r, err := admin.Put(ctx, fmt.Sprintf("/other/%d", i), "x")
		require.NoError(t, err)
		last = r.Header.Revision
	}
	_, err = admin.Compact(ctx, last)
	require.NoError(t, err)
	cli.SetEndpoints(eps[1])
	px.Cut() // the client's watch resumes on another member
	time.Sleep(2 * time.Second)
	select {
	case <-l.Done():
		t.Fatalf("lost before the removal: %v", l.Err())
	default:
	}
	_, err = admin.Delete(ctx, etcd.LeaseKey(p, "alice")) // a real removal
	require.NoError(t, err)
	select {
	case <-l.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the lease key was removed and the lease never saw it")
	}
}
