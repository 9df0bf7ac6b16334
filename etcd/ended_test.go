package etcd_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gptme/credslots/etcd"
)

// When the cluster ends a lease (an operator revokes it, or removes its
// key), the sub is free at once and another host may lease it at once: the
// lessee's command, here one that ignores SIGTERM, is killed at once, not a
// quarter TTL before a renewal would have run out.
func TestALeaseTheClusterEndedStopsItsCommandAtOnce(t *testing.T) {
	for _, end := range []struct {
		name string
		do   func(cli *clientv3.Client, key string, id int64) error
	}{
		{"revoked", func(cli *clientv3.Client, _ string, id int64) error {
			_, err := cli.Revoke(context.Background(), clientv3.LeaseID(id))
			return err
		}},
		{"key removed", func(cli *clientv3.Client, key string, _ int64) error {
			_, err := cli.Delete(context.Background(), key)
			return err
		}},
	} {
		t.Run(end.name, func(t *testing.T) {
			c := sharedCluster(t)
			key := writeKey(t)
			prefix := testPrefix(t)
			globals := []string{"--endpoints", c.endpointList(), "--key-file", key, "--prefix", prefix}
			importAll(t, globals, "alice")
			cli := newClient(t, c.endpoints()...)
			log := filepath.Join(t.TempDir(), "agents.log")
			a, aout := lessee(t, agentEnv(log, "A", time.Minute, 0, "AGENT_IGNORE_TERM=1"), globals,
				"--seat", filepath.Join(t.TempDir(), "seatA"), "--sub", "alice")
			var id int64
			waitFor(t, 10*time.Second, func() bool {
				resp, err := cli.Get(context.Background(), prefix+"leases/alice")
				if err != nil || len(resp.Kvs) == 0 {
					return false
				}
				id = resp.Kvs[0].Lease
				return countEvents(t, log, "alive", "A") > 0
			})
			b, bout := lessee(t, agentEnv(log, "B", 2*time.Second, 0), globals, "--sub", "alice", "--wait", "60s")
			time.Sleep(time.Second) // B waits
			ended := time.Now()
			require.NoError(t, end.do(cli, prefix+"leases/alice", id))
			require.Error(t, a.Wait(), "%s", aout)
			assert.Less(t, time.Since(ended), testTTL/4, "A's command was killed at once: %s", aout)
			require.NoError(t, b.Wait(), "%s", bout)
			requireExclusive(t, readAgentLog(t, log))
		})
	}
}

// The lease's own view: once the cluster ended it, Expires is the time that
// was seen, not the TTL after the last renewal.
func TestExpiresIsWhenTheClusterEndedTheLease(t *testing.T) {
	c := sharedCluster(t)
	cli := newClient(t, c.endpoints()...)
	p := newPool(t, cli, testPrefix(t), writeKey(t))
	ctx := context.Background()
	require.NoError(t, p.Import(ctx, "alice", claudeLogin("alice", 0, later)))
	l, err := p.Lease(ctx, t.TempDir(), etcd.LeaseSub("alice"))
	require.NoError(t, err)
	defer func() { _ = l.Release() }()
	assert.WithinDuration(t, time.Now().Add(testTTL), l.Expires(), testTTL/2, "a held lease expires a TTL after its renewal")
	_, err = cli.Revoke(ctx, clientv3.LeaseID(l.ID()))
	require.NoError(t, err)
	select {
	case <-l.Done():
	case <-time.After(testTTL):
		t.Fatal("the revoked lease was never seen lost")
	}
	require.ErrorIs(t, l.Err(), etcd.ErrLeaseLost)
	assert.False(t, l.Expires().After(time.Now()), "an ended lease has expired: %s", l.Expires())
}
