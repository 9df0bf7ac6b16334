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

// A seat login the pool cannot weigh (no readable expiry, an emptied
// access token) that holds a refresh token the pool does not may be the
// only copy of the newest one: a release or a settle keeps it as a sealed
// backup before it clears the seat. One without another refresh token is
// dropped.
func TestASeatLoginThatCannotBeWeighedIsKeptAside(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		kept bool
	}{
		{"a null expiresAt", `{"claudeAiOauth":{"accessToken":"at-x","refreshToken":"` + marker + `-rt-alice-9","expiresAt":null}}`, true},
		{"an emptied access token", `{"claudeAiOauth":{"accessToken":"","refreshToken":"` + marker + `-rt-alice-9","expiresAt":1}}`, true},
		{"an emptied refresh token", `{"claudeAiOauth":{"accessToken":"at-x","refreshToken":"","expiresAt":1}}`, false},
		{"the stored refresh token, emptied access token", `{"claudeAiOauth":{"accessToken":"","refreshToken":"` + marker + `-rt-alice-0","expiresAt":1}}`, false},
	}
	for _, end := range []string{"release", "settle"} {
		for _, c := range cases {
			t.Run(end+", "+c.name, func(t *testing.T) {
				p, cli, _, a := aliceRefreshedInASeat(t)
				ctx, seat := context.Background(), a.Seat()
				require.NoError(t, os.WriteFile(filepath.Join(seat, ".credentials.json"), []byte(c.doc), 0o600))
				if end == "release" {
					require.NoError(t, a.Release())
				} else {
					_, err := cli.Revoke(ctx, clientv3.LeaseID(a.ID()))
					require.NoError(t, err)
					<-a.Done()
					etcd.GoneFromSeat(a)
					_, err = etcd.SettleSeat(ctx, p, seat)
					require.NoError(t, err)
				}
				stored, err := p.Export(ctx, "alice")
				require.NoError(t, err)
				assert.Equal(t, marker+"-rt-alice-0", refreshToken(t, stored), "never written back")
				_, err = os.Stat(filepath.Join(seat, ".credentials.json"))
				assert.ErrorIs(t, err, os.ErrNotExist, "the seat is cleared")
				st, err := p.Status(ctx)
				require.NoError(t, err)
				require.Len(t, st, 1)
				if c.kept {
					assert.Equal(t, 1, st[0].Backups, "kept aside, not lost")
				} else {
					assert.Zero(t, st[0].Backups, "nothing worth keeping")
				}
			})
		}
	}
}

// A release that cannot reach the cluster to keep such a login aside ends
// in time, wrapping ErrPending, and the seat keeps the login: the next
// lease of the seat settles it (run keeps a private seat only then).
func TestAReleaseThatCannotKeepAnUnweighedLoginAsideLeavesItPending(t *testing.T) {
	c := sharedCluster(t)
	px := newProxy(t, c.endpoints()[0])
	p := newPool(t, newClient(t, px.URL()), testPrefix(t), writeKey(t))
	ctx := context.Background()
	require.NoError(t, p.Import(ctx, "alice", claudeLogin("alice", 0, later)))
	a, err := p.Lease(ctx, t.TempDir())
	require.NoError(t, err)
	seatFile := filepath.Join(a.Seat(), ".credentials.json")
	doc := `{"claudeAiOauth":{"accessToken":"at-x","refreshToken":"` + marker + `-rt-alice-9","expiresAt":null}}`
	require.NoError(t, os.WriteFile(seatFile, []byte(doc), 0o600))
	px.Cut()
	done := make(chan error, 1)
	go func() { done <- a.Release() }()
	select {
	case err := <-done:
		require.ErrorIs(t, err, etcd.ErrPending)
	case <-time.After(30 * time.Second):
		t.Fatal("the release still waits on an unreachable cluster")
	}
	data, err := os.ReadFile(seatFile)
	require.NoError(t, err, "the seat keeps the login")
	assert.Equal(t, marker+"-rt-alice-9", refreshToken(t, data))
}
