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

// A write-back lands with its answer lost (alice-1 stored), the cluster
// ends the lease, the CLI refreshes once more (alice-2, derived from the
// stored alice-1) and the lessee releases. Nobody else touched alice:
// alice-2 should be written back, as a settle of the same seat does.
func TestALostWriteBackIsAdoptedAfterTheLeaseEnded(t *testing.T) {
	for _, via := range []string{"release", "sync-then-next-lease"} {
		t.Run(via, func(t *testing.T) {
			p, cli, _, a := aliceRefreshedInASeat(t)
			ctx, seat := context.Background(), a.Seat()
			resume := etcd.StopAfterWriteBack(t, errStopped)
			require.ErrorIs(t, a.Sync(), errStopped)
			resume()
			_, err := cli.Revoke(ctx, clientv3.LeaseID(a.ID()))
			require.NoError(t, err)
			select {
			case <-a.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("not lost")
			}
			require.NoError(t, os.WriteFile(filepath.Join(seat, ".credentials.json"), claudeLogin("alice", 2, later.Add(2*time.Hour)), 0o600))
			if via == "release" {
				require.NoError(t, a.Release())
			} else {
				require.ErrorIs(t, a.Sync(), etcd.ErrFenced, "the lease ended")
				etcd.GoneFromSeat(a) // the lessee dies here
				b, err := p.Lease(ctx, seat, etcd.LeaseSub("alice"))
				require.NoError(t, err)
				require.NoError(t, b.Release())
			}
			stored, err := p.Export(ctx, "alice")
			require.NoError(t, err)
			st, err := p.Status(ctx)
			require.NoError(t, err)
			assert.Equal(t, marker+"-rt-alice-2", refreshToken(t, stored), "the pool holds the consumed alice-1")
			assert.Zero(t, st[0].Backups, "the newest login went to a backup key")
		})
	}
}

// Control: the same, with no Sync after the lease ended: the settle adopts.
func TestHuntPendingControl(t *testing.T) {
	p, cli, _, a := aliceRefreshedInASeat(t)
	ctx, seat := context.Background(), a.Seat()
	resume := etcd.StopAfterWriteBack(t, errStopped)
	require.ErrorIs(t, a.Sync(), errStopped)
	resume()
	_, err := cli.Revoke(ctx, clientv3.LeaseID(a.ID()))
	require.NoError(t, err)
	<-a.Done()
	require.NoError(t, os.WriteFile(filepath.Join(seat, ".credentials.json"), claudeLogin("alice", 2, later.Add(2*time.Hour)), 0o600))
	etcd.GoneFromSeat(a)
	b, err := p.Lease(ctx, seat, etcd.LeaseSub("alice"))
	require.NoError(t, err)
	require.NoError(t, b.Release())
	stored, err := p.Export(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, marker+"-rt-alice-2", refreshToken(t, stored))
}
