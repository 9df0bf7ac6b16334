package etcd_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gptme/credslots/etcd"
)

// WithHost names the host lease records carry.
func TestWithHostNamesTheLeasesHost(t *testing.T) {
	c := sharedCluster(t)
	p := newPool(t, newClient(t, c.endpoints()...), testPrefix(t), writeKey(t), etcd.WithHost("host-a"))
	ctx := context.Background()
	require.NoError(t, p.Import(ctx, "alice", claudeLogin("alice", 0, later)))
	l, err := p.Lease(ctx, t.TempDir())
	require.NoError(t, err)
	defer l.Release()
	ls, err := p.Leases(ctx)
	require.NoError(t, err)
	require.Len(t, ls, 1)
	require.Equal(t, "host-a", ls[0].Host)
}
